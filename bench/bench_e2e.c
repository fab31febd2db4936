/*
 * End-to-end benchmark of the running server: mtcsd (TLS 1.3 with client
 * certificates, worker threads, group commit into the durable SQLite store)
 * driven over real sockets by a C load generator.  bench/e2e.sh runs it;
 * the results are in docs/BENCHMARKS-SERVER.md.
 *
 *   bench_e2e setup DIR --devices N [--api A]
 *     Provisions a state directory that the product made (bench/e2e.sh
 *     runs `mtcsec init DIR --mtcs-id 5e00000000000001` and `mtcsec ue add
 *     0e00000000000042`: CA, server and UE certificates, KEK, database) and
 *     rewrites its mtcsd.conf (listen and metrics on free loopback ports,
 *     log_level = warn, every other key at its default: 2 workers,
 *     commit_max_batch 256, commit_max_delay_ms 2).
 *     Devices 0..A-1 are provisioned through the store's admin API
 *     (mtcsec_sqlite_device_add + mtcsec_sqlite_grant_set, one durable
 *     transaction each) and timed; devices A..N-1 in ONE transaction with
 *     this program's own prepared statements, each row holding the same
 *     RFC 5649 wrap (OpenSSL "AES-256-WRAP-PAD" under the KEK) of
 *     MTCdID || suite || K_auth || K_dm that device_add writes; the wrap of
 *     device 0 is recomputed here and compared byte for byte with the row
 *     the API wrote.  Every device gets a device grant for the UE.
 *
 *   bench_e2e load --dir DIR --pid PID --devices N [--conns 32]
 *                  [--window 64] [--duration 10] [--warmup 2] [--m1s M]
 *                  [--threads 1] [--verify-every 1024] [--label TEXT]
 *                  [--order scattered|sequential]
 *     N TLS 1.3 connections (the UE's certificate), each keeping up to
 *     --window M2 frames in flight with distinct req_ids.  The M1s (suite
 *     1, REQ_PERMS, 46 bytes) are built before the clock starts.  Each
 *     connection has its own devices, D = N / conns of them: M1 j of
 *     connection c is for device c + conns * p_c(j mod D), with a fresh
 *     MTCdNonce (a base from the wall clock in us, + j div D), so every
 *     device is used once per D M1s and no M2 is a replay.  With --order
 *     scattered (the default), p_c(k) = (k * a + o_c) mod D, a coprime
 *     with D near 0.618 D and o_c a pseudo-random offset per connection:
 *     successive M2s are for devices far apart in the ID space, as devices
 *     that wake up at random would be, so the database is read and written
 *     at random places.  --order sequential: p_c(k) = k, so all connections
 *     work through neighbouring IDs at the same time (locality a real
 *     fleet would not have).  Every answer must be an M3 whose M4
 *     decodes, names the server, the device and the UE, with a 16-byte
 *     DMKey; every --verify-every-th is verified fully (mtcsec_m4_verify,
 *     DMKey re-derived).  After --warmup seconds the window of --duration
 *     seconds starts: handshakes/s = M3s received in it / its length;
 *     latency = send to receive of each exchange sent and answered in it.
 *     Printed with the result, over the window: mtcsd's CPU time
 *     (clock_getcpuclockid of --pid) and its threads' (/proc/PID/task), its
 *     write_bytes (/proc/PID/io), this program's CPU and the whole
 *     machine's (/proc/stat), and mtcsd's /metrics (results, commits, batch
 *     sizes) before and after.  One progress line per second goes to
 *     stderr.
 *
 *   bench_e2e dbinfo DIR
 *     Sizes of mtcsd.db and its WAL, and the rows of device, grant_device,
 *     devstate and session (with mtcsd stopped).
 *
 * Exits non-zero when an exchange did not end in a correct M3.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sqlite3.h>

#include <mtcsec/codec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/mtcsec.h>
#include <mtcsec/store_sqlite.h>

#include "app.h"
#include "bench_common.h"

#define SUITE 1
#define FRAME_SLOT 64 /* one M2 frame of suite 1 (53 bytes) */
#define SLOT_BITS 11  /* req_id = seq << SLOT_BITS | slot */
#define MAX_WINDOW (1u << SLOT_BITS)
#define IN_CAP 65536

/* MTCdInfo of every M1: REQ_PERMS = 0x03, as in bench_server.c. */
static const uint8_t DINFO[3] = {MTCSEC_TLV_REQ_PERMS, 1, 0x03};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench_e2e: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static long long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

static const mtcsec_suite_params *suite1(void) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(SUITE);
  if (sp == NULL) {
    die("suite %d not available", SUITE);
  }
  return sp;
}

static void dev_keys(const mtcsec_crypto *crypto, uint32_t i, uint8_t *k_auth,
                     uint8_t *k_dm) {
  uint8_t id[MTCSEC_ID_LEN], psk[MTCSEC_MAX_KEY_LEN];
  int rv;
  bench_dev_id(id, i);
  bench_dev_psk(psk, suite1()->keylen, i);
  rv =
    mtcsec_derive_device_keys(crypto, SUITE, psk, id, BENCH_SRV, k_auth, k_dm);
  BENCH_CHECK(rv == 0, "mtcsec_derive_device_keys", rv);
}

static unsigned free_port(void) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  unsigned port;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
    die("cannot find a free port: %s", strerror(errno));
  }
  port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

/* RFC 5649 wrap under the KEK, as the store's device_add does. */
typedef struct wrapper {
  EVP_CIPHER *cipher;
  EVP_CIPHER_CTX *ctx;
} wrapper;

static void wrapper_init(wrapper *w, const uint8_t kek[MTCSEC_KEK_LEN]) {
  w->cipher = EVP_CIPHER_fetch(NULL, "AES-256-WRAP-PAD", NULL);
  w->ctx = EVP_CIPHER_CTX_new();
  if (w->cipher == NULL || w->ctx == NULL) {
    die("AES-256-WRAP-PAD not available");
  }
  EVP_CIPHER_CTX_set_flags(w->ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex2(w->ctx, w->cipher, kek, NULL, 1, NULL) != 1) {
    die("cannot key AES-256-WRAP-PAD");
  }
}

static size_t wrap(wrapper *w, const uint8_t *in, size_t inlen, uint8_t *out) {
  int n = 0, fin = 0;
  if (EVP_CipherInit_ex2(w->ctx, NULL, NULL, NULL, 1, NULL) != 1 ||
      EVP_CipherUpdate(w->ctx, out, &n, in, (int)inlen) != 1 || n <= 0 ||
      EVP_CipherFinal_ex(w->ctx, out + n, &fin) != 1) {
    die("key wrap failed");
  }
  return (size_t)(n + fin);
}

static void wrapper_free(wrapper *w) {
  EVP_CIPHER_CTX_free(w->ctx);
  EVP_CIPHER_free(w->cipher);
}

