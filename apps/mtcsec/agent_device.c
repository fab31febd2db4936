/*
 * `mtcsec device run`: simulated MTC devices on UDP.
 *
 * One process runs one or more devices (one UDP port each) in a single
 * poll() loop around the sans-IO device role: M0 / M4 / revocations go to
 * mtcsec_dev_read(), records to mtcsec_dev_open(), timers to
 * mtcsec_dev_handle_expiry().  Inside records the device serves the small
 * application protocol of docs/AGENTS.md (read values, write, actuate,
 * configure), enforcing the session's PERMS with mtcsec_dev_authorize().
 */
#define _GNU_SOURCE

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cJSON.h>

#include <mtcsec/codec.h>
#include <mtcsec/device.h>

#include "agent_common.h"
#include "app.h"
#include "cli.h"

#define DEV_LISTEN_DEFAULT "127.0.0.1:7700"
#define DEV_MAX 1024

/* One simulated device: the role plus its small application. */
typedef struct dev_agent {
  char idhex[17];
  char state_path[4096];
  char addr_path[4096];
  char listen[128];
  int fd;
  int addr_written;
  mtcsec_dev dev;
  mtcsec_dev_session sessions[2]; /* live DMKeys */
  agent_peers peers;
  /* The application (docs/AGENTS.md). */
  char name[AGENT_NAME_MAX + 1];
  unsigned long interval;
  int led;
  mtcsec_tstamp started;
  uint64_t served, refused;
} dev_agent;

static const char dev_usage[] =
  "usage: mtcsec device run ID [ID ...] [--listen ADDR] [--file FILE]\n"
  "                         [--m0-interval MS] [--retx-timeout MS]\n"
  "                         [--retx-max N] [--trace] [--log-level LEVEL]\n";

static void dev_help(void) {
  printf("%s\n"
         "Runs simulated MTC devices on UDP until SIGINT or SIGTERM.\n"
         "Each device loads its provisioning file devices/ID.json, keeps "
         "its nonce\n"
         "counter in devices/ID.state (written before every M1) and "
         "announces its\n"
         "address in devices/ID.addr for `mtcsec ue`.\n\n"
         "  --listen ADDR       UDP address (default %s); with several "
         "IDs,\n"
         "                      device i listens on ADDR's port + i\n"
         "  --file FILE         provisioning file (one ID only)\n"
         "  --m0-interval MS    least time between two M1s answering M0s "
         "(1000)\n"
         "  --retx-timeout MS   wait for M4 before resending M1 (2000, "
         "doubles)\n"
         "  --retx-max N        resends of an M1 before giving up (3)\n"
         "  --trace             print each message (type, size, direction, "
         "ms)\n"
         "  --log-level LEVEL   error, warn, info (default), debug\n",
         dev_usage, DEV_LISTEN_DEFAULT);
}

/* ------------------------------------------------------------ provisioning */

