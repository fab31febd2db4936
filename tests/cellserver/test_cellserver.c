/*
 * End-to-end test of mtcsd's cellular service (docs/CELLULAR-SYSTEM.md
 * section 3) against the real mtchpd and the real mtcsd, on loopback, in a
 * state directory made by `mtcsec init` and `mtcsec hp init`.
 *
 *   test_cellserver MTCSD MTCHPD MTCSEC
 *
 * This program plays the SGSN (one GSUP Send Auth Info, gsup_sai.c), the MS
 * (AKA with K/OPc, then K_UP and the payload keys the way an MS derives
 * them) and the GGSN (TLS 1.3 client with a certificate from the init CA,
 * Gi frames of apps/common/gi.h).  It checks CTX_OPEN, the uplink/downlink
 * echo, replay and MIC drops counted in /metrics, unknown contexts, the
 * context limit, a wrong RAND (0x02), a malformed IMSI (0x05), a GGSN that
 * is not allowed, key expiry after a SIGHUP, an mtcsd identity mtchpd does
 * not serve (0x01), mtchpd down (0x03), a malformed frame, that no key
 * reaches the logs, and a clean SIGTERM.
 *
 * Channel state per (IMSI, RAND) (section 3.1, "Re-opens"): after
 * CTX_CLOSE and CTX_OPEN of the same (IMSI, RAND), on the same and on a new
 * Gi connection, old uplink records are dropped as replays and the
 * downlink sequence continues (every downlink's seq field is checked); the
 * table full of unexpired state answers 0x04 and CTX_CLOSE does not free
 * it; only expired state is evicted; after an mtcsd restart a used
 * (IMSI, RAND) gets 0x06 (cellular_db) while a new vector works; a RAND
 * that cannot be recorded (cellular_db locked) gets 0x07 and keeps nothing;
 * another allowed GGSN's CTX_OPEN for the first GGSN's (IMSI, RAND) is
 * refused (0x01) and the first keeps its context; 0x06 and 0x07 are
 * counted in /metrics.
 *
 * Every wait is bounded; an alarm ends everything after 170 s; the
 * directory (unless CELL_KEEP is set) and the child processes are removed
 * at exit.
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

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <sqlite3.h>

#include <osmocom/core/logging.h>

#include <mtcsec/cellular.h>
#include <mtcsec/channel.h>
#include <mtcsec/crypto.h>

#include "app.h"
#include "gi.h"
#include "gsup_sai.h"

static const char K_HEX[] = "465b5ce8b199b49faa5f0a2ee238a6bc";
static const char OPC_HEX[] = "cd63cb71954a9f4e48a5994e37a02baf";
static const char IMSI[] = "001010000000001";
static const char MTCS_ID[] = "5e00000000000001";
static const char GGSN_OK[] = "6600000000000001";
static const char GGSN_2[] = "6600000000000002"; /* allowed, another GGSN */
static const char GGSN_BAD[] = "66000000000000ff";
static const char OTHER_SRV[] = "5e000000000000ee"; /* not in allowed_servers */
#define BURST_COUNT 30000
#define MAX_VECTORS 15

static char g_dir[256], g_st[300];
static char g_sdlog[400], g_hplog[400];
static pid_t g_sd = -1, g_hp = -1;
static const char *g_mtcsd, *g_mtchpd, *g_mtcsec;
static mtcsec_crypto g_crypto;
static const char *g_hp_host = "127.0.0.1"; /* home_proxy's host */

/* Vectors from mtchpd (GSUP Send Auth Info), in issue order. */
static uint8_t g_rand[MAX_VECTORS][16], g_autn[MAX_VECTORS][16];
static size_t g_nvec;

/* Every key the test derived: none may reach a log. */
static uint8_t g_keys[5 * MAX_VECTORS][16];
static size_t g_nkeys;

static void kill_wait(pid_t *pid) {
  if (*pid > 0) {
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = -1;
  }
}

static void cleanup(void) {
  char cmd[320];
  kill_wait(&g_sd);
  kill_wait(&g_hp);
  if (g_dir[0] != '\0' && getenv("CELL_KEEP") == NULL) {
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

static void dump_logs(void) {
  char cmd[1000];
  snprintf(cmd, sizeof(cmd),
           "echo '--- mtcsd log:' >&2; tail -n 40 '%s' >&2; "
           "echo '--- mtchpd log:' >&2; tail -n 15 '%s' >&2",
           g_sdlog, g_hplog);
  if (system(cmd) != 0) {
    fprintf(stderr, "(no logs)\n");
  }
}

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
      dump_logs();                                                             \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static void ok(const char *what) { printf("ok - %s\n", what); }

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  return system(cmd);
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- logs */

/* Occurrences of needle in the file; the last matching line in line. */
static int log_count(const char *path, const char *needle, char *line,
                     size_t linelen) {
  FILE *f = fopen(path, "r");
  char buf[4096];
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

/* Waits until needle appears at least n times.  0 or -1. */
static int wait_log(const char *path, const char *needle, int n, int ms) {
  int waited;
  for (waited = 0; waited < ms; waited += 50) {
    if (log_count(path, needle, NULL, 0) >= n) {
      return 0;
    }
    sleep_ms(50);
  }
  return -1;
}

/* The port after prefix ("...addr=127.0.0.1:") in the log, or -1. */
static int log_port(const char *path, const char *prefix) {
  char line[4096];
  const char *p;
  if (!log_count(path, prefix, line, sizeof(line))) {
    return -1;
  }
  p = strstr(line, prefix) + strlen(prefix);
  return atoi(p);
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

/* Sends sig and waits (at most 10 s) for the exit status. */
static int stop_child(pid_t *pid, int sig) {
  int status = -1, i;
  CHECK(kill(*pid, sig) == 0, "kill");
  for (i = 0; i < 200; i++) {
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      *pid = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }
    sleep_ms(50);
  }
  return -1;
}

/* ------------------------------------------------------------- metrics */

/* The value of the sample `name` (with its labels) on /metrics, or -1. */
static long long metric(int port, const char *name) {
  struct sockaddr_in sa;
  struct timeval tv = {5, 0};
  char resp[65536], key[256];
  size_t n = 0;
  const char *p;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";

  CHECK(fd >= 0, "socket");
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "metrics");
  CHECK(write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1),
        "metrics write");
  for (;;) {
    ssize_t r = read(fd, resp + n, sizeof(resp) - 1 - n);
    if (r <= 0) {
      break;
    }
    n += (size_t)r;
  }
  close(fd);
  resp[n] = '\0';
  snprintf(key, sizeof(key), "\n%s ", name);
  p = strstr(resp, key);
  return p != NULL ? atoll(p + strlen(key)) : -1;
}

static long long payloads(int port, const char *result) {
  char name[128];
  snprintf(name, sizeof(name), "mtcsd_cellular_payloads_total{result=\"%s\"}",
           result);
  return metric(port, name);
}

/* --------------------------------------------------------------- GGSN */

typedef struct ggsn {
  SSL_CTX *ctx;
  SSL *ssl;
  int fd;
  uint8_t in[2 * GI_FRAME_MAX];
  size_t inlen;
  uint8_t frame[GI_FRAME_MAX];
} ggsn;

static int tcp_connect(int port) {
  struct sockaddr_in sa;
  struct timeval tv = {5, 0};
  int fd = socket(AF_INET, SOCK_STREAM, 0), rcvbuf = 65536;
  CHECK(fd >= 0, "socket");
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  /* A fixed receive buffer (no autotuning): what mtcsd sends while this
   * test does not read is bounded, so its backpressure is reached. */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %d",
        port);
  return fd;
}

