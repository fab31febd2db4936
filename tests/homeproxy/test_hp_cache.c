/*
 * Unit tests of mtchpd's vector table (apps/mtchpd/cache.c): the hashed
 * (IMSI, RAND) -> (CK, IK) lookup with 50,000 entries, its bound (the
 * oldest entries are overwritten), expiry (keys zeroized as soon as they
 * expire, "expired" still told apart from "unknown"), duplicates, and
 * vectors whose CK went to the SGSN (kept without keys, never served).
 * No daemon, a fake clock.  CTest homeproxy.cache.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mtchpd.h"

#define N_BIG 50000u
#define LIFETIME_S 600u
#define T0 ((mtcsec_tstamp)1000000)

/* Entry i: IMSI 00101 + 10 digits of i % 1000 (so IMSIs repeat with
 * different RANDs), RAND from a 64-bit mix of i, CK = RAND ^ 0x5c,
 * IK = RAND ^ 0x36. */
static void entry(uint32_t i, char imsi[16], uint8_t rand[16], uint8_t ck[16],
                  uint8_t ik[16]) {
  uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  size_t k;
  snprintf(imsi, 16, "00101%010u", i % 1000u);
  for (k = 0; k < 16; k++) {
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    rand[k] = (uint8_t)x;
    ck[k] = (uint8_t)(rand[k] ^ 0x5c);
    ik[k] = (uint8_t)(rand[k] ^ 0x36);
  }
}

static void put_range(hp_cache *c, uint32_t from, uint32_t to,
                      mtcsec_tstamp now) {
  uint32_t i;
  for (i = from; i < to; i++) {
    char imsi[16];
    uint8_t r[16], ck[16], ik[16];
    entry(i, imsi, r, ck, ik);
    hp_cache_put(c, imsi, r, ck, ik, 0, now);
  }
}

/* How many of [from, to) are found with the right keys (0 from get), and
 * how many answer `want` instead. */
static uint32_t count_get(hp_cache *c, uint32_t from, uint32_t to,
                          mtcsec_tstamp now, int want) {
  uint32_t i, n = 0;
  for (i = from; i < to; i++) {
    char imsi[16];
    uint8_t r[16], ck[16], ik[16], gck[16], gik[16];
    int rv;
    entry(i, imsi, r, ck, ik);
    memset(gck, 0, sizeof(gck));
    memset(gik, 0, sizeof(gik));
    rv = hp_cache_get(c, imsi, r, now, gck, gik);
    if (rv == want) {
      if (rv == 0 && (memcmp(gck, ck, 16) != 0 || memcmp(gik, ik, 16) != 0)) {
        continue; /* found, but with the wrong keys: not counted */
      }
      n++;
    }
  }
  return n;
}

static int all_zero(const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (p[i] != 0) {
      return 0;
    }
  }
  return 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_hp_cache_50000_lookups(void **state) {
  static char imsi[N_BIG][16];
  static uint8_t r[N_BIG][16], ck[N_BIG][16], ik[N_BIG][16];
  uint8_t gck[16], gik[16];
  hp_cache c;
  uint32_t i, good = 0;
  double t;
  (void)state;
  assert_int_equal(hp_cache_init(&c, N_BIG, LIFETIME_S), 0);
  put_range(&c, 0, N_BIG, T0);
  assert_int_equal(hp_cache_expire(&c, T0), N_BIG);
  for (i = 0; i < N_BIG; i++) {
    entry(i, imsi[i], r[i], ck[i], ik[i]);
  }
  /* Every entry, in an order unrelated to issue order. */
  t = now_s();
  for (i = 0; i < N_BIG; i++) {
    uint32_t j = (uint32_t)(((uint64_t)i * 7919u) % N_BIG);
    if (hp_cache_get(&c, imsi[j], r[j], T0 + 1000, gck, gik) == 0 &&
        memcmp(gck, ck[j], 16) == 0 && memcmp(gik, ik[j], 16) == 0) {
      good++;
    }
  }
  t = now_s() - t;
  assert_int_equal(good, N_BIG);
  printf("# %u lookups in a table of %u: %.0f ns each\n", N_BIG, N_BIG,
         t * 1e9 / N_BIG);
  /* Entries that were never issued: other RANDs, and a known RAND under
   * another IMSI. */
  assert_int_equal(count_get(&c, N_BIG, N_BIG + 1000, T0, MTCSEC_ERR_NOT_FOUND),
                   1000);
  assert_int_equal(hp_cache_get(&c, "001019999999999", r[7], T0, gck, gik),
                   MTCSEC_ERR_NOT_FOUND);
  hp_cache_free(&c);
}

