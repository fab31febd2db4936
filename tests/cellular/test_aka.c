/* UMTS AKA around MILENAGE: SQN freshness (TS 33.102 Annex C), AUTS and
 * resynchronisation (6.3.3, 6.3.5). */
#include <string.h>

#include "cell_test.h"

/* TS 35.207 test set 1 subscriber. */
static uint8_t K[16], OPC[16], RAND1[16];
static const uint8_t AMF[2] = {0x80, 0x00};

static int setup(void **state) {
  (void)state;
  cell_unhex("465b5ce8b199b49faa5f0a2ee238a6bc", K, 16);
  cell_unhex("cd63cb71954a9f4e48a5994e37a02baf", OPC, 16);
  cell_unhex("23553cbe9637a89d218ae64dae47bf35", RAND1, 16);
  return 0;
}

static void rand_n(uint8_t r[16], uint8_t n) {
  memcpy(r, RAND1, 16);
  r[15] = (uint8_t)(r[15] ^ n);
}

static void test_aka_vector_accepted(void **state) {
  mtcsec_sqn_ms ms;
  mtcsec_aka_vector vec;
  mtcsec_aka_result res;
  uint8_t auts[14], r[16];
  uint64_t sqn_he = 0;
  mtcsec_sqn_verdict v;
  int i;

  (void)state;
  assert_int_equal(mtcsec_sqn_ms_init(&ms, 5), 0);
  for (i = 0; i < 3; i++) {
    rand_n(r, (uint8_t)i);
    assert_int_equal(mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 3, r, &vec),
                     0);
    assert_true(vec.sqn == ((uint64_t)(i + 1) << 5 | 3));
    assert_true(sqn_he == vec.sqn);
    assert_int_equal(
      mtcsec_aka_ms(K, OPC, &ms, vec.rand, vec.autn, &res, auts, &v), 0);
    assert_int_equal(v, MTCSEC_SQN_FRESH);
    assert_memory_equal(res.res, vec.xres, 8);
    assert_memory_equal(res.ck, vec.ck, 16);
    assert_memory_equal(res.ik, vec.ik, 16);
    assert_true(res.sqn == vec.sqn);
  }
  assert_true(mtcsec_sqn_ms_highest(&ms) == (3u << 5 | 3));
}

static void test_aka_replay_gives_auts(void **state) {
  mtcsec_sqn_ms ms;
  mtcsec_aka_vector vec;
  mtcsec_aka_result res;
  uint8_t auts[14], auts2[14];
  uint64_t sqn_he = 0, sqn_ms = 0;
  mtcsec_sqn_verdict v;
  mtcsec_sqn_ms before;

  (void)state;
  assert_int_equal(mtcsec_sqn_ms_init(&ms, 5), 0);
  assert_int_equal(
    mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 0, RAND1, &vec), 0);
  assert_int_equal(
    mtcsec_aka_ms(K, OPC, &ms, vec.rand, vec.autn, &res, auts, &v), 0);
  /* The same challenge again: stale, AUTS, state untouched. */
  memcpy(&before, &ms, sizeof(ms));
  assert_int_equal(
    mtcsec_aka_ms(K, OPC, &ms, vec.rand, vec.autn, &res, auts, &v),
    MTCSEC_ERR_REPLAY);
  assert_int_equal(v, MTCSEC_SQN_STALE);
  assert_memory_equal(&before, &ms, sizeof(ms));
  /* AUTS = (SQN_MS ^ AK*) || MAC-S with AMF 0, verifiable at the AuC. */
  assert_int_equal(mtcsec_auts_gen(K, OPC, vec.rand, vec.sqn, auts2), 0);
  assert_memory_equal(auts, auts2, 14);
  assert_int_equal(mtcsec_auts_verify(K, OPC, vec.rand, auts, &sqn_ms), 0);
  assert_true(sqn_ms == vec.sqn);
}

