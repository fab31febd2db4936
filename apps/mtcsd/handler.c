/*
 * A worker's server core (include/mtcsec/server.h): frames in, answers out,
 * batches to the committer, one log line and the metrics of each result.
 *
 * Frames the core cannot take now (BUSY: its in-flight or output limits)
 * wait in the worker's backlog, in order, and are handed again after the
 * next commit.  A frame is unlinked from the backlog while the core handles
 * it: answering it may close its connection (out of memory), which drops
 * that connection's other backlogged frames.
 *
 * The core lives as long as the worker.  A change of rate_per_minute
 * (SIGHUP) goes to it with mtcsec_srv_set_rate(): the duplicate cache
 * (PROTOCOL.md section 4: a retry within 60 s gets the same M3), the
 * windows and the exchanges in flight stay.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include <mtcsec/codec.h>

#include "mtcsd.h"

/* Largest answer the core writes (an M3 frame is about 110 bytes). */
#define ANSWER_MAX 1024

static void core_on_result(void *user_data, const mtcsec_srv_result *r) {
  char ue[17], dev[17], perms[48];
  uint64_t ms = r->finished >= r->started ? r->finished - r->started : 0;
  (void)user_data;

  mtcsd_metrics_result(r->errcode, r->duplicate, ms);
  if (app_log_level() < MTCSEC_LOG_INFO) {
    return; /* nothing to format */
  }
  app_format_id(ue, r->ueid);
  if (r->mtcd_id != NULL) {
    app_format_id(dev, r->mtcd_id);
  } else {
    strcpy(dev, "-");
  }
  if (r->errcode == 0 && r->session != NULL) {
    app_log(MTCSEC_LOG_INFO,
            "event=exchange conn=%llu ue=%s dev=%s req=%u result=OK dup=0 "
            "key_id=%u perms=%s lifetime=%u ms=%llu",
            (unsigned long long)r->conn, ue, dev, r->req_id, r->session->key_id,
            app_format_perms(perms, r->session->perms), r->session->lifetime,
            (unsigned long long)ms);
  } else {
    app_log(MTCSEC_LOG_INFO,
            "event=exchange conn=%llu ue=%s dev=%s req=%u result=%s dup=%u "
            "ms=%llu",
            (unsigned long long)r->conn, ue, dev, r->req_id,
            r->errcode == 0 ? "OK" : mtcsec_errcode_name(r->errcode),
            (unsigned)r->duplicate, (unsigned long long)ms);
  }
}

/* The core's own lines repeat the result lines above: debug only. */
static void core_log(void *user_data, int level, const char *msg) {
  app_log_hook(user_data, level >= MTCSEC_LOG_INFO ? MTCSEC_LOG_DEBUG : level,
               msg);
}

/* The levels core_log passes on at the current log level (which SIGHUP may
 * change): the core formats nothing else. */
static void core_sync_log_level(mtcsd_worker *w) {
  int app = app_log_level();
  mtcsec_srv_set_log_level(w->srv, app >= MTCSEC_LOG_DEBUG ? MTCSEC_LOG_DEBUG
                                   : app < MTCSEC_LOG_WARN ? app
                                                           : MTCSEC_LOG_WARN);
}

static const mtcsec_srv_callbacks core_callbacks = {core_on_result};

int mtcsd_core_create(mtcsd_worker *w) {
  int rv;
  w->srv_cfg.log = core_log;
  rv = mtcsec_srv_new(&w->srv, &w->srv_cfg, &w->crypto, &mtcsec_sqlite_ops,
                      w->db, &core_callbacks, w);
  if (rv == 0) {
    core_sync_log_level(w);
  }
  return rv;
}

void mtcsd_core_set_rate(mtcsd_worker *w, uint32_t rate_per_minute) {
  w->srv_cfg.rate_per_minute = rate_per_minute;
  mtcsec_srv_set_rate(w->srv, rate_per_minute);
  app_log(MTCSEC_LOG_DEBUG, "event=core_rate worker=%u rate=%u", w->idx,
          (unsigned)rate_per_minute);
}

int mtcsd_core_idle(const mtcsd_worker *w) {
  return !w->batch_out && mtcsec_srv_pending(w->srv) == 0;
}

/* Routes an answer frame to its connection's worker. */
static void core_route_answer(mtcsd_worker *w, uint64_t conn,
                              const uint8_t *frame, size_t len) {
  unsigned owner = mtcsd_conn_worker(conn);
  mtcsd_msg *m;
  if (owner == w->idx) {
    mtcsd_conn_answer(w, conn, frame, len);
    return;
  }
  if (owner >= w->d->nworkers) {
    return;
  }
  m = MTCSD_FI_NOMEM("MTCSD_FI_ROUTE_NOMEM", frame, len)
        ? NULL
        : mtcsd_msg_new(MSG_ANSWER, frame, len);
  if (m == NULL) {
    /* The connection would wait for this answer forever: its worker
     * closes it. */
    app_log(MTCSEC_LOG_ERROR,
            "event=answer_dropped conn=%llu err=nomem action=close",
            (unsigned long long)conn);
    mtcsd_worker_lost(&w->d->workers[owner], conn);
    return;
  }
  m->conn = conn;
  mtcsd_worker_post(&w->d->workers[owner], m);
}

static void core_drain_answers(mtcsd_worker *w) {
  uint8_t buf[ANSWER_MAX];
  for (;;) {
    uint64_t conn = 0;
    mtcsec_ssize n = mtcsec_srv_write(w->srv, buf, sizeof(buf), &conn);
    if (n <= 0) {
      if (n < 0) {
        app_log(MTCSEC_LOG_ERROR, "event=core_write_failed err=%s",
                mtcsec_errname((int)n));
      }
      break;
    }
    core_route_answer(w, conn, buf, (size_t)n);
  }
  mtcsec_zeroize(buf, sizeof(buf));
}

