/*
 * SQLite store: unwrapping device records on the hot path (every M2 reads
 * its device's wrapped K_auth and K_dm).
 *
 * The algorithm is RFC 5649 (AES key wrap with padding), as in kek.c, which
 * wraps with OpenSSL's "AES-256-WRAP-PAD" EVP cipher.  In OpenSSL 3.0 that
 * cipher runs the table-based software AES (AES_decrypt), about 8 us per
 * 56-byte record on this machine: a third of a worker's CPU per exchange.
 * Here the same unwrap is OpenSSL's own RFC 5649 code,
 * CRYPTO_128_unwrap_pad() (default alternative IV, integrity check and
 * padding check included), over the AES-256 block decryption of an EVP
 * "AES-256-ECB" context keyed once with the KEK, which uses AES-NI where
 * the CPU has it: about 1 us.  Same input, same output, same refusals
 * (tests/store/test_sqlite_unwrap.c compares the two on every length and
 * on altered records).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/modes.h>

#include "core/util.h"
#include "store/sqlite_schema.h"

struct mtcsec_sq_unwrapper {
  EVP_CIPHER *cipher;
  EVP_CIPHER_CTX *ecb; /* AES-256 decryption under the KEK, no padding */
};

/* The block function CRYPTO_128_unwrap_pad() calls; key is an sq_blk. */
typedef struct sq_blk {
  EVP_CIPHER_CTX *ecb;
  int *failed;
} sq_blk;

static void sq_aes_decrypt(const unsigned char in[16], unsigned char out[16],
                           const void *key) {
  const sq_blk *b = key;
  int n = 0;
  if (EVP_CipherUpdate(b->ecb, out, &n, in, 16) != 1 || n != 16) {
    memset(out, 0, 16);
    *b->failed = 1;
  }
}

int mtcsec_sq_unwrapper_new(mtcsec_sq_unwrapper **pu,
                            const uint8_t kek[MTCSEC_KEK_LEN]) {
  mtcsec_sq_unwrapper *u;
  *pu = NULL;
  u = calloc(1, sizeof(*u));
  if (u == NULL) {
    return MTCSEC_ERR_NOMEM;
  }
  u->cipher = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL);
  u->ecb = EVP_CIPHER_CTX_new();
  if (u->cipher == NULL || u->ecb == NULL ||
      EVP_CipherInit_ex2(u->ecb, u->cipher, kek, NULL, 0, NULL) != 1 ||
      EVP_CIPHER_CTX_set_padding(u->ecb, 0) != 1) {
    mtcsec_sq_unwrapper_del(u);
    return MTCSEC_ERR_CRYPTO;
  }
  *pu = u;
  return 0;
}

void mtcsec_sq_unwrapper_del(mtcsec_sq_unwrapper *u) {
  if (u == NULL) {
    return;
  }
  EVP_CIPHER_CTX_free(u->ecb); /* cleanses the key schedule */
  EVP_CIPHER_free(u->cipher);
  free(u);
}

mtcsec_ssize mtcsec_sq_unwrap(mtcsec_sq_unwrapper *u, const uint8_t *in,
                              size_t inlen, uint8_t *out, size_t outlen) {
  int failed = 0;
  sq_blk b;
  size_t n;

  if (u == NULL || in == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (inlen > 256) {
    return MTCSEC_ERR_INVALID_ARGUMENT; /* as mtcsec_kek_unwrap */
  }
  if (inlen < 16 || inlen % 8 != 0) {
    return MTCSEC_ERR_MIC; /* not an RFC 5649 output */
  }
  if (outlen < inlen) {
    return MTCSEC_ERR_NOBUF;
  }
  b.ecb = u->ecb;
  b.failed = &failed;
  /* ECB keeps no state between blocks: no restart needed. */
  n = CRYPTO_128_unwrap_pad(&b, NULL, out, in, inlen, sq_aes_decrypt);
  if (failed) {
    mtcsec_zeroize(out, outlen);
    return MTCSEC_ERR_CRYPTO;
  }
  if (n == 0) {
    mtcsec_zeroize(out, outlen);
    return MTCSEC_ERR_MIC; /* the integrity check of RFC 5649 failed */
  }
  return (mtcsec_ssize)n;
}