static void test_aka_mac_failure(void **state) {
  mtcsec_sqn_ms ms;
  mtcsec_aka_vector vec;
  mtcsec_aka_result res;
  uint8_t auts[14], autn[16], k2[16];
  uint64_t sqn_he = 0;
  mtcsec_sqn_verdict v;
  size_t bit;

  (void)state;
  assert_int_equal(mtcsec_sqn_ms_init(&ms, 5), 0);
  assert_int_equal(
    mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 0, RAND1, &vec), 0);
  /* Any single flipped bit of AUTN fails (SQN bits change the MAC input). */
  for (bit = 0; bit < 128; bit++) {
    memcpy(autn, vec.autn, 16);
    autn[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
    memset(auts, 0xee, sizeof(auts));
    assert_int_equal(mtcsec_aka_ms(K, OPC, &ms, vec.rand, autn, &res, auts, &v),
                     MTCSEC_ERR_MIC);
    assert_int_equal(auts[0], 0xee); /* no AUTS on a MAC failure */
  }
  memcpy(k2, K, 16);
  k2[0] ^= 1;
  assert_int_equal(
    mtcsec_aka_ms(k2, OPC, &ms, vec.rand, vec.autn, &res, auts, &v),
    MTCSEC_ERR_MIC);
  assert_true(mtcsec_sqn_ms_highest(&ms) == 0);
}

static void test_aka_auts_resync_round_trip(void **state) {
  mtcsec_sqn_ms ms;
  mtcsec_aka_vector vec, vec2;
  mtcsec_aka_result res;
  uint8_t auts[14], r[16];
  uint64_t sqn_he = 0, sqn_ms = 0, hi;
  mtcsec_sqn_verdict v;
  int i;

  (void)state;
  /* The USIM has been used with another AuC state: its SQN_MS is far ahead
   * of our SQN_HE (e.g. the proxy's database was restored). */
  assert_int_equal(mtcsec_sqn_ms_init(&ms, 5), 0);
  mtcsec_sqn_ms_accept(&ms, (UINT64_C(5000) << 5) | 7);
  mtcsec_sqn_ms_accept(&ms, (UINT64_C(4000) << 5) | 0);
  hi = mtcsec_sqn_ms_highest(&ms);
  assert_true(hi == ((UINT64_C(5000) << 5) | 7));

  assert_int_equal(
    mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 0, RAND1, &vec), 0);
  assert_int_equal(
    mtcsec_aka_ms(K, OPC, &ms, vec.rand, vec.autn, &res, auts, &v),
    MTCSEC_ERR_REPLAY);
  assert_int_equal(v, MTCSEC_SQN_STALE);

  /* The AuC verifies AUTS, resets SQN_HE to SQN_MS, issues a new vector. */
  rand_n(r, 0x55);
  assert_int_equal(mtcsec_auc_resync(K, OPC, AMF, &sqn_he, 5, 0, vec.rand, auts,
                                     r, &vec2, &sqn_ms),
                   0);
  assert_true(sqn_ms == hi);
  assert_true(vec2.sqn == ((UINT64_C(5001) << 5) | 0));
  assert_true(sqn_he == vec2.sqn);
  assert_memory_equal(vec2.rand, r, 16);
  assert_int_equal(
    mtcsec_aka_ms(K, OPC, &ms, vec2.rand, vec2.autn, &res, auts, &v), 0);
  assert_memory_equal(res.ck, vec2.ck, 16);

  /* And the next vectors keep working. */
  for (i = 0; i < 3; i++) {
    rand_n(r, (uint8_t)(0x60 + i));
    assert_int_equal(mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 0, r, &vec),
                     0);
    assert_int_equal(
      mtcsec_aka_ms(K, OPC, &ms, vec.rand, vec.autn, &res, auts, &v), 0);
  }
}

