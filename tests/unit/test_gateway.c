/*
 * GW role (src/roles/gateway.c): the relay of extended mode.  Messages are
 * built with the codec and channel as the device, UE and MTCs would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/codec.h>
#include <mtcsec/channel.h>
#include <mtcsec/crypto.h>
#include <mtcsec/gateway.h>

#include "crypto_fixture.h"

static const uint8_t UEID[8] = {0x02, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t MTCD_ID[8] = {0x0d, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t MTCS_ID[8] = {0x05, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t GW1[8] = {0x09, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t GW2[8] = {0x09, 0, 0, 0, 0, 0, 0, 0x02};

/* One of each message type, as built by the endpoints. */
typedef struct msgs {
  uint8_t m0[11 + 16];
  size_t m0len;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t m1len;
  uint8_t m4[MTCSEC_HS_MAX_LEN];
  size_t m4len;
  uint8_t rec[64];
  size_t reclen;
  uint8_t rec_empty[32]; /* a record with no plaintext: 7 + t bytes */
  size_t rec_emptylen;
  uint8_t revoke[27 + MTCSEC_MAX_MIC_LEN];
  size_t revokelen;
} msgs;

static void build_msgs(msgs *m, uint8_t suite) {
  const mtcsec_crypto *crypto = th_openssl();
  uint8_t pskey[MTCSEC_MAX_KEY_LEN], k_auth[MTCSEC_MAX_KEY_LEN];
  uint8_t k_dm[MTCSEC_MAX_KEY_LEN], dmkey[MTCSEC_MAX_KEY_LEN];
  uint8_t dnonce[8] = {0, 0, 0, 0, 0, 0, 0, 7};
  uint8_t snonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint8_t dinfo[32], sinfo[16];
  mtcsec_dinfo di;
  mtcsec_sinfo si;
  mtcsec_m1_fields m1f;
  mtcsec_m4_fields m4f;
  mtcsec_chan ch;
  mtcsec_ssize n, dlen, slen;
  uint8_t hops[16];

  memset(m, 0, sizeof(*m));
  memset(pskey, 0x5a, sizeof(pskey));
  assert_int_equal(mtcsec_derive_device_keys(crypto, suite, pskey, MTCD_ID,
                                             MTCS_ID, k_auth, k_dm),
                   0);

  memcpy(hops, GW2, 8);
  memcpy(hops + 8, GW1, 8);
  n = mtcsec_m0_encode(m->m0, sizeof(m->m0), UEID, MTCSEC_PERM_READ, hops, 2);
  assert_int_equal(n, 27);
  m->m0len = (size_t)n;

  memset(&di, 0, sizeof(di));
  di.present = MTCSEC_DINFO_PATH | MTCSEC_DINFO_BATTERY;
  di.battery = 50;
  di.npath = 2;
  di.path = hops;
  dlen = mtcsec_dinfo_encode(dinfo, sizeof(dinfo), &di);
  assert_true(dlen > 0);
  memset(&m1f, 0, sizeof(m1f));
  m1f.suite = suite;
  m1f.mtcd_id = MTCD_ID;
  m1f.mtcs_id = MTCS_ID;
  m1f.nonce = dnonce;
  m1f.ueid = UEID;
  m1f.info = dinfo;
  m1f.info_len = (size_t)dlen;
  n = mtcsec_m1_build(m->m1, sizeof(m->m1), crypto, k_auth, &m1f);
  assert_true(n > 0);
  m->m1len = (size_t)n;

  memset(&si, 0, sizeof(si));
  si.present = MTCSEC_SINFO_LIFETIME | MTCSEC_SINFO_PERMS | MTCSEC_SINFO_KEY_ID;
  si.lifetime = 600;
  si.perms = MTCSEC_PERM_READ;
  si.key_id = 0x0101;
  slen = mtcsec_sinfo_encode(sinfo, sizeof(sinfo), &si);
  assert_int_equal(slen, 13);
  memset(&m4f, 0, sizeof(m4f));
  m4f.suite = suite;
  m4f.mtcs_id = MTCS_ID;
  m4f.mtcd_id = MTCD_ID;
  m4f.mtcs_nonce = snonce;
  m4f.ueid = UEID;
  m4f.info = sinfo;
  m4f.info_len = (size_t)slen;
  m4f.mtcd_nonce = dnonce;
  m4f.m1_info = dinfo;
  m4f.m1_info_len = (size_t)dlen;
  n = mtcsec_m4_build(m->m4, sizeof(m->m4), crypto, k_auth, &m4f);
  assert_true(n > 0);
  m->m4len = (size_t)n;

  assert_int_equal(mtcsec_derive_dmkey(crypto, suite, k_dm, MTCD_ID, MTCS_ID,
                                       dnonce, snonce, UEID, dmkey),
                   0);
  assert_int_equal(mtcsec_chan_init(&ch, crypto, suite, MTCSEC_CHAN_DEVICE,
                                    dmkey, 0x0101, 1000000),
                   0);
  n = mtcsec_chan_seal(&ch, m->rec, sizeof(m->rec), (const uint8_t *)"hello", 5,
                       0);
  assert_true(n > 0);
  m->reclen = (size_t)n;
  n = mtcsec_chan_seal(&ch, m->rec_empty, sizeof(m->rec_empty),
                       (const uint8_t *)"", 0, 0);
  assert_true(n > 0);
  m->rec_emptylen = (size_t)n;
  mtcsec_chan_deinit(&ch);

  n = mtcsec_revoke_build(m->revoke, sizeof(m->revoke), crypto, suite, k_auth,
                          MTCS_ID, MTCD_ID, 0x0101, dnonce);
  assert_true(n > 0);
  m->revokelen = (size_t)n;
}

