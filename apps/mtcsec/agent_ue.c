/*
 * `mtcsec ue get|put|scan`: a simulated UE (the user's phone).
 *
 * One poll() loop around the sans-IO UE role.  The UE sends M0 to devices
 * (directly or through a relay), hands each M1 to the role, which queues M2
 * frames for the one TLS 1.3 connection to mtcsd; M3 yields the DMKey and
 * an M4 for the device.  Then `get` and `put` talk to the device over the
 * direct channel (docs/AGENTS.md, application protocol); mtcsd is not
 * involved any more.  DMKeys are kept in ues/<UEID>.keys/ so that later
 * commands reuse them until their lifetime ends.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <mtcsec/codec.h>
#include <mtcsec/phone.h>

#include "agent_common.h"
#include "app.h"
#include "cli.h"

/* M0 is resent this often until an M1 arrives (a device rate-limits M0s). */
#define UE_M0_RETRY_MS 700
/* A request over the direct channel waits this long for its answer. */
#define UE_REQ_WAIT_MS 1000
#define UE_REQ_TRIES 3

enum { UE_MODE_GET = 0, UE_MODE_PUT = 1, UE_MODE_SCAN = 2 };

typedef enum ue_tstate {
  T_IDLE = 0, /* nothing sent yet */
  T_M0 = 1,   /* M0 sent, waiting for M1 */
  T_WAIT = 2, /* M1 handed to the role: waiting for the server */
  T_DONE = 3, /* M4 sent: key held */
  T_FAIL = 4
} ue_tstate;

/* One device the UE talks to. */
typedef struct ue_target {
  uint8_t id[MTCSEC_ID_LEN];
  char idhex[17];
  agent_addr addr;
  char addrstr[80];
  ue_tstate state;
  mtcsec_tstamp deadline, next_m0;
  double t0, t1; /* ms, for the scan table */
  uint8_t errcode;
  char detail[128];
  const char *fail; /* reason when T_FAIL without an ERR code */
  int have_key;
  agent_key key;
} ue_target;

/* Options of get / put / scan. */
typedef struct ue_opts {
  const char *cmd;
  int mode;
  const char *device_addr, *via, *server, *ueid, *addr_file, *revocation;
  const char *bind;
  uint8_t req_perms;
  uint8_t op;
  int fresh, cached_only, ignore_expiry, save, trace, level;
  unsigned long timeout_ms, concurrency;
} ue_opts;

typedef struct ue_ctx {
  const ue_opts *o;
  uint8_t ueid[MTCSEC_ID_LEN];
  char uehex[17];
  char server[160];
  int udp;
  agent_tls tls;
  int tls_up;
  mtcsec_crypto crypto;
  int have_crypto;
  mtcsec_ue *ue;
  ue_target *t;
  size_t nt;
  /* The DMKey of the M3 being handed to the role (see ue_handle_frame). */
  agent_key stash;
  int stash_valid;
} ue_ctx;

static const char ue_usage_text[] =
  "usage: mtcsec ue get DEVICE NAME [options]\n"
  "       mtcsec ue put DEVICE NAME VALUE [--actuate|--configure] "
  "[options]\n"
  "       mtcsec ue scan DEVICE... [--addr-file FILE] [--concurrency N] "
  "[options]\n";

static void ue_help(int mode) {
  printf("%s\n", ue_usage_text);
  if (mode == UE_MODE_SCAN) {
    printf("Establishes keys with many devices at once over one TLS "
           "connection\n"
           "(pipelined req_ids) and prints a table and a summary.\n\n"
           "  --addr-file FILE    lines \"DEVICE ADDR\" (# comments)\n"
           "  --device-addr ADDR  device i at ADDR's port + i (when not in "
           "the file)\n"
           "  --concurrency N     exchanges in flight at once (32)\n"
           "  --no-save           do not keep the keys in ues/UEID.keys/\n");
  } else {
    printf("Obtains a DMKey for DEVICE (M0, M1, M2/M3 with mtcsd over TLS "
           "1.3, M4),\n"
           "or reuses the one kept in ues/UEID.keys/, then %s\n"
           "over the direct channel.\n\n"
           "  --actuate           put: ACTUATE instead of WRITE (led "
           "on|off|toggle)\n"
           "  --configure         put: CONFIGURE instead of WRITE (name "
           "TEXT)\n"
           "  --new               establish a new key even if one is kept\n"
           "  --cached-only       never contact mtcsd; fail without a kept "
           "key\n"
           "  --carry-revocation HEX\n"
           "                      first deliver a revocation (from `mtcsec "
           "revoke`);\n"
           "                      NAME is then optional\n"
           "  --ignore-expiry     testing: keep using a key past its "
           "lifetime\n",
           mode == UE_MODE_GET ? "reads NAME" : "writes NAME");
  }
  printf("\nCommon options:\n"
         "  --device-addr ADDR  the device's UDP address (default: "
         "devices/ID.addr,\n"
         "                      written by `mtcsec device run` on this "
         "host)\n"
         "  --via GWADDR        through a relay (`mtcsec gw run`) instead\n"
         "  --server ADDR       mtcsd (default: listen of mtcsd.conf)\n"
         "  --ueid ID           the UE (default: the only ues/*.pem)\n"
         "  --perms LIST        REQ_PERMS: read,write,actuate,configure "
         "(all)\n"
         "  --bind ADDR         local UDP address (0.0.0.0:0)\n"
         "  --timeout MS        per device (8000)\n"
         "  --trace             print each message (type, size, direction, "
         "ms)\n"
         "  --log-level LEVEL   error, warn (default), info, debug\n"
         "\nExit status: 0 done, 1 refused or no answer, 2 usage, 3 not "
         "found, 4 configuration, 5 internal.\n");
}

/* ------------------------------------------------------------ helpers */

static int ue_pick_ueid(ue_ctx *c) {
  char dirpath[4096];
  DIR *d;
  struct dirent *e;
  int found = 0;
  if (c->o->ueid != NULL) {
    if (app_parse_id(c->o->ueid, c->ueid) != 0) {
      fprintf(stderr, "mtcsec %s: --ueid '%s' is not 16 hex digits\n",
              c->o->cmd, c->o->ueid);
      return CLI_USAGE;
    }
    app_format_id(c->uehex, c->ueid);
    return CLI_OK;
  }
  snprintf(dirpath, sizeof(dirpath), "%s", cli_path("ues"));
  d = opendir(dirpath);
  if (d != NULL) {
    while ((e = readdir(d)) != NULL) {
      uint8_t id[MTCSEC_ID_LEN];
      char name[17];
      if (strlen(e->d_name) != 20 || strcmp(e->d_name + 16, ".pem") != 0) {
        continue;
      }
      memcpy(name, e->d_name, 16);
      name[16] = '\0';
      if (app_parse_id(name, id) == 0) {
        memcpy(c->ueid, id, MTCSEC_ID_LEN);
        found++;
      }
    }
    closedir(d);
  }
  if (found != 1) {
    fprintf(stderr,
            "mtcsec %s: %s; pass --ueid ID (UEs are added with `mtcsec ue "
            "add`)\n",
            c->o->cmd, found == 0 ? "no UE in ues/" : "several UEs in ues/");
    return found == 0 ? CLI_NOTFOUND : CLI_USAGE;
  }
  app_format_id(c->uehex, c->ueid);
  return CLI_OK;
}

