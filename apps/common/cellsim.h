/*
 * The simulated interfaces of cellular mode (docs/CELLULAR-SYSTEM.md):
 * codecs of the radio messages MS <-> SGSN (section 1), of the session
 * management messages inside SAPI-1 LLC frames (section 1.1), of the
 * simulated GTP-C and the real GTPv1-U G-PDU header SGSN <-> GGSN
 * (section 2), the per-SAPI LLC COUNT bookkeeping of section 1.1, and the
 * few facts an SGSN reads from a raw GSUP Send Auth Info result (which tuple
 * IEs are present, the policy IE 0xF0 of docs/CELLULAR-HOME-PROXY.md).
 *
 * Conventions of mtcsec.h: encoders return the length written or a
 * negative mtcsec_err (MTCSEC_ERR_NOBUF when dest is too small,
 * MTCSEC_ERR_INVALID_ARGUMENT for a field out of range); decoders return 0
 * or MTCSEC_ERR_MALFORMED (truncated, trailing bytes, field out of range)
 * and write their output only on success.  Decoded pointers point into the
 * caller's buffer.  Nothing here allocates, keeps a pointer after returning
 * or touches a socket, file or clock; only cellsim_llc_open() and
 * cellsim_llc_seal() compute (through the crypto provider).
 */
#ifndef MTCSEC_CELLSIM_H
#define MTCSEC_CELLSIM_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/cellular.h>
#include <mtcsec/crypto.h>

/* ------------------------------------------------------ radio (sect. 1) */

/** First byte of every radio datagram ('M'). */
#define CELLSIM_RADIO_MAGIC 0x4d
/** magic(1) || type(1) || TLLI(4). */
#define CELLSIM_RADIO_HDR_LEN 6

typedef enum cellsim_radio_type {
  CELLSIM_ATTACH_REQUEST = 0x01, /* MS -> SGSN: IMSI(8, TBCD) */
  CELLSIM_AUTH_REQUEST = 0x02,   /* SGSN -> MS: RAND(16) || AUTN(16) */
  CELLSIM_AUTH_RESPONSE = 0x03,  /* MS -> SGSN: RES length(1) || RES */
  CELLSIM_AUTH_FAILURE = 0x04,   /* MS -> SGSN: cause(1) [|| AUTS(14)] */
  CELLSIM_ATTACH_ACCEPT = 0x05,  /* SGSN -> MS: policy flags(1) */
  CELLSIM_ATTACH_REJECT = 0x06,  /* SGSN -> MS: GMM cause(1) */
  CELLSIM_LLC = 0x10             /* both: one LLC UI frame */
} cellsim_radio_type;

/** AUTH_FAILURE causes (TS 24.008 10.5.3.2.2). */
#define CELLSIM_CAUSE_MAC_FAILURE 0x14
#define CELLSIM_CAUSE_SYNCH_FAILURE 0x15
/** ATTACH_ACCEPT flags: as the GSUP policy IE 0xF0 gave them. */
#define CELLSIM_POLICY_INTEGRITY 0x01
#define CELLSIM_POLICY_CIPHERING 0x02
/** GMM causes used in ATTACH_REJECT (TS 24.008 10.5.5.14). */
#define CELLSIM_GMM_IMSI_UNKNOWN 0x02
#define CELLSIM_GMM_ILLEGAL_MS 0x03
#define CELLSIM_GMM_NETWORK_FAILURE 0x11
#define CELLSIM_GMM_CONGESTION 0x16

#define CELLSIM_RES_MIN 4
#define CELLSIM_RES_MAX 16

/**
 * One radio message.  Only the fields of its type are read (encode) or
 * written (decode); the others are left alone.  llc points into the
 * datagram on decode.
 */
typedef struct cellsim_radio {
  uint8_t type;
  uint32_t tlli;
  uint8_t imsi[MTCSEC_IMSI_TBCD_LEN]; /* ATTACH_REQUEST */
  uint8_t rand[MTCSEC_3GPP_RAND_LEN]; /* AUTH_REQUEST */
  uint8_t autn[MTCSEC_3GPP_AUTN_LEN]; /* AUTH_REQUEST */
  uint8_t res[CELLSIM_RES_MAX];       /* AUTH_RESPONSE */
  uint8_t reslen;                     /* AUTH_RESPONSE, 4..16 */
  uint8_t cause;                      /* AUTH_FAILURE, ATTACH_REJECT */
  uint8_t auts[MTCSEC_3GPP_AUTS_LEN]; /* AUTH_FAILURE with 0x15 */
  uint8_t flags;                      /* ATTACH_ACCEPT */
  const uint8_t *llc;                 /* LLC */
  size_t llclen;                      /* LLC, >= 1 */
} cellsim_radio;

