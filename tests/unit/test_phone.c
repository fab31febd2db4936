/*
 * UE role (src/roles/phone.c).  The test plays the device and the MTCs by
 * hand with the codec builders, so every byte the UE sees is known.
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
#include <mtcsec/phone.h>

#include "crypto_fixture.h"

/* ------------------------------------------------------------ fixture */

static const uint8_t UEID[8] = {0x02, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t OTHER_UEID[8] = {0x02, 0, 0, 0, 0, 0, 0, 0x99};
static const uint8_t MTCS_ID[8] = {0x05, 0, 0, 0, 0, 0, 0, 0x01};

#define MAX_EV 64

typedef struct ev_rec {
  mtcsec_ue_event_type type;
  uint8_t mtcd_id[8];
  uint32_t req_id;
  uint16_t key_id;
  uint8_t perms;
  uint32_t lifetime;
  uint8_t errcode;
  char detail[512];
} ev_rec;

typedef struct fx {
  const mtcsec_crypto *crypto;
  mtcsec_ue *ue;
  ev_rec ev[MAX_EV];
  size_t nev;
} fx;

/* A device as the server and the device itself know it. */
typedef struct dev {
  uint8_t suite;
  uint8_t keylen;
  uint8_t mtcd_id[8];
  uint8_t k_auth[MTCSEC_MAX_KEY_LEN];
  uint8_t k_dm[MTCSEC_MAX_KEY_LEN];
} dev;

/* What the "server" used to answer, so the test can check the DMKey. */
typedef struct m3_opts {
  uint8_t suite;          /* 0: the M1's */
  const uint8_t *mtcd_id; /* NULL: the M1's */
  const uint8_t *mtcs_id; /* NULL: the M1's */
  const uint8_t *ueid;    /* NULL: the M1's */
  uint32_t lifetime;
  uint8_t perms;
  uint16_t key_id;
} m3_opts;

static void on_event(void *user_data, const mtcsec_ue_event *ev) {
  fx *f = user_data;
  ev_rec *r;
  assert_true(f->nev < MAX_EV);
  r = &f->ev[f->nev++];
  memset(r, 0, sizeof(*r));
  r->type = ev->type;
  assert_non_null(ev->mtcd_id);
  memcpy(r->mtcd_id, ev->mtcd_id, 8);
  r->req_id = ev->req_id;
  r->key_id = ev->key_id;
  r->perms = ev->perms;
  r->lifetime = ev->lifetime;
  r->errcode = ev->errcode;
  if (ev->type == MTCSEC_UE_EV_ERROR) {
    assert_non_null(ev->detail);
    assert_true(strlen(ev->detail) < sizeof(r->detail));
    strcpy(r->detail, ev->detail);
  }
}

static const mtcsec_ue_callbacks callbacks = {on_event};

static fx *fx_new(size_t max_exchanges, size_t max_sessions,
                  mtcsec_tstamp timeout) {
  fx *f = calloc(1, sizeof(*f));
  mtcsec_ue_config cfg;
  assert_non_null(f);
  f->crypto = th_openssl();
  mtcsec_ue_config_default(&cfg);
  memcpy(cfg.ueid, UEID, 8);
  cfg.max_exchanges = max_exchanges;
  cfg.max_sessions = max_sessions;
  cfg.exchange_timeout = timeout;
  assert_int_equal(mtcsec_ue_new(&f->ue, &cfg, f->crypto, &callbacks, f), 0);
  return f;
}

static void fx_del(fx *f) {
  mtcsec_ue_del(f->ue);
  free(f);
}

static void dev_setup(fx *f, dev *d, uint8_t suite, uint8_t idx) {
  uint8_t pskey[MTCSEC_MAX_KEY_LEN];
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  size_t i;
  assert_non_null(sp);
  memset(d, 0, sizeof(*d));
  d->suite = suite;
  d->keylen = sp->keylen;
  d->mtcd_id[0] = 0x0d;
  d->mtcd_id[7] = idx;
  for (i = 0; i < sizeof(pskey); i++) {
    pskey[i] = (uint8_t)(0x40 + i + idx);
  }
  assert_int_equal(mtcsec_derive_device_keys(f->crypto, suite, pskey,
                                             d->mtcd_id, MTCS_ID, d->k_auth,
                                             d->k_dm),
                   0);
}

/* The device's M1 with MTCdNonce nonce, made out to ueid. */
static size_t build_m1(fx *f, const dev *d, uint64_t nonce, const uint8_t *ueid,
                       uint8_t *out, size_t outlen) {
  uint8_t nb[8];
  uint8_t info[32];
  mtcsec_dinfo di;
  mtcsec_m1_fields m1f;
  mtcsec_ssize infolen, n;
  memset(&di, 0, sizeof(di));
  di.present = MTCSEC_DINFO_BATTERY | MTCSEC_DINFO_REQ_PERMS;
  di.battery = 77;
  di.req_perms = MTCSEC_PERM_READ | MTCSEC_PERM_WRITE;
  infolen = mtcsec_dinfo_encode(info, sizeof(info), &di);
  assert_true(infolen > 0);
  mtcsec_put_u64(nb, nonce);
  memset(&m1f, 0, sizeof(m1f));
  m1f.suite = d->suite;
  m1f.mtcd_id = d->mtcd_id;
  m1f.mtcs_id = MTCS_ID;
  m1f.nonce = nb;
  m1f.ueid = ueid;
  m1f.info = info;
  m1f.info_len = (size_t)infolen;
  n = mtcsec_m1_build(out, outlen, f->crypto, d->k_auth, &m1f);
  assert_true(n > 0);
  return (size_t)n;
}

/* The MTCs's M3 frame answering m1 under req_id; the DMKey goes to dmkey. */
static size_t build_m3(fx *f, const dev *d, const uint8_t *m1, size_t m1len,
                       uint32_t req_id, const m3_opts *o, uint8_t *dmkey,
                       uint8_t *out, size_t outlen) {
  mtcsec_hs hs;
  mtcsec_sinfo si;
  mtcsec_m4_fields m4f;
  uint8_t sinfo[16];
  uint8_t mtcs_nonce[8];
  uint8_t body[MTCSEC_M3_BODY_MAX_LEN];
  uint8_t suite = o->suite != 0 ? o->suite : d->suite;
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  mtcsec_ssize n, m4len;

  assert_non_null(sp);
  assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, m1len), 0);
  memset(&si, 0, sizeof(si));
  si.present = MTCSEC_SINFO_LIFETIME | MTCSEC_SINFO_PERMS | MTCSEC_SINFO_KEY_ID;
  si.lifetime = o->lifetime;
  si.perms = o->perms;
  si.key_id = o->key_id;
  n = mtcsec_sinfo_encode(sinfo, sizeof(sinfo), &si);
  assert_int_equal(n, 13);
  mtcsec_put_u64(mtcs_nonce, 0xa5a5000000000000ull | o->key_id);

  memset(&m4f, 0, sizeof(m4f));
  m4f.suite = suite;
  m4f.mtcs_id = o->mtcs_id != NULL ? o->mtcs_id : hs.id_b;
  m4f.mtcd_id = o->mtcd_id != NULL ? o->mtcd_id : hs.id_a;
  m4f.mtcs_nonce = mtcs_nonce;
  m4f.ueid = o->ueid != NULL ? o->ueid : hs.ueid;
  m4f.info = sinfo;
  m4f.info_len = (size_t)n;
  m4f.mtcd_nonce = hs.nonce;
  m4f.m1_info = hs.info;
  m4f.m1_info_len = hs.info_len;
  m4len = mtcsec_m4_build(body, sizeof(body), f->crypto, d->k_auth, &m4f);
  assert_true(m4len > 0);
  assert_int_equal(mtcsec_derive_dmkey(f->crypto, suite, d->k_dm, m4f.mtcd_id,
                                       m4f.mtcs_id, hs.nonce, mtcs_nonce,
                                       m4f.ueid, body + m4len),
                   0);
  if (dmkey != NULL) {
    memcpy(dmkey, body + m4len, sp->keylen);
  }
  n = mtcsec_frame_encode(out, outlen, MTCSEC_MSG_M3, req_id, body,
                          (size_t)m4len + sp->keylen);
  assert_true(n > 0);
  return (size_t)n;
}

