/*
 * Full exchanges through the four roles in one process, no sockets: device,
 * relay, UE and the server core over the in-memory store, with a fake clock.
 * With fixed randomness the bytes on every link must equal the committed
 * vectors of docs/test-vectors (the roles, not only the codec, reproduce
 * PROTOCOL.md section 8).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mtcsec/codec.h>
#include <mtcsec/device.h>
#include <mtcsec/gateway.h>
#include <mtcsec/phone.h>
#include <mtcsec/server.h>
#include <mtcsec/store.h>

#include "crypto_fixture.h"

/* ------------------------------------------------ committed vectors */

typedef struct vec {
  char *text;
} vec;

static void vec_load(vec *v, const char *name) {
  char path[512];
  FILE *f;
  long n;
  snprintf(path, sizeof(path), "%s/docs/test-vectors/%s", MTCSEC_SOURCE_DIR,
           name);
  f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  v->text = malloc((size_t)n + 1);
  assert_non_null(v->text);
  assert_int_equal(fread(v->text, 1, (size_t)n, f), (size_t)n);
  v->text[n] = 0;
  fclose(f);
}

/* The hex string of "key": "..." (keys are unique in a vector file). */
static size_t vec_hex(const vec *v, const char *key, uint8_t *out, size_t max) {
  char pat[64], hex[8192];
  const char *p, *q;
  snprintf(pat, sizeof(pat), "\"%s\":", key);
  p = strstr(v->text, pat);
  assert_non_null(p);
  p = strchr(p + strlen(pat), '"');
  assert_non_null(p);
  q = strchr(p + 1, '"');
  assert_non_null(q);
  assert_true((size_t)(q - p - 1) < sizeof(hex));
  memcpy(hex, p + 1, (size_t)(q - p - 1));
  hex[q - p - 1] = 0;
  return th_unhex(out, max, hex);
}

static void vec_free(vec *v) { free(v->text); }

/* ----------------------------------------------------------- world */

