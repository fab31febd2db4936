/*
 * `mtcsec sgsn run`: a simulated visited SGSN (docs/CELLULAR-SYSTEM.md
 * sections 1 and 2, spec/CELLULAR.md "visited SGSN").
 *
 * One poll() loop over three sockets:
 *  - radio (UDP, --listen): MS contexts keyed on (peer address, TLLI);
 *  - GSUP over IPA/TCP to the home proxy or any GSUP HLR (--hlr): the IPA
 *    identity exchange, Send Auth Info (with AUTS and RAND to resynchronise),
 *    Update Location (a result is enough; Insert Subscriber Data, if the HLR
 *    sends one, is answered), the policy IE 0xF0;
 *  - "GTP" (UDP, toward --ggsn): CREATE/DELETE PDP and G-PDUs.
 *
 * Keys: of the one vector kept per attach the SGSN holds RAND, AUTN, XRES
 * and, for a subscriber whose policy has integrity on, IK; a CK (or Kc) in
 * the tuples is zeroized as soon as the message is decoded and logged as
 * ck_received=1.  Uplink LLC frames are checked (MAC-I with IK, or FCS),
 * frames that fail are dropped and counted and change no counter; SAPI-3
 * information (AES-CCM records) is relayed unopened as G-PDUs, downlink
 * G-PDUs go back in SAPI-3 frames with a downlink MAC-I.
 *
 * An ATTACH_REQUEST is not authenticated (anyone on the radio can send one
 * with any IMSI), so it never costs an attached MS its context
 * (docs/CELLULAR-SYSTEM.md section 1): the context of the same IMSI under
 * another TLLI is released only once the new attach's RES matched; a full
 * table makes room only by evicting a pending attach (WAIT_SAI, WAIT_RES;
 * the oldest first), never an authenticated one, and else rejects the
 * newcomer with GMM cause 0x16 (congestion); pending attaches end after
 * SG_PENDING_TIMEOUT_MS.  A MAC failure reported by the MS may answer a
 * challenge someone else forged: the SGSN sends its own challenge again
 * (at most SG_MAX_MAC_FAILURES times) before it gives up.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <osmocom/core/logging.h>
#include <osmocom/core/msgb.h>
#include <osmocom/gsm/gsup.h>

#include <mtcsec/cellular.h>

#include "agent_cell.h"
#include "agent_common.h"
#include "app.h"
#include "cellsim.h"
#include "cli.h"
#include "ipa.h"

#define SG_MAX_MS_DEFAULT 1024
#define SG_GSUP_TIMEOUT_MS 5000
#define SG_HLR_RETRY_MS 2000
#define SG_WBUF_MAX (1u << 20)
#define SG_MAX_RESYNC 2
#define SG_MAX_MAC_FAILURES 2               /* challenge resent, then reject */
#define SG_PENDING_TIMEOUT_MS (30u * 1000u) /* WAIT_SAI, WAIT_RES */
#define SG_UNIT_NAME "MTCSEC-SGSN"

typedef enum sg_state {
  SG_FREE = 0,
  SG_WAIT_SAI, /* Send Auth Info sent */
  SG_WAIT_RES, /* AUTH_REQUEST sent */
  SG_WAIT_UL,  /* Update Location sent */
  SG_ATTACHED
} sg_state;

typedef enum sg_pdp { PDP_NONE = 0, PDP_PENDING, PDP_ACTIVE } sg_pdp;

typedef struct sg_ms {
  sg_state state;
  agent_addr addr;
  uint32_t tlli;
  char tl[9];
  char imsi[MTCSEC_IMSI_MAX_DIGITS + 1];
  uint8_t imsi_tbcd[MTCSEC_IMSI_TBCD_LEN];
  mtcsec_tstamp started; /* ATTACH_REQUEST: pending attaches expire */
  uint64_t gsup_seq;     /* order of the GSUP request waiting for an answer */
  mtcsec_tstamp gsup_deadline;
  /* The vector in use (one kept per Send Auth Info). */
  uint8_t rand[MTCSEC_3GPP_RAND_LEN];
  uint8_t autn[MTCSEC_3GPP_AUTN_LEN];
  uint8_t xres[16];
  uint8_t xres_len;
  uint8_t ik[MTCSEC_3GPP_IK_LEN];
  int have_ik;
  unsigned resyncs;
  unsigned mac_failures;
  uint8_t last_auts[MTCSEC_3GPP_AUTS_LEN];
  int have_auts;
  int policy; /* ATTACH_ACCEPT flags */
  cellsim_llc llc;
  /* The PDP context (one per MS). */
  sg_pdp pdp;
  uint8_t nsapi;
  uint8_t ti;
  uint32_t sgsn_teid, ggsn_teid;
  uint16_t gtp_seq;
  mtcsec_tstamp gtp_deadline;
  unsigned gtp_tries;
  uint8_t pco[MTCSEC_PCO_MAX_LEN];
  size_t pcolen;
} sg_ms;

typedef struct sg_stats {
  uint64_t radio_rx, radio_malformed, unknown_tlli, attaches, attach_rejects;
  uint64_t congestion_rejects, pending_evicted, pending_expired;
  uint64_t llc_mac_failures, llc_fcs_failures, llc_malformed, llc_other;
  uint64_t gtpu_ul, gtpu_dl, gtpu_dropped, gtpc_dropped;
  uint64_t sai_ck_received;
} sg_stats;

typedef struct sg_hlr {
  int fd;
  int ready; /* ID_RESP sent */
  char addr[128];
  mtcsec_tstamp retry;
  uint8_t *rbuf;
  size_t rlen;
  uint8_t *wbuf;
  size_t wlen, wcap;
} sg_hlr;

typedef struct sgsn {
  mtcsec_crypto crypto;
  int radio_fd, gtp_fd;
  char radio_addr[80], gtp_addr[80];
  agent_addr ggsn;
  char ggsn_str[80];
  char unit_name[64];
  sg_hlr hlr;
  sg_ms *ms;
  size_t max_ms;
  uint64_t clock;
  uint16_t next_seq;
  unsigned long gtp_timeout_ms, gtp_retries;
  sg_stats st;
} sgsn;

/* "SEND_AUTH_INFO_REQUEST" for the trace. */
static const char *sg_gsup_name(enum osmo_gsup_message_type t) {
  const char *n = osmo_gsup_message_type_name(t);
  return strncmp(n, "OSMO_GSUP_MSGT_", 15) == 0 ? n + 15 : n;
}

static const char sg_usage[] =
  "usage: mtcsec sgsn run --listen HOST:PORT --hlr HOST:PORT --ggsn "
  "HOST:PORT\n"
  "                       [--max-ms N] [--unit-name NAME] [--gtp-timeout "
  "MS]\n"
  "                       [--gtp-retries N] [--trace] [--log-level "
  "LEVEL]\n";

static void sg_help(void) {
  printf(
    "%s\n"
    "Runs a simulated SGSN until SIGINT or SIGTERM: MSs attach on the "
    "radio port\n"
    "(UDP), authentication vectors come over GSUP/IPA from the home proxy "
    "(mtchpd)\n"
    "or any GSUP HLR, PDP contexts and user data go to the GGSN over the "
    "simulated\n"
    "GTP (UDP).  The SGSN keeps IK only for subscribers whose policy (GSUP "
    "IE 0xF0)\n"
    "has integrity on, checks every uplink LLC frame (MAC-I or FCS), drops "
    "and\n"
    "counts the bad ones, and never sees a payload's plaintext.  SIGUSR1 "
    "logs the\n"
    "counters (event=stats).\n\n"
    "  --listen HOST:PORT  radio address (port 0: chosen, logged as "
    "event=listening\n"
    "                      service=radio addr=...)\n"
    "  --hlr HOST:PORT     GSUP server (mtchpd's gsup_listen, or osmo-hlr)\n"
    "  --ggsn HOST:PORT    the GGSN's GTP address\n"
    "  --max-ms N          MS contexts kept (%d; when full, the oldest "
    "pending attach\n"
    "                      is replaced, attached MSs never: a newcomer is "
    "then rejected\n"
    "                      with GMM cause 0x16, congestion)\n"
    "  --unit-name NAME    IPA unit name toward the HLR (%s)\n"
    "  --gtp-timeout MS    wait for a GTP-C answer before resending (3000)\n"
    "  --gtp-retries N     GTP-C resends before giving up (2)\n"
    "  --trace             print each message (type, size, direction, ms)\n"
    "  --log-level LEVEL   error, warn, info (default), debug\n\n"
    "Exit status: 0 stopped by a signal, 2 usage, 4 cannot bind, 5 internal "
    "error.\n",
    sg_usage, SG_MAX_MS_DEFAULT, SG_UNIT_NAME);
}

