/*
 * SQLite store: the session log, and the nonce windows folded from it.
 *
 * Every accepted exchange is one row of the session table, with a rowid
 * (session id) that only grows (AUTOINCREMENT).  That row carries what the
 * durable window needs: the device, MTCdNonce and KEY_ID.  So a commit only
 * appends session rows (a few sequential pages per batch); it does not
 * update the device's devstate row nor a per-device index, which would each
 * dirty a page at a random place of a large B-tree per exchange (about 10
 * KB written per exchange with 10k devices, 15 KB with 1M).
 *
 * Durable state of device X (its window, next key id, number of sessions):
 * its devstate row, which holds every session of X with an id <= row.upto,
 * then, in id order, the sessions of X with an id above
 * max(row.upto, store_log.folded).  Folding a session = mtcsec_window_update
 * with its nonce, next_key_id = its KEY_ID + 1, sessions + 1: exactly what
 * the commit that accepted it did.  So the state is a function of the log,
 * and a crash at any point loses nothing that a commit made durable.
 *
 * In a process, the handles of one database file share an sq_shared: a map
 * of the devices whose state is not (yet) all in their devstate row, with
 * their exact state.  A commit (one at a time: commit_mu) reads each
 * device's state from the map, else from its row, checks and updates it,
 * appends the sessions, and, once COMMIT returned, publishes the new states
 * in the map (map_mu).  The map is exact while this process is the only
 * writer of sessions: `valid` and `last_id` (the highest session id it
 * accounts for); `valid == 0` means an empty map.  A commit that finds
 * sessions it did not write (a crash left them, or another process) first
 * rebuilds the map from the log (recovery), in memory, under its write
 * lock: it writes nothing, and the devices it finds lagging are dirty
 * entries that the fold cycles write later.  A reader (get_state,
 * device_get) uses the map when the log in its snapshot ends at or below
 * last_id, and otherwise reads the log tail of that device itself (a scan
 * of the whole tail); a process whose readers keep finding the map not
 * exact rebuilds it (SQ_INEXACT_READS).
 *
 * Folding, off the per-exchange path, after a commit's appends inside a
 * savepoint (fold work that does not fit, on a nearly full disk, is given
 * up and the appends are committed alone; mtcsec_sq_log_commit):
 *  - devstate: once `fold_rows` sessions are not folded, a fold cycle
 *    starts: the devices of the map that are not clean, sorted by ID, are
 *    written to devstate a slice per commit, over about SQ_SWEEP_COMMITS
 *    commits, so that each page of devstate is written about once per
 *    cycle and in key order.  When
 *    the cycle ends, store_log.folded moves to the last session id it
 *    covered; clean devices leave the map.
 *  - session_run (the per-device session index): each completed run of
 *    2^SQ_RUN_BITS sessions is inserted in key order (run, device, id), so
 *    the index only grows at its end.
 *  - commit() with no transaction folds the whole tail in a transaction of
 *    its own (a daemon calls it at start-up, after a crash, and before it
 *    stops), and the last close of a process that committed folds the
 *    rest, so a stopped database normally has no tail.  When that fold
 *    fails (a full disk), the map it rebuilt stays and the cycles fold it.
 * A failed commit writes nothing (fold slices included) and changes
 * nothing in memory but a map rebuilt from the log.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mtcsec/codec.h>

#include "core/util.h"
#include "store/sqlite_schema.h"

/* A fold cycle starts when this many sessions are not folded. */
#define SQ_FOLD_ROWS_DEFAULT 131072
/* A cycle writes its devices over about this many commits... */
#define SQ_SWEEP_COMMITS 32
/* ...and at least this many devices per commit. */
#define SQ_SWEEP_MIN 512
/* store_log.fold_rows is taken within these bounds (docs/STORE.md). */
#define SQ_FOLD_ROWS_MIN 1024
#define SQ_FOLD_ROWS_MAX 4194304
/* Fold work that did not fit (a nearly full disk) is skipped for 1, 2, 4..
 * up to this many commits before it is tried again. */
#define SQ_FOLD_WAIT_MAX 64
/* A process whose map is not exact rebuilds it from the log at the reader
 * that finds it so after this many: a tail scan per device read is a scan
 * of the whole tail. */
#define SQ_INEXACT_READS 4
#define SQ_RUN_SIZE ((int64_t)1 << SQ_RUN_BITS)

/* ------------------------------------------------------------ the map */

/* A device's exact state.  Dirty while last_sid > flushed_sid. */
typedef struct sq_ent {
  uint8_t id[MTCSEC_ID_LEN];
  uint8_t used;
  mtcsec_window window;
  uint16_t next_key_id;
  uint64_t sessions;
  int64_t last_sid;    /* id of its last session */
  int64_t flushed_sid; /* its devstate row holds it up to this session */
} sq_ent;

/* Open addressing, linear probing, deletion by backward shift. */
typedef struct sq_map {
  sq_ent *e;
  size_t cap; /* power of two, or 0 */
  size_t n;
} sq_map;

