/*
 * Mbed TLS crypto provider (device builds).
 *
 * All state lives in a caller-owned mtcsec_mbedtls_state (a static or stack
 * object on a device); the provider itself never allocates.  Randomness
 * comes from a callback the device supplies (its TRNG or a DRBG on top of
 * it), with the signature of Mbed TLS's f_rng.
 *
 * Allocation note: Mbed TLS allocates inside some of its set-up functions
 * (mbedtls_cipher_setup() callocs the AES context, the first
 * mbedtls_cipher_cmac_starts() callocs the CMAC state, mbedtls_md_setup()
 * callocs the hash and HMAC pad state, mbedtls_ccm_setkey() calls
 * mbedtls_cipher_setup()).  mtcsec_crypto_mbedtls_init() performs every one
 * of those set-ups once; the per-call operations only re-key the existing
 * contexts and never reach the allocator (with Mbed TLS 2.x; see
 * provider_mbedtls.c for 3.x).  A device without a heap can point Mbed TLS
 * at a static pool (MBEDTLS_MEMORY_BUFFER_ALLOC_C) sized for one init.
 *
 * Built and tested against Mbed TLS 2.28 (Debian 12's libmbedtls-dev).
 */
#ifndef MTCSEC_CRYPTO_MBEDTLS_H
#define MTCSEC_CRYPTO_MBEDTLS_H

#include <mtcsec/crypto.h>

#include <mbedtls/version.h>
#include <mbedtls/aes.h>
#include <mbedtls/ccm.h>
#include <mbedtls/cipher.h>
#include <mbedtls/cmac.h>
#include <mbedtls/md.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Defined when the Mbed TLS build has HMAC-SHA-256 (suites 0x02, 0x03). */
#if defined(MBEDTLS_MD_C) && defined(MBEDTLS_SHA256_C)
#  define MTCSEC_MBEDTLS_HAVE_HMAC 1
#endif

/**
 * Provider state.  Fields are private; the struct is visible only so that
 * the caller can own it.  The 256-bit contexts exist only when the build
 * supports 32-byte keys (MTCSEC_CFG_MAX_KEY_LEN, config.h).
 */
typedef struct mtcsec_mbedtls_state {
  /* AES-ECB cipher contexts with CMAC state, one per key size. */
  mbedtls_cipher_context_t cmac128;
#if MTCSEC_CFG_MAX_KEY_LEN >= 32
  mbedtls_cipher_context_t cmac256;
#endif
#ifdef MTCSEC_MBEDTLS_HAVE_HMAC
  /* SHA-256 context set up for HMAC. */
  mbedtls_md_context_t hmac;
#endif
  /* CCM contexts, one per key size (their ECB context is re-keyed). */
  mbedtls_ccm_context ccm128;
#if MTCSEC_CFG_MAX_KEY_LEN >= 32
  mbedtls_ccm_context ccm256;
#endif
  /* Plain AES for aes_block and aes_ctr (no allocation at all). */
  mbedtls_aes_context aes;
  int (*rng)(void *p_rng, unsigned char *out, size_t len);
  void *rng_ctx;
} mtcsec_mbedtls_state;

/**
 * Sets up st and makes crypto a provider backed by it.  rng (not NULL) must
 * fill out with len cryptographically secure bytes and return 0, or return
 * nonzero on failure; it is called with rng_ctx.  st and rng_ctx must
 * outlive the provider.  Not callback-safe: call once at start-up.
 *
 * mac supports AES-CMAC with 16-byte keys (and 32-byte keys when
 * MTCSEC_CFG_MAX_KEY_LEN is 32) and, when MTCSEC_MBEDTLS_HAVE_HMAC is
 * defined, HMAC-SHA-256.  aes_ctr is NULL when Mbed TLS lacks
 * MBEDTLS_CIPHER_MODE_CTR.  ccm_seal/ccm_open accept AAD shorter than
 * 0xFF00 bytes (the limit of Mbed TLS 2.x) and messages up to 0xFFFF bytes.
 *
 * Returns 0, MTCSEC_ERR_INVALID_ARGUMENT (NULL argument), MTCSEC_ERR_NOMEM
 * (Mbed TLS could not allocate during set-up) or MTCSEC_ERR_CRYPTO.  On
 * failure crypto is left as {NULL, NULL} and st holds nothing to release.
 */
int mtcsec_crypto_mbedtls_init(mtcsec_crypto *crypto, mtcsec_mbedtls_state *st,
                               int (*rng)(void *p_rng, unsigned char *out,
                                          size_t len),
                               void *rng_ctx);

/**
 * Releases everything mtcsec_crypto_mbedtls_init() set up and zeroizes the
 * state (key schedules included).  Accepts a provider whose init failed and
 * a NULL crypto; crypto is left as {NULL, NULL}.
 */
void mtcsec_crypto_mbedtls_free(mtcsec_crypto *crypto);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_CRYPTO_MBEDTLS_H */
