/*
 * The device's work per establishment, isolated for valgrind callgrind.
 *
 * Setup (not measured): a complete world in one process -- device A, the UE
 * role and the server core over the in-memory store, all with the OpenSSL
 * provider -- runs --n + 1 M0-triggered exchanges and records, for each, the
 * M0 the device received, the M1 it sent and the M4 the UE sent back.
 *
 * Replay (measured): device B, initialised exactly as A (same IDs, PSKey,
 * first nonce, config) with the provider under test, receives the same
 * messages.  Its M1s are byte-identical to A's (the M1 depends only on the
 * nonce counter and the M0), so A's M4s complete B's exchanges.  Exchange 0
 * is a warm-up (first-use costs of the provider, e.g. the DRBG); exchanges
 * 1..n go through the functions below, which callgrind collects by name
 * (--collect-atstart=no --toggle-collect=<name>):
 *
 *   bench_dev_m0_to_m1  mtcsec_dev_read(M0) + mtcsec_dev_write() -> M1:
 *                       MTCdInfo, the nonce callback, MTCdMIC, timer jitter
 *   bench_dev_m4        mtcsec_dev_read(M4): checks, MTCsMIC verify, DMKey
 *                       KDF, channel set-up (4 KDF calls), state erasure
 *   bench_dev_init      mtcsec_dev_init(): K_auth and K_dm from PSKey, once
 *                       per boot, not per establishment (one call, measured
 *                       on a third device)
 *
 * Usage: bench_device [--provider openssl|mbedtls] [--suite S] [--n N]
 * Prints the messages' sizes; the instruction counts come from callgrind.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/codec.h>
#include <mtcsec/device.h>
#include <mtcsec/phone.h>
#include <mtcsec/server.h>
#include <mtcsec/store.h>
#ifdef MTCSEC_BENCH_MBEDTLS
#  include <mtcsec/crypto_mbedtls.h>
#endif

#include "bench_common.h"

#define MAX_N 64

typedef struct exch {
  uint8_t m0[64], m1[MTCSEC_HS_MAX_LEN], m4[MTCSEC_HS_MAX_LEN];
  size_t m0len, m1len, m4len;
  mtcsec_tstamp now;
} exch;

static int established;

static int persist(void *ud, uint64_t next) {
  (void)ud;
  (void)next;
  return 0;
}

static void dev_event(void *ud, const mtcsec_dev_event *ev) {
  (void)ud;
  if (ev->type == MTCSEC_DEV_EV_ESTABLISHED) {
    established++;
  }
}

static const mtcsec_dev_callbacks DEV_CB = {persist, dev_event};

/* The functions callgrind collects: not inlined, not static. */
__attribute__((noinline)) mtcsec_ssize
bench_dev_m0_to_m1(mtcsec_dev *d, const exch *e, uint8_t *m1, size_t m1max);
__attribute__((noinline)) int bench_dev_m4(mtcsec_dev *d, const exch *e);
__attribute__((noinline)) int bench_dev_init(mtcsec_dev *d,
                                             const mtcsec_dev_config *cfg,
                                             const mtcsec_crypto *crypto);

mtcsec_ssize bench_dev_m0_to_m1(mtcsec_dev *d, const exch *e, uint8_t *m1,
                                size_t m1max) {
  uint64_t peer;
  int rv = mtcsec_dev_read(d, e->m0, e->m0len, 1, e->now);
  if (rv != 0) {
    return rv;
  }
  return mtcsec_dev_write(d, m1, m1max, &peer, e->now);
}

int bench_dev_m4(mtcsec_dev *d, const exch *e) {
  return mtcsec_dev_read(d, e->m4, e->m4len, 1, e->now);
}

int bench_dev_init(mtcsec_dev *d, const mtcsec_dev_config *cfg,
                   const mtcsec_crypto *crypto) {
  return mtcsec_dev_init(d, cfg, crypto, &DEV_CB, NULL);
}

/* Session storage of the devices A, B and C (one live DMKey each). */
static mtcsec_dev_session sess_a[1], sess_b[1], sess_c[1];

/* ------------------------------------------------------------- setup */

static void dev_config(mtcsec_dev_config *cfg, uint8_t suite,
                       const uint8_t *psk) {
  mtcsec_dev_config_default(cfg);
  cfg->suite = suite;
  bench_dev_id(cfg->mtcd_id, 0xa1);
  memcpy(cfg->mtcs_id, BENCH_SRV, MTCSEC_ID_LEN);
  cfg->pskey = psk;
  cfg->next_nonce = 0;
  cfg->m0_interval = 0;
}

