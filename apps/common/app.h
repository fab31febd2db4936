/*
 * Shared helpers of the mtcsec programs (daemon, CLI, agents).  Not part of
 * the library: this is shell code (sockets, files, TLS, clocks, logs).
 *
 * Built as the static library mtcsec_app (the .c files of apps/common).
 */
#ifndef MTCSEC_APP_H
#define MTCSEC_APP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/ssl.h>

#include <mtcsec/mtcsec.h>

/* ------------------------------------------------------------ IDs, hex */

/** Parses 16 hex digits (case-insensitive) into an 8-byte ID.  0 or -1. */
int app_parse_id(const char *s, uint8_t id[MTCSEC_ID_LEN]);
/** Writes 16 lowercase hex digits + NUL. */
char *app_format_id(char out[17], const uint8_t id[MTCSEC_ID_LEN]);
/** Parses exactly 2*len hex digits into out.  0 or -1. */
int app_parse_hex(const char *s, uint8_t *out, size_t len);
/** Writes 2*len lowercase hex digits + NUL into out (2*len+1 bytes). */
char *app_format_hex(char *out, const uint8_t *in, size_t len);
/** Parses a permission list "read,write,actuate,configure" or "0x0f".
 *  0 or -1. */
int app_parse_perms(const char *s, uint8_t *perms);
/** Formats perms as "read,write" ("none" for 0) into out (48 bytes). */
char *app_format_perms(char out[48], uint8_t perms);
/** Parses a duration "3600", "90s", "15m", "12h", "7d" into seconds. */
int app_parse_duration(const char *s, uint32_t *seconds);

/* --------------------------------------------------------------- time */

/** Monotonic milliseconds (CLOCK_MONOTONIC): the roles' mtcsec_tstamp. */
mtcsec_tstamp app_now_ms(void);
/** Wall-clock unix seconds. */
int64_t app_unix_now(void);

/* --------------------------------------------------------------- logs */

/**
 * Structured logs: one line per event, "ts=<RFC3339> level=<lvl>
 * prog=<name> <key=value ...>" on stderr (or a file).  The caller
 * double-quotes values with spaces.  Lines from several threads never
 * interleave; the level may change at any time from any thread.  Never
 * pass keys, MICs or DMKeys.
 */
void app_log_init(const char *prog, int level, FILE *out);
void app_log_set_level(int level);
int app_log_level(void);
/** printf-style body of key=value pairs. */
void app_log(int level, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
/** Adapter for the library's mtcsec_log_fn (user_data unused). */
void app_log_hook(void *user_data, int level, const char *msg);
/** Parses "error", "warn", "info", "debug".  0 or -1. */
int app_parse_log_level(const char *s, int *level);

/* -------------------------------------------------------------- config */

/**
 * A key = value config file: '#' starts a comment, blank lines ignored,
 * keys are [a-z0-9_.], values run to the end of the line (trimmed; may be
 * double-quoted).  Unknown keys are an error for the caller to report.
 */
typedef struct app_config app_config;

/**
 * Reads path.  On error returns NULL and writes "path:line: what is wrong"
 * into err.
 */
app_config *app_config_load(const char *path, char *err, size_t errlen);
void app_config_free(app_config *c);
/** The value of key, or NULL. */
const char *app_config_get(const app_config *c, const char *key);
/** Calls fn(key, value, line) for each entry in file order; stops and
 *  returns fn's nonzero value. */
int app_config_foreach(const app_config *c,
                       int (*fn)(void *ud, const char *key, const char *value,
                                 int line),
                       void *ud);

/**
 * For the daemons' list of keys a reload cannot apply: when changed, adds
 * name to the comma-separated list in out (*n bytes used so far), if it
 * fits.
 */
void app_config_note_key(char *out, size_t outlen, size_t *n, int changed,
                         const char *name);

/** One key of mtcsd.conf (docs/OPERATIONS.md). */
typedef struct app_conf_key {
  const char *key;
  const char *def; /* NULL: required, no default */
  const char *help;
} app_conf_key;

/** The keys mtcsd.conf may hold, ending with a NULL key: the one table of
 *  names, defaults and help that mtcsd and `mtcsec init` share. */
extern const app_conf_key app_mtcsd_keys[];
/** The entry of key, or NULL when mtcsd.conf has no such key. */
const app_conf_key *app_mtcsd_key(const char *key);

/* ---------------------------------------------------------------- TLS */

/**
 * TLS 1.3 only, mutual X.509, no session resumption (every connection
 * verifies the peer's chain).  Server: certificate chain + key, client
 * certificates required and verified against ca_file.  Client: its own
 * certificate + key, the server verified against ca_file (to check its name
 * too, call SSL_set1_host() on each SSL).  On error returns NULL with an
 * OpenSSL-derived sentence naming the file in err.
 */
SSL_CTX *app_tls_server_ctx(const char *cert_file, const char *key_file,
                            const char *ca_file, char *err, size_t errlen);
SSL_CTX *app_tls_client_ctx(const char *cert_file, const char *key_file,
                            const char *ca_file, char *err, size_t errlen);

/**
 * The UE identity of a verified peer certificate (PROTOCOL.md section 1):
 * the subject commonName, exactly 16 hex digits, case-insensitive; a
 * certificate with no such commonName or more than one commonName is
 * refused.  Returns 0 and fills ueid, or -1.
 */
int app_tls_peer_ueid(SSL *ssl, uint8_t ueid[MTCSEC_ID_LEN]);

/* ------------------------------------------------------------ sockets */

/**
 * Parses "host:port" / "[v6]:port" / ":port" and binds (listen != 0: TCP
 * listen with SO_REUSEADDR, backlog 1024; else UDP) or connects (TCP).
 * Non-blocking, close-on-exec.  Returns the fd or -1 with err.
 */
int app_tcp_listen(const char *addr, char *err, size_t errlen);
int app_tcp_connect(const char *addr, char *err, size_t errlen);
int app_udp_bind(const char *addr, char *err, size_t errlen);
/** Resolves "host:port" into a sockaddr (for sendto).  0 or -1. */
struct sockaddr_storage;
int app_resolve(const char *addr, struct sockaddr_storage *ss, unsigned *sslen,
                char *err, size_t errlen);

/* --------------------------------------------------------------- files */

/**
 * Writes data to path atomically (temp file, fsync, rename, fsync dir)
 * with the given mode.  0 or -1 (errno set).
 */
int app_write_file_atomic(const char *path, const void *data, size_t len,
                          unsigned mode);
/** Reads a whole file (at most max bytes) into a malloc'd NUL-terminated
 *  buffer.  NULL on error (errno set). */
char *app_read_file(const char *path, size_t max, size_t *len);

#endif /* MTCSEC_APP_H */
