/*
 * SQLite store: the administration calls of store_sqlite.h (devices,
 * grants, relays, sessions and revocation, the audit log).  Not on the hot
 * path: listings prepare their statement per call (so that a callback may
 * call back into the handle); single-row calls use the handle's cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/store_sqlite.h>
#include <mtcsec/codec.h>

#include "core/util.h"
#include "store/sqlite_schema.h"

/* label and group fit mtcsec_sqlite_devinfo's 64-byte fields. */
#define SQ_NAME_MAX 63

static int sq_bind_id(sqlite3_stmt *s, int i, const uint8_t *id) {
  return sqlite3_bind_blob(s, i, id, MTCSEC_ID_LEN, SQLITE_STATIC);
}

static int sq_bind_text(sqlite3_stmt *s, int i, const char *t) {
  return sqlite3_bind_text(s, i, t != NULL ? t : "", -1, SQLITE_STATIC);
}

/* Runs a prepared write of one row; 0 or STORE (err set). */
static int sq_step_done(mtcsec_sqlite *st, sqlite3_stmt *s, const char *what) {
  int rc = sqlite3_step(s);
  int rv = rc == SQLITE_DONE ? 0 : mtcsec_sq_fail(st, rc, what);
  sqlite3_reset(s);
  return rv;
}

static void sq_copy_text(char *dst, size_t dstlen, const unsigned char *src) {
  snprintf(dst, dstlen, "%s", src != NULL ? (const char *)src : "");
}

/* Copies an 8-byte BLOB column; -1 if the column is not one. */
static int sq_col_id(sqlite3_stmt *s, int i, uint8_t out[8]) {
  const void *p = sqlite3_column_blob(s, i);
  if (p == NULL || sqlite3_column_bytes(s, i) != 8) {
    return -1;
  }
  memcpy(out, p, 8);
  return 0;
}

/* ------------------------------------------------------------- devices */

int mtcsec_sqlite_device_add(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                             const uint8_t mtcs_id[MTCSEC_ID_LEN],
                             uint8_t suite, const uint8_t *pskey,
                             const char *label, const char *group) {
  uint8_t plain[MTCSEC_ID_LEN + 1 + 2 * MTCSEC_MAX_KEY_LEN];
  uint8_t wrapped[MTCSEC_KEK_WRAP_LEN(sizeof(plain))];
  const mtcsec_suite_params *sp;
  sqlite3_stmt *s;
  char hex[17];
  mtcsec_ssize wl;
  size_t plainlen;
  int rc, rv;

  if (st == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (id == NULL || mtcs_id == NULL || pskey == NULL) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                          "device add: the MTCdID, MTCsID and PSKey are "
                          "required");
  }
  sp = mtcsec_suite_get(suite);
  if (sp == NULL) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                          "device add: unknown suite %u; use 1, 2 or 3 "
                          "(PROTOCOL.md section 2)",
                          (unsigned)suite);
  }
  if ((label != NULL && strlen(label) > SQ_NAME_MAX) ||
      (group != NULL && strlen(group) > SQ_NAME_MAX)) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                          "device add: label and group are at most %d bytes",
                          SQ_NAME_MAX);
  }
  if (group != NULL && group[0] == '\0') {
    group = NULL; /* "" is no group, as in mtcsec_sqlite_devinfo */
  }
  mtcsec_id_hex(hex, id);
  plainlen = MTCSEC_ID_LEN + 1 + 2 * (size_t)sp->keylen;
  memcpy(plain, id, MTCSEC_ID_LEN);
  plain[MTCSEC_ID_LEN] = suite;
  rv = mtcsec_derive_device_keys(st->crypto, suite, pskey, id, mtcs_id,
                                 plain + MTCSEC_ID_LEN + 1,
                                 plain + MTCSEC_ID_LEN + 1 + sp->keylen);
  if (rv != 0) {
    rv = mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                        "device add: deriving K_auth and K_dm failed (%s)",
                        mtcsec_errname(rv));
    goto cleanup;
  }
  wl = mtcsec_kek_wrap(st->kek, plain, plainlen, wrapped, sizeof(wrapped));
  if (wl < 0) {
    rv = mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                        "device add: wrapping the keys under the KEK failed "
                        "(%s)",
                        mtcsec_errname((int)wl));
    goto cleanup;
  }
  s = mtcsec_sq_stmt(st, SQ_DEVICE_ADD);
  if (s == NULL) {
    rv = MTCSEC_ERR_STORE;
    goto cleanup;
  }
  sq_bind_id(s, 1, id);
  sq_bind_id(s, 2, mtcs_id);
  sqlite3_bind_int(s, 3, suite);
  sq_bind_text(s, 4, label);
  if (group != NULL) {
    sq_bind_text(s, 5, group);
  } else {
    sqlite3_bind_null(s, 5);
  }
  sqlite3_bind_int64(s, 6, mtcsec_sq_now());
  sqlite3_bind_blob(s, 7, wrapped, (int)wl, SQLITE_STATIC);
  rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc == SQLITE_CONSTRAINT) {
    rv = mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_STATE,
                        "device add: device %s exists already", hex);
  } else if (rc != SQLITE_DONE) {
    rv = mtcsec_sq_fail(st, rc, "device add");
  } else {
    rv = 0;
  }

