/*
 * The MTCs server core (server.h): the ordered checks of PROTOCOL.md
 * section 5 (every ERR code), replay windows and duplicates (section 4),
 * commit and batches, the output queue, revocation (section 7).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mtcsec/server.h>
#include <mtcsec/codec.h>

#include "server_fixture.h"

/* Besides the identities of server_fixture.h. */
static const uint8_t other_mtcs[8] = {0x5e, 0x4f, 0, 0, 0, 0, 0, 0x02};
static const uint8_t dev2_id[8] = {0xd0, 0x0d, 0, 0, 0, 0, 0, 0x02};

#define T0 1000000u
#define MAX_RESULTS 1024

/* A copy of one mtcsec_srv_result (its pointers die with the callback). */
typedef struct result {
  uint64_t conn;
  uint32_t req_id;
  uint8_t ueid[8];
  uint8_t mtcd_id[8];
  int has_mtcd_id;
  uint8_t errcode;
  uint8_t duplicate;
  int has_session;
  mtcsec_session_rec session;
  mtcsec_tstamp started, finished;
} result;

typedef th_answer answer;

/* A store that forwards to the in-memory one, with injected failures. */
typedef struct fx_store {
  mtcsec_store_mem *mem;
  int fail_get_device, fail_get_state, fail_get_grant, fail_relay;
  unsigned get_state_calls;
} fx_store;

typedef struct fx {
  mtcsec_fixed fixed;
  const mtcsec_crypto *crypto;
  fx_store store;
  mtcsec_srv *srv;
  mtcsec_srv_config cfg;
  uint8_t suite;
  uint8_t k_auth[MTCSEC_MAX_KEY_LEN];
  uint8_t k_dm[MTCSEC_MAX_KEY_LEN];
  result res[MAX_RESULTS];
  size_t nres;
  char lastlog[256];
  size_t nlogs;
  int log_has_secret;
} fx;

static int fs_get_device(void *st, const uint8_t id[8],
                         mtcsec_store_device *out) {
  fx_store *s = st;
  if (s->fail_get_device) {
    return MTCSEC_ERR_STORE;
  }
  return mtcsec_store_mem_ops.get_device(s->mem, id, out);
}

static int fs_get_state(void *st, const uint8_t id[8],
                        mtcsec_store_devstate *out) {
  fx_store *s = st;
  s->get_state_calls++;
  if (s->fail_get_state) {
    return MTCSEC_ERR_STORE;
  }
  return mtcsec_store_mem_ops.get_state(s->mem, id, out);
}

static int fs_get_grant(void *st, const uint8_t dev[8], const uint8_t ue[8],
                        mtcsec_store_grant *out) {
  fx_store *s = st;
  if (s->fail_get_grant) {
    return MTCSEC_ERR_STORE;
  }
  return mtcsec_store_mem_ops.get_grant(s->mem, dev, ue, out);
}

static int fs_relay_allowed(void *st, const uint8_t dev[8],
                            const uint8_t gw[8]) {
  fx_store *s = st;
  if (s->fail_relay) {
    return MTCSEC_ERR_STORE;
  }
  return mtcsec_store_mem_ops.relay_allowed(s->mem, dev, gw);
}

static int fs_commit(void *st, mtcsec_store_txn *const *txns, size_t n,
                     int *results) {
  fx_store *s = st;
  return mtcsec_store_mem_ops.commit(s->mem, txns, n, results);
}

static const mtcsec_store_ops fx_store_ops = {
  fs_get_device, fs_get_state, fs_get_grant, fs_relay_allowed, fs_commit, NULL};

static void on_result(void *ud, const mtcsec_srv_result *r) {
  fx *f = ud;
  result *o;
  assert_true(f->nres < MAX_RESULTS);
  o = &f->res[f->nres++];
  memset(o, 0, sizeof(*o));
  o->conn = r->conn;
  o->req_id = r->req_id;
  memcpy(o->ueid, r->ueid, 8);
  if (r->mtcd_id != NULL) {
    memcpy(o->mtcd_id, r->mtcd_id, 8);
    o->has_mtcd_id = 1;
  }
  o->errcode = r->errcode;
  o->duplicate = r->duplicate;
  if (r->session != NULL) {
    o->has_session = 1;
    o->session = *r->session;
  }
  o->started = r->started;
  o->finished = r->finished;
}

static const mtcsec_srv_callbacks fx_cb = {on_result};

static void on_log(void *ud, int level, const char *msg) {
  fx *f = ud;
  char hex[2 * MTCSEC_MAX_KEY_LEN + 1];
  (void)level;
  snprintf(f->lastlog, sizeof(f->lastlog), "%s", msg);
  f->nlogs++;
  th_hex(hex, f->k_auth, 8);
  if (strstr(msg, hex) != NULL) {
    f->log_has_secret = 1;
  }
  th_hex(hex, f->k_dm, 8);
  if (strstr(msg, hex) != NULL) {
    f->log_has_secret = 1;
  }
}

static void fx_provision(fx *f, const uint8_t id[8], uint8_t suite) {
  mtcsec_store_device d;
  memset(&d, 0, sizeof(d));
  d.suite = suite;
  memcpy(d.k_auth, f->k_auth, sizeof(d.k_auth));
  memcpy(d.k_dm, f->k_dm, sizeof(d.k_dm));
  assert_int_equal(mtcsec_store_mem_add_device(f->store.mem, id, &d), 0);
}

static void fx_start(fx *f) {
  mtcsec_srv_del(f->srv);
  f->srv = NULL;
  assert_int_equal(mtcsec_srv_new(&f->srv, &f->cfg, f->crypto, &fx_store_ops,
                                  &f->store, &fx_cb, f),
                   0);
}

/* Device provisioned with suite, grant 0x0f / 3600 s for th_ue_id. */
static fx *fx_new(uint8_t suite) {
  fx *f = calloc(1, sizeof(*f));

  assert_non_null(f);
  f->crypto = th_fixed(&f->fixed, 42);
  f->suite = suite;
  th_device_keys(f->crypto, suite, th_dev_id, f->k_auth, f->k_dm);
  assert_int_equal(mtcsec_store_mem_new(&f->store.mem, NULL), 0);
  fx_provision(f, th_dev_id, suite);
  assert_int_equal(
    mtcsec_store_mem_grant(f->store.mem, th_dev_id, th_ue_id, 0x0f, 3600), 0);
  mtcsec_srv_config_default(&f->cfg);
  memcpy(f->cfg.mtcs_id, th_mtcs_id, 8);
  f->cfg.log = on_log;
  fx_start(f);
  return f;
}

static int setup1(void **state) {
  *state = fx_new(MTCSEC_SUITE_CMAC_AES128);
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  mtcsec_srv_del(f->srv);
  mtcsec_store_mem_del(f->store.mem);
  free(f);
  return 0;
}

/* ------------------------------------------------------------ builders */

typedef th_m1 m1_opts;

static m1_opts m1_defaults(const fx *f, uint64_t nonce) {
  m1_opts o;
  memset(&o, 0, sizeof(o));
  o.suite = f->suite;
  o.mtcd_id = th_dev_id;
  o.mtcs_id = th_mtcs_id;
  o.ueid = th_ue_id;
  o.k_auth = f->k_auth;
  o.nonce = nonce;
  return o;
}

static size_t build_m1(const fx *f, const m1_opts *o, uint8_t *out,
                       size_t outlen) {
  return th_build_m1(f->crypto, o, out, outlen);
}

static size_t simple_m1(const fx *f, uint64_t nonce, uint8_t *out) {
  m1_opts o = m1_defaults(f, nonce);
  return build_m1(f, &o, out, MTCSEC_HS_MAX_LEN);
}

