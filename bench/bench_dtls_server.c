/*
 * The comparison point of the end-to-end benchmark (bench/e2e.sh,
 * docs/BENCHMARKS-SERVER.md): an OpenSSL DTLS 1.2 PSK server
 * (PSK-AES128-CCM8) over UDP on loopback doing full handshakes for
 * concurrent clients, measured on the same machine in the same run as
 * mtcsd.
 *
 *   bench_dtls_server --clients N [--duration 10] [--warmup 2]
 *                     [--server-threads 2] [--nocookie] [--label TEXT]
 *
 * The program forks.  The child is the server: --server-threads threads,
 * each with its own UDP socket bound to one port with SO_REUSEPORT (the
 * kernel spreads the clients over the sockets by address), demultiplexing
 * datagrams by peer address to one SSL object per client through a small
 * BIO (read: the datagram being handled; write: sendto the peer), as a
 * server for many clients on one port does.  With cookies (the default),
 * a datagram from a peer without state goes to DTLSv1_listen() on the
 * thread's listening SSL object, which answers a ClientHello without a
 * valid cookie with a HelloVerifyRequest and keeps nothing; the cookie is
 * HMAC-SHA-256(secret, peer address || port), 16 bytes.  --nocookie: every
 * new peer gets an SSL object at once (4 flights instead of 6).  PSK
 * identity = the device's ID in 16 hex digits (as in bench_dtlspair.c); the
 * server computes the PSK from it (bench_dev_psk(), no store lookup, no
 * durable write: this favours DTLS).  DTLS 1.2 only, the one cipher suite,
 * no tickets, no resumption, MTU 1400.  A connection is freed when the
 * client's close_notify arrives (or after 3 s without a datagram).
 *
 * The parent runs N client threads, each doing back-to-back full handshakes
 * with OpenSSL's own datagram BIO on a new connected UDP socket (a new
 * source port: a new peer for the server), with OpenSSL's retransmission
 * (DTLSv1_handle_timeout), then SSL_shutdown (close_notify) and free.
 *
 * After --warmup s, handshakes completed by the server (a counter in
 * shared memory) are counted for --duration s; the server process's CPU
 * time (clock_getcpuclockid), the clients' and the machine's (/proc/stat)
 * over the window, and the clients' handshake latency (SSL_new to the end
 * of SSL_connect) p50/p99 are printed.  One progress line per second goes
 * to stderr.  Exits non-zero when no handshake completed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "bench_common.h"

#define NDEVICES 10000u
#define PSK_LEN 16
#define COOKIE_LEN 16
#define NBUCKETS 1024u
#define IDLE_NS 3000000000ull

/* Shared between the server (child) and the clients (parent). */
typedef struct shared {
  _Atomic uint64_t handshakes; /* completed by the server */
  _Atomic uint64_t failures;   /* server-side handshake errors */
  _Atomic uint64_t abandoned;  /* freed after IDLE_NS without close */
  atomic_int port;             /* 0 until the server listens */
  atomic_int stop;
} shared;

static shared *SH;

static void die(const char *what) {
  fprintf(stderr, "bench_dtls_server: %s: %s\n", what, strerror(errno));
  ERR_print_errors_fp(stderr);
  exit(1);
}

/* Device i's PSK identity: its ID as 16 hex digits. */
static void identity_of(char out[17], uint32_t i) {
  uint8_t id[MTCSEC_ID_LEN];
  size_t k;
  bench_dev_id(id, i);
  for (k = 0; k < MTCSEC_ID_LEN; k++) {
    snprintf(out + 2 * k, 3, "%02x", id[k]);
  }
}

static SSL_CTX *ctx_new(int server) {
  SSL_CTX *ctx =
    SSL_CTX_new(server ? DTLS_server_method() : DTLS_client_method());
  if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx, "PSK-AES128-CCM8") != 1) {
    die("DTLS context");
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_QUERY_MTU);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return ctx;
}

/* ============================================================== server */

typedef struct sconn {
  struct sockaddr_in peer;
  SSL *ssl;
  int done;
  uint64_t last_ns;
  struct sconn *next;
} sconn;

