/*
 * The cellular service (docs/CELLULAR-SYSTEM.md section 3): GGSNs connect
 * over TLS 1.3 with a client certificate whose CN is their ID (one of
 * allowed_ggsns), and exchange Gi frames (apps/common/gi.h) with mtcsd:
 *
 *   CTX_OPEN(IMSI, RAND) -> the channel state of (IMSI, RAND) if mtcsd
 *     holds it, else K_UP from the home proxy over HTTPS
 *     (apps/common/kup_client.h) -> mtcsec_up_keys_derive() -> one
 *     mtcsec_chan per (IMSI, RAND), recorded in cellular_db -> CTX_RESULT
 *   UPLINK(record) -> mtcsec_chan_open() -> the built-in application ->
 *     DOWNLINK("ack " || payload)
 *   CTX_CLOSE -> the context ends; its channel state stays for a re-open
 *
 * One thread, one epoll loop, non-blocking TLS connections.  The K_UP
 * request of a CTX_OPEN is blocking inside this thread (bounded by
 * KUP_CLIENT_TIMEOUT_MS): while it runs, other GGSN connections wait.  This
 * is the testbed's trade-off, documented in CELLULAR-SYSTEM.md.
 *
 * Channel state belongs to (IMSI, RAND), not to a Gi context (section
 * 3.1, "Re-opens").  The payload keys depend only on K_UP(CK, IK, MTCsID,
 * RAND) and the IMSI, so a second channel for the same (IMSI, RAND) would
 * start again at seq 0 with an empty replay window: old uplink records
 * would be accepted again and downlink records sealed under a (key, nonce)
 * pair already used.  Hence:
 *  - one cell_ctx per (IMSI, RAND), found through a hash on (IMSI, RAND);
 *    a CTX_OPEN for an (IMSI, RAND) it holds re-binds it to the new Gi
 *    context (tx seq and uplink window continue, no K_UP fetch), but only
 *    for the GGSN ID (certificate CN) that first opened it: RAND travels in
 *    clear on the radio, so another allowed GGSN could otherwise take the
 *    state over and end that GGSN's context (refused with 0x01,
 *    reason=other_ggsn; the same GGSN on a new connection may re-bind);
 *  - while bound, also found through a hash on (GGSN connection, TEID) (no
 *    scan per packet) and listed on its connection; CTX_CLOSE and the loss
 *    of the connection only unbind it;
 *  - live states sit on a list in expiry order (the sweep pops from the
 *    head), expired ones (keys erased at once) on a FIFO; the
 *    table holds cellular_max_contexts states at most, and only expired
 *    ones are evicted (oldest first): full of unexpired state, a new
 *    (IMSI, RAND) gets 0x04;
 *  - each (IMSI, RAND) is recorded durably in cellular_db (SQLite, WAL,
 *    synchronous = FULL: fsync'd at commit) before CTX_RESULT 0x00, so an
 *    (IMSI, RAND) used before a restart, or whose state was evicted, gets
 *    0x06 (stale RAND: re-attach) and never fresh state.
 * States are zeroized when expired (keys), evicted and at exit.
 *
 * Hot path (UPLINK): a hash lookup, mtcsec_chan_open() and
 * mtcsec_chan_seal() into the service's scratch buffers, and an append to
 * the connection's output buffer; no allocation, no new EVP context and no
 * database access.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <sqlite3.h>

#include <mtcsec/cellular.h>
#include <mtcsec/channel.h>

#include "gi.h"
#include "kup_client.h"
#include "mtcsd.h"

#define CELL_MAX_CONNS 256             /* GGSN connections at once */
#define CELL_IN_CAP (2 * GI_FRAME_MAX) /* input: at most one partial frame */
#define CELL_OUT_INIT 16384
#define CELL_OUT_HIGH (256 * 1024) /* stop reading above this backlog */
#define CELL_OUT_MAX (1024 * 1024) /* close the connection beyond this */
#define CELL_TICK_MS 200
#define CELL_MAX_EVENTS 64
#define CELL_ECHO_MAX 255 /* plaintext bytes echoed after "ack " */
#define CELL_SUITE MTCSEC_SUITE_CMAC_AES128 /* AES-128-CCM, 8-byte tag */
#define CELL_KEY_ID 0
/* cellular_db: the longest a home proxy serves K_UP for a vector.  mtchpd
 * keeps a vector vector_lifetime seconds after issuing it, in memory, and
 * its configuration refuses more than 86400 (CELLULAR-HOME-PROXY.md); a row
 * is kept this long plus cellular_key_lifetime after first use. */
#define CELL_HP_VECTOR_LIFETIME_MAX 86400u
#define CELL_DB_PURGE_MS (10u * 60u * 1000u) /* purge old rows this often */
#define CELL_DB_BUSY_MS 2000                 /* wait for a lock at most */
#define CELL_DB_VERSION 1                    /* PRAGMA user_version */
#define CELL_RAND_HASH_LEN 32                /* SHA-256 */
#define CELL_DB_APP_ID 0x6d746372            /* PRAGMA application_id, "mtcr" */

enum { CONN_HANDSHAKE = 0, CONN_OPEN = 1, CONN_CLOSED = 2 };

typedef struct cell_conn cell_conn;

/*
 * The channel state of one (IMSI, RAND), and the Gi context bound to it, if
 * any (conn != NULL): see the comment at the top.
 */
typedef struct cell_ctx {
  struct cell_ctx *knext;         /* (IMSI, RAND) hash chain */
  struct cell_ctx *hnext;         /* (connection, TEID) chain, while bound */
  struct cell_ctx *cprev, *cnext; /* the bound connection's contexts */
  struct cell_ctx *lprev, *lnext; /* live list or expired FIFO */
  cell_conn *conn;                /* NULL: no Gi context bound */
  uint32_t teid;
  uint8_t expired;              /* keys erased; kept to count late records */
  uint8_t owner[MTCSEC_ID_LEN]; /* the GGSN ID that first opened it */
  uint8_t tbcd[MTCSEC_IMSI_TBCD_LEN];
  uint8_t rand[MTCSEC_3GPP_RAND_LEN];
  char imsi[MTCSEC_IMSI_MAX_DIGITS + 1];
  mtcsec_chan ch;
} cell_ctx;

struct cell_conn {
  mtcsd_cellular *svc;
  uint64_t id;
  int fd;
  SSL *ssl;
  int state;
  uint8_t ggsn[MTCSEC_ID_LEN];
  char ggsn_hex[17];
  char peer[64];
  const char *refuse; /* set by the verify callback */
  uint8_t in[CELL_IN_CAP];
  size_t inlen;
  uint8_t *out;
  size_t outlen, outoff, outcap;
  int wpending; /* length of an SSL_write to repeat, 0 if none */
  uint32_t events;
  mtcsec_tstamp hs_deadline, read_deadline, write_deadline;
  mtcsec_tstamp paused_at;
  uint64_t frames;
  size_t nctx;
  cell_ctx *ctxs;
  unsigned id_ok : 1;
  unsigned want_write : 1;       /* output waits for POLLOUT */
  unsigned read_wants_write : 1; /* SSL_read asked for POLLOUT */
  unsigned paused : 1;           /* backpressure */
  unsigned resume : 1;           /* backpressure over: read again */
  cell_conn *prev, *next;        /* all connections */
  cell_conn *dead_next;
};

/* What a SIGHUP hands to the thread. */
typedef struct cell_reload {
  SSL_CTX *tls;
  kup_client *kup;
  uint8_t allowed[MTCSD_MAX_GGSNS][MTCSEC_ID_LEN];
  size_t nallowed;
  unsigned lifetime_s;
  unsigned idle_s;
} cell_reload;

struct mtcsd_cellular {
  /* Fixed at start. */
  char listen_conf[MTCSD_ADDR_MAX]; /* cellular_listen as configured */
  char listen_addr[MTCSD_ADDR_MAX]; /* the bound address */
  size_t max_contexts;
  int listen_fd, evfd, ep;
  pthread_t thread;
  int started;

  /* Shared with the main thread (mu). */
  pthread_mutex_t mu;
  int stop;
  cell_reload *pending;

  /* Owned by the thread. */
  SSL_CTX *tls;
  kup_client *kup;
  mtcsec_crypto crypto;
  int have_crypto;
  uint8_t allowed[MTCSD_MAX_GGSNS][MTCSEC_ID_LEN];
  size_t nallowed;
  unsigned lifetime_s;
  unsigned idle_ms;

  cell_ctx **buckets;  /* by (connection, TEID): bound states */
  cell_ctx **kbuckets; /* by (IMSI, RAND): every state */
  size_t mask;         /* buckets - 1 (a power of two), for both */
  size_t nentries, nlive;
  cell_ctx *live_head, *live_tail, *exp_head, *exp_tail;

  /* cellular_db: every (IMSI, RAND) given channel state (section 3.1). */
  char db_path[PATH_MAX];
  sqlite3 *db;
  sqlite3_stmt *db_sel, *db_ins, *db_purge;
  mtcsec_tstamp db_last_purge;

