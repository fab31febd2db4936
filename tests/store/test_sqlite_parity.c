/*
 * The SQLite store against the in-memory store (the reference behaviour):
 * the same calls, in lockstep, must give the same return codes, the same
 * output structs and, at the end, the same sessions in the same order.
 * A scripted scenario covers each call; a seeded random walk covers the
 * window and the batches (replays inside a batch, slides, jumps).
 */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mtcsec/store.h>
#include <mtcsec/store_sqlite.h>
#include <mtcsec/codec.h>

#include "sqlite_fixture.h"

static const uint8_t mtcs_id[8] = {0x5e, 0, 0, 0, 0, 0, 0, 0x01};
#define NDEV 4 /* the last one is never provisioned */
#define NUE 2
#define NGW 2
static const uint8_t devs[NDEV][8] = {{0xd0, 0, 0, 0, 0, 0, 0, 1},
                                      {0xd0, 0, 0, 0, 0, 0, 0, 2},
                                      {0xd0, 0, 0, 0, 0, 0, 0, 3},
                                      {0xd0, 0, 0, 0, 0, 0, 0, 4}};
static const uint8_t dev_suites[NDEV] = {1, 3, 2, 1};
static const uint8_t ues[NUE][8] = {{0xe0, 0, 0, 0, 0, 0, 0, 1},
                                    {0xe0, 0, 0, 0, 0, 0, 0, 2}};
static const uint8_t gws[NGW][8] = {{0x90, 0, 0, 0, 0, 0, 0, 1},
                                    {0x90, 0, 0, 0, 0, 0, 0, 2}};