/* Connects as GGSN id; returns SSL_connect's result (1 on success). */
static int ggsn_connect(ggsn *g, int port, const char *id) {
  char crt[400], key[400], ca[400], err[512];
  memset(g, 0, sizeof(*g));
  snprintf(crt, sizeof(crt), "%s/ues/%s.pem", g_st, id);
  snprintf(key, sizeof(key), "%s/ues/%s.key", g_st, id);
  snprintf(ca, sizeof(ca), "%s/ca.pem", g_st);
  g->ctx = app_tls_client_ctx(crt, key, ca, err, sizeof(err));
  CHECK(g->ctx != NULL, "GGSN TLS context: %s", err);
  g->fd = tcp_connect(port);
  g->ssl = SSL_new(g->ctx);
  CHECK(g->ssl != NULL && SSL_set_fd(g->ssl, g->fd) == 1, "SSL_new");
  CHECK(SSL_set1_host(g->ssl, "localhost") == 1, "host");
  return SSL_connect(g->ssl);
}

static void ggsn_close(ggsn *g) {
  if (g->ssl != NULL) {
    SSL_shutdown(g->ssl);
    SSL_free(g->ssl);
  }
  if (g->fd > 0) {
    close(g->fd);
  }
  SSL_CTX_free(g->ctx);
  memset(g, 0, sizeof(*g));
  ERR_clear_error();
}

static void ggsn_send_raw(ggsn *g, const uint8_t *p, size_t n) {
  CHECK(SSL_write(g->ssl, p, (int)n) == (int)n, "SSL_write");
}

static void ggsn_send(ggsn *g, uint8_t type, uint32_t ctx, const uint8_t *body,
                      size_t len) {
  uint8_t buf[GI_FRAME_MAX];
  mtcsec_ssize n = gi_encode(type, ctx, body, len, buf, sizeof(buf));
  CHECK(n > 0, "gi_encode");
  ggsn_send_raw(g, buf, (size_t)n);
}

/* The next frame (copied into g->frame; f->body points there).  0, or -1
 * when the connection ends or 5 s pass. */
static int ggsn_recv(ggsn *g, gi_frame *f) {
  for (;;) {
    gi_frame t;
    mtcsec_ssize n = gi_decode(&t, g->in, g->inlen);
    int r;
    CHECK(n >= 0, "mtcsd sent a malformed frame");
    if (n > 0) {
      memcpy(g->frame, g->in, (size_t)n);
      *f = t;
      f->body = t.bodylen > 0 ? g->frame + GI_HDR_LEN : NULL;
      memmove(g->in, g->in + n, g->inlen - (size_t)n);
      g->inlen -= (size_t)n;
      return 0;
    }
    r = SSL_read(g->ssl, g->in + g->inlen, (int)(sizeof(g->in) - g->inlen));
    if (r <= 0) {
      ERR_clear_error();
      return -1;
    }
    g->inlen += (size_t)r;
  }
}

/* CTX_OPEN and its CTX_RESULT status. */
static int ctx_open(ggsn *g, uint32_t ctx, const uint8_t tbcd[8],
                    const uint8_t rand[16]) {
  uint8_t body[GI_CTX_OPEN_LEN];
  gi_frame f;
  memcpy(body, tbcd, 8);
  memcpy(body + 8, rand, 16);
  ggsn_send(g, GI_CTX_OPEN, ctx, body, sizeof(body));
  CHECK(ggsn_recv(g, &f) == 0, "no CTX_RESULT for ctx %u", (unsigned)ctx);
  CHECK(f.type == GI_CTX_RESULT && f.ctx == ctx && f.bodylen == 1,
        "expected CTX_RESULT for ctx %u, got %s ctx %u", (unsigned)ctx,
        gi_type_name(f.type), (unsigned)f.ctx);
  return f.body[0];
}

/* ----------------------------------------------------------------- MS */

typedef struct ms {
  uint8_t k[16], opc[16], tbcd[8];
  uint8_t rand[16];
  mtcsec_sqn_ms sqn;
  mtcsec_aka_result aka;
  uint8_t kup[16];
  mtcsec_up_keys keys;
  mtcsec_chan ch;
  uint32_t dl_next; /* the seq the next downlink record must carry */
} ms;

/* The seq field of a payload record: 0x16 || key_id(2) || seq(4) || ... */
static uint32_t rec_seq(const uint8_t *rec, size_t len) {
  CHECK(len >= 7 && rec[0] == 0x16, "not a payload record (%zu bytes)", len);
  return ((uint32_t)rec[3] << 24) | ((uint32_t)rec[4] << 16) |
         ((uint32_t)rec[5] << 8) | rec[6];
}

/* A fresh payload channel for a new (IMSI, RAND): seq from 0. */
static void ms_chan(ms *m) {
  m->dl_next = 0;
  mtcsec_chan_deinit(&m->ch);
  CHECK(mtcsec_chan_init_keys(&m->ch, &g_crypto, MTCSEC_SUITE_CMAC_AES128,
                              m->keys.ul_key, m->keys.ul_iv, m->keys.dl_key,
                              m->keys.dl_iv, 0,
                              app_now_ms() + 3600u * 1000u) == 0,
        "MS channel");
}

/* Seals pt as the MS does; returns the record length. */
static size_t ms_seal(ms *m, const char *pt, size_t ptlen, uint8_t *rec,
                      size_t reclen) {
  mtcsec_ssize n = mtcsec_chan_seal(&m->ch, rec, reclen, (const uint8_t *)pt,
                                    ptlen, app_now_ms());
  CHECK(n > 0, "seal: %s", mtcsec_strerror((int)n));
  return (size_t)n;
}

/* Expects the next frame to be the DOWNLINK of ctx opening to "ack " || pt
 * (the first 255 bytes of pt). */
static void expect_ack(ggsn *g, ms *m, uint32_t ctx, const char *pt,
                       size_t ptlen) {
  uint8_t out[GI_FRAME_MAX];
  char want[4 + 255];
  size_t echo = ptlen < 255 ? ptlen : 255;
  gi_frame f;
  mtcsec_ssize n;
  CHECK(ggsn_recv(g, &f) == 0, "no DOWNLINK");
  CHECK(f.type == GI_DOWNLINK && f.ctx == ctx,
        "expected DOWNLINK ctx %u, got %s ctx %u", (unsigned)ctx,
        gi_type_name(f.type), (unsigned)f.ctx);
  /* One channel per (IMSI, RAND): its downlink seq never restarts, not
   * even across CTX_CLOSE / CTX_OPEN (a reused seq is a reused nonce). */
  CHECK(rec_seq(f.body, f.bodylen) == m->dl_next,
        "downlink seq %u, expected %u (nonce reuse)",
        (unsigned)rec_seq(f.body, f.bodylen), (unsigned)m->dl_next);
  m->dl_next++;
  n =
    mtcsec_chan_open(&m->ch, out, sizeof(out), f.body, f.bodylen, app_now_ms());
  CHECK(n >= 0, "MS cannot open the downlink: %s", mtcsec_strerror((int)n));
  memcpy(want, "ack ", 4);
  memcpy(want + 4, pt, echo);
  CHECK((size_t)n == 4 + echo && memcmp(out, want, 4 + echo) == 0,
        "downlink is not \"ack \" + payload (%ld bytes)", (long)n);
}

/* Uplink pt on ctx and check the answer. */
static void round_trip(ggsn *g, ms *m, uint32_t ctx, const char *pt) {
  uint8_t rec[512];
  size_t n = ms_seal(m, pt, strlen(pt), rec, sizeof(rec));
  ggsn_send(g, GI_UPLINK, ctx, rec, n);
  expect_ack(g, m, ctx, pt, strlen(pt));
}

/*
 * Backpressure: count uplinks of 255 bytes written without reading for a
 * second (mtcsd's output to us piles up past its high-water mark and it
 * stops reading), then everything read back: every answer arrives, in
 * order, and opens.
 */
