/*
 * The unwrap of device records on the hot path (src/store/
 * store_sqlite_unwrap.c: OpenSSL's CRYPTO_128_unwrap_pad over AES-256-ECB)
 * against kek.c (OpenSSL's AES-256-WRAP-PAD EVP cipher), both RFC 5649:
 * the same plaintext for every length a record can have, and the same
 * refusals (wrong KEK, any bit changed, truncated, bad lengths).
 */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mtcsec/store_sqlite.h>

#include "sqlite_fixture.h"
#include "store/sqlite_schema.h"

typedef struct ctx {
  mtcsec_kek_ctx *kek;
  mtcsec_sq_unwrapper *fast;
  mtcsec_kek_ctx *kek2;
  mtcsec_sq_unwrapper *fast2;
} ctx;

static int setup(void **state) {
  ctx *c = calloc(1, sizeof(*c));
  assert_non_null(c);
  assert_int_equal(mtcsec_kek_ctx_new(&c->kek, sfx_kek), 0);
  assert_int_equal(mtcsec_sq_unwrapper_new(&c->fast, sfx_kek), 0);
  assert_int_equal(mtcsec_kek_ctx_new(&c->kek2, sfx_kek2), 0);
  assert_int_equal(mtcsec_sq_unwrapper_new(&c->fast2, sfx_kek2), 0);
  *state = c;
  return 0;
}

static int teardown(void **state) {
  ctx *c = *state;
  mtcsec_kek_ctx_del(c->kek);
  mtcsec_sq_unwrapper_del(c->fast);
  mtcsec_kek_ctx_del(c->kek2);
  mtcsec_sq_unwrapper_del(c->fast2);
  free(c);
  return 0;
}

/* Both unwraps of in: same return value and, on success, same bytes. */
static mtcsec_ssize both(ctx *c, int second, const uint8_t *in, size_t inlen,
                         uint8_t *out) {
  uint8_t a[300], b[300];
  mtcsec_ssize ra, rb;
  memset(a, 0x11, sizeof(a));
  memset(b, 0x22, sizeof(b));
  ra = mtcsec_kek_unwrap(second ? c->kek2 : c->kek, in, inlen, a, sizeof(a));
  rb = mtcsec_sq_unwrap(second ? c->fast2 : c->fast, in, inlen, b, sizeof(b));
  if (ra != rb) {
    fail_msg("inlen %zu: kek.c %ld, fast %ld", inlen, (long)ra, (long)rb);
  }
  if (ra > 0) {
    assert_memory_equal(a, b, (size_t)ra);
    memcpy(out, a, (size_t)ra);
  }
  return ra;
}

static void test_unwrap_same_as_kek_c(void **state) {
  ctx *c = *state;
  uint8_t plain[248], wrapped[300], out[300];
  size_t len, i;
  uint32_t x = 12345;

  for (len = 1; len <= 248; len++) { /* wraps of up to 256 bytes */
    mtcsec_ssize wl, n;
    for (i = 0; i < len; i++) {
      x = x * 1103515245u + 12345u;
      plain[i] = (uint8_t)(x >> 16);
    }
    wl = mtcsec_kek_wrap(c->kek, plain, len, wrapped, sizeof(wrapped));
    assert_int_equal(wl, (mtcsec_ssize)MTCSEC_KEK_WRAP_LEN(len));
    n = both(c, 0, wrapped, (size_t)wl, out);
    assert_int_equal(n, (mtcsec_ssize)len);
    assert_memory_equal(out, plain, len);
    /* Under another KEK: refused by both. */
    assert_int_equal(both(c, 1, wrapped, (size_t)wl, out), MTCSEC_ERR_MIC);
    /* Every bit of short records, a few bits of long ones: refused. */
    for (i = 0; i < (size_t)wl * 8; i += len <= 48 ? 1 : 29) {
      wrapped[i / 8] ^= (uint8_t)(1u << (i % 8));
      n = both(c, 0, wrapped, (size_t)wl, out);
      wrapped[i / 8] ^= (uint8_t)(1u << (i % 8));
      if (n != MTCSEC_ERR_MIC) {
        fail_msg("len %zu bit %zu: %ld", len, i, (long)n);
      }
    }
    /* Truncated by one semiblock, or not a multiple of 8. */
    if (wl > 16) {
      assert_true(both(c, 0, wrapped, (size_t)wl - 8, out) < 0);
    }
    assert_true(both(c, 0, wrapped, (size_t)wl - 1, out) < 0);
  }
  /* Degenerate lengths. */
  assert_int_equal(both(c, 0, wrapped, 8, out), MTCSEC_ERR_MIC);
  assert_int_equal(both(c, 0, wrapped, 0, out), MTCSEC_ERR_MIC);
  /* Too small an output buffer. */
  wrapped[0] = 0;
  assert_int_equal(mtcsec_sq_unwrap(c->fast, wrapped, 56, out, 55),
                   MTCSEC_ERR_NOBUF);
}

/* A device record as mtcsec_sqlite_device_add writes it: MTCdID || suite
 * || K_auth || K_dm, 41 bytes for suite 1 (a 56-byte wrap). */
static void test_unwrap_device_record(void **state) {
  ctx *c = *state;
  uint8_t rec[41], wrapped[64], out[300];
  mtcsec_ssize wl;
  size_t i;
  for (i = 0; i < sizeof(rec); i++) {
    rec[i] = (uint8_t)(i * 7 + 1);
  }
  wl = mtcsec_kek_wrap(c->kek, rec, sizeof(rec), wrapped, sizeof(wrapped));
  assert_int_equal(wl, 56);
  assert_int_equal(both(c, 0, wrapped, 56, out), 41);
  assert_memory_equal(out, rec, sizeof(rec));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_unwrap_same_as_kek_c, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unwrap_device_record, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
