/*
 * Store interface of the MTC server: an ops table, so that the server core
 * never includes a database header.  The in-memory store below serves tests
 * and benchmarks; the SQLite store (server daemon) and the PostgreSQL store
 * implement the same table.
 *
 * The server never stores PSKey nor DMKey: a device record holds K_auth and
 * K_dm (section 2), which a persistent store keeps wrapped at rest.
 */
#ifndef MTCSEC_STORE_H
#define MTCSEC_STORE_H

#include <mtcsec/mtcsec.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Most relays a PATH can name (255 / 8). */
#define MTCSEC_MAX_PATH 31

typedef struct mtcsec_store_device {
  uint8_t suite;
  uint8_t disabled;
  uint8_t k_auth[MTCSEC_MAX_KEY_LEN]; /* suite key length used */
  uint8_t k_dm[MTCSEC_MAX_KEY_LEN];
} mtcsec_store_device;

/** Durable per-device protocol state. */
typedef struct mtcsec_store_devstate {
  mtcsec_window window; /* MTCdNonce window (section 4) */
  uint16_t next_key_id; /* KEY_ID of the next session */
} mtcsec_store_devstate;

typedef struct mtcsec_store_grant {
  uint8_t perms;     /* PERMS bitmap granted to this UE on this device */
  uint32_t lifetime; /* DMKey lifetime to issue, seconds */
} mtcsec_store_grant;

/** A session as the server records it (never DMKey). */
typedef struct mtcsec_session_rec {
  uint8_t mtcd_id[MTCSEC_ID_LEN];
  uint8_t ueid[MTCSEC_ID_LEN];
  uint8_t mtcd_nonce[MTCSEC_NONCE_LEN];
  uint8_t mtcs_nonce[MTCSEC_NONCE_LEN];
  uint8_t suite;
  uint8_t perms;
  uint16_t key_id;
  uint32_t lifetime;  /* seconds */
  uint64_t issued_at; /* the server core's now, ms */
  uint8_t npath;
  uint8_t path[MTCSEC_MAX_PATH * MTCSEC_ID_LEN];
} mtcsec_session_rec;

/** One durable write: mark nonce in the window, key id used, session. */
typedef struct mtcsec_store_txn {
  uint64_t nonce; /* MTCdNonce as an integer */
  mtcsec_session_rec session;
} mtcsec_store_txn;

/**
 * The table.  st is the store's context.  Every function returns 0 or a
 * negative mtcsec_err; MTCSEC_ERR_STORE means the store failed (the server
 * answers INTERNAL).  Grants and relays are judged with the store's own
 * wall clock (validity periods are calendar time).
 */
typedef struct mtcsec_store_ops {
  /** Device record: 0, NOT_FOUND or STORE. */
  int (*get_device)(void *st, const uint8_t id[MTCSEC_ID_LEN],
                    mtcsec_store_device *out);
  /** Durable state; a device never seen has an empty window, key id 0. */
  int (*get_state)(void *st, const uint8_t id[MTCSEC_ID_LEN],
                   mtcsec_store_devstate *out);
  /** Grant of ue on dev valid now: 0, NOT_FOUND or STORE. */
  int (*get_grant)(void *st, const uint8_t dev[MTCSEC_ID_LEN],
                   const uint8_t ue[MTCSEC_ID_LEN], mtcsec_store_grant *out);
  /** 0 if relay gw is allowed for dev, NOT_FOUND if not, or STORE. */
  int (*relay_allowed)(void *st, const uint8_t dev[MTCSEC_ID_LEN],
                       const uint8_t gw[MTCSEC_ID_LEN]);
  /**
   * Durably applies n transactions in order, as one batch.  For each, the
   * store re-checks the nonce against its durable window (the authoritative
   * check) and sets results[i] to 0 (window updated, next_key_id set to
   * session.key_id + 1, session inserted) or MTCSEC_ERR_REPLAY (nothing
   * written for it).  Returns 0 once everything with results[i] == 0 is
   * durable, or MTCSEC_ERR_STORE when nothing of the batch was written.
   */
  int (*commit)(void *st, mtcsec_store_txn *const *txns, size_t n,
                int *results);
  /**
   * Optional (NULL when the store does not provide it): the two lookups of
   * one M2 in one call, for a store where each call has a fixed cost (a
   * read transaction).  Returns what get_device(dev) returns, with *out
   * set as it sets it; when that is 0, *grant_rv is what get_grant(dev, ue)
   * returns and *grant what it sets.  The server core calls it instead of
   * get_device and get_grant.
   */
  int (*get_device_grant)(void *st, const uint8_t dev[MTCSEC_ID_LEN],
                          const uint8_t ue[MTCSEC_ID_LEN],
                          mtcsec_store_device *out, mtcsec_store_grant *grant,
                          int *grant_rv);
} mtcsec_store_ops;

/* ------------------------------------------------------ in-memory store */

typedef struct mtcsec_store_mem mtcsec_store_mem;

/** The ops table of the in-memory store. */
extern const mtcsec_store_ops mtcsec_store_mem_ops;

/** Creates an empty in-memory store (mem NULL: malloc).  0 or NOMEM. */
int mtcsec_store_mem_new(mtcsec_store_mem **pst, const mtcsec_mem *mem);
/** Zeroizes and frees st (NULL allowed). */
void mtcsec_store_mem_del(mtcsec_store_mem *st);

/** Adds or replaces a device.  0, INVALID_ARGUMENT or NOMEM. */
int mtcsec_store_mem_add_device(mtcsec_store_mem *st,
                                const uint8_t id[MTCSEC_ID_LEN],
                                const mtcsec_store_device *dev);
/** Sets the disabled flag.  0 or NOT_FOUND. */
int mtcsec_store_mem_set_disabled(mtcsec_store_mem *st,
                                  const uint8_t id[MTCSEC_ID_LEN],
                                  int disabled);
/** Adds or replaces a grant.  0 or NOMEM. */
int mtcsec_store_mem_grant(mtcsec_store_mem *st,
                           const uint8_t dev[MTCSEC_ID_LEN],
                           const uint8_t ue[MTCSEC_ID_LEN], uint8_t perms,
                           uint32_t lifetime);
/** Removes a grant.  0 or NOT_FOUND. */
int mtcsec_store_mem_revoke_grant(mtcsec_store_mem *st,
                                  const uint8_t dev[MTCSEC_ID_LEN],
                                  const uint8_t ue[MTCSEC_ID_LEN]);
/** Allows relay gw for dev.  0 or NOMEM. */
int mtcsec_store_mem_allow_relay(mtcsec_store_mem *st,
                                 const uint8_t dev[MTCSEC_ID_LEN],
                                 const uint8_t gw[MTCSEC_ID_LEN]);
/**
 * Fault injection for tests: the next `count` commit calls fail with
 * MTCSEC_ERR_STORE and write nothing.
 */
void mtcsec_store_mem_fail_commits(mtcsec_store_mem *st, unsigned count);
/** Sessions recorded so far (for tests). */
size_t mtcsec_store_mem_sessions(const mtcsec_store_mem *st);
/** Copies session i (0-based, in commit order).  0 or NOT_FOUND. */
int mtcsec_store_mem_session(const mtcsec_store_mem *st, size_t i,
                             mtcsec_session_rec *out);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_STORE_H */
