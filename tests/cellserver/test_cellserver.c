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
 * Every wait is bounded; an alarm ends everything after 100 s; the
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
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

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
static const char GGSN_BAD[] = "66000000000000ff";
static const char OTHER_SRV[] = "5e000000000000ee"; /* not in allowed_servers */
#define BURST_COUNT 30000

static char g_dir[256], g_st[300];
static char g_sdlog[400], g_hplog[400];
static pid_t g_sd = -1, g_hp = -1;
static const char *g_mtcsd, *g_mtchpd, *g_mtcsec;
static mtcsec_crypto g_crypto;
static const char *g_hp_host = "127.0.0.1"; /* home_proxy's host */

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
} ms;

/* A fresh payload channel for a new context: seq from 0. */
static void ms_chan(ms *m) {
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
           ">/dev/null && '%s' -d '%s' ue add %s >/dev/null",
           g_mtcsec, g_st, GGSN_OK, g_mtcsec, g_st, GGSN_BAD, g_mtcsec, g_st,
           OTHER_SRV) == 0,
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

static void start_sd(void) {
  char conf[400];
  const char *argv[4];
  snprintf(conf, sizeof(conf), "%s/mtcsd.conf", g_st);
  argv[0] = g_mtcsd;
  argv[1] = "-c";
  argv[2] = conf;
  argv[3] = NULL;
  g_sd = spawn(argv, g_sdlog);
  CHECK(wait_log(g_sdlog, "event=cellular_ready", 1, 10000) == 0 &&
          wait_log(g_sdlog, "event=ready ", 1, 10000) == 0,
        "mtcsd did not start");
}

/* SIGHUP with a new configuration; waits for the n-th reload. */
static void reload_sd(int kport, const char *extra, int n) {
  write_mtcsd_conf(kport, extra);
  CHECK(kill(g_sd, SIGHUP) == 0, "SIGHUP");
  CHECK(wait_log(g_sdlog, "event=cellular_reloaded", n, 5000) == 0,
        "cellular service did not reload");
}

/* ----------------------------------------------------------------- run */

static void key_not_in_log(const char *what, const uint8_t *k, size_t n) {
  char hex[65];
  app_format_hex(hex, k, n);
  CHECK(log_count(g_sdlog, hex, NULL, 0) == 0 &&
          log_count(g_hplog, hex, NULL, 0) == 0,
        "%s appears in a log", what);
}

