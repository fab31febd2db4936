/*
 * UE role (PROTOCOL.md sections 4-6): relays M1 to the MTCs as M2, receives
 * M3 (M4 + DMKey), keeps the DMKey as a direct channel and forwards M4 to the
 * device.
 *
 * Memory: the exchange and session tables are allocated once, in
 * mtcsec_ue_new(), through the caller's mtcsec_mem; reading or writing a
 * message never allocates.
 *
 * Exchange life cycle (one slot per M1 in flight, named by req_id on the
 * server link):
 *
 *   M1 read -> UE_X_SEND_M2 --write--> UE_X_WAIT_M3 --M3--> UE_X_SEND_M4
 *                                           |                    |
 *                                      ERR / timeout        write: freed
 *                                         freed
 *
 * The deadline (exchange_timeout) runs from the M1 and covers SEND_M2 and
 * WAIT_M3; an exchange with M4 queued only waits for mtcsec_ue_write().
 */
#include <inttypes.h>
#include <string.h>

#include <mtcsec/phone.h>
#include <mtcsec/codec.h>
#include <mtcsec/channel.h>

#include "core/util.h"

/* Bytes of ERR detail handed to the application (NUL excluded). */
#define UE_DETAIL_MAX 127

typedef enum ue_xstate {
  UE_X_FREE = 0,
  UE_X_SEND_M2 = 1, /* M1 stored: M2 frame to write */
  UE_X_WAIT_M3 = 2, /* M2 written: waiting for M3 or ERR */
  UE_X_SEND_M4 = 3  /* M3 accepted: M4 datagram to write */
} ue_xstate;

typedef struct ue_exchange {
  ue_xstate state;
  uint32_t req_id;
  uint64_t peer; /* device-link peer the M1 came from */
  mtcsec_tstamp deadline;
  uint8_t suite;
  uint8_t mtcd_id[MTCSEC_ID_LEN];
  uint8_t mtcs_id[MTCSEC_ID_LEN];
  size_t m1len;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  size_t m4len;
  uint8_t m4[MTCSEC_HS_MAX_LEN];
} ue_exchange;

typedef struct ue_session {
  uint8_t in_use;
  uint8_t mtcd_id[MTCSEC_ID_LEN];
  mtcsec_tstamp expiry;
  mtcsec_chan chan;
} ue_session;

struct mtcsec_ue {
  mtcsec_mem mem;
  const mtcsec_crypto *crypto;
  mtcsec_ue_callbacks cb;
  void *user_data;
  mtcsec_log_fn log;
  uint8_t ueid[MTCSEC_ID_LEN];
  mtcsec_tstamp exchange_timeout;
  uint32_t next_req_id;
  size_t wcursor; /* where mtcsec_ue_write() resumes its scan */
  size_t nexchanges;
  ue_exchange *exchanges;
  size_t nsessions;
  ue_session *sessions;
};

void mtcsec_ue_config_default(mtcsec_ue_config *cfg) {
  if (cfg == NULL) {
    return;
  }
  memset(cfg, 0, sizeof(*cfg));
  cfg->max_exchanges = 64;
  cfg->max_sessions = 256;
  cfg->exchange_timeout = 10000;
  cfg->mem = NULL;
  cfg->log = NULL;
}

static void ue_exchange_clear(ue_exchange *x) {
  /* M1 and M4 are not secret, but a freed slot keeps nothing. */
  mtcsec_zeroize(x, sizeof(*x));
  x->state = UE_X_FREE;
}

static void ue_session_clear(ue_session *s) {
  mtcsec_chan_deinit(&s->chan);
  mtcsec_zeroize(s, sizeof(*s));
}

static void ue_emit(mtcsec_ue *ue, const mtcsec_ue_event *ev) {
  if (ue->cb.on_event != NULL) {
    ue->cb.on_event(ue->user_data, ev);
  }
}

