/*
 * SQLite store: the embedded default store of the MTC server (mtcsd) and of
 * the admin tool.  Implements the mtcsec_store_ops table of store.h plus the
 * administration calls the CLI needs.
 *
 * At rest, device keys (K_auth and K_dm; the PSKey itself is never stored)
 * are wrapped with AES key wrap with padding (RFC 5649, OpenSSL's
 * "id-aes256-wrap-pad") under a 32-byte key-encryption key (KEK) that lives
 * in a file readable by its owner only.
 *
 * The database runs in WAL mode.  commit() applies a whole batch in one
 * transaction (group commit): every nonce window of the batch is durable
 * (synchronous=FULL) when it returns 0.  Schema versions are migrated
 * forward on open (PRAGMA user_version).
 *
 * Threads: one mtcsec_sqlite handle is one SQLite connection; use one
 * handle per thread (a daemon opens one per worker plus one for commits).
 */
#ifndef MTCSEC_STORE_SQLITE_H
#define MTCSEC_STORE_SQLITE_H

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/store.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTCSEC_KEK_LEN 32

typedef struct mtcsec_sqlite mtcsec_sqlite;

/** The ops table; its st argument is an mtcsec_sqlite *. */
extern const mtcsec_store_ops mtcsec_sqlite_ops;

/**
 * Reads a KEK file: 64 hex digits (optionally followed by a newline).
 * Refuses a file that is group- or world-accessible (mode & 077), not a
 * regular file, or of the wrong content.  On error writes a sentence that
 * says what to do into err (errlen bytes, NUL-terminated) and returns
 * MTCSEC_ERR_INVALID_ARGUMENT (content or permissions) or MTCSEC_ERR_STORE
 * (cannot read).  kek is zeroized on error.
 */
int mtcsec_kek_load(const char *path, uint8_t kek[MTCSEC_KEK_LEN], char *err,
                    size_t errlen);

/**
 * Creates a new KEK file with mode 0600 from crypto->ops->random; refuses to
 * overwrite an existing file.  Returns 0, MTCSEC_ERR_STORE (with err) or
 * MTCSEC_ERR_INVALID_ARGUMENT (NULL path or crypto).
 */
int mtcsec_kek_create(const char *path, const mtcsec_crypto *crypto, char *err,
                      size_t errlen);

enum {
  MTCSEC_SQLITE_CREATE = 1 << 0,  /* create the file if missing */
  MTCSEC_SQLITE_READONLY = 1 << 1 /* admin listings */
};

/**
 * Opens (and migrates) the database at path.  kek is copied; crypto must
 * outlive the handle (used for key wrapping and derivation).  A busy
 * timeout of 5 s is set.  On error writes a sentence into err (may be
 * NULL) and returns MTCSEC_ERR_STORE (cannot open, corrupt, newer schema
 * than this build), MTCSEC_ERR_NOMEM or MTCSEC_ERR_INVALID_ARGUMENT (NULL
 * argument, unknown flag, CREATE with READONLY).
 */
int mtcsec_sqlite_open(mtcsec_sqlite **pst, const char *path,
                       const uint8_t kek[MTCSEC_KEK_LEN],
                       const mtcsec_crypto *crypto, int flags, char *err,
                       size_t errlen);

/** Closes the handle and zeroizes its copy of the KEK; NULL allowed. */
void mtcsec_sqlite_close(mtcsec_sqlite *st);

/** The schema version this build writes. */
int mtcsec_sqlite_schema_version(void);

/**
 * The last error of this handle, for logs: a sentence for the operator
 * (SQLite's message with advice, or the store's own, e.g. keys that do not
 * unwrap under this KEK); "" if none yet.  Valid until the next call.
 */
const char *mtcsec_sqlite_errmsg(const mtcsec_sqlite *st);

/* ------------------------------------------------------- administration */

/** A device as the admin tool lists it (no keys). */
typedef struct mtcsec_sqlite_devinfo {
  uint8_t id[MTCSEC_ID_LEN];
  uint8_t suite;
  uint8_t disabled;
  char label[64];
  char group[64];    /* "" when none */
  int64_t created;   /* unix seconds */
  uint64_t sessions; /* sessions issued so far */
  mtcsec_window window;
} mtcsec_sqlite_devinfo;

/**
 * Provisions a device: derives K_auth and K_dm from pskey (the suite's key
 * length) with mtcsec_derive_device_keys(mtcs_id) and stores them wrapped.
 * label and group may be NULL (group "" is no group); each is at most 63
 * bytes, so that it fits mtcsec_sqlite_devinfo.  Returns 0,
 * MTCSEC_ERR_INVALID_ARGUMENT (unknown suite, label or group too long),
 * MTCSEC_ERR_INVALID_STATE (the ID exists already) or MTCSEC_ERR_STORE.
 */
