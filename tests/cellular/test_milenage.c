/* MILENAGE through libosmocore against TS 35.207/35.208 test sets. */
#include <string.h>

#include "cell_test.h"

static void check_set(const cJSON *v, int use_op) {
  uint8_t k[16], op[16], opc[16], rnd[16], sqnb[6], amf[2];
  uint8_t f1[8], f1s[8], f2[8], f3[16], f4[16], f5[6], f5s[6];
  uint8_t autn[16];
  mtcsec_milenage_out o;
  size_t i;

  cell_hexn(v, "K", k, 16);
  cell_hexn(v, "OP", op, 16);
  cell_hexn(v, "OPc", opc, 16);
  cell_hexn(v, "RAND", rnd, 16);
  cell_hexn(v, "SQN", sqnb, 6);
  cell_hexn(v, "AMF", amf, 2);
  cell_hexn(v, "f1", f1, 8);
  cell_hexn(v, "f1star", f1s, 8);
  cell_hexn(v, "f2", f2, 8);
  cell_hexn(v, "f3", f3, 16);
  cell_hexn(v, "f4", f4, 16);
  cell_hexn(v, "f5", f5, 6);
  cell_hexn(v, "f5star", f5s, 6);

  assert_int_equal(mtcsec_milenage(k, use_op ? op : NULL, use_op ? NULL : opc,
                                   rnd, mtcsec_sqn_load(sqnb), amf, &o),
                   0);
  assert_memory_equal(o.opc, opc, 16);
  assert_memory_equal(o.f1, f1, 8);
  assert_memory_equal(o.f1star, f1s, 8);
  assert_memory_equal(o.f2, f2, 8);
  assert_memory_equal(o.f3, f3, 16);
  assert_memory_equal(o.f4, f4, 16);
  assert_memory_equal(o.f5, f5, 6);
  assert_memory_equal(o.f5star, f5s, 6);
  /* AUTN = (SQN ^ AK) || AMF || MAC-A */
  for (i = 0; i < 6; i++) {
    autn[i] = (uint8_t)(sqnb[i] ^ f5[i]);
  }
  memcpy(autn + 6, amf, 2);
  memcpy(autn + 8, f1, 8);
  assert_memory_equal(o.autn, autn, 16);
}

static void test_milenage_vectors_op(void **state) {
  cJSON *all = cell_vectors("milenage.json"), *v;
  int n = 0;

  (void)state;
  cJSON_ArrayForEach(v, all) {
    check_set(v, 1);
    n++;
  }
  assert_int_equal(n, 4);
  cJSON_Delete(all);
}

static void test_milenage_vectors_opc(void **state) {
  cJSON *all = cell_vectors("milenage.json"), *v;

  (void)state;
  cJSON_ArrayForEach(v, all) { check_set(v, 0); }
  cJSON_Delete(all);
}

static void test_milenage_opc_helper(void **state) {
  cJSON *all = cell_vectors("milenage.json"), *v;
  uint8_t k[16], op[16], opc[16], out[16];

  (void)state;
  cJSON_ArrayForEach(v, all) {
    cell_hexn(v, "K", k, 16);
    cell_hexn(v, "OP", op, 16);
    cell_hexn(v, "OPc", opc, 16);
    assert_int_equal(mtcsec_milenage_opc(k, op, out), 0);
    assert_memory_equal(out, opc, 16);
  }
  cJSON_Delete(all);
}

static void test_milenage_sqn_edges(void **state) {
  uint8_t k[16] = {1}, opc[16] = {2}, rnd[16] = {3}, amf[2] = {0x80, 0};
  uint8_t sqnb[6];
  mtcsec_milenage_out o;
  size_t i;

  (void)state;
  /* SQN 0 (libosmocore's "previous SQN" wraps) and the largest SQN. */
  assert_int_equal(mtcsec_milenage(k, NULL, opc, rnd, 0, amf, &o), 0);
  for (i = 0; i < 6; i++) {
    assert_int_equal(o.autn[i], o.f5[i]); /* SQN 0: AUTN starts with AK */
  }
  assert_int_equal(mtcsec_milenage(k, NULL, opc, rnd, MTCSEC_SQN_MAX, amf, &o),
                   0);
  mtcsec_sqn_store(MTCSEC_SQN_MAX, sqnb);
  for (i = 0; i < 6; i++) {
    assert_int_equal(o.autn[i], (uint8_t)(0xff ^ o.f5[i]));
  }
  assert_int_equal(
    mtcsec_milenage(k, NULL, opc, rnd, MTCSEC_SQN_MAX + 1, amf, &o),
    MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_milenage_args(void **state) {
  uint8_t k[16] = {0}, op[16] = {0}, rnd[16] = {0}, amf[2] = {0};
  mtcsec_milenage_out o;

  (void)state;
  /* Exactly one of OP and OPc. */
  assert_int_equal(mtcsec_milenage(k, op, op, rnd, 1, amf, &o),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_milenage(k, NULL, NULL, rnd, 1, amf, &o),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_milenage(NULL, op, NULL, rnd, 1, amf, &o),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_milenage(k, op, NULL, rnd, 1, amf, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_milenage_opc(k, NULL, op),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_milenage_sqn_bytes(void **state) {
  static const uint8_t b[6] = {0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07};
  uint8_t out[6];

  (void)state;
  assert_true(mtcsec_sqn_load(b) == UINT64_C(0xff9bb4d0b607));
  mtcsec_sqn_store(UINT64_C(0x12ff9bb4d0b607), out); /* high bits dropped */
  assert_memory_equal(out, b, 6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_milenage_vectors_op),
    cmocka_unit_test(test_milenage_vectors_opc),
    cmocka_unit_test(test_milenage_opc_helper),
    cmocka_unit_test(test_milenage_sqn_edges),
    cmocka_unit_test(test_milenage_args),
    cmocka_unit_test(test_milenage_sqn_bytes),
  };
  return cmocka_run_group_tests_name("cellular.milenage", tests, NULL, NULL);
}
