/*
 * Fuzz target: the device (MTCd role, PROTOCOL.md sections 4, 6, 7) with a
 * fixed PSKey, driven by an op stream: arbitrary datagrams and records, and,
 * so that the fuzzer gets past the MICs, valid M4s, records and revocations
 * built here with the device's own keys (the harness plays UE and server).
 *
 * Invariants checked after every op:
 *  - next_nonce never decreases, grows by at most one per op, and never
 *    passes the value persist_nonce last stored (section 4);
 *  - every error of mtcsec_dev_read, mtcsec_dev_write and mtcsec_dev_open
 *    (EXPIRED aside) leaves the device byte for byte as it was;
 *  - mtcsec_dev_write never returns more than the buffer; what it writes is
 *    an M1 of this device whose MIC verifies, and a resend of a nonce is the
 *    same M1 byte for byte;
 *  - a damaged M4 or revocation is never accepted; a record opens only once;
 *    a live session opens the harness's records and seals records the
 *    harness opens;
 *  - after mtcsec_dev_handle_expiry(now), no timer is due at now.
 *
 * Input: config(1) nonce(1), then ops (FZ_DEV_* in fuzz_common.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/channel.h>
#include <mtcsec/codec.h>
#include <mtcsec/device.h>

#include "crypto/provider_fixed.h"
#include "fuzz_common.h"

#define NSLOTS 4 /* harness sessions: key ids 0..3 */
#define NM1 8    /* M1s remembered for the resend check */
#define MAX_PT 200

typedef struct hslot {
  int valid; /* the device's session with this key id is ours */
  int ever;  /* mtcd_nonce is set */
  uint8_t perms;
  uint8_t mtcd_nonce[MTCSEC_NONCE_LEN];
  mtcsec_chan ue; /* the UE end of the channel */
} hslot;

typedef struct seen_m1 {
  uint64_t nonce;
  size_t len;
  uint8_t bytes[MTCSEC_HS_MAX_LEN];
} seen_m1;

typedef struct harness {
  mtcsec_fixed fixed;
  const mtcsec_crypto *c;
  mtcsec_dev d;
  mtcsec_dev snap;
  mtcsec_dev_session sess[2];
  mtcsec_dev_session sess_snap[2];
  mtcsec_dev_callbacks cb;
  uint8_t suite, keylen, miclen;
  uint8_t k_auth[32], k_dm[32];
  mtcsec_tstamp now;
  uint64_t persisted;
  int fail_next;
  /* Events of the current op. */
  int nev;
  mtcsec_dev_event_type ev_type[8];
  uint16_t ev_key[8];
  /* The last M1 written, and a few before it. */
  size_t m1len;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  seen_m1 m1s[NM1];
  size_t nm1s, m1next;
  hslot slot[NSLOTS];
  /* The last record the harness sealed, and whether it opened. */
  size_t reclen;
  uint8_t rec[7 + MAX_PT + 16];
  int rec_opened;
} harness;

static harness h;

static int cb_persist(void *ud, uint64_t next) {
  harness *x = ud;
  if (x->fail_next) {
    x->fail_next = 0;
    return -1;
  }
  /* One nonce at a time, only forward. */
  FZ_CHECK(next == x->persisted + 1);
  x->persisted = next;
  return 0;
}

static void cb_event(void *ud, const mtcsec_dev_event *ev) {
  harness *x = ud;
  FZ_CHECK(ev != NULL && ev->ueid != NULL);
  if (x->nev < 8) {
    x->ev_type[x->nev] = ev->type;
    x->ev_key[x->nev] = ev->key_id;
    x->nev++;
  }
}

/* The device's session with key id k is live and ours. */
static int live(uint16_t k) {
  return k < NSLOTS && h.slot[k].valid &&
         mtcsec_dev_authorize(&h.d, k, 0, h.now) == 0;
}

/* Events of an op the harness did not cause: sessions that are no longer
 * the harness's. */
static void events_foreign(void) {
  int i;
  for (i = 0; i < h.nev; i++) {
    if (h.ev_type[i] != MTCSEC_DEV_EV_GAVE_UP && h.ev_key[i] < NSLOTS) {
      h.slot[h.ev_key[i]].valid = 0;
    }
  }
}

static void snap(void) {
  memcpy(&h.snap, &h.d, sizeof(h.d));
  memcpy(h.sess_snap, h.sess, sizeof(h.sess));
}

