/*
 * mtchpd: start-up, the poll loop (GSUP listener, SGSN connections, the
 * upstream HLR link, the K_UP listener), the metrics thread, and signals
 * through a signalfd: SIGTERM/SIGINT stop (K_UP requests in flight get up
 * to 5 s); SIGHUP reloads mtchpd.conf and the K_UP certificates without
 * touching GSUP peers or the vector table (do_reload below).
 *
 * GSUP peers (gsup_timers below): a peer must finish the IPA identity
 * exchange (its ID_RESP) within gsup_handshake_timeout of the accept; an
 * identified peer that sends nothing for gsup_keepalive gets an IPA PING,
 * and one that stays silent through two PINGs is dropped.  GSUP has no
 * peer authentication (neither has osmo-hlr's): gsup_allowed_peers limits
 * the source addresses, and the listener belongs on a trusted network.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <osmocom/core/logging.h>
#include <osmocom/gsm/protocol/ipaccess.h>

#include "mtchpd.h"

enum {
  HP_EXIT_OK = 0,
  HP_EXIT_FAILED = 1,
  HP_EXIT_USAGE = 2,
  HP_EXIT_CONFIG = 4,
  HP_EXIT_INTERNAL = 5
};

#define HP_UPSTREAM_RETRY_MS 2000

static void usage(FILE *f) {
  fprintf(f, "usage: mtchpd [-c FILE] [--log-level LEVEL] [--check-config]\n"
             "\n"
             "The cellular mode's home proxy: GSUP (IPA/TCP) toward SGSNs, "
             "vectors from the\nbuilt-in AuC or an upstream osmo-hlr, K_UP "
             "for authorized MTC servers over HTTPS.\n"
             "\n"
             "  -c, --config FILE   configuration (default: $MTCSEC_DIR/"
             "mtchpd.conf,\n"
             "                      else ./mtcsec/mtchpd.conf)\n"
             "      --log-level L   error, warn, info, debug (overrides "
             "log_level)\n"
             "      --check-config  validate the configuration, the KEK, the "
             "certificates\n"
             "                      and the database, then exit\n"
             "  -V, --version       print the version and exit\n"
             "  -h, --help          this help\n"
             "\n"
             "SIGHUP reloads the configuration and the K_UP certificates "
             "(see mtchpd(8)).\n"
             "\n"
             "Exit status: 0 stopped cleanly, 1 could not run, 2 usage, 4 "
             "configuration\nor permission problem, 5 internal error.\n");
}

static void sock_name(int fd, char *out, size_t outlen) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  char host[64], port[16];
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
      getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port,
                  sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    snprintf(out, outlen, "?");
    return;
  }
  snprintf(out, outlen, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
           port);
}

hp_conn *hp_find_conn(hp_daemon *d, uint64_t id) {
  unsigned i;
  for (i = 0; i < d->cfg.max_connections; i++) {
    if (d->conns[i] != NULL && d->conns[i]->id == id) {
      return d->conns[i];
    }
  }
  return NULL;
}

/* ----------------------------------------------------------- callbacks */

static int on_sgsn_msg(void *ud, hp_conn *c, uint8_t proto, int ext,
                       const uint8_t *data, size_t len) {
  hp_daemon *d = ud;
  if (proto == IPAC_PROTO_IPACCESS) {
    return hp_ipa_ccm(c, data, len, d->cfg.unit_name);
  }
  if (proto == IPAC_PROTO_OSMO && ext == IPAC_PROTO_EXT_GSUP) {
    return hp_gsup_from_sgsn(d, c, data, len);
  }
  app_log(MTCSEC_LOG_DEBUG, "event=ipa_ignored conn=%llu proto=0x%02x",
          (unsigned long long)c->id, proto);
  return 0;
}

