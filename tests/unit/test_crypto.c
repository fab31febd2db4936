/*
 * Known-answer tests of the crypto providers and of mtcsec_kdf(), run
 * through every real provider built in (OpenSSL, and Mbed TLS when
 * MTCSEC_HAVE_MBEDTLS is defined), plus the deterministic test provider and
 * the constant-time helpers.  Each vector cites its source.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#ifdef MTCSEC_HAVE_MBEDTLS
#  include <mtcsec/crypto_mbedtls.h>
#endif

#include "crypto_fixture.h"
#include "crypto/provider_fixed.h"

/* ------------------------------------------------------------ helpers */

#define MAXBUF 512

typedef struct provider_set {
  const mtcsec_crypto *p[TH_MAX_PROVIDERS];
  const char *name[TH_MAX_PROVIDERS];
  size_t n;
} provider_set;

static void get_providers(provider_set *s) {
  s->n = th_providers(s->p, s->name);
  assert_true(s->n >= 1);
}

/* Fails with the provider name and both values in hex when got != hex. */
static void check_hex(const char *who, const char *what, const uint8_t *got,
                      size_t gotlen, const char *hex) {
  uint8_t exp[MAXBUF];
  char a[2 * MAXBUF + 1], b[2 * MAXBUF + 1];
  size_t explen = th_unhex(exp, sizeof(exp), hex);

  if (explen != gotlen || memcmp(exp, got, gotlen) != 0) {
    th_hex(a, got, gotlen);
    th_hex(b, exp, explen);
    fail_msg("%s: %s\n  got      %s\n  expected %s", who, what, a, b);
  }
}

static int is_zero(const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (p[i] != 0) {
      return 0;
    }
  }
  return 1;
}

static int mac1(const mtcsec_crypto *c, mtcsec_mac_alg alg, const uint8_t *key,
                size_t keylen, const uint8_t *msg, size_t msglen, uint8_t *out,
                size_t outlen) {
  mtcsec_iov iov;
  iov.base = msg;
  iov.len = msglen;
  return c->ops->mac(c->ctx, alg, key, keylen, &iov, 1, out, outlen);
}

static void load_str(uint8_t *out, size_t *outlen, const char *s) {
  *outlen = strlen(s);
  memcpy(out, s, *outlen);
}

/* ------------------------------------------------------------ CMAC */

/*
 * RFC 4493 section 4, Examples 1-4 (AES-128), identical to NIST SP 800-38B
 * Appendix D.1; the AES-256 results are SP 800-38B Appendix D.3 (same
 * message).  All eight were re-checked with `openssl mac -cipher
 * AES-128-CBC/AES-256-CBC ... CMAC`.
 */
static const char cmac_msg[] =
  "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"
  "30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
static const char cmac_key128[] = "2b7e151628aed2a6abf7158809cf4f3c";
static const char cmac_key256[] =
  "603deb1015ca71be2b73aef0857d7781 1f352c073b6108d72d9810a30914dff4";

static const struct {
  size_t msglen;
  const char *tag128;
  const char *tag256;
} cmac_vectors[] = {
  {0, "bb1d6929e95937287fa37d129b756746", "028962f61b7bf89efc6b551f4667d983"},
  {16, "070a16b46b4d4144f79bdd9dd04a287c", "28a7023f452e8f82bd4bf28d8c37c35c"},
  {40, "dfa66747de9ae63030ca32611497c827", "aaf3d8f1de5640c232f5b169b9c911e6"},
  {64, "51f0bebf7e3b9d92fc49741779363cfe", "e1992190549f6ed5696a2c056c315410"},
};

static void test_crypto_cmac_rfc4493(void **state) {
  provider_set s;
  uint8_t msg[64], k128[16], k256[32], tag[16];
  size_t i, v;
  (void)state;

  get_providers(&s);
  th_unhex(msg, sizeof(msg), cmac_msg);
  th_unhex(k128, sizeof(k128), cmac_key128);
  th_unhex(k256, sizeof(k256), cmac_key256);
  for (i = 0; i < s.n; i++) {
    for (v = 0; v < sizeof(cmac_vectors) / sizeof(cmac_vectors[0]); v++) {
      assert_int_equal(0, mac1(s.p[i], MTCSEC_MAC_AES_CMAC, k128, 16, msg,
                               cmac_vectors[v].msglen, tag, 16));
      check_hex(s.name[i], "AES-128-CMAC", tag, 16, cmac_vectors[v].tag128);
      assert_int_equal(0, mac1(s.p[i], MTCSEC_MAC_AES_CMAC, k256, 32, msg,
                               cmac_vectors[v].msglen, tag, 16));
      check_hex(s.name[i], "AES-256-CMAC", tag, 16, cmac_vectors[v].tag256);
    }
  }
}

/* Providers that remember the key of a context must notice every change:
 * A, B, A, A' (A with its last bit flipped) of the same length, and an
 * HMAC key too long to remember in between.  Each result must equal the
 * result of a fresh provider instance (the OpenSSL one). */
static void test_crypto_mac_key_changes_are_seen(void **state) {
  provider_set s;
  static const uint8_t msg[40] = {1, 2, 3};
  uint8_t keys[4][32], longkey[131], got[32], want[32];
  size_t i, k, len;
  mtcsec_mac_alg alg;
  (void)state;
  get_providers(&s);
  memset(keys[0], 0x11, 32);
  memset(keys[1], 0x22, 32);
  memset(keys[2], 0x11, 32);
  memset(keys[3], 0x11, 32);
  keys[3][31] ^= 1;
  keys[3][15] ^= 1;
  memset(longkey, 0xaa, sizeof(longkey));
  for (i = 0; i < s.n; i++) {
    for (alg = MTCSEC_MAC_AES_CMAC; alg <= MTCSEC_MAC_HMAC_SHA256; alg++) {
      for (len = 16; len <= 32; len += 16) {
        for (k = 0; k < 4; k++) {
          mtcsec_crypto fresh;
          assert_int_equal(mtcsec_crypto_openssl_new(&fresh), 0);
          assert_int_equal(
            0, mac1(&fresh, alg, keys[k], len, msg, sizeof(msg), want, 16));
          mtcsec_crypto_openssl_del(&fresh);
          assert_int_equal(
            0, mac1(s.p[i], alg, keys[k], len, msg, sizeof(msg), got, 16));
          assert_memory_equal(got, want, 16);
          if (alg == MTCSEC_MAC_HMAC_SHA256 && k == 1) {
            assert_int_equal(0, mac1(s.p[i], alg, longkey, sizeof(longkey), msg,
                                     sizeof(msg), got, 16));
          }
        }
      }
    }
  }
}

/* More keys in turn than a provider keeps contexts for: every result still
 * equals a fresh provider's (OpenSSL keeps 3 contexts per algorithm). */
static void test_crypto_mac_many_keys_in_turn(void **state) {
  provider_set s;
  static const uint8_t msg[20] = {9, 8, 7};
  uint8_t keys[5][16], got[16], want[5][16];
  size_t i, k, round;
  mtcsec_crypto fresh;
  (void)state;
  get_providers(&s);
  assert_int_equal(mtcsec_crypto_openssl_new(&fresh), 0);
  for (k = 0; k < 5; k++) {
    memset(keys[k], (int)(0x40 + k), sizeof(keys[k]));
  }
  for (k = 0; k < 5; k++) {
    mtcsec_crypto again;
    assert_int_equal(mtcsec_crypto_openssl_new(&again), 0);
    assert_int_equal(0, mac1(&again, MTCSEC_MAC_AES_CMAC, keys[k], 16, msg,
                             sizeof(msg), want[k], 16));
    mtcsec_crypto_openssl_del(&again);
  }
  for (i = 0; i < s.n; i++) {
    for (round = 0; round < 3; round++) {
      /* Orders that hit, miss and evict: 0 1 2 3 4, then 4 3 2 1 0... */
      for (k = 0; k < 5; k++) {
        size_t j = round == 1 ? 4 - k : (k * (round + 1)) % 5;
        assert_int_equal(0, mac1(s.p[i], MTCSEC_MAC_AES_CMAC, keys[j], 16, msg,
                                 sizeof(msg), got, 16));
        assert_memory_equal(got, want[j], 16);
      }
    }
  }
  mtcsec_crypto_openssl_del(&fresh);
}

/* The MAC is over the concatenation of the iov pieces, whatever the split
 * (RFC 4493 Example 3, 40 bytes, cut at 0, 1, 15, 16, 17 and 39). */
static void test_crypto_cmac_scattered_input(void **state) {
  provider_set s;
  uint8_t msg[64], key[16], tag[16];
  mtcsec_iov iov[5];
  size_t i;
  (void)state;

  get_providers(&s);
  th_unhex(msg, sizeof(msg), cmac_msg);
  th_unhex(key, sizeof(key), cmac_key128);
  iov[0].base = msg;
  iov[0].len = 1;
  iov[1].base = NULL; /* empty pieces are allowed and skipped */
  iov[1].len = 0;
  iov[2].base = msg + 1;
  iov[2].len = 16;
  iov[3].base = msg + 17;
  iov[3].len = 22;
  iov[4].base = msg + 39;
  iov[4].len = 1;
  for (i = 0; i < s.n; i++) {
    memset(tag, 0, sizeof(tag));
    assert_int_equal(0, s.p[i]->ops->mac(s.p[i]->ctx, MTCSEC_MAC_AES_CMAC, key,
                                         16, iov, 5, tag, 16));
    check_hex(s.name[i], "scattered CMAC", tag, 16,
              "dfa66747de9ae63030ca32611497c827");
    /* No pieces at all is the empty message (Example 1). */
    assert_int_equal(0, s.p[i]->ops->mac(s.p[i]->ctx, MTCSEC_MAC_AES_CMAC, key,
                                         16, NULL, 0, tag, 16));
    check_hex(s.name[i], "CMAC of no pieces", tag, 16,
              "bb1d6929e95937287fa37d129b756746");
  }
}