  cell_conn *conns, *dead;
  size_t nconns;
  int any_resume; /* some connection has resume set */
  uint64_t next_conn_id;

  uint8_t pt[GI_BODY_MAX];                                /* plaintext */
  uint8_t reply[4 + CELL_ECHO_MAX];                       /* "ack " || pt */
  uint8_t frame[GI_HDR_LEN + 4 + CELL_ECHO_MAX + 7 + 16]; /* DOWNLINK */
};

/* ------------------------------------------------------------- helpers */

static void cell_wake(int fd) {
  uint64_t one = 1;
  while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

/* "addr:port" of a socket (local or peer). */
static void cell_sock_name(int fd, int local, char *out, size_t outlen) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  char host[NI_MAXHOST], port[NI_MAXSERV];
  int rv = local ? getsockname(fd, (struct sockaddr *)&ss, &sl)
                 : getpeername(fd, (struct sockaddr *)&ss, &sl);
  if (rv != 0 ||
      getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port,
                  sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0 ||
      (size_t)snprintf(out, outlen,
                       ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
                       port) >= outlen) {
    snprintf(out, outlen, "?");
  }
}

static int cell_allowed(const mtcsd_cellular *s,
                        const uint8_t id[MTCSEC_ID_LEN]) {
  size_t i;
  for (i = 0; i < s->nallowed; i++) {
    if (memcmp(s->allowed[i], id, MTCSEC_ID_LEN) == 0) {
      return 1;
    }
  }
  return 0;
}

/*
 * The GGSN ID of a certificate: exactly one subject commonName of exactly
 * 16 hex digits (the rule of app_tls_peer_ueid(), on an X509 the verify
 * callback holds).  0 or -1.
 */
static int cell_cert_id(X509 *cert, uint8_t id[MTCSEC_ID_LEN]) {
  X509_NAME *name = cert != NULL ? X509_get_subject_name(cert) : NULL;
  const ASN1_STRING *data;
  unsigned char *utf8 = NULL;
  char text[2 * MTCSEC_ID_LEN + 1];
  int idx, n, rv = -1;

  if (name == NULL) {
    return -1;
  }
  idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0) {
    return -1;
  }
  data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  if (data == NULL) {
    return -1;
  }
  n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n == 2 * MTCSEC_ID_LEN) {
    memcpy(text, utf8, (size_t)n);
    text[n] = '\0';
    if (strlen(text) == (size_t)n && app_parse_id(text, id) == 0) {
      rv = 0;
    }
  }
  OPENSSL_free(utf8);
  return rv;
}

/*
 * Certificate check during the handshake: besides the chain (preverify),
 * the leaf's CN must be an allowed GGSN ID.  Failing here makes OpenSSL
 * send a TLS alert, so a refused GGSN learns it at once (section 3).
 */