cleanup:
  mtcsec_zeroize(plain, sizeof(plain));
  return rv;
}

int mtcsec_sqlite_device_disable(mtcsec_sqlite *st,
                                 const uint8_t id[MTCSEC_ID_LEN],
                                 int disabled) {
  sqlite3_stmt *s;
  char hex[17];
  int rv;

  if (st == NULL || id == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = mtcsec_sq_stmt(st, SQ_DEVICE_DISABLE);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sq_bind_id(s, 1, id);
  sqlite3_bind_int(s, 2, disabled != 0);
  rv = sq_step_done(st, s, "device disable");
  if (rv == 0 && sqlite3_changes(st->db) == 0) {
    rv = mtcsec_sq_errf(st, MTCSEC_ERR_NOT_FOUND, "device %s not found",
                        mtcsec_id_hex(hex, id));
  }
  return rv;
}

/* One row of SQ_DEVINFO_SQL.  The window and session count are those of
 * the devstate row; *after gets the id above which the session log may
 * hold more of this device (store_sqlite_log.c). */
static int sq_devinfo_row(mtcsec_sqlite *st, sqlite3_stmt *s,
                          mtcsec_sqlite_devinfo *out, uint16_t *next_key_id,
                          int64_t *after) {
  int64_t upto = 0, folded;
  memset(out, 0, sizeof(*out));
  mtcsec_window_init(&out->window);
  *next_key_id = 0;
  if (sq_col_id(s, 0, out->id) != 0) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: a device row is damaged (its ID is "
                          "not 8 bytes)");
  }
  out->suite = (uint8_t)sqlite3_column_int(s, 1);
  out->disabled = (uint8_t)(sqlite3_column_int(s, 2) != 0);
  sq_copy_text(out->label, sizeof(out->label), sqlite3_column_text(s, 3));
  sq_copy_text(out->group, sizeof(out->group), sqlite3_column_text(s, 4));
  out->created = sqlite3_column_int64(s, 5);
  if (sqlite3_column_type(s, 6) != SQLITE_NULL) {
    int64_t n = sqlite3_column_int64(s, 6);
    out->sessions = n > 0 ? (uint64_t)n : 0;
    if (sqlite3_column_bytes(s, 8) == 8) {
      out->window.top = mtcsec_sq_i64_to_u64(sqlite3_column_int64(s, 7));
      out->window.bitmap = mtcsec_get_u64(sqlite3_column_blob(s, 8));
    }
    n = sqlite3_column_int64(s, 9);
    *next_key_id = n >= 0 && n <= UINT16_MAX ? (uint16_t)n : 0;
    upto = sqlite3_column_int64(s, 10);
  }
  folded = sqlite3_column_int64(s, 11);
  *after = upto > folded ? upto : folded;
  return 0;
}

