/*
 * Cellular mode overhead (issue 4, item 7): bytes and messages on the radio
 * side (MS <-> SGSN) from power-on to the first protected application
 * payload, and the MS's instructions (for callgrind), for
 *
 *  (a) this mode (CELLULAR.md): attach with UMTS AKA, PDP context activation
 *      whose PCO carries RAND in container 0xFF00 (SAPI-1 LLC frame with
 *      MAC-I), then the first payload record, AES-128-CCM under the K_UP
 *      uplink key, in a SAPI-3 LLC frame with MAC-I;
 *  (b) DTLS 1.2 PSK-AES128-CCM8 between the MS and the MTC server (OpenSSL,
 *      the in-memory pair of bench_dtlspair.c, run here): the same attach,
 *      a PDP context activation without the container, standard LLC frames
 *      (FCS, the subscriber policy of a network without proposal P1), every
 *      DTLS datagram in SAPI-3 frames, then the first application record;
 *  (p) the plain baseline both are measured against: the same attach and
 *      PDP activation as (b), the first payload unprotected in a SAPI-3
 *      frame with FCS;
 *  (c) the direct MTCd-UE protocol of PROTOCOL.md (suite 1) on the device
 *      link: M0 + M1 + M4 + the first record, as bench_link counts them.
 *
 * Every message is built with the encoders the agents use
 * (docs/CELLULAR-SYSTEM.md, apps/common/cellsim.h: cellsim_radio_encode,
 * cellsim_sm_encode, cellsim_llc_seal -> mtcsec_llc_ui_encode_mac or
 * mtcsec_llc_ui_encode_fcs, mtcsec_pco_encode, mtcsec_chan_seal under
 * mtcsec_up_keys_derive keys) and decoded and checked by the other side
 * (the SGSN verifies RES and every MAC-I/FCS, the MTC server side derives
 * K_UP from the vector and opens the record, the DTLS server reads the
 * record): a count comes from an exchange that completed, never from a
 * formula.  A "message" is one radio datagram as the agents send it:
 * 0x4D || type || TLLI(4) || body, the body of an LLC message being one UI
 * frame.  Counting starts with the MS's ATTACH_REQUEST and stops after the
 * MS's first protected uplink payload (that frame included); both
 * directions are counted; nothing below the simulated radio (RLC/MAC,
 * physical layer), no network-side leg (GSUP, GTP, Gi) and no IP/UDP
 * header (the simulation has none, and none is counted for DTLS) is
 * counted.  DTLS datagrams larger than N201-U (500 octets for SAPI 3, TS
 * 44.064 Table 9) would be split over several frames; none is in a PSK
 * handshake.  The LLC frames of (b) carry no SNDCP header, like those of
 * (a) (one PDP context per MS, docs/CELLULAR-SYSTEM.md 1.1).
 *
 * Instructions: --only a|b --n N runs one warm-up and N measured exchanges
 * of that case; every piece of MS work of the measured ones goes through
 * bench_cell_ms_step(), the only function to collect:
 *   valgrind --tool=callgrind --collect-atstart=no \
 *     --toggle-collect=bench_cell_ms_step bench_cellular --only a --n 10
 * MS work: radio and SM codecs, AKA (mtcsec_aka_ms), K_UP and record-key
 * derivation with channel set-up (a), the LLC frames it seals and opens
 * (MAC-I in a, FCS in b), the payload seal (a), SSL_connect() and the first
 * SSL_write() (b).  Network work (AuC vectors, SGSN checks, the DTLS
 * server, K_UP at the server) runs outside it.  --report reads
 * callgrind_annotate's inclusive counts (as "function count" lines) and
 * prints the per-exchange breakdown next to bench_device's figure.
 *
 * Usage: bench_cellular                       bytes and messages
 *        bench_cellular --only a|b [--n N] [--provider openssl|mbedtls]
 *        bench_cellular --report N A_FILE B_FILE [DEVICE_IR_FILE]
 *                       [A_MBEDTLS_FILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include <mtcsec/cellular.h>
#include <mtcsec/channel.h>
#include <mtcsec/codec.h>
#include <mtcsec/device.h>
#include <mtcsec/phone.h>
#include <mtcsec/server.h>
#include <mtcsec/store.h>
#ifdef MTCSEC_BENCH_MBEDTLS
#  include <mtcsec/crypto_mbedtls.h>
#endif

#include "bench_common.h"
#include "bench_dtlspair.h"
#include "cellsim.h"

#define PT_LEN 10      /* first payload's plaintext, as bench_link's probe */
#define N201_U_LL3 500 /* TS 44.064 Table 9: default N201-U, SAPI 3 */
#define MS_NSAPI 5
#define MAX_MSGS 64
#define MAX_N 1000
#define RADIO_MAX                                                              \
  (CELLSIM_RADIO_HDR_LEN + MTCSEC_LLC_UI_HDR_LEN + MTCSEC_LLC_MAX_INFO +       \
   MTCSEC_LLC_MACI_LEN)

/* The USIM: TS 35.208 test set 1 (K, OPc), a test PLMN and IMSI. */
static const uint8_t USIM_K[16] = {0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99,
                                   0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e,
                                   0xe2, 0x38, 0xa6, 0xbc};
static const uint8_t USIM_OPC[16] = {0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a,
                                     0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e,
                                     0x37, 0xa0, 0x2b, 0xaf};
static const uint8_t USIM_AMF[2] = {0x80, 0x00};
static const char USIM_IMSI[] = "001010000000001";
static const mtcsec_plmn USIM_PLMN = {1, 1, 2};
static const uint32_t MS_TLLI = 0xc0a1b2c3u; /* a local TLLI: top bits 11 */

typedef enum cell_mode { MODE_A = 0, MODE_B, MODE_P } cell_mode;

/* Where a message belongs, for the security-specific split. */
typedef enum cell_part {
  PART_ATTACH = 0,
  PART_PDP,
  PART_HANDSHAKE,
  PART_PAYLOAD,
  NPARTS
} cell_part;

static const char *const PART_KEY[NPARTS] = {"attach", "pdp", "handshake",
                                             "payload"};

typedef struct cell_msg {
  int up; /* 1: MS -> SGSN */
  cell_part part;
  size_t radio; /* the radio datagram */
  size_t llc;   /* its LLC frame (0: not an LLC message) */
  size_t info;  /* the frame's information field */
  char what[64];
} cell_msg;

typedef struct cell_tally {
  cell_msg m[MAX_MSGS];
  size_t n;
} cell_tally;

typedef struct cell {
  cell_mode mode;
  int measure;
  const mtcsec_crypto *msc; /* the MS's provider */
  const mtcsec_crypto *net; /* SGSN, home proxy, MTC server */
  uint8_t imsi[MTCSEC_IMSI_TBCD_LEN];
  uint8_t plmn[MTCSEC_PLMN_LEN];
  /* MS and USIM. */
  mtcsec_sqn_ms usim;
  uint8_t ms_rand[MTCSEC_3GPP_RAND_LEN];
  uint8_t ms_ik[MTCSEC_3GPP_IK_LEN];
  int ms_policy;
  cellsim_llc ms_llc;
  mtcsec_chan ms_chan;
  int ms_chan_live;
  /* AuC and SGSN. */
  uint64_t sqn_he;
  uint32_t nrand;
  mtcsec_aka_vector vec;
  int policy;
  cellsim_llc sg_llc;
  /* The radio datagram in flight. */
  uint8_t air[RADIO_MAX];
  size_t airlen;
  /* (b): the pair, datagrams framed so far, the piece being framed. */
  bench_dtls_pair *dtls;
  size_t dtls_up, dtls_down;
  const uint8_t *piece;
  size_t piecelen;
  int ssl_rv;
  cell_tally *t;
} cell;