/* Runs n exchanges of device A through the UE and the server core. */
static void record_exchanges(exch *ex, size_t n, uint8_t suite,
                             const uint8_t *psk, const mtcsec_crypto *c) {
  mtcsec_store_mem *store = NULL;
  mtcsec_srv *srv = NULL;
  mtcsec_ue *ue = NULL;
  mtcsec_srv_config scfg;
  mtcsec_ue_config ucfg;
  mtcsec_dev_config dcfg;
  mtcsec_store_device sd;
  mtcsec_dev a;
  mtcsec_link link;
  uint8_t buf[512];
  uint64_t peer, conn;
  mtcsec_ssize len;
  size_t i;
  int rv;

  dev_config(&dcfg, suite, psk);
  dcfg.sessions = sess_a;
  dcfg.nsessions = 1;
  rv = mtcsec_dev_init(&a, &dcfg, c, &DEV_CB, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_dev_init (A)", rv);
  rv = mtcsec_store_mem_new(&store, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_new", rv);
  memset(&sd, 0, sizeof(sd));
  sd.suite = suite;
  rv = mtcsec_derive_device_keys(c, suite, psk, dcfg.mtcd_id, BENCH_SRV,
                                 sd.k_auth, sd.k_dm);
  BENCH_CHECK(rv == 0, "mtcsec_derive_device_keys", rv);
  rv = mtcsec_store_mem_add_device(store, dcfg.mtcd_id, &sd);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_add_device", rv);
  mtcsec_zeroize(&sd, sizeof(sd));
  rv = mtcsec_store_mem_grant(store, dcfg.mtcd_id, BENCH_UE, 0x0f, 3600);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_grant", rv);
  mtcsec_srv_config_default(&scfg);
  memcpy(scfg.mtcs_id, BENCH_SRV, MTCSEC_ID_LEN);
  rv = mtcsec_srv_new(&srv, &scfg, c, &mtcsec_store_mem_ops, store, NULL, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_srv_new", rv);
  mtcsec_ue_config_default(&ucfg);
  memcpy(ucfg.ueid, BENCH_UE, MTCSEC_ID_LEN);
  rv = mtcsec_ue_new(&ue, &ucfg, c, NULL, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_ue_new", rv);

  for (i = 0; i < n; i++) {
    exch *e = &ex[i];
    e->now = 1000 * (mtcsec_tstamp)(i + 1);
    len = mtcsec_ue_m0(ue, e->m0, sizeof(e->m0), 0x03);
    BENCH_CHECK(len > 0, "mtcsec_ue_m0", len);
    e->m0len = (size_t)len;
    rv = mtcsec_dev_read(&a, e->m0, e->m0len, 1, e->now);
    BENCH_CHECK(rv == 0, "mtcsec_dev_read (M0)", rv);
    len = mtcsec_dev_write(&a, e->m1, sizeof(e->m1), &peer, e->now);
    BENCH_CHECK(len > 0, "mtcsec_dev_write", len);
    e->m1len = (size_t)len;
    rv = mtcsec_ue_read_device(ue, e->m1, e->m1len, 2, e->now);
    BENCH_CHECK(rv == 0, "mtcsec_ue_read_device", rv);
    len = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, e->now);
    BENCH_CHECK(len > 0 && link == MTCSEC_LINK_SERVER, "mtcsec_ue_write (M2)",
                len);
    rv = mtcsec_srv_recv(srv, 1, BENCH_UE, buf, (size_t)len, e->now);
    BENCH_CHECK(rv == 0, "mtcsec_srv_recv", rv);
    rv = mtcsec_srv_commit(srv, e->now);
    BENCH_CHECK(rv == 0, "mtcsec_srv_commit", rv);
    len = mtcsec_srv_write(srv, buf, sizeof(buf), &conn);
    BENCH_CHECK(len > 0 && buf[2] == MTCSEC_MSG_M3, "mtcsec_srv_write (M3)",
                len);
    rv = mtcsec_ue_read_server(ue, buf, (size_t)len, e->now);
    BENCH_CHECK(rv == 0, "mtcsec_ue_read_server", rv);
    len = mtcsec_ue_write(ue, e->m4, sizeof(e->m4), &link, &peer, e->now);
    BENCH_CHECK(len > 0 && link == MTCSEC_LINK_DEVICE, "mtcsec_ue_write (M4)",
                len);
    e->m4len = (size_t)len;
    rv = mtcsec_dev_read(&a, e->m4, e->m4len, 1, e->now);
    BENCH_CHECK(rv == 0, "mtcsec_dev_read (M4)", rv);
  }
  mtcsec_ue_del(ue);
  mtcsec_srv_del(srv);
  mtcsec_store_mem_del(store);
  mtcsec_dev_deinit(&a);
}

#ifdef MTCSEC_BENCH_MBEDTLS
/* The device's TRNG stand-in (only timer jitter uses it): splitmix64.  Not
 * a secure generator; enough for counting instructions. */
static int bench_rng(void *ctx, unsigned char *out, size_t len) {
  uint64_t *s = ctx;
  size_t i;
  for (i = 0; i < len; i++) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    out[i] = (uint8_t)(z ^ (z >> 31));
  }
  return 0;
}
#endif

static void usage(void) {
  fprintf(stderr,
          "usage: bench_device [--provider openssl|mbedtls] [--suite S] "
          "[--n N]\n");
  exit(2);
}

int main(int argc, char **argv) {
  static exch ex[MAX_N + 1];
  const char *provider = "openssl";
  unsigned long n = 10, suite = 1;
  mtcsec_crypto world = {NULL, NULL}, dc = {NULL, NULL};
#ifdef MTCSEC_BENCH_MBEDTLS
  static mtcsec_mbedtls_state mbed;
  uint64_t rng_state = 0x6d7463736563ULL;
#endif
  uint8_t psk[MTCSEC_MAX_KEY_LEN], m1[MTCSEC_HS_MAX_LEN];
  const mtcsec_suite_params *sp;
  mtcsec_dev_config cfg;
  mtcsec_dev b, c;
  mtcsec_ssize len;
  size_t i;
  int a, rv;

  for (a = 1; a < argc; a++) {
    if (a + 1 >= argc) {
      usage();
    }
    if (strcmp(argv[a], "--provider") == 0) {
      provider = argv[++a];
    } else if (strcmp(argv[a], "--suite") == 0) {
      suite = bench_parse_ul(argv[++a], "--suite");
    } else if (strcmp(argv[a], "--n") == 0) {
      n = bench_parse_ul(argv[++a], "--n");
    } else {
      usage();
    }
  }
  sp = mtcsec_suite_get((uint8_t)suite);
  if (n == 0 || n > MAX_N || suite > 255 || sp == NULL) {
    usage();
  }

  rv = mtcsec_crypto_openssl_new(&world);
  BENCH_CHECK(rv == 0, "mtcsec_crypto_openssl_new", rv);
  if (strcmp(provider, "openssl") == 0) {
    dc = world;
#ifdef MTCSEC_BENCH_MBEDTLS
  } else if (strcmp(provider, "mbedtls") == 0) {
    rv = mtcsec_crypto_mbedtls_init(&dc, &mbed, bench_rng, &rng_state);
    BENCH_CHECK(rv == 0, "mtcsec_crypto_mbedtls_init", rv);
#endif
  } else {
    usage();
  }
  bench_dev_psk(psk, sp->keylen, 0xa1);
  record_exchanges(ex, n + 1, (uint8_t)suite, psk, &world);

  /* Device B replays them: exchange 0 warms up, 1..n are measured. */
  dev_config(&cfg, (uint8_t)suite, psk);
  cfg.sessions = sess_b;
  cfg.nsessions = 1;
  rv = mtcsec_dev_init(&b, &cfg, &dc, &DEV_CB, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_dev_init (B)", rv);
  established = 0;
  for (i = 0; i <= n; i++) {
    const exch *e = &ex[i];
    if (i == 0) {
      uint64_t peer;
      rv = mtcsec_dev_read(&b, e->m0, e->m0len, 1, e->now);
      BENCH_CHECK(rv == 0, "warm-up M0", rv);
      len = mtcsec_dev_write(&b, m1, sizeof(m1), &peer, e->now);
    } else {
      len = bench_dev_m0_to_m1(&b, e, m1, sizeof(m1));
    }
    BENCH_CHECK(len > 0, "M0 -> M1", len);
    if ((size_t)len != e->m1len || memcmp(m1, e->m1, e->m1len) != 0) {
      fprintf(stderr, "bench: device B's M1 differs from device A's\n");
      return 1;
    }
    rv = i == 0 ? mtcsec_dev_read(&b, e->m4, e->m4len, 1, e->now)
                : bench_dev_m4(&b, e);
    BENCH_CHECK(rv == 0, "M4", rv);
  }
  BENCH_CHECK(established == (int)n + 1, "every exchange established",
              MTCSEC_ERR_INVALID_STATE);
  /* One boot-time init on a third device, same provider (warm). */
  cfg.sessions = sess_c;
  cfg.nsessions = 1;
  rv = bench_dev_init(&c, &cfg, &dc);
  BENCH_CHECK(rv == 0, "mtcsec_dev_init (C)", rv);

  printf("# bench_device: provider %s, suite %lu, %lu measured "
         "establishments (+1 warm-up)\n",
         provider, suite, n);
  printf("device_link_bytes M0=%zu M1=%zu M4=%zu total=%zu\n", ex[1].m0len,
         ex[1].m1len, ex[1].m4len, ex[1].m0len + ex[1].m1len + ex[1].m4len);
  printf("sizeof(mtcsec_dev)=%zu sizeof(mtcsec_dev_session)=%zu "
         "sizeof(mtcsec_chan)=%zu (this host)\n",
         sizeof(mtcsec_dev), sizeof(mtcsec_dev_session), sizeof(mtcsec_chan));

  mtcsec_dev_deinit(&b);
  mtcsec_dev_deinit(&c);
  mtcsec_zeroize(psk, sizeof(psk));
#ifdef MTCSEC_BENCH_MBEDTLS
  if (dc.ops != world.ops) {
    mtcsec_crypto_mbedtls_free(&dc);
  }
#endif
  mtcsec_crypto_openssl_del(&world);
  return 0;
}