static const uint8_t DEV[8] = {2, 0, 0, 0, 0, 0, 0, 0xa1};
static const uint8_t SRV[8] = {0x5e, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t UEID[8] = {0x0e, 0, 0, 0, 0, 0, 0, 0x42};
static const uint8_t GWID[8] = {0x67, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t SNONCE[8] = {0x8a, 0x1f, 0x3c, 0x5e,
                                  0x7b, 0x9d, 0x2e, 0x40};

typedef struct world {
  mtcsec_fixed fixed;
  const mtcsec_crypto *c;
  mtcsec_store_mem *store;
  mtcsec_srv *srv;
  mtcsec_dev dev;
  mtcsec_dev_session sess[2];
  mtcsec_dev_callbacks dcb;
  mtcsec_gw gw;
  uint8_t suite;
  uint64_t persisted;
  int dev_established, ue_established, srv_ok;
  size_t device_link_bytes;
} world;

static int persist(void *ud, uint64_t next) {
  ((world *)ud)->persisted = next;
  return 0;
}

static void dev_event(void *ud, const mtcsec_dev_event *ev) {
  if (ev->type == MTCSEC_DEV_EV_ESTABLISHED) {
    ((world *)ud)->dev_established++;
  }
}

static void ue_event(void *ud, const mtcsec_ue_event *ev) {
  if (ev->type == MTCSEC_UE_EV_ESTABLISHED) {
    ((world *)ud)->ue_established++;
  }
}

static void srv_result(void *ud, const mtcsec_srv_result *r) {
  if (r->errcode == 0) {
    ((world *)ud)->srv_ok++;
  }
}

static void world_init(world *w, uint8_t suite, const uint8_t *psk,
                       uint64_t next_nonce) {
  mtcsec_store_device d;
  mtcsec_srv_config scfg;
  static const mtcsec_srv_callbacks scb = {srv_result};
  mtcsec_dev_config dcfg;

  memset(w, 0, sizeof(*w));
  w->suite = suite;
  w->c = th_fixed(&w->fixed, 7);
  assert_int_equal(mtcsec_store_mem_new(&w->store, NULL), 0);
  memset(&d, 0, sizeof(d));
  d.suite = suite;
  assert_int_equal(
    mtcsec_derive_device_keys(w->c, suite, psk, DEV, SRV, d.k_auth, d.k_dm), 0);
  assert_int_equal(mtcsec_store_mem_add_device(w->store, DEV, &d), 0);
  mtcsec_zeroize(&d, sizeof(d));
  assert_int_equal(mtcsec_store_mem_grant(w->store, DEV, UEID, 0x0f, 3600), 0);
  assert_int_equal(mtcsec_store_mem_allow_relay(w->store, DEV, GWID), 0);
  mtcsec_srv_config_default(&scfg);
  memcpy(scfg.mtcs_id, SRV, 8);
  assert_int_equal(mtcsec_srv_new(&w->srv, &scfg, w->c, &mtcsec_store_mem_ops,
                                  w->store, &scb, w),
                   0);

  mtcsec_dev_config_default(&dcfg);
  dcfg.suite = suite;
  memcpy(dcfg.mtcd_id, DEV, 8);
  memcpy(dcfg.mtcs_id, SRV, 8);
  dcfg.pskey = psk;
  dcfg.next_nonce = next_nonce;
  dcfg.m0_interval = 0;
  dcfg.sessions = w->sess;
  dcfg.nsessions = 2;
  w->dcb.persist_nonce = persist;
  w->dcb.on_event = dev_event;
  assert_int_equal(mtcsec_dev_init(&w->dev, &dcfg, w->c, &w->dcb, w), 0);
  assert_int_equal(mtcsec_gw_init(&w->gw, GWID), 0);
}

static void world_free(world *w) {
  mtcsec_dev_deinit(&w->dev);
  mtcsec_srv_del(w->srv);
  mtcsec_store_mem_del(w->store);
}

static mtcsec_ue *new_ue(world *w) {
  mtcsec_ue_config cfg;
  static const mtcsec_ue_callbacks cb = {ue_event};
  mtcsec_ue *ue = NULL;
  mtcsec_ue_config_default(&cfg);
  memcpy(cfg.ueid, UEID, 8);
  assert_int_equal(mtcsec_ue_new(&ue, &cfg, w->c, &cb, w), 0);
  return ue;
}

/* Bytes seen on each link of one exchange. */
typedef struct trace {
  uint8_t m0[64], m1[400], m2[400], m3[400], m4[400];
  size_t m0len, m1len, m2len, m3len, m4len;
} trace;

/* Delivers one device-link datagram, through the relay if relayed. */
static size_t hop(world *w, int relayed, mtcsec_gw_dir dir, uint8_t *buf,
                  size_t len) {
  uint8_t tmp[512];
  mtcsec_ssize n;
  w->device_link_bytes += len;
  if (!relayed) {
    return len;
  }
  n = mtcsec_gw_relay(&w->gw, dir, tmp, sizeof(tmp), buf, len);
  assert_true(n > 0);
  memcpy(buf, tmp, (size_t)n);
  w->device_link_bytes += (size_t)n;
  return (size_t)n;
}

/* One exchange, UE-triggered by M0; fills t with what each link carried. */
static void run_exchange(world *w, mtcsec_ue *ue, int relayed, uint8_t perms,
                         const uint8_t *snonce, mtcsec_tstamp now, trace *t) {
  uint8_t buf[512], out[512];
  mtcsec_link link;
  uint64_t peer, conn;
  mtcsec_ssize n;
  size_t len;

  memset(t, 0, sizeof(*t));
  /* M0: UE -> (GW) -> MTCd */
  n = mtcsec_ue_m0(ue, buf, sizeof(buf), perms);
  assert_true(n > 0);
  len = hop(w, relayed, MTCSEC_GW_TO_DEVICE, buf, (size_t)n);
  memcpy(t->m0, buf, len);
  t->m0len = len;
  assert_int_equal(mtcsec_dev_read(&w->dev, buf, len, 1, now), 0);
  /* M1: MTCd -> (GW) -> UE */
  n = mtcsec_dev_write(&w->dev, buf, sizeof(buf), &peer, now);
  assert_true(n > 0);
  memcpy(t->m1, buf, (size_t)n);
  t->m1len = (size_t)n;
  len = hop(w, relayed, MTCSEC_GW_TO_UE, buf, (size_t)n);
  assert_int_equal(mtcsec_ue_read_device(ue, buf, len, 2, now), 0);
  /* M2: UE -> MTCs over the server link */
  n = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, now);
  assert_true(n > 0);
  assert_int_equal(link, MTCSEC_LINK_SERVER);
  memcpy(t->m2, buf, (size_t)n);
  t->m2len = (size_t)n;
  if (snonce != NULL) {
    assert_int_equal(mtcsec_fixed_push(&w->fixed, snonce, 8), 0);
  }
  assert_int_equal(mtcsec_srv_recv(w->srv, 99, UEID, buf, (size_t)n, now), 0);
  assert_int_equal(mtcsec_srv_pending(w->srv), 1);
  assert_int_equal(mtcsec_srv_commit(w->srv, now), 0);
  /* M3: MTCs -> UE */
  n = mtcsec_srv_write(w->srv, out, sizeof(out), &conn);
  assert_true(n > 0);
  assert_int_equal(conn, 99);
  memcpy(t->m3, out, (size_t)n);
  t->m3len = (size_t)n;
  assert_int_equal(mtcsec_ue_read_server(ue, out, (size_t)n, now), 0);
  /* M4: UE -> (GW) -> MTCd */
  n = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, now);
  assert_true(n > 0);
  assert_int_equal(link, MTCSEC_LINK_DEVICE);
  assert_int_equal(peer, 2);
  memcpy(t->m4, buf, (size_t)n);
  t->m4len = (size_t)n;
  len = hop(w, relayed, MTCSEC_GW_TO_DEVICE, buf, (size_t)n);
  assert_int_equal(mtcsec_dev_read(&w->dev, buf, len, 1, now), 0);
}