/* MTCdInfo with BATTERY 77, REQ_PERMS (if req) and a PATH (if npath). */
static size_t build_info(uint8_t *out, int req, uint8_t req_perms,
                         const uint8_t *path, uint8_t npath) {
  return th_build_info(out, 77, req, req_perms, path, npath);
}

static int fx_send_type(fx *f, uint64_t conn, const uint8_t *ueid, uint8_t type,
                        uint32_t req_id, const uint8_t *body, size_t bodylen,
                        mtcsec_tstamp now) {
  return th_srv_send(f->srv, conn, ueid, type, req_id, body, bodylen, now);
}

static int fx_send(fx *f, uint32_t req_id, const uint8_t *m1, size_t m1len,
                   mtcsec_tstamp now) {
  return fx_send_type(f, 1, th_ue_id, MTCSEC_MSG_M2, req_id, m1, m1len, now);
}

/* Reads one queued answer: 1, or 0 when the queue is empty. */
static int fx_read(fx *f, answer *a) { return th_srv_read(f->srv, a); }

static void expect_none(fx *f) {
  answer a;
  assert_int_equal(fx_read(f, &a), 0);
}

static void expect_err(fx *f, uint32_t req_id, uint8_t code) {
  answer a;
  assert_int_equal(fx_read(f, &a), 1);
  assert_int_equal(a.type, MTCSEC_MSG_ERR);
  assert_int_equal(a.req_id, req_id);
  assert_true(a.bodylen >= 1);
  assert_int_equal(a.body[0], code);
}

static void expect_m3(fx *f, uint32_t req_id, answer *a) {
  assert_int_equal(fx_read(f, a), 1);
  if (a->type == MTCSEC_MSG_ERR) {
    fail_msg("req %u: ERR %u instead of M3", (unsigned)req_id, a->body[0]);
  }
  assert_int_equal(a->type, MTCSEC_MSG_M3);
  assert_int_equal(a->req_id, req_id);
}

/*
 * send + commit + read exactly one answer.  Returns 0 for M3 (in *a when a
 * is not NULL) or the ERR code.
 */
static uint8_t fx_exchange(fx *f, uint32_t req_id, const uint8_t *m1,
                           size_t m1len, mtcsec_tstamp now, answer *a) {
  return th_srv_exchange(f->srv, 1, th_ue_id, req_id, m1, m1len, now, a);
}

/* The device's side of an M3 (section 4); returns the decoded MTCsInfo. */
static mtcsec_sinfo check_m3(const fx *f, const answer *a, const uint8_t *m1,
                             size_t m1len) {
  return th_check_m3(f->crypto, f->suite, f->k_auth, f->k_dm, a, m1, m1len);
}

static mtcsec_store_devstate store_state(fx *f, const uint8_t id[8]) {
  mtcsec_store_devstate ds;
  assert_int_equal(mtcsec_store_mem_ops.get_state(f->store.mem, id, &ds), 0);
  return ds;
}

/* ------------------------------------------------------- happy paths */

static void test_server_issues_key(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 7, m1);
  mtcsec_session_rec rec;
  mtcsec_sinfo si;
  answer a;

  assert_int_equal(fx_send(f, 11, m1, n, T0), 0);
  /* Nothing leaves before the durable commit (section 4). */
  assert_int_equal(mtcsec_srv_pending(f->srv), 1);
  expect_none(f);
  assert_int_equal(f->nres, 0);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0 + 5), 0);
  assert_int_equal(mtcsec_srv_pending(f->srv), 0);
  expect_m3(f, 11, &a);
  assert_int_equal(a.conn, 1);
  si = check_m3(f, &a, m1, n);
  assert_int_equal(si.lifetime, 3600);
  assert_int_equal(si.perms, 0x0f);
  assert_int_equal(si.key_id, 0);

  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 1);
  assert_int_equal(mtcsec_store_mem_session(f->store.mem, 0, &rec), 0);
  assert_memory_equal(rec.mtcd_id, th_dev_id, 8);
  assert_memory_equal(rec.ueid, th_ue_id, 8);
  assert_int_equal(mtcsec_get_u64(rec.mtcd_nonce), 7);
  assert_memory_equal(rec.mtcs_nonce, a.body + 18, 8);
  assert_int_equal(rec.key_id, 0);
  assert_int_equal(rec.perms, 0x0f);
  assert_int_equal(rec.lifetime, 3600);
  assert_int_equal(rec.suite, f->suite);
  assert_int_equal(rec.issued_at, T0);
  assert_int_equal(rec.npath, 0);
  assert_int_equal(store_state(f, th_dev_id).next_key_id, 1);

  assert_int_equal(f->nres, 1);
  assert_int_equal(f->res[0].errcode, 0);
  assert_int_equal(f->res[0].duplicate, 0);
  assert_int_equal(f->res[0].req_id, 11);
  assert_true(f->res[0].has_session);
  assert_memory_equal(&f->res[0].session, &rec, sizeof(rec));
  assert_int_equal(f->res[0].started, T0);
  assert_int_equal(f->res[0].finished, T0 + 5);

  /* The next exchange gets the next key id. */
  n = simple_m1(f, 8, m1);
  assert_int_equal(fx_exchange(f, 12, m1, n, T0 + 10, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).key_id, 1);
}

static void test_server_mtcs_nonce_from_provider(void **state) {
  fx *f = *state;
  static const uint8_t want[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 0, m1);
  mtcsec_hs m4;
  const uint8_t *dk;
  size_t dklen;
  answer a;

  assert_int_equal(mtcsec_fixed_push(&f->fixed, want, 8), 0);
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, &a), 0);
  assert_int_equal(mtcsec_fixed_pending(&f->fixed), 0);
  assert_int_equal(mtcsec_m3_decode(&m4, &dk, &dklen, a.body, a.bodylen), 0);
  assert_memory_equal(m4.nonce, want, 8);
  check_m3(f, &a, m1, n);
}

static void test_server_suites_2_and_3(void **state) {
  uint8_t suites[2] = {MTCSEC_SUITE_HMAC_SHA256_AES128,
                       MTCSEC_SUITE_HMAC_SHA256_AES256};
  size_t i;
  (void)state;
  for (i = 0; i < 2; i++) {
    fx *f = fx_new(suites[i]);
    uint8_t m1[MTCSEC_HS_MAX_LEN];
    size_t n = simple_m1(f, 1, m1);
    answer a;
    assert_int_equal(fx_exchange(f, 1, m1, n, T0, &a), 0);
    check_m3(f, &a, m1, n);
    teardown((void **)&f);
  }
}

/* ---------------------------------------------------- every ERR code */

