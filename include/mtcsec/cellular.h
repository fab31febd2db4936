/*
 * Cellular mode primitives (CELLULAR.md): the 3GPP building blocks of
 * handshake-free user-plane security for a cellular IoT device.
 *
 *  - MILENAGE (TS 35.205/35.206) f1, f1*, f2..f5, f5* and OPc, from
 *    libosmocore (osmo_auth_gen_vec and its milenage_* exports); mtcsec does
 *    not implement MILENAGE.
 *  - SQN management and AUTS resynchronisation (TS 33.102 6.3.3, 6.3.5 and
 *    Annex C), on the USIM/MS side and on the AuC side.
 *  - 128-EIA2 and 128-EEA2 (TS 33.401 Annex B) with bit-granular lengths.
 *  - The generic KDF of TS 33.220 Annex B.2, K_UP and the UL/DL record keys.
 *  - IMSI <-> TBCD (TS 29.002) and PLMN ID (TS 24.008 10.5.1.13).
 *  - GPRS LLC UI frames (TS 44.064) with the CRC-24 FCS or with the 4-byte
 *    MAC-I of proposal P1.
 *  - Protocol configuration options (TS 24.008 10.5.6.3) with mtcsec's
 *    operator-specific container 0xFF00 carrying RAND (proposal P5).
 *
 * Conventions of mtcsec.h hold: functions return 0 or a negative mtcsec_err
 * (mtcsec_ssize for writers); no function allocates, keeps a pointer to its
 * arguments after returning, or touches a clock, file or socket.  Pointers
 * may not be NULL unless the comment says so (a NULL where one is required
 * gives MTCSEC_ERR_INVALID_ARGUMENT).  Fixed-size arrays are typed with
 * their size.  Secrets that pass through the stack are zeroized.  Every
 * function here may be called from inside any mtcsec callback: none of them
 * holds state besides what the caller passes.
 *
 * Functions that take a provider (mtcsec_crypto) need its mac op; EEA2 also
 * needs aes_ctr and bit-granular EIA2 needs aes_block.  A provider that lacks
 * an op the call needs gives MTCSEC_ERR_INVALID_ARGUMENT.
 */
#ifndef MTCSEC_CELLULAR_H
#define MTCSEC_CELLULAR_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ sizes */

#define MTCSEC_3GPP_K_LEN 16    /* K, OP, OPc */
#define MTCSEC_3GPP_RAND_LEN 16 /* RAND */
#define MTCSEC_3GPP_SQN_LEN 6   /* SQN (48 bits) */
#define MTCSEC_3GPP_AMF_LEN 2   /* AMF */
#define MTCSEC_3GPP_MAC_LEN 8   /* f1 = MAC-A, f1* = MAC-S */
#define MTCSEC_3GPP_RES_LEN 8   /* f2 = RES (64 bits in MILENAGE) */
#define MTCSEC_3GPP_CK_LEN 16   /* f3 = CK */
#define MTCSEC_3GPP_IK_LEN 16   /* f4 = IK */
#define MTCSEC_3GPP_AK_LEN 6    /* f5 = AK, f5* = AK for resync */
#define MTCSEC_3GPP_AUTN_LEN 16 /* (SQN ^ AK) || AMF || MAC-A */
#define MTCSEC_3GPP_AUTS_LEN 14 /* (SQN_MS ^ AK*) || MAC-S */
/** Largest SQN (48 bits). */
#define MTCSEC_SQN_MAX UINT64_C(0xffffffffffff)

/* ---------------------------------------------------------------- MILENAGE */

/** Every output of MILENAGE for one (K, OPc, RAND, SQN, AMF). */
typedef struct mtcsec_milenage_out {
  uint8_t opc[MTCSEC_3GPP_K_LEN];      /* OPc (copied or derived from OP) */
  uint8_t f1[MTCSEC_3GPP_MAC_LEN];     /* MAC-A */
  uint8_t f1star[MTCSEC_3GPP_MAC_LEN]; /* MAC-S */
  uint8_t f2[MTCSEC_3GPP_RES_LEN];     /* RES / XRES */
  uint8_t f3[MTCSEC_3GPP_CK_LEN];      /* CK */
  uint8_t f4[MTCSEC_3GPP_IK_LEN];      /* IK */
  uint8_t f5[MTCSEC_3GPP_AK_LEN];      /* AK */
  uint8_t f5star[MTCSEC_3GPP_AK_LEN];  /* AK* (resynchronisation) */
  uint8_t autn[MTCSEC_3GPP_AUTN_LEN];  /* (SQN ^ AK) || AMF || MAC-A */
} mtcsec_milenage_out;

