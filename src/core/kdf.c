/*
 * NIST SP 800-108 KDF in counter mode (PROTOCOL.md section 2), composed over
 * the provider's MAC, and the protocol's key schedule built on it: K_auth
 * and K_dm (section 2), DMKey (section 4), the channel keys and IVs
 * (section 6).
 *
 *   K(i) = PRF(key, [i]32 || Label || 0x00 || Context || [L]32)
 *
 * with L = 8 * outlen, and the output K(1) || K(2) || ... truncated to outlen
 * bytes.  This is OpenSSL's "KBKDF" (mode counter) with its defaults
 * (use-l = 1, use-separator = 1, r = 32, salt = Label, info = Context).
 *
 * No allocation: the MAC input is laid out once in a stack buffer of at most
 * 4 + 64 + 1 + 64 + 4 bytes, so that each block is one MAC call with one
 * piece (a library MAC costs per update call).  Every key and IV of the
 * protocol is at most one PRF block long, so the key schedule goes through
 * kdf_block(): one MAC, written straight into the output.
 */
#include <string.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/channel.h>
#include <mtcsec/codec.h>
#include <mtcsec/crypto.h>

#include "core/util.h"

/* Largest output mtcsec_kdf() produces (crypto.h): L fits 32 bits easily. */
#define KDF_MAX_OUT 1024
#define KDF_MAX_IN (4 + MTCSEC_KDF_MAX_LABEL + 1 + MTCSEC_KDF_MAX_CONTEXT + 4)

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

/* Lays out [1]32 || Label || 0x00 || Context || [L]32 and returns its
 * length.  Labels, IDs, nonces and key ids are all public (they travel on
 * the wire or are constants), so the buffer is not wiped. */
static size_t kdf_input(uint8_t in[KDF_MAX_IN], const char *label,
                        size_t labellen, const uint8_t *context,
                        size_t contextlen, size_t outlen) {
  size_t pos = 4;
  mtcsec_put_u32(in, 1);
  if (labellen != 0) {
    memcpy(in + pos, label, labellen);
    pos += labellen;
  }
  in[pos++] = 0x00;
  if (contextlen != 0) {
    memcpy(in + pos, context, contextlen);
    pos += contextlen;
  }
  /* [L]32: the output length in bits (a 13-byte IV uses L = 104). */
  mtcsec_put_u32(in + pos, (uint32_t)(outlen * 8));
  return pos + 4;
}

/* One MAC over the KDF input iov: out gets the first outlen bytes, or is
 * zeroed on failure (never a partial key). */
static int kdf_mac(const mtcsec_crypto *crypto, mtcsec_mac_alg alg,
                   const uint8_t *key, size_t keylen, const mtcsec_iov *iov,
                   uint8_t *out, size_t outlen) {
  int rv = crypto->ops->mac(crypto->ctx, alg, key, keylen, iov, 1, out, outlen);
  if (rv != 0) {
    mtcsec_zeroize(out, outlen);
  }
  return rv;
}

int mtcsec_kdf(const mtcsec_crypto *crypto, mtcsec_mac_alg alg,
               const uint8_t *key, size_t keylen, const char *label,
               size_t labellen, const uint8_t *context, size_t contextlen,
               uint8_t *out, size_t outlen) {
  uint8_t block[MTCSEC_HMAC_SHA256_LEN];
  uint8_t input[KDF_MAX_IN];
  mtcsec_iov iov;
  size_t h, off, n;
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
  iov.base = input;
  iov.len = kdf_input(input, label, labellen, context, contextlen, outlen);
  if (outlen <= h) {
    /* One block: K(1) truncated to outlen is the MAC truncated to outlen,
     * which the provider writes straight into out. */
    return kdf_mac(crypto, alg, key, keylen, &iov, out, outlen);
  }
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

/*
 * The key schedule's KDF: the label is a constant of this file, the key
 * has the suite's length and every output (a key of the suite's length or
 * a 13-byte IV) is at most one PRF block, so nothing is checked again here
 * and the MAC goes straight into out.
 */
static int kdf_block(const mtcsec_crypto *crypto, const mtcsec_suite_params *sp,
                     const uint8_t *key, const char *label, size_t labellen,
                     const uint8_t *context, size_t contextlen, uint8_t *out,
                     size_t outlen) {
  uint8_t input[KDF_MAX_IN];
  mtcsec_iov iov;
  iov.base = input;
  iov.len = kdf_input(input, label, labellen, context, contextlen, outlen);
  return kdf_mac(crypto, (mtcsec_mac_alg)sp->mac, key, sp->keylen, &iov, out,
                 outlen);
}

/* ------------------------------------------------------- key schedule */

/* The suite of a key-schedule call, or NULL when crypto is unusable. */
static const mtcsec_suite_params *kdf_suite(const mtcsec_crypto *crypto,
                                            uint8_t suite) {
  if (crypto == NULL || crypto->ops == NULL || crypto->ops->mac == NULL) {
    return NULL;
  }
  return mtcsec_suite_get(suite);
}

/* Copies n 8-byte IDs and nonces, none of them NULL, one after the other
 * into ctx (a KDF context).  Returns 0, or -1 if one is NULL. */
static int kdf_ctx(uint8_t *ctx, const uint8_t *const *parts, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (parts[i] == NULL) {
      return -1;
    }
    memcpy(ctx + i * MTCSEC_ID_LEN, parts[i], MTCSEC_ID_LEN);
  }
  return 0;
}

