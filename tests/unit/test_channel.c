/*
 * Direct channel (PROTOCOL.md section 6): seal/open both ways, the 64-entry
 * replay window, seq 2^32-1, lifetime, tampering, key ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <mtcsec/channel.h>
#include <mtcsec/codec.h>

#include "crypto_fixture.h"

static const uint8_t DMKEY[32] = {
  0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
  0xcc, 0xdd, 0xee, 0xff, 0x00, 1,    2,    3,    4,    5,    6,
  7,    8,    9,    10,   11,   12,   13,   14,   15,   16};

typedef struct pair {
  mtcsec_chan dev, ue;
} pair;

static void pair_init(pair *p, const mtcsec_crypto *c, uint8_t suite,
                      uint16_t key_id, mtcsec_tstamp expiry) {
  assert_int_equal(mtcsec_chan_init(&p->dev, c, suite, MTCSEC_CHAN_DEVICE,
                                    DMKEY, key_id, expiry),
                   0);
  assert_int_equal(
    mtcsec_chan_init(&p->ue, c, suite, MTCSEC_CHAN_UE, DMKEY, key_id, expiry),
    0);
}

static void test_channel_both_directions_all_suites(void **state) {
  const mtcsec_crypto *prov[TH_MAX_PROVIDERS];
  const char *names[TH_MAX_PROVIDERS];
  size_t np = th_providers(prov, names), p;
  (void)state;
  for (p = 0; p < np; p++) {
    uint8_t suite;
    for (suite = 1; suite <= 3; suite++) {
      const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
      uint8_t rec[128], pt[64];
      const uint8_t msg[] = "read temperature";
      mtcsec_ssize n, m;
      pair c;
      if (sp->keylen > MTCSEC_CFG_MAX_KEY_LEN) {
        continue; /* a device build with 16-byte keys */
      }
      pair_init(&c, prov[p], suite, 0x0102, 1000);

      n = mtcsec_chan_seal(&c.ue, rec, sizeof(rec), msg, sizeof(msg), 0);
      assert_int_equal(n, 7 + sizeof(msg) + sp->miclen);
      assert_int_equal(rec[0], 0x16);
      assert_int_equal(rec[1], 0x01);
      assert_int_equal(rec[2], 0x02);
      m = mtcsec_chan_open(&c.dev, pt, sizeof(pt), rec, (size_t)n, 1);
      assert_int_equal(m, sizeof(msg));
      assert_memory_equal(pt, msg, sizeof(msg));
      /* The other direction uses other keys: a u2d record does not open
       * as d2u on the UE itself. */
      assert_int_equal(
        mtcsec_chan_open(&c.ue, pt, sizeof(pt), rec, (size_t)n, 1),
        MTCSEC_ERR_MIC);
      n = mtcsec_chan_seal(&c.dev, rec, sizeof(rec), msg, 5, 2);
      assert_int_equal(
        mtcsec_chan_open(&c.ue, pt, sizeof(pt), rec, (size_t)n, 2), 5);
      /* Empty payloads are records too. */
      n = mtcsec_chan_seal(&c.dev, rec, sizeof(rec), NULL, 0, 3);
      assert_int_equal(n, 7 + sp->miclen);
      assert_int_equal(
        mtcsec_chan_open(&c.ue, pt, sizeof(pt), rec, (size_t)n, 3), 0);
      mtcsec_chan_deinit(&c.dev);
      mtcsec_chan_deinit(&c.ue);
    }
  }
}

/* mtcsec_chan_init_keys() with the values of mtcsec_chan_derive() makes the
 * same records as mtcsec_chan_init(), byte for byte, and a channel made
 * from swapped keys opens them. */
