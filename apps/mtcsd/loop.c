/*
 * Worker threads: one epoll loop each, with the TLS connections the main
 * thread handed to it, an inbox (mutex + eventfd) for new connections,
 * routed M2s, answers and commit completions, and timeouts.
 *
 * Connections.  A connection's frames are parsed here (PROTOCOL.md section
 * 5: len(2) || type(1) || req_id(4) || body; len < 5 ends the connection).
 * Each frame goes to the worker that owns its device, hash(MTCdID) %
 * workers, where MTCdID is at body offset 2..9 of an M2; a frame too short
 * for that, or of another type, stays here (the core answers MALFORMED).
 * Every frame handed to a core gets exactly one answer frame, which comes
 * back to this worker and is appended to the connection's output.  A
 * connection stops reading while it has CONN_MAX_INFLIGHT frames without an
 * answer or CONN_OUT_HIGH bytes not yet written (backpressure), so memory
 * per connection is bounded: an input buffer of at most one frame (65537
 * bytes) and the output of its answers.
 *
 * Timeouts (idle_timeout): a TLS handshake must complete, a started frame
 * (or TLS record) must be completed, and pending output must make progress
 * within idle_timeout; an idle connection with nothing pending may stay.
 *
 * Connection ids: (generation << 32) | (slot << 8) | worker.  They are
 * never reused, so an answer for a closed connection is simply dropped.
 * When a connection closes with frames still unanswered, the workers it
 * routed frames to are told (MSG_CLOSED): they drop its frames not yet
 * handed to their core and the core forgets its queued answers.
 *
 * Secrets: an M3 ends with DMKey.  Output bytes are zeroized as soon as
 * TLS has taken them, and every buffer or message that may hold an answer
 * (or a frame) is zeroized before it is freed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include <mtcsec/codec.h>

#include "mtcsd.h"

#define CONN_MAX_INFLIGHT 1024
#define CONN_OUT_HIGH (256 * 1024)
#define CONN_IN_INIT 4096
#define LOOP_TICK_MS 100
#define LOOP_MAX_EVENTS 256

enum { CONN_HANDSHAKE = 0, CONN_OPEN = 1, CONN_CLOSED = 2 };

struct mtcsd_conn {
  uint64_t id;
  int fd;
  SSL *ssl;
  uint8_t state;
  uint8_t ueid[MTCSEC_ID_LEN];
  char ue[17];
  char peer[64];
  uint8_t *in;
  size_t inlen, incap;
  uint8_t *out;
  size_t outlen, outoff, outcap;
  uint32_t inflight; /* frames handed to a core, not yet answered */
  uint64_t routed;   /* bit i: frames went to worker i's core */
  uint32_t events;   /* registered with epoll */
  mtcsec_tstamp opened;
  mtcsec_tstamp hs_deadline, read_deadline, write_deadline;
  uint64_t frames;
  unsigned fatal : 1;       /* no close_notify: a fatal TLS error happened */
  unsigned paused : 1;      /* backpressure */
  unsigned read_eof : 1;    /* the peer will send nothing more */
  unsigned drain_done : 1;  /* draining: read what was there */
  unsigned want_write : 1;  /* an SSL call needs the socket writable */
  unsigned in_dirty : 1;    /* on the dirty list */
  unsigned established : 1; /* handshake completed */
  mtcsd_conn *dirty_next;
  mtcsd_conn *dead_next;
};

/* Connections closed in this loop iteration, freed by conn_reap(). */
static __thread mtcsd_conn *tl_dead;

/* --------------------------------------------------------- messages */

mtcsd_msg *mtcsd_msg_new(uint8_t type, const void *data, size_t len) {
  mtcsd_msg *m = malloc(sizeof(*m) + len);
  if (m == NULL) {
    return NULL;
  }
  memset(m, 0, sizeof(*m));
  m->type = type;
  m->fd = -1;
  m->len = len;
  if (data != NULL && len > 0) {
    memcpy(m->data, data, len);
  }
  return m;
}

void mtcsd_msg_free(mtcsd_msg *m) {
  if (m != NULL) {
    mtcsec_zeroize(m->data, m->len);
    free(m);
  }
}

#ifdef MTCSD_FAULT_INJECTION
int mtcsd_fi_nomem(const char *var, const uint8_t *frame, size_t len) {
  const char *v = getenv(var);
  uint32_t req_id;
  if (v == NULL || len < MTCSEC_FRAME_HDR_LEN) {
    return 0;
  }
  req_id = ((uint32_t)frame[3] << 24) | ((uint32_t)frame[4] << 16) |
           ((uint32_t)frame[5] << 8) | frame[6];
  return strtoul(v, NULL, 0) == req_id;
}

/* A size from the environment (tests: small core limits), or dflt. */
static size_t fi_size(const char *var, size_t dflt) {
  const char *v = getenv(var);
  return v != NULL ? (size_t)strtoul(v, NULL, 0) : dflt;
}
#endif

static void wake(int fd) {
  uint64_t one = 1;
  while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

void mtcsd_worker_post(mtcsd_worker *w, mtcsd_msg *m) {
  int need_wake;
  m->next = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->in_tail != NULL) {
    w->in_tail->next = m;
  } else {
    w->in_head = m;
  }
  w->in_tail = m;
  need_wake = !w->signalled;
  w->signalled = 1;
  pthread_mutex_unlock(&w->mu);
  if (need_wake) {
    wake(w->evfd);
  }
}

