/*
 * Wire codec of PROTOCOL.md sections 3-7.  Every decoder checks a length
 * before it reads; nothing here allocates.
 */
#include <string.h>

#include <mtcsec/codec.h>

#include "core/util.h"

int mtcsec_msg_type(const uint8_t *msg, size_t msglen) {
  if (msg == NULL || msglen == 0) {
    return MTCSEC_ERR_MALFORMED;
  }
  if ((msg[0] >> 4) != MTCSEC_PROTOCOL_VERSION || (msg[0] & 0x0f) > 7) {
    return MTCSEC_ERR_UNSUPPORTED;
  }
  return msg[0];
}

static const char *const errcode_names[] = {"OK",
                                            "MALFORMED",
                                            "WRONG_SERVER",
                                            "UNKNOWN_DEVICE",
                                            "DEVICE_DISABLED",
                                            "UNSUPPORTED_SUITE",
                                            "UE_ID_MISMATCH",
                                            "BAD_MIC",
                                            "REPLAY",
                                            "UE_NOT_AUTHORIZED",
                                            "RELAY_NOT_AUTHORIZED",
                                            "RATE_LIMITED",
                                            "INTERNAL"};

const char *mtcsec_errcode_name(int code) {
  if (code < 0 || code > MTCSEC_ERRCODE_MAX) {
    return "UNKNOWN";
  }
  return errcode_names[code];
}

/* ---------------------------------------------------------------- TLVs */

