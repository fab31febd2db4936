/*
 * The SQLite store (store_sqlite.h): KEK files, opening and schema
 * migration, every administration call, every ops call, group commit and
 * its failure modes (nothing written), durability across reopen, keys
 * wrapped at rest, revocation.
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
#include <mtcsec/codec.h>

#include "sqlite_fixture.h"
#include "store/sqlite_schema.h"

static const uint8_t mtcs_id[8] = {0x5e, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t dev_a[8] = {0xd0, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t dev_b[8] = {0xd0, 0, 0, 0, 0, 0, 0, 0x02};
static const uint8_t dev_c[8] = {0xd0, 0, 0, 0, 0, 0, 0, 0x03};
static const uint8_t dev_x[8] = {0xd0, 0, 0, 0, 0, 0, 0, 0x99};
static const uint8_t ue_a[8] = {0xe0, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t ue_b[8] = {0xe0, 0, 0, 0, 0, 0, 0, 0x02};
static const uint8_t gw_a[8] = {0x90, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t gw_b[8] = {0x90, 0, 0, 0, 0, 0, 0, 0x02};

static const uint8_t psk[32] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
                                0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
                                0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
                                0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf};

typedef struct fx {
  char dir[SFX_PATH_MAX];
  char db[SFX_PATH_MAX];
  mtcsec_sqlite *st;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  sfx_mkdtemp(f->dir);
  sfx_join(f->db, f->dir, "mtcsd.db");
  f->st = sfx_open(f->db, sfx_kek, MTCSEC_SQLITE_CREATE);
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

static void reopen(fx *f, const uint8_t *kek, int flags) {
  mtcsec_sqlite_close(f->st);
  f->st = sfx_open(f->db, kek, flags);
}

/* dev_a: suite 1, no group; dev_b: suite 3, "meters"; dev_c: suite 2,
 * "meters". */
static void add_devices(fx *f) {
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_a, mtcs_id, 1, psk, "kitchen", NULL),
    0);
  assert_int_equal(mtcsec_sqlite_device_add(f->st, dev_b, mtcs_id, 3, psk,
                                            "meter 1", "meters"),
                   0);
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_c, mtcs_id, 2, psk, NULL, "meters"), 0);
}

static void expected_keys(const uint8_t id[8], uint8_t suite, uint8_t *k_auth,
                          uint8_t *k_dm) {
  memset(k_auth, 0, MTCSEC_MAX_KEY_LEN);
  memset(k_dm, 0, MTCSEC_MAX_KEY_LEN);
  assert_int_equal(mtcsec_derive_device_keys(th_openssl(), suite, psk, id,
                                             mtcs_id, k_auth, k_dm),
                   0);
}

static mtcsec_store_txn make_txn(const uint8_t dev[8], uint64_t nonce,
                                 uint16_t key_id) {
  mtcsec_store_txn t;
  memset(&t, 0, sizeof(t));
  t.nonce = nonce;
  memcpy(t.session.mtcd_id, dev, 8);
  memcpy(t.session.ueid, ue_a, 8);
  mtcsec_put_u64(t.session.mtcd_nonce, nonce);
  memset(t.session.mtcs_nonce, 0x5a, 8);
  t.session.key_id = key_id;
  t.session.suite = 1;
  t.session.perms = 3;
  t.session.lifetime = 60;
  t.session.issued_at = 1000 + nonce;
  return t;
}

static int commit(fx *f, mtcsec_store_txn *txns, size_t n, int *results) {
  mtcsec_store_txn *p[300];
  size_t i;
  assert_true(n <= 300);
  for (i = 0; i < n; i++) {
    p[i] = &txns[i];
  }
  return mtcsec_sqlite_ops.commit(f->st, p, n, results);
}

static mtcsec_store_devstate get_state(fx *f, const uint8_t id[8]) {
  mtcsec_store_devstate ds;
  assert_int_equal(mtcsec_sqlite_ops.get_state(f->st, id, &ds), 0);
  return ds;
}

typedef struct collect {
  size_t n;
  mtcsec_sqlite_session s[64];
} collect;

static int collect_session(void *ud, const mtcsec_sqlite_session *s) {
  collect *c = ud;
  if (c->n < 64) {
    c->s[c->n] = *s;
  }
  c->n++;
  return 0;
}

static size_t count_sessions(fx *f, const uint8_t *dev) {
  collect c;
  memset(&c, 0, sizeof(c));
  assert_int_equal(
    mtcsec_sqlite_session_foreach(f->st, dev, 0, collect_session, &c), 0);
  return c.n;
}

/* ----------------------------------------------------------------- KEK */