/* A MIC is the first t bytes of the MAC (PROTOCOL.md section 2). */
static void test_crypto_mac_truncation_and_bad_args(void **state) {
  provider_set s;
  uint8_t msg[64], key[32], tag[33];
  size_t i;
  (void)state;

  get_providers(&s);
  th_unhex(msg, sizeof(msg), cmac_msg);
  memset(key, 0, sizeof(key));
  th_unhex(key, sizeof(key), cmac_key128);
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];
    memset(tag, 0xee, sizeof(tag));
    assert_int_equal(0, mac1(c, MTCSEC_MAC_AES_CMAC, key, 16, msg, 16, tag, 8));
    /* RFC 4493 Example 2 truncated to 8 bytes; nothing written past. */
    check_hex(s.name[i], "CMAC/8", tag, 8, "070a16b46b4d4144");
    assert_int_equal(0xee, tag[8]);

    assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                     mac1(c, MTCSEC_MAC_AES_CMAC, key, 16, msg, 16, tag, 0));
    assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                     mac1(c, MTCSEC_MAC_AES_CMAC, key, 16, msg, 16, tag, 17));
    assert_int_equal(
      MTCSEC_ERR_INVALID_ARGUMENT,
      mac1(c, MTCSEC_MAC_HMAC_SHA256, key, 16, msg, 16, tag, 33));
    /* AES-CMAC takes 16- or 32-byte keys only. */
    assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                     mac1(c, MTCSEC_MAC_AES_CMAC, key, 24, msg, 16, tag, 16));
    assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                     mac1(c, MTCSEC_MAC_AES_CMAC, key, 0, msg, 16, tag, 16));
    assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                     mac1(c, (mtcsec_mac_alg)77, key, 16, msg, 16, tag, 16));
    /* A non-empty piece with no bytes behind it. */
    assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                     mac1(c, MTCSEC_MAC_AES_CMAC, key, 16, NULL, 3, tag, 16));
  }
}

/* ------------------------------------------------------------ HMAC */

/*
 * RFC 4231 section 4, test cases 1-7 (HMAC-SHA-256 results); case 5 is
 * defined as the output truncated to 128 bits.  Re-checked with `openssl
 * mac -digest SHA256 ... HMAC`.  Keys and data of cases 1, 3, 4, 6, 7 are
 * repeated bytes, built below.
 */
static void test_crypto_hmac_rfc4231(void **state) {
  provider_set s;
  uint8_t key[131], data[160], tag[32];
  size_t keylen, datalen, i, j;
  (void)state;

  get_providers(&s);
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];

    /* Test Case 1 */
    memset(key, 0x0b, 20);
    assert_int_equal(0, mac1(c, MTCSEC_MAC_HMAC_SHA256, key, 20,
                             (const uint8_t *)"Hi There", 8, tag, 32));
    check_hex(s.name[i], "RFC 4231 case 1", tag, 32,
              "b0344c61d8db38535ca8afceaf0bf12b"
              "881dc200c9833da726e9376c2e32cff7");

    /* Test Case 2: a key shorter than the output. */
    load_str(key, &keylen, "Jefe");
    load_str(data, &datalen, "what do ya want for nothing?");
    assert_int_equal(
      0, mac1(c, MTCSEC_MAC_HMAC_SHA256, key, keylen, data, datalen, tag, 32));
    check_hex(s.name[i], "RFC 4231 case 2", tag, 32,
              "5bdcc146bf60754e6a042426089575c7"
              "5a003f089d2739839dec58b964ec3843");

    /* Test Case 3 */
    memset(key, 0xaa, 20);
    memset(data, 0xdd, 50);
    assert_int_equal(
      0, mac1(c, MTCSEC_MAC_HMAC_SHA256, key, 20, data, 50, tag, 32));
    check_hex(s.name[i], "RFC 4231 case 3", tag, 32,
              "773ea91e36800e46854db8ebd09181a7"
              "2959098b3ef8c122d9635514ced565fe");

    /* Test Case 4 */
    for (j = 0; j < 25; j++) {
      key[j] = (uint8_t)(j + 1);
    }
    memset(data, 0xcd, 50);
    assert_int_equal(
      0, mac1(c, MTCSEC_MAC_HMAC_SHA256, key, 25, data, 50, tag, 32));
    check_hex(s.name[i], "RFC 4231 case 4", tag, 32,
              "82558a389a443c0ea4cc819899f2083a"
              "85f0faa3e578f8077a2e3ff46729665b");

    /* Test Case 5: truncation to 128 bits, through outlen. */
    memset(key, 0x0c, 20);
    load_str(data, &datalen, "Test With Truncation");
    assert_int_equal(
      0, mac1(c, MTCSEC_MAC_HMAC_SHA256, key, 20, data, datalen, tag, 16));
    check_hex(s.name[i], "RFC 4231 case 5", tag, 16,
              "a3b6167473100ee06e0c796c2955552b");

    /* Test Case 6: a key longer than the block, hashed first. */
    memset(key, 0xaa, 131);
    load_str(data, &datalen,
             "Test Using Larger Than Block-Size Key - Hash Key First");
    assert_int_equal(
      0, mac1(c, MTCSEC_MAC_HMAC_SHA256, key, 131, data, datalen, tag, 32));
    check_hex(s.name[i], "RFC 4231 case 6", tag, 32,
              "60e431591ee0b67f0d8a26aacbf5b77f"
              "8e0bc6213728c5140546040f0ee37f54");

    /* Test Case 7: long key and data longer than the block. */
    load_str(data, &datalen,
             "This is a test using a larger than block-size key and a "
             "larger than block-size data. The key needs to be hashed "
             "before being used by the HMAC algorithm.");
    assert_int_equal(
      0, mac1(c, MTCSEC_MAC_HMAC_SHA256, key, 131, data, datalen, tag, 32));
    check_hex(s.name[i], "RFC 4231 case 7", tag, 32,
              "9b09ffa71b942fcb27635fbcd5b0e944"
              "bfdc63644f0713938a7f51535c3a35e2");
  }
}

/* ------------------------------------------------------------ KDF */

/*
 * RFC 8009 Appendix A (aes128-cts-hmac-sha256-128).  Its KDF-HMAC-SHA2 is
 * SP 800-108 counter mode with HMAC-SHA-256 and exactly our fixed data:
 * [1]32 || label || 0x00 || context || [k]32 (RFC 8009 section 3).
 *  - "Sample results for key derivation": Kc, Ke, Ki for key usage 2, label
 *    0x0000000299 / 0x00000002AA / 0x0000000255, no context, k = 128.
 *  - "Sample pseudorandom function (PRF) invocations": label "prf", context
 *    "test", k = 256.
 * Re-checked with `openssl kdf ... -kdfopt mac:HMAC -kdfopt digest:SHA256
 * -kdfopt salt:... -kdfopt info:... KBKDF`.
 */
static void test_crypto_kdf_rfc8009(void **state) {
  static const struct {
    const char *label;
    size_t labellen;
    const char *context;
    size_t outlen;
    const char *out;
  } vec[] = {
    {"\x00\x00\x00\x02\x99", 5, "", 16, "b31a018a48f54776f403e9a396325dc3"},
    {"\x00\x00\x00\x02\xaa", 5, "", 16, "9b197dd1e8c5609d6e67c3e37c62c72e"},
    {"\x00\x00\x00\x02\x55", 5, "", 16, "9fda0e56ab2d85e1569a688696c26a6c"},
    {"prf", 3, "test", 32,
     "9d188616f63852fe86915bb840b4a886ff3e6bb0f819b49b893393d393854295"},
  };
  provider_set s;
  uint8_t key[16], out[32];
  size_t i, v;
  (void)state;

  get_providers(&s);
  th_unhex(key, sizeof(key), "3705d96080c17728a0e800eab6e0d23c");
  for (i = 0; i < s.n; i++) {
    for (v = 0; v < sizeof(vec) / sizeof(vec[0]); v++) {
      size_t ctxlen = strlen(vec[v].context);
      assert_int_equal(0, mtcsec_kdf(s.p[i], MTCSEC_MAC_HMAC_SHA256, key, 16,
                                     vec[v].label, vec[v].labellen,
                                     (const uint8_t *)vec[v].context, ctxlen,
                                     out, vec[v].outlen));
      check_hex(s.name[i], "RFC 8009 KDF", out, vec[v].outlen, vec[v].out);
    }
  }
}

/* OpenSSL's KBKDF (counter mode, defaults use-l = use-separator = 1) is the
 * reference named by PROTOCOL.md section 2. */