/* devices/ID.json: {"MTCdID", "MTCsID", "suite", "PSKey"} (OPERATIONS.md). */
static int dev_load_provisioning(const char *path, const char *idhex,
                                 mtcsec_dev_config *cfg, uint8_t *pskey) {
  char *text;
  size_t len = 0;
  cJSON *o;
  const cJSON *id, *sid, *suite, *psk;
  const mtcsec_suite_params *sp = NULL;
  uint8_t want[MTCSEC_ID_LEN];
  int rv = CLI_CONFIG;

  text = app_read_file(path, 65536, &len);
  if (text == NULL) {
    fprintf(stderr,
            "mtcsec device run: %s: %s (provision it with: mtcsec device add "
            "%s)\n",
            path, strerror(errno), idhex);
    return errno == ENOENT ? CLI_NOTFOUND : CLI_CONFIG;
  }
  o = cJSON_Parse(text);
  mtcsec_zeroize(text, len);
  free(text);
  if (o == NULL) {
    fprintf(stderr, "mtcsec device run: %s: not valid JSON\n", path);
    return CLI_CONFIG;
  }
  id = cJSON_GetObjectItemCaseSensitive(o, "MTCdID");
  sid = cJSON_GetObjectItemCaseSensitive(o, "MTCsID");
  suite = cJSON_GetObjectItemCaseSensitive(o, "suite");
  psk = cJSON_GetObjectItemCaseSensitive(o, "PSKey");
  if (cJSON_IsNumber(suite) && suite->valuedouble >= 1 &&
      suite->valuedouble <= 255) {
    sp = mtcsec_suite_get((uint8_t)suite->valuedouble);
  }
  if (!cJSON_IsString(id) || app_parse_id(id->valuestring, cfg->mtcd_id) ||
      !cJSON_IsString(sid) || app_parse_id(sid->valuestring, cfg->mtcs_id) ||
      sp == NULL || !cJSON_IsString(psk) ||
      app_parse_hex(psk->valuestring, pskey, sp->keylen) != 0) {
    fprintf(stderr,
            "mtcsec device run: %s: needs MTCdID, MTCsID (16 hex digits), "
            "suite (1-3) and PSKey (hex of the suite's key length)\n",
            path);
    goto cleanup;
  }
  if (app_parse_id(idhex, want) != 0 ||
      memcmp(want, cfg->mtcd_id, MTCSEC_ID_LEN) != 0) {
    fprintf(stderr, "mtcsec device run: %s is the file of %s, not of %s\n",
            path, id->valuestring, idhex);
    goto cleanup;
  }
  cfg->suite = sp->id;
  rv = CLI_OK;

cleanup:
  if (cJSON_IsString(psk)) {
    mtcsec_zeroize(psk->valuestring, strlen(psk->valuestring));
  }
  cJSON_Delete(o);
  return rv;
}

/* devices/ID.state: the next MTCdNonce, one decimal line (0 if absent). */
static int dev_load_nonce(const char *path, uint64_t *next) {
  char *text, *end;
  size_t len = 0;
  unsigned long long v;
  text = app_read_file(path, 64, &len);
  if (text == NULL) {
    if (errno == ENOENT) {
      *next = 0;
      return 0;
    }
    fprintf(stderr, "mtcsec device run: %s: %s\n", path, strerror(errno));
    return -1;
  }
  errno = 0;
  v = strtoull(text, &end, 10);
  if (errno != 0 || end == text || (*end != '\0' && *end != '\n')) {
    fprintf(stderr, "mtcsec device run: %s: not a nonce counter\n", path);
    free(text);
    return -1;
  }
  free(text);
  *next = v;
  return 0;
}

/* Section 4: the counter is durable before the M1 that spends it leaves. */
static int dev_persist_nonce(void *user_data, uint64_t next_nonce) {
  dev_agent *a = user_data;
  char line[32];
  int n = snprintf(line, sizeof(line), "%" PRIu64 "\n", next_nonce);
  if (app_write_file_atomic(a->state_path, line, (size_t)n, 0600) != 0) {
    app_log(MTCSEC_LOG_ERROR, "event=persist_failed mtcd=%s path=%s err=\"%s\"",
            a->idhex, a->state_path, strerror(errno));
    return -1;
  }
  return 0;
}

static void dev_on_event(void *user_data, const mtcsec_dev_event *ev) {
  dev_agent *a = user_data;
  char ue[17], perms[48];
  app_format_id(ue, ev->ueid);
  switch (ev->type) {
  case MTCSEC_DEV_EV_ESTABLISHED:
    app_format_perms(perms, ev->perms);
    app_log(MTCSEC_LOG_INFO,
            "event=established mtcd=%s ue=%s key_id=%u perms=%s lifetime=%lu",
            a->idhex, ue, (unsigned)ev->key_id, perms,
            (unsigned long)ev->lifetime);
    if (agent_trace_enabled()) {
      printf("  %9.1f ms  MTCd %s: DMKey %u live for UE %s (%s, %lu s)\n",
             agent_elapsed_ms(), a->idhex, (unsigned)ev->key_id, ue, perms,
             (unsigned long)ev->lifetime);
    }
    break;
  case MTCSEC_DEV_EV_GAVE_UP:
    app_log(MTCSEC_LOG_WARN, "event=gave_up mtcd=%s ue=%s", a->idhex, ue);
    break;
  case MTCSEC_DEV_EV_EXPIRED:
    app_log(MTCSEC_LOG_INFO, "event=expired mtcd=%s ue=%s key_id=%u", a->idhex,
            ue, (unsigned)ev->key_id);
    break;
  case MTCSEC_DEV_EV_REVOKED:
    app_log(MTCSEC_LOG_INFO, "event=revoked mtcd=%s ue=%s key_id=%u", a->idhex,
            ue, (unsigned)ev->key_id);
    if (agent_trace_enabled()) {
      printf("  %9.1f ms  MTCd %s: DMKey %u revoked\n", agent_elapsed_ms(),
             a->idhex, (unsigned)ev->key_id);
    }
    break;
  default:
    break;
  }
  fflush(stdout);
}

