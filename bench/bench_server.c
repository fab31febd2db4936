/*
 * Server-core handshakes per second on one core, next to the crypto-only
 * limit measured in the same run with the same provider.
 *
 * Server core: in-memory store, no I/O.  Each handshake is one M2 frame
 * handed to mtcsec_srv_recv(), a group commit every --batch frames
 * (mtcsec_srv_commit(), the in-memory store's commit), and the M3 frame
 * drained with mtcsec_srv_write().  The M2 frames are built before the clock
 * starts: --devices distinct devices, each with increasing MTCdNonces, so the
 * replay check never fires.  Each round runs on a fresh store and server
 * (made before the clock starts), so the same frames serve every round.
 *
 * Crypto-only limit: per handshake exactly the cryptography the protocol
 * requires of the server: verify MTCdMIC of M1 (MAC + constant-time
 * compare), compute MTCsMIC of M4 (MAC over the M4 prefix || MTCdNonce ||
 * info_len || MTCdInfo), and the DMKey KDF (mtcsec_derive_dmkey()), over
 * inputs of the same lengths as the server's, in a tight loop, with the same
 * OpenSSL provider instance.  The 8 random bytes of MTCsNonce are not part
 * of that limit; their cost is printed separately.
 *
 * Each round measures, back to back, the crypto-only loop, the server core
 * with the C library's allocator, the server core on a pre-faulted arena,
 * and the random call; medians over the rounds are printed, the ratios as
 * the median of the per-round ratios.  Rates are per CPU-second of this
 * thread (CLOCK_THREAD_CPUTIME_ID), so a busy machine slows but does not
 * skew them.
 *
 * Usage: bench_server [--suites 1,2,3] [--n HANDSHAKES] [--rounds R]
 *                     [--batch B] [--devices D] [--only server|arena|crypto]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/codec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/server.h>
#include <mtcsec/store.h>

#include "bench_common.h"

#define FRAME_SLOT 96 /* room for one M2 frame of the largest suite here */

/*
 * A bump allocator over one pre-faulted block, reset before each round: the
 * server core and the store then run on resident memory, as in a server
 * that has been up for a while, instead of taking a page fault on the first
 * touch of every page they calloc.  free() is a no-op.
 */
typedef struct arena {
  uint8_t *base;
  size_t size, used;
} arena;

static void *arena_malloc(size_t size, void *ud) {
  arena *a = ud;
  size_t need = (size + 63u) & ~(size_t)63u;
  void *p;
  if (need < size || need > a->size - a->used) {
    return NULL;
  }
  p = a->base + a->used;
  a->used += need;
  return p;
}

static void *arena_calloc(size_t n, size_t size, void *ud) {
  void *p;
  if (size != 0 && n > SIZE_MAX / size) {
    return NULL;
  }
  p = arena_malloc(n * size, ud);
  if (p != NULL) {
    memset(p, 0, n * size);
  }
  return p;
}

static void arena_free(void *p, void *ud) {
  (void)p;
  (void)ud;
}

typedef struct bench {
  uint8_t suite;
  const mtcsec_suite_params *sp;
  mtcsec_crypto crypto;
  uint32_t ndev;
  size_t n;
  size_t batch;
  uint8_t (*k_auth)[MTCSEC_MAX_KEY_LEN];
  uint8_t (*k_dm)[MTCSEC_MAX_KEY_LEN];
  uint8_t *frames; /* n slots of FRAME_SLOT bytes */
  uint16_t *framelen;
  size_t m1len;
  arena ar;              /* used by run_server(b, 1) */
  mtcsec_mem ar_mem;     /* the allocator over ar */
  volatile uint8_t sink; /* keeps the crypto loop's results alive */
} bench;

/* MTCdInfo of every M1: REQ_PERMS = 0x03, as an M0-triggered device sends. */
static const uint8_t DINFO[3] = {MTCSEC_TLV_REQ_PERMS, 1, 0x03};

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Device keys and the M2 frames (handshake k: device k % ndev, nonce
 * k / ndev). */