typedef struct sthread {
  int fd;
  pthread_t th;
  SSL_CTX *ctx;
  BIO_METHOD *meth;
  SSL *listener;   /* cookie mode: DTLSv1_listen() */
  BIO_ADDR *laddr; /* its out-parameter */
  int cookie;
  /* the datagram being handled */
  const uint8_t *dg;
  size_t dglen;
  int dg_taken;
  struct sockaddr_in cur_peer;
  sconn *buckets[NBUCKETS];
  size_t nconns;
} sthread;

static _Thread_local sthread *cur_thread;
static uint8_t cookie_secret[32];

static int sbio_write(BIO *b, const char *in, int inl) {
  sconn *c = BIO_get_data(b);
  sthread *t = cur_thread;
  const struct sockaddr_in *to = c != NULL ? &c->peer : &t->cur_peer;
  BIO_clear_retry_flags(b);
  if (sendto(t->fd, in, (size_t)inl, 0, (const struct sockaddr *)to,
             sizeof(*to)) != (ssize_t)inl) {
    return -1;
  }
  return inl;
}

static int sbio_read(BIO *b, char *out, int outl) {
  sthread *t = cur_thread;
  size_t n;
  BIO_clear_retry_flags(b);
  if (out == NULL || outl <= 0) {
    return 0;
  }
  if (t->dg_taken || t->dg == NULL) {
    BIO_set_retry_read(b);
    return -1;
  }
  n = t->dglen < (size_t)outl ? t->dglen : (size_t)outl;
  memcpy(out, t->dg, n);
  t->dg_taken = 1;
  return (int)n;
}

static long sbio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  sconn *c = BIO_get_data(b);
  const struct sockaddr_in *p = c != NULL ? &c->peer : &cur_thread->cur_peer;
  (void)num;
  switch (cmd) {
  case BIO_CTRL_FLUSH:
  case BIO_CTRL_DGRAM_SET_PEER:
  case BIO_CTRL_DGRAM_SET_CONNECTED:
    return 1;
  case BIO_CTRL_DGRAM_GET_PEER:
    if (ptr != NULL &&
        BIO_ADDR_rawmake(ptr, AF_INET, &p->sin_addr, sizeof(p->sin_addr),
                         p->sin_port) == 1) {
      return (long)sizeof(*p);
    }
    return 0;
  case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
    return 28; /* IPv4 + UDP headers */
  default:
    return 0;
  }
}

static int sbio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static int sbio_destroy(BIO *b) {
  (void)b;
  return 1;
}

/* The cookie of the peer of the datagram being handled. */
static void cookie_of(uint8_t out[COOKIE_LEN]) {
  const struct sockaddr_in *p = &cur_thread->cur_peer;
  uint8_t in[6], mac[EVP_MAX_MD_SIZE];
  unsigned ml = 0;
  memcpy(in, &p->sin_addr, 4);
  memcpy(in + 4, &p->sin_port, 2);
  HMAC(EVP_sha256(), cookie_secret, sizeof(cookie_secret), in, sizeof(in), mac,
       &ml);
  memcpy(out, mac, COOKIE_LEN);
}

static int cookie_gen_cb(SSL *ssl, unsigned char *cookie,
                         unsigned int *cookie_len) {
  (void)ssl;
  cookie_of(cookie);
  *cookie_len = COOKIE_LEN;
  return 1;
}

static int cookie_verify_cb(SSL *ssl, const unsigned char *cookie,
                            unsigned int cookie_len) {
  uint8_t want[COOKIE_LEN];
  (void)ssl;
  cookie_of(want);
  return cookie_len == COOKIE_LEN &&
         CRYPTO_memcmp(cookie, want, COOKIE_LEN) == 0;
}

static int hexval(char ch) {
  return ch >= '0' && ch <= '9'   ? ch - '0'
         : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
         : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                  : -1;
}

