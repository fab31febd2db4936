/*
 * End-to-end tests of mtchpd (docs/CELLULAR-HOME-PROXY.md).  This program
 * plays an SGSN (GSUP over IPA/TCP, libosmocore's codec), the MS (the
 * cellular.h MILENAGE/AKA API) and MTC servers (HTTPS with client
 * certificates), against the real mtchpd started on loopback in a
 * temporary directory.
 *
 *   test_homeproxy auc MTCHPD MTCSEC       built-in AuC (hlr.db via CLI):
 *                                          SAI, K_UP (refused, 403
 *                                          ck_released, for a normal
 *                                          subscriber's vectors), resync,
 *                                          Update Location with Insert
 *                                          Subscriber Data, /metrics,
 *                                          SIGHUP reload
 *   test_homeproxy upstream MTCHPD MTCSEC  a real osmo-hlr upstream;
 *                                          exit 77 when it cannot run
 *   test_homeproxy hardening MTCHPD MTCSEC the K_UP deadline against 64
 *                                          slow clients, kup_max_per_peer,
 *                                          the GSUP handshake timeout,
 *                                          keepalive, gsup_allowed_peers;
 *                                          exit 77 when 127.0.0.2.. cannot
 *                                          be bound
 *
 * Every wait is bounded; an alarm kills everything after 55 s; the
 * directory and the child processes are removed at exit.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include <osmocom/core/logging.h>
#include <osmocom/core/msgb.h>
#include <osmocom/gsm/gsm48_ie.h>
#include <osmocom/gsm/gsup.h>
#include <osmocom/gsm/protocol/ipaccess.h>

#include <mtcsec/cellular.h>
#include <mtcsec/crypto.h>

#include "app.h"

#define POLICY_IE 0xf0

static const char K_HEX[] = "465b5ce8b199b49faa5f0a2ee238a6bc";
static const char OPC_HEX[] = "cd63cb71954a9f4e48a5994e37a02baf";
static const char IMSI_IO[] = "001010000000001";  /* integrity-only */
static const char IMSI_N[] = "001010000000002";   /* normal */
static const char IMSI_SQN[] = "001010000000003"; /* SQN_HE far ahead */
static const char IMSI_MS[] = "001010000000004";  /* has an MSISDN */
static const char MSISDN[] = "491701234567";
static const char SERVER_OK[] = "5e00000000000001";
static const char SERVER_BAD[] = "5e000000000000ff"; /* e.g. an SGSN */

static char g_dir[256];
static pid_t g_hp = -1, g_hlr = -1;
static char g_log[320];

static pid_t g_trickler = -1; /* scenario_slowloris's child */

static void cleanup(void) {
  char cmd[300];
  if (g_trickler > 0) {
    kill(g_trickler, SIGKILL);
    waitpid(g_trickler, NULL, 0);
    g_trickler = -1;
  }
  if (g_hp > 0) {
    kill(g_hp, SIGKILL);
    waitpid(g_hp, NULL, 0);
    g_hp = -1;
  }
  if (g_hlr > 0) {
    kill(g_hlr, SIGKILL);
    waitpid(g_hlr, NULL, 0);
    g_hlr = -1;
  }
  if (g_dir[0] != '\0' && getenv("HP_KEEP") == NULL) {
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) {
      fprintf(stderr, "cannot remove %s\n", g_dir);
    }
    g_dir[0] = '\0';
  }
}

static void on_alarm(int sig) {
  (void)sig;
  fprintf(stderr, "FAIL: watchdog\n");
  cleanup();
  _exit(1);
}

static void dump_log(void) {
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "tail -n 40 '%s' >&2", g_log);
  if (system(cmd) != 0) {
    fprintf(stderr, "(no log)\n");
  }
}

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
      dump_log();                                                              \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static void ok(const char *what) { printf("ok - %s\n", what); }

static int sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  return system(cmd);
}

static void write_file(const char *name, const char *text, mode_t mode) {
  char p[400];
  int fd;
  snprintf(p, sizeof(p), "%s/%s", g_dir, name);
  fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
  CHECK(fd >= 0, "open %s", p);
  CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write");
  close(fd);
}

/* --------------------------------------------------------- environment */

static void make_env(void) {
  char kek[65];
  uint8_t r[32];
  FILE *f;
  size_t i;
  snprintf(g_dir, sizeof(g_dir), "%s/mtchpd-test-XXXXXX",
           getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
  CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
  snprintf(g_log, sizeof(g_log), "%s/mtchpd.log", g_dir);
  f = fopen("/dev/urandom", "rb");
  CHECK(f != NULL && fread(r, 1, sizeof(r), f) == sizeof(r), "urandom");
  fclose(f);
  for (i = 0; i < 32; i++) {
    snprintf(kek + 2 * i, 3, "%02x", r[i]);
  }
  write_file("kek", kek, 0600);
  CHECK(sh("cd '%s' && (openssl version >/dev/null)", g_dir) == 0,
        "openssl CLI");
  CHECK(sh("cd '%s' && ( "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
           "-nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=hp-test-ca "
           "-addext basicConstraints=critical,CA:TRUE "
           "-addext keyUsage=critical,keyCertSign,cRLSign ) >/dev/null 2>&1",
           g_dir) == 0,
        "CA");
  {
    const char *certs[4][3] = {{"server", "localhost", "serverAuth"},
                               {"srv_ok", SERVER_OK, "clientAuth"},
                               {"srv_bad", SERVER_BAD, "clientAuth"},
                               {"server2", "hp-reloaded", "serverAuth"}};
    for (i = 0; i < 4; i++) {
      CHECK(sh("cd '%s' && ( "
               "openssl req -new -newkey ec -pkeyopt "
               "ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.csr "
               "-subj /CN=%s && "
               "printf 'extendedKeyUsage=%s\\nsubjectAltName=DNS:localhost,"
               "IP:127.0.0.1\\n' > %s.ext && "
               "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key "
               "-CAcreateserial -days 2 -extfile %s.ext -out %s.pem && "
               "chmod 600 %s.key ) >/dev/null 2>&1",
               g_dir, certs[i][0], certs[i][0], certs[i][1], certs[i][2],
               certs[i][0], certs[i][0], certs[i][0], certs[i][0],
               certs[i][0]) == 0,
            "certificate %s", certs[i][0]);
    }
  }
}

static void write_conf2(const char *allowed, const char *extra) {
  char text[1024];
  snprintf(text, sizeof(text),
           "# mtchpd test configuration\n"
           "gsup_listen = 127.0.0.1:0\n"
           "kup_listen = 127.0.0.1:0\n"
           "metrics_listen = 127.0.0.1:0\n"
           "allowed_servers = %s\n"
           "vector_lifetime = 60\n"
           "log_level = debug\n"
           "%s",
           allowed, extra);
  write_file("mtchpd.conf", text, 0644);
}

static void write_conf(const char *extra) { write_conf2(SERVER_OK, extra); }

static int log_has(const char *needle, char *line, size_t linelen) {
  FILE *f = fopen(g_log, "r");
  char buf[2048];
  int found = 0;
  if (f == NULL) {
    return 0;
  }
  while (fgets(buf, sizeof(buf), f) != NULL) {
    if (strstr(buf, needle) != NULL) {
      found++;
      if (line != NULL) {
        snprintf(line, linelen, "%s", buf);
      }
    }
  }
  fclose(f);
  return found;
}

static int wait_log(const char *needle, int ms) {
  int waited;
  for (waited = 0; waited < ms; waited += 50) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    if (log_has(needle, NULL, 0)) {
      return 0;
    }
    nanosleep(&ts, NULL);
  }
  return -1;
}

/* Waits until needle appears at least n times; the last line into line. */
static int wait_log_n(const char *needle, int n, int ms, char *line,
                      size_t linelen) {
  int waited;
  for (waited = 0; waited < ms; waited += 50) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    if (log_has(needle, line, linelen) >= n) {
      return 0;
    }
    nanosleep(&ts, NULL);
  }
  return -1;
}

static pid_t spawn(const char *const argv[], const char *out) {
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  return pid;
}

/* Port of "service=NAME addr=127.0.0.1:PORT" in the log. */
static int log_port(const char *service) {
  char needle[64], line[2048];
  const char *p;
  snprintf(needle, sizeof(needle), "service=%s addr=127.0.0.1:", service);
  if (!log_has(needle, line, sizeof(line))) {
    return -1;
  }
  p = strstr(line, needle) + strlen(needle);
  return atoi(p);
}

static void start_hp(const char *mtchpd) {
  char conf[400];
  const char *argv[4];
  snprintf(conf, sizeof(conf), "%s/mtchpd.conf", g_dir);
  argv[0] = mtchpd;
  argv[1] = "-c";
  argv[2] = conf;
  argv[3] = NULL;
  g_hp = spawn(argv, g_log);
  CHECK(wait_log("event=ready", 10000) == 0, "mtchpd did not start");
}

/* ------------------------------------------------------------ GSUP/IPA */

