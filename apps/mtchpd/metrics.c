/*
 * Metrics (docs/CELLULAR-HOME-PROXY.md "Metrics"): relaxed atomic counters
 * in the daemon, updated by the GSUP loop and the K_UP threads, and one
 * thread serving them in the Prometheus text format (version 0.0.4) on
 * metrics_listen: plain HTTP/1.0, GET /metrics, one request per
 * connection, 2 s socket timeouts, as mtcsd's endpoint does.
 *
 * The HTTP serving is apps/common/metrics_http.c, shared with mtcsd; the
 * listening socket comes from app_tcp_listen (in main.c).
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

#include "metrics_http.h"
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

static unsigned long long ld(_Atomic uint64_t *a) {
  return (unsigned long long)atomic_load_explicit(a, memory_order_relaxed);
}

static void metrics_head(app_mbuf *b, const char *name, const char *type,
                         const char *help) {
  app_mprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_render(void *arg, app_mbuf *b) {
  hp_daemon *d = arg;
  hp_metrics *m = &d->metrics;
  size_t i;
  int r;

  metrics_head(b, "mtchpd_gsup_requests_total", "counter",
               "GSUP requests from SGSNs, by type and answer (ok = a "
               "result, error = an error message).");
  for (i = 0; i < HP_GT_N; i++) {
    for (r = 0; r < 2; r++) {
      app_mprintf(
        b, "mtchpd_gsup_requests_total{type=\"%s\",result=\"%s\"} %llu\n",
        gt_label[i], r == 0 ? "ok" : "error", ld(&m->gsup[i][r]));
    }
  }
  metrics_head(b, "mtchpd_vectors_issued_total", "counter",
               "Authentication vectors sent to SGSNs, by source.");
  app_mprintf(b,
              "mtchpd_vectors_issued_total{source=\"auc\"} %llu\n"
              "mtchpd_vectors_issued_total{source=\"upstream\"} %llu\n",
              ld(&m->vectors_auc), ld(&m->vectors_upstream));
  metrics_head(b, "mtchpd_vectors_stripped_total", "counter",
               "Vectors sent without CK and Kc (integrity-only "
               "subscribers).");
  app_mprintf(b, "mtchpd_vectors_stripped_total %llu\n",
              ld(&m->vectors_stripped));
  metrics_head(b, "mtchpd_kup_requests_total", "counter",
               "K_UP requests, by HTTP status (0: no answer, the TLS "
               "handshake failed or the client left).");
  for (i = 0; i < HP_KUP_NSTATUS; i++) {
    if (i < HP_KUP_NSTATUS - 1) {
      app_mprintf(b, "mtchpd_kup_requests_total{status=\"%d\"} %llu\n",
                  kup_status_code[i], ld(&m->kup[i]));
    } else {
      app_mprintf(b, "mtchpd_kup_requests_total{status=\"other\"} %llu\n",
                  ld(&m->kup[i]));
    }
  }
  metrics_head(b, "mtchpd_resyncs_total", "counter",
               "Send Auth Info requests carrying AUTS (resynchronisation), "
               "by answer.");
  app_mprintf(b,
              "mtchpd_resyncs_total{result=\"ok\"} %llu\n"
              "mtchpd_resyncs_total{result=\"failed\"} %llu\n",
              ld(&m->resync_ok), ld(&m->resync_failed));
  metrics_head(b, "mtchpd_vector_table_entries", "gauge",
               "Live (IMSI, RAND) -> (CK, IK) entries.");
  app_mprintf(b, "mtchpd_vector_table_entries %zu\n",
              hp_cache_expire(&d->cache, app_now_ms()));
  metrics_head(b, "mtchpd_gsup_peers", "gauge", "SGSN connections open now.");
  app_mprintf(b, "mtchpd_gsup_peers %d\n", atomic_load(&m->peers));
  metrics_head(b, "mtchpd_upstream_up", "gauge",
               "1 when the upstream HLR link is identified and usable "
               "(always 0 in built-in AuC mode).");
  app_mprintf(b, "mtchpd_upstream_up %d\n", atomic_load(&m->upstream_up));
}

/* ------------------------------------------------------------ thread */

static void *metrics_main(void *arg) {
  hp_daemon *d = arg;
  app_metrics_loop(d->metrics_fd, d->metrics_stop_fd, metrics_render, d, 4096);
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