static int cell_verify_cb(int ok, X509_STORE_CTX *st) {
  SSL *ssl =
    X509_STORE_CTX_get_ex_data(st, SSL_get_ex_data_X509_STORE_CTX_idx());
  cell_conn *c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
  uint8_t id[MTCSEC_ID_LEN];

  if (!ok || c == NULL || X509_STORE_CTX_get_error_depth(st) != 0) {
    return ok;
  }
  if (cell_cert_id(X509_STORE_CTX_get_current_cert(st), id) != 0) {
    c->refuse = "no_identity";
    X509_STORE_CTX_set_error(st, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  memcpy(c->ggsn, id, MTCSEC_ID_LEN);
  app_format_id(c->ggsn_hex, id);
  if (!cell_allowed(c->svc, id)) {
    c->refuse = "not_allowed";
    X509_STORE_CTX_set_error(st, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  c->id_ok = 1;
  return 1;
}

/* ------------------------------------------------------- context table */

static uint64_t cell_mix(uint64_t x) {
  /* splitmix64 finalizer */
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

static size_t ctx_hash(const mtcsd_cellular *s, uint64_t conn, uint32_t teid) {
  return (size_t)cell_mix(conn * UINT64_C(0x9e3779b97f4a7c15) ^ teid) & s->mask;
}

/* RANDs that reach the table were chosen by the AuC (128 random bits,
 * TS 33.102 6.3.2) and accepted by the home proxy, so nobody can aim many
 * entries at one chain; a GGSN choosing a RAND only walks a short one. */
static size_t key_hash(const mtcsd_cellular *s,
                       const uint8_t tbcd[MTCSEC_IMSI_TBCD_LEN],
                       const uint8_t rand[MTCSEC_3GPP_RAND_LEN]) {
  uint64_t a = 0, b = 0, t = 0;
  memcpy(&a, rand, 8);
  memcpy(&b, rand + 8, 8);
  memcpy(&t, tbcd, 8);
  return (size_t)cell_mix(a ^ cell_mix(b ^ t)) & s->mask;
}

/* The state bound to (c, teid), or NULL. */
static cell_ctx *ctx_find(const mtcsd_cellular *s, const cell_conn *c,
                          uint32_t teid) {
  cell_ctx *x = s->buckets[ctx_hash(s, c->id, teid)];
  for (; x != NULL; x = x->hnext) {
    if (x->conn == c && x->teid == teid) {
      return x;
    }
  }
  return NULL;
}

/* The state of (IMSI, RAND), or NULL.  Neither is secret (RAND crosses
 * the radio in clear), so memcmp is fine. */
static cell_ctx *state_find(const mtcsd_cellular *s,
                            const uint8_t tbcd[MTCSEC_IMSI_TBCD_LEN],
                            const uint8_t rand[MTCSEC_3GPP_RAND_LEN]) {
  cell_ctx *x = s->kbuckets[key_hash(s, tbcd, rand)];
  for (; x != NULL; x = x->knext) {
    if (memcmp(x->rand, rand, sizeof(x->rand)) == 0 &&
        memcmp(x->tbcd, tbcd, sizeof(x->tbcd)) == 0) {
      return x;
    }
  }
  return NULL;
}

static void fifo_unlink(cell_ctx **head, cell_ctx **tail, cell_ctx *x) {
  if (x->lprev != NULL) {
    x->lprev->lnext = x->lnext;
  } else {
    *head = x->lnext;
  }
  if (x->lnext != NULL) {
    x->lnext->lprev = x->lprev;
  } else {
    *tail = x->lprev;
  }
  x->lprev = x->lnext = NULL;
}

static void fifo_append(cell_ctx **head, cell_ctx **tail, cell_ctx *x) {
  x->lnext = NULL;
  x->lprev = *tail;
  if (*tail != NULL) {
    (*tail)->lnext = x;
  } else {
    *head = x;
  }
  *tail = x;
}

/* Binds x to the Gi context (c, teid), which has none. */
static void ctx_bind(mtcsd_cellular *s, cell_ctx *x, cell_conn *c,
                     uint32_t teid) {
  size_t h = ctx_hash(s, c->id, teid);
  x->conn = c;
  x->teid = teid;
  x->hnext = s->buckets[h];
  s->buckets[h] = x;
  x->cprev = NULL;
  x->cnext = c->ctxs;
  if (c->ctxs != NULL) {
    c->ctxs->cprev = x;
  }
  c->ctxs = x;
  c->nctx++;
}

/* Ends x's Gi context (if any); the state itself stays in the table. */
static void ctx_unbind(mtcsd_cellular *s, cell_ctx *x) {
  cell_conn *c = x->conn;
  cell_ctx **pp;
  if (c == NULL) {
    return;
  }
  pp = &s->buckets[ctx_hash(s, c->id, x->teid)];
  while (*pp != NULL && *pp != x) {
    pp = &(*pp)->hnext;
  }
  if (*pp == x) {
    *pp = x->hnext;
  }
  if (x->cprev != NULL) {
    x->cprev->cnext = x->cnext;
  } else {
    c->ctxs = x->cnext;
  }
  if (x->cnext != NULL) {
    x->cnext->cprev = x->cprev;
  }
  c->nctx--;
  x->conn = NULL;
  x->hnext = x->cprev = x->cnext = NULL;
  x->teid = 0;
}

/* Erases x's keys and moves it to the expired FIFO. */
static void ctx_expire(mtcsd_cellular *s, cell_ctx *x) {
  if (x->expired) {
    return;
  }
  mtcsec_chan_deinit(&x->ch);
  fifo_unlink(&s->live_head, &s->live_tail, x);
  fifo_append(&s->exp_head, &s->exp_tail, x);
  x->expired = 1;
  s->nlive--;
  mtcsd_metrics_cell_contexts(-1);
  if (x->conn != NULL) {
    app_log(MTCSEC_LOG_DEBUG,
            "event=cellular_context_expired ggsn=%s ctx=%u imsi=%s "
            "keys=erased",
            x->conn->ggsn_hex, (unsigned)x->teid, x->imsi);
  } else {
    app_log(MTCSEC_LOG_DEBUG,
            "event=cellular_context_expired ggsn=- ctx=- imsi=%s keys=erased",
            x->imsi);
  }
}

/* Unbinds x, unlinks it from everything, zeroizes and frees it. */
static void ctx_remove(mtcsd_cellular *s, cell_ctx *x) {
  cell_ctx **pp = &s->kbuckets[key_hash(s, x->tbcd, x->rand)];
  ctx_unbind(s, x);
  while (*pp != NULL && *pp != x) {
    pp = &(*pp)->knext;
  }
  if (*pp == x) {
    *pp = x->knext;
  }
  if (x->expired) {
    fifo_unlink(&s->exp_head, &s->exp_tail, x);
  } else {
    fifo_unlink(&s->live_head, &s->live_tail, x);
    s->nlive--;
    mtcsd_metrics_cell_contexts(-1);
  }
  s->nentries--;
  mtcsec_chan_deinit(&x->ch);
  mtcsec_zeroize(x, sizeof(*x));
  free(x);
}

/* Puts x on the live list, which is in expiry order: with one lifetime
 * that is opening order (an append); after a SIGHUP that shortened
 * cellular_key_lifetime, x goes before the longer-lived states, so that the
 * sweep (which stops at the first unexpired head) still finds it. */
static void live_insert(mtcsd_cellular *s, cell_ctx *x) {
  cell_ctx *p = s->live_tail;
  while (p != NULL && p->ch.expiry > x->ch.expiry) {
    p = p->lprev;
  }
  x->lprev = p;
  x->lnext = p != NULL ? p->lnext : s->live_head;
  if (x->lnext != NULL) {
    x->lnext->lprev = x;
  } else {
    s->live_tail = x;
  }
  if (p != NULL) {
    p->lnext = x;
  } else {
    s->live_head = x;
  }
}

/* Adds the new state x (tbcd, rand and ch set) to the table, unbound. */
static void ctx_insert(mtcsd_cellular *s, cell_ctx *x) {
  size_t h = key_hash(s, x->tbcd, x->rand);
  x->conn = NULL;
  x->knext = s->kbuckets[h];
  s->kbuckets[h] = x;
  live_insert(s, x);
  s->nentries++;
  s->nlive++;
  mtcsd_metrics_cell_contexts(1);
}

/* Removes every state (exit). */
static size_t ctx_erase_all(mtcsd_cellular *s) {
  size_t n = 0;
  while (s->live_head != NULL) {
    ctx_remove(s, s->live_head);
    n++;
  }
  while (s->exp_head != NULL) {
    ctx_remove(s, s->exp_head);
    n++;
  }
  return n;
}

/* Expires the live states whose lifetime is over (the list is in expiry
 * order).  Every 200 ms and before each CTX_OPEN; mtcsec_chan_open() also
 * refuses every record after its expiry. */
static void ctx_sweep(mtcsd_cellular *s, mtcsec_tstamp now) {
  while (s->live_head != NULL && s->live_head->ch.expiry <= now) {
    ctx_expire(s, s->live_head);
  }
}

/* ---------------------------------------------------------- cellular_db */

/*
 * cellular_db (section 3.1): one row per (IMSI, RAND) that was given channel
 * state, (imsi TEXT, rand_sha256 BLOB, first_use INTEGER unix seconds), so
 * that mtcsd never issues fresh state for it again, across restarts too.
 * RAND is not secret but is stored as its SHA-256 (it need not be kept).
 * WAL with synchronous = FULL: an INSERT is on disk (fsync'd) when
 * sqlite3_step() returns.  Used by the cellular thread only (opened before
 * it starts, closed after it ends); never on the UPLINK path.
 */

static int db_rand_hash(const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                        uint8_t out[CELL_RAND_HASH_LEN]) {
  unsigned int n = 0;
  if (EVP_Digest(rand, MTCSEC_3GPP_RAND_LEN, out, &n, EVP_sha256(), NULL) !=
        1 ||
      n != CELL_RAND_HASH_LEN) {
    ERR_clear_error();
    return -1;
  }
  return 0;
}

static void db_close(mtcsd_cellular *s) {
  sqlite3_finalize(s->db_sel);
  sqlite3_finalize(s->db_ins);
  sqlite3_finalize(s->db_purge);
  s->db_sel = s->db_ins = s->db_purge = NULL;
  if (s->db != NULL) {
    sqlite3_close(s->db);
    s->db = NULL;
  }
}

/* An integer PRAGMA's value; 0 or -1. */
static int db_pragma_int(sqlite3 *db, const char *sql, int *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
  }
  sqlite3_finalize(st);
  return -1;
}

static const char cell_db_schema[] =
  "CREATE TABLE IF NOT EXISTS cellular_rand ("
  " imsi TEXT NOT NULL,"
  " rand_sha256 BLOB NOT NULL CHECK (length(rand_sha256) = 32),"
  " first_use INTEGER NOT NULL,"
  " PRIMARY KEY (imsi, rand_sha256)) WITHOUT ROWID;"
  "CREATE INDEX IF NOT EXISTS cellular_rand_first_use"
  " ON cellular_rand (first_use);"
  "PRAGMA application_id = 1836344178;" /* CELL_DB_APP_ID */
  "PRAGMA user_version = 1;";

/*
 * Checks that db is a cellular_db this mtcsd knows, or an empty file, before
 * anything is written to it: another program's database (mtcsd.db,
 * hlr.db: another application_id, or other tables) is never touched.
 * 0, or -1 with a sentence in err.
 */
static int db_identify(sqlite3 *db, const char *path, char *err,
                       size_t errlen) {
  int ver = -1, appid = 0, others = 0;
  if (db_pragma_int(db, "PRAGMA user_version", &ver) != 0 ||
      db_pragma_int(db, "PRAGMA application_id", &appid) != 0 ||
      db_pragma_int(db,
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                    "AND name <> 'cellular_rand'",
                    &others) != 0) {
    snprintf(err, errlen, "cellular_db %s: cannot read it: %s", path,
             sqlite3_errmsg(db));
    return -1;
  }
  if (appid != CELL_DB_APP_ID && (appid != 0 || others != 0)) {
    snprintf(err, errlen,
             "cellular_db %s: is another program's database (application_id "
             "%d, %d other tables); give cellular_db a file of its own",
             path, appid, others);
    return -1;
  }
  if (ver > CELL_DB_VERSION) {
    snprintf(err, errlen,
             "cellular_db %s: schema version %d was written by a newer "
             "mtcsd; run that version or point cellular_db elsewhere",
             path, ver);
    return -1;
  }
  return 0;
}

/*
 * Opens (creating it 0600 when absent: IMSIs are personal data) and checks
 * path, and prepares the statements.  0, or -1 with a sentence in err.
 */
static int db_open(mtcsd_cellular *s, const char *path, char *err,
                   size_t errlen) {
  char *emsg = NULL;
  const char *what = "open";
  int fd, rc;
  sqlite3_stmt *st = NULL;

  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(err, errlen,
             "cellular_db %s: cannot open or create it: %s (its directory must "
             "exist and be writable by mtcsd)",
             path, strerror(errno));
    return -1;
  }
  close(fd);
  rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE, NULL);
  if (rc != SQLITE_OK) {
    goto fail;
  }
  sqlite3_busy_timeout(s->db, CELL_DB_BUSY_MS);
  if (db_identify(s->db, path, err, errlen) != 0) {
    db_close(s);
    return -1;
  }
  what = "set WAL mode";
  rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
  if (rc != SQLITE_OK || (rc = sqlite3_step(st)) != SQLITE_ROW ||
      strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) {
      rc = SQLITE_ERROR;
    }
    goto fail;
  }
  sqlite3_finalize(st);
  what = "set synchronous = FULL";
  rc = sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    goto fail;
  }
  what = "create its table";
  rc = sqlite3_exec(s->db, cell_db_schema, NULL, NULL, &emsg);
  sqlite3_free(emsg);
  if (rc != SQLITE_OK) {
    goto fail;
  }
  what = "prepare its statements";
  rc = sqlite3_prepare_v2(s->db,
                          "SELECT 1 FROM cellular_rand WHERE imsi = ?1 AND "
                          "rand_sha256 = ?2",
                          -1, &s->db_sel, NULL);
  if (rc == SQLITE_OK) {
    rc = sqlite3_prepare_v2(s->db,
                            "INSERT INTO cellular_rand (imsi, rand_sha256, "
                            "first_use) VALUES (?1, ?2, ?3)",
                            -1, &s->db_ins, NULL);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_prepare_v2(s->db,
                            "DELETE FROM cellular_rand WHERE first_use < ?1",
                            -1, &s->db_purge, NULL);
  }
  if (rc != SQLITE_OK) {
    goto fail;
  }
  return 0;

fail:
  snprintf(err, errlen, "cellular_db %s: cannot %s: %s", path, what,
           s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
  db_close(s);
  return -1;
}

/* --check-config: the file opens and is a cellular_db this mtcsd knows (or
 * empty); when it does not exist yet, its directory is writable.  Creates
 * nothing.  0, or -1 with err. */
static int db_check(const char *path, char *err, size_t errlen) {
  sqlite3 *db = NULL;
  int rv = -1;

  if (access(path, F_OK) != 0) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
      snprintf(dir, sizeof(dir), ".");
    } else {
      snprintf(dir, sizeof(dir), "%.*s",
               slash == path ? 1 : (int)(slash - path), path);
    }
    if (access(dir, W_OK | X_OK) != 0) {
      snprintf(err, errlen, "cellular_db %s: cannot be created: %s: %s", path,
               dir, strerror(errno));
      return -1;
    }
    return 0;
  }
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cellular_db %s: cannot open it: %s", path,
             db != NULL ? sqlite3_errmsg(db) : "out of memory");
  } else {
    rv = db_identify(db, path, err, errlen);
  }
  sqlite3_close(db);
  return rv;
}