static m3_opts default_opts(uint16_t key_id) {
  m3_opts o;
  memset(&o, 0, sizeof(o));
  o.lifetime = 3600;
  o.perms = MTCSEC_PERM_READ;
  o.key_id = key_id;
  return o;
}

/* Drains one M2 frame: checks it carries m1 (when given), returns req_id. */
static uint32_t take_m2(fx *f, const uint8_t *m1, size_t m1len,
                        mtcsec_tstamp now) {
  uint8_t buf[MTCSEC_FRAME_HDR_LEN + MTCSEC_HS_MAX_LEN];
  mtcsec_link link = MTCSEC_LINK_DEVICE;
  uint64_t peer = 1234;
  mtcsec_frame fr;
  mtcsec_ssize n = mtcsec_ue_write(f->ue, buf, sizeof(buf), &link, &peer, now);
  assert_true(n > 0);
  assert_int_equal(link, MTCSEC_LINK_SERVER);
  assert_int_equal(mtcsec_frame_parse(&fr, buf, (size_t)n), n);
  assert_int_equal(fr.type, MTCSEC_MSG_M2);
  assert_int_not_equal(fr.req_id, 0);
  if (m1 != NULL) {
    assert_int_equal(fr.bodylen, m1len);
    assert_memory_equal(fr.body, m1, m1len);
  }
  return fr.req_id;
}

/* Runs one whole exchange for d; returns the DMKey via dmkey. */
static void establish(fx *f, const dev *d, uint64_t nonce, uint16_t key_id,
                      uint32_t lifetime, uint8_t *dmkey, mtcsec_tstamp now) {
  uint8_t m1[MTCSEC_HS_MAX_LEN], m3[MTCSEC_FRAME_HDR_LEN + 400];
  uint8_t out[MTCSEC_HS_MAX_LEN];
  size_t m1len, m3len;
  uint32_t req_id;
  m3_opts o = default_opts(key_id);
  mtcsec_link link;
  uint64_t peer = 0;
  mtcsec_ssize n;

  o.lifetime = lifetime;
  m1len = build_m1(f, d, nonce, UEID, m1, sizeof(m1));
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 42, now), 0);
  req_id = take_m2(f, m1, m1len, now);
  m3len = build_m3(f, d, m1, m1len, req_id, &o, dmkey, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, now), 0);
  n = mtcsec_ue_write(f->ue, out, sizeof(out), &link, &peer, now);
  assert_true(n > 0);
  assert_int_equal(link, MTCSEC_LINK_DEVICE);
  assert_int_equal(peer, 42);
  assert_int_equal(out[0], MTCSEC_MSG_M4);
}

/* -------------------------------------------------------------- tests */

