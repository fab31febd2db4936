/*
 * Fuzz target: the UE (PROTOCOL.md sections 4-6) fed device datagrams and
 * server frames, arbitrary or built here (well-formed M1s from three
 * devices; M3, ERR and damaged M3 answers to the M2s the UE wrote).
 *
 * A small model of the UE's exchanges and sessions, written from phone.h
 * and the spec, runs alongside: it predicts the exact return of every
 * mtcsec_ue_read_device() and mtcsec_ue_read_server() call, what
 * mtcsec_ue_write() may produce (an M2 frame whose body is an M1 in flight,
 * with a req_id no other exchange holds, or the M4 of an accepted M3, to
 * the peer its M1 came from), the in-flight count, timeouts and expiries,
 * and which devices have a channel.  Channels are checked both ways against
 * a device-end channel over the same DMKey.  The UE allocates nothing after
 * mtcsec_ue_new().
 *
 * Input: config(1) (bits 0-1: max exchanges - 1), then ops (FZ_UE_* in
 * fuzz_common.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/channel.h>
#include <mtcsec/codec.h>
#include <mtcsec/phone.h>

#include "fuzz_common.h"

#define MAXX 4 /* exchanges at most */
#define NSESS 2
#define TIMEOUT 10000u
#define NDEV 3

static const uint8_t DEV3[MTCSEC_ID_LEN] = {0x02, 0, 0, 0, 0, 0, 0, 0xa3};

enum { MX_FREE = 0, MX_SEND_M2, MX_WAIT_M3, MX_SEND_M4 };

typedef struct mx {
  int state;
  uint32_t req_id; /* known once the M2 is written */
  uint64_t peer;
  mtcsec_tstamp deadline;
  uint8_t mtcd[8], mtcs[8], suite;
  size_t m1len, m4len;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  uint8_t m4[MTCSEC_HS_MAX_LEN];
} mx;

typedef struct ms {
  int used;
  uint8_t mtcd[8];
  mtcsec_tstamp expiry;
  mtcsec_chan dev; /* the device end over the same DMKey */
} ms;

typedef struct harness {
  mtcsec_ue *ue;
  mtcsec_mem mem;
  long allocs;
  const mtcsec_crypto *c;
  size_t maxx;
  mtcsec_tstamp now;
  mx x[MAXX];
  ms s[NSESS];
  uint32_t counter;
  /* events of the current op */
  int n_est, n_err, n_timeout, n_expired;
  uint16_t est_key;
  uint8_t err_code;
} harness;

static harness h;

static void *m_malloc(size_t n, void *ud) {
  (void)ud;
  h.allocs++;
  return malloc(n);
}
static void m_free(void *p, void *ud) {
  (void)ud;
  free(p);
}
static void *m_calloc(size_t a, size_t b, void *ud) {
  (void)ud;
  h.allocs++;
  return calloc(a, b);
}

static void cb_event(void *ud, const mtcsec_ue_event *ev) {
  (void)ud;
  FZ_CHECK(ev->mtcd_id != NULL && ev->detail != NULL);
  FZ_CHECK(strlen(ev->detail) <= 255);
  switch (ev->type) {
  case MTCSEC_UE_EV_ESTABLISHED:
    h.n_est++;
    h.est_key = ev->key_id;
    break;
  case MTCSEC_UE_EV_ERROR:
    h.n_err++;
    h.err_code = ev->errcode;
    break;
  case MTCSEC_UE_EV_TIMEOUT:
    h.n_timeout++;
    break;
  case MTCSEC_UE_EV_EXPIRED:
    h.n_expired++;
    break;
  default:
    FZ_CHECK(0);
  }
}

static const uint8_t *dev_id(unsigned i) {
  return i % NDEV == 0 ? FZ_MTCD_ID : i % NDEV == 1 ? FZ_MTCD_ID2 : DEV3;
}

static size_t model_inflight(void) {
  size_t i, n = 0;
  for (i = 0; i < h.maxx; i++) {
    n += h.x[i].state != MX_FREE;
  }
  return n;
}

