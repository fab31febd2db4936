/*
 * Internal interface between the files of the SQLite store (never
 * installed): the handle, its prepared-statement cache, the schema and its
 * migrations (store_sqlite_schema.c), key wrapping under the KEK (kek.c),
 * and one hook for the store's own tests.
 *
 * Files: store_sqlite.c (open/close, the ops table), store_sqlite_log.c
 * (group commit over the session log, nonce windows folded from it),
 * store_sqlite_admin.c (administration calls), store_sqlite_schema.c
 * (migrations), kek.c (KEK file, RFC 5649 wrapping) and
 * store_sqlite_unwrap.c (RFC 5649 unwrapping of device records with
 * AES-NI); only the last two include OpenSSL.
 */
#ifndef MTCSEC_STORE_SQLITE_SCHEMA_H
#define MTCSEC_STORE_SQLITE_SCHEMA_H

#include <sqlite3.h>

#include <mtcsec/store_sqlite.h>

/* ------------------------------------------------------------- schema */

/** PRAGMA application_id of an mtcsec database ("mtcs"). */
#define MTCSEC_SQLITE_APP_ID 0x6d746373

/**
 * Migrates db (opened read-write) from its current user_version to the
 * latest, one version per transaction.  Returns 0 or MTCSEC_ERR_STORE with a
 * sentence in err.
 */
int mtcsec_sqlite_migrate(sqlite3 *db, char *err, size_t errlen);

/* --------------------------------------------------------- key wrapping */

/** RFC 5649 output for inlen bytes of plaintext: ceil(inlen / 8) * 8 + 8. */
#define MTCSEC_KEK_WRAP_LEN(inlen) ((((inlen) + 7) / 8) * 8 + 8)

typedef struct mtcsec_kek_ctx mtcsec_kek_ctx;

/**
 * Creates a wrapping context holding a copy of kek ("id-aes256-wrap-pad").
 * Returns 0, MTCSEC_ERR_NOMEM or MTCSEC_ERR_CRYPTO.
 */
int mtcsec_kek_ctx_new(mtcsec_kek_ctx **pk, const uint8_t kek[MTCSEC_KEK_LEN]);

/** Zeroizes the KEK copy and frees k (NULL allowed). */
void mtcsec_kek_ctx_del(mtcsec_kek_ctx *k);

/**
 * Wraps in (inlen 1..256 bytes) into out (outlen >= MTCSEC_KEK_WRAP_LEN).
 * Returns the wrapped length or a negative mtcsec_err.
 */
mtcsec_ssize mtcsec_kek_wrap(mtcsec_kek_ctx *k, const uint8_t *in, size_t inlen,
                             uint8_t *out, size_t outlen);

/**
 * Unwraps in into out (outlen >= inlen); verifies the RFC 5649 integrity
 * check.  Returns the plaintext length, MTCSEC_ERR_MIC (wrong KEK or altered
 * data; out zeroed) or another negative mtcsec_err.
 */
mtcsec_ssize mtcsec_kek_unwrap(mtcsec_kek_ctx *k, const uint8_t *in,
                               size_t inlen, uint8_t *out, size_t outlen);

/**
 * The unwrap of the hot path (store_sqlite_unwrap.c): the same RFC 5649
 * unwrap as mtcsec_kek_unwrap, with AES-NI.  new() keys it with a copy of
 * kek (0, NOMEM or CRYPTO); del() cleanses it (NULL allowed); unwrap()
 * returns the plaintext length, MTCSEC_ERR_MIC (wrong KEK or altered data;
 * out zeroed), NOBUF (outlen < inlen) or another negative mtcsec_err.
 */
typedef struct mtcsec_sq_unwrapper mtcsec_sq_unwrapper;
int mtcsec_sq_unwrapper_new(mtcsec_sq_unwrapper **pu,
                            const uint8_t kek[MTCSEC_KEK_LEN]);
