/* Protocol configuration options (TS 24.008 10.5.6.3) and mtcsec's RAND
 * container 0xFF00 (CELLULAR.md, P5). */
#include <string.h>

#include "cell_test.h"

static mtcsec_pco_framing framing_of(const uint8_t *b) {
  return b[0] == MTCSEC_PCO_IEI ? MTCSEC_PCO_NAS : MTCSEC_PCO_GTP;
}

static void test_pco_vectors(void **state) {
  cJSON *all = cell_vectors("pco.json"), *v, *dec, *units, *u;
  uint8_t enc[300], out[300], contents[300];
  mtcsec_pco pco;
  mtcsec_pco_framing f;
  size_t len, clen, i;
  int n = 0;

  (void)state;
  cJSON_ArrayForEach(v, all) {
    if (cell_str(v, "encoded") == NULL) {
      continue; /* the _format entry */
    }
    len = cell_hex(v, "encoded", enc, sizeof(enc));
    f = framing_of(enc);
    assert_int_equal(mtcsec_pco_decode(&pco, f, enc, len), (mtcsec_ssize)len);
    dec = cJSON_GetObjectItemCaseSensitive(v, "decoded");
    assert_int_equal(pco.config_protocol, 0);
    units = cJSON_GetObjectItemCaseSensitive(dec, "units");
    assert_int_equal(pco.nunits, (size_t)cJSON_GetArraySize(units));
    i = 0;
    cJSON_ArrayForEach(u, units) {
      assert_true(pco.units[i].id == cell_hexnum(u, "id"));
      assert_int_equal(pco.units[i].len, cell_num(u, "length"));
      if (cell_str(u, "contents") != NULL) {
        clen = cell_hex(u, "contents", contents, sizeof(contents));
        assert_int_equal(clen, pco.units[i].len);
        assert_memory_equal(pco.units[i].contents, contents, clen);
      }
      i++;
    }
    /* Re-encoding gives the same bytes. */
    assert_int_equal(mtcsec_pco_encode(&pco, f, out, sizeof(out)),
                     (mtcsec_ssize)len);
    assert_memory_equal(out, enc, len);
    /* Bare value = the same minus the IE header. */
    assert_int_equal(mtcsec_pco_decode(&pco, MTCSEC_PCO_BARE,
                                       enc + (f == MTCSEC_PCO_NAS ? 2 : 3),
                                       len - (f == MTCSEC_PCO_NAS ? 2 : 3)),
                     (mtcsec_ssize)(len - (f == MTCSEC_PCO_NAS ? 2 : 3)));
    n++;
  }
  assert_int_equal(n, 4);
  cJSON_Delete(all);
}

static void test_pco_constructed_vector_layout(void **state) {
  /* The CONSTRUCTED entry of pco.json predates the version octet that
   * CELLULAR.md fixes (PLMN || 0x01 || RAND): its container is PLMN || RAND
   * (19 octets).  We must not mistake it for ours. */
  uint8_t enc[64], plmn[3], rnd[16];
  mtcsec_pco pco;
  size_t len;

  (void)state;
  len = cell_unhex("84001a80000d00ff001300f11023553cbe9637a89d218ae64dae47bf35",
                   enc, sizeof(enc));
  assert_int_equal(mtcsec_pco_decode(&pco, MTCSEC_PCO_GTP, enc, len),
                   (mtcsec_ssize)len);
  assert_int_equal(pco.nunits, 2);
  assert_int_equal(pco.units[1].id, MTCSEC_PCO_CID_MTCSEC);
  assert_int_equal(
    mtcsec_pco_rand_decode(pco.units[1].contents, pco.units[1].len, plmn, rnd),
    MTCSEC_ERR_UNSUPPORTED);
  assert_int_equal(mtcsec_pco_find_rand(&pco, NULL, plmn, rnd),
                   MTCSEC_ERR_NOT_FOUND);
}