typedef int (*cell_fn)(cell *s);

/* --------------------------------------------------- measured MS steps */

__attribute__((noinline)) int bench_cell_ms_step(cell_fn fn, cell *s);

/* Every MS step of a measured exchange runs inside this function. */
int bench_cell_ms_step(cell_fn fn, cell *s) { return fn(s); }

static void ms(cell *s, cell_fn fn, const char *what) {
  int rv = s->measure ? bench_cell_ms_step(fn, s) : fn(s);
  BENCH_CHECK(rv == 0, what, rv);
}

static void net(cell *s, cell_fn fn, const char *what) {
  int rv = fn(s);
  BENCH_CHECK(rv == 0, what, rv);
}

static int radio_put(cell *s, const cellsim_radio *m) {
  mtcsec_ssize n = cellsim_radio_encode(m, s->air, sizeof(s->air));
  if (n < 0) {
    return (int)n;
  }
  s->airlen = (size_t)n;
  return 0;
}

static int radio_get(cell *s, cellsim_radio *m, uint8_t type) {
  int rv = cellsim_radio_decode(m, s->air, s->airlen);
  if (rv != 0) {
    return rv;
  }
  return m->type == type && m->tlli == MS_TLLI ? 0 : MTCSEC_ERR_MALFORMED;
}

/* One UI frame of sapi around info, sealed by one side. */
static int llc_put(cell *s, cellsim_llc *l, const mtcsec_crypto *c,
                   const uint8_t *ik, uint8_t dir, uint8_t sapi,
                   const uint8_t *info, size_t infolen) {
  uint8_t
    frame[MTCSEC_LLC_UI_HDR_LEN + MTCSEC_LLC_MAX_INFO + MTCSEC_LLC_MACI_LEN];
  cellsim_radio m;
  mtcsec_ssize n =
    cellsim_llc_seal(l, c, ik, dir, sapi, info, infolen, frame, sizeof(frame));
  if (n < 0) {
    return (int)n;
  }
  memset(&m, 0, sizeof(m));
  m.type = CELLSIM_LLC;
  m.tlli = MS_TLLI;
  m.llc = frame;
  m.llclen = (size_t)n;
  return radio_put(s, &m);
}

/* Opens the frame in flight; ui->info points into s->air. */
static int llc_get(cell *s, cellsim_llc *l, const mtcsec_crypto *c,
                   const uint8_t *ik, uint8_t dir, uint8_t sapi,
                   mtcsec_llc_ui *ui) {
  cellsim_radio m;
  int rv = radio_get(s, &m, CELLSIM_LLC);
  if (rv == 0) {
    rv = cellsim_llc_open(l, c, ik, dir, m.llc, m.llclen, ui, NULL);
  }
  if (rv == 0 && ui->sapi != sapi) {
    rv = MTCSEC_ERR_MALFORMED;
  }
  return rv;
}

static const uint8_t *ms_ik(const cell *s) {
  return (s->ms_policy & CELLSIM_POLICY_INTEGRITY) ? s->ms_ik : NULL;
}

static int ms_attach(cell *s) {
  cellsim_radio m;
  memset(&m, 0, sizeof(m));
  m.type = CELLSIM_ATTACH_REQUEST;
  m.tlli = MS_TLLI;
  memcpy(m.imsi, s->imsi, sizeof(m.imsi));
  return radio_put(s, &m);
}

/* AUTH_REQUEST -> AKA -> (a: K_UP, record keys, channel) -> AUTH_RESPONSE.
 * As agent_ms.c does, CK lives only for the K_UP derivation. */
static int ms_auth(cell *s) {
  cellsim_radio m, out;
  mtcsec_aka_result res;
  mtcsec_sqn_verdict verdict = MTCSEC_SQN_FRESH;
  uint8_t auts[MTCSEC_3GPP_AUTS_LEN], kup[MTCSEC_KUP_LEN];
  mtcsec_up_keys keys;
  int rv = radio_get(s, &m, CELLSIM_AUTH_REQUEST);

  if (rv != 0) {
    return rv;
  }
  rv = mtcsec_aka_ms(USIM_K, USIM_OPC, &s->usim, m.rand, m.autn, &res, auts,
                     &verdict);
  if (rv != 0) {
    return rv;
  }
  memcpy(s->ms_rand, m.rand, sizeof(s->ms_rand));
  memcpy(s->ms_ik, res.ik, sizeof(s->ms_ik));
  if (s->mode == MODE_A) {
    rv = mtcsec_kup_derive(s->msc, res.ck, res.ik, BENCH_SRV, s->ms_rand, kup);
    if (rv == 0) {
      rv = mtcsec_up_keys_derive(s->msc, kup, s->imsi, &keys);
    }
    if (rv == 0) {
      rv = mtcsec_chan_init_keys(&s->ms_chan, s->msc, MTCSEC_SUITE_CMAC_AES128,
                                 keys.ul_key, keys.ul_iv, keys.dl_key,
                                 keys.dl_iv, 0, UINT64_MAX);
      s->ms_chan_live = rv == 0;
    }
    mtcsec_zeroize(kup, sizeof(kup));
    mtcsec_zeroize(&keys, sizeof(keys));
  }
  memset(&out, 0, sizeof(out));
  out.type = CELLSIM_AUTH_RESPONSE;
  out.tlli = MS_TLLI;
  out.reslen = MTCSEC_3GPP_RES_LEN;
  memcpy(out.res, res.res, MTCSEC_3GPP_RES_LEN);
  mtcsec_zeroize(&res, sizeof(res));
  if (rv == 0) {
    rv = radio_put(s, &out);
  }
  mtcsec_zeroize(&out, sizeof(out));
  return rv;
}

static int ms_attached(cell *s) {
  cellsim_radio m;
  int rv = radio_get(s, &m, CELLSIM_ATTACH_ACCEPT);
  if (rv != 0) {
    return rv;
  }
  s->ms_policy = m.flags;
  if (!(s->ms_policy & CELLSIM_POLICY_INTEGRITY)) {
    mtcsec_zeroize(s->ms_ik, sizeof(s->ms_ik)); /* FCS mode: IK unused */
  }
  memset(&s->ms_llc, 0, sizeof(s->ms_llc));
  return 0;
}

/* Activate PDP Context Request: (a) with the 0xFF00 container holding
 * PLMN || 0x01 || RAND, (b)/(p) with a PCO of no container (the simulated
 * SM message requires the IE, docs/CELLULAR-SYSTEM.md 1.1). */
static int ms_activate(cell *s) {
  uint8_t container[MTCSEC_PCO_RAND_LEN], pco[MTCSEC_PCO_MAX_LEN], sm[300];
  mtcsec_pco p;
  cellsim_sm m;
  mtcsec_ssize pl, sl;
  int rv;

  memset(&p, 0, sizeof(p));
  if (s->mode == MODE_A) {
    rv = mtcsec_pco_rand_encode(s->plmn, s->ms_rand, container);
    if (rv != 0) {
      return rv;
    }
    p.nunits = 1;
    p.units[0].id = MTCSEC_PCO_CID_MTCSEC;
    p.units[0].len = MTCSEC_PCO_RAND_LEN;
    p.units[0].contents = container;
  }
  pl = mtcsec_pco_encode(&p, MTCSEC_PCO_BARE, pco, sizeof(pco));
  if (pl < 0) {
    return (int)pl;
  }
  memset(&m, 0, sizeof(m));
  m.type = CELLSIM_SM_ACTIVATE_REQUEST;
  m.nsapi = MS_NSAPI;
  m.pco = pco;
  m.pcolen = (size_t)pl;
  sl = cellsim_sm_encode(&m, sm, sizeof(sm));
  if (sl < 0) {
    return (int)sl;
  }
  return llc_put(s, &s->ms_llc, s->msc, ms_ik(s), MTCSEC_3GPP_UPLINK,
                 MTCSEC_LLC_SAPI_LLGMM, sm, (size_t)sl);
}

