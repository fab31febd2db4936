/*
 * apps/common/cellsim.c: the radio, SM and GTP codecs of
 * docs/CELLULAR-SYSTEM.md (round trips, every truncation, every extension,
 * field checks) and the LLC COUNT bookkeeping of section 1.1 (N(U) wrap at
 * 512, lost frames, replays, bad MAC-I or FCS leaving the counters as they
 * were, exhaustion at 2^32), plus the raw GSUP facts the SGSN reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <mtcsec/cellular.h>
#include <mtcsec/crypto.h>

#include "cellsim.h"

static mtcsec_crypto g_crypto;
static const uint8_t IK[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                               0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

static int setup(void **state) {
  (void)state;
  return mtcsec_crypto_openssl_new(&g_crypto) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mtcsec_crypto_openssl_del(&g_crypto);
  return 0;
}

static void fill(uint8_t *p, size_t n, uint8_t seed) {
  size_t i;
  for (i = 0; i < n; i++) {
    p[i] = (uint8_t)(seed + 7 * i);
  }
}

/* ---------------------------------------------------------------- radio */

/* Every valid radio message type once. */
static size_t radio_samples(cellsim_radio *m, uint8_t *llc) {
  size_t n = 0;
  memset(m, 0, 8 * sizeof(*m));
  m[n].type = CELLSIM_ATTACH_REQUEST;
  m[n].tlli = 0xc0000001u;
  fill(m[n].imsi, sizeof(m[n].imsi), 1);
  n++;
  m[n].type = CELLSIM_AUTH_REQUEST;
  m[n].tlli = 0xc0000002u;
  fill(m[n].rand, 16, 2);
  fill(m[n].autn, 16, 3);
  n++;
  m[n].type = CELLSIM_AUTH_RESPONSE;
  m[n].tlli = 0xffffffffu;
  m[n].reslen = 8;
  fill(m[n].res, 8, 4);
  n++;
  m[n].type = CELLSIM_AUTH_RESPONSE;
  m[n].reslen = 16;
  fill(m[n].res, 16, 5);
  n++;
  m[n].type = CELLSIM_AUTH_FAILURE;
  m[n].cause = CELLSIM_CAUSE_MAC_FAILURE;
  n++;
  m[n].type = CELLSIM_AUTH_FAILURE;
  m[n].cause = CELLSIM_CAUSE_SYNCH_FAILURE;
  fill(m[n].auts, 14, 6);
  n++;
  m[n].type = CELLSIM_ATTACH_ACCEPT;
  m[n].flags = CELLSIM_POLICY_INTEGRITY;
  n++;
  m[n].type = CELLSIM_LLC;
  fill(llc, 20, 8);
  m[n].llc = llc;
  m[n].llclen = 20;
  n++;
  return n;
}

static void test_radio_round_trip_and_truncation(void **state) {
  cellsim_radio in[8], out;
  uint8_t llc[20], buf[256], big[257];
  size_t n = radio_samples(in, llc), i, cut;

  (void)state;
  for (i = 0; i < n; i++) {
    mtcsec_ssize len = cellsim_radio_encode(&in[i], buf, sizeof(buf));
    assert_true(len >= CELLSIM_RADIO_HDR_LEN);
    assert_int_equal(buf[0], CELLSIM_RADIO_MAGIC);
    memset(&out, 0, sizeof(out));
    assert_int_equal(cellsim_radio_decode(&out, buf, (size_t)len), 0);
    assert_int_equal(out.type, in[i].type);
    assert_int_equal(out.tlli, in[i].tlli);
    switch (in[i].type) {
    case CELLSIM_ATTACH_REQUEST:
      assert_memory_equal(out.imsi, in[i].imsi, 8);
      assert_int_equal(len, 14);
      break;
    case CELLSIM_AUTH_REQUEST:
      assert_memory_equal(out.rand, in[i].rand, 16);
      assert_memory_equal(out.autn, in[i].autn, 16);
      assert_int_equal(len, 38);
      break;
    case CELLSIM_AUTH_RESPONSE:
      assert_int_equal(out.reslen, in[i].reslen);
      assert_memory_equal(out.res, in[i].res, in[i].reslen);
      break;
    case CELLSIM_AUTH_FAILURE:
      assert_int_equal(out.cause, in[i].cause);
      if (in[i].cause == CELLSIM_CAUSE_SYNCH_FAILURE) {
        assert_memory_equal(out.auts, in[i].auts, 14);
        assert_int_equal(len, 6 + 15);
      } else {
        assert_int_equal(len, 6 + 1);
      }
      break;
    case CELLSIM_ATTACH_ACCEPT:
      assert_int_equal(out.flags, in[i].flags);
      break;
    case CELLSIM_LLC:
      assert_int_equal(out.llclen, 20);
      assert_ptr_equal(out.llc, buf + 6); /* points into the datagram */
      break;
    default:
      break;
    }
    /* Every truncation is malformed (an LLC body shrinks until empty). */
    for (cut = 0; cut < (size_t)len; cut++) {
      int rv = cellsim_radio_decode(&out, buf, cut);
      if (in[i].type == CELLSIM_LLC && cut > CELLSIM_RADIO_HDR_LEN) {
        assert_int_equal(rv, 0);
      } else {
        assert_int_equal(rv, MTCSEC_ERR_MALFORMED);
      }
    }
    /* A trailing byte too, except for LLC whose body is the rest. */
    memcpy(big, buf, (size_t)len);
    big[len] = 0;
    assert_int_equal(cellsim_radio_decode(&out, big, (size_t)len + 1),
                     in[i].type == CELLSIM_LLC ? 0 : MTCSEC_ERR_MALFORMED);
    /* Too small a buffer: NOBUF at every size below the length. */
    for (cut = 0; cut < (size_t)len; cut++) {
      assert_int_equal(cellsim_radio_encode(&in[i], buf, cut),
                       MTCSEC_ERR_NOBUF);
    }
  }
}