static void test_channel_init_keys_matches_init(void **state) {
  const mtcsec_crypto *prov[TH_MAX_PROVIDERS];
  const char *names[TH_MAX_PROVIDERS];
  size_t np = th_providers(prov, names), p;
  (void)state;
  for (p = 0; p < np; p++) {
    uint8_t suite;
    for (suite = 1; suite <= 3; suite++) {
      uint8_t kd[32], ivd[13], ku[32], ivu[13], r1[64], r2[64], pt[32];
      const uint8_t msg[] = "status";
      mtcsec_chan ref, byk, peer;
      mtcsec_ssize n1, n2;
      if (mtcsec_suite_get(suite)->keylen > MTCSEC_CFG_MAX_KEY_LEN) {
        continue; /* a device build with 16-byte keys */
      }
      assert_int_equal(
        mtcsec_chan_derive(prov[p], suite, DMKEY, 7, kd, ivd, ku, ivu), 0);
      assert_int_equal(mtcsec_chan_init(&ref, prov[p], suite,
                                        MTCSEC_CHAN_DEVICE, DMKEY, 7, 100),
                       0);
      assert_int_equal(
        mtcsec_chan_init_keys(&byk, prov[p], suite, kd, ivd, ku, ivu, 7, 100),
        0);
      assert_int_equal(
        mtcsec_chan_init_keys(&peer, prov[p], suite, ku, ivu, kd, ivd, 7, 100),
        0);
      n1 = mtcsec_chan_seal(&ref, r1, sizeof(r1), msg, sizeof(msg), 1);
      n2 = mtcsec_chan_seal(&byk, r2, sizeof(r2), msg, sizeof(msg), 1);
      assert_true(n1 > 0);
      assert_int_equal(n1, n2);
      assert_memory_equal(r1, r2, (size_t)n1);
      assert_int_equal(
        mtcsec_chan_open(&peer, pt, sizeof(pt), r2, (size_t)n2, 2),
        sizeof(msg));
      assert_int_equal(
        mtcsec_chan_open(&peer, pt, sizeof(pt), r2, (size_t)n2, 2),
        MTCSEC_ERR_REPLAY);
      mtcsec_chan_deinit(&ref);
      mtcsec_chan_deinit(&byk);
      mtcsec_chan_deinit(&peer);
    }
  }
  {
    mtcsec_chan ch;
    uint8_t k[16] = {0}, iv[13] = {0};
    assert_int_equal(mtcsec_chan_init_keys(&ch, prov[0], 9, k, iv, k, iv, 0, 1),
                     MTCSEC_ERR_INVALID_ARGUMENT);
    assert_int_equal(
      mtcsec_chan_init_keys(&ch, prov[0], 1, NULL, iv, k, iv, 0, 1),
      MTCSEC_ERR_INVALID_ARGUMENT);
  }
}

static void test_channel_overhead_suite1_is_15(void **state) {
  pair c;
  uint8_t rec[64];
  (void)state;
  memset(rec, 0x33, sizeof(rec));
  pair_init(&c, th_openssl(), 1, 1, 10);
  assert_int_equal(mtcsec_chan_seal(&c.dev, rec, sizeof(rec), rec + 40, 10, 0),
                   10 + 15);
}

