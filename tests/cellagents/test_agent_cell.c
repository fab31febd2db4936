/*
 * cellagents.unit: what the cellular agents share (apps/mtcsec/agent_cell.c)
 * and that decides on peer input or a failing environment:
 *  - cell_unique_id32(), the TEID allocation of the SGSN and the GGSN: a
 *    random source that fails, or keeps giving zero or values in use, ends
 *    in 0 (a refusal) after a bounded number of draws, never in a loop;
 *  - cell_policy_acceptable(), the MS's check of the ATTACH_ACCEPT policy
 *    against its USIM file (docs/CELLULAR-SYSTEM.md sections 1 and 5);
 *  - cell_addr_host(), the host the GGSN checks mtcsd's certificate for.
 * agent_cell.c is compiled in; the three agent_common.c functions it calls
 * for its trace and socket names are stubbed below.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent_cell.h"
#include "agent_common.h"
#include "cellsim.h"

/* ------------------------------------------------ agent_common.c stubs */

int agent_trace_enabled(void) { return 0; }

double agent_elapsed_ms(void) { return 0.0; }

const char *agent_addr_str(const agent_addr *a, char *out, size_t outlen) {
  (void)a;
  snprintf(out, outlen, "?");
  return out;
}

/* ------------------------------------------- a scripted random source */

typedef struct fake_rng {
  int fail;           /* random() returns -1 */
  uint32_t value;     /* the value drawn... */
  uint32_t step;      /* ...plus step per call */
  unsigned calls;     /* random() calls */
  unsigned taken_n;   /* taken() says the first taken_n values are in use */
  unsigned taken_all; /* taken() says every value is in use */
  unsigned asks;      /* taken() calls */
} fake_rng;

static int fake_random(void *ctx, uint8_t *out, size_t len) {
  fake_rng *r = ctx;
  uint32_t v;
  r->calls++;
  if (r->fail) {
    return -1;
  }
  v = r->value + r->step * (r->calls - 1);
  assert_int_equal(len, 4);
  out[0] = (uint8_t)(v >> 24);
  out[1] = (uint8_t)(v >> 16);
  out[2] = (uint8_t)(v >> 8);
  out[3] = (uint8_t)v;
  return 0;
}

static const mtcsec_crypto_ops fake_ops = {NULL, NULL, NULL,
                                           NULL, NULL, fake_random};

static int fake_taken(void *arg, uint32_t v) {
  fake_rng *r = arg;
  assert_int_not_equal(v, 0);
  r->asks++;
  return r->taken_all || r->asks <= r->taken_n;
}

static uint32_t draw(fake_rng *r) {
  mtcsec_crypto c;
  c.ops = &fake_ops;
  c.ctx = r;
  return cell_unique_id32(&c, fake_taken, r);
}

static void test_unique_id_first_free_value(void **state) {
  fake_rng r;
  (void)state;
  memset(&r, 0, sizeof(r));
  r.value = 0x11223344u;
  assert_int_equal(draw(&r), 0x11223344u);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.asks, 1);
}

static void test_unique_id_skips_values_in_use(void **state) {
  fake_rng r;
  (void)state;
  memset(&r, 0, sizeof(r));
  r.value = 100;
  r.step = 1;
  r.taken_n = 3;
  assert_int_equal(draw(&r), 103);
  assert_int_equal(r.calls, 4);
}

static void test_unique_id_random_fails(void **state) {
  fake_rng r;
  (void)state;
  memset(&r, 0, sizeof(r));
  r.fail = 1;
  assert_int_equal(draw(&r), 0);
  assert_int_equal(r.calls, 1); /* a failing provider is not asked again */
  assert_int_equal(r.asks, 0);
}

static void test_unique_id_only_zeros(void **state) {
  fake_rng r;
  (void)state;
  memset(&r, 0, sizeof(r)); /* value 0, step 0: the source repeats 0 */
  assert_int_equal(draw(&r), 0);
  assert_true(r.calls > 0 && r.calls <= 8); /* cell_random32's own bound */
  assert_int_equal(r.asks, 0);
}

static void test_unique_id_stuck_on_a_value_in_use(void **state) {
  fake_rng r;
  (void)state;
  memset(&r, 0, sizeof(r));
  r.value = 0xdeadbeefu; /* step 0: the same value every time */
  r.taken_all = 1;
  assert_int_equal(draw(&r), 0);
  assert_int_equal(r.calls, CELL_ID_TRIES);
  assert_int_equal(r.asks, CELL_ID_TRIES);
}

static void test_policy_acceptable(void **state) {
  (void)state;
  /* Provisioned integrity (USIM "integrity_only": true or absent). */
  assert_false(cell_policy_acceptable(0x00, 1));
  assert_false(cell_policy_acceptable(CELLSIM_POLICY_CIPHERING, 1));
  assert_true(cell_policy_acceptable(CELLSIM_POLICY_INTEGRITY, 1));
  assert_true(cell_policy_acceptable(
    CELLSIM_POLICY_INTEGRITY | CELLSIM_POLICY_CIPHERING, 1));
  /* "integrity_only": false: whatever the network says. */
  assert_true(cell_policy_acceptable(0x00, 0));
  assert_true(cell_policy_acceptable(CELLSIM_POLICY_INTEGRITY, 0));
}

static void test_addr_host(void **state) {
  char h[16];
  (void)state;
  assert_int_equal(cell_addr_host("127.0.0.1:7790", h, sizeof(h)), 0);
  assert_string_equal(h, "127.0.0.1");
  assert_int_equal(cell_addr_host("[::1]:7790", h, sizeof(h)), 0);
  assert_string_equal(h, "::1");
  assert_int_equal(cell_addr_host("localhost:1", h, sizeof(h)), 0);
  assert_string_equal(h, "localhost");
  assert_int_equal(cell_addr_host("localhost", h, sizeof(h)), -1);
  assert_int_equal(cell_addr_host(":7790", h, sizeof(h)), -1);
  assert_int_equal(cell_addr_host("[::1]7790", h, sizeof(h)), -1);
  assert_int_equal(cell_addr_host("[]:1", h, sizeof(h)), -1);
  assert_int_equal(cell_addr_host("mtcsd.example.org:7790", h, sizeof(h)),
                   -1); /* does not fit 16 bytes */
  assert_int_equal(cell_addr_host("mtcsd.example:1", h, sizeof(h)), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_unique_id_first_free_value),
    cmocka_unit_test(test_unique_id_skips_values_in_use),
    cmocka_unit_test(test_unique_id_random_fails),
    cmocka_unit_test(test_unique_id_only_zeros),
    cmocka_unit_test(test_unique_id_stuck_on_a_value_in_use),
    cmocka_unit_test(test_policy_acceptable),
    cmocka_unit_test(test_addr_host),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
