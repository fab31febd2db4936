/*
 * NIST SP 800-108 KDF in counter mode (PROTOCOL.md section 2), composed over
 * the provider's MAC.  No allocation: the MAC input is laid out once in a
 * stack buffer of at most 4 + 64 + 1 + 64 + 4 bytes, so that each block is
 * one MAC call with one piece (a library MAC costs per update call, and the
 * device derives six values per establishment).
 *
 *   K(i) = PRF(key, [i]32 || Label || 0x00 || Context || [L]32)
 *
 * with L = 8 * outlen, and the output K(1) || K(2) || ... truncated to outlen
 * bytes.  This is OpenSSL's "KBKDF" (mode counter) with its defaults
 * (use-l = 1, use-separator = 1, r = 32, salt = Label, info = Context).
 */
#include <string.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>

#include "core/util.h"

/* Largest output mtcsec_kdf() produces (crypto.h): L fits 32 bits easily. */
#define KDF_MAX_OUT 1024

static size_t kdf_prf_len(mtcsec_mac_alg alg) {
  switch (alg) {
  case MTCSEC_MAC_AES_CMAC:
    return MTCSEC_CMAC_LEN;
  case MTCSEC_MAC_HMAC_SHA256:
    return MTCSEC_HMAC_SHA256_LEN;
  default:
    return 0;
  }
}

int mtcsec_kdf(const mtcsec_crypto *crypto, mtcsec_mac_alg alg,
               const uint8_t *key, size_t keylen, const char *label,
               size_t labellen, const uint8_t *context, size_t contextlen,
               uint8_t *out, size_t outlen) {
  uint8_t block[MTCSEC_HMAC_SHA256_LEN];
  /* [i]32 || Label || 0x00 || Context || [L]32: labels, IDs, nonces and
   * key ids, all public (they travel on the wire), so not wiped. */
  uint8_t input[4 + MTCSEC_KDF_MAX_LABEL + 1 + MTCSEC_KDF_MAX_CONTEXT + 4];
  mtcsec_iov iov;
  size_t h, off, n, pos;
  uint32_t i;
  int rv = MTCSEC_ERR_INVALID_ARGUMENT;

  if (crypto == NULL || crypto->ops == NULL || crypto->ops->mac == NULL ||
      key == NULL || keylen == 0 || out == NULL || outlen == 0 ||
      outlen > KDF_MAX_OUT || labellen > MTCSEC_KDF_MAX_LABEL ||
      contextlen > MTCSEC_KDF_MAX_CONTEXT || (label == NULL && labellen != 0) ||
      (context == NULL && contextlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  h = kdf_prf_len(alg);
  if (h == 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }

  pos = 4;
  if (labellen != 0) {
    memcpy(input + pos, label, labellen);
    pos += labellen;
  }
  input[pos++] = 0x00;
  if (contextlen != 0) {
    memcpy(input + pos, context, contextlen);
    pos += contextlen;
  }
  /* [L]32: the output length in bits (a 13-byte IV uses L = 104). */
  mtcsec_put_u32(input + pos, (uint32_t)(outlen * 8));
  iov.base = input;
  iov.len = pos + 4;

  for (i = 1, off = 0; off < outlen; i++) {
    mtcsec_put_u32(input, i);
    rv = crypto->ops->mac(crypto->ctx, alg, key, keylen, &iov, 1, block, h);
    if (rv != 0) {
      goto cleanup;
    }
    n = outlen - off < h ? outlen - off : h;
    memcpy(out + off, block, n);
    off += n;
  }
  rv = 0;

cleanup:
  mtcsec_zeroize(block, sizeof(block));
  if (rv != 0) {
    /* Never hand out a partial key. */
    mtcsec_zeroize(out, outlen);
  }
  return rv;
}