static void check_against_vector(const char *file, uint8_t suite,
                                 const uint8_t *psk, int relayed) {
  world w;
  trace t;
  vec v;
  mtcsec_ue *warm, *ue;
  uint8_t want[4096], rec[512], pt[512], wantpt[512];
  mtcsec_chan *ch;
  mtcsec_ssize n;
  size_t wl, ptl, i;
  uint32_t u2d_seq;

  vec_load(&v, file);
  /* One earlier exchange (nonce 6) so that this one gets KEY_ID 1 and
   * MTCdNonce 7, as the vectors have it. */
  world_init(&w, suite, psk, 6);
  warm = new_ue(&w);
  run_exchange(&w, warm, relayed, 3, NULL, 0, &t);
  mtcsec_ue_del(warm);
  ue = new_ue(&w); /* req_id starts at 1 again */
  w.device_link_bytes = 0;
  run_exchange(&w, ue, relayed, 3, SNONCE, 1000, &t);
  assert_int_equal(w.dev_established, 2);
  assert_int_equal(w.ue_established, 2);
  assert_int_equal(w.srv_ok, 2);
  assert_int_equal(w.persisted, 8);

  wl = vec_hex(&v, "M0", want, sizeof(want));
  assert_int_equal(t.m0len, wl);
  assert_memory_equal(t.m0, want, wl);
  wl = vec_hex(&v, "M1", want, sizeof(want));
  assert_int_equal(t.m1len, wl);
  assert_memory_equal(t.m1, want, wl);
  wl = vec_hex(&v, "M2_frame", want, sizeof(want));
  assert_int_equal(t.m2len, wl);
  assert_memory_equal(t.m2, want, wl);
  wl = vec_hex(&v, "M3_frame", want, sizeof(want));
  assert_int_equal(t.m3len, wl);
  assert_memory_equal(t.m3, want, wl);
  wl = vec_hex(&v, "M4", want, sizeof(want));
  assert_int_equal(t.m4len, wl);
  assert_memory_equal(t.m4, want, wl);
  if (!relayed && suite == 1) {
    /* M0 11 + M1 46 + M4 56: the device link of issue's target. */
    assert_int_equal(w.device_link_bytes, 113);
  }

  /* The channel: the device's first record is record_d2u at seq 0 (the
   * direct vectors use seq 0 for d2u). */
  ch = mtcsec_ue_channel(ue, DEV);
  assert_non_null(ch);
  ptl = vec_hex(&v, "d2u_plaintext", wantpt, sizeof(wantpt));
  n = mtcsec_dev_seal(&w.dev, 1, rec, sizeof(rec), wantpt, ptl, 1001);
  assert_true(n > 0);
  if (strstr(file, "relayed2") == NULL &&
      strstr(file, "suite3-relayed") == NULL) {
    wl = vec_hex(&v, "record_d2u", want, sizeof(want));
    assert_int_equal((size_t)n, wl);
    assert_memory_equal(rec, want, wl);
  }
  assert_int_equal(mtcsec_chan_open(ch, pt, sizeof(pt), rec, (size_t)n, 1001),
                   (mtcsec_ssize)ptl);
  assert_memory_equal(pt, wantpt, ptl);
  /* u2d: the UE's record at the vector's seq (5). */
  ptl = vec_hex(&v, "u2d_plaintext", wantpt, sizeof(wantpt));
  u2d_seq = 5;
  for (i = 0; i <= u2d_seq; i++) {
    mtcsec_dev_record_info info;
    n = mtcsec_chan_seal(ch, rec, sizeof(rec), wantpt, ptl, 1002);
    assert_true(n > 0);
    assert_int_equal(
      mtcsec_dev_open(&w.dev, pt, sizeof(pt), rec, (size_t)n, 1002, &info),
      (mtcsec_ssize)ptl);
    assert_int_equal(info.perms, 3);
  }
  if (strstr(file, "relayed2") == NULL) {
    wl = vec_hex(&v, "record_u2d", want, sizeof(want));
    assert_int_equal((size_t)n, wl);
    assert_memory_equal(rec, want, wl);
  }
  /* The committed revocation erases the device's DMKey. */
  wl = vec_hex(&v, "revocation", want, sizeof(want));
  assert_int_equal(mtcsec_dev_read(&w.dev, want, wl, 1, 1003), 0);
  assert_int_equal(mtcsec_dev_authorize(&w.dev, 1, 1, 1003),
                   MTCSEC_ERR_NOT_FOUND);

  mtcsec_ue_del(ue);
  world_free(&w);
  vec_free(&v);
}