static void test_channel_replay_window(void **state) {
  uint8_t recs[70][32], pt[16];
  mtcsec_ssize len[70];
  const uint8_t one = 1;
  pair c;
  int i;
  (void)state;
  pair_init(&c, th_openssl(), 1, 7, MTCSEC_TSTAMP_NEVER);
  for (i = 0; i < 70; i++) {
    len[i] = mtcsec_chan_seal(&c.ue, recs[i], sizeof(recs[i]), &one, 1, 0);
    assert_true(len[i] > 0);
  }
  /* In order. */
  assert_int_equal(
    mtcsec_chan_open(&c.dev, pt, sizeof(pt), recs[0], (size_t)len[0], 0), 1);
  /* The same record again is a replay. */
  assert_int_equal(
    mtcsec_chan_open(&c.dev, pt, sizeof(pt), recs[0], (size_t)len[0], 0),
    MTCSEC_ERR_REPLAY);
  /* Out of order within the window: accepted once each. */
  assert_int_equal(
    mtcsec_chan_open(&c.dev, pt, sizeof(pt), recs[66], (size_t)len[66], 0), 1);
  assert_int_equal(
    mtcsec_chan_open(&c.dev, pt, sizeof(pt), recs[3], (size_t)len[3], 0), 1);
  assert_int_equal(
    mtcsec_chan_open(&c.dev, pt, sizeof(pt), recs[3], (size_t)len[3], 0),
    MTCSEC_ERR_REPLAY);
  /* 66 - 63 = 3 is the lowest in the window; 2 fell out of it. */
  assert_int_equal(
    mtcsec_chan_open(&c.dev, pt, sizeof(pt), recs[2], (size_t)len[2], 0),
    MTCSEC_ERR_REPLAY);
  assert_int_equal(
    mtcsec_chan_open(&c.dev, pt, sizeof(pt), recs[65], (size_t)len[65], 0), 1);
}

