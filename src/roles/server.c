/*
 * MTCs role: the server core (PROTOCOL.md sections 4, 5 and 7).
 *
 * Sans-IO.  One M2 goes through the ordered checks of section 5 in
 * mtcsec_srv_recv(); it either ends in an ERR (queued at once), in an M3
 * answered again from the duplicate cache, in a "follower" attached to an
 * identical exchange still in flight, or in a transaction that waits for the
 * durable commit (section 4: the window is durable before M3 leaves).
 *
 * Memory.  Everything is allocated at mtcsec_srv_new() through cfg->mem,
 * except the device cache, which grows by doubling:
 *  - transactions: max_inflight slots (~750 B each: the M1 bytes, the M3
 *    body, the store transaction), plus max_inflight follower records;
 *  - output queue: a ring of max_queued preformatted frames (~120 B each;
 *    an M3 frame is at most 103 bytes since MTCsInfo is always 13 bytes);
 *  - duplicate cache: dup_cache_size entries (~430 B each) and a bucket
 *    array, in memory only (section 4), evicted oldest first;
 *  - device cache: one ~48 B entry per provisioned device that ever passed
 *    the MIC check (window, next key id, rate-limit bucket).  It is never
 *    shrunk: it is unbounded in the number of provisioned devices seen.
 *    Entries are created only after the MIC verified, so an attacker cannot
 *    grow it with made-up MTCdIDs.
 * No allocation happens per packet.
 *
 * Answer slots are reserved: every transaction and every follower holds one
 * place in the output queue until it is answered, so a commit can always
 * queue its answers; mtcsec_srv_recv() returns BUSY when no place is left.
 *
 * Secrets: the device record (K_auth, K_dm) lives on the stack during one
 * recv and is zeroized at its end; M3 bodies (they end with DMKey) are
 * zeroized when a transaction, a queued frame or a duplicate entry is
 * released.  Logs carry IDs, req_id and the result name only.
 */
#include <inttypes.h>
#include <string.h>

#include <mtcsec/server.h>
#include <mtcsec/codec.h>

#include "core/util.h"

/* "No index." */
#define SRV_NONE SIZE_MAX
/* MTCsInfo always holds LIFETIME, PERMS and KEY_ID (section 3). */
#define SRV_SINFO_LEN 13
/* Largest M3 body the server builds: an M4 with 13 bytes of info and DMKey. */
#define SRV_M3_MAX                                                             \
  (MTCSEC_HS_FIXED_LEN + SRV_SINFO_LEN + MTCSEC_MAX_MIC_LEN +                  \
   MTCSEC_MAX_KEY_LEN)
/* Largest answer frame: an M3 (an ERR frame has no detail here). */
#define SRV_FRAME_MAX (MTCSEC_FRAME_HDR_LEN + SRV_M3_MAX)
#define SRV_DEV_INIT_CAP 64
/* Rate-limit bucket unit: one key is worth 60000 (keys/minute times ms). */
#define SRV_RATE_UNIT 60000u

/* A log line of the core, formatted only when its level is wanted
 * (mtcsec_srv_set_log_level): one result line per exchange otherwise costs
 * a vsnprintf that nobody reads. */
#define SRV_LOG(srv, lvl, ...)                                                 \
  do {                                                                         \
    if ((lvl) <= (srv)->log_level) {                                           \
      MTCSEC_LOG((srv)->cfg.log, (srv)->user_data, (lvl), __VA_ARGS__);        \
    }                                                                          \
  } while (0)

/* Device cache entry (open addressing, linear probing, keyed by MTCdID). */
typedef struct srv_dev {
  mtcsec_window window;  /* the durable window plus transactions in flight */
  uint64_t rl_tokens;    /* rate-limit bucket, in SRV_RATE_UNIT per key */
  mtcsec_tstamp rl_last; /* last refill of the bucket */
  size_t txns;           /* its transactions in flight (list), or SRV_NONE */
  uint8_t id[MTCSEC_ID_LEN];
  uint16_t next_key_id; /* the durable next key id plus those in flight */
  uint8_t used;         /* slot occupied */
  uint8_t loaded;       /* window and next_key_id are valid */
} srv_dev;

enum { TXN_FREE = 0, TXN_PENDING = 1, TXN_BATCH = 2, TXN_DONE = 3 };

/* An exchange that passed every check and waits for the durable commit. */
typedef struct srv_txn {
  mtcsec_store_txn st; /* what the store commits */
  uint64_t seq;        /* order of preparation */
  uint64_t conn;
  mtcsec_tstamp started;
  size_t followers;          /* first follower, SRV_NONE if none */
  size_t dev_next, dev_prev; /* its device's in-flight list */
  uint32_t req_id;
  uint32_t hash; /* duplicate-cache hash of (UE, M1) */
  uint8_t state;
  uint8_t conn_dead; /* connection closed: answer nobody */
  uint16_t m1len;
  uint16_t m3len;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  uint8_t m3[SRV_M3_MAX]; /* M4 || DMKey */
} srv_txn;

/* A second req_id waiting on the identical M1 of a transaction. */
typedef struct srv_follower {
  uint64_t conn;
  mtcsec_tstamp started;
  size_t next; /* next follower of the same transaction, or free list */
  uint32_t req_id;
  uint8_t used;
  uint8_t conn_dead;
} srv_follower;

/* One queued answer frame. */
typedef struct srv_out {
  uint64_t conn;
  uint16_t len; /* 0: dropped (its connection closed) */
  uint8_t frame[SRV_FRAME_MAX];
} srv_out;

/* Duplicate cache entry: an M2 already answered with M3 (section 4). */
typedef struct srv_dup {
  mtcsec_tstamp first; /* time of the first answer; never extended */
  size_t next;         /* bucket chain */
  uint32_t hash;
  uint16_t m1len;
  uint16_t m3len;
  uint8_t ueid[MTCSEC_ID_LEN];
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  uint8_t m3[SRV_M3_MAX];
} srv_dup;

struct mtcsec_srv {
  mtcsec_srv_config cfg;
  int log_level; /* most verbose level formatted for cfg.log */
  mtcsec_mem mem;
  const mtcsec_crypto *crypto;
  const mtcsec_store_ops *store;
  void *store_ctx;
  const mtcsec_srv_callbacks *cb;
  void *user_data;

  srv_dev *devs;
  size_t devcap; /* power of two */
  size_t ndevs;