static int32_t get_i32(const uint8_t *p) {
  uint32_t u = mtcsec_get_u32(p);
  /* Two's complement without implementation-defined conversion. */
  return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/*
 * Walks the TLVs of one info field (section 3).  d != NULL selects the
 * MTCdInfo numbering, s != NULL the MTCsInfo one; the other info's types are
 * unknown here.  Rejects truncated framing, repeated types, unknown critical
 * types and known types with the wrong length.
 */
static int info_walk(const uint8_t *in, size_t inlen, mtcsec_dinfo *d,
                     mtcsec_sinfo *s) {
  uint8_t seen[32];
  size_t off = 0;

  memset(seen, 0, sizeof(seen));
  while (off < inlen) {
    uint8_t type, len;
    const uint8_t *v;
    int known = 1;

    if (inlen - off < 2) {
      return MTCSEC_ERR_MALFORMED;
    }
    type = in[off];
    len = in[off + 1];
    if (inlen - off - 2 < len) {
      return MTCSEC_ERR_MALFORMED;
    }
    if (seen[type >> 3] & (1u << (type & 7))) {
      return MTCSEC_ERR_MALFORMED;
    }
    seen[type >> 3] = (uint8_t)(seen[type >> 3] | (1u << (type & 7)));
    v = in + off + 2;

    if (d != NULL) {
      switch (type) {
      case MTCSEC_TLV_BATTERY:
        if (len != 1) {
          return MTCSEC_ERR_MALFORMED;
        }
        d->battery = v[0];
        d->present |= MTCSEC_DINFO_BATTERY;
        break;
      case MTCSEC_TLV_LOCATION:
        if (len != 8) {
          return MTCSEC_ERR_MALFORMED;
        }
        d->lat = get_i32(v);
        d->lon = get_i32(v + 4);
        d->present |= MTCSEC_DINFO_LOCATION;
        break;
      case MTCSEC_TLV_REQ_PERMS:
        if (len != 1) {
          return MTCSEC_ERR_MALFORMED;
        }
        d->req_perms = v[0];
        d->present |= MTCSEC_DINFO_REQ_PERMS;
        break;
      case MTCSEC_TLV_SUITES:
        if (len < 1) {
          return MTCSEC_ERR_MALFORMED;
        }
        d->suites = v;
        d->nsuites = len;
        d->present |= MTCSEC_DINFO_SUITES;
        break;
      case MTCSEC_TLV_PATH:
        if (len < MTCSEC_ID_LEN || len % MTCSEC_ID_LEN != 0) {
          return MTCSEC_ERR_MALFORMED;
        }
        d->path = v;
        d->npath = (uint8_t)(len / MTCSEC_ID_LEN);
        d->present |= MTCSEC_DINFO_PATH;
        break;
      default:
        known = 0;
      }
    } else {
      switch (type) {
      case MTCSEC_TLV_LIFETIME:
        if (len != 4) {
          return MTCSEC_ERR_MALFORMED;
        }
        s->lifetime = mtcsec_get_u32(v);
        s->present |= MTCSEC_SINFO_LIFETIME;
        break;
      case MTCSEC_TLV_PERMS:
        if (len != 1) {
          return MTCSEC_ERR_MALFORMED;
        }
        s->perms = v[0];
        s->present |= MTCSEC_SINFO_PERMS;
        break;
      case MTCSEC_TLV_KEY_ID:
        if (len != 2) {
          return MTCSEC_ERR_MALFORMED;
        }
        s->key_id = mtcsec_get_u16(v);
        s->present |= MTCSEC_SINFO_KEY_ID;
        break;
      default:
        known = 0;
      }
    }
    if (!known && (type & 0x80)) {
      return MTCSEC_ERR_MALFORMED; /* unknown critical type */
    }
    off += 2u + len;
  }
  return 0;
}

int mtcsec_dinfo_decode(mtcsec_dinfo *out, const uint8_t *in, size_t inlen) {
  int rv;
  if (out == NULL || (in == NULL && inlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(out, 0, sizeof(*out));
  if (inlen > MTCSEC_MAX_INFO_LEN) {
    return MTCSEC_ERR_MALFORMED;
  }
  rv = info_walk(in, inlen, out, NULL);
  if (rv != 0) {
    memset(out, 0, sizeof(*out));
  }
  return rv;
}

int mtcsec_sinfo_decode(mtcsec_sinfo *out, const uint8_t *in, size_t inlen) {
  const unsigned all =
    MTCSEC_SINFO_LIFETIME | MTCSEC_SINFO_PERMS | MTCSEC_SINFO_KEY_ID;
  int rv;
  if (out == NULL || (in == NULL && inlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(out, 0, sizeof(*out));
  if (inlen > MTCSEC_MAX_INFO_LEN) {
    return MTCSEC_ERR_MALFORMED;
  }
  rv = info_walk(in, inlen, NULL, out);
  if (rv == 0 && (out->present & all) != all) {
    rv = MTCSEC_ERR_MALFORMED;
  }
  if (rv != 0) {
    memset(out, 0, sizeof(*out));
  }
  return rv;
}

static void put_tlv_hdr(uint8_t *p, uint8_t type, uint8_t len) {
  p[0] = type;
  p[1] = len;
}

mtcsec_ssize mtcsec_dinfo_encode(uint8_t *dest, size_t destlen,
                                 const mtcsec_dinfo *d) {
  size_t need = 0, off = 0;

  if (d == NULL || (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (d->present & MTCSEC_DINFO_BATTERY) {
    need += 3;
  }
  if (d->present & MTCSEC_DINFO_LOCATION) {
    need += 10;
  }
  if (d->present & MTCSEC_DINFO_REQ_PERMS) {
    need += 3;
  }
  if (d->present & MTCSEC_DINFO_SUITES) {
    if (d->nsuites == 0 || d->suites == NULL) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
    need += 2u + d->nsuites;
  }
  if (d->present & MTCSEC_DINFO_PATH) {
    if (d->npath == 0 || d->npath > MTCSEC_MAX_INFO_LEN / MTCSEC_ID_LEN ||
        d->path == NULL) {
      return MTCSEC_ERR_INVALID_ARGUMENT;
    }
    need += 2u + (size_t)d->npath * MTCSEC_ID_LEN;
  }
  if (need > MTCSEC_MAX_INFO_LEN) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < need) {
    return MTCSEC_ERR_NOBUF;
  }
  /* Ascending type order (section 3). */
  if (d->present & MTCSEC_DINFO_BATTERY) {
    put_tlv_hdr(dest + off, MTCSEC_TLV_BATTERY, 1);
    dest[off + 2] = d->battery;
    off += 3;
  }
  if (d->present & MTCSEC_DINFO_LOCATION) {
    put_tlv_hdr(dest + off, MTCSEC_TLV_LOCATION, 8);
    mtcsec_put_u32(dest + off + 2, (uint32_t)d->lat);
    mtcsec_put_u32(dest + off + 6, (uint32_t)d->lon);
    off += 10;
  }
  if (d->present & MTCSEC_DINFO_REQ_PERMS) {
    put_tlv_hdr(dest + off, MTCSEC_TLV_REQ_PERMS, 1);
    dest[off + 2] = d->req_perms;
    off += 3;
  }
  if (d->present & MTCSEC_DINFO_SUITES) {
    put_tlv_hdr(dest + off, MTCSEC_TLV_SUITES, d->nsuites);
    memcpy(dest + off + 2, d->suites, d->nsuites);
    off += 2u + d->nsuites;
  }
  if (d->present & MTCSEC_DINFO_PATH) {
    size_t plen = (size_t)d->npath * MTCSEC_ID_LEN;
    put_tlv_hdr(dest + off, MTCSEC_TLV_PATH, (uint8_t)plen);
    memcpy(dest + off + 2, d->path, plen);
    off += 2u + plen;
  }
  return (mtcsec_ssize)off;
}

mtcsec_ssize mtcsec_sinfo_encode(uint8_t *dest, size_t destlen,
                                 const mtcsec_sinfo *s) {
  if (s == NULL || (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < 13) {
    return MTCSEC_ERR_NOBUF;
  }
  put_tlv_hdr(dest, MTCSEC_TLV_LIFETIME, 4);
  mtcsec_put_u32(dest + 2, s->lifetime);
  put_tlv_hdr(dest + 6, MTCSEC_TLV_PERMS, 1);
  dest[8] = s->perms;
  put_tlv_hdr(dest + 9, MTCSEC_TLV_KEY_ID, 2);
  mtcsec_put_u16(dest + 11, s->key_id);
  return 13;
}

/* ------------------------------------------------------------------ M0 */

int mtcsec_m0_decode(mtcsec_m0 *m0, const uint8_t *in, size_t inlen) {
  if (m0 == NULL || in == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (inlen < MTCSEC_M0_FIXED_LEN || in[0] != MTCSEC_MSG_M0 ||
      inlen != MTCSEC_M0_FIXED_LEN + (size_t)in[10] * MTCSEC_ID_LEN) {
    return MTCSEC_ERR_MALFORMED;
  }
  m0->ueid = in + 1;
  m0->req_perms = in[9];
  m0->nhops = in[10];
  m0->hops = in + MTCSEC_M0_FIXED_LEN;
  return 0;
}

mtcsec_ssize mtcsec_m0_encode(uint8_t *dest, size_t destlen,
                              const uint8_t ueid[MTCSEC_ID_LEN],
                              uint8_t req_perms, const uint8_t *hops,
                              uint8_t nhops) {
  size_t need = MTCSEC_M0_FIXED_LEN + (size_t)nhops * MTCSEC_ID_LEN;
  if (ueid == NULL || (hops == NULL && nhops != 0) ||
      (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < need) {
    return MTCSEC_ERR_NOBUF;
  }
  dest[0] = MTCSEC_MSG_M0;
  memcpy(dest + 1, ueid, MTCSEC_ID_LEN);
  dest[9] = req_perms;
  dest[10] = nhops;
  if (nhops != 0) {
    memcpy(dest + MTCSEC_M0_FIXED_LEN, hops, (size_t)nhops * MTCSEC_ID_LEN);
  }
  return (mtcsec_ssize)need;
}

mtcsec_ssize mtcsec_m0_append_hop(uint8_t *dest, size_t destlen,
                                  const uint8_t *in, size_t inlen,
                                  const uint8_t gwid[MTCSEC_ID_LEN]) {
  mtcsec_m0 m0;
  int rv;
  if (gwid == NULL || (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = mtcsec_m0_decode(&m0, in, inlen);
  if (rv != 0) {
    return rv;
  }
  if (m0.nhops == 255) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (destlen < inlen + MTCSEC_ID_LEN) {
    return MTCSEC_ERR_NOBUF;
  }
  memmove(dest, in, inlen);
  dest[10] = (uint8_t)(m0.nhops + 1);
  memcpy(dest + inlen, gwid, MTCSEC_ID_LEN);
  return (mtcsec_ssize)(inlen + MTCSEC_ID_LEN);
}

/* ------------------------------------------------------------- M1 / M4 */

int mtcsec_hs_decode(mtcsec_hs *hs, uint8_t type, const uint8_t *in,
                     size_t inlen) {
  const mtcsec_suite_params *sp;
  size_t signed_len;
  int rv;

  if (hs == NULL || in == NULL ||
      (type != MTCSEC_MSG_M1 && type != MTCSEC_MSG_M4)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(hs, 0, sizeof(*hs));
  if (inlen < MTCSEC_HS_FIXED_LEN || in[0] != type) {
    return MTCSEC_ERR_MALFORMED;
  }
  signed_len = MTCSEC_HS_FIXED_LEN + (size_t)in[34];
  if (signed_len > inlen) {
    return MTCSEC_ERR_MALFORMED;
  }
  sp = mtcsec_suite_get(in[1]);
  if (sp != NULL && inlen != signed_len + sp->miclen) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (type == MTCSEC_MSG_M1) {
    mtcsec_dinfo d;
    rv = mtcsec_dinfo_decode(&d, in + MTCSEC_HS_FIXED_LEN, in[34]);
  } else {
    mtcsec_sinfo s;
    rv = mtcsec_sinfo_decode(&s, in + MTCSEC_HS_FIXED_LEN, in[34]);
  }
  if (rv != 0) {
    return MTCSEC_ERR_MALFORMED;
  }
  hs->raw = in;
  hs->type = type;
  hs->suite = in[1];
  hs->id_a = in + 2;
  hs->id_b = in + 10;
  hs->nonce = in + 18;
  hs->ueid = in + 26;
  hs->info_len = in[34];
  hs->info = in + MTCSEC_HS_FIXED_LEN;
  hs->signed_len = signed_len;
  hs->mic = in + signed_len;
  /* Unknown suite: t is 0 for the structural check (section 5). */
  hs->miclen = sp != NULL ? sp->miclen : 0;
  return 0;
}

/* Writes the 35 fixed bytes and the info of an M1 or M4. */
static void hs_put(uint8_t *dest, uint8_t type, uint8_t suite,
                   const uint8_t *id_a, const uint8_t *id_b,
                   const uint8_t *nonce, const uint8_t *ueid,
                   const uint8_t *info, size_t info_len) {
  dest[0] = type;
  dest[1] = suite;
  memcpy(dest + 2, id_a, MTCSEC_ID_LEN);
  memcpy(dest + 10, id_b, MTCSEC_ID_LEN);
  memcpy(dest + 18, nonce, MTCSEC_NONCE_LEN);
  memcpy(dest + 26, ueid, MTCSEC_ID_LEN);
  dest[34] = (uint8_t)info_len;
  if (info_len != 0) {
    memcpy(dest + MTCSEC_HS_FIXED_LEN, info, info_len);
  }
}

mtcsec_ssize mtcsec_m1_build(uint8_t *dest, size_t destlen,
                             const mtcsec_crypto *crypto, const uint8_t *k_auth,
                             const mtcsec_m1_fields *f) {
  const mtcsec_suite_params *sp;
  mtcsec_dinfo d;
  mtcsec_iov iov;
  size_t signed_len;
  int rv;

  if (f == NULL || crypto == NULL || k_auth == NULL || f->mtcd_id == NULL ||
      f->mtcs_id == NULL || f->nonce == NULL || f->ueid == NULL ||
      (f->info == NULL && f->info_len != 0) || (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  sp = mtcsec_suite_get(f->suite);
  if (sp == NULL || f->info_len > MTCSEC_MAX_INFO_LEN ||
      mtcsec_dinfo_decode(&d, f->info, f->info_len) != 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  signed_len = MTCSEC_HS_FIXED_LEN + f->info_len;
  if (destlen < signed_len + sp->miclen) {
    return MTCSEC_ERR_NOBUF;
  }
  hs_put(dest, MTCSEC_MSG_M1, f->suite, f->mtcd_id, f->mtcs_id, f->nonce,
         f->ueid, f->info, f->info_len);
  iov.base = dest;
  iov.len = signed_len;
  rv = crypto->ops->mac(crypto->ctx, (mtcsec_mac_alg)sp->mac, k_auth,
                        sp->keylen, &iov, 1, dest + signed_len, sp->miclen);
  if (rv != 0) {
    mtcsec_zeroize(dest, signed_len + sp->miclen);
    return rv;
  }
  return (mtcsec_ssize)(signed_len + sp->miclen);
}

/* Computes the MIC over iov and compares it with expect in constant time. */
static int mic_check(const mtcsec_crypto *crypto, const mtcsec_suite_params *sp,
                     const uint8_t *key, const mtcsec_iov *iov, size_t iovcnt,
                     const uint8_t *expect) {
  uint8_t mic[MTCSEC_MAX_MIC_LEN];
  int rv = crypto->ops->mac(crypto->ctx, (mtcsec_mac_alg)sp->mac, key,
                            sp->keylen, iov, iovcnt, mic, sp->miclen);
  if (rv == 0 && mtcsec_ct_memcmp(mic, expect, sp->miclen) != 0) {
    rv = MTCSEC_ERR_MIC;
  }
  mtcsec_zeroize(mic, sizeof(mic));
  return rv;
}

int mtcsec_m1_verify(const mtcsec_hs *m1, const mtcsec_crypto *crypto,
                     const uint8_t *k_auth) {
  const mtcsec_suite_params *sp;
  mtcsec_iov iov;
  if (m1 == NULL || crypto == NULL || k_auth == NULL || m1->raw == NULL ||
      m1->type != MTCSEC_MSG_M1) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  sp = mtcsec_suite_get(m1->suite);
  if (sp == NULL || m1->miclen != sp->miclen) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  iov.base = m1->raw;
  iov.len = m1->signed_len;
  return mic_check(crypto, sp, k_auth, &iov, 1, m1->mic);
}

/* The MTCsMIC input of section 4, as pieces. */
static void m4_mic_iov(mtcsec_iov iov[4], const uint8_t *m4, size_t signed_len,
                       const uint8_t *mtcd_nonce, const uint8_t *info_len,
                       const uint8_t *m1_info, size_t m1_info_len) {
  iov[0].base = m4;
  iov[0].len = signed_len;
  iov[1].base = mtcd_nonce;
  iov[1].len = MTCSEC_NONCE_LEN;
  iov[2].base = info_len;
  iov[2].len = 1;
  iov[3].base = m1_info;
  iov[3].len = m1_info_len;
}

mtcsec_ssize mtcsec_m4_build(uint8_t *dest, size_t destlen,
                             const mtcsec_crypto *crypto, const uint8_t *k_auth,
                             const mtcsec_m4_fields *f) {
  const mtcsec_suite_params *sp;
  mtcsec_sinfo s;
  mtcsec_iov iov[4];
  uint8_t m1_info_len;
  size_t signed_len;
  int rv;

  if (f == NULL || crypto == NULL || k_auth == NULL || f->mtcs_id == NULL ||
      f->mtcd_id == NULL || f->mtcs_nonce == NULL || f->ueid == NULL ||
      f->mtcd_nonce == NULL || (f->info == NULL && f->info_len != 0) ||
      (f->m1_info == NULL && f->m1_info_len != 0) ||
      (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  sp = mtcsec_suite_get(f->suite);
  if (sp == NULL || f->info_len > MTCSEC_MAX_INFO_LEN ||
      f->m1_info_len > MTCSEC_MAX_INFO_LEN ||
      mtcsec_sinfo_decode(&s, f->info, f->info_len) != 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  signed_len = MTCSEC_HS_FIXED_LEN + f->info_len;
  if (destlen < signed_len + sp->miclen) {
    return MTCSEC_ERR_NOBUF;
  }
  hs_put(dest, MTCSEC_MSG_M4, f->suite, f->mtcs_id, f->mtcd_id, f->mtcs_nonce,
         f->ueid, f->info, f->info_len);
  m1_info_len = (uint8_t)f->m1_info_len;
  m4_mic_iov(iov, dest, signed_len, f->mtcd_nonce, &m1_info_len, f->m1_info,
             f->m1_info_len);
  rv = crypto->ops->mac(crypto->ctx, (mtcsec_mac_alg)sp->mac, k_auth,
                        sp->keylen, iov, 4, dest + signed_len, sp->miclen);
  if (rv != 0) {
    mtcsec_zeroize(dest, signed_len + sp->miclen);
    return rv;
  }
  return (mtcsec_ssize)(signed_len + sp->miclen);
}

int mtcsec_m4_verify(const mtcsec_hs *m4, const mtcsec_crypto *crypto,
                     const uint8_t *k_auth, const uint8_t *mtcd_nonce,
                     const uint8_t *m1_info, size_t m1_info_len) {
  const mtcsec_suite_params *sp;
  mtcsec_iov iov[4];
  uint8_t info_len;
  if (m4 == NULL || crypto == NULL || k_auth == NULL || mtcd_nonce == NULL ||
      m4->raw == NULL || m4->type != MTCSEC_MSG_M4 ||
      (m1_info == NULL && m1_info_len != 0) ||
      m1_info_len > MTCSEC_MAX_INFO_LEN) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  sp = mtcsec_suite_get(m4->suite);
  if (sp == NULL || m4->miclen != sp->miclen) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  info_len = (uint8_t)m1_info_len;
  m4_mic_iov(iov, m4->raw, m4->signed_len, mtcd_nonce, &info_len, m1_info,
             m1_info_len);
  return mic_check(crypto, sp, k_auth, iov, 4, m4->mic);
}

/* ----------------------------------------------------- server-link frames */

mtcsec_ssize mtcsec_frame_parse(mtcsec_frame *fr, const uint8_t *in,
                                size_t inlen) {
  size_t len;
  if (fr == NULL || (in == NULL && inlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (inlen < 2) {
    return 0;
  }
  len = mtcsec_get_u16(in);
  if (len < 5) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (inlen < 2 + len) {
    return 0;
  }
  fr->type = in[2];
  fr->req_id = mtcsec_get_u32(in + 3);
  fr->body = in + MTCSEC_FRAME_HDR_LEN;
  fr->bodylen = len - 5;
  return (mtcsec_ssize)(2 + len);
}

mtcsec_ssize mtcsec_frame_encode(uint8_t *dest, size_t destlen, uint8_t type,
                                 uint32_t req_id, const uint8_t *body,
                                 size_t bodylen) {
  if ((body == NULL && bodylen != 0) || (dest == NULL && destlen != 0) ||
      bodylen > 65535 - 5) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < MTCSEC_FRAME_HDR_LEN + bodylen) {
    return MTCSEC_ERR_NOBUF;
  }
  mtcsec_put_u16(dest, (uint16_t)(bodylen + 5));
  dest[2] = type;
  mtcsec_put_u32(dest + 3, req_id);
  if (bodylen != 0) {
    memmove(dest + MTCSEC_FRAME_HDR_LEN, body, bodylen);
  }
  return (mtcsec_ssize)(MTCSEC_FRAME_HDR_LEN + bodylen);
}

mtcsec_ssize mtcsec_err_frame_encode(uint8_t *dest, size_t destlen,
                                     uint32_t req_id, uint8_t code,
                                     const char *detail) {
  size_t dlen = detail != NULL ? strlen(detail) : 0;
  if (dest == NULL && destlen != 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (dlen > 255) {
    dlen = 255;
    /* Do not cut a UTF-8 sequence in half. */
    while (dlen > 0 && ((uint8_t)detail[dlen] & 0xc0) == 0x80) {
      dlen--;
    }
  }
  if (destlen < MTCSEC_FRAME_HDR_LEN + 1 + dlen) {
    return MTCSEC_ERR_NOBUF;
  }
  mtcsec_put_u16(dest, (uint16_t)(dlen + 6));
  dest[2] = MTCSEC_MSG_ERR;
  mtcsec_put_u32(dest + 3, req_id);
  dest[7] = code;
  if (dlen != 0) {
    memcpy(dest + 8, detail, dlen);
  }
  return (mtcsec_ssize)(MTCSEC_FRAME_HDR_LEN + 1 + dlen);
}

int mtcsec_m3_decode(mtcsec_hs *m4, const uint8_t **dmkey, size_t *dmkeylen,
                     const uint8_t *body, size_t bodylen) {
  const mtcsec_suite_params *sp;
  size_t m4len;
  int rv;
  if (m4 == NULL || dmkey == NULL || dmkeylen == NULL || body == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (bodylen < MTCSEC_HS_FIXED_LEN) {
    return MTCSEC_ERR_MALFORMED;
  }
  sp = mtcsec_suite_get(body[1]);
  if (sp == NULL) {
    return MTCSEC_ERR_MALFORMED;
  }
  m4len = MTCSEC_HS_FIXED_LEN + (size_t)body[34] + sp->miclen;
  if (bodylen != m4len + sp->keylen) {
    return MTCSEC_ERR_MALFORMED;
  }
  rv = mtcsec_hs_decode(m4, MTCSEC_MSG_M4, body, m4len);
  if (rv != 0) {
    return rv;
  }
  *dmkey = body + m4len;
  *dmkeylen = sp->keylen;
  return 0;
}

/* ------------------------------------------------------------ revocation */

int mtcsec_revoke_decode(mtcsec_revoke *rv, const uint8_t *in, size_t inlen,
                         size_t miclen) {
  if (rv == NULL || in == NULL || miclen == 0 || miclen > MTCSEC_MAX_MIC_LEN) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (inlen != MTCSEC_REVOKE_FIXED_LEN + miclen || in[0] != MTCSEC_MSG_REVOKE) {
    return MTCSEC_ERR_MALFORMED;
  }
  rv->mtcs_id = in + 1;
  rv->mtcd_id = in + 9;
  rv->key_id = mtcsec_get_u16(in + 17);
  rv->mtcd_nonce = in + 19;
  rv->mic = in + MTCSEC_REVOKE_FIXED_LEN;
  rv->miclen = (uint8_t)miclen;
  return 0;
}

mtcsec_ssize mtcsec_revoke_build(uint8_t *dest, size_t destlen,
                                 const mtcsec_crypto *crypto, uint8_t suite,
                                 const uint8_t *k_auth,
                                 const uint8_t mtcs_id[MTCSEC_ID_LEN],
                                 const uint8_t mtcd_id[MTCSEC_ID_LEN],
                                 uint16_t key_id,
                                 const uint8_t mtcd_nonce[MTCSEC_NONCE_LEN]) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  mtcsec_iov iov;
  int rv;
  if (sp == NULL || crypto == NULL || k_auth == NULL || mtcs_id == NULL ||
      mtcd_id == NULL || mtcd_nonce == NULL || (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < MTCSEC_REVOKE_FIXED_LEN + sp->miclen) {
    return MTCSEC_ERR_NOBUF;
  }
  dest[0] = MTCSEC_MSG_REVOKE;
  memcpy(dest + 1, mtcs_id, MTCSEC_ID_LEN);
  memcpy(dest + 9, mtcd_id, MTCSEC_ID_LEN);
  mtcsec_put_u16(dest + 17, key_id);
  memcpy(dest + 19, mtcd_nonce, MTCSEC_NONCE_LEN);
  iov.base = dest;
  iov.len = MTCSEC_REVOKE_FIXED_LEN;
  rv =
    crypto->ops->mac(crypto->ctx, (mtcsec_mac_alg)sp->mac, k_auth, sp->keylen,
                     &iov, 1, dest + MTCSEC_REVOKE_FIXED_LEN, sp->miclen);
  if (rv != 0) {
    return rv;
  }
  return (mtcsec_ssize)(MTCSEC_REVOKE_FIXED_LEN + sp->miclen);
}

int mtcsec_revoke_verify(const mtcsec_revoke *rv, const uint8_t *in,
                         size_t inlen, const mtcsec_crypto *crypto,
                         uint8_t suite, const uint8_t *k_auth) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  mtcsec_iov iov;
  if (rv == NULL || in == NULL || crypto == NULL || k_auth == NULL ||
      sp == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (rv->miclen != sp->miclen ||
      inlen != MTCSEC_REVOKE_FIXED_LEN + sp->miclen) {
    return MTCSEC_ERR_MALFORMED;
  }
  iov.base = in;
  iov.len = MTCSEC_REVOKE_FIXED_LEN;
  return mic_check(crypto, sp, k_auth, &iov, 1, in + MTCSEC_REVOKE_FIXED_LEN);
}

/* ----------------------------------------------------- channel record */

int mtcsec_record_hdr_decode(mtcsec_record_hdr *h, const uint8_t *in,
                             size_t inlen, size_t taglen) {
  if (h == NULL || in == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (inlen < MTCSEC_RECORD_HDR_LEN + taglen || in[0] != MTCSEC_MSG_RECORD) {
    return MTCSEC_ERR_MALFORMED;
  }
  h->key_id = mtcsec_get_u16(in + 1);
  h->seq = mtcsec_get_u32(in + 3);
  return 0;
}

/* ------------------------------------------------------- key schedule */

int mtcsec_derive_device_keys(const mtcsec_crypto *crypto, uint8_t suite,
                              const uint8_t *pskey,
                              const uint8_t mtcd_id[MTCSEC_ID_LEN],
                              const uint8_t mtcs_id[MTCSEC_ID_LEN],
                              uint8_t *k_auth, uint8_t *k_dm) {
  static const char l_auth[] = "mtcsec K_auth";
  static const char l_dm[] = "mtcsec K_dm";
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  uint8_t ctx[2 * MTCSEC_ID_LEN];
  int rv;
  if (sp == NULL || crypto == NULL || pskey == NULL || mtcd_id == NULL ||
      mtcs_id == NULL || k_auth == NULL || k_dm == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memcpy(ctx, mtcd_id, MTCSEC_ID_LEN);
  memcpy(ctx + MTCSEC_ID_LEN, mtcs_id, MTCSEC_ID_LEN);
  rv = mtcsec_kdf(crypto, (mtcsec_mac_alg)sp->mac, pskey, sp->keylen, l_auth,
                  sizeof(l_auth) - 1, ctx, sizeof(ctx), k_auth, sp->keylen);
  if (rv == 0) {
    rv = mtcsec_kdf(crypto, (mtcsec_mac_alg)sp->mac, pskey, sp->keylen, l_dm,
                    sizeof(l_dm) - 1, ctx, sizeof(ctx), k_dm, sp->keylen);
  }
  if (rv != 0) {
    mtcsec_zeroize(k_auth, sp->keylen);
    mtcsec_zeroize(k_dm, sp->keylen);
  }
  return rv;
}

int mtcsec_derive_dmkey(const mtcsec_crypto *crypto, uint8_t suite,
                        const uint8_t *k_dm,
                        const uint8_t mtcd_id[MTCSEC_ID_LEN],
                        const uint8_t mtcs_id[MTCSEC_ID_LEN],
                        const uint8_t mtcd_nonce[MTCSEC_NONCE_LEN],
                        const uint8_t mtcs_nonce[MTCSEC_NONCE_LEN],
                        const uint8_t ueid[MTCSEC_ID_LEN], uint8_t *dmkey) {
  static const char label[] = "mtcsec DMKey";
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  uint8_t ctx[5 * MTCSEC_ID_LEN];
  if (sp == NULL || crypto == NULL || k_dm == NULL || mtcd_id == NULL ||
      mtcs_id == NULL || mtcd_nonce == NULL || mtcs_nonce == NULL ||
      ueid == NULL || dmkey == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memcpy(ctx, mtcd_id, 8);
  memcpy(ctx + 8, mtcs_id, 8);
  memcpy(ctx + 16, mtcd_nonce, 8);
  memcpy(ctx + 24, mtcs_nonce, 8);
  memcpy(ctx + 32, ueid, 8);
  return mtcsec_kdf(crypto, (mtcsec_mac_alg)sp->mac, k_dm, sp->keylen, label,
                    sizeof(label) - 1, ctx, sizeof(ctx), dmkey, sp->keylen);
}