static void test_sqlite_kek_load_modes(void **state) {
  fx *f = *state;
  const char *hex =
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";
  char path[SFX_PATH_MAX], err[256], line[80];
  uint8_t kek[MTCSEC_KEK_LEN];

  sfx_join(path, f->dir, "kek");
  snprintf(line, sizeof(line), "%s\n", hex);
  sfx_write(path, line, strlen(line), 0600);
  assert_int_equal(mtcsec_kek_load(path, kek, err, sizeof(err)), 0);
  assert_memory_equal(kek, sfx_kek, sizeof(kek));
  /* Without the newline, and upper case. */
  sfx_write(path,
            "00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA98765"
            "43210",
            64, 0400);
  assert_int_equal(mtcsec_kek_load(path, kek, err, sizeof(err)), 0);
  assert_memory_equal(kek, sfx_kek, sizeof(kek));

  /* 0644 is refused with the command that fixes it. */
  sfx_write(path, line, strlen(line), 0644);
  memset(kek, 0x55, sizeof(kek));
  assert_int_equal(mtcsec_kek_load(path, kek, err, sizeof(err)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "readable by group or others (mode 0644)"));
  assert_non_null(strstr(err, "chmod 600"));
  assert_non_null(strstr(err, path));
  {
    uint8_t zero[MTCSEC_KEK_LEN] = {0};
    assert_memory_equal(kek, zero, sizeof(kek)); /* zeroized on error */
  }
  sfx_write(path, line, strlen(line), 0640);
  assert_int_equal(mtcsec_kek_load(path, kek, err, sizeof(err)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "mode 0640"));
  sfx_write(path, line, strlen(line), 0620); /* group-writable */
  assert_int_equal(mtcsec_kek_load(path, kek, err, sizeof(err)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "accessible by group or others"));
  sfx_write(path, line, strlen(line), 0601);
  assert_int_equal(mtcsec_kek_load(path, kek, err, sizeof(err)),
                   MTCSEC_ERR_INVALID_ARGUMENT);

  /* Not a regular file; missing file. */
  assert_int_equal(mtcsec_kek_load(f->dir, kek, err, sizeof(err)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "not a regular file"));
  sfx_join(path, f->dir, "missing");
  assert_int_equal(mtcsec_kek_load(path, kek, err, sizeof(err)),
                   MTCSEC_ERR_STORE);
  assert_non_null(strstr(err, "cannot open"));
  assert_int_equal(mtcsec_kek_load(NULL, kek, err, sizeof(err)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_sqlite_kek_load_bad_content(void **state) {
  fx *f = *state;
  static const char *const bad[] = {
    "",
    "00112233",
    /* 63 digits */
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba987654321",
    /* 65 digits */
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba98765432100",
    /* a non-hex digit */
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba987654321g",
    /* two newlines, CRLF, a trailing space */
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210\n\n",
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210\r\n",
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210 ",
    /* far too long */
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210",
  };
  char path[SFX_PATH_MAX], err[256];
  uint8_t kek[MTCSEC_KEK_LEN];
  size_t i;

  sfx_join(path, f->dir, "kek");
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    sfx_write(path, bad[i], strlen(bad[i]), 0600);
    err[0] = '\0';
    assert_int_equal(mtcsec_kek_load(path, kek, err, sizeof(err)),
                     MTCSEC_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "64 hexadecimal digits"));
  }
}

static void test_sqlite_kek_create(void **state) {
  fx *f = *state;
  char path[SFX_PATH_MAX], err[256];
  uint8_t kek[MTCSEC_KEK_LEN], kek2[MTCSEC_KEK_LEN];
  struct stat sb;
  mode_t old = umask(0);

  sfx_join(path, f->dir, "kek");
  assert_int_equal(mtcsec_kek_create(path, th_openssl(), err, sizeof(err)), 0);
  umask(old);
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  assert_int_equal(sb.st_size, 65);
  assert_int_equal(mtcsec_kek_load(path, kek, err, sizeof(err)), 0);
  /* Never overwritten. */
  assert_int_equal(mtcsec_kek_create(path, th_openssl(), err, sizeof(err)),
                   MTCSEC_ERR_STORE);
  assert_non_null(strstr(err, "exists already"));
  assert_int_equal(mtcsec_kek_load(path, kek2, err, sizeof(err)), 0);
  assert_memory_equal(kek, kek2, sizeof(kek));
  /* A second one differs. */
  sfx_join(path, f->dir, "kek2");
  assert_int_equal(mtcsec_kek_create(path, th_openssl(), err, sizeof(err)), 0);
  assert_int_equal(mtcsec_kek_load(path, kek2, err, sizeof(err)), 0);
  assert_memory_not_equal(kek, kek2, sizeof(kek));
  /* A directory that does not exist. */
  sfx_join(path, f->dir, "nodir/kek");
  assert_int_equal(mtcsec_kek_create(path, th_openssl(), err, sizeof(err)),
                   MTCSEC_ERR_STORE);
  assert_non_null(strstr(err, "cannot create"));
}

/* ------------------------------------------------------ open / schema */

static void test_sqlite_open_creates_wal_0600(void **state) {
  fx *f = *state;
  sqlite3 *db = mtcsec_sqlite_db(f->st);
  struct stat sb;

  assert_int_equal(stat(f->db, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  assert_true(mtcsec_sqlite_schema_version() >= 1);
  assert_int_equal(sfx_int(db, "PRAGMA user_version"),
                   mtcsec_sqlite_schema_version());
  assert_int_equal(sfx_int(db, "PRAGMA application_id"), MTCSEC_SQLITE_APP_ID);
  assert_int_equal(sfx_int(db, "PRAGMA synchronous"), 2); /* FULL */
  {
    sqlite3_stmt *s = NULL;
    assert_int_equal(
      sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
  }
  assert_int_equal(sfx_int(db, "PRAGMA busy_timeout"), 5000);
  assert_string_equal(mtcsec_sqlite_errmsg(f->st), "");
  /* Reopening an up-to-date database changes nothing. */
  reopen(f, sfx_kek, 0);
  assert_int_equal(sfx_int(mtcsec_sqlite_db(f->st), "PRAGMA user_version"),
                   mtcsec_sqlite_schema_version());
}

static void test_sqlite_open_errors(void **state) {
  fx *f = *state;
  char path[SFX_PATH_MAX], err[512];
  mtcsec_sqlite *st = (mtcsec_sqlite *)1;

  /* Missing file without CREATE. */
  sfx_join(path, f->dir, "missing.db");
  assert_int_equal(
    mtcsec_sqlite_open(&st, path, sfx_kek, th_openssl(), 0, err, sizeof(err)),
    MTCSEC_ERR_STORE);
  assert_null(st);
  assert_non_null(strstr(err, "cannot open"));
  assert_int_equal(access(path, F_OK), -1); /* not created */

  /* A file that is not a database. */
  sfx_join(path, f->dir, "junk.db");
  {
    static const char junk[] =
      "this is not an SQLite database, it is a text file that is long "
      "enough to have a header of one hundred bytes or more, really";
    sfx_write(path, junk, strlen(junk), 0600);
  }
  assert_int_equal(
    mtcsec_sqlite_open(&st, path, sfx_kek, th_openssl(), 0, err, sizeof(err)),
    MTCSEC_ERR_STORE);
  assert_non_null(strstr(err, "not an SQLite database"));

  /* Another application's database, and one with tables but no version. */
  sfx_join(path, f->dir, "other.db");
  sfx_exec(path, "PRAGMA application_id = 42; CREATE TABLE t (x);");
  assert_int_equal(
    mtcsec_sqlite_open(&st, path, sfx_kek, th_openssl(), 0, err, sizeof(err)),
    MTCSEC_ERR_STORE);
  assert_non_null(strstr(err, "another application"));
  sfx_join(path, f->dir, "plain.db");
  sfx_exec(path, "CREATE TABLE t (x);");
  assert_int_equal(
    mtcsec_sqlite_open(&st, path, sfx_kek, th_openssl(), 0, err, sizeof(err)),
    MTCSEC_ERR_STORE);
  assert_non_null(strstr(err, "not an mtcsec database"));

  /* Invalid flags. */
  assert_int_equal(
    mtcsec_sqlite_open(&st, f->db, sfx_kek, th_openssl(),
                       MTCSEC_SQLITE_CREATE | MTCSEC_SQLITE_READONLY, err,
                       sizeof(err)),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(
    mtcsec_sqlite_open(&st, f->db, sfx_kek, th_openssl(), 8, err, sizeof(err)),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(
    mtcsec_sqlite_open(&st, f->db, NULL, th_openssl(), 0, err, sizeof(err)),
    MTCSEC_ERR_INVALID_ARGUMENT);
  /* NULL err is allowed. */
  sfx_join(path, f->dir, "missing.db");
  assert_int_equal(
    mtcsec_sqlite_open(&st, path, sfx_kek, th_openssl(), 0, NULL, 0),
    MTCSEC_ERR_STORE);
}

static void test_sqlite_migrates_empty_file(void **state) {
  fx *f = *state;
  char path[SFX_PATH_MAX];
  mtcsec_sqlite *st;

  /* An empty file (as `touch` leaves it) opens without CREATE. */
  sfx_join(path, f->dir, "empty.db");
  sfx_write(path, "", 0, 0600);
  st = sfx_open(path, sfx_kek, 0);
  assert_int_equal(sfx_int(mtcsec_sqlite_db(st), "PRAGMA user_version"),
                   mtcsec_sqlite_schema_version());
  assert_int_equal(
    mtcsec_sqlite_device_add(st, dev_a, mtcs_id, 1, psk, NULL, NULL), 0);
  mtcsec_sqlite_close(st);
  /* Version 0 with no tables (a fresh sqlite3 file) migrates too. */
  sfx_join(path, f->dir, "fresh.db");
  sfx_exec(path, "PRAGMA user_version = 0;");
  st = sfx_open(path, sfx_kek, 0);
  assert_int_equal(sfx_int_at(path, "SELECT count(*) FROM device"), 0);
  mtcsec_sqlite_close(st);
}

static void test_sqlite_refuses_newer_schema(void **state) {
  fx *f = *state;
  char sql[64], err[512];
  mtcsec_sqlite *st = NULL;

  mtcsec_sqlite_close(f->st);
  f->st = NULL;
  snprintf(sql, sizeof(sql), "PRAGMA user_version = %d;",
           mtcsec_sqlite_schema_version() + 1);
  sfx_exec(f->db, sql);
  assert_int_equal(
    mtcsec_sqlite_open(&st, f->db, sfx_kek, th_openssl(), 0, err, sizeof(err)),
    MTCSEC_ERR_STORE);
  assert_null(st);
  assert_non_null(strstr(err, "newer than this build"));
  assert_int_equal(mtcsec_sqlite_open(&st, f->db, sfx_kek, th_openssl(),
                                      MTCSEC_SQLITE_READONLY, err, sizeof(err)),
                   MTCSEC_ERR_STORE);
  assert_non_null(strstr(err, "newer than this build"));
  /* Left untouched. */
  assert_int_equal(sfx_int_at(f->db, "PRAGMA user_version"),
                   mtcsec_sqlite_schema_version() + 1);
}

static void test_sqlite_readonly_handle(void **state) {
  fx *f = *state;
  mtcsec_store_txn t = make_txn(dev_a, 1, 0);
  mtcsec_sqlite_devinfo di;
  mtcsec_store_device d;
  int res[1];

  add_devices(f);
  reopen(f, sfx_kek, MTCSEC_SQLITE_READONLY);
  assert_int_equal(mtcsec_sqlite_device_get(f->st, dev_a, &di), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_a, &d), 0);
  assert_int_equal(commit(f, &t, 1, res), MTCSEC_ERR_STORE);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "read-only"));
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_x, mtcs_id, 1, psk, NULL, NULL),
    MTCSEC_ERR_STORE);
  reopen(f, sfx_kek, 0);
  assert_int_equal(get_state(f, dev_a).window.bitmap, 0);
}

/* ------------------------------------------------------------- devices */

static void test_sqlite_device_add_get(void **state) {
  fx *f = *state;
  static const uint8_t suites[3] = {1, 3, 2};
  const uint8_t *ids[3] = {dev_a, dev_b, dev_c};
  uint8_t ka[MTCSEC_MAX_KEY_LEN], kd[MTCSEC_MAX_KEY_LEN];
  mtcsec_store_device d;
  mtcsec_sqlite_devinfo di;
  size_t i;

  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_a, &d),
                   MTCSEC_ERR_NOT_FOUND);
  add_devices(f);
  for (i = 0; i < 3; i++) {
    memset(&d, 0xee, sizeof(d));
    assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, ids[i], &d), 0);
    expected_keys(ids[i], suites[i], ka, kd);
    assert_int_equal(d.suite, suites[i]);
    assert_int_equal(d.disabled, 0);
    assert_memory_equal(d.k_auth, ka, sizeof(ka));
    assert_memory_equal(d.k_dm, kd, sizeof(kd));
  }
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_x, &d),
                   MTCSEC_ERR_NOT_FOUND);

  assert_int_equal(mtcsec_sqlite_device_get(f->st, dev_b, &di), 0);
  assert_memory_equal(di.id, dev_b, 8);
  assert_int_equal(di.suite, 3);
  assert_string_equal(di.label, "meter 1");
  assert_string_equal(di.group, "meters");
  assert_true(di.created > 0 && llabs(di.created - (int64_t)time(NULL)) < 60);
  assert_int_equal(di.sessions, 0);
  assert_int_equal(di.window.bitmap, 0);
  assert_int_equal(mtcsec_sqlite_device_get(f->st, dev_a, &di), 0);
  assert_string_equal(di.group, "");
  assert_int_equal(mtcsec_sqlite_device_get(f->st, dev_c, &di), 0);
  assert_string_equal(di.label, "");
  assert_int_equal(mtcsec_sqlite_device_get(f->st, dev_x, &di),
                   MTCSEC_ERR_NOT_FOUND);
}