/* ------------------------------------------------------------ contexts */

static void sg_ms_free(sg_ms *m) { mtcsec_zeroize(m, sizeof(*m)); }

static sg_ms *sg_find(sgsn *s, const agent_addr *a, uint32_t tlli) {
  size_t i;
  for (i = 0; i < s->max_ms; i++) {
    sg_ms *m = &s->ms[i];
    if (m->state != SG_FREE && m->tlli == tlli &&
        agent_addr_equal(&m->addr, a)) {
      return m;
    }
  }
  return NULL;
}

/* The context waiting for a GSUP answer of this IMSI in state st.  Several
 * attaches of one IMSI may wait at once (one of them perhaps forged); the
 * HLR answers one link in order, so the oldest request gets the answer. */
static sg_ms *sg_find_imsi(sgsn *s, const char *imsi, sg_state st) {
  sg_ms *best = NULL;
  size_t i;
  for (i = 0; i < s->max_ms; i++) {
    sg_ms *m = &s->ms[i];
    if (m->state == st && strcmp(m->imsi, imsi) == 0 &&
        (best == NULL || m->gsup_seq < best->gsup_seq)) {
      best = m;
    }
  }
  return best;
}

static sg_ms *sg_find_teid(sgsn *s, uint32_t teid) {
  size_t i;
  for (i = 0; i < s->max_ms; i++) {
    if (s->ms[i].state == SG_ATTACHED && s->ms[i].pdp != PDP_NONE &&
        s->ms[i].sgsn_teid == teid) {
      return &s->ms[i];
    }
  }
  return NULL;
}

/* ------------------------------------------------------------- sending */

static void sg_radio_send(sgsn *s, sg_ms *m, const cellsim_radio *r,
                          const char *note) {
  uint8_t buf[2048];
  mtcsec_ssize n = cellsim_radio_encode(r, buf, sizeof(buf));
  char addr[80];
  if (n < 0) {
    app_log(MTCSEC_LOG_ERROR, "event=encode_failed type=%s err=%s",
            cellsim_radio_name(r->type), mtcsec_errname((int)n));
    return;
  }
  if (agent_udp_send(s->radio_fd, &m->addr, buf, (size_t)n) != 0) {
    app_log(MTCSEC_LOG_WARN, "event=send_failed to=%s err=\"%s\"",
            agent_addr_str(&m->addr, addr, sizeof(addr)), strerror(errno));
  }
  cell_trace("SGSN", "MS", cellsim_radio_name(r->type), (size_t)n, note);
  mtcsec_zeroize(buf, (size_t)n);
}

static void sg_send_simple(sgsn *s, sg_ms *m, uint8_t type, uint8_t v) {
  cellsim_radio r;
  char note[48];
  memset(&r, 0, sizeof(r));
  r.type = type;
  r.tlli = m->tlli;
  r.cause = v;
  r.flags = v;
  if (type == CELLSIM_ATTACH_ACCEPT) {
    snprintf(note, sizeof(note), "policy %s", cell_policy_name(v));
  } else {
    snprintf(note, sizeof(note), "cause 0x%02x", v);
  }
  sg_radio_send(s, m, &r, note);
}

static void sg_reject(sgsn *s, sg_ms *m, uint8_t cause, const char *why) {
  s->st.attach_rejects++;
  app_log(MTCSEC_LOG_WARN,
          "event=attach_rejected tlli=%s imsi=%s cause=0x%02x reason=%s", m->tl,
          m->imsi[0] ? m->imsi : "-", cause, why);
  sg_send_simple(s, m, CELLSIM_ATTACH_REJECT, cause);
  sg_ms_free(m);
}

static void sg_send_auth_request(sgsn *s, sg_ms *m) {
  cellsim_radio r;
  memset(&r, 0, sizeof(r));
  r.type = CELLSIM_AUTH_REQUEST;
  r.tlli = m->tlli;
  memcpy(r.rand, m->rand, sizeof(r.rand));
  memcpy(r.autn, m->autn, sizeof(r.autn));
  sg_radio_send(s, m, &r, m->imsi);
}

/* One SAPI frame of info to the MS (downlink MAC-I or FCS). */
static int sg_send_llc(sgsn *s, sg_ms *m, uint8_t sapi, const uint8_t *info,
                       size_t infolen, const char *note) {
  uint8_t frame[MTCSEC_LLC_UI_HDR_LEN + MTCSEC_LLC_MAX_INFO + 4];
  cellsim_radio r;
  mtcsec_ssize n = cellsim_llc_seal(
    &m->llc, &s->crypto, (m->policy & CELLSIM_POLICY_INTEGRITY) ? m->ik : NULL,
    MTCSEC_3GPP_DOWNLINK, sapi, info, infolen, frame, sizeof(frame));
  if (n < 0) {
    app_log(MTCSEC_LOG_WARN, "event=llc_seal_failed tlli=%s sapi=%u err=%s",
            m->tl, (unsigned)sapi, mtcsec_errname((int)n));
    return -1;
  }
  memset(&r, 0, sizeof(r));
  r.type = CELLSIM_LLC;
  r.tlli = m->tlli;
  r.llc = frame;
  r.llclen = (size_t)n;
  sg_radio_send(s, m, &r, note);
  return 0;
}

static void sg_send_sm(sgsn *s, sg_ms *m, uint8_t type, uint8_t cause) {
  cellsim_sm sm;
  uint8_t buf[8];
  char note[96];
  mtcsec_ssize n;
  memset(&sm, 0, sizeof(sm));
  sm.ti = (uint8_t)(m->ti ^ 0x08); /* the TI flag of the receiving side */
  sm.type = type;
  sm.nsapi = m->nsapi;
  sm.cause = cause;
  n = cellsim_sm_encode(&sm, buf, sizeof(buf));
  if (n < 0) {
    return;
  }
  snprintf(note, sizeof(note), "SAPI 1 %s", cellsim_sm_name(type));
  (void)sg_send_llc(s, m, MTCSEC_LLC_SAPI_LLGMM, buf, (size_t)n, note);
}

static void sg_gtp_send(sgsn *s, const uint8_t *buf, size_t len,
                        const char *name, const char *note) {
  if (agent_udp_send(s->gtp_fd, &s->ggsn, buf, len) != 0) {
    app_log(MTCSEC_LOG_WARN, "event=send_failed to=%s err=\"%s\"", s->ggsn_str,
            strerror(errno));
  }
  cell_trace("SGSN", "GGSN", name, len, note);
}

static void sg_send_create(sgsn *s, sg_ms *m) {
  cellsim_gtpc g;
  uint8_t buf[512];
  mtcsec_ssize n;
  char note[64];
  memset(&g, 0, sizeof(g));
  g.type = CELLSIM_CREATE_PDP_REQUEST;
  g.seq = m->gtp_seq;
  memcpy(g.imsi, m->imsi_tbcd, sizeof(g.imsi));
  g.nsapi = m->nsapi;
  g.teid = m->sgsn_teid;
  g.pco = m->pco;
  g.pcolen = m->pcolen;
  n = cellsim_gtpc_encode(&g, buf, sizeof(buf));
  if (n < 0) {
    return;
  }
  snprintf(note, sizeof(note), "seq %u, %s, TEID %08" PRIx32, (unsigned)g.seq,
           m->imsi, m->sgsn_teid);
  sg_gtp_send(s, buf, (size_t)n, cellsim_gtpc_name(g.type), note);
}

