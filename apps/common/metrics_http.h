/*
 * The Prometheus endpoint that mtcsd and mtchpd share: a growing text
 * buffer for the exposition format (version 0.0.4) and the body of the
 * thread that serves it on metrics_listen: plain HTTP/1.0, GET /metrics,
 * one request per connection, 2 s socket timeouts.  Each daemon keeps its
 * own counters and renders them; this file only does the HTTP.
 */
#ifndef MTCSEC_APP_METRICS_HTTP_H
#define MTCSEC_APP_METRICS_HTTP_H

#include <stddef.h>

/** Text being rendered; failed is set once an allocation failed. */
typedef struct app_mbuf {
  char *p;
  size_t n, cap;
  int failed;
} app_mbuf;

/** Appends printf-style text to b, growing it (nothing once b->failed). */
void app_mprintf(app_mbuf *b, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

/** Renders the daemon's metrics into b (with app_mprintf). */
typedef void (*app_metrics_render_fn)(void *arg, app_mbuf *b);

/**
 * The metrics thread's loop: accepts connections on listen_fd until
 * stop_fd (an eventfd) becomes readable.  Each connection gets one answer:
 * 200 with render(arg, ...)'s text (rendered into a buffer of cap bytes to
 * start with) for GET /metrics, else 404.  Closes neither descriptor.
 */
void app_metrics_loop(int listen_fd, int stop_fd, app_metrics_render_fn render,
                      void *arg, size_t cap);

#endif /* MTCSEC_APP_METRICS_HTTP_H */