static void test_pco_rand_round_trip(void **state) {
  static const mtcsec_plmn home = {1, 1, 2};
  static const mtcsec_plmn other = {262, 1, 2};
  uint8_t plmn[3], plmn2[3], rnd[16], c[20], oc[20], buf[300], rnd2[16];
  uint8_t got_plmn[3];
  uint8_t want[64];
  mtcsec_pco pco, dec;
  mtcsec_ssize n;
  size_t wlen;

  (void)state;
  cell_unhex("23553cbe9637a89d218ae64dae47bf35", rnd, 16);
  assert_int_equal(mtcsec_plmn_encode(&home, plmn), 0);
  assert_int_equal(mtcsec_pco_rand_encode(plmn, rnd, c), 0);

  /* 0x000d (DNS request) + 0xff00 ours, in a GTPv1-C IE. */
  memset(&pco, 0, sizeof(pco));
  pco.nunits = 2;
  pco.units[0].id = 0x000d;
  pco.units[1].id = MTCSEC_PCO_CID_MTCSEC;
  pco.units[1].len = sizeof(c);
  pco.units[1].contents = c;
  n = mtcsec_pco_encode(&pco, MTCSEC_PCO_GTP, buf, sizeof(buf));
  wlen = cell_unhex("84001b80000d00ff001400f1100123553cbe9637a89d218ae64dae47"
                    "bf35",
                    want, sizeof(want));
  assert_int_equal(n, (mtcsec_ssize)wlen);
  assert_memory_equal(buf, want, wlen);
  assert_int_equal(mtcsec_pco_decode(&dec, MTCSEC_PCO_GTP, buf, (size_t)n), n);
  assert_int_equal(mtcsec_pco_find_rand(&dec, plmn, got_plmn, rnd2), 0);
  assert_memory_equal(rnd2, rnd, 16);
  assert_memory_equal(got_plmn, plmn, 3);

  /* Another operator's 0xff00 container first: skipped by PLMN. */
  assert_int_equal(mtcsec_plmn_encode(&other, plmn2), 0);
  memcpy(oc, c, sizeof(oc));
  memcpy(oc, plmn2, 3);
  oc[19] ^= 0xff;
  pco.nunits = 3;
  pco.units[2] = pco.units[1];
  pco.units[1].contents = oc;
  n = mtcsec_pco_encode(&pco, MTCSEC_PCO_NAS, buf, sizeof(buf));
  assert_true(n > 0);
  assert_int_equal(buf[0], 0x27);
  assert_int_equal(buf[1], n - 2);
  assert_int_equal(mtcsec_pco_decode(&dec, MTCSEC_PCO_NAS, buf, (size_t)n), n);
  assert_int_equal(mtcsec_pco_find_rand(&dec, plmn, NULL, rnd2), 0);
  assert_memory_equal(rnd2, rnd, 16);
  assert_int_equal(mtcsec_pco_find_rand(&dec, NULL, got_plmn, rnd2), 0);
  assert_memory_equal(got_plmn, plmn2, 3); /* first one without a filter */
  assert_int_equal(
    mtcsec_pco_find_rand(&dec, (const uint8_t *)"\x99\xf9\x99", NULL, rnd2),
    MTCSEC_ERR_NOT_FOUND);
}

