/*
 * Helpers shared by the fuzz targets and by gen_corpus.c: an input reader,
 * the invariant check, the fixed identities and keys (those of the committed
 * test vectors, so vector messages are valid seeds), and the op codes of the
 * op-stream targets.  Header-only on purpose: each target is one .c file
 * that links the library normally.
 */
#ifndef MTCSEC_FUZZ_COMMON_H
#define MTCSEC_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>

/* An invariant of the library does not hold: report and crash, so that
 * libFuzzer saves the input. */
#define FZ_CHECK(cond)                                                         \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,     \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* Set MTCSEC_FUZZ_DEBUG=1 to trace what a target does with one input, for
 * triage (./fuzz_srv_recv crash-file; other targets may add traces). */
static inline int fz_debug(void) {
  static int v = -1;
  if (v < 0) {
    v = getenv("MTCSEC_FUZZ_DEBUG") != NULL;
  }
  return v;
}

/* ------------------------------------------------------- input reader */

/* Reads the fuzzer's bytes front to back; past the end every read gives
 * zeros (and fz_bytes a shorter run), so any input is a valid program. */
typedef struct fz_in {
  const uint8_t *p;
  size_t n, off;
} fz_in;

static inline void fz_init(fz_in *in, const uint8_t *p, size_t n) {
  in->p = p;
  in->n = n;
  in->off = 0;
}

static inline int fz_more(const fz_in *in) { return in->off < in->n; }

static inline uint8_t fz_u8(fz_in *in) {
  return in->off < in->n ? in->p[in->off++] : 0;
}

static inline uint16_t fz_u16(fz_in *in) {
  uint16_t hi = fz_u8(in);
  return (uint16_t)((hi << 8) | fz_u8(in));
}

static inline uint32_t fz_u32(fz_in *in) {
  uint32_t hi = fz_u16(in);
  return (hi << 16) | fz_u16(in);
}

static inline uint64_t fz_u64(fz_in *in) {
  uint64_t hi = fz_u32(in);
  return (hi << 32) | fz_u32(in);
}

/* Up to want bytes in place; *got says how many were left. */
static inline const uint8_t *fz_bytes(fz_in *in, size_t want, size_t *got) {
  const uint8_t *p = in->p + in->off;
  size_t left = in->n - in->off;
  *got = want < left ? want : left;
  in->off += *got;
  return p;
}

/* Exactly n bytes into out, zero-padded past the end. */
static inline void fz_copy(fz_in *in, uint8_t *out, size_t n) {
  size_t got;
  const uint8_t *p = fz_bytes(in, n, &got);
  memcpy(out, p, got);
  memset(out + got, 0, n - got);
}

/* A heap copy of exactly n bytes, so that ASan sees any overread (NULL for
 * n == 0 would hide nothing, so a 1-byte block is returned instead). */
static inline uint8_t *fz_dup(const uint8_t *p, size_t n) {
  uint8_t *q = malloc(n != 0 ? n : 1);
  FZ_CHECK(q != NULL);
  if (n != 0) {
    memcpy(q, p, n);
  }
  return q;
}

/* ----------------------------------------- identities of the vectors */

static const uint8_t FZ_MTCD_ID[MTCSEC_ID_LEN] = {0x02, 0, 0, 0, 0, 0, 0, 0xa1};
static const uint8_t FZ_MTCD_ID2[MTCSEC_ID_LEN] = {0x02, 0, 0, 0,
                                                   0,    0, 0, 0xa2};