static int tcp_connect(int port) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {5, 0};
  CHECK(fd >= 0, "socket");
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int read_full(int fd, uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) {
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* One IPA message; returns the payload length (after the ext byte for
 * IPAC_PROTO_OSMO) or -1. */
static int ipa_recv(int fd, uint8_t *proto, int *ext, uint8_t *buf,
                    size_t buflen) {
  uint8_t h[3];
  size_t len;
  if (read_full(fd, h, 3) != 0) {
    return -1;
  }
  len = ((size_t)h[0] << 8) | h[1];
  *proto = h[2];
  CHECK(len <= buflen, "IPA message too long");
  if (read_full(fd, buf, len) != 0) {
    return -1;
  }
  *ext = -1;
  if (*proto == IPAC_PROTO_OSMO) {
    CHECK(len >= 1, "no ext");
    *ext = buf[0];
    memmove(buf, buf + 1, len - 1);
    len--;
  }
  return (int)len;
}

static void ipa_send(int fd, uint8_t proto, int ext, const uint8_t *p,
                     size_t n) {
  uint8_t buf[4096];
  size_t plen = n + (ext >= 0 ? 1 : 0), off = 3;
  buf[0] = (uint8_t)(plen >> 8);
  buf[1] = (uint8_t)plen;
  buf[2] = proto;
  if (ext >= 0) {
    buf[off++] = (uint8_t)ext;
  }
  memcpy(buf + off, p, n);
  CHECK(write(fd, buf, off + n) == (ssize_t)(off + n), "IPA write");
}

/* Connects as an SGSN: answers the proxy's ID_GET with a unit name and
 * expects ID_ACK. */
static int sgsn_connect(int port) {
  uint8_t buf[512], proto;
  int fd = tcp_connect(port), ext, n;
  static const uint8_t resp[] = {IPAC_MSGT_ID_RESP,
                                 0x00,
                                 0x0a,
                                 IPAC_IDTAG_UNITNAME,
                                 'T',
                                 'E',
                                 'S',
                                 'T',
                                 '-',
                                 'S',
                                 'G',
                                 'S',
                                 0};
  CHECK(fd >= 0, "connect GSUP");
  n = ipa_recv(fd, &proto, &ext, buf, sizeof(buf));
  CHECK(n >= 1 && proto == IPAC_PROTO_IPACCESS && buf[0] == IPAC_MSGT_ID_GET,
        "expected ID_GET");
  ipa_send(fd, IPAC_PROTO_IPACCESS, -1, resp, sizeof(resp));
  n = ipa_recv(fd, &proto, &ext, buf, sizeof(buf));
  CHECK(n >= 1 && proto == IPAC_PROTO_IPACCESS && buf[0] == IPAC_MSGT_ID_ACK,
        "expected ID_ACK");
  {
    static const uint8_t ping[] = {IPAC_MSGT_PING};
    ipa_send(fd, IPAC_PROTO_IPACCESS, -1, ping, 1);
    n = ipa_recv(fd, &proto, &ext, buf, sizeof(buf));
    CHECK(n >= 1 && buf[0] == IPAC_MSGT_PONG, "expected PONG");
  }
  return fd;
}

/* A Send Auth Info exchange; raw result into out (returns its length). */
static int sai(int fd, const char *imsi, const uint8_t *auts,
               const uint8_t *rand, uint8_t *out, size_t outlen,
               struct osmo_gsup_message *res) {
  struct osmo_gsup_message m;
  struct msgb *msg = msgb_alloc(1024, "test");
  uint8_t proto;
  int ext, n;
  memset(&m, 0, sizeof(m));
  m.message_type = OSMO_GSUP_MSGT_SEND_AUTH_INFO_REQUEST;
  snprintf(m.imsi, sizeof(m.imsi), "%s", imsi);
  m.auts = auts;
  m.rand = rand;
  CHECK(osmo_gsup_encode(msg, &m) == 0, "encode");
  ipa_send(fd, IPAC_PROTO_OSMO, IPAC_PROTO_EXT_GSUP, msgb_data(msg),
           msgb_length(msg));
  msgb_free(msg);
  for (;;) {
    n = ipa_recv(fd, &proto, &ext, out, outlen);
    CHECK(n > 0, "no answer to SAI");
    if (proto == IPAC_PROTO_OSMO && ext == IPAC_PROTO_EXT_GSUP) {
      break;
    }
  }
  CHECK(osmo_gsup_decode(out, (size_t)n, res) == 0, "decode");
  CHECK(strcmp(res->imsi, imsi) == 0, "IMSI echoed");
  return n;
}

static void gsup_send(int fd, const struct osmo_gsup_message *m) {
  struct msgb *msg = msgb_alloc(1024, "test");
  CHECK(osmo_gsup_encode(msg, m) == 0, "encode");
  ipa_send(fd, IPAC_PROTO_OSMO, IPAC_PROTO_EXT_GSUP, msgb_data(msg),
           msgb_length(msg));
  msgb_free(msg);
}

/* The next GSUP message (CCM skipped), decoded into m (pointing into buf). */
static void gsup_recv(int fd, uint8_t *buf, size_t buflen,
                      struct osmo_gsup_message *m) {
  uint8_t proto;
  int ext, n;
  for (;;) {
    n = ipa_recv(fd, &proto, &ext, buf, buflen);
    CHECK(n > 0, "no GSUP message");
    if (proto == IPAC_PROTO_OSMO && ext == IPAC_PROTO_EXT_GSUP) {
      break;
    }
  }
  CHECK(osmo_gsup_decode(buf, (size_t)n, m) == 0, "decode");
}

static void gsup_simple(int fd, int type, const char *imsi, int cause) {
  struct osmo_gsup_message m;
  memset(&m, 0, sizeof(m));
  m.message_type = (enum osmo_gsup_message_type)type;
  snprintf(m.imsi, sizeof(m.imsi), "%s", imsi);
  m.cause = (enum gsm48_gmm_cause)cause;
  m.cn_domain = OSMO_GSUP_CN_DOMAIN_PS;
  gsup_send(fd, &m);
}

/* Which tags appear in tuple i of a raw result, as a bitmap of 0x20..0x27,
 * and the top-level policy IE (value into pol, length returned in *pl). */
static unsigned tuple_tags(const uint8_t *p, size_t n, size_t which,
                           uint8_t pol[8], size_t *pl) {
  size_t off = 1, t = 0;
  unsigned tags = 0;
  *pl = 0;
  while (off + 2 <= n) {
    uint8_t tag = p[off], len = p[off + 1];
    CHECK(off + 2 + len <= n, "TLV overrun");
    if (tag == OSMO_GSUP_AUTH_TUPLE_IE) {
      if (t == which) {
        size_t s = off + 2, e = off + 2 + len;
        while (s + 2 <= e) {
          if (p[s] >= 0x20 && p[s] <= 0x27) {
            tags |= 1u << (p[s] - 0x20);
          }
          s += 2u + p[s + 1];
        }
      }
      t++;
    } else if (tag == POLICY_IE && len <= 8) {
      memcpy(pol, p + off + 2, len);
      *pl = len;
    }
    off += 2u + len;
  }
  return tags;
}

#define T_RAND (1u << 0)
#define T_SRES (1u << 1)
#define T_KC (1u << 2)
#define T_IK (1u << 3)
#define T_CK (1u << 4)
#define T_AUTN (1u << 5)
#define T_RES (1u << 7)

/* ----------------------------------------------------------------- HTTPS */

/* POSTs body to /v1/kup as `who`; the proxy certificate's CN goes into cn
 * (when not NULL). */
static int kup_post_cn(int port, const char *who, const char *body, char *resp,
                       size_t resplen, char *cn, size_t cnlen) {
  char crt[400], key[400], ca[400], err[256], req[1024];
  SSL_CTX *ctx;
  SSL *ssl;
  int fd, n, total = 0, status = -1;
  snprintf(crt, sizeof(crt), "%s/%s.pem", g_dir, who);
  snprintf(key, sizeof(key), "%s/%s.key", g_dir, who);
  snprintf(ca, sizeof(ca), "%s/ca.pem", g_dir);
  ctx = app_tls_client_ctx(crt, key, ca, err, sizeof(err));
  CHECK(ctx != NULL, "client ctx: %s", err);
  fd = tcp_connect(port);
  CHECK(fd >= 0, "connect K_UP");
  ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set1_host(ssl, "localhost");
  CHECK(SSL_connect(ssl) == 1, "TLS handshake");
  if (cn != NULL) {
    X509 *x = SSL_get1_peer_certificate(ssl);
    cn[0] = '\0';
    if (x != NULL) {
      X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                (int)cnlen);
      X509_free(x);
    }
  }
  n = snprintf(req, sizeof(req),
               "POST /v1/kup HTTP/1.1\r\nHost: localhost\r\n"
               "Content-Type: application/json\r\nContent-Length: %zu\r\n"
               "\r\n%s",
               strlen(body), body);
  CHECK(SSL_write(ssl, req, n) == n, "write request");
  while ((size_t)total + 1 < resplen &&
         (n = SSL_read(ssl, resp + total, (int)(resplen - 1 - (size_t)total))) >
           0) {
    total += n;
  }
  resp[total] = '\0';
  if (sscanf(resp, "HTTP/1.1 %d", &status) != 1) {
    status = -1;
  }
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  return status;
}

static int kup_post(int port, const char *who, const char *body, char *resp,
                    size_t resplen) {
  return kup_post_cn(port, who, body, resp, resplen, NULL, 0);
}

static void hex(char *out, const uint8_t *p, size_t n) {
  app_format_hex(out, p, n);
}

/* ------------------------------------------------------------- the MS */

typedef struct ms {
  uint8_t k[16], opc[16];
  mtcsec_sqn_ms sqn;
} ms;

static void ms_init(ms *m) {
  CHECK(app_parse_hex(K_HEX, m->k, 16) == 0 &&
          app_parse_hex(OPC_HEX, m->opc, 16) == 0,
        "hex");
  CHECK(mtcsec_sqn_ms_init(&m->sqn, 5) == 0, "sqn init");
}

/* ------------------------------------------------------------ scenarios */

static void check_io_result(const uint8_t *raw, size_t n,
                            const struct osmo_gsup_message *r) {
  size_t i, pl;
  uint8_t pol[8];
  CHECK(r->message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT,
        "SAI result (type 0x%02x cause %d)", r->message_type, r->cause);
  CHECK(r->num_auth_vectors >= 1, "vectors");
  for (i = 0; i < r->num_auth_vectors; i++) {
    unsigned t = tuple_tags(raw, n, i, pol, &pl);
    CHECK((t & (T_RAND | T_IK | T_AUTN | T_RES)) ==
            (T_RAND | T_IK | T_AUTN | T_RES),
          "tuple %zu lacks RAND/IK/AUTN/RES (tags 0x%x)", i, t);
    CHECK((t & (T_CK | T_KC)) == 0, "tuple %zu carries CK or Kc (0x%x)", i, t);
  }
  tuple_tags(raw, n, 0, pol, &pl);
  CHECK(pl == 2 && pol[0] == 0x01 && pol[1] == 0x01,
        "policy IE 0xf0 = 01 01 (len %zu)", pl);
}