static int on_upstream_msg(void *ud, hp_conn *c, uint8_t proto, int ext,
                           const uint8_t *data, size_t len) {
  hp_daemon *d = ud;
  if (proto == IPAC_PROTO_IPACCESS) {
    return hp_ipa_ccm(c, data, len, d->cfg.unit_name);
  }
  if (proto == IPAC_PROTO_OSMO && ext == IPAC_PROTO_EXT_GSUP) {
    return hp_gsup_from_upstream(d, data, len);
  }
  return 0;
}

/* ------------------------------------------------------------ upstream */

static void upstream_close(hp_daemon *d, const char *why) {
  if (d->up == NULL) {
    return;
  }
  app_log(MTCSEC_LOG_WARN, "event=upstream_down peer=%s reason=%s", d->up->peer,
          why);
  hp_conn_free(d->up);
  d->up = NULL;
  d->up_retry = app_now_ms() + HP_UPSTREAM_RETRY_MS;
  hp_gsup_expire(d, app_now_ms(), 1);
}

static void upstream_connect(hp_daemon *d) {
  char err[256];
  int fd;
  if (d->up != NULL || d->cfg.upstream_hlr[0] == '\0' ||
      app_now_ms() < d->up_retry) {
    return;
  }
  fd = app_tcp_connect(d->cfg.upstream_hlr, err, sizeof(err));
  if (fd < 0) {
    app_log(MTCSEC_LOG_WARN, "event=upstream_connect_failed peer=%s err=\"%s\"",
            d->cfg.upstream_hlr, err);
    d->up_retry = app_now_ms() + HP_UPSTREAM_RETRY_MS;
    return;
  }
  d->up = hp_conn_new(fd, HP_CONN_UPSTREAM, 0);
  if (d->up == NULL) {
    (void)close(fd);
    d->up_retry = app_now_ms() + HP_UPSTREAM_RETRY_MS;
    return;
  }
  d->up->connecting = 1;
  snprintf(d->up->peer, sizeof(d->up->peer), "%s", d->cfg.upstream_hlr);
}

/* ---------------------------------------------------------------- GSUP */

/* Closes SGSN connection c (a slot of d->conns) and forgets what waits on
 * it. */
static void sgsn_close(hp_daemon *d, hp_conn *c, const char *reason) {
  unsigned j;
  app_log(MTCSEC_LOG_INFO, "event=gsup_closed conn=%llu peer=%s reason=%s",
          (unsigned long long)c->id, c->peer, reason);
  for (j = 0; j < d->cfg.max_connections; j++) {
    if (d->conns[j] == c) {
      d->conns[j] = NULL;
    }
  }
  hp_gsup_conn_closed(d, c->id);
  atomic_fetch_sub(&d->metrics.peers, 1);
  hp_conn_free(c);
}

/*
 * The GSUP peers' timers, once per pass of the loop (at least every
 * 0.5 s), before the poll set is built: a peer without an identity after
 * gsup_handshake_timeout is closed; an identified one silent for
 * gsup_keepalive gets a PING, and after two unanswered PINGs it is closed
 * (IPA CCM PING/PONG, as libosmo-abis keeps IPA links alive).
 */
static void gsup_timers(hp_daemon *d, mtcsec_tstamp now) {
  mtcsec_tstamp hs = (mtcsec_tstamp)d->cfg.gsup_handshake_timeout * 1000u;
  mtcsec_tstamp ka = (mtcsec_tstamp)d->cfg.gsup_keepalive * 1000u;
  unsigned i;
  for (i = 0; i < d->cfg.max_connections; i++) {
    hp_conn *c = d->conns[i];
    if (c == NULL) {
      continue;
    }
    if (!c->identified) {
      if (now - c->since >= hs) {
        app_log(MTCSEC_LOG_WARN,
                "event=gsup_handshake_timeout conn=%llu peer=%s (no IPA "
                "identity within %us)",
                (unsigned long long)c->id, c->peer,
                (unsigned)d->cfg.gsup_handshake_timeout);
        sgsn_close(d, c, "handshake_timeout");
      }
      continue;
    }
    if (ka == 0 || now - c->last_rx < ka * (c->pings + 1u)) {
      continue;
    }
    if (c->pings >= 2) {
      app_log(MTCSEC_LOG_WARN,
              "event=gsup_keepalive_timeout conn=%llu peer=%s (two PINGs "
              "unanswered)",
              (unsigned long long)c->id, c->peer);
      sgsn_close(d, c, "keepalive_timeout");
      continue;
    }
    c->pings++;
    app_log(MTCSEC_LOG_DEBUG, "event=gsup_ping conn=%llu pings=%u",
            (unsigned long long)c->id, c->pings);
    if (hp_ipa_send_ping(c) != 0) {
      sgsn_close(d, c, "write");
    }
  }
}

