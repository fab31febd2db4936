/*
 * Direct channel, PROTOCOL.md section 6.
 *
 *   record = 0x16 || key_id(2) || seq(4) || ciphertext || tag(t)
 *   nonce  = IV XOR (0^9 || seq), AAD = the 7 header bytes
 */
#include <string.h>

#include <mtcsec/channel.h>
#include <mtcsec/codec.h>

#include "core/internal.h"
#include "core/util.h"

int mtcsec_chan_setup(mtcsec_chan *ch, const mtcsec_crypto *crypto,
                      const mtcsec_suite_params *sp, mtcsec_chan_end end,
                      const uint8_t *dmkey, uint16_t key_id) {
  uint8_t *out[4];
  int rv;
  memset(ch, 0, sizeof(*ch));
  /* K_d2u, IV_d2u, K_u2d, IV_u2d: the device sends d2u, the UE u2d. */
  out[0] = end == MTCSEC_CHAN_DEVICE ? ch->tx_key : ch->rx_key;
  out[1] = end == MTCSEC_CHAN_DEVICE ? ch->tx_iv : ch->rx_iv;
  out[2] = end == MTCSEC_CHAN_DEVICE ? ch->rx_key : ch->tx_key;
  out[3] = end == MTCSEC_CHAN_DEVICE ? ch->rx_iv : ch->tx_iv;
  rv = mtcsec_kdf_chan(crypto, sp, dmkey, key_id, out);
  if (rv != 0) {
    mtcsec_zeroize(ch, sizeof(*ch));
    return rv;
  }
  ch->crypto = crypto;
  ch->suite = sp->id;
  ch->keylen = sp->keylen;
  ch->taglen = sp->miclen;
  ch->key_id = key_id;
  ch->live = 1; /* the window is empty: all zeros */
  return 0;
}

int mtcsec_chan_init(mtcsec_chan *ch, const mtcsec_crypto *crypto,
                     uint8_t suite, mtcsec_chan_end end, const uint8_t *dmkey,
                     uint16_t key_id, mtcsec_tstamp expiry) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  int rv;
  if (ch == NULL || crypto == NULL || dmkey == NULL || sp == NULL ||
      sp->keylen > MTCSEC_CFG_MAX_KEY_LEN ||
      (end != MTCSEC_CHAN_DEVICE && end != MTCSEC_CHAN_UE)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = mtcsec_chan_setup(ch, crypto, sp, end, dmkey, key_id);
  if (rv == 0) {
    ch->expiry = expiry;
  }
  return rv;
}

