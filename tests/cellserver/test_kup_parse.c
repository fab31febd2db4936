/*
 * The K_UP client's response parser (apps/common/kup_client.h): what mtchpd
 * sends is accepted; every deviation from the strict rules is refused, and
 * K_UP is only ever returned for a well-formed 200.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kup_client.h"

static const char KUP_HEX[] = "000102030405060708090a0b0c0d0e0f";

/* A response as mtchpd writes it (kup.c kup_respond). */
static size_t make(char *out, size_t outlen, int status, const char *reason,
                   const char *json) {
  int n = snprintf(out, outlen,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                   "Connection: close\r\n\r\n%s\n",
                   status, reason, strlen(json) + 1, json);
  assert_true(n > 0 && (size_t)n < outlen);
  return (size_t)n;
}

static int parse(const char *resp, size_t len, int *st, uint8_t kup[16]) {
  char detail[192];
  memset(kup, 0xcc, 16);
  return kup_parse_response(resp, len, st, kup, detail, sizeof(detail));
}

static void test_kup_parse_ok(void **state) {
  char r[512];
  uint8_t kup[16], want[16];
  int st;
  size_t i, n;
  (void)state;
  for (i = 0; i < 16; i++) {
    want[i] = (uint8_t)i;
  }
  n = make(r, sizeof(r), 200, "OK",
           "{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}");
  assert_int_equal(parse(r, n, &st, kup), KUP_OK);
  assert_int_equal(st, 200);
  assert_memory_equal(kup, want, 16);
  /* Upper-case hex, spaces in the JSON, header case. */
  {
    const char *body = " { \"kup\" : \"000102030405060708090A0B0C0D0E0F\" } ";
    n = (size_t)snprintf(r, sizeof(r),
                         "HTTP/1.1 200 OK\r\ncontent-length:   %zu \r\n\r\n%s",
                         strlen(body), body);
  }
  assert_int_equal(parse(r, n, &st, kup), KUP_OK);
  assert_memory_equal(kup, want, 16);
  /* Every truncation of a good response fails and leaves kup zero. */
  n = make(r, sizeof(r), 200, "OK",
           "{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}");
  for (i = 0; i < n; i++) {
    static const uint8_t zero[16];
    assert_int_not_equal(parse(r, i, &st, kup), KUP_OK);
    assert_memory_equal(kup, zero, 16);
  }
}

static void test_kup_parse_status_codes(void **state) {
  char r[512];
  uint8_t kup[16];
  static const uint8_t zero[16];
  int st;
  size_t n;
  (void)state;
  n = make(r, sizeof(r), 403, "Forbidden",
           "{\"error\":\"server_not_authorized\"}");
  assert_int_equal(parse(r, n, &st, kup), KUP_ERR_REFUSED);
  assert_int_equal(st, 403);
  assert_memory_equal(kup, zero, 16);
  n = make(r, sizeof(r), 404, "Not Found", "{\"error\":\"unknown_vector\"}");
  assert_int_equal(parse(r, n, &st, kup), KUP_ERR_UNKNOWN);
  assert_int_equal(st, 404);
  n = make(r, sizeof(r), 400, "Bad Request", "{\"error\":\"malformed_json\"}");
  assert_int_equal(parse(r, n, &st, kup), KUP_ERR_FAILED);
  assert_int_equal(st, 400);
  n = make(r, sizeof(r), 500, "Internal Server Error",
           "{\"error\":\"internal\"}");
  assert_int_equal(parse(r, n, &st, kup), KUP_ERR_FAILED);
  /* A 403 whose body is not JSON is still a refusal. */
  n = (size_t)snprintf(r, sizeof(r),
                       "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
  assert_int_equal(parse(r, n, &st, kup), KUP_ERR_REFUSED);
}

static void test_kup_parse_rejects(void **state) {
  static const char *const bad[] = {
    /* status line */
    "HTTP/1.0 200 OK\r\nContent-Length: "
    "42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 2000 OK\r\nContent-Length: "
    "42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 20x OK\r\nContent-Length: "
    "42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "http/1.1 200 OK\r\nContent-Length: "
    "42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    /* Content-Length missing, repeated, not a number, wrong */
    "HTTP/1.1 200 OK\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 200 OK\r\nContent-Length: 42\r\nContent-Length: "
    "42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "+42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "41\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "43\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "99999999\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    /* Transfer-Encoding, bad header lines */
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: "
    "42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: "
    "42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 200 OK\r\n: empty\r\nContent-Length: "
    "42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: "
    "42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 200 OK\nContent-Length: "
    "42\n\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}",
    /* bodies */
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "41\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0\"}",
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "43\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f0\"}",
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "42\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0g\"}",
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "42\r\n\r\n{\"KUP\":\"000102030405060708090a0b0c0d0e0f\"}",
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "48\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\",\"x\":1}",
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "44\r\n\r\n{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}{}",
    "HTTP/1.1 200 OK\r\nContent-Length: "
    "42\r\n\r\n[\"kup\",\"000102030405060708090a0b0c0d0e0f\"]",
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"kup\":16}",
    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
  };
  size_t i;
  uint8_t kup[16];
  static const uint8_t zero[16];
  int st;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rv = parse(bad[i], strlen(bad[i]), &st, kup);
    if (rv == KUP_OK) {
      fail_msg("accepted bad response %zu: %s", i, bad[i]);
    }
    assert_memory_equal(kup, zero, 16);
  }
  /* The well-formed twin of the cases above is accepted. */
  {
    const char *good = "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"
                       "{\"kup\":\"000102030405060708090a0b0c0d0e0f\"}";
    assert_int_equal(parse(good, strlen(good), &st, kup), KUP_OK);
  }
  /* A NUL inside is refused, not read as an end. */
  {
    char r[128];
    size_t n = (size_t)snprintf(r, sizeof(r),
                                "HTTP/1.1 200 OK\r\nX-A: a%cb\r\n"
                                "Content-Length: 42\r\n\r\n{\"kup\":\"%s\"}",
                                'Z', KUP_HEX);
    char *z = memchr(r, 'Z', n);
    *z = '\0';
    assert_int_not_equal(parse(r, n, &st, kup), KUP_OK);
  }
  assert_int_equal(kup_parse_response(NULL, 3, &st, kup, NULL, 0),
                   KUP_ERR_INVALID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_kup_parse_ok),
    cmocka_unit_test(test_kup_parse_status_codes),
    cmocka_unit_test(test_kup_parse_rejects),
  };
  return cmocka_run_group_tests_name("cellserver.kup_parse", tests, NULL, NULL);
}
