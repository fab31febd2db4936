/*
 * Wire codec: every message of PROTOCOL.md sections 3-7.
 *
 * Decoders never read past their input and never allocate: the decoded
 * structs point into the caller's input buffer, which must outlive them.
 * Encoders write into caller buffers and return the byte count or
 * MTCSEC_ERR_NOBUF without writing past destlen.  MIC computation and
 * verification live here too (they are part of each message's definition),
 * through the crypto provider.
 */
#ifndef MTCSEC_CODEC_H
#define MTCSEC_CODEC_H

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Header byte of each message: version 1 in the high nibble. */
enum {
  MTCSEC_MSG_M0 = 0x10,
  MTCSEC_MSG_M1 = 0x11,
  MTCSEC_MSG_M2 = 0x12, /* server-link frame type */
  MTCSEC_MSG_M3 = 0x13, /* server-link frame type */
  MTCSEC_MSG_M4 = 0x14,
  MTCSEC_MSG_ERR = 0x15, /* server-link frame type */
  MTCSEC_MSG_RECORD = 0x16,
  MTCSEC_MSG_REVOKE = 0x17
};

/** ERR codes of section 5, carried in the first body byte of ERR. */
typedef enum mtcsec_errcode {
  MTCSEC_ERRCODE_MALFORMED = 1,
  MTCSEC_ERRCODE_WRONG_SERVER = 2,
  MTCSEC_ERRCODE_UNKNOWN_DEVICE = 3,
  MTCSEC_ERRCODE_DEVICE_DISABLED = 4,
  MTCSEC_ERRCODE_UNSUPPORTED_SUITE = 5,
  MTCSEC_ERRCODE_UE_ID_MISMATCH = 6,
  MTCSEC_ERRCODE_BAD_MIC = 7,
  MTCSEC_ERRCODE_REPLAY = 8,
  MTCSEC_ERRCODE_UE_NOT_AUTHORIZED = 9,
  MTCSEC_ERRCODE_RELAY_NOT_AUTHORIZED = 10,
  MTCSEC_ERRCODE_RATE_LIMITED = 11,
  MTCSEC_ERRCODE_INTERNAL = 12
} mtcsec_errcode;
#define MTCSEC_ERRCODE_MAX 12

/** Returns the spec name of an ERR code ("BAD_MIC"), or "UNKNOWN". */
const char *mtcsec_errcode_name(int code);

/** TLV types of section 3. */
enum {
  MTCSEC_TLV_BATTERY = 0x02,
  MTCSEC_TLV_LOCATION = 0x03,
  MTCSEC_TLV_REQ_PERMS = 0x04,
  MTCSEC_TLV_SUITES = 0x05,
  MTCSEC_TLV_PATH = 0x81,
  MTCSEC_TLV_LIFETIME = 0x90,
  MTCSEC_TLV_PERMS = 0x91,
  MTCSEC_TLV_KEY_ID = 0x92
};

/** Permission bits of PERMS / REQ_PERMS (section 3). */
enum {
  MTCSEC_PERM_READ = 0x01,
  MTCSEC_PERM_WRITE = 0x02,
  MTCSEC_PERM_ACTUATE = 0x04,
  MTCSEC_PERM_CONFIGURE = 0x08
};

/* Fixed lengths. */
#define MTCSEC_M0_FIXED_LEN 11u /* header, UEID, REQ_PERMS, n */
#define MTCSEC_HS_FIXED_LEN 35u /* M1 / M4 before the info */
#define MTCSEC_FRAME_HDR_LEN 7u /* len(2) type(1) req_id(4) */
#define MTCSEC_RECORD_HDR_LEN 7u
#define MTCSEC_REVOKE_FIXED_LEN 27u
/** Largest M1 or M4: fixed part, 255 bytes of info, 16-byte MIC. */
#define MTCSEC_HS_MAX_LEN (MTCSEC_HS_FIXED_LEN + 255 + MTCSEC_MAX_MIC_LEN)
/** Largest M3 body: an M4 and a 32-byte DMKey. */
#define MTCSEC_M3_BODY_MAX_LEN (MTCSEC_HS_MAX_LEN + MTCSEC_MAX_KEY_LEN)
/** Largest server-link frame on the wire (length prefix included). */
#define MTCSEC_FRAME_MAX_LEN (2 + 65535)