/* ------------------------------------------------------------ application */

/* Simulated readings: slow deterministic drifts of the uptime. */
static int dev_read_value(const dev_agent *a, const char *name,
                          mtcsec_tstamp now, char *out, size_t outlen) {
  unsigned long up = (unsigned long)((now - a->started) / 1000);
  if (strcmp(name, "temperature") == 0) {
    unsigned long x = (up / 5) % 60; /* a 0..3 degree triangle wave */
    unsigned long tenth = 200 + (x < 30 ? x : 60 - x);
    snprintf(out, outlen, "%lu.%lu", tenth / 10, tenth % 10);
  } else if (strcmp(name, "humidity") == 0) {
    snprintf(out, outlen, "%lu", 40 + (up / 7) % 12);
  } else if (strcmp(name, "battery") == 0) {
    unsigned long used = up / 600;
    snprintf(out, outlen, "%lu", used > 95 ? 5 : 100 - used);
  } else if (strcmp(name, "uptime") == 0) {
    snprintf(out, outlen, "%lu", up);
  } else if (strcmp(name, "interval") == 0) {
    snprintf(out, outlen, "%lu", a->interval);
  } else if (strcmp(name, "led") == 0) {
    snprintf(out, outlen, "%s", a->led ? "on" : "off");
  } else if (strcmp(name, "name") == 0) {
    snprintf(out, outlen, "%s", a->name);
  } else {
    return AGENT_ST_NOT_FOUND;
  }
  return AGENT_ST_OK;
}

