/*
 * Fuzz target: every decoder of the wire codec (PROTOCOL.md sections 3-7)
 * on the same untrusted bytes, and the round trips that must hold whenever a
 * decoder accepts: what was decoded re-encodes to the same bytes (or, for
 * the info TLVs, to bytes that decode to the same fields), and a MIC or
 * frame rebuilt from the decoded fields matches the input.
 *
 * The input is one message (any type: the header byte selects nothing here,
 * every decoder sees it).  Seeds: fuzz/corpus/fuzz_codec/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/codec.h>
#include <mtcsec/crypto.h>

#include "fuzz_common.h"

/* Any key will do: the checks compare MICs computed with it. */
#define K_AUTH FZ_PSKEY

static uint16_t be16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}

/* ------------------------------------------------------------ header */

static void check_msg_type(const uint8_t *in, size_t n) {
  int t = mtcsec_msg_type(in, n);
  if (n == 0) {
    FZ_CHECK(t == MTCSEC_ERR_MALFORMED);
    return;
  }
  if ((in[0] >> 4) == 1 && (in[0] & 0x0f) <= 7) {
    FZ_CHECK(t == in[0]);
  } else {
    FZ_CHECK(t == MTCSEC_ERR_UNSUPPORTED);
  }
}

/* ------------------------------------------------------------ info */

/* Returns 1 when the TLVs are well framed, in strictly ascending type order
 * and all of the given numbering: then the encoder must give them back. */
static int info_canonical(const uint8_t *in, size_t n, int dinfo) {
  size_t off = 0;
  int last = -1;
  while (off < n) {
    uint8_t type;
    if (n - off < 2 || n - off - 2 < in[off + 1]) {
      return 0;
    }
    type = in[off];
    if ((int)type <= last) {
      return 0;
    }
    if (dinfo ? (type != MTCSEC_TLV_BATTERY && type != MTCSEC_TLV_LOCATION &&
                 type != MTCSEC_TLV_REQ_PERMS && type != MTCSEC_TLV_SUITES &&
                 type != MTCSEC_TLV_PATH)
              : (type != MTCSEC_TLV_LIFETIME && type != MTCSEC_TLV_PERMS &&
                 type != MTCSEC_TLV_KEY_ID)) {
      return 0;
    }
    last = type;
    off += 2u + in[off + 1];
  }
  return 1;
}

static void dinfo_same(const mtcsec_dinfo *a, const mtcsec_dinfo *b) {
  FZ_CHECK(a->present == b->present);
  if (a->present & MTCSEC_DINFO_BATTERY) {
    FZ_CHECK(a->battery == b->battery);
  }
  if (a->present & MTCSEC_DINFO_LOCATION) {
    FZ_CHECK(a->lat == b->lat && a->lon == b->lon);
  }
  if (a->present & MTCSEC_DINFO_REQ_PERMS) {
    FZ_CHECK(a->req_perms == b->req_perms);
  }
  if (a->present & MTCSEC_DINFO_SUITES) {
    FZ_CHECK(a->nsuites == b->nsuites && a->nsuites > 0);
    FZ_CHECK(memcmp(a->suites, b->suites, a->nsuites) == 0);
  }
  if (a->present & MTCSEC_DINFO_PATH) {
    FZ_CHECK(a->npath == b->npath && a->npath > 0);
    FZ_CHECK(memcmp(a->path, b->path, (size_t)a->npath * MTCSEC_ID_LEN) == 0);
  }
}