/**
 * Returns the message type of a device-link message or server-link frame
 * body header byte (0x10..0x17), MTCSEC_ERR_MALFORMED for an empty input and
 * MTCSEC_ERR_UNSUPPORTED for another version or type.
 */
int mtcsec_msg_type(const uint8_t *msg, size_t msglen);

/* ---------------------------------------------------------------- info */

/** Presence bits of mtcsec_dinfo.present / mtcsec_sinfo.present. */
enum {
  MTCSEC_DINFO_BATTERY = 1u << 0,
  MTCSEC_DINFO_LOCATION = 1u << 1,
  MTCSEC_DINFO_REQ_PERMS = 1u << 2,
  MTCSEC_DINFO_SUITES = 1u << 3,
  MTCSEC_DINFO_PATH = 1u << 4,
  MTCSEC_SINFO_LIFETIME = 1u << 0,
  MTCSEC_SINFO_PERMS = 1u << 1,
  MTCSEC_SINFO_KEY_ID = 1u << 2
};

/** MTCdInfo, decoded.  Pointers point into the decoded buffer. */
typedef struct mtcsec_dinfo {
  unsigned present;
  uint8_t battery;
  int32_t lat, lon; /* 1e-7 degree */
  uint8_t req_perms;
  uint8_t nsuites;
  const uint8_t *suites;
  uint8_t npath;       /* number of relay IDs */
  const uint8_t *path; /* npath * 8 bytes, in M0 order */
} mtcsec_dinfo;

/** MTCsInfo, decoded.  Always carries all three fields (section 3). */
typedef struct mtcsec_sinfo {
  unsigned present;
  uint32_t lifetime; /* seconds */
  uint8_t perms;
  uint16_t key_id;
} mtcsec_sinfo;

/**
 * Decodes MTCdInfo TLVs (section 3 rules: critical bit, at most one of each
 * type, known types with exact lengths, types of MTCsInfo are unknown here).
 * Returns 0 or MTCSEC_ERR_MALFORMED.  out is fully written either way.
 */
int mtcsec_dinfo_decode(mtcsec_dinfo *out, const uint8_t *in, size_t inlen);

/**
 * Decodes MTCsInfo TLVs; LIFETIME, PERMS and KEY_ID must all be present.
 * Returns 0 or MTCSEC_ERR_MALFORMED.
 */
int mtcsec_sinfo_decode(mtcsec_sinfo *out, const uint8_t *in, size_t inlen);

/**
 * Encodes the fields of d whose present bit is set, in ascending type order.
 * Returns the length, MTCSEC_ERR_NOBUF, or MTCSEC_ERR_INVALID_ARGUMENT (a
 * value that cannot be encoded: no suites, no relays, more than 31 relays,
 * more than 255 bytes in all).
 */
mtcsec_ssize mtcsec_dinfo_encode(uint8_t *dest, size_t destlen,
                                 const mtcsec_dinfo *d);

/** Encodes LIFETIME, PERMS and KEY_ID (13 bytes).  Returns 13 or NOBUF. */
mtcsec_ssize mtcsec_sinfo_encode(uint8_t *dest, size_t destlen,
                                 const mtcsec_sinfo *s);

/* ------------------------------------------------------------------ M0 */

typedef struct mtcsec_m0 {
  const uint8_t *ueid;
  uint8_t req_perms;
  uint8_t nhops;
  const uint8_t *hops; /* nhops * 8 bytes */
} mtcsec_m0;

/** Decodes M0.  Returns 0 or MTCSEC_ERR_MALFORMED (length != 11 + 8n). */
int mtcsec_m0_decode(mtcsec_m0 *m0, const uint8_t *in, size_t inlen);