/* Was (imsi, hash) given channel state before?  1 yes, 0 no, -1 error
 * (with a sentence in detail). */
static int db_used(mtcsd_cellular *s, const char *imsi,
                   const uint8_t hash[CELL_RAND_HASH_LEN], char *detail,
                   size_t detaillen) {
  int rc;
  sqlite3_reset(s->db_sel);
  sqlite3_bind_text(s->db_sel, 1, imsi, -1, SQLITE_STATIC);
  sqlite3_bind_blob(s->db_sel, 2, hash, CELL_RAND_HASH_LEN, SQLITE_STATIC);
  rc = sqlite3_step(s->db_sel);
  sqlite3_reset(s->db_sel);
  sqlite3_clear_bindings(s->db_sel);
  if (rc == SQLITE_ROW) {
    return 1;
  }
  if (rc == SQLITE_DONE) {
    return 0;
  }
  /* A long path is cut (the return value is used: truncation is fine). */
  if (snprintf(detail, detaillen, "cellular_db %s: cannot read: %s", s->db_path,
               sqlite3_errstr(rc)) < 0) {
    detail[0] = '\0';
  }
  return -1;
}

/* Records (imsi, hash) with the wall-clock time; on disk when this
 * returns 0.  1 when it was there already, -1 on error (with detail). */
static int db_record(mtcsd_cellular *s, const char *imsi,
                     const uint8_t hash[CELL_RAND_HASH_LEN], char *detail,
                     size_t detaillen) {
  int rc;
  sqlite3_reset(s->db_ins);
  sqlite3_bind_text(s->db_ins, 1, imsi, -1, SQLITE_STATIC);
  sqlite3_bind_blob(s->db_ins, 2, hash, CELL_RAND_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(s->db_ins, 3, (sqlite3_int64)time(NULL));
  rc = sqlite3_step(s->db_ins);
  sqlite3_reset(s->db_ins);
  sqlite3_clear_bindings(s->db_ins);
  if (rc == SQLITE_DONE) {
    return 0;
  }
  if (rc == SQLITE_CONSTRAINT) {
    snprintf(detail, detaillen,
             "this RAND is already recorded in cellular_db: the MS must "
             "attach again");
    return 1;
  }
  if (snprintf(detail, detaillen,
               "cellular_db %s: cannot record the RAND: %s (no state kept)",
               s->db_path, sqlite3_errstr(rc)) < 0) {
    detail[0] = '\0';
  }
  return -1;
}

/*
 * Deletes the rows whose first use is older than the longest a home proxy
 * serves a RAND (CELL_HP_VECTOR_LIFETIME_MAX) plus cellular_key_lifetime:
 * such a RAND gets 404 from the proxy (0x02) and never fresh state.  At
 * start and every CELL_DB_PURGE_MS.
 */
static void db_purge(mtcsd_cellular *s, mtcsec_tstamp now, int at_start) {
  sqlite3_int64 cutoff = (sqlite3_int64)time(NULL) -
                         (sqlite3_int64)CELL_HP_VECTOR_LIFETIME_MAX -
                         (sqlite3_int64)s->lifetime_s;
  int rc, n;
  s->db_last_purge = now;
  sqlite3_reset(s->db_purge);
  sqlite3_bind_int64(s->db_purge, 1, cutoff);
  rc = sqlite3_step(s->db_purge);
  n = rc == SQLITE_DONE ? sqlite3_changes(s->db) : 0;
  sqlite3_reset(s->db_purge);
  if (rc != SQLITE_DONE) {
    app_log(MTCSEC_LOG_WARN,
            "event=cellular_db_purge_failed path=%s err=\"%s\"", s->db_path,
            sqlite3_errstr(rc));
  } else if (n > 0 || at_start) {
    app_log(at_start ? MTCSEC_LOG_INFO : MTCSEC_LOG_DEBUG,
            "event=cellular_db_purged path=%s rows=%d keep_s=%llu", s->db_path,
            n,
            (unsigned long long)CELL_HP_VECTOR_LIFETIME_MAX +
              (unsigned long long)s->lifetime_s);
  }
}

/* ---------------------------------------------------------- connections */

static void conn_set_events(mtcsd_cellular *s, cell_conn *c, uint32_t ev) {
  struct epoll_event e;
  if (c->state == CONN_CLOSED || ev == c->events) {
    return;
  }
  memset(&e, 0, sizeof(e));
  e.events = ev;
  e.data.ptr = c;
  if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &e) == 0) {
    c->events = ev;
  }
}

/* The events an open connection waits for. */
static void conn_update(mtcsd_cellular *s, cell_conn *c) {
  uint32_t ev = 0;
  if (c->state != CONN_OPEN) {
    return;
  }
  if (!c->paused) {
    ev |= EPOLLIN;
  }
  if (c->want_write || c->read_wants_write) {
    ev |= EPOLLOUT;
  }
  conn_set_events(s, c, ev);
}

static void conn_close(mtcsd_cellular *s, cell_conn *c, const char *reason,
                       int graceful) {
  size_t n = 0;
  if (c->state == CONN_CLOSED) {
    return;
  }
  /* Its Gi contexts end; their channel state stays for a re-open. */
  while (c->ctxs != NULL) {
    ctx_unbind(s, c->ctxs);
    n++;
  }
  if (c->state == CONN_OPEN) {
    app_log(MTCSEC_LOG_INFO,
            "event=gi_closed conn=%llu peer=%s ggsn=%s reason=%s "
            "contexts_unbound=%zu frames=%llu",
            (unsigned long long)c->id, c->peer, c->ggsn_hex, reason, n,
            (unsigned long long)c->frames);
    mtcsd_metrics_cell_gi_delta(-1);
    if (graceful) {
      ERR_clear_error();
      (void)SSL_shutdown(c->ssl); /* close_notify, one try */
    }
  }
  ERR_clear_error();
  epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  SSL_free(c->ssl);
  c->ssl = NULL;
  if (c->out != NULL) {
    mtcsec_zeroize(c->out, c->outcap);
    free(c->out);
    c->out = NULL;
  }
  mtcsec_zeroize(c->in, sizeof(c->in));
  c->state = CONN_CLOSED;
  if (c->prev != NULL) {
    c->prev->next = c->next;
  } else {
    s->conns = c->next;
  }
  if (c->next != NULL) {
    c->next->prev = c->prev;
  }
  s->nconns--;
  c->dead_next = s->dead;
  s->dead = c;
}

static void conn_reap(mtcsd_cellular *s) {
  while (s->dead != NULL) {
    cell_conn *c = s->dead;
    s->dead = c->dead_next;
    free(c);
  }
}

/* Appends a frame to c's output.  0, or -1 (c closed). */
static int conn_queue(mtcsd_cellular *s, cell_conn *c, const uint8_t *p,
                      size_t n) {
  if (c->outlen + n > c->outcap) {
    size_t ncap = c->outcap != 0 ? c->outcap : CELL_OUT_INIT;
    uint8_t *no;
    while (ncap < c->outlen + n) {
      ncap *= 2;
    }
    if (ncap > CELL_OUT_MAX) {
      conn_close(s, c, "write_backlog", 0);
      return -1;
    }
    /* The whole buffer moves (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER); the old
     * copy is wiped before it is freed. */
    no = malloc(ncap);
    if (no == NULL) {
      conn_close(s, c, "out_of_memory", 0);
      return -1;
    }
    if (c->outlen > 0) {
      memcpy(no, c->out, c->outlen);
    }
    if (c->out != NULL) {
      mtcsec_zeroize(c->out, c->outcap);
      free(c->out);
    }
    c->out = no;
    c->outcap = ncap;
  }
  memcpy(c->out + c->outlen, p, n);
  c->outlen += n;
  return 0;
}