/* Relays a copy of in[0..inlen) held in a heap block of exactly inlen
 * bytes, so that ASan sees any read past the datagram. */
static mtcsec_ssize relay_exact(mtcsec_gw *gw, mtcsec_gw_dir dir, uint8_t *dest,
                                size_t destlen, const uint8_t *in,
                                size_t inlen) {
  uint8_t *copy = malloc(inlen > 0 ? inlen : 1);
  mtcsec_ssize n;
  assert_non_null(copy);
  if (inlen > 0) {
    memcpy(copy, in, inlen);
  }
  n = mtcsec_gw_relay(gw, dir, dest, destlen, inlen > 0 ? copy : NULL, inlen);
  free(copy);
  return n;
}

/* -------------------------------------------------------------- tests */

static void test_gateway_init(void **state) {
  mtcsec_gw gw;
  size_t i;
  (void)state;
  assert_int_equal(mtcsec_gw_init(NULL, GW1), MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_gw_init(&gw, NULL), MTCSEC_ERR_INVALID_ARGUMENT);
  memset(&gw, 0xff, sizeof(gw));
  assert_int_equal(mtcsec_gw_init(&gw, GW1), 0);
  assert_memory_equal(gw.gwid, GW1, 8);
  for (i = 0; i < 8; i++) {
    assert_int_equal(gw.forwarded[i], 0);
  }
  assert_int_equal(gw.dropped, 0);
}

static void test_gateway_appends_hops_in_order(void **state) {
  mtcsec_gw gw1, gw2;
  uint8_t a[64], b[64], c[64];
  mtcsec_ssize n;
  mtcsec_m0 m0;
  (void)state;
  assert_int_equal(mtcsec_gw_init(&gw1, GW1), 0);
  assert_int_equal(mtcsec_gw_init(&gw2, GW2), 0);
  /* UE -> GW2 -> GW1 -> device. */
  n = mtcsec_m0_encode(a, sizeof(a), UEID, MTCSEC_PERM_READ, NULL, 0);
  assert_int_equal(n, 11);
  n = mtcsec_gw_relay(&gw2, MTCSEC_GW_TO_DEVICE, b, sizeof(b), a, (size_t)n);
  assert_int_equal(n, 19);
  n = mtcsec_gw_relay(&gw1, MTCSEC_GW_TO_DEVICE, c, sizeof(c), b, (size_t)n);
  assert_int_equal(n, 27);
  assert_int_equal(mtcsec_m0_decode(&m0, c, (size_t)n), 0);
  assert_memory_equal(m0.ueid, UEID, 8);
  assert_int_equal(m0.req_perms, MTCSEC_PERM_READ);
  assert_int_equal(m0.nhops, 2);
  assert_memory_equal(m0.hops, GW2, 8);
  assert_memory_equal(m0.hops + 8, GW1, 8);
  assert_int_equal(gw1.forwarded[0], 1);
  assert_int_equal(gw2.forwarded[0], 1);
  assert_int_equal(gw1.dropped + gw2.dropped, 0);

  /* In place works too (the relay may reuse its receive buffer). */
  n = mtcsec_m0_encode(a, sizeof(a), UEID, 0, NULL, 0);
  n = mtcsec_gw_relay(&gw2, MTCSEC_GW_TO_DEVICE, a, sizeof(a), a, (size_t)n);
  assert_int_equal(n, 19);
  assert_memory_equal(a + 11, GW2, 8);
  assert_int_equal(a[10], 1);
}

