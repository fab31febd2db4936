/*
 * Deterministic-random wrapper provider: tests and the vector program only
 * (never installed, never linked into a device or daemon build).
 *
 * It forwards mac, ccm_seal, ccm_open, aes_block and aes_ctr to a base
 * provider and serves random first from a queue of bytes the caller pushed
 * (so a test can dictate the next nonce), then from a seeded splitmix64
 * generator, so every run with the same seed sees the same bytes.  The
 * generator is NOT cryptographically secure.
 */
#ifndef MTCSEC_CRYPTO_PROVIDER_FIXED_H
#define MTCSEC_CRYPTO_PROVIDER_FIXED_H

#include <mtcsec/crypto.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Bytes mtcsec_fixed_push() can hold at once. */
#define MTCSEC_FIXED_QUEUE_LEN 256

/**
 * The wrapper.  Caller-owned; fields are private.  ops is a per-instance
 * copy so that optional ops the base lacks (aes_block, aes_ctr) stay NULL.
 */
typedef struct mtcsec_fixed {
  mtcsec_crypto self;
  mtcsec_crypto_ops ops;
  const mtcsec_crypto *base;
  uint8_t queue[MTCSEC_FIXED_QUEUE_LEN];
  size_t head, len;
  uint64_t state;
  /* Generator bytes not yet served, so the stream does not depend on how
   * it is split across calls. */
  uint64_t word;
  unsigned word_left;
} mtcsec_fixed;

/**
 * Initialises f over base (which must outlive f) with the generator seeded
 * by seed and an empty queue.
 */
void mtcsec_fixed_init(mtcsec_fixed *f, const mtcsec_crypto *base,
                       uint64_t seed);

/**
 * Appends n bytes to the queue served by random before the generator.
 * Returns 0, or MTCSEC_ERR_NOBUF (nothing queued) when they do not fit.
 */
int mtcsec_fixed_push(mtcsec_fixed *f, const uint8_t *b, size_t n);

/** Returns the number of queued bytes not yet consumed. */
size_t mtcsec_fixed_pending(const mtcsec_fixed *f);

/** Returns the provider to pass to the library (points into f). */
const mtcsec_crypto *mtcsec_fixed_crypto(mtcsec_fixed *f);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_CRYPTO_PROVIDER_FIXED_H */