static void openssl_kbkdf(mtcsec_mac_alg alg, const uint8_t *key, size_t keylen,
                          const char *label, size_t labellen,
                          const uint8_t *context, size_t contextlen,
                          uint8_t *out, size_t outlen) {
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
  EVP_KDF_CTX *kctx;
  OSSL_PARAM params[8], *p = params;
  uint8_t dummy = 0;

  assert_non_null(kdf);
  kctx = EVP_KDF_CTX_new(kdf);
  assert_non_null(kctx);
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, "counter", 0);
  if (alg == MTCSEC_MAC_AES_CMAC) {
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, "CMAC", 0);
    *p++ = OSSL_PARAM_construct_utf8_string(
      OSSL_KDF_PARAM_CIPHER, keylen == 16 ? "AES-128-CBC" : "AES-256-CBC", 0);
  } else {
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, "HMAC", 0);
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
  }
  *p++ =
    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, keylen);
  *p++ = OSSL_PARAM_construct_octet_string(
    OSSL_KDF_PARAM_SALT, labellen ? (void *)label : &dummy, labellen);
  *p++ = OSSL_PARAM_construct_octet_string(
    OSSL_KDF_PARAM_INFO, contextlen ? (void *)context : &dummy, contextlen);
  *p = OSSL_PARAM_construct_end();
  assert_int_equal(1, EVP_KDF_derive(kctx, out, outlen, params));
  EVP_KDF_CTX_free(kctx);
  EVP_KDF_free(kdf);
}

static void test_crypto_kdf_matches_openssl_kbkdf(void **state) {
  static const struct {
    mtcsec_mac_alg alg;
    size_t keylen;
  } algs[] = {
    {MTCSEC_MAC_AES_CMAC, 16},
    {MTCSEC_MAC_AES_CMAC, 32},
    {MTCSEC_MAC_HMAC_SHA256, 16},
    {MTCSEC_MAC_HMAC_SHA256, 32},
  };
  static const char *labels[] = {"mtcsec K_auth", "mtcsec K_dm", "", "x"};
  static const size_t outlens[] = {1, 13, 16, 17, 32, 33, 48, 100, 1024};
  provider_set s;
  uint8_t key[32], context[64], got[1024], want[1024];
  size_t i, a, l, o, c;
  (void)state;

  get_providers(&s);
  for (c = 0; c < sizeof(context); c++) {
    context[c] = (uint8_t)(0x30 + c);
  }
  for (c = 0; c < sizeof(key); c++) {
    key[c] = (uint8_t)(0xa0 ^ (c * 7));
  }
  for (i = 0; i < s.n; i++) {
    for (a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
      for (l = 0; l < sizeof(labels) / sizeof(labels[0]); l++) {
        for (o = 0; o < sizeof(outlens) / sizeof(outlens[0]); o++) {
          /* Context lengths 0, 16 (two IDs) and the maximum 64. */
          size_t ctxlen = (o % 3 == 0) ? 0 : (o % 3 == 1) ? 16 : 64;
          memset(got, 0, sizeof(got));
          assert_int_equal(
            0, mtcsec_kdf(s.p[i], algs[a].alg, key, algs[a].keylen, labels[l],
                          strlen(labels[l]), context, ctxlen, got, outlens[o]));
          openssl_kbkdf(algs[a].alg, key, algs[a].keylen, labels[l],
                        strlen(labels[l]), context, ctxlen, want, outlens[o]);
          if (memcmp(got, want, outlens[o]) != 0) {
            fail_msg("%s: kdf alg %d keylen %zu label '%s' ctx %zu out %zu "
                     "differs from OpenSSL KBKDF",
                     s.name[i], (int)algs[a].alg, algs[a].keylen, labels[l],
                     ctxlen, outlens[o]);
          }
        }
      }
    }
  }
}

/*
 * The composition itself, against the RFC 4493-verified CMAC: a 13-byte
 * output is CMAC(K, [1]32 || label || 0x00 || context || [104]32) cut to
 * 13 bytes (L = 104, section 2), which differs from the first 13 bytes of
 * a 16-byte derivation (L = 128).
 */
static void test_crypto_kdf_composition(void **state) {
  static const char label[] = "mtcsec K_auth";
  provider_set s;
  uint8_t key[16], ctx[16], msg[64], mac[16], iv[13], k16[16];
  size_t i, m = 0;
  (void)state;

  get_providers(&s);
  th_unhex(key, sizeof(key), cmac_key128);
  th_unhex(ctx, sizeof(ctx), "0011223344556677 8899aabbccddeeff");
  msg[m++] = 0;
  msg[m++] = 0;
  msg[m++] = 0;
  msg[m++] = 1;
  memcpy(msg + m, label, sizeof(label) - 1);
  m += sizeof(label) - 1;
  msg[m++] = 0x00;
  memcpy(msg + m, ctx, sizeof(ctx));
  m += sizeof(ctx);
  msg[m++] = 0;
  msg[m++] = 0;
  msg[m++] = 0;
  msg[m++] = 104;
  for (i = 0; i < s.n; i++) {
    assert_int_equal(
      0, mac1(s.p[i], MTCSEC_MAC_AES_CMAC, key, 16, msg, m, mac, 16));
    assert_int_equal(0, mtcsec_kdf(s.p[i], MTCSEC_MAC_AES_CMAC, key, 16, label,
                                   sizeof(label) - 1, ctx, sizeof(ctx), iv,
                                   sizeof(iv)));
    assert_memory_equal(mac, iv, sizeof(iv));
    assert_int_equal(0, mtcsec_kdf(s.p[i], MTCSEC_MAC_AES_CMAC, key, 16, label,
                                   sizeof(label) - 1, ctx, sizeof(ctx), k16,
                                   sizeof(k16)));
    assert_memory_not_equal(k16, iv, sizeof(iv));
  }
}

static void test_crypto_kdf_rejects_bad_arguments(void **state) {
  const mtcsec_crypto *c = th_openssl();
  mtcsec_crypto nomac;
  mtcsec_crypto_ops ops;
  uint8_t key[32] = {1}, ctx[65] = {0}, out[1025];
  char label[66];
  (void)state;

  memset(label, 'a', sizeof(label) - 1);
  label[sizeof(label) - 1] = '\0';
  assert_int_equal(0, mtcsec_kdf(c, MTCSEC_MAC_AES_CMAC, key, 16, label, 64,
                                 ctx, 64, out, 1024));
  assert_int_equal(
    MTCSEC_ERR_INVALID_ARGUMENT,
    mtcsec_kdf(c, MTCSEC_MAC_AES_CMAC, key, 16, label, 65, ctx, 0, out, 16));
  assert_int_equal(
    MTCSEC_ERR_INVALID_ARGUMENT,
    mtcsec_kdf(c, MTCSEC_MAC_AES_CMAC, key, 16, label, 1, ctx, 65, out, 16));
  assert_int_equal(
    MTCSEC_ERR_INVALID_ARGUMENT,
    mtcsec_kdf(c, MTCSEC_MAC_AES_CMAC, key, 16, label, 1, ctx, 0, out, 0));
  assert_int_equal(
    MTCSEC_ERR_INVALID_ARGUMENT,
    mtcsec_kdf(c, MTCSEC_MAC_AES_CMAC, key, 16, label, 1, ctx, 0, out, 1025));
  assert_int_equal(
    MTCSEC_ERR_INVALID_ARGUMENT,
    mtcsec_kdf(c, MTCSEC_MAC_AES_CMAC, key, 16, NULL, 1, ctx, 0, out, 16));
  assert_int_equal(
    MTCSEC_ERR_INVALID_ARGUMENT,
    mtcsec_kdf(c, MTCSEC_MAC_AES_CMAC, key, 16, label, 1, NULL, 1, out, 16));
  assert_int_equal(
    MTCSEC_ERR_INVALID_ARGUMENT,
    mtcsec_kdf(c, (mtcsec_mac_alg)9, key, 16, label, 1, ctx, 0, out, 16));
  assert_int_equal(
    MTCSEC_ERR_INVALID_ARGUMENT,
    mtcsec_kdf(NULL, MTCSEC_MAC_AES_CMAC, key, 16, label, 1, ctx, 0, out, 16));
  /* NULL label and context are fine when empty. */
  assert_int_equal(
    0, mtcsec_kdf(c, MTCSEC_MAC_AES_CMAC, key, 16, NULL, 0, NULL, 0, out, 16));

  /* A provider error is passed through and no partial key is left. */
  ops = *c->ops;
  ops.mac = NULL;
  nomac.ops = &ops;
  nomac.ctx = c->ctx;
  assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                   mtcsec_kdf(&nomac, MTCSEC_MAC_AES_CMAC, key, 16, label, 1,
                              ctx, 0, out, 16));
  memset(out, 0x55, 48);
  assert_int_equal(
    MTCSEC_ERR_INVALID_ARGUMENT,
    mtcsec_kdf(c, MTCSEC_MAC_AES_CMAC, key, 24, label, 1, ctx, 0, out, 48));
  assert_true(is_zero(out, 48));
}

/* ------------------------------------------------------------ CCM */

typedef struct ccm_vector {
  const char *source;
  const char *key;
  const char *nonce;
  const char *aad;
  const char *pt;
  const char *ct_tag;
  size_t taglen;
} ccm_vector;

