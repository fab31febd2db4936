/*
 * SQLite store (store_sqlite.h): opening and the ops table of store.h.  The
 * group commit and the nonce windows are in store_sqlite_log.c, the
 * administration calls in store_sqlite_admin.c, the schema in
 * store_sqlite_schema.c, the KEK in kek.c, the hot-path unwrap in
 * store_sqlite_unwrap.c.
 *
 * Same semantics as the in-memory store (store_mem.c), plus what memory
 * cannot give: durability, grants by device group with validity periods,
 * relays allowed by group, wrapped keys.
 *
 * Hot path: every statement is prepared once per handle (at open) and reset
 * right after use, so that no read transaction stays open between calls
 * (an open one would pin the WAL and hide other connections' commits).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mtcsec/store_sqlite.h>
#include <mtcsec/codec.h>

#include "core/util.h"
#include "store/sqlite_schema.h"

/* session_run.run in the statements below is id >> 14. */
#if SQ_RUN_BITS != 14
#  error "SQ_RUN_BITS changed: update the statements and the migration"
#endif

/* The busy timeout the header promises. */
#define SQ_BUSY_TIMEOUT_MS 5000

static const char *const sq_sql[SQ__COUNT] = {
  [SQ_BEGIN] = "BEGIN IMMEDIATE",
  [SQ_COMMIT] = "COMMIT",
  [SQ_ROLLBACK] = "ROLLBACK",
  [SQ_GET_DEVICE] = "SELECT suite, disabled, keys FROM device WHERE id = ?1",
  /* The devstate row alone (the committer, whose log state is exact). */
  [SQ_GET_STATE] = "SELECT top, bitmap, next_key_id, sessions, upto "
                   "FROM devstate WHERE id = ?1",
  /* The row and, in the same snapshot, the log's last session and folded
   * mark (store_sqlite_log.c decides whether the row is the whole state). */
  [SQ_GET_STATE_HEAD] =
    "SELECT (SELECT coalesce(max(id), 0) FROM session), l.folded, d.top, "
    "d.bitmap, d.next_key_id, d.sessions, d.upto FROM store_log l "
    "LEFT JOIN devstate d ON d.id = ?1",
  /* A device grant, when there is one, decides alone (validity included);
   * otherwise the grant of the device's group. */
  [SQ_GET_GRANT] =
    "SELECT perms, lifetime, not_before, not_after, 0 AS pri "
    "FROM grant_device WHERE device = ?1 AND ueid = ?2 "
    "UNION ALL "
    "SELECT g.perms, g.lifetime, g.not_before, g.not_after, 1 AS pri "
    "FROM device d JOIN grant_group g ON g.grp = d.grp AND g.ueid = ?2 "
    "WHERE d.id = ?1 "
    "ORDER BY pri LIMIT 1",
  /* Columns: suite, disabled, keys, then a device grant (present, perms,
   * lifetime, not_before, not_after), then the group grant, read only when
   * there is no device grant (same five). */
  [SQ_GET_DEVICE_GRANT] =
    "SELECT d.suite, d.disabled, d.keys, gd.device IS NOT NULL, gd.perms, "
    "gd.lifetime, gd.not_before, gd.not_after, gg.grp IS NOT NULL, gg.perms, "
    "gg.lifetime, gg.not_before, gg.not_after FROM device d "
    "LEFT JOIN grant_device gd ON gd.device = d.id AND gd.ueid = ?2 "
    "LEFT JOIN grant_group gg ON gd.device IS NULL AND gg.grp = d.grp "
    "AND gg.ueid = ?2 WHERE d.id = ?1",
  [SQ_RELAY_ALLOWED] =
    "SELECT 1 FROM relay_device WHERE device = ?1 AND gwid = ?2 "
    "UNION ALL "
    "SELECT 1 FROM device d JOIN relay_group r ON r.grp = d.grp "
    "AND r.gwid = ?2 WHERE d.id = ?1 LIMIT 1",
  /* A fold writes absolute values; never an older state over a newer. */
  [SQ_PUT_STATE] =
    "INSERT INTO devstate (id, top, bitmap, next_key_id, sessions, upto) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET "
    "top = excluded.top, bitmap = excluded.bitmap, "
    "next_key_id = excluded.next_key_id, sessions = excluded.sessions, "
    "upto = excluded.upto WHERE excluded.upto >= devstate.upto",
  [SQ_PUT_SESSION] =
    "INSERT INTO session (mtcd_id, ueid, mtcd_nonce, mtcs_nonce, suite, "
    "perms, key_id, lifetime, issued_at, issued_unix, path) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
  [SQ_DEVICE_ADD] =
    "INSERT INTO device (id, mtcs_id, suite, disabled, label, grp, created, "
    "keys) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7)",
  [SQ_DEVICE_DISABLE] = "UPDATE device SET disabled = ?2 WHERE id = ?1",
  [SQ_DEVICE_INFO] = SQ_DEVINFO_SQL " WHERE d.id = ?1",
  [SQ_GRANT_SET_DEVICE] =
    "INSERT INTO grant_device (device, ueid, perms, lifetime, not_before, "
    "not_after, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT (device, ueid) DO UPDATE SET perms = excluded.perms, "
    "lifetime = excluded.lifetime, not_before = excluded.not_before, "
    "not_after = excluded.not_after, created = excluded.created",
  [SQ_GRANT_SET_GROUP] =
    "INSERT INTO grant_group (grp, ueid, perms, lifetime, not_before, "
    "not_after, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT (grp, ueid) DO UPDATE SET perms = excluded.perms, "
    "lifetime = excluded.lifetime, not_before = excluded.not_before, "
    "not_after = excluded.not_after, created = excluded.created",
  [SQ_GRANT_DEL_DEVICE] =
    "DELETE FROM grant_device WHERE device = ?1 AND ueid = ?2",
  [SQ_GRANT_DEL_GROUP] = "DELETE FROM grant_group WHERE grp = ?1 AND ueid = ?2",
  [SQ_RELAY_ADD] = "INSERT INTO relay (id, label, created) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (id) DO UPDATE SET label = excluded.label",
  [SQ_RELAY_EXISTS] = "SELECT 1 FROM relay WHERE id = ?1",
  [SQ_RELAY_ALLOW_DEVICE] = "INSERT OR IGNORE INTO relay_device (device, "
                            "gwid, created) VALUES (?1, ?2, ?3)",
  [SQ_RELAY_ALLOW_GROUP] = "INSERT OR IGNORE INTO relay_group (grp, gwid, "
                           "created) VALUES (?1, ?2, ?3)",
  [SQ_SESSION_GET] =
    "SELECT s.mtcd_id, s.key_id, s.mtcd_nonce, d.suite, d.keys, d.mtcs_id "
    "FROM session s JOIN device d ON d.id = s.mtcd_id WHERE s.id = ?1",
  [SQ_SESSION_MARK] =
    "UPDATE session SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
  [SQ_AUDIT_ADD] = "INSERT INTO audit (at, who, action, subject, detail) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)",
  /* The session log (store_sqlite_log.c). */
  [SQ_LOG_HEAD] = "SELECT (SELECT coalesce(max(id), 0) FROM session), "
                  "folded, indexed, fold_rows FROM store_log",
  [SQ_LOG_TAIL] = "SELECT id, mtcd_id, mtcd_nonce, key_id FROM session "
                  "WHERE id > ?1 ORDER BY id",
  [SQ_LOG_TAIL_DEV] = "SELECT id, mtcd_nonce, key_id FROM session "
                      "WHERE id > ?1 AND mtcd_id = ?2 ORDER BY id",
  [SQ_LOG_SET_FOLDED] = "UPDATE store_log SET folded = max(folded, ?1)",
  [SQ_LOG_INDEX] =
    "INSERT OR IGNORE INTO session_run (run, mtcd_id, id) "
    "SELECT id >> 14, mtcd_id, id FROM session WHERE id > ?1 AND id <= ?2 "
    "ORDER BY 1, 2, 3",
  [SQ_LOG_SET_INDEXED] = "UPDATE store_log SET indexed = max(indexed, ?1)",
  /* The fold work of a commit, after its appends: given up alone when it
   * does not fit (store_sqlite_log.c). */
  [SQ_FOLD_SAVEPOINT] = "SAVEPOINT fold",
  [SQ_FOLD_RELEASE] = "RELEASE fold",
  [SQ_FOLD_ROLLBACK_TO] = "ROLLBACK TO fold",
};