/**
 * Computes every MILENAGE function for one challenge, as the test sets of
 * TS 35.207/35.208 list them.  Exactly one of op and opc is non-NULL: with
 * op, OPc = E_K(OP) ^ OP is derived; with opc it is used as is.  sqn is the
 * SQN used in this challenge (not the "previous SQN" that libosmocore's
 * struct takes: the conversion is done here), at most MTCSEC_SQN_MAX.
 *
 * The vector (f1, f2..f5, AUTN) comes from osmo_auth_gen_vec(); f1*, f5* and
 * OPc from libosmocore's milenage_f1/milenage_f2345/milenage_opc_gen, and
 * the two computations are cross-checked.  out is zeroized on failure; it
 * holds secrets: zeroize it when done.
 *
 * Returns 0, MTCSEC_ERR_INVALID_ARGUMENT or MTCSEC_ERR_CRYPTO (libosmocore
 * failed or the two computations disagree).
 */
int mtcsec_milenage(const uint8_t k[MTCSEC_3GPP_K_LEN], const uint8_t *op,
                    const uint8_t *opc,
                    const uint8_t rand[MTCSEC_3GPP_RAND_LEN], uint64_t sqn,
                    const uint8_t amf[MTCSEC_3GPP_AMF_LEN],
                    mtcsec_milenage_out *out);

/**
 * OPc = E_K(OP) ^ OP (TS 35.206 4.1), through libosmocore.  Returns 0,
 * INVALID_ARGUMENT or CRYPTO.
 */
int mtcsec_milenage_opc(const uint8_t k[MTCSEC_3GPP_K_LEN],
                        const uint8_t op[MTCSEC_3GPP_K_LEN],
                        uint8_t opc[MTCSEC_3GPP_K_LEN]);

/** Reads a 48-bit big-endian SQN. */
uint64_t mtcsec_sqn_load(const uint8_t in[MTCSEC_3GPP_SQN_LEN]);

/** Writes the low 48 bits of sqn big-endian. */
void mtcsec_sqn_store(uint64_t sqn, uint8_t out[MTCSEC_3GPP_SQN_LEN]);

/* ------------------------------------------------- SQN (TS 33.102 Annex C) */

/**
 * SQN = SEQ || IND, IND being the ind_bitlen least significant bits.  We
 * support ind_bitlen 0..5 (TS 33.102 C.1.2 suggests 5, osmo-hlr's default).
 */
#define MTCSEC_SQN_MAX_IND_BITLEN 5
#define MTCSEC_SQN_MAX_SLOTS (1u << MTCSEC_SQN_MAX_IND_BITLEN)
/** Delta of TS 33.102 C.2.2: a SEQ more than 2^28 above SEQ_MS is refused. */
#define MTCSEC_SQN_DELTA (UINT64_C(1) << 28)

/**
 * The USIM's freshness state (TS 33.102 C.2.1): the array SQN_MS(i) of the
 * last SQN accepted in each IND slot, initially all zero.  Plain data: the
 * device persists it.  Fields are private by convention.
 */
typedef struct mtcsec_sqn_ms {
  uint8_t ind_bitlen;
  uint64_t slot[MTCSEC_SQN_MAX_SLOTS];
} mtcsec_sqn_ms;

/** Verdict of mtcsec_sqn_ms_check(). */
typedef enum mtcsec_sqn_verdict {
  MTCSEC_SQN_FRESH = 0,       /* SEQ > SEQ_MS(IND) and within Delta */
  MTCSEC_SQN_STALE = 1,       /* SEQ <= SEQ_MS(IND): replayed or old */
  MTCSEC_SQN_OUT_OF_RANGE = 2 /* SEQ - SEQ_MS > Delta (C.2.2 wrap guard) */
} mtcsec_sqn_verdict;

/**
 * Empties s with ind_bitlen (0..MTCSEC_SQN_MAX_IND_BITLEN).  Returns 0 or
 * INVALID_ARGUMENT.
 */
int mtcsec_sqn_ms_init(mtcsec_sqn_ms *s, unsigned ind_bitlen);

/** SQN_MS: the highest SQN accepted in any slot (0 when empty). */
uint64_t mtcsec_sqn_ms_highest(const mtcsec_sqn_ms *s);

/**
 * Checks sqn (at most MTCSEC_SQN_MAX) against s per TS 33.102 C.2.1/C.2.2
 * without changing s.  The optional age limit L of C.2.3 is not applied.
 */
mtcsec_sqn_verdict mtcsec_sqn_ms_check(const mtcsec_sqn_ms *s, uint64_t sqn);

