/*
 * Mbed TLS crypto provider (device builds).  See crypto_mbedtls.h.
 *
 * Every Mbed TLS set-up that allocates runs once, in
 * mtcsec_crypto_mbedtls_init().  The operations then only re-key:
 *  - CMAC: mbedtls_cipher_setkey() on the ECB context plus
 *    mbedtls_cipher_cmac_reset().  mbedtls_cipher_cmac_starts() must not be
 *    called per operation: it callocs a fresh CMAC state each time and
 *    overwrites (leaks) the previous one.  The subkeys K1/K2 are derived from
 *    the current cipher key inside mbedtls_cipher_cmac_finish(), so re-keying
 *    the cipher context is enough.
 *  - HMAC: mbedtls_md_hmac_starts() re-keys a context set up with hmac = 1.
 *  - CCM: mbedtls_ccm_setkey() frees and re-creates its cipher context
 *    (calloc), so with Mbed TLS 2.x we re-key that ECB context directly.
 *  - AES block and CTR: mbedtls_aes_context needs no allocation.
 * Contexts keep the key schedule of the last call until the next call or
 * mtcsec_crypto_mbedtls_free(), which zeroizes them.
 */
#include <string.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/crypto_mbedtls.h>

#if !defined(MBEDTLS_AES_C) || !defined(MBEDTLS_CIPHER_C) ||                   \
  !defined(MBEDTLS_CMAC_C) || !defined(MBEDTLS_CCM_C)
#  error                                                                       \
    "mtcsec needs MBEDTLS_AES_C, MBEDTLS_CIPHER_C, MBEDTLS_CMAC_C and MBEDTLS_CCM_C"
#endif

/* Mbed TLS 2.x caps CCM's AAD below 2^16 - 2^8 bytes; both providers share
 * the limit so they accept the same inputs.  L = 2 caps the message. */
#define MBED_CCM_MAX_AAD 0xff00u
#define MBED_CCM_MAX_MSG 0xffffu

static const uint8_t mbed_zero_key[32];

static mbedtls_cipher_context_t *mbed_cmac_ctx(mtcsec_mbedtls_state *st,
                                               size_t keylen) {
  if (keylen == 16) {
    return &st->cmac128;
  }
#if MTCSEC_CFG_MAX_KEY_LEN >= 32
  if (keylen == 32) {
    return &st->cmac256;
  }
#endif
  return NULL;
}

static mbedtls_ccm_context *mbed_ccm_ctx(mtcsec_mbedtls_state *st,
                                         size_t keylen) {
  if (keylen == 16) {
    return &st->ccm128;
  }
#if MTCSEC_CFG_MAX_KEY_LEN >= 32
  if (keylen == 32) {
    return &st->ccm256;
  }
#endif
  return NULL;
}

static int mbed_aes_keylen_ok(size_t keylen) {
  return keylen == 16 || (MTCSEC_CFG_MAX_KEY_LEN >= 32 && keylen == 32);
}