void mtcsd_worker_lost(mtcsd_worker *w, uint64_t conn) {
  int need_wake;
  pthread_mutex_lock(&w->mu);
  if (w->nlost < MTCSD_LOST_MAX) {
    w->lost[w->nlost++] = conn;
  } else {
    w->lost_overflow = 1;
  }
  need_wake = !w->signalled;
  w->signalled = 1;
  pthread_mutex_unlock(&w->mu);
  if (need_wake) {
    wake(w->evfd);
  }
}

void mtcsd_worker_commit_done(mtcsd_worker *w) {
  int need_wake;
  pthread_mutex_lock(&w->mu);
  w->commit_done = 1;
  need_wake = !w->signalled;
  w->signalled = 1;
  pthread_mutex_unlock(&w->mu);
  if (need_wake) {
    wake(w->evfd);
  }
}

/* ------------------------------------------------------- conn table */

static mtcsd_conn *conn_lookup(mtcsd_worker *w, uint64_t id) {
  size_t slot = (size_t)((id >> 8) & 0xffffff);
  mtcsd_conn *c;
  if (mtcsd_conn_worker(id) != w->idx || slot >= w->nslots) {
    return NULL;
  }
  c = w->conns[slot];
  return c != NULL && c->id == id ? c : NULL;
}

/* A free slot (the table grows by doubling).  0, or -1. */
static int slot_alloc(mtcsd_worker *w, uint32_t *slot) {
  if (w->nfree == 0) {
    size_t ncap = w->nslots ? w->nslots * 2 : 64, i;
    mtcsd_conn **nc;
    uint32_t *nf, *ng;
    if (ncap > 0xffffff) {
      return -1;
    }
    nc = realloc(w->conns, ncap * sizeof(*nc));
    if (nc == NULL) {
      return -1;
    }
    w->conns = nc;
    nf = realloc(w->free_slots, ncap * sizeof(*nf));
    if (nf == NULL) {
      return -1;
    }
    w->free_slots = nf;
    ng = realloc(w->slot_gen, ncap * sizeof(*ng));
    if (ng == NULL) {
      return -1;
    }
    w->slot_gen = ng;
    for (i = w->nslots; i < ncap; i++) {
      w->conns[i] = NULL;
      w->slot_gen[i] = 0;
    }
    /* Lowest slots on top of the stack. */
    for (i = ncap; i > w->nslots; i--) {
      w->free_slots[w->nfree++] = (uint32_t)(i - 1);
    }
    w->nslots = ncap;
  }
  *slot = w->free_slots[--w->nfree];
  return 0;
}

/* ----------------------------------------------------------- helpers */

/* Copies s into out as a log value: printable ASCII, no quotes. */
static const char *log_safe(char *out, size_t outlen, const char *s) {
  size_t i = 0;
  for (; *s != '\0' && i + 1 < outlen; s++) {
    unsigned char ch = (unsigned char)*s;
    out[i++] =
      (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? (char)ch : '?';
  }
  out[i] = '\0';
  return out;
}

/* The last OpenSSL error as a short sentence (empties the queue). */
static const char *ssl_reason(char *out, size_t outlen) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
  snprintf(out, outlen, "%s", r != NULL ? r : "unknown TLS error");
  ERR_clear_error();
  return out;
}

static void conn_set_events(mtcsd_worker *w, mtcsd_conn *c) {
  uint32_t ev = 0;
  struct epoll_event e;
  if (c->state == CONN_CLOSED) {
    return;
  }
  if (c->state == CONN_HANDSHAKE ||
      (!c->paused && !c->read_eof && !(w->draining && c->drain_done))) {
    ev |= EPOLLIN;
  }
  if (c->want_write) {
    ev |= EPOLLOUT;
  }
  if (ev == c->events) {
    return;
  }
  memset(&e, 0, sizeof(e));
  e.events = ev;
  e.data.u64 = c->id;
  if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &e) == 0) {
    c->events = ev;
  }
}

static void conn_mark_dirty(mtcsd_worker *w, mtcsd_conn *c) {
  if (!c->in_dirty) {
    c->in_dirty = 1;
    c->dirty_next = w->dirty;
    w->dirty = c;
  }
}

/*
 * Tells the other workers that got frames of c, now closed with frames
 * unanswered, to drop what they still hold of it.  (With every answer back,
 * no other worker holds anything of c: nothing to tell.)
 */
static void conn_tell_closed(mtcsd_worker *w, const mtcsd_conn *c) {
  unsigned i;
  for (i = 0; i < w->d->nworkers && i < 64; i++) {
    mtcsd_msg *m;
    if (i == w->idx || !(c->routed & ((uint64_t)1 << i))) {
      continue;
    }
    m = mtcsd_msg_new(MSG_CLOSED, NULL, 0);
    if (m == NULL) {
      /* That worker answers the frames anyway; the answers are dropped. */
      app_log(MTCSEC_LOG_ERROR, "event=post_failed conn=%llu err=nomem",
              (unsigned long long)c->id);
      continue;
    }
    m->conn = c->id;
    mtcsd_worker_post(&w->d->workers[i], m);
  }
}