static void test_hp_cache_expires_and_zeroizes(void **state) {
  hp_cache c;
  size_t i;
  (void)state;
  assert_int_equal(hp_cache_init(&c, N_BIG, LIFETIME_S), 0);
  /* Half at T0, half 30 s later. */
  put_range(&c, 0, N_BIG / 2, T0);
  put_range(&c, N_BIG / 2, N_BIG, T0 + 30000);
  /* Just before the first half's expiry, everything is there. */
  assert_int_equal(hp_cache_expire(&c, T0 + LIFETIME_S * 1000u - 1), N_BIG);
  /* At it, the first half is expired (told apart from unknown), the
   * second half still served. */
  assert_int_equal(
    count_get(&c, 0, N_BIG / 2, T0 + LIFETIME_S * 1000u, MTCSEC_ERR_EXPIRED),
    N_BIG / 2);
  assert_int_equal(count_get(&c, N_BIG / 2, N_BIG, T0 + LIFETIME_S * 1000u, 0),
                   N_BIG / 2);
  assert_int_equal(hp_cache_expire(&c, T0 + LIFETIME_S * 1000u), N_BIG / 2);
  /* Expired entries hold no key material any more. */
  for (i = 0; i < N_BIG / 2; i++) {
    assert_int_equal(c.v[i].state, HP_VEC_EXPIRED);
    assert_true(all_zero(c.v[i].ck, 16) && all_zero(c.v[i].ik, 16));
  }
  /* Then everything. */
  assert_int_equal(hp_cache_expire(&c, T0 + 30000 + LIFETIME_S * 1000u), 0);
  assert_int_equal(count_get(&c, 0, N_BIG, T0 + 30000 + LIFETIME_S * 1000u,
                             MTCSEC_ERR_EXPIRED),
                   N_BIG);
  for (i = 0; i < N_BIG; i++) {
    assert_true(all_zero(c.v[i].ck, 16) && all_zero(c.v[i].ik, 16));
  }
  /* New entries reuse the slots (oldest first) and are served. */
  put_range(&c, N_BIG, N_BIG + 100, T0 + 2000000);
  assert_int_equal(count_get(&c, N_BIG, N_BIG + 100, T0 + 2000000, 0), 100);
  assert_int_equal(count_get(&c, 0, 100, T0 + 2000000, MTCSEC_ERR_NOT_FOUND),
                   100);
  assert_int_equal(hp_cache_expire(&c, T0 + 2000000), 100);
  hp_cache_free(&c);
}

static void test_hp_cache_bounded(void **state) {
  hp_cache c;
  (void)state;
  assert_int_equal(hp_cache_init(&c, N_BIG, LIFETIME_S), 0);
  put_range(&c, 0, N_BIG + 10000, T0);
  /* The 10,000 oldest were overwritten (and are gone from the index). */
  assert_int_equal(hp_cache_expire(&c, T0), N_BIG);
  assert_int_equal(count_get(&c, 0, 10000, T0, MTCSEC_ERR_NOT_FOUND), 10000);
  assert_int_equal(count_get(&c, 10000, N_BIG + 10000, T0, 0), N_BIG);
  /* Expired slots overwritten later leave the index too. */
  put_range(&c, 0, 10, T0 + LIFETIME_S * 1000u + 1);
  assert_int_equal(hp_cache_expire(&c, T0 + LIFETIME_S * 1000u + 1), 10);
  assert_int_equal(count_get(&c, 10000, 10010, T0 + LIFETIME_S * 1000u + 1,
                             MTCSEC_ERR_NOT_FOUND),
                   10);
  assert_int_equal(count_get(&c, 0, 10, T0 + LIFETIME_S * 1000u + 1, 0), 10);
  hp_cache_free(&c);
}

