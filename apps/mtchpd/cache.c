/*
 * The (IMSI, RAND) -> (CK, IK) table (CELLULAR.md: "for each vector it keeps
 * (IMSI, RAND) -> (CK, IK) for a bounded time").  A ring of vector_cache_max
 * entries in issue order: when full, the oldest entry is zeroized and
 * reused; entries older than vector_lifetime are never returned.  Because
 * every entry has the same lifetime, issue order is also expiry order, so a
 * lookup walks from the newest entry and stops at the first expired one.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "mtchpd.h"

int hp_cache_init(hp_cache *c, size_t cap, uint32_t lifetime_s) {
  memset(c, 0, sizeof(*c));
  if (cap == 0 || pthread_mutex_init(&c->mu, NULL) != 0) {
    return -1;
  }
  c->v = calloc(cap, sizeof(*c->v));
  if (c->v == NULL) {
    pthread_mutex_destroy(&c->mu);
    return -1;
  }
  c->cap = cap;
  c->lifetime_ms = lifetime_s * 1000u;
  return 0;
}

void hp_cache_free(hp_cache *c) {
  if (c->v == NULL) {
    return;
  }
  mtcsec_zeroize(c->v, c->cap * sizeof(*c->v));
  free(c->v);
  c->v = NULL;
  pthread_mutex_destroy(&c->mu);
}

void hp_cache_put(hp_cache *c, const char *imsi,
                  const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                  const uint8_t ck[MTCSEC_3GPP_CK_LEN],
                  const uint8_t ik[MTCSEC_3GPP_IK_LEN], mtcsec_tstamp now) {
  hp_vec *e;
  pthread_mutex_lock(&c->mu);
  e = &c->v[c->head];
  mtcsec_zeroize(e, sizeof(*e));
  snprintf(e->imsi, sizeof(e->imsi), "%s", imsi);
  memcpy(e->rand, rand, MTCSEC_3GPP_RAND_LEN);
  memcpy(e->ck, ck, MTCSEC_3GPP_CK_LEN);
  memcpy(e->ik, ik, MTCSEC_3GPP_IK_LEN);
  e->expires = now + c->lifetime_ms;
  c->head = (c->head + 1) % c->cap;
  if (c->count < c->cap) {
    c->count++;
  }
  pthread_mutex_unlock(&c->mu);
}

int hp_cache_get(hp_cache *c, const char *imsi,
                 const uint8_t rand[MTCSEC_3GPP_RAND_LEN], mtcsec_tstamp now,
                 uint8_t ck[MTCSEC_3GPP_CK_LEN],
                 uint8_t ik[MTCSEC_3GPP_IK_LEN]) {
  size_t i, idx;
  int rv = MTCSEC_ERR_NOT_FOUND;
  pthread_mutex_lock(&c->mu);
  for (i = 0; i < c->count; i++) {
    idx = (c->head + c->cap - 1 - i) % c->cap;
    if (c->v[idx].expires <= now) {
      /* This one and every older one are expired: an expired match is
       * reported as such (still 404 to the client, but logged apart). */
      size_t j;
      for (j = i; j < c->count; j++) {
        size_t k = (c->head + c->cap - 1 - j) % c->cap;
        if (memcmp(c->v[k].rand, rand, MTCSEC_3GPP_RAND_LEN) == 0 &&
            strcmp(c->v[k].imsi, imsi) == 0) {
          rv = MTCSEC_ERR_EXPIRED;
          break;
        }
      }
      break;
    }
    if (memcmp(c->v[idx].rand, rand, MTCSEC_3GPP_RAND_LEN) == 0 &&
        strcmp(c->v[idx].imsi, imsi) == 0) {
      memcpy(ck, c->v[idx].ck, MTCSEC_3GPP_CK_LEN);
      memcpy(ik, c->v[idx].ik, MTCSEC_3GPP_IK_LEN);
      rv = 0;
      break;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return rv;
}