static void check_dinfo(const uint8_t *in, size_t n) {
  mtcsec_dinfo d, d2;
  uint8_t enc[MTCSEC_MAX_INFO_LEN], enc2[MTCSEC_MAX_INFO_LEN];
  mtcsec_ssize e, e2;

  if (mtcsec_dinfo_decode(&d, in, n) != 0) {
    return;
  }
  FZ_CHECK(n <= MTCSEC_MAX_INFO_LEN);
  e = mtcsec_dinfo_encode(enc, sizeof(enc), &d);
  /* Only the known TLVs come back, so never more than went in. */
  FZ_CHECK(e >= 0 && (size_t)e <= n);
  FZ_CHECK(mtcsec_dinfo_decode(&d2, enc, (size_t)e) == 0);
  dinfo_same(&d, &d2);
  e2 = mtcsec_dinfo_encode(enc2, sizeof(enc2), &d2);
  FZ_CHECK(e2 == e && memcmp(enc, enc2, (size_t)e) == 0);
  if (info_canonical(in, n, 1)) {
    FZ_CHECK((size_t)e == n && memcmp(enc, in, n) == 0);
  }
  if (e > 0) {
    FZ_CHECK(mtcsec_dinfo_encode(enc2, (size_t)e - 1, &d) == MTCSEC_ERR_NOBUF);
  }
}

static void check_sinfo(const uint8_t *in, size_t n) {
  mtcsec_sinfo s, s2;
  uint8_t enc[13];

  if (mtcsec_sinfo_decode(&s, in, n) != 0) {
    return;
  }
  FZ_CHECK(s.present ==
           (MTCSEC_SINFO_LIFETIME | MTCSEC_SINFO_PERMS | MTCSEC_SINFO_KEY_ID));
  FZ_CHECK(n >= 13);
  FZ_CHECK(mtcsec_sinfo_encode(enc, sizeof(enc), &s) == 13);
  FZ_CHECK(mtcsec_sinfo_decode(&s2, enc, sizeof(enc)) == 0);
  FZ_CHECK(s2.present == s.present && s2.lifetime == s.lifetime &&
           s2.perms == s.perms && s2.key_id == s.key_id);
  if (info_canonical(in, n, 0)) {
    FZ_CHECK(n == 13 && memcmp(enc, in, 13) == 0);
  }
  FZ_CHECK(mtcsec_sinfo_encode(enc, 12, &s) == MTCSEC_ERR_NOBUF);
}

/* The encoder's own argument checks, from fields the input chooses. */
static void check_dinfo_encode(const uint8_t *in, size_t n) {
  static uint8_t pool[MTCSEC_MAX_INFO_LEN * MTCSEC_ID_LEN];
  uint8_t enc[MTCSEC_MAX_INFO_LEN];
  mtcsec_dinfo d, d2;
  mtcsec_ssize e;
  size_t need = 0, i;

  if (n < 12) {
    return;
  }
  for (i = 0; i < sizeof(pool); i++) {
    pool[i] = in[i % n];
  }
  memset(&d, 0, sizeof(d));
  d.present = in[0] & 0x1fu;
  d.battery = in[1];
  d.lat = (int32_t)be32(in + 2);
  d.lon = (int32_t)be32(in + 6);
  d.req_perms = in[10];
  d.nsuites = in[11];
  d.suites = pool;
  d.npath = (uint8_t)(in[11] >> 2);
  d.path = pool;
  need += (d.present & MTCSEC_DINFO_BATTERY) ? 3 : 0;
  need += (d.present & MTCSEC_DINFO_LOCATION) ? 10 : 0;
  need += (d.present & MTCSEC_DINFO_REQ_PERMS) ? 3 : 0;
  need += (d.present & MTCSEC_DINFO_SUITES) ? 2u + d.nsuites : 0;
  need += (d.present & MTCSEC_DINFO_PATH) ? 2u + 8u * d.npath : 0;
  e = mtcsec_dinfo_encode(enc, sizeof(enc), &d);
  if (((d.present & MTCSEC_DINFO_SUITES) && d.nsuites == 0) ||
      ((d.present & MTCSEC_DINFO_PATH) && (d.npath == 0 || d.npath > 31)) ||
      need > MTCSEC_MAX_INFO_LEN) {
    FZ_CHECK(e == MTCSEC_ERR_INVALID_ARGUMENT);
    return;
  }
  FZ_CHECK(e >= 0 && (size_t)e == need);
  FZ_CHECK(mtcsec_dinfo_decode(&d2, enc, (size_t)e) == 0);
  dinfo_same(&d, &d2);
}

