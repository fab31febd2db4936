/*
 * `mtcsec ms run`: a simulated cellular IoT device (MS with a USIM) on the
 * "radio" UDP link of docs/CELLULAR-SYSTEM.md section 1.
 *
 * One poll() loop: ATTACH_REQUEST, UMTS AKA at the USIM (mtcsec_aka_ms(),
 * AUTS resynchronisation when SQN is out of range; SQN_MS is written to the
 * state file before AUTH_RESPONSE leaves), then K_UP (P1 = the MTC server
 * ID of the USIM file, P2 = RAND) and the uplink/downlink record keys at
 * once, so that CK lives only for that derivation.  After ATTACH_ACCEPT:
 * Activate PDP Context with RAND in the PCO container 0xFF00 (SAPI 1), then
 * each payload as one AES-CCM record in an LLC SAPI-3 frame (MAC-I with IK,
 * or FCS when the policy has integrity off), one at a time, each waiting for
 * its downlink answer.  Every resend is a new LLC frame (a resent frame
 * would be a replay) and a new record.
 *
 * Nothing on the radio before the attach is authenticated, so a radio
 * attacker can inject any of it (docs/CELLULAR-SYSTEM.md section 1):
 *  - ATTACH_ACCEPT carries the policy in clear.  The MS takes its policy
 *    from the USIM file ("integrity_only", absent = true) and drops an
 *    ATTACH_ACCEPT offering less (no integrity bit): bidding down, TS 33.102
 *    6.4.5.  It keeps waiting for the genuine accept until its timer, and IK
 *    is erased only after an accepted ATTACH_ACCEPT without integrity.
 *  - A challenge whose MAC-A fails gets AUTH_FAILURE 0x14 and changes
 *    nothing: the MS keeps waiting for a genuine challenge until its timer
 *    (TS 24.008 4.7.7.5.1); the network's ATTACH_REJECT or the timer ends
 *    the attach.  Only challenges whose MAC-A verified count toward the
 *    resynchronisation budget; beyond it, stale challenges (old ones
 *    replayed) are dropped unanswered instead of ending the attach.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include <mtcsec/cellular.h>
#include <mtcsec/channel.h>

#include "agent_cell.h"
#include "agent_common.h"
#include "app.h"
#include "cellsim.h"
#include "cli.h"

#define MS_MAX_SEND 64
#define MS_TEXT_MAX 1024
#define MS_NSAPI 5
#define MS_MAX_RESYNC 2

typedef enum ms_state {
  MS_ATTACHING = 0, /* ATTACH_REQUEST sent */
  MS_AUTHENTICATING,
  MS_ACTIVATING, /* ACTIVATE_PDP_CONTEXT_REQUEST sent */
  MS_SENDING,    /* a payload is outstanding */
  MS_PAUSED,     /* waiting --interval before the next payload */
  MS_DONE
} ms_state;

typedef struct ms_agent {
  /* USIM (docs/CELLULAR-SYSTEM.md section 5) and its state file. */
  char usim_path[4096];
  char state_path[4096 + 8];
  char imsi[MTCSEC_IMSI_MAX_DIGITS + 1];
  uint8_t imsi_tbcd[MTCSEC_IMSI_TBCD_LEN];
  uint8_t k[MTCSEC_3GPP_K_LEN];
  uint8_t opc[MTCSEC_3GPP_K_LEN];
  uint8_t plmn[MTCSEC_PLMN_LEN];
  uint8_t mtcs_id[MTCSEC_ID_LEN];
  mtcsec_sqn_ms sqn;
  /* Link. */
  int fd;
  agent_addr sgsn;
  char sgsn_str[80];
  uint32_t tlli;
  mtcsec_crypto crypto;
  /* AKA: the last challenge and what was answered (TS 24.008 4.7.7: a
   * repeated AUTHENTICATION REQUEST with the same RAND gets the same
   * answer, without running AKA again). */
  int have_last;
  uint8_t last_rand[MTCSEC_3GPP_RAND_LEN];
  uint8_t last_autn[MTCSEC_3GPP_AUTN_LEN];
  uint8_t answer[64];
  size_t answer_len;
  int authenticated;
  unsigned resyncs;
  uint8_t rand[MTCSEC_3GPP_RAND_LEN]; /* of the accepted challenge */
  uint8_t ik[MTCSEC_3GPP_IK_LEN];
  int have_ik;
  int policy;
  int integrity_required;   /* the USIM file's policy (section 5) */
  unsigned mac_failures;    /* challenges whose MAC-A did not verify */
  unsigned accepts_dropped; /* ATTACH_ACCEPTs weaker than the USIM's */
  unsigned stale_dropped;   /* stale challenges beyond the budget */
  cellsim_llc llc;
  mtcsec_chan chan;
  int have_chan;
  /* Run. */
  ms_state state;
  mtcsec_tstamp deadline;
  unsigned tries;
  unsigned long timeout_ms, retries, interval_ms, count;
  int attach_only;
  const char *texts[MS_MAX_SEND];
  size_t ntexts;
  size_t next_payload, total, answered;
  const char *outstanding, *previous;
  uint64_t llc_failures, records_refused;
  int exit_code;
} ms_agent;

static const char ms_usage[] =
  "usage: mtcsec ms run --usim FILE --sgsn HOST:PORT [--send TEXT]...\n"
  "                     [--count N] [--interval MS] [--attach-only]\n"
  "                     [--listen ADDR] [--timeout MS] [--retries N]\n"
  "                     [--trace] [--log-level LEVEL]\n";

