/*
 * MTCd role: PROTOCOL.md sections 4, 6, 7 from the device's side.  The test
 * plays the UE and the MTCs by hand with the codec builders.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <mtcsec/device.h>
#include <mtcsec/codec.h>

#include "crypto_fixture.h"

static const uint8_t DEV[8] = {2, 0, 0, 0, 0, 0, 0, 0xa1};
static const uint8_t SRV[8] = {0x5e, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t UE[8] = {0x0e, 0, 0, 0, 0, 0, 0, 0x42};
static const uint8_t UE2[8] = {0x0e, 0, 0, 0, 0, 0, 0, 0x43};
static const uint8_t GW[8] = {0x67, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t PSK[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

/* The firmware configuration (docs/DEVICE-BUILD.md) runs these tests too:
 * a device build may take one suite only (MTCSEC_CFG_SUITES, keys up to
 * MTCSEC_CFG_MAX_KEY_LEN), count time in seconds (MTCSEC_DEV_TICKS_PER_S)
 * and leave the NULL checks out (MTCSEC_CFG_CHECK_PARAMS). */
static int dev_has_suite(uint8_t suite) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  return sp != NULL && ((MTCSEC_CFG_SUITES >> (suite - 1)) & 1) &&
         sp->keylen <= MTCSEC_CFG_MAX_KEY_LEN;
}
#define SEC(n) ((mtcsec_dev_time)(n)*MTCSEC_DEV_TICKS_PER_S)

typedef struct fx {
  mtcsec_fixed fixed;
  const mtcsec_crypto *c;
  mtcsec_dev_callbacks cb;
  mtcsec_dev dev;
  mtcsec_dev_session sess[2];
  uint8_t suite;
  uint8_t k_auth[32], k_dm[32];
  /* callback record */
  uint64_t persisted;
  int persist_calls;
  int persist_fail;
  int events[8];
  mtcsec_dev_event last; /* last.ueid points to last_ueid */
  uint8_t last_ueid[8];
} fx;

static int persist_cb(void *ud, uint64_t next) {
  fx *f = ud;
  f->persist_calls++;
  if (f->persist_fail) {
    return -1;
  }
  f->persisted = next;
  return 0;
}

static void event_cb(void *ud, const mtcsec_dev_event *ev) {
  fx *f = ud;
  f->events[ev->type]++;
  f->last = *ev;
  /* ev->ueid is valid during the callback only: keep a copy. */
  memcpy(f->last_ueid, ev->ueid, 8);
  f->last.ueid = f->last_ueid;
}

static void fx_init(fx *f, uint8_t suite, uint64_t next_nonce) {
  mtcsec_dev_config cfg;
  memset(f, 0, sizeof(*f));
  f->c = th_fixed(&f->fixed, 42);
  f->suite = suite;
  f->cb.persist_nonce = persist_cb;
  f->cb.on_event = event_cb;
  mtcsec_dev_config_default(&cfg);
  cfg.suite = suite;
  memcpy(cfg.mtcd_id, DEV, 8);
  memcpy(cfg.mtcs_id, SRV, 8);
  cfg.pskey = PSK;
  cfg.next_nonce = next_nonce;
  cfg.m0_interval = 100;
  cfg.retx_timeout = SEC(10);
  cfg.retx_max = 2;
  cfg.sessions = f->sess;
  cfg.nsessions = 2;
  assert_int_equal(mtcsec_dev_init(&f->dev, &cfg, f->c, &f->cb, f), 0);
  assert_int_equal(
    mtcsec_derive_device_keys(f->c, suite, PSK, DEV, SRV, f->k_auth, f->k_dm),
    0);
}

static size_t m0(uint8_t *out, const uint8_t *ueid, uint8_t perms,
                 const uint8_t *hops, uint8_t nhops) {
  mtcsec_ssize n = mtcsec_m0_encode(out, 64, ueid, perms, hops, nhops);
  assert_true(n > 0);
  return (size_t)n;
}