static int ms_activated(cell *s) {
  mtcsec_llc_ui ui;
  cellsim_sm m;
  int rv = llc_get(s, &s->ms_llc, s->msc, ms_ik(s), MTCSEC_3GPP_DOWNLINK,
                   MTCSEC_LLC_SAPI_LLGMM, &ui);
  if (rv == 0) {
    rv = cellsim_sm_decode(&m, ui.info, ui.infolen);
  }
  if (rv == 0 &&
      (m.type != CELLSIM_SM_ACTIVATE_ACCEPT || m.nsapi != MS_NSAPI)) {
    rv = MTCSEC_ERR_MALFORMED;
  }
  return rv;
}

static const uint8_t PAYLOAD[PT_LEN] = {0x42, 0x42, 0x42, 0x42, 0x42,
                                        0x42, 0x42, 0x42, 0x42, 0x42};

/* (a): one AES-CCM record under the uplink key in a SAPI-3 frame. */
static int ms_payload_a(cell *s) {
  uint8_t rec[PT_LEN + 64];
  mtcsec_ssize n = mtcsec_chan_seal(&s->ms_chan, rec, sizeof(rec), PAYLOAD,
                                    sizeof(PAYLOAD), 1000);
  if (n < 0) {
    return (int)n;
  }
  return llc_put(s, &s->ms_llc, s->msc, ms_ik(s), MTCSEC_3GPP_UPLINK,
                 MTCSEC_LLC_SAPI_LL3, rec, (size_t)n);
}

/* (p): the payload in clear. */
static int ms_payload_p(cell *s) {
  return llc_put(s, &s->ms_llc, s->msc, ms_ik(s), MTCSEC_3GPP_UPLINK,
                 MTCSEC_LLC_SAPI_LL3, PAYLOAD, sizeof(PAYLOAD));
}

/* (b): one piece of a server datagram, received in a SAPI-3 frame. */
static int ms_dtls_in(cell *s) {
  mtcsec_llc_ui ui;
  int rv = llc_get(s, &s->ms_llc, s->msc, ms_ik(s), MTCSEC_3GPP_DOWNLINK,
                   MTCSEC_LLC_SAPI_LL3, &ui);
  if (rv == 0 && (ui.infolen != s->piecelen ||
                  memcmp(ui.info, s->piece, s->piecelen) != 0)) {
    rv = MTCSEC_ERR_MALFORMED;
  }
  return rv;
}

static int ms_dtls_connect(cell *s) {
  s->ssl_rv = SSL_connect(s->dtls->c);
  return 0;
}

/* (b): one piece of a client datagram, sent in a SAPI-3 frame. */
static int ms_dtls_out(cell *s) {
  return llc_put(s, &s->ms_llc, s->msc, ms_ik(s), MTCSEC_3GPP_UPLINK,
                 MTCSEC_LLC_SAPI_LL3, s->piece, s->piecelen);
}

static int ms_dtls_write(cell *s) {
  return SSL_write(s->dtls->c, PAYLOAD, (int)sizeof(PAYLOAD)) ==
             (int)sizeof(PAYLOAD)
           ? 0
           : MTCSEC_ERR_CRYPTO;
}

/* --------------------------------------- network side (not measured) */

static const uint8_t *sg_ik(const cell *s) {
  return (s->policy & CELLSIM_POLICY_INTEGRITY) ? s->vec.ik : NULL;
}

/* ATTACH_REQUEST -> a fresh vector from the AuC -> AUTH_REQUEST. */
static int sg_attach(cell *s) {
  cellsim_radio m;
  uint8_t rand[MTCSEC_3GPP_RAND_LEN];
  int rv = radio_get(s, &m, CELLSIM_ATTACH_REQUEST);
  if (rv != 0) {
    return rv;
  }
  if (memcmp(m.imsi, s->imsi, sizeof(m.imsi)) != 0) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  memset(rand, 0xa5, sizeof(rand));
  s->nrand++;
  rand[12] = (uint8_t)(s->nrand >> 24);
  rand[13] = (uint8_t)(s->nrand >> 16);
  rand[14] = (uint8_t)(s->nrand >> 8);
  rand[15] = (uint8_t)s->nrand;
  rv = mtcsec_auc_gen_vector(USIM_K, USIM_OPC, USIM_AMF, &s->sqn_he, 5, 0, rand,
                             &s->vec);
  if (rv != 0) {
    return rv;
  }
  memset(&m, 0, sizeof(m));
  m.type = CELLSIM_AUTH_REQUEST;
  m.tlli = MS_TLLI;
  memcpy(m.rand, s->vec.rand, sizeof(m.rand));
  memcpy(m.autn, s->vec.autn, sizeof(m.autn));
  return radio_put(s, &m);
}

/* AUTH_RESPONSE: RES == XRES -> ATTACH_ACCEPT with the policy. */
static int sg_auth(cell *s) {
  cellsim_radio m;
  int rv = radio_get(s, &m, CELLSIM_AUTH_RESPONSE);
  if (rv != 0) {
    return rv;
  }
  if (m.reslen != MTCSEC_3GPP_RES_LEN ||
      mtcsec_ct_memcmp(m.res, s->vec.xres, MTCSEC_3GPP_RES_LEN) != 0) {
    return MTCSEC_ERR_MIC;
  }
  s->policy = s->mode == MODE_A ? CELLSIM_POLICY_INTEGRITY : 0;
  memset(&s->sg_llc, 0, sizeof(s->sg_llc));
  memset(&m, 0, sizeof(m));
  m.type = CELLSIM_ATTACH_ACCEPT;
  m.tlli = MS_TLLI;
  m.flags = (uint8_t)s->policy;
  return radio_put(s, &m);
}

/* The request is checked as the SGSN and, for (a), as the GGSN and MTC
 * server would: the container carries this PLMN and the vector's RAND. */
static int sg_activate(cell *s) {
  mtcsec_llc_ui ui;
  cellsim_sm m;
  mtcsec_pco pco;
  uint8_t rand[MTCSEC_3GPP_RAND_LEN], sm[8];
  mtcsec_ssize n;
  int rv = llc_get(s, &s->sg_llc, s->net, sg_ik(s), MTCSEC_3GPP_UPLINK,
                   MTCSEC_LLC_SAPI_LLGMM, &ui);
  if (rv == 0) {
    rv = cellsim_sm_decode(&m, ui.info, ui.infolen);
  }
  if (rv == 0 && m.type != CELLSIM_SM_ACTIVATE_REQUEST) {
    rv = MTCSEC_ERR_MALFORMED;
  }
  if (rv == 0) {
    n = mtcsec_pco_decode(&pco, MTCSEC_PCO_BARE, m.pco, m.pcolen);
    rv = n < 0 ? (int)n : 0;
  }
  if (rv == 0 && s->mode == MODE_A) {
    rv = mtcsec_pco_find_rand(&pco, s->plmn, NULL, rand);
    if (rv == 0 && memcmp(rand, s->vec.rand, sizeof(rand)) != 0) {
      rv = MTCSEC_ERR_MISMATCH;
    }
  } else if (rv == 0 && pco.nunits != 0) {
    rv = MTCSEC_ERR_MALFORMED;
  }
  if (rv != 0) {
    return rv;
  }
  m.ti = (uint8_t)(m.ti ^ 0x08); /* the receiving side's TI flag */
  m.type = CELLSIM_SM_ACTIVATE_ACCEPT;
  m.pco = NULL;
  m.pcolen = 0;
  n = cellsim_sm_encode(&m, sm, sizeof(sm));
  if (n < 0) {
    return (int)n;
  }
  return llc_put(s, &s->sg_llc, s->net, sg_ik(s), MTCSEC_3GPP_DOWNLINK,
                 MTCSEC_LLC_SAPI_LLGMM, sm, (size_t)n);
}

