/*
 * MTCd role: the constrained device (PROTOCOL.md sections 4, 6 and 7).
 *
 * Sans-IO and allocation-free.  The caller owns the mtcsec_dev, feeds it
 * datagrams with mtcsec_dev_read(), drains datagrams to send with
 * mtcsec_dev_write(), and drives its timers with mtcsec_dev_get_expiry() /
 * mtcsec_dev_handle_expiry().  Each datagram carries an opaque 64-bit `peer`
 * chosen by the caller (a link address); answers go back to the peer the
 * request came from.
 *
 * None of these functions may be called from inside a callback.
 *
 * Pointers: every pointer argument must be valid unless a comment allows
 * NULL.  By default a NULL pointer, or a configuration that init() refuses,
 * gives MTCSEC_ERR_INVALID_ARGUMENT.  A firmware build may compile those
 * checks of programming errors out (MTCSEC_CFG_CHECK_PARAMS 0, config.h;
 * docs/DEVICE-BUILD.md): a NULL where none is allowed is then undefined
 * behaviour.  Checks of received bytes, buffer lengths, the suite and the
 * device's state are never compiled out.
 */
#ifndef MTCSEC_DEVICE_H
#define MTCSEC_DEVICE_H

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/channel.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The device role's clock.  By default it is mtcsec_tstamp: milliseconds,
 * 64 bits.  A firmware build with MTCSEC_CFG_DEV_TIME32 (config.h) makes
 * it 32 bits of seconds, so that a 32-bit MCU does no 64-bit time
 * arithmetic.  That clock must be monotonic, start near 0 (seconds since
 * boot) and stay below 2^31 (68 years): times are compared with <, not
 * modulo 2^32, so a free-running RTC or Unix time must not be passed; every
 * time and interval of this header is then in seconds, and the resend backoff
 * and its jitter are whole seconds.  MTCSEC_DEV_TICKS_PER_S is the clock's rate
 * (1000 or 1).
 */
#if MTCSEC_CFG_DEV_TIME32
typedef uint32_t mtcsec_dev_time;
#  define MTCSEC_DEV_TIME_NEVER UINT32_MAX
#  define MTCSEC_DEV_TICKS_PER_S 1u
#else
typedef mtcsec_tstamp mtcsec_dev_time;
#  define MTCSEC_DEV_TIME_NEVER MTCSEC_TSTAMP_NEVER
#  define MTCSEC_DEV_TICKS_PER_S 1000u
#endif

/** One live DMKey (private). */
typedef struct mtcsec_dev_session {
  uint8_t in_use;
  uint8_t perms;
  uint8_t ueid[MTCSEC_ID_LEN];
  uint8_t mtcd_nonce[MTCSEC_NONCE_LEN];
  mtcsec_dev_time expiry; /* the DMKey is erased at this time */
  mtcsec_chan chan;
} mtcsec_dev_session;

typedef struct mtcsec_dev_config {
  uint8_t suite;
  uint8_t mtcd_id[MTCSEC_ID_LEN];
  uint8_t mtcs_id[MTCSEC_ID_LEN];
  /** PSKey (suite key length).  Read during init only: K_auth and K_dm are
   *  derived from it and kept; the caller should then erase its copy. */
  const uint8_t *pskey;
  /** The next MTCdNonce to use, as last persisted (0 on a new device). */
  uint64_t next_nonce;
  /** Least time between two M1s answering M0s (rate limit). */
  mtcsec_dev_time m0_interval;
  /** Wait for M4 after the first M1; doubles on each resend. */
  mtcsec_dev_time retx_timeout;
  /** Resends of the same M1 before giving up (0: send once). */
  uint8_t retx_max;
  /** Advertise the supported suites (SUITES TLV) in MTCdInfo. */
  uint8_t send_suites;
  /** Storage for the live DMKeys (at least 1, at most 255), owned by the
   *  caller and kept apart from the device context so that the context
   *  stays small; it must outlive the device.  A new DMKey replaces the
   *  one with the same KEY_ID, else a free slot, else the one that expires
   *  first. */
  mtcsec_dev_session *sessions;
  size_t nsessions;
  mtcsec_log_fn log;
} mtcsec_dev_config;

/** Fills cfg with defaults: m0_interval 1 s, retx_timeout 2 s, retx_max 3. */
void mtcsec_dev_config_default(mtcsec_dev_config *cfg);