static int dev_known(const char *name) {
  static const char *const names[] = {
    "temperature", "humidity", "battery", "uptime", "interval", "led", "name"};
  size_t i;
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strcmp(name, names[i]) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Executes one request already cleared by PERMS; fills the answer value. */
static uint8_t dev_execute(dev_agent *a, const agent_req *r, mtcsec_tstamp now,
                           char *out, size_t outlen) {
  unsigned long v;
  if (!dev_known(r->name)) {
    return AGENT_ST_NOT_FOUND;
  }
  switch (r->op) {
  case AGENT_OP_READ:
    return (uint8_t)dev_read_value(a, r->name, now, out, outlen);
  case AGENT_OP_WRITE:
    if (strcmp(r->name, "interval") != 0) {
      snprintf(out, outlen, "not writable");
      return AGENT_ST_BAD_REQUEST;
    }
    if (agent_parse_uint(r->value, 86400, &v) != 0 || v == 0) {
      snprintf(out, outlen, "interval is 1..86400 s");
      return AGENT_ST_BAD_REQUEST;
    }
    a->interval = v;
    snprintf(out, outlen, "%lu", v);
    return AGENT_ST_OK;
  case AGENT_OP_ACTUATE:
    if (strcmp(r->name, "led") != 0) {
      snprintf(out, outlen, "no actuator");
      return AGENT_ST_BAD_REQUEST;
    }
    if (strcmp(r->value, "on") == 0) {
      a->led = 1;
    } else if (strcmp(r->value, "off") == 0) {
      a->led = 0;
    } else if (strcmp(r->value, "toggle") == 0) {
      a->led = !a->led;
    } else {
      snprintf(out, outlen, "led takes on, off or toggle");
      return AGENT_ST_BAD_REQUEST;
    }
    snprintf(out, outlen, "%s", a->led ? "on" : "off");
    return AGENT_ST_OK;
  case AGENT_OP_CONFIGURE:
    if (strcmp(r->name, "name") != 0) {
      snprintf(out, outlen, "not configurable");
      return AGENT_ST_BAD_REQUEST;
    }
    if (r->value[0] == '\0' || strlen(r->value) > AGENT_NAME_MAX) {
      snprintf(out, outlen, "name is 1..%d characters", AGENT_NAME_MAX);
      return AGENT_ST_BAD_REQUEST;
    }
    memcpy(a->name, r->value, strlen(r->value) + 1);
    snprintf(out, outlen, "%s", a->name);
    return AGENT_ST_OK;
  default:
    snprintf(out, outlen, "unknown operation");
    return AGENT_ST_BAD_REQUEST;
  }
}

static void dev_send_to(dev_agent *a, const agent_addr *to, const uint8_t *buf,
                        size_t len, const char *note) {
  char addr[80];
  if (agent_udp_send(a->fd, to, buf, len) != 0) {
    app_log(MTCSEC_LOG_WARN, "event=send_failed mtcd=%s to=%s err=\"%s\"",
            a->idhex, agent_addr_str(to, addr, sizeof(addr)), strerror(errno));
    return;
  }
  agent_trace("MTCd", "peer", buf, len, 0, note);
}

/* A record from a UE: open, authorize, execute, answer. */
static void dev_handle_record(dev_agent *a, const uint8_t *rec, size_t reclen,
                              const agent_addr *from, mtcsec_tstamp now) {
  uint8_t pt[AGENT_PT_MAX + 16], out[AGENT_PT_MAX + 64];
  mtcsec_dev_record_info info;
  agent_req req;
  char value[AGENT_VALUE_MAX + 1], note[128], ue[17];
  uint8_t status, perm;
  mtcsec_ssize n;
  long plen;
  int rv;

  n = mtcsec_dev_open(&a->dev, pt, sizeof(pt), rec, reclen, now, &info);
  if (n < 0) {
    /* No answer: without a live key the device cannot seal one. */
    a->refused++;
    app_log(MTCSEC_LOG_WARN, "event=record_refused mtcd=%s key_id=%u err=%s",
            a->idhex, reclen >= 3 ? (unsigned)((rec[1] << 8) | rec[2]) : 0u,
            mtcsec_errname((int)n));
    if (agent_trace_enabled()) {
      printf("  %9.1f ms  MTCd %s: record refused (%s)\n", agent_elapsed_ms(),
             a->idhex, mtcsec_errname((int)n));
    }
    return;
  }
  value[0] = '\0';
  if (agent_req_decode(&req, pt, (size_t)n) != 0) {
    status = AGENT_ST_BAD_REQUEST;
    req.tag = (size_t)n >= 2 ? pt[1] : 0;
    snprintf(value, sizeof(value), "malformed request");
  } else if ((perm = agent_op_perm(req.op)) == 0) {
    status = AGENT_ST_BAD_REQUEST;
    snprintf(value, sizeof(value), "unknown operation");
  } else {
    /* Section 3: PERMS are the application's to enforce, per request. */
    rv = mtcsec_dev_authorize(&a->dev, info.key_id, perm, now);
    if (rv == MTCSEC_ERR_FORBIDDEN) {
      status = AGENT_ST_FORBIDDEN;
    } else if (rv != 0) {
      a->refused++;
      app_log(MTCSEC_LOG_WARN, "event=record_refused mtcd=%s key_id=%u err=%s",
              a->idhex, (unsigned)info.key_id, mtcsec_errname(rv));
      return;
    } else {
      status = dev_execute(a, &req, now, value, sizeof(value));
    }
  }
  mtcsec_zeroize(pt, sizeof(pt));
  app_log(MTCSEC_LOG_INFO,
          "event=request mtcd=%s ue=%s key_id=%u op=%s name=%s status=%s",
          a->idhex, app_format_id(ue, info.ueid), (unsigned)info.key_id,
          agent_op_name(req.op), req.name[0] ? req.name : "-",
          agent_status_name(status));
  plen = agent_resp_encode(pt, sizeof(pt), status, req.tag, value);
  if (plen < 0) {
    return;
  }
  n = mtcsec_dev_seal(&a->dev, info.key_id, out, sizeof(out), pt, (size_t)plen,
                      now);
  mtcsec_zeroize(pt, sizeof(pt));
  if (n < 0) {
    app_log(MTCSEC_LOG_WARN, "event=seal_failed mtcd=%s key_id=%u err=%s",
            a->idhex, (unsigned)info.key_id, mtcsec_errname((int)n));
    return;
  }
  a->served++;
  snprintf(note, sizeof(note), "%s %s %s", agent_op_name(req.op), req.name,
           agent_status_name(status));
  dev_send_to(a, from, out, (size_t)n, note);
}

/* Sends whatever the role has queued (M1s and their resends). */
static void dev_drain(dev_agent *a, mtcsec_tstamp now) {
  uint8_t buf[MTCSEC_HS_MAX_LEN];
  for (;;) {
    uint64_t peer = 0;
    const agent_addr *to;
    mtcsec_ssize n = mtcsec_dev_write(&a->dev, buf, sizeof(buf), &peer, now);
    if (n <= 0) {
      return;
    }
    to = agent_peer_addr(&a->peers, peer);
    if (to != NULL) {
      dev_send_to(a, to, buf, (size_t)n, a->idhex);
    }
  }
}

static void dev_handle_datagram(dev_agent *a, const uint8_t *buf, size_t len,
                                const agent_addr *from, mtcsec_tstamp now) {
  char addr[80];
  int rv;
  agent_trace("peer", "MTCd", buf, len, 0,
              agent_addr_str(from, addr, sizeof(addr)));
  if (buf[0] == MTCSEC_MSG_RECORD) {
    dev_handle_record(a, buf, len, from, now);
    return;
  }
  rv = mtcsec_dev_read(&a->dev, buf, len, agent_peer_id(&a->peers, from), now);
  if (rv != 0) {
    int lvl = rv == MTCSEC_ERR_RATE || rv == MTCSEC_ERR_BUSY ||
                  rv == MTCSEC_ERR_UNEXPECTED
                ? MTCSEC_LOG_DEBUG
                : MTCSEC_LOG_WARN;
    app_log(lvl, "event=ignored mtcd=%s type=%s from=%s err=%s", a->idhex,
            agent_msg_name(buf[0]), addr, mtcsec_errname(rv));
    if (agent_trace_enabled()) {
      printf("  %9.1f ms  MTCd %s: %s ignored (%s)\n", agent_elapsed_ms(),
             a->idhex, agent_msg_name(buf[0]), mtcsec_errname(rv));
    }
  }
  dev_drain(a, now);
}

/* ------------------------------------------------------------ setup */

static int dev_setup(dev_agent *a, const char *idhex, const char *file,
                     const char *listen, const mtcsec_dev_config *base,
                     const mtcsec_crypto *crypto,
                     const mtcsec_dev_callbacks *cb) {
  mtcsec_dev_config cfg = *base;
  uint8_t pskey[MTCSEC_MAX_KEY_LEN], id[MTCSEC_ID_LEN];
  char path[4096], err[256], rel[64];
  agent_addr bound;
  int rv;

  if (app_parse_id(idhex, id) != 0) {
    fprintf(stderr,
            "mtcsec device run: '%s' is not a device ID (16 hex digits)\n",
            idhex);
    return CLI_USAGE;
  }
  app_format_id(a->idhex, id);
  snprintf(rel, sizeof(rel), "devices/%s.json", a->idhex);
  snprintf(path, sizeof(path), "%s", file != NULL ? file : cli_path(rel));
  rv = dev_load_provisioning(path, a->idhex, &cfg, pskey);
  if (rv != CLI_OK) {
    return rv;
  }
  /* The state lives next to the provisioning file. */
  {
    const char *slash = strrchr(path, '/');
    int dl = slash != NULL ? (int)(slash - path) + 1 : 0;
    snprintf(a->state_path, sizeof(a->state_path), "%.*s%s.state", dl, path,
             a->idhex);
    snprintf(a->addr_path, sizeof(a->addr_path), "%.*s%s.addr", dl, path,
             a->idhex);
  }
  if (dev_load_nonce(a->state_path, &cfg.next_nonce) != 0) {
    mtcsec_zeroize(pskey, sizeof(pskey));
    return CLI_CONFIG;
  }
  cfg.pskey = pskey;
  cfg.sessions = a->sessions;
  cfg.nsessions = sizeof(a->sessions) / sizeof(a->sessions[0]);
  cfg.log = app_log_hook;
  rv = mtcsec_dev_init(&a->dev, &cfg, crypto, cb, a);
  mtcsec_zeroize(pskey, sizeof(pskey));
  if (rv != 0) {
    fprintf(stderr, "mtcsec device run: device %s: %s\n", a->idhex,
            mtcsec_strerror(rv));
    return CLI_CONFIG;
  }
  a->fd = app_udp_bind(listen, err, sizeof(err));
  if (a->fd < 0) {
    fprintf(stderr, "mtcsec device run: %s: %s\n", listen, err);
    return CLI_CONFIG;
  }
  bound.len = sizeof(bound.ss);
  if (getsockname(a->fd, (struct sockaddr *)&bound.ss, &bound.len) == 0) {
    agent_addr_str(&bound, a->listen, sizeof(a->listen));
  } else {
    snprintf(a->listen, sizeof(a->listen), "%s", listen);
  }
  snprintf(a->name, sizeof(a->name), "mtcd-%s", a->idhex + 12);
  a->interval = 60;
  /* Tell local UEs where this device listens (docs/AGENTS.md). */
  {
    char line[160];
    int n = snprintf(line, sizeof(line), "%s\n", a->listen);
    if (app_write_file_atomic(a->addr_path, line, (size_t)n, 0644) == 0) {
      a->addr_written = 1;
    }
  }
  mtcsec_dev_set_status(&a->dev, 1, 100, 0, 0, 0);
  app_log(MTCSEC_LOG_INFO,
          "event=listening mtcd=%s addr=%s next_nonce=%" PRIu64, a->idhex,
          a->listen, mtcsec_dev_next_nonce(&a->dev));
  return CLI_OK;
}

static void dev_teardown(dev_agent *a) {
  if (a->addr_written) {
    (void)unlink(a->addr_path);
  }
  if (a->fd >= 0) {
    close(a->fd);
  }
  mtcsec_dev_deinit(&a->dev);
}

/* ------------------------------------------------------------ main loop */

static int dev_loop(dev_agent *devs, size_t ndev) {
  struct pollfd *pfd = calloc(ndev, sizeof(*pfd));
  uint8_t buf[2048];
  size_t i;

  if (pfd == NULL) {
    return CLI_INTERNAL;
  }
  for (i = 0; i < ndev; i++) {
    pfd[i].fd = devs[i].fd;
    pfd[i].events = POLLIN;
  }
  while (!agent_stop) {
    mtcsec_tstamp now = app_now_ms(), next = now + 1000;
    int timeout, rv;
    for (i = 0; i < ndev; i++) {
      mtcsec_tstamp e = mtcsec_dev_get_expiry(&devs[i].dev);
      if (e <= now) {
        if (mtcsec_dev_handle_expiry(&devs[i].dev, now) != 0) {
          app_log(MTCSEC_LOG_ERROR, "event=timer_failed mtcd=%s",
                  devs[i].idhex);
        }
        dev_drain(&devs[i], now);
        e = mtcsec_dev_get_expiry(&devs[i].dev);
      }
      if (e < next) {
        next = e;
      }
    }
    timeout = next <= now ? 0 : (int)(next - now);
    rv = poll(pfd, (nfds_t)ndev, timeout);
    if (rv < 0) {
      if (errno == EINTR) {
        continue;
      }
      app_log(MTCSEC_LOG_ERROR, "event=poll_failed err=\"%s\"",
              strerror(errno));
      free(pfd);
      return CLI_INTERNAL;
    }
    now = app_now_ms();
    for (i = 0; i < ndev && rv > 0; i++) {
      if ((pfd[i].revents & (POLLIN | POLLERR)) == 0) {
        continue;
      }
      for (;;) {
        agent_addr from;
        long n = agent_udp_recv(devs[i].fd, buf, sizeof(buf), &from);
        if (n <= 0) {
          break;
        }
        dev_handle_datagram(&devs[i], buf, (size_t)n, &from, now);
      }
    }
  }
  free(pfd);
  return CLI_OK;
}

int agent_device_run(int argc, char **argv) {
  static const struct option opts[] = {
    {"listen", required_argument, NULL, 'l'},
    {"file", required_argument, NULL, 'f'},
    {"m0-interval", required_argument, NULL, 'm'},
    {"retx-timeout", required_argument, NULL, 'r'},
    {"retx-max", required_argument, NULL, 'x'},
    {"trace", no_argument, NULL, 't'},
    {"log-level", required_argument, NULL, 'L'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  static const mtcsec_dev_callbacks cb = {dev_persist_nonce, dev_on_event};
  const char *listen = DEV_LISTEN_DEFAULT, *file = NULL;
  mtcsec_dev_config base;
  mtcsec_crypto crypto;
  dev_agent *devs = NULL;
  size_t ndev = 0, i;
  unsigned long v;
  int orv, ch, trace = 0, level = MTCSEC_LOG_INFO, rv = CLI_OK;

  mtcsec_dev_config_default(&base);
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'l':
      listen = optarg;
      break;
    case 'f':
      file = optarg;
      break;
    case 'm':
    case 'r':
      if (agent_parse_uint(optarg, 3600000, &v) != 0) {
        fprintf(stderr, "mtcsec device run: bad milliseconds '%s'\n%s", optarg,
                dev_usage);
        return CLI_USAGE;
      }
      if (ch == 'm') {
        base.m0_interval = v;
      } else {
        base.retx_timeout = v;
      }
      break;
    case 'x':
      if (agent_parse_uint(optarg, 255, &v) != 0) {
        fprintf(stderr, "mtcsec device run: bad --retx-max '%s'\n%s", optarg,
                dev_usage);
        return CLI_USAGE;
      }
      base.retx_max = (uint8_t)v;
      break;
    default:
      orv = agent_common_opt(ch, argv, "device run", dev_usage, dev_help,
                             &trace, &level);
      if (orv != AGENT_OPT_NEXT) {
        return orv;
      }
      break;
    }
  }
  ndev = (size_t)(argc - optind);
  if (ndev == 0 || ndev > DEV_MAX || (file != NULL && ndev != 1)) {
    fprintf(stderr, "mtcsec device run: %s\n%s",
            ndev == 0   ? "which device? give its ID"
            : file != 0 ? "--file takes exactly one ID"
                        : "too many devices for one process",
            dev_usage);
    return CLI_USAGE;
  }

  agent_start("mtcsec-device", level, trace, 0);
  if (mtcsec_crypto_openssl_new(&crypto) != 0) {
    fprintf(stderr, "mtcsec device run: cannot set up OpenSSL\n");
    mtcsec_crypto_openssl_del(&crypto);
    return CLI_INTERNAL;
  }
  devs = calloc(ndev, sizeof(*devs));
  if (devs == NULL) {
    mtcsec_crypto_openssl_del(&crypto);
    return CLI_INTERNAL;
  }
  for (i = 0; i < ndev; i++) {
    char addr[160];
    devs[i].fd = -1;
    if (agent_addr_offset(listen, (unsigned)i, addr, sizeof(addr)) != 0) {
      fprintf(stderr, "mtcsec device run: bad --listen '%s' (HOST:PORT)\n",
              listen);
      rv = CLI_USAGE;
      ndev = i;
      goto cleanup;
    }
    rv = dev_setup(&devs[i], argv[optind + (int)i], file, addr, &base, &crypto,
                   &cb);
    if (rv != CLI_OK) {
      ndev = i + 1;
      goto cleanup;
    }
    devs[i].started = app_now_ms();
  }
  if (ndev == 1) {
    printf("device %s listening on %s (udp)\n", devs[0].idhex, devs[0].listen);
  } else {
    printf("%zu devices listening on %s .. %s (udp)\n", ndev, devs[0].listen,
           devs[ndev - 1].listen);
  }
  fflush(stdout);
  rv = dev_loop(devs, ndev);
  for (i = 0; i < ndev; i++) {
    app_log(MTCSEC_LOG_INFO,
            "event=stopped mtcd=%s served=%" PRIu64 " refused=%" PRIu64,
            devs[i].idhex, devs[i].served, devs[i].refused);
  }

cleanup:
  for (i = 0; i < ndev; i++) {
    dev_teardown(&devs[i]);
  }
  free(devs);
  mtcsec_crypto_openssl_del(&crypto);
  return rv;
}
