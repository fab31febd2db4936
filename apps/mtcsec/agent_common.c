/*
 * Shared pieces of the agents: trace, signals, UDP peers, the TLS client of
 * the server link, the UE's key cache and the application protocol inside
 * direct-channel records (docs/AGENTS.md describes the last two).
 */
#define _GNU_SOURCE /* flock, getnameinfo flags */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include <cJSON.h>
#include <openssl/err.h>

#include <mtcsec/codec.h>
#include <mtcsec/crypto.h>

#include "agent_common.h"
#include "app.h"
#include "cli.h"

/* ------------------------------------------------------------- trace */

static int trace_on;
static struct timespec trace_t0;

void agent_trace_init(int enabled) {
  trace_on = enabled;
  clock_gettime(CLOCK_MONOTONIC, &trace_t0);
}

int agent_trace_enabled(void) { return trace_on; }

double agent_elapsed_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - trace_t0.tv_sec) * 1e3 +
         (double)(now.tv_nsec - trace_t0.tv_nsec) / 1e6;
}

const char *agent_msg_name(uint8_t type) {
  static const char *const names[] = {"M0", "M1",  "M2",     "M3",
                                      "M4", "ERR", "record", "revocation"};
  if ((type & 0xf0) != 0x10 || (type & 0x0f) > 7) {
    return "?";
  }
  return names[type & 0x0f];
}

void agent_trace(const char *from, const char *to, const uint8_t *msg,
                 size_t len, int framed, const char *note) {
  uint8_t type = 0;
  if (!trace_on) {
    return;
  }
  if (framed && len >= 3) {
    type = msg[2];
  } else if (!framed && len >= 1) {
    type = msg[0];
  }
  printf("  %9.1f ms  %-4s -> %-4s  %-10s %4zu B%s%s\n", agent_elapsed_ms(),
         from, to, agent_msg_name(type), len, note != NULL ? "  " : "",
         note != NULL ? note : "");
  fflush(stdout);
}

/* ----------------------------------------------------------- signals */

volatile sig_atomic_t agent_stop;

static void agent_on_signal(int sig) {
  (void)sig;
  agent_stop = 1;
}

void agent_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = agent_on_signal;
  sigemptyset(&sa.sa_mask);
  /* No SA_RESTART: poll() returns EINTR and the loop sees agent_stop. */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
}

volatile sig_atomic_t agent_stats_wanted;

static void agent_on_usr1(int sig) {
  (void)sig;
  agent_stats_wanted = 1;
}

void agent_start(const char *log_name, int level, int trace,
                 int stats_on_usr1) {
  app_log_init(log_name, level, stderr);
  agent_trace_init(trace);
  agent_signals_install();
  if (stats_on_usr1) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = agent_on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
  }
}

/* ------------------------------------------------------------- options */

int agent_common_opt(int ch, char **argv, const char *cmd, const char *usage,
                     void (*help)(void), int *trace, int *level) {
  switch (ch) {
  case 't':
    *trace = 1;
    return AGENT_OPT_NEXT;
  case 'L':
    if (app_parse_log_level(optarg, level) != 0) {
      fprintf(stderr, "mtcsec %s: bad --log-level '%s'\n%s", cmd, optarg,
              usage);
      return CLI_USAGE;
    }
    return AGENT_OPT_NEXT;
  case 'h':
    help();
    return CLI_OK;
  default:
    fprintf(stderr, "mtcsec %s: unknown or incomplete option '%s'\n%s", cmd,
            argv[optind - 1], usage);
    return CLI_USAGE;
  }
}

/* ------------------------------------------------------------ addresses */

int agent_addr_parse(agent_addr *a, const char *s, char *err, size_t errlen) {
  unsigned len = 0;
  memset(a, 0, sizeof(*a));
  if (app_resolve(s, &a->ss, &len, err, errlen) != 0) {
    return -1;
  }
  a->len = (socklen_t)len;
  return 0;
}