static void gsup_accept(hp_daemon *d) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  int fd = accept(d->gsup_fd, (struct sockaddr *)&ss, &sl);
  uint8_t addr[16];
  char host[64];
  unsigned i;
  hp_conn *c;
  if (fd < 0) {
    return;
  }
  {
    int fl = fcntl(fd, F_GETFL);
    (void)fcntl(fd, F_SETFL, fl < 0 ? O_NONBLOCK : fl | O_NONBLOCK);
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (hp_sockaddr_addr((struct sockaddr *)&ss, addr, host, sizeof(host)) != 0 ||
      !hp_config_gsup_allowed(&d->cfg, addr)) {
    app_log(MTCSEC_LOG_WARN,
            "event=gsup_refused peer=%s reason=not_allowed (not in "
            "gsup_allowed_peers)",
            host);
    (void)close(fd);
    return;
  }
  for (i = 0; i < d->cfg.max_connections; i++) {
    if (d->conns[i] == NULL) {
      break;
    }
  }
  if (i == d->cfg.max_connections ||
      (c = hp_conn_new(fd, HP_CONN_SGSN, ++d->next_conn_id)) == NULL) {
    app_log(MTCSEC_LOG_WARN,
            "event=gsup_refused peer=%s reason=max_connections", host);
    (void)close(fd);
    return;
  }
  d->conns[i] = c;
  atomic_fetch_add(&d->metrics.peers, 1);
  memcpy(c->addr, addr, sizeof(addr));
  c->since = c->last_rx = app_now_ms();
  {
    char h[64], port[16];
    if (getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), port,
                    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      snprintf(c->peer, sizeof(c->peer), "%s:%s", h, port);
    }
  }
  app_log(MTCSEC_LOG_INFO, "event=gsup_connected conn=%llu peer=%s",
          (unsigned long long)c->id, c->peer);
  /* As osmo-hlr does: ask the peer for its unit name. */
  if (hp_ipa_send_id_get(c) != 0) {
    sgsn_close(d, c, "write");
  }
}

/* --------------------------------------------------------------- setup */

static int open_store(hp_daemon *d, int check_only) {
  char err[600];
  uint8_t kek[MTCSEC_KEK_LEN];
  struct stat sb;
  int upstream = d->cfg.upstream_hlr[0] != '\0', rv;

  if (upstream && stat(d->cfg.database, &sb) != 0) {
    app_log(MTCSEC_LOG_INFO,
            "event=database_absent file=%s (integrity-only list from the "
            "configuration only)",
            d->cfg.database);
    return HP_EXIT_OK;
  }
  rv = mtcsec_kek_load(d->cfg.kek_file, kek, err, sizeof(err));
  if (rv != 0) {
    app_log(MTCSEC_LOG_ERROR, "event=config_error msg=\"%s\"", err);
    return HP_EXIT_CONFIG;
  }
  rv = mtcsec_auc_store_open(&d->store, d->cfg.database, kek,
                             check_only ? MTCSEC_AUC_NOCREATE : 0, err,
                             sizeof(err));
  mtcsec_zeroize(kek, sizeof(kek));
  if (rv != 0) {
    app_log(MTCSEC_LOG_ERROR, "event=database_error msg=\"%s\"", err);
    return HP_EXIT_CONFIG;
  }
  return HP_EXIT_OK;
}

