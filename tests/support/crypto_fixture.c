/*
 * Helpers shared by the tests: hex conversion and crypto provider fixtures.
 */
#define _DEFAULT_SOURCE /* getrandom */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#ifdef MTCSEC_HAVE_MBEDTLS
#  include <mtcsec/crypto_mbedtls.h>
#endif

#include "crypto_fixture.h"

static int hex_digit(char c) {
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

size_t th_unhex(uint8_t *out, size_t max, const char *hex) {
  size_t n = 0;
  int hi = -1, d;

  for (; *hex != '\0'; hex++) {
    if (*hex == ' ' || *hex == '\t' || *hex == '\n' || *hex == ':') {
      continue;
    }
    d = hex_digit(*hex);
    if (d < 0) {
      fprintf(stderr, "th_unhex: bad hex digit '%c'\n", *hex);
      abort();
    }
    if (hi < 0) {
      hi = d;
      continue;
    }
    if (n >= max) {
      fprintf(stderr, "th_unhex: more than %zu bytes\n", max);
      abort();
    }
    out[n++] = (uint8_t)((hi << 4) | d);
    hi = -1;
  }
  if (hi >= 0) {
    fprintf(stderr, "th_unhex: odd number of hex digits\n");
    abort();
  }
  return n;
}

void th_hex(char *out, const uint8_t *in, size_t n) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

int th_getrandom(void *ctx, unsigned char *out, size_t len) {
  size_t off = 0;
  ssize_t r;
  (void)ctx;
  while (off < len) {
    r = getrandom(out + off, len - off, 0);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return -1;
    }
    off += (size_t)r;
  }
  return 0;
}

static struct {
  int ready;
  mtcsec_crypto openssl;
#ifdef MTCSEC_HAVE_MBEDTLS
  mtcsec_crypto mbedtls;
  mtcsec_mbedtls_state mbedtls_state;
#endif
} providers;

static void providers_init(void) {
  int rv;
  if (providers.ready) {
    return;
  }
  rv = mtcsec_crypto_openssl_new(&providers.openssl);
  if (rv != 0) {
    fprintf(stderr, "mtcsec_crypto_openssl_new: %s\n", mtcsec_strerror(rv));
    abort();
  }
#ifdef MTCSEC_HAVE_MBEDTLS
  rv = mtcsec_crypto_mbedtls_init(&providers.mbedtls, &providers.mbedtls_state,
                                  th_getrandom, NULL);
  if (rv != 0) {
    fprintf(stderr, "mtcsec_crypto_mbedtls_init: %s\n", mtcsec_strerror(rv));
    abort();
  }
#endif
  providers.ready = 1;
}

size_t th_providers(const mtcsec_crypto *out[TH_MAX_PROVIDERS],
                    const char *names[TH_MAX_PROVIDERS]) {
  size_t n = 0;
  providers_init();
  out[n] = &providers.openssl;
  names[n++] = "openssl";
#ifdef MTCSEC_HAVE_MBEDTLS
  out[n] = &providers.mbedtls;
  names[n++] = "mbedtls";
#endif
  return n;
}

const mtcsec_crypto *th_openssl(void) {
  providers_init();
  return &providers.openssl;
}

void th_providers_cleanup(void) {
  if (!providers.ready) {
    return;
  }
  mtcsec_crypto_openssl_del(&providers.openssl);
#ifdef MTCSEC_HAVE_MBEDTLS
  mtcsec_crypto_mbedtls_free(&providers.mbedtls);
#endif
  providers.ready = 0;
}

const mtcsec_crypto *th_fixed(mtcsec_fixed *f, uint64_t seed) {
  mtcsec_fixed_init(f, th_openssl(), seed);
  return mtcsec_fixed_crypto(f);
}