static const ccm_vector ccm_vectors[] = {
  /* RFC 3610 section 8, Packet Vector #1: AES-128, M = 8, L = 2 (13-byte
   * nonce); the first 8 bytes of the packet are the AAD. */
  {"RFC 3610 packet vector #1", "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
   "00000003020100a0a1a2a3a4a5", "0001020304050607",
   "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
   "588c979a61c663d2f066d0c2c0f989806d5f6b61dac384 17e8d12cfdf926e0", 8},
  /* NIST CAVP CCM (ccmtestvectors.zip), VTT AES-256, P=24 N=13 A=32 T=16,
   * as carried in Mbed TLS tests/suites/test_suite_ccm.data ("CCM encrypt
   * and tag NIST VTT AES-256 #7"). */
  {"NIST CCM VTT AES-256 #7 (T=16)",
   "60823b64e0b2da3a7eb772bd5941c534e6ff94ea96b564e2b38f82c78bb54522",
   "48526f1bffc97dd65e42906983",
   "fab62b3e5deda7a9c1128663cc81c44b74ab1bfe70bc1c9dec7c7fd08173b80a",
   "a8be794613835c4366e75817d228438f011a2ec8a86f9797",
   "cc3efe04d84a4ec5cb6a6c28dc2c2d386a359d9550dbdec9"
   "63ddd56464aed6d0613159d1aa181dcb",
   16},
  /* NIST CAVP CCM VTT AES-128, P=24 N=13 A=32 T=16 (same source, "NIST VTT
   * AES-128 #7"): suite 0x02's channel AEAD shape. */
  {"NIST CCM VTT AES-128 #7 (T=16)", "4189351b5caea375a0299e81c621bf43",
   "48c0906930561e0ab0ef4cd972",
   "40a27c1d1e23ea3dbe8056b2774861a4a201cce49f19997d19206d8c8a343951",
   "4535d12b4377928a7c0a61c9f825a48671ea05910748c8ef",
   "26c56961c035a7e452cce61bc6ee220d77b3f94d18fd10b6"
   "d80e8bf80f4a46cab06d4313f0db9be9",
   16},
  /* Empty plaintext and AAD: tag only ("CCM encrypt and tag AES-128 (P=0,
   * N=13, A=0, T=16)", same Mbed TLS file). */
  {"CCM AES-128 P=0 A=0 T=16", "54caf96ef6d448734700aadab50faf7a",
   "a3803e752ae849c910d8da36af", "", "", "eba8347baa6d61f87b67c2dd7c6d2053",
   16},
};

typedef struct ccm_bufs {
  uint8_t key[32], nonce[13], aad[64], pt[64], ct[96];
  size_t keylen, aadlen, ptlen, ctlen;
} ccm_bufs;

static void ccm_load(ccm_bufs *b, const ccm_vector *v) {
  b->keylen = th_unhex(b->key, sizeof(b->key), v->key);
  assert_int_equal(13, th_unhex(b->nonce, sizeof(b->nonce), v->nonce));
  b->aadlen = th_unhex(b->aad, sizeof(b->aad), v->aad);
  b->ptlen = th_unhex(b->pt, sizeof(b->pt), v->pt);
  b->ctlen = th_unhex(b->ct, sizeof(b->ct), v->ct_tag);
  assert_int_equal(b->ptlen + v->taglen, b->ctlen);
}

static void test_crypto_ccm_known_answers(void **state) {
  provider_set s;
  ccm_bufs b;
  uint8_t out[96], back[64];
  size_t i, v;
  (void)state;

  get_providers(&s);
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];
    for (v = 0; v < sizeof(ccm_vectors) / sizeof(ccm_vectors[0]); v++) {
      const ccm_vector *vec = &ccm_vectors[v];
      ccm_load(&b, vec);
      memset(out, 0, sizeof(out));
      assert_int_equal(0, c->ops->ccm_seal(c->ctx, b.key, b.keylen, b.nonce,
                                           b.aadlen ? b.aad : NULL, b.aadlen,
                                           b.ptlen ? b.pt : NULL, b.ptlen, out,
                                           vec->taglen));
      check_hex(s.name[i], vec->source, out, b.ctlen, vec->ct_tag);

      memset(back, 0xaa, sizeof(back));
      assert_int_equal(0, c->ops->ccm_open(c->ctx, b.key, b.keylen, b.nonce,
                                           b.aadlen ? b.aad : NULL, b.aadlen,
                                           b.ct, b.ctlen, b.ptlen ? back : NULL,
                                           vec->taglen));
      assert_memory_equal(back, b.pt, b.ptlen);
    }
  }
}

/* out == in is allowed for both directions. */
static void test_crypto_ccm_in_place(void **state) {
  provider_set s;
  ccm_bufs b;
  uint8_t buf[96];
  size_t i;
  (void)state;

  get_providers(&s);
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];
    ccm_load(&b, &ccm_vectors[1]);
    memcpy(buf, b.pt, b.ptlen);
    assert_int_equal(0,
                     c->ops->ccm_seal(c->ctx, b.key, b.keylen, b.nonce, b.aad,
                                      b.aadlen, buf, b.ptlen, buf, 16));
    assert_memory_equal(buf, b.ct, b.ctlen);
    assert_int_equal(0,
                     c->ops->ccm_open(c->ctx, b.key, b.keylen, b.nonce, b.aad,
                                      b.aadlen, buf, b.ctlen, buf, 16));
    assert_memory_equal(buf, b.pt, b.ptlen);
  }
}

/* Any change to ciphertext, tag, AAD, nonce or key gives MTCSEC_ERR_MIC
 * with the output zeroed (crypto.h). */
static void test_crypto_ccm_tag_failure_zeroes_output(void **state) {
  provider_set s;
  ccm_bufs b;
  uint8_t out[64], ct[96], in_place[96];
  size_t i, t;
  (void)state;

  get_providers(&s);
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];
    for (t = 0; t < 6; t++) {
      ccm_load(&b, &ccm_vectors[0]);
      memcpy(ct, b.ct, b.ctlen);
      switch (t) {
      case 0:
        ct[0] ^= 0x01; /* ciphertext */
        break;
      case 1:
        ct[b.ctlen - 1] ^= 0x80; /* tag */
        break;
      case 2:
        b.aad[3] ^= 0x10; /* AAD */
        break;
      case 3:
        b.nonce[12] ^= 0x01; /* nonce */
        break;
      case 4:
        b.key[0] ^= 0x01; /* key */
        break;
      default:
        /* Right bytes, wrong tag length (the tag is 8 bytes). */
        break;
      }
      memset(out, 0xaa, sizeof(out));
      if (t == 5) {
        assert_int_equal(MTCSEC_ERR_MIC,
                         c->ops->ccm_open(c->ctx, b.key, b.keylen, b.nonce,
                                          b.aad, b.aadlen, ct, b.ctlen, out,
                                          4));
        assert_true(is_zero(out, b.ctlen - 4));
        continue;
      }
      assert_int_equal(MTCSEC_ERR_MIC,
                       c->ops->ccm_open(c->ctx, b.key, b.keylen, b.nonce, b.aad,
                                        b.aadlen, ct, b.ctlen, out, 8));
      if (!is_zero(out, b.ptlen)) {
        fail_msg("%s: tamper case %zu left plaintext in out", s.name[i], t);
      }
      assert_int_equal(0xaa, out[b.ptlen]); /* nothing past ptlen */

      memcpy(in_place, ct, b.ctlen);
      assert_int_equal(MTCSEC_ERR_MIC,
                       c->ops->ccm_open(c->ctx, b.key, b.keylen, b.nonce, b.aad,
                                        b.aadlen, in_place, b.ctlen, in_place,
                                        8));
      assert_true(is_zero(in_place, b.ptlen));
    }

    /* The same context still opens a good message after failures. */
    ccm_load(&b, &ccm_vectors[0]);
    assert_int_equal(0,
                     c->ops->ccm_open(c->ctx, b.key, b.keylen, b.nonce, b.aad,
                                      b.aadlen, b.ct, b.ctlen, out, 8));
    assert_memory_equal(out, b.pt, b.ptlen);
  }
}

static void test_crypto_ccm_rejects_bad_arguments(void **state) {
  provider_set s;
  ccm_bufs b;
  uint8_t out[96];
  size_t i;
  (void)state;

  get_providers(&s);
  ccm_load(&b, &ccm_vectors[0]);
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];
    const size_t bad_tags[] = {0, 2, 3, 5, 17, 18};
    size_t t;
    for (t = 0; t < sizeof(bad_tags) / sizeof(bad_tags[0]); t++) {
      assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                       c->ops->ccm_seal(c->ctx, b.key, 16, b.nonce, b.aad,
                                        b.aadlen, b.pt, b.ptlen, out,
                                        bad_tags[t]));
    }
    assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                     c->ops->ccm_seal(c->ctx, b.key, 24, b.nonce, b.aad,
                                      b.aadlen, b.pt, b.ptlen, out, 8));
    /* Shorter than the tag. */
    assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                     c->ops->ccm_open(c->ctx, b.key, 16, b.nonce, b.aad,
                                      b.aadlen, b.ct, 7, out, 8));
  }
}

