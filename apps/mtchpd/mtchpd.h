/*
 * mtchpd, the cellular mode's home proxy (docs/CELLULAR-HOME-PROXY.md,
 * spec/CELLULAR.md "home proxy"): GSUP over IPA/TCP toward SGSNs, vectors
 * from the built-in AuC (hlr.db) or an upstream osmo-hlr, the bounded
 * (IMSI, RAND) -> (CK, IK) table, and the K_UP service over HTTPS.
 *
 * Files: main.c (start-up, poll loop, signals, SIGHUP reload), config.c
 * (mtchpd.conf), ipa.c (IPA connections and CCM; the framing is
 * apps/common/ipa.c), gsup.c (GSUP handling, AuC, Insert Subscriber Data,
 * upstream relay, CK/Kc stripping), cache.c (the vector table, hashed),
 * kup.c (HTTPS K_UP service, one thread per connection), metrics.c
 * (counters and the Prometheus text endpoint).
 */
#ifndef MTCHPD_H
#define MTCHPD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/cellular.h>
#include <mtcsec/crypto.h>

#include "app.h"
#include "cellular/auc_store.h"

#define HP_PATH_MAX 1024
#define HP_MAX_ALLOWED 256
#define HP_MAX_IO_IMSIS 256
#define HP_MAX_GSUP_PEERS 64 /* entries of gsup_allowed_peers */
/* The largest kup_max_connections (and kup_max_per_peer) accepted. */
#define HP_KUP_MAX_CONN 4096

/* A network address or prefix: IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d),
 * so that one comparison covers both families. */
typedef struct hp_net {
  uint8_t addr[16];
  unsigned prefix; /* 0..128 */
} hp_net;

/* ------------------------------------------------------------- config */

typedef struct hp_config {
  char file[HP_PATH_MAX];
  char gsup_listen[128];
  char kup_listen[128];
  char metrics_listen[128]; /* "" = no metrics endpoint */
  int metrics_listen_given; /* set in the file (else the default) */
  char database[HP_PATH_MAX];
  char kek_file[HP_PATH_MAX];
  char ca[HP_PATH_MAX];
  char cert[HP_PATH_MAX];
  char key[HP_PATH_MAX];
  char upstream_hlr[128];    /* "" = built-in AuC */
  char unit_name[64];        /* IPA unit name toward the upstream HLR */
  uint32_t upstream_timeout; /* seconds */
  uint32_t isd_timeout;      /* seconds an ISD result may take */
  uint32_t vector_lifetime;  /* seconds */
  uint32_t vector_cache_max; /* entries */
  unsigned num_vectors;      /* per Send Auth Info, 1..5 */
  unsigned max_connections;  /* GSUP peers */
  unsigned kup_max_connections;
  unsigned kup_max_per_peer; /* K_UP connections from one address */
  uint32_t idle_timeout;     /* seconds, HTTPS: accept to end of response */
  uint32_t gsup_handshake_timeout;        /* seconds to complete the IPA ID */
  uint32_t gsup_keepalive;                /* seconds between PINGs; 0 = off */
  hp_net gsup_allowed[HP_MAX_GSUP_PEERS]; /* empty = any peer */
  size_t ngsup_allowed;
  int log_level;
  uint8_t allowed[HP_MAX_ALLOWED][MTCSEC_ID_LEN];
  size_t nallowed;
  char io_imsis[HP_MAX_IO_IMSIS][MTCSEC_IMSI_MAX_DIGITS + 1];
  size_t nio_imsis;
} hp_config;

/**
 * Reads and checks mtchpd.conf (keys in docs/CELLULAR-HOME-PROXY.md).
 * Relative paths are relative to the file's directory.  0 or -1 with a
 * sentence in err.
 */
int hp_config_load(hp_config *cfg, const char *path, char *err, size_t errlen);

/** Nonzero if imsi is in the integrity_only list of the config. */
int hp_config_io_imsi(const hp_config *cfg, const char *imsi);

/**
 * Parses an address ("192.0.2.1", "2001:db8::1") or a prefix in CIDR
 * notation ("192.0.2.0/24", "2001:db8::/32") into out.  0 or -1.
 */
int hp_net_parse(const char *s, hp_net *out);

/** addr (16 bytes, IPv4 mapped) in net?  1 or 0. */
int hp_net_match(const hp_net *net, const uint8_t addr[16]);

/**
 * The address of sa as 16 bytes (IPv4 mapped) into addr16, and as text
 * into text (may be NULL).  0, or -1 for a family other than IPv4/IPv6.
 */