/**
 * Encodes m.  Returns the length, INVALID_ARGUMENT (unknown type, RES
 * length outside 4..16, AUTH_FAILURE cause other than 0x14/0x15, empty or
 * NULL LLC frame) or NOBUF.
 */
mtcsec_ssize cellsim_radio_encode(const cellsim_radio *m, uint8_t *dest,
                                  size_t destlen);

/**
 * Decodes one datagram.  Bodies must have exactly the length of their type
 * (AUTH_FAILURE: 1 byte for 0x14, 15 for 0x15; other causes are
 * malformed).  Returns 0 or MTCSEC_ERR_MALFORMED (wrong magic, unknown
 * type, wrong length).
 */
int cellsim_radio_decode(cellsim_radio *m, const uint8_t *in, size_t inlen);

/** "ATTACH_REQUEST", ... or "?". */
const char *cellsim_radio_name(uint8_t type);

/* -------------------------------------------- SM in SAPI 1 (sect. 1.1) */

/** Protocol discriminator of session management (TS 24.007 11.2.3.1.1). */
#define CELLSIM_PD_SM 0x0a

typedef enum cellsim_sm_type {
  CELLSIM_SM_ACTIVATE_REQUEST = 0x41, /* NSAPI(1) || PCO IE */
  CELLSIM_SM_ACTIVATE_ACCEPT = 0x42,  /* NSAPI(1) */
  CELLSIM_SM_ACTIVATE_REJECT = 0x43   /* NSAPI(1) || SM cause(1) */
} cellsim_sm_type;

#define CELLSIM_NSAPI_MIN 5
#define CELLSIM_NSAPI_MAX 15
/** SM causes (TS 24.008 10.5.6.6). */
#define CELLSIM_SM_INSUFFICIENT_RESOURCES 0x1a
#define CELLSIM_SM_USER_AUTH_FAILED 0x1d
#define CELLSIM_SM_REGULAR_DEACTIVATION 0x1f
#define CELLSIM_SM_SERVICE_OUT_OF_ORDER 0x22
#define CELLSIM_SM_NETWORK_FAILURE 0x26

/**
 * One SM message.  ti is the transaction identifier nibble (octet 1 bits
 * 5-8: TI flag in bit 8, TI value 0..6 in bits 5-7; the value 7, which
 * announces an extension octet, is not used here).  pco is the PCO IE's
 * value (octet 3 onwards, 1..253 bytes; IEI 0x27 and the length octet are
 * added and removed by the codec).
 */
typedef struct cellsim_sm {
  uint8_t ti;
  uint8_t type;
  uint8_t nsapi;
  uint8_t cause; /* ACTIVATE_REJECT */
  const uint8_t *pco;
  size_t pcolen; /* ACTIVATE_REQUEST */
} cellsim_sm;

/** Encodes m.  Returns the length, INVALID_ARGUMENT or NOBUF. */
mtcsec_ssize cellsim_sm_encode(const cellsim_sm *m, uint8_t *dest,
                               size_t destlen);

/**
 * Decodes an LLC information field as an SM message.  Returns 0 or
 * MTCSEC_ERR_MALFORMED (wrong PD, TI value 7, unknown type, NSAPI outside
 * 5..15, PCO IE missing, empty or not ending the message, wrong length).
 */
int cellsim_sm_decode(cellsim_sm *m, const uint8_t *in, size_t inlen);

/** "ACTIVATE_PDP_CONTEXT_REQUEST", ... or "?". */
const char *cellsim_sm_name(uint8_t type);

/* ---------------------------------------------------- GTP (section 2) */

/** First byte of a simulated GTP-C message ('G'). */
#define CELLSIM_GTPC_MAGIC 0x47
/** magic(1) || type(1) || seq(2). */
#define CELLSIM_GTPC_HDR_LEN 4
/** GTPv1-U flags octet: version 1, PT = 1, no E/S/PN (TS 29.281 5.1). */
#define CELLSIM_GTPU_FLAGS 0x30
/** GTPv1-U message type G-PDU. */
#define CELLSIM_GTPU_GPDU 0xff
#define CELLSIM_GTPU_HDR_LEN 8