static void test_hp_cache_tiny_and_duplicates(void **state) {
  hp_cache c;
  char imsi[16];
  uint8_t r[16], ck[16], ik[16], ck2[16], gck[16], gik[16];
  (void)state;
  assert_int_equal(hp_cache_init(&c, 0, LIFETIME_S), -1);
  assert_int_equal(hp_cache_init(&c, 1, LIFETIME_S), 0);
  entry(1, imsi, r, ck, ik);
  hp_cache_put(&c, imsi, r, ck, ik, 0, T0);
  assert_int_equal(hp_cache_get(&c, imsi, r, T0, gck, gik), 0);
  /* The same (IMSI, RAND) again (an upstream HLR repeating a RAND): the
   * newest keys win. */
  memset(ck2, 0xa5, sizeof(ck2));
  hp_cache_put(&c, imsi, r, ck2, ik, 0, T0 + 1);
  assert_int_equal(hp_cache_get(&c, imsi, r, T0 + 1, gck, gik), 0);
  assert_memory_equal(gck, ck2, 16);
  assert_int_equal(hp_cache_expire(&c, T0 + 1), 1);
  hp_cache_free(&c);

  assert_int_equal(hp_cache_init(&c, 4, LIFETIME_S), 0);
  hp_cache_put(&c, imsi, r, ck, ik, 0, T0);
  hp_cache_put(&c, imsi, r, ck2, ik, 0, T0 + 5);
  assert_int_equal(hp_cache_get(&c, imsi, r, T0 + 5, gck, gik), 0);
  assert_memory_equal(gck, ck2, 16);
  /* The older copy expires first; the newer one still answers. */
  assert_int_equal(hp_cache_expire(&c, T0 + LIFETIME_S * 1000u), 1);
  assert_int_equal(hp_cache_get(&c, imsi, r, T0 + LIFETIME_S * 1000u, gck, gik),
                   0);
  assert_memory_equal(gck, ck2, 16);
  hp_cache_free(&c);
}

/* A vector whose CK (and Kc) went to the SGSN: the table keeps (IMSI,
 * RAND) and the flag but neither CK nor IK, and the lookup says
 * MTCSEC_ERR_FORBIDDEN (live or expired), never 0 with keys. */
static void test_hp_cache_ck_released(void **state) {
  hp_cache c;
  char imsi[16], imsi2[16];
  uint8_t r[16], ck[16], ik[16], r2[16], ck2[16], ik2[16], gck[16], gik[16];
  size_t i;
  (void)state;
  assert_int_equal(hp_cache_init(&c, 8, LIFETIME_S), 0);
  entry(1, imsi, r, ck, ik);
  entry(2, imsi2, r2, ck2, ik2);
  hp_cache_put(&c, imsi, r, ck, ik, HP_VEC_CK_RELEASED, T0);
  hp_cache_put(&c, imsi2, r2, ck2, ik2, 0, T0);
  memset(gck, 0xee, sizeof(gck));
  memset(gik, 0xee, sizeof(gik));
  assert_int_equal(hp_cache_get(&c, imsi, r, T0 + 1, gck, gik),
                   MTCSEC_ERR_FORBIDDEN);
  /* Nothing was copied out, and the slot holds no key. */
  for (i = 0; i < 16; i++) {
    assert_int_equal(gck[i], 0xee);
    assert_int_equal(gik[i], 0xee);
  }
  for (i = 0; i < c.cap; i++) {
    if (c.v[i].state != HP_VEC_FREE && c.v[i].ck_released) {
      assert_true(all_zero(c.v[i].ck, 16) && all_zero(c.v[i].ik, 16));
      assert_memory_equal(c.v[i].rand, r, 16);
    }
  }
  /* The other vector of the table is served as before. */
  assert_int_equal(hp_cache_get(&c, imsi2, r2, T0 + 1, gck, gik), 0);
  assert_memory_equal(gck, ck2, 16);
  assert_memory_equal(gik, ik2, 16);
  /* Expired, it is still refused for the same reason. */
  assert_int_equal(hp_cache_expire(&c, T0 + LIFETIME_S * 1000u), 0);
  assert_int_equal(hp_cache_get(&c, imsi, r, T0 + LIFETIME_S * 1000u, gck, gik),
                   MTCSEC_ERR_FORBIDDEN);
  assert_int_equal(
    hp_cache_get(&c, imsi2, r2, T0 + LIFETIME_S * 1000u, gck, gik),
    MTCSEC_ERR_EXPIRED);
  /* A slot reused by a servable vector loses the flag. */
  hp_cache_free(&c);
  assert_int_equal(hp_cache_init(&c, 1, LIFETIME_S), 0);
  hp_cache_put(&c, imsi, r, ck, ik, HP_VEC_CK_RELEASED, T0);
  hp_cache_put(&c, imsi2, r2, ck2, ik2, 0, T0);
  assert_int_equal(hp_cache_get(&c, imsi2, r2, T0, gck, gik), 0);
  assert_int_equal(hp_cache_get(&c, imsi, r, T0, gck, gik),
                   MTCSEC_ERR_NOT_FOUND);
  hp_cache_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_hp_cache_ck_released),
    cmocka_unit_test(test_hp_cache_50000_lookups),
    cmocka_unit_test(test_hp_cache_expires_and_zeroizes),
    cmocka_unit_test(test_hp_cache_bounded),
    cmocka_unit_test(test_hp_cache_tiny_and_duplicates),
  };
  return cmocka_run_group_tests_name("homeproxy.cache", tests, NULL, NULL);
}