static void check_normal_result(const uint8_t *raw, size_t n,
                                const struct osmo_gsup_message *r) {
  size_t pl, i;
  uint8_t pol[8];
  CHECK(r->message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT, "result");
  for (i = 0; i < r->num_auth_vectors; i++) {
    unsigned t = tuple_tags(raw, n, i, pol, &pl);
    CHECK((t & (T_CK | T_IK | T_KC | T_AUTN | T_RES)) ==
            (T_CK | T_IK | T_KC | T_AUTN | T_RES),
          "normal tuple %zu incomplete (0x%x)", i, t);
  }
  CHECK(pl == 0, "no policy IE for a normal subscriber");
}

/* MS side AKA on vector i; returns CK/IK. */
static void ms_accept(ms *m, const struct osmo_gsup_message *r, size_t i,
                      mtcsec_aka_result *res) {
  uint8_t auts[14];
  mtcsec_sqn_verdict v;
  int rv = mtcsec_aka_ms(m->k, m->opc, &m->sqn, r->auth_vectors[i].rand,
                         r->auth_vectors[i].autn, res, auts, &v);
  CHECK(rv == 0, "MS refused AUTN of vector %zu: %s (verdict %d)", i,
        mtcsec_strerror(rv), (int)v);
  CHECK(memcmp(res->res, r->auth_vectors[i].res, 8) == 0, "RES == XRES");
  CHECK(memcmp(res->ik, r->auth_vectors[i].ik, 16) == 0, "IK matches");
}

/* K_UP as server `who` (certificate file stem) with ID sid_hex must be the
 * MS-side value. */
static void kup_expect_as(int port, const char *who, const char *sid_hex,
                          const char *imsi, const uint8_t rand[16],
                          const mtcsec_aka_result *res) {
  char body[256], resp[2048], rh[33], want[33];
  uint8_t sid[8], kup[16];
  mtcsec_crypto crypto;
  int st;
  hex(rh, rand, 16);
  snprintf(body, sizeof(body), "{\"imsi\":\"%s\",\"rand\":\"%s\"}", imsi, rh);
  st = kup_post(port, who, body, resp, sizeof(resp));
  CHECK(st == 200, "K_UP status %d: %s", st, resp);
  CHECK(app_parse_id(sid_hex, sid) == 0, "id");
  CHECK(mtcsec_crypto_openssl_new(&crypto) == 0, "crypto");
  CHECK(mtcsec_kup_derive(&crypto, res->ck, res->ik, sid, rand, kup) == 0,
        "derive");
  mtcsec_crypto_openssl_del(&crypto);
  hex(want, kup, 16);
  CHECK(strstr(resp, want) != NULL, "K_UP differs: want %s in %s", want, resp);
}

static void kup_expect(int port, const char *imsi, const uint8_t rand[16],
                       const mtcsec_aka_result *res) {
  kup_expect_as(port, "srv_ok", SERVER_OK, imsi, rand, res);
}

/* The status of a K_UP request for (imsi, rand) as `who`. */
static int kup_status(int port, const char *who, const char *imsi,
                      const uint8_t rand[16]) {
  char body[256], resp[2048], rh[33];
  hex(rh, rand, 16);
  snprintf(body, sizeof(body), "{\"imsi\":\"%s\",\"rand\":\"%s\"}", imsi, rh);
  return kup_post(port, who, body, resp, sizeof(resp));
}

/* K_UP of (imsi, rand) as `who` must be refused because the vector's CK
 * went to the SGSN: 403 {"error":"ck_released"}, logged as such, no K_UP
 * in the body. */
static void kup_ck_released(int port, const char *who, const char *imsi,
                            const uint8_t rand[16]) {
  char body[256], resp[2048], rh[33], needle[128];
  int st, before;
  hex(rh, rand, 16);
  snprintf(body, sizeof(body), "{\"imsi\":\"%s\",\"rand\":\"%s\"}", imsi, rh);
  snprintf(needle, sizeof(needle), "imsi=%s status=403 result=ck_released",
           imsi);
  before = log_has(needle, NULL, 0);
  st = kup_post(port, who, body, resp, sizeof(resp));
  CHECK(st == 403 && strstr(resp, "{\"error\":\"ck_released\"}") != NULL &&
          strstr(resp, "\"kup\"") == NULL,
        "vector with CK at the SGSN: %d %s", st, resp);
  CHECK(wait_log_n(needle, before + 1, 3000, NULL, 0) == 0, "no log line '%s'",
        needle);
}

/* ------------------------------------------------------------- metrics */

/* GET /metrics over plain HTTP; the body into out. */
static void metrics_get(int port, char *out, size_t outlen) {
  static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
  int fd = tcp_connect(port);
  size_t total = 0;
  ssize_t n;
  const char *body;
  CHECK(fd >= 0, "connect to metrics");
  CHECK(write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1),
        "metrics request");
  while (total + 1 < outlen &&
         (n = read(fd, out + total, outlen - 1 - total)) > 0) {
    total += (size_t)n;
  }
  out[total] = '\0';
  close(fd);
  CHECK(strncmp(out, "HTTP/1.0 200", 12) == 0, "metrics status: %.40s", out);
  CHECK(strstr(out, "text/plain; version=0.0.4") != NULL, "content type");
  body = strstr(out, "\r\n\r\n");
  CHECK(body != NULL, "metrics head");
  memmove(out, body + 4, strlen(body + 4) + 1);
}

/* The value of the sample `series` (name with labels, exactly as
 * exported), or -1 when it is absent. */
static long long metric(const char *text, const char *series) {
  size_t n = strlen(series);
  const char *p = text;
  while ((p = strstr(p, series)) != NULL) {
    if ((p == text || p[-1] == '\n') && p[n] == ' ') {
      return atoll(p + n + 1);
    }
    p += n;
  }
  return -1;
}

#define CHECK_METRIC(text, series, want)                                       \
  do {                                                                         \
    long long got_ = metric(text, series);                                     \
    CHECK(got_ == (long long)(want), "%s = %lld, want %lld", series, got_,     \
          (long long)(want));                                                  \
  } while (0)

static void kup_negatives(int port, const char *imsi, const uint8_t rand[16]) {
  char body[256], resp[2048], rh[33];
  uint8_t other[16];
  int st;
  hex(rh, rand, 16);
  snprintf(body, sizeof(body), "{\"imsi\":\"%s\",\"rand\":\"%s\"}", imsi, rh);
  st = kup_post(port, "srv_bad", body, resp, sizeof(resp));
  CHECK(st == 403, "unauthorized server: %d", st);
  ok("K_UP: a server (or SGSN) certificate not in allowed_servers -> 403");
  memcpy(other, rand, 16);
  other[0] ^= 0x80;
  hex(rh, other, 16);
  snprintf(body, sizeof(body), "{\"imsi\":\"%s\",\"rand\":\"%s\"}", imsi, rh);
  st = kup_post(port, "srv_ok", body, resp, sizeof(resp));
  CHECK(st == 404 && strstr(resp, "\"error\"") != NULL, "wrong RAND: %d %s", st,
        resp);
  ok("K_UP: a RAND the proxy never issued -> 404 with a JSON error");
  st = kup_post(port, "srv_ok", "{\"imsi\":\"00101\",\"rand\":\"zz\"}", resp,
                sizeof(resp));
  CHECK(st == 400, "malformed: %d", st);
  st = kup_post(port, "srv_ok", "not json", resp, sizeof(resp));
  CHECK(st == 400, "malformed: %d", st);
  ok("K_UP: malformed JSON -> 400");
  CHECK(log_has("event=kup_request", NULL, 0) >= 4, "requests logged");
  CHECK(!log_has(K_HEX, NULL, 0) && !log_has(OPC_HEX, NULL, 0),
        "keys never logged");
}

/* Update Location in built-in mode: Insert Subscriber Data first (MSISDN
 * when hlr.db has one, PDP info with APN "*", CN domain PS), then the
 * result once the SGSN answers; an ISD error or no answer gives an error. */
