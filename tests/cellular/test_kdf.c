/* TS 33.220 Annex B.2 KDF, K_UP and the UL/DL record keys (CELLULAR.md). */
#include <string.h>

#include "cell_test.h"

static mtcsec_crypto g_crypto;

static int setup(void **state) {
  (void)state;
  cell_crypto(&g_crypto);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  mtcsec_crypto_openssl_del(&g_crypto);
  return 0;
}

/* A provider wrapper that records the concatenated MAC input. */
static uint8_t g_seen[512];
static size_t g_seenlen;

static int rec_mac(void *ctx, mtcsec_mac_alg alg, const uint8_t *key,
                   size_t keylen, const mtcsec_iov *iov, size_t iovcnt,
                   uint8_t *out, size_t outlen) {
  size_t i;

  g_seenlen = 0;
  for (i = 0; i < iovcnt; i++) {
    assert_true(g_seenlen + iov[i].len <= sizeof(g_seen));
    if (iov[i].len > 0) {
      memcpy(g_seen + g_seenlen, iov[i].base, iov[i].len);
    }
    g_seenlen += iov[i].len;
  }
  return g_crypto.ops->mac(ctx, alg, key, keylen, iov, iovcnt, out, outlen);
}

static void test_kdf_33220_vectors(void **state) {
  cJSON *all = cell_vectors("kdf_33220.json"), *v, *p;
  mtcsec_crypto_ops ops = *g_crypto.ops;
  mtcsec_crypto rec = {&ops, g_crypto.ctx};
  uint8_t key[64], pbuf[8][64], s[256], want[32], out[32];
  mtcsec_iov params[8];
  size_t keylen, np, slen;
  int n = 0;

  (void)state;
  ops.mac = rec_mac;
  cJSON_ArrayForEach(v, all) {
    if (cell_str(v, "name") == NULL) {
      continue; /* the _format entry */
    }
    keylen = cell_hex(v, "key", key, sizeof(key));
    np = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(v, "params")) {
      assert_true(np < 8);
      params[np].len = cell_unhex(p->valuestring, pbuf[np], sizeof(pbuf[np]));
      params[np].base = pbuf[np];
      np++;
    }
    slen = cell_hex(v, "s", s, sizeof(s));
    cell_hexn(v, "output", want, 32);
    assert_int_equal(mtcsec_kdf_33220(&rec, key, keylen,
                                      (uint8_t)cell_hexnum(v, "fc"), params, np,
                                      out),
                     0);
    assert_memory_equal(out, want, 32);
    /* S = FC || P0 || L0 || ... exactly as the vector spells it. */
    assert_int_equal(g_seenlen, slen);
    assert_memory_equal(g_seen, s, slen);
    n++;
  }
  assert_int_equal(n, 7);
  cJSON_Delete(all);
}

