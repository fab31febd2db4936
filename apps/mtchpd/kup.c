/*
 * The K_UP service (P4; docs/CELLULAR-HOME-PROXY.md): HTTPS with TLS 1.3
 * and client certificates (apps/common app_tls_server_ctx), the client's
 * identity = certificate CN = MTC server ID (app_tls_peer_ueid), and a
 * deliberately small HTTP/1.1 server: one request per connection, request
 * head at most KUP_HEAD_MAX bytes, Content-Length required (no chunked
 * bodies), body at most KUP_BODY_MAX bytes, socket timeouts of
 * idle_timeout.  Each connection is served by its own detached thread
 * (at most kup_max_connections), so a slow client never stalls GSUP.
 *
 *   POST /v1/kup  {"imsi": "001010000000001", "rand": "<32 hex>"}
 *   200 {"kup": "<32 hex>"}   400 malformed   403 not an allowed server
 *   404 unknown or expired (IMSI, RAND)      405/404 other method/path
 *
 * Every request is logged: server id, imsi, status, result (never keys),
 * and counted in mtchpd_kup_requests_total{status}.
 *
 * SIGHUP: the main thread creates each connection's SSL from the current
 * SSL_CTX (an SSL holds its own reference to the context) and hands the
 * thread a reference to the current allowed_servers snapshot (hp_acl), so
 * a reload never changes what a thread in flight reads, and the next
 * connection sees the new certificates and list.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/err.h>

#include "mtchpd.h"

#define KUP_HEAD_MAX 8192
#define KUP_BODY_MAX 1024

typedef struct kup_job {
  hp_daemon *d;
  int fd;
  SSL *ssl;
  hp_acl *acl;
  uint32_t idle_timeout; /* seconds, as configured at accept time */
  char peer[64];
} kup_job;

/* ------------------------------------------------------- allowed list */

hp_acl *hp_acl_new(const hp_config *cfg) {
  hp_acl *a = calloc(1, sizeof(*a));
  if (a == NULL) {
    return NULL;
  }
  atomic_init(&a->refs, 1);
  a->n = cfg->nallowed;
  memcpy(a->ids, cfg->allowed, cfg->nallowed * MTCSEC_ID_LEN);
  return a;
}

void hp_acl_ref(hp_acl *a) { atomic_fetch_add(&a->refs, 1); }

void hp_acl_unref(hp_acl *a) {
  if (a != NULL && atomic_fetch_sub(&a->refs, 1) == 1) {
    free(a);
  }
}

int hp_acl_allowed(const hp_acl *a, const uint8_t id[MTCSEC_ID_LEN]) {
  size_t i;
  for (i = 0; i < a->n; i++) {
    if (memcmp(a->ids[i], id, MTCSEC_ID_LEN) == 0) {
      return 1;
    }
  }
  return 0;
}

typedef struct kup_req {
  char method[8];
  char path[64];
  long content_length; /* -1: none */
  int bad;             /* a malformed head */
  int chunked;
  char body[KUP_BODY_MAX + 1];
  size_t bodylen;
} kup_req;

static int kup_write_all(SSL *ssl, const char *p, size_t n) {
  while (n > 0) {
    int w = SSL_write(ssl, p, n > 65536 ? 65536 : (int)n);
    if (w <= 0) {
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static const char *kup_reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 411:
    return "Length Required";
  case 413:
    return "Content Too Large";
  case 501:
    return "Not Implemented";
  default:
    return "Internal Server Error";
  }
}

static void kup_respond(SSL *ssl, int status, const char *json) {
  char head[256];
  size_t blen = strlen(json);
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                   "Connection: close\r\n\r\n",
                   status, kup_reason(status), blen + 1);
  if (n > 0 && (size_t)n < sizeof(head) &&
      kup_write_all(ssl, head, (size_t)n) == 0 &&
      kup_write_all(ssl, json, blen) == 0) {
    (void)kup_write_all(ssl, "\n", 1);
  }
}

static void kup_error(SSL *ssl, int status, const char *code) {
  char body[128];
  snprintf(body, sizeof(body), "{\"error\":\"%s\"}", code);
  kup_respond(ssl, status, body);
}

