#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cell_test.h"

#ifndef MTCSEC_CELL_VECTORS
#  error "MTCSEC_CELL_VECTORS must name tests/cellular/vectors"
#endif

cJSON *cell_vectors(const char *name) {
  char path[1024];
  FILE *f;
  long n;
  char *text;
  cJSON *root;

  snprintf(path, sizeof(path), "%s/%s", MTCSEC_CELL_VECTORS, name);
  f = fopen(path, "rb");
  if (f == NULL) {
    fail_msg("cannot open %s", path);
  }
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n > 0);
  assert_int_equal(fseek(f, 0, SEEK_SET), 0);
  text = malloc((size_t)n + 1);
  assert_non_null(text);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  text[n] = '\0';
  fclose(f);
  root = cJSON_Parse(text);
  free(text);
  if (root == NULL || !cJSON_IsArray(root)) {
    fail_msg("%s is not a JSON array", path);
  }
  return root;
}

static int unhex1(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  fail_msg("bad hex digit '%c'", c);
  return -1;
}

size_t cell_unhex(const char *s, uint8_t *out, size_t max) {
  size_t n = strlen(s), i;

  assert_int_equal(n % 2, 0);
  assert_true(n / 2 <= max);
  for (i = 0; i < n / 2; i++) {
    out[i] = (uint8_t)((unhex1(s[2 * i]) << 4) | unhex1(s[2 * i + 1]));
  }
  return n / 2;
}

const char *cell_str(const cJSON *obj, const char *field) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, field);

  return cJSON_IsString(it) ? it->valuestring : NULL;
}

size_t cell_hex(const cJSON *obj, const char *field, uint8_t *out, size_t max) {
  const char *s = cell_str(obj, field);

  if (s == NULL) {
    fail_msg("vector lacks field \"%s\"", field);
  }
  return cell_unhex(s, out, max);
}

void cell_hexn(const cJSON *obj, const char *field, uint8_t *out, size_t n) {
  assert_int_equal(cell_hex(obj, field, out, n), n);
}

uint64_t cell_hexnum(const cJSON *obj, const char *field) {
  const char *s = cell_str(obj, field);

  if (s == NULL) {
    fail_msg("vector lacks field \"%s\"", field);
  }
  return strtoull(s, NULL, 16);
}

long cell_num(const cJSON *obj, const char *field) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, field);

  if (!cJSON_IsNumber(it)) {
    fail_msg("vector lacks number \"%s\"", field);
  }
  return (long)it->valuedouble;
}

void cell_crypto(mtcsec_crypto *crypto) {
  assert_int_equal(mtcsec_crypto_openssl_new(crypto), 0);
}
