/*
 * daemon.faults: mtcsd_fi, mtcsd built with the fault-injection hooks of
 * apps/mtcsd/mtcsd.h (tests/daemon/CMakeLists.txt), which make one
 * allocation fail for the answer with a given req_id and can shrink the
 * core's limits so that frames wait in a worker's backlog.
 *
 *  - An answer to a backlogged frame that cannot be buffered closes its
 *    connection, which drops the connection's other backlogged frames: no
 *    use after free or double free (AddressSanitizer builds abort), the
 *    daemon keeps serving and exits cleanly.
 *  - An answer that cannot be carried to the connection's worker closes the
 *    connection instead of leaving it waiting forever.
 *  - A connection reset with frames waiting in another worker's backlog:
 *    that worker drops them (no session for a UE that left).
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
#include <sys/socket.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "harness.h"

static dh_env env;

static void fi_clear(void) {
  unsetenv("MTCSD_FI_ANSWER_NOMEM");
  unsetenv("MTCSD_FI_ROUTE_NOMEM");
  unsetenv("MTCSD_FI_MAX_QUEUED");
  unsetenv("MTCSD_FI_MAX_INFLIGHT");
}

/* A fresh state directory and mtcsd_fi with conf and the FI variables set
 * (NULL-terminated name, value pairs). */
static void start(const char *conf, ...) {
  va_list ap;
  const char *name;
  fi_clear();
  va_start(ap, conf);
  while ((name = va_arg(ap, const char *)) != NULL) {
    setenv(name, va_arg(ap, const char *), 1);
  }
  va_end(ap);
  dh_env_create(&env, conf);
  assert_int_equal(dh_start(&env), 0);
  fi_clear();
}

static int teardown(void **state) {
  int st;
  (void)state;
  /* A clean exit: no sanitizer report, nothing left hanging. */
  st = dh_stop(&env, SIGTERM, 10000);
  dh_env_destroy(&env);
  fi_clear();
  return st == 0 ? 0 : -1;
}

/* The worker of the connection that became ready last (its id's low
 * byte, from the log). */
static unsigned last_conn_worker(void) {
  char line[512], *p;
  unsigned long long id = 0;
  int found = 0;
  FILE *f;
  assert_int_equal(dh_wait_log(&env, "event=conn_ready", 5000), 0);
  f = fopen(env.log, "r");
  assert_non_null(f);
  while (fgets(line, sizeof(line), f) != NULL) {
    if ((p = strstr(line, "event=conn_ready conn=")) != NULL) {
      id = strtoull(p + strlen("event=conn_ready conn="), NULL, 10);
      found = 1;
    }
  }
  fclose(f);
  assert_true(found);
  return (unsigned)(id & 0xff);
}

/* The worker that owns device id (apps/mtcsd/loop.c frame_owner). */
static unsigned dev_owner(const uint8_t id[8], unsigned workers) {
  uint64_t x = mtcsec_get_u64(id);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return (unsigned)(x % workers);
}

/* A load device owned (not) by worker w of 2, skipping the first skip. */
static void dev_of_worker(dh_device *d, unsigned w, int owned, unsigned skip) {
  unsigned i;
  for (i = 0; i < DH_NLOAD; i++) {
    uint8_t id[8];
    dh_load_dev(id, i);
    if ((dev_owner(id, 2) == w) == (owned != 0) && skip-- == 0) {
      dh_device_init(d, id);
      return;
    }
  }
  fail_msg("no load device for worker %u", w);
}