/** Encodes M0.  hops may be NULL when nhops is 0. */
mtcsec_ssize mtcsec_m0_encode(uint8_t *dest, size_t destlen,
                              const uint8_t ueid[MTCSEC_ID_LEN],
                              uint8_t req_perms, const uint8_t *hops,
                              uint8_t nhops);

/**
 * Relay step of section 4: copies M0 from in to dest with gwid appended to
 * the hop list.  Returns the new length, MTCSEC_ERR_MALFORMED (in is not an
 * M0, or already has 255 hops) or MTCSEC_ERR_NOBUF.
 */
mtcsec_ssize mtcsec_m0_append_hop(uint8_t *dest, size_t destlen,
                                  const uint8_t *in, size_t inlen,
                                  const uint8_t gwid[MTCSEC_ID_LEN]);

/* ------------------------------------------------------------- M1 / M4 */

/**
 * M1 and M4 share one layout: header, suite, two IDs, a nonce, UEID, info,
 * MIC.  For M1 id_a = MTCdID, id_b = MTCsID, nonce = MTCdNonce; for M4
 * id_a = MTCsID, id_b = MTCdID, nonce = MTCsNonce.
 */
typedef struct mtcsec_hs {
  const uint8_t *raw; /* first byte of the message */
  uint8_t type;       /* MTCSEC_MSG_M1 or MTCSEC_MSG_M4 */
  uint8_t suite;
  const uint8_t *id_a;
  const uint8_t *id_b;
  const uint8_t *nonce;
  const uint8_t *ueid;
  uint8_t info_len;
  const uint8_t *info;
  size_t signed_len; /* bytes before the MIC: 35 + info_len */
  const uint8_t *mic;
  uint8_t miclen; /* t; 0 when the suite is unknown */
} mtcsec_hs;

/**
 * Decodes an M1 (type MTCSEC_MSG_M1) or M4 (MTCSEC_MSG_M4) structurally:
 * header, fixed fields, info_len within bounds, the info's TLV framing and
 * rules (dinfo for M1, sinfo for M4), and for a known suite the exact length
 * 35 + info_len + t.  For an unknown suite t is 0 and any bytes after the
 * info are taken as an opaque MIC of unknown length (miclen 0): the caller
 * must reject the suite (section 5: UNSUPPORTED_SUITE).
 * Returns 0, MTCSEC_ERR_MALFORMED or MTCSEC_ERR_INVALID_ARGUMENT (bad type).
 */
int mtcsec_hs_decode(mtcsec_hs *hs, uint8_t type, const uint8_t *in,
                     size_t inlen);

/**
 * mtcsec_hs_decode() of an M4 that also hands out its MTCsInfo, decoded as
 * mtcsec_sinfo_decode() does (the TLVs are walked once, not twice).  On
 * MTCSEC_ERR_MALFORMED both outputs are zeroed.  Returns 0,
 * MTCSEC_ERR_MALFORMED or MTCSEC_ERR_INVALID_ARGUMENT (NULL).
 */
int mtcsec_m4_decode(mtcsec_hs *m4, mtcsec_sinfo *si, const uint8_t *in,
                     size_t inlen);

/** The fields of an M1 to build. */
typedef struct mtcsec_m1_fields {
  uint8_t suite;
  const uint8_t *mtcd_id, *mtcs_id, *nonce, *ueid; /* 8 bytes each */
  const uint8_t *info;                             /* may be NULL if 0 */
  size_t info_len;
} mtcsec_m1_fields;

/**
 * Builds a complete M1 with MTCdMIC = MIC(K_auth, all preceding bytes).
 * Returns the length, MTCSEC_ERR_NOBUF, MTCSEC_ERR_INVALID_ARGUMENT (unknown
 * suite, info over 255 bytes) or the provider's error.
 */
mtcsec_ssize mtcsec_m1_build(uint8_t *dest, size_t destlen,
                             const mtcsec_crypto *crypto, const uint8_t *k_auth,
                             const mtcsec_m1_fields *f);

/**
 * mtcsec_m1_build() for an info that mtcsec_dinfo_encode() wrote, as the
 * device role does: that encoder only writes well-formed MTCdInfo, so the
 * TLVs are not decoded again (and a device image needs no MTCdInfo
 * decoder).  Every other check and error is the same.
 */