/* Where a device is: --via, else --device-addr (+ offset), else the file
 * the device agent wrote.  CLI code. */
static int ue_locate(ue_ctx *c, ue_target *t, unsigned idx,
                     const char *from_file) {
  char err[256], buf[160], rel[64], *text = NULL;
  const char *a = NULL;
  size_t len = 0;
  if (from_file != NULL) {
    a = from_file;
  } else if (c->o->via != NULL) {
    a = c->o->via;
  } else if (c->o->device_addr != NULL) {
    if (agent_addr_offset(c->o->device_addr, idx, buf, sizeof(buf)) != 0) {
      fprintf(stderr, "mtcsec %s: bad --device-addr '%s' (HOST:PORT)\n",
              c->o->cmd, c->o->device_addr);
      return CLI_USAGE;
    }
    a = buf;
  } else {
    snprintf(rel, sizeof(rel), "devices/%s.addr", t->idhex);
    text = app_read_file(cli_path(rel), 256, &len);
    if (text == NULL) {
      fprintf(stderr,
              "mtcsec %s: where is device %s? give --device-addr ADDR or "
              "--via GWADDR (or start `mtcsec device run %s` on this "
              "host)\n",
              c->o->cmd, t->idhex, t->idhex);
      return CLI_NOTFOUND;
    }
    text[strcspn(text, "\r\n")] = '\0';
    a = text;
  }
  if (agent_addr_parse(&t->addr, a, err, sizeof(err)) != 0) {
    fprintf(stderr, "mtcsec %s: device %s at '%s': %s\n", c->o->cmd, t->idhex,
            a, err);
    free(text);
    return CLI_USAGE;
  }
  agent_addr_str(&t->addr, t->addrstr, sizeof(t->addrstr));
  free(text);
  return CLI_OK;
}

static const char *ue_link_name(const ue_ctx *c) {
  return c->o->via != NULL ? "GW" : "MTCd";
}

static ue_target *ue_find(ue_ctx *c, const uint8_t *mtcd_id) {
  size_t i;
  for (i = 0; i < c->nt; i++) {
    if (memcmp(c->t[i].id, mtcd_id, MTCSEC_ID_LEN) == 0) {
      return &c->t[i];
    }
  }
  return NULL;
}

static void ue_fail(ue_target *t, const char *why) {
  if (t->state != T_DONE && t->state != T_FAIL) {
    t->state = T_FAIL;
    t->fail = why;
    t->t1 = agent_elapsed_ms();
  }
}

/* What to do about an ERR code, into out ("" when nothing to say). */
static void ue_errcode_hint(char *out, size_t outlen, uint8_t code,
                            const char *ue, const char *dev) {
  switch (code) {
  case MTCSEC_ERRCODE_UE_NOT_AUTHORIZED:
    snprintf(out, outlen, "run: mtcsec grant %s %s", ue, dev);
    break;
  case MTCSEC_ERRCODE_RELAY_NOT_AUTHORIZED:
    snprintf(out, outlen, "run: mtcsec relay allow GWID %s", dev);
    break;
  case MTCSEC_ERRCODE_UNKNOWN_DEVICE:
    snprintf(out, outlen, "mtcsd does not know %s: mtcsec device add", dev);
    break;
  case MTCSEC_ERRCODE_DEVICE_DISABLED:
    snprintf(out, outlen, "device %s is disabled on the server", dev);
    break;
  case MTCSEC_ERRCODE_BAD_MIC:
    snprintf(out, outlen, "the device's PSKey differs from the server's");
    break;
  case MTCSEC_ERRCODE_WRONG_SERVER:
    snprintf(out, outlen, "the device belongs to another MTCs");
    break;
  case MTCSEC_ERRCODE_RATE_LIMITED:
    snprintf(out, outlen, "try again later");
    break;
  case MTCSEC_ERRCODE_REPLAY:
    snprintf(out, outlen, "the device reused a nonce: check devices/%s.state",
             dev);
    break;
  case MTCSEC_ERRCODE_INTERNAL:
    snprintf(out, outlen,
             "the server could not record the exchange (see mtcsd's log, "
             "e.g. a full disk); nothing was kept: retry later");
    break;
  case MTCSEC_ERRCODE_UNSUPPORTED_SUITE:
    snprintf(out, outlen, "the server does not offer the device's suite");
    break;
  default:
    out[0] = '\0';
    break;
  }
}

/* ------------------------------------------------------- role callbacks */

static void ue_on_event(void *user_data, const mtcsec_ue_event *ev) {
  ue_ctx *c = user_data;
  ue_target *t = ue_find(c, ev->mtcd_id);
  char perms[48];
  if (t == NULL) {
    return;
  }
  switch (ev->type) {
  case MTCSEC_UE_EV_ESTABLISHED:
    if (c->stash_valid &&
        memcmp(c->stash.mtcd_id, ev->mtcd_id, MTCSEC_ID_LEN) == 0 &&
        c->stash.key_id == ev->key_id) {
      t->key = c->stash;
      t->have_key = 1;
    }
    app_log(MTCSEC_LOG_INFO,
            "event=established mtcd=%s req_id=%" PRIu32
            " key_id=%u perms=%s lifetime=%lu",
            t->idhex, ev->req_id, (unsigned)ev->key_id,
            app_format_perms(perms, ev->perms), (unsigned long)ev->lifetime);
    break;
  case MTCSEC_UE_EV_ERROR:
    t->errcode = ev->errcode;
    snprintf(t->detail, sizeof(t->detail), "%s",
             ev->detail != NULL ? ev->detail : "");
    ue_fail(t, "server refused");
    app_log(MTCSEC_LOG_WARN,
            "event=refused mtcd=%s req_id=%" PRIu32 " err=%s detail=\"%s\"",
            t->idhex, ev->req_id, mtcsec_errcode_name(ev->errcode), t->detail);
    break;
  case MTCSEC_UE_EV_TIMEOUT:
    ue_fail(t, "no answer from mtcsd");
    break;
  default:
    break;
  }
}

