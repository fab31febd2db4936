/*
 * daemon.exchange: the real mtcsd on loopback, a UE over TLS.  Complete
 * exchanges of every suite, every ERR code of PROTOCOL.md section 5 end to
 * end (RATE_LIMITED after a SIGHUP that lowers rate_per_minute on a live
 * connection; INTERNAL while another process holds the database's write
 * lock), duplicates (also across a SIGHUP that changes rate_per_minute),
 * 100 exchanges pipelined on one connection, metrics.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "app.h"
#include "harness.h"

static dh_env env;

static int setup(void **state) {
  (void)state;
  dh_env_create(&env, NULL);
  return dh_start(&env) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  int st;
  (void)state;
  st = dh_stop(&env, SIGTERM, 10000);
  dh_env_destroy(&env);
  return st == 0 ? 0 : -1;
}

/* Sends m as req and reads its answer: 0 for an M3 that checks out (its
 * body copied to m3/m3len if non-NULL), else the ERR code; -1 on failure. */
static int exchange_m3(dh_client *c, dh_device *d, const dh_m1 *m, uint32_t req,
                       uint8_t *m3, size_t *m3len) {
  uint8_t type;
  uint32_t rreq;
  const uint8_t *body;
  size_t bl;
  if (dh_send_m2(c, req, m->bytes, m->len) != 0) {
    return -1;
  }
  if (dh_recv(c, &type, &rreq, &body, &bl, 15000) != 1 || rreq != req) {
    return -1;
  }
  if (type == MTCSEC_MSG_ERR) {
    return bl >= 1 ? body[0] : -1;
  }
  if (type != MTCSEC_MSG_M3 || dh_check_m3(d, m, body, bl, NULL) != 0) {
    return -1;
  }
  if (m3 != NULL) {
    memcpy(m3, body, bl);
    *m3len = bl;
  }
  return 0;
}

static int exchange(dh_client *c, dh_device *d, const dh_m1 *m, uint32_t req) {
  return exchange_m3(c, d, m, req, NULL, NULL);
}

/* Sends a raw frame and returns the ERR code of its answer (-1 if none). */
static int raw_err(dh_client *c, const uint8_t *f, size_t n, uint32_t req) {
  uint8_t type;
  uint32_t rreq;
  const uint8_t *body;
  size_t bl;
  if (dh_send(c, f, n) != 0 ||
      dh_recv(c, &type, &rreq, &body, &bl, 10000) != 1 || rreq != req ||
      type != MTCSEC_MSG_ERR || bl < 1) {
    return -1;
  }
  return body[0];
}

static void test_exchange_every_suite(void **state) {
  dh_client c;
  dh_device d;
  dh_m1 m;
  const uint8_t *devs[] = {DH_DEV_A, DH_DEV_B, DH_DEV_C};
  uint8_t m3[256];
  size_t m3len, i;
  long long before = dh_metric(&env, "mtcsd_sessions_issued_total");
  char hex[80];
  (void)state;

  assert_true(before >= 0);
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  for (i = 0; i < 3; i++) {
    dh_device_init(&d, devs[i]);
    d.nonce = 0; /* a device's first nonce may be 0 */
    dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
    assert_int_equal(exchange_m3(&c, &d, &m, (uint32_t)(7 + i), m3, &m3len), 0);
    /* Logs never carry keys: neither the DMKey nor K_auth appears. */
    app_format_hex(hex, m3 + m3len - mtcsec_suite_get(d.suite)->keylen,
                   mtcsec_suite_get(d.suite)->keylen);
    assert_int_equal(dh_log_count(&env, hex), 0);
    app_format_hex(hex, d.k_auth, mtcsec_suite_get(d.suite)->keylen);
    assert_int_equal(dh_log_count(&env, hex), 0);
  }
  dh_close(&c);
  assert_int_equal(dh_metric(&env, "mtcsd_sessions_issued_total"), before + 3);
  assert_true(dh_metric(&env, "mtcsd_handshakes_total{result=\"ok\"}") >= 3);
  assert_true(dh_metric(&env, "mtcsd_store_batch_size_count") >= 1);
  assert_true(dh_metric(&env, "mtcsd_handshake_latency_seconds_count") >= 3);
  assert_int_equal(dh_wait_log(&env, "result=OK", 1000), 0);
  assert_int_equal(
    dh_wait_log(&env, "ue=0e00000000000042 dev=0d0000000000000a", 1000), 0);
}

