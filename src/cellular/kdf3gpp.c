/*
 * The generic KDF of TS 33.220 Annex B.2 and the keys CELLULAR.md derives
 * with it: K_UP from CK || IK, then the uplink/downlink record keys and IVs
 * from K_UP with the SP 800-108 KDF of PROTOCOL.md section 2.
 */
#include <string.h>

#include <mtcsec/cellular.h>

#include "cellular/cellular_int.h"

int mtcsec_kdf_33220(const mtcsec_crypto *crypto, const uint8_t *key,
                     size_t keylen, uint8_t fc, const mtcsec_iov *params,
                     size_t nparams, uint8_t out[MTCSEC_KDF_33220_LEN]) {
  /* S = FC || P0 || L0 || ... || Pn || Ln, Li = length of Pi, 2 bytes. */
  mtcsec_iov iov[1 + 2 * MTCSEC_KDF_33220_MAX_PARAMS];
  uint8_t lens[MTCSEC_KDF_33220_MAX_PARAMS][2];
  size_t i, n = 0;

  if (crypto == NULL || crypto->ops == NULL || crypto->ops->mac == NULL ||
      key == NULL || keylen == 0 || out == NULL ||
      nparams > MTCSEC_KDF_33220_MAX_PARAMS ||
      (params == NULL && nparams != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  iov[n].base = &fc;
  iov[n].len = 1;
  n++;
  for (i = 0; i < nparams; i++) {
    if (params[i].len > 0xffff ||
        (params[i].base == NULL && params[i].len != 0)) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
    lens[i][0] = (uint8_t)(params[i].len >> 8);
    lens[i][1] = (uint8_t)params[i].len;
    iov[n++] = params[i];
    iov[n].base = lens[i];
    iov[n].len = 2;
    n++;
  }
  return crypto->ops->mac(crypto->ctx, MTCSEC_MAC_HMAC_SHA256, key, keylen, iov,
                          n, out, MTCSEC_KDF_33220_LEN);
}

int mtcsec_kup_derive(const mtcsec_crypto *crypto,
                      const uint8_t ck[MTCSEC_3GPP_CK_LEN],
                      const uint8_t ik[MTCSEC_3GPP_IK_LEN],
                      const uint8_t server_id[MTCSEC_ID_LEN],
                      const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                      uint8_t kup[MTCSEC_KUP_LEN]) {
  static const char p0[] = MTCSEC_KUP_P0;
  uint8_t key[MTCSEC_3GPP_CK_LEN + MTCSEC_3GPP_IK_LEN];
  uint8_t out[MTCSEC_KDF_33220_LEN];
  mtcsec_iov p[3];
  int rv;

  if (ck == NULL || ik == NULL || server_id == NULL || rand == NULL ||
      kup == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* Key = CK || IK, as TS 33.401 A.2 does for KASME. */
  memcpy(key, ck, MTCSEC_3GPP_CK_LEN);
  memcpy(key + MTCSEC_3GPP_CK_LEN, ik, MTCSEC_3GPP_IK_LEN);
  p[0].base = (const uint8_t *)p0;
  p[0].len = sizeof(p0) - 1; /* no terminator */
  p[1].base = server_id;
  p[1].len = MTCSEC_ID_LEN;
  p[2].base = rand;
  p[2].len = MTCSEC_3GPP_RAND_LEN;
  rv = mtcsec_kdf_33220(crypto, key, sizeof(key), MTCSEC_KUP_FC, p, 3, out);
  if (rv == 0) {
    /* The 128 least significant bits (TS 33.401 A.7 truncation). */
    memcpy(kup, out + MTCSEC_KDF_33220_LEN - MTCSEC_KUP_LEN, MTCSEC_KUP_LEN);
  }
  mtcsec_zeroize(key, sizeof(key));
  mtcsec_zeroize(out, sizeof(out));
  return rv;
}

int mtcsec_up_keys_derive(const mtcsec_crypto *crypto,
                          const uint8_t kup[MTCSEC_KUP_LEN],
                          const uint8_t imsi_tbcd[MTCSEC_IMSI_TBCD_LEN],
                          mtcsec_up_keys *keys) {
  static const struct {
    const char *label;
    size_t off;
    size_t len;
  } what[4] = {
    {"mtcsec up ul key", offsetof(mtcsec_up_keys, ul_key), MTCSEC_KUP_LEN},
    {"mtcsec up ul iv", offsetof(mtcsec_up_keys, ul_iv), MTCSEC_IV_LEN},
    {"mtcsec up dl key", offsetof(mtcsec_up_keys, dl_key), MTCSEC_KUP_LEN},
    {"mtcsec up dl iv", offsetof(mtcsec_up_keys, dl_iv), MTCSEC_IV_LEN},
  };
  size_t i;
  int rv = MTCSEC_ERR_INVALID_ARGUMENT;

  if (kup == NULL || imsi_tbcd == NULL || keys == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < 4; i++) {
    /* Suite 0x01's PRF (AES-128-CMAC); an IV uses L = 104 (13 bytes). */
    rv = mtcsec_kdf(crypto, MTCSEC_MAC_AES_CMAC, kup, MTCSEC_KUP_LEN,
                    what[i].label, strlen(what[i].label), imsi_tbcd,
                    MTCSEC_IMSI_TBCD_LEN, (uint8_t *)keys + what[i].off,
                    what[i].len);
    if (rv != 0) {
      mtcsec_zeroize(keys, sizeof(*keys));
      return rv;
    }
  }
  return 0;
}