/*
 * Closes c: one log line with the reason, close_notify when the TLS session
 * is healthy, and the core forgets the connection's queued answers.  The
 * struct itself is freed at the end of the loop iteration (conn_reap), so
 * callers may still look at c->state.
 */
static void conn_close(mtcsd_worker *w, mtcsd_conn *c, const char *reason,
                       const char *detail, int level) {
  char safe[256];
  mtcsec_tstamp now = app_now_ms();
  size_t slot = (size_t)((c->id >> 8) & 0xffffff);

  if (c->state == CONN_CLOSED) {
    return;
  }
  app_log(level,
          "event=conn_close conn=%llu peer=%s ue=%s reason=%s%s%s%s "
          "frames=%llu inflight=%u ms=%llu",
          (unsigned long long)c->id, c->peer, c->ue[0] ? c->ue : "-", reason,
          detail != NULL ? " detail=\"" : "",
          detail != NULL ? log_safe(safe, sizeof(safe), detail) : "",
          detail != NULL ? "\"" : "", (unsigned long long)c->frames,
          c->inflight, (unsigned long long)(now - c->opened));
  epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  if (c->established && !c->fatal) {
    ERR_clear_error();
    SSL_shutdown(c->ssl); /* best effort, non-blocking */
  }
  ERR_clear_error();
  SSL_free(c->ssl);
  c->ssl = NULL;
  close(c->fd);
  c->fd = -1;
  c->state = CONN_CLOSED;
  w->conns[slot] = NULL;
  w->free_slots[w->nfree++] = (uint32_t)slot;
  w->nconns--;
  mtcsd_metrics_conn_delta(-1);
  mtcsd_core_conn_closed(w, c->id);
  if (c->inflight > 0) {
    conn_tell_closed(w, c);
  }
  c->dead_next = tl_dead;
  tl_dead = c;
}

/* Zeroizes and frees c's buffers (M3s end with DMKey). */
static void conn_free_buffers(mtcsd_conn *c) {
  if (c->in != NULL) {
    mtcsec_zeroize(c->in, c->incap);
    free(c->in);
    c->in = NULL;
  }
  if (c->out != NULL) {
    mtcsec_zeroize(c->out, c->outcap);
    free(c->out);
    c->out = NULL;
  }
  c->inlen = c->incap = 0;
  c->outlen = c->outoff = c->outcap = 0;
}

static void conn_reap(void) {
  while (tl_dead != NULL) {
    mtcsd_conn *c = tl_dead;
    tl_dead = c->dead_next;
    conn_free_buffers(c);
    free(c);
  }
}

/* Closes c if it has nothing more to do: the peer finished, or draining. */
static void conn_maybe_finish(mtcsd_worker *w, mtcsd_conn *c) {
  if (c->state != CONN_OPEN || c->inflight != 0 || c->outlen != 0) {
    return;
  }
  if (c->read_eof) {
    conn_close(w, c, "eof", NULL, MTCSEC_LOG_INFO);
  } else if (w->draining && c->drain_done) {
    conn_close(w, c, "shutdown", NULL, MTCSEC_LOG_INFO);
  }
}

/* ----------------------------------------------------------- output */

static void conn_flush(mtcsd_worker *w, mtcsd_conn *c) {
  int progressed = 0;
  if (c->state != CONN_OPEN) {
    return;
  }
  c->want_write = 0;
  while (c->outoff < c->outlen) {
    size_t left = c->outlen - c->outoff;
    int r, err;
    ERR_clear_error();
    r = SSL_write(c->ssl, c->out + c->outoff,
                  left > INT32_MAX ? INT32_MAX : (int)left);
    if (r > 0) {
      /* TLS has encrypted these bytes: no plaintext copy stays here. */
      mtcsec_zeroize(c->out + c->outoff, (size_t)r);
      c->outoff += (size_t)r;
      progressed = 1;
      continue;
    }
    err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_WRITE) {
      c->want_write = 1;
      break;
    }
    if (err == SSL_ERROR_WANT_READ) {
      break;
    }
    {
      char why[160];
      c->fatal = 1;
      if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        snprintf(why, sizeof(why), "%s", strerror(errno));
      } else {
        ssl_reason(why, sizeof(why));
      }
      conn_close(w, c, "write_error", why, MTCSEC_LOG_INFO);
      return;
    }
  }
  if (c->outoff == c->outlen) {
    c->outoff = c->outlen = 0;
    c->write_deadline = 0;
    if (c->outcap > 4 * CONN_IN_INIT) {
      mtcsec_zeroize(c->out, c->outcap);
      free(c->out);
      c->out = NULL;
      c->outcap = 0;
    }
  } else if (progressed || c->write_deadline == 0) {
    c->write_deadline = app_now_ms() + atomic_load(&w->d->idle_timeout_ms);
  }
}

