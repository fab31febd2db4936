/*
 * Seed generator for the fuzz targets: valid messages (M0, M1, M4, M2/M3/ERR
 * frames, records, revocations, info TLVs) built with the library from the
 * inputs of the committed test vectors (docs/test-vectors/), and op streams
 * for the stateful targets that walk a whole exchange.
 *
 * Usage: mtcsec_fuzz_gen_corpus <dir>
 * Writes <dir>/fuzz_<target>/<seed> for every target.  Run once and commit
 * the result as fuzz/corpus/ (the output is deterministic).  Not a fuzzer.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mtcsec/channel.h>
#include <mtcsec/codec.h>
#include <mtcsec/crypto.h>

#include "fuzz_common.h"

/* ---------------------------------------------------------- plumbing */

static const char *g_dir;

typedef struct buf {
  size_t n;
  uint8_t b[4096];
} buf;

static void put(buf *o, const void *p, size_t n) {
  if (o->n + n > sizeof(o->b)) {
    fprintf(stderr, "gen_corpus: seed too large\n");
    exit(1);
  }
  memcpy(o->b + o->n, p, n);
  o->n += n;
}

static void put8(buf *o, unsigned v) {
  uint8_t b = (uint8_t)v;
  put(o, &b, 1);
}

static void put16(buf *o, unsigned v) {
  put8(o, v >> 8);
  put8(o, v);
}

/* len(1) || bytes: the framing of the op streams. */
static void put_lv(buf *o, const uint8_t *p, size_t n) {
  if (n > 255) {
    fprintf(stderr, "gen_corpus: datagram over 255 bytes\n");
    exit(1);
  }
  put8(o, (unsigned)n);
  put(o, p, n);
}

static void mkdir_p(const char *path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST) {
    perror(path);
    exit(1);
  }
}

static void save(const char *target, const char *name, const uint8_t *p,
                 size_t n) {
  char path[1024];
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", g_dir, target);
  mkdir_p(path);
  snprintf(path, sizeof(path), "%s/%s/%s", g_dir, target, name);
  f = fopen(path, "wb");
  if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

static void save_buf(const char *target, const char *name, const buf *o) {
  save(target, name, o->b, o->n);
}

static size_t unhex(uint8_t *out, size_t max, const char *hex) {
  size_t n = 0;
  while (hex[0] != '\0' && hex[1] != '\0') {
    unsigned v;
    if (n == max || sscanf(hex, "%2x", &v) != 1) {
      fprintf(stderr, "gen_corpus: bad hex\n");
      exit(1);
    }
    out[n++] = (uint8_t)v;
    hex += 2;
  }
  return n;
}

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "gen_corpus: %s failed\n", what);
    exit(1);
  }
}

/* ----------------------------------------------- vector messages */

static const mtcsec_crypto *g_c;

/* The inputs of docs/test-vectors/: IDs and PSKey in fuzz_common.h. */
static const uint8_t MTCD_NONCE[8] = {0, 0, 0, 0, 0, 0, 0, 7};
static const uint8_t MTCS_NONCE[8] = {0x8a, 0x1f, 0x3c, 0x5e,
                                      0x7b, 0x9d, 0x2e, 0x40};
#define SINFO_HEX "900400000e1091010392020001" /* 3600 s, perms 3, key 1 */
#define SINFO2_HEX "90040000003c91010192020102"

typedef struct exch {
  uint8_t suite;
  uint8_t k_auth[32], k_dm[32], dmkey[32];
  buf m0, m1, m4, m2f, m3f, d2u, u2d, revoke;
  uint8_t dinfo[255], sinfo[64];
  size_t dinfo_len, sinfo_len;
  uint16_t key_id;
} exch;

