/*
 * The home proxy's subscriber store (auc_store.h).  Schema version 2:
 *
 *   subscriber(imsi TEXT PRIMARY KEY, keys BLOB, amf BLOB, sqn INTEGER,
 *              ind_bitlen INTEGER, integrity_only INTEGER, created INTEGER,
 *              msisdn TEXT NULL UNIQUE)               -- msisdn: version 2
 *
 * keys = RFC 5649 wrap under the KEK of K || OPc || IMSI (ASCII digits),
 * through kek.c (store/sqlite_schema.h).  Binding the IMSI inside the wrap
 * means a row's keys cannot be moved to another subscriber unnoticed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cellular/auc_store.h"
#include "store/sqlite_schema.h"

#define AUC_PLAIN_MAX (2 * MTCSEC_3GPP_K_LEN + MTCSEC_IMSI_MAX_DIGITS)
#define AUC_WRAP_MAX MTCSEC_KEK_WRAP_LEN(AUC_PLAIN_MAX)

struct mtcsec_auc_store {
  sqlite3 *db;
  mtcsec_kek_ctx *kek;
  int flags;
  int version; /* schema version of the open file */
  char err[512];
};

static int auc_errf(mtcsec_auc_store *st, int rv, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static int auc_errf(mtcsec_auc_store *st, int rv, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->err, sizeof(st->err), fmt, ap);
  va_end(ap);
  return rv;
}

static int auc_sqlfail(mtcsec_auc_store *st, const char *what) {
  return auc_errf(st, MTCSEC_ERR_STORE,
                  "subscriber database: %s failed: %s; check the file, its "
                  "permissions and free disk space",
                  what, sqlite3_errmsg(st->db));
}

int mtcsec_auc_imsi_valid(const char *s, size_t len) {
  size_t i;
  if (s == NULL || len < MTCSEC_IMSI_MIN_DIGITS ||
      len > MTCSEC_IMSI_MAX_DIGITS) {
    return 0;
  }
  for (i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return 0;
    }
  }
  return 1;
}

int mtcsec_auc_msisdn_valid(const char *s, size_t len) {
  size_t i;
  if (s == NULL || len < 1 || len > MTCSEC_AUC_MSISDN_MAX_DIGITS) {
    return 0;
  }
  for (i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return 0;
    }
  }
  return 1;
}

static int auc_exec(mtcsec_auc_store *st, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    auc_errf(st, MTCSEC_ERR_STORE, "subscriber database: %s",
             msg != NULL ? msg : "error");
    sqlite3_free(msg);
    return MTCSEC_ERR_STORE;
  }
  return 0;
}

static int auc_pragma_int(mtcsec_auc_store *st, const char *sql, int *out) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
  if (rc != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
    sqlite3_finalize(s);
    return auc_sqlfail(st, "reading the schema version");
  }
  *out = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  return 0;
}

/* Version 0 -> 1: the subscriber table. */
static const char AUC_SCHEMA_V1[] =
  "CREATE TABLE subscriber ("
  " imsi TEXT PRIMARY KEY NOT NULL"
  "  CHECK (length(imsi) BETWEEN 6 AND 15 AND imsi NOT GLOB '*[^0-9]*'),"
  " keys BLOB NOT NULL,"
  " amf BLOB NOT NULL CHECK (length(amf) = 2),"
  " sqn INTEGER NOT NULL CHECK (sqn BETWEEN 0 AND 281474976710655),"
  " ind_bitlen INTEGER NOT NULL DEFAULT 5 CHECK (ind_bitlen BETWEEN 0 AND 5),"
  " integrity_only INTEGER NOT NULL DEFAULT 0 CHECK (integrity_only IN (0,1)),"
  " created INTEGER NOT NULL) WITHOUT ROWID;"
  "PRAGMA application_id = 1836344168;" /* MTCSEC_AUC_APP_ID */
  "PRAGMA user_version = 1;";

/* Version 1 -> 2: an optional MSISDN (1..15 digits), unique like
 * osmo-hlr's subscriber.msisdn; existing rows get NULL. */
static const char AUC_SCHEMA_V2[] =
  "ALTER TABLE subscriber ADD COLUMN msisdn TEXT DEFAULT NULL"
  " CHECK (msisdn IS NULL OR (length(msisdn) BETWEEN 1 AND 15"
  "  AND msisdn NOT GLOB '*[^0-9]*'));"
  "CREATE UNIQUE INDEX subscriber_msisdn ON subscriber (msisdn);"
  "PRAGMA user_version = 2;";