static void forwards_unchanged(uint8_t suite) {
  msgs m;
  mtcsec_gw gw;
  uint8_t out[MTCSEC_HS_MAX_LEN];
  build_msgs(&m, suite);
  assert_int_equal(mtcsec_gw_init(&gw, GW1), 0);

  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, out, sizeof(out), m.m1, m.m1len),
    (mtcsec_ssize)m.m1len);
  assert_memory_equal(out, m.m1, m.m1len);
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_DEVICE, out, sizeof(out), m.m4, m.m4len),
    (mtcsec_ssize)m.m4len);
  assert_memory_equal(out, m.m4, m.m4len);
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, out, sizeof(out), m.rec, m.reclen),
    (mtcsec_ssize)m.reclen);
  assert_memory_equal(out, m.rec, m.reclen);
  assert_int_equal(mtcsec_gw_relay(&gw, MTCSEC_GW_TO_DEVICE, out, sizeof(out),
                                   m.rec, m.reclen),
                   (mtcsec_ssize)m.reclen);
  assert_memory_equal(out, m.rec, m.reclen);
  assert_int_equal(mtcsec_gw_relay(&gw, MTCSEC_GW_TO_DEVICE, out, sizeof(out),
                                   m.revoke, m.revokelen),
                   (mtcsec_ssize)m.revokelen);
  assert_memory_equal(out, m.revoke, m.revokelen);

  assert_int_equal(gw.forwarded[MTCSEC_MSG_M1 & 0x0f], 1);
  assert_int_equal(gw.forwarded[MTCSEC_MSG_M4 & 0x0f], 1);
  assert_int_equal(gw.forwarded[MTCSEC_MSG_RECORD & 0x0f], 2);
  assert_int_equal(gw.forwarded[MTCSEC_MSG_REVOKE & 0x0f], 1);
  assert_int_equal(gw.dropped, 0);
}

static void test_gateway_forwards_unchanged_suite1(void **state) {
  (void)state;
  forwards_unchanged(MTCSEC_SUITE_CMAC_AES128);
}

static void test_gateway_forwards_unchanged_suite2(void **state) {
  (void)state;
  forwards_unchanged(MTCSEC_SUITE_HMAC_SHA256_AES128);
}

static void test_gateway_forwards_unchanged_suite3(void **state) {
  (void)state;
  forwards_unchanged(MTCSEC_SUITE_HMAC_SHA256_AES256);
}