static void test_sqlite_device_add_errors(void **state) {
  fx *f = *state;
  char longname[80];

  add_devices(f);
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_a, mtcs_id, 1, psk, NULL, NULL),
    MTCSEC_ERR_INVALID_STATE);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "exists already"));
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_x, mtcs_id, 4, psk, NULL, NULL),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "unknown suite 4"));
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_x, mtcs_id, 0, psk, NULL, NULL),
    MTCSEC_ERR_INVALID_ARGUMENT);
  memset(longname, 'x', 64);
  longname[64] = '\0';
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_x, mtcs_id, 1, psk, longname, NULL),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_x, mtcs_id, 1, psk, NULL, longname),
    MTCSEC_ERR_INVALID_ARGUMENT);
  longname[63] = '\0'; /* 63 bytes fit */
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_x, mtcs_id, 1, psk, longname, longname),
    0);
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, NULL, mtcs_id, 1, psk, NULL, NULL),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_x, mtcs_id, 1, NULL, NULL, NULL),
    MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_sqlite_device_disable(void **state) {
  fx *f = *state;
  mtcsec_store_device d;
  mtcsec_sqlite_devinfo di;

  add_devices(f);
  assert_int_equal(mtcsec_sqlite_device_disable(f->st, dev_a, 1), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_a, &d), 0);
  assert_int_equal(d.disabled, 1);
  assert_int_equal(mtcsec_sqlite_device_get(f->st, dev_a, &di), 0);
  assert_int_equal(di.disabled, 1);
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_b, &d), 0);
  assert_int_equal(d.disabled, 0);
  assert_int_equal(mtcsec_sqlite_device_disable(f->st, dev_a, 0), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_a, &d), 0);
  assert_int_equal(d.disabled, 0);
  assert_int_equal(mtcsec_sqlite_device_disable(f->st, dev_x, 1),
                   MTCSEC_ERR_NOT_FOUND);
}

typedef struct devlist {
  size_t n, stop_after;
  uint8_t ids[8][8];
} devlist;

static int collect_dev(void *ud, const mtcsec_sqlite_devinfo *d) {
  devlist *l = ud;
  memcpy(l->ids[l->n++], d->id, 8);
  return l->stop_after != 0 && l->n == l->stop_after;
}