/* ------------------------------------------------------------------ M0 */

static void check_m0(const uint8_t *in, size_t n) {
  static const uint8_t gwid[MTCSEC_ID_LEN] = {0x67, 1, 2, 3, 4, 5, 6, 7};
  mtcsec_m0 m0, m0b;
  uint8_t *out;
  mtcsec_ssize e;
  int ok = n >= MTCSEC_M0_FIXED_LEN && in[0] == MTCSEC_MSG_M0 &&
           n == MTCSEC_M0_FIXED_LEN + (size_t)in[10] * MTCSEC_ID_LEN;

  FZ_CHECK((mtcsec_m0_decode(&m0, in, n) == 0) == ok);
  if (!ok) {
    FZ_CHECK(mtcsec_m0_append_hop(NULL, 0, in, n, gwid) ==
             MTCSEC_ERR_MALFORMED);
    return;
  }
  FZ_CHECK(m0.ueid == in + 1 && m0.req_perms == in[9] && m0.nhops == in[10] &&
           m0.hops == in + 11);

  /* Re-encode: the same bytes. */
  out = malloc(n);
  FZ_CHECK(out != NULL);
  e = mtcsec_m0_encode(out, n, m0.ueid, m0.req_perms, m0.nhops ? m0.hops : NULL,
                       m0.nhops);
  FZ_CHECK(e == (mtcsec_ssize)n && memcmp(out, in, n) == 0);
  FZ_CHECK(mtcsec_m0_encode(out, n - 1, m0.ueid, m0.req_perms, m0.hops,
                            m0.nhops) == MTCSEC_ERR_NOBUF);
  free(out);

  /* Relay step: exactly 8 bytes more, the hop appended, nothing else. */
  out = malloc(n + MTCSEC_ID_LEN);
  FZ_CHECK(out != NULL);
  e = mtcsec_m0_append_hop(out, n + MTCSEC_ID_LEN, in, n, gwid);
  if (m0.nhops == 255) {
    FZ_CHECK(e == MTCSEC_ERR_MALFORMED);
  } else {
    FZ_CHECK(e == (mtcsec_ssize)(n + MTCSEC_ID_LEN));
    FZ_CHECK(mtcsec_m0_decode(&m0b, out, (size_t)e) == 0);
    FZ_CHECK(m0b.nhops == m0.nhops + 1);
    FZ_CHECK(memcmp(out, in, 10) == 0);
    FZ_CHECK(memcmp(out + 11, in + 11, n - 11) == 0);
    FZ_CHECK(memcmp(out + n, gwid, MTCSEC_ID_LEN) == 0);
    FZ_CHECK(mtcsec_m0_append_hop(out, n + MTCSEC_ID_LEN - 1, in, n, gwid) ==
             MTCSEC_ERR_NOBUF);
  }
  free(out);
}

/* ------------------------------------------------------------- M1 / M4 */

