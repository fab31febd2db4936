/*
 * The K_UP client (apps/common/kup_client.h): one TLS 1.3 connection per
 * fetch to mtchpd's HTTPS service, non-blocking socket driven with poll()
 * against one deadline (apps/common/deadline.c, shared with mtchpd's K_UP
 * service), strict HTTP/1.1 response parsing, cJSON for the
 * body.  K_UP passes through the response buffer, cJSON's copy of the
 * string and the hex decoder: all three are zeroized here.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "app.h"
#include "deadline.h"
#include "kup_client.h"

/* Largest Content-Length accepted (mtchpd's bodies are tens of bytes). */
#define KUP_BODY_MAX 1024

struct kup_client {
  SSL_CTX *ctx;
  char addr[256];
  char host[256];
  char port[8];
  int host_is_ip;
  unsigned timeout_ms;
};

static void kup_detail(char *d, size_t dl, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static void kup_detail(char *d, size_t dl, const char *fmt, ...) {
  va_list ap;
  if (d == NULL || dl == 0) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(d, dl, fmt, ap);
  va_end(ap);
}

/* "host:port" or "[v6]:port" into host and port.  0 or -1. */
static int kup_split(const char *addr, char *host, size_t hostlen, char *port,
                     size_t portlen) {
  const char *colon, *h;
  size_t hl, pl;
  if (addr[0] == '[') {
    const char *close = strchr(addr, ']');
    if (close == NULL || close[1] != ':') {
      return -1;
    }
    h = addr + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(addr, ':');
    if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL) {
      return -1;
    }
    h = addr;
    hl = (size_t)(colon - addr);
  }
  pl = strlen(colon + 1);
  if (hl == 0 || hl >= hostlen || pl == 0 || pl >= portlen || pl > 5 ||
      strspn(colon + 1, "0123456789") != pl || atoi(colon + 1) > 65535 ||
      atoi(colon + 1) == 0) {
    return -1;
  }
  memcpy(host, h, hl);
  host[hl] = '\0';
  memcpy(port, colon + 1, pl + 1);
  return 0;
}

kup_client *kup_client_new(const char *addr, const char *ca_file,
                           const char *cert_file, const char *key_file,
                           unsigned timeout_ms, char *err, size_t errlen) {
  kup_client *c;
  unsigned char ipbuf[16];

  if (addr == NULL || ca_file == NULL || cert_file == NULL ||
      key_file == NULL) {
    kup_detail(err, errlen, "home proxy: missing address or file name");
    return NULL;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL) {
    kup_detail(err, errlen, "home proxy: out of memory");
    return NULL;
  }
  if (strlen(addr) >= sizeof(c->addr) ||
      kup_split(addr, c->host, sizeof(c->host), c->port, sizeof(c->port)) !=
        0) {
    kup_detail(err, errlen,
               "home_proxy '%s': expected host:port or [v6]:port with a "
               "port 1..65535",
               addr);
    free(c);
    return NULL;
  }
  snprintf(c->addr, sizeof(c->addr), "%s", addr);
  c->host_is_ip = inet_pton(AF_INET, c->host, ipbuf) == 1 ||
                  inet_pton(AF_INET6, c->host, ipbuf) == 1;
  c->timeout_ms = timeout_ms != 0 ? timeout_ms : KUP_CLIENT_TIMEOUT_MS;
  c->ctx = app_tls_client_ctx(cert_file, key_file, ca_file, err, errlen);
  if (c->ctx == NULL) {
    free(c);
    return NULL;
  }
  /* The record layer keeps no plaintext copy (the response holds K_UP). */
  SSL_CTX_set_options(c->ctx, SSL_OP_CLEANSE_PLAINTEXT);
  return c;
}

void kup_client_free(kup_client *c) {
  if (c != NULL) {
    SSL_CTX_free(c->ctx);
    free(c);
  }
}

const char *kup_client_addr(const kup_client *c) {
  return c != NULL ? c->addr : "";
}

