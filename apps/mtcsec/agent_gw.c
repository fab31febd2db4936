/*
 * `mtcsec gw run`: a relay (gateway) on the device link.
 *
 * Each --map LISTEN=DEVICEADDR is one flow: a UDP port facing UEs and a
 * socket facing one device.  Every datagram goes through mtcsec_gw_relay()
 * (M0 gets this relay's ID appended to its hop list; M1, M4, records and
 * revocations are checked and forwarded).  Downstream datagrams go to the
 * last UE address seen on that port.  One poll() loop, no threads.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mtcsec/codec.h>
#include <mtcsec/gateway.h>

#include "agent_common.h"
#include "app.h"
#include "cli.h"

#define GW_MAX_MAPS 256

typedef struct gw_flow {
  char listen[128];
  char devstr[80];
  int ue_fd;  /* faces UEs, bound to LISTEN */
  int dev_fd; /* faces the device */
  agent_addr dev;
  agent_addr last_ue;
  int have_ue;
} gw_flow;

static const char gw_usage[] =
  "usage: mtcsec gw run GWID --map LISTEN=DEVICEADDR [--map ...] [--trace]\n"
  "                          [--log-level LEVEL]\n";

static void gw_help(void) {
  printf("%s\n"
         "Relays the device link: each --map opens UDP port LISTEN for UEs "
         "and\n"
         "forwards to the device at DEVICEADDR, appending GWID to every M0's "
         "hop\n"
         "list (the server checks it with `mtcsec relay allow`).  Answers "
         "go back\n"
         "to the last UE seen on that port.  Runs until SIGINT or "
         "SIGTERM.\n\n"
         "  --map LISTEN=DEVICEADDR  one flow per device (repeatable)\n"
         "  --trace                  print each datagram (type, size, "
         "direction, ms)\n"
         "  --log-level LEVEL        error, warn, info (default), debug\n",
         gw_usage);
}

static int gw_open_flow(gw_flow *f, const char *spec) {
  const char *eq = strchr(spec, '=');
  char err[256], listen[128], bound[80];
  agent_addr b;
  if (eq == NULL || eq == spec || eq[1] == '\0' ||
      (size_t)(eq - spec) >= sizeof(listen)) {
    fprintf(stderr, "mtcsec gw run: --map takes LISTEN=DEVICEADDR, not '%s'\n",
            spec);
    return CLI_USAGE;
  }
  memcpy(listen, spec, (size_t)(eq - spec));
  listen[eq - spec] = '\0';
  if (agent_addr_parse(&f->dev, eq + 1, err, sizeof(err)) != 0) {
    fprintf(stderr, "mtcsec gw run: device address '%s': %s\n", eq + 1, err);
    return CLI_USAGE;
  }
  agent_addr_str(&f->dev, f->devstr, sizeof(f->devstr));
  f->ue_fd = app_udp_bind(listen, err, sizeof(err));
  if (f->ue_fd < 0) {
    fprintf(stderr, "mtcsec gw run: %s: %s\n", listen, err);
    return CLI_CONFIG;
  }
  f->dev_fd = app_udp_bind(agent_any_for(&f->dev), err, sizeof(err));
  if (f->dev_fd < 0) {
    fprintf(stderr, "mtcsec gw run: socket toward %s: %s\n", f->devstr, err);
    return CLI_CONFIG;
  }
  b.len = sizeof(b.ss);
  if (getsockname(f->ue_fd, (struct sockaddr *)&b.ss, &b.len) == 0) {
    snprintf(f->listen, sizeof(f->listen), "%s",
             agent_addr_str(&b, bound, sizeof(bound)));
  } else {
    snprintf(f->listen, sizeof(f->listen), "%s", listen);
  }
  return CLI_OK;
}

/* Relays one datagram of flow f in direction dir. */
static void gw_forward(mtcsec_gw *gw, gw_flow *f, mtcsec_gw_dir dir,
                       const uint8_t *in, size_t inlen,
                       const agent_addr *from) {
  uint8_t out[2048];
  char addr[80], note[256];
  const agent_addr *to;
  int fd;
  mtcsec_ssize n;

  agent_addr_str(from, addr, sizeof(addr));
  if (dir == MTCSEC_GW_TO_DEVICE) {
    f->last_ue = *from;
    f->have_ue = 1;
    to = &f->dev;
    fd = f->dev_fd;
    snprintf(note, sizeof(note), "%s from %s", f->listen, addr);
    agent_trace("UE", "GW", in, inlen, 0, note);
  } else {
    if (!agent_addr_equal(from, &f->dev)) {
      app_log(MTCSEC_LOG_DEBUG, "event=stray from=%s flow=%s", addr, f->listen);
      return;
    }
    snprintf(note, sizeof(note), "%s from %s", f->listen, addr);
    agent_trace("MTCd", "GW", in, inlen, 0, note);
    if (!f->have_ue) {
      app_log(MTCSEC_LOG_DEBUG, "event=no_ue flow=%s", f->listen);
      return;
    }
    to = &f->last_ue;
    fd = f->ue_fd;
  }
  n = mtcsec_gw_relay(gw, dir, out, sizeof(out), in, inlen);
  if (n < 0) {
    app_log(MTCSEC_LOG_WARN, "event=dropped flow=%s dir=%s type=%s err=%s",
            f->listen, dir == MTCSEC_GW_TO_DEVICE ? "to_device" : "to_ue",
            agent_msg_name(in[0]), mtcsec_errname((int)n));
    return;
  }
  if (agent_udp_send(fd, to, out, (size_t)n) != 0) {
    app_log(MTCSEC_LOG_WARN, "event=send_failed to=%s err=\"%s\"",
            agent_addr_str(to, addr, sizeof(addr)), strerror(errno));
    return;
  }
  app_log(MTCSEC_LOG_DEBUG, "event=forwarded flow=%s dir=%s type=%s len=%ld",
          f->listen, dir == MTCSEC_GW_TO_DEVICE ? "to_device" : "to_ue",
          agent_msg_name(out[0]), (long)n);
  if (dir == MTCSEC_GW_TO_DEVICE) {
    agent_trace("GW", "MTCd", out, (size_t)n, 0,
                out[0] == MTCSEC_MSG_M0 ? "hop appended" : f->devstr);
  } else {
    agent_trace("GW", "UE", out, (size_t)n, 0,
                agent_addr_str(to, addr, sizeof(addr)));
  }
}

