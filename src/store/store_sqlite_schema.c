/*
 * Schema of the SQLite store and its migrations.
 *
 * PRAGMA user_version is the number of migrations applied: migration i
 * (0-based) takes the database from version i to i + 1.  Migrations are
 * append-only: never edit one that has shipped, add a new one.  Each runs in
 * its own transaction together with its user_version update, so a crash
 * leaves the database at a whole version.
 *
 * Representation (see docs/STORE.md):
 *  - IDs and nonces are 8-byte BLOBs (big-endian, as on the wire).
 *  - 64-bit unsigned values (window top, the core's issued_at) are stored
 *    in INTEGER (signed 64-bit) bit for bit: values >= 2^63 read back as
 *    negative numbers in the sqlite3 shell.  The window bitmap is an 8-byte
 *    big-endian BLOB.
 *  - device.keys = RFC 5649 wrap, under the KEK, of
 *    MTCdID(8) || suite(1) || K_auth || K_dm.
 *  - Times are unix seconds (the store's wall clock), except
 *    session.issued_at (the server core's clock, ms).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/sqlite_schema.h"

static const char *const sq_migrations[] = {
  /* 0 -> 1: the initial schema. */
  "PRAGMA application_id = 1836344179;" /* MTCSEC_SQLITE_APP_ID */
  "CREATE TABLE device ("
  "  id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 8),"
  "  mtcs_id BLOB NOT NULL CHECK (length(mtcs_id) = 8),"
  "  suite INTEGER NOT NULL,"
  "  disabled INTEGER NOT NULL DEFAULT 0,"
  "  label TEXT NOT NULL DEFAULT '',"
  "  grp TEXT," /* NULL: in no group */
  "  created INTEGER NOT NULL,"
  "  keys BLOB NOT NULL"
  ") WITHOUT ROWID;"
  "CREATE INDEX device_grp ON device (grp) WHERE grp IS NOT NULL;"
  "CREATE TABLE devstate ("
  "  id BLOB PRIMARY KEY NOT NULL,"
  "  top INTEGER NOT NULL,"
  "  bitmap BLOB NOT NULL CHECK (length(bitmap) = 8),"
  "  next_key_id INTEGER NOT NULL,"
  "  sessions INTEGER NOT NULL DEFAULT 0"
  ") WITHOUT ROWID;"
  "CREATE TABLE grant_device ("
  "  device BLOB NOT NULL,"
  "  ueid BLOB NOT NULL,"
  "  perms INTEGER NOT NULL,"
  "  lifetime INTEGER NOT NULL,"
  "  not_before INTEGER NOT NULL," /* 0: unbounded */
  "  not_after INTEGER NOT NULL,"  /* 0: unbounded */
  "  created INTEGER NOT NULL,"
  "  PRIMARY KEY (device, ueid)"
  ") WITHOUT ROWID;"
  "CREATE TABLE grant_group ("
  "  grp TEXT NOT NULL,"
  "  ueid BLOB NOT NULL,"
  "  perms INTEGER NOT NULL,"
  "  lifetime INTEGER NOT NULL,"
  "  not_before INTEGER NOT NULL,"
  "  not_after INTEGER NOT NULL,"
  "  created INTEGER NOT NULL,"
  "  PRIMARY KEY (grp, ueid)"
  ") WITHOUT ROWID;"
  "CREATE TABLE relay ("
  "  id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 8),"
  "  label TEXT NOT NULL DEFAULT '',"
  "  created INTEGER NOT NULL"
  ") WITHOUT ROWID;"
  "CREATE TABLE relay_device ("
  "  device BLOB NOT NULL,"
  "  gwid BLOB NOT NULL REFERENCES relay (id),"
  "  created INTEGER NOT NULL,"
  "  PRIMARY KEY (device, gwid)"
  ") WITHOUT ROWID;"
  "CREATE TABLE relay_group ("
  "  grp TEXT NOT NULL,"
  "  gwid BLOB NOT NULL REFERENCES relay (id),"
  "  created INTEGER NOT NULL,"
  "  PRIMARY KEY (grp, gwid)"
  ") WITHOUT ROWID;"
  "CREATE TABLE session ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  mtcd_id BLOB NOT NULL,"
  "  ueid BLOB NOT NULL,"
  "  mtcd_nonce BLOB NOT NULL,"
  "  mtcs_nonce BLOB NOT NULL,"
  "  suite INTEGER NOT NULL,"
  "  perms INTEGER NOT NULL,"
  "  key_id INTEGER NOT NULL,"
  "  lifetime INTEGER NOT NULL,"
  "  issued_at INTEGER NOT NULL,"
  "  issued_unix INTEGER NOT NULL,"
  "  path BLOB NOT NULL," /* n x 8-byte relay IDs; empty when direct */
  "  revoked INTEGER"     /* unix seconds of the revocation, or NULL */
  ");"
  "CREATE INDEX session_device ON session (mtcd_id, id);"
  "CREATE TABLE audit ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  at INTEGER NOT NULL,"
  "  who TEXT NOT NULL,"
  "  action TEXT NOT NULL,"
  "  subject TEXT NOT NULL,"
  "  detail TEXT NOT NULL"
  ");",

  /* 1 -> 2: the session table is the log of accepted exchanges; devstate
   * rows and the per-device session index are folded from it in sorted
   * runs (store_sqlite_log.c), so that a commit appends instead of
   * updating two B-trees at random places.
   *  - devstate.upto: the id of the last session folded into the row.
   *  - session_run replaces the index session_device: (id >> 14, device,
   *    id), filled one run of 16384 sessions at a time, in key order.
   *  - store_log.folded: every session with an id <= folded is in its
   *    device's devstate row; store_log.indexed: every session with an
   *    id <= indexed is in session_run; store_log.fold_rows: a fold cycle
   *    starts once that many sessions are not folded (0: the default).
   * Version 1 updated devstate and the index in each commit, so both marks
   * start at the last session. */
  "DROP INDEX session_device;"
  "ALTER TABLE devstate ADD COLUMN upto INTEGER NOT NULL DEFAULT 0;"
  "CREATE TABLE session_run ("
  "  run INTEGER NOT NULL,"
  "  mtcd_id BLOB NOT NULL,"
  "  id INTEGER NOT NULL,"
  "  PRIMARY KEY (run, mtcd_id, id)"
  ") WITHOUT ROWID;"
  "INSERT INTO session_run (run, mtcd_id, id) "
  "  SELECT id >> 14, mtcd_id, id FROM session ORDER BY 1, 2, 3;"
  "CREATE TABLE store_log ("
  "  one INTEGER PRIMARY KEY CHECK (one = 1),"
  "  folded INTEGER NOT NULL,"
  "  indexed INTEGER NOT NULL,"
  "  fold_rows INTEGER NOT NULL DEFAULT 0"
  ");"
  "INSERT INTO store_log (one, folded, indexed) "
  "  SELECT 1, coalesce(max(id), 0), coalesce(max(id), 0) FROM session;",
};