/** Records sqn as accepted (SQN_MS(IND) := sqn).  Call only after FRESH. */
void mtcsec_sqn_ms_accept(mtcsec_sqn_ms *s, uint64_t sqn);

/* --------------------------------------------------------- AKA, MS side */

/** What a successful AKA gives the MS. */
typedef struct mtcsec_aka_result {
  uint8_t res[MTCSEC_3GPP_RES_LEN];
  uint8_t ck[MTCSEC_3GPP_CK_LEN];
  uint8_t ik[MTCSEC_3GPP_IK_LEN];
  uint64_t sqn; /* the SQN of the challenge, now accepted */
} mtcsec_aka_result;

/**
 * The USIM's part of UMTS AKA (TS 33.102 6.3.3): recovers SQN from AUTN with
 * AK = f5(RAND), checks MAC-A = f1(SQN, RAND, AMF of AUTN), then SQN
 * freshness against state.
 *
 * Returns:
 *  - 0: accepted; res is filled and state updated (SQN_MS(IND) := SQN).
 *  - MTCSEC_ERR_MIC: MAC-A does not verify ("MAC failure"); nothing changes,
 *    nothing is written to auts.
 *  - MTCSEC_ERR_REPLAY: synchronisation failure; auts holds
 *    (SQN_MS ^ f5*(RAND)) || f1*(SQN_MS, RAND, AMF = 0x0000) to send back,
 *    state is unchanged.  If verdict is not NULL it receives
 *    MTCSEC_SQN_STALE or MTCSEC_SQN_OUT_OF_RANGE (MTCSEC_SQN_FRESH otherwise).
 *  - INVALID_ARGUMENT or CRYPTO.
 * res is zeroized on every failure.
 */
int mtcsec_aka_ms(const uint8_t k[MTCSEC_3GPP_K_LEN],
                  const uint8_t opc[MTCSEC_3GPP_K_LEN], mtcsec_sqn_ms *state,
                  const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                  const uint8_t autn[MTCSEC_3GPP_AUTN_LEN],
                  mtcsec_aka_result *res, uint8_t auts[MTCSEC_3GPP_AUTS_LEN],
                  mtcsec_sqn_verdict *verdict);

/**
 * AUTS = (SQN_MS ^ f5*(K, RAND)) || f1*(K, SQN_MS, RAND, AMF = 0x0000)
 * (TS 33.102 6.3.3), rand being the RAND of the rejected challenge.
 * Returns 0, INVALID_ARGUMENT (sqn_ms > MTCSEC_SQN_MAX) or CRYPTO.
 */
int mtcsec_auts_gen(const uint8_t k[MTCSEC_3GPP_K_LEN],
                    const uint8_t opc[MTCSEC_3GPP_K_LEN],
                    const uint8_t rand[MTCSEC_3GPP_RAND_LEN], uint64_t sqn_ms,
                    uint8_t auts[MTCSEC_3GPP_AUTS_LEN]);

/* -------------------------------------------------------- AKA, AuC side */

/** An authentication vector (quintuplet) as the AuC issues it. */
typedef struct mtcsec_aka_vector {
  uint8_t rand[MTCSEC_3GPP_RAND_LEN];
  uint8_t xres[MTCSEC_3GPP_RES_LEN];
  uint8_t ck[MTCSEC_3GPP_CK_LEN];
  uint8_t ik[MTCSEC_3GPP_IK_LEN];
  uint8_t autn[MTCSEC_3GPP_AUTN_LEN];
  uint64_t sqn; /* SQN inside AUTN */
} mtcsec_aka_vector;

/**
 * Verifies AUTS (TS 33.102 6.3.5 step 4) for the challenge RAND rand and
 * recovers SQN_MS into *sqn_ms.  The MAC-S comparison is constant-time.
 * Returns 0, MTCSEC_ERR_MIC (AUTS does not verify; *sqn_ms untouched),
 * INVALID_ARGUMENT or CRYPTO.
 */
int mtcsec_auts_verify(const uint8_t k[MTCSEC_3GPP_K_LEN],
                       const uint8_t opc[MTCSEC_3GPP_K_LEN],
                       const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                       const uint8_t auts[MTCSEC_3GPP_AUTS_LEN],
                       uint64_t *sqn_ms);

