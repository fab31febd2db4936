/*
 * Fuzz target: the direct channel (PROTOCOL.md section 6) under a fixed
 * DMKey.  The receiving end is the device (it opens u2d records); the
 * sending end is a UE channel over the same DMKey, plus a reference sealer
 * written here from the spec (nonce = IV XOR (0^9 || seq), AAD = the 7
 * header bytes) that can produce an authentic record at any sequence number.
 *
 * Invariants:
 *  - a record opens only if it is byte for byte one of the authentic records
 *    produced here, and then gives back its plaintext;
 *  - mtcsec_chan_seal and the reference sealer agree byte for byte;
 *  - an authentic record opens exactly when a model replay window (RFC 4303,
 *    64 entries including the top, seq 2^32-1 never) accepts it, before the
 *    lifetime ends; no sequence number opens twice;
 *  - every failure leaves the channel as it was, except EXPIRED, after which
 *    the channel is dead (INVALID_STATE).
 *
 * Input: byte 0 suite, byte 1 key id, byte 2 lifetime (s), then ops
 * (FZ_CHAN_* in fuzz_common.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/channel.h>
#include <mtcsec/codec.h>

#include "fuzz_common.h"

#define KEPT 16
#define MAX_PT 255

static const uint8_t DMKEY[32] = {
  0xcb, 0x22, 0xb2, 0x91, 0x9e, 0xe3, 0xbc, 0xb6, 0xfc, 0x86, 0xa1,
  0xc7, 0x10, 0x26, 0x5d, 0xf7, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
  0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};

typedef struct rec {
  size_t len, ptlen;
  uint32_t seq;
  uint8_t bytes[7 + MAX_PT + 16];
  uint8_t pt[MAX_PT];
} rec;

/* The model window: RFC 4303 with W = 64, including the top. */
typedef struct model {
  int empty;
  uint64_t top;
  uint64_t seen; /* bit i: top - i opened */
} model;

static int model_ok(const model *m, uint32_t seq) {
  if (seq == UINT32_MAX) {
    return 0;
  }
  if (m->empty || seq > m->top) {
    return 1;
  }
  if (m->top - seq >= 64) {
    return 0;
  }
  return ((m->seen >> (m->top - seq)) & 1u) == 0;
}

static void model_add(model *m, uint32_t seq) {
  if (m->empty) {
    m->empty = 0;
    m->top = seq;
    m->seen = 1;
  } else if (seq > m->top) {
    uint64_t sh = seq - m->top;
    m->seen = sh >= 64 ? 1 : (m->seen << sh) | 1u;
    m->top = seq;
  } else {
    m->seen |= (uint64_t)1 << (m->top - seq);
  }
}

typedef struct state {
  const mtcsec_crypto *c;
  const mtcsec_suite_params *sp;
  uint8_t suite;
  uint16_t key_id;
  mtcsec_chan rx; /* device end: opens u2d */
  mtcsec_chan tx; /* UE end: seals u2d */
  uint8_t k_u2d[32], iv_u2d[MTCSEC_IV_LEN];
  mtcsec_tstamp now, expiry;
  int dead; /* EXPIRED was returned: keys erased */
  model m;
  rec kept[KEPT];
  size_t nkept, next;
} state;

/* The reference sealer of section 6. */
static void ref_seal(state *s, uint32_t seq, const uint8_t *pt, size_t ptlen,
                     rec *r) {
  uint8_t nonce[MTCSEC_IV_LEN];
  int i;
  r->bytes[0] = MTCSEC_MSG_RECORD;
  r->bytes[1] = (uint8_t)(s->key_id >> 8);
  r->bytes[2] = (uint8_t)s->key_id;
  r->bytes[3] = (uint8_t)(seq >> 24);
  r->bytes[4] = (uint8_t)(seq >> 16);
  r->bytes[5] = (uint8_t)(seq >> 8);
  r->bytes[6] = (uint8_t)seq;
  memcpy(nonce, s->iv_u2d, MTCSEC_IV_LEN);
  for (i = 0; i < 4; i++) {
    nonce[9 + i] ^= r->bytes[3 + i];
  }
  FZ_CHECK(s->c->ops->ccm_seal(s->c->ctx, s->k_u2d, s->sp->keylen, nonce,
                               r->bytes, 7, pt, ptlen, r->bytes + 7,
                               s->sp->miclen) == 0);
  r->len = 7 + ptlen + s->sp->miclen;
  r->ptlen = ptlen;
  r->seq = seq;
  memcpy(r->pt, pt, ptlen);
}