/* Writes what c's output holds.  Leaves c closed on a fatal error. */
static void conn_flush(mtcsd_cellular *s, cell_conn *c) {
  mtcsec_tstamp now = app_now_ms();
  while (c->state == CONN_OPEN && c->outoff < c->outlen) {
    size_t left = c->outlen - c->outoff;
    int n = c->wpending != 0 ? c->wpending : (int)(left > 65536 ? 65536 : left);
    int w, e;
    ERR_clear_error();
    w = SSL_write(c->ssl, c->out + c->outoff, n);
    if (w > 0) {
      c->wpending = 0;
      c->outoff += (size_t)w;
      c->write_deadline = now + s->idle_ms;
      continue;
    }
    e = SSL_get_error(c->ssl, w);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      c->wpending = n; /* repeat with the same arguments */
      c->want_write = 1;
      if (c->write_deadline == 0) {
        c->write_deadline = now + s->idle_ms;
      }
      conn_update(s, c);
      return;
    }
    conn_close(s, c, "write_error", 0);
    return;
  }
  if (c->state != CONN_OPEN) {
    return;
  }
  c->outoff = c->outlen = 0;
  c->want_write = 0;
  c->write_deadline = 0;
  if (c->paused) {
    /* Backpressure over: frames may wait in the input buffer and records in
     * OpenSSL's, which epoll does not report again; the loop reads them
     * (not from here, which conn_read() itself calls). */
    c->paused = 0;
    c->resume = 1;
    s->any_resume = 1;
    app_log(MTCSEC_LOG_DEBUG,
            "event=gi_backpressure conn=%llu ggsn=%s action=resume "
            "paused_ms=%llu",
            (unsigned long long)c->id, c->ggsn_hex,
            (unsigned long long)(now - c->paused_at));
  }
  conn_update(s, c);
}

/* --------------------------------------------------------------- frames */

static void cell_send(mtcsd_cellular *s, cell_conn *c, uint8_t type,
                      uint32_t teid, const uint8_t *body, size_t bodylen) {
  mtcsec_ssize n =
    gi_encode(type, teid, body, bodylen, s->frame, sizeof(s->frame));
  if (n < 0) {
    app_log(MTCSEC_LOG_ERROR, "event=gi_encode_failed type=%s err=%s",
            gi_type_name(type), mtcsec_strerror((int)n));
    return;
  }
  (void)conn_queue(s, c, s->frame, (size_t)n);
  if (c->state == CONN_OPEN && !c->paused &&
      c->outlen - c->outoff >= CELL_OUT_HIGH) {
    c->paused = 1;
    c->paused_at = app_now_ms();
    app_log(MTCSEC_LOG_DEBUG,
            "event=gi_backpressure conn=%llu ggsn=%s action=pause "
            "pending=%zu",
            (unsigned long long)c->id, c->ggsn_hex, c->outlen - c->outoff);
  }
}

/* CTX_OPEN (section 3.1, "Re-opens"): the state mtcsd holds for (IMSI,
 * RAND), re-bound; else, for an (IMSI, RAND) never used, K_UP from the home
 * proxy, a new channel, recorded in cellular_db before the answer. */
static void cell_ctx_open(mtcsd_cellular *s, cell_conn *c, uint32_t teid,
                          const uint8_t *body) {
  const uint8_t *tbcd = body, *rand = body + MTCSEC_IMSI_TBCD_LEN;
  uint8_t kup[MTCSEC_KUP_LEN], status = GI_STATUS_OK;
  uint8_t hash[CELL_RAND_HASH_LEN];
  mtcsec_up_keys keys;
  char imsi[MTCSEC_IMSI_MAX_DIGITS + 1] = "-";
  cell_ctx *old, *x = NULL;
  kup_result kr;
  mtcsec_tstamp now = app_now_ms();
  int rv, replaced, resumed = 0;
  const char *reason = NULL;

  memset(&kr, 0, sizeof(kr));
  memset(&keys, 0, sizeof(keys));
  memset(kup, 0, sizeof(kup));
  /* Expiry first, so that what follows sees which states are over. */
  ctx_sweep(s, now);
  /* Any CTX_OPEN ends the Gi context with that TEID; its channel state
   * stays with its (IMSI, RAND). */
  old = ctx_find(s, c, teid);
  replaced = old != NULL;
  if (old != NULL) {
    ctx_unbind(s, old);
  }
  if (mtcsec_imsi_from_tbcd(tbcd, imsi, sizeof(imsi)) < 0) {
    snprintf(imsi, sizeof(imsi), "-");
    status = GI_STATUS_MALFORMED;
    goto answer;
  }
  x = state_find(s, tbcd, rand);
  if (x != NULL) {
    if (x->expired) {
      /* Its keys are gone and must not come back under seq 0. */
      status = GI_STATUS_STALE_RAND;
      snprintf(kr.detail, sizeof(kr.detail),
               "the keys of this RAND expired (cellular_key_lifetime): the "
               "MS must attach again");
      x = NULL;
      goto answer;
    }
    if (memcmp(x->owner, c->ggsn, MTCSEC_ID_LEN) != 0) {
      /* Another GGSN: RAND is in clear on the radio, so this may be anyone
       * with an allowed certificate.  The owner's binding stays. */
      char owner[17];
      app_format_id(owner, x->owner);
      status = GI_STATUS_NOT_AUTHORIZED;
      reason = "other_ggsn";
      snprintf(kr.detail, sizeof(kr.detail),
               "this (IMSI, RAND) belongs to GGSN %s; only it may re-open it",
               owner);
      x = NULL;
      goto answer;
    }
    if (x->conn != NULL) {
      snprintf(kr.detail, sizeof(kr.detail),
               "channel state taken over from conn %llu ctx %u",
               (unsigned long long)x->conn->id, (unsigned)x->teid);
      ctx_unbind(s, x);
    }
    ctx_bind(s, x, c, teid);
    resumed = 1;
    x = NULL;
    goto answer;
  }
  if (db_rand_hash(rand, hash) != 0) {
    status = GI_STATUS_INTERNAL;
    snprintf(kr.detail, sizeof(kr.detail), "cannot hash RAND (OpenSSL)");
    goto answer;
  }
  rv = db_used(s, imsi, hash, kr.detail, sizeof(kr.detail));
  if (rv != 0) {
    status = rv > 0 ? GI_STATUS_STALE_RAND : GI_STATUS_INTERNAL;
    if (rv > 0) {
      snprintf(kr.detail, sizeof(kr.detail),
               "this RAND was used before (restart or eviction) and its "
               "channel state is gone: the MS must attach again");
    }
    goto answer;
  }
  if (s->nentries >= s->max_contexts) {
    if (s->exp_head == NULL) {
      /* Unexpired state is never evicted: without it a re-open of that
       * (IMSI, RAND) could only be refused (0x06), and without cellular_db
       * it would get a second channel from seq 0. */
      status = GI_STATUS_TOO_MANY;
      goto answer;
    }
    ctx_remove(s, s->exp_head); /* the oldest expired state */
  }
  x = calloc(1, sizeof(*x));
  if (x == NULL) {
    status = GI_STATUS_INTERNAL;
    snprintf(kr.detail, sizeof(kr.detail), "out of memory");
    goto answer;
  }
  rv = kup_client_fetch(s->kup, imsi, rand, kup, &kr);
  if (rv != KUP_ERR_INVALID) {
    mtcsd_metrics_cell_kup(kr.elapsed_us);
  }
  switch (rv) {
  case KUP_OK:
    break;
  case KUP_ERR_REFUSED:
    status = GI_STATUS_NOT_AUTHORIZED;
    goto answer;
  case KUP_ERR_UNKNOWN:
    status = GI_STATUS_UNKNOWN_VECTOR;
    goto answer;
  default:
    status = GI_STATUS_HP_FAILED;
    goto answer;
  }
  rv = mtcsec_up_keys_derive(&s->crypto, kup, tbcd, &keys);
  mtcsec_zeroize(kup, sizeof(kup));
  now = app_now_ms();
  if (rv == 0) {
    /* mtcsd is the network end: it sends downlink, receives uplink. */
    rv = mtcsec_chan_init_keys(&x->ch, &s->crypto, CELL_SUITE, keys.dl_key,
                               keys.dl_iv, keys.ul_key, keys.ul_iv, CELL_KEY_ID,
                               now + (mtcsec_tstamp)s->lifetime_s * 1000u);
  }
  mtcsec_zeroize(&keys, sizeof(keys));
  if (rv != 0) {
    status = GI_STATUS_HP_FAILED;
    snprintf(kr.detail, sizeof(kr.detail), "key derivation failed: %s",
             mtcsec_strerror(rv));
    goto answer;
  }
  /* Durable before anyone can use the keys: after a restart this
   * (IMSI, RAND) then gets 0x06, never seq 0 again.  On failure nothing
   * is kept (the keys go with x below). */
  rv = db_record(s, imsi, hash, kr.detail, sizeof(kr.detail));
  if (rv != 0) {
    status = rv > 0 ? GI_STATUS_STALE_RAND : GI_STATUS_INTERNAL;
    goto answer;
  }
  memcpy(x->tbcd, tbcd, sizeof(x->tbcd));
  memcpy(x->rand, rand, sizeof(x->rand));
  memcpy(x->owner, c->ggsn, sizeof(x->owner));
  snprintf(x->imsi, sizeof(x->imsi), "%s", imsi);
  ctx_insert(s, x);
  ctx_bind(s, x, c, teid);
  x = NULL;

answer:
  mtcsec_zeroize(kup, sizeof(kup));
  mtcsec_zeroize(&keys, sizeof(keys));
  if (x != NULL) {
    mtcsec_chan_deinit(&x->ch);
    free(x);
  }
  mtcsd_metrics_cell_open(status);
  app_log(
    status == GI_STATUS_OK ? MTCSEC_LOG_INFO : MTCSEC_LOG_WARN,
    "event=cellular_context_open conn=%llu ggsn=%s ctx=%u imsi=%s "
    "result=%s status=0x%02x replaced=%d resumed=%d kup_ms=%llu%s%s%s%s%s",
    (unsigned long long)c->id, c->ggsn_hex, (unsigned)teid, imsi,
    gi_status_name(status), status, replaced, resumed,
    (unsigned long long)(kr.elapsed_us / 1000u),
    reason != NULL ? " reason=" : "", reason != NULL ? reason : "",
    kr.detail[0] != '\0' ? " detail=\"" : "", kr.detail,
    kr.detail[0] != '\0' ? "\"" : "");
  cell_send(s, c, GI_CTX_RESULT, teid, &status, 1);
}