/* Parses the head (request line and headers, CRLF line ends). */
static void kup_parse_head(char *head, kup_req *r) {
  char *line = head, *eol, *sp1, *sp2;
  int first = 1;

  r->content_length = -1;
  while ((eol = strstr(line, "\r\n")) != NULL) {
    *eol = '\0';
    if (first) {
      first = 0;
      sp1 = strchr(line, ' ');
      sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
      if (sp1 == NULL || sp2 == NULL || strcmp(sp2 + 1, "HTTP/1.1") != 0 ||
          (size_t)(sp1 - line) >= sizeof(r->method) ||
          (size_t)(sp2 - sp1 - 1) >= sizeof(r->path)) {
        r->bad = 1;
        return;
      }
      memcpy(r->method, line, (size_t)(sp1 - line));
      memcpy(r->path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    } else if (line[0] == '\0') {
      return;
    } else {
      char *colon = strchr(line, ':'), *v;
      if (colon == NULL || colon == line) {
        r->bad = 1;
        return;
      }
      *colon = '\0';
      v = colon + 1;
      while (*v == ' ' || *v == '\t') {
        v++;
      }
      if (strcasecmp(line, "Content-Length") == 0) {
        char *end = NULL;
        long cl;
        if (r->content_length >= 0 || !isdigit((unsigned char)v[0])) {
          r->bad = 1; /* twice, or not a number */
          return;
        }
        errno = 0;
        cl = strtol(v, &end, 10);
        while (end != NULL && (*end == ' ' || *end == '\t')) {
          end++;
        }
        if (errno != 0 || end == NULL || *end != '\0' || cl < 0) {
          r->bad = 1;
          return;
        }
        r->content_length = cl;
      } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
        r->chunked = 1;
      }
    }
    line = eol + 2;
  }
  /* The head was cut after the last header's CRLF: nothing may remain. */
  if (first || line[0] != '\0') {
    r->bad = 1;
  }
}

/* Reads the head and the body.  Returns the HTTP status to answer with
 * (0 = request complete), or -1 when the connection is gone. */
static int kup_read_request(SSL *ssl, kup_req *r) {
  char head[KUP_HEAD_MAX + 1];
  size_t hlen = 0, extra;
  char *end = NULL;

  memset(r, 0, sizeof(*r));
  while (end == NULL) {
    int n;
    if (hlen == KUP_HEAD_MAX) {
      return 400;
    }
    n = SSL_read(ssl, head + hlen, (int)(KUP_HEAD_MAX - hlen));
    if (n <= 0) {
      return hlen == 0 ? -1 : 400;
    }
    hlen += (size_t)n;
    head[hlen] = '\0';
    if (memchr(head, '\0', hlen) != NULL) {
      return 400;
    }
    end = strstr(head, "\r\n\r\n");
  }
  extra = hlen - (size_t)(end + 4 - head);
  end[2] = '\0'; /* keep the last header's CRLF */
  {
    char tail[KUP_BODY_MAX + 1];
    size_t tl = extra <= KUP_BODY_MAX ? extra : KUP_BODY_MAX;
    memcpy(tail, end + 4, tl);
    kup_parse_head(head, r);
    if (r->bad) {
      return 400;
    }
    if (r->chunked) {
      return 501;
    }
    if (r->content_length < 0) {
      return strcmp(r->method, "POST") == 0 ? 411 : 0;
    }
    if (r->content_length > KUP_BODY_MAX) {
      return 413;
    }
    if (extra > (size_t)r->content_length) {
      return 400; /* pipelining or garbage: one request per connection */
    }
    memcpy(r->body, tail, tl);
    r->bodylen = tl;
  }
  while (r->bodylen < (size_t)r->content_length) {
    int n = SSL_read(ssl, r->body + r->bodylen,
                     (int)((size_t)r->content_length - r->bodylen));
    if (n <= 0) {
      return 400;
    }
    r->bodylen += (size_t)n;
  }
  r->body[r->bodylen] = '\0';
  return 0;
}