static rec *keep(state *s) {
  rec *r = &s->kept[s->next];
  s->next = (s->next + 1) % KEPT;
  if (s->nkept < KEPT) {
    s->nkept++;
  }
  return r;
}

/* The authentic record these bytes are, or NULL. */
static const rec *authentic(const state *s, const uint8_t *b, size_t n) {
  size_t i;
  for (i = 0; i < s->nkept; i++) {
    if (s->kept[i].len == n && memcmp(s->kept[i].bytes, b, n) == 0) {
      return &s->kept[i];
    }
  }
  return NULL;
}

/* Opens b (n bytes) with a destination of destlen bytes and checks the
 * outcome against the model. */
static void open_check(state *s, const uint8_t *b, size_t n, size_t destlen) {
  const rec *a = authentic(s, b, n);
  static rec ref;
  uint8_t *rb = fz_dup(b, n);
  uint8_t *dest = malloc(destlen != 0 ? destlen : 1);
  mtcsec_chan before;
  mtcsec_ssize r;

  FZ_CHECK(dest != NULL);
  memcpy(&before, &s->rx, sizeof(before));
  r = mtcsec_chan_open(&s->rx, destlen != 0 ? dest : NULL, destlen, rb, n,
                       s->now);
  if (r >= 0 && a == NULL && n >= 7 && (size_t)r <= MAX_PT) {
    /* The keys are the same in every run, so the fuzzer can replay a
     * record sealed in an earlier run: authentic exactly when it is the
     * reference seal of its seq and of the plaintext it opened to. */
    uint32_t seq = ((uint32_t)b[3] << 24) | ((uint32_t)b[4] << 16) |
                   ((uint32_t)b[5] << 8) | b[6];
    ref_seal(s, seq, dest, (size_t)r, &ref);
    if (ref.len == n && memcmp(ref.bytes, b, n) == 0) {
      a = &ref;
    }
  }
  if (r >= 0) {
    FZ_CHECK(a != NULL); /* only what was sealed opens */
    FZ_CHECK(!s->dead && s->now < s->expiry);
    FZ_CHECK(model_ok(&s->m, a->seq));
    FZ_CHECK((size_t)r == a->ptlen && (size_t)r <= destlen);
    FZ_CHECK(memcmp(dest, a->pt, a->ptlen) == 0);
    model_add(&s->m, a->seq);
  } else if (r == MTCSEC_ERR_EXPIRED) {
    FZ_CHECK(!s->dead && s->now >= s->expiry);
    s->dead = 1;
  } else {
    /* Any other failure changes nothing. */
    FZ_CHECK(memcmp(&before, &s->rx, sizeof(before)) == 0);
    if (s->dead) {
      FZ_CHECK(r == MTCSEC_ERR_INVALID_STATE);
    } else if (a != NULL && s->now < s->expiry) {
      /* An authentic record is refused only as a replay or for room. */
      if (model_ok(&s->m, a->seq)) {
        FZ_CHECK(r == MTCSEC_ERR_NOBUF && destlen < a->ptlen);
      } else {
        FZ_CHECK(r == MTCSEC_ERR_REPLAY);
      }
    }
  }
  free(dest);
  free(rb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static state s;
  uint8_t k_d2u[32], iv_d2u[MTCSEC_IV_LEN];
  fz_in in;
  int ops = 0;

  memset(&s, 0, sizeof(s));
  fz_init(&in, data, size);
  s.c = fz_openssl();
  s.suite = fz_suite(fz_u8(&in));
  s.sp = mtcsec_suite_get(s.suite);
  s.key_id = fz_u8(&in);
  s.expiry = 1000u * (1u + fz_u8(&in));
  s.m.empty = 1;
  FZ_CHECK(mtcsec_chan_init(&s.rx, s.c, s.suite, MTCSEC_CHAN_DEVICE, DMKEY,
                            s.key_id, s.expiry) == 0);
  FZ_CHECK(mtcsec_chan_init(&s.tx, s.c, s.suite, MTCSEC_CHAN_UE, DMKEY,
                            s.key_id, MTCSEC_TSTAMP_NEVER) == 0);
  FZ_CHECK(mtcsec_chan_derive(s.c, s.suite, DMKEY, s.key_id, k_d2u, iv_d2u,
                              s.k_u2d, s.iv_u2d) == 0);

  while (fz_more(&in) && ops++ < 256) {
    uint8_t op = (uint8_t)(fz_u8(&in) % FZ_CHAN_NOPS);
    switch (op) {
    case FZ_CHAN_SEAL: {
      size_t len = fz_u8(&in), got;
      const uint8_t *pt = fz_bytes(&in, len, &got);
      uint8_t out[7 + MAX_PT + 16];
      rec *r = keep(&s);
      mtcsec_ssize n =
        mtcsec_chan_seal(&s.tx, out, sizeof(out), pt, got, s.now);
      FZ_CHECK(n == (mtcsec_ssize)(7 + got + s.sp->miclen));
      /* Section 6 computed here gives the same bytes. */
      ref_seal(
        &s,
        (uint32_t)((out[3] << 24) | (out[4] << 16) | (out[5] << 8) | out[6]),
        pt, got, r);
      FZ_CHECK(r->len == (size_t)n && memcmp(r->bytes, out, r->len) == 0);
      break;
    }
    case FZ_CHAN_FORGE: {
      uint32_t seq = fz_u32(&in);
      size_t len = fz_u8(&in), got;
      const uint8_t *pt = fz_bytes(&in, len, &got);
      ref_seal(&s, seq, pt, got, keep(&s));
      break;
    }
    case FZ_CHAN_NEAR: {
      /* Authentic at top - delta (or just above it): the window edges. */
      uint8_t delta = fz_u8(&in);
      size_t len = fz_u8(&in), got;
      const uint8_t *pt = fz_bytes(&in, len, &got);
      uint64_t top = s.m.empty ? 0 : s.m.top;
      uint64_t seq = delta < 128 ? top - (delta < top ? delta : top)
                                 : top + (uint64_t)(delta - 127);
      if (seq > UINT32_MAX) {
        seq = UINT32_MAX;
      }
      ref_seal(&s, (uint32_t)seq, pt, got, keep(&s));
      break;
    }
    case FZ_CHAN_OPEN: {
      uint8_t idx = fz_u8(&in), pos = fz_u8(&in), x = fz_u8(&in);
      rec tmp;
      if (s.nkept == 0) {
        break;
      }
      tmp = s.kept[idx % s.nkept];
      tmp.bytes[pos % tmp.len] ^= x;
      open_check(&s, tmp.bytes, tmp.len, sizeof(tmp.bytes));
      break;
    }
    case FZ_CHAN_RAW: {
      size_t len = fz_u8(&in), got;
      const uint8_t *b = fz_bytes(&in, len, &got);
      open_check(&s, b, got, MAX_PT);
      break;
    }
    case FZ_CHAN_SMALL: {
      uint8_t idx = fz_u8(&in), dl = fz_u8(&in);
      if (s.nkept == 0) {
        break;
      }
      open_check(&s, s.kept[idx % s.nkept].bytes, s.kept[idx % s.nkept].len,
                 dl);
      break;
    }
    case FZ_CHAN_TIME:
    default:
      s.now += 100u * fz_u16(&in);
      break;
    }
  }
  mtcsec_chan_deinit(&s.rx);
  mtcsec_chan_deinit(&s.tx);
  return 0;
}
