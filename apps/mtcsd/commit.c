/*
 * The group-commit thread.  Each worker's core hands over its batch
 * (mtcsec_srv_take_batch); the committer merges the batches waiting from
 * all workers into store commits of at most commit_max_batch transactions,
 * on its own SQLite handle, then wakes each worker, which calls
 * mtcsec_srv_batch_done and writes the M3s (PROTOCOL.md section 4: the
 * window is durable before M3 leaves).
 *
 * When it was idle, the committer waits up to commit_max_delay_ms for the
 * other workers' batches before committing; under load, batches pile up
 * while the previous commit runs, and no wait is needed.  A device belongs
 * to one worker, whose batches are committed in order, so each device's
 * transactions reach the store in the order its core prepared them.
 *
 * A failed commit (full disk, locked or broken database) fails only its
 * own transactions: they are answered INTERNAL, the workers reload those
 * devices' windows from the store, and the daemon keeps running.  When the
 * daemon stops, the committer folds the session log as its last commit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mtcsd.h"

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int mtcsd_committer_init(mtcsd_committer *c, mtcsd_daemon *d,
                         const uint8_t kek[MTCSEC_KEK_LEN], char *err,
                         size_t errlen) {
  int rv;
  memset(c, 0, sizeof(*c));
  c->d = d;
  pthread_mutex_init(&c->mu, NULL);
  {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
  }
  c->posted = calloc(d->nworkers, sizeof(*c->posted));
  if (c->posted == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  rv = mtcsec_crypto_openssl_new(&c->crypto);
  if (rv != 0) {
    snprintf(err, errlen, "cannot create the crypto provider: %s",
             mtcsec_strerror(rv));
    return -1;
  }
  rv = mtcsec_sqlite_open(&c->db, d->cfg.database, kek, &c->crypto, 0, err,
                          errlen);
  if (rv != 0) {
    return -1;
  }
  /* A commit of nothing folds the session log left by a crash into the
   * nonce windows (docs/STORE.md), before the workers read them.  On
   * failure (a full disk) the store keeps the windows it rebuilt from the
   * log in memory, commits go on, and its fold cycles write them later. */
  rv = mtcsec_sqlite_ops.commit(c->db, NULL, 0, NULL);
  if (rv != 0) {
    app_log(MTCSEC_LOG_WARN,
            "event=store_fold_failed err=%s detail=\"%s\" "
            "action=\"windows kept in memory, folded by later commits\"",
            mtcsec_errname(rv), mtcsec_sqlite_errmsg(c->db));
  }
  return 0;
}

void mtcsd_committer_free(mtcsd_committer *c) {
  mtcsec_sqlite_close(c->db);
  c->db = NULL;
  mtcsec_crypto_openssl_del(&c->crypto);
  free(c->posted);
  free(c->txns);
  free(c->results);
  c->posted = NULL;
  c->txns = NULL;
  c->results = NULL;
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
}

