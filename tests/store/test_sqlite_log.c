/*
 * The SQLite store's session log (src/store/store_sqlite_log.c): commits
 * append sessions, and the nonce windows (devstate) and the per-device
 * session index (session_run) are folded from the log later, in sorted
 * runs.  Checked against a model of the windows (the spec's window
 * functions applied in commit order), with fold cycles made frequent:
 *  - a seeded random walk (replays, slides, jumps, reopen, a second
 *    handle) compared with the model after every batch;
 *  - crash images: the database and its WAL copied between two commits,
 *    as kill -9 would leave them, then opened read-only (the log tail read
 *    as is) and read-write (recovered): the state of the copy moment;
 *  - another process writing sessions: this process's readers and its
 *    next commit see them;
 *  - a commit that fails in the middle of a fold cycle changes nothing;
 *  - the session index over several runs, and the migration from
 *    schema version 1.
 */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include <mtcsec/store_sqlite.h>
#include <mtcsec/codec.h>

#include "sqlite_fixture.h"
#include "store/sqlite_schema.h"

static const uint8_t mtcs_id[8] = {0x5e, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t ue_a[8] = {0xe0, 0, 0, 0, 0, 0, 0, 0x01};

#define NDEV 40
#define MAXB 24

/* ---------------------------------------------------------------- model */

typedef struct model {
  mtcsec_window w[NDEV];
  uint16_t next_key_id[NDEV];
  uint64_t sessions[NDEV];
  uint64_t total;
} model;

static void dev_id(uint8_t out[8], unsigned i) {
  /* Spread over the key space, not in index order. */
  mtcsec_put_u64(out, 0xd000000000000000ULL ^
                        ((uint64_t)(i * 2654435761u) << 16) ^ (uint64_t)i);
}

static void model_init(model *m) {
  unsigned i;
  memset(m, 0, sizeof(*m));
  for (i = 0; i < NDEV; i++) {
    mtcsec_window_init(&m->w[i]);
  }
}

/* What commit() must answer for the batch, applied to the model. */
static void model_apply(model *m, const unsigned *dev, const uint64_t *nonce,
                        const uint16_t *kid, size_t n, int *want) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (mtcsec_window_check(&m->w[dev[i]], nonce[i]) != 0) {
      want[i] = MTCSEC_ERR_REPLAY;
      continue;
    }
    mtcsec_window_update(&m->w[dev[i]], nonce[i]);
    m->next_key_id[dev[i]] = (uint16_t)(kid[i] + 1);
    m->sessions[dev[i]]++;
    m->total++;
    want[i] = 0;
  }
}