/* ------------------------------------------------------------ helpers */

int64_t mtcsec_sq_now(void) { return (int64_t)time(NULL); }

int64_t mtcsec_sq_u64_to_i64(uint64_t v) {
  if (v <= (uint64_t)INT64_MAX) {
    return (int64_t)v;
  }
  return -(int64_t)(UINT64_MAX - v) - 1;
}

uint64_t mtcsec_sq_i64_to_u64(int64_t v) {
  if (v >= 0) {
    return (uint64_t)v;
  }
  return UINT64_MAX - (uint64_t)(-(v + 1));
}

int mtcsec_sq_errf(mtcsec_sqlite *st, int rv, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->err, sizeof(st->err), fmt, ap);
  va_end(ap);
  return rv;
}

int mtcsec_sq_fail(mtcsec_sqlite *st, int rc, const char *what) {
  const char *hint = "";
  switch (rc & 0xff) {
  case SQLITE_FULL:
    hint = "; the disk (or the database's size limit) is full: free space "
           "and retry; nothing of this operation was written";
    break;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    hint = "; another connection held the database lock longer than the "
           "busy timeout: is a second mtcsd or a long admin command "
           "running on it?";
    break;
  case SQLITE_READONLY:
    hint = (st->flags & MTCSEC_SQLITE_READONLY) != 0
             ? "; this handle was opened read-only"
             : "; the database is read-only: check the permissions of the "
               "file and of its directory (the -wal and -shm files live "
               "next to it)";
    break;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    hint = "; the database file is damaged: restore it from a backup";
    break;
  case SQLITE_IOERR:
    hint = "; an I/O error: check the disk and the kernel log";
    break;
  case SQLITE_CANTOPEN:
    hint = "; check the path and the permissions of the file and its "
           "directory";
    break;
  default:
    break;
  }
  return mtcsec_sq_errf(
    st, MTCSEC_ERR_STORE, "sqlite store: %s failed: %s%s", what,
    st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc), hint);
}