static void test_sqlite_device_foreach(void **state) {
  fx *f = *state;
  devlist l;

  memset(&l, 0, sizeof(l));
  assert_int_equal(mtcsec_sqlite_device_foreach(f->st, collect_dev, &l), 0);
  assert_int_equal(l.n, 0);
  /* Added out of order, listed in ID order. */
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_c, mtcs_id, 1, psk, NULL, NULL), 0);
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_a, mtcs_id, 1, psk, NULL, NULL), 0);
  assert_int_equal(
    mtcsec_sqlite_device_add(f->st, dev_b, mtcs_id, 1, psk, NULL, NULL), 0);
  assert_int_equal(mtcsec_sqlite_device_foreach(f->st, collect_dev, &l), 0);
  assert_int_equal(l.n, 3);
  assert_memory_equal(l.ids[0], dev_a, 8);
  assert_memory_equal(l.ids[1], dev_b, 8);
  assert_memory_equal(l.ids[2], dev_c, 8);
  /* A nonzero return stops the walk. */
  memset(&l, 0, sizeof(l));
  l.stop_after = 2;
  assert_int_equal(mtcsec_sqlite_device_foreach(f->st, collect_dev, &l), 0);
  assert_int_equal(l.n, 2);
}

/* ------------------------------------------------------ keys at rest */

static void test_sqlite_keys_wrapped_at_rest(void **state) {
  fx *f = *state;
  uint8_t ka[MTCSEC_MAX_KEY_LEN], kd[MTCSEC_MAX_KEY_LEN];
  char path[SFX_PATH_MAX];
  static const char *const files[] = {"mtcsd.db", "mtcsd.db-wal"};
  size_t i, len, checked = 0;

  add_devices(f);
  /* Look at the file while the handle is open (pages may sit in the WAL),
   * then after close (checkpointed into the main file). */
  for (i = 0; i < 4; i++) {
    uint8_t *buf;
    if (i == 2) {
      mtcsec_sqlite_close(f->st);
      f->st = NULL;
    }
    sfx_join(path, f->dir, files[i % 2]);
    buf = sfx_read(path, &len);
    if (buf == NULL) {
      continue;
    }
    checked += len;
    expected_keys(dev_a, 1, ka, kd);
    assert_false(sfx_contains(buf, len, ka, 8));
    assert_false(sfx_contains(buf, len, kd, 8));
    expected_keys(dev_b, 3, ka, kd);
    assert_false(sfx_contains(buf, len, ka, 8));
    assert_false(sfx_contains(buf, len, kd, 8));
    assert_false(sfx_contains(buf, len, psk, 8));
    assert_false(sfx_contains(buf, len, sfx_kek, 8));
    if (i == 2) {
      /* The IDs are there in clear: the search does find things. */
      assert_true(sfx_contains(buf, len, dev_b, 8));
    }
    free(buf);
  }
  assert_true(checked > 0);
  f->st = sfx_open(f->db, sfx_kek, 0);
}

static void test_sqlite_wrong_kek(void **state) {
  fx *f = *state;
  mtcsec_store_device d;
  mtcsec_sqlite_devinfo di;
  uint8_t msg[64];

  add_devices(f);
  {
    mtcsec_store_txn t = make_txn(dev_a, 1, 0);
    int res[1];
    assert_int_equal(commit(f, &t, 1, res), 0);
  }
  reopen(f, sfx_kek2, 0);
  memset(&d, 0x77, sizeof(d));
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_a, &d),
                   MTCSEC_ERR_STORE);
  assert_non_null(
    strstr(mtcsec_sqlite_errmsg(f->st), "do not unwrap under this KEK"));
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "d000000000000001"));
  /* out untouched on error (no partial keys). */
  {
    mtcsec_store_device u;
    memset(&u, 0x77, sizeof(u));
    assert_memory_equal(&d, &u, sizeof(d));
  }
  /* Listings need no keys; revocation does. */
  assert_int_equal(mtcsec_sqlite_device_get(f->st, dev_a, &di), 0);
  assert_int_equal(mtcsec_sqlite_session_revoke(f->st, 1, msg, sizeof(msg)),
                   MTCSEC_ERR_STORE);
  reopen(f, sfx_kek, 0);
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_a, &d), 0);
}

static void test_sqlite_swapped_key_rows(void **state) {
  fx *f = *state;
  mtcsec_store_device d;

  add_devices(f);
  /* An attacker with write access copies dev_c's wrapped keys (suite 2)
   * onto dev_a: the wrapped plaintext names its device, so it is refused. */
  mtcsec_sqlite_close(f->st);
  sfx_exec(f->db, "UPDATE device SET keys = (SELECT keys FROM device WHERE "
                  "id = x'd000000000000003'), suite = 2 WHERE id = "
                  "x'd000000000000001'");
  f->st = sfx_open(f->db, sfx_kek, 0);
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_a, &d),
                   MTCSEC_ERR_STORE);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "another device"));
  /* A truncated blob. */
  mtcsec_sqlite_close(f->st);
  sfx_exec(f->db, "UPDATE device SET keys = substr(keys, 1, 16) WHERE id = "
                  "x'd000000000000002'");
  f->st = sfx_open(f->db, sfx_kek, 0);
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_b, &d),
                   MTCSEC_ERR_STORE);
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_c, &d), 0);
}

/* -------------------------------------------------------------- grants */

static void test_sqlite_grant_device(void **state) {
  fx *f = *state;
  mtcsec_store_grant g;

  add_devices(f);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 0x03, 600, 0, 0), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g), 0);
  assert_int_equal(g.perms, 0x03);
  assert_int_equal(g.lifetime, 600);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_b, &g),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_b, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
  /* Replaced. */
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 0x0f, UINT32_MAX, 0, 0),
    0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g), 0);
  assert_int_equal(g.perms, 0x0f);
  assert_int_equal(g.lifetime, UINT32_MAX);
  /* A grant for a device not provisioned (yet) is allowed. */
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_x, NULL, 0x01, 60, 0, 0), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_x, ue_a, &g), 0);
  /* Deleted. */
  assert_int_equal(mtcsec_sqlite_grant_del(f->st, ue_a, dev_a, NULL), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_sqlite_grant_del(f->st, ue_a, dev_a, NULL),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_sqlite_grant_del(f->st, ue_b, NULL, "meters"),
                   MTCSEC_ERR_NOT_FOUND);
}

static void test_sqlite_grant_group_and_precedence(void **state) {
  fx *f = *state;
  int64_t now = (int64_t)time(NULL);
  mtcsec_store_grant g;

  add_devices(f);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, NULL, "meters", 0x0f, 3600, 0, 0), 0);
  /* Every device of the group; not dev_a (no group). */
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_b, ue_a, &g), 0);
  assert_int_equal(g.perms, 0x0f);
  assert_int_equal(g.lifetime, 3600);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_c, ue_a, &g), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_b, ue_b, &g),
                   MTCSEC_ERR_NOT_FOUND);
  /* A device grant takes precedence over the group grant. */
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_b, NULL, 0x01, 60, 0, 0), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_b, ue_a, &g), 0);
  assert_int_equal(g.perms, 0x01);
  assert_int_equal(g.lifetime, 60);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_c, ue_a, &g), 0);
  assert_int_equal(g.perms, 0x0f);
  /* ... even outside its validity period: an expired device grant does not
   * fall back to the group's. */
  assert_int_equal(mtcsec_sqlite_grant_set(f->st, ue_a, dev_b, NULL, 0x01, 60,
                                           now - 7200, now - 3600),
                   0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_b, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
  /* Deleting it restores the group grant. */
  assert_int_equal(mtcsec_sqlite_grant_del(f->st, ue_a, dev_b, NULL), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_b, ue_a, &g), 0);
  assert_int_equal(g.perms, 0x0f);
  /* Group grant removed. */
  assert_int_equal(mtcsec_sqlite_grant_del(f->st, ue_a, NULL, "meters"), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_b, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
}