/* The metrics endpoint.  A listener named in mtchpd.conf must open; the
 * default one (127.0.0.1:9789) may be taken (another mtchpd on the host,
 * a configuration written before metrics existed): then mtchpd runs
 * without it and says so. */
static int setup_metrics(hp_daemon *d) {
  char err[512], addr[128];
  int fd;

  if (d->cfg.metrics_listen[0] == '\0') {
    return HP_EXIT_OK;
  }
  fd = app_tcp_listen(d->cfg.metrics_listen, err, sizeof(err));
  if (fd < 0) {
    if (d->cfg.metrics_listen_given) {
      app_log(MTCSEC_LOG_ERROR,
              "event=listen_failed service=metrics msg=\"%s\"", err);
      return HP_EXIT_FAILED;
    }
    app_log(MTCSEC_LOG_WARN,
            "event=metrics_disabled msg=\"%s\" hint=\"the default "
            "metrics_listen is taken; set metrics_listen (empty disables) in "
            "mtchpd.conf\"",
            err);
    return HP_EXIT_OK;
  }
  sock_name(fd, addr, sizeof(addr));
  if (hp_metrics_start(d, fd) != 0) {
    (void)close(fd);
    d->metrics_fd = -1;
    app_log(MTCSEC_LOG_ERROR, "event=metrics_thread_failed");
    return HP_EXIT_INTERNAL;
  }
  app_log(MTCSEC_LOG_INFO, "event=listening service=metrics addr=%s", addr);
  return HP_EXIT_OK;
}

static int setup(hp_daemon *d, int check_only) {
  char err[512], addr[128];
  int rv;

  if (mtcsec_crypto_openssl_new(&d->crypto) != 0) {
    app_log(MTCSEC_LOG_ERROR, "event=crypto_error");
    return HP_EXIT_INTERNAL;
  }
  rv = open_store(d, check_only);
  if (rv != HP_EXIT_OK) {
    return rv;
  }
  if (d->cfg.kup_listen[0] != '\0') {
    d->tls =
      app_tls_server_ctx(d->cfg.cert, d->cfg.key, d->cfg.ca, err, sizeof(err));
    if (d->tls == NULL) {
      app_log(MTCSEC_LOG_ERROR, "event=config_error msg=\"%s\"", err);
      return HP_EXIT_CONFIG;
    }
  }
  if (check_only) {
    return HP_EXIT_OK;
  }
  d->acl = hp_acl_new(&d->cfg);
  if (d->acl == NULL) {
    return HP_EXIT_INTERNAL;
  }
  if (hp_cache_init(&d->cache, d->cfg.vector_cache_max,
                    d->cfg.vector_lifetime) != 0) {
    app_log(MTCSEC_LOG_ERROR, "event=nomem what=vector_table");
    return HP_EXIT_INTERNAL;
  }
  d->conns = calloc(d->cfg.max_connections, sizeof(*d->conns));
  if (d->conns == NULL) {
    return HP_EXIT_INTERNAL;
  }
  d->gsup_fd = app_tcp_listen(d->cfg.gsup_listen, err, sizeof(err));
  if (d->gsup_fd < 0) {
    app_log(MTCSEC_LOG_ERROR, "event=listen_failed service=gsup msg=\"%s\"",
            err);
    return HP_EXIT_FAILED;
  }
  sock_name(d->gsup_fd, addr, sizeof(addr));
  app_log(MTCSEC_LOG_INFO, "event=listening service=gsup addr=%s", addr);
  if (d->tls != NULL) {
    d->kup_fd = app_tcp_listen(d->cfg.kup_listen, err, sizeof(err));
    if (d->kup_fd < 0) {
      app_log(MTCSEC_LOG_ERROR, "event=listen_failed service=kup msg=\"%s\"",
              err);
      return HP_EXIT_FAILED;
    }
    sock_name(d->kup_fd, addr, sizeof(addr));
    app_log(MTCSEC_LOG_INFO, "event=listening service=kup addr=%s", addr);
  }
  return setup_metrics(d);
}