static void test_phone_config_default_and_new(void **state) {
  mtcsec_ue_config cfg;
  const mtcsec_crypto *crypto = th_openssl();
  mtcsec_ue *ue = (mtcsec_ue *)&cfg; /* must be reset to NULL on failure */
  (void)state;
  mtcsec_ue_config_default(&cfg);
  assert_int_equal(cfg.max_exchanges, 64);
  assert_int_equal(cfg.max_sessions, 256);
  assert_int_equal(cfg.exchange_timeout, 10000);
  assert_null(cfg.mem);

  assert_int_equal(mtcsec_ue_new(NULL, &cfg, crypto, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_ue_new(&ue, NULL, crypto, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_null(ue);
  assert_int_equal(mtcsec_ue_new(&ue, &cfg, NULL, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  cfg.max_exchanges = 0;
  assert_int_equal(mtcsec_ue_new(&ue, &cfg, crypto, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  cfg.max_exchanges = 1;
  cfg.max_sessions = 0;
  assert_int_equal(mtcsec_ue_new(&ue, &cfg, crypto, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  cfg.max_sessions = 1;
  cfg.exchange_timeout = 0;
  assert_int_equal(mtcsec_ue_new(&ue, &cfg, crypto, NULL, NULL),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  cfg.exchange_timeout = 1000;
  /* No callbacks is allowed. */
  assert_int_equal(mtcsec_ue_new(&ue, &cfg, crypto, NULL, NULL), 0);
  assert_non_null(ue);
  assert_int_equal(mtcsec_ue_inflight(ue), 0);
  assert_int_equal(mtcsec_ue_get_expiry(ue), MTCSEC_TSTAMP_NEVER);
  mtcsec_ue_del(ue);
  mtcsec_ue_del(NULL);
}

static void test_phone_m0(void **state) {
  fx *f = fx_new(4, 4, 1000);
  uint8_t buf[16];
  mtcsec_m0 m0;
  (void)state;
  assert_int_equal(mtcsec_ue_m0(f->ue, buf, 10, 0x03), MTCSEC_ERR_NOBUF);
  assert_int_equal(mtcsec_ue_m0(f->ue, buf, sizeof(buf), 0x03), 11);
  assert_int_equal(mtcsec_m0_decode(&m0, buf, 11), 0);
  assert_memory_equal(m0.ueid, UEID, 8);
  assert_int_equal(m0.req_perms, 0x03);
  assert_int_equal(m0.nhops, 0);
  fx_del(f);
}

static void test_phone_many_exchanges_distinct_req_ids(void **state) {
  enum { N = 8 };
  fx *f = fx_new(N, N, 10000);
  dev d[N + 1];
  uint8_t m1[N + 1][MTCSEC_HS_MAX_LEN];
  size_t m1len[N + 1];
  uint32_t req[N];
  uint8_t dmkey[N][MTCSEC_MAX_KEY_LEN];
  uint8_t m3[MTCSEC_FRAME_HDR_LEN + 400], out[MTCSEC_HS_MAX_LEN];
  uint8_t seen[N];
  size_t i, j, m3len;
  mtcsec_link link;
  uint64_t peer;
  mtcsec_ssize n;
  (void)state;

  for (i = 0; i <= N; i++) {
    dev_setup(f, &d[i], (uint8_t)(1 + i % 3), (uint8_t)i);
    m1len[i] = build_m1(f, &d[i], 100 + i, UEID, m1[i], sizeof(m1[i]));
  }
  for (i = 0; i < N; i++) {
    assert_int_equal(mtcsec_ue_read_device(f->ue, m1[i], m1len[i], 1000 + i, 0),
                     0);
  }
  assert_int_equal(mtcsec_ue_inflight(f->ue), N);
  /* The table is full. */
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1[N], m1len[N], 9, 0),
                   MTCSEC_ERR_BUSY);

  /* One M2 per exchange, each carrying one of the M1s, distinct req_ids. */
  memset(seen, 0, sizeof(seen));
  for (i = 0; i < N; i++) {
    uint8_t buf[MTCSEC_FRAME_HDR_LEN + MTCSEC_HS_MAX_LEN];
    mtcsec_frame fr;
    n = mtcsec_ue_write(f->ue, buf, sizeof(buf), &link, &peer, 0);
    assert_true(n > 0);
    assert_int_equal(link, MTCSEC_LINK_SERVER);
    assert_int_equal(mtcsec_frame_parse(&fr, buf, (size_t)n), n);
    assert_int_equal(fr.type, MTCSEC_MSG_M2);
    assert_int_not_equal(fr.req_id, 0);
    for (j = 0; j < N; j++) {
      if (fr.bodylen == m1len[j] && memcmp(fr.body, m1[j], m1len[j]) == 0) {
        break;
      }
    }
    assert_true(j < N);
    assert_false(seen[j]);
    seen[j] = 1;
    req[j] = fr.req_id;
  }
  assert_int_equal(mtcsec_ue_write(f->ue, out, sizeof(out), &link, &peer, 0),
                   0);
  for (i = 0; i < N; i++) {
    for (j = i + 1; j < N; j++) {
      assert_int_not_equal(req[i], req[j]);
    }
  }

  /* Answer in reverse order; each M3 goes to its own exchange. */
  for (i = N; i-- > 0;) {
    m3_opts o = default_opts((uint16_t)(10 + i));
    m3len =
      build_m3(f, &d[i], m1[i], m1len[i], req[i], &o, dmkey[i], m3, sizeof(m3));
    assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 5), 0);
    assert_int_equal(f->ev[f->nev - 1].type, MTCSEC_UE_EV_ESTABLISHED);
    assert_int_equal(f->ev[f->nev - 1].req_id, req[i]);
    assert_int_equal(f->ev[f->nev - 1].key_id, 10 + i);
    assert_int_equal(f->ev[f->nev - 1].perms, MTCSEC_PERM_READ);
    assert_int_equal(f->ev[f->nev - 1].lifetime, 3600);
    assert_memory_equal(f->ev[f->nev - 1].mtcd_id, d[i].mtcd_id, 8);
  }
  assert_int_equal(f->nev, N);

  /* Eight M4s, each to the peer its M1 came from. */
  memset(seen, 0, sizeof(seen));
  for (i = 0; i < N; i++) {
    mtcsec_hs hs;
    n = mtcsec_ue_write(f->ue, out, sizeof(out), &link, &peer, 6);
    assert_true(n > 0);
    assert_int_equal(link, MTCSEC_LINK_DEVICE);
    assert_true(peer >= 1000 && peer < 1000 + N);
    j = (size_t)(peer - 1000);
    assert_false(seen[j]);
    seen[j] = 1;
    assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M4, out, (size_t)n), 0);
    assert_memory_equal(hs.id_b, d[j].mtcd_id, 8);
  }
  assert_int_equal(mtcsec_ue_write(f->ue, out, sizeof(out), &link, &peer, 6),
                   0);
  assert_int_equal(mtcsec_ue_inflight(f->ue), 0);
  for (i = 0; i < N; i++) {
    assert_non_null(mtcsec_ue_channel(f->ue, d[i].mtcd_id));
  }
  /* A slot is free again. */
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1[N], m1len[N], 9, 7), 0);
  fx_del(f);
}

static void test_phone_req_ids_not_reused_in_flight(void **state) {
  fx *f = fx_new(4, 4, 10000);
  dev d;
  uint8_t m1[MTCSEC_HS_MAX_LEN], m1b[MTCSEC_HS_MAX_LEN];
  size_t m1len, m1blen;
  uint32_t first, r;
  uint8_t buf[MTCSEC_FRAME_HDR_LEN + 400];
  mtcsec_ssize n;
  int k;
  (void)state;
  dev_setup(f, &d, 1, 1);
  /* An exchange stays in flight while many others come and go. */
  m1len = build_m1(f, &d, 1, UEID, m1, sizeof(m1));
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0), 0);
  first = take_m2(f, m1, m1len, 0);
  assert_int_equal(first, 1);
  for (k = 0; k < 50; k++) {
    m1blen = build_m1(f, &d, 2 + (uint64_t)k, UEID, m1b, sizeof(m1b));
    assert_int_equal(mtcsec_ue_read_device(f->ue, m1b, m1blen, 1, 0), 0);
    r = take_m2(f, m1b, m1blen, 0);
    assert_int_not_equal(r, first);
    assert_int_not_equal(r, 0);
    n = mtcsec_err_frame_encode(buf, sizeof(buf), r, 8, "replay");
    assert_true(n > 0);
    assert_int_equal(mtcsec_ue_read_server(f->ue, buf, (size_t)n, 0), 0);
  }
  assert_int_equal(mtcsec_ue_inflight(f->ue), 1);
  fx_del(f);
}

