/*
 * Codec: every message of PROTOCOL.md sections 3-7 encodes, decodes and
 * rejects what the spec says is malformed.  Run over both providers where
 * a MIC is involved.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <mtcsec/codec.h>

#include "crypto_fixture.h"

static const uint8_t DEV[8] = {2, 0, 0, 0, 0, 0, 0, 0xa1};
static const uint8_t SRV[8] = {0x5e, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t UE[8] = {0x0e, 0, 0, 0, 0, 0, 0, 0x42};
static const uint8_t NONCE[8] = {0, 0, 0, 0, 0, 0, 0, 7};
static const uint8_t SNONCE[8] = {0x8a, 0x1f, 0x3c, 0x5e,
                                  0x7b, 0x9d, 0x2e, 0x40};
static const uint8_t PSK[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const uint8_t DINFO[3] = {0x04, 0x01, 0x03};
static const uint8_t SINFO[13] = {0x90, 0x04, 0x00, 0x00, 0x0e, 0x10, 0x91,
                                  0x01, 0x03, 0x92, 0x02, 0x00, 0x01};

static void test_codec_msg_type(void **state) {
  uint8_t b;
  (void)state;
  assert_int_equal(mtcsec_msg_type(NULL, 0), MTCSEC_ERR_MALFORMED);
  for (b = 0x10; b <= 0x17; b++) {
    assert_int_equal(mtcsec_msg_type(&b, 1), b);
  }
  b = 0x18;
  assert_int_equal(mtcsec_msg_type(&b, 1), MTCSEC_ERR_UNSUPPORTED);
  b = 0x21; /* version 2 */
  assert_int_equal(mtcsec_msg_type(&b, 1), MTCSEC_ERR_UNSUPPORTED);
}

static void test_codec_m0_roundtrip_and_hops(void **state) {
  uint8_t buf[64], buf2[64];
  const uint8_t gw1[8] = {0x67, 0, 0, 0, 0, 0, 0, 1};
  const uint8_t gw2[8] = {0x67, 0, 0, 0, 0, 0, 0, 2};
  mtcsec_m0 m0;
  mtcsec_ssize n;
  size_t i;
  (void)state;

  n = mtcsec_m0_encode(buf, sizeof(buf), UE, 0x05, NULL, 0);
  assert_int_equal(n, 11);
  assert_int_equal(buf[0], 0x10);
  /* UE -> GW2 -> GW1 -> device: the list grows toward the device. */
  n = mtcsec_m0_append_hop(buf2, sizeof(buf2), buf, 11, gw2);
  assert_int_equal(n, 19);
  n = mtcsec_m0_append_hop(buf, sizeof(buf), buf2, 19, gw1);
  assert_int_equal(n, 27);
  assert_int_equal(mtcsec_m0_decode(&m0, buf, 27), 0);
  assert_int_equal(m0.nhops, 2);
  assert_int_equal(m0.req_perms, 0x05);
  assert_memory_equal(m0.ueid, UE, 8);
  assert_memory_equal(m0.hops, gw2, 8);
  assert_memory_equal(m0.hops + 8, gw1, 8);
  /* Every truncation and an extra byte are malformed. */
  for (i = 0; i < 27; i++) {
    assert_int_equal(mtcsec_m0_decode(&m0, buf, i), MTCSEC_ERR_MALFORMED);
  }
  assert_int_equal(mtcsec_m0_decode(&m0, buf, 28), MTCSEC_ERR_MALFORMED);
  /* Too small a buffer writes nothing past it. */
  assert_int_equal(mtcsec_m0_encode(buf2, 10, UE, 0, NULL, 0),
                   MTCSEC_ERR_NOBUF);
  assert_int_equal(mtcsec_m0_append_hop(buf2, 26, buf, 27, gw1),
                   MTCSEC_ERR_NOBUF);
}

static void test_codec_dinfo_rules(void **state) {
  mtcsec_dinfo d;
  uint8_t buf[300];
  (void)state;

  /* Every known TLV, any order accepted. */
  {
    const uint8_t in[] = {0x81, 8, 1,    2,    3,    4,    5,  6,    7, 8,
                          0x05, 2, 1,    3,    0x02, 1,    90, 0x04, 1, 0x0f,
                          0x03, 8, 0xff, 0xff, 0xff, 0xfe, 0,  0,    0, 5};
    assert_int_equal(mtcsec_dinfo_decode(&d, in, sizeof(in)), 0);
    assert_int_equal(d.npath, 1);
    assert_int_equal(d.nsuites, 2);
    assert_int_equal(d.battery, 90);
    assert_int_equal(d.req_perms, 0x0f);
    assert_int_equal(d.lat, -2);
    assert_int_equal(d.lon, 5);
    /* Re-encoding writes ascending type order. */
    assert_int_equal(mtcsec_dinfo_encode(buf, sizeof(buf), &d), sizeof(in));
    assert_int_equal(buf[0], 0x02);
    assert_int_equal(buf[sizeof(in) - 10], 0x81);
  }
  /* Unknown non-critical skipped; unknown critical rejected. */
  {
    const uint8_t skip[] = {0x40, 2, 9, 9, 0x04, 1, 1};
    const uint8_t crit[] = {0xc0, 0};
    assert_int_equal(mtcsec_dinfo_decode(&d, skip, sizeof(skip)), 0);
    assert_int_equal(d.req_perms, 1);
    assert_int_equal(mtcsec_dinfo_decode(&d, crit, sizeof(crit)),
                     MTCSEC_ERR_MALFORMED);
  }
  /* A type of the other info is unknown here (0x90 is critical). */
  {
    const uint8_t other[] = {0x90, 4, 0, 0, 0, 1};
    assert_int_equal(mtcsec_dinfo_decode(&d, other, sizeof(other)),
                     MTCSEC_ERR_MALFORMED);
  }
  /* Duplicates, known or not, are malformed. */
  {
    const uint8_t dup[] = {0x02, 1, 5, 0x02, 1, 6};
    const uint8_t dupu[] = {0x40, 0, 0x40, 0};
    assert_int_equal(mtcsec_dinfo_decode(&d, dup, sizeof(dup)),
                     MTCSEC_ERR_MALFORMED);
    assert_int_equal(mtcsec_dinfo_decode(&d, dupu, sizeof(dupu)),
                     MTCSEC_ERR_MALFORMED);
  }
  /* Known type, wrong length; truncated framing. */
  {
    const uint8_t badlen[] = {0x02, 2, 5, 5};
    const uint8_t badpath[] = {0x81, 7, 1, 2, 3, 4, 5, 6, 7};
    const uint8_t emptypath[] = {0x81, 0};
    const uint8_t nosuite[] = {0x05, 0};
    const uint8_t trunc[] = {0x02, 1};
    const uint8_t half[] = {0x02};
    assert_int_equal(mtcsec_dinfo_decode(&d, badlen, sizeof(badlen)),
                     MTCSEC_ERR_MALFORMED);
    assert_int_equal(mtcsec_dinfo_decode(&d, badpath, sizeof(badpath)),
                     MTCSEC_ERR_MALFORMED);
    assert_int_equal(mtcsec_dinfo_decode(&d, emptypath, sizeof(emptypath)),
                     MTCSEC_ERR_MALFORMED);
    assert_int_equal(mtcsec_dinfo_decode(&d, nosuite, sizeof(nosuite)),
                     MTCSEC_ERR_MALFORMED);
    assert_int_equal(mtcsec_dinfo_decode(&d, trunc, sizeof(trunc)),
                     MTCSEC_ERR_MALFORMED);
    assert_int_equal(mtcsec_dinfo_decode(&d, half, sizeof(half)),
                     MTCSEC_ERR_MALFORMED);
  }
  /* More than 255 bytes cannot be an info field. */
  memset(buf, 0x40, sizeof(buf));
  assert_int_equal(mtcsec_dinfo_decode(&d, buf, 256), MTCSEC_ERR_MALFORMED);
}

