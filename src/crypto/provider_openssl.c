/*
 * OpenSSL 3 crypto provider (hosts: daemon, agents, tools).
 *
 * The only file of mtcsec that includes OpenSSL headers.  Hot-path rule:
 * every algorithm is fetched and every context is created once, in
 * mtcsec_crypto_openssl_new(); a call only re-keys a context that already
 * exists (EVP_MAC_init() with a key, EVP_CipherInit_ex2() with a NULL
 * cipher, which keeps the provider-side context).  Passing the cipher again
 * would make OpenSSL free and re-create its algorithm context on each call.
 *
 * Contexts keep their key schedules, and each MAC context a copy of its
 * key (to recognise it), until the context is re-keyed for another key or
 * mtcsec_crypto_openssl_del() frees (and so cleanses) them: up to
 * OSSL_MAC_WAYS keys per algorithm outlive the caller's own copies.
 *
 * Hot-path economies, each measured (docs/BENCHMARKS.md):
 *  - each algorithm has OSSL_MAC_WAYS contexts, each remembering the key it
 *    holds; a call with a key one of them holds (compared in constant time)
 *    restarts that context with EVP_MAC_init(ctx, NULL, 0, NULL), which
 *    keeps the key schedule and CMAC subkeys, instead of re-keying; a new
 *    key takes the least recently used context.  A device keeps K_auth and
 *    K_dm keyed for its whole life and keys only DMKey per establishment;
 *    the server MACs twice under K_auth per handshake.  The context last
 *    used with a key at the same address is compared first, so a hit
 *    usually costs one comparison.  Which context hit is visible in
 *    timing, but that tells only whether a key equals one the caller used
 *    recently;
 *  - a full-length MAC is finalised straight into the caller's buffer;
 *    only truncated ones go through a stack copy that is then wiped;
 *  - small random requests are served from a 256-byte buffer refilled with
 *    RAND_bytes(); served bytes are wiped from the buffer.  A provider must
 *    therefore not be shared across fork(): create a new one in the child.
 */
#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>

/* A MAC context and the key it currently holds. */
typedef struct ossl_mac_slot {
  EVP_MAC_CTX *ctx;
  /* The address of the caller's key on the last call, as an integer: only
   * a hint of which context to compare first. */
  uintptr_t hint;
  size_t keylen; /* 0: not keyed yet */
  uint8_t key[MTCSEC_MAX_KEY_LEN];
} ossl_mac_slot;

#define OSSL_MAC_WAYS 3

/* The contexts of one algorithm and key length, with their order of use. */
typedef struct ossl_mac_group {
  ossl_mac_slot slot[OSSL_MAC_WAYS];
  uint8_t order[OSSL_MAC_WAYS]; /* slot indices, most recently used first */
} ossl_mac_group;

#define OSSL_RAND_BUF 256
#define OSSL_RAND_SMALL 64

typedef struct ossl_provider {
  EVP_MAC *cmac;
  EVP_MAC *hmac;
  EVP_CIPHER *ccm128_alg;
  EVP_CIPHER *ccm256_alg;
  EVP_CIPHER *ecb128_alg;
  EVP_CIPHER *ecb256_alg;
  EVP_CIPHER *ctr128_alg;
  EVP_CIPHER *ctr256_alg;
  /* AES-CMAC with the cipher parameter set once. */
  ossl_mac_group cmac128;
  ossl_mac_group cmac256;
  /* HMAC with the digest parameter set once. */
  ossl_mac_group hmac_sha256;
  EVP_CIPHER_CTX *ccm128;
  EVP_CIPHER_CTX *ccm256;
  EVP_CIPHER_CTX *ecb128;
  EVP_CIPHER_CTX *ecb256;
  EVP_CIPHER_CTX *ctr128;
  EVP_CIPHER_CTX *ctr256;
  /* Buffered output of RAND_bytes() for small requests. */
  size_t rand_pos; /* next unread byte; OSSL_RAND_BUF when empty */
  uint8_t rand_buf[OSSL_RAND_BUF];
} ossl_provider;

