/*
 * I/O bounded by one deadline, shared by the K_UP client
 * (apps/common/kup_client.c) and mtchpd's K_UP service: a non-blocking
 * socket, poll() for readiness, and one absolute deadline for a whole
 * exchange (connect or accept, handshake, request, response), so that a
 * peer that sends or reads one byte now and then cannot stretch it.
 *
 * A per-read socket timeout (SO_RCVTIMEO) does not give that bound: every
 * byte that arrives starts the timeout again.
 *
 * Times are CLOCK_MONOTONIC microseconds (app_mono_us()).  The socket
 * must be non-blocking (O_NONBLOCK).
 */
#ifndef MTCSEC_DEADLINE_H
#define MTCSEC_DEADLINE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/** Monotonic microseconds (CLOCK_MONOTONIC). */
uint64_t app_mono_us(void);

/**
 * Waits until fd is ready for events (POLLIN, POLLOUT) or the deadline
 * passes.  Returns 0 when ready (or in error/hang-up: the next I/O call
 * says which), -1 with errno ETIMEDOUT at the deadline, or -1 with poll's
 * errno.
 */
int app_wait_fd(int fd, short events, uint64_t deadline_us);

/** Operations of app_ssl_io(). */
typedef enum app_ssl_op {
  APP_SSL_CONNECT = 0,
  APP_SSL_WRITE = 1,
  APP_SSL_READ = 2,
  APP_SSL_ACCEPT = 3
} app_ssl_op;

/**
 * Drives one SSL call (SSL_connect, SSL_accept, SSL_write or SSL_read of
 * n bytes at buf) on the non-blocking socket fd until it completes or the
 * deadline passes, waiting for whatever the TLS layer wants (a handshake
 * or a read may need to write, and the other way round).
 *
 * Returns the call's result (> 0), 0 for a clean end of stream (read:
 * close_notify), or -1 with a sentence in detail (may be NULL): "timed
 * out", the poll() error, OpenSSL's reason for the last error, or
 * "connection closed" / "TLS error".  The OpenSSL error queue is empty
 * afterwards.  The caller decides what a failure means (e.g. by checking
 * SSL_get_verify_result() after a failed handshake).
 */
int app_ssl_io(SSL *ssl, int fd, app_ssl_op op, void *buf, int n,
               uint64_t deadline_us, char *detail, size_t detaillen);

#endif /* MTCSEC_DEADLINE_H */