static const uint8_t FZ_MTCS_ID[MTCSEC_ID_LEN] = {0x5e, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t FZ_UEID[MTCSEC_ID_LEN] = {0x0e, 0, 0, 0, 0, 0, 0, 0x42};
static const uint8_t FZ_UEID2[MTCSEC_ID_LEN] = {0x0e, 0, 0, 0, 0, 0, 0, 0x43};
static const uint8_t FZ_RELAY1[MTCSEC_ID_LEN] = {0x67, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t FZ_RELAY2[MTCSEC_ID_LEN] = {0x67, 0, 0, 0, 0, 0, 0, 2};
/* PSKey: 00 01 02 ... (its first keylen bytes), as in every vector. */
static const uint8_t FZ_PSKEY[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                     11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                     22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

/* The OpenSSL provider, created on first use and kept for the process (a
 * fuzzer runs millions of inputs; creating contexts each time would
 * dominate).  Inputs that need deterministic random wrap it in an
 * mtcsec_fixed reseeded per input. */
static inline const mtcsec_crypto *fz_openssl(void) {
  static mtcsec_crypto c;
  static int ready;
  if (!ready) {
    FZ_CHECK(mtcsec_crypto_openssl_new(&c) == 0);
    ready = 1;
  }
  return &c;
}

/* A log hook that touches the whole message (ASan checks the NUL). */
static inline void fz_log(void *user_data, int level, const char *msg) {
  (void)user_data;
  (void)level;
  FZ_CHECK(strlen(msg) < 256);
}

/* Two bits of input select a suite; 0 and 1 both give the default. */
static inline uint8_t fz_suite(unsigned sel) {
  static const uint8_t s[4] = {1, 1, 2, 3};
  return s[sel & 3];
}

/* ------------------------------------------------------------ op codes */

/* fuzz_dev_read: byte 0 = config (bits 0-1 suite, bit 2 send_suites, bit 3
 * status TLVs, bits 4-5 retx_max, bit 6 nonce counter near its end), byte 1
 * = low byte of the first nonce, then ops (op byte % FZ_DEV_NOPS). */
enum {
  FZ_DEV_RAW = 0,       /* len(1) bytes: mtcsec_dev_read */
  FZ_DEV_WRITE = 1,     /* destlen(1): mtcsec_dev_write */
  FZ_DEV_TIME = 2,      /* step(1): advance the clock, handle_expiry */
  FZ_DEV_OPEN = 3,      /* len(1) bytes: mtcsec_dev_open */
  FZ_DEV_ANSWER = 4,    /* flags(1) lifetime(1) perms(1) key(1) nonce(8):
                           a valid M4 for the last M1 (bit 0 of flags:
                           corrupt byte pos(1) with xor(1)) */
  FZ_DEV_SEAL = 5,      /* key(1) len(1) bytes: UE-side record, then open */
  FZ_DEV_REPLAY = 6,    /* pos(1) xor(1): the last UE record again */
  FZ_DEV_REVOKE = 7,    /* key(1): a valid revocation of that session */
  FZ_DEV_START = 8,     /* which(1): mtcsec_dev_start */
  FZ_DEV_DEVSEAL = 9,   /* key(1) len(1) bytes: mtcsec_dev_seal */
  FZ_DEV_FAILNEXT = 10, /* the next persist_nonce fails */
  FZ_DEV_AUTHZ = 11,    /* key(1) required(1): mtcsec_dev_authorize */
  FZ_DEV_NOPS = 12
};

/* fuzz_chan_open: byte 0 = suite (bits 0-1), byte 1 = key id, byte 2 =
 * lifetime in seconds, then ops (op byte % FZ_CHAN_NOPS). */
enum {
  FZ_CHAN_SEAL = 0,  /* len(1) bytes: mtcsec_chan_seal on the peer */
  FZ_CHAN_FORGE = 1, /* seq(4) len(1) bytes: an authentic record at seq */
  FZ_CHAN_OPEN = 2,  /* idx(1) pos(1) xor(1): open a kept record, mutated */
  FZ_CHAN_RAW = 3,   /* len(1) bytes: open arbitrary bytes */
  FZ_CHAN_TIME = 4,  /* step(2): advance the clock by step * 100 ms */
  FZ_CHAN_SMALL = 5, /* idx(1) destlen(1): open with a small buffer */
  FZ_CHAN_NEAR = 6,  /* delta(1) len(1) bytes: authentic at top - delta */
  FZ_CHAN_NOPS = 7
};

/* fuzz_ue_read: byte 0 = config (bits 0-1 max exchanges - 1), then ops. */
enum {
  FZ_UE_DEVRAW = 0, /* peer(1) len(1) bytes: mtcsec_ue_read_device */
  FZ_UE_M1 = 1,     /* flags(1) nonce(1) peer(1): a well-formed M1 */
  FZ_UE_SRVRAW = 2, /* len(2) bytes: mtcsec_ue_read_server */
  FZ_UE_M3 = 3,     /* idx(1) flags(1) lifetime(1) perms(1) key(1): an
                       answer (M3, ERR or a damaged M3) to a written M2 */
  FZ_UE_WRITE = 4,  /* destlen(1) (x2): mtcsec_ue_write */
  FZ_UE_TIME = 5,   /* step(1): advance the clock, handle_expiry */
  FZ_UE_CHAN = 6,   /* dev(1) len(1) bytes: records both ways */
  FZ_UE_FORGET = 7, /* dev(1): mtcsec_ue_forget */
  FZ_UE_NOPS = 8
};

/* fuzz_gw_relay: a sequence of hdr(1) len(1) bytes; hdr bit 0 direction
 * (1: toward the UE), bit 1 relay in place, bits 2-7 room (see the target). */

/* fuzz_srv_recv: byte 0 = config (bits 0-1 suite, bit 2 rate limit, bits
 * 3-6 grant perms), then ops. */
enum {
  FZ_SRV_RAW = 0,    /* conn(1) who(1) len(2) bytes: mtcsec_srv_recv */
  FZ_SRV_M2 = 1,     /* conn(1) flags(2) nonce(1) req(1): a built M2 */
  FZ_SRV_COMMIT = 2, /* fail(1): commit (optionally failing) and drain */
  FZ_SRV_TIME = 3,   /* step(1): advance the clock */
  FZ_SRV_CLOSE = 4,  /* conn(1): mtcsec_srv_conn_closed */
  FZ_SRV_BATCH = 5,  /* rv(1): take_batch, commit here, batch_done */
  FZ_SRV_REVOKE = 6, /* key(2): mtcsec_srv_revocation */
  FZ_SRV_WRITE = 7,  /* destlen(1): one mtcsec_srv_write */
  FZ_SRV_NOPS = 8
};

#endif /* MTCSEC_FUZZ_COMMON_H */