int mtcsec_sqlite_device_add(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                             const uint8_t mtcs_id[MTCSEC_ID_LEN],
                             uint8_t suite, const uint8_t *pskey,
                             const char *label, const char *group);

/** Sets or clears the disabled flag.  0, NOT_FOUND or STORE. */
int mtcsec_sqlite_device_disable(mtcsec_sqlite *st,
                                 const uint8_t id[MTCSEC_ID_LEN], int disabled);

/** One device.  0, NOT_FOUND or STORE. */
int mtcsec_sqlite_device_get(mtcsec_sqlite *st, const uint8_t id[MTCSEC_ID_LEN],
                             mtcsec_sqlite_devinfo *out);

/**
 * Calls fn for every device in ID order until it returns nonzero.
 * Returns 0 or STORE.
 */
int mtcsec_sqlite_device_foreach(mtcsec_sqlite *st,
                                 int (*fn)(void *ud,
                                           const mtcsec_sqlite_devinfo *d),
                                 void *ud);

/**
 * A grant: UE ueid may obtain keys for device `device` (8 bytes) or for
 * every device of group `group` (exactly one of the two is non-NULL), with
 * PERMS perms and DMKey lifetime `lifetime` seconds, valid in calendar time
 * [not_before, not_after) (unix seconds; 0 = unbounded).  Replaces an
 * existing grant for the same (UE, device or group).  A device grant takes
 * precedence over a group grant: when one exists for (UE, device) it alone
 * decides, even outside its validity period (so perms 0 denies one device of
 * a group).  Returns 0, INVALID_ARGUMENT or STORE.
 */
int mtcsec_sqlite_grant_set(mtcsec_sqlite *st,
                            const uint8_t ueid[MTCSEC_ID_LEN],
                            const uint8_t *device, const char *group,
                            uint8_t perms, uint32_t lifetime,
                            int64_t not_before, int64_t not_after);

/** Deletes a grant.  0, NOT_FOUND or STORE. */
int mtcsec_sqlite_grant_del(mtcsec_sqlite *st,
                            const uint8_t ueid[MTCSEC_ID_LEN],
                            const uint8_t *device, const char *group);

/** Registers a relay ID (with an optional label).  0 or STORE. */
int mtcsec_sqlite_relay_add(mtcsec_sqlite *st,
                            const uint8_t gwid[MTCSEC_ID_LEN],
                            const char *label);

/**
 * Allows relay gwid for a device (device non-NULL) or for a group.  The
 * relay must be registered (NOT_FOUND otherwise).  0, NOT_FOUND or STORE.
 */
int mtcsec_sqlite_relay_allow(mtcsec_sqlite *st,
                              const uint8_t gwid[MTCSEC_ID_LEN],
                              const uint8_t *device, const char *group);

/** A recorded session (never DMKey). */
typedef struct mtcsec_sqlite_session {
  int64_t id; /* the session's number, for `mtcsec revoke` */
  mtcsec_session_rec rec;
  int64_t issued_unix; /* wall clock at commit */
  int revoked;
} mtcsec_sqlite_session;

/**
 * Calls fn for each session, newest first; device (may be NULL) filters by
 * device.  At most `limit` (0 = all).  Returns 0 or STORE.
 */
int mtcsec_sqlite_session_foreach(
  mtcsec_sqlite *st, const uint8_t *device, size_t limit,
  int (*fn)(void *ud, const mtcsec_sqlite_session *s), void *ud);

/**
 * Marks session `id` revoked and builds its revocation message (section 7)
 * into dest.  Returns the message length, NOT_FOUND, NOBUF or STORE.
 */
mtcsec_ssize mtcsec_sqlite_session_revoke(mtcsec_sqlite *st, int64_t id,
                                          uint8_t *dest, size_t destlen);

/**
 * Appends to the audit log of admin actions: who (e.g. the Unix user),
 * action ("device add"), subject (an ID in hex), detail (free text, never a
 * key).  Returns 0 or STORE.
 */
int mtcsec_sqlite_audit(mtcsec_sqlite *st, const char *who, const char *action,
                        const char *subject, const char *detail);

/** Calls fn for each audit entry, oldest first.  Returns 0 or STORE. */
int mtcsec_sqlite_audit_foreach(mtcsec_sqlite *st,
                                int (*fn)(void *ud, int64_t when,
                                          const char *who, const char *action,
                                          const char *subject,
                                          const char *detail),
                                void *ud);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_STORE_SQLITE_H */