static void ms_help(void) {
  printf(
    "%s\n"
    "Runs a simulated MS: attaches to the SGSN (UMTS AKA with the USIM file "
    "of\n"
    "`mtcsec sub add ... --usim FILE`, resynchronising with AUTS when SQN "
    "is out\n"
    "of range), activates a PDP context whose PCO carries RAND, derives "
    "K_UP and\n"
    "sends each payload as an AES-CCM record in an LLC SAPI-3 frame "
    "(MAC-I with\n"
    "IK, or FCS when the subscriber's policy has integrity off), waiting "
    "for the\n"
    "server's answer to each.  SQN_MS is kept in FILE's state file "
    "(FILE.state,\n"
    "or NAME.state for NAME.json), written before every AUTH_RESPONSE.  "
    "An\n"
    "ATTACH_ACCEPT without integrity is dropped unless FILE says "
    "\"integrity_only\":\n"
    "false; a challenge that fails MAC-A verification is answered and the MS "
    "waits\n"
    "for the genuine one.\n\n"
    "  --usim FILE        the USIM file (JSON, mode 0600)\n"
    "  --sgsn HOST:PORT   the SGSN's radio address\n"
    "  --send TEXT        a payload (repeatable; default \"hello\")\n"
    "  --count N          send the payload list N times (default 1; 0: "
    "attach and\n"
    "                     activate the PDP context, then stop)\n"
    "  --interval MS      pause between an answer and the next payload "
    "(1000)\n"
    "  --attach-only      stop after ATTACH_ACCEPT\n"
    "  --listen ADDR      local UDP address (default: any, port chosen by "
    "the system)\n"
    "  --timeout MS       wait this long for an answer before resending "
    "(2000)\n"
    "  --retries N        resends of one message before giving up (3)\n"
    "  --trace            print each message (type, size, direction, ms)\n"
    "  --log-level LEVEL  error, warn, info (default), debug\n\n"
    "Exit status: 0 every payload answered (or attached with "
    "--attach-only,\n"
    "PDP context active with --count 0), 1 refused by the network or no "
    "answer,\n"
    "2 usage, 3 USIM file not found, 4 bad USIM or state file, 5 internal "
    "error.\n",
    ms_usage);
}

/* --------------------------------------------------------- USIM, state */

static int ms_json_hex(const cJSON *o, const char *name, uint8_t *out,
                       size_t len) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) && app_parse_hex(v->valuestring, out, len) == 0 ? 0
                                                                           : -1;
}

/* "MCCMNC", 5 or 6 digits, into the 3-byte PLMN ID. */
static int ms_parse_plmn(const char *s, uint8_t out[MTCSEC_PLMN_LEN]) {
  mtcsec_plmn p;
  size_t n = strlen(s), i;
  if (n != 5 && n != 6) {
    return -1;
  }
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return -1;
    }
  }
  p.mcc = (uint16_t)((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
  p.mnc = (uint16_t)((s[3] - '0') * 10 + (s[4] - '0'));
  p.mnc_digits = 2;
  if (n == 6) {
    p.mnc = (uint16_t)(p.mnc * 10 + (s[5] - '0'));
    p.mnc_digits = 3;
  }
  return mtcsec_plmn_encode(&p, out) == 0 ? 0 : -1;
}

static int ms_load_usim(ms_agent *a) {
  char *text;
  size_t len = 0;
  cJSON *o;
  const cJSON *imsi, *plmn, *ind, *io;
  unsigned ind_bitlen = 5;
  int rv = CLI_CONFIG;

  text = app_read_file(a->usim_path, 65536, &len);
  if (text == NULL) {
    fprintf(stderr,
            "mtcsec ms run: %s: %s (write it with: mtcsec sub add IMSI ... "
            "--usim FILE)\n",
            a->usim_path, strerror(errno));
    return errno == ENOENT ? CLI_NOTFOUND : CLI_CONFIG;
  }
  o = cJSON_Parse(text);
  mtcsec_zeroize(text, len);
  free(text);
  if (o == NULL) {
    fprintf(stderr, "mtcsec ms run: %s: not valid JSON\n", a->usim_path);
    return CLI_CONFIG;
  }
  imsi = cJSON_GetObjectItemCaseSensitive(o, "imsi");
  plmn = cJSON_GetObjectItemCaseSensitive(o, "plmn");
  ind = cJSON_GetObjectItemCaseSensitive(o, "ind_bitlen");
  io = cJSON_GetObjectItemCaseSensitive(o, "integrity_only");
  if (!cJSON_IsString(imsi) ||
      strlen(imsi->valuestring) > MTCSEC_IMSI_MAX_DIGITS ||
      mtcsec_imsi_to_tbcd(imsi->valuestring, strlen(imsi->valuestring),
                          a->imsi_tbcd) != 0) {
    fprintf(stderr, "mtcsec ms run: %s: \"imsi\" must be 6 to 15 digits\n",
            a->usim_path);
    goto cleanup;
  }
  snprintf(a->imsi, sizeof(a->imsi), "%s", imsi->valuestring);
  if (ms_json_hex(o, "k", a->k, sizeof(a->k)) != 0 ||
      ms_json_hex(o, "opc", a->opc, sizeof(a->opc)) != 0 ||
      ms_json_hex(o, "mtcs_id", a->mtcs_id, sizeof(a->mtcs_id)) != 0) {
    fprintf(stderr,
            "mtcsec ms run: %s: needs \"k\" and \"opc\" (32 hex digits) and "
            "\"mtcs_id\" (16 hex digits)\n",
            a->usim_path);
    goto cleanup;
  }
  if (!cJSON_IsString(plmn) || ms_parse_plmn(plmn->valuestring, a->plmn)) {
    fprintf(stderr,
            "mtcsec ms run: %s: \"plmn\" must be MCC and MNC, 5 or 6 "
            "digits\n",
            a->usim_path);
    goto cleanup;
  }
  if (ind != NULL) {
    if (!cJSON_IsNumber(ind) || ind->valuedouble < 0 ||
        ind->valuedouble > MTCSEC_SQN_MAX_IND_BITLEN) {
      fprintf(stderr, "mtcsec ms run: %s: \"ind_bitlen\" is 0..5\n",
              a->usim_path);
      goto cleanup;
    }
    ind_bitlen = (unsigned)ind->valuedouble;
  }
  /* Absent (a USIM file written before the key existed): integrity
   * required, the safe reading; such a subscriber in FCS mode needs
   * "integrity_only": false written into its file. */
  if (io != NULL && !cJSON_IsBool(io)) {
    fprintf(stderr,
            "mtcsec ms run: %s: \"integrity_only\" must be true or false\n",
            a->usim_path);
    goto cleanup;
  }
  a->integrity_required = io == NULL || cJSON_IsTrue(io);
  (void)mtcsec_sqn_ms_init(&a->sqn, ind_bitlen);
  rv = CLI_OK;

cleanup : {
  const char *secret[2] = {"k", "opc"};
  size_t i;
  for (i = 0; i < 2; i++) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, secret[i]);
    if (cJSON_IsString(v)) {
      mtcsec_zeroize(v->valuestring, strlen(v->valuestring));
    }
  }
}
  cJSON_Delete(o);
  return rv;
}