typedef struct fx {
  char dir[SFX_PATH_MAX];
  char db[SFX_PATH_MAX];
  mtcsec_sqlite *st;
  uint64_t rng;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  sfx_mkdtemp(f->dir);
  sfx_join(f->db, f->dir, "mtcsd.db");
  f->st = sfx_open(f->db, sfx_kek, MTCSEC_SQLITE_CREATE);
  f->rng = 0x9e3779b97f4a7c15ULL;
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

static uint64_t rnd(fx *f) {
  f->rng ^= f->rng << 13;
  f->rng ^= f->rng >> 7;
  f->rng ^= f->rng << 17;
  return f->rng;
}

static void reopen(fx *f, int flags) {
  mtcsec_sqlite_close(f->st);
  f->st = sfx_open(f->db, sfx_kek, flags);
}

static mtcsec_store_txn make_txn(unsigned dev, uint64_t nonce,
                                 uint16_t key_id) {
  mtcsec_store_txn t;
  memset(&t, 0, sizeof(t));
  t.nonce = nonce;
  dev_id(t.session.mtcd_id, dev);
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

/* One batch: commits it on st and checks every result against the model
 * (applied to m). */
static int run_batch(mtcsec_sqlite *st, model *m, const unsigned *dev,
                     const uint64_t *nonce, const uint16_t *kid, size_t n) {
  mtcsec_store_txn t[MAXB], *p[MAXB];
  int res[MAXB], want[MAXB];
  size_t i;
  int rv;
  assert_true(n <= MAXB);
  for (i = 0; i < n; i++) {
    t[i] = make_txn(dev[i], nonce[i], kid[i]);
    p[i] = &t[i];
    res[i] = 0x7f;
  }
  rv = mtcsec_sqlite_ops.commit(st, p, n, res);
  if (rv != 0) {
    for (i = 0; i < n; i++) {
      assert_int_equal(res[i], MTCSEC_ERR_STORE);
    }
    return rv;
  }
  model_apply(m, dev, nonce, kid, n, want);
  for (i = 0; i < n; i++) {
    if (res[i] != want[i]) {
      fail_msg("txn %zu (dev %u nonce %llu): result %d, model %d", i, dev[i],
               (unsigned long long)nonce[i], res[i], want[i]);
    }
  }
  return 0;
}

/* A random batch: mostly fresh nonces, some replays, old ones and jumps. */
static size_t random_batch(fx *f, const model *m, unsigned *dev,
                           uint64_t *nonce, uint16_t *kid) {
  size_t n = 1 + (size_t)(rnd(f) % MAXB), i;
  for (i = 0; i < n; i++) {
    /* The last device is kept for test_log_failed_commit_in_fold_cycle. */
    unsigned d = (unsigned)(rnd(f) % (NDEV - 1));
    uint64_t top = m->w[d].top, r = rnd(f) % 100;
    dev[i] = d;
    if (r < 60) {
      nonce[i] = top + 1 + rnd(f) % 3;
    } else if (r < 80) {
      nonce[i] = top > 70 ? top - rnd(f) % 70 : rnd(f) % 70;
    } else if (r < 90) {
      nonce[i] = top; /* a replay once the device was seen */
    } else {
      nonce[i] = top + 50 + rnd(f) % 100; /* slides past the window */
    }
    kid[i] = (uint16_t)rnd(f);
  }
  return n;
}

/* Every device's state read through st equals the model. */
static void check_model(mtcsec_sqlite *st, const model *m) {
  uint64_t total = 0;
  unsigned i;
  for (i = 0; i < NDEV; i++) {
    mtcsec_store_devstate ds;
    uint8_t id[8];
    dev_id(id, i);
    memset(&ds, 0x55, sizeof(ds));
    assert_int_equal(mtcsec_sqlite_ops.get_state(st, id, &ds), 0);
    if (ds.window.top != m->w[i].top || ds.window.bitmap != m->w[i].bitmap ||
        ds.next_key_id != m->next_key_id[i]) {
      fail_msg("device %u: store top %llu bitmap %llx key %u, model top %llu "
               "bitmap %llx key %u",
               i, (unsigned long long)ds.window.top,
               (unsigned long long)ds.window.bitmap, ds.next_key_id,
               (unsigned long long)m->w[i].top,
               (unsigned long long)m->w[i].bitmap, m->next_key_id[i]);
    }
    total += m->sessions[i];
  }
  assert_int_equal(total, m->total);
}

/* The admin view: device_get and device_foreach (windows and counts). */
typedef struct dev_seen {
  const model *m;
  unsigned n;
} dev_seen;

static int index_of(const uint8_t id[8]) {
  unsigned i;
  for (i = 0; i < NDEV; i++) {
    uint8_t x[8];
    dev_id(x, i);
    if (memcmp(x, id, 8) == 0) {
      return (int)i;
    }
  }
  return -1;
}

static int check_devinfo_cb(void *ud, const mtcsec_sqlite_devinfo *d) {
  dev_seen *s = ud;
  int i = index_of(d->id);
  assert_true(i >= 0);
  assert_int_equal(d->sessions, s->m->sessions[i]);
  assert_int_equal(d->window.top, s->m->w[i].top);
  assert_int_equal(d->window.bitmap, s->m->w[i].bitmap);
  s->n++;
  return 0;
}

static void check_admin(mtcsec_sqlite *st, const model *m) {
  dev_seen s;
  unsigned i;
  for (i = 0; i < NDEV; i++) {
    mtcsec_sqlite_devinfo di;
    uint8_t id[8];
    dev_id(id, i);
    assert_int_equal(mtcsec_sqlite_device_get(st, id, &di), 0);
    assert_int_equal(di.sessions, m->sessions[i]);
    assert_int_equal(di.window.top, m->w[i].top);
    assert_int_equal(di.window.bitmap, m->w[i].bitmap);
  }
  s.m = m;
  s.n = 0;
  assert_int_equal(mtcsec_sqlite_device_foreach(st, check_devinfo_cb, &s), 0);
  assert_int_equal(s.n, NDEV);
}

/* Sessions of one device (or all), newest first: count and order. */
typedef struct sess_list {
  size_t n;
  int64_t prev;
  uint8_t dev[8];
  int one;
} sess_list;

static int list_cb(void *ud, const mtcsec_sqlite_session *s) {
  sess_list *l = ud;
  if (l->n > 0) {
    assert_true(s->id < l->prev);
  }
  if (l->one) {
    assert_memory_equal(s->rec.mtcd_id, l->dev, 8);
  }
  l->prev = s->id;
  l->n++;
  return 0;
}

static size_t list_sessions(mtcsec_sqlite *st, int dev, size_t limit) {
  sess_list l;
  memset(&l, 0, sizeof(l));
  if (dev >= 0) {
    dev_id(l.dev, (unsigned)dev);
    l.one = 1;
  }
  assert_int_equal(
    mtcsec_sqlite_session_foreach(st, l.one ? l.dev : NULL, limit, list_cb, &l),
    0);
  return l.n;
}

static void add_devices(mtcsec_sqlite *st) {
  static const uint8_t psk[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                                  9, 10, 11, 12, 13, 14, 15, 16};
  unsigned i;
  for (i = 0; i < NDEV; i++) {
    uint8_t id[8];
    dev_id(id, i);
    assert_int_equal(
      mtcsec_sqlite_device_add(st, id, mtcs_id, 1, psk, NULL, NULL), 0);
  }
}

static void assert_integrity(const char *db) {
  sqlite3 *h = NULL;
  sqlite3_stmt *s = NULL;
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  assert_int_equal(
    sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
  sqlite3_finalize(s);
  sqlite3_close(h);
}

static int64_t folded_mark(const char *db) {
  return sfx_int_at(db, "SELECT folded FROM store_log");
}

static int tail_scans(mtcsec_sqlite *st);

/* --------------------------------------------------------------- tests */

static void test_log_random_walk_matches_model(void **state) {
  fx *f = *state;
  mtcsec_sqlite *second = NULL;
  model m;
  unsigned dev[MAXB], i, cycles_seen = 0;
  uint64_t nonce[MAXB];
  uint16_t kid[MAXB];
  int64_t folded = 0;

  model_init(&m);
  add_devices(f->st);
  mtcsec_sqlite_set_fold_rows(f->st, 7);
  for (i = 0; i < 600; i++) {
    size_t n = random_batch(f, &m, dev, nonce, kid);
    assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, n), 0);
    if (i % 7 == 0) {
      check_model(f->st, &m);
    }
    if (i % 61 == 0) {
      int64_t now = folded_mark(f->db);
      cycles_seen += now > folded;
      folded = now;
      check_admin(f->st, &m);
    }
    if (i % 97 == 50) {
      /* A second handle of the process shares the log state. */
      second = sfx_open(f->db, sfx_kek, 0);
      check_model(second, &m);
      mtcsec_sqlite_close(second);
    }
    if (i % 149 == 148) {
      /* Close (folds everything) and reopen. */
      reopen(f, 0);
      assert_int_equal(folded_mark(f->db),
                       sfx_int_at(f->db, "SELECT max(id) FROM session"));
      check_model(f->st, &m);
      mtcsec_sqlite_set_fold_rows(f->st, 7);
    }
  }
  assert_true(cycles_seen >= 3); /* fold cycles ran between reopens */
  check_model(f->st, &m);
  check_admin(f->st, &m);
  /* Sessions: per device and in all, newest first. */
  {
    size_t sum = 0;
    for (i = 0; i < NDEV; i++) {
      size_t k = list_sessions(f->st, (int)i, 0);
      assert_int_equal(k, m.sessions[i]);
      sum += k;
      if (k > 2) {
        assert_int_equal(list_sessions(f->st, (int)i, 2), 2);
      }
    }
    assert_int_equal(sum, m.total);
    assert_int_equal(list_sessions(f->st, -1, 0), m.total);
  }
  /* A read-only handle, after a close that folded everything. */
  reopen(f, MTCSEC_SQLITE_READONLY);
  check_model(f->st, &m);
  check_admin(f->st, &m);
  assert_integrity(f->db);
}

/* Copies the database and its WAL (no transaction is open): what a kill -9
 * at this moment would leave on disk. */
static void crash_image(const fx *f, const char *name) {
  char dst[SFX_PATH_MAX], src[SFX_PATH_MAX + 8], dst2[SFX_PATH_MAX + 8];
  uint8_t *buf;
  size_t len;
  sfx_join(dst, f->dir, name);
  buf = sfx_read(f->db, &len);
  assert_non_null(buf);
  sfx_write(dst, buf, len, 0600);
  free(buf);
  snprintf(src, sizeof(src), "%s-wal", f->db);
  snprintf(dst2, sizeof(dst2), "%s-wal", dst);
  buf = sfx_read(src, &len);
  if (buf != NULL) {
    sfx_write(dst2, buf, len, 0600);
    free(buf);
  }
}

static void test_log_crash_images_recover(void **state) {
  fx *f = *state;
  model m, at[6];
  unsigned dev[MAXB], i, k = 0, tails = 0;
  uint64_t nonce[MAXB];
  uint16_t kid[MAXB];
  char name[32];

  model_init(&m);
  add_devices(f->st);
  mtcsec_sqlite_set_fold_rows(f->st, 11);
  for (i = 0; i < 360; i++) {
    size_t n = random_batch(f, &m, dev, nonce, kid);
    assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, n), 0);
    if (i % 60 == 59) {
      snprintf(name, sizeof(name), "crash%u.db", k);
      crash_image(f, name);
      at[k++] = m;
    }
  }
  assert_int_equal(k, 6);
  for (i = 0; i < k; i++) {
    char path[SFX_PATH_MAX];
    mtcsec_sqlite *st;
    int64_t last;
    snprintf(name, sizeof(name), "crash%u.db", i);
    sfx_join(path, f->dir, name);
    last = sfx_int_at(path, "SELECT max(id) FROM session");
    assert_int_equal(last, (int64_t)at[i].total);
    /* Most images have a log tail the crash left unfolded. */
    tails += sfx_int_at(path, "SELECT folded FROM store_log") < last;
    /* Read-only: the tail is read, not folded. */
    st = sfx_open(path, sfx_kek, MTCSEC_SQLITE_READONLY);
    check_model(st, &at[i]);
    check_admin(st, &at[i]);
    mtcsec_sqlite_close(st);
    /* Read-write, and commit() with no transaction (what mtcsd does at
     * start-up): the tail is folded, then the same answers; a replay of
     * what the image holds is refused. */
    st = sfx_open(path, sfx_kek, 0);
    check_model(st, &at[i]);
    assert_int_equal(mtcsec_sqlite_ops.commit(st, NULL, 0, NULL), 0);
    assert_int_equal(sfx_int_at(path, "SELECT folded FROM store_log"), last);
    assert_int_equal(sfx_int_at(path, "SELECT indexed FROM store_log"), last);
    check_model(st, &at[i]);
    check_admin(st, &at[i]);
    {
      unsigned d = 3;
      uint64_t nn = at[i].w[d].top;
      uint16_t kk = 9;
      model mm = at[i];
      if (nn > 0) {
        assert_int_equal(run_batch(st, &mm, &d, &nn, &kk, 1), 0);
        check_model(st, &mm);
      }
    }
    mtcsec_sqlite_close(st);
    assert_integrity(path);
  }
  assert_true(tails >= 3);
}