void mtcsd_conn_answer(mtcsd_worker *w, uint64_t id, const uint8_t *frame,
                       size_t len) {
  mtcsd_conn *c = conn_lookup(w, id);
  int fail = MTCSD_FI_NOMEM("MTCSD_FI_ANSWER_NOMEM", frame, len);
  if (c == NULL || c->state != CONN_OPEN) {
    return; /* closed since: the answer goes nowhere */
  }
  if (c->inflight > 0) {
    c->inflight--;
  }
  if (c->outoff > 0 && c->outoff == c->outlen) {
    c->outoff = c->outlen = 0;
  }
  if (c->outlen + len > c->outcap || fail) {
    size_t ncap = c->outcap ? c->outcap : CONN_IN_INIT;
    uint8_t *nb;
    while (ncap < c->outlen + len) {
      ncap *= 2;
    }
    nb = fail ? NULL : malloc(ncap);
    if (nb == NULL) {
      conn_close(w, c, "out_of_memory", NULL, MTCSEC_LOG_ERROR);
      return;
    }
    if (c->out != NULL) {
      memcpy(nb, c->out, c->outlen);
      mtcsec_zeroize(c->out, c->outcap);
      free(c->out);
    }
    c->out = nb;
    c->outcap = ncap;
  }
  memcpy(c->out + c->outlen, frame, len);
  c->outlen += len;
  conn_mark_dirty(w, c);
}

/* ------------------------------------------------------------ input */

/* The worker that owns the device of this frame. */
static unsigned frame_owner(const mtcsd_worker *w, const uint8_t *frame,
                            size_t len) {
  uint64_t x;
  if (w->d->nworkers == 1 || len < MTCSEC_FRAME_HDR_LEN + 10 ||
      frame[2] != MTCSEC_MSG_M2) {
    return w->idx;
  }
  /* splitmix64 of MTCdID (body offset 2..9). */
  x = mtcsec_get_u64(frame + MTCSEC_FRAME_HDR_LEN + 2);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return (unsigned)(x % w->d->nworkers);
}

static void conn_dispatch(mtcsd_worker *w, mtcsd_conn *c, const uint8_t *frame,
                          size_t len) {
  unsigned owner = frame_owner(w, frame, len);
  c->frames++;
  c->inflight++;
  if (owner == w->idx) {
    mtcsd_core_frame(w, c->id, c->ueid, frame, len, NULL);
  } else {
    mtcsd_msg *m = mtcsd_msg_new(MSG_FRAME, frame, len);
    if (m == NULL) {
      c->inflight--;
      conn_close(w, c, "out_of_memory", NULL, MTCSEC_LOG_ERROR);
      return;
    }
    m->conn = c->id;
    memcpy(m->ueid, c->ueid, MTCSEC_ID_LEN);
    c->routed |= (uint64_t)1 << owner;
    mtcsd_worker_post(&w->d->workers[owner], m);
  }
  if (c->inflight >= CONN_MAX_INFLIGHT || c->outlen >= CONN_OUT_HIGH) {
    c->paused = 1;
  }
}

/* Hands every complete frame of the input buffer on. */
static void conn_frames(mtcsd_worker *w, mtcsd_conn *c) {
  size_t off = 0;
  while (off < c->inlen && c->state == CONN_OPEN) {
    mtcsec_frame fr;
    mtcsec_ssize n = mtcsec_frame_parse(&fr, c->in + off, c->inlen - off);
    if (n == 0) {
      break;
    }
    if (n < 0) {
      conn_close(w, c, "malformed_frame", "frame length below 5",
                 MTCSEC_LOG_WARN);
      return;
    }
    conn_dispatch(w, c, c->in + off, (size_t)n);
    off += (size_t)n;
  }
  if (c->state != CONN_OPEN) {
    return;
  }
  if (off > 0) {
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
  }
}

/* Makes room for the rest of the frame at the head of the buffer. */
static int conn_grow_in(mtcsd_conn *c) {
  size_t need = c->inlen + 1, ncap;
  uint8_t *nb;
  if (c->inlen >= 2) {
    need = 2 + (((size_t)c->in[0] << 8) | c->in[1]);
  }
  if (need <= c->inlen) {
    return 0; /* cannot happen: complete frames were consumed */
  }
  ncap = c->incap ? c->incap * 2 : CONN_IN_INIT;
  if (ncap < need) {
    ncap = need;
  }
  if (ncap > MTCSEC_FRAME_MAX_LEN) {
    ncap = MTCSEC_FRAME_MAX_LEN;
  }
  if (ncap <= c->incap) {
    return 0;
  }
  /* Not realloc: the old buffer is zeroized before it goes. */
  nb = malloc(ncap);
  if (nb == NULL) {
    return -1;
  }
  if (c->in != NULL) {
    memcpy(nb, c->in, c->inlen);
    mtcsec_zeroize(c->in, c->incap);
    free(c->in);
  }
  c->in = nb;
  c->incap = ncap;
  return 0;
}

static void conn_update_read_deadline(mtcsd_worker *w, mtcsd_conn *c) {
  int partial;
  if (c->state != CONN_OPEN) {
    return;
  }
  /* A started frame, or a TLS record not yet complete.  Not while paused:
   * then the peer is waiting for us. */
  partial = !c->paused && (c->inlen > 0 || SSL_has_pending(c->ssl));
  if (!partial) {
    c->read_deadline = 0;
  } else if (c->read_deadline == 0) {
    c->read_deadline = app_now_ms() + atomic_load(&w->d->idle_timeout_ms);
  }
}

