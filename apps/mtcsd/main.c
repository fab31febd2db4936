/*
 * mtcsd: the MTC server daemon (PROTOCOL.md sections 1, 4 and 5; operating
 * contract in docs/OPERATIONS.md; man page docs/man/mtcsd.8.md).
 *
 * The main thread parses options and the configuration, opens everything
 * (refusing to start on any configuration problem, exit 4), then accepts
 * TLS connections and hands them round-robin to the workers, and handles
 * signals through a signalfd: SIGHUP reloads, SIGTERM/SIGINT drain and stop.
 * With cellular_listen set, the cellular service (cellular.c) runs in its
 * own thread beside them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "mtcsd.h"

#define ACCEPT_PAUSE_MS 100

enum { TOKEN_LISTEN = 1, TOKEN_SIGNAL = 2, TOKEN_WAKE = 3 };

typedef struct mtcsd_main {
  mtcsd_daemon d;
  SSL_CTX *ctx;
  int listen_fd;
  int sig_fd;
  int ep;
  unsigned rr;
  int shutting, force;
  mtcsec_tstamp deadline;
  mtcsec_tstamp accept_paused_until;
  mtcsec_tstamp last_emfile_log;
  int cli_log_level;    /* -1: from the configuration */
  mtcsd_cellular *cell; /* NULL: cellular_listen is off */
} mtcsd_main;

static void usage(FILE *f) {
  fprintf(f,
          "usage: mtcsd [-c FILE | -d DIR] [-f] [--log-level LEVEL] "
          "[--check-config]\n"
          "\n"
          "The mtcsec MTC server daemon (TLS 1.3 server link for UEs).\n"
          "\n"
          "  -c, --config FILE   configuration file (default DIR/mtcsd.conf)\n"
          "  -d, --dir DIR       state directory (default $MTCSEC_DIR, else "
          "./mtcsec)\n"
          "  -f, --foreground    stay in the foreground (the default; logs "
          "go to stderr)\n"
          "      --log-level L   error, warn, info or debug (overrides "
          "log_level)\n"
          "      --check-config  validate the configuration, the KEK, the "
          "certificates\n"
          "                      and the database, then exit\n"
          "  -V, --version       print the version and exit\n"
          "  -h, --help          this help\n"
          "\n"
          "Exit status: 0 stopped cleanly, 1 could not run, 2 usage, "
          "4 configuration\nor permission problem, 5 internal error.\n");
}

/* "addr:port" of a bound socket ("[v6]:port"). */
static void sock_name(int fd, int local, char *out, size_t outlen) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  char host[NI_MAXHOST], port[NI_MAXSERV];
  int rv = local ? getsockname(fd, (struct sockaddr *)&ss, &sl)
                 : getpeername(fd, (struct sockaddr *)&ss, &sl);
  if (rv != 0 ||
      getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port,
                  sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    snprintf(out, outlen, "?");
    return;
  }
  if ((size_t)snprintf(out, outlen,
                       ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
                       port) >= outlen) {
    snprintf(out, outlen, "?");
  }
}

static void post_all(mtcsd_daemon *d, uint8_t type, uint64_t arg) {
  unsigned i;
  for (i = 0; i < d->nworkers; i++) {
    mtcsd_msg *m = mtcsd_msg_new(type, NULL, 0);
    if (m == NULL) {
      app_log(MTCSEC_LOG_ERROR, "event=post_failed err=nomem");
      continue;
    }
    m->conn = arg;
    mtcsd_worker_post(&d->workers[i], m);
  }
}

/* ------------------------------------------------------------- accept */