/* Plays the MTCs: M4 answering the M1 in m1 (as the server would). */
static size_t server_m4(fx *f, const uint8_t *m1, size_t m1len,
                        const uint8_t snonce[8], uint16_t key_id, uint8_t perms,
                        uint32_t lifetime, uint8_t *out, size_t outlen,
                        uint8_t *dmkey) {
  mtcsec_hs hs;
  mtcsec_sinfo si;
  mtcsec_m4_fields m4;
  uint8_t sinfo[13];
  mtcsec_ssize n;
  assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, m1len), 0);
  assert_int_equal(mtcsec_m1_verify(&hs, f->c, f->k_auth), 0);
  si.present = 7;
  si.lifetime = lifetime;
  si.perms = perms;
  si.key_id = key_id;
  assert_int_equal(mtcsec_sinfo_encode(sinfo, sizeof(sinfo), &si), 13);
  m4.suite = f->suite;
  m4.mtcs_id = SRV;
  m4.mtcd_id = DEV;
  m4.mtcs_nonce = snonce;
  m4.ueid = hs.ueid;
  m4.info = sinfo;
  m4.info_len = 13;
  m4.mtcd_nonce = hs.nonce;
  m4.m1_info = hs.info;
  m4.m1_info_len = hs.info_len;
  n = mtcsec_m4_build(out, outlen, f->c, f->k_auth, &m4);
  assert_true(n > 0);
  if (dmkey != NULL) {
    assert_int_equal(mtcsec_derive_dmkey(f->c, f->suite, f->k_dm, DEV, SRV,
                                         hs.nonce, snonce, hs.ueid, dmkey),
                     0);
  }
  return (size_t)n;
}

/* M0 in, M1 out; returns the M1 length. */
static size_t get_m1(fx *f, const uint8_t *ueid, uint8_t perms,
                     mtcsec_tstamp now, uint8_t *m1, size_t m1cap) {
  uint8_t msg[64];
  uint64_t peer = 0;
  mtcsec_ssize n;
  assert_int_equal(
    mtcsec_dev_read(&f->dev, msg, m0(msg, ueid, perms, NULL, 0), 77, now), 0);
  n = mtcsec_dev_write(&f->dev, m1, m1cap, &peer, now);
  assert_true(n > 0);
  assert_int_equal(peer, 77);
  return (size_t)n;
}

static void test_device_m0_gives_m1_after_persisting(void **state) {
  fx f;
  uint8_t msg[64], m1[128];
  uint64_t peer;
  mtcsec_hs hs;
  mtcsec_dinfo d;
  size_t n;
  (void)state;
  fx_init(&f, 1, 7);
  /* Nothing to send before M0. */
  assert_int_equal(mtcsec_dev_write(&f.dev, m1, sizeof(m1), &peer, 0), 0);
  assert_int_equal(mtcsec_dev_read(&f.dev, msg, m0(msg, UE, 3, NULL, 0), 5, 0),
                   0);
  /* The counter is durable before the M1 exists. */
  assert_int_equal(f.persist_calls, 1);
  assert_int_equal(f.persisted, 8);
  n = (size_t)mtcsec_dev_write(&f.dev, m1, sizeof(m1), &peer, 0);
  /* Suite 1, REQ_PERMS only: 35 + 3 + 8 = 46 bytes (section 4). */
  assert_int_equal(n, 46);
  assert_int_equal(peer, 5);
  assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, n), 0);
  assert_int_equal(mtcsec_get_u64(hs.nonce), 7);
  assert_memory_equal(hs.ueid, UE, 8);
  assert_int_equal(mtcsec_m1_verify(&hs, f.c, f.k_auth), 0);
  assert_int_equal(mtcsec_dinfo_decode(&d, hs.info, hs.info_len), 0);
  assert_int_equal(d.present, MTCSEC_DINFO_REQ_PERMS);
  assert_int_equal(d.req_perms, 3);
  assert_int_equal(mtcsec_dev_next_nonce(&f.dev), 8);
  /* Sent once: nothing more to write. */
  assert_int_equal(mtcsec_dev_write(&f.dev, m1, sizeof(m1), &peer, 0), 0);
}