static void test_phone_duplicate_m1_forwarded_once(void **state) {
  fx *f = fx_new(4, 4, 10000);
  dev d;
  uint8_t m1[MTCSEC_HS_MAX_LEN], buf[MTCSEC_FRAME_HDR_LEN + 400];
  uint8_t m3[MTCSEC_FRAME_HDR_LEN + 400];
  size_t m1len, m3len;
  uint32_t req, req2;
  mtcsec_link link;
  uint64_t peer;
  m3_opts o = default_opts(7);
  (void)state;
  dev_setup(f, &d, 1, 1);
  m1len = build_m1(f, &d, 5, UEID, m1, sizeof(m1));

  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0), 0);
  /* A radio duplicate, possibly through another relay. */
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 2, 1),
                   MTCSEC_ERR_UNEXPECTED);
  assert_int_equal(mtcsec_ue_inflight(f->ue), 1);
  req = take_m2(f, m1, m1len, 1);
  assert_int_equal(mtcsec_ue_write(f->ue, buf, sizeof(buf), &link, &peer, 1),
                   0);
  /* Still a duplicate while waiting for M3. */
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 2),
                   MTCSEC_ERR_UNEXPECTED);
  /* And while M4 is queued. */
  m3len = build_m3(f, &d, m1, m1len, req, &o, NULL, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 3), 0);
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 3),
                   MTCSEC_ERR_UNEXPECTED);
  assert_true(mtcsec_ue_write(f->ue, buf, sizeof(buf), &link, &peer, 3) > 0);
  assert_int_equal(link, MTCSEC_LINK_DEVICE);
  assert_int_equal(peer, 1);
  assert_int_equal(mtcsec_ue_inflight(f->ue), 0);

  /* The device resends the same M1 because the M4 was lost: that is a new
   * exchange (the MTCs answers it with the same M3, section 4). */
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 4), 0);
  req2 = take_m2(f, m1, m1len, 4);
  assert_int_not_equal(req2, req);
  fx_del(f);
}

static void test_phone_m1_rejections(void **state) {
  fx *f = fx_new(4, 4, 10000);
  dev d;
  uint8_t m1[MTCSEC_HS_MAX_LEN], buf[MTCSEC_FRAME_HDR_LEN + 400];
  size_t m1len, i;
  uint8_t *cut;
  mtcsec_link link;
  uint64_t peer;
  (void)state;
  dev_setup(f, &d, 1, 1);

  /* An M1 made out to another UE. */
  m1len = build_m1(f, &d, 5, OTHER_UEID, m1, sizeof(m1));
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0),
                   MTCSEC_ERR_MISMATCH);
  assert_int_equal(mtcsec_ue_inflight(f->ue), 0);

  m1len = build_m1(f, &d, 5, UEID, m1, sizeof(m1));
  /* Every truncation, each in a buffer of exactly that size (ASan). */
  for (i = 0; i < m1len; i++) {
    cut = malloc(i > 0 ? i : 1);
    assert_non_null(cut);
    memcpy(cut, m1, i);
    assert_int_equal(mtcsec_ue_read_device(f->ue, cut, i, 1, 0),
                     MTCSEC_ERR_MALFORMED);
    free(cut);
  }
  /* One byte too many. */
  m1[m1len] = 0;
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len + 1, 1, 0),
                   MTCSEC_ERR_MALFORMED);
  /* Unknown suite (structurally fine with t = 0). */
  m1[1] = 0x7e;
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0),
                   MTCSEC_ERR_UNSUPPORTED);
  m1[1] = d.suite;
  /* Not an M1: another type, another version. */
  m1[0] = MTCSEC_MSG_M4;
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0),
                   MTCSEC_ERR_UNSUPPORTED);
  m1[0] = 0x21;
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0),
                   MTCSEC_ERR_UNSUPPORTED);
  assert_int_equal(mtcsec_ue_read_device(f->ue, NULL, 0, 1, 0),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(mtcsec_ue_read_device(NULL, m1, m1len, 1, 0),
                   MTCSEC_ERR_INVALID_ARGUMENT);

  assert_int_equal(mtcsec_ue_inflight(f->ue), 0);
  assert_int_equal(mtcsec_ue_write(f->ue, buf, sizeof(buf), &link, &peer, 0),
                   0);
  assert_int_equal(f->nev, 0);
  fx_del(f);
}

static void test_phone_m3_mismatch_keeps_exchange(void **state) {
  static const uint8_t WRONG[8] = {9, 9, 9, 9, 9, 9, 9, 9};
  fx *f = fx_new(4, 4, 10000);
  dev d;
  uint8_t m1[MTCSEC_HS_MAX_LEN], m3[MTCSEC_FRAME_HDR_LEN + 400];
  size_t m1len, m3len;
  uint32_t req;
  m3_opts o;
  (void)state;
  dev_setup(f, &d, 1, 1);
  m1len = build_m1(f, &d, 5, UEID, m1, sizeof(m1));
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0), 0);

  /* Before M2 has left, nothing can answer it. */
  o = default_opts(1);
  m3len = build_m3(f, &d, m1, m1len, 1, &o, NULL, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 0),
                   MTCSEC_ERR_NOT_FOUND);
  req = take_m2(f, m1, m1len, 0);
  assert_int_equal(req, 1);

  /* Unknown req_id. */
  m3len = build_m3(f, &d, m1, m1len, req + 1, &o, NULL, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 0),
                   MTCSEC_ERR_NOT_FOUND);

  o = default_opts(1);
  o.mtcd_id = WRONG;
  m3len = build_m3(f, &d, m1, m1len, req, &o, NULL, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 0),
                   MTCSEC_ERR_MISMATCH);
  o = default_opts(1);
  o.mtcs_id = WRONG;
  m3len = build_m3(f, &d, m1, m1len, req, &o, NULL, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 0),
                   MTCSEC_ERR_MISMATCH);
  o = default_opts(1);
  o.ueid = OTHER_UEID;
  m3len = build_m3(f, &d, m1, m1len, req, &o, NULL, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 0),
                   MTCSEC_ERR_MISMATCH);
  o = default_opts(1);
  o.suite = MTCSEC_SUITE_HMAC_SHA256_AES128;
  m3len = build_m3(f, &d, m1, m1len, req, &o, NULL, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 0),
                   MTCSEC_ERR_MISMATCH);

  /* Malformed M3 bodies: every truncation of the body. */
  o = default_opts(1);
  m3len = build_m3(f, &d, m1, m1len, req, &o, NULL, m3, sizeof(m3));
  {
    size_t blen;
    for (blen = 0; blen < m3len - 7; blen++) {
      uint8_t fr[MTCSEC_FRAME_HDR_LEN + 400];
      mtcsec_ssize n =
        mtcsec_frame_encode(fr, sizeof(fr), MTCSEC_MSG_M3, req, m3 + 7, blen);
      assert_true(n > 0);
      assert_int_equal(mtcsec_ue_read_server(f->ue, fr, (size_t)n, 0),
                       MTCSEC_ERR_MALFORMED);
    }
  }

  /* Nothing happened: the exchange waits, no session, no event. */
  assert_int_equal(mtcsec_ue_inflight(f->ue), 1);
  assert_null(mtcsec_ue_channel(f->ue, d.mtcd_id));
  assert_int_equal(f->nev, 0);

  /* The right M3 still completes it. */
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 0), 0);
  assert_int_equal(f->nev, 1);
  assert_int_equal(f->ev[0].type, MTCSEC_UE_EV_ESTABLISHED);
  assert_non_null(mtcsec_ue_channel(f->ue, d.mtcd_id));
  /* A duplicate M3 finds nothing to answer. */
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 0),
                   MTCSEC_ERR_NOT_FOUND);
  fx_del(f);
}