static const char *const auc_migrations[MTCSEC_AUC_SCHEMA_VERSION] = {
  AUC_SCHEMA_V1, AUC_SCHEMA_V2};

/* One migration step from version `from`, in its own transaction.  The
 * version is read again under the write lock, so two programs opening an
 * old file at once migrate it once. */
static int auc_migrate_step(mtcsec_auc_store *st, int from) {
  int version = -1, rv;
  rv = auc_exec(st, "BEGIN IMMEDIATE");
  if (rv != 0) {
    return rv;
  }
  rv = auc_pragma_int(st, "PRAGMA user_version", &version);
  if (rv == 0 && version == from) {
    rv = auc_exec(st, auc_migrations[from]);
  }
  if (rv == 0) {
    rv = auc_exec(st, "COMMIT");
  }
  if (rv != 0) {
    (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
  }
  return rv;
}

static int auc_migrate(mtcsec_auc_store *st) {
  int appid = 0, version = 0, rv;

  if ((rv = auc_pragma_int(st, "PRAGMA application_id", &appid)) != 0 ||
      (rv = auc_pragma_int(st, "PRAGMA user_version", &version)) != 0) {
    return rv;
  }
  if (appid != 0 && appid != MTCSEC_AUC_APP_ID) {
    return auc_errf(st, MTCSEC_ERR_STORE,
                    "subscriber database: the file is not a home proxy "
                    "subscriber database (application_id %d); check the "
                    "database key of mtchpd.conf",
                    appid);
  }
  if (version > MTCSEC_AUC_SCHEMA_VERSION) {
    return auc_errf(st, MTCSEC_ERR_STORE,
                    "subscriber database: schema version %d is newer than "
                    "this program's (%d); upgrade mtcsec",
                    version, MTCSEC_AUC_SCHEMA_VERSION);
  }
  st->version = version;
  if (version == MTCSEC_AUC_SCHEMA_VERSION) {
    return 0;
  }
  if ((st->flags & MTCSEC_AUC_READONLY) != 0) {
    if (version >= 1) {
      return 0; /* readable as it is; columns it lacks read as empty */
    }
    return auc_errf(st, MTCSEC_ERR_STORE,
                    "subscriber database: empty or old schema (version %d) "
                    "and opened read-only; run 'mtcsec sub add' or start "
                    "mtchpd once to migrate it",
                    version);
  }
  for (; version < MTCSEC_AUC_SCHEMA_VERSION; version++) {
    rv = auc_migrate_step(st, version);
    if (rv != 0) {
      return rv;
    }
  }
  st->version = MTCSEC_AUC_SCHEMA_VERSION;
  return 0;
}

int mtcsec_auc_store_open(mtcsec_auc_store **pst, const char *path,
                          const uint8_t kek[MTCSEC_KEK_LEN], int flags,
                          char *err, size_t errlen) {
  mtcsec_auc_store *st;
  struct stat sb;
  int rv = MTCSEC_ERR_STORE, oflags;

  if (err != NULL && errlen > 0) {
    err[0] = '\0';
  }
  if (pst == NULL || path == NULL || path[0] == '\0' || kek == NULL) {
    if (err != NULL && errlen > 0) {
      snprintf(err, errlen, "subscriber database: no file name given");
    }
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  *pst = NULL;
  if ((flags & (MTCSEC_AUC_READONLY | MTCSEC_AUC_NOCREATE)) != 0 &&
      stat(path, &sb) != 0) {
    if (err != NULL && errlen > 0) {
      snprintf(err, errlen,
               "subscriber database %s does not exist; add a subscriber "
               "with 'mtcsec sub add' first",
               path);
    }
    return MTCSEC_ERR_NOT_FOUND;
  }
  st = calloc(1, sizeof(*st));
  if (st == NULL) {
    return MTCSEC_ERR_NOMEM;
  }
  st->flags = flags;
  rv = mtcsec_kek_ctx_new(&st->kek, kek);
  if (rv != 0) {
    auc_errf(st, rv, "subscriber database: cannot set up key wrapping");
    goto cleanup;
  }
  oflags = (flags & MTCSEC_AUC_READONLY) != 0
             ? SQLITE_OPEN_READONLY
             : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  {
    /* Created 0600: the file holds wrapped keys. */
    mode_t old = umask(077);
    int rc = sqlite3_open_v2(path, &st->db, oflags | SQLITE_OPEN_NOMUTEX, NULL);
    umask(old);
    if (rc != SQLITE_OK) {
      auc_errf(st, MTCSEC_ERR_STORE, "subscriber database: cannot open %s: %s",
               path, st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
      rv = MTCSEC_ERR_STORE;
      goto cleanup;
    }
  }
  (void)sqlite3_busy_timeout(st->db, 5000);
  if ((flags & MTCSEC_AUC_READONLY) == 0) {
    (void)sqlite3_exec(st->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
  }
  rv = auc_migrate(st);
  if (rv != 0) {
    goto cleanup;
  }
  *pst = st;
  return 0;

cleanup:
  if (err != NULL && errlen > 0) {
    snprintf(err, errlen, "%s", st->err);
  }
  mtcsec_auc_store_close(st);
  return rv;
}

void mtcsec_auc_store_close(mtcsec_auc_store *st) {
  if (st == NULL) {
    return;
  }
  if (st->db != NULL) {
    (void)sqlite3_close(st->db);
  }
  mtcsec_kek_ctx_del(st->kek);
  mtcsec_zeroize(st, sizeof(*st));
  free(st);
}

const char *mtcsec_auc_store_errmsg(const mtcsec_auc_store *st) {
  return st != NULL ? st->err : "no subscriber database";
}

int mtcsec_auc_store_add(mtcsec_auc_store *st, const mtcsec_auc_sub *sub) {
  uint8_t plain[AUC_PLAIN_MAX], wrapped[AUC_WRAP_MAX];
  size_t ilen, mlen, plen;
  mtcsec_ssize wlen;
  sqlite3_stmt *s = NULL;
  int rc, rv = MTCSEC_ERR_STORE;

  if (st == NULL || sub == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  ilen = strnlen(sub->imsi, sizeof(sub->imsi));
  mlen = strnlen(sub->msisdn, sizeof(sub->msisdn));
  if (!mtcsec_auc_imsi_valid(sub->imsi, ilen) ||
      sub->ind_bitlen > MTCSEC_SQN_MAX_IND_BITLEN ||
      sub->sqn > MTCSEC_SQN_MAX ||
      (mlen > 0 && !mtcsec_auc_msisdn_valid(sub->msisdn, mlen))) {
    return auc_errf(st, MTCSEC_ERR_INVALID_ARGUMENT,
                    "subscriber: bad IMSI, IND bit length, SQN or MSISDN");
  }
  if (st->version < 2) {
    return auc_errf(st, MTCSEC_ERR_STORE,
                    "subscriber database: opened read-only or not migrated");
  }
  memcpy(plain, sub->k, MTCSEC_3GPP_K_LEN);
  memcpy(plain + MTCSEC_3GPP_K_LEN, sub->opc, MTCSEC_3GPP_K_LEN);
  memcpy(plain + 2 * MTCSEC_3GPP_K_LEN, sub->imsi, ilen);
  plen = 2 * MTCSEC_3GPP_K_LEN + ilen;
  wlen = mtcsec_kek_wrap(st->kek, plain, plen, wrapped, sizeof(wrapped));
  mtcsec_zeroize(plain, sizeof(plain));
  if (wlen < 0) {
    return auc_errf(st, MTCSEC_ERR_CRYPTO,
                    "subscriber: wrapping the keys under the KEK failed");
  }
  rc = sqlite3_prepare_v2(st->db,
                          "INSERT INTO subscriber (imsi, keys, amf, sqn, "
                          "ind_bitlen, integrity_only, created, msisdn) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                          -1, &s, NULL);
  if (rc != SQLITE_OK) {
    rv = auc_sqlfail(st, "preparing the insert");
    goto cleanup;
  }
  sqlite3_bind_text(s, 1, sub->imsi, (int)ilen, SQLITE_STATIC);
  sqlite3_bind_blob(s, 2, wrapped, (int)wlen, SQLITE_STATIC);
  sqlite3_bind_blob(s, 3, sub->amf, MTCSEC_3GPP_AMF_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(s, 4, (sqlite3_int64)sub->sqn);
  sqlite3_bind_int(s, 5, (int)sub->ind_bitlen);
  sqlite3_bind_int(s, 6, sub->integrity_only ? 1 : 0);
  sqlite3_bind_int64(s, 7,
                     sub->created != 0 ? sub->created : (int64_t)time(NULL));
  if (mlen > 0) {
    sqlite3_bind_text(s, 8, sub->msisdn, (int)mlen, SQLITE_STATIC);
  } else {
    sqlite3_bind_null(s, 8);
  }
  rc = sqlite3_step(s);
  if (rc == SQLITE_CONSTRAINT &&
      sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_UNIQUE) {
    rv =
      auc_errf(st, MTCSEC_ERR_BUSY,
               "MSISDN %s belongs to another subscriber already", sub->msisdn);
  } else if (rc == SQLITE_CONSTRAINT) {
    rv =
      auc_errf(st, MTCSEC_ERR_BUSY, "subscriber %s exists already", sub->imsi);
  } else if (rc != SQLITE_DONE) {
    rv = auc_sqlfail(st, "adding the subscriber");
  } else {
    rv = 0;
  }

cleanup:
  sqlite3_finalize(s);
  mtcsec_zeroize(wrapped, sizeof(wrapped));
  return rv;
}

/* Fills out from a row of (imsi, keys, amf, sqn, ind_bitlen,
 * integrity_only, created, msisdn). */
static int auc_row(mtcsec_auc_store *st, sqlite3_stmt *s, mtcsec_auc_sub *out,
                   int with_keys) {
  const unsigned char *imsi = sqlite3_column_text(s, 0);
  int ilen = sqlite3_column_bytes(s, 0);
  const void *amf = sqlite3_column_blob(s, 2);
  sqlite3_int64 sqn = sqlite3_column_int64(s, 3);
  int ind = sqlite3_column_int(s, 4);
  const unsigned char *msisdn = sqlite3_column_text(s, 7);
  int mlen = sqlite3_column_bytes(s, 7);

  if (imsi == NULL ||
      !mtcsec_auc_imsi_valid((const char *)imsi, (size_t)ilen) || amf == NULL ||
      sqlite3_column_bytes(s, 2) != MTCSEC_3GPP_AMF_LEN || sqn < 0 ||
      (uint64_t)sqn > MTCSEC_SQN_MAX || ind < 0 ||
      ind > MTCSEC_SQN_MAX_IND_BITLEN ||
      (msisdn != NULL &&
       !mtcsec_auc_msisdn_valid((const char *)msisdn, (size_t)mlen))) {
    return auc_errf(st, MTCSEC_ERR_STORE,
                    "subscriber database: a row is corrupt");
  }
  if (msisdn != NULL) {
    memcpy(out->msisdn, msisdn, (size_t)mlen);
    out->msisdn[mlen] = '\0';
  }
  memcpy(out->imsi, imsi, (size_t)ilen);
  out->imsi[ilen] = '\0';
  memcpy(out->amf, amf, MTCSEC_3GPP_AMF_LEN);
  out->sqn = (uint64_t)sqn;
  out->ind_bitlen = (unsigned)ind;
  out->integrity_only = sqlite3_column_int(s, 5) != 0;
  out->created = sqlite3_column_int64(s, 6);
  if (with_keys) {
    uint8_t plain[AUC_WRAP_MAX];
    const void *w = sqlite3_column_blob(s, 1);
    int wlen = sqlite3_column_bytes(s, 1);
    mtcsec_ssize plen;
    if (w == NULL || wlen <= 0 || (size_t)wlen > sizeof(plain)) {
      return auc_errf(st, MTCSEC_ERR_MIC,
                      "subscriber %s: the wrapped keys are corrupt", out->imsi);
    }
    plen = mtcsec_kek_unwrap(st->kek, w, (size_t)wlen, plain, sizeof(plain));
    if (plen != (mtcsec_ssize)(2 * MTCSEC_3GPP_K_LEN + (size_t)ilen) ||
        memcmp(plain + 2 * MTCSEC_3GPP_K_LEN, out->imsi, (size_t)ilen) != 0) {
      mtcsec_zeroize(plain, sizeof(plain));
      return auc_errf(st, MTCSEC_ERR_MIC,
                      "subscriber %s: the keys do not unwrap under this KEK "
                      "(wrong kek_file, or the row was altered)",
                      out->imsi);
    }
    memcpy(out->k, plain, MTCSEC_3GPP_K_LEN);
    memcpy(out->opc, plain + MTCSEC_3GPP_K_LEN, MTCSEC_3GPP_K_LEN);
    mtcsec_zeroize(plain, sizeof(plain));
  }
  return 0;
}

/* Version 1 files (opened read-only) have no msisdn column. */
#define AUC_SELECT_V2                                                          \
  "SELECT imsi, keys, amf, sqn, ind_bitlen, integrity_only, created, msisdn "  \
  "FROM subscriber"
#define AUC_SELECT_V1                                                          \
  "SELECT imsi, keys, amf, sqn, ind_bitlen, integrity_only, created, NULL "    \
  "FROM subscriber"
#define AUC_SELECT(st, tail)                                                   \
  ((st)->version >= 2 ? AUC_SELECT_V2 tail : AUC_SELECT_V1 tail)

int mtcsec_auc_store_get(mtcsec_auc_store *st, const char *imsi,
                         mtcsec_auc_sub *out, int with_keys) {
  sqlite3_stmt *s = NULL;
  int rc, rv;

  if (st == NULL || imsi == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(out, 0, sizeof(*out));
  if (!mtcsec_auc_imsi_valid(imsi, strlen(imsi))) {
    return auc_errf(st, MTCSEC_ERR_INVALID_ARGUMENT, "bad IMSI");
  }
  if (sqlite3_prepare_v2(st->db, AUC_SELECT(st, " WHERE imsi = ?1"), -1, &s,
                         NULL) != SQLITE_OK) {
    return auc_sqlfail(st, "preparing the lookup");
  }
  sqlite3_bind_text(s, 1, imsi, -1, SQLITE_STATIC);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    rv = auc_row(st, s, out, with_keys);
  } else if (rc == SQLITE_DONE) {
    rv = auc_errf(st, MTCSEC_ERR_NOT_FOUND, "no subscriber %s", imsi);
  } else {
    rv = auc_sqlfail(st, "looking up the subscriber");
  }
  sqlite3_finalize(s);
  if (rv != 0) {
    mtcsec_zeroize(out, sizeof(*out));
  }
  return rv;
}

int mtcsec_auc_store_set_sqn(mtcsec_auc_store *st, const char *imsi,
                             uint64_t sqn) {
  sqlite3_stmt *s = NULL;
  int rv;

  if (st == NULL || imsi == NULL || sqn > MTCSEC_SQN_MAX) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (sqlite3_prepare_v2(st->db,
                         "UPDATE subscriber SET sqn = ?1 WHERE imsi = ?2", -1,
                         &s, NULL) != SQLITE_OK) {
    return auc_sqlfail(st, "preparing the SQN update");
  }
  sqlite3_bind_int64(s, 1, (sqlite3_int64)sqn);
  sqlite3_bind_text(s, 2, imsi, -1, SQLITE_STATIC);
  if (sqlite3_step(s) != SQLITE_DONE) {
    rv = auc_sqlfail(st, "updating the SQN");
  } else if (sqlite3_changes(st->db) == 0) {
    rv = auc_errf(st, MTCSEC_ERR_NOT_FOUND, "no subscriber %s", imsi);
  } else {
    rv = 0;
  }
  sqlite3_finalize(s);
  return rv;
}

int mtcsec_auc_store_list(mtcsec_auc_store *st,
                          int (*fn)(void *ud, const mtcsec_auc_sub *sub),
                          void *ud) {
  sqlite3_stmt *s = NULL;
  mtcsec_auc_sub sub;
  int rc, rv = 0;

  if (st == NULL || fn == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (sqlite3_prepare_v2(st->db, AUC_SELECT(st, " ORDER BY imsi"), -1, &s,
                         NULL) != SQLITE_OK) {
    return auc_sqlfail(st, "preparing the listing");
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    memset(&sub, 0, sizeof(sub));
    rv = auc_row(st, s, &sub, 0);
    if (rv != 0) {
      break;
    }
    rv = fn(ud, &sub);
    if (rv != 0) {
      break;
    }
  }
  if (rv == 0 && rc != SQLITE_DONE) {
    rv = auc_sqlfail(st, "listing subscribers");
  }
  sqlite3_finalize(s);
  return rv;
}