  srv_txn *txns; /* max_inflight */
  size_t *txn_free;
  size_t ntxn_free;
  size_t *pending; /* waiting for a batch, in order of preparation */
  size_t npending;
  size_t *batch_idx;
  mtcsec_store_txn **batch_txns;
  int *batch_results;
  size_t nbatch;
  int batch_out;
  uint64_t txn_seq;

  srv_follower *fols; /* max_inflight */
  size_t fol_free;
  size_t nfols;

  srv_out *out; /* max_queued */
  size_t out_head;
  size_t out_count;

  srv_dup *dups; /* dup_cache_size, a ring in order of first answer */
  size_t dup_head;
  size_t dup_count;
  size_t *dup_buckets;
  size_t dup_nbuckets; /* power of two */
};

/* One M2 being checked. */
typedef struct srv_req {
  uint64_t conn;
  uint32_t req_id;
  const uint8_t *ueid;
  mtcsec_tstamp now;
  const uint8_t *body;
  size_t bodylen;
  const uint8_t *mtcd_id; /* NULL until the M1 decoded */
  mtcsec_hs m1;
  mtcsec_dinfo di;
  mtcsec_store_device dev;  /* secret: zeroized at the end of recv */
  mtcsec_store_grant grant; /* from get_device_grant, when have_grant */
  int grant_rv;
  int have_grant;
  int err; /* the mtcsec_err behind an INTERNAL, for logs */
} srv_req;

void mtcsec_srv_config_default(mtcsec_srv_config *cfg) {
  if (cfg == NULL) {
    return;
  }
  memset(cfg, 0, sizeof(*cfg));
  cfg->max_inflight = 4096;
  cfg->max_queued = 8192;
  cfg->dup_cache_size = 4096;
  cfg->dup_ttl = 60000;
  cfg->rate_per_minute = 0;
  cfg->mem = NULL;
  cfg->log = NULL;
}

/* ------------------------------------------------------------ helpers */

static void *srv_calloc(const mtcsec_mem *mem, size_t n, size_t size) {
  if (n == 0) {
    n = 1;
  }
  if (n > SIZE_MAX / size) {
    return NULL;
  }
  return mem->calloc(n, size, mem->user_data);
}

static void srv_free(const mtcsec_mem *mem, void *p) {
  if (p != NULL) {
    mem->free(p, mem->user_data);
  }
}

/* splitmix64 finalizer. */
static uint64_t srv_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/*
 * Duplicate-cache hash of (UE, M1): the first bytes of the MIC, which a
 * peer cannot choose without K_auth, mixed with the UEID.  Entries are then
 * compared on their full bytes.
 */
static uint32_t srv_m1_hash(const uint8_t ueid[MTCSEC_ID_LEN],
                            const uint8_t *mic, size_t miclen) {
  uint8_t b[8];
  memset(b, 0, sizeof(b));
  memcpy(b, mic, miclen < sizeof(b) ? miclen : sizeof(b));
  return (uint32_t)(srv_mix64(mtcsec_get_u64(b) ^ mtcsec_get_u64(ueid)) >> 32);
}

/* ------------------------------------------------------- device cache */

static size_t dev_slot(const mtcsec_srv *srv, const uint8_t id[MTCSEC_ID_LEN]) {
  return (size_t)srv_mix64(mtcsec_get_u64(id)) & (srv->devcap - 1);
}

static srv_dev *dev_find(mtcsec_srv *srv, const uint8_t id[MTCSEC_ID_LEN]) {
  size_t i = dev_slot(srv, id);
  for (;;) {
    srv_dev *d = &srv->devs[i];
    if (!d->used) {
      return NULL;
    }
    if (memcmp(d->id, id, MTCSEC_ID_LEN) == 0) {
      return d;
    }
    i = (i + 1) & (srv->devcap - 1);
  }
}

/* Doubles the device table (load factor 3/4). */
static int dev_grow(mtcsec_srv *srv) {
  srv_dev *old = srv->devs;
  size_t oldcap = srv->devcap, i;
  size_t newcap = oldcap * 2;
  srv_dev *nd;

  if (newcap < oldcap) {
    return MTCSEC_ERR_NOMEM;
  }
  nd = srv_calloc(&srv->mem, newcap, sizeof(*nd));
  if (nd == NULL) {
    return MTCSEC_ERR_NOMEM;
  }
  srv->devs = nd;
  srv->devcap = newcap;
  for (i = 0; i < oldcap; i++) {
    size_t j;
    if (!old[i].used) {
      continue;
    }
    j = dev_slot(srv, old[i].id);
    while (nd[j].used) {
      j = (j + 1) & (newcap - 1);
    }
    nd[j] = old[i];
  }
  srv_free(&srv->mem, old);
  return 0;
}

/* Links t into the in-flight list of its device d. */
static void dev_link(mtcsec_srv *srv, srv_dev *d, srv_txn *t) {
  size_t idx = (size_t)(t - srv->txns);
  t->dev_prev = SRV_NONE;
  t->dev_next = d->txns;
  if (d->txns != SRV_NONE) {
    srv->txns[d->txns].dev_prev = idx;
  }
  d->txns = idx;
}

/* Unlinks t from its device's list (d NULL: the device is unknown). */
static void dev_unlink(mtcsec_srv *srv, srv_dev *d, srv_txn *t) {
  if (t->dev_prev != SRV_NONE) {
    srv->txns[t->dev_prev].dev_next = t->dev_next;
  } else if (d != NULL && d->txns == (size_t)(t - srv->txns)) {
    d->txns = t->dev_next;
  }
  if (t->dev_next != SRV_NONE) {
    srv->txns[t->dev_next].dev_prev = t->dev_prev;
  }
  t->dev_next = t->dev_prev = SRV_NONE;
}

/*
 * Recomputes the cached state of d: the durable state from the store plus
 * its transactions still in flight (pending or in an outstanding batch:
 * d's list).  On a store failure d stays unloaded and is reloaded on its
 * next use.
 */
static int dev_reload(mtcsec_srv *srv, srv_dev *d) {
  mtcsec_store_devstate ds;
  uint64_t best = 0;
  uint16_t next = 0;
  int found = 0, rv;
  size_t i;

  memset(&ds, 0, sizeof(ds));
  d->loaded = 0;
  rv = srv->store->get_state(srv->store_ctx, d->id, &ds);
  if (rv != 0) {
    return rv;
  }
  d->window = ds.window;
  d->next_key_id = ds.next_key_id;
  for (i = d->txns; i != SRV_NONE; i = srv->txns[i].dev_next) {
    const srv_txn *t = &srv->txns[i];
    if (mtcsec_window_check(&d->window, t->st.nonce) == 0) {
      mtcsec_window_update(&d->window, t->st.nonce);
    }
    if (!found || t->seq > best) {
      best = t->seq;
      next = (uint16_t)(t->st.session.key_id + 1);
      found = 1;
    }
  }
  if (found) {
    d->next_key_id = next;
  }
  d->loaded = 1;
  return 0;
}