int mtcsec_sqlite_device_get(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                             mtcsec_sqlite_devinfo *out) {
  mtcsec_store_devstate ds;
  sqlite3_stmt *s;
  uint16_t next_key_id;
  int64_t after;
  char hex[17];
  int rc, rv;

  if (st == NULL || id == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = mtcsec_sq_stmt(st, SQ_DEVICE_INFO);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sq_bind_id(s, 1, id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    rv = sq_devinfo_row(st, s, out, &next_key_id, &after);
  } else if (rc == SQLITE_DONE) {
    rv = mtcsec_sq_errf(st, MTCSEC_ERR_NOT_FOUND, "device %s not found",
                        mtcsec_id_hex(hex, id));
  } else {
    rv = mtcsec_sq_fail(st, rc, "reading a device");
  }
  sqlite3_reset(s);
  if (rv == 0) {
    /* The window and count with the sessions not yet folded. */
    rv = mtcsec_sq_log_state(st, id, &ds, &out->sessions);
    out->window = ds.window;
  }
  return rv;
}

int mtcsec_sqlite_device_foreach(mtcsec_sqlite *st,
                                 int (*fn)(void *ud,
                                           const mtcsec_sqlite_devinfo *d),
                                 void *ud) {
  mtcsec_sqlite_devinfo d;
  mtcsec_store_devstate ds;
  sqlite3_stmt *s = NULL;
  sq_tail tail;
  int rc, rv;

  if (st == NULL || fn == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* The sessions not yet folded into devstate rows, read before the rows:
   * a row read later holds at least what the tail does not. */
  rv = mtcsec_sq_tail_load(st, &tail);
  if (rv != 0) {
    return rv;
  }
  rc =
    sqlite3_prepare_v2(st->db, SQ_DEVINFO_SQL " ORDER BY d.id", -1, &s, NULL);
  if (rc != SQLITE_OK) {
    free(tail.rows);
    return mtcsec_sq_fail(st, rc, "listing devices");
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t after;
    rv = sq_devinfo_row(st, s, &d, &ds.next_key_id, &after);
    if (rv != 0) {
      break;
    }
    ds.window = d.window;
    mtcsec_sq_tail_apply(&tail, d.id, after, &ds, &d.sessions);
    d.window = ds.window;
    if (fn(ud, &d) != 0) {
      break;
    }
  }
  if (rv == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) {
    rv = mtcsec_sq_fail(st, rc, "listing devices");
  }
  sqlite3_finalize(s);
  free(tail.rows);
  return rv;
}

/* -------------------------------------------------------------- grants */

/* Exactly one of device and group; a group name is 1..63 bytes. */
static int sq_target_ok(mtcsec_sqlite *st, const char *what,
                        const uint8_t *device, const char *group) {
  if ((device == NULL) == (group == NULL)) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                          "%s: give exactly one of a device or a group", what);
  }
  if (group != NULL && (group[0] == '\0' || strlen(group) > SQ_NAME_MAX)) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                          "%s: a group name is 1 to %d bytes", what,
                          SQ_NAME_MAX);
  }
  return 0;
}

int mtcsec_sqlite_grant_set(mtcsec_sqlite *st,
                            const uint8_t ueid[MTCSEC_ID_LEN],
                            const uint8_t *device, const char *group,
                            uint8_t perms, uint32_t lifetime,
                            int64_t not_before, int64_t not_after) {
  sqlite3_stmt *s;
  int rv;

  if (st == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (ueid == NULL) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                          "grant: the UEID is required");
  }
  rv = sq_target_ok(st, "grant", device, group);
  if (rv != 0) {
    return rv;
  }
  if (not_before < 0 || not_after < 0) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                          "grant: validity times are unix seconds (0 = "
                          "unbounded), not negative");
  }
  if (not_before != 0 && not_after != 0 && not_after <= not_before) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                          "grant: not_after (%lld) must be later than "
                          "not_before (%lld)",
                          (long long)not_after, (long long)not_before);
  }
  s = mtcsec_sq_stmt(st,
                     device != NULL ? SQ_GRANT_SET_DEVICE : SQ_GRANT_SET_GROUP);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  if (device != NULL) {
    sq_bind_id(s, 1, device);
  } else {
    sq_bind_text(s, 1, group);
  }
  sq_bind_id(s, 2, ueid);
  sqlite3_bind_int(s, 3, perms);
  sqlite3_bind_int64(s, 4, lifetime);
  sqlite3_bind_int64(s, 5, not_before);
  sqlite3_bind_int64(s, 6, not_after);
  sqlite3_bind_int64(s, 7, mtcsec_sq_now());
  return sq_step_done(st, s, "grant");
}