/* One exchange of a vector: hops 0, 1 or 2 (2 is the relayed2 vector). */
static void make_exch(exch *e, uint8_t suite, int hops) {
  static const char *const dinfo_hex[3] = {
    "040103", "04010381086700000000000001",
    ("02015a03081b0e4a800187b6500401030501018110670000000000000267000000"
     "00000001")};
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  uint8_t tmp[600], hopids[16];
  mtcsec_m1_fields f1;
  mtcsec_m4_fields f4;
  mtcsec_sinfo si;
  mtcsec_chan dev, ue;
  mtcsec_ssize n;
  int i;

  memset(e, 0, sizeof(*e));
  e->suite = suite;
  check(mtcsec_derive_device_keys(g_c, suite, FZ_PSKEY, FZ_MTCD_ID, FZ_MTCS_ID,
                                  e->k_auth, e->k_dm) == 0,
        "derive");
  e->dinfo_len = unhex(e->dinfo, sizeof(e->dinfo), dinfo_hex[hops]);
  e->sinfo_len =
    unhex(e->sinfo, sizeof(e->sinfo), hops == 2 ? SINFO2_HEX : SINFO_HEX);
  check(mtcsec_sinfo_decode(&si, e->sinfo, e->sinfo_len) == 0, "sinfo");
  e->key_id = si.key_id;

  /* M0 as the device receives it: relays appended in path order. */
  memcpy(hopids, hops == 2 ? FZ_RELAY2 : FZ_RELAY1, 8);
  memcpy(hopids + 8, FZ_RELAY1, 8);
  n = mtcsec_m0_encode(tmp, sizeof(tmp), FZ_UEID, 3, hopids, (uint8_t)hops);
  check(n > 0, "m0");
  put(&e->m0, tmp, (size_t)n);

  f1.suite = suite;
  f1.mtcd_id = FZ_MTCD_ID;
  f1.mtcs_id = FZ_MTCS_ID;
  f1.nonce = MTCD_NONCE;
  f1.ueid = FZ_UEID;
  f1.info = e->dinfo;
  f1.info_len = e->dinfo_len;
  n = mtcsec_m1_build(tmp, sizeof(tmp), g_c, e->k_auth, &f1);
  check(n > 0, "m1");
  put(&e->m1, tmp, (size_t)n);
  n = mtcsec_frame_encode(tmp, sizeof(tmp), MTCSEC_MSG_M2, 1, e->m1.b, e->m1.n);
  check(n > 0, "m2");
  put(&e->m2f, tmp, (size_t)n);

  f4.suite = suite;
  f4.mtcs_id = FZ_MTCS_ID;
  f4.mtcd_id = FZ_MTCD_ID;
  f4.mtcs_nonce = MTCS_NONCE;
  f4.ueid = FZ_UEID;
  f4.info = e->sinfo;
  f4.info_len = e->sinfo_len;
  f4.mtcd_nonce = MTCD_NONCE;
  f4.m1_info = e->dinfo;
  f4.m1_info_len = e->dinfo_len;
  n = mtcsec_m4_build(tmp, sizeof(tmp), g_c, e->k_auth, &f4);
  check(n > 0, "m4");
  put(&e->m4, tmp, (size_t)n);
  check(mtcsec_derive_dmkey(g_c, suite, e->k_dm, FZ_MTCD_ID, FZ_MTCS_ID,
                            MTCD_NONCE, MTCS_NONCE, FZ_UEID, e->dmkey) == 0,
        "dmkey");
  memcpy(tmp, e->m4.b, e->m4.n);
  memcpy(tmp + e->m4.n, e->dmkey, sp->keylen);
  {
    uint8_t fr[700];
    n = mtcsec_frame_encode(fr, sizeof(fr), MTCSEC_MSG_M3, 1, tmp,
                            e->m4.n + sp->keylen);
    check(n > 0, "m3");
    put(&e->m3f, fr, (size_t)n);
  }

  /* Records: d2u at seq 0, u2d at seq 5 (as in the vectors). */
  check(mtcsec_chan_init(&dev, g_c, suite, MTCSEC_CHAN_DEVICE, e->dmkey,
                         e->key_id, MTCSEC_TSTAMP_NEVER) == 0,
        "chan");
  check(mtcsec_chan_init(&ue, g_c, suite, MTCSEC_CHAN_UE, e->dmkey, e->key_id,
                         MTCSEC_TSTAMP_NEVER) == 0,
        "chan");
  n = mtcsec_chan_seal(&dev, tmp, sizeof(tmp),
                       (const uint8_t *)"{\"temp\":21.5}", 13, 0);
  check(n > 0, "seal");
  put(&e->d2u, tmp, (size_t)n);
  for (i = 0; i < 6; i++) {
    n = mtcsec_chan_seal(&ue, tmp, sizeof(tmp), (const uint8_t *)"\x01", 1, 0);
    check(n > 0, "seal");
  }
  put(&e->u2d, tmp, (size_t)n);
  mtcsec_chan_deinit(&dev);
  mtcsec_chan_deinit(&ue);

  n = mtcsec_revoke_build(tmp, sizeof(tmp), g_c, suite, e->k_auth, FZ_MTCS_ID,
                          FZ_MTCD_ID, e->key_id, MTCD_NONCE);
  check(n > 0, "revoke");
  put(&e->revoke, tmp, (size_t)n);
}