static void sg_send_delete(sgsn *s, sg_ms *m) {
  cellsim_gtpc g;
  uint8_t buf[16];
  mtcsec_ssize n;
  memset(&g, 0, sizeof(g));
  g.type = CELLSIM_DELETE_PDP_REQUEST;
  g.seq = s->next_seq++;
  g.teid = m->ggsn_teid;
  n = cellsim_gtpc_encode(&g, buf, sizeof(buf));
  if (n > 0) {
    sg_gtp_send(s, buf, (size_t)n, cellsim_gtpc_name(g.type), m->imsi);
  }
}

/* Frees a context, deleting its PDP context at the GGSN first. */
static void sg_release(sgsn *s, sg_ms *m, const char *why) {
  if (m->pdp == PDP_ACTIVE) {
    sg_send_delete(s, m);
  }
  app_log(MTCSEC_LOG_INFO, "event=released tlli=%s imsi=%s reason=%s", m->tl,
          m->imsi[0] ? m->imsi : "-", why);
  sg_ms_free(m);
}

/* ---------------------------------------------------------------- GSUP */

static int sg_hlr_flush(sg_hlr *h) {
  while (h->wlen > 0) {
    ssize_t w = write(h->fd, h->wbuf, h->wlen);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    memmove(h->wbuf, h->wbuf + w, h->wlen - (size_t)w);
    h->wlen -= (size_t)w;
  }
  return 0;
}

static int sg_hlr_send(sg_hlr *h, uint8_t proto, int ext, const uint8_t *data,
                       size_t len) {
  size_t need = IPA_HDR_LEN + 1 + len;
  mtcsec_ssize hl;
  if (h->fd < 0 || h->wlen + need > SG_WBUF_MAX) {
    return -1;
  }
  if (h->wlen + need > h->wcap) {
    size_t ncap = h->wcap == 0 ? 4096 : h->wcap;
    uint8_t *nb;
    while (ncap < h->wlen + need) {
      ncap *= 2;
    }
    nb = malloc(ncap);
    if (nb == NULL) {
      return -1;
    }
    if (h->wbuf != NULL) {
      memcpy(nb, h->wbuf, h->wlen);
      mtcsec_zeroize(h->wbuf, h->wcap);
      free(h->wbuf);
    }
    h->wbuf = nb;
    h->wcap = ncap;
  }
  hl = ipa_encode_header(proto, ext, len, h->wbuf + h->wlen, need);
  if (hl < 0) {
    return -1;
  }
  if (len > 0) {
    memcpy(h->wbuf + h->wlen + (size_t)hl, data, len);
  }
  h->wlen += (size_t)hl + len;
  return sg_hlr_flush(h);
}

static int sg_gsup_send(sgsn *s, const struct osmo_gsup_message *g) {
  struct msgb *msg = msgb_alloc(1024, "mtcsec-sgsn");
  int rv = -1;
  if (msg == NULL) {
    return -1;
  }
  if (osmo_gsup_encode(msg, g) == 0) {
    rv = sg_hlr_send(&s->hlr, IPA_PROTO_OSMO, IPA_EXT_GSUP, msgb_data(msg),
                     msgb_length(msg));
    cell_trace("SGSN", "HLR", sg_gsup_name(g->message_type), msgb_length(msg),
               g->imsi);
  }
  msgb_free(msg);
  return rv;
}

static int sg_gsup_request(sgsn *s, sg_ms *m, enum osmo_gsup_message_type t,
                           const uint8_t *auts, const uint8_t *rand) {
  struct osmo_gsup_message g;
  memset(&g, 0, sizeof(g));
  g.message_type = t;
  snprintf(g.imsi, sizeof(g.imsi), "%s", m->imsi);
  g.cn_domain = OSMO_GSUP_CN_DOMAIN_PS;
  g.auts = auts;
  g.rand = rand;
  m->gsup_deadline = app_now_ms() + SG_GSUP_TIMEOUT_MS;
  m->gsup_seq = ++s->clock;
  return sg_gsup_send(s, &g);
}

static void sg_on_sai_result(sgsn *s, sg_ms *m, struct osmo_gsup_message *g,
                             const cellsim_gsup_facts *f) {
  const struct osmo_auth_vector *v = &g->auth_vectors[0];
  int policy = f->policy >= 0 ? (f->policy & 0x03) : 0;

  if (f->ck_present) {
    s->st.sai_ck_received++;
  }
  app_log(MTCSEC_LOG_INFO,
          "event=sai tlli=%s imsi=%s vectors=%zu ck_received=%d "
          "kc_received=%d policy=%s resync=%d",
          m->tl, m->imsi, g->num_auth_vectors, f->ck_present ? 1 : 0,
          f->kc_present ? 1 : 0, cell_policy_name(policy), m->resyncs > 0);
  if (g->num_auth_vectors < 1 || !(v->auth_types & OSMO_AUTH_TYPE_UMTS) ||
      v->res_len < CELLSIM_RES_MIN || v->res_len > CELLSIM_RES_MAX) {
    sg_reject(s, m, CELLSIM_GMM_NETWORK_FAILURE, "no_umts_vector");
    return;
  }
  if ((policy & CELLSIM_POLICY_INTEGRITY) && f->ik_missing) {
    sg_reject(s, m, CELLSIM_GMM_NETWORK_FAILURE, "integrity_without_ik");
    return;
  }
  /* Keep one vector: RAND, AUTN, XRES and (integrity only) IK. */
  memcpy(m->rand, v->rand, sizeof(m->rand));
  memcpy(m->autn, v->autn, sizeof(m->autn));
  memcpy(m->xres, v->res, v->res_len);
  m->xres_len = v->res_len;
  if (policy & CELLSIM_POLICY_INTEGRITY) {
    memcpy(m->ik, v->ik, sizeof(m->ik));
    m->have_ik = 1;
  } else {
    mtcsec_zeroize(m->ik, sizeof(m->ik));
    m->have_ik = 0;
  }
  m->policy = policy;
  m->state = SG_WAIT_RES;
  sg_send_auth_request(s, m);
}

