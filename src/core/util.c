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
static const mtcsec_suite_params suites[] = {
  {MTCSEC_SUITE_CMAC_AES128, MTCSEC_MAC_AES_CMAC, 16, 8},
  {MTCSEC_SUITE_HMAC_SHA256_AES128, MTCSEC_MAC_HMAC_SHA256, 16, 16},
  {MTCSEC_SUITE_HMAC_SHA256_AES256, MTCSEC_MAC_HMAC_SHA256, 32, 16},
};

const mtcsec_suite_params *mtcsec_suite_get(uint8_t id) {
  size_t i;
  for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
    if (suites[i].id == id && suites[i].keylen <= MTCSEC_CFG_MAX_KEY_LEN) {
      return &suites[i];
    }
  }
  return NULL;
}

int mtcsec_ct_memcmp(const void *a, const void *b, size_t n) {
  const uint8_t *pa = (const uint8_t *)a;
  const uint8_t *pb = (const uint8_t *)b;
  uint64_t wa, wb, acc = 0;
  size_t i = 0;
  /* Eight bytes at a time, then bytes; every byte is read whatever the
   * data, and only the OR of the differences comes out. */
  for (; n - i >= 8; i += 8) {
    memcpy(&wa, pa + i, 8);
    memcpy(&wb, pb + i, 8);
    acc |= wa ^ wb;
  }
  for (; i < n; i++) {
    acc |= (uint64_t)(pa[i] ^ pb[i]);
  }
  /* Fold to one bit without a data-dependent branch; the volatile read
   * keeps the compiler from reasoning about acc on the way. */
  {
    volatile uint64_t v = acc;
    acc = v;
  }
  acc |= acc >> 32;
  acc |= acc >> 16;
  acc |= acc >> 8;
  acc &= 0xff;
  return (int)((acc + 0xffu) >> 8);
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

int mtcsec_window_check(const mtcsec_window *w, uint64_t n) {
  uint64_t diff;
  if (w->bitmap == 0 || n > w->top) {
    return 0;
  }
  diff = w->top - n;
  if (diff >= MTCSEC_WINDOW_SIZE) {
    return MTCSEC_ERR_REPLAY;
  }
  return (w->bitmap >> diff) & 1u ? MTCSEC_ERR_REPLAY : 0;
}

void mtcsec_window_update(mtcsec_window *w, uint64_t n) {
  uint64_t shift;
  if (w->bitmap == 0) {
    w->top = n;
    w->bitmap = 1;
    return;
  }
  if (n > w->top) {
    shift = n - w->top;
    w->bitmap = shift >= MTCSEC_WINDOW_SIZE ? 1 : (w->bitmap << shift) | 1u;
    w->top = n;
    return;
  }
  if (w->top - n < MTCSEC_WINDOW_SIZE) {
    w->bitmap |= (uint64_t)1 << (w->top - n);
  }
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