/* CTX_CLOSE ends the Gi context; the channel state stays (re-open). */
static void cell_ctx_close(mtcsd_cellular *s, cell_conn *c, uint32_t teid) {
  cell_ctx *x = ctx_find(s, c, teid);
  app_log(MTCSEC_LOG_DEBUG,
          "event=cellular_context_close ggsn=%s ctx=%u imsi=%s known=%d",
          c->ggsn_hex, (unsigned)teid, x != NULL ? x->imsi : "-", x != NULL);
  if (x != NULL) {
    ctx_unbind(s, x);
  }
}

static void cell_drop(cell_conn *c, uint32_t teid, int result,
                      const char *reason) {
  mtcsd_metrics_cell_payload(result);
  app_log(MTCSEC_LOG_DEBUG,
          "event=cellular_payload_dropped ggsn=%s ctx=%u reason=%s",
          c->ggsn_hex, (unsigned)teid, reason);
}

/*
 * The built-in server application: logs the uplink (never its contents)
 * and answers "ack " followed by at most CELL_ECHO_MAX bytes of it.
 */
static void cell_app_uplink(mtcsd_cellular *s, cell_conn *c, cell_ctx *x,
                            size_t ptlen) {
  size_t echo = ptlen < CELL_ECHO_MAX ? ptlen : CELL_ECHO_MAX;
  uint8_t rec[sizeof(s->reply) + 7 + 16];
  mtcsec_ssize n;

  app_log(MTCSEC_LOG_DEBUG,
          "event=cellular_uplink ggsn=%s ctx=%u imsi=%s len=%zu", c->ggsn_hex,
          (unsigned)x->teid, x->imsi, ptlen);
  memcpy(s->reply, "ack ", 4);
  memcpy(s->reply + 4, s->pt, echo);
  n = mtcsec_chan_seal(&x->ch, rec, sizeof(rec), s->reply, 4 + echo,
                       app_now_ms());
  mtcsec_zeroize(s->reply, 4 + echo);
  if (n < 0) {
    app_log(MTCSEC_LOG_WARN,
            "event=cellular_downlink_failed ggsn=%s ctx=%u imsi=%s err=%s",
            c->ggsn_hex, (unsigned)x->teid, x->imsi, mtcsec_strerror((int)n));
    if (n == MTCSEC_ERR_EXPIRED) {
      ctx_expire(s, x);
    }
    return;
  }
  cell_send(s, c, GI_DOWNLINK, x->teid, rec, (size_t)n);
}

static void cell_uplink(mtcsd_cellular *s, cell_conn *c, uint32_t teid,
                        const uint8_t *rec, size_t reclen) {
  cell_ctx *x = ctx_find(s, c, teid);
  mtcsec_ssize n;

  if (x == NULL) {
    cell_drop(c, teid, MTCSD_CELL_UNKNOWN_CTX, "unknown_ctx");
    return;
  }
  if (x->expired) {
    cell_drop(c, teid, MTCSD_CELL_EXPIRED, "expired");
    return;
  }
  n = mtcsec_chan_open(&x->ch, s->pt, sizeof(s->pt), rec, reclen, app_now_ms());
  if (n >= 0) {
    mtcsd_metrics_cell_payload(MTCSD_CELL_OK);
    cell_app_uplink(s, c, x, (size_t)n);
    mtcsec_zeroize(s->pt, (size_t)n);
    return;
  }
  switch (n) {
  case MTCSEC_ERR_MIC:
    cell_drop(c, teid, MTCSD_CELL_MIC, "mic");
    break;
  case MTCSEC_ERR_REPLAY:
    cell_drop(c, teid, MTCSD_CELL_REPLAY, "replay");
    break;
  case MTCSEC_ERR_EXPIRED:
    cell_drop(c, teid, MTCSD_CELL_EXPIRED, "expired");
    ctx_expire(s, x);
    break;
  case MTCSEC_ERR_MALFORMED:
  case MTCSEC_ERR_MISMATCH:
  case MTCSEC_ERR_NOBUF:
    cell_drop(c, teid, MTCSD_CELL_MALFORMED, "malformed");
    break;
  default:
    /* Not a verdict on the record: the provider failed. */
    app_log(MTCSEC_LOG_ERROR,
            "event=cellular_uplink_failed ggsn=%s ctx=%u err=%s", c->ggsn_hex,
            (unsigned)teid, mtcsec_strerror((int)n));
    break;
  }
}

/* Handles the complete frames in c's input buffer. */
static void conn_process(mtcsd_cellular *s, cell_conn *c) {
  size_t off = 0;
  while (c->state == CONN_OPEN && !c->paused) {
    gi_frame f;
    mtcsec_ssize n = gi_decode(&f, c->in + off, c->inlen - off);
    if (n == 0) {
      break;
    }
    if (n < 0) {
      app_log(
        MTCSEC_LOG_WARN,
        "event=gi_protocol_error conn=%llu ggsn=%s reason=malformed_frame",
        (unsigned long long)c->id, c->ggsn_hex);
      conn_close(s, c, "malformed_frame", 1);
      return;
    }
    off += (size_t)n;
    c->frames++;
    switch (f.type) {
    case GI_CTX_OPEN:
      cell_ctx_open(s, c, f.ctx, f.body);
      break;
    case GI_CTX_CLOSE:
      cell_ctx_close(s, c, f.ctx);
      break;
    case GI_UPLINK:
      cell_uplink(s, c, f.ctx, f.body, f.bodylen);
      break;
    default:
      app_log(MTCSEC_LOG_WARN,
              "event=gi_protocol_error conn=%llu ggsn=%s "
              "reason=unexpected_frame type=%s",
              (unsigned long long)c->id, c->ggsn_hex, gi_type_name(f.type));
      conn_close(s, c, "unexpected_frame", 1);
      return;
    }
  }
  if (c->state != CONN_OPEN) {
    return;
  }
  if (off > 0) {
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
  }
  if (c->inlen == 0) {
    c->read_deadline = 0;
  } else if (c->read_deadline == 0) {
    c->read_deadline = app_now_ms() + s->idle_ms;
  }
}

static void conn_read(mtcsd_cellular *s, cell_conn *c) {
  c->read_wants_write = 0;
  while (c->state == CONN_OPEN && !c->paused) {
    int r, e;
    ERR_clear_error();
    r = SSL_read(c->ssl, c->in + c->inlen, (int)(sizeof(c->in) - c->inlen));
    if (r > 0) {
      c->inlen += (size_t)r;
      conn_process(s, c);
      continue;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
      break;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      c->read_wants_write = 1;
      break;
    }
    conn_close(s, c, e == SSL_ERROR_ZERO_RETURN ? "eof" : "connection_lost",
               e == SSL_ERROR_ZERO_RETURN);
    return;
  }
  if (c->state == CONN_OPEN && c->outlen > c->outoff) {
    conn_flush(s, c);
  }
  if (c->state == CONN_OPEN) {
    conn_update(s, c);
  }
}

static void conn_refused(cell_conn *c, const char *reason, const char *detail) {
  mtcsd_metrics_cell_gi_refused();
  app_log(MTCSEC_LOG_WARN,
          "event=gi_refused peer=%s ggsn=%s reason=%s detail=\"%s\"", c->peer,
          c->ggsn_hex, reason, detail);
}