static void test_channel_tamper_leaves_state(void **state) {
  uint8_t rec[64], pt[32];
  const uint8_t msg[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  mtcsec_chan before;
  mtcsec_ssize n;
  size_t i;
  pair c;
  (void)state;
  pair_init(&c, th_openssl(), 1, 9, 100);
  n = mtcsec_chan_seal(&c.ue, rec, sizeof(rec), msg, sizeof(msg), 0);
  memcpy(&before, &c.dev, sizeof(before));
  for (i = 0; i < (size_t)n * 8; i++) {
    rec[i / 8] ^= (uint8_t)(1u << (i % 8));
    assert_true(mtcsec_chan_open(&c.dev, pt, sizeof(pt), rec, (size_t)n, 0) <
                0);
    assert_memory_equal(&before, &c.dev, sizeof(before));
    rec[i / 8] ^= (uint8_t)(1u << (i % 8));
  }
  /* Truncations. */
  for (i = 0; i < (size_t)n; i++) {
    assert_true(mtcsec_chan_open(&c.dev, pt, sizeof(pt), rec, i, 0) < 0);
  }
  assert_memory_equal(&before, &c.dev, sizeof(before));
  /* Still opens afterwards. */
  assert_int_equal(mtcsec_chan_open(&c.dev, pt, sizeof(pt), rec, (size_t)n, 0),
                   8);
}

static void test_channel_key_id_mismatch(void **state) {
  uint8_t rec[64], pt[32];
  pair a, b;
  mtcsec_ssize n;
  (void)state;
  memset(rec, 0x33, sizeof(rec));
  pair_init(&a, th_openssl(), 1, 1, 100);
  pair_init(&b, th_openssl(), 1, 2, 100);
  n = mtcsec_chan_seal(&a.ue, rec, sizeof(rec), rec + 50, 4, 0);
  assert_int_equal(mtcsec_chan_open(&b.dev, pt, sizeof(pt), rec, (size_t)n, 0),
                   MTCSEC_ERR_MISMATCH);
  /* Same key id on the wire but another key: the tag fails. */
  rec[2] = 2;
  assert_int_equal(mtcsec_chan_open(&b.dev, pt, sizeof(pt), rec, (size_t)n, 0),
                   MTCSEC_ERR_MIC);
}

static void test_channel_lifetime_erases_keys(void **state) {
  uint8_t rec[64], pt[32], zero[MTCSEC_CFG_MAX_KEY_LEN];
  mtcsec_ssize n;
  pair c;
  (void)state;
  memset(zero, 0, sizeof(zero));
  memset(rec, 0x33, sizeof(rec));
  memset(pt, 0x44, sizeof(pt));
  pair_init(&c, th_openssl(), 1, 3, 5000);
  n = mtcsec_chan_seal(&c.ue, rec, sizeof(rec), rec + 40, 4, 4999);
  assert_true(n > 0);
  /* A record after the key's lifetime is dropped; the keys are gone. */
  assert_int_equal(
    mtcsec_chan_open(&c.dev, pt, sizeof(pt), rec, (size_t)n, 5000),
    MTCSEC_ERR_EXPIRED);
  assert_memory_equal(c.dev.rx_key, zero, sizeof(zero));
  assert_memory_equal(c.dev.tx_key, zero, sizeof(zero));
  assert_int_equal(mtcsec_chan_open(&c.dev, pt, sizeof(pt), rec, (size_t)n, 10),
                   MTCSEC_ERR_INVALID_STATE);
  assert_int_equal(mtcsec_chan_seal(&c.ue, rec, sizeof(rec), pt, 1, 5000),
                   MTCSEC_ERR_EXPIRED);
}

static void test_channel_seq_exhaustion(void **state) {
  uint8_t rec[64], pt[32];
  mtcsec_ssize n;
  pair c;
  (void)state;
  memset(pt, 0x44, sizeof(pt));
  pair_init(&c, th_openssl(), 1, 3, 100);
  /* Jump the sender near the end (private field; test only). */
  c.ue.tx_seq = UINT32_MAX - 1;
  n = mtcsec_chan_seal(&c.ue, rec, sizeof(rec), pt, 1, 0);
  assert_true(n > 0);
  assert_int_equal(mtcsec_chan_open(&c.dev, pt, sizeof(pt), rec, (size_t)n, 0),
                   1);
  /* 2^32 - 1 is never sent... */
  assert_int_equal(mtcsec_chan_seal(&c.ue, rec, sizeof(rec), pt, 1, 0),
                   MTCSEC_ERR_EXHAUSTED);
  /* ...and dropped by a receiver even with a valid tag. */
  c.ue.tx_seq = UINT32_MAX;
  c.ue.tx_seq--; /* seal at UINT32_MAX - 1 again, then patch the seq */
  n = mtcsec_chan_seal(&c.ue, rec, sizeof(rec), pt, 1, 0);
  rec[3] = rec[4] = rec[5] = rec[6] = 0xff;
  assert_int_equal(mtcsec_chan_open(&c.dev, pt, sizeof(pt), rec, (size_t)n, 0),
                   MTCSEC_ERR_REPLAY);
}

static void test_channel_nobuf_consumes_nothing(void **state) {
  uint8_t rec[64], pt[32];
  mtcsec_ssize n;
  pair c;
  (void)state;
  memset(pt, 0x44, sizeof(pt));
  pair_init(&c, th_openssl(), 2, 3, 100);
  assert_int_equal(mtcsec_chan_seal(&c.ue, rec, 7 + 4 + 15, pt, 4, 0),
                   MTCSEC_ERR_NOBUF);
  assert_int_equal(c.ue.tx_seq, 0);
  n = mtcsec_chan_seal(&c.ue, rec, sizeof(rec), pt, 4, 0);
  assert_int_equal(n, 7 + 4 + 16);
  assert_int_equal(mtcsec_chan_open(&c.dev, pt, 3, rec, (size_t)n, 0),
                   MTCSEC_ERR_NOBUF);
  assert_int_equal(mtcsec_chan_open(&c.dev, pt, 4, rec, (size_t)n, 0), 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_channel_both_directions_all_suites),
    cmocka_unit_test(test_channel_init_keys_matches_init),
    cmocka_unit_test(test_channel_overhead_suite1_is_15),
    cmocka_unit_test(test_channel_replay_window),
    cmocka_unit_test(test_channel_tamper_leaves_state),
    cmocka_unit_test(test_channel_key_id_mismatch),
    cmocka_unit_test(test_channel_lifetime_erases_keys),
    cmocka_unit_test(test_channel_seq_exhaustion),
    cmocka_unit_test(test_channel_nobuf_consumes_nothing),
  };
  int rv = cmocka_run_group_tests(tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