static void teardown(hp_daemon *d) {
  unsigned i;
  if (d->kup_fd >= 0) {
    (void)close(d->kup_fd);
    d->kup_fd = -1;
  }
  hp_kup_drain(d, 5000);
  hp_metrics_stop(d);
  if (d->gsup_fd >= 0) {
    (void)close(d->gsup_fd);
  }
  if (d->conns != NULL) {
    for (i = 0; i < d->cfg.max_connections; i++) {
      hp_conn_free(d->conns[i]);
    }
    free(d->conns);
  }
  hp_conn_free(d->up);
  if (d->sig_fd >= 0) {
    (void)close(d->sig_fd);
  }
  hp_cache_free(&d->cache);
  mtcsec_auc_store_close(d->store);
  SSL_CTX_free(d->tls);
  hp_acl_unref(d->acl);
  mtcsec_crypto_openssl_del(&d->crypto);
}

/* ------------------------------------------------------------- reload */

static const char *level_name(int level) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  return level >= 0 && level <= 3 ? names[level] : "?";
}

/*
 * SIGHUP: reads mtchpd.conf again.  Applied: the K_UP certificate, key and
 * CA (a new SSL_CTX for new connections; open ones keep theirs),
 * allowed_servers (a new snapshot for new connections), integrity_only,
 * num_vectors, upstream_timeout, isd_timeout, idle_timeout,
 * kup_max_connections, log_level (unless --log-level was given).  Keys
 * only a restart applies keep their old value and are named in
 * restart_needed.  A file or certificate that does not load changes
 * nothing.  GSUP peers, the upstream link, pending requests and the vector
 * table are untouched.
 */
static void do_reload(hp_daemon *d) {
  hp_config *nc = calloc(1, sizeof(*nc));
  char err[600], keys[256];
  SSL_CTX *tls = NULL;
  hp_acl *acl = NULL;

  if (nc == NULL) {
    app_log(MTCSEC_LOG_ERROR, "event=reload result=failed err=\"out of "
                              "memory\" action=kept_previous_config");
    return;
  }
  if (hp_config_load(nc, d->cfg.file, err, sizeof(err)) != 0) {
    goto fail;
  }
  if (d->cfg.kup_listen[0] != '\0') {
    tls = app_tls_server_ctx(nc->cert, nc->key, nc->ca, err, sizeof(err));
    if (tls == NULL) {
      goto fail;
    }
  }
  acl = hp_acl_new(nc);
  if (acl == NULL) {
    snprintf(err, sizeof(err), "out of memory");
    goto fail;
  }
  hp_config_restart_keys(&d->cfg, nc, keys, sizeof(keys));
  hp_config_keep_restart(nc, &d->cfg);
  if (tls != NULL) {
    SSL_CTX_free(d->tls);
    d->tls = tls;
  }
  hp_acl_unref(d->acl);
  d->acl = acl;
  memcpy(&d->cfg, nc, sizeof(d->cfg));
  if (d->cli_log_level < 0) {
    app_log_set_level(d->cfg.log_level);
  }
  /* A peer gsup_allowed_peers no longer allows goes now (as mtcsd closes
   * a GGSN removed from allowed_ggsns). */
  {
    unsigned i;
    for (i = 0; i < d->cfg.max_connections; i++) {
      hp_conn *c = d->conns[i];
      if (c != NULL && !hp_config_gsup_allowed(&d->cfg, c->addr)) {
        sgsn_close(d, c, "not_allowed");
      }
    }
  }
  app_log(keys[0] != '\0' ? MTCSEC_LOG_WARN : MTCSEC_LOG_INFO,
          "event=reload result=ok file=%s allowed_servers=%zu "
          "integrity_only=%zu certificates=%s log_level=%s "
          "restart_needed=%s",
          d->cfg.file, d->cfg.nallowed, d->cfg.nio_imsis,
          tls != NULL ? "reloaded" : "unused", level_name(app_log_level()),
          keys[0] != '\0' ? keys : "none");
  free(nc);
  return;

fail:
  app_log(MTCSEC_LOG_ERROR,
          "event=reload result=failed file=%s err=\"%s\" "
          "action=kept_previous_config",
          d->cfg.file, err);
  free(nc);
}