static void test_phone_server_frame_rejections(void **state) {
  fx *f = fx_new(4, 4, 10000);
  dev d;
  uint8_t m1[MTCSEC_HS_MAX_LEN], buf[MTCSEC_FRAME_HDR_LEN + 400];
  size_t m1len;
  uint32_t req;
  mtcsec_ssize n;
  (void)state;
  dev_setup(f, &d, 1, 1);
  m1len = build_m1(f, &d, 5, UEID, m1, sizeof(m1));
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0), 0);
  req = take_m2(f, m1, m1len, 0);

  /* An M2 coming back is not for a UE. */
  n = mtcsec_frame_encode(buf, sizeof(buf), MTCSEC_MSG_M2, req, m1, m1len);
  assert_int_equal(mtcsec_ue_read_server(f->ue, buf, (size_t)n, 0),
                   MTCSEC_ERR_MALFORMED);
  /* Incomplete frame, trailing byte, len < 5, empty ERR body. */
  n = mtcsec_err_frame_encode(buf, sizeof(buf), req, 3, "x");
  assert_int_equal(mtcsec_ue_read_server(f->ue, buf, (size_t)n - 1, 0),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(mtcsec_ue_read_server(f->ue, buf, (size_t)n + 1, 0),
                   MTCSEC_ERR_MALFORMED);
  buf[0] = 0;
  buf[1] = 4;
  assert_int_equal(mtcsec_ue_read_server(f->ue, buf, 6, 0),
                   MTCSEC_ERR_MALFORMED);
  n = mtcsec_frame_encode(buf, sizeof(buf), MTCSEC_MSG_ERR, req, NULL, 0);
  assert_int_equal(mtcsec_ue_read_server(f->ue, buf, (size_t)n, 0),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(mtcsec_ue_read_server(f->ue, NULL, 0, 0),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(mtcsec_ue_inflight(f->ue), 1);
  assert_int_equal(f->nev, 0);
  fx_del(f);
}

static void test_phone_err_event(void **state) {
  fx *f = fx_new(4, 4, 10000);
  dev d;
  uint8_t m1[MTCSEC_HS_MAX_LEN], buf[MTCSEC_FRAME_HDR_LEN + 400];
  uint8_t body[301];
  size_t m1len;
  uint32_t req;
  mtcsec_ssize n;
  (void)state;
  dev_setup(f, &d, 1, 1);
  m1len = build_m1(f, &d, 5, UEID, m1, sizeof(m1));
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0), 0);
  req = take_m2(f, m1, m1len, 0);

  n = mtcsec_err_frame_encode(buf, sizeof(buf), req, MTCSEC_ERRCODE_REPLAY,
                              "seen before");
  assert_int_equal(mtcsec_ue_read_server(f->ue, buf, (size_t)n, 0), 0);
  assert_int_equal(f->nev, 1);
  assert_int_equal(f->ev[0].type, MTCSEC_UE_EV_ERROR);
  assert_int_equal(f->ev[0].errcode, MTCSEC_ERRCODE_REPLAY);
  assert_int_equal(f->ev[0].req_id, req);
  assert_memory_equal(f->ev[0].mtcd_id, d.mtcd_id, 8);
  assert_string_equal(f->ev[0].detail, "seen before");
  /* The exchange is gone. */
  assert_int_equal(mtcsec_ue_inflight(f->ue), 0);
  assert_int_equal(mtcsec_ue_read_server(f->ue, buf, (size_t)n, 0),
                   MTCSEC_ERR_NOT_FOUND);
  assert_null(mtcsec_ue_channel(f->ue, d.mtcd_id));

  /* An empty detail, and a long one with control bytes and a NUL: the
   * application gets a bounded, NUL-terminated string. */
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0), 0);
  req = take_m2(f, m1, m1len, 0);
  n = mtcsec_frame_encode(buf, sizeof(buf), MTCSEC_MSG_ERR, req,
                          (const uint8_t *)"\x0b", 1);
  assert_int_equal(mtcsec_ue_read_server(f->ue, buf, (size_t)n, 0), 0);
  assert_int_equal(f->ev[1].errcode, MTCSEC_ERRCODE_RATE_LIMITED);
  assert_string_equal(f->ev[1].detail, "");

  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0), 0);
  req = take_m2(f, m1, m1len, 0);
  memset(body, 'a', sizeof(body));
  body[0] = MTCSEC_ERRCODE_INTERNAL;
  body[1] = 0;
  body[2] = '\n';
  n = mtcsec_frame_encode(buf, sizeof(buf), MTCSEC_MSG_ERR, req, body,
                          sizeof(body));
  assert_int_equal(mtcsec_ue_read_server(f->ue, buf, (size_t)n, 0), 0);
  assert_int_equal(f->nev, 3);
  assert_int_equal(f->ev[2].errcode, MTCSEC_ERRCODE_INTERNAL);
  assert_true(strlen(f->ev[2].detail) > 0);
  assert_true(strlen(f->ev[2].detail) < sizeof(body) - 1);
  assert_int_equal(f->ev[2].detail[0], '?');
  assert_int_equal(f->ev[2].detail[1], '?');
  assert_int_equal(f->ev[2].detail[2], 'a');
  fx_del(f);
}