int agent_gw_run(int argc, char **argv) {
  static const struct option opts[] = {
    {"map", required_argument, NULL, 'm'},
    {"trace", no_argument, NULL, 't'},
    {"log-level", required_argument, NULL, 'L'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  const char *maps[GW_MAX_MAPS];
  gw_flow *flows = NULL;
  struct pollfd *pfd = NULL;
  size_t nmaps = 0, nflows = 0, i;
  uint8_t gwid[MTCSEC_ID_LEN], buf[2048];
  char gwhex[17];
  mtcsec_gw gw;
  int ch, trace = 0, level = MTCSEC_LOG_INFO, rv = CLI_OK;

  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'm':
      if (nmaps == GW_MAX_MAPS) {
        fprintf(stderr, "mtcsec gw run: at most %d maps\n", GW_MAX_MAPS);
        return CLI_USAGE;
      }
      maps[nmaps++] = optarg;
      break;
    case 't':
      trace = 1;
      break;
    case 'L':
      if (app_parse_log_level(optarg, &level) != 0) {
        fprintf(stderr, "mtcsec gw run: bad --log-level '%s'\n", optarg);
        return CLI_USAGE;
      }
      break;
    case 'h':
      gw_help();
      return CLI_OK;
    default:
      fprintf(stderr, "mtcsec gw run: unknown or incomplete option '%s'\n%s",
              argv[optind - 1], gw_usage);
      return CLI_USAGE;
    }
  }
  if (argc - optind != 1 || nmaps == 0) {
    fprintf(stderr, "mtcsec gw run: %s\n%s",
            argc - optind != 1 ? "give the relay's GWID" : "give --map",
            gw_usage);
    return CLI_USAGE;
  }
  if (app_parse_id(argv[optind], gwid) != 0 || mtcsec_gw_init(&gw, gwid) != 0) {
    fprintf(stderr, "mtcsec gw run: GWID '%s' is not 16 hex digits\n",
            argv[optind]);
    return CLI_USAGE;
  }
  app_format_id(gwhex, gwid);
  agent_start("mtcsec-gw", level, trace, 0);

  flows = calloc(nmaps, sizeof(*flows));
  pfd = calloc(2 * nmaps, sizeof(*pfd));
  if (flows == NULL || pfd == NULL) {
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  for (i = 0; i < nmaps; i++) {
    flows[i].ue_fd = flows[i].dev_fd = -1;
    nflows = i + 1;
    rv = gw_open_flow(&flows[i], maps[i]);
    if (rv != CLI_OK) {
      goto cleanup;
    }
    pfd[2 * i].fd = flows[i].ue_fd;
    pfd[2 * i].events = POLLIN;
    pfd[2 * i + 1].fd = flows[i].dev_fd;
    pfd[2 * i + 1].events = POLLIN;
    app_log(MTCSEC_LOG_INFO, "event=flow gw=%s listen=%s device=%s", gwhex,
            flows[i].listen, flows[i].devstr);
    printf("relay %s: %s -> %s (udp)\n", gwhex, flows[i].listen,
           flows[i].devstr);
  }
  fflush(stdout);

  while (!agent_stop) {
    int prv = poll(pfd, (nfds_t)(2 * nflows), 1000);
    if (prv < 0) {
      if (errno == EINTR) {
        continue;
      }
      rv = CLI_INTERNAL;
      break;
    }
    for (i = 0; i < 2 * nflows && prv > 0; i++) {
      gw_flow *f = &flows[i / 2];
      mtcsec_gw_dir dir = i % 2 == 0 ? MTCSEC_GW_TO_DEVICE : MTCSEC_GW_TO_UE;
      if ((pfd[i].revents & (POLLIN | POLLERR)) == 0) {
        continue;
      }
      for (;;) {
        agent_addr from;
        long n = agent_udp_recv(pfd[i].fd, buf, sizeof(buf), &from);
        if (n <= 0) {
          break;
        }
        gw_forward(&gw, f, dir, buf, (size_t)n, &from);
      }
    }
  }
  app_log(MTCSEC_LOG_INFO,
          "event=stopped gw=%s m0=%" PRIu64 " m1=%" PRIu64 " m4=%" PRIu64
          " records=%" PRIu64 " revocations=%" PRIu64 " dropped=%" PRIu64,
          gwhex, gw.forwarded[0], gw.forwarded[1], gw.forwarded[4],
          gw.forwarded[6], gw.forwarded[7], gw.dropped);

cleanup:
  for (i = 0; i < nflows; i++) {
    if (flows[i].ue_fd >= 0) {
      close(flows[i].ue_fd);
    }
    if (flows[i].dev_fd >= 0) {
      close(flows[i].dev_fd);
    }
  }
  free(flows);
  free(pfd);
  return rv;
}