static void test_server_err_malformed(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  uint8_t bad[MTCSEC_HS_MAX_LEN + 8];
  uint8_t frame[16];
  size_t n = simple_m1(f, 1, m1);

  /* A frame of another type. */
  assert_int_equal(
    fx_send_type(f, 1, th_ue_id, MTCSEC_MSG_M3, 0x01020304, m1, n, T0), 0);
  expect_err(f, 0x01020304, MTCSEC_ERRCODE_MALFORMED);
  /* An empty M2. */
  assert_int_equal(fx_send(f, 2, m1, 0, T0), 0);
  expect_err(f, 2, MTCSEC_ERRCODE_MALFORMED);
  /* Truncated, extended. */
  assert_int_equal(fx_send(f, 3, m1, n - 1, T0), 0);
  expect_err(f, 3, MTCSEC_ERRCODE_MALFORMED);
  memcpy(bad, m1, n);
  bad[n] = 0;
  assert_int_equal(fx_send(f, 4, bad, n + 1, T0), 0);
  expect_err(f, 4, MTCSEC_ERRCODE_MALFORMED);
  /* An M4 header byte. */
  memcpy(bad, m1, n);
  bad[0] = MTCSEC_MSG_M4;
  assert_int_equal(fx_send(f, 5, bad, n, T0), 0);
  expect_err(f, 5, MTCSEC_ERRCODE_MALFORMED);
  /* info_len beyond the end. */
  memcpy(bad, m1, n);
  bad[34] = 200;
  assert_int_equal(fx_send(f, 6, bad, n, T0), 0);
  expect_err(f, 6, MTCSEC_ERRCODE_MALFORMED);
  assert_int_equal(f->nres, 6);
  assert_int_equal(f->res[0].errcode, MTCSEC_ERRCODE_MALFORMED);
  assert_false(f->res[0].has_mtcd_id);

  /* len < 5: no answer, the caller ends the connection. */
  frame[0] = 0;
  frame[1] = 4;
  memset(frame + 2, 0, 4);
  assert_int_equal(mtcsec_srv_recv(f->srv, 1, th_ue_id, frame, 6, T0),
                   MTCSEC_ERR_MALFORMED);
  /* Not exactly one frame. */
  frame[1] = 5;
  assert_int_equal(mtcsec_srv_recv(f->srv, 1, th_ue_id, frame, 6, T0),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_srv_recv(f->srv, 1, th_ue_id, frame, 8, T0),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  expect_none(f);
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 0);
}

static void test_server_err_malformed_duplicate_tlv(void **state) {
  fx *f = *state;
  /* Two BATTERY TLVs, then an unknown critical TLV: both MALFORMED, with a
   * valid MIC so that only the decoding can refuse them. */
  static const uint8_t dup_info[] = {0x02, 1, 50, 0x02, 1, 60};
  static const uint8_t crit_info[] = {0x8f, 1, 0};
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  mtcsec_m1_fields mf;
  uint8_t nonce[8] = {0};
  size_t i, n;
  const uint8_t *infos[2] = {dup_info, crit_info};
  size_t lens[2] = {sizeof(dup_info), sizeof(crit_info)};

  for (i = 0; i < 2; i++) {
    const mtcsec_suite_params *sp = mtcsec_suite_get(f->suite);
    mtcsec_iov iov;
    memset(&mf, 0, sizeof(mf));
    m1[0] = MTCSEC_MSG_M1;
    m1[1] = f->suite;
    memcpy(m1 + 2, th_dev_id, 8);
    memcpy(m1 + 10, th_mtcs_id, 8);
    memcpy(m1 + 18, nonce, 8);
    memcpy(m1 + 26, th_ue_id, 8);
    m1[34] = (uint8_t)lens[i];
    memcpy(m1 + 35, infos[i], lens[i]);
    n = 35 + lens[i];
    iov.base = m1;
    iov.len = n;
    assert_int_equal(f->crypto->ops->mac(f->crypto->ctx, sp->mac, f->k_auth,
                                         sp->keylen, &iov, 1, m1 + n,
                                         sp->miclen),
                     0);
    n += sp->miclen;
    assert_int_equal(fx_exchange(f, (uint32_t)i, m1, n, T0, NULL),
                     MTCSEC_ERRCODE_MALFORMED);
  }
}

static void test_server_err_wrong_server(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  m1_opts o = m1_defaults(f, 1);
  size_t n;
  o.mtcs_id = other_mtcs;
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_WRONG_SERVER);
  assert_true(f->res[0].has_mtcd_id);
  assert_memory_equal(f->res[0].mtcd_id, th_dev_id, 8);
}

static void test_server_err_unknown_device(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  m1_opts o = m1_defaults(f, 1);
  size_t n;
  o.mtcd_id = th_unknown_dev;
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_UNKNOWN_DEVICE);
}

static void test_server_err_device_disabled(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1);
  assert_int_equal(mtcsec_store_mem_set_disabled(f->store.mem, th_dev_id, 1),
                   0);
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_DEVICE_DISABLED);
  assert_int_equal(mtcsec_store_mem_set_disabled(f->store.mem, th_dev_id, 0),
                   0);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0, NULL), 0);
}

static void test_server_err_unsupported_suite(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  m1_opts o = m1_defaults(f, 1);
  size_t n = build_m1(f, &o, m1, sizeof(m1));

  /* An unknown suite byte: decoded with t = 0, refused at 5. */
  m1[1] = 0x7f;
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_UNSUPPORTED_SUITE);
  /* ... even with no MIC bytes at all. */
  assert_int_equal(fx_exchange(f, 2, m1, n - 8, T0, NULL),
                   MTCSEC_ERRCODE_UNSUPPORTED_SUITE);
  /* A known suite that is not the one provisioned. */
  o.suite = MTCSEC_SUITE_HMAC_SHA256_AES128;
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 3, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_UNSUPPORTED_SUITE);
}

static void test_server_err_ue_id_mismatch(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1);
  /* The M1 names th_ue_id but TLS authenticated th_ue2_id (section 9.4). */
  assert_int_equal(fx_send_type(f, 2, th_ue2_id, MTCSEC_MSG_M2, 9, m1, n, T0),
                   0);
  assert_int_equal(mtcsec_srv_pending(f->srv), 0);
  expect_err(f, 9, MTCSEC_ERRCODE_UE_ID_MISMATCH);
  assert_memory_equal(f->res[0].ueid, th_ue2_id, 8);
}

static void test_server_err_bad_mic(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  uint8_t wrong_key[MTCSEC_MAX_KEY_LEN];
  m1_opts o = m1_defaults(f, 1);
  size_t n;
  memset(wrong_key, 0x42, sizeof(wrong_key));
  o.k_auth = wrong_key;
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), MTCSEC_ERRCODE_BAD_MIC);
  /* The failed M1 spent nothing: its nonce still works. */
  n = simple_m1(f, 1, m1);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0, NULL), 0);
}

static void test_server_err_replay_same_nonce_after_ttl(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 5, m1);
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), 0);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0 + 60000, NULL),
                   MTCSEC_ERRCODE_REPLAY);
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 1);
}

static void test_server_err_replay_same_nonce_other_m1(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], info[MTCSEC_MAX_INFO_LEN];
  m1_opts o = m1_defaults(f, 5);
  size_t n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), 0);
  /* Same nonce, other bytes: not a duplicate, a replay. */
  o.info = info;
  o.info_len = build_info(info, 0, 0, NULL, 0);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 2, m1, n, T0 + 1, NULL),
                   MTCSEC_ERRCODE_REPLAY);
}

static void test_server_replay_window(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n;

  n = simple_m1(f, 100, m1);
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), 0);
  /* Below the window (top - 64). */
  n = simple_m1(f, 36, m1);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0, NULL), MTCSEC_ERRCODE_REPLAY);
  /* Out of order inside the window: accepted once. */
  n = simple_m1(f, 37, m1);
  assert_int_equal(fx_exchange(f, 3, m1, n, T0, NULL), 0);
  assert_int_equal(fx_exchange(f, 4, m1, n, T0 + 60000, NULL),
                   MTCSEC_ERRCODE_REPLAY);
  n = simple_m1(f, 99, m1);
  assert_int_equal(fx_exchange(f, 5, m1, n, T0 + 60000, NULL), 0);
  /* The window slides. */
  n = simple_m1(f, 200, m1);
  assert_int_equal(fx_exchange(f, 6, m1, n, T0 + 60000, NULL), 0);
  n = simple_m1(f, 137, m1);
  assert_int_equal(fx_exchange(f, 7, m1, n, T0 + 60000, NULL), 0);
  n = simple_m1(f, 136, m1);
  assert_int_equal(fx_exchange(f, 8, m1, n, T0 + 60000, NULL),
                   MTCSEC_ERRCODE_REPLAY);
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 5);
  assert_int_equal(store_state(f, th_dev_id).window.top, 200);
}