static void test_device_persist_failure_spends_nothing(void **state) {
  fx f;
  uint8_t msg[64], m1[128];
  uint64_t peer;
  mtcsec_dev before;
  (void)state;
  fx_init(&f, 1, 7);
  f.persist_fail = 1;
  memcpy(&before, &f.dev, sizeof(before));
  assert_int_equal(mtcsec_dev_read(&f.dev, msg, m0(msg, UE, 3, NULL, 0), 5, 0),
                   MTCSEC_ERR_CALLBACK);
  assert_memory_equal(&before, &f.dev, sizeof(before));
  assert_int_equal(mtcsec_dev_write(&f.dev, m1, sizeof(m1), &peer, 0), 0);
  f.persist_fail = 0;
  assert_int_equal(mtcsec_dev_read(&f.dev, msg, m0(msg, UE, 3, NULL, 0), 5, 0),
                   0);
  assert_int_equal(f.persisted, 8);
}

static void test_device_one_pending_and_rate_limit(void **state) {
  fx f;
  uint8_t msg[64], m1[128], m4[128];
  const uint8_t sn[8] = {9, 9, 9, 9, 9, 9, 9, 9};
  size_t n, n4;
  (void)state;
  fx_init(&f, 1, 0);
  n = get_m1(&f, UE, 1, 0, m1, sizeof(m1));
  /* Default build: one pending exchange; a second M0 is ignored. */
  assert_int_equal(
    mtcsec_dev_read(&f.dev, msg, m0(msg, UE2, 1, NULL, 0), 6, 200),
    MTCSEC_ERR_BUSY);
  assert_int_equal(f.persist_calls, 1);
  n4 = server_m4(&f, m1, n, sn, 1, 1, 60, m4, sizeof(m4), NULL);
  assert_int_equal(mtcsec_dev_read(&f.dev, m4, n4, 77, 10), 0);
  /* Free again, but within m0_interval (100 ms) of the last M1. */
  assert_int_equal(
    mtcsec_dev_read(&f.dev, msg, m0(msg, UE2, 1, NULL, 0), 6, 99),
    MTCSEC_ERR_RATE);
  assert_int_equal(
    mtcsec_dev_read(&f.dev, msg, m0(msg, UE2, 1, NULL, 0), 6, 100), 0);
}

static void test_device_resends_same_m1_with_backoff(void **state) {
  fx f;
  uint8_t m1[128], again[128];
  uint64_t peer;
  mtcsec_dev_time t, now = 1000, base = SEC(10);
  size_t n;
  int i;
  (void)state;
  fx_init(&f, dev_has_suite(2) ? 2 : 1, 100);
  n = get_m1(&f, UE, 1, now, m1, sizeof(m1));
  for (i = 0; i < 2; i++) {
    t = mtcsec_dev_get_expiry(&f.dev);
    /* +-20% jitter around the current backoff. */
    assert_true(t >= now + base * 8 / 10);
    assert_true(t <= now + base * 12 / 10);
    assert_int_equal(mtcsec_dev_handle_expiry(&f.dev, t - 1), 0);
    assert_int_equal(
      mtcsec_dev_write(&f.dev, again, sizeof(again), &peer, t - 1), 0);
    now = t;
    assert_int_equal(mtcsec_dev_handle_expiry(&f.dev, now), 0);
    assert_int_equal(mtcsec_dev_write(&f.dev, again, sizeof(again), &peer, now),
                     (mtcsec_ssize)n);
    /* The same M1: same nonce, same bytes; no new nonce spent. */
    assert_memory_equal(again, m1, n);
    assert_int_equal(f.persist_calls, 1);
    base *= 2;
  }
  t = mtcsec_dev_get_expiry(&f.dev);
  assert_true(t >= now + base * 8 / 10 && t <= now + base * 12 / 10);
  assert_int_equal(mtcsec_dev_handle_expiry(&f.dev, t), 0);
  assert_int_equal(f.events[MTCSEC_DEV_EV_GAVE_UP], 1);
  assert_memory_equal(f.last.ueid, UE, 8);
  assert_int_equal(mtcsec_dev_get_expiry(&f.dev), MTCSEC_DEV_TIME_NEVER);
  assert_int_equal(mtcsec_dev_write(&f.dev, again, sizeof(again), &peer, t), 0);
}