static int unchanged(void) {
  return memcmp(&h.snap, &h.d, sizeof(h.d)) == 0 &&
         memcmp(h.sess_snap, h.sess, sizeof(h.sess)) == 0;
}

static void check_m1_out(const uint8_t *m1, size_t n) {
  mtcsec_hs hs;
  uint64_t nonce;
  size_t i;
  FZ_CHECK(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, m1, n) == 0);
  FZ_CHECK(hs.suite == h.suite && hs.miclen == h.miclen);
  FZ_CHECK(memcmp(hs.id_a, FZ_MTCD_ID, 8) == 0 &&
           memcmp(hs.id_b, FZ_MTCS_ID, 8) == 0);
  FZ_CHECK(mtcsec_m1_verify(&hs, h.c, h.k_auth) == 0);
  nonce = mtcsec_get_u64(hs.nonce);
  FZ_CHECK(nonce < mtcsec_dev_next_nonce(&h.d));
  /* Section 4: a resend is the same M1 (same nonce, info and MIC). */
  for (i = 0; i < h.nm1s; i++) {
    if (h.m1s[i].nonce == nonce) {
      FZ_CHECK(h.m1s[i].len == n && memcmp(h.m1s[i].bytes, m1, n) == 0);
      break;
    }
  }
  if (i == h.nm1s) {
    seen_m1 *s = &h.m1s[h.m1next];
    h.m1next = (h.m1next + 1) % NM1;
    if (h.nm1s < NM1) {
      h.nm1s++;
    }
    s->nonce = nonce;
    s->len = n;
    memcpy(s->bytes, m1, n);
  }
  memcpy(h.m1, m1, n);
  h.m1len = n;
}

static void op_raw(fz_in *in) {
  size_t len = fz_u8(in), got;
  const uint8_t *p = fz_bytes(in, len, &got);
  uint8_t *pkt = fz_dup(p, got);
  int rv;
  snap();
  rv = mtcsec_dev_read(&h.d, pkt, got, 7, h.now);
  if (rv != 0) {
    FZ_CHECK(unchanged());
    FZ_CHECK(h.nev == 0);
  }
  events_foreign();
  free(pkt);
}

static void op_write(fz_in *in) {
  size_t destlen = fz_u8(in);
  uint8_t *dest = malloc(destlen != 0 ? destlen : 1);
  uint64_t peer = 0;
  mtcsec_ssize n;
  FZ_CHECK(dest != NULL);
  snap();
  n = mtcsec_dev_write(&h.d, destlen != 0 ? dest : NULL, destlen, &peer, h.now);
  FZ_CHECK(n == MTCSEC_ERR_NOBUF || n >= 0);
  FZ_CHECK(n < 0 || (size_t)n <= destlen);
  if (n <= 0) {
    FZ_CHECK(unchanged());
  } else {
    check_m1_out(dest, (size_t)n);
    FZ_CHECK(peer == 7 || peer == 8);
  }
  free(dest);
}

static void op_time(fz_in *in) {
  uint8_t b = fz_u8(in);
  h.now += b < 128 ? 50u * b : 30000u * (b - 127u);
  FZ_CHECK(mtcsec_dev_handle_expiry(&h.d, h.now) == 0);
  /* Everything due at now has been handled. */
  FZ_CHECK(mtcsec_dev_get_expiry(&h.d) > h.now);
  events_foreign();
}

static void op_open(fz_in *in) {
  size_t len = fz_u8(in), got;
  const uint8_t *p = fz_bytes(in, len, &got);
  uint8_t *rec = fz_dup(p, got);
  uint8_t dest[255];
  mtcsec_dev_record_info info;
  mtcsec_ssize n;
  snap();
  n = mtcsec_dev_open(&h.d, dest, sizeof(dest), rec, got, h.now, &info);
  if (n >= 0) {
    FZ_CHECK((size_t)n + 7 + h.miclen == got);
  } else if (n != MTCSEC_ERR_EXPIRED) {
    FZ_CHECK(unchanged());
  }
  events_foreign();
  free(rec);
}