static void test_server_err_ue_not_authorized(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], info[MTCSEC_MAX_INFO_LEN];
  m1_opts o = m1_defaults(f, 1);
  size_t n;

  /* REQ_PERMS disjoint from the grant. */
  assert_int_equal(
    mtcsec_store_mem_grant(f->store.mem, th_dev_id, th_ue_id, 0x03, 60), 0);
  o.info = info;
  o.info_len = build_info(info, 1, 0x0c, NULL, 0);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_UE_NOT_AUTHORIZED);
  /* An empty grant. */
  assert_int_equal(
    mtcsec_store_mem_grant(f->store.mem, th_dev_id, th_ue_id, 0x00, 60), 0);
  n = simple_m1(f, 2, m1);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_UE_NOT_AUTHORIZED);
  /* No grant. */
  assert_int_equal(
    mtcsec_store_mem_revoke_grant(f->store.mem, th_dev_id, th_ue_id), 0);
  assert_int_equal(fx_exchange(f, 3, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_UE_NOT_AUTHORIZED);
  /* Failed exchanges spent nothing. */
  assert_int_equal(store_state(f, th_dev_id).window.bitmap, 0);
  assert_int_equal(
    mtcsec_store_mem_grant(f->store.mem, th_dev_id, th_ue_id, 0x01, 60), 0);
  assert_int_equal(fx_exchange(f, 4, m1, n, T0, NULL), 0);
}

static void test_server_req_perms_intersection(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], info[MTCSEC_MAX_INFO_LEN];
  m1_opts o = m1_defaults(f, 1);
  answer a;
  size_t n;

  assert_int_equal(
    mtcsec_store_mem_grant(f->store.mem, th_dev_id, th_ue_id, 0x0b, 120), 0);
  o.info = info;
  o.info_len = build_info(info, 1, 0x07, NULL, 0);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).perms, 0x03);
  assert_int_equal(check_m3(f, &a, m1, n).lifetime, 120);
  /* Without REQ_PERMS: the whole grant. */
  o.nonce = 2;
  o.info_len = build_info(info, 0, 0, NULL, 0);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 2, m1, n, T0, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).perms, 0x0b);
}

static void test_server_err_relay_not_authorized(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], info[MTCSEC_MAX_INFO_LEN], path[16];
  m1_opts o = m1_defaults(f, 1);
  mtcsec_session_rec rec;
  answer a;
  size_t n;

  memcpy(path, th_gw1, 8);
  memcpy(path + 8, th_gw2, 8);
  o.info = info;
  o.info_len = build_info(info, 0, 0, path, 2);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_RELAY_NOT_AUTHORIZED);
  /* One of two allowed is not enough. */
  assert_int_equal(
    mtcsec_store_mem_allow_relay(f->store.mem, th_dev_id, th_gw1), 0);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_RELAY_NOT_AUTHORIZED);
  assert_int_equal(
    mtcsec_store_mem_allow_relay(f->store.mem, th_dev_id, th_gw2), 0);
  assert_int_equal(fx_exchange(f, 3, m1, n, T0, &a), 0);
  check_m3(f, &a, m1, n);
  assert_int_equal(mtcsec_store_mem_session(f->store.mem, 0, &rec), 0);
  assert_int_equal(rec.npath, 2);
  assert_memory_equal(rec.path, path, 16);
}

static void test_server_err_rate_limited(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n;

  f->cfg.rate_per_minute = 2;
  fx_start(f);
  n = simple_m1(f, 1, m1);
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), 0);
  n = simple_m1(f, 2, m1);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0 + 1000, NULL), 0);
  n = simple_m1(f, 3, m1);
  assert_int_equal(fx_exchange(f, 3, m1, n, T0 + 2000, NULL),
                   MTCSEC_ERRCODE_RATE_LIMITED);
  /* Another device has its own budget. */
  fx_provision(f, dev2_id, f->suite);
  assert_int_equal(
    mtcsec_store_mem_grant(f->store.mem, dev2_id, th_ue_id, 0x01, 60), 0);
  {
    m1_opts o = m1_defaults(f, 1);
    uint8_t m1b[MTCSEC_HS_MAX_LEN];
    size_t nb;
    o.mtcd_id = dev2_id;
    nb = build_m1(f, &o, m1b, sizeof(m1b));
    assert_int_equal(fx_exchange(f, 4, m1b, nb, T0 + 2000, NULL), 0);
  }
  /* A minute later the budget is back; the refused nonce was not spent. */
  assert_int_equal(fx_exchange(f, 5, m1, n, T0 + 62000, NULL), 0);
}

static void test_server_rate_refunded_on_failed_commit(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1);

  f->cfg.rate_per_minute = 1;
  fx_start(f);
  mtcsec_store_mem_fail_commits(f->store.mem, 1);
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), MTCSEC_ERRCODE_INTERNAL);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0 + 1, NULL), 0);
}

static void test_server_err_internal_failed_commit(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1);
  answer a;

  mtcsec_store_mem_fail_commits(f->store.mem, 1);
  assert_int_equal(fx_send(f, 1, m1, n, T0), 0);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), MTCSEC_ERR_STORE);
  expect_err(f, 1, MTCSEC_ERRCODE_INTERNAL);
  expect_none(f);
  assert_int_equal(f->res[0].errcode, MTCSEC_ERRCODE_INTERNAL);
  assert_false(f->res[0].has_session);
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 0);
  assert_int_equal(store_state(f, th_dev_id).window.bitmap, 0);
  /* The nonce is still usable and no key id was spent. */
  assert_int_equal(fx_exchange(f, 2, m1, n, T0 + 1, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).key_id, 0);
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 1);
}

static void test_server_err_internal_store_errors(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], info[MTCSEC_MAX_INFO_LEN];
  m1_opts o = m1_defaults(f, 1);
  size_t n = simple_m1(f, 1, m1);

  f->store.fail_get_device = 1;
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), MTCSEC_ERRCODE_INTERNAL);
  f->store.fail_get_device = 0;
  f->store.fail_get_state = 1;
  assert_int_equal(fx_exchange(f, 2, m1, n, T0, NULL), MTCSEC_ERRCODE_INTERNAL);
  f->store.fail_get_state = 0;
  f->store.fail_get_grant = 1;
  assert_int_equal(fx_exchange(f, 3, m1, n, T0, NULL), MTCSEC_ERRCODE_INTERNAL);
  f->store.fail_get_grant = 0;
  f->store.fail_relay = 1;
  o.info = info;
  o.info_len = build_info(info, 0, 0, th_gw1, 1);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 4, m1, n, T0, NULL), MTCSEC_ERRCODE_INTERNAL);
  f->store.fail_relay = 0;
  assert_int_equal(
    mtcsec_store_mem_allow_relay(f->store.mem, th_dev_id, th_gw1), 0);
  /* Nothing was spent by any of them. */
  assert_int_equal(fx_exchange(f, 5, m1, n, T0, NULL), 0);
  assert_int_equal(f->nres, 5);
  assert_int_equal(f->res[1].errcode, MTCSEC_ERRCODE_INTERNAL);
  assert_non_null(strstr(f->lastlog, "result=OK"));
}