static const uint8_t psk[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* ----------------------------------------------------------- backends */

typedef struct backend {
  const char *name;
  const mtcsec_store_ops *ops;
  void *st;
  void (*add_device)(struct backend *b, const uint8_t id[8], uint8_t suite);
  int (*set_disabled)(struct backend *b, const uint8_t id[8], int disabled);
  int (*grant)(struct backend *b, const uint8_t dev[8], const uint8_t ue[8],
               uint8_t perms, uint32_t lifetime);
  int (*revoke_grant)(struct backend *b, const uint8_t dev[8],
                      const uint8_t ue[8]);
  int (*allow_relay)(struct backend *b, const uint8_t dev[8],
                     const uint8_t gw[8]);
  /* All sessions in commit order into a malloc'd array; returns count. */
  size_t (*sessions)(struct backend *b, mtcsec_session_rec **out);
} backend;

/* In-memory store. */
static void mem_add_device(backend *b, const uint8_t id[8], uint8_t suite) {
  mtcsec_store_device d;
  memset(&d, 0, sizeof(d));
  d.suite = suite;
  assert_int_equal(mtcsec_derive_device_keys(th_openssl(), suite, psk, id,
                                             mtcs_id, d.k_auth, d.k_dm),
                   0);
  assert_int_equal(mtcsec_store_mem_add_device(b->st, id, &d), 0);
}
static int mem_set_disabled(backend *b, const uint8_t id[8], int disabled) {
  return mtcsec_store_mem_set_disabled(b->st, id, disabled);
}
static int mem_grant(backend *b, const uint8_t dev[8], const uint8_t ue[8],
                     uint8_t perms, uint32_t lifetime) {
  return mtcsec_store_mem_grant(b->st, dev, ue, perms, lifetime);
}
static int mem_revoke_grant(backend *b, const uint8_t dev[8],
                            const uint8_t ue[8]) {
  return mtcsec_store_mem_revoke_grant(b->st, dev, ue);
}
static int mem_allow_relay(backend *b, const uint8_t dev[8],
                           const uint8_t gw[8]) {
  return mtcsec_store_mem_allow_relay(b->st, dev, gw);
}
static size_t mem_sessions(backend *b, mtcsec_session_rec **out) {
  size_t n = mtcsec_store_mem_sessions(b->st), i;
  *out = calloc(n + 1, sizeof(**out));
  assert_non_null(*out);
  for (i = 0; i < n; i++) {
    assert_int_equal(mtcsec_store_mem_session(b->st, i, &(*out)[i]), 0);
  }
  return n;
}

/* SQLite store. */
static void sq_add_device(backend *b, const uint8_t id[8], uint8_t suite) {
  assert_int_equal(
    mtcsec_sqlite_device_add(b->st, id, mtcs_id, suite, psk, NULL, NULL), 0);
}
static int sq_set_disabled(backend *b, const uint8_t id[8], int disabled) {
  return mtcsec_sqlite_device_disable(b->st, id, disabled);
}
static int sq_grant(backend *b, const uint8_t dev[8], const uint8_t ue[8],
                    uint8_t perms, uint32_t lifetime) {
  return mtcsec_sqlite_grant_set(b->st, ue, dev, NULL, perms, lifetime, 0, 0);
}
static int sq_revoke_grant(backend *b, const uint8_t dev[8],
                           const uint8_t ue[8]) {
  return mtcsec_sqlite_grant_del(b->st, ue, dev, NULL);
}
static int sq_allow_relay(backend *b, const uint8_t dev[8],
                          const uint8_t gw[8]) {
  int rv = mtcsec_sqlite_relay_add(b->st, gw, NULL);
  return rv != 0 ? rv : mtcsec_sqlite_relay_allow(b->st, gw, dev, NULL);
}

typedef struct sq_list {
  mtcsec_session_rec *r;
  size_t n, cap;
} sq_list;

static int sq_collect(void *ud, const mtcsec_sqlite_session *s) {
  sq_list *l = ud;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->r = realloc(l->r, l->cap * sizeof(*l->r));
    assert_non_null(l->r);
  }
  l->r[l->n++] = s->rec;
  return 0;
}
static size_t sq_sessions(backend *b, mtcsec_session_rec **out) {
  sq_list l;
  size_t i;
  memset(&l, 0, sizeof(l));
  assert_int_equal(
    mtcsec_sqlite_session_foreach(b->st, NULL, 0, sq_collect, &l), 0);
  /* newest first -> commit order */
  for (i = 0; i < l.n / 2; i++) {
    mtcsec_session_rec tmp = l.r[i];
    l.r[i] = l.r[l.n - 1 - i];
    l.r[l.n - 1 - i] = tmp;
  }
  *out = l.r != NULL ? l.r : calloc(1, sizeof(**out));
  return l.n;
}

typedef struct fx {
  char dir[SFX_PATH_MAX];
  char db[SFX_PATH_MAX];
  backend b[2];
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  mtcsec_store_mem *mem = NULL;
  assert_non_null(f);
  sfx_mkdtemp(f->dir);
  sfx_join(f->db, f->dir, "parity.db");
  assert_int_equal(mtcsec_store_mem_new(&mem, NULL), 0);
  f->b[0] = (backend){"mem",
                      &mtcsec_store_mem_ops,
                      mem,
                      mem_add_device,
                      mem_set_disabled,
                      mem_grant,
                      mem_revoke_grant,
                      mem_allow_relay,
                      mem_sessions};
  f->b[1] = (backend){"sqlite",
                      &mtcsec_sqlite_ops,
                      sfx_open(f->db, sfx_kek, MTCSEC_SQLITE_CREATE),
                      sq_add_device,
                      sq_set_disabled,
                      sq_grant,
                      sq_revoke_grant,
                      sq_allow_relay,
                      sq_sessions};
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  mtcsec_store_mem_del(f->b[0].st);
  mtcsec_sqlite_close(f->b[1].st);
  sfx_rmtree(f->dir);
  free(f);
  return 0;
}

/* --------------------------------------------------- lockstep checks */

static void same_device(fx *f, const uint8_t id[8]) {
  mtcsec_store_device d[2];
  int rv[2], i;
  for (i = 0; i < 2; i++) {
    memset(&d[i], 0, sizeof(d[i]));
    rv[i] = f->b[i].ops->get_device(f->b[i].st, id, &d[i]);
  }
  assert_int_equal(rv[0], rv[1]);
  assert_memory_equal(&d[0], &d[1], sizeof(d[0]));
}