/* Every provider opens what every other sealed, for each tag length, both
 * key sizes and message lengths around the block size. */
static void test_crypto_ccm_cross_provider(void **state) {
  static const size_t lens[] = {0, 1, 15, 16, 17, 31, 32, 33, 200};
  provider_set s;
  uint8_t key[32], nonce[13], aad[40], pt[200], ct[216], back[200];
  size_t a, b, k, t, l;
  (void)state;

  get_providers(&s);
  for (l = 0; l < sizeof(pt); l++) {
    pt[l] = (uint8_t)(l * 31 + 7);
  }
  for (l = 0; l < sizeof(aad); l++) {
    aad[l] = (uint8_t)(l ^ 0x5a);
  }
  for (l = 0; l < sizeof(key); l++) {
    key[l] = (uint8_t)(l + 0x40);
  }
  memset(nonce, 0x17, sizeof(nonce));
  for (a = 0; a < s.n; a++) {
    for (b = 0; b < s.n; b++) {
      for (k = 16; k <= 32; k += 16) {
        for (t = 4; t <= 16; t += 2) {
          for (l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
            size_t aadlen = (t + l) % 3 == 0 ? 0 : 13 + l;
            nonce[0] = (uint8_t)(t + l);
            assert_int_equal(0, s.p[a]->ops->ccm_seal(s.p[a]->ctx, key, k,
                                                      nonce, aad, aadlen, pt,
                                                      lens[l], ct, t));
            memset(back, 0, sizeof(back));
            if (s.p[b]->ops->ccm_open(s.p[b]->ctx, key, k, nonce, aad, aadlen,
                                      ct, lens[l] + t, back, t) != 0 ||
                memcmp(back, pt, lens[l]) != 0) {
              fail_msg("%s sealed, %s failed to open: key %zu tag %zu len %zu",
                       s.name[a], s.name[b], k, t, lens[l]);
            }
          }
        }
      }
    }
  }
}

/* ------------------------------------------------------------ AES */

/* FIPS-197 Appendix C.1 (AES-128) and C.3 (AES-256); re-checked with
 * `openssl enc -aes-128-ecb / -aes-256-ecb -nopad`. */
static void test_crypto_aes_block_fips197(void **state) {
  provider_set s;
  uint8_t key[32], in[16], out[16];
  size_t i;
  (void)state;

  get_providers(&s);
  th_unhex(in, sizeof(in), "00112233445566778899aabbccddeeff");
  th_unhex(key, sizeof(key),
           "000102030405060708090a0b0c0d0e0f"
           "101112131415161718191a1b1c1d1e1f");
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];
    if (c->ops->aes_block == NULL) {
      continue;
    }
    assert_int_equal(0, c->ops->aes_block(c->ctx, key, 16, in, out));
    check_hex(s.name[i], "FIPS-197 C.1", out, 16,
              "69c4e0d86a7b0430d8cdb78070b4c55a");
    assert_int_equal(0, c->ops->aes_block(c->ctx, key, 32, in, out));
    check_hex(s.name[i], "FIPS-197 C.3", out, 16,
              "8ea2b7ca516745bfeafc49904b496089");
    assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                     c->ops->aes_block(c->ctx, key, 24, in, out));
  }
}

/* SP 800-38A Appendix F.5.1 (CTR-AES128.Encrypt) and F.5.5
 * (CTR-AES256.Encrypt); re-checked with `openssl enc -aes-128-ctr`.  The
 * initial counter f0..feff carries into byte 14 on the second block. */
static void test_crypto_aes_ctr_sp800_38a(void **state) {
  static const char ct128[] =
    "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff"
    "5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee";
  static const char ct256[] =
    "601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5"
    "2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6";
  provider_set s;
  uint8_t k128[16], k256[32], icb[16], pt[64], out[64], exp[64];
  size_t i;
  (void)state;

  get_providers(&s);
  th_unhex(k128, sizeof(k128), cmac_key128);
  th_unhex(k256, sizeof(k256), cmac_key256);
  th_unhex(icb, sizeof(icb), "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  th_unhex(pt, sizeof(pt), cmac_msg); /* the same four plaintext blocks */
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];
    if (c->ops->aes_ctr == NULL) {
      continue;
    }
    assert_int_equal(0, c->ops->aes_ctr(c->ctx, k128, 16, icb, pt, 64, out));
    check_hex(s.name[i], "SP 800-38A F.5.1", out, 64, ct128);
    assert_int_equal(0, c->ops->aes_ctr(c->ctx, k256, 32, icb, pt, 64, out));
    check_hex(s.name[i], "SP 800-38A F.5.5", out, 64, ct256);

    /* A partial last block is a prefix of the same stream. */
    th_unhex(exp, sizeof(exp), ct128);
    assert_int_equal(0, c->ops->aes_ctr(c->ctx, k128, 16, icb, pt, 21, out));
    assert_memory_equal(out, exp, 21);
    /* In place, and decryption is the same operation. */
    memcpy(out, exp, 64);
    assert_int_equal(0, c->ops->aes_ctr(c->ctx, k128, 16, icb, out, 64, out));
    assert_memory_equal(out, pt, 64);
    /* An empty input is fine. */
    assert_int_equal(0, c->ops->aes_ctr(c->ctx, k128, 16, icb, NULL, 0, NULL));
  }
}

static void ctr_inc128(uint8_t b[16]) {
  int j;
  for (j = 15; j >= 0; j--) {
    if (++b[j] != 0) {
      break;
    }
  }
}

/* The counter is a 128-bit big-endian integer (128-EEA2): the carry crosses
 * the 64-bit boundary and wraps at 2^128.  Checked block by block against
 * aes_block on the expected counter values. */
static void test_crypto_aes_ctr_counter_carry(void **state) {
  static const char *icbs[] = {
    "0001020304050607 fffffffffffffffe",
    "ffffffffffffffff fffffffffffffffe",
  };
  provider_set s;
  uint8_t key[16], icb[16], ctr[16], zero[64], ks[64], blk[16];
  size_t i, v, j;
  (void)state;

  get_providers(&s);
  th_unhex(key, sizeof(key), cmac_key128);
  memset(zero, 0, sizeof(zero));
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];
    if (c->ops->aes_ctr == NULL || c->ops->aes_block == NULL) {
      continue;
    }
    for (v = 0; v < 2; v++) {
      th_unhex(icb, sizeof(icb), icbs[v]);
      assert_int_equal(0, c->ops->aes_ctr(c->ctx, key, 16, icb, zero, 64, ks));
      memcpy(ctr, icb, 16);
      for (j = 0; j < 4; j++) {
        assert_int_equal(0, c->ops->aes_block(c->ctx, key, 16, ctr, blk));
        if (memcmp(blk, ks + 16 * j, 16) != 0) {
          fail_msg("%s: CTR block %zu of icb %zu is not AES(K, icb + %zu)",
                   s.name[i], j, v, j);
        }
        ctr_inc128(ctr);
      }
    }
  }
}

/* ------------------------------------------------------------ random */

static void test_crypto_random_fills(void **state) {
  provider_set s;
  uint8_t a[32], b[32];
  size_t i;
  (void)state;

  get_providers(&s);
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(0, c->ops->random(c->ctx, a, sizeof(a)));
    assert_int_equal(0, c->ops->random(c->ctx, b, sizeof(b)));
    /* 2^-256 chance of a false failure. */
    assert_false(is_zero(a, sizeof(a)));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(0, c->ops->random(c->ctx, a, 0));
  }
}

/* ------------------------------------------------ deterministic provider */

static void test_crypto_fixed_serves_queue_then_generator(void **state) {
  mtcsec_fixed f1, f2, f3;
  const mtcsec_crypto *c1 = th_fixed(&f1, 42);
  const mtcsec_crypto *c2 = th_fixed(&f2, 42);
  const mtcsec_crypto *c3 = th_fixed(&f3, 43);
  uint8_t pushed[5] = {1, 2, 3, 4, 5};
  uint8_t big[MTCSEC_FIXED_QUEUE_LEN + 1];
  uint8_t out[16], r1[24], r2[24], r3[24];
  (void)state;

  /* Queued bytes come first, across calls, then the generator. */
  assert_int_equal(0, mtcsec_fixed_push(&f1, pushed, sizeof(pushed)));
  assert_int_equal(5, mtcsec_fixed_pending(&f1));
  assert_int_equal(0, c1->ops->random(c1->ctx, out, 3));
  assert_memory_equal(out, pushed, 3);
  assert_int_equal(2, mtcsec_fixed_pending(&f1));
  assert_int_equal(0, c1->ops->random(c1->ctx, out, 2));
  assert_memory_equal(out, pushed + 3, 2);
  assert_int_equal(0, mtcsec_fixed_pending(&f1));

  /* Same seed, same stream; another seed, another stream. */
  assert_int_equal(0, c1->ops->random(c1->ctx, r1, sizeof(r1)));
  assert_int_equal(0, c2->ops->random(c2->ctx, r2, 10));
  assert_int_equal(0, c2->ops->random(c2->ctx, r2 + 10, sizeof(r2) - 10));
  assert_int_equal(0, c3->ops->random(c3->ctx, r3, sizeof(r3)));
  assert_memory_equal(r1, r2, sizeof(r1));
  assert_memory_not_equal(r1, r3, sizeof(r1));

  /* A queue split between pushed bytes and the generator. */
  th_fixed(&f1, 7);
  th_fixed(&f2, 7);
  assert_int_equal(0, mtcsec_fixed_push(&f1, pushed, 2));
  assert_int_equal(0, c1->ops->random(c1->ctx, r1, 10));
  assert_int_equal(0, c2->ops->random(c2->ctx, r2, 8));
  assert_memory_equal(r1, pushed, 2);
  assert_memory_equal(r1 + 2, r2, 8);

  /* Overflow is refused whole. */
  memset(big, 0x33, sizeof(big));
  assert_int_equal(MTCSEC_ERR_NOBUF, mtcsec_fixed_push(&f1, big, sizeof(big)));
  assert_int_equal(0, mtcsec_fixed_pending(&f1));
  assert_int_equal(0, mtcsec_fixed_push(&f1, big, MTCSEC_FIXED_QUEUE_LEN));
  assert_int_equal(MTCSEC_ERR_NOBUF, mtcsec_fixed_push(&f1, big, 1));
}