static void test_device_accepts_m4_and_talks(void **state) {
  uint8_t suite;
  (void)state;
  for (suite = 1; suite <= 3; suite++) {
    fx f;
    uint8_t m1[128], m4[128], dmkey[32], rec[64], pt[64];
    const uint8_t sn[8] = {0x8a, 0x1f, 0x3c, 0x5e, 0x7b, 0x9d, 0x2e, 0x40};
    mtcsec_dev_record_info info;
    mtcsec_chan ue;
    mtcsec_ssize r;
    size_t n, n4;

    if (!dev_has_suite(suite)) {
      continue;
    }
    fx_init(&f, suite, 7);
    n = get_m1(&f, UE, 3, 0, m1, sizeof(m1));
    n4 = server_m4(&f, m1, n, sn, 0x0102, 3, 3600, m4, sizeof(m4), dmkey);
    assert_int_equal(mtcsec_dev_read(&f.dev, m4, n4, 77, 50), 0);
    assert_int_equal(f.events[MTCSEC_DEV_EV_ESTABLISHED], 1);
    assert_int_equal(f.last.key_id, 0x0102);
    assert_int_equal(f.last.perms, 3);
    assert_int_equal(f.last.lifetime, 3600);
    assert_memory_equal(f.last.ueid, UE, 8);
    /* No timer for the exchange any more; one for the key's lifetime. */
    assert_int_equal(mtcsec_dev_get_expiry(&f.dev), 50 + SEC(3600));

    /* The UE side with the DMKey of M3 talks to the device. */
    assert_int_equal(mtcsec_chan_init(&ue, f.c, suite, MTCSEC_CHAN_UE, dmkey,
                                      0x0102, MTCSEC_TSTAMP_NEVER),
                     0);
    r = mtcsec_chan_seal(&ue, rec, sizeof(rec), (const uint8_t *)"get", 3, 60);
    assert_true(r > 0);
    assert_int_equal(
      mtcsec_dev_open(&f.dev, pt, sizeof(pt), rec, (size_t)r, 60, &info), 3);
    assert_int_equal(info.key_id, 0x0102);
    assert_int_equal(info.perms, 3);
    assert_memory_equal(info.ueid, UE, 8);
    assert_int_equal(mtcsec_dev_authorize(&f.dev, 0x0102, MTCSEC_PERM_READ, 60),
                     0);
    assert_int_equal(
      mtcsec_dev_authorize(&f.dev, 0x0102, MTCSEC_PERM_ACTUATE, 60),
      MTCSEC_ERR_FORBIDDEN);
    assert_int_equal(mtcsec_dev_authorize(&f.dev, 9, MTCSEC_PERM_READ, 60),
                     MTCSEC_ERR_NOT_FOUND);
    r = mtcsec_dev_seal(&f.dev, 0x0102, rec, sizeof(rec),
                        (const uint8_t *)"21.5", 4, 61);
    assert_true(r > 0);
    assert_int_equal(mtcsec_chan_open(&ue, pt, sizeof(pt), rec, (size_t)r, 61),
                     4);
    assert_memory_equal(pt, "21.5", 4);
    mtcsec_chan_deinit(&ue);
    mtcsec_dev_deinit(&f.dev);
  }
}