static void test_sqlite_grant_validity(void **state) {
  fx *f = *state;
  int64_t now = (int64_t)time(NULL);
  mtcsec_store_grant g;

  add_devices(f);
  /* Not yet valid. */
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 1, 60, now + 3600, 0), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
  /* Expired: not_after is exclusive. */
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 1, 60, 0, now - 1), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g),
                   MTCSEC_ERR_NOT_FOUND);
  /* Within [not_before, not_after). */
  assert_int_equal(mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 1, 60,
                                           now - 60, now + 3600),
                   0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g), 0);
  /* Open-ended on either side. */
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 1, 60, now - 60, 0), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g), 0);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 1, 60, 0, now + 60), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g), 0);
  /* Group grants have periods too. */
  assert_int_equal(mtcsec_sqlite_grant_set(f->st, ue_b, NULL, "meters", 2, 60,
                                           now + 100, now + 200),
                   0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_b, ue_b, &g),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_sqlite_grant_set(f->st, ue_b, NULL, "meters", 2, 60,
                                           now - 100, now + 200),
                   0);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_b, ue_b, &g), 0);
  assert_int_equal(g.perms, 2);
}

static void test_sqlite_grant_errors(void **state) {
  fx *f = *state;
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, "meters", 1, 60, 0, 0),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "exactly one"));
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, NULL, NULL, 1, 60, 0, 0),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_grant_set(f->st, ue_a, NULL, "", 1, 60, 0, 0),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, NULL, dev_a, NULL, 1, 60, 0, 0),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 1, 60, 200, 100),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "later than"));
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 1, 60, 100, 100),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 1, 60, -1, 0),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_grant_del(f->st, ue_a, dev_a, "meters"),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_grant_del(f->st, ue_a, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

/* -------------------------------------------------------------- relays */

static void test_sqlite_relays(void **state) {
  fx *f = *state;

  add_devices(f);
  assert_int_equal(mtcsec_sqlite_ops.relay_allowed(f->st, dev_a, gw_a),
                   MTCSEC_ERR_NOT_FOUND);
  /* Unregistered relays cannot be allowed. */
  assert_int_equal(mtcsec_sqlite_relay_allow(f->st, gw_a, dev_a, NULL),
                   MTCSEC_ERR_NOT_FOUND);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "not registered"));
  assert_int_equal(mtcsec_sqlite_relay_add(f->st, gw_a, "roof"), 0);
  assert_int_equal(mtcsec_sqlite_relay_add(f->st, gw_a, "roof 2"), 0);
  assert_int_equal(mtcsec_sqlite_relay_add(f->st, gw_b, NULL), 0);
  /* Registered is not allowed. */
  assert_int_equal(mtcsec_sqlite_ops.relay_allowed(f->st, dev_a, gw_a),
                   MTCSEC_ERR_NOT_FOUND);
  /* Per device. */
  assert_int_equal(mtcsec_sqlite_relay_allow(f->st, gw_a, dev_a, NULL), 0);
  assert_int_equal(mtcsec_sqlite_relay_allow(f->st, gw_a, dev_a, NULL), 0);
  assert_int_equal(mtcsec_sqlite_ops.relay_allowed(f->st, dev_a, gw_a), 0);
  assert_int_equal(mtcsec_sqlite_ops.relay_allowed(f->st, dev_a, gw_b),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_sqlite_ops.relay_allowed(f->st, dev_b, gw_a),
                   MTCSEC_ERR_NOT_FOUND);
  /* Per group. */
  assert_int_equal(mtcsec_sqlite_relay_allow(f->st, gw_b, NULL, "meters"), 0);
  assert_int_equal(mtcsec_sqlite_ops.relay_allowed(f->st, dev_b, gw_b), 0);
  assert_int_equal(mtcsec_sqlite_ops.relay_allowed(f->st, dev_c, gw_b), 0);
  assert_int_equal(mtcsec_sqlite_ops.relay_allowed(f->st, dev_a, gw_b),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_sqlite_ops.relay_allowed(f->st, dev_x, gw_b),
                   MTCSEC_ERR_NOT_FOUND);
  /* Errors. */
  assert_int_equal(mtcsec_sqlite_relay_allow(f->st, gw_a, dev_a, "meters"),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_relay_allow(f->st, gw_a, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_relay_add(f->st, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

/* -------------------------------------------------------------- commit */

static void test_sqlite_state_of_unknown_device(void **state) {
  fx *f = *state;
  mtcsec_store_devstate ds;
  memset(&ds, 0xff, sizeof(ds));
  assert_int_equal(mtcsec_sqlite_ops.get_state(f->st, dev_x, &ds), 0);
  assert_int_equal(ds.window.top, 0);
  assert_int_equal(ds.window.bitmap, 0);
  assert_int_equal(ds.next_key_id, 0);
  assert_int_equal(mtcsec_sqlite_ops.get_state(f->st, NULL, &ds),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_sqlite_commit_replay_in_batch(void **state) {
  fx *f = *state;
  mtcsec_store_txn t[4];
  mtcsec_store_devstate ds;
  int res[4];
  collect c;

  add_devices(f);
  t[0] = make_txn(dev_a, 10, 0);
  t[1] = make_txn(dev_a, 10, 1); /* replays t[0] in the same batch */
  t[2] = make_txn(dev_b, 10, 0); /* other device, same nonce: fine */
  t[3] = make_txn(dev_a, 9, 1);  /* below top, inside the window */
  memset(res, 0x7f, sizeof(res));
  assert_int_equal(commit(f, t, 4, res), 0);
  assert_int_equal(res[0], 0);
  assert_int_equal(res[1], MTCSEC_ERR_REPLAY);
  assert_int_equal(res[2], 0);
  assert_int_equal(res[3], 0);
  ds = get_state(f, dev_a);
  assert_int_equal(ds.window.top, 10);
  assert_int_equal(ds.window.bitmap, 3);
  assert_int_equal(ds.next_key_id, 2);
  ds = get_state(f, dev_b);
  assert_int_equal(ds.window.top, 10);
  assert_int_equal(ds.next_key_id, 1);
  /* Three sessions, newest first; the replayed one is not recorded. */
  memset(&c, 0, sizeof(c));
  assert_int_equal(
    mtcsec_sqlite_session_foreach(f->st, NULL, 0, collect_session, &c), 0);
  assert_int_equal(c.n, 3);
  assert_memory_equal(c.s[0].rec.mtcd_id, dev_a, 8);
  assert_int_equal(c.s[0].rec.key_id, 1);
  assert_int_equal(mtcsec_get_u64(c.s[0].rec.mtcd_nonce), 9);
  assert_memory_equal(c.s[1].rec.mtcd_id, dev_b, 8);
  assert_memory_equal(c.s[2].rec.mtcd_id, dev_a, 8);
  assert_int_equal(c.s[2].rec.key_id, 0);
  assert_true(c.s[0].id > c.s[1].id && c.s[1].id > c.s[2].id);
  assert_int_equal(count_sessions(f, dev_a), 2);
  assert_int_equal(count_sessions(f, dev_b), 1);
  assert_int_equal(count_sessions(f, dev_x), 0);
  /* The full record round-trips. */
  assert_memory_equal(&c.s[0].rec, &t[3].session, sizeof(t[3].session));
  assert_false(c.s[0].revoked);
  assert_true(llabs(c.s[0].issued_unix - (int64_t)time(NULL)) < 60);
  /* A later batch sees the committed window. */
  t[0] = make_txn(dev_a, 10, 5);
  t[1] = make_txn(dev_a, 11, 5);
  assert_int_equal(commit(f, t, 2, res), 0);
  assert_int_equal(res[0], MTCSEC_ERR_REPLAY);
  assert_int_equal(res[1], 0);
  assert_int_equal(get_state(f, dev_a).next_key_id, 6);
  {
    mtcsec_sqlite_devinfo di;
    assert_int_equal(mtcsec_sqlite_device_get(f->st, dev_a, &di), 0);
    assert_int_equal(di.sessions, 3);
    assert_int_equal(di.window.top, 11);
    assert_int_equal(di.window.bitmap, 7);
  }
}

static void test_sqlite_commit_window_edges(void **state) {
  fx *f = *state;
  mtcsec_store_txn t[6];
  mtcsec_store_devstate ds;
  int res[6];

  /* Nonce 0 first; then a jump of 64 drops it; the top near 2^64 survives
   * the signed INTEGER column; key ids wrap. */
  t[0] = make_txn(dev_a, 0, 0xffff);
  t[1] = make_txn(dev_a, 64, 0);
  t[2] = make_txn(dev_a, 0, 1);
  t[3] = make_txn(dev_a, UINT64_MAX - 1, 1);
  t[4] = make_txn(dev_a, UINT64_MAX, 2);
  t[5] = make_txn(dev_a, UINT64_MAX - 64, 3);
  assert_int_equal(commit(f, t, 3, res), 0);
  assert_int_equal(res[0], 0);
  assert_int_equal(res[1], 0);
  assert_int_equal(res[2], MTCSEC_ERR_REPLAY);
  assert_int_equal(commit(f, t + 3, 3, res), 0);
  assert_int_equal(res[0], 0);
  assert_int_equal(res[1], 0);
  assert_int_equal(res[2], MTCSEC_ERR_REPLAY);
  reopen(f, sfx_kek, 0);
  ds = get_state(f, dev_a);
  assert_int_equal(ds.window.top, UINT64_MAX);
  assert_int_equal(ds.window.bitmap, 3);
  assert_int_equal(ds.next_key_id, 3);
  assert_true(sfx_int(mtcsec_sqlite_db(f->st), "SELECT top FROM devstate") ==
              -1);
  {
    collect c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(
      mtcsec_sqlite_session_foreach(f->st, dev_a, 1, collect_session, &c), 0);
    assert_int_equal(c.n, 1); /* limit */
    assert_int_equal(c.s[0].rec.issued_at, 1000 + UINT64_MAX);
  }
  /* Degenerate calls. */
  assert_int_equal(mtcsec_sqlite_ops.commit(f->st, NULL, 0, NULL), 0);
  assert_int_equal(mtcsec_sqlite_ops.commit(f->st, NULL, 1, res),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  {
    mtcsec_store_txn *p[1] = {NULL};
    assert_int_equal(mtcsec_sqlite_ops.commit(f->st, p, 1, res),
                     MTCSEC_ERR_INVALID_ARGUMENT);
  }
}

static void test_sqlite_commit_path(void **state) {
  fx *f = *state;
  mtcsec_store_txn t = make_txn(dev_a, 5, 0);
  collect c;
  int res[1];

  t.session.npath = 2;
  memcpy(t.session.path, gw_a, 8);
  memcpy(t.session.path + 8, gw_b, 8);
  assert_int_equal(commit(f, &t, 1, res), 0);
  memset(&c, 0, sizeof(c));
  assert_int_equal(
    mtcsec_sqlite_session_foreach(f->st, NULL, 0, collect_session, &c), 0);
  assert_int_equal(c.n, 1);
  assert_int_equal(c.s[0].rec.npath, 2);
  assert_memory_equal(c.s[0].rec.path, t.session.path, 16);
  /* More relays than a PATH can name. */
  t = make_txn(dev_a, 6, 1);
  t.session.npath = MTCSEC_MAX_PATH + 1;
  assert_int_equal(commit(f, &t, 1, res), MTCSEC_ERR_INVALID_ARGUMENT);
}

/* The batch before and after a failure: same window, same sessions. */
static void assert_unchanged(fx *f, uint64_t top, uint64_t bitmap,
                             size_t nsessions) {
  mtcsec_store_devstate ds = get_state(f, dev_a);
  assert_int_equal(ds.window.top, top);
  assert_int_equal(ds.window.bitmap, bitmap);
  assert_int_equal(count_sessions(f, NULL), nsessions);
  assert_int_equal(get_state(f, dev_b).window.bitmap, 0);
}

static void test_sqlite_commit_failure_writes_nothing(void **state) {
  fx *f = *state;
  mtcsec_store_txn t[3];
  int res[3];

  t[0] = make_txn(dev_a, 1, 0);
  assert_int_equal(commit(f, t, 1, res), 0);
  /* The third transaction's session insert fails, after two window
   * updates and a session insert of the same batch. */
  sfx_exec(f->db, "CREATE TRIGGER inject BEFORE INSERT ON session "
                  "WHEN NEW.key_id = 77 BEGIN SELECT RAISE(ABORT, "
                  "'injected failure'); END;");
  t[0] = make_txn(dev_a, 2, 1);
  t[1] = make_txn(dev_b, 2, 1);
  t[2] = make_txn(dev_a, 3, 77);
  assert_int_equal(commit(f, t, 3, res), MTCSEC_ERR_STORE);
  assert_int_equal(res[0], MTCSEC_ERR_STORE);
  assert_int_equal(res[1], MTCSEC_ERR_STORE);
  assert_int_equal(res[2], MTCSEC_ERR_STORE);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "injected failure"));
  assert_unchanged(f, 1, 1, 1);
  assert_int_equal(get_state(f, dev_a).next_key_id, 1);
  assert_true(sqlite3_get_autocommit(mtcsec_sqlite_db(f->st)));
  /* The handle stays usable: the same batch without the poisoned one. */
  assert_int_equal(commit(f, t, 2, res), 0);
  assert_int_equal(res[0], 0);
  assert_int_equal(res[1], 0);
  assert_int_equal(count_sessions(f, NULL), 3);
}

static void test_sqlite_commit_disk_full(void **state) {
  fx *f = *state;
  sqlite3 *db = mtcsec_sqlite_db(f->st);
  mtcsec_store_txn *t = calloc(256, sizeof(*t));
  char sql[64];
  int res[256];
  size_t i;

  assert_non_null(t);
  add_devices(f);
  t[0] = make_txn(dev_a, 1, 0);
  assert_int_equal(commit(f, t, 1, res), 0);
  /* Cap the file at its current size: the next growth is SQLITE_FULL, as
   * on a full disk. */
  snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
           (long long)sfx_int(db, "PRAGMA page_count"));
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  for (i = 0; i < 256; i++) {
    t[i] = make_txn(i % 2 ? dev_b : dev_a, 2 + i, (uint16_t)i);
    t[i].session.npath = MTCSEC_MAX_PATH;
    memset(t[i].session.path, (int)i, sizeof(t[i].session.path));
  }
  assert_int_equal(commit(f, t, 256, res), MTCSEC_ERR_STORE);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "full"));
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "free space"));
  assert_true(sqlite3_get_autocommit(db));
  assert_unchanged(f, 1, 1, 1);
  {
    sqlite3_stmt *s = NULL;
    assert_int_equal(
      sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL),
      SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
  }
  /* Space again: the same batch goes through. */
  assert_int_equal(
    sqlite3_exec(db, "PRAGMA max_page_count = 1000000", NULL, NULL, NULL),
    SQLITE_OK);
  assert_int_equal(commit(f, t, 256, res), 0);
  for (i = 0; i < 256; i++) {
    assert_int_equal(res[i], 0);
  }
  assert_int_equal(count_sessions(f, NULL), 257);
  free(t);
}

