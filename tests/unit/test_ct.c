/*
 * Constant-flow checks in the style of ctgrind (Monocypher tests/ctgrind.c,
 * Mbed TLS TEST_CF_SECRET): secret bytes are marked undefined for valgrind
 * memcheck, so any branch or memory index that depends on them is reported
 * as "conditional jump depends on uninitialised value" and the valgrind
 * stage (valgrind.unit_ct, --error-exitcode) fails.  Outside valgrind the
 * same cases check the results.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <valgrind/memcheck.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/codec.h>

#include "crypto_fixture.h"

#define SECRET(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#define PUBLIC(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))

static void test_ct_memcmp_flow_is_independent_of_data(void **state) {
  uint8_t a[16], b[16];
  size_t i;
  int r;
  (void)state;
  for (i = 0; i <= 16; i++) {
    memset(a, 0x5a, sizeof(a));
    memcpy(b, a, sizeof(b));
    if (i < 16) {
      b[i] ^= 0x80; /* differ at position i (or not at all when i == 16) */
    }
    SECRET(a, sizeof(a));
    SECRET(b, sizeof(b));
    r = mtcsec_ct_memcmp(a, b, sizeof(a));
    PUBLIC(&r, sizeof(r)); /* the verdict itself is public */
    PUBLIC(a, sizeof(a));
    PUBLIC(b, sizeof(b));
    if (i < 16) {
      assert_int_equal(r, 1);
    } else {
      assert_int_equal(r, 0);
    }
  }
}

static void test_ct_window_and_zeroize(void **state) {
  uint8_t key[32];
  size_t i;
  (void)state;
  memset(key, 0xaa, sizeof(key));
  SECRET(key, sizeof(key));
  mtcsec_zeroize(key, sizeof(key));
  PUBLIC(key, sizeof(key));
  for (i = 0; i < sizeof(key); i++) {
    assert_int_equal(key[i], 0);
  }
}

/* The device-side MIC check: the expected MIC is computed from K_auth and
 * compared in constant time; only the final verdict may steer control. */
static void test_ct_m4_verdict_only(void **state) {
  const mtcsec_crypto *c = th_openssl();
  static const uint8_t psk[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                                  9, 10, 11, 12, 13, 14, 15, 16};
  static const uint8_t id[8] = {1}, sid[8] = {2}, ue[8] = {3}, n[8] = {4};
  static const uint8_t sinfo[13] = {0x90, 4, 0,    0, 0, 60, 0x91,
                                    1,    1, 0x92, 2, 0, 1};
  uint8_t ka[16], kd[16], m4[64];
  mtcsec_m4_fields f;
  mtcsec_hs hs;
  mtcsec_ssize len;
  (void)state;
  assert_int_equal(mtcsec_derive_device_keys(c, 1, psk, id, sid, ka, kd), 0);
  memset(&f, 0, sizeof(f));
  f.suite = 1;
  f.mtcs_id = sid;
  f.mtcd_id = id;
  f.mtcs_nonce = n;
  f.ueid = ue;
  f.info = sinfo;
  f.info_len = sizeof(sinfo);
  f.mtcd_nonce = n;
  len = mtcsec_m4_build(m4, sizeof(m4), c, ka, &f);
  assert_int_equal(len, 56);
  assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M4, m4, (size_t)len), 0);
  /* Flip one MIC bit: the mismatch must not be found by an early exit. */
  m4[len - 1] ^= 1;
  assert_int_equal(mtcsec_m4_verify(&hs, c, ka, n, NULL, 0), MTCSEC_ERR_MIC);
  m4[len - 1] ^= 1;
  assert_int_equal(mtcsec_m4_verify(&hs, c, ka, n, NULL, 0), 0);
}

/* Longest length and largest misalignment the word-wise compare is tried
 * with. */
#define CT_MAXLEN 80
#define CT_MAXOFF 8

/* mtcsec_ct_memcmp() reads a machine word at a time, unaligned: every
 * length 0..80 at every offset 0..7 of both operands, equal, then with a
 * difference at every position (the lowest bit, the highest bit of the
 * byte, and one that moves with the position: a word compare that dropped
 * a bit of a word, or a byte of the tail, misses one of them).  Each operand
 * ends where its heap block ends, so a read past n is an ASan error, and
 * the bytes around the operands differ between a and b, so a read outside
 * them changes the verdict. */
static void test_ct_memcmp_every_length_offset_position(void **state) {
  size_t n, oa, ob, pos, bit;
  unsigned compared = 0;
  (void)state;

  for (n = 0; n <= CT_MAXLEN; n++) {
    for (oa = 0; oa < CT_MAXOFF; oa++) {
      /* a: oa bytes of 0xa5 before, then n bytes; the block ends there. */
      uint8_t *ablk = malloc(oa + n > 0 ? oa + n : 1);
      assert_non_null(ablk);
      memset(ablk, 0xa5, oa);
      for (pos = 0; pos < n; pos++) {
        ablk[oa + pos] = (uint8_t)(pos * 29 + n + 1);
      }
      for (ob = 0; ob < CT_MAXOFF; ob++) {
        uint8_t *bblk = malloc(ob + n > 0 ? ob + n : 1);
        uint8_t *a = ablk + oa, *b;
        assert_non_null(bblk);
        b = bblk + ob;
        memset(bblk, 0x5a, ob);
        memcpy(b, a, n);
        assert_int_equal(mtcsec_ct_memcmp(a, b, n), 0);
        assert_int_equal(mtcsec_ct_memcmp(b, a, n), 0);
        for (pos = 0; pos < n; pos++) {
          const uint8_t masks[3] = {0x01, 0x80,
                                    (uint8_t)(1u << ((pos + oa + ob) % 8))};
          for (bit = 0; bit < 3; bit++) {
            b[pos] ^= masks[bit];
            assert_int_not_equal(mtcsec_ct_memcmp(a, b, n), 0);
            assert_int_not_equal(mtcsec_ct_memcmp(b, a, n), 0);
            /* Only the first pos bytes: still equal. */
            assert_int_equal(mtcsec_ct_memcmp(a, b, pos), 0);
            b[pos] ^= masks[bit];
            compared++;
          }
        }
        /* Every byte different (all-ones words). */
        for (pos = 0; pos < n; pos++) {
          b[pos] = (uint8_t)~a[pos];
        }
        if (n > 0) {
          assert_int_not_equal(mtcsec_ct_memcmp(a, b, n), 0);
        }
        free(bblk);
      }
      free(ablk);
    }
  }
  assert_true(compared > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ct_memcmp_flow_is_independent_of_data),
    cmocka_unit_test(test_ct_window_and_zeroize),
    cmocka_unit_test(test_ct_m4_verdict_only),
    cmocka_unit_test(test_ct_memcmp_every_length_offset_position),
  };
  int rv = cmocka_run_group_tests(tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