sqlite3_stmt *mtcsec_sq_stmt(mtcsec_sqlite *st, sq_stmt_id id) {
  int rc;
  if (st->stmts[id] != NULL) {
    return st->stmts[id];
  }
  rc = sqlite3_prepare_v3(st->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                          &st->stmts[id], NULL);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(st->stmts[id]);
    st->stmts[id] = NULL;
    (void)mtcsec_sq_fail(st, rc, "preparing a statement");
    return NULL;
  }
  return st->stmts[id];
}

int mtcsec_sq_exec(mtcsec_sqlite *st, sq_stmt_id id) {
  sqlite3_stmt *s = mtcsec_sq_stmt(st, id);
  int rc;
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) {
    return mtcsec_sq_fail(st, rc, sq_sql[id]);
  }
  return 0;
}

void mtcsec_sq_rollback(mtcsec_sqlite *st) {
  sqlite3_stmt *s;
  /* Some errors (SQLITE_FULL, IOERR) already rolled back by themselves. */
  if (st->db == NULL || sqlite3_get_autocommit(st->db)) {
    return;
  }
  s = st->stmts[SQ_ROLLBACK];
  if (s != NULL) {
    (void)sqlite3_step(s);
    sqlite3_reset(s);
  }
  if (!sqlite3_get_autocommit(st->db)) {
    (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
  }
}

int mtcsec_sq_unwrap_device(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                            uint8_t suite, const uint8_t *wrapped,
                            size_t wrappedlen, mtcsec_store_device *out) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  uint8_t
    plain[MTCSEC_KEK_WRAP_LEN(MTCSEC_ID_LEN + 1 + 2 * MTCSEC_MAX_KEY_LEN)];
  char hex[17];
  mtcsec_ssize n;
  int rv = MTCSEC_ERR_STORE;

  mtcsec_id_hex(hex, id);
  if (sp == NULL) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: device %s has suite %u, which this "
                          "build does not support",
                          hex, (unsigned)suite);
  }
  if (wrapped == NULL || wrappedlen > sizeof(plain)) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: the wrapped keys of device %s are "
                          "damaged (%zu bytes); re-provision the device",
                          hex, wrappedlen);
  }
  n = mtcsec_sq_unwrap(st->unwrap, wrapped, wrappedlen, plain, sizeof(plain));
  if (n == MTCSEC_ERR_MIC) {
    rv = mtcsec_sq_errf(
      st, MTCSEC_ERR_STORE,
      "sqlite store: the keys of device %s do not unwrap under this KEK: "
      "the kek file is not the one the database was provisioned with (or "
      "the row was altered); restore the right kek file",
      hex);
    goto cleanup;
  }
  if (n < 0) {
    rv = mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                        "sqlite store: unwrapping the keys of device %s "
                        "failed in the crypto library (%s)",
                        hex, mtcsec_errname((int)n));
    goto cleanup;
  }
  /* The plaintext names its device and suite: a row whose keys were copied
   * from another device is refused. */
  if ((size_t)n != MTCSEC_ID_LEN + 1 + 2 * (size_t)sp->keylen ||
      memcmp(plain, id, MTCSEC_ID_LEN) != 0 || plain[MTCSEC_ID_LEN] != suite) {
    rv = mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                        "sqlite store: the wrapped keys stored for device %s "
                        "belong to another device or suite (the row was "
                        "altered); re-provision the device",
                        hex);
    goto cleanup;
  }
  out->suite = suite;
  memcpy(out->k_auth, plain + MTCSEC_ID_LEN + 1, sp->keylen);
  memcpy(out->k_dm, plain + MTCSEC_ID_LEN + 1 + sp->keylen, sp->keylen);
  rv = 0;