static void test_phone_timeout(void **state) {
  fx *f = fx_new(4, 4, 1000);
  dev d;
  uint8_t m1[MTCSEC_HS_MAX_LEN], m3[MTCSEC_FRAME_HDR_LEN + 400];
  size_t m1len, m3len;
  uint32_t req;
  m3_opts o = default_opts(1);
  (void)state;
  dev_setup(f, &d, 1, 1);
  m1len = build_m1(f, &d, 5, UEID, m1, sizeof(m1));
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 500), 0);
  assert_int_equal(mtcsec_ue_get_expiry(f->ue), 1500);
  req = take_m2(f, m1, m1len, 600);
  assert_int_equal(mtcsec_ue_get_expiry(f->ue), 1500);

  assert_int_equal(mtcsec_ue_handle_expiry(f->ue, 1499), 0);
  assert_int_equal(f->nev, 0);
  assert_int_equal(mtcsec_ue_inflight(f->ue), 1);
  assert_int_equal(mtcsec_ue_handle_expiry(f->ue, 1500), 0);
  assert_int_equal(f->nev, 1);
  assert_int_equal(f->ev[0].type, MTCSEC_UE_EV_TIMEOUT);
  assert_int_equal(f->ev[0].req_id, req);
  assert_memory_equal(f->ev[0].mtcd_id, d.mtcd_id, 8);
  assert_int_equal(mtcsec_ue_inflight(f->ue), 0);
  assert_int_equal(mtcsec_ue_get_expiry(f->ue), MTCSEC_TSTAMP_NEVER);

  /* A late M3 finds nothing. */
  m3len = build_m3(f, &d, m1, m1len, req, &o, NULL, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 2000),
                   MTCSEC_ERR_NOT_FOUND);
  /* An exchange that never got its M2 out times out too. */
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 3000), 0);
  assert_int_equal(mtcsec_ue_handle_expiry(f->ue, 4000), 0);
  assert_int_equal(f->nev, 2);
  assert_int_equal(f->ev[1].type, MTCSEC_UE_EV_TIMEOUT);
  assert_int_equal(mtcsec_ue_inflight(f->ue), 0);
  fx_del(f);
}

static void test_phone_session_expiry(void **state) {
  fx *f = fx_new(4, 4, 1000);
  dev d;
  uint8_t dmkey[MTCSEC_MAX_KEY_LEN];
  (void)state;
  dev_setup(f, &d, 1, 1);
  establish(f, &d, 5, 0x0102, 60, dmkey, 5000);
  assert_int_equal(f->ev[0].type, MTCSEC_UE_EV_ESTABLISHED);
  assert_int_equal(f->ev[0].lifetime, 60);
  assert_non_null(mtcsec_ue_channel(f->ue, d.mtcd_id));
  /* Counted from the receipt of M3. */
  assert_int_equal(mtcsec_ue_get_expiry(f->ue), 65000);

  assert_int_equal(mtcsec_ue_handle_expiry(f->ue, 64999), 0);
  assert_int_equal(f->nev, 1);
  assert_non_null(mtcsec_ue_channel(f->ue, d.mtcd_id));
  assert_int_equal(mtcsec_ue_handle_expiry(f->ue, 65000), 0);
  assert_int_equal(f->nev, 2);
  assert_int_equal(f->ev[1].type, MTCSEC_UE_EV_EXPIRED);
  assert_int_equal(f->ev[1].key_id, 0x0102);
  assert_memory_equal(f->ev[1].mtcd_id, d.mtcd_id, 8);
  assert_null(mtcsec_ue_channel(f->ue, d.mtcd_id));
  assert_int_equal(mtcsec_ue_get_expiry(f->ue), MTCSEC_TSTAMP_NEVER);
  fx_del(f);
}

static void test_phone_lifetime_saturates(void **state) {
  fx *f = fx_new(4, 4, 1000);
  dev d;
  (void)state;
  dev_setup(f, &d, 1, 1);
  /* now + 0xffffffff s would wrap a 64-bit ms clock near its end. */
  establish(f, &d, 5, 1, UINT32_MAX, NULL, UINT64_MAX - 1000);
  assert_non_null(mtcsec_ue_channel(f->ue, d.mtcd_id));
  assert_int_equal(mtcsec_ue_get_expiry(f->ue), MTCSEC_TSTAMP_NEVER);
  assert_int_equal(mtcsec_ue_handle_expiry(f->ue, UINT64_MAX - 1), 0);
  assert_non_null(mtcsec_ue_channel(f->ue, d.mtcd_id));
  fx_del(f);
}

/* The device end runs on each real provider (OpenSSL, Mbed TLS), the UE
 * end on OpenSSL: the two ends must agree byte for byte. */
static void channel_roundtrip(uint8_t suite) {
  const mtcsec_crypto *prov[TH_MAX_PROVIDERS];
  const char *names[TH_MAX_PROVIDERS];
  size_t np = th_providers(prov, names), p;
  static const uint8_t msg_d2u[] = "temperature=21.5";
  static const uint8_t msg_u2d[] = "valve=open";

  assert_true(np >= 1);
  for (p = 0; p < np; p++) {
    fx *f = fx_new(4, 4, 1000);
    dev d;
    uint8_t dmkey[MTCSEC_MAX_KEY_LEN];
    mtcsec_chan dch;
    mtcsec_chan *uch;
    uint8_t rec[64], pt[64];
    mtcsec_ssize n, m;

    print_message("device end on %s\n", names[p]);
    dev_setup(f, &d, suite, 3);
    establish(f, &d, 9, 0x4242, 600, dmkey, 1000);
    uch = mtcsec_ue_channel(f->ue, d.mtcd_id);
    assert_non_null(uch);
    /* The device's end of the same DMKey. */
    assert_int_equal(mtcsec_chan_init(&dch, prov[p], suite, MTCSEC_CHAN_DEVICE,
                                      dmkey, 0x4242, 601000),
                     0);

    n =
      mtcsec_chan_seal(&dch, rec, sizeof(rec), msg_d2u, sizeof(msg_d2u), 2000);
    assert_true(n > 0);
    m = mtcsec_chan_open(uch, pt, sizeof(pt), rec, (size_t)n, 2000);
    assert_int_equal(m, sizeof(msg_d2u));
    assert_memory_equal(pt, msg_d2u, sizeof(msg_d2u));
    /* Replayed record. */
    assert_int_equal(
      mtcsec_chan_open(uch, pt, sizeof(pt), rec, (size_t)n, 2000),
      MTCSEC_ERR_REPLAY);

    n = mtcsec_chan_seal(uch, rec, sizeof(rec), msg_u2d, sizeof(msg_u2d), 3000);
    assert_true(n > 0);
    m = mtcsec_chan_open(&dch, pt, sizeof(pt), rec, (size_t)n, 3000);
    assert_int_equal(m, sizeof(msg_u2d));
    assert_memory_equal(pt, msg_u2d, sizeof(msg_u2d));
    /* A UE record does not open on the UE (directions are separate). */
    n = mtcsec_chan_seal(uch, rec, sizeof(rec), msg_u2d, sizeof(msg_u2d), 3000);
    assert_true(n > 0);
    assert_true(mtcsec_chan_open(uch, pt, sizeof(pt), rec, (size_t)n, 3000) <
                0);
    /* After the lifetime the UE end drops records (section 6). */
    n =
      mtcsec_chan_seal(&dch, rec, sizeof(rec), msg_d2u, sizeof(msg_d2u), 3000);
    assert_true(n > 0);
    assert_int_equal(
      mtcsec_chan_open(uch, pt, sizeof(pt), rec, (size_t)n, 601000),
      MTCSEC_ERR_EXPIRED);

    mtcsec_chan_deinit(&dch);
    fx_del(f);
  }
}