static void test_log_other_process_writes(void **state) {
  fx *f = *state;
  model m;
  unsigned dev[MAXB], i;
  uint64_t nonce[MAXB];
  uint16_t kid[MAXB];
  pid_t pid;
  int status;

  model_init(&m);
  add_devices(f->st);
  mtcsec_sqlite_set_fold_rows(f->st, 5);
  for (i = 0; i < 40; i++) {
    size_t n = random_batch(f, &m, dev, nonce, kid);
    assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, n), 0);
  }
  /* Another process commits sessions for devices 0..4 on its own
   * handle. */
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    mtcsec_sqlite *st = NULL;
    mtcsec_store_txn t[5], *p[5];
    int res[5], ok = 1;
    if (mtcsec_sqlite_open(&st, f->db, sfx_kek, th_openssl(), 0, NULL, 0) !=
        0) {
      _exit(2);
    }
    for (i = 0; i < 5; i++) {
      t[i] = make_txn(i, m.w[i].top + 100, (uint16_t)(500 + i));
      p[i] = &t[i];
    }
    ok = mtcsec_sqlite_ops.commit(st, p, 5, res) == 0;
    for (i = 0; i < 5; i++) {
      ok = ok && res[i] == 0;
    }
    /* No close: as if the other process died (its log is not folded). */
    _exit(ok ? 0 : 1);
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  for (i = 0; i < 5; i++) {
    uint64_t nn = m.w[i].top + 100;
    uint16_t kk = (uint16_t)(500 + i);
    int want;
    model_apply(&m, &i, &nn, &kk, 1, &want);
    assert_int_equal(want, 0);
  }
  /* This process's readers see them (its own state is not the whole
   * log now), without a scan of the tail per device read: after a few,
   * the map is rebuilt from the log... */
  (void)tail_scans(f->st);
  check_model(f->st, &m);
  check_admin(f->st, &m);
  assert_true(tail_scans(f->st) < 5);
  /* ...and so does its next commit: replays of them are refused. */
  for (i = 0; i < 5; i++) {
    dev[i] = i;
    nonce[i] = m.w[i].top;
    kid[i] = 1;
  }
  assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, 5), 0);
  for (i = 0; i < 60; i++) {
    size_t n = random_batch(f, &m, dev, nonce, kid);
    assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, n), 0);
  }
  check_model(f->st, &m);
  check_admin(f->st, &m);
}

