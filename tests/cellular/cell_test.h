/* Helpers of the cellular tests: vector files, hex, the provider. */
#ifndef MTCSEC_TESTS_CELL_TEST_H
#define MTCSEC_TESTS_CELL_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/cellular.h>

/* Loads tests/cellular/vectors/<name> (an array); fails the test if absent. */
cJSON *cell_vectors(const char *name);

/* Decodes hex string s into out (max bytes); returns the byte count. */
size_t cell_unhex(const char *s, uint8_t *out, size_t max);

/* Decodes the hex string field of obj; fails if absent or too long. */
size_t cell_hex(const cJSON *obj, const char *field, uint8_t *out, size_t max);

/* Like cell_hex, but the field must hold exactly n bytes. */
void cell_hexn(const cJSON *obj, const char *field, uint8_t *out, size_t n);

/* A hex field read as a big-endian number ("count", "bearer", "fc"). */
uint64_t cell_hexnum(const cJSON *obj, const char *field);

/* A JSON number field. */
long cell_num(const cJSON *obj, const char *field);

/* A string field, or NULL if absent. */
const char *cell_str(const cJSON *obj, const char *field);

/* The OpenSSL provider; fails the test if it cannot be created. */
void cell_crypto(mtcsec_crypto *crypto);

#endif