static void test_device_m4_bit_flips_change_nothing(void **state) {
  fx f;
  uint8_t m1[128], m4[128];
  const uint8_t sn[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  mtcsec_dev before;
  mtcsec_dev_session sess_before[2];
  size_t n, n4, i;
  (void)state;
  fx_init(&f, 1, 7);
  n = get_m1(&f, UE, 3, 0, m1, sizeof(m1));
  n4 = server_m4(&f, m1, n, sn, 1, 3, 60, m4, sizeof(m4), NULL);
  memcpy(&before, &f.dev, sizeof(before));
  memcpy(sess_before, f.sess, sizeof(sess_before));
  for (i = 0; i < n4 * 8; i++) {
    m4[i / 8] ^= (uint8_t)(1u << (i % 8));
    assert_true(mtcsec_dev_read(&f.dev, m4, n4, 77, 10) < 0);
    assert_memory_equal(&before, &f.dev, sizeof(before));
    assert_memory_equal(sess_before, f.sess, sizeof(sess_before));
    m4[i / 8] ^= (uint8_t)(1u << (i % 8));
  }
  for (i = 0; i < n4; i++) {
    assert_true(mtcsec_dev_read(&f.dev, m4, i, 77, 10) < 0);
  }
  assert_memory_equal(&before, &f.dev, sizeof(before));
  assert_int_equal(f.events[MTCSEC_DEV_EV_ESTABLISHED], 0);
  /* The genuine M4 still works afterwards. */
  assert_int_equal(mtcsec_dev_read(&f.dev, m4, n4, 77, 10), 0);
  /* Its duplicate is ignored and changes nothing. */
  memcpy(&before, &f.dev, sizeof(before));
  memcpy(sess_before, f.sess, sizeof(sess_before));
  assert_int_equal(mtcsec_dev_read(&f.dev, m4, n4, 77, 11),
                   MTCSEC_ERR_UNEXPECTED);
  assert_memory_equal(&before, &f.dev, sizeof(before));
  assert_memory_equal(sess_before, f.sess, sizeof(sess_before));
  assert_int_equal(f.events[MTCSEC_DEV_EV_ESTABLISHED], 1);
}

static void test_device_rejects_m4_of_earlier_session(void **state) {
  fx f;
  uint8_t m1[128], m4a[128], m4b[128];
  const uint8_t sn[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  size_t n, na, nb;
  (void)state;
  fx_init(&f, 1, 7);
  n = get_m1(&f, UE, 3, 0, m1, sizeof(m1));
  na = server_m4(&f, m1, n, sn, 1, 3, 60, m4a, sizeof(m4a), NULL);
  assert_int_equal(mtcsec_dev_read(&f.dev, m4a, na, 77, 10), 0);
  /* A second exchange with the same UE: the old M4 has the right IDs and
   * UEID but its MIC covers the old MTCdNonce. */
  n = get_m1(&f, UE, 3, 500, m1, sizeof(m1));
  assert_int_equal(mtcsec_dev_read(&f.dev, m4a, na, 77, 510), MTCSEC_ERR_MIC);
  nb = server_m4(&f, m1, n, sn, 2, 3, 60, m4b, sizeof(m4b), NULL);
  /* An M4 for another UE is not awaited. */
  {
    uint8_t other[128];
    memcpy(other, m4b, nb);
    other[33] ^= 1; /* last UEID byte */
    assert_int_equal(mtcsec_dev_read(&f.dev, other, nb, 77, 510),
                     MTCSEC_ERR_UNEXPECTED);
  }
  assert_int_equal(mtcsec_dev_read(&f.dev, m4b, nb, 77, 510), 0);
  assert_int_equal(f.events[MTCSEC_DEV_EV_ESTABLISHED], 2);
}

static void test_device_revocation(void **state) {
  fx f;
  uint8_t m1[128], m4[128], rv[64], bad[64];
  const uint8_t sn[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint8_t nonce[8];
  mtcsec_ssize r;
  size_t n, n4;
  (void)state;
  fx_init(&f, 1, 7);
  n = get_m1(&f, UE, 3, 0, m1, sizeof(m1));
  n4 = server_m4(&f, m1, n, sn, 5, 3, 60, m4, sizeof(m4), NULL);
  assert_int_equal(mtcsec_dev_read(&f.dev, m4, n4, 77, 10), 0);
  mtcsec_put_u64(nonce, 7);

  /* Wrong nonce: another session, ignored. */
  mtcsec_put_u64(bad, 8);
  r = mtcsec_revoke_build(rv, sizeof(rv), f.c, 1, f.k_auth, SRV, DEV, 5, bad);
  assert_int_equal(mtcsec_dev_read(&f.dev, rv, (size_t)r, 1, 20),
                   MTCSEC_ERR_NOT_FOUND);
  /* Wrong key: MIC. */
  r = mtcsec_revoke_build(rv, sizeof(rv), f.c, 1, f.k_dm, SRV, DEV, 5, nonce);
  assert_int_equal(mtcsec_dev_read(&f.dev, rv, (size_t)r, 1, 20),
                   MTCSEC_ERR_MIC);
  /* Another device's. */
  r = mtcsec_revoke_build(rv, sizeof(rv), f.c, 1, f.k_auth, SRV, UE, 5, nonce);
  assert_int_equal(mtcsec_dev_read(&f.dev, rv, (size_t)r, 1, 20),
                   MTCSEC_ERR_MISMATCH);
  assert_int_equal(mtcsec_dev_authorize(&f.dev, 5, 1, 20), 0);
  /* The real one erases the DMKey. */
  r = mtcsec_revoke_build(rv, sizeof(rv), f.c, 1, f.k_auth, SRV, DEV, 5, nonce);
  assert_int_equal(mtcsec_dev_read(&f.dev, rv, (size_t)r, 1, 20), 0);
  assert_int_equal(f.events[MTCSEC_DEV_EV_REVOKED], 1);
  assert_int_equal(f.last.key_id, 5);
  assert_int_equal(mtcsec_dev_authorize(&f.dev, 5, 1, 20),
                   MTCSEC_ERR_NOT_FOUND);
  /* Carried twice: the second finds nothing. */
  assert_int_equal(mtcsec_dev_read(&f.dev, rv, (size_t)r, 1, 21),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(f.events[MTCSEC_DEV_EV_REVOKED], 1);
}

static void test_device_lifetime_expiry(void **state) {
  fx f;
  uint8_t m1[128], m4[128], dmkey[32], rec[64], pt[16];
  const uint8_t sn[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  mtcsec_chan ue;
  mtcsec_ssize r;
  size_t n, n4;
  (void)state;
  fx_init(&f, 1, 7);
  n = get_m1(&f, UE, 3, 0, m1, sizeof(m1));
  n4 = server_m4(&f, m1, n, sn, 5, 3, 2, m4, sizeof(m4), dmkey);
  assert_int_equal(mtcsec_dev_read(&f.dev, m4, n4, 77, 1000), 0);
  assert_int_equal(mtcsec_chan_init(&ue, f.c, 1, MTCSEC_CHAN_UE, dmkey, 5,
                                    MTCSEC_TSTAMP_NEVER),
                   0);
  r = mtcsec_chan_seal(&ue, rec, sizeof(rec), pt, 1, 0);
  /* Lifetime 2 s from acceptance at t = 1000. */
  assert_int_equal(mtcsec_dev_get_expiry(&f.dev), 1000 + SEC(2));
  assert_int_equal(mtcsec_dev_open(&f.dev, pt, sizeof(pt), rec, (size_t)r,
                                   1000 + SEC(2), NULL),
                   MTCSEC_ERR_EXPIRED);
  assert_int_equal(f.events[MTCSEC_DEV_EV_EXPIRED], 1);
  assert_int_equal(mtcsec_dev_open(&f.dev, pt, sizeof(pt), rec, (size_t)r,
                                   1000 + SEC(1), NULL),
                   MTCSEC_ERR_NOT_FOUND);
  /* And through the timer, for a second key. */
  n = get_m1(&f, UE, 3, 5000, m1, sizeof(m1));
  n4 = server_m4(&f, m1, n, sn, 6, 3, 1, m4, sizeof(m4), NULL);
  assert_int_equal(mtcsec_dev_read(&f.dev, m4, n4, 77, 5000), 0);
  assert_int_equal(mtcsec_dev_handle_expiry(&f.dev, 5000 + SEC(1) - 1), 0);
  assert_int_equal(f.events[MTCSEC_DEV_EV_EXPIRED], 1);
  assert_int_equal(mtcsec_dev_handle_expiry(&f.dev, 5000 + SEC(1)), 0);
  assert_int_equal(f.events[MTCSEC_DEV_EV_EXPIRED], 2);
  assert_int_equal(mtcsec_dev_get_expiry(&f.dev), MTCSEC_DEV_TIME_NEVER);
  mtcsec_chan_deinit(&ue);
}

static void test_device_relayed_m0_puts_path(void **state) {
  fx f;
  uint8_t msg[64], m1[128];
  uint64_t peer;
  mtcsec_hs hs;
  mtcsec_dinfo d;
  mtcsec_ssize n;
  const uint8_t hops[16] = {0x67, 0, 0, 0, 0, 0, 0, 2,
                            0x67, 0, 0, 0, 0, 0, 0, 1};
  (void)state;
  fx_init(&f, 1, 0);
  mtcsec_dev_set_status(&f.dev, 1, 80, 0, 0, 0);
  assert_int_equal(mtcsec_dev_read(&f.dev, msg, m0(msg, UE, 1, hops, 2), 9, 0),
                   0);
  n = mtcsec_dev_write(&f.dev, m1, sizeof(m1), &peer, 0);
  assert_true(n > 0);
  assert_int_equal(peer, 9);
  assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, (size_t)n), 0);
  assert_int_equal(mtcsec_dinfo_decode(&d, hs.info, hs.info_len), 0);
  assert_int_equal(d.present, MTCSEC_DINFO_PATH | MTCSEC_DINFO_BATTERY |
                                MTCSEC_DINFO_REQ_PERMS);
  assert_int_equal(d.npath, 2);
  assert_memory_equal(d.path, hops, 16);
  assert_int_equal(d.battery, 80);
  (void)GW;
}

static void test_device_too_many_hops_or_garbage(void **state) {
  fx f;
  uint8_t msg[400];
  mtcsec_dev before;
  size_t len;
  (void)state;
  fx_init(&f, 1, 0);
  memcpy(&before, &f.dev, sizeof(before));
  /* 31 hops fit in a PATH, but not in this build's MTCdInfo room. */
  memset(msg, 0x67, sizeof(msg));
  len = m0(msg, UE, 1, NULL, 0);
  msg[10] = 31;
  len += 31 * 8;
  assert_int_equal(mtcsec_dev_read(&f.dev, msg, len, 1, 0),
                   MTCSEC_ERR_UNSUPPORTED);
  /* Types a device does not take, and garbage. */
  msg[0] = 0x11;
  assert_int_equal(mtcsec_dev_read(&f.dev, msg, 46, 1, 0),
                   MTCSEC_ERR_UNSUPPORTED);
  msg[0] = 0x99;
  assert_int_equal(mtcsec_dev_read(&f.dev, msg, 46, 1, 0),
                   MTCSEC_ERR_UNSUPPORTED);
  assert_int_equal(mtcsec_dev_read(&f.dev, msg, 0, 1, 0), MTCSEC_ERR_MALFORMED);
  assert_memory_equal(&before, &f.dev, sizeof(before));
  assert_int_equal(f.persist_calls, 0);
}

static void test_device_nonce_exhaustion(void **state) {
  fx f;
  uint8_t msg[64];
  (void)state;
  fx_init(&f, 1, UINT64_MAX - 1);
  assert_int_equal(mtcsec_dev_read(&f.dev, msg, m0(msg, UE, 1, NULL, 0), 1, 0),
                   0);
  assert_int_equal(f.persisted, UINT64_MAX);
  mtcsec_dev_deinit(&f.dev);
  fx_init(&f, 1, UINT64_MAX);
  assert_int_equal(mtcsec_dev_read(&f.dev, msg, m0(msg, UE, 1, NULL, 0), 1, 0),
                   MTCSEC_ERR_EXHAUSTED);
}

static void test_device_deinit_zeroizes(void **state) {
  fx f;
  uint8_t zero[sizeof(mtcsec_dev) + 2 * sizeof(mtcsec_dev_session)];
  (void)state;
  fx_init(&f, dev_has_suite(3) ? 3 : 1, 0);
  memset(f.sess, 0x5a, sizeof(f.sess)); /* pretend key material */
  mtcsec_dev_deinit(&f.dev);
  memset(zero, 0, sizeof(zero));
  assert_memory_equal(&f.dev, zero, sizeof(zero));
  assert_memory_equal(f.sess, zero, sizeof(f.sess));
}

static void test_device_init_arguments(void **state) {
  mtcsec_dev d;
  mtcsec_dev_session sess[1];
  mtcsec_dev_config cfg;
  mtcsec_dev_callbacks cb = {persist_cb, NULL};
  uint8_t suite;
  (void)state;
  mtcsec_dev_config_default(&cfg);
  cfg.pskey = PSK;
  cfg.sessions = sess;
  cfg.nsessions = 1;
  /* Suites that are not section 2's, or not this build's, are refused
   * whatever MTCSEC_CFG_CHECK_PARAMS says. */
  for (suite = 0; suite <= 4; suite++) {
    cfg.suite = suite;
    assert_int_equal(mtcsec_dev_init(&d, &cfg, th_openssl(), &cb, NULL),
                     dev_has_suite(suite) ? 0 : MTCSEC_ERR_INVALID_ARGUMENT);
  }
  cfg.suite = 1;
#if MTCSEC_CFG_CHECK_PARAMS
  cb.persist_nonce = NULL;
  assert_int_equal(mtcsec_dev_init(&d, &cfg, th_openssl(), &cb, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  cb.persist_nonce = persist_cb;
  cfg.pskey = NULL;
  assert_int_equal(mtcsec_dev_init(&d, &cfg, th_openssl(), &cb, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  /* No session storage, or too much of it. */
  cfg.pskey = PSK;
  cfg.nsessions = 0;
  assert_int_equal(mtcsec_dev_init(&d, &cfg, th_openssl(), &cb, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  cfg.nsessions = 256;
  assert_int_equal(mtcsec_dev_init(&d, &cfg, th_openssl(), &cb, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  cfg.sessions = NULL;
  cfg.nsessions = 1;
  assert_int_equal(mtcsec_dev_init(&d, &cfg, th_openssl(), &cb, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  cfg.sessions = sess;
#endif
  assert_int_equal(mtcsec_dev_init(&d, &cfg, th_openssl(), &cb, NULL), 0);
  mtcsec_dev_deinit(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_device_m0_gives_m1_after_persisting),
    cmocka_unit_test(test_device_persist_failure_spends_nothing),
    cmocka_unit_test(test_device_one_pending_and_rate_limit),
    cmocka_unit_test(test_device_resends_same_m1_with_backoff),
    cmocka_unit_test(test_device_accepts_m4_and_talks),
    cmocka_unit_test(test_device_m4_bit_flips_change_nothing),
    cmocka_unit_test(test_device_rejects_m4_of_earlier_session),
    cmocka_unit_test(test_device_revocation),
    cmocka_unit_test(test_device_lifetime_expiry),
    cmocka_unit_test(test_device_relayed_m0_puts_path),
    cmocka_unit_test(test_device_too_many_hops_or_garbage),
    cmocka_unit_test(test_device_nonce_exhaustion),
    cmocka_unit_test(test_device_deinit_zeroizes),
    cmocka_unit_test(test_device_init_arguments),
  };
  int rv = cmocka_run_group_tests(tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