static void scenario_update_location(int fd) {
  uint8_t raw[4096];
  struct osmo_gsup_message m;
  char msisdn[32];
  static const uint8_t apn_star[] = {0x01, '*'};

  /* (a) MSISDN known; the SGSN accepts the data. */
  gsup_simple(fd, OSMO_GSUP_MSGT_UPDATE_LOCATION_REQUEST, IMSI_MS, 0);
  gsup_recv(fd, raw, sizeof(raw), &m);
  CHECK(m.message_type == OSMO_GSUP_MSGT_INSERT_DATA_REQUEST,
        "ISD before the UL result (got 0x%02x)", m.message_type);
  CHECK(strcmp(m.imsi, IMSI_MS) == 0, "ISD IMSI");
  CHECK(m.msisdn_enc != NULL &&
          gsm48_decode_bcd_number2(msisdn, sizeof(msisdn), m.msisdn_enc,
                                   m.msisdn_enc_len, 0) == 0 &&
          strcmp(msisdn, MSISDN) == 0,
        "ISD MSISDN");
  CHECK(m.cn_domain == OSMO_GSUP_CN_DOMAIN_PS, "ISD CN domain PS");
  CHECK(m.num_pdp_infos == 1 && m.pdp_infos[0].have_info &&
          m.pdp_infos[0].context_id == 1 &&
          m.pdp_infos[0].apn_enc_len == sizeof(apn_star) &&
          memcmp(m.pdp_infos[0].apn_enc, apn_star, sizeof(apn_star)) == 0,
        "ISD PDP info with APN \"*\"");
  gsup_simple(fd, OSMO_GSUP_MSGT_INSERT_DATA_RESULT, IMSI_MS, 0);
  gsup_recv(fd, raw, sizeof(raw), &m);
  CHECK(m.message_type == OSMO_GSUP_MSGT_UPDATE_LOCATION_RESULT &&
          strcmp(m.imsi, IMSI_MS) == 0,
        "UL result after the ISD result (got 0x%02x)", m.message_type);
  ok("UL: Insert Subscriber Data (MSISDN, APN \"*\", PS) then the UL "
     "result");

  /* (b) No MSISDN; the SGSN refuses the data. */
  gsup_simple(fd, OSMO_GSUP_MSGT_UPDATE_LOCATION_REQUEST, IMSI_N, 0);
  gsup_recv(fd, raw, sizeof(raw), &m);
  CHECK(m.message_type == OSMO_GSUP_MSGT_INSERT_DATA_REQUEST &&
          m.msisdn_enc == NULL && m.num_pdp_infos == 1,
        "ISD without MSISDN");
  gsup_simple(fd, OSMO_GSUP_MSGT_INSERT_DATA_ERROR, IMSI_N,
              GMM_CAUSE_PROTO_ERR_UNSPEC);
  gsup_recv(fd, raw, sizeof(raw), &m);
  CHECK(m.message_type == OSMO_GSUP_MSGT_UPDATE_LOCATION_ERROR &&
          m.cause == GMM_CAUSE_NET_FAIL,
        "ISD error -> UL error (got 0x%02x cause %d)", m.message_type, m.cause);
  ok("UL: no MSISDN IE when none is known; an ISD error -> UL error");

  /* (c) The SGSN never answers: UL error after isd_timeout (1 s). */
  gsup_simple(fd, OSMO_GSUP_MSGT_UPDATE_LOCATION_REQUEST, IMSI_IO, 0);
  gsup_recv(fd, raw, sizeof(raw), &m);
  CHECK(m.message_type == OSMO_GSUP_MSGT_INSERT_DATA_REQUEST, "ISD");
  gsup_recv(fd, raw, sizeof(raw), &m);
  CHECK(m.message_type == OSMO_GSUP_MSGT_UPDATE_LOCATION_ERROR &&
          strcmp(m.imsi, IMSI_IO) == 0,
        "unanswered ISD -> UL error");
  CHECK(log_has("reason=insert_data_timeout", NULL, 0) == 1, "timeout logged");
  ok("UL: an unanswered ISD -> UL error after isd_timeout");

  /* (d) Unknown subscriber: an error, no ISD. */
  gsup_simple(fd, OSMO_GSUP_MSGT_UPDATE_LOCATION_REQUEST, "001019999999999", 0);
  gsup_recv(fd, raw, sizeof(raw), &m);
  CHECK(m.message_type == OSMO_GSUP_MSGT_UPDATE_LOCATION_ERROR &&
          m.cause == GMM_CAUSE_IMSI_UNKNOWN,
        "UL unknown IMSI");
  ok("UL: unknown IMSI -> error, cause IMSI unknown, no ISD");
}

/* /metrics after run_auc's exchanges, counted by hand. */
static void scenario_metrics_auc(int mport) {
  static char text[16384];
  metrics_get(mport, text, sizeof(text));
  CHECK_METRIC(text,
               "mtchpd_gsup_requests_total{type=\"send_auth_info\","
               "result=\"ok\"}",
               4);
  CHECK_METRIC(text,
               "mtchpd_gsup_requests_total{type=\"send_auth_info\","
               "result=\"error\"}",
               2);
  CHECK_METRIC(text,
               "mtchpd_gsup_requests_total{type=\"update_location\","
               "result=\"ok\"}",
               1);
  CHECK_METRIC(text,
               "mtchpd_gsup_requests_total{type=\"update_location\","
               "result=\"error\"}",
               3);
  CHECK_METRIC(
    text, "mtchpd_gsup_requests_total{type=\"purge_ms\",result=\"ok\"}", 0);
  CHECK_METRIC(text, "mtchpd_vectors_issued_total{source=\"auc\"}", 20);
  CHECK_METRIC(text, "mtchpd_vectors_issued_total{source=\"upstream\"}", 0);
  CHECK_METRIC(text, "mtchpd_vectors_stripped_total", 5);
  CHECK_METRIC(text, "mtchpd_kup_requests_total{status=\"200\"}", 1);
  /* srv_bad, and the normal subscriber's vector (ck_released) */
  CHECK_METRIC(text, "mtchpd_kup_requests_total{status=\"403\"}", 2);
  CHECK_METRIC(text, "mtchpd_kup_requests_total{status=\"404\"}", 1);
  CHECK_METRIC(text, "mtchpd_kup_requests_total{status=\"400\"}", 2);
  CHECK_METRIC(text, "mtchpd_kup_requests_total{status=\"0\"}", 0);
  CHECK_METRIC(text, "mtchpd_vector_table_entries", 20);
  CHECK_METRIC(text, "mtchpd_gsup_peers", 1);
  CHECK_METRIC(text, "mtchpd_upstream_up", 0);
  CHECK_METRIC(text, "mtchpd_resyncs_total{result=\"ok\"}", 1);
  CHECK_METRIC(text, "mtchpd_resyncs_total{result=\"failed\"}", 1);
  CHECK(strstr(text, "# TYPE mtchpd_gsup_requests_total counter") != NULL &&
          strstr(text, "# TYPE mtchpd_vector_table_entries gauge") != NULL,
        "TYPE lines");
  ok("/metrics: GSUP, vector, K_UP, resync counters and the gauges match "
     "what the test did");
}

static void write_reload_conf(const char *text) {
  write_file("mtchpd.conf", text, 0644);
}

/* SIGHUP: a new allowed_servers, integrity_only and certificate apply to
 * the next request; a restart-only key keeps its value; the GSUP peer
 * stays connected and the vector table is kept, with each vector's
 * ck_released flag (a vector issued while the subscriber was normal stays
 * refused after it became integrity-only; its new vectors are served).  A
 * broken file or certificate is refused and the running configuration
 * stays.  rand_io/res_io: an integrity-only vector; rand_n: a normal
 * subscriber's (IMSI_N) vector. */
static void scenario_sighup(int gport, int kport, int fd,
                            const uint8_t rand_io[16],
                            const mtcsec_aka_result *res_io,
                            const uint8_t rand_n[16]) {
  char text[1024], line[2048], cn[128], resp[2048], body[256], rh[33];
  uint8_t raw[4096];
  struct osmo_gsup_message r;
  mtcsec_aka_result res;
  ms m;
  int fd2, st;

  hex(rh, rand_io, 16);
  snprintf(body, sizeof(body), "{\"imsi\":\"%s\",\"rand\":\"%s\"}", IMSI_IO,
           rh);
  st = kup_post_cn(kport, "srv_ok", body, resp, sizeof(resp), cn, sizeof(cn));
  CHECK(st == 200 && strcmp(cn, "localhost") == 0, "before: %d %s", st, cn);
  CHECK(kup_status(kport, "srv_bad", IMSI_IO, rand_io) == 403, "before: bad");

  snprintf(text, sizeof(text),
           "# reloaded\n"
           "gsup_listen = 127.0.0.1:1\n" /* restart-only: must be kept */
           "kup_listen = 127.0.0.1:0\n"
           "metrics_listen = 127.0.0.1:0\n"
           "allowed_servers = %s\n"
           "integrity_only = %s\n"
           "cert = server2.pem\n"
           "key = server2.key\n"
           "vector_lifetime = 60\n"
           "isd_timeout = 1\n"
           "log_level = debug\n",
           SERVER_BAD, IMSI_N);
  write_reload_conf(text);
  CHECK(kill(g_hp, SIGHUP) == 0, "SIGHUP");
  CHECK(wait_log_n("event=reload result=ok", 1, 5000, line, sizeof(line)) == 0,
        "reload not logged");
  CHECK(strstr(line, "restart_needed=gsup_listen ") != NULL ||
          strstr(line, "restart_needed=gsup_listen\n") != NULL,
        "restart_needed names gsup_listen: %s", line);
  CHECK(strstr(line, "allowed_servers=1") != NULL &&
          strstr(line, "certificates=reloaded") != NULL,
        "reload line: %s", line);

  /* The next K_UP request: the new list and the new certificate. */
  st = kup_post_cn(kport, "srv_ok", body, resp, sizeof(resp), cn, sizeof(cn));
  CHECK(st == 403, "srv_ok after the reload: %d", st);
  CHECK(strcmp(cn, "hp-reloaded") == 0, "new certificate served: %s", cn);
  kup_expect_as(kport, "srv_bad", SERVER_BAD, IMSI_IO, rand_io, res_io);
  ok("SIGHUP: new allowed_servers and certificate on the next K_UP request; "
     "the vector table is kept");

  /* The GSUP peer connected before the reload is still served, with the
   * new integrity_only list: IMSI_N's new vectors are integrity-only and
   * get K_UP; its vector issued before (CK at the SGSN) stays refused. */
  {
    int n = sai(fd, IMSI_N, NULL, NULL, raw, sizeof(raw), &r);
    check_io_result(raw, (size_t)n, &r);
    ms_init(&m);
    ms_accept(&m, &r, 0, &res);
    kup_expect_as(kport, "srv_bad", SERVER_BAD, IMSI_N, r.auth_vectors[0].rand,
                  &res);
    kup_ck_released(kport, "srv_bad", IMSI_N, rand_n);
  }
  fd2 = sgsn_connect(gport); /* the old listener: gsup_listen was kept */
  close(fd2);
  CHECK(!log_has("event=gsup_closed conn=1 ", NULL, 0), "peer 1 closed");
  ok("SIGHUP: the open GSUP peer stays connected; integrity_only applies "
     "(new vectors get K_UP, the one whose CK went out stays ck_released); "
     "gsup_listen (restart-only) keeps its old value");

  /* A broken file: refused, the running configuration stays. */
  snprintf(text, sizeof(text),
           "gsup_listen = 127.0.0.1:0\n"
           "kup_listen = 127.0.0.1:0\n"
           "metrics_listen = 127.0.0.1:0\n"
           "allowed_servers = %s\n"
           "vector_lifetime = banana\n",
           SERVER_OK);
  write_reload_conf(text);
  CHECK(kill(g_hp, SIGHUP) == 0, "SIGHUP");
  CHECK(wait_log_n("event=reload result=failed", 1, 5000, line, sizeof(line)) ==
          0,
        "refused reload not logged");
  CHECK(strstr(line, "vector_lifetime") != NULL &&
          strstr(line, "action=kept_previous_config") != NULL,
        "refusal says why: %s", line);
  CHECK(kup_status(kport, "srv_ok", IMSI_IO, rand_io) == 403, "old list kept");
  kup_expect_as(kport, "srv_bad", SERVER_BAD, IMSI_IO, rand_io, res_io);
  {
    int n = sai(fd, IMSI_N, NULL, NULL, raw, sizeof(raw), &r);
    check_io_result(raw, (size_t)n, &r);
  }
  ok("SIGHUP with a broken file: refused with a log line, the old "
     "configuration keeps working");

  /* A certificate that does not load: refused too. */
  snprintf(text, sizeof(text),
           "gsup_listen = 127.0.0.1:0\n"
           "kup_listen = 127.0.0.1:0\n"
           "metrics_listen = 127.0.0.1:0\n"
           "allowed_servers = %s\n"
           "cert = missing.pem\n"
           "vector_lifetime = 60\n",
           SERVER_OK);
  write_reload_conf(text);
  CHECK(kill(g_hp, SIGHUP) == 0, "SIGHUP");
  CHECK(wait_log_n("event=reload result=failed", 2, 5000, line, sizeof(line)) ==
          0,
        "refused reload not logged");
  CHECK(strstr(line, "missing.pem") != NULL, "names the file: %s", line);
  st = kup_post_cn(kport, "srv_bad", body, resp, sizeof(resp), cn, sizeof(cn));
  CHECK(st == 200 && strcmp(cn, "hp-reloaded") == 0,
        "old certificate and list kept: %d %s", st, cn);
  ok("SIGHUP with a certificate that does not load: refused, nothing "
     "changes");
}

