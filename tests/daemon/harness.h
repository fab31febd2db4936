/*
 * Harness of the daemon tests: a temporary state directory (CA, server and
 * UE certificates made with the OpenSSL API, a KEK, a database provisioned
 * through the SQLite store's admin API, mtcsd.conf), the real mtcsd started
 * on loopback (listen = 127.0.0.1:0; the bound addresses are read from its
 * "event=listening addr=..." and "event=metrics_listening addr=..." log
 * lines), a TLS client, and a simulated device that builds M1s as a device
 * would.  Every wait is bounded; a watchdog kills mtcsd and removes the
 * directory if a test hangs.
 */
#ifndef MTCSD_TEST_HARNESS_H
#define MTCSD_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/codec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/store_sqlite.h>

/* The world every test shares. */
extern const uint8_t DH_MTCS_ID[8];
extern const uint8_t DH_UEID[8];
extern const uint8_t DH_GW_OK[8];  /* relay allowed for DH_DEV_A */
extern const uint8_t DH_GW_BAD[8]; /* relay registered, not allowed */
/* Devices: A suite 1, B suite 2, C suite 3 (all granted to DH_UEID); D
 * disabled; N provisioned without a grant; R granted with perms 0x01 only.
 * Load devices: dh_load_dev(i), i < DH_NLOAD, suite 1, granted. */
extern const uint8_t DH_DEV_A[8], DH_DEV_B[8], DH_DEV_C[8], DH_DEV_D[8],
  DH_DEV_N[8], DH_DEV_R[8], DH_DEV_UNKNOWN[8];
#define DH_NLOAD 32
void dh_load_dev(uint8_t id[8], unsigned i);

/** Path of the mtcsd binary (argv[1] of every test program). */
extern const char *dh_mtcsd_path;

typedef struct dh_env {
  char dir[256];
  char conf[300];
  char db[300];
  char log[320];
  pid_t pid;
  int starts;
  char addr[64];
  char metrics_addr[64];
} dh_env;

/**
 * Creates the state directory and everything in it; extra is appended to
 * the default mtcsd.conf (may be NULL).  Aborts the program on failure.
 */
void dh_env_create(dh_env *e, const char *extra);
/** Rewrites mtcsd.conf with the defaults and extra (a key set in extra
 *  replaces its default). */
void dh_write_config(dh_env *e, const char *extra);
/** Stops mtcsd (SIGKILL) if running and removes the directory. */
void dh_env_destroy(dh_env *e);

/**
 * Starts mtcsd -c conf with stderr into a new log file and waits (10 s at
 * most) for event=ready.  Returns 0, or mtcsd's exit status (> 0) if it
 * exited, or -1 on timeout.
 */
int dh_start(dh_env *e);
/** Runs mtcsd with args (argv after the program name, NULL-terminated)
 *  and waits for it; returns its exit status and its stderr in out. */
int dh_run(dh_env *e, const char *const *args, char *out, size_t outlen);
/** Sends sig and waits (timeout_ms) for the exit.  Returns the exit status,
 *  128 + signal when killed, or -1 on timeout (then mtcsd is killed). */
int dh_stop(dh_env *e, int sig, int timeout_ms);
/** Waits until the current log contains needle (timeout_ms).  0 or -1. */
int dh_wait_log(dh_env *e, const char *needle, int timeout_ms);
/** Counts occurrences of needle in the current log. */
int dh_log_count(dh_env *e, const char *needle);
/** GET /metrics into out; returns the value of the sample line that starts
 *  with `sample ` (e.g. "mtcsd_sessions_issued_total"), or -1. */
long long dh_metric(dh_env *e, const char *sample);

/* --------------------------------------------------------------- client */

typedef struct dh_client {
  int fd;
  SSL *ssl;
  SSL_CTX *ctx;
  uint8_t buf[140000];
  size_t len;
  size_t consumed; /* the frame returned last, removed at the next call */
} dh_client;