static void test_crypto_fixed_forwards_to_base(void **state) {
  mtcsec_fixed f;
  const mtcsec_crypto *c = th_fixed(&f, 1);
  mtcsec_crypto noaes;
  mtcsec_crypto_ops ops;
  uint8_t msg[64], key[16], tag[16], in[16], out[16];
  ccm_bufs b;
  uint8_t ct[96];
  (void)state;

  th_unhex(msg, sizeof(msg), cmac_msg);
  th_unhex(key, sizeof(key), cmac_key128);
  assert_int_equal(0, mac1(c, MTCSEC_MAC_AES_CMAC, key, 16, msg, 64, tag, 16));
  check_hex("fixed", "RFC 4493 Example 4", tag, 16,
            "51f0bebf7e3b9d92fc49741779363cfe");

  ccm_load(&b, &ccm_vectors[0]);
  assert_int_equal(0, c->ops->ccm_seal(c->ctx, b.key, 16, b.nonce, b.aad,
                                       b.aadlen, b.pt, b.ptlen, ct, 8));
  assert_memory_equal(ct, b.ct, b.ctlen);
  ct[0] ^= 1;
  assert_int_equal(MTCSEC_ERR_MIC,
                   c->ops->ccm_open(c->ctx, b.key, 16, b.nonce, b.aad, b.aadlen,
                                    ct, b.ctlen, msg, 8));

  th_unhex(in, sizeof(in), "00112233445566778899aabbccddeeff");
  th_unhex(key, sizeof(key), "000102030405060708090a0b0c0d0e0f");
  assert_int_equal(0, c->ops->aes_block(c->ctx, key, 16, in, out));
  check_hex("fixed", "FIPS-197 C.1", out, 16,
            "69c4e0d86a7b0430d8cdb78070b4c55a");

  /* Optional ops the base lacks stay NULL in the wrapper. */
  ops = *th_openssl()->ops;
  ops.aes_block = NULL;
  ops.aes_ctr = NULL;
  noaes.ops = &ops;
  noaes.ctx = th_openssl()->ctx;
  mtcsec_fixed_init(&f, &noaes, 1);
  assert_null(mtcsec_fixed_crypto(&f)->ops->aes_block);
  assert_null(mtcsec_fixed_crypto(&f)->ops->aes_ctr);
  assert_non_null(mtcsec_fixed_crypto(&f)->ops->mac);
}

/* ------------------------------------- key buffers reused for new keys */

/*
 * The OpenSSL provider keeps OSSL_MAC_WAYS (3) keyed contexts per MAC
 * algorithm and key size and tries first the one last used with a key at
 * the same address; the key bytes must still decide.  A caller that reuses
 * one buffer for another key (or frees and reallocates at one address)
 * must get the MAC under the new key.  The oracle is OpenSSL's one-shot
 * EVP_Q_mac(), computed afresh for every call.
 */

/* More buffers than the provider keeps contexts per algorithm. */
#define KEYBUF_COUNT 8
#define KEYBUF_LEN 64

static uint64_t kb_rnd(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static size_t kb_below(uint64_t *s, size_t n) {
  return (size_t)(kb_rnd(s) % n);
}

static void kb_fill(uint64_t *s, uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    p[i] = (uint8_t)kb_rnd(s);
  }
}

typedef struct mac_case {
  mtcsec_mac_alg alg;
  size_t keylen;
} mac_case;

/* CMAC with both AES key sizes; HMAC with the suite key sizes, one odd
 * size, and sizes past what the provider remembers (33, 64). */
static const mac_case mac_cases[] = {
  {MTCSEC_MAC_AES_CMAC, 16},    {MTCSEC_MAC_AES_CMAC, 32},
  {MTCSEC_MAC_HMAC_SHA256, 16}, {MTCSEC_MAC_HMAC_SHA256, 32},
  {MTCSEC_MAC_HMAC_SHA256, 20}, {MTCSEC_MAC_HMAC_SHA256, 33},
  {MTCSEC_MAC_HMAC_SHA256, 64},
};
#define N_MAC_CASES (sizeof(mac_cases) / sizeof(mac_cases[0]))

static size_t mac_full_len(mtcsec_mac_alg alg) {
  return alg == MTCSEC_MAC_AES_CMAC ? MTCSEC_CMAC_LEN : MTCSEC_HMAC_SHA256_LEN;
}

/* The whole MAC by EVP_Q_mac() (OpenSSL 3.0+), into out[32]. */
static void oracle_mac(mtcsec_mac_alg alg, const uint8_t *key, size_t keylen,
                       const uint8_t *msg, size_t msglen, uint8_t *out) {
  size_t outlen = 0;
  const char *sub = alg == MTCSEC_MAC_HMAC_SHA256 ? "SHA256"
                    : keylen == 16                ? "AES-128-CBC"
                                                  : "AES-256-CBC";
  assert_non_null(
    EVP_Q_mac(NULL, alg == MTCSEC_MAC_HMAC_SHA256 ? "HMAC" : "CMAC", NULL, sub,
              NULL, key, keylen, msg, msglen, out, 32, &outlen));
  assert_int_equal(outlen, mac_full_len(alg));
}

/* MAC of msg under the key now at key through c, outlen bytes, split into
 * two pieces at cut; fails unless it equals the oracle's first outlen
 * bytes.  The result goes to got (32 bytes) when got is not NULL. */
static void check_mac_now(const char *who, const mtcsec_crypto *c,
                          mtcsec_mac_alg alg, const uint8_t *key, size_t keylen,
                          const uint8_t *msg, size_t msglen, size_t cut,
                          size_t outlen, uint8_t *got) {
  uint8_t out[32], want[32];
  char a[65], b[65];
  mtcsec_iov iov[2];
  assert_true(outlen >= 1 && outlen <= mac_full_len(alg) && cut <= msglen);
  iov[0].base = msg;
  iov[0].len = cut;
  iov[1].base = msg + cut;
  iov[1].len = msglen - cut;
  memset(out, 0, sizeof(out));
  assert_int_equal(0,
                   c->ops->mac(c->ctx, alg, key, keylen, iov, 2, out, outlen));
  oracle_mac(alg, key, keylen, msg, msglen, want);
  if (memcmp(out, want, outlen) != 0) {
    th_hex(a, out, outlen);
    th_hex(b, want, outlen);
    fail_msg("%s: %s key %zu bytes, out %zu: stale key?\n  got      %s\n"
             "  expected %s",
             who, alg == MTCSEC_MAC_AES_CMAC ? "CMAC" : "HMAC", keylen, outlen,
             a, b);
  }
  if (got != NULL) {
    memset(got, 0, 32);
    memcpy(got, out, outlen);
  }
}

/* MAC with the key in B, overwrite B with another key (last byte only,
 * first byte only, or all of it), MAC again: the new key's MAC, not the
 * old one's; and back.  Full-length and truncated outputs. */