/* The wrapped key record of device i (MTCdID || suite || K_auth || K_dm). */
static size_t dev_record(const mtcsec_crypto *crypto, wrapper *w, uint32_t i,
                         uint8_t *out) {
  uint8_t plain[MTCSEC_ID_LEN + 1 + 2 * MTCSEC_MAX_KEY_LEN];
  size_t kl = suite1()->keylen, n;
  bench_dev_id(plain, i);
  plain[MTCSEC_ID_LEN] = SUITE;
  dev_keys(crypto, i, plain + MTCSEC_ID_LEN + 1,
           plain + MTCSEC_ID_LEN + 1 + kl);
  n = wrap(w, plain, MTCSEC_ID_LEN + 1 + 2 * kl, out);
  mtcsec_zeroize(plain, sizeof(plain));
  return n;
}

static void sq_exec(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    die("sqlite: %s: %s", sql, msg != NULL ? msg : "?");
  }
}

static sqlite3_stmt *sq_prep(sqlite3 *db, const char *sql) {
  sqlite3_stmt *s = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
    die("sqlite: %s: %s", sql, sqlite3_errmsg(db));
  }
  return s;
}

static long long sq_count(sqlite3 *db, const char *sql) {
  sqlite3_stmt *s = sq_prep(db, sql);
  long long v = -1;
  if (sqlite3_step(s) == SQLITE_ROW) {
    v = sqlite3_column_int64(s, 0);
  }
  sqlite3_finalize(s);
  return v;
}