/* ---------------------------------------------------------------- loop */

static int run(hp_daemon *d) {
  unsigned maxfds = d->cfg.max_connections + 4, i;
  struct pollfd *pfd = calloc(maxfds, sizeof(*pfd));
  hp_conn **who = calloc(maxfds, sizeof(*who));
  int stop = 0;

  if (pfd == NULL || who == NULL) {
    free(pfd);
    free(who);
    return HP_EXIT_INTERNAL;
  }
  app_log(MTCSEC_LOG_INFO, "event=ready mode=%s upstream=%s",
          d->cfg.upstream_hlr[0] != '\0' ? "upstream" : "auc",
          d->cfg.upstream_hlr[0] != '\0' ? d->cfg.upstream_hlr : "-");
  while (!stop) {
    unsigned n = 0;
    int rc;
    upstream_connect(d);
    gsup_timers(d, app_now_ms());
    pfd[n].fd = d->sig_fd;
    pfd[n].events = POLLIN;
    who[n++] = NULL;
    pfd[n].fd = d->gsup_fd;
    pfd[n].events = POLLIN;
    who[n++] = NULL;
    pfd[n].fd = d->kup_fd;
    pfd[n].events = POLLIN;
    who[n++] = NULL;
    if (d->up != NULL) {
      pfd[n].fd = d->up->fd;
      pfd[n].events =
        (short)(POLLIN | (d->up->connecting || d->up->wlen > 0 ? POLLOUT : 0));
      who[n++] = d->up;
    }
    for (i = 0; i < d->cfg.max_connections; i++) {
      if (d->conns[i] != NULL) {
        pfd[n].fd = d->conns[i]->fd;
        pfd[n].events = (short)(POLLIN | (d->conns[i]->wlen > 0 ? POLLOUT : 0));
        who[n++] = d->conns[i];
      }
    }
    rc = poll(pfd, n, 500);
    if (rc < 0 && errno != EINTR) {
      app_log(MTCSEC_LOG_ERROR, "event=poll_failed err=%d", errno);
      break;
    }
    hp_gsup_expire(d, app_now_ms(), 0);
    (void)hp_cache_expire(&d->cache, app_now_ms());
    atomic_store(&d->metrics.upstream_up, d->up != NULL && d->up->ready);
    if (rc <= 0) {
      continue;
    }
    if (pfd[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(d->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
          do_reload(d);
        } else {
          app_log(MTCSEC_LOG_INFO, "event=shutdown signal=%s",
                  si.ssi_signo == SIGTERM ? "TERM" : "INT");
          stop = 1;
        }
      }
    }
    if (stop) {
      break;
    }
    if (pfd[1].revents & POLLIN) {
      gsup_accept(d);
    }
    if (pfd[2].fd >= 0 && (pfd[2].revents & POLLIN)) {
      hp_kup_accept(d);
    }
    for (i = 3; i < n; i++) {
      hp_conn *c = who[i];
      int r = 0;
      short ev = pfd[i].revents;
      if (c == NULL || ev == 0) {
        continue;
      }
      if (c == d->up && c->connecting) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if ((ev & (POLLOUT | POLLERR | POLLHUP)) == 0) {
          continue;
        }
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
            soerr != 0) {
          upstream_close(d, "connect_failed");
          continue;
        }
        c->connecting = 0;
        app_log(MTCSEC_LOG_INFO, "event=upstream_connected peer=%s", c->peer);
        continue;
      }
      if (ev & POLLOUT) {
        r = hp_conn_flush(c) == 0 ? 0 : -1;
      }
      if (r == 0 && (ev & (POLLIN | POLLHUP | POLLERR))) {
        r = hp_conn_read(c, c == d->up ? on_upstream_msg : on_sgsn_msg, d);
      }
      if (r != 0) {
        if (c == d->up) {
          upstream_close(d, r > 0 ? "eof" : "error");
        } else {
          sgsn_close(d, c, r > 0 ? "eof" : "error");
        }
      }
    }
  }
  free(pfd);
  free(who);
  return HP_EXIT_OK;
}