/* devstate and the log marks, as text, to compare before and after. */
static char *db_dump(const char *db) {
  sqlite3 *h = NULL;
  sqlite3_stmt *s = NULL;
  char *out = NULL;
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  assert_int_equal(
    sqlite3_prepare_v2(
      h,
      "SELECT (SELECT group_concat(hex(id) || ':' || top || ':' || "
      "hex(bitmap) || ':' || next_key_id || ':' || sessions || ':' || upto, "
      "',') FROM (SELECT * FROM devstate ORDER BY id)) || '|' || "
      "(SELECT folded || ':' || indexed FROM store_log) || '|' || "
      "(SELECT count(*) FROM session)",
      -1, &s, NULL),
    SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  out = strdup((const char *)sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close(h);
  assert_non_null(out);
  return out;
}

static void test_log_failed_commit_in_fold_cycle(void **state) {
  fx *f = *state;
  model m;
  unsigned dev[MAXB], i, failed = 0;
  uint64_t nonce[MAXB];
  uint16_t kid[MAXB];

  model_init(&m);
  add_devices(f->st);
  /* A cycle starts at every commit: each failure below hits one. */
  mtcsec_sqlite_set_fold_rows(f->st, 1);
  for (i = 0; i < 200; i++) {
    size_t n = random_batch(f, &m, dev, nonce, kid);
    if (i % 10 == 5) {
      char *before, *after;
      size_t j;
      /* The last transaction's session insert fails. */
      sfx_exec(f->db, "CREATE TRIGGER inject BEFORE INSERT ON session "
                      "WHEN NEW.key_id = 77 BEGIN SELECT RAISE(ABORT, "
                      "'injected failure'); END;");
      for (j = 0; j + 1 < n; j++) {
        kid[j] = (uint16_t)(kid[j] == 77 ? 78 : kid[j]);
      }
      dev[n - 1] = NDEV - 1;
      nonce[n - 1] = m.w[NDEV - 1].top + 1;
      kid[n - 1] = 77;
      before = db_dump(f->db);
      assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, n),
                       MTCSEC_ERR_STORE);
      after = db_dump(f->db);
      assert_string_equal(before, after);
      free(before);
      free(after);
      check_model(f->st, &m);
      sfx_exec(f->db, "DROP TRIGGER inject;");
      failed++;
      continue;
    }
    for (size_t j = 0; j < n; j++) {
      kid[j] = (uint16_t)(kid[j] == 77 ? 78 : kid[j]);
    }
    assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, n), 0);
    check_model(f->st, &m);
    if (i % 10 == 6 || i % 10 == 8) {
      /* What is on disk (the fold marks and rows included) is right too:
       * a crash image read without this process's state. */
      char path[SFX_PATH_MAX], name[40];
      mtcsec_sqlite *ro;
      snprintf(name, sizeof(name), "after-failure-%u.db", i);
      crash_image(f, name);
      sfx_join(path, f->dir, name);
      ro = sfx_open(path, sfx_kek, MTCSEC_SQLITE_READONLY);
      check_model(ro, &m);
      mtcsec_sqlite_close(ro);
    }
  }
  assert_int_equal(failed, 20);
  assert_true(folded_mark(f->db) > 0);
  check_admin(f->st, &m);
  reopen(f, 0);
  check_model(f->st, &m);
}

