/*
 * Metrics (docs/CELLULAR-HOME-PROXY.md "Metrics"): relaxed atomic counters
 * in the daemon, updated by the GSUP loop and the K_UP threads, and one
 * thread serving them in the Prometheus text format (version 0.0.4) on
 * metrics_listen: plain HTTP/1.0, GET /metrics, one request per
 * connection, 2 s socket timeouts, as mtcsd's endpoint does.
 *
 * mtcsd's serving code (apps/mtcsd/metrics.c) is static and reads that
 * daemon's module-global counters, so it cannot be called from here
 * without changing mtcsd; this is a small server of the same shape, using
 * apps/common for the listening socket (app_tcp_listen, in main.c).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <osmocom/gsm/gsup.h>

#include "mtchpd.h"

static const char *const gt_label[HP_GT_N] = {
  "send_auth_info",   "update_location", "purge_ms",
  "auth_fail_report", "other",           "malformed"};

static const int kup_status_code[HP_KUP_NSTATUS - 1] = {
  0, 200, 400, 403, 404, 405, 411, 413, 500, 501};

void hp_metrics_gsup(hp_metrics *m, unsigned msg_type, int ok) {
  int t;
  switch (msg_type & 0xfcu) {
  case OSMO_GSUP_MSGT_SEND_AUTH_INFO_REQUEST:
    t = HP_GT_SAI;
    break;
  case OSMO_GSUP_MSGT_UPDATE_LOCATION_REQUEST:
    t = HP_GT_UL;
    break;
  case OSMO_GSUP_MSGT_PURGE_MS_REQUEST:
    t = HP_GT_PURGE;
    break;
  default:
    t = msg_type == 0                                 ? HP_GT_MALFORMED
        : msg_type == OSMO_GSUP_MSGT_AUTH_FAIL_REPORT ? HP_GT_AFR
                                                      : HP_GT_OTHER;
    break;
  }
  atomic_fetch_add_explicit(&m->gsup[t][ok ? 0 : 1], 1, memory_order_relaxed);
}

void hp_metrics_kup(hp_metrics *m, int status) {
  size_t i;
  for (i = 0; i < HP_KUP_NSTATUS - 1; i++) {
    if (kup_status_code[i] == status) {
      break;
    }
  }
  atomic_fetch_add_explicit(&m->kup[i], 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ output */

typedef struct mbuf {
  char *p;
  size_t n, cap;
  int failed;
} mbuf;

