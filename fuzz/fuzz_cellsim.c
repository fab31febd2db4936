/*
 * Fuzz target: the decoders of the simulated cellular interfaces
 * (apps/common/cellsim.c, docs/CELLULAR-SYSTEM.md sections 1, 1.1 and 2):
 * radio datagrams, SM messages, GTP-C, GTP-U, the raw GSUP walk, and LLC
 * frames through the COUNT bookkeeping (MAC-I and FCS).
 *
 * Invariants:
 *  - every decoder reads only within the input (ASan) and either refuses it
 *    or accepts it;
 *  - what a decoder accepts, the matching encoder writes back byte for byte
 *    (the codecs are exact: no field is dropped or normalised);
 *  - a refused LLC frame changes no counter; an accepted one moves only its
 *    SAPI's receive counter, to COUNT + 1;
 *  - a frame sealed by cellsim_llc_seal() opens at the other end with the
 *    same information field.
 *
 * Input: any bytes; the LLC decoder runs from a fresh COUNT state and from
 * one picked by the first byte.  Seeds (fuzz/corpus/fuzz_cellsim/): one
 * message of each radio, SM and GTP type, a GSUP Send Auth Info result of
 * an integrity-only subscriber, and SAPI-1/SAPI-3 frames whose MAC-I
 * (COUNT 0, uplink) under IK below was computed with Python's
 * cryptography AES-CMAC, so that the accepting paths are reached at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/cellular.h>

#include "cellsim.h"
#include "fuzz_common.h"

static const uint8_t IK[16] = {0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78,
                               0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0};

static const mtcsec_crypto *crypto(void) {
  static mtcsec_crypto c;
  static int ready;
  if (!ready) {
    FZ_CHECK(mtcsec_crypto_openssl_new(&c) == 0);
    ready = 1;
  }
  return &c;
}

static void fuzz_radio(const uint8_t *in, size_t len) {
  cellsim_radio m;
  uint8_t out[4096];
  mtcsec_ssize n;
  memset(&m, 0, sizeof(m));
  if (cellsim_radio_decode(&m, in, len) != 0) {
    return;
  }
  n = cellsim_radio_encode(&m, out, sizeof(out));
  FZ_CHECK(n == (mtcsec_ssize)len && memcmp(out, in, len) == 0);
}

static void fuzz_sm(const uint8_t *in, size_t len) {
  cellsim_sm m;
  uint8_t out[512];
  mtcsec_ssize n;
  if (cellsim_sm_decode(&m, in, len) != 0) {
    return;
  }
  FZ_CHECK(m.nsapi >= CELLSIM_NSAPI_MIN && m.nsapi <= CELLSIM_NSAPI_MAX);
  n = cellsim_sm_encode(&m, out, sizeof(out));
  FZ_CHECK(n == (mtcsec_ssize)len && memcmp(out, in, len) == 0);
}

static void fuzz_gtp(const uint8_t *in, size_t len) {
  cellsim_gtpc g;
  uint8_t out[70000];
  const uint8_t *tpdu = NULL;
  size_t tlen = 0;
  uint32_t teid = 0;
  mtcsec_ssize n;
  if (cellsim_gtpc_decode(&g, in, len) == 0) {
    n = cellsim_gtpc_encode(&g, out, sizeof(out));
    FZ_CHECK(n == (mtcsec_ssize)len && memcmp(out, in, len) == 0);
  }
  if (cellsim_gtpu_decode(in, len, &teid, &tpdu, &tlen) == 0) {
    FZ_CHECK(tlen == len - CELLSIM_GTPU_HDR_LEN);
    n = cellsim_gtpu_encode(teid, tpdu, tlen, out, sizeof(out));
    FZ_CHECK(n == (mtcsec_ssize)len && memcmp(out, in, len) == 0);
  }
}

static void fuzz_gsup(const uint8_t *in, size_t len) {
  cellsim_gsup_facts f;
  if (cellsim_gsup_scan(in, len, &f) == 0) {
    FZ_CHECK(f.policy >= -1 && f.policy <= 255);
    FZ_CHECK(f.ntuples <= len / 2);
  }
}

/* Opens in as an uplink frame from state *l (MAC-I and FCS) and checks
 * what changed. */
