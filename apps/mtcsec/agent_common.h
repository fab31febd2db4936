/*
 * Shared pieces of the agents (simulated field equipment): the readable
 * trace, signal handling, a table of UDP peers, the TLS client of the
 * server link, the UE's key cache and the application protocol carried
 * inside direct-channel records (docs/AGENTS.md).
 *
 * Shell code: sockets, files, clocks.  The protocol itself stays in the
 * sans-IO roles.
 */
#ifndef MTCSEC_AGENT_COMMON_H
#define MTCSEC_AGENT_COMMON_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/channel.h>

/* ------------------------------------------------------------- trace */

/** Starts the trace clock; enabled != 0 prints trace lines on stdout. */
void agent_trace_init(int enabled);
/** Nonzero when --trace was given. */
int agent_trace_enabled(void);
/** Milliseconds since agent_trace_init() (fractional). */
double agent_elapsed_ms(void);
/** Name of a message by its header byte ("M0", "record", ...). */
const char *agent_msg_name(uint8_t type);
/**
 * One trace line: elapsed ms, from -> to, message type, size, and a note
 * (may be NULL).  framed != 0: msg is a server-link frame (type at byte 2).
 */
void agent_trace(const char *from, const char *to, const uint8_t *msg,
                 size_t len, int framed, const char *note);

/* ----------------------------------------------------------- signals */

/** Set by SIGINT / SIGTERM once agent_signals_install() ran. */
extern volatile sig_atomic_t agent_stop;
/** SIGINT/SIGTERM set agent_stop (no SA_RESTART); SIGPIPE is ignored. */
void agent_signals_install(void);
/** Set by SIGUSR1 once agent_start(..., 1) ran: log the counters. */
extern volatile sig_atomic_t agent_stats_wanted;

/**
 * The start of every agent's `run` once its options are parsed: logs as
 * log_name at level on stderr, starts the trace clock (trace lines on
 * stdout when trace != 0), installs agent_signals_install() and, with
 * stats_on_usr1, a SIGUSR1 handler that sets agent_stats_wanted.
 */
void agent_start(const char *log_name, int level, int trace, int stats_on_usr1);

/* ------------------------------------------------------------- options */

/** agent_common_opt(): the option was taken, go on parsing. */
#define AGENT_OPT_NEXT (-1)

/**
 * The options every agent's `run` shares, for the end of its getopt_long
 * switch (opterr = 0): 't' (--trace) sets *trace, 'L' (--log-level)
 * parses optarg into *level, 'h' calls help; any other ch is an unknown
 * or incomplete option.  Errors go to stderr as "mtcsec CMD: ..." followed
 * by usage.  Returns AGENT_OPT_NEXT, or the exit code for the agent to
 * return: CLI_OK after help, CLI_USAGE.
 */
int agent_common_opt(int ch, char **argv, const char *cmd, const char *usage,
                     void (*help)(void), int *trace, int *level);

/* ------------------------------------------------------------ addresses */

typedef struct agent_addr {
  struct sockaddr_storage ss;
  socklen_t len;
} agent_addr;

/** Resolves "host:port" (app_resolve).  0 or -1 with err. */
int agent_addr_parse(agent_addr *a, const char *s, char *err, size_t errlen);
/** Nonzero when a and b name the same address and port. */
int agent_addr_equal(const agent_addr *a, const agent_addr *b);
/** "host:port" into out. */
const char *agent_addr_str(const agent_addr *a, char *out, size_t outlen);
/**
 * "HOST:PORT" with the port increased by delta, for consecutive listen
 * addresses.  0 or -1.
 */
int agent_addr_offset(const char *base, unsigned delta, char *out,
                      size_t outlen);
/** A wildcard "0.0.0.0:0" or "[::]:0" address of a's family. */
const char *agent_any_for(const agent_addr *a);

/** Receives one datagram; returns its length, 0 when none, -1 on error. */
long agent_udp_recv(int fd, uint8_t *buf, size_t buflen, agent_addr *from);
/** Sends one datagram; 0 or -1. */
int agent_udp_send(int fd, const agent_addr *to, const uint8_t *buf,
                   size_t len);

/**
 * A small table that gives each link address an opaque 64-bit peer handle
 * for the roles (1..n); the least recently used entry is replaced.
 */
#define AGENT_MAX_PEERS 64
typedef struct agent_peers {
  agent_addr addr[AGENT_MAX_PEERS];
  uint64_t used[AGENT_MAX_PEERS]; /* 0: free; else a use stamp */
  uint64_t clock;
} agent_peers;

uint64_t agent_peer_id(agent_peers *p, const agent_addr *a);
/** The address of a handle, or NULL. */
const agent_addr *agent_peer_addr(const agent_peers *p, uint64_t id);

/* ---------------------------------------------------- TLS server link */

typedef struct agent_tls {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
  uint8_t *in;
  size_t inlen, incap;
  uint8_t *out;
  size_t outlen, outcap;
  int closed;
} agent_tls;

/**
 * Connects to addr with TLS 1.3 as the UE whose certificate and key are
 * cert/key, verifying the server against ca, within timeout_ms.
 * 0 or -1 with err.
 */
int agent_tls_connect(agent_tls *t, const char *addr, const char *cert,
                      const char *key, const char *ca, int timeout_ms,
                      char *err, size_t errlen);