cleanup:
  mtcsec_zeroize(plain, sizeof(plain));
  return rv;
}

/* Binds an 8-byte ID (the caller's buffer outlives the step). */
static int sq_bind_id(sqlite3_stmt *s, int i, const uint8_t *id) {
  return sqlite3_bind_blob(s, i, id, MTCSEC_ID_LEN, SQLITE_STATIC);
}

/* ---------------------------------------------------------------- ops */

/* Steps s (bound; its first columns are suite, disabled, wrapped keys) and
 * reads the device row of id into dev: NOT_FOUND, a store error or the
 * unwrap's result.  When it returns 0, s is on the row for more columns.
 * The caller resets s in every case. */
static int sq_device_step(mtcsec_sqlite *st, sqlite3_stmt *s,
                          const uint8_t id[MTCSEC_ID_LEN],
                          mtcsec_store_device *dev) {
  int rc = sqlite3_step(s), rv;
  if (rc == SQLITE_DONE) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  if (rc != SQLITE_ROW) {
    return mtcsec_sq_fail(st, rc, "reading a device");
  }
  memset(dev, 0, sizeof(*dev));
  rv = mtcsec_sq_unwrap_device(st, id, (uint8_t)sqlite3_column_int(s, 0),
                               sqlite3_column_blob(s, 2),
                               (size_t)sqlite3_column_bytes(s, 2), dev);
  dev->disabled = (uint8_t)(sqlite3_column_int(s, 1) != 0);
  return rv;
}

