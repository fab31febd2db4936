/*
 * OpenSSL DTLS 1.2 PSK client and server over an in-memory datagram link
 * (see bench_dtlspair.h for what is counted and how it is configured).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_dtlspair.h"

/* The device's ID as a PSK identity (16 hex digits, as mtcsec's MTCdID). */
static const char PSK_IDENTITY[] = "02000000000000a1";
static const unsigned char PSK[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
                                      0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
                                      0x0c, 0x0d, 0x0e, 0x0f};
/* A server secret would make the cookie; a constant is enough here. */
static const unsigned char COOKIE[16] = {0xc0, 0x0c, 0x1e, 0x5e, 0xc7, 0x37,
                                         0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                                         0x66, 0x77, 0x88, 0x99};

/* ------------------------------------------------------ datagram BIO */

static bench_dgram_queue *end_inbound(bench_dtls_end *e) {
  return e->dir == 0 ? &e->p->to_client : &e->p->to_server;
}

static bench_dgram_queue *end_outbound(bench_dtls_end *e) {
  return e->dir == 0 ? &e->p->to_server : &e->p->to_client;
}

static int dg_write(BIO *b, const char *in, int inl) {
  bench_dtls_end *e = BIO_get_data(b);
  bench_dgram_queue *q = end_outbound(e);
  bench_dtls_stats *st = &e->p->st;
  size_t slot;

  BIO_clear_retry_flags(b);
  if (inl <= 0 || (size_t)inl > BENCH_DGRAM_MAX ||
      q->count == BENCH_DGRAM_QUEUE) {
    return -1;
  }
  slot = (q->head + q->count) % BENCH_DGRAM_QUEUE;
  memcpy(q->buf[slot], in, (size_t)inl);
  q->len[slot] = (size_t)inl;
  q->count++;
  st->bytes[e->dir] += (size_t)inl;
  st->dgrams[e->dir]++;
  if (st->last_dir != e->dir) {
    st->flights++;
    st->last_dir = e->dir;
  }
  if (st->nlog < BENCH_DGRAM_LOG) {
    st->log[st->nlog++] = e->dir == 0 ? (long)inl : -(long)inl;
  }
  return inl;
}

static int dg_read(BIO *b, char *out, int outl) {
  bench_dtls_end *e = BIO_get_data(b);
  bench_dgram_queue *q = end_inbound(e);
  size_t n;

  BIO_clear_retry_flags(b);
  if (out == NULL || outl <= 0) {
    return 0;
  }
  if (q->count == 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  /* One whole datagram; a short buffer truncates it, as UDP does. */
  n = q->len[q->head];
  if (n > (size_t)outl) {
    n = (size_t)outl;
  }
  memcpy(out, q->buf[q->head], n);
  q->head = (q->head + 1) % BENCH_DGRAM_QUEUE;
  q->count--;
  return (int)n;
}

static long dg_ctrl(BIO *b, int cmd, long num, void *ptr) {
  bench_dtls_end *e = BIO_get_data(b);
  bench_dgram_queue *q;
  (void)num;
  (void)ptr;
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1;
  case BIO_CTRL_PENDING:
    q = end_inbound(e);
    return q->count > 0 ? (long)q->len[q->head] : 0;
  case BIO_CTRL_WPENDING:
    return 0;
  case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
    return 28; /* IPv4 + UDP headers */
  default:
    return 0;
  }
}

static int dg_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static int dg_destroy(BIO *b) {
  (void)b;
  return 1;
}

/* --------------------------------------------------------- callbacks */

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity,
                                  unsigned int max_identity_len,
                                  unsigned char *psk,
                                  unsigned int max_psk_len) {
  (void)ssl;
  (void)hint;
  if (max_identity_len < sizeof(PSK_IDENTITY) || max_psk_len < sizeof(PSK)) {
    return 0;
  }
  memcpy(identity, PSK_IDENTITY, sizeof(PSK_IDENTITY));
  memcpy(psk, PSK, sizeof(PSK));
  return sizeof(PSK);
}

static unsigned int psk_server_cb(SSL *ssl, const char *identity,
                                  unsigned char *psk,
                                  unsigned int max_psk_len) {
  (void)ssl;
  if (identity == NULL || strcmp(identity, PSK_IDENTITY) != 0 ||
      max_psk_len < sizeof(PSK)) {
    return 0;
  }
  memcpy(psk, PSK, sizeof(PSK));
  return sizeof(PSK);
}

static int cookie_gen_cb(SSL *ssl, unsigned char *cookie,
                         unsigned int *cookie_len) {
  (void)ssl;
  memcpy(cookie, COOKIE, sizeof(COOKIE));
  *cookie_len = sizeof(COOKIE);
  return 1;
}

static int cookie_verify_cb(SSL *ssl, const unsigned char *cookie,
                            unsigned int cookie_len) {
  (void)ssl;
  return cookie_len == sizeof(COOKIE) &&
         memcmp(cookie, COOKIE, sizeof(COOKIE)) == 0;
}

/* No retransmission during a (slow, instrumented) run: 60 s, doubling. */
static unsigned int timer_cb(SSL *ssl, unsigned int timer_us) {
  (void)ssl;
  return timer_us == 0 ? 60000000u : 2 * timer_us;
}

/* ------------------------------------------------------------- pair */

static SSL_CTX *ctx_new(int server) {
  SSL_CTX *ctx =
    SSL_CTX_new(server ? DTLS_server_method() : DTLS_client_method());
  if (ctx == NULL) {
    return NULL;
  }
  if (SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx, "PSK-AES128-CCM8") != 1) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_QUERY_MTU);
  if (server) {
    SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
  } else {
    SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
  }
  return ctx;
}

