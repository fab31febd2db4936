/*
 * mtcsec: lightweight security establishment for cellular IoT.
 *
 * This is the umbrella header: version, the one error enum, the basic types
 * shared by every module, and the small utilities (constant-time compare,
 * zeroize) that every role uses.  The wire format it implements is
 * PROTOCOL.md, version 1; section numbers in comments refer to it.
 *
 * Conventions (they hold for every public function unless its comment says
 * otherwise):
 *  - Functions return 0 (MTCSEC_OK) or a negative mtcsec_err, or an
 *    mtcsec_ssize that is a byte count when >= 0 and an mtcsec_err when < 0.
 *  - Every pointer travels with its length.  Output buffers are never written
 *    past their stated length; a too-small buffer gives MTCSEC_ERR_NOBUF.
 *  - The library never allocates on its own: objects are owned by the caller;
 *    the UE and server roles allocate only through an mtcsec_mem the caller
 *    passes (NULL selects the C library's malloc/free).
 *  - Time is always passed in as an mtcsec_tstamp (milliseconds on a clock of
 *    the caller's choice that never goes backwards).  The library never reads
 *    a clock, a socket, a file or a database.
 *  - Objects are not thread-safe; use one object per thread or lock around it.
 */
#ifndef MTCSEC_MTCSEC_H
#define MTCSEC_MTCSEC_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/config.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTCSEC_VERSION_MAJOR 0
#define MTCSEC_VERSION_MINOR 1
#define MTCSEC_VERSION_PATCH 0
#define MTCSEC_VERSION_STRING "0.1.0"
/** Wire protocol version carried in the high nibble of every header. */
#define MTCSEC_PROTOCOL_VERSION 1

/** Returns MTCSEC_VERSION_STRING of the library actually linked. */
const char *mtcsec_version(void);

/**
 * The one error enum.  0 is success.  Never renumbered.
 *  -1..-99   the caller did something wrong (argument, buffer, state);
 *  -100..-199 a verdict on peer input (the peer sent bad data);
 *  -200..     the environment failed (crypto library, store, callback).
 */
typedef enum mtcsec_err {
  MTCSEC_OK = 0,
  /* caller errors */
  MTCSEC_ERR_INVALID_ARGUMENT = -1,
  MTCSEC_ERR_NOBUF = -2,
  MTCSEC_ERR_INVALID_STATE = -3,
  MTCSEC_ERR_NOMEM = -4,
  MTCSEC_ERR_BUSY = -5,      /* no free slot (pending exchange, session) */
  MTCSEC_ERR_NOT_FOUND = -6, /* no such session / exchange / record */
  MTCSEC_ERR_RATE = -7,      /* local rate limit: try again later */
  MTCSEC_ERR_EXHAUSTED = -8, /* a counter ran out: re-establish */
  /* verdicts on peer input */
  MTCSEC_ERR_MALFORMED = -100,
  MTCSEC_ERR_MIC = -101,
  MTCSEC_ERR_REPLAY = -102,
  MTCSEC_ERR_UNEXPECTED = -103,  /* well formed but not awaited now */
  MTCSEC_ERR_EXPIRED = -104,     /* key lifetime over */
  MTCSEC_ERR_UNSUPPORTED = -105, /* version, type or suite not supported */
  MTCSEC_ERR_MISMATCH = -106,    /* IDs/suite differ from the exchange */
  MTCSEC_ERR_FORBIDDEN = -107,   /* the session's PERMS do not allow it */
  /* environment */
  MTCSEC_ERR_CRYPTO = -200,
  MTCSEC_ERR_STORE = -201,
  MTCSEC_ERR_CALLBACK = -202
} mtcsec_err;

/**
 * Returns a constant, human-readable English description of an mtcsec_err
 * (never NULL; unknown codes give "unknown error").
 */
const char *mtcsec_strerror(int err);

/**
 * Returns the symbolic name of an mtcsec_err ("MTCSEC_ERR_MIC"), suitable
 * for structured logs; unknown codes give "MTCSEC_ERR_UNKNOWN".
 */
const char *mtcsec_errname(int err);

/**
 * Returns nonzero if err means the object that returned it can no longer be
 * used (environment failures); verdicts on peer input are never fatal.
 */
int mtcsec_err_is_fatal(int err);

/** Signed size: bytes written when >= 0, an mtcsec_err when < 0. */
typedef long mtcsec_ssize;

