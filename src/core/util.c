/*
 * Small core utilities: version, error strings, suite table, constant-time
 * compare, zeroize, default allocator, big-endian helpers.
 */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/codec.h>

#include "core/internal.h"
#include "core/util.h"

const char *mtcsec_version(void) { return MTCSEC_VERSION_STRING; }

typedef struct err_entry {
  int code;
  const char *name;
  const char *text;
} err_entry;

static const err_entry err_table[] = {
  {MTCSEC_OK, "MTCSEC_OK", "success"},
  {MTCSEC_ERR_INVALID_ARGUMENT, "MTCSEC_ERR_INVALID_ARGUMENT",
   "invalid argument"},
  {MTCSEC_ERR_NOBUF, "MTCSEC_ERR_NOBUF", "output buffer too small"},
  {MTCSEC_ERR_INVALID_STATE, "MTCSEC_ERR_INVALID_STATE",
   "operation not allowed in this state"},
  {MTCSEC_ERR_NOMEM, "MTCSEC_ERR_NOMEM", "out of memory"},
  {MTCSEC_ERR_BUSY, "MTCSEC_ERR_BUSY", "no free slot"},
  {MTCSEC_ERR_NOT_FOUND, "MTCSEC_ERR_NOT_FOUND", "not found"},
  {MTCSEC_ERR_RATE, "MTCSEC_ERR_RATE", "rate limited"},
  {MTCSEC_ERR_EXHAUSTED, "MTCSEC_ERR_EXHAUSTED",
   "counter exhausted: re-establish"},
  {MTCSEC_ERR_MALFORMED, "MTCSEC_ERR_MALFORMED", "malformed message"},
  {MTCSEC_ERR_MIC, "MTCSEC_ERR_MIC", "integrity check failed"},
  {MTCSEC_ERR_REPLAY, "MTCSEC_ERR_REPLAY", "replayed message"},
  {MTCSEC_ERR_UNEXPECTED, "MTCSEC_ERR_UNEXPECTED", "message not expected now"},
  {MTCSEC_ERR_EXPIRED, "MTCSEC_ERR_EXPIRED", "key lifetime expired"},
  {MTCSEC_ERR_UNSUPPORTED, "MTCSEC_ERR_UNSUPPORTED",
   "unsupported version, type or suite"},
  {MTCSEC_ERR_MISMATCH, "MTCSEC_ERR_MISMATCH",
   "identifiers do not match the exchange"},
  {MTCSEC_ERR_FORBIDDEN, "MTCSEC_ERR_FORBIDDEN",
   "permission not granted for this session"},
  {MTCSEC_ERR_CRYPTO, "MTCSEC_ERR_CRYPTO", "crypto library failure"},
  {MTCSEC_ERR_STORE, "MTCSEC_ERR_STORE", "store failure"},
  {MTCSEC_ERR_CALLBACK, "MTCSEC_ERR_CALLBACK", "callback failure"},
};

static const err_entry *err_find(int err) {
  size_t i;
  for (i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
    if (err_table[i].code == err) {
      return &err_table[i];
    }
  }
  return NULL;
}

const char *mtcsec_strerror(int err) {
  const err_entry *e = err_find(err);
  return e ? e->text : "unknown error";
}

const char *mtcsec_errname(int err) {
  const err_entry *e = err_find(err);
  return e ? e->name : "MTCSEC_ERR_UNKNOWN";
}

int mtcsec_err_is_fatal(int err) {
  return err <= MTCSEC_ERR_CRYPTO || err == MTCSEC_ERR_NOMEM;
}

/* Section 2. */
const mtcsec_suite_params mtcsec_suite_table[3] = {
  {MTCSEC_SUITE_CMAC_AES128, MTCSEC_MAC_AES_CMAC, 16, 8},
  {MTCSEC_SUITE_HMAC_SHA256_AES128, MTCSEC_MAC_HMAC_SHA256, 16, 16},
  {MTCSEC_SUITE_HMAC_SHA256_AES256, MTCSEC_MAC_HMAC_SHA256, 32, 16},
};

const mtcsec_suite_params *mtcsec_suite_get(uint8_t id) {
  size_t i;
  for (i = 0; i < sizeof(mtcsec_suite_table) / sizeof(mtcsec_suite_table[0]);
       i++) {
    if (mtcsec_suite_table[i].id == id) {
      return &mtcsec_suite_table[i];
    }
  }
  return NULL;
}