static void test_codec_sinfo_requires_all_three(void **state) {
  mtcsec_sinfo s;
  uint8_t buf[16];
  (void)state;
  assert_int_equal(mtcsec_sinfo_decode(&s, SINFO, sizeof(SINFO)), 0);
  assert_int_equal(s.lifetime, 3600);
  assert_int_equal(s.perms, 3);
  assert_int_equal(s.key_id, 1);
  assert_int_equal(mtcsec_sinfo_encode(buf, sizeof(buf), &s), 13);
  assert_memory_equal(buf, SINFO, 13);
  /* Without KEY_ID. */
  assert_int_equal(mtcsec_sinfo_decode(&s, SINFO, 9), MTCSEC_ERR_MALFORMED);
  /* A MTCdInfo type inside MTCsInfo: 0x81 is critical, hence unknown. */
  {
    uint8_t in[32];
    memcpy(in, SINFO, 13);
    in[13] = 0x81;
    in[14] = 0;
    assert_int_equal(mtcsec_sinfo_decode(&s, in, 15), MTCSEC_ERR_MALFORMED);
  }
}

/* Builds an M1 with the suite's K_auth; returns its length. */
static size_t build_m1(const mtcsec_crypto *c, uint8_t suite, uint8_t *out,
                       size_t outlen, uint8_t *k_auth, uint8_t *k_dm) {
  mtcsec_m1_fields f;
  mtcsec_ssize n;
  assert_int_equal(
    mtcsec_derive_device_keys(c, suite, PSK, DEV, SRV, k_auth, k_dm), 0);
  f.suite = suite;
  f.mtcd_id = DEV;
  f.mtcs_id = SRV;
  f.nonce = NONCE;
  f.ueid = UE;
  f.info = DINFO;
  f.info_len = sizeof(DINFO);
  n = mtcsec_m1_build(out, outlen, c, k_auth, &f);
  assert_true(n > 0);
  return (size_t)n;
}

static void test_codec_m1_build_decode_verify(void **state) {
  const mtcsec_crypto *prov[TH_MAX_PROVIDERS];
  const char *names[TH_MAX_PROVIDERS];
  size_t np = th_providers(prov, names), p;
  uint8_t suite;
  (void)state;

  for (p = 0; p < np; p++) {
    for (suite = 1; suite <= 3; suite++) {
      const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
      /* Zeroed: a flip of suite 2 into 3 verifies with a 32-byte key. */
      uint8_t m1[MTCSEC_HS_MAX_LEN], ka[32] = {0}, kd[32] = {0};
      size_t len = build_m1(prov[p], suite, m1, sizeof(m1), ka, kd), i;
      mtcsec_hs hs;

      assert_int_equal(len, 35 + sizeof(DINFO) + sp->miclen);
      assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, len), 0);
      assert_int_equal(hs.suite, suite);
      assert_memory_equal(hs.id_a, DEV, 8);
      assert_memory_equal(hs.id_b, SRV, 8);
      assert_memory_equal(hs.nonce, NONCE, 8);
      assert_memory_equal(hs.ueid, UE, 8);
      assert_int_equal(hs.miclen, sp->miclen);
      assert_int_equal(mtcsec_m1_verify(&hs, prov[p], ka), 0);
      /* The wrong key does not verify. */
      assert_int_equal(mtcsec_m1_verify(&hs, prov[p], kd), MTCSEC_ERR_MIC);
      /* Every single-bit flip is either malformed or fails the MIC. */
      for (i = 0; i < len * 8; i++) {
        int rv;
        m1[i / 8] ^= (uint8_t)(1u << (i % 8));
        rv = mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, len);
        if (rv == 0 && mtcsec_suite_get(hs.suite) != NULL) {
          rv = mtcsec_m1_verify(&hs, prov[p], ka);
        } else if (rv == 0) {
          rv = MTCSEC_ERR_UNSUPPORTED; /* suite byte changed */
        }
        assert_int_not_equal(rv, 0);
        m1[i / 8] ^= (uint8_t)(1u << (i % 8));
      }
      /* Lengths: every truncation and one byte more. */
      for (i = 0; i < len; i++) {
        assert_int_not_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, i), 0);
      }
      m1[len] = 0;
      assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, len + 1),
                       MTCSEC_ERR_MALFORMED);
    }
  }
}

static void test_codec_unknown_suite_structural_only(void **state) {
  const mtcsec_crypto *c = th_openssl();
  uint8_t m1[MTCSEC_HS_MAX_LEN], ka[32], kd[32];
  size_t len = build_m1(c, 1, m1, sizeof(m1), ka, kd);
  mtcsec_hs hs;
  (void)state;
  /* Section 5: an unknown suite decodes with t = 0 so that the server can
   * answer UNSUPPORTED_SUITE after checks 2-4. */
  m1[1] = 0x7f;
  assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, len), 0);
  assert_int_equal(hs.miclen, 0);
  assert_int_equal(hs.suite, 0x7f);
  assert_int_equal(mtcsec_m1_verify(&hs, c, ka), MTCSEC_ERR_INVALID_ARGUMENT);
  /* ...but its info must still be within bounds and well framed. */
  m1[34] = 200;
  assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, len),
                   MTCSEC_ERR_MALFORMED);
}

static void test_codec_m4_mic_covers_m1_nonce_and_info(void **state) {
  const mtcsec_crypto *prov[TH_MAX_PROVIDERS];
  const char *names[TH_MAX_PROVIDERS];
  size_t np = th_providers(prov, names), p;
  (void)state;
  for (p = 0; p < np; p++) {
    uint8_t suite;
    for (suite = 1; suite <= 3; suite++) {
      uint8_t ka[32], kd[32], m4[MTCSEC_HS_MAX_LEN];
      uint8_t other_nonce[8], other_info[3];
      mtcsec_m4_fields f;
      mtcsec_hs hs;
      mtcsec_ssize n;
      assert_int_equal(
        mtcsec_derive_device_keys(prov[p], suite, PSK, DEV, SRV, ka, kd), 0);
      f.suite = suite;
      f.mtcs_id = SRV;
      f.mtcd_id = DEV;
      f.mtcs_nonce = SNONCE;
      f.ueid = UE;
      f.info = SINFO;
      f.info_len = sizeof(SINFO);
      f.mtcd_nonce = NONCE;
      f.m1_info = DINFO;
      f.m1_info_len = sizeof(DINFO);
      n = mtcsec_m4_build(m4, sizeof(m4), prov[p], ka, &f);
      assert_int_equal(n, 35 + 13 + mtcsec_suite_get(suite)->miclen);
      assert_int_equal(m4[0], 0x14);
      assert_memory_equal(m4 + 2, SRV, 8);
      assert_memory_equal(m4 + 10, DEV, 8);
      assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M4, m4, (size_t)n), 0);
      assert_int_equal(
        mtcsec_m4_verify(&hs, prov[p], ka, NONCE, DINFO, sizeof(DINFO)), 0);
      /* A different MTCdNonce or MTCdInfo (e.g. an M4 replayed from an
       * earlier session) does not verify. */
      memcpy(other_nonce, NONCE, 8);
      other_nonce[7] ^= 1;
      assert_int_equal(
        mtcsec_m4_verify(&hs, prov[p], ka, other_nonce, DINFO, sizeof(DINFO)),
        MTCSEC_ERR_MIC);
      memcpy(other_info, DINFO, 3);
      other_info[2] = 0x0f;
      assert_int_equal(mtcsec_m4_verify(&hs, prov[p], ka, NONCE, other_info,
                                        sizeof(other_info)),
                       MTCSEC_ERR_MIC);
      assert_int_equal(mtcsec_m4_verify(&hs, prov[p], ka, NONCE, DINFO, 2),
                       MTCSEC_ERR_MIC);
    }
  }
}