static void conn_read(mtcsd_worker *w, mtcsd_conn *c) {
  while (c->state == CONN_OPEN && !c->paused && !c->read_eof &&
         !(w->draining && c->drain_done)) {
    int r, err;
    if (c->inlen == c->incap &&
        (conn_grow_in(c) != 0 || c->inlen == c->incap)) {
      conn_close(w, c, "out_of_memory", NULL, MTCSEC_LOG_ERROR);
      return;
    }
    ERR_clear_error();
    errno = 0;
    r = SSL_read(c->ssl, c->in + c->inlen, (int)(c->incap - c->inlen));
    if (r > 0) {
      c->inlen += (size_t)r;
      conn_frames(w, c);
      continue;
    }
    err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ) {
      if (w->draining) {
        c->drain_done = 1;
      }
      break;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
      c->want_write = 1;
      break;
    }
    if (err == SSL_ERROR_ZERO_RETURN ||
        (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0) ||
        (err == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) ==
                                   SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
      /* The peer finished sending; its answers still go out. */
      ERR_clear_error();
      c->read_eof = 1;
      if (c->inlen > 0) {
        c->inlen = 0; /* a truncated frame is never answered */
      }
      break;
    }
    {
      char why[160];
      c->fatal = 1;
      if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        snprintf(why, sizeof(why), "%s", strerror(errno));
      } else {
        ssl_reason(why, sizeof(why));
      }
      conn_close(w, c, "tls_error", why, MTCSEC_LOG_WARN);
      return;
    }
  }
  conn_update_read_deadline(w, c);
}

/* ------------------------------------------------------- handshake */

/* Why a verified certificate names no UE (PROTOCOL.md section 1). */
static void identity_reason(SSL *ssl, char *out, size_t outlen) {
  X509 *cert = SSL_get0_peer_certificate(ssl);
  X509_NAME *name = cert != NULL ? X509_get_subject_name(cert) : NULL;
  int idx, n;
  unsigned char *utf8 = NULL;
  char safe[80];

  if (name == NULL) {
    snprintf(out, outlen, "no client certificate");
    return;
  }
  idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) {
    snprintf(out, outlen, "certificate subject has no commonName");
    return;
  }
  if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0) {
    snprintf(out, outlen, "certificate subject has more than one commonName");
    return;
  }
  n = ASN1_STRING_to_UTF8(
    &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
  if (n < 0) {
    snprintf(out, outlen, "certificate commonName cannot be decoded");
    return;
  }
  {
    char text[64];
    size_t m = (size_t)n < sizeof(text) - 1 ? (size_t)n : sizeof(text) - 1;
    memcpy(text, utf8, m);
    text[m] = '\0';
    snprintf(out, outlen,
             "certificate commonName '%s' is not 16 hexadecimal digits",
             log_safe(safe, sizeof(safe), text));
  }
  OPENSSL_free(utf8);
}

static void conn_established(mtcsd_worker *w, mtcsd_conn *c) {
  char why[200];
  c->established = 1;
  c->hs_deadline = 0;
  if (app_tls_peer_ueid(c->ssl, c->ueid) != 0) {
    identity_reason(c->ssl, why, sizeof(why));
    mtcsd_metrics_refused(1);
    conn_close(w, c, "bad_identity", why, MTCSEC_LOG_WARN);
    return;
  }
  app_format_id(c->ue, c->ueid);
  c->state = CONN_OPEN;
  app_log(MTCSEC_LOG_INFO, "event=conn_ready conn=%llu peer=%s ue=%s",
          (unsigned long long)c->id, c->peer, c->ue);
  conn_read(w, c); /* draining: reads what is there, then finishes */
  if (c->state == CONN_OPEN) {
    conn_mark_dirty(w, c);
  }
}

static void conn_handshake(mtcsd_worker *w, mtcsd_conn *c) {
  int r, err;
  ERR_clear_error();
  errno = 0;
  r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->want_write = 0;
    conn_established(w, c);
    return;
  }
  err = SSL_get_error(c->ssl, r);
  if (err == SSL_ERROR_WANT_READ) {
    c->want_write = 0;
    return;
  }
  if (err == SSL_ERROR_WANT_WRITE) {
    c->want_write = 1;
    return;
  }
  {
    char why[200];
    long vr = SSL_get_verify_result(c->ssl);
    if (vr != X509_V_OK) {
      snprintf(why, sizeof(why), "certificate refused: %s",
               X509_verify_cert_error_string(vr));
      ERR_clear_error();
    } else if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      snprintf(why, sizeof(why), "%s",
               errno != 0 ? strerror(errno) : "peer closed the connection");
    } else {
      ssl_reason(why, sizeof(why));
    }
    c->fatal = 1;
    mtcsd_metrics_tls_failure();
    conn_close(w, c, "tls_handshake_failed", why, MTCSEC_LOG_WARN);
  }
}

/* ------------------------------------------------------ connections */