static int sq_get_device(void *vst, const uint8_t id[MTCSEC_ID_LEN],
                         mtcsec_store_device *out) {
  mtcsec_sqlite *st = vst;
  mtcsec_store_device dev;
  sqlite3_stmt *s;
  int rv;

  if (st == NULL || id == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = mtcsec_sq_stmt(st, SQ_GET_DEVICE);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sq_bind_id(s, 1, id);
  rv = sq_device_step(st, s, id, &dev);
  sqlite3_reset(s);
  if (rv == 0) {
    memcpy(out, &dev, sizeof(dev));
  }
  mtcsec_zeroize(&dev, sizeof(dev));
  return rv;
}

/* The durable window of id: its devstate row and what the session log
 * holds beyond it (store_sqlite_log.c); empty for a device never seen. */
static int sq_get_state(void *vst, const uint8_t id[MTCSEC_ID_LEN],
                        mtcsec_store_devstate *out) {
  if (vst == NULL || id == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  return mtcsec_sq_log_state(vst, id, out, NULL);
}

/* [not_before, not_after) in unix seconds; 0 = unbounded. */
static int sq_valid_now(int64_t now, int64_t not_before, int64_t not_after) {
  return (not_before == 0 || now >= not_before) &&
         (not_after == 0 || now < not_after);
}

/* A grant in columns c (perms), c+1 (lifetime), c+2 (not_before), c+3
 * (not_after) of a row: 0, NOT_FOUND (outside its validity period) or
 * STORE (a damaged row). */
static int sq_grant_cols(mtcsec_sqlite *st, sqlite3_stmt *s, int c,
                         mtcsec_store_grant *out) {
  int64_t perms, lifetime;
  if (!sq_valid_now(mtcsec_sq_now(), sqlite3_column_int64(s, c + 2),
                    sqlite3_column_int64(s, c + 3))) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  perms = sqlite3_column_int64(s, c);
  lifetime = sqlite3_column_int64(s, c + 1);
  if (perms < 0 || perms > UINT8_MAX || lifetime < 0 || lifetime > UINT32_MAX) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: a grant row is damaged (perms or "
                          "lifetime out of range); set the grant again");
  }
  out->perms = (uint8_t)perms;
  out->lifetime = (uint32_t)lifetime;
  return 0;
}

static int sq_get_grant(void *vst, const uint8_t dev[MTCSEC_ID_LEN],
                        const uint8_t ue[MTCSEC_ID_LEN],
                        mtcsec_store_grant *out) {
  mtcsec_sqlite *st = vst;
  sqlite3_stmt *s;
  int rc, rv;

  if (st == NULL || dev == NULL || ue == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = mtcsec_sq_stmt(st, SQ_GET_GRANT);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sq_bind_id(s, 1, dev);
  sq_bind_id(s, 2, ue);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    rv = MTCSEC_ERR_NOT_FOUND;
  } else if (rc != SQLITE_ROW) {
    rv = mtcsec_sq_fail(st, rc, "reading a grant");
  } else {
    rv = sq_grant_cols(st, s, 0, out);
  }
  sqlite3_reset(s);
  return rv;
}

/* get_device and get_grant in one statement (one read transaction): the
 * device row, its device grant for ue and, when there is none, the grant
 * of its group (SQ_GET_DEVICE_GRANT). */
static int sq_get_device_grant(void *vst, const uint8_t dev[MTCSEC_ID_LEN],
                               const uint8_t ue[MTCSEC_ID_LEN],
                               mtcsec_store_device *out,
                               mtcsec_store_grant *grant, int *grant_rv) {
  mtcsec_sqlite *st = vst;
  mtcsec_store_device d;
  sqlite3_stmt *s;
  int rv;

  if (st == NULL || dev == NULL || ue == NULL || out == NULL || grant == NULL ||
      grant_rv == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = mtcsec_sq_stmt(st, SQ_GET_DEVICE_GRANT);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sq_bind_id(s, 1, dev);
  sq_bind_id(s, 2, ue);
  rv = sq_device_step(st, s, dev, &d);
  if (rv == 0) {
    /* As SQ_GET_GRANT: a device grant decides alone, validity included. */
    if (sqlite3_column_int(s, 3) != 0) {
      *grant_rv = sq_grant_cols(st, s, 4, grant);
    } else if (sqlite3_column_int(s, 8) != 0) {
      *grant_rv = sq_grant_cols(st, s, 9, grant);
    } else {
      *grant_rv = MTCSEC_ERR_NOT_FOUND;
    }
    memcpy(out, &d, sizeof(d));
  }
  sqlite3_reset(s);
  mtcsec_zeroize(&d, sizeof(d));
  return rv;
}

static int sq_relay_allowed(void *vst, const uint8_t dev[MTCSEC_ID_LEN],
                            const uint8_t gw[MTCSEC_ID_LEN]) {
  mtcsec_sqlite *st = vst;
  sqlite3_stmt *s;
  int rc, rv;

  if (st == NULL || dev == NULL || gw == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = mtcsec_sq_stmt(st, SQ_RELAY_ALLOWED);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sq_bind_id(s, 1, dev);
  sq_bind_id(s, 2, gw);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    rv = 0;
  } else if (rc == SQLITE_DONE) {
    rv = MTCSEC_ERR_NOT_FOUND;
  } else {
    rv = mtcsec_sq_fail(st, rc, "reading allowed relays");
  }
  sqlite3_reset(s);
  return rv;
}

/*
 * Group commit: the whole batch in one IMMEDIATE transaction, made durable
 * by one COMMIT (WAL, synchronous=FULL: one fsync of the WAL per batch).
 * Each transaction is checked against the window as the batch has left it
 * and appends its session to the log (store_sqlite_log.c).  Any failure
 * rolls everything back, so the batch is all or nothing.  A transaction
 * whose nonce is not its session's mtcd_nonce is refused
 * (INVALID_ARGUMENT, nothing committed).
 */
static int sq_commit(void *vst, mtcsec_store_txn *const *txns, size_t n,
                     int *results) {
  size_t i;

  if (vst == NULL || (n != 0 && (txns == NULL || results == NULL))) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < n; i++) {
    /* The window is checked and updated with txn.nonce, and rebuilt from
     * the session's mtcd_nonce: they must be the same nonce. */
    if (txns[i] == NULL || txns[i]->session.npath > MTCSEC_MAX_PATH ||
        txns[i]->nonce != mtcsec_get_u64(txns[i]->session.mtcd_nonce)) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
  }
  if (n == 0) {
    /* Nothing to commit: fold what the log holds beyond the windows (a
     * daemon does this once at start-up, after a crash). */
    return mtcsec_sq_log_prepare(vst);
  }
  return mtcsec_sq_log_commit(vst, txns, n, results);
}

const mtcsec_store_ops mtcsec_sqlite_ops = {sq_get_device, sq_get_state,
                                            sq_get_grant,  sq_relay_allowed,
                                            sq_commit,     sq_get_device_grant};

/* -------------------------------------------------------- open / close */

/* One integer from a one-row statement, or SQLite's error code in *rc. */
static int64_t sq_pragma_int(sqlite3 *db, const char *sql, int *rc) {
  sqlite3_stmt *s = NULL;
  int64_t v = 0;
  *rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  if (*rc == SQLITE_OK) {
    *rc = sqlite3_step(s);
    if (*rc == SQLITE_ROW) {
      v = sqlite3_column_int64(s, 0);
      *rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(s);
  return v;
}

/* Creates the file 0600 (SQLite would use 0644). */
static int sq_create_file(mtcsec_sqlite *st, const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    (void)close(fd);
    return 0;
  }
  if (errno == EEXIST) {
    return 0;
  }
  return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                        "sqlite store: cannot create %s: %s; check the "
                        "directory's permissions",
                        path, strerror(errno));
}

/*
 * Process-wide, before SQLite's first use: no memory statistics.  With
 * them, every allocation of every connection takes one global mutex, and
 * the daemon's worker threads and committer contend on it.  Nothing in
 * mtcsec reads sqlite3_memory_used().  If SQLite is already initialized,
 * the call fails harmlessly and the default stays.
 */
static pthread_once_t sq_config_once = PTHREAD_ONCE_INIT;
static void sq_config(void) {
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sq_open(mtcsec_sqlite *st, const char *path) {
  char merr[sizeof(st->err)];
  int64_t appid, ver;
  int rc, oflags, latest = mtcsec_sqlite_schema_version(), i, rv;

  if ((st->flags & MTCSEC_SQLITE_CREATE) != 0) {
    rv = sq_create_file(st, path);
    if (rv != 0) {
      return rv;
    }
  }
  (void)pthread_once(&sq_config_once, sq_config);
  oflags = ((st->flags & MTCSEC_SQLITE_READONLY) != 0 ? SQLITE_OPEN_READONLY
                                                      : SQLITE_OPEN_READWRITE) |
           SQLITE_OPEN_NOMUTEX;
  rc = sqlite3_open_v2(path, &st->db, oflags, NULL);
  if (rc != SQLITE_OK) {
    return mtcsec_sq_errf(
      st, MTCSEC_ERR_STORE,
      "sqlite store: cannot open %s: %s; check the database setting (the "
      "file must exist unless it is created) and the permissions of the "
      "file and its directory",
      path, st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
  }
  sqlite3_busy_timeout(st->db, SQ_BUSY_TIMEOUT_MS);
#ifdef SQLITE_DBCONFIG_DEFENSIVE
  (void)sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
#endif
#ifdef SQLITE_DBCONFIG_TRUSTED_SCHEMA
  (void)sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
#endif
  /* The first read: a file that is not a database fails here. */
  appid = sq_pragma_int(st->db, "PRAGMA application_id", &rc);
  if (rc == SQLITE_OK) {
    ver = sq_pragma_int(st->db, "PRAGMA user_version", &rc);
  } else {
    ver = 0;
  }
  if (rc != SQLITE_OK) {
    if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT) {
      return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                            "sqlite store: %s is not an SQLite database (or "
                            "it is damaged); check the database setting or "
                            "restore it from a backup",
                            path);
    }
    return mtcsec_sq_fail(st, rc, "reading the schema version");
  }
  if (appid != 0 && appid != MTCSEC_SQLITE_APP_ID) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: %s belongs to another application "
                          "(application_id %lld), not to mtcsec; check the "
                          "database setting",
                          path, (long long)appid);
  }
  if (ver > latest) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: %s has schema version %lld, newer "
                          "than this build of mtcsec supports (%d); run the "
                          "newer mtcsec that wrote it (downgrades are not "
                          "supported)",
                          path, (long long)ver, latest);
  }
  if ((st->flags & MTCSEC_SQLITE_READONLY) != 0) {
    if (ver < latest) {
      return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                            "sqlite store: %s has schema version %lld but "
                            "this build needs %d; open it once read-write "
                            "(for example, start mtcsd) to migrate it",
                            path, (long long)ver, latest);
    }
  } else {
    char *emsg = NULL;
    sqlite3_stmt *s = NULL;
    /* WAL: readers never block the committer.  The mode is persistent. */
    rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(s);
    }
    if (rc != SQLITE_ROW ||
        sqlite3_stricmp((const char *)sqlite3_column_text(s, 0), "wal") != 0) {
      sqlite3_finalize(s);
      return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                            "sqlite store: cannot put %s in WAL mode (%s); "
                            "keep the database on a local file system",
                            path, sqlite3_errmsg(st->db));
    }
    sqlite3_finalize(s);
    /* FULL: a commit is on disk (WAL fsynced) when COMMIT returns. */
    rc = sqlite3_exec(st->db, "PRAGMA synchronous = FULL", NULL, NULL, &emsg);
    sqlite3_free(emsg);
    if (rc != SQLITE_OK) {
      return mtcsec_sq_fail(st, rc, "PRAGMA synchronous = FULL");
    }
    if (ver < latest &&
        mtcsec_sqlite_migrate(st->db, merr, sizeof(merr)) != 0) {
      return mtcsec_sq_errf(st, MTCSEC_ERR_STORE, "%s", merr);
    }
  }
  for (i = 0; i < SQ__COUNT; i++) {
    if (mtcsec_sq_stmt(st, (sq_stmt_id)i) == NULL) {
      return MTCSEC_ERR_STORE;
    }
  }
  return mtcsec_sq_log_attach(st, path);
}