static void test_sqlite_commit_busy(void **state) {
  fx *f = *state;
  mtcsec_store_txn t = make_txn(dev_a, 1, 0);
  sqlite3 *other = NULL;
  int res[1];

  /* Another process holds the write lock past the busy timeout. */
  sqlite3_busy_timeout(mtcsec_sqlite_db(f->st), 50);
  assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
  assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                   SQLITE_OK);
  assert_int_equal(commit(f, &t, 1, res), MTCSEC_ERR_STORE);
  assert_non_null(strstr(mtcsec_sqlite_errmsg(f->st), "lock"));
  /* Readers are not blocked (WAL). */
  assert_int_equal(get_state(f, dev_a).window.bitmap, 0);
  assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(other);
  assert_int_equal(commit(f, &t, 1, res), 0);
  assert_int_equal(res[0], 0);
}

static void test_sqlite_durable_across_reopen(void **state) {
  fx *f = *state;
  mtcsec_store_txn t[3];
  mtcsec_store_devstate ds;
  int res[3];

  add_devices(f);
  assert_int_equal(
    mtcsec_sqlite_grant_set(f->st, ue_a, dev_a, NULL, 3, 60, 0, 0), 0);
  t[0] = make_txn(dev_a, 100, 4);
  t[1] = make_txn(dev_a, 98, 5);
  t[2] = make_txn(dev_b, 7, 0);
  assert_int_equal(commit(f, t, 3, res), 0);
  /* Close without checkpoint as a crash would (the WAL is the record). */
  reopen(f, sfx_kek, 0);
  ds = get_state(f, dev_a);
  assert_int_equal(ds.window.top, 100);
  assert_int_equal(ds.window.bitmap, 5);
  assert_int_equal(ds.next_key_id, 6);
  assert_int_equal(get_state(f, dev_b).window.top, 7);
  assert_int_equal(count_sessions(f, dev_a), 2);
  assert_int_equal(count_sessions(f, dev_b), 1);
  /* The durable window still refuses the replays. */
  assert_int_equal(commit(f, t, 3, res), 0);
  assert_int_equal(res[0], MTCSEC_ERR_REPLAY);
  assert_int_equal(res[1], MTCSEC_ERR_REPLAY);
  assert_int_equal(res[2], MTCSEC_ERR_REPLAY);
  {
    mtcsec_store_grant g;
    assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g), 0);
  }
}