/* EVP lengths are int: larger inputs are fed in pieces of this size. */
#define OSSL_CHUNK ((size_t)1 << 30)

static ossl_mac_group *ossl_mac_ctx(ossl_provider *p, mtcsec_mac_alg alg,
                                    size_t keylen, size_t *maclen) {
  switch (alg) {
  case MTCSEC_MAC_AES_CMAC:
    *maclen = MTCSEC_CMAC_LEN;
    if (keylen == 16) {
      return &p->cmac128;
    }
    if (keylen == 32) {
      return &p->cmac256;
    }
    return NULL;
  case MTCSEC_MAC_HMAC_SHA256:
    *maclen = MTCSEC_HMAC_SHA256_LEN;
    return keylen > 0 ? &p->hmac_sha256 : NULL;
  default:
    return NULL;
  }
}

static int ossl_mac_holds(const ossl_mac_slot *s, const uint8_t *key,
                          size_t keylen) {
  return s->keylen == keylen && mtcsec_ct_memcmp(s->key, key, keylen) == 0;
}

/* The context of group g that holds key (*hit = 1), else the least
 * recently used one (*hit = 0); either becomes the most recently used.
 * The context last used with a key at the same address is compared first
 * (callers keep long-lived keys in one place: a device's K_auth and K_dm,
 * a DMKey while its four channel values are derived), then the others
 * from the most recently used: a hit usually costs one comparison. */
static ossl_mac_slot *ossl_mac_pick(ossl_mac_group *g, const uint8_t *key,
                                    size_t keylen, int *hit) {
  size_t k, tried = OSSL_MAC_WAYS, found = OSSL_MAC_WAYS;
  uint8_t idx;
  for (k = 0; k < OSSL_MAC_WAYS; k++) {
    if (g->slot[g->order[k]].hint == (uintptr_t)key) {
      tried = k;
      if (ossl_mac_holds(&g->slot[g->order[k]], key, keylen)) {
        found = k;
      }
      break;
    }
  }
  for (k = 0; found == OSSL_MAC_WAYS && k < OSSL_MAC_WAYS; k++) {
    if (k != tried && ossl_mac_holds(&g->slot[g->order[k]], key, keylen)) {
      found = k;
    }
  }
  *hit = found < OSSL_MAC_WAYS;
  k = *hit ? found : OSSL_MAC_WAYS - 1; /* else the least recently used */
  idx = g->order[k];
  for (; k > 0; k--) {
    g->order[k] = g->order[k - 1];
  }
  g->order[0] = idx;
  g->slot[idx].hint = (uintptr_t)key;
  return &g->slot[idx];
}