/* hlr.db schema version 1 (as mtchpd wrote it before MSISDNs) with one
 * row: read-only commands read it as it is; `sub add` migrates it to
 * version 2 in place, keeping the row. */
static void scenario_migration(const char *mtcsec) {
  static const char v1[] =
    "CREATE TABLE subscriber ("
    " imsi TEXT PRIMARY KEY NOT NULL"
    "  CHECK (length(imsi) BETWEEN 6 AND 15 AND imsi NOT GLOB '*[^0-9]*'),"
    " keys BLOB NOT NULL,"
    " amf BLOB NOT NULL CHECK (length(amf) = 2),"
    " sqn INTEGER NOT NULL CHECK (sqn BETWEEN 0 AND 281474976710655),"
    " ind_bitlen INTEGER NOT NULL DEFAULT 5 CHECK (ind_bitlen BETWEEN 0 AND "
    "5),"
    " integrity_only INTEGER NOT NULL DEFAULT 0 CHECK (integrity_only IN "
    "(0,1)),"
    " created INTEGER NOT NULL) WITHOUT ROWID;"
    "PRAGMA application_id = 1836344168;"
    "PRAGMA user_version = 1;"
    "INSERT INTO subscriber VALUES ('001010000000077', x'00', x'8000', 32, 5,"
    " 0, 1700000000);";
  char dir[400], db[450];
  sqlite3 *h = NULL;
  sqlite3_stmt *st = NULL;
  int version = -1;

  snprintf(dir, sizeof(dir), "%s/v1", g_dir);
  snprintf(db, sizeof(db), "%s/hlr.db", dir);
  CHECK(mkdir(dir, 0700) == 0, "mkdir");
  CHECK(sh("cp '%s/kek' '%s/kek'", g_dir, dir) == 0, "kek");
  CHECK(sqlite3_open(db, &h) == SQLITE_OK &&
          sqlite3_exec(h, v1, NULL, NULL, NULL) == SQLITE_OK,
        "version 1 file");
  sqlite3_close(h);
  CHECK(sh("'%s' -d '%s' sub show 001010000000077 | grep -qx 'msisdn: -'",
           mtcsec, dir) == 0,
        "a version 1 file reads (read-only, not migrated)");
  CHECK(sh("'%s' -d '%s' sub add 001010000000078 --k %s --opc %s --msisdn 12 "
           ">/dev/null && '%s' -d '%s' sub list | grep 001010000000077 | "
           "grep -q -- ' -$' && '%s' -d '%s' sub show 001010000000078 | grep "
           "-qx 'msisdn: 12'",
           mtcsec, dir, K_HEX, OPC_HEX, mtcsec, dir, mtcsec, dir) == 0,
        "sub add on a version 1 file");
  CHECK(sqlite3_open(db, &h) == SQLITE_OK &&
          sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) ==
            SQLITE_OK &&
          sqlite3_step(st) == SQLITE_ROW,
        "read version");
  version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
  CHECK(version == 2, "migrated to version 2 (got %d)", version);
  ok("hlr.db version 1 -> 2 (msisdn): read-only reads it as it is, sub add "
     "migrates it and keeps the rows");
}

/* A listening TCP socket on 127.0.0.1:port, or -1 (port taken). */
static int hold_port(int port) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  CHECK(fd >= 0, "socket");
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* A second mtchpd with its own configuration (conf text) and log; waits
 * until it logs `until` or exits; returns its exit status, or -1 while it
 * still runs (then it is stopped). */
static int second_hp(const char *mtchpd, const char *conf, const char *until,
                     const char *logname) {
  char cpath[400], lpath[400], cmd[1200];
  const char *argv[4];
  pid_t pid;
  int i, status;
  snprintf(cpath, sizeof(cpath), "%s/second.conf", g_dir);
  snprintf(lpath, sizeof(lpath), "%s/%s", g_dir, logname);
  write_file("second.conf", conf, 0644);
  argv[0] = mtchpd;
  argv[1] = "-c";
  argv[2] = cpath;
  argv[3] = NULL;
  pid = spawn(argv, lpath);
  snprintf(cmd, sizeof(cmd), "grep -q '%s' '%s'", until, lpath);
  for (i = 0; i < 200; i++) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }
    if (sh("%s", cmd) == 0) {
      break;
    }
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGTERM);
  waitpid(pid, &status, 0);
  return -1;
}

/* metrics_listen: a value set in the file must open (exit 1 otherwise);
 * the default 127.0.0.1:9789, when taken, only disables metrics, so that
 * configurations written before metrics still start. */
static void scenario_metrics_port(const char *mtchpd) {
  int held = hold_port(9789), rv;
  char conf[512];
  snprintf(conf, sizeof(conf),
           "gsup_listen = 127.0.0.1:0\nkup_listen =\n"
           "metrics_listen = 127.0.0.1:%d\n",
           9789);
  if (held < 0) {
    printf("# 127.0.0.1:9789 is in use by another program: checked as "
           "taken\n");
  }
  rv = second_hp(mtchpd, conf, "event=ready", "second1.log");
  if (held >= 0 || rv != -1) {
    CHECK(rv == 1, "explicit metrics_listen taken: exit %d, want 1", rv);
  }
  snprintf(conf, sizeof(conf), "gsup_listen = 127.0.0.1:0\nkup_listen =\n");
  rv = second_hp(mtchpd, conf, "event=ready", "second2.log");
  CHECK(rv == -1, "default metrics_listen taken: mtchpd must run (exit %d)",
        rv);
  if (held >= 0) {
    CHECK(sh("grep -q 'event=metrics_disabled' '%s/second2.log'", g_dir) == 0,
          "metrics_disabled logged");
    close(held);
  }
  ok("metrics_listen: a taken port in the file stops mtchpd (exit 1); the "
     "default one, taken, only disables metrics");
}

