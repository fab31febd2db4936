/*
 * The "Gi" frames between a GGSN and mtcsd's cellular service
 * (docs/CELLULAR-SYSTEM.md section 3), carried over TLS 1.3:
 *
 *     length(2, of what follows) || type(1) || ctx(4) || body
 *
 * All integers are big-endian.  `ctx` is the GGSN's TEID of the PDP context.
 * The length field counts type, ctx and body: at least GI_HDR_MIN (5), at
 * most GI_LEN_MAX (2048).
 *
 * This is shell code shared by mtcsd (apps/mtcsd/cellular.c) and the GGSN
 * agent (apps/mtcsec/agent_ggsn.c): no allocation, no I/O, no state between
 * calls; every pointer travels with its length.  Functions return a byte
 * count or a negative mtcsec_err (MTCSEC_ERR_INVALID_ARGUMENT,
 * MTCSEC_ERR_NOBUF, MTCSEC_ERR_MALFORMED), like the library.  Thread-safe.
 */
#ifndef MTCSEC_GI_H
#define MTCSEC_GI_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/mtcsec.h>

/** Bytes before the body: length(2) || type(1) || ctx(4). */
#define GI_HDR_LEN 7
/** Smallest value of the length field (type and ctx, no body). */
#define GI_HDR_MIN 5
/** Largest value of the length field. */
#define GI_LEN_MAX 2048
/** Largest body: GI_LEN_MAX - 5. */
#define GI_BODY_MAX (GI_LEN_MAX - GI_HDR_MIN)
/** Largest frame on the wire: 2 + GI_LEN_MAX. */
#define GI_FRAME_MAX (2 + GI_LEN_MAX)

/** Frame types (section 3). */
enum {
  GI_CTX_OPEN = 0x01,   /* GGSN -> mtcsd: IMSI(8, TBCD) || RAND(16) */
  GI_CTX_RESULT = 0x02, /* mtcsd -> GGSN: status(1) */
  GI_CTX_CLOSE = 0x03,  /* GGSN -> mtcsd: empty */
  GI_UPLINK = 0x10,     /* GGSN -> mtcsd: one payload record */
  GI_DOWNLINK = 0x11    /* mtcsd -> GGSN: one payload record */
};

/** Body lengths of the fixed-size types. */
#define GI_CTX_OPEN_LEN 24 /* IMSI(8) || RAND(16) */
#define GI_CTX_RESULT_LEN 1
#define GI_CTX_CLOSE_LEN 0

/** CTX_RESULT status values (section 3). */
enum {
  GI_STATUS_OK = 0x00,             /* keys ready */
  GI_STATUS_NOT_AUTHORIZED = 0x01, /* home proxy said 403 */
  GI_STATUS_UNKNOWN_VECTOR = 0x02, /* home proxy said 404 (wrong RAND) */
  GI_STATUS_HP_FAILED = 0x03,      /* home proxy unreachable or failed */
  GI_STATUS_TOO_MANY = 0x04,       /* cellular_max_contexts reached */
  GI_STATUS_MALFORMED = 0x05,      /* the IMSI is not 6..15 TBCD digits */
  GI_STATUS_STALE_RAND = 0x06,     /* (IMSI, RAND) used before and its
                                    * channel state is gone: re-attach */
  GI_STATUS_INTERNAL = 0x07        /* mtcsd failed (could not record the
                                    * RAND, out of memory): nothing kept */
};

/** A decoded frame.  body points into the caller's buffer. */
typedef struct gi_frame {
  uint8_t type;
  uint32_t ctx;
  const uint8_t *body; /* NULL when bodylen is 0 */
  size_t bodylen;
} gi_frame;

/**
 * Encodes one frame at out: GI_HDR_LEN + bodylen bytes.  body may be NULL
 * when bodylen is 0.  The type and body length are checked as gi_decode()
 * checks them, so that whatever this writes decodes.
 *
 * Returns the frame length, MTCSEC_ERR_INVALID_ARGUMENT (unknown type, body
 * length wrong for the type or above GI_BODY_MAX, NULL where a pointer is
 * needed) or MTCSEC_ERR_NOBUF (outlen too small; nothing written).
 */
mtcsec_ssize gi_encode(uint8_t type, uint32_t ctx, const uint8_t *body,
                       size_t bodylen, uint8_t *out, size_t outlen);

/**
 * Incremental decoder: looks at the bytes received so far (in, inlen) and
 * says whether they start with a complete frame.
 *
 *  - > 0: a frame of that many bytes starts at in; *f describes it (f->body
 *    points into in).  Consume that many bytes and call again.
 *  - 0: need more bytes (fewer than 2, or fewer than 2 + length); *f is not
 *    written.  A caller never needs to buffer more than GI_FRAME_MAX bytes.
 *  - MTCSEC_ERR_MALFORMED: the stream is broken; close the connection.  The
 *    length field below GI_HDR_MIN or above GI_LEN_MAX is reported as soon
 *    as the two length bytes are there; an unknown type, or a body whose
 *    length is wrong for CTX_OPEN (24), CTX_RESULT (1) or CTX_CLOSE (0), once
 *    the frame is complete.  UPLINK and DOWNLINK bodies may have any length
 *    (the record layer checks them).
 *  - MTCSEC_ERR_INVALID_ARGUMENT: f NULL, or in NULL with inlen > 0.
 *
 * The direction is not checked: the receiver decides which types it
 * accepts.
 */
mtcsec_ssize gi_decode(gi_frame *f, const uint8_t *in, size_t inlen);

/** "CTX_OPEN", "UPLINK"... for logs; "UNKNOWN" otherwise.  Never NULL. */
const char *gi_type_name(uint8_t type);

/** "ok", "not_authorized", "unknown_vector", "home_proxy_failed",
 *  "too_many_contexts", "malformed", "stale_rand", "internal"; "unknown"
 *  otherwise.  Never NULL. */
const char *gi_status_name(uint8_t status);

#endif /* MTCSEC_GI_H */