static int cmd_setup(int argc, char **argv) {
  const char *dir = NULL;
  unsigned long ndev = 10000, napi = 200;
  char path[4200], db[4200], err[512];
  uint8_t kek[MTCSEC_KEK_LEN], rec[128], id[MTCSEC_ID_LEN];
  uint8_t psk[MTCSEC_MAX_KEY_LEN];
  mtcsec_crypto crypto;
  mtcsec_sqlite *st = NULL;
  sqlite3 *sq = NULL;
  sqlite3_stmt *sdev, *sgrant, *sget;
  wrapper w;
  uint64_t t0, t1, t2, last;
  double api_s = 0, bulk_s;
  unsigned long i;
  size_t rl;
  int a, rv;
  FILE *f;

  for (a = 2; a < argc; a++) {
    if (strcmp(argv[a], "--devices") == 0 && a + 1 < argc) {
      ndev = bench_parse_ul(argv[++a], "--devices");
    } else if (strcmp(argv[a], "--api") == 0 && a + 1 < argc) {
      napi = bench_parse_ul(argv[++a], "--api");
    } else if (argv[a][0] != '-' && dir == NULL) {
      dir = argv[a];
    } else {
      fprintf(stderr, "usage: bench_e2e setup DIR --devices N [--api A]\n");
      return 2;
    }
  }
  if (dir == NULL || ndev == 0 || ndev > 0xffffffffUL) {
    fprintf(stderr, "usage: bench_e2e setup DIR --devices N [--api A]\n");
    return 2;
  }
  if (napi > ndev) {
    napi = ndev;
  }
  rv = mtcsec_crypto_openssl_new(&crypto);
  BENCH_CHECK(rv == 0, "mtcsec_crypto_openssl_new", rv);
  /* The KEK and database of `mtcsec init`. */
  snprintf(path, sizeof(path), "%s/kek", dir);
  if (mtcsec_kek_load(path, kek, err, sizeof(err)) != 0) {
    die("kek (run `mtcsec init %s` first): %s", dir, err);
  }
  snprintf(db, sizeof(db), "%s/mtcsd.db", dir);
  if (mtcsec_sqlite_open(&st, db, kek, &crypto, MTCSEC_SQLITE_CREATE, err,
                         sizeof(err)) != 0) {
    die("sqlite_open: %s", err);
  }

  /* 1. Through the admin API, one durable transaction per call. */
  t0 = bench_mono_ns();
  for (i = 0; i < napi; i++) {
    bench_dev_id(id, (uint32_t)i);
    bench_dev_psk(psk, suite1()->keylen, (uint32_t)i);
    if (mtcsec_sqlite_device_add(st, id, BENCH_SRV, SUITE, psk, "bench",
                                 NULL) != 0 ||
        mtcsec_sqlite_grant_set(st, BENCH_UE, id, NULL, 0x0f, 3600, 0, 0) !=
          0) {
      die("admin API: %s", mtcsec_sqlite_errmsg(st));
    }
  }
  t1 = bench_mono_ns();
  api_s = (double)(t1 - t0) / 1e9;
  mtcsec_sqlite_close(st);

  /* 2. The rest in one transaction with our own statements. */
  if (sqlite3_open_v2(db, &sq, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    die("sqlite3_open %s", db);
  }
  sqlite3_busy_timeout(sq, 5000);
  sq_exec(sq, "PRAGMA cache_size = -65536");
  wrapper_init(&w, kek);
  if (napi > 0) {
    /* The API's row of device 0 is what this program writes. */
    sget = sq_prep(sq, "SELECT keys FROM device WHERE id = ?1");
    bench_dev_id(id, 0);
    sqlite3_bind_blob(sget, 1, id, MTCSEC_ID_LEN, SQLITE_STATIC);
    rl = dev_record(&crypto, &w, 0, rec);
    if (sqlite3_step(sget) != SQLITE_ROW ||
        (size_t)sqlite3_column_bytes(sget, 0) != rl ||
        memcmp(sqlite3_column_blob(sget, 0), rec, rl) != 0) {
      die("the bulk key record of device 0 differs from device_add's");
    }
    sqlite3_finalize(sget);
    fprintf(stderr, "setup: wrapped key record of device 0 identical to "
                    "mtcsec_sqlite_device_add's\n");
  }
  sdev = sq_prep(sq, "INSERT INTO device (id, mtcs_id, suite, disabled, "
                     "label, grp, created, keys) "
                     "VALUES (?1, ?2, ?3, 0, 'bench', NULL, ?4, ?5)");
  sgrant = sq_prep(sq, "INSERT INTO grant_device (device, ueid, perms, "
                       "lifetime, not_before, not_after, created) "
                       "VALUES (?1, ?2, 15, 3600, 0, 0, ?3)");
  t1 = bench_mono_ns();
  last = t1;
  sq_exec(sq, "BEGIN IMMEDIATE");
  for (i = napi; i < ndev; i++) {
    int64_t now = (int64_t)time(NULL);
    bench_dev_id(id, (uint32_t)i);
    rl = dev_record(&crypto, &w, (uint32_t)i, rec);
    sqlite3_bind_blob(sdev, 1, id, MTCSEC_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(sdev, 2, BENCH_SRV, MTCSEC_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int(sdev, 3, SUITE);
    sqlite3_bind_int64(sdev, 4, now);
    sqlite3_bind_blob(sdev, 5, rec, (int)rl, SQLITE_STATIC);
    sqlite3_bind_blob(sgrant, 1, id, MTCSEC_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(sgrant, 2, BENCH_UE, MTCSEC_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(sgrant, 3, now);
    if (sqlite3_step(sdev) != SQLITE_DONE ||
        sqlite3_step(sgrant) != SQLITE_DONE) {
      die("bulk insert of device %lu: %s", i, sqlite3_errmsg(sq));
    }
    sqlite3_reset(sdev);
    sqlite3_reset(sgrant);
    if ((i & 1023) == 0 && bench_mono_ns() - last >= 1000000000u) {
      last = bench_mono_ns();
      fprintf(stderr, "setup: progress %lu/%lu devices, %.1f s\n", i, ndev,
              (double)(last - t1) / 1e9);
    }
  }
  sq_exec(sq, "COMMIT");
  t2 = bench_mono_ns();
  bulk_s = (double)(t2 - t1) / 1e9;
  sqlite3_finalize(sdev);
  sqlite3_finalize(sgrant);
  sq_exec(sq, "PRAGMA wal_checkpoint(TRUNCATE)");
  if (sq_count(sq, "SELECT count(*) FROM device") != (long long)ndev) {
    die("device count differs");
  }
  sqlite3_close(sq);
  wrapper_free(&w);
  mtcsec_zeroize(kek, sizeof(kek));
  mtcsec_crypto_openssl_del(&crypto);

  snprintf(path, sizeof(path), "%s/mtcsd.conf", dir);
  f = fopen(path, "w");
  if (f == NULL) {
    die("cannot write %s", path);
  }
  fprintf(f,
          "# mtcsd of bench/e2e.sh: every key not set here has its default\n"
          "mtcs_id = 5e00000000000001\n"
          "listen = 127.0.0.1:%u\n"
          "metrics_listen = 127.0.0.1:%u\n"
          "log_level = warn\n",
          free_port(), free_port());
  fclose(f);
  printf("setup devices=%lu api_devices=%lu api_s=%.3f api_ms_per_device=%.3f "
         "bulk_devices=%lu bulk_s=%.3f bulk_us_per_device=%.2f db_bytes=%lld\n",
         ndev, napi, api_s, napi ? api_s * 1e3 / (double)napi : 0.0,
         ndev - napi, bulk_s,
         ndev > napi ? bulk_s * 1e6 / (double)(ndev - napi) : 0.0,
         file_size(db));
  return 0;
}

static int cmd_dbinfo(int argc, char **argv) {
  char db[4200], wal[4300];
  sqlite3 *sq = NULL;
  if (argc != 3) {
    fprintf(stderr, "usage: bench_e2e dbinfo DIR\n");
    return 2;
  }
  snprintf(db, sizeof(db), "%s/mtcsd.db", argv[2]);
  snprintf(wal, sizeof(wal), "%s-wal", db);
  if (sqlite3_open_v2(db, &sq, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    die("sqlite3_open %s", db);
  }
  printf("dbinfo db_bytes=%lld wal_bytes=%lld devices=%lld grants=%lld "
         "devstate=%lld sessions=%lld\n",
         file_size(db), file_size(wal),
         sq_count(sq, "SELECT count(*) FROM device"),
         sq_count(sq, "SELECT count(*) FROM grant_device"),
         sq_count(sq, "SELECT count(*) FROM devstate"),
         sq_count(sq, "SELECT count(*) FROM session"));
  sqlite3_close(sq);
  return 0;
}

/* ================================================================= load */

typedef struct pend {
  uint32_t req_id;
  uint32_t m1; /* index into the pool; UINT32_MAX: free */
  uint64_t sent_ns;
} pend;

typedef struct conn {
  int fd;
  SSL *ssl;
  uint32_t idx;       /* connection number */
  uint32_t next, end; /* pool range still to send */
  uint32_t seq;
  pend *slots;
  uint16_t *free_slots;
  unsigned nfree, inflight;
  uint8_t *out;
  size_t outlen, outoff;
  int want_write;
  uint8_t in[IN_CAP];
  size_t inlen;
} conn;

typedef struct loadgen loadgen;

typedef struct lthread {
  loadgen *g;
  unsigned idx;
  pthread_t th;
  conn **conns;
  unsigned nconns;
  mtcsec_crypto crypto;
  _Atomic uint64_t done; /* M3s received */
  _Atomic uint64_t errors;
  uint32_t *lat_us; /* latencies of the window */
  size_t nlat, latcap;
  uint64_t verified_full;
} lthread;

struct loadgen {
  /* options */
  const char *dir;
  char addr[64];
  pid_t pid;
  uint32_t ndev, nconns, window, nthreads, verify_every;
  double duration, warmup;
  size_t m1s;
  const char *label;
  /* the pool */
  uint32_t per_conn; /* M1s per connection */
  uint32_t dpc;      /* devices per connection */
  uint64_t stride;   /* a of p_c(k); 1 for --order sequential */
  uint64_t *offset;  /* o_c of p_c(k); 0 for --order sequential */
  int sequential;
  uint64_t nonce_base;
  uint8_t *frames; /* m1s slots of FRAME_SLOT: a whole M2 frame */
  uint32_t *dev;   /* device of each M1 */
  uint8_t (*k_auth)[16];
  uint8_t *have_key;
  size_t m1len;
  /* run */
  SSL_CTX *ctx;
  conn *conns;
  lthread *threads;
  atomic_int phase; /* 0 warm-up, 1 window, 2 drain */
  _Atomic uint64_t win_start_ns, win_end_ns;
  _Atomic uint64_t exhausted_ns;
};

static uint32_t m1_device(const loadgen *g, uint32_t c, uint32_t j) {
  uint64_t k = ((uint64_t)(j % g->dpc) * g->stride + g->offset[c]) % g->dpc;
  return c + g->nconns * (uint32_t)k;
}

static uint64_t gcd(uint64_t a, uint64_t b) {
  while (b != 0) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t m1_nonce(const loadgen *g, uint32_t j) {
  return g->nonce_base + j / g->dpc;
}

typedef struct build_arg {
  loadgen *g;
  unsigned t, nt;
  size_t m1len;
} build_arg;

/* Builds the M2 frames of the connections c with c % nt == t. */
static void *build_thread(void *arg) {
  build_arg *b = arg;
  loadgen *g = b->g;
  mtcsec_crypto crypto;
  uint8_t id[MTCSEC_ID_LEN], nonce[MTCSEC_NONCE_LEN], m1[MTCSEC_HS_MAX_LEN];
  uint8_t k_dm[MTCSEC_MAX_KEY_LEN];
  mtcsec_m1_fields f;
  mtcsec_ssize n;
  uint32_t c, j;
  int rv = mtcsec_crypto_openssl_new(&crypto);
  BENCH_CHECK(rv == 0, "mtcsec_crypto_openssl_new", rv);
  for (c = b->t; c < g->nconns; c += b->nt) {
    for (j = 0; j < g->per_conn; j++) {
      size_t k = (size_t)c * g->per_conn + j;
      uint32_t d = m1_device(g, c, j);
      if (!g->have_key[d]) {
        dev_keys(&crypto, d, g->k_auth[d], k_dm);
        g->have_key[d] = 1;
      }
      bench_dev_id(id, d);
      mtcsec_put_u64(nonce, m1_nonce(g, j));
      memset(&f, 0, sizeof(f));
      f.suite = SUITE;
      f.mtcd_id = id;
      f.mtcs_id = BENCH_SRV;
      f.nonce = nonce;
      f.ueid = BENCH_UE;
      f.info = DINFO;
      f.info_len = sizeof(DINFO);
      n = mtcsec_m1_build(m1, sizeof(m1), &crypto, g->k_auth[d], &f);
      BENCH_CHECK(n > 0, "mtcsec_m1_build", n);
      b->m1len = (size_t)n;
      n = mtcsec_frame_encode(g->frames + k * FRAME_SLOT, FRAME_SLOT,
                              MTCSEC_MSG_M2, 0, m1, (size_t)n);
      BENCH_CHECK(n > 0, "mtcsec_frame_encode", n);
      g->dev[k] = d;
    }
  }
  mtcsec_zeroize(k_dm, sizeof(k_dm));
  mtcsec_crypto_openssl_del(&crypto);
  return NULL;
}

/* A TLS connection to mtcsd as the UE, retried for 10 s while mtcsd starts;
 * non-blocking afterwards. */
static void conn_open(loadgen *g, conn *c) {
  char err[512];
  uint64_t until = bench_mono_ns() + 10000000000u;
  int one = 1, r;
  for (;;) {
    c->fd = app_tcp_connect(g->addr, err, sizeof(err));
    if (c->fd >= 0) {
      break;
    }
    if (bench_mono_ns() > until) {
      die("connect: %s", err);
    }
    bench_sleep_ms(50);
  }
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c->ssl = SSL_new(g->ctx);
  if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
    die("SSL_new failed");
  }
  for (;;) {
    struct pollfd p;
    int e;
    ERR_clear_error();
    r = SSL_connect(c->ssl);
    if (r == 1) {
      break;
    }
    e = SSL_get_error(c->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      ERR_print_errors_fp(stderr);
      die("TLS handshake with mtcsd failed");
    }
    if (bench_mono_ns() > until) {
      die("TLS handshake with mtcsd timed out");
    }
    p.fd = c->fd;
    p.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    p.revents = 0;
    poll(&p, 1, 1000);
  }
}

/* Queues new M2s while the window has room; returns how many. */
static unsigned conn_fill(loadgen *g, conn *c, uint64_t now) {
  unsigned n = 0;
  if (atomic_load(&g->phase) >= 2) {
    return 0;
  }
  if (c->outoff > 0 && c->outoff == c->outlen) {
    c->outoff = c->outlen = 0;
  }
  while (c->nfree > 0 && c->next < c->end) {
    uint16_t slot = c->free_slots[--c->nfree];
    uint32_t req = (c->seq++ << SLOT_BITS) | slot;
    uint8_t *fr = c->out + c->outlen;
    size_t flen = g->m1len + MTCSEC_FRAME_HDR_LEN;
    memcpy(fr, g->frames + (size_t)c->next * FRAME_SLOT, flen);
    fr[3] = (uint8_t)(req >> 24);
    fr[4] = (uint8_t)(req >> 16);
    fr[5] = (uint8_t)(req >> 8);
    fr[6] = (uint8_t)req;
    c->outlen += flen;
    c->slots[slot].req_id = req;
    c->slots[slot].m1 = c->next;
    c->slots[slot].sent_ns = now;
    c->next++;
    c->inflight++;
    n++;
  }
  if (c->next == c->end && c->nfree > 0) {
    uint64_t zero = 0;
    atomic_compare_exchange_strong(&g->exhausted_ns, &zero, now);
  }
  return n;
}

/* Writes what is queued; 0, or -1 when the connection failed. */
static int conn_flush(conn *c) {
  while (c->outoff < c->outlen) {
    int r, e;
    ERR_clear_error();
    r = SSL_write(c->ssl, c->out + c->outoff, (int)(c->outlen - c->outoff));
    if (r > 0) {
      c->outoff += (size_t)r;
      continue;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      c->want_write = 1;
      return 0;
    }
    ERR_print_errors_fp(stderr);
    return -1;
  }
  c->want_write = 0;
  c->outoff = c->outlen = 0;
  return 0;
}

static void full_verify(lthread *t, uint32_t d, uint64_t nonce_v,
                        const mtcsec_hs *m4, const uint8_t *dmkey) {
  uint8_t k_auth[MTCSEC_MAX_KEY_LEN], k_dm[MTCSEC_MAX_KEY_LEN];
  uint8_t id[MTCSEC_ID_LEN], nonce[MTCSEC_NONCE_LEN], expect[32];
  int rv;
  dev_keys(&t->crypto, d, k_auth, k_dm);
  bench_dev_id(id, d);
  mtcsec_put_u64(nonce, nonce_v);
  rv = mtcsec_m4_verify(m4, &t->crypto, k_auth, nonce, DINFO, sizeof(DINFO));
  BENCH_CHECK(rv == 0, "mtcsec_m4_verify", rv);
  rv = mtcsec_derive_dmkey(&t->crypto, SUITE, k_dm, id, BENCH_SRV, nonce,
                           m4->nonce, BENCH_UE, expect);
  BENCH_CHECK(rv == 0, "mtcsec_derive_dmkey", rv);
  if (memcmp(expect, dmkey, suite1()->keylen) != 0) {
    die("DMKey of device %u differs from the device's", (unsigned)d);
  }
  t->verified_full++;
  mtcsec_zeroize(k_auth, sizeof(k_auth));
  mtcsec_zeroize(k_dm, sizeof(k_dm));
}

/* One answer frame. */
static void conn_answer(lthread *t, conn *c, const mtcsec_frame *fr,
                        uint64_t now) {
  loadgen *g = t->g;
  uint32_t slot = fr->req_id & (MAX_WINDOW - 1);
  pend *p;
  mtcsec_hs m4;
  const uint8_t *dmkey;
  size_t dklen;
  uint8_t id[MTCSEC_ID_LEN];
  uint32_t d, j;
  uint64_t done;

  if (slot >= g->window || c->slots[slot].m1 == UINT32_MAX ||
      c->slots[slot].req_id != fr->req_id) {
    die("answer with unknown req_id %u on connection %u", fr->req_id, c->idx);
  }
  p = &c->slots[slot];
  if (fr->type != MTCSEC_MSG_M3) {
    atomic_fetch_add(&t->errors, 1);
    die("answer to req_id %u is not M3: type 0x%02x, code %s", fr->req_id,
        fr->type,
        fr->type == MTCSEC_MSG_ERR && fr->bodylen > 0
          ? mtcsec_errcode_name(fr->body[0])
          : "-");
  }
  d = g->dev[p->m1];
  bench_dev_id(id, d);
  if (mtcsec_m3_decode(&m4, &dmkey, &dklen, fr->body, fr->bodylen) != 0 ||
      m4.suite != SUITE || memcmp(m4.id_a, BENCH_SRV, MTCSEC_ID_LEN) != 0 ||
      memcmp(m4.id_b, id, MTCSEC_ID_LEN) != 0 ||
      memcmp(m4.ueid, BENCH_UE, MTCSEC_ID_LEN) != 0 ||
      dklen != suite1()->keylen) {
    die("M3 for req_id %u (device %u) is not the expected one", fr->req_id,
        (unsigned)d);
  }
  done = atomic_fetch_add(&t->done, 1) + 1;
  if (g->verify_every > 0 && done % g->verify_every == 1) {
    j = p->m1 - c->idx * g->per_conn;
    full_verify(t, d, m1_nonce(g, j), &m4, dmkey);
  }
  if (atomic_load_explicit(&g->phase, memory_order_relaxed) == 1 &&
      p->sent_ns >=
        atomic_load_explicit(&g->win_start_ns, memory_order_relaxed) &&
      t->nlat < t->latcap) {
    t->lat_us[t->nlat++] = (uint32_t)((now - p->sent_ns) / 1000u);
  }
  p->m1 = UINT32_MAX;
  c->free_slots[c->nfree++] = (uint16_t)slot;
  c->inflight--;
}

/* Reads and handles every answer available; -1 when the connection ended. */
static int conn_read(lthread *t, conn *c) {
  for (;;) {
    int r, e;
    size_t off = 0;
    mtcsec_frame fr;
    mtcsec_ssize n;
    uint64_t now;
    ERR_clear_error();
    r = SSL_read(c->ssl, c->in + c->inlen, (int)(IN_CAP - c->inlen));
    if (r <= 0) {
      e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return 0;
      }
      ERR_print_errors_fp(stderr);
      return -1;
    }
    c->inlen += (size_t)r;
    now = bench_mono_ns();
    while ((n = mtcsec_frame_parse(&fr, c->in + off, c->inlen - off)) > 0) {
      conn_answer(t, c, &fr, now);
      off += (size_t)n;
    }
    if (n < 0) {
      die("malformed frame from mtcsd");
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
  }
}

static void ep_mod(int ep, conn *c) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN | (c->want_write ? EPOLLOUT : 0u);
  ev.data.ptr = c;
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void *load_thread(void *arg) {
  lthread *t = arg;
  loadgen *g = t->g;
  struct epoll_event evs[64];
  int ep = epoll_create1(EPOLL_CLOEXEC), rv;
  unsigned i;
  uint64_t drain_until = 0;

  rv = mtcsec_crypto_openssl_new(&t->crypto);
  BENCH_CHECK(rv == 0, "mtcsec_crypto_openssl_new", rv);
  for (i = 0; i < t->nconns; i++) {
    struct epoll_event ev;
    conn *c = t->conns[i];
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    conn_fill(g, c, bench_mono_ns());
    if (conn_flush(c) != 0) {
      die("write to mtcsd failed");
    }
    ep_mod(ep, c);
  }
  for (;;) {
    int n = epoll_wait(ep, evs, 64, 50), k;
    unsigned inflight = 0;
    for (k = 0; k < n; k++) {
      conn *c = evs[k].data.ptr;
      int was = c->want_write;
      if (conn_read(t, c) != 0) {
        die("mtcsd closed connection %u", c->idx);
      }
      conn_fill(g, c, bench_mono_ns());
      if (conn_flush(c) != 0) {
        die("write to mtcsd failed");
      }
      if (was != c->want_write) {
        ep_mod(ep, c);
      }
    }
    if (atomic_load(&g->phase) >= 2) {
      for (i = 0; i < t->nconns; i++) {
        inflight += t->conns[i]->inflight;
      }
      if (drain_until == 0) {
        drain_until = bench_mono_ns() + 10000000000u;
      }
      if (inflight == 0) {
        break;
      }
      if (bench_mono_ns() > drain_until) {
        die("%u exchanges unanswered 10 s after the end", inflight);
      }
    }
  }
  close(ep);
  mtcsec_crypto_openssl_del(&t->crypto);
  return NULL;
}

/* ---------------------------------------------------------- observers */

typedef struct cpustat {
  unsigned long long busy, total;
} cpustat;

static cpustat read_cpustat(void) {
  cpustat s = {0, 0};
  unsigned long long v[10] = {0};
  FILE *f = fopen("/proc/stat", "r");
  int i;
  if (f == NULL) {
    return s;
  }
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
             &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
    for (i = 0; i < 8; i++) {
      s.total += v[i];
    }
    s.busy = s.total - v[3] - v[4]; /* minus idle and iowait */
  }
  fclose(f);
  return s;
}

/* CPU ticks of each thread of process pid, in thread-id order (mtcsd
 * starts main, metrics, committer, then the workers). */
#define MAX_TASKS 16
typedef struct taskcpu {
  int n;
  long tid[MAX_TASKS];
  unsigned long long ticks[MAX_TASKS];
} taskcpu;

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return x < y ? -1 : x > y;
}

static taskcpu read_taskcpu(pid_t pid) {
  taskcpu tc;
  char path[64], buf[1024];
  long tids[MAX_TASKS];
  int n = 0, i;
  DIR *d;
  struct dirent *e;
  memset(&tc, 0, sizeof(tc));
  snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
  d = opendir(path);
  if (d == NULL) {
    return tc;
  }
  while ((e = readdir(d)) != NULL && n < MAX_TASKS) {
    if (e->d_name[0] != '.') {
      tids[n++] = strtol(e->d_name, NULL, 10);
    }
  }
  closedir(d);
  qsort(tids, (size_t)n, sizeof(long), cmp_long);
  for (i = 0; i < n; i++) {
    FILE *f;
    const char *p;
    unsigned long long ut = 0, st = 0;
    snprintf(path, sizeof(path), "/proc/%ld/task/%ld/stat", (long)pid, tids[i]);
    f = fopen(path, "r");
    if (f == NULL) {
      continue;
    }
    if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) == 2) {
      tc.tid[tc.n] = tids[i];
      tc.ticks[tc.n++] = ut + st;
    }
    fclose(f);
  }
  return tc;
}

/* "name:seconds,..." of the threads' CPU between a and b. */
static void format_taskcpu(const taskcpu *a, const taskcpu *b, char *out,
                           size_t outlen) {
  static const char *const names[] = {"main", "metrics", "committer"};
  double hz = (double)sysconf(_SC_CLK_TCK);
  size_t off = 0;
  int i, j;
  out[0] = '\0';
  for (i = 0; i < b->n && off < outlen; i++) {
    unsigned long long t0 = 0;
    char name[32];
    for (j = 0; j < a->n; j++) {
      if (a->tid[j] == b->tid[i]) {
        t0 = a->ticks[j];
      }
    }
    if (i < 3) {
      snprintf(name, sizeof(name), "%s", names[i]);
    } else {
      snprintf(name, sizeof(name), "worker%d", i - 3);
    }
    off +=
      (size_t)snprintf(out + off, outlen - off, "%s%s:%.2f", i > 0 ? "," : "",
                       name, (double)(b->ticks[i] - t0) / hz);
  }
}

/* write_bytes of /proc/PID/io: bytes the process sent towards storage. */
static unsigned long long read_write_bytes(pid_t pid) {
  char path[64], line[128];
  unsigned long long v = 0;
  FILE *f;
  snprintf(path, sizeof(path), "/proc/%ld/io", (long)pid);
  f = fopen(path, "r");
  if (f == NULL) {
    return 0;
  }
  while (fgets(line, sizeof(line), f) != NULL) {
    if (sscanf(line, "write_bytes: %llu", &v) == 1) {
      break;
    }
  }
  fclose(f);
  return v;
}

typedef struct srvmetrics {
  double ok, errors, commits, batch_sum, commit_s;
} srvmetrics;

/* One sample of mtcsd's /metrics; -1 if absent. */
static double metric(const char *text, const char *name) {
  char key[160];
  const char *p;
  snprintf(key, sizeof(key), "\n%s ", name);
  p = strstr(text, key);
  return p != NULL ? strtod(p + strlen(key), NULL) : -1;
}

static srvmetrics read_metrics(const char *maddr) {
  srvmetrics m;
  char err[256], *text = NULL;
  static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
  size_t n = 0, cap = 1 << 16;
  int fd = app_tcp_connect(maddr, err, sizeof(err)), fl;
  const char *p;
  memset(&m, 0, sizeof(m));
  if (fd < 0) {
    return m;
  }
  fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  text = malloc(cap);
  if (text == NULL ||
      send(fd, req, sizeof(req) - 1, 0) != (ssize_t)(sizeof(req) - 1)) {
    close(fd);
    free(text);
    return m;
  }
  for (;;) {
    ssize_t r = recv(fd, text + n, cap - n - 1, 0);
    if (r <= 0) {
      break;
    }
    n += (size_t)r;
    if (cap - n < 4096) {
      char *nt = realloc(text, cap * 2);
      if (nt == NULL) {
        break;
      }
      text = nt;
      cap *= 2;
    }
  }
  close(fd);
  text[n] = '\0';
  m.ok = metric(text, "mtcsd_handshakes_total{result=\"ok\"}");
  /* Every other result line counts as an error. */
  for (p = strstr(text, "\nmtcsd_handshakes_total{result=\""); p != NULL;
       p = strstr(p + 1, "\nmtcsd_handshakes_total{result=\"")) {
    if (strncmp(p + 32, "ok\"", 3) != 0) {
      const char *sp = strchr(p + 1, ' ');
      if (sp != NULL) {
        m.errors += strtod(sp + 1, NULL);
      }
    }
  }
  m.commits = metric(text, "mtcsd_store_batch_size_count");
  m.batch_sum = metric(text, "mtcsd_store_batch_size_sum");
  m.commit_s = metric(text, "mtcsd_store_commit_seconds_sum");
  free(text);
  return m;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double q) {
  size_t i;
  if (n == 0) {
    return 0;
  }
  i = (size_t)(q * (double)(n - 1) + 0.5);
  return (double)v[i] / 1000.0; /* ms */
}

/* The address after "key = " in mtcsd.conf. */
static void conf_value(const char *dir, const char *key, char *out,
                       size_t outlen) {
  char path[4200], line[512];
  size_t kl = strlen(key);
  FILE *f;
  snprintf(path, sizeof(path), "%s/mtcsd.conf", dir);
  f = fopen(path, "r");
  if (f == NULL) {
    die("cannot read %s", path);
  }
  out[0] = '\0';
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
      char *v = strchr(line, '=');
      if (v != NULL) {
        v += 1 + strspn(v + 1, " ");
        v[strcspn(v, " \r\n")] = '\0';
        snprintf(out, outlen, "%s", v);
      }
    }
  }
  fclose(f);
}