/* ------------------------------------------------------- establishment */

static void ue_send_m0(ue_ctx *c, ue_target *t) {
  uint8_t buf[64];
  mtcsec_ssize n = mtcsec_ue_m0(c->ue, buf, sizeof(buf), c->o->req_perms);
  if (n < 0) {
    ue_fail(t, "cannot build M0");
    return;
  }
  if (agent_udp_send(c->udp, &t->addr, buf, (size_t)n) != 0) {
    app_log(MTCSEC_LOG_WARN, "event=send_failed to=%s err=\"%s\"", t->addrstr,
            strerror(errno));
  }
  agent_trace("UE", ue_link_name(c), buf, (size_t)n, 0, t->addrstr);
}

/* Sends what the role queued: M2 frames to mtcsd, M4s to devices. */
static void ue_pump(ue_ctx *c, mtcsec_tstamp now) {
  uint8_t buf[MTCSEC_FRAME_HDR_LEN + MTCSEC_HS_MAX_LEN + 64];
  char err[256];
  for (;;) {
    mtcsec_link link = MTCSEC_LINK_DEVICE;
    uint64_t peer = 0;
    ue_target *t;
    mtcsec_ssize n =
      mtcsec_ue_write(c->ue, buf, sizeof(buf), &link, &peer, now);
    if (n <= 0) {
      return;
    }
    if (link == MTCSEC_LINK_SERVER) {
      agent_trace("UE", "MTCs", buf, (size_t)n, 1, "TLS");
      if (agent_tls_queue(&c->tls, buf, (size_t)n) != 0) {
        app_log(MTCSEC_LOG_ERROR, "event=nomem");
      }
      continue;
    }
    if (peer == 0 || peer > c->nt) {
      continue;
    }
    t = &c->t[peer - 1];
    if (agent_udp_send(c->udp, &t->addr, buf, (size_t)n) != 0) {
      app_log(MTCSEC_LOG_WARN, "event=send_failed to=%s err=\"%s\"", t->addrstr,
              strerror(errno));
    }
    agent_trace("UE", ue_link_name(c), buf, (size_t)n, 0, t->addrstr);
    if (t->state == T_WAIT && t->have_key) {
      t->state = T_DONE;
      t->t1 = agent_elapsed_ms();
      if (c->o->save &&
          agent_key_save(c->ueid, &t->key, err, sizeof(err)) != 0) {
        app_log(MTCSEC_LOG_WARN, "event=key_not_saved mtcd=%s err=\"%s\"",
                t->idhex, err);
      }
    }
  }
}

static void ue_handle_frame(ue_ctx *c, const uint8_t *frame, size_t len,
                            const mtcsec_frame *fr, mtcsec_tstamp now) {
  char note[96];
  int rv;
  c->stash_valid = 0;
  if (fr->type == MTCSEC_MSG_M3) {
    /* The role keeps the DMKey inside its own channel; the agent also
     * needs it for the key cache, so it reads the M3 on the way in. */
    mtcsec_hs m4;
    mtcsec_sinfo si;
    const uint8_t *dmkey = NULL;
    size_t dmkeylen = 0;
    if (mtcsec_m3_decode(&m4, &dmkey, &dmkeylen, fr->body, fr->bodylen) == 0 &&
        mtcsec_sinfo_decode(&si, m4.info, m4.info_len) == 0 &&
        dmkeylen <= MTCSEC_MAX_KEY_LEN) {
      memset(&c->stash, 0, sizeof(c->stash));
      memcpy(c->stash.mtcd_id, m4.id_b, MTCSEC_ID_LEN);
      c->stash.suite = m4.suite;
      c->stash.perms = si.perms;
      c->stash.key_id = si.key_id;
      c->stash.expires_ms = agent_unix_ms() + (int64_t)si.lifetime * 1000;
      memcpy(c->stash.dmkey, dmkey, dmkeylen);
      c->stash.keylen = (uint8_t)dmkeylen;
      mtcsec_window_init(&c->stash.rx);
      c->stash_valid = 1;
      snprintf(note, sizeof(note), "req_id %" PRIu32 ", key %u", fr->req_id,
               (unsigned)si.key_id);
    } else {
      snprintf(note, sizeof(note), "req_id %" PRIu32, fr->req_id);
    }
  } else if (fr->type == MTCSEC_MSG_ERR && fr->bodylen >= 1) {
    snprintf(note, sizeof(note), "req_id %" PRIu32 ", %s", fr->req_id,
             mtcsec_errcode_name(fr->body[0]));
  } else {
    snprintf(note, sizeof(note), "req_id %" PRIu32, fr->req_id);
  }
  agent_trace("MTCs", "UE", frame, len, 1, note);
  rv = mtcsec_ue_read_server(c->ue, frame, len, now);
  mtcsec_zeroize(&c->stash, sizeof(c->stash));
  c->stash_valid = 0;
  if (rv != 0) {
    app_log(MTCSEC_LOG_WARN,
            "event=frame_ignored type=%s req_id=%" PRIu32 " err=%s",
            agent_msg_name(fr->type), fr->req_id, mtcsec_errname(rv));
  }
}

static void ue_handle_datagram(ue_ctx *c, const uint8_t *buf, size_t len,
                               const agent_addr *from, mtcsec_tstamp now) {
  char addr[80];
  ue_target *t;
  int rv;
  if (buf[0] != MTCSEC_MSG_M1 || len < 2 + MTCSEC_ID_LEN) {
    app_log(MTCSEC_LOG_DEBUG, "event=ignored type=%s from=%s",
            agent_msg_name(buf[0]), agent_addr_str(from, addr, sizeof(addr)));
    return;
  }
  t = ue_find(c, buf + 2); /* M1: MTCdID at offset 2 */
  agent_trace(ue_link_name(c), "UE", buf, len, 0, t != NULL ? t->idhex : "?");
  if (t == NULL || (t->state != T_M0 && t->state != T_WAIT)) {
    return;
  }
  rv = mtcsec_ue_read_device(c->ue, buf, len, (uint64_t)(t - c->t) + 1, now);
  if (rv == 0) {
    t->state = T_WAIT;
  } else if (rv != MTCSEC_ERR_UNEXPECTED) {
    app_log(MTCSEC_LOG_WARN, "event=m1_ignored mtcd=%s err=%s", t->idhex,
            mtcsec_errname(rv));
    if (rv == MTCSEC_ERR_MISMATCH) {
      ue_fail(t, "the device answered another UE");
    }
  }
}