static uint64_t map_hash(const uint8_t id[MTCSEC_ID_LEN]) {
  uint64_t x = mtcsec_get_u64(id);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

static sq_ent *map_find(const sq_map *m, const uint8_t id[MTCSEC_ID_LEN]) {
  size_t i;
  if (m->n == 0) {
    return NULL;
  }
  for (i = (size_t)map_hash(id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->e[i].used) {
      return NULL;
    }
    if (memcmp(m->e[i].id, id, MTCSEC_ID_LEN) == 0) {
      return &m->e[i];
    }
  }
}

static int map_grow(sq_map *m) {
  size_t ncap = m->cap != 0 ? m->cap * 2 : 256, i;
  sq_ent *ne;
  if (ncap < m->cap || ncap > SIZE_MAX / sizeof(*ne)) {
    return MTCSEC_ERR_NOMEM;
  }
  ne = calloc(ncap, sizeof(*ne));
  if (ne == NULL) {
    return MTCSEC_ERR_NOMEM;
  }
  for (i = 0; i < m->cap; i++) {
    size_t j;
    if (!m->e[i].used) {
      continue;
    }
    for (j = (size_t)map_hash(m->e[i].id) & (ncap - 1); ne[j].used;
         j = (j + 1) & (ncap - 1)) {
    }
    ne[j] = m->e[i];
  }
  free(m->e);
  m->e = ne;
  m->cap = ncap;
  return 0;
}

/* The entry of id, created empty (used = 1, all else 0) if missing. */
static int map_get(sq_map *m, const uint8_t id[MTCSEC_ID_LEN], sq_ent **pe,
                   int *created) {
  size_t i;
  sq_ent *e = map_find(m, id);
  *created = 0;
  if (e != NULL) {
    *pe = e;
    return 0;
  }
  if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m) != 0) {
    return MTCSEC_ERR_NOMEM;
  }
  for (i = (size_t)map_hash(id) & (m->cap - 1); m->e[i].used;
       i = (i + 1) & (m->cap - 1)) {
  }
  e = &m->e[i];
  memset(e, 0, sizeof(*e));
  memcpy(e->id, id, MTCSEC_ID_LEN);
  e->used = 1;
  m->n++;
  *pe = e;
  *created = 1;
  return 0;
}

static void map_del(sq_map *m, sq_ent *e) {
  size_t i = (size_t)(e - m->e), j = i;
  m->e[i].used = 0;
  m->n--;
  for (;;) {
    size_t k;
    j = (j + 1) & (m->cap - 1);
    if (!m->e[j].used) {
      return;
    }
    k = (size_t)map_hash(m->e[j].id) & (m->cap - 1);
    /* Move j back to the hole i unless its home k lies cyclically in
     * (i, j]. */
    if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j)) {
      continue;
    }
    m->e[i] = m->e[j];
    m->e[j].used = 0;
    i = j;
  }
}

static void map_clear(sq_map *m) {
  if (m->e != NULL) {
    memset(m->e, 0, m->cap * sizeof(*m->e));
  }
  m->n = 0;
}

static void map_free(sq_map *m) {
  free(m->e);
  memset(m, 0, sizeof(*m));
}

/* ----------------------------------------------------- shared state */

struct sq_shared {
  sq_shared *next; /* registry */
  dev_t dev;
  ino_t ino;
  int registered;
  unsigned refs;
  pthread_mutex_t commit_mu; /* one commit, recovery or fold at a time */
  pthread_mutex_t map_mu;    /* map, valid, last_id */
  sq_map map;
  int valid;        /* map + devstate = the durable state up to last_id */
  int64_t last_id;  /* highest session id the map accounts for */
  int committed;    /* a commit of this process wrote sessions */
  size_t fold_rows; /* mtcsec_sqlite_set_fold_rows(); 0: store_log's */
  /* Readers that found the map not exact since it last was (map_mu). */
  unsigned inexact_reads;
  /* Under commit_mu only. */
  unsigned fold_wait; /* after failed fold work: commits it skips, doubling */
  unsigned fold_skip; /* commits left to skip it */
  sq_map batch;       /* states as the current batch changes them */
  uint8_t (*sweep)[MTCSEC_ID_LEN]; /* devices of the fold cycle, sorted */
  size_t nsweep, sweep_pos;
  int64_t sweep_end; /* the cycle folds every session up to this id */
};

static pthread_mutex_t sq_registry_mu = PTHREAD_MUTEX_INITIALIZER;
static sq_shared *sq_registry;

static void shared_free(sq_shared *sh) {
  map_free(&sh->map);
  map_free(&sh->batch);
  free(sh->sweep);
  pthread_mutex_destroy(&sh->commit_mu);
  pthread_mutex_destroy(&sh->map_mu);
  free(sh);
}

/* The shared state of path's file (a new one if none, or if the file
 * cannot be identified); NULL when out of memory. */
static sq_shared *shared_get(const char *path) {
  struct stat sb;
  int known = stat(path, &sb) == 0;
  sq_shared *sh;

  pthread_mutex_lock(&sq_registry_mu);
  for (sh = sq_registry; known && sh != NULL; sh = sh->next) {
    if (sh->dev == sb.st_dev && sh->ino == sb.st_ino) {
      sh->refs++;
      pthread_mutex_unlock(&sq_registry_mu);
      return sh;
    }
  }
  sh = calloc(1, sizeof(*sh));
  if (sh != NULL) {
    pthread_mutex_init(&sh->commit_mu, NULL);
    pthread_mutex_init(&sh->map_mu, NULL);
    sh->refs = 1;
    if (known) {
      sh->dev = sb.st_dev;
      sh->ino = sb.st_ino;
      sh->registered = 1;
      sh->next = sq_registry;
      sq_registry = sh;
    }
  }
  pthread_mutex_unlock(&sq_registry_mu);
  return sh;
}

/* Drops a reference; returns 1 when it was the last (sh is then out of the
 * registry and the caller frees it). */
static int shared_put(sq_shared *sh) {
  int last;
  pthread_mutex_lock(&sq_registry_mu);
  last = --sh->refs == 0;
  if (last && sh->registered) {
    sq_shared **pp = &sq_registry;
    while (*pp != sh) {
      pp = &(*pp)->next;
    }
    *pp = sh->next;
  }
  pthread_mutex_unlock(&sq_registry_mu);
  return last;
}

/* Forgets the map (its state is then read from the log). */
static void shared_invalidate(sq_shared *sh) {
  pthread_mutex_lock(&sh->map_mu);
  sh->valid = 0;
  map_clear(&sh->map);
  pthread_mutex_unlock(&sh->map_mu);
  free(sh->sweep);
  sh->sweep = NULL;
  sh->nsweep = sh->sweep_pos = 0;
}

/* ------------------------------------------------------- statements */

typedef struct sq_head {
  int64_t last;      /* highest session id */
  int64_t folded;    /* store_log.folded */
  int64_t indexed;   /* store_log.indexed */
  int64_t fold_rows; /* store_log.fold_rows; 0: the default */
} sq_head;