static void bench_setup(bench *b) {
  uint8_t psk[MTCSEC_MAX_KEY_LEN], id[MTCSEC_ID_LEN], nonce[MTCSEC_NONCE_LEN];
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  mtcsec_m1_fields f;
  mtcsec_ssize n;
  uint32_t i;
  size_t k;
  int rv;

  b->k_auth = calloc(b->ndev, sizeof(*b->k_auth));
  b->k_dm = calloc(b->ndev, sizeof(*b->k_dm));
  b->frames = calloc(b->n, FRAME_SLOT);
  b->framelen = calloc(b->n, sizeof(*b->framelen));
  BENCH_CHECK(b->k_auth != NULL && b->k_dm != NULL && b->frames != NULL &&
                b->framelen != NULL,
              "calloc", MTCSEC_ERR_NOMEM);
  /* Server tables (~8 MB with the defaults), the store's maps, and its
   * session array grown by doubling (at most 4 n records in all). */
  b->ar.size = ((size_t)32 << 20) + 4 * b->n * sizeof(mtcsec_session_rec) +
               (size_t)b->ndev * 512;
  b->ar.base = malloc(b->ar.size);
  BENCH_CHECK(b->ar.base != NULL, "malloc (arena)", MTCSEC_ERR_NOMEM);
  memset(b->ar.base, 0, b->ar.size); /* fault every page in now */
  b->ar_mem.user_data = &b->ar;
  b->ar_mem.malloc = arena_malloc;
  b->ar_mem.free = arena_free;
  b->ar_mem.calloc = arena_calloc;
  for (i = 0; i < b->ndev; i++) {
    bench_dev_id(id, i);
    bench_dev_psk(psk, b->sp->keylen, i);
    rv = mtcsec_derive_device_keys(&b->crypto, b->suite, psk, id, BENCH_SRV,
                                   b->k_auth[i], b->k_dm[i]);
    BENCH_CHECK(rv == 0, "mtcsec_derive_device_keys", rv);
  }
  for (k = 0; k < b->n; k++) {
    i = (uint32_t)(k % b->ndev);
    bench_dev_id(id, i);
    mtcsec_put_u64(nonce, (uint64_t)(k / b->ndev));
    memset(&f, 0, sizeof(f));
    f.suite = b->suite;
    f.mtcd_id = id;
    f.mtcs_id = BENCH_SRV;
    f.nonce = nonce;
    f.ueid = BENCH_UE;
    f.info = DINFO;
    f.info_len = sizeof(DINFO);
    n = mtcsec_m1_build(m1, sizeof(m1), &b->crypto, b->k_auth[i], &f);
    BENCH_CHECK(n > 0, "mtcsec_m1_build", n);
    b->m1len = (size_t)n;
    n = mtcsec_frame_encode(b->frames + k * FRAME_SLOT, FRAME_SLOT,
                            MTCSEC_MSG_M2, (uint32_t)k, m1, (size_t)n);
    BENCH_CHECK(n > 0, "mtcsec_frame_encode", n);
    b->framelen[k] = (uint16_t)n;
  }
}

static void bench_teardown(bench *b) {
  mtcsec_zeroize(b->k_auth, b->ndev * sizeof(*b->k_auth));
  mtcsec_zeroize(b->k_dm, b->ndev * sizeof(*b->k_dm));
  free(b->k_auth);
  free(b->k_dm);
  free(b->frames);
  free(b->framelen);
  free(b->ar.base);
}

/* The functions a profiler collects by name: not inlined, not static. */
__attribute__((noinline)) size_t bench_server_loop(bench *b, mtcsec_srv *srv);
__attribute__((noinline)) void bench_crypto_loop(bench *b);

/* The timed part of a server round: every frame in, commits, M3s out.
 * Returns the number of M3 frames written. */
size_t bench_server_loop(bench *b, mtcsec_srv *srv) {
  uint8_t out[256];
  uint64_t conn;
  size_t k, j, m3 = 0;
  mtcsec_ssize n;
  int rv;

  for (k = 0; k < b->n; k += b->batch) {
    /* The fake clock advances 1 ms per batch. */
    mtcsec_tstamp now = 1000 + k / b->batch;
    for (j = k; j < k + b->batch && j < b->n; j++) {
      rv = mtcsec_srv_recv(srv, 1, BENCH_UE, b->frames + j * FRAME_SLOT,
                           b->framelen[j], now);
      BENCH_CHECK(rv == 0, "mtcsec_srv_recv", rv);
    }
    rv = mtcsec_srv_commit(srv, now);
    BENCH_CHECK(rv == 0, "mtcsec_srv_commit", rv);
    while ((n = mtcsec_srv_write(srv, out, sizeof(out), &conn)) > 0) {
      if (out[2] != MTCSEC_MSG_M3) {
        fprintf(stderr, "bench: answer is not M3 (type 0x%02x, code %u)\n",
                out[2], (unsigned)out[7]);
        exit(1);
      }
      m3++;
    }
    BENCH_CHECK(n == 0, "mtcsec_srv_write", n);
  }
  return m3;
}

