/*
 * Fuzz target: the server core (PROTOCOL.md sections 4, 5, 7) over the
 * in-memory store, which holds one device (FZ_MTCD_ID, K_auth and K_dm from
 * the fixed PSKey), one disabled device, a grant for FZ_UEID and one allowed
 * relay.  Frames come raw from the input or are built here (M2s with valid
 * or damaged MICs, chosen nonces, REQ_PERMS and PATHs).  By default every
 * frame is committed and the answers drained at once; ops can defer the
 * commit, hand a batch out, fail the store or close connections.
 *
 * Invariants:
 *  - every output frame parses with mtcsec_frame_parse() to exactly its
 *    length, is an M3 or an ERR, and answers a frame handed in on that
 *    connection with that req_id; nothing is answered twice; once nothing is
 *    in flight, every request has had its answer (unless its connection
 *    closed);
 *  - ERR codes follow the ordered checks of section 5: codes 1-7 are
 *    predicted exactly from the M1 and the TLS identity; REPLAY only for a
 *    nonce seen before or below the window; UE_NOT_AUTHORIZED,
 *    RELAY_NOT_AUTHORIZED, RATE_LIMITED and INTERNAL only when they apply;
 *  - an M3 answers its M1: its M4 verifies under K_auth against the M1's
 *    nonce and info, PERMS is the grant intersected with REQ_PERMS, the
 *    DMKey is the one of section 4; a nonce gets at most one M3 (a duplicate
 *    is byte for byte the first answer, for the same UE and M1); key ids of
 *    new sessions are distinct; the store records one session per new M3;
 *  - nothing is allocated after mtcsec_srv_new().
 *
 * Input: config(1), then ops (FZ_SRV_* in fuzz_common.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/codec.h>
#include <mtcsec/server.h>
#include <mtcsec/store.h>

#include "crypto/provider_fixed.h"
#include "fuzz_common.h"

static const uint8_t DEV3[MTCSEC_ID_LEN] = {0x02, 0, 0, 0, 0, 0, 0, 0xa3};

#define NREQ 64
#define NISSUED 64
#define NSEEN 256
#define LIFETIME 3600u

typedef struct req {
  int used;
  uint64_t conn;
  uint32_t req_id;
  uint8_t tls[8];
  int code;         /* checks 1-7: the ERR code, or 0 when they pass */
  int replay_ok;    /* its nonce was seen before, or is below the window */
  mtcsec_tstamp at; /* recv time: unique per frame, names it in results */
  int immediate;    /* answered inside mtcsec_srv_recv */
  int result;       /* the code of its answer (0: M3), -1 before */
  uint64_t rseq;    /* order of the answers: the output queue's order */
  size_t len;
  uint8_t body[MTCSEC_HS_MAX_LEN];
} req;

typedef struct issued {
  uint64_t nonce;
  uint8_t tls[8];
  size_t m1len, m3len;
  uint8_t m1[MTCSEC_HS_MAX_LEN];
  uint8_t m3[MTCSEC_M3_BODY_MAX_LEN];
} issued;