static void do_accept(mtcsd_main *mm) {
  mtcsd_daemon *d = &mm->d;
  for (;;) {
    char peer[64];
    mtcsd_msg *m;
    SSL *ssl;
    int one = 1;
    int fd = accept4(mm->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      mtcsec_tstamp now;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      }
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) {
        continue;
      }
      /* Out of descriptors or memory: pause accepting for a moment. */
      now = app_now_ms();
      if (now - mm->last_emfile_log >= 1000) {
        app_log(MTCSEC_LOG_WARN, "event=accept_failed err=\"%s\"",
                strerror(errno));
        mm->last_emfile_log = now;
      }
      mm->accept_paused_until = now + ACCEPT_PAUSE_MS;
      epoll_ctl(mm->ep, EPOLL_CTL_DEL, mm->listen_fd, NULL);
      return;
    }
    sock_name(fd, 0, peer, sizeof(peer));
    if (mtcsd_metrics_connections() >= (int)d->cfg.max_connections) {
      app_log(MTCSEC_LOG_WARN,
              "event=conn_refused peer=%s reason=max_connections limit=%u",
              peer, d->cfg.max_connections);
      mtcsd_metrics_refused(0);
      close(fd);
      continue;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ERR_clear_error();
    ssl = SSL_new(mm->ctx);
    m = mtcsd_msg_new(MSG_CONN, peer, strlen(peer));
    if (ssl == NULL || m == NULL || SSL_set_fd(ssl, fd) != 1) {
      app_log(MTCSEC_LOG_ERROR, "event=conn_refused peer=%s reason=nomem",
              peer);
      SSL_free(ssl);
      free(m);
      close(fd);
      ERR_clear_error();
      continue;
    }
    SSL_set_accept_state(ssl);
    m->fd = fd;
    m->ssl = ssl;
    mtcsd_metrics_conn_delta(1);
    mtcsd_worker_post(&d->workers[mm->rr++ % d->nworkers], m);
  }
}

/* ------------------------------------------------------------- reload */

static const char *level_name(int level) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  return level >= 0 && level <= 3 ? names[level] : "?";
}

static void do_reload(mtcsd_main *mm) {
  mtcsd_daemon *d = &mm->d;
  mtcsd_config nc;
  char err[1024], keys[512];
  SSL_CTX *ctx;

  app_log(MTCSEC_LOG_INFO, "event=reload signal=HUP file=%s", d->cfg.file);
  if (mtcsd_config_load(&nc, d->cfg.file, err, sizeof(err)) != 0) {
    app_log(MTCSEC_LOG_ERROR,
            "event=reload_failed err=\"%s\" action=kept_previous_config", err);
    return;
  }
  ctx = mtcsd_tls_ctx(&nc, err, sizeof(err));
  if (ctx == NULL) {
    app_log(MTCSEC_LOG_ERROR,
            "event=reload_failed err=\"%s\" action=kept_previous_config", err);
    return;
  }
  /* The cellular service's new contexts are built here and handed to its
   * thread; nothing below can fail. */
  if (mtcsd_cellular_reload(mm->cell, &nc, err, sizeof(err)) != 0) {
    SSL_CTX_free(ctx);
    app_log(MTCSEC_LOG_ERROR,
            "event=reload_failed err=\"%s\" action=kept_previous_config", err);
    return;
  }
  mtcsd_config_restart_keys(&d->cfg, &nc, keys, sizeof(keys));
  if (keys[0] != '\0') {
    app_log(MTCSEC_LOG_WARN,
            "event=reload_ignored keys=%s reason=\"needs a restart\"", keys);
  }
  /* New connections use the new certificates; open ones keep theirs. */
  SSL_CTX_free(mm->ctx);
  mm->ctx = ctx;
  if (mm->cli_log_level < 0) {
    app_log_set_level(nc.log_level);
  }
  d->cfg.log_level = nc.log_level;
  if (nc.rate_per_minute != d->cfg.rate_per_minute) {
    post_all(d, MSG_RATE, nc.rate_per_minute);
  }
  d->cfg.rate_per_minute = nc.rate_per_minute;
  d->cfg.max_connections = nc.max_connections;
  d->cfg.idle_timeout = nc.idle_timeout;
  atomic_store(&d->idle_timeout_ms, nc.idle_timeout * 1000u);
  memcpy(d->cfg.ca, nc.ca, sizeof(nc.ca));
  memcpy(d->cfg.crl, nc.crl, sizeof(nc.crl));
  memcpy(d->cfg.cert, nc.cert, sizeof(nc.cert));
  memcpy(d->cfg.key, nc.key, sizeof(nc.key));
  app_log(MTCSEC_LOG_INFO,
          "event=reloaded log_level=%s rate_per_minute=%u "
          "max_connections=%u idle_timeout=%u certificates=reloaded",
          level_name(app_log_level()), (unsigned)nc.rate_per_minute,
          nc.max_connections, nc.idle_timeout);
}

