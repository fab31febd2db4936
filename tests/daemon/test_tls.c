/*
 * daemon.tls: who may connect and how the server link is framed.
 * Certificates from another CA, expired, revoked (CRL) or missing fail the
 * TLS handshake; a certificate whose commonName is not exactly one UEID is
 * refused after the handshake (PROTOCOL.md section 1); a frame with len < 5
 * or a TLS record that does not decrypt ends the connection, a maximal
 * frame is answered MALFORMED; stalled
 * handshakes, frames and TLS records are dropped after idle_timeout (1 s
 * here) while an idle connection stays; max_connections is enforced.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

static dh_env env;

static int setup(void **state) {
  (void)state;
  dh_env_create(&env, "max_connections = 8\n");
  return dh_start(&env) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  int st;
  (void)state;
  st = dh_stop(&env, SIGTERM, 10000);
  dh_env_destroy(&env);
  return st == 0 ? 0 : -1;
}

static int one_exchange(dh_client *c, uint32_t req) {
  dh_device d;
  dh_m1 m;
  uint8_t type;
  uint32_t rreq;
  const uint8_t *body;
  size_t bl;
  static uint64_t nonce = 1000;
  dh_device_init(&d, DH_DEV_A);
  d.nonce = nonce++;
  dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
  if (dh_send_m2(c, req, m.bytes, m.len) != 0 ||
      dh_recv(c, &type, &rreq, &body, &bl, 10000) != 1 || rreq != req ||
      type != MTCSEC_MSG_M3) {
    return -1;
  }
  return dh_check_m3(&d, &m, body, bl, NULL);
}

/* The connection ends without any answer (handshake refused, or closed
 * right after it). */
static void assert_refused(int which) {
  dh_client c;
  if (dh_connect(&env, &c, which) == 0) {
    dh_device d;
    dh_m1 m;
    dh_device_init(&d, DH_DEV_A);
    dh_m1_build(&d, &m, DH_UEID, DH_MTCS_ID, NULL, 0);
    dh_send_m2(&c, 1, m.bytes, m.len); /* may fail: already closed */
    assert_int_equal(dh_wait_closed(&c, 5000), 0);
  }
  dh_close(&c);
}

static void test_handshake_refused(void **state) {
  long long before = dh_metric(&env, "mtcsd_tls_handshake_failures_total");
  (void)state;
  assert_true(before >= 0);
  assert_refused(DH_CERT_OTHER_CA);
  assert_refused(DH_CERT_EXPIRED);
  assert_refused(DH_CERT_REVOKED);
  assert_refused(DH_CERT_NONE);
  assert_int_equal(
    dh_wait_log(&env, "unable to get local issuer certificate", 2000), 0);
  assert_int_equal(dh_wait_log(&env, "certificate has expired", 2000), 0);
  assert_int_equal(dh_wait_log(&env, "certificate revoked", 2000), 0);
  assert_int_equal(dh_metric(&env, "mtcsd_tls_handshake_failures_total"),
                   before + 4);
}

static void test_identity_refused(void **state) {
  (void)state;
  assert_refused(DH_CERT_BAD_CN);
  assert_refused(DH_CERT_TWO_CN);
  assert_refused(DH_CERT_NO_CN);
  assert_int_equal(dh_wait_log(&env,
                               "reason=bad_identity detail=\"certificate "
                               "commonName 'not-a-ueid' is not 16 "
                               "hexadecimal digits\"",
                               2000),
                   0);
  assert_int_equal(dh_wait_log(&env, "more than one commonName", 2000), 0);
  assert_int_equal(dh_wait_log(&env, "has no commonName", 2000), 0);
  assert_int_equal(
    dh_metric(&env, "mtcsd_connections_refused_total{reason=\"identity\"}"), 3);
  /* The good certificate (upper-case CN) still works. */
  {
    dh_client c;
    assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
    assert_int_equal(one_exchange(&c, 5), 0);
    dh_close(&c);
  }
}

static void test_short_frame_closes(void **state) {
  dh_client c;
  static const uint8_t f[] = {0x00, 0x04, 0x12, 0x00, 0x00, 0x00};
  (void)state;
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  assert_int_equal(one_exchange(&c, 1), 0);
  assert_int_equal(dh_send(&c, f, sizeof(f)), 0);
  assert_int_equal(dh_wait_closed(&c, 5000), 0);
  dh_close(&c);
  assert_int_equal(dh_wait_log(&env, "reason=malformed_frame", 2000), 0);
}

static void test_bad_record_closes(void **state) {
  dh_client c;
  uint8_t rec[5 + 48];
  (void)state;
  /* A complete TLS record that does not decrypt (written under TLS). */
  memset(rec, 0x5a, sizeof(rec));
  rec[0] = 0x17;
  rec[1] = 0x03;
  rec[2] = 0x03;
  rec[3] = 0x00;
  rec[4] = 48;
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  assert_int_equal(one_exchange(&c, 1), 0);
  assert_int_equal(write(c.fd, rec, sizeof(rec)), (ssize_t)sizeof(rec));
  assert_int_equal(dh_wait_closed(&c, 900), 0); /* at once, no timeout */
  dh_close(&c);
  assert_int_equal(dh_wait_log(&env, "reason=tls_error", 2000), 0);
}