/* The first failing check answers, whatever fails after it. */
static void test_server_check_order(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], info[MTCSEC_MAX_INFO_LEN];
  uint8_t wrong_key[MTCSEC_MAX_KEY_LEN];
  m1_opts o;
  size_t n;
  memset(wrong_key, 0x42, sizeof(wrong_key));

  /* 2 before 7: wrong server and badly MAC'd. */
  o = m1_defaults(f, 1);
  o.mtcs_id = other_mtcs;
  o.k_auth = wrong_key;
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_WRONG_SERVER);
  /* 2 before 3. */
  o.mtcd_id = th_unknown_dev;
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 2, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_WRONG_SERVER);
  /* 3 before 6 and 7. */
  o = m1_defaults(f, 1);
  o.mtcd_id = th_unknown_dev;
  o.k_auth = wrong_key;
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_send_type(f, 1, th_ue2_id, MTCSEC_MSG_M2, 3, m1, n, T0),
                   0);
  expect_err(f, 3, MTCSEC_ERRCODE_UNKNOWN_DEVICE);
  /* 4 before 5. */
  assert_int_equal(mtcsec_store_mem_set_disabled(f->store.mem, th_dev_id, 1),
                   0);
  o = m1_defaults(f, 1);
  n = build_m1(f, &o, m1, sizeof(m1));
  m1[1] = 0x7f;
  assert_int_equal(fx_exchange(f, 4, m1, n, T0, NULL),
                   MTCSEC_ERRCODE_DEVICE_DISABLED);
  assert_int_equal(mtcsec_store_mem_set_disabled(f->store.mem, th_dev_id, 0),
                   0);
  /* 5 before 6. */
  assert_int_equal(fx_send_type(f, 1, th_ue2_id, MTCSEC_MSG_M2, 5, m1, n, T0),
                   0);
  expect_err(f, 5, MTCSEC_ERRCODE_UNSUPPORTED_SUITE);
  /* 6 before 7. */
  o.k_auth = wrong_key;
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_send_type(f, 1, th_ue2_id, MTCSEC_MSG_M2, 6, m1, n, T0),
                   0);
  expect_err(f, 6, MTCSEC_ERRCODE_UE_ID_MISMATCH);
  /* 7 before 8: a badly MAC'd copy of a used nonce. */
  o = m1_defaults(f, 1);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 7, m1, n, T0, NULL), 0);
  o.k_auth = wrong_key;
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 8, m1, n, T0 + 60000, NULL),
                   MTCSEC_ERRCODE_BAD_MIC);
  /* 8 before 9. */
  assert_int_equal(
    mtcsec_store_mem_revoke_grant(f->store.mem, th_dev_id, th_ue_id), 0);
  o = m1_defaults(f, 1);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 9, m1, n, T0 + 60000, NULL),
                   MTCSEC_ERRCODE_REPLAY);
  /* 9 before 10. */
  o = m1_defaults(f, 2);
  o.info = info;
  o.info_len = build_info(info, 0, 0, th_gw1, 1);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 10, m1, n, T0 + 60000, NULL),
                   MTCSEC_ERRCODE_UE_NOT_AUTHORIZED);
  /* 10 before 11. */
  assert_int_equal(
    mtcsec_store_mem_grant(f->store.mem, th_dev_id, th_ue_id, 0x01, 60), 0);
  f->cfg.rate_per_minute = 1;
  fx_start(f);
  o = m1_defaults(f, 3);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 11, m1, n, T0 + 60000, NULL), 0);
  o = m1_defaults(f, 4);
  o.info = info;
  o.info_len = build_info(info, 0, 0, th_gw1, 1);
  n = build_m1(f, &o, m1, sizeof(m1));
  assert_int_equal(fx_exchange(f, 12, m1, n, T0 + 60000, NULL),
                   MTCSEC_ERRCODE_RELAY_NOT_AUTHORIZED);
  assert_int_equal(
    mtcsec_store_mem_allow_relay(f->store.mem, th_dev_id, th_gw1), 0);
  assert_int_equal(fx_exchange(f, 13, m1, n, T0 + 60000, NULL),
                   MTCSEC_ERRCODE_RATE_LIMITED);
}

/* ------------------------------------------------------------ duplicates */

static void test_server_duplicate_answered_with_same_m3(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 3, m1);
  answer a, b;

  assert_int_equal(fx_exchange(f, 1, m1, n, T0, &a), 0);
  /* The retransmission is answered at once, no commit, same M3. */
  assert_int_equal(fx_send(f, 2, m1, n, T0 + 59999), 0);
  assert_int_equal(mtcsec_srv_pending(f->srv), 0);
  expect_m3(f, 2, &b);
  assert_int_equal(a.bodylen, b.bodylen);
  assert_memory_equal(a.body, b.body, a.bodylen);
  assert_int_equal(f->nres, 2);
  assert_int_equal(f->res[1].errcode, 0);
  assert_int_equal(f->res[1].duplicate, 1);
  assert_false(f->res[1].has_session);
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 1);
  assert_int_equal(store_state(f, th_dev_id).next_key_id, 1);
}

static void test_server_duplicate_ttl_not_extended(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 3, m1);
  answer a;

  assert_int_equal(fx_exchange(f, 1, m1, n, T0, &a), 0);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0 + 30000, &a), 0);
  assert_int_equal(fx_exchange(f, 3, m1, n, T0 + 59000, &a), 0);
  /* 60 s after the first answer, whatever happened in between. */
  assert_int_equal(fx_exchange(f, 4, m1, n, T0 + 60000, NULL),
                   MTCSEC_ERRCODE_REPLAY);
}

static void test_server_duplicate_from_other_ue_not_served(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 3, m1);

  assert_int_equal(
    mtcsec_store_mem_grant(f->store.mem, th_dev_id, th_ue2_id, 0x0f, 60), 0);
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), 0);
  /* The same bytes from another authenticated UE, on another connection. */
  assert_int_equal(
    fx_send_type(f, 2, th_ue2_id, MTCSEC_MSG_M2, 2, m1, n, T0 + 1), 0);
  expect_err(f, 2, MTCSEC_ERRCODE_UE_ID_MISMATCH);
  expect_none(f);
}

static void test_server_duplicate_on_new_connection(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 3, m1);
  answer a, b;

  assert_int_equal(fx_exchange(f, 1, m1, n, T0, &a), 0);
  /* The UE reconnected (same identity, new TLS connection). */
  assert_int_equal(
    fx_send_type(f, 77, th_ue_id, MTCSEC_MSG_M2, 1, m1, n, T0 + 10), 0);
  expect_m3(f, 1, &b);
  assert_int_equal(b.conn, 77);
  assert_memory_equal(a.body, b.body, a.bodylen);
}

static void test_server_duplicate_in_flight_gets_same_m3(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 3, m1);
  answer a, b;

  assert_int_equal(fx_send(f, 1, m1, n, T0), 0);
  assert_int_equal(fx_send(f, 2, m1, n, T0 + 10), 0);
  assert_int_equal(mtcsec_srv_pending(f->srv), 1);
  expect_none(f);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0 + 20), 0);
  expect_m3(f, 1, &a);
  expect_m3(f, 2, &b);
  expect_none(f);
  assert_int_equal(a.bodylen, b.bodylen);
  assert_memory_equal(a.body, b.body, a.bodylen);
  check_m3(f, &b, m1, n);
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 1);
  assert_int_equal(f->nres, 2);
  assert_int_equal(f->res[0].duplicate, 0);
  assert_int_equal(f->res[1].duplicate, 1);
  assert_int_equal(f->res[1].req_id, 2);
  assert_int_equal(f->res[1].started, T0 + 10);
  assert_int_equal(f->res[1].finished, T0 + 20);
}

