/*
 * Crypto provider interface.
 *
 * The protocol core never calls a crypto library itself: it calls a provider,
 * a table of function pointers plus a context.  Two real providers ship with
 * mtcsec: OpenSSL 3 (hosts: daemon, agents, tools) and Mbed TLS (device
 * builds).  Both reproduce the same test vectors.  mtcsec implements none of
 * AES, CMAC, HMAC or CCM; it only composes the SP 800-108 counter-mode KDF
 * (section 2 of PROTOCOL.md) over the provider's MAC, see mtcsec_kdf().
 *
 * A provider instance is not thread-safe: its contexts are created once and
 * reused for every call, so use one instance per thread.
 */
#ifndef MTCSEC_CRYPTO_H
#define MTCSEC_CRYPTO_H

#include <mtcsec/mtcsec.h>

#ifdef __cplusplus
extern "C" {
#endif

/** MAC algorithms. */
typedef enum mtcsec_mac_alg {
  /** AES-CMAC (SP 800-38B, RFC 4493); key 16 (AES-128) or 32 (AES-256). */
  MTCSEC_MAC_AES_CMAC = 1,
  /** HMAC-SHA-256 (FIPS 198-1, RFC 4231); any key length. */
  MTCSEC_MAC_HMAC_SHA256 = 2
} mtcsec_mac_alg;

/** Full output length of each MAC: 16 for CMAC, 32 for HMAC-SHA-256. */
#define MTCSEC_CMAC_LEN 16
#define MTCSEC_HMAC_SHA256_LEN 32

/** One piece of a scattered input. */
typedef struct mtcsec_iov {
  const uint8_t *base;
  size_t len;
} mtcsec_iov;

/**
 * Provider operations.  Every function receives the provider's ctx first and
 * returns 0 or a negative mtcsec_err (MTCSEC_ERR_CRYPTO for a library
 * failure, MTCSEC_ERR_INVALID_ARGUMENT for an unsupported key length).
 * Key buffers are only read during the call.  Because contexts are reused,
 * a provider keeps recent keys inside its contexts: the Mbed TLS provider
 * the last key schedule, the OpenSSL provider up to three keyed MAC
 * contexts per algorithm together with a copy of their keys (to recognise
 * them).  They stay until replaced by other keys or until the provider is
 * released, which wipes them: erasing a key in the caller does not erase
 * it from the provider, so release the provider where that matters.  Limits of
 * both providers: CCM AAD < 0xFF00 bytes and messages <= 0xFFFF bytes; MAC keys
 * are never empty.
 */
typedef struct mtcsec_crypto_ops {
  /**
   * MAC over the concatenation of iovcnt pieces.  Writes the first outlen
   * bytes of the MAC to out (truncation, section 2); outlen must be between
   * 1 and the full MAC length.
   */
  int (*mac)(void *ctx, mtcsec_mac_alg alg, const uint8_t *key, size_t keylen,
             const mtcsec_iov *iov, size_t iovcnt, uint8_t *out, size_t outlen);
  /**
   * AES-CCM encryption (RFC 3610 / SP 800-38C) with a 13-byte nonce.  key is
   * 16 or 32 bytes; taglen is 4, 6, 8, 10, 12, 14 or 16.  Writes inlen bytes
   * of ciphertext followed by taglen bytes of tag to out (inlen + taglen
   * bytes in all).  out may equal in; no other overlap.
   */
  int (*ccm_seal)(void *ctx, const uint8_t *key, size_t keylen,
                  const uint8_t nonce[MTCSEC_IV_LEN], const uint8_t *aad,
                  size_t aadlen, const uint8_t *in, size_t inlen, uint8_t *out,
                  size_t taglen);
  /**
   * AES-CCM decryption: in is ciphertext || tag (inlen >= taglen); writes
   * inlen - taglen bytes of plaintext to out.  Returns MTCSEC_ERR_MIC when
   * the tag does not verify, in which case out is zeroed.  out may equal in.
   */
  int (*ccm_open)(void *ctx, const uint8_t *key, size_t keylen,
                  const uint8_t nonce[MTCSEC_IV_LEN], const uint8_t *aad,
                  size_t aadlen, const uint8_t *in, size_t inlen, uint8_t *out,
                  size_t taglen);
  /**
   * One AES block encryption (ECB of one block), key 16 or 32 bytes.  Used
   * only by the cellular mode (128-EIA2 of bit-granular messages needs the
   * CMAC subkey input L = AES(K, 0^128)).  May be NULL on device builds.
   */
  int (*aes_block)(void *ctx, const uint8_t *key, size_t keylen,
                   const uint8_t in[16], uint8_t out[16]);
  /**
   * AES-CTR with a 16-byte initial counter block, incremented as a 128-bit
   * big-endian integer (128-EEA2, TS 33.401 B.1.3).  out may equal in.  May
   * be NULL on device builds.
   */
  int (*aes_ctr)(void *ctx, const uint8_t *key, size_t keylen,
                 const uint8_t icb[16], const uint8_t *in, size_t len,
                 uint8_t *out);
  /** Fills out with len bytes from a cryptographically secure generator. */
  int (*random)(void *ctx, uint8_t *out, size_t len);
} mtcsec_crypto_ops;

/** A provider instance: the ops table and its context. */
typedef struct mtcsec_crypto {
  const mtcsec_crypto_ops *ops;
  void *ctx;
} mtcsec_crypto;

/** The longest label mtcsec_kdf() accepts. */
#define MTCSEC_KDF_MAX_LABEL 64
/** The longest context mtcsec_kdf() accepts. */
#define MTCSEC_KDF_MAX_CONTEXT 64

/**
 * NIST SP 800-108 KDF in counter mode (section 2): for i = 1, 2, ...
 *   K(i) = PRF(key, [i]32 || label || 0x00 || context || [L]32)
 * with L = 8 * outlen, concatenated and truncated to outlen bytes.  This is
 * OpenSSL's "KBKDF" with its defaults (salt = label, info = context).  The
 * PRF is the provider's mac with alg.
 *
 * label (labellen <= MTCSEC_KDF_MAX_LABEL) and context (contextlen <=
 * MTCSEC_KDF_MAX_CONTEXT) may be NULL only when their length is 0.  outlen
 * must be 1..1024.  Intermediate blocks are zeroized.
 *
 * Returns 0, MTCSEC_ERR_INVALID_ARGUMENT or the provider's error; out is
 * zeroed on failure.
 */
int mtcsec_kdf(const mtcsec_crypto *crypto, mtcsec_mac_alg alg,
               const uint8_t *key, size_t keylen, const char *label,
               size_t labellen, const uint8_t *context, size_t contextlen,
               uint8_t *out, size_t outlen);

/**
 * OpenSSL 3 provider (hosts).  mtcsec_crypto_openssl_new() fetches the
 * algorithms and creates every context once; the calls reuse them.  Returns
 * 0, MTCSEC_ERR_NOMEM or MTCSEC_ERR_CRYPTO.  Release with
 * mtcsec_crypto_openssl_del(), which accepts a provider whose new() failed.
 * Available in host builds (not with MTCSEC_DEVICE_ONLY).
 */
int mtcsec_crypto_openssl_new(mtcsec_crypto *crypto);
void mtcsec_crypto_openssl_del(mtcsec_crypto *crypto);

/**
 * Mbed TLS provider (device builds).  Allocation-free: state lives in the
 * caller's mtcsec_mbedtls_state (see crypto_mbedtls.h).  Declared there so
 * that this header does not pull in Mbed TLS.
 */

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_CRYPTO_H */