/* Finds or creates the cache entry of id and loads it if needed. */
static int dev_get(mtcsec_srv *srv, const uint8_t id[MTCSEC_ID_LEN],
                   mtcsec_tstamp now, srv_dev **pd) {
  srv_dev *d = dev_find(srv, id);
  int rv;

  if (d == NULL) {
    size_t i;
    if ((srv->ndevs + 1) * 4 > srv->devcap * 3) {
      rv = dev_grow(srv);
      if (rv != 0) {
        return rv;
      }
    }
    i = dev_slot(srv, id);
    while (srv->devs[i].used) {
      i = (i + 1) & (srv->devcap - 1);
    }
    d = &srv->devs[i];
    memset(d, 0, sizeof(*d));
    memcpy(d->id, id, MTCSEC_ID_LEN);
    d->used = 1;
    d->txns = SRV_NONE;
    d->rl_tokens = (uint64_t)srv->cfg.rate_per_minute * SRV_RATE_UNIT;
    d->rl_last = now;
    srv->ndevs++;
  }
  if (!d->loaded) {
    rv = dev_reload(srv, d);
    if (rv != 0) {
      return rv;
    }
  }
  *pd = d;
  return 0;
}

/*
 * Rate limit (section 5, RATE_LIMITED is server policy).  A token bucket
 * per device: rate_per_minute keys in a burst, refilled continuously at
 * rate_per_minute per rolling minute.  Tokens are counted in SRV_RATE_UNIT
 * per key so that the refill needs no division.
 */
static void rl_refill(const mtcsec_srv *srv, srv_dev *d, mtcsec_tstamp now) {
  uint64_t rate = srv->cfg.rate_per_minute;
  uint64_t cap = rate * SRV_RATE_UNIT;
  if (now > d->rl_last) {
    uint64_t el = now - d->rl_last;
    if (el >= SRV_RATE_UNIT) {
      d->rl_tokens = cap;
    } else {
      d->rl_tokens += el * rate;
      if (d->rl_tokens > cap) {
        d->rl_tokens = cap;
      }
    }
    d->rl_last = now;
  }
}

void mtcsec_srv_set_rate(mtcsec_srv *srv, uint32_t rate_per_minute) {
  size_t i;
  if (srv == NULL) {
    return;
  }
  srv->cfg.rate_per_minute = rate_per_minute;
  for (i = 0; i < srv->devcap; i++) {
    srv->devs[i].rl_tokens = (uint64_t)rate_per_minute * SRV_RATE_UNIT;
  }
}

/* Gives back the token of an exchange that issued no key. */
static void rl_refund(const mtcsec_srv *srv, srv_dev *d) {
  uint64_t cap = (uint64_t)srv->cfg.rate_per_minute * SRV_RATE_UNIT;
  if (srv->cfg.rate_per_minute == 0) {
    return;
  }
  d->rl_tokens += SRV_RATE_UNIT;
  if (d->rl_tokens > cap) {
    d->rl_tokens = cap;
  }
}

/* ------------------------------------------------------- output queue */

/* Answers the queue can still take, counting those already promised. */
static size_t out_room(const mtcsec_srv *srv) {
  size_t inflight = srv->cfg.max_inflight - srv->ntxn_free;
  size_t used = srv->out_count + inflight + srv->nfols;
  return used >= srv->cfg.max_queued ? 0 : srv->cfg.max_queued - used;
}

static void out_pop(mtcsec_srv *srv) {
  srv->out_head = (srv->out_head + 1) % srv->cfg.max_queued;
  srv->out_count--;
}

/* Queues one frame; body may be NULL for an ERR (code is then used). */
static void out_push(mtcsec_srv *srv, uint64_t conn, uint32_t req_id,
                     const uint8_t *m3, size_t m3len, uint8_t code) {
  srv_out *o;
  mtcsec_ssize n;

  if (srv->out_count >= srv->cfg.max_queued) {
    /* Cannot happen: answer places are reserved (out_room). */
    SRV_LOG(srv, MTCSEC_LOG_ERROR, "srv queue full req=%" PRIu32, req_id);
    return;
  }
  o = &srv->out[(srv->out_head + srv->out_count) % srv->cfg.max_queued];
  if (m3 != NULL) {
    n = mtcsec_frame_encode(o->frame, sizeof(o->frame), MTCSEC_MSG_M3, req_id,
                            m3, m3len);
  } else {
    n = mtcsec_err_frame_encode(o->frame, sizeof(o->frame), req_id, code, NULL);
  }
  if (n <= 0) {
    return; /* cannot happen: the buffer holds the largest answer */
  }
  o->conn = conn;
  o->len = (uint16_t)n;
  srv->out_count++;
}

/* ------------------------------------------------------ results, logs */

static void srv_result(mtcsec_srv *srv, uint64_t conn, uint32_t req_id,
                       const uint8_t *ueid, const uint8_t *mtcd_id,
                       uint8_t code, uint8_t duplicate,
                       const mtcsec_session_rec *session, int err,
                       mtcsec_tstamp started, mtcsec_tstamp finished) {
  mtcsec_srv_result r;
  char ue_hex[17], dev_hex[17];

  SRV_LOG(srv, MTCSEC_LOG_INFO,
          "srv ue=%s dev=%s req=%" PRIu32 " conn=%" PRIu64
          " result=%s dup=%u%s%s",
          mtcsec_id_hex(ue_hex, ueid),
          mtcd_id != NULL ? mtcsec_id_hex(dev_hex, mtcd_id) : "-", req_id, conn,
          code == 0 ? "OK" : mtcsec_errcode_name(code), (unsigned)duplicate,
          err != 0 ? " err=" : "", err != 0 ? mtcsec_errname(err) : "");
  if (srv->cb == NULL || srv->cb->on_result == NULL) {
    return;
  }
  memset(&r, 0, sizeof(r));
  r.conn = conn;
  r.req_id = req_id;
  r.ueid = ueid;
  r.mtcd_id = mtcd_id;
  r.errcode = code;
  r.duplicate = duplicate;
  r.session = session;
  r.started = started;
  r.finished = finished;
  srv->cb->on_result(srv->user_data, &r);
}

/* ---------------------------------------------------- duplicate cache */