/* The state file: NAME.state for NAME.json, else FILE.state. */
static void ms_state_path(ms_agent *a) {
  size_t n = strlen(a->usim_path);
  if (n > 5 && strcmp(a->usim_path + n - 5, ".json") == 0) {
    snprintf(a->state_path, sizeof(a->state_path), "%.*s.state", (int)(n - 5),
             a->usim_path);
  } else {
    snprintf(a->state_path, sizeof(a->state_path), "%s.state", a->usim_path);
  }
}

/* {"ind_bitlen": 5, "sqn_ms": [SQN_MS(0), SQN_MS(1), ...]}; absent: all 0. */
static int ms_load_state(ms_agent *a) {
  char *text;
  size_t len = 0, i = 0;
  cJSON *o;
  const cJSON *ind, *arr, *v;
  size_t slots = (size_t)1 << a->sqn.ind_bitlen;

  text = app_read_file(a->state_path, 65536, &len);
  if (text == NULL) {
    if (errno == ENOENT) {
      return CLI_OK;
    }
    fprintf(stderr, "mtcsec ms run: %s: %s\n", a->state_path, strerror(errno));
    return CLI_CONFIG;
  }
  o = cJSON_Parse(text);
  free(text);
  ind = cJSON_GetObjectItemCaseSensitive(o, "ind_bitlen");
  arr = cJSON_GetObjectItemCaseSensitive(o, "sqn_ms");
  if (o == NULL || !cJSON_IsNumber(ind) ||
      ind->valuedouble != (double)a->sqn.ind_bitlen || !cJSON_IsArray(arr) ||
      (size_t)cJSON_GetArraySize(arr) > slots) {
    fprintf(stderr,
            "mtcsec ms run: %s: expected {\"ind_bitlen\": %u, \"sqn_ms\": "
            "[at most %zu SQNs]}; remove it to start from SQN_MS = 0\n",
            a->state_path, (unsigned)a->sqn.ind_bitlen, slots);
    cJSON_Delete(o);
    return CLI_CONFIG;
  }
  cJSON_ArrayForEach(v, arr) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
        v->valuedouble > (double)MTCSEC_SQN_MAX ||
        v->valuedouble != (double)(uint64_t)v->valuedouble) {
      fprintf(stderr, "mtcsec ms run: %s: SQN %zu is not 0..2^48-1\n",
              a->state_path, i);
      cJSON_Delete(o);
      return CLI_CONFIG;
    }
    a->sqn.slot[i++] = (uint64_t)v->valuedouble;
  }
  cJSON_Delete(o);
  return CLI_OK;
}

/* Written (atomically, fsync'd) before the AUTH_RESPONSE that depends on
 * it leaves: an SQN once accepted is never accepted again. */
static int ms_save_state(const ms_agent *a) {
  char text[64 + MTCSEC_SQN_MAX_SLOTS * 18];
  size_t off, i, slots = (size_t)1 << a->sqn.ind_bitlen;
  off =
    (size_t)snprintf(text, sizeof(text), "{\"ind_bitlen\": %u, \"sqn_ms\": [",
                     (unsigned)a->sqn.ind_bitlen);
  for (i = 0; i < slots; i++) {
    off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%" PRIu64,
                            i > 0 ? ", " : "", a->sqn.slot[i]);
  }
  off += (size_t)snprintf(text + off, sizeof(text) - off, "]}\n");
  if (app_write_file_atomic(a->state_path, text, off, 0600) != 0) {
    app_log(MTCSEC_LOG_ERROR, "event=state_write_failed path=%s err=\"%s\"",
            a->state_path, strerror(errno));
    return -1;
  }
  return 0;
}

/* -------------------------------------------------------------- sending */

static void ms_finish(ms_agent *a, int code) {
  a->state = MS_DONE;
  a->exit_code = code;
}

/* keep: the answer to a challenge whose MAC-A verified, kept for a repeat
 * of that challenge and for the timer's resend. */
static int ms_send_radio(ms_agent *a, const cellsim_radio *m, int keep,
                         const char *note) {
  uint8_t buf[2048];
  mtcsec_ssize n = cellsim_radio_encode(m, buf, sizeof(buf));
  if (n < 0) {
    app_log(MTCSEC_LOG_ERROR, "event=encode_failed type=%s err=%s",
            cellsim_radio_name(m->type), mtcsec_errname((int)n));
    return -1;
  }
  if (agent_udp_send(a->fd, &a->sgsn, buf, (size_t)n) != 0) {
    app_log(MTCSEC_LOG_WARN, "event=send_failed to=%s err=\"%s\"", a->sgsn_str,
            strerror(errno));
  }
  cell_trace("MS", "SGSN", cellsim_radio_name(m->type), (size_t)n, note);
  if (keep && (size_t)n <= sizeof(a->answer)) {
    memcpy(a->answer, buf, (size_t)n);
    a->answer_len = (size_t)n;
  }
  return 0;
}

static void ms_arm(ms_agent *a, int reset) {
  if (reset) {
    a->tries = 0;
  }
  a->deadline = app_now_ms() + a->timeout_ms;
}

static void ms_send_attach(ms_agent *a) {
  cellsim_radio m;
  memset(&m, 0, sizeof(m));
  m.type = CELLSIM_ATTACH_REQUEST;
  m.tlli = a->tlli;
  memcpy(m.imsi, a->imsi_tbcd, sizeof(m.imsi));
  (void)ms_send_radio(a, &m, 0, a->imsi);
}