static void test_codec_builders_refuse_bad_info(void **state) {
  const mtcsec_crypto *c = th_openssl();
  uint8_t ka[32], kd[32], out[400];
  const uint8_t bad[] = {0xc0, 0};
  mtcsec_m1_fields f;
  (void)state;
  assert_int_equal(mtcsec_derive_device_keys(c, 1, PSK, DEV, SRV, ka, kd), 0);
  f.suite = 1;
  f.mtcd_id = DEV;
  f.mtcs_id = SRV;
  f.nonce = NONCE;
  f.ueid = UE;
  f.info = bad;
  f.info_len = sizeof(bad);
  assert_int_equal(mtcsec_m1_build(out, sizeof(out), c, ka, &f),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  f.info = DINFO;
  f.info_len = 3;
  f.suite = 9;
  assert_int_equal(mtcsec_m1_build(out, sizeof(out), c, ka, &f),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  f.suite = 1;
  assert_int_equal(mtcsec_m1_build(out, 45, c, ka, &f), MTCSEC_ERR_NOBUF);
  assert_int_equal(mtcsec_m1_build(out, 46, c, ka, &f), 46);
}

static void test_codec_frames(void **state) {
  uint8_t buf[128], body[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  mtcsec_frame fr;
  mtcsec_ssize n;
  size_t i;
  (void)state;

  n = mtcsec_frame_encode(buf, sizeof(buf), MTCSEC_MSG_M2, 0xdeadbeef, body,
                          sizeof(body));
  assert_int_equal(n, 17);
  assert_int_equal(buf[0], 0);
  assert_int_equal(buf[1], 15); /* len counts type, req_id and body */
  /* A stream delivered byte by byte: incomplete until the last byte. */
  for (i = 0; i < 17; i++) {
    assert_int_equal(mtcsec_frame_parse(&fr, buf, i), 0);
  }
  assert_int_equal(mtcsec_frame_parse(&fr, buf, 17), 17);
  assert_int_equal(fr.type, 0x12);
  assert_int_equal(fr.req_id, 0xdeadbeef);
  assert_int_equal(fr.bodylen, 10);
  assert_memory_equal(fr.body, body, 10);
  /* Two frames back to back. */
  memcpy(buf + 17, buf, 17);
  assert_int_equal(mtcsec_frame_parse(&fr, buf + 17, 17), 17);
  /* len < 5 ends the connection. */
  buf[0] = 0;
  buf[1] = 4;
  assert_int_equal(mtcsec_frame_parse(&fr, buf, 17), MTCSEC_ERR_MALFORMED);
  /* The smallest frame: empty body. */
  buf[1] = 5;
  assert_int_equal(mtcsec_frame_parse(&fr, buf, 7), 7);
  assert_int_equal(fr.bodylen, 0);
}

static void test_codec_err_frame(void **state) {
  uint8_t buf[300];
  char detail[300];
  mtcsec_frame fr;
  mtcsec_ssize n;
  (void)state;
  n =
    mtcsec_err_frame_encode(buf, sizeof(buf), 7, MTCSEC_ERRCODE_BAD_MIC, NULL);
  assert_int_equal(n, 8);
  assert_int_equal(mtcsec_frame_parse(&fr, buf, (size_t)n), 8);
  assert_int_equal(fr.type, MTCSEC_MSG_ERR);
  assert_int_equal(fr.body[0], 7);
  /* A long detail is cut to 255 bytes without splitting a UTF-8 char. */
  memset(detail, 'a', sizeof(detail));
  detail[254] = (char)0xc3; /* 2-byte sequence starting at offset 254 */
  detail[255] = (char)0xa9;
  detail[299] = 0;
  n = mtcsec_err_frame_encode(buf, sizeof(buf), 7, 12, detail);
  assert_int_equal(n, 8 + 254);
  /* A 4-byte sequence starting at 252: cut before it. */
  detail[252] = (char)0xf0;
  detail[253] = (char)0x9f;
  detail[254] = (char)0x98;
  detail[255] = (char)0x80;
  n = mtcsec_err_frame_encode(buf, sizeof(buf), 7, 12, detail);
  assert_int_equal(n, 8 + 252);
  /* A run of continuation bytes is not UTF-8: cut at 255, not at 0. */
  memset(detail, 0x85, 299);
  n = mtcsec_err_frame_encode(buf, sizeof(buf), 7, 12, detail);
  assert_int_equal(n, 8 + 255);
  assert_string_equal(mtcsec_errcode_name(7), "BAD_MIC");
  assert_string_equal(mtcsec_errcode_name(99), "UNKNOWN");
}

static void test_codec_m3_decode(void **state) {
  const mtcsec_crypto *c = th_openssl();
  uint8_t ka[32], kd[32], body[MTCSEC_M3_BODY_MAX_LEN];
  const uint8_t *dk;
  size_t dklen;
  mtcsec_m4_fields f;
  mtcsec_hs hs;
  mtcsec_ssize n;
  (void)state;
  assert_int_equal(mtcsec_derive_device_keys(c, 3, PSK, DEV, SRV, ka, kd), 0);
  f.suite = 3;
  f.mtcs_id = SRV;
  f.mtcd_id = DEV;
  f.mtcs_nonce = SNONCE;
  f.ueid = UE;
  f.info = SINFO;
  f.info_len = sizeof(SINFO);
  f.mtcd_nonce = NONCE;
  f.m1_info = DINFO;
  f.m1_info_len = 3;
  n = mtcsec_m4_build(body, sizeof(body), c, ka, &f);
  assert_true(n > 0);
  memset(body + n, 0xab, 32);
  assert_int_equal(mtcsec_m3_decode(&hs, &dk, &dklen, body, (size_t)n + 32), 0);
  assert_int_equal(dklen, 32);
  assert_ptr_equal(dk, body + n);
  /* DMKey of the wrong length. */
  assert_int_equal(mtcsec_m3_decode(&hs, &dk, &dklen, body, (size_t)n + 16),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(mtcsec_m3_decode(&hs, &dk, &dklen, body, 20),
                   MTCSEC_ERR_MALFORMED);
}

static void test_codec_revocation(void **state) {
  const mtcsec_crypto *prov[TH_MAX_PROVIDERS];
  const char *names[TH_MAX_PROVIDERS];
  size_t np = th_providers(prov, names), p;
  (void)state;
  for (p = 0; p < np; p++) {
    uint8_t suite;
    for (suite = 1; suite <= 3; suite++) {
      const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
      uint8_t ka[32], kd[32], msg[64];
      mtcsec_revoke r;
      mtcsec_ssize n;
      size_t i;
      assert_int_equal(
        mtcsec_derive_device_keys(prov[p], suite, PSK, DEV, SRV, ka, kd), 0);
      n = mtcsec_revoke_build(msg, sizeof(msg), prov[p], suite, ka, SRV, DEV,
                              0x0102, NONCE);
      assert_int_equal(n, 27 + sp->miclen);
      assert_int_equal(mtcsec_revoke_decode(&r, msg, (size_t)n, sp->miclen), 0);
      assert_int_equal(r.key_id, 0x0102);
      assert_memory_equal(r.mtcd_nonce, NONCE, 8);
      assert_int_equal(
        mtcsec_revoke_verify(&r, msg, (size_t)n, prov[p], suite, ka), 0);
      for (i = 0; i < (size_t)n * 8; i++) {
        int rv;
        msg[i / 8] ^= (uint8_t)(1u << (i % 8));
        rv = mtcsec_revoke_decode(&r, msg, (size_t)n, sp->miclen);
        if (rv == 0) {
          rv = mtcsec_revoke_verify(&r, msg, (size_t)n, prov[p], suite, ka);
        }
        assert_int_not_equal(rv, 0);
        msg[i / 8] ^= (uint8_t)(1u << (i % 8));
      }
      assert_int_equal(mtcsec_revoke_decode(&r, msg, (size_t)n - 1, sp->miclen),
                       MTCSEC_ERR_MALFORMED);
    }
  }
}

static void test_codec_window(void **state) {
  mtcsec_window w;
  uint64_t i;
  (void)state;
  mtcsec_window_init(&w);
  /* Empty: anything, 0 included, is new. */
  assert_int_equal(mtcsec_window_check(&w, 0), 0);
  mtcsec_window_update(&w, 0);
  assert_int_equal(mtcsec_window_check(&w, 0), MTCSEC_ERR_REPLAY);
  mtcsec_window_update(&w, 100);
  /* top-63 .. top accepted once; lower is a replay. */
  assert_int_equal(mtcsec_window_check(&w, 37), 0);
  assert_int_equal(mtcsec_window_check(&w, 36), MTCSEC_ERR_REPLAY);
  mtcsec_window_update(&w, 37);
  assert_int_equal(mtcsec_window_check(&w, 37), MTCSEC_ERR_REPLAY);
  assert_int_equal(mtcsec_window_check(&w, 100), MTCSEC_ERR_REPLAY);
  /* Sliding keeps the bits that stay in range. */
  mtcsec_window_update(&w, 101);
  assert_int_equal(mtcsec_window_check(&w, 37), MTCSEC_ERR_REPLAY);
  assert_int_equal(mtcsec_window_check(&w, 38), 0);
  assert_int_equal(mtcsec_window_check(&w, 100), MTCSEC_ERR_REPLAY);
  for (i = 38; i < 101; i++) {
    if (i != 100) {
      assert_int_equal(mtcsec_window_check(&w, i), 0);
    }
  }
  /* A jump past the window forgets everything below. */
  mtcsec_window_update(&w, 1000);
  assert_int_equal(mtcsec_window_check(&w, 999), 0);
  assert_int_equal(mtcsec_window_check(&w, 936), MTCSEC_ERR_REPLAY);
  /* The top of the 64-bit range. */
  mtcsec_window_update(&w, UINT64_MAX);
  assert_int_equal(mtcsec_window_check(&w, UINT64_MAX), MTCSEC_ERR_REPLAY);
  assert_int_equal(mtcsec_window_check(&w, UINT64_MAX - 63), 0);
  assert_int_equal(mtcsec_window_check(&w, UINT64_MAX - 64), MTCSEC_ERR_REPLAY);
}

static void test_codec_errors_have_names(void **state) {
  int codes[] = {MTCSEC_OK, MTCSEC_ERR_MIC, MTCSEC_ERR_REPLAY,
                 MTCSEC_ERR_CRYPTO, MTCSEC_ERR_FORBIDDEN};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    assert_string_not_equal(mtcsec_strerror(codes[i]), "unknown error");
    assert_string_not_equal(mtcsec_errname(codes[i]), "MTCSEC_ERR_UNKNOWN");
  }
  assert_string_equal(mtcsec_strerror(-9999), "unknown error");
  assert_true(mtcsec_err_is_fatal(MTCSEC_ERR_CRYPTO));
  assert_false(mtcsec_err_is_fatal(MTCSEC_ERR_MIC));
  assert_string_equal(mtcsec_version(), MTCSEC_VERSION_STRING);
}

/* ------------------------------------------ fast paths against references */

/* splitmix64 (Steele, Lea and Flood, OOPSLA 2014) with a fixed seed, so
 * that a failing input reproduces. */
static uint64_t rnd_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static size_t rnd_below(uint64_t *s, size_t n) {
  return (size_t)(rnd_next(s) % n);
}

static void rnd_fill(uint64_t *s, uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    p[i] = (uint8_t)rnd_next(s);
  }
}

static int all_bytes(const void *p, size_t n, uint8_t v) {
  const uint8_t *b = p;
  size_t i;
  for (i = 0; i < n; i++) {
    if (b[i] != v) {
      return 0;
    }
  }
  return 1;
}

/* A verdict the generator cannot tell in advance (only the comparison of
 * the two paths is checked then). */
#define EXPECT_ANY 1

/* The MTCsInfo defects of section 3 the generator can plant. */
enum {
  SI_VALID,       /* the three types, any order, unknown non-critical ones */
  SI_DROP,        /* one of the three missing */
  SI_DUP_KNOWN,   /* a known type twice */
  SI_DUP_UNKNOWN, /* an unknown non-critical type twice */
  SI_CRIT,        /* an unknown critical type */
  SI_BADLEN,      /* a known type with the wrong length */
  SI_DINFO_TYPE,  /* a non-critical MTCdInfo type: unknown here, skipped */
  SI_PATH_TYPE,   /* PATH: critical and of the other info, so unknown */
  SI_TRUNC,       /* cut anywhere */
  SI_TRAIL,       /* 1-3 trailing bytes that are not a whole TLV */
  SI_NKINDS
};

typedef struct tlv_piece {
  uint8_t type, len;
  uint8_t pad; /* an unknown non-critical filler the generator may drop */
} tlv_piece;

#define MAX_PIECES 160

static void piece_insert(tlv_piece *pc, size_t *np, size_t at, uint8_t type,
                         uint8_t len, uint8_t pad) {
  memmove(pc + at + 1, pc + at, (*np - at) * sizeof(*pc));
  pc[at].type = type;
  pc[at].len = len;
  pc[at].pad = pad;
  (*np)++;
}

static size_t pieces_len(const tlv_piece *pc, size_t np) {
  size_t i, n = 0;
  for (i = 0; i < np; i++) {
    n += 2u + pc[i].len;
  }
  return n;
}

/* Drops filler pieces from the end until the pieces take at most max
 * bytes. */
static void pieces_fit(tlv_piece *pc, size_t *np, size_t max) {
  size_t i = *np;
  while (pieces_len(pc, *np) > max && i > 0) {
    i--;
    if (pc[i].pad) {
      memmove(pc + i, pc + i + 1, (*np - i - 1) * sizeof(*pc));
      (*np)--;
    }
  }
  assert_true(pieces_len(pc, *np) <= max);
}

/* The rules of section 3 for MTCsInfo, over a list of TLV headers: no type
 * twice, no unknown critical type, the known ones with their lengths, all
 * three present.  Returns 0 or MTCSEC_ERR_MALFORMED. */
static int pieces_verdict(const tlv_piece *pc, size_t np) {
  unsigned count[256];
  size_t i;
  memset(count, 0, sizeof(count));
  for (i = 0; i < np; i++) {
    uint8_t t = pc[i].type, l = pc[i].len;
    if (count[t]++ != 0 || (t == MTCSEC_TLV_LIFETIME && l != 4) ||
        (t == MTCSEC_TLV_PERMS && l != 1) ||
        (t == MTCSEC_TLV_KEY_ID && l != 2) ||
        ((t & 0x80) != 0 &&
         (t < MTCSEC_TLV_LIFETIME || t > MTCSEC_TLV_KEY_ID))) {
      return MTCSEC_ERR_MALFORMED;
    }
  }
  return count[MTCSEC_TLV_LIFETIME] && count[MTCSEC_TLV_PERMS] &&
             count[MTCSEC_TLV_KEY_ID]
           ? 0
           : MTCSEC_ERR_MALFORMED;
}

/*
 * Writes an MTCsInfo of the given kind into out (at most 255 bytes), of
 * about target bytes (exactly target for SI_VALID when target is 13 or more
 * and not 14), and sets *expect to the verdict of section 3: 0 or
 * MTCSEC_ERR_MALFORMED.  Returns its length.
 */
static size_t gen_sinfo(uint64_t *rs, int kind, size_t target, uint8_t *out,
                        int *expect) {
  static const uint8_t mand_type[3] = {MTCSEC_TLV_LIFETIME, MTCSEC_TLV_PERMS,
                                       MTCSEC_TLV_KEY_ID};
  static const uint8_t mand_len[3] = {4, 1, 2};
  tlv_piece pc[MAX_PIECES];
  size_t starts[MAX_PIECES + 1];
  uint8_t types[128];
  size_t np = 0, ntypes = 128, rest, i, j, len, off;
  uint8_t t;

  /* Filler: distinct unknown non-critical types (0x00-0x7f; the MTCdInfo
   * types 0x02-0x05 are among them and are unknown here too). */
  for (i = 0; i < 128; i++) {
    types[i] = (uint8_t)i;
  }
  if (target < 13) {
    target = 13;
  }
  if (target == 14) {
    target = 15; /* a single byte left over cannot be a TLV */
  }
  rest = target - 13;
  while (rest > 0) {
    size_t l = rest - 2;
    if (l > 40) {
      l = rnd_below(rs, 41);
    }
    if (rest - 2 - l == 1) {
      l++;
    }
    j = rnd_below(rs, ntypes);
    t = types[j];
    types[j] = types[--ntypes];
    piece_insert(pc, &np, np, t, (uint8_t)l, 1);
    rest -= 2 + l;
  }
  for (i = 0; i < 3; i++) {
    piece_insert(pc, &np, rnd_below(rs, np + 1), mand_type[i], mand_len[i], 0);
  }
  *expect = 0;
  j = rnd_below(rs, 3);
  switch (kind) {
  case SI_DROP:
    for (i = 0; pc[i].type != mand_type[j]; i++) {
    }
    memmove(pc + i, pc + i + 1, (np - i - 1) * sizeof(*pc));
    np--;
    *expect = MTCSEC_ERR_MALFORMED;
    break;
  case SI_DUP_KNOWN:
    piece_insert(pc, &np, rnd_below(rs, np + 1), mand_type[j], mand_len[j], 0);
    *expect = MTCSEC_ERR_MALFORMED;
    break;
  case SI_DUP_UNKNOWN:
    /* Twice a filler type, lengths free (the rule is about the type). */
    t = types[rnd_below(rs, ntypes)];
    piece_insert(pc, &np, rnd_below(rs, np + 1), t, (uint8_t)rnd_below(rs, 9),
                 0);
    piece_insert(pc, &np, rnd_below(rs, np + 1), t, (uint8_t)rnd_below(rs, 9),
                 0);
    *expect = MTCSEC_ERR_MALFORMED;
    break;
  case SI_CRIT:
    do {
      t = (uint8_t)(0x80 + rnd_below(rs, 128));
    } while (t >= MTCSEC_TLV_LIFETIME && t <= MTCSEC_TLV_KEY_ID);
    piece_insert(pc, &np, rnd_below(rs, np + 1), t, (uint8_t)rnd_below(rs, 9),
                 0);
    *expect = MTCSEC_ERR_MALFORMED;
    break;
  case SI_BADLEN:
    for (i = 0; pc[i].type != mand_type[j]; i++) {
    }
    do {
      pc[i].len = (uint8_t)rnd_below(rs, 9);
    } while (pc[i].len == mand_len[j]);
    *expect = MTCSEC_ERR_MALFORMED;
    break;
  case SI_DINFO_TYPE:
    t = (uint8_t)(MTCSEC_TLV_BATTERY + rnd_below(rs, 4));
    piece_insert(pc, &np, rnd_below(rs, np + 1), t, (uint8_t)rnd_below(rs, 9),
                 0);
    break;
  case SI_PATH_TYPE:
    piece_insert(pc, &np, rnd_below(rs, np + 1), MTCSEC_TLV_PATH,
                 (uint8_t)(8 * rnd_below(rs, 3)), 0);
    *expect = MTCSEC_ERR_MALFORMED;
    break;
  default:
    break;
  }
  pieces_fit(pc, &np, kind == SI_TRAIL ? 252 : MTCSEC_MAX_INFO_LEN);
  if (kind == SI_DINFO_TYPE) {
    /* Fitting may have dropped the filler it duplicated. */
    *expect = pieces_verdict(pc, np);
  } else {
    assert_int_equal(pieces_verdict(pc, np), *expect); /* the generator */
  }
  off = 0;
  for (i = 0; i < np; i++) {
    starts[i] = off;
    out[off] = pc[i].type;
    out[off + 1] = pc[i].len;
    rnd_fill(rs, out + off + 2, pc[i].len);
    off += 2u + pc[i].len;
  }
  starts[np] = off;
  len = off;
  if (kind == SI_TRUNC) {
    /* A cut on a TLV boundary leaves a shorter info that is well formed
     * when the three types are still before the cut. */
    size_t cut = rnd_below(rs, len), k, have = 0;
    *expect = MTCSEC_ERR_MALFORMED;
    for (k = 0; k <= np && starts[k] <= cut; k++) {
      if (starts[k] == cut) {
        for (i = 0; i < k; i++) {
          have += pc[i].type >= MTCSEC_TLV_LIFETIME &&
                  pc[i].type <= MTCSEC_TLV_KEY_ID && !pc[i].pad;
        }
        *expect = have == 3 ? 0 : MTCSEC_ERR_MALFORMED;
      }
    }
    len = cut;
  } else if (kind == SI_TRAIL) {
    size_t extra = 1 + rnd_below(rs, 3);
    out[len] = (uint8_t)rnd_next(rs);
    if (extra >= 2) { /* a header whose value runs past the end */
      out[len + 1] = (uint8_t)(extra - 1 + rnd_below(rs, 250));
    }
    if (extra == 3) {
      out[len + 2] = (uint8_t)rnd_next(rs);
    }
    len += extra;
    *expect = MTCSEC_ERR_MALFORMED;
  }
  assert_true(len <= MTCSEC_MAX_INFO_LEN);
  return len;
}

/* Framing defects of an M4 (section 4, lengths of section 5). */
enum { FR_OK, FR_TYPE, FR_INFOLEN, FR_MICLEN, FR_SHORT, FR_NKINDS };

/* Every suite byte worth trying: the three known and some unknown ones. */
static const uint8_t try_suites[] = {1, 2, 3, 0, 4, 0x7f, 0xff};

/*
 * Frames info as an M4 of suite into out (room for MTCSEC_HS_MAX_LEN + 32)
 * with framing defect fr.  *expect: the verdict given info_expect, the
 * verdict on the info alone.
 */
static size_t gen_m4(uint64_t *rs, uint8_t suite, const uint8_t *info,
                     size_t info_len, int info_expect, int fr, uint8_t *out,
                     int *expect) {
  static const uint8_t bad_types[] = {0x11, 0x13, 0x04, 0x24, 0x15, 0x94};
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  size_t t = sp != NULL ? sp->miclen : rnd_below(rs, 21), len;

  out[0] = MTCSEC_MSG_M4;
  out[1] = suite;
  rnd_fill(rs, out + 2, 32);
  out[34] = (uint8_t)info_len;
  memcpy(out + MTCSEC_HS_FIXED_LEN, info, info_len);
  rnd_fill(rs, out + MTCSEC_HS_FIXED_LEN + info_len, t);
  len = MTCSEC_HS_FIXED_LEN + info_len + t;
  *expect = info_expect;
  switch (fr) {
  case FR_TYPE:
    out[0] = bad_types[rnd_below(rs, sizeof(bad_types))];
    *expect = MTCSEC_ERR_MALFORMED;
    break;
  case FR_INFOLEN: {
    int d = (int)rnd_below(rs, 3) + 1, b;
    b = rnd_below(rs, 2) ? (int)info_len + d : (int)info_len - d;
    if (b < 0 || b > 255) {
      b = (int)info_len == 255 ? 254 : (int)info_len + 1;
    }
    out[34] = (uint8_t)b;
    if (sp != NULL || MTCSEC_HS_FIXED_LEN + (size_t)b > len) {
      *expect = MTCSEC_ERR_MALFORMED;
    } else {
      *expect = EXPECT_ANY; /* the info is cut elsewhere */
    }
    break;
  }
  case FR_MICLEN:
    if (sp != NULL) {
      /* One or two MIC bytes too many or too few. */
      size_t d = 1 + rnd_below(rs, 2);
      if (rnd_below(rs, 2)) {
        rnd_fill(rs, out + len, d);
        len += d;
      } else {
        len -= d;
      }
      *expect = MTCSEC_ERR_MALFORMED;
    }
    break;
  case FR_SHORT:
    len = rnd_below(rs, len);
    if (len < MTCSEC_HS_FIXED_LEN + info_len || sp != NULL) {
      *expect = MTCSEC_ERR_MALFORMED;
    }
    break;
  default:
    break;
  }
  return len;
}

/* mtcsec_m4_decode() against mtcsec_hs_decode() + mtcsec_sinfo_decode():
 * same verdict, same fields, both outputs zeroed on error.  Also checks
 * expect unless it is EXPECT_ANY.  Returns the verdict. */
static int check_m4_decode(const uint8_t *in, size_t inlen, int expect) {
  mtcsec_hs ref, fast;
  mtcsec_sinfo rs, fs;
  int rref, rfast;

  memset(&ref, 0xa5, sizeof(ref));
  memset(&fast, 0x5a, sizeof(fast));
  memset(&rs, 0xa5, sizeof(rs));
  memset(&fs, 0x5a, sizeof(fs));
  rref = mtcsec_hs_decode(&ref, MTCSEC_MSG_M4, in, inlen);
  if (rref == 0) {
    /* hs_decode checked the MTCsInfo: its decoder must agree. */
    assert_int_equal(mtcsec_sinfo_decode(&rs, ref.info, ref.info_len), 0);
  }
  rfast = mtcsec_m4_decode(&fast, &fs, in, inlen);
  assert_int_equal(rfast, rref);
  if (expect != EXPECT_ANY) {
    assert_int_equal(rfast, expect);
  }
  if (rref == 0) {
    assert_ptr_equal(fast.raw, ref.raw);
    assert_int_equal(fast.type, ref.type);
    assert_int_equal(fast.suite, ref.suite);
    assert_ptr_equal(fast.id_a, ref.id_a);
    assert_ptr_equal(fast.id_b, ref.id_b);
    assert_ptr_equal(fast.nonce, ref.nonce);
    assert_ptr_equal(fast.ueid, ref.ueid);
    assert_int_equal(fast.info_len, ref.info_len);
    assert_ptr_equal(fast.info, ref.info);
    assert_int_equal(fast.signed_len, ref.signed_len);
    assert_ptr_equal(fast.mic, ref.mic);
    assert_int_equal(fast.miclen, ref.miclen);
    assert_int_equal(fs.present, rs.present);
    assert_int_equal(fs.lifetime, rs.lifetime);
    assert_int_equal(fs.perms, rs.perms);
    assert_int_equal(fs.key_id, rs.key_id);
  } else {
    assert_true(all_bytes(&fast, sizeof(fast), 0));
    assert_true(all_bytes(&fs, sizeof(fs), 0));
  }
  return rfast;
}

/* Every info length 0..255, the three suites and unknown suite bytes,
 * every TLV rule of section 3 and every length rule of sections 4-5:
 * mtcsec_m4_decode() says what the two-step reference says, and what the
 * rules say. */
static void test_codec_m4_decode_matches_reference(void **state) {
  static uint8_t info[MTCSEC_MAX_INFO_LEN + 1];
  static uint8_t m4[MTCSEC_HS_MAX_LEN + 32];
  unsigned seen_ok[256], seen_bad[256], kind_ok[SI_NKINDS], kind_bad[SI_NKINDS];
  uint64_t rs = 0x4d34;
  size_t target, rep, info_len, len, i;
  int kind, fr, ie, expect, rv;
  (void)state;

  memset(seen_ok, 0, sizeof(seen_ok));
  memset(seen_bad, 0, sizeof(seen_bad));
  memset(kind_ok, 0, sizeof(kind_ok));
  memset(kind_bad, 0, sizeof(kind_bad));
  for (target = 0; target <= MTCSEC_MAX_INFO_LEN; target++) {
    for (rep = 0; rep < 48; rep++) {
      uint8_t suite = try_suites[rep % sizeof(try_suites)];
      kind = (int)rnd_below(&rs, SI_NKINDS);
      if (rep < 8) {
        kind = SI_VALID;
      }
      fr = rep % 3 != 2 ? FR_OK : (int)rnd_below(&rs, FR_NKINDS);
      if (target < 13 || target == 14) {
        /* Too short for the three mandatory types (14 leaves one byte that
         * cannot be a TLV): random bytes or a cut valid info. */
        if (rep % 2 == 0) {
          rnd_fill(&rs, info, target);
        } else {
          (void)gen_sinfo(&rs, SI_VALID, 13 + rnd_below(&rs, 40), info, &ie);
        }
        info_len = target;
        ie = MTCSEC_ERR_MALFORMED;
        kind = SI_TRUNC;
      } else {
        info_len = gen_sinfo(&rs, kind, target, info, &ie);
        if (kind == SI_VALID) {
          assert_int_equal(info_len, target == 14 ? 15 : target);
        }
      }
      len = gen_m4(&rs, suite, info, info_len, ie, fr, m4, &expect);
      rv = check_m4_decode(m4, len, expect);
      if (fr == FR_OK) {
        if (rv == 0) {
          seen_ok[info_len]++;
          kind_ok[kind]++;
        } else {
          seen_bad[info_len]++;
          kind_bad[kind]++;
        }
      }
    }
  }
  /* The generator reached what it was meant to: every length rejected,
   * every length that can hold the three types accepted, and each rule
   * seen on both sides where it has two. */
  for (i = 0; i <= MTCSEC_MAX_INFO_LEN; i++) {
    assert_true(seen_bad[i] > 0);
    if (i >= 13 && i != 14) {
      assert_true(seen_ok[i] > 0);
    }
  }
  assert_true(kind_ok[SI_VALID] > 0 && kind_bad[SI_VALID] == 0);
  assert_true(kind_ok[SI_DINFO_TYPE] > 0 && kind_bad[SI_DINFO_TYPE] > 0);
  assert_true(kind_ok[SI_TRUNC] > 0 && kind_bad[SI_TRUNC] > 0);
  for (kind = SI_DROP; kind < SI_NKINDS; kind++) {
    if (kind != SI_DINFO_TYPE && kind != SI_TRUNC) {
      assert_true(kind_ok[kind] == 0 && kind_bad[kind] > 0);
    }
  }

  /* Random damage to valid M4s: 1-4 bytes changed, bytes cut or added. */
  for (rep = 0; rep < 10000; rep++) {
    uint8_t suite = try_suites[rep % 4]; /* mostly known suites */
    size_t n = 1 + rnd_below(&rs, 4);
    info_len = gen_sinfo(&rs, SI_VALID, 13 + rnd_below(&rs, 243), info, &ie);
    len = gen_m4(&rs, suite, info, info_len, ie, FR_OK, m4, &expect);
    for (i = 0; i < n; i++) {
      switch (rnd_below(&rs, 4)) {
      case 0: /* a byte of the info_len or the TLV headers */
        m4[rnd_below(&rs, 2) ? 34 : 35 + rnd_below(&rs, info_len)] =
          (uint8_t)rnd_next(&rs);
        break;
      case 1:
        m4[rnd_below(&rs, len)] ^= (uint8_t)(1u << rnd_below(&rs, 8));
        break;
      case 2:
        len = len > 0 ? len - 1 - rnd_below(&rs, len < 4 ? len : 4) : 0;
        break;
      default:
        m4[len] = (uint8_t)rnd_next(&rs);
        len += len < MTCSEC_HS_MAX_LEN + 16;
        break;
      }
    }
    (void)check_m4_decode(m4, len, EXPECT_ANY);
  }

  /* Arguments. */
  {
    mtcsec_hs hs;
    mtcsec_sinfo s;
    info_len = gen_sinfo(&rs, SI_VALID, 13, info, &ie);
    len = gen_m4(&rs, 1, info, info_len, ie, FR_OK, m4, &expect);
    assert_int_equal(mtcsec_m4_decode(NULL, &s, m4, len),
                     MTCSEC_ERR_INVALID_ARGUMENT);
    assert_int_equal(mtcsec_m4_decode(&hs, NULL, m4, len),
                     MTCSEC_ERR_INVALID_ARGUMENT);
    assert_int_equal(mtcsec_m4_decode(&hs, &s, NULL, len),
                     MTCSEC_ERR_INVALID_ARGUMENT);
    assert_int_equal(mtcsec_m4_decode(&hs, &s, m4, len), 0);
    /* An M1 is not an M4, whatever its contents. */
    m4[0] = MTCSEC_MSG_M1;
    assert_int_equal(mtcsec_m4_decode(&hs, &s, m4, len), MTCSEC_ERR_MALFORMED);
  }
}

/* Builds an M4 answering an M1 whose tail (MTCdNonce || info_len ||
 * MTCdInfo) is tail; returns its length. */
static size_t build_m4_for_tail(const mtcsec_crypto *c, uint8_t suite,
                                const uint8_t *ka, const uint8_t *sinfo,
                                size_t sinfo_len, const uint8_t *tail,
                                uint8_t *out, size_t outlen) {
  mtcsec_m4_fields f;
  mtcsec_ssize n;
  f.suite = suite;
  f.mtcs_id = SRV;
  f.mtcd_id = DEV;
  f.mtcs_nonce = SNONCE;
  f.ueid = UE;
  f.info = sinfo;
  f.info_len = sinfo_len;
  f.mtcd_nonce = tail;
  f.m1_info = tail + 9;
  f.m1_info_len = tail[8];
  n = mtcsec_m4_build(out, outlen, c, ka, &f);
  assert_true(n > 0);
  return (size_t)n;
}

/* mtcsec_m4_verify_tail() against mtcsec_m4_verify(): both accept the
 * genuine M4, both reject every single-bit flip of it and of the M1 part,
 * and the tail variant refuses lengths that disagree. */
static void test_codec_m4_verify_tail_matches_verify(void **state) {
  static const size_t m1_lens[] = {0, 255};
  static const size_t si_lens[] = {13, 255};
  const mtcsec_crypto *prov[TH_MAX_PROVIDERS];
  const char *names[TH_MAX_PROVIDERS];
  size_t np = th_providers(prov, names), p, a, b, i, len;
  uint64_t rs = 0x7a11;
  unsigned checked = 0;
  (void)state;

  for (p = 0; p < np; p++) {
    uint8_t suite;
    for (suite = 1; suite <= 3; suite++) {
      for (a = 0; a < sizeof(m1_lens) / sizeof(m1_lens[0]); a++) {
        /* Zeroed past the key: a flip of suite 2 into 3 uses 32 bytes. */
        uint8_t ka[32] = {0}, kd[32] = {0}, tail[9 + 256];
        uint8_t sinfo[MTCSEC_MAX_INFO_LEN], m4[MTCSEC_HS_MAX_LEN + 1];
        size_t tlen = 9 + m1_lens[a];
        mtcsec_hs hs, h2;
        mtcsec_sinfo si;
        int ie, rref, rtail;

        assert_int_equal(
          mtcsec_derive_device_keys(prov[p], suite, PSK, DEV, SRV, ka, kd), 0);
        b = (a + suite) % 2;
        assert_int_equal(gen_sinfo(&rs, SI_VALID, si_lens[b], sinfo, &ie),
                         si_lens[b]);
        rnd_fill(&rs, tail, sizeof(tail));
        tail[8] = (uint8_t)m1_lens[a];
        len = build_m4_for_tail(prov[p], suite, ka, sinfo, si_lens[b], tail, m4,
                                sizeof(m4));
        assert_int_equal(mtcsec_m4_decode(&hs, &si, m4, len), 0);
        assert_int_equal(
          mtcsec_m4_verify(&hs, prov[p], ka, tail, tail + 9, tail[8]), 0);
        assert_int_equal(mtcsec_m4_verify_tail(&hs, prov[p], ka, tail, tlen),
                         0);
        /* The wrong key. */
        assert_int_equal(mtcsec_m4_verify_tail(&hs, prov[p], kd, tail, tlen),
                         MTCSEC_ERR_MIC);

        /* Every single-bit flip of the M4 that still decodes fails both
         * ways alike (the others never reach a verifier). */
        for (i = 0; i < len * 8; i++) {
          m4[i / 8] ^= (uint8_t)(1u << (i % 8));
          if (mtcsec_hs_decode(&h2, MTCSEC_MSG_M4, m4, len) == 0 &&
              mtcsec_suite_get(h2.suite) != NULL) {
            rref = mtcsec_m4_verify(&h2, prov[p], ka, tail, tail + 9, tail[8]);
            rtail = mtcsec_m4_verify_tail(&h2, prov[p], ka, tail, tlen);
            assert_int_equal(rtail, rref);
            assert_int_equal(rtail, MTCSEC_ERR_MIC);
            checked++;
          }
          m4[i / 8] ^= (uint8_t)(1u << (i % 8));
        }
        /* Every single-bit flip of MTCdNonce and MTCdInfo fails both ways;
         * one of info_len is a length that disagrees. */
        for (i = 0; i < tlen * 8; i++) {
          tail[i / 8] ^= (uint8_t)(1u << (i % 8));
          rtail = mtcsec_m4_verify_tail(&hs, prov[p], ka, tail, tlen);
          if (i / 8 == 8) {
            assert_int_equal(rtail, MTCSEC_ERR_INVALID_ARGUMENT);
          } else {
            rref = mtcsec_m4_verify(&hs, prov[p], ka, tail, tail + 9, tail[8]);
            assert_int_equal(rtail, rref);
            assert_int_equal(rtail, MTCSEC_ERR_MIC);
          }
          tail[i / 8] ^= (uint8_t)(1u << (i % 8));
        }
        assert_int_equal(mtcsec_m4_verify_tail(&hs, prov[p], ka, tail, tlen),
                         0);

        /* Lengths that disagree with tail[8], or no room for it. */
        for (i = 0; i < 9 + 257; i++) {
          if (i != tlen) {
            assert_int_equal(mtcsec_m4_verify_tail(&hs, prov[p], ka, tail, i),
                             MTCSEC_ERR_INVALID_ARGUMENT);
          }
        }
        assert_int_equal(
          mtcsec_m4_verify_tail(&hs, prov[p], ka, tail, (size_t)-1),
          MTCSEC_ERR_INVALID_ARGUMENT);
        /* Arguments and decoded M4s either verifier refuses. */
        assert_int_equal(mtcsec_m4_verify_tail(NULL, prov[p], ka, tail, tlen),
                         MTCSEC_ERR_INVALID_ARGUMENT);
        assert_int_equal(mtcsec_m4_verify_tail(&hs, NULL, ka, tail, tlen),
                         MTCSEC_ERR_INVALID_ARGUMENT);
        assert_int_equal(mtcsec_m4_verify_tail(&hs, prov[p], NULL, tail, tlen),
                         MTCSEC_ERR_INVALID_ARGUMENT);
        assert_int_equal(mtcsec_m4_verify_tail(&hs, prov[p], ka, NULL, tlen),
                         MTCSEC_ERR_INVALID_ARGUMENT);
        h2 = hs;
        h2.type = MTCSEC_MSG_M1;
        assert_int_equal(mtcsec_m4_verify_tail(&h2, prov[p], ka, tail, tlen),
                         MTCSEC_ERR_INVALID_ARGUMENT);
        assert_int_equal(
          mtcsec_m4_verify(&h2, prov[p], ka, tail, tail + 9, tail[8]),
          MTCSEC_ERR_INVALID_ARGUMENT);
        h2 = hs;
        h2.raw = NULL;
        assert_int_equal(mtcsec_m4_verify_tail(&h2, prov[p], ka, tail, tlen),
                         MTCSEC_ERR_INVALID_ARGUMENT);
        h2 = hs;
        h2.miclen = (uint8_t)(hs.miclen - 1);
        assert_int_equal(mtcsec_m4_verify_tail(&h2, prov[p], ka, tail, tlen),
                         MTCSEC_ERR_INVALID_ARGUMENT);
        assert_int_equal(
          mtcsec_m4_verify(&h2, prov[p], ka, tail, tail + 9, tail[8]),
          MTCSEC_ERR_INVALID_ARGUMENT);
        /* An unknown suite decodes (t = 0) but is never verified. */
        m4[1] = 0x7f;
        assert_int_equal(mtcsec_hs_decode(&h2, MTCSEC_MSG_M4, m4, len), 0);
        assert_int_equal(mtcsec_m4_verify_tail(&h2, prov[p], ka, tail, tlen),
                         MTCSEC_ERR_INVALID_ARGUMENT);
        assert_int_equal(
          mtcsec_m4_verify(&h2, prov[p], ka, tail, tail + 9, tail[8]),
          MTCSEC_ERR_INVALID_ARGUMENT);
        m4[1] = suite;
      }
    }
  }
  assert_true(checked > 0);
}

/* A random MTCdInfo with the given presence bits; list lengths short or up
 * to the largest value. */
static void gen_dinfo(uint64_t *rs, unsigned present, mtcsec_dinfo *d,
                      uint8_t *suites, uint8_t *path) {
  memset(d, 0, sizeof(*d));
  d->present = present;
  d->battery = (uint8_t)rnd_next(rs);
  d->lat = (int32_t)(uint32_t)rnd_next(rs);
  d->lon = (int32_t)(uint32_t)rnd_next(rs);
  d->req_perms = (uint8_t)rnd_next(rs);
  d->nsuites = (uint8_t)(1 + rnd_below(rs, rnd_below(rs, 2) ? 4 : 255));
  d->npath = (uint8_t)(1 + rnd_below(rs, rnd_below(rs, 2) ? 3 : 31));
  rnd_fill(rs, suites, 255);
  rnd_fill(rs, path, 31 * MTCSEC_ID_LEN);
  d->suites = suites;
  d->path = path;
}

/* Both builders on the same fields and destlen: same
 * return, same bytes, nothing written on an error. */
static void check_m1_builders(const mtcsec_crypto *c, const uint8_t *ka,
                              const mtcsec_m1_fields *f, size_t destlen,
                              mtcsec_ssize expect) {
  uint8_t a[MTCSEC_HS_MAX_LEN + 16], b[MTCSEC_HS_MAX_LEN + 16];
  mtcsec_ssize ra, rb;
  assert_true(destlen <= sizeof(a));
  memset(a, 0xee, sizeof(a));
  memset(b, 0xee, sizeof(b));
  ra = mtcsec_m1_build(a, destlen, c, ka, f);
  rb = mtcsec_m1_build_encoded(b, destlen, c, ka, f);
  assert_int_equal(rb, ra);
  assert_int_equal(ra, expect);
  assert_memory_equal(a, b, sizeof(a));
  if (ra < 0) {
    assert_true(all_bytes(a, sizeof(a), 0xee));
  } else {
    assert_true(all_bytes(a + ra, sizeof(a) - (size_t)ra, 0xee));
  }
}

/* mtcsec_m1_build_encoded() and mtcsec_m1_build() agree byte for byte on
 * every kind of info mtcsec_dinfo_encode() writes (all 32 field sets, every
 * length it can reach, 0 and 3..255), every suite and provider, and on
 * NOBUF and INVALID_ARGUMENT. */
static void test_codec_m1_build_encoded_matches_build(void **state) {
  const mtcsec_crypto *prov[TH_MAX_PROVIDERS];
  const char *names[TH_MAX_PROVIDERS];
  size_t np = th_providers(prov, names);
  uint8_t suites[255], path[31 * MTCSEC_ID_LEN], info[MTCSEC_MAX_INFO_LEN];
  uint8_t ka[3][32];
  unsigned seen[256];
  uint64_t rs = 0x3131;
  size_t round, i, need;
  unsigned present;
  (void)state;

  memset(seen, 0, sizeof(seen));
  for (i = 0; i < 3; i++) {
    uint8_t kd[32];
    assert_int_equal(mtcsec_derive_device_keys(prov[0], (uint8_t)(i + 1), PSK,
                                               DEV, SRV, ka[i], kd),
                     0);
  }
  /* 32 field sets x 40, then SUITES alone with 1..253 suites (every length
   * from 3 to 255), then everything but SUITES, PATH short. */
  for (round = 0; round < 32 * 40 + 253 + 64; round++) {
    mtcsec_dinfo d, back;
    mtcsec_m1_fields f;
    mtcsec_ssize n;
    uint8_t suite = (uint8_t)(1 + round % 3);
    const mtcsec_crypto *c = prov[round % np];
    const mtcsec_suite_params *sp = mtcsec_suite_get(suite);

    present = (unsigned)(round % 32);
    if (round >= 32 * 40 && round < 32 * 40 + 253) {
      present = MTCSEC_DINFO_SUITES;
    }
    gen_dinfo(&rs, present, &d, suites, path);
    if (round >= 32 * 40 && round < 32 * 40 + 253) {
      d.nsuites = (uint8_t)(round - 32 * 40 + 1);
    }
    n = mtcsec_dinfo_encode(info, sizeof(info), &d);
    if (n == MTCSEC_ERR_INVALID_ARGUMENT) {
      continue; /* more than 255 bytes in all: not an info */
    }
    assert_true(n >= 0);
    seen[n]++;
    /* The premise of the fast path: what the encoder writes decodes. */
    assert_int_equal(mtcsec_dinfo_decode(&back, info, (size_t)n), 0);
    assert_int_equal(back.present, d.present);

    f.suite = suite;
    f.mtcd_id = DEV;
    f.mtcs_id = SRV;
    f.nonce = NONCE;
    f.ueid = UE;
    f.info = n > 0 || round % 2 ? info : NULL; /* NULL is fine for 0 bytes */
    f.info_len = (size_t)n;
    need = MTCSEC_HS_FIXED_LEN + (size_t)n + sp->miclen;
    check_m1_builders(c, ka[suite - 1], &f, need, (mtcsec_ssize)need);
    check_m1_builders(c, ka[suite - 1], &f, need + 16, (mtcsec_ssize)need);
    check_m1_builders(c, ka[suite - 1], &f, need - 1, MTCSEC_ERR_NOBUF);
    check_m1_builders(c, ka[suite - 1], &f, rnd_below(&rs, need),
                      MTCSEC_ERR_NOBUF);
    check_m1_builders(c, ka[suite - 1], &f, 0, MTCSEC_ERR_NOBUF);
    f.suite = try_suites[3 + round % 4]; /* unknown */
    check_m1_builders(c, ka[suite - 1], &f, need, MTCSEC_ERR_INVALID_ARGUMENT);
    f.suite = suite;
    if (round % 64 == 0) {
      /* The M1 decodes and verifies, and carries the info unchanged. */
      uint8_t m1[MTCSEC_HS_MAX_LEN];
      mtcsec_hs hs;
      assert_int_equal(
        mtcsec_m1_build_encoded(m1, sizeof(m1), c, ka[suite - 1], &f),
        (mtcsec_ssize)need);
      assert_int_equal(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, need), 0);
      assert_int_equal(mtcsec_m1_verify(&hs, c, ka[suite - 1]), 0);
      assert_int_equal(hs.info_len, n);
      assert_memory_equal(hs.info, info, (size_t)n);
    }
  }
  assert_true(seen[0] > 0);
  for (i = 3; i <= MTCSEC_MAX_INFO_LEN; i++) {
    assert_true(seen[i] > 0);
  }

  /* INVALID_ARGUMENT from either builder for the same arguments. */
  {
    uint8_t dest[MTCSEC_HS_MAX_LEN + 16], big[MTCSEC_MAX_INFO_LEN + 1];
    mtcsec_dinfo d;
    mtcsec_m1_fields f, g;
    mtcsec_ssize n;
    const mtcsec_crypto *c = prov[0];
    gen_dinfo(&rs, MTCSEC_DINFO_SUITES, &d, suites, path);
    d.nsuites = 253;
    n = mtcsec_dinfo_encode(info, sizeof(info), &d);
    assert_int_equal(n, 255);
    f.suite = 1;
    f.mtcd_id = DEV;
    f.mtcs_id = SRV;
    f.nonce = NONCE;
    f.ueid = UE;
    f.info = info;
    f.info_len = 255;
    check_m1_builders(c, ka[0], &f, sizeof(dest), 35 + 255 + 8);
    /* 256 bytes: one more than info_len can say. */
    memcpy(big, info, 255);
    big[255] = 0;
    g = f;
    g.info = big;
    g.info_len = 256;
    check_m1_builders(c, ka[0], &g, sizeof(dest), MTCSEC_ERR_INVALID_ARGUMENT);
    g = f;
    g.info = NULL;
    check_m1_builders(c, ka[0], &g, sizeof(dest), MTCSEC_ERR_INVALID_ARGUMENT);
    g = f;
    g.mtcd_id = NULL;
    check_m1_builders(c, ka[0], &g, sizeof(dest), MTCSEC_ERR_INVALID_ARGUMENT);
    g = f;
    g.mtcs_id = NULL;
    check_m1_builders(c, ka[0], &g, sizeof(dest), MTCSEC_ERR_INVALID_ARGUMENT);
    g = f;
    g.nonce = NULL;
    check_m1_builders(c, ka[0], &g, sizeof(dest), MTCSEC_ERR_INVALID_ARGUMENT);
    g = f;
    g.ueid = NULL;
    check_m1_builders(c, ka[0], &g, sizeof(dest), MTCSEC_ERR_INVALID_ARGUMENT);
    check_m1_builders(c, NULL, &f, sizeof(dest), MTCSEC_ERR_INVALID_ARGUMENT);
    check_m1_builders(NULL, ka[0], &f, sizeof(dest),
                      MTCSEC_ERR_INVALID_ARGUMENT);
    assert_int_equal(mtcsec_m1_build(dest, sizeof(dest), c, ka[0], NULL),
                     MTCSEC_ERR_INVALID_ARGUMENT);
    assert_int_equal(
      mtcsec_m1_build_encoded(dest, sizeof(dest), c, ka[0], NULL),
      MTCSEC_ERR_INVALID_ARGUMENT);
    assert_int_equal(mtcsec_m1_build(NULL, 10, c, ka[0], &f),
                     MTCSEC_ERR_INVALID_ARGUMENT);
    assert_int_equal(mtcsec_m1_build_encoded(NULL, 10, c, ka[0], &f),
                     MTCSEC_ERR_INVALID_ARGUMENT);
    assert_int_equal(mtcsec_m1_build(NULL, 0, c, ka[0], &f), MTCSEC_ERR_NOBUF);
    assert_int_equal(mtcsec_m1_build_encoded(NULL, 0, c, ka[0], &f),
                     MTCSEC_ERR_NOBUF);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_codec_msg_type),
    cmocka_unit_test(test_codec_m0_roundtrip_and_hops),
    cmocka_unit_test(test_codec_dinfo_rules),
    cmocka_unit_test(test_codec_sinfo_requires_all_three),
    cmocka_unit_test(test_codec_m1_build_decode_verify),
    cmocka_unit_test(test_codec_unknown_suite_structural_only),
    cmocka_unit_test(test_codec_m4_mic_covers_m1_nonce_and_info),
    cmocka_unit_test(test_codec_builders_refuse_bad_info),
    cmocka_unit_test(test_codec_frames),
    cmocka_unit_test(test_codec_err_frame),
    cmocka_unit_test(test_codec_m3_decode),
    cmocka_unit_test(test_codec_revocation),
    cmocka_unit_test(test_codec_window),
    cmocka_unit_test(test_codec_errors_have_names),
    cmocka_unit_test(test_codec_m4_decode_matches_reference),
    cmocka_unit_test(test_codec_m4_verify_tail_matches_verify),
    cmocka_unit_test(test_codec_m1_build_encoded_matches_build),
  };
  int rv = cmocka_run_group_tests(tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