/**
 * Generates one vector with osmo_auth_gen_vec().  *sqn_he is SQN_HE, the last
 * SQN used for this subscriber (0 for a new one); the new SQN is
 * (SEQ_HE + 1) || ind, i.e. ((*sqn_he >> ind_bitlen) + 1) << ind_bitlen | ind,
 * and is written back to *sqn_he on success only.  ind_bitlen is
 * 0..MTCSEC_SQN_MAX_IND_BITLEN and ind < 2^ind_bitlen.  rand (the caller
 * draws it from the provider's random op) is copied into vec.
 *
 * Returns 0, INVALID_ARGUMENT, MTCSEC_ERR_EXHAUSTED (SEQ would pass 48 bits)
 * or CRYPTO.  vec holds secrets: zeroize it when done.
 */
int mtcsec_auc_gen_vector(const uint8_t k[MTCSEC_3GPP_K_LEN],
                          const uint8_t opc[MTCSEC_3GPP_K_LEN],
                          const uint8_t amf[MTCSEC_3GPP_AMF_LEN],
                          uint64_t *sqn_he, unsigned ind_bitlen, unsigned ind,
                          const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                          mtcsec_aka_vector *vec);

/**
 * Resynchronisation at the AuC (TS 33.102 6.3.5) and a fresh vector for the
 * new challenge rand.  rand_auts is the RAND of the challenge the USIM
 * rejected, auts what it answered.  AUTS is always verified first (we verify
 * even where 6.3.5 allows skipping it, so a forged AUTS changes nothing).
 * Then, as 6.3.5 steps 2-5 say, SQN_HE is kept when the next SQN generated
 * from it would be accepted by a USIM whose highest SQN is SQN_MS, and is
 * reset to SQN_MS otherwise (this is where we differ from
 * osmo_auth_gen_vec_auts(), which always resets).  The vector then comes from
 * osmo_auth_gen_vec_auts() or osmo_auth_gen_vec().  On success *sqn_he is the
 * SQN of the new vector and, if sqn_ms is not NULL, *sqn_ms the SQN_MS that
 * AUTS carried.
 *
 * Returns 0, MTCSEC_ERR_MIC (AUTS does not verify: nothing changes),
 * INVALID_ARGUMENT, EXHAUSTED or CRYPTO.
 */
int mtcsec_auc_resync(const uint8_t k[MTCSEC_3GPP_K_LEN],
                      const uint8_t opc[MTCSEC_3GPP_K_LEN],
                      const uint8_t amf[MTCSEC_3GPP_AMF_LEN], uint64_t *sqn_he,
                      unsigned ind_bitlen, unsigned ind,
                      const uint8_t rand_auts[MTCSEC_3GPP_RAND_LEN],
                      const uint8_t auts[MTCSEC_3GPP_AUTS_LEN],
                      const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                      mtcsec_aka_vector *vec, uint64_t *sqn_ms);

/* ------------------------------------------------- 128-EIA2 and 128-EEA2 */

#define MTCSEC_EIA2_KEY_LEN 16
#define MTCSEC_EIA2_MAC_LEN 4
/** Largest BEARER (5 bits). */
#define MTCSEC_3GPP_BEARER_MAX 31
/** DIRECTION values (TS 33.401 B.1/B.2). */
#define MTCSEC_3GPP_UPLINK 0
#define MTCSEC_3GPP_DOWNLINK 1

/**
 * 128-EIA2 (TS 33.401 B.2.3): AES-CMAC over
 * COUNT(32) || BEARER(5) || DIRECTION(1) || 0^26 || MESSAGE(bitlen bits),
 * MAC-I = the first 32 bits.  msg holds ceil(bitlen / 8) bytes, left-aligned
 * (the bits past bitlen in its last byte are ignored); msg may be NULL when
 * bitlen is 0.  bearer <= 31, direction 0 or 1.
 *
 * The provider's mac op computes the CMAC; when bitlen is not a multiple of
 * 8 the provider's aes_block op is also needed (see eia2.c for the
 * bit-string adaptation).
 *
 * Returns 0, INVALID_ARGUMENT or the provider's error.
 */
int mtcsec_eia2(const mtcsec_crypto *crypto,
                const uint8_t key[MTCSEC_EIA2_KEY_LEN], uint32_t count,
                uint8_t bearer, uint8_t direction, const uint8_t *msg,
                size_t bitlen, uint8_t mac_i[MTCSEC_EIA2_MAC_LEN]);

/**
 * 128-EEA2 (TS 33.401 B.1.3): AES-128-CTR with the initial counter block
 * COUNT || BEARER || DIRECTION || 0^26 || 0^64, through the provider's
 * aes_ctr op.  Encryption and decryption are the same.  in and out hold
 * ceil(bitlen / 8) bytes (left-aligned) and may be equal; other overlap is
 * not allowed.  The bits of out past bitlen are set to zero.  in and out may
 * be NULL when bitlen is 0.
 *
 * Returns 0, INVALID_ARGUMENT or the provider's error.
 */
