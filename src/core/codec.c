/*
 * Wire codec of PROTOCOL.md sections 3-7.  Every decoder checks a length
 * before it reads; nothing here allocates.
 */
#include <string.h>

#include <mtcsec/codec.h>

#include "core/internal.h"
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

/* A type an info field knows (section 3) and its length: exactly len
 * bytes, or with list set a non-empty list of len-byte items.  A rule's
 * index in its table is the field's presence bit (MTCSEC_DINFO_*,
 * MTCSEC_SINFO_*). */
typedef struct tlv_rule {
  uint8_t type;
  uint8_t len;
  uint8_t list;
} tlv_rule;

#define TLV_MAX_RULES 5

static const tlv_rule dinfo_rules[TLV_MAX_RULES] = {
  {MTCSEC_TLV_BATTERY, 1, 0},
  {MTCSEC_TLV_LOCATION, 8, 0},
  {MTCSEC_TLV_REQ_PERMS, 1, 0},
  {MTCSEC_TLV_SUITES, 1, 1},
  {MTCSEC_TLV_PATH, MTCSEC_ID_LEN, 1}};

static const tlv_rule sinfo_rules[3] = {{MTCSEC_TLV_LIFETIME, 4, 0},
                                        {MTCSEC_TLV_PERMS, 1, 0},
                                        {MTCSEC_TLV_KEY_ID, 2, 0}};

/*
 * Walks the TLVs of one info field (section 3) against that field's rules;
 * the other field's types are unknown here.  Rejects more than 255 bytes,
 * truncated framing, repeated types, unknown critical types and known types
 * with the wrong length.  Returns the presence mask (bit i: the type of
 * rules[i] was there, its value at val[i], vlen[i] bytes long) or
 * MTCSEC_ERR_MALFORMED.
 */
static int tlv_walk(const uint8_t *in, size_t inlen, const tlv_rule *rules,
                    size_t nrules, const uint8_t **val, uint8_t *vlen) {
  uint8_t seen[32];
  size_t off = 0, i;
  unsigned present = 0;

  if (inlen > MTCSEC_MAX_INFO_LEN) {
    return MTCSEC_ERR_MALFORMED;
  }
  memset(seen, 0, sizeof(seen));
  while (off < inlen) {
    uint8_t type, len;
    if (inlen - off < 2 || inlen - off - 2 < in[off + 1]) {
      return MTCSEC_ERR_MALFORMED;
    }
    type = in[off];
    len = in[off + 1];
    if (seen[type >> 3] & (1u << (type & 7))) {
      return MTCSEC_ERR_MALFORMED;
    }
    seen[type >> 3] = (uint8_t)(seen[type >> 3] | (1u << (type & 7)));
    for (i = 0; i < nrules && rules[i].type != type; i++) {
    }
    if (i < nrules) {
      if (rules[i].list ? len == 0 || len % rules[i].len != 0
                        : len != rules[i].len) {
        return MTCSEC_ERR_MALFORMED;
      }
      val[i] = in + off + 2;
      vlen[i] = len;
      present |= 1u << i;
    } else if (type & 0x80) {
      return MTCSEC_ERR_MALFORMED; /* unknown critical type */
    }
    off += 2u + len;
  }
  return (int)present;
}

