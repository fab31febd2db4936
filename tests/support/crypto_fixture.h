/*
 * Helpers shared by the tests: hex conversion and crypto provider fixtures.
 */
#ifndef MTCSEC_TESTS_CRYPTO_FIXTURE_H
#define MTCSEC_TESTS_CRYPTO_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/crypto.h>

#include "crypto/provider_fixed.h"

/** Largest number of real providers th_providers() returns. */
#define TH_MAX_PROVIDERS 2

/**
 * Decodes hex (upper or lower case; spaces, tabs, newlines and ':' are
 * skipped) into out and returns the byte count.  Aborts the test program on
 * a bad digit, an odd digit count or more than max bytes: vectors are
 * trusted test data, so any of those is a bug in the test.
 */
size_t th_unhex(uint8_t *out, size_t max, const char *hex);

/** Writes 2n lowercase hex digits and a NUL to out (2n + 1 bytes). */
void th_hex(char *out, const uint8_t *in, size_t n);

/**
 * Returns the real providers built into this test program: OpenSSL first,
 * then Mbed TLS when MTCSEC_HAVE_MBEDTLS is defined.  Fills out[i] and
 * names[i] ("openssl", "mbedtls") and returns the count.  The providers are
 * created on the first call and live until th_providers_cleanup() (or the
 * end of the program); aborts if one cannot be created.
 */
size_t th_providers(const mtcsec_crypto *out[TH_MAX_PROVIDERS],
                    const char *names[TH_MAX_PROVIDERS]);

/** The OpenSSL provider (created on demand, as th_providers()). */
const mtcsec_crypto *th_openssl(void);

/** Releases the providers th_providers() created. */
void th_providers_cleanup(void);

/**
 * A deterministic provider over the OpenSSL one (see provider_fixed.h):
 * initialises f with seed and returns its provider.
 */
const mtcsec_crypto *th_fixed(mtcsec_fixed *f, uint64_t seed);

/** Mbed TLS f_rng-style callback backed by getrandom(); ctx is unused. */
int th_getrandom(void *ctx, unsigned char *out, size_t len);

#endif /* MTCSEC_TESTS_CRYPTO_FIXTURE_H */