static void sg_on_gsup(sgsn *s, uint8_t *data, size_t len) {
  struct osmo_gsup_message g;
  cellsim_gsup_facts f;
  sg_ms *m = NULL;
  size_t i;
  int rv;

  memset(&g, 0, sizeof(g));
  rv = osmo_gsup_decode(data, len, &g);
  if (rv < 0 || cellsim_gsup_scan(data, len, &f) != 0) {
    app_log(MTCSEC_LOG_WARN, "event=gsup_malformed len=%zu rc=%d", len, rv);
    goto cleanup;
  }
  /* CK and Kc are not needed here, ever: erase them before anything else
   * (the raw bytes are erased by the caller). */
  for (i = 0; i < OSMO_GSUP_MAX_NUM_AUTH_INFO; i++) {
    mtcsec_zeroize(g.auth_vectors[i].ck, sizeof(g.auth_vectors[i].ck));
    mtcsec_zeroize(g.auth_vectors[i].kc, sizeof(g.auth_vectors[i].kc));
  }
  cell_trace("HLR", "SGSN", sg_gsup_name(g.message_type), len, g.imsi);
  switch (g.message_type) {
  case OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT:
    m = sg_find_imsi(s, g.imsi, SG_WAIT_SAI);
    if (m != NULL) {
      sg_on_sai_result(s, m, &g, &f);
    }
    break;
  case OSMO_GSUP_MSGT_SEND_AUTH_INFO_ERROR:
    m = sg_find_imsi(s, g.imsi, SG_WAIT_SAI);
    if (m != NULL) {
      sg_reject(s, m, (uint8_t)g.cause,
                m->resyncs > 0 ? "sai_error_resync" : "sai_error");
    }
    break;
  case OSMO_GSUP_MSGT_UPDATE_LOCATION_RESULT:
    m = sg_find_imsi(s, g.imsi, SG_WAIT_UL);
    if (m != NULL) {
      m->state = SG_ATTACHED;
      memset(&m->llc, 0, sizeof(m->llc));
      s->st.attaches++;
      app_log(MTCSEC_LOG_INFO, "event=attached tlli=%s imsi=%s policy=%s",
              m->tl, m->imsi, cell_policy_name(m->policy));
      sg_send_simple(s, m, CELLSIM_ATTACH_ACCEPT, (uint8_t)m->policy);
    }
    break;
  case OSMO_GSUP_MSGT_UPDATE_LOCATION_ERROR:
    m = sg_find_imsi(s, g.imsi, SG_WAIT_UL);
    if (m != NULL) {
      sg_reject(s, m, (uint8_t)g.cause, "update_location_error");
    }
    break;
  case OSMO_GSUP_MSGT_INSERT_DATA_REQUEST: {
    /* A real HLR sends subscriber data before its UL result. */
    struct osmo_gsup_message r;
    memset(&r, 0, sizeof(r));
    r.message_type = OSMO_GSUP_MSGT_INSERT_DATA_RESULT;
    snprintf(r.imsi, sizeof(r.imsi), "%s", g.imsi);
    (void)sg_gsup_send(s, &r);
    break;
  }
  default:
    app_log(MTCSEC_LOG_DEBUG, "event=gsup_ignored imsi=%s type=0x%02x", g.imsi,
            (unsigned)g.message_type);
    break;
  }

cleanup:
  mtcsec_zeroize(&g, sizeof(g));
}

static void sg_on_ccm(sgsn *s, const uint8_t *data, size_t len) {
  static const uint8_t pong[] = {IPA_MSGT_PONG};
  uint8_t resp[2048];
  mtcsec_ssize n;
  if (len < 1) {
    return;
  }
  switch (data[0]) {
  case IPA_MSGT_PING:
    (void)sg_hlr_send(&s->hlr, IPA_PROTO_CCM, -1, pong, sizeof(pong));
    break;
  case IPA_MSGT_ID_GET:
    n = ipa_make_id_resp(data, len, s->unit_name, resp, sizeof(resp));
    if (n <= 0 ||
        sg_hlr_send(&s->hlr, IPA_PROTO_CCM, -1, resp, (size_t)n) != 0) {
      app_log(MTCSEC_LOG_WARN, "event=hlr_id_resp_failed peer=%s", s->hlr.addr);
      break;
    }
    /* osmo-hlr answers nothing to ID_RESP (mtchpd sends ID_ACK): the link
     * is usable once we have identified ourselves. */
    if (!s->hlr.ready) {
      s->hlr.ready = 1;
      app_log(MTCSEC_LOG_INFO, "event=hlr_ready peer=%s unit=%s", s->hlr.addr,
              s->unit_name);
    }
    break;
  case IPA_MSGT_ID_ACK:
    app_log(MTCSEC_LOG_DEBUG, "event=hlr_id_ack peer=%s", s->hlr.addr);
    break;
  default:
    break;
  }
}

static void sg_hlr_close(sgsn *s, const char *why) {
  size_t i;
  sg_hlr *h = &s->hlr;
  if (h->fd >= 0) {
    close(h->fd);
    app_log(MTCSEC_LOG_WARN, "event=hlr_down peer=%s reason=%s", h->addr, why);
  }
  h->fd = -1;
  h->ready = 0;
  if (h->rbuf != NULL) {
    mtcsec_zeroize(h->rbuf, h->rlen);
  }
  h->rlen = 0;
  if (h->wbuf != NULL) {
    mtcsec_zeroize(h->wbuf, h->wcap);
  }
  h->wlen = 0;
  h->retry = app_now_ms() + SG_HLR_RETRY_MS;
  for (i = 0; i < s->max_ms; i++) {
    sg_ms *m = &s->ms[i];
    if (m->state == SG_WAIT_SAI || m->state == SG_WAIT_UL) {
      sg_reject(s, m, CELLSIM_GMM_NETWORK_FAILURE, "hlr_down");
    }
  }
}

static void sg_hlr_connect(sgsn *s) {
  char err[256];
  sg_hlr *h = &s->hlr;
  if (h->fd >= 0 || app_now_ms() < h->retry) {
    return;
  }
  h->fd = app_tcp_connect(h->addr, err, sizeof(err));
  if (h->fd < 0) {
    app_log(MTCSEC_LOG_WARN, "event=hlr_unreachable peer=%s err=\"%s\"",
            h->addr, err);
    h->retry = app_now_ms() + SG_HLR_RETRY_MS;
    return;
  }
  h->ready = 0;
  app_log(MTCSEC_LOG_INFO, "event=hlr_connected peer=%s", h->addr);
}

static void sg_hlr_read(sgsn *s) {
  sg_hlr *h = &s->hlr;
  for (;;) {
    size_t off = 0;
    ssize_t r =
      read(h->fd, h->rbuf + h->rlen, IPA_HDR_LEN + IPA_MAX_PAYLOAD - h->rlen);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        sg_hlr_close(s, "read_error");
      }
      return;
    }
    if (r == 0) {
      sg_hlr_close(s, "closed");
      return;
    }
    h->rlen += (size_t)r;
    for (;;) {
      ipa_msg msg;
      mtcsec_ssize used = ipa_decode(&msg, h->rbuf + off, h->rlen - off);
      if (used < 0) {
        sg_hlr_close(s, "malformed_ipa");
        return;
      }
      if (used == 0) {
        break;
      }
      if (msg.proto == IPA_PROTO_CCM) {
        sg_on_ccm(s, msg.data, msg.len);
      } else if (msg.proto == IPA_PROTO_OSMO && msg.ext == IPA_EXT_GSUP) {
        /* data points into our own read buffer. */
        sg_on_gsup(s, h->rbuf + off + (size_t)used - msg.len, msg.len);
      }
      if (h->fd < 0) {
        return; /* closed meanwhile */
      }
      /* Results carry IK (and, for normal subscribers, CK): erase. */
      mtcsec_zeroize(h->rbuf + off, (size_t)used);
      off += (size_t)used;
    }
    if (off > 0) {
      memmove(h->rbuf, h->rbuf + off, h->rlen - off);
      mtcsec_zeroize(h->rbuf + h->rlen - off, off);
      h->rlen -= off;
    }
  }
}

/* --------------------------------------------------------------- radio */

/* An attach that has not been authenticated yet. */
static int sg_pending(const sg_ms *m) {
  return m->state == SG_WAIT_SAI || m->state == SG_WAIT_RES;
}