static int ue_connect(ue_ctx *c) {
  char cert[4096], key[4096], ca[4096], rel[64], err[512];
  snprintf(rel, sizeof(rel), "ues/%s.pem", c->uehex);
  snprintf(cert, sizeof(cert), "%s", cli_path(rel));
  snprintf(rel, sizeof(rel), "ues/%s.key", c->uehex);
  snprintf(key, sizeof(key), "%s", cli_path(rel));
  snprintf(ca, sizeof(ca), "%s", cli_path("ca.pem"));
  if (access(cert, R_OK) != 0 || access(key, R_OK) != 0) {
    fprintf(stderr,
            "mtcsec %s: no certificate for UE %s (%s): run: mtcsec ue add "
            "%s\n",
            c->o->cmd, c->uehex, cert, c->uehex);
    return CLI_NOTFOUND;
  }
  if (agent_tls_connect(&c->tls, c->server, cert, key, ca, 5000, err,
                        sizeof(err)) != 0) {
    fprintf(stderr, "mtcsec %s: cannot reach mtcsd at %s: %s\n", c->o->cmd,
            c->server, err);
    return CLI_FAILED;
  }
  c->tls_up = 1;
  app_log(MTCSEC_LOG_INFO, "event=connected server=%s ue=%s", c->server,
          c->uehex);
  if (agent_trace_enabled()) {
    printf("  %9.1f ms  UE: TLS 1.3 to mtcsd at %s up (%s)\n",
           agent_elapsed_ms(), c->server, SSL_get_version(c->tls.ssl));
  }
  return CLI_OK;
}

/* Runs M0..M4 for every target not T_DONE yet; returns when all are done
 * or failed. */
static void ue_establish(ue_ctx *c) {
  uint8_t buf[2048];
  size_t i;

  for (;;) {
    mtcsec_tstamp now = app_now_ms(), next = now + 1000, e;
    size_t active = 0, open = 0;
    struct pollfd pfd[2];
    int rv;

    for (i = 0; i < c->nt; i++) {
      ue_target *t = &c->t[i];
      if (t->state == T_M0 || t->state == T_WAIT) {
        if (now >= t->deadline) {
          ue_fail(t, t->state == T_M0 ? "no answer from the device"
                                      : "no answer from mtcsd");
          continue;
        }
        active++;
      }
    }
    for (i = 0; i < c->nt; i++) {
      ue_target *t = &c->t[i];
      if (t->state == T_IDLE && active < c->o->concurrency) {
        t->state = T_M0;
        t->t0 = agent_elapsed_ms();
        t->deadline = now + c->o->timeout_ms;
        t->next_m0 = now;
        active++;
      }
      if (t->state == T_M0 && t->next_m0 <= now) {
        ue_send_m0(c, t);
        t->next_m0 = now + UE_M0_RETRY_MS;
      }
      if (t->state == T_IDLE || t->state == T_M0 || t->state == T_WAIT) {
        open++;
        if (t->state == T_M0 && t->next_m0 < next) {
          next = t->next_m0;
        }
        if (t->state != T_IDLE && t->deadline < next) {
          next = t->deadline;
        }
      }
    }
    if (open == 0 || agent_stop) {
      break;
    }
    e = mtcsec_ue_get_expiry(c->ue);
    if (e <= now) {
      mtcsec_ue_handle_expiry(c->ue, now);
    } else if (e < next) {
      next = e;
    }
    ue_pump(c, now);
    if (agent_tls_flush(&c->tls) != 0 || c->tls.closed) {
      for (i = 0; i < c->nt; i++) {
        if (c->t[i].state == T_WAIT || c->t[i].state == T_M0 ||
            c->t[i].state == T_IDLE) {
          ue_fail(&c->t[i], "mtcsd closed the connection");
        }
      }
      continue;
    }

    pfd[0].fd = c->udp;
    pfd[0].events = POLLIN;
    pfd[1].fd = c->tls.fd;
    pfd[1].events = agent_tls_events(&c->tls);
    pfd[0].revents = pfd[1].revents = 0;
    rv = poll(pfd, 2, next <= now ? 0 : (int)(next - now));
    if (rv < 0 && errno != EINTR) {
      break;
    }
    now = app_now_ms();
    if (pfd[0].revents & (POLLIN | POLLERR)) {
      for (;;) {
        agent_addr from;
        long n = agent_udp_recv(c->udp, buf, sizeof(buf), &from);
        if (n <= 0) {
          break;
        }
        ue_handle_datagram(c, buf, (size_t)n, &from, now);
      }
    }
    if (pfd[1].revents & (POLLIN | POLLERR | POLLHUP)) {
      int closed = agent_tls_read(&c->tls) != 0;
      for (;;) {
        mtcsec_frame fr;
        mtcsec_ssize n = mtcsec_frame_parse(&fr, c->tls.in, c->tls.inlen);
        if (n == 0) {
          break;
        }
        if (n < 0) {
          closed = 1;
          break;
        }
        ue_handle_frame(c, c->tls.in, (size_t)n, &fr, now);
        agent_tls_consume(&c->tls, (size_t)n);
      }
      if (closed) {
        c->tls.closed = 1;
      }
    }
    ue_pump(c, now);
  }
}

/* Prints why a target failed; returns the exit code. */
static int ue_report_failure(const ue_ctx *c, const ue_target *t) {
  if (t->errcode != 0) {
    char h[200];
    ue_errcode_hint(h, sizeof(h), t->errcode, c->uehex, t->idhex);
    fprintf(stderr, "mtcsec %s: server refused: %s%s%s%s%s%s\n", c->o->cmd,
            mtcsec_errcode_name(t->errcode), t->detail[0] ? " (" : "",
            t->detail, t->detail[0] ? ")" : "", h[0] ? " \xe2\x80\x94 " : "",
            h);
    return CLI_FAILED;
  }
  fprintf(stderr, "mtcsec %s: device %s at %s: %s\n", c->o->cmd, t->idhex,
          t->addrstr, t->fail != NULL ? t->fail : "failed");
  return CLI_FAILED;
}

/* ---------------------------------------------------- direct channel */

/* Sends one request under t's key and waits for its answer.  Returns 0
 * with *status/value, 1 when the device never answered, or an exit code
 * (> 1) after printing why. */
