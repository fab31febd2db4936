/*
 * GPRS LLC UI frames (TS 44.064) with either the CRC-24 FCS of 5.5.1 or the
 * 4-byte 128-EIA2 MAC-I of proposal P1 (CELLULAR.md).
 *
 * Frame: address(1) || control(2 for UI) || information || FCS(3) | MAC-I(4)
 *   address  = PD(0) C/R X X SAPI(4)                           (6.2)
 *   UI ctrl  = 1 1 0 X X N(U)9..7 | N(U)6..1 E PM               (6.3.5.2)
 * The FCS covers the header and the whole information field, or for a UI
 * frame with PM = 0 the header and the first N202 = 4 information octets;
 * it is sent least significant octet first (as osmo-sgsn and Wireshark do).
 * The MAC-I always covers the whole frame before it and is sent in the
 * order the CMAC produced it.
 */
#include <string.h>

#include <mtcsec/cellular.h>

#include "cellular/cellular_int.h"

#define LLC_PD 0x80
#define LLC_CR 0x40
/* Reflected form of the TS 44.064 generator polynomial
 * x^24+x^23+x^21+x^20+x^19+x^17+x^16+x^15+x^13+x^8+x^7+x^5+x^4+x^2+1. */
#define LLC_CRC24_POLY_REFLECTED 0xad85ddu
#define LLC_CRC24_INIT 0xffffffu

int mtcsec_llc_sapi_valid(uint8_t sapi) {
  switch (sapi) {
  case MTCSEC_LLC_SAPI_LLGMM:
  case MTCSEC_LLC_SAPI_TOM2:
  case MTCSEC_LLC_SAPI_LL3:
  case MTCSEC_LLC_SAPI_LL5:
  case MTCSEC_LLC_SAPI_LLSMS:
  case MTCSEC_LLC_SAPI_TOM8:
  case MTCSEC_LLC_SAPI_LL9:
  case MTCSEC_LLC_SAPI_LL11:
    return 1;
  default:
    return 0; /* 0, 4, 6, 10, 12..15 are reserved (6.2.3) */
  }
}

uint32_t mtcsec_llc_count(uint32_t overflow, uint16_t nu) {
  return ((overflow & 0x7fffffu) << 9) | (nu & MTCSEC_LLC_NU_MAX);
}

uint32_t mtcsec_llc_crc24(const uint8_t *data, size_t len) {
  uint32_t crc = LLC_CRC24_INIT;
  size_t i;
  int b;

  /* Bitwise, LSB first (the CRC is not a cryptographic primitive; this is
   * the same computation as osmo-sgsn's crc24.c table). */
  for (i = 0; i < len; i++) {
    crc ^= data[i];
    for (b = 0; b < 8; b++) {
      crc = (crc >> 1) ^ (LLC_CRC24_POLY_REFLECTED & (0u - (crc & 1u)));
    }
  }
  return ~crc & 0xffffffu;
}

mtcsec_ssize mtcsec_llc_fcs_coverage(const uint8_t *frame, size_t len) {
  size_t ctrl_len, cover;
  uint8_t c0;

  if (frame == NULL || len < 1 + 1 + MTCSEC_LLC_FCS_LEN) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (frame[0] & LLC_PD) {
    return MTCSEC_ERR_MALFORMED; /* 6.2.1: PD = 1 is an invalid frame */
  }
  c0 = frame[1];
  if ((c0 & 0x80) == 0) {
    ctrl_len = 3; /* I format (SACK bitmaps follow inside the frame) */
  } else if ((c0 & 0xc0) == 0x80) {
    ctrl_len = 2; /* S */
  } else if ((c0 & 0xe0) == 0xc0) {
    ctrl_len = 2; /* UI */
  } else {
    ctrl_len = 1; /* U */
  }
  if (len < 1 + ctrl_len + MTCSEC_LLC_FCS_LEN) {
    return MTCSEC_ERR_MALFORMED;
  }
  cover = len - MTCSEC_LLC_FCS_LEN;
  if ((c0 & 0xe0) == 0xc0 && (frame[2] & 0x01) == 0 &&
      cover > MTCSEC_LLC_UI_HDR_LEN + MTCSEC_LLC_N202) {
    cover = MTCSEC_LLC_UI_HDR_LEN + MTCSEC_LLC_N202;
  }
  return (mtcsec_ssize)cover;
}