/* One LLC UI frame of sapi around info. */
static int ms_send_llc(ms_agent *a, uint8_t sapi, const uint8_t *info,
                       size_t infolen, const char *note) {
  uint8_t frame[MTCSEC_LLC_UI_HDR_LEN + MTCSEC_LLC_MAX_INFO + 4];
  cellsim_radio m;
  mtcsec_ssize n = cellsim_llc_seal(
    &a->llc, &a->crypto, (a->policy & CELLSIM_POLICY_INTEGRITY) ? a->ik : NULL,
    MTCSEC_3GPP_UPLINK, sapi, info, infolen, frame, sizeof(frame));
  if (n < 0) {
    app_log(MTCSEC_LOG_ERROR, "event=llc_seal_failed sapi=%u err=%s",
            (unsigned)sapi, mtcsec_errname((int)n));
    return -1;
  }
  memset(&m, 0, sizeof(m));
  m.type = CELLSIM_LLC;
  m.tlli = a->tlli;
  m.llc = frame;
  m.llclen = (size_t)n;
  return ms_send_radio(a, &m, 0, note);
}

static void ms_send_activate(ms_agent *a) {
  uint8_t container[MTCSEC_PCO_RAND_LEN], pco[MTCSEC_PCO_MAX_LEN], sm[300];
  mtcsec_pco p;
  cellsim_sm s;
  mtcsec_ssize pl, sl;
  char note[96];

  memset(&p, 0, sizeof(p));
  if (mtcsec_pco_rand_encode(a->plmn, a->rand, container) != 0) {
    ms_finish(a, CLI_INTERNAL);
    return;
  }
  /* TS 24.008 10.5.6.3: configuration protocol PPP (0), one container. */
  p.config_protocol = 0;
  p.nunits = 1;
  p.units[0].id = MTCSEC_PCO_CID_MTCSEC;
  p.units[0].len = MTCSEC_PCO_RAND_LEN;
  p.units[0].contents = container;
  pl = mtcsec_pco_encode(&p, MTCSEC_PCO_BARE, pco, sizeof(pco));
  memset(&s, 0, sizeof(s));
  s.ti = 0;
  s.type = CELLSIM_SM_ACTIVATE_REQUEST;
  s.nsapi = MS_NSAPI;
  s.pco = pco;
  s.pcolen = pl > 0 ? (size_t)pl : 0;
  sl = pl > 0 ? cellsim_sm_encode(&s, sm, sizeof(sm)) : pl;
  if (sl < 0) {
    app_log(MTCSEC_LOG_ERROR, "event=encode_failed type=activate err=%s",
            mtcsec_errname((int)sl));
    ms_finish(a, CLI_INTERNAL);
    return;
  }
  snprintf(note, sizeof(note), "SAPI 1 %s NSAPI %d, PCO 0xff00",
           cellsim_sm_name(s.type), MS_NSAPI);
  if (ms_send_llc(a, MTCSEC_LLC_SAPI_LLGMM, sm, (size_t)sl, note) != 0) {
    ms_finish(a, CLI_INTERNAL);
  }
}

/* Seals the outstanding payload into a new record and frame. */
static void ms_send_payload(ms_agent *a) {
  uint8_t rec[MS_TEXT_MAX + 64];
  size_t tl = strlen(a->outstanding);
  mtcsec_ssize n =
    mtcsec_chan_seal(&a->chan, rec, sizeof(rec),
                     (const uint8_t *)a->outstanding, tl, app_now_ms());
  char note[96];
  if (n < 0) {
    app_log(MTCSEC_LOG_ERROR, "event=seal_failed err=%s",
            mtcsec_errname((int)n));
    ms_finish(a, n == MTCSEC_ERR_EXHAUSTED ? CLI_FAILED : CLI_INTERNAL);
    return;
  }
  snprintf(note, sizeof(note), "SAPI 3 record seq %" PRIu32 ", %zu B payload",
           a->chan.tx_seq - 1, tl);
  if (ms_send_llc(a, MTCSEC_LLC_SAPI_LL3, rec, (size_t)n, note) != 0) {
    ms_finish(a, CLI_INTERNAL);
  }
}

static void ms_next_payload(ms_agent *a) {
  if (a->next_payload >= a->total) {
    printf("%zu/%zu payloads answered\n", a->answered, a->total);
    fflush(stdout);
    app_log(MTCSEC_LOG_INFO, "event=done imsi=%s sent=%zu answered=%zu",
            a->imsi, a->total, a->answered);
    ms_finish(a, CLI_OK);
    return;
  }
  a->previous = a->outstanding;
  a->outstanding = a->texts[a->next_payload % a->ntexts];
  a->next_payload++;
  a->state = MS_SENDING;
  ms_arm(a, 1);
  ms_send_payload(a);
}

/* ------------------------------------------------------------ receiving */

/* Derives K_UP and the record keys right after AKA, then erases CK. */
static int ms_derive_keys(ms_agent *a, mtcsec_aka_result *res) {
  uint8_t kup[MTCSEC_KUP_LEN];
  mtcsec_up_keys keys;
  int rv =
    mtcsec_kup_derive(&a->crypto, res->ck, res->ik, a->mtcs_id, a->rand, kup);
  mtcsec_zeroize(res->ck, sizeof(res->ck));
  if (rv == 0) {
    rv = mtcsec_up_keys_derive(&a->crypto, kup, a->imsi_tbcd, &keys);
  }
  mtcsec_zeroize(kup, sizeof(kup));
  if (rv == 0) {
    if (a->have_chan) {
      mtcsec_chan_deinit(&a->chan);
    }
    /* CELLULAR-SYSTEM.md section 4: the MS seals with the uplink values. */
    rv = mtcsec_chan_init_keys(&a->chan, &a->crypto, MTCSEC_SUITE_CMAC_AES128,
                               keys.ul_key, keys.ul_iv, keys.dl_key, keys.dl_iv,
                               0, UINT64_MAX);
    a->have_chan = rv == 0;
  }
  mtcsec_zeroize(&keys, sizeof(keys));
  return rv;
}