static void test_phone_channel_roundtrip_suite1(void **state) {
  (void)state;
  channel_roundtrip(MTCSEC_SUITE_CMAC_AES128);
}

static void test_phone_channel_roundtrip_suite2(void **state) {
  (void)state;
  channel_roundtrip(MTCSEC_SUITE_HMAC_SHA256_AES128);
}

static void test_phone_channel_roundtrip_suite3(void **state) {
  (void)state;
  channel_roundtrip(MTCSEC_SUITE_HMAC_SHA256_AES256);
}

static void test_phone_session_replaced_and_forgotten(void **state) {
  fx *f = fx_new(4, 1, 1000);
  dev d, d2;
  uint8_t k1[MTCSEC_MAX_KEY_LEN], k2[MTCSEC_MAX_KEY_LEN];
  uint8_t rec[64], pt[64];
  mtcsec_chan dch;
  mtcsec_chan *uch;
  mtcsec_ssize n;
  uint8_t m1[MTCSEC_HS_MAX_LEN], m3[MTCSEC_FRAME_HDR_LEN + 400];
  size_t m1len, m3len;
  uint32_t req;
  m3_opts o = default_opts(3);
  (void)state;
  dev_setup(f, &d, 1, 1);
  dev_setup(f, &d2, 1, 2);
  establish(f, &d, 5, 1, 600, k1, 0);
  /* Only one session slot: a second device cannot get one (exchange
   * kept), but the same device replaces its own. */
  m1len = build_m1(f, &d2, 1, UEID, m1, sizeof(m1));
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 7, 0), 0);
  req = take_m2(f, m1, m1len, 0);
  m3len = build_m3(f, &d2, m1, m1len, req, &o, NULL, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 0),
                   MTCSEC_ERR_NOMEM);
  assert_int_equal(mtcsec_ue_inflight(f->ue), 1);
  assert_null(mtcsec_ue_channel(f->ue, d2.mtcd_id));

  establish(f, &d, 6, 2, 600, k2, 10);
  assert_memory_not_equal(k1, k2, 16);
  uch = mtcsec_ue_channel(f->ue, d.mtcd_id);
  assert_non_null(uch);
  /* Records under the old key are refused; the new key works. */
  assert_int_equal(
    mtcsec_chan_init(&dch, f->crypto, 1, MTCSEC_CHAN_DEVICE, k1, 1, 600000), 0);
  n = mtcsec_chan_seal(&dch, rec, sizeof(rec), (const uint8_t *)"x", 1, 20);
  assert_true(n > 0);
  assert_true(mtcsec_chan_open(uch, pt, sizeof(pt), rec, (size_t)n, 20) < 0);
  mtcsec_chan_deinit(&dch);
  assert_int_equal(
    mtcsec_chan_init(&dch, f->crypto, 1, MTCSEC_CHAN_DEVICE, k2, 2, 600000), 0);
  n = mtcsec_chan_seal(&dch, rec, sizeof(rec), (const uint8_t *)"y", 1, 20);
  assert_true(n > 0);
  assert_int_equal(mtcsec_chan_open(uch, pt, sizeof(pt), rec, (size_t)n, 20),
                   1);
  mtcsec_chan_deinit(&dch);

  /* Forget frees the slot: the waiting exchange of d2 can now complete. */
  assert_int_equal(mtcsec_ue_forget(f->ue, d.mtcd_id), 0);
  assert_null(mtcsec_ue_channel(f->ue, d.mtcd_id));
  assert_int_equal(mtcsec_ue_forget(f->ue, d.mtcd_id), MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 30), 0);
  assert_non_null(mtcsec_ue_channel(f->ue, d2.mtcd_id));
  fx_del(f);
}

static void test_phone_write_nobuf_keeps_queue(void **state) {
  fx *f = fx_new(4, 4, 1000);
  dev d;
  uint8_t m1[MTCSEC_HS_MAX_LEN], m3[MTCSEC_FRAME_HDR_LEN + 400];
  uint8_t buf[MTCSEC_FRAME_HDR_LEN + 400];
  size_t m1len, m3len;
  uint32_t req;
  mtcsec_link link;
  uint64_t peer;
  mtcsec_ssize n;
  mtcsec_frame fr;
  m3_opts o = default_opts(1);
  (void)state;
  dev_setup(f, &d, 2, 1);
  m1len = build_m1(f, &d, 5, UEID, m1, sizeof(m1));
  assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, 0), 0);
  assert_int_equal(mtcsec_ue_write(f->ue, buf, MTCSEC_FRAME_HDR_LEN + m1len - 1,
                                   &link, &peer, 0),
                   MTCSEC_ERR_NOBUF);
  n =
    mtcsec_ue_write(f->ue, buf, MTCSEC_FRAME_HDR_LEN + m1len, &link, &peer, 0);
  assert_int_equal(n, MTCSEC_FRAME_HDR_LEN + m1len);
  assert_int_equal(mtcsec_frame_parse(&fr, buf, (size_t)n), n);
  req = fr.req_id;
  m3len = build_m3(f, &d, m1, m1len, req, &o, NULL, m3, sizeof(m3));
  assert_int_equal(mtcsec_ue_read_server(f->ue, m3, m3len, 0), 0);
  /* M4: the M3 body minus the DMKey. */
  n = (mtcsec_ssize)(m3len - 7 - 16);
  assert_int_equal(mtcsec_ue_write(f->ue, buf, (size_t)n - 1, &link, &peer, 0),
                   MTCSEC_ERR_NOBUF);
  assert_int_equal(mtcsec_ue_write(f->ue, buf, (size_t)n, &link, &peer, 0), n);
  assert_memory_equal(buf, m3 + 7, (size_t)n);
  fx_del(f);
}

