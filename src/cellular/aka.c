/*
 * UMTS AKA around MILENAGE: SQN freshness in the USIM (TS 33.102 Annex C.2),
 * the USIM's challenge check and AUTS (6.3.3), and vector generation and
 * resynchronisation at the AuC (6.3.2, 6.3.5).  The MILENAGE functions all
 * come from libosmocore (see milenage.c).
 */
#include <string.h>

#include <osmocom/crypt/auth.h>

#include <mtcsec/cellular.h>

#include "cellular/cellular_int.h"

/* The AMF assumed for MAC-S: all zeros (TS 33.102 6.3.3). */
static const uint8_t aka_amf_star[MTCSEC_3GPP_AMF_LEN] = {0, 0};

static unsigned sqn_bitlen(const mtcsec_sqn_ms *s) {
  return s->ind_bitlen > MTCSEC_SQN_MAX_IND_BITLEN ? MTCSEC_SQN_MAX_IND_BITLEN
                                                   : s->ind_bitlen;
}

int mtcsec_sqn_ms_init(mtcsec_sqn_ms *s, unsigned ind_bitlen) {
  if (s == NULL || ind_bitlen > MTCSEC_SQN_MAX_IND_BITLEN) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(s, 0, sizeof(*s));
  s->ind_bitlen = (uint8_t)ind_bitlen;
  return 0;
}

uint64_t mtcsec_sqn_ms_highest(const mtcsec_sqn_ms *s) {
  uint64_t hi = 0;
  size_t i, n;

  if (s == NULL) {
    return 0;
  }
  n = (size_t)1 << sqn_bitlen(s);
  for (i = 0; i < n; i++) {
    if (s->slot[i] > hi) {
      hi = s->slot[i];
    }
  }
  return hi;
}

mtcsec_sqn_verdict mtcsec_sqn_ms_check(const mtcsec_sqn_ms *s, uint64_t sqn) {
  unsigned b;
  uint64_t ind, seq, seq_i, seq_ms;

  if (s == NULL || sqn > MTCSEC_SQN_MAX) {
    return MTCSEC_SQN_OUT_OF_RANGE;
  }
  b = sqn_bitlen(s);
  ind = sqn & ((UINT64_C(1) << b) - 1);
  seq = sqn >> b;
  seq_i = s->slot[ind] >> b;
  seq_ms = mtcsec_sqn_ms_highest(s) >> b;

  /* C.2.1: fresh only if above the last SEQ accepted in this IND slot. */
  if (seq <= seq_i) {
    return MTCSEC_SQN_STALE;
  }
  /* C.2.2: and not too far above the highest SEQ accepted anywhere, so that
   * a (forged or buggy) huge SQN cannot exhaust the counter space. */
  if (seq > seq_ms && seq - seq_ms > MTCSEC_SQN_DELTA) {
    return MTCSEC_SQN_OUT_OF_RANGE;
  }
  return MTCSEC_SQN_FRESH;
}

void mtcsec_sqn_ms_accept(mtcsec_sqn_ms *s, uint64_t sqn) {
  unsigned b;

  if (s == NULL || sqn > MTCSEC_SQN_MAX) {
    return;
  }
  b = sqn_bitlen(s);
  s->slot[sqn & ((UINT64_C(1) << b) - 1)] = sqn;
}

int mtcsec_auts_gen(const uint8_t k[MTCSEC_3GPP_K_LEN],
                    const uint8_t opc[MTCSEC_3GPP_K_LEN],
                    const uint8_t rand[MTCSEC_3GPP_RAND_LEN], uint64_t sqn_ms,
                    uint8_t auts[MTCSEC_3GPP_AUTS_LEN]) {
  uint8_t sqnb[MTCSEC_3GPP_SQN_LEN];
  uint8_t ak_star[MTCSEC_3GPP_AK_LEN];
  size_t i;
  int rv = MTCSEC_ERR_CRYPTO;

  if (k == NULL || opc == NULL || rand == NULL || auts == NULL ||
      sqn_ms > MTCSEC_SQN_MAX) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  mtcsec_sqn_store(sqn_ms, sqnb);
  if (milenage_f2345(opc, k, rand, NULL, NULL, NULL, NULL, ak_star) != 0 ||
      milenage_f1(opc, k, rand, sqnb, aka_amf_star, NULL,
                  auts + MTCSEC_3GPP_SQN_LEN) != 0) {
    mtcsec_zeroize(auts, MTCSEC_3GPP_AUTS_LEN);
    goto cleanup;
  }
  for (i = 0; i < MTCSEC_3GPP_SQN_LEN; i++) {
    auts[i] = (uint8_t)(sqnb[i] ^ ak_star[i]);
  }
  rv = 0;

cleanup:
  mtcsec_zeroize(ak_star, sizeof(ak_star));
  return rv;
}