mtcsec_ssize mtcsec_m1_build_encoded(uint8_t *dest, size_t destlen,
                                     const mtcsec_crypto *crypto,
                                     const uint8_t *k_auth,
                                     const mtcsec_m1_fields *f);

/**
 * Verifies MTCdMIC of a decoded M1 of a known suite in constant time.
 * Returns 0, MTCSEC_ERR_MIC or the provider's error.
 */
int mtcsec_m1_verify(const mtcsec_hs *m1, const mtcsec_crypto *crypto,
                     const uint8_t *k_auth);

/** The fields of an M4 to build. */
typedef struct mtcsec_m4_fields {
  uint8_t suite;
  const uint8_t *mtcs_id, *mtcd_id, *mtcs_nonce, *ueid;
  const uint8_t *info;
  size_t info_len;
  /* From the M1 being answered: covered by MTCsMIC, not sent. */
  const uint8_t *mtcd_nonce;
  const uint8_t *m1_info;
  size_t m1_info_len;
} mtcsec_m4_fields;

/**
 * Builds an M4 with MTCsMIC = MIC(K_auth, M4 bytes before the MIC ||
 * MTCdNonce || info_len of M1 || MTCdInfo).  Errors as mtcsec_m1_build().
 */
mtcsec_ssize mtcsec_m4_build(uint8_t *dest, size_t destlen,
                             const mtcsec_crypto *crypto, const uint8_t *k_auth,
                             const mtcsec_m4_fields *f);

/**
 * Verifies MTCsMIC of a decoded M4 against the device's own copy of its
 * M1 nonce and info.  Returns 0, MTCSEC_ERR_MIC or the provider's error.
 */
int mtcsec_m4_verify(const mtcsec_hs *m4, const mtcsec_crypto *crypto,
                     const uint8_t *k_auth, const uint8_t *mtcd_nonce,
                     const uint8_t *m1_info, size_t m1_info_len);

/**
 * mtcsec_m4_verify() for a caller that keeps the M1's part of the MTCsMIC
 * input in one piece, as the device does: m1_tail = MTCdNonce || info_len
 * of M1 || MTCdInfo, so m1_tail_len = 9 + m1_tail[8].  The MAC then takes
 * two pieces instead of four.  Returns 0, MTCSEC_ERR_MIC,
 * MTCSEC_ERR_INVALID_ARGUMENT (NULL, lengths that disagree) or the
 * provider's error.
 */
int mtcsec_m4_verify_tail(const mtcsec_hs *m4, const mtcsec_crypto *crypto,
                          const uint8_t *k_auth, const uint8_t *m1_tail,
                          size_t m1_tail_len);

/* ----------------------------------------------------- server-link frames */

typedef struct mtcsec_frame {
  uint8_t type;
  uint32_t req_id;
  const uint8_t *body;
  size_t bodylen;
} mtcsec_frame;

/**
 * Parses one frame from the start of a byte stream.  Returns the number of
 * bytes the frame occupies (> 0) when complete, 0 when more bytes are needed,
 * or MTCSEC_ERR_MALFORMED when len < 5 (the connection must end, section 5).
 * The type is not checked here.
 */
mtcsec_ssize mtcsec_frame_parse(mtcsec_frame *fr, const uint8_t *in,
                                size_t inlen);

/** Encodes a frame.  Returns 7 + bodylen, NOBUF or INVALID_ARGUMENT. */
mtcsec_ssize mtcsec_frame_encode(uint8_t *dest, size_t destlen, uint8_t type,
                                 uint32_t req_id, const uint8_t *body,
                                 size_t bodylen);

/**
 * Encodes an ERR frame: code || detail (detail may be NULL).  detail is cut
 * to fit 255 bytes.  Returns the length or NOBUF.
 */
mtcsec_ssize mtcsec_err_frame_encode(uint8_t *dest, size_t destlen,
                                     uint32_t req_id, uint8_t code,
                                     const char *detail);

