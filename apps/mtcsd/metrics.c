/*
 * Metrics: lock-free counters and histograms updated by every thread, and
 * a small thread that serves them in the Prometheus text format on
 * metrics_listen (HTTP/1.0, GET /metrics, one request per connection:
 * apps/common/metrics_http.c, shared with mtchpd).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <mtcsec/codec.h>

#include "metrics_http.h"
#include "mtcsd.h"

#define HIST_MAX_BUCKETS 12

typedef struct hist {
  const char *name;
  const char *help;
  uint64_t bounds[HIST_MAX_BUCKETS]; /* upper bounds, in raw units */
  double div;                        /* raw units per exported unit */
  _Atomic uint64_t b[HIST_MAX_BUCKETS];
  _Atomic uint64_t count;
  _Atomic uint64_t sum;
} hist;

static _Atomic uint64_t m_results[MTCSEC_ERRCODE_MAX + 1]; /* 0: ok */
static _Atomic uint64_t m_sessions, m_dups, m_tls_failures, m_refused_max,
  m_refused_identity, m_commit_failures, m_accepted;
static atomic_int m_conns;

static hist m_hist[MTCSD_NHIST] = {
  {"mtcsd_handshake_latency_seconds",
   "Time from an M2's arrival to its answer (ms resolution).",
   {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000},
   1000.0,
   {0},
   0,
   0},
  {"mtcsd_store_commit_seconds",
   "Duration of one durable store commit (group commit).",
   {250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 250000, 1000000,
    5000000},
   1000000.0,
   {0},
   0,
   0},
  {"mtcsd_store_batch_size",
   "Transactions per durable store commit.",
   {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096},
   1.0,
   {0},
   0,
   0},
  {"mtcsd_cellular_kup_fetch_seconds",
   "Duration of one K_UP request to the home proxy (connect, TLS, HTTP).",
   {1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000,
    2000000, 5000000},
   1000000.0,
   {0},
   0,
   0},
};

/* Cellular service: CTX_RESULT statuses 0x00..0x07 (gi.h; the label of
 * status N at index N, as gi_status_name() names it), payload verdicts. */
#define CELL_NSTATUS 8
static const char *const cell_status_label[CELL_NSTATUS] = {
  "ok",
  "not_authorized",
  "unknown_vector",
  "home_proxy_failed",
  "too_many_contexts",
  "malformed",
  "stale_rand",
  "internal",
};
static const char *const cell_payload_label[MTCSD_CELL_NRESULTS] = {
  "ok", "mic", "replay", "malformed", "unknown_ctx", "expired"};
static _Atomic uint64_t m_cell_open[CELL_NSTATUS];
static _Atomic uint64_t m_cell_payload[MTCSD_CELL_NRESULTS];
static _Atomic uint64_t m_cell_gi_refused, m_cell_gi_total;
static atomic_int m_cell_contexts, m_cell_gi;