int mtcsec_eea2(const mtcsec_crypto *crypto,
                const uint8_t key[MTCSEC_EIA2_KEY_LEN], uint32_t count,
                uint8_t bearer, uint8_t direction, const uint8_t *in,
                size_t bitlen, uint8_t *out);

/* --------------------------------------------------- TS 33.220 KDF, K_UP */

/** Output length of the TS 33.220 KDF (HMAC-SHA-256). */
#define MTCSEC_KDF_33220_LEN 32
/** Most parameters P0..Pn one call takes. */
#define MTCSEC_KDF_33220_MAX_PARAMS 8

/**
 * The generic KDF of TS 33.220 Annex B.2:
 *   out = HMAC-SHA-256(key, FC || P0 || L0 || P1 || L1 || ... || Pn || Ln)
 * with Li the length of Pi in bytes as 2 bytes big-endian, through the
 * provider's mac op.  params[i].base may be NULL only when params[i].len is
 * 0; each len must be at most 65535; nparams is 0..MTCSEC_KDF_33220_MAX_PARAMS
 * (params may be NULL when it is 0).  A 128-bit key is the last 16 bytes of
 * out (TS 33.401 A.7).
 *
 * Returns 0, INVALID_ARGUMENT or the provider's error.
 */
int mtcsec_kdf_33220(const mtcsec_crypto *crypto, const uint8_t *key,
                     size_t keylen, uint8_t fc, const mtcsec_iov *params,
                     size_t nparams, uint8_t out[MTCSEC_KDF_33220_LEN]);

/** FC of K_UP (CELLULAR.md; no FC value is allocated by 3GPP for it). */
#define MTCSEC_KUP_FC 0x70
/** P0 of K_UP, ASCII without terminator. */
#define MTCSEC_KUP_P0 "mtcsec-up"
#define MTCSEC_KUP_LEN 16

/**
 * K_UP (CELLULAR.md, "Fixed choices"): the last 16 bytes of
 *   KDF_33220(CK || IK, FC = 0x70, P0 = "mtcsec-up", P1 = server_id,
 *             P2 = RAND).
 * Binding server_id (MTCSEC_ID_LEN bytes) makes one server's key useless to
 * another.  Returns 0, INVALID_ARGUMENT or the provider's error.
 */
int mtcsec_kup_derive(const mtcsec_crypto *crypto,
                      const uint8_t ck[MTCSEC_3GPP_CK_LEN],
                      const uint8_t ik[MTCSEC_3GPP_IK_LEN],
                      const uint8_t server_id[MTCSEC_ID_LEN],
                      const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                      uint8_t kup[MTCSEC_KUP_LEN]);

/** Length of an IMSI as 8 bytes of TBCD (TS 29.002, as GSUP carries it). */
#define MTCSEC_IMSI_TBCD_LEN 8

/** The four values that protect application payloads under K_UP (P6). */
typedef struct mtcsec_up_keys {
  uint8_t ul_key[MTCSEC_KUP_LEN]; /* MS -> server */
  uint8_t ul_iv[MTCSEC_IV_LEN];
  uint8_t dl_key[MTCSEC_KUP_LEN]; /* server -> MS */
  uint8_t dl_iv[MTCSEC_IV_LEN];
} mtcsec_up_keys;

/**
 * The uplink and downlink AES-128-CCM keys and 13-byte IVs of CELLULAR.md:
 * mtcsec_kdf() with AES-128-CMAC (suite 0x01's PRF), key K_UP, labels
 * "mtcsec up ul key", "mtcsec up ul iv", "mtcsec up dl key",
 * "mtcsec up dl iv", context = the IMSI as 8 bytes TBCD
 * (mtcsec_imsi_to_tbcd()); keys are 16 bytes, IVs 13 (L = 104).  keys is
 * zeroized on failure.
 * Returns 0, INVALID_ARGUMENT or the provider's error.
 */
int mtcsec_up_keys_derive(const mtcsec_crypto *crypto,
                          const uint8_t kup[MTCSEC_KUP_LEN],
                          const uint8_t imsi_tbcd[MTCSEC_IMSI_TBCD_LEN],
                          mtcsec_up_keys *keys);

/* ------------------------------------------------------ IMSI, PLMN (TBCD) */

#define MTCSEC_IMSI_MIN_DIGITS 6
#define MTCSEC_IMSI_MAX_DIGITS 15