static int cmd_load(int argc, char **argv) {
  static loadgen G;
  loadgen *g = &G;
  char cert[4200], key[4200], ca[4200], err[512], maddr[64];
  clockid_t srv_clock;
  int a, have_srv_clock;
  uint32_t c, t;
  uint64_t t0, tw0 = 0, tw1 = 0, next_tick, last_done = 0, last_srv, done0 = 0,
               done1 = 0, srv0 = 0, srv1 = 0, cli0 = 0, cli1 = 0;
  cpustat cs0 = {0, 0}, cs1 = {0, 0};
  srvmetrics m0, m1;
  taskcpu tc0, tc1;
  unsigned long long wb0 = 0, wb1 = 0;
  char threads_cpu[512], per_txt[1024];
  uint64_t per_s[120];
  size_t nper = 0, off;
  double ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN), busy;
  build_arg *bargs;
  pthread_t bth[2];
  uint32_t *lat;
  size_t nlat = 0, i;
  double win_s, hs, build_s;
  uint64_t verified = 0, sent = 0;
  struct timespec wall;

  memset(g, 0, sizeof(*g));
  memset(&m0, 0, sizeof(m0));
  memset(&tc0, 0, sizeof(tc0));
  memset(&tc1, 0, sizeof(tc1));
  g->nconns = 32;
  g->window = 64;
  g->duration = 10;
  g->warmup = 2;
  g->nthreads = 1;
  g->verify_every = 1024;
  g->label = "-";
  for (a = 2; a < argc; a++) {
    const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
    if (v == NULL) {
      goto usage;
    }
    a++;
    if (strcmp(o, "--dir") == 0) {
      g->dir = v;
    } else if (strcmp(o, "--pid") == 0) {
      g->pid = (pid_t)bench_parse_ul(v, o);
    } else if (strcmp(o, "--devices") == 0) {
      g->ndev = (uint32_t)bench_parse_ul(v, o);
    } else if (strcmp(o, "--conns") == 0) {
      g->nconns = (uint32_t)bench_parse_ul(v, o);
    } else if (strcmp(o, "--window") == 0) {
      g->window = (uint32_t)bench_parse_ul(v, o);
    } else if (strcmp(o, "--duration") == 0) {
      g->duration = (double)bench_parse_ul(v, o);
    } else if (strcmp(o, "--warmup") == 0) {
      g->warmup = (double)bench_parse_ul(v, o);
    } else if (strcmp(o, "--m1s") == 0) {
      g->m1s = bench_parse_ul(v, o);
    } else if (strcmp(o, "--threads") == 0) {
      g->nthreads = (uint32_t)bench_parse_ul(v, o);
    } else if (strcmp(o, "--verify-every") == 0) {
      g->verify_every = (uint32_t)bench_parse_ul(v, o);
    } else if (strcmp(o, "--label") == 0) {
      g->label = v;
    } else if (strcmp(o, "--order") == 0 &&
               (strcmp(v, "scattered") == 0 || strcmp(v, "sequential") == 0)) {
      g->sequential = strcmp(v, "sequential") == 0;
    } else {
      goto usage;
    }
  }
  if (g->dir == NULL || g->ndev == 0 || g->nconns == 0 || g->window == 0 ||
      g->window > MAX_WINDOW || g->nthreads == 0 || g->nthreads > g->nconns ||
      g->ndev < g->nconns || g->duration <= 0) {
    goto usage;
  }
  if (g->m1s == 0) {
    g->m1s = 600000;
  }
  conf_value(g->dir, "listen", g->addr, sizeof(g->addr));
  conf_value(g->dir, "metrics_listen", maddr, sizeof(maddr));
  g->per_conn = (uint32_t)(g->m1s / g->nconns);
  g->dpc = g->ndev / g->nconns;
  g->offset = calloc(g->nconns, sizeof(*g->offset));
  if (g->offset == NULL) {
    die("out of memory");
  }
  g->stride = 1;
  if (!g->sequential && g->dpc > 2) {
    uint64_t x = 0x9e3779b97f4a7c15u;
    g->stride = (uint64_t)((double)g->dpc * 0.6180339887);
    while (gcd(g->stride, g->dpc) != 1) {
      g->stride++;
    }
    for (c = 0; c < g->nconns; c++) {
      x += 0x9e3779b97f4a7c15u; /* splitmix64 */
      g->offset[c] = mix64(x) % g->dpc;
    }
  }
  clock_gettime(CLOCK_REALTIME, &wall);
  g->nonce_base =
    (uint64_t)wall.tv_sec * 1000000u + (uint64_t)wall.tv_nsec / 1000u;

  /* 1. The M2 frames, before any clock runs. */
  t0 = bench_mono_ns();
  g->frames = malloc((size_t)g->per_conn * g->nconns * FRAME_SLOT);
  g->dev = malloc((size_t)g->per_conn * g->nconns * sizeof(*g->dev));
  g->k_auth = calloc(g->ndev, sizeof(*g->k_auth));
  g->have_key = calloc(g->ndev, 1);
  bargs = calloc(2, sizeof(*bargs));
  if (g->frames == NULL || g->dev == NULL || g->k_auth == NULL ||
      g->have_key == NULL || bargs == NULL) {
    die("out of memory for %zu M1s", g->m1s);
  }
  for (t = 0; t < 2; t++) {
    bargs[t].g = g;
    bargs[t].t = t;
    bargs[t].nt = 2;
    pthread_create(&bth[t], NULL, build_thread, &bargs[t]);
  }
  for (t = 0; t < 2; t++) {
    pthread_join(bth[t], NULL);
    if (bargs[t].m1len != 0) {
      g->m1len = bargs[t].m1len;
    }
  }
  free(bargs);
  build_s = (double)(bench_mono_ns() - t0) / 1e9;
  mtcsec_zeroize(g->k_auth, (size_t)g->ndev * sizeof(*g->k_auth));
  fprintf(stderr,
          "load %s: %u M1s of %zu bytes built in %.1f s (%u per connection, "
          "%u devices per connection)\n",
          g->label, g->per_conn * g->nconns, g->m1len, build_s, g->per_conn,
          g->dpc);

  /* 2. Connections (TLS 1.3 handshakes, not timed). */
  /* The UE certificate of `mtcsec ue add` (CN = BENCH_UE). */
  snprintf(cert, sizeof(cert), "%s/ues/0e00000000000042.pem", g->dir);
  snprintf(key, sizeof(key), "%s/ues/0e00000000000042.key", g->dir);
  snprintf(ca, sizeof(ca), "%s/ca.pem", g->dir);
  g->ctx = app_tls_client_ctx(cert, key, ca, err, sizeof(err));
  if (g->ctx == NULL) {
    die("client TLS context: %s", err);
  }
  g->conns = calloc(g->nconns, sizeof(*g->conns));
  g->threads = calloc(g->nthreads, sizeof(*g->threads));
  if (g->conns == NULL || g->threads == NULL) {
    die("out of memory");
  }
  for (c = 0; c < g->nconns; c++) {
    conn *cn = &g->conns[c];
    uint32_t s;
    cn->idx = c;
    cn->next = c * g->per_conn;
    cn->end = cn->next + g->per_conn;
    cn->slots = calloc(g->window, sizeof(*cn->slots));
    cn->free_slots = calloc(g->window, sizeof(*cn->free_slots));
    cn->out = malloc((size_t)g->window * FRAME_SLOT);
    if (cn->slots == NULL || cn->free_slots == NULL || cn->out == NULL) {
      die("out of memory");
    }
    for (s = 0; s < g->window; s++) {
      cn->slots[s].m1 = UINT32_MAX;
      cn->free_slots[s] = (uint16_t)(g->window - 1 - s);
    }
    cn->nfree = g->window;
    conn_open(g, cn);
  }
  for (t = 0; t < g->nthreads; t++) {
    lthread *lt = &g->threads[t];
    lt->g = g;
    lt->idx = t;
    lt->conns = calloc(g->nconns, sizeof(*lt->conns));
    lt->latcap = (size_t)g->per_conn * g->nconns / g->nthreads + g->per_conn;
    lt->lat_us = malloc(lt->latcap * sizeof(*lt->lat_us));
    if (lt->conns == NULL || lt->lat_us == NULL) {
      die("out of memory");
    }
    for (c = t; c < g->nconns; c += g->nthreads) {
      lt->conns[lt->nconns++] = &g->conns[c];
    }
  }
  have_srv_clock = g->pid > 0 && clock_getcpuclockid(g->pid, &srv_clock) == 0;

  /* 3. Run: warm-up, window, drain. */
  t0 = bench_mono_ns();
  last_srv = have_srv_clock ? bench_clock_ns(srv_clock) : 0;
  for (t = 0; t < g->nthreads; t++) {
    pthread_create(&g->threads[t].th, NULL, load_thread, &g->threads[t]);
  }
  next_tick = t0 + 1000000000u;
  for (;;) {
    uint64_t now, done = 0, ex;
    int ph = atomic_load(&g->phase);
    bench_sleep_ms(10);
    now = bench_mono_ns();
    for (t = 0; t < g->nthreads; t++) {
      done += atomic_load(&g->threads[t].done);
    }
    ex = atomic_load(&g->exhausted_ns);
    if (ph == 0 && now - t0 >= (uint64_t)(g->warmup * 1e9)) {
      if (ex != 0) {
        die("the M1 pool ran out during the warm-up: raise --m1s");
      }
      tw0 = now;
      done0 = done;
      srv0 = have_srv_clock ? bench_clock_ns(srv_clock) : 0;
      cli0 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
      cs0 = read_cpustat();
      tc0 = read_taskcpu(g->pid);
      wb0 = read_write_bytes(g->pid);
      m0 = read_metrics(maddr);
      atomic_store(&g->win_start_ns, tw0);
      atomic_store(&g->phase, 1);
    } else if (ph == 1 &&
               (now - tw0 >= (uint64_t)(g->duration * 1e9) || ex != 0)) {
      tw1 = now;
      done1 = done;
      srv1 = have_srv_clock ? bench_clock_ns(srv_clock) : 0;
      cli1 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
      cs1 = read_cpustat();
      tc1 = read_taskcpu(g->pid);
      wb1 = read_write_bytes(g->pid);
      atomic_store(&g->phase, 2);
      break;
    }
    if (now >= next_tick) {
      uint64_t sc = have_srv_clock ? bench_clock_ns(srv_clock) : 0;
      if (ph == 1 && nper < sizeof(per_s) / sizeof(per_s[0])) {
        per_s[nper++] = done - last_done;
      }
      fprintf(stderr,
              "progress %s: t=%.0fs %s hs/s=%llu total=%llu mtcsd_cores=%.2f\n",
              g->label, (double)(now - t0) / 1e9,
              ph == 0 ? "warm-up" : "window",
              (unsigned long long)(done - last_done), (unsigned long long)done,
              (double)(sc - last_srv) / 1e9);
      last_done = done;
      last_srv = sc;
      next_tick += 1000000000u;
    }
  }
  for (t = 0; t < g->nthreads; t++) {
    pthread_join(g->threads[t].th, NULL);
  }
  m1 = read_metrics(maddr);

  /* 4. Results. */
  for (t = 0; t < g->nthreads; t++) {
    nlat += g->threads[t].nlat;
    verified += g->threads[t].verified_full;
  }
  for (c = 0; c < g->nconns; c++) {
    sent += g->conns[c].next - c * g->per_conn;
  }
  lat = malloc((nlat + 1) * sizeof(*lat));
  if (lat == NULL) {
    die("out of memory");
  }
  nlat = 0;
  for (t = 0; t < g->nthreads; t++) {
    memcpy(lat + nlat, g->threads[t].lat_us, g->threads[t].nlat * sizeof(*lat));
    nlat += g->threads[t].nlat;
  }
  qsort(lat, nlat, sizeof(*lat), cmp_u32);
  win_s = (double)(tw1 - tw0) / 1e9;
  hs = (double)(done1 - done0) / win_s;
  format_taskcpu(&tc0, &tc1, threads_cpu, sizeof(threads_cpu));
  /* M3s in each whole second of the window (as the progress lines). */
  per_txt[0] = '\0';
  for (off = 0, i = 0; i < nper && off < sizeof(per_txt); i++) {
    off += (size_t)snprintf(per_txt + off, sizeof(per_txt) - off, "%s%llu",
                            i > 0 ? "," : "", (unsigned long long)per_s[i]);
  }
  busy = cs1.total > cs0.total
           ? (double)(cs1.busy - cs0.busy) / (double)(cs1.total - cs0.total)
           : 0.0;
  printf(
    "e2e label=%s conns=%u window=%u devices=%u order=%s threads=%u "
    "window_s=%.2f hs=%llu hs_per_s=%.0f p50_ms=%.2f p99_ms=%.2f "
    "p999_ms=%.2f max_ms=%.2f lat_samples=%zu "
    "srv_cpu_s=%.2f srv_cores=%.2f hs_per_srv_cpu_s=%.0f "
    "load_cpu_s=%.2f load_cores=%.2f machine_busy=%.0f%% others_cores=%.2f "
    "srv_ok=%.0f srv_errors=%.0f commits=%.0f mean_batch=%.1f "
    "mean_commit_ms=%.2f committer_busy=%.0f%% exchanges_total=%llu "
    "verified_full=%llu "
    "pool_exhausted=%d mtcsd_threads_cpu_s=%s srv_write_bytes_per_hs=%.0f "
    "per_second=%s\n",
    g->label, g->nconns, g->window, g->ndev,
    g->sequential ? "sequential" : "scattered", g->nthreads, win_s,
    (unsigned long long)(done1 - done0), hs, pct(lat, nlat, 0.50),
    pct(lat, nlat, 0.99), pct(lat, nlat, 0.999),
    nlat ? (double)lat[nlat - 1] / 1000.0 : 0.0, nlat,
    (double)(srv1 - srv0) / 1e9, (double)(srv1 - srv0) / 1e9 / win_s,
    srv1 > srv0 ? (double)(done1 - done0) / ((double)(srv1 - srv0) / 1e9) : 0.0,
    (double)(cli1 - cli0) / 1e9, (double)(cli1 - cli0) / 1e9 / win_s,
    100.0 * busy,
    busy * ncpu - (double)(srv1 - srv0) / 1e9 / win_s -
      (double)(cli1 - cli0) / 1e9 / win_s,
    m1.ok - m0.ok, m1.errors - m0.errors, m1.commits - m0.commits,
    m1.commits > m0.commits
      ? (m1.batch_sum - m0.batch_sum) / (m1.commits - m0.commits)
      : 0.0,
    m1.commits > m0.commits
      ? 1e3 * (m1.commit_s - m0.commit_s) / (m1.commits - m0.commits)
      : 0.0,
    100.0 * (m1.commit_s - m0.commit_s) / win_s, (unsigned long long)sent,
    (unsigned long long)verified, atomic_load(&g->exhausted_ns) != 0,
    threads_cpu,
    done1 > done0 ? (double)(wb1 - wb0) / (double)(done1 - done0) : 0.0,
    per_txt);
  if (m1.errors > m0.errors) {
    die("mtcsd answered %.0f exchanges with an error", m1.errors - m0.errors);
  }
  for (c = 0; c < g->nconns; c++) {
    SSL_shutdown(g->conns[c].ssl);
    SSL_free(g->conns[c].ssl);
    close(g->conns[c].fd);
  }
  SSL_CTX_free(g->ctx);
  free(lat);
  return 0;

usage:
  fprintf(stderr,
          "usage: bench_e2e load --dir DIR --pid PID --devices N [--conns C] "
          "[--window W] [--duration S] [--warmup S] [--m1s M] [--threads T] "
          "[--verify-every K] [--label TEXT] [--order scattered|sequential]\n");
  return 2;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && strcmp(argv[1], "setup") == 0) {
    return cmd_setup(argc, argv);
  }
  if (argc >= 2 && strcmp(argv[1], "load") == 0) {
    return cmd_load(argc, argv);
  }
  if (argc >= 2 && strcmp(argv[1], "dbinfo") == 0) {
    return cmd_dbinfo(argc, argv);
  }
  fprintf(stderr, "usage: bench_e2e setup|load|dbinfo ...\n");
  return 2;
}
