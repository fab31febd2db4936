/*
 * Commit throughput of the SQLite store (docs/STORE.md): durable group
 * commits of batches of 1, 16, 64 and 256 transactions, each batch one
 * SQL transaction and one fsync of the WAL (synchronous=FULL).
 *
 *   store_bench_commit [DIR [SECONDS]]
 *
 * DIR is where the temporary database goes (default /tmp; use a directory
 * on the disk the daemon will use: a tmpfs makes fsync free).  Each batch
 * size runs for SECONDS (default 2) on a fresh database.  Transactions
 * spread over 1000 devices with increasing nonces, so every one is accepted
 * and writes a window and a session, as in production.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mtcsec/store_sqlite.h>
#include <mtcsec/codec.h>

#include "crypto_fixture.h"

#define NDEVICES 1000
#define MAX_BATCH 256

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *dir, size_t batch, double seconds) {
  static const uint8_t kek[MTCSEC_KEK_LEN] = {1, 2, 3};
  static mtcsec_store_txn txns[MAX_BATCH];
  mtcsec_store_txn *p[MAX_BATCH];
  int results[MAX_BATCH];
  char tmpl[512], db[600], err[512];
  mtcsec_sqlite *st = NULL;
  uint64_t seq = 0, commits = 0;
  double t0, el;
  size_t i;

  snprintf(tmpl, sizeof(tmpl), "%s/mtcsec-bench-XXXXXX", dir);
  if (mkdtemp(tmpl) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(db, sizeof(db), "%s/bench.db", tmpl);
  if (mtcsec_sqlite_open(&st, db, kek, th_openssl(), MTCSEC_SQLITE_CREATE, err,
                         sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  for (i = 0; i < batch; i++) {
    p[i] = &txns[i];
  }
  t0 = now_s();
  do {
    for (i = 0; i < batch; i++) {
      mtcsec_store_txn *t = &txns[i];
      uint64_t dev = seq % NDEVICES;
      memset(t, 0, sizeof(*t));
      t->nonce = seq / NDEVICES;
      mtcsec_put_u64(t->session.mtcd_id, 0xd000000000000000ULL | dev);
      mtcsec_put_u64(t->session.ueid, 0xe000000000000001ULL);
      mtcsec_put_u64(t->session.mtcd_nonce, t->nonce);
      mtcsec_put_u64(t->session.mtcs_nonce, seq * 0x9e3779b97f4a7c15ULL);
      t->session.suite = 1;
      t->session.perms = 1;
      t->session.key_id = (uint16_t)t->nonce;
      t->session.lifetime = 3600;
      t->session.issued_at = seq;
      seq++;
    }
    if (mtcsec_sqlite_ops.commit(st, p, batch, results) != 0) {
      fprintf(stderr, "commit: %s\n", mtcsec_sqlite_errmsg(st));
      return 1;
    }
    for (i = 0; i < batch; i++) {
      if (results[i] != 0) {
        fprintf(stderr, "unexpected result %d\n", results[i]);
        return 1;
      }
    }
    commits++;
    el = now_s() - t0;
  } while (el < seconds || commits < 16);
  printf("%5zu %9llu %9llu %8.2f %11.0f %9.0f %9.3f\n", batch,
         (unsigned long long)commits, (unsigned long long)seq, el,
         (double)seq / el, (double)commits / el, 1000.0 * el / (double)commits);
  mtcsec_sqlite_close(st);
  /* Remove the database and its WAL files, then the directory. */
  {
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (i = 0; i < 3; i++) {
      snprintf(db, sizeof(db), "%s/bench.db%s", tmpl, sfx[i]);
      (void)unlink(db);
    }
    (void)rmdir(tmpl);
  }
  return 0;
}

int main(int argc, char **argv) {
  static const size_t sizes[] = {1, 16, 64, 256};
  const char *dir = argc > 1 ? argv[1] : "/tmp";
  double seconds = argc > 2 ? atof(argv[2]) : 2.0;
  size_t i;

  printf("batch   commits      txns  seconds       txn/s  commit/s  "
         "ms/commit\n");
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    if (run(dir, sizes[i], seconds) != 0) {
      return 1;
    }
  }
  th_providers_cleanup();
  return 0;
}