int mtcsec_sqlite_open(mtcsec_sqlite **pst, const char *path,
                       const uint8_t kek[MTCSEC_KEK_LEN],
                       const mtcsec_crypto *crypto, int flags, char *err,
                       size_t errlen) {
  mtcsec_sqlite *st;
  int rv;

  if (err != NULL && errlen != 0) {
    err[0] = '\0';
  }
  if (pst != NULL) {
    *pst = NULL;
  }
  if (pst == NULL || path == NULL || kek == NULL || crypto == NULL ||
      crypto->ops == NULL ||
      (flags & ~(MTCSEC_SQLITE_CREATE | MTCSEC_SQLITE_READONLY)) != 0 ||
      ((flags & MTCSEC_SQLITE_CREATE) != 0 &&
       (flags & MTCSEC_SQLITE_READONLY) != 0)) {
    if (err != NULL && errlen != 0) {
      snprintf(err, errlen, "sqlite store: invalid arguments to open");
    }
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  st = calloc(1, sizeof(*st));
  if (st == NULL) {
    if (err != NULL && errlen != 0) {
      snprintf(err, errlen, "sqlite store: out of memory");
    }
    return MTCSEC_ERR_NOMEM;
  }
  st->crypto = crypto;
  st->flags = flags;
  rv = mtcsec_kek_ctx_new(&st->kek, kek);
  if (rv == 0) {
    rv = mtcsec_sq_unwrapper_new(&st->unwrap, kek);
  }
  if (rv != 0) {
    rv = mtcsec_sq_errf(st, rv == MTCSEC_ERR_NOMEM ? rv : MTCSEC_ERR_STORE,
                        "sqlite store: cannot set up AES key wrap "
                        "(id-aes256-wrap-pad) in OpenSSL");
  } else {
    rv = sq_open(st, path);
  }
  if (rv != 0) {
    if (err != NULL && errlen != 0) {
      snprintf(err, errlen, "%s", st->err);
    }
    mtcsec_sqlite_close(st);
    return rv;
  }
  *pst = st;
  return 0;
}

void mtcsec_sqlite_close(mtcsec_sqlite *st) {
  int i;
  if (st == NULL) {
    return;
  }
  if (st->db != NULL) {
    mtcsec_sq_rollback(st);
  }
  mtcsec_sq_log_detach(st);
  for (i = 0; i < SQ__COUNT; i++) {
    sqlite3_finalize(st->stmts[i]);
    st->stmts[i] = NULL;
  }
  if (st->db != NULL) {
    (void)sqlite3_close(st->db);
  }
  mtcsec_kek_ctx_del(st->kek); /* zeroizes the KEK */
  mtcsec_sq_unwrapper_del(st->unwrap);
  mtcsec_zeroize(st, sizeof(*st));
  free(st);
}

const char *mtcsec_sqlite_errmsg(const mtcsec_sqlite *st) {
  if (st == NULL) {
    return "sqlite store: no handle";
  }
  return st->err;
}

sqlite3 *mtcsec_sqlite_db(mtcsec_sqlite *st) {
  return st != NULL ? st->db : NULL;
}
