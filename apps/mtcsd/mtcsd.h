/*
 * mtcsd, the MTC server daemon: internal interfaces between its files.
 *
 *   main.c     options, start-up, signals, the accept loop, shutdown
 *   config.c   mtcsd.conf (docs/OPERATIONS.md) into an mtcsd_config
 *   loop.c     worker threads: epoll, TLS connections, frames, routing
 *   handler.c  a worker's server core: recv, answers, reload, results
 *   commit.c   the group-commit thread
 *   metrics.c  counters, histograms and the Prometheus endpoint
 *
 * Threads: the main thread accepts and hands connections round-robin to
 * `workers` worker threads.  Each worker owns its connections (epoll) and
 * one mtcsec_srv; an M2 is handled by the worker that owns its device
 * (hash of MTCdID), and its answer goes back to the connection's worker,
 * both through the target worker's inbox (mutex + eventfd).  Workers hand
 * their batches to the committer, which merges them into store commits and
 * wakes each worker back through its inbox.
 */
#ifndef MTCSD_H
#define MTCSD_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/server.h>
#include <mtcsec/store_sqlite.h>

#include "app.h"

/* Exit codes (those of the mtcsec tool). */
enum {
  MTCSD_EXIT_OK = 0,
  MTCSD_EXIT_FAIL = 1,   /* could not run (bind, threads) */
  MTCSD_EXIT_USAGE = 2,  /* bad command line */
  MTCSD_EXIT_CONFIG = 4, /* configuration or permission problem */
  MTCSD_EXIT_INTERNAL = 5
};

#define MTCSD_MAX_WORKERS 64
#define MTCSD_ADDR_MAX 256
#define MTCSD_MAX_GGSNS 64

/* ------------------------------------------------------------ config */

typedef struct mtcsd_config {
  char file[PATH_MAX]; /* the configuration file itself */
  uint8_t mtcs_id[MTCSEC_ID_LEN];
  char listen[MTCSD_ADDR_MAX];
  char metrics_listen[MTCSD_ADDR_MAX]; /* "" disables */
  char database[PATH_MAX];
  char kek_file[PATH_MAX];
  char ca[PATH_MAX];
  char crl[PATH_MAX]; /* "" none */
  char cert[PATH_MAX];
  char key[PATH_MAX];
  unsigned workers;
  int log_level;
  size_t dup_cache_size;
  uint32_t rate_per_minute;
  unsigned max_connections;
  unsigned idle_timeout;        /* seconds */
  size_t commit_max_batch;      /* transactions per store commit */
  unsigned commit_max_delay_ms; /* wait to fill a batch */
  unsigned shutdown_timeout;    /* seconds to drain on SIGTERM */
  /* Cellular mode (docs/CELLULAR-SYSTEM.md section 3). */
  char cellular_listen[MTCSD_ADDR_MAX]; /* "" disables */
  uint8_t allowed_ggsns[MTCSD_MAX_GGSNS][MTCSEC_ID_LEN];
  size_t nallowed_ggsns;
  char home_proxy[MTCSD_ADDR_MAX];
  char home_proxy_ca[PATH_MAX];
  char home_proxy_cert[PATH_MAX];
  char home_proxy_key[PATH_MAX];
  size_t cellular_max_contexts;
  unsigned cellular_key_lifetime; /* seconds */
  char cellular_db[PATH_MAX];     /* (IMSI, RAND) used (section 3.1) */
} mtcsd_config;

/**
 * Reads and validates path.  On error returns -1 with "file:line: what is
 * wrong" (or "file: ...") in err.
 */
int mtcsd_config_load(mtcsd_config *c, const char *path, char *err,
                      size_t errlen);

/** Names of keys whose change needs a restart, separated by spaces, that
 *  differ between a and b ("" if none). */
void mtcsd_config_restart_keys(const mtcsd_config *a, const mtcsd_config *b,
                               char *out, size_t outlen);

/**
 * The server TLS context of c: certificate, key, CA and, if configured, the
 * CRL (checked for the client certificate).  NULL with err on failure.
 */
SSL_CTX *mtcsd_tls_ctx(const mtcsd_config *c, char *err, size_t errlen);