static unsigned int psk_server_cb(SSL *ssl, const char *identity,
                                  unsigned char *psk,
                                  unsigned int max_psk_len) {
  uint32_t i = 0;
  size_t k;
  (void)ssl;
  if (identity == NULL || strlen(identity) != 16 || max_psk_len < PSK_LEN ||
      strncmp(identity, "02000000", 8) != 0) {
    return 0;
  }
  for (k = 8; k < 16; k++) {
    int v = hexval(identity[k]);
    if (v < 0) {
      return 0;
    }
    i = (i << 4) | (uint32_t)v;
  }
  if (i >= NDEVICES) {
    return 0; /* unknown device */
  }
  bench_dev_psk(psk, PSK_LEN, i);
  return PSK_LEN;
}

static SSL *srv_ssl_new(sthread *t, sconn *c) {
  SSL *ssl = SSL_new(t->ctx);
  BIO *b;
  if (ssl == NULL) {
    die("SSL_new");
  }
  b = BIO_new(t->meth);
  if (b == NULL) {
    die("BIO_new");
  }
  BIO_set_data(b, c);
  SSL_set_bio(ssl, b, b);
  SSL_set_mtu(ssl, 1400);
  SSL_set_accept_state(ssl);
  return ssl;
}

static size_t bucket_of(const struct sockaddr_in *p) {
  uint32_t h = p->sin_addr.s_addr * 2654435761u ^ (uint32_t)p->sin_port;
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  return h % NBUCKETS;
}

static sconn *conn_find(sthread *t, const struct sockaddr_in *p) {
  sconn *c;
  for (c = t->buckets[bucket_of(p)]; c != NULL; c = c->next) {
    if (c->peer.sin_port == p->sin_port &&
        c->peer.sin_addr.s_addr == p->sin_addr.s_addr) {
      return c;
    }
  }
  return NULL;
}

static sconn *conn_add(sthread *t, const struct sockaddr_in *p, SSL *ssl) {
  sconn *c = calloc(1, sizeof(*c));
  size_t b = bucket_of(p);
  if (c == NULL) {
    die("calloc");
  }
  c->peer = *p;
  if (ssl == NULL) {
    ssl = srv_ssl_new(t, c);
  } else {
    BIO_set_data(SSL_get_rbio(ssl), c);
  }
  c->ssl = ssl;
  c->next = t->buckets[b];
  t->buckets[b] = c;
  t->nconns++;
  return c;
}

static void conn_del(sthread *t, sconn *c) {
  sconn **pp = &t->buckets[bucket_of(&c->peer)];
  while (*pp != NULL && *pp != c) {
    pp = &(*pp)->next;
  }
  if (*pp == c) {
    *pp = c->next;
  }
  SSL_free(c->ssl);
  free(c);
  t->nconns--;
}

static void new_listener(sthread *t) { t->listener = srv_ssl_new(t, NULL); }

/* Continues c's handshake with the current datagram. */
static void conn_step(sthread *t, sconn *c) {
  int r;
  ERR_clear_error();
  if (!c->done) {
    r = SSL_accept(c->ssl);
    if (r == 1) {
      c->done = 1;
      atomic_fetch_add(&SH->handshakes, 1);
    } else if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
      atomic_fetch_add(&SH->failures, 1);
      ERR_clear_error();
      conn_del(t, c);
    }
  } else {
    uint8_t buf[256];
    r = SSL_read(c->ssl, buf, sizeof(buf));
    if (r <= 0 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
      ERR_clear_error();
      conn_del(t, c); /* close_notify (or an error) */
    }
  }
}

static void srv_datagram(sthread *t, const uint8_t *dg, size_t len,
                         const struct sockaddr_in *peer) {
  sconn *c;
  t->dg = dg;
  t->dglen = len;
  t->dg_taken = 0;
  t->cur_peer = *peer;
  c = conn_find(t, peer);
  if (c != NULL) {
    c->last_ns = bench_mono_ns();
    conn_step(t, c);
  } else if (t->cookie) {
    int r;
    ERR_clear_error();
    r = DTLSv1_listen(t->listener, t->laddr);
    if (r > 0) {
      c = conn_add(t, peer, t->listener);
      new_listener(t);
      c->last_ns = bench_mono_ns();
      conn_step(t, c);
    } else if (r < 0) {
      ERR_clear_error();
      SSL_free(t->listener);
      new_listener(t);
    }
  } else {
    c = conn_add(t, peer, NULL);
    c->last_ns = bench_mono_ns();
    conn_step(t, c);
  }
  t->dg = NULL;
}