static void burst(ggsn *g, ms *m, uint32_t ctx, size_t count) {
  const size_t per = GI_HDR_LEN + 7 + 255 + 8;
  uint8_t *out = malloc(count * per), rec[512], pt[GI_FRAME_MAX];
  char payload[255];
  size_t i, len = 0, off = 0, got = 0;
  mtcsec_tstamp deadline;
  int fl = fcntl(g->fd, F_GETFL), reading = 0;

  CHECK(out != NULL, "malloc");
  for (i = 0; i < count; i++) {
    size_t n;
    memset(payload, 'a' + (int)(i % 26), sizeof(payload));
    memcpy(payload, &i, sizeof(i));
    n = ms_seal(m, payload, sizeof(payload), rec, sizeof(rec));
    CHECK(gi_encode(GI_UPLINK, ctx, rec, n, out + len, per) ==
            (mtcsec_ssize)(GI_HDR_LEN + n),
          "encode");
    len += GI_HDR_LEN + n;
  }
  CHECK(fcntl(g->fd, F_SETFL, fl | O_NONBLOCK) == 0, "O_NONBLOCK");
  deadline = app_now_ms() + 30000;
  while (got < count) {
    struct pollfd p;
    CHECK(app_now_ms() < deadline, "burst: %zu of %zu answers", got, count);
    while (off < len) {
      int w = SSL_write(g->ssl, out + off,
                        (int)(len - off > 16384 ? 16384 : len - off));
      if (w <= 0) {
        int e = SSL_get_error(g->ssl, w);
        CHECK(e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ,
              "burst write");
        break;
      }
      off += (size_t)w;
    }
    if (!reading) {
      /* For a second, write all that goes through and read nothing:
       * mtcsd's answers pile up until its backpressure holds. */
      mtcsec_tstamp until = app_now_ms() + 1000;
      while (off < len && app_now_ms() < until) {
        int w;
        p.fd = g->fd;
        p.events = POLLOUT;
        p.revents = 0;
        (void)poll(&p, 1, 50);
        w = SSL_write(g->ssl, out + off,
                      (int)(len - off > 16384 ? 16384 : len - off));
        if (w > 0) {
          off += (size_t)w;
        }
      }
      while (app_now_ms() < until) {
        sleep_ms(50);
      }
      reading = 1;
    }
    for (;;) {
      gi_frame f;
      mtcsec_ssize n = gi_decode(&f, g->in, g->inlen);
      int r;
      CHECK(n >= 0, "malformed frame from mtcsd");
      if (n > 0) {
        mtcsec_ssize k;
        CHECK(f.type == GI_DOWNLINK && f.ctx == ctx, "burst: %s",
              gi_type_name(f.type));
        CHECK(rec_seq(f.body, f.bodylen) == m->dl_next, "burst: seq %u",
              (unsigned)rec_seq(f.body, f.bodylen));
        m->dl_next++;
        k = mtcsec_chan_open(&m->ch, pt, sizeof(pt), f.body, f.bodylen,
                             app_now_ms());
        CHECK(k == 4 + 255 && memcmp(pt + 4, &got, sizeof(got)) == 0,
              "answer %zu out of order or damaged (%ld)", got, (long)k);
        got++;
        memmove(g->in, g->in + n, g->inlen - (size_t)n);
        g->inlen -= (size_t)n;
        continue;
      }
      r = SSL_read(g->ssl, g->in + g->inlen, (int)(sizeof(g->in) - g->inlen));
      if (r <= 0) {
        int e = SSL_get_error(g->ssl, r);
        CHECK(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE,
              "burst read");
        break;
      }
      g->inlen += (size_t)r;
    }
    if (got < count) {
      p.fd = g->fd;
      p.events = (short)(POLLIN | (off < len ? POLLOUT : 0));
      p.revents = 0;
      (void)poll(&p, 1, 100);
    }
  }
  CHECK(fcntl(g->fd, F_SETFL, fl) == 0, "blocking again");
  free(out);
}

/* -------------------------------------------------------------- set-up */

static void write_mtcsd_conf(int kport, const char *extra) {
  char path[400];
  FILE *f;
  snprintf(path, sizeof(path), "%s/mtcsd.conf", g_st);
  f = fopen(path, "w");
  CHECK(f != NULL, "mtcsd.conf");
  fprintf(f,
          "# cellserver test\n"
          "mtcs_id = %s\nlisten = 127.0.0.1:0\nmetrics_listen = 127.0.0.1:0\n"
          "workers = 1\nlog_level = debug\ncellular_listen = 127.0.0.1:0\n"
          "allowed_ggsns = %s, 6600000000000002\n"
          "home_proxy = %s:%d\ncellular_max_contexts = 4\n%s",
          MTCS_ID, GGSN_OK, g_hp_host, kport, extra);
  fclose(f);
}

