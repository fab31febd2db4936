/*
 * The server core (server.h) over the SQLite store: complete exchanges end
 * to end (M2 in, durable commit, M3 out, checked from the device's side),
 * group grants and relays, a restart that keeps the replay window, a
 * failing durable write answered INTERNAL with nothing written, group
 * commit of many exchanges, and revocation.
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

#include <mtcsec/server.h>
#include <mtcsec/store_sqlite.h>
#include <mtcsec/codec.h>

#include "sqlite_fixture.h"
#include "server_fixture.h"

#define T0 1000000u

typedef th_answer answer;

typedef struct fx {
  char dir[SFX_PATH_MAX];
  char db[SFX_PATH_MAX];
  mtcsec_sqlite *st;
  mtcsec_srv *srv;
  const mtcsec_crypto *crypto;
  uint8_t suite;
  uint8_t k_auth[MTCSEC_MAX_KEY_LEN];
  uint8_t k_dm[MTCSEC_MAX_KEY_LEN];
} fx;

static void fx_start(fx *f) {
  mtcsec_srv_config cfg;
  mtcsec_srv_del(f->srv);
  f->srv = NULL;
  mtcsec_srv_config_default(&cfg);
  memcpy(cfg.mtcs_id, th_mtcs_id, 8);
  assert_int_equal(mtcsec_srv_new(&f->srv, &cfg, f->crypto, &mtcsec_sqlite_ops,
                                  f->st, NULL, NULL),
                   0);
}

/* th_dev_id with suite, in group "meters"; th_ue_id has a device grant
 * 0x0f / 3600 s. */
static fx *fx_new(uint8_t suite) {
  fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  sfx_mkdtemp(f->dir);
  sfx_join(f->db, f->dir, "mtcsd.db");
  f->crypto = th_openssl();
  f->suite = suite;
  f->st = sfx_open(f->db, sfx_kek, MTCSEC_SQLITE_CREATE);
  assert_int_equal(mtcsec_sqlite_device_add(f->st, th_dev_id, th_mtcs_id, suite,
                                            th_psk, "test", "meters"),
                   0);
  th_device_keys(f->crypto, suite, th_dev_id, f->k_auth, f->k_dm);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, th_ue_id, th_dev_id, NULL, 0x0f, 3600, 0, 0),
    0);
  fx_start(f);
  return f;
}

static int setup1(void **state) {
  *state = fx_new(MTCSEC_SUITE_CMAC_AES128);
  return 0;
}

static int setup3(void **state) {
  *state = fx_new(MTCSEC_SUITE_HMAC_SHA256_AES256);
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  mtcsec_srv_del(f->srv);
  mtcsec_sqlite_close(f->st);
  sfx_rmtree(f->dir);
  free(f);
  return 0;
}

/* Restart: a new server core over a reopened store (nothing in memory). */
static void fx_restart(fx *f) {
  mtcsec_srv_del(f->srv);
  f->srv = NULL;
  mtcsec_sqlite_close(f->st);
  f->st = sfx_open(f->db, sfx_kek, 0);
  fx_start(f);
}

static size_t build_m1(const fx *f, const uint8_t *dev, const uint8_t *ue,
                       uint64_t nonce, const uint8_t *info, size_t info_len,
                       const uint8_t *k_auth, uint8_t *out) {
  th_m1 o = {f->suite, dev, th_mtcs_id, ue, k_auth, nonce, info, info_len};
  return th_build_m1(f->crypto, &o, out, MTCSEC_HS_MAX_LEN);
}

static size_t simple_m1(const fx *f, uint64_t nonce, uint8_t *out) {
  return build_m1(f, th_dev_id, th_ue_id, nonce, NULL, 0, f->k_auth, out);
}

/* MTCdInfo with REQ_PERMS (if req) and a PATH (if npath). */
static size_t build_info(uint8_t *out, int req, uint8_t req_perms,
                         const uint8_t *path, uint8_t npath) {
  return th_build_info(out, -1, req, req_perms, path, npath);
}

