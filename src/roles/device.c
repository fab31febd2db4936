/*
 * MTCd role (PROTOCOL.md sections 4, 6, 7): sans-IO, no allocation.
 *
 * Exchange life: M0 (or mtcsec_dev_start) -> the nonce counter is persisted
 * -> M1 released by mtcsec_dev_write -> resends with backoff -> M4 verified
 * -> DMKey derived, channel keys set up, DMKey erased -> pending state
 * erased.  Every verdict on peer input leaves the object as it was.
 *
 * The public functions check their arguments (unless MTCSEC_CFG_CHECK_PARAMS
 * is 0) and the suite once, at mtcsec_dev_init(); below them the role calls
 * the core's inner entry points (core/internal.h), which do not check them
 * again.  Received bytes go through the same decoders, MIC checks and
 * replay window as everywhere else.
 */
#include <string.h>

#include <mtcsec/device.h>
#include <mtcsec/codec.h>

#include "core/internal.h"
#include "core/util.h"

enum { PEND_FREE = 0, PEND_SEND = 1, PEND_WAIT = 2 };

/* The parts of mtcsec_dev_pending.m1_tail. */
#define PEND_NONCE(p) ((p)->m1_tail)
#define PEND_INFO_LEN(p) ((p)->m1_tail[MTCSEC_NONCE_LEN])
#define PEND_INFO(p) ((p)->m1_tail + MTCSEC_NONCE_LEN + 1)
#define PEND_TAIL_LEN(p) (MTCSEC_NONCE_LEN + 1 + (size_t)PEND_INFO_LEN(p))

/* The device's suite: a constant when the build has one (MTCSEC_CFG_SUITES
 * with one bit set), else the one mtcsec_dev_init() chose. */
#if MTCSEC_CFG_SUITES == 1 || MTCSEC_CFG_SUITES == 2 || MTCSEC_CFG_SUITES == 4
#  define DEV_SP(d) (&mtcsec_suite_table[MTCSEC_CFG_SUITES / 2])
#else
#  define DEV_SP(d) ((d)->sp)
#endif

/* A check of a programming error (NULL pointer, invalid configuration):
 * compiled out when MTCSEC_CFG_CHECK_PARAMS is 0 (config.h). */
#if MTCSEC_CFG_CHECK_PARAMS
#  define DEV_BAD_ARGS(cond) (cond)
#else
#  define DEV_BAD_ARGS(cond) 0
#endif

void mtcsec_dev_config_default(mtcsec_dev_config *cfg) {
  if (DEV_BAD_ARGS(cfg == NULL)) {
    return;
  }
  memset(cfg, 0, sizeof(*cfg));
  cfg->suite = MTCSEC_SUITE_CMAC_AES128;
  cfg->m0_interval = 1 * MTCSEC_DEV_TICKS_PER_S;
  cfg->retx_timeout = 2 * MTCSEC_DEV_TICKS_PER_S;
  cfg->retx_max = 3;
}

static void dev_emit(const mtcsec_dev *d, mtcsec_dev_event_type type,
                     const uint8_t *ueid, uint16_t key_id, uint8_t perms,
                     uint32_t lifetime) {
  mtcsec_dev_event ev;
  if (d->cb->on_event == NULL) {
    return;
  }
  ev.type = type;
  ev.ueid = ueid;
  ev.key_id = key_id;
  ev.perms = perms;
  ev.lifetime = lifetime;
  d->cb->on_event(d->user_data, &ev);
}

/* now + dt, saturated at MTCSEC_DEV_TIME_NEVER. */
static mtcsec_dev_time dev_later(mtcsec_dev_time now, mtcsec_dev_time dt) {
  return now > MTCSEC_DEV_TIME_NEVER - dt ? MTCSEC_DEV_TIME_NEVER : now + dt;
}

/* An interval from the configuration as the 32 bits the context keeps,
 * capped. */
static uint32_t dev_time32(mtcsec_dev_time t) {
#if MTCSEC_CFG_DEV_TIME32
  return t;
#else
  return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
#endif
}

/* Whether MTCsID || MTCdID at ids (as M4 and revocations carry them) are
 * ours. */
static int dev_ids_ours(const mtcsec_dev *d, const uint8_t *ids) {
  return memcmp(ids, d->ids + MTCSEC_ID_LEN, MTCSEC_ID_LEN) == 0 &&
         memcmp(ids + MTCSEC_ID_LEN, d->ids, MTCSEC_ID_LEN) == 0;
}