static void test_gateway_drops_wrong_direction(void **state) {
  msgs m;
  mtcsec_gw gw;
  uint8_t out[MTCSEC_HS_MAX_LEN + 16];
  uint8_t frame_types[] = {MTCSEC_MSG_M2, MTCSEC_MSG_M3, MTCSEC_MSG_ERR};
  uint8_t junk[40];
  size_t i;
  uint64_t dropped = 0;
  (void)state;
  build_msgs(&m, MTCSEC_SUITE_CMAC_AES128);
  assert_int_equal(mtcsec_gw_init(&gw, GW1), 0);

  /* Toward the device: M1 never goes that way. */
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_DEVICE, out, sizeof(out), m.m1, m.m1len),
    MTCSEC_ERR_UNEXPECTED);
  dropped++;
  /* Toward the UE: M0, M4 and revocations never go that way. */
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, out, sizeof(out), m.m0, m.m0len),
    MTCSEC_ERR_UNEXPECTED);
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, out, sizeof(out), m.m4, m.m4len),
    MTCSEC_ERR_UNEXPECTED);
  assert_int_equal(mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, out, sizeof(out),
                                   m.revoke, m.revokelen),
                   MTCSEC_ERR_UNEXPECTED);
  dropped += 3;
  /* Server-link frame types, other versions and unknown types: neither. */
  memset(junk, 0, sizeof(junk));
  for (i = 0; i < sizeof(frame_types); i++) {
    junk[0] = frame_types[i];
    assert_int_equal(mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, out, sizeof(out),
                                     junk, sizeof(junk)),
                     MTCSEC_ERR_UNEXPECTED);
    assert_int_equal(mtcsec_gw_relay(&gw, MTCSEC_GW_TO_DEVICE, out, sizeof(out),
                                     junk, sizeof(junk)),
                     MTCSEC_ERR_UNEXPECTED);
    dropped += 2;
  }
  junk[0] = 0x26; /* version 2 record */
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, out, sizeof(out), junk, sizeof(junk)),
    MTCSEC_ERR_UNEXPECTED);
  junk[0] = 0x18;
  assert_int_equal(mtcsec_gw_relay(&gw, MTCSEC_GW_TO_DEVICE, out, sizeof(out),
                                   junk, sizeof(junk)),
                   MTCSEC_ERR_UNEXPECTED);
  dropped += 2;
  /* Bad direction value. */
  assert_int_equal(
    mtcsec_gw_relay(&gw, (mtcsec_gw_dir)7, out, sizeof(out), m.rec, m.reclen),
    MTCSEC_ERR_INVALID_ARGUMENT);
  dropped++;

  assert_int_equal(gw.dropped, dropped);
  for (i = 0; i < 8; i++) {
    assert_int_equal(gw.forwarded[i], 0);
  }
  assert_int_equal(
    mtcsec_gw_relay(NULL, MTCSEC_GW_TO_UE, out, sizeof(out), m.m1, m.m1len),
    MTCSEC_ERR_INVALID_ARGUMENT);
}

/* Every strict prefix of msg must be dropped in direction dir. */
static void all_truncations_dropped(mtcsec_gw *gw, mtcsec_gw_dir dir,
                                    const uint8_t *msg, size_t len) {
  uint8_t out[MTCSEC_HS_MAX_LEN + 16];
  size_t i;
  uint64_t before = gw->dropped;
  for (i = 0; i < len; i++) {
    assert_true(relay_exact(gw, dir, out, sizeof(out), msg, i) < 0);
  }
  assert_int_equal(gw->dropped, before + len);
  /* The whole message still goes through. */
  assert_int_equal(relay_exact(gw, dir, out, sizeof(out), msg, len) > 0, 1);
}

static void truncations(uint8_t suite) {
  msgs m;
  mtcsec_gw gw;
  build_msgs(&m, suite);
  assert_int_equal(mtcsec_gw_init(&gw, GW1), 0);
  all_truncations_dropped(&gw, MTCSEC_GW_TO_DEVICE, m.m0, m.m0len);
  all_truncations_dropped(&gw, MTCSEC_GW_TO_UE, m.m1, m.m1len);
  all_truncations_dropped(&gw, MTCSEC_GW_TO_DEVICE, m.m4, m.m4len);
  /* A relay holds no key and cannot know t: a record or a revocation is
   * checked against the shortest form any suite allows (t = 8).  For
   * suite 1 that is every truncation of an empty record and of a
   * revocation; for the others, every prefix shorter than that. */
  if (suite == MTCSEC_SUITE_CMAC_AES128) {
    all_truncations_dropped(&gw, MTCSEC_GW_TO_UE, m.rec_empty, m.rec_emptylen);
    all_truncations_dropped(&gw, MTCSEC_GW_TO_DEVICE, m.rec_empty,
                            m.rec_emptylen);
    all_truncations_dropped(&gw, MTCSEC_GW_TO_DEVICE, m.revoke, m.revokelen);
  } else {
    all_truncations_dropped(&gw, MTCSEC_GW_TO_UE, m.rec_empty, 7 + 8);
    all_truncations_dropped(&gw, MTCSEC_GW_TO_DEVICE, m.revoke, 27 + 8);
  }
}