/* Unlinks the first frame of the backlog (NULL if empty). */
static mtcsd_msg *backlog_pop(mtcsd_worker *w) {
  mtcsd_msg *m = w->backlog_head;
  if (m != NULL) {
    w->backlog_head = m->next;
    if (w->backlog_head == NULL) {
      w->backlog_tail = NULL;
    }
    w->backlog_len--;
    m->next = NULL;
  }
  return m;
}

/* Puts m back in front of the backlog. */
static void backlog_unpop(mtcsd_worker *w, mtcsd_msg *m) {
  m->next = w->backlog_head;
  w->backlog_head = m;
  if (w->backlog_tail == NULL) {
    w->backlog_tail = m;
  }
  w->backlog_len++;
}

static void backlog_push(mtcsd_worker *w, mtcsd_msg *m) {
  m->next = NULL;
  if (w->backlog_tail != NULL) {
    w->backlog_tail->next = m;
  } else {
    w->backlog_head = m;
  }
  w->backlog_tail = m;
  w->backlog_len++;
}

/*
 * Hands one frame to the core.  Returns 0 when handled, or BUSY (the caller
 * keeps it).  Any other failure is answered INTERNAL here, so that every
 * frame gets exactly one answer.
 */
static int core_recv(mtcsd_worker *w, uint64_t conn, const uint8_t *ueid,
                     const uint8_t *frame, size_t len) {
  int rv = mtcsec_srv_recv(w->srv, conn, ueid, frame, len, app_now_ms());
  if (rv == MTCSEC_ERR_BUSY) {
    return rv;
  }
  if (rv != 0) {
    uint8_t out[64];
    uint32_t req_id = ((uint32_t)frame[3] << 24) | ((uint32_t)frame[4] << 16) |
                      ((uint32_t)frame[5] << 8) | frame[6];
    mtcsec_ssize n = mtcsec_err_frame_encode(out, sizeof(out), req_id,
                                             MTCSEC_ERRCODE_INTERNAL, NULL);
    app_log(MTCSEC_LOG_ERROR,
            "event=exchange conn=%llu req=%u result=INTERNAL err=%s",
            (unsigned long long)conn, req_id, mtcsec_errname(rv));
    mtcsd_metrics_result(MTCSEC_ERRCODE_INTERNAL, 0, 0);
    if (n > 0) {
      core_route_answer(w, conn, out, (size_t)n);
    }
  }
  core_drain_answers(w);
  return 0;
}

void mtcsd_core_frame(mtcsd_worker *w, uint64_t conn,
                      const uint8_t ueid[MTCSEC_ID_LEN], const uint8_t *frame,
                      size_t len, mtcsd_msg *owned) {
  if (w->backlog_head == NULL && core_recv(w, conn, ueid, frame, len) == 0) {
    if (owned != NULL) {
      mtcsd_msg_free(owned);
    }
    return;
  }
  if (owned == NULL) {
    owned = mtcsd_msg_new(MSG_FRAME, frame, len);
    if (owned == NULL) {
      /* Cannot even queue it: answer INTERNAL now. */
      uint8_t out[64];
      uint32_t req_id = ((uint32_t)frame[3] << 24) |
                        ((uint32_t)frame[4] << 16) | ((uint32_t)frame[5] << 8) |
                        frame[6];
      mtcsec_ssize n = mtcsec_err_frame_encode(out, sizeof(out), req_id,
                                               MTCSEC_ERRCODE_INTERNAL, NULL);
      if (n > 0) {
        core_route_answer(w, conn, out, (size_t)n);
      }
      return;
    }
    owned->conn = conn;
    memcpy(owned->ueid, ueid, MTCSEC_ID_LEN);
  }
  backlog_push(w, owned);
}

void mtcsd_core_pump(mtcsd_worker *w) {
  mtcsd_msg *m;
  core_sync_log_level(w);
  core_drain_answers(w);
  /* m is out of the backlog while the core handles it: its answer may close
   * its connection, and mtcsd_core_conn_closed() then frees that
   * connection's frames still in the backlog. */
  while ((m = backlog_pop(w)) != NULL) {
    if (core_recv(w, m->conn, m->ueid, m->data, m->len) != 0) {
      /* BUSY (nothing was answered, nothing closed): after the next
       * commit. */
      backlog_unpop(w, m);
      break;
    }
    mtcsd_msg_free(m);
  }
  if (!w->batch_out && mtcsec_srv_pending(w->srv) > 0) {
    if (mtcsec_srv_take_batch(w->srv, &w->batch) == 0 && w->batch.n > 0) {
      w->batch_out = 1;
      mtcsd_committer_post(&w->d->committer, w);
    }
  }
}

void mtcsd_core_batch_done(mtcsd_worker *w) {
  if (!w->batch_out) {
    return;
  }
  /* The committer wrote each transaction's result (STORE for those whose
   * store call failed), so the call itself reports success. */
  mtcsec_srv_batch_done(w->srv, &w->batch, 0, app_now_ms());
  w->batch_out = 0;
  mtcsd_core_pump(w);
}

void mtcsd_core_conn_closed(mtcsd_worker *w, uint64_t conn) {
  mtcsd_msg **pp = &w->backlog_head, *prev = NULL;
  mtcsec_srv_conn_closed(w->srv, conn);
  /* Frames of that connection not yet handed to the core: nobody waits. */
  while (*pp != NULL) {
    mtcsd_msg *m = *pp;
    if (m->conn == conn) {
      *pp = m->next;
      w->backlog_len--;
      mtcsd_msg_free(m);
      continue;
    }
    prev = m;
    pp = &m->next;
  }
  w->backlog_tail = prev;
}