static void mprintf(mbuf *b, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

static void mprintf(mbuf *b, const char *fmt, ...) {
  va_list ap;
  int m;
  while (!b->failed) {
    va_start(ap, fmt);
    m = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (m < 0) {
      b->failed = 1;
      return;
    }
    if ((size_t)m < b->cap - b->n) {
      b->n += (size_t)m;
      return;
    }
    {
      size_t ncap = b->cap * 2 + (size_t)m;
      char *np = realloc(b->p, ncap);
      if (np == NULL) {
        b->failed = 1;
        return;
      }
      b->p = np;
      b->cap = ncap;
    }
  }
}

static unsigned long long ld(_Atomic uint64_t *a) {
  return (unsigned long long)atomic_load_explicit(a, memory_order_relaxed);
}

static void metrics_head(mbuf *b, const char *name, const char *type,
                         const char *help) {
  mprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_render(hp_daemon *d, mbuf *b) {
  hp_metrics *m = &d->metrics;
  size_t i;
  int r;

  metrics_head(b, "mtchpd_gsup_requests_total", "counter",
               "GSUP requests from SGSNs, by type and answer (ok = a "
               "result, error = an error message).");
  for (i = 0; i < HP_GT_N; i++) {
    for (r = 0; r < 2; r++) {
      mprintf(b, "mtchpd_gsup_requests_total{type=\"%s\",result=\"%s\"} %llu\n",
              gt_label[i], r == 0 ? "ok" : "error", ld(&m->gsup[i][r]));
    }
  }
  metrics_head(b, "mtchpd_vectors_issued_total", "counter",
               "Authentication vectors sent to SGSNs, by source.");
  mprintf(b,
          "mtchpd_vectors_issued_total{source=\"auc\"} %llu\n"
          "mtchpd_vectors_issued_total{source=\"upstream\"} %llu\n",
          ld(&m->vectors_auc), ld(&m->vectors_upstream));
  metrics_head(b, "mtchpd_vectors_stripped_total", "counter",
               "Vectors sent without CK and Kc (integrity-only "
               "subscribers).");
  mprintf(b, "mtchpd_vectors_stripped_total %llu\n", ld(&m->vectors_stripped));
  metrics_head(b, "mtchpd_kup_requests_total", "counter",
               "K_UP requests, by HTTP status (0: no answer, the TLS "
               "handshake failed or the client left).");
  for (i = 0; i < HP_KUP_NSTATUS; i++) {
    if (i < HP_KUP_NSTATUS - 1) {
      mprintf(b, "mtchpd_kup_requests_total{status=\"%d\"} %llu\n",
              kup_status_code[i], ld(&m->kup[i]));
    } else {
      mprintf(b, "mtchpd_kup_requests_total{status=\"other\"} %llu\n",
              ld(&m->kup[i]));
    }
  }
  metrics_head(b, "mtchpd_resyncs_total", "counter",
               "Send Auth Info requests carrying AUTS (resynchronisation), "
               "by answer.");
  mprintf(b,
          "mtchpd_resyncs_total{result=\"ok\"} %llu\n"
          "mtchpd_resyncs_total{result=\"failed\"} %llu\n",
          ld(&m->resync_ok), ld(&m->resync_failed));
  metrics_head(b, "mtchpd_vector_table_entries", "gauge",
               "Live (IMSI, RAND) -> (CK, IK) entries.");
  mprintf(b, "mtchpd_vector_table_entries %zu\n",
          hp_cache_expire(&d->cache, app_now_ms()));
  metrics_head(b, "mtchpd_gsup_peers", "gauge", "SGSN connections open now.");
  mprintf(b, "mtchpd_gsup_peers %d\n", atomic_load(&m->peers));
  metrics_head(b, "mtchpd_upstream_up", "gauge",
               "1 when the upstream HLR link is identified and usable "
               "(always 0 in built-in AuC mode).");
  mprintf(b, "mtchpd_upstream_up %d\n", atomic_load(&m->upstream_up));
}

/* ------------------------------------------------------------ thread */

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

static void metrics_serve(hp_daemon *d, int fd) {
  char req[4096], head[256];
  size_t n = 0;
  struct timeval tv = {2, 0};
  mbuf body = {NULL, 0, 0, 0};
  int hl;

  (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  while (n < sizeof(req) - 1) {
    ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      break;
    }
    n += (size_t)r;
    req[n] = '\0';
    if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL) {
      break;
    }
  }
  req[n] = '\0';
  if (strncmp(req, "GET /metrics", 12) != 0 ||
      (req[12] != ' ' && req[12] != '?' && req[12] != '\r')) {
    static const char nf[] = "HTTP/1.0 404 Not Found\r\n"
                             "Content-Type: text/plain\r\n"
                             "Connection: close\r\n\r\n"
                             "try GET /metrics\n";
    send_all(fd, nf, sizeof(nf) - 1);
    return;
  }
  body.cap = 4096;
  body.p = malloc(body.cap);
  if (body.p == NULL) {
    return;
  }
  metrics_render(d, &body);
  if (!body.failed) {
    hl = snprintf(head, sizeof(head),
                  "HTTP/1.0 200 OK\r\n"
                  "Content-Type: text/plain; version=0.0.4\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                  body.n);
    send_all(fd, head, (size_t)hl);
    send_all(fd, body.p, body.n);
  }
  free(body.p);
}

static void *metrics_main(void *arg) {
  hp_daemon *d = arg;
  for (;;) {
    struct pollfd p[2];
    int fd;
    p[0].fd = d->metrics_fd;
    p[0].events = POLLIN;
    p[1].fd = d->metrics_stop_fd;
    p[1].events = POLLIN;
    p[0].revents = p[1].revents = 0;
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    if (p[1].revents != 0) {
      break;
    }
    if ((p[0].revents & POLLIN) == 0) {
      continue;
    }
    fd = accept4(d->metrics_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
      }
      continue;
    }
    /* The listener is non-blocking; the connection must not be. */
    {
      int fl = fcntl(fd, F_GETFL);
      if (fl >= 0) {
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
      }
    }
    metrics_serve(d, fd);
    (void)close(fd);
  }
  return NULL;
}

int hp_metrics_start(hp_daemon *d, int fd) {
  d->metrics_fd = fd;
  d->metrics_stop_fd = eventfd(0, EFD_CLOEXEC);
  if (d->metrics_stop_fd < 0) {
    return -1;
  }
  if (pthread_create(&d->metrics_thread, NULL, metrics_main, d) != 0) {
    (void)close(d->metrics_stop_fd);
    d->metrics_stop_fd = -1;
    return -1;
  }
  d->metrics_running = 1;
  return 0;
}

void hp_metrics_stop(hp_daemon *d) {
  uint64_t one = 1;
  if (d->metrics_running) {
    if (write(d->metrics_stop_fd, &one, sizeof(one)) < 0) {
      /* The thread also ends with the process. */
    }
    pthread_join(d->metrics_thread, NULL);
    d->metrics_running = 0;
  }
  if (d->metrics_stop_fd >= 0) {
    (void)close(d->metrics_stop_fd);
    d->metrics_stop_fd = -1;
  }
  if (d->metrics_fd >= 0) {
    (void)close(d->metrics_fd);
    d->metrics_fd = -1;
  }
}