static void make_env(void) {
  char path[400];
  snprintf(g_dir, sizeof(g_dir), "%s/cellserver-test-XXXXXX",
           getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
  CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
  snprintf(g_st, sizeof(g_st), "%s/st", g_dir);
  snprintf(g_sdlog, sizeof(g_sdlog), "%s/mtcsd.log", g_dir);
  snprintf(g_hplog, sizeof(g_hplog), "%s/mtchpd.log", g_dir);
  CHECK(sh("'%s' init '%s' --mtcs-id %s >/dev/null", g_mtcsec, g_st, MTCS_ID) ==
          0,
        "mtcsec init");
  CHECK(sh("'%s' -d '%s' hp init --gsup-listen 127.0.0.1:0 --kup-listen "
           "127.0.0.1:0 >/dev/null 2>&1",
           g_mtcsec, g_st) == 0,
        "mtcsec hp init");
  snprintf(path, sizeof(path), "%s/mtcs-client.pem", g_st);
  CHECK(access(path, R_OK) == 0, "init wrote no mtcs-client.pem");
  CHECK(sh("'%s' -d '%s' sub add %s --k %s --opc %s --integrity-only "
           ">/dev/null",
           g_mtcsec, g_st, IMSI, K_HEX, OPC_HEX) == 0,
        "sub add");
  CHECK(sh("'%s' -d '%s' ue add %s >/dev/null && '%s' -d '%s' ue add %s "
           ">/dev/null && '%s' -d '%s' ue add %s >/dev/null && '%s' -d '%s' "
           "ue add %s >/dev/null",
           g_mtcsec, g_st, GGSN_OK, g_mtcsec, g_st, GGSN_BAD, g_mtcsec, g_st,
           OTHER_SRV, g_mtcsec, g_st, GGSN_2) == 0,
        "GGSN and other-server certificates");
  ok("mtcsec init + hp init + sub add --integrity-only + certificates");
}

static void start_hp(void) {
  char conf[400];
  const char *argv[4];
  snprintf(conf, sizeof(conf), "%s/mtchpd.conf", g_st);
  argv[0] = g_mtchpd;
  argv[1] = "-c";
  argv[2] = conf;
  argv[3] = NULL;
  g_hp = spawn(argv, g_hplog);
  CHECK(wait_log(g_hplog, "event=ready", 1, 10000) == 0,
        "mtchpd did not start");
}

/* Starts mtcsd; waits for its n-th start in the (appended) log. */
static void start_sd(int n) {
  char conf[400];
  const char *argv[4];
  snprintf(conf, sizeof(conf), "%s/mtcsd.conf", g_st);
  argv[0] = g_mtcsd;
  argv[1] = "-c";
  argv[2] = conf;
  argv[3] = NULL;
  g_sd = spawn(argv, g_sdlog);
  CHECK(wait_log(g_sdlog, "event=cellular_ready", n, 10000) == 0 &&
          wait_log(g_sdlog, "event=ready ", n, 10000) == 0,
        "mtcsd did not start");
}

/* SIGHUP with a new configuration; waits for the n-th reload. */
static void reload_sd(int kport, const char *extra, int n) {
  write_mtcsd_conf(kport, extra);
  CHECK(kill(g_sd, SIGHUP) == 0, "SIGHUP");
  CHECK(wait_log(g_sdlog, "event=cellular_reloaded", n, 5000) == 0,
        "cellular service did not reload");
}

/* ------------------------------------------------------------- vectors */

/* One Send Auth Info for IMSI: its vectors are appended to g_rand/g_autn.
 * Returns the index of the first. */
static size_t get_vectors(int gport) {
  uint8_t raw[4096];
  struct osmo_gsup_message r;
  size_t first = g_nvec, i;
  int fd = gsup_sai_connect(gport);
  CHECK(fd >= 0, "GSUP connect");
  CHECK(gsup_sai(fd, IMSI, &r, raw, sizeof(raw)) == 0 &&
          r.message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT &&
          r.num_auth_vectors >= 5,
        "Send Auth Info (5 vectors)");
  close(fd);
  for (i = 0; i < r.num_auth_vectors && g_nvec < MAX_VECTORS; i++) {
    memcpy(g_rand[g_nvec], r.auth_vectors[i].rand, 16);
    memcpy(g_autn[g_nvec], r.auth_vectors[i].autn, 16);
    g_nvec++;
  }
  return first;
}

/* The MS accepts vector v (AKA with K/OPc, in issue order) and derives
 * K_UP and the payload keys as it would; a fresh channel (seq 0). */
static void ms_use_vector(ms *m, size_t v) {
  uint8_t sid[8], auts[14];
  mtcsec_sqn_verdict verdict;
  CHECK(v < g_nvec, "vector %zu", v);
  memcpy(m->rand, g_rand[v], 16);
  CHECK(mtcsec_aka_ms(m->k, m->opc, &m->sqn, m->rand, g_autn[v], &m->aka, auts,
                      &verdict) == 0,
        "MS AKA on vector %zu", v);
  CHECK(app_parse_id(MTCS_ID, sid) == 0, "id");
  CHECK(mtcsec_kup_derive(&g_crypto, m->aka.ck, m->aka.ik, sid, m->rand,
                          m->kup) == 0,
        "K_UP");
  CHECK(mtcsec_up_keys_derive(&g_crypto, m->kup, m->tbcd, &m->keys) == 0,
        "UL/DL keys");
  if (g_nkeys + 5 <= sizeof(g_keys) / sizeof(g_keys[0])) {
    memcpy(g_keys[g_nkeys++], m->aka.ck, 16);
    memcpy(g_keys[g_nkeys++], m->aka.ik, 16);
    memcpy(g_keys[g_nkeys++], m->kup, 16);
    memcpy(g_keys[g_nkeys++], m->keys.ul_key, 16);
    memcpy(g_keys[g_nkeys++], m->keys.dl_key, 16);
  }
  ms_chan(m);
}

/* ---------------------------------------------------------- cellular_db */

static sqlite3 *db_open_test(void) {
  char path[400];
  sqlite3 *db = NULL;
  snprintf(path, sizeof(path), "%s/cellular.db", g_st);
  CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK,
        "open %s", path);
  sqlite3_busy_timeout(db, 5000);
  return db;
}

