/*
 * Device-link bytes per establishment and per channel record, mtcsec next
 * to an OpenSSL DTLS 1.2 PSK handshake measured in the same run.
 *
 * mtcsec: complete exchanges through the roles in one process (device, UE,
 * relay, server core over the in-memory store, OpenSSL provider), for each
 * suite, direct and through one relay.  Every datagram is measured as the
 * role that sends it returns it (mtcsec_ue_m0, mtcsec_dev_write,
 * mtcsec_gw_relay, mtcsec_ue_write); the server link (M2/M3 over TLS) is
 * not part of the device link.  Relayed runs report the GW<->device leg and
 * the UE<->GW leg separately.  The channel overhead is the length of a
 * record the device seals minus its plaintext length.
 *
 * DTLS: see bench_dtlspair.h; with and without the cookie exchange.  The
 * DTLS record overhead is the datagram the client sends for one
 * application record minus its plaintext length.
 *
 * Usage: bench_link (no options)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/codec.h>
#include <mtcsec/device.h>
#include <mtcsec/gateway.h>
#include <mtcsec/phone.h>
#include <mtcsec/server.h>
#include <mtcsec/store.h>

#include "bench_common.h"
#include "bench_dtlspair.h"

#define PT_LEN 10 /* plaintext of the record-overhead probes */

static int persist(void *ud, uint64_t next) {
  (void)ud;
  (void)next;
  return 0;
}

static const mtcsec_dev_callbacks DEV_CB = {persist, NULL};

/* Bytes of one establishment on each leg. */
typedef struct legs {
  size_t m0_ue, m1_ue, m4_ue;    /* UE side (UE<->GW, or UE<->device) */
  size_t m0_dev, m1_dev, m4_dev; /* device side (GW<->device) */
  long rec_overhead;
} legs;

typedef struct world {
  const mtcsec_crypto *c;
  uint8_t suite;
  mtcsec_store_mem *store;
  mtcsec_srv *srv;
  mtcsec_ue *ue;
  mtcsec_dev dev;
  mtcsec_dev_session sess[2];
  mtcsec_gw gw;
  mtcsec_tstamp now;
} world;