int mtcsec_dev_init(mtcsec_dev *d, const mtcsec_dev_config *cfg,
                    const mtcsec_crypto *crypto, const mtcsec_dev_callbacks *cb,
                    void *user_data) {
  const mtcsec_suite_params *sp;
  int rv;

  if (DEV_BAD_ARGS(d == NULL || cfg == NULL || crypto == NULL ||
                   crypto->ops == NULL || cb == NULL ||
                   cb->persist_nonce == NULL || cfg->pskey == NULL ||
                   cfg->sessions == NULL || cfg->nsessions == 0 ||
                   cfg->nsessions > UINT8_MAX)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* A suite of this build (MTCSEC_CFG_SUITES) whose keys fit. */
  sp = mtcsec_suite_get(cfg->suite);
  if (sp == NULL || ((MTCSEC_CFG_SUITES >> (sp->id - 1)) & 1) == 0 ||
      sp->keylen > MTCSEC_CFG_MAX_KEY_LEN) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(d, 0, sizeof(*d));
  memcpy(d->ids, cfg->mtcd_id, MTCSEC_ID_LEN);
  memcpy(d->ids + MTCSEC_ID_LEN, cfg->mtcs_id, MTCSEC_ID_LEN);
  /* On failure both keys are zeroed: d holds nothing secret. */
  rv =
    mtcsec_kdf_device_keys(crypto, sp, cfg->pskey, d->ids, d->k_auth, d->k_dm);
  if (rv != 0) {
    return rv;
  }
  d->crypto = crypto;
  d->cb = cb;
  d->user_data = user_data;
  d->log = cfg->log;
  d->sp = sp;
  d->next_nonce = cfg->next_nonce;
  d->m0_interval = dev_time32(cfg->m0_interval);
  d->retx_timeout = dev_time32(cfg->retx_timeout);
  d->sessions = cfg->sessions;
  d->nsessions = (uint8_t)cfg->nsessions;
  memset(d->sessions, 0, cfg->nsessions * sizeof(*d->sessions));
  d->retx_max = cfg->retx_max;
  d->send_suites = cfg->send_suites ? 1 : 0;
  return 0;
}

void mtcsec_dev_deinit(mtcsec_dev *d) {
  if (d != NULL) {
    if (d->sessions != NULL) {
      mtcsec_zeroize(d->sessions, (size_t)d->nsessions * sizeof(*d->sessions));
    }
    mtcsec_zeroize(d, sizeof(*d));
  }
}

void mtcsec_dev_set_status(mtcsec_dev *d, int has_battery, uint8_t battery,
                           int has_location, int32_t lat, int32_t lon) {
  if (DEV_BAD_ARGS(d == NULL)) {
    return;
  }
  d->status_present = 0;
  if (has_battery) {
    d->status_present |= MTCSEC_DINFO_BATTERY;
    d->battery = battery;
  }
  if (has_location) {
    d->status_present |= MTCSEC_DINFO_LOCATION;
    d->lat = lat;
    d->lon = lon;
  }
}

uint64_t mtcsec_dev_next_nonce(const mtcsec_dev *d) {
  return DEV_BAD_ARGS(d == NULL) ? 0 : d->next_nonce;
}

/*
 * Opens an exchange: picks a slot, applies the rate limit, writes MTCdInfo,
 * spends a nonce (persisted through the callback first).  Nothing changes
 * unless everything succeeds.  m0 is NULL for mtcsec_dev_start(): no
 * REQ_PERMS, no PATH.
 */
static int dev_begin(mtcsec_dev *d, const mtcsec_m0 *m0, const uint8_t *ueid,
                     uint64_t peer, mtcsec_dev_time now) {
  mtcsec_dev_pending *p = NULL;
  mtcsec_dinfo info;
  mtcsec_ssize n;
  size_t i;

  for (i = 0; i < MTCSEC_DEV_MAX_PENDING; i++) {
    if (d->pending[i].state == PEND_FREE) {
      p = &d->pending[i]; /* a free slot is all zeros */
      break;
    }
  }
  if (p == NULL) {
    return MTCSEC_ERR_BUSY; /* section 4: an M0 with no free slot */
  }
  if (d->have_last_m1 && now - d->last_m1 < d->m0_interval) {
    return MTCSEC_ERR_RATE;
  }
  if (d->next_nonce == UINT64_MAX) {
    return MTCSEC_ERR_EXHAUSTED;
  }

  memset(&info, 0, sizeof(info));
  info.present = d->status_present;
  info.battery = d->battery;
  info.lat = d->lat;
  info.lon = d->lon;
  if (m0 != NULL) {
    /* Always echoed, even 0: asking for nothing grants nothing. */
    info.present |= MTCSEC_DINFO_REQ_PERMS;
    info.req_perms = m0->req_perms;
    if (m0->nhops != 0) {
      info.present |= MTCSEC_DINFO_PATH;
      info.path = m0->hops;
      info.npath = m0->nhops;
    }
  }
  if (d->send_suites) {
    info.present |= MTCSEC_DINFO_SUITES;
    info.suites = &DEV_SP(d)->id;
    info.nsuites = 1;
  }
  /* Straight into the slot (the encoder writes nothing when it fails; the
   * slot is wiped again if the callback does). */
  n = mtcsec_dinfo_encode(PEND_INFO(p), MTCSEC_DEV_MAX_INFO, &info);
  if (n < 0) {
    /* More relays than this build keeps room for. */
    return MTCSEC_ERR_UNSUPPORTED;
  }
  /* Section 4: the counter is durable before the M1 can leave. */
  if (d->cb->persist_nonce(d->user_data, d->next_nonce + 1) != 0) {
    MTCSEC_LOG(d->log, d->user_data, MTCSEC_LOG_ERROR,
               "event=persist_nonce_failed");
    mtcsec_zeroize(p, sizeof(*p));
    return MTCSEC_ERR_CALLBACK;
  }
  memcpy(p->ueid, ueid, MTCSEC_ID_LEN);
  mtcsec_put_u64(PEND_NONCE(p), d->next_nonce);
  PEND_INFO_LEN(p) = (uint8_t)n;
  p->peer = peer;
  p->timeout = d->retx_timeout;
  p->state = PEND_SEND;
  d->next_nonce++;
  d->last_m1 = now;
  d->have_last_m1 = 1;
  MTCSEC_LOG(d->log, d->user_data, MTCSEC_LOG_DEBUG,
             "event=m1_ready nonce=%llu hops=%u",
             (unsigned long long)(d->next_nonce - 1),
             m0 != NULL ? (unsigned)m0->nhops : 0u);
  return 0;
}

int mtcsec_dev_start(mtcsec_dev *d, const uint8_t ueid[MTCSEC_ID_LEN],
                     uint64_t peer, mtcsec_dev_time now) {
  if (DEV_BAD_ARGS(d == NULL || ueid == NULL)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  return dev_begin(d, NULL, ueid, peer, now);
}

/* The index of the live session with key_id, or nsessions. */
static size_t dev_session_index(const mtcsec_dev *d, uint16_t key_id) {
  size_t i;
  for (i = 0; i < d->nsessions; i++) {
    if (d->sessions[i].in_use && d->sessions[i].chan.key_id == key_id) {
      break;
    }
  }
  return i;
}

/* Index of the slot for a new DMKey: same key id, else free, else the
 * one that expires first. */
static size_t dev_session_slot(const mtcsec_dev *d, uint16_t key_id) {
  size_t i = dev_session_index(d, key_id), best = 0;
  if (i < d->nsessions) {
    return i;
  }
  for (i = 0; i < d->nsessions; i++) {
    if (!d->sessions[i].in_use) {
      return i;
    }
    if (d->sessions[i].expiry < d->sessions[best].expiry) {
      best = i;
    }
  }
  return best;
}

/* Ends a session (lifetime over, or revoked): erases it, its channel keys
 * included, and tells the application. */
static void dev_session_end(mtcsec_dev *d, mtcsec_dev_session *s,
                            mtcsec_dev_event_type why) {
  uint8_t ueid[MTCSEC_ID_LEN];
  uint16_t key_id = s->chan.key_id;
  memcpy(ueid, s->ueid, MTCSEC_ID_LEN);
  mtcsec_zeroize(s, sizeof(*s));
  MTCSEC_LOG(d->log, d->user_data, MTCSEC_LOG_INFO, "event=%s key_id=%u",
             why == MTCSEC_DEV_EV_REVOKED ? "revoked" : "expired",
             (unsigned)key_id);
  dev_emit(d, why, ueid, key_id, 0, 0);
}

/* The live session key_id at now in *out: 0, NOT_FOUND, or EXPIRED after
 * ending it (section 3, LIFETIME). */
static int dev_live(mtcsec_dev *d, uint16_t key_id, mtcsec_dev_time now,
                    mtcsec_dev_session **out) {
  size_t i = dev_session_index(d, key_id);
  if (i == d->nsessions) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  *out = &d->sessions[i];
  if (now >= d->sessions[i].expiry) {
    dev_session_end(d, *out, MTCSEC_DEV_EV_EXPIRED);
    return MTCSEC_ERR_EXPIRED;
  }
  return 0;
}

static int dev_handle_m4(mtcsec_dev *d, const uint8_t *pkt, size_t pktlen,
                         mtcsec_dev_time now) {
  mtcsec_dev_pending *p = NULL;
  mtcsec_dev_session *s;
  mtcsec_hs m4;
  mtcsec_sinfo si;
  uint8_t dmkey[MTCSEC_CFG_MAX_KEY_LEN];
  size_t i;
  int rv;

  rv = mtcsec_m4_parse(&m4, &si, pkt, pktlen);
  if (rv != 0) {
    return rv;
  }
  /* Section 4: only while waiting, and only if suite, IDs and UEID are
   * those of our M1. */
  if (m4.suite != DEV_SP(d)->id || !dev_ids_ours(d, m4.id_a)) {
    return MTCSEC_ERR_UNEXPECTED;
  }
  for (i = 0; i < MTCSEC_DEV_MAX_PENDING; i++) {
    mtcsec_dev_pending *c = &d->pending[i];
    if ((c->state == PEND_WAIT || (c->state == PEND_SEND && c->retries > 0)) &&
        memcmp(m4.ueid, c->ueid, MTCSEC_ID_LEN) == 0) {
      p = c;
      break;
    }
  }
  if (p == NULL) {
    return MTCSEC_ERR_UNEXPECTED;
  }
  rv = mtcsec_m4_check(&m4, d->crypto, DEV_SP(d), d->k_auth, p->m1_tail,
                       PEND_TAIL_LEN(p));
  if (rv != 0) {
    MTCSEC_LOG(d->log, d->user_data, MTCSEC_LOG_WARN,
               "event=m4_rejected err=%s", mtcsec_errname(rv));
    return rv;
  }
  /* The slot of the new DMKey (section 4) is set up in place; a provider
   * failure leaves it erased. */
  s = &d->sessions[dev_session_slot(d, si.key_id)];
  mtcsec_zeroize(s, sizeof(*s));
  rv = mtcsec_kdf_dmkey(d->crypto, DEV_SP(d), d->k_dm, d->ids, PEND_NONCE(p),
                        m4.nonce, p->ueid, dmkey);
  if (rv == 0) {
    rv = mtcsec_chan_setup(&s->chan, d->crypto, DEV_SP(d), MTCSEC_CHAN_DEVICE,
                           dmkey, si.key_id);
  }
  mtcsec_zeroize(dmkey, sizeof(dmkey));
  if (rv != 0) {
    return rv;
  }
  s->in_use = 1;
  s->perms = si.perms;
  /* Counted from the acceptance of M4 (section 3, LIFETIME). */
  s->expiry =
    dev_later(now, (mtcsec_dev_time)si.lifetime * MTCSEC_DEV_TICKS_PER_S);
  memcpy(s->ueid, p->ueid, MTCSEC_ID_LEN);
  memcpy(s->mtcd_nonce, PEND_NONCE(p), MTCSEC_NONCE_LEN);
  mtcsec_zeroize(p, sizeof(*p));
  MTCSEC_LOG(d->log, d->user_data, MTCSEC_LOG_INFO,
             "event=established key_id=%u perms=0x%02x lifetime=%lu",
             (unsigned)si.key_id, (unsigned)si.perms,
             (unsigned long)si.lifetime);
  dev_emit(d, MTCSEC_DEV_EV_ESTABLISHED, s->ueid, si.key_id, si.perms,
           si.lifetime);
  return 0;
}

static int dev_handle_revoke(mtcsec_dev *d, const uint8_t *pkt, size_t pktlen) {
  mtcsec_revoke r;
  mtcsec_dev_session *s;
  mtcsec_iov iov;
  size_t i;
  int rv;

  rv = mtcsec_revoke_decode(&r, pkt, pktlen, DEV_SP(d)->miclen);
  if (rv != 0) {
    return rv;
  }
  if (!dev_ids_ours(d, r.mtcs_id)) {
    return MTCSEC_ERR_MISMATCH;
  }
  iov.base = pkt;
  iov.len = MTCSEC_REVOKE_FIXED_LEN;
  rv = mtcsec_mic_check(d->crypto, DEV_SP(d), d->k_auth, &iov, 1, r.mic);
  if (rv != 0) {
    return rv;
  }
  i = dev_session_index(d, r.key_id);
  s = &d->sessions[i];
  if (i == d->nsessions ||
      memcmp(s->mtcd_nonce, r.mtcd_nonce, MTCSEC_NONCE_LEN) != 0) {
    return MTCSEC_ERR_NOT_FOUND; /* section 7: ignored */
  }
  dev_session_end(d, s, MTCSEC_DEV_EV_REVOKED);
  return 0;
}

int mtcsec_dev_read(mtcsec_dev *d, const uint8_t *pkt, size_t pktlen,
                    uint64_t peer, mtcsec_dev_time now) {
  mtcsec_m0 m0;
  int type, rv;

  if (DEV_BAD_ARGS(d == NULL || pkt == NULL)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  type = mtcsec_msg_type(pkt, pktlen);
  switch (type) {
  case MTCSEC_MSG_M0:
    rv = mtcsec_m0_decode(&m0, pkt, pktlen);
    if (rv != 0) {
      return rv;
    }
    return dev_begin(d, &m0, m0.ueid, peer, now);
  case MTCSEC_MSG_M4:
    return dev_handle_m4(d, pkt, pktlen, now);
  case MTCSEC_MSG_REVOKE:
    return dev_handle_revoke(d, pkt, pktlen);
  default:
    return type < 0 ? type : MTCSEC_ERR_UNSUPPORTED;
  }
}

/* Longest backoff (50 min): keeps the jitter arithmetic in 32 bits, so
 * that a Cortex-M build pulls in no 64-bit division from libgcc. */
#define DEV_MAX_BACKOFF (3000u * MTCSEC_DEV_TICKS_PER_S)

/* now + timeout scaled by a random factor in [0.8, 1.2] (section 4). */
static mtcsec_dev_time dev_deadline(mtcsec_dev *d, mtcsec_dev_time now,
                                    uint32_t timeout) {
  uint8_t r[2] = {0, 0};
  uint32_t permille = 1000;
  if (d->crypto->ops->random(d->crypto->ctx, r, sizeof(r)) == 0) {
    permille = 800u + (uint32_t)((r[0] << 8) | r[1]) % 401u;
  }
  if (timeout > DEV_MAX_BACKOFF) {
    timeout = DEV_MAX_BACKOFF;
  }
  return dev_later(now, timeout * permille / 1000u);
}

mtcsec_ssize mtcsec_dev_write(mtcsec_dev *d, uint8_t *dest, size_t destlen,
                              uint64_t *peer, mtcsec_dev_time now) {
  mtcsec_m1_fields f;
  mtcsec_ssize n;
  size_t i;

  if (DEV_BAD_ARGS(d == NULL || peer == NULL ||
                   (dest == NULL && destlen != 0))) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < MTCSEC_DEV_MAX_PENDING; i++) {
    mtcsec_dev_pending *p = &d->pending[i];
    if (p->state != PEND_SEND) {
      continue;
    }
    if (destlen < MTCSEC_HS_FIXED_LEN + PEND_INFO_LEN(p) + DEV_SP(d)->miclen) {
      return MTCSEC_ERR_NOBUF;
    }
    /* The same M1 every time: same nonce, same info, hence same MIC. */
    f.suite = DEV_SP(d)->id;
    f.mtcd_id = d->ids;
    f.mtcs_id = d->ids + MTCSEC_ID_LEN;
    f.nonce = PEND_NONCE(p);
    f.ueid = p->ueid;
    f.info = PEND_INFO(p);
    f.info_len = PEND_INFO_LEN(p);
    n = mtcsec_m1_write(dest, d->crypto, DEV_SP(d), d->k_auth, &f);
    if (n < 0) {
      return n;
    }
    p->state = PEND_WAIT;
    p->deadline = dev_deadline(d, now, p->timeout);
    *peer = p->peer;
    return n;
  }
  return 0;
}

mtcsec_dev_time mtcsec_dev_get_expiry(const mtcsec_dev *d) {
  mtcsec_dev_time t = MTCSEC_DEV_TIME_NEVER;
  size_t i;
  if (DEV_BAD_ARGS(d == NULL)) {
    return t;
  }
  for (i = 0; i < MTCSEC_DEV_MAX_PENDING; i++) {
    if (d->pending[i].state == PEND_WAIT && d->pending[i].deadline < t) {
      t = d->pending[i].deadline;
    }
  }
  for (i = 0; i < d->nsessions; i++) {
    if (d->sessions[i].in_use && d->sessions[i].expiry < t) {
      t = d->sessions[i].expiry;
    }
  }
  return t;
}

int mtcsec_dev_handle_expiry(mtcsec_dev *d, mtcsec_dev_time now) {
  size_t i;
  if (DEV_BAD_ARGS(d == NULL)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < MTCSEC_DEV_MAX_PENDING; i++) {
    mtcsec_dev_pending *p = &d->pending[i];
    if (p->state != PEND_WAIT || now < p->deadline) {
      continue;
    }
    if (p->retries < d->retx_max) {
      p->retries++;
      p->timeout =
        p->timeout >= DEV_MAX_BACKOFF / 2 ? DEV_MAX_BACKOFF : p->timeout * 2;
      p->state = PEND_SEND;
    } else {
      /* Nothing secret in the slot: it is freed after the event. */
      MTCSEC_LOG(d->log, d->user_data, MTCSEC_LOG_INFO, "event=gave_up");
      dev_emit(d, MTCSEC_DEV_EV_GAVE_UP, p->ueid, 0, 0, 0);
      mtcsec_zeroize(p, sizeof(*p));
    }
  }
  for (i = 0; i < d->nsessions; i++) {
    mtcsec_dev_session *s = &d->sessions[i];
    if (s->in_use && now >= s->expiry) {
      dev_session_end(d, s, MTCSEC_DEV_EV_EXPIRED);
    }
  }
  return 0;
}

mtcsec_ssize mtcsec_dev_open(mtcsec_dev *d, uint8_t *dest, size_t destlen,
                             const uint8_t *rec, size_t reclen,
                             mtcsec_dev_time now,
                             mtcsec_dev_record_info *info) {
  mtcsec_record_hdr h;
  mtcsec_dev_session *s;
  mtcsec_ssize n;

  if (DEV_BAD_ARGS(d == NULL || rec == NULL ||
                   (dest == NULL && destlen != 0))) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  n = mtcsec_record_hdr_decode(&h, rec, reclen, DEV_SP(d)->miclen);
  if (n == 0) {
    n = dev_live(d, h.key_id, now, &s);
  }
  if (n != 0) {
    return n;
  }
  n = mtcsec_chan_open_live(&s->chan, dest, destlen, rec, reclen, h.seq);
  if (n >= 0 && info != NULL) {
    info->key_id = h.key_id;
    info->perms = s->perms;
    memcpy(info->ueid, s->ueid, MTCSEC_ID_LEN);
  }
  return n;
}

mtcsec_ssize mtcsec_dev_seal(mtcsec_dev *d, uint16_t key_id, uint8_t *dest,
                             size_t destlen, const uint8_t *pt, size_t ptlen,
                             mtcsec_dev_time now) {
  mtcsec_dev_session *s;
  int rv;
  if (DEV_BAD_ARGS(d == NULL || dest == NULL || (pt == NULL && ptlen != 0))) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = dev_live(d, key_id, now, &s);
  if (rv != 0) {
    return rv;
  }
  return mtcsec_chan_seal_live(&s->chan, dest, destlen, pt, ptlen);
}

int mtcsec_dev_authorize(const mtcsec_dev *d, uint16_t key_id, uint8_t required,
                         mtcsec_dev_time now) {
  const mtcsec_dev_session *s;
  size_t i;
  if (DEV_BAD_ARGS(d == NULL)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  i = dev_session_index(d, key_id);
  if (i == d->nsessions) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  s = &d->sessions[i];
  if (now >= s->expiry) {
    return MTCSEC_ERR_EXPIRED;
  }
  return (s->perms & required) == required ? 0 : MTCSEC_ERR_FORBIDDEN;
}