static void test_every_err_code(void **state) {
  dh_client c;
  dh_device a, x;
  dh_m1 m, m2;
  uint8_t f[MTCSEC_FRAME_HDR_LEN + MTCSEC_HS_MAX_LEN + 64];
  uint8_t m3a[256], m3b[256];
  size_t m3alen, m3blen;
  mtcsec_ssize n;
  long long dups = dh_metric(&env, "mtcsd_duplicates_total");
  static const uint8_t garbage[] = {0x11, 0x01, 0x02};
  static const uint8_t battery[] = {0x02, 0x01, 0x50};
  static const uint8_t want_write[] = {0x04, 0x01, 0x02};
  uint8_t path_bad[10] = {0x81, 0x08}, path_ok[10] = {0x81, 0x08};
  static const uint8_t other_srv[8] = {0x5e, 0, 0, 0, 0, 0, 0, 0x99};
  static const uint8_t other_ue[8] = {0x0e, 0, 0, 0, 0, 0, 0, 0x43};
  (void)state;

  memcpy(path_bad + 2, DH_GW_BAD, 8);
  memcpy(path_ok + 2, DH_GW_OK, 8);
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  dh_device_init(&a, DH_DEV_A);
  a.nonce = 100;

  /* 1 MALFORMED: body not an M1; another frame type; a truncated M1. */
  n = mtcsec_frame_encode(f, sizeof(f), MTCSEC_MSG_M2, 11, garbage,
                          sizeof(garbage));
  assert_int_equal(raw_err(&c, f, (size_t)n, 11), 1);
  n = mtcsec_frame_encode(f, sizeof(f), 0x20, 12, garbage, sizeof(garbage));
  assert_int_equal(raw_err(&c, f, (size_t)n, 12), 1);
  dh_m1_build_ex(&a, &m, DH_UEID, DH_MTCS_ID, NULL, 0, 100, 1);
  m.len--;
  assert_int_equal(exchange(&c, &a, &m, 13), 1);
  /* 2 WRONG_SERVER */
  dh_m1_build_ex(&a, &m, DH_UEID, other_srv, NULL, 0, 100, 1);
  assert_int_equal(exchange(&c, &a, &m, 21), 2);
  /* 3 UNKNOWN_DEVICE */
  dh_device_init(&x, DH_DEV_UNKNOWN);
  dh_m1_build(&x, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange(&c, &x, &m, 31), 3);
  /* 4 DEVICE_DISABLED */
  dh_device_init(&x, DH_DEV_D);
  dh_m1_build(&x, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange(&c, &x, &m, 41), 4);
  /* 5 UNSUPPORTED_SUITE: unknown suite; a real suite-2 M1 of a suite-1
   * device. */
  dh_m1_build_ex(&a, &m, DH_UEID, DH_MTCS_ID, NULL, 0, 100, 0x7f);
  assert_int_equal(exchange(&c, &a, &m, 51), 5);
  dh_m1_build_ex(&a, &m, DH_UEID, DH_MTCS_ID, NULL, 0, 100, 2);
  assert_int_equal(exchange(&c, &a, &m, 52), 5);
  /* 6 UE_ID_MISMATCH: the M1 names another UE than the certificate. */
  dh_m1_build_ex(&a, &m, other_ue, DH_MTCS_ID, NULL, 0, 100, 1);
  assert_int_equal(exchange(&c, &a, &m, 61), 6);
  /* 7 BAD_MIC */
  dh_m1_build_ex(&a, &m, DH_UEID, DH_MTCS_ID, NULL, 0, 100, 1);
  m.bytes[m.len - 1] ^= 0x01;
  assert_int_equal(exchange(&c, &a, &m, 71), 7);
  /* None of the above spent nonce 100: it still works, and an identical
   * retry (another req_id) gets the identical M3. */
  dh_m1_build_ex(&a, &m, DH_UEID, DH_MTCS_ID, NULL, 0, 100, 1);
  assert_int_equal(exchange_m3(&c, &a, &m, 80, m3a, &m3alen), 0);
  assert_int_equal(exchange_m3(&c, &a, &m, 81, m3b, &m3blen), 0);
  assert_int_equal(m3alen, m3blen);
  assert_memory_equal(m3a, m3b, m3alen);
  assert_int_equal(dh_metric(&env, "mtcsd_duplicates_total"), dups + 1);
  /* 8 REPLAY: the same nonce in a different M1 (valid MIC). */
  dh_m1_build_ex(&a, &m2, DH_UEID, DH_MTCS_ID, battery, sizeof(battery), 100,
                 1);
  assert_int_equal(exchange(&c, &a, &m2, 82), 8);
  /* 9 UE_NOT_AUTHORIZED: no grant; grant without the requested perms. */
  dh_device_init(&x, DH_DEV_N);
  dh_m1_build(&x, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange(&c, &x, &m, 91), 9);
  dh_device_init(&x, DH_DEV_R);
  dh_m1_build(&x, &m, DH_UEID, DH_MTCS_ID, want_write, sizeof(want_write));
  assert_int_equal(exchange(&c, &x, &m, 92), 9);
  /* 10 RELAY_NOT_AUTHORIZED, then the allowed relay. */
  dh_m1_build_ex(&a, &m, DH_UEID, DH_MTCS_ID, path_bad, sizeof(path_bad), 101,
                 1);
  assert_int_equal(exchange(&c, &a, &m, 101), 10);
  dh_m1_build_ex(&a, &m, DH_UEID, DH_MTCS_ID, path_ok, sizeof(path_ok), 101, 1);
  assert_int_equal(exchange(&c, &a, &m, 102), 0);
  /* 11 and 12: test_rate_limited_after_sighup, test_internal_store_locked. */

  assert_true(dh_metric(&env, "mtcsd_handshakes_total{result=\"MALFORMED\"}") >=
              3);
  assert_true(dh_metric(&env, "mtcsd_handshakes_total{result=\"REPLAY\"}") >=
              1);
  assert_int_equal(dh_wait_log(&env, "result=BAD_MIC", 1000), 0);
  dh_close(&c);
}