static void srv_sweep(sthread *t) {
  uint64_t now = bench_mono_ns();
  size_t b;
  for (b = 0; b < NBUCKETS; b++) {
    sconn *c = t->buckets[b];
    while (c != NULL) {
      sconn *next = c->next;
      if (now - c->last_ns > IDLE_NS) {
        if (!c->done) {
          atomic_fetch_add(&SH->abandoned, 1);
        }
        conn_del(t, c);
      }
      c = next;
    }
  }
}

static void *srv_thread(void *arg) {
  sthread *t = arg;
  uint8_t buf[2048];
  uint64_t last_sweep = bench_mono_ns();
  cur_thread = t;
  new_listener(t);
  t->laddr = BIO_ADDR_new();
  while (!atomic_load(&SH->stop)) {
    struct sockaddr_in peer;
    socklen_t pl = sizeof(peer);
    ssize_t n =
      recvfrom(t->fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &pl);
    if (n > 0 && pl == sizeof(peer)) {
      srv_datagram(t, buf, (size_t)n, &peer);
    }
    if (bench_mono_ns() - last_sweep > 1000000000u) {
      srv_sweep(t);
      last_sweep = bench_mono_ns();
    }
  }
  return NULL;
}

static int udp_socket(unsigned port) {
  struct sockaddr_in sa;
  struct timeval tv = {0, 100000};
  int one = 1, big = 4 << 20;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    die("socket");
  }
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)port);
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    die("bind");
  }
  return fd;
}

static void server_main(unsigned nthreads, int cookie) {
  sthread *ts = calloc(nthreads, sizeof(*ts));
  SSL_CTX *ctx = ctx_new(1);
  BIO_METHOD *meth =
    BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bench udp demux");
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  unsigned i, port;

  if (ts == NULL || meth == NULL || BIO_meth_set_write(meth, sbio_write) != 1 ||
      BIO_meth_set_read(meth, sbio_read) != 1 ||
      BIO_meth_set_ctrl(meth, sbio_ctrl) != 1 ||
      BIO_meth_set_create(meth, sbio_create) != 1 ||
      BIO_meth_set_destroy(meth, sbio_destroy) != 1 ||
      RAND_bytes(cookie_secret, sizeof(cookie_secret)) != 1) {
    die("server set-up");
  }
  SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
  if (cookie) {
    SSL_CTX_set_options(ctx, SSL_OP_COOKIE_EXCHANGE);
    SSL_CTX_set_cookie_generate_cb(ctx, cookie_gen_cb);
    SSL_CTX_set_cookie_verify_cb(ctx, cookie_verify_cb);
  }
  ts[0].fd = udp_socket(0);
  if (getsockname(ts[0].fd, (struct sockaddr *)&sa, &sl) != 0) {
    die("getsockname");
  }
  port = ntohs(sa.sin_port);
  for (i = 0; i < nthreads; i++) {
    if (i > 0) {
      ts[i].fd = udp_socket(port);
    }
    ts[i].ctx = ctx;
    ts[i].meth = meth;
    ts[i].cookie = cookie;
  }
  for (i = 0; i < nthreads; i++) {
    if (pthread_create(&ts[i].th, NULL, srv_thread, &ts[i]) != 0) {
      die("pthread_create");
    }
  }
  atomic_store(&SH->port, (int)port);
  for (i = 0; i < nthreads; i++) {
    pthread_join(ts[i].th, NULL);
  }
  exit(0);
}

/* ============================================================= clients */