static void same_state(fx *f, const uint8_t id[8]) {
  mtcsec_store_devstate d[2];
  int rv[2], i;
  for (i = 0; i < 2; i++) {
    memset(&d[i], 0xaa, sizeof(d[i]));
    rv[i] = f->b[i].ops->get_state(f->b[i].st, id, &d[i]);
  }
  assert_int_equal(rv[0], 0);
  assert_int_equal(rv[1], 0);
  assert_int_equal(d[0].window.top, d[1].window.top);
  assert_int_equal(d[0].window.bitmap, d[1].window.bitmap);
  assert_int_equal(d[0].next_key_id, d[1].next_key_id);
}

static int same_grant(fx *f, const uint8_t dev[8], const uint8_t ue[8]) {
  mtcsec_store_grant g[2];
  int rv[2], i;
  for (i = 0; i < 2; i++) {
    memset(&g[i], 0, sizeof(g[i]));
    rv[i] = f->b[i].ops->get_grant(f->b[i].st, dev, ue, &g[i]);
  }
  assert_int_equal(rv[0], rv[1]);
  assert_int_equal(g[0].perms, g[1].perms);
  assert_int_equal(g[0].lifetime, g[1].lifetime);
  return rv[0];
}

static int same_relay(fx *f, const uint8_t dev[8], const uint8_t gw[8]) {
  int a = f->b[0].ops->relay_allowed(f->b[0].st, dev, gw);
  int b = f->b[1].ops->relay_allowed(f->b[1].st, dev, gw);
  assert_int_equal(a, b);
  return a;
}

static void same_commit(fx *f, mtcsec_store_txn **p, size_t n) {
  int res[2][16], rv[2], i;
  size_t j;
  assert_true(n <= 16);
  for (i = 0; i < 2; i++) {
    memset(res[i], 0x55, sizeof(res[i]));
    rv[i] = f->b[i].ops->commit(f->b[i].st, p, n, res[i]);
  }
  assert_int_equal(rv[0], 0);
  assert_int_equal(rv[1], 0);
  for (j = 0; j < n; j++) {
    assert_int_equal(res[0][j], res[1][j]);
  }
}

static void same_sessions(fx *f, size_t expect) {
  mtcsec_session_rec *r[2];
  size_t n[2], i;
  for (i = 0; i < 2; i++) {
    n[i] = f->b[i].sessions(&f->b[i], &r[i]);
  }
  assert_int_equal(n[0], n[1]);
  if (expect != (size_t)-1) {
    assert_int_equal(n[0], expect);
  }
  for (i = 0; i < n[0]; i++) {
    assert_memory_equal(&r[0][i], &r[1][i], sizeof(r[0][i]));
  }
  free(r[0]);
  free(r[1]);
}

static mtcsec_store_txn make_txn(size_t dev, size_t ue, uint64_t nonce,
                                 uint16_t key_id, uint8_t npath) {
  mtcsec_store_txn t;
  uint8_t i;
  memset(&t, 0, sizeof(t));
  t.nonce = nonce;
  memcpy(t.session.mtcd_id, devs[dev], 8);
  memcpy(t.session.ueid, ues[ue], 8);
  mtcsec_put_u64(t.session.mtcd_nonce, nonce);
  mtcsec_put_u64(t.session.mtcs_nonce, ~nonce);
  t.session.suite = dev_suites[dev];
  t.session.perms = (uint8_t)(1 + (nonce & 7));
  t.session.key_id = key_id;
  t.session.lifetime = (uint32_t)(60 + key_id);
  t.session.issued_at = nonce * 3;
  t.session.npath = npath;
  for (i = 0; i < npath; i++) {
    memcpy(t.session.path + 8 * i, gws[i % NGW], 8);
  }
  return t;
}

/* ------------------------------------------------------------ tests */

