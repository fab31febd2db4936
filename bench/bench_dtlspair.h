/*
 * The comparison point of the device benchmarks: an OpenSSL 3 DTLS 1.2 PSK
 * client and server (PSK-AES128-CCM8) in one process, joined by an
 * in-memory datagram link, with every datagram counted.
 *
 * The link is a custom BIO with datagram semantics: each BIO_write by one
 * side is one datagram queued for the other side; each BIO_read returns one
 * whole datagram.  OpenSSL writes every DTLS record with its own BIO_write,
 * as it does with a UDP socket (BIO_s_datagram), so the counts are those a
 * UDP capture would show (UDP payload bytes, no IP/UDP headers).
 *
 * Configuration (what a constrained client would do): DTLS 1.2 only; the
 * client offers the one cipher suite PSK-AES128-CCM8; no session tickets;
 * PSK identity = the device's 8-byte ID as 16 hex digits; 16-byte PSK;
 * the server does the cookie exchange (HelloVerifyRequest, 16-byte cookie)
 * unless told not to; retransmission timers are set to 60 s so that a slow
 * run (valgrind) never retransmits.
 */
#ifndef MTCSEC_BENCH_DTLSPAIR_H
#define MTCSEC_BENCH_DTLSPAIR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define BENCH_DGRAM_MAX 2048
#define BENCH_DGRAM_QUEUE 32
#define BENCH_DGRAM_LOG 64

/* Datagrams waiting for one side. */
typedef struct bench_dgram_queue {
  uint8_t buf[BENCH_DGRAM_QUEUE][BENCH_DGRAM_MAX];
  size_t len[BENCH_DGRAM_QUEUE];
  size_t head, count;
} bench_dgram_queue;

/* What crossed the link since the last reset. */
typedef struct bench_dtls_stats {
  size_t bytes[2]; /* [0] client -> server, [1] server -> client */
  size_t dgrams[2];
  size_t flights; /* maximal runs of datagrams in one direction */
  int last_dir;   /* -1: nothing sent yet */
  size_t nlog;    /* datagram sizes in order, negative = server -> client */
  long log[BENCH_DGRAM_LOG];
} bench_dtls_stats;

struct bench_dtls_pair;

/* One side's view of the link (the BIO's data). */
typedef struct bench_dtls_end {
  struct bench_dtls_pair *p;
  int dir; /* 0: this end is the client, 1: the server */
} bench_dtls_end;

typedef struct bench_dtls_pair {
  SSL_CTX *cctx, *sctx;
  BIO_METHOD *meth;
  bench_dtls_end end[2];
  SSL *c, *s;
  bench_dgram_queue to_server, to_client;
  bench_dtls_stats st;
} bench_dtls_pair;

/** Creates both contexts.  cookie: 1 = HelloVerifyRequest exchange.
 *  Returns 0 or -1 (OpenSSL's errors printed to stderr). */
int bench_dtls_init(bench_dtls_pair *p, int cookie);

/**
 * Runs one full handshake on new SSL objects (no resumption).  client_step
 * is called for every client-side handshake step instead of SSL_connect
 * (NULL: SSL_connect), so that a profiler can collect it by name.  The
 * statistics are reset first.  Returns 0 when both sides finished.
 */
int bench_dtls_handshake(bench_dtls_pair *p, int (*client_step)(SSL *));

/**
 * After a handshake: the client sends one application record of ptlen
 * bytes; returns the datagram length minus ptlen (the per-record overhead),
 * or -1.  The server reads it back.
 */
long bench_dtls_record_overhead(bench_dtls_pair *p, size_t ptlen);

/** Frees the SSL objects of the last handshake. */
void bench_dtls_close(bench_dtls_pair *p);

/** Frees everything. */
void bench_dtls_free(bench_dtls_pair *p);

#endif /* MTCSEC_BENCH_DTLSPAIR_H */
