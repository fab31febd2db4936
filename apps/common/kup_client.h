/*
 * A blocking HTTPS client for the home proxy's K_UP service
 * (docs/CELLULAR-HOME-PROXY.md, "K_UP service"):
 *
 *     POST /v1/kup  {"imsi": "<digits>", "rand": "<32 hex>"}
 *     200 {"kup": "<32 hex>"}   403 not authorized   404 unknown vector
 *
 * TLS 1.3 only (apps/common app_tls_client_ctx): the client presents its
 * certificate (CN = the MTC server's ID) and verifies mtchpd's certificate
 * against a CA and against the host of the address (a DNS name, or an IP
 * address checked against the certificate's IP subjectAltNames).  One
 * SSL_CTX per client object, made by kup_client_new(); each fetch is one
 * TCP connection and one request (mtchpd closes after answering).
 *
 * Every fetch is bounded by one deadline (connect, handshake, request and
 * response together); a call never blocks longer than timeout_ms plus the
 * name lookup of a DNS host.  The response is parsed strictly: an
 * "HTTP/1.1 NNN" status line, exactly one Content-Length, no
 * Transfer-Encoding, a body of exactly that length; for 200, a JSON object
 * whose only member is "kup" with 32 hex digits.
 *
 * K_UP is zeroized in every buffer of this module it passes through (the
 * TLS record layer's copy too: SSL_OP_CLEANSE_PLAINTEXT); the caller
 * zeroizes its own copy.  A client object is used by one thread at a time.
 * The process ignores SIGPIPE (a peer that closes early must not kill it).
 */
#ifndef MTCSEC_KUP_CLIENT_H
#define MTCSEC_KUP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/cellular.h>

/** Outcomes of kup_client_fetch() (0 or negative). */
enum {
  KUP_OK = 0,
  KUP_ERR_REFUSED = -1,     /* 403: this server is not authorized */
  KUP_ERR_UNKNOWN = -2,     /* 404: (IMSI, RAND) unknown or expired */
  KUP_ERR_FAILED = -3,      /* another status, or a response that breaks the
                               rules above */
  KUP_ERR_UNREACHABLE = -4, /* name lookup, connect, TLS handshake (mtchpd's
                               certificate refused) or the deadline */
  KUP_ERR_INVALID = -5      /* bad arguments (caller error) */
};

/** Default deadline of one fetch, ms. */
#define KUP_CLIENT_TIMEOUT_MS 5000
/** Largest response accepted (head and body), bytes. */
#define KUP_CLIENT_RESP_MAX 8192

typedef struct kup_client kup_client;

/** What one fetch saw, for logs and metrics (never key material). */
typedef struct kup_result {
  int status;          /* HTTP status, 0 when no response was read */
  uint64_t elapsed_us; /* the whole fetch */
  char detail[192];    /* a sentence saying what went wrong ("" when OK) */
} kup_result;

/**
 * Makes a client for addr ("host:port", "[v6]:port") with its own TLS
 * context: certificate cert_file and key key_file (PEM), mtchpd verified
 * against ca_file.  timeout_ms 0 means KUP_CLIENT_TIMEOUT_MS.  Reads the
 * files now; connects nothing.  Returns NULL with a sentence naming the
 * file or the address in err.
 */
kup_client *kup_client_new(const char *addr, const char *ca_file,
                           const char *cert_file, const char *key_file,
                           unsigned timeout_ms, char *err, size_t errlen);

/** Frees c (NULL allowed). */
void kup_client_free(kup_client *c);

/** The address c talks to. */
const char *kup_client_addr(const kup_client *c);

/**
 * Asks for K_UP of (imsi, rand): imsi is 6..15 decimal digits
 * (NUL-terminated).  On KUP_OK, kup holds K_UP (the caller zeroizes it);
 * otherwise kup is zeroized.  res may be NULL.
 *
 * Returns KUP_OK, KUP_ERR_REFUSED, KUP_ERR_UNKNOWN, KUP_ERR_FAILED,
 * KUP_ERR_UNREACHABLE or KUP_ERR_INVALID.
 */
int kup_client_fetch(kup_client *c, const char *imsi,
                     const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                     uint8_t kup[MTCSEC_KUP_LEN], kup_result *res);

/**
 * The response parser of kup_client_fetch(), on a complete response
 * (resp, len; need not be NUL-terminated).  Sets *status to the HTTP status
 * when the status line parses (else 0) and, for 200, fills kup.  detail
 * (may be NULL) receives what was wrong, or the server's "error" code.
 *
 * Returns KUP_OK, KUP_ERR_REFUSED (403), KUP_ERR_UNKNOWN (404),
 * KUP_ERR_FAILED (other status, or malformed) or KUP_ERR_INVALID.  kup is
 * zeroized unless KUP_OK.  Exposed for the tests.
 */
int kup_parse_response(const char *resp, size_t len, int *status,
                       uint8_t kup[MTCSEC_KUP_LEN], char *detail,
                       size_t detaillen);

/** "ok", "refused", "unknown_vector", "failed", "unreachable", "invalid". */
const char *kup_strerror(int rv);

#endif /* MTCSEC_KUP_CLIENT_H */