static void test_aka_resync_keeps_sqn_he_in_range(void **state) {
  mtcsec_sqn_ms ms;
  mtcsec_aka_vector old, vec;
  mtcsec_aka_result res;
  uint8_t auts[14], r[16];
  uint64_t sqn_he = 0, sqn_ms = 0, he_before;
  mtcsec_sqn_verdict v;

  (void)state;
  /* An old, unused vector of slot 0 is presented after a newer one of the
   * same slot was used: stale at the USIM, but SQN_HE itself is fine. */
  assert_int_equal(mtcsec_sqn_ms_init(&ms, 5), 0);
  assert_int_equal(
    mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 0, RAND1, &old), 0);
  rand_n(r, 1);
  assert_int_equal(mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 0, r, &vec),
                   0);
  assert_int_equal(
    mtcsec_aka_ms(K, OPC, &ms, vec.rand, vec.autn, &res, auts, &v), 0);
  assert_int_equal(
    mtcsec_aka_ms(K, OPC, &ms, old.rand, old.autn, &res, auts, &v),
    MTCSEC_ERR_REPLAY);
  he_before = sqn_he;
  rand_n(r, 2);
  assert_int_equal(mtcsec_auc_resync(K, OPC, AMF, &sqn_he, 5, 0, old.rand, auts,
                                     r, &vec, &sqn_ms),
                   0);
  assert_true(sqn_ms == (UINT64_C(2) << 5));
  assert_true(vec.sqn == he_before + 32); /* SQN_HE kept, not reset */
  assert_int_equal(
    mtcsec_aka_ms(K, OPC, &ms, vec.rand, vec.autn, &res, auts, &v), 0);
}