static ms *model_session(const uint8_t *mtcd) {
  size_t i;
  for (i = 0; i < NSESS; i++) {
    if (h.s[i].used && memcmp(h.s[i].mtcd, mtcd, 8) == 0) {
      return &h.s[i];
    }
  }
  return NULL;
}

/* ------------------------------------------------------- device link */

/* What mtcsec_ue_read_device must return for pkt (phone.h). */
static int expect_device(const uint8_t *pkt, size_t n, mx **slot) {
  mtcsec_hs hs;
  size_t i;
  int t = mtcsec_msg_type(pkt, n);
  *slot = NULL;
  if (t < 0) {
    return t;
  }
  if (t != MTCSEC_MSG_M1) {
    return MTCSEC_ERR_UNSUPPORTED;
  }
  if (mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, pkt, n) != 0) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (hs.miclen == 0) {
    return MTCSEC_ERR_UNSUPPORTED;
  }
  if (memcmp(hs.ueid, FZ_UEID, 8) != 0) {
    return MTCSEC_ERR_MISMATCH;
  }
  for (i = 0; i < h.maxx; i++) {
    if (h.x[i].state != MX_FREE && h.x[i].m1len == n &&
        memcmp(h.x[i].m1, pkt, n) == 0) {
      return MTCSEC_ERR_UNEXPECTED; /* a duplicate: forwarded once */
    }
  }
  for (i = 0; i < h.maxx; i++) {
    if (h.x[i].state == MX_FREE) {
      *slot = &h.x[i];
      return 0;
    }
  }
  return MTCSEC_ERR_BUSY;
}

static void read_device(const uint8_t *p, size_t n, uint64_t peer) {
  uint8_t *pkt = fz_dup(p, n);
  mx *slot;
  int want = expect_device(pkt, n, &slot);
  int rv = mtcsec_ue_read_device(h.ue, pkt, n, peer, h.now);
  FZ_CHECK(rv == want);
  if (rv == 0) {
    mtcsec_hs hs;
    FZ_CHECK(mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, pkt, n) == 0);
    memset(slot, 0, sizeof(*slot));
    slot->state = MX_SEND_M2;
    slot->peer = peer;
    slot->deadline = h.now + TIMEOUT;
    slot->suite = hs.suite;
    memcpy(slot->mtcd, hs.id_a, 8);
    memcpy(slot->mtcs, hs.id_b, 8);
    memcpy(slot->m1, pkt, n);
    slot->m1len = n;
  }
  free(pkt);
}

static void op_m1(fz_in *in) {
  uint8_t flags = fz_u8(in), nonce8[8] = {0};
  uint8_t info[64], m1[MTCSEC_HS_MAX_LEN];
  mtcsec_m1_fields f;
  mtcsec_dinfo d;
  mtcsec_ssize n, il;
  uint64_t peer;

  nonce8[7] = fz_u8(in);
  peer = fz_u8(in);
  memset(&d, 0, sizeof(d));
  d.present = MTCSEC_DINFO_REQ_PERMS;
  d.req_perms = 3;
  if (flags & 0x20) {
    d.present |= MTCSEC_DINFO_PATH;
    d.npath = 1;
    d.path = FZ_RELAY1;
  }
  il = mtcsec_dinfo_encode(info, sizeof(info), &d);
  FZ_CHECK(il > 0);
  f.suite = fz_suite(flags >> 2);
  f.mtcd_id = dev_id(flags & 3);
  f.mtcs_id = FZ_MTCS_ID;
  f.nonce = nonce8;
  f.ueid = (flags & 0x10) ? FZ_UEID2 : FZ_UEID;
  f.info = info;
  f.info_len = (size_t)il;
  n = mtcsec_m1_build(m1, sizeof(m1), h.c, FZ_PSKEY, &f);
  FZ_CHECK(n > 0);
  if (flags & 0x40) {
    m1[1] = 0x7f; /* a suite nobody knows (section 5: t = 0) */
  }
  read_device(m1, (size_t)n, peer);
}

/* -------------------------------------------------------- server link */