static int ue_request(ue_ctx *c, ue_target *t, agent_req *req, uint8_t *status,
                      char value[AGENT_VALUE_MAX + 1], int tries) {
  uint8_t pt[AGENT_PT_MAX + 16], rec[AGENT_PT_MAX + 64], buf[2048];
  char err[256], note[128];
  mtcsec_chan ch;
  int rv, attempt;
  mtcsec_tstamp now = app_now_ms();

  rv = agent_key_chan(&t->key, &c->crypto, &ch, now, c->o->ignore_expiry);
  if (rv != 0) {
    fprintf(stderr, "mtcsec %s: key %u with %s: %s\n", c->o->cmd,
            (unsigned)t->key.key_id, t->idhex, mtcsec_strerror(rv));
    return CLI_FAILED;
  }
  for (attempt = 0; attempt < tries && !agent_stop; attempt++) {
    mtcsec_tstamp until;
    mtcsec_ssize n;
    long plen;
    req->tag = (uint8_t)(req->tag + 1);
    plen = agent_req_encode(pt, sizeof(pt), req);
    if (plen < 0) {
      mtcsec_chan_deinit(&ch);
      fprintf(stderr, "mtcsec %s: name or value too long (%d / %d bytes)\n",
              c->o->cmd, AGENT_NAME_MAX, AGENT_VALUE_MAX);
      return CLI_USAGE;
    }
    /* The sequence number is durable before the record leaves, so that no
     * later command reuses it (CCM nonce). */
    agent_key_sync(&t->key, &ch);
    t->key.tx_seq = ch.tx_seq + 1;
    if (agent_key_save(c->ueid, &t->key, err, sizeof(err)) != 0) {
      mtcsec_chan_deinit(&ch);
      fprintf(stderr, "mtcsec %s: %s\n", c->o->cmd, err);
      return CLI_INTERNAL;
    }
    now = app_now_ms();
    n = mtcsec_chan_seal(&ch, rec, sizeof(rec), pt, (size_t)plen, now);
    if (n < 0) {
      mtcsec_chan_deinit(&ch);
      if (n == MTCSEC_ERR_EXPIRED || n == MTCSEC_ERR_EXHAUSTED) {
        agent_key_remove(c->ueid, t->id);
      }
      fprintf(stderr, "mtcsec %s: key %u with %s: %s\n", c->o->cmd,
              (unsigned)t->key.key_id, t->idhex, mtcsec_strerror((int)n));
      return CLI_FAILED;
    }
    if (agent_udp_send(c->udp, &t->addr, rec, (size_t)n) != 0) {
      app_log(MTCSEC_LOG_WARN, "event=send_failed to=%s err=\"%s\"", t->addrstr,
              strerror(errno));
    }
    snprintf(note, sizeof(note), "key %u, %s %s%s%s", (unsigned)ch.key_id,
             agent_op_name(req->op), req->name, req->value[0] ? "=" : "",
             req->value);
    agent_trace("UE", ue_link_name(c), rec, (size_t)n, 0, note);
    until = app_now_ms() + UE_REQ_WAIT_MS;
    while (!agent_stop) {
      struct pollfd pfd;
      uint8_t tag;
      now = app_now_ms();
      if (now >= until) {
        break;
      }
      pfd.fd = c->udp;
      pfd.events = POLLIN;
      pfd.revents = 0;
      if (poll(&pfd, 1, (int)(until - now)) <= 0) {
        continue;
      }
      for (;;) {
        agent_addr from;
        long got = agent_udp_recv(c->udp, buf, sizeof(buf), &from);
        mtcsec_ssize m;
        if (got <= 0) {
          break;
        }
        if (buf[0] != MTCSEC_MSG_RECORD) {
          continue; /* e.g. a late duplicate M1 */
        }
        m =
          mtcsec_chan_open(&ch, pt, sizeof(pt), buf, (size_t)got, app_now_ms());
        if (m < 0) {
          app_log(MTCSEC_LOG_WARN, "event=record_dropped mtcd=%s err=%s",
                  t->idhex, mtcsec_errname((int)m));
          continue;
        }
        if (agent_resp_decode(pt, (size_t)m, status, &tag, value) != 0 ||
            tag != req->tag) {
          continue; /* an answer to an earlier try */
        }
        snprintf(note, sizeof(note), "%s %s", agent_status_name(*status),
                 value);
        agent_trace(ue_link_name(c), "UE", buf, (size_t)got, 0, note);
        agent_key_sync(&t->key, &ch);
        if (agent_key_save(c->ueid, &t->key, err, sizeof(err)) != 0) {
          app_log(MTCSEC_LOG_WARN, "event=key_not_saved err=\"%s\"", err);
        }
        mtcsec_zeroize(pt, sizeof(pt));
        mtcsec_chan_deinit(&ch);
        return 0;
      }
    }
  }
  mtcsec_zeroize(pt, sizeof(pt));
  mtcsec_chan_deinit(&ch);
  return 1;
}

/* ------------------------------------------------------- option parsing */

