/*
 * The K_UP service (P4; docs/CELLULAR-HOME-PROXY.md): HTTPS with TLS 1.3
 * and client certificates (apps/common app_tls_server_ctx), the client's
 * identity = certificate CN = MTC server ID (app_tls_peer_ueid), and a
 * deliberately small HTTP/1.1 server: one request per connection, request
 * head at most KUP_HEAD_MAX bytes, Content-Length required (no chunked
 * bodies), body at most KUP_BODY_MAX bytes.  Each connection is served by
 * its own detached thread (at most kup_max_connections, and at most
 * kup_max_per_peer from one source address), so a slow client never
 * stalls GSUP.
 *
 * One deadline per connection: idle_timeout from accept to the end of the
 * response (handshake, request and answer together), enforced on a
 * non-blocking socket with poll() (apps/common/deadline.c).  A per-read
 * timeout would not do: a peer sending one byte every few seconds would
 * hold its thread forever, and kup_max_connections such peers would deny
 * K_UP to everyone (slowloris).  A connection past its deadline is closed
 * without an answer (status 0, result=timeout).
 *
 *   POST /v1/kup  {"imsi": "001010000000001", "rand": "<32 hex>"}
 *   200 {"kup": "<32 hex>"}   400 malformed   403 not an allowed server
 *   403 {"error":"ck_released"}: the vector's CK went to the SGSN (a
 *       normal subscriber's), which could compute this K_UP itself
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
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/err.h>

#include "deadline.h"
#include "mtchpd.h"

#define KUP_HEAD_MAX 8192
#define KUP_BODY_MAX 1024

typedef struct kup_job {
  hp_daemon *d;
  int fd;
  SSL *ssl;
  hp_acl *acl;
  uint64_t deadline_us; /* accept time + idle_timeout (app_mono_us) */
  uint8_t addr[16];     /* source address, IPv4 mapped (kup_peers) */
  char peer[64];
} kup_job;

/* The connection's TLS session and its deadline. */
typedef struct kup_io {
  SSL *ssl;
  int fd;
  uint64_t deadline_us;
  int timed_out; /* an operation hit the deadline */
} kup_io;

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

/* One SSL_read into buf: > 0 bytes, 0 end of stream, -1 error or the
 * deadline (io->timed_out set). */
static int kup_read(kup_io *io, char *buf, size_t n) {
  int r = app_ssl_io(io->ssl, io->fd, APP_SSL_READ, buf,
                     n > 65536 ? 65536 : (int)n, io->deadline_us, NULL, 0);
  if (r < 0 && app_mono_us() >= io->deadline_us) {
    io->timed_out = 1;
  }
  return r;
}