static int log_head(mtcsec_sqlite *st, sq_head *h) {
  sqlite3_stmt *s = mtcsec_sq_stmt(st, SQ_LOG_HEAD);
  int rc, rv = 0;
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    h->last = sqlite3_column_int64(s, 0);
    h->folded = sqlite3_column_int64(s, 1);
    h->indexed = sqlite3_column_int64(s, 2);
    h->fold_rows = sqlite3_column_int64(s, 3);
  } else if (rc == SQLITE_DONE) {
    rv = mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                        "sqlite store: the store_log row is missing (the "
                        "database was altered); restore it from a backup");
  } else {
    rv = mtcsec_sq_fail(st, rc, "reading the session log");
  }
  sqlite3_reset(s);
  return rv;
}

static int exec_i64(mtcsec_sqlite *st, sq_stmt_id id, int64_t a, int64_t b,
                    const char *what) {
  sqlite3_stmt *s = mtcsec_sq_stmt(st, id);
  int rc;
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sqlite3_bind_int64(s, 1, a);
  if (sqlite3_bind_parameter_count(s) >= 2) {
    sqlite3_bind_int64(s, 2, b);
  }
  rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : mtcsec_sq_fail(st, rc, what);
}

/* Window columns of a devstate row (top, bitmap, next_key_id, sessions,
 * upto) at column c; all absent (NULL) for a device never folded. */
static int row_state(mtcsec_sqlite *st, sqlite3_stmt *s, int c,
                     const uint8_t id[MTCSEC_ID_LEN], mtcsec_store_devstate *ds,
                     uint64_t *sessions, int64_t *upto) {
  char hex[17];
  int64_t kid;
  memset(ds, 0, sizeof(*ds));
  mtcsec_window_init(&ds->window);
  *sessions = 0;
  *upto = 0;
  if (sqlite3_column_type(s, c + 1) == SQLITE_NULL) {
    return 0;
  }
  kid = sqlite3_column_int64(s, c + 2);
  if (sqlite3_column_bytes(s, c + 1) != 8 || kid < 0 || kid > UINT16_MAX) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: the nonce window of device %s is "
                          "damaged; restore the database from a backup",
                          mtcsec_id_hex(hex, id));
  }
  ds->window.top = mtcsec_sq_i64_to_u64(sqlite3_column_int64(s, c));
  ds->window.bitmap = mtcsec_get_u64(sqlite3_column_blob(s, c + 1));
  ds->next_key_id = (uint16_t)kid;
  kid = sqlite3_column_int64(s, c + 3);
  *sessions = kid > 0 ? (uint64_t)kid : 0;
  *upto = sqlite3_column_int64(s, c + 4);
  return 0;
}

/* The devstate row of id into e (window, key id, sessions, flushed_sid =
 * the row's upto); an empty state when there is none. */
static int load_row(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                    sq_ent *e) {
  sqlite3_stmt *s = mtcsec_sq_stmt(st, SQ_GET_STATE);
  mtcsec_store_devstate ds;
  int rc, rv = 0;
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sqlite3_bind_blob(s, 1, id, MTCSEC_ID_LEN, SQLITE_STATIC);
  rc = sqlite3_step(s);
  memset(&ds, 0, sizeof(ds));
  mtcsec_window_init(&ds.window);
  e->sessions = 0;
  e->flushed_sid = 0;
  if (rc == SQLITE_ROW) {
    rv = row_state(st, s, 0, id, &ds, &e->sessions, &e->flushed_sid);
  } else if (rc != SQLITE_DONE) {
    rv = mtcsec_sq_fail(st, rc, "reading a nonce window");
  }
  sqlite3_reset(s);
  e->window = ds.window;
  e->next_key_id = ds.next_key_id;
  e->last_sid = e->flushed_sid;
  return rv;
}

static int put_row(mtcsec_sqlite *st, const sq_ent *e) {
  sqlite3_stmt *s = mtcsec_sq_stmt(st, SQ_PUT_STATE);
  uint8_t bitmap[8];
  int rc;
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  mtcsec_put_u64(bitmap, e->window.bitmap);
  sqlite3_bind_blob(s, 1, e->id, MTCSEC_ID_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, mtcsec_sq_u64_to_i64(e->window.top));
  sqlite3_bind_blob(s, 3, bitmap, sizeof(bitmap), SQLITE_STATIC);
  sqlite3_bind_int64(s, 4, e->next_key_id);
  sqlite3_bind_int64(s, 5, mtcsec_sq_u64_to_i64(e->sessions));
  sqlite3_bind_int64(s, 6, e->last_sid);
  rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? 0 : mtcsec_sq_fail(st, rc, "writing a window");
}

static int put_session(mtcsec_sqlite *st, const mtcsec_session_rec *r,
                       int64_t now, int64_t *sid) {
  sqlite3_stmt *s = mtcsec_sq_stmt(st, SQ_PUT_SESSION);
  int rc;
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sqlite3_bind_blob(s, 1, r->mtcd_id, MTCSEC_ID_LEN, SQLITE_STATIC);
  sqlite3_bind_blob(s, 2, r->ueid, MTCSEC_ID_LEN, SQLITE_STATIC);
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
  if (rc != SQLITE_DONE) {
    return mtcsec_sq_fail(st, rc, "recording a session");
  }
  *sid = sqlite3_last_insert_rowid(st->db);
  return 0;
}

/* One session of the log folded into a state. */
static void fold_one(sq_ent *e, int64_t sid, uint64_t nonce, uint16_t key_id) {
  mtcsec_window_update(&e->window, nonce);
  e->next_key_id = (uint16_t)(key_id + 1);
  e->sessions++;
  e->last_sid = sid;
}

/* Decodes one row of SQ_LOG_TAIL / SQ_LOG_TAIL_DEV (columns id, [device],
 * nonce, key_id from c0). */