/* ----------------------------------------------------------- metrics */

/** Latency, commit-time and batch-size histograms; K_UP fetch time. */
enum {
  MTCSD_HIST_LATENCY,
  MTCSD_HIST_COMMIT,
  MTCSD_HIST_BATCH,
  MTCSD_HIST_KUP,
  MTCSD_NHIST
};

void mtcsd_metrics_init(void);
/** One exchange result: errcode 0 for M3 (duplicate or not). */
void mtcsd_metrics_result(uint8_t errcode, int duplicate, uint64_t ms);
/** One store commit call. */
void mtcsd_metrics_commit(size_t n, uint64_t us, int failed);
void mtcsd_metrics_tls_failure(void);
/** A connection refused after or instead of its handshake. */
void mtcsd_metrics_refused(int identity);
void mtcsd_metrics_conn_delta(int delta);
/** Connections open now. */
int mtcsd_metrics_connections(void);

/* Cellular service (cellular.c).  Payload verdicts, the label values of
 * mtcsd_cellular_payloads_total. */
enum {
  MTCSD_CELL_OK,
  MTCSD_CELL_MIC,
  MTCSD_CELL_REPLAY,
  MTCSD_CELL_MALFORMED,
  MTCSD_CELL_UNKNOWN_CTX,
  MTCSD_CELL_EXPIRED,
  MTCSD_CELL_NRESULTS
};
/** Contexts with live keys: +1 opened, -1 closed or expired. */
void mtcsd_metrics_cell_contexts(int delta);
/** One CTX_OPEN answered with CTX_RESULT status (gi.h GI_STATUS_*). */
void mtcsd_metrics_cell_open(uint8_t status);
/** One UPLINK record: MTCSD_CELL_*. */
void mtcsd_metrics_cell_payload(int result);
/** One K_UP request to the home proxy took us microseconds. */
void mtcsd_metrics_cell_kup(uint64_t us);
/** A GGSN connection: +1 accepted (identity allowed), -1 closed. */
void mtcsd_metrics_cell_gi_delta(int delta);
/** A GGSN connection refused (certificate, identity, limit). */
void mtcsd_metrics_cell_gi_refused(void);

/**
 * Starts the /metrics thread on fd (a listening TCP socket, which it then
 * owns).  0 or -1.
 */
int mtcsd_metrics_start(int fd);
void mtcsd_metrics_stop(void);

/* ------------------------------------------------------------ workers */

typedef struct mtcsd_daemon mtcsd_daemon;
typedef struct mtcsd_worker mtcsd_worker;
typedef struct mtcsd_conn mtcsd_conn;

/** A message to a worker's inbox. */
enum {
  MSG_CONN = 1,   /* a new connection: fd, ssl, data = peer address */
  MSG_FRAME = 2,  /* an M2 for this worker's core: conn, ueid, data */
  MSG_ANSWER = 3, /* an answer for one of this worker's connections */
  MSG_RATE = 4,   /* new rate_per_minute (conn) */
  MSG_DRAIN = 5,  /* stop reading new work, answer, close connections */
  MSG_STOP = 6,   /* finish the core's work and exit */
  MSG_FORCE = 7,  /* close every connection now */
  MSG_CLOSED = 8  /* connection conn of another worker closed */
};

typedef struct mtcsd_msg {
  struct mtcsd_msg *next;
  uint8_t type;
  uint64_t conn;
  uint8_t ueid[MTCSEC_ID_LEN];
  int fd;
  SSL *ssl;
  size_t len;
  uint8_t data[];
} mtcsd_msg;

/** Allocates a message with len bytes of data (copied if data != NULL). */
mtcsd_msg *mtcsd_msg_new(uint8_t type, const void *data, size_t len);
/** Zeroizes m's data (an answer may be an M3, with DMKey) and frees m. */
void mtcsd_msg_free(mtcsd_msg *m);

/** Appends m to w's inbox and wakes w (takes ownership of m). */
void mtcsd_worker_post(mtcsd_worker *w, mtcsd_msg *m);