/* ------------------------------------------------------------ codec */

static void gen_codec(exch *e) {
  const char *t = "fuzz_codec";
  buf o;
  uint8_t errf[64];
  mtcsec_ssize n;

  save_buf(t, "m0-direct", &e[0].m0);
  save_buf(t, "m0-relayed", &e[1].m0);
  save_buf(t, "m1-suite1-direct", &e[0].m1);
  save_buf(t, "m1-suite1-relayed2", &e[2].m1);
  save_buf(t, "m1-suite2-direct", &e[3].m1);
  save_buf(t, "m1-suite3-relayed", &e[4].m1);
  save_buf(t, "m4-suite1", &e[0].m4);
  save_buf(t, "m4-suite2", &e[3].m4);
  save_buf(t, "m4-suite3", &e[4].m4);
  save_buf(t, "frame-m2", &e[1].m2f);
  save_buf(t, "frame-m3-suite3", &e[4].m3f);
  /* A stream: ERR then M2. */
  n = mtcsec_err_frame_encode(errf, sizeof(errf), 7, MTCSEC_ERRCODE_REPLAY,
                              "seen \xc3\xa9");
  check(n > 0, "err");
  memset(&o, 0, sizeof(o));
  put(&o, errf, (size_t)n);
  put(&o, e[0].m2f.b, e[0].m2f.n);
  save_buf(t, "frames-err-m2", &o);
  save_buf(t, "record-d2u-suite1", &e[0].d2u);
  save_buf(t, "record-u2d-suite2", &e[3].u2d);
  save_buf(t, "revoke-suite1", &e[0].revoke);
  save_buf(t, "revoke-suite3", &e[4].revoke);
  save(t, "dinfo-relayed2", e[2].dinfo, e[2].dinfo_len);
  save(t, "sinfo", e[0].sinfo, e[0].sinfo_len);
}

/* ---------------------------------------------------------- device */

static void dev_op(buf *o, unsigned op) { put8(o, op); }

static void dev_raw(buf *o, const buf *msg) {
  dev_op(o, FZ_DEV_RAW);
  put_lv(o, msg->b, msg->n);
}

static void dev_answer(buf *o, unsigned flags, unsigned life, unsigned perms,
                       unsigned key) {
  static const uint8_t nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  dev_op(o, FZ_DEV_ANSWER);
  put8(o, flags);
  put8(o, life);
  put8(o, perms);
  put8(o, key);
  put(o, nonce, 8);
}

static void dev_data(buf *o, unsigned op, unsigned key, const char *s) {
  dev_op(o, op);
  put8(o, key);
  put_lv(o, (const uint8_t *)s, strlen(s));
}