static int tail_cols(mtcsec_sqlite *st, sqlite3_stmt *s, int dev_col,
                     int64_t *sid, uint8_t id[MTCSEC_ID_LEN], uint64_t *nonce,
                     uint16_t *key_id) {
  int c = dev_col ? 2 : 1;
  int64_t kid;
  *sid = sqlite3_column_int64(s, 0);
  kid = sqlite3_column_int64(s, c + 1);
  if ((dev_col && sqlite3_column_bytes(s, 1) != MTCSEC_ID_LEN) ||
      sqlite3_column_bytes(s, c) != MTCSEC_NONCE_LEN || kid < 0 ||
      kid > UINT16_MAX) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: session %lld is damaged; restore "
                          "the database from a backup",
                          (long long)*sid);
  }
  if (dev_col) {
    memcpy(id, sqlite3_column_blob(s, 1), MTCSEC_ID_LEN);
  }
  *nonce = mtcsec_get_u64(sqlite3_column_blob(s, c));
  *key_id = (uint16_t)kid;
  return 0;
}

/* ------------------------------------------------------- index runs */

/* Inserts the sessions (from, to] into session_run, in key order. */
static int index_runs(mtcsec_sqlite *st, int64_t from, int64_t to) {
  int rv;
  if (to <= from) {
    return 0;
  }
  rv = exec_i64(st, SQ_LOG_INDEX, from, to, "indexing sessions");
  if (rv == 0) {
    rv = exec_i64(st, SQ_LOG_SET_INDEXED, to, 0, "indexing sessions");
  }
  return rv;
}

/* -------------------------------------------------------------- fold */

static int cmp_id(const void *a, const void *b) {
  return memcmp(a, b, MTCSEC_ID_LEN);
}

static int cmp_ent(const void *a, const void *b) {
  return memcmp(((const sq_ent *)a)->id, ((const sq_ent *)b)->id,
                MTCSEC_ID_LEN);
}

/* Writes the entries of m whose state is not all in their row (sorted by
 * ID), inside the caller's write transaction. */
static int write_dirty(mtcsec_sqlite *st, const sq_map *m) {
  sq_ent *v;
  size_t i, k = 0;
  int rv = 0;
  if (m->n == 0) {
    return 0;
  }
  v = malloc(m->n * sizeof(*v));
  if (v == NULL) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_NOMEM, "sqlite store: out of memory");
  }
  for (i = 0; i < m->cap; i++) {
    if (m->e[i].used && m->e[i].last_sid > m->e[i].flushed_sid) {
      v[k++] = m->e[i];
    }
  }
  qsort(v, k, sizeof(*v), cmp_ent);
  for (i = 0; rv == 0 && i < k; i++) {
    rv = put_row(st, &v[i]);
  }
  free(v);
  return rv;
}

/*
 * Recovery: rebuilds the map from the log, in memory, inside the caller's
 * transaction (commit_mu held).  Every session above the folded mark is
 * folded into its device's state (its devstate row, then its sessions above
 * the row's upto); the devices whose state is not all in their row become
 * the map, dirty, and the fold cycles write them later like the states that
 * commits leave.  Nothing is written, so a full disk cannot stop it, and it
 * is the same whoever wrote the tail (a crash, another process).  On success
 * the map is exact up to h->last; otherwise it is empty and not valid.
 */
static int rebuild(mtcsec_sqlite *st, const sq_head *h) {
  sq_shared *sh = st->sh;
  sqlite3_stmt *s;
  sq_map m;
  size_t i;
  int rc, rv = 0;

  shared_invalidate(sh);
  memset(&m, 0, sizeof(m));
  if (h->last > h->folded) {
    s = mtcsec_sq_stmt(st, SQ_LOG_TAIL);
    if (s == NULL) {
      return MTCSEC_ERR_STORE;
    }
    sqlite3_bind_int64(s, 1, h->folded);
    while (rv == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
      uint8_t id[MTCSEC_ID_LEN];
      uint64_t nonce = 0;
      uint16_t key_id = 0;
      int64_t sid = 0;
      sq_ent *e = NULL;
      int created = 0;
      rv = tail_cols(st, s, 1, &sid, id, &nonce, &key_id);
      if (rv == 0 && (rv = map_get(&m, id, &e, &created)) != 0) {
        rv = mtcsec_sq_errf(st, rv, "sqlite store: out of memory");
      }
      if (rv == 0 && created) {
        rv = load_row(st, id, e);
      }
      if (rv == 0 && sid > e->flushed_sid) {
        fold_one(e, sid, nonce, key_id);
      }
    }
    if (rv == 0 && rc != SQLITE_DONE) {
      rv = mtcsec_sq_fail(st, rc, "reading the session log");
    }
    sqlite3_reset(s);
  }
  if (rv != 0) {
    map_free(&m);
    return rv;
  }
  /* Devices whose row already holds their tail (a cycle's slices) are not
   * the map's.  map_del shifts later entries back into slot i: look at it
   * again. */
  for (i = 0; i < m.cap;) {
    if (m.e[i].used && m.e[i].last_sid <= m.e[i].flushed_sid) {
      map_del(&m, &m.e[i]);
    } else {
      i++;
    }
  }
  pthread_mutex_lock(&sh->map_mu);
  map_free(&sh->map);
  sh->map = m;
  sh->valid = 1;
  sh->last_id = h->last;
  sh->inexact_reads = 0;
  pthread_mutex_unlock(&sh->map_mu);
  return 0;
}

/* Forgets the fold cycle in progress; commit_mu held. */
static void sweep_stop(sq_shared *sh) {
  free(sh->sweep);
  sh->sweep = NULL;
  sh->nsweep = sh->sweep_pos = 0;
}

/*
 * Folds the whole log into devstate and session_run in a transaction of
 * its own (commit() with no transaction: a daemon's start-up and stop; the
 * last close of a process that committed).  The map is rebuilt first when
 * it is not exact, and stays so when the writes fail (a full disk): the
 * next commits then fold it over cycles.  On success every state is in its
 * row, both marks are at the last session and the map is empty.  commit_mu
 * held.
 */