/**
 * Encodes an IMSI of imsilen decimal digits (6..15; imsi need not be
 * NUL-terminated) as 8 bytes of TBCD: digit 1 in the low nibble of byte 0,
 * digit 2 in its high nibble, and so on; unused nibbles are 0xF.
 * Returns 0 or INVALID_ARGUMENT (length, non-digit).
 */
int mtcsec_imsi_to_tbcd(const char *imsi, size_t imsilen,
                        uint8_t tbcd[MTCSEC_IMSI_TBCD_LEN]);

/**
 * Decodes 8 bytes of TBCD into dest as a NUL-terminated string of digits
 * (destlen >= digits + 1; 16 always suffices).  The digits end at the first
 * 0xF nibble; every nibble after it must be 0xF.  Returns the number of
 * digits, MTCSEC_ERR_MALFORMED (nibble 0xA..0xE, filler not at the end,
 * fewer than 6 or more than 15 digits) or NOBUF.
 */
mtcsec_ssize mtcsec_imsi_from_tbcd(const uint8_t tbcd[MTCSEC_IMSI_TBCD_LEN],
                                   char *dest, size_t destlen);

#define MTCSEC_PLMN_LEN 3

/** A PLMN identity: MCC and MNC as numbers; mnc_digits is 2 or 3. */
typedef struct mtcsec_plmn {
  uint16_t mcc;
  uint16_t mnc;
  uint8_t mnc_digits;
} mtcsec_plmn;

/**
 * PLMN identity in the 3-byte layout of TS 24.008 10.5.1.13 (MCC 001,
 * MNC 01 -> 00 f1 10).  Returns 0 or INVALID_ARGUMENT (mcc > 999,
 * mnc_digits not 2 or 3, mnc too large for mnc_digits).
 */
int mtcsec_plmn_encode(const mtcsec_plmn *plmn, uint8_t out[MTCSEC_PLMN_LEN]);

/**
 * Decodes the 3-byte PLMN identity.  Returns 0 or MTCSEC_ERR_MALFORMED (a
 * digit nibble above 9; MNC digit 3 may be 0xF).
 */
int mtcsec_plmn_decode(const uint8_t in[MTCSEC_PLMN_LEN], mtcsec_plmn *plmn);

/* ------------------------------------------------------------- GPRS LLC */

#define MTCSEC_LLC_FCS_LEN 3
#define MTCSEC_LLC_MACI_LEN 4
/** Address (1) + UI control field (2). */
#define MTCSEC_LLC_UI_HDR_LEN 3
/** Information octets the FCS covers in a UI frame with PM = 0. */
#define MTCSEC_LLC_N202 4
/** Largest N(U) (9 bits). */
#define MTCSEC_LLC_NU_MAX 511
/** Largest information field we accept (N201-U maximum, TS 44.064 8.9). */
#define MTCSEC_LLC_MAX_INFO 1520

/** SAPIs of TS 44.064 6.2.3 (the other values are reserved). */
enum {
  MTCSEC_LLC_SAPI_LLGMM = 1,
  MTCSEC_LLC_SAPI_TOM2 = 2,
  MTCSEC_LLC_SAPI_LL3 = 3,
  MTCSEC_LLC_SAPI_LL5 = 5,
  MTCSEC_LLC_SAPI_LLSMS = 7,
  MTCSEC_LLC_SAPI_TOM8 = 8,
  MTCSEC_LLC_SAPI_LL9 = 9,
  MTCSEC_LLC_SAPI_LL11 = 11
};

/** What ends the frame: which one is used is subscriber policy (P3). */
typedef enum mtcsec_llc_check {
  MTCSEC_LLC_CHECK_FCS = 0, /* 3-byte CRC-24, least significant octet first */
  MTCSEC_LLC_CHECK_MACI = 1 /* 4-byte 128-EIA2 MAC-I keyed with IK (P1) */
} mtcsec_llc_check;

/**
 * A UI frame (TS 44.064 6.3.5.2): address octet (PD = 0, C/R, SAPI) and the
 * two control octets 110x xNNN NNNN NNEP.  On decode, info points into the
 * caller's frame buffer.
 */
typedef struct mtcsec_llc_ui {
  uint8_t sapi; /* 1..11, not reserved */
  uint8_t cr;   /* C/R bit, 0 or 1 */
  uint16_t nu;  /* N(U), 0..511 */
  uint8_t e;    /* E bit: information field ciphered (0 or 1) */
  uint8_t pm;   /* PM bit: FCS covers the whole information field (0 or 1) */
  const uint8_t *info;
  size_t infolen; /* <= MTCSEC_LLC_MAX_INFO; info may be NULL when 0 */
} mtcsec_llc_ui;