/** Queues bytes for sending.  0 or -1. */
int agent_tls_queue(agent_tls *t, const uint8_t *p, size_t n);
/** Sends what is queued as far as the socket takes it.  0 or -1. */
int agent_tls_flush(agent_tls *t);
/** Reads what is available into t->in.  0, or -1 (closed or error). */
int agent_tls_read(agent_tls *t);
/** Removes n bytes from the front of t->in. */
void agent_tls_consume(agent_tls *t, size_t n);
/** poll() events the connection waits for. */
short agent_tls_events(const agent_tls *t);
/** Closes (TLS close_notify when possible) and frees; t may be unused. */
void agent_tls_close(agent_tls *t);

/**
 * The server address of the state directory: mtcsd.conf's listen (default
 * 127.0.0.1:7788), a wildcard host replaced by the loopback address.
 */
int agent_server_addr(char *out, size_t outlen, char *err, size_t errlen);

/* ---------------------------------------------------------- key cache */

/**
 * A DMKey the UE holds for one device, kept in
 * ues/<UEID>.keys/<MTCdID>.json (0600) so that a later command can talk to
 * the device without the server.  tx_seq is written before a record with
 * that sequence number leaves, so a number is never used twice.
 */
typedef struct agent_key {
  uint8_t mtcd_id[MTCSEC_ID_LEN];
  uint8_t suite;
  uint8_t perms;
  uint16_t key_id;
  int64_t expires_ms; /* unix milliseconds */
  uint8_t dmkey[MTCSEC_MAX_KEY_LEN];
  uint8_t keylen;
  uint32_t tx_seq;
  mtcsec_window rx;
} agent_key;

/** Unix time in milliseconds. */
int64_t agent_unix_ms(void);
/**
 * Loads the key of ueid for k->mtcd_id.  Returns 0, 1 (no key, or expired:
 * removed unless keep_expired) or -1 (unreadable file: err).
 */
int agent_key_load(const uint8_t ueid[MTCSEC_ID_LEN], agent_key *k,
                   int keep_expired, char *err, size_t errlen);
/** Saves k atomically.  0 or -1 with err. */
int agent_key_save(const uint8_t ueid[MTCSEC_ID_LEN], const agent_key *k,
                   char *err, size_t errlen);
/** Removes the key file of ueid for mtcd_id (no error if absent). */
void agent_key_remove(const uint8_t ueid[MTCSEC_ID_LEN],
                      const uint8_t mtcd_id[MTCSEC_ID_LEN]);
/**
 * Takes an exclusive lock on the key of ueid for mtcd_id for the rest of
 * the process (two commands never share sequence numbers).  Returns the
 * lock fd or -1.
 */
int agent_key_lock(const uint8_t ueid[MTCSEC_ID_LEN],
                   const uint8_t mtcd_id[MTCSEC_ID_LEN], char *err,
                   size_t errlen);
/**
 * Sets up the UE end of the direct channel from k at monotonic time now,
 * resuming its sequence number and replay window.  ignore_expiry (a testing
 * aid) keeps the channel usable for a minute past the key's lifetime, to
 * show that the device refuses it.  0 or an mtcsec_err.
 */
int agent_key_chan(const agent_key *k, const mtcsec_crypto *crypto,
                   mtcsec_chan *ch, mtcsec_tstamp now, int ignore_expiry);
/** Copies the channel's counters back into k (before saving). */
void agent_key_sync(agent_key *k, const mtcsec_chan *ch);

/* ------------------------------------------------ application protocol */

/** Operations (first byte of a request) and the PERMS bit each needs. */
enum {
  AGENT_OP_READ = 1,
  AGENT_OP_WRITE = 2,
  AGENT_OP_ACTUATE = 3,
  AGENT_OP_CONFIGURE = 4
};
/** Status (first byte of a response). */
enum {
  AGENT_ST_OK = 0,
  AGENT_ST_FORBIDDEN = 1,
  AGENT_ST_NOT_FOUND = 2,
  AGENT_ST_BAD_REQUEST = 3
};
#define AGENT_NAME_MAX 32
#define AGENT_VALUE_MAX 64
/** Largest plaintext of either direction. */
#define AGENT_PT_MAX (3 + AGENT_NAME_MAX + AGENT_VALUE_MAX)

typedef struct agent_req {
  uint8_t op;
  uint8_t tag;
  char name[AGENT_NAME_MAX + 1];
  char value[AGENT_VALUE_MAX + 1];
} agent_req;

/** op || tag || name_len || name || value.  Returns the length or -1. */
long agent_req_encode(uint8_t *out, size_t outlen, const agent_req *r);
/** 0 or -1 (malformed). */
int agent_req_decode(agent_req *r, const uint8_t *in, size_t inlen);
/** status || tag || value.  Returns the length or -1. */
long agent_resp_encode(uint8_t *out, size_t outlen, uint8_t status, uint8_t tag,
                       const char *value);
/** 0 or -1; value is NUL-terminated (AGENT_VALUE_MAX + 1 bytes). */
int agent_resp_decode(const uint8_t *in, size_t inlen, uint8_t *status,
                      uint8_t *tag, char value[AGENT_VALUE_MAX + 1]);
/** The PERMS bit an op needs (0 for an unknown op). */
uint8_t agent_op_perm(uint8_t op);
const char *agent_op_name(uint8_t op);
const char *agent_status_name(uint8_t status);

/* ------------------------------------------------------------- misc */

/** Parses a non-negative integer option into *out (at most max).  0/-1. */
int agent_parse_uint(const char *s, unsigned long max, unsigned long *out);

#endif /* MTCSEC_AGENT_COMMON_H */
