/*
 * The (IMSI, RAND) -> (CK, IK) table (CELLULAR.md: "for each vector it keeps
 * (IMSI, RAND) -> (CK, IK) for a bounded time").
 *
 * Storage is a ring of vector_cache_max slots in issue order: when full,
 * the oldest slot is zeroized and reused, so the size is bounded.  A
 * chained hash index (bucket heads, a `next` index in each slot) finds an
 * (IMSI, RAND) in O(1) expected time instead of walking the ring.
 *
 * Expiry: every entry lives vector_lifetime (a restart-only key), so issue
 * order is expiry order and the live entries are always the newest `live`
 * slots before head.  hp_cache_expire() walks from the oldest live slot
 * while it is expired and zeroizes its CK and IK at once; the (IMSI, RAND)
 * stay in the index until the slot is reused, so a late K_UP request is
 * told "expired" rather than "unknown".  IMSI and RAND are not secrets
 * (RAND crosses the radio in clear, TS 33.102 6.3.3).
 *
 * A vector whose CK (or Kc) went to the SGSN (a normal subscriber's) is
 * kept as (IMSI, RAND) and the flag ck_released only, with no CK or IK:
 * K_UP = KDF(CK || IK, ...) of such a vector is known to the visited SGSN,
 * so it is never served, and the K_UP service says why (403 ck_released)
 * instead of 404.
 *
 * The hash is FNV-1a over RAND || IMSI.  RANDs are 128 random bits chosen
 * by our AuC or the upstream HLR (TS 33.102 6.3.2), never by a client, so
 * nobody can aim at one chain.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtchpd.h"

#define CACHE_MIN_BUCKETS 16u

static uint32_t cache_hash(const char *imsi,
                           const uint8_t rand[MTCSEC_3GPP_RAND_LEN]) {
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < MTCSEC_3GPP_RAND_LEN; i++) {
    h = (h ^ rand[i]) * 16777619u;
  }
  for (i = 0; imsi[i] != '\0'; i++) {
    h = (h ^ (uint8_t)imsi[i]) * 16777619u;
  }
  return h;
}

int hp_cache_init(hp_cache *c, size_t cap, uint32_t lifetime_s) {
  size_t nb = CACHE_MIN_BUCKETS, i;
  memset(c, 0, sizeof(*c));
  if (cap == 0 || cap > (size_t)1 << 31) {
    return -1;
  }
  /* At least one bucket per slot: chains stay about one long. */
  while (nb < cap) {
    nb <<= 1;
  }
  if (pthread_mutex_init(&c->mu, NULL) != 0) {
    return -1;
  }
  c->v = calloc(cap, sizeof(*c->v));
  c->bucket = malloc(nb * sizeof(*c->bucket));
  if (c->v == NULL || c->bucket == NULL) {
    free(c->v);
    free(c->bucket);
    c->v = NULL;
    c->bucket = NULL;
    pthread_mutex_destroy(&c->mu);
    return -1;
  }
  for (i = 0; i < nb; i++) {
    c->bucket[i] = HP_VEC_NIL;
  }
  c->cap = cap;
  c->mask = (uint32_t)(nb - 1);
  c->lifetime_ms = lifetime_s * 1000u;
  return 0;
}

void hp_cache_free(hp_cache *c) {
  if (c->v == NULL) {
    return;
  }
  mtcsec_zeroize(c->v, c->cap * sizeof(*c->v));
  free(c->v);
  free(c->bucket);
  c->v = NULL;
  c->bucket = NULL;
  pthread_mutex_destroy(&c->mu);
}

/* Removes slot idx from its chain (the caller holds the mutex). */
static void cache_unlink(hp_cache *c, uint32_t idx) {
  uint32_t *p = &c->bucket[c->v[idx].hash & c->mask];
  while (*p != HP_VEC_NIL) {
    if (*p == idx) {
      *p = c->v[idx].next;
      return;
    }
    p = &c->v[*p].next;
  }
}