const char *kup_strerror(int rv) {
  switch (rv) {
  case KUP_OK:
    return "ok";
  case KUP_ERR_REFUSED:
    return "refused";
  case KUP_ERR_UNKNOWN:
    return "unknown_vector";
  case KUP_ERR_FAILED:
    return "failed";
  case KUP_ERR_UNREACHABLE:
    return "unreachable";
  default:
    return "invalid";
  }
}

/* ------------------------------------------------------------ parsing */

/* Wipes every string of a parsed JSON tree (cJSON copies them). */
static void kup_json_wipe(cJSON *j) {
  for (; j != NULL; j = j->next) {
    if (j->valuestring != NULL) {
      mtcsec_zeroize(j->valuestring, strlen(j->valuestring));
    }
    if (j->string != NULL) {
      mtcsec_zeroize(j->string, strlen(j->string));
    }
    kup_json_wipe(j->child);
  }
}

static void kup_json_free(cJSON *j) {
  kup_json_wipe(j);
  cJSON_Delete(j);
}

/* The error code of a JSON error body, reduced to [a-z0-9_] for logs. */
static void kup_error_code(const char *body, size_t len, char *out,
                           size_t outlen) {
  cJSON *j = cJSON_ParseWithLength(body, len);
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
  size_t i, n = 0;
  out[0] = '\0';
  if (cJSON_IsString(e) && e->valuestring != NULL) {
    for (i = 0; e->valuestring[i] != '\0' && n + 1 < outlen && n < 40; i++) {
      char ch = e->valuestring[i];
      if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') {
        out[n++] = ch;
      }
    }
    out[n] = '\0';
  }
  kup_json_free(j);
}

/* Where the head ends (just past "\r\n\r\n"), or NULL. */
static const char *kup_head_end(const char *resp, size_t len) {
  const char *p = memmem(resp, len, "\r\n\r\n", 4);
  return p != NULL ? p + 4 : NULL;
}

static int kup_token_char(char ch) {
  return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.';
}

/*
 * Checks the header lines in [p, end) (each ends with CRLF) and finds the
 * Content-Length.  0, or -1 with detail.
 */
static int kup_parse_headers(const char *p, const char *end, long *clen,
                             char *detail, size_t dl) {
  *clen = -1;
  while (p < end) {
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    const char *colon, *v, *ve;
    size_t nl;
    if (eol == NULL) {
      kup_detail(detail, dl, "header line without CRLF");
      return -1;
    }
    colon = memchr(p, ':', (size_t)(eol - p));
    if (colon == NULL || colon == p) {
      kup_detail(detail, dl, "header line without a name");
      return -1;
    }
    for (v = p; v < colon; v++) {
      if (!kup_token_char(*v)) {
        kup_detail(detail, dl, "bad character in a header name");
        return -1;
      }
    }
    nl = (size_t)(colon - p);
    v = colon + 1;
    while (v < eol && (*v == ' ' || *v == '\t')) {
      v++;
    }
    ve = eol;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
      ve--;
    }
    for (const char *q = v; q < ve; q++) {
      if (*q == '\0' || *q == '\r' || *q == '\n') {
        kup_detail(detail, dl, "control character in a header value");
        return -1;
      }
    }
    if (nl == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
      long n = 0;
      const char *q;
      if (*clen >= 0 || v == ve || ve - v > 7) {
        kup_detail(detail, dl, "Content-Length repeated, empty or too long");
        return -1;
      }
      for (q = v; q < ve; q++) {
        if (*q < '0' || *q > '9') {
          kup_detail(detail, dl, "Content-Length is not a number");
          return -1;
        }
        n = n * 10 + (*q - '0');
      }
      *clen = n;
    } else if (nl == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
      kup_detail(detail, dl, "Transfer-Encoding is not accepted");
      return -1;
    }
    p = eol + 2;
  }
  if (*clen < 0) {
    kup_detail(detail, dl, "no Content-Length");
    return -1;
  }
  return 0;
}