static int fold_all(mtcsec_sqlite *st) {
  sq_shared *sh = st->sh;
  sq_head h;
  int rv = mtcsec_sq_exec(st, SQ_BEGIN);

  if (rv == 0) {
    rv = log_head(st, &h);
  }
  if (rv == 0 && (!sh->valid || h.last != sh->last_id)) {
    rv = rebuild(st, &h);
  }
  if (rv == 0) {
    rv = write_dirty(st, &sh->map);
  }
  if (rv == 0) {
    rv = exec_i64(st, SQ_LOG_SET_FOLDED, h.last, 0, "folding windows");
  }
  if (rv == 0) {
    rv = index_runs(st, h.indexed, h.last);
  }
  if (rv == 0) {
    rv = mtcsec_sq_exec(st, SQ_COMMIT);
  }
  if (rv != 0) {
    mtcsec_sq_rollback(st);
    return rv;
  }
  sweep_stop(sh);
  sh->fold_wait = sh->fold_skip = 0;
  pthread_mutex_lock(&sh->map_mu);
  map_clear(&sh->map); /* every state is its row now */
  sh->valid = 1;
  sh->last_id = h.last;
  sh->inexact_reads = 0;
  pthread_mutex_unlock(&sh->map_mu);
  return 0;
}

/* Whether the log has anything to fold (or this process's map is not
 * exact); commit_mu held. */
static int fold_pending(mtcsec_sqlite *st) {
  sq_head h;
  return !st->sh->valid || log_head(st, &h) != 0 || h.last != st->sh->last_id ||
         h.last != h.folded || h.last != h.indexed;
}

/* --------------------------------------------------------- open/close */

int mtcsec_sq_log_attach(mtcsec_sqlite *st, const char *path) {
  sq_shared *sh = shared_get(path);
  sq_head h;

  if (sh == NULL) {
    return mtcsec_sq_errf(st, MTCSEC_ERR_NOMEM, "sqlite store: out of memory");
  }
  st->sh = sh;
  pthread_mutex_lock(&sh->commit_mu);
  if (!sh->valid && log_head(st, &h) == 0 && h.last == h.folded &&
      h.last == h.indexed) {
    /* Nothing to fold: the map (empty) is exact.  Otherwise the log has a
     * tail (a crash, or another process writing now): readers read it
     * (mtcsec_sq_log_state) until a commit of this process folds it
     * (mtcsec_sq_log_prepare). */
    pthread_mutex_lock(&sh->map_mu);
    sh->valid = 1;
    sh->last_id = h.last;
    pthread_mutex_unlock(&sh->map_mu);
  }
  pthread_mutex_unlock(&sh->commit_mu);
  st->err[0] = '\0';
  return 0;
}

void mtcsec_sq_log_detach(mtcsec_sqlite *st) {
  sq_shared *sh = st->sh;
  if (sh == NULL) {
    return;
  }
  st->sh = NULL;
  if (!shared_put(sh)) {
    return;
  }
  /* The last handle of this file in a process that wrote sessions: fold
   * its sessions, so that a stopped database has no log tail.  Best
   * effort and silent: a daemon runs this fold as commit() with no
   * transaction before it closes, and reports a failure; the next start
   * folds what is left. */
  if ((st->flags & MTCSEC_SQLITE_READONLY) == 0 && st->db != NULL &&
      sh->committed) {
    st->sh = sh;
    if (fold_pending(st)) {
      (void)fold_all(st);
    }
    st->sh = NULL;
  }
  shared_free(sh);
}

int mtcsec_sq_log_prepare(mtcsec_sqlite *st) {
  sq_shared *sh = st->sh;
  int rv = 0;
  if ((st->flags & MTCSEC_SQLITE_READONLY) != 0) {
    return 0;
  }
  pthread_mutex_lock(&sh->commit_mu);
  if (fold_pending(st)) {
    rv = fold_all(st);
  }
  pthread_mutex_unlock(&sh->commit_mu);
  return rv == 0 ? 0 : MTCSEC_ERR_STORE;
}

void mtcsec_sqlite_set_fold_rows(mtcsec_sqlite *st, size_t rows) {
  if (st != NULL && st->sh != NULL) {
    pthread_mutex_lock(&st->sh->commit_mu);
    st->sh->fold_rows = rows;
    pthread_mutex_unlock(&st->sh->commit_mu);
  }
}

/* ------------------------------------------------------------- commit */

/* A flushed slice: device and the session its row now holds. */
typedef struct sq_flushed {
  uint8_t id[MTCSEC_ID_LEN];
  int64_t sid;
} sq_flushed;

/* The state of id as the batch sees it: its batch entry, created from the
 * map or the devstate row on first use. */
static int batch_state(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                       sq_ent **pe) {
  sq_shared *sh = st->sh;
  const sq_ent *m;
  int created, rv = map_get(&sh->batch, id, pe, &created);
  if (rv != 0) {
    return mtcsec_sq_errf(st, rv, "sqlite store: out of memory");
  }
  if (!created) {
    return 0;
  }
  /* Only this thread (commit_mu) changes the map: no map_mu to read. */
  m = map_find(&sh->map, id);
  if (m != NULL) {
    **pe = *m;
    return 0;
  }
  rv = load_row(st, id, *pe);
  if (rv != 0) {
    (*pe)->used = 0; /* the batch is abandoned anyway */
  }
  return rv;
}

/* The next slice of the fold cycle, inside the batch's transaction; the
 * devices written go to fl (*nfl), and *next is where the cycle stands
 * once the transaction commits. */
static int sweep_slice(mtcsec_sqlite *st, sq_flushed *fl, size_t *nfl, size_t q,
                       size_t *next, int *cycle_done) {
  sq_shared *sh = st->sh;
  size_t i;
  int rv = 0;

  *nfl = 0;
  *cycle_done = 0;
  *next = sh->sweep_pos;
  for (i = sh->sweep_pos; rv == 0 && i < sh->nsweep && *nfl < q; i++) {
    const sq_ent *e = map_find(&sh->batch, sh->sweep[i]);
    if (e == NULL) {
      e = map_find(&sh->map, sh->sweep[i]);
    }
    if (e == NULL || e->last_sid <= e->flushed_sid) {
      continue;
    }
    rv = put_row(st, e);
    memcpy(fl[*nfl].id, e->id, MTCSEC_ID_LEN);
    fl[*nfl].sid = e->last_sid;
    (*nfl)++;
  }
  if (rv == 0 && i >= sh->nsweep) {
    *cycle_done = 1;
    rv = exec_i64(st, SQ_LOG_SET_FOLDED, sh->sweep_end, 0, "folding windows");
  }
  *next = i;
  return rv;
}