static int mbed_cmac(mtcsec_mbedtls_state *st, const uint8_t *key,
                     size_t keylen, const mtcsec_iov *iov, size_t iovcnt,
                     uint8_t full[MTCSEC_CMAC_LEN]) {
  mbedtls_cipher_context_t *c = mbed_cmac_ctx(st, keylen);
  size_t i;

  if (c == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (mbedtls_cipher_setkey(c, key, (int)(keylen * 8), MBEDTLS_ENCRYPT) != 0 ||
      mbedtls_cipher_cmac_reset(c) != 0) {
    return MTCSEC_ERR_CRYPTO;
  }
  for (i = 0; i < iovcnt; i++) {
    if (iov[i].len == 0) {
      continue;
    }
    if (mbedtls_cipher_cmac_update(c, iov[i].base, iov[i].len) != 0) {
      return MTCSEC_ERR_CRYPTO;
    }
  }
  return mbedtls_cipher_cmac_finish(c, full) == 0 ? 0 : MTCSEC_ERR_CRYPTO;
}

#ifdef MTCSEC_MBEDTLS_HAVE_HMAC
static int mbed_hmac(mtcsec_mbedtls_state *st, const uint8_t *key,
                     size_t keylen, const mtcsec_iov *iov, size_t iovcnt,
                     uint8_t full[MTCSEC_HMAC_SHA256_LEN]) {
  size_t i;

  if (keylen == 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (mbedtls_md_hmac_starts(&st->hmac, key, keylen) != 0) {
    return MTCSEC_ERR_CRYPTO;
  }
  for (i = 0; i < iovcnt; i++) {
    if (iov[i].len == 0) {
      continue;
    }
    if (mbedtls_md_hmac_update(&st->hmac, iov[i].base, iov[i].len) != 0) {
      return MTCSEC_ERR_CRYPTO;
    }
  }
  return mbedtls_md_hmac_finish(&st->hmac, full) == 0 ? 0 : MTCSEC_ERR_CRYPTO;
}
#endif

static int mbed_mac(void *ctx, mtcsec_mac_alg alg, const uint8_t *key,
                    size_t keylen, const mtcsec_iov *iov, size_t iovcnt,
                    uint8_t *out, size_t outlen) {
  mtcsec_mbedtls_state *st = ctx;
  uint8_t full[MTCSEC_HMAC_SHA256_LEN];
  size_t maclen, i;
  int rv = MTCSEC_ERR_INVALID_ARGUMENT;

  switch (alg) {
  case MTCSEC_MAC_AES_CMAC:
    maclen = MTCSEC_CMAC_LEN;
    break;
#ifdef MTCSEC_MBEDTLS_HAVE_HMAC
  case MTCSEC_MAC_HMAC_SHA256:
    maclen = MTCSEC_HMAC_SHA256_LEN;
    break;
#endif
  default:
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (key == NULL || out == NULL || outlen == 0 || outlen > maclen ||
      (iov == NULL && iovcnt != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < iovcnt; i++) {
    if (iov[i].base == NULL && iov[i].len != 0) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
  }

  if (alg == MTCSEC_MAC_AES_CMAC) {
    rv = mbed_cmac(st, key, keylen, iov, iovcnt, full);
  }
#ifdef MTCSEC_MBEDTLS_HAVE_HMAC
  else {
    rv = mbed_hmac(st, key, keylen, iov, iovcnt, full);
  }
#endif
  if (rv == 0) {
    memcpy(out, full, outlen);
  }
  mtcsec_zeroize(full, sizeof(full));
  return rv;
}

static int ccm_taglen_ok(size_t taglen) {
  return taglen >= 4 && taglen <= 16 && (taglen & 1) == 0;
}

/* Re-keys the CCM context without a new set-up (see the file comment). */
static int mbed_ccm_rekey(mbedtls_ccm_context *ccm, const uint8_t *key,
                          size_t keylen) {
#if MBEDTLS_VERSION_MAJOR < 3
  return mbedtls_cipher_setkey(&ccm->cipher_ctx, key, (int)(keylen * 8),
                               MBEDTLS_ENCRYPT);
#else
  /* Mbed TLS 3.x makes the member private; mbedtls_ccm_setkey() set-up
   * allocates there unless MBEDTLS_BLOCK_CIPHER_C is enabled. */
  return mbedtls_ccm_setkey(ccm, MBEDTLS_CIPHER_ID_AES, key,
                            (unsigned int)(keylen * 8));
#endif
}

static int mbed_ccm_seal(void *ctx, const uint8_t *key, size_t keylen,
                         const uint8_t nonce[MTCSEC_IV_LEN], const uint8_t *aad,
                         size_t aadlen, const uint8_t *in, size_t inlen,
                         uint8_t *out, size_t taglen) {
  mtcsec_mbedtls_state *st = ctx;
  mbedtls_ccm_context *ccm = mbed_ccm_ctx(st, keylen);

  if (ccm == NULL || key == NULL || nonce == NULL || !ccm_taglen_ok(taglen) ||
      out == NULL || (in == NULL && inlen != 0) ||
      (aad == NULL && aadlen != 0) || inlen > MBED_CCM_MAX_MSG ||
      aadlen >= MBED_CCM_MAX_AAD) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (mbed_ccm_rekey(ccm, key, keylen) != 0) {
    return MTCSEC_ERR_CRYPTO;
  }
  /* In place (out == in) is supported by Mbed TLS's CCM. */
  if (mbedtls_ccm_encrypt_and_tag(ccm, inlen, nonce, MTCSEC_IV_LEN, aad, aadlen,
                                  in, out, out + inlen, taglen) != 0) {
    return MTCSEC_ERR_CRYPTO;
  }
  return 0;
}

static int mbed_ccm_open(void *ctx, const uint8_t *key, size_t keylen,
                         const uint8_t nonce[MTCSEC_IV_LEN], const uint8_t *aad,
                         size_t aadlen, const uint8_t *in, size_t inlen,
                         uint8_t *out, size_t taglen) {
  mtcsec_mbedtls_state *st = ctx;
  mbedtls_ccm_context *ccm = mbed_ccm_ctx(st, keylen);
  uint8_t tag[16];
  size_t ctlen;
  int ret;
  int rv = MTCSEC_ERR_INVALID_ARGUMENT;

  if (ccm == NULL || key == NULL || nonce == NULL || !ccm_taglen_ok(taglen) ||
      in == NULL || inlen < taglen || (aad == NULL && aadlen != 0) ||
      inlen - taglen > MBED_CCM_MAX_MSG || aadlen >= MBED_CCM_MAX_AAD ||
      (out == NULL && inlen != taglen)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  ctlen = inlen - taglen;
  /* Copy the tag first: out may equal in. */
  memcpy(tag, in + ctlen, taglen);

  rv = MTCSEC_ERR_CRYPTO;
  if (mbed_ccm_rekey(ccm, key, keylen) != 0) {
    goto cleanup;
  }
  ret = mbedtls_ccm_auth_decrypt(ccm, ctlen, nonce, MTCSEC_IV_LEN, aad, aadlen,
                                 in, out, tag, taglen);
  if (ret == MBEDTLS_ERR_CCM_AUTH_FAILED) {
    rv = MTCSEC_ERR_MIC;
    goto cleanup;
  }
  if (ret != 0) {
    goto cleanup;
  }
  rv = 0;

cleanup:
  if (rv != 0 && out != NULL) {
    mtcsec_zeroize(out, ctlen);
  }
  mtcsec_zeroize(tag, sizeof(tag));
  return rv;
}

static int mbed_aes_block(void *ctx, const uint8_t *key, size_t keylen,
                          const uint8_t in[16], uint8_t out[16]) {
  mtcsec_mbedtls_state *st = ctx;

  if (!mbed_aes_keylen_ok(keylen) || key == NULL || in == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (mbedtls_aes_setkey_enc(&st->aes, key, (unsigned int)(keylen * 8)) != 0 ||
      mbedtls_aes_crypt_ecb(&st->aes, MBEDTLS_AES_ENCRYPT, in, out) != 0) {
    return MTCSEC_ERR_CRYPTO;
  }
  return 0;
}

#if defined(MBEDTLS_CIPHER_MODE_CTR)
static int mbed_aes_ctr(void *ctx, const uint8_t *key, size_t keylen,
                        const uint8_t icb[16], const uint8_t *in, size_t len,
                        uint8_t *out) {
  mtcsec_mbedtls_state *st = ctx;
  uint8_t counter[16];
  uint8_t stream[16];
  size_t off = 0;
  int rv = MTCSEC_ERR_INVALID_ARGUMENT;

  if (!mbed_aes_keylen_ok(keylen) || key == NULL || icb == NULL ||
      (len != 0 && (in == NULL || out == NULL))) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memcpy(counter, icb, sizeof(counter));
  rv = MTCSEC_ERR_CRYPTO;
  if (mbedtls_aes_setkey_enc(&st->aes, key, (unsigned int)(keylen * 8)) != 0) {
    goto cleanup;
  }
  /* mbedtls_aes_crypt_ctr() increments the whole 128-bit block,
   * big-endian, as 128-EEA2 needs. */
  if (len != 0 && mbedtls_aes_crypt_ctr(&st->aes, len, &off, counter, stream,
                                        in, out) != 0) {
    goto cleanup;
  }
  rv = 0;

cleanup:
  mtcsec_zeroize(counter, sizeof(counter));
  mtcsec_zeroize(stream, sizeof(stream));
  return rv;
}
#endif

static int mbed_random(void *ctx, uint8_t *out, size_t len) {
  mtcsec_mbedtls_state *st = ctx;
  if (out == NULL && len != 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (len == 0) {
    return 0;
  }
  return st->rng(st->rng_ctx, out, len) == 0 ? 0 : MTCSEC_ERR_CRYPTO;
}

static const mtcsec_crypto_ops mbed_ops = {
  mbed_mac,     mbed_ccm_seal, mbed_ccm_open, mbed_aes_block,
#if defined(MBEDTLS_CIPHER_MODE_CTR)
  mbed_aes_ctr,
#else
  NULL,
#endif
  mbed_random,
};

static void mbed_state_free(mtcsec_mbedtls_state *st) {
  /* Each _free zeroizes its context and what it allocated. */
  mbedtls_cipher_free(&st->cmac128);
#if MTCSEC_CFG_MAX_KEY_LEN >= 32
  mbedtls_cipher_free(&st->cmac256);
#endif
#ifdef MTCSEC_MBEDTLS_HAVE_HMAC
  mbedtls_md_free(&st->hmac);
#endif
  mbedtls_ccm_free(&st->ccm128);
#if MTCSEC_CFG_MAX_KEY_LEN >= 32
  mbedtls_ccm_free(&st->ccm256);
#endif
  mbedtls_aes_free(&st->aes);
  mtcsec_zeroize(st, sizeof(*st));
}

/* Maps a set-up failure: allocation failures become MTCSEC_ERR_NOMEM. */
static int mbed_setup_err(int ret) {
  switch (ret) {
  case MBEDTLS_ERR_CIPHER_ALLOC_FAILED:
  case MBEDTLS_ERR_MD_ALLOC_FAILED:
    return MTCSEC_ERR_NOMEM;
  default:
    return MTCSEC_ERR_CRYPTO;
  }
}

/* ECB cipher context with its CMAC state allocated (once). */
static int mbed_cmac_setup(mbedtls_cipher_context_t *c,
                           mbedtls_cipher_type_t type, size_t keylen) {
  const mbedtls_cipher_info_t *info = mbedtls_cipher_info_from_type(type);
  int ret;
  if (info == NULL) {
    return MTCSEC_ERR_CRYPTO;
  }
  ret = mbedtls_cipher_setup(c, info);
  if (ret == 0) {
    ret = mbedtls_cipher_cmac_starts(c, mbed_zero_key, keylen * 8);
  }
  return ret == 0 ? 0 : mbed_setup_err(ret);
}

static int mbed_ccm_setup(mbedtls_ccm_context *ccm, size_t keylen) {
  int ret = mbedtls_ccm_setkey(ccm, MBEDTLS_CIPHER_ID_AES, mbed_zero_key,
                               (unsigned int)(keylen * 8));
  return ret == 0 ? 0 : mbed_setup_err(ret);
}

int mtcsec_crypto_mbedtls_init(mtcsec_crypto *crypto, mtcsec_mbedtls_state *st,
                               int (*rng)(void *p_rng, unsigned char *out,
                                          size_t len),
                               void *rng_ctx) {
  int rv;

  if (crypto == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  crypto->ops = NULL;
  crypto->ctx = NULL;
  if (st == NULL || rng == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }

  memset(st, 0, sizeof(*st));
  mbedtls_cipher_init(&st->cmac128);
#if MTCSEC_CFG_MAX_KEY_LEN >= 32
  mbedtls_cipher_init(&st->cmac256);
#endif
#ifdef MTCSEC_MBEDTLS_HAVE_HMAC
  mbedtls_md_init(&st->hmac);
#endif
  mbedtls_ccm_init(&st->ccm128);
#if MTCSEC_CFG_MAX_KEY_LEN >= 32
  mbedtls_ccm_init(&st->ccm256);
#endif
  mbedtls_aes_init(&st->aes);
  st->rng = rng;
  st->rng_ctx = rng_ctx;

  rv = mbed_cmac_setup(&st->cmac128, MBEDTLS_CIPHER_AES_128_ECB, 16);
  if (rv != 0) {
    goto cleanup;
  }
#if MTCSEC_CFG_MAX_KEY_LEN >= 32
  rv = mbed_cmac_setup(&st->cmac256, MBEDTLS_CIPHER_AES_256_ECB, 32);
  if (rv != 0) {
    goto cleanup;
  }
#endif
#ifdef MTCSEC_MBEDTLS_HAVE_HMAC
  {
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    int ret = md == NULL ? -1 : mbedtls_md_setup(&st->hmac, md, 1);
    if (ret != 0) {
      rv = mbed_setup_err(ret);
      goto cleanup;
    }
  }
#endif
  rv = mbed_ccm_setup(&st->ccm128, 16);
  if (rv != 0) {
    goto cleanup;
  }
#if MTCSEC_CFG_MAX_KEY_LEN >= 32
  rv = mbed_ccm_setup(&st->ccm256, 32);
  if (rv != 0) {
    goto cleanup;
  }
#endif

  crypto->ops = &mbed_ops;
  crypto->ctx = st;
  return 0;

cleanup:
  mbed_state_free(st);
  return rv;
}

void mtcsec_crypto_mbedtls_free(mtcsec_crypto *crypto) {
  if (crypto == NULL) {
    return;
  }
  if (crypto->ctx != NULL) {
    mbed_state_free(crypto->ctx);
  }
  crypto->ops = NULL;
  crypto->ctx = NULL;
}