static void test_log_index_runs(void **state) {
  fx *f = *state;
  enum { N = (1 << SQ_RUN_BITS) * 2 + 3000, B = MAXB };
  model m;
  unsigned dev[B], i;
  uint64_t nonce[B], next[6] = {0, 0, 0, 0, 0, 0};
  uint16_t kid[B];
  size_t done = 0;
  int64_t indexed;

  model_init(&m);
  add_devices(f->st);
  while (done < N) {
    size_t n = N - done < B ? N - done : B;
    for (i = 0; i < n; i++) {
      /* Device 0 gets one session in 8, the others the rest. */
      dev[i] = (done + i) % 8 == 0 ? 0 : 1 + (unsigned)((done + i) % 5);
      nonce[i] = ++next[dev[i]];
      kid[i] = (uint16_t)(done + i);
    }
    assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, n), 0);
    done += n;
  }
  assert_int_equal(m.total, (uint64_t)N);
  /* Two complete runs are indexed; the rest is the tail. */
  indexed = sfx_int_at(f->db, "SELECT indexed FROM store_log");
  assert_int_equal(indexed, (2 << SQ_RUN_BITS) - 1);
  assert_int_equal(sfx_int_at(f->db, "SELECT count(*) FROM session_run"),
                   indexed);
  assert_int_equal(
    sfx_int_at(f->db, "SELECT count(DISTINCT run) FROM session_run"), 2);
  for (i = 0; i < 6; i++) {
    assert_int_equal(list_sessions(f->st, (int)i, 0), m.sessions[i]);
  }
  assert_int_equal(list_sessions(f->st, 0, 5), 5);
  assert_int_equal(list_sessions(f->st, 7, 0), 0);
  check_model(f->st, &m);
  /* Close: the tail is indexed too. */
  reopen(f, 0);
  assert_int_equal(sfx_int_at(f->db, "SELECT count(*) FROM session_run"),
                   (int64_t)N);
  for (i = 0; i < 6; i++) {
    assert_int_equal(list_sessions(f->st, (int)i, 0), m.sessions[i]);
  }
}