static int ue_parse(ue_opts *o, int argc, char **argv) {
  static const struct option opts[] = {
    {"device-addr", required_argument, NULL, 'a'},
    {"via", required_argument, NULL, 'v'},
    {"server", required_argument, NULL, 's'},
    {"ueid", required_argument, NULL, 'u'},
    {"perms", required_argument, NULL, 'p'},
    {"bind", required_argument, NULL, 'b'},
    {"timeout", required_argument, NULL, 'T'},
    {"trace", no_argument, NULL, 't'},
    {"log-level", required_argument, NULL, 'L'},
    {"actuate", no_argument, NULL, 'A'},
    {"configure", no_argument, NULL, 'C'},
    {"new", no_argument, NULL, 'n'},
    {"cached-only", no_argument, NULL, 'c'},
    {"carry-revocation", required_argument, NULL, 'R'},
    {"ignore-expiry", no_argument, NULL, 'I'},
    {"addr-file", required_argument, NULL, 'f'},
    {"concurrency", required_argument, NULL, 'N'},
    {"no-save", no_argument, NULL, 'S'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  int ch;
  unsigned long v;

  o->req_perms = MTCSEC_PERM_READ | MTCSEC_PERM_WRITE | MTCSEC_PERM_ACTUATE |
                 MTCSEC_PERM_CONFIGURE;
  o->op = o->mode == UE_MODE_PUT ? AGENT_OP_WRITE : AGENT_OP_READ;
  o->save = 1;
  o->level = MTCSEC_LOG_WARN;
  o->timeout_ms = 8000;
  o->concurrency = 32;
  o->bind = NULL;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'a':
      o->device_addr = optarg;
      break;
    case 'v':
      o->via = optarg;
      break;
    case 's':
      o->server = optarg;
      break;
    case 'u':
      o->ueid = optarg;
      break;
    case 'b':
      o->bind = optarg;
      break;
    case 'p':
      if (app_parse_perms(optarg, &o->req_perms) != 0 || o->req_perms == 0) {
        fprintf(stderr,
                "mtcsec %s: --perms takes read,write,actuate,configure\n",
                o->cmd);
        return CLI_USAGE;
      }
      break;
    case 'T':
    case 'N':
      if (agent_parse_uint(optarg, ch == 'T' ? 600000 : 4096, &v) != 0 ||
          v == 0) {
        fprintf(stderr, "mtcsec %s: bad number '%s'\n", o->cmd, optarg);
        return CLI_USAGE;
      }
      if (ch == 'T') {
        o->timeout_ms = v;
      } else {
        o->concurrency = v;
      }
      break;
    case 't':
      o->trace = 1;
      break;
    case 'L':
      if (app_parse_log_level(optarg, &o->level) != 0) {
        fprintf(stderr, "mtcsec %s: bad --log-level '%s'\n", o->cmd, optarg);
        return CLI_USAGE;
      }
      break;
    case 'A':
    case 'C':
      if (o->mode != UE_MODE_PUT) {
        fprintf(stderr, "mtcsec %s: --%s is for `ue put`\n", o->cmd,
                ch == 'A' ? "actuate" : "configure");
        return CLI_USAGE;
      }
      o->op = ch == 'A' ? AGENT_OP_ACTUATE : AGENT_OP_CONFIGURE;
      break;
    case 'n':
      o->fresh = 1;
      break;
    case 'c':
      o->cached_only = 1;
      break;
    case 'R':
      o->revocation = optarg;
      break;
    case 'I':
      o->ignore_expiry = 1;
      break;
    case 'f':
      o->addr_file = optarg;
      break;
    case 'S':
      o->save = 0;
      break;
    case 'h':
      ue_help(o->mode);
      return -1;
    default:
      fprintf(stderr, "mtcsec %s: unknown or incomplete option '%s'\n%s",
              o->cmd, argv[optind - 1], ue_usage_text);
      return CLI_USAGE;
    }
  }
  if (o->via != NULL && o->device_addr != NULL) {
    fprintf(stderr, "mtcsec %s: --via and --device-addr exclude each other\n",
            o->cmd);
    return CLI_USAGE;
  }
  if (o->fresh && o->cached_only) {
    fprintf(stderr, "mtcsec %s: --new and --cached-only exclude each other\n",
            o->cmd);
    return CLI_USAGE;
  }
  return CLI_OK;
}

static int ue_ctx_open(ue_ctx *c, const ue_opts *o, size_t nt) {
  char err[256];
  const char *bind = o->bind;
  memset(c, 0, sizeof(*c));
  c->o = o;
  c->udp = -1;
  c->tls.fd = -1;
  agent_start("mtcsec-ue", o->level, o->trace, 0);
  c->t = calloc(nt, sizeof(*c->t));
  if (c->t == NULL) {
    return CLI_INTERNAL;
  }
  c->nt = nt;
  if (mtcsec_crypto_openssl_new(&c->crypto) != 0) {
    fprintf(stderr, "mtcsec %s: cannot set up OpenSSL\n", o->cmd);
    return CLI_INTERNAL;
  }
  c->have_crypto = 1;
  if (bind == NULL) {
    bind = "0.0.0.0:0";
  }
  c->udp = app_udp_bind(bind, err, sizeof(err));
  if (c->udp < 0) {
    fprintf(stderr, "mtcsec %s: UDP %s: %s\n", o->cmd, bind, err);
    return CLI_CONFIG;
  }
  return CLI_OK;
}

static int ue_role_open(ue_ctx *c) {
  static const mtcsec_ue_callbacks cb = {ue_on_event};
  mtcsec_ue_config cfg;
  char err[256];
  int rv;
  if (c->o->server != NULL) {
    snprintf(c->server, sizeof(c->server), "%s", c->o->server);
  } else if (agent_server_addr(c->server, sizeof(c->server), err,
                               sizeof(err)) != 0) {
    fprintf(stderr, "mtcsec %s: %s (or pass --server ADDR)\n", c->o->cmd, err);
    return CLI_CONFIG;
  }
  mtcsec_ue_config_default(&cfg);
  memcpy(cfg.ueid, c->ueid, MTCSEC_ID_LEN);
  cfg.max_exchanges = c->o->concurrency < 4 ? 4 : c->o->concurrency;
  cfg.max_sessions = c->nt + 4;
  cfg.exchange_timeout = c->o->timeout_ms;
  cfg.log = app_log_hook;
  rv = mtcsec_ue_new(&c->ue, &cfg, &c->crypto, &cb, c);
  if (rv != 0) {
    fprintf(stderr, "mtcsec %s: %s\n", c->o->cmd, mtcsec_strerror(rv));
    return CLI_INTERNAL;
  }
  return CLI_OK;
}

static void ue_ctx_close(ue_ctx *c) {
  size_t i;
  if (c->tls_up || c->tls.ssl != NULL || c->tls.ctx != NULL) {
    agent_tls_close(&c->tls);
  }
  mtcsec_ue_del(c->ue);
  if (c->udp >= 0) {
    close(c->udp);
  }
  for (i = 0; i < c->nt; i++) {
    mtcsec_zeroize(&c->t[i].key, sizeof(c->t[i].key));
  }
  free(c->t);
  if (c->have_crypto) {
    mtcsec_crypto_openssl_del(&c->crypto);
  }
  mtcsec_zeroize(&c->stash, sizeof(c->stash));
}

/* ----------------------------------------------------------- get / put */

/* Delivers a revocation (section 7) from `mtcsec revoke` to the device. */
static int ue_carry_revocation(ue_ctx *c, ue_target *t) {
  uint8_t msg[MTCSEC_REVOKE_FIXED_LEN + MTCSEC_MAX_MIC_LEN];
  size_t hexlen = strlen(c->o->revocation), len = hexlen / 2;
  uint16_t key_id;
  char note[64];
  if (hexlen % 2 != 0 || len < MTCSEC_REVOKE_FIXED_LEN + 8 ||
      len > sizeof(msg) || app_parse_hex(c->o->revocation, msg, len) != 0 ||
      msg[0] != MTCSEC_MSG_REVOKE) {
    fprintf(stderr,
            "mtcsec %s: --carry-revocation takes the hex printed by `mtcsec "
            "revoke`\n",
            c->o->cmd);
    return CLI_USAGE;
  }
  if (memcmp(msg + 9, t->id, MTCSEC_ID_LEN) != 0) {
    fprintf(stderr, "mtcsec %s: that revocation is not for device %s\n",
            c->o->cmd, t->idhex);
    return CLI_USAGE;
  }
  key_id = (uint16_t)((msg[17] << 8) | msg[18]);
  if (agent_udp_send(c->udp, &t->addr, msg, len) != 0) {
    fprintf(stderr, "mtcsec %s: send to %s: %s\n", c->o->cmd, t->addrstr,
            strerror(errno));
    return CLI_FAILED;
  }
  snprintf(note, sizeof(note), "key %u", (unsigned)key_id);
  agent_trace("UE", ue_link_name(c), msg, len, 0, note);
  printf("revocation of key %u delivered to %s\n", (unsigned)key_id, t->idhex);
  /* A UE that carried the revocation of its own key forgets that key. */
  t->key.key_id = 0;
  memcpy(t->key.mtcd_id, t->id, MTCSEC_ID_LEN);
  {
    char err[256];
    int rv = agent_key_load(c->ueid, &t->key, 1, err, sizeof(err));
    if (rv == 0 && t->key.key_id == key_id) {
      agent_key_remove(c->ueid, t->id);
    }
    mtcsec_zeroize(&t->key, sizeof(t->key));
  }
  return CLI_OK;
}

