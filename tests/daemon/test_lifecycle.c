/*
 * daemon.lifecycle: starting, reloading and stopping mtcsd.  SIGTERM with
 * exchanges in flight answers them all before a clean exit; SIGHUP keeps
 * connections (and a broken configuration leaves the old one in force);
 * kill -9 under load loses nothing acknowledged: after a restart every M3
 * the UE received has its session in the database and its M1 is a REPLAY;
 * SIGHUP also swaps the TLS certificates for new connections; a KEK
 * readable by others, a corrupt configuration and a missing file stop
 * mtcsd from starting with exit status 4 and a message naming the file.
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
#include <sys/stat.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "harness.h"

static dh_env env;

static int setup(void **state) {
  (void)state;
  dh_env_create(&env, NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  dh_env_destroy(&env);
  return 0;
}

static dh_device devs[DH_NLOAD];

static void devices_init(uint64_t first_nonce) {
  unsigned i;
  for (i = 0; i < DH_NLOAD; i++) {
    uint8_t id[8];
    dh_load_dev(id, i);
    dh_device_init(&devs[i], id);
    devs[i].nonce = first_nonce;
  }
}

static void test_sigterm_answers_inflight(void **state) {
  dh_client c;
  static dh_m1 m1s[300];
  unsigned i, answered = 0;
  sqlite3 *db = NULL;
  (void)state;

  devices_init(0);
  assert_int_equal(dh_start(&env), 0);
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  /* Hold the database's write lock so that no exchange can finish: all 300
   * are surely in flight (received, waiting for their commit) when SIGTERM
   * arrives.  The lock goes before mtcsd's busy timeout (5 s). */
  assert_int_equal(sqlite3_open(env.db, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
                   SQLITE_OK);
  for (i = 0; i < 300; i++) {
    dh_m1_build(&devs[i % DH_NLOAD], &m1s[i], DH_UEID, DH_MTCS_ID, NULL, 0);
    assert_int_equal(dh_send_m2(&c, i, m1s[i].bytes, m1s[i].len), 0);
  }
  dh_sleep_ms(300);
  assert_int_equal(dh_log_count(&env, "event=exchange"), 0);
  assert_int_equal(kill(env.pid, SIGTERM), 0);
  assert_int_equal(dh_wait_log(&env, "event=shutdown", 2000), 0);
  dh_sleep_ms(100);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);
  for (;;) {
    uint8_t type;
    uint32_t req;
    const uint8_t *body;
    size_t bl;
    int r = dh_recv(&c, &type, &req, &body, &bl, 10000);
    if (r != 1) {
      assert_int_equal(r, 0); /* closed by the server, not a timeout */
      break;
    }
    assert_int_equal(type, MTCSEC_MSG_M3);
    assert_true(req < 300);
    assert_int_equal(
      dh_check_m3(&devs[req % DH_NLOAD], &m1s[req], body, bl, NULL), 0);
    answered++;
  }
  assert_int_equal(answered, 300);
  assert_int_equal(dh_stop(&env, 0, 10000), 0); /* exit status 0 */
  assert_int_equal(dh_wait_log(&env, "event=stopped status=0", 100), 0);
  dh_close(&c);
}

/* Waits (5 s) until the log has n lines with needle.  0 or -1. */
static int wait_count(const char *needle, int n) {
  uint64_t until = dh_now_ms() + 5000;
  while (dh_log_count(&env, needle) < n) {
    if (dh_now_ms() >= until) {
      return -1;
    }
    dh_sleep_ms(10);
  }
  return dh_log_count(&env, needle) == n ? 0 : -1;
}