int hp_sockaddr_addr(const struct sockaddr *sa, uint8_t addr16[16], char *text,
                     size_t textlen);

/** Nonzero if addr16 may connect to the GSUP listener (gsup_allowed_peers
 *  is empty, or one of its entries matches). */
int hp_config_gsup_allowed(const hp_config *cfg, const uint8_t addr16[16]);

/**
 * The keys that differ between a and b and that only a restart applies
 * (listen addresses, database, KEK, upstream_hlr, unit_name, sizes), as a
 * comma separated list into out ("" when none).
 */
void hp_config_restart_keys(const hp_config *a, const hp_config *b, char *out,
                            size_t outlen);

/** Copies the restart-only keys of old into nc (a SIGHUP keeps them). */
void hp_config_keep_restart(hp_config *nc, const hp_config *old);

/* ------------------------------------------------------- vector table */

#define HP_VEC_FREE 0
#define HP_VEC_LIVE 1
#define HP_VEC_EXPIRED 2 /* CK and IK zeroized; (IMSI, RAND) kept for 404s */

/* hp_cache_put() flags. */
#define HP_VEC_CK_RELEASED 0x01u /* CK (or Kc) went to the SGSN */

typedef struct hp_vec {
  char imsi[MTCSEC_IMSI_MAX_DIGITS + 1];
  uint8_t rand[MTCSEC_3GPP_RAND_LEN];
  uint8_t ck[MTCSEC_3GPP_CK_LEN]; /* zero when ck_released */
  uint8_t ik[MTCSEC_3GPP_IK_LEN]; /* zero when ck_released */
  mtcsec_tstamp expires;
  uint32_t hash;       /* of (IMSI, RAND) */
  uint32_t next;       /* next slot in the same hash chain, or HP_VEC_NIL */
  uint8_t state;       /* HP_VEC_* */
  uint8_t ck_released; /* K_UP is never served for this vector */
} hp_vec;

#define HP_VEC_NIL UINT32_MAX

/**
 * (IMSI, RAND) -> (CK, IK), bounded by count and by age (cache.c).  A ring
 * of cap slots in issue order (when full, the oldest slot is zeroized and
 * reused) plus a chained hash index over the slots, so a lookup costs
 * O(1) expected whatever the size.  Every entry has the same lifetime, so
 * the live entries are always the newest `live` slots: expiry zeroizes CK
 * and IK from the oldest live slot on, in O(expired).  Shared by the GSUP
 * loop, the K_UP threads and the metrics thread, under a mutex.
 */
typedef struct hp_cache {
  pthread_mutex_t mu;
  hp_vec *v;
  uint32_t *bucket; /* mask + 1 chain heads */
  size_t cap, head, live;
  uint32_t mask;
  uint32_t lifetime_ms;
} hp_cache;

/** cap 1..2^31 entries.  0 or -1 (out of memory). */
int hp_cache_init(hp_cache *c, size_t cap, uint32_t lifetime_s);
/** Zeroizes every entry and frees the table. */
void hp_cache_free(hp_cache *c);
/**
 * Remembers (imsi, rand) -> (ck, ik).  flags HP_VEC_CK_RELEASED: CK (or Kc
 * = c3(CK, IK)) of this vector left the home network (a normal
 * subscriber's tuple to the SGSN), so whoever holds it could compute K_UP:
 * only (IMSI, RAND) and the flag are kept, never CK and IK, and
 * hp_cache_get() answers MTCSEC_ERR_FORBIDDEN.
 */
void hp_cache_put(hp_cache *c, const char *imsi,
                  const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                  const uint8_t ck[MTCSEC_3GPP_CK_LEN],
                  const uint8_t ik[MTCSEC_3GPP_IK_LEN], unsigned flags,
                  mtcsec_tstamp now);
/** 0 (ck, ik filled), MTCSEC_ERR_NOT_FOUND, MTCSEC_ERR_EXPIRED, or
 *  MTCSEC_ERR_FORBIDDEN (the vector's CK was released; live or expired). */
int hp_cache_get(hp_cache *c, const char *imsi,
                 const uint8_t rand[MTCSEC_3GPP_RAND_LEN], mtcsec_tstamp now,
                 uint8_t ck[MTCSEC_3GPP_CK_LEN],
                 uint8_t ik[MTCSEC_3GPP_IK_LEN]);
/** Zeroizes the keys of the entries expired at now; returns the number of
 *  live entries left. */