static void test_kdf_33220_args(void **state) {
  uint8_t key[32] = {1}, out[32];
  mtcsec_iov p[9];

  (void)state;
  memset(p, 0, sizeof(p));
  assert_int_equal(mtcsec_kdf_33220(&g_crypto, key, 32, 0x10, NULL, 0, out), 0);
  assert_int_equal(mtcsec_kdf_33220(&g_crypto, key, 32, 0x10, p, 9, out),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  p[0].len = 3; /* base NULL with a length */
  assert_int_equal(mtcsec_kdf_33220(&g_crypto, key, 32, 0x10, p, 1, out),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_kdf_33220(&g_crypto, NULL, 32, 0x10, NULL, 0, out),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

/*
 * mtcsec's own known answers, computed independently of this code:
 *   python3: hmac.new(CK||IK, S, sha256).digest()[16:] with
 *     S = 70 || "mtcsec-up" || 0009 || SID || 0008 || RAND || 0010
 *   and the UL/DL values with
 *     openssl kdf -keylen N -kdfopt mac:CMAC -kdfopt cipher:AES-128-CBC
 *       -kdfopt hexkey:<K_UP> -kdfopt salt:<label> -kdfopt hexinfo:<TBCD>
 *       KBKDF
 *   (and python cryptography's KBKDFCMAC, same results).
 * CK, IK and RAND are those of TS 35.207 test set 1.
 */
static const char *KAT_CK = "b40ba9a3c58b2a05bbf0d987b21bf8cb";
static const char *KAT_IK = "f769bcd751044604127672711c6d3441";
static const char *KAT_RAND = "23553cbe9637a89d218ae64dae47bf35";
static const char *KAT_SID = "0102030405060708";
static const char *KAT_S =
  "706d74637365632d757000090102030405060708000823553cbe9637a89d218ae64dae47bf"
  "350010";
static const char *KAT_KUP = "4024355d62bb9dc4aa317e4db0b5aa1e";
static const char *KAT_KUP_SID2 = "c93f2cfcf447f91073ae7a6d0729ed7f";
static const char *KAT_IMSI = "001010000000001";
static const char *KAT_TBCD = "00010100000000f1";
static const char *KAT_UL_KEY = "c2dabfa61e60631460a099cfd3c0a5b0";
static const char *KAT_UL_IV = "bad8539d6c899ba71840b3cc18";
static const char *KAT_DL_KEY = "45b8b10706be3b266626d71b1b48f7d0";
static const char *KAT_DL_IV = "e63adb95ffa1858f9fce182f30";

static void test_kup_known_answer(void **state) {
  mtcsec_crypto_ops ops = *g_crypto.ops;
  mtcsec_crypto rec = {&ops, g_crypto.ctx};
  uint8_t ck[16], ik[16], rnd[16], sid[8], s[64], want[16], kup[16];
  size_t slen;

  (void)state;
  ops.mac = rec_mac;
  cell_unhex(KAT_CK, ck, 16);
  cell_unhex(KAT_IK, ik, 16);
  cell_unhex(KAT_RAND, rnd, 16);
  cell_unhex(KAT_SID, sid, 8);
  cell_unhex(KAT_KUP, want, 16);
  slen = cell_unhex(KAT_S, s, sizeof(s));
  assert_int_equal(mtcsec_kup_derive(&rec, ck, ik, sid, rnd, kup), 0);
  assert_memory_equal(kup, want, 16);
  assert_int_equal(g_seenlen, slen);
  assert_memory_equal(g_seen, s, slen);
}

static void test_kup_binding(void **state) {
  uint8_t ck[16], ik[16], rnd[16], sid[8], want[16], a[16], b[16];

  (void)state;
  cell_unhex(KAT_CK, ck, 16);
  cell_unhex(KAT_IK, ik, 16);
  cell_unhex(KAT_RAND, rnd, 16);
  cell_unhex(KAT_SID, sid, 8);
  /* Deterministic. */
  assert_int_equal(mtcsec_kup_derive(&g_crypto, ck, ik, sid, rnd, a), 0);
  assert_int_equal(mtcsec_kup_derive(&g_crypto, ck, ik, sid, rnd, b), 0);
  assert_memory_equal(a, b, 16);
  /* Another server gets another key (known answer for server ID ...09). */
  sid[7] ^= 0x01;
  cell_unhex(KAT_KUP_SID2, want, 16);
  assert_int_equal(mtcsec_kup_derive(&g_crypto, ck, ik, sid, rnd, b), 0);
  assert_memory_equal(b, want, 16);
  assert_memory_not_equal(a, b, 16);
  sid[7] ^= 0x01;
  /* Bound to RAND, CK and IK too. */
  rnd[0] ^= 0x80;
  assert_int_equal(mtcsec_kup_derive(&g_crypto, ck, ik, sid, rnd, b), 0);
  assert_memory_not_equal(a, b, 16);
  rnd[0] ^= 0x80;
  ck[15] ^= 1;
  assert_int_equal(mtcsec_kup_derive(&g_crypto, ck, ik, sid, rnd, b), 0);
  assert_memory_not_equal(a, b, 16);
  ck[15] ^= 1;
  ik[0] ^= 1;
  assert_int_equal(mtcsec_kup_derive(&g_crypto, ck, ik, sid, rnd, b), 0);
  assert_memory_not_equal(a, b, 16);
  /* Swapping CK and IK matters (key = CK || IK). */
  ik[0] ^= 1;
  assert_int_equal(mtcsec_kup_derive(&g_crypto, ik, ck, sid, rnd, b), 0);
  assert_memory_not_equal(a, b, 16);
  assert_int_equal(mtcsec_kup_derive(&g_crypto, ck, ik, NULL, rnd, b),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_up_keys_known_answer(void **state) {
  uint8_t kup[16], tbcd[8], want_tbcd[8], k[16], iv[13];
  mtcsec_up_keys keys, keys2;

  (void)state;
  cell_unhex(KAT_KUP, kup, 16);
  assert_int_equal(mtcsec_imsi_to_tbcd(KAT_IMSI, strlen(KAT_IMSI), tbcd), 0);
  cell_unhex(KAT_TBCD, want_tbcd, 8);
  assert_memory_equal(tbcd, want_tbcd, 8);
  assert_int_equal(mtcsec_up_keys_derive(&g_crypto, kup, tbcd, &keys), 0);
  cell_unhex(KAT_UL_KEY, k, 16);
  assert_memory_equal(keys.ul_key, k, 16);
  cell_unhex(KAT_UL_IV, iv, 13);
  assert_memory_equal(keys.ul_iv, iv, 13);
  cell_unhex(KAT_DL_KEY, k, 16);
  assert_memory_equal(keys.dl_key, k, 16);
  cell_unhex(KAT_DL_IV, iv, 13);
  assert_memory_equal(keys.dl_iv, iv, 13);
  /* Another IMSI, other keys. */
  tbcd[6] ^= 0x10;
  assert_int_equal(mtcsec_up_keys_derive(&g_crypto, kup, tbcd, &keys2), 0);
  assert_memory_not_equal(keys.ul_key, keys2.ul_key, 16);
  assert_memory_not_equal(keys.dl_iv, keys2.dl_iv, 13);
  assert_int_equal(mtcsec_up_keys_derive(&g_crypto, NULL, tbcd, &keys2),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

/* End to end: both sides of AKA reach the same K_UP and record keys. */
static void test_kup_from_aka(void **state) {
  uint8_t k[16], opc[16], rnd[16], amf[2] = {0x80, 0}, sid[8] = {1};
  uint8_t tbcd[8], auts[14], kup_ms[16], kup_srv[16];
  mtcsec_aka_vector vec;
  mtcsec_aka_result res;
  mtcsec_sqn_ms ms;
  mtcsec_up_keys a, b;
  uint64_t sqn_he = 0;

  (void)state;
  cell_unhex("465b5ce8b199b49faa5f0a2ee238a6bc", k, 16);
  cell_unhex("cd63cb71954a9f4e48a5994e37a02baf", opc, 16);
  cell_unhex(KAT_RAND, rnd, 16);
  assert_int_equal(mtcsec_sqn_ms_init(&ms, 5), 0);
  assert_int_equal(mtcsec_auc_gen_vector(k, opc, amf, &sqn_he, 5, 0, rnd, &vec),
                   0);
  assert_int_equal(
    mtcsec_aka_ms(k, opc, &ms, vec.rand, vec.autn, &res, auts, NULL), 0);
  assert_int_equal(
    mtcsec_kup_derive(&g_crypto, res.ck, res.ik, sid, vec.rand, kup_ms), 0);
  assert_int_equal(
    mtcsec_kup_derive(&g_crypto, vec.ck, vec.ik, sid, vec.rand, kup_srv), 0);
  assert_memory_equal(kup_ms, kup_srv, 16);
  assert_int_equal(mtcsec_imsi_to_tbcd("001010000000001", 15, tbcd), 0);
  assert_int_equal(mtcsec_up_keys_derive(&g_crypto, kup_ms, tbcd, &a), 0);
  assert_int_equal(mtcsec_up_keys_derive(&g_crypto, kup_srv, tbcd, &b), 0);
  assert_memory_equal(&a, &b, sizeof(a));
  assert_memory_not_equal(a.ul_key, a.dl_key, 16);
  assert_memory_not_equal(a.ul_iv, a.dl_iv, 13);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_kdf_33220_vectors),
    cmocka_unit_test(test_kdf_33220_args),
    cmocka_unit_test(test_kup_known_answer),
    cmocka_unit_test(test_kup_binding),
    cmocka_unit_test(test_up_keys_known_answer),
    cmocka_unit_test(test_kup_from_aka),
  };
  return cmocka_run_group_tests_name("cellular.kdf", tests, setup, teardown);
}