static int ue_get_put(int argc, char **argv, int mode) {
  ue_opts o;
  ue_ctx c;
  ue_target *t;
  agent_req req;
  uint8_t status = 0;
  char value[AGENT_VALUE_MAX + 1], err[256], perms[48];
  int rv, lock = -1, npos, cached = 0;
  double t0;

  memset(&o, 0, sizeof(o));
  o.mode = mode;
  o.cmd = mode == UE_MODE_GET ? "ue get" : "ue put";
  rv = ue_parse(&o, argc, argv);
  if (rv != CLI_OK) {
    return rv < 0 ? CLI_OK : rv;
  }
  npos = argc - optind;
  if (npos != (mode == UE_MODE_GET ? 2 : 3) &&
      (o.revocation == NULL || npos != 1)) {
    fprintf(stderr, "mtcsec %s: %s\n%s", o.cmd,
            mode == UE_MODE_GET ? "give DEVICE and NAME"
                                : "give DEVICE, NAME and VALUE",
            ue_usage_text);
    return CLI_USAGE;
  }
  memset(&req, 0, sizeof(req));
  if (npos > 1) {
    const char *name = argv[optind + 1];
    const char *val = mode == UE_MODE_PUT ? argv[optind + 2] : "";
    if (strlen(name) == 0 || strlen(name) > AGENT_NAME_MAX ||
        strlen(val) > AGENT_VALUE_MAX) {
      fprintf(stderr, "mtcsec %s: NAME is 1..%d and VALUE at most %d bytes\n",
              o.cmd, AGENT_NAME_MAX, AGENT_VALUE_MAX);
      return CLI_USAGE;
    }
    req.op = o.op;
    memcpy(req.name, name, strlen(name) + 1);
    memcpy(req.value, val, strlen(val) + 1);
  }

  rv = ue_ctx_open(&c, &o, 1);
  if (rv != CLI_OK) {
    goto cleanup;
  }
  t = &c.t[0];
  if (app_parse_id(argv[optind], t->id) != 0) {
    fprintf(stderr, "mtcsec %s: DEVICE '%s' is not 16 hex digits\n", o.cmd,
            argv[optind]);
    rv = CLI_USAGE;
    goto cleanup;
  }
  app_format_id(t->idhex, t->id);
  rv = ue_pick_ueid(&c);
  if (rv == CLI_OK) {
    rv = ue_locate(&c, t, 0, NULL);
  }
  if (rv != CLI_OK) {
    goto cleanup;
  }
  lock = agent_key_lock(c.ueid, t->id, err, sizeof(err));
  if (lock < 0) {
    fprintf(stderr, "mtcsec %s: %s\n", o.cmd, err);
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  if (o.revocation != NULL) {
    rv = ue_carry_revocation(&c, t);
    if (rv != CLI_OK || npos == 1) {
      goto cleanup;
    }
  }

  /* A kept key first: the server is not needed while it lives. */
  memcpy(t->key.mtcd_id, t->id, MTCSEC_ID_LEN);
  if (!o.fresh) {
    rv = agent_key_load(c.ueid, &t->key, o.ignore_expiry, err, sizeof(err));
    if (rv < 0) {
      fprintf(stderr, "mtcsec %s: %s (remove it to start over)\n", o.cmd, err);
      rv = CLI_CONFIG;
      goto cleanup;
    }
    cached = rv == 0;
  }
  if (cached) {
    long left = (long)((t->key.expires_ms - agent_unix_ms()) / 1000);
    t->have_key = 1;
    t->state = T_DONE;
    printf("key %u with %s: kept (%s, %ld s left); mtcsd not contacted\n",
           (unsigned)t->key.key_id, t->idhex,
           app_format_perms(perms, t->key.perms), left);
    fflush(stdout);
    rv =
      ue_request(&c, t, &req, &status, value, o.cached_only ? UE_REQ_TRIES : 2);
    if (rv == 1 && !o.cached_only) {
      printf("no answer under key %u (device restarted or key revoked?); "
             "establishing a new key\n",
             (unsigned)t->key.key_id);
      agent_key_remove(c.ueid, t->id);
      mtcsec_zeroize(&t->key, sizeof(t->key));
      memcpy(t->key.mtcd_id, t->id, MTCSEC_ID_LEN);
      t->have_key = 0;
      t->state = T_IDLE;
      cached = 0;
    } else if (rv == 1) {
      fprintf(stderr,
              "mtcsec %s: no answer from %s at %s under key %u (revoked, "
              "expired or the device restarted)\n",
              o.cmd, t->idhex, t->addrstr, (unsigned)t->key.key_id);
      rv = CLI_FAILED;
      goto cleanup;
    } else if (rv != 0) {
      goto cleanup;
    }
  } else if (o.cached_only) {
    fprintf(stderr,
            "mtcsec %s: no live key for %s kept in ues/%s.keys/ "
            "(--cached-only)\n",
            o.cmd, t->idhex, c.uehex);
    rv = CLI_FAILED;
    goto cleanup;
  }

  if (!cached) {
    rv = ue_role_open(&c);
    if (rv == CLI_OK) {
      rv = ue_connect(&c);
    }
    if (rv != CLI_OK) {
      goto cleanup;
    }
    t0 = agent_elapsed_ms();
    ue_establish(&c);
    if (t->state != T_DONE) {
      rv = agent_stop ? CLI_FAILED : ue_report_failure(&c, t);
      goto cleanup;
    }
    printf("key %u with %s: new (%s, %ld s) %s in %.1f ms\n",
           (unsigned)t->key.key_id, t->idhex,
           app_format_perms(perms, t->key.perms),
           (long)((t->key.expires_ms - agent_unix_ms() + 500) / 1000),
           o.via != NULL ? "through the relay" : "direct", t->t1 - t0);
    fflush(stdout);
    /* The server has done its part; the rest is between UE and device. */
    agent_tls_close(&c.tls);
    c.tls_up = 0;
    rv = ue_request(&c, t, &req, &status, value, UE_REQ_TRIES);
    if (rv == 1) {
      fprintf(stderr, "mtcsec %s: no answer from %s at %s under key %u\n",
              o.cmd, t->idhex, t->addrstr, (unsigned)t->key.key_id);
      rv = CLI_FAILED;
      goto cleanup;
    }
    if (rv != 0) {
      goto cleanup;
    }
  }

  if (status == AGENT_ST_OK) {
    printf("%s = %s\n", req.name, value);
    rv = CLI_OK;
  } else {
    fprintf(stderr, "mtcsec %s: device %s answered %s%s%s\n", o.cmd, t->idhex,
            agent_status_name(status), value[0] ? ": " : "", value);
    if (status == AGENT_ST_FORBIDDEN) {
      fprintf(stderr,
              "key %u allows %s; %s needs %s (after a new grant, ask "
              "again with --new)\n",
              (unsigned)t->key.key_id, app_format_perms(perms, t->key.perms),
              agent_op_name(req.op),
              app_format_perms(value, agent_op_perm(req.op)));
    }
    rv = status == AGENT_ST_NOT_FOUND ? CLI_NOTFOUND : CLI_FAILED;
  }

cleanup:
  if (lock >= 0) {
    close(lock);
  }
  ue_ctx_close(&c);
  return rv;
}

int agent_ue_get(int argc, char **argv) {
  return ue_get_put(argc, argv, UE_MODE_GET);
}

int agent_ue_put(int argc, char **argv) {
  return ue_get_put(argc, argv, UE_MODE_PUT);
}

/* --------------------------------------------------------------- scan */

/* "DEVICE ADDR" lines; returns the address of idhex or NULL. */
static const char *scan_lookup(char *file, const char *idhex, char *out,
                               size_t outlen) {
  char *line = file;
  while (line != NULL && *line != '\0') {
    char *next = strchr(line, '\n');
    char id[32], addr[160];
    if (next != NULL) {
      *next = '\0';
    }
    if (line[0] != '#' && sscanf(line, "%31s %159s", id, addr) == 2 &&
        strcasecmp(id, idhex) == 0) {
      if (next != NULL) {
        *next = '\n';
      }
      snprintf(out, outlen, "%s", addr);
      return out;
    }
    if (next != NULL) {
      *next = '\n';
      line = next + 1;
    } else {
      line = NULL;
    }
  }
  return NULL;
}

int agent_ue_scan(int argc, char **argv) {
  ue_opts o;
  ue_ctx c;
  char *file = NULL, perms[48], addr[160], res[48];
  size_t i, nt, ok = 0, refused = 0, noanswer = 0;
  int rv;
  double t0, t1;

  memset(&o, 0, sizeof(o));
  o.mode = UE_MODE_SCAN;
  o.cmd = "ue scan";
  rv = ue_parse(&o, argc, argv);
  if (rv != CLI_OK) {
    return rv < 0 ? CLI_OK : rv;
  }
  if (o.cached_only || o.revocation != NULL) {
    fprintf(stderr, "mtcsec ue scan: --cached-only and --carry-revocation "
                    "are for get and put\n");
    return CLI_USAGE;
  }
  if (argc - optind < 1) {
    fprintf(stderr, "mtcsec ue scan: which devices?\n%s", ue_usage_text);
    return CLI_USAGE;
  }
  nt = (size_t)(argc - optind);
  if (o.addr_file != NULL) {
    size_t len = 0;
    file = app_read_file(o.addr_file, 1 << 20, &len);
    if (file == NULL) {
      fprintf(stderr, "mtcsec ue scan: %s: %s\n", o.addr_file, strerror(errno));
      return CLI_NOTFOUND;
    }
  }
  rv = ue_ctx_open(&c, &o, nt);
  if (rv == CLI_OK) {
    rv = ue_pick_ueid(&c);
  }
  for (i = 0; rv == CLI_OK && i < nt; i++) {
    ue_target *t = &c.t[i];
    const char *from = NULL;
    if (app_parse_id(argv[optind + (int)i], t->id) != 0) {
      fprintf(stderr, "mtcsec ue scan: '%s' is not a device ID\n",
              argv[optind + (int)i]);
      rv = CLI_USAGE;
      break;
    }
    app_format_id(t->idhex, t->id);
    if (ue_find(&c, t->id) != t) {
      fprintf(stderr, "mtcsec ue scan: %s given twice\n", t->idhex);
      rv = CLI_USAGE;
      break;
    }
    if (file != NULL) {
      from = scan_lookup(file, t->idhex, addr, sizeof(addr));
    }
    rv = ue_locate(&c, t, (unsigned)i, from);
  }
  free(file);
  if (rv == CLI_OK) {
    rv = ue_role_open(&c);
  }
  if (rv == CLI_OK) {
    rv = ue_connect(&c);
  }
  if (rv != CLI_OK) {
    ue_ctx_close(&c);
    return rv;
  }
  t0 = agent_elapsed_ms();
  ue_establish(&c);
  t1 = agent_elapsed_ms();

  printf("%-16s  %-22s  %6s  %-28s  %8s\n", "device", "result", "key_id",
         "perms", "ms");
  for (i = 0; i < nt; i++) {
    const ue_target *t = &c.t[i];
    if (t->state == T_DONE) {
      ok++;
      printf("%-16s  %-22s  %6u  %-28s  %8.1f\n", t->idhex, "ok",
             (unsigned)t->key.key_id, app_format_perms(perms, t->key.perms),
             t->t1 - t->t0);
      continue;
    }
    if (t->errcode != 0) {
      refused++;
      snprintf(res, sizeof(res), "refused %s", mtcsec_errcode_name(t->errcode));
    } else {
      noanswer++;
      snprintf(res, sizeof(res), "%s",
               t->fail != NULL ? t->fail : "not attempted");
    }
    printf("%-16s  %-22.22s  %6s  %-28s  %8.1f\n", t->idhex, res, "-", "-",
           t->t1 > t->t0 ? t->t1 - t->t0 : 0.0);
  }
  printf("scan: %zu devices, %zu keys, %zu refused, %zu failed; 1 TLS "
         "connection, concurrency %lu, %.1f ms\n",
         nt, ok, refused, noanswer, o.concurrency, t1 - t0);
  ue_ctx_close(&c);
  return ok == nt ? CLI_OK : CLI_FAILED;
}
