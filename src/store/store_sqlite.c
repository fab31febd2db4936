/*
 * SQLite store (store_sqlite.h): opening, the ops table of store.h and the
 * group commit.  Administration calls are in store_sqlite_admin.c, the
 * schema in store_sqlite_schema.c, the KEK in kek.c.
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

/* The busy timeout the header promises. */
#define SQ_BUSY_TIMEOUT_MS 5000

static const char *const sq_sql[SQ__COUNT] = {
  [SQ_BEGIN] = "BEGIN IMMEDIATE",
  [SQ_COMMIT] = "COMMIT",
  [SQ_ROLLBACK] = "ROLLBACK",
  [SQ_GET_DEVICE] = "SELECT suite, disabled, keys FROM device WHERE id = ?1",
  [SQ_GET_STATE] =
    "SELECT top, bitmap, next_key_id FROM devstate WHERE id = ?1",
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
  [SQ_RELAY_ALLOWED] =
    "SELECT 1 FROM relay_device WHERE device = ?1 AND gwid = ?2 "
    "UNION ALL "
    "SELECT 1 FROM device d JOIN relay_group r ON r.grp = d.grp "
    "AND r.gwid = ?2 WHERE d.id = ?1 LIMIT 1",
  [SQ_PUT_STATE] =
    "INSERT INTO devstate (id, top, bitmap, next_key_id, sessions) "
    "VALUES (?1, ?2, ?3, ?4, 1) ON CONFLICT (id) DO UPDATE SET "
    "top = excluded.top, bitmap = excluded.bitmap, "
    "next_key_id = excluded.next_key_id, sessions = sessions + 1",
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
  n = mtcsec_kek_unwrap(st->kek, wrapped, wrappedlen, plain, sizeof(plain));
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

static int sq_get_device(void *vst, const uint8_t id[MTCSEC_ID_LEN],
                         mtcsec_store_device *out) {
  mtcsec_sqlite *st = vst;
  mtcsec_store_device dev;
  sqlite3_stmt *s;
  int rc, rv;

  if (st == NULL || id == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = mtcsec_sq_stmt(st, SQ_GET_DEVICE);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sq_bind_id(s, 1, id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(s);
    return MTCSEC_ERR_NOT_FOUND;
  }
  if (rc != SQLITE_ROW) {
    rv = mtcsec_sq_fail(st, rc, "reading a device");
    sqlite3_reset(s);
    return rv;
  }
  memset(&dev, 0, sizeof(dev));
  rv = mtcsec_sq_unwrap_device(st, id, (uint8_t)sqlite3_column_int(s, 0),
                               sqlite3_column_blob(s, 2),
                               (size_t)sqlite3_column_bytes(s, 2), &dev);
  dev.disabled = (uint8_t)(sqlite3_column_int(s, 1) != 0);
  sqlite3_reset(s);
  if (rv == 0) {
    memcpy(out, &dev, sizeof(dev));
  }
  mtcsec_zeroize(&dev, sizeof(dev));
  return rv;
}

/* The durable window of id; an empty one for a device never seen. */
static int sq_load_state(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                         mtcsec_store_devstate *out) {
  sqlite3_stmt *s = mtcsec_sq_stmt(st, SQ_GET_STATE);
  char hex[17];
  int rc, rv = 0;

  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  memset(out, 0, sizeof(*out));
  mtcsec_window_init(&out->window);
  sq_bind_id(s, 1, id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    int64_t kid = sqlite3_column_int64(s, 2);
    if (sqlite3_column_bytes(s, 1) != 8 || kid < 0 || kid > UINT16_MAX) {
      rv = mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: the nonce window of device %s is "
                          "damaged; restore the database from a backup",
                          mtcsec_id_hex(hex, id));
    } else {
      out->window.top = mtcsec_sq_i64_to_u64(sqlite3_column_int64(s, 0));
      out->window.bitmap = mtcsec_get_u64(sqlite3_column_blob(s, 1));
      out->next_key_id = (uint16_t)kid;
    }
  } else if (rc != SQLITE_DONE) {
    rv = mtcsec_sq_fail(st, rc, "reading a nonce window");
  }
  sqlite3_reset(s);
  if (rv != 0) {
    memset(out, 0, sizeof(*out));
  }
  return rv;
}

static int sq_get_state(void *vst, const uint8_t id[MTCSEC_ID_LEN],
                        mtcsec_store_devstate *out) {
  if (vst == NULL || id == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  return sq_load_state(vst, id, out);
}

/* [not_before, not_after) in unix seconds; 0 = unbounded. */
static int sq_valid_now(int64_t now, int64_t not_before, int64_t not_after) {
  return (not_before == 0 || now >= not_before) &&
         (not_after == 0 || now < not_after);
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
  } else if (!sq_valid_now(mtcsec_sq_now(), sqlite3_column_int64(s, 2),
                           sqlite3_column_int64(s, 3))) {
    rv = MTCSEC_ERR_NOT_FOUND; /* outside its validity period */
  } else {
    int64_t perms = sqlite3_column_int64(s, 0);
    int64_t lifetime = sqlite3_column_int64(s, 1);
    if (perms < 0 || perms > UINT8_MAX || lifetime < 0 ||
        lifetime > UINT32_MAX) {
      rv = mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: a grant row is damaged (perms or "
                          "lifetime out of range); set the grant again");
    } else {
      out->perms = (uint8_t)perms;
      out->lifetime = (uint32_t)lifetime;
      rv = 0;
    }
  }
  sqlite3_reset(s);
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

static int sq_put_state(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                        const mtcsec_store_devstate *ds) {
  sqlite3_stmt *s = mtcsec_sq_stmt(st, SQ_PUT_STATE);
  uint8_t bitmap[8];
  int rc;

  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  mtcsec_put_u64(bitmap, ds->window.bitmap);
  sq_bind_id(s, 1, id);
  sqlite3_bind_int64(s, 2, mtcsec_sq_u64_to_i64(ds->window.top));
  sqlite3_bind_blob(s, 3, bitmap, sizeof(bitmap), SQLITE_STATIC);
  sqlite3_bind_int64(s, 4, ds->next_key_id);
  rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : mtcsec_sq_fail(st, rc, "writing a window");
}

static int sq_put_session(mtcsec_sqlite *st, const mtcsec_session_rec *r,
                          int64_t now) {
  sqlite3_stmt *s = mtcsec_sq_stmt(st, SQ_PUT_SESSION);
  int rc;

  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sq_bind_id(s, 1, r->mtcd_id);
  sq_bind_id(s, 2, r->ueid);
  sqlite3_bind_blob(s, 3, r->mtcd_nonce, MTCSEC_NONCE_LEN, SQLITE_STATIC);
  sqlite3_bind_blob(s, 4, r->mtcs_nonce, MTCSEC_NONCE_LEN, SQLITE_STATIC);
  sqlite3_bind_int(s, 5, r->suite);
  sqlite3_bind_int(s, 6, r->perms);
  sqlite3_bind_int(s, 7, r->key_id);
  sqlite3_bind_int64(s, 8, r->lifetime);
  sqlite3_bind_int64(s, 9, mtcsec_sq_u64_to_i64(r->issued_at));
  sqlite3_bind_int64(s, 10, now);
  /* zeroblob(0) rather than NULL for a direct session. */
  sqlite3_bind_blob(s, 11, r->path, (int)r->npath * MTCSEC_ID_LEN,
                    SQLITE_STATIC);
  rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : mtcsec_sq_fail(st, rc, "recording a session");
}

/*
 * One transaction of the batch, inside the batch's SQL transaction: the
 * authoritative replay check against the window as this transaction sees
 * it (earlier transactions of the batch included), then the writes.
 */
static int sq_commit_one(mtcsec_sqlite *st, const mtcsec_store_txn *t,
                         int64_t now, int *result) {
  mtcsec_store_devstate ds;
  int rv = sq_load_state(st, t->session.mtcd_id, &ds);

  if (rv != 0) {
    return rv;
  }
  if (mtcsec_window_check(&ds.window, t->nonce) != 0) {
    *result = MTCSEC_ERR_REPLAY; /* nothing written for it */
    return 0;
  }
  mtcsec_window_update(&ds.window, t->nonce);
  ds.next_key_id = (uint16_t)(t->session.key_id + 1);
  rv = sq_put_state(st, t->session.mtcd_id, &ds);
  if (rv == 0) {
    rv = sq_put_session(st, &t->session, now);
  }
  if (rv == 0) {
    *result = 0;
  }
  return rv;
}

/*
 * Group commit: the whole batch in one IMMEDIATE transaction, made durable
 * by one COMMIT (WAL, synchronous=FULL: one fsync of the WAL per batch).
 * Any failure rolls everything back, so the batch is all or nothing.
 */
static int sq_commit(void *vst, mtcsec_store_txn *const *txns, size_t n,
                     int *results) {
  mtcsec_sqlite *st = vst;
  int64_t now;
  size_t i;
  int rv;

  if (st == NULL || (n != 0 && (txns == NULL || results == NULL))) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < n; i++) {
    if (txns[i] == NULL || txns[i]->session.npath > MTCSEC_MAX_PATH) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
  }
  if (n == 0) {
    return 0;
  }
  now = mtcsec_sq_now();
  rv = mtcsec_sq_exec(st, SQ_BEGIN);
  for (i = 0; rv == 0 && i < n; i++) {
    rv = sq_commit_one(st, txns[i], now, &results[i]);
  }
  if (rv == 0) {
    rv = mtcsec_sq_exec(st, SQ_COMMIT);
  }
  if (rv != 0) {
    mtcsec_sq_rollback(st);
    for (i = 0; i < n; i++) {
      results[i] = MTCSEC_ERR_STORE;
    }
    return MTCSEC_ERR_STORE;
  }
  return 0;
}

const mtcsec_store_ops mtcsec_sqlite_ops = {
  sq_get_device, sq_get_state, sq_get_grant, sq_relay_allowed, sq_commit};

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
  return 0;
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
  for (i = 0; i < SQ__COUNT; i++) {
    sqlite3_finalize(st->stmts[i]);
    st->stmts[i] = NULL;
  }
  if (st->db != NULL) {
    (void)sqlite3_close(st->db);
  }
  mtcsec_kek_ctx_del(st->kek); /* zeroizes the KEK */
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