static void ms_on_auth_request(ms_agent *a, const cellsim_radio *m) {
  mtcsec_aka_result res;
  mtcsec_sqn_verdict verdict = MTCSEC_SQN_FRESH;
  uint8_t auts[MTCSEC_3GPP_AUTS_LEN];
  cellsim_radio out;
  char note[64];
  int rv;

  if (a->state != MS_ATTACHING && a->state != MS_AUTHENTICATING) {
    return;
  }
  if (a->have_last &&
      memcmp(m->rand, a->last_rand, sizeof(a->last_rand)) == 0 &&
      memcmp(m->autn, a->last_autn, sizeof(a->last_autn)) == 0) {
    /* A repeated challenge: the same answer, AKA is not run again. */
    if (agent_udp_send(a->fd, &a->sgsn, a->answer, a->answer_len) == 0) {
      cell_trace("MS", "SGSN", cellsim_radio_name(a->answer[1]), a->answer_len,
                 "repeated");
    }
    ms_arm(a, 0);
    return;
  }
  memset(&out, 0, sizeof(out));
  out.tlli = a->tlli;
  rv = mtcsec_aka_ms(a->k, a->opc, &a->sqn, m->rand, m->autn, &res, auts,
                     &verdict);
  if (rv == MTCSEC_ERR_MIC) {
    /* TS 24.008 4.7.7.5.1: answer MAC failure and keep waiting for a
     * genuine challenge; anyone on the radio can send this one, so it
     * changes nothing here (no state, no timer, not the kept answer). */
    a->mac_failures++;
    app_log(MTCSEC_LOG_WARN,
            "event=aka imsi=%s result=mac_failure mac_failures=%u "
            "action=wait",
            a->imsi, a->mac_failures);
    out.type = CELLSIM_AUTH_FAILURE;
    out.cause = CELLSIM_CAUSE_MAC_FAILURE;
    (void)ms_send_radio(a, &out, 0, "MAC failure");
    return;
  }
  if (rv == MTCSEC_ERR_REPLAY && a->resyncs >= MS_MAX_RESYNC) {
    /* The MAC verified, but the budget is spent: old challenges replayed
     * must not end the attach, and a network that cannot resynchronise
     * rejects the attach itself (or the timer ends it). */
    a->stale_dropped++;
    app_log(MTCSEC_LOG_WARN,
            "event=aka imsi=%s result=synch_failure verdict=%s "
            "action=dropped reason=resync_budget resyncs=%u",
            a->imsi, verdict == MTCSEC_SQN_STALE ? "stale" : "out_of_range",
            a->resyncs);
    mtcsec_zeroize(&res, sizeof(res));
    return;
  }
  if (rv != 0 && rv != MTCSEC_ERR_REPLAY) {
    mtcsec_zeroize(&res, sizeof(res));
    fprintf(stderr, "mtcsec ms run: AKA failed: %s\n", mtcsec_strerror(rv));
    ms_finish(a, CLI_INTERNAL);
    return;
  }
  /* MAC-A verified: this challenge comes from the home network. */
  memcpy(a->last_rand, m->rand, sizeof(a->last_rand));
  memcpy(a->last_autn, m->autn, sizeof(a->last_autn));
  a->have_last = 1;
  a->state = MS_AUTHENTICATING;
  ms_arm(a, 1);
  if (rv == 0) {
    /* SQN_MS is durable before the answer that spends it leaves. */
    if (ms_save_state(a) != 0) {
      mtcsec_zeroize(&res, sizeof(res));
      fprintf(stderr,
              "mtcsec ms run: cannot write %s: %s (check the directory's "
              "permissions and free space)\n",
              a->state_path, strerror(errno));
      ms_finish(a, CLI_CONFIG);
      return;
    }
    memcpy(a->rand, m->rand, sizeof(a->rand));
    memcpy(a->ik, res.ik, sizeof(a->ik));
    a->have_ik = 1;
    if (ms_derive_keys(a, &res) != 0) {
      mtcsec_zeroize(&res, sizeof(res));
      ms_finish(a, CLI_INTERNAL);
      return;
    }
    a->authenticated = 1;
    out.type = CELLSIM_AUTH_RESPONSE;
    out.reslen = MTCSEC_3GPP_RES_LEN;
    memcpy(out.res, res.res, MTCSEC_3GPP_RES_LEN);
    app_log(MTCSEC_LOG_INFO, "event=aka imsi=%s result=ok sqn=%" PRIu64,
            a->imsi, res.sqn);
    snprintf(note, sizeof(note), "SQN %" PRIu64 " accepted", res.sqn);
    mtcsec_zeroize(&res, sizeof(res));
    (void)ms_send_radio(a, &out, 1, note);
    mtcsec_zeroize(&out, sizeof(out));
    return;
  }
  /* Synchronisation failure of a verified challenge: AUTS. */
  mtcsec_zeroize(&res, sizeof(res));
  a->resyncs++;
  app_log(MTCSEC_LOG_INFO,
          "event=aka imsi=%s result=synch_failure verdict=%s sqn_ms=%" PRIu64,
          a->imsi, verdict == MTCSEC_SQN_STALE ? "stale" : "out_of_range",
          mtcsec_sqn_ms_highest(&a->sqn));
  out.type = CELLSIM_AUTH_FAILURE;
  out.cause = CELLSIM_CAUSE_SYNCH_FAILURE;
  memcpy(out.auts, auts, sizeof(auts));
  (void)ms_send_radio(a, &out, 1,
                      verdict == MTCSEC_SQN_STALE
                        ? "synch failure (SQN stale), AUTS"
                        : "synch failure (SQN out of range), AUTS");
  mtcsec_zeroize(auts, sizeof(auts));
}