/* {"kup": "<32 hex>"} and nothing else.  0 or -1 (kup zeroized). */
static int kup_parse_body(const char *body, size_t len,
                          uint8_t kup[MTCSEC_KUP_LEN], char *detail,
                          size_t dl) {
  const char *jend = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(body, len, &jend, 0);
  const cJSON *it;
  int n = 0, rv = -1;
  const char *hex = NULL;

  if (j == NULL || !cJSON_IsObject(j) || jend == NULL) {
    kup_detail(detail, dl, "200 body is not a JSON object");
    goto cleanup;
  }
  for (; jend < body + len; jend++) {
    if (*jend != ' ' && *jend != '\t' && *jend != '\r' && *jend != '\n') {
      kup_detail(detail, dl, "data after the JSON object");
      goto cleanup;
    }
  }
  cJSON_ArrayForEach(it, j) {
    n++;
    if (it->string != NULL && strcmp(it->string, "kup") == 0 &&
        cJSON_IsString(it)) {
      hex = it->valuestring;
    }
  }
  if (n != 1 || hex == NULL || strlen(hex) != 2 * MTCSEC_KUP_LEN ||
      app_parse_hex(hex, kup, MTCSEC_KUP_LEN) != 0) {
    kup_detail(detail, dl, "200 body is not {\"kup\": <32 hex digits>}");
    goto cleanup;
  }
  rv = 0;

cleanup:
  if (rv != 0) {
    mtcsec_zeroize(kup, MTCSEC_KUP_LEN);
  }
  kup_json_free(j);
  return rv;
}

int kup_parse_response(const char *resp, size_t len, int *status,
                       uint8_t kup[MTCSEC_KUP_LEN], char *detail,
                       size_t detaillen) {
  const char *head_end, *eol, *body;
  long clen;
  size_t bodylen;
  int st, i;
  char code[48];

  if (status == NULL || kup == NULL || (resp == NULL && len > 0)) {
    return KUP_ERR_INVALID;
  }
  *status = 0;
  mtcsec_zeroize(kup, MTCSEC_KUP_LEN);
  if (detail != NULL && detaillen > 0) {
    detail[0] = '\0';
  }
  if (len == 0) {
    kup_detail(detail, detaillen, "empty response");
    return KUP_ERR_FAILED;
  }
  head_end = kup_head_end(resp, len);
  if (head_end == NULL) {
    kup_detail(detail, detaillen, "response head incomplete");
    return KUP_ERR_FAILED;
  }
  /* Status line: "HTTP/1.1 NNN reason\r\n" (the reason may be empty). */
  eol = memmem(resp, (size_t)(head_end - resp), "\r\n", 2);
  if (eol == NULL || eol - resp < 12 || memcmp(resp, "HTTP/1.1 ", 9) != 0 ||
      (eol - resp > 12 && resp[12] != ' ')) {
    kup_detail(detail, detaillen, "bad status line");
    return KUP_ERR_FAILED;
  }
  for (st = 0, i = 9; i < 12; i++) {
    if (resp[i] < '0' || resp[i] > '9') {
      kup_detail(detail, detaillen, "bad status code");
      return KUP_ERR_FAILED;
    }
    st = st * 10 + (resp[i] - '0');
  }
  if (st < 100) {
    kup_detail(detail, detaillen, "bad status code");
    return KUP_ERR_FAILED;
  }
  *status = st;
  if (kup_parse_headers(eol + 2, head_end - 2, &clen, detail, detaillen) != 0) {
    return KUP_ERR_FAILED;
  }
  body = head_end;
  bodylen = len - (size_t)(head_end - resp);
  if (clen > KUP_BODY_MAX || (size_t)clen != bodylen) {
    kup_detail(detail, detaillen,
               "body of %zu bytes where Content-Length says %ld", bodylen,
               clen);
    return KUP_ERR_FAILED;
  }
  if (st == 200) {
    return kup_parse_body(body, bodylen, kup, detail, detaillen) == 0
             ? KUP_OK
             : KUP_ERR_FAILED;
  }
  kup_error_code(body, bodylen, code, sizeof(code));
  kup_detail(detail, detaillen, "home proxy answered %d%s%s%s", st,
             code[0] != '\0' ? " (" : "", code, code[0] != '\0' ? ")" : "");
  if (st == 403) {
    return KUP_ERR_REFUSED;
  }
  if (st == 404) {
    return KUP_ERR_UNKNOWN;
  }
  return KUP_ERR_FAILED;
}

