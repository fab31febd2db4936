/*
 * Unit tests of mtchpd's IPA connection buffers (apps/mtchpd/ipa.c) and
 * of its address list helpers (apps/mtchpd/config.c): a message handled
 * by hp_conn_read() leaves no byte in the read buffer (GSUP results from
 * the upstream HLR carry CK and IK), the bytes of a partial message are
 * kept only once, a received byte clears the keepalive state; and
 * gsup_allowed_peers entries (addresses, IPv4/IPv6 CIDRs) match as they
 * should.  A socketpair, no daemon.  CTest homeproxy.ipa.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <osmocom/gsm/protocol/ipaccess.h>

#include "mtchpd.h"

#define SECRET 0xc5 /* stands for CK/IK bytes in a GSUP message */

typedef struct seen {
  unsigned n;
  size_t len[4];
  int secret_ok; /* the payload arrived intact */
} seen;

static int on_msg(void *ud, hp_conn *c, uint8_t proto, int ext,
                  const uint8_t *data, size_t len) {
  seen *s = ud;
  size_t i;
  (void)c;
  assert_int_equal(proto, IPAC_PROTO_OSMO);
  assert_int_equal(ext, IPAC_PROTO_EXT_GSUP);
  s->secret_ok = 1;
  for (i = 0; i < len; i++) {
    if (data[i] != SECRET) {
      s->secret_ok = 0;
    }
  }
  if (s->n < 4) {
    s->len[s->n] = len;
  }
  s->n++;
  return 0;
}

/* Occurrences of SECRET anywhere in the connection's read buffer. */
static size_t secret_bytes(const hp_conn *c) {
  size_t i, n = 0;
  for (i = 0; i < HP_IPA_HDR_LEN + HP_IPA_MAX_PAYLOAD; i++) {
    n += c->rbuf[i] == SECRET;
  }
  return n;
}

/* IPA GSUP frame with len payload bytes of SECRET into out; its size. */
static size_t frame(uint8_t *out, size_t len) {
  size_t plen = len + 1;
  out[0] = (uint8_t)(plen >> 8);
  out[1] = (uint8_t)plen;
  out[2] = IPAC_PROTO_OSMO;
  out[3] = IPAC_PROTO_EXT_GSUP;
  memset(out + 4, SECRET, len);
  return 4 + len;
}

static void test_hp_ipa_read_buffer_wiped(void **state) {
  int sv[2];
  hp_conn *c;
  seen s;
  uint8_t buf[1024];
  size_t n1, n2, off;
  (void)state;
  memset(&s, 0, sizeof(s));
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
  c = hp_conn_new(sv[0], HP_CONN_UPSTREAM, 1);
  assert_non_null(c);
  c->pings = 2;

  /* Two complete messages (100 and 200 secret bytes) and the first 50
   * bytes of a third's payload. */
  n1 = frame(buf, 100);
  n2 = frame(buf + n1, 200);
  off = n1 + n2;
  (void)frame(buf + off, 300);
  assert_int_equal(write(sv[1], buf, off + 4 + 50), (ssize_t)(off + 4 + 50));
  assert_int_equal(hp_conn_read(c, on_msg, &s), 0);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.len[0], 100);
  assert_int_equal(s.len[1], 200);
  assert_true(s.secret_ok);
  assert_int_equal(c->pings, 0); /* a byte arrived: the peer lives */
  /* Only the partial message remains: its 4 header and 50 payload bytes,
   * once; the handled messages are gone from the whole buffer. */
  assert_int_equal(c->rlen, 4 + 50);
  assert_int_equal(secret_bytes(c), 50);

  /* The rest of the third message: handled, then nothing is left. */
  memset(buf, SECRET, 250);
  assert_int_equal(write(sv[1], buf, 250), 250);
  assert_int_equal(hp_conn_read(c, on_msg, &s), 0);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.len[2], 300);
  assert_true(s.secret_ok);
  assert_int_equal(c->rlen, 0);
  assert_int_equal(secret_bytes(c), 0);

  /* The peer closes: EOF. */
  close(sv[1]);
  assert_int_equal(hp_conn_read(c, on_msg, &s), 1);
  hp_conn_free(c);
}

static void v4(uint8_t a[16], const char *s) {
  struct in_addr in;
  assert_int_equal(inet_pton(AF_INET, s, &in), 1);
  memset(a, 0, 16);
  a[10] = a[11] = 0xff;
  memcpy(a + 12, &in, 4);
}

static void v6(uint8_t a[16], const char *s) {
  assert_int_equal(inet_pton(AF_INET6, s, a), 1);
}

static void test_hp_net_parse_and_match(void **state) {
  hp_net n;
  uint8_t a[16];
  (void)state;
  assert_int_equal(hp_net_parse("10.1.0.0/16", &n), 0);
  v4(a, "10.1.255.7");
  assert_true(hp_net_match(&n, a));
  v4(a, "10.2.0.1");
  assert_false(hp_net_match(&n, a));
  assert_int_equal(hp_net_parse("192.0.2.9", &n), 0); /* one address */
  v4(a, "192.0.2.9");
  assert_true(hp_net_match(&n, a));
  v4(a, "192.0.2.8");
  assert_false(hp_net_match(&n, a));
  assert_int_equal(hp_net_parse("192.0.2.0/25", &n), 0); /* not a byte */
  v4(a, "192.0.2.127");
  assert_true(hp_net_match(&n, a));
  v4(a, "192.0.2.128");
  assert_false(hp_net_match(&n, a));
  assert_int_equal(hp_net_parse("0.0.0.0/0", &n), 0); /* any IPv4 */
  v4(a, "203.0.113.1");
  assert_true(hp_net_match(&n, a));
  v6(a, "2001:db8::1");
  assert_false(hp_net_match(&n, a));
  assert_int_equal(hp_net_parse("2001:db8::/32", &n), 0);
  assert_true(hp_net_match(&n, a));
  v6(a, "2001:db9::1");
  assert_false(hp_net_match(&n, a));
  assert_int_equal(hp_net_parse("::1", &n), 0);
  v6(a, "::1");
  assert_true(hp_net_match(&n, a));
  /* Refused: bad prefixes and addresses. */
  assert_int_equal(hp_net_parse("10.0.0.0/33", &n), -1);
  assert_int_equal(hp_net_parse("2001:db8::/129", &n), -1);
  assert_int_equal(hp_net_parse("10.0.0.0/", &n), -1);
  assert_int_equal(hp_net_parse("10.0.0.0/-1", &n), -1);
  assert_int_equal(hp_net_parse("10.0.0.0/8x", &n), -1);
  assert_int_equal(hp_net_parse("10.0.0", &n), -1);
  assert_int_equal(hp_net_parse("localhost", &n), -1);
  assert_int_equal(hp_net_parse("", &n), -1);
  assert_int_equal(hp_net_parse("/8", &n), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_hp_ipa_read_buffer_wiped),
    cmocka_unit_test(test_hp_net_parse_and_match),
  };
  return cmocka_run_group_tests_name("homeproxy.ipa", tests, NULL, NULL);
}