/* One round of the server core on a fresh store and server (use_arena:
 * allocating from the pre-faulted arena); returns handshakes per second. */
static double run_server(bench *b, int use_arena) {
  const mtcsec_mem *mem = NULL;
  mtcsec_store_mem *store = NULL;
  mtcsec_srv *srv = NULL;
  mtcsec_srv_config cfg;
  mtcsec_store_device d;
  uint8_t id[MTCSEC_ID_LEN];
  uint64_t t0, t1;
  size_t m3;
  uint32_t i;
  int rv;

  if (use_arena) {
    b->ar.used = 0;
    mem = &b->ar_mem;
  }
  rv = mtcsec_store_mem_new(&store, mem);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_new", rv);
  for (i = 0; i < b->ndev; i++) {
    bench_dev_id(id, i);
    memset(&d, 0, sizeof(d));
    d.suite = b->suite;
    memcpy(d.k_auth, b->k_auth[i], b->sp->keylen);
    memcpy(d.k_dm, b->k_dm[i], b->sp->keylen);
    rv = mtcsec_store_mem_add_device(store, id, &d);
    BENCH_CHECK(rv == 0, "mtcsec_store_mem_add_device", rv);
    rv = mtcsec_store_mem_grant(store, id, BENCH_UE, 0x0f, 3600);
    BENCH_CHECK(rv == 0, "mtcsec_store_mem_grant", rv);
  }
  mtcsec_zeroize(&d, sizeof(d));
  mtcsec_srv_config_default(&cfg);
  memcpy(cfg.mtcs_id, BENCH_SRV, MTCSEC_ID_LEN);
  cfg.mem = mem;
  if (cfg.max_inflight < b->batch) {
    cfg.max_inflight = b->batch;
    cfg.max_queued = 2 * b->batch;
  }
  rv = mtcsec_srv_new(&srv, &cfg, &b->crypto, &mtcsec_store_mem_ops, store,
                      NULL, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_srv_new", rv);

  t0 = bench_now_ns();
  m3 = bench_server_loop(b, srv);
  t1 = bench_now_ns();

  BENCH_CHECK(m3 == b->n, "every M2 answered with M3",
              MTCSEC_ERR_INVALID_STATE);
  BENCH_CHECK(mtcsec_store_mem_sessions(store) == b->n, "sessions recorded",
              MTCSEC_ERR_INVALID_STATE);
  mtcsec_srv_del(srv);
  mtcsec_store_mem_del(store);
  return (double)b->n * 1e9 / (double)(t1 - t0);
}

/* The crypto-only loop: the server's cryptography for b->n handshakes. */
void bench_crypto_loop(bench *b) {
  const mtcsec_crypto_ops *ops = b->crypto.ops;
  mtcsec_mac_alg alg = (mtcsec_mac_alg)b->sp->mac;
  size_t keylen = b->sp->keylen, t = b->sp->miclen;
  size_t signed_len = b->m1len - t;
  uint8_t m4hdr[MTCSEC_HS_FIXED_LEN + 13], mic[MTCSEC_MAX_MIC_LEN];
  uint8_t dmkey[MTCSEC_MAX_KEY_LEN], snonce[MTCSEC_NONCE_LEN];
  uint8_t info_len = sizeof(DINFO);
  size_t k;
  unsigned bad = 0;
  int rv;

  /* An M4 prefix of the real length (35 + 13-byte MTCsInfo). */
  memset(m4hdr, 0xa5, sizeof(m4hdr));
  m4hdr[0] = MTCSEC_MSG_M4;
  memset(snonce, 0x3c, sizeof(snonce));

  for (k = 0; k < b->n; k++) {
    const uint8_t *m1 = b->frames + k * FRAME_SLOT + MTCSEC_FRAME_HDR_LEN;
    const uint8_t *key = b->k_auth[k % b->ndev];
    mtcsec_iov iov[4];
    /* 1. MTCdMIC of M1: MAC over the signed bytes, compare. */
    iov[0].base = m1;
    iov[0].len = signed_len;
    rv = ops->mac(b->crypto.ctx, alg, key, keylen, iov, 1, mic, t);
    BENCH_CHECK(rv == 0, "mac (M1)", rv);
    bad += mtcsec_ct_memcmp(mic, m1 + signed_len, t) != 0;
    /* 2. MTCsMIC of M4. */
    iov[0].base = m4hdr;
    iov[0].len = sizeof(m4hdr);
    iov[1].base = m1 + 18; /* MTCdNonce */
    iov[1].len = MTCSEC_NONCE_LEN;
    iov[2].base = &info_len;
    iov[2].len = 1;
    iov[3].base = DINFO;
    iov[3].len = sizeof(DINFO);
    rv = ops->mac(b->crypto.ctx, alg, key, keylen, iov, 4, mic, t);
    BENCH_CHECK(rv == 0, "mac (M4)", rv);
    /* 3. DMKey. */
    rv = mtcsec_derive_dmkey(&b->crypto, b->suite, b->k_dm[k % b->ndev], m1 + 2,
                             BENCH_SRV, m1 + 18, snonce, BENCH_UE, dmkey);
    BENCH_CHECK(rv == 0, "mtcsec_derive_dmkey", rv);
    b->sink ^= (uint8_t)(mic[0] ^ dmkey[0]);
  }
  BENCH_CHECK(bad == 0, "M1 MIC check in the crypto loop", MTCSEC_ERR_MIC);
  mtcsec_zeroize(dmkey, sizeof(dmkey));
}

/* One round of the crypto-only loop; returns handshakes per second. */
static double run_crypto(bench *b) {
  uint64_t t0 = bench_now_ns(), t1;
  bench_crypto_loop(b);
  t1 = bench_now_ns();
  return (double)b->n * 1e9 / (double)(t1 - t0);
}

/* Cost of the 8 random bytes of MTCsNonce, in ns per call. */
static double run_random(bench *b) {
  uint8_t r[MTCSEC_NONCE_LEN];
  uint64_t t0, t1;
  size_t k;
  int rv;
  t0 = bench_now_ns();
  for (k = 0; k < b->n; k++) {
    rv = b->crypto.ops->random(b->crypto.ctx, r, sizeof(r));
    BENCH_CHECK(rv == 0, "random", rv);
    b->sink ^= r[0];
  }
  t1 = bench_now_ns();
  return (double)(t1 - t0) / (double)b->n;
}

static void usage(void) {
  fprintf(stderr, "usage: bench_server [--suites 1,2,3] [--n HANDSHAKES] "
                  "[--rounds R] [--batch B] [--devices D] "
                  "[--only server|arena|crypto]\n");
  exit(2);
}

/* Median, minimum and maximum of v[0..n-1] (v is sorted). */
typedef struct stat3 {
  double med, min, max;
} stat3;

static stat3 stats(double *v, size_t n) {
  stat3 st;
  st.med = median(v, n);
  st.min = v[0];
  st.max = v[n - 1];
  return st;
}

/* The timed comparison of one suite: rounds of crypto-only, server core
 * (malloc), server core (arena) and the RNG, back to back. */
static void suite_run(bench *b, unsigned long rounds) {
  double cry[99], srv[99], sar[99], rng[99], r1[99], r2[99], r3[99];
  stat3 c, sv, sa, q1, q2, q3;
  char range1[32], range2[32];
  unsigned long r;

  /* Warm-up: caches, the DRBG, page faults of the frame array. */
  (void)run_crypto(b);
  for (r = 0; r < rounds; r++) {
    cry[r] = run_crypto(b);
    srv[r] = run_server(b, 0);
    sar[r] = run_server(b, 1);
    rng[r] = run_random(b);
    r1[r] = srv[r] / cry[r];
    r2[r] = sar[r] / cry[r];
    /* Against crypto + the 8 random bytes of MTCsNonce. */
    r3[r] = sar[r] * (1.0 / cry[r] + rng[r] * 1e-9);
    fprintf(stderr,
            "bench_server: suite %u round %lu/%lu: crypto %.0f/s, server "
            "%.0f/s, server (arena) %.0f/s\n",
            (unsigned)b->suite, r + 1, rounds, cry[r], srv[r], sar[r]);
  }
  c = stats(cry, rounds);
  sv = stats(srv, rounds);
  sa = stats(sar, rounds);
  /* Ratios: the median of the per-round ratios (each round's figures were
   * measured back to back), with their range. */
  q1 = stats(r1, rounds);
  q2 = stats(r2, rounds);
  q3 = stats(r3, rounds);
  snprintf(range1, sizeof(range1), "%.1f-%.1f%%", 100 * q1.min, 100 * q1.max);
  snprintf(range2, sizeof(range2), "%.1f-%.1f%%", 100 * q2.min, 100 * q2.max);
  printf("%-5u %11.0f %11.0f %6.1f%% %11s %11.0f %6.1f%% %11s %7.0f %6.1f%%\n",
         (unsigned)b->suite, c.med, sv.med, 100 * q1.med, range1, sa.med,
         100 * q2.med, range2, median(rng, rounds), 100 * q3.med);
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *suites = "1,2,3", *only = "";
  size_t n = 100000, batch = 64;
  unsigned long rounds = 5, ndev = 1024, r;
  const char *s;
  int a, rv;

  for (a = 1; a < argc; a++) {
    if (a + 1 >= argc) {
      usage();
    }
    if (strcmp(argv[a], "--suites") == 0) {
      suites = argv[++a];
    } else if (strcmp(argv[a], "--n") == 0) {
      n = bench_parse_ul(argv[++a], "--n");
    } else if (strcmp(argv[a], "--rounds") == 0) {
      rounds = bench_parse_ul(argv[++a], "--rounds");
    } else if (strcmp(argv[a], "--batch") == 0) {
      batch = bench_parse_ul(argv[++a], "--batch");
    } else if (strcmp(argv[a], "--devices") == 0) {
      ndev = bench_parse_ul(argv[++a], "--devices");
    } else if (strcmp(argv[a], "--only") == 0) {
      only = argv[++a];
    } else {
      usage();
    }
  }
  if (n == 0 || rounds == 0 || rounds > 99 || batch == 0 || ndev == 0 ||
      ndev > UINT32_MAX ||
      (only[0] != '\0' && strcmp(only, "server") != 0 &&
       strcmp(only, "arena") != 0 && strcmp(only, "crypto") != 0)) {
    usage();
  }

  if (only[0] == '\0') {
    printf("# bench_server: %zu handshakes per round, %lu rounds, batch %zu, "
           "%lu devices, OpenSSL provider, one thread, rates per CPU-second\n",
           n, rounds, batch, ndev);
    printf("# ratio = server / crypto-only (median of per-round ratios, "
           "range = min-max); arena = server on pre-faulted memory;\n"
           "# rng_ns = one 8-byte random call; +rng = arena / (crypto-only "
           "+ random)\n");
    printf("%-5s %11s %11s %7s %11s %11s %7s %11s %7s %7s\n", "suite",
           "crypto_hs/s", "server_hs/s", "ratio", "range", "arena_hs/s",
           "ratio", "range", "rng_ns", "+rng");
  }
  for (s = suites; *s != '\0'; s++) {
    bench b;

    if (*s == ',') {
      continue;
    }
    memset(&b, 0, sizeof(b));
    b.suite = (uint8_t)(*s - '0');
    b.sp = mtcsec_suite_get(b.suite);
    if (b.sp == NULL) {
      fprintf(stderr, "bench: unknown suite %c\n", *s);
      return 2;
    }
    b.ndev = (uint32_t)ndev;
    b.n = n;
    b.batch = batch;
    rv = mtcsec_crypto_openssl_new(&b.crypto);
    BENCH_CHECK(rv == 0, "mtcsec_crypto_openssl_new", rv);
    bench_setup(&b);
    if (only[0] == '\0') {
      suite_run(&b, rounds);
    } else {
      /* --rounds passes of one part, untimed, for valgrind and perf (the
       * functions to collect are bench_server_loop and bench_crypto_loop). */
      for (r = 0; r < rounds; r++) {
        if (strcmp(only, "crypto") == 0) {
          bench_crypto_loop(&b);
        } else {
          (void)run_server(&b, strcmp(only, "arena") == 0);
        }
      }
      printf("suite %u: %lu x %zu handshakes (%s only)\n", (unsigned)b.suite,
             rounds, n, only);
    }
    bench_teardown(&b);
    mtcsec_crypto_openssl_del(&b.crypto);
  }
  return 0;
}