static void dup_unlink(mtcsec_srv *srv, size_t idx) {
  size_t *p = &srv->dup_buckets[srv->dups[idx].hash & (srv->dup_nbuckets - 1)];
  while (*p != SRV_NONE) {
    if (*p == idx) {
      *p = srv->dups[idx].next;
      return;
    }
    p = &srv->dups[*p].next;
  }
}

static void dup_evict_head(mtcsec_srv *srv) {
  size_t idx = srv->dup_head;
  dup_unlink(srv, idx);
  mtcsec_zeroize(&srv->dups[idx], sizeof(srv->dups[idx]));
  srv->dup_head = (srv->dup_head + 1) % srv->cfg.dup_cache_size;
  srv->dup_count--;
}

static int dup_expired(const mtcsec_srv *srv, const srv_dup *e,
                       mtcsec_tstamp now) {
  return now >= e->first && now - e->first >= srv->cfg.dup_ttl;
}

/* Drops entries answered dup_ttl ago or more (the ring is in time order). */
static void dup_expire(mtcsec_srv *srv, mtcsec_tstamp now) {
  while (srv->dup_count > 0 &&
         dup_expired(srv, &srv->dups[srv->dup_head], now)) {
    dup_evict_head(srv);
  }
}

static const srv_dup *dup_find(const mtcsec_srv *srv, uint32_t hash,
                               const uint8_t ueid[MTCSEC_ID_LEN],
                               const uint8_t *m1, size_t m1len,
                               mtcsec_tstamp now) {
  size_t i;
  if (srv->cfg.dup_cache_size == 0) {
    return NULL;
  }
  for (i = srv->dup_buckets[hash & (srv->dup_nbuckets - 1)]; i != SRV_NONE;
       i = srv->dups[i].next) {
    const srv_dup *e = &srv->dups[i];
    if (e->hash == hash && e->m1len == m1len &&
        memcmp(e->ueid, ueid, MTCSEC_ID_LEN) == 0 &&
        memcmp(e->m1, m1, m1len) == 0) {
      return dup_expired(srv, e, now) ? NULL : e;
    }
  }
  return NULL;
}

static void dup_insert(mtcsec_srv *srv, const srv_txn *t, mtcsec_tstamp now) {
  size_t idx, b;
  srv_dup *e;

  if (srv->cfg.dup_cache_size == 0) {
    return;
  }
  if (srv->dup_count == srv->cfg.dup_cache_size) {
    dup_evict_head(srv); /* oldest first */
  }
  idx = (srv->dup_head + srv->dup_count) % srv->cfg.dup_cache_size;
  e = &srv->dups[idx];
  e->first = now;
  e->hash = t->hash;
  e->m1len = t->m1len;
  e->m3len = t->m3len;
  memcpy(e->ueid, t->st.session.ueid, MTCSEC_ID_LEN);
  memcpy(e->m1, t->m1, t->m1len);
  memcpy(e->m3, t->m3, t->m3len);
  b = t->hash & (srv->dup_nbuckets - 1);
  e->next = srv->dup_buckets[b];
  srv->dup_buckets[b] = idx;
  srv->dup_count++;
}

/* ------------------------------------------------------- transactions */

/* The in-flight transaction of the identical M1 from the same UE (the same
 * M1 names the same device d: only d's list is searched). */
static srv_txn *txn_find(mtcsec_srv *srv, const srv_dev *d, uint32_t hash,
                         const uint8_t ueid[MTCSEC_ID_LEN], const uint8_t *m1,
                         size_t m1len) {
  size_t i;
  for (i = d->txns; i != SRV_NONE; i = srv->txns[i].dev_next) {
    srv_txn *t = &srv->txns[i];
    if (t->hash == hash && t->m1len == m1len &&
        memcmp(t->st.session.ueid, ueid, MTCSEC_ID_LEN) == 0 &&
        memcmp(t->m1, m1, m1len) == 0) {
      return t;
    }
  }
  return NULL;
}

static void txn_release(mtcsec_srv *srv, srv_txn *t) {
  mtcsec_zeroize(t, sizeof(*t));
  t->state = TXN_FREE;
  t->followers = SRV_NONE;
  t->dev_next = t->dev_prev = SRV_NONE;
  srv->txn_free[srv->ntxn_free++] = (size_t)(t - srv->txns);
}

/*
 * Answers the leader of t and each follower with the M3 (code 0) or the
 * ERR code, then frees the followers.
 */
static void txn_answer(mtcsec_srv *srv, srv_txn *t, uint8_t code, int err,
                       mtcsec_tstamp now) {
  const mtcsec_session_rec *s = &t->st.session;
  size_t f;

  if (!t->conn_dead) {
    out_push(srv, t->conn, t->req_id, code == 0 ? t->m3 : NULL, t->m3len, code);
  }
  srv_result(srv, t->conn, t->req_id, s->ueid, s->mtcd_id, code, 0,
             code == 0 ? s : NULL, err, t->started, now);
  f = t->followers;
  while (f != SRV_NONE) {
    srv_follower *fo = &srv->fols[f];
    size_t next = fo->next;
    if (!fo->conn_dead) {
      out_push(srv, fo->conn, fo->req_id, code == 0 ? t->m3 : NULL, t->m3len,
               code);
    }
    srv_result(srv, fo->conn, fo->req_id, s->ueid, s->mtcd_id, code, code == 0,
               NULL, err, fo->started, now);
    memset(fo, 0, sizeof(*fo));
    fo->next = srv->fol_free;
    srv->fol_free = f;
    srv->nfols--;
    f = next;
  }
  t->followers = SRV_NONE;
}

/* ------------------------------------------------------------- lifecycle */