static void sg_on_attach_request(sgsn *s, const cellsim_radio *r,
                                 const agent_addr *from) {
  char imsi[MTCSEC_IMSI_MAX_DIGITS + 1];
  sg_ms *m = sg_find(s, from, r->tlli), *victim = NULL;
  size_t i;

  if (m != NULL) {
    /* The MS repeats itself: what it missed is our last answer. */
    if (m->state == SG_WAIT_RES) {
      sg_send_auth_request(s, m);
    } else if (m->state == SG_ATTACHED) {
      sg_send_simple(s, m, CELLSIM_ATTACH_ACCEPT, (uint8_t)m->policy);
    }
    return;
  }
  if (mtcsec_imsi_from_tbcd(r->imsi, imsi, sizeof(imsi)) < 0) {
    s->st.radio_malformed++;
    return;
  }
  /* A context of the same IMSI under another TLLI stays until this attach
   * is authenticated (sg_on_auth_response): the request may be forged.
   * Room: a free slot, else the oldest pending attach; authenticated
   * contexts are never given up for an unauthenticated request. */
  for (i = 0; i < s->max_ms; i++) {
    sg_ms *x = &s->ms[i];
    if (x->state == SG_FREE) {
      victim = x;
      break;
    }
    if (sg_pending(x) && (victim == NULL || x->started < victim->started)) {
      victim = x;
    }
  }
  if (victim == NULL) {
    sg_ms tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.addr = *from;
    tmp.tlli = r->tlli;
    snprintf(tmp.tl, sizeof(tmp.tl), "%08" PRIx32, r->tlli);
    memcpy(tmp.imsi, imsi, sizeof(tmp.imsi));
    s->st.congestion_rejects++;
    sg_reject(s, &tmp, CELLSIM_GMM_CONGESTION, "congestion");
    return;
  }
  if (victim->state != SG_FREE) {
    s->st.pending_evicted++;
    sg_release(s, victim, "evicted_pending");
  }
  m = victim;
  m->state = SG_WAIT_SAI;
  m->addr = *from;
  m->tlli = r->tlli;
  snprintf(m->tl, sizeof(m->tl), "%08" PRIx32, r->tlli);
  memcpy(m->imsi, imsi, sizeof(m->imsi));
  memcpy(m->imsi_tbcd, r->imsi, sizeof(m->imsi_tbcd));
  m->started = app_now_ms();
  app_log(MTCSEC_LOG_INFO, "event=attach_request tlli=%s imsi=%s", m->tl,
          m->imsi);
  if (!s->hlr.ready) {
    sg_reject(s, m, CELLSIM_GMM_NETWORK_FAILURE, "hlr_not_ready");
    return;
  }
  if (sg_gsup_request(s, m, OSMO_GSUP_MSGT_SEND_AUTH_INFO_REQUEST, NULL,
                      NULL) != 0) {
    sg_reject(s, m, CELLSIM_GMM_NETWORK_FAILURE, "gsup_send");
  }
}

static void sg_on_auth_response(sgsn *s, sg_ms *m, const cellsim_radio *r) {
  size_t i;
  if (m->state == SG_ATTACHED) {
    sg_send_simple(s, m, CELLSIM_ATTACH_ACCEPT, (uint8_t)m->policy);
    return;
  }
  if (m->state != SG_WAIT_RES) {
    return;
  }
  if (r->reslen != m->xres_len ||
      mtcsec_ct_memcmp(r->res, m->xres, m->xres_len) != 0) {
    sg_reject(s, m, CELLSIM_GMM_ILLEGAL_MS, "res_mismatch");
    return;
  }
  mtcsec_zeroize(m->xres, sizeof(m->xres));
  app_log(MTCSEC_LOG_INFO, "event=authenticated tlli=%s imsi=%s", m->tl,
          m->imsi);
  /* Now the MS has proven itself: its older contexts (it started over
   * under a new TLLI) and any other attach of its IMSI go. */
  for (i = 0; i < s->max_ms; i++) {
    sg_ms *x = &s->ms[i];
    if (x != m && x->state != SG_FREE && strcmp(x->imsi, m->imsi) == 0) {
      sg_release(s, x, "new_attach");
    }
  }
  m->state = SG_WAIT_UL;
  if (sg_gsup_request(s, m, OSMO_GSUP_MSGT_UPDATE_LOCATION_REQUEST, NULL,
                      NULL) != 0) {
    sg_reject(s, m, CELLSIM_GMM_NETWORK_FAILURE, "gsup_send");
  }
}

static void sg_on_auth_failure(sgsn *s, sg_ms *m, const cellsim_radio *r) {
  struct osmo_gsup_message g;
  if (m->state != SG_WAIT_RES) {
    return;
  }
  if (r->cause == CELLSIM_CAUSE_MAC_FAILURE) {
    /* The MS may have answered a challenge forged by someone else on the
     * radio (TS 24.008 4.7.7.5.1: it then waits for ours): send ours
     * again, a bounded number of times. */
    if (m->mac_failures < SG_MAX_MAC_FAILURES) {
      m->mac_failures++;
      app_log(MTCSEC_LOG_INFO,
              "event=ms_mac_failure tlli=%s imsi=%s mac_failures=%u "
              "action=resend_challenge",
              m->tl, m->imsi, m->mac_failures);
      sg_send_auth_request(s, m);
      return;
    }
    /* The MS does not believe this network: tell the HLR, give up. */
    memset(&g, 0, sizeof(g));
    g.message_type = OSMO_GSUP_MSGT_AUTH_FAIL_REPORT;
    snprintf(g.imsi, sizeof(g.imsi), "%s", m->imsi);
    g.cn_domain = OSMO_GSUP_CN_DOMAIN_PS;
    (void)sg_gsup_send(s, &g);
    sg_reject(s, m, CELLSIM_GMM_NETWORK_FAILURE, "ms_mac_failure");
    return;
  }
  /* Synch failure: the same AUTS again means our new AUTH_REQUEST was
   * lost, not a new failure. */
  if (m->have_auts &&
      memcmp(m->last_auts, r->auts, sizeof(m->last_auts)) == 0) {
    sg_send_auth_request(s, m);
    return;
  }
  if (m->resyncs >= SG_MAX_RESYNC) {
    sg_reject(s, m, CELLSIM_GMM_NETWORK_FAILURE, "too_many_resyncs");
    return;
  }
  m->resyncs++;
  memcpy(m->last_auts, r->auts, sizeof(m->last_auts));
  m->have_auts = 1;
  app_log(MTCSEC_LOG_INFO, "event=resync tlli=%s imsi=%s", m->tl, m->imsi);
  m->state = SG_WAIT_SAI;
  if (sg_gsup_request(s, m, OSMO_GSUP_MSGT_SEND_AUTH_INFO_REQUEST, r->auts,
                      m->rand) != 0) {
    sg_reject(s, m, CELLSIM_GMM_NETWORK_FAILURE, "gsup_send");
  }
}

/* Whether an SGSN TEID is in use (cell_unique_id32()). */
static int sg_teid_taken(void *arg, uint32_t teid) {
  const sgsn *s = arg;
  size_t i;
  for (i = 0; i < s->max_ms; i++) {
    if (s->ms[i].pdp != PDP_NONE && s->ms[i].sgsn_teid == teid) {
      return 1;
    }
  }
  return 0;
}

static void sg_on_activate(sgsn *s, sg_ms *m, const cellsim_sm *sm) {
  if (m->pdp == PDP_ACTIVE) {
    /* A repeated request (our accept was lost), or a second context. */
    if (sm->nsapi == m->nsapi) {
      sg_send_sm(s, m, CELLSIM_SM_ACTIVATE_ACCEPT, 0);
    } else {
      uint8_t keep = m->nsapi;
      m->nsapi = sm->nsapi;
      sg_send_sm(s, m, CELLSIM_SM_ACTIVATE_REJECT,
                 CELLSIM_SM_INSUFFICIENT_RESOURCES);
      m->nsapi = keep;
    }
    return;
  }
  if (m->pdp == PDP_PENDING) {
    return; /* the GGSN's answer is on its way */
  }
  m->nsapi = sm->nsapi;
  m->ti = sm->ti;
  memcpy(m->pco, sm->pco, sm->pcolen);
  m->pcolen = sm->pcolen;
  m->sgsn_teid = cell_unique_id32(&s->crypto, sg_teid_taken, s);
  if (m->sgsn_teid == 0) {
    /* The random source fails (or keeps repeating itself): refuse rather
     * than loop. */
    app_log(MTCSEC_LOG_ERROR,
            "event=pdp_rejected tlli=%s imsi=%s reason=no_teid (the random "
            "source failed %d times)",
            m->tl, m->imsi, CELL_ID_TRIES);
    sg_send_sm(s, m, CELLSIM_SM_ACTIVATE_REJECT,
               CELLSIM_SM_SERVICE_OUT_OF_ORDER);
    return;
  }
  m->gtp_seq = s->next_seq++;
  m->gtp_tries = 0;
  m->gtp_deadline = app_now_ms() + s->gtp_timeout_ms;
  m->pdp = PDP_PENDING;
  app_log(MTCSEC_LOG_INFO,
          "event=pdp_request tlli=%s imsi=%s nsapi=%u sgsn_teid=%08" PRIx32,
          m->tl, m->imsi, (unsigned)m->nsapi, m->sgsn_teid);
  sg_send_create(s, m);
}