static int kup_write_all(kup_io *io, const char *p, size_t n) {
  while (n > 0) {
    int w = app_ssl_io(io->ssl, io->fd, APP_SSL_WRITE, (void *)(uintptr_t)p,
                       n > 65536 ? 65536 : (int)n, io->deadline_us, NULL, 0);
    if (w <= 0) {
      if (app_mono_us() >= io->deadline_us) {
        io->timed_out = 1;
      }
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

static void kup_respond(kup_io *io, int status, const char *json) {
  char head[256];
  size_t blen = strlen(json);
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                   "Connection: close\r\n\r\n",
                   status, kup_reason(status), blen + 1);
  if (n > 0 && (size_t)n < sizeof(head) &&
      kup_write_all(io, head, (size_t)n) == 0 &&
      kup_write_all(io, json, blen) == 0) {
    (void)kup_write_all(io, "\n", 1);
  }
}

static void kup_error(kup_io *io, int status, const char *code) {
  char body[128];
  snprintf(body, sizeof(body), "{\"error\":\"%s\"}", code);
  kup_respond(io, status, body);
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
 * (0 = request complete), -1 when the connection is gone, or -2 when the
 * connection's deadline passed (nobody to answer). */
static int kup_read_request(kup_io *io, kup_req *r) {
  char head[KUP_HEAD_MAX + 1];
  size_t hlen = 0, extra;
  char *end = NULL;

  memset(r, 0, sizeof(*r));
  while (end == NULL) {
    int n;
    if (hlen == KUP_HEAD_MAX) {
      return 400;
    }
    n = kup_read(io, head + hlen, KUP_HEAD_MAX - hlen);
    if (n <= 0) {
      return io->timed_out ? -2 : hlen == 0 ? -1 : 400;
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
    int n = kup_read(io, r->body + r->bodylen,
                     (size_t)r->content_length - r->bodylen);
    if (n <= 0) {
      return io->timed_out ? -2 : 400;
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

static void kup_serve(hp_daemon *d, const kup_job *job, kup_io *io) {
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
    if (kup_read_request(io, &r) == -2) {
      st = 0;
      result = "timeout";
      goto log;
    }
    kup_error(io, 403, "no_server_identity");
    st = 403;
    result = "no_identity";
    goto log;
  }
  app_format_id(sidhex, sid);
  st = kup_read_request(io, &r);
  if (st < 0) {
    result = st == -2 ? "timeout" : "closed";
    st = 0;
    goto log;
  }
  if (st != 0) {
    kup_error(io, st, "malformed_request");
    result = "malformed";
    goto log;
  }
  if (strcmp(r.path, "/v1/kup") != 0) {
    st = 404;
    kup_error(io, st, "no_such_resource");
    result = "bad_path";
    goto log;
  }
  if (strcmp(r.method, "POST") != 0) {
    st = 405;
    kup_error(io, st, "method_not_allowed");
    result = "bad_method";
    goto log;
  }
  /* Parsed before the authorization check only so that a refused request
   * is logged with its IMSI; a refused server learns nothing more. */
  parsed = kup_parse_body(&r, imsi, rand) == 0;
  if (!hp_acl_allowed(job->acl, sid)) {
    st = 403;
    kup_error(io, st, "server_not_authorized");
    result = "unauthorized";
    goto log;
  }
  if (!parsed) {
    st = 400;
    kup_error(io, st, "malformed_json");
    result = "malformed";
    goto log;
  }
  rv = hp_cache_get(&d->cache, imsi, rand, app_now_ms(), ck, ik);
  if (rv == MTCSEC_ERR_FORBIDDEN) {
    /* CK (and Kc) of this vector went to the SGSN with IK: the SGSN could
     * compute this K_UP itself, so it protects nothing. */
    st = 403;
    kup_error(io, st, "ck_released");
    result = "ck_released";
    goto log;
  }
  if (rv != 0) {
    st = 404;
    kup_error(io, st,
              rv == MTCSEC_ERR_EXPIRED ? "vector_expired" : "unknown_vector");
    result = rv == MTCSEC_ERR_EXPIRED ? "expired" : "unknown";
    goto log;
  }
  /* A provider per thread: the main thread's is not shared. */
  if (mtcsec_crypto_openssl_new(&crypto) != 0) {
    mtcsec_crypto_openssl_del(&crypto);
    st = 500;
    kup_error(io, st, "internal");
    result = "crypto_error";
    goto log;
  }
  rv = mtcsec_kup_derive(&crypto, ck, ik, sid, rand, kup);
  mtcsec_crypto_openssl_del(&crypto);
  if (rv != 0) {
    st = 500;
    kup_error(io, st, "internal");
    result = "crypto_error";
    goto log;
  }
  app_format_hex(kuphex, kup, sizeof(kup));
  snprintf(body, sizeof(body), "{\"kup\":\"%s\"}", kuphex);
  kup_respond(io, 200, body);
  st = 200;
  result = "ok";

log:
  mtcsec_zeroize(ck, sizeof(ck));
  mtcsec_zeroize(ik, sizeof(ik));
  mtcsec_zeroize(kup, sizeof(kup));
  mtcsec_zeroize(kuphex, sizeof(kuphex));
  mtcsec_zeroize(body, sizeof(body));
  if (st != 0 && io->timed_out) {
    /* The answer could not be written before the deadline. */
    st = 0;
    result = "timeout";
  }
  hp_metrics_kup(&d->metrics, st);
  app_log(st == 200 ? MTCSEC_LOG_INFO : MTCSEC_LOG_WARN,
          "event=kup_request peer=%s server=%s imsi=%s status=%d result=%s",
          peer, sidhex, imsi, st, result);
}

/* ------------------------------------------------ per-peer accounting */

/* The caller holds d->kup_mu.  The entry of addr, or NULL. */
static struct hp_kup_peer *kup_peer_find(hp_daemon *d, const uint8_t addr[16]) {
  unsigned i;
  for (i = 0; i < d->kup_npeers; i++) {
    if (memcmp(d->kup_peers[i].addr, addr, 16) == 0) {
      return &d->kup_peers[i];
    }
  }
  return NULL;
}

/* Counts one connection of addr, unless the limits say no: NULL, or the
 * reason of the refusal.  The caller holds d->kup_mu. */
static const char *kup_peer_admit(hp_daemon *d, const uint8_t addr[16]) {
  struct hp_kup_peer *p;
  if (d->kup_active >= d->cfg.kup_max_connections) {
    return "max_connections";
  }
  p = kup_peer_find(d, addr);
  if (p != NULL && p->n >= d->cfg.kup_max_per_peer) {
    return "max_per_peer";
  }
  if (p == NULL) {
    if (d->kup_npeers == HP_KUP_MAX_CONN) {
      return "max_connections";
    }
    p = &d->kup_peers[d->kup_npeers++];
    memcpy(p->addr, addr, 16);
    p->n = 0;
  }
  p->n++;
  d->kup_active++;
  return NULL;
}

/* Undoes kup_peer_admit() (takes d->kup_mu). */
static void kup_peer_release(hp_daemon *d, const uint8_t addr[16]) {
  struct hp_kup_peer *p;
  pthread_mutex_lock(&d->kup_mu);
  p = kup_peer_find(d, addr);
  if (p != NULL && --p->n == 0) {
    *p = d->kup_peers[--d->kup_npeers]; /* the last entry fills the hole */
  }
  d->kup_active--;
  pthread_mutex_unlock(&d->kup_mu);
}

static void *kup_thread(void *arg) {
  kup_job *job = arg;
  hp_daemon *d = job->d;
  SSL *ssl = job->ssl;
  kup_io io;
  char why[160] = "handshake failed";

  io.ssl = ssl;
  io.fd = job->fd;
  io.deadline_us = job->deadline_us;
  io.timed_out = 0;
  if (SSL_set_fd(ssl, job->fd) == 1) {
    if (app_ssl_io(ssl, job->fd, APP_SSL_ACCEPT, NULL, 0, job->deadline_us, why,
                   sizeof(why)) > 0) {
      kup_serve(d, job, &io);
      (void)SSL_shutdown(ssl); /* one try: the socket is non-blocking */
    } else {
      int late = app_mono_us() >= job->deadline_us;
      hp_metrics_kup(&d->metrics, 0);
      app_log(MTCSEC_LOG_WARN,
              "event=kup_request peer=%s status=0 result=%s detail=\"%s\"",
              job->peer, late ? "timeout" : "tls_failed",
              late ? "TLS handshake not completed within idle_timeout" : why);
    }
  }
  ERR_clear_error();
  SSL_free(ssl);
  (void)close(job->fd);
  hp_acl_unref(job->acl);
  kup_peer_release(d, job->addr);
  free(job);
  return NULL;
}

void hp_kup_accept(hp_daemon *d) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  int fd = accept(d->kup_fd, (struct sockaddr *)&ss, &sl), flags;
  uint64_t start = app_mono_us();
  uint8_t addr[16];
  char host[64];
  const char *refused;
  kup_job *job;
  pthread_t t;
  pthread_attr_t attr;

  if (fd < 0) {
    return;
  }
  /* Non-blocking: every wait in the thread is a poll() bounded by the
   * connection's deadline. */
  flags = fcntl(fd, F_GETFL);
  (void)fcntl(fd, F_SETFL, flags < 0 ? O_NONBLOCK : flags | O_NONBLOCK);
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (hp_sockaddr_addr((struct sockaddr *)&ss, addr, host, sizeof(host)) != 0) {
    memset(addr, 0, sizeof(addr)); /* not IP: all such peers count as one */
  }
  pthread_mutex_lock(&d->kup_mu);
  refused = kup_peer_admit(d, addr);
  pthread_mutex_unlock(&d->kup_mu);
  if (refused != NULL) {
    hp_metrics_kup(&d->metrics, 0);
    app_log(MTCSEC_LOG_WARN, "event=kup_refused peer=%s reason=%s", host,
            refused);
    (void)close(fd);
    return;
  }
  job = calloc(1, sizeof(*job));
  if (job != NULL) {
    job->d = d;
    job->fd = fd;
    job->deadline_us = start + (uint64_t)d->cfg.idle_timeout * 1000000u;
    memcpy(job->addr, addr, sizeof(addr));
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
  app_log(MTCSEC_LOG_ERROR, "event=kup_refused peer=%s reason=no_thread", host);
  (void)close(fd);
  kup_peer_release(d, addr);
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
