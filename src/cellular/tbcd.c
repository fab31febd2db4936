/*
 * IMSI as TBCD (TS 29.002 "TBCD-STRING": digit n+1 in the high nibble,
 * digit n in the low nibble of each octet, filler 0xF) and the PLMN
 * identity of TS 24.008 10.5.1.13.
 */
#include <string.h>

#include <mtcsec/cellular.h>

#include "cellular/cellular_int.h"

int mtcsec_imsi_to_tbcd(const char *imsi, size_t imsilen,
                        uint8_t tbcd[MTCSEC_IMSI_TBCD_LEN]) {
  uint8_t out[MTCSEC_IMSI_TBCD_LEN];
  size_t i;
  unsigned d;

  if (imsi == NULL || tbcd == NULL || imsilen < MTCSEC_IMSI_MIN_DIGITS ||
      imsilen > MTCSEC_IMSI_MAX_DIGITS) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(out, 0xff, sizeof(out));
  for (i = 0; i < imsilen; i++) {
    if (imsi[i] < '0' || imsi[i] > '9') {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
    d = (unsigned)(imsi[i] - '0');
    if (i % 2 == 0) {
      out[i / 2] = (uint8_t)((out[i / 2] & 0xf0) | d);
    } else {
      out[i / 2] = (uint8_t)((out[i / 2] & 0x0f) | (d << 4));
    }
  }
  memcpy(tbcd, out, sizeof(out));
  return 0;
}

mtcsec_ssize mtcsec_imsi_from_tbcd(const uint8_t tbcd[MTCSEC_IMSI_TBCD_LEN],
                                   char *dest, size_t destlen) {
  char digits[2 * MTCSEC_IMSI_TBCD_LEN];
  size_t i, n = 0;
  unsigned nib;
  int ended = 0;

  if (tbcd == NULL || dest == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < 2 * MTCSEC_IMSI_TBCD_LEN; i++) {
    nib = (i % 2 == 0) ? (tbcd[i / 2] & 0x0fu) : (unsigned)(tbcd[i / 2] >> 4);
    if (nib == 0xf) {
      ended = 1;
    } else if (ended || nib > 9) {
      return MTCSEC_ERR_MALFORMED;
    } else {
      digits[n++] = (char)('0' + nib);
    }
  }
  if (n < MTCSEC_IMSI_MIN_DIGITS || n > MTCSEC_IMSI_MAX_DIGITS) {
    return MTCSEC_ERR_MALFORMED; /* 16 digits: no filler, not an IMSI */
  }
  if (destlen < n + 1) {
    return MTCSEC_ERR_NOBUF;
  }
  memcpy(dest, digits, n);
  dest[n] = '\0';
  return (mtcsec_ssize)n;
}

int mtcsec_plmn_encode(const mtcsec_plmn *plmn, uint8_t out[MTCSEC_PLMN_LEN]) {
  unsigned mcc1, mcc2, mcc3, mnc1, mnc2, mnc3;

  if (plmn == NULL || out == NULL || plmn->mcc > 999 ||
      (plmn->mnc_digits != 2 && plmn->mnc_digits != 3) ||
      plmn->mnc > (plmn->mnc_digits == 2 ? 99 : 999)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  mcc1 = plmn->mcc / 100u;
  mcc2 = plmn->mcc / 10u % 10u;
  mcc3 = plmn->mcc % 10u;
  if (plmn->mnc_digits == 2) {
    mnc1 = plmn->mnc / 10u;
    mnc2 = plmn->mnc % 10u;
    mnc3 = 0xf;
  } else {
    mnc1 = plmn->mnc / 100u;
    mnc2 = plmn->mnc / 10u % 10u;
    mnc3 = plmn->mnc % 10u;
  }
  /* MCC2 MCC1 | MNC3 MCC3 | MNC2 MNC1 (high nibble first in each octet). */
  out[0] = (uint8_t)((mcc2 << 4) | mcc1);
  out[1] = (uint8_t)((mnc3 << 4) | mcc3);
  out[2] = (uint8_t)((mnc2 << 4) | mnc1);
  return 0;
}

int mtcsec_plmn_decode(const uint8_t in[MTCSEC_PLMN_LEN], mtcsec_plmn *plmn) {
  unsigned mcc1, mcc2, mcc3, mnc1, mnc2, mnc3;

  if (in == NULL || plmn == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  mcc1 = in[0] & 0x0fu;
  mcc2 = (unsigned)in[0] >> 4;
  mcc3 = in[1] & 0x0fu;
  mnc3 = (unsigned)in[1] >> 4;
  mnc1 = in[2] & 0x0fu;
  mnc2 = (unsigned)in[2] >> 4;
  if (mcc1 > 9 || mcc2 > 9 || mcc3 > 9 || mnc1 > 9 || mnc2 > 9 ||
      (mnc3 > 9 && mnc3 != 0xf)) {
    return MTCSEC_ERR_MALFORMED;
  }
  plmn->mcc = (uint16_t)(mcc1 * 100 + mcc2 * 10 + mcc3);
  if (mnc3 == 0xf) {
    plmn->mnc = (uint16_t)(mnc1 * 10 + mnc2);
    plmn->mnc_digits = 2;
  } else {
    plmn->mnc = (uint16_t)(mnc1 * 100 + mnc2 * 10 + mnc3);
    plmn->mnc_digits = 3;
  }
  return 0;
}