int mtcsec_ue_new(mtcsec_ue **pue, const mtcsec_ue_config *cfg,
                  const mtcsec_crypto *crypto, const mtcsec_ue_callbacks *cb,
                  void *user_data) {
  int rv = MTCSEC_ERR_INVALID_ARGUMENT;
  const mtcsec_mem *mem;
  mtcsec_ue *ue = NULL;

  if (pue == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  *pue = NULL;
  if (cfg == NULL || crypto == NULL || crypto->ops == NULL ||
      cfg->max_exchanges == 0 || cfg->max_sessions == 0 ||
      cfg->exchange_timeout == 0) {
    goto cleanup;
  }
  mem = cfg->mem != NULL ? cfg->mem : mtcsec_mem_default();
  if (mem->calloc == NULL || mem->free == NULL) {
    goto cleanup;
  }

  rv = MTCSEC_ERR_NOMEM;
  ue = mem->calloc(1, sizeof(*ue), mem->user_data);
  if (ue == NULL) {
    goto cleanup;
  }
  ue->mem = *mem;
  /* calloc checks nmemb * size for overflow. */
  ue->exchanges =
    mem->calloc(cfg->max_exchanges, sizeof(ue_exchange), mem->user_data);
  if (ue->exchanges == NULL) {
    goto cleanup;
  }
  ue->nexchanges = cfg->max_exchanges;
  ue->sessions =
    mem->calloc(cfg->max_sessions, sizeof(ue_session), mem->user_data);
  if (ue->sessions == NULL) {
    goto cleanup;
  }
  ue->nsessions = cfg->max_sessions;

  ue->crypto = crypto;
  if (cb != NULL) {
    ue->cb = *cb;
  }
  ue->user_data = user_data;
  ue->log = cfg->log;
  memcpy(ue->ueid, cfg->ueid, MTCSEC_ID_LEN);
  ue->exchange_timeout = cfg->exchange_timeout;
  ue->next_req_id = 1;

  *pue = ue;
  ue = NULL;
  rv = 0;

cleanup:
  mtcsec_ue_del(ue);
  return rv;
}

void mtcsec_ue_del(mtcsec_ue *ue) {
  mtcsec_mem mem;
  size_t i;

  if (ue == NULL) {
    return;
  }
  mem = ue->mem;
  if (ue->exchanges != NULL) {
    mtcsec_zeroize(ue->exchanges, ue->nexchanges * sizeof(ue_exchange));
    mem.free(ue->exchanges, mem.user_data);
  }
  if (ue->sessions != NULL) {
    for (i = 0; i < ue->nsessions; i++) {
      ue_session_clear(&ue->sessions[i]);
    }
    mem.free(ue->sessions, mem.user_data);
  }
  mtcsec_zeroize(ue, sizeof(*ue));
  mem.free(ue, mem.user_data);
}

mtcsec_ssize mtcsec_ue_m0(mtcsec_ue *ue, uint8_t *dest, size_t destlen,
                          uint8_t req_perms) {
  if (ue == NULL || (dest == NULL && destlen > 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  return mtcsec_m0_encode(dest, destlen, ue->ueid, req_perms, NULL, 0);
}

/* ------------------------------------------------------------ lookups */

static ue_exchange *ue_find_req(mtcsec_ue *ue, uint32_t req_id) {
  size_t i;
  for (i = 0; i < ue->nexchanges; i++) {
    if (ue->exchanges[i].state != UE_X_FREE &&
        ue->exchanges[i].req_id == req_id) {
      return &ue->exchanges[i];
    }
  }
  return NULL;
}

static ue_session *ue_find_session(mtcsec_ue *ue, const uint8_t *mtcd_id) {
  size_t i;
  for (i = 0; i < ue->nsessions; i++) {
    if (ue->sessions[i].in_use &&
        memcmp(ue->sessions[i].mtcd_id, mtcd_id, MTCSEC_ID_LEN) == 0) {
      return &ue->sessions[i];
    }
  }
  return NULL;
}

static ue_session *ue_free_session(mtcsec_ue *ue) {
  size_t i;
  for (i = 0; i < ue->nsessions; i++) {
    if (!ue->sessions[i].in_use) {
      return &ue->sessions[i];
    }
  }
  return NULL;
}

/* The next req_id: never 0, never one still in flight (section 5: the MTCs
 * echoes it, so two live exchanges must not share it). */
static uint32_t ue_next_req_id(mtcsec_ue *ue) {
  uint32_t id;
  for (;;) {
    id = ue->next_req_id++;
    if (ue->next_req_id == 0) {
      ue->next_req_id = 1;
    }
    /* Terminates: at most nexchanges ids are in flight. */
    if (id != 0 && ue_find_req(ue, id) == NULL) {
      return id;
    }
  }
}

/* ------------------------------------------------------- device link */

int mtcsec_ue_read_device(mtcsec_ue *ue, const uint8_t *pkt, size_t pktlen,
                          uint64_t peer, mtcsec_tstamp now) {
  int rv;
  mtcsec_hs m1;
  ue_exchange *x = NULL;
  size_t i;
  char idhex[17];

  if (ue == NULL || (pkt == NULL && pktlen > 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = mtcsec_msg_type(pkt, pktlen);
  if (rv < 0) {
    return rv;
  }
  if (rv != MTCSEC_MSG_M1) {
    /* Records go to mtcsec_ue_channel(); nothing else travels to a UE. */
    return MTCSEC_ERR_UNSUPPORTED;
  }
  rv = mtcsec_hs_decode(&m1, MTCSEC_MSG_M1, pkt, pktlen);
  if (rv != 0) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (m1.miclen == 0 || mtcsec_suite_get(m1.suite) == NULL) {
    return MTCSEC_ERR_UNSUPPORTED;
  }
  /* Known suite: the codec checked the exact length, so it fits. */
  if (pktlen > MTCSEC_HS_MAX_LEN) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (memcmp(m1.ueid, ue->ueid, MTCSEC_ID_LEN) != 0) {
    return MTCSEC_ERR_MISMATCH;
  }

  /* Section 4: a UE that receives duplicate M1s forwards one. */
  for (i = 0; i < ue->nexchanges; i++) {
    const ue_exchange *y = &ue->exchanges[i];
    if (y->state != UE_X_FREE && y->m1len == pktlen &&
        memcmp(y->m1, pkt, pktlen) == 0) {
      MTCSEC_LOG(ue->log, ue->user_data, MTCSEC_LOG_DEBUG,
                 "role=ue ev=m1_duplicate mtcd=%s req_id=%" PRIu32,
                 mtcsec_id_hex(idhex, m1.id_a), y->req_id);
      return MTCSEC_ERR_UNEXPECTED;
    }
    if (x == NULL && y->state == UE_X_FREE) {
      x = &ue->exchanges[i];
    }
  }
  if (x == NULL) {
    MTCSEC_LOG(ue->log, ue->user_data, MTCSEC_LOG_WARN,
               "role=ue ev=m1_busy mtcd=%s", mtcsec_id_hex(idhex, m1.id_a));
    return MTCSEC_ERR_BUSY;
  }

  x->req_id = ue_next_req_id(ue);
  x->peer = peer;
  x->deadline = now > MTCSEC_TSTAMP_NEVER - ue->exchange_timeout
                  ? MTCSEC_TSTAMP_NEVER
                  : now + ue->exchange_timeout;
  x->suite = m1.suite;
  memcpy(x->mtcd_id, m1.id_a, MTCSEC_ID_LEN);
  memcpy(x->mtcs_id, m1.id_b, MTCSEC_ID_LEN);
  memcpy(x->m1, pkt, pktlen);
  x->m1len = pktlen;
  x->m4len = 0;
  x->state = UE_X_SEND_M2;

  MTCSEC_LOG(ue->log, ue->user_data, MTCSEC_LOG_INFO,
             "role=ue ev=m1 mtcd=%s req_id=%" PRIu32,
             mtcsec_id_hex(idhex, x->mtcd_id), x->req_id);
  return 0;
}

/* -------------------------------------------------------- server link */

/* M3 (section 5): the M4 must answer this exchange's M1. */
static int ue_handle_m3(mtcsec_ue *ue, ue_exchange *x, const uint8_t *body,
                        size_t bodylen, mtcsec_tstamp now) {
  int rv = MTCSEC_ERR_MALFORMED;
  mtcsec_hs m4;
  mtcsec_sinfo sinfo;
  const uint8_t *dmkey_in = NULL;
  size_t dmkeylen = 0;
  size_t m4len;
  const mtcsec_suite_params *sp;
  uint8_t dmkey[MTCSEC_MAX_KEY_LEN];
  mtcsec_chan chan;
  ue_session *s;
  mtcsec_tstamp expiry, life_ms;
  mtcsec_ue_event ev;
  char idhex[17];

  memset(&chan, 0, sizeof(chan));

  if (mtcsec_m3_decode(&m4, &dmkey_in, &dmkeylen, body, bodylen) != 0) {
    goto cleanup;
  }
  sp = mtcsec_suite_get(m4.suite);
  if (sp == NULL || dmkeylen != sp->keylen || dmkeylen > sizeof(dmkey) ||
      bodylen < dmkeylen) {
    goto cleanup;
  }
  m4len = bodylen - dmkeylen;
  if (m4len > sizeof(x->m4)) {
    goto cleanup;
  }

  /* Section 4: suite, IDs and UEID of M4 are those of M1 (id_a of M4 is
   * MTCsID, id_b MTCdID).  The device checks this too; checking it here
   * keeps a confused server from installing a key under the wrong device. */
  if (m4.suite != x->suite || memcmp(m4.id_a, x->mtcs_id, MTCSEC_ID_LEN) != 0 ||
      memcmp(m4.id_b, x->mtcd_id, MTCSEC_ID_LEN) != 0 ||
      memcmp(m4.ueid, ue->ueid, MTCSEC_ID_LEN) != 0) {
    MTCSEC_LOG(ue->log, ue->user_data, MTCSEC_LOG_WARN,
               "role=ue ev=m3_mismatch mtcd=%s req_id=%" PRIu32,
               mtcsec_id_hex(idhex, x->mtcd_id), x->req_id);
    rv = MTCSEC_ERR_MISMATCH;
    goto cleanup;
  }
  if (mtcsec_sinfo_decode(&sinfo, m4.info, m4.info_len) != 0) {
    goto cleanup;
  }

  /* Section 3: the UE counts LIFETIME from its receipt of M3. */
  life_ms = (mtcsec_tstamp)sinfo.lifetime * 1000u;
  expiry =
    now > MTCSEC_TSTAMP_NEVER - life_ms ? MTCSEC_TSTAMP_NEVER : now + life_ms;

  s = ue_find_session(ue, x->mtcd_id);
  if (s == NULL) {
    s = ue_free_session(ue);
    if (s == NULL) {
      MTCSEC_LOG(ue->log, ue->user_data, MTCSEC_LOG_WARN,
                 "role=ue ev=m3_no_session_slot mtcd=%s req_id=%" PRIu32,
                 mtcsec_id_hex(idhex, x->mtcd_id), x->req_id);
      rv = MTCSEC_ERR_NOMEM;
      goto cleanup;
    }
  }

  memcpy(dmkey, dmkey_in, dmkeylen);
  /* Into a temporary first: a provider failure leaves any previous session
   * with this device intact. */
  rv = mtcsec_chan_init(&chan, ue->crypto, m4.suite, MTCSEC_CHAN_UE, dmkey,
                        sinfo.key_id, expiry);
  if (rv != 0) {
    goto cleanup;
  }

  /* The same DMKey again: a duplicated M1 (radio, relay, or an attacker
   * replaying it) came back as the same M3 from the server's duplicate
   * cache (section 4).  Keep the live channel as it is: restarting it would
   * send u2d records with sequence numbers, hence CCM nonces, already used,
   * empty the d2u replay window and extend the lifetime.  Only the M4 is
   * sent again, for a device that lost it. */
  if (s->in_use && s->chan.live && s->chan.suite == chan.suite &&
      s->chan.key_id == chan.key_id &&
      (mtcsec_ct_memcmp(s->chan.tx_key, chan.tx_key, sizeof(chan.tx_key)) |
       mtcsec_ct_memcmp(s->chan.rx_key, chan.rx_key, sizeof(chan.rx_key)) |
       mtcsec_ct_memcmp(s->chan.tx_iv, chan.tx_iv, sizeof(chan.tx_iv)) |
       mtcsec_ct_memcmp(s->chan.rx_iv, chan.rx_iv, sizeof(chan.rx_iv))) == 0) {
    memcpy(x->m4, body, m4len);
    x->m4len = m4len;
    x->state = UE_X_SEND_M4;
    x->deadline = MTCSEC_TSTAMP_NEVER;
    MTCSEC_LOG(ue->log, ue->user_data, MTCSEC_LOG_INFO,
               "role=ue ev=m3_same_key mtcd=%s req_id=%" PRIu32 " key_id=%u",
               mtcsec_id_hex(idhex, x->mtcd_id), x->req_id,
               (unsigned)sinfo.key_id);
    rv = 0;
    goto cleanup;
  }

  /* One DMKey per device: a new one replaces the old. */
  if (s->in_use) {
    ue_session_clear(s);
  }
  s->chan = chan;
  s->in_use = 1;
  memcpy(s->mtcd_id, x->mtcd_id, MTCSEC_ID_LEN);
  s->expiry = expiry;

  memcpy(x->m4, body, m4len);
  x->m4len = m4len;
  x->state = UE_X_SEND_M4;
  x->deadline = MTCSEC_TSTAMP_NEVER;

  MTCSEC_LOG(ue->log, ue->user_data, MTCSEC_LOG_INFO,
             "role=ue ev=established mtcd=%s req_id=%" PRIu32
             " key_id=%u lifetime=%" PRIu32,
             mtcsec_id_hex(idhex, x->mtcd_id), x->req_id,
             (unsigned)sinfo.key_id, sinfo.lifetime);

  memset(&ev, 0, sizeof(ev));
  ev.type = MTCSEC_UE_EV_ESTABLISHED;
  ev.mtcd_id = x->mtcd_id;
  ev.req_id = x->req_id;
  ev.key_id = sinfo.key_id;
  ev.perms = sinfo.perms;
  ev.lifetime = sinfo.lifetime;
  ev.detail = "";
  ue_emit(ue, &ev);
  rv = 0;

cleanup:
  mtcsec_zeroize(dmkey, sizeof(dmkey));
  mtcsec_zeroize(&chan, sizeof(chan));
  return rv;
}

/* ERR (section 5): code(1) || detail. */
static int ue_handle_err(mtcsec_ue *ue, ue_exchange *x, const uint8_t *body,
                         size_t bodylen) {
  char detail[UE_DETAIL_MAX + 1];
  size_t n, i;
  mtcsec_ue_event ev;
  char idhex[17];

  if (bodylen < 1) {
    return MTCSEC_ERR_MALFORMED;
  }
  /* The detail is not normative and comes from the peer: keep it bounded
   * and printable (a stray NUL or control byte becomes '?'). */
  n = bodylen - 1;
  if (n > UE_DETAIL_MAX) {
    n = UE_DETAIL_MAX;
  }
  for (i = 0; i < n; i++) {
    uint8_t c = body[1 + i];
    detail[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  detail[n] = '\0';

  MTCSEC_LOG(ue->log, ue->user_data, MTCSEC_LOG_WARN,
             "role=ue ev=err mtcd=%s req_id=%" PRIu32 " code=%s",
             mtcsec_id_hex(idhex, x->mtcd_id), x->req_id,
             mtcsec_errcode_name(body[0]));

  memset(&ev, 0, sizeof(ev));
  ev.type = MTCSEC_UE_EV_ERROR;
  ev.mtcd_id = x->mtcd_id;
  ev.req_id = x->req_id;
  ev.errcode = body[0];
  ev.detail = detail;
  ue_emit(ue, &ev);

  ue_exchange_clear(x);
  return 0;
}

int mtcsec_ue_read_server(mtcsec_ue *ue, const uint8_t *frame, size_t framelen,
                          mtcsec_tstamp now) {
  mtcsec_frame fr;
  mtcsec_ssize n;
  ue_exchange *x;

  if (ue == NULL || (frame == NULL && framelen > 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  n = mtcsec_frame_parse(&fr, frame, framelen);
  /* Exactly one complete frame. */
  if (n <= 0 || (size_t)n != framelen) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (fr.type != MTCSEC_MSG_M3 && fr.type != MTCSEC_MSG_ERR) {
    return MTCSEC_ERR_MALFORMED;
  }
  x = ue_find_req(ue, fr.req_id);
  /* Only an exchange whose M2 left can be answered. */
  if (x == NULL || x->state != UE_X_WAIT_M3) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  if (fr.type == MTCSEC_MSG_M3) {
    return ue_handle_m3(ue, x, fr.body, fr.bodylen, now);
  }
  return ue_handle_err(ue, x, fr.body, fr.bodylen);
}

/* -------------------------------------------------------------- write */

mtcsec_ssize mtcsec_ue_write(mtcsec_ue *ue, uint8_t *dest, size_t destlen,
                             mtcsec_link *link, uint64_t *peer,
                             mtcsec_tstamp now) {
  size_t k, i;
  ue_exchange *x;
  mtcsec_ssize n;

  (void)now;
  if (ue == NULL || (dest == NULL && destlen > 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* Round robin from where the last write stopped, so one busy slot does
   * not starve the others. */
  for (k = 0; k < ue->nexchanges; k++) {
    i = (ue->wcursor + k) % ue->nexchanges;
    x = &ue->exchanges[i];
    switch (x->state) {
    case UE_X_SEND_M2:
      n = mtcsec_frame_encode(dest, destlen, MTCSEC_MSG_M2, x->req_id, x->m1,
                              x->m1len);
      if (n < 0) {
        return n;
      }
      x->state = UE_X_WAIT_M3;
      if (link != NULL) {
        *link = MTCSEC_LINK_SERVER;
      }
      if (peer != NULL) {
        *peer = 0;
      }
      ue->wcursor = (i + 1) % ue->nexchanges;
      return n;
    case UE_X_SEND_M4:
      if (destlen < x->m4len) {
        return MTCSEC_ERR_NOBUF;
      }
      memcpy(dest, x->m4, x->m4len);
      n = (mtcsec_ssize)x->m4len;
      if (link != NULL) {
        *link = MTCSEC_LINK_DEVICE;
      }
      if (peer != NULL) {
        *peer = x->peer;
      }
      /* Done: a resent M1 opens a new exchange, which the MTCs answers
       * with the same M3 (section 4, retries). */
      ue_exchange_clear(x);
      ue->wcursor = (i + 1) % ue->nexchanges;
      return n;
    case UE_X_FREE:
    case UE_X_WAIT_M3:
    default:
      break;
    }
  }
  return 0;
}

/* ------------------------------------------------------------- timers */

mtcsec_tstamp mtcsec_ue_get_expiry(const mtcsec_ue *ue) {
  mtcsec_tstamp t = MTCSEC_TSTAMP_NEVER;
  size_t i;

  if (ue == NULL) {
    return t;
  }
  for (i = 0; i < ue->nexchanges; i++) {
    const ue_exchange *x = &ue->exchanges[i];
    if ((x->state == UE_X_SEND_M2 || x->state == UE_X_WAIT_M3) &&
        x->deadline < t) {
      t = x->deadline;
    }
  }
  for (i = 0; i < ue->nsessions; i++) {
    const ue_session *s = &ue->sessions[i];
    if (s->in_use && s->expiry < t) {
      t = s->expiry;
    }
  }
  return t;
}

int mtcsec_ue_handle_expiry(mtcsec_ue *ue, mtcsec_tstamp now) {
  size_t i;
  uint16_t key_id;
  mtcsec_ue_event ev;
  char idhex[17];

  if (ue == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < ue->nexchanges; i++) {
    ue_exchange *x = &ue->exchanges[i];
    if ((x->state != UE_X_SEND_M2 && x->state != UE_X_WAIT_M3) ||
        x->deadline > now) {
      continue;
    }
    MTCSEC_LOG(ue->log, ue->user_data, MTCSEC_LOG_WARN,
               "role=ue ev=timeout mtcd=%s req_id=%" PRIu32,
               mtcsec_id_hex(idhex, x->mtcd_id), x->req_id);
    memset(&ev, 0, sizeof(ev));
    ev.type = MTCSEC_UE_EV_TIMEOUT;
    ev.mtcd_id = x->mtcd_id;
    ev.req_id = x->req_id;
    ev.detail = "";
    ue_emit(ue, &ev);
    ue_exchange_clear(x);
  }
  for (i = 0; i < ue->nsessions; i++) {
    ue_session *s = &ue->sessions[i];
    if (!s->in_use || s->expiry > now) {
      continue;
    }
    MTCSEC_LOG(ue->log, ue->user_data, MTCSEC_LOG_INFO,
               "role=ue ev=expired mtcd=%s key_id=%u",
               mtcsec_id_hex(idhex, s->mtcd_id), (unsigned)s->chan.key_id);
    /* Section 3: erase the key after its lifetime, then tell the app. */
    key_id = s->chan.key_id;
    mtcsec_chan_deinit(&s->chan);
    memset(&ev, 0, sizeof(ev));
    ev.type = MTCSEC_UE_EV_EXPIRED;
    ev.mtcd_id = s->mtcd_id;
    ev.key_id = key_id;
    ev.detail = "";
    ue_emit(ue, &ev);
    ue_session_clear(s);
  }
  return 0;
}

/* ----------------------------------------------------------- sessions */

mtcsec_chan *mtcsec_ue_channel(mtcsec_ue *ue,
                               const uint8_t mtcd_id[MTCSEC_ID_LEN]) {
  ue_session *s;
  if (ue == NULL || mtcd_id == NULL) {
    return NULL;
  }
  s = ue_find_session(ue, mtcd_id);
  return s != NULL ? &s->chan : NULL;
}

int mtcsec_ue_forget(mtcsec_ue *ue, const uint8_t mtcd_id[MTCSEC_ID_LEN]) {
  ue_session *s;
  if (ue == NULL || mtcd_id == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  s = ue_find_session(ue, mtcd_id);
  if (s == NULL) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  ue_session_clear(s);
  return 0;
}

size_t mtcsec_ue_inflight(const mtcsec_ue *ue) {
  size_t i, n = 0;
  if (ue == NULL) {
    return 0;
  }
  for (i = 0; i < ue->nexchanges; i++) {
    if (ue->exchanges[i].state != UE_X_FREE) {
      n++;
    }
  }
  return n;
}
