/*
 * Direct channel, PROTOCOL.md section 6.
 *
 *   record = 0x16 || key_id(2) || seq(4) || ciphertext || tag(t)
 *   nonce  = IV XOR (0^9 || seq), AAD = the 7 header bytes
 */
#include <string.h>

#include <mtcsec/channel.h>
#include <mtcsec/codec.h>

#include "core/util.h"

int mtcsec_chan_init(mtcsec_chan *ch, const mtcsec_crypto *crypto,
                     uint8_t suite, mtcsec_chan_end end, const uint8_t *dmkey,
                     uint16_t key_id, mtcsec_tstamp expiry) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  int rv;

  if (ch == NULL || crypto == NULL || dmkey == NULL || sp == NULL ||
      (end != MTCSEC_CHAN_DEVICE && end != MTCSEC_CHAN_UE)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(ch, 0, sizeof(*ch));
  if (end == MTCSEC_CHAN_DEVICE) {
    rv = mtcsec_chan_derive(crypto, suite, dmkey, key_id, ch->tx_key, ch->tx_iv,
                            ch->rx_key, ch->rx_iv);
  } else {
    rv = mtcsec_chan_derive(crypto, suite, dmkey, key_id, ch->rx_key, ch->rx_iv,
                            ch->tx_key, ch->tx_iv);
  }
  if (rv != 0) {
    mtcsec_zeroize(ch, sizeof(*ch));
    return rv;
  }
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
  uint8_t s[4];
  int i;
  memcpy(nonce, iv, MTCSEC_IV_LEN);
  mtcsec_put_u32(s, seq);
  for (i = 0; i < 4; i++) {
    nonce[9 + i] ^= s[i];
  }
}

/* The lifetime is over: erase the keys (section 3, LIFETIME). */
static int chan_expire(mtcsec_chan *ch) {
  uint16_t key_id = ch->key_id;
  mtcsec_zeroize(ch, sizeof(*ch));
  ch->key_id = key_id;
  return MTCSEC_ERR_EXPIRED;
}

mtcsec_ssize mtcsec_chan_seal(mtcsec_chan *ch, uint8_t *dest, size_t destlen,
                              const uint8_t *pt, size_t ptlen,
                              mtcsec_tstamp now) {
  uint8_t nonce[MTCSEC_IV_LEN];
  size_t need;
  int rv;

  if (ch == NULL || (pt == NULL && ptlen != 0) || dest == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (!ch->live) {
    return MTCSEC_ERR_INVALID_STATE;
  }
  if (now >= ch->expiry) {
    return chan_expire(ch);
  }
  if (ch->tx_seq == MTCSEC_SEQ_INVALID) {
    return MTCSEC_ERR_EXHAUSTED;
  }
  need = MTCSEC_RECORD_HDR_LEN + ptlen + ch->taglen;
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

mtcsec_ssize mtcsec_chan_open(mtcsec_chan *ch, uint8_t *dest, size_t destlen,
                              const uint8_t *rec, size_t reclen,
                              mtcsec_tstamp now) {
  uint8_t nonce[MTCSEC_IV_LEN];
  mtcsec_record_hdr h;
  size_t ptlen;
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
  if (h.seq == MTCSEC_SEQ_INVALID || mtcsec_window_check(&ch->rx, h.seq)) {
    return MTCSEC_ERR_REPLAY;
  }
  ptlen = reclen - MTCSEC_RECORD_HDR_LEN - ch->taglen;
  if (destlen < ptlen) {
    return MTCSEC_ERR_NOBUF;
  }
  chan_nonce(nonce, ch->rx_iv, h.seq);
  rv = ch->crypto->ops->ccm_open(
    ch->crypto->ctx, ch->rx_key, ch->keylen, nonce, rec, MTCSEC_RECORD_HDR_LEN,
    rec + MTCSEC_RECORD_HDR_LEN, reclen - MTCSEC_RECORD_HDR_LEN, dest,
    ch->taglen);
  mtcsec_zeroize(nonce, sizeof(nonce));
  if (rv != 0) {
    return rv;
  }
  /* Only an authentic record moves the window. */
  mtcsec_window_update(&ch->rx, h.seq);
  return (mtcsec_ssize)ptlen;
}

void mtcsec_chan_deinit(mtcsec_chan *ch) {
  if (ch != NULL) {
    mtcsec_zeroize(ch, sizeof(*ch));
  }
}