static void check_hs(uint8_t type, const uint8_t *in, size_t n) {
  static const uint8_t zero_nonce[MTCSEC_NONCE_LEN] = {0};
  const mtcsec_crypto *c = fz_openssl();
  const mtcsec_suite_params *sp;
  uint8_t buf[MTCSEC_HS_MAX_LEN];
  mtcsec_hs hs, hs2;
  mtcsec_ssize e;
  int v;

  if (mtcsec_hs_decode(&hs, type, in, n) != 0) {
    return;
  }
  FZ_CHECK(n >= MTCSEC_HS_FIXED_LEN && in[0] == type);
  FZ_CHECK(hs.raw == in && hs.type == type && hs.suite == in[1]);
  FZ_CHECK(hs.id_a == in + 2 && hs.id_b == in + 10 && hs.nonce == in + 18 &&
           hs.ueid == in + 26);
  FZ_CHECK(hs.info_len == in[34] && hs.info == in + 35);
  FZ_CHECK(hs.signed_len == 35u + hs.info_len && hs.signed_len <= n);
  FZ_CHECK(hs.mic == in + hs.signed_len);
  if (type == MTCSEC_MSG_M1) {
    check_dinfo(hs.info, hs.info_len);
    {
      mtcsec_dinfo d;
      FZ_CHECK(mtcsec_dinfo_decode(&d, hs.info, hs.info_len) == 0);
    }
  } else {
    mtcsec_sinfo s;
    check_sinfo(hs.info, hs.info_len);
    FZ_CHECK(mtcsec_sinfo_decode(&s, hs.info, hs.info_len) == 0);
  }

  sp = mtcsec_suite_get(hs.suite);
  if (sp == NULL) {
    FZ_CHECK(hs.miclen == 0);
    return;
  }
  FZ_CHECK(hs.miclen == sp->miclen && hs.signed_len + hs.miclen == n);
  /* One byte short of a known suite's exact length never decodes. */
  FZ_CHECK(mtcsec_hs_decode(&hs2, type, in, n - 1) != 0);

  /* Rebuild from the decoded fields: the same signed bytes; the input's MIC
   * verifies exactly when it equals the rebuilt one. */
  if (type == MTCSEC_MSG_M1) {
    mtcsec_m1_fields f;
    f.suite = hs.suite;
    f.mtcd_id = hs.id_a;
    f.mtcs_id = hs.id_b;
    f.nonce = hs.nonce;
    f.ueid = hs.ueid;
    f.info = hs.info;
    f.info_len = hs.info_len;
    e = mtcsec_m1_build(buf, sizeof(buf), c, K_AUTH, &f);
    FZ_CHECK(e == (mtcsec_ssize)n);
    FZ_CHECK(mtcsec_m1_build(buf, n - 1, c, K_AUTH, &f) == MTCSEC_ERR_NOBUF);
    e = mtcsec_m1_build(buf, sizeof(buf), c, K_AUTH, &f);
    FZ_CHECK(e == (mtcsec_ssize)n);
    v = mtcsec_m1_verify(&hs, c, K_AUTH);
  } else {
    mtcsec_m4_fields f;
    f.suite = hs.suite;
    f.mtcs_id = hs.id_a;
    f.mtcd_id = hs.id_b;
    f.mtcs_nonce = hs.nonce;
    f.ueid = hs.ueid;
    f.info = hs.info;
    f.info_len = hs.info_len;
    f.mtcd_nonce = zero_nonce;
    f.m1_info = NULL;
    f.m1_info_len = 0;
    e = mtcsec_m4_build(buf, sizeof(buf), c, K_AUTH, &f);
    FZ_CHECK(e == (mtcsec_ssize)n);
    v = mtcsec_m4_verify(&hs, c, K_AUTH, zero_nonce, NULL, 0);
  }
  FZ_CHECK(memcmp(buf, in, hs.signed_len) == 0);
  FZ_CHECK(v == 0 || v == MTCSEC_ERR_MIC);
  FZ_CHECK((v == 0) ==
           (memcmp(buf + hs.signed_len, in + hs.signed_len, hs.miclen) == 0));

  /* The rebuilt message decodes and verifies. */
  FZ_CHECK(mtcsec_hs_decode(&hs2, type, buf, n) == 0);
  if (type == MTCSEC_MSG_M1) {
    FZ_CHECK(mtcsec_m1_verify(&hs2, c, K_AUTH) == 0);
  } else {
    FZ_CHECK(mtcsec_m4_verify(&hs2, c, K_AUTH, zero_nonce, NULL, 0) == 0);
  }
}

/* ------------------------------------------------------------------ M3 */

static void check_m3(const uint8_t *body, size_t n) {
  const mtcsec_suite_params *sp;
  const uint8_t *dk = NULL;
  size_t dkl = 0;
  mtcsec_hs m4, m4b;

  if (mtcsec_m3_decode(&m4, &dk, &dkl, body, n) != 0) {
    return;
  }
  sp = mtcsec_suite_get(body[1]);
  FZ_CHECK(sp != NULL && m4.suite == body[1]);
  FZ_CHECK(dkl == sp->keylen && dkl <= n && dk == body + n - dkl);
  FZ_CHECK(m4.raw == body && m4.signed_len + m4.miclen == n - dkl);
  FZ_CHECK(mtcsec_hs_decode(&m4b, MTCSEC_MSG_M4, body, n - dkl) == 0);
  check_hs(MTCSEC_MSG_M4, body, n - dkl);
}

