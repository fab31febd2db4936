/*
 * Gi frames (apps/common/gi.h, docs/CELLULAR-SYSTEM.md section 3): round
 * trips of every type, every truncation says "need more", lengths out of
 * range and bodies of the wrong size are malformed, the encoder never
 * writes past its buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "gi.h"

static const uint8_t OPEN_BODY[GI_CTX_OPEN_LEN] = {
  0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0xf1, /* IMSI 001010000000001 */
  0x23, 0x55, 0x3c, 0xbe, 0x96, 0x37, 0xa8, 0x9d, /* RAND */
  0x21, 0x8a, 0xe6, 0x4d, 0xae, 0x47, 0xbf, 0x35};

/* Encodes, decodes, and checks every field and every prefix. */
static void roundtrip(uint8_t type, uint32_t ctx, const uint8_t *body,
                      size_t bodylen) {
  uint8_t buf[GI_FRAME_MAX + 8];
  gi_frame f;
  mtcsec_ssize n, m;
  size_t cut;

  n = gi_encode(type, ctx, body, bodylen, buf, sizeof(buf));
  assert_int_equal(n, (mtcsec_ssize)(GI_HDR_LEN + bodylen));
  assert_int_equal(((size_t)buf[0] << 8) | buf[1], GI_HDR_MIN + bodylen);
  assert_int_equal(buf[2], type);
  memset(&f, 0xa5, sizeof(f));
  m = gi_decode(&f, buf, (size_t)n);
  assert_int_equal(m, n);
  assert_int_equal(f.type, type);
  assert_int_equal(f.ctx, ctx);
  assert_int_equal(f.bodylen, bodylen);
  if (bodylen > 0) {
    assert_ptr_equal(f.body, buf + GI_HDR_LEN);
    assert_memory_equal(f.body, body, bodylen);
  } else {
    assert_null(f.body);
  }
  /* Every truncation: need more, and f untouched. */
  for (cut = 0; cut < (size_t)n; cut++) {
    gi_frame g;
    memset(&g, 0x5a, sizeof(g));
    assert_int_equal(gi_decode(&g, buf, cut), 0);
    assert_int_equal(g.type, 0x5a);
  }
  /* Trailing bytes belong to the next frame. */
  buf[n] = 0x00;
  buf[n + 1] = 0x05;
  assert_int_equal(gi_decode(&f, buf, (size_t)n + 2), n);
}

static void test_gi_roundtrip_every_type(void **state) {
  uint8_t st = GI_STATUS_UNKNOWN_VECTOR;
  uint8_t rec[GI_BODY_MAX];
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(rec); i++) {
    rec[i] = (uint8_t)(i * 7 + 1);
  }
  roundtrip(GI_CTX_OPEN, 0x01020304u, OPEN_BODY, sizeof(OPEN_BODY));
  roundtrip(GI_CTX_RESULT, 0xffffffffu, &st, 1);
  roundtrip(GI_CTX_CLOSE, 0, NULL, 0);
  roundtrip(GI_UPLINK, 7, rec, 15);
  roundtrip(GI_UPLINK, 7, NULL, 0);
  roundtrip(GI_DOWNLINK, 0x80000000u, rec, 274);
  roundtrip(GI_UPLINK, 1, rec, GI_BODY_MAX); /* length field = 2048 */
}

static void test_gi_encode_big_endian(void **state) {
  uint8_t buf[32];
  static const uint8_t want[] = {0x00, 0x06, 0x02, 0xde,
                                 0xad, 0xbe, 0xef, 0x03};
  uint8_t st = 0x03;
  (void)state;
  assert_int_equal(
    gi_encode(GI_CTX_RESULT, 0xdeadbeefu, &st, 1, buf, sizeof(buf)), 8);
  assert_memory_equal(buf, want, sizeof(want));
}

static void test_gi_decode_rejects_lengths(void **state) {
  uint8_t buf[GI_FRAME_MAX + 16];
  gi_frame f;
  unsigned len;
  (void)state;
  memset(buf, 0, sizeof(buf));
  buf[2] = GI_UPLINK;
  /* Below 5: malformed as soon as the two length bytes are there. */
  for (len = 0; len < GI_HDR_MIN; len++) {
    buf[0] = 0;
    buf[1] = (uint8_t)len;
    assert_int_equal(gi_decode(&f, buf, 2), MTCSEC_ERR_MALFORMED);
    assert_int_equal(gi_decode(&f, buf, sizeof(buf)), MTCSEC_ERR_MALFORMED);
  }
  /* Oversized: 2049 and 65535, without waiting for the body. */
  buf[0] = 0x08;
  buf[1] = 0x01;
  assert_int_equal(gi_decode(&f, buf, 2), MTCSEC_ERR_MALFORMED);
  assert_int_equal(gi_decode(&f, buf, sizeof(buf)), MTCSEC_ERR_MALFORMED);
  buf[0] = 0xff;
  buf[1] = 0xff;
  assert_int_equal(gi_decode(&f, buf, 2), MTCSEC_ERR_MALFORMED);
  /* 2048 is the largest accepted. */
  buf[0] = 0x08;
  buf[1] = 0x00;
  assert_int_equal(gi_decode(&f, buf, 2 + 2047), 0);
  assert_int_equal(gi_decode(&f, buf, 2 + 2048), 2 + 2048);
}