#define SQ_NMIGRATIONS ((int)(sizeof(sq_migrations) / sizeof(sq_migrations[0])))

int mtcsec_sqlite_schema_version(void) { return SQ_NMIGRATIONS; }

static void mig_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

static void mig_errf(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errlen == 0) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* One integer from a one-row query; -1 on error. */
static int64_t mig_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *s = NULL;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    v = sqlite3_column_int64(s, 0);
  }
  sqlite3_finalize(s);
  return v;
}

int mtcsec_sqlite_migrate(sqlite3 *db, char *err, size_t errlen) {
  char sql[64];
  char *emsg = NULL;
  int64_t ver;
  int rc;

  for (;;) {
    /* IMMEDIATE: two processes opening a new database migrate it once. */
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &emsg);
    if (rc != SQLITE_OK) {
      mig_errf(err, errlen,
               "sqlite store: cannot start the schema migration: %s",
               emsg != NULL ? emsg : sqlite3_errstr(rc));
      sqlite3_free(emsg);
      return MTCSEC_ERR_STORE;
    }
    ver = mig_int(db, "PRAGMA user_version");
    if (ver < 0 || ver > SQ_NMIGRATIONS) {
      (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      mig_errf(err, errlen,
               "sqlite store: the database's schema version %lld is not "
               "one this build knows (1..%d); run a newer mtcsec",
               (long long)ver, SQ_NMIGRATIONS);
      return MTCSEC_ERR_STORE;
    }
    if (ver == SQ_NMIGRATIONS) {
      (void)sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
      return 0;
    }
    if (ver == 0 && mig_int(db, "SELECT count(*) FROM sqlite_master") != 0) {
      (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      mig_errf(err, errlen,
               "sqlite store: the database has tables but no mtcsec schema "
               "version: it is not an mtcsec database; check the path");
      return MTCSEC_ERR_STORE;
    }
    rc = sqlite3_exec(db, sq_migrations[ver], NULL, NULL, &emsg);
    if (rc == SQLITE_OK) {
      snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld",
               (long long)ver + 1);
      rc = sqlite3_exec(db, sql, NULL, NULL, &emsg);
    }
    if (rc == SQLITE_OK) {
      rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &emsg);
    }
    if (rc != SQLITE_OK) {
      mig_errf(err, errlen,
               "sqlite store: migrating the schema from version %lld to "
               "%lld failed: %s; the database is left at version %lld",
               (long long)ver, (long long)ver + 1,
               emsg != NULL ? emsg : sqlite3_errstr(rc), (long long)ver);
      sqlite3_free(emsg);
      if (!sqlite3_get_autocommit(db)) {
        (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      }
      return MTCSEC_ERR_STORE;
    }
  }
}
