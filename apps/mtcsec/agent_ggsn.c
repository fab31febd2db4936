/*
 * `mtcsec ggsn run`: a simulated GGSN (docs/CELLULAR-SYSTEM.md sections 2
 * and 3, spec/CELLULAR.md proposal P5).
 *
 * Toward SGSNs it speaks the simulated GTP-C and real GTPv1-U G-PDUs on
 * one UDP port; toward mtcsd's cellular service it holds one TLS 1.3 "Gi"
 * connection with its client certificate (CN = its GGSN ID).  On
 * CREATE_PDP_REQUEST it takes RAND from the PCO container 0xFF00
 * (mtcsec_pco_find_rand()), picks a TEID, sends CTX_OPEN(IMSI, RAND) and
 * answers the SGSN only after CTX_RESULT, so that the first uplink payload
 * never races the K_UP fetch.  G-PDUs become UPLINK frames and DOWNLINK
 * frames G-PDUs; records are relayed unopened (the GGSN has no key).
 *
 * mtcsd's certificate must chain to --ca and name the host of --mtcs (a
 * DNS name, or an IP address among its IP subjectAltNames), as the K_UP
 * client checks the home proxy's (apps/common/kup_client.c): any
 * certificate of the CA (another GGSN's, a UE's) would otherwise do.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include <mtcsec/cellular.h>

#include "agent_cell.h"
#include "agent_common.h"
#include "app.h"
#include "cellsim.h"
#include "cli.h"
#include "gi.h"

#define GG_MAX_CTX_DEFAULT 4096
#define GG_GI_RETRY_MS 2000
#define GG_GI_CONNECT_MS 5000
#define GG_OPEN_TIMEOUT_MS 10000

typedef enum gg_state { GG_FREE = 0, GG_PENDING, GG_ACTIVE } gg_state;

typedef struct gg_ctx {
  gg_state state;
  uint32_t teid; /* ours; the Gi ctx */
  uint32_t sgsn_teid;
  agent_addr sgsn;
  uint16_t seq; /* of the CREATE_PDP_REQUEST */
  uint8_t nsapi;
  uint8_t imsi[MTCSEC_IMSI_TBCD_LEN];
  char imsi_str[MTCSEC_IMSI_MAX_DIGITS + 1];
  mtcsec_tstamp deadline; /* PENDING: answer the SGSN by then */
} gg_ctx;

typedef struct gg_stats {
  uint64_t creates, accepted, refused, deletes;
  uint64_t uplink, downlink, gtpu_dropped, gi_dropped, gtpc_dropped;
} gg_stats;

typedef struct ggsn {
  mtcsec_crypto crypto;
  int fd;
  char listen[80];
  const char *mtcs, *cert, *key, *ca;
  char mtcs_host[256]; /* the name mtcsd's certificate must carry */
  agent_tls gi;
  int gi_up;
  mtcsec_tstamp gi_retry;
  gg_ctx *ctx;
  size_t max_ctx;
  gg_stats st;
} ggsn;

static const char gg_usage[] =
  "usage: mtcsec ggsn run --listen HOST:PORT --mtcs HOST:PORT --cert PEM "
  "--key KEY\n"
  "                       --ca CA [--max-ctx N] [--trace] [--log-level "
  "LEVEL]\n";

static void gg_help(void) {
  printf(
    "%s\n"
    "Runs a simulated GGSN until SIGINT or SIGTERM: PDP contexts and G-PDUs "
    "from\n"
    "SGSNs on the GTP port (UDP), one TLS 1.3 \"Gi\" link to mtcsd's "
    "cellular service.\n"
    "A CREATE_PDP_REQUEST whose PCO carries RAND (container 0xFF00) opens "
    "the\n"
    "context at mtcsd (CTX_OPEN) and is answered once mtcsd has the keys "
    "(CTX_RESULT).\n"
    "SIGUSR1 logs the counters (event=stats).\n\n"
    "  --listen HOST:PORT  GTP address (port 0: chosen, logged as "
    "event=listening\n"
    "                      service=gtp addr=...)\n"
    "  --mtcs HOST:PORT    mtcsd's cellular_listen\n"
    "  --cert PEM, --key KEY  this GGSN's client certificate and key "
    "(mtcsec ggsn add)\n"
    "  --ca CA             the CA mtcsd's certificate must chain to "
    "(it must also\n"
    "                      name the host of --mtcs in its subjectAltName)\n"
    "  --max-ctx N         PDP contexts at once (%d)\n"
    "  --trace             print each message (type, size, direction, ms)\n"
    "  --log-level LEVEL   error, warn, info (default), debug\n\n"
    "Exit status: 0 stopped by a signal, 2 usage, 4 cannot bind or bad "
    "certificate\nfiles, 5 internal error.\n",
    gg_usage, GG_MAX_CTX_DEFAULT);
}

