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

/* One step of eight bitwise rounds per byte value, generated from
 * LLC_CRC24_POLY_REFLECTED (the table-driven form of the loop it replaces). */
static const uint32_t llc_crc24_table[256] = {
  0x000000u, 0xd6a776u, 0xf64557u, 0x20e221u, 0xb78115u, 0x612663u, 0x41c442u,
  0x976334u, 0x340991u, 0xe2aee7u, 0xc24cc6u, 0x14ebb0u, 0x838884u, 0x552ff2u,
  0x75cdd3u, 0xa36aa5u, 0x681322u, 0xbeb454u, 0x9e5675u, 0x48f103u, 0xdf9237u,
  0x093541u, 0x29d760u, 0xff7016u, 0x5c1ab3u, 0x8abdc5u, 0xaa5fe4u, 0x7cf892u,
  0xeb9ba6u, 0x3d3cd0u, 0x1ddef1u, 0xcb7987u, 0xd02644u, 0x068132u, 0x266313u,
  0xf0c465u, 0x67a751u, 0xb10027u, 0x91e206u, 0x474570u, 0xe42fd5u, 0x3288a3u,
  0x126a82u, 0xc4cdf4u, 0x53aec0u, 0x8509b6u, 0xa5eb97u, 0x734ce1u, 0xb83566u,
  0x6e9210u, 0x4e7031u, 0x98d747u, 0x0fb473u, 0xd91305u, 0xf9f124u, 0x2f5652u,
  0x8c3cf7u, 0x5a9b81u, 0x7a79a0u, 0xacded6u, 0x3bbde2u, 0xed1a94u, 0xcdf8b5u,
  0x1b5fc3u, 0xfb4733u, 0x2de045u, 0x0d0264u, 0xdba512u, 0x4cc626u, 0x9a6150u,
  0xba8371u, 0x6c2407u, 0xcf4ea2u, 0x19e9d4u, 0x390bf5u, 0xefac83u, 0x78cfb7u,
  0xae68c1u, 0x8e8ae0u, 0x582d96u, 0x935411u, 0x45f367u, 0x651146u, 0xb3b630u,
  0x24d504u, 0xf27272u, 0xd29053u, 0x043725u, 0xa75d80u, 0x71faf6u, 0x5118d7u,
  0x87bfa1u, 0x10dc95u, 0xc67be3u, 0xe699c2u, 0x303eb4u, 0x2b6177u, 0xfdc601u,
  0xdd2420u, 0x0b8356u, 0x9ce062u, 0x4a4714u, 0x6aa535u, 0xbc0243u, 0x1f68e6u,
  0xc9cf90u, 0xe92db1u, 0x3f8ac7u, 0xa8e9f3u, 0x7e4e85u, 0x5eaca4u, 0x880bd2u,
  0x437255u, 0x95d523u, 0xb53702u, 0x639074u, 0xf4f340u, 0x225436u, 0x02b617u,
  0xd41161u, 0x777bc4u, 0xa1dcb2u, 0x813e93u, 0x5799e5u, 0xc0fad1u, 0x165da7u,
  0x36bf86u, 0xe018f0u, 0xad85ddu, 0x7b22abu, 0x5bc08au, 0x8d67fcu, 0x1a04c8u,
  0xcca3beu, 0xec419fu, 0x3ae6e9u, 0x998c4cu, 0x4f2b3au, 0x6fc91bu, 0xb96e6du,
  0x2e0d59u, 0xf8aa2fu, 0xd8480eu, 0x0eef78u, 0xc596ffu, 0x133189u, 0x33d3a8u,
  0xe574deu, 0x7217eau, 0xa4b09cu, 0x8452bdu, 0x52f5cbu, 0xf19f6eu, 0x273818u,
  0x07da39u, 0xd17d4fu, 0x461e7bu, 0x90b90du, 0xb05b2cu, 0x66fc5au, 0x7da399u,
  0xab04efu, 0x8be6ceu, 0x5d41b8u, 0xca228cu, 0x1c85fau, 0x3c67dbu, 0xeac0adu,
  0x49aa08u, 0x9f0d7eu, 0xbfef5fu, 0x694829u, 0xfe2b1du, 0x288c6bu, 0x086e4au,
  0xdec93cu, 0x15b0bbu, 0xc317cdu, 0xe3f5ecu, 0x35529au, 0xa231aeu, 0x7496d8u,
  0x5474f9u, 0x82d38fu, 0x21b92au, 0xf71e5cu, 0xd7fc7du, 0x015b0bu, 0x96383fu,
  0x409f49u, 0x607d68u, 0xb6da1eu, 0x56c2eeu, 0x806598u, 0xa087b9u, 0x7620cfu,
  0xe143fbu, 0x37e48du, 0x1706acu, 0xc1a1dau, 0x62cb7fu, 0xb46c09u, 0x948e28u,
  0x42295eu, 0xd54a6au, 0x03ed1cu, 0x230f3du, 0xf5a84bu, 0x3ed1ccu, 0xe876bau,
  0xc8949bu, 0x1e33edu, 0x8950d9u, 0x5ff7afu, 0x7f158eu, 0xa9b2f8u, 0x0ad85du,
  0xdc7f2bu, 0xfc9d0au, 0x2a3a7cu, 0xbd5948u, 0x6bfe3eu, 0x4b1c1fu, 0x9dbb69u,
  0x86e4aau, 0x5043dcu, 0x70a1fdu, 0xa6068bu, 0x3165bfu, 0xe7c2c9u, 0xc720e8u,
  0x11879eu, 0xb2ed3bu, 0x644a4du, 0x44a86cu, 0x920f1au, 0x056c2eu, 0xd3cb58u,
  0xf32979u, 0x258e0fu, 0xeef788u, 0x3850feu, 0x18b2dfu, 0xce15a9u, 0x59769du,
  0x8fd1ebu, 0xaf33cau, 0x7994bcu, 0xdafe19u, 0x0c596fu, 0x2cbb4eu, 0xfa1c38u,
  0x6d7f0cu, 0xbbd87au, 0x9b3a5bu, 0x4d9d2du,
};

uint32_t mtcsec_llc_crc24(const uint8_t *data, size_t len) {
  uint32_t crc = LLC_CRC24_INIT;
  size_t i;

  /* Reflected (LSB first), one table step per byte; the CRC is not a
   * cryptographic primitive. */
  for (i = 0; i < len; i++) {
    crc = (crc >> 8) ^ llc_crc24_table[(crc ^ data[i]) & 0xffu];
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