/* Zeroizes the keys of every live entry expired at now, oldest first. */
static void cache_expire_locked(hp_cache *c, mtcsec_tstamp now) {
  while (c->live > 0) {
    hp_vec *e = &c->v[(c->head + c->cap - c->live) % c->cap];
    if (e->expires > now) {
      break;
    }
    mtcsec_zeroize(e->ck, sizeof(e->ck));
    mtcsec_zeroize(e->ik, sizeof(e->ik));
    e->state = HP_VEC_EXPIRED;
    c->live--;
  }
}

void hp_cache_put(hp_cache *c, const char *imsi,
                  const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                  const uint8_t ck[MTCSEC_3GPP_CK_LEN],
                  const uint8_t ik[MTCSEC_3GPP_IK_LEN], unsigned flags,
                  mtcsec_tstamp now) {
  uint32_t idx, h = cache_hash(imsi, rand);
  hp_vec *e;

  pthread_mutex_lock(&c->mu);
  cache_expire_locked(c, now);
  idx = (uint32_t)c->head;
  e = &c->v[idx];
  if (e->state != HP_VEC_FREE) {
    /* The oldest slot; it is still live only when every slot is. */
    cache_unlink(c, idx);
    if (e->state == HP_VEC_LIVE) {
      c->live--;
    }
  }
  mtcsec_zeroize(e, sizeof(*e));
  snprintf(e->imsi, sizeof(e->imsi), "%s", imsi);
  memcpy(e->rand, rand, MTCSEC_3GPP_RAND_LEN);
  if (flags & HP_VEC_CK_RELEASED) {
    e->ck_released = 1; /* CK and IK stay zero: nothing to serve */
  } else {
    memcpy(e->ck, ck, MTCSEC_3GPP_CK_LEN);
    memcpy(e->ik, ik, MTCSEC_3GPP_IK_LEN);
  }
  e->expires = now + c->lifetime_ms;
  e->hash = h;
  e->state = HP_VEC_LIVE;
  /* At the head of its chain: a duplicate (IMSI, RAND) finds the newest. */
  e->next = c->bucket[h & c->mask];
  c->bucket[h & c->mask] = idx;
  c->head = (c->head + 1) % c->cap;
  c->live++;
  pthread_mutex_unlock(&c->mu);
}

int hp_cache_get(hp_cache *c, const char *imsi,
                 const uint8_t rand[MTCSEC_3GPP_RAND_LEN], mtcsec_tstamp now,
                 uint8_t ck[MTCSEC_3GPP_CK_LEN],
                 uint8_t ik[MTCSEC_3GPP_IK_LEN]) {
  uint32_t h = cache_hash(imsi, rand), idx;
  int rv = MTCSEC_ERR_NOT_FOUND;

  pthread_mutex_lock(&c->mu);
  cache_expire_locked(c, now);
  for (idx = c->bucket[h & c->mask]; idx != HP_VEC_NIL; idx = c->v[idx].next) {
    const hp_vec *e = &c->v[idx];
    if (e->hash != h || memcmp(e->rand, rand, MTCSEC_3GPP_RAND_LEN) != 0 ||
        strcmp(e->imsi, imsi) != 0) {
      continue;
    }
    if (e->ck_released) {
      /* Live or expired: this vector is never served. */
      rv = MTCSEC_ERR_FORBIDDEN;
    } else if (e->state == HP_VEC_LIVE) {
      memcpy(ck, e->ck, MTCSEC_3GPP_CK_LEN);
      memcpy(ik, e->ik, MTCSEC_3GPP_IK_LEN);
      rv = 0;
    } else {
      /* Still 404 to the client, but logged apart. */
      rv = MTCSEC_ERR_EXPIRED;
    }
    break;
  }
  pthread_mutex_unlock(&c->mu);
  return rv;
}

size_t hp_cache_expire(hp_cache *c, mtcsec_tstamp now) {
  size_t n;
  pthread_mutex_lock(&c->mu);
  cache_expire_locked(c, now);
  n = c->live;
  pthread_mutex_unlock(&c->mu);
  return n;
}