static int fx_send(fx *f, const uint8_t *ue, uint32_t req_id, const uint8_t *m1,
                   size_t m1len, mtcsec_tstamp now) {
  return th_srv_send(f->srv, 1, ue, MTCSEC_MSG_M2, req_id, m1, m1len, now);
}

static int fx_read(fx *f, answer *a) { return th_srv_read(f->srv, a); }

/* send + commit + one answer: 0 for M3 (in *a), else the ERR code. */
static uint8_t fx_exchange(fx *f, const uint8_t *ue, uint32_t req_id,
                           const uint8_t *m1, size_t m1len, mtcsec_tstamp now,
                           answer *a) {
  return th_srv_exchange(f->srv, 1, ue, req_id, m1, m1len, now, a);
}

/* The device's side of an M3: M4 verifies, DMKey matches its own. */
static mtcsec_sinfo check_m3(const fx *f, const answer *a, const uint8_t *m1,
                             size_t m1len) {
  return th_check_m3(f->crypto, f->suite, f->k_auth, f->k_dm, a, m1, m1len);
}

typedef struct sessions {
  size_t n;
  mtcsec_sqlite_session s[32];
} sessions;

static int collect(void *ud, const mtcsec_sqlite_session *s) {
  sessions *l = ud;
  if (l->n < 32) {
    l->s[l->n] = *s;
  }
  l->n++;
  return 0;
}

static sessions list_sessions(fx *f) {
  sessions l;
  memset(&l, 0, sizeof(l));
  assert_int_equal(mtcsec_sqlite_session_foreach(f->st, NULL, 0, collect, &l),
                   0);
  return l;
}

/* ------------------------------------------------------------- tests */

static void test_sqlite_server_exchange(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 7, m1);
  mtcsec_store_devstate ds;
  mtcsec_sinfo si;
  mtcsec_hs m4;
  const uint8_t *dk;
  size_t dklen;
  sessions l;
  answer a;

  assert_int_equal(fx_send(f, th_ue_id, 11, m1, n, T0), 0);
  /* Nothing leaves before the durable commit, and nothing is on disk. */
  assert_int_equal(fx_read(f, &a), 0);
  assert_int_equal(list_sessions(f).n, 0);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), 0);
  assert_int_equal(fx_read(f, &a), 1);
  assert_int_equal(a.type, MTCSEC_MSG_M3);
  assert_int_equal(a.req_id, 11);
  si = check_m3(f, &a, m1, n);
  assert_int_equal(si.perms, 0x0f);
  assert_int_equal(si.lifetime, 3600);
  assert_int_equal(si.key_id, 0);
  /* Durable: window, key id, session (without DMKey). */
  assert_int_equal(mtcsec_sqlite_ops.get_state(f->st, th_dev_id, &ds), 0);
  assert_int_equal(ds.window.top, 7);
  assert_int_equal(ds.window.bitmap, 1);
  assert_int_equal(ds.next_key_id, 1);
  l = list_sessions(f);
  assert_int_equal(l.n, 1);
  assert_memory_equal(l.s[0].rec.mtcd_id, th_dev_id, 8);
  assert_memory_equal(l.s[0].rec.ueid, th_ue_id, 8);
  assert_int_equal(mtcsec_get_u64(l.s[0].rec.mtcd_nonce), 7);
  assert_int_equal(mtcsec_m3_decode(&m4, &dk, &dklen, a.body, a.bodylen), 0);
  assert_memory_equal(l.s[0].rec.mtcs_nonce, m4.nonce, 8);
  assert_int_equal(l.s[0].rec.perms, 0x0f);
  assert_int_equal(l.s[0].rec.lifetime, 3600);
  assert_int_equal(l.s[0].rec.suite, f->suite);
  assert_int_equal(l.s[0].rec.npath, 0);
  assert_int_equal(l.s[0].rec.issued_at, T0);
  {
    /* DMKey is nowhere in the database files. */
    char path[SFX_PATH_MAX];
    size_t len;
    uint8_t *buf;
    sfx_join(path, f->dir, "mtcsd.db-wal");
    buf = sfx_read(path, &len);
    assert_non_null(buf);
    assert_false(sfx_contains(buf, len, dk, dklen));
    assert_true(sfx_contains(buf, len, m4.nonce, 8)); /* but the session is */
    free(buf);
  }
  /* The next exchange gets the next key id. */
  n = simple_m1(f, 8, m1);
  assert_int_equal(fx_exchange(f, th_ue_id, 12, m1, n, T0 + 10, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).key_id, 1);
}

