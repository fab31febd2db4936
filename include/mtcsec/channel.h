/*
 * Direct channel (PROTOCOL.md section 6): AES-CCM records between MTCd and
 * UE, through any relays, under keys derived from DMKey.
 *
 * No allocation.  The caller owns the mtcsec_chan; mtcsec_chan_deinit()
 * zeroizes it.  DMKey itself is not kept: only the four derived values.
 */
#ifndef MTCSEC_CHANNEL_H
#define MTCSEC_CHANNEL_H

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Which end of the channel this object is. */
typedef enum mtcsec_chan_end {
  MTCSEC_CHAN_DEVICE = 0, /* sends d2u, receives u2d */
  MTCSEC_CHAN_UE = 1      /* sends u2d, receives d2u */
} mtcsec_chan_end;

/** The sequence number that is never sent (section 6). */
#define MTCSEC_SEQ_INVALID UINT32_MAX

/** Record overhead: 7 header bytes plus the suite's tag. */
#define MTCSEC_RECORD_OVERHEAD(t) (7u + (t))

/** A channel.  Fields are private; the struct is visible for sizing. */
typedef struct mtcsec_chan {
  const mtcsec_crypto *crypto;
  uint8_t suite;
  uint8_t keylen;
  uint8_t taglen;
  uint8_t live; /* 1 while the keys are usable */
  uint16_t key_id;
  uint32_t tx_seq; /* next sequence number to send */
  mtcsec_window rx;
  mtcsec_tstamp expiry; /* records at or after this time are dropped */
  uint8_t tx_key[MTCSEC_CFG_MAX_KEY_LEN];
  uint8_t rx_key[MTCSEC_CFG_MAX_KEY_LEN];
  uint8_t tx_iv[MTCSEC_IV_LEN];
  uint8_t rx_iv[MTCSEC_IV_LEN];
} mtcsec_chan;

/**
 * The four values of section 6 for KEY_ID key_id, derived from dmkey (the
 * suite's key length).  Each output buffer holds keylen (keys) or 13 (IVs)
 * bytes.  Used by mtcsec_chan_init() and by the vector program.
 */
int mtcsec_chan_derive(const mtcsec_crypto *crypto, uint8_t suite,
                       const uint8_t *dmkey, uint16_t key_id, uint8_t *k_d2u,
                       uint8_t *iv_d2u, uint8_t *k_u2d, uint8_t *iv_u2d);

/**
 * Initializes ch for end `end` from dmkey (the suite's key length; only read
 * during the call).  Records are accepted while now < expiry.  crypto must
 * outlive ch.  Returns 0, INVALID_ARGUMENT (NULL, unknown suite) or the
 * provider's error (ch is then zeroized).
 */
int mtcsec_chan_init(mtcsec_chan *ch, const mtcsec_crypto *crypto,
                     uint8_t suite, mtcsec_chan_end end, const uint8_t *dmkey,
                     uint16_t key_id, mtcsec_tstamp expiry);

/**
 * Initializes ch from keys and IVs derived elsewhere: the record layout and
 * checks of section 6 under other keys, e.g. the cellular uplink/downlink
 * payload keys of CELLULAR.md (suite 0x01, key_id 0).  tx_key/rx_key hold the
 * suite's key length, tx_iv/rx_iv 13 bytes; all four are copied and only read
 * during the call.  Sequence numbers start at 0 and the replay window is
 * empty.  crypto must outlive ch.
 * Returns 0 or INVALID_ARGUMENT (NULL, unknown suite; ch is then zeroized).
 */
int mtcsec_chan_init_keys(mtcsec_chan *ch, const mtcsec_crypto *crypto,
                          uint8_t suite, const uint8_t *tx_key,
                          const uint8_t tx_iv[MTCSEC_IV_LEN],
                          const uint8_t *rx_key,
                          const uint8_t rx_iv[MTCSEC_IV_LEN], uint16_t key_id,
                          mtcsec_tstamp expiry);

/**
 * Seals plaintext pt into a record at dest (ptlen + 7 + t bytes) with the
 * next sequence number.  pt and dest may not overlap.
 * Returns the record length, NOBUF, INVALID_STATE (not live),
 * MTCSEC_ERR_EXPIRED (lifetime over: the keys are erased),
 * MTCSEC_ERR_EXHAUSTED (sequence numbers used up: re-establish) or the
 * provider's error.  On error no sequence number is consumed.
 */
mtcsec_ssize mtcsec_chan_seal(mtcsec_chan *ch, uint8_t *dest, size_t destlen,
                              const uint8_t *pt, size_t ptlen,
                              mtcsec_tstamp now);

/**
 * Opens record rec into dest (reclen - 7 - t bytes).  Checks, in order:
 * framing and key id (MALFORMED, MISMATCH), lifetime (EXPIRED, keys erased),
 * seq 2^32-1 and the 64-entry replay window (REPLAY), the tag (MIC).  Only a
 * record that passes everything advances the window; any failure leaves ch
 * as it was.  dest may not overlap rec.
 * Returns the plaintext length or one of the errors above, NOBUF,
 * INVALID_STATE or the provider's error.
 */
mtcsec_ssize mtcsec_chan_open(mtcsec_chan *ch, uint8_t *dest, size_t destlen,
                              const uint8_t *rec, size_t reclen,
                              mtcsec_tstamp now);

/** Zeroizes ch (keys included).  ch may be NULL. */
void mtcsec_chan_deinit(mtcsec_chan *ch);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_CHANNEL_H */