static mx *model_req(uint32_t req_id) {
  size_t i;
  for (i = 0; i < h.maxx; i++) {
    if (h.x[i].state == MX_WAIT_M3 && h.x[i].req_id == req_id) {
      return &h.x[i];
    }
  }
  return NULL;
}

/* What mtcsec_ue_read_server must return for frame (phone.h). */
static int expect_server(const uint8_t *frame, size_t n, mx **xp, ms **sp) {
  mtcsec_frame fr;
  mtcsec_hs m4;
  const uint8_t *dk;
  size_t dkl, i;
  mtcsec_ssize r = mtcsec_frame_parse(&fr, frame, n);
  mx *x;
  *xp = NULL;
  *sp = NULL;
  if (r <= 0 || (size_t)r != n ||
      (fr.type != MTCSEC_MSG_M3 && fr.type != MTCSEC_MSG_ERR)) {
    return MTCSEC_ERR_MALFORMED;
  }
  x = model_req(fr.req_id);
  if (x == NULL) {
    return MTCSEC_ERR_NOT_FOUND;
  }
  *xp = x;
  if (fr.type == MTCSEC_MSG_ERR) {
    return fr.bodylen >= 1 ? 0 : MTCSEC_ERR_MALFORMED;
  }
  if (mtcsec_m3_decode(&m4, &dk, &dkl, fr.body, fr.bodylen) != 0) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (m4.suite != x->suite || memcmp(m4.id_a, x->mtcs, 8) != 0 ||
      memcmp(m4.id_b, x->mtcd, 8) != 0 || memcmp(m4.ueid, FZ_UEID, 8) != 0) {
    return MTCSEC_ERR_MISMATCH;
  }
  *sp = model_session(x->mtcd);
  for (i = 0; *sp == NULL && i < NSESS; i++) {
    if (!h.s[i].used) {
      *sp = &h.s[i];
    }
  }
  return *sp != NULL ? 0 : MTCSEC_ERR_NOMEM;
}

static void read_server(const uint8_t *p, size_t n) {
  uint8_t *frame = fz_dup(p, n);
  mx *x;
  ms *s;
  int want = expect_server(frame, n, &x, &s);
  size_t before = mtcsec_ue_inflight(h.ue);
  int rv = mtcsec_ue_read_server(h.ue, frame, n, h.now);
  FZ_CHECK(rv == want);
  if (rv != 0) {
    FZ_CHECK(mtcsec_ue_inflight(h.ue) == before);
    FZ_CHECK(h.n_est == 0 && h.n_err == 0);
  } else if (frame[2] == MTCSEC_MSG_ERR) {
    FZ_CHECK(h.n_err == 1 && h.err_code == frame[7]);
    memset(x, 0, sizeof(*x));
  } else {
    mtcsec_frame fr;
    mtcsec_hs m4;
    mtcsec_sinfo si;
    const uint8_t *dk;
    size_t dkl;
    FZ_CHECK(mtcsec_frame_parse(&fr, frame, n) == (mtcsec_ssize)n);
    FZ_CHECK(mtcsec_m3_decode(&m4, &dk, &dkl, fr.body, fr.bodylen) == 0);
    FZ_CHECK(mtcsec_sinfo_decode(&si, m4.info, m4.info_len) == 0);
    FZ_CHECK(h.n_est == 1 && h.est_key == si.key_id);
    x->state = MX_SEND_M4;
    x->m4len = fr.bodylen - dkl;
    memcpy(x->m4, fr.body, x->m4len);
    mtcsec_chan_deinit(&s->dev);
    s->used = 1;
    memcpy(s->mtcd, x->mtcd, 8);
    s->expiry = h.now + (mtcsec_tstamp)si.lifetime * 1000u;
    FZ_CHECK(mtcsec_chan_init(&s->dev, h.c, m4.suite, MTCSEC_CHAN_DEVICE, dk,
                              si.key_id, s->expiry) == 0);
  }
  free(frame);
}