static void test_gi_decode_rejects_types_and_sizes(void **state) {
  uint8_t buf[64];
  gi_frame f;
  unsigned t;
  size_t n;
  (void)state;
  /* Unknown types. */
  for (t = 0; t < 256; t++) {
    if (t == GI_CTX_OPEN || t == GI_CTX_RESULT || t == GI_CTX_CLOSE ||
        t == GI_UPLINK || t == GI_DOWNLINK) {
      continue;
    }
    memset(buf, 0, sizeof(buf));
    buf[1] = 5 + 1;
    buf[2] = (uint8_t)t;
    assert_int_equal(gi_decode(&f, buf, 8), MTCSEC_ERR_MALFORMED);
  }
  /* Fixed-size bodies one byte short and one byte long. */
  {
    const struct {
      uint8_t type;
      size_t len;
    } fixed[] = {{GI_CTX_OPEN, GI_CTX_OPEN_LEN},
                 {GI_CTX_RESULT, GI_CTX_RESULT_LEN},
                 {GI_CTX_CLOSE, GI_CTX_CLOSE_LEN}};
    size_t i;
    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
      size_t bl[2] = {fixed[i].len + 1, fixed[i].len - 1};
      size_t k;
      for (k = 0; k < 2; k++) {
        if (bl[k] > 64 - GI_HDR_LEN) {
          continue; /* 0 - 1 wrapped */
        }
        memset(buf, 0, sizeof(buf));
        buf[1] = (uint8_t)(GI_HDR_MIN + bl[k]);
        buf[2] = fixed[i].type;
        n = GI_HDR_LEN + bl[k];
        assert_int_equal(gi_decode(&f, buf, n), MTCSEC_ERR_MALFORMED);
        assert_int_equal(gi_encode(fixed[i].type, 1, buf + 32, bl[k], buf, 64),
                         MTCSEC_ERR_INVALID_ARGUMENT);
      }
    }
  }
}

static void test_gi_encode_nobuf_and_args(void **state) {
  uint8_t buf[GI_FRAME_MAX + 8], body[GI_BODY_MAX + 1];
  size_t cap;
  (void)state;
  memset(body, 0x11, sizeof(body));
  /* Every too-small buffer: NOBUF and nothing written. */
  for (cap = 0; cap < GI_HDR_LEN + GI_CTX_OPEN_LEN; cap++) {
    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(
      gi_encode(GI_CTX_OPEN, 1, OPEN_BODY, GI_CTX_OPEN_LEN, buf, cap),
      MTCSEC_ERR_NOBUF);
    assert_int_equal(buf[0], 0xee);
  }
  assert_int_equal(
    gi_encode(GI_UPLINK, 1, body, GI_BODY_MAX + 1, buf, sizeof(buf)),
    MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(gi_encode(0x42, 1, body, 3, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(gi_encode(GI_UPLINK, 1, NULL, 3, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(gi_encode(GI_UPLINK, 1, body, 3, NULL, 10),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(gi_decode(NULL, buf, 10), MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(gi_decode((gi_frame *)buf, NULL, 3),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  {
    gi_frame f;
    assert_int_equal(gi_decode(&f, NULL, 0), 0);
  }
}

static void test_gi_stream_of_frames(void **state) {
  uint8_t buf[256], st = 0;
  size_t off = 0, total = 0;
  gi_frame f;
  mtcsec_ssize n;
  int count = 0;
  (void)state;
  n = gi_encode(GI_CTX_OPEN, 1, OPEN_BODY, sizeof(OPEN_BODY), buf, sizeof(buf));
  total += (size_t)n;
  n = gi_encode(GI_CTX_RESULT, 1, &st, 1, buf + total, sizeof(buf) - total);
  total += (size_t)n;
  n = gi_encode(GI_CTX_CLOSE, 1, NULL, 0, buf + total, sizeof(buf) - total);
  total += (size_t)n;
  while ((n = gi_decode(&f, buf + off, total - off)) > 0) {
    off += (size_t)n;
    count++;
  }
  assert_int_equal(n, 0);
  assert_int_equal(count, 3);
  assert_int_equal(off, total);
  assert_int_equal(f.type, GI_CTX_CLOSE);
}

static void test_gi_names(void **state) {
  (void)state;
  assert_string_equal(gi_type_name(GI_UPLINK), "UPLINK");
  assert_string_equal(gi_type_name(0x99), "UNKNOWN");
  assert_string_equal(gi_status_name(GI_STATUS_OK), "ok");
  assert_string_equal(gi_status_name(GI_STATUS_HP_FAILED), "home_proxy_failed");
  /* Section 3: 0x06 and 0x07 (re-open hole, cellular_db). */
  assert_int_equal(GI_STATUS_STALE_RAND, 0x06);
  assert_int_equal(GI_STATUS_INTERNAL, 0x07);
  assert_string_equal(gi_status_name(GI_STATUS_STALE_RAND), "stale_rand");
  assert_string_equal(gi_status_name(GI_STATUS_INTERNAL), "internal");
  assert_string_equal(gi_status_name(0x08), "unknown");
  assert_string_equal(gi_status_name(0x77), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_gi_roundtrip_every_type),
    cmocka_unit_test(test_gi_encode_big_endian),
    cmocka_unit_test(test_gi_decode_rejects_lengths),
    cmocka_unit_test(test_gi_decode_rejects_types_and_sizes),
    cmocka_unit_test(test_gi_encode_nobuf_and_args),
    cmocka_unit_test(test_gi_stream_of_frames),
    cmocka_unit_test(test_gi_names),
  };
  return cmocka_run_group_tests_name("cellserver.gi", tests, NULL, NULL);
}