static int run_auc(const char *mtchpd, const char *mtcsec) {
  uint8_t raw[4096], auts[14];
  struct osmo_gsup_message r;
  mtcsec_aka_result res_io, res_n, res;
  mtcsec_sqn_verdict v;
  ms m;
  int n, fd, gport, kport, mport;
  uint8_t rand_n[16], rand_io[16];
  char out[2048];

  make_env();
  CHECK(sh("'%s' -d '%s' sub add %s --k %s --opc %s --integrity-only "
           ">/dev/null",
           mtcsec, g_dir, IMSI_IO, K_HEX, OPC_HEX) == 0,
        "sub add io");
  CHECK(sh("'%s' -d '%s' sub add %s --k %s --opc %s >/dev/null", mtcsec, g_dir,
           IMSI_N, K_HEX, OPC_HEX) == 0,
        "sub add n");
  /* SEQ_HE 2^35 ahead: beyond Delta = 2^28 for a fresh USIM. */
  CHECK(sh("'%s' -d '%s' sub add %s --k %s --opc %s --sqn 1099511627776 "
           ">/dev/null",
           mtcsec, g_dir, IMSI_SQN, K_HEX, OPC_HEX) == 0,
        "sub add sqn");
  CHECK(sh("'%s' -d '%s' sub add %s --k %s --opc %s >/dev/null 2>&1", mtcsec,
           g_dir, IMSI_N, K_HEX, OPC_HEX) != 0,
        "duplicate refused");
  CHECK(sh("'%s' -d '%s' sub add %s --k %s --opc %s --msisdn %s >/dev/null",
           mtcsec, g_dir, IMSI_MS, K_HEX, OPC_HEX, MSISDN) == 0,
        "sub add --msisdn");
  CHECK(sh("'%s' -d '%s' sub add 001010000000005 --k %s --opc %s --msisdn %s "
           ">/dev/null 2>&1; test $? -eq 1",
           mtcsec, g_dir, K_HEX, OPC_HEX, MSISDN) == 0,
        "an MSISDN twice is refused (exit 1)");
  CHECK(sh("'%s' -d '%s' sub add 001010000000005 --k %s --opc %s --msisdn "
           "+4917 >/dev/null 2>&1; test $? -eq 2",
           mtcsec, g_dir, K_HEX, OPC_HEX) == 0,
        "a malformed MSISDN is a usage error (exit 2)");
  CHECK(sh("'%s' -d '%s' sub show %s | grep -qx 'msisdn: %s' && "
           "'%s' -d '%s' sub show %s | grep -qx 'msisdn: -' && "
           "'%s' -d '%s' sub list | grep %s | grep -q %s",
           mtcsec, g_dir, IMSI_MS, MSISDN, mtcsec, g_dir, IMSI_N, mtcsec, g_dir,
           IMSI_MS, MSISDN) == 0,
        "sub show/list print the MSISDN");
  ok("mtcsec sub add --msisdn: stored, shown, unique, digits only");
  scenario_migration(mtcsec);
  CHECK(sh("'%s' -d '%s' sub show %s > '%s/show.txt' && grep -q "
           "integrity-only '%s/show.txt' && ! grep -qi -e %s -e %s "
           "'%s/show.txt' && '%s' -d '%s' sub list | grep -q %s",
           mtcsec, g_dir, IMSI_IO, g_dir, g_dir, K_HEX, OPC_HEX, g_dir, mtcsec,
           g_dir, IMSI_SQN) == 0,
        "sub show/list");
  CHECK(sh("! grep -q -a -i %s '%s/hlr.db'", K_HEX, g_dir) == 0,
        "K in the clear in hlr.db");
  ok("mtcsec sub add/list/show; K and OPc never printed, wrapped at rest");

  write_conf("isd_timeout = 1\n");
  start_hp(mtchpd);
  gport = log_port("gsup");
  kport = log_port("kup");
  mport = log_port("metrics");
  CHECK(gport > 0 && kport > 0 && mport > 0, "ports");
  fd = sgsn_connect(gport);
  ok("IPA: ID_GET/ID_RESP/ID_ACK and PING/PONG like osmo-hlr");

  /* Integrity-only subscriber. */
  ms_init(&m);
  n = sai(fd, IMSI_IO, NULL, NULL, raw, sizeof(raw), &r);
  check_io_result(raw, (size_t)n, &r);
  ms_accept(&m, &r, 0, &res_io);
  memcpy(rand_io, r.auth_vectors[0].rand, 16);
  ok("SAI integrity-only: IK, RAND, AUTN, XRES, policy IE; no CK, no Kc; "
     "MS accepts AUTN");
  kup_expect(kport, IMSI_IO, r.auth_vectors[0].rand, &res_io);
  ok("K_UP for an authorized server equals the MS-side value");
  kup_negatives(kport, IMSI_IO, r.auth_vectors[0].rand);

  /* Normal subscriber: CK (and Kc) as usual. */
  ms_init(&m);
  n = sai(fd, IMSI_N, NULL, NULL, raw, sizeof(raw), &r);
  check_normal_result(raw, (size_t)n, &r);
  ms_accept(&m, &r, 0, &res_n);
  CHECK(memcmp(res_n.ck, r.auth_vectors[0].ck, 16) == 0, "CK matches");
  memcpy(rand_n, r.auth_vectors[0].rand, 16);
  ok("SAI normal subscriber: CK and Kc present, no policy IE");
  kup_ck_released(kport, "srv_ok", IMSI_N, rand_n);
  ok("K_UP for a normal subscriber's vector (CK went to the SGSN) -> 403 "
     "ck_released, logged result=ck_released");

  /* Unknown IMSI. */
  sai(fd, "001019999999999", NULL, NULL, raw, sizeof(raw), &r);
  CHECK(r.message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_ERROR &&
          r.cause == GMM_CAUSE_IMSI_UNKNOWN,
        "unknown IMSI error");
  ok("SAI unknown IMSI -> error, cause IMSI unknown");

  /* SQN out of range -> AUTS -> resync. */
  ms_init(&m);
  n = sai(fd, IMSI_SQN, NULL, NULL, raw, sizeof(raw), &r);
  CHECK(r.message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT, "result");
  CHECK(mtcsec_aka_ms(m.k, m.opc, &m.sqn, r.auth_vectors[0].rand,
                      r.auth_vectors[0].autn, &res, auts,
                      &v) == MTCSEC_ERR_REPLAY &&
          v == MTCSEC_SQN_OUT_OF_RANGE,
        "MS should see SQN out of range");
  {
    uint8_t rand0[16], wrong[16];
    memcpy(rand0, r.auth_vectors[0].rand, 16);
    memcpy(wrong, rand0, 16);
    wrong[5] ^= 1;
    sai(fd, IMSI_SQN, auts, wrong, raw, sizeof(raw), &r);
    CHECK(r.message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_ERROR,
          "AUTS with the wrong RAND must be refused");
    ok("AUTS with a wrong RAND -> SAI error, nothing changes");
    n = sai(fd, IMSI_SQN, auts, rand0, raw, sizeof(raw), &r);
    CHECK(r.message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT,
          "resync result");
    ms_accept(&m, &r, 0, &res);
    ms_accept(&m, &r, 1, &res);
    ok("SQN out of range -> AUTS -> resync; the next AUTN is accepted");
  }

  scenario_update_location(fd);
  scenario_metrics_auc(mport);
  scenario_sighup(gport, kport, fd, rand_io, &res_io, rand_n);
  close(fd);
  scenario_metrics_port(mtchpd);

  /* Graceful stop. */
  CHECK(kill(g_hp, SIGTERM) == 0, "kill");
  {
    int status = -1, i;
    for (i = 0; i < 100; i++) {
      struct timespec ts = {0, 50 * 1000 * 1000};
      if (waitpid(g_hp, &status, WNOHANG) == g_hp) {
        break;
      }
      nanosleep(&ts, NULL);
    }
    CHECK(i < 100 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "SIGTERM: clean exit");
    g_hp = -1;
  }
  (void)out;
  ok("SIGTERM: clean exit 0");
  return 0;
}

/* -------------------------------------------------------- upstream HLR */

static int port_busy(int port) {
  int fd = tcp_connect(port);
  if (fd >= 0) {
    close(fd);
    return 1;
  }
  return 0;
}

/* Sends VTY commands to osmo-hlr on 127.0.0.1:4258; returns the output. */
static int vty(const char *cmds, char *out, size_t outlen) {
  int fd = tcp_connect(4258), total = 0, n;
  struct timeval tv = {0, 300 * 1000};
  if (fd < 0) {
    return -1;
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (write(fd, cmds, strlen(cmds)) != (ssize_t)strlen(cmds)) {
    close(fd);
    return -1;
  }
  for (;;) {
    n = (int)read(fd, out + total, outlen - 1 - (size_t)total);
    if (n <= 0 || (size_t)total + (size_t)n + 1 >= outlen) {
      break;
    }
    total += n;
  }
  out[total] = '\0';
  close(fd);
  return 0;
}

static int run_upstream(const char *mtchpd, const char *mtcsec) {
  static const char *hlr_bin = "/usr/bin/osmo-hlr";
  uint8_t raw[4096];
  struct osmo_gsup_message r;
  mtcsec_aka_result res;
  ms m;
  char cfg[1024], path[400], db[400], hlrlog[400], out[8192], cmd[1024];
  const char *argv[8];
  int fd, gport, kport, mport, n, i;
  size_t nvec = 0, nio = 0;

  (void)mtcsec;
  if (access(hlr_bin, X_OK) != 0) {
    printf("skip: osmo-hlr not installed (apt-get install osmo-hlr)\n");
    return 77;
  }
  if (port_busy(4222) || port_busy(4258)) {
    printf("skip: ports 4222/4258 in use (another osmo-hlr?)\n");
    return 77;
  }
  make_env();
  snprintf(cfg, sizeof(cfg),
           "log stderr\n logging level main notice\n logging level db "
           "notice\n logging level auc notice\n"
           "line vty\n bind 127.0.0.1\n"
           "ctrl\n bind 127.0.0.1\n"
           "hlr\n gsup\n  bind ip 127.0.0.1\n");
  write_file("osmo-hlr.cfg", cfg, 0644);
  snprintf(path, sizeof(path), "%s/osmo-hlr.cfg", g_dir);
  snprintf(db, sizeof(db), "%s/osmo-hlr.db", g_dir);
  snprintf(hlrlog, sizeof(hlrlog), "%s/osmo-hlr.log", g_dir);
  argv[0] = hlr_bin;
  argv[1] = "-c";
  argv[2] = path;
  argv[3] = "-l";
  argv[4] = db;
  argv[5] = NULL;
  g_hlr = spawn(argv, hlrlog);
  for (i = 0; i < 100 && !port_busy(4258); i++) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (i == 100) {
    printf("skip: osmo-hlr did not start\n");
    return 77;
  }
  snprintf(cmd, sizeof(cmd),
           "enable\r\n"
           "subscriber imsi %s create\r\n"
           "subscriber imsi %s update aud3g milenage k %s opc %s\r\n"
           "subscriber imsi %s create\r\n"
           "subscriber imsi %s update aud3g milenage k %s opc %s\r\n"
           "exit\r\n",
           IMSI_IO, IMSI_IO, K_HEX, OPC_HEX, IMSI_N, IMSI_N, K_HEX, OPC_HEX);
  CHECK(vty(cmd, out, sizeof(out)) == 0, "VTY");
  ok("osmo-hlr started on loopback; subscribers created through its VTY");

  /* integrity-only from the proxy's configuration list (no hlr.db). */
  snprintf(cfg, sizeof(cfg),
           "upstream_hlr = 127.0.0.1:4222\nintegrity_only = %s\n"
           "upstream_timeout = 3\n",
           IMSI_IO);
  write_conf(cfg);
  start_hp(mtchpd);
  CHECK(wait_log("event=upstream_ready", 5000) == 0, "upstream link");
  gport = log_port("gsup");
  kport = log_port("kup");
  mport = log_port("metrics");
  CHECK(gport > 0 && kport > 0 && mport > 0, "ports");
  fd = sgsn_connect(gport);

  ms_init(&m);
  n = sai(fd, IMSI_IO, NULL, NULL, raw, sizeof(raw), &r);
  check_io_result(raw, (size_t)n, &r);
  nio = nvec = r.num_auth_vectors;
  ms_accept(&m, &r, 0, &res);
  ok("upstream: SAI relayed from osmo-hlr, CK and Kc stripped, policy IE "
     "added; MS accepts AUTN");
  kup_expect(kport, IMSI_IO, r.auth_vectors[0].rand, &res);
  ok("upstream: K_UP for the relayed vector equals the MS-side value");
  kup_negatives(kport, IMSI_IO, r.auth_vectors[0].rand);

  ms_init(&m);
  n = sai(fd, IMSI_N, NULL, NULL, raw, sizeof(raw), &r);
  check_normal_result(raw, (size_t)n, &r);
  nvec += r.num_auth_vectors;
  ms_accept(&m, &r, 0, &res);
  CHECK(memcmp(res.ck, r.auth_vectors[0].ck, 16) == 0, "CK matches");
  ok("upstream: a normal subscriber gets CK and Kc as usual");
  kup_ck_released(kport, "srv_ok", IMSI_N, r.auth_vectors[0].rand);
  ok("upstream: K_UP for the normal subscriber's relayed vector -> 403 "
     "ck_released");

  sai(fd, "001019999999999", NULL, NULL, raw, sizeof(raw), &r);
  CHECK(r.message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_ERROR,
        "unknown IMSI relayed as an error");
  ok("upstream: osmo-hlr's error for an unknown IMSI is relayed");
  {
    static char text[16384];
    metrics_get(mport, text, sizeof(text));
    CHECK_METRIC(text, "mtchpd_upstream_up", 1);
    CHECK_METRIC(text, "mtchpd_vectors_issued_total{source=\"upstream\"}",
                 nvec);
    CHECK_METRIC(text, "mtchpd_vectors_issued_total{source=\"auc\"}", 0);
    CHECK_METRIC(text, "mtchpd_vectors_stripped_total", nio);
    CHECK_METRIC(text,
                 "mtchpd_gsup_requests_total{type=\"send_auth_info\","
                 "result=\"ok\"}",
                 2);
    CHECK_METRIC(text,
                 "mtchpd_gsup_requests_total{type=\"send_auth_info\","
                 "result=\"error\"}",
                 1);
    CHECK_METRIC(text, "mtchpd_kup_requests_total{status=\"200\"}", 1);
    /* srv_bad, and the normal subscriber's vector (ck_released) */
    CHECK_METRIC(text, "mtchpd_kup_requests_total{status=\"403\"}", 2);
    CHECK_METRIC(text, "mtchpd_gsup_peers", 1);
    CHECK(nvec > 0 && nio > 0, "vectors relayed");
  }
  ok("upstream: /metrics counts the relayed vectors and upstream_up = 1");
  close(fd);
  return 0;
}

/* ----------------------------------------------------------- hardening */

static double ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) * 1000.0 +
         (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* A TCP connection from 127.0.0.src_last to 127.0.0.1:port (loopback is a
 * /8 on Linux), blocking with 5 s socket timeouts; -1 if it fails. */
static int tcp_connect_from(int src_last, int port) {
  struct sockaddr_in sa, src;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {5, 0};
  CHECK(fd >= 0, "socket");
  memset(&src, 0, sizeof(src));
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src_last);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
      connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Nonzero if the server closes fd (EOF or reset) within ms; any data
 * before that is read and dropped. */
static int closed_within(int fd, int limit_ms) {
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    uint8_t buf[512];
    int left = limit_ms - (int)ms_since(&t0);
    ssize_t n;
    if (left <= 0 || poll(&p, 1, left) <= 0) {
      return 0;
    }
    n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
      return 1;
    }
  }
}