static void gen_dev(exch *e) {
  const char *t = "fuzz_dev_read";
  static const unsigned conf_of[5] = {0, 0, 0, 2, 3}; /* suite bits */
  static const char *const vec_names[5] = {
    "vector-suite1-direct", "vector-suite1-relayed", "vector-suite1-relayed2",
    "vector-suite2-direct", "vector-suite3-relayed"};
  buf o;
  int i;

  /* The vectors end to end: M0, M1 out, M4, the u2d record, revocation. */
  for (i = 0; i < 5; i++) {
    memset(&o, 0, sizeof(o));
    put8(&o, conf_of[i]);
    put8(&o, 7); /* MTCdNonce of the vectors */
    dev_raw(&o, &e[i].m0);
    dev_op(&o, FZ_DEV_WRITE);
    put8(&o, 255);
    dev_raw(&o, &e[i].m4);
    dev_op(&o, FZ_DEV_OPEN);
    put_lv(&o, e[i].u2d.b, e[i].u2d.n);
    dev_op(&o, FZ_DEV_AUTHZ);
    put8(&o, e[i].key_id);
    put8(&o, 3);
    dev_raw(&o, &e[i].revoke);
    if (i == 2) {
      continue; /* relayed2 carries status TLVs this harness never sets */
    }
    save_buf(t, vec_names[i], &o);
  }

  /* Harness-built exchange: M0, M1, M4, records both ways, revocation. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0x04); /* suite 1, SUITES TLV */
  put8(&o, 0);
  dev_raw(&o, &e[0].m0);
  dev_op(&o, FZ_DEV_WRITE);
  put8(&o, 200);
  dev_answer(&o, 0, 10, 3, 1);
  dev_data(&o, FZ_DEV_SEAL, 1, "on");
  dev_op(&o, FZ_DEV_REPLAY);
  put8(&o, 0);
  put8(&o, 0);
  dev_data(&o, FZ_DEV_DEVSEAL, 1, "ack");
  dev_op(&o, FZ_DEV_AUTHZ);
  put8(&o, 1);
  put8(&o, 2);
  dev_op(&o, FZ_DEV_REVOKE);
  put8(&o, 1);
  put8(&o, 0);
  put8(&o, 0);
  dev_data(&o, FZ_DEV_SEAL, 1, "late");
  save_buf(t, "exchange-suite1", &o);

  /* The same with suite 3, status TLVs, a damaged M4 first. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0x0b); /* suite 3, status */
  put8(&o, 40);
  dev_op(&o, FZ_DEV_START);
  put8(&o, 0);
  dev_op(&o, FZ_DEV_WRITE);
  put8(&o, 255);
  dev_answer(&o, 1, 5, 7, 2);
  put8(&o, 40);   /* pos */
  put8(&o, 0x20); /* xor */
  dev_answer(&o, 0, 5, 7, 2);
  dev_data(&o, FZ_DEV_SEAL, 2, "x");
  dev_op(&o, FZ_DEV_TIME);
  put8(&o, 100);
  dev_data(&o, FZ_DEV_SEAL, 2, "expired?");
  dev_op(&o, FZ_DEV_TIME);
  put8(&o, 129);
  dev_data(&o, FZ_DEV_DEVSEAL, 2, "gone");
  save_buf(t, "exchange-suite3-expiry", &o);

  /* Resends with backoff, then giving up; M0 while busy and rate limited. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0x30); /* suite 1, retx_max 3 */
  put8(&o, 1);
  dev_raw(&o, &e[1].m0);
  dev_raw(&o, &e[1].m0);
  dev_op(&o, FZ_DEV_WRITE);
  put8(&o, 255);
  for (i = 0; i < 5; i++) {
    dev_op(&o, FZ_DEV_TIME);
    put8(&o, 120);
    dev_op(&o, FZ_DEV_WRITE);
    put8(&o, 255);
  }
  dev_op(&o, FZ_DEV_WRITE);
  put8(&o, 10); /* too small */
  dev_raw(&o, &e[0].m0);
  save_buf(t, "retries-giveup", &o);

  /* Two sessions and a third that evicts one. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0x02); /* suite 2 */
  put8(&o, 9);
  for (i = 0; i < 3; i++) {
    dev_op(&o, FZ_DEV_START);
    put8(&o, (unsigned)i);
    dev_op(&o, FZ_DEV_WRITE);
    put8(&o, 255);
    dev_answer(&o, 0, (unsigned)(60 + 20 * i), 1, (unsigned)i);
    dev_op(&o, FZ_DEV_TIME);
    put8(&o, 40);
  }
  for (i = 0; i < 3; i++) {
    dev_data(&o, FZ_DEV_SEAL, (unsigned)i, "ping");
    dev_data(&o, FZ_DEV_DEVSEAL, (unsigned)i, "pong");
  }
  save_buf(t, "sessions-evict", &o);

  /* The nonce counter at its end, and a failing persist_nonce. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0x40);
  put8(&o, 2); /* next_nonce = 2^64 - 3 */
  dev_op(&o, FZ_DEV_FAILNEXT);
  dev_op(&o, FZ_DEV_START);
  put8(&o, 0);
  for (i = 0; i < 3; i++) {
    dev_op(&o, FZ_DEV_START);
    put8(&o, 0);
    dev_op(&o, FZ_DEV_WRITE);
    put8(&o, 255);
    dev_answer(&o, 0, 1, 1, 0);
    dev_op(&o, FZ_DEV_TIME);
    put8(&o, 60);
  }
  save_buf(t, "nonce-exhaustion", &o);
}