/* ------------------------------------------------------------- contexts */

static gg_ctx *gg_find(ggsn *g, uint32_t teid) {
  size_t i;
  if (teid == 0) {
    return NULL;
  }
  for (i = 0; i < g->max_ctx; i++) {
    if (g->ctx[i].state != GG_FREE && g->ctx[i].teid == teid) {
      return &g->ctx[i];
    }
  }
  return NULL;
}

static void gg_free(gg_ctx *c) { memset(c, 0, sizeof(*c)); }

/* Whether a TEID is in use (cell_unique_id32()). */
static int gg_teid_taken(void *arg, uint32_t teid) {
  return gg_find(arg, teid) != NULL;
}

/* ---------------------------------------------------------------- sending */

static void gg_udp_send(ggsn *g, const agent_addr *to, const uint8_t *buf,
                        size_t len, const char *name, const char *note) {
  char addr[80];
  if (agent_udp_send(g->fd, to, buf, len) != 0) {
    app_log(MTCSEC_LOG_WARN, "event=send_failed to=%s err=\"%s\"",
            agent_addr_str(to, addr, sizeof(addr)), strerror(errno));
  }
  cell_trace("GGSN", "SGSN", name, len, note);
}

static void gg_respond(ggsn *g, const agent_addr *to, uint8_t type,
                       uint16_t seq, uint8_t cause, uint32_t teid) {
  cellsim_gtpc r;
  uint8_t buf[16];
  char note[64];
  mtcsec_ssize n;
  memset(&r, 0, sizeof(r));
  r.type = type;
  r.seq = seq;
  r.cause = cause;
  r.teid = teid;
  n = cellsim_gtpc_encode(&r, buf, sizeof(buf));
  if (n > 0) {
    snprintf(note, sizeof(note), "seq %u, cause 0x%02x", (unsigned)seq, cause);
    gg_udp_send(g, to, buf, (size_t)n, cellsim_gtpc_name(type), note);
  }
}

static int gg_gi_send(ggsn *g, uint8_t type, uint32_t ctx, const uint8_t *body,
                      size_t bodylen) {
  uint8_t frame[GI_FRAME_MAX];
  char note[32];
  mtcsec_ssize n;
  if (!g->gi_up) {
    return -1;
  }
  n = gi_encode(type, ctx, body, bodylen, frame, sizeof(frame));
  if (n < 0) {
    app_log(MTCSEC_LOG_WARN, "event=gi_encode_failed type=%s err=%s",
            gi_type_name(type), mtcsec_errname((int)n));
    return -1;
  }
  if (agent_tls_queue(&g->gi, frame, (size_t)n) != 0 ||
      agent_tls_flush(&g->gi) != 0) {
    return -1;
  }
  snprintf(note, sizeof(note), "ctx %08" PRIx32, ctx);
  cell_trace("GGSN", "MTCs", gi_type_name(type), (size_t)n, note);
  return 0;
}

/* ------------------------------------------------------------------- Gi */

static void gg_gi_down(ggsn *g, const char *why) {
  size_t i;
  if (g->gi_up || g->gi.fd >= 0) {
    app_log(MTCSEC_LOG_WARN, "event=gi_down mtcs=%s reason=%s", g->mtcs, why);
  }
  agent_tls_close(&g->gi);
  g->gi_up = 0;
  g->gi_retry = app_now_ms() + GG_GI_RETRY_MS;
  /* mtcsd ends a connection's contexts when it closes (their channel
   * state stays with their (IMSI, RAND)). */
  for (i = 0; i < g->max_ctx; i++) {
    gg_ctx *c = &g->ctx[i];
    if (c->state == GG_PENDING) {
      g->st.refused++;
      gg_respond(g, &c->sgsn, CELLSIM_CREATE_PDP_RESPONSE, c->seq,
                 CELLSIM_GTP_SYSTEM_FAILURE, 0);
    }
    if (c->state != GG_FREE) {
      gg_free(c);
    }
  }
}