/* ------------------------------------------------------------ network */

/* A connected non-blocking socket, or -1 with detail. */
static int kup_connect(const kup_client *c, uint64_t deadline, char *detail,
                       size_t dl) {
  struct addrinfo hints, *res = NULL, *ai;
  int fd = -1, saved = 0, rv, one = 1;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  rv = getaddrinfo(c->host, c->port, &hints, &res);
  if (rv != 0) {
    kup_detail(detail, dl, "cannot resolve %.64s: %s", c->addr,
               gai_strerror(rv));
    return -1;
  }
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0) {
      saved = errno;
      continue;
    }
    /* The handshake's last flight and the request are several small
     * writes: without NODELAY, Nagle holds each behind the peer's delayed
     * ACK. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      break;
    }
    saved = errno;
    if (saved == EINPROGRESS) {
      int soerr = 0;
      socklen_t sl = sizeof(soerr);
      if (app_wait_fd(fd, POLLOUT, deadline) != 0) {
        saved = errno;
      } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
        saved = errno;
      } else if (soerr == 0) {
        break;
      } else {
        saved = soerr;
      }
    }
    close(fd);
    fd = -1;
    if (saved == ETIMEDOUT) {
      break;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    kup_detail(detail, dl, "cannot connect to %.64s: %s", c->addr,
               strerror(saved));
  }
  return fd;
}

/* Nonzero once resp holds a head and as many body bytes as its
 * Content-Length (or the head lacks a usable one: the parser decides). */
static int kup_resp_complete(const char *resp, size_t len) {
  const char *he = kup_head_end(resp, len);
  const char *p;
  long cl = -1;
  if (he == NULL) {
    return 0;
  }
  for (p = resp; p != NULL && p < he;) {
    const char *eol = memmem(p, (size_t)(he - p), "\r\n", 2);
    if (eol == NULL) {
      break;
    }
    if (eol - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
      cl = strtol(p + 15, NULL, 10);
    }
    p = eol + 2;
  }
  if (cl < 0 || cl > KUP_BODY_MAX) {
    return 1;
  }
  return len - (size_t)(he - resp) >= (size_t)cl;
}