static void test_parity_scripted(void **state) {
  fx *f = *state;
  mtcsec_store_txn t[4], *p[4];
  size_t i, d;

  for (d = 0; d < NDEV; d++) {
    same_device(f, devs[d]); /* NOT_FOUND */
    same_state(f, devs[d]);  /* empty */
  }
  for (i = 0; i < 2; i++) {
    for (d = 0; d + 1 < NDEV; d++) {
      f->b[i].add_device(&f->b[i], devs[d], dev_suites[d]);
    }
  }
  for (d = 0; d < NDEV; d++) {
    same_device(f, devs[d]);
  }
  /* disable / enable / unknown */
  assert_int_equal(f->b[0].set_disabled(&f->b[0], devs[0], 1),
                   f->b[1].set_disabled(&f->b[1], devs[0], 1));
  same_device(f, devs[0]);
  assert_int_equal(f->b[0].set_disabled(&f->b[0], devs[0], 0),
                   f->b[1].set_disabled(&f->b[1], devs[0], 0));
  same_device(f, devs[0]);
  assert_int_equal(f->b[0].set_disabled(&f->b[0], devs[3], 1),
                   MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(f->b[1].set_disabled(&f->b[1], devs[3], 1),
                   MTCSEC_ERR_NOT_FOUND);
  /* grants */
  assert_int_equal(same_grant(f, devs[0], ues[0]), MTCSEC_ERR_NOT_FOUND);
  for (i = 0; i < 2; i++) {
    assert_int_equal(f->b[i].grant(&f->b[i], devs[0], ues[0], 3, 600), 0);
  }
  assert_int_equal(same_grant(f, devs[0], ues[0]), 0);
  assert_int_equal(same_grant(f, devs[0], ues[1]), MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(same_grant(f, devs[1], ues[0]), MTCSEC_ERR_NOT_FOUND);
  for (i = 0; i < 2; i++) {
    assert_int_equal(f->b[i].grant(&f->b[i], devs[0], ues[0], 0x0f, 5), 0);
  }
  assert_int_equal(same_grant(f, devs[0], ues[0]), 0);
  for (i = 0; i < 2; i++) {
    assert_int_equal(f->b[i].revoke_grant(&f->b[i], devs[0], ues[0]), 0);
    assert_int_equal(f->b[i].revoke_grant(&f->b[i], devs[0], ues[0]),
                     MTCSEC_ERR_NOT_FOUND);
  }
  assert_int_equal(same_grant(f, devs[0], ues[0]), MTCSEC_ERR_NOT_FOUND);
  /* relays */
  assert_int_equal(same_relay(f, devs[0], gws[0]), MTCSEC_ERR_NOT_FOUND);
  for (i = 0; i < 2; i++) {
    assert_int_equal(f->b[i].allow_relay(&f->b[i], devs[0], gws[0]), 0);
  }
  assert_int_equal(same_relay(f, devs[0], gws[0]), 0);
  assert_int_equal(same_relay(f, devs[0], gws[1]), MTCSEC_ERR_NOT_FOUND);
  assert_int_equal(same_relay(f, devs[1], gws[0]), MTCSEC_ERR_NOT_FOUND);
  /* commit: two txns of one device, the second replays the first */
  t[0] = make_txn(0, 0, 5, 0, 0);
  t[1] = make_txn(0, 1, 5, 1, 1);
  t[2] = make_txn(1, 0, 5, 0, 2);
  t[3] = make_txn(3, 0, 0, 9, 0); /* a device the store does not know */
  for (i = 0; i < 4; i++) {
    p[i] = &t[i];
  }
  same_commit(f, p, 4);
  for (d = 0; d < NDEV; d++) {
    same_state(f, devs[d]);
  }
  same_sessions(f, 3);
}

/* xorshift64*: a fixed seed makes every run identical. */
static uint64_t rnd(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545f4914f6cdd1dULL;
}

static void test_parity_random_walk(void **state) {
  fx *f = *state;
  uint64_t seed = 0x9e3779b97f4a7c15ULL, cur[NDEV] = {0};
  mtcsec_store_txn t[16], *p[16];
  size_t step, i, d;

  for (i = 0; i < 2; i++) {
    for (d = 0; d + 1 < NDEV; d++) {
      f->b[i].add_device(&f->b[i], devs[d], dev_suites[d]);
    }
  }
  for (step = 0; step < 1500; step++) {
    uint64_t r = rnd(&seed);
    size_t dev = (size_t)(r >> 8) % NDEV, ue = (size_t)(r >> 16) % NUE;
    size_t gw = (size_t)(r >> 20) % NGW;
    switch (r % 10) {
    case 0:
      same_device(f, devs[dev]);
      break;
    case 1:
      same_state(f, devs[dev]);
      break;
    case 2: {
      uint8_t perms = (uint8_t)(r >> 24);
      uint32_t life = (uint32_t)(r >> 32);
      for (i = 0; i < 2; i++) {
        assert_int_equal(
          f->b[i].grant(&f->b[i], devs[dev], ues[ue], perms, life), 0);
      }
      break;
    }
    case 3:
      assert_int_equal(f->b[0].revoke_grant(&f->b[0], devs[dev], ues[ue]),
                       f->b[1].revoke_grant(&f->b[1], devs[dev], ues[ue]));
      break;
    case 4:
      (void)same_grant(f, devs[dev], ues[ue]);
      break;
    case 5:
      for (i = 0; i < 2; i++) {
        assert_int_equal(f->b[i].allow_relay(&f->b[i], devs[dev], gws[gw]), 0);
      }
      break;
    case 6:
      (void)same_relay(f, devs[dev], gws[gw]);
      break;
    case 7:
      if (dev + 1 < NDEV) {
        int dis = (int)((r >> 40) & 1);
        assert_int_equal(f->b[0].set_disabled(&f->b[0], devs[dev], dis),
                         f->b[1].set_disabled(&f->b[1], devs[dev], dis));
      }
      break;
    default: {
      /* A batch of 1..16 over the devices: around the top (replays and
       * in-window), slides, jumps past the window, and the far end of the
       * 64-bit space. */
      size_t n = 1 + (size_t)((r >> 24) % 16);
      for (i = 0; i < n; i++) {
        uint64_t q = rnd(&seed);
        size_t dv = (size_t)(q % NDEV);
        uint64_t nonce;
        switch ((q >> 8) % 20) {
        case 0:
          nonce = cur[dv] + 64 + (q >> 16) % 8;
          break;
        case 1:
          nonce = UINT64_MAX - (q >> 16) % 100;
          break;
        case 2:
          nonce = (q >> 16) % 300;
          break;
        default:
          nonce = cur[dv] + (q >> 16) % 8;
          nonce = nonce >= 5 ? nonce - 5 : 0;
          break;
        }
        if (nonce > cur[dv]) {
          cur[dv] = nonce;
        }
        t[i] = make_txn(dv, (size_t)(q >> 40) % NUE, nonce, (uint16_t)(q >> 48),
                        (uint8_t)((q >> 32) % 4));
        p[i] = &t[i];
      }
      same_commit(f, p, n);
      break;
    }
    }
  }
  for (d = 0; d < NDEV; d++) {
    same_device(f, devs[d]);
    same_state(f, devs[d]);
  }
  same_sessions(f, (size_t)-1);
  /* And the same after a reopen: all of it was durable. */
  mtcsec_sqlite_close(f->b[1].st);
  f->b[1].st = sfx_open(f->db, sfx_kek, 0);
  for (d = 0; d < NDEV; d++) {
    same_device(f, devs[d]);
    same_state(f, devs[d]);
  }
  same_sessions(f, (size_t)-1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_parity_scripted, setup, teardown),
    cmocka_unit_test_setup_teardown(test_parity_random_walk, setup, teardown),
  };
  int rv =
    cmocka_run_group_tests_name("store.sqlite_parity", tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