/* (a): the SGSN checks the MAC-I; the MTC server gets K_UP for (IMSI,
 * RAND) from the home proxy (which holds CK and IK of the vector), derives
 * the record keys and opens the record. */
static int sg_payload_a(cell *s) {
  mtcsec_llc_ui ui;
  uint8_t kup[MTCSEC_KUP_LEN], pt[PT_LEN + 64];
  mtcsec_up_keys keys;
  mtcsec_chan srv;
  mtcsec_ssize n;
  int rv = llc_get(s, &s->sg_llc, s->net, sg_ik(s), MTCSEC_3GPP_UPLINK,
                   MTCSEC_LLC_SAPI_LL3, &ui);
  if (rv != 0) {
    return rv;
  }
  rv = mtcsec_kup_derive(s->net, s->vec.ck, s->vec.ik, BENCH_SRV, s->vec.rand,
                         kup);
  if (rv == 0) {
    rv = mtcsec_up_keys_derive(s->net, kup, s->imsi, &keys);
  }
  if (rv == 0) {
    rv =
      mtcsec_chan_init_keys(&srv, s->net, MTCSEC_SUITE_CMAC_AES128, keys.dl_key,
                            keys.dl_iv, keys.ul_key, keys.ul_iv, 0, UINT64_MAX);
  }
  mtcsec_zeroize(kup, sizeof(kup));
  mtcsec_zeroize(&keys, sizeof(keys));
  if (rv != 0) {
    return rv;
  }
  n = mtcsec_chan_open(&srv, pt, sizeof(pt), ui.info, ui.infolen, 1000);
  mtcsec_chan_deinit(&srv);
  if (n < 0) {
    return (int)n;
  }
  return (size_t)n == sizeof(PAYLOAD) && memcmp(pt, PAYLOAD, (size_t)n) == 0
           ? 0
           : MTCSEC_ERR_MISMATCH;
}

static int sg_payload_p(cell *s) {
  mtcsec_llc_ui ui;
  int rv = llc_get(s, &s->sg_llc, s->net, sg_ik(s), MTCSEC_3GPP_UPLINK,
                   MTCSEC_LLC_SAPI_LL3, &ui);
  if (rv == 0 && (ui.infolen != sizeof(PAYLOAD) ||
                  memcmp(ui.info, PAYLOAD, sizeof(PAYLOAD)) != 0)) {
    rv = MTCSEC_ERR_MISMATCH;
  }
  return rv;
}

static int sg_dtls_in(cell *s) {
  mtcsec_llc_ui ui;
  int rv = llc_get(s, &s->sg_llc, s->net, sg_ik(s), MTCSEC_3GPP_UPLINK,
                   MTCSEC_LLC_SAPI_LL3, &ui);
  if (rv == 0 && (ui.infolen != s->piecelen ||
                  memcmp(ui.info, s->piece, s->piecelen) != 0)) {
    rv = MTCSEC_ERR_MALFORMED;
  }
  return rv;
}

static int sg_dtls_out(cell *s) {
  return llc_put(s, &s->sg_llc, s->net, sg_ik(s), MTCSEC_3GPP_DOWNLINK,
                 MTCSEC_LLC_SAPI_LL3, s->piece, s->piecelen);
}

/* --------------------------------------------------------- the tally */

/* Records the datagram in flight (not measured). */
static void note(cell *s, int up, cell_part part, const char *what) {
  cell_tally *t = s->t;
  cell_msg *m;
  cellsim_radio r;
  size_t trailer = (s->policy & CELLSIM_POLICY_INTEGRITY) ? MTCSEC_LLC_MACI_LEN
                                                          : MTCSEC_LLC_FCS_LEN;
  int rv = cellsim_radio_decode(&r, s->air, s->airlen);
  BENCH_CHECK(rv == 0 && t->n < MAX_MSGS, "tally", rv);
  m = &t->m[t->n++];
  memset(m, 0, sizeof(*m));
  m->up = up;
  m->part = part;
  m->radio = s->airlen;
  if (r.type == CELLSIM_LLC) {
    m->llc = r.llclen;
    m->info = r.llclen - MTCSEC_LLC_UI_HDR_LEN - trailer;
  }
  snprintf(m->what, sizeof(m->what), "%s", what);
}

/* Frames the datagram at (buf, len) in pieces of at most N201-U octets,
 * sealed by one side, opened by the other. */
static void frame_dgram(cell *s, int up, const uint8_t *buf, size_t len,
                        const char *what) {
  size_t off;
  for (off = 0; off < len; off += N201_U_LL3) {
    s->piece = buf + off;
    s->piecelen = len - off < N201_U_LL3 ? len - off : N201_U_LL3;
    if (up) {
      ms(s, ms_dtls_out, "MS: DTLS datagram into LLC");
      note(s, 1, PART_HANDSHAKE, what);
      net(s, sg_dtls_in, "SGSN: DTLS datagram out of LLC");
    } else {
      net(s, sg_dtls_out, "SGSN: DTLS datagram into LLC");
      note(s, 0, PART_HANDSHAKE, what);
      ms(s, ms_dtls_in, "MS: DTLS datagram out of LLC");
    }
  }
}

/* The datagrams one side queued since the last call: the newest entries
 * of its outbound queue (the peer has not read them yet). */
static void frame_new(cell *s, int up) {
  bench_dtls_pair *p = s->dtls;
  bench_dgram_queue *q = up ? &p->to_server : &p->to_client;
  size_t *done = up ? &s->dtls_up : &s->dtls_down;
  size_t sent = p->st.dgrams[up ? 0 : 1], i;

  BENCH_CHECK(sent - *done <= q->count, "DTLS datagram framing",
              MTCSEC_ERR_INVALID_STATE);
  for (i = q->count - (sent - *done); i < q->count; i++) {
    size_t k = (q->head + i) % BENCH_DGRAM_QUEUE;
    frame_dgram(s, up, q->buf[k], q->len[k],
                up ? "LLC SAPI 3 DTLS client datagram"
                   : "LLC SAPI 3 DTLS server datagram");
  }
  *done = sent;
}

static cell *g_cell; /* for the client-step callback */

/* One client step of the handshake: the server's new datagrams reach the
 * MS over the radio, SSL_connect(), the client's go out over it. */
static int dtls_client_step(SSL *ssl) {
  cell *s = g_cell;
  (void)ssl;
  frame_new(s, 0);
  ms(s, ms_dtls_connect, "MS: SSL_connect");
  frame_new(s, 1);
  return s->ssl_rv;
}

