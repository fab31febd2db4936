/* GPRS LLC (TS 44.064): CRC-24 FCS with both PM settings, and the P1 MAC-I
 * frames of CELLULAR.md. */
#include <string.h>

#include "cell_test.h"

static mtcsec_crypto g_crypto;

static int setup(void **state) {
  (void)state;
  cell_crypto(&g_crypto);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  mtcsec_crypto_openssl_del(&g_crypto);
  return 0;
}

static void test_llc_fcs_vectors(void **state) {
  cJSON *all = cell_vectors("llc_fcs.json"), *v;
  uint8_t frame[128], octets[3];
  size_t len, bit;
  uint32_t calc;
  int n = 0;

  (void)state;
  cJSON_ArrayForEach(v, all) {
    len = cell_hex(v, "frame", frame, sizeof(frame));
    assert_int_equal(len, (size_t)cell_num(v, "frame_len"));
    cell_hexn(v, "fcs_octets", octets, 3);
    assert_int_equal(mtcsec_llc_fcs_coverage(frame, len),
                     cell_num(v, "fcs_covered_octets"));
    assert_int_equal(mtcsec_llc_fcs_verify(frame, len, &calc), 0);
    assert_true(calc == cell_hexnum(v, "fcs_value"));
    assert_true(mtcsec_llc_crc24(frame, len - 3) == calc);
    assert_memory_equal(frame + len - 3, octets, 3); /* LSB first */
    /* Every single-bit corruption, FCS included, is detected. */
    for (bit = 0; bit < 8 * len; bit++) {
      frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
      assert_int_not_equal(mtcsec_llc_fcs_verify(frame, len, NULL), 0);
      frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* A corrupted FCS is a check-value verdict, not a framing error. */
    frame[len - 1] ^= 0x01;
    assert_int_equal(mtcsec_llc_fcs_verify(frame, len, NULL), MTCSEC_ERR_MIC);
    n++;
  }
  assert_int_equal(n, 2);
  cJSON_Delete(all);
}

/* The Activate PDP Context Request (with its PCO) of pco.json in a UI frame,
 * SAPI 1, N(U) 0, PM = 1: the bytes TSHARK.md shows tshark 4.0.17 accepting
 * with "FCS: 0xf21cae (correct)". */
static const char *DTAP = "0a4105030c00001f10000000000000000201212803026162"
                          "27148080211001000010810600000000830600000000";
static const char *UI_PM1 =
  "01c0010a4105030c00001f1000000000000000020121280302616227148080211001"
  "000010810600000000830600000000ae1cf2";
/* PM = 0 frames, SAPI 3, N(U) 5, information 00 01 02 ... (40 and 2
 * octets); FCS from an independent Python CRC-24 (header + first 4 info
 * octets), confirmed by tshark in cellular.tshark_llc. */
static const char *UI_PM0_40 =
  "03c014000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
  "212223242526271a94f5";
static const char *UI_PM0_2 = "03c0140001ae14f1";

static void test_llc_ui_encode_pm1(void **state) {
  uint8_t info[64], want[128], out[128];
  mtcsec_llc_ui ui, dec;
  size_t ilen, wlen;
  mtcsec_ssize n;

  (void)state;
  ilen = cell_unhex(DTAP, info, sizeof(info));
  wlen = cell_unhex(UI_PM1, want, sizeof(want));
  memset(&ui, 0, sizeof(ui));
  ui.sapi = MTCSEC_LLC_SAPI_LLGMM;
  ui.pm = 1;
  ui.info = info;
  ui.infolen = ilen;
  n = mtcsec_llc_ui_encode_fcs(&ui, out, sizeof(out));
  assert_int_equal(n, (mtcsec_ssize)wlen);
  assert_memory_equal(out, want, wlen);
  assert_int_equal(mtcsec_llc_ui_decode_fcs(&dec, out, (size_t)n), 0);
  assert_int_equal(dec.sapi, 1);
  assert_int_equal(dec.nu, 0);
  assert_int_equal(dec.pm, 1);
  assert_int_equal(dec.infolen, ilen);
  assert_ptr_equal(dec.info, out + 3);
  /* PM = 1: the FCS covers the whole information field. */
  out[n - 4] ^= 0x01;
  assert_int_equal(mtcsec_llc_ui_decode_fcs(&dec, out, (size_t)n),
                   MTCSEC_ERR_MIC);
  assert_int_equal(mtcsec_llc_ui_encode_fcs(&ui, out, wlen - 1),
                   MTCSEC_ERR_NOBUF);
}

static void test_llc_ui_encode_pm0(void **state) {
  uint8_t info[40], want[64], out[64];
  mtcsec_llc_ui ui, dec;
  size_t i, wlen;
  mtcsec_ssize n;

  (void)state;
  for (i = 0; i < sizeof(info); i++) {
    info[i] = (uint8_t)i;
  }
  memset(&ui, 0, sizeof(ui));
  ui.sapi = MTCSEC_LLC_SAPI_LL3;
  ui.nu = 5;
  ui.pm = 0;
  ui.info = info;
  ui.infolen = 40;
  wlen = cell_unhex(UI_PM0_40, want, sizeof(want));
  n = mtcsec_llc_ui_encode_fcs(&ui, out, sizeof(out));
  assert_int_equal(n, (mtcsec_ssize)wlen);
  assert_memory_equal(out, want, wlen);
  assert_int_equal(mtcsec_llc_fcs_coverage(out, (size_t)n), 7);
  /* PM = 0: octets past the first N202 = 4 are not covered... */
  out[3 + 4] ^= 0xff;
  out[3 + 39] ^= 0x01;
  assert_int_equal(mtcsec_llc_ui_decode_fcs(&dec, out, (size_t)n), 0);
  assert_int_equal(dec.nu, 5);
  assert_int_equal(dec.pm, 0);
  /* ...but the header and the first four are. */
  for (i = 0; i < 7 * 8; i++) {
    out[i / 8] ^= (uint8_t)(1u << (i % 8));
    assert_int_not_equal(mtcsec_llc_ui_decode_fcs(&dec, out, (size_t)n), 0);
    out[i / 8] ^= (uint8_t)(1u << (i % 8));
  }

  /* Shorter than N202: the whole information field. */
  ui.infolen = 2;
  wlen = cell_unhex(UI_PM0_2, want, sizeof(want));
  n = mtcsec_llc_ui_encode_fcs(&ui, out, sizeof(out));
  assert_int_equal(n, (mtcsec_ssize)wlen);
  assert_memory_equal(out, want, wlen);
  assert_int_equal(mtcsec_llc_fcs_coverage(out, (size_t)n), 5);
}

static void test_llc_ui_fields(void **state) {
  uint8_t out[16], info[1] = {0x42};
  mtcsec_llc_ui ui, dec;
  mtcsec_ssize n;
  static const uint8_t sapis[] = {1, 2, 3, 5, 7, 8, 9, 11};
  size_t i;

  (void)state;
  memset(&ui, 0, sizeof(ui));
  ui.info = info;
  ui.infolen = 1;
  ui.cr = 1;
  ui.e = 1;
  ui.pm = 1;
  ui.nu = MTCSEC_LLC_NU_MAX;
  for (i = 0; i < sizeof(sapis); i++) {
    ui.sapi = sapis[i];
    n = mtcsec_llc_ui_encode_fcs(&ui, out, sizeof(out));
    assert_int_equal(n, 7);
    assert_int_equal(mtcsec_llc_ui_decode_fcs(&dec, out, (size_t)n), 0);
    assert_int_equal(dec.sapi, sapis[i]);
    assert_int_equal(dec.cr, 1);
    assert_int_equal(dec.e, 1);
    assert_int_equal(dec.pm, 1);
    assert_int_equal(dec.nu, MTCSEC_LLC_NU_MAX);
  }
  /* Reserved SAPIs, N(U) > 511, bits > 1 are refused. */
  ui.sapi = 4;
  assert_int_equal(mtcsec_llc_ui_encode_fcs(&ui, out, sizeof(out)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  ui.sapi = 1;
  ui.nu = 512;
  assert_int_equal(mtcsec_llc_ui_encode_fcs(&ui, out, sizeof(out)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  ui.nu = 0;
  ui.pm = 2;
  assert_int_equal(mtcsec_llc_ui_encode_fcs(&ui, out, sizeof(out)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  /* A frame with a reserved SAPI or PD = 1 is invalid (6.2.1, 6.2.3). */
  ui.pm = 1;
  n = mtcsec_llc_ui_encode_fcs(&ui, out, sizeof(out));
  out[0] = (uint8_t)((out[0] & 0xf0) | 0x0f);
  assert_int_equal(mtcsec_llc_ui_decode_fcs(&dec, out, (size_t)n),
                   MTCSEC_ERR_MALFORMED);
  out[0] = 0x81;
  assert_int_equal(mtcsec_llc_ui_decode_fcs(&dec, out, (size_t)n),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(mtcsec_llc_fcs_verify(out, (size_t)n, NULL),
                   MTCSEC_ERR_MALFORMED);
}

static void test_llc_truncated_rejected(void **state) {
  uint8_t frame[128], key[16] = {1}, info[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  mtcsec_llc_ui ui, dec;
  mtcsec_ssize n;
  size_t len;

  (void)state;
  /* The U frames of llc_fcs.json are not UI frames. */
  len = cell_unhex("41fb01000e0064110516019066b328", frame, sizeof(frame));
  assert_int_equal(mtcsec_llc_ui_decode_fcs(&dec, frame, len),
                   MTCSEC_ERR_MALFORMED);
  /* Every prefix of a valid frame is refused, never read past. */
  len = cell_unhex(UI_PM1, frame, sizeof(frame));
  for (; len > 0; len--) {
    assert_int_not_equal(mtcsec_llc_ui_decode_fcs(&dec, frame, len - 1), 0);
  }
  assert_int_equal(mtcsec_llc_ui_decode_fcs(&dec, NULL, 0),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(mtcsec_llc_fcs_coverage(frame, 4), MTCSEC_ERR_MALFORMED);

  memset(&ui, 0, sizeof(ui));
  ui.sapi = 3;
  ui.info = info;
  ui.infolen = sizeof(info);
  n = mtcsec_llc_ui_encode_mac(&g_crypto, key, 0, 0, &ui, frame, sizeof(frame));
  assert_int_equal(n, 3 + 8 + 4);
  for (len = (size_t)n; len > 0; len--) {
    assert_int_not_equal(
      mtcsec_llc_ui_decode_mac(&g_crypto, key, 0, 0, &dec, frame, len - 1), 0);
  }
  /* Shorter than header + MAC-I is malformed, not a MIC failure. */
  assert_int_equal(
    mtcsec_llc_ui_decode_mac(&g_crypto, key, 0, 0, &dec, frame, 6),
    MTCSEC_ERR_MALFORMED);
}

static void test_llc_maci_round_trip(void **state) {
  uint8_t ik[16], info[100], frame[128], mac[4];
  mtcsec_llc_ui ui, dec;
  mtcsec_ssize n;
  size_t i;

  (void)state;
  cell_unhex("f769bcd751044604127672711c6d3441", ik, 16);
  for (i = 0; i < sizeof(info); i++) {
    info[i] = (uint8_t)(i * 7);
  }
  memset(&ui, 0, sizeof(ui));
  ui.sapi = MTCSEC_LLC_SAPI_LL3;
  ui.nu = 300;
  ui.pm = 0; /* the MAC covers everything whatever PM says */
  ui.info = info;
  ui.infolen = sizeof(info);
  n = mtcsec_llc_ui_encode_mac(&g_crypto, ik, 7, MTCSEC_3GPP_UPLINK, &ui, frame,
                               sizeof(frame));
  assert_int_equal(n, 3 + 100 + 4);
  /* MAC-I = first 4 bytes of 128-EIA2(IK, COUNT = 7 * 512 + 300,
   * BEARER = SAPI, DIRECTION = 0, address || control || information). */
  assert_int_equal(
    mtcsec_eia2(&g_crypto, ik, 7 * 512 + 300, 3, 0, frame, 8 * 103, mac), 0);
  assert_memory_equal(frame + 103, mac, 4);
  assert_true(mtcsec_llc_count(7, 300) == 7 * 512 + 300);

  memset(&dec, 0, sizeof(dec));
  assert_int_equal(mtcsec_llc_ui_decode_mac(&g_crypto, ik, 7,
                                            MTCSEC_3GPP_UPLINK, &dec, frame,
                                            (size_t)n),
                   0);
  assert_int_equal(dec.sapi, 3);
  assert_int_equal(dec.nu, 300);
  assert_int_equal(dec.pm, 0);
  assert_int_equal(dec.infolen, 100);
  assert_memory_equal(dec.info, info, 100);

  /* Wrong overflow (COUNT), direction or key: rejected. */
  assert_int_equal(mtcsec_llc_ui_decode_mac(&g_crypto, ik, 8,
                                            MTCSEC_3GPP_UPLINK, &dec, frame,
                                            (size_t)n),
                   MTCSEC_ERR_MIC);
  assert_int_equal(mtcsec_llc_ui_decode_mac(&g_crypto, ik, 7,
                                            MTCSEC_3GPP_DOWNLINK, &dec, frame,
                                            (size_t)n),
                   MTCSEC_ERR_MIC);
  ik[0] ^= 1;
  assert_int_equal(mtcsec_llc_ui_decode_mac(&g_crypto, ik, 7,
                                            MTCSEC_3GPP_UPLINK, &dec, frame,
                                            (size_t)n),
                   MTCSEC_ERR_MIC);
  ik[0] ^= 1;
  /* A MAC-I frame is not a valid FCS frame (and vice versa, in general). */
  assert_int_not_equal(mtcsec_llc_ui_decode_fcs(&dec, frame, (size_t)n), 0);
}

static void test_llc_maci_bit_flips(void **state) {
  uint8_t ik[16] = {0x2b, 0xd6, 0x45, 0x9f}, info[20] = {0x0a, 0x41};
  uint8_t frame[64];
  mtcsec_llc_ui ui, dec;
  mtcsec_ssize n;
  size_t bit;
  int rv;

  (void)state;
  memset(&ui, 0, sizeof(ui));
  ui.sapi = MTCSEC_LLC_SAPI_LLGMM;
  ui.nu = 17;
  ui.pm = 1;
  ui.info = info;
  ui.infolen = sizeof(info);
  n = mtcsec_llc_ui_encode_mac(&g_crypto, ik, 0, MTCSEC_3GPP_DOWNLINK, &ui,
                               frame, sizeof(frame));
  assert_int_equal(n, 27);
  for (bit = 0; bit < 8 * (size_t)n; bit++) {
    frame[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
    memset(&dec, 0x5a, sizeof(dec));
    rv = mtcsec_llc_ui_decode_mac(&g_crypto, ik, 0, MTCSEC_3GPP_DOWNLINK, &dec,
                                  frame, (size_t)n);
    /* Header bits may make the frame malformed (PD, SAPI, format); every
     * other flip is a MAC-I failure.  Never accepted, ui never written. */
    assert_true(rv == MTCSEC_ERR_MIC || rv == MTCSEC_ERR_MALFORMED);
    if (bit >= 24) {
      assert_int_equal(rv, MTCSEC_ERR_MIC);
    }
    assert_int_equal(dec.sapi, 0x5a);
    frame[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
  }
  assert_int_equal(mtcsec_llc_ui_decode_mac(&g_crypto, ik, 0,
                                            MTCSEC_3GPP_DOWNLINK, &dec, frame,
                                            (size_t)n),
                   0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_llc_fcs_vectors),
    cmocka_unit_test(test_llc_ui_encode_pm1),
    cmocka_unit_test(test_llc_ui_encode_pm0),
    cmocka_unit_test(test_llc_ui_fields),
    cmocka_unit_test(test_llc_truncated_rejected),
    cmocka_unit_test(test_llc_maci_round_trip),
    cmocka_unit_test(test_llc_maci_bit_flips),
  };
  return cmocka_run_group_tests_name("cellular.llc", tests, setup, teardown);
}