static void op_m3(fz_in *in) {
  uint8_t idx = fz_u8(in), flags = fz_u8(in), life = fz_u8(in);
  uint8_t perms = fz_u8(in), key = fz_u8(in);
  uint8_t body[MTCSEC_M3_BODY_MAX_LEN + 8], sinfo[13], nonce[8];
  uint8_t frame[MTCSEC_FRAME_HDR_LEN + sizeof(body)];
  const mtcsec_suite_params *sp;
  mx *cand[MAXX], *x;
  size_t nc = 0, i, bodylen;
  mtcsec_m4_fields f;
  mtcsec_sinfo si;
  mtcsec_hs m1;
  mtcsec_ssize n;
  uint32_t req_id;

  for (i = 0; i < h.maxx; i++) {
    if (h.x[i].state == MX_WAIT_M3) {
      cand[nc++] = &h.x[i];
    }
  }
  if (nc == 0) {
    return;
  }
  x = cand[idx % nc];
  req_id = x->req_id;
  h.counter++;
  if ((flags & 7) == 4) {
    /* ERR: code || detail (control bytes included: the UE cleans them). */
    size_t dl = (size_t)(flags >> 3), k;
    body[0] = perms;
    for (k = 0; k < dl; k++) {
      body[1 + k] = (uint8_t)(life + 31 * k);
    }
    n = mtcsec_frame_encode(frame, sizeof(frame), MTCSEC_MSG_ERR, req_id, body,
                            1 + dl);
    FZ_CHECK(n > 0);
    read_server(frame, (size_t)n);
    return;
  }
  FZ_CHECK(mtcsec_hs_decode(&m1, MTCSEC_MSG_M1, x->m1, x->m1len) == 0);
  sp = mtcsec_suite_get(m1.suite);
  FZ_CHECK(sp != NULL);
  memset(&si, 0, sizeof(si));
  si.lifetime = life;
  si.perms = perms;
  si.key_id = key;
  FZ_CHECK(mtcsec_sinfo_encode(sinfo, sizeof(sinfo), &si) == 13);
  memset(nonce, 0, sizeof(nonce));
  memcpy(nonce, &h.counter, sizeof(h.counter));
  f.suite = m1.suite;
  f.mtcs_id = m1.id_b;
  f.mtcd_id = (flags & 7) == 5 ? dev_id(idx + 1u) : m1.id_a;
  f.mtcs_nonce = nonce;
  f.ueid = m1.ueid;
  f.info = sinfo;
  f.info_len = sizeof(sinfo);
  f.mtcd_nonce = m1.nonce;
  f.m1_info = m1.info;
  f.m1_info_len = m1.info_len;
  n = mtcsec_m4_build(body, sizeof(body), h.c, FZ_PSKEY, &f);
  FZ_CHECK(n > 0);
  bodylen = (size_t)n;
  for (i = 0; i < sp->keylen; i++) {
    body[bodylen++] = (uint8_t)(h.counter * 7u + i);
  }
  if ((flags & 7) == 6) {
    bodylen -= 1u + (flags >> 3) % 8u; /* DMKey cut short */
  } else if ((flags & 7) == 7) {
    req_id ^= 0x80000000u; /* an exchange nobody has (most likely) */
  }
  n = mtcsec_frame_encode(frame, sizeof(frame), MTCSEC_MSG_M3, req_id, body,
                          bodylen);
  FZ_CHECK(n > 0);
  read_server(frame, (size_t)n);
}

/* ---------------------------------------------------------------- write */