static const uint8_t PSK32[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                  11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                  22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static void test_exchange_direct_suite1_matches_vector(void **state) {
  (void)state;
  check_against_vector("suite1-direct.json", 1, PSK32, 0);
}
static void test_exchange_relayed_suite1_matches_vector(void **state) {
  (void)state;
  check_against_vector("suite1-relayed.json", 1, PSK32, 1);
}
static void test_exchange_direct_suite2_matches_vector(void **state) {
  (void)state;
  check_against_vector("suite2-direct.json", 2, PSK32, 0);
}
static void test_exchange_relayed_suite2_matches_vector(void **state) {
  (void)state;
  check_against_vector("suite2-relayed.json", 2, PSK32, 1);
}
static void test_exchange_direct_suite3_matches_vector(void **state) {
  (void)state;
  check_against_vector("suite3-direct.json", 3, PSK32, 0);
}
static void test_exchange_relayed_suite3_matches_vector(void **state) {
  (void)state;
  check_against_vector("suite3-relayed.json", 3, PSK32, 1);
}

/* A duplicated M2 (a relay resent M1, the UE lost track) inside 60 s gets
 * the same M3; the device, which already accepted, ignores the resend. */
static void test_exchange_duplicate_retransmission(void **state) {
  world w;
  trace t;
  mtcsec_ue *ue;
  uint8_t out[512], again[512];
  uint64_t conn;
  mtcsec_ssize n;
  (void)state;
  world_init(&w, 1, PSK32, 0);
  ue = new_ue(&w);
  run_exchange(&w, ue, 0, 3, SNONCE, 0, &t);
  /* The same M2 body under another req_id. */
  memcpy(again, t.m2, t.m2len);
  again[6] = 0x77;
  assert_int_equal(mtcsec_srv_recv(w.srv, 99, UEID, again, t.m2len, 30000), 0);
  assert_int_equal(mtcsec_srv_commit(w.srv, 30000), 0);
  n = mtcsec_srv_write(w.srv, out, sizeof(out), &conn);
  assert_int_equal((size_t)n, t.m3len);
  assert_int_equal(out[6], 0x77);
  assert_memory_equal(out + 7, t.m3 + 7, t.m3len - 7);
  /* The device already accepted that M4: a duplicate is ignored. */
  assert_int_equal(mtcsec_dev_read(&w.dev, t.m4, t.m4len, 1, 30000),
                   MTCSEC_ERR_UNEXPECTED);
  assert_int_equal(w.dev_established, 1);
  /* After 60 s it is a replay. */
  assert_int_equal(mtcsec_srv_recv(w.srv, 99, UEID, again, t.m2len, 61000), 0);
  assert_int_equal(mtcsec_srv_commit(w.srv, 61000), 0);
  n = mtcsec_srv_write(w.srv, out, sizeof(out), &conn);
  assert_true(n > 7);
  assert_int_equal(out[2], MTCSEC_MSG_ERR);
  assert_int_equal(out[7], MTCSEC_ERRCODE_REPLAY);
  mtcsec_ue_del(ue);
  world_free(&w);
}

/* The device resends its M1 (M4 lost); the UE forwards it as a new M2 and
 * the server answers the same M3 from its cache; the device accepts. */
static void test_exchange_lost_m4_recovers(void **state) {
  world w;
  mtcsec_ue *ue;
  uint8_t buf[512], m1[512], m3[512];
  mtcsec_link link;
  uint64_t peer, conn;
  mtcsec_tstamp t;
  mtcsec_ssize n, m1len;
  (void)state;
  world_init(&w, 1, PSK32, 0);
  ue = new_ue(&w);
  n = mtcsec_ue_m0(ue, buf, sizeof(buf), 1);
  assert_int_equal(mtcsec_dev_read(&w.dev, buf, (size_t)n, 1, 0), 0);
  m1len = mtcsec_dev_write(&w.dev, m1, sizeof(m1), &peer, 0);
  assert_int_equal(mtcsec_ue_read_device(ue, m1, (size_t)m1len, 2, 0), 0);
  n = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, 0);
  assert_int_equal(mtcsec_srv_recv(w.srv, 5, UEID, buf, (size_t)n, 0), 0);
  assert_int_equal(mtcsec_srv_commit(w.srv, 0), 0);
  n = mtcsec_srv_write(w.srv, m3, sizeof(m3), &conn);
  assert_int_equal(mtcsec_ue_read_server(ue, m3, (size_t)n, 0), 0);
  n = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, 0);
  assert_int_equal(link, MTCSEC_LINK_DEVICE);
  /* ...and this M4 is lost.  The device times out and resends. */
  t = mtcsec_dev_get_expiry(&w.dev);
  assert_int_equal(mtcsec_dev_handle_expiry(&w.dev, t), 0);
  n = mtcsec_dev_write(&w.dev, buf, sizeof(buf), &peer, t);
  assert_int_equal(n, m1len);
  assert_memory_equal(buf, m1, (size_t)m1len);
  assert_int_equal(mtcsec_ue_read_device(ue, buf, (size_t)n, 2, t), 0);
  n = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, t);
  assert_int_equal(link, MTCSEC_LINK_SERVER);
  assert_int_equal(mtcsec_srv_recv(w.srv, 5, UEID, buf, (size_t)n, t), 0);
  assert_int_equal(mtcsec_srv_commit(w.srv, t), 0);
  n = mtcsec_srv_write(w.srv, buf, sizeof(buf), &conn);
  assert_true(n > 0);
  assert_int_equal(buf[2], MTCSEC_MSG_M3);
  assert_memory_equal(buf + 7, m3 + 7, (size_t)n - 7);
  assert_int_equal(mtcsec_ue_read_server(ue, buf, (size_t)n, t), 0);
  n = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, t);
  assert_int_equal(mtcsec_dev_read(&w.dev, buf, (size_t)n, 1, t), 0);
  assert_int_equal(w.dev_established, 1);
  assert_int_equal(mtcsec_store_mem_sessions(w.store), 1);
  mtcsec_ue_del(ue);
  world_free(&w);
}