static void ms_on_attach_accept(ms_agent *a, const cellsim_radio *m) {
  char tl[9], local[80];
  if (a->state != MS_AUTHENTICATING || !a->authenticated) {
    return; /* a repeated accept */
  }
  if (!cell_policy_acceptable(m->flags, a->integrity_required)) {
    /* ATTACH_ACCEPT is not integrity protected: a policy weaker than the
     * USIM's is a bidding-down attempt (TS 33.102 6.4.5), or a network
     * that does not know this subscriber's policy.  Either way IK stays
     * and the MS waits for an acceptable accept until its timer. */
    a->accepts_dropped++;
    app_log(MTCSEC_LOG_WARN,
            "event=attach_accept_dropped imsi=%s policy=%s required=integrity "
            "reason=weaker_than_usim accepts_dropped=%u",
            a->imsi, cell_policy_name(m->flags), a->accepts_dropped);
    return;
  }
  a->policy = m->flags;
  if (!(a->policy & CELLSIM_POLICY_INTEGRITY)) {
    /* FCS mode: nothing needs IK any more. */
    mtcsec_zeroize(a->ik, sizeof(a->ik));
    a->have_ik = 0;
  }
  if (a->policy & CELLSIM_POLICY_CIPHERING) {
    app_log(MTCSEC_LOG_WARN,
            "event=ciphering_not_simulated imsi=%s (LLC frames stay in "
            "clear; payloads are AES-CCM records anyway)",
            a->imsi);
  }
  memset(&a->llc, 0, sizeof(a->llc));
  snprintf(tl, sizeof(tl), "%08" PRIx32, a->tlli);
  app_log(MTCSEC_LOG_INFO, "event=attached imsi=%s tlli=%s policy=%s local=%s",
          a->imsi, tl, cell_policy_name(a->policy),
          cell_sock_name(a->fd, local, sizeof(local)));
  printf("attached: IMSI %s, TLLI %s, LLC %s\n", a->imsi, tl,
         (a->policy & CELLSIM_POLICY_INTEGRITY) ? "MAC-I (integrity)"
                                                : "FCS (no integrity)");
  fflush(stdout);
  if (a->attach_only) {
    ms_finish(a, CLI_OK);
    return;
  }
  a->state = MS_ACTIVATING;
  ms_arm(a, 1);
  ms_send_activate(a);
}

static void ms_on_downlink(ms_agent *a, const uint8_t *rec, size_t len) {
  uint8_t pt[MTCSEC_LLC_MAX_INFO];
  char text[4 * 256 + 1];
  mtcsec_ssize n;
  const char *why = NULL;
  size_t ol;

  if (!a->have_chan) {
    return;
  }
  n = mtcsec_chan_open(&a->chan, pt, sizeof(pt), rec, len, app_now_ms());
  if (n < 0) {
    a->records_refused++;
    app_log(MTCSEC_LOG_WARN, "event=downlink_refused imsi=%s len=%zu err=%s",
            a->imsi, len, mtcsec_errname((int)n));
    return;
  }
  cell_escape(text, sizeof(text), pt, (size_t)n);
  printf("downlink: %s\n", text);
  fflush(stdout);
  app_log(MTCSEC_LOG_INFO, "event=downlink imsi=%s len=%ld", a->imsi, (long)n);
  /* The answer of the outstanding payload, unless it is recognisably the
   * built-in server's echo of the previous one (a late duplicate). */
  if (a->state != MS_SENDING) {
    why = "unsolicited";
  } else if (a->previous != NULL && a->previous != a->outstanding &&
             strcmp(a->previous, a->outstanding) != 0) {
    size_t pl = strlen(a->previous);
    if (pl > 255) {
      pl = 255;
    }
    if ((size_t)n == 4 + pl && memcmp(pt, "ack ", 4) == 0 &&
        memcmp(pt + 4, a->previous, pl) == 0) {
      why = "late answer to the previous payload";
    }
  }
  ol = (size_t)n;
  mtcsec_zeroize(pt, ol);
  if (why != NULL) {
    app_log(MTCSEC_LOG_DEBUG, "event=downlink_ignored reason=\"%s\"", why);
    return;
  }
  a->answered++;
  if (a->next_payload < a->total && a->interval_ms > 0) {
    a->state = MS_PAUSED;
    a->deadline = app_now_ms() + a->interval_ms;
  } else {
    ms_next_payload(a);
  }
}

static void ms_on_llc(ms_agent *a, const cellsim_radio *m) {
  mtcsec_llc_ui ui;
  cellsim_sm sm;
  uint32_t count = 0;
  char note[96];
  int rv;

  if (a->state < MS_ACTIVATING || a->state == MS_DONE) {
    return;
  }
  rv = cellsim_llc_open(&a->llc, &a->crypto,
                        (a->policy & CELLSIM_POLICY_INTEGRITY) ? a->ik : NULL,
                        MTCSEC_3GPP_DOWNLINK, m->llc, m->llclen, &ui, &count);
  if (rv != 0) {
    a->llc_failures++;
    app_log(MTCSEC_LOG_WARN, "event=llc_dropped imsi=%s err=%s", a->imsi,
            mtcsec_errname(rv));
    return;
  }
  if (ui.sapi == MTCSEC_LLC_SAPI_LLGMM) {
    if (cellsim_sm_decode(&sm, ui.info, ui.infolen) != 0) {
      app_log(MTCSEC_LOG_WARN, "event=sm_malformed imsi=%s", a->imsi);
      return;
    }
    snprintf(note, sizeof(note), "SAPI 1 %s (COUNT %" PRIu32 ")",
             cellsim_sm_name(sm.type), count);
    cell_trace("SGSN", "MS", "LLC", CELLSIM_RADIO_HDR_LEN + m->llclen, note);
    if (a->state != MS_ACTIVATING || sm.nsapi != MS_NSAPI) {
      return;
    }
    if (sm.type == CELLSIM_SM_ACTIVATE_ACCEPT) {
      app_log(MTCSEC_LOG_INFO, "event=pdp_active imsi=%s nsapi=%u", a->imsi,
              (unsigned)sm.nsapi);
      printf("PDP context active: NSAPI %u\n", (unsigned)sm.nsapi);
      fflush(stdout);
      ms_next_payload(a);
    } else if (sm.type == CELLSIM_SM_ACTIVATE_REJECT) {
      fprintf(stderr,
              "mtcsec ms run: PDP context activation rejected, SM cause "
              "0x%02x%s\n",
              sm.cause,
              sm.cause == CELLSIM_SM_USER_AUTH_FAILED
                ? " (user authentication failed: the MTC server got no "
                  "K_UP for this RAND, or no longer serves it; attach again "
                  "for a new RAND)"
                : "");
      ms_finish(a, CLI_FAILED);
    }
    return;
  }
  if (ui.sapi == MTCSEC_LLC_SAPI_LL3) {
    snprintf(note, sizeof(note), "SAPI 3 record (COUNT %" PRIu32 ")", count);
    cell_trace("SGSN", "MS", "LLC", CELLSIM_RADIO_HDR_LEN + m->llclen, note);
    ms_on_downlink(a, ui.info, ui.infolen);
  }
}