/* A second handle (another worker) sees the committer's writes. */
static void test_sqlite_two_handles(void **state) {
  fx *f = *state;
  mtcsec_sqlite *reader = sfx_open(f->db, sfx_kek, 0);
  mtcsec_store_txn t = make_txn(dev_a, 42, 0);
  mtcsec_store_devstate ds;
  mtcsec_store_device d;
  int res[1];

  add_devices(f);
  assert_int_equal(mtcsec_sqlite_ops.get_device(reader, dev_a, &d), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_state(reader, dev_a, &ds), 0);
  assert_int_equal(ds.window.bitmap, 0);
  assert_int_equal(commit(f, &t, 1, res), 0);
  assert_int_equal(mtcsec_sqlite_ops.get_state(reader, dev_a, &ds), 0);
  assert_int_equal(ds.window.top, 42);
  mtcsec_sqlite_close(reader);
}

/* The hot path prepares nothing: the set of statements stays the same. */
static void test_sqlite_statements_cached(void **state) {
  fx *f = *state;
  sqlite3 *db = mtcsec_sqlite_db(f->st);
  sqlite3_stmt *before[64], *s;
  size_t n = 0, i, m;
  mtcsec_store_device d;
  mtcsec_store_devstate ds;
  mtcsec_store_grant g;

  add_devices(f);
  for (s = sqlite3_next_stmt(db, NULL); s != NULL;
       s = sqlite3_next_stmt(db, s)) {
    assert_true(n < 64);
    before[n++] = s;
  }
  assert_true(n > 0);
  for (i = 0; i < 20; i++) {
    mtcsec_store_txn t = make_txn(dev_a, i, (uint16_t)i);
    int res[1];
    (void)mtcsec_sqlite_ops.get_device(f->st, dev_a, &d);
    (void)mtcsec_sqlite_ops.get_state(f->st, dev_a, &ds);
    (void)mtcsec_sqlite_ops.get_grant(f->st, dev_a, ue_a, &g);
    (void)mtcsec_sqlite_ops.relay_allowed(f->st, dev_a, gw_a);
    assert_int_equal(commit(f, &t, 1, res), 0);
  }
  m = 0;
  for (s = sqlite3_next_stmt(db, NULL); s != NULL;
       s = sqlite3_next_stmt(db, s)) {
    int found = 0;
    for (i = 0; i < n; i++) {
      found |= before[i] == s;
    }
    assert_true(found);
    /* and none is left mid-step (no read transaction pinned). */
    assert_false(sqlite3_stmt_busy(s));
    m++;
  }
  assert_int_equal(m, n);
}

/* ---------------------------------------------------------- revocation */