/* ---------------------------------------------------------- channel */

static void chan_data(buf *o, const char *s) {
  put_lv(o, (const uint8_t *)s, strlen(s));
}

static void chan_open(buf *o, unsigned idx, unsigned pos, unsigned x) {
  put8(o, FZ_CHAN_OPEN);
  put8(o, idx);
  put8(o, pos);
  put8(o, x);
}

static void gen_chan(exch *e) {
  const char *t = "fuzz_chan_open";
  buf o;
  unsigned s;

  for (s = 1; s <= 3; s++) {
    char name[32];
    /* In order, replayed, out of order, damaged. */
    memset(&o, 0, sizeof(o));
    put8(&o, s);
    put8(&o, 1);
    put8(&o, 30);
    put8(&o, FZ_CHAN_SEAL);
    chan_data(&o, "first");
    put8(&o, FZ_CHAN_SEAL);
    chan_data(&o, "second");
    put8(&o, FZ_CHAN_SEAL);
    chan_data(&o, "");
    chan_open(&o, 1, 0, 0);
    chan_open(&o, 0, 0, 0);
    chan_open(&o, 0, 0, 0);
    chan_open(&o, 2, 9, 0x80);
    chan_open(&o, 2, 0, 0);
    snprintf(name, sizeof(name), "seal-open-suite%u", s);
    save_buf(t, name, &o);
  }

  /* Window edges: far ahead, just inside, just outside, 2^32 - 1. */
  memset(&o, 0, sizeof(o));
  put8(&o, 1);
  put8(&o, 7);
  put8(&o, 255);
  put8(&o, FZ_CHAN_FORGE);
  put16(&o, 0);
  put16(&o, 100);
  chan_data(&o, "a");
  chan_open(&o, 0, 0, 0);
  put8(&o, FZ_CHAN_NEAR);
  put8(&o, 63);
  chan_data(&o, "b");
  put8(&o, FZ_CHAN_NEAR);
  put8(&o, 64);
  chan_data(&o, "c");
  put8(&o, FZ_CHAN_NEAR);
  put8(&o, 200);
  chan_data(&o, "d");
  chan_open(&o, 1, 0, 0);
  chan_open(&o, 2, 0, 0);
  chan_open(&o, 3, 0, 0);
  put8(&o, FZ_CHAN_FORGE);
  put16(&o, 0xffff);
  put16(&o, 0xffff);
  chan_data(&o, "never");
  chan_open(&o, 4, 0, 0);
  save_buf(t, "window-edges", &o);

  /* Lifetime over, then a small buffer and raw bytes. */
  memset(&o, 0, sizeof(o));
  put8(&o, 2);
  put8(&o, 1);
  put8(&o, 1);
  put8(&o, FZ_CHAN_SEAL);
  chan_data(&o, "hello");
  put8(&o, FZ_CHAN_SMALL);
  put8(&o, 0);
  put8(&o, 3);
  put8(&o, FZ_CHAN_RAW);
  put_lv(&o, e[3].u2d.b, e[3].u2d.n);
  put8(&o, FZ_CHAN_TIME);
  put16(&o, 10);
  chan_open(&o, 0, 0, 0);
  chan_open(&o, 0, 0, 0);
  save_buf(t, "expiry-small-raw", &o);
}

/* -------------------------------------------------------------- relay */

static void gw_dgram(buf *o, unsigned hdr, const buf *m) {
  put8(o, hdr);
  put_lv(o, m->b, m->n);
}