static void op_write(fz_in *in) {
  size_t destlen = 2u * fz_u8(in), i, need_min = SIZE_MAX;
  uint8_t *dest = malloc(destlen != 0 ? destlen : 1);
  mtcsec_link link = (mtcsec_link)9;
  uint64_t peer = 99;
  mtcsec_ssize n;
  FZ_CHECK(dest != NULL);
  for (i = 0; i < h.maxx; i++) {
    size_t need = h.x[i].state == MX_SEND_M2   ? 7 + h.x[i].m1len
                  : h.x[i].state == MX_SEND_M4 ? h.x[i].m4len
                                               : SIZE_MAX;
    if (need < need_min) {
      need_min = need;
    }
  }
  n = mtcsec_ue_write(h.ue, destlen != 0 ? dest : NULL, destlen, &link, &peer,
                      h.now);
  if (n == 0) {
    FZ_CHECK(need_min == SIZE_MAX); /* nothing queued */
  } else if (n < 0) {
    FZ_CHECK(n == MTCSEC_ERR_NOBUF && need_min != SIZE_MAX);
  } else {
    FZ_CHECK((size_t)n <= destlen);
    if (link == MTCSEC_LINK_SERVER) {
      mtcsec_frame fr;
      mx *x = NULL;
      FZ_CHECK(mtcsec_frame_parse(&fr, dest, (size_t)n) == n);
      FZ_CHECK(fr.type == MTCSEC_MSG_M2 && fr.req_id != 0);
      for (i = 0; i < h.maxx; i++) {
        if (h.x[i].state == MX_SEND_M2 && h.x[i].m1len == fr.bodylen &&
            memcmp(h.x[i].m1, fr.body, fr.bodylen) == 0) {
          x = &h.x[i];
        } else if (h.x[i].state == MX_WAIT_M3 || h.x[i].state == MX_SEND_M4) {
          /* req_ids of live exchanges are distinct (section 5). */
          FZ_CHECK(h.x[i].req_id != fr.req_id);
        }
      }
      FZ_CHECK(x != NULL);
      x->state = MX_WAIT_M3;
      x->req_id = fr.req_id;
    } else {
      mx *x = NULL;
      FZ_CHECK(link == MTCSEC_LINK_DEVICE);
      for (i = 0; i < h.maxx; i++) {
        if (h.x[i].state == MX_SEND_M4 && h.x[i].m4len == (size_t)n &&
            memcmp(h.x[i].m4, dest, (size_t)n) == 0 && h.x[i].peer == peer) {
          x = &h.x[i];
        }
      }
      FZ_CHECK(x != NULL);
      memset(x, 0, sizeof(*x));
    }
  }
  FZ_CHECK(mtcsec_ue_inflight(h.ue) == model_inflight());
  free(dest);
}

/* ---------------------------------------------------------------- timers */

static void op_time(fz_in *in) {
  uint8_t b = fz_u8(in);
  int timeouts = 0, expired = 0;
  size_t i;
  h.now += b < 128 ? 100u * b : 20000u * (b - 127u);
  FZ_CHECK(mtcsec_ue_handle_expiry(h.ue, h.now) == 0);
  for (i = 0; i < h.maxx; i++) {
    if ((h.x[i].state == MX_SEND_M2 || h.x[i].state == MX_WAIT_M3) &&
        h.x[i].deadline <= h.now) {
      memset(&h.x[i], 0, sizeof(h.x[i]));
      timeouts++;
    }
  }
  for (i = 0; i < NSESS; i++) {
    if (h.s[i].used && h.s[i].expiry <= h.now) {
      mtcsec_chan_deinit(&h.s[i].dev);
      h.s[i].used = 0;
      expired++;
    }
  }
  FZ_CHECK(h.n_timeout == timeouts && h.n_expired == expired);
  FZ_CHECK(mtcsec_ue_get_expiry(h.ue) > h.now);
  FZ_CHECK(mtcsec_ue_inflight(h.ue) == model_inflight());
}

/* -------------------------------------------------------------- channel */