typedef enum mtcsec_dev_event_type {
  MTCSEC_DEV_EV_ESTABLISHED = 1, /* M4 accepted: a DMKey is live */
  MTCSEC_DEV_EV_GAVE_UP = 2,     /* no M4 after the last resend */
  MTCSEC_DEV_EV_EXPIRED = 3,     /* a DMKey's lifetime ended: erased */
  MTCSEC_DEV_EV_REVOKED = 4      /* a revocation erased a DMKey */
} mtcsec_dev_event_type;

typedef struct mtcsec_dev_event {
  mtcsec_dev_event_type type;
  const uint8_t *ueid; /* 8 bytes, valid during the callback */
  uint16_t key_id;     /* not for GAVE_UP */
  uint8_t perms;       /* ESTABLISHED */
  uint32_t lifetime;   /* ESTABLISHED, seconds */
} mtcsec_dev_event;

typedef struct mtcsec_dev_callbacks {
  /**
   * Required.  Must durably store next_nonce (the value the device will use
   * after the nonce being spent now) before returning 0; the M1 is released
   * only afterwards (section 4).  Any nonzero return aborts the M1
   * (MTCSEC_ERR_CALLBACK) and spends nothing.
   */
  int (*persist_nonce)(void *user_data, uint64_t next_nonce);
  /** Optional: events. */
  void (*on_event)(void *user_data, const mtcsec_dev_event *ev);
} mtcsec_dev_callbacks;

/** One pending exchange (private). */
typedef struct mtcsec_dev_pending {
  mtcsec_dev_time deadline;
  uint64_t peer;
  uint32_t timeout; /* current backoff base */
  uint8_t state;    /* 0 free, 1 M1 to send, 2 waiting for M4 */
  uint8_t retries;  /* resends so far */
  uint8_t ueid[MTCSEC_ID_LEN];
  /* MTCdNonce (8) || info_len (1) || MTCdInfo: the M1's part of the
   * MTCsMIC input (section 4), kept as one piece. */
  uint8_t m1_tail[MTCSEC_NONCE_LEN + 1 + MTCSEC_DEV_MAX_INFO];
} mtcsec_dev_pending;

/** The device.  Fields are private; the struct is visible for sizing. */
typedef struct mtcsec_dev {
  const mtcsec_crypto *crypto;
  const mtcsec_dev_callbacks *cb;
  void *user_data;
  mtcsec_log_fn log;
  mtcsec_dev_session *sessions;  /* the caller's, nsessions of them */
  const mtcsec_suite_params *sp; /* the device's suite */
  uint64_t next_nonce;
  mtcsec_dev_time last_m1;
  uint32_t m0_interval, retx_timeout;
  int32_t lat, lon;
  uint8_t nsessions, retx_max, send_suites;
  uint8_t have_last_m1, status_present, battery;
  uint8_t ids[2 * MTCSEC_ID_LEN]; /* MTCdID || MTCsID */
  uint8_t k_auth[MTCSEC_CFG_MAX_KEY_LEN];
  uint8_t k_dm[MTCSEC_CFG_MAX_KEY_LEN];
  mtcsec_dev_pending pending[MTCSEC_DEV_MAX_PENDING];
} mtcsec_dev;

/**
 * Initializes d.  cfg and pskey are read during the call only; crypto, cb
 * user_data and cfg->sessions must outlive d; the sessions are cleared.
 * m0_interval and retx_timeout are capped at UINT32_MAX (mtcsec_dev_time
 * units).  Returns 0, INVALID_ARGUMENT (a suite that is not section 2's,
 * not in this build's MTCSEC_CFG_SUITES or with keys over
 * MTCSEC_CFG_MAX_KEY_LEN; and, unless MTCSEC_CFG_CHECK_PARAMS is 0: NULL,
 * no persist_nonce, no session storage or more than 255 sessions) or the
 * provider's error.  A counter that is already exhausted (UINT64_MAX) is
 * accepted; every exchange then fails with MTCSEC_ERR_EXHAUSTED.
 */
int mtcsec_dev_init(mtcsec_dev *d, const mtcsec_dev_config *cfg,
                    const mtcsec_crypto *crypto, const mtcsec_dev_callbacks *cb,
                    void *user_data);

/** Zeroizes d and its sessions (keys included).  d may be NULL. */
void mtcsec_dev_deinit(mtcsec_dev *d);