void mtcsec_sq_unwrapper_del(mtcsec_sq_unwrapper *u);
mtcsec_ssize mtcsec_sq_unwrap(mtcsec_sq_unwrapper *u, const uint8_t *in,
                              size_t inlen, uint8_t *out, size_t outlen);

/* -------------------------------------------------------------- handle */

/* Columns of a device listing: id, suite, disabled, label, grp, created,
 * sessions, top, bitmap, next_key_id, upto (the last five NULL for a device
 * with no devstate row), then the log's folded mark (store_sqlite_log.c:
 * the row may lag the session log). */
#define SQ_DEVINFO_SQL                                                         \
  "SELECT d.id, d.suite, d.disabled, d.label, d.grp, d.created, "              \
  "s.sessions, s.top, s.bitmap, s.next_key_id, s.upto, "                       \
  "(SELECT folded FROM store_log) FROM device d LEFT JOIN devstate s "         \
  "ON s.id = d.id"

/* Statements cached per handle (prepared on first use, kept until close). */
typedef enum sq_stmt_id {
  SQ_BEGIN,
  SQ_COMMIT,
  SQ_ROLLBACK,
  SQ_GET_DEVICE,
  SQ_GET_STATE,
  SQ_GET_STATE_HEAD,
  SQ_GET_GRANT,
  SQ_GET_DEVICE_GRANT,
  SQ_RELAY_ALLOWED,
  SQ_PUT_STATE,
  SQ_PUT_SESSION,
  SQ_DEVICE_ADD,
  SQ_DEVICE_DISABLE,
  SQ_DEVICE_INFO,
  SQ_GRANT_SET_DEVICE,
  SQ_GRANT_SET_GROUP,
  SQ_GRANT_DEL_DEVICE,
  SQ_GRANT_DEL_GROUP,
  SQ_RELAY_ADD,
  SQ_RELAY_EXISTS,
  SQ_RELAY_ALLOW_DEVICE,
  SQ_RELAY_ALLOW_GROUP,
  SQ_SESSION_GET,
  SQ_SESSION_MARK,
  SQ_AUDIT_ADD,
  SQ_LOG_HEAD,
  SQ_LOG_TAIL,
  SQ_LOG_TAIL_DEV,
  SQ_LOG_SET_FOLDED,
  SQ_LOG_INDEX,
  SQ_LOG_SET_INDEXED,
  SQ_FOLD_SAVEPOINT,
  SQ_FOLD_RELEASE,
  SQ_FOLD_ROLLBACK_TO,
  SQ__COUNT
} sq_stmt_id;

typedef struct sq_shared sq_shared;

struct mtcsec_sqlite {
  sqlite3 *db;
  const mtcsec_crypto *crypto;
  mtcsec_kek_ctx *kek;
  mtcsec_sq_unwrapper *unwrap; /* device records on the hot path */
  int flags;
  sq_shared *sh; /* the session log's state, shared by the handles of one
                    database file in this process (store_sqlite_log.c) */
  sqlite3_stmt *stmts[SQ__COUNT];
  char err[512]; /* last error: SQLite's message or the store's own */
};

/** The cached statement id, prepared on first use; NULL on error (err set). */
sqlite3_stmt *mtcsec_sq_stmt(mtcsec_sqlite *st, sq_stmt_id id);

/**
 * Records a failure of SQLite call `what` (rc is its return) in st->err,
 * with advice for the operator, and returns MTCSEC_ERR_STORE.
 */
int mtcsec_sq_fail(mtcsec_sqlite *st, int rc, const char *what);