static void gen_gw(exch *e) {
  const char *t = "fuzz_gw_relay";
  buf o;

  /* Toward the device: M0, M4, record, revocation; room = exact. */
  memset(&o, 0, sizeof(o));
  gw_dgram(&o, 0xfc, &e[0].m0);
  gw_dgram(&o, 0xfc, &e[1].m0);
  gw_dgram(&o, 0xfc, &e[0].m4);
  gw_dgram(&o, 0xfc, &e[0].u2d);
  gw_dgram(&o, 0xfc, &e[0].revoke);
  save_buf(t, "to-device", &o);

  /* Toward the UE: M1 and records; an M0 that has no business there. */
  memset(&o, 0, sizeof(o));
  gw_dgram(&o, 0xfd, &e[1].m1);
  gw_dgram(&o, 0xfd, &e[2].m1);
  gw_dgram(&o, 0xfd, &e[0].d2u);
  gw_dgram(&o, 0xfd, &e[0].m0);
  save_buf(t, "to-ue", &o);

  /* In place, one byte short, spare room. */
  memset(&o, 0, sizeof(o));
  gw_dgram(&o, 0x02 | (0 << 2), &e[1].m0);
  gw_dgram(&o, 0x00 | (1 << 2), &e[1].m0);
  gw_dgram(&o, 0x00 | (20 << 2), &e[4].m4);
  gw_dgram(&o, 0x03 | (1 << 2), &e[4].m1);
  gw_dgram(&o, 0x02 | (0 << 2), &e[4].revoke);
  save_buf(t, "in-place-room", &o);

  /* Everything in the wrong direction. */
  memset(&o, 0, sizeof(o));
  gw_dgram(&o, 0xfc, &e[0].m1);
  gw_dgram(&o, 0xfd, &e[0].m4);
  gw_dgram(&o, 0xfd, &e[0].revoke);
  gw_dgram(&o, 0xfc, &e[0].m2f);
  save_buf(t, "wrong-direction", &o);
}

/* ----------------------------------------------------------------- UE */

static void ue_write(buf *o, unsigned half) {
  put8(o, FZ_UE_WRITE);
  put8(o, half);
}

static void ue_m3(buf *o, unsigned idx, unsigned flags, unsigned life,
                  unsigned perms, unsigned key) {
  put8(o, FZ_UE_M3);
  put8(o, idx);
  put8(o, flags);
  put8(o, life);
  put8(o, perms);
  put8(o, key);
}

static void gen_ue(exch *e) {
  const char *t = "fuzz_ue_read";
  buf o;
  int i;

  /* The vectors: M1 in, M2 out, the vector's M3 (req_id 1), M4 out. */
  for (i = 0; i < 5; i += 2) {
    char name[32];
    memset(&o, 0, sizeof(o));
    put8(&o, 3);
    put8(&o, FZ_UE_DEVRAW);
    put8(&o, 5);
    put_lv(&o, e[i].m1.b, e[i].m1.n);
    ue_write(&o, 255);
    put8(&o, FZ_UE_SRVRAW);
    put16(&o, (unsigned)e[i].m3f.n);
    put(&o, e[i].m3f.b, e[i].m3f.n);
    ue_write(&o, 255);
    put8(&o, FZ_UE_CHAN);
    put8(&o, 0);
    put_lv(&o, (const uint8_t *)"hi", 2);
    snprintf(name, sizeof(name), "vector-%d", i);
    save_buf(t, name, &o);
  }

  /* Built exchanges: two devices, an M3 and an ERR, channel, forget. */
  memset(&o, 0, sizeof(o));
  put8(&o, 3);
  put8(&o, FZ_UE_M1);
  put8(&o, 0x00);
  put8(&o, 1);
  put8(&o, 10);
  put8(&o, FZ_UE_M1);
  put8(&o, 0x21); /* device 2, PATH */
  put8(&o, 1);
  put8(&o, 11);
  ue_write(&o, 255);
  ue_write(&o, 255);
  ue_m3(&o, 0, 0, 30, 3, 4);
  ue_m3(&o, 0, 4 | (9 << 3), 'E', 8, 0);
  ue_write(&o, 255);
  put8(&o, FZ_UE_CHAN);
  put8(&o, 0);
  put_lv(&o, (const uint8_t *)"ping", 4);
  put8(&o, FZ_UE_CHAN);
  put8(&o, 1);
  put_lv(&o, (const uint8_t *)"ping", 4);
  put8(&o, FZ_UE_FORGET);
  put8(&o, 0);
  put8(&o, FZ_UE_TIME);
  put8(&o, 130);
  save_buf(t, "built-m3-err", &o);

  /* One slot: busy, duplicate, timeout, damaged answers. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0);
  put8(&o, FZ_UE_M1);
  put8(&o, 0x04); /* suite 1 */
  put8(&o, 2);
  put8(&o, 1);
  put8(&o, FZ_UE_M1);
  put8(&o, 0x04);
  put8(&o, 2);
  put8(&o, 1);
  put8(&o, FZ_UE_M1);
  put8(&o, 0x09); /* device 2, suite 3 */
  put8(&o, 2);
  put8(&o, 1);
  put8(&o, FZ_UE_M1);
  put8(&o, 0x10); /* not our UEID */
  put8(&o, 2);
  put8(&o, 1);
  put8(&o, FZ_UE_M1);
  put8(&o, 0x40); /* unknown suite */
  put8(&o, 2);
  put8(&o, 1);
  ue_write(&o, 3); /* too small */
  ue_write(&o, 200);
  ue_m3(&o, 0, 5, 10, 1, 0); /* another device's M4 */
  ue_m3(&o, 0, 6, 10, 1, 0); /* DMKey cut */
  ue_m3(&o, 0, 7, 10, 1, 0); /* unknown req_id */
  put8(&o, FZ_UE_TIME);
  put8(&o, 101);
  ue_write(&o, 200);
  save_buf(t, "busy-dup-timeout", &o);

  /* Three devices, two session slots: the third M3 finds none. */
  memset(&o, 0, sizeof(o));
  put8(&o, 3);
  for (i = 0; i < 3; i++) {
    put8(&o, FZ_UE_M1);
    put8(&o, (unsigned)i);
    put8(&o, 3);
    put8(&o, 3);
  }
  for (i = 0; i < 3; i++) {
    ue_write(&o, 255);
  }
  for (i = 0; i < 3; i++) {
    ue_m3(&o, 0, 0, (unsigned)(1 + i), 1, (unsigned)i);
  }
  for (i = 0; i < 3; i++) {
    ue_write(&o, 255);
  }
  put8(&o, FZ_UE_TIME);
  put8(&o, 20);
  put8(&o, FZ_UE_TIME);
  put8(&o, 129);
  save_buf(t, "sessions-full", &o);
}

