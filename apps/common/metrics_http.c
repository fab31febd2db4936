/*
 * The HTTP side of the daemons' Prometheus endpoints: see metrics_http.h.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "metrics_http.h"

void app_mprintf(app_mbuf *b, const char *fmt, ...) {
  va_list ap;
  int m;
  while (!b->failed) {
    va_start(ap, fmt);
    m = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (m < 0) {
      b->failed = 1;
      return;
    }
    if ((size_t)m < b->cap - b->n) {
      b->n += (size_t)m;
      return;
    }
    {
      size_t ncap = b->cap * 2 + (size_t)m;
      char *np = realloc(b->p, ncap);
      if (np == NULL) {
        b->failed = 1;
        return;
      }
      b->p = np;
      b->cap = ncap;
    }
  }
}

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

static void metrics_serve(int fd, app_metrics_render_fn render, void *arg,
                          size_t cap) {
  char req[4096], head[256];
  size_t n = 0;
  struct timeval tv = {2, 0};
  app_mbuf body = {NULL, 0, 0, 0};
  int hl;

  (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  while (n < sizeof(req) - 1) {
    ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      break;
    }
    n += (size_t)r;
    req[n] = '\0';
    if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL) {
      break;
    }
  }
  req[n] = '\0';
  if (strncmp(req, "GET /metrics", 12) != 0 ||
      (req[12] != ' ' && req[12] != '?' && req[12] != '\r')) {
    static const char nf[] = "HTTP/1.0 404 Not Found\r\n"
                             "Content-Type: text/plain\r\n"
                             "Connection: close\r\n\r\n"
                             "try GET /metrics\n";
    send_all(fd, nf, sizeof(nf) - 1);
    return;
  }
  body.cap = cap;
  body.p = malloc(body.cap);
  if (body.p == NULL) {
    return;
  }
  render(arg, &body);
  if (!body.failed) {
    hl = snprintf(head, sizeof(head),
                  "HTTP/1.0 200 OK\r\n"
                  "Content-Type: text/plain; version=0.0.4\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                  body.n);
    send_all(fd, head, (size_t)hl);
    send_all(fd, body.p, body.n);
  }
  free(body.p);
}

void app_metrics_loop(int listen_fd, int stop_fd, app_metrics_render_fn render,
                      void *arg, size_t cap) {
  for (;;) {
    struct pollfd p[2];
    int fd;
    p[0].fd = listen_fd;
    p[0].events = POLLIN;
    p[1].fd = stop_fd;
    p[1].events = POLLIN;
    p[0].revents = p[1].revents = 0;
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    if (p[1].revents != 0) {
      break;
    }
    if ((p[0].revents & POLLIN) == 0) {
      continue;
    }
    fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
      }
      continue;
    }
    /* A non-blocking listener: the connection must not be. */
    {
      int fl = fcntl(fd, F_GETFL);
      if (fl >= 0) {
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
      }
    }
    metrics_serve(fd, render, arg, cap);
    (void)close(fd);
  }
}