/* libosmocore logs through its own framework; with no target nothing is
 * printed, and its decoders may log safely. */
static const struct log_info hp_osmo_log_info = {NULL, NULL, 0, 0, NULL, NULL};

int main(int argc, char **argv) {
  static const struct option opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"log-level", required_argument, NULL, 'l'},
    {"check-config", no_argument, NULL, 'C'},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  hp_daemon *d;
  const char *conf = NULL, *lvl = NULL;
  char defconf[HP_PATH_MAX], err[600];
  int ch, check = 0, level, rv;
  sigset_t sigs;

  app_log_init("mtchpd", MTCSEC_LOG_INFO, stderr);
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
    switch (ch) {
    case 'c':
      conf = optarg;
      break;
    case 'l':
      lvl = optarg;
      break;
    case 'C':
      check = 1;
      break;
    case 'V':
      printf("mtchpd %s\n", mtcsec_version());
      return HP_EXIT_OK;
    case 'h':
      usage(stdout);
      return HP_EXIT_OK;
    default:
      usage(stderr);
      return HP_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return HP_EXIT_USAGE;
  }
  if (conf == NULL) {
    const char *dir = getenv("MTCSEC_DIR");
    snprintf(defconf, sizeof(defconf), "%s/mtchpd.conf",
             dir != NULL && dir[0] != '\0' ? dir : "./mtcsec");
    conf = defconf;
  }
  d = calloc(1, sizeof(*d));
  if (d == NULL) {
    return HP_EXIT_INTERNAL;
  }
  d->gsup_fd = d->kup_fd = d->sig_fd = -1;
  d->metrics_fd = d->metrics_stop_fd = -1;
  d->cli_log_level = -1;
  if (pthread_mutex_init(&d->kup_mu, NULL) != 0) {
    free(d);
    return HP_EXIT_INTERNAL;
  }
  if (hp_config_load(&d->cfg, conf, err, sizeof(err)) != 0) {
    app_log(MTCSEC_LOG_ERROR, "event=config_error msg=\"%s\"", err);
    rv = HP_EXIT_CONFIG;
    goto out;
  }
  level = d->cfg.log_level;
  if (lvl != NULL && app_parse_log_level(lvl, &level) != 0) {
    usage(stderr);
    rv = HP_EXIT_USAGE;
    goto out;
  }
  if (lvl != NULL) {
    d->cli_log_level = level;
  }
  app_log_set_level(level);
  (void)log_init(&hp_osmo_log_info, NULL);

  /* Signals go to the signalfd only; blocked before any thread starts, so
   * the K_UP threads inherit the mask. */
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
      (d->sig_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
    rv = HP_EXIT_INTERNAL;
    goto out;
  }
  rv = setup(d, check);
  if (rv == HP_EXIT_OK && check) {
    printf("configuration OK\n");
  } else if (rv == HP_EXIT_OK) {
    rv = run(d);
  }
  if (rv == HP_EXIT_OK && !check) {
    app_log(MTCSEC_LOG_INFO, "event=stopped");
  }

out:
  teardown(d);
  pthread_mutex_destroy(&d->kup_mu);
  free(d);
  return rv;
}