static void test_pipeline_100(void **state) {
  dh_client c;
  static dh_device devs[8];
  static dh_m1 m1s[100];
  int seen[100];
  unsigned i;
  (void)state;

  memset(seen, 0, sizeof(seen));
  for (i = 0; i < 8; i++) {
    uint8_t id[8];
    dh_load_dev(id, i);
    dh_device_init(&devs[i], id);
  }
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  /* All 100 M2s go out before the first answer is read. */
  for (i = 0; i < 100; i++) {
    dh_m1_build(&devs[i % 8], &m1s[i], DH_UEID, DH_MTCS_ID, NULL, 0);
    assert_int_equal(dh_send_m2(&c, 1000 + i, m1s[i].bytes, m1s[i].len), 0);
  }
  for (i = 0; i < 100; i++) {
    uint8_t type;
    uint32_t req;
    const uint8_t *body;
    size_t bl;
    assert_int_equal(dh_recv(&c, &type, &req, &body, &bl, 15000), 1);
    assert_int_equal(type, MTCSEC_MSG_M3);
    assert_true(req >= 1000 && req < 1100);
    assert_int_equal(seen[req - 1000], 0);
    seen[req - 1000] = 1;
    assert_int_equal(
      dh_check_m3(&devs[(req - 1000) % 8], &m1s[req - 1000], body, bl, NULL),
      0);
  }
  dh_close(&c);
}

static void test_rate_limited_after_sighup(void **state) {
  dh_client c;
  dh_device d;
  dh_m1 m;
  uint8_t id[8];
  (void)state;

  dh_load_dev(id, 20);
  dh_device_init(&d, id);
  /* A connection opened before the reload stays usable after it. */
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange(&c, &d, &m, 1), 0);

  dh_write_config(&env, "rate_per_minute = 2\n");
  assert_int_equal(kill(env.pid, SIGHUP), 0);
  assert_int_equal(dh_wait_log(&env, "rate_per_minute=2", 5000), 0);

  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange(&c, &d, &m, 2), 0);
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange(&c, &d, &m, 3), 0);
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange(&c, &d, &m, 4), 11); /* RATE_LIMITED */

  /* Back to no limit; the same M1 (nonce unspent) now succeeds. */
  dh_write_config(&env, NULL);
  assert_int_equal(kill(env.pid, SIGHUP), 0);
  assert_int_equal(dh_wait_log(&env, "rate_per_minute=0", 5000), 0);
  assert_int_equal(exchange(&c, &d, &m, 5), 0);
  dh_close(&c);
}

