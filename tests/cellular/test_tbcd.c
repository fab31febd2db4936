/* IMSI <-> TBCD (TS 29.002) and PLMN identity (TS 24.008 10.5.1.13). */
#include <string.h>

#include "cell_test.h"

static void test_tbcd_imsi_known(void **state) {
  uint8_t t[8], want[8];
  char s[16];

  (void)state;
  /* The IMSI IE of osmo-sgsn's gtphub test message (TSHARK.md). */
  assert_int_equal(mtcsec_imsi_to_tbcd("240010123456789", 15, t), 0);
  cell_unhex("42000121436587f9", want, 8);
  assert_memory_equal(t, want, 8);
  assert_int_equal(mtcsec_imsi_from_tbcd(t, s, sizeof(s)), 15);
  assert_string_equal(s, "240010123456789");
  /* Shorter IMSIs are padded with 0xF nibbles. */
  assert_int_equal(mtcsec_imsi_to_tbcd("26201123456", 11, t), 0);
  cell_unhex("6202113254f6ffff", want, 8);
  assert_memory_equal(t, want, 8);
  assert_int_equal(mtcsec_imsi_from_tbcd(t, s, sizeof(s)), 11);
  assert_string_equal(s, "26201123456");
  assert_int_equal(mtcsec_imsi_from_tbcd(t, s, 11), MTCSEC_ERR_NOBUF);
}

static void test_tbcd_imsi_invalid(void **state) {
  uint8_t t[8];
  char s[16];

  (void)state;
  assert_int_equal(mtcsec_imsi_to_tbcd("12345", 5, t),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_imsi_to_tbcd("1234567890123456", 16, t),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(mtcsec_imsi_to_tbcd("00101x000000001", 15, t),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  /* Non-decimal nibble, digits after the filler, too few digits. */
  cell_unhex("42000121436587fa", t, 8);
  assert_int_equal(mtcsec_imsi_from_tbcd(t, s, sizeof(s)),
                   MTCSEC_ERR_MALFORMED);
  cell_unhex("4200f121436587f9", t, 8);
  assert_int_equal(mtcsec_imsi_from_tbcd(t, s, sizeof(s)),
                   MTCSEC_ERR_MALFORMED);
  cell_unhex("4200f1ffffffffff", t, 8);
  assert_int_equal(mtcsec_imsi_from_tbcd(t, s, sizeof(s)),
                   MTCSEC_ERR_MALFORMED);
  /* 16 digits (no filler) is not an IMSI, whatever the buffer size. */
  cell_unhex("1032547698103254", t, 8);
  assert_int_equal(mtcsec_imsi_from_tbcd(t, s, sizeof(s)),
                   MTCSEC_ERR_MALFORMED);
}

static void test_tbcd_plmn(void **state) {
  static const struct {
    mtcsec_plmn p;
    const char *hex;
  } cases[] = {
    {{1, 1, 2}, "00f110"}, /* test network, pco.json / kdf_33220.json */
    {{310, 260, 3}, "130062"}, {{262, 1, 2}, "62f210"},
    {{999, 99, 2}, "99f999"},  {{1, 1, 3}, "001100"},
  };
  uint8_t b[3], want[3];
  mtcsec_plmn p;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    cell_unhex(cases[i].hex, want, 3);
    assert_int_equal(mtcsec_plmn_encode(&cases[i].p, b), 0);
    assert_memory_equal(b, want, 3);
    assert_int_equal(mtcsec_plmn_decode(b, &p), 0);
    assert_int_equal(p.mcc, cases[i].p.mcc);
    assert_int_equal(p.mnc, cases[i].p.mnc);
    assert_int_equal(p.mnc_digits, cases[i].p.mnc_digits);
  }
  p.mcc = 1000;
  p.mnc = 1;
  p.mnc_digits = 2;
  assert_int_equal(mtcsec_plmn_encode(&p, b), MTCSEC_ERR_INVALID_ARGUMENT);
  p.mcc = 1;
  p.mnc = 100;
  assert_int_equal(mtcsec_plmn_encode(&p, b), MTCSEC_ERR_INVALID_ARGUMENT);
  p.mnc_digits = 4;
  assert_int_equal(mtcsec_plmn_encode(&p, b), MTCSEC_ERR_INVALID_ARGUMENT);
  cell_unhex("0af110", b, 3);
  assert_int_equal(mtcsec_plmn_decode(b, &p), MTCSEC_ERR_MALFORMED);
  cell_unhex("00e110", b, 3);
  assert_int_equal(mtcsec_plmn_decode(b, &p), MTCSEC_ERR_MALFORMED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tbcd_imsi_known),
    cmocka_unit_test(test_tbcd_imsi_invalid),
    cmocka_unit_test(test_tbcd_plmn),
  };
  return cmocka_run_group_tests_name("cellular.tbcd", tests, NULL, NULL);
}