static void test_sqlite_server_restart_keeps_window(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 100, m1);
  answer a;

  assert_int_equal(fx_exchange(f, th_ue_id, 1, m1, n, T0, &a), 0);
  fx_restart(f);
  /* The duplicate cache is gone with the process; the window is not. */
  assert_int_equal(fx_exchange(f, th_ue_id, 2, m1, n, T0 + 61000, NULL),
                   MTCSEC_ERRCODE_REPLAY);
  n = simple_m1(f, 99, m1); /* inside the window, unseen */
  assert_int_equal(fx_exchange(f, th_ue_id, 3, m1, n, T0 + 62000, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).key_id, 1);
  n = simple_m1(f, 36, m1); /* below the window */
  assert_int_equal(fx_exchange(f, th_ue_id, 4, m1, n, T0 + 63000, NULL),
                   MTCSEC_ERRCODE_REPLAY);
  assert_int_equal(list_sessions(f).n, 2);
}

static void test_sqlite_server_group_grant_and_relays(void **state) {
  fx *f = *state;
  int64_t now = (int64_t)time(NULL);
  uint8_t m1[MTCSEC_HS_MAX_LEN], info[MTCSEC_MAX_INFO_LEN], path[16];
  size_t n, il;
  sessions l;
  answer a;

  memcpy(path, th_gw1, 8);
  memcpy(path + 8, th_gw2, 8);
  /* ue2 only through the group "meters", perms 0x03. */
  n = build_m1(f, th_dev_id, th_ue2_id, 1, NULL, 0, f->k_auth, m1);
  assert_int_equal(fx_exchange(f, th_ue2_id, 1, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_UE_NOT_AUTHORIZED);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, th_ue2_id, NULL, "meters", 0x03, 120, 0, 0),
    0);
  n = build_m1(f, th_dev_id, th_ue2_id, 2, NULL, 0, f->k_auth, m1);
  assert_int_equal(fx_exchange(f, th_ue2_id, 2, m1, n, T0, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).perms, 0x03);
  assert_int_equal(check_m3(f, &a, m1, n).lifetime, 120);
  /* REQ_PERMS narrows it. */
  il = build_info(info, 1, 0x01, NULL, 0);
  n = build_m1(f, th_dev_id, th_ue2_id, 3, info, il, f->k_auth, m1);
  assert_int_equal(fx_exchange(f, th_ue2_id, 3, m1, n, T0, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).perms, 0x01);
  /* Relayed through th_gw1 then th_gw2: both must be allowed. */
  assert_int_equal(mtcsec_sqlite_relay_add(f->st, th_gw1, "roof"), 0);
  assert_int_equal(mtcsec_sqlite_relay_add(f->st, th_gw2, "phone"), 0);
  assert_int_equal(mtcsec_sqlite_relay_allow(f->st, th_gw1, NULL, "meters"), 0);
  il = build_info(info, 0, 0, path, 2);
  n = build_m1(f, th_dev_id, th_ue2_id, 4, info, il, f->k_auth, m1);
  assert_int_equal(fx_exchange(f, th_ue2_id, 4, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_RELAY_NOT_AUTHORIZED);
  assert_int_equal(mtcsec_sqlite_relay_allow(f->st, th_gw2, th_dev_id, NULL),
                   0);
  n = build_m1(f, th_dev_id, th_ue2_id, 5, info, il, f->k_auth, m1);
  assert_int_equal(fx_exchange(f, th_ue2_id, 5, m1, n, T0, &a), 0);
  (void)check_m3(f, &a, m1, n);
  l = list_sessions(f);
  assert_int_equal(l.n, 3);
  assert_int_equal(l.s[0].rec.npath, 2);
  assert_memory_equal(l.s[0].rec.path, path, 16);
  /* A device grant overrides the group's; an expired one refuses. */
  assert_int_equal(mtcsec_sqlite_grant_set(f->st, th_ue2_id, th_dev_id, NULL,
                                           0x0f, 60, now - 100, now - 10),
                   0);
  n = build_m1(f, th_dev_id, th_ue2_id, 6, NULL, 0, f->k_auth, m1);
  assert_int_equal(fx_exchange(f, th_ue2_id, 6, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_UE_NOT_AUTHORIZED);
  /* The refused exchange wrote no window: nonce 6 is still fresh. */
  assert_int_equal(mtcsec_sqlite_grant_del(f->st, th_ue2_id, th_dev_id, NULL),
                   0);
  assert_int_equal(fx_exchange(f, th_ue2_id, 7, m1, n, T0, &a), 0);
}

static void test_sqlite_server_device_states(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], other_k[MTCSEC_MAX_KEY_LEN];
  size_t n;

  n = build_m1(f, th_unknown_dev, th_ue_id, 1, NULL, 0, f->k_auth, m1);
  assert_int_equal(fx_exchange(f, th_ue_id, 1, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_UNKNOWN_DEVICE);
  assert_int_equal(mtcsec_sqlite_device_disable(f->st, th_dev_id, 1), 0);
  n = simple_m1(f, 1, m1);
  assert_int_equal(fx_exchange(f, th_ue_id, 2, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_DEVICE_DISABLED);
  assert_int_equal(mtcsec_sqlite_device_disable(f->st, th_dev_id, 0), 0);
  memcpy(other_k, f->k_auth, sizeof(other_k));
  other_k[0] ^= 1;
  n = build_m1(f, th_dev_id, th_ue_id, 1, NULL, 0, other_k, m1);
  assert_int_equal(fx_exchange(f, th_ue_id, 3, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_BAD_MIC);
  n = simple_m1(f, 1, m1);
  assert_int_equal(fx_exchange(f, th_ue_id, 4, m1, n, T0, NULL), 0);
}

static void test_sqlite_server_wrong_kek_is_internal(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1);

  mtcsec_srv_del(f->srv);
  f->srv = NULL;
  mtcsec_sqlite_close(f->st);
  f->st = sfx_open(f->db, sfx_kek2, 0);
  fx_start(f);
  assert_int_equal(fx_exchange(f, th_ue_id, 1, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_INTERNAL);
  assert_non_null(
    strstr(mtcsec_sqlite_errmsg(f->st), "do not unwrap under this KEK"));
}

static void test_sqlite_server_commit_failure(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 5, m1);
  mtcsec_store_devstate ds;
  answer a;

  sfx_exec(f->db, "CREATE TRIGGER inject BEFORE INSERT ON session BEGIN "
                  "SELECT RAISE(ABORT, 'injected failure'); END;");
  assert_int_equal(fx_send(f, th_ue_id, 1, m1, n, T0), 0);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), MTCSEC_ERR_STORE);
  assert_int_equal(fx_read(f, &a), 1);
  assert_int_equal(a.type, MTCSEC_MSG_ERR);
  assert_int_equal(a.body[0], MTCSEC_ERRCODE_INTERNAL);
  /* Nothing written: the window is as before and nonce 5 is still new. */
  assert_int_equal(mtcsec_sqlite_ops.get_state(f->st, th_dev_id, &ds), 0);
  assert_int_equal(ds.window.bitmap, 0);
  assert_int_equal(list_sessions(f).n, 0);
  sfx_exec(f->db, "DROP TRIGGER inject;");
  assert_int_equal(fx_exchange(f, th_ue_id, 2, m1, n, T0 + 1, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).key_id, 0);
}