static void llc_open_checked(const cellsim_llc *start, const uint8_t *in,
                             size_t len) {
  cellsim_llc l = *start, before;
  mtcsec_llc_ui ui;
  uint32_t count = 0;
  int mode, rv;
  size_t s;

  for (mode = 0; mode < 2; mode++) {
    const uint8_t *ik = mode == 0 ? IK : NULL;
    uint8_t sapi = 0;
    uint16_t nu = 0;
    before = l;
    rv = cellsim_llc_open(&l, crypto(), ik, MTCSEC_3GPP_UPLINK, in, len, &ui,
                          &count);
    if (rv != 0) {
      FZ_CHECK(memcmp(&l, &before, sizeof(l)) == 0);
      continue;
    }
    if (fz_debug()) {
      fprintf(stderr, "llc: %s frame accepted, COUNT %u\n",
              ik ? "MAC-I" : "FCS", (unsigned)count);
    }
    FZ_CHECK(cellsim_llc_peek(in, len, &sapi, &nu) == 0);
    FZ_CHECK(ui.sapi == sapi && ui.nu == nu && (count & 511u) == nu);
    FZ_CHECK(l.rx_next[sapi] == (uint64_t)count + 1);
    FZ_CHECK(count >= before.rx_next[sapi]);
    for (s = 0; s < CELLSIM_LLC_NSAPI; s++) {
      FZ_CHECK(s == sapi || l.rx_next[s] == before.rx_next[s]);
      FZ_CHECK(l.tx_next[s] == before.tx_next[s]);
    }
    FZ_CHECK(ui.infolen + MTCSEC_LLC_UI_HDR_LEN + (ik ? 4u : 3u) == len);
  }
}

static void fuzz_llc(const uint8_t *in, size_t len) {
  cellsim_llc l;
  mtcsec_llc_ui ui;
  uint8_t frame[MTCSEC_LLC_UI_HDR_LEN + MTCSEC_LLC_MAX_INFO + 4];
  uint32_t count = 0;
  size_t s;

  /* From the start of a context, and from a state picked by the first
   * byte (far along, or at the very end of COUNT). */
  memset(&l, 0, sizeof(l));
  llc_open_checked(&l, in, len);
  if (len > 0) {
    for (s = 0; s < CELLSIM_LLC_NSAPI; s++) {
      l.rx_next[s] = ((uint64_t)in[0] << 20) + s * 37u;
      if (in[0] == 0xff) {
        l.rx_next[s] = CELLSIM_LLC_COUNT_END - s;
      }
    }
    llc_open_checked(&l, in, len);
  }
  /* Seal the input as an information field and open it at the other end. */
  if (len <= MTCSEC_LLC_MAX_INFO) {
    cellsim_llc tx, rx;
    mtcsec_ssize n;
    memset(&tx, 0, sizeof(tx));
    memset(&rx, 0, sizeof(rx));
    tx.tx_next[3] = len > 0 ? in[len - 1] * 300u : 0;
    rx.rx_next[3] = tx.tx_next[3];
    n = cellsim_llc_seal(&tx, crypto(), IK, MTCSEC_3GPP_DOWNLINK, 3, in, len,
                         frame, sizeof(frame));
    FZ_CHECK(n == (mtcsec_ssize)(len + 7));
    FZ_CHECK(cellsim_llc_open(&rx, crypto(), IK, MTCSEC_3GPP_DOWNLINK, frame,
                              (size_t)n, &ui, &count) == 0);
    FZ_CHECK(ui.infolen == len && (len == 0 || memcmp(ui.info, in, len) == 0));
    FZ_CHECK(rx.rx_next[3] == tx.tx_next[3]);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_radio(data, size);
  fuzz_sm(data, size);
  fuzz_gtp(data, size);
  fuzz_gsup(data, size);
  fuzz_llc(data, size);
  return 0;
}
