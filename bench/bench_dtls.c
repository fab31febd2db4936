/*
 * An OpenSSL DTLS 1.2 PSK client handshake (PSK-AES128-CCM8), isolated for
 * valgrind callgrind; client and server run in this one process over the
 * in-memory datagram link of bench_dtlspair.c.
 *
 * One warm-up handshake (first-use costs: provider loading, algorithm
 * fetches, the DRBG), then --n measured handshakes, each on new SSL objects
 * from the same SSL_CTX (a full handshake, no resumption).  In the measured
 * ones every client-side step goes through bench_dtls_client_measured(),
 * which only calls SSL_connect(); callgrind collects it by name
 * (--collect-atstart=no --toggle-collect=bench_dtls_client_measured), so
 * the count is the client's handshake work only: the server's SSL_accept()
 * and the set-up (SSL_CTX_new, SSL_new) are not counted.
 *
 * Usage: bench_dtls [--n N] [--nocookie]
 * Prints the bytes, datagrams and flights of the last handshake.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/mtcsec.h>

#include "bench_common.h"
#include "bench_dtlspair.h"

__attribute__((noinline)) int bench_dtls_client_measured(SSL *ssl);

int bench_dtls_client_measured(SSL *ssl) { return SSL_connect(ssl); }

int main(int argc, char **argv) {
  static bench_dtls_pair p;
  unsigned long n = 5, i;
  int cookie = 1, a;
  size_t k;

  for (a = 1; a < argc; a++) {
    if (strcmp(argv[a], "--nocookie") == 0) {
      cookie = 0;
    } else if (strcmp(argv[a], "--n") == 0 && a + 1 < argc) {
      n = bench_parse_ul(argv[++a], "--n");
    } else {
      fprintf(stderr, "usage: bench_dtls [--n N] [--nocookie]\n");
      return 2;
    }
  }
  if (bench_dtls_init(&p, cookie) != 0 || bench_dtls_handshake(&p, NULL) != 0) {
    return 1;
  }
  for (i = 0; i < n; i++) {
    if (bench_dtls_handshake(&p, bench_dtls_client_measured) != 0) {
      return 1;
    }
  }
  printf("# bench_dtls: DTLS 1.2 PSK-AES128-CCM8, cookie exchange %s, "
         "%lu measured client handshakes (+1 warm-up)\n",
         cookie ? "on" : "off", n);
  printf("dtls_bytes c2s=%zu s2c=%zu total=%zu datagrams=%zu flights=%zu\n",
         p.st.bytes[0], p.st.bytes[1], p.st.bytes[0] + p.st.bytes[1],
         p.st.dgrams[0] + p.st.dgrams[1], p.st.flights);
  printf("dtls_datagrams (+ client->server, - server->client):");
  for (k = 0; k < p.st.nlog; k++) {
    printf(" %+ld", p.st.log[k]);
  }
  printf("\n");
  bench_dtls_free(&p);
  return 0;
}