/* What the MS dropped or refused during the attach, when it ends without
 * one: the likely cause of the failure. */
static void ms_explain(const ms_agent *a) {
  if (a->authenticated || a->state > MS_AUTHENTICATING) {
    if (a->accepts_dropped > 0) {
      fprintf(stderr,
              "mtcsec ms run: %u ATTACH_ACCEPT(s) offered no integrity and "
              "were dropped: %s requires integrity (\"integrity_only\" true "
              "or absent); the subscriber's policy at the home proxy must "
              "be integrity-only, or the file must say \"integrity_only\": "
              "false\n",
              a->accepts_dropped, a->usim_path);
    }
    return;
  }
  if (a->mac_failures > 0) {
    fprintf(stderr,
            "mtcsec ms run: %u challenge(s) failed MAC-A verification (MAC "
            "failure): unless someone forged them, K or OPc of %s differ "
            "from the HLR's\n",
            a->mac_failures, a->usim_path);
  }
  if (a->stale_dropped > 0) {
    fprintf(stderr,
            "mtcsec ms run: the network keeps sending SQNs this USIM "
            "refuses, even after %d resynchronisations (%u stale "
            "challenge(s) dropped)\n",
            MS_MAX_RESYNC, a->stale_dropped);
  }
}

static void ms_on_datagram(ms_agent *a, const uint8_t *buf, size_t len,
                           const agent_addr *from) {
  cellsim_radio m;
  if (!agent_addr_equal(from, &a->sgsn)) {
    return;
  }
  if (cellsim_radio_decode(&m, buf, len) != 0 || m.tlli != a->tlli) {
    app_log(MTCSEC_LOG_DEBUG, "event=radio_dropped len=%zu", len);
    return;
  }
  if (m.type != CELLSIM_LLC) {
    cell_trace("SGSN", "MS", cellsim_radio_name(m.type), len, NULL);
  }
  switch (m.type) {
  case CELLSIM_AUTH_REQUEST:
    ms_on_auth_request(a, &m);
    break;
  case CELLSIM_ATTACH_ACCEPT:
    ms_on_attach_accept(a, &m);
    break;
  case CELLSIM_ATTACH_REJECT:
    if (a->state == MS_ATTACHING || a->state == MS_AUTHENTICATING) {
      app_log(MTCSEC_LOG_WARN, "event=attach_rejected imsi=%s cause=0x%02x",
              a->imsi, m.cause);
      fprintf(
        stderr, "mtcsec ms run: attach rejected, GMM cause 0x%02x%s\n", m.cause,
        m.cause == CELLSIM_GMM_IMSI_UNKNOWN
          ? " (IMSI unknown in HLR: add it with mtcsec sub add)"
        : m.cause == CELLSIM_GMM_ILLEGAL_MS ? " (illegal MS: RES did not match)"
        : m.cause == CELLSIM_GMM_CONGESTION
          ? " (congestion: the SGSN's MS table is full; try again later)"
          : "");
      ms_explain(a);
      ms_finish(a, CLI_FAILED);
    }
    break;
  case CELLSIM_LLC:
    ms_on_llc(a, &m);
    break;
  default:
    break;
  }
}

static void ms_on_timer(ms_agent *a) {
  if (a->state == MS_PAUSED) {
    ms_next_payload(a);
    return;
  }
  if (a->tries >= a->retries) {
    if (a->state == MS_SENDING) {
      fprintf(stderr,
              "mtcsec ms run: payload %zu of %zu got no answer after %lu "
              "attempts (is the GGSN's Gi link to mtcsd up? see the SGSN, "
              "GGSN and mtcsd logs)\n",
              a->next_payload, a->total, a->retries + 1);
    } else {
      fprintf(stderr,
              "mtcsec ms run: no answer from the SGSN at %s after %lu "
              "attempts during %s (is it running, and its HLR and GGSN "
              "reachable?)\n",
              a->sgsn_str, a->retries + 1,
              a->state == MS_ATTACHING        ? "attach"
              : a->state == MS_AUTHENTICATING ? "authentication"
                                              : "PDP context activation");
      ms_explain(a);
    }
    ms_finish(a, CLI_FAILED);
    return;
  }
  a->tries++;
  ms_arm(a, 0);
  switch (a->state) {
  case MS_ATTACHING:
    ms_send_attach(a);
    break;
  case MS_AUTHENTICATING:
    if (a->answer_len > 0 &&
        agent_udp_send(a->fd, &a->sgsn, a->answer, a->answer_len) == 0) {
      cell_trace("MS", "SGSN", cellsim_radio_name(a->answer[1]), a->answer_len,
                 "resent");
    }
    break;
  case MS_ACTIVATING:
    ms_send_activate(a);
    break;
  case MS_SENDING:
    ms_send_payload(a);
    break;
  default:
    break;
  }
}

/* -------------------------------------------------------------- main */

