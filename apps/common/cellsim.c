/*
 * Codecs and LLC counters of the simulated cellular interfaces
 * (docs/CELLULAR-SYSTEM.md sections 1, 1.1 and 2).  Every decoder checks
 * lengths before it reads and writes its output only once the whole
 * message has been accepted.
 */
#include <string.h>

#include "cellsim.h"

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* ------------------------------------------------------------ radio */

/* Body length of a type, or 0 when it depends on the body (RES, cause,
 * LLC) and -1 for an unknown type. */
static int radio_fixed_len(uint8_t type) {
  switch (type) {
  case CELLSIM_ATTACH_REQUEST:
    return MTCSEC_IMSI_TBCD_LEN;
  case CELLSIM_AUTH_REQUEST:
    return MTCSEC_3GPP_RAND_LEN + MTCSEC_3GPP_AUTN_LEN;
  case CELLSIM_ATTACH_ACCEPT:
  case CELLSIM_ATTACH_REJECT:
    return 1;
  case CELLSIM_AUTH_RESPONSE:
  case CELLSIM_AUTH_FAILURE:
  case CELLSIM_LLC:
    return 0;
  default:
    return -1;
  }
}

mtcsec_ssize cellsim_radio_encode(const cellsim_radio *m, uint8_t *dest,
                                  size_t destlen) {
  size_t body;
  uint8_t *p;

  if (m == NULL || dest == NULL || radio_fixed_len(m->type) < 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  switch (m->type) {
  case CELLSIM_AUTH_RESPONSE:
    if (m->reslen < CELLSIM_RES_MIN || m->reslen > CELLSIM_RES_MAX) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
    body = 1u + m->reslen;
    break;
  case CELLSIM_AUTH_FAILURE:
    if (m->cause == CELLSIM_CAUSE_MAC_FAILURE) {
      body = 1;
    } else if (m->cause == CELLSIM_CAUSE_SYNCH_FAILURE) {
      body = 1 + MTCSEC_3GPP_AUTS_LEN;
    } else {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
    break;
  case CELLSIM_LLC:
    if (m->llc == NULL || m->llclen == 0) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
    body = m->llclen;
    break;
  default:
    body = (size_t)radio_fixed_len(m->type);
    break;
  }
  if (destlen < CELLSIM_RADIO_HDR_LEN ||
      destlen - CELLSIM_RADIO_HDR_LEN < body) {
    return MTCSEC_ERR_NOBUF;
  }
  dest[0] = CELLSIM_RADIO_MAGIC;
  dest[1] = m->type;
  put32(dest + 2, m->tlli);
  p = dest + CELLSIM_RADIO_HDR_LEN;
  switch (m->type) {
  case CELLSIM_ATTACH_REQUEST:
    memcpy(p, m->imsi, MTCSEC_IMSI_TBCD_LEN);
    break;
  case CELLSIM_AUTH_REQUEST:
    memcpy(p, m->rand, MTCSEC_3GPP_RAND_LEN);
    memcpy(p + MTCSEC_3GPP_RAND_LEN, m->autn, MTCSEC_3GPP_AUTN_LEN);
    break;
  case CELLSIM_AUTH_RESPONSE:
    p[0] = m->reslen;
    memcpy(p + 1, m->res, m->reslen);
    break;
  case CELLSIM_AUTH_FAILURE:
    p[0] = m->cause;
    if (m->cause == CELLSIM_CAUSE_SYNCH_FAILURE) {
      memcpy(p + 1, m->auts, MTCSEC_3GPP_AUTS_LEN);
    }
    break;
  case CELLSIM_ATTACH_ACCEPT:
    p[0] = m->flags;
    break;
  case CELLSIM_ATTACH_REJECT:
    p[0] = m->cause;
    break;
  default: /* CELLSIM_LLC */
    memcpy(p, m->llc, m->llclen);
    break;
  }
  return (mtcsec_ssize)(CELLSIM_RADIO_HDR_LEN + body);
}

int cellsim_radio_decode(cellsim_radio *m, const uint8_t *in, size_t inlen) {
  const uint8_t *p;
  size_t body;
  int fixed;

  if (m == NULL || in == NULL || inlen < CELLSIM_RADIO_HDR_LEN ||
      in[0] != CELLSIM_RADIO_MAGIC) {
    return MTCSEC_ERR_MALFORMED;
  }
  fixed = radio_fixed_len(in[1]);
  if (fixed < 0) {
    return MTCSEC_ERR_MALFORMED;
  }
  p = in + CELLSIM_RADIO_HDR_LEN;
  body = inlen - CELLSIM_RADIO_HDR_LEN;
  if (fixed > 0 && body != (size_t)fixed) {
    return MTCSEC_ERR_MALFORMED;
  }
  switch (in[1]) {
  case CELLSIM_AUTH_RESPONSE:
    if (body < 1 || p[0] < CELLSIM_RES_MIN || p[0] > CELLSIM_RES_MAX ||
        body != 1u + p[0]) {
      return MTCSEC_ERR_MALFORMED;
    }
    break;
  case CELLSIM_AUTH_FAILURE:
    if (body < 1 || !((p[0] == CELLSIM_CAUSE_MAC_FAILURE && body == 1) ||
                      (p[0] == CELLSIM_CAUSE_SYNCH_FAILURE &&
                       body == 1 + MTCSEC_3GPP_AUTS_LEN))) {
      return MTCSEC_ERR_MALFORMED;
    }
    break;
  case CELLSIM_LLC:
    if (body == 0) {
      return MTCSEC_ERR_MALFORMED;
    }
    break;
  default:
    break;
  }
  /* Accepted: write the fields of this type only. */
  m->type = in[1];
  m->tlli = get32(in + 2);
  switch (in[1]) {
  case CELLSIM_ATTACH_REQUEST:
    memcpy(m->imsi, p, MTCSEC_IMSI_TBCD_LEN);
    break;
  case CELLSIM_AUTH_REQUEST:
    memcpy(m->rand, p, MTCSEC_3GPP_RAND_LEN);
    memcpy(m->autn, p + MTCSEC_3GPP_RAND_LEN, MTCSEC_3GPP_AUTN_LEN);
    break;
  case CELLSIM_AUTH_RESPONSE:
    m->reslen = p[0];
    memcpy(m->res, p + 1, p[0]);
    break;
  case CELLSIM_AUTH_FAILURE:
    m->cause = p[0];
    if (p[0] == CELLSIM_CAUSE_SYNCH_FAILURE) {
      memcpy(m->auts, p + 1, MTCSEC_3GPP_AUTS_LEN);
    }
    break;
  case CELLSIM_ATTACH_ACCEPT:
    m->flags = p[0];
    break;
  case CELLSIM_ATTACH_REJECT:
    m->cause = p[0];
    break;
  default: /* CELLSIM_LLC */
    m->llc = p;
    m->llclen = body;
    break;
  }
  return 0;
}

const char *cellsim_radio_name(uint8_t type) {
  switch (type) {
  case CELLSIM_ATTACH_REQUEST:
    return "ATTACH_REQUEST";
  case CELLSIM_AUTH_REQUEST:
    return "AUTH_REQUEST";
  case CELLSIM_AUTH_RESPONSE:
    return "AUTH_RESPONSE";
  case CELLSIM_AUTH_FAILURE:
    return "AUTH_FAILURE";
  case CELLSIM_ATTACH_ACCEPT:
    return "ATTACH_ACCEPT";
  case CELLSIM_ATTACH_REJECT:
    return "ATTACH_REJECT";
  case CELLSIM_LLC:
    return "LLC";
  default:
    return "?";
  }
}

/* --------------------------------------------------------------- SM */

static int sm_nsapi_ok(uint8_t nsapi) {
  return nsapi >= CELLSIM_NSAPI_MIN && nsapi <= CELLSIM_NSAPI_MAX;
}

mtcsec_ssize cellsim_sm_encode(const cellsim_sm *m, uint8_t *dest,
                               size_t destlen) {
  size_t len;

  if (m == NULL || dest == NULL || m->ti > 0x0f || (m->ti & 0x07) == 0x07 ||
      !sm_nsapi_ok(m->nsapi)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  switch (m->type) {
  case CELLSIM_SM_ACTIVATE_REQUEST:
    if (m->pco == NULL || m->pcolen == 0 || m->pcolen > MTCSEC_PCO_MAX_LEN) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
    len = 3 + 2 + m->pcolen;
    break;
  case CELLSIM_SM_ACTIVATE_ACCEPT:
    len = 3;
    break;
  case CELLSIM_SM_ACTIVATE_REJECT:
    len = 4;
    break;
  default:
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < len) {
    return MTCSEC_ERR_NOBUF;
  }
  dest[0] = (uint8_t)((m->ti << 4) | CELLSIM_PD_SM);
  dest[1] = m->type;
  dest[2] = m->nsapi;
  if (m->type == CELLSIM_SM_ACTIVATE_REQUEST) {
    dest[3] = MTCSEC_PCO_IEI;
    dest[4] = (uint8_t)m->pcolen;
    memcpy(dest + 5, m->pco, m->pcolen);
  } else if (m->type == CELLSIM_SM_ACTIVATE_REJECT) {
    dest[3] = m->cause;
  }
  return (mtcsec_ssize)len;
}

int cellsim_sm_decode(cellsim_sm *m, const uint8_t *in, size_t inlen) {
  cellsim_sm s;

  if (m == NULL || in == NULL || inlen < 3 || (in[0] & 0x0f) != CELLSIM_PD_SM ||
      ((in[0] >> 4) & 0x07) == 0x07 || !sm_nsapi_ok(in[2])) {
    return MTCSEC_ERR_MALFORMED;
  }
  memset(&s, 0, sizeof(s));
  s.ti = (uint8_t)(in[0] >> 4);
  s.type = in[1];
  s.nsapi = in[2];
  switch (in[1]) {
  case CELLSIM_SM_ACTIVATE_REQUEST:
    if (inlen < 5 || in[3] != MTCSEC_PCO_IEI || in[4] == 0 ||
        in[4] > MTCSEC_PCO_MAX_LEN || inlen != 5u + in[4]) {
      return MTCSEC_ERR_MALFORMED;
    }
    s.pco = in + 5;
    s.pcolen = in[4];
    break;
  case CELLSIM_SM_ACTIVATE_ACCEPT:
    if (inlen != 3) {
      return MTCSEC_ERR_MALFORMED;
    }
    break;
  case CELLSIM_SM_ACTIVATE_REJECT:
    if (inlen != 4) {
      return MTCSEC_ERR_MALFORMED;
    }
    s.cause = in[3];
    break;
  default:
    return MTCSEC_ERR_MALFORMED;
  }
  *m = s;
  return 0;
}

const char *cellsim_sm_name(uint8_t type) {
  switch (type) {
  case CELLSIM_SM_ACTIVATE_REQUEST:
    return "ACTIVATE_PDP_CONTEXT_REQUEST";
  case CELLSIM_SM_ACTIVATE_ACCEPT:
    return "ACTIVATE_PDP_CONTEXT_ACCEPT";
  case CELLSIM_SM_ACTIVATE_REJECT:
    return "ACTIVATE_PDP_CONTEXT_REJECT";
  default:
    return "?";
  }
}

/* -------------------------------------------------------------- GTP */

mtcsec_ssize cellsim_gtpc_encode(const cellsim_gtpc *m, uint8_t *dest,
                                 size_t destlen) {
  size_t len;
  uint8_t *p;

  if (m == NULL || dest == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  switch (m->type) {
  case CELLSIM_CREATE_PDP_REQUEST:
    if (!sm_nsapi_ok(m->nsapi) || m->pcolen > MTCSEC_PCO_MAX_LEN ||
        (m->pco == NULL && m->pcolen > 0)) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
    len = MTCSEC_IMSI_TBCD_LEN + 1 + 4 + 1 + m->pcolen;
    break;
  case CELLSIM_CREATE_PDP_RESPONSE:
    len = 1 + 4;
    break;
  case CELLSIM_DELETE_PDP_REQUEST:
    len = 4;
    break;
  case CELLSIM_DELETE_PDP_RESPONSE:
    len = 1;
    break;
  default:
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < CELLSIM_GTPC_HDR_LEN || destlen - CELLSIM_GTPC_HDR_LEN < len) {
    return MTCSEC_ERR_NOBUF;
  }
  dest[0] = CELLSIM_GTPC_MAGIC;
  dest[1] = m->type;
  dest[2] = (uint8_t)(m->seq >> 8);
  dest[3] = (uint8_t)m->seq;
  p = dest + CELLSIM_GTPC_HDR_LEN;
  switch (m->type) {
  case CELLSIM_CREATE_PDP_REQUEST:
    memcpy(p, m->imsi, MTCSEC_IMSI_TBCD_LEN);
    p += MTCSEC_IMSI_TBCD_LEN;
    p[0] = m->nsapi;
    put32(p + 1, m->teid);
    p[5] = (uint8_t)m->pcolen;
    if (m->pcolen > 0) {
      memcpy(p + 6, m->pco, m->pcolen);
    }
    break;
  case CELLSIM_CREATE_PDP_RESPONSE:
    p[0] = m->cause;
    put32(p + 1, m->teid);
    break;
  case CELLSIM_DELETE_PDP_REQUEST:
    put32(p, m->teid);
    break;
  default: /* CELLSIM_DELETE_PDP_RESPONSE */
    p[0] = m->cause;
    break;
  }
  return (mtcsec_ssize)(CELLSIM_GTPC_HDR_LEN + len);
}

int cellsim_gtpc_decode(cellsim_gtpc *m, const uint8_t *in, size_t inlen) {
  cellsim_gtpc g;
  const uint8_t *p;
  size_t body;

  if (m == NULL || in == NULL || inlen < CELLSIM_GTPC_HDR_LEN ||
      in[0] != CELLSIM_GTPC_MAGIC) {
    return MTCSEC_ERR_MALFORMED;
  }
  memset(&g, 0, sizeof(g));
  g.type = in[1];
  g.seq = (uint16_t)((in[2] << 8) | in[3]);
  p = in + CELLSIM_GTPC_HDR_LEN;
  body = inlen - CELLSIM_GTPC_HDR_LEN;
  switch (g.type) {
  case CELLSIM_CREATE_PDP_REQUEST:
    if (body < MTCSEC_IMSI_TBCD_LEN + 6) {
      return MTCSEC_ERR_MALFORMED;
    }
    memcpy(g.imsi, p, MTCSEC_IMSI_TBCD_LEN);
    p += MTCSEC_IMSI_TBCD_LEN;
    g.nsapi = p[0];
    g.teid = get32(p + 1);
    g.pcolen = p[5];
    if (!sm_nsapi_ok(g.nsapi) || g.pcolen > MTCSEC_PCO_MAX_LEN ||
        body != MTCSEC_IMSI_TBCD_LEN + 6 + g.pcolen) {
      return MTCSEC_ERR_MALFORMED;
    }
    g.pco = g.pcolen > 0 ? p + 6 : NULL;
    break;
  case CELLSIM_CREATE_PDP_RESPONSE:
    if (body != 5) {
      return MTCSEC_ERR_MALFORMED;
    }
    g.cause = p[0];
    g.teid = get32(p + 1);
    break;
  case CELLSIM_DELETE_PDP_REQUEST:
    if (body != 4) {
      return MTCSEC_ERR_MALFORMED;
    }
    g.teid = get32(p);
    break;
  case CELLSIM_DELETE_PDP_RESPONSE:
    if (body != 1) {
      return MTCSEC_ERR_MALFORMED;
    }
    g.cause = p[0];
    break;
  default:
    return MTCSEC_ERR_MALFORMED;
  }
  *m = g;
  return 0;
}

const char *cellsim_gtpc_name(uint8_t type) {
  switch (type) {
  case CELLSIM_CREATE_PDP_REQUEST:
    return "CREATE_PDP_REQUEST";
  case CELLSIM_CREATE_PDP_RESPONSE:
    return "CREATE_PDP_RESPONSE";
  case CELLSIM_DELETE_PDP_REQUEST:
    return "DELETE_PDP_REQUEST";
  case CELLSIM_DELETE_PDP_RESPONSE:
    return "DELETE_PDP_RESPONSE";
  default:
    return "?";
  }
}

mtcsec_ssize cellsim_gtpu_encode(uint32_t teid, const uint8_t *tpdu,
                                 size_t tpdulen, uint8_t *dest,
                                 size_t destlen) {
  if (dest == NULL || tpdulen > CELLSIM_GTPU_MAX_TPDU ||
      (tpdu == NULL && tpdulen > 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < CELLSIM_GTPU_HDR_LEN ||
      destlen - CELLSIM_GTPU_HDR_LEN < tpdulen) {
    return MTCSEC_ERR_NOBUF;
  }
  dest[0] = CELLSIM_GTPU_FLAGS;
  dest[1] = CELLSIM_GTPU_GPDU;
  dest[2] = (uint8_t)(tpdulen >> 8);
  dest[3] = (uint8_t)tpdulen;
  put32(dest + 4, teid);
  if (tpdulen > 0) {
    memcpy(dest + CELLSIM_GTPU_HDR_LEN, tpdu, tpdulen);
  }
  return (mtcsec_ssize)(CELLSIM_GTPU_HDR_LEN + tpdulen);
}

int cellsim_gtpu_decode(const uint8_t *in, size_t inlen, uint32_t *teid,
                        const uint8_t **tpdu, size_t *tpdulen) {
  size_t len;
  if (in == NULL || teid == NULL || tpdu == NULL || tpdulen == NULL ||
      inlen < CELLSIM_GTPU_HDR_LEN || in[0] != CELLSIM_GTPU_FLAGS ||
      in[1] != CELLSIM_GTPU_GPDU) {
    return MTCSEC_ERR_MALFORMED;
  }
  len = ((size_t)in[2] << 8) | in[3];
  if (len != inlen - CELLSIM_GTPU_HDR_LEN) {
    return MTCSEC_ERR_MALFORMED;
  }
  *teid = get32(in + 4);
  *tpdu = len > 0 ? in + CELLSIM_GTPU_HDR_LEN : NULL;
  *tpdulen = len;
  return 0;
}

/* -------------------------------------------------------- LLC COUNT */

int cellsim_llc_tx_count(cellsim_llc *l, uint8_t sapi, uint32_t *count) {
  if (l == NULL || count == NULL || sapi >= CELLSIM_LLC_NSAPI) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (l->tx_next[sapi] >= CELLSIM_LLC_COUNT_END) {
    return MTCSEC_ERR_EXHAUSTED;
  }
  *count = (uint32_t)l->tx_next[sapi];
  l->tx_next[sapi]++;
  return 0;
}

int cellsim_llc_rx_count(const cellsim_llc *l, uint8_t sapi, uint16_t nu,
                         uint32_t *count) {
  uint64_t floor, c;
  if (l == NULL || count == NULL || sapi >= CELLSIM_LLC_NSAPI ||
      nu > MTCSEC_LLC_NU_MAX) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* The smallest c >= floor with c mod 512 == nu. */
  floor = l->rx_next[sapi];
  c = (floor & ~(uint64_t)MTCSEC_LLC_NU_MAX) | nu;
  if (c < floor) {
    c += MTCSEC_LLC_NU_MAX + 1u;
  }
  if (c >= CELLSIM_LLC_COUNT_END) {
    return MTCSEC_ERR_EXHAUSTED;
  }
  *count = (uint32_t)c;
  return 0;
}

void cellsim_llc_rx_accept(cellsim_llc *l, uint8_t sapi, uint32_t count) {
  if (l == NULL || sapi >= CELLSIM_LLC_NSAPI) {
    return;
  }
  if ((uint64_t)count + 1 > l->rx_next[sapi]) {
    l->rx_next[sapi] = (uint64_t)count + 1;
  }
}

/* TS 44.064 6.2.3: SAPIs 0, 4, 6, 10 and 12..15 are reserved. */
static int llc_sapi_ok(uint8_t sapi) {
  return sapi == 1 || sapi == 2 || sapi == 3 || sapi == 5 || sapi == 7 ||
         sapi == 8 || sapi == 9 || sapi == 11;
}

int cellsim_llc_peek(const uint8_t *frame, size_t len, uint8_t *sapi,
                     uint16_t *nu) {
  uint8_t s;
  if (frame == NULL || sapi == NULL || nu == NULL ||
      len < MTCSEC_LLC_UI_HDR_LEN || (frame[0] & 0x80) != 0 ||
      (frame[1] & 0xe0) != 0xc0) {
    return MTCSEC_ERR_MALFORMED;
  }
  s = frame[0] & 0x0f;
  if (!llc_sapi_ok(s)) {
    return MTCSEC_ERR_MALFORMED;
  }
  *sapi = s;
  *nu = (uint16_t)(((frame[1] & 0x07) << 6) | (frame[2] >> 2));
  return 0;
}

int cellsim_llc_open(cellsim_llc *l, const mtcsec_crypto *crypto,
                     const uint8_t *ik, uint8_t direction, const uint8_t *frame,
                     size_t len, mtcsec_llc_ui *ui, uint32_t *count) {
  mtcsec_llc_ui u;
  uint8_t sapi;
  uint16_t nu;
  uint32_t c;
  int rv;

  if (l == NULL || ui == NULL || direction > 1) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = cellsim_llc_peek(frame, len, &sapi, &nu);
  if (rv != 0) {
    return rv;
  }
  rv = cellsim_llc_rx_count(l, sapi, nu, &c);
  if (rv != 0) {
    return rv;
  }
  if (ik != NULL) {
    rv =
      mtcsec_llc_ui_decode_mac(crypto, ik, c >> 9, direction, &u, frame, len);
  } else {
    rv = mtcsec_llc_ui_decode_fcs(&u, frame, len);
  }
  if (rv != 0) {
    return rv; /* nothing advanced */
  }
  cellsim_llc_rx_accept(l, sapi, c);
  *ui = u;
  if (count != NULL) {
    *count = c;
  }
  return 0;
}

mtcsec_ssize cellsim_llc_seal(cellsim_llc *l, const mtcsec_crypto *crypto,
                              const uint8_t *ik, uint8_t direction,
                              uint8_t sapi, const uint8_t *info, size_t infolen,
                              uint8_t *dest, size_t destlen) {
  mtcsec_llc_ui ui;
  size_t need = MTCSEC_LLC_UI_HDR_LEN + infolen +
                (ik != NULL ? MTCSEC_LLC_MACI_LEN : MTCSEC_LLC_FCS_LEN);
  uint32_t c;
  int rv;

  if (l == NULL || dest == NULL || direction > 1 || !llc_sapi_ok(sapi) ||
      infolen > MTCSEC_LLC_MAX_INFO || (info == NULL && infolen > 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < need) {
    return MTCSEC_ERR_NOBUF; /* before a COUNT is spent */
  }
  rv = cellsim_llc_tx_count(l, sapi, &c);
  if (rv != 0) {
    return rv;
  }
  memset(&ui, 0, sizeof(ui));
  ui.sapi = sapi;
  ui.cr = direction;
  ui.nu = (uint16_t)(c & MTCSEC_LLC_NU_MAX);
  ui.e = 0;
  ui.pm = 1;
  ui.info = info;
  ui.infolen = infolen;
  if (ik != NULL) {
    return mtcsec_llc_ui_encode_mac(crypto, ik, c >> 9, direction, &ui, dest,
                                    destlen);
  }
  return mtcsec_llc_ui_encode_fcs(&ui, dest, destlen);
}

/* ------------------------------------------------------------ GSUP */

#define GSUP_AUTH_TUPLE_IE 0x03
#define GSUP_KC_IE 0x22
#define GSUP_IK_IE 0x23
#define GSUP_CK_IE 0x24

int cellsim_gsup_scan(const uint8_t *msg, size_t len, cellsim_gsup_facts *f) {
  cellsim_gsup_facts r;
  size_t off = 1;

  if (msg == NULL || f == NULL || len < 1) {
    return MTCSEC_ERR_MALFORMED;
  }
  memset(&r, 0, sizeof(r));
  r.policy = -1;
  while (off < len) {
    uint8_t tag, ielen;
    const uint8_t *v;
    if (len - off < 2 || len - off - 2 < msg[off + 1]) {
      return MTCSEC_ERR_MALFORMED;
    }
    tag = msg[off];
    ielen = msg[off + 1];
    v = msg + off + 2;
    if (tag == GSUP_AUTH_TUPLE_IE) {
      size_t s = 0;
      int ik = 0;
      while (s < ielen) {
        if (ielen - s < 2 || ielen - s - 2 < v[s + 1]) {
          return MTCSEC_ERR_MALFORMED;
        }
        if (v[s] == GSUP_CK_IE) {
          r.ck_present = 1;
        } else if (v[s] == GSUP_KC_IE) {
          r.kc_present = 1;
        } else if (v[s] == GSUP_IK_IE) {
          ik = 1;
        }
        s += 2u + v[s + 1];
      }
      if (!ik) {
        r.ik_missing = 1;
      }
      r.ntuples++;
    } else if (tag == CELLSIM_GSUP_POLICY_IE) {
      /* docs/CELLULAR-HOME-PROXY.md: an unknown version counts as absent. */
      r.policy = ielen >= 2 && v[0] == 0x01 ? (int)v[1] : -1;
    }
    off += 2u + ielen;
  }
  *f = r;
  return 0;
}