static int ossl_mac(void *ctx, mtcsec_mac_alg alg, const uint8_t *key,
                    size_t keylen, const mtcsec_iov *iov, size_t iovcnt,
                    uint8_t *out, size_t outlen) {
  ossl_provider *p = ctx;
  uint8_t full[EVP_MAX_MD_SIZE];
  size_t maclen = 0, finlen = 0, i;
  ossl_mac_group *group;
  ossl_mac_slot *slot;
  EVP_MAC_CTX *mctx;
  int hit, rv = MTCSEC_ERR_INVALID_ARGUMENT;

  group = ossl_mac_ctx(p, alg, keylen, &maclen);
  if (group == NULL || key == NULL || out == NULL || outlen == 0 ||
      outlen > maclen || (iov == NULL && iovcnt != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  slot = ossl_mac_pick(group, key, keylen, &hit);
  mctx = slot->ctx;

  rv = MTCSEC_ERR_CRYPTO;
  if (hit) {
    /* Same key: restart, keeping the key schedule (and CMAC subkeys). */
    if (EVP_MAC_init(mctx, NULL, 0, NULL) != 1) {
      goto cleanup;
    }
  } else {
    /* A non-NULL key re-keys the reused context. */
    slot->keylen = 0;
    if (EVP_MAC_init(mctx, key, keylen, NULL) != 1) {
      goto cleanup;
    }
    if (keylen <= sizeof(slot->key)) { /* longer HMAC keys: not cached */
      memcpy(slot->key, key, keylen);
      slot->keylen = keylen;
    } else {
      mtcsec_zeroize(slot->key, sizeof(slot->key)); /* no stale copy */
    }
  }
  for (i = 0; i < iovcnt; i++) {
    if (iov[i].len == 0) {
      continue;
    }
    if (iov[i].base == NULL) {
      rv = MTCSEC_ERR_INVALID_ARGUMENT;
      goto cleanup;
    }
    if (EVP_MAC_update(mctx, iov[i].base, iov[i].len) != 1) {
      goto cleanup;
    }
  }
  if (outlen == maclen) {
    /* The whole MAC: straight into out, no copy to wipe. */
    if (EVP_MAC_final(mctx, out, &finlen, outlen) != 1 || finlen != maclen) {
      mtcsec_zeroize(out, outlen);
      goto cleanup;
    }
  } else {
    rv =
      EVP_MAC_final(mctx, full, &finlen, sizeof(full)) == 1 && finlen == maclen
        ? 0
        : MTCSEC_ERR_CRYPTO;
    if (rv == 0) {
      memcpy(out, full, outlen);
    }
    mtcsec_zeroize(full, maclen); /* only maclen bytes were ever written */
    if (rv != 0) {
      goto cleanup;
    }
  }
  rv = 0;

cleanup:
  if (rv != 0) {
    /* Leave the slot un-keyed so that the next call re-keys. */
    mtcsec_zeroize(slot->key, sizeof(slot->key));
    slot->keylen = 0;
  }
  return rv;
}

static int ccm_taglen_ok(size_t taglen) {
  return taglen >= 4 && taglen <= 16 && (taglen & 1) == 0;
}

/* Prepares c for one CCM operation: direction, 13-byte nonce (L = 2), tag
 * length (and the expected tag when opening), key and nonce. */
static int ossl_ccm_start(EVP_CIPHER_CTX *c, int enc, const uint8_t *key,
                          const uint8_t *nonce, size_t taglen,
                          const uint8_t *tag) {
  if (EVP_CipherInit_ex2(c, NULL, NULL, NULL, enc, NULL) != 1) {
    return 0;
  }
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, MTCSEC_IV_LEN, NULL) !=
      1) {
    return 0;
  }
  /* Sealing sets only the tag length; opening sets the expected tag. */
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, (int)taglen,
                          (void *)(uintptr_t)tag) != 1) {
    return 0;
  }
  return EVP_CipherInit_ex2(c, NULL, key, nonce, enc, NULL) == 1;
}

static EVP_CIPHER_CTX *ossl_by_keylen(EVP_CIPHER_CTX *c128,
                                      EVP_CIPHER_CTX *c256, size_t keylen) {
  if (keylen == 16) {
    return c128;
  }
  if (keylen == 32) {
    return c256;
  }
  return NULL;
}

static int ossl_ccm_seal(void *ctx, const uint8_t *key, size_t keylen,
                         const uint8_t nonce[MTCSEC_IV_LEN], const uint8_t *aad,
                         size_t aadlen, const uint8_t *in, size_t inlen,
                         uint8_t *out, size_t taglen) {
  ossl_provider *p = ctx;
  EVP_CIPHER_CTX *c = ossl_by_keylen(p->ccm128, p->ccm256, keylen);
  uint8_t dummy = 0;
  int outl;

  /* With L = 2 the message is at most 2^16 - 1 bytes (RFC 3610). */
  if (c == NULL || key == NULL || nonce == NULL || !ccm_taglen_ok(taglen) ||
      out == NULL || (in == NULL && inlen != 0) ||
      (aad == NULL && aadlen != 0) || inlen > 0xffff || aadlen > INT_MAX) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (!ossl_ccm_start(c, 1, key, nonce, taglen, NULL)) {
    return MTCSEC_ERR_CRYPTO;
  }
  /* CCM needs the total length before the AAD. */
  if (EVP_CipherUpdate(c, NULL, &outl, NULL, (int)inlen) != 1) {
    return MTCSEC_ERR_CRYPTO;
  }
  if (aadlen > 0 && EVP_CipherUpdate(c, NULL, &outl, aad, (int)aadlen) != 1) {
    return MTCSEC_ERR_CRYPTO;
  }
  /* An empty message must still go through the update with non-NULL
   * pointers, or OpenSSL never computes the tag. */
  if (EVP_CipherUpdate(c, inlen ? out : &dummy, &outl, inlen ? in : &dummy,
                       (int)inlen) != 1 ||
      (size_t)outl != inlen) {
    return MTCSEC_ERR_CRYPTO;
  }
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, (int)taglen, out + inlen) !=
      1) {
    return MTCSEC_ERR_CRYPTO;
  }
  return 0;
}