static int ms_loop(ms_agent *a) {
  uint8_t buf[4096];
  struct pollfd p;
  p.fd = a->fd;
  p.events = POLLIN;
  while (a->state != MS_DONE && !agent_stop) {
    mtcsec_tstamp now = app_now_ms();
    int timeout = a->deadline > now ? (int)(a->deadline - now) : 0, rv;
    if (a->deadline <= now) {
      ms_on_timer(a);
      continue;
    }
    rv = poll(&p, 1, timeout);
    if (rv < 0) {
      if (errno == EINTR) {
        continue;
      }
      fprintf(stderr, "mtcsec ms run: poll: %s\n", strerror(errno));
      return CLI_INTERNAL;
    }
    while (rv > 0 && a->state != MS_DONE) {
      agent_addr from;
      long n = agent_udp_recv(a->fd, buf, sizeof(buf), &from);
      if (n <= 0) {
        break;
      }
      ms_on_datagram(a, buf, (size_t)n, &from);
    }
  }
  if (agent_stop && a->state != MS_DONE) {
    fprintf(stderr, "mtcsec ms run: interrupted\n");
    return CLI_FAILED;
  }
  return a->exit_code;
}

int agent_ms_run(int argc, char **argv) {
  static const struct option opts[] = {
    {"usim", required_argument, NULL, 'u'},
    {"sgsn", required_argument, NULL, 's'},
    {"send", required_argument, NULL, 'S'},
    {"count", required_argument, NULL, 'c'},
    {"interval", required_argument, NULL, 'i'},
    {"attach-only", no_argument, NULL, 'A'},
    {"listen", required_argument, NULL, 'l'},
    {"timeout", required_argument, NULL, 'T'},
    {"retries", required_argument, NULL, 'r'},
    {"trace", no_argument, NULL, 't'},
    {"log-level", required_argument, NULL, 'L'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  ms_agent *a;
  const char *usim = NULL, *sgsn = NULL, *listen = NULL;
  char err[256], local[80], tl[9];
  int orv, ch, trace = 0, level = MTCSEC_LOG_INFO, rv;
  unsigned long v;

  a = calloc(1, sizeof(*a));
  if (a == NULL) {
    return CLI_INTERNAL;
  }
  a->fd = -1;
  a->timeout_ms = 2000;
  a->retries = 3;
  a->interval_ms = 1000;
  a->count = 1;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'u':
      usim = optarg;
      break;
    case 's':
      sgsn = optarg;
      break;
    case 'S':
      if (a->ntexts == MS_MAX_SEND || strlen(optarg) > MS_TEXT_MAX) {
        fprintf(stderr, "mtcsec ms run: at most %d --send of up to %d bytes\n",
                MS_MAX_SEND, MS_TEXT_MAX);
        free(a);
        return CLI_USAGE;
      }
      a->texts[a->ntexts++] = optarg;
      break;
    case 'c':
    case 'i':
    case 'T':
    case 'r':
      if (agent_parse_uint(optarg, ch == 'c' ? 100000 : 3600000, &v) != 0 ||
          (ch == 'T' && v == 0)) {
        fprintf(stderr, "mtcsec ms run: bad number '%s'\n%s", optarg, ms_usage);
        free(a);
        return CLI_USAGE;
      }
      if (ch == 'c') {
        a->count = v;
      } else if (ch == 'i') {
        a->interval_ms = v;
      } else if (ch == 'T') {
        a->timeout_ms = v;
      } else {
        a->retries = v;
      }
      break;
    case 'A':
      a->attach_only = 1;
      break;
    case 'l':
      listen = optarg;
      break;
    default:
      orv =
        agent_common_opt(ch, argv, "ms run", ms_usage, ms_help, &trace, &level);
      if (orv != AGENT_OPT_NEXT) {
        free(a);
        return orv;
      }
      break;
    }
  }
  if (usim == NULL || sgsn == NULL || optind != argc) {
    fprintf(stderr, "mtcsec ms run: %s\n%s",
            optind != argc ? "unexpected argument"
                           : "give --usim FILE and --sgsn HOST:PORT",
            ms_usage);
    free(a);
    return CLI_USAGE;
  }
  if (a->ntexts == 0) {
    a->texts[a->ntexts++] = "hello";
  }
  a->total = a->count * a->ntexts;
  agent_start("mtcsec-ms", level, trace, 0);

  snprintf(a->usim_path, sizeof(a->usim_path), "%s", usim);
  ms_state_path(a);
  rv = ms_load_usim(a);
  if (rv == CLI_OK) {
    rv = ms_load_state(a);
  }
  if (rv != CLI_OK) {
    goto cleanup;
  }
  if (agent_addr_parse(&a->sgsn, sgsn, err, sizeof(err)) != 0) {
    fprintf(stderr, "mtcsec ms run: --sgsn %s: %s\n", sgsn, err);
    rv = CLI_USAGE;
    goto cleanup;
  }
  agent_addr_str(&a->sgsn, a->sgsn_str, sizeof(a->sgsn_str));
  a->fd = app_udp_bind(listen != NULL ? listen : agent_any_for(&a->sgsn), err,
                       sizeof(err));
  if (a->fd < 0) {
    fprintf(stderr, "mtcsec ms run: %s\n", err);
    rv = CLI_CONFIG;
    goto cleanup;
  }
  if (mtcsec_crypto_openssl_new(&a->crypto) != 0) {
    fprintf(stderr, "mtcsec ms run: cannot set up OpenSSL\n");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  /* A local TLLI (TS 23.003 2.6): the two top bits are 11. */
  a->tlli = cell_random32(&a->crypto) | 0xc0000000u;
  snprintf(tl, sizeof(tl), "%08" PRIx32, a->tlli);
  app_log(MTCSEC_LOG_INFO,
          "event=start imsi=%s tlli=%s local=%s sgsn=%s sqn_ms=%" PRIu64
          " required=%s",
          a->imsi, tl, cell_sock_name(a->fd, local, sizeof(local)), a->sgsn_str,
          mtcsec_sqn_ms_highest(&a->sqn),
          a->integrity_required ? "integrity" : "any");
  a->state = MS_ATTACHING;
  ms_arm(a, 1);
  ms_send_attach(a);
  rv = ms_loop(a);

cleanup:
  if (a->fd >= 0) {
    close(a->fd);
  }
  if (a->have_chan) {
    mtcsec_chan_deinit(&a->chan);
  }
  mtcsec_crypto_openssl_del(&a->crypto);
  mtcsec_zeroize(a, sizeof(*a));
  free(a);
  return rv;
}