int mtcsec_chan_init_keys(mtcsec_chan *ch, const mtcsec_crypto *crypto,
                          uint8_t suite, const uint8_t *tx_key,
                          const uint8_t tx_iv[MTCSEC_IV_LEN],
                          const uint8_t *rx_key,
                          const uint8_t rx_iv[MTCSEC_IV_LEN], uint16_t key_id,
                          mtcsec_tstamp expiry) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);

  if (ch == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(ch, 0, sizeof(*ch));
  if (crypto == NULL || sp == NULL || tx_key == NULL || tx_iv == NULL ||
      rx_key == NULL || rx_iv == NULL || sp->keylen > sizeof(ch->tx_key)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memcpy(ch->tx_key, tx_key, sp->keylen);
  memcpy(ch->rx_key, rx_key, sp->keylen);
  memcpy(ch->tx_iv, tx_iv, MTCSEC_IV_LEN);
  memcpy(ch->rx_iv, rx_iv, MTCSEC_IV_LEN);
  ch->crypto = crypto;
  ch->suite = suite;
  ch->keylen = sp->keylen;
  ch->taglen = sp->miclen;
  ch->key_id = key_id;
  ch->expiry = expiry;
  mtcsec_window_init(&ch->rx);
  ch->live = 1;
  return 0;
}

static void chan_nonce(uint8_t nonce[MTCSEC_IV_LEN],
                       const uint8_t iv[MTCSEC_IV_LEN], uint32_t seq) {
  int i;
  memcpy(nonce, iv, MTCSEC_IV_LEN);
  for (i = MTCSEC_IV_LEN - 1; i >= MTCSEC_IV_LEN - 4; i--) {
    nonce[i] ^= (uint8_t)seq;
    seq >>= 8;
  }
}

/* The lifetime is over: erase the keys (section 3, LIFETIME). */
static int chan_expire(mtcsec_chan *ch) {
  uint16_t key_id = ch->key_id;
  mtcsec_zeroize(ch, sizeof(*ch));
  ch->key_id = key_id;
  return MTCSEC_ERR_EXPIRED;
}

mtcsec_ssize mtcsec_chan_seal_live(mtcsec_chan *ch, uint8_t *dest,
                                   size_t destlen, const uint8_t *pt,
                                   size_t ptlen) {
  uint8_t nonce[MTCSEC_IV_LEN];
  size_t need = MTCSEC_RECORD_HDR_LEN + ptlen + ch->taglen;
  int rv;

  if (ch->tx_seq == MTCSEC_SEQ_INVALID) {
    return MTCSEC_ERR_EXHAUSTED;
  }
  if (destlen < need || need < ptlen) {
    return MTCSEC_ERR_NOBUF;
  }
  dest[0] = MTCSEC_MSG_RECORD;
  mtcsec_put_u16(dest + 1, ch->key_id);
  mtcsec_put_u32(dest + 3, ch->tx_seq);
  chan_nonce(nonce, ch->tx_iv, ch->tx_seq);
  rv = ch->crypto->ops->ccm_seal(ch->crypto->ctx, ch->tx_key, ch->keylen, nonce,
                                 dest, MTCSEC_RECORD_HDR_LEN, pt, ptlen,
                                 dest + MTCSEC_RECORD_HDR_LEN, ch->taglen);
  mtcsec_zeroize(nonce, sizeof(nonce));
  if (rv != 0) {
    mtcsec_zeroize(dest, need);
    return rv;
  }
  ch->tx_seq++;
  return (mtcsec_ssize)need;
}

mtcsec_ssize mtcsec_chan_seal(mtcsec_chan *ch, uint8_t *dest, size_t destlen,
                              const uint8_t *pt, size_t ptlen,
                              mtcsec_tstamp now) {
  if (ch == NULL || (pt == NULL && ptlen != 0) || dest == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (!ch->live) {
    return MTCSEC_ERR_INVALID_STATE;
  }
  if (now >= ch->expiry) {
    return chan_expire(ch);
  }
  return mtcsec_chan_seal_live(ch, dest, destlen, pt, ptlen);
}

mtcsec_ssize mtcsec_chan_open_live(mtcsec_chan *ch, uint8_t *dest,
                                   size_t destlen, const uint8_t *rec,
                                   size_t reclen, uint32_t seq) {
  uint8_t nonce[MTCSEC_IV_LEN];
  size_t ptlen = reclen - MTCSEC_RECORD_HDR_LEN - ch->taglen;
  int rv;

  if (seq == MTCSEC_SEQ_INVALID || mtcsec_window_step(&ch->rx, seq, NULL)) {
    return MTCSEC_ERR_REPLAY;
  }
  if (destlen < ptlen) {
    return MTCSEC_ERR_NOBUF;
  }
  chan_nonce(nonce, ch->rx_iv, seq);
  rv = ch->crypto->ops->ccm_open(
    ch->crypto->ctx, ch->rx_key, ch->keylen, nonce, rec, MTCSEC_RECORD_HDR_LEN,
    rec + MTCSEC_RECORD_HDR_LEN, reclen - MTCSEC_RECORD_HDR_LEN, dest,
    ch->taglen);
  mtcsec_zeroize(nonce, sizeof(nonce));
  if (rv != 0) {
    return rv;
  }
  /* Only an authentic record moves the window. */
  (void)mtcsec_window_step(&ch->rx, seq, &ch->rx);
  return (mtcsec_ssize)ptlen;
}

mtcsec_ssize mtcsec_chan_open(mtcsec_chan *ch, uint8_t *dest, size_t destlen,
                              const uint8_t *rec, size_t reclen,
                              mtcsec_tstamp now) {
  mtcsec_record_hdr h;
  int rv;

  if (ch == NULL || rec == NULL || (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (!ch->live) {
    return MTCSEC_ERR_INVALID_STATE;
  }
  rv = mtcsec_record_hdr_decode(&h, rec, reclen, ch->taglen);
  if (rv != 0) {
    return rv;
  }
  if (h.key_id != ch->key_id) {
    return MTCSEC_ERR_MISMATCH;
  }
  if (now >= ch->expiry) {
    return chan_expire(ch);
  }
  return mtcsec_chan_open_live(ch, dest, destlen, rec, reclen, h.seq);
}

void mtcsec_chan_deinit(mtcsec_chan *ch) {
  if (ch != NULL) {
    mtcsec_zeroize(ch, sizeof(*ch));
  }
}
