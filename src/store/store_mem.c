/*
 * In-memory store (store.h) for tests and benchmarks.
 *
 * Devices, durable device states, grants and relays live in small
 * open-addressing hash maps; sessions in an array in commit order.  Nothing
 * survives mtcsec_store_mem_del(), which zeroizes every device record (K_auth
 * and K_dm).  Grants and relays have no validity period here: they are valid
 * until removed.  Not thread-safe: a test that commits from another thread
 * must not call the store from two threads at once.
 */
#include <string.h>

#include <mtcsec/store.h>

enum { MAP_EMPTY = 0, MAP_USED = 1, MAP_TOMB = 2 };

#define MAP_KEY_MAX (2 * MTCSEC_ID_LEN)
#define MAP_INIT_CAP 16

typedef struct mem_slot {
  uint8_t key[MAP_KEY_MAX];
  uint8_t state;
  void *val; /* vsize bytes from the allocator; NULL when vsize is 0 */
} mem_slot;

/* Linear probing with tombstones; keys of klen bytes. */
typedef struct mem_map {
  mem_slot *slots;
  size_t cap; /* 0 or a power of two */
  size_t n;
  size_t tombs;
  size_t klen;
  size_t vsize;
} mem_map;

struct mtcsec_store_mem {
  mtcsec_mem mem;
  mem_map devices; /* MTCdID -> mtcsec_store_device */
  mem_map states;  /* MTCdID -> mtcsec_store_devstate */
  mem_map grants;  /* MTCdID || UEID -> mtcsec_store_grant */
  mem_map relays;  /* MTCdID || GWID -> (nothing) */
  mtcsec_session_rec *sessions;
  size_t nsessions;
  size_t capsessions;
  unsigned fail_commits;
};

/* ---------------------------------------------------------------- map */

static size_t map_hash(const uint8_t *key, size_t klen) {
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
  size_t i;
  for (i = 0; i < klen; i++) {
    h ^= key[i];
    h *= 0x100000001b3ULL;
  }
  return (size_t)(h ^ (h >> 32));
}

static void map_init(mem_map *m, size_t klen, size_t vsize) {
  memset(m, 0, sizeof(*m));
  m->klen = klen;
  m->vsize = vsize;
}

static mem_slot *map_find(const mem_map *m, const uint8_t *key) {
  size_t i;
  if (m->cap == 0) {
    return NULL;
  }
  i = map_hash(key, m->klen) & (m->cap - 1);
  for (;;) {
    mem_slot *s = &m->slots[i];
    if (s->state == MAP_EMPTY) {
      return NULL;
    }
    if (s->state == MAP_USED && memcmp(s->key, key, m->klen) == 0) {
      return s;
    }
    i = (i + 1) & (m->cap - 1);
  }
}

/* Rebuilds m with newcap slots (drops tombstones). */
static int map_rehash(const mtcsec_mem *mem, mem_map *m, size_t newcap) {
  mem_slot *ns;
  size_t i;

  if (newcap == 0 || newcap > SIZE_MAX / sizeof(*ns)) {
    return MTCSEC_ERR_NOMEM;
  }
  ns = mem->calloc(newcap, sizeof(*ns), mem->user_data);
  if (ns == NULL) {
    return MTCSEC_ERR_NOMEM;
  }
  for (i = 0; i < m->cap; i++) {
    size_t j;
    if (m->slots[i].state != MAP_USED) {
      continue;
    }
    j = map_hash(m->slots[i].key, m->klen) & (newcap - 1);
    while (ns[j].state != MAP_EMPTY) {
      j = (j + 1) & (newcap - 1);
    }
    ns[j] = m->slots[i];
  }
  if (m->slots != NULL) {
    mem->free(m->slots, mem->user_data);
  }
  m->slots = ns;
  m->cap = newcap;
  m->tombs = 0;
  return 0;
}

/*
 * Finds key or inserts it with a zeroed value.  *pval gets the value (NULL
 * when vsize is 0).  Returns 0 or NOMEM (nothing changed).
 */