static void sg_on_llc(sgsn *s, sg_ms *m, const cellsim_radio *r) {
  mtcsec_llc_ui ui;
  cellsim_sm sm;
  uint32_t count = 0;
  uint8_t sapi = 0;
  uint16_t nu = 0;
  char note[96];
  int rv;

  if (m->state != SG_ATTACHED) {
    s->st.llc_other++;
    return;
  }
  (void)cellsim_llc_peek(r->llc, r->llclen, &sapi, &nu);
  rv = cellsim_llc_open(&m->llc, &s->crypto,
                        (m->policy & CELLSIM_POLICY_INTEGRITY) ? m->ik : NULL,
                        MTCSEC_3GPP_UPLINK, r->llc, r->llclen, &ui, &count);
  if (rv == MTCSEC_ERR_MIC) {
    if (m->policy & CELLSIM_POLICY_INTEGRITY) {
      s->st.llc_mac_failures++;
      app_log(MTCSEC_LOG_WARN,
              "event=llc_mac_failure tlli=%s imsi=%s sapi=%u nu=%u "
              "llc_mac_failures=%" PRIu64,
              m->tl, m->imsi, (unsigned)sapi, (unsigned)nu,
              s->st.llc_mac_failures);
    } else {
      s->st.llc_fcs_failures++;
      app_log(MTCSEC_LOG_WARN,
              "event=llc_fcs_failure tlli=%s imsi=%s sapi=%u nu=%u", m->tl,
              m->imsi, (unsigned)sapi, (unsigned)nu);
    }
    cell_trace("MS", "SGSN", "LLC", CELLSIM_RADIO_HDR_LEN + r->llclen,
               "dropped: bad check value");
    return;
  }
  if (rv != 0) {
    s->st.llc_malformed++;
    app_log(MTCSEC_LOG_WARN, "event=llc_dropped tlli=%s err=%s", m->tl,
            mtcsec_errname(rv));
    return;
  }
  if (ui.sapi == MTCSEC_LLC_SAPI_LLGMM) {
    if (cellsim_sm_decode(&sm, ui.info, ui.infolen) != 0 ||
        sm.type != CELLSIM_SM_ACTIVATE_REQUEST) {
      s->st.llc_other++;
      app_log(MTCSEC_LOG_WARN, "event=sm_dropped tlli=%s", m->tl);
      return;
    }
    snprintf(note, sizeof(note), "SAPI 1 %s (COUNT %" PRIu32 ")",
             cellsim_sm_name(sm.type), count);
    cell_trace("MS", "SGSN", "LLC", CELLSIM_RADIO_HDR_LEN + r->llclen, note);
    sg_on_activate(s, m, &sm);
    return;
  }
  if (ui.sapi == MTCSEC_LLC_SAPI_LL3) {
    uint8_t buf[CELLSIM_GTPU_HDR_LEN + MTCSEC_LLC_MAX_INFO];
    mtcsec_ssize n;
    snprintf(note, sizeof(note), "SAPI 3 record (COUNT %" PRIu32 ")", count);
    cell_trace("MS", "SGSN", "LLC", CELLSIM_RADIO_HDR_LEN + r->llclen, note);
    if (m->pdp != PDP_ACTIVE) {
      s->st.gtpu_dropped++;
      app_log(MTCSEC_LOG_DEBUG, "event=user_data_dropped tlli=%s reason=no_pdp",
              m->tl);
      return;
    }
    /* The record goes on unopened: the SGSN has no key for it. */
    n =
      cellsim_gtpu_encode(m->ggsn_teid, ui.info, ui.infolen, buf, sizeof(buf));
    if (n > 0) {
      s->st.gtpu_ul++;
      snprintf(note, sizeof(note), "TEID %08" PRIx32, m->ggsn_teid);
      sg_gtp_send(s, buf, (size_t)n, "G-PDU", note);
    }
    return;
  }
  s->st.llc_other++;
}

static void sg_on_radio(sgsn *s, const uint8_t *buf, size_t len,
                        const agent_addr *from) {
  cellsim_radio r;
  sg_ms *m;
  char addr[80];

  s->st.radio_rx++;
  if (cellsim_radio_decode(&r, buf, len) != 0) {
    s->st.radio_malformed++;
    app_log(MTCSEC_LOG_DEBUG, "event=radio_dropped from=%s len=%zu",
            agent_addr_str(from, addr, sizeof(addr)), len);
    return;
  }
  if (r.type != CELLSIM_LLC) {
    cell_trace("MS", "SGSN", cellsim_radio_name(r.type), len, NULL);
  }
  if (r.type == CELLSIM_ATTACH_REQUEST) {
    sg_on_attach_request(s, &r, from);
    return;
  }
  m = sg_find(s, from, r.tlli);
  if (m == NULL) {
    s->st.unknown_tlli++;
    app_log(MTCSEC_LOG_DEBUG, "event=unknown_tlli tlli=%08" PRIx32 " from=%s",
            r.tlli, agent_addr_str(from, addr, sizeof(addr)));
    return;
  }
  switch (r.type) {
  case CELLSIM_AUTH_RESPONSE:
    sg_on_auth_response(s, m, &r);
    break;
  case CELLSIM_AUTH_FAILURE:
    sg_on_auth_failure(s, m, &r);
    break;
  case CELLSIM_LLC:
    sg_on_llc(s, m, &r);
    break;
  default:
    s->st.radio_malformed++; /* a downlink type sent uplink */
    break;
  }
  mtcsec_zeroize(&r, sizeof(r));
}

/* ----------------------------------------------------------------- GTP */

static void sg_on_gtpc(sgsn *s, const cellsim_gtpc *g) {
  size_t i;
  sg_ms *m = NULL;
  char note[64];

  snprintf(note, sizeof(note), "seq %u, cause 0x%02x", (unsigned)g->seq,
           g->cause);
  cell_trace("GGSN", "SGSN", cellsim_gtpc_name(g->type),
             g->type == CELLSIM_CREATE_PDP_RESPONSE ? 9u : 5u, note);
  if (g->type == CELLSIM_DELETE_PDP_RESPONSE) {
    return;
  }
  if (g->type != CELLSIM_CREATE_PDP_RESPONSE) {
    s->st.gtpc_dropped++;
    return;
  }
  for (i = 0; i < s->max_ms; i++) {
    if (s->ms[i].state == SG_ATTACHED && s->ms[i].pdp == PDP_PENDING &&
        s->ms[i].gtp_seq == g->seq) {
      m = &s->ms[i];
      break;
    }
  }
  if (m == NULL) {
    s->st.gtpc_dropped++;
    return;
  }
  if (g->cause == CELLSIM_GTP_ACCEPTED && g->teid != 0) {
    m->pdp = PDP_ACTIVE;
    m->ggsn_teid = g->teid;
    app_log(MTCSEC_LOG_INFO,
            "event=pdp_active tlli=%s imsi=%s nsapi=%u ggsn_teid=%08" PRIx32,
            m->tl, m->imsi, (unsigned)m->nsapi, m->ggsn_teid);
    sg_send_sm(s, m, CELLSIM_SM_ACTIVATE_ACCEPT, 0);
    return;
  }
  /* TS 29.060 cause -> TS 24.008 SM cause. */
  {
    uint8_t sm = g->cause == CELLSIM_GTP_NO_RESOURCES
                   ? CELLSIM_SM_INSUFFICIENT_RESOURCES
                 : g->cause == CELLSIM_GTP_USER_AUTH_FAILED
                   ? CELLSIM_SM_USER_AUTH_FAILED
                   : CELLSIM_SM_SERVICE_OUT_OF_ORDER;
    app_log(MTCSEC_LOG_WARN,
            "event=pdp_rejected tlli=%s imsi=%s gtp_cause=0x%02x "
            "sm_cause=0x%02x",
            m->tl, m->imsi, g->cause, sm);
    m->pdp = PDP_NONE;
    sg_send_sm(s, m, CELLSIM_SM_ACTIVATE_REJECT, sm);
  }
}