/* One K_UP request (IMSI, RAND) as srv_ok that may fail: the HTTP status,
 * or -1 when the connection or the handshake fails. */
static int kup_try(int port, const char *imsi, const uint8_t rand[16]) {
  char crt[400], key[400], ca[400], err[256], req[1024], body[256], rh[33];
  char resp[2048];
  SSL_CTX *ctx;
  SSL *ssl;
  int fd, n, total = 0, status = -1;
  snprintf(crt, sizeof(crt), "%s/srv_ok.pem", g_dir);
  snprintf(key, sizeof(key), "%s/srv_ok.key", g_dir);
  snprintf(ca, sizeof(ca), "%s/ca.pem", g_dir);
  hex(rh, rand, 16);
  snprintf(body, sizeof(body), "{\"imsi\":\"%s\",\"rand\":\"%s\"}", imsi, rh);
  ctx = app_tls_client_ctx(crt, key, ca, err, sizeof(err));
  CHECK(ctx != NULL, "client ctx: %s", err);
  fd = tcp_connect(port);
  if (fd < 0) {
    SSL_CTX_free(ctx);
    return -1;
  }
  ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set1_host(ssl, "localhost");
  if (SSL_connect(ssl) == 1) {
    n = snprintf(req, sizeof(req),
                 "POST /v1/kup HTTP/1.1\r\nHost: localhost\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 strlen(body), body);
    if (SSL_write(ssl, req, n) == n) {
      while ((size_t)total + 1 < sizeof(resp) &&
             (n = SSL_read(ssl, resp + total,
                           (int)(sizeof(resp) - 1 - (size_t)total))) > 0) {
        total += n;
      }
      resp[total] = '\0';
      if (sscanf(resp, "HTTP/1.1 %d", &status) != 1) {
        status = -1;
      }
    }
  }
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  return status;
}

/* A child that writes one byte of a TLS record (a handshake record
 * announcing 512 bytes) every interval_ms to each of fds[0..n), for at
 * most secs seconds: each connection stays "active" forever for a server
 * that only times out single reads. */
static pid_t trickle(const int *fds, int n, int interval_ms, int secs) {
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    static const uint8_t rec[] = {0x16, 0x03, 0x01, 0x02, 0x00};
    int alive[128], i, step, any = 1;
    for (i = 0; i < n; i++) {
      alive[i] = 1;
    }
    for (step = 0; any && step * interval_ms < secs * 1000; step++) {
      struct timespec ts = {interval_ms / 1000,
                            (long)(interval_ms % 1000) * 1000000L};
      uint8_t b = step < (int)sizeof(rec) ? rec[step] : 0;
      any = 0;
      for (i = 0; i < n; i++) {
        if (alive[i] && send(fds[i], &b, 1, MSG_NOSIGNAL) != 1) {
          alive[i] = 0;
        }
        any |= alive[i];
      }
      nanosleep(&ts, NULL);
    }
    _exit(0);
  }
  return pid;
}

/*
 * The K_UP service against slow clients (slowloris).  64 connections
 * (8 from each of 127.0.0.2..9, within kup_max_per_peer) fill
 * kup_max_connections and send one byte of a TLS record every 300 ms,
 * forever.  With a timeout per read they would hold every thread; with
 * one deadline per connection (idle_timeout = 2 s from accept) they are
 * dropped after 2 s, and a real request, retried meanwhile, is served
 * right after.
 */
static void scenario_slowloris(int kport, const uint8_t rand_io[16]) {
  int fds[64], i, st = -1, probe, refused = 0;
  struct timespec t0;
  double served_ms;
  char line[2048];

  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (i = 0; i < 64; i++) {
    fds[i] = tcp_connect_from(2 + i / 8, kport);
    CHECK(fds[i] >= 0, "slow connection %d", i);
  }
  g_trickler = trickle(fds, 64, 300, 20);
  for (i = 0; i < 64; i++) {
    close(fds[i]); /* the child holds them */
  }
  /* Every thread is taken: one more connection is refused at once. */
  for (i = 0; i < 5 && !refused; i++) {
    probe = tcp_connect_from(10, kport);
    CHECK(probe >= 0, "probe connection");
    refused = closed_within(probe, 400);
    close(probe);
  }
  CHECK(refused && log_has("reason=max_connections", NULL, 0) >= 1,
        "64 slow connections did not fill kup_max_connections = 64");
  /* The real request: retried every 100 ms until it is served. */
  while (ms_since(&t0) < 10000) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    st = kup_try(kport, IMSI_IO, rand_io);
    if (st == 200) {
      break;
    }
    nanosleep(&ts, NULL);
  }
  served_ms = ms_since(&t0);
  CHECK(st == 200,
        "64 slow clients still block K_UP after %.0f ms (idle_timeout 2 s)",
        served_ms);
  CHECK(served_ms < 2000 + 2500, "served only after %.0f ms", served_ms);
  printf("# a real K_UP request was served %.0f ms after 64 slow clients "
         "took every thread (idle_timeout 2 s)\n",
         served_ms);
  CHECK(wait_log_n("status=0 result=timeout", 64, 5000, line, sizeof(line)) ==
          0,
        "the slow connections were not all closed at their deadline");
  CHECK(strstr(line, "TLS handshake not completed within idle_timeout") != NULL,
        "timeout line: %s", line);
  kill(g_trickler, SIGKILL);
  waitpid(g_trickler, NULL, 0);
  g_trickler = -1;
  ok("K_UP: 64 slow clients (one byte every 300 ms) are dropped at the "
     "per-connection deadline; a real request is served right after");
}

/* kup_max_per_peer (default 8): a 9th connection from one address is
 * refused at once while other addresses are served; the 8 silent ones
 * end at their deadline and free their slots. */