static void conn_handshake(mtcsd_cellular *s, cell_conn *c) {
  int r, e;
  ERR_clear_error();
  r = SSL_accept(c->ssl);
  if (r == 1) {
    uint8_t id[MTCSEC_ID_LEN];
    /* The callback accepted the leaf; check the verified session too. */
    if (!c->id_ok || app_tls_peer_ueid(c->ssl, id) != 0 ||
        memcmp(id, c->ggsn, MTCSEC_ID_LEN) != 0 || !cell_allowed(s, id)) {
      conn_refused(c, "no_identity", "no allowed GGSN ID after handshake");
      conn_close(s, c, "refused", 0);
      return;
    }
    c->state = CONN_OPEN;
    c->hs_deadline = 0;
    c->out = malloc(CELL_OUT_INIT);
    if (c->out == NULL) {
      conn_close(s, c, "out_of_memory", 0);
      return;
    }
    c->outcap = CELL_OUT_INIT;
    mtcsd_metrics_cell_gi_delta(1);
    app_log(MTCSEC_LOG_INFO, "event=gi_connected conn=%llu peer=%s ggsn=%s",
            (unsigned long long)c->id, c->peer, c->ggsn_hex);
    c->events = 0; /* force the update below */
    conn_set_events(s, c, EPOLLIN);
    conn_read(s, c); /* frames may have come with the handshake */
    return;
  }
  e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ) {
    conn_set_events(s, c, EPOLLIN);
    return;
  }
  if (e == SSL_ERROR_WANT_WRITE) {
    conn_set_events(s, c, EPOLLOUT);
    return;
  }
  {
    char detail[200];
    long vr = SSL_get_verify_result(c->ssl);
    unsigned long le = ERR_peek_last_error();
    if (c->refuse != NULL) {
      snprintf(detail, sizeof(detail), "%s",
               strcmp(c->refuse, "not_allowed") == 0
                 ? "GGSN ID not in allowed_ggsns"
                 : "certificate CN is not 16 hex digits");
    } else if (vr != X509_V_OK) {
      snprintf(detail, sizeof(detail), "certificate refused: %s",
               X509_verify_cert_error_string(vr));
    } else if (le != 0) {
      ERR_error_string_n(le, detail, sizeof(detail));
    } else {
      snprintf(detail, sizeof(detail), "peer closed during the handshake");
    }
    conn_refused(c, c->refuse != NULL ? c->refuse : "tls_handshake_failed",
                 detail);
  }
  conn_close(s, c, "refused", 0);
}

static void cell_accept(mtcsd_cellular *s) {
  for (;;) {
    struct epoll_event e;
    cell_conn *c;
    int one = 1;
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        app_log(MTCSEC_LOG_WARN, "event=gi_accept_failed err=\"%s\"",
                strerror(errno));
      }
      return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->svc = s;
    c->fd = fd;
    snprintf(c->ggsn_hex, sizeof(c->ggsn_hex), "-");
    cell_sock_name(fd, 0, c->peer, sizeof(c->peer));
    if (s->nconns >= CELL_MAX_CONNS) {
      conn_refused(c, "max_connections", "too many GGSN connections");
      close(fd);
      free(c);
      continue;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ERR_clear_error();
    c->ssl = SSL_new(s->tls);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
      SSL_free(c->ssl);
      close(fd);
      free(c);
      ERR_clear_error();
      continue;
    }
    SSL_set_accept_state(c->ssl);
    SSL_set_app_data(c->ssl, c);
    SSL_set_verify(c->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                   cell_verify_cb);
    c->id = s->next_conn_id++;
    c->state = CONN_HANDSHAKE;
    c->hs_deadline = app_now_ms() + s->idle_ms;
    memset(&e, 0, sizeof(e));
    e.events = EPOLLIN;
    e.data.ptr = c;
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
      SSL_free(c->ssl);
      close(fd);
      free(c);
      continue;
    }
    c->events = EPOLLIN;
    c->next = s->conns;
    if (s->conns != NULL) {
      s->conns->prev = c;
    }
    s->conns = c;
    s->nconns++;
  }
}

/* --------------------------------------------------------------- thread */

static void cell_timeouts(mtcsd_cellular *s, mtcsec_tstamp now) {
  cell_conn *c, *next;
  for (c = s->conns; c != NULL; c = next) {
    next = c->next;
    if (c->state == CONN_HANDSHAKE && now >= c->hs_deadline) {
      conn_refused(c, "handshake_timeout", "TLS handshake not completed");
      conn_close(s, c, "handshake_timeout", 0);
    } else if (c->state == CONN_OPEN && c->read_deadline != 0 &&
               now >= c->read_deadline) {
      conn_close(s, c, "idle_timeout", 0);
    } else if (c->state == CONN_OPEN && c->write_deadline != 0 &&
               now >= c->write_deadline) {
      conn_close(s, c, "write_timeout", 0);
    }
  }
}

/* Applies a SIGHUP's new settings (in the thread). */
static void cell_apply(mtcsd_cellular *s, cell_reload *r) {
  cell_conn *c, *next;
  SSL_CTX_free(s->tls);
  s->tls = r->tls;
  kup_client_free(s->kup);
  s->kup = r->kup;
  memcpy(s->allowed, r->allowed, sizeof(s->allowed));
  s->nallowed = r->nallowed;
  s->lifetime_s = r->lifetime_s;
  s->idle_ms = r->idle_s * 1000u;
  free(r);
  for (c = s->conns; c != NULL; c = next) {
    next = c->next;
    if (c->state == CONN_OPEN && !cell_allowed(s, c->ggsn)) {
      conn_close(s, c, "not_allowed", 1);
    }
  }
  app_log(MTCSEC_LOG_INFO,
          "event=cellular_reloaded allowed_ggsns=%zu key_lifetime=%u "
          "home_proxy=%s certificates=reloaded",
          s->nallowed, s->lifetime_s, kup_client_addr(s->kup));
}

static void cell_shutdown(mtcsd_cellular *s) {
  size_t n, conns = s->nconns;
  while (s->conns != NULL) {
    conn_close(s, s->conns, "shutdown", 1);
  }
  conn_reap(s);
  n = ctx_erase_all(s);
  app_log(MTCSEC_LOG_INFO,
          "event=cellular_stopped connections=%zu contexts_erased=%zu", conns,
          n);
}

static void *cell_main(void *arg) {
  mtcsd_cellular *s = arg;
  mtcsec_tstamp last_tick = 0;

  app_log(MTCSEC_LOG_INFO,
          "event=cellular_ready addr=%s allowed_ggsns=%zu max_contexts=%zu "
          "key_lifetime=%u home_proxy=%s",
          s->listen_addr, s->nallowed, s->max_contexts, s->lifetime_s,
          kup_client_addr(s->kup));
  for (;;) {
    struct epoll_event evs[CELL_MAX_EVENTS];
    cell_reload *r;
    int n, i, stop;
    mtcsec_tstamp now;

    n = epoll_wait(s->ep, evs, CELL_MAX_EVENTS, CELL_TICK_MS);
    if (n < 0 && errno != EINTR) {
      app_log(MTCSEC_LOG_ERROR, "event=cellular_epoll_failed err=\"%s\"",
              strerror(errno));
      break;
    }
    pthread_mutex_lock(&s->mu);
    stop = s->stop;
    r = s->pending;
    s->pending = NULL;
    pthread_mutex_unlock(&s->mu);
    if (stop) {
      if (r != NULL) {
        SSL_CTX_free(r->tls);
        kup_client_free(r->kup);
        free(r);
      }
      break;
    }
    if (r != NULL) {
      cell_apply(s, r);
    }
    for (i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      cell_conn *c;
      if (p == &s->evfd) {
        uint64_t v;
        while (read(s->evfd, &v, sizeof(v)) < 0 && errno == EINTR) {
        }
        continue;
      }
      if (p == &s->listen_fd) {
        cell_accept(s);
        continue;
      }
      c = p;
      if (c->state == CONN_CLOSED) {
        continue;
      }
      if (c->state == CONN_HANDSHAKE) {
        conn_handshake(s, c);
        continue;
      }
      if ((evs[i].events & EPOLLOUT) && c->want_write) {
        conn_flush(s, c);
      }
      if (c->state == CONN_OPEN &&
          ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ||
           ((evs[i].events & EPOLLOUT) && c->read_wants_write))) {
        conn_read(s, c);
      }
    }
    if (s->any_resume) {
      cell_conn *c, *next;
      s->any_resume = 0;
      for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (c->resume && c->state == CONN_OPEN) {
          c->resume = 0;
          conn_process(s, c);
          if (c->state == CONN_OPEN && !c->paused) {
            conn_read(s, c);
          }
        }
      }
    }
    now = app_now_ms();
    if (now - last_tick >= CELL_TICK_MS) {
      last_tick = now;
      cell_timeouts(s, now);
      ctx_sweep(s, now);
      if (now - s->db_last_purge >= CELL_DB_PURGE_MS) {
        db_purge(s, now, 0);
      }
    }
    conn_reap(s);
  }
  cell_shutdown(s);
  return NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* The Gi TLS context and the K_UP client of cfg.  0, or -1 with err. */