typedef struct client {
  pthread_t th;
  unsigned idx, nclients;
  SSL_CTX *ctx;
  struct sockaddr_in srv;
  uint64_t done, failed, timeouts;
  uint32_t *lat_us;
  size_t nlat, latcap;
} client;

static atomic_int g_phase; /* 0 warm-up, 1 window, 2 stop */
static _Atomic uint64_t g_win_start;

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity,
                                  unsigned int max_identity_len,
                                  unsigned char *psk,
                                  unsigned int max_psk_len) {
  uint32_t i = (uint32_t)(uintptr_t)SSL_get_app_data(ssl);
  (void)hint;
  if (max_identity_len < 17 || max_psk_len < PSK_LEN) {
    return 0;
  }
  identity_of(identity, i);
  bench_dev_psk(psk, PSK_LEN, i);
  return PSK_LEN;
}

/* One full handshake on a new socket; 0 or -1. */
static int client_handshake(client *cl, uint32_t dev) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r, rv = -1;
  uint64_t until = bench_mono_ns() + 10000000000ull;
  BIO_ADDR *peer;
  BIO *b;
  SSL *ssl;
  if (fd < 0 ||
      connect(fd, (const struct sockaddr *)&cl->srv, sizeof(cl->srv)) != 0) {
    die("client socket");
  }
  b = BIO_new_dgram(fd, BIO_CLOSE);
  peer = BIO_ADDR_new();
  ssl = SSL_new(cl->ctx);
  if (b == NULL || peer == NULL || ssl == NULL ||
      BIO_ADDR_rawmake(peer, AF_INET, &cl->srv.sin_addr,
                       sizeof(cl->srv.sin_addr), cl->srv.sin_port) != 1) {
    die("client SSL");
  }
  BIO_ctrl(b, BIO_CTRL_DGRAM_SET_CONNECTED, 0, peer);
  SSL_set_bio(ssl, b, b);
  SSL_set_mtu(ssl, 1400);
  SSL_set_app_data(ssl, (void *)(uintptr_t)dev);
  for (;;) {
    ERR_clear_error();
    r = SSL_connect(ssl);
    if (r == 1) {
      rv = 0;
      break;
    }
    if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ ||
        bench_mono_ns() > until || atomic_load(&g_phase) >= 2) {
      ERR_clear_error();
      break;
    }
    /* The receive timed out: retransmit when the DTLS timer says so. */
    if (DTLSv1_handle_timeout(ssl) > 0) {
      cl->timeouts++;
    }
  }
  if (rv == 0) {
    SSL_shutdown(ssl); /* close_notify */
  }
  SSL_free(ssl);
  BIO_ADDR_free(peer);
  return rv;
}

static void *client_thread(void *arg) {
  client *cl = arg;
  uint32_t k = 0;
  while (atomic_load(&g_phase) < 2) {
    uint32_t dev = (cl->idx + cl->nclients * k++) % NDEVICES;
    uint64_t t0 = bench_mono_ns(), t1;
    if (client_handshake(cl, dev) != 0) {
      cl->failed++;
      continue;
    }
    t1 = bench_mono_ns();
    cl->done++;
    if (atomic_load_explicit(&g_phase, memory_order_relaxed) == 1 &&
        t0 >= atomic_load_explicit(&g_win_start, memory_order_relaxed) &&
        cl->nlat < cl->latcap) {
      cl->lat_us[cl->nlat++] = (uint32_t)((t1 - t0) / 1000u);
    }
  }
  return NULL;
}

typedef struct cpustat {
  unsigned long long busy, total;
} cpustat;

static cpustat read_cpustat(void) {
  cpustat s = {0, 0};
  unsigned long long v[8] = {0};
  FILE *f = fopen("/proc/stat", "r");
  int i;
  if (f == NULL) {
    return s;
  }
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
             &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
    for (i = 0; i < 8; i++) {
      s.total += v[i];
    }
    s.busy = s.total - v[3] - v[4];
  }
  fclose(f);
  return s;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double q) {
  if (n == 0) {
    return 0;
  }
  return (double)v[(size_t)(q * (double)(n - 1) + 0.5)] / 1000.0;
}