/* Many exchanges of several devices in one batch: one store commit. */
static void test_sqlite_server_group_commit(void **state) {
  fx *f = *state;
  uint8_t ids[4][8], ka[4][MTCSEC_MAX_KEY_LEN], kd[MTCSEC_MAX_KEY_LEN];
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t i, n, got = 0;
  answer a;

  for (i = 0; i < 4; i++) {
    memcpy(ids[i], th_dev_id, 8);
    ids[i][7] = (uint8_t)(0x10 + i);
    assert_int_equal(mtcsec_sqlite_device_add(f->st, ids[i], th_mtcs_id,
                                              f->suite, th_psk, NULL, "meters"),
                     0);
    th_device_keys(f->crypto, f->suite, ids[i], ka[i], kd);
  }
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, th_ue_id, NULL, "meters", 0x01, 60, 0, 0),
    0);
  for (i = 0; i < 64; i++) {
    n = build_m1(f, ids[i % 4], th_ue_id, 1000 + i / 4, NULL, 0, ka[i % 4], m1);
    assert_int_equal(fx_send(f, th_ue_id, (uint32_t)i, m1, n, T0), 0);
  }
  assert_int_equal(mtcsec_srv_pending(f->srv), 64);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), 0);
  while (fx_read(f, &a)) {
    assert_int_equal(a.type, MTCSEC_MSG_M3);
    got++;
  }
  assert_int_equal(got, 64);
  for (i = 0; i < 4; i++) {
    mtcsec_sqlite_devinfo di;
    assert_int_equal(mtcsec_sqlite_device_get(f->st, ids[i], &di), 0);
    assert_int_equal(di.sessions, 16);
    assert_int_equal(di.window.top, 1015);
    assert_int_equal(di.window.bitmap, 0xffff);
  }
}