/* Whether mtcsd's certificate (its chain already verified against --ca)
 * names the host of --mtcs: checked before any Gi frame is sent. */
static int gg_gi_name_ok(ggsn *g, char *err, size_t errlen) {
  X509 *peer = SSL_get0_peer_certificate(g->gi.ssl);
  unsigned char ip[16];
  int is_ip = inet_pton(AF_INET, g->mtcs_host, ip) == 1 ||
              inet_pton(AF_INET6, g->mtcs_host, ip) == 1;
  int ok = peer != NULL &&
           (is_ip ? X509_check_ip_asc(peer, g->mtcs_host, 0) == 1
                  : X509_check_host(peer, g->mtcs_host, 0, 0, NULL) == 1);
  if (!ok) {
    snprintf(err, errlen,
             "mtcsd's certificate does not name %s (%s): connect to a name "
             "or address in its subjectAltName, or issue it for this one",
             g->mtcs_host, is_ip ? "IP address" : "DNS name");
  }
  return ok ? 0 : -1;
}

static void gg_gi_connect(ggsn *g) {
  char err[512];
  if (g->gi_up || app_now_ms() < g->gi_retry) {
    return;
  }
  if (agent_tls_connect(&g->gi, g->mtcs, g->cert, g->key, g->ca,
                        GG_GI_CONNECT_MS, err, sizeof(err)) != 0 ||
      gg_gi_name_ok(g, err, sizeof(err)) != 0) {
    if (g->gi.ssl != NULL) {
      agent_tls_close(&g->gi);
    }
    app_log(MTCSEC_LOG_WARN, "event=gi_unreachable mtcs=%s err=\"%s\"", g->mtcs,
            err);
    g->gi.fd = -1;
    g->gi_retry = app_now_ms() + GG_GI_RETRY_MS;
    return;
  }
  g->gi_up = 1;
  app_log(MTCSEC_LOG_INFO, "event=gi_connected mtcs=%s", g->mtcs);
}

/* TS 29.060 causes for section 3's CTX_RESULT status. */
static uint8_t gg_cause_for(uint8_t status) {
  switch (status) {
  case GI_STATUS_OK:
    return CELLSIM_GTP_ACCEPTED;
  case GI_STATUS_NOT_AUTHORIZED:
  case GI_STATUS_UNKNOWN_VECTOR:
  case GI_STATUS_STALE_RAND: /* the MS must attach again (new RAND) */
    return CELLSIM_GTP_USER_AUTH_FAILED;
  case GI_STATUS_TOO_MANY:
    return CELLSIM_GTP_NO_RESOURCES;
  default: /* 0x03, 0x05, 0x07 internal, and statuses not known yet */
    return CELLSIM_GTP_SYSTEM_FAILURE;
  }
}

static void gg_on_gi(ggsn *g, const gi_frame *f) {
  gg_ctx *c = gg_find(g, f->ctx);
  uint8_t buf[CELLSIM_GTPU_HDR_LEN + GI_BODY_MAX];
  char note[64];
  mtcsec_ssize n;

  snprintf(note, sizeof(note), "ctx %08" PRIx32, f->ctx);
  cell_trace("MTCs", "GGSN", gi_type_name(f->type), GI_HDR_LEN + f->bodylen,
             note);
  switch (f->type) {
  case GI_CTX_RESULT:
    if (c == NULL || c->state != GG_PENDING) {
      g->st.gi_dropped++;
      return;
    }
    {
      uint8_t status = f->body[0], cause = gg_cause_for(status);
      app_log(status == GI_STATUS_OK ? MTCSEC_LOG_INFO : MTCSEC_LOG_WARN,
              "event=ctx_result imsi=%s teid=%08" PRIx32
              " status=%s gtp_cause=0x%02x",
              c->imsi_str, c->teid, gi_status_name(status), cause);
      if (status == GI_STATUS_OK) {
        c->state = GG_ACTIVE;
        g->st.accepted++;
        gg_respond(g, &c->sgsn, CELLSIM_CREATE_PDP_RESPONSE, c->seq, cause,
                   c->teid);
      } else {
        g->st.refused++;
        gg_respond(g, &c->sgsn, CELLSIM_CREATE_PDP_RESPONSE, c->seq, cause, 0);
        gg_free(c);
      }
    }
    return;
  case GI_DOWNLINK:
    if (c == NULL || c->state != GG_ACTIVE) {
      g->st.gi_dropped++;
      return;
    }
    n =
      cellsim_gtpu_encode(c->sgsn_teid, f->body, f->bodylen, buf, sizeof(buf));
    if (n > 0) {
      g->st.downlink++;
      snprintf(note, sizeof(note), "TEID %08" PRIx32, c->sgsn_teid);
      gg_udp_send(g, &c->sgsn, buf, (size_t)n, "G-PDU", note);
    }
    return;
  default:
    g->st.gi_dropped++;
    app_log(MTCSEC_LOG_WARN, "event=gi_unexpected type=%s",
            gi_type_name(f->type));
    return;
  }
}