int agent_addr_equal(const agent_addr *a, const agent_addr *b) {
  if (a->ss.ss_family != b->ss.ss_family) {
    return 0;
  }
  if (a->ss.ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
    const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return 0;
}

const char *agent_addr_str(const agent_addr *a, char *out, size_t outlen) {
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (getnameinfo((const struct sockaddr *)&a->ss, a->len, host, sizeof(host),
                  port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    snprintf(out, outlen, "?");
    return out;
  }
  if (a->ss.ss_family == AF_INET6) {
    snprintf(out, outlen, "[%s]:%s", host, port);
  } else {
    snprintf(out, outlen, "%s:%s", host, port);
  }
  return out;
}

int agent_addr_offset(const char *base, unsigned delta, char *out,
                      size_t outlen) {
  const char *colon = strrchr(base, ':');
  unsigned long port;
  int n;
  if (colon == NULL || agent_parse_uint(colon + 1, 65535, &port) != 0 ||
      port + delta > 65535) {
    return -1;
  }
  n =
    snprintf(out, outlen, "%.*s:%lu", (int)(colon - base), base, port + delta);
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

const char *agent_any_for(const agent_addr *a) {
  return a->ss.ss_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0";
}

long agent_udp_recv(int fd, uint8_t *buf, size_t buflen, agent_addr *from) {
  ssize_t n;
  from->len = sizeof(from->ss);
  n = recvfrom(fd, buf, buflen, MSG_DONTWAIT, (struct sockaddr *)&from->ss,
               &from->len);
  if (n < 0) {
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
               errno == ECONNREFUSED
             ? 0
             : -1;
  }
  return (long)n;
}

int agent_udp_send(int fd, const agent_addr *to, const uint8_t *buf,
                   size_t len) {
  ssize_t n =
    sendto(fd, buf, len, 0, (const struct sockaddr *)&to->ss, to->len);
  return n == (ssize_t)len ? 0 : -1;
}

uint64_t agent_peer_id(agent_peers *p, const agent_addr *a) {
  size_t i, victim = 0;
  p->clock++;
  for (i = 0; i < AGENT_MAX_PEERS; i++) {
    if (p->used[i] != 0 && agent_addr_equal(&p->addr[i], a)) {
      p->used[i] = p->clock;
      return (uint64_t)i + 1;
    }
    if (p->used[i] < p->used[victim]) {
      victim = i;
    }
  }
  p->addr[victim] = *a;
  p->used[victim] = p->clock;
  return (uint64_t)victim + 1;
}

const agent_addr *agent_peer_addr(const agent_peers *p, uint64_t id) {
  if (id == 0 || id > AGENT_MAX_PEERS || p->used[id - 1] == 0) {
    return NULL;
  }
  return &p->addr[id - 1];
}

/* ---------------------------------------------------- TLS server link */

static void tls_errstr(char *err, size_t errlen, const char *what) {
  unsigned long e = ERR_get_error();
  char buf[256];
  if (e != 0) {
    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s: %s", what, buf);
  } else {
    snprintf(err, errlen, "%s", what);
  }
  ERR_clear_error();
}

static int tls_reserve(uint8_t **buf, size_t *cap, size_t need) {
  uint8_t *p;
  size_t ncap = *cap == 0 ? 4096 : *cap;
  if (need <= *cap) {
    return 0;
  }
  while (ncap < need) {
    ncap *= 2;
  }
  p = realloc(*buf, ncap);
  if (p == NULL) {
    return -1;
  }
  *buf = p;
  *cap = ncap;
  return 0;
}

int agent_tls_connect(agent_tls *t, const char *addr, const char *cert,
                      const char *key, const char *ca, int timeout_ms,
                      char *err, size_t errlen) {
  mtcsec_tstamp deadline = app_now_ms() + (mtcsec_tstamp)timeout_ms;
  memset(t, 0, sizeof(*t));
  t->fd = -1;
  t->ctx = app_tls_client_ctx(cert, key, ca, err, errlen);
  if (t->ctx == NULL) {
    return -1;
  }
  t->fd = app_tcp_connect(addr, err, errlen);
  if (t->fd < 0) {
    agent_tls_close(t);
    return -1;
  }
  t->ssl = SSL_new(t->ctx);
  if (t->ssl == NULL || SSL_set_fd(t->ssl, t->fd) != 1) {
    tls_errstr(err, errlen, "TLS setup");
    agent_tls_close(t);
    return -1;
  }
  SSL_set_mode(t->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  for (;;) {
    struct pollfd pfd;
    mtcsec_tstamp now;
    int rv = SSL_connect(t->ssl), e, prv;
    if (rv == 1) {
      return 0;
    }
    e = SSL_get_error(t->ssl, rv);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        snprintf(err, errlen, "TLS handshake with %s: %s", addr,
                 errno != 0 ? strerror(errno) : "connection closed");
      } else {
        char what[300];
        snprintf(what, sizeof(what), "TLS handshake with %s", addr);
        tls_errstr(err, errlen, what);
      }
      agent_tls_close(t);
      return -1;
    }
    now = app_now_ms();
    if (now >= deadline || agent_stop) {
      snprintf(err, errlen, "no answer from %s within %d ms", addr, timeout_ms);
      agent_tls_close(t);
      return -1;
    }
    pfd.fd = t->fd;
    pfd.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    pfd.revents = 0;
    prv = poll(&pfd, 1, (int)(deadline - now));
    if (prv < 0 && errno != EINTR) {
      snprintf(err, errlen, "poll: %s", strerror(errno));
      agent_tls_close(t);
      return -1;
    }
  }
}

int agent_tls_queue(agent_tls *t, const uint8_t *p, size_t n) {
  if (tls_reserve(&t->out, &t->outcap, t->outlen + n) != 0) {
    return -1;
  }
  memcpy(t->out + t->outlen, p, n);
  t->outlen += n;
  return 0;
}

int agent_tls_flush(agent_tls *t) {
  while (t->outlen > 0) {
    size_t written = 0;
    int rv = SSL_write_ex(t->ssl, t->out, t->outlen, &written);
    if (rv != 1) {
      int e = SSL_get_error(t->ssl, rv);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        return 0;
      }
      ERR_clear_error();
      t->closed = 1;
      return -1;
    }
    memmove(t->out, t->out + written, t->outlen - written);
    t->outlen -= written;
  }
  return 0;
}

int agent_tls_read(agent_tls *t) {
  for (;;) {
    size_t got = 0;
    int rv, e;
    if (tls_reserve(&t->in, &t->incap, t->inlen + 4096) != 0) {
      return -1;
    }
    rv = SSL_read_ex(t->ssl, t->in + t->inlen, t->incap - t->inlen, &got);
    if (rv == 1) {
      t->inlen += got;
      continue;
    }
    e = SSL_get_error(t->ssl, rv);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      return 0;
    }
    ERR_clear_error();
    t->closed = 1;
    return -1;
  }
}