static void test_gateway_truncations_dropped_suite1(void **state) {
  (void)state;
  truncations(MTCSEC_SUITE_CMAC_AES128);
}

static void test_gateway_truncations_dropped_suite2(void **state) {
  (void)state;
  truncations(MTCSEC_SUITE_HMAC_SHA256_AES128);
}

static void test_gateway_truncations_dropped_suite3(void **state) {
  (void)state;
  truncations(MTCSEC_SUITE_HMAC_SHA256_AES256);
}

static void test_gateway_malformed_handshakes_dropped(void **state) {
  msgs m;
  mtcsec_gw gw;
  uint8_t out[MTCSEC_HS_MAX_LEN + 16], buf[MTCSEC_HS_MAX_LEN + 16];
  (void)state;
  build_msgs(&m, MTCSEC_SUITE_CMAC_AES128);
  assert_int_equal(mtcsec_gw_init(&gw, GW1), 0);

  /* One byte too many. */
  memcpy(buf, m.m1, m.m1len);
  buf[m.m1len] = 0;
  assert_int_equal(
    relay_exact(&gw, MTCSEC_GW_TO_UE, out, sizeof(out), buf, m.m1len + 1),
    MTCSEC_ERR_MALFORMED);
  memcpy(buf, m.m0, m.m0len);
  buf[m.m0len] = 0;
  assert_int_equal(
    relay_exact(&gw, MTCSEC_GW_TO_DEVICE, out, sizeof(out), buf, m.m0len + 1),
    MTCSEC_ERR_MALFORMED);
  /* info_len pointing past the end. */
  memcpy(buf, m.m4, m.m4len);
  buf[34] = 0xff;
  assert_int_equal(
    relay_exact(&gw, MTCSEC_GW_TO_DEVICE, out, sizeof(out), buf, m.m4len),
    MTCSEC_ERR_MALFORMED);
  /* M0 hop count that does not match its length. */
  memcpy(buf, m.m0, m.m0len);
  buf[10] = 200;
  assert_int_equal(
    relay_exact(&gw, MTCSEC_GW_TO_DEVICE, out, sizeof(out), buf, m.m0len),
    MTCSEC_ERR_MALFORMED);
  /* Empty datagram. */
  assert_int_equal(relay_exact(&gw, MTCSEC_GW_TO_UE, out, sizeof(out), buf, 0),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(gw.dropped, 5);
}

static void test_gateway_nobuf(void **state) {
  msgs m;
  mtcsec_gw gw;
  uint8_t out[MTCSEC_HS_MAX_LEN + 16];
  (void)state;
  build_msgs(&m, MTCSEC_SUITE_CMAC_AES128);
  assert_int_equal(mtcsec_gw_init(&gw, GW1), 0);
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, out, m.m1len - 1, m.m1, m.m1len),
    MTCSEC_ERR_NOBUF);
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_DEVICE, out, m.m0len + 7, m.m0, m.m0len),
    MTCSEC_ERR_NOBUF);
  assert_int_equal(mtcsec_gw_relay(&gw, MTCSEC_GW_TO_DEVICE, out,
                                   m.revokelen - 1, m.revoke, m.revokelen),
                   MTCSEC_ERR_NOBUF);
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, NULL, 0, m.rec, m.reclen),
    MTCSEC_ERR_NOBUF);
  assert_int_equal(gw.dropped, 4);
  /* Exactly enough room. */
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_DEVICE, out, m.m0len + 8, m.m0, m.m0len),
    (mtcsec_ssize)(m.m0len + 8));
  assert_int_equal(gw.forwarded[0], 1);
}