/* Starts a fold cycle over the dirty devices of the map; commit_mu held.
 * Out of memory: no cycle now (the next commit tries again). */
static void sweep_start(sq_shared *sh) {
  size_t i, k = 0;
  free(sh->sweep);
  sh->sweep = NULL;
  sh->nsweep = sh->sweep_pos = 0;
  if (sh->map.n == 0) {
    return;
  }
  sh->sweep = malloc(sh->map.n * sizeof(*sh->sweep));
  if (sh->sweep == NULL) {
    return;
  }
  for (i = 0; i < sh->map.cap; i++) {
    if (sh->map.e[i].used && sh->map.e[i].last_sid > sh->map.e[i].flushed_sid) {
      memcpy(sh->sweep[k++], sh->map.e[i].id, MTCSEC_ID_LEN);
    }
  }
  qsort(sh->sweep, k, sizeof(*sh->sweep), cmp_id);
  sh->nsweep = k;
  sh->sweep_end = sh->last_id;
}

/* Publishes the batch's states and the flushed slice; commit_mu held.  Out
 * of memory: the map is emptied and not valid (the next commit rebuilds
 * it from the log). */
static void publish(sq_shared *sh, const sq_flushed *fl, size_t nfl,
                    int64_t last) {
  size_t i;
  pthread_mutex_lock(&sh->map_mu);
  for (i = 0; i < sh->batch.cap && sh->batch.n > 0; i++) {
    const sq_ent *b = &sh->batch.e[i];
    sq_ent *e;
    int created;
    if (!b->used || b->last_sid <= b->flushed_sid) {
      continue; /* only read (replays): nothing new */
    }
    e = map_find(&sh->map, b->id);
    if (e == NULL && map_get(&sh->map, b->id, &e, &created) != 0) {
      /* Cannot record it: the map is no longer exact. */
      sh->valid = 0;
      map_clear(&sh->map);
      pthread_mutex_unlock(&sh->map_mu);
      return;
    }
    *e = *b;
  }
  for (i = 0; i < nfl; i++) {
    sq_ent *e = map_find(&sh->map, fl[i].id);
    if (e == NULL) {
      continue;
    }
    if (fl[i].sid > e->flushed_sid) {
      e->flushed_sid = fl[i].sid;
    }
    if (e->flushed_sid >= e->last_sid) {
      map_del(&sh->map, e); /* its row is its whole state */
    }
  }
  if (last > sh->last_id) {
    sh->last_id = last;
  }
  pthread_mutex_unlock(&sh->map_mu);
}

/*
 * The fold work of a commit, after its appends, inside SAVEPOINT fold: the
 * next slice of the fold cycle and the completed runs of the session index.
 * Returns 0, or an error with *clean set when the work was rolled back to
 * the savepoint (the appends are then intact and can be committed alone).
 */
static int fold_work(mtcsec_sqlite *st, const sq_head *h, int64_t last,
                     sq_flushed *fl, size_t q, size_t *nfl, size_t *next,
                     int *cycle_done, int *clean) {
  sq_shared *sh = st->sh;
  int64_t hi = ((last + 1) & ~(SQ_RUN_SIZE - 1)) - 1;
  int rv = mtcsec_sq_exec(st, SQ_FOLD_SAVEPOINT);

  *clean = 0;
  if (rv != 0) {
    *clean = !sqlite3_get_autocommit(st->db);
    return rv;
  }
  if (sh->nsweep > 0) {
    rv = sweep_slice(st, fl, nfl, q, next, cycle_done);
  }
  if (rv == 0 && hi > h->indexed) {
    /* Completed runs of the session index, each in one sorted insert. */
    rv = index_runs(st, h->indexed, hi);
  }
  if (rv == 0) {
    rv = mtcsec_sq_exec(st, SQ_FOLD_RELEASE);
  }
  if (rv != 0 && !sqlite3_get_autocommit(st->db)) {
    /* Some errors (SQLITE_FULL, IOERR) may have rolled the whole
     * transaction back; otherwise undo the fold work alone. */
    *clean = mtcsec_sq_exec(st, SQ_FOLD_ROLLBACK_TO) == 0 &&
             mtcsec_sq_exec(st, SQ_FOLD_RELEASE) == 0;
  }
  if (rv != 0) {
    *nfl = 0;
    *next = sh->sweep_pos;
    *cycle_done = 0;
  }
  return rv;
}

/*
 * A commit: the batch's appends, then the fold work (a fold slice, index
 * runs) in a savepoint, then COMMIT.  Fold work that fails (a nearly full
 * disk: it writes more pages than the appends) is rolled back to the
 * savepoint and the appends are committed alone; a COMMIT that fails with
 * fold work in it (a real full disk fails there, writing the WAL) is tried
 * once more without it: the same appends in a new transaction.  Then the
 * fold work waits for 1, 2, 4.. SQ_FOLD_WAIT_MAX commits before it is tried
 * again.  The appended rows are durable when this returns 0; a failure
 * writes nothing and changes no state (a rebuilt map is the log's state,
 * read under the write lock: it stays).
 */
