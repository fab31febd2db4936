/*
 * MTCs role: the server core (PROTOCOL.md sections 4, 5 and 7).
 *
 * Sans-IO.  The caller (the daemon, or a test) hands it complete server-link
 * frames with the UE identity that TLS authenticated and an opaque 64-bit
 * connection handle, and drains answer frames with mtcsec_srv_write().
 *
 * Durability (section 4: the window is durable before M3 leaves) is a
 * separate step so that the caller can batch it (group commit): an M2 that
 * passes every check becomes a transaction; answers wait in the core until
 * the caller commits the batch, with mtcsec_srv_commit() (synchronous, via
 * the store's commit) or with mtcsec_srv_take_batch() / mtcsec_srv_batch_done()
 * (commit elsewhere, e.g. on a store thread).
 *
 * All exchanges of one device must go through one mtcsec_srv (the core
 * caches each device's window and key-id counter; a daemon with several
 * workers routes by MTCdID).  Allocation happens at mtcsec_srv_new() and when
 * the device cache grows, through cfg->mem.
 *
 * None of these functions may be called from inside a callback.
 */
#ifndef MTCSEC_SERVER_H
#define MTCSEC_SERVER_H

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mtcsec_srv mtcsec_srv;

typedef struct mtcsec_srv_config {
  uint8_t mtcs_id[MTCSEC_ID_LEN];
  /** Exchanges waiting for commit at once (default 4096). */
  size_t max_inflight;
  /** Answers waiting in the output queue (default 8192). */
  size_t max_queued;
  /** Entries of the duplicate cache (default 4096; 0 disables it). */
  size_t dup_cache_size;
  /** How long an answered M2 is answered again identically, ms (60000). */
  mtcsec_tstamp dup_ttl;
  /** Keys issued per device per minute before RATE_LIMITED (0: no limit). */
  uint32_t rate_per_minute;
  const mtcsec_mem *mem;
  mtcsec_log_fn log;
} mtcsec_srv_config;

void mtcsec_srv_config_default(mtcsec_srv_config *cfg);

/** Outcome of one exchange, for logs and metrics. */
typedef struct mtcsec_srv_result {
  uint64_t conn;
  uint32_t req_id;
  const uint8_t *ueid;    /* 8 bytes */
  const uint8_t *mtcd_id; /* 8 bytes, NULL if the M1 did not decode */
  uint8_t errcode;        /* 0: M3 sent; else mtcsec_errcode */
  uint8_t duplicate;      /* 1: M3 answered again from the duplicate cache */
  const mtcsec_session_rec *session; /* errcode 0 and !duplicate */
  mtcsec_tstamp started, finished;   /* recv and answer times */
} mtcsec_srv_result;

typedef struct mtcsec_srv_callbacks {
  void (*on_result)(void *user_data, const mtcsec_srv_result *r);
} mtcsec_srv_callbacks;

/**
 * Creates a server core.  cfg is read during the call; crypto, store,
 * store_ctx, cb and user_data must outlive it.  Returns 0, INVALID_ARGUMENT
 * or NOMEM.
 */
int mtcsec_srv_new(mtcsec_srv **psrv, const mtcsec_srv_config *cfg,
                   const mtcsec_crypto *crypto, const mtcsec_store_ops *store,
                   void *store_ctx, const mtcsec_srv_callbacks *cb,
                   void *user_data);

/** Zeroizes (duplicate cache, pending M3s) and frees srv; NULL allowed. */
void mtcsec_srv_del(mtcsec_srv *srv);

/**
 * Handles one complete frame (length prefix included) from connection conn,
 * whose TLS peer is UE ueid.  Runs the ordered checks of section 5 and
 * either queues an answer (ERR, or M3 again from the duplicate cache) or
 * makes a transaction that waits for commit.
 * Returns 0; MALFORMED when the frame's len < 5 (the caller ends the
 * connection); BUSY when the in-flight or output limits are reached (the
 * frame was not handled: the caller stops reading until it has committed and
 * written, then hands it again); NOMEM; INVALID_ARGUMENT when frame is not
 * exactly one frame.
 */
int mtcsec_srv_recv(mtcsec_srv *srv, uint64_t conn,
                    const uint8_t ueid[MTCSEC_ID_LEN], const uint8_t *frame,
                    size_t framelen, mtcsec_tstamp now);

/** Transactions waiting for commit. */
size_t mtcsec_srv_pending(const mtcsec_srv *srv);

/**
 * Commits every waiting transaction in one call to the store's commit and
 * queues the answers: M3 for each committed one, REPLAY for one the durable
 * check refused, INTERNAL for all if the store failed (their windows are
 * reloaded from the store).  Returns 0, MTCSEC_ERR_STORE, or
 * MTCSEC_ERR_INVALID_STATE while a batch of mtcsec_srv_take_batch() is out.
 */
int mtcsec_srv_commit(mtcsec_srv *srv, mtcsec_tstamp now);

/** A batch handed to another thread for commit. */
typedef struct mtcsec_srv_batch {
  mtcsec_store_txn **txns; /* owned by srv, valid until batch_done */
  int *results;
  size_t n;
} mtcsec_srv_batch;

/**
 * Moves every waiting transaction into b; commit them with the store's
 * commit (from any thread), then call mtcsec_srv_batch_done() with its
 * return value.  At most one batch is out at a time: returns 0, or
 * INVALID_STATE if a batch is already out.
 */
int mtcsec_srv_take_batch(mtcsec_srv *srv, mtcsec_srv_batch *b);

/** Queues the answers of batch b; rv is the store's commit return. */
int mtcsec_srv_batch_done(mtcsec_srv *srv, mtcsec_srv_batch *b, int rv,
                          mtcsec_tstamp now);

/**
 * Writes the next queued answer frame to dest and its connection to *conn.
 * Returns its length, 0 when nothing is queued, or NOBUF.
 */
mtcsec_ssize mtcsec_srv_write(mtcsec_srv *srv, uint8_t *dest, size_t destlen,
                              uint64_t *conn);

/**
 * Changes the rate limit (keys per device per minute, 0: none) without
 * touching anything else (windows, duplicate cache, transactions): a daemon
 * calls it on a configuration reload.  Every device's bucket starts full.
 */
void mtcsec_srv_set_rate(mtcsec_srv *srv, uint32_t rate_per_minute);

/** Drops queued answers for a closed connection. */
void mtcsec_srv_conn_closed(mtcsec_srv *srv, uint64_t conn);

/**
 * Most verbose level (MTCSEC_LOG_ERROR .. MTCSEC_LOG_DEBUG) of the lines the
 * core formats for cfg->log; MTCSEC_LOG_DEBUG (all) after mtcsec_srv_new().
 * A daemon that drops the core's info lines sets a lower level, so that
 * they are not formatted at all (one per exchange).  May be called at any
 * time, not from a callback.
 */
void mtcsec_srv_set_log_level(mtcsec_srv *srv, int level);

/**
 * Builds the revocation (section 7) of session (mtcd_id, key_id,
 * mtcd_nonce), looking up the device's K_auth and suite in the store.
 * Returns its length, NOT_FOUND, NOBUF, STORE or the provider's error.
 */
mtcsec_ssize mtcsec_srv_revocation(mtcsec_srv *srv, uint8_t *dest,
                                   size_t destlen,
                                   const uint8_t mtcd_id[MTCSEC_ID_LEN],
                                   uint16_t key_id,
                                   const uint8_t mtcd_nonce[MTCSEC_NONCE_LEN]);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_SERVER_H */