/* ------------------------------------------------------------- server */

static void srv_m2(buf *o, unsigned conn, unsigned flags, unsigned nonce,
                   unsigned req) {
  put8(o, FZ_SRV_M2);
  put8(o, conn);
  put16(o, flags);
  put8(o, nonce);
  put8(o, req);
}

static void gen_srv(exch *e) {
  const char *t = "fuzz_srv_recv";
  buf o;
  unsigned i;

  /* The vectors: an M2 answered, then answered again (duplicate). */
  for (i = 0; i < 5; i += 2) {
    char name[32];
    memset(&o, 0, sizeof(o));
    put8(&o, (e[i].suite == 1 ? 0 : e[i].suite) | (0x0f << 3));
    put8(&o, FZ_SRV_RAW);
    put8(&o, 1);
    put8(&o, 0);
    put16(&o, (unsigned)e[i].m2f.n);
    put(&o, e[i].m2f.b, e[i].m2f.n);
    put8(&o, FZ_SRV_RAW);
    put8(&o, 2);
    put8(&o, 0);
    put16(&o, (unsigned)e[i].m2f.n);
    put(&o, e[i].m2f.b, e[i].m2f.n);
    put8(&o, FZ_SRV_REVOKE);
    put16(&o, 1);
    snprintf(name, sizeof(name), "vector-%u", i);
    save_buf(t, name, &o);
  }

  /* Every ERR code of section 5 in turn, then success and a replay. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0x03 << 3);             /* suite 1, grant read|write */
  srv_m2(&o, 0, 0x0400, 1, 1);     /* WRONG_SERVER */
  srv_m2(&o, 0, 0x0002, 1, 2);     /* UNKNOWN_DEVICE */
  srv_m2(&o, 0, 0x0001, 1, 3);     /* DEVICE_DISABLED */
  srv_m2(&o, 0, 0x0008, 1, 4);     /* UNSUPPORTED_SUITE */
  srv_m2(&o, 0, 0x0010, 1, 5);     /* UE_ID_MISMATCH */
  srv_m2(&o, 0, 0x0040, 1, 6);     /* BAD_MIC */
  srv_m2(&o, 0, 0x0030, 1, 7);     /* UE_NOT_AUTHORIZED: no grant */
  srv_m2(&o, 0, 0x4080, 2, 8);     /* UE_NOT_AUTHORIZED: REQ_PERMS */
  srv_m2(&o, 0, 0x0300, 3, 9);     /* RELAY_NOT_AUTHORIZED */
  srv_m2(&o, 0, 0x1180, 4, 10);    /* M3 via an allowed relay */
  srv_m2(&o, 1, 0x1180, 4, 11);    /* the same M2: duplicate */
  srv_m2(&o, 0, 0x2180, 4, 12);    /* same nonce, other M1: REPLAY */
  srv_m2(&o, 0, 0x0000, 0xff, 13); /* far ahead */
  srv_m2(&o, 0, 0x0000, 5, 14);    /* below the window: REPLAY */
  save_buf(t, "ordered-checks", &o);

  /* Deferred commits: a follower, a failed store, a closed connection. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0x0f << 3);
  srv_m2(&o, 0, 0x0800, 1, 1);
  srv_m2(&o, 1, 0x0800, 1, 2); /* identical: follows the first */
  srv_m2(&o, 2, 0x0800, 2, 3);
  put8(&o, FZ_SRV_CLOSE);
  put8(&o, 2);
  put8(&o, FZ_SRV_COMMIT);
  put8(&o, 1); /* the store fails */
  srv_m2(&o, 0, 0x0800, 1, 4);
  put8(&o, FZ_SRV_COMMIT);
  put8(&o, 0);
  put8(&o, FZ_SRV_TIME);
  put8(&o, 140);
  srv_m2(&o, 0, 0x0000, 1, 5); /* after the duplicate window: REPLAY */
  save_buf(t, "deferred-follower-fail", &o);

  /* A batch out while more frames arrive; small write buffers. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0x02 | (0x01 << 3)); /* suite 2 */
  srv_m2(&o, 0, 0x0800, 1, 1);
  srv_m2(&o, 0, 0x0800, 2, 2);
  put8(&o, FZ_SRV_BATCH);
  put8(&o, 0);
  srv_m2(&o, 1, 0x0800, 3, 3);
  srv_m2(&o, 1, 0x0800, 1, 4);
  put8(&o, FZ_SRV_BATCH);
  put8(&o, 1); /* the batch failed */
  put8(&o, FZ_SRV_WRITE);
  put8(&o, 5);
  put8(&o, FZ_SRV_COMMIT);
  put8(&o, 0);
  put8(&o, FZ_SRV_BATCH);
  put8(&o, 0);
  put8(&o, FZ_SRV_BATCH);
  put8(&o, 0);
  save_buf(t, "batch", &o);

  /* Rate limit: 2 keys a minute. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0x04 | (0x0f << 3));
  for (i = 1; i <= 4; i++) {
    srv_m2(&o, 0, 0, i, i);
  }
  put8(&o, FZ_SRV_TIME);
  put8(&o, 140);
  srv_m2(&o, 0, 0, 9, 9);
  save_buf(t, "rate-limit", &o);

  /* Raw frames: short length, not one frame, another type. */
  memset(&o, 0, sizeof(o));
  put8(&o, 0x0f << 3);
  put8(&o, FZ_SRV_RAW);
  put8(&o, 0);
  put8(&o, 0);
  put16(&o, 3);
  put(&o, "\x00\x04\x12", 3);
  put8(&o, FZ_SRV_RAW);
  put8(&o, 0);
  put8(&o, 0);
  put16(&o, 9);
  put(&o, "\x00\x07\x15\x00\x00\x00\x01\x01\x00", 9);
  put8(&o, FZ_SRV_RAW);
  put8(&o, 0);
  put8(&o, 0);
  put16(&o, 7);
  put(&o, "\x00\x05\x12\x00\x00\x00\x02", 7);
  save_buf(t, "raw-frames", &o);
}

int main(int argc, char **argv) {
  exch e[5];
  mtcsec_crypto c;

  if (argc != 2) {
    fprintf(stderr, "usage: %s <dir>\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  mkdir_p(g_dir);
  if (mtcsec_crypto_openssl_new(&c) != 0) {
    fprintf(stderr, "gen_corpus: no OpenSSL provider\n");
    return 1;
  }
  g_c = &c;
  /* The vectors' exchanges: suite1 direct, relayed, relayed2; suite2
   * direct; suite3 relayed. */
  make_exch(&e[0], 1, 0);
  make_exch(&e[1], 1, 1);
  make_exch(&e[2], 1, 2);
  make_exch(&e[3], 2, 0);
  make_exch(&e[4], 3, 1);

  gen_codec(e);
  gen_dev(e);
  gen_chan(e);
  gen_gw(e);
  gen_ue(e);
  gen_srv(e);

  mtcsec_crypto_openssl_del(&c);
  return 0;
}