/** Milliseconds on a monotonic clock chosen by the caller. */
typedef uint64_t mtcsec_tstamp;
/** "No timer pending." */
#define MTCSEC_TSTAMP_NEVER UINT64_MAX

/* Fixed sizes of section 1. */
#define MTCSEC_ID_LEN 8
#define MTCSEC_NONCE_LEN 8
/** Largest key of any suite (suite 0x03). */
#define MTCSEC_MAX_KEY_LEN 32
/** Largest MIC / tag of any suite. */
#define MTCSEC_MAX_MIC_LEN 16
/** Direct-channel nonce / IV length (section 6). */
#define MTCSEC_IV_LEN 13
/** Largest info field (section 3). */
#define MTCSEC_MAX_INFO_LEN 255

/** Cipher suites (section 2). */
typedef enum mtcsec_suite {
  MTCSEC_SUITE_CMAC_AES128 = 0x01,
  MTCSEC_SUITE_HMAC_SHA256_AES128 = 0x02,
  MTCSEC_SUITE_HMAC_SHA256_AES256 = 0x03
} mtcsec_suite;

/** Parameters of a suite, from the table of section 2. */
typedef struct mtcsec_suite_params {
  uint8_t id;
  uint8_t mac;    /* mtcsec_mac_alg of crypto.h */
  uint8_t keylen; /* PSKey, DMKey and channel key length */
  uint8_t miclen; /* t: MIC and AEAD tag length */
} mtcsec_suite_params;

/**
 * Returns the parameters of suite id, or NULL if id is not one of
 * section 2's suites.  The result points to static storage.  (The codec and
 * the key schedule take every suite; what keeps keys, the channel and the
 * device, also refuses a suite whose keys are longer than
 * MTCSEC_CFG_MAX_KEY_LEN.)
 */
const mtcsec_suite_params *mtcsec_suite_get(uint8_t id);

/**
 * RFC 4303-style anti-replay window of 64 that includes the highest number
 * seen (section 4 for nonces, section 6 for record sequence numbers).
 * bitmap bit i set means top - i was seen; bitmap == 0 means empty (nothing
 * seen yet, so any number, 0 included, is new).  Plain data: the store
 * persists it as (top, bitmap).
 */
typedef struct mtcsec_window {
  uint64_t top;
  uint64_t bitmap;
} mtcsec_window;

#define MTCSEC_WINDOW_SIZE 64

/** Empties w. */
void mtcsec_window_init(mtcsec_window *w);

/** Returns 0 if n would be accepted, MTCSEC_ERR_REPLAY otherwise. */
int mtcsec_window_check(const mtcsec_window *w, uint64_t n);

/**
 * Marks n as seen, sliding the window when n > top.  Call only after
 * mtcsec_window_check(w, n) returned 0 (and the message verified).
 */
void mtcsec_window_update(mtcsec_window *w, uint64_t n);

/** Log levels for mtcsec_log_fn. */
enum {
  MTCSEC_LOG_ERROR = 0,
  MTCSEC_LOG_WARN = 1,
  MTCSEC_LOG_INFO = 2,
  MTCSEC_LOG_DEBUG = 3
};

/**
 * Log hook.  msg is a NUL-terminated "key=value ..." line that never contains
 * keys, MICs or expected values.  A NULL hook means silent.  On device
 * builds, levels above MTCSEC_LOG_LEVEL are compiled out.
 */
typedef void (*mtcsec_log_fn)(void *user_data, int level, const char *msg);

/**
 * Allocator for the roles that may allocate (UE, server), shaped like
 * ngtcp2_mem.  Every function receives user_data.  NULL for the whole struct
 * selects malloc/calloc/free.
 */
typedef struct mtcsec_mem {
  void *user_data;
  void *(*malloc)(size_t size, void *user_data);
  void (*free)(void *ptr, void *user_data);
  void *(*calloc)(size_t nmemb, size_t size, void *user_data);
} mtcsec_mem;

/** Returns the default allocator (malloc/calloc/free). */
const mtcsec_mem *mtcsec_mem_default(void);

/**
 * Compares n bytes of a and b in time that depends only on n.  Returns 0 when
 * equal and nonzero otherwise (not an ordering).  Use for every MIC and tag.
 */
int mtcsec_ct_memcmp(const void *a, const void *b, size_t n);

/**
 * Overwrites n bytes at p with zeros in a way the compiler may not remove.
 * p may be NULL when n is 0.
 */
void mtcsec_zeroize(void *p, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_MTCSEC_H */