int mtcsec_sq_log_commit(mtcsec_sqlite *st, mtcsec_store_txn *const *txns,
                         size_t n, int *results) {
  sq_shared *sh = st->sh;
  sq_flushed *fl = NULL;
  size_t i, nfl = 0, q = 0, next = 0;
  int64_t now = mtcsec_sq_now(), last = 0;
  int rv = 0, attempt, fold, folding = 0, fold_failed = 0, cycle_done = 0;
  sq_head h;

  memset(&h, 0, sizeof(h));
  pthread_mutex_lock(&sh->commit_mu);
  fold = sh->fold_skip == 0;
  if (!fold) {
    sh->fold_skip--;
  }
  for (attempt = 0; attempt < 2; attempt++) {
    nfl = 0;
    next = sh->sweep_pos;
    cycle_done = 0;
    folding = 0;
    map_clear(&sh->batch);
    rv = mtcsec_sq_exec(st, SQ_BEGIN);
    if (rv == 0) {
      rv = log_head(st, &h);
    }
    if (rv == 0 && (!sh->valid || h.last != sh->last_id)) {
      /* Sessions this process did not write (or a map that is not exact):
       * rebuild the state from the log, in memory. */
      rv = rebuild(st, &h);
    }
    last = h.last;
    for (i = 0; rv == 0 && i < n; i++) {
      const mtcsec_store_txn *t = txns[i];
      sq_ent *e = NULL;
      int64_t sid = 0;
      rv = batch_state(st, t->session.mtcd_id, &e);
      if (rv != 0) {
        break;
      }
      /* The authoritative check, against the state as this transaction
       * sees it (earlier transactions of the batch included). */
      if (mtcsec_window_check(&e->window, t->nonce) != 0) {
        results[i] = MTCSEC_ERR_REPLAY; /* nothing written for it */
        continue;
      }
      rv = put_session(st, &t->session, now, &sid);
      if (rv == 0) {
        fold_one(e, sid, t->nonce, t->session.key_id);
        last = sid;
        results[i] = 0;
      }
    }
    if (rv == 0 && fold &&
        (sh->nsweep > 0 || ((last + 1) & ~(SQ_RUN_SIZE - 1)) - 1 > h.indexed)) {
      int clean = 0, frv;
      if (fl == NULL && sh->nsweep > 0) {
        q = (sh->nsweep + SQ_SWEEP_COMMITS - 1) / SQ_SWEEP_COMMITS;
        if (q < SQ_SWEEP_MIN) {
          q = SQ_SWEEP_MIN;
        }
        fl = malloc(q * sizeof(*fl));
      }
      if (fl != NULL || sh->nsweep == 0) {
        folding = 1;
        frv = fold_work(st, &h, last, fl, q, &nfl, &next, &cycle_done, &clean);
        if (frv != 0) {
          fold_failed = 1;
          if (!clean) {
            rv = frv; /* the transaction is gone: again without it */
          }
        }
      }
    }
    if (rv == 0) {
      rv = mtcsec_sq_exec(st, SQ_COMMIT);
    }
    if (rv == 0) {
      break;
    }
    mtcsec_sq_rollback(st);
    if (!folding) {
      break; /* nothing to leave out */
    }
    fold_failed = 1;
    fold = 0;
  }
  if (rv != 0) {
    for (i = 0; i < n; i++) {
      results[i] = MTCSEC_ERR_STORE;
    }
    free(fl);
    map_clear(&sh->batch);
    pthread_mutex_unlock(&sh->commit_mu);
    return MTCSEC_ERR_STORE;
  }
  publish(sh, fl, nfl, last);
  if (last > h.last) {
    sh->committed = 1;
  }
  free(fl);
  map_clear(&sh->batch);
  if (fold_failed) {
    sh->fold_wait = sh->fold_wait == 0                      ? 1
                    : sh->fold_wait >= SQ_FOLD_WAIT_MAX / 2 ? SQ_FOLD_WAIT_MAX
                                                            : sh->fold_wait * 2;
    sh->fold_skip = sh->fold_wait;
  } else if (folding) {
    sh->fold_wait = 0;
  }
  if (sh->nsweep > 0) {
    sh->sweep_pos = next;
  }
  if (cycle_done) {
    sweep_stop(sh);
    h.folded = sh->sweep_end;
  }
  {
    int64_t rows = (int64_t)sh->fold_rows;
    if (rows == 0) {
      rows = h.fold_rows <= 0                 ? SQ_FOLD_ROWS_DEFAULT
             : h.fold_rows < SQ_FOLD_ROWS_MIN ? SQ_FOLD_ROWS_MIN
             : h.fold_rows > SQ_FOLD_ROWS_MAX ? SQ_FOLD_ROWS_MAX
                                              : h.fold_rows;
    }
    if (sh->nsweep == 0 && sh->valid && last - h.folded >= rows) {
      sweep_start(sh);
    }
  }
  pthread_mutex_unlock(&sh->commit_mu);
  return 0;
}

/* -------------------------------------------------------------- reads */

/* The sessions of id above `after`, folded into *e. */
static int tail_of(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                   int64_t after, sq_ent *e) {
  sqlite3_stmt *s = mtcsec_sq_stmt(st, SQ_LOG_TAIL_DEV);
  int rc, rv = 0;
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sqlite3_bind_int64(s, 1, after);
  sqlite3_bind_blob(s, 2, id, MTCSEC_ID_LEN, SQLITE_STATIC);
  while (rv == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    uint64_t nonce = 0;
    uint16_t key_id = 0;
    int64_t sid = 0;
    rv = tail_cols(st, s, 0, &sid, NULL, &nonce, &key_id);
    if (rv == 0) {
      fold_one(e, sid, nonce, key_id);
    }
  }
  if (rv == 0 && rc != SQLITE_DONE) {
    rv = mtcsec_sq_fail(st, rc, "reading the session log");
  }
  sqlite3_reset(s);
  return rv;
}

/*
 * Rebuilds this process's map from the log for a reader (commit_mu: not
 * during a commit of this process), in a read transaction of st: then
 * every read uses the map instead of scanning the tail (the tail has no
 * per-device index: one scan of all of it per device read).
 */
static int read_rebuild(mtcsec_sqlite *st) {
  sq_shared *sh = st->sh;
  sq_head h;
  int rv;

  pthread_mutex_lock(&sh->commit_mu);
  rv = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK
         ? 0
         : mtcsec_sq_fail(st, sqlite3_errcode(st->db), "reading the log");
  if (rv == 0) {
    rv = log_head(st, &h);
    if (rv == 0 && (!sh->valid || h.last != sh->last_id)) {
      rv = rebuild(st, &h);
    }
    mtcsec_sq_rollback(st); /* ends the read transaction */
  }
  pthread_mutex_unlock(&sh->commit_mu);
  return rv;
}