size_t hp_cache_expire(hp_cache *c, mtcsec_tstamp now);

/* ---------------------------------------------------------------- IPA */

#define HP_IPA_HDR_LEN 3
#define HP_IPA_MAX_PAYLOAD 65535
#define HP_WBUF_MAX (1u << 20)

typedef enum hp_conn_kind {
  HP_CONN_SGSN = 0,
  HP_CONN_UPSTREAM = 1
} hp_conn_kind;

typedef struct hp_conn {
  int fd;
  hp_conn_kind kind;
  uint64_t id;
  int connecting;        /* upstream: non-blocking connect in progress */
  int ready;             /* upstream: ID_RESP sent */
  int identified;        /* SGSN: its ID_RESP arrived */
  unsigned pings;        /* SGSN: PINGs sent since the last byte received */
  mtcsec_tstamp since;   /* SGSN: accepted at */
  mtcsec_tstamp last_rx; /* SGSN: last byte received at */
  uint8_t addr[16];      /* SGSN: peer address, IPv4 mapped */
  char peer[160];
  char name[64]; /* IPA unit name the peer reported */
  uint8_t *rbuf;
  size_t rlen;
  uint8_t *wbuf;
  size_t wlen, wcap;
} hp_conn;

hp_conn *hp_conn_new(int fd, hp_conn_kind kind, uint64_t id);
void hp_conn_free(hp_conn *c);
/** Queues one IPA message (proto, and ext if proto is IPAC_PROTO_OSMO) and
 *  tries to send.  0 or -1 (write buffer over HP_WBUF_MAX, or write error). */
int hp_conn_send(hp_conn *c, uint8_t proto, int ext, const uint8_t *data,
                 size_t len);
/** Writes what the socket takes.  0, or -1 on a write error. */
int hp_conn_flush(hp_conn *c);
/**
 * Reads what is available and calls fn for every complete IPA message
 * (proto, ext or -1, payload after the ext byte).  Returns 0, 1 on EOF, or
 * -1 on an error (a read error, or fn returned nonzero).
 */
int hp_conn_read(hp_conn *c,
                 int (*fn)(void *ud, hp_conn *c, uint8_t proto, int ext,
                           const uint8_t *data, size_t len),
                 void *ud);
/** Answers the CCM messages osmo-hlr answers (PING, ID_GET, ID_RESP). */
int hp_ipa_ccm(hp_conn *c, const uint8_t *data, size_t len,
               const char *unit_name);
/** Sends an ID_GET asking for the unit name (as osmo-hlr does on accept). */
int hp_ipa_send_id_get(hp_conn *c);
/** Sends an IPA PING (keepalive). */
int hp_ipa_send_ping(hp_conn *c);

/* ------------------------------------------------------------- daemon */

#define HP_MAX_PENDING 1024

/* A request relayed to the upstream HLR, waiting for its answer. */
typedef struct hp_pending {
  int used;
  char imsi[MTCSEC_IMSI_MAX_DIGITS + 1];
  uint8_t msg_type; /* request type (low two bits 0) */
  int resync;       /* a Send Auth Info carrying AUTS */
  uint64_t conn_id; /* the SGSN connection */
  mtcsec_tstamp deadline;
} hp_pending;

/* An Update Location in built-in mode waiting for the SGSN's answer to our
 * Insert Subscriber Data (as osmo-hlr's lu_fsm.c). */
typedef struct hp_lu {
  int used;
  char imsi[MTCSEC_IMSI_MAX_DIGITS + 1];
  uint64_t conn_id; /* the SGSN connection */
  mtcsec_tstamp deadline;
} hp_lu;

/* ----------------------------------------------------------- metrics */

/* Label values of mtchpd_gsup_requests_total{type}. */
enum {
  HP_GT_SAI = 0,
  HP_GT_UL,
  HP_GT_PURGE,
  HP_GT_AFR,
  HP_GT_OTHER,
  HP_GT_MALFORMED,
  HP_GT_N
};

/* mtchpd_kup_requests_total{status}: these HTTP codes, 0 = no answer
 * (TLS handshake failed or the client left), then "other". */
#define HP_KUP_NSTATUS 11

/** Counters and gauges, updated by every thread (relaxed atomics). */
typedef struct hp_metrics {
  _Atomic uint64_t gsup[HP_GT_N][2]; /* [type][0 ok, 1 error] */
  _Atomic uint64_t vectors_auc, vectors_upstream, vectors_stripped;
  _Atomic uint64_t kup[HP_KUP_NSTATUS];
  _Atomic uint64_t resync_ok, resync_failed;
  atomic_int peers;
  atomic_int upstream_up;
} hp_metrics;