static void op_answer(fz_in *in) {
  uint8_t flags = fz_u8(in), life = fz_u8(in), perms = fz_u8(in);
  uint16_t key = (uint16_t)(fz_u8(in) % NSLOTS);
  uint8_t mtcs_nonce[8], pos, x;
  uint8_t sinfo[13], m4[MTCSEC_HS_MAX_LEN], orig[MTCSEC_HS_MAX_LEN];
  uint8_t dmkey[32];
  mtcsec_sinfo si;
  mtcsec_m4_fields f;
  mtcsec_hs m1;
  mtcsec_ssize n;
  uint8_t *pkt;
  int rv, damaged = 0;

  fz_copy(in, mtcs_nonce, 8);
  pos = (flags & 1) ? fz_u8(in) : 0;
  x = (flags & 1) ? fz_u8(in) : 0;
  if (h.m1len == 0) {
    return;
  }
  FZ_CHECK(mtcsec_hs_decode(&m1, MTCSEC_MSG_M1, h.m1, h.m1len) == 0);
  memset(&si, 0, sizeof(si));
  si.lifetime = life;
  si.perms = perms;
  si.key_id = key;
  FZ_CHECK(mtcsec_sinfo_encode(sinfo, sizeof(sinfo), &si) == 13);
  f.suite = m1.suite;
  f.mtcs_id = FZ_MTCS_ID;
  f.mtcd_id = m1.id_a;
  f.mtcs_nonce = mtcs_nonce;
  f.ueid = m1.ueid;
  f.info = sinfo;
  f.info_len = sizeof(sinfo);
  f.mtcd_nonce = m1.nonce;
  f.m1_info = m1.info;
  f.m1_info_len = m1.info_len;
  n = mtcsec_m4_build(m4, sizeof(m4), h.c, h.k_auth, &f);
  FZ_CHECK(n > 0);
  memcpy(orig, m4, (size_t)n);
  m4[pos % n] ^= x;
  damaged = x != 0;
  pkt = fz_dup(m4, (size_t)n);
  snap();
  rv = mtcsec_dev_read(&h.d, pkt, (size_t)n, 8, h.now);
  free(pkt);
  if (damaged) {
    FZ_CHECK(rv != 0); /* every byte of M4 is checked or MIC'ed */
  } else {
    /* Ours, so only "not awaited" (accepted already, gave up, or a newer
     * exchange with this UE, whose nonce makes the MIC differ). */
    FZ_CHECK(rv == 0 || rv == MTCSEC_ERR_UNEXPECTED || rv == MTCSEC_ERR_MIC);
  }
  if (rv != 0) {
    FZ_CHECK(unchanged());
    FZ_CHECK(h.nev == 0);
    return;
  }
  FZ_CHECK(h.nev == 1 && h.ev_type[0] == MTCSEC_DEV_EV_ESTABLISHED &&
           h.ev_key[0] == key);
  /* The same M4 again is a duplicate (section 4). */
  pkt = fz_dup(orig, (size_t)n);
  snap();
  FZ_CHECK(mtcsec_dev_read(&h.d, pkt, (size_t)n, 8, h.now) ==
           MTCSEC_ERR_UNEXPECTED);
  FZ_CHECK(unchanged());
  free(pkt);

  /* The UE end of the new session. */
  FZ_CHECK(mtcsec_derive_dmkey(h.c, h.suite, h.k_dm, FZ_MTCD_ID, FZ_MTCS_ID,
                               m1.nonce, mtcs_nonce, m1.ueid, dmkey) == 0);
  mtcsec_chan_deinit(&h.slot[key].ue);
  FZ_CHECK(mtcsec_chan_init(&h.slot[key].ue, h.c, h.suite, MTCSEC_CHAN_UE,
                            dmkey, key, h.now + 1000u * life) == 0);
  h.slot[key].valid = 1;
  h.slot[key].ever = 1;
  h.slot[key].perms = perms;
  memcpy(h.slot[key].mtcd_nonce, m1.nonce, 8);
  /* A session this one evicted is gone: live() sees that through
   * mtcsec_dev_authorize(). */
}

static void op_seal(fz_in *in) {
  uint16_t key = (uint16_t)(fz_u8(in) % NSLOTS);
  size_t len = fz_u8(in), got;
  const uint8_t *pt = fz_bytes(in, len, &got);
  uint8_t dest[MAX_PT + 16];
  mtcsec_dev_record_info info;
  mtcsec_ssize n, r;
  int expect;
  if (!h.slot[key].valid || got > MAX_PT) {
    return;
  }
  expect = live(key);
  n = mtcsec_chan_seal(&h.slot[key].ue, h.rec, sizeof(h.rec), pt, got, h.now);
  if (n == MTCSEC_ERR_EXPIRED) {
    FZ_CHECK(!expect);
    h.slot[key].valid = 0;
    return;
  }
  FZ_CHECK(n == (mtcsec_ssize)(7 + got + h.miclen));
  h.reclen = (size_t)n;
  r = mtcsec_dev_open(&h.d, dest, sizeof(dest), h.rec, h.reclen, h.now, &info);
  if (expect) {
    FZ_CHECK(r == (mtcsec_ssize)got && memcmp(dest, pt, got) == 0);
    FZ_CHECK(info.key_id == key && info.perms == h.slot[key].perms);
  }
  h.rec_opened = r >= 0;
  if (r >= 0) {
    FZ_CHECK(r == (mtcsec_ssize)got);
  }
  events_foreign();
}