static void gg_gi_read(ggsn *g) {
  size_t off = 0;
  int rv = agent_tls_read(&g->gi);
  for (;;) {
    gi_frame f;
    mtcsec_ssize n = gi_decode(&f, g->gi.in + off, g->gi.inlen - off);
    if (n < 0) {
      gg_gi_down(g, "malformed_frame");
      return;
    }
    if (n == 0) {
      break;
    }
    gg_on_gi(g, &f);
    off += (size_t)n;
  }
  agent_tls_consume(&g->gi, off);
  if (rv != 0) {
    gg_gi_down(g, "closed");
  }
}

/* ------------------------------------------------------------------ GTP */

static void gg_on_create(ggsn *g, const cellsim_gtpc *r,
                         const agent_addr *from) {
  uint8_t rand[MTCSEC_3GPP_RAND_LEN], body[GI_CTX_OPEN_LEN];
  mtcsec_pco pco;
  gg_ctx *c = NULL;
  size_t i;

  g->st.creates++;
  /* A resent request: pending ones wait for mtcsd, answered ones again. */
  for (i = 0; i < g->max_ctx; i++) {
    gg_ctx *x = &g->ctx[i];
    if (x->state != GG_FREE && x->seq == r->seq && x->sgsn_teid == r->teid &&
        agent_addr_equal(&x->sgsn, from)) {
      if (x->state == GG_ACTIVE) {
        gg_respond(g, from, CELLSIM_CREATE_PDP_RESPONSE, r->seq,
                   CELLSIM_GTP_ACCEPTED, x->teid);
      }
      return;
    }
  }
  if (mtcsec_pco_decode(&pco, MTCSEC_PCO_BARE, r->pco, r->pcolen) < 0 ||
      mtcsec_pco_find_rand(&pco, NULL, NULL, rand) != 0) {
    app_log(MTCSEC_LOG_WARN,
            "event=pdp_refused seq=%u reason=no_rand (no PCO container "
            "0xff00)",
            (unsigned)r->seq);
    g->st.refused++;
    gg_respond(g, from, CELLSIM_CREATE_PDP_RESPONSE, r->seq,
               CELLSIM_GTP_USER_AUTH_FAILED, 0);
    return;
  }
  if (!g->gi_up) {
    g->st.refused++;
    app_log(MTCSEC_LOG_WARN, "event=pdp_refused seq=%u reason=gi_down",
            (unsigned)r->seq);
    gg_respond(g, from, CELLSIM_CREATE_PDP_RESPONSE, r->seq,
               CELLSIM_GTP_SYSTEM_FAILURE, 0);
    return;
  }
  for (i = 0; i < g->max_ctx && c == NULL; i++) {
    if (g->ctx[i].state == GG_FREE) {
      c = &g->ctx[i];
    }
  }
  if (c == NULL) {
    g->st.refused++;
    app_log(MTCSEC_LOG_WARN, "event=pdp_refused seq=%u reason=max_ctx",
            (unsigned)r->seq);
    gg_respond(g, from, CELLSIM_CREATE_PDP_RESPONSE, r->seq,
               CELLSIM_GTP_NO_RESOURCES, 0);
    return;
  }
  c->teid = cell_unique_id32(&g->crypto, gg_teid_taken, g);
  if (c->teid == 0) {
    g->st.refused++;
    app_log(MTCSEC_LOG_ERROR,
            "event=pdp_refused seq=%u reason=no_teid (the random source "
            "failed %d times)",
            (unsigned)r->seq, CELL_ID_TRIES);
    gg_respond(g, from, CELLSIM_CREATE_PDP_RESPONSE, r->seq,
               CELLSIM_GTP_SYSTEM_FAILURE, 0);
    return;
  }
  c->state = GG_PENDING;
  c->sgsn = *from;
  c->sgsn_teid = r->teid;
  c->seq = r->seq;
  c->nsapi = r->nsapi;
  memcpy(c->imsi, r->imsi, sizeof(c->imsi));
  if (mtcsec_imsi_from_tbcd(r->imsi, c->imsi_str, sizeof(c->imsi_str)) < 0) {
    snprintf(c->imsi_str, sizeof(c->imsi_str), "?");
  }
  c->deadline = app_now_ms() + GG_OPEN_TIMEOUT_MS;
  memcpy(body, r->imsi, MTCSEC_IMSI_TBCD_LEN);
  memcpy(body + MTCSEC_IMSI_TBCD_LEN, rand, sizeof(rand));
  app_log(MTCSEC_LOG_INFO,
          "event=pdp_request imsi=%s nsapi=%u sgsn_teid=%08" PRIx32
          " teid=%08" PRIx32,
          c->imsi_str, (unsigned)c->nsapi, c->sgsn_teid, c->teid);
  if (gg_gi_send(g, GI_CTX_OPEN, c->teid, body, sizeof(body)) != 0) {
    gg_gi_down(g, "write_error"); /* answers the pending context */
  }
}