/** Called by the committer: w's batch is committed with per-txn results. */
void mtcsd_worker_commit_done(mtcsd_worker *w);

/**
 * Tells w that an answer for its connection conn was lost (no memory for
 * the message carrying it): w closes that connection, which would otherwise
 * wait for it forever.  Allocates nothing.
 */
void mtcsd_worker_lost(mtcsd_worker *w, uint64_t conn);

/* Lost answers a worker's inbox holds; more close every connection with
 * frames in flight. */
#define MTCSD_LOST_MAX 64

struct mtcsd_worker {
  unsigned idx;
  mtcsd_daemon *d;
  pthread_t thread;
  int epfd, evfd;

  pthread_mutex_t mu; /* inbox, commit_done and lost */
  mtcsd_msg *in_head, *in_tail;
  int commit_done;
  uint64_t lost[MTCSD_LOST_MAX]; /* connections that lost an answer */
  size_t nlost;
  int lost_overflow; /* more than MTCSD_LOST_MAX */
  int signalled;     /* the eventfd was written since the last inbox() */

  /* Owned by the worker thread. */
  mtcsec_crypto crypto;
  mtcsec_sqlite *db;
  mtcsec_srv *srv;
  mtcsec_srv_config srv_cfg;
  mtcsec_srv_batch batch;
  int batch_out;
  mtcsd_msg *backlog_head, *backlog_tail; /* frames the core could not take */
  size_t backlog_len;

  mtcsd_conn **conns; /* by slot */
  size_t nslots, nconns;
  uint32_t *free_slots;
  uint32_t *slot_gen; /* generation of each slot's current connection */
  size_t nfree;
  mtcsd_conn *dirty; /* connections with output to flush */
  int draining, stopping, drained_reported;
  mtcsec_tstamp last_scan;
};

/**
 * Creates a worker (crypto provider, database handle, server core).  0, or
 * -1 with err.
 */
int mtcsd_worker_init(mtcsd_worker *w, mtcsd_daemon *d, unsigned idx,
                      const uint8_t kek[MTCSEC_KEK_LEN], char *err,
                      size_t errlen);
void mtcsd_worker_free(mtcsd_worker *w);
void *mtcsd_worker_main(void *arg);

/* handler.c: the worker's core (called from loop.c). */
/** Hands a frame to the core now, or queues it in the backlog. */
void mtcsd_core_frame(mtcsd_worker *w, uint64_t conn,
                      const uint8_t ueid[MTCSEC_ID_LEN], const uint8_t *frame,
                      size_t len, mtcsd_msg *owned);
/** Moves answers out of the core, retries the backlog, starts a batch. */
void mtcsd_core_pump(mtcsd_worker *w);
/** The committer finished w's batch. */
void mtcsd_core_batch_done(mtcsd_worker *w);
/**
 * A connection closed (of w, or of another worker that routed frames here):
 * the core drops its queued answers and the backlog its frames.
 */
void mtcsd_core_conn_closed(mtcsd_worker *w, uint64_t conn);
/** Nonzero when the core has nothing in flight. */
int mtcsd_core_idle(const mtcsd_worker *w);
/** Creates the core with w->srv_cfg (once, at start-up). */
int mtcsd_core_create(mtcsd_worker *w);
/** A new rate_per_minute (SIGHUP): the core, its duplicate cache and its
 *  windows stay; only the rate buckets start afresh. */
void mtcsd_core_set_rate(mtcsd_worker *w, uint32_t rate_per_minute);

/* loop.c: delivering an answer frame to a connection of this worker. */
void mtcsd_conn_answer(mtcsd_worker *w, uint64_t conn, const uint8_t *frame,
                       size_t len);

/*
 * Fault injection, compiled only into the tests' copy of the daemon
 * (tests/daemon/CMakeLists.txt defines MTCSD_FAULT_INJECTION): an
 * allocation named by an environment variable fails for the answer frame
 * whose req_id is that variable's value.  Always 0 in mtcsd itself.
 */