static void test_server_duplicate_in_flight_commit_fails(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 3, m1);

  assert_int_equal(fx_send(f, 1, m1, n, T0), 0);
  assert_int_equal(fx_send(f, 2, m1, n, T0), 0);
  mtcsec_store_mem_fail_commits(f->store.mem, 1);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), MTCSEC_ERR_STORE);
  expect_err(f, 1, MTCSEC_ERRCODE_INTERNAL);
  expect_err(f, 2, MTCSEC_ERRCODE_INTERNAL);
  expect_none(f);
  /* The retry then succeeds. */
  assert_int_equal(fx_exchange(f, 3, m1, n, T0 + 1, NULL), 0);
}

static void test_server_duplicate_cache_evicts_oldest(void **state) {
  fx *f = *state;
  uint8_t m1a[MTCSEC_HS_MAX_LEN], m1b[MTCSEC_HS_MAX_LEN];
  size_t na = simple_m1(f, 1, m1a), nb = simple_m1(f, 2, m1b);

  f->cfg.dup_cache_size = 1;
  fx_start(f);
  assert_int_equal(fx_exchange(f, 1, m1a, na, T0, NULL), 0);
  assert_int_equal(fx_exchange(f, 2, m1b, nb, T0, NULL), 0);
  assert_int_equal(fx_exchange(f, 3, m1a, na, T0 + 1, NULL),
                   MTCSEC_ERRCODE_REPLAY);
  assert_int_equal(fx_exchange(f, 4, m1b, nb, T0 + 1, NULL), 0);
}

static void test_server_duplicate_cache_disabled(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1);

  f->cfg.dup_cache_size = 0;
  fx_start(f);
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), 0);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0 + 1, NULL),
                   MTCSEC_ERRCODE_REPLAY);
}

/* ------------------------------------------------------- no state change */

static void test_server_every_bit_flip_rejected(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], bad[MTCSEC_HS_MAX_LEN];
  uint8_t info[MTCSEC_MAX_INFO_LEN];
  m1_opts o = m1_defaults(f, 5);
  mtcsec_store_devstate before, after;
  size_t n, bit;
  uint32_t req = 100;
  answer a;

  /* A committed exchange first, so that the window is not empty. */
  n = simple_m1(f, 4, m1);
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), 0);
  before = store_state(f, th_dev_id);

  o.info = info;
  o.info_len = build_info(info, 1, 0x03, NULL, 0);
  n = build_m1(f, &o, m1, sizeof(m1));
  for (bit = 0; bit < n * 8; bit++) {
    memcpy(bad, m1, n);
    bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_int_equal(fx_send(f, req, bad, n, T0 + 1), 0);
    assert_int_equal(mtcsec_srv_pending(f->srv), 0);
    assert_int_equal(mtcsec_srv_commit(f->srv, T0 + 1), 0);
    assert_int_equal(fx_read(f, &a), 1);
    assert_int_equal(a.type, MTCSEC_MSG_ERR);
    assert_int_equal(a.req_id, req);
    assert_true(a.body[0] >= MTCSEC_ERRCODE_MALFORMED &&
                a.body[0] <= MTCSEC_ERRCODE_BAD_MIC);
    req++;
  }
  after = store_state(f, th_dev_id);
  assert_int_equal(before.window.top, after.window.top);
  assert_int_equal(before.window.bitmap, after.window.bitmap);
  assert_int_equal(before.next_key_id, after.next_key_id);
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 1);
  assert_int_equal(store_state(f, th_unknown_dev).window.bitmap, 0);
  /* The genuine M1 still goes through with the next key id. */
  assert_int_equal(fx_exchange(f, 2, m1, n, T0 + 2, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).key_id, 1);
}

/* --------------------------------------------------- commit and batches */

static void
test_server_concurrent_exchanges_get_distinct_key_ids(void **state) {
  fx *f = *state;
  uint8_t m1[3][MTCSEC_HS_MAX_LEN];
  size_t n[3], i;
  answer a;

  for (i = 0; i < 3; i++) {
    n[i] = simple_m1(f, 10 + i, m1[i]);
    assert_int_equal(fx_send(f, (uint32_t)i, m1[i], n[i], T0), 0);
  }
  assert_int_equal(mtcsec_srv_pending(f->srv), 3);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), 0);
  for (i = 0; i < 3; i++) {
    expect_m3(f, (uint32_t)i, &a);
    assert_int_equal(check_m3(f, &a, m1[i], n[i]).key_id, i);
  }
  assert_int_equal(store_state(f, th_dev_id).next_key_id, 3);
  /* The window is cached: one load for the device. */
  assert_int_equal(f->store.get_state_calls, 1);
}

static void test_server_take_batch(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], m1b[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1), nb = simple_m1(f, 2, m1b);
  mtcsec_srv_batch b, b2;
  answer a;

  /* An empty batch is not out. */
  assert_int_equal(mtcsec_srv_take_batch(f->srv, &b), 0);
  assert_int_equal(b.n, 0);
  assert_int_equal(mtcsec_srv_batch_done(f->srv, &b, 0, T0), 0);

  assert_int_equal(fx_send(f, 1, m1, n, T0), 0);
  assert_int_equal(mtcsec_srv_take_batch(f->srv, &b), 0);
  assert_int_equal(b.n, 1);
  assert_int_equal(mtcsec_srv_pending(f->srv), 0);
  assert_int_equal(mtcsec_srv_take_batch(f->srv, &b2),
                   MTCSEC_ERR_INVALID_STATE);
  /* New exchanges keep coming while the batch is out. */
  assert_int_equal(fx_send(f, 2, m1b, nb, T0), 0);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), MTCSEC_ERR_INVALID_STATE);
  /* The duplicate of a transaction in the batch follows it. */
  assert_int_equal(fx_send(f, 3, m1, n, T0), 0);
  assert_int_equal(
    mtcsec_store_mem_ops.commit(f->store.mem, b.txns, b.n, b.results), 0);
  assert_int_equal(mtcsec_srv_batch_done(f->srv, &b, 0, T0 + 1), 0);
  expect_m3(f, 1, &a);
  assert_int_equal(check_m3(f, &a, m1, n).key_id, 0);
  expect_m3(f, 3, &a);
  expect_none(f);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0 + 2), 0);
  expect_m3(f, 2, &a);
  assert_int_equal(check_m3(f, &a, m1b, nb).key_id, 1);
}

static void test_server_failed_batch_with_later_pending(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], m1b[MTCSEC_HS_MAX_LEN];
  uint8_t m1c[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1), nb = simple_m1(f, 2, m1b);
  size_t nc = simple_m1(f, 3, m1c);
  mtcsec_srv_batch b;
  answer a;

  assert_int_equal(fx_send(f, 1, m1, n, T0), 0); /* key 0 */
  assert_int_equal(mtcsec_srv_take_batch(f->srv, &b), 0);
  assert_int_equal(fx_send(f, 2, m1b, nb, T0), 0); /* key 1, pending */
  assert_int_equal(mtcsec_srv_batch_done(f->srv, &b, MTCSEC_ERR_STORE, T0), 0);
  expect_err(f, 1, MTCSEC_ERRCODE_INTERNAL);
  /* The pending one's nonce is still in flight: its duplicate follows. */
  assert_int_equal(fx_send(f, 4, m1b, nb, T0), 0);
  assert_int_equal(mtcsec_srv_pending(f->srv), 1);
  /* The failed nonce is usable again, with a fresh key id. */
  assert_int_equal(fx_send(f, 3, m1, n, T0), 0);
  assert_int_equal(fx_send(f, 5, m1c, nc, T0), 0);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), 0);
  expect_m3(f, 2, &a);
  assert_int_equal(check_m3(f, &a, m1b, nb).key_id, 1);
  expect_m3(f, 4, &a);
  expect_m3(f, 3, &a);
  assert_int_equal(check_m3(f, &a, m1, n).key_id, 2);
  expect_m3(f, 5, &a);
  assert_int_equal(check_m3(f, &a, m1c, nc).key_id, 3);
  assert_int_equal(store_state(f, th_dev_id).next_key_id, 4);
}