/* One exchange from power-on to the first protected payload. */
static void run_exchange(cell *s, cell_tally *t) {
  memset(t, 0, sizeof(*t));
  s->t = t;
  s->policy = 0;
  s->ms_policy = 0;
  if (s->ms_chan_live) {
    mtcsec_chan_deinit(&s->ms_chan);
    s->ms_chan_live = 0;
  }
  ms(s, ms_attach, "MS: ATTACH_REQUEST");
  note(s, 1, PART_ATTACH, "ATTACH_REQUEST");
  net(s, sg_attach, "SGSN: AUTH_REQUEST");
  note(s, 0, PART_ATTACH, "AUTH_REQUEST");
  ms(s, ms_auth, "MS: AKA");
  note(s, 1, PART_ATTACH, "AUTH_RESPONSE");
  net(s, sg_auth, "SGSN: RES check");
  note(s, 0, PART_ATTACH, "ATTACH_ACCEPT");
  ms(s, ms_attached, "MS: ATTACH_ACCEPT");
  ms(s, ms_activate, "MS: ACTIVATE_PDP_CONTEXT_REQUEST");
  note(s, 1, PART_PDP,
       s->mode == MODE_A ? "LLC SAPI 1 ACTIVATE_PDP_CONTEXT_REQUEST, PCO 0xff00"
                         : "LLC SAPI 1 ACTIVATE_PDP_CONTEXT_REQUEST");
  net(s, sg_activate, "SGSN: PDP context");
  note(s, 0, PART_PDP, "LLC SAPI 1 ACTIVATE_PDP_CONTEXT_ACCEPT");
  ms(s, ms_activated, "MS: ACTIVATE_PDP_CONTEXT_ACCEPT");

  if (s->mode == MODE_A) {
    ms(s, ms_payload_a, "MS: payload record");
    note(s, 1, PART_PAYLOAD, "LLC SAPI 3 payload record (AES-CCM)");
    net(s, sg_payload_a, "SGSN and MTC server: payload record");
  } else if (s->mode == MODE_P) {
    ms(s, ms_payload_p, "MS: plain payload");
    note(s, 1, PART_PAYLOAD, "LLC SAPI 3 payload in clear");
    net(s, sg_payload_p, "SGSN: plain payload");
  } else {
    bench_dtls_pair *p = s->dtls;
    unsigned char back[64];
    size_t before;
    int n;
    s->dtls_up = 0;
    s->dtls_down = 0;
    g_cell = s;
    BENCH_CHECK(bench_dtls_handshake(p, dtls_client_step) == 0,
                "DTLS handshake", MTCSEC_ERR_CRYPTO);
    BENCH_CHECK(s->dtls_up == p->st.dgrams[0] &&
                  s->dtls_down == p->st.dgrams[1],
                "every DTLS datagram framed", MTCSEC_ERR_INVALID_STATE);
    before = t->n;
    ms(s, ms_dtls_write, "MS: SSL_write");
    frame_new(s, 1);
    for (; before < t->n; before++) {
      t->m[before].part = PART_PAYLOAD;
      snprintf(t->m[before].what, sizeof(t->m[before].what), "%s",
               "LLC SAPI 3 DTLS application record");
    }
    n = SSL_read(p->s, back, (int)sizeof(back));
    BENCH_CHECK(n == (int)sizeof(PAYLOAD) &&
                  memcmp(back, PAYLOAD, sizeof(PAYLOAD)) == 0,
                "DTLS server reads the record", n);
  }
}

static void cell_init(cell *s, cell_mode mode, const mtcsec_crypto *msc,
                      const mtcsec_crypto *netc, bench_dtls_pair *dtls) {
  int rv;
  memset(s, 0, sizeof(*s));
  s->mode = mode;
  s->msc = msc;
  s->net = netc;
  s->dtls = dtls;
  rv = mtcsec_imsi_to_tbcd(USIM_IMSI, strlen(USIM_IMSI), s->imsi);
  BENCH_CHECK(rv == 0, "mtcsec_imsi_to_tbcd", rv);
  rv = mtcsec_plmn_encode(&USIM_PLMN, s->plmn);
  BENCH_CHECK(rv == 0, "mtcsec_plmn_encode", rv);
  rv = mtcsec_sqn_ms_init(&s->usim, 5);
  BENCH_CHECK(rv == 0, "mtcsec_sqn_ms_init", rv);
}

static void cell_free(cell *s) {
  if (s->ms_chan_live) {
    mtcsec_chan_deinit(&s->ms_chan);
  }
  mtcsec_zeroize(s, sizeof(*s));
}

/* ------------------------------------------------------------ totals */

typedef struct sums {
  size_t bytes, up, down, msgs, frames, bare; /* bare: without radio hdr */
  size_t part_bytes[NPARTS], part_msgs[NPARTS];
  size_t hs_dtls;  /* DTLS handshake bytes alone (UDP payloads) */
  size_t pay_info; /* the first payload's information field */
} sums;

static void sum(const cell_tally *t, sums *o) {
  size_t i;
  memset(o, 0, sizeof(*o));
  for (i = 0; i < t->n; i++) {
    const cell_msg *m = &t->m[i];
    o->bytes += m->radio;
    o->bare += m->radio - CELLSIM_RADIO_HDR_LEN;
    *(m->up ? &o->up : &o->down) += m->radio;
    o->msgs++;
    o->frames += m->llc > 0;
    o->part_bytes[m->part] += m->radio;
    o->part_msgs[m->part]++;
    if (m->part == PART_HANDSHAKE) {
      o->hs_dtls += m->info;
    } else if (m->part == PART_PAYLOAD) {
      o->pay_info += m->info;
    }
  }
}

static void print_case(const char *tag, const char *title, const cell_tally *t,
                       const sums *o) {
  size_t i;
  printf("# case %s: %s\n", tag, title);
  printf("#  %-2s %-4s %-52s %5s %5s %5s\n", "n", "dir", "message", "radio",
         "llc", "info");
  for (i = 0; i < t->n; i++) {
    const cell_msg *m = &t->m[i];
    char llc[16], info[16];
    snprintf(llc, sizeof(llc), "%zu", m->llc);
    snprintf(info, sizeof(info), "%zu", m->info);
    printf("#  %-2zu %-4s %-52s %5zu %5s %5s\n", i + 1, m->up ? "up" : "down",
           m->what, m->radio, m->llc ? llc : "-", m->llc ? info : "-");
  }
  printf("case %s bytes=%zu messages=%zu up=%zu down=%zu llc_frames=%zu "
         "without_radio_hdr=%zu",
         tag, o->bytes, o->msgs, o->up, o->down, o->frames, o->bare);
  for (i = 0; i < NPARTS; i++) {
    if (o->part_msgs[i] > 0) {
      printf(" %s=%zu/%zu", PART_KEY[i], o->part_bytes[i], o->part_msgs[i]);
    }
  }
  printf("\n");
}

/* ------------------------------------------------ (c): direct, suite 1 */

static int dev_persist(void *ud, uint64_t next) {
  (void)ud;
  (void)next;
  return 0;
}

static const mtcsec_dev_callbacks DEV_CB = {dev_persist, NULL};

/* M0, M1, M4 and the first record of a direct suite-1 establishment, as
 * the roles return them (the server link, M2/M3 over TLS, is not on the
 * device link). */