static void test_crypto_mac_key_buffer_overwritten(void **state) {
  static const uint8_t msg[45] = {0x4d, 0x34, 1, 2, 3};
  provider_set s;
  uint64_t rs = 0xb0ff;
  size_t i, m, o;
  (void)state;

  get_providers(&s);
  /* The shared providers, then a new OpenSSL one per case (contexts that
   * start empty). */
  for (i = 0; i <= s.n; i++) {
    for (m = 0; m < N_MAC_CASES; m++) {
      const mac_case *mc = &mac_cases[m];
      size_t full = mac_full_len(mc->alg);
      const size_t outlens[3] = {full, 8, 4};
      mtcsec_crypto fresh;
      const mtcsec_crypto *c = s.p[0];
      const char *who = "openssl (new)";
      if (i < s.n) {
        c = s.p[i];
        who = s.name[i];
      } else {
        assert_int_equal(0, mtcsec_crypto_openssl_new(&fresh));
        c = &fresh;
      }
      for (o = 0; o < 3; o++) {
        uint8_t buf[KEYBUF_LEN], k0[KEYBUF_LEN], t0[32], t1[32];
        size_t L = mc->keylen, ol = outlens[o];
        kb_fill(&rs, buf, sizeof(buf));
        memcpy(k0, buf, sizeof(buf));
        check_mac_now(who, c, mc->alg, buf, L, msg, sizeof(msg), 0, ol, t0);
        /* Differs in the last byte only. */
        buf[L - 1] ^= 0x01;
        check_mac_now(who, c, mc->alg, buf, L, msg, sizeof(msg), 7, ol, t1);
        assert_memory_not_equal(t0, t1, ol);
        /* Back to the first key: its MAC again. */
        buf[L - 1] ^= 0x01;
        check_mac_now(who, c, mc->alg, buf, L, msg, sizeof(msg), 0, ol, t1);
        assert_memory_equal(t0, t1, ol);
        /* Differs in the first byte only. */
        buf[0] ^= 0x80;
        check_mac_now(who, c, mc->alg, buf, L, msg, sizeof(msg), sizeof(msg),
                      ol, t1);
        assert_memory_not_equal(t0, t1, ol);
        /* A wholly new key, twice (the second call may hit a context). */
        kb_fill(&rs, buf, sizeof(buf));
        check_mac_now(who, c, mc->alg, buf, L, msg, sizeof(msg), 1, ol, t1);
        check_mac_now(who, c, mc->alg, buf, L, msg, sizeof(msg), 44, ol, t0);
        assert_memory_equal(t0, t1, ol);
        /* The first key again, now at another address. */
        check_mac_now(who, c, mc->alg, k0, L, msg, sizeof(msg), 3, ol, NULL);
      }
      if (i == s.n) {
        mtcsec_crypto_openssl_del(&fresh);
      }
    }
  }
}

/* MAC under a key held in a local array of a callee: consecutive calls
 * usually reuse one stack address for different keys. */
static void mac_with_stack_key(const char *who, const mtcsec_crypto *c,
                               const mac_case *mc, const uint8_t *keyval,
                               const uint8_t *msg, size_t msglen) {
  uint8_t key[KEYBUF_LEN];
  memcpy(key, keyval, mc->keylen);
  check_mac_now(who, c, mc->alg, key, mc->keylen, msg, msglen, msglen / 2,
                mac_full_len(mc->alg), NULL);
  mtcsec_zeroize(key, sizeof(key));
}

/* More buffers than contexts, and keys that differ only in their last
 * byte, cycling through them: in rounds where each buffer's key changes on
 * every pass (every address hint points at a context holding another
 * key), at random, through a freed and reallocated buffer and through the
 * stack. */
static void test_crypto_mac_keys_cycle_through_buffers(void **state) {
  provider_set s;
  uint64_t rs = 0xc1c1e;
  uint8_t bufs[KEYBUF_COUNT][KEYBUF_LEN], base[KEYBUF_LEN], msg[100];
  size_t i, m, nb, pass, b, step;
  (void)state;

  get_providers(&s);
  kb_fill(&rs, msg, sizeof(msg));
  /* The shared providers, then a new OpenSSL one per case: its contexts
   * start empty, so which key lands in which context is the same on
   * every run, whatever the tests before did. */
  for (i = 0; i <= s.n; i++) {
    for (m = 0; m < N_MAC_CASES; m++) {
      const mac_case *mc = &mac_cases[m];
      size_t L = mc->keylen, full = mac_full_len(mc->alg);
      mtcsec_crypto fresh;
      const mtcsec_crypto *c = s.p[0];
      const char *who = "openssl (new)";
      if (i < s.n) {
        c = s.p[i];
        who = s.name[i];
      } else {
        assert_int_equal(0, mtcsec_crypto_openssl_new(&fresh));
        c = &fresh;
      }
      kb_fill(&rs, base, sizeof(base));
      /* Key k of the pool: base with k in its last byte. */
      for (nb = 2; nb <= KEYBUF_COUNT; nb++) {
        for (pass = 0; pass < 4; pass++) {
          for (b = 0; b < nb; b++) {
            memcpy(bufs[b], base, L);
            bufs[b][L - 1] = (uint8_t)((b + pass) % (nb + 1));
            check_mac_now(who, c, mc->alg, bufs[b], L, msg,
                          (b * 37 + pass) % sizeof(msg), 0,
                          (b + pass) % 2 ? full : 8, NULL);
          }
        }
      }
      /* Random writes and MACs over all buffers, 11 keys in the pool. */
      for (step = 0; step < 150; step++) {
        b = kb_below(&rs, KEYBUF_COUNT);
        if (kb_below(&rs, 2) == 0) {
          memcpy(bufs[b], base, L);
          bufs[b][L - 1] = (uint8_t)kb_below(&rs, 11);
        }
        check_mac_now(who, c, mc->alg, bufs[b], L, msg,
                      kb_below(&rs, sizeof(msg) + 1), 0,
                      1 + kb_below(&rs, full), NULL);
      }
      /* Freed and reallocated (often at the same address outside ASan). */
      for (step = 0; step < 12; step++) {
        uint8_t *p = malloc(L);
        assert_non_null(p);
        memcpy(p, base, L);
        p[L - 1] = (uint8_t)step;
        check_mac_now(who, c, mc->alg, p, L, msg, sizeof(msg), 5, full, NULL);
        free(p);
      }
      /* The same stack slot for a new key on every call. */
      for (step = 0; step < 12; step++) {
        memcpy(bufs[0], base, L);
        bufs[0][L - 1] = (uint8_t)(step % 5);
        mac_with_stack_key(who, c, mc, bufs[0], msg, sizeof(msg));
      }
      if (i == s.n) {
        mtcsec_crypto_openssl_del(&fresh);
      }
    }
  }
}

/* One buffer serves CMAC and HMAC, 16- and 32-byte keys (a 16-byte key is
 * a prefix of the 32-byte one), truncated and full outputs, in random
 * order, and changes between calls. */
static void test_crypto_mac_interleaved_algorithms(void **state) {
  provider_set s;
  uint64_t rs = 0x1e1e;
  uint8_t buf[KEYBUF_LEN], msg[70];
  size_t i, step;
  (void)state;

  get_providers(&s);
  for (i = 0; i < s.n; i++) {
    kb_fill(&rs, buf, sizeof(buf));
    for (step = 0; step < 600; step++) {
      const mac_case *mc = &mac_cases[kb_below(&rs, N_MAC_CASES)];
      size_t full = mac_full_len(mc->alg), ol, ml;
      switch (kb_below(&rs, 6)) {
      case 0:
        buf[mc->keylen - 1] ^= (uint8_t)(1u << kb_below(&rs, 8));
        break;
      case 1:
        buf[kb_below(&rs, sizeof(buf))] ^= 0x40;
        break;
      default:
        break; /* the same key bytes again */
      }
      ol = kb_below(&rs, 2) ? full : 1 + kb_below(&rs, full);
      ml = kb_below(&rs, sizeof(msg) + 1);
      kb_fill(&rs, msg, ml);
      check_mac_now(s.name[i], s.p[i], mc->alg, buf, mc->keylen, msg, ml,
                    kb_below(&rs, ml + 1), ol, NULL);
    }
  }
}

/* AES-CCM by OpenSSL's EVP interface directly, a fresh context each time:
 * ciphertext || tag into out.  ptlen >= 1. */
static void oracle_ccm_seal(const uint8_t *key, size_t keylen,
                            const uint8_t nonce[13], const uint8_t *aad,
                            size_t aadlen, const uint8_t *pt, size_t ptlen,
                            size_t taglen, uint8_t *out) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int outl = 0;
  assert_non_null(c);
  assert_int_equal(1, EVP_EncryptInit_ex(
                        c, keylen == 16 ? EVP_aes_128_ccm() : EVP_aes_256_ccm(),
                        NULL, NULL, NULL));
  assert_int_equal(1,
                   EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 13, NULL));
  assert_int_equal(
    1, EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, (int)taglen, NULL));
  assert_int_equal(1, EVP_EncryptInit_ex(c, NULL, NULL, key, nonce));
  assert_int_equal(1, EVP_EncryptUpdate(c, NULL, &outl, NULL, (int)ptlen));
  if (aadlen > 0) {
    assert_int_equal(1, EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aadlen));
  }
  assert_int_equal(1, EVP_EncryptUpdate(c, out, &outl, pt, (int)ptlen));
  assert_int_equal((int)ptlen, outl);
  assert_int_equal(1, EVP_EncryptFinal_ex(c, out + ptlen, &outl));
  assert_int_equal(
    1, EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, (int)taglen, out + ptlen));
  EVP_CIPHER_CTX_free(c);
}

/* The record path after the MAC path, through one key buffer: MACs and
 * CCM seal/open under K in B, B overwritten with K' (last byte), again;
 * every output equals OpenSSL's EVP one-shot under the key B holds now. */