static void test_sighup_keeps_connections(void **state) {
  dh_client c, c2;
  dh_device d;
  dh_m1 m;
  uint8_t type;
  uint32_t req;
  const uint8_t *body;
  size_t bl;
  (void)state;

  dh_device_init(&d, DH_DEV_B);
  assert_int_equal(dh_start(&env), 0);
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(dh_send_m2(&c, 1, m.bytes, m.len), 0);
  assert_int_equal(dh_recv(&c, &type, &req, &body, &bl, 10000), 1);
  assert_int_equal(type, MTCSEC_MSG_M3);

  assert_int_equal(kill(env.pid, SIGHUP), 0);
  assert_int_equal(dh_wait_log(&env, "event=reloaded", 5000), 0);
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(dh_send_m2(&c, 2, m.bytes, m.len), 0);
  assert_int_equal(dh_recv(&c, &type, &req, &body, &bl, 10000), 1);
  assert_int_equal(type, MTCSEC_MSG_M3);
  assert_int_equal(dh_check_m3(&d, &m, body, bl, NULL), 0);

  /* New certificates apply to new connections only: trust another CA. */
  {
    FILE *f = fopen(env.conf, "w");
    dh_client c3;
    assert_non_null(f);
    fputs("mtcs_id = 5e00000000000001\nlisten = 127.0.0.1:0\n"
          "metrics_listen = 127.0.0.1:0\nca = other-ca.pem\n"
          "idle_timeout = 1\n",
          f);
    fclose(f);
    assert_int_equal(kill(env.pid, SIGHUP), 0);
    assert_int_equal(dh_wait_log(&env, "event=reload_ignored", 5000), 0);
    assert_int_equal(wait_count("event=reloaded", 2), 0);
    if (dh_connect(&env, &c3, DH_CERT_UE) == 0) {
      assert_int_equal(dh_wait_closed(&c3, 5000), 0);
    }
    dh_close(&c3);
    assert_int_equal(dh_connect(&env, &c3, DH_CERT_OTHER_CA), 0);
    dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
    assert_int_equal(dh_send_m2(&c3, 5, m.bytes, m.len), 0);
    assert_int_equal(dh_recv(&c3, &type, &req, &body, &bl, 10000), 1);
    assert_int_equal(type, MTCSEC_MSG_M3);
    dh_close(&c3);
    dh_write_config(&env, NULL);
    assert_int_equal(kill(env.pid, SIGHUP), 0);
    assert_int_equal(dh_wait_log(&env, "certificate refused", 100), 0);
  }
  assert_int_equal(wait_count("event=reloaded", 3), 0);

  /* A broken configuration is refused; the old one stays in force. */
  dh_write_config(&env, "max_connections = many\n");
  assert_int_equal(kill(env.pid, SIGHUP), 0);
  assert_int_equal(dh_wait_log(&env, "event=reload_failed", 5000), 0);
  dh_write_config(&env, NULL);
  assert_int_equal(dh_connect(&env, &c2, DH_CERT_UE), 0);
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(dh_send_m2(&c2, 3, m.bytes, m.len), 0);
  assert_int_equal(dh_recv(&c2, &type, &req, &body, &bl, 10000), 1);
  assert_int_equal(type, MTCSEC_MSG_M3);
  dh_close(&c2);
  /* The first connection survived both reloads. */
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  assert_int_equal(dh_send_m2(&c, 4, m.bytes, m.len), 0);
  assert_int_equal(dh_recv(&c, &type, &req, &body, &bl, 10000), 1);
  assert_int_equal(type, MTCSEC_MSG_M3);
  dh_close(&c);
  assert_int_equal(dh_stop(&env, SIGTERM, 10000), 0);
}

/* Sessions of one device as the database recorded them. */
typedef struct found {
  const uint8_t *mtcd_nonce, *mtcs_nonce;
  int hit;
} found;

static int find_session(void *ud, const mtcsec_sqlite_session *s) {
  found *f = ud;
  if (memcmp(s->rec.mtcd_nonce, f->mtcd_nonce, 8) == 0 &&
      memcmp(s->rec.mtcs_nonce, f->mtcs_nonce, 8) == 0) {
    f->hit = 1;
    return 1;
  }
  return 0;
}

