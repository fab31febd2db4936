/*
 * The in-memory store (store.h): devices, grants, relays, durable windows
 * and key ids, sessions, fault injection, zeroization.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mtcsec/store.h>

static const uint8_t dev_a[8] = {0xd0, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t dev_b[8] = {0xd0, 0, 0, 0, 0, 0, 0, 0x02};
static const uint8_t ue_a[8] = {0xe0, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t ue_b[8] = {0xe0, 0, 0, 0, 0, 0, 0, 0x02};
static const uint8_t gw_a[8] = {0x90, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t gw_b[8] = {0x90, 0, 0, 0, 0, 0, 0, 0x02};

static mtcsec_store_device make_dev(uint8_t fill) {
  mtcsec_store_device d;
  memset(&d, 0, sizeof(d));
  d.suite = 1;
  memset(d.k_auth, fill, sizeof(d.k_auth));
  memset(d.k_dm, (uint8_t)(fill + 1), sizeof(d.k_dm));
  return d;
}

static mtcsec_store_txn make_txn(const uint8_t dev[8], uint64_t nonce,
                                 uint16_t key_id) {
  mtcsec_store_txn t;
  memset(&t, 0, sizeof(t));
  t.nonce = nonce;
  memcpy(t.session.mtcd_id, dev, 8);
  memcpy(t.session.ueid, ue_a, 8);
  t.session.key_id = key_id;
  t.session.suite = 1;
  t.session.perms = 3;
  t.session.lifetime = 60;
  t.session.issued_at = 1000 + nonce;
  return t;
}

static int commit(mtcsec_store_mem *st, mtcsec_store_txn *txns, size_t n,
                  int *results) {
  mtcsec_store_txn *p[16];
  size_t i;
  assert_true(n <= 16);
  for (i = 0; i < n; i++) {
    p[i] = &txns[i];
  }
  return mtcsec_store_mem_ops.commit(st, p, n, results);
}

static int setup(void **state) {
  mtcsec_store_mem *st;
  assert_int_equal(mtcsec_store_mem_new(&st, NULL), 0);
  *state = st;
  return 0;
}

static int teardown(void **state) {
  mtcsec_store_mem_del(*state);
  return 0;
}

static void test_store_mem_device_roundtrip(void **state) {
  mtcsec_store_mem *st = *state;
  mtcsec_store_device d = make_dev(0x11), out;

  assert_int_equal(mtcsec_store_mem_ops.get_device(st, dev_a, &out),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_store_mem_add_device(st, dev_a, &d), 0);
  assert_int_equal(mtcsec_store_mem_ops.get_device(st, dev_a, &out), 0);
  assert_memory_equal(&out, &d, sizeof(d));
  assert_int_equal(mtcsec_store_mem_ops.get_device(st, dev_b, &out),
                   MTCSEC_ERR_NOT_FOUND);

  /* Replace. */
  d = make_dev(0x22);
  d.suite = 3;
  assert_int_equal(mtcsec_store_mem_add_device(st, dev_a, &d), 0);
  assert_int_equal(mtcsec_store_mem_ops.get_device(st, dev_a, &out), 0);
  assert_memory_equal(&out, &d, sizeof(d));

  assert_int_equal(mtcsec_store_mem_set_disabled(st, dev_a, 5), 0);
  assert_int_equal(mtcsec_store_mem_ops.get_device(st, dev_a, &out), 0);
  assert_int_equal(out.disabled, 1);
  assert_int_equal(mtcsec_store_mem_set_disabled(st, dev_a, 0), 0);
  assert_int_equal(mtcsec_store_mem_ops.get_device(st, dev_a, &out), 0);
  assert_int_equal(out.disabled, 0);
  assert_int_equal(mtcsec_store_mem_set_disabled(st, dev_b, 1),
                   MTCSEC_ERR_NOT_FOUND);

  assert_int_equal(mtcsec_store_mem_add_device(st, NULL, &d),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_store_mem_add_device(st, dev_a, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_store_mem_state_of_unseen_device_is_empty(void **state) {
  mtcsec_store_mem *st = *state;
  mtcsec_store_devstate ds;
  memset(&ds, 0xff, sizeof(ds));
  assert_int_equal(mtcsec_store_mem_ops.get_state(st, dev_a, &ds), 0);
  assert_int_equal(ds.window.bitmap, 0);
  assert_int_equal(ds.next_key_id, 0);
  assert_int_equal(mtcsec_window_check(&ds.window, 0), 0);
}

static void test_store_mem_grants(void **state) {
  mtcsec_store_mem *st = *state;
  mtcsec_store_grant g;

  assert_int_equal(mtcsec_store_mem_ops.get_grant(st, dev_a, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_store_mem_grant(st, dev_a, ue_a, 0x05, 3600), 0);
  assert_int_equal(mtcsec_store_mem_ops.get_grant(st, dev_a, ue_a, &g), 0);
  assert_int_equal(g.perms, 0x05);
  assert_int_equal(g.lifetime, 3600);
  /* Keyed by both IDs. */
  assert_int_equal(mtcsec_store_mem_ops.get_grant(st, dev_a, ue_b, &g),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_store_mem_ops.get_grant(st, dev_b, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
  /* Replace. */
  assert_int_equal(mtcsec_store_mem_grant(st, dev_a, ue_a, 0x01, 60), 0);
  assert_int_equal(mtcsec_store_mem_ops.get_grant(st, dev_a, ue_a, &g), 0);
  assert_int_equal(g.perms, 0x01);
  assert_int_equal(g.lifetime, 60);
  /* Revoke. */
  assert_int_equal(mtcsec_store_mem_revoke_grant(st, dev_a, ue_a), 0);
  assert_int_equal(mtcsec_store_mem_ops.get_grant(st, dev_a, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_store_mem_revoke_grant(st, dev_a, ue_a),
                   MTCSEC_ERR_NOT_FOUND);
  /* Granted again after a revoke (tombstone reuse). */
  assert_int_equal(mtcsec_store_mem_grant(st, dev_a, ue_a, 0x02, 10), 0);
  assert_int_equal(mtcsec_store_mem_ops.get_grant(st, dev_a, ue_a, &g), 0);
  assert_int_equal(g.perms, 0x02);
}

static void test_store_mem_relays(void **state) {
  mtcsec_store_mem *st = *state;
  assert_int_equal(mtcsec_store_mem_ops.relay_allowed(st, dev_a, gw_a),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_store_mem_allow_relay(st, dev_a, gw_a), 0);
  assert_int_equal(mtcsec_store_mem_allow_relay(st, dev_a, gw_a), 0);
  assert_int_equal(mtcsec_store_mem_ops.relay_allowed(st, dev_a, gw_a), 0);
  assert_int_equal(mtcsec_store_mem_ops.relay_allowed(st, dev_a, gw_b),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_store_mem_ops.relay_allowed(st, dev_b, gw_a),
                   MTCSEC_ERR_NOT_FOUND);
}

static void test_store_mem_commit_updates_window_key_id_sessions(void **state) {
  mtcsec_store_mem *st = *state;
  mtcsec_store_txn t[4];
  mtcsec_store_devstate ds;
  mtcsec_session_rec rec;
  int res[4];

  t[0] = make_txn(dev_a, 3, 0);
  t[1] = make_txn(dev_a, 3, 1); /* same nonce in the same batch */
  t[2] = make_txn(dev_a, 2, 1); /* out of order, inside the window */
  t[3] = make_txn(dev_b, 0, 7); /* another device, nonce 0 */
  memset(res, 0x55, sizeof(res));
  assert_int_equal(commit(st, t, 4, res), 0);
  assert_int_equal(res[0], 0);
  assert_int_equal(res[1], MTCSEC_ERR_REPLAY);
  assert_int_equal(res[2], 0);
  assert_int_equal(res[3], 0);

  assert_int_equal(mtcsec_store_mem_ops.get_state(st, dev_a, &ds), 0);
  assert_int_equal(ds.next_key_id, 2);
  assert_int_equal(ds.window.top, 3);
  assert_int_equal(mtcsec_window_check(&ds.window, 3), MTCSEC_ERR_REPLAY);
  assert_int_equal(mtcsec_window_check(&ds.window, 2), MTCSEC_ERR_REPLAY);
  assert_int_equal(mtcsec_window_check(&ds.window, 1), 0);
  assert_int_equal(mtcsec_store_mem_ops.get_state(st, dev_b, &ds), 0);
  assert_int_equal(ds.next_key_id, 8);

  assert_int_equal(mtcsec_store_mem_sessions(st), 3);
  assert_int_equal(mtcsec_store_mem_session(st, 0, &rec), 0);
  assert_memory_equal(&rec, &t[0].session, sizeof(rec));
  assert_int_equal(mtcsec_store_mem_session(st, 1, &rec), 0);
  assert_memory_equal(&rec, &t[2].session, sizeof(rec));
  assert_int_equal(mtcsec_store_mem_session(st, 2, &rec), 0);
  assert_memory_equal(&rec, &t[3].session, sizeof(rec));
  assert_int_equal(mtcsec_store_mem_session(st, 3, &rec), MTCSEC_ERR_NOT_FOUND);

  /* Across batches too. */
  assert_int_equal(commit(st, t, 1, res), 0);
  assert_int_equal(res[0], MTCSEC_ERR_REPLAY);
  assert_int_equal(mtcsec_store_mem_sessions(st), 3);
  /* An empty batch is fine. */
  assert_int_equal(mtcsec_store_mem_ops.commit(st, NULL, 0, NULL), 0);
}

static void test_store_mem_commit_below_window_is_replay(void **state) {
  mtcsec_store_mem *st = *state;
  mtcsec_store_txn t[3];
  int res[3];
  t[0] = make_txn(dev_a, 100, 0);
  t[1] = make_txn(dev_a, 36, 1); /* top - 64 */
  t[2] = make_txn(dev_a, 37, 1); /* top - 63 */
  assert_int_equal(commit(st, t, 3, res), 0);
  assert_int_equal(res[0], 0);
  assert_int_equal(res[1], MTCSEC_ERR_REPLAY);
  assert_int_equal(res[2], 0);
}

static void test_store_mem_fail_commits_writes_nothing(void **state) {
  mtcsec_store_mem *st = *state;
  mtcsec_store_txn t = make_txn(dev_a, 9, 4);
  mtcsec_store_devstate ds;
  int res;

  mtcsec_store_mem_fail_commits(st, 2);
  assert_int_equal(commit(st, &t, 1, &res), MTCSEC_ERR_STORE);
  assert_int_equal(commit(st, &t, 1, &res), MTCSEC_ERR_STORE);
  assert_int_equal(mtcsec_store_mem_sessions(st), 0);
  assert_int_equal(mtcsec_store_mem_ops.get_state(st, dev_a, &ds), 0);
  assert_int_equal(ds.window.bitmap, 0);
  assert_int_equal(ds.next_key_id, 0);
  /* The third goes through. */
  assert_int_equal(commit(st, &t, 1, &res), 0);
  assert_int_equal(res, 0);
  assert_int_equal(mtcsec_store_mem_sessions(st), 1);
  assert_int_equal(mtcsec_store_mem_ops.get_state(st, dev_a, &ds), 0);
  assert_int_equal(ds.next_key_id, 5);
}

static void test_store_mem_many_entries(void **state) {
  mtcsec_store_mem *st = *state;
  mtcsec_store_device d = make_dev(0x33), out;
  mtcsec_store_grant g;
  uint8_t id[8];
  uint32_t i;

  for (i = 0; i < 2000; i++) {
    memcpy(id, dev_a, 8);
    id[4] = (uint8_t)(i >> 8);
    id[5] = (uint8_t)i;
    d.suite = (uint8_t)(1 + i % 3);
    assert_int_equal(mtcsec_store_mem_add_device(st, id, &d), 0);
    assert_int_equal(mtcsec_store_mem_grant(st, id, ue_a, (uint8_t)i, i), 0);
  }
  /* Revoke half (tombstones), then check everything. */
  for (i = 0; i < 2000; i += 2) {
    memcpy(id, dev_a, 8);
    id[4] = (uint8_t)(i >> 8);
    id[5] = (uint8_t)i;
    assert_int_equal(mtcsec_store_mem_revoke_grant(st, id, ue_a), 0);
  }
  for (i = 0; i < 2000; i++) {
    memcpy(id, dev_a, 8);
    id[4] = (uint8_t)(i >> 8);
    id[5] = (uint8_t)i;
    assert_int_equal(mtcsec_store_mem_ops.get_device(st, id, &out), 0);
    assert_int_equal(out.suite, 1 + i % 3);
    if (i % 2 == 0) {
      assert_int_equal(mtcsec_store_mem_ops.get_grant(st, id, ue_a, &g),
                       MTCSEC_ERR_NOT_FOUND);
    } else {
      assert_int_equal(mtcsec_store_mem_ops.get_grant(st, id, ue_a, &g), 0);
      assert_int_equal(g.lifetime, i);
    }
  }
}

/* An allocator that checks device records are zeroized before free. */
typedef struct counting_mem {
  size_t live;
  size_t nonzero_device_frees;
} counting_mem;

static void *cm_malloc(size_t size, void *ud) {
  counting_mem *cm = ud;
  size_t *p = malloc(sizeof(size_t) * 2 + size);
  if (p == NULL) {
    return NULL;
  }
  p[0] = size;
  cm->live++;
  return p + 2;
}

static void *cm_calloc(size_t n, size_t size, void *ud) {
  void *p;
  if (size != 0 && n > SIZE_MAX / size) {
    return NULL;
  }
  p = cm_malloc(n * size, ud);
  if (p != NULL) {
    memset(p, 0, n * size);
  }
  return p;
}

static void cm_free(void *ptr, void *ud) {
  counting_mem *cm = ud;
  size_t *p;
  if (ptr == NULL) {
    return;
  }
  p = (size_t *)ptr - 2;
  if (p[0] == sizeof(mtcsec_store_device)) {
    const uint8_t *b = ptr;
    size_t i;
    for (i = 0; i < p[0]; i++) {
      if (b[i] != 0) {
        cm->nonzero_device_frees++;
        break;
      }
    }
  }
  cm->live--;
  free(p);
}

static void test_store_mem_del_zeroizes_and_frees(void **state) {
  counting_mem cm = {0, 0};
  mtcsec_mem mem = {&cm, cm_malloc, cm_free, cm_calloc};
  mtcsec_store_mem *st;
  mtcsec_store_device d = make_dev(0x77);
  mtcsec_store_txn t = make_txn(dev_a, 1, 0);
  int res;
  (void)state;

  assert_int_equal(mtcsec_store_mem_new(&st, &mem), 0);
  assert_int_equal(mtcsec_store_mem_add_device(st, dev_a, &d), 0);
  assert_int_equal(mtcsec_store_mem_add_device(st, dev_b, &d), 0);
  assert_int_equal(mtcsec_store_mem_grant(st, dev_a, ue_a, 1, 1), 0);
  assert_int_equal(mtcsec_store_mem_allow_relay(st, dev_a, gw_a), 0);
  assert_int_equal(commit(st, &t, 1, &res), 0);
  assert_true(cm.live > 0);
  mtcsec_store_mem_del(st);
  assert_int_equal(cm.live, 0);
  assert_int_equal(cm.nonzero_device_frees, 0);
  mtcsec_store_mem_del(NULL);
}

static void test_store_mem_rejects_bad_arguments(void **state) {
  mtcsec_store_mem *st = *state;
  mtcsec_store_device out;
  mtcsec_session_rec rec;
  assert_int_equal(mtcsec_store_mem_new(NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_store_mem_ops.get_device(st, dev_a, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_store_mem_ops.get_device(NULL, dev_a, &out),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_store_mem_session(st, 0, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_store_mem_session(st, 0, &rec), MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_store_mem_sessions(NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_store_mem_device_roundtrip, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(
      test_store_mem_state_of_unseen_device_is_empty, setup, teardown),
    cmocka_unit_test_setup_teardown(test_store_mem_grants, setup, teardown),
    cmocka_unit_test_setup_teardown(test_store_mem_relays, setup, teardown),
    cmocka_unit_test_setup_teardown(
      test_store_mem_commit_updates_window_key_id_sessions, setup, teardown),
    cmocka_unit_test_setup_teardown(
      test_store_mem_commit_below_window_is_replay, setup, teardown),
    cmocka_unit_test_setup_teardown(test_store_mem_fail_commits_writes_nothing,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_store_mem_many_entries, setup,
                                    teardown),
    cmocka_unit_test(test_store_mem_del_zeroizes_and_frees),
    cmocka_unit_test_setup_teardown(test_store_mem_rejects_bad_arguments, setup,
                                    teardown),
  };
  return cmocka_run_group_tests_name("unit.store_mem", tests, NULL, NULL);
}