int mtcsec_llc_fcs_verify(const uint8_t *frame, size_t len,
                          uint32_t *fcs_calc) {
  mtcsec_ssize cover = mtcsec_llc_fcs_coverage(frame, len);
  uint32_t calc, rx;

  if (cover < 0) {
    return (int)cover;
  }
  calc = mtcsec_llc_crc24(frame, (size_t)cover);
  rx = (uint32_t)frame[len - 3] | ((uint32_t)frame[len - 2] << 8) |
       ((uint32_t)frame[len - 1] << 16);
  if (fcs_calc != NULL) {
    *fcs_calc = calc;
  }
  return calc == rx ? 0 : MTCSEC_ERR_MIC;
}

static int llc_ui_fields_ok(const mtcsec_llc_ui *ui) {
  return ui != NULL && mtcsec_llc_sapi_valid(ui->sapi) && ui->cr <= 1 &&
         ui->nu <= MTCSEC_LLC_NU_MAX && ui->e <= 1 && ui->pm <= 1 &&
         ui->infolen <= MTCSEC_LLC_MAX_INFO &&
         (ui->info != NULL || ui->infolen == 0);
}

/* Writes address || control || information; dest has room. */
static size_t llc_ui_put(const mtcsec_llc_ui *ui, uint8_t *dest) {
  dest[0] = (uint8_t)((ui->cr ? LLC_CR : 0) | ui->sapi);
  dest[1] = (uint8_t)(0xc0 | ((ui->nu >> 6) & 0x07));
  dest[2] = (uint8_t)(((ui->nu & 0x3f) << 2) | (ui->e << 1) | ui->pm);
  if (ui->infolen > 0) {
    memcpy(dest + MTCSEC_LLC_UI_HDR_LEN, ui->info, ui->infolen);
  }
  return MTCSEC_LLC_UI_HDR_LEN + ui->infolen;
}

/* Parses address and UI control of a frame whose trailer is traillen
 * bytes; fills everything but leaves ui untouched on error. */
static int llc_ui_parse(mtcsec_llc_ui *ui, const uint8_t *frame, size_t len,
                        size_t traillen) {
  mtcsec_llc_ui u;

  if (frame == NULL || len < MTCSEC_LLC_UI_HDR_LEN + traillen) {
    return MTCSEC_ERR_MALFORMED;
  }
  if ((frame[0] & LLC_PD) != 0 || (frame[1] & 0xe0) != 0xc0) {
    return MTCSEC_ERR_MALFORMED; /* PD set, or not a UI frame */
  }
  u.sapi = frame[0] & 0x0f;
  if (!mtcsec_llc_sapi_valid(u.sapi)) {
    return MTCSEC_ERR_MALFORMED;
  }
  u.cr = (frame[0] & LLC_CR) ? 1 : 0;
  u.nu = (uint16_t)(((frame[1] & 0x07) << 6) | (frame[2] >> 2));
  u.e = (frame[2] >> 1) & 1;
  u.pm = frame[2] & 1;
  u.infolen = len - MTCSEC_LLC_UI_HDR_LEN - traillen;
  u.info = u.infolen > 0 ? frame + MTCSEC_LLC_UI_HDR_LEN : NULL;
  if (u.infolen > MTCSEC_LLC_MAX_INFO) {
    return MTCSEC_ERR_MALFORMED;
  }
  *ui = u;
  return 0;
}