static void op_replay(fz_in *in) {
  uint8_t pos = fz_u8(in), x = fz_u8(in);
  uint8_t *rec, dest[MAX_PT + 16];
  mtcsec_ssize r;
  if (h.reclen == 0) {
    return;
  }
  rec = fz_dup(h.rec, h.reclen);
  rec[pos % h.reclen] ^= x;
  snap();
  r = mtcsec_dev_open(&h.d, dest, sizeof(dest), rec, h.reclen, h.now, NULL);
  if (x != 0 || h.rec_opened) {
    FZ_CHECK(r < 0); /* damaged, or opened once already */
  }
  if (r >= 0) {
    h.rec_opened = 1;
  } else if (r != MTCSEC_ERR_EXPIRED) {
    FZ_CHECK(unchanged());
  }
  events_foreign();
  free(rec);
}

static void op_revoke(fz_in *in) {
  uint16_t key = (uint16_t)(fz_u8(in) % NSLOTS);
  uint8_t pos = fz_u8(in), x = fz_u8(in);
  uint8_t buf[27 + 16];
  uint8_t *pkt;
  mtcsec_ssize n;
  int rv, expect, before;
  if (!h.slot[key].ever) {
    return;
  }
  n = mtcsec_revoke_build(buf, sizeof(buf), h.c, h.suite, h.k_auth, FZ_MTCS_ID,
                          FZ_MTCD_ID, key, h.slot[key].mtcd_nonce);
  FZ_CHECK(n == (mtcsec_ssize)(27 + h.miclen));
  buf[pos % n] ^= x;
  before = mtcsec_dev_authorize(&h.d, key, 0, h.now);
  /* Live or lapsed but not yet erased: revocable. */
  expect = x == 0 && h.slot[key].valid &&
           (before == 0 || before == MTCSEC_ERR_EXPIRED);
  pkt = fz_dup(buf, (size_t)n);
  snap();
  rv = mtcsec_dev_read(&h.d, pkt, (size_t)n, 8, h.now);
  free(pkt);
  if (x != 0) {
    FZ_CHECK(rv != 0);
  }
  if (expect) {
    FZ_CHECK(rv == 0);
  }
  if (rv == 0) {
    FZ_CHECK(h.nev == 1 && h.ev_type[0] == MTCSEC_DEV_EV_REVOKED &&
             h.ev_key[0] == key);
    FZ_CHECK(mtcsec_dev_authorize(&h.d, key, 0, h.now) == MTCSEC_ERR_NOT_FOUND);
    h.slot[key].valid = 0;
  } else {
    FZ_CHECK(unchanged());
  }
}

static void op_start(fz_in *in) {
  uint8_t which = fz_u8(in);
  int rv;
  snap();
  rv = mtcsec_dev_start(&h.d, (which & 1) ? FZ_UEID2 : FZ_UEID, 8, h.now);
  if (rv != 0) {
    FZ_CHECK(unchanged());
  }
}

static void op_devseal(fz_in *in) {
  uint16_t key = (uint16_t)(fz_u8(in) % NSLOTS);
  size_t len = fz_u8(in), got;
  const uint8_t *pt = fz_bytes(in, len, &got);
  uint8_t rec[7 + 255 + 16], back[255];
  mtcsec_ssize n, r;
  int expect = live(key);
  n = mtcsec_dev_seal(&h.d, key, rec, sizeof(rec), pt, got, h.now);
  if (expect) {
    FZ_CHECK(n == (mtcsec_ssize)(7 + got + h.miclen));
  }
  if (n > 0 && h.slot[key].valid) {
    r = mtcsec_chan_open(&h.slot[key].ue, back, sizeof(back), rec, (size_t)n,
                         h.now);
    FZ_CHECK(r == (mtcsec_ssize)got && memcmp(back, pt, got) == 0);
  }
  events_foreign();
}