static void conn_new(mtcsd_worker *w, mtcsd_msg *m) {
  mtcsd_conn *c;
  struct epoll_event e;
  uint32_t slot;
  mtcsec_tstamp now = app_now_ms();

  c = calloc(1, sizeof(*c));
  if (c == NULL || slot_alloc(w, &slot) != 0) {
    free(c);
    app_log(MTCSEC_LOG_ERROR, "event=conn_close reason=out_of_memory");
    SSL_free(m->ssl);
    close(m->fd);
    mtcsd_metrics_conn_delta(-1);
    return;
  }
  w->slot_gen[slot]++;
  if (w->slot_gen[slot] == 0) {
    w->slot_gen[slot] = 1;
  }
  c->id = ((uint64_t)w->slot_gen[slot] << 32) | ((uint64_t)slot << 8) | w->idx;
  c->fd = m->fd;
  c->ssl = m->ssl;
  c->state = CONN_HANDSHAKE;
  c->opened = now;
  c->hs_deadline = now + atomic_load(&w->d->idle_timeout_ms);
  snprintf(c->peer, sizeof(c->peer), "%.*s", (int)m->len,
           (const char *)m->data);
  w->conns[slot] = c;
  w->nconns++;
  memset(&e, 0, sizeof(e));
  e.events = EPOLLIN;
  e.data.u64 = c->id;
  if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &e) != 0) {
    c->fatal = 1;
    conn_close(w, c, "epoll_error", strerror(errno), MTCSEC_LOG_ERROR);
    return;
  }
  c->events = EPOLLIN;
  app_log(MTCSEC_LOG_DEBUG, "event=conn_open conn=%llu peer=%s",
          (unsigned long long)c->id, c->peer);
  if (w->draining) {
    c->fatal = 1;
    conn_close(w, c, "shutdown", NULL, MTCSEC_LOG_INFO);
    return;
  }
  conn_handshake(w, c);
  conn_set_events(w, c);
}

static void conn_event(mtcsd_worker *w, mtcsd_conn *c, uint32_t events) {
  if (c->state == CONN_HANDSHAKE) {
    conn_handshake(w, c);
  } else if (c->state == CONN_OPEN) {
    if (c->want_write || (events & EPOLLOUT)) {
      conn_flush(w, c);
    }
    /* EPOLLOUT too: an SSL_read that wanted to write (a TLS key update)
     * is retried once the socket is writable. */
    if (c->state == CONN_OPEN && (events & (EPOLLIN | EPOLLOUT))) {
      conn_read(w, c);
    }
    if (c->state == CONN_OPEN && (events & (EPOLLHUP | EPOLLERR))) {
      /* Reset or closed both ways: answers cannot be delivered. */
      c->fatal = 1;
      conn_close(w, c, "connection_reset", NULL, MTCSEC_LOG_INFO);
    }
    if (c->state == CONN_OPEN) {
      conn_mark_dirty(w, c);
    }
  }
  if (c->state != CONN_CLOSED) {
    conn_set_events(w, c);
  }
}

/* Flushes connections with new output, resumes paused readers. */
static void flush_dirty(mtcsd_worker *w) {
  while (w->dirty != NULL) {
    mtcsd_conn *c = w->dirty;
    w->dirty = c->dirty_next;
    c->in_dirty = 0;
    if (c->state != CONN_OPEN) {
      continue;
    }
    conn_flush(w, c);
    if (c->state != CONN_OPEN) {
      continue;
    }
    if (c->paused && c->inflight <= CONN_MAX_INFLIGHT / 2 &&
        c->outlen < CONN_OUT_HIGH / 2) {
      c->paused = 0;
      conn_read(w, c);
      if (c->state != CONN_OPEN) {
        continue;
      }
    }
    conn_maybe_finish(w, c);
    if (c->state == CONN_OPEN) {
      conn_set_events(w, c);
    }
  }
}

static void scan_timeouts(mtcsd_worker *w, mtcsec_tstamp now) {
  size_t i;
  for (i = 0; i < w->nslots; i++) {
    mtcsd_conn *c = w->conns[i];
    if (c == NULL) {
      continue;
    }
    if (c->hs_deadline != 0 && now >= c->hs_deadline) {
      c->fatal = 1;
      mtcsd_metrics_tls_failure();
      conn_close(w, c, "handshake_timeout", NULL, MTCSEC_LOG_INFO);
    } else if (c->read_deadline != 0 && now >= c->read_deadline) {
      c->fatal = 1;
      conn_close(w, c, "idle_timeout", "incomplete frame or TLS record",
                 MTCSEC_LOG_INFO);
    } else if (c->write_deadline != 0 && now >= c->write_deadline) {
      c->fatal = 1;
      conn_close(w, c, "write_timeout", "peer does not read its answers",
                 MTCSEC_LOG_INFO);
    }
  }
}

static void close_all(mtcsd_worker *w, const char *reason) {
  size_t i;
  for (i = 0; i < w->nslots; i++) {
    if (w->conns[i] != NULL) {
      conn_close(w, w->conns[i], reason, NULL, MTCSEC_LOG_INFO);
    }
  }
}