void agent_tls_consume(agent_tls *t, size_t n) {
  if (n >= t->inlen) {
    t->inlen = 0;
    return;
  }
  memmove(t->in, t->in + n, t->inlen - n);
  t->inlen -= n;
}

short agent_tls_events(const agent_tls *t) {
  short ev = POLLIN;
  if (t->outlen > 0) {
    ev |= POLLOUT;
  }
  return ev;
}

void agent_tls_close(agent_tls *t) {
  if (t->ssl != NULL) {
    if (!t->closed) {
      (void)SSL_shutdown(t->ssl);
    }
    SSL_free(t->ssl);
  }
  if (t->ctx != NULL) {
    SSL_CTX_free(t->ctx);
  }
  if (t->fd >= 0) {
    close(t->fd);
  }
  free(t->in);
  free(t->out);
  ERR_clear_error();
  memset(t, 0, sizeof(*t));
  t->fd = -1;
}

int agent_server_addr(char *out, size_t outlen, char *err, size_t errlen) {
  char path[4096];
  const char *listen = "127.0.0.1:7788";
  app_config *c;
  const char *colon;
  int n;

  snprintf(path, sizeof(path), "%s", cli_path("mtcsd.conf"));
  c = app_config_load(path, err, errlen);
  if (c == NULL) {
    return -1;
  }
  if (app_config_get(c, "listen") != NULL) {
    listen = app_config_get(c, "listen");
  }
  colon = strrchr(listen, ':');
  if (colon == NULL) {
    snprintf(err, errlen, "%s: listen '%s' has no port", path, listen);
    app_config_free(c);
    return -1;
  }
  /* A wildcard listen address is reached on the loopback address. */
  if (colon == listen || strncmp(listen, "0.0.0.0:", 8) == 0 ||
      strncmp(listen, "*:", 2) == 0) {
    n = snprintf(out, outlen, "127.0.0.1%s", colon);
  } else if (strncmp(listen, "[::]:", 5) == 0) {
    n = snprintf(out, outlen, "[::1]%s", colon);
  } else {
    n = snprintf(out, outlen, "%s", listen);
  }
  app_config_free(c);
  if (n < 0 || (size_t)n >= outlen) {
    snprintf(err, errlen, "%s: listen address too long", path);
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------- key cache */

int64_t agent_unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int key_path(char *out, size_t outlen, const uint8_t ueid[MTCSEC_ID_LEN],
                    const uint8_t *mtcd_id, const char *ext) {
  char u[17], d[17], rel[128];
  int n;
  app_format_id(u, ueid);
  if (mtcd_id == NULL) {
    snprintf(rel, sizeof(rel), "ues/%s.keys", u);
  } else {
    snprintf(rel, sizeof(rel), "ues/%s.keys/%s%s", u, app_format_id(d, mtcd_id),
             ext);
  }
  n = snprintf(out, outlen, "%s", cli_path(rel));
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static int key_dir(const uint8_t ueid[MTCSEC_ID_LEN], char *err,
                   size_t errlen) {
  char dir[4096];
  if (key_path(dir, sizeof(dir), ueid, NULL, NULL) != 0) {
    snprintf(err, errlen, "state directory path too long");
    return -1;
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "%s: %s", dir, strerror(errno));
    return -1;
  }
  return 0;
}

static int json_u64(const cJSON *o, const char *name, uint64_t max,
                    uint64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  char *end;
  unsigned long long x;
  /* Large counters travel as decimal strings (a JSON number is a double). */
  if (cJSON_IsString(v) && v->valuestring[0] >= '0' &&
      v->valuestring[0] <= '9') {
    errno = 0;
    x = strtoull(v->valuestring, &end, 10);
    if (errno != 0 || *end != '\0' || x > max) {
      return -1;
    }
    *out = x;
    return 0;
  }
  if (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
      v->valuedouble <= (double)max && v->valuedouble <= 9007199254740992.0) {
    *out = (uint64_t)v->valuedouble;
    return 0;
  }
  return -1;
}

int agent_key_load(const uint8_t ueid[MTCSEC_ID_LEN], agent_key *k,
                   int keep_expired, char *err, size_t errlen) {
  char path[4096];
  char *text;
  size_t len = 0;
  cJSON *o;
  const cJSON *hex = NULL;
  const mtcsec_suite_params *sp;
  uint64_t v[7];
  static const char *const fields[7] = {
    "suite", "key_id", "perms", "expires", "tx_seq", "rx_top", "rx_bitmap"};
  static const uint64_t max[7] = {255,        65535,      255,       INT64_MAX,
                                  UINT32_MAX, UINT64_MAX, UINT64_MAX};
  size_t i;
  int rv = -1;

  if (key_path(path, sizeof(path), ueid, k->mtcd_id, ".json") != 0) {
    snprintf(err, errlen, "state directory path too long");
    return -1;
  }
  text = app_read_file(path, 4096, &len);
  if (text == NULL) {
    if (errno == ENOENT) {
      return 1;
    }
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  o = cJSON_Parse(text);
  mtcsec_zeroize(text, len);
  free(text);
  if (o == NULL) {
    snprintf(err, errlen, "%s: not JSON", path);
    return -1;
  }
  for (i = 0; i < 7; i++) {
    if (json_u64(o, fields[i], max[i], &v[i]) != 0) {
      snprintf(err, errlen, "%s: bad or missing \"%s\"", path, fields[i]);
      goto cleanup;
    }
  }
  sp = mtcsec_suite_get((uint8_t)v[0]);
  hex = cJSON_GetObjectItemCaseSensitive(o, "DMKey");
  if (sp == NULL || !cJSON_IsString(hex) ||
      app_parse_hex(hex->valuestring, k->dmkey, sp->keylen) != 0) {
    snprintf(err, errlen, "%s: bad suite or DMKey", path);
    goto cleanup;
  }
  k->suite = (uint8_t)v[0];
  k->keylen = sp->keylen;
  k->key_id = (uint16_t)v[1];
  k->perms = (uint8_t)v[2];
  k->expires_ms = (int64_t)v[3];
  k->tx_seq = (uint32_t)v[4];
  k->rx.top = v[5];
  k->rx.bitmap = v[6];
  if (k->tx_seq == MTCSEC_SEQ_INVALID ||
      (k->expires_ms <= agent_unix_ms() && !keep_expired)) {
    /* Over: the spec erases the key after its lifetime (section 3). */
    agent_key_remove(ueid, k->mtcd_id);
    mtcsec_zeroize(k->dmkey, sizeof(k->dmkey));
    rv = 1;
  } else {
    rv = 0;
  }

cleanup:
  if (hex != NULL && cJSON_IsString(hex)) {
    mtcsec_zeroize(hex->valuestring, strlen(hex->valuestring));
  }
  cJSON_Delete(o);
  return rv;
}

int agent_key_save(const uint8_t ueid[MTCSEC_ID_LEN], const agent_key *k,
                   char *err, size_t errlen) {
  char path[4096], hex[2 * MTCSEC_MAX_KEY_LEN + 1], text[512], id[17];
  int n;
  if (key_dir(ueid, err, errlen) != 0 ||
      key_path(path, sizeof(path), ueid, k->mtcd_id, ".json") != 0) {
    return -1;
  }
  app_format_hex(hex, k->dmkey, k->keylen);
  n = snprintf(text, sizeof(text),
               "{\"MTCdID\": \"%s\", \"suite\": %u, \"key_id\": %u, "
               "\"perms\": %u, \"expires\": %" PRId64 ",\n"
               " \"DMKey\": \"%s\",\n"
               " \"tx_seq\": %" PRIu32 ", \"rx_top\": \"%" PRIu64
               "\", \"rx_bitmap\": \"%" PRIu64 "\"}\n",
               app_format_id(id, k->mtcd_id), (unsigned)k->suite,
               (unsigned)k->key_id, (unsigned)k->perms, k->expires_ms, hex,
               k->tx_seq, k->rx.top, k->rx.bitmap);
  mtcsec_zeroize(hex, sizeof(hex));
  if (n < 0 || (size_t)n >= sizeof(text)) {
    mtcsec_zeroize(text, sizeof(text));
    snprintf(err, errlen, "key file too long");
    return -1;
  }
  if (app_write_file_atomic(path, text, (size_t)n, 0600) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    mtcsec_zeroize(text, sizeof(text));
    return -1;
  }
  mtcsec_zeroize(text, sizeof(text));
  return 0;
}

void agent_key_remove(const uint8_t ueid[MTCSEC_ID_LEN],
                      const uint8_t mtcd_id[MTCSEC_ID_LEN]) {
  char path[4096];
  if (key_path(path, sizeof(path), ueid, mtcd_id, ".json") == 0) {
    (void)unlink(path);
  }
}

int agent_key_lock(const uint8_t ueid[MTCSEC_ID_LEN],
                   const uint8_t mtcd_id[MTCSEC_ID_LEN], char *err,
                   size_t errlen) {
  char path[4096];
  int fd;
  if (key_dir(ueid, err, errlen) != 0 ||
      key_path(path, sizeof(path), ueid, mtcd_id, ".lock") != 0) {
    return -1;
  }
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

int agent_key_chan(const agent_key *k, const mtcsec_crypto *crypto,
                   mtcsec_chan *ch, mtcsec_tstamp now, int ignore_expiry) {
  int64_t left = k->expires_ms - agent_unix_ms();
  int rv;
  if (ignore_expiry && left < 60000) {
    left = 60000;
  }
  if (left <= 0) {
    return MTCSEC_ERR_EXPIRED;
  }
  rv = mtcsec_chan_init(ch, crypto, k->suite, MTCSEC_CHAN_UE, k->dmkey,
                        k->key_id, now + (mtcsec_tstamp)left);
  if (rv != 0) {
    return rv;
  }
  /* Resume where the last command stopped.  The channel API has no setter
   * for its counters (the fields are private by convention); the cache is
   * the only place that carries a channel across processes, so it restores
   * them here and nowhere else. */
  ch->tx_seq = k->tx_seq;
  ch->rx = k->rx;
  return 0;
}

void agent_key_sync(agent_key *k, const mtcsec_chan *ch) {
  k->tx_seq = ch->tx_seq;
  k->rx = ch->rx;
}

/* ------------------------------------------------ application protocol */

long agent_req_encode(uint8_t *out, size_t outlen, const agent_req *r) {
  size_t nl = strlen(r->name), vl = strlen(r->value);
  if (nl == 0 || nl > AGENT_NAME_MAX || vl > AGENT_VALUE_MAX ||
      outlen < 3 + nl + vl) {
    return -1;
  }
  out[0] = r->op;
  out[1] = r->tag;
  out[2] = (uint8_t)nl;
  memcpy(out + 3, r->name, nl);
  memcpy(out + 3 + nl, r->value, vl);
  return (long)(3 + nl + vl);
}

static int printable(const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (p[i] < 0x20 || p[i] == 0x7f) {
      return 0;
    }
  }
  return 1;
}

int agent_req_decode(agent_req *r, const uint8_t *in, size_t inlen) {
  size_t nl, vl;
  memset(r, 0, sizeof(*r));
  if (inlen < 3) {
    return -1;
  }
  nl = in[2];
  if (nl == 0 || nl > AGENT_NAME_MAX || inlen < 3 + nl) {
    return -1;
  }
  vl = inlen - 3 - nl;
  if (vl > AGENT_VALUE_MAX || !printable(in + 3, nl + vl)) {
    return -1;
  }
  r->op = in[0];
  r->tag = in[1];
  memcpy(r->name, in + 3, nl);
  memcpy(r->value, in + 3 + nl, vl);
  return 0;
}

long agent_resp_encode(uint8_t *out, size_t outlen, uint8_t status, uint8_t tag,
                       const char *value) {
  size_t vl = value != NULL ? strlen(value) : 0;
  if (vl > AGENT_VALUE_MAX || outlen < 2 + vl) {
    return -1;
  }
  out[0] = status;
  out[1] = tag;
  if (vl > 0) {
    memcpy(out + 2, value, vl);
  }
  return (long)(2 + vl);
}

int agent_resp_decode(const uint8_t *in, size_t inlen, uint8_t *status,
                      uint8_t *tag, char value[AGENT_VALUE_MAX + 1]) {
  size_t vl;
  if (inlen < 2 || inlen - 2 > AGENT_VALUE_MAX ||
      !printable(in + 2, inlen - 2)) {
    return -1;
  }
  vl = inlen - 2;
  *status = in[0];
  *tag = in[1];
  memcpy(value, in + 2, vl);
  value[vl] = '\0';
  return 0;
}

uint8_t agent_op_perm(uint8_t op) {
  switch (op) {
  case AGENT_OP_READ:
    return MTCSEC_PERM_READ;
  case AGENT_OP_WRITE:
    return MTCSEC_PERM_WRITE;
  case AGENT_OP_ACTUATE:
    return MTCSEC_PERM_ACTUATE;
  case AGENT_OP_CONFIGURE:
    return MTCSEC_PERM_CONFIGURE;
  default:
    return 0;
  }
}

const char *agent_op_name(uint8_t op) {
  switch (op) {
  case AGENT_OP_READ:
    return "READ";
  case AGENT_OP_WRITE:
    return "WRITE";
  case AGENT_OP_ACTUATE:
    return "ACTUATE";
  case AGENT_OP_CONFIGURE:
    return "CONFIGURE";
  default:
    return "?";
  }
}

const char *agent_status_name(uint8_t status) {
  switch (status) {
  case AGENT_ST_OK:
    return "OK";
  case AGENT_ST_FORBIDDEN:
    return "FORBIDDEN";
  case AGENT_ST_NOT_FOUND:
    return "NOT_FOUND";
  case AGENT_ST_BAD_REQUEST:
    return "BAD_REQUEST";
  default:
    return "?";
  }
}

/* ------------------------------------------------------------- misc */

int agent_parse_uint(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  unsigned long v;
  if (s == NULL || s[0] < '0' || s[0] > '9') {
    return -1;
  }
  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) {
    return -1;
  }
  *out = v;
  return 0;
}