int mtcsec_auts_verify(const uint8_t k[MTCSEC_3GPP_K_LEN],
                       const uint8_t opc[MTCSEC_3GPP_K_LEN],
                       const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                       const uint8_t auts[MTCSEC_3GPP_AUTS_LEN],
                       uint64_t *sqn_ms) {
  uint8_t sqnb[MTCSEC_3GPP_SQN_LEN];
  uint8_t ak_star[MTCSEC_3GPP_AK_LEN];
  uint8_t mac_s[MTCSEC_3GPP_MAC_LEN];
  size_t i;
  int rv = MTCSEC_ERR_CRYPTO;

  if (k == NULL || opc == NULL || rand == NULL || auts == NULL ||
      sqn_ms == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (milenage_f2345(opc, k, rand, NULL, NULL, NULL, NULL, ak_star) != 0) {
    goto cleanup;
  }
  for (i = 0; i < MTCSEC_3GPP_SQN_LEN; i++) {
    sqnb[i] = (uint8_t)(auts[i] ^ ak_star[i]);
  }
  if (milenage_f1(opc, k, rand, sqnb, aka_amf_star, NULL, mac_s) != 0) {
    goto cleanup;
  }
  if (mtcsec_ct_memcmp(mac_s, auts + MTCSEC_3GPP_SQN_LEN, sizeof(mac_s)) != 0) {
    rv = MTCSEC_ERR_MIC;
    goto cleanup;
  }
  *sqn_ms = mtcsec_sqn_load(sqnb);
  rv = 0;

cleanup:
  mtcsec_zeroize(ak_star, sizeof(ak_star));
  mtcsec_zeroize(mac_s, sizeof(mac_s));
  return rv;
}

int mtcsec_aka_ms(const uint8_t k[MTCSEC_3GPP_K_LEN],
                  const uint8_t opc[MTCSEC_3GPP_K_LEN], mtcsec_sqn_ms *state,
                  const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                  const uint8_t autn[MTCSEC_3GPP_AUTN_LEN],
                  mtcsec_aka_result *res, uint8_t auts[MTCSEC_3GPP_AUTS_LEN],
                  mtcsec_sqn_verdict *verdict) {
  uint8_t ak[MTCSEC_3GPP_AK_LEN];
  uint8_t sqnb[MTCSEC_3GPP_SQN_LEN];
  uint8_t xmac[MTCSEC_3GPP_MAC_LEN];
  mtcsec_sqn_verdict v = MTCSEC_SQN_FRESH;
  uint64_t sqn;
  size_t i;
  int rv = MTCSEC_ERR_CRYPTO;

  if (verdict != NULL) {
    *verdict = MTCSEC_SQN_FRESH;
  }
  if (k == NULL || opc == NULL || state == NULL || rand == NULL ||
      autn == NULL || res == NULL || auts == NULL) {
    if (res != NULL) {
      mtcsec_zeroize(res, sizeof(*res));
    }
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(res, 0, sizeof(*res));

  /* AK = f5(K, RAND) unmasks SQN; then XMAC = f1(K, SQN, RAND, AMF). */
  if (milenage_f2345(opc, k, rand, res->res, res->ck, res->ik, ak, NULL) != 0) {
    goto cleanup;
  }
  for (i = 0; i < MTCSEC_3GPP_SQN_LEN; i++) {
    sqnb[i] = (uint8_t)(autn[i] ^ ak[i]);
  }
  if (milenage_f1(opc, k, rand, sqnb, autn + MTCSEC_3GPP_SQN_LEN, xmac, NULL) !=
      0) {
    goto cleanup;
  }
  if (mtcsec_ct_memcmp(xmac, autn + 8, sizeof(xmac)) != 0) {
    rv = MTCSEC_ERR_MIC; /* "MAC failure": no AUTS, no state change */
    goto cleanup;
  }

  /* Only an authentic challenge may trigger a resynchronisation. */
  sqn = mtcsec_sqn_load(sqnb);
  v = mtcsec_sqn_ms_check(state, sqn);
  if (verdict != NULL) {
    *verdict = v;
  }
  if (v != MTCSEC_SQN_FRESH) {
    /* C.2.1: AUTS carries the highest SQN accepted anywhere. */
    rv = mtcsec_auts_gen(k, opc, rand, mtcsec_sqn_ms_highest(state), auts);
    if (rv == 0) {
      rv = MTCSEC_ERR_REPLAY;
    }
    goto cleanup;
  }
  mtcsec_sqn_ms_accept(state, sqn);
  res->sqn = sqn;
  rv = 0;

cleanup:
  mtcsec_zeroize(ak, sizeof(ak));
  mtcsec_zeroize(xmac, sizeof(xmac));
  if (rv != 0) {
    mtcsec_zeroize(res, sizeof(*res));
  }
  return rv;
}

/* Fills the libosmocore subscriber data for one call (OPc, not OP). */
static void auc_aud(struct osmo_sub_auth_data *aud, const uint8_t *k,
                    const uint8_t *opc, const uint8_t *amf, uint64_t sqn_he,
                    unsigned ind_bitlen, unsigned ind) {
  memset(aud, 0, sizeof(*aud));
  aud->type = OSMO_AUTH_TYPE_UMTS;
  aud->algo = OSMO_AUTH_ALG_MILENAGE;
  memcpy(aud->u.umts.k, k, MTCSEC_3GPP_K_LEN);
  memcpy(aud->u.umts.opc, opc, MTCSEC_3GPP_K_LEN);
  aud->u.umts.opc_is_op = 0;
  memcpy(aud->u.umts.amf, amf, MTCSEC_3GPP_AMF_LEN);
  aud->u.umts.sqn = sqn_he;
  aud->u.umts.ind_bitlen = ind_bitlen;
  aud->u.umts.ind = ind;
}

/* Copies libosmocore's vector out; 0 or MTCSEC_ERR_CRYPTO. */
static int auc_vec_copy(mtcsec_aka_vector *vec,
                        const struct osmo_auth_vector *ov, const uint8_t *rand,
                        uint64_t sqn) {
  if (ov->res_len != MTCSEC_3GPP_RES_LEN) {
    return MTCSEC_ERR_CRYPTO;
  }
  memcpy(vec->rand, rand, MTCSEC_3GPP_RAND_LEN);
  memcpy(vec->xres, ov->res, MTCSEC_3GPP_RES_LEN);
  memcpy(vec->ck, ov->ck, MTCSEC_3GPP_CK_LEN);
  memcpy(vec->ik, ov->ik, MTCSEC_3GPP_IK_LEN);
  memcpy(vec->autn, ov->autn, MTCSEC_3GPP_AUTN_LEN);
  vec->sqn = sqn;
  return 0;
}

static int auc_args_ok(const uint8_t *k, const uint8_t *opc, const uint8_t *amf,
                       const uint64_t *sqn_he, unsigned ind_bitlen,
                       unsigned ind, const uint8_t *rand,
                       const mtcsec_aka_vector *vec) {
  return k != NULL && opc != NULL && amf != NULL && sqn_he != NULL &&
         rand != NULL && vec != NULL &&
         ind_bitlen <= MTCSEC_SQN_MAX_IND_BITLEN && ind < (1u << ind_bitlen) &&
         *sqn_he <= MTCSEC_SQN_MAX;
}

int mtcsec_auc_gen_vector(const uint8_t k[MTCSEC_3GPP_K_LEN],
                          const uint8_t opc[MTCSEC_3GPP_K_LEN],
                          const uint8_t amf[MTCSEC_3GPP_AMF_LEN],
                          uint64_t *sqn_he, unsigned ind_bitlen, unsigned ind,
                          const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                          mtcsec_aka_vector *vec) {
  struct osmo_sub_auth_data aud;
  struct osmo_auth_vector ov;
  uint64_t next;
  int rv = MTCSEC_ERR_CRYPTO;

  if (!auc_args_ok(k, opc, amf, sqn_he, ind_bitlen, ind, rand, vec)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* The SQN osmo_auth_gen_vec() will use: (SEQ_HE + 1) || ind. */
  if ((*sqn_he >> ind_bitlen) + 1 > (MTCSEC_SQN_MAX >> ind_bitlen)) {
    return MTCSEC_ERR_EXHAUSTED;
  }
  next = (((*sqn_he >> ind_bitlen) + 1) << ind_bitlen) | ind;

  memset(&ov, 0, sizeof(ov));
  auc_aud(&aud, k, opc, amf, *sqn_he, ind_bitlen, ind);
  if (osmo_auth_gen_vec(&ov, &aud, rand) != 0 || aud.u.umts.sqn != next) {
    goto cleanup;
  }
  rv = auc_vec_copy(vec, &ov, rand, next);
  if (rv == 0) {
    *sqn_he = next;
  }

cleanup:
  mtcsec_zeroize(&aud, sizeof(aud));
  mtcsec_zeroize(&ov, sizeof(ov));
  return rv;
}

int mtcsec_auc_resync(const uint8_t k[MTCSEC_3GPP_K_LEN],
                      const uint8_t opc[MTCSEC_3GPP_K_LEN],
                      const uint8_t amf[MTCSEC_3GPP_AMF_LEN], uint64_t *sqn_he,
                      unsigned ind_bitlen, unsigned ind,
                      const uint8_t rand_auts[MTCSEC_3GPP_RAND_LEN],
                      const uint8_t auts[MTCSEC_3GPP_AUTS_LEN],
                      const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                      mtcsec_aka_vector *vec, uint64_t *sqn_ms) {
  struct osmo_sub_auth_data aud;
  struct osmo_auth_vector ov;
  uint64_t ms, seq_he, seq_ms, next;
  int rv;

  if (!auc_args_ok(k, opc, amf, sqn_he, ind_bitlen, ind, rand, vec) ||
      rand_auts == NULL || auts == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* 6.3.5 step 4, done first and always (constant-time MAC-S compare). */
  rv = mtcsec_auts_verify(k, opc, rand_auts, auts, &ms);
  if (rv != 0) {
    return rv;
  }

  /* Steps 2-3: if the next SQN from SQN_HE would be accepted by a USIM whose
   * highest SQN is SQN_MS (C.2.1 and the Delta of C.2.2), keep SQN_HE. */
  seq_he = *sqn_he >> ind_bitlen;
  seq_ms = ms >> ind_bitlen;
  if (seq_he + 1 > seq_ms && seq_he + 1 - seq_ms <= MTCSEC_SQN_DELTA) {
    rv = mtcsec_auc_gen_vector(k, opc, amf, sqn_he, ind_bitlen, ind, rand, vec);
    if (rv == 0 && sqn_ms != NULL) {
      *sqn_ms = ms;
    }
    return rv;
  }

  /* Step 5: SQN_HE := SQN_MS, then a vector from there.  libosmocore
   * re-verifies AUTS and restarts from SQN_MS itself. */
  if (seq_ms + 1 > (MTCSEC_SQN_MAX >> ind_bitlen)) {
    return MTCSEC_ERR_EXHAUSTED;
  }
  next = ((seq_ms + 1) << ind_bitlen) | ind;
  rv = MTCSEC_ERR_CRYPTO;
  memset(&ov, 0, sizeof(ov));
  auc_aud(&aud, k, opc, amf, *sqn_he, ind_bitlen, ind);
  if (osmo_auth_gen_vec_auts(&ov, &aud, auts, rand_auts, rand) != 0 ||
      aud.u.umts.sqn_ms != ms || aud.u.umts.sqn != next) {
    goto cleanup;
  }
  rv = auc_vec_copy(vec, &ov, rand, next);
  if (rv == 0) {
    *sqn_he = next;
    if (sqn_ms != NULL) {
      *sqn_ms = ms;
    }
  }

cleanup:
  mtcsec_zeroize(&aud, sizeof(aud));
  mtcsec_zeroize(&ov, sizeof(ov));
  return rv;
}