static void sg_on_gtp(sgsn *s, const uint8_t *buf, size_t len,
                      const agent_addr *from) {
  cellsim_gtpc g;
  const uint8_t *tpdu;
  size_t tlen;
  uint32_t teid;
  sg_ms *m;
  char note[64];

  if (!agent_addr_equal(from, &s->ggsn)) {
    s->st.gtpc_dropped++;
    return;
  }
  if (len > 0 && buf[0] == CELLSIM_GTPC_MAGIC) {
    if (cellsim_gtpc_decode(&g, buf, len) != 0) {
      s->st.gtpc_dropped++;
      return;
    }
    sg_on_gtpc(s, &g);
    return;
  }
  if (cellsim_gtpu_decode(buf, len, &teid, &tpdu, &tlen) != 0 ||
      (m = sg_find_teid(s, teid)) == NULL || m->pdp != PDP_ACTIVE ||
      tlen > MTCSEC_LLC_MAX_INFO) {
    s->st.gtpu_dropped++;
    return;
  }
  snprintf(note, sizeof(note), "TEID %08" PRIx32, teid);
  cell_trace("GGSN", "SGSN", "G-PDU", len, note);
  s->st.gtpu_dl++;
  (void)sg_send_llc(s, m, MTCSEC_LLC_SAPI_LL3, tpdu, tlen, "SAPI 3 record");
}

/* -------------------------------------------------------------- timers */

static void sg_timers(sgsn *s, mtcsec_tstamp now) {
  size_t i;
  for (i = 0; i < s->max_ms; i++) {
    sg_ms *m = &s->ms[i];
    if (sg_pending(m) && now >= m->started + SG_PENDING_TIMEOUT_MS) {
      /* Never authenticated: an MS that went away, or a forged request. */
      s->st.pending_expired++;
      sg_release(s, m, "attach_timeout");
      continue;
    }
    if ((m->state == SG_WAIT_SAI || m->state == SG_WAIT_UL) &&
        now >= m->gsup_deadline) {
      sg_reject(s, m, CELLSIM_GMM_NETWORK_FAILURE, "hlr_timeout");
      continue;
    }
    if (m->state == SG_ATTACHED && m->pdp == PDP_PENDING &&
        now >= m->gtp_deadline) {
      if (m->gtp_tries >= s->gtp_retries) {
        app_log(MTCSEC_LOG_WARN,
                "event=pdp_rejected tlli=%s imsi=%s reason=ggsn_timeout", m->tl,
                m->imsi);
        m->pdp = PDP_NONE;
        sg_send_sm(s, m, CELLSIM_SM_ACTIVATE_REJECT,
                   CELLSIM_SM_NETWORK_FAILURE);
        continue;
      }
      m->gtp_tries++;
      m->gtp_deadline = now + s->gtp_timeout_ms;
      sg_send_create(s, m);
    }
  }
}

static mtcsec_tstamp sg_next_timer(const sgsn *s, mtcsec_tstamp now) {
  mtcsec_tstamp next = now + 1000;
  size_t i;
  for (i = 0; i < s->max_ms; i++) {
    const sg_ms *m = &s->ms[i];
    if ((m->state == SG_WAIT_SAI || m->state == SG_WAIT_UL) &&
        m->gsup_deadline < next) {
      next = m->gsup_deadline;
    }
    if (sg_pending(m) && m->started + SG_PENDING_TIMEOUT_MS < next) {
      next = m->started + SG_PENDING_TIMEOUT_MS;
    }
    if (m->state == SG_ATTACHED && m->pdp == PDP_PENDING &&
        m->gtp_deadline < next) {
      next = m->gtp_deadline;
    }
  }
  if (s->hlr.fd < 0 && s->hlr.retry < next) {
    next = s->hlr.retry;
  }
  return next;
}

static void sg_log_stats(const sgsn *s) {
  size_t i, n = 0, attached = 0, pdp = 0;
  for (i = 0; i < s->max_ms; i++) {
    n += s->ms[i].state != SG_FREE;
    attached += s->ms[i].state == SG_ATTACHED;
    pdp += s->ms[i].pdp == PDP_ACTIVE;
  }
  app_log(MTCSEC_LOG_INFO,
          "event=stats ms=%zu attached=%zu pdp_active=%zu attaches=%" PRIu64
          " attach_rejects=%" PRIu64 " congestion_rejects=%" PRIu64
          " pending_evicted=%" PRIu64 " pending_expired=%" PRIu64
          " llc_mac_failures=%" PRIu64 " llc_fcs_failures=%" PRIu64
          " llc_malformed=%" PRIu64 " llc_other=%" PRIu64 " radio_rx=%" PRIu64
          " radio_malformed=%" PRIu64 " unknown_tlli=%" PRIu64
          " gtpu_ul=%" PRIu64 " gtpu_dl=%" PRIu64 " gtpu_dropped=%" PRIu64
          " gtpc_dropped=%" PRIu64 " sai_ck_received=%" PRIu64,
          n, attached, pdp, s->st.attaches, s->st.attach_rejects,
          s->st.congestion_rejects, s->st.pending_evicted,
          s->st.pending_expired, s->st.llc_mac_failures, s->st.llc_fcs_failures,
          s->st.llc_malformed, s->st.llc_other, s->st.radio_rx,
          s->st.radio_malformed, s->st.unknown_tlli, s->st.gtpu_ul,
          s->st.gtpu_dl, s->st.gtpu_dropped, s->st.gtpc_dropped,
          s->st.sai_ck_received);
}

/* ---------------------------------------------------------------- loop */

static int sg_loop(sgsn *s) {
  uint8_t buf[4096];
  while (!agent_stop) {
    struct pollfd p[3];
    mtcsec_tstamp now = app_now_ms(), next;
    nfds_t np = 2;
    int rv, timeout;

    if (agent_stats_wanted) {
      agent_stats_wanted = 0;
      sg_log_stats(s);
    }
    sg_hlr_connect(s);
    sg_timers(s, now);
    next = sg_next_timer(s, now);
    timeout = next > now ? (int)(next - now) : 0;
    p[0].fd = s->radio_fd;
    p[0].events = POLLIN;
    p[1].fd = s->gtp_fd;
    p[1].events = POLLIN;
    if (s->hlr.fd >= 0) {
      p[2].fd = s->hlr.fd;
      p[2].events = (short)(POLLIN | (s->hlr.wlen > 0 ? POLLOUT : 0));
      np = 3;
    }
    p[0].revents = p[1].revents = p[2].revents = 0;
    rv = poll(p, np, timeout);
    if (rv < 0) {
      if (errno == EINTR) {
        continue;
      }
      app_log(MTCSEC_LOG_ERROR, "event=poll_failed err=\"%s\"",
              strerror(errno));
      return CLI_INTERNAL;
    }
    if (np == 3 && p[2].revents != 0) {
      if (p[2].revents & POLLOUT) {
        if (sg_hlr_flush(&s->hlr) != 0) {
          sg_hlr_close(s, "write_error");
        }
      }
      if (s->hlr.fd >= 0 && (p[2].revents & (POLLIN | POLLERR | POLLHUP))) {
        sg_hlr_read(s);
      }
    }
    if (p[0].revents & (POLLIN | POLLERR)) {
      for (;;) {
        agent_addr from;
        long n = agent_udp_recv(s->radio_fd, buf, sizeof(buf), &from);
        if (n <= 0) {
          break;
        }
        sg_on_radio(s, buf, (size_t)n, &from);
      }
    }
    if (p[1].revents & (POLLIN | POLLERR)) {
      for (;;) {
        agent_addr from;
        long n = agent_udp_recv(s->gtp_fd, buf, sizeof(buf), &from);
        if (n <= 0) {
          break;
        }
        sg_on_gtp(s, buf, (size_t)n, &from);
      }
    }
  }
  return CLI_OK;
}