typedef enum cellsim_gtpc_type {
  CELLSIM_CREATE_PDP_REQUEST = 0x10,
  CELLSIM_CREATE_PDP_RESPONSE = 0x11,
  CELLSIM_DELETE_PDP_REQUEST = 0x14,
  CELLSIM_DELETE_PDP_RESPONSE = 0x15
} cellsim_gtpc_type;

/** GTP causes (TS 29.060 7.7.1). */
#define CELLSIM_GTP_ACCEPTED 0x80
#define CELLSIM_GTP_NON_EXISTENT 0xc0
#define CELLSIM_GTP_NO_RESOURCES 0xc7
#define CELLSIM_GTP_USER_AUTH_FAILED 0xca
#define CELLSIM_GTP_SYSTEM_FAILURE 0xd1

/**
 * One GTP-C message.  teid is the SGSN's TEID in CREATE_PDP_REQUEST and
 * the GGSN's in CREATE_PDP_RESPONSE and DELETE_PDP_REQUEST.  pco is the PCO
 * IE's value copied from the MS (0..253 bytes; CREATE_PDP_REQUEST).
 */
typedef struct cellsim_gtpc {
  uint8_t type;
  uint16_t seq;
  uint8_t imsi[MTCSEC_IMSI_TBCD_LEN]; /* CREATE_PDP_REQUEST */
  uint8_t nsapi;                      /* CREATE_PDP_REQUEST, 5..15 */
  uint32_t teid;
  uint8_t cause; /* the two responses */
  const uint8_t *pco;
  size_t pcolen;
} cellsim_gtpc;

/** Encodes m.  Returns the length, INVALID_ARGUMENT or NOBUF. */
mtcsec_ssize cellsim_gtpc_encode(const cellsim_gtpc *m, uint8_t *dest,
                                 size_t destlen);

/**
 * Decodes a GTP-C datagram.  Returns 0 or MTCSEC_ERR_MALFORMED (wrong
 * magic, unknown type, wrong length, NSAPI outside 5..15, PCO length past
 * the end).
 */
int cellsim_gtpc_decode(cellsim_gtpc *m, const uint8_t *in, size_t inlen);

/** "CREATE_PDP_REQUEST", ... or "?". */
const char *cellsim_gtpc_name(uint8_t type);

/** Largest T-PDU of a G-PDU (the 16-bit length field). */
#define CELLSIM_GTPU_MAX_TPDU 65535u

/**
 * Encodes a G-PDU: 0x30 || 0xFF || length(2) || TEID(4) || T-PDU.
 * tpdu may be NULL when tpdulen is 0.  Returns the length,
 * INVALID_ARGUMENT (T-PDU longer than 65535) or NOBUF.
 */
mtcsec_ssize cellsim_gtpu_encode(uint32_t teid, const uint8_t *tpdu,
                                 size_t tpdulen, uint8_t *dest, size_t destlen);

/**
 * Decodes a G-PDU.  The length field must match the datagram exactly.
 * Returns 0 or MTCSEC_ERR_MALFORMED (other flags or message type,
 * truncated, length mismatch).
 */
int cellsim_gtpu_decode(const uint8_t *in, size_t inlen, uint32_t *teid,
                        const uint8_t **tpdu, size_t *tpdulen);

/* ----------------------------------------- LLC COUNT (section 1.1, P1) */

/** SAPIs are 4 bits. */
#define CELLSIM_LLC_NSAPI 16
/** COUNT is 32 bits: 2^32 frames per SAPI and direction at most. */
#define CELLSIM_LLC_COUNT_END (UINT64_C(1) << 32)

/**
 * One end's LLC counters, per SAPI: the next COUNT it sends, and one more
 * than the highest COUNT it accepted (0: nothing accepted yet).  Plain data;
 * zero-initialise it at attach.
 */
typedef struct cellsim_llc {
  uint64_t tx_next[CELLSIM_LLC_NSAPI];
  uint64_t rx_next[CELLSIM_LLC_NSAPI];
} cellsim_llc;

/**
 * The COUNT to send the next frame of sapi with, advancing tx_next.
 * Returns 0, INVALID_ARGUMENT (sapi > 15) or MTCSEC_ERR_EXHAUSTED (2^32
 * frames sent on this SAPI: attach again).
 */