static void test_pco_rand_container_checks(void **state) {
  uint8_t c[21], plmn[3], rnd[16];

  (void)state;
  memset(c, 0, sizeof(c));
  c[0] = 0x00;
  c[1] = 0xf1;
  c[2] = 0x10;
  c[3] = 0x01;
  assert_int_equal(mtcsec_pco_rand_decode(c, 20, plmn, rnd), 0);
  assert_int_equal(mtcsec_pco_rand_decode(c, 19, plmn, rnd),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(mtcsec_pco_rand_decode(c, 21, plmn, rnd),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(mtcsec_pco_rand_decode(c, 3, plmn, rnd),
                   MTCSEC_ERR_MALFORMED);
  c[3] = 0x02;
  assert_int_equal(mtcsec_pco_rand_decode(c, 20, plmn, rnd),
                   MTCSEC_ERR_UNSUPPORTED);
  c[3] = 0x01;
  c[0] = 0x0a; /* MCC digit 0xA */
  assert_int_equal(mtcsec_pco_rand_decode(c, 20, plmn, rnd),
                   MTCSEC_ERR_MALFORMED);
  assert_int_equal(mtcsec_pco_rand_encode(c, rnd, c),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_pco_truncated_rejected(void **state) {
  cJSON *all = cell_vectors("pco.json"), *v;
  uint8_t enc[300];
  mtcsec_pco pco;
  size_t len, cut, h;
  mtcsec_ssize r;

  (void)state;
  cJSON_ArrayForEach(v, all) {
    if (cell_str(v, "encoded") == NULL) {
      continue;
    }
    len = cell_hex(v, "encoded", enc, sizeof(enc));
    /* Every truncation of a NAS/GTP IE is malformed: the length field
     * points past the end. */
    for (cut = 0; cut < len; cut++) {
      memset(&pco, 0x5a, sizeof(pco));
      r = mtcsec_pco_decode(&pco, framing_of(enc), enc, cut);
      assert_int_equal(r, MTCSEC_ERR_MALFORMED);
      assert_int_equal(pco.config_protocol, 0x5a); /* untouched */
    }
    /* A bare value cut inside a unit is malformed too (cut = 1 is just
     * octet 3: a valid empty PCO). */
    h = framing_of(enc) == MTCSEC_PCO_NAS ? 2 : 3;
    for (cut = 2; cut < len - h; cut++) {
      r = mtcsec_pco_decode(&pco, MTCSEC_PCO_BARE, enc + h, cut);
      assert_true(r == MTCSEC_ERR_MALFORMED || r == (mtcsec_ssize)cut);
    }
  }
  cJSON_Delete(all);
}

static void test_pco_malformed(void **state) {
  uint8_t b[300];
  mtcsec_pco pco;

  (void)state;
  /* Unit length runs past the IE. */
  memcpy(b, "\x27\x05\x80\x00\x0d\x03\x01", 7);
  assert_int_equal(mtcsec_pco_decode(&pco, MTCSEC_PCO_NAS, b, 7),
                   MTCSEC_ERR_MALFORMED);
  /* ID without length octet. */
  memcpy(b, "\x27\x03\x80\x00\x0d", 5);
  assert_int_equal(mtcsec_pco_decode(&pco, MTCSEC_PCO_NAS, b, 5),
                   MTCSEC_ERR_MALFORMED);
  /* Empty value, wrong IEI, GTP length over 253. */
  memcpy(b, "\x27\x00", 2);
  assert_int_equal(mtcsec_pco_decode(&pco, MTCSEC_PCO_NAS, b, 2),
                   MTCSEC_ERR_MALFORMED);
  memcpy(b, "\x28\x01\x80", 3);
  assert_int_equal(mtcsec_pco_decode(&pco, MTCSEC_PCO_NAS, b, 3),
                   MTCSEC_ERR_MALFORMED);
  memset(b, 0, sizeof(b));
  b[0] = 0x84;
  b[1] = 0x00;
  b[2] = 254;
  b[3] = 0x80;
  assert_int_equal(mtcsec_pco_decode(&pco, MTCSEC_PCO_GTP, b, 257),
                   MTCSEC_ERR_MALFORMED);
  /* Trailing bytes after the IE belong to the next IE. */
  memcpy(b, "\x27\x04\x80\x00\x0d\x00\x85\x00", 8);
  assert_int_equal(mtcsec_pco_decode(&pco, MTCSEC_PCO_NAS, b, 8), 6);
  assert_int_equal(pco.nunits, 1);
  assert_null(pco.units[0].contents);
  /* Encoder limits: value over 253 bytes. */
  memset(&pco, 0, sizeof(pco));
  pco.nunits = 2;
  pco.units[0].len = 200;
  pco.units[0].contents = b;
  pco.units[1].len = 50;
  pco.units[1].contents = b;
  assert_int_equal(mtcsec_pco_encode(&pco, MTCSEC_PCO_NAS, b + 100, 200),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  pco.units[1].len = 46; /* 1 + 203 + 49 = 253 */
  assert_int_equal(mtcsec_pco_encode(&pco, MTCSEC_PCO_NAS, b, 254),
                   MTCSEC_ERR_NOBUF);
  pco.units[0].contents = NULL;
  assert_int_equal(mtcsec_pco_encode(&pco, MTCSEC_PCO_NAS, b, sizeof(b)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pco_vectors),
    cmocka_unit_test(test_pco_constructed_vector_layout),
    cmocka_unit_test(test_pco_rand_round_trip),
    cmocka_unit_test(test_pco_rand_container_checks),
    cmocka_unit_test(test_pco_truncated_rejected),
    cmocka_unit_test(test_pco_malformed),
  };
  return cmocka_run_group_tests_name("cellular.pco", tests, NULL, NULL);
}