#define LOAD_N 1500
#define KILL_AFTER 400
#define FOLDED_N 300 /* exchanges answered before the load of the kill */

/* Runs sql on the database (mtcsd re-reads store_log at each commit). */
static void db_exec(const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(env.db, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

/* One integer from a one-row query on the database. */
static int64_t db_int(const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  int64_t v;
  assert_int_equal(sqlite3_open(env.db, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

static void test_kill9_loses_nothing(void **state) {
  static dh_m1 m1s[LOAD_N];
  static uint8_t snonce[LOAD_N][8];
  static int got[LOAD_N];
  dh_client c;
  mtcsec_sqlite *st;
  unsigned i, sent = 0, received = 0, ok = 0, killed = 0;
  (void)state;

  memset(got, 0, sizeof(got));
  devices_init(100000);
  /* The nonce windows are folded from the session log in cycles
   * (docs/STORE.md): one every 37 sessions for the first FOLDED_N
   * exchanges, then none, so that the kill leaves both windows folded into
   * devstate (a cycle may still be running) and acknowledged sessions only
   * in the log. */
  db_exec("UPDATE store_log SET fold_rows = 37");
  assert_int_equal(dh_start(&env), 0);
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  for (i = 0; i < LOAD_N; i++) {
    dh_m1_build(&devs[i % DH_NLOAD], &m1s[i], DH_UEID, DH_MTCS_ID, NULL, 0);
  }
  for (; sent < FOLDED_N; sent++) {
    assert_int_equal(dh_send_m2(&c, sent, m1s[sent].bytes, m1s[sent].len), 0);
  }
  for (; received < FOLDED_N; received++) {
    uint8_t type;
    uint32_t req;
    const uint8_t *body;
    size_t bl;
    assert_int_equal(dh_recv(&c, &type, &req, &body, &bl, 10000), 1);
    assert_int_equal(type, MTCSEC_MSG_M3);
    assert_true(req < FOLDED_N);
    assert_int_equal(
      dh_check_m3(&devs[req % DH_NLOAD], &m1s[req], body, bl, snonce[req]), 0);
    got[req] = 1;
    ok++;
  }
  db_exec("UPDATE store_log SET fold_rows = 1000000000");
  /* Keep up to 200 exchanges in flight; kill -9 in the middle. */
  for (;;) {
    uint8_t type;
    uint32_t req;
    const uint8_t *body;
    size_t bl;
    int r;
    while (!killed && sent < LOAD_N && sent - received < 200) {
      if (dh_send_m2(&c, sent, m1s[sent].bytes, m1s[sent].len) != 0) {
        break;
      }
      sent++;
    }
    if (!killed && received >= KILL_AFTER) {
      assert_int_equal(dh_stop(&env, SIGKILL, 5000), 128 + SIGKILL);
      killed = 1;
    }
    r = dh_recv(&c, &type, &req, &body, &bl, 10000);
    if (r != 1) {
      assert_true(killed);
      break;
    }
    received++;
    assert_true(req < sent);
    if (type == MTCSEC_MSG_M3) {
      assert_int_equal(
        dh_check_m3(&devs[req % DH_NLOAD], &m1s[req], body, bl, snonce[req]),
        0);
      got[req] = 1;
      ok++;
    }
  }
  dh_close(&c);
  assert_true(ok >= KILL_AFTER);
  assert_true(sent > ok); /* some were in flight at the kill */
  /* Folds ran, and every session of the load of the kill, the
   * acknowledged ones included, is above the folded mark: the restart
   * rebuilds their windows from the log. */
  assert_true(db_int("SELECT folded FROM store_log") > 0);
  assert_true(db_int("SELECT (SELECT max(id) FROM session) - folded FROM "
                     "store_log") >= (int64_t)(ok - FOLDED_N));
  assert_true(ok - FOLDED_N >= 50);

  /* Restart: every M3 received is recorded, and its M1 is now a replay. */
  assert_int_equal(dh_start(&env), 0);
  st = dh_db_open(&env);
  for (i = 0; i < LOAD_N; i++) {
    found f;
    if (!got[i]) {
      continue;
    }
    f.mtcd_nonce = m1s[i].nonce;
    f.mtcs_nonce = snonce[i];
    f.hit = 0;
    assert_int_equal(mtcsec_sqlite_session_foreach(st, devs[i % DH_NLOAD].id, 0,
                                                   find_session, &f),
                     0);
    if (!f.hit) {
      fail_msg("exchange %u acknowledged but not in the database", i);
    }
  }
  mtcsec_sqlite_close(st);
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  for (i = 0; i < LOAD_N; i++) {
    if (got[i]) {
      assert_int_equal(dh_send_m2(&c, i, m1s[i].bytes, m1s[i].len), 0);
    }
  }
  for (i = 0; i < ok; i++) {
    uint8_t type;
    uint32_t req;
    const uint8_t *body;
    size_t bl;
    assert_int_equal(dh_recv(&c, &type, &req, &body, &bl, 15000), 1);
    assert_int_equal(type, MTCSEC_MSG_ERR);
    assert_int_equal(body[0], 8); /* REPLAY */
  }
  dh_close(&c);
  assert_int_equal(dh_stop(&env, SIGTERM, 10000), 0);
}

static void test_kek_world_readable(void **state) {
  char kek[400], out[4096];
  const char *args[] = {"-c", env.conf, NULL};
  (void)state;
  snprintf(kek, sizeof(kek), "%s/kek", env.dir);
  assert_int_equal(chmod(kek, 0644), 0);
  assert_int_equal(dh_run(&env, args, out, sizeof(out)), 4);
  assert_non_null(strstr(out, kek));
  assert_int_equal(chmod(kek, 0600), 0);
}

static void test_bad_config(void **state) {
  char out[4096], want[400];
  const char *args[] = {"-c", env.conf, NULL};
  const char *check[] = {"--check-config", "-c", env.conf, NULL};
  const char *missing[] = {"-c", "/nonexistent/mtcsd.conf", NULL};
  FILE *f;
  (void)state;

  /* A line that is not key = value: named by file and line. */
  f = fopen(env.conf, "w");
  assert_non_null(f);
  fputs("mtcs_id = 5e00000000000001\n# comment\nthis is not a setting\n", f);
  fclose(f);
  assert_int_equal(dh_run(&env, args, out, sizeof(out)), 4);
  snprintf(want, sizeof(want), "%s:3: expected '='", env.conf);
  assert_non_null(strstr(out, want));

  /* A bad value and an unknown key. */
  dh_write_config(&env, "max_connections = lots\n");
  assert_int_equal(dh_run(&env, args, out, sizeof(out)), 4);
  snprintf(want, sizeof(want), "%s:10: max_connections: expected an integer",
           env.conf);
  assert_non_null(strstr(out, want));
  dh_write_config(&env, "colour = blue\n");
  assert_int_equal(dh_run(&env, check, out, sizeof(out)), 4);
  assert_non_null(strstr(out, "unknown key 'colour'"));

  assert_int_equal(dh_run(&env, missing, out, sizeof(out)), 4);
  assert_non_null(strstr(out, "/nonexistent/mtcsd.conf"));

  /* Fixed: --check-config passes. */
  dh_write_config(&env, NULL);
  assert_int_equal(dh_run(&env, check, out, sizeof(out)), 0);
  assert_non_null(strstr(out, "configuration OK"));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sigterm_answers_inflight),
    cmocka_unit_test(test_sighup_keeps_connections),
    cmocka_unit_test(test_kill9_loses_nothing),
    cmocka_unit_test(test_kek_world_readable),
    cmocka_unit_test(test_bad_config),
  };
  dh_init(argc, argv, 55);
  return cmocka_run_group_tests(tests, setup, teardown);
}
