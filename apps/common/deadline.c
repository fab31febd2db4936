/*
 * I/O bounded by one deadline (apps/common/deadline.h): poll() on a
 * non-blocking socket, OpenSSL calls retried on WANT_READ / WANT_WRITE
 * until the deadline.  Moved here from the K_UP client so that mtchpd's
 * K_UP service bounds each connection the same way.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "deadline.h"

uint64_t app_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int app_wait_fd(int fd, short events, uint64_t deadline_us) {
  for (;;) {
    struct pollfd p;
    uint64_t now = app_mono_us();
    int ms, rv;
    if (now >= deadline_us) {
      errno = ETIMEDOUT;
      return -1;
    }
    ms = (int)((deadline_us - now + 999) / 1000);
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    rv = poll(&p, 1, ms);
    if (rv > 0) {
      return 0;
    }
    if (rv < 0 && errno != EINTR) {
      return -1;
    }
  }
}

int app_ssl_io(SSL *ssl, int fd, app_ssl_op op, void *buf, int n,
               uint64_t deadline_us, char *detail, size_t detaillen) {
  for (;;) {
    int r, e;
    ERR_clear_error();
    switch (op) {
    case APP_SSL_CONNECT:
      r = SSL_connect(ssl);
      break;
    case APP_SSL_ACCEPT:
      r = SSL_accept(ssl);
      break;
    case APP_SSL_WRITE:
      r = SSL_write(ssl, buf, n);
      break;
    default:
      r = SSL_read(ssl, buf, n);
      break;
    }
    if (r > 0) {
      return r;
    }
    e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (app_wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                      deadline_us) != 0) {
        if (detail != NULL && detaillen > 0) {
          snprintf(detail, detaillen, "%s",
                   errno == ETIMEDOUT ? "timed out" : strerror(errno));
        }
        ERR_clear_error();
        return -1;
      }
      continue;
    }
    if (e == SSL_ERROR_ZERO_RETURN && op == APP_SSL_READ) {
      return 0;
    }
    if (detail != NULL && detaillen > 0) {
      unsigned long le = ERR_peek_last_error();
      if (le != 0) {
        char why[160];
        ERR_error_string_n(le, why, sizeof(why));
        snprintf(detail, detaillen, "%s", why);
      } else {
        snprintf(detail, detaillen, "%s",
                 e == SSL_ERROR_SYSCALL ? "connection closed" : "TLS error");
      }
    }
    ERR_clear_error();
    return -1;
  }
}
