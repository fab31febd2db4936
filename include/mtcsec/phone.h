/*
 * UE role: the user's phone (PROTOCOL.md sections 4-6).
 *
 * Sans-IO.  The UE sits between two links: the device link (datagrams to and
 * from devices or relays, each with an opaque 64-bit peer chosen by the
 * caller) and the server link (a TLS stream to the MTCs carrying frames).
 * It runs many exchanges at once, each named on the server link by a req_id.
 * It allocates its tables once, at mtcsec_ue_new(), through cfg->mem.
 *
 * None of these functions may be called from inside a callback.
 */
#ifndef MTCSEC_PHONE_H
#define MTCSEC_PHONE_H

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/channel.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mtcsec_ue mtcsec_ue;

typedef struct mtcsec_ue_config {
  uint8_t ueid[MTCSEC_ID_LEN];
  /** Exchanges in flight at once (default 64). */
  size_t max_exchanges;
  /** Live DMKeys (one per device) at once (default 256). */
  size_t max_sessions;
  /** Give up an exchange with no M3/ERR after this long, ms (default 10000). */
  mtcsec_tstamp exchange_timeout;
  const mtcsec_mem *mem; /* NULL: malloc */
  mtcsec_log_fn log;
} mtcsec_ue_config;

void mtcsec_ue_config_default(mtcsec_ue_config *cfg);

/** Which link a datagram or frame goes to. */
typedef enum mtcsec_link {
  MTCSEC_LINK_DEVICE = 0,
  MTCSEC_LINK_SERVER = 1
} mtcsec_link;

typedef enum mtcsec_ue_event_type {
  MTCSEC_UE_EV_ESTABLISHED = 1, /* M3 received: DMKey kept, M4 queued */
  MTCSEC_UE_EV_ERROR = 2,       /* the MTCs answered ERR */
  MTCSEC_UE_EV_TIMEOUT = 3,     /* no answer from the MTCs */
  MTCSEC_UE_EV_EXPIRED = 4      /* a DMKey's lifetime ended: erased */
} mtcsec_ue_event_type;

typedef struct mtcsec_ue_event {
  mtcsec_ue_event_type type;
  const uint8_t *mtcd_id; /* 8 bytes, valid during the callback */
  uint32_t req_id;
  uint16_t key_id;    /* ESTABLISHED, EXPIRED */
  uint8_t perms;      /* ESTABLISHED */
  uint32_t lifetime;  /* ESTABLISHED, seconds */
  uint8_t errcode;    /* ERROR: mtcsec_errcode */
  const char *detail; /* ERROR: NUL-terminated, may be empty */
} mtcsec_ue_event;

typedef struct mtcsec_ue_callbacks {
  void (*on_event)(void *user_data, const mtcsec_ue_event *ev);
} mtcsec_ue_callbacks;

/**
 * Creates a UE.  cfg is read during the call; crypto, cb and user_data must
 * outlive it.  Returns 0, INVALID_ARGUMENT or NOMEM.
 */
int mtcsec_ue_new(mtcsec_ue **pue, const mtcsec_ue_config *cfg,
                  const mtcsec_crypto *crypto, const mtcsec_ue_callbacks *cb,
                  void *user_data);

/** Zeroizes and frees ue (NULL allowed). */
void mtcsec_ue_del(mtcsec_ue *ue);

/** Builds this UE's M0 asking for req_perms (no hops). */
mtcsec_ssize mtcsec_ue_m0(mtcsec_ue *ue, uint8_t *dest, size_t destlen,
                          uint8_t req_perms);

/**
 * Handles a datagram from the device link: an M1 (structurally checked, its
 * UEID must be ours) opens an exchange and queues M2; a duplicate of an M1
 * already in flight is ignored.  Records go to mtcsec_ue_channel().
 * Returns 0, MALFORMED, UNSUPPORTED, MISMATCH (not our UEID), UNEXPECTED
 * (a duplicate: ignored) or BUSY (no free exchange slot).
 */
int mtcsec_ue_read_device(mtcsec_ue *ue, const uint8_t *pkt, size_t pktlen,
                          uint64_t peer, mtcsec_tstamp now);

/**
 * Handles one complete server-link frame (length prefix included, as
 * mtcsec_frame_parse() delimits it): M3 (DMKey kept, channel set up, M4
 * queued toward the device) or ERR (event).  Returns 0, MALFORMED,
 * NOT_FOUND (unknown req_id), MISMATCH (M3 is not for this exchange),
 * NOMEM (no session slot) or the provider's error.
 */
int mtcsec_ue_read_server(mtcsec_ue *ue, const uint8_t *frame, size_t framelen,
                          mtcsec_tstamp now);

/**
 * Writes the next thing to send: an M2 frame (link SERVER) or an M4
 * datagram (link DEVICE, to *peer).  Returns its length, 0 when nothing is
 * queued, or NOBUF.
 */
mtcsec_ssize mtcsec_ue_write(mtcsec_ue *ue, uint8_t *dest, size_t destlen,
                             mtcsec_link *link, uint64_t *peer,
                             mtcsec_tstamp now);

mtcsec_tstamp mtcsec_ue_get_expiry(const mtcsec_ue *ue);

/** Times out exchanges and erases expired DMKeys.  Returns 0. */
int mtcsec_ue_handle_expiry(mtcsec_ue *ue, mtcsec_tstamp now);

/**
 * Returns the channel of the live session with device mtcd_id, or NULL.
 * The pointer stays valid until the session expires, is replaced, forgotten
 * or the UE is deleted.
 */
mtcsec_chan *mtcsec_ue_channel(mtcsec_ue *ue,
                               const uint8_t mtcd_id[MTCSEC_ID_LEN]);

/** Erases the session with mtcd_id (after carrying a revocation). */
int mtcsec_ue_forget(mtcsec_ue *ue, const uint8_t mtcd_id[MTCSEC_ID_LEN]);

/** Exchanges in flight (for tests and metrics). */
size_t mtcsec_ue_inflight(const mtcsec_ue *ue);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_PHONE_H */