mtcsec_ssize mtcsec_llc_ui_encode_fcs(const mtcsec_llc_ui *ui, uint8_t *dest,
                                      size_t destlen) {
  size_t n, cover;
  uint32_t fcs;

  if (!llc_ui_fields_ok(ui) || dest == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < MTCSEC_LLC_UI_HDR_LEN + ui->infolen + MTCSEC_LLC_FCS_LEN) {
    return MTCSEC_ERR_NOBUF;
  }
  n = llc_ui_put(ui, dest);
  cover = n;
  if (ui->pm == 0 && cover > MTCSEC_LLC_UI_HDR_LEN + MTCSEC_LLC_N202) {
    cover = MTCSEC_LLC_UI_HDR_LEN + MTCSEC_LLC_N202;
  }
  fcs = mtcsec_llc_crc24(dest, cover);
  dest[n] = (uint8_t)fcs;
  dest[n + 1] = (uint8_t)(fcs >> 8);
  dest[n + 2] = (uint8_t)(fcs >> 16);
  return (mtcsec_ssize)(n + MTCSEC_LLC_FCS_LEN);
}

int mtcsec_llc_ui_decode_fcs(mtcsec_llc_ui *ui, const uint8_t *frame,
                             size_t len) {
  mtcsec_llc_ui u;
  int rv;

  if (ui == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = llc_ui_parse(&u, frame, len, MTCSEC_LLC_FCS_LEN);
  if (rv != 0) {
    return rv;
  }
  rv = mtcsec_llc_fcs_verify(frame, len, NULL);
  if (rv != 0) {
    return rv;
  }
  *ui = u;
  return 0;
}

mtcsec_ssize mtcsec_llc_ui_encode_mac(const mtcsec_crypto *crypto,
                                      const uint8_t ik[MTCSEC_EIA2_KEY_LEN],
                                      uint32_t overflow, uint8_t direction,
                                      const mtcsec_llc_ui *ui, uint8_t *dest,
                                      size_t destlen) {
  size_t n;
  int rv;

  if (!llc_ui_fields_ok(ui) || dest == NULL || ik == NULL || direction > 1) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < MTCSEC_LLC_UI_HDR_LEN + ui->infolen + MTCSEC_LLC_MACI_LEN) {
    return MTCSEC_ERR_NOBUF;
  }
  n = llc_ui_put(ui, dest);
  /* P1: COUNT = overflow * 512 + N(U), BEARER = SAPI; the MAC-I is the
   * first 32 bits of the CMAC, in the order produced. */
  rv = mtcsec_eia2(crypto, ik, mtcsec_llc_count(overflow, ui->nu), ui->sapi,
                   direction, dest, 8 * n, dest + n);
  if (rv != 0) {
    mtcsec_zeroize(dest, n + MTCSEC_LLC_MACI_LEN);
    return rv;
  }
  return (mtcsec_ssize)(n + MTCSEC_LLC_MACI_LEN);
}

int mtcsec_llc_ui_decode_mac(const mtcsec_crypto *crypto,
                             const uint8_t ik[MTCSEC_EIA2_KEY_LEN],
                             uint32_t overflow, uint8_t direction,
                             mtcsec_llc_ui *ui, const uint8_t *frame,
                             size_t len) {
  uint8_t mac[MTCSEC_LLC_MACI_LEN];
  mtcsec_llc_ui u;
  size_t n;
  int rv;

  if (ui == NULL || ik == NULL || direction > 1) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = llc_ui_parse(&u, frame, len, MTCSEC_LLC_MACI_LEN);
  if (rv != 0) {
    return rv;
  }
  n = len - MTCSEC_LLC_MACI_LEN;
  rv = mtcsec_eia2(crypto, ik, mtcsec_llc_count(overflow, u.nu), u.sapi,
                   direction, frame, 8 * n, mac);
  if (rv != 0) {
    goto cleanup;
  }
  if (mtcsec_ct_memcmp(mac, frame + n, MTCSEC_LLC_MACI_LEN) != 0) {
    rv = MTCSEC_ERR_MIC;
    goto cleanup;
  }
  *ui = u;

cleanup:
  mtcsec_zeroize(mac, sizeof(mac));
  return rv;
}