static void gg_on_delete(ggsn *g, const cellsim_gtpc *r,
                         const agent_addr *from) {
  gg_ctx *c = gg_find(g, r->teid);
  if (c == NULL || !agent_addr_equal(&c->sgsn, from)) {
    gg_respond(g, from, CELLSIM_DELETE_PDP_RESPONSE, r->seq,
               CELLSIM_GTP_NON_EXISTENT, 0);
    return;
  }
  g->st.deletes++;
  app_log(MTCSEC_LOG_INFO, "event=pdp_deleted imsi=%s teid=%08" PRIx32,
          c->imsi_str, c->teid);
  (void)gg_gi_send(g, GI_CTX_CLOSE, c->teid, NULL, 0);
  gg_free(c);
  gg_respond(g, from, CELLSIM_DELETE_PDP_RESPONSE, r->seq, CELLSIM_GTP_ACCEPTED,
             0);
}

static void gg_on_udp(ggsn *g, const uint8_t *buf, size_t len,
                      const agent_addr *from) {
  cellsim_gtpc r;
  const uint8_t *tpdu;
  size_t tlen;
  uint32_t teid;
  gg_ctx *c;
  char note[64];

  if (len > 0 && buf[0] == CELLSIM_GTPC_MAGIC) {
    if (cellsim_gtpc_decode(&r, buf, len) != 0) {
      g->st.gtpc_dropped++;
      return;
    }
    snprintf(note, sizeof(note), "seq %u", (unsigned)r.seq);
    cell_trace("SGSN", "GGSN", cellsim_gtpc_name(r.type), len, note);
    if (r.type == CELLSIM_CREATE_PDP_REQUEST) {
      gg_on_create(g, &r, from);
    } else if (r.type == CELLSIM_DELETE_PDP_REQUEST) {
      gg_on_delete(g, &r, from);
    } else {
      g->st.gtpc_dropped++;
    }
    return;
  }
  if (cellsim_gtpu_decode(buf, len, &teid, &tpdu, &tlen) != 0 ||
      (c = gg_find(g, teid)) == NULL || c->state != GG_ACTIVE ||
      !agent_addr_equal(&c->sgsn, from) || tlen > GI_BODY_MAX) {
    g->st.gtpu_dropped++;
    return;
  }
  snprintf(note, sizeof(note), "TEID %08" PRIx32, teid);
  cell_trace("SGSN", "GGSN", "G-PDU", len, note);
  g->st.uplink++;
  if (gg_gi_send(g, GI_UPLINK, c->teid, tpdu, tlen) != 0) {
    gg_gi_down(g, "write_error");
  }
}

