/*
 * The home proxy's subscriber store (docs/CELLULAR-HOME-PROXY.md): a SQLite
 * file (hlr.db) holding, per IMSI, K and OPc wrapped under the KEK (RFC 5649,
 * the same KEK file and wrapping as mtcsd's store), AMF, SQN_HE, the number
 * of IND bits, the integrity-only policy flag (P2/P3) and an optional
 * MSISDN (sent in Insert Subscriber Data).
 *
 * Internal to the project (never installed): used by mtchpd and by
 * `mtcsec sub`.  Not thread-safe: one handle per thread.
 */
#ifndef MTCSEC_AUC_STORE_H
#define MTCSEC_AUC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/cellular.h>
#include <mtcsec/store_sqlite.h>

/** PRAGMA application_id of a subscriber database ("mtch"). */
#define MTCSEC_AUC_APP_ID 0x6d746368
/** Current schema version (PRAGMA user_version): 1 the subscriber table,
 *  2 adds the msisdn column. */
#define MTCSEC_AUC_SCHEMA_VERSION 2
/** Digits of an MSISDN at most (E.164, ITU-T E.164 section 6). */
#define MTCSEC_AUC_MSISDN_MAX_DIGITS 15
/** IND bits of a new subscriber (TS 33.102 C.1.2, osmo-hlr's default). */
#define MTCSEC_AUC_DEFAULT_IND_BITLEN 5

typedef struct mtcsec_auc_store mtcsec_auc_store;

/** One subscriber.  k and opc are filled only when asked for. */
typedef struct mtcsec_auc_sub {
  char imsi[MTCSEC_IMSI_MAX_DIGITS + 1];
  uint8_t k[MTCSEC_3GPP_K_LEN];
  uint8_t opc[MTCSEC_3GPP_K_LEN];
  uint8_t amf[MTCSEC_3GPP_AMF_LEN];
  uint64_t sqn; /* SQN_HE: the last SQN issued (0 for a new subscriber) */
  unsigned ind_bitlen;
  int integrity_only;
  int64_t created;                               /* unix seconds */
  char msisdn[MTCSEC_AUC_MSISDN_MAX_DIGITS + 1]; /* "" = none */
} mtcsec_auc_sub;

/** Flags of mtcsec_auc_store_open(). */
enum {
  MTCSEC_AUC_READONLY = 1 << 0, /* never writes; the file must exist */
  MTCSEC_AUC_NOCREATE = 1 << 1  /* the file must exist */
};

/**
 * Opens (creating and migrating unless flags say otherwise) the database at
 * path; kek is copied into the handle's wrapping context.  A database with
 * another application_id or a newer schema is refused.  Migrations run one
 * transaction per version; READONLY reads a version 1 database as it is
 * (no MSISDNs) and refuses an empty one.
 *
 * Returns 0, MTCSEC_ERR_INVALID_ARGUMENT, MTCSEC_ERR_NOT_FOUND (no file and
 * READONLY/NOCREATE), MTCSEC_ERR_NOMEM, MTCSEC_ERR_CRYPTO or
 * MTCSEC_ERR_STORE, with a sentence in err.
 */
int mtcsec_auc_store_open(mtcsec_auc_store **pst, const char *path,
                          const uint8_t kek[MTCSEC_KEK_LEN], int flags,
                          char *err, size_t errlen);

/** Closes the handle and zeroizes its key material; NULL allowed. */
void mtcsec_auc_store_close(mtcsec_auc_store *st);

/** The last error of the handle as a sentence ("" if none). */
const char *mtcsec_auc_store_errmsg(const mtcsec_auc_store *st);

/**
 * Adds a subscriber (imsi: 6..15 digits; ind_bitlen 0..5; sqn <= 2^48 - 1;
 * msisdn "" or 1..15 digits, unique).  K and OPc are wrapped together with
 * the IMSI, so a wrapped row copied onto another IMSI does not unwrap.
 * Returns 0, INVALID_ARGUMENT, MTCSEC_ERR_BUSY (the IMSI exists already, or
 * the MSISDN belongs to another subscriber: see the error message), CRYPTO
 * or STORE.
 */
int mtcsec_auc_store_add(mtcsec_auc_store *st, const mtcsec_auc_sub *sub);

/**
 * Reads a subscriber; with_keys != 0 also unwraps K and OPc (zeroize them
 * when done).  Returns 0, INVALID_ARGUMENT, NOT_FOUND, MTCSEC_ERR_MIC (the
 * wrapped keys do not unwrap under this KEK or belong to another IMSI) or
 * STORE.  out is zeroized on error.
 */
int mtcsec_auc_store_get(mtcsec_auc_store *st, const char *imsi,
                         mtcsec_auc_sub *out, int with_keys);

/**
 * Sets SQN_HE of imsi (after issuing vectors or a resynchronisation).
 * Returns 0, INVALID_ARGUMENT, NOT_FOUND or STORE.
 */
int mtcsec_auc_store_set_sqn(mtcsec_auc_store *st, const char *imsi,
                             uint64_t sqn);

/**
 * Calls fn for every subscriber in IMSI order (keys not filled); stops when
 * fn returns nonzero and returns that value.  Returns 0 or STORE.
 */
int mtcsec_auc_store_list(mtcsec_auc_store *st,
                          int (*fn)(void *ud, const mtcsec_auc_sub *sub),
                          void *ud);

/** Nonzero if s (len bytes) is a valid IMSI: 6..15 decimal digits. */
int mtcsec_auc_imsi_valid(const char *s, size_t len);

/** Nonzero if s (len bytes) is a valid MSISDN: 1..15 decimal digits. */
int mtcsec_auc_msisdn_valid(const char *s, size_t len);

#endif /* MTCSEC_AUC_STORE_H */