int kup_client_fetch(kup_client *c, const char *imsi,
                     const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                     uint8_t kup[MTCSEC_KUP_LEN], kup_result *res) {
  kup_result local;
  char req[512], body[128], randhex[2 * MTCSEC_3GPP_RAND_LEN + 1];
  char resp[KUP_CLIENT_RESP_MAX];
  char why[128];
  size_t n = 0, ilen;
  uint64_t start = app_mono_us(), deadline;
  SSL *ssl = NULL;
  int fd = -1, rv = KUP_ERR_UNREACHABLE, reqlen, r, can_shutdown = 0;

  if (res == NULL) {
    res = &local;
  }
  memset(res, 0, sizeof(*res));
  if (kup != NULL) {
    mtcsec_zeroize(kup, MTCSEC_KUP_LEN);
  }
  ilen = imsi != NULL ? strlen(imsi) : 0;
  if (c == NULL || rand == NULL || kup == NULL || ilen < 6 || ilen > 15 ||
      strspn(imsi, "0123456789") != ilen) {
    snprintf(res->detail, sizeof(res->detail), "invalid arguments");
    return KUP_ERR_INVALID;
  }
  deadline = start + (uint64_t)c->timeout_ms * 1000u;
  app_format_hex(randhex, rand, MTCSEC_3GPP_RAND_LEN);
  snprintf(body, sizeof(body), "{\"imsi\":\"%s\",\"rand\":\"%s\"}", imsi,
           randhex);
  reqlen = snprintf(req, sizeof(req),
                    "POST /v1/kup HTTP/1.1\r\nHost: %s\r\n"
                    "Content-Type: application/json\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                    c->host, strlen(body), body);
  if (reqlen < 0 || (size_t)reqlen >= sizeof(req)) {
    snprintf(res->detail, sizeof(res->detail), "request too long");
    return KUP_ERR_INVALID;
  }

  fd = kup_connect(c, deadline, res->detail, sizeof(res->detail));
  if (fd < 0) {
    goto cleanup;
  }
  ERR_clear_error();
  ssl = SSL_new(c->ctx);
  if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
    snprintf(res->detail, sizeof(res->detail), "cannot create a TLS session");
    rv = KUP_ERR_FAILED;
    goto cleanup;
  }
  if (c->host_is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host) != 1) {
      snprintf(res->detail, sizeof(res->detail), "bad IP address");
      rv = KUP_ERR_FAILED;
      goto cleanup;
    }
  } else if (SSL_set1_host(ssl, c->host) != 1 ||
             SSL_set_tlsext_host_name(ssl, c->host) != 1) {
    snprintf(res->detail, sizeof(res->detail), "bad host name");
    rv = KUP_ERR_FAILED;
    goto cleanup;
  }
  if (app_ssl_io(ssl, fd, APP_SSL_CONNECT, NULL, 0, deadline, why,
                 sizeof(why)) < 0) {
    if (SSL_get_verify_result(ssl) != X509_V_OK) {
      snprintf(why, sizeof(why), "home proxy certificate refused: %s",
               X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
    }
    snprintf(res->detail, sizeof(res->detail), "TLS with %.64s: %.80s", c->addr,
             why);
    goto cleanup;
  }
  can_shutdown = 1;
  for (r = 0; r < reqlen;) {
    int w = app_ssl_io(ssl, fd, APP_SSL_WRITE, req + r, reqlen - r, deadline,
                       why, sizeof(why));
    if (w <= 0) {
      can_shutdown = 0;
      snprintf(res->detail, sizeof(res->detail), "sending to %.64s: %.80s",
               c->addr, why);
      goto cleanup;
    }
    r += w;
  }
  for (;;) {
    if (n == sizeof(resp)) {
      snprintf(res->detail, sizeof(res->detail),
               "response longer than %d bytes", KUP_CLIENT_RESP_MAX);
      rv = KUP_ERR_FAILED;
      goto cleanup;
    }
    r = app_ssl_io(ssl, fd, APP_SSL_READ, resp + n, (int)(sizeof(resp) - n),
                   deadline, why, sizeof(why));
    if (r < 0 && n == 0) {
      can_shutdown = 0;
      snprintf(res->detail, sizeof(res->detail), "no answer from %.64s: %.80s",
               c->addr, why);
      goto cleanup;
    }
    if (r <= 0) {
      can_shutdown = r == 0;
      break; /* end of stream (or lost): the parser judges what came */
    }
    n += (size_t)r;
    if (kup_resp_complete(resp, n)) {
      break;
    }
  }
  rv = kup_parse_response(resp, n, &res->status, kup, res->detail,
                          sizeof(res->detail));

cleanup:
  if (ssl != NULL) {
    if (can_shutdown) {
      (void)SSL_shutdown(ssl); /* one try: mtchpd closes anyway */
    }
    SSL_free(ssl);
  }
  ERR_clear_error();
  if (fd >= 0) {
    close(fd);
  }
  mtcsec_zeroize(resp, sizeof(resp));
  if (rv != KUP_OK) {
    mtcsec_zeroize(kup, MTCSEC_KUP_LEN);
  }
  res->elapsed_us = app_mono_us() - start;
  return rv;
}