int main(int argc, char **argv) {
  unsigned long nclients = 32, sthreads = 2, duration = 10, warmup = 2;
  const char *label = "-";
  int cookie = 1, a, have_clock;
  pid_t pid;
  clockid_t sclock;
  client *cls;
  SSL_CTX *cctx;
  uint64_t t0, tw0 = 0, tw1 = 0, next_tick, last = 0, last_srv, h0 = 0, h1 = 0,
               s0 = 0, s1 = 0, c0 = 0, c1 = 0, f0 = 0, f1 = 0;
  cpustat cs0 = {0, 0}, cs1 = {0, 0};
  uint32_t *lat;
  size_t nlat = 0;
  unsigned long i;
  uint64_t cdone = 0, cfailed = 0, ctimeouts = 0;
  double win_s, busy, ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN);

  for (a = 1; a < argc; a++) {
    if (strcmp(argv[a], "--nocookie") == 0) {
      cookie = 0;
    } else if (strcmp(argv[a], "--clients") == 0 && a + 1 < argc) {
      nclients = bench_parse_ul(argv[++a], "--clients");
    } else if (strcmp(argv[a], "--server-threads") == 0 && a + 1 < argc) {
      sthreads = bench_parse_ul(argv[++a], "--server-threads");
    } else if (strcmp(argv[a], "--duration") == 0 && a + 1 < argc) {
      duration = bench_parse_ul(argv[++a], "--duration");
    } else if (strcmp(argv[a], "--warmup") == 0 && a + 1 < argc) {
      warmup = bench_parse_ul(argv[++a], "--warmup");
    } else if (strcmp(argv[a], "--label") == 0 && a + 1 < argc) {
      label = argv[++a];
    } else {
      fprintf(stderr, "usage: bench_dtls_server --clients N [--duration S] "
                      "[--warmup S] [--server-threads T] [--nocookie] "
                      "[--label TEXT]\n");
      return 2;
    }
  }
  if (nclients == 0 || nclients > 1024 || sthreads == 0 || sthreads > 64 ||
      duration == 0) {
    fprintf(stderr, "bench_dtls_server: bad arguments\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (SH == MAP_FAILED) {
    die("mmap");
  }
  memset(SH, 0, sizeof(*SH));
  pid = fork();
  if (pid < 0) {
    die("fork");
  }
  if (pid == 0) {
    server_main((unsigned)sthreads, cookie);
  }
  t0 = bench_mono_ns();
  while (atomic_load(&SH->port) == 0) {
    if (bench_mono_ns() - t0 > 10000000000ull) {
      kill(pid, SIGKILL);
      fprintf(stderr, "bench_dtls_server: the server did not start\n");
      return 1;
    }
    bench_sleep_ms(5);
  }
  have_clock = clock_getcpuclockid(pid, &sclock) == 0;

  cctx = ctx_new(0);
  SSL_CTX_set_psk_client_callback(cctx, psk_client_cb);
  cls = calloc(nclients, sizeof(*cls));
  if (cls == NULL) {
    die("calloc");
  }
  for (i = 0; i < nclients; i++) {
    cls[i].idx = (unsigned)i;
    cls[i].nclients = (unsigned)nclients;
    cls[i].ctx = cctx;
    cls[i].srv.sin_family = AF_INET;
    cls[i].srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cls[i].srv.sin_port = htons((uint16_t)atomic_load(&SH->port));
    cls[i].latcap = 1u << 20;
    cls[i].lat_us = malloc(cls[i].latcap * sizeof(uint32_t));
    if (cls[i].lat_us == NULL) {
      die("malloc");
    }
  }
  t0 = bench_mono_ns();
  last_srv = have_clock ? bench_clock_ns(sclock) : 0;
  for (i = 0; i < nclients; i++) {
    if (pthread_create(&cls[i].th, NULL, client_thread, &cls[i]) != 0) {
      die("pthread_create");
    }
  }
  next_tick = t0 + 1000000000u;
  for (;;) {
    uint64_t now, h;
    int ph = atomic_load(&g_phase);
    bench_sleep_ms(10);
    now = bench_mono_ns();
    h = atomic_load(&SH->handshakes);
    if (ph == 0 && now - t0 >= warmup * 1000000000ull) {
      tw0 = now;
      h0 = h;
      f0 = atomic_load(&SH->failures) + atomic_load(&SH->abandoned);
      s0 = have_clock ? bench_clock_ns(sclock) : 0;
      c0 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
      cs0 = read_cpustat();
      atomic_store(&g_win_start, tw0);
      atomic_store(&g_phase, 1);
    } else if (ph == 1 && now - tw0 >= duration * 1000000000ull) {
      tw1 = now;
      h1 = h;
      f1 = atomic_load(&SH->failures) + atomic_load(&SH->abandoned);
      s1 = have_clock ? bench_clock_ns(sclock) : 0;
      c1 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
      cs1 = read_cpustat();
      atomic_store(&g_phase, 2);
      break;
    }
    if (now >= next_tick) {
      uint64_t sc = have_clock ? bench_clock_ns(sclock) : 0;
      fprintf(
        stderr,
        "progress %s: t=%.0fs %s hs/s=%llu total=%llu server_cores=%.2f\n",
        label, (double)(now - t0) / 1e9, ph == 0 ? "warm-up" : "window",
        (unsigned long long)(h - last), (unsigned long long)h,
        (double)(sc - last_srv) / 1e9);
      last = h;
      last_srv = sc;
      next_tick += 1000000000u;
    }
  }
  for (i = 0; i < nclients; i++) {
    pthread_join(cls[i].th, NULL);
    nlat += cls[i].nlat;
    cdone += cls[i].done;
    cfailed += cls[i].failed;
    ctimeouts += cls[i].timeouts;
  }
  atomic_store(&SH->stop, 1);
  waitpid(pid, NULL, 0);
  lat = malloc((nlat + 1) * sizeof(*lat));
  if (lat == NULL) {
    die("malloc");
  }
  nlat = 0;
  for (i = 0; i < nclients; i++) {
    memcpy(lat + nlat, cls[i].lat_us, cls[i].nlat * sizeof(*lat));
    nlat += cls[i].nlat;
  }
  qsort(lat, nlat, sizeof(*lat), cmp_u32);
  win_s = (double)(tw1 - tw0) / 1e9;
  busy = cs1.total > cs0.total
           ? (double)(cs1.busy - cs0.busy) / (double)(cs1.total - cs0.total)
           : 0.0;
  printf("dtls label=%s clients=%lu cookie=%d server_threads=%lu "
         "window_s=%.2f hs=%llu hs_per_s=%.0f p50_ms=%.3f p99_ms=%.3f "
         "srv_cpu_s=%.2f srv_cores=%.2f hs_per_srv_cpu_s=%.0f "
         "clients_cpu_s=%.2f clients_cores=%.2f machine_busy=%.0f%% "
         "others_cores=%.2f "
         "srv_failures_in_window=%llu client_done=%llu client_failed=%llu "
         "client_retransmits=%llu\n",
         label, nclients, cookie, sthreads, win_s,
         (unsigned long long)(h1 - h0), (double)(h1 - h0) / win_s,
         pct(lat, nlat, 0.5), pct(lat, nlat, 0.99), (double)(s1 - s0) / 1e9,
         (double)(s1 - s0) / 1e9 / win_s,
         s1 > s0 ? (double)(h1 - h0) / ((double)(s1 - s0) / 1e9) : 0.0,
         (double)(c1 - c0) / 1e9, (double)(c1 - c0) / 1e9 / win_s, 100.0 * busy,
         busy * ncpu - (double)(s1 - s0) / 1e9 / win_s -
           (double)(c1 - c0) / 1e9 / win_s,
         (unsigned long long)(f1 - f0), (unsigned long long)cdone,
         (unsigned long long)cfailed, (unsigned long long)ctimeouts);
  SSL_CTX_free(cctx);
  return h1 > h0 ? 0 : 1;
}
