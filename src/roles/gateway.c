/*
 * GW role (PROTOCOL.md sections 4, 6, 7): a relay on the device link.
 *
 * Stateless apart from counters: each datagram is checked structurally and
 * forwarded (M0 with this relay's ID appended), or dropped.  A relay holds no
 * key, so it cannot check a MIC or a tag; it only refuses what no endpoint
 * could accept, and never reads past the datagram.
 */
#include <string.h>

#include <mtcsec/gateway.h>
#include <mtcsec/codec.h>

#include "core/util.h"

/* Smallest MIC / tag of any suite (section 2): a record or a revocation
 * shorter than its fixed part plus this can never verify. */
#define GW_MIN_TAG_LEN 8

int mtcsec_gw_init(mtcsec_gw *gw, const uint8_t gwid[MTCSEC_ID_LEN]) {
  if (gw == NULL || gwid == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(gw, 0, sizeof(*gw));
  memcpy(gw->gwid, gwid, MTCSEC_ID_LEN);
  return 0;
}

/* M1 / M4: header, fixed fields, info framing, exact length for a known
 * suite (codec).  An unknown suite passes: the endpoint rejects it
 * (section 5), and a relay need not know every suite. */
static int gw_check_hs(uint8_t type, const uint8_t *in, size_t inlen) {
  mtcsec_hs hs;
  if (mtcsec_hs_decode(&hs, type, in, inlen) != 0) {
    return MTCSEC_ERR_MALFORMED;
  }
  return 0;
}

static mtcsec_ssize gw_copy(uint8_t *dest, size_t destlen, const uint8_t *in,
                            size_t inlen) {
  if (destlen < inlen) {
    return MTCSEC_ERR_NOBUF;
  }
  /* memmove: a caller may relay in place. */
  memmove(dest, in, inlen);
  return (mtcsec_ssize)inlen;
}

static mtcsec_ssize gw_to_device(const mtcsec_gw *gw, uint8_t *dest,
                                 size_t destlen, const uint8_t *in,
                                 size_t inlen) {
  int rv;
  switch (in[0]) {
  case MTCSEC_MSG_M0:
    /* Section 4: the hop list grows toward the device. */
    return mtcsec_m0_append_hop(dest, destlen, in, inlen, gw->gwid);
  case MTCSEC_MSG_M4:
    rv = gw_check_hs(MTCSEC_MSG_M4, in, inlen);
    if (rv != 0) {
      return rv;
    }
    return gw_copy(dest, destlen, in, inlen);
  case MTCSEC_MSG_RECORD:
    /* Section 6: header(7) || ciphertext || tag(t). */
    if (inlen < MTCSEC_RECORD_HDR_LEN + GW_MIN_TAG_LEN) {
      return MTCSEC_ERR_MALFORMED;
    }
    return gw_copy(dest, destlen, in, inlen);
  case MTCSEC_MSG_REVOKE:
    /* Section 7: fixed part(27) || MIC(t). */
    if (inlen < MTCSEC_REVOKE_FIXED_LEN + GW_MIN_TAG_LEN) {
      return MTCSEC_ERR_MALFORMED;
    }
    return gw_copy(dest, destlen, in, inlen);
  default:
    return MTCSEC_ERR_UNEXPECTED;
  }
}

static mtcsec_ssize gw_to_ue(uint8_t *dest, size_t destlen, const uint8_t *in,
                             size_t inlen) {
  int rv;
  switch (in[0]) {
  case MTCSEC_MSG_M1:
    rv = gw_check_hs(MTCSEC_MSG_M1, in, inlen);
    if (rv != 0) {
      return rv;
    }
    return gw_copy(dest, destlen, in, inlen);
  case MTCSEC_MSG_RECORD:
    if (inlen < MTCSEC_RECORD_HDR_LEN + GW_MIN_TAG_LEN) {
      return MTCSEC_ERR_MALFORMED;
    }
    return gw_copy(dest, destlen, in, inlen);
  default:
    return MTCSEC_ERR_UNEXPECTED;
  }
}

mtcsec_ssize mtcsec_gw_relay(mtcsec_gw *gw, mtcsec_gw_dir dir, uint8_t *dest,
                             size_t destlen, const uint8_t *in, size_t inlen) {
  mtcsec_ssize n;

  if (gw == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if ((in == NULL && inlen > 0) || (dest == NULL && destlen > 0)) {
    n = MTCSEC_ERR_INVALID_ARGUMENT;
  } else if (inlen == 0) {
    n = MTCSEC_ERR_MALFORMED;
  } else if (dir == MTCSEC_GW_TO_DEVICE) {
    n = gw_to_device(gw, dest, destlen, in, inlen);
  } else if (dir == MTCSEC_GW_TO_UE) {
    n = gw_to_ue(dest, destlen, in, inlen);
  } else {
    n = MTCSEC_ERR_INVALID_ARGUMENT;
  }

  if (n < 0) {
    gw->dropped++;
    return n;
  }
  /* Only the eight types 0x10..0x17 reach here. */
  gw->forwarded[in[0] & 0x0f]++;
  return n;
}