static void test_aka_forged_auts(void **state) {
  mtcsec_aka_vector vec;
  uint8_t auts[14], r[16];
  uint64_t sqn_he = 100, sqn_ms = 7;
  size_t bit;

  (void)state;
  assert_int_equal(mtcsec_auts_gen(K, OPC, RAND1, 5000, auts), 0);
  for (bit = 0; bit < 14 * 8; bit++) {
    auts[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
    rand_n(r, 9);
    assert_int_equal(mtcsec_auc_resync(K, OPC, AMF, &sqn_he, 5, 0, RAND1, auts,
                                       r, &vec, &sqn_ms),
                     MTCSEC_ERR_MIC);
    auts[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
  }
  assert_true(sqn_he == 100);
  assert_true(sqn_ms == 7);
  /* AUTS of another RAND does not verify either. */
  rand_n(r, 1);
  assert_int_equal(mtcsec_auts_verify(K, OPC, r, auts, &sqn_ms),
                   MTCSEC_ERR_MIC);
}

static void test_aka_sqn_out_of_range(void **state) {
  mtcsec_sqn_ms ms;
  mtcsec_aka_vector vec, vec2;
  mtcsec_aka_result res;
  uint8_t auts[14];
  uint64_t sqn_he, sqn_ms = 0;
  mtcsec_sqn_verdict v;

  (void)state;
  assert_int_equal(mtcsec_sqn_ms_init(&ms, 5), 0);
  mtcsec_sqn_ms_accept(&ms, UINT64_C(10) << 5);
  /* C.2.2: SEQ - SEQ_MS <= Delta = 2^28 is fine, one more is not. */
  assert_int_equal(
    mtcsec_sqn_ms_check(&ms, (UINT64_C(10) + MTCSEC_SQN_DELTA) << 5 | 1),
    MTCSEC_SQN_FRESH);
  assert_int_equal(
    mtcsec_sqn_ms_check(&ms, (UINT64_C(11) + MTCSEC_SQN_DELTA) << 5 | 1),
    MTCSEC_SQN_OUT_OF_RANGE);
  assert_int_equal(mtcsec_sqn_ms_check(&ms, MTCSEC_SQN_MAX + 1),
                   MTCSEC_SQN_OUT_OF_RANGE);

  /* A genuine challenge from an AuC whose SQN_HE ran far ahead: the USIM
   * refuses it with AUTS, and the AuC comes back into range. */
  sqn_he = (UINT64_C(11) + MTCSEC_SQN_DELTA) << 5;
  assert_int_equal(
    mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 1, RAND1, &vec), 0);
  assert_int_equal(
    mtcsec_aka_ms(K, OPC, &ms, vec.rand, vec.autn, &res, auts, &v),
    MTCSEC_ERR_REPLAY);
  assert_int_equal(v, MTCSEC_SQN_OUT_OF_RANGE);
  assert_int_equal(mtcsec_auc_resync(K, OPC, AMF, &sqn_he, 5, 1, vec.rand, auts,
                                     RAND1, &vec2, &sqn_ms),
                   0);
  assert_true(sqn_ms == UINT64_C(10) << 5);
  assert_true(vec2.sqn == ((UINT64_C(11) << 5) | 1));
  assert_int_equal(
    mtcsec_aka_ms(K, OPC, &ms, vec2.rand, vec2.autn, &res, auts, &v), 0);
}

static void test_aka_ind_slots(void **state) {
  mtcsec_sqn_ms ms;

  (void)state;
  /* IND slots are independent: 64 (SEQ 2, IND 0) then 33 (SEQ 1, IND 1) is
   * fine; 32 (SEQ 1, IND 0) after 64 is not. */
  assert_int_equal(mtcsec_sqn_ms_init(&ms, 5), 0);
  assert_int_equal(mtcsec_sqn_ms_check(&ms, 64), MTCSEC_SQN_FRESH);
  mtcsec_sqn_ms_accept(&ms, 64);
  assert_int_equal(mtcsec_sqn_ms_check(&ms, 33), MTCSEC_SQN_FRESH);
  mtcsec_sqn_ms_accept(&ms, 33);
  assert_int_equal(mtcsec_sqn_ms_check(&ms, 32), MTCSEC_SQN_STALE);
  assert_int_equal(mtcsec_sqn_ms_check(&ms, 64), MTCSEC_SQN_STALE);
  assert_int_equal(mtcsec_sqn_ms_check(&ms, 96), MTCSEC_SQN_FRESH);
  /* Without IND, the SQN itself must increase. */
  assert_int_equal(mtcsec_sqn_ms_init(&ms, 0), 0);
  assert_int_equal(mtcsec_sqn_ms_check(&ms, 0), MTCSEC_SQN_STALE);
  mtcsec_sqn_ms_accept(&ms, 5);
  assert_int_equal(mtcsec_sqn_ms_check(&ms, 5), MTCSEC_SQN_STALE);
  assert_int_equal(mtcsec_sqn_ms_check(&ms, 6), MTCSEC_SQN_FRESH);
  assert_int_equal(mtcsec_sqn_ms_init(&ms, 6), MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_aka_auc_args_and_exhaustion(void **state) {
  mtcsec_aka_vector vec;
  uint64_t sqn_he;

  (void)state;
  sqn_he = 0;
  assert_int_equal(
    mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 32, RAND1, &vec),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(
    mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 6, 0, RAND1, &vec),
    MTCSEC_ERR_INVALID_ARGUMENT);
  sqn_he = MTCSEC_SQN_MAX; /* SEQ is at its top: no next SQN */
  assert_int_equal(
    mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 0, RAND1, &vec),
    MTCSEC_ERR_EXHAUSTED);
  assert_true(sqn_he == MTCSEC_SQN_MAX);
  sqn_he = MTCSEC_SQN_MAX - 63; /* next SEQ is the last one */
  assert_int_equal(
    mtcsec_auc_gen_vector(K, OPC, AMF, &sqn_he, 5, 0, RAND1, &vec), 0);
  assert_true(vec.sqn == MTCSEC_SQN_MAX - 31);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_aka_vector_accepted),
    cmocka_unit_test(test_aka_replay_gives_auts),
    cmocka_unit_test(test_aka_mac_failure),
    cmocka_unit_test(test_aka_auts_resync_round_trip),
    cmocka_unit_test(test_aka_resync_keeps_sqn_he_in_range),
    cmocka_unit_test(test_aka_forged_auts),
    cmocka_unit_test(test_aka_sqn_out_of_range),
    cmocka_unit_test(test_aka_ind_slots),
    cmocka_unit_test(test_aka_auc_args_and_exhaustion),
  };
  return cmocka_run_group_tests_name("cellular.aka", tests, setup, NULL);
}