/**
 * Per-SAPI 32-bit frame counter of P1: overflow * 512 + N(U).  overflow is
 * taken modulo 2^23.
 */
uint32_t mtcsec_llc_count(uint32_t overflow, uint16_t nu);

/**
 * CRC-24 FCS value of TS 44.064 5.5.1 over len bytes (reflected polynomial
 * 0xAD85DD, initial value and final XOR 0xFFFFFF).  On the wire the value is
 * sent least significant octet first.  data may be NULL when len is 0.
 */
uint32_t mtcsec_llc_crc24(const uint8_t *data, size_t len);

/**
 * How many leading octets of frame (with its 3-byte FCS, len bytes) the FCS
 * covers: everything before the FCS, except UI frames with PM = 0, where it
 * is the header and the first N202 information octets (TS 44.064 5.5.1).
 * Works on every frame format (I, S, UI, U).  Returns the count or
 * MTCSEC_ERR_MALFORMED (too short for its format, PD bit set).
 */
mtcsec_ssize mtcsec_llc_fcs_coverage(const uint8_t *frame, size_t len);

/**
 * Checks the FCS of any LLC frame (with its 3-byte FCS).  If fcs_calc is not
 * NULL it receives the FCS value computed over the covered octets (also when
 * the check fails).  Returns 0, MTCSEC_ERR_MALFORMED (see
 * mtcsec_llc_fcs_coverage()) or MTCSEC_ERR_MIC (the FCS does not match).
 */
int mtcsec_llc_fcs_verify(const uint8_t *frame, size_t len, uint32_t *fcs_calc);

/**
 * Encodes ui as a frame with a 3-byte FCS at dest: 3 + infolen + 3 bytes.
 * Returns the length, INVALID_ARGUMENT (field out of range, reserved SAPI) or
 * NOBUF.
 */
mtcsec_ssize mtcsec_llc_ui_encode_fcs(const mtcsec_llc_ui *ui, uint8_t *dest,
                                      size_t destlen);

/**
 * Decodes a UI frame that ends with a 3-byte FCS and checks the FCS.  ui->info
 * points into frame.  Returns 0, MTCSEC_ERR_MALFORMED (truncated, not a UI
 * frame, PD set, reserved SAPI, information field too long) or
 * MTCSEC_ERR_MIC (bad FCS).  ui is only written on success.
 */
int mtcsec_llc_ui_decode_fcs(mtcsec_llc_ui *ui, const uint8_t *frame,
                             size_t len);

/**
 * Encodes ui as a P1 frame at dest: 3 + infolen + 4 bytes, the last 4 being
 * MAC-I = 128-EIA2(IK, COUNT = mtcsec_llc_count(overflow, ui->nu),
 * BEARER = SAPI, DIRECTION = direction, address || control || information).
 * The MAC always covers the whole frame; the PM bit is carried as given.
 * Returns the length, INVALID_ARGUMENT, NOBUF or the provider's error.
 */
mtcsec_ssize mtcsec_llc_ui_encode_mac(const mtcsec_crypto *crypto,
                                      const uint8_t ik[MTCSEC_EIA2_KEY_LEN],
                                      uint32_t overflow, uint8_t direction,
                                      const mtcsec_llc_ui *ui, uint8_t *dest,
                                      size_t destlen);

/**
 * Decodes a P1 frame and verifies its MAC-I (constant-time compare) with
 * COUNT = mtcsec_llc_count(overflow, N(U) of the frame).  The caller chooses
 * overflow (its per-SAPI receive state) and keeps any replay state: on
 * success, N(U) is in ui->nu.  ui is only written on success.
 * Returns 0, MTCSEC_ERR_MALFORMED, MTCSEC_ERR_MIC (discard and count the
 * frame), INVALID_ARGUMENT or the provider's error.
 */
int mtcsec_llc_ui_decode_mac(const mtcsec_crypto *crypto,
                             const uint8_t ik[MTCSEC_EIA2_KEY_LEN],
                             uint32_t overflow, uint8_t direction,
                             mtcsec_llc_ui *ui, const uint8_t *frame,
                             size_t len);

/* -------------------------------------------- PCO (TS 24.008 10.5.6.3) */