void mtcsd_committer_post(mtcsd_committer *c, mtcsd_worker *w) {
  pthread_mutex_lock(&c->mu);
  c->posted[c->nposted++] = w;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

void mtcsd_committer_stop(mtcsd_committer *c) {
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static size_t posted_total(const mtcsd_committer *c) {
  size_t i, n = 0;
  for (i = 0; i < c->nposted; i++) {
    n += c->posted[i]->batch.n;
  }
  return n;
}

/* Commits the batches of ws[0..k) in chunks; writes each txn's result. */
static void commit_merged(mtcsd_committer *c, mtcsd_worker **ws, size_t k) {
  size_t total = 0, i, j, off, max = c->d->cfg.commit_max_batch;

  for (i = 0; i < k; i++) {
    total += ws[i]->batch.n;
  }
  if (total > c->cap) {
    mtcsec_store_txn **nt = realloc(c->txns, total * sizeof(*nt));
    int *nr;
    if (nt != NULL) {
      c->txns = nt;
    }
    nr = realloc(c->results, total * sizeof(*nr));
    if (nr != NULL) {
      c->results = nr;
    }
    if (nt == NULL || nr == NULL) {
      app_log(MTCSEC_LOG_ERROR, "event=store_commit_failed n=%zu err=nomem",
              total);
      for (i = 0; i < k; i++) {
        for (j = 0; j < ws[i]->batch.n; j++) {
          ws[i]->batch.results[j] = MTCSEC_ERR_STORE;
        }
      }
      return;
    }
    c->cap = total;
  }
  off = 0;
  for (i = 0; i < k; i++) {
    for (j = 0; j < ws[i]->batch.n; j++) {
      c->txns[off] = ws[i]->batch.txns[j];
      c->results[off] = MTCSEC_ERR_STORE;
      off++;
    }
  }
  for (off = 0; off < total; off += max) {
    size_t n = total - off < max ? total - off : max;
    uint64_t t0 = now_us(), t1;
    int rv =
      mtcsec_sqlite_ops.commit(c->db, c->txns + off, n, c->results + off);
    t1 = now_us();
    mtcsd_metrics_commit(n, t1 - t0, rv != 0);
    if (rv != 0) {
      for (i = off; i < off + n; i++) {
        c->results[i] = MTCSEC_ERR_STORE;
      }
      app_log(MTCSEC_LOG_ERROR,
              "event=store_commit_failed n=%zu err=%s detail=\"%s\" "
              "answer=INTERNAL",
              n, mtcsec_errname(rv), mtcsec_sqlite_errmsg(c->db));
    } else {
      app_log(MTCSEC_LOG_DEBUG, "event=store_commit n=%zu us=%llu", n,
              (unsigned long long)(t1 - t0));
    }
  }
  off = 0;
  for (i = 0; i < k; i++) {
    for (j = 0; j < ws[i]->batch.n; j++) {
      ws[i]->batch.results[j] = c->results[off++];
    }
  }
}

/* The workers are gone: fold the session log into the nonce windows and
 * the session index (a commit of nothing), so that the stopped database
 * normally has no log tail (docs/STORE.md).  A failure (a full disk) loses
 * nothing: the next start reads the tail and folds it. */
static void final_fold(mtcsd_committer *c) {
  int rv = mtcsec_sqlite_ops.commit(c->db, NULL, 0, NULL);
  if (rv != 0) {
    app_log(MTCSEC_LOG_WARN,
            "event=store_final_fold_failed err=%s detail=\"%s\" "
            "action=\"nothing is lost; the next start folds the log\"",
            mtcsec_errname(rv), mtcsec_sqlite_errmsg(c->db));
  }
}

void *mtcsd_committer_main(void *arg) {
  mtcsd_committer *c = arg;
  mtcsd_daemon *d = c->d;
  mtcsd_worker *ws[MTCSD_MAX_WORKERS];

  pthread_mutex_lock(&c->mu);
  for (;;) {
    size_t k, i;
    while (c->nposted == 0 && !c->stop) {
      pthread_cond_wait(&c->cv, &c->mu);
    }
    if (c->nposted == 0) {
      break; /* stop, and nothing left */
    }
    if (d->cfg.commit_max_delay_ms > 0 && c->nposted < d->nworkers &&
        posted_total(c) < d->cfg.commit_max_batch) {
      struct timespec until;
      clock_gettime(CLOCK_MONOTONIC, &until);
      until.tv_nsec += (long)d->cfg.commit_max_delay_ms * 1000000L;
      while (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
      }
      while (c->nposted < d->nworkers &&
             posted_total(c) < d->cfg.commit_max_batch && !c->stop) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT) {
          break;
        }
      }
    }
    k = c->nposted;
    for (i = 0; i < k; i++) {
      ws[i] = c->posted[i];
    }
    c->nposted = 0;
    pthread_mutex_unlock(&c->mu);

    commit_merged(c, ws, k);
    for (i = 0; i < k; i++) {
      mtcsd_worker_commit_done(ws[i]);
    }
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  final_fold(c);
  return NULL;
}