/* ------------------------------------------------------------- signals */

static void begin_shutdown(mtcsd_main *mm, const char *sig) {
  mtcsd_daemon *d = &mm->d;
  if (mm->shutting) {
    app_log(MTCSEC_LOG_WARN, "event=shutdown signal=%s action=force", sig);
    mm->force = 1;
    return;
  }
  mm->shutting = 1;
  mm->deadline = app_now_ms() + (mtcsec_tstamp)d->cfg.shutdown_timeout * 1000;
  app_log(MTCSEC_LOG_INFO,
          "event=shutdown signal=%s action=drain connections=%d timeout=%u",
          sig, mtcsd_metrics_connections(), d->cfg.shutdown_timeout);
  epoll_ctl(mm->ep, EPOLL_CTL_DEL, mm->listen_fd, NULL);
  close(mm->listen_fd);
  mm->listen_fd = -1;
  post_all(d, MSG_DRAIN, 0);
}

static void do_signals(mtcsd_main *mm) {
  struct signalfd_siginfo si;
  while (read(mm->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    switch (si.ssi_signo) {
    case SIGHUP:
      if (!mm->shutting) {
        do_reload(mm);
      }
      break;
    case SIGTERM:
      begin_shutdown(mm, "TERM");
      break;
    case SIGINT:
      begin_shutdown(mm, "INT");
      break;
    default:
      break;
    }
  }
}

/* ---------------------------------------------------------------- run */

static int epoll_add(int ep, int fd, uint64_t token) {
  struct epoll_event e;
  memset(&e, 0, sizeof(e));
  e.events = EPOLLIN;
  e.data.u64 = token;
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static void main_loop(mtcsd_main *mm) {
  mtcsd_daemon *d = &mm->d;
  for (;;) {
    struct epoll_event evs[8];
    int n, i;
    mtcsec_tstamp now;

    n = epoll_wait(mm->ep, evs, 8, 100);
    if (n < 0 && errno != EINTR) {
      app_log(MTCSEC_LOG_ERROR, "event=epoll_failed err=\"%s\"",
              strerror(errno));
      begin_shutdown(mm, "none");
      mm->force = 1;
    }
    for (i = 0; i < n; i++) {
      switch (evs[i].data.u64) {
      case TOKEN_LISTEN:
        if (mm->listen_fd >= 0) {
          do_accept(mm);
        }
        break;
      case TOKEN_SIGNAL:
        do_signals(mm);
        break;
      case TOKEN_WAKE: {
        uint64_t v;
        while (read(d->main_evfd, &v, sizeof(v)) < 0 && errno == EINTR) {
        }
        break;
      }
      default:
        break;
      }
    }
    now = app_now_ms();
    if (mm->accept_paused_until != 0 && now >= mm->accept_paused_until) {
      mm->accept_paused_until = 0;
      if (mm->listen_fd >= 0) {
        epoll_add(mm->ep, mm->listen_fd, TOKEN_LISTEN);
      }
    }
    if (mm->shutting) {
      if (atomic_load(&d->drained) >= d->nworkers) {
        app_log(MTCSEC_LOG_INFO, "event=drained");
        return;
      }
      if (mm->force || now >= mm->deadline) {
        app_log(MTCSEC_LOG_WARN,
                "event=shutdown_forced connections=%d reason=%s",
                mtcsd_metrics_connections(),
                mm->force ? "second_signal" : "shutdown_timeout");
        post_all(d, MSG_FORCE, 0);
        return;
      }
    }
  }
}

/* Loads the KEK, naming the file in the message.  0 or -1. */
static int load_kek(const mtcsd_config *cfg, uint8_t kek[MTCSEC_KEK_LEN]) {
  char err[512];
  if (mtcsec_kek_load(cfg->kek_file, kek, err, sizeof(err)) != 0) {
    if (strstr(err, cfg->kek_file) != NULL) {
      fprintf(stderr, "mtcsd: %s\n", err);
    } else {
      fprintf(stderr, "mtcsd: %s: %s\n", cfg->kek_file, err);
    }
    return -1;
  }
  return 0;
}

static int check_config(const mtcsd_config *cfg) {
  uint8_t kek[MTCSEC_KEK_LEN];
  char err[1024];
  SSL_CTX *ctx;
  mtcsec_crypto crypto;
  mtcsec_sqlite *db = NULL;
  int rv = MTCSD_EXIT_CONFIG;

  memset(&crypto, 0, sizeof(crypto));
  if (load_kek(cfg, kek) != 0) {
    return MTCSD_EXIT_CONFIG;
  }
  ctx = mtcsd_tls_ctx(cfg, err, sizeof(err));
  if (ctx == NULL) {
    fprintf(stderr, "mtcsd: %s\n", err);
    goto cleanup;
  }
  SSL_CTX_free(ctx);
  if (mtcsd_cellular_check(cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "mtcsd: %s\n", err);
    goto cleanup;
  }
  if (mtcsec_crypto_openssl_new(&crypto) != 0) {
    fprintf(stderr, "mtcsd: cannot create the crypto provider\n");
    rv = MTCSD_EXIT_INTERNAL;
    goto cleanup;
  }
  if (mtcsec_sqlite_open(&db, cfg->database, kek, &crypto,
                         MTCSEC_SQLITE_READONLY, err, sizeof(err)) != 0) {
    fprintf(stderr, "mtcsd: %s: %s\n", cfg->database, err);
    goto cleanup;
  }
  printf("mtcsd: %s: configuration OK\n", cfg->file);
  rv = MTCSD_EXIT_OK;

cleanup:
  mtcsec_sqlite_close(db);
  mtcsec_crypto_openssl_del(&crypto);
  mtcsec_zeroize(kek, sizeof(kek));
  return rv;
}

static int default_config(char *out, size_t outlen, const char *dir) {
  const char *env = getenv("MTCSEC_DIR");
  if (dir == NULL) {
    dir = env != NULL && env[0] != '\0' ? env : "./mtcsec";
  }
  return (size_t)snprintf(out, outlen, "%s/mtcsd.conf", dir) < outlen ? 0 : -1;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"dir", required_argument, NULL, 'd'},
    {"foreground", no_argument, NULL, 'f'},
    {"log-level", required_argument, NULL, 'L'},
    {"check-config", no_argument, NULL, 'C'},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  static mtcsd_main mm;
  mtcsd_daemon *d = &mm.d;
  const char *config = NULL, *dir = NULL;
  char path[PATH_MAX], err[1024], addr[128];
  uint8_t kek[MTCSEC_KEK_LEN];
  int check = 0, ch, rv = MTCSD_EXIT_FAIL, metrics_fd = -1;
  unsigned i, started = 0;
  int committer_started = 0;
  sigset_t sigs;

  mm.cli_log_level = -1;
  mm.listen_fd = mm.sig_fd = mm.ep = -1;
  d->main_evfd = -1;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, ":c:d:fVh", opts, NULL)) != -1) {
    switch (ch) {
    case 'c':
      config = optarg;
      break;
    case 'd':
      dir = optarg;
      break;
    case 'f':
      break;
    case 'L':
      if (app_parse_log_level(optarg, &mm.cli_log_level) != 0) {
        fprintf(stderr,
                "mtcsd: --log-level: expected error, warn, info or debug\n");
        return MTCSD_EXIT_USAGE;
      }
      break;
    case 'C':
      check = 1;
      break;
    case 'V':
      printf("mtcsd %s\n", mtcsec_version());
      return MTCSD_EXIT_OK;
    case 'h':
      usage(stdout);
      return MTCSD_EXIT_OK;
    case ':':
      fprintf(stderr, "mtcsd: option %s needs a value\n", argv[optind - 1]);
      usage(stderr);
      return MTCSD_EXIT_USAGE;
    default:
      fprintf(stderr, "mtcsd: unknown option %s\n", argv[optind - 1]);
      usage(stderr);
      return MTCSD_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "mtcsd: unexpected argument %s\n", argv[optind]);
    usage(stderr);
    return MTCSD_EXIT_USAGE;
  }
  if (config == NULL) {
    if (default_config(path, sizeof(path), dir) != 0) {
      fprintf(stderr, "mtcsd: state directory name too long\n");
      return MTCSD_EXIT_USAGE;
    }
    config = path;
  }

  app_log_init("mtcsd", MTCSEC_LOG_INFO, stderr);
  if (mtcsd_config_load(&d->cfg, config, err, sizeof(err)) != 0) {
    fprintf(stderr, "mtcsd: %s\n", err);
    return MTCSD_EXIT_CONFIG;
  }
  app_log_set_level(mm.cli_log_level >= 0 ? mm.cli_log_level
                                          : d->cfg.log_level);
  if (check) {
    return check_config(&d->cfg);
  }

  /* Everything that can be wrong with the configuration, before starting. */
  if (load_kek(&d->cfg, kek) != 0) {
    return MTCSD_EXIT_CONFIG;
  }
  mm.ctx = mtcsd_tls_ctx(&d->cfg, err, sizeof(err));
  if (mm.ctx == NULL) {
    fprintf(stderr, "mtcsd: %s\n", err);
    mtcsec_zeroize(kek, sizeof(kek));
    return MTCSD_EXIT_CONFIG;
  }

  /* Signals: handled by the main thread's signalfd only. */
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  mm.sig_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);

  d->nworkers = d->cfg.workers;
  atomic_store(&d->idle_timeout_ms, d->cfg.idle_timeout * 1000u);
  atomic_store(&d->drained, 0);
  d->main_evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  d->workers = calloc(d->nworkers, sizeof(*d->workers));
  if (mm.sig_fd < 0 || d->main_evfd < 0 || d->workers == NULL) {
    fprintf(stderr, "mtcsd: cannot set up: %s\n", strerror(errno));
    rv = MTCSD_EXIT_INTERNAL;
    goto cleanup;
  }
  mtcsd_metrics_init();
  if (mtcsd_committer_init(&d->committer, d, kek, err, sizeof(err)) != 0) {
    fprintf(stderr, "mtcsd: %s: %s\n", d->cfg.database, err);
    rv = MTCSD_EXIT_CONFIG;
    mtcsd_committer_free(&d->committer);
    d->committer.db = NULL;
    goto cleanup_early;
  }
  for (i = 0; i < d->nworkers; i++) {
    if (mtcsd_worker_init(&d->workers[i], d, i, kek, err, sizeof(err)) != 0) {
      fprintf(stderr, "mtcsd: %s: %s\n", d->cfg.database, err);
      d->nworkers = i + 1; /* free what was made */
      rv = MTCSD_EXIT_CONFIG;
      goto cleanup;
    }
  }
  mtcsec_zeroize(kek, sizeof(kek));

  mm.listen_fd = app_tcp_listen(d->cfg.listen, err, sizeof(err));
  if (mm.listen_fd < 0) {
    fprintf(stderr, "mtcsd: listen: %s\n", err);
    rv = MTCSD_EXIT_FAIL;
    goto cleanup;
  }
  sock_name(mm.listen_fd, 1, addr, sizeof(addr));
  app_log(MTCSEC_LOG_INFO, "event=listening addr=%s", addr);
  if (d->cfg.metrics_listen[0] != '\0') {
    metrics_fd = app_tcp_listen(d->cfg.metrics_listen, err, sizeof(err));
    if (metrics_fd < 0) {
      fprintf(stderr, "mtcsd: metrics_listen: %s\n", err);
      rv = MTCSD_EXIT_FAIL;
      goto cleanup;
    }
    sock_name(metrics_fd, 1, addr, sizeof(addr));
    if (mtcsd_metrics_start(metrics_fd) != 0) {
      close(metrics_fd);
      fprintf(stderr, "mtcsd: cannot start the metrics thread\n");
      rv = MTCSD_EXIT_INTERNAL;
      goto cleanup;
    }
    app_log(MTCSEC_LOG_INFO, "event=metrics_listening addr=%s", addr);
  }
  if (d->cfg.cellular_listen[0] != '\0') {
    int code;
    mm.cell = mtcsd_cellular_new(&d->cfg, &code, err, sizeof(err));
    if (mm.cell == NULL) {
      fprintf(stderr, "mtcsd: %s\n", err);
      rv = code;
      goto cleanup;
    }
  }

  mm.ep = epoll_create1(EPOLL_CLOEXEC);
  if (mm.ep < 0 || epoll_add(mm.ep, mm.listen_fd, TOKEN_LISTEN) != 0 ||
      epoll_add(mm.ep, mm.sig_fd, TOKEN_SIGNAL) != 0 ||
      epoll_add(mm.ep, d->main_evfd, TOKEN_WAKE) != 0) {
    fprintf(stderr, "mtcsd: epoll: %s\n", strerror(errno));
    rv = MTCSD_EXIT_INTERNAL;
    goto cleanup;
  }
  if (pthread_create(&d->committer.thread, NULL, mtcsd_committer_main,
                     &d->committer) != 0) {
    fprintf(stderr, "mtcsd: cannot start the committer thread\n");
    rv = MTCSD_EXIT_INTERNAL;
    goto cleanup;
  }
  committer_started = 1;
  for (i = 0; i < d->nworkers; i++) {
    if (pthread_create(&d->workers[i].thread, NULL, mtcsd_worker_main,
                       &d->workers[i]) != 0) {
      fprintf(stderr, "mtcsd: cannot start worker threads\n");
      rv = MTCSD_EXIT_INTERNAL;
      goto stop;
    }
    started++;
  }
  if (mm.cell != NULL && mtcsd_cellular_start(mm.cell) != 0) {
    fprintf(stderr, "mtcsd: cannot start the cellular thread\n");
    rv = MTCSD_EXIT_INTERNAL;
    goto stop;
  }
  app_log(MTCSEC_LOG_INFO,
          "event=ready version=%s workers=%u max_connections=%u "
          "idle_timeout=%u commit_max_batch=%zu commit_max_delay_ms=%u",
          mtcsec_version(), d->nworkers, d->cfg.max_connections,
          d->cfg.idle_timeout, d->cfg.commit_max_batch,
          d->cfg.commit_max_delay_ms);

  main_loop(&mm);
  rv = MTCSD_EXIT_OK;

