/*
 * The replay window (mtcsec_window_*) against a reference model: the set
 * of every number accepted so far and the rule of PROTOCOL.md sections 4
 * and 6 (RFC 4303 style, W = 64, the window includes the highest number
 * seen): with nothing seen any number is new; a number above top is new;
 * one in top-63 .. top is new unless seen; anything lower is a replay.
 * A few hundred thousand random operations from fixed seeds, with small
 * steps, jumps past the window, large jumps and the 2^32 and 2^64 edges.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mtcsec/mtcsec.h>

/* splitmix64 (Steele, Lea and Flood, OOPSLA 2014). */
static uint64_t rnd_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n) { return rnd_next(s) % n; }

/* ------------------------------------------------------------ the model */

/* An open-addressing hash set of uint64; a slot is in use when its
 * generation is the current one, so emptying it costs nothing. */
#define MODEL_BITS 20
#define MODEL_CAP ((size_t)1 << MODEL_BITS)

typedef struct model {
  uint64_t *key;
  uint32_t *gen;
  uint32_t cur;
  size_t count;
  int empty; /* nothing accepted yet */
  uint64_t top;
} model;

static void model_reset(model *m) {
  m->cur++;
  m->count = 0;
  m->empty = 1;
  m->top = 0;
}

static size_t model_slot(const model *m, uint64_t n) {
  size_t i = (size_t)((n * 0x9e3779b97f4a7c15u) >> (64 - MODEL_BITS));
  while (m->gen[i] == m->cur && m->key[i] != n) {
    i = (i + 1) & (MODEL_CAP - 1);
  }
  return i;
}

static int model_seen(const model *m, uint64_t n) {
  return m->gen[model_slot(m, n)] == m->cur;
}

static int model_check(const model *m, uint64_t n) {
  if (m->empty || n > m->top) {
    return 0;
  }
  if (m->top - n >= MTCSEC_WINDOW_SIZE || model_seen(m, n)) {
    return MTCSEC_ERR_REPLAY;
  }
  return 0;
}

static void model_update(model *m, uint64_t n) {
  size_t i = model_slot(m, n);
  assert_true(m->gen[i] != m->cur); /* only new numbers are added */
  assert_true(m->count < MODEL_CAP / 2);
  m->gen[i] = m->cur;
  m->key[i] = n;
  m->count++;
  if (m->empty || n > m->top) {
    m->top = n;
  }
  m->empty = 0;
}

/* ----------------------------------------------------------- the tests */

/* Numbers that sit on an edge somewhere. */
static const uint64_t edges[] = {0,
                                 1,
                                 62,
                                 63,
                                 64,
                                 65,
                                 0xffffffffu - 64,
                                 0xffffffffu - 63,
                                 0xffffffffu - 1,
                                 0xffffffffu, /* seq 2^32 - 1 (section 6) */
                                 (uint64_t)1 << 32,
                                 ((uint64_t)1 << 32) + 1,
                                 ((uint64_t)1 << 32) + 63,
                                 ((uint64_t)1 << 32) + 64,
                                 (uint64_t)1 << 63,
                                 UINT64_MAX - 64,
                                 UINT64_MAX - 63,
                                 UINT64_MAX - 1,
                                 UINT64_MAX};
#define N_EDGES (sizeof(edges) / sizeof(edges[0]))

/* A number to try next, chosen around the model's top (weights out of
 * 32).  Far jumps are rare: a top pushed near 2^64 leaves little to try. */
static uint64_t pick(uint64_t *rs, const model *m) {
  uint64_t top = m->top, d, r = rnd_below(rs, 32);
  if (r < 10) { /* at or just below the top, inside and just outside */
    d = rnd_below(rs, 70);
    return top >= d ? top - d : rnd_below(rs, 70);
  }
  if (r < 18) { /* a small step up */
    d = 1 + rnd_below(rs, 70);
    return top <= UINT64_MAX - d ? top + d : UINT64_MAX - rnd_below(rs, 3);
  }
  if (r < 20) { /* exactly out of the window, or exactly at its far edge */
    d = rnd_below(rs, 2) ? MTCSEC_WINDOW_SIZE : MTCSEC_WINDOW_SIZE - 1;
    return top >= d ? top - d : 0;
  }
  if (r < 22) { /* a jump up past the window (up to 2^34) */
    d = MTCSEC_WINDOW_SIZE + rnd_below(rs, (uint64_t)1 << 34);
    return top <= UINT64_MAX - d ? top + d : UINT64_MAX;
  }
  if (r < 24) { /* far below */
    d = MTCSEC_WINDOW_SIZE + rnd_below(rs, (uint64_t)1 << 40);
    return top >= d ? top - d : 0;
  }
  if (r < 28) { /* an edge next to the top (or, once in 4, below it), +-1 */
    d = edges[rnd_below(rs, N_EDGES)];
    if ((r == 27 && d <= top) ||
        (d <= top + ((uint64_t)1 << 34) && d + ((uint64_t)1 << 34) >= top)) {
      return d + rnd_below(rs, 3) - 1; /* wraps at 0 and 2^64 on purpose */
    }
    return top;
  }
  if (r < 30) {
    return top;
  }
  if (r == 30) { /* the same low 32 bits as top, 2^32 away */
    d = (uint64_t)1 << 32;
    return rnd_below(rs, 2) && top >= d ? top - d : top + d;
  }
  return rnd_next(rs);
}

/* Where each run starts (before any number, the window is empty). */
static const uint64_t starts[] = {0,
                                  1,
                                  1000,
                                  0xffffffffu - 100,
                                  0xffffffffu - 1,
                                  (uint64_t)1 << 32,
                                  (uint64_t)1 << 63,
                                  UINT64_MAX - 100,
                                  UINT64_MAX};