static void test_sqlite_session_revoke(void **state) {
  fx *f = *state;
  static const uint8_t suites[2] = {1, 3};
  const uint8_t *ids[2] = {dev_a, dev_b};
  uint8_t msg[128], ka[MTCSEC_MAX_KEY_LEN], kd[MTCSEC_MAX_KEY_LEN];
  mtcsec_store_txn t[2];
  mtcsec_revoke rv;
  collect c;
  int res[2];
  size_t i;

  add_devices(f);
  t[0] = make_txn(dev_a, 1234, 17);
  t[1] = make_txn(dev_b, 99, 3);
  assert_int_equal(commit(f, t, 2, res), 0);
  memset(&c, 0, sizeof(c));
  assert_int_equal(
    mtcsec_sqlite_session_foreach(f->st, NULL, 0, collect_session, &c), 0);
  assert_int_equal(c.n, 2);
  for (i = 0; i < 2; i++) {
    const mtcsec_sqlite_session *s = &c.s[1 - i]; /* newest first */
    const mtcsec_suite_params *sp = mtcsec_suite_get(suites[i]);
    mtcsec_ssize n;
    assert_memory_equal(s->rec.mtcd_id, ids[i], 8);
    /* Too small: NOBUF and not marked. */
    assert_int_equal(mtcsec_sqlite_session_revoke(f->st, s->id, msg, 10),
                     MTCSEC_ERR_NOBUF);
    n = mtcsec_sqlite_session_revoke(f->st, s->id, msg, sizeof(msg));
    assert_int_equal(n, MTCSEC_REVOKE_FIXED_LEN + sp->miclen);
    assert_int_equal(mtcsec_revoke_decode(&rv, msg, (size_t)n, sp->miclen), 0);
    assert_memory_equal(rv.mtcs_id, mtcs_id, 8);
    assert_memory_equal(rv.mtcd_id, ids[i], 8);
    assert_int_equal(rv.key_id, t[i].session.key_id);
    assert_memory_equal(rv.mtcd_nonce, t[i].session.mtcd_nonce, 8);
    expected_keys(ids[i], suites[i], ka, kd);
    assert_int_equal(
      mtcsec_revoke_verify(&rv, msg, (size_t)n, th_openssl(), suites[i], ka),
      0);
    /* Not under K_dm. */
    assert_int_equal(
      mtcsec_revoke_verify(&rv, msg, (size_t)n, th_openssl(), suites[i], kd),
      MTCSEC_ERR_MIC);
  }
  memset(&c, 0, sizeof(c));
  assert_int_equal(
    mtcsec_sqlite_session_foreach(f->st, NULL, 0, collect_session, &c), 0);
  assert_true(c.s[0].revoked && c.s[1].revoked);
  /* Revoking again gives the same message. */
  {
    uint8_t again[128];
    mtcsec_ssize n1 =
      mtcsec_sqlite_session_revoke(f->st, c.s[0].id, msg, sizeof(msg));
    mtcsec_ssize n2 =
      mtcsec_sqlite_session_revoke(f->st, c.s[0].id, again, sizeof(again));
    assert_true(n1 > 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(msg, again, (size_t)n1);
  }
  assert_int_equal(mtcsec_sqlite_session_revoke(f->st, 999, msg, sizeof(msg)),
                   MTCSEC_ERR_NOT_FOUND);
}

static void test_sqlite_session_revoke_unmarked_on_nobuf(void **state) {
  fx *f = *state;
  mtcsec_store_txn t = make_txn(dev_a, 1, 0);
  uint8_t msg[8];
  collect c;
  int res[1];

  add_devices(f);
  assert_int_equal(commit(f, &t, 1, res), 0);
  assert_int_equal(mtcsec_sqlite_session_revoke(f->st, 1, msg, sizeof(msg)),
                   MTCSEC_ERR_NOBUF);
  memset(&c, 0, sizeof(c));
  assert_int_equal(
    mtcsec_sqlite_session_foreach(f->st, NULL, 0, collect_session, &c), 0);
  assert_false(c.s[0].revoked);
}

/* --------------------------------------------------------------- audit */

typedef struct auditlog {
  size_t n;
  char lines[4][160];
} auditlog;

static int collect_audit(void *ud, int64_t when, const char *who,
                         const char *action, const char *subject,
                         const char *detail) {
  auditlog *a = ud;
  assert_true(llabs(when - (int64_t)time(NULL)) < 60);
  if (a->n < 4) {
    snprintf(a->lines[a->n], sizeof(a->lines[0]), "%s|%s|%s|%s", who, action,
             subject, detail);
  }
  a->n++;
  return 0;
}

static void test_sqlite_audit(void **state) {
  fx *f = *state;
  auditlog a;

  memset(&a, 0, sizeof(a));
  assert_int_equal(mtcsec_sqlite_audit_foreach(f->st, collect_audit, &a), 0);
  assert_int_equal(a.n, 0);
  assert_int_equal(mtcsec_sqlite_audit(f->st, "alice", "device add",
                                       "d000000000000001", "suite 1"),
                   0);
  assert_int_equal(
    mtcsec_sqlite_audit(f->st, "bob", "grant", "e000000000000001", NULL), 0);
  assert_int_equal(mtcsec_sqlite_audit(f->st, "carol", "revoke", NULL, NULL),
                   0);
  reopen(f, sfx_kek, MTCSEC_SQLITE_READONLY);
  assert_int_equal(mtcsec_sqlite_audit_foreach(f->st, collect_audit, &a), 0);
  assert_int_equal(a.n, 3);
  assert_string_equal(a.lines[0], "alice|device add|d000000000000001|suite 1");
  assert_string_equal(a.lines[1], "bob|grant|e000000000000001|");
  assert_string_equal(a.lines[2], "carol|revoke||");
  assert_int_equal(mtcsec_sqlite_audit(f->st, "x", "y", NULL, NULL),
                   MTCSEC_ERR_STORE);
}

static void test_sqlite_null_arguments(void **state) {
  fx *f = *state;
  mtcsec_store_device d;
  mtcsec_store_grant g;
  assert_int_equal(mtcsec_sqlite_ops.get_device(NULL, dev_a, &d),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_ops.get_device(f->st, dev_a, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_ops.get_grant(f->st, NULL, ue_a, &g),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_ops.relay_allowed(f->st, dev_a, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_device_foreach(f->st, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_session_foreach(f->st, NULL, 0, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_sqlite_audit_foreach(NULL, collect_audit, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_non_null(mtcsec_sqlite_errmsg(NULL));
  mtcsec_sqlite_close(NULL);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
    T(test_sqlite_kek_load_modes),
    T(test_sqlite_kek_load_bad_content),
    T(test_sqlite_kek_create),
    T(test_sqlite_open_creates_wal_0600),
    T(test_sqlite_open_errors),
    T(test_sqlite_migrates_empty_file),
    T(test_sqlite_refuses_newer_schema),
    T(test_sqlite_readonly_handle),
    T(test_sqlite_device_add_get),
    T(test_sqlite_device_add_errors),
    T(test_sqlite_device_disable),
    T(test_sqlite_device_foreach),
    T(test_sqlite_keys_wrapped_at_rest),
    T(test_sqlite_wrong_kek),
    T(test_sqlite_swapped_key_rows),
    T(test_sqlite_grant_device),
    T(test_sqlite_grant_group_and_precedence),
    T(test_sqlite_grant_validity),
    T(test_sqlite_grant_errors),
    T(test_sqlite_relays),
    T(test_sqlite_state_of_unknown_device),
    T(test_sqlite_commit_replay_in_batch),
    T(test_sqlite_commit_window_edges),
    T(test_sqlite_commit_path),
    T(test_sqlite_commit_failure_writes_nothing),
    T(test_sqlite_commit_disk_full),
    T(test_sqlite_commit_busy),
    T(test_sqlite_durable_across_reopen),
    T(test_sqlite_two_handles),
    T(test_sqlite_statements_cached),
    T(test_sqlite_session_revoke),
    T(test_sqlite_session_revoke_unmarked_on_nobuf),
    T(test_sqlite_audit),
    T(test_sqlite_null_arguments),
  };
  int rv = cmocka_run_group_tests_name("store.sqlite", tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