/* {"imsi": digits, "rand": 32 hex}, nothing else.  0 or -1. */
static int kup_parse_body(const kup_req *r, char imsi[16],
                          uint8_t rand[MTCSEC_3GPP_RAND_LEN]) {
  cJSON *j = cJSON_ParseWithLength(r->body, r->bodylen), *it;
  int rv = -1, n = 0;
  const char *si = NULL, *sr = NULL;

  if (j == NULL || !cJSON_IsObject(j)) {
    goto cleanup;
  }
  cJSON_ArrayForEach(it, j) {
    n++;
    if (it->string != NULL && strcmp(it->string, "imsi") == 0 &&
        cJSON_IsString(it)) {
      si = it->valuestring;
    } else if (it->string != NULL && strcmp(it->string, "rand") == 0 &&
               cJSON_IsString(it)) {
      sr = it->valuestring;
    }
  }
  if (n != 2 || si == NULL || sr == NULL ||
      !mtcsec_auc_imsi_valid(si, strlen(si)) ||
      app_parse_hex(sr, rand, MTCSEC_3GPP_RAND_LEN) != 0) {
    goto cleanup;
  }
  snprintf(imsi, 16, "%s", si);
  rv = 0;

cleanup:
  cJSON_Delete(j);
  return rv;
}

static void kup_serve(hp_daemon *d, const kup_job *job) {
  SSL *ssl = job->ssl;
  const char *peer = job->peer;
  uint8_t sid[MTCSEC_ID_LEN], rand[MTCSEC_3GPP_RAND_LEN];
  uint8_t ck[MTCSEC_3GPP_CK_LEN], ik[MTCSEC_3GPP_IK_LEN], kup[MTCSEC_KUP_LEN];
  char sidhex[17] = "-", imsi[16] = "-", body[64], kuphex[33];
  kup_req r;
  mtcsec_crypto crypto;
  int st, rv, parsed;
  const char *result;

  if (app_tls_peer_ueid(ssl, sid) != 0) {
    (void)kup_read_request(ssl, &r);
    kup_error(ssl, 403, "no_server_identity");
    st = 403;
    result = "no_identity";
    goto log;
  }
  app_format_id(sidhex, sid);
  st = kup_read_request(ssl, &r);
  if (st < 0) {
    st = 0;
    result = "closed";
    goto log;
  }
  if (st != 0) {
    kup_error(ssl, st, "malformed_request");
    result = "malformed";
    goto log;
  }
  if (strcmp(r.path, "/v1/kup") != 0) {
    st = 404;
    kup_error(ssl, st, "no_such_resource");
    result = "bad_path";
    goto log;
  }
  if (strcmp(r.method, "POST") != 0) {
    st = 405;
    kup_error(ssl, st, "method_not_allowed");
    result = "bad_method";
    goto log;
  }
  /* Parsed before the authorization check only so that a refused request
   * is logged with its IMSI; a refused server learns nothing more. */
  parsed = kup_parse_body(&r, imsi, rand) == 0;
  if (!hp_acl_allowed(job->acl, sid)) {
    st = 403;
    kup_error(ssl, st, "server_not_authorized");
    result = "unauthorized";
    goto log;
  }
  if (!parsed) {
    st = 400;
    kup_error(ssl, st, "malformed_json");
    result = "malformed";
    goto log;
  }
  rv = hp_cache_get(&d->cache, imsi, rand, app_now_ms(), ck, ik);
  if (rv != 0) {
    st = 404;
    kup_error(ssl, st,
              rv == MTCSEC_ERR_EXPIRED ? "vector_expired" : "unknown_vector");
    result = rv == MTCSEC_ERR_EXPIRED ? "expired" : "unknown";
    goto log;
  }
  /* A provider per thread: the main thread's is not shared. */
  if (mtcsec_crypto_openssl_new(&crypto) != 0) {
    mtcsec_crypto_openssl_del(&crypto);
    st = 500;
    kup_error(ssl, st, "internal");
    result = "crypto_error";
    goto log;
  }
  rv = mtcsec_kup_derive(&crypto, ck, ik, sid, rand, kup);
  mtcsec_crypto_openssl_del(&crypto);
  if (rv != 0) {
    st = 500;
    kup_error(ssl, st, "internal");
    result = "crypto_error";
    goto log;
  }
  app_format_hex(kuphex, kup, sizeof(kup));
  snprintf(body, sizeof(body), "{\"kup\":\"%s\"}", kuphex);
  kup_respond(ssl, 200, body);
  st = 200;
  result = "ok";

log:
  mtcsec_zeroize(ck, sizeof(ck));
  mtcsec_zeroize(ik, sizeof(ik));
  mtcsec_zeroize(kup, sizeof(kup));
  mtcsec_zeroize(kuphex, sizeof(kuphex));
  mtcsec_zeroize(body, sizeof(body));
  hp_metrics_kup(&d->metrics, st);
  app_log(st == 200 ? MTCSEC_LOG_INFO : MTCSEC_LOG_WARN,
          "event=kup_request peer=%s server=%s imsi=%s status=%d result=%s",
          peer, sidhex, imsi, st, result);
}