static void world_init(world *w, const mtcsec_crypto *c, uint8_t suite) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  uint8_t psk[MTCSEC_MAX_KEY_LEN];
  mtcsec_store_device sd;
  mtcsec_srv_config scfg;
  mtcsec_ue_config ucfg;
  mtcsec_dev_config dcfg;
  int rv;

  memset(w, 0, sizeof(*w));
  w->c = c;
  w->suite = suite;
  w->now = 1000;
  bench_dev_psk(psk, sp->keylen, 0xa1);
  mtcsec_dev_config_default(&dcfg);
  dcfg.suite = suite;
  bench_dev_id(dcfg.mtcd_id, 0xa1);
  memcpy(dcfg.mtcs_id, BENCH_SRV, MTCSEC_ID_LEN);
  dcfg.pskey = psk;
  dcfg.sessions = w->sess;
  dcfg.nsessions = 2;
  dcfg.m0_interval = 0;
  rv = mtcsec_dev_init(&w->dev, &dcfg, c, &DEV_CB, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_dev_init", rv);

  rv = mtcsec_store_mem_new(&w->store, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_new", rv);
  memset(&sd, 0, sizeof(sd));
  sd.suite = suite;
  rv = mtcsec_derive_device_keys(c, suite, psk, dcfg.mtcd_id, BENCH_SRV,
                                 sd.k_auth, sd.k_dm);
  BENCH_CHECK(rv == 0, "mtcsec_derive_device_keys", rv);
  rv = mtcsec_store_mem_add_device(w->store, dcfg.mtcd_id, &sd);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_add_device", rv);
  mtcsec_zeroize(&sd, sizeof(sd));
  mtcsec_zeroize(psk, sizeof(psk));
  rv = mtcsec_store_mem_grant(w->store, dcfg.mtcd_id, BENCH_UE, 0x0f, 3600);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_grant", rv);
  rv = mtcsec_store_mem_allow_relay(w->store, dcfg.mtcd_id, BENCH_GW);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_allow_relay", rv);
  mtcsec_srv_config_default(&scfg);
  memcpy(scfg.mtcs_id, BENCH_SRV, MTCSEC_ID_LEN);
  rv = mtcsec_srv_new(&w->srv, &scfg, c, &mtcsec_store_mem_ops, w->store, NULL,
                      NULL);
  BENCH_CHECK(rv == 0, "mtcsec_srv_new", rv);
  mtcsec_ue_config_default(&ucfg);
  memcpy(ucfg.ueid, BENCH_UE, MTCSEC_ID_LEN);
  rv = mtcsec_ue_new(&w->ue, &ucfg, c, NULL, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_ue_new", rv);
  rv = mtcsec_gw_init(&w->gw, BENCH_GW);
  BENCH_CHECK(rv == 0, "mtcsec_gw_init", rv);
}

static void world_free(world *w) {
  mtcsec_ue_del(w->ue);
  mtcsec_srv_del(w->srv);
  mtcsec_store_mem_del(w->store);
  mtcsec_dev_deinit(&w->dev);
}

/* Through the relay when relayed: returns the forwarded length. */
static size_t relay(world *w, int relayed, mtcsec_gw_dir dir, uint8_t *buf,
                    size_t len) {
  uint8_t tmp[512];
  mtcsec_ssize n;
  if (!relayed) {
    return len;
  }
  n = mtcsec_gw_relay(&w->gw, dir, tmp, sizeof(tmp), buf, len);
  BENCH_CHECK(n > 0, "mtcsec_gw_relay", n);
  memcpy(buf, tmp, (size_t)n);
  return (size_t)n;
}

/* One establishment; with_m0 = 0 starts it on the device (no M0). */
static void establish(world *w, int relayed, int with_m0, legs *l) {
  uint8_t buf[512], rec[128], pt[PT_LEN];
  mtcsec_link link;
  uint64_t peer, conn;
  mtcsec_ssize n;
  size_t len;
  int rv;

  memset(l, 0, sizeof(*l));
  w->now += 1000;
  if (with_m0) {
    n = mtcsec_ue_m0(w->ue, buf, sizeof(buf), 0x03);
    BENCH_CHECK(n > 0, "mtcsec_ue_m0", n);
    l->m0_ue = (size_t)n;
    len = relay(w, relayed, MTCSEC_GW_TO_DEVICE, buf, (size_t)n);
    l->m0_dev = len;
    rv = mtcsec_dev_read(&w->dev, buf, len, 1, w->now);
    BENCH_CHECK(rv == 0, "mtcsec_dev_read (M0)", rv);
  } else {
    rv = mtcsec_dev_start(&w->dev, BENCH_UE, 1, w->now);
    BENCH_CHECK(rv == 0, "mtcsec_dev_start", rv);
  }
  n = mtcsec_dev_write(&w->dev, buf, sizeof(buf), &peer, w->now);
  BENCH_CHECK(n > 0, "mtcsec_dev_write", n);
  l->m1_dev = (size_t)n;
  len = relay(w, relayed, MTCSEC_GW_TO_UE, buf, (size_t)n);
  l->m1_ue = len;
  rv = mtcsec_ue_read_device(w->ue, buf, len, 2, w->now);
  BENCH_CHECK(rv == 0, "mtcsec_ue_read_device", rv);
  n = mtcsec_ue_write(w->ue, buf, sizeof(buf), &link, &peer, w->now);
  BENCH_CHECK(n > 0 && link == MTCSEC_LINK_SERVER, "mtcsec_ue_write (M2)", n);
  rv = mtcsec_srv_recv(w->srv, 1, BENCH_UE, buf, (size_t)n, w->now);
  BENCH_CHECK(rv == 0, "mtcsec_srv_recv", rv);
  rv = mtcsec_srv_commit(w->srv, w->now);
  BENCH_CHECK(rv == 0, "mtcsec_srv_commit", rv);
  n = mtcsec_srv_write(w->srv, buf, sizeof(buf), &conn);
  BENCH_CHECK(n > 0 && buf[2] == MTCSEC_MSG_M3, "M3", n);
  rv = mtcsec_ue_read_server(w->ue, buf, (size_t)n, w->now);
  BENCH_CHECK(rv == 0, "mtcsec_ue_read_server", rv);
  n = mtcsec_ue_write(w->ue, buf, sizeof(buf), &link, &peer, w->now);
  BENCH_CHECK(n > 0 && link == MTCSEC_LINK_DEVICE, "mtcsec_ue_write (M4)", n);
  l->m4_ue = (size_t)n;
  len = relay(w, relayed, MTCSEC_GW_TO_DEVICE, buf, (size_t)n);
  l->m4_dev = len;
  rv = mtcsec_dev_read(&w->dev, buf, len, 1, w->now);
  BENCH_CHECK(rv == 0, "mtcsec_dev_read (M4)", rv);

  /* One record from the device under the new key (its KEY_ID is the
   * session count minus one: the store starts at 0). */
  memset(pt, 0x42, sizeof(pt));
  n = mtcsec_dev_seal(&w->dev,
                      (uint16_t)(mtcsec_store_mem_sessions(w->store) - 1), rec,
                      sizeof(rec), pt, sizeof(pt), w->now);
  BENCH_CHECK(n > 0, "mtcsec_dev_seal", n);
  l->rec_overhead = (long)n - PT_LEN;
}

int main(void) {
  static bench_dtls_pair dtls;
  mtcsec_crypto c;
  size_t dtls_bytes[2], dtls_flights[2], dtls_dgrams[2], s1_direct = 0;
  long dtls_over = -1;
  uint8_t suite;
  int cookie, rv;

  /* DTLS first: the reference of the ratio. */
  for (cookie = 1; cookie >= 0; cookie--) {
    if (bench_dtls_init(&dtls, cookie) != 0 ||
        bench_dtls_handshake(&dtls, NULL) != 0) {
      return 1;
    }
    dtls_bytes[cookie] = dtls.st.bytes[0] + dtls.st.bytes[1];
    dtls_flights[cookie] = dtls.st.flights;
    dtls_dgrams[cookie] = dtls.st.dgrams[0] + dtls.st.dgrams[1];
    if (cookie) {
      dtls_over = bench_dtls_record_overhead(&dtls, PT_LEN);
      if (dtls_over < 0) {
        return 1;
      }
    }
    bench_dtls_free(&dtls);
  }

  rv = mtcsec_crypto_openssl_new(&c);
  BENCH_CHECK(rv == 0, "mtcsec_crypto_openssl_new", rv);
  printf("# bench_link: device-link UDP payload bytes per establishment\n");
  printf("%-5s %-8s %-14s %5s %5s %5s %6s %9s\n", "suite", "mode", "leg", "M0",
         "M1", "M4", "total", "rec_ovh");
  for (suite = 1; suite <= 3; suite++) {
    world w;
    legs d, r, s;
    world_init(&w, &c, suite);
    establish(&w, 0, 1, &d);
    establish(&w, 1, 1, &r);
    establish(&w, 0, 0, &s);
    printf("%-5u %-8s %-14s %5zu %5zu %5zu %6zu %9ld\n", (unsigned)suite,
           "direct", "UE<->device", d.m0_ue, d.m1_ue, d.m4_ue,
           d.m0_ue + d.m1_ue + d.m4_ue, d.rec_overhead);
    printf("%-5u %-8s %-14s %5s %5zu %5zu %6zu %9ld\n", (unsigned)suite,
           "direct", "(no M0)", "-", s.m1_ue, s.m4_ue, s.m1_ue + s.m4_ue,
           s.rec_overhead);
    printf("%-5u %-8s %-14s %5zu %5zu %5zu %6zu %9s\n", (unsigned)suite,
           "relayed", "GW<->device", r.m0_dev, r.m1_dev, r.m4_dev,
           r.m0_dev + r.m1_dev + r.m4_dev, "");
    printf("%-5u %-8s %-14s %5zu %5zu %5zu %6zu %9ld\n", (unsigned)suite,
           "relayed", "UE<->GW", r.m0_ue, r.m1_ue, r.m4_ue,
           r.m0_ue + r.m1_ue + r.m4_ue, r.rec_overhead);
    if (suite == 1) {
      s1_direct = d.m0_ue + d.m1_ue + d.m4_ue;
    }
    world_free(&w);
  }
  mtcsec_crypto_openssl_del(&c);

  printf("# DTLS 1.2 PSK-AES128-CCM8 (OpenSSL %s), full handshake, all "
         "datagrams both directions\n",
         OpenSSL_version(OPENSSL_VERSION_STRING));
  printf("dtls cookie=on  bytes=%zu datagrams=%zu flights=%zu\n", dtls_bytes[1],
         dtls_dgrams[1], dtls_flights[1]);
  printf("dtls cookie=off bytes=%zu datagrams=%zu flights=%zu\n", dtls_bytes[0],
         dtls_dgrams[0], dtls_flights[0]);
  printf("dtls record overhead=%ld\n", dtls_over);
  printf("suite1 direct %zu B = 1/%.2f of DTLS with cookie (%zu B), 1/%.2f "
         "without (%zu B)\n",
         s1_direct, (double)dtls_bytes[1] / (double)s1_direct, dtls_bytes[1],
         (double)dtls_bytes[0] / (double)s1_direct, dtls_bytes[0]);
  return 0;
}