static void test_crypto_ccm_after_mac_same_key_buffer(void **state) {
  provider_set s;
  uint64_t rs = 0xcc33;
  uint8_t buf[32], nonce[13], aad[7], pt[40], ct[56], want[56], back[40];
  size_t i, keylen, step;
  (void)state;

  get_providers(&s);
  kb_fill(&rs, nonce, sizeof(nonce));
  kb_fill(&rs, aad, sizeof(aad));
  kb_fill(&rs, pt, sizeof(pt));
  for (i = 0; i < s.n; i++) {
    const mtcsec_crypto *c = s.p[i];
    for (keylen = 16; keylen <= 32; keylen += 16) {
      uint8_t old_ct[56];
      size_t taglen = keylen == 16 ? 8 : 16;
      kb_fill(&rs, buf, sizeof(buf));
      for (step = 0; step < 40; step++) {
        size_t ptlen = 1 + kb_below(&rs, sizeof(pt));
        /* MACs with the key buffer first, as the device does before it
         * seals a record. */
        check_mac_now(s.name[i], c, MTCSEC_MAC_AES_CMAC, buf, keylen, pt, ptlen,
                      0, 16, NULL);
        check_mac_now(s.name[i], c, MTCSEC_MAC_HMAC_SHA256, buf, keylen, pt,
                      ptlen, 1, 16, NULL);
        nonce[12] = (uint8_t)step;
        assert_int_equal(0,
                         c->ops->ccm_seal(c->ctx, buf, keylen, nonce, aad,
                                          sizeof(aad), pt, ptlen, ct, taglen));
        oracle_ccm_seal(buf, keylen, nonce, aad, sizeof(aad), pt, ptlen, taglen,
                        want);
        if (memcmp(ct, want, ptlen + taglen) != 0) {
          fail_msg("%s: CCM-%zu seal after MACs, step %zu: stale key?",
                   s.name[i], keylen * 8, step);
        }
        memset(back, 0, sizeof(back));
        assert_int_equal(0, c->ops->ccm_open(c->ctx, buf, keylen, nonce, aad,
                                             sizeof(aad), ct, ptlen + taglen,
                                             back, taglen));
        assert_memory_equal(back, pt, ptlen);
        memcpy(old_ct, ct, ptlen + taglen);
        /* K' in the same buffer: the old record no longer opens, a MAC is
         * the new key's, and a new seal is the new key's. */
        buf[keylen - 1] ^= (uint8_t)(1 + step);
        memset(back, 0xaa, sizeof(back));
        assert_int_equal(MTCSEC_ERR_MIC,
                         c->ops->ccm_open(c->ctx, buf, keylen, nonce, aad,
                                          sizeof(aad), old_ct, ptlen + taglen,
                                          back, taglen));
        assert_true(is_zero(back, ptlen));
        check_mac_now(s.name[i], c, MTCSEC_MAC_AES_CMAC, buf, keylen, aad,
                      sizeof(aad), 0, 16, NULL);
        assert_int_equal(0,
                         c->ops->ccm_seal(c->ctx, buf, keylen, nonce, aad,
                                          sizeof(aad), pt, ptlen, ct, taglen));
        oracle_ccm_seal(buf, keylen, nonce, aad, sizeof(aad), pt, ptlen, taglen,
                        want);
        assert_memory_equal(ct, want, ptlen + taglen);
        assert_memory_not_equal(ct, old_ct, ptlen + taglen);
        /* One AES block under the same buffer, when the provider has it. */
        if (c->ops->aes_block != NULL) {
          uint8_t blk[16], ecb[32];
          EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new();
          int outl = 0;
          assert_non_null(e);
          assert_int_equal(0, c->ops->aes_block(c->ctx, buf, keylen, pt, blk));
          assert_int_equal(
            1, EVP_EncryptInit_ex(
                 e, keylen == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb(), NULL,
                 buf, NULL));
          assert_int_equal(1, EVP_CIPHER_CTX_set_padding(e, 0));
          assert_int_equal(1, EVP_EncryptUpdate(e, ecb, &outl, pt, 16));
          EVP_CIPHER_CTX_free(e);
          assert_memory_equal(blk, ecb, 16);
        }
        /* Sometimes back to the previous key, as a reused buffer would. */
        if (step % 3 == 0) {
          buf[keylen - 1] ^= (uint8_t)(1 + step);
          assert_int_equal(0, c->ops->ccm_open(c->ctx, buf, keylen, nonce, aad,
                                               sizeof(aad), old_ct,
                                               ptlen + taglen, back, taglen));
          assert_memory_equal(back, pt, ptlen);
        }
      }
    }
  }
}

/* ------------------------------------------------------------ lifecycle */

static void test_crypto_provider_lifecycle(void **state) {
  mtcsec_crypto c;
  (void)state;

  assert_int_equal(0, mtcsec_crypto_openssl_new(&c));
  assert_non_null(c.ops);
  mtcsec_crypto_openssl_del(&c);
  assert_null(c.ops);
  assert_null(c.ctx);
  /* del accepts what a failed new() leaves, and NULL. */
  mtcsec_crypto_openssl_del(&c);
  mtcsec_crypto_openssl_del(NULL);
  assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                   mtcsec_crypto_openssl_new(NULL));

#ifdef MTCSEC_HAVE_MBEDTLS
  {
    mtcsec_mbedtls_state st;
    assert_int_equal(MTCSEC_ERR_INVALID_ARGUMENT,
                     mtcsec_crypto_mbedtls_init(&c, &st, NULL, NULL));
    assert_null(c.ops);
    assert_null(c.ctx);
    mtcsec_crypto_mbedtls_free(&c);
    assert_int_equal(0,
                     mtcsec_crypto_mbedtls_init(&c, &st, th_getrandom, NULL));
    assert_ptr_equal(c.ctx, &st);
    mtcsec_crypto_mbedtls_free(&c);
    assert_null(c.ops);
    mtcsec_crypto_mbedtls_free(&c);
    mtcsec_crypto_mbedtls_free(NULL);
  }
#endif
}

/* ------------------------------------------------ ct_memcmp, zeroize */

static void test_crypto_ct_memcmp(void **state) {
  uint8_t a[16], b[16];
  size_t i;
  (void)state;

  memset(a, 0x5c, sizeof(a));
  memcpy(b, a, sizeof(b));
  assert_int_equal(0, mtcsec_ct_memcmp(a, b, sizeof(a)));
  assert_int_equal(0, mtcsec_ct_memcmp(a, b, 0));
  for (i = 0; i < sizeof(a); i++) {
    b[i] ^= 0x80;
    /* Nonzero (not an ordering) wherever the difference is. */
    assert_int_not_equal(0, mtcsec_ct_memcmp(a, b, sizeof(a)));
    assert_int_not_equal(0, mtcsec_ct_memcmp(b, a, sizeof(a)));
    /* Bytes past n are not compared. */
    assert_int_equal(0, mtcsec_ct_memcmp(a, b, i));
    b[i] ^= 0x80;
  }
  b[15] ^= 0x01; /* a one-bit difference in the last byte */
  assert_int_not_equal(0, mtcsec_ct_memcmp(a, b, sizeof(a)));
}

static void test_crypto_zeroize(void **state) {
  uint8_t buf[40];
  (void)state;

  memset(buf, 0xff, sizeof(buf));
  mtcsec_zeroize(buf + 4, 32);
  assert_int_equal(0xff, buf[3]);
  assert_true(is_zero(buf + 4, 32));
  assert_int_equal(0xff, buf[36]);
  mtcsec_zeroize(NULL, 0);
  mtcsec_zeroize(buf, 0);
  assert_int_equal(0xff, buf[0]);
}

static int group_teardown(void **state) {
  (void)state;
  th_providers_cleanup();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_crypto_cmac_rfc4493),
    cmocka_unit_test(test_crypto_cmac_scattered_input),
    cmocka_unit_test(test_crypto_mac_key_changes_are_seen),
    cmocka_unit_test(test_crypto_mac_many_keys_in_turn),
    cmocka_unit_test(test_crypto_mac_key_buffer_overwritten),
    cmocka_unit_test(test_crypto_mac_keys_cycle_through_buffers),
    cmocka_unit_test(test_crypto_mac_interleaved_algorithms),
    cmocka_unit_test(test_crypto_ccm_after_mac_same_key_buffer),
    cmocka_unit_test(test_crypto_mac_truncation_and_bad_args),
    cmocka_unit_test(test_crypto_hmac_rfc4231),
    cmocka_unit_test(test_crypto_kdf_rfc8009),
    cmocka_unit_test(test_crypto_kdf_matches_openssl_kbkdf),
    cmocka_unit_test(test_crypto_kdf_composition),
    cmocka_unit_test(test_crypto_kdf_rejects_bad_arguments),
    cmocka_unit_test(test_crypto_ccm_known_answers),
    cmocka_unit_test(test_crypto_ccm_in_place),
    cmocka_unit_test(test_crypto_ccm_tag_failure_zeroes_output),
    cmocka_unit_test(test_crypto_ccm_rejects_bad_arguments),
    cmocka_unit_test(test_crypto_ccm_cross_provider),
    cmocka_unit_test(test_crypto_aes_block_fips197),
    cmocka_unit_test(test_crypto_aes_ctr_sp800_38a),
    cmocka_unit_test(test_crypto_aes_ctr_counter_carry),
    cmocka_unit_test(test_crypto_random_fills),
    cmocka_unit_test(test_crypto_fixed_serves_queue_then_generator),
    cmocka_unit_test(test_crypto_fixed_forwards_to_base),
    cmocka_unit_test(test_crypto_provider_lifecycle),
    cmocka_unit_test(test_crypto_ct_memcmp),
    cmocka_unit_test(test_crypto_zeroize),
  };
  return cmocka_run_group_tests_name("crypto", tests, NULL, group_teardown);
}