/** Status TLVs that go into the next MTCdInfo; pass has_* = 0 to omit. */
void mtcsec_dev_set_status(mtcsec_dev *d, int has_battery, uint8_t battery,
                           int has_location, int32_t lat, int32_t lon);

/**
 * Handles one datagram: M0 (starts an exchange), M4 (completes it) or a
 * revocation.  Records go to mtcsec_dev_open() instead.
 * Returns 0 or: MALFORMED, UNSUPPORTED (other type), BUSY (no free pending
 * slot: M0 ignored), RATE (M0 ignored by the rate limit), UNEXPECTED (no
 * exchange waits for this M4, e.g. a duplicate of an accepted one),
 * MISMATCH (IDs of a revocation are not ours), MIC, NOT_FOUND (revocation
 * of an unknown session: ignored), EXHAUSTED, CALLBACK or the provider's
 * error.  Every error leaves d as it was, with one exception: a provider
 * error (fatal, mtcsec_err_is_fatal()) while a verified M4's DMKey and
 * channel keys are derived leaves the session slot chosen for them erased
 * (the keys are derived in place, not on the stack).
 */
int mtcsec_dev_read(mtcsec_dev *d, const uint8_t *pkt, size_t pktlen,
                    uint64_t peer, mtcsec_dev_time now);

/**
 * Starts an exchange without M0 (the device knows the UE out of band):
 * UEID ueid, no REQ_PERMS, no PATH, answers to peer.  Errors as for an M0
 * in mtcsec_dev_read().
 */
int mtcsec_dev_start(mtcsec_dev *d, const uint8_t ueid[MTCSEC_ID_LEN],
                     uint64_t peer, mtcsec_dev_time now);

/**
 * Writes the next datagram to send (an M1 or its resend) to dest and its
 * destination to *peer.  Returns its length, 0 when there is nothing to
 * send, or NOBUF.
 */
mtcsec_ssize mtcsec_dev_write(mtcsec_dev *d, uint8_t *dest, size_t destlen,
                              uint64_t *peer, mtcsec_dev_time now);

/** Returns the time of the next timer, or MTCSEC_DEV_TIME_NEVER. */
mtcsec_dev_time mtcsec_dev_get_expiry(const mtcsec_dev *d);

/**
 * Runs the timers due at now: M1 resends (exponential backoff with +-20%
 * jitter, capped at 50 minutes), giving up, DMKey expiry.  Returns 0 or
 * INVALID_ARGUMENT.
 */
int mtcsec_dev_handle_expiry(mtcsec_dev *d, mtcsec_dev_time now);

/** What a record was opened under. */
typedef struct mtcsec_dev_record_info {
  uint16_t key_id;
  uint8_t perms;
  uint8_t ueid[MTCSEC_ID_LEN];
} mtcsec_dev_record_info;

/**
 * Opens a channel record from a UE under the session its key_id names.
 * info (may be NULL) tells the application which UE sent it and with which
 * PERMS, so that it can enforce them (mtcsec_dev_authorize()).
 * Returns the plaintext length, NOT_FOUND (no such key id), or an error of
 * mtcsec_chan_open().
 */
mtcsec_ssize mtcsec_dev_open(mtcsec_dev *d, uint8_t *dest, size_t destlen,
                             const uint8_t *rec, size_t reclen,
                             mtcsec_dev_time now, mtcsec_dev_record_info *info);

/**
 * Seals an answer under session key_id.  Returns the record length,
 * NOT_FOUND, or an error of mtcsec_chan_seal().
 */
mtcsec_ssize mtcsec_dev_seal(mtcsec_dev *d, uint16_t key_id, uint8_t *dest,
                             size_t destlen, const uint8_t *pt, size_t ptlen,
                             mtcsec_dev_time now);

/**
 * PERMS enforcement for the application (section 3): returns 0 if session
 * key_id is live at now and its PERMS include every bit of `required`,
 * MTCSEC_ERR_FORBIDDEN if not, NOT_FOUND or EXPIRED.
 */
int mtcsec_dev_authorize(const mtcsec_dev *d, uint16_t key_id, uint8_t required,
                         mtcsec_dev_time now);

/** The nonce the next M1 will carry (for tests and diagnostics). */
uint64_t mtcsec_dev_next_nonce(const mtcsec_dev *d);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_DEVICE_H */