static int cell_build(const mtcsd_config *cfg, SSL_CTX **tls, kup_client **kup,
                      char *err, size_t errlen) {
  char why[768];
  *tls = mtcsd_tls_ctx(cfg, why, sizeof(why));
  if (*tls == NULL) {
    snprintf(err, errlen, "cellular_listen: %s", why);
    return -1;
  }
  *kup =
    kup_client_new(cfg->home_proxy, cfg->home_proxy_ca, cfg->home_proxy_cert,
                   cfg->home_proxy_key, 0, why, sizeof(why));
  if (*kup == NULL) {
    snprintf(err, errlen, "home proxy client: %s", why);
    SSL_CTX_free(*tls);
    *tls = NULL;
    return -1;
  }
  return 0;
}

int mtcsd_cellular_check(const mtcsd_config *cfg, char *err, size_t errlen) {
  SSL_CTX *tls;
  kup_client *kup;
  if (cfg->cellular_listen[0] == '\0') {
    return 0;
  }
  if (cell_build(cfg, &tls, &kup, err, errlen) != 0) {
    return -1;
  }
  SSL_CTX_free(tls);
  kup_client_free(kup);
  return db_check(cfg->cellular_db, err, errlen);
}

static void cell_free(mtcsd_cellular *s) {
  if (s == NULL) {
    return;
  }
  /* cell_shutdown() closed the connections and erased the states (or
   * none existed when the thread did not start). */
  while (s->conns != NULL) {
    conn_close(s, s->conns, "shutdown", 0);
  }
  conn_reap(s);
  if (s->kbuckets != NULL) {
    (void)ctx_erase_all(s);
  }
  db_close(s);
  if (s->pending != NULL) {
    SSL_CTX_free(s->pending->tls);
    kup_client_free(s->pending->kup);
    free(s->pending);
  }
  if (s->listen_fd >= 0) {
    close(s->listen_fd);
  }
  if (s->evfd >= 0) {
    close(s->evfd);
  }
  if (s->ep >= 0) {
    close(s->ep);
  }
  SSL_CTX_free(s->tls);
  kup_client_free(s->kup);
  if (s->have_crypto) {
    mtcsec_crypto_openssl_del(&s->crypto);
  }
  free(s->buckets);
  free(s->kbuckets);
  pthread_mutex_destroy(&s->mu);
  mtcsec_zeroize(s, sizeof(*s));
  free(s);
}

mtcsd_cellular *mtcsd_cellular_new(const mtcsd_config *cfg, int *exit_code,
                                   char *err, size_t errlen) {
  mtcsd_cellular *s = calloc(1, sizeof(*s));
  struct epoll_event e;
  size_t nb = 16;
  char addr[128];

  *exit_code = MTCSD_EXIT_INTERNAL;
  if (s == NULL) {
    snprintf(err, errlen, "cellular: out of memory");
    return NULL;
  }
  s->listen_fd = s->evfd = s->ep = -1;
  pthread_mutex_init(&s->mu, NULL);
  snprintf(s->listen_conf, sizeof(s->listen_conf), "%s", cfg->cellular_listen);
  snprintf(s->listen_addr, sizeof(s->listen_addr), "%s", cfg->cellular_listen);
  s->max_contexts = cfg->cellular_max_contexts;
  memcpy(s->allowed, cfg->allowed_ggsns, sizeof(s->allowed));
  s->nallowed = cfg->nallowed_ggsns;
  s->lifetime_s = cfg->cellular_key_lifetime;
  s->idle_ms = cfg->idle_timeout * 1000u;
  s->next_conn_id = 1;
  if (s->nallowed == 0) {
    app_log(MTCSEC_LOG_WARN,
            "event=cellular_no_ggsns reason=\"allowed_ggsns is empty: every "
            "GGSN will be refused\"");
  }
  if (cell_build(cfg, &s->tls, &s->kup, err, errlen) != 0) {
    *exit_code = MTCSD_EXIT_CONFIG;
    goto fail;
  }
  if (mtcsec_crypto_openssl_new(&s->crypto) != 0) {
    mtcsec_crypto_openssl_del(&s->crypto);
    snprintf(err, errlen, "cellular: cannot create the crypto provider");
    goto fail;
  }
  s->have_crypto = 1;
  /* Buckets: a power of two >= max_contexts (chains of about one). */
  while (nb < s->max_contexts) {
    nb *= 2;
  }
  s->buckets = calloc(nb, sizeof(*s->buckets));
  s->kbuckets = calloc(nb, sizeof(*s->kbuckets));
  s->mask = nb - 1;
  s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  s->ep = epoll_create1(EPOLL_CLOEXEC);
  if (s->buckets == NULL || s->kbuckets == NULL || s->evfd < 0 || s->ep < 0) {
    snprintf(err, errlen, "cellular: cannot set up: %s", strerror(errno));
    goto fail;
  }
  snprintf(s->db_path, sizeof(s->db_path), "%s", cfg->cellular_db);
  if (db_open(s, s->db_path, err, errlen) != 0) {
    *exit_code = MTCSD_EXIT_CONFIG;
    goto fail;
  }
  db_purge(s, app_now_ms(), 1);
  s->listen_fd = app_tcp_listen(cfg->cellular_listen, err, errlen);
  if (s->listen_fd < 0) {
    char why[512];
    snprintf(why, sizeof(why), "%s", err);
    snprintf(err, errlen, "cellular_listen: %s", why);
    *exit_code = MTCSD_EXIT_FAIL;
    goto fail;
  }
  memset(&e, 0, sizeof(e));
  e.events = EPOLLIN;
  e.data.ptr = &s->listen_fd;
  if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->listen_fd, &e) != 0) {
    snprintf(err, errlen, "cellular: epoll: %s", strerror(errno));
    goto fail;
  }
  e.data.ptr = &s->evfd;
  if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->evfd, &e) != 0) {
    snprintf(err, errlen, "cellular: epoll: %s", strerror(errno));
    goto fail;
  }
  cell_sock_name(s->listen_fd, 1, addr, sizeof(addr));
  snprintf(s->listen_addr, sizeof(s->listen_addr), "%s", addr);
  app_log(MTCSEC_LOG_INFO, "event=cellular_listening addr=%s", addr);
  *exit_code = MTCSD_EXIT_OK;
  return s;

fail:
  cell_free(s);
  return NULL;
}

int mtcsd_cellular_start(mtcsd_cellular *c) {
  if (pthread_create(&c->thread, NULL, cell_main, c) != 0) {
    return -1;
  }
  c->started = 1;
  return 0;
}

void mtcsd_cellular_stop(mtcsd_cellular *c) {
  if (c == NULL) {
    return;
  }
  if (c->started) {
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_mutex_unlock(&c->mu);
    cell_wake(c->evfd);
    pthread_join(c->thread, NULL);
    c->started = 0;
  }
  cell_free(c);
}

int mtcsd_cellular_reload(mtcsd_cellular *c, const mtcsd_config *nc, char *err,
                          size_t errlen) {
  cell_reload *r;
  char keys[128] = "";
  size_t n = 0;

  if (c == NULL) {
    if (nc->cellular_listen[0] != '\0') {
      app_log(MTCSEC_LOG_WARN, "event=reload_ignored keys=cellular_listen "
                               "reason=\"needs a restart\"");
    }
    return 0;
  }
  /* Moving or turning off the listener needs a restart; the service keeps
   * running with the new certificates meanwhile. */
  if (strcmp(nc->cellular_listen, c->listen_conf) != 0) {
    n += (size_t)snprintf(keys + n, sizeof(keys) - n, "cellular_listen");
  }
  if (nc->cellular_max_contexts != c->max_contexts) {
    n += (size_t)snprintf(keys + n, sizeof(keys) - n, "%scellular_max_contexts",
                          n > 0 ? "," : "");
  }
  if (strcmp(nc->cellular_db, c->db_path) != 0) {
    n += (size_t)snprintf(keys + n, sizeof(keys) - n, "%scellular_db",
                          n > 0 ? "," : "");
  }
  r = calloc(1, sizeof(*r));
  if (r == NULL) {
    snprintf(err, errlen, "cellular: out of memory");
    return -1;
  }
  if (cell_build(nc, &r->tls, &r->kup, err, errlen) != 0) {
    free(r);
    return -1;
  }
  if (n > 0) {
    app_log(MTCSEC_LOG_WARN,
            "event=reload_ignored keys=%s reason=\"needs a restart\"", keys);
  }
  memcpy(r->allowed, nc->allowed_ggsns, sizeof(r->allowed));
  r->nallowed = nc->nallowed_ggsns;
  r->lifetime_s = nc->cellular_key_lifetime;
  r->idle_s = nc->idle_timeout;
  pthread_mutex_lock(&c->mu);
  if (c->pending != NULL) {
    SSL_CTX_free(c->pending->tls);
    kup_client_free(c->pending->kup);
    free(c->pending);
  }
  c->pending = r;
  pthread_mutex_unlock(&c->mu);
  cell_wake(c->evfd);
  return 0;
}
