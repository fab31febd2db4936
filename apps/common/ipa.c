/*
 * IPA framing and the CCM identity response (apps/common/ipa.h).
 */
#include <stdio.h>
#include <string.h>

#include <osmocom/core/msgb.h>
#include <osmocom/gsm/ipa.h>
#include <osmocom/gsm/protocol/ipaccess.h>

#include "ipa.h"

/* Our constants are libosmocore's values. */
_Static_assert(IPA_PROTO_CCM == IPAC_PROTO_IPACCESS, "IPA CCM protocol");
_Static_assert(IPA_PROTO_OSMO == IPAC_PROTO_OSMO, "IPA OSMO protocol");
_Static_assert(IPA_EXT_GSUP == IPAC_PROTO_EXT_GSUP, "IPA GSUP extension");
_Static_assert((int)IPA_MSGT_ID_GET == (int)IPAC_MSGT_ID_GET &&
                 (int)IPA_MSGT_ID_RESP == (int)IPAC_MSGT_ID_RESP &&
                 (int)IPA_MSGT_ID_ACK == (int)IPAC_MSGT_ID_ACK &&
                 (int)IPA_MSGT_PING == (int)IPAC_MSGT_PING &&
                 (int)IPA_MSGT_PONG == (int)IPAC_MSGT_PONG,
               "IPA CCM message types");

mtcsec_ssize ipa_decode(ipa_msg *m, const uint8_t *in, size_t inlen) {
  size_t plen;
  if (m == NULL || (in == NULL && inlen > 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (inlen < IPA_HDR_LEN) {
    return 0;
  }
  plen = ((size_t)in[0] << 8) | in[1];
  if (in[2] == IPA_PROTO_OSMO && plen < 1) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (inlen - IPA_HDR_LEN < plen) {
    return 0;
  }
  m->proto = in[2];
  if (in[2] == IPA_PROTO_OSMO) {
    m->ext = in[IPA_HDR_LEN];
    m->data = in + IPA_HDR_LEN + 1;
    m->len = plen - 1;
  } else {
    m->ext = -1;
    m->data = in + IPA_HDR_LEN;
    m->len = plen;
  }
  return (mtcsec_ssize)(IPA_HDR_LEN + plen);
}

mtcsec_ssize ipa_encode_header(uint8_t proto, int ext, size_t datalen,
                               uint8_t *out, size_t outlen) {
  size_t plen = datalen + (ext >= 0 ? 1u : 0u);
  size_t hl = IPA_HDR_LEN + (ext >= 0 ? 1u : 0u);
  if (out == NULL || ext > 0xff || datalen > IPA_MAX_PAYLOAD ||
      plen > IPA_MAX_PAYLOAD) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (outlen < hl) {
    return MTCSEC_ERR_NOBUF;
  }
  out[0] = (uint8_t)(plen >> 8);
  out[1] = (uint8_t)plen;
  out[2] = proto;
  if (ext >= 0) {
    out[3] = (uint8_t)ext;
  }
  return (mtcsec_ssize)hl;
}

void ipa_id_resp_unit_name(const uint8_t *p, size_t len, char *out,
                           size_t outlen) {
  size_t off = 1;
  if (outlen == 0) {
    return;
  }
  out[0] = '\0';
  /* Tags: len(2) || tag(1) || value, len counting tag and value. */
  while (p != NULL && off + 3 <= len) {
    size_t tl = ((size_t)p[off] << 8) | p[off + 1];
    uint8_t tag = p[off + 2];
    if (tl < 1 || off + 2 + tl > len) {
      return;
    }
    if (tag == IPA_IDTAG_UNITNAME) {
      size_t i, n = 0;
      for (i = 0; i < tl - 1 && n + 1 < outlen; i++) {
        uint8_t ch = p[off + 3 + i];
        if (ch == 0) {
          break;
        }
        out[n++] = (ch > 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '_';
      }
      out[n] = '\0';
    }
    off += 2 + tl;
  }
}

mtcsec_ssize ipa_make_id_resp(const uint8_t *idget, size_t len,
                              const char *unit_name, uint8_t *out,
                              size_t outlen) {
  char name[64], empty[1] = "";
  struct ipaccess_unit dev;
  struct msgb *msg;
  const uint8_t *p;
  size_t n;
  mtcsec_ssize rv = MTCSEC_ERR_MALFORMED;

  if (idget == NULL || len < 1 || unit_name == NULL || out == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  snprintf(name, sizeof(name), "%s", unit_name);
  memset(&dev, 0, sizeof(dev));
  dev.unit_name = name;
  dev.serno = name;
  dev.equipvers = empty;
  dev.swversion = empty;
  dev.location1 = empty;
  dev.location2 = empty;
  msg = ipa_ccm_make_id_resp_from_req(&dev, idget + 1, (unsigned)(len - 1));
  if (msg == NULL) {
    return MTCSEC_ERR_MALFORMED;
  }
  p = msgb_data(msg);
  n = msgb_length(msg);
  /* libosmocore prepends the IPA header itself. */
  if (n > IPA_HDR_LEN && p[2] == IPA_PROTO_CCM &&
      (((size_t)p[0] << 8) | p[1]) == n - IPA_HDR_LEN) {
    if (n - IPA_HDR_LEN > outlen) {
      rv = MTCSEC_ERR_NOBUF;
    } else {
      memcpy(out, p + IPA_HDR_LEN, n - IPA_HDR_LEN);
      rv = (mtcsec_ssize)(n - IPA_HDR_LEN);
    }
  }
  msgb_free(msg);
  return rv;
}