static int run(void) {
  uint8_t raw[4096], rec[512], rec2[512], sid[8], auts[14];
  struct osmo_gsup_message r;
  mtcsec_sqn_verdict v;
  ms m;
  ggsn g, bad;
  gi_frame f;
  int gport, kport, cport, mport, fd, st;
  size_t n;
  char conf_extra[1024];

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
  start_sd();
  cport = log_port(g_sdlog, "event=cellular_listening addr=127.0.0.1:");
  mport = log_port(g_sdlog, "event=metrics_listening addr=127.0.0.1:");
  CHECK(cport > 0 && mport > 0, "mtcsd ports");
  ok("mtchpd and mtcsd (cellular_listen) started on loopback");

  /* The SGSN gets a vector; the MS runs AKA and derives what mtcsd will. */
  memset(&m, 0, sizeof(m));
  CHECK(app_parse_hex(K_HEX, m.k, 16) == 0 &&
          app_parse_hex(OPC_HEX, m.opc, 16) == 0,
        "hex");
  CHECK(mtcsec_sqn_ms_init(&m.sqn, 5) == 0, "sqn");
  fd = gsup_sai_connect(gport);
  CHECK(fd >= 0, "GSUP connect");
  CHECK(gsup_sai(fd, IMSI, &r, raw, sizeof(raw)) == 0 &&
          r.message_type == OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT &&
          r.num_auth_vectors >= 1,
        "Send Auth Info");
  memcpy(m.rand, r.auth_vectors[0].rand, 16);
  CHECK(mtcsec_aka_ms(m.k, m.opc, &m.sqn, m.rand, r.auth_vectors[0].autn,
                      &m.aka, auts, &v) == 0,
        "MS AKA");
  close(fd);
  CHECK(app_parse_id(MTCS_ID, sid) == 0, "id");
  CHECK(mtcsec_kup_derive(&g_crypto, m.aka.ck, m.aka.ik, sid, m.rand, m.kup) ==
          0,
        "K_UP");
  CHECK(mtcsec_imsi_to_tbcd(IMSI, strlen(IMSI), m.tbcd) == 0, "TBCD");
  CHECK(mtcsec_up_keys_derive(&g_crypto, m.kup, m.tbcd, &m.keys) == 0,
        "UL/DL keys");
  ms_chan(&m);
  ok("GSUP Send Auth Info from mtchpd; MS-side AKA, K_UP, UL/DL keys");

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
  n = ms_seal(&m, "first", 5, rec, sizeof(rec));
  ggsn_send(&g, GI_UPLINK, 1, rec, n);
  expect_ack(&g, &m, 1, "first", 5);
  ggsn_send(&g, GI_UPLINK, 1, rec, n); /* the same bytes again */
  round_trip(&g, &m, 1, "second");     /* the next answer is for this one */
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
    /* At least one pause must have lasted while this test was not reading
     * (the kernel's buffers full): a resume after 300 ms or more. */
    FILE *lf = fopen(g_sdlog, "r");
    char line[4096];
    long longest = -1;
    CHECK(lf != NULL, "log");
    while (fgets(line, sizeof(line), lf) != NULL) {
      const char *p = strstr(line, "action=resume paused_ms=");
      if (p != NULL && atol(p + 24) > longest) {
        longest = atol(p + 24);
      }
    }
    fclose(lf);
    CHECK(longest >= 300, "backpressure never held (longest pause %ld ms)",
          longest);
  }
  ok("uplinks sent without reading: mtcsd stops reading at its high-water "
     "mark, resumes, and answers every one in order");

  /* Wrong RAND and malformed IMSI. */
  {
    uint8_t wrong[16], badimsi[8];
    memcpy(wrong, m.rand, 16);
    wrong[3] ^= 0x40;
    st = ctx_open(&g, 2, m.tbcd, wrong);
    CHECK(st == GI_STATUS_UNKNOWN_VECTOR, "wrong RAND: status 0x%02x", st);
    ok("CTX_OPEN with a wrong RAND -> 0x02 (mtchpd said 404)");
    memcpy(badimsi, m.tbcd, 8);
    badimsi[2] = 0xab;
    st = ctx_open(&g, 3, badimsi, m.rand);
    CHECK(st == GI_STATUS_MALFORMED, "bad IMSI: status 0x%02x", st);
    ok("CTX_OPEN with an IMSI that is not TBCD -> 0x05");
  }

  /* The context limit (cellular_max_contexts = 4; ctx 1 is live). */
  CHECK(ctx_open(&g, 4, m.tbcd, m.rand) == GI_STATUS_OK &&
          ctx_open(&g, 5, m.tbcd, m.rand) == GI_STATUS_OK &&
          ctx_open(&g, 6, m.tbcd, m.rand) == GI_STATUS_OK,
        "contexts 4-6");
  CHECK(metric(mport, "mtcsd_cellular_contexts") == 4, "gauge %lld",
        metric(mport, "mtcsd_cellular_contexts"));
  st = ctx_open(&g, 7, m.tbcd, m.rand);
  CHECK(st == GI_STATUS_TOO_MANY, "fifth context: 0x%02x", st);
  ggsn_send(&g, GI_CTX_CLOSE, 6, NULL, 0);
  st = ctx_open(&g, 7, m.tbcd, m.rand);
  CHECK(st == GI_STATUS_OK, "after CTX_CLOSE: 0x%02x", st);
  ggsn_send(&g, GI_CTX_CLOSE, 4, NULL, 0);
  ggsn_send(&g, GI_CTX_CLOSE, 5, NULL, 0);
  ggsn_send(&g, GI_CTX_CLOSE, 7, NULL, 0);
  round_trip(&g, &m, 1, "barrier"); /* the closes are done */
  CHECK(metric(mport, "mtcsd_cellular_contexts") == 1, "gauge %lld",
        metric(mport, "mtcsd_cellular_contexts"));
  ok("cellular_max_contexts: the fifth context gets 0x04; CTX_CLOSE frees "
     "a slot; the gauge follows");

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

  /* Expiry: new contexts live 1 s after this SIGHUP. */
  reload_sd(kport, "cellular_key_lifetime = 1\n", 1);
  CHECK(ctx_open(&g, 10, m.tbcd, m.rand) == GI_STATUS_OK, "ctx 10");
  ms_chan(&m); /* ctx 10 has fresh windows: the MS starts at seq 0 */
  round_trip(&g, &m, 10, "before expiry");
  sleep_ms(1500);
  n = ms_seal(&m, "too late", 8, rec, sizeof(rec));
  ggsn_send(&g, GI_UPLINK, 10, rec, n);
  CHECK(ctx_open(&g, 3, m.tbcd, (const uint8_t *)"0123456789abcdef") ==
          GI_STATUS_UNKNOWN_VECTOR,
        "barrier");
  CHECK(payloads(mport, "expired") == 1, "expired %lld",
        payloads(mport, "expired"));
  CHECK(log_count(g_sdlog, "event=cellular_context_expired", NULL, 0) >= 1,
        "expiry logged");
  ok("after cellular_key_lifetime the keys are erased; a late record is "
     "dropped and counted (expired)");

  /* An mtcsd identity that mtchpd does not serve: 0x01. */
  snprintf(conf_extra, sizeof(conf_extra),
           "home_proxy_cert = ues/%s.pem\nhome_proxy_key = ues/%s.key\n",
           OTHER_SRV, OTHER_SRV);
  reload_sd(kport, conf_extra, 2);
  st = ctx_open(&g, 11, m.tbcd, m.rand);
  CHECK(st == GI_STATUS_NOT_AUTHORIZED, "other identity: 0x%02x", st);
  ok("an mtcsd whose MTCsID is not in mtchpd's allowed_servers gets 0x01 "
     "(after SIGHUP with another client certificate)");

  /* The proxy by host name (SNI, name check against its SAN). */
  g_hp_host = "localhost";
  reload_sd(kport, "", 3);
  st = ctx_open(&g, 12, m.tbcd, m.rand);
  CHECK(st == GI_STATUS_OK, "home_proxy = localhost: 0x%02x", st);
  ggsn_send(&g, GI_CTX_CLOSE, 12, NULL, 0);
  g_hp_host = "127.0.0.1";
  ok("home_proxy given as a DNS name: the certificate's name is checked "
     "and accepted");

  /* A proxy certificate from another CA: refused, 0x03. */
  CHECK(sh("'%s' init '%s/other' >/dev/null", g_mtcsec, g_dir) == 0,
        "second init");
  reload_sd(kport, "home_proxy_ca = ../other/ca.pem\n", 4);
  st = ctx_open(&g, 13, m.tbcd, m.rand);
  CHECK(st == GI_STATUS_HP_FAILED, "foreign CA: 0x%02x", st);
  CHECK(log_count(g_sdlog, "detail=\"TLS with 127.0.0.1", NULL, 0) == 1 &&
          log_count(g_sdlog, "certificate refused", NULL, 0) == 1,
        "the certificate refusal is not logged");
  ok("a home proxy whose certificate does not chain to home_proxy_ca -> "
     "0x03 (logged as a certificate refusal)");

  /* mtchpd down: 0x03. */
  reload_sd(kport, "", 5);
  CHECK(stop_child(&g_hp, SIGTERM) == 0, "mtchpd exit");
  st = ctx_open(&g, 14, m.tbcd, m.rand);
  CHECK(st == GI_STATUS_HP_FAILED, "mtchpd down: 0x%02x", st);
  ok("mtchpd down -> 0x03");

  /* The metrics add up. */
  CHECK(metric(mport, "mtcsd_cellular_context_opens_total{result=\"ok\"}") == 7,
        "opens ok %lld",
        metric(mport, "mtcsd_cellular_context_opens_total{result=\"ok\"}"));
  CHECK(metric(mport, "mtcsd_cellular_context_opens_total{result=\"too_many_"
                      "contexts\"}") == 1,
        "opens too_many");
  CHECK(metric(mport, "mtcsd_cellular_kup_fetch_seconds_count") >= 8,
        "K_UP latency histogram");
  CHECK(payloads(mport, "ok") == 8 + BURST_COUNT, "payloads ok %lld",
        payloads(mport, "ok"));
  ok("metrics: context opens by result, payloads by result, K_UP latency");

  /* A malformed frame ends the connection (and its contexts). */
  {
    static const uint8_t junk[] = {0x09, 0x00, 0x10, 0, 0, 0, 1};
    ggsn_send_raw(&g, junk, sizeof(junk));
    CHECK(ggsn_recv(&g, &f) != 0, "connection should close");
    CHECK(wait_log(g_sdlog, "reason=malformed_frame", 2, 3000) == 0,
          "malformed frame logged");
    ggsn_close(&g);
    sleep_ms(100);
    CHECK(metric(mport, "mtcsd_cellular_contexts") == 0, "contexts left");
  }
  ok("a frame longer than 2048 closes the GGSN connection; its contexts are "
     "erased");

  /* No key in any log; uplinks logged with their length only. */
  CHECK(log_count(g_sdlog, "event=cellular_uplink ", NULL, 0) ==
            8 + BURST_COUNT &&
          log_count(g_sdlog, "len=17", NULL, 0) >= 1,
        "cellular_uplink lines");
  CHECK(log_count(g_sdlog, "hello from the MS", NULL, 0) == 0,
        "a plaintext reached the log");
  key_not_in_log("K_UP", m.kup, 16);
  key_not_in_log("UL key", m.keys.ul_key, 16);
  key_not_in_log("DL key", m.keys.dl_key, 16);
  key_not_in_log("IK", m.aka.ik, 16);
  key_not_in_log("CK", m.aka.ck, 16);
  ok("no key or payload in the logs");

  /* SIGTERM: clean stop. */
  CHECK(stop_child(&g_sd, SIGTERM) == 0, "mtcsd exit status");
  CHECK(log_count(g_sdlog, "event=cellular_stopped", NULL, 0) == 1 &&
          log_count(g_sdlog, "event=stopped status=0", NULL, 0) == 1,
        "stop logged");
  ok("SIGTERM: the cellular service stops, mtcsd exits 0");
  mtcsec_chan_deinit(&m.ch);
  mtcsec_zeroize(&m, sizeof(m));
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
  alarm(100);
  atexit(cleanup);
  log_init(&test_log_info, NULL);
  CHECK(mtcsec_crypto_openssl_new(&g_crypto) == 0, "crypto");
  rv = run();
  mtcsec_crypto_openssl_del(&g_crypto);
  return rv;
}
