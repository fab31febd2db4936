/* 128-EIA2 and 128-EEA2 against TS 33.401 C.1/C.2, bit lengths included. */
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

static void test_eia2_vectors(void **state) {
  cJSON *all = cell_vectors("eia2.json"), *v;
  uint8_t key[16], msg[256], mac[4], want[4];
  size_t len;
  long bits;
  int n = 0, partial = 0;

  (void)state;
  cJSON_ArrayForEach(v, all) {
    cell_hexn(v, "key", key, 16);
    len = cell_hex(v, "message", msg, sizeof(msg));
    cell_hexn(v, "mac_i", want, 4);
    bits = cell_num(v, "length_bits");
    assert_int_equal(len, (size_t)(bits + 7) / 8);
    partial += bits % 8 != 0;
    assert_int_equal(
      mtcsec_eia2(&g_crypto, key, (uint32_t)cell_hexnum(v, "count"),
                  (uint8_t)cell_hexnum(v, "bearer"),
                  (uint8_t)cell_num(v, "direction"), msg, (size_t)bits, mac),
      0);
    assert_memory_equal(mac, want, 4);
    /* Bits past length_bits are ignored. */
    if (bits % 8 != 0) {
      msg[len - 1] ^= (uint8_t)(0xff >> (bits % 8));
      assert_int_equal(
        mtcsec_eia2(&g_crypto, key, (uint32_t)cell_hexnum(v, "count"),
                    (uint8_t)cell_hexnum(v, "bearer"),
                    (uint8_t)cell_num(v, "direction"), msg, (size_t)bits, mac),
        0);
      assert_memory_equal(mac, want, 4);
    }
    n++;
  }
  assert_int_equal(n, 5);
  assert_int_equal(partial, 3); /* sets 1, 3, 4 are not whole bytes */
  cJSON_Delete(all);
}

static void test_eea2_vectors(void **state) {
  cJSON *all = cell_vectors("eea2.json"), *v;
  uint8_t key[16], pt[256], ct[256], out[256], back[256];
  size_t len;
  long bits;
  int n = 0;

  (void)state;
  cJSON_ArrayForEach(v, all) {
    uint32_t count = (uint32_t)cell_hexnum(v, "count");
    uint8_t bearer = (uint8_t)cell_hexnum(v, "bearer");
    uint8_t dir = (uint8_t)cell_num(v, "direction");

    cell_hexn(v, "key", key, 16);
    len = cell_hex(v, "plaintext", pt, sizeof(pt));
    assert_int_equal(cell_hex(v, "ciphertext", ct, sizeof(ct)), len);
    bits = cell_num(v, "length_bits");
    assert_true(bits % 8 != 0); /* every C.1 set ends mid-byte */
    assert_int_equal(
      mtcsec_eea2(&g_crypto, key, count, bearer, dir, pt, (size_t)bits, out),
      0);
    assert_memory_equal(out, ct, len);
    /* Decryption is the same operation; in place is allowed. */
    memcpy(back, out, len);
    assert_int_equal(
      mtcsec_eea2(&g_crypto, key, count, bearer, dir, back, (size_t)bits, back),
      0);
    assert_memory_equal(back, pt, len);
    n++;
  }
  assert_int_equal(n, 4);
  cJSON_Delete(all);
}

static void test_eea2_masks_last_byte(void **state) {
  uint8_t key[16] = {0}, in[3] = {0xff, 0xff, 0xff}, out[3];
  size_t bits;

  (void)state;
  for (bits = 17; bits < 24; bits++) {
    assert_int_equal(mtcsec_eea2(&g_crypto, key, 1, 2, 1, in, bits, out), 0);
    assert_int_equal(out[2] & (0xff >> (bits % 8)), 0);
  }
  assert_int_equal(mtcsec_eea2(&g_crypto, key, 1, 2, 1, NULL, 0, NULL), 0);
}

/* Provider wrapper that counts ops and can hide aes_block. */
static int g_block_calls;

static int cnt_aes_block(void *ctx, const uint8_t *key, size_t keylen,
                         const uint8_t in[16], uint8_t out[16]) {
  g_block_calls++;
  return g_crypto.ops->aes_block(ctx, key, keylen, in, out);
}

static void test_eia2_provider_ops(void **state) {
  mtcsec_crypto_ops ops = *g_crypto.ops;
  mtcsec_crypto c = {&ops, g_crypto.ctx};
  uint8_t key[16] = {7}, msg[40] = {1, 2, 3}, mac[4], mac2[4];

  (void)state;
  ops.aes_block = cnt_aes_block;
  g_block_calls = 0;
  /* Whole bytes: the library CMAC alone. */
  assert_int_equal(mtcsec_eia2(&c, key, 5, 3, 0, msg, 8 * 40, mac), 0);
  assert_int_equal(g_block_calls, 0);
  /* Bit string: one aes_block for L. */
  assert_int_equal(mtcsec_eia2(&c, key, 5, 3, 0, msg, 8 * 40 - 3, mac2), 0);
  assert_int_equal(g_block_calls, 1);
  assert_memory_not_equal(mac, mac2, 4);
  ops.aes_block = NULL;
  assert_int_equal(mtcsec_eia2(&c, key, 5, 3, 0, msg, 8 * 40, mac), 0);
  assert_int_equal(mtcsec_eia2(&c, key, 5, 3, 0, msg, 8 * 40 - 3, mac2),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  ops.aes_ctr = NULL;
  assert_int_equal(mtcsec_eea2(&c, key, 5, 3, 0, msg, 8, msg),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_eia2_inputs_bound(void **state) {
  uint8_t key[16] = {9}, msg[20] = {0}, base[4], mac[4];

  (void)state;
  assert_int_equal(mtcsec_eia2(&g_crypto, key, 0x1234, 5, 1, msg, 150, base),
                   0);
  assert_int_equal(mtcsec_eia2(&g_crypto, key, 0x1235, 5, 1, msg, 150, mac), 0);
  assert_memory_not_equal(base, mac, 4);
  assert_int_equal(mtcsec_eia2(&g_crypto, key, 0x1234, 6, 1, msg, 150, mac), 0);
  assert_memory_not_equal(base, mac, 4);
  assert_int_equal(mtcsec_eia2(&g_crypto, key, 0x1234, 5, 0, msg, 150, mac), 0);
  assert_memory_not_equal(base, mac, 4);
  assert_int_equal(mtcsec_eia2(&g_crypto, key, 0x1234, 5, 1, msg, 151, mac), 0);
  assert_memory_not_equal(base, mac, 4);
  /* Empty message is allowed. */
  assert_int_equal(mtcsec_eia2(&g_crypto, key, 0, 0, 0, NULL, 0, mac), 0);
  /* BEARER is 5 bits, DIRECTION 1 bit. */
  assert_int_equal(mtcsec_eia2(&g_crypto, key, 0, 32, 0, msg, 8, mac),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_eia2(&g_crypto, key, 0, 0, 2, msg, 8, mac),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_eea2(&g_crypto, key, 0, 32, 0, msg, 8, msg),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_eia2(&g_crypto, key, 0, 0, 0, NULL, 8, mac),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_eia2_vectors),
    cmocka_unit_test(test_eea2_vectors),
    cmocka_unit_test(test_eea2_masks_last_byte),
    cmocka_unit_test(test_eia2_provider_ops),
    cmocka_unit_test(test_eia2_inputs_bound),
  };
  return cmocka_run_group_tests_name("cellular.eia2", tests, setup, teardown);
}
