/*
 * Protocol configuration options (TS 24.008 10.5.6.3) and mtcsec's
 * operator-specific container 0xFF00 = PLMN(3) || 0x01 || RAND(16)
 * (CELLULAR.md, proposal P5).
 *
 * Value layout (octet 3 onwards):
 *   1 0 0 0 0 CP(3) | { ID(2, big-endian) | length(1) | contents } ...
 * framed as a NAS type 4 TLV (IEI 0x27, length 1 octet) or as GTPv1-C IE 132
 * (type 0x84, length 2 octets, TS 29.060 7.7.31).
 */
#include <string.h>

#include <mtcsec/cellular.h>

#include "cellular/cellular_int.h"

static size_t pco_hdr_len(mtcsec_pco_framing framing) {
  switch (framing) {
  case MTCSEC_PCO_NAS:
    return 2;
  case MTCSEC_PCO_GTP:
    return 3;
  case MTCSEC_PCO_BARE:
  default:
    return 0;
  }
}

mtcsec_ssize mtcsec_pco_encode(const mtcsec_pco *pco,
                               mtcsec_pco_framing framing, uint8_t *dest,
                               size_t destlen) {
  size_t vlen = 1, hlen, off, i;
  const mtcsec_pco_unit *u;

  if (pco == NULL || dest == NULL || pco->config_protocol > 7 ||
      pco->nunits > MTCSEC_PCO_MAX_UNITS ||
      (framing != MTCSEC_PCO_BARE && framing != MTCSEC_PCO_NAS &&
       framing != MTCSEC_PCO_GTP)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < pco->nunits; i++) {
    u = &pco->units[i];
    if (u->contents == NULL && u->len != 0) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
    vlen += 3 + (size_t)u->len;
    if (vlen > MTCSEC_PCO_MAX_LEN) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
  }
  hlen = pco_hdr_len(framing);
  if (destlen < hlen + vlen) {
    return MTCSEC_ERR_NOBUF;
  }
  if (framing == MTCSEC_PCO_NAS) {
    dest[0] = MTCSEC_PCO_IEI;
    dest[1] = (uint8_t)vlen;
  } else if (framing == MTCSEC_PCO_GTP) {
    dest[0] = MTCSEC_PCO_GTP_IE;
    dest[1] = (uint8_t)(vlen >> 8);
    dest[2] = (uint8_t)vlen;
  }
  off = hlen;
  dest[off++] = (uint8_t)(0x80 | pco->config_protocol); /* ext = 1 */
  for (i = 0; i < pco->nunits; i++) {
    u = &pco->units[i];
    dest[off++] = (uint8_t)(u->id >> 8);
    dest[off++] = (uint8_t)u->id;
    dest[off++] = u->len;
    if (u->len > 0) {
      memcpy(dest + off, u->contents, u->len);
      off += u->len;
    }
  }
  return (mtcsec_ssize)off;
}