static void test_radio_rejects_bad_fields(void **state) {
  cellsim_radio m, out;
  uint8_t buf[64];
  mtcsec_ssize len;

  (void)state;
  memset(&m, 0, sizeof(m));
  m.type = 0x07; /* not a type */
  assert_int_equal(cellsim_radio_encode(&m, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  m.type = CELLSIM_AUTH_RESPONSE;
  m.reslen = 3;
  assert_int_equal(cellsim_radio_encode(&m, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  m.reslen = 17;
  assert_int_equal(cellsim_radio_encode(&m, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  m.type = CELLSIM_AUTH_FAILURE;
  m.cause = 0x1a;
  assert_int_equal(cellsim_radio_encode(&m, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  m.type = CELLSIM_LLC;
  m.llc = NULL;
  m.llclen = 0;
  assert_int_equal(cellsim_radio_encode(&m, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);

  /* Decoder: magic, type, RES length, AUTH_FAILURE cause/length. */
  m.type = CELLSIM_ATTACH_ACCEPT;
  m.flags = 1;
  len = cellsim_radio_encode(&m, buf, sizeof(buf));
  assert_int_equal(len, 7);
  buf[0] = 'N';
  assert_int_equal(cellsim_radio_decode(&out, buf, 7), MTCSEC_ERR_MALFORMED);
  buf[0] = CELLSIM_RADIO_MAGIC;
  buf[1] = 0x11;
  assert_int_equal(cellsim_radio_decode(&out, buf, 7), MTCSEC_ERR_MALFORMED);
  buf[1] = CELLSIM_AUTH_RESPONSE;
  buf[6] = 0; /* RES length 0 with no RES */
  assert_int_equal(cellsim_radio_decode(&out, buf, 7), MTCSEC_ERR_MALFORMED);
  buf[1] = CELLSIM_AUTH_FAILURE;
  buf[6] = 0x15; /* synch failure without AUTS */
  assert_int_equal(cellsim_radio_decode(&out, buf, 7), MTCSEC_ERR_MALFORMED);
  buf[6] = 0x16;
  assert_int_equal(cellsim_radio_decode(&out, buf, 7), MTCSEC_ERR_MALFORMED);
  buf[6] = 0x14;
  assert_int_equal(cellsim_radio_decode(&out, buf, 7), 0);
  assert_int_equal(out.cause, 0x14);
  assert_string_equal(cellsim_radio_name(CELLSIM_LLC), "LLC");
  assert_string_equal(cellsim_radio_name(0x99), "?");
}

/* ------------------------------------------------------------------- SM */

static void test_sm_round_trip_and_truncation(void **state) {
  uint8_t pco[30], buf[300], big[301];
  cellsim_sm in[3], out;
  size_t i, cut;

  (void)state;
  fill(pco, sizeof(pco), 9);
  memset(in, 0, sizeof(in));
  in[0].ti = 0;
  in[0].type = CELLSIM_SM_ACTIVATE_REQUEST;
  in[0].nsapi = 5;
  in[0].pco = pco;
  in[0].pcolen = sizeof(pco);
  in[1].ti = 0x8;
  in[1].type = CELLSIM_SM_ACTIVATE_ACCEPT;
  in[1].nsapi = 15;
  in[2].ti = 0xe;
  in[2].type = CELLSIM_SM_ACTIVATE_REJECT;
  in[2].nsapi = 7;
  in[2].cause = CELLSIM_SM_USER_AUTH_FAILED;
  for (i = 0; i < 3; i++) {
    mtcsec_ssize len = cellsim_sm_encode(&in[i], buf, sizeof(buf));
    assert_true(len >= 3);
    assert_int_equal(buf[0] & 0x0f, CELLSIM_PD_SM);
    assert_int_equal(buf[0] >> 4, in[i].ti);
    assert_int_equal(cellsim_sm_decode(&out, buf, (size_t)len), 0);
    assert_int_equal(out.ti, in[i].ti);
    assert_int_equal(out.type, in[i].type);
    assert_int_equal(out.nsapi, in[i].nsapi);
    assert_int_equal(out.cause, in[i].cause);
    assert_int_equal(out.pcolen, in[i].pcolen);
    if (in[i].pcolen > 0) {
      assert_memory_equal(out.pco, pco, sizeof(pco));
      assert_int_equal(buf[3], MTCSEC_PCO_IEI);
    }
    for (cut = 0; cut < (size_t)len; cut++) {
      assert_int_equal(cellsim_sm_decode(&out, buf, cut), MTCSEC_ERR_MALFORMED);
      assert_int_equal(cellsim_sm_encode(&in[i], buf, cut), MTCSEC_ERR_NOBUF);
    }
    len = cellsim_sm_encode(&in[i], buf, sizeof(buf));
    memcpy(big, buf, (size_t)len);
    big[len] = 0x27;
    assert_int_equal(cellsim_sm_decode(&out, big, (size_t)len + 1),
                     MTCSEC_ERR_MALFORMED);
  }
}

static void test_sm_rejects_bad_fields(void **state) {
  uint8_t pco[4] = {0x80, 0, 0, 0}, buf[64];
  cellsim_sm m, out;
  mtcsec_ssize len;

  (void)state;
  memset(&m, 0, sizeof(m));
  m.type = CELLSIM_SM_ACTIVATE_REQUEST;
  m.nsapi = 4; /* NSAPI 0..4 are reserved */
  m.pco = pco;
  m.pcolen = sizeof(pco);
  assert_int_equal(cellsim_sm_encode(&m, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  m.nsapi = 5;
  m.ti = 7; /* TI value 7 announces an extension octet */
  assert_int_equal(cellsim_sm_encode(&m, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  m.ti = 0;
  m.pcolen = 0;
  assert_int_equal(cellsim_sm_encode(&m, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  m.pcolen = sizeof(pco);
  len = cellsim_sm_encode(&m, buf, sizeof(buf));
  assert_int_equal(len, 3 + 2 + 4);
  buf[0] = 0x08; /* GMM's PD */
  assert_int_equal(cellsim_sm_decode(&out, buf, (size_t)len),
                   MTCSEC_ERR_MALFORMED);
  buf[0] = 0x7a;
  assert_int_equal(cellsim_sm_decode(&out, buf, (size_t)len),
                   MTCSEC_ERR_MALFORMED);
  buf[0] = 0x0a;
  buf[3] = 0x28; /* not the PCO IEI */
  assert_int_equal(cellsim_sm_decode(&out, buf, (size_t)len),
                   MTCSEC_ERR_MALFORMED);
  buf[3] = 0x27;
  buf[4] = 5; /* PCO length past the end */
  assert_int_equal(cellsim_sm_decode(&out, buf, (size_t)len),
                   MTCSEC_ERR_MALFORMED);
  buf[4] = 4;
  buf[2] = 16;
  assert_int_equal(cellsim_sm_decode(&out, buf, (size_t)len),
                   MTCSEC_ERR_MALFORMED);
  buf[2] = 5;
  buf[1] = 0x44; /* not one of ours */
  assert_int_equal(cellsim_sm_decode(&out, buf, (size_t)len),
                   MTCSEC_ERR_MALFORMED);
  buf[1] = 0x41;
  assert_int_equal(cellsim_sm_decode(&out, buf, (size_t)len), 0);
}

/* ------------------------------------------------------------------ GTP */

static void test_gtpc_round_trip_and_truncation(void **state) {
  uint8_t pco[24], buf[300], big[301];
  cellsim_gtpc in[5], out;
  size_t i, cut;

  (void)state;
  fill(pco, sizeof(pco), 11);
  memset(in, 0, sizeof(in));
  in[0].type = CELLSIM_CREATE_PDP_REQUEST;
  in[0].seq = 0xbeef;
  fill(in[0].imsi, 8, 12);
  in[0].nsapi = 5;
  in[0].teid = 0x01020304u;
  in[0].pco = pco;
  in[0].pcolen = sizeof(pco);
  in[1] = in[0];
  in[1].pco = NULL;
  in[1].pcolen = 0; /* no PCO: allowed on the wire */
  in[2].type = CELLSIM_CREATE_PDP_RESPONSE;
  in[2].seq = 1;
  in[2].cause = CELLSIM_GTP_ACCEPTED;
  in[2].teid = 0xfffffffeu;
  in[3].type = CELLSIM_DELETE_PDP_REQUEST;
  in[3].seq = 2;
  in[3].teid = 7;
  in[4].type = CELLSIM_DELETE_PDP_RESPONSE;
  in[4].seq = 3;
  in[4].cause = CELLSIM_GTP_NON_EXISTENT;
  for (i = 0; i < 5; i++) {
    mtcsec_ssize len = cellsim_gtpc_encode(&in[i], buf, sizeof(buf));
    assert_true(len >= CELLSIM_GTPC_HDR_LEN);
    assert_int_equal(buf[0], CELLSIM_GTPC_MAGIC);
    memset(&out, 0, sizeof(out));
    assert_int_equal(cellsim_gtpc_decode(&out, buf, (size_t)len), 0);
    assert_int_equal(out.type, in[i].type);
    assert_int_equal(out.seq, in[i].seq);
    assert_int_equal(out.teid, in[i].teid);
    assert_int_equal(out.cause, in[i].cause);
    assert_int_equal(out.pcolen, in[i].pcolen);
    if (in[i].type == CELLSIM_CREATE_PDP_REQUEST) {
      assert_memory_equal(out.imsi, in[i].imsi, 8);
      assert_int_equal(out.nsapi, 5);
      if (in[i].pcolen > 0) {
        assert_memory_equal(out.pco, pco, sizeof(pco));
      }
    }
    for (cut = 0; cut < (size_t)len; cut++) {
      assert_int_equal(cellsim_gtpc_decode(&out, buf, cut),
                       MTCSEC_ERR_MALFORMED);
      assert_int_equal(cellsim_gtpc_encode(&in[i], buf, cut), MTCSEC_ERR_NOBUF);
    }
    len = cellsim_gtpc_encode(&in[i], buf, sizeof(buf));
    memcpy(big, buf, (size_t)len);
    big[len] = 0;
    assert_int_equal(cellsim_gtpc_decode(&out, big, (size_t)len + 1),
                     MTCSEC_ERR_MALFORMED);
  }
  /* Bad NSAPI, unknown type, wrong magic. */
  in[0].nsapi = 16;
  assert_int_equal(cellsim_gtpc_encode(&in[0], buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  in[0].nsapi = 5;
  assert_true(cellsim_gtpc_encode(&in[0], buf, sizeof(buf)) > 0);
  buf[12] = 4;
  assert_int_equal(cellsim_gtpc_decode(&out, buf, 4 + 14 + 24),
                   MTCSEC_ERR_MALFORMED);
  buf[12] = 5;
  buf[1] = 0x12;
  assert_int_equal(cellsim_gtpc_decode(&out, buf, 4 + 14 + 24),
                   MTCSEC_ERR_MALFORMED);
  buf[1] = 0x10;
  buf[0] = 0x30;
  assert_int_equal(cellsim_gtpc_decode(&out, buf, 4 + 14 + 24),
                   MTCSEC_ERR_MALFORMED);
}

static void test_gtpu_round_trip_and_truncation(void **state) {
  uint8_t tpdu[40], buf[64], big[65];
  const uint8_t *p = NULL;
  size_t plen = 0, cut;
  uint32_t teid = 0;
  mtcsec_ssize len;

  (void)state;
  fill(tpdu, sizeof(tpdu), 13);
  len = cellsim_gtpu_encode(0xa1b2c3d4u, tpdu, sizeof(tpdu), buf, sizeof(buf));
  assert_int_equal(len, 8 + 40);
  /* TS 29.281 5.1: 0x30, G-PDU 0xff, length of what follows the 8 octets. */
  assert_int_equal(buf[0], 0x30);
  assert_int_equal(buf[1], 0xff);
  assert_int_equal(buf[2], 0);
  assert_int_equal(buf[3], 40);
  assert_int_equal(cellsim_gtpu_decode(buf, (size_t)len, &teid, &p, &plen), 0);
  assert_int_equal(teid, 0xa1b2c3d4u);
  assert_int_equal(plen, 40);
  assert_memory_equal(p, tpdu, 40);
  for (cut = 0; cut < (size_t)len; cut++) {
    assert_int_equal(cellsim_gtpu_decode(buf, cut, &teid, &p, &plen),
                     MTCSEC_ERR_MALFORMED);
    assert_int_equal(cellsim_gtpu_encode(1, tpdu, sizeof(tpdu), buf, cut),
                     MTCSEC_ERR_NOBUF);
  }
  len = cellsim_gtpu_encode(0xa1b2c3d4u, tpdu, sizeof(tpdu), buf, sizeof(buf));
  memcpy(big, buf, (size_t)len);
  big[len] = 0;
  assert_int_equal(cellsim_gtpu_decode(big, (size_t)len + 1, &teid, &p, &plen),
                   MTCSEC_ERR_MALFORMED);
  buf[0] = 0x32; /* S flag: a sequence number would follow; not ours */
  assert_int_equal(cellsim_gtpu_decode(buf, (size_t)len, &teid, &p, &plen),
                   MTCSEC_ERR_MALFORMED);
  buf[0] = 0x30;
  buf[1] = 0x1a; /* Error Indication */
  assert_int_equal(cellsim_gtpu_decode(buf, (size_t)len, &teid, &p, &plen),
                   MTCSEC_ERR_MALFORMED);
  /* An empty T-PDU is a valid G-PDU. */
  len = cellsim_gtpu_encode(9, NULL, 0, buf, sizeof(buf));
  assert_int_equal(len, 8);
  assert_int_equal(cellsim_gtpu_decode(buf, 8, &teid, &p, &plen), 0);
  assert_int_equal(plen, 0);
  assert_int_equal(cellsim_gtpu_encode(9, tpdu, 65536, buf, sizeof(buf)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

/* ---------------------------------------------------------- LLC COUNT */

static void test_llc_count_reconstruction(void **state) {
  cellsim_llc l;
  uint32_t c;

  (void)state;
  memset(&l, 0, sizeof(l));
  /* Nothing accepted yet: N(U) n is COUNT n. */
  assert_int_equal(cellsim_llc_rx_count(&l, 3, 0, &c), 0);
  assert_int_equal(c, 0);
  assert_int_equal(cellsim_llc_rx_count(&l, 3, 5, &c), 0);
  assert_int_equal(c, 5);
  /* After COUNT 511, N(U) 0 is COUNT 512: the wrap of N(U). */
  cellsim_llc_rx_accept(&l, 3, 511);
  assert_int_equal(cellsim_llc_rx_count(&l, 3, 0, &c), 0);
  assert_int_equal(c, 512);
  assert_int_equal(cellsim_llc_rx_count(&l, 3, 511, &c), 0);
  assert_int_equal(c, 1023); /* a replay of 511 maps 512 higher */
  /* Lost frames: after 10, N(U) 5 means 507 frames were lost. */
  cellsim_llc_rx_accept(&l, 1, 10);
  assert_int_equal(cellsim_llc_rx_count(&l, 1, 5, &c), 0);
  assert_int_equal(c, 517);
  assert_int_equal(cellsim_llc_rx_count(&l, 1, 11, &c), 0);
  assert_int_equal(c, 11);
  assert_int_equal(cellsim_llc_rx_count(&l, 1, 10, &c), 0);
  assert_int_equal(c, 522);
  /* SAPIs are independent. */
  assert_int_equal(cellsim_llc_rx_count(&l, 5, 10, &c), 0);
  assert_int_equal(c, 10);
  /* accept never goes back. */
  cellsim_llc_rx_accept(&l, 1, 3);
  assert_int_equal(cellsim_llc_rx_count(&l, 1, 11, &c), 0);
  assert_int_equal(c, 11);
  /* Far up: a large overflow value. */
  cellsim_llc_rx_accept(&l, 1, 0x12345678u);
  assert_int_equal(cellsim_llc_rx_count(&l, 1, 0x79, &c), 0);
  assert_int_equal(c, 0x12345679u);
  assert_int_equal(cellsim_llc_rx_count(&l, 1, 0x78, &c), 0);
  assert_int_equal(c, 0x12345678u + 512);
  /* Exhaustion at 2^32. */
  cellsim_llc_rx_accept(&l, 1, 0xfffffffeu);
  assert_int_equal(cellsim_llc_rx_count(&l, 1, 511, &c), 0);
  assert_int_equal(c, 0xffffffffu);
  assert_int_equal(cellsim_llc_rx_count(&l, 1, 0, &c), MTCSEC_ERR_EXHAUSTED);
  cellsim_llc_rx_accept(&l, 1, 0xffffffffu);
  assert_int_equal(cellsim_llc_rx_count(&l, 1, 511, &c), MTCSEC_ERR_EXHAUSTED);
  /* Arguments. */
  assert_int_equal(cellsim_llc_rx_count(&l, 16, 0, &c),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(cellsim_llc_rx_count(&l, 1, 512, &c),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

static void test_llc_tx_count(void **state) {
  cellsim_llc l;
  uint32_t c, i;

  (void)state;
  memset(&l, 0, sizeof(l));
  for (i = 0; i < 1030; i++) {
    assert_int_equal(cellsim_llc_tx_count(&l, 3, &c), 0);
    assert_int_equal(c, i);
  }
  assert_int_equal(cellsim_llc_tx_count(&l, 1, &c), 0);
  assert_int_equal(c, 0);
  l.tx_next[3] = 0xffffffffu;
  assert_int_equal(cellsim_llc_tx_count(&l, 3, &c), 0);
  assert_int_equal(c, 0xffffffffu);
  assert_int_equal(cellsim_llc_tx_count(&l, 3, &c), MTCSEC_ERR_EXHAUSTED);
  assert_int_equal(cellsim_llc_tx_count(&l, 16, &c),
                   MTCSEC_ERR_INVALID_ARGUMENT);
}

/* Sender and receiver across the N(U) wrap, with MAC-I; a replayed frame
 * and a frame with a bad MAC-I are refused and change no counter. */
static void llc_stream(const uint8_t *ik) {
  cellsim_llc tx, rx, before;
  uint8_t frames[3][64], frame[64], info[16];
  size_t lens[3] = {0, 0, 0};
  mtcsec_llc_ui ui;
  uint32_t count, i;
  mtcsec_ssize n;

  memset(&tx, 0, sizeof(tx));
  memset(&rx, 0, sizeof(rx));
  for (i = 0; i < 1100; i++) {
    fill(info, sizeof(info), (uint8_t)i);
    n = cellsim_llc_seal(&tx, &g_crypto, ik, MTCSEC_3GPP_UPLINK,
                         MTCSEC_LLC_SAPI_LL3, info, sizeof(info), frame,
                         sizeof(frame));
    assert_int_equal(n, 3 + 16 + (ik != NULL ? 4 : 3));
    if (i == 100 || i == 600 || i == 1099) {
      size_t k = i == 100 ? 0 : i == 600 ? 1 : 2;
      memcpy(frames[k], frame, (size_t)n);
      lens[k] = (size_t)n;
    }
    if (i >= 700 && i < 900) {
      continue; /* 200 frames lost in a row */
    }
    assert_int_equal(cellsim_llc_open(&rx, &g_crypto, ik, MTCSEC_3GPP_UPLINK,
                                      frame, (size_t)n, &ui, &count),
                     0);
    assert_int_equal(count, i);
    assert_int_equal(ui.nu, i % 512);
    assert_int_equal(ui.sapi, 3);
    assert_int_equal(ui.cr, 0);
    assert_int_equal(ui.pm, 1);
    assert_memory_equal(ui.info, info, sizeof(info));
  }
  assert_true(rx.rx_next[3] == 1100);

  /* A replay of frames 100, 600 and 1099 maps to 100+1024, 600+512 and
   * 1099+512: the MAC-I fails and nothing moves. */
  if (ik != NULL) {
    for (i = 0; i < 3; i++) {
      before = rx;
      assert_int_equal(cellsim_llc_open(&rx, &g_crypto, ik, MTCSEC_3GPP_UPLINK,
                                        frames[i], lens[i], &ui, &count),
                       MTCSEC_ERR_MIC);
      assert_memory_equal(&rx, &before, sizeof(rx));
    }
  }
  /* A bad check value: every byte of the next frame corrupted once. */
  fill(info, sizeof(info), 0x55);
  n = cellsim_llc_seal(&tx, &g_crypto, ik, MTCSEC_3GPP_UPLINK,
                       MTCSEC_LLC_SAPI_LL3, info, sizeof(info), frame,
                       sizeof(frame));
  assert_true(n > 0);
  for (i = 3; i < (uint32_t)n; i++) {
    int rv;
    before = rx;
    frame[i] ^= 0x40;
    rv = cellsim_llc_open(&rx, &g_crypto, ik, MTCSEC_3GPP_UPLINK, frame,
                          (size_t)n, &ui, &count);
    /* In FCS mode with PM = 1 every bit is covered too. */
    assert_int_equal(rv, MTCSEC_ERR_MIC);
    assert_memory_equal(&rx, &before, sizeof(rx));
    frame[i] ^= 0x40;
  }
  /* The wrong direction or the wrong key fails as well. */
  if (ik != NULL) {
    uint8_t other[16];
    memcpy(other, ik, 16);
    other[0] ^= 1;
    before = rx;
    assert_int_equal(cellsim_llc_open(&rx, &g_crypto, ik, MTCSEC_3GPP_DOWNLINK,
                                      frame, (size_t)n, &ui, &count),
                     MTCSEC_ERR_MIC);
    assert_int_equal(cellsim_llc_open(&rx, &g_crypto, other, MTCSEC_3GPP_UPLINK,
                                      frame, (size_t)n, &ui, &count),
                     MTCSEC_ERR_MIC);
    assert_memory_equal(&rx, &before, sizeof(rx));
  }
  /* The intact frame still opens afterwards: failures consumed nothing. */
  assert_int_equal(cellsim_llc_open(&rx, &g_crypto, ik, MTCSEC_3GPP_UPLINK,
                                    frame, (size_t)n, &ui, &count),
                   0);
  assert_int_equal(count, 1100);
  /* Truncated frames are malformed and change nothing either. */
  before = rx;
  assert_int_equal(cellsim_llc_open(&rx, &g_crypto, ik, MTCSEC_3GPP_UPLINK,
                                    frame, 2, &ui, &count),
                   MTCSEC_ERR_MALFORMED);
  assert_memory_equal(&rx, &before, sizeof(rx));
}

static void test_llc_stream_maci(void **state) {
  (void)state;
  llc_stream(IK);
}

static void test_llc_stream_fcs(void **state) {
  (void)state;
  llc_stream(NULL);
}

static void test_llc_seal_checks(void **state) {
  cellsim_llc l;
  uint8_t frame[64], info[8] = {0};
  uint8_t sapi = 0;
  uint16_t nu = 0;

  (void)state;
  memset(&l, 0, sizeof(l));
  /* NOBUF before a COUNT is spent. */
  assert_int_equal(
    cellsim_llc_seal(&l, &g_crypto, IK, 0, 3, info, sizeof(info), frame, 14),
    MTCSEC_ERR_NOBUF);
  assert_true(l.tx_next[3] == 0);
  assert_int_equal(cellsim_llc_seal(&l, &g_crypto, IK, 0, 4, info, sizeof(info),
                                    frame, sizeof(frame)),
                   MTCSEC_ERR_INVALID_ARGUMENT); /* SAPI 4 is reserved */
  assert_int_equal(cellsim_llc_seal(&l, &g_crypto, IK, 2, 3, info, sizeof(info),
                                    frame, sizeof(frame)),
                   MTCSEC_ERR_INVALID_ARGUMENT);
  assert_int_equal(cellsim_llc_seal(&l, &g_crypto, IK, 1, 1, info, sizeof(info),
                                    frame, sizeof(frame)),
                   3 + 8 + 4);
  /* Downlink: C/R = 1 (TS 44.064 6.2.2, commands from the SGSN side). */
  assert_int_equal(frame[0], 0x41);
  assert_int_equal(cellsim_llc_peek(frame, 15, &sapi, &nu), 0);
  assert_int_equal(sapi, 1);
  assert_int_equal(nu, 0);
  frame[0] = 0x44; /* SAPI 4 */
  assert_int_equal(cellsim_llc_peek(frame, 15, &sapi, &nu),
                   MTCSEC_ERR_MALFORMED);
  frame[0] = 0x81; /* PD = 1 */
  assert_int_equal(cellsim_llc_peek(frame, 15, &sapi, &nu),
                   MTCSEC_ERR_MALFORMED);
  frame[0] = 0x01;
  frame[1] = 0x80; /* an S frame */
  assert_int_equal(cellsim_llc_peek(frame, 15, &sapi, &nu),
                   MTCSEC_ERR_MALFORMED);
}

/* ----------------------------------------------------------------- GSUP */

static void test_gsup_scan(void **state) {
  /* SAI result: IMSI IE, two tuples (the second with CK and Kc), then the
   * policy IE. */
  uint8_t m[128];
  size_t n = 0, t1, i;
  cellsim_gsup_facts f;

  (void)state;
  m[n++] = 0x0a; /* Send Auth Info Result */
  m[n++] = 0x01;
  m[n++] = 8;
  memset(m + n, 0x11, 8);
  n += 8;
  /* tuple 1: RAND, IK, AUTN(short here), RES */
  m[n++] = 0x03;
  t1 = n++;
  m[n++] = 0x20;
  m[n++] = 2;
  m[n++] = 1;
  m[n++] = 2;
  m[n++] = 0x23;
  m[n++] = 1;
  m[n++] = 3;
  m[t1] = (uint8_t)(n - t1 - 1);
  assert_int_equal(cellsim_gsup_scan(m, n, &f), 0);
  assert_int_equal(f.ntuples, 1);
  assert_int_equal(f.ck_present, 0);
  assert_int_equal(f.kc_present, 0);
  assert_int_equal(f.ik_missing, 0);
  assert_int_equal(f.policy, -1);
  /* tuple 2: CK and Kc, no IK */
  m[n++] = 0x03;
  m[n++] = 6;
  m[n++] = 0x24;
  m[n++] = 1;
  m[n++] = 4;
  m[n++] = 0x22;
  m[n++] = 1;
  m[n++] = 5;
  m[n++] = 0xf0;
  m[n++] = 2;
  m[n++] = 0x01;
  m[n++] = 0x01;
  assert_int_equal(cellsim_gsup_scan(m, n, &f), 0);
  assert_int_equal(f.ntuples, 2);
  assert_int_equal(f.ck_present, 1);
  assert_int_equal(f.kc_present, 1);
  assert_int_equal(f.ik_missing, 1);
  assert_int_equal(f.policy, 1);
  /* An unknown policy version counts as absent. */
  m[n - 2] = 0x02;
  assert_int_equal(cellsim_gsup_scan(m, n, &f), 0);
  assert_int_equal(f.policy, -1);
  m[n - 2] = 0x01;
  /* Every truncation that cuts an IE is malformed; cuts between IEs are
   * fine (the message just ends there). */
  for (i = 1; i < n; i++) {
    int rv = cellsim_gsup_scan(m, i, &f);
    size_t t1end = 11 + 2 + (size_t)m[12];
    int boundary = i == 1 || i == 11 || i == t1end || i == t1end + 8;
    assert_int_equal(rv, boundary ? 0 : MTCSEC_ERR_MALFORMED);
  }
  /* A tuple whose inner IE runs past the tuple. */
  m[t1 + 2] = 9;
  assert_int_equal(cellsim_gsup_scan(m, n, &f), MTCSEC_ERR_MALFORMED);
  assert_int_equal(cellsim_gsup_scan(m, 0, &f), MTCSEC_ERR_MALFORMED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_radio_round_trip_and_truncation),
    cmocka_unit_test(test_radio_rejects_bad_fields),
    cmocka_unit_test(test_sm_round_trip_and_truncation),
    cmocka_unit_test(test_sm_rejects_bad_fields),
    cmocka_unit_test(test_gtpc_round_trip_and_truncation),
    cmocka_unit_test(test_gtpu_round_trip_and_truncation),
    cmocka_unit_test(test_llc_count_reconstruction),
    cmocka_unit_test(test_llc_tx_count),
    cmocka_unit_test(test_llc_stream_maci),
    cmocka_unit_test(test_llc_stream_fcs),
    cmocka_unit_test(test_llc_seal_checks),
    cmocka_unit_test(test_gsup_scan),
  };
  return cmocka_run_group_tests_name("cellagents.cellsim", tests, setup,
                                     teardown);
}