int mtcsec_ct_memcmp(const void *a, const void *b, size_t n) {
  const uint8_t *pa = (const uint8_t *)a;
  const uint8_t *pb = (const uint8_t *)b;
  size_t wa, wb, acc = 0, i;
  /* A machine word at a time (8 bytes on a 64-bit host, 4 on a Cortex-M),
   * then single bytes; every byte is read whatever the data, and only the
   * OR of the differences comes out.  The rotation makes each step depend
   * on the one before, which keeps compilers from vectorising the loop:
   * for the usual 8-32 bytes the vector set-up costs more than the
   * compare. */
  for (i = 0; n - i >= sizeof(size_t); i += sizeof(size_t)) {
    memcpy(&wa, pa + i, sizeof(size_t));
    memcpy(&wb, pb + i, sizeof(size_t));
    acc = (acc << 1 | acc >> (8 * sizeof(size_t) - 1)) | (wa ^ wb);
  }
  for (; i < n; i++) {
    acc |= (size_t)(pa[i] ^ pb[i]);
  }
  /* To 0 or 1 without a data-dependent branch: acc | -acc has its top bit
   * set exactly when acc != 0.  The volatile read keeps the compiler from
   * reasoning about acc on the way. */
  {
    volatile size_t v = acc;
    acc = v;
  }
  return (int)((acc | (0 - acc)) >> (8 * sizeof(size_t) - 1));
}

void mtcsec_zeroize(void *p, size_t n) {
  if (p == NULL || n == 0) {
    return;
  }
#if defined(__GLIBC__) || defined(__OpenBSD__) || defined(__FreeBSD__)
  explicit_bzero(p, n);
#else
  {
    /* A volatile function pointer the compiler cannot see through
     * (Mbed TLS library/platform_util.c does the same). */
    static void *(*const volatile memset_v)(void *, int, size_t) = memset;
    memset_v(p, 0, n);
  }
#endif
}

static void *mem_malloc(size_t size, void *user_data) {
  (void)user_data;
  return malloc(size);
}
static void mem_free(void *ptr, void *user_data) {
  (void)user_data;
  free(ptr);
}
static void *mem_calloc(size_t nmemb, size_t size, void *user_data) {
  (void)user_data;
  return calloc(nmemb, size);
}

static const mtcsec_mem mem_default = {NULL, mem_malloc, mem_free, mem_calloc};

const mtcsec_mem *mtcsec_mem_default(void) { return &mem_default; }

void mtcsec_put_u64(uint8_t out[8], uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--) {
    out[i] = (uint8_t)v;
    v >>= 8;
  }
}

uint64_t mtcsec_get_u64(const uint8_t in[8]) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) {
    v = (v << 8) | in[i];
  }
  return v;
}

/* ------------------------------------------------------- replay window */

void mtcsec_window_init(mtcsec_window *w) {
  w->top = 0;
  w->bitmap = 0;
}

int mtcsec_window_step(const mtcsec_window *w, uint64_t n, mtcsec_window *upd) {
  uint64_t top = w->top, bitmap = w->bitmap, d = top - n, bit;
  if (bitmap != 0 && n <= top) {
    /* At or below the top: new only inside the window and not yet seen. */
    bit = d < MTCSEC_WINDOW_SIZE ? (uint64_t)1 << d : 0;
    if ((bitmap & bit) != 0 || bit == 0) {
      return MTCSEC_ERR_REPLAY;
    }
    bitmap |= bit;
  } else {
    /* A new top (or the first number): slide the window up by n - top. */
    d = n - top;
    bitmap = (bitmap == 0 || d >= MTCSEC_WINDOW_SIZE ? 0 : bitmap << d) | 1u;
    top = n;
  }
  if (upd != NULL) {
    upd->top = top;
    upd->bitmap = bitmap;
  }
  return 0;
}

int mtcsec_window_check(const mtcsec_window *w, uint64_t n) {
  return mtcsec_window_step(w, n, NULL);
}

void mtcsec_window_update(mtcsec_window *w, uint64_t n) {
  (void)mtcsec_window_step(w, n, w);
}

void mtcsec_logf(mtcsec_log_fn fn, void *user_data, int level, const char *fmt,
                 ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  fn(user_data, level, buf);
}

const char *mtcsec_id_hex(char out[17], const uint8_t id[8]) {
  static const char hexd[] = "0123456789abcdef";
  int i;
  for (i = 0; i < 8; i++) {
    out[2 * i] = hexd[id[i] >> 4];
    out[2 * i + 1] = hexd[id[i] & 15];
  }
  out[16] = 0;
  return out;
}