static void start_drain(mtcsd_worker *w) {
  size_t i;
  w->draining = 1;
  for (i = 0; i < w->nslots; i++) {
    mtcsd_conn *c = w->conns[i];
    if (c == NULL) {
      continue;
    }
    if (c->state == CONN_HANDSHAKE) {
      /* Its Finished may be waiting: a completed handshake then reads
       * (conn_established); one still incomplete is closed. */
      conn_handshake(w, c);
      if (c->state == CONN_HANDSHAKE) {
        c->fatal = 1;
        conn_close(w, c, "shutdown", NULL, MTCSEC_LOG_INFO);
      }
      continue;
    }
    /* Read what the peer already sent, then stop reading. */
    conn_read(w, c);
    if (c->state == CONN_OPEN) {
      conn_mark_dirty(w, c);
    }
  }
}

/* ----------------------------------------------------------- inbox */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/*
 * Connections of other workers closed, announced in the batch of messages
 * m: the core and the backlog drop what they hold of them now, and their
 * frames still in m (posted before the close) are dropped when met.
 * Returns the sorted ids (*n of them; NULL when none, or no memory: then
 * those frames are handled, and their answers dropped).
 */
static uint64_t *inbox_closed(mtcsd_worker *w, const mtcsd_msg *m, size_t *n) {
  const mtcsd_msg *p;
  uint64_t *ids;
  size_t k = 0;

  *n = 0;
  for (p = m; p != NULL; p = p->next) {
    k += p->type == MSG_CLOSED;
  }
  if (k == 0) {
    return NULL;
  }
  ids = malloc(k * sizeof(*ids));
  k = 0;
  for (p = m; p != NULL; p = p->next) {
    if (p->type == MSG_CLOSED) {
      mtcsd_core_conn_closed(w, p->conn);
      if (ids != NULL) {
        ids[k++] = p->conn;
      }
    }
  }
  if (ids != NULL) {
    qsort(ids, k, sizeof(*ids), cmp_u64);
    *n = k;
  }
  return ids;
}

/* Closes the connections that lost an answer (mtcsd_worker_lost()). */
static void inbox_lost(mtcsd_worker *w, const uint64_t *lost, size_t n,
                       int overflow) {
  size_t i;
  for (i = 0; i < n; i++) {
    mtcsd_conn *c = conn_lookup(w, lost[i]);
    if (c != NULL) {
      conn_close(w, c, "out_of_memory", "an answer was lost", MTCSEC_LOG_ERROR);
    }
  }
  if (overflow) {
    /* Which ones is unknown: every connection that waits for answers. */
    for (i = 0; i < w->nslots; i++) {
      mtcsd_conn *c = w->conns[i];
      if (c != NULL && c->inflight > 0) {
        conn_close(w, c, "out_of_memory", "answers were lost",
                   MTCSEC_LOG_ERROR);
      }
    }
  }
}

static void inbox(mtcsd_worker *w) {
  mtcsd_msg *m;
  uint64_t v, lost[MTCSD_LOST_MAX], *closed;
  size_t nlost, nclosed;
  int done, lost_overflow;

  while (read(w->evfd, &v, sizeof(v)) < 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&w->mu);
  m = w->in_head;
  w->in_head = w->in_tail = NULL;
  done = w->commit_done;
  w->commit_done = 0;
  nlost = w->nlost;
  memcpy(lost, w->lost, nlost * sizeof(lost[0]));
  w->nlost = 0;
  lost_overflow = w->lost_overflow;
  w->lost_overflow = 0;
  w->signalled = 0;
  pthread_mutex_unlock(&w->mu);

  if (nlost > 0 || lost_overflow) {
    inbox_lost(w, lost, nlost, lost_overflow);
  }
  closed = inbox_closed(w, m, &nclosed);
  if (done) {
    mtcsd_core_batch_done(w);
  }
  while (m != NULL) {
    mtcsd_msg *next = m->next;
    switch (m->type) {
    case MSG_CONN:
      conn_new(w, m);
      free(m);
      break;
    case MSG_FRAME:
      if (w->stopping || (nclosed > 0 && bsearch(&m->conn, closed, nclosed,
                                                 sizeof(*closed), cmp_u64))) {
        mtcsd_msg_free(m); /* nobody waits for its answer */
      } else {
        mtcsd_core_frame(w, m->conn, m->ueid, m->data, m->len, m);
      }
      break;
    case MSG_ANSWER:
      mtcsd_conn_answer(w, m->conn, m->data, m->len);
      mtcsd_msg_free(m);
      break;
    case MSG_RATE:
      mtcsd_core_set_rate(w, (uint32_t)m->conn);
      free(m);
      break;
    case MSG_CLOSED:
      free(m); /* handled by inbox_closed() */
      break;
    case MSG_DRAIN:
      free(m);
      start_drain(w);
      break;
    case MSG_FORCE:
      free(m);
      close_all(w, "shutdown_timeout");
      break;
    case MSG_STOP:
      free(m);
      close_all(w, "shutdown");
      w->stopping = 1;
      /* Frames still waiting for the core: every connection is gone. */
      while (w->backlog_head != NULL) {
        mtcsd_msg *b = w->backlog_head;
        w->backlog_head = b->next;
        mtcsd_msg_free(b);
      }
      w->backlog_tail = NULL;
      w->backlog_len = 0;
      break;
    default:
      mtcsd_msg_free(m);
      break;
    }
    m = next;
  }
  free(closed);
}

/* ------------------------------------------------------------ main */