/* ---------------------------------------------------------------- loop */

static void gg_timers(ggsn *g, mtcsec_tstamp now) {
  size_t i;
  for (i = 0; i < g->max_ctx; i++) {
    gg_ctx *c = &g->ctx[i];
    if (c->state == GG_PENDING && now >= c->deadline) {
      app_log(MTCSEC_LOG_WARN,
              "event=ctx_result imsi=%s teid=%08" PRIx32 " status=timeout",
              c->imsi_str, c->teid);
      g->st.refused++;
      (void)gg_gi_send(g, GI_CTX_CLOSE, c->teid, NULL, 0);
      gg_respond(g, &c->sgsn, CELLSIM_CREATE_PDP_RESPONSE, c->seq,
                 CELLSIM_GTP_SYSTEM_FAILURE, 0);
      gg_free(c);
    }
  }
}

static void gg_log_stats(const ggsn *g) {
  size_t i, active = 0, pending = 0;
  for (i = 0; i < g->max_ctx; i++) {
    active += g->ctx[i].state == GG_ACTIVE;
    pending += g->ctx[i].state == GG_PENDING;
  }
  app_log(MTCSEC_LOG_INFO,
          "event=stats gi_up=%d active=%zu pending=%zu creates=%" PRIu64
          " accepted=%" PRIu64 " refused=%" PRIu64 " deletes=%" PRIu64
          " uplink=%" PRIu64 " downlink=%" PRIu64 " gtpu_dropped=%" PRIu64
          " gtpc_dropped=%" PRIu64 " gi_dropped=%" PRIu64,
          g->gi_up, active, pending, g->st.creates, g->st.accepted,
          g->st.refused, g->st.deletes, g->st.uplink, g->st.downlink,
          g->st.gtpu_dropped, g->st.gtpc_dropped, g->st.gi_dropped);
}

static int gg_loop(ggsn *g) {
  uint8_t buf[4096];
  while (!agent_stop) {
    struct pollfd p[2];
    nfds_t np = 1;
    mtcsec_tstamp now = app_now_ms();
    int rv, timeout = 1000;

    if (agent_stats_wanted) {
      agent_stats_wanted = 0;
      gg_log_stats(g);
    }
    gg_gi_connect(g);
    gg_timers(g, now);
    if (!g->gi_up && g->gi_retry > now && g->gi_retry - now < 1000) {
      timeout = (int)(g->gi_retry - now);
    }
    p[0].fd = g->fd;
    p[0].events = POLLIN;
    p[0].revents = 0;
    if (g->gi_up) {
      p[1].fd = g->gi.fd;
      p[1].events = agent_tls_events(&g->gi);
      p[1].revents = 0;
      np = 2;
    }
    rv = poll(p, np, timeout);
    if (rv < 0) {
      if (errno == EINTR) {
        continue;
      }
      app_log(MTCSEC_LOG_ERROR, "event=poll_failed err=\"%s\"",
              strerror(errno));
      return CLI_INTERNAL;
    }
    if (np == 2 && p[1].revents != 0) {
      if ((p[1].revents & POLLOUT) && agent_tls_flush(&g->gi) != 0) {
        gg_gi_down(g, "write_error");
      } else if (p[1].revents & (POLLIN | POLLERR | POLLHUP)) {
        gg_gi_read(g);
      }
    }
    if (p[0].revents & (POLLIN | POLLERR)) {
      for (;;) {
        agent_addr from;
        long n = agent_udp_recv(g->fd, buf, sizeof(buf), &from);
        if (n <= 0) {
          break;
        }
        gg_on_udp(g, buf, (size_t)n, &from);
      }
    }
  }
  return CLI_OK;
}

