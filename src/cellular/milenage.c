/*
 * MILENAGE (TS 35.205/35.206) through libosmocore.  mtcsec does not
 * implement MILENAGE: the vector comes from osmo_auth_gen_vec(), the way
 * osmo-hlr builds it, and f1*, f5* and OPc, which that call does not
 * return, from the milenage_* functions libosmogsm exports.
 */
#include <string.h>

#include <osmocom/crypt/auth.h>

#include <mtcsec/cellular.h>

#include "cellular/cellular_int.h"

uint64_t mtcsec_sqn_load(const uint8_t in[MTCSEC_3GPP_SQN_LEN]) {
  uint64_t v = 0;
  size_t i;

  for (i = 0; i < MTCSEC_3GPP_SQN_LEN; i++) {
    v = (v << 8) | in[i];
  }
  return v;
}

void mtcsec_sqn_store(uint64_t sqn, uint8_t out[MTCSEC_3GPP_SQN_LEN]) {
  size_t i;

  for (i = MTCSEC_3GPP_SQN_LEN; i-- > 0;) {
    out[i] = (uint8_t)sqn;
    sqn >>= 8;
  }
}

int mtcsec_milenage_opc(const uint8_t k[MTCSEC_3GPP_K_LEN],
                        const uint8_t op[MTCSEC_3GPP_K_LEN],
                        uint8_t opc[MTCSEC_3GPP_K_LEN]) {
  if (k == NULL || op == NULL || opc == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (milenage_opc_gen(opc, k, op) != 0) {
    mtcsec_zeroize(opc, MTCSEC_3GPP_K_LEN);
    return MTCSEC_ERR_CRYPTO;
  }
  return 0;
}

int mtcsec_milenage(const uint8_t k[MTCSEC_3GPP_K_LEN], const uint8_t *op,
                    const uint8_t *opc,
                    const uint8_t rand[MTCSEC_3GPP_RAND_LEN], uint64_t sqn,
                    const uint8_t amf[MTCSEC_3GPP_AMF_LEN],
                    mtcsec_milenage_out *out) {
  struct osmo_sub_auth_data aud;
  struct osmo_auth_vector vec;
  uint8_t sqnb[MTCSEC_3GPP_SQN_LEN];
  uint8_t mac_a[MTCSEC_3GPP_MAC_LEN];
  uint8_t ak[MTCSEC_3GPP_AK_LEN];
  size_t i;
  int rv = MTCSEC_ERR_INVALID_ARGUMENT;

  if (out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(out, 0, sizeof(*out));
  if (k == NULL || rand == NULL || amf == NULL ||
      (op == NULL) == (opc == NULL) || sqn > MTCSEC_SQN_MAX) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }

  memset(&aud, 0, sizeof(aud));
  memset(&vec, 0, sizeof(vec));
  aud.type = OSMO_AUTH_TYPE_UMTS;
  aud.algo = OSMO_AUTH_ALG_MILENAGE;
  memcpy(aud.u.umts.k, k, MTCSEC_3GPP_K_LEN);
  memcpy(aud.u.umts.opc, op != NULL ? op : opc, MTCSEC_3GPP_K_LEN);
  aud.u.umts.opc_is_op = op != NULL;
  memcpy(aud.u.umts.amf, amf, MTCSEC_3GPP_AMF_LEN);
  /* libosmocore's .sqn is the *previous* SQN: with ind_bitlen = 0 the vector
   * uses .sqn + 1 (OSMOCOM.md).  Unsigned wrap-around makes sqn = 0 work:
   * (2^64 - 1) + 1 = 0. */
  aud.u.umts.sqn = sqn - 1;
  aud.u.umts.ind_bitlen = 0;
  aud.u.umts.ind = 0;

  rv = MTCSEC_ERR_CRYPTO;
  if (osmo_auth_gen_vec(&vec, &aud, rand) != 0 || aud.u.umts.sqn != sqn ||
      vec.res_len != MTCSEC_3GPP_RES_LEN) {
    goto cleanup;
  }

  if (op != NULL) {
    if (milenage_opc_gen(out->opc, k, op) != 0) {
      goto cleanup;
    }
  } else {
    memcpy(out->opc, opc, MTCSEC_3GPP_K_LEN);
  }
  mtcsec_sqn_store(sqn, sqnb);
  if (milenage_f1(out->opc, k, rand, sqnb, amf, mac_a, out->f1star) != 0 ||
      milenage_f2345(out->opc, k, rand, NULL, NULL, NULL, out->f5,
                     out->f5star) != 0) {
    goto cleanup;
  }

  /* AUTN = (SQN ^ AK) || AMF || MAC-A (TS 33.102 6.3.2). */
  memcpy(out->autn, vec.autn, MTCSEC_3GPP_AUTN_LEN);
  memcpy(out->f1, vec.autn + 8, MTCSEC_3GPP_MAC_LEN);
  memcpy(out->f2, vec.res, MTCSEC_3GPP_RES_LEN);
  memcpy(out->f3, vec.ck, MTCSEC_3GPP_CK_LEN);
  memcpy(out->f4, vec.ik, MTCSEC_3GPP_IK_LEN);

  /* Cross-check the two libosmocore paths: same MAC-A, same AK, same AMF. */
  for (i = 0; i < MTCSEC_3GPP_AK_LEN; i++) {
    ak[i] = (uint8_t)(vec.autn[i] ^ sqnb[i]);
  }
  if (mtcsec_ct_memcmp(mac_a, out->f1, sizeof(mac_a)) != 0 ||
      mtcsec_ct_memcmp(ak, out->f5, sizeof(ak)) != 0 ||
      memcmp(vec.autn + 6, amf, MTCSEC_3GPP_AMF_LEN) != 0) {
    goto cleanup;
  }
  rv = 0;

cleanup:
  mtcsec_zeroize(&aud, sizeof(aud));
  mtcsec_zeroize(&vec, sizeof(vec));
  mtcsec_zeroize(mac_a, sizeof(mac_a));
  mtcsec_zeroize(ak, sizeof(ak));
  if (rv != 0) {
    mtcsec_zeroize(out, sizeof(*out));
  }
  return rv;
}