static void hist_observe(hist *h, uint64_t v) {
  size_t i;
  for (i = 0; i < HIST_MAX_BUCKETS; i++) {
    if (v <= h->bounds[i]) {
      atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
      break;
    }
  }
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

void mtcsd_metrics_init(void) {}

void mtcsd_metrics_result(uint8_t errcode, int duplicate, uint64_t ms) {
  if (errcode > MTCSEC_ERRCODE_MAX) {
    return;
  }
  atomic_fetch_add_explicit(&m_results[errcode], 1, memory_order_relaxed);
  if (errcode == 0) {
    if (duplicate) {
      atomic_fetch_add_explicit(&m_dups, 1, memory_order_relaxed);
    } else {
      atomic_fetch_add_explicit(&m_sessions, 1, memory_order_relaxed);
    }
  }
  hist_observe(&m_hist[MTCSD_HIST_LATENCY], ms);
}

void mtcsd_metrics_commit(size_t n, uint64_t us, int failed) {
  hist_observe(&m_hist[MTCSD_HIST_COMMIT], us);
  hist_observe(&m_hist[MTCSD_HIST_BATCH], (uint64_t)n);
  if (failed) {
    atomic_fetch_add_explicit(&m_commit_failures, 1, memory_order_relaxed);
  }
}

void mtcsd_metrics_tls_failure(void) {
  atomic_fetch_add_explicit(&m_tls_failures, 1, memory_order_relaxed);
}

void mtcsd_metrics_refused(int identity) {
  atomic_fetch_add_explicit(identity ? &m_refused_identity : &m_refused_max, 1,
                            memory_order_relaxed);
}

void mtcsd_metrics_conn_delta(int delta) {
  if (delta > 0) {
    atomic_fetch_add_explicit(&m_accepted, (uint64_t)delta,
                              memory_order_relaxed);
  }
  atomic_fetch_add(&m_conns, delta);
}

int mtcsd_metrics_connections(void) { return atomic_load(&m_conns); }

void mtcsd_metrics_cell_contexts(int delta) {
  atomic_fetch_add(&m_cell_contexts, delta);
}

void mtcsd_metrics_cell_open(uint8_t status) {
  if (status < CELL_NSTATUS) {
    atomic_fetch_add_explicit(&m_cell_open[status], 1, memory_order_relaxed);
  }
}

void mtcsd_metrics_cell_payload(int result) {
  if (result >= 0 && result < MTCSD_CELL_NRESULTS) {
    atomic_fetch_add_explicit(&m_cell_payload[result], 1, memory_order_relaxed);
  }
}

void mtcsd_metrics_cell_kup(uint64_t us) {
  hist_observe(&m_hist[MTCSD_HIST_KUP], us);
}

void mtcsd_metrics_cell_gi_delta(int delta) {
  if (delta > 0) {
    atomic_fetch_add_explicit(&m_cell_gi_total, (uint64_t)delta,
                              memory_order_relaxed);
  }
  atomic_fetch_add(&m_cell_gi, delta);
}

void mtcsd_metrics_cell_gi_refused(void) {
  atomic_fetch_add_explicit(&m_cell_gi_refused, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ output */

static uint64_t ld(_Atomic uint64_t *a) {
  return atomic_load_explicit(a, memory_order_relaxed);
}

static void counter(app_mbuf *b, const char *name, const char *help,
                    uint64_t v) {
  app_mprintf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name,
              name, (unsigned long long)v);
}

static void hist_print(app_mbuf *b, hist *h) {
  uint64_t cum = 0;
  size_t i;
  app_mprintf(b, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help,
              h->name);
  for (i = 0; i < HIST_MAX_BUCKETS; i++) {
    cum += ld(&h->b[i]);
    app_mprintf(b, "%s_bucket{le=\"%g\"} %llu\n", h->name,
                (double)h->bounds[i] / h->div, (unsigned long long)cum);
  }
  app_mprintf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %g\n%s_count %llu\n",
              h->name, (unsigned long long)ld(&h->count), h->name,
              (double)ld(&h->sum) / h->div, h->name,
              (unsigned long long)ld(&h->count));
}

/* The cellular service's metrics (docs/CELLULAR-SYSTEM.md section 3);
 * zeros when cellular_listen is off. */
static void cell_render(app_mbuf *b) {
  int i;
  app_mprintf(b,
              "# HELP mtcsd_cellular_contexts PDP contexts with live payload "
              "keys.\n# TYPE mtcsd_cellular_contexts gauge\n"
              "mtcsd_cellular_contexts %d\n",
              atomic_load(&m_cell_contexts));
  app_mprintf(b, "# HELP mtcsd_cellular_context_opens_total CTX_OPEN requests "
                 "answered, by CTX_RESULT status.\n"
                 "# TYPE mtcsd_cellular_context_opens_total counter\n");
  for (i = 0; i < CELL_NSTATUS; i++) {
    app_mprintf(b, "mtcsd_cellular_context_opens_total{result=\"%s\"} %llu\n",
                cell_status_label[i], (unsigned long long)ld(&m_cell_open[i]));
  }
  app_mprintf(b, "# HELP mtcsd_cellular_payloads_total UPLINK records, by "
                 "verdict (only ok records are answered).\n"
                 "# TYPE mtcsd_cellular_payloads_total counter\n");
  for (i = 0; i < MTCSD_CELL_NRESULTS; i++) {
    app_mprintf(b, "mtcsd_cellular_payloads_total{result=\"%s\"} %llu\n",
                cell_payload_label[i],
                (unsigned long long)ld(&m_cell_payload[i]));
  }
  hist_print(b, &m_hist[MTCSD_HIST_KUP]);
  app_mprintf(
    b,
    "# HELP mtcsd_cellular_gi_connections GGSN connections open now.\n"
    "# TYPE mtcsd_cellular_gi_connections gauge\n"
    "mtcsd_cellular_gi_connections %d\n",
    atomic_load(&m_cell_gi));
  counter(b, "mtcsd_cellular_gi_connections_total",
          "GGSN connections accepted (identity allowed).",
          ld(&m_cell_gi_total));
  counter(b, "mtcsd_cellular_gi_refused_total",
          "GGSN connections refused (certificate, identity not in "
          "allowed_ggsns, limit, handshake failure).",
          ld(&m_cell_gi_refused));
}

static void metrics_render(void *arg, app_mbuf *b) {
  int i;
  (void)arg;
  app_mprintf(b,
              "# HELP mtcsd_handshakes_total M2 exchanges answered, by result "
              "(ok = M3, else the ERR code).\n"
              "# TYPE mtcsd_handshakes_total counter\n");
  for (i = 0; i <= MTCSEC_ERRCODE_MAX; i++) {
    app_mprintf(b, "mtcsd_handshakes_total{result=\"%s\"} %llu\n",
                i == 0 ? "ok" : mtcsec_errcode_name(i),
                (unsigned long long)ld(&m_results[i]));
  }
  counter(b, "mtcsd_sessions_issued_total",
          "Sessions (DMKeys) issued and recorded.", ld(&m_sessions));
  counter(b, "mtcsd_duplicates_total",
          "Identical M2 retries answered again with the same M3.", ld(&m_dups));
  hist_print(b, &m_hist[MTCSD_HIST_LATENCY]);
  hist_print(b, &m_hist[MTCSD_HIST_COMMIT]);
  hist_print(b, &m_hist[MTCSD_HIST_BATCH]);
  counter(b, "mtcsd_store_commit_failures_total",
          "Store commits that failed (exchanges answered INTERNAL).",
          ld(&m_commit_failures));
  app_mprintf(b,
              "# HELP mtcsd_connections TLS connections open now.\n"
              "# TYPE mtcsd_connections gauge\nmtcsd_connections %d\n",
              atomic_load(&m_conns));
  counter(b, "mtcsd_connections_total", "TLS connections accepted.",
          ld(&m_accepted));
  counter(b, "mtcsd_tls_handshake_failures_total",
          "TLS handshakes that failed (certificate refused, protocol error, "
          "timeout, peer gone).",
          ld(&m_tls_failures));
  app_mprintf(
    b,
    "# HELP mtcsd_connections_refused_total Connections refused by "
    "mtcsd.\n# TYPE mtcsd_connections_refused_total counter\n"
    "mtcsd_connections_refused_total{reason=\"max_connections\"} %llu\n"
    "mtcsd_connections_refused_total{reason=\"identity\"} %llu\n",
    (unsigned long long)ld(&m_refused_max),
    (unsigned long long)ld(&m_refused_identity));
  cell_render(b);
}

/* ------------------------------------------------------------ thread */

static int metrics_fd = -1, metrics_stop_fd = -1;
static pthread_t metrics_thread;
static int metrics_running;

static void *metrics_main(void *arg) {
  (void)arg;
  app_metrics_loop(metrics_fd, metrics_stop_fd, metrics_render, NULL, 8192);
  return NULL;
}

int mtcsd_metrics_start(int fd) {
  metrics_fd = fd;
  metrics_stop_fd = eventfd(0, EFD_CLOEXEC);
  if (metrics_stop_fd < 0) {
    return -1;
  }
  if (pthread_create(&metrics_thread, NULL, metrics_main, NULL) != 0) {
    close(metrics_stop_fd);
    metrics_stop_fd = -1;
    return -1;
  }
  metrics_running = 1;
  return 0;
}

void mtcsd_metrics_stop(void) {
  uint64_t one = 1;
  if (!metrics_running) {
    return;
  }
  if (write(metrics_stop_fd, &one, sizeof(one)) < 0) {
    /* The thread also ends when the process does. */
  }
  pthread_join(metrics_thread, NULL);
  close(metrics_stop_fd);
  close(metrics_fd);
  metrics_running = 0;
}