int mtcsec_sqlite_grant_del(mtcsec_sqlite *st,
                            const uint8_t ueid[MTCSEC_ID_LEN],
                            const uint8_t *device, const char *group) {
  sqlite3_stmt *s;
  int rv;

  if (st == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (ueid == NULL) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                          "grant delete: the UEID is required");
  }
  rv = sq_target_ok(st, "grant delete", device, group);
  if (rv != 0) {
    return rv;
  }
  s = mtcsec_sq_stmt(st,
                     device != NULL ? SQ_GRANT_DEL_DEVICE : SQ_GRANT_DEL_GROUP);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  if (device != NULL) {
    sq_bind_id(s, 1, device);
  } else {
    sq_bind_text(s, 1, group);
  }
  sq_bind_id(s, 2, ueid);
  rv = sq_step_done(st, s, "grant delete");
  if (rv == 0 && sqlite3_changes(st->db) == 0) {
    rv =
      mtcsec_sq_errf(st, MTCSEC_ERR_NOT_FOUND, "grant delete: no such grant");
  }
  return rv;
}

/* -------------------------------------------------------------- relays */

int mtcsec_sqlite_relay_add(mtcsec_sqlite *st,
                            const uint8_t gwid[MTCSEC_ID_LEN],
                            const char *label) {
  sqlite3_stmt *s;

  if (st == NULL || gwid == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = mtcsec_sq_stmt(st, SQ_RELAY_ADD);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sq_bind_id(s, 1, gwid);
  sq_bind_text(s, 2, label);
  sqlite3_bind_int64(s, 3, mtcsec_sq_now());
  return sq_step_done(st, s, "relay add");
}

int mtcsec_sqlite_relay_allow(mtcsec_sqlite *st,
                              const uint8_t gwid[MTCSEC_ID_LEN],
                              const uint8_t *device, const char *group) {
  sqlite3_stmt *s;
  char hex[17];
  int rc, rv;

  if (st == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (gwid == NULL) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                          "relay allow: the relay ID is required");
  }
  rv = sq_target_ok(st, "relay allow", device, group);
  if (rv != 0) {
    return rv;
  }
  /* Relays are never unregistered, so check-then-insert cannot race. */
  s = mtcsec_sq_stmt(st, SQ_RELAY_EXISTS);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sq_bind_id(s, 1, gwid);
  rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc == SQLITE_DONE) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_NOT_FOUND,
                          "relay allow: relay %s is not registered; register "
                          "it first (relay add)",
                          mtcsec_id_hex(hex, gwid));
  }
  if (rc != SQLITE_ROW) {
    return mtcsec_sq_fail(st, rc, "relay allow");
  }
  s = mtcsec_sq_stmt(st, device != NULL ? SQ_RELAY_ALLOW_DEVICE
                                        : SQ_RELAY_ALLOW_GROUP);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  if (device != NULL) {
    sq_bind_id(s, 1, device);
  } else {
    sq_bind_text(s, 1, group);
  }
  sq_bind_id(s, 2, gwid);
  sqlite3_bind_int64(s, 3, mtcsec_sq_now());
  return sq_step_done(st, s, "relay allow");
}

/* ------------------------------------------------------------ sessions */