static void test_gateway_forwards_unknown_suite(void **state) {
  msgs m;
  mtcsec_gw gw;
  uint8_t out[MTCSEC_HS_MAX_LEN + 16];
  (void)state;
  build_msgs(&m, MTCSEC_SUITE_CMAC_AES128);
  assert_int_equal(mtcsec_gw_init(&gw, GW1), 0);
  /* A suite this relay does not know passes the structural check (t = 0,
   * section 5): the UE or the MTCs answers UNSUPPORTED_SUITE. */
  m.m1[1] = 0x42;
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, out, sizeof(out), m.m1, m.m1len),
    (mtcsec_ssize)m.m1len);
  /* Its fixed part and info are still checked. */
  assert_int_equal(
    mtcsec_gw_relay(&gw, MTCSEC_GW_TO_UE, out, sizeof(out), m.m1, 34),
    MTCSEC_ERR_MALFORMED);
}

static uint64_t xs_next(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* Random mutations of every message in both directions: a forwarded
 * datagram is always the input (or the input plus one hop), never more. */
static void test_gateway_random_input(void **state) {
  msgs m;
  mtcsec_gw gw;
  uint8_t out[MTCSEC_HS_MAX_LEN + 16];
  const uint8_t *src[5];
  size_t srclen[5], len, i;
  uint64_t x = 0x2545f4914f6cdd1dull;
  mtcsec_ssize n;
  int k;
  (void)state;
  build_msgs(&m, MTCSEC_SUITE_HMAC_SHA256_AES128);
  assert_int_equal(mtcsec_gw_init(&gw, GW1), 0);
  src[0] = m.m0;
  srclen[0] = m.m0len;
  src[1] = m.m1;
  srclen[1] = m.m1len;
  src[2] = m.m4;
  srclen[2] = m.m4len;
  src[3] = m.rec;
  srclen[3] = m.reclen;
  src[4] = m.revoke;
  srclen[4] = m.revokelen;
  for (k = 0; k < 20000; k++) {
    size_t s = (size_t)(xs_next(&x) % 5);
    uint8_t *buf;
    mtcsec_gw_dir dir = (k & 1) ? MTCSEC_GW_TO_UE : MTCSEC_GW_TO_DEVICE;
    len = (size_t)(xs_next(&x) % (srclen[s] + 8));
    buf = malloc(len > 0 ? len : 1);
    assert_non_null(buf);
    for (i = 0; i < len; i++) {
      buf[i] = i < srclen[s] ? src[s][i] : (uint8_t)xs_next(&x);
    }
    if (len > 0 && (k & 2)) {
      buf[xs_next(&x) % len] ^= (uint8_t)(1 + xs_next(&x) % 255);
    }
    n = mtcsec_gw_relay(&gw, dir, out, sizeof(out), len > 0 ? buf : NULL, len);
    if (n >= 0) {
      if (buf[0] == MTCSEC_MSG_M0) {
        assert_int_equal(n, (mtcsec_ssize)len + 8);
        assert_memory_equal(out + len, GW1, 8);
      } else {
        assert_int_equal(n, (mtcsec_ssize)len);
        assert_memory_equal(out, buf, len);
      }
    }
    free(buf);
  }
  {
    uint64_t total = gw.dropped;
    for (i = 0; i < 8; i++) {
      total += gw.forwarded[i];
    }
    assert_int_equal(total, 20000);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_gateway_init),
    cmocka_unit_test(test_gateway_appends_hops_in_order),
    cmocka_unit_test(test_gateway_forwards_unchanged_suite1),
    cmocka_unit_test(test_gateway_forwards_unchanged_suite2),
    cmocka_unit_test(test_gateway_forwards_unchanged_suite3),
    cmocka_unit_test(test_gateway_drops_wrong_direction),
    cmocka_unit_test(test_gateway_truncations_dropped_suite1),
    cmocka_unit_test(test_gateway_truncations_dropped_suite2),
    cmocka_unit_test(test_gateway_truncations_dropped_suite3),
    cmocka_unit_test(test_gateway_malformed_handshakes_dropped),
    cmocka_unit_test(test_gateway_nobuf),
    cmocka_unit_test(test_gateway_forwards_unknown_suite),
    cmocka_unit_test(test_gateway_random_input),
  };
  int rv = cmocka_run_group_tests(tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