/** Which client certificate to present. */
enum {
  DH_CERT_UE = 0,   /* ues/<UEID>.pem: good */
  DH_CERT_OTHER_CA, /* a UE certificate from another CA */
  DH_CERT_EXPIRED,  /* signed by the CA, expired */
  DH_CERT_BAD_CN,   /* CN "not-a-ueid" */
  DH_CERT_TWO_CN,   /* two commonNames */
  DH_CERT_NO_CN,    /* no commonName */
  DH_CERT_REVOKED,  /* in the CRL */
  DH_CERT_NONE      /* no client certificate at all */
};

/** TCP + TLS handshake.  0, or -1 (the handshake failed or timed out). */
int dh_connect(dh_env *e, dh_client *c, int which);
/** TCP only (no TLS).  0 or -1. */
int dh_connect_tcp(dh_env *e, dh_client *c);
void dh_close(dh_client *c);
/** Writes n bytes through TLS (blocking).  0 or -1. */
int dh_send(dh_client *c, const void *p, size_t n);
/** Writes an M2 frame.  0 or -1. */
int dh_send_m2(dh_client *c, uint32_t req_id, const uint8_t *m1, size_t len);
/**
 * Reads one frame (timeout_ms).  Returns 1 and fills type, req_id and the
 * body (pointing into c->buf, valid until the next call); 0 when the
 * connection closed; -2 on timeout.
 */
int dh_recv(dh_client *c, uint8_t *type, uint32_t *req_id, const uint8_t **body,
            size_t *bodylen, int timeout_ms);
/** Waits until the server closes the connection: 0 closed, -2 timeout, 1 a
 *  frame arrived instead. */
int dh_wait_closed(dh_client *c, int timeout_ms);

/* --------------------------------------------------------------- device */

typedef struct dh_device {
  uint8_t id[8];
  uint8_t suite;
  uint8_t k_auth[32], k_dm[32];
  uint64_t nonce; /* next MTCdNonce */
  const mtcsec_crypto *crypto;
} dh_device;

/** The M1 of one exchange, kept to check the answer. */
typedef struct dh_m1 {
  uint8_t bytes[MTCSEC_HS_MAX_LEN];
  size_t len;
  uint8_t nonce[8];
  uint8_t info[255];
  size_t info_len;
} dh_m1;

/** A provisioned device (the same PSKey derivation as the DB's). */
void dh_device_init(dh_device *d, const uint8_t id[8]);
/** Builds an M1 with the next nonce (or `nonce` if use_nonce) and info. */
void dh_m1_build(dh_device *d, dh_m1 *m, const uint8_t ueid[8],
                 const uint8_t mtcs_id[8], const uint8_t *info,
                 size_t info_len);
/** As dh_m1_build with an explicit nonce and suite byte (for errors). */
void dh_m1_build_ex(dh_device *d, dh_m1 *m, const uint8_t ueid[8],
                    const uint8_t mtcs_id[8], const uint8_t *info,
                    size_t info_len, uint64_t nonce, uint8_t suite);
/**
 * Checks an M3 body against the M1: M4 decodes, MTCsMIC verifies, DMKey is
 * the one the device derives.  Writes the MTCsNonce.  0 or -1.
 */
int dh_check_m3(dh_device *d, const dh_m1 *m, const uint8_t *body,
                size_t bodylen, uint8_t mtcs_nonce[8]);

/** The OpenSSL provider of the test process. */
const mtcsec_crypto *dh_crypto(void);
/** Opens the env's DB (read-write, for admin calls).  Aborts on error. */
mtcsec_sqlite *dh_db_open(dh_env *e);

/** Milliseconds on the monotonic clock. */
uint64_t dh_now_ms(void);
/** Sleeps ms milliseconds. */
void dh_sleep_ms(unsigned ms);

/** Installs the watchdog (kills mtcsd, removes dirs, exits 1 after
 *  seconds) and reads argv[1]. */
void dh_init(int argc, char **argv, unsigned seconds);

#endif /* MTCSD_TEST_HARNESS_H */