/* Rows of cellular.db for IMSI and SHA-256(rand) (rand NULL: all rows). */
static int db_rows(const uint8_t *rand) {
  sqlite3 *db = db_open_test();
  sqlite3_stmt *st = NULL;
  uint8_t h[32];
  unsigned int hl = 0;
  int n = -1;
  CHECK(sqlite3_prepare_v2(db,
                           rand != NULL
                             ? "SELECT count(*) FROM cellular_rand WHERE "
                               "imsi = ?1 AND rand_sha256 = ?2"
                             : "SELECT count(*) FROM cellular_rand",
                           -1, &st, NULL) == SQLITE_OK,
        "cellular_rand: %s", sqlite3_errmsg(db));
  if (rand != NULL) {
    CHECK(EVP_Digest(rand, 16, h, &hl, EVP_sha256(), NULL) == 1, "sha256");
    sqlite3_bind_text(st, 1, IMSI, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, h, 32, SQLITE_STATIC);
  }
  if (sqlite3_step(st) == SQLITE_ROW) {
    n = sqlite3_column_int(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

/* Whether the 16 bytes of rand appear in file (cellular.db, its WAL). */
static int file_has(const char *file, const uint8_t *needle, size_t n) {
  char path[400];
  FILE *f;
  uint8_t *buf;
  long len;
  int found = 0;
  size_t i;
  snprintf(path, sizeof(path), "%s/%s", g_st, file);
  f = fopen(path, "rb");
  if (f == NULL) {
    return 0;
  }
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc(len > 0 ? (size_t)len : 1);
  CHECK(buf != NULL, "malloc");
  if (len > 0 && fread(buf, 1, (size_t)len, f) == (size_t)len) {
    for (i = 0; i + n <= (size_t)len && !found; i++) {
      found = memcmp(buf + i, needle, n) == 0;
    }
  }
  free(buf);
  fclose(f);
  return found;
}

static long long kup_fetches(int mport) {
  return metric(mport, "mtcsd_cellular_kup_fetch_seconds_count");
}

static long long opens(int mport, const char *result) {
  char name[128];
  snprintf(name, sizeof(name),
           "mtcsd_cellular_context_opens_total{result=\"%s\"}", result);
  return metric(mport, name);
}

/* ----------------------------------------------------------------- run */

static void key_not_in_log(const char *what, const uint8_t *k, size_t n) {
  char hex[65];
  app_format_hex(hex, k, n);
  CHECK(log_count(g_sdlog, hex, NULL, 0) == 0 &&
          log_count(g_hplog, hex, NULL, 0) == 0,
        "%s appears in a log", what);
}

/* CTX_OPEN on ctx with (IMSI, rand); the status must be want. */
static void open_expect(ggsn *g, uint32_t ctx, const uint8_t *tbcd,
                        const uint8_t *rand, int want, const char *what) {
  int st = ctx_open(g, ctx, tbcd, rand);
  CHECK(st == want, "%s: CTX_OPEN ctx %u answered 0x%02x, expected 0x%02x",
        what, (unsigned)ctx, st, want);
}

static int run(void) {
  uint8_t rec[512], rec2[512], old_rec[512], last_rec[512], badimsi[8];
  static const uint8_t r1[16] = "random RAND no 1", r2[16] = "random RAND no 2",
                       r3[16] = "random RAND no 3";
  ms m;
  ggsn g, bad;
  gi_frame f;
  int gport, kport, cport, mport, st;
  size_t n, old_len, last_len, v0, w0, i;
  long long kf;
  char conf_extra[1024], path[400];
  struct stat sb;
  sqlite3 *db;

  make_env();
  start_hp();
  gport = log_port(g_hplog, "service=gsup addr=127.0.0.1:");
  kport = log_port(g_hplog, "service=kup addr=127.0.0.1:");
  CHECK(gport > 0 && kport > 0, "mtchpd ports");
  write_mtcsd_conf(kport, "");
  {
    char conf[400];
    snprintf(conf, sizeof(conf), "%s/mtcsd.conf", g_st);
    CHECK(sh("'%s' -c '%s' --check-config >/dev/null", g_mtcsd, conf) == 0,
          "--check-config with cellular_listen");
    CHECK(sh("mv '%s/mtcs-client.key' '%s/mck' && '%s' -c '%s' --check-config "
             ">/dev/null 2>&1; s=$?; mv '%s/mck' '%s/mtcs-client.key'; "
             "test $s -eq 4",
             g_st, g_st, g_mtcsd, conf, g_st, g_st) == 0,
          "--check-config must refuse a missing home_proxy_key (exit 4)");
  }
  ok("mtcsd --check-config checks the K_UP client's files");
  {
    char conf[400];
    snprintf(conf, sizeof(conf), "%s/mtcsd.conf", g_st);
    write_mtcsd_conf(kport, "cellular_db = mtcsd.db\n");
    CHECK(sh("'%s' -c '%s' --check-config >/dev/null 2>&1; test $? -eq 4",
             g_mtcsd, conf) == 0,
          "--check-config must refuse cellular_db = mtcsd.db (exit 4)");
    CHECK(sh("timeout 20 '%s' -c '%s' >/dev/null 2>&1; test $? -eq 4", g_mtcsd,
             conf) == 0,
          "mtcsd must refuse to start with cellular_db = mtcsd.db (exit 4)");
    write_mtcsd_conf(kport, "cellular_db = nodir/cellular.db\n");
    CHECK(sh("'%s' -c '%s' --check-config >/dev/null 2>&1; test $? -eq 4",
             g_mtcsd, conf) == 0,
          "--check-config must refuse a cellular_db it cannot create");
    write_mtcsd_conf(kport, "");
    CHECK(sh("'%s' -c '%s' --check-config >/dev/null", g_mtcsd, conf) == 0,
          "mtcsd.db was damaged");
    snprintf(conf, sizeof(conf), "%s/cellular.db", g_st);
    CHECK(access(conf, F_OK) != 0, "--check-config created cellular.db");
  }
  ok("cellular_db: another program's database (mtcsd.db) or a file that "
     "cannot be created is refused (exit 4), and left as it was");
  start_sd(1);
  cport = log_port(g_sdlog, "event=cellular_listening addr=127.0.0.1:");
  mport = log_port(g_sdlog, "event=metrics_listening addr=127.0.0.1:");
  CHECK(cport > 0 && mport > 0, "mtcsd ports");
  ok("mtchpd and mtcsd (cellular_listen) started on loopback");

  /* The SGSN gets vectors; the MS runs AKA and derives what mtcsd will. */
  memset(&m, 0, sizeof(m));
  CHECK(app_parse_hex(K_HEX, m.k, 16) == 0 &&
          app_parse_hex(OPC_HEX, m.opc, 16) == 0,
        "hex");
  CHECK(mtcsec_sqn_ms_init(&m.sqn, 5) == 0, "sqn");
  CHECK(mtcsec_imsi_to_tbcd(IMSI, strlen(IMSI), m.tbcd) == 0, "TBCD");
  memcpy(badimsi, m.tbcd, 8);
  badimsi[2] = 0xab;
  v0 = get_vectors(gport); /* V0..V4 */
  ms_use_vector(&m, v0);
  ok("GSUP Send Auth Info from mtchpd (5 vectors); MS-side AKA, K_UP, UL/DL "
     "keys");

  /* CTX_OPEN, then the echo. */
  CHECK(ggsn_connect(&g, cport, GGSN_OK) == 1, "GGSN handshake");
  st = ctx_open(&g, 1, m.tbcd, m.rand);
  CHECK(st == GI_STATUS_OK, "CTX_OPEN status 0x%02x", st);
  CHECK(wait_log(g_sdlog, "event=gi_connected", 1, 2000) == 0 &&
          log_count(g_sdlog, "ggsn=6600000000000001", NULL, 0) > 0,
        "gi_connected logged");
  ok("CTX_OPEN -> CTX_RESULT 0x00 (K_UP fetched from mtchpd)");
  round_trip(&g, &m, 1, "hello from the MS");
  ok("UPLINK record -> DOWNLINK record opening to \"ack <payload>\"");

  /* Replay: dropped, never answered, counted. */
  old_len = ms_seal(&m, "first", 5, old_rec, sizeof(old_rec));
  ggsn_send(&g, GI_UPLINK, 1, old_rec, old_len);
  expect_ack(&g, &m, 1, "first", 5);
  ggsn_send(&g, GI_UPLINK, 1, old_rec, old_len); /* the same bytes again */
  round_trip(&g, &m, 1, "second"); /* the next answer is for this one */
  CHECK(payloads(mport, "replay") == 1, "replay counter %lld",
        payloads(mport, "replay"));
  ok("the same record again is dropped (no answer) and counted: "
     "payloads_total{result=\"replay\"} 1");

  /* A flipped bit: MIC. */
  n = ms_seal(&m, "tampered", 8, rec, sizeof(rec));
  rec[9] ^= 0x01;
  ggsn_send(&g, GI_UPLINK, 1, rec, n);
  round_trip(&g, &m, 1, "after the tampered one");
  CHECK(payloads(mport, "mic") == 1, "mic counter %lld",
        payloads(mport, "mic"));
  ok("a record with a flipped bit is dropped and counted (mic)");

  /* A long payload: 255 bytes echoed. */
  {
    char big[301];
    memset(big, 'x', 300);
    big[300] = '\0';
    big[0] = 'L';
    round_trip(&g, &m, 1, big);
  }
  ok("a 300-byte uplink is answered with \"ack \" + its first 255 bytes");

  /* Unknown context, short record. */
  n = ms_seal(&m, "lost", 4, rec2, sizeof(rec2));
  ggsn_send(&g, GI_UPLINK, 99, rec2, n);
  ggsn_send(&g, GI_UPLINK, 1, rec2, 5);
  round_trip(&g, &m, 1, "still here");
  CHECK(payloads(mport, "unknown_ctx") == 1 &&
          payloads(mport, "malformed") == 1,
        "unknown_ctx %lld malformed %lld", payloads(mport, "unknown_ctx"),
        payloads(mport, "malformed"));
  ok("UPLINK for an unknown ctx and a truncated record: dropped, counted");

  burst(&g, &m, 1, BURST_COUNT);
  {
    /* mtcsd must have stopped reading at least once (its answers piled up
     * while this test did not read) and resumed: counted from its log, not
     * timed, so a slow or busy machine cannot make this flaky. */
    FILE *lf = fopen(g_sdlog, "r");
    char line[4096];
    long pauses = 0, resumes = 0;
    CHECK(lf != NULL, "log");
    while (fgets(line, sizeof(line), lf) != NULL) {
      if (strstr(line, "event=gi_backpressure") == NULL) {
        continue;
      }
      pauses += strstr(line, "action=pause") != NULL;
      resumes += strstr(line, "action=resume") != NULL;
    }
    fclose(lf);
    CHECK(pauses >= 1 && resumes >= 1,
          "backpressure never held (%ld pauses, %ld resumes)", pauses, resumes);
  }
  ok("uplinks sent without reading: mtcsd stops reading at its high-water "
     "mark, resumes, and answers every one in order");

  /* Wrong RAND and malformed IMSI. */
  {
    uint8_t wrong[16];
    memcpy(wrong, m.rand, 16);
    wrong[3] ^= 0x40;
    open_expect(&g, 2, m.tbcd, wrong, GI_STATUS_UNKNOWN_VECTOR, "wrong RAND");
    ok("CTX_OPEN with a wrong RAND -> 0x02 (mtchpd said 404)");
    open_expect(&g, 3, badimsi, m.rand, GI_STATUS_MALFORMED, "bad IMSI");
    ok("CTX_OPEN with an IMSI that is not TBCD -> 0x05");
  }

  /* Re-open on the same connection: CTX_CLOSE, then CTX_OPEN of the same
   * (IMSI, RAND) under another TEID.  The channel state continues: no
   * second K_UP fetch, old uplink records are replays, and the downlink
   * seq goes on (expect_ack() checks every downlink's seq field). */
  last_len = ms_seal(&m, "last before close", 17, last_rec, sizeof(last_rec));
  ggsn_send(&g, GI_UPLINK, 1, last_rec, last_len);
  expect_ack(&g, &m, 1, "last before close", 17);
  kf = kup_fetches(mport);
  ggsn_send(&g, GI_CTX_CLOSE, 1, NULL, 0);
  open_expect(&g, 21, m.tbcd, m.rand, GI_STATUS_OK, "re-open");
  ggsn_send(&g, GI_UPLINK, 21, last_rec, last_len); /* replays */
  ggsn_send(&g, GI_UPLINK, 21, old_rec, old_len);
  round_trip(&g, &m, 21, "after re-open"); /* the next answer is this one */
  CHECK(payloads(mport, "replay") == 3, "replay counter %lld (expected 3)",
        payloads(mport, "replay"));
  CHECK(kup_fetches(mport) == kf, "a re-open fetched K_UP again");
  CHECK(log_count(g_sdlog,
                  "ctx=21 imsi=001010000000001 result=ok status=0x00 "
                  "replaced=0 resumed=1",
                  NULL, 0) == 1,
        "re-open not logged as resumed");
  ok("CTX_CLOSE + CTX_OPEN of the same (IMSI, RAND), same connection: no "
     "K_UP fetch, the last and an old uplink record are dropped as replays, "
     "the downlink seq continues");

  /* Re-open on a new Gi connection (the GGSN reconnected). */
  last_len =
    ms_seal(&m, "last on the first connection", 28, last_rec, sizeof(last_rec));
  ggsn_send(&g, GI_UPLINK, 21, last_rec, last_len);
  expect_ack(&g, &m, 21, "last on the first connection", 28);
  ggsn_close(&g);
  CHECK(wait_log(g_sdlog, "reason=eof contexts_unbound=1", 1, 3000) == 0,
        "gi_closed contexts_unbound=1 not logged");
  CHECK(ggsn_connect(&g, cport, GGSN_OK) == 1, "GGSN handshake");
  open_expect(&g, 21, m.tbcd, m.rand, GI_STATUS_OK, "re-open, new connection");
  ggsn_send(&g, GI_UPLINK, 21, last_rec, last_len); /* replays */
  ggsn_send(&g, GI_UPLINK, 21, old_rec, old_len);
  round_trip(&g, &m, 21, "on a new connection");
  CHECK(payloads(mport, "replay") == 5, "replay counter %lld (expected 5)",
        payloads(mport, "replay"));
  CHECK(kup_fetches(mport) == kf, "a re-open fetched K_UP again");
  ok("the same on a new Gi connection: replays dropped and counted, "
     "downlink seq continues");

  /* One Gi context per state: a CTX_OPEN under another TEID takes it. */
  open_expect(&g, 22, m.tbcd, m.rand, GI_STATUS_OK, "take over");
  n = ms_seal(&m, "to the old ctx", 14, rec, sizeof(rec));
  ggsn_send(&g, GI_UPLINK, 21, rec, n);
  round_trip(&g, &m, 22, "to the new ctx");
  CHECK(payloads(mport, "unknown_ctx") == 2, "unknown_ctx %lld",
        payloads(mport, "unknown_ctx"));
  CHECK(log_count(g_sdlog, "ctx=22 imsi=001010000000001 result=ok", NULL, 0) ==
            1 &&
          log_count(g_sdlog, "detail=\"channel state taken over from conn",
                    NULL, 0) == 1,
        "take-over not logged");
  ok("a CTX_OPEN of an (IMSI, RAND) bound to another ctx takes its state "
     "over; the old ctx is then unknown");

  /* Another allowed GGSN cannot take it (RAND is in clear on the radio):
   * refused, and the first GGSN's context keeps working. */
  {
    ggsn g2;
    kf = kup_fetches(mport);
    CHECK(ggsn_connect(&g2, cport, GGSN_2) == 1, "second GGSN handshake");
    open_expect(&g2, 22, m.tbcd, m.rand, GI_STATUS_NOT_AUTHORIZED,
                "another GGSN, the same (IMSI, RAND)");
    n = ms_seal(&m, "via the other GGSN", 18, rec, sizeof(rec));
    ggsn_send(&g2, GI_UPLINK, 40, rec, n); /* no context: unknown_ctx */
    open_expect(&g2, 40, m.tbcd, m.rand, GI_STATUS_NOT_AUTHORIZED,
                "another GGSN, another ctx");
    round_trip(&g, &m, 22, "the first GGSN keeps its context");
    CHECK(log_count(g_sdlog,
                    "ggsn=6600000000000002 ctx=40 imsi=001010000000001 "
                    "result=not_authorized status=0x01 replaced=0 resumed=0 "
                    "kup_ms=0 reason=other_ggsn detail=\"this (IMSI, RAND) "
                    "belongs to GGSN 6600000000000001",
                    NULL, 0) == 1,
          "other_ggsn refusal not logged");
    CHECK(kup_fetches(mport) == kf, "K_UP fetched for another GGSN");
    CHECK(payloads(mport, "unknown_ctx") == 3, "unknown_ctx %lld",
          payloads(mport, "unknown_ctx"));
    ggsn_close(&g2);
  }
  ok("a CTX_OPEN from another allowed GGSN for the (IMSI, RAND) of the "
     "first is refused (0x01, reason=other_ggsn); the first keeps it");

  /* The table (cellular_max_contexts = 4; V0 is held). */
  kf = kup_fetches(mport);
  open_expect(&g, 4, m.tbcd, g_rand[v0 + 1], GI_STATUS_OK, "V1");
  open_expect(&g, 5, m.tbcd, g_rand[v0 + 2], GI_STATUS_OK, "V2");
  open_expect(&g, 6, m.tbcd, g_rand[v0 + 3], GI_STATUS_OK, "V3");
  CHECK(metric(mport, "mtcsd_cellular_contexts") == 4, "gauge %lld",
        metric(mport, "mtcsd_cellular_contexts"));
  open_expect(&g, 7, m.tbcd, g_rand[v0 + 4], GI_STATUS_TOO_MANY, "full");
  ggsn_send(&g, GI_CTX_CLOSE, 6, NULL, 0);
  open_expect(&g, 7, m.tbcd, g_rand[v0 + 4], GI_STATUS_TOO_MANY,
              "full after CTX_CLOSE (closed state is kept)");
  open_expect(&g, 8, m.tbcd, g_rand[v0 + 3], GI_STATUS_OK,
              "re-open of closed state in a full table");
  CHECK(kup_fetches(mport) == kf + 3, "K_UP fetches %lld, expected %lld",
        kup_fetches(mport), kf + 3);
  round_trip(&g, &m, 22, "barrier");
  CHECK(metric(mport, "mtcsd_cellular_contexts") == 4, "gauge %lld",
        metric(mport, "mtcsd_cellular_contexts"));
  CHECK(db_rows(NULL) == 4 && db_rows(g_rand[v0]) == 1 &&
          db_rows(g_rand[v0 + 3]) == 1 && db_rows(g_rand[v0 + 4]) == 0,
        "cellular.db rows: %d", db_rows(NULL));
  ok("cellular_max_contexts: a fifth (IMSI, RAND) gets 0x04, also after a "
     "CTX_CLOSE (its state is kept, not evicted); the closed one re-opens "
     "without a K_UP fetch; cellular.db holds the 4 used (IMSI, RAND)");

  /* A GGSN whose ID is not allowed. */
  {
    int hs = ggsn_connect(&bad, cport, GGSN_BAD);
    if (hs == 1) {
      /* TLS 1.3: the client's handshake ends before the server has seen
       * its certificate; the alert arrives on the first read. */
      uint8_t body[GI_CTX_OPEN_LEN], frame[64];
      mtcsec_ssize fl;
      memcpy(body, m.tbcd, 8);
      memcpy(body + 8, m.rand, 16);
      fl = gi_encode(GI_CTX_OPEN, 1, body, sizeof(body), frame, sizeof(frame));
      (void)SSL_write(bad.ssl, frame, (int)fl);
      CHECK(ggsn_recv(&bad, &f) != 0, "a refused GGSN got a frame");
    }
    ggsn_close(&bad);
    CHECK(wait_log(g_sdlog, "event=gi_refused", 1, 3000) == 0 &&
            log_count(g_sdlog, "ggsn=66000000000000ff reason=not_allowed", NULL,
                      0) == 1,
          "gi_refused not logged");
    CHECK(metric(mport, "mtcsd_cellular_gi_refused_total") == 1, "refused");
  }
  ok("a GGSN certificate whose ID is not in allowed_ggsns is refused "
     "(TLS alert, event=gi_refused)");

  /* The metrics add up. */
  CHECK(opens(mport, "ok") == 8, "opens ok %lld", opens(mport, "ok"));
  CHECK(opens(mport, "too_many_contexts") == 2, "opens too_many");
  CHECK(opens(mport, "not_authorized") == 2, "opens not_authorized %lld",
        opens(mport, "not_authorized"));
  CHECK(opens(mport, "unknown_vector") == 1 && opens(mport, "malformed") == 1,
        "opens unknown_vector, malformed");
  CHECK(kup_fetches(mport) == 5, "K_UP latency histogram %lld",
        kup_fetches(mport));
  CHECK(payloads(mport, "ok") == 13 + BURST_COUNT, "payloads ok %lld",
        payloads(mport, "ok"));
  ok("metrics: context opens by result, payloads by result, K_UP latency");

  /* A malformed frame ends the connection; the states stay. */
  {
    static const uint8_t junk[] = {0x09, 0x00, 0x10, 0, 0, 0, 1};
    ggsn_send_raw(&g, junk, sizeof(junk));
    CHECK(ggsn_recv(&g, &f) != 0, "connection should close");
    CHECK(wait_log(g_sdlog, "reason=malformed_frame contexts_unbound=4", 1,
                   3000) == 0,
          "malformed frame logged");
    ggsn_close(&g);
    sleep_ms(100);
    CHECK(metric(mport, "mtcsd_cellular_contexts") == 4, "contexts %lld",
          metric(mport, "mtcsd_cellular_contexts"));
  }
  ok("a frame longer than 2048 closes the GGSN connection; its contexts end, "
     "their channel state stays");

  /* Restart: the states are erased, cellular.db stays. */
  CHECK(stop_child(&g_sd, SIGTERM) == 0, "mtcsd exit status");
  CHECK(log_count(g_sdlog,
                  "event=cellular_stopped connections=0 contexts_erased=4",
                  NULL, 0) == 1,
        "cellular_stopped contexts_erased=4");
  snprintf(path, sizeof(path), "%s/cellular.db", g_st);
  CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
        "cellular.db mode %o", (unsigned)(sb.st_mode & 0777));
  for (i = 0; i < 4; i++) {
    CHECK(!file_has("cellular.db", g_rand[v0 + i], 16) &&
            !file_has("cellular.db-wal", g_rand[v0 + i], 16),
          "cellular.db holds a raw RAND");
  }
  start_sd(2);
  cport = log_port(g_sdlog, "event=cellular_listening addr=127.0.0.1:");
  mport = log_port(g_sdlog, "event=metrics_listening addr=127.0.0.1:");
  CHECK(cport > 0 && mport > 0, "mtcsd ports");
  CHECK(log_count(g_sdlog, "event=cellular_db_purged", NULL, 0) == 2,
        "cellular_db not opened");
  CHECK(ggsn_connect(&g, cport, GGSN_OK) == 1, "GGSN handshake");
  ok("SIGTERM: states erased; cellular.db (0600, RANDs only as SHA-256) "
     "survives; mtcsd restarted");

  /* Used (IMSI, RAND): 0x06, without asking the home proxy (which still
   * serves them: it would answer 200). */
  open_expect(&g, 1, m.tbcd, g_rand[v0], GI_STATUS_STALE_RAND, "V0 again");
  open_expect(&g, 2, m.tbcd, g_rand[v0 + 3], GI_STATUS_STALE_RAND, "V3 again");
  CHECK(kup_fetches(mport) == 0, "K_UP fetched for a used RAND");
  CHECK(log_count(g_sdlog, "result=stale_rand status=0x06", NULL, 0) == 2,
        "stale_rand not logged");
  ok("after a restart an (IMSI, RAND) used before gets 0x06 (stale RAND: "
     "re-attach), never fresh state");

  /* A new vector works: V4 was refused (0x04) before, so never used. */
  ms_use_vector(&m, v0 + 4);
  open_expect(&g, 3, m.tbcd, m.rand, GI_STATUS_OK, "V4 after restart");
  round_trip(&g, &m, 3, "new vector after restart");
  CHECK(db_rows(g_rand[v0 + 4]) == 1 && db_rows(NULL) == 5, "V4 not recorded");
  ok("after the restart a new vector gets 0x00 and seq 0, and is recorded");

  /* cellular.db locked by someone else: 0x07, nothing kept. */
  w0 = get_vectors(gport); /* W0..W4 */
  db = db_open_test();
  CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
        "lock cellular.db");
  open_expect(&g, 4, m.tbcd, g_rand[w0], GI_STATUS_INTERNAL, "db locked");
  CHECK(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK, "unlock");
  sqlite3_close(db);
  CHECK(db_rows(g_rand[w0]) == 0, "a failed record left a row");
  CHECK(metric(mport, "mtcsd_cellular_contexts") == 1, "gauge %lld",
        metric(mport, "mtcsd_cellular_contexts"));
  CHECK(log_count(g_sdlog, "result=internal status=0x07", NULL, 0) == 1,
        "internal not logged");
  open_expect(&g, 4, m.tbcd, g_rand[w0], GI_STATUS_OK, "W0 after unlock");
  CHECK(kup_fetches(mport) == 3, "K_UP fetches %lld", kup_fetches(mport));
  ok("a RAND that cannot be recorded in cellular.db gets 0x07 and leaves no "
     "state (the same RAND then opens normally)");

  /* Expiry: new contexts live 1 s after this SIGHUP. */
  reload_sd(kport, "cellular_key_lifetime = 1\n", 1);
  ms_use_vector(&m, w0 + 1);
  open_expect(&g, 10, m.tbcd, m.rand, GI_STATUS_OK, "W1");
  round_trip(&g, &m, 10, "before expiry");
  sleep_ms(1500);
  n = ms_seal(&m, "too late", 8, rec, sizeof(rec));
  ggsn_send(&g, GI_UPLINK, 10, rec, n);
  open_expect(&g, 99, badimsi, m.rand, GI_STATUS_MALFORMED, "barrier");
  CHECK(payloads(mport, "expired") == 1, "expired %lld",
        payloads(mport, "expired"));
  CHECK(log_count(g_sdlog, "event=cellular_context_expired", NULL, 0) >= 1,
        "expiry logged");
  kf = kup_fetches(mport);
  open_expect(&g, 11, m.tbcd, m.rand, GI_STATUS_STALE_RAND, "expired W1");
  CHECK(kup_fetches(mport) == kf, "K_UP fetched for an expired RAND");
  CHECK(log_count(g_sdlog, "detail=\"the keys of this RAND expired", NULL, 0) ==
          1,
        "expired re-open not logged");
  ok("after cellular_key_lifetime the keys are erased; a late record is "
     "dropped and counted (expired); a re-open of that RAND gets 0x06");

  /* Only expired state is evicted: V4, W0 (live), W1 (expired), W2. */
  open_expect(&g, 12, m.tbcd, g_rand[w0 + 2], GI_STATUS_OK, "W2");
  open_expect(&g, 13, m.tbcd, g_rand[w0 + 3], GI_STATUS_OK,
              "W3 in a full table with an expired entry");
  open_expect(&g, 11, m.tbcd, g_rand[w0 + 1], GI_STATUS_STALE_RAND,
              "evicted W1");
  CHECK(log_count(g_sdlog,
                  "ctx=11 imsi=001010000000001 result=stale_rand status=0x06 "
                  "replaced=0 resumed=0 kup_ms=0 detail=\"this RAND was used "
                  "before",
                  NULL, 0) == 1,
        "W1 was not evicted");
  open_expect(&g, 30, m.tbcd, g_rand[v0 + 4], GI_STATUS_OK, "V4 kept");
  open_expect(&g, 31, m.tbcd, g_rand[w0], GI_STATUS_OK, "W0 kept");
  CHECK(log_count(g_sdlog,
                  "ctx=30 imsi=001010000000001 result=ok status=0x00 "
                  "replaced=0 resumed=1",
                  NULL, 0) == 1 &&
          log_count(g_sdlog,
                    "ctx=31 imsi=001010000000001 result=ok status=0x00 "
                    "replaced=0 resumed=1",
                    NULL, 0) == 1,
        "unexpired state was evicted");
  ok("a full table evicts only expired state (the oldest); unexpired states "
     "stay and re-open; the evicted RAND gets 0x06 from cellular.db");

  /* An mtcsd identity that mtchpd does not serve: 0x01. */
  sleep_ms(1200); /* W2 and W3 expire: room for what follows */
  snprintf(conf_extra, sizeof(conf_extra),
           "home_proxy_cert = ues/%s.pem\nhome_proxy_key = ues/%s.key\n",
           OTHER_SRV, OTHER_SRV);
  reload_sd(kport, conf_extra, 2);
  open_expect(&g, 14, m.tbcd, r1, GI_STATUS_NOT_AUTHORIZED, "other identity");
  ok("an mtcsd whose MTCsID is not in mtchpd's allowed_servers gets 0x01 "
     "(after SIGHUP with another client certificate)");

  /* The proxy by host name (SNI, name check against its SAN). */
  g_hp_host = "localhost";
  reload_sd(kport, "", 3);
  open_expect(&g, 15, m.tbcd, g_rand[w0 + 4], GI_STATUS_OK, "localhost");
  g_hp_host = "127.0.0.1";
  ok("home_proxy given as a DNS name: the certificate's name is checked "
     "and accepted");

  /* The metrics of the second run add up. */
  CHECK(opens(mport, "ok") == 8, "opens ok %lld", opens(mport, "ok"));
  CHECK(opens(mport, "not_authorized") == 1 &&
          opens(mport, "too_many_contexts") == 0,
        "opens by result");
  CHECK(opens(mport, "stale_rand") == 4 && opens(mport, "internal") == 1,
        "opens stale_rand %lld (4), internal %lld (1)",
        opens(mport, "stale_rand"), opens(mport, "internal"));
  CHECK(kup_fetches(mport) == 8, "K_UP fetches %lld", kup_fetches(mport));
  CHECK(payloads(mport, "ok") == 2 && payloads(mport, "expired") == 1,
        "payloads ok %lld", payloads(mport, "ok"));
  ok("metrics after the restart: opens and K_UP fetches add up");

  /* SIGKILL right after CTX_RESULT 0x00 (W4): the row was committed before
   * the answer, so the restarted mtcsd refuses W4, and V4, whose state was
   * live, too. */
  kill_wait(&g_sd);
  ggsn_close(&g);
  start_sd(3);
  cport = log_port(g_sdlog, "event=cellular_listening addr=127.0.0.1:");
  mport = log_port(g_sdlog, "event=metrics_listening addr=127.0.0.1:");
  CHECK(cport > 0 && mport > 0, "mtcsd ports");
  CHECK(ggsn_connect(&g, cport, GGSN_OK) == 1, "GGSN handshake");
  open_expect(&g, 1, m.tbcd, g_rand[w0 + 4], GI_STATUS_STALE_RAND,
              "W4 after SIGKILL");
  open_expect(&g, 2, m.tbcd, g_rand[v0 + 4], GI_STATUS_STALE_RAND,
              "V4 after SIGKILL");
  CHECK(kup_fetches(mport) == 0, "K_UP fetched for a used RAND");
  CHECK(db_rows(NULL) == 10, "cellular.db rows %d", db_rows(NULL));
  ok("mtcsd killed (SIGKILL) right after an open: the restarted mtcsd "
     "answers 0x06 for it and for a RAND whose state was live");

  /* A proxy certificate from another CA: refused, 0x03. */
  CHECK(sh("'%s' init '%s/other' >/dev/null", g_mtcsec, g_dir) == 0,
        "second init");
  reload_sd(kport, "home_proxy_ca = ../other/ca.pem\n", 4);
  open_expect(&g, 16, m.tbcd, r2, GI_STATUS_HP_FAILED, "foreign CA");
  CHECK(log_count(g_sdlog, "detail=\"TLS with 127.0.0.1", NULL, 0) == 1 &&
          log_count(g_sdlog, "certificate refused", NULL, 0) == 1,
        "the certificate refusal is not logged");
  ok("a home proxy whose certificate does not chain to home_proxy_ca -> "
     "0x03 (logged as a certificate refusal)");

  /* mtchpd down: 0x03. */
  reload_sd(kport, "", 5);
  CHECK(stop_child(&g_hp, SIGTERM) == 0, "mtchpd exit");
  open_expect(&g, 17, m.tbcd, r3, GI_STATUS_HP_FAILED, "mtchpd down");
  CHECK(opens(mport, "home_proxy_failed") == 2 && opens(mport, "ok") == 0 &&
          opens(mport, "stale_rand") == 2 && kup_fetches(mport) == 2,
        "third run: opens and K_UP fetches");
  ok("mtchpd down -> 0x03");

  /* No key in any log; uplinks logged with their length only. */
  CHECK(log_count(g_sdlog, "event=cellular_uplink ", NULL, 0) ==
            13 + BURST_COUNT + 2 &&
          log_count(g_sdlog, "len=17", NULL, 0) >= 1,
        "cellular_uplink lines");
  CHECK(log_count(g_sdlog, "hello from the MS", NULL, 0) == 0,
        "a plaintext reached the log");
  for (i = 0; i < g_nkeys; i++) {
    key_not_in_log("a key (CK, IK, K_UP, UL or DL key)", g_keys[i], 16);
  }
  ok("no key or payload in the logs");

  /* SIGTERM: clean stop. */
  CHECK(stop_child(&g_sd, SIGTERM) == 0, "mtcsd exit status");
  CHECK(log_count(g_sdlog, "event=cellular_stopped", NULL, 0) == 2 &&
          log_count(g_sdlog, "event=stopped status=0", NULL, 0) == 2,
        "stop logged");
  ok("SIGTERM: the cellular service stops, mtcsd exits 0");
  ggsn_close(&g);
  mtcsec_chan_deinit(&m.ch);
  mtcsec_zeroize(&m, sizeof(m));
  mtcsec_zeroize(g_keys, sizeof(g_keys));
  return 0;
}

static const struct log_info test_log_info = {NULL, NULL, 0, 0, NULL, NULL};

int main(int argc, char **argv) {
  int rv;
  if (argc != 4) {
    fprintf(stderr, "usage: test_cellserver MTCSD MTCHPD MTCSEC\n");
    return 2;
  }
  g_mtcsd = argv[1];
  g_mtchpd = argv[2];
  g_mtcsec = argv[3];
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  alarm(170);
  atexit(cleanup);
  log_init(&test_log_info, NULL);
  CHECK(mtcsec_crypto_openssl_new(&g_crypto) == 0, "crypto");
  rv = run();
  mtcsec_crypto_openssl_del(&g_crypto);
  return rv;
}