static void *kup_thread(void *arg) {
  kup_job *job = arg;
  hp_daemon *d = job->d;
  SSL *ssl = job->ssl;
  struct timeval tv;

  tv.tv_sec = (time_t)job->idle_timeout;
  tv.tv_usec = 0;
  (void)setsockopt(job->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)setsockopt(job->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (SSL_set_fd(ssl, job->fd) == 1) {
    if (SSL_accept(ssl) == 1) {
      kup_serve(d, job);
      (void)SSL_shutdown(ssl);
    } else {
      unsigned long e = ERR_peek_last_error();
      char buf[160];
      ERR_error_string_n(e, buf, sizeof(buf));
      hp_metrics_kup(&d->metrics, 0);
      app_log(MTCSEC_LOG_WARN,
              "event=kup_request peer=%s status=0 result=tls_failed "
              "detail=\"%s\"",
              job->peer, e != 0 ? buf : "handshake failed");
    }
  }
  ERR_clear_error();
  SSL_free(ssl);
  (void)close(job->fd);
  hp_acl_unref(job->acl);
  free(job);
  pthread_mutex_lock(&d->kup_mu);
  d->kup_active--;
  pthread_mutex_unlock(&d->kup_mu);
  return NULL;
}

void hp_kup_accept(hp_daemon *d) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  int fd = accept(d->kup_fd, (struct sockaddr *)&ss, &sl), flags;
  kup_job *job;
  pthread_t t;
  pthread_attr_t attr;

  if (fd < 0) {
    return;
  }
  /* Blocking with timeouts inside the thread. */
  flags = fcntl(fd, F_GETFL);
  if (flags >= 0) {
    (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  pthread_mutex_lock(&d->kup_mu);
  if (d->kup_active >= d->cfg.kup_max_connections) {
    pthread_mutex_unlock(&d->kup_mu);
    hp_metrics_kup(&d->metrics, 0);
    app_log(MTCSEC_LOG_WARN, "event=kup_refused reason=max_connections");
    (void)close(fd);
    return;
  }
  d->kup_active++;
  pthread_mutex_unlock(&d->kup_mu);
  job = calloc(1, sizeof(*job));
  if (job != NULL) {
    char host[64] = "?";
    if (ss.ss_family == AF_INET) {
      const unsigned char *a =
        (const unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr;
      snprintf(host, sizeof(host), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    } else if (ss.ss_family == AF_INET6) {
      snprintf(host, sizeof(host), "ipv6");
    }
    job->d = d;
    job->fd = fd;
    job->idle_timeout = d->cfg.idle_timeout;
    snprintf(job->peer, sizeof(job->peer), "%s", host);
    /* Here, in the main thread, which alone swaps d->tls and d->acl. */
    job->ssl = SSL_new(d->tls);
    job->acl = d->acl;
    hp_acl_ref(job->acl);
  }
  if (job == NULL || job->ssl == NULL || pthread_attr_init(&attr) != 0) {
    goto fail_job;
  }
  (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, kup_thread, job) != 0) {
    pthread_attr_destroy(&attr);
    goto fail_job;
  }
  pthread_attr_destroy(&attr);
  return;

fail_job:
  if (job != NULL) {
    SSL_free(job->ssl);
    hp_acl_unref(job->acl);
    free(job);
  }
  hp_metrics_kup(&d->metrics, 0);
  app_log(MTCSEC_LOG_ERROR, "event=kup_refused reason=no_thread");
  (void)close(fd);
  pthread_mutex_lock(&d->kup_mu);
  d->kup_active--;
  pthread_mutex_unlock(&d->kup_mu);
}

void hp_kup_drain(hp_daemon *d, int timeout_ms) {
  int waited = 0;
  for (;;) {
    unsigned n;
    struct timespec ts = {0, 20 * 1000 * 1000};
    pthread_mutex_lock(&d->kup_mu);
    n = d->kup_active;
    pthread_mutex_unlock(&d->kup_mu);
    if (n == 0 || waited >= timeout_ms) {
      if (n != 0) {
        app_log(MTCSEC_LOG_WARN, "event=kup_drain_timeout active=%u", n);
      }
      return;
    }
    nanosleep(&ts, NULL);
    waited += 20;
  }
}
