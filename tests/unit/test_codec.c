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
  };
  int rv = cmocka_run_group_tests(tests, NULL, NULL);
  th_providers_cleanup();
  return rv;
}