static void test_server_store_refuses_at_commit(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  mtcsec_store_txn t, *tp = &t;
  size_t n;
  int res;
  answer a;

  n = simple_m1(f, 1, m1);
  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), 0);
  /* Someone else wrote nonce 5 (key id 9) behind the core's back. */
  memset(&t, 0, sizeof(t));
  t.nonce = 5;
  memcpy(t.session.mtcd_id, th_dev_id, 8);
  t.session.key_id = 9;
  assert_int_equal(mtcsec_store_mem_ops.commit(f->store.mem, &tp, 1, &res), 0);
  assert_int_equal(res, 0);
  /* The durable check is authoritative: REPLAY, and the cache reloads. */
  n = simple_m1(f, 5, m1);
  assert_int_equal(fx_exchange(f, 2, m1, n, T0, NULL), MTCSEC_ERRCODE_REPLAY);
  n = simple_m1(f, 6, m1);
  assert_int_equal(fx_exchange(f, 3, m1, n, T0, &a), 0);
  assert_int_equal(check_m3(f, &a, m1, n).key_id, 10);
}

/* --------------------------------------------------------- output queue */

static void test_server_busy_limits(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], m1b[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1), nb = simple_m1(f, 2, m1b);

  f->cfg.max_inflight = 1;
  f->cfg.max_queued = 2;
  fx_start(f);
  assert_int_equal(fx_send(f, 1, m1, n, T0), 0);
  /* No transaction slot left: BUSY, nothing changed. */
  assert_int_equal(fx_send(f, 2, m1b, nb, T0), MTCSEC_ERR_BUSY);
  /* An ERR still fits (one place for the transaction, one for it). */
  assert_int_equal(fx_send(f, 3, m1b, 3, T0), 0);
  /* Now the queue is full, counting the promised answer. */
  assert_int_equal(fx_send(f, 4, m1b, 3, T0), MTCSEC_ERR_BUSY);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), 0);
  assert_int_equal(fx_send(f, 5, m1b, nb, T0), MTCSEC_ERR_BUSY);
  /* In the order answered: the ERR at once, the M3 at commit. */
  expect_err(f, 3, MTCSEC_ERRCODE_MALFORMED);
  expect_m3(f, 1, &(answer){0});
  /* Handed again, the refused frame goes through. */
  assert_int_equal(fx_exchange(f, 2, m1b, nb, T0, NULL), 0);
}

static void test_server_conn_closed_drops_answers(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1);
  answer a;

  assert_int_equal(fx_send_type(f, 5, th_ue_id, MTCSEC_MSG_M2, 1, m1, 3, T0),
                   0);
  assert_int_equal(fx_send_type(f, 6, th_ue_id, MTCSEC_MSG_M2, 2, m1, 3, T0),
                   0);
  assert_int_equal(fx_send_type(f, 5, th_ue_id, MTCSEC_MSG_M2, 3, m1, n, T0),
                   0);
  mtcsec_srv_conn_closed(f->srv, 5);
  /* The transaction still commits; its answer goes nowhere. */
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), 0);
  assert_int_equal(fx_read(f, &a), 1);
  assert_int_equal(a.conn, 6);
  assert_int_equal(a.req_id, 2);
  expect_none(f);
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 1);
  assert_int_equal(f->nres, 3);
  /* It is in the duplicate cache for the UE's retry. */
  assert_int_equal(fx_send_type(f, 7, th_ue_id, MTCSEC_MSG_M2, 3, m1, n, T0),
                   0);
  expect_m3(f, 3, &a);
  assert_int_equal(a.conn, 7);
}

static void test_server_write_nobuf(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], buf[16];
  size_t n = simple_m1(f, 1, m1);
  uint64_t conn = 0;
  answer a;

  assert_int_equal(fx_exchange(f, 1, m1, n, T0, NULL), 0);
  assert_int_equal(fx_send(f, 2, m1, n, T0), 0);
  assert_int_equal(mtcsec_srv_write(f->srv, buf, sizeof(buf), &conn),
                   MTCSEC_ERR_NOBUF);
  /* Still there. */
  expect_m3(f, 2, &a);
  expect_none(f);
}

/* ----------------------------------------------------------- revocation */