static int sq_session_row(mtcsec_sqlite *st, sqlite3_stmt *s,
                          mtcsec_sqlite_session *out) {
  mtcsec_session_rec *r = &out->rec;
  int pathlen = sqlite3_column_bytes(s, 11);
  const void *path = sqlite3_column_blob(s, 11);

  memset(out, 0, sizeof(*out));
  out->id = sqlite3_column_int64(s, 0);
  if (sq_col_id(s, 1, r->mtcd_id) != 0 || sq_col_id(s, 2, r->ueid) != 0 ||
      sq_col_id(s, 3, r->mtcd_nonce) != 0 ||
      sq_col_id(s, 4, r->mtcs_nonce) != 0 || pathlen < 0 ||
      pathlen % MTCSEC_ID_LEN != 0 ||
      pathlen > MTCSEC_MAX_PATH * MTCSEC_ID_LEN) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: session %lld is damaged",
                          (long long)out->id);
  }
  r->suite = (uint8_t)sqlite3_column_int(s, 5);
  r->perms = (uint8_t)sqlite3_column_int(s, 6);
  r->key_id = (uint16_t)sqlite3_column_int(s, 7);
  r->lifetime = (uint32_t)sqlite3_column_int64(s, 8);
  r->issued_at = mtcsec_sq_i64_to_u64(sqlite3_column_int64(s, 9));
  out->issued_unix = sqlite3_column_int64(s, 10);
  r->npath = (uint8_t)(pathlen / MTCSEC_ID_LEN);
  if (pathlen > 0) {
    memcpy(r->path, path, (size_t)pathlen);
  }
  out->revoked = sqlite3_column_type(s, 12) != SQLITE_NULL;
  return 0;
}

int mtcsec_sqlite_session_foreach(
  mtcsec_sqlite *st, const uint8_t *device, size_t limit,
  int (*fn)(void *ud, const mtcsec_sqlite_session *s), void *ud) {
#define SQ_SESSION_COLS(p)                                                     \
  p "id, " p "mtcd_id, " p "ueid, " p "mtcd_nonce, " p "mtcs_nonce, " p        \
    "suite, " p "perms, " p "key_id, " p "lifetime, " p "issued_at, " p        \
    "issued_unix, " p "path, " p "revoked"
  static const char all_sql[] =
    "SELECT " SQ_SESSION_COLS("") " FROM session ORDER BY id DESC LIMIT ?2";
  /* One device: the sessions not yet in session_run (id > indexed), then
   * each run of session_run from the newest (store_sqlite_log.c), in one
   * statement so that both parts come from one snapshot. */
  static const char dev_sql[] =
    "WITH RECURSIVE r(n) AS (SELECT (SELECT indexed FROM store_log) >> 14 "
    "UNION ALL SELECT n - 1 FROM r WHERE n > 0) "
    "SELECT " SQ_SESSION_COLS(
      "") " FROM session "
          "WHERE id > (SELECT indexed FROM store_log) AND mtcd_id = ?1 "
          "UNION ALL SELECT " SQ_SESSION_COLS(
            "s.") " FROM r "
                  "JOIN session_run i ON i.run = r.n AND i.mtcd_id = ?1 "
                  "JOIN session s ON s.id = i.id ORDER BY 1 DESC LIMIT ?2";
#undef SQ_SESSION_COLS
  mtcsec_sqlite_session *rec;
  sqlite3_stmt *s = NULL;
  int rc, rv = 0;

  if (st == NULL || fn == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rc = sqlite3_prepare_v2(st->db, device != NULL ? dev_sql : all_sql, -1, &s,
                          NULL);
  if (rc != SQLITE_OK) {
    return mtcsec_sq_fail(st, rc, "listing sessions");
  }
  if (device != NULL) {
    sq_bind_id(s, 1, device);
  }
  sqlite3_bind_int64(s, 2,
                     limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);
  rec = malloc(sizeof(*rec)); /* about 300 bytes: keep it off small stacks */
  if (rec == NULL) {
    sqlite3_finalize(s);
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE, "sqlite store: out of memory");
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    rv = sq_session_row(st, s, rec);
    if (rv != 0 || fn(ud, rec) != 0) {
      break;
    }
  }
  if (rv == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) {
    rv = mtcsec_sq_fail(st, rc, "listing sessions");
  }
  free(rec);
  sqlite3_finalize(s);
  return rv;
}