/** IEI of the PCO in SM messages (Activate PDP Context Request...). */
#define MTCSEC_PCO_IEI 0x27
/** GTPv1-C information element type of the PCO (TS 29.060 7.7.31). */
#define MTCSEC_PCO_GTP_IE 0x84
/** Largest PCO value (octet 3 onwards): the NAS length octet is <= 253. */
#define MTCSEC_PCO_MAX_LEN 253
/** Most units a PCO of MTCSEC_PCO_MAX_LEN can hold (3 bytes each). */
#define MTCSEC_PCO_MAX_UNITS 84
/** Operator-specific container carrying mtcsec's RAND (CELLULAR.md). */
#define MTCSEC_PCO_CID_MTCSEC 0xff00
/** Version octet of that container's layout. */
#define MTCSEC_PCO_RAND_VERSION 0x01
/** PLMN(3) || version(1) || RAND(16). */
#define MTCSEC_PCO_RAND_LEN 20

/** How the PCO is framed on the wire. */
typedef enum mtcsec_pco_framing {
  /** The value only: octet 3 and the units (length known from outside). */
  MTCSEC_PCO_BARE = 0,
  /** NAS type 4 TLV: IEI 0x27, length(1), value. */
  MTCSEC_PCO_NAS = 1,
  /** GTPv1-C TLV: type 132 (0x84), length(2, big-endian), value. */
  MTCSEC_PCO_GTP = 2
} mtcsec_pco_framing;

/** One configuration protocol option or container. */
typedef struct mtcsec_pco_unit {
  uint16_t id;
  uint8_t len;
  const uint8_t *contents; /* may be NULL when len is 0 */
} mtcsec_pco_unit;

/**
 * A decoded or to-be-encoded PCO.  On decode, contents point into the
 * caller's buffer.
 */
typedef struct mtcsec_pco {
  uint8_t config_protocol; /* 3 bits; 0 = PPP for IP PDP/PDN type */
  size_t nunits;
  mtcsec_pco_unit units[MTCSEC_PCO_MAX_UNITS];
} mtcsec_pco;

/**
 * Encodes pco with framing at dest.  Octet 3 is 0x80 | config_protocol.
 * Returns the length, INVALID_ARGUMENT (config_protocol > 7, nunits too
 * large, NULL contents with len > 0, value longer than MTCSEC_PCO_MAX_LEN)
 * or NOBUF.
 */
mtcsec_ssize mtcsec_pco_encode(const mtcsec_pco *pco,
                               mtcsec_pco_framing framing, uint8_t *dest,
                               size_t destlen);

/**
 * Decodes a PCO framed with framing from the start of in.  For MTCSEC_PCO_NAS
 * and MTCSEC_PCO_GTP the length field says where the IE ends and bytes after
 * it are left alone (they belong to the next IE); MTCSEC_PCO_BARE consumes
 * all of in.  The extension bit and spare bits of octet 3 are not checked
 * (TS 24.008: other configuration protocols are read as PPP).
 * Returns the number of bytes consumed or MTCSEC_ERR_MALFORMED (wrong
 * IEI/type, length field past inlen, empty or longer than 253, truncated
 * unit).  pco is only written on success.
 */
mtcsec_ssize mtcsec_pco_decode(mtcsec_pco *pco, mtcsec_pco_framing framing,
                               const uint8_t *in, size_t inlen);

/**
 * Fills out (MTCSEC_PCO_RAND_LEN bytes) with the contents of mtcsec's
 * container 0xFF00: PLMN ID (3, TS 24.008 10.5.1.13) || 0x01 || RAND.
 * Returns 0 or INVALID_ARGUMENT.
 */
int mtcsec_pco_rand_encode(const uint8_t plmn[MTCSEC_PLMN_LEN],
                           const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                           uint8_t out[MTCSEC_PCO_RAND_LEN]);

/**
 * Parses the contents of one 0xFF00 container as mtcsec's layout.  Returns 0,
 * MTCSEC_ERR_MALFORMED (length is not 20, bad PLMN digits) or
 * MTCSEC_ERR_UNSUPPORTED (version octet is not 0x01).  plmn and rand are
 * only written on success.
 */
int mtcsec_pco_rand_decode(const uint8_t *contents, size_t len,
                           uint8_t plmn[MTCSEC_PLMN_LEN],
                           uint8_t rand[MTCSEC_3GPP_RAND_LEN]);

/**
 * Finds mtcsec's RAND in a decoded PCO: the first container 0xFF00 that
 * mtcsec_pco_rand_decode() accepts and, if want_plmn is not NULL, whose PLMN
 * equals want_plmn (other operators may use 0xFF00 too; such containers are
 * skipped).  plmn may be NULL.  Returns 0, MTCSEC_ERR_NOT_FOUND or
 * INVALID_ARGUMENT.
 */
int mtcsec_pco_find_rand(const mtcsec_pco *pco, const uint8_t *want_plmn,
                         uint8_t *plmn, uint8_t rand[MTCSEC_3GPP_RAND_LEN]);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_CELLULAR_H */