int cellsim_llc_tx_count(cellsim_llc *l, uint8_t sapi, uint32_t *count);

/**
 * Reconstructs the COUNT of a received frame from its N(U): the smallest
 * value not below rx_next[sapi] whose low 9 bits are nu (so at most 511
 * frames may be lost in a row; a replayed frame maps 512 higher).  Changes
 * nothing.  Returns 0, INVALID_ARGUMENT (sapi > 15, nu > 511) or
 * MTCSEC_ERR_EXHAUSTED (the value would pass 2^32 - 1).
 */
int cellsim_llc_rx_count(const cellsim_llc *l, uint8_t sapi, uint16_t nu,
                         uint32_t *count);

/**
 * Records count as accepted on sapi (rx_next := count + 1 if that is
 * higher).  Call only after the frame's MAC-I (or FCS) verified.
 */
void cellsim_llc_rx_accept(cellsim_llc *l, uint8_t sapi, uint32_t count);

/**
 * Reads SAPI and N(U) of a UI frame without checking its trailer.  Returns
 * 0 or MTCSEC_ERR_MALFORMED (shorter than a UI header, PD set, not a UI
 * frame, reserved SAPI).
 */
int cellsim_llc_peek(const uint8_t *frame, size_t len, uint8_t *sapi,
                     uint16_t *nu);

/**
 * Receives one UI frame: reconstructs COUNT (cellsim_llc_rx_count()),
 * checks the MAC-I with ik (128-EIA2, DIRECTION direction) or, when ik is
 * NULL, the FCS, and only then advances rx_next of the frame's SAPI.  ui is
 * filled on success (ui->info points into frame); *count (may be NULL)
 * receives the COUNT.
 * Returns 0, MTCSEC_ERR_MALFORMED, MTCSEC_ERR_MIC (bad MAC-I or FCS: drop
 * and count the frame; l is unchanged), EXHAUSTED, INVALID_ARGUMENT or the
 * provider's error.
 */
int cellsim_llc_open(cellsim_llc *l, const mtcsec_crypto *crypto,
                     const uint8_t *ik, uint8_t direction, const uint8_t *frame,
                     size_t len, mtcsec_llc_ui *ui, uint32_t *count);

/**
 * Sends one UI frame of sapi carrying info: takes the next COUNT, sets
 * N(U) = COUNT mod 512, C/R = direction (TS 44.064 6.2.2: the MS sends
 * commands with C/R 0, the SGSN with 1), E = 0, PM = 1, and ends it with a
 * MAC-I under ik (128-EIA2, DIRECTION direction) or, when ik is NULL, the
 * FCS.  Returns the frame length, INVALID_ARGUMENT, NOBUF, EXHAUSTED or the
 * provider's error.
 */
mtcsec_ssize cellsim_llc_seal(cellsim_llc *l, const mtcsec_crypto *crypto,
                              const uint8_t *ik, uint8_t direction,
                              uint8_t sapi, const uint8_t *info, size_t infolen,
                              uint8_t *dest, size_t destlen);

/* ------------------------------------------- GSUP result, as SGSN reads */

/** What a raw GSUP message holds that libosmocore's decoder hides. */
typedef struct cellsim_gsup_facts {
  size_t ntuples;     /* auth tuple IEs (0x03) */
  uint8_t ck_present; /* some tuple has a CK IE (0x24) */
  uint8_t kc_present; /* some tuple has a Kc IE (0x22) */
  uint8_t ik_missing; /* some tuple has no IK IE (0x23) */
  int policy;         /* flags of the policy IE 0xF0 version 1, else -1 */
} cellsim_gsup_facts;

/** The operator-specific GSUP IE of the policy. */
#define CELLSIM_GSUP_POLICY_IE 0xf0

/**
 * Walks a GSUP message (message type octet, then one-octet-length TLVs)
 * and the TLVs inside each auth tuple.  A policy IE whose version is not 1
 * or that is shorter than 2 octets counts as absent (docs/CELLULAR-HOME-
 * PROXY.md).  Returns 0 or MTCSEC_ERR_MALFORMED (an IE runs past the end).
 */
int cellsim_gsup_scan(const uint8_t *msg, size_t len, cellsim_gsup_facts *f);

#endif /* MTCSEC_CELLSIM_H */
