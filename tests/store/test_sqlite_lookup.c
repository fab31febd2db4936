/*
 * get_device_grant (one statement for the two lookups of an M2) against
 * get_device then get_grant on the same SQLite store: the same return
 * values and outputs for every kind of device and grant (none, device
 * grant, group grant, a device grant outside its validity period that
 * hides a valid group grant, not yet valid, disabled device, unknown
 * device, keys that do not unwrap).
 */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <mtcsec/store_sqlite.h>

#include "sqlite_fixture.h"

static const uint8_t mtcs_id[8] = {0x5e, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t ue_a[8] = {0xe0, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t ue_b[8] = {0xe0, 0, 0, 0, 0, 0, 0, 0x02};
static const uint8_t psk[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};

#define NDEV 8

typedef struct fx {
  char dir[SFX_PATH_MAX];
  char db[SFX_PATH_MAX];
  mtcsec_sqlite *st;
} fx;

static void dev_id(uint8_t id[8], unsigned i) {
  memset(id, 0, 8);
  id[0] = 0xd0;
  id[7] = (uint8_t)i;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  int64_t now = (int64_t)time(NULL);
  uint8_t id[8];
  unsigned i;
  assert_non_null(f);
  sfx_mkdtemp(f->dir);
  sfx_join(f->db, f->dir, "mtcsd.db");
  f->st = sfx_open(f->db, sfx_kek, MTCSEC_SQLITE_CREATE);
  /* 0: no grant; 1: device grant; 2: group "g" only; 3: an expired device
   * grant in group "g"; 4: a device grant not yet valid; 5: disabled, with
   * a device grant; 6: suite 3, group "h" whose grant expired; 7: never
   * provisioned. */
  for (i = 0; i < 7; i++) {
    dev_id(id, i);
    assert_int_equal(mtcsec_sqlite_device_add(f->st, id, mtcs_id,
                                              i == 6 ? 3 : 1, psk, NULL,
                                              i == 2 || i == 3 ? "g"
                                              : i == 6         ? "h"
                                                               : NULL),
                     0);
  }
  dev_id(id, 1);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, id, NULL, 0x0f, 600, 0, 0), 0);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, NULL, "g", 0x03, 120, 0, 0), 0);
  dev_id(id, 3);
  assert_int_equal(mtcsec_sqlite_grant_set(f->st, ue_a, id, NULL, 0x01, 60,
                                           now - 100, now - 10),
                   0);
  dev_id(id, 4);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, id, NULL, 0x01, 60, now + 1000, 0), 0);
  dev_id(id, 5);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, id, NULL, 0x07, 30, 0, 0), 0);
  assert_int_equal(mtcsec_sqlite_device_disable(f->st, id, 1), 0);
  assert_int_equal(mtcsec_sqlite_grant_set(f->st, ue_a, NULL, "h", 0x01, 60,
                                           now - 100, now - 10),
                   0);
  /* ue_b: a grant on device 0 only. */
  dev_id(id, 0);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_b, id, NULL, 0x02, 90, 0, 0), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  mtcsec_sqlite_close(f->st);
  sfx_rmtree(f->dir);
  free(f);
  return 0;
}

/* Both ways on st; returns get_device's value and, in *grv, the grant's. */
static int both(mtcsec_sqlite *st, unsigned i, const uint8_t *ue, int *grv,
                mtcsec_store_grant *gout) {
  mtcsec_store_device d1, d2;
  mtcsec_store_grant g1, g2;
  uint8_t id[8];
  int r1, r2, gr1 = 0x55, gr2 = 0x66;

  dev_id(id, i);
  memset(&d1, 0, sizeof(d1));
  memset(&d2, 0, sizeof(d2));
  memset(&g1, 0, sizeof(g1));
  memset(&g2, 0, sizeof(g2));
  r1 = mtcsec_sqlite_ops.get_device(st, id, &d1);
  if (r1 == 0) {
    gr1 = mtcsec_sqlite_ops.get_grant(st, id, ue, &g1);
  }
  r2 = mtcsec_sqlite_ops.get_device_grant(st, id, ue, &d2, &g2, &gr2);
  assert_int_equal(r1, r2);
  if (r1 == 0) {
    assert_memory_equal(&d1, &d2, sizeof(d1));
    assert_int_equal(gr1, gr2);
    if (gr1 == 0) {
      assert_memory_equal(&g1, &g2, sizeof(g1));
    }
  }
  *grv = gr2;
  *gout = g2;
  return r2;
}

static void test_lookup_same_as_two_calls(void **state) {
  fx *f = *state;
  mtcsec_store_grant g;
  int grv;

  assert_int_equal(both(f->st, 0, ue_a, &grv, &g), 0);
  assert_int_equal(grv, MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(both(f->st, 0, ue_b, &grv, &g), 0);
  assert_int_equal(grv, 0);
  assert_int_equal(g.perms, 0x02);
  assert_int_equal(g.lifetime, 90);
  assert_int_equal(both(f->st, 1, ue_a, &grv, &g), 0);
  assert_int_equal(grv, 0);
  assert_int_equal(g.perms, 0x0f);
  assert_int_equal(g.lifetime, 600);
  assert_int_equal(both(f->st, 2, ue_a, &grv, &g), 0); /* the group's */
  assert_int_equal(grv, 0);
  assert_int_equal(g.perms, 0x03);
  assert_int_equal(g.lifetime, 120);
  assert_int_equal(both(f->st, 2, ue_b, &grv, &g), 0);
  assert_int_equal(grv, MTCSEC_ERR_NOT_FOUND);
  /* The expired device grant decides, not the group's. */
  assert_int_equal(both(f->st, 3, ue_a, &grv, &g), 0);
  assert_int_equal(grv, MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(both(f->st, 4, ue_a, &grv, &g), 0);
  assert_int_equal(grv, MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(both(f->st, 5, ue_a, &grv, &g), 0);
  assert_int_equal(grv, 0);
  assert_int_equal(both(f->st, 6, ue_a, &grv, &g), 0);
  assert_int_equal(grv, MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(both(f->st, 7, ue_a, &grv, &g), MTCSEC_ERR_NOT_FOUND);
  /* The disabled flag and the suite come through. */
  {
    mtcsec_store_device d;
    uint8_t id[8];
    dev_id(id, 5);
    assert_int_equal(
      mtcsec_sqlite_ops.get_device_grant(f->st, id, ue_a, &d, &g, &grv), 0);
    assert_int_equal(d.disabled, 1);
    dev_id(id, 6);
    assert_int_equal(
      mtcsec_sqlite_ops.get_device_grant(f->st, id, ue_a, &d, &g, &grv), 0);
    assert_int_equal(d.suite, 3);
  }
}

static void test_lookup_wrong_kek(void **state) {
  fx *f = *state;
  mtcsec_store_grant g;
  int grv;
  mtcsec_sqlite_close(f->st);
  f->st = sfx_open(f->db, sfx_kek2, 0);
  assert_int_equal(both(f->st, 1, ue_a, &grv, &g), MTCSEC_ERR_STORE);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "do not unwrap"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_lookup_same_as_two_calls, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_lookup_wrong_kek, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