/* ------------------------------------------------------------ frames */

static void check_frames(const uint8_t *in, size_t n) {
  size_t off = 0;
  int count = 0;

  while (count++ < 64) {
    const uint8_t *p = in + off;
    size_t left = n - off;
    mtcsec_frame fr;
    mtcsec_ssize r = mtcsec_frame_parse(&fr, p, left);
    uint8_t *out;

    if (r == 0) {
      FZ_CHECK(left < 2 || (be16(p) >= 5 && left < 2u + be16(p)));
      return;
    }
    if (r < 0) {
      FZ_CHECK(r == MTCSEC_ERR_MALFORMED && left >= 2 && be16(p) < 5);
      return;
    }
    FZ_CHECK((size_t)r == 2u + be16(p) && (size_t)r <= left);
    FZ_CHECK(fr.type == p[2] && fr.req_id == be32(p + 3));
    FZ_CHECK(fr.body == p + 7 && fr.bodylen == (size_t)r - 7);

    /* Re-encode into a buffer of exactly the frame's size. */
    out = malloc((size_t)r);
    FZ_CHECK(out != NULL);
    FZ_CHECK(mtcsec_frame_encode(out, (size_t)r, fr.type, fr.req_id, fr.body,
                                 fr.bodylen) == r);
    FZ_CHECK(memcmp(out, p, (size_t)r) == 0);
    FZ_CHECK(mtcsec_frame_encode(out, (size_t)r - 1, fr.type, fr.req_id,
                                 fr.body, fr.bodylen) == MTCSEC_ERR_NOBUF);
    free(out);

    if (fr.type == MTCSEC_MSG_M2) {
      check_hs(MTCSEC_MSG_M1, fr.body, fr.bodylen);
    } else if (fr.type == MTCSEC_MSG_M3) {
      check_m3(fr.body, fr.bodylen);
    }
    off += (size_t)r;
  }
}

/* ERR frames built from an arbitrary detail string. */
static void check_err_frame(const uint8_t *in, size_t n) {
  char *detail;
  size_t dlen, kept;
  uint8_t buf[MTCSEC_FRAME_HDR_LEN + 1 + 255];
  mtcsec_frame fr;
  mtcsec_ssize e;
  uint8_t code;

  if (n == 0) {
    return;
  }
  code = in[0];
  detail = malloc(n);
  FZ_CHECK(detail != NULL);
  memcpy(detail, in + 1, n - 1);
  detail[n - 1] = '\0';
  dlen = strlen(detail);
  e = mtcsec_err_frame_encode(buf, sizeof(buf), 0x01020304u, code, detail);
  FZ_CHECK(e > 0 && (size_t)e <= sizeof(buf));
  FZ_CHECK(mtcsec_frame_parse(&fr, buf, (size_t)e) == e);
  FZ_CHECK(fr.type == MTCSEC_MSG_ERR && fr.req_id == 0x01020304u);
  FZ_CHECK(fr.bodylen >= 1 && fr.body[0] == code);
  kept = fr.bodylen - 1;
  FZ_CHECK(kept <= 255 && kept <= dlen);
  FZ_CHECK(memcmp(fr.body + 1, detail, kept) == 0);
  if (dlen <= 255) {
    FZ_CHECK(kept == dlen);
  } else if (((uint8_t)detail[kept] & 0xc0) == 0x80) {
    /* Cut before a continuation byte only inside a run of 4 or more, which
     * cannot be UTF-8: then at 255. */
    size_t i;
    FZ_CHECK(kept == 255);
    for (i = 252; i <= 255; i++) {
      FZ_CHECK(((uint8_t)detail[i] & 0xc0) == 0x80);
    }
  } else {
    /* Otherwise a sequence boundary at most 3 bytes before 255. */
    FZ_CHECK(kept >= 252);
  }
  FZ_CHECK(mtcsec_err_frame_encode(buf, (size_t)e - 1, 1, code, detail) ==
           MTCSEC_ERR_NOBUF);
  (void)mtcsec_errcode_name(code);
  free(detail);
}