int mtcsec_derive_device_keys(const mtcsec_crypto *crypto, uint8_t suite,
                              const uint8_t *pskey,
                              const uint8_t mtcd_id[MTCSEC_ID_LEN],
                              const uint8_t mtcs_id[MTCSEC_ID_LEN],
                              uint8_t *k_auth, uint8_t *k_dm) {
  static const char l_auth[] = "mtcsec K_auth";
  static const char l_dm[] = "mtcsec K_dm";
  const mtcsec_suite_params *sp = kdf_suite(crypto, suite);
  const uint8_t *parts[2];
  uint8_t ctx[2 * MTCSEC_ID_LEN];
  int rv;

  /* Context MTCdID || MTCsID (section 2). */
  parts[0] = mtcd_id;
  parts[1] = mtcs_id;
  if (sp == NULL || pskey == NULL || k_auth == NULL || k_dm == NULL ||
      kdf_ctx(ctx, parts, 2) != 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = kdf_block(crypto, sp, pskey, l_auth, sizeof(l_auth) - 1, ctx,
                 sizeof(ctx), k_auth, sp->keylen);
  if (rv == 0) {
    rv = kdf_block(crypto, sp, pskey, l_dm, sizeof(l_dm) - 1, ctx, sizeof(ctx),
                   k_dm, sp->keylen);
  }
  if (rv != 0) {
    mtcsec_zeroize(k_auth, sp->keylen);
    mtcsec_zeroize(k_dm, sp->keylen);
  }
  return rv;
}

int mtcsec_derive_dmkey(const mtcsec_crypto *crypto, uint8_t suite,
                        const uint8_t *k_dm,
                        const uint8_t mtcd_id[MTCSEC_ID_LEN],
                        const uint8_t mtcs_id[MTCSEC_ID_LEN],
                        const uint8_t mtcd_nonce[MTCSEC_NONCE_LEN],
                        const uint8_t mtcs_nonce[MTCSEC_NONCE_LEN],
                        const uint8_t ueid[MTCSEC_ID_LEN], uint8_t *dmkey) {
  static const char label[] = "mtcsec DMKey";
  const mtcsec_suite_params *sp = kdf_suite(crypto, suite);
  const uint8_t *parts[5];
  uint8_t ctx[5 * MTCSEC_ID_LEN];

  /* Context MTCdID || MTCsID || MTCdNonce || MTCsNonce || UEID (section
   * 4). */
  parts[0] = mtcd_id;
  parts[1] = mtcs_id;
  parts[2] = mtcd_nonce;
  parts[3] = mtcs_nonce;
  parts[4] = ueid;
  if (sp == NULL || k_dm == NULL || dmkey == NULL ||
      kdf_ctx(ctx, parts, 5) != 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  return kdf_block(crypto, sp, k_dm, label, sizeof(label) - 1, ctx, sizeof(ctx),
                   dmkey, sp->keylen);
}

int mtcsec_chan_derive(const mtcsec_crypto *crypto, uint8_t suite,
                       const uint8_t *dmkey, uint16_t key_id, uint8_t *k_d2u,
                       uint8_t *iv_d2u, uint8_t *k_u2d, uint8_t *iv_u2d) {
  /* Section 6, in this order: key then IV, d2u then u2d.  The IV labels
   * are one byte shorter than the key labels. */
  static const char labels[4][15] = {"mtcsec d2u key", "mtcsec d2u iv",
                                     "mtcsec u2d key", "mtcsec u2d iv"};
  const mtcsec_suite_params *sp = kdf_suite(crypto, suite);
  uint8_t *outs[4];
  uint8_t ctx[2];
  size_t i;
  int rv = 0;

  outs[0] = k_d2u;
  outs[1] = iv_d2u;
  outs[2] = k_u2d;
  outs[3] = iv_u2d;
  if (sp == NULL || dmkey == NULL || k_d2u == NULL || iv_d2u == NULL ||
      k_u2d == NULL || iv_u2d == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  mtcsec_put_u16(ctx, key_id);
  for (i = 0; i < 4 && rv == 0; i++) {
    rv =
      kdf_block(crypto, sp, dmkey, labels[i], sizeof(labels[i]) - 1 - (i & 1),
                ctx, sizeof(ctx), outs[i], i & 1 ? MTCSEC_IV_LEN : sp->keylen);
  }
  return rv;
}