mtcsec_ssize mtcsec_pco_decode(mtcsec_pco *pco, mtcsec_pco_framing framing,
                               const uint8_t *in, size_t inlen) {
  /* Decoded into a local copy so that pco is only written on success. */
  mtcsec_pco p;
  const uint8_t *v;
  size_t vlen, hlen, off;
  mtcsec_pco_unit *u;

  if (pco == NULL || (in == NULL && inlen != 0) ||
      (framing != MTCSEC_PCO_BARE && framing != MTCSEC_PCO_NAS &&
       framing != MTCSEC_PCO_GTP)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  hlen = pco_hdr_len(framing);
  if (inlen < hlen) {
    return MTCSEC_ERR_MALFORMED;
  }
  switch (framing) {
  case MTCSEC_PCO_NAS:
    if (in[0] != MTCSEC_PCO_IEI) {
      return MTCSEC_ERR_MALFORMED;
    }
    vlen = in[1];
    break;
  case MTCSEC_PCO_GTP:
    if (in[0] != MTCSEC_PCO_GTP_IE) {
      return MTCSEC_ERR_MALFORMED;
    }
    vlen = ((size_t)in[1] << 8) | in[2];
    break;
  case MTCSEC_PCO_BARE:
  default:
    vlen = inlen;
    break;
  }
  if (vlen < 1 || vlen > MTCSEC_PCO_MAX_LEN || vlen > inlen - hlen) {
    return MTCSEC_ERR_MALFORMED;
  }
  v = in + hlen;

  memset(&p, 0, sizeof(p));
  p.config_protocol = v[0] & 0x07;
  for (off = 1; off < vlen;) {
    if (vlen - off < 3 || p.nunits == MTCSEC_PCO_MAX_UNITS) {
      return MTCSEC_ERR_MALFORMED; /* truncated ID/length */
    }
    u = &p.units[p.nunits];
    u->id = (uint16_t)((v[off] << 8) | v[off + 1]);
    u->len = v[off + 2];
    off += 3;
    if (u->len > vlen - off) {
      return MTCSEC_ERR_MALFORMED; /* contents run past the IE */
    }
    u->contents = u->len > 0 ? v + off : NULL;
    off += u->len;
    p.nunits++;
  }
  memcpy(pco, &p, sizeof(p));
  return (mtcsec_ssize)(hlen + vlen);
}

int mtcsec_pco_rand_encode(const uint8_t plmn[MTCSEC_PLMN_LEN],
                           const uint8_t rand[MTCSEC_3GPP_RAND_LEN],
                           uint8_t out[MTCSEC_PCO_RAND_LEN]) {
  mtcsec_plmn check;

  if (plmn == NULL || rand == NULL || out == NULL ||
      mtcsec_plmn_decode(plmn, &check) != 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memcpy(out, plmn, MTCSEC_PLMN_LEN);
  out[MTCSEC_PLMN_LEN] = MTCSEC_PCO_RAND_VERSION;
  memcpy(out + MTCSEC_PLMN_LEN + 1, rand, MTCSEC_3GPP_RAND_LEN);
  return 0;
}

int mtcsec_pco_rand_decode(const uint8_t *contents, size_t len,
                           uint8_t plmn[MTCSEC_PLMN_LEN],
                           uint8_t rand[MTCSEC_3GPP_RAND_LEN]) {
  mtcsec_plmn check;

  if (plmn == NULL || rand == NULL || (contents == NULL && len != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* The version octet is checked before the length so that a future,
   * longer layout is reported as unsupported rather than malformed. */
  if (len < MTCSEC_PLMN_LEN + 1) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (contents[MTCSEC_PLMN_LEN] != MTCSEC_PCO_RAND_VERSION) {
    return MTCSEC_ERR_UNSUPPORTED;
  }
  if (len != MTCSEC_PCO_RAND_LEN || mtcsec_plmn_decode(contents, &check) != 0) {
    return MTCSEC_ERR_MALFORMED;
  }
  memcpy(plmn, contents, MTCSEC_PLMN_LEN);
  memcpy(rand, contents + MTCSEC_PLMN_LEN + 1, MTCSEC_3GPP_RAND_LEN);
  return 0;
}

int mtcsec_pco_find_rand(const mtcsec_pco *pco, const uint8_t *want_plmn,
                         uint8_t *plmn, uint8_t rand[MTCSEC_3GPP_RAND_LEN]) {
  uint8_t p[MTCSEC_PLMN_LEN];
  uint8_t r[MTCSEC_3GPP_RAND_LEN];
  size_t i, n;

  if (pco == NULL || rand == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  n = pco->nunits < MTCSEC_PCO_MAX_UNITS ? pco->nunits : MTCSEC_PCO_MAX_UNITS;
  for (i = 0; i < n; i++) {
    if (pco->units[i].id != MTCSEC_PCO_CID_MTCSEC ||
        mtcsec_pco_rand_decode(pco->units[i].contents, pco->units[i].len, p,
                               r) != 0) {
      continue;
    }
    if (want_plmn != NULL && memcmp(p, want_plmn, MTCSEC_PLMN_LEN) != 0) {
      continue;
    }
    if (plmn != NULL) {
      memcpy(plmn, p, MTCSEC_PLMN_LEN);
    }
    memcpy(rand, r, MTCSEC_3GPP_RAND_LEN);
    return 0;
  }
  return MTCSEC_ERR_NOT_FOUND;
}