static uint64_t xs_next(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* Random bytes and random mutations of valid messages on both links: only
 * verdicts come back, and ASan checks every read. */
static void test_phone_random_input_is_rejected(void **state) {
  fx *f = fx_new(4, 4, 1000);
  dev d;
  uint8_t m1[MTCSEC_HS_MAX_LEN], m3[MTCSEC_FRAME_HDR_LEN + 400];
  uint8_t out[MTCSEC_FRAME_HDR_LEN + MTCSEC_HS_MAX_LEN];
  size_t m1len, m3len, len, i;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  uint64_t peer;
  mtcsec_link link;
  mtcsec_tstamp now = 0;
  uint32_t req;
  size_t established = 0;
  int k, rv;
  m3_opts o = default_opts(1);
  (void)state;
  dev_setup(f, &d, 1, 1);
  m1len = build_m1(f, &d, 5, UEID, m1, sizeof(m1));
  /* A template M3; its req_id is patched per round. */
  m3len = build_m3(f, &d, m1, m1len, 0, &o, NULL, m3, sizeof(m3));

  for (k = 0; k < 20000; k++) {
    uint8_t *buf;
    const uint8_t *src = (k & 1) ? m3 : m1;
    size_t srclen = (k & 1) ? m3len : m1len;

    now += 2000;
    if (k & 1) {
      /* An exchange waits for exactly this M3 (before mutation). */
      assert_int_equal(mtcsec_ue_read_device(f->ue, m1, m1len, 1, now), 0);
      req = take_m2(f, m1, m1len, now);
      m3[3] = (uint8_t)(req >> 24);
      m3[4] = (uint8_t)(req >> 16);
      m3[5] = (uint8_t)(req >> 8);
      m3[6] = (uint8_t)req;
    }
    len = (size_t)(xs_next(&x) % (srclen + 8));
    buf = malloc(len > 0 ? len : 1);
    assert_non_null(buf);
    for (i = 0; i < len; i++) {
      buf[i] = i < srclen ? src[i] : (uint8_t)xs_next(&x);
    }
    /* Flip zero to two bytes. */
    for (i = 0; len > 0 && i < xs_next(&x) % 3; i++) {
      buf[xs_next(&x) % len] ^= (uint8_t)(1 + xs_next(&x) % 255);
    }
    if (k & 1) {
      rv = mtcsec_ue_read_server(f->ue, buf, len, now);
    } else {
      rv = mtcsec_ue_read_device(f->ue, buf, len, 1, now);
    }
    assert_true(rv <= 0);
    if ((k & 1) && rv == 0 && f->nev > 0 &&
        f->ev[f->nev - 1].type == MTCSEC_UE_EV_ESTABLISHED) {
      established++;
    }
    free(buf);
    /* Drain anything a lucky mutation produced, then expire everything. */
    while (mtcsec_ue_write(f->ue, out, sizeof(out), &link, &peer, now) > 0) {
    }
    assert_int_equal(mtcsec_ue_handle_expiry(f->ue, now + 1000), 0);
    assert_int_equal(mtcsec_ue_inflight(f->ue), 0);
    f->nev = 0;
  }
  /* Whole, unmutated M3s got through now and then. */
  assert_true(established > 0);
  fx_del(f);
}

/* Counts allocator calls: the tables are allocated once, at new. */
typedef struct alloc_count {
  size_t calls;
  size_t frees;
} alloc_count;

static void *cnt_malloc(size_t size, void *ud) {
  ((alloc_count *)ud)->calls++;
  return malloc(size);
}
static void cnt_free(void *p, void *ud) {
  if (p != NULL) {
    ((alloc_count *)ud)->frees++;
  }
  free(p);
}
static void *cnt_calloc(size_t nmemb, size_t size, void *ud) {
  ((alloc_count *)ud)->calls++;
  return calloc(nmemb, size);
}

static void test_phone_allocates_only_at_new(void **state) {
  alloc_count ac = {0, 0};
  mtcsec_mem mem = {&ac, cnt_malloc, cnt_free, cnt_calloc};
  mtcsec_ue_config cfg;
  fx *f = calloc(1, sizeof(*f));
  dev d;
  size_t after_new;
  int k;
  (void)state;
  assert_non_null(f);
  f->crypto = th_openssl();
  mtcsec_ue_config_default(&cfg);
  memcpy(cfg.ueid, UEID, 8);
  cfg.max_exchanges = 3;
  cfg.max_sessions = 2;
  cfg.mem = &mem;
  assert_int_equal(mtcsec_ue_new(&f->ue, &cfg, f->crypto, &callbacks, f), 0);
  after_new = ac.calls;
  assert_true(after_new > 0);
  dev_setup(f, &d, 1, 1);
  for (k = 0; k < 5; k++) {
    establish(f, &d, 10 + (uint64_t)k, (uint16_t)k, 60, NULL,
              (mtcsec_tstamp)k * 100000);
    assert_int_equal(
      mtcsec_ue_handle_expiry(f->ue, (mtcsec_tstamp)k * 100000 + 60000), 0);
  }
  assert_int_equal(ac.calls, after_new);
  mtcsec_ue_del(f->ue);
  assert_int_equal(ac.frees, ac.calls);
  f->ue = NULL;
  fx_del(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_phone_config_default_and_new),
    cmocka_unit_test(test_phone_m0),
    cmocka_unit_test(test_phone_many_exchanges_distinct_req_ids),
    cmocka_unit_test(test_phone_req_ids_not_reused_in_flight),
    cmocka_unit_test(test_phone_duplicate_m1_forwarded_once),
    cmocka_unit_test(test_phone_m1_rejections),
    cmocka_unit_test(test_phone_m3_mismatch_keeps_exchange),
    cmocka_unit_test(test_phone_server_frame_rejections),
    cmocka_unit_test(test_phone_err_event),
    cmocka_unit_test(test_phone_timeout),
    cmocka_unit_test(test_phone_session_expiry),
    cmocka_unit_test(test_phone_lifetime_saturates),
    cmocka_unit_test(test_phone_channel_roundtrip_suite1),
    cmocka_unit_test(test_phone_channel_roundtrip_suite2),
    cmocka_unit_test(test_phone_channel_roundtrip_suite3),
    cmocka_unit_test(test_phone_session_replaced_and_forgotten),
    cmocka_unit_test(test_phone_write_nobuf_keeps_queue),
    cmocka_unit_test(test_phone_allocates_only_at_new),
    cmocka_unit_test(test_phone_random_input_is_rejected),
  };
  int rv = cmocka_run_group_tests(tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