static void test_log_migrates_version_1(void **state) {
  fx *f = *state;
  model m;
  unsigned dev[MAXB], i;
  uint64_t nonce[MAXB];
  uint16_t kid[MAXB];

  model_init(&m);
  add_devices(f->st);
  for (i = 0; i < 30; i++) {
    size_t n = random_batch(f, &m, dev, nonce, kid);
    assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, n), 0);
  }
  mtcsec_sqlite_close(f->st);
  f->st = NULL;
  /* Back to the shape of version 1: devstate updated by every commit, an
   * index on (mtcd_id, id), no log tables. */
  sfx_exec(f->db, "DROP TABLE session_run; DROP TABLE store_log; "
                  "ALTER TABLE devstate DROP COLUMN upto; "
                  "CREATE INDEX session_device ON session (mtcd_id, id); "
                  "PRAGMA user_version = 1;");
  f->st = sfx_open(f->db, sfx_kek, 0);
  assert_int_equal(sfx_int_at(f->db, "PRAGMA user_version"),
                   mtcsec_sqlite_schema_version());
  assert_int_equal(sfx_int_at(f->db, "SELECT count(*) FROM sqlite_master "
                                     "WHERE name = 'session_device'"),
                   0);
  assert_int_equal(sfx_int_at(f->db, "SELECT folded FROM store_log"),
                   (int64_t)m.total);
  assert_int_equal(sfx_int_at(f->db, "SELECT count(*) FROM session_run"),
                   (int64_t)m.total);
  check_model(f->st, &m);
  check_admin(f->st, &m);
  for (i = 0; i < NDEV; i++) {
    assert_int_equal(list_sessions(f->st, (int)i, 0), m.sessions[i]);
  }
  mtcsec_sqlite_set_fold_rows(f->st, 3);
  for (i = 0; i < 50; i++) {
    size_t n = random_batch(f, &m, dev, nonce, kid);
    assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, n), 0);
  }
  check_model(f->st, &m);
}

/* -------------------------------------- a nearly full disk (review h16) */

/* Many devices, each given nonces 1, 2, 3.. in turn: cnt[d] sessions. */
typedef struct many {
  uint32_t *cnt;
  unsigned ndev;
  unsigned cursor; /* the next device */
  uint64_t total;
} many;

static void many_init(many *w, unsigned ndev) {
  memset(w, 0, sizeof(*w));
  w->cnt = calloc(ndev, sizeof(*w->cnt));
  assert_non_null(w->cnt);
  w->ndev = ndev;
}

/* Commits k sessions (k <= 256) for the next devices; returns commit()'s
 * answer, and on success checks that each was accepted. */
static int many_commit(mtcsec_sqlite *st, many *w, size_t k) {
  static mtcsec_store_txn t[256];
  mtcsec_store_txn *p[256];
  int res[256];
  unsigned d = w->cursor;
  size_t i;
  int rv;
  assert_true(k <= 256);
  for (i = 0; i < k; i++) {
    uint32_t c = w->cnt[d] + 1 + (uint32_t)(i / w->ndev);
    t[i] = make_txn(d, c, (uint16_t)c);
    p[i] = &t[i];
    res[i] = 0x7f;
    d = (d + 1) % w->ndev;
  }
  rv = mtcsec_sqlite_ops.commit(st, p, k, res);
  if (rv != 0) {
    return rv;
  }
  for (i = 0; i < k; i++) {
    assert_int_equal(res[i], 0);
    w->cnt[w->cursor]++;
    w->cursor = (w->cursor + 1) % w->ndev;
  }
  w->total += k;
  return 0;
}

static void many_fill(mtcsec_sqlite *st, many *w, size_t n) {
  while (n > 0) {
    size_t k = n < 250 ? n : 250;
    assert_int_equal(many_commit(st, w, k), 0);
    n -= k;
  }
}

/* Every device's window and next key id read through st. */
static void many_check(mtcsec_sqlite *st, const many *w) {
  unsigned d;
  for (d = 0; d < w->ndev; d++) {
    mtcsec_store_devstate ds;
    uint8_t id[8];
    dev_id(id, d);
    assert_int_equal(mtcsec_sqlite_ops.get_state(st, id, &ds), 0);
    if (ds.window.top != w->cnt[d] ||
        (w->cnt[d] > 0 && ds.next_key_id != (uint16_t)(w->cnt[d] + 1))) {
      fail_msg("device %u: top %llu key %u, want %u sessions", d,
               (unsigned long long)ds.window.top, ds.next_key_id, w->cnt[d]);
    }
  }
}

/* SQLite's size limit of st's connection: `extra` pages above its size now
 * (a nearly full disk), or none (extra < 0). */