static int ossl_ccm_open(void *ctx, const uint8_t *key, size_t keylen,
                         const uint8_t nonce[MTCSEC_IV_LEN], const uint8_t *aad,
                         size_t aadlen, const uint8_t *in, size_t inlen,
                         uint8_t *out, size_t taglen) {
  ossl_provider *p = ctx;
  EVP_CIPHER_CTX *c = ossl_by_keylen(p->ccm128, p->ccm256, keylen);
  uint8_t tag[16];
  uint8_t dummy = 0;
  size_t ctlen;
  int outl;
  int rv = MTCSEC_ERR_INVALID_ARGUMENT;

  if (c == NULL || key == NULL || nonce == NULL || !ccm_taglen_ok(taglen) ||
      in == NULL || inlen < taglen || (aad == NULL && aadlen != 0) ||
      inlen - taglen > 0xffff || aadlen > INT_MAX ||
      (out == NULL && inlen != taglen)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  ctlen = inlen - taglen;
  /* Copy the tag first: out may equal in. */
  memcpy(tag, in + ctlen, taglen);

  rv = MTCSEC_ERR_CRYPTO;
  if (!ossl_ccm_start(c, 0, key, nonce, taglen, tag)) {
    goto cleanup;
  }
  if (EVP_CipherUpdate(c, NULL, &outl, NULL, (int)ctlen) != 1) {
    goto cleanup;
  }
  if (aadlen > 0 && EVP_CipherUpdate(c, NULL, &outl, aad, (int)aadlen) != 1) {
    goto cleanup;
  }
  /* OpenSSL verifies the CCM tag inside this update: a failure here is the
   * tag not matching (the set-up above already succeeded). */
  if (EVP_CipherUpdate(c, ctlen ? out : &dummy, &outl, ctlen ? in : &dummy,
                       (int)ctlen) != 1) {
    rv = MTCSEC_ERR_MIC;
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

static int ossl_aes_block(void *ctx, const uint8_t *key, size_t keylen,
                          const uint8_t in[16], uint8_t out[16]) {
  ossl_provider *p = ctx;
  EVP_CIPHER_CTX *c = ossl_by_keylen(p->ecb128, p->ecb256, keylen);
  int outl = 0;

  if (c == NULL || key == NULL || in == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (EVP_CipherInit_ex2(c, NULL, key, NULL, 1, NULL) != 1 ||
      EVP_CIPHER_CTX_set_padding(c, 0) != 1 ||
      EVP_CipherUpdate(c, out, &outl, in, 16) != 1 || outl != 16) {
    return MTCSEC_ERR_CRYPTO;
  }
  return 0;
}

static int ossl_aes_ctr(void *ctx, const uint8_t *key, size_t keylen,
                        const uint8_t icb[16], const uint8_t *in, size_t len,
                        uint8_t *out) {
  ossl_provider *p = ctx;
  EVP_CIPHER_CTX *c = ossl_by_keylen(p->ctr128, p->ctr256, keylen);
  size_t off, n;
  int outl;

  if (c == NULL || key == NULL || icb == NULL ||
      (len != 0 && (in == NULL || out == NULL))) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (EVP_CipherInit_ex2(c, NULL, key, icb, 1, NULL) != 1) {
    return MTCSEC_ERR_CRYPTO;
  }
  /* OpenSSL's CTR increments the whole 128-bit block, big-endian. */
  for (off = 0; off < len; off += n) {
    n = len - off < OSSL_CHUNK ? len - off : OSSL_CHUNK;
    if (EVP_CipherUpdate(c, out + off, &outl, in + off, (int)n) != 1 ||
        (size_t)outl != n) {
      return MTCSEC_ERR_CRYPTO;
    }
  }
  return 0;
}

static int ossl_random(void *ctx, uint8_t *out, size_t len) {
  ossl_provider *p = ctx;
  size_t off, n;
  if (out == NULL && len != 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (len <= OSSL_RAND_SMALL) {
    /* Nonces and jitter: one RAND_bytes() call per 256 bytes, not per
     * request (a call costs about as much as the three MACs of a server
     * handshake). */
    if (OSSL_RAND_BUF - p->rand_pos < len) {
      if (RAND_bytes(p->rand_buf, OSSL_RAND_BUF) != 1) {
        return MTCSEC_ERR_CRYPTO;
      }
      p->rand_pos = 0;
    }
    memcpy(out, p->rand_buf + p->rand_pos, len);
    mtcsec_zeroize(p->rand_buf + p->rand_pos, len);
    p->rand_pos += len;
    return 0;
  }
  for (off = 0; off < len; off += n) {
    n = len - off < OSSL_CHUNK ? len - off : OSSL_CHUNK;
    if (RAND_bytes(out + off, (int)n) != 1) {
      return MTCSEC_ERR_CRYPTO;
    }
  }
  return 0;
}

static const mtcsec_crypto_ops ossl_ops = {
  ossl_mac,       ossl_ccm_seal, ossl_ccm_open,
  ossl_aes_block, ossl_aes_ctr,  ossl_random,
};

static void ossl_free(ossl_provider *p) {
  size_t i;
  if (p == NULL) {
    return;
  }
  for (i = 0; i < OSSL_MAC_WAYS; i++) {
    EVP_MAC_CTX_free(p->cmac128.slot[i].ctx);
    EVP_MAC_CTX_free(p->cmac256.slot[i].ctx);
    EVP_MAC_CTX_free(p->hmac_sha256.slot[i].ctx);
  }
  EVP_CIPHER_CTX_free(p->ccm128);
  EVP_CIPHER_CTX_free(p->ccm256);
  EVP_CIPHER_CTX_free(p->ecb128);
  EVP_CIPHER_CTX_free(p->ecb256);
  EVP_CIPHER_CTX_free(p->ctr128);
  EVP_CIPHER_CTX_free(p->ctr256);
  EVP_MAC_free(p->cmac);
  EVP_MAC_free(p->hmac);
  EVP_CIPHER_free(p->ccm128_alg);
  EVP_CIPHER_free(p->ccm256_alg);
  EVP_CIPHER_free(p->ecb128_alg);
  EVP_CIPHER_free(p->ecb256_alg);
  EVP_CIPHER_free(p->ctr128_alg);
  EVP_CIPHER_free(p->ctr256_alg);
  OPENSSL_clear_free(p, sizeof(*p));
}

/* Creates a MAC context and sets its one parameter (cipher or digest). */
static EVP_MAC_CTX *ossl_mac_new(EVP_MAC *mac, const char *param,
                                 const char *value) {
  OSSL_PARAM params[2];
  EVP_MAC_CTX *m = EVP_MAC_CTX_new(mac);
  if (m == NULL) {
    return NULL;
  }
  params[0] =
    OSSL_PARAM_construct_utf8_string(param, (char *)(uintptr_t)value, 0);
  params[1] = OSSL_PARAM_construct_end();
  if (EVP_MAC_CTX_set_params(m, params) != 1) {
    EVP_MAC_CTX_free(m);
    return NULL;
  }
  return m;
}

/* Creates a cipher context bound to alg once (keys come per call). */
static EVP_CIPHER_CTX *ossl_cipher_new(const EVP_CIPHER *alg) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (c == NULL) {
    return NULL;
  }
  if (EVP_CipherInit_ex2(c, alg, NULL, NULL, 1, NULL) != 1) {
    EVP_CIPHER_CTX_free(c);
    return NULL;
  }
  return c;
}

int mtcsec_crypto_openssl_new(mtcsec_crypto *crypto) {
  ossl_provider *p;
  size_t i;
  int rv = MTCSEC_ERR_CRYPTO;

  if (crypto == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  crypto->ops = NULL;
  crypto->ctx = NULL;

  p = OPENSSL_zalloc(sizeof(*p));
  if (p == NULL) {
    return MTCSEC_ERR_NOMEM;
  }

  p->cmac = EVP_MAC_fetch(NULL, "CMAC", NULL);
  p->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  p->ccm128_alg = EVP_CIPHER_fetch(NULL, "AES-128-CCM", NULL);
  p->ccm256_alg = EVP_CIPHER_fetch(NULL, "AES-256-CCM", NULL);
  p->ecb128_alg = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
  p->ecb256_alg = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL);
  p->ctr128_alg = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
  p->ctr256_alg = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
  if (p->cmac == NULL || p->hmac == NULL || p->ccm128_alg == NULL ||
      p->ccm256_alg == NULL || p->ecb128_alg == NULL || p->ecb256_alg == NULL ||
      p->ctr128_alg == NULL || p->ctr256_alg == NULL) {
    goto cleanup;
  }

  p->rand_pos = OSSL_RAND_BUF;
  for (i = 0; i < OSSL_MAC_WAYS; i++) {
    p->cmac128.order[i] = p->cmac256.order[i] = p->hmac_sha256.order[i] =
      (uint8_t)i;
    p->cmac128.slot[i].ctx =
      ossl_mac_new(p->cmac, OSSL_MAC_PARAM_CIPHER, "AES-128-CBC");
    p->cmac256.slot[i].ctx =
      ossl_mac_new(p->cmac, OSSL_MAC_PARAM_CIPHER, "AES-256-CBC");
    p->hmac_sha256.slot[i].ctx =
      ossl_mac_new(p->hmac, OSSL_MAC_PARAM_DIGEST, "SHA256");
    if (p->cmac128.slot[i].ctx == NULL || p->cmac256.slot[i].ctx == NULL ||
        p->hmac_sha256.slot[i].ctx == NULL) {
      goto cleanup;
    }
  }
  p->ccm128 = ossl_cipher_new(p->ccm128_alg);
  p->ccm256 = ossl_cipher_new(p->ccm256_alg);
  p->ecb128 = ossl_cipher_new(p->ecb128_alg);
  p->ecb256 = ossl_cipher_new(p->ecb256_alg);
  p->ctr128 = ossl_cipher_new(p->ctr128_alg);
  p->ctr256 = ossl_cipher_new(p->ctr256_alg);
  if (p->ccm128 == NULL || p->ccm256 == NULL || p->ecb128 == NULL ||
      p->ecb256 == NULL || p->ctr128 == NULL || p->ctr256 == NULL) {
    goto cleanup;
  }
  if (EVP_CIPHER_CTX_set_padding(p->ecb128, 0) != 1 ||
      EVP_CIPHER_CTX_set_padding(p->ecb256, 0) != 1) {
    goto cleanup;
  }

  crypto->ops = &ossl_ops;
  crypto->ctx = p;
  p = NULL;
  rv = 0;

cleanup:
  ossl_free(p);
  return rv;
}

void mtcsec_crypto_openssl_del(mtcsec_crypto *crypto) {
  if (crypto == NULL) {
    return;
  }
  ossl_free(crypto->ctx);
  crypto->ops = NULL;
  crypto->ctx = NULL;
}