static void op_authz(fz_in *in) {
  uint16_t key = (uint16_t)(fz_u8(in) % NSLOTS);
  uint8_t req = fz_u8(in);
  int expect = live(key);
  int rv = mtcsec_dev_authorize(&h.d, key, req, h.now);
  FZ_CHECK(rv == 0 || rv == MTCSEC_ERR_FORBIDDEN ||
           rv == MTCSEC_ERR_NOT_FOUND || rv == MTCSEC_ERR_EXPIRED);
  if (expect) {
    FZ_CHECK((rv == 0) == ((h.slot[key].perms & req) == req));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mtcsec_dev_config cfg;
  const mtcsec_suite_params *sp;
  uint8_t conf, b1;
  fz_in in;
  int ops = 0, i;

  fz_init(&in, data, size);
  conf = fz_u8(&in);
  b1 = fz_u8(&in);

  memset(&h, 0, sizeof(h));
  mtcsec_fixed_init(&h.fixed, fz_openssl(), 0x6d746373u);
  h.c = mtcsec_fixed_crypto(&h.fixed);
  h.suite = fz_suite(conf);
  sp = mtcsec_suite_get(h.suite);
  h.keylen = sp->keylen;
  h.miclen = sp->miclen;
  FZ_CHECK(mtcsec_derive_device_keys(h.c, h.suite, FZ_PSKEY, FZ_MTCD_ID,
                                     FZ_MTCS_ID, h.k_auth, h.k_dm) == 0);
  h.cb.persist_nonce = cb_persist;
  h.cb.on_event = cb_event;

  mtcsec_dev_config_default(&cfg);
  cfg.suite = h.suite;
  memcpy(cfg.mtcd_id, FZ_MTCD_ID, 8);
  memcpy(cfg.mtcs_id, FZ_MTCS_ID, 8);
  cfg.pskey = FZ_PSKEY;
  cfg.sessions = h.sess;
  cfg.nsessions = 2;
  cfg.next_nonce = (conf & 0x40) ? UINT64_MAX - (b1 & 3) : b1;
  cfg.send_suites = (conf >> 2) & 1;
  cfg.retx_max = (uint8_t)((conf >> 4) & 3);
  cfg.log = fz_log;
  h.persisted = cfg.next_nonce;
  i = mtcsec_dev_init(&h.d, &cfg, h.c, &h.cb, &h);
  if (cfg.next_nonce == UINT64_MAX && i == MTCSEC_ERR_INVALID_ARGUMENT) {
    return 0; /* device.h: an exhausted counter may be refused at init */
  }
  FZ_CHECK(i == 0);
  if (conf & 0x08) {
    mtcsec_dev_set_status(&h.d, 1, 77, 1, -123456789, 987654321);
  }
  h.now = 1000;

  while (fz_more(&in) && ops++ < 512) {
    uint64_t nonce_before = mtcsec_dev_next_nonce(&h.d);
    uint64_t nonce_after;
    uint8_t op = (uint8_t)(fz_u8(&in) % FZ_DEV_NOPS);
    h.nev = 0;
    switch (op) {
    case FZ_DEV_RAW:
      op_raw(&in);
      break;
    case FZ_DEV_WRITE:
      op_write(&in);
      break;
    case FZ_DEV_TIME:
      op_time(&in);
      break;
    case FZ_DEV_OPEN:
      op_open(&in);
      break;
    case FZ_DEV_ANSWER:
      op_answer(&in);
      break;
    case FZ_DEV_SEAL:
      op_seal(&in);
      break;
    case FZ_DEV_REPLAY:
      op_replay(&in);
      break;
    case FZ_DEV_REVOKE:
      op_revoke(&in);
      break;
    case FZ_DEV_START:
      op_start(&in);
      break;
    case FZ_DEV_DEVSEAL:
      op_devseal(&in);
      break;
    case FZ_DEV_FAILNEXT:
      h.fail_next = 1;
      break;
    case FZ_DEV_AUTHZ:
    default:
      op_authz(&in);
      break;
    }
    /* Section 4: the counter only moves forward, one M1 at a time, and
     * never ahead of what persist_nonce stored. */
    nonce_after = mtcsec_dev_next_nonce(&h.d);
    FZ_CHECK(nonce_after == nonce_before || nonce_after == nonce_before + 1);
    FZ_CHECK(nonce_after <= h.persisted);
  }

  for (i = 0; i < NSLOTS; i++) {
    mtcsec_chan_deinit(&h.slot[i].ue);
  }
  mtcsec_dev_deinit(&h.d);
  return 0;
}