int bench_dtls_init(bench_dtls_pair *p, int cookie) {
  memset(p, 0, sizeof(*p));
  p->end[0].p = p;
  p->end[0].dir = 0;
  p->end[1].p = p;
  p->end[1].dir = 1;
  p->meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                         "mtcsec bench datagram link");
  p->cctx = ctx_new(0);
  p->sctx = ctx_new(1);
  if (p->meth == NULL || p->cctx == NULL || p->sctx == NULL ||
      BIO_meth_set_write(p->meth, dg_write) != 1 ||
      BIO_meth_set_read(p->meth, dg_read) != 1 ||
      BIO_meth_set_ctrl(p->meth, dg_ctrl) != 1 ||
      BIO_meth_set_create(p->meth, dg_create) != 1 ||
      BIO_meth_set_destroy(p->meth, dg_destroy) != 1) {
    ERR_print_errors_fp(stderr);
    bench_dtls_free(p);
    return -1;
  }
  if (cookie) {
    SSL_CTX_set_options(p->sctx, SSL_OP_COOKIE_EXCHANGE);
    SSL_CTX_set_cookie_generate_cb(p->sctx, cookie_gen_cb);
    SSL_CTX_set_cookie_verify_cb(p->sctx, cookie_verify_cb);
  }
  return 0;
}

static SSL *ssl_new(bench_dtls_pair *p, int dir) {
  SSL *ssl = SSL_new(dir == 0 ? p->cctx : p->sctx);
  BIO *b;
  if (ssl == NULL) {
    return NULL;
  }
  b = BIO_new(p->meth);
  if (b == NULL) {
    SSL_free(ssl);
    return NULL;
  }
  BIO_set_data(b, &p->end[dir]);
  SSL_set_bio(ssl, b, b);            /* one reference for both directions */
  if (SSL_set_mtu(ssl, 1400) <= 0) { /* returns the MTU set */
    SSL_free(ssl);
    return NULL;
  }
  DTLS_set_timer_cb(ssl, timer_cb);
  if (dir == 0) {
    SSL_set_connect_state(ssl);
  } else {
    SSL_set_accept_state(ssl);
  }
  return ssl;
}

/* One step of one side: 1 done, 0 waiting for data, -1 failed. */
static int side_step(SSL *ssl, int rv) {
  if (rv == 1) {
    return 1;
  }
  if (SSL_get_error(ssl, rv) == SSL_ERROR_WANT_READ) {
    return 0;
  }
  ERR_print_errors_fp(stderr);
  return -1;
}

int bench_dtls_handshake(bench_dtls_pair *p, int (*client_step)(SSL *)) {
  int cdone = 0, sdone = 0, i, r;

  bench_dtls_close(p);
  memset(&p->st, 0, sizeof(p->st));
  p->st.last_dir = -1;
  p->c = ssl_new(p, 0);
  p->s = ssl_new(p, 1);
  if (p->c == NULL || p->s == NULL) {
    ERR_print_errors_fp(stderr);
    return -1;
  }
  for (i = 0; i < 64 && !(cdone && sdone); i++) {
    if (!cdone) {
      r = side_step(p->c, client_step != NULL ? client_step(p->c)
                                              : SSL_connect(p->c));
      if (r < 0) {
        fprintf(stderr, "dtls: client handshake failed\n");
        return -1;
      }
      cdone = r;
    }
    if (!sdone) {
      r = side_step(p->s, SSL_accept(p->s));
      if (r < 0) {
        fprintf(stderr, "dtls: server handshake failed\n");
        return -1;
      }
      sdone = r;
    }
  }
  if (!cdone || !sdone || p->to_client.count != 0 || p->to_server.count != 0) {
    fprintf(stderr, "dtls: handshake did not settle\n");
    return -1;
  }
  if (strcmp(SSL_get_cipher_name(p->c), "PSK-AES128-CCM8") != 0 ||
      SSL_version(p->c) != DTLS1_2_VERSION) {
    fprintf(stderr, "dtls: negotiated %s %s\n", SSL_get_version(p->c),
            SSL_get_cipher_name(p->c));
    return -1;
  }
  return 0;
}

long bench_dtls_record_overhead(bench_dtls_pair *p, size_t ptlen) {
  unsigned char pt[256], back[256];
  size_t before = p->st.bytes[0];
  long over;
  int n;

  if (p->c == NULL || p->s == NULL || ptlen == 0 || ptlen > sizeof(pt)) {
    return -1;
  }
  memset(pt, 0x42, ptlen);
  if (SSL_write(p->c, pt, (int)ptlen) != (int)ptlen) {
    ERR_print_errors_fp(stderr);
    return -1;
  }
  over = (long)(p->st.bytes[0] - before) - (long)ptlen;
  n = SSL_read(p->s, back, sizeof(back));
  if (n != (int)ptlen || memcmp(back, pt, ptlen) != 0) {
    ERR_print_errors_fp(stderr);
    return -1;
  }
  return over;
}

void bench_dtls_close(bench_dtls_pair *p) {
  SSL_free(p->c);
  SSL_free(p->s);
  p->c = NULL;
  p->s = NULL;
  memset(&p->to_client, 0, sizeof(p->to_client));
  memset(&p->to_server, 0, sizeof(p->to_server));
}

void bench_dtls_free(bench_dtls_pair *p) {
  bench_dtls_close(p);
  SSL_CTX_free(p->cctx);
  SSL_CTX_free(p->sctx);
  BIO_meth_free(p->meth);
  p->cctx = NULL;
  p->sctx = NULL;
  p->meth = NULL;
}