int mtcsec_dinfo_decode(mtcsec_dinfo *out, const uint8_t *in, size_t inlen) {
  const uint8_t *v[TLV_MAX_RULES];
  uint8_t n[TLV_MAX_RULES];
  int present;
  if (out == NULL || (in == NULL && inlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(out, 0, sizeof(*out));
  present = tlv_walk(in, inlen, dinfo_rules, TLV_MAX_RULES, v, n);
  if (present < 0) {
    return present;
  }
  out->present = (unsigned)present;
  if (present & MTCSEC_DINFO_BATTERY) {
    out->battery = v[0][0];
  }
  if (present & MTCSEC_DINFO_LOCATION) {
    out->lat = get_i32(v[1]);
    out->lon = get_i32(v[1] + 4);
  }
  if (present & MTCSEC_DINFO_REQ_PERMS) {
    out->req_perms = v[2][0];
  }
  if (present & MTCSEC_DINFO_SUITES) {
    out->suites = v[3];
    out->nsuites = n[3];
  }
  if (present & MTCSEC_DINFO_PATH) {
    out->path = v[4];
    out->npath = (uint8_t)(n[4] / MTCSEC_ID_LEN);
  }
  return 0;
}

int mtcsec_sinfo_decode(mtcsec_sinfo *out, const uint8_t *in, size_t inlen) {
  const unsigned all =
    MTCSEC_SINFO_LIFETIME | MTCSEC_SINFO_PERMS | MTCSEC_SINFO_KEY_ID;
  const uint8_t *v[3];
  uint8_t n[3];
  int present;
  if (out == NULL || (in == NULL && inlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  memset(out, 0, sizeof(*out));
  present = tlv_walk(in, inlen, sinfo_rules, 3, v, n);
  if (present < 0) {
    return present;
  }
  if ((unsigned)present != all) {
    return MTCSEC_ERR_MALFORMED; /* all three are mandatory */
  }
  out->present = all;
  out->lifetime = mtcsec_get_u32(v[0]);
  out->perms = v[1][0];
  out->key_id = mtcsec_get_u16(v[2]);
  return 0;
}

static void put_tlv_hdr(uint8_t *p, uint8_t type, uint8_t len) {
  p[0] = type;
  p[1] = len;
}

mtcsec_ssize mtcsec_dinfo_encode(uint8_t *dest, size_t destlen,
                                 const mtcsec_dinfo *d) {
  const uint8_t *v[TLV_MAX_RULES];
  size_t n[TLV_MAX_RULES], need = 0, off = 0, i;
  uint8_t loc[8];

  if (d == NULL || (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* The value of each field, in the order of dinfo_rules. */
  mtcsec_put_u32(loc, (uint32_t)d->lat);
  mtcsec_put_u32(loc + 4, (uint32_t)d->lon);
  v[0] = &d->battery;
  n[0] = 1;
  v[1] = loc;
  n[1] = sizeof(loc);
  v[2] = &d->req_perms;
  n[2] = 1;
  v[3] = d->suites;
  n[3] = d->nsuites;
  v[4] = d->path;
  n[4] = (size_t)d->npath * MTCSEC_ID_LEN;
  for (i = 0; i < TLV_MAX_RULES; i++) {
    if (d->present & (1u << i)) {
      /* No suites or no relays cannot be encoded. */
      if (n[i] == 0 || v[i] == NULL) {
        return MTCSEC_ERR_INVALID_ARGUMENT;
      }
      need += 2u + n[i];
    }
  }
  if (need > MTCSEC_MAX_INFO_LEN) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < need) {
    return MTCSEC_ERR_NOBUF;
  }
  /* Ascending type order (section 3): the order of the rules. */
  for (i = 0; i < TLV_MAX_RULES; i++) {
    if (d->present & (1u << i)) {
      put_tlv_hdr(dest + off, dinfo_rules[i].type, (uint8_t)n[i]);
      memcpy(dest + off + 2, v[i], n[i]);
      off += 2u + n[i];
    }
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

/* The framing of an M1 or M4: header, fixed fields, info_len within
 * bounds and, for a known suite, the exact length 35 + info_len + t.  The
 * info's TLVs are the caller's to check.  Fills hs on success only. */
static int hs_frame(mtcsec_hs *hs, uint8_t type, const uint8_t *in,
                    size_t inlen) {
  const mtcsec_suite_params *sp;
  size_t signed_len;

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

int mtcsec_hs_decode(mtcsec_hs *hs, uint8_t type, const uint8_t *in,
                     size_t inlen) {
  mtcsec_dinfo d;
  mtcsec_sinfo s;
  int rv;
  if (hs == NULL || in == NULL ||
      (type != MTCSEC_MSG_M1 && type != MTCSEC_MSG_M4)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  rv = hs_frame(hs, type, in, inlen);
  if (rv == 0) {
    rv = type == MTCSEC_MSG_M1
           ? mtcsec_dinfo_decode(&d, hs->info, hs->info_len)
           : mtcsec_sinfo_decode(&s, hs->info, hs->info_len);
  }
  if (rv != 0) {
    memset(hs, 0, sizeof(*hs));
    return MTCSEC_ERR_MALFORMED;
  }
  return 0;
}

int mtcsec_m4_parse(mtcsec_hs *m4, mtcsec_sinfo *si, const uint8_t *in,
                    size_t inlen) {
  int rv = hs_frame(m4, MTCSEC_MSG_M4, in, inlen);
  if (rv == 0) {
    rv = mtcsec_sinfo_decode(si, m4->info, m4->info_len);
  }
  return rv;
}

int mtcsec_m4_decode(mtcsec_hs *m4, mtcsec_sinfo *si, const uint8_t *in,
                     size_t inlen) {
  if (m4 == NULL || si == NULL || in == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (mtcsec_m4_parse(m4, si, in, inlen) != 0) {
    memset(m4, 0, sizeof(*m4));
    memset(si, 0, sizeof(*si));
    return MTCSEC_ERR_MALFORMED;
  }
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

mtcsec_ssize mtcsec_m1_write(uint8_t *dest, const mtcsec_crypto *crypto,
                             const mtcsec_suite_params *sp,
                             const uint8_t *k_auth, const mtcsec_m1_fields *f) {
  size_t signed_len = MTCSEC_HS_FIXED_LEN + f->info_len;
  mtcsec_iov iov;
  int rv;
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

mtcsec_ssize mtcsec_m1_build_encoded(uint8_t *dest, size_t destlen,
                                     const mtcsec_crypto *crypto,
                                     const uint8_t *k_auth,
                                     const mtcsec_m1_fields *f) {
  const mtcsec_suite_params *sp;

  if (f == NULL || crypto == NULL || k_auth == NULL || f->mtcd_id == NULL ||
      f->mtcs_id == NULL || f->nonce == NULL || f->ueid == NULL ||
      (f->info == NULL && f->info_len != 0) || (dest == NULL && destlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  sp = mtcsec_suite_get(f->suite);
  if (sp == NULL || f->info_len > MTCSEC_MAX_INFO_LEN) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (destlen < MTCSEC_HS_FIXED_LEN + f->info_len + sp->miclen) {
    return MTCSEC_ERR_NOBUF;
  }
  return mtcsec_m1_write(dest, crypto, sp, k_auth, f);
}

mtcsec_ssize mtcsec_m1_build(uint8_t *dest, size_t destlen,
                             const mtcsec_crypto *crypto, const uint8_t *k_auth,
                             const mtcsec_m1_fields *f) {
  mtcsec_dinfo d;
  /* Bytes from elsewhere must be well-formed MTCdInfo.  (An info that is
   * NULL with a length is left to the checks of the encoded variant.) */
  if (f != NULL && (f->info != NULL || f->info_len == 0) &&
      mtcsec_dinfo_decode(&d, f->info, f->info_len) != 0) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  return mtcsec_m1_build_encoded(dest, destlen, crypto, k_auth, f);
}

int mtcsec_mic_check(const mtcsec_crypto *crypto, const mtcsec_suite_params *sp,
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
  return mtcsec_mic_check(crypto, sp, k_auth, &iov, 1, m1->mic);
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
  return mtcsec_mic_check(crypto, sp, k_auth, iov, 4, m4->mic);
}

int mtcsec_m4_check(const mtcsec_hs *m4, const mtcsec_crypto *crypto,
                    const mtcsec_suite_params *sp, const uint8_t *k_auth,
                    const uint8_t *m1_tail, size_t m1_tail_len) {
  /* The same input as m4_mic_iov() lays out, in two pieces. */
  mtcsec_iov iov[2];
  iov[0].base = m4->raw;
  iov[0].len = m4->signed_len;
  iov[1].base = m1_tail;
  iov[1].len = m1_tail_len;
  return mtcsec_mic_check(crypto, sp, k_auth, iov, 2, m4->mic);
}

int mtcsec_m4_verify_tail(const mtcsec_hs *m4, const mtcsec_crypto *crypto,
                          const uint8_t *k_auth, const uint8_t *m1_tail,
                          size_t m1_tail_len) {
  const mtcsec_suite_params *sp;
  if (m4 == NULL || crypto == NULL || k_auth == NULL || m1_tail == NULL ||
      m4->raw == NULL || m4->type != MTCSEC_MSG_M4 ||
      m1_tail_len < MTCSEC_NONCE_LEN + 1 ||
      m1_tail_len != MTCSEC_NONCE_LEN + 1 + (size_t)m1_tail[MTCSEC_NONCE_LEN]) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  sp = mtcsec_suite_get(m4->suite);
  if (sp == NULL || m4->miclen != sp->miclen) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  return mtcsec_m4_check(m4, crypto, sp, k_auth, m1_tail, m1_tail_len);
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
    size_t back = 0;
    /* Do not cut a UTF-8 sequence in half: back up over at most 3
     * continuation bytes (the longest tail of a sequence); a longer run is
     * not UTF-8 and is cut at 255. */
    while (back < 3 && ((uint8_t)detail[255 - back] & 0xc0) == 0x80) {
      back++;
    }
    dlen = ((uint8_t)detail[255 - back] & 0xc0) == 0x80 ? 255 : 255 - back;
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
  return mtcsec_mic_check(crypto, sp, k_auth, &iov, 1,
                          in + MTCSEC_REVOKE_FIXED_LEN);
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