int mtcsec_srv_new(mtcsec_srv **psrv, const mtcsec_srv_config *cfg,
                   const mtcsec_crypto *crypto, const mtcsec_store_ops *store,
                   void *store_ctx, const mtcsec_srv_callbacks *cb,
                   void *user_data) {
  const mtcsec_mem *mem;
  mtcsec_srv *srv = NULL;
  size_t i;
  int rv = MTCSEC_ERR_INVALID_ARGUMENT;

  if (psrv == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  *psrv = NULL;
  if (cfg == NULL || crypto == NULL || crypto->ops == NULL ||
      crypto->ops->mac == NULL || crypto->ops->random == NULL ||
      store == NULL || store->get_device == NULL || store->get_state == NULL ||
      store->get_grant == NULL || store->relay_allowed == NULL ||
      store->commit == NULL || cfg->max_inflight == 0 || cfg->max_queued == 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  mem = cfg->mem != NULL ? cfg->mem : mtcsec_mem_default();
  srv = srv_calloc(mem, 1, sizeof(*srv));
  if (srv == NULL) {
    return MTCSEC_ERR_NOMEM;
  }
  srv->cfg = *cfg;
  srv->log_level = MTCSEC_LOG_DEBUG;
  srv->mem = *mem;
  srv->cfg.mem = &srv->mem;
  srv->crypto = crypto;
  srv->store = store;
  srv->store_ctx = store_ctx;
  srv->cb = cb;
  srv->user_data = user_data;

  rv = MTCSEC_ERR_NOMEM;
  srv->devcap = SRV_DEV_INIT_CAP;
  srv->devs = srv_calloc(mem, srv->devcap, sizeof(*srv->devs));
  srv->txns = srv_calloc(mem, cfg->max_inflight, sizeof(*srv->txns));
  srv->txn_free = srv_calloc(mem, cfg->max_inflight, sizeof(size_t));
  srv->pending = srv_calloc(mem, cfg->max_inflight, sizeof(size_t));
  srv->batch_idx = srv_calloc(mem, cfg->max_inflight, sizeof(size_t));
  srv->batch_txns =
    srv_calloc(mem, cfg->max_inflight, sizeof(mtcsec_store_txn *));
  srv->batch_results = srv_calloc(mem, cfg->max_inflight, sizeof(int));
  srv->fols = srv_calloc(mem, cfg->max_inflight, sizeof(*srv->fols));
  srv->out = srv_calloc(mem, cfg->max_queued, sizeof(*srv->out));
  if (srv->devs == NULL || srv->txns == NULL || srv->txn_free == NULL ||
      srv->pending == NULL || srv->batch_idx == NULL ||
      srv->batch_txns == NULL || srv->batch_results == NULL ||
      srv->fols == NULL || srv->out == NULL) {
    goto cleanup;
  }
  if (cfg->dup_cache_size > 0) {
    size_t nb = 1;
    while (nb < cfg->dup_cache_size) {
      nb <<= 1;
      if (nb == 0) {
        goto cleanup;
      }
    }
    srv->dup_nbuckets = nb;
    srv->dups = srv_calloc(mem, cfg->dup_cache_size, sizeof(*srv->dups));
    srv->dup_buckets = srv_calloc(mem, nb, sizeof(size_t));
    if (srv->dups == NULL || srv->dup_buckets == NULL) {
      goto cleanup;
    }
    for (i = 0; i < nb; i++) {
      srv->dup_buckets[i] = SRV_NONE;
    }
  }
  /* Free stacks: slot 0 is handed out first. */
  for (i = 0; i < cfg->max_inflight; i++) {
    srv->txns[i].followers = SRV_NONE;
    srv->txns[i].dev_next = srv->txns[i].dev_prev = SRV_NONE;
    srv->txn_free[i] = cfg->max_inflight - 1 - i;
    srv->fols[i].next = i + 1 < cfg->max_inflight ? i + 1 : SRV_NONE;
  }
  srv->ntxn_free = cfg->max_inflight;
  srv->fol_free = 0;
  *psrv = srv;
  srv = NULL;
  rv = 0;

cleanup:
  mtcsec_srv_del(srv);
  return rv;
}

void mtcsec_srv_del(mtcsec_srv *srv) {
  mtcsec_mem mem;
  if (srv == NULL) {
    return;
  }
  mem = srv->mem;
  if (srv->txns != NULL) {
    mtcsec_zeroize(srv->txns, srv->cfg.max_inflight * sizeof(*srv->txns));
  }
  if (srv->out != NULL) {
    mtcsec_zeroize(srv->out, srv->cfg.max_queued * sizeof(*srv->out));
  }
  if (srv->dups != NULL) {
    mtcsec_zeroize(srv->dups, srv->cfg.dup_cache_size * sizeof(*srv->dups));
  }
  srv_free(&mem, srv->devs);
  srv_free(&mem, srv->txns);
  srv_free(&mem, srv->txn_free);
  srv_free(&mem, srv->pending);
  srv_free(&mem, srv->batch_idx);
  srv_free(&mem, srv->batch_txns);
  srv_free(&mem, srv->batch_results);
  srv_free(&mem, srv->fols);
  srv_free(&mem, srv->out);
  srv_free(&mem, srv->dups);
  srv_free(&mem, srv->dup_buckets);
  srv_free(&mem, srv);
}

/* ------------------------------------------------------------- recv */

/*
 * REPLAY step for a nonce the window refuses (section 4, "Retries and
 * duplicates"): the same M3 again if this UE's identical M1 was answered
 * less than dup_ttl ago, a follower if it is still in flight, else REPLAY.
 * Returns 0 when handled, an ERR code (> 0), or BUSY.
 */
static int srv_on_replay(mtcsec_srv *srv, srv_req *q, const srv_dev *d) {
  uint32_t hash = srv_m1_hash(q->ueid, q->m1.mic, q->m1.miclen);
  const srv_dup *e = dup_find(srv, hash, q->ueid, q->body, q->bodylen, q->now);
  srv_txn *t;

  if (e != NULL) {
    out_push(srv, q->conn, q->req_id, e->m3, e->m3len, 0);
    srv_result(srv, q->conn, q->req_id, q->ueid, q->mtcd_id, 0, 1, NULL, 0,
               q->now, q->now);
    return 0;
  }
  t = txn_find(srv, d, hash, q->ueid, q->body, q->bodylen);
  if (t != NULL) {
    size_t f = srv->fol_free;
    srv_follower *fo;
    if (f == SRV_NONE) {
      return MTCSEC_ERR_BUSY;
    }
    fo = &srv->fols[f];
    srv->fol_free = fo->next;
    fo->used = 1;
    fo->conn = q->conn;
    fo->req_id = q->req_id;
    fo->started = q->now;
    fo->conn_dead = 0;
    fo->next = t->followers;
    t->followers = f;
    srv->nfols++;
    return 0;
  }
  return MTCSEC_ERRCODE_REPLAY;
}

/*
 * Builds the answer of an M2 that passed every check and makes it a
 * transaction.  Updates the cached window, key id and rate bucket now, so
 * that a second identical nonce in flight is a replay (or a follower).
 */
static int srv_prepare(mtcsec_srv *srv, srv_req *q, srv_dev *d, uint64_t nonce,
                       uint8_t perms, uint32_t lifetime) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(q->m1.suite);
  uint8_t sinfo_buf[SRV_SINFO_LEN];
  uint8_t mtcs_nonce[MTCSEC_NONCE_LEN];
  mtcsec_m4_fields f;
  mtcsec_sinfo si;
  mtcsec_session_rec *s;
  mtcsec_ssize n;
  srv_txn *t;
  int rv;

  if (srv->ntxn_free == 0) {
    return MTCSEC_ERR_BUSY;
  }
  t = &srv->txns[srv->txn_free[srv->ntxn_free - 1]];

  rv =
    srv->crypto->ops->random(srv->crypto->ctx, mtcs_nonce, sizeof(mtcs_nonce));
  if (rv != 0) {
    goto cleanup;
  }
  memset(&si, 0, sizeof(si));
  si.present = MTCSEC_SINFO_LIFETIME | MTCSEC_SINFO_PERMS | MTCSEC_SINFO_KEY_ID;
  si.lifetime = lifetime;
  si.perms = perms;
  si.key_id = d->next_key_id;
  n = mtcsec_sinfo_encode(sinfo_buf, sizeof(sinfo_buf), &si);
  if (n != SRV_SINFO_LEN) {
    rv = n < 0 ? (int)n : MTCSEC_ERR_INVALID_STATE;
    goto cleanup;
  }
  memset(&f, 0, sizeof(f));
  f.suite = q->m1.suite;
  f.mtcs_id = srv->cfg.mtcs_id;
  f.mtcd_id = q->m1.id_a;
  f.mtcs_nonce = mtcs_nonce;
  f.ueid = q->m1.ueid;
  f.info = sinfo_buf;
  f.info_len = SRV_SINFO_LEN;
  f.mtcd_nonce = q->m1.nonce;
  f.m1_info = q->m1.info;
  f.m1_info_len = q->m1.info_len;
  n = mtcsec_m4_build(t->m3, sizeof(t->m3), srv->crypto, q->dev.k_auth, &f);
  if (n < 0) {
    rv = (int)n;
    goto cleanup;
  }
  if ((size_t)n + sp->keylen > sizeof(t->m3)) {
    rv = MTCSEC_ERR_NOBUF;
    goto cleanup;
  }
  /* M3 body = M4 || DMKey (section 5). */
  rv = mtcsec_derive_dmkey(srv->crypto, q->m1.suite, q->dev.k_dm, q->m1.id_a,
                           srv->cfg.mtcs_id, q->m1.nonce, mtcs_nonce,
                           q->m1.ueid, t->m3 + n);
  if (rv != 0) {
    goto cleanup;
  }
  t->m3len = (uint16_t)((size_t)n + sp->keylen);
  memcpy(t->m1, q->body, q->bodylen);
  t->m1len = (uint16_t)q->bodylen;
  t->hash = srv_m1_hash(q->ueid, q->m1.mic, q->m1.miclen);
  t->conn = q->conn;
  t->req_id = q->req_id;
  t->started = q->now;
  t->conn_dead = 0;
  t->followers = SRV_NONE;
  t->seq = ++srv->txn_seq;

  t->st.nonce = nonce;
  s = &t->st.session;
  memcpy(s->mtcd_id, q->m1.id_a, MTCSEC_ID_LEN);
  memcpy(s->ueid, q->m1.ueid, MTCSEC_ID_LEN);
  memcpy(s->mtcd_nonce, q->m1.nonce, MTCSEC_NONCE_LEN);
  memcpy(s->mtcs_nonce, mtcs_nonce, MTCSEC_NONCE_LEN);
  s->suite = q->m1.suite;
  s->perms = perms;
  s->key_id = si.key_id;
  s->lifetime = lifetime;
  s->issued_at = q->now;
  if (q->di.present & MTCSEC_DINFO_PATH) {
    s->npath = q->di.npath;
    memcpy(s->path, q->di.path, (size_t)q->di.npath * MTCSEC_ID_LEN);
  }

  mtcsec_window_update(&d->window, nonce);
  d->next_key_id = (uint16_t)(d->next_key_id + 1);
  if (srv->cfg.rate_per_minute != 0) {
    d->rl_tokens -= SRV_RATE_UNIT;
  }
  t->state = TXN_PENDING;
  dev_link(srv, d, t);
  srv->ntxn_free--;
  srv->pending[srv->npending++] = (size_t)(t - srv->txns);
  rv = 0;

cleanup:
  if (rv != 0) {
    mtcsec_zeroize(t, sizeof(*t));
    t->followers = SRV_NONE;
    t->dev_next = t->dev_prev = SRV_NONE;
    q->err = rv;
    rv = MTCSEC_ERRCODE_INTERNAL;
  }
  mtcsec_zeroize(mtcs_nonce, sizeof(mtcs_nonce));
  return rv;
}

/*
 * The ordered checks of section 5 for an M2 body.  Returns 0 when the M2
 * was handled (transaction, duplicate or follower), an ERR code (> 0) to
 * answer, or a negative mtcsec_err for recv to return (BUSY, NOMEM) with
 * nothing answered.
 */
static int srv_check_m2(mtcsec_srv *srv, srv_req *q) {
  mtcsec_store_grant grant;
  srv_dev *d = NULL;
  uint64_t nonce;
  uint8_t perms;
  size_t i;
  int rv;

  /* 1 MALFORMED.  An unknown suite decodes with t = 0 and fails at 5. */
  if (mtcsec_hs_decode(&q->m1, MTCSEC_MSG_M1, q->body, q->bodylen) != 0 ||
      mtcsec_dinfo_decode(&q->di, q->m1.info, q->m1.info_len) != 0) {
    return MTCSEC_ERRCODE_MALFORMED;
  }
  q->mtcd_id = q->m1.id_a;
  /* 2 WRONG_SERVER */
  if (memcmp(q->m1.id_b, srv->cfg.mtcs_id, MTCSEC_ID_LEN) != 0) {
    return MTCSEC_ERRCODE_WRONG_SERVER;
  }
  /* 3 UNKNOWN_DEVICE (with the grant of step 9, when the store reads both
   * at once: the lookup does not depend on the checks in between) */
  if (srv->store->get_device_grant != NULL) {
    rv = srv->store->get_device_grant(srv->store_ctx, q->m1.id_a, q->ueid,
                                      &q->dev, &q->grant, &q->grant_rv);
    q->have_grant = rv == 0;
  } else {
    rv = srv->store->get_device(srv->store_ctx, q->m1.id_a, &q->dev);
  }
  if (rv == MTCSEC_ERR_NOT_FOUND) {
    return MTCSEC_ERRCODE_UNKNOWN_DEVICE;
  }
  if (rv != 0) {
    q->err = rv;
    return MTCSEC_ERRCODE_INTERNAL;
  }
  /* 4 DEVICE_DISABLED */
  if (q->dev.disabled) {
    return MTCSEC_ERRCODE_DEVICE_DISABLED;
  }
  /* 5 UNSUPPORTED_SUITE: unknown, or not the one provisioned. */
  if (mtcsec_suite_get(q->m1.suite) == NULL || q->m1.suite != q->dev.suite) {
    return MTCSEC_ERRCODE_UNSUPPORTED_SUITE;
  }
  /* 6 UE_ID_MISMATCH: the UEID must be the TLS peer's (section 9.4). */
  if (memcmp(q->m1.ueid, q->ueid, MTCSEC_ID_LEN) != 0) {
    return MTCSEC_ERRCODE_UE_ID_MISMATCH;
  }
  /* 7 BAD_MIC */
  rv = mtcsec_m1_verify(&q->m1, srv->crypto, q->dev.k_auth);
  if (rv == MTCSEC_ERR_MIC) {
    return MTCSEC_ERRCODE_BAD_MIC;
  }
  if (rv != 0) {
    q->err = rv;
    return MTCSEC_ERRCODE_INTERNAL;
  }
  /* 8 REPLAY, against the cached window (durable state + in flight). */
  rv = dev_get(srv, q->m1.id_a, q->now, &d);
  if (rv == MTCSEC_ERR_NOMEM) {
    return rv;
  }
  if (rv != 0) {
    q->err = rv;
    return MTCSEC_ERRCODE_INTERNAL;
  }
  nonce = mtcsec_get_u64(q->m1.nonce);
  if (mtcsec_window_check(&d->window, nonce) != 0) {
    return srv_on_replay(srv, q, d);
  }
  /* 9 UE_NOT_AUTHORIZED: PERMS = grant, intersected with REQ_PERMS. */
  memset(&grant, 0, sizeof(grant));
  if (q->have_grant) {
    rv = q->grant_rv;
    if (rv == 0) {
      grant = q->grant;
    }
  } else {
    rv = srv->store->get_grant(srv->store_ctx, q->m1.id_a, q->ueid, &grant);
  }
  if (rv == MTCSEC_ERR_NOT_FOUND) {
    return MTCSEC_ERRCODE_UE_NOT_AUTHORIZED;
  }
  if (rv != 0) {
    q->err = rv;
    return MTCSEC_ERRCODE_INTERNAL;
  }
  perms = grant.perms;
  if (q->di.present & MTCSEC_DINFO_REQ_PERMS) {
    perms &= q->di.req_perms;
  }
  if (perms == 0) {
    return MTCSEC_ERRCODE_UE_NOT_AUTHORIZED;
  }
  /* 10 RELAY_NOT_AUTHORIZED: every relay of the PATH. */
  for (i = 0; i < q->di.npath; i++) {
    rv = srv->store->relay_allowed(srv->store_ctx, q->m1.id_a,
                                   q->di.path + i * MTCSEC_ID_LEN);
    if (rv == MTCSEC_ERR_NOT_FOUND) {
      return MTCSEC_ERRCODE_RELAY_NOT_AUTHORIZED;
    }
    if (rv != 0) {
      q->err = rv;
      return MTCSEC_ERRCODE_INTERNAL;
    }
  }
  /* 11 RATE_LIMITED */
  if (srv->cfg.rate_per_minute != 0) {
    rl_refill(srv, d, q->now);
    if (d->rl_tokens < SRV_RATE_UNIT) {
      return MTCSEC_ERRCODE_RATE_LIMITED;
    }
  }
  return srv_prepare(srv, q, d, nonce, perms, grant.lifetime);
}

int mtcsec_srv_recv(mtcsec_srv *srv, uint64_t conn,
                    const uint8_t ueid[MTCSEC_ID_LEN], const uint8_t *frame,
                    size_t framelen, mtcsec_tstamp now) {
  mtcsec_frame fr;
  mtcsec_ssize n;
  srv_req q;
  int rv;

  if (srv == NULL || ueid == NULL || frame == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  n = mtcsec_frame_parse(&fr, frame, framelen);
  if (n == MTCSEC_ERR_MALFORMED) {
    return MTCSEC_ERR_MALFORMED; /* len < 5: the caller ends the connection */
  }
  if (n <= 0 || (size_t)n != framelen) {
    return MTCSEC_ERR_INVALID_ARGUMENT; /* not exactly one frame */
  }
  if (out_room(srv) == 0) {
    return MTCSEC_ERR_BUSY;
  }
  dup_expire(srv, now);

  memset(&q, 0, sizeof(q));
  q.conn = conn;
  q.req_id = fr.req_id;
  q.ueid = ueid;
  q.now = now;
  q.body = fr.body;
  q.bodylen = fr.bodylen;

  if (fr.type != MTCSEC_MSG_M2) {
    rv = MTCSEC_ERRCODE_MALFORMED;
  } else {
    rv = srv_check_m2(srv, &q);
  }
  if (rv > 0) {
    out_push(srv, conn, q.req_id, NULL, 0, (uint8_t)rv);
    srv_result(srv, conn, q.req_id, ueid, q.mtcd_id, (uint8_t)rv, 0, NULL,
               q.err, now, now);
    rv = 0;
  }

  mtcsec_zeroize(&q.dev, sizeof(q.dev));
  return rv;
}

size_t mtcsec_srv_pending(const mtcsec_srv *srv) {
  return srv != NULL ? srv->npending : 0;
}

/* ------------------------------------------------------------- commit */

int mtcsec_srv_take_batch(mtcsec_srv *srv, mtcsec_srv_batch *b) {
  size_t i;
  if (srv == NULL || b == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (srv->batch_out) {
    return MTCSEC_ERR_INVALID_STATE;
  }
  memset(b, 0, sizeof(*b));
  if (srv->npending == 0) {
    return 0; /* an empty batch is not "out" */
  }
  for (i = 0; i < srv->npending; i++) {
    size_t idx = srv->pending[i];
    srv->txns[idx].state = TXN_BATCH;
    srv->batch_idx[i] = idx;
    srv->batch_txns[i] = &srv->txns[idx].st;
    srv->batch_results[i] = MTCSEC_ERR_STORE;
  }
  srv->nbatch = srv->npending;
  srv->npending = 0;
  srv->batch_out = 1;
  b->txns = srv->batch_txns;
  b->results = srv->batch_results;
  b->n = srv->nbatch;
  return 0;
}

int mtcsec_srv_batch_done(mtcsec_srv *srv, mtcsec_srv_batch *b, int rv,
                          mtcsec_tstamp now) {
  int failed = 0;
  size_t i;

  if (srv == NULL || b == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (!srv->batch_out) {
    return b->n == 0 ? 0 : MTCSEC_ERR_INVALID_STATE;
  }
  if (b->txns != srv->batch_txns || b->n != srv->nbatch) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  dup_expire(srv, now);
  /* 1: answer; a failed exchange gives back its token and its device's
   * cached state is recomputed below. */
  for (i = 0; i < srv->nbatch; i++) {
    srv_txn *t = &srv->txns[srv->batch_idx[i]];
    srv_dev *d = dev_find(srv, t->st.session.mtcd_id);
    /* A failed store call fails the whole batch (nothing was written). */
    int res = rv == 0 ? srv->batch_results[i] : rv;
    uint8_t code;
    t->state = TXN_DONE;
    dev_unlink(srv, d, t); /* no longer in flight */
    if (res == 0) {
      code = 0;
    } else if (res == MTCSEC_ERR_REPLAY) {
      code = MTCSEC_ERRCODE_REPLAY;
    } else {
      code = MTCSEC_ERRCODE_INTERNAL;
    }
    txn_answer(srv, t, code, code == MTCSEC_ERRCODE_INTERNAL ? res : 0, now);
    if (code == 0) {
      dup_insert(srv, t, now);
    } else {
      failed = 1;
      if (d != NULL) {
        rl_refund(srv, d);
        d->loaded = 0;
      }
    }
  }
  /* 2: reload the devices of failed exchanges (store + their exchanges
   * still pending: each device's own list, so a failed batch costs its
   * size, not its size times the exchanges in flight). */
  for (i = 0; failed && i < srv->nbatch; i++) {
    srv_txn *t = &srv->txns[srv->batch_idx[i]];
    srv_dev *d = dev_find(srv, t->st.session.mtcd_id);
    char dev_hex[17];
    if (d == NULL || d->loaded) {
      continue;
    }
    if (dev_reload(srv, d) != 0) {
      SRV_LOG(srv, MTCSEC_LOG_WARN,
              "srv dev=%s reload failed: reload on next use",
              mtcsec_id_hex(dev_hex, d->id));
    }
  }
  /* 3: free. */
  for (i = 0; i < srv->nbatch; i++) {
    txn_release(srv, &srv->txns[srv->batch_idx[i]]);
    srv->batch_txns[i] = NULL;
  }
  srv->nbatch = 0;
  srv->batch_out = 0;
  memset(b, 0, sizeof(*b));
  return 0;
}

int mtcsec_srv_commit(mtcsec_srv *srv, mtcsec_tstamp now) {
  mtcsec_srv_batch b;
  int rv;

  if (srv == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = mtcsec_srv_take_batch(srv, &b);
  if (rv != 0) {
    return rv;
  }
  if (b.n == 0) {
    return 0;
  }
  rv = srv->store->commit(srv->store_ctx, b.txns, b.n, b.results);
  mtcsec_srv_batch_done(srv, &b, rv, now);
  return rv == 0 ? 0 : MTCSEC_ERR_STORE;
}

/* ------------------------------------------------------------- output */

mtcsec_ssize mtcsec_srv_write(mtcsec_srv *srv, uint8_t *dest, size_t destlen,
                              uint64_t *conn) {
  if (srv == NULL || conn == NULL || (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  while (srv->out_count > 0) {
    srv_out *o = &srv->out[srv->out_head];
    size_t len = o->len;
    if (len == 0) {
      out_pop(srv); /* dropped by conn_closed */
      continue;
    }
    if (destlen < len) {
      return MTCSEC_ERR_NOBUF;
    }
    memcpy(dest, o->frame, len);
    *conn = o->conn;
    mtcsec_zeroize(o->frame, len);
    o->len = 0;
    out_pop(srv);
    return (mtcsec_ssize)len;
  }
  return 0;
}

void mtcsec_srv_conn_closed(mtcsec_srv *srv, uint64_t conn) {
  size_t i;
  if (srv == NULL) {
    return;
  }
  for (i = 0; i < srv->out_count; i++) {
    srv_out *o = &srv->out[(srv->out_head + i) % srv->cfg.max_queued];
    if (o->len != 0 && o->conn == conn) {
      mtcsec_zeroize(o->frame, o->len);
      o->len = 0;
    }
  }
  while (srv->out_count > 0 && srv->out[srv->out_head].len == 0) {
    out_pop(srv);
  }
  /* Exchanges in flight still commit (the key is issued and recorded), but
   * their answers go nowhere.  Only those in flight are visited (pending,
   * then the outstanding batch), with their followers. */
  for (i = 0; i < srv->npending + (srv->batch_out ? srv->nbatch : 0); i++) {
    srv_txn *t =
      &srv->txns[i < srv->npending ? srv->pending[i]
                                   : srv->batch_idx[i - srv->npending]];
    size_t f;
    if (t->conn == conn) {
      t->conn_dead = 1;
    }
    for (f = t->followers; f != SRV_NONE; f = srv->fols[f].next) {
      if (srv->fols[f].conn == conn) {
        srv->fols[f].conn_dead = 1;
      }
    }
  }
}

void mtcsec_srv_set_log_level(mtcsec_srv *srv, int level) {
  if (srv != NULL) {
    srv->log_level = level;
  }
}

/* --------------------------------------------------------- revocation */

mtcsec_ssize mtcsec_srv_revocation(mtcsec_srv *srv, uint8_t *dest,
                                   size_t destlen,
                                   const uint8_t mtcd_id[MTCSEC_ID_LEN],
                                   uint16_t key_id,
                                   const uint8_t mtcd_nonce[MTCSEC_NONCE_LEN]) {
  mtcsec_store_device dev;
  mtcsec_ssize rv;

  if (srv == NULL || mtcd_id == NULL || mtcd_nonce == NULL ||
      (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(&dev, 0, sizeof(dev));
  rv = srv->store->get_device(srv->store_ctx, mtcd_id, &dev);
  if (rv != 0) {
    rv = rv == MTCSEC_ERR_NOT_FOUND ? MTCSEC_ERR_NOT_FOUND : MTCSEC_ERR_STORE;
    goto cleanup;
  }
  rv = mtcsec_revoke_build(dest, destlen, srv->crypto, dev.suite, dev.k_auth,
                           srv->cfg.mtcs_id, mtcd_id, key_id, mtcd_nonce);

cleanup:
  mtcsec_zeroize(&dev, sizeof(dev));
  return rv;
}