/**
 * Splits an M3 body into its M4 (decoded into m4) and DMKey.  Returns 0 or
 * MTCSEC_ERR_MALFORMED (unknown suite, bad M4, DMKey of the wrong length).
 */
int mtcsec_m3_decode(mtcsec_hs *m4, const uint8_t **dmkey, size_t *dmkeylen,
                     const uint8_t *body, size_t bodylen);

/* ------------------------------------------------------------ revocation */

typedef struct mtcsec_revoke {
  const uint8_t *mtcs_id, *mtcd_id;
  uint16_t key_id;
  const uint8_t *mtcd_nonce;
  const uint8_t *mic;
  uint8_t miclen;
} mtcsec_revoke;

/**
 * Decodes a revocation of a device whose suite gives MIC length miclen.
 * Returns 0 or MTCSEC_ERR_MALFORMED (length != 27 + miclen).
 */
int mtcsec_revoke_decode(mtcsec_revoke *rv, const uint8_t *in, size_t inlen,
                         size_t miclen);

/**
 * Builds a revocation (section 7).  suite selects MIC and t.  Returns the
 * length, NOBUF, INVALID_ARGUMENT or the provider's error.
 */
mtcsec_ssize mtcsec_revoke_build(uint8_t *dest, size_t destlen,
                                 const mtcsec_crypto *crypto, uint8_t suite,
                                 const uint8_t *k_auth,
                                 const uint8_t mtcs_id[MTCSEC_ID_LEN],
                                 const uint8_t mtcd_id[MTCSEC_ID_LEN],
                                 uint16_t key_id,
                                 const uint8_t mtcd_nonce[MTCSEC_NONCE_LEN]);

/**
 * Verifies the MIC of a decoded revocation.  in/inlen are the raw message.
 * Returns 0, MTCSEC_ERR_MIC or the provider's error.
 */
int mtcsec_revoke_verify(const mtcsec_revoke *rv, const uint8_t *in,
                         size_t inlen, const mtcsec_crypto *crypto,
                         uint8_t suite, const uint8_t *k_auth);

/* ----------------------------------------------------- channel record */

typedef struct mtcsec_record_hdr {
  uint16_t key_id;
  uint32_t seq;
} mtcsec_record_hdr;

/**
 * Decodes a record header.  Returns 0 or MALFORMED (shorter than 7 + t).
 */
int mtcsec_record_hdr_decode(mtcsec_record_hdr *h, const uint8_t *in,
                             size_t inlen, size_t taglen);

/* ------------------------------------------------------- key schedule */

/**
 * Derives K_auth and K_dm from PSKey (section 2, key separation); each
 * output has the suite's key length.  Returns 0, INVALID_ARGUMENT or the
 * provider's error.
 */
int mtcsec_derive_device_keys(const mtcsec_crypto *crypto, uint8_t suite,
                              const uint8_t *pskey,
                              const uint8_t mtcd_id[MTCSEC_ID_LEN],
                              const uint8_t mtcs_id[MTCSEC_ID_LEN],
                              uint8_t *k_auth, uint8_t *k_dm);

/**
 * Derives DMKey = KDF(K_dm, "mtcsec DMKey", MTCdID || MTCsID || MTCdNonce ||
 * MTCsNonce || UEID, keylen) (section 4).
 */
int mtcsec_derive_dmkey(const mtcsec_crypto *crypto, uint8_t suite,
                        const uint8_t *k_dm,
                        const uint8_t mtcd_id[MTCSEC_ID_LEN],
                        const uint8_t mtcs_id[MTCSEC_ID_LEN],
                        const uint8_t mtcd_nonce[MTCSEC_NONCE_LEN],
                        const uint8_t mtcs_nonce[MTCSEC_NONCE_LEN],
                        const uint8_t ueid[MTCSEC_ID_LEN], uint8_t *dmkey);

/* Big-endian helpers for callers that build or read IDs and nonces. */
void mtcsec_put_u64(uint8_t out[8], uint64_t v);
uint64_t mtcsec_get_u64(const uint8_t in[8]);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_CODEC_H */