static void max_pages(mtcsec_sqlite *st, int64_t extra) {
  sqlite3 *db = mtcsec_sqlite_db(st);
  char sql[80];
  snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
           extra < 0 ? 1073741823LL
                     : (long long)(sfx_int(db, "PRAGMA page_count") + extra));
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* How many times st ran the per-device tail scan since the last call. */
static int tail_scans(mtcsec_sqlite *st) {
  return sqlite3_stmt_status(mtcsec_sq_stmt(st, SQ_LOG_TAIL_DEV),
                             SQLITE_STMTSTATUS_RUN, 1);
}

/* A fold slice (512 devstate rows) and an index run (16,384 rows) that do
 * not fit: commits of bare appends still succeed, and the fold catches up
 * once there is room. */
static void test_log_fold_stuck_keeps_appending(void **state) {
  fx *f = *state;
  many w;
  int i;

  many_init(&w, 6000);
  /* The cycle starts at the end of the commit that reaches 6000 unfolded
   * sessions: 6000 devices lag. */
  mtcsec_sqlite_set_fold_rows(f->st, 6000);
  many_fill(f->st, &w, 6000);
  assert_int_equal(sfx_int_at(f->db, "SELECT count(*) FROM devstate"), 0);
  max_pages(f->st, 3);
  for (i = 0; i < 90; i++) {
    if (many_commit(f->st, &w, 1) != 0) {
      fail_msg("commit %d with the fold stuck: %s", i,
               mtcsec_sqlite_errmsg(f->st));
    }
  }
  assert_int_equal(folded_mark(f->db), 0);
  assert_true(sfx_int_at(f->db, "SELECT count(*) FROM devstate") < 6000);
  many_check(f->st, &w);
  max_pages(f->st, -1);
  for (i = 0; i < 150; i++) {
    assert_int_equal(many_commit(f->st, &w, 1), 0);
  }
  assert_int_equal(sfx_int_at(f->db, "SELECT count(*) FROM devstate"), 6000);
  assert_true(folded_mark(f->db) >= 6000);
  many_check(f->st, &w);

  /* The first index run, 40 sessions ahead. */
  many_fill(f->st, &w, (1 << SQ_RUN_BITS) - 40 - w.total);
  assert_int_equal(sfx_int_at(f->db, "SELECT indexed FROM store_log"), 0);
  max_pages(f->st, 3);
  for (i = 0; i < 80; i++) {
    if (many_commit(f->st, &w, 1) != 0) {
      fail_msg("commit %d with the index run stuck: %s", i,
               mtcsec_sqlite_errmsg(f->st));
    }
  }
  assert_true(w.total >= 1 << SQ_RUN_BITS);
  assert_int_equal(sfx_int_at(f->db, "SELECT indexed FROM store_log"), 0);
  max_pages(f->st, -1);
  for (i = 0; i < 150; i++) {
    assert_int_equal(many_commit(f->st, &w, 1), 0);
  }
  assert_int_equal(sfx_int_at(f->db, "SELECT indexed FROM store_log"),
                   (1 << SQ_RUN_BITS) - 1);
  assert_int_equal(sfx_int_at(f->db, "SELECT count(*) FROM session_run"),
                   (1 << SQ_RUN_BITS) - 1);
  many_check(f->st, &w);
  reopen(f, 0);
  assert_int_equal(folded_mark(f->db), (int64_t)w.total);
  many_check(f->st, &w);
  free(w.cnt);
  assert_integrity(f->db);
}

/* A real full disk fails at COMMIT (writing the WAL), fold work and all:
 * the same appends are committed again without it.  Here a deferred
 * foreign key that any devstate write breaks fails the COMMIT. */
static void test_log_commit_fails_with_fold_work(void **state) {
  fx *f = *state;
  sqlite3 *db = mtcsec_sqlite_db(f->st);
  model m;
  unsigned dev[MAXB], i;
  uint64_t nonce[MAXB];
  uint16_t kid[MAXB];

  model_init(&m);
  add_devices(f->st);
  mtcsec_sqlite_set_fold_rows(f->st, 7);
  assert_int_equal(
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL), SQLITE_OK);
  sfx_exec(f->db, "CREATE TABLE trap_p (id INTEGER PRIMARY KEY);"
                  "CREATE TABLE trap (x INTEGER REFERENCES trap_p (id) "
                  "DEFERRABLE INITIALLY DEFERRED);"
                  "CREATE TRIGGER trap_i AFTER INSERT ON devstate BEGIN "
                  "INSERT INTO trap VALUES (1); END;"
                  "CREATE TRIGGER trap_u AFTER UPDATE ON devstate BEGIN "
                  "INSERT INTO trap VALUES (1); END;");
  for (i = 0; i < 80; i++) {
    size_t n = random_batch(f, &m, dev, nonce, kid);
    if (run_batch(f->st, &m, dev, nonce, kid, n) != 0) {
      fail_msg("batch %u: %s", i, mtcsec_sqlite_errmsg(f->st));
    }
    if (i % 9 == 0) {
      check_model(f->st, &m);
    }
  }
  assert_int_equal(sfx_int_at(f->db, "SELECT count(*) FROM devstate"), 0);
  assert_int_equal(folded_mark(f->db), 0);
  check_model(f->st, &m);
  sfx_exec(f->db, "DROP TRIGGER trap_i; DROP TRIGGER trap_u;");
  for (i = 0; i < 150; i++) {
    size_t n = random_batch(f, &m, dev, nonce, kid);
    assert_int_equal(run_batch(f->st, &m, dev, nonce, kid, n), 0);
  }
  assert_true(folded_mark(f->db) > 0);
  assert_int_equal(sfx_int_at(f->db, "SELECT count(*) FROM trap"), 0);
  check_model(f->st, &m);
  check_admin(f->st, &m);
  reopen(f, 0);
  check_model(f->st, &m);
}