#define N_STARTS (sizeof(starts) / sizeof(starts[0]))

static int model_setup(void **state) {
  model *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    return -1;
  }
  m->key = calloc(MODEL_CAP, sizeof(*m->key));
  m->gen = calloc(MODEL_CAP, sizeof(*m->gen));
  *state = m;
  return m->key != NULL && m->gen != NULL ? 0 : -1;
}

static int model_teardown(void **state) {
  model *m = *state;
  if (m != NULL) {
    free(m->key);
    free(m->gen);
    free(m);
  }
  return 0;
}

static void test_window_matches_model(void **state) {
  model *mp = *state;
  mtcsec_window w;
  uint64_t rs = 0x57a7e, n, k;
  size_t run, op, accepted = 0, replays = 0, slides = 0, jumps = 0;
  size_t edge_hits = 0, cross32 = 0;
  for (run = 0; run < 2 * N_STARTS + 130; run++) {
    model_reset(mp);
    mtcsec_window_init(&w);
    /* An empty window takes anything, 0 included. */
    assert_int_equal(mtcsec_window_check(&w, 0), 0);
    assert_int_equal(mtcsec_window_check(&w, UINT64_MAX), 0);
    if (run < N_STARTS) {
      n = starts[run];
    } else if (run < 2 * N_STARTS) {
      n = starts[run - N_STARTS] - rnd_below(&rs, 64); /* may wrap */
    } else if (run % 2 == 0) {
      n = rnd_next(&rs);
    } else { /* just below 2^32, to cross it */
      n = ((uint64_t)1 << 32) - 1 - rnd_below(&rs, 300);
    }
    assert_int_equal(mtcsec_window_check(&w, n), model_check(mp, n));
    mtcsec_window_update(&w, n);
    model_update(mp, n);
    for (op = 0; op < 2000; op++) {
      int got, want;
      n = pick(&rs, mp);
      got = mtcsec_window_check(&w, n);
      want = model_check(mp, n);
      if (got != want) {
        fail_msg("run %zu op %zu: check(%llu) = %d, model %d (top %llu)", run,
                 op, (unsigned long long)n, got, want,
                 (unsigned long long)mp->top);
      }
      for (k = 0; k < N_EDGES; k++) {
        edge_hits += n == edges[k];
      }
      if (got != 0) {
        replays++;
        continue;
      }
      /* Most accepted numbers are marked; the others stand for messages
       * that then failed their MIC (check without update). */
      if (rnd_below(&rs, 8) != 0) {
        slides += n > mp->top;
        jumps += n > mp->top && n - mp->top >= MTCSEC_WINDOW_SIZE;
        cross32 += mp->top >> 32 == 0 && n >> 32 != 0;
        mtcsec_window_update(&w, n);
        model_update(mp, n);
        accepted++;
        assert_int_equal(mtcsec_window_check(&w, n), MTCSEC_ERR_REPLAY);
        assert_int_equal(w.top, mp->top);
      }
      /* Now and then, the whole window and just past it agree. */
      if (op % 512 == 0) {
        for (k = 0; k <= MTCSEC_WINDOW_SIZE + 2 && k <= mp->top; k++) {
          assert_int_equal(mtcsec_window_check(&w, mp->top - k),
                           model_check(mp, mp->top - k));
        }
        for (k = 1; k <= 3 && mp->top <= UINT64_MAX - k; k++) {
          assert_int_equal(mtcsec_window_check(&w, mp->top + k), 0);
        }
      }
    }
  }
  /* The operations went where they were meant to. */
  assert_true(accepted > 80000);
  assert_true(replays > 80000);
  assert_true(slides > 30000);
  assert_true(jumps > 5000);
  assert_true(cross32 > 40);
  assert_true(edge_hits > 1000);
}

/* The window is plain data: a copy (as the store persists it) behaves as
 * the original, and a marked number never comes back as new. */
static void test_window_persisted_copy_and_32bit_wrap(void **state) {
  mtcsec_window w, copy;
  uint64_t n;
  (void)state;
  mtcsec_window_init(&w);
  /* Record sequence numbers run up to 2^32 - 2 (section 6); the window
   * itself is 64-bit and must not wrap there. */
  for (n = 0xffffffffu - 70; n <= 0xffffffffu + (uint64_t)70; n += 2) {
    assert_int_equal(mtcsec_window_check(&w, n), 0);
    mtcsec_window_update(&w, n);
  }
  copy = w;
  assert_int_equal(w.top, 0xffffffffu + (uint64_t)70);
  for (n = 0xffffffffu - 70; n <= 0xffffffffu + (uint64_t)72; n++) {
    int want;
    if (n > w.top) {
      want = 0;
    } else if (w.top - n >= MTCSEC_WINDOW_SIZE) {
      want = MTCSEC_ERR_REPLAY;
    } else {
      want = (n - (0xffffffffu - 70)) % 2 == 0 ? MTCSEC_ERR_REPLAY : 0;
    }
    assert_int_equal(mtcsec_window_check(&w, n), want);
    assert_int_equal(mtcsec_window_check(&copy, n), want);
  }
  /* Numbers whose low 32 bits fall inside the window are far below it. */
  for (n = 0; n <= 72; n++) {
    assert_int_equal(mtcsec_window_check(&w, n), MTCSEC_ERR_REPLAY);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_window_matches_model, model_setup,
                                    model_teardown),
    cmocka_unit_test(test_window_persisted_copy_and_32bit_wrap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