static int map_put(const mtcsec_mem *mem, mem_map *m, const uint8_t *key,
                   void **pval) {
  mem_slot *s = map_find(m, key);
  void *val = NULL;
  size_t i;
  int rv;

  if (s != NULL) {
    *pval = s->val;
    return 0;
  }
  if ((m->n + m->tombs + 1) * 4 > m->cap * 3) {
    /* Grow when mostly live, else just sweep the tombstones. */
    size_t newcap = m->cap == 0               ? MAP_INIT_CAP
                    : (m->n + 1) * 2 > m->cap ? m->cap * 2
                                              : m->cap;
    rv = map_rehash(mem, m, newcap);
    if (rv != 0) {
      return rv;
    }
  }
  if (m->vsize != 0) {
    val = mem->calloc(1, m->vsize, mem->user_data);
    if (val == NULL) {
      return MTCSEC_ERR_NOMEM;
    }
  }
  i = map_hash(key, m->klen) & (m->cap - 1);
  while (m->slots[i].state == MAP_USED) {
    i = (i + 1) & (m->cap - 1);
  }
  s = &m->slots[i];
  if (s->state == MAP_TOMB) {
    m->tombs--;
  }
  memcpy(s->key, key, m->klen);
  s->state = MAP_USED;
  s->val = val;
  m->n++;
  *pval = val;
  return 0;
}

static void map_slot_free(const mtcsec_mem *mem, const mem_map *m,
                          mem_slot *s) {
  if (s->val != NULL) {
    mtcsec_zeroize(s->val, m->vsize);
    mem->free(s->val, mem->user_data);
  }
  mtcsec_zeroize(s->key, sizeof(s->key));
  s->val = NULL;
}

static int map_del(const mtcsec_mem *mem, mem_map *m, const uint8_t *key) {
  mem_slot *s = map_find(m, key);
  if (s == NULL) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  map_slot_free(mem, m, s);
  s->state = MAP_TOMB;
  m->n--;
  m->tombs++;
  return 0;
}

static void map_free(const mtcsec_mem *mem, mem_map *m) {
  size_t i;
  for (i = 0; i < m->cap; i++) {
    if (m->slots[i].state == MAP_USED) {
      map_slot_free(mem, m, &m->slots[i]);
    }
  }
  if (m->slots != NULL) {
    mem->free(m->slots, mem->user_data);
  }
  memset(m, 0, sizeof(*m));
}

static void pair_key(uint8_t key[MAP_KEY_MAX], const uint8_t *a,
                     const uint8_t *b) {
  memcpy(key, a, MTCSEC_ID_LEN);
  memcpy(key + MTCSEC_ID_LEN, b, MTCSEC_ID_LEN);
}

/* ---------------------------------------------------------------- ops */