void *mtcsd_worker_main(void *arg) {
  mtcsd_worker *w = arg;
  struct epoll_event evs[LOOP_MAX_EVENTS];

  w->last_scan = app_now_ms();
  for (;;) {
    int n, i;
    mtcsec_tstamp now;

    n = epoll_wait(w->epfd, evs, LOOP_MAX_EVENTS, LOOP_TICK_MS);
    if (n < 0 && errno != EINTR) {
      app_log(MTCSEC_LOG_ERROR, "event=epoll_failed worker=%u err=\"%s\"",
              w->idx, strerror(errno));
      break;
    }
    /* The inbox first: a message posted before a peer's bytes arrived
     * (a reload, say) takes effect before those bytes are handled. */
    for (i = 0; i < n; i++) {
      if (evs[i].data.u64 == 0) {
        inbox(w);
      }
    }
    for (i = 0; i < n; i++) {
      if (evs[i].data.u64 != 0) {
        mtcsd_conn *c = conn_lookup(w, evs[i].data.u64);
        if (c != NULL) {
          conn_event(w, c, evs[i].events);
        }
      }
    }
    mtcsd_core_pump(w);
    flush_dirty(w);
    now = app_now_ms();
    if (now - w->last_scan >= LOOP_TICK_MS) {
      w->last_scan = now;
      scan_timeouts(w, now);
    }
    conn_reap();
    if (w->draining && w->nconns == 0 && !w->drained_reported) {
      w->drained_reported = 1;
      atomic_fetch_add(&w->d->drained, 1);
      wake(w->d->main_evfd);
    }
    if (w->stopping && w->nconns == 0 && mtcsd_core_idle(w)) {
      break;
    }
  }
  close_all(w, "shutdown");
  conn_reap();
  return NULL;
}

/* -------------------------------------------------------- lifecycle */

int mtcsd_worker_init(mtcsd_worker *w, mtcsd_daemon *d, unsigned idx,
                      const uint8_t kek[MTCSEC_KEK_LEN], char *err,
                      size_t errlen) {
  struct epoll_event e;
  int rv;

  memset(w, 0, sizeof(*w));
  w->idx = idx;
  w->d = d;
  w->epfd = w->evfd = -1;
  pthread_mutex_init(&w->mu, NULL);
  rv = mtcsec_crypto_openssl_new(&w->crypto);
  if (rv != 0) {
    snprintf(err, errlen, "cannot create the crypto provider: %s",
             mtcsec_strerror(rv));
    return -1;
  }
  rv = mtcsec_sqlite_open(&w->db, d->cfg.database, kek, &w->crypto, 0, err,
                          errlen);
  if (rv != 0) {
    return -1;
  }
  mtcsec_srv_config_default(&w->srv_cfg);
  memcpy(w->srv_cfg.mtcs_id, d->cfg.mtcs_id, MTCSEC_ID_LEN);
  /* The duplicate cache is split among the workers (each owns a share of
   * the devices). */
  w->srv_cfg.dup_cache_size =
    (d->cfg.dup_cache_size + d->nworkers - 1) / d->nworkers;
  w->srv_cfg.rate_per_minute = d->cfg.rate_per_minute;
#ifdef MTCSD_FAULT_INJECTION
  w->srv_cfg.max_inflight =
    fi_size("MTCSD_FI_MAX_INFLIGHT", w->srv_cfg.max_inflight);
  w->srv_cfg.max_queued = fi_size("MTCSD_FI_MAX_QUEUED", w->srv_cfg.max_queued);
#endif
  if (mtcsd_core_create(w) != 0) {
    snprintf(err, errlen, "cannot create the server core (out of memory)");
    return -1;
  }
  w->epfd = epoll_create1(EPOLL_CLOEXEC);
  w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->epfd < 0 || w->evfd < 0) {
    snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
    return -1;
  }
  memset(&e, 0, sizeof(e));
  e.events = EPOLLIN;
  e.data.u64 = 0;
  if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &e) != 0) {
    snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
    return -1;
  }
  return 0;
}

void mtcsd_worker_free(mtcsd_worker *w) {
  mtcsd_msg *m;
  size_t i;
  for (i = 0; i < w->nslots; i++) {
    mtcsd_conn *c = w->conns[i];
    if (c != NULL) {
      SSL_free(c->ssl);
      close(c->fd);
      conn_free_buffers(c);
      free(c);
    }
  }
  free(w->conns);
  free(w->free_slots);
  free(w->slot_gen);
  for (m = w->in_head; m != NULL;) {
    mtcsd_msg *next = m->next;
    if (m->type == MSG_CONN) {
      SSL_free(m->ssl);
      close(m->fd);
    }
    mtcsd_msg_free(m);
    m = next;
  }
  for (m = w->backlog_head; m != NULL;) {
    mtcsd_msg *next = m->next;
    mtcsd_msg_free(m);
    m = next;
  }
  mtcsec_srv_del(w->srv);
  mtcsec_sqlite_close(w->db);
  mtcsec_crypto_openssl_del(&w->crypto);
  if (w->epfd >= 0) {
    close(w->epfd);
  }
  if (w->evfd >= 0) {
    close(w->evfd);
  }
  pthread_mutex_destroy(&w->mu);
}