/* A duplicate of the M1 reaches the UE after its M4 left (a radio or relay
 * duplicate, or an attacker replaying it): the server answers the same M3
 * from its cache, and the UE must keep its live channel: no u2d sequence
 * number (CCM nonce) used twice, no d2u record accepted twice. */
static void test_exchange_duplicate_m1_after_m4_keeps_channel(void **state) {
  world w;
  trace t;
  mtcsec_ue *ue;
  mtcsec_chan *ch;
  uint8_t buf[512], rec1[64], rec2[64], d2u[64], pt[64];
  const uint8_t msg[4] = {1, 2, 3, 4};
  mtcsec_link link;
  uint64_t peer, conn;
  mtcsec_ssize n, n1, n2, nd;
  (void)state;
  world_init(&w, 1, PSK32, 0);
  ue = new_ue(&w);
  run_exchange(&w, ue, 0, 3, SNONCE, 0, &t);
  ch = mtcsec_ue_channel(ue, DEV);
  assert_non_null(ch);
  n1 = mtcsec_chan_seal(ch, rec1, sizeof(rec1), msg, sizeof(msg), 10);
  assert_true(n1 > 0);
  nd = mtcsec_dev_seal(&w.dev, 0, d2u, sizeof(d2u), msg, sizeof(msg), 10);
  assert_true(nd > 0);
  assert_int_equal(mtcsec_chan_open(ch, pt, sizeof(pt), d2u, (size_t)nd, 10),
                   4);

  /* The duplicate M1 goes the whole way round again. */
  assert_int_equal(mtcsec_ue_read_device(ue, t.m1, t.m1len, 2, 20), 0);
  n = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, 20);
  assert_int_equal(link, MTCSEC_LINK_SERVER);
  assert_int_equal(mtcsec_srv_recv(w.srv, 99, UEID, buf, (size_t)n, 20), 0);
  assert_int_equal(mtcsec_srv_commit(w.srv, 20), 0);
  n = mtcsec_srv_write(w.srv, buf, sizeof(buf), &conn);
  assert_int_equal(buf[2], MTCSEC_MSG_M3);
  assert_int_equal(mtcsec_ue_read_server(ue, buf, (size_t)n, 20), 0);
  /* The M4 is sent again (the device ignores it)... */
  n = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, 20);
  assert_int_equal(link, MTCSEC_LINK_DEVICE);
  assert_int_equal(mtcsec_dev_read(&w.dev, buf, (size_t)n, 1, 20),
                   MTCSEC_ERR_UNEXPECTED);
  /* ...and the channel goes on where it was. */
  assert_ptr_equal(mtcsec_ue_channel(ue, DEV), ch);
  n2 = mtcsec_chan_seal(ch, rec2, sizeof(rec2), msg, sizeof(msg), 30);
  assert_true(n2 > 0);
  assert_int_not_equal(memcmp(rec1 + 3, rec2 + 3, 4), 0); /* new seq */
  assert_int_equal(mtcsec_chan_open(ch, pt, sizeof(pt), d2u, (size_t)nd, 30),
                   MTCSEC_ERR_REPLAY);
  assert_int_equal(
    mtcsec_dev_open(&w.dev, pt, sizeof(pt), rec1, (size_t)n1, 30, NULL), 4);
  assert_int_equal(
    mtcsec_dev_open(&w.dev, pt, sizeof(pt), rec2, (size_t)n2, 30, NULL), 4);
  mtcsec_ue_del(ue);
  world_free(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_exchange_direct_suite1_matches_vector),
    cmocka_unit_test(test_exchange_relayed_suite1_matches_vector),
    cmocka_unit_test(test_exchange_direct_suite2_matches_vector),
    cmocka_unit_test(test_exchange_relayed_suite2_matches_vector),
    cmocka_unit_test(test_exchange_direct_suite3_matches_vector),
    cmocka_unit_test(test_exchange_relayed_suite3_matches_vector),
    cmocka_unit_test(test_exchange_duplicate_retransmission),
    cmocka_unit_test(test_exchange_lost_m4_recovers),
    cmocka_unit_test(test_exchange_duplicate_m1_after_m4_keeps_channel),
  };
  int rv = cmocka_run_group_tests(tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