/* Waits (5 s) until the log holds more than n lines with needle. */
static int wait_more(const char *needle, int n) {
  uint64_t until = dh_now_ms() + 5000;
  while (dh_log_count(&env, needle) <= n) {
    if (dh_now_ms() >= until) {
      return -1;
    }
    dh_sleep_ms(10);
  }
  return 0;
}

static void test_sighup_keeps_duplicate_cache(void **state) {
  dh_client c;
  dh_device d;
  dh_m1 m;
  uint8_t id[8], m3a[256], m3b[256];
  size_t m3alen, m3blen;
  int reloads = dh_log_count(&env, "event=reloaded");
  long long dups = dh_metric(&env, "mtcsd_duplicates_total");
  (void)state;

  dh_load_dev(id, 22);
  dh_device_init(&d, id);
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange_m3(&c, &d, &m, 1, m3a, &m3alen), 0);

  /* A reload that changes rate_per_minute keeps the duplicate cache: a
   * retry within 60 s (PROTOCOL.md section 4) still gets the same M3, not
   * REPLAY. */
  dh_write_config(&env, "rate_per_minute = 777\n");
  assert_int_equal(kill(env.pid, SIGHUP), 0);
  assert_int_equal(wait_more("event=reloaded", reloads), 0);
  assert_int_equal(dh_wait_log(&env, "rate_per_minute=777", 1000), 0);
  assert_int_equal(exchange_m3(&c, &d, &m, 2, m3b, &m3blen), 0);
  assert_int_equal(m3alen, m3blen);
  assert_memory_equal(m3a, m3b, m3alen);
  assert_int_equal(dh_metric(&env, "mtcsd_duplicates_total"), dups + 1);

  /* And once more after going back to no limit. */
  dh_write_config(&env, NULL);
  assert_int_equal(kill(env.pid, SIGHUP), 0);
  assert_int_equal(wait_more("event=reloaded", reloads + 1), 0);
  assert_int_equal(exchange_m3(&c, &d, &m, 3, m3b, &m3blen), 0);
  assert_int_equal(m3alen, m3blen);
  assert_memory_equal(m3a, m3b, m3alen);
  /* The next nonce is a new exchange as usual. */
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange(&c, &d, &m, 4), 0);
  dh_close(&c);
}

static void test_internal_store_locked(void **state) {
  dh_client c;
  dh_device d;
  dh_m1 m, m_next;
  sqlite3 *db = NULL;
  uint8_t id[8];
  (void)state;

  dh_load_dev(id, 21);
  dh_device_init(&d, id);
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  /* Another process takes the write lock: mtcsd's commit fails after its
   * busy timeout (5 s), as with a full disk or a broken file system. */
  assert_int_equal(sqlite3_open(env.db, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
                   SQLITE_OK);
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange(&c, &d, &m, 1), 12); /* INTERNAL */
  assert_int_equal(dh_wait_log(&env, "event=store_commit_failed", 1000), 0);
  assert_true(dh_metric(&env, "mtcsd_store_commit_failures_total") >= 1);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);

  /* The daemon keeps running, and the failed exchange changed nothing:
   * the same M1 now gets its M3. */
  assert_int_equal(exchange(&c, &d, &m, 2), 0);
  dh_m1_build(&d, &m_next, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(exchange(&c, &d, &m_next, 3), 0);
  dh_close(&c);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_exchange_every_suite),
    cmocka_unit_test(test_every_err_code),
    cmocka_unit_test(test_pipeline_100),
    cmocka_unit_test(test_rate_limited_after_sighup),
    cmocka_unit_test(test_sighup_keeps_duplicate_cache),
    cmocka_unit_test(test_internal_store_locked),
  };
  dh_init(argc, argv, 55);
  return cmocka_run_group_tests(tests, setup, teardown);
}