/* ------------------------------------------------------------ revoke */

static void check_revoke(const uint8_t *in, size_t n) {
  static const size_t ts[2] = {8, 16};
  const mtcsec_crypto *c = fz_openssl();
  uint8_t buf[MTCSEC_REVOKE_FIXED_LEN + MTCSEC_MAX_MIC_LEN];
  mtcsec_revoke r;
  size_t i;

  FZ_CHECK(mtcsec_revoke_decode(&r, in, n, 0) == MTCSEC_ERR_INVALID_ARGUMENT);
  FZ_CHECK(mtcsec_revoke_decode(&r, in, n, 17) == MTCSEC_ERR_INVALID_ARGUMENT);
  for (i = 0; i < 2; i++) {
    size_t t = ts[i];
    int ok = n == MTCSEC_REVOKE_FIXED_LEN + t && in[0] == MTCSEC_MSG_REVOKE;
    /* t = 8 is suite 1's; t = 16 is suites 2 and 3's. */
    uint8_t suites[2];
    size_t ns = t == 8 ? 1 : 2, k;

    suites[0] = t == 8 ? 1 : 2;
    suites[1] = 3;
    FZ_CHECK((mtcsec_revoke_decode(&r, in, n, t) == 0) == ok);
    if (!ok) {
      continue;
    }
    FZ_CHECK(r.mtcs_id == in + 1 && r.mtcd_id == in + 9 &&
             r.key_id == be16(in + 17) && r.mtcd_nonce == in + 19 &&
             r.mic == in + 27 && r.miclen == t);
    for (k = 0; k < ns; k++) {
      mtcsec_ssize e;
      int v;
      e = mtcsec_revoke_build(buf, sizeof(buf), c, suites[k], K_AUTH, r.mtcs_id,
                              r.mtcd_id, r.key_id, r.mtcd_nonce);
      FZ_CHECK(e == (mtcsec_ssize)n && memcmp(buf, in, 27) == 0);
      v = mtcsec_revoke_verify(&r, in, n, c, suites[k], K_AUTH);
      FZ_CHECK(v == 0 || v == MTCSEC_ERR_MIC);
      FZ_CHECK((v == 0) == (memcmp(buf + 27, in + 27, t) == 0));
    }
    /* A suite of another MIC length refuses the decoded revocation. */
    FZ_CHECK(mtcsec_revoke_verify(&r, in, n, c, t == 8 ? 2 : 1, K_AUTH) ==
             MTCSEC_ERR_MALFORMED);
  }
}

/* ------------------------------------------------------------ record */

static void check_record(const uint8_t *in, size_t n) {
  static const size_t ts[2] = {8, 16};
  mtcsec_record_hdr h;
  size_t i;
  for (i = 0; i < 2; i++) {
    int ok = n >= MTCSEC_RECORD_HDR_LEN + ts[i] && in[0] == MTCSEC_MSG_RECORD;
    FZ_CHECK((mtcsec_record_hdr_decode(&h, in, n, ts[i]) == 0) == ok);
    if (ok) {
      FZ_CHECK(h.key_id == be16(in + 1) && h.seq == be32(in + 3));
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A heap copy of exactly size bytes: any overread is an ASan report. */
  uint8_t *in = fz_dup(data, size);

  check_msg_type(in, size);
  check_m0(in, size);
  check_hs(MTCSEC_MSG_M1, in, size);
  check_hs(MTCSEC_MSG_M4, in, size);
  check_dinfo(in, size);
  check_sinfo(in, size);
  check_dinfo_encode(in, size);
  check_frames(in, size);
  check_m3(in, size);
  check_err_frame(in, size);
  check_revoke(in, size);
  check_record(in, size);
  free(in);
  return 0;
}