/** Writes a formatted sentence into st->err and returns rv. */
int mtcsec_sq_errf(mtcsec_sqlite *st, int rv, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

/** The store's wall clock: unix seconds. */
int64_t mtcsec_sq_now(void);

/** Runs a statement that returns no row (BEGIN, COMMIT, ...).  0 or STORE. */
int mtcsec_sq_exec(mtcsec_sqlite *st, sq_stmt_id id);

/** Rolls back the open transaction, if any (after a failure). */
void mtcsec_sq_rollback(mtcsec_sqlite *st);

/** Maps a uint64_t to an SQLite INTEGER (signed) bit for bit, and back. */
int64_t mtcsec_sq_u64_to_i64(uint64_t v);
uint64_t mtcsec_sq_i64_to_u64(int64_t v);

/**
 * Unwraps the key column of device id into out (suite and keys; disabled is
 * left as it is), zeroizing its temporaries.  Returns 0, or
 * MTCSEC_ERR_STORE with st->err set when the keys do not unwrap under the
 * KEK or do not belong to this device and suite.
 */
int mtcsec_sq_unwrap_device(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                            uint8_t suite, const uint8_t *wrapped,
                            size_t wrappedlen, mtcsec_store_device *out);

/**
 * Test hook (tests/store only): the handle's SQLite connection, so that a
 * test can inject faults (PRAGMA max_page_count, a short busy timeout).
 */
sqlite3 *mtcsec_sqlite_db(mtcsec_sqlite *st);

/* ------------------------------------------------ session log (windows) */

/*
 * store_sqlite_log.c.  The session table is the log of every accepted
 * exchange; devstate rows (the nonce windows) and the per-device session
 * index (session_run) are folded from it in sorted runs, away from the
 * per-commit path.  See the comment at the top of that file and
 * docs/STORE.md.
 */

/** session_run.run = session id >> SQ_RUN_BITS. */
#define SQ_RUN_BITS 14

/**
 * Attaches st to the log state of its database file (shared by the handles
 * of this process).  0, or MTCSEC_ERR_NOMEM with st->err.
 */
int mtcsec_sq_log_attach(mtcsec_sqlite *st, const char *path);

/** Detaches st; the last handle of a process that committed folds the log. */
void mtcsec_sq_log_detach(mtcsec_sqlite *st);

/**
 * Folds the log tail (a crash left it, or another process wrote sessions)
 * into devstate and session_run, so that this process's reads need not
 * read it: commit() with no transaction.  0 (also for a read-only handle)
 * or MTCSEC_ERR_STORE with st->err.
 */
int mtcsec_sq_log_prepare(mtcsec_sqlite *st);

/** The commit op of store.h (group commit over the log). */
int mtcsec_sq_log_commit(mtcsec_sqlite *st, mtcsec_store_txn *const *txns,
                         size_t n, int *results);

/**
 * The durable state of device id: window, next key id and the number of
 * sessions.  0 or MTCSEC_ERR_STORE (st->err set).
 */
int mtcsec_sq_log_state(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                        mtcsec_store_devstate *out, uint64_t *sessions);

/** The sessions of the log tail (listings): sorted by (device, id). */
typedef struct sq_tail_row {
  uint8_t id[MTCSEC_ID_LEN];
  int64_t sid;
  uint64_t nonce;
  uint16_t key_id;
} sq_tail_row;

typedef struct sq_tail {
  sq_tail_row *rows;
  size_t n;
} sq_tail;

/**
 * Loads every session with an id above the folded mark into t (caller
 * frees t->rows).  0, MTCSEC_ERR_NOMEM or MTCSEC_ERR_STORE.
 */
int mtcsec_sq_tail_load(mtcsec_sqlite *st, sq_tail *t);

/**
 * Applies to *ds and *sessions the sessions of t for device id whose id is
 * above after (the row's upto or the folded mark, whichever is higher).
 */
void mtcsec_sq_tail_apply(const sq_tail *t, const uint8_t id[MTCSEC_ID_LEN],
                          int64_t after, mtcsec_store_devstate *ds,
                          uint64_t *sessions);

/**
 * Test hook (tests/store): a fold cycle starts once `rows` sessions are not
 * yet folded, whatever store_log.fold_rows says (0: back to it), so that
 * tests can run many cycles.  Applies to every handle of st's file in this
 * process.
 */
void mtcsec_sqlite_set_fold_rows(mtcsec_sqlite *st, size_t rows);

#endif /* MTCSEC_STORE_SQLITE_SCHEMA_H */