/* One exchange: 0 for an M3 that checks out, else the ERR code, -1. */
static int exchange(dh_client *c, dh_device *d, uint32_t req) {
  dh_m1 m;
  uint8_t type;
  uint32_t rreq;
  const uint8_t *body;
  size_t bl;
  dh_m1_build(d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  if (dh_send_m2(c, req, m.bytes, m.len) != 0 ||
      dh_recv(c, &type, &rreq, &body, &bl, 10000) != 1 || rreq != req) {
    return -1;
  }
  if (type == MTCSEC_MSG_ERR) {
    return bl >= 1 ? body[0] : -1;
  }
  return type == MTCSEC_MSG_M3 && dh_check_m3(d, &m, body, bl, NULL) == 0 ? 0
                                                                          : -1;
}

/* Appends an M2 frame (req, body) to buf at *off. */
static void put_m2(uint8_t *buf, size_t cap, size_t *off, uint32_t req,
                   const uint8_t *body, size_t len) {
  mtcsec_ssize n =
    mtcsec_frame_encode(buf + *off, cap - *off, MTCSEC_MSG_M2, req, body, len);
  assert_true(n > 0);
  *off += (size_t)n;
}

/* Reads until the server closes c: 0, or -1 on timeout. */
static int until_closed(dh_client *c) {
  for (;;) {
    uint8_t type;
    uint32_t req;
    const uint8_t *body;
    size_t bl;
    int r = dh_recv(c, &type, &req, &body, &bl, 5000);
    if (r != 1) {
      return r == 0 ? 0 : -1;
    }
  }
}

static void test_backlog_answer_nomem(void **state) {
  static const uint8_t garbage[] = {0x11, 0x01, 0x02};
  uint8_t buf[2048];
  size_t off = 0;
  dh_client c;
  dh_device d;
  dh_m1 m;
  (void)state;

  /* One worker; a core that holds one exchange at a time, so that frames
   * 902..904 wait in the backlog behind 901 until its commit.  902 is
   * answered (MALFORMED) from the backlog, and its answer cannot be
   * buffered: the connection closes, dropping 903 and 904. */
  start("workers = 1\n", "MTCSD_FI_MAX_QUEUED", "1", "MTCSD_FI_ANSWER_NOMEM",
        "902", (const char *)NULL);
  dh_device_init(&d, DH_DEV_A);
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  put_m2(buf, sizeof(buf), &off, 901, m.bytes, m.len);
  put_m2(buf, sizeof(buf), &off, 902, garbage, sizeof(garbage));
  put_m2(buf, sizeof(buf), &off, 903, garbage, sizeof(garbage));
  put_m2(buf, sizeof(buf), &off, 904, garbage, sizeof(garbage));
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  assert_int_equal(dh_send(&c, buf, off), 0);
  assert_int_equal(until_closed(&c), 0);
  dh_close(&c);
  assert_int_equal(dh_wait_log(&env, "reason=out_of_memory", 2000), 0);
  /* 903 and 904 were never handed to the core. */
  assert_int_equal(dh_log_count(&env, "req=903"), 0);
  assert_int_equal(dh_log_count(&env, "req=904"), 0);

  /* The daemon still serves. */
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  assert_int_equal(exchange(&c, &d, 910), 0);
  assert_int_equal(exchange(&c, &d, 911), 0);
  dh_close(&c);
}

static void test_routed_answer_nomem(void **state) {
  dh_client c;
  dh_device d;
  dh_m1 m;
  unsigned cw;
  (void)state;

  /* The answer to 0xF00D comes from the device's worker, and the message
   * that would carry it to the connection's worker cannot be allocated. */
  start(NULL, "MTCSD_FI_ROUTE_NOMEM", "0xF00D", (const char *)NULL);
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  cw = last_conn_worker();
  dev_of_worker(&d, cw, 0, 0);
  assert_int_equal(exchange(&c, &d, 1), 0);
  /* Without an answer the connection would wait forever (its in-flight
   * count never drops): it is closed instead. */
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(dh_send_m2(&c, 0xF00D, m.bytes, m.len), 0);
  assert_int_equal(until_closed(&c), 0);
  dh_close(&c);
  assert_int_equal(dh_wait_log(&env, "event=answer_dropped", 1000), 0);
  assert_int_equal(dh_wait_log(&env, "reason=out_of_memory", 1000), 0);

  /* The daemon still serves, and counts its connections right. */
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  assert_int_equal(exchange(&c, &d, 2), 0);
  assert_int_equal(dh_metric(&env, "mtcsd_connections"), 1);
  dh_close(&c);
}

static void test_reset_drops_other_workers_backlog(void **state) {
  static dh_m1 m[5];
  uint8_t buf[4096];
  size_t off = 0;
  dh_client c;
  dh_device d;
  sqlite3 *db = NULL;
  struct linger lg;
  unsigned cw, i;
  (void)state;

  start(NULL, "MTCSD_FI_MAX_QUEUED", "1", (const char *)NULL);
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  cw = last_conn_worker();
  dev_of_worker(&d, cw, 0, 1);
  /* The database is locked: 801 waits for its commit in the device's
   * worker, 802..805 in that worker's backlog. */
  assert_int_equal(sqlite3_open(env.db, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
                   SQLITE_OK);
  for (i = 0; i < 5; i++) {
    dh_m1_build(&d, &m[i], DH_UEID, DH_MTCS_ID, NULL, 0);
    put_m2(buf, sizeof(buf), &off, 801 + i, m[i].bytes, m[i].len);
  }
  assert_int_equal(dh_send(&c, buf, off), 0);
  dh_sleep_ms(300);
  /* The UE goes away (TCP reset). */
  memset(&lg, 0, sizeof(lg));
  lg.l_onoff = 1;
  lg.l_linger = 0;
  assert_int_equal(setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
  dh_close(&c);
  assert_int_equal(dh_wait_log(&env, "event=conn_close", 2000), 0);
  dh_sleep_ms(200);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);

  /* 801 was in the core already and completes; the others never reach
   * it. */
  assert_int_equal(dh_wait_log(&env, "req=801 result=", 8000), 0);
  dh_sleep_ms(500);
  assert_int_equal(dh_log_count(&env, "event=exchange"), 1);

  /* Their nonces are unspent: the device can still use them. */
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  d.nonce -= 4;
  assert_int_equal(exchange(&c, &d, 806), 0);
  dh_close(&c);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(test_backlog_answer_nomem, teardown),
    cmocka_unit_test_teardown(test_routed_answer_nomem, teardown),
    cmocka_unit_test_teardown(test_reset_drops_other_workers_backlog, teardown),
  };
  dh_init(argc, argv, 55);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