static const struct log_info sg_osmo_log_info = {NULL, NULL, 0, 0, NULL, NULL};

int agent_sgsn_run(int argc, char **argv) {
  static const struct option opts[] = {
    {"listen", required_argument, NULL, 'l'},
    {"hlr", required_argument, NULL, 'H'},
    {"ggsn", required_argument, NULL, 'g'},
    {"max-ms", required_argument, NULL, 'm'},
    {"unit-name", required_argument, NULL, 'u'},
    {"gtp-timeout", required_argument, NULL, 'T'},
    {"gtp-retries", required_argument, NULL, 'r'},
    {"trace", no_argument, NULL, 't'},
    {"log-level", required_argument, NULL, 'L'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  const char *listen = NULL, *hlr = NULL, *ggsn = NULL;
  char err[256];
  sgsn *s;
  int orv, ch, trace = 0, level = MTCSEC_LOG_INFO, rv = CLI_OK;
  unsigned long v;
  size_t i;

  s = calloc(1, sizeof(*s));
  if (s == NULL) {
    return CLI_INTERNAL;
  }
  s->radio_fd = s->gtp_fd = s->hlr.fd = -1;
  s->max_ms = SG_MAX_MS_DEFAULT;
  s->gtp_timeout_ms = 3000;
  s->gtp_retries = 2;
  snprintf(s->unit_name, sizeof(s->unit_name), "%s", SG_UNIT_NAME);
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'l':
      listen = optarg;
      break;
    case 'H':
      hlr = optarg;
      break;
    case 'g':
      ggsn = optarg;
      break;
    case 'm':
    case 'T':
    case 'r':
      if (agent_parse_uint(optarg, ch == 'm' ? 1000000 : 3600000, &v) != 0 ||
          (ch != 'r' && v == 0)) {
        fprintf(stderr, "mtcsec sgsn run: bad number '%s'\n%s", optarg,
                sg_usage);
        free(s);
        return CLI_USAGE;
      }
      if (ch == 'm') {
        s->max_ms = v;
      } else if (ch == 'T') {
        s->gtp_timeout_ms = v;
      } else {
        s->gtp_retries = v;
      }
      break;
    case 'u':
      if (optarg[0] == '\0' || strlen(optarg) >= sizeof(s->unit_name)) {
        fprintf(stderr, "mtcsec sgsn run: --unit-name is 1..63 characters\n");
        free(s);
        return CLI_USAGE;
      }
      snprintf(s->unit_name, sizeof(s->unit_name), "%s", optarg);
      break;
    default:
      orv = agent_common_opt(ch, argv, "sgsn run", sg_usage, sg_help, &trace,
                             &level);
      if (orv != AGENT_OPT_NEXT) {
        free(s);
        return orv;
      }
      break;
    }
  }
  if (listen == NULL || hlr == NULL || ggsn == NULL || optind != argc) {
    fprintf(stderr, "mtcsec sgsn run: %s\n%s",
            optind != argc ? "unexpected argument"
                           : "give --listen, --hlr and --ggsn",
            sg_usage);
    free(s);
    return CLI_USAGE;
  }
  if (strlen(hlr) >= sizeof(s->hlr.addr)) {
    fprintf(stderr, "mtcsec sgsn run: --hlr address too long\n");
    free(s);
    return CLI_USAGE;
  }
  snprintf(s->hlr.addr, sizeof(s->hlr.addr), "%s", hlr);
  agent_start("mtcsec-sgsn", level, trace, 1);
  (void)log_init(&sg_osmo_log_info, NULL);

  if (agent_addr_parse(&s->ggsn, ggsn, err, sizeof(err)) != 0) {
    fprintf(stderr, "mtcsec sgsn run: --ggsn %s: %s\n", ggsn, err);
    rv = CLI_USAGE;
    goto cleanup;
  }
  agent_addr_str(&s->ggsn, s->ggsn_str, sizeof(s->ggsn_str));
  s->ms = calloc(s->max_ms, sizeof(*s->ms));
  s->hlr.rbuf = malloc(IPA_HDR_LEN + IPA_MAX_PAYLOAD);
  if (s->ms == NULL || s->hlr.rbuf == NULL ||
      mtcsec_crypto_openssl_new(&s->crypto) != 0) {
    fprintf(stderr, "mtcsec sgsn run: out of memory or no OpenSSL\n");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  s->next_seq = (uint16_t)cell_random32(&s->crypto);
  s->radio_fd = app_udp_bind(listen, err, sizeof(err));
  if (s->radio_fd < 0) {
    fprintf(stderr, "mtcsec sgsn run: --listen %s: %s\n", listen, err);
    rv = CLI_CONFIG;
    goto cleanup;
  }
  s->gtp_fd = app_udp_bind(agent_any_for(&s->ggsn), err, sizeof(err));
  if (s->gtp_fd < 0) {
    fprintf(stderr, "mtcsec sgsn run: GTP socket: %s\n", err);
    rv = CLI_CONFIG;
    goto cleanup;
  }
  cell_sock_name(s->radio_fd, s->radio_addr, sizeof(s->radio_addr));
  cell_sock_name(s->gtp_fd, s->gtp_addr, sizeof(s->gtp_addr));
  app_log(MTCSEC_LOG_INFO, "event=listening service=radio addr=%s",
          s->radio_addr);
  app_log(MTCSEC_LOG_INFO, "event=listening service=gtp addr=%s ggsn=%s",
          s->gtp_addr, s->ggsn_str);
  sg_hlr_connect(s);
  app_log(MTCSEC_LOG_INFO, "event=ready hlr=%s max_ms=%zu", s->hlr.addr,
          s->max_ms);
  printf("sgsn: radio %s (udp), GTP %s -> %s, HLR %s\n", s->radio_addr,
         s->gtp_addr, s->ggsn_str, s->hlr.addr);
  fflush(stdout);
  rv = sg_loop(s);
  for (i = 0; i < s->max_ms; i++) {
    if (s->ms[i].state != SG_FREE) {
      sg_release(s, &s->ms[i], "stopping");
    }
  }
  sg_log_stats(s);

cleanup:
  if (s->radio_fd >= 0) {
    close(s->radio_fd);
  }
  if (s->gtp_fd >= 0) {
    close(s->gtp_fd);
  }
  if (s->hlr.fd >= 0) {
    close(s->hlr.fd);
  }
  if (s->hlr.rbuf != NULL) {
    mtcsec_zeroize(s->hlr.rbuf, IPA_HDR_LEN + IPA_MAX_PAYLOAD);
  }
  if (s->hlr.wbuf != NULL) {
    mtcsec_zeroize(s->hlr.wbuf, s->hlr.wcap);
  }
  free(s->hlr.rbuf);
  free(s->hlr.wbuf);
  if (s->ms != NULL) {
    mtcsec_zeroize(s->ms, s->max_ms * sizeof(*s->ms));
  }
  free(s->ms);
  mtcsec_crypto_openssl_del(&s->crypto);
  free(s);
  return rv;
}