typedef struct harness {
  mtcsec_fixed fixed;
  const mtcsec_crypto *c;
  mtcsec_store_mem *st;
  mtcsec_srv *srv;
  mtcsec_mem mem;
  long allocs;
  uint8_t suite, perms;
  int rate, failed_store;
  const mtcsec_suite_params *sp;
  uint8_t k_auth[32], k_dm[32];
  mtcsec_tstamp now;
  req reqs[NREQ];
  issued iss[NISSUED];
  size_t niss, issnext;
  uint64_t seen[NSEEN]; /* nonces that passed checks 1-7 */
  size_t nseen;
  uint64_t seen_max;
  uint16_t keys[NISSUED];
  size_t nkeys;
  size_t sessions; /* on_result with a new session */
  int batch_out;
  mtcsec_srv_batch batch;
  req *cur; /* the request mtcsec_srv_recv is handling */
  uint64_t rseq;
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

static void cb_result(void *ud, const mtcsec_srv_result *r) {
  req *q = NULL;
  size_t i;
  (void)ud;
  FZ_CHECK(r->ueid != NULL && r->errcode <= MTCSEC_ERRCODE_MAX);
  if (r->errcode == 0 && !r->duplicate) {
    FZ_CHECK(r->session != NULL && r->mtcd_id != NULL);
    FZ_CHECK(memcmp(r->session->mtcd_id, FZ_MTCD_ID, 8) == 0);
    h.sessions++;
  } else {
    FZ_CHECK(r->session == NULL);
  }
  if (h.cur != NULL) {
    /* Inside recv only the frame being handled can be answered, and only
     * with an ERR or a duplicate M3. */
    FZ_CHECK(r->conn == h.cur->conn && r->req_id == h.cur->req_id &&
             r->started == h.cur->at);
    FZ_CHECK(r->errcode != 0 || r->duplicate);
    q = h.cur;
    q->immediate = 1;
  } else {
    /* The request this answers: its connection, req_id and recv time. */
    for (i = 0; i < NREQ; i++) {
      if (h.reqs[i].used && h.reqs[i].conn == r->conn &&
          h.reqs[i].req_id == r->req_id && h.reqs[i].at == r->started) {
        q = &h.reqs[i];
      }
    }
  }
  if (q != NULL) {
    FZ_CHECK(q->result < 0); /* one answer per request */
    q->result = r->errcode;
    q->rseq = ++h.rseq;
  }
  /* else: its connection was closed, the answer goes nowhere. */
}

/* ---------------------------------------------------------- prediction */

/* Checks 1-7 of section 5 for a frame of this type and body. */
static int static_code(uint8_t type, const uint8_t *body, size_t n,
                       const uint8_t tls[8]) {
  mtcsec_hs m1;
  mtcsec_dinfo di;
  if (type != MTCSEC_MSG_M2 ||
      mtcsec_hs_decode(&m1, MTCSEC_MSG_M1, body, n) != 0 ||
      mtcsec_dinfo_decode(&di, m1.info, m1.info_len) != 0) {
    return MTCSEC_ERRCODE_MALFORMED;
  }
  if (memcmp(m1.id_b, FZ_MTCS_ID, 8) != 0) {
    return MTCSEC_ERRCODE_WRONG_SERVER;
  }
  if (memcmp(m1.id_a, FZ_MTCD_ID, 8) != 0 &&
      memcmp(m1.id_a, FZ_MTCD_ID2, 8) != 0) {
    return MTCSEC_ERRCODE_UNKNOWN_DEVICE;
  }
  if (memcmp(m1.id_a, FZ_MTCD_ID2, 8) == 0) {
    return MTCSEC_ERRCODE_DEVICE_DISABLED;
  }
  if (m1.suite != h.suite) {
    return MTCSEC_ERRCODE_UNSUPPORTED_SUITE;
  }
  if (memcmp(m1.ueid, tls, 8) != 0) {
    return MTCSEC_ERRCODE_UE_ID_MISMATCH;
  }
  if (mtcsec_m1_verify(&m1, h.c, h.k_auth) != 0) {
    return MTCSEC_ERRCODE_BAD_MIC;
  }
  return 0;
}

static uint8_t expected_perms(const mtcsec_hs *m1, const mtcsec_dinfo *di) {
  uint8_t p;
  if (memcmp(m1->ueid, FZ_UEID, 8) != 0) {
    return 0; /* no grant */
  }
  p = h.perms;
  if (di->present & MTCSEC_DINFO_REQ_PERMS) {
    p &= di->req_perms;
  }
  return p;
}

static int path_allowed(const mtcsec_dinfo *di) {
  size_t i;
  for (i = 0; i < di->npath; i++) {
    if (memcmp(di->path + 8 * i, FZ_RELAY1, 8) != 0) {
      return 0;
    }
  }
  return 1;
}

static int was_seen(uint64_t n) {
  size_t i;
  for (i = 0; i < h.nseen && i < NSEEN; i++) {
    if (h.seen[i] == n) {
      return 1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------- answers */

/* Does frame (an ERR or an M3 body) answer r consistently? */
static int answers(const req *r, const mtcsec_frame *fr) {
  mtcsec_hs m1, m4;
  mtcsec_dinfo di;
  mtcsec_sinfo si;
  const uint8_t *dk;
  size_t dkl;
  uint8_t want_perms, dmkey[32];
  int code = 0;

  if (fr->type == MTCSEC_MSG_ERR) {
    code = fr->body[0];
    if (r->code != 0) {
      return code == r->code;
    }
    if (code < MTCSEC_ERRCODE_REPLAY) {
      return 0;
    }
  } else if (r->code != 0) {
    return 0;
  }
  FZ_CHECK(mtcsec_hs_decode(&m1, MTCSEC_MSG_M1, r->body, r->len) == 0);
  FZ_CHECK(mtcsec_dinfo_decode(&di, m1.info, m1.info_len) == 0);
  want_perms = expected_perms(&m1, &di);
  if (fr->type == MTCSEC_MSG_ERR) {
    switch (code) {
    case MTCSEC_ERRCODE_REPLAY:
      return r->replay_ok;
    case MTCSEC_ERRCODE_UE_NOT_AUTHORIZED:
      return want_perms == 0;
    case MTCSEC_ERRCODE_RELAY_NOT_AUTHORIZED:
      return want_perms != 0 && !path_allowed(&di);
    case MTCSEC_ERRCODE_RATE_LIMITED:
      return h.rate && want_perms != 0 && path_allowed(&di);
    case MTCSEC_ERRCODE_INTERNAL:
      return h.failed_store;
    default:
      return 0;
    }
  }
  /* An M3: its M4 answers this M1 (section 4). */
  if (want_perms == 0 || !path_allowed(&di) ||
      mtcsec_m3_decode(&m4, &dk, &dkl, fr->body, fr->bodylen) != 0) {
    return 0;
  }
  if (m4.suite != m1.suite || memcmp(m4.id_a, FZ_MTCS_ID, 8) != 0 ||
      memcmp(m4.id_b, m1.id_a, 8) != 0 || memcmp(m4.ueid, m1.ueid, 8) != 0 ||
      mtcsec_m4_verify(&m4, h.c, h.k_auth, m1.nonce, m1.info, m1.info_len) !=
        0) {
    return 0;
  }
  FZ_CHECK(mtcsec_sinfo_decode(&si, m4.info, m4.info_len) == 0);
  FZ_CHECK(si.perms == want_perms && si.lifetime == LIFETIME);
  FZ_CHECK(dkl == h.sp->keylen);
  FZ_CHECK(mtcsec_derive_dmkey(h.c, h.suite, h.k_dm, FZ_MTCD_ID, FZ_MTCS_ID,
                               m1.nonce, m4.nonce, m1.ueid, dmkey) == 0);
  FZ_CHECK(memcmp(dmkey, dk, dkl) == 0);
  return 1;
}

/* A new M3 for r: one M3 per nonce, the same bytes when answered again. */
static void record_m3(const req *r, const mtcsec_frame *fr) {
  mtcsec_hs m1, m4;
  mtcsec_sinfo si;
  const uint8_t *dk;
  size_t dkl, i;
  uint64_t nonce;
  issued *e;

  FZ_CHECK(mtcsec_hs_decode(&m1, MTCSEC_MSG_M1, r->body, r->len) == 0);
  nonce = mtcsec_get_u64(m1.nonce);
  for (i = 0; i < h.niss; i++) {
    e = &h.iss[i];
    if (e->nonce == nonce) {
      /* Section 4: only the identical M2 of the same UE, answered again. */
      FZ_CHECK(e->m3len == fr->bodylen &&
               memcmp(e->m3, fr->body, fr->bodylen) == 0);
      FZ_CHECK(memcmp(e->tls, r->tls, 8) == 0 && e->m1len == r->len &&
               memcmp(e->m1, r->body, r->len) == 0);
      return;
    }
  }
  FZ_CHECK(mtcsec_m3_decode(&m4, &dk, &dkl, fr->body, fr->bodylen) == 0);
  FZ_CHECK(mtcsec_sinfo_decode(&si, m4.info, m4.info_len) == 0);
  for (i = 0; i < h.nkeys; i++) {
    FZ_CHECK(h.keys[i] != si.key_id); /* key ids of new sessions differ */
  }
  if (h.nkeys < NISSUED) {
    h.keys[h.nkeys++] = si.key_id;
  }
  e = &h.iss[h.issnext];
  h.issnext = (h.issnext + 1) % NISSUED;
  if (h.niss < NISSUED) {
    h.niss++;
  }
  e->nonce = nonce;
  memcpy(e->tls, r->tls, 8);
  e->m1len = r->len;
  memcpy(e->m1, r->body, r->len);
  e->m3len = fr->bodylen;
  memcpy(e->m3, fr->body, fr->bodylen);
}

/* Checks one output frame and matches it to its request. */
static void check_out(const uint8_t *out, size_t n, uint64_t conn) {
  mtcsec_frame fr;
  req *best;
  size_t i;
  FZ_CHECK(mtcsec_frame_parse(&fr, out, n) == (mtcsec_ssize)n);
  FZ_CHECK(fr.type == MTCSEC_MSG_M3 || fr.type == MTCSEC_MSG_ERR);
  if (fz_debug()) {
    fprintf(stderr, "  out conn=%llu req=%lu %s %d\n", (unsigned long long)conn,
            (unsigned long)fr.req_id, fr.type == MTCSEC_MSG_M3 ? "M3" : "ERR",
            fr.type == MTCSEC_MSG_ERR ? fr.body[0] : 0);
  }
  if (fr.type == MTCSEC_MSG_ERR) {
    FZ_CHECK(fr.bodylen >= 1 && fr.body[0] >= 1 &&
             fr.body[0] <= MTCSEC_ERRCODE_MAX);
  }
  /* The queue is FIFO: this is the oldest answer not yet written. */
  best = NULL;
  for (i = 0; i < NREQ; i++) {
    req *r = &h.reqs[i];
    if (r->used && r->result >= 0 && (best == NULL || r->rseq < best->rseq)) {
      best = r;
    }
  }
  FZ_CHECK(best != NULL); /* every answer answers a request */
  FZ_CHECK(best->conn == conn && best->req_id == fr.req_id);
  FZ_CHECK(best->result == (fr.type == MTCSEC_MSG_ERR ? fr.body[0] : 0));
  FZ_CHECK(answers(best, &fr));
  if (fr.type == MTCSEC_MSG_M3) {
    record_m3(best, &fr);
  }
  best->used = 0;
}

static size_t outstanding(void) {
  size_t i, n = 0;
  for (i = 0; i < NREQ; i++) {
    n += h.reqs[i].used != 0;
  }
  return n;
}

/* Writes every queued answer. */
static void drain(void) {
  uint8_t out[MTCSEC_FRAME_HDR_LEN + MTCSEC_M3_BODY_MAX_LEN];
  uint64_t conn;
  mtcsec_ssize n;
  int guard = 0;
  while ((n = mtcsec_srv_write(h.srv, out, sizeof(out), &conn)) > 0) {
    check_out(out, (size_t)n, conn);
    FZ_CHECK(guard++ < 100000);
  }
  FZ_CHECK(n == 0);
  /* Nothing in flight: every request still open has been answered. */
  if (mtcsec_srv_pending(h.srv) == 0 && !h.batch_out) {
    FZ_CHECK(outstanding() == 0);
  }
}

static void commit(int fail) {
  int rv;
  if (h.batch_out) {
    FZ_CHECK(mtcsec_srv_commit(h.srv, h.now) == MTCSEC_ERR_INVALID_STATE ||
             mtcsec_srv_pending(h.srv) == 0);
    drain();
    return;
  }
  if (fail && mtcsec_srv_pending(h.srv) > 0) {
    mtcsec_store_mem_fail_commits(h.st, 1);
    h.failed_store = 1;
  }
  rv = mtcsec_srv_commit(h.srv, h.now);
  FZ_CHECK(rv == 0 || (rv == MTCSEC_ERR_STORE && fail));
  FZ_CHECK(mtcsec_srv_pending(h.srv) == 0);
  mtcsec_store_mem_fail_commits(h.st, 0);
  drain();
}

/* --------------------------------------------------------------- recv */

static void recv_frame(uint64_t conn, const uint8_t tls[8], const uint8_t *p,
                       size_t n) {
  uint8_t *frame = fz_dup(p, n);
  mtcsec_frame fr;
  mtcsec_ssize pr = mtcsec_frame_parse(&fr, frame, n);
  size_t i, before = mtcsec_srv_pending(h.srv);
  req *r = NULL;
  int rv;

  for (i = 0; i < NREQ; i++) {
    if (!h.reqs[i].used) {
      r = &h.reqs[i];
      break;
    }
  }
  FZ_CHECK(r != NULL); /* bounded by the server's answer slots */
  memset(r, 0, sizeof(*r));
  r->conn = conn;
  r->req_id = pr > 0 ? fr.req_id : 0;
  r->result = -1;
  r->at = ++h.now; /* a distinct time for every frame */
  h.cur = r;
  rv = mtcsec_srv_recv(h.srv, conn, tls, frame, n, h.now);
  h.cur = NULL;

  if (fz_debug()) {
    fprintf(stderr, "recv conn=%llu req=%lu len=%zu -> %d (code %d%s)\n",
            (unsigned long long)conn, (unsigned long)r->req_id, n, rv,
            pr > 0 ? static_code(fr.type, fr.body, fr.bodylen, tls) : -1,
            r->immediate ? ", answered" : "");
  }
  if (pr == MTCSEC_ERR_MALFORMED) {
    FZ_CHECK(rv == MTCSEC_ERR_MALFORMED);
  } else if (pr <= 0 || (size_t)pr != n) {
    FZ_CHECK(rv == MTCSEC_ERR_INVALID_ARGUMENT);
  } else {
    FZ_CHECK(rv == 0 || rv == MTCSEC_ERR_BUSY);
  }
  if (rv != 0) {
    FZ_CHECK(!r->immediate); /* not handled: not answered */
    FZ_CHECK(mtcsec_srv_pending(h.srv) == before);
  } else {
    r->used = 1;
    memcpy(r->tls, tls, 8);
    r->code = static_code(fr.type, fr.body, fr.bodylen, tls);
    r->len = fr.bodylen <= sizeof(r->body) ? fr.bodylen : 0;
    memcpy(r->body, fr.body, r->len);
    /* Checks 1-7 fail at once. */
    if (r->code != 0) {
      FZ_CHECK(r->immediate && r->result == r->code);
    }
    if (r->code == 0) {
      mtcsec_hs m1;
      uint64_t nonce;
      FZ_CHECK(mtcsec_hs_decode(&m1, MTCSEC_MSG_M1, r->body, r->len) == 0);
      nonce = mtcsec_get_u64(m1.nonce);
      /* The window knows it, or it is below the window (section 4). */
      r->replay_ok =
        was_seen(nonce) || (h.seen_max >= 64 && nonce <= h.seen_max - 64);
      h.seen[h.nseen++ % NSEEN] = nonce;
      if (nonce > h.seen_max) {
        h.seen_max = nonce;
      }
    }
  }
  free(frame);
}

static void op_m2(fz_in *in) {
  uint64_t conn = fz_u8(in) & 3u;
  uint16_t flags = fz_u16(in);
  uint8_t nb = fz_u8(in), req_id = fz_u8(in);
  uint8_t nonce8[8], info[64], m1[MTCSEC_HS_MAX_LEN];
  uint8_t frame[MTCSEC_FRAME_HDR_LEN + MTCSEC_HS_MAX_LEN];
  uint8_t relays[16], k_auth[32], k_dm[32];
  const uint8_t *dev, *tls, *ueid;
  mtcsec_m1_fields f;
  mtcsec_dinfo d;
  mtcsec_ssize n, il;
  uint64_t nonce;
  uint8_t suite;
  unsigned nr = 0;

  dev = (flags & 3) == 1 ? FZ_MTCD_ID2 : (flags & 3) == 2 ? DEV3 : FZ_MTCD_ID;
  suite = ((flags >> 2) & 3) < 2    ? h.suite
          : ((flags >> 2) & 3) == 2 ? (uint8_t)(h.suite % 3 + 1)
                                    : h.suite;
  tls = (flags & 0x10) ? FZ_UEID2 : FZ_UEID;
  ueid = (flags & 0x20) ? FZ_UEID2 : FZ_UEID;
  nonce = nb < 0xf0 ? nb : (uint64_t)(nb - 0xef) << 8;
  mtcsec_put_u64(nonce8, nonce);

  memset(&d, 0, sizeof(d));
  if (flags & 0x80) {
    d.present |= MTCSEC_DINFO_REQ_PERMS;
    d.req_perms = (uint8_t)(flags >> 12);
  }
  if (flags & 0x100) {
    memcpy(relays + 8 * nr++, FZ_RELAY1, 8);
  }
  if (flags & 0x200) {
    memcpy(relays + 8 * nr++, FZ_RELAY2, 8);
  }
  if (nr > 0) {
    d.present |= MTCSEC_DINFO_PATH;
    d.npath = (uint8_t)nr;
    d.path = relays;
  }
  il = mtcsec_dinfo_encode(info, sizeof(info), &d);
  FZ_CHECK(il >= 0);
  FZ_CHECK(mtcsec_derive_device_keys(h.c, suite, FZ_PSKEY, dev, FZ_MTCS_ID,
                                     k_auth, k_dm) == 0);
  f.suite = suite;
  f.mtcd_id = dev;
  f.mtcs_id = (flags & 0x400) ? FZ_RELAY1 : FZ_MTCS_ID;
  f.nonce = nonce8;
  f.ueid = ueid;
  f.info = info;
  f.info_len = (size_t)il;
  n = mtcsec_m1_build(m1, sizeof(m1), h.c, k_auth, &f);
  FZ_CHECK(n > 0);
  if (((flags >> 2) & 3) == 3) {
    m1[1] = 0x7f; /* unknown suite */
  }
  if (flags & 0x40) {
    m1[n - 1] ^= 0x01; /* BAD_MIC */
  }
  n = mtcsec_frame_encode(frame, sizeof(frame), MTCSEC_MSG_M2, req_id, m1,
                          (size_t)n);
  FZ_CHECK(n > 0);
  recv_frame(conn, tls, frame, (size_t)n);
  if (!(flags & 0x800)) {
    commit(0); /* the default: commit after each frame */
  }
}

static void op_raw(fz_in *in) {
  uint64_t conn = fz_u8(in) & 3u;
  uint8_t who = fz_u8(in);
  size_t len = fz_u16(in) % 1024u, got;
  const uint8_t *p = fz_bytes(in, len, &got);
  recv_frame(conn, (who & 1) ? FZ_UEID2 : FZ_UEID, p, got);
  if (!(who & 2)) {
    commit(0);
  }
}

static void op_batch(fz_in *in) {
  uint8_t b = fz_u8(in);
  if (!h.batch_out) {
    FZ_CHECK(mtcsec_srv_take_batch(h.srv, &h.batch) == 0);
    h.batch_out = h.batch.n > 0;
    FZ_CHECK(h.batch.n == 0 || mtcsec_srv_pending(h.srv) == 0);
    if (h.batch_out) {
      mtcsec_srv_batch other;
      FZ_CHECK(mtcsec_srv_take_batch(h.srv, &other) ==
               MTCSEC_ERR_INVALID_STATE);
    }
  } else {
    int rv;
    if (b & 1) {
      rv = MTCSEC_ERR_STORE;
      h.failed_store = 1;
    } else {
      rv = mtcsec_store_mem_ops.commit(h.st, h.batch.txns, h.batch.n,
                                       h.batch.results);
      FZ_CHECK(rv == 0);
    }
    FZ_CHECK(mtcsec_srv_batch_done(h.srv, &h.batch, rv, h.now) == 0);
    h.batch_out = 0;
  }
  drain();
}

static void op_revoke(fz_in *in) {
  uint16_t key = fz_u16(in);
  static const uint8_t nonce[8] = {0, 0, 0, 0, 0, 0, 0, 7};
  uint8_t buf[27 + 16];
  const uint8_t *dev = (key & 1) ? DEV3 : FZ_MTCD_ID;
  mtcsec_revoke r;
  mtcsec_ssize n =
    mtcsec_srv_revocation(h.srv, buf, sizeof(buf), dev, key, nonce);
  if (dev == DEV3) {
    FZ_CHECK(n == MTCSEC_ERR_NOT_FOUND);
    return;
  }
  FZ_CHECK(n == (mtcsec_ssize)(27 + h.sp->miclen));
  FZ_CHECK(mtcsec_revoke_decode(&r, buf, (size_t)n, h.sp->miclen) == 0);
  FZ_CHECK(r.key_id == key);
  FZ_CHECK(mtcsec_revoke_verify(&r, buf, (size_t)n, h.c, h.suite, h.k_auth) ==
           0);
  FZ_CHECK(mtcsec_srv_revocation(h.srv, buf, (size_t)n - 1, dev, key, nonce) ==
           MTCSEC_ERR_NOBUF);
}

static void op_write(fz_in *in) {
  size_t destlen = fz_u8(in);
  uint8_t *dest = malloc(destlen != 0 ? destlen : 1);
  uint64_t conn = 0;
  mtcsec_ssize n;
  FZ_CHECK(dest != NULL);
  n = mtcsec_srv_write(h.srv, destlen != 0 ? dest : NULL, destlen, &conn);
  FZ_CHECK(n == 0 || n == MTCSEC_ERR_NOBUF || (n > 0 && (size_t)n <= destlen));
  if (n > 0) {
    check_out(dest, (size_t)n, conn);
  }
  free(dest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mtcsec_srv_config cfg;
  mtcsec_srv_callbacks cb;
  mtcsec_store_device dev;
  uint8_t conf;
  fz_in in;
  int ops = 0;

  memset(&h, 0, sizeof(h));
  fz_init(&in, data, size);
  conf = fz_u8(&in);
  mtcsec_fixed_init(&h.fixed, fz_openssl(), 0x737276u);
  h.c = mtcsec_fixed_crypto(&h.fixed);
  h.suite = fz_suite(conf);
  h.sp = mtcsec_suite_get(h.suite);
  h.rate = (conf >> 2) & 1;
  h.perms = (uint8_t)((conf >> 3) & 0x0f);
  h.now = 1000000;
  FZ_CHECK(mtcsec_derive_device_keys(h.c, h.suite, FZ_PSKEY, FZ_MTCD_ID,
                                     FZ_MTCS_ID, h.k_auth, h.k_dm) == 0);

  FZ_CHECK(mtcsec_store_mem_new(&h.st, NULL) == 0);
  memset(&dev, 0, sizeof(dev));
  dev.suite = h.suite;
  memcpy(dev.k_auth, h.k_auth, sizeof(dev.k_auth));
  memcpy(dev.k_dm, h.k_dm, sizeof(dev.k_dm));
  FZ_CHECK(mtcsec_store_mem_add_device(h.st, FZ_MTCD_ID, &dev) == 0);
  dev.disabled = 1;
  FZ_CHECK(mtcsec_store_mem_add_device(h.st, FZ_MTCD_ID2, &dev) == 0);
  FZ_CHECK(
    mtcsec_store_mem_grant(h.st, FZ_MTCD_ID, FZ_UEID, h.perms, LIFETIME) == 0);
  FZ_CHECK(mtcsec_store_mem_allow_relay(h.st, FZ_MTCD_ID, FZ_RELAY1) == 0);

  h.mem.malloc = m_malloc;
  h.mem.free = m_free;
  h.mem.calloc = m_calloc;
  mtcsec_srv_config_default(&cfg);
  memcpy(cfg.mtcs_id, FZ_MTCS_ID, 8);
  cfg.max_inflight = 4;
  cfg.max_queued = 8;
  cfg.dup_cache_size = 4;
  cfg.dup_ttl = 60000;
  cfg.rate_per_minute = h.rate ? 2 : 0;
  cfg.mem = &h.mem;
  cfg.log = fz_log;
  cb.on_result = cb_result;
  FZ_CHECK(mtcsec_srv_new(&h.srv, &cfg, h.c, &mtcsec_store_mem_ops, h.st, &cb,
                          NULL) == 0);
  h.allocs = 0;

  while (fz_more(&in) && ops++ < 256) {
    uint8_t op = (uint8_t)(fz_u8(&in) % FZ_SRV_NOPS);
    if (fz_debug()) {
      fprintf(stderr, "op %u (batch out %d, pending %zu)\n", op, h.batch_out,
              mtcsec_srv_pending(h.srv));
    }
    switch (op) {
    case FZ_SRV_RAW:
      op_raw(&in);
      break;
    case FZ_SRV_M2:
      op_m2(&in);
      break;
    case FZ_SRV_COMMIT:
      commit(fz_u8(&in) & 1);
      break;
    case FZ_SRV_TIME: {
      uint8_t b = fz_u8(&in);
      h.now += b < 128 ? 100u * b : 10000u * (b - 127u);
      break;
    }
    case FZ_SRV_CLOSE: {
      uint64_t conn = fz_u8(&in) & 3u;
      size_t i;
      mtcsec_srv_conn_closed(h.srv, conn);
      for (i = 0; i < NREQ; i++) {
        if (h.reqs[i].conn == conn) {
          h.reqs[i].used = 0;
        }
      }
      break;
    }
    case FZ_SRV_BATCH:
      op_batch(&in);
      break;
    case FZ_SRV_REVOKE:
      op_revoke(&in);
      break;
    case FZ_SRV_WRITE:
    default:
      op_write(&in);
      break;
    }
    /* One store session per new M3 (conn closed or not). */
    FZ_CHECK(mtcsec_store_mem_sessions(h.st) == h.sessions);
    FZ_CHECK(h.allocs == 0);
  }

  if (h.batch_out) {
    FZ_CHECK(mtcsec_srv_batch_done(h.srv, &h.batch, MTCSEC_ERR_STORE, h.now) ==
             0);
  }
  mtcsec_srv_del(h.srv);
  mtcsec_store_mem_del(h.st);
  return 0;
}