int mtcsec_sq_log_state(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                        mtcsec_store_devstate *out, uint64_t *sessions) {
  sq_shared *sh = st->sh;
  sqlite3_stmt *s = mtcsec_sq_stmt(st, SQ_GET_STATE_HEAD);
  mtcsec_store_devstate ds;
  sq_ent mine, e;
  int64_t last = 0, folded = 0, upto = 0;
  int attempt, rc, rv = 0, found = 0, exact = 0;

  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  memset(&e, 0, sizeof(e));
  memset(&mine, 0, sizeof(mine));
  memset(&ds, 0, sizeof(ds));
  for (attempt = 0; attempt < 3 && !exact; attempt++) {
    int valid;
    int64_t known;
    /* The map first, then the snapshot: a device leaves the map only
     * after the commit that wrote its row, which the snapshot then sees. */
    pthread_mutex_lock(&sh->map_mu);
    valid = sh->valid;
    known = sh->last_id;
    {
      const sq_ent *m = map_find(&sh->map, id);
      found = m != NULL;
      if (found) {
        mine = *m;
      }
    }
    pthread_mutex_unlock(&sh->map_mu);
    sqlite3_bind_blob(s, 1, id, MTCSEC_ID_LEN, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      last = sqlite3_column_int64(s, 0);
      folded = sqlite3_column_int64(s, 1);
      rv = row_state(st, s, 2, id, &ds, &e.sessions, &upto);
    } else if (rc == SQLITE_DONE) {
      rv = mtcsec_sq_errf(st, MTCSEC_ERR_STORE,
                          "sqlite store: the store_log row is missing (the "
                          "database was altered); restore it from a backup");
    } else {
      rv = mtcsec_sq_fail(st, rc, "reading a nonce window");
    }
    sqlite3_reset(s);
    if (rv != 0) {
      return rv;
    }
    /* Every session of the snapshot is one the map accounts for. */
    exact = valid && last <= known;
    if (!exact && attempt == 1) {
      /* Twice (not the race with a commit that publishes): rebuild the
       * map once readers keep finding it so, then read it again. */
      int want;
      pthread_mutex_lock(&sh->map_mu);
      want = ++sh->inexact_reads >= SQ_INEXACT_READS;
      if (want) {
        sh->inexact_reads = 0;
      }
      pthread_mutex_unlock(&sh->map_mu);
      if (!want || read_rebuild(st) != 0) {
        break; /* this device's tail, below */
      }
    }
  }
  if (exact && found) {
    e = mine;
  } else {
    e.window = ds.window;
    e.next_key_id = ds.next_key_id;
    if (!exact) {
      /* Not all of the log is known here: this device's own tail. */
      rv = tail_of(st, id, upto > folded ? upto : folded, &e);
      if (rv != 0) {
        return rv;
      }
    }
  }
  memset(out, 0, sizeof(*out));
  out->window = e.window;
  out->next_key_id = e.next_key_id;
  if (sessions != NULL) {
    *sessions = e.sessions;
  }
  return 0;
}

/* ------------------------------------------------------------- listings */

static int cmp_tail(const void *a, const void *b) {
  const sq_tail_row *x = a, *y = b;
  int c = memcmp(x->id, y->id, MTCSEC_ID_LEN);
  if (c != 0) {
    return c;
  }
  return x->sid < y->sid ? -1 : x->sid > y->sid;
}

int mtcsec_sq_tail_load(mtcsec_sqlite *st, sq_tail *t) {
  sqlite3_stmt *s;
  size_t cap = 0;
  sq_head h;
  int rc, rv;

  memset(t, 0, sizeof(*t));
  rv = log_head(st, &h);
  if (rv != 0 || h.last <= h.folded) {
    return rv;
  }
  s = mtcsec_sq_stmt(st, SQ_LOG_TAIL);
  if (s == NULL) {
    return MTCSEC_ERR_STORE;
  }
  sqlite3_bind_int64(s, 1, h.folded);
  while (rv == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    sq_tail_row *r;
    if (t->n == cap) {
      size_t ncap = cap != 0 ? cap * 2 : 1024;
      sq_tail_row *nr = realloc(t->rows, ncap * sizeof(*nr));
      if (nr == NULL) {
        rv = mtcsec_sq_errf(st, MTCSEC_ERR_NOMEM,
                            "sqlite store: out of "
                            "memory");
        break;
      }
      t->rows = nr;
      cap = ncap;
    }
    r = &t->rows[t->n];
    rv = tail_cols(st, s, 1, &r->sid, r->id, &r->nonce, &r->key_id);
    if (rv == 0) {
      t->n++;
    }
  }
  if (rv == 0 && rc != SQLITE_DONE) {
    rv = mtcsec_sq_fail(st, rc, "reading the session log");
  }
  sqlite3_reset(s);
  if (rv != 0) {
    free(t->rows);
    memset(t, 0, sizeof(*t));
    return rv;
  }
  qsort(t->rows, t->n, sizeof(*t->rows), cmp_tail);
  return 0;
}

void mtcsec_sq_tail_apply(const sq_tail *t, const uint8_t id[MTCSEC_ID_LEN],
                          int64_t after, mtcsec_store_devstate *ds,
                          uint64_t *sessions) {
  size_t lo = 0, hi = t->n;
  sq_ent e;
  /* First row of id. */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (memcmp(t->rows[mid].id, id, MTCSEC_ID_LEN) < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  memset(&e, 0, sizeof(e));
  e.window = ds->window;
  e.next_key_id = ds->next_key_id;
  e.sessions = *sessions;
  for (; lo < t->n && memcmp(t->rows[lo].id, id, MTCSEC_ID_LEN) == 0; lo++) {
    if (t->rows[lo].sid > after) {
      fold_one(&e, t->rows[lo].sid, t->rows[lo].nonce, t->rows[lo].key_id);
    }
  }
  ds->window = e.window;
  ds->next_key_id = e.next_key_id;
  *sessions = e.sessions;
}