/* After a crash, on a nearly full disk: the start-up fold does not fit,
 * but recovery is in memory, so commits go on and every read uses the
 * rebuilt map; once there is room the fold completes. */
static void test_log_crash_on_full_disk(void **state) {
  fx *f = *state;
  char path[SFX_PATH_MAX];
  mtcsec_sqlite *st;
  many w;
  int i;

  many_init(&w, 3000);
  mtcsec_sqlite_set_fold_rows(f->st, (size_t)1 << 40); /* no cycles */
  many_fill(f->st, &w, 3000);
  crash_image(f, "crash.db");
  sfx_join(path, f->dir, "crash.db");
  assert_int_equal(folded_mark(path), 0);
  st = sfx_open(path, sfx_kek, 0);
  max_pages(st, 3);
  /* 3000 devstate rows do not fit into 3 pages. */
  assert_int_equal(mtcsec_sqlite_ops.commit(st, NULL, 0, NULL),
                   MTCSEC_ERR_STORE);
  (void)tail_scans(st);
  for (i = 0; i < 50; i++) {
    if (many_commit(st, &w, 1) != 0) {
      fail_msg("commit %d after the crash: %s", i, mtcsec_sqlite_errmsg(st));
    }
  }
  many_check(st, &w);
  assert_int_equal(tail_scans(st), 0); /* the map is exact */
  assert_int_equal(folded_mark(path), 0);
  max_pages(st, -1);
  assert_int_equal(mtcsec_sqlite_ops.commit(st, NULL, 0, NULL), 0);
  assert_int_equal(folded_mark(path), (int64_t)w.total);
  assert_int_equal(sfx_int_at(path, "SELECT indexed FROM store_log"),
                   (int64_t)w.total);
  many_check(st, &w);
  mtcsec_sqlite_close(st);
  st = sfx_open(path, sfx_kek, MTCSEC_SQLITE_READONLY);
  many_check(st, &w);
  mtcsec_sqlite_close(st);
  assert_integrity(path);
  free(w.cnt);
}

/* txn.nonce is what the window checks; session.mtcd_nonce is what it is
 * rebuilt from: a transaction where they differ is refused. */
static void test_log_nonce_mismatch_refused(void **state) {
  fx *f = *state;
  mtcsec_store_txn t[2], *p[2];
  int res[2] = {0x7f, 0x7f};
  t[0] = make_txn(1, 5, 1);
  t[1] = make_txn(2, 100, 1);
  mtcsec_put_u64(t[1].session.mtcd_nonce, 5);
  p[0] = &t[0];
  p[1] = &t[1];
  assert_int_equal(mtcsec_sqlite_ops.commit(f->st, p, 2, res),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sfx_int_at(f->db, "SELECT count(*) FROM session"), 0);
  t[1] = make_txn(2, 100, 1);
  assert_int_equal(mtcsec_sqlite_ops.commit(f->st, p, 2, res), 0);
  assert_int_equal(res[0], 0);
  assert_int_equal(res[1], 0);
}

/* store_log.fold_rows below the minimum (1,024) counts as the minimum. */
static void test_log_fold_rows_clamped(void **state) {
  fx *f = *state;
  many w;
  many_init(&w, 50);
  sfx_exec(f->db, "UPDATE store_log SET fold_rows = 5");
  many_fill(f->st, &w, 1000);
  assert_int_equal(folded_mark(f->db), 0);
  many_fill(f->st, &w, 300);
  assert_true(folded_mark(f->db) >= 1024);
  many_check(f->st, &w);
  free(w.cnt);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
    T(test_log_random_walk_matches_model),
    T(test_log_crash_images_recover),
    T(test_log_other_process_writes),
    T(test_log_failed_commit_in_fold_cycle),
    T(test_log_index_runs),
    T(test_log_migrates_version_1),
    T(test_log_fold_stuck_keeps_appending),
    T(test_log_commit_fails_with_fold_work),
    T(test_log_crash_on_full_disk),
    T(test_log_nonce_mismatch_refused),
    T(test_log_fold_rows_clamped),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