static void test_server_revocation_verifies(void **state) {
  fx *f = *state;
  static const uint8_t nonce[8] = {0, 0, 0, 0, 0, 0, 0, 7};
  uint8_t buf[64];
  mtcsec_revoke rv;
  const mtcsec_suite_params *sp = mtcsec_suite_get(f->suite);
  mtcsec_ssize n =
    mtcsec_srv_revocation(f->srv, buf, sizeof(buf), th_dev_id, 0x1234, nonce);

  assert_int_equal(n, MTCSEC_REVOKE_FIXED_LEN + sp->miclen);
  assert_int_equal(mtcsec_revoke_decode(&rv, buf, (size_t)n, sp->miclen), 0);
  assert_memory_equal(rv.mtcs_id, th_mtcs_id, 8);
  assert_memory_equal(rv.mtcd_id, th_dev_id, 8);
  assert_int_equal(rv.key_id, 0x1234);
  assert_memory_equal(rv.mtcd_nonce, nonce, 8);
  assert_int_equal(
    mtcsec_revoke_verify(&rv, buf, (size_t)n, f->crypto, f->suite, f->k_auth),
    0);
  assert_int_equal(
    mtcsec_srv_revocation(f->srv, buf, sizeof(buf), th_unknown_dev, 1, nonce),
    MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(mtcsec_srv_revocation(f->srv, buf, 10, th_dev_id, 1, nonce),
                   MTCSEC_ERR_NOBUF);
  f->store.fail_get_device = 1;
  assert_int_equal(
    mtcsec_srv_revocation(f->srv, buf, sizeof(buf), th_dev_id, 1, nonce),
    MTCSEC_ERR_STORE);
}

/* ------------------------------------------------------------------ misc */

static void test_server_logs_one_line_per_result(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t n = simple_m1(f, 1, m1);

  m1[n - 1] ^= 1;
  assert_int_equal(fx_exchange(f, 42, m1, n, T0, NULL), MTCSEC_ERRCODE_BAD_MIC);
  assert_int_equal(f->nlogs, 1);
  assert_non_null(strstr(f->lastlog, "ue=e0e0000000000001"));
  assert_non_null(strstr(f->lastlog, "dev=d00d000000000001"));
  assert_non_null(strstr(f->lastlog, "req=42"));
  assert_non_null(strstr(f->lastlog, "result=BAD_MIC"));
  m1[n - 1] ^= 1;
  assert_int_equal(fx_exchange(f, 43, m1, n, T0, NULL), 0);
  assert_int_equal(f->nlogs, 2);
  assert_non_null(strstr(f->lastlog, "result=OK"));
  assert_false(f->log_has_secret);
}

static void test_server_rejects_bad_arguments(void **state) {
  fx *f = *state;
  mtcsec_srv *srv = NULL;
  mtcsec_srv_config cfg = f->cfg;
  uint8_t frame[8] = {0, 5, MTCSEC_MSG_M2, 0, 0, 0, 1};

  assert_int_equal(
    mtcsec_srv_new(NULL, &cfg, f->crypto, &fx_store_ops, &f->store, NULL, NULL),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(
    mtcsec_srv_new(&srv, &cfg, NULL, &fx_store_ops, &f->store, NULL, NULL),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_null(srv);
  cfg.max_inflight = 0;
  assert_int_equal(
    mtcsec_srv_new(&srv, &cfg, f->crypto, &fx_store_ops, &f->store, NULL, NULL),
    MTCSEC_ERR_INVALID_ARGUMENT);
  cfg = f->cfg;
  cfg.max_inflight = SIZE_MAX / 2;
  assert_int_equal(
    mtcsec_srv_new(&srv, &cfg, f->crypto, &fx_store_ops, &f->store, NULL, NULL),
    MTCSEC_ERR_NOMEM);
  assert_null(srv);
  assert_int_equal(mtcsec_srv_recv(f->srv, 1, NULL, frame, 7, T0),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_srv_recv(NULL, 1, th_ue_id, frame, 7, T0),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  mtcsec_srv_del(NULL);
  /* A server with no callbacks works. */
  cfg = f->cfg;
  cfg.log = NULL;
  assert_int_equal(
    mtcsec_srv_new(&srv, &cfg, f->crypto, &fx_store_ops, &f->store, NULL, NULL),
    0);
  assert_int_equal(mtcsec_srv_recv(srv, 1, th_ue_id, frame, 7, T0), 0);
  mtcsec_srv_del(srv);
}

static void test_server_many_devices(void **state) {
  fx *f = *state;
  uint8_t m1[MTCSEC_HS_MAX_LEN], id[8];
  uint32_t i;
  answer a;

  /* Enough devices to grow the device cache several times. */
  for (i = 0; i < 300; i++) {
    m1_opts o = m1_defaults(f, 1);
    size_t n;
    memcpy(id, th_dev_id, 8);
    id[5] = 0x77;
    id[6] = (uint8_t)(i >> 8);
    id[7] = (uint8_t)i;
    fx_provision(f, id, f->suite);
    assert_int_equal(
      mtcsec_store_mem_grant(f->store.mem, id, th_ue_id, 0x01, 60), 0);
    o.mtcd_id = id;
    n = build_m1(f, &o, m1, sizeof(m1));
    assert_int_equal(fx_exchange(f, i, m1, n, T0, &a), 0);
  }
  /* Then one exchange in flight for each, committed as one batch. */
  for (i = 0; i < 300; i++) {
    m1_opts o = m1_defaults(f, 2);
    size_t n;
    memcpy(id, th_dev_id, 8);
    id[5] = 0x77;
    id[6] = (uint8_t)(i >> 8);
    id[7] = (uint8_t)i;
    o.mtcd_id = id;
    n = build_m1(f, &o, m1, sizeof(m1));
    assert_int_equal(fx_send(f, i, m1, n, T0), 0);
  }
  assert_int_equal(mtcsec_srv_pending(f->srv), 300);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), 0);
  for (i = 0; i < 300; i++) {
    expect_m3(f, i, &a);
  }
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), 600);
}

/* An allocator that can be told to fail. */
typedef struct fail_mem {
  int fail;
} fail_mem;

static void *fm_malloc(size_t size, void *ud) {
  return ((fail_mem *)ud)->fail ? NULL : malloc(size);
}
static void fm_free(void *ptr, void *ud) {
  (void)ud;
  free(ptr);
}
static void *fm_calloc(size_t n, size_t size, void *ud) {
  return ((fail_mem *)ud)->fail ? NULL : calloc(n, size);
}

static void test_server_nomem_on_cache_growth(void **state) {
  fx *f = *state;
  fail_mem fm = {0};
  mtcsec_mem mem = {&fm, fm_malloc, fm_free, fm_calloc};
  uint8_t m1[MTCSEC_HS_MAX_LEN], id[8];
  uint32_t i;
  size_t n = 0;
  int rv = 0;

  f->cfg.mem = &mem;
  fx_start(f);
  /* Allocation happens at new() only, until the device cache grows. */
  fm.fail = 1;
  for (i = 0; i < 100; i++) {
    m1_opts o = m1_defaults(f, 1);
    memcpy(id, th_dev_id, 8);
    id[5] = 0x66;
    id[7] = (uint8_t)i;
    fx_provision(f, id, f->suite);
    assert_int_equal(
      mtcsec_store_mem_grant(f->store.mem, id, th_ue_id, 0x01, 60), 0);
    o.mtcd_id = id;
    n = build_m1(f, &o, m1, sizeof(m1));
    rv = fx_send(f, i, m1, n, T0);
    if (rv != 0) {
      break;
    }
  }
  /* NOMEM: nothing answered, nothing added; later it goes through. */
  assert_int_equal(rv, MTCSEC_ERR_NOMEM);
  assert_true(i > 1);
  assert_int_equal(mtcsec_srv_pending(f->srv), i);
  expect_none(f);
  fm.fail = 0;
  assert_int_equal(fx_send(f, i, m1, n, T0), 0);
  assert_int_equal(mtcsec_srv_pending(f->srv), i + 1);
  assert_int_equal(mtcsec_srv_commit(f->srv, T0), 0);
  assert_int_equal(mtcsec_store_mem_sessions(f->store.mem), i + 1);
  /* Free it while the test's allocator is still alive. */
  mtcsec_srv_del(f->srv);
  f->srv = NULL;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup1, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
    T(test_server_issues_key),
    T(test_server_mtcs_nonce_from_provider),
    T(test_server_suites_2_and_3),
    T(test_server_err_malformed),
    T(test_server_err_malformed_duplicate_tlv),
    T(test_server_err_wrong_server),
    T(test_server_err_unknown_device),
    T(test_server_err_device_disabled),
    T(test_server_err_unsupported_suite),
    T(test_server_err_ue_id_mismatch),
    T(test_server_err_bad_mic),
    T(test_server_err_replay_same_nonce_after_ttl),
    T(test_server_err_replay_same_nonce_other_m1),
    T(test_server_replay_window),
    T(test_server_err_ue_not_authorized),
    T(test_server_req_perms_intersection),
    T(test_server_err_relay_not_authorized),
    T(test_server_err_rate_limited),
    T(test_server_rate_refunded_on_failed_commit),
    T(test_server_err_internal_failed_commit),
    T(test_server_err_internal_store_errors),
    T(test_server_check_order),
    T(test_server_duplicate_answered_with_same_m3),
    T(test_server_duplicate_ttl_not_extended),
    T(test_server_duplicate_from_other_ue_not_served),
    T(test_server_duplicate_on_new_connection),
    T(test_server_duplicate_in_flight_gets_same_m3),
    T(test_server_duplicate_in_flight_commit_fails),
    T(test_server_duplicate_cache_evicts_oldest),
    T(test_server_duplicate_cache_disabled),
    T(test_server_every_bit_flip_rejected),
    T(test_server_concurrent_exchanges_get_distinct_key_ids),
    T(test_server_take_batch),
    T(test_server_failed_batch_with_later_pending),
    T(test_server_store_refuses_at_commit),
    T(test_server_busy_limits),
    T(test_server_conn_closed_drops_answers),
    T(test_server_write_nobuf),
    T(test_server_revocation_verifies),
    T(test_server_logs_one_line_per_result),
    T(test_server_rejects_bad_arguments),
    T(test_server_many_devices),
    T(test_server_nomem_on_cache_growth),
  };
  int rv = cmocka_run_group_tests_name("unit.server", tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
