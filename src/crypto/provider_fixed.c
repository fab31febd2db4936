/*
 * Deterministic-random wrapper provider (tests and the vector program only).
 * See provider_fixed.h.
 */
#include <string.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>

#include "crypto/provider_fixed.h"

static int fixed_mac(void *ctx, mtcsec_mac_alg alg, const uint8_t *key,
                     size_t keylen, const mtcsec_iov *iov, size_t iovcnt,
                     uint8_t *out, size_t outlen) {
  const mtcsec_fixed *f = ctx;
  return f->base->ops->mac(f->base->ctx, alg, key, keylen, iov, iovcnt, out,
                           outlen);
}

static int fixed_ccm_seal(void *ctx, const uint8_t *key, size_t keylen,
                          const uint8_t nonce[MTCSEC_IV_LEN],
                          const uint8_t *aad, size_t aadlen, const uint8_t *in,
                          size_t inlen, uint8_t *out, size_t taglen) {
  const mtcsec_fixed *f = ctx;
  return f->base->ops->ccm_seal(f->base->ctx, key, keylen, nonce, aad, aadlen,
                                in, inlen, out, taglen);
}

static int fixed_ccm_open(void *ctx, const uint8_t *key, size_t keylen,
                          const uint8_t nonce[MTCSEC_IV_LEN],
                          const uint8_t *aad, size_t aadlen, const uint8_t *in,
                          size_t inlen, uint8_t *out, size_t taglen) {
  const mtcsec_fixed *f = ctx;
  return f->base->ops->ccm_open(f->base->ctx, key, keylen, nonce, aad, aadlen,
                                in, inlen, out, taglen);
}

static int fixed_aes_block(void *ctx, const uint8_t *key, size_t keylen,
                           const uint8_t in[16], uint8_t out[16]) {
  const mtcsec_fixed *f = ctx;
  return f->base->ops->aes_block(f->base->ctx, key, keylen, in, out);
}

static int fixed_aes_ctr(void *ctx, const uint8_t *key, size_t keylen,
                         const uint8_t icb[16], const uint8_t *in, size_t len,
                         uint8_t *out) {
  const mtcsec_fixed *f = ctx;
  return f->base->ops->aes_ctr(f->base->ctx, key, keylen, icb, in, len, out);
}

/* splitmix64 (Steele, Lea, Flood 2014): tiny, seedable, test-only. */
static uint64_t fixed_next(mtcsec_fixed *f) {
  uint64_t z;
  f->state += UINT64_C(0x9e3779b97f4a7c15);
  z = f->state;
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static int fixed_random(void *ctx, uint8_t *out, size_t len) {
  mtcsec_fixed *f = ctx;
  size_t i;

  if (out == NULL && len != 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < len; i++) {
    if (f->len > 0) {
      out[i] = f->queue[f->head];
      f->head = (f->head + 1) % MTCSEC_FIXED_QUEUE_LEN;
      f->len--;
      continue;
    }
    if (f->word_left == 0) {
      f->word = fixed_next(f);
      f->word_left = 8;
    }
    out[i] = (uint8_t)(f->word >> 56);
    f->word <<= 8;
    f->word_left--;
  }
  return 0;
}

static const mtcsec_crypto_ops fixed_ops = {
  fixed_mac,       fixed_ccm_seal, fixed_ccm_open,
  fixed_aes_block, fixed_aes_ctr,  fixed_random,
};

void mtcsec_fixed_init(mtcsec_fixed *f, const mtcsec_crypto *base,
                       uint64_t seed) {
  memset(f, 0, sizeof(*f));
  f->base = base;
  f->state = seed;
  f->ops = fixed_ops;
  if (base->ops->aes_block == NULL) {
    f->ops.aes_block = NULL;
  }
  if (base->ops->aes_ctr == NULL) {
    f->ops.aes_ctr = NULL;
  }
  f->self.ops = &f->ops;
  f->self.ctx = f;
}

int mtcsec_fixed_push(mtcsec_fixed *f, const uint8_t *b, size_t n) {
  size_t i;
  if (n > MTCSEC_FIXED_QUEUE_LEN - f->len) {
    return MTCSEC_ERR_NOBUF;
  }
  if (n != 0 && b == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < n; i++) {
    f->queue[(f->head + f->len) % MTCSEC_FIXED_QUEUE_LEN] = b[i];
    f->len++;
  }
  return 0;
}

size_t mtcsec_fixed_pending(const mtcsec_fixed *f) { return f->len; }

const mtcsec_crypto *mtcsec_fixed_crypto(mtcsec_fixed *f) { return &f->self; }
