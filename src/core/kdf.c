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
 * kdf_sched(): one MAC, written straight into the output.  The inner forms
 * (core/internal.h) are what the device links; the public ones check their
 * arguments and call them.
 */
#include <string.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/channel.h>
#include <mtcsec/codec.h>
#include <mtcsec/crypto.h>

#include "core/internal.h"
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

/* ------------------------------------------------------- key schedule */

/*
 * The key schedule (sections 2, 4, 6).  Every key and IV of the protocol is
 * at most one PRF block long, the key has the suite's length and the labels
 * are constants of this file, so each value is one MAC straight into its
 * output with nothing checked again.  Labels are kept without their common
 * "mtcsec " prefix, 8 bytes each; the NUL that ends a label is the 0x00
 * separator of the KDF input.  An IV label ("d2u iv", "u2d iv") gives 13
 * bytes, the others the suite's key length.  The input is public (labels, IDs,
 * nonces, key ids), so the buffer is not wiped.
 */
#define KDF_PREFIX "mtcsec "
#define KDF_PREFIX_LEN (sizeof(KDF_PREFIX) - 1)
#define KDF_SCHED_IN (4 + KDF_PREFIX_LEN + 8 + 5 * MTCSEC_ID_LEN + 4)

enum {
  KDF_K_AUTH = 0,
  KDF_K_DM = 1,
  KDF_DMKEY = 2,
  KDF_D2U_KEY = 3 /* then d2u iv, u2d key, u2d iv */
};

static const char kdf_labels[7][8] = {"K_auth", "K_dm",    "DMKey", "d2u key",
                                      "d2u iv", "u2d key", "u2d iv"};

/* Derives n values with the labels from index first on, in order, into
 * out[0..n-1]; stops at the first failure (that output is zeroed). */
static int kdf_sched(const mtcsec_crypto *crypto, const mtcsec_suite_params *sp,
                     const uint8_t *key, unsigned first, unsigned n,
                     const uint8_t *context, size_t contextlen,
                     uint8_t *const *out) {
  uint8_t in[KDF_SCHED_IN];
  mtcsec_iov iov;
  unsigned i;
  int rv = 0;
  mtcsec_put_u32(in, 1);
  memcpy(in + 4, KDF_PREFIX, KDF_PREFIX_LEN);
  iov.base = in;
  for (i = 0; i < n && rv == 0; i++) {
    const char *label = kdf_labels[first + i];
    size_t pos = 4 + KDF_PREFIX_LEN;
    size_t outlen = label[4] == 'i' ? MTCSEC_IV_LEN : sp->keylen;
    do {
      in[pos++] = (uint8_t)*label;
    } while (*label++ != '\0');
    memcpy(in + pos, context, contextlen);
    pos += contextlen;
    /* [L]32: the output length in bits (a 13-byte IV uses L = 104). */
    mtcsec_put_u32(in + pos, (uint32_t)(outlen * 8));
    iov.len = pos + 4;
    rv = kdf_mac(crypto, (mtcsec_mac_alg)sp->mac, key, sp->keylen, &iov, out[i],
                 outlen);
  }
  return rv;
}

int mtcsec_kdf_device_keys(const mtcsec_crypto *crypto,
                           const mtcsec_suite_params *sp, const uint8_t *pskey,
                           const uint8_t *ids, uint8_t *k_auth, uint8_t *k_dm) {
  /* Context MTCdID || MTCsID (section 2). */
  uint8_t *out[2];
  int rv;
  out[0] = k_auth;
  out[1] = k_dm;
  rv = kdf_sched(crypto, sp, pskey, KDF_K_AUTH, 2, ids, 2 * MTCSEC_ID_LEN, out);
  if (rv != 0) {
    mtcsec_zeroize(k_auth, sp->keylen);
    mtcsec_zeroize(k_dm, sp->keylen);
  }
  return rv;
}

int mtcsec_kdf_dmkey(const mtcsec_crypto *crypto, const mtcsec_suite_params *sp,
                     const uint8_t *k_dm, const uint8_t *ids,
                     const uint8_t *mtcd_nonce, const uint8_t *mtcs_nonce,
                     const uint8_t *ueid, uint8_t *dmkey) {
  /* Context MTCdID || MTCsID || MTCdNonce || MTCsNonce || UEID (section
   * 4). */
  uint8_t ctx[5 * MTCSEC_ID_LEN];
  memcpy(ctx, ids, 2 * MTCSEC_ID_LEN);
  memcpy(ctx + 16, mtcd_nonce, MTCSEC_NONCE_LEN);
  memcpy(ctx + 24, mtcs_nonce, MTCSEC_NONCE_LEN);
  memcpy(ctx + 32, ueid, MTCSEC_ID_LEN);
  return kdf_sched(crypto, sp, k_dm, KDF_DMKEY, 1, ctx, sizeof(ctx), &dmkey);
}