int agent_ggsn_run(int argc, char **argv) {
  static const struct option opts[] = {
    {"listen", required_argument, NULL, 'l'},
    {"mtcs", required_argument, NULL, 'm'},
    {"cert", required_argument, NULL, 'c'},
    {"key", required_argument, NULL, 'k'},
    {"ca", required_argument, NULL, 'a'},
    {"max-ctx", required_argument, NULL, 'x'},
    {"trace", no_argument, NULL, 't'},
    {"log-level", required_argument, NULL, 'L'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  const char *listen = NULL;
  char err[256];
  ggsn *g;
  int orv, ch, trace = 0, level = MTCSEC_LOG_INFO, rv = CLI_OK;
  unsigned long v;
  size_t i;

  g = calloc(1, sizeof(*g));
  if (g == NULL) {
    return CLI_INTERNAL;
  }
  g->fd = -1;
  g->gi.fd = -1;
  g->max_ctx = GG_MAX_CTX_DEFAULT;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'l':
      listen = optarg;
      break;
    case 'm':
      g->mtcs = optarg;
      break;
    case 'c':
      g->cert = optarg;
      break;
    case 'k':
      g->key = optarg;
      break;
    case 'a':
      g->ca = optarg;
      break;
    case 'x':
      if (agent_parse_uint(optarg, 1000000, &v) != 0 || v == 0) {
        fprintf(stderr, "mtcsec ggsn run: bad --max-ctx '%s'\n%s", optarg,
                gg_usage);
        free(g);
        return CLI_USAGE;
      }
      g->max_ctx = v;
      break;
    default:
      orv = agent_common_opt(ch, argv, "ggsn run", gg_usage, gg_help, &trace,
                             &level);
      if (orv != AGENT_OPT_NEXT) {
        free(g);
        return orv;
      }
      break;
    }
  }
  if (listen == NULL || g->mtcs == NULL || g->cert == NULL || g->key == NULL ||
      g->ca == NULL || optind != argc) {
    fprintf(stderr, "mtcsec ggsn run: %s\n%s",
            optind != argc ? "unexpected argument"
                           : "give --listen, --mtcs, --cert, --key and --ca",
            gg_usage);
    free(g);
    return CLI_USAGE;
  }
  agent_start("mtcsec-ggsn", level, trace, 1);

  if (cell_addr_host(g->mtcs, g->mtcs_host, sizeof(g->mtcs_host)) != 0) {
    fprintf(stderr,
            "mtcsec ggsn run: --mtcs %s: expected HOST:PORT or [V6]:PORT\n%s",
            g->mtcs, gg_usage);
    rv = CLI_USAGE;
    goto cleanup;
  }
  g->ctx = calloc(g->max_ctx, sizeof(*g->ctx));
  if (g->ctx == NULL || mtcsec_crypto_openssl_new(&g->crypto) != 0) {
    fprintf(stderr, "mtcsec ggsn run: out of memory or no OpenSSL\n");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  /* Check the certificate files once, so that a typo is an error now and
   * not a retry loop. */
  {
    SSL_CTX *t = app_tls_client_ctx(g->cert, g->key, g->ca, err, sizeof(err));
    if (t == NULL) {
      fprintf(stderr, "mtcsec ggsn run: %s\n", err);
      rv = CLI_CONFIG;
      goto cleanup;
    }
    SSL_CTX_free(t);
  }
  g->fd = app_udp_bind(listen, err, sizeof(err));
  if (g->fd < 0) {
    fprintf(stderr, "mtcsec ggsn run: --listen %s: %s\n", listen, err);
    rv = CLI_CONFIG;
    goto cleanup;
  }
  cell_sock_name(g->fd, g->listen, sizeof(g->listen));
  app_log(MTCSEC_LOG_INFO, "event=listening service=gtp addr=%s", g->listen);
  gg_gi_connect(g);
  app_log(MTCSEC_LOG_INFO, "event=ready mtcs=%s gi_up=%d max_ctx=%zu", g->mtcs,
          g->gi_up, g->max_ctx);
  printf("ggsn: GTP %s (udp), Gi to %s (TLS)\n", g->listen, g->mtcs);
  fflush(stdout);
  rv = gg_loop(g);
  for (i = 0; i < g->max_ctx; i++) {
    if (g->ctx[i].state != GG_FREE) {
      (void)gg_gi_send(g, GI_CTX_CLOSE, g->ctx[i].teid, NULL, 0);
      gg_free(&g->ctx[i]);
    }
  }
  gg_log_stats(g);

cleanup:
  if (g->gi.fd >= 0 || g->gi.ssl != NULL) {
    agent_tls_close(&g->gi);
  }
  if (g->fd >= 0) {
    close(g->fd);
  }
  free(g->ctx);
  mtcsec_crypto_openssl_del(&g->crypto);
  free(g);
  return rv;
}