static void direct_case(const mtcsec_crypto *c, size_t len[4]) {
  static mtcsec_dev_session sess[1];
  uint8_t psk[16], buf[512], pt[PT_LEN];
  mtcsec_store_device sd;
  mtcsec_store_mem *store = NULL;
  mtcsec_srv *srv = NULL;
  mtcsec_ue *ue = NULL;
  mtcsec_srv_config scfg;
  mtcsec_ue_config ucfg;
  mtcsec_dev_config dcfg;
  mtcsec_dev dev;
  mtcsec_link link;
  uint64_t peer, conn;
  mtcsec_ssize n;
  int rv;

  bench_dev_psk(psk, sizeof(psk), 0xa1);
  mtcsec_dev_config_default(&dcfg);
  dcfg.suite = MTCSEC_SUITE_CMAC_AES128;
  bench_dev_id(dcfg.mtcd_id, 0xa1);
  memcpy(dcfg.mtcs_id, BENCH_SRV, MTCSEC_ID_LEN);
  dcfg.pskey = psk;
  dcfg.sessions = sess;
  dcfg.nsessions = 1;
  dcfg.m0_interval = 0;
  rv = mtcsec_dev_init(&dev, &dcfg, c, &DEV_CB, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_dev_init", rv);
  rv = mtcsec_store_mem_new(&store, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_new", rv);
  memset(&sd, 0, sizeof(sd));
  sd.suite = MTCSEC_SUITE_CMAC_AES128;
  rv = mtcsec_derive_device_keys(c, sd.suite, psk, dcfg.mtcd_id, BENCH_SRV,
                                 sd.k_auth, sd.k_dm);
  BENCH_CHECK(rv == 0, "mtcsec_derive_device_keys", rv);
  rv = mtcsec_store_mem_add_device(store, dcfg.mtcd_id, &sd);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_add_device", rv);
  mtcsec_zeroize(&sd, sizeof(sd));
  rv = mtcsec_store_mem_grant(store, dcfg.mtcd_id, BENCH_UE, 0x0f, 3600);
  BENCH_CHECK(rv == 0, "mtcsec_store_mem_grant", rv);
  mtcsec_srv_config_default(&scfg);
  memcpy(scfg.mtcs_id, BENCH_SRV, MTCSEC_ID_LEN);
  rv = mtcsec_srv_new(&srv, &scfg, c, &mtcsec_store_mem_ops, store, NULL, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_srv_new", rv);
  mtcsec_ue_config_default(&ucfg);
  memcpy(ucfg.ueid, BENCH_UE, MTCSEC_ID_LEN);
  rv = mtcsec_ue_new(&ue, &ucfg, c, NULL, NULL);
  BENCH_CHECK(rv == 0, "mtcsec_ue_new", rv);

  n = mtcsec_ue_m0(ue, buf, sizeof(buf), 0x03);
  BENCH_CHECK(n > 0, "mtcsec_ue_m0", n);
  len[0] = (size_t)n;
  rv = mtcsec_dev_read(&dev, buf, (size_t)n, 1, 2000);
  BENCH_CHECK(rv == 0, "mtcsec_dev_read (M0)", rv);
  n = mtcsec_dev_write(&dev, buf, sizeof(buf), &peer, 2000);
  BENCH_CHECK(n > 0, "mtcsec_dev_write (M1)", n);
  len[1] = (size_t)n;
  rv = mtcsec_ue_read_device(ue, buf, (size_t)n, 2, 2000);
  BENCH_CHECK(rv == 0, "mtcsec_ue_read_device", rv);
  n = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, 2000);
  BENCH_CHECK(n > 0 && link == MTCSEC_LINK_SERVER, "mtcsec_ue_write (M2)", n);
  rv = mtcsec_srv_recv(srv, 1, BENCH_UE, buf, (size_t)n, 2000);
  BENCH_CHECK(rv == 0, "mtcsec_srv_recv", rv);
  rv = mtcsec_srv_commit(srv, 2000);
  BENCH_CHECK(rv == 0, "mtcsec_srv_commit", rv);
  n = mtcsec_srv_write(srv, buf, sizeof(buf), &conn);
  BENCH_CHECK(n > 0 && buf[2] == MTCSEC_MSG_M3, "mtcsec_srv_write (M3)", n);
  rv = mtcsec_ue_read_server(ue, buf, (size_t)n, 2000);
  BENCH_CHECK(rv == 0, "mtcsec_ue_read_server", rv);
  n = mtcsec_ue_write(ue, buf, sizeof(buf), &link, &peer, 2000);
  BENCH_CHECK(n > 0 && link == MTCSEC_LINK_DEVICE, "mtcsec_ue_write (M4)", n);
  len[2] = (size_t)n;
  rv = mtcsec_dev_read(&dev, buf, (size_t)n, 1, 2000);
  BENCH_CHECK(rv == 0, "mtcsec_dev_read (M4)", rv);
  memset(pt, 0x42, sizeof(pt));
  n = mtcsec_dev_seal(&dev, (uint16_t)(mtcsec_store_mem_sessions(store) - 1),
                      buf, sizeof(buf), pt, sizeof(pt), 2000);
  BENCH_CHECK(n > 0, "mtcsec_dev_seal", n);
  len[3] = (size_t)n;

  mtcsec_ue_del(ue);
  mtcsec_srv_del(srv);
  mtcsec_store_mem_del(store);
  mtcsec_dev_deinit(&dev);
  mtcsec_zeroize(psk, sizeof(psk));
}

/* ------------------------------------------------------------ bytes */

static double ratio(size_t a, size_t b) {
  return a > 0 ? (double)b / (double)a : 0.0;
}

static int bytes_main(const mtcsec_crypto *c) {
  static bench_dtls_pair dtls;
  static cell_tally ta, tb[2], tp;
  static cell s;
  sums a, b[2], p;
  size_t direct[4], c_total, a_rec, b_rec[2], a_sec, b_sec[2];
  int cookie;

  cell_init(&s, MODE_A, c, c, NULL);
  run_exchange(&s, &ta);
  cell_free(&s);
  cell_init(&s, MODE_P, c, c, NULL);
  run_exchange(&s, &tp);
  cell_free(&s);
  for (cookie = 1; cookie >= 0; cookie--) {
    BENCH_CHECK(bench_dtls_init(&dtls, cookie) == 0, "bench_dtls_init",
                MTCSEC_ERR_CRYPTO);
    cell_init(&s, MODE_B, c, c, &dtls);
    run_exchange(&s, &tb[cookie]);
    cell_free(&s);
    bench_dtls_free(&dtls);
  }
  direct_case(c, direct);

  sum(&ta, &a);
  sum(&tb[1], &b[1]);
  sum(&tb[0], &b[0]);
  sum(&tp, &p);
  printf("# bench_cellular: radio side MS <-> SGSN, power-on (ATTACH_REQUEST) "
         "to the first protected uplink payload (%d B of plaintext) "
         "included, both directions; radio = the agents' datagram "
         "(6-byte simulated header + body), llc = its LLC frame, info = the "
         "frame's information field; OpenSSL %s\n",
         PT_LEN, OpenSSL_version(OPENSSL_VERSION_STRING));
  print_case("a", "this mode: MAC-I frames, RAND in PCO 0xFF00, AES-CCM record",
             &ta, &a);
  print_case("b", "DTLS 1.2 PSK-AES128-CCM8 with cookie exchange, FCS frames",
             &tb[1], &b[1]);
  print_case("b_nocookie", "the same without the cookie exchange", &tb[0],
             &b[0]);
  print_case("p",
             "plain baseline: FCS frames, no PCO container, payload in "
             "clear",
             &tp, &p);
  c_total = direct[0] + direct[1] + direct[2] + direct[3];
  printf("# case c: direct MTCd-UE protocol (PROTOCOL.md, suite 1), device "
         "link UDP payloads\n");
  printf("case c bytes=%zu messages=4 M0=%zu M1=%zu M4=%zu record=%zu\n",
         c_total, direct[0], direct[1], direct[2], direct[3]);

  /* Security-specific parts, against the plain baseline (p): what a case
   * sends beyond it, less the first record's own protection (its record
   * header and tag: the payload's information field minus the plaintext),
   * is what establishing security costs: for (a) the PCO container and the
   * MAC-I in place of the FCS of every frame, for (b) the DTLS handshake
   * frames. */
  a_rec = a.pay_info - PT_LEN;
  a_sec = a.bytes - p.bytes - a_rec;
  for (cookie = 0; cookie <= 1; cookie++) {
    b_rec[cookie] = b[cookie].pay_info - PT_LEN;
    b_sec[cookie] = b[cookie].bytes - p.bytes - b_rec[cookie];
  }
  printf("# ratios b/a (target: a <= b/10, i.e. b/a >= 10)\n");
  printf("whole a=%zu b=%zu b/a=%.2f b_nocookie=%zu b_nocookie/a=%.2f "
         "c=%zu\n",
         a.bytes, b[1].bytes, ratio(a.bytes, b[1].bytes), b[0].bytes,
         ratio(a.bytes, b[0].bytes), c_total);
  printf("whole_without_radio_hdr a=%zu b=%zu b/a=%.2f b_nocookie=%zu "
         "b_nocookie/a=%.2f\n",
         a.bare, b[1].bare, ratio(a.bare, b[1].bare), b[0].bare,
         ratio(a.bare, b[0].bare));
  printf("security a=%zu b=%zu b/a=%.2f b_nocookie=%zu b_nocookie/a=%.2f "
         "(above the plain baseline, first record's protection excluded: "
         "a = PCO container + MAC-I instead of FCS, b = DTLS handshake "
         "frames)\n",
         a_sec, b_sec[1], ratio(a_sec, b_sec[1]), b_sec[0],
         ratio(a_sec, b_sec[0]));
  printf("security_dtls_only a=%zu b=%zu b/a=%.2f b_nocookie=%zu "
         "b_nocookie/a=%.2f (b = the DTLS handshake datagrams alone, no LLC "
         "or radio header)\n",
         a_sec, b[1].hs_dtls, ratio(a_sec, b[1].hs_dtls), b[0].hs_dtls,
         ratio(a_sec, b[0].hs_dtls));
  printf("security_with_record a=%zu b=%zu b/a=%.2f b_nocookie=%zu "
         "b_nocookie/a=%.2f (everything above the plain baseline; record "
         "overhead a=%zu b=%zu)\n",
         a_sec + a_rec, b_sec[1] + b_rec[1],
         ratio(a_sec + a_rec, b_sec[1] + b_rec[1]), b_sec[0] + b_rec[0],
         ratio(a_sec + a_rec, b_sec[0] + b_rec[0]), a_rec, b_rec[1]);
  printf("target whole: %s (with cookie), %s (without); security-specific: "
         "%s (with cookie), %s (without)\n",
         a.bytes * 10 <= b[1].bytes ? "MET" : "NOT MET",
         a.bytes * 10 <= b[0].bytes ? "MET" : "NOT MET",
         a_sec * 10 <= b_sec[1] ? "MET" : "NOT MET",
         a_sec * 10 <= b_sec[0] ? "MET" : "NOT MET");
  return 0;
}

/* ------------------------------------------------------ instructions */

#ifdef MTCSEC_BENCH_MBEDTLS
/* The device's TRNG stand-in, as bench_device.c: splitmix64.  Not a
 * secure generator; enough for counting instructions. */
static int bench_rng(void *ctx, unsigned char *out, size_t len) {
  uint64_t *st = ctx;
  size_t i;
  for (i = 0; i < len; i++) {
    uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    out[i] = (uint8_t)(z ^ (z >> 31));
  }
  return 0;
}
#endif

static int ir_main(const char *which, unsigned long n, const char *provider,
                   const mtcsec_crypto *netc) {
  static bench_dtls_pair dtls;
  static cell_tally t;
  static cell s;
  mtcsec_crypto msc = *netc;
#ifdef MTCSEC_BENCH_MBEDTLS
  static mtcsec_mbedtls_state mbed;
  static uint64_t rng_state = 0x6d7463736563ULL;
#endif
  cell_mode mode = strcmp(which, "a") == 0 ? MODE_A : MODE_B;
  unsigned long i;

  if (strcmp(provider, "mbedtls") == 0) {
#ifdef MTCSEC_BENCH_MBEDTLS
    int rv = mtcsec_crypto_mbedtls_init(&msc, &mbed, bench_rng, &rng_state);
    BENCH_CHECK(rv == 0, "mtcsec_crypto_mbedtls_init", rv);
#else
    fprintf(stderr, "bench_cellular: built without Mbed TLS\n");
    return 2;
#endif
  } else if (strcmp(provider, "openssl") != 0) {
    return 2;
  }
  if (mode == MODE_B) {
    BENCH_CHECK(bench_dtls_init(&dtls, 1) == 0, "bench_dtls_init",
                MTCSEC_ERR_CRYPTO);
  }
  cell_init(&s, mode, &msc, netc, mode == MODE_B ? &dtls : NULL);
  for (i = 0; i <= n; i++) {
    s.measure = i > 0; /* exchange 0 warms up */
    run_exchange(&s, &t);
  }
  printf("# bench_cellular: case %s, MS provider %s, %lu measured exchanges "
         "(+1 warm-up); collect bench_cell_ms_step\n",
         which, provider, n);
  cell_free(&s);
  if (mode == MODE_B) {
    bench_dtls_free(&dtls);
  }
#ifdef MTCSEC_BENCH_MBEDTLS
  if (msc.ops != netc->ops) {
    mtcsec_crypto_mbedtls_free(&msc);
  }
#endif
  return 0;
}

/* --------------------------------------------------------- report */

/* "function count" lines (callgrind_annotate --inclusive=yes, reduced). */
typedef struct irfile {
  char name[64][64];
  unsigned long long v[64];
  size_t n;
  int ok;
} irfile;

static const char *const IR_FUNCS[] = {"bench_cell_ms_step",
                                       "mtcsec_aka_ms",
                                       "mtcsec_kup_derive",
                                       "mtcsec_up_keys_derive",
                                       "mtcsec_chan_init_keys",
                                       "cellsim_llc_seal",
                                       "cellsim_llc_open",
                                       "mtcsec_llc_ui_encode_mac",
                                       "mtcsec_llc_ui_decode_mac",
                                       "mtcsec_chan_seal",
                                       "SSL_connect",
                                       "SSL_write",
                                       "cellsim_radio_encode",
                                       "cellsim_radio_decode",
                                       "cellsim_sm_encode",
                                       "cellsim_sm_decode",
                                       "mtcsec_pco_encode",
                                       "mtcsec_pco_rand_encode"};
#define NIR (sizeof(IR_FUNCS) / sizeof(IR_FUNCS[0]))

static void ir_load(irfile *f, const char *path) {
  char line[1024], name[1024];
  unsigned long long v;
  size_t k;
  FILE *fp;
  memset(f, 0, sizeof(*f));
  if (path == NULL || (fp = fopen(path, "r")) == NULL) {
    return;
  }
  while (fgets(line, sizeof(line), fp) != NULL) {
    if (sscanf(line, "%1023s %llu", name, &v) != 2) {
      continue;
    }
    for (k = 0; k < NIR; k++) {
      if (strcmp(name, IR_FUNCS[k]) == 0 && f->n < 64) {
        memcpy(f->name[f->n], IR_FUNCS[k], strlen(IR_FUNCS[k]) + 1);
        f->v[f->n++] = v;
        break;
      }
    }
  }
  fclose(fp);
  f->ok = f->n > 0;
}

/* The first (largest: callgrind_annotate sorts) count of fn, or 0. */
static unsigned long long ir_get(const irfile *f, const char *fn) {
  size_t i;
  for (i = 0; i < f->n; i++) {
    if (strcmp(f->name[i], fn) == 0) {
      return f->v[i];
    }
  }
  return 0;
}

/* bench_device's device_ir.txt: "provider function total own". */
static unsigned long long device_ir(const char *path, const char *prov) {
  char p[64], fn[64];
  unsigned long long v, own, s = 0;
  FILE *fp = path != NULL ? fopen(path, "r") : NULL;
  if (fp == NULL) {
    return 0;
  }
  while (fscanf(fp, "%63s %63s %llu %llu", p, fn, &v, &own) == 4) {
    if (strcmp(p, prov) == 0 && strcmp(fn, "bench_dev_init") != 0) {
      s += v;
    }
  }
  fclose(fp);
  return s;
}

/* One case's per-exchange counts. */
typedef struct ir_case {
  unsigned long long total, aka, llc, security;
} ir_case;

static void report_case(const char *tag, const irfile *f, unsigned long n,
                        ir_case *o) {
  unsigned long long t = ir_get(f, "bench_cell_ms_step") / n;
  unsigned long long parts[8], rest;
  static const char *const label[8] = {
    "AKA (mtcsec_aka_ms)",
    "K_UP (mtcsec_kup_derive)",
    "record keys (mtcsec_up_keys_derive)",
    "channel set-up (mtcsec_chan_init_keys)",
    "LLC frames sealed and opened (cellsim_llc_seal/open)",
    "payload seal (mtcsec_chan_seal)",
    "DTLS handshake (SSL_connect)",
    "DTLS first record (SSL_write)"};
  unsigned long long mac = (ir_get(f, "mtcsec_llc_ui_encode_mac") +
                            ir_get(f, "mtcsec_llc_ui_decode_mac")) /
                           n;
  size_t i;

  parts[0] = ir_get(f, "mtcsec_aka_ms") / n;
  parts[1] = ir_get(f, "mtcsec_kup_derive") / n;
  parts[2] = ir_get(f, "mtcsec_up_keys_derive") / n;
  parts[3] = ir_get(f, "mtcsec_chan_init_keys") / n;
  parts[4] =
    (ir_get(f, "cellsim_llc_seal") + ir_get(f, "cellsim_llc_open")) / n;
  parts[5] = ir_get(f, "mtcsec_chan_seal") / n;
  parts[6] = ir_get(f, "SSL_connect") / n;
  parts[7] = ir_get(f, "SSL_write") / n;
  rest = t;
  printf("ir %s total %llu\n", tag, t);
  for (i = 0; i < 8; i++) {
    if (parts[i] > 0) {
      printf("ir %s part %llu %s\n", tag, parts[i], label[i]);
      rest -= parts[i] <= rest ? parts[i] : rest;
    }
  }
  printf("ir %s part %llu codecs and the rest (radio/SM/PCO encoding, "
         "decoding)\n",
         tag, rest);
  if (mac > 0) {
    printf("ir %s of_llc %llu MAC-I computed (mtcsec_llc_ui_encode_mac) "
           "%llu MAC-I verified (mtcsec_llc_ui_decode_mac)\n",
           tag, ir_get(f, "mtcsec_llc_ui_encode_mac") / n,
           ir_get(f, "mtcsec_llc_ui_decode_mac") / n);
  }
  o->total = t;
  o->aka = parts[0];
  o->llc = parts[4];
  /* What security costs beyond a plain attach: (a) K_UP, the record keys
   * and channel, every MAC-I computed or verified, the payload seal; (b)
   * the DTLS handshake and record. */
  o->security =
    parts[1] + parts[2] + parts[3] + mac + parts[5] + parts[6] + parts[7];
}

static double ir_ratio(unsigned long long a, unsigned long long b) {
  return a > 0 ? (double)b / (double)a : 0.0;
}

static void report_ratio(const char *tag, const ir_case *a, const ir_case *b) {
  printf("ir ratio b/%s total %.1f; without AKA (common to both; the USIM's "
         "work) %.1f; without AKA and LLC framing (a modem's work) %.1f; "
         "security-specific only (%llu vs %llu) %.1f\n",
         tag, ir_ratio(a->total, b->total),
         ir_ratio(a->total - a->aka, b->total - b->aka),
         ir_ratio(a->total - a->aka - a->llc, b->total - b->aka - b->llc),
         a->security, b->security, ir_ratio(a->security, b->security));
}

static int report_main(int argc, char **argv) {
  static irfile fa, fb, fam;
  unsigned long n = bench_parse_ul(argv[0], "N");
  ir_case ca, cb, cam;
  unsigned long long dev_o, dev_m;
  if (n == 0 || argc < 3) {
    return 2;
  }
  ir_load(&fa, argv[1]);
  ir_load(&fb, argv[2]);
  ir_load(&fam, argc > 4 ? argv[4] : NULL);
  if (!fa.ok || !fb.ok) {
    fprintf(stderr, "bench_cellular: no counts in %s or %s\n", argv[1],
            argv[2]);
    return 1;
  }
  dev_o = device_ir(argc > 3 ? argv[3] : NULL, "openssl");
  dev_m = device_ir(argc > 3 ? argv[3] : NULL, "mbedtls");
  printf("# MS instructions per exchange (callgrind, %lu exchanges after a "
         "warm-up, bench_cell_ms_step)\n",
         n);
  report_case("a", &fa, n, &ca);
  if (fam.ok) {
    report_case("a_mbedtls", &fam, n, &cam);
  }
  report_case("b", &fb, n, &cb);
  if (dev_o > 0) {
    printf("ir c total %llu (bench_device, OpenSSL provider: M0->M1 + "
           "M4->established; the first record's seal is not in it)\n",
           dev_o);
  }
  if (dev_m > 0) {
    printf("ir c_mbedtls total %llu (bench_device, Mbed TLS provider)\n",
           dev_m);
  }
  report_ratio("a", &ca, &cb);
  if (fam.ok) {
    report_ratio("a_mbedtls", &cam, &cb);
  }
  return 0;
}

/* ------------------------------------------------------------- main */

static void usage(void) {
  fprintf(stderr,
          "usage: bench_cellular\n"
          "       bench_cellular --only a|b [--n N] "
          "[--provider openssl|mbedtls]\n"
          "       bench_cellular --report N A_FILE B_FILE [DEVICE_IR_FILE] "
          "[A_MBEDTLS_FILE]\n");
  exit(2);
}

int main(int argc, char **argv) {
  mtcsec_crypto c;
  const char *only = NULL, *provider = "openssl";
  unsigned long n = 10;
  int a, rv;

  if (argc > 1 && strcmp(argv[1], "--report") == 0) {
    if (argc < 5) {
      usage();
    }
    return report_main(argc - 2, argv + 2);
  }
  for (a = 1; a < argc; a++) {
    if (a + 1 >= argc) {
      usage();
    }
    if (strcmp(argv[a], "--only") == 0) {
      only = argv[++a];
    } else if (strcmp(argv[a], "--n") == 0) {
      n = bench_parse_ul(argv[++a], "--n");
    } else if (strcmp(argv[a], "--provider") == 0) {
      provider = argv[++a];
    } else {
      usage();
    }
  }
  if (n == 0 || n > MAX_N ||
      (only != NULL && strcmp(only, "a") != 0 && strcmp(only, "b") != 0)) {
    usage();
  }
  rv = mtcsec_crypto_openssl_new(&c);
  BENCH_CHECK(rv == 0, "mtcsec_crypto_openssl_new", rv);
  rv = only != NULL ? ir_main(only, n, provider, &c) : bytes_main(&c);
  mtcsec_crypto_openssl_del(&c);
  if (rv == 2) {
    usage();
  }
  return rv;
}