static void test_largest_frame_answered(void **state) {
  dh_client c;
  static uint8_t f[2 + 65535];
  uint8_t type;
  uint32_t req;
  const uint8_t *body;
  size_t bl;
  (void)state;
  memset(f, 0xa5, sizeof(f));
  f[0] = 0xff;
  f[1] = 0xff;
  f[2] = 0x12;
  f[3] = f[4] = f[5] = 0;
  f[6] = 9;
  assert_int_equal(dh_connect(&env, &c, DH_CERT_UE), 0);
  /* Sent in pieces: the server reassembles up to 65537 bytes. */
  assert_int_equal(dh_send(&c, f, 1000), 0);
  assert_int_equal(dh_send(&c, f + 1000, sizeof(f) - 1000), 0);
  assert_int_equal(dh_recv(&c, &type, &req, &body, &bl, 10000), 1);
  assert_int_equal(type, MTCSEC_MSG_ERR);
  assert_int_equal(req, 9);
  assert_int_equal(body[0], 1); /* MALFORMED */
  assert_int_equal(one_exchange(&c, 10), 0);
  dh_close(&c);
}

static void test_stalled_dropped(void **state) {
  dh_client tcp, frame, record, idle;
  static const uint8_t partial[] = {0x00, 0x30, 0x12};
  /* A TLS application-data record header announcing 64 bytes, and 10. */
  static const uint8_t rec[] = {0x17, 0x03, 0x03, 0x00, 0x40, 1, 2, 3,
                                4,    5,    6,    7,    8,    9, 10};
  uint64_t t0;
  (void)state;

  assert_int_equal(dh_connect_tcp(&env, &tcp), 0); /* no handshake */
  assert_int_equal(dh_connect(&env, &frame, DH_CERT_UE), 0);
  assert_int_equal(dh_connect(&env, &record, DH_CERT_UE), 0);
  assert_int_equal(dh_connect(&env, &idle, DH_CERT_UE), 0);
  t0 = dh_now_ms();
  assert_int_equal(dh_send(&frame, partial, sizeof(partial)), 0);
  assert_int_equal(write(record.fd, rec, sizeof(rec)), (ssize_t)sizeof(rec));

  {
    /* The bare TCP connection: the server closes it (EOF on read). */
    uint8_t b[16];
    ssize_t r = read(tcp.fd, b, sizeof(b));
    assert_true(r <= 0);
  }
  assert_int_equal(dh_wait_closed(&frame, 5000), 0);
  assert_int_equal(dh_wait_closed(&record, 5000), 0);
  assert_true(dh_now_ms() - t0 >= 900);
  assert_true(dh_now_ms() - t0 < 5000);
  assert_int_equal(dh_wait_log(&env, "reason=handshake_timeout", 2000), 0);
  assert_true(dh_log_count(&env, "reason=idle_timeout") >= 2);

  /* A connection with nothing pending is not "stalled". */
  dh_sleep_ms(500);
  assert_int_equal(one_exchange(&idle, 77), 0);
  dh_close(&tcp);
  dh_close(&frame);
  dh_close(&record);
  dh_close(&idle);
}

static void test_max_connections(void **state) {
  dh_client c[9];
  int i;
  uint64_t until = dh_now_ms() + 5000;
  (void)state;
  /* Wait for the connections of the previous tests to be gone. */
  while (dh_metric(&env, "mtcsd_connections") != 0 && dh_now_ms() < until) {
    dh_sleep_ms(20);
  }
  assert_int_equal(dh_metric(&env, "mtcsd_connections"), 0);
  for (i = 0; i < 8; i++) {
    assert_int_equal(dh_connect(&env, &c[i], DH_CERT_UE), 0);
  }
  assert_int_equal(one_exchange(&c[7], 1), 0);
  if (dh_connect(&env, &c[8], DH_CERT_UE) == 0) {
    assert_int_equal(dh_wait_closed(&c[8], 5000), 0);
  }
  dh_close(&c[8]);
  assert_int_equal(dh_wait_log(&env, "reason=max_connections", 2000), 0);
  assert_true(dh_metric(&env, "mtcsd_connections_refused_total{reason="
                              "\"max_connections\"}") >= 1);
  for (i = 0; i < 8; i++) {
    dh_close(&c[i]);
  }
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_handshake_refused),
    cmocka_unit_test(test_identity_refused),
    cmocka_unit_test(test_short_frame_closes),
    cmocka_unit_test(test_bad_record_closes),
    cmocka_unit_test(test_largest_frame_answered),
    cmocka_unit_test(test_stalled_dropped),
    cmocka_unit_test(test_max_connections),
  };
  dh_init(argc, argv, 55);
  return cmocka_run_group_tests(tests, setup, teardown);
}