static int mem_get_device(void *vst, const uint8_t id[MTCSEC_ID_LEN],
                          mtcsec_store_device *out) {
  mtcsec_store_mem *st = vst;
  const mem_slot *s;
  if (st == NULL || id == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = map_find(&st->devices, id);
  if (s == NULL) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  memcpy(out, s->val, sizeof(*out));
  return 0;
}

static int mem_get_state(void *vst, const uint8_t id[MTCSEC_ID_LEN],
                         mtcsec_store_devstate *out) {
  mtcsec_store_mem *st = vst;
  const mem_slot *s;
  if (st == NULL || id == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = map_find(&st->states, id);
  if (s == NULL) {
    memset(out, 0, sizeof(*out));
    mtcsec_window_init(&out->window);
    return 0;
  }
  memcpy(out, s->val, sizeof(*out));
  return 0;
}

static int mem_get_grant(void *vst, const uint8_t dev[MTCSEC_ID_LEN],
                         const uint8_t ue[MTCSEC_ID_LEN],
                         mtcsec_store_grant *out) {
  mtcsec_store_mem *st = vst;
  uint8_t key[MAP_KEY_MAX];
  const mem_slot *s;
  if (st == NULL || dev == NULL || ue == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  pair_key(key, dev, ue);
  s = map_find(&st->grants, key);
  if (s == NULL) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  memcpy(out, s->val, sizeof(*out));
  return 0;
}

static int mem_relay_allowed(void *vst, const uint8_t dev[MTCSEC_ID_LEN],
                             const uint8_t gw[MTCSEC_ID_LEN]) {
  mtcsec_store_mem *st = vst;
  uint8_t key[MAP_KEY_MAX];
  if (st == NULL || dev == NULL || gw == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  pair_key(key, dev, gw);
  return map_find(&st->relays, key) != NULL ? 0 : MTCSEC_ERR_NOT_FOUND;
}

/*
 * Applies the batch in order.  Everything that can fail (memory) is reserved
 * first, so a failure writes nothing observable: a state entry created for a
 * device never seen is empty, which reads exactly like no entry.
 */
static int mem_commit(void *vst, mtcsec_store_txn *const *txns, size_t n,
                      int *results) {
  mtcsec_store_mem *st = vst;
  size_t i;
  void *val;

  if (st == NULL || (n != 0 && (txns == NULL || results == NULL))) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (st->fail_commits > 0) {
    st->fail_commits--;
    return MTCSEC_ERR_STORE;
  }
  for (i = 0; i < n; i++) {
    if (txns[i] == NULL) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
  }
  if (n > st->capsessions - st->nsessions) {
    size_t cap = st->capsessions != 0 ? st->capsessions : 16;
    mtcsec_session_rec *ns;
    while (cap - st->nsessions < n) {
      if (cap > SIZE_MAX / 2 / sizeof(*ns)) {
        return MTCSEC_ERR_STORE;
      }
      cap *= 2;
    }
    ns = st->mem.calloc(cap, sizeof(*ns), st->mem.user_data);
    if (ns == NULL) {
      return MTCSEC_ERR_STORE;
    }
    if (st->sessions != NULL) {
      memcpy(ns, st->sessions, st->nsessions * sizeof(*ns));
      st->mem.free(st->sessions, st->mem.user_data);
    }
    st->sessions = ns;
    st->capsessions = cap;
  }
  for (i = 0; i < n; i++) {
    if (map_put(&st->mem, &st->states, txns[i]->session.mtcd_id, &val) != 0) {
      return MTCSEC_ERR_STORE;
    }
  }
  for (i = 0; i < n; i++) {
    const mtcsec_store_txn *t = txns[i];
    const mem_slot *s = map_find(&st->states, t->session.mtcd_id);
    mtcsec_store_devstate *ds;
    if (s == NULL) {
      return MTCSEC_ERR_STORE; /* cannot happen: reserved above */
    }
    ds = s->val;
    /* The authoritative check (section 4). */
    if (mtcsec_window_check(&ds->window, t->nonce) != 0) {
      results[i] = MTCSEC_ERR_REPLAY;
      continue;
    }
    mtcsec_window_update(&ds->window, t->nonce);
    ds->next_key_id = (uint16_t)(t->session.key_id + 1);
    st->sessions[st->nsessions++] = t->session;
    results[i] = 0;
  }
  return 0;
}

const mtcsec_store_ops mtcsec_store_mem_ops = {
  mem_get_device,    mem_get_state, mem_get_grant,
  mem_relay_allowed, mem_commit,    NULL};

/* ----------------------------------------------------------- public */

int mtcsec_store_mem_new(mtcsec_store_mem **pst, const mtcsec_mem *mem) {
  mtcsec_store_mem *st;
  if (pst == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  *pst = NULL;
  if (mem == NULL) {
    mem = mtcsec_mem_default();
  }
  st = mem->calloc(1, sizeof(*st), mem->user_data);
  if (st == NULL) {
    return MTCSEC_ERR_NOMEM;
  }
  st->mem = *mem;
  map_init(&st->devices, MTCSEC_ID_LEN, sizeof(mtcsec_store_device));
  map_init(&st->states, MTCSEC_ID_LEN, sizeof(mtcsec_store_devstate));
  map_init(&st->grants, MAP_KEY_MAX, sizeof(mtcsec_store_grant));
  map_init(&st->relays, MAP_KEY_MAX, 0);
  *pst = st;
  return 0;
}

void mtcsec_store_mem_del(mtcsec_store_mem *st) {
  mtcsec_mem mem;
  if (st == NULL) {
    return;
  }
  mem = st->mem;
  map_free(&mem, &st->devices);
  map_free(&mem, &st->states);
  map_free(&mem, &st->grants);
  map_free(&mem, &st->relays);
  if (st->sessions != NULL) {
    mtcsec_zeroize(st->sessions, st->capsessions * sizeof(*st->sessions));
    mem.free(st->sessions, mem.user_data);
  }
  mtcsec_zeroize(st, sizeof(*st));
  mem.free(st, mem.user_data);
}

int mtcsec_store_mem_add_device(mtcsec_store_mem *st,
                                const uint8_t id[MTCSEC_ID_LEN],
                                const mtcsec_store_device *dev) {
  void *val;
  int rv;
  if (st == NULL || id == NULL || dev == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = map_put(&st->mem, &st->devices, id, &val);
  if (rv != 0) {
    return rv;
  }
  mtcsec_zeroize(val, sizeof(mtcsec_store_device)); /* the old keys */
  memcpy(val, dev, sizeof(*dev));
  return 0;
}

int mtcsec_store_mem_set_disabled(mtcsec_store_mem *st,
                                  const uint8_t id[MTCSEC_ID_LEN],
                                  int disabled) {
  mem_slot *s;
  if (st == NULL || id == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = map_find(&st->devices, id);
  if (s == NULL) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  ((mtcsec_store_device *)s->val)->disabled = (uint8_t)(disabled != 0);
  return 0;
}

int mtcsec_store_mem_grant(mtcsec_store_mem *st,
                           const uint8_t dev[MTCSEC_ID_LEN],
                           const uint8_t ue[MTCSEC_ID_LEN], uint8_t perms,
                           uint32_t lifetime) {
  uint8_t key[MAP_KEY_MAX];
  mtcsec_store_grant *g;
  void *val;
  int rv;
  if (st == NULL || dev == NULL || ue == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  pair_key(key, dev, ue);
  rv = map_put(&st->mem, &st->grants, key, &val);
  if (rv != 0) {
    return rv;
  }
  g = val;
  g->perms = perms;
  g->lifetime = lifetime;
  return 0;
}

int mtcsec_store_mem_revoke_grant(mtcsec_store_mem *st,
                                  const uint8_t dev[MTCSEC_ID_LEN],
                                  const uint8_t ue[MTCSEC_ID_LEN]) {
  uint8_t key[MAP_KEY_MAX];
  if (st == NULL || dev == NULL || ue == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  pair_key(key, dev, ue);
  return map_del(&st->mem, &st->grants, key);
}

int mtcsec_store_mem_allow_relay(mtcsec_store_mem *st,
                                 const uint8_t dev[MTCSEC_ID_LEN],
                                 const uint8_t gw[MTCSEC_ID_LEN]) {
  uint8_t key[MAP_KEY_MAX];
  void *val;
  if (st == NULL || dev == NULL || gw == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  pair_key(key, dev, gw);
  return map_put(&st->mem, &st->relays, key, &val);
}

void mtcsec_store_mem_fail_commits(mtcsec_store_mem *st, unsigned count) {
  if (st != NULL) {
    st->fail_commits = count;
  }
}

size_t mtcsec_store_mem_sessions(const mtcsec_store_mem *st) {
  return st != NULL ? st->nsessions : 0;
}

int mtcsec_store_mem_session(const mtcsec_store_mem *st, size_t i,
                             mtcsec_session_rec *out) {
  if (st == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (i >= st->nsessions) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  *out = st->sessions[i];
  return 0;
}