/** One GSUP request of msg_type answered (ok != 0: with a result). */
void hp_metrics_gsup(hp_metrics *m, unsigned msg_type, int ok);
/** One K_UP request answered with HTTP status (0: none). */
void hp_metrics_kup(hp_metrics *m, int status);

/* ------------------------------------------------------------- daemon */

/* The K_UP authorization list as the K_UP threads see it: a reference
 * counted snapshot, replaced (never changed) by a SIGHUP, so a request in
 * flight keeps the list it started with and the next one sees the new. */
typedef struct hp_acl {
  atomic_uint refs;
  size_t n;
  uint8_t ids[HP_MAX_ALLOWED][MTCSEC_ID_LEN];
} hp_acl;

/** A snapshot of cfg's allowed_servers with one reference, or NULL. */
hp_acl *hp_acl_new(const hp_config *cfg);
void hp_acl_ref(hp_acl *a);
/** Drops a reference; frees the list with the last.  NULL allowed. */
void hp_acl_unref(hp_acl *a);
/** Nonzero if id is in the list. */
int hp_acl_allowed(const hp_acl *a, const uint8_t id[MTCSEC_ID_LEN]);

typedef struct hp_daemon {
  hp_config cfg;
  mtcsec_crypto crypto;    /* main thread only */
  mtcsec_auc_store *store; /* main thread only; NULL if none */
  hp_cache cache;
  hp_metrics metrics;
  SSL_CTX *tls; /* main thread only: SSL_new() happens there */
  hp_acl *acl;  /* main thread's reference; each K_UP job takes its own */
  int gsup_fd, kup_fd, sig_fd, metrics_fd, metrics_stop_fd;
  pthread_t metrics_thread;
  int metrics_running;
  int cli_log_level; /* --log-level, or -1: log_level of the file wins */
  hp_conn **conns;   /* GSUP peers (SGSNs), max_connections slots */
  hp_conn *up;       /* upstream HLR connection or NULL */
  mtcsec_tstamp up_retry;
  uint64_t next_conn_id;
  hp_pending pending[HP_MAX_PENDING];
  hp_lu lus[HP_MAX_PENDING];
  /* K_UP threads; kup_peers[0..kup_npeers) counts the open connections
   * per source address (kup_max_per_peer), under kup_mu. */
  pthread_mutex_t kup_mu;
  unsigned kup_active;
  struct hp_kup_peer {
    uint8_t addr[16];
    unsigned n;
  } kup_peers[HP_KUP_MAX_CONN];
  unsigned kup_npeers;
  volatile int stopping;
} hp_daemon;

/** Handles one GSUP message from an SGSN connection. */
int hp_gsup_from_sgsn(hp_daemon *d, hp_conn *c, const uint8_t *data,
                      size_t len);
/** Handles one GSUP message from the upstream HLR. */
int hp_gsup_from_upstream(hp_daemon *d, const uint8_t *data, size_t len);
/** Fails relayed requests whose deadline passed (or all, when the upstream
 *  link is lost: all != 0), and (all == 0) Update Locations whose Insert
 *  Subscriber Data was not answered in time. */
void hp_gsup_expire(hp_daemon *d, mtcsec_tstamp now, int all);
/** Forgets what waits on the SGSN connection conn_id (it closed). */
void hp_gsup_conn_closed(hp_daemon *d, uint64_t conn_id);
/** The SGSN connection with this id, or NULL. */
hp_conn *hp_find_conn(hp_daemon *d, uint64_t id);

/** Accepts one HTTPS connection on d->kup_fd and serves it in a thread. */
void hp_kup_accept(hp_daemon *d);
/** Waits (at most timeout_ms) for the K_UP threads to finish. */
void hp_kup_drain(hp_daemon *d, int timeout_ms);

/** Serves GET /metrics on fd (listening) from a thread.  0 or -1. */
int hp_metrics_start(hp_daemon *d, int fd);
/** Stops the metrics thread and closes its socket (if it runs). */
void hp_metrics_stop(hp_daemon *d);

/** The operator-specific GSUP IE of the policy (docs). */
#define HP_GSUP_POLICY_IE 0xf0
#define HP_POLICY_VERSION 0x01
#define HP_POLICY_INTEGRITY_ON 0x01
#define HP_POLICY_CIPHERING_ON 0x02

#endif /* MTCHPD_H */