stop:
  /* The cellular service closes its GGSN connections and erases every
   * context. */
  mtcsd_cellular_stop(mm.cell);
  mm.cell = NULL;
  /* Workers finish what their cores hold (commit and answer), then exit;
   * the committer exits once nothing is posted. */
  post_all(d, MSG_STOP, 0);
  for (i = 0; i < started; i++) {
    pthread_join(d->workers[i].thread, NULL);
  }
  if (committer_started) {
    mtcsd_committer_stop(&d->committer);
    pthread_join(d->committer.thread, NULL);
  }
  mtcsd_metrics_stop();

cleanup:
  mtcsd_cellular_stop(mm.cell);
  mm.cell = NULL;
  mtcsd_metrics_stop();
  for (i = 0; i < d->nworkers && d->workers != NULL; i++) {
    mtcsd_worker_free(&d->workers[i]);
  }
  mtcsd_committer_free(&d->committer);
cleanup_early:
  free(d->workers);
  if (mm.listen_fd >= 0) {
    close(mm.listen_fd);
  }
  if (mm.ep >= 0) {
    close(mm.ep);
  }
  if (mm.sig_fd >= 0) {
    close(mm.sig_fd);
  }
  if (d->main_evfd >= 0) {
    close(d->main_evfd);
  }
  SSL_CTX_free(mm.ctx);
  mtcsec_zeroize(kek, sizeof(kek));
  if (rv == MTCSD_EXIT_OK) {
    app_log(MTCSEC_LOG_INFO, "event=stopped status=0");
  }
  return rv;
}
