/*
 * Shell helpers: IDs, hex, permission lists, durations and clocks
 * (apps/common/app.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>

#include <mtcsec/codec.h>

#include "app.h"

static int hex_nibble(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

int app_parse_hex(const char *s, uint8_t *out, size_t len) {
  size_t i;
  if (s == NULL || (out == NULL && len != 0) || strlen(s) != 2 * len) {
    return -1;
  }
  for (i = 0; i < len; i++) {
    int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return -1;
    }
    out[i] = (uint8_t)((hi << 4) | lo);
  }
  return 0;
}

char *app_format_hex(char *out, const uint8_t *in, size_t len) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < len; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 0x0f];
  }
  out[2 * len] = '\0';
  return out;
}

int app_parse_id(const char *s, uint8_t id[MTCSEC_ID_LEN]) {
  uint8_t tmp[MTCSEC_ID_LEN];
  if (app_parse_hex(s, tmp, sizeof(tmp)) != 0) {
    return -1;
  }
  memcpy(id, tmp, sizeof(tmp));
  return 0;
}

char *app_format_id(char out[17], const uint8_t id[MTCSEC_ID_LEN]) {
  return app_format_hex(out, id, MTCSEC_ID_LEN);
}

/* Permission names in bit order (section 3, PERMS). */
static const struct {
  const char *name;
  uint8_t bit;
} perm_names[] = {
  {"read", MTCSEC_PERM_READ},
  {"write", MTCSEC_PERM_WRITE},
  {"actuate", MTCSEC_PERM_ACTUATE},
  {"configure", MTCSEC_PERM_CONFIGURE},
};
#define PERM_ALL 0x0f

int app_parse_perms(const char *s, uint8_t *perms) {
  uint8_t v = 0;
  const char *p;

  if (s == NULL || perms == NULL || *s == '\0') {
    return -1;
  }
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    size_t n = strlen(s + 2);
    size_t i;
    unsigned acc = 0;
    if (n == 0 || n > 2) {
      return -1;
    }
    for (i = 0; i < n; i++) {
      int d = hex_nibble(s[2 + i]);
      if (d < 0) {
        return -1;
      }
      acc = acc * 16 + (unsigned)d;
    }
    if (acc & ~(unsigned)PERM_ALL) {
      return -1; /* undefined bits */
    }
    *perms = (uint8_t)acc;
    return 0;
  }
  if (strcmp(s, "none") == 0) {
    *perms = 0;
    return 0;
  }
  if (strcmp(s, "all") == 0) {
    *perms = PERM_ALL;
    return 0;
  }
  p = s;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    size_t i;
    int found = 0;
    for (i = 0; i < sizeof(perm_names) / sizeof(perm_names[0]); i++) {
      if (strlen(perm_names[i].name) == len &&
          strncmp(perm_names[i].name, p, len) == 0) {
        v |= perm_names[i].bit;
        found = 1;
        break;
      }
    }
    if (!found) {
      return -1;
    }
    if (end == NULL) {
      break;
    }
    p = end + 1;
  }
  *perms = v;
  return 0;
}

char *app_format_perms(char out[48], uint8_t perms) {
  size_t i, n = 0;
  out[0] = '\0';
  if (perms == 0) {
    strcpy(out, "none");
    return out;
  }
  for (i = 0; i < sizeof(perm_names) / sizeof(perm_names[0]); i++) {
    if (perms & perm_names[i].bit) {
      size_t l = strlen(perm_names[i].name);
      if (n != 0) {
        out[n++] = ',';
      }
      memcpy(out + n, perm_names[i].name, l);
      n += l;
      out[n] = '\0';
    }
  }
  if (perms & ~PERM_ALL) {
    static const char digits[] = "0123456789abcdef";
    /* Undefined bits: ",0xNN" (at most 5 more bytes; 29 + 5 < 48). */
    if (n != 0) {
      out[n++] = ',';
    }
    out[n++] = '0';
    out[n++] = 'x';
    out[n++] = digits[(perms & ~PERM_ALL) >> 4];
    out[n++] = digits[(perms & ~PERM_ALL) & 0x0f];
    out[n] = '\0';
  }
  return out;
}

int app_parse_duration(const char *s, uint32_t *seconds) {
  uint64_t v = 0, mult = 1;
  size_t i, n;

  if (s == NULL || seconds == NULL) {
    return -1;
  }
  n = strlen(s);
  if (n == 0) {
    return -1;
  }
  switch (s[n - 1]) {
  case 's':
    mult = 1;
    n--;
    break;
  case 'm':
    mult = 60;
    n--;
    break;
  case 'h':
    mult = 3600;
    n--;
    break;
  case 'd':
    mult = 86400;
    n--;
    break;
  default:
    break;
  }
  if (n == 0 || n > 10) {
    return -1;
  }
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return -1;
    }
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  v *= mult;
  if (v > UINT32_MAX) {
    return -1;
  }
  *seconds = (uint32_t)v;
  return 0;
}

mtcsec_tstamp app_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (mtcsec_tstamp)ts.tv_sec * 1000u +
         (mtcsec_tstamp)(ts.tv_nsec / 1000000);
}

int64_t app_unix_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec;
}