static void test_sqlite_server_revocation(void **state) {
  fx *f = *state;
  const mtcsec_suite_params *sp = mtcsec_suite_get(f->suite);
  uint8_t m1[MTCSEC_HS_MAX_LEN], r1[64], r2[64];
  size_t n = simple_m1(f, 42, m1);
  mtcsec_ssize n1, n2;
  mtcsec_revoke rv;
  sessions l;

  assert_int_equal(fx_exchange(f, th_ue_id, 1, m1, n, T0, NULL), 0);
  l = list_sessions(f);
  assert_int_equal(l.n, 1);
  n1 = mtcsec_sqlite_session_revoke(f->st, l.s[0].id, r1, sizeof(r1));
  n2 = mtcsec_srv_revocation(f->srv, r2, sizeof(r2), th_dev_id,
                             l.s[0].rec.key_id, l.s[0].rec.mtcd_nonce);
  assert_int_equal(n1, MTCSEC_REVOKE_FIXED_LEN + sp->miclen);
  assert_int_equal(n1, n2);
  assert_memory_equal(r1, r2, (size_t)n1);
  assert_int_equal(mtcsec_revoke_decode(&rv, r1, (size_t)n1, sp->miclen), 0);
  assert_int_equal(
    mtcsec_revoke_verify(&rv, r1, (size_t)n1, f->crypto, f->suite, f->k_auth),
    0);
  assert_int_equal(mtcsec_get_u64(rv.mtcd_nonce), 42);
  assert_true(list_sessions(f).s[0].revoked);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_sqlite_server_exchange, setup1,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_server_exchange, setup3,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_server_restart_keeps_window,
                                    setup1, teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_server_group_grant_and_relays,
                                    setup1, teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_server_device_states, setup1,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_server_wrong_kek_is_internal,
                                    setup1, teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_server_commit_failure, setup1,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_server_group_commit, setup1,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_server_revocation, setup1,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_sqlite_server_revocation, setup3,
                                    teardown),
  };
  int rv =
    cmocka_run_group_tests_name("store.sqlite_server", tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