static void op_chan(fz_in *in) {
  const uint8_t *id = dev_id(fz_u8(in));
  size_t len = fz_u8(in), got;
  const uint8_t *pt = fz_bytes(in, len, &got);
  mtcsec_chan *ch = mtcsec_ue_channel(h.ue, id);
  ms *s = model_session(id);
  uint8_t rec[7 + 255 + 16], back[255];
  mtcsec_ssize n, r;

  FZ_CHECK((ch != NULL) == (s != NULL));
  if (s == NULL || h.now >= s->expiry) {
    return;
  }
  /* Device to UE. */
  n = mtcsec_chan_seal(&s->dev, rec, sizeof(rec), pt, got, h.now);
  FZ_CHECK(n > 0);
  r = mtcsec_chan_open(ch, back, sizeof(back), rec, (size_t)n, h.now);
  FZ_CHECK(r == (mtcsec_ssize)got && memcmp(back, pt, got) == 0);
  /* The same record again is a replay. */
  FZ_CHECK(mtcsec_chan_open(ch, back, sizeof(back), rec, (size_t)n, h.now) ==
           MTCSEC_ERR_REPLAY);
  /* UE to device. */
  n = mtcsec_chan_seal(ch, rec, sizeof(rec), pt, got, h.now);
  FZ_CHECK(n > 0);
  r = mtcsec_chan_open(&s->dev, back, sizeof(back), rec, (size_t)n, h.now);
  FZ_CHECK(r == (mtcsec_ssize)got && memcmp(back, pt, got) == 0);
}

static void op_forget(fz_in *in) {
  const uint8_t *id = dev_id(fz_u8(in));
  ms *s = model_session(id);
  int rv = mtcsec_ue_forget(h.ue, id);
  FZ_CHECK(rv == (s != NULL ? 0 : MTCSEC_ERR_NOT_FOUND));
  if (s != NULL) {
    mtcsec_chan_deinit(&s->dev);
    s->used = 0;
  }
  FZ_CHECK(mtcsec_ue_channel(h.ue, id) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mtcsec_ue_config cfg;
  mtcsec_ue_callbacks cb;
  uint8_t m0[MTCSEC_M0_FIXED_LEN];
  long allocs;
  fz_in in;
  int ops = 0;
  size_t i;

  memset(&h, 0, sizeof(h));
  fz_init(&in, data, size);
  h.c = fz_openssl();
  h.maxx = 1u + (fz_u8(&in) & 3u);
  h.mem.malloc = m_malloc;
  h.mem.free = m_free;
  h.mem.calloc = m_calloc;
  h.now = 5000;

  mtcsec_ue_config_default(&cfg);
  memcpy(cfg.ueid, FZ_UEID, 8);
  cfg.max_exchanges = h.maxx;
  cfg.max_sessions = NSESS;
  cfg.exchange_timeout = TIMEOUT;
  cfg.mem = &h.mem;
  cfg.log = fz_log;
  cb.on_event = cb_event;
  FZ_CHECK(mtcsec_ue_new(&h.ue, &cfg, h.c, &cb, NULL) == 0);
  allocs = h.allocs;
  FZ_CHECK(mtcsec_ue_m0(h.ue, m0, sizeof(m0), 3) == sizeof(m0));

  while (fz_more(&in) && ops++ < 512) {
    uint8_t op = (uint8_t)(fz_u8(&in) % FZ_UE_NOPS);
    h.n_est = h.n_err = h.n_timeout = h.n_expired = 0;
    switch (op) {
    case FZ_UE_DEVRAW: {
      uint64_t peer = fz_u8(&in);
      size_t len = fz_u8(&in), got;
      const uint8_t *p = fz_bytes(&in, len, &got);
      read_device(p, got, peer);
      break;
    }
    case FZ_UE_M1:
      op_m1(&in);
      break;
    case FZ_UE_SRVRAW: {
      size_t len = fz_u16(&in), got;
      const uint8_t *p = fz_bytes(&in, len, &got);
      read_server(p, got);
      break;
    }
    case FZ_UE_M3:
      op_m3(&in);
      break;
    case FZ_UE_WRITE:
      op_write(&in);
      break;
    case FZ_UE_TIME:
      op_time(&in);
      break;
    case FZ_UE_CHAN:
      op_chan(&in);
      break;
    case FZ_UE_FORGET:
    default:
      op_forget(&in);
      break;
    }
    FZ_CHECK(mtcsec_ue_inflight(h.ue) == model_inflight());
    /* Reading and writing never allocate (phone.h). */
    FZ_CHECK(h.allocs == allocs);
  }

  mtcsec_ue_del(h.ue);
  for (i = 0; i < NSESS; i++) {
    mtcsec_chan_deinit(&h.s[i].dev);
  }
  return 0;
}