static void scenario_per_peer(int kport, const uint8_t rand_io[16]) {
  int fds[8], i, extra, before = log_has("status=0 result=timeout", NULL, 0);
  struct timespec t0;
  for (i = 0; i < 8; i++) {
    fds[i] = tcp_connect_from(2, kport);
    CHECK(fds[i] >= 0, "connection %d", i);
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  extra = tcp_connect_from(2, kport);
  CHECK(extra >= 0, "9th connection");
  CHECK(closed_within(extra, 1000), "a 9th connection from 127.0.0.2 was "
                                    "not refused at once");
  close(extra);
  CHECK(
    wait_log("event=kup_refused peer=127.0.0.2 reason=max_per_peer", 2000) == 0,
    "max_per_peer refusal not logged");
  CHECK(kup_try(kport, IMSI_IO, rand_io) == 200,
        "127.0.0.1 refused while 127.0.0.2 holds its 8");
  CHECK(wait_log_n("status=0 result=timeout", before + 8, 5000, NULL, 0) == 0,
        "the 8 silent connections were not closed at their deadline");
  for (i = 0; i < 8; i++) {
    CHECK(closed_within(fds[i], 1000), "connection %d still open", i);
    close(fds[i]);
  }
  extra = tcp_connect_from(2, kport);
  CHECK(extra >= 0 && !closed_within(extra, 300),
        "127.0.0.2 refused after its connections ended");
  close(extra);
  ok("K_UP: kup_max_per_peer = 8: the 9th connection from one address is "
     "refused at once, others are served; slots come back at the deadline");
}

/* Reads IPA messages until a CCM PING arrives (answered with PONG when
 * pong), within ms.  0, or -1 on EOF/timeout. */
static int wait_ping(int fd, int pong, int limit_ms) {
  struct timeval tv = {limit_ms / 1000, (limit_ms % 1000) * 1000};
  uint8_t buf[4096], proto;
  int ext, n;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  for (;;) {
    n = ipa_recv(fd, &proto, &ext, buf, sizeof(buf));
    if (n < 0) {
      return -1;
    }
    if (proto == IPAC_PROTO_IPACCESS && n >= 1 && buf[0] == IPAC_MSGT_PING) {
      if (pong) {
        static const uint8_t p[] = {IPAC_MSGT_PONG};
        ipa_send(fd, IPAC_PROTO_IPACCESS, -1, p, 1);
      }
      return 0;
    }
  }
}

/* Reads until EOF within ms (PINGs and other messages are dropped):
 * nonzero on EOF. */
static int eof_within(int fd, int limit_ms) {
  return closed_within(fd, limit_ms);
}

/* GSUP: gsup_allowed_peers, gsup_handshake_timeout (1 s) and
 * gsup_keepalive (1 s), applied by a SIGHUP. */
static void scenario_gsup_timers(int gport) {
  uint8_t buf[512], proto;
  int fd, ext, n;
  struct timespec t0;
  double t;
  char text[1024], line[2048];

  snprintf(text, sizeof(text),
           "gsup_listen = 127.0.0.1:0\nkup_listen = 127.0.0.1:0\n"
           "metrics_listen = 127.0.0.1:0\nallowed_servers = %s\n"
           "vector_lifetime = 60\nlog_level = debug\nidle_timeout = 2\n"
           "gsup_handshake_timeout = 1\ngsup_keepalive = 1\n"
           "gsup_allowed_peers = 127.0.0.1, ::1\n",
           SERVER_OK);
  write_file("mtchpd.conf", text, 0644);
  CHECK(kill(g_hp, SIGHUP) == 0, "SIGHUP");
  CHECK(wait_log_n("event=reload result=ok", 1, 5000, line, sizeof(line)) == 0,
        "reload");
  CHECK(strstr(line, "restart_needed=none") != NULL, "reload: %s", line);

  /* Not in gsup_allowed_peers: closed before any IPA message. */
  fd = tcp_connect_from(2, gport);
  CHECK(fd >= 0, "connect from 127.0.0.2");
  n = (int)read(fd, buf, sizeof(buf));
  CHECK(n == 0 || (n < 0 && errno == ECONNRESET),
        "a peer outside gsup_allowed_peers got %d bytes", n);
  close(fd);
  CHECK(
    wait_log("event=gsup_refused peer=127.0.0.2 reason=not_allowed", 2000) == 0,
    "refusal not logged");
  ok("GSUP: a peer outside gsup_allowed_peers is closed at accept");

  /* No identity: closed after gsup_handshake_timeout. */
  fd = tcp_connect(gport);
  CHECK(fd >= 0, "connect");
  clock_gettime(CLOCK_MONOTONIC, &t0);
  n = ipa_recv(fd, &proto, &ext, buf, sizeof(buf));
  CHECK(n >= 1 && buf[0] == IPAC_MSGT_ID_GET, "ID_GET");
  CHECK(eof_within(fd, 4000), "a peer without identity was kept");
  t = ms_since(&t0);
  CHECK(t >= 900 && t < 3000, "closed after %.0f ms, want about 1 s", t);
  close(fd);
  CHECK(wait_log("event=gsup_handshake_timeout", 2000) == 0 &&
          log_has("reason=handshake_timeout", NULL, 0) == 1,
        "handshake timeout not logged");
  printf("# a GSUP peer without IPA identity was closed after %.0f ms "
         "(gsup_handshake_timeout 1 s)\n",
         t);
  ok("GSUP: a peer that never sends its IPA identity is closed after "
     "gsup_handshake_timeout");

  /* Keepalive: PINGs answered keep the link; two unanswered drop it. */
  fd = sgsn_connect(gport);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK(wait_ping(fd, 1, 3000) == 0, "first PING");
  t = ms_since(&t0);
  CHECK(t >= 800 && t < 2500, "first PING after %.0f ms", t);
  CHECK(wait_ping(fd, 1, 3000) == 0, "second PING");
  CHECK(wait_ping(fd, 1, 3000) == 0, "third PING (the link stays)");
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK(wait_ping(fd, 0, 3000) == 0, "PING 1 (unanswered)");
  CHECK(wait_ping(fd, 0, 3000) == 0, "PING 2 (unanswered)");
  CHECK(eof_within(fd, 3000), "a peer that missed two PINGs was kept");
  t = ms_since(&t0);
  close(fd);
  CHECK(wait_log("event=gsup_keepalive_timeout", 2000) == 0 &&
          log_has("reason=keepalive_timeout", NULL, 0) == 1,
        "keepalive timeout not logged");
  printf("# a silent GSUP peer was dropped %.0f ms after its last PONG "
         "(gsup_keepalive 1 s)\n",
         t);
  ok("GSUP: IPA PING every gsup_keepalive of silence; PONGs keep the link, "
     "two unanswered PINGs close it");

  /* A SIGHUP that takes 127.0.0.1 off the list closes its peer. */
  fd = sgsn_connect(gport);
  snprintf(text, sizeof(text),
           "gsup_listen = 127.0.0.1:0\nkup_listen = 127.0.0.1:0\n"
           "metrics_listen = 127.0.0.1:0\nallowed_servers = %s\n"
           "vector_lifetime = 60\nlog_level = debug\nidle_timeout = 2\n"
           "gsup_allowed_peers = 10.0.0.0/8\n",
           SERVER_OK);
  write_file("mtchpd.conf", text, 0644);
  CHECK(kill(g_hp, SIGHUP) == 0, "SIGHUP");
  CHECK(eof_within(fd, 4000), "a peer no longer allowed was kept");
  close(fd);
  CHECK(log_has("reason=not_allowed", NULL, 0) >= 2, "not_allowed close");
  ok("GSUP: a SIGHUP that removes a peer's address from gsup_allowed_peers "
     "closes its connection");
}

static int run_hardening(const char *mtchpd, const char *mtcsec) {
  uint8_t raw[4096], rand_io[16];
  struct osmo_gsup_message r;
  int fd, gport, kport, probe;
  char text[1024];

  probe = socket(AF_INET, SOCK_STREAM, 0);
  {
    struct sockaddr_in src;
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f00000au); /* 127.0.0.10 */
    if (probe < 0 || bind(probe, (struct sockaddr *)&src, sizeof(src)) != 0) {
      printf("skip: cannot bind 127.0.0.10 (loopback is not a /8 here)\n");
      return 77;
    }
    close(probe);
  }
  make_env();
  CHECK(sh("'%s' -d '%s' sub add %s --k %s --opc %s --integrity-only "
           ">/dev/null",
           mtcsec, g_dir, IMSI_IO, K_HEX, OPC_HEX) == 0,
        "sub add io");
  /* Keys an mtchpd from before these limits knows too. */
  snprintf(text, sizeof(text),
           "gsup_listen = 127.0.0.1:0\nkup_listen = 127.0.0.1:0\n"
           "metrics_listen = 127.0.0.1:0\nallowed_servers = %s\n"
           "vector_lifetime = 60\nlog_level = debug\nidle_timeout = 2\n",
           SERVER_OK);
  write_file("mtchpd.conf", text, 0644);
  start_hp(mtchpd);
  gport = log_port("gsup");
  kport = log_port("kup");
  CHECK(gport > 0 && kport > 0, "ports");
  fd = sgsn_connect(gport);
  (void)sai(fd, IMSI_IO, NULL, NULL, raw, sizeof(raw), &r);
  CHECK(r.message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT, "SAI");
  memcpy(rand_io, r.auth_vectors[0].rand, 16);
  close(fd);
  CHECK(kup_try(kport, IMSI_IO, rand_io) == 200, "K_UP before");

  scenario_slowloris(kport, rand_io);
  scenario_per_peer(kport, rand_io);
  scenario_gsup_timers(gport);

  /* A clean exit (ASan would report leaked threads' state here). */
  CHECK(kill(g_hp, SIGTERM) == 0, "kill");
  {
    int status = -1, i;
    for (i = 0; i < 200; i++) {
      struct timespec ts = {0, 50 * 1000 * 1000};
      if (waitpid(g_hp, &status, WNOHANG) == g_hp) {
        break;
      }
      nanosleep(&ts, NULL);
    }
    CHECK(i < 200 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "SIGTERM: clean exit (status %d)", status);
    g_hp = -1;
  }
  ok("SIGTERM: clean exit 0");
  return 0;
}

static const struct log_info test_log_info = {NULL, NULL, 0, 0, NULL, NULL};

int main(int argc, char **argv) {
  int rv;
  if (argc != 4) {
    fprintf(stderr,
            "usage: test_homeproxy auc|upstream|hardening MTCHPD MTCSEC\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  alarm(55);
  atexit(cleanup);
  log_init(&test_log_info, NULL);
  if (strcmp(argv[1], "auc") == 0) {
    rv = run_auc(argv[2], argv[3]);
  } else if (strcmp(argv[1], "upstream") == 0) {
    rv = run_upstream(argv[2], argv[3]);
  } else if (strcmp(argv[1], "hardening") == 0) {
    rv = run_hardening(argv[2], argv[3]);
  } else {
    return 2;
  }
  return rv;
}