int mtcsec_kdf_chan(const mtcsec_crypto *crypto, const mtcsec_suite_params *sp,
                    const uint8_t *dmkey, uint16_t key_id,
                    uint8_t *const out[4]) {
  /* Section 6, in this order: key then IV, d2u then u2d. */
  uint8_t ctx[2];
  mtcsec_put_u16(ctx, key_id);
  return kdf_sched(crypto, sp, dmkey, KDF_D2U_KEY, 4, ctx, sizeof(ctx), out);
}

/* The public forms: the same with their arguments checked. */

/* The suite of a key-schedule call, or NULL when crypto is unusable. */
static const mtcsec_suite_params *kdf_suite(const mtcsec_crypto *crypto,
                                            uint8_t suite) {
  if (crypto == NULL || crypto->ops == NULL || crypto->ops->mac == NULL) {
    return NULL;
  }
  return mtcsec_suite_get(suite);
}

int mtcsec_derive_device_keys(const mtcsec_crypto *crypto, uint8_t suite,
                              const uint8_t *pskey,
                              const uint8_t mtcd_id[MTCSEC_ID_LEN],
                              const uint8_t mtcs_id[MTCSEC_ID_LEN],
                              uint8_t *k_auth, uint8_t *k_dm) {
  const mtcsec_suite_params *sp = kdf_suite(crypto, suite);
  uint8_t ids[2 * MTCSEC_ID_LEN];
  if (sp == NULL || pskey == NULL || mtcd_id == NULL || mtcs_id == NULL ||
      k_auth == NULL || k_dm == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memcpy(ids, mtcd_id, MTCSEC_ID_LEN);
  memcpy(ids + MTCSEC_ID_LEN, mtcs_id, MTCSEC_ID_LEN);
  return mtcsec_kdf_device_keys(crypto, sp, pskey, ids, k_auth, k_dm);
}

int mtcsec_derive_dmkey(const mtcsec_crypto *crypto, uint8_t suite,
                        const uint8_t *k_dm,
                        const uint8_t mtcd_id[MTCSEC_ID_LEN],
                        const uint8_t mtcs_id[MTCSEC_ID_LEN],
                        const uint8_t mtcd_nonce[MTCSEC_NONCE_LEN],
                        const uint8_t mtcs_nonce[MTCSEC_NONCE_LEN],
                        const uint8_t ueid[MTCSEC_ID_LEN], uint8_t *dmkey) {
  const mtcsec_suite_params *sp = kdf_suite(crypto, suite);
  uint8_t ids[2 * MTCSEC_ID_LEN];
  if (sp == NULL || k_dm == NULL || mtcd_id == NULL || mtcs_id == NULL ||
      mtcd_nonce == NULL || mtcs_nonce == NULL || ueid == NULL ||
      dmkey == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memcpy(ids, mtcd_id, MTCSEC_ID_LEN);
  memcpy(ids + MTCSEC_ID_LEN, mtcs_id, MTCSEC_ID_LEN);
  return mtcsec_kdf_dmkey(crypto, sp, k_dm, ids, mtcd_nonce, mtcs_nonce, ueid,
                          dmkey);
}

int mtcsec_chan_derive(const mtcsec_crypto *crypto, uint8_t suite,
                       const uint8_t *dmkey, uint16_t key_id, uint8_t *k_d2u,
                       uint8_t *iv_d2u, uint8_t *k_u2d, uint8_t *iv_u2d) {
  const mtcsec_suite_params *sp = kdf_suite(crypto, suite);
  uint8_t *out[4];
  if (sp == NULL || dmkey == NULL || k_d2u == NULL || iv_d2u == NULL ||
      k_u2d == NULL || iv_u2d == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  out[0] = k_d2u;
  out[1] = iv_d2u;
  out[2] = k_u2d;
  out[3] = iv_u2d;
  return mtcsec_kdf_chan(crypto, sp, dmkey, key_id, out);
}