#ifdef MTCSD_FAULT_INJECTION
int mtcsd_fi_nomem(const char *var, const uint8_t *frame, size_t len);
#  define MTCSD_FI_NOMEM(var, frame, len) mtcsd_fi_nomem(var, frame, len)
#else
#  define MTCSD_FI_NOMEM(var, frame, len) 0
#endif

/** The worker that owns connection id conn. */
static inline unsigned mtcsd_conn_worker(uint64_t conn) {
  return (unsigned)(conn & 0xff);
}

/* ---------------------------------------------------------- committer */

typedef struct mtcsd_committer {
  mtcsd_daemon *d;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  mtcsd_worker **posted; /* workers with a batch waiting, `workers` slots */
  size_t nposted;
  int stop;
  mtcsec_crypto crypto;
  mtcsec_sqlite *db;
  mtcsec_store_txn **txns; /* merged batch */
  int *results;
  size_t cap;
} mtcsd_committer;

int mtcsd_committer_init(mtcsd_committer *c, mtcsd_daemon *d,
                         const uint8_t kek[MTCSEC_KEK_LEN], char *err,
                         size_t errlen);
void mtcsd_committer_free(mtcsd_committer *c);
void *mtcsd_committer_main(void *arg);
/** Hands w's batch (w->batch) to the committer. */
void mtcsd_committer_post(mtcsd_committer *c, mtcsd_worker *w);
/** Asks the committer to exit once everything posted is committed. */
void mtcsd_committer_stop(mtcsd_committer *c);

/* ----------------------------------------------------------- cellular */

/*
 * cellular.c: the Gi service of cellular mode (docs/CELLULAR-SYSTEM.md
 * section 3), one thread with its own epoll loop, started only when
 * cellular_listen is set.  It owns its listener, its TLS contexts (the Gi
 * server context and the K_UP client's), its crypto provider and the
 * context table; nothing of it is shared with the workers.
 */
typedef struct mtcsd_cellular mtcsd_cellular;

/**
 * Builds the service from cfg (cfg->cellular_listen must be set): the Gi
 * TLS context (mtcsd_tls_ctx), the K_UP client, the crypto provider and the
 * context table, then binds cellular_listen (logged as
 * event=cellular_listening addr=...).  The thread is not started.  Returns
 * NULL with err and *exit_code = MTCSD_EXIT_CONFIG (certificates, keys,
 * home_proxy), MTCSD_EXIT_FAIL (cannot bind) or MTCSD_EXIT_INTERNAL.
 */
mtcsd_cellular *mtcsd_cellular_new(const mtcsd_config *cfg, int *exit_code,
                                   char *err, size_t errlen);

/** Starts the service's thread.  0 or -1. */
int mtcsd_cellular_start(mtcsd_cellular *c);

/**
 * Stops the thread (if started): closes the listener and every GGSN
 * connection (close_notify), zeroizes every context; then frees c.  Waits
 * for a K_UP request in flight (bounded by its timeout).  c may be NULL.
 */
void mtcsd_cellular_stop(mtcsd_cellular *c);

/**
 * SIGHUP, from the main thread: builds new TLS contexts and a new K_UP
 * client from nc and hands them, with allowed_ggsns, cellular_key_lifetime
 * and idle_timeout, to the thread (applied at its next wake-up: new
 * connections and new contexts use them; connections of GGSNs no longer
 * allowed are closed).  cellular_listen and cellular_max_contexts need a
 * restart (logged).  Returns 0, or -1 with err and nothing changed.
 */
int mtcsd_cellular_reload(mtcsd_cellular *c, const mtcsd_config *nc, char *err,
                          size_t errlen);

/** --check-config: builds (and frees) what mtcsd_cellular_new() would,
 *  without binding.  0, or -1 with err. */
int mtcsd_cellular_check(const mtcsd_config *cfg, char *err, size_t errlen);

/* ------------------------------------------------------------- daemon */

struct mtcsd_daemon {
  mtcsd_config cfg;
  mtcsd_worker *workers;
  unsigned nworkers;
  mtcsd_committer committer;
  atomic_uint idle_timeout_ms;
  atomic_uint drained; /* workers whose connections are all closed */
  int main_evfd;       /* workers wake the main thread (drained) */
};

#endif /* MTCSD_H */