mtcsec_ssize mtcsec_sqlite_session_revoke(mtcsec_sqlite *st, int64_t id,
                                          uint8_t *dest, size_t destlen) {
  uint8_t mtcd_id[MTCSEC_ID_LEN], mtcs_id[MTCSEC_ID_LEN];
  uint8_t nonce[MTCSEC_NONCE_LEN];
  mtcsec_store_device dev;
  uint16_t key_id = 0;
  sqlite3_stmt *s;
  mtcsec_ssize n;
  int rc, rv;

  if (st == NULL || (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(&dev, 0, sizeof(dev));
  s = mtcsec_sq_stmt(st, SQ_SESSION_GET);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sqlite3_bind_int64(s, 1, id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    rv = mtcsec_sq_errf(st, MTCSEC_ERR_NOT_FOUND,
                        "revoke: session %lld not found", (long long)id);
  } else if (rc != SQLITE_ROW) {
    rv = mtcsec_sq_fail(st, rc, "reading a session");
  } else if (sq_col_id(s, 0, mtcd_id) != 0 || sq_col_id(s, 2, nonce) != 0 ||
             sq_col_id(s, 5, mtcs_id) != 0) {
    rv = mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                        "sqlite store: session %lld is damaged", (long long)id);
  } else {
    key_id = (uint16_t)sqlite3_column_int(s, 1);
    rv = mtcsec_sq_unwrap_device(st, mtcd_id, (uint8_t)sqlite3_column_int(s, 3),
                                 sqlite3_column_blob(s, 4),
                                 (size_t)sqlite3_column_bytes(s, 4), &dev);
  }
  sqlite3_reset(s);
  if (rv != 0) {
    mtcsec_zeroize(&dev, sizeof(dev));
    return rv;
  }
  /* Build first: a too-small dest changes nothing. */
  n = mtcsec_revoke_build(dest, destlen, st->crypto, dev.suite, dev.k_auth,
                          mtcs_id, mtcd_id, key_id, nonce);
  mtcsec_zeroize(&dev, sizeof(dev));
  if (n < 0) {
    if (n == MTCSEC_ERR_NOBUF || n == MTCSEC_ERR_INVALID_ARGUMENT) {
      return n;
    }
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "revoke: building the revocation failed (%s)",
                          mtcsec_errname((int)n));
  }
  s = mtcsec_sq_stmt(st, SQ_SESSION_MARK);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int64(s, 2, mtcsec_sq_now());
  rv = sq_step_done(st, s, "marking a session revoked");
  return rv != 0 ? rv : n;
}

/* --------------------------------------------------------------- audit */

int mtcsec_sqlite_audit(mtcsec_sqlite *st, const char *who, const char *action,
                        const char *subject, const char *detail) {
  sqlite3_stmt *s;
  if (st == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = mtcsec_sq_stmt(st, SQ_AUDIT_ADD);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sqlite3_bind_int64(s, 1, mtcsec_sq_now());
  sq_bind_text(s, 2, who);
  sq_bind_text(s, 3, action);
  sq_bind_text(s, 4, subject);
  sq_bind_text(s, 5, detail);
  return sq_step_done(st, s, "audit");
}

int mtcsec_sqlite_audit_foreach(mtcsec_sqlite *st,
                                int (*fn)(void *ud, int64_t when,
                                          const char *who, const char *action,
                                          const char *subject,
                                          const char *detail),
                                void *ud) {
  sqlite3_stmt *s = NULL;
  int rc, rv = 0;

  if (st == NULL || fn == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rc = sqlite3_prepare_v2(st->db,
                          "SELECT at, who, action, subject, detail FROM audit "
                          "ORDER BY id",
                          -1, &s, NULL);
  if (rc != SQLITE_OK) {
    return mtcsec_sq_fail(st, rc, "listing the audit log");
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const unsigned char *t[4];
    int i;
    for (i = 0; i < 4; i++) {
      t[i] = sqlite3_column_text(s, i + 1);
    }
    if (fn(ud, sqlite3_column_int64(s, 0), t[0] ? (const char *)t[0] : "",
           t[1] ? (const char *)t[1] : "", t[2] ? (const char *)t[2] : "",
           t[3] ? (const char *)t[3] : "") != 0) {
      break;
    }
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    rv = mtcsec_sq_fail(st, rc, "listing the audit log");
  }
  sqlite3_finalize(s);
  return rv;
}
