/*
 * The cellular agents as real programs on loopback: mtchpd (built-in AuC),
 * `mtcsec sgsn run` and `mtcsec ms run`, with this program playing the
 * GGSN and the MTC server behind it (it derives K_UP from the subscriber's
 * K/OPc and the RAND it finds in the PCO, as mtcsd would get it from the
 * home proxy, and answers each uplink payload with "ack " + payload).
 *
 *   test_cellagents MTCHPD MTCSEC
 *
 * Checks: an integrity-only subscriber attaches (LLC MAC-I), activates its
 * PDP context and gets every payload answered through the SGSN; the SGSN
 * logs ck_received=0 for it and never sees a payload's plaintext; a frame
 * with a bad MAC-I injected at the SGSN's radio port from the MS's address
 * is dropped and counted (event=llc_mac_failure, event=stats); an MS whose
 * SQN_MS is ahead resynchronises with AUTS; a normal subscriber attaches in
 * FCS mode (ck_received=1 at the SGSN, which zeroizes it) and its payloads
 * go through too; an unknown IMSI is rejected; a missing USIM file is exit
 * code 3.
 *
 * Attacks from the radio, through a man-in-the-middle on the MS's radio
 * link (proxy_*: the MS's --sgsn is this program, which forwards to the
 * SGSN and injects): a forged ATTACH_ACCEPT 0x00 before the genuine one,
 * then a forged FCS-only SM reject (the MS keeps integrity and drops both);
 * a forged AUTH_REQUEST (the MS answers MAC failure and attaches with the
 * genuine one); three old challenges replayed (two resynchronisations,
 * the third dropped, then the genuine one).  At the SGSN, from raw sockets:
 * an unauthenticated ATTACH_REQUEST for an attached IMSI under a new TLLI
 * (the attached MS keeps getting its answers; the pending attach expires
 * after 30 s), MAC failures (the challenge is sent again twice, then
 * ATTACH_REJECT), a table full of attached MSs (a pending attach is
 * evicted, then a newcomer gets GMM cause 0x16).  The USIM file carries
 * "integrity_only"; one without it requires integrity.  The GGSN agent
 * refuses an mtcsd certificate of the CA that does not name the --mtcs
 * host.
 * Every wait is bounded; an alarm ends everything after 140 s.
 */
#define _GNU_SOURCE

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
#include <openssl/ssl.h>

#include <mtcsec/cellular.h>
#include <mtcsec/channel.h>
#include <mtcsec/crypto.h>

#include "app.h"
#include "cellsim.h"
#include "gi.h"

static const char K_HEX[] = "465b5ce8b199b49faa5f0a2ee238a6bc";
static const char OPC_HEX[] = "cd63cb71954a9f4e48a5994e37a02baf";
static const char MTCS_ID[] = "5e00000000000001";
static const char IMSI_IO[] = "001010000000011";   /* integrity-only */
static const char IMSI_N[] = "001010000000012";    /* normal */
static const char IMSI_SQN[] = "001010000000013";  /* SQN_MS ahead */
static const char IMSI_NONE[] = "001010000000099"; /* not in hlr.db */

static char g_dir[256], g_hplog[320], g_sglog[320];
static pid_t g_hp = -1, g_sg = -1, g_ms = -1, g_sg2 = -1, g_gg = -1;
static pid_t g_sg3 = -1, g_gg2 = -1;
static int g_ggsn = -1;
static mtcsec_crypto g_crypto;

static void cleanup(void) {
  char cmd[300];
  pid_t *p[7] = {&g_ms, &g_sg, &g_sg2, &g_sg3, &g_gg, &g_gg2, &g_hp};
  size_t i;
  for (i = 0; i < 7; i++) {
    if (*p[i] > 0) {
      kill(*p[i], SIGKILL);
      waitpid(*p[i], NULL, 0);
      *p[i] = -1;
    }
  }
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

static void dump(const char *path) {
  char cmd[400];
  int n = snprintf(cmd, sizeof(cmd), "echo '== %s' >&2; tail -n 30 '%s' >&2",
                   path, path);
  if (n < 0 || (size_t)n >= sizeof(cmd)) {
    fprintf(stderr, "(path too long to show: %s)\n", path);
    return;
  }
  if (system(cmd) != 0) {
    fprintf(stderr, "(no %s)\n", path);
  }
}

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
      dump(g_sglog);                                                           \
      dump(g_hplog);                                                           \
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

static void path(char *out, size_t outlen, const char *name) {
  snprintf(out, outlen, "%s/%s", g_dir, name);
}

static void write_file(const char *name, const char *text, mode_t mode) {
  char p[400];
  int fd;
  path(p, sizeof(p), name);
  fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
  CHECK(fd >= 0, "open %s", p);
  CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write");
  close(fd);
}

/* Number of lines of file holding needle; the last one into line. */
static int file_has(const char *file, const char *needle, char *line,
                    size_t linelen) {
  FILE *f = fopen(file, "r");
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

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int wait_file(const char *file, const char *needle, int count, int ms) {
  int waited;
  for (waited = 0; waited < ms; waited += 20) {
    if (file_has(file, needle, NULL, 0) >= count) {
      return 0;
    }
    sleep_ms(20);
  }
  return -1;
}

static pid_t spawn(const char *const argv[], const char *out, const char *err) {
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    int fo = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int fe = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fo >= 0) {
      dup2(fo, 1);
    }
    if (fe >= 0) {
      dup2(fe, 2);
    }
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  return pid;
}

/* The port after "needle" (e.g. "service=radio addr=127.0.0.1:"). */
static int log_port(const char *file, const char *needle) {
  char line[4096];
  const char *p;
  if (!file_has(file, needle, line, sizeof(line))) {
    return -1;
  }
  p = strstr(line, needle) + strlen(needle);
  return atoi(p);
}

/* ------------------------------------------------ the GGSN + MTC server */

/* One PDP context as mtcsd would hold it: the payload channel under K_UP. */
typedef struct peer {
  int active;
  uint32_t teid, sgsn_teid;
  struct sockaddr_in sgsn;
  char imsi[16];
  mtcsec_chan chan;
  unsigned uplinks;
  int saw_plaintext; /* a record carrying its plaintext in the clear */
} peer;

static peer g_peers[4];
static unsigned g_gpdus;          /* G-PDUs the GGSN received */
static const char *g_refuse_imsi; /* CREATE answered 0xCA for this IMSI */

static int ggsn_open(void) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK(fd >= 0, "socket");
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind");
  CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0, "getsockname");
  g_ggsn = fd;
  return ntohs(sa.sin_port);
}

/* What mtcsd does on CTX_OPEN, with K_UP computed here from K/OPc: the
 * MS must have derived the same keys from its own CK and IK. */
static void peer_keys(peer *p, const uint8_t imsi_tbcd[8],
                      const uint8_t rand[16]) {
  uint8_t k[16], opc[16], amf[2] = {0x80, 0}, sid[8], kup[16];
  mtcsec_milenage_out mo;
  mtcsec_up_keys keys;
  CHECK(app_parse_hex(K_HEX, k, 16) == 0 &&
          app_parse_hex(OPC_HEX, opc, 16) == 0,
        "hex");
  CHECK(app_parse_id(MTCS_ID, sid) == 0, "id");
  CHECK(mtcsec_milenage(k, NULL, opc, rand, 1, amf, &mo) == 0, "milenage");
  CHECK(mtcsec_kup_derive(&g_crypto, mo.f3, mo.f4, sid, rand, kup) == 0,
        "K_UP");
  CHECK(mtcsec_up_keys_derive(&g_crypto, kup, imsi_tbcd, &keys) == 0, "keys");
  CHECK(mtcsec_chan_init_keys(&p->chan, &g_crypto, MTCSEC_SUITE_CMAC_AES128,
                              keys.dl_key, keys.dl_iv, keys.ul_key, keys.ul_iv,
                              0, UINT64_MAX) == 0,
        "channel");
  mtcsec_zeroize(&mo, sizeof(mo));
  mtcsec_zeroize(&keys, sizeof(keys));
  mtcsec_zeroize(kup, sizeof(kup));
}

static void ggsn_send(const struct sockaddr_in *to, const uint8_t *p,
                      size_t n) {
  CHECK(sendto(g_ggsn, p, n, 0, (const struct sockaddr *)to, sizeof(*to)) ==
          (ssize_t)n,
        "sendto");
}

static void ggsn_create(const cellsim_gtpc *g, const struct sockaddr_in *from) {
  cellsim_gtpc r;
  mtcsec_pco pco;
  uint8_t rand[16], plmn[3], buf[64];
  peer *p = NULL;
  size_t i;
  mtcsec_ssize n;

  memset(&r, 0, sizeof(r));
  r.type = CELLSIM_CREATE_PDP_RESPONSE;
  r.seq = g->seq;
  for (i = 0; i < 4; i++) {
    if (g_peers[i].active && g_peers[i].sgsn_teid == g->teid) {
      p = &g_peers[i]; /* a resent request */
      break;
    }
  }
  if (p == NULL) {
    CHECK(mtcsec_pco_decode(&pco, MTCSEC_PCO_BARE, g->pco, g->pcolen) > 0,
          "PCO from the MS, copied unchanged, decodes");
    CHECK(mtcsec_pco_find_rand(&pco, NULL, plmn, rand) == 0,
          "RAND in container 0xff00");
    CHECK(plmn[0] == 0x00 && plmn[1] == 0xf1 && plmn[2] == 0x10,
          "PLMN 001 01 in the container");
    for (i = 0; i < 4 && g_peers[i].active; i++) {
    }
    CHECK(i < 4, "too many contexts");
    p = &g_peers[i];
    memset(p, 0, sizeof(*p));
    CHECK(mtcsec_imsi_from_tbcd(g->imsi, p->imsi, sizeof(p->imsi)) > 0, "IMSI");
    if (g_refuse_imsi != NULL && strcmp(p->imsi, g_refuse_imsi) == 0) {
      r.cause = CELLSIM_GTP_USER_AUTH_FAILED;
      n = cellsim_gtpc_encode(&r, buf, sizeof(buf));
      ggsn_send(from, buf, (size_t)n);
      return;
    }
    p->active = 1;
    p->teid = 0x70000000u + (uint32_t)i;
    p->sgsn_teid = g->teid;
    p->sgsn = *from;
    peer_keys(p, g->imsi, rand);
  }
  r.cause = CELLSIM_GTP_ACCEPTED;
  r.teid = p->teid;
  n = cellsim_gtpc_encode(&r, buf, sizeof(buf));
  CHECK(n > 0, "encode");
  ggsn_send(from, buf, (size_t)n);
}

static void ggsn_gpdu(uint32_t teid, const uint8_t *rec, size_t len) {
  uint8_t pt[1600], answer[300], out[400], gpdu[500];
  mtcsec_ssize n, m;
  peer *p = NULL;
  size_t i, al;
  for (i = 0; i < 4; i++) {
    if (g_peers[i].active && g_peers[i].teid == teid) {
      p = &g_peers[i];
    }
  }
  CHECK(p != NULL, "G-PDU for an unknown TEID %08x", teid);
  n = mtcsec_chan_open(&p->chan, pt, sizeof(pt), rec, len, app_now_ms());
  CHECK(n >= 0, "uplink record from %s does not open: %s", p->imsi,
        mtcsec_strerror((int)n));
  if (n > 0 && memmem(rec, len, pt, (size_t)n) != NULL) {
    p->saw_plaintext = 1;
  }
  p->uplinks++;
  al = (size_t)n > 255 ? 255 : (size_t)n;
  memcpy(answer, "ack ", 4);
  memcpy(answer + 4, pt, al);
  m =
    mtcsec_chan_seal(&p->chan, out, sizeof(out), answer, 4 + al, app_now_ms());
  CHECK(m > 0, "seal");
  n = cellsim_gtpu_encode(p->sgsn_teid, out, (size_t)m, gpdu, sizeof(gpdu));
  CHECK(n > 0, "G-PDU");
  ggsn_send(&p->sgsn, gpdu, (size_t)n);
}

/* Serves the GGSN socket for up to ms milliseconds. */
static void ggsn_serve(int ms) {
  uint8_t buf[4096];
  struct pollfd pfd;
  struct sockaddr_in from;
  socklen_t fl;
  ssize_t n;
  cellsim_gtpc g;
  const uint8_t *tpdu;
  size_t tlen;
  uint32_t teid;

  pfd.fd = g_ggsn;
  pfd.events = POLLIN;
  if (poll(&pfd, 1, ms) <= 0) {
    return;
  }
  fl = sizeof(from);
  n = recvfrom(g_ggsn, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
  if (n <= 0) {
    return;
  }
  if (buf[0] == CELLSIM_GTPC_MAGIC) {
    CHECK(cellsim_gtpc_decode(&g, buf, (size_t)n) == 0, "GTP-C from the SGSN");
    if (g.type == CELLSIM_CREATE_PDP_REQUEST) {
      ggsn_create(&g, &from);
    } else if (g.type == CELLSIM_DELETE_PDP_REQUEST) {
      for (n = 0; n < 4; n++) {
        if (g_peers[n].active && g_peers[n].teid == g.teid) {
          g_peers[n].active = 0;
        }
      }
    }
    return;
  }
  CHECK(cellsim_gtpu_decode(buf, (size_t)n, &teid, &tpdu, &tlen) == 0,
        "G-PDU from the SGSN");
  g_gpdus++;
  ggsn_gpdu(teid, tpdu, tlen);
}

/* ----------------------------------------- mtcsd's Gi side, for the GGSN */

static SSL *g_gi;
static int g_gi_fd = -1;
static uint8_t g_gi_in[4 * GI_FRAME_MAX];
static size_t g_gi_len;
static uint8_t g_gi_status; /* CTX_RESULT status to answer with */
static unsigned g_gi_opens, g_gi_closes, g_gi_uplinks;

static void gi_send(uint8_t type, uint32_t ctx, const uint8_t *body,
                    size_t len) {
  uint8_t f[GI_FRAME_MAX];
  mtcsec_ssize n = gi_encode(type, ctx, body, len, f, sizeof(f));
  size_t w = 0;
  CHECK(n > 0, "gi_encode");
  while (w < (size_t)n) {
    size_t k = 0;
    int rv = SSL_write_ex(g_gi, f + w, (size_t)n - w, &k);
    if (rv != 1) {
      int e = SSL_get_error(g_gi, rv);
      CHECK(e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ, "Gi write");
      sleep_ms(1);
      continue;
    }
    w += k;
  }
}

static void gi_frame_in(const gi_frame *f) {
  peer *p = NULL;
  size_t i;
  for (i = 0; i < 4; i++) {
    if (g_peers[i].active && g_peers[i].teid == f->ctx) {
      p = &g_peers[i];
    }
  }
  if (f->type == GI_CTX_OPEN) {
    uint8_t st = g_gi_status;
    g_gi_opens++;
    if (p == NULL) {
      for (i = 0; i < 4 && g_peers[i].active; i++) {
      }
      CHECK(i < 4, "too many contexts");
      p = &g_peers[i];
    }
    memset(p, 0, sizeof(*p));
    CHECK(mtcsec_imsi_from_tbcd(f->body, p->imsi, sizeof(p->imsi)) > 0,
          "CTX_OPEN IMSI");
    if (st == GI_STATUS_OK) {
      p->active = 1;
      p->teid = f->ctx;
      peer_keys(p, f->body, f->body + 8); /* the RAND the MS's PCO held */
    }
    gi_send(GI_CTX_RESULT, f->ctx, &st, 1);
  } else if (f->type == GI_CTX_CLOSE) {
    g_gi_closes++;
    if (p != NULL) {
      mtcsec_chan_deinit(&p->chan);
      p->active = 0;
    }
  } else if (f->type == GI_UPLINK) {
    uint8_t pt[1600], answer[300], out[400];
    mtcsec_ssize n, m;
    size_t al;
    CHECK(p != NULL, "UPLINK for an unknown ctx");
    g_gi_uplinks++;
    n = mtcsec_chan_open(&p->chan, pt, sizeof(pt), f->body, f->bodylen,
                         app_now_ms());
    CHECK(n >= 0, "UPLINK record does not open: %s", mtcsec_strerror((int)n));
    al = (size_t)n > 255 ? 255 : (size_t)n;
    memcpy(answer, "ack ", 4);
    memcpy(answer + 4, pt, al);
    m = mtcsec_chan_seal(&p->chan, out, sizeof(out), answer, 4 + al,
                         app_now_ms());
    CHECK(m > 0, "seal");
    gi_send(GI_DOWNLINK, f->ctx, out, (size_t)m);
  } else {
    CHECK(0, "unexpected Gi frame %s", gi_type_name(f->type));
  }
}

static void gi_serve(int ms) {
  struct pollfd pfd;
  size_t off = 0;
  pfd.fd = g_gi_fd;
  pfd.events = POLLIN;
  if (SSL_pending(g_gi) == 0 && poll(&pfd, 1, ms) <= 0) {
    return;
  }
  for (;;) {
    size_t got = 0;
    int rv =
      SSL_read_ex(g_gi, g_gi_in + g_gi_len, sizeof(g_gi_in) - g_gi_len, &got);
    if (rv != 1) {
      break;
    }
    g_gi_len += got;
  }
  ERR_clear_error();
  for (;;) {
    gi_frame f;
    mtcsec_ssize n = gi_decode(&f, g_gi_in + off, g_gi_len - off);
    CHECK(n >= 0, "malformed Gi frame from the GGSN");
    if (n == 0) {
      break;
    }
    gi_frame_in(&f);
    off += (size_t)n;
  }
  memmove(g_gi_in, g_gi_in + off, g_gi_len - off);
  g_gi_len -= off;
}

/* ----------------------------------------------------------- the agents */

/* What the test serves while an MS runs: the GGSN socket, or mtcsd's Gi
 * (or the radio proxy and the GGSN socket); g_hook runs between. */
static void (*g_serve)(int ms) = ggsn_serve;
static void (*g_hook)(void);

/* ------------------------------------------ an attacker on the radio */

/* What the man in the middle does to the next attach. */
enum {
  PX_FORWARD = 0,  /* forward both ways, capture challenges */
  PX_FORGE_ACCEPT, /* ATTACH_ACCEPT 0x00 before the genuine one, then a
                      forged FCS-only SM reject before the genuine answer */
  PX_FORGE_AUTH,   /* an AUTH_REQUEST with a made-up AUTN first */
  PX_REPLAY        /* PX_REPLAYED captured (used) challenges first */
};

#define PX_MAX_CAPTURED 8
#define PX_REPLAYED 3 /* one more than the MS's resynchronisation budget */

typedef struct proxy {
  int ms_fd, sg_fd; /* toward the MS (its --sgsn), toward the SGSN */
  int port;         /* ms_fd's port */
  struct sockaddr_in ms, sgsn;
  int have_ms;
  int mode, injected, sm_injected;
  uint8_t held[64]; /* an ATTACH_REQUEST held back (the attacker is first) */
  size_t heldlen;
  long long hold_until;
  /* Challenges the MS answered with AUTH_RESPONSE (used: stale now). */
  uint8_t rand[PX_MAX_CAPTURED][16], autn[PX_MAX_CAPTURED][16];
  size_t ncaptured;
  uint8_t last_rand[16], last_autn[16]; /* the SGSN's last challenge */
  int have_last;
  unsigned forged; /* messages injected toward the MS */
} proxy;

static proxy g_px;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int udp_loopback(int *port) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK(fd >= 0, "socket");
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind");
  CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0, "getsockname");
  if (port != NULL) {
    *port = ntohs(sa.sin_port);
  }
  return fd;
}

static void proxy_open(int sgsn_port) {
  memset(&g_px, 0, sizeof(g_px));
  g_px.ms_fd = udp_loopback(&g_px.port);
  g_px.sg_fd = udp_loopback(NULL);
  g_px.sgsn.sin_family = AF_INET;
  g_px.sgsn.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  g_px.sgsn.sin_port = htons((uint16_t)sgsn_port);
}

/* A new attach through the proxy: mode, nothing injected yet. */
static void proxy_arm(int mode) {
  g_px.mode = mode;
  g_px.injected = g_px.sm_injected = 0;
  g_px.have_ms = 0;
  g_px.heldlen = 0;
  g_px.forged = 0;
  g_px.have_last = 0;
}

static void proxy_to_ms(const cellsim_radio *r) {
  uint8_t buf[128];
  mtcsec_ssize n = cellsim_radio_encode(r, buf, sizeof(buf));
  CHECK(n > 0 && g_px.have_ms, "forge");
  CHECK(sendto(g_px.ms_fd, buf, (size_t)n, 0, (struct sockaddr *)&g_px.ms,
               sizeof(g_px.ms)) == n,
        "sendto MS");
  g_px.forged++;
}

static void proxy_to_sgsn(const uint8_t *p, size_t n) {
  CHECK(sendto(g_px.sg_fd, p, n, 0, (struct sockaddr *)&g_px.sgsn,
               sizeof(g_px.sgsn)) == (ssize_t)n,
        "sendto SGSN");
}

/* A SAPI-1 ACTIVATE_PDP_CONTEXT_REJECT (cause 0x1d) in an FCS frame with
 * COUNT 0: what a downgraded MS would take from anyone. */
static void proxy_forge_sm_reject(uint32_t tlli) {
  cellsim_llc llc;
  cellsim_sm sm;
  cellsim_radio r;
  uint8_t smb[16], frame[64];
  mtcsec_ssize sl, fl;
  memset(&llc, 0, sizeof(llc));
  memset(&sm, 0, sizeof(sm));
  sm.ti = 0x08;
  sm.type = CELLSIM_SM_ACTIVATE_REJECT;
  sm.nsapi = 5;
  sm.cause = CELLSIM_SM_USER_AUTH_FAILED;
  sl = cellsim_sm_encode(&sm, smb, sizeof(smb));
  CHECK(sl > 0, "SM encode");
  fl = cellsim_llc_seal(&llc, &g_crypto, NULL, MTCSEC_3GPP_DOWNLINK,
                        MTCSEC_LLC_SAPI_LLGMM, smb, (size_t)sl, frame,
                        sizeof(frame));
  CHECK(fl > 0, "FCS frame");
  memset(&r, 0, sizeof(r));
  r.type = CELLSIM_LLC;
  r.tlli = tlli;
  r.llc = frame;
  r.llclen = (size_t)fl;
  proxy_to_ms(&r);
}

static void proxy_from_ms(const uint8_t *buf, size_t n,
                          const struct sockaddr_in *from) {
  cellsim_radio r, f;
  uint8_t sapi = 0;
  uint16_t nu = 0;
  size_t i;
  g_px.ms = *from;
  g_px.have_ms = 1;
  if (cellsim_radio_decode(&r, buf, n) != 0) {
    proxy_to_sgsn(buf, n);
    return;
  }
  memset(&f, 0, sizeof(f));
  f.tlli = r.tlli;
  if (r.type == CELLSIM_ATTACH_REQUEST && !g_px.injected &&
      (g_px.mode == PX_FORGE_AUTH || g_px.mode == PX_REPLAY)) {
    g_px.injected = 1;
    f.type = CELLSIM_AUTH_REQUEST;
    if (g_px.mode == PX_FORGE_AUTH) {
      memset(f.rand, 0xa5, sizeof(f.rand));
      memset(f.autn, 0x5a, sizeof(f.autn)); /* MAC-A cannot verify */
      proxy_to_ms(&f);
    } else {
      for (i = 0; i < PX_REPLAYED && i < g_px.ncaptured; i++) {
        memcpy(f.rand, g_px.rand[i], 16);
        memcpy(f.autn, g_px.autn[i], 16);
        proxy_to_ms(&f);
      }
    }
    /* The SGSN hears the MS after the attacker has spoken: the MS's
     * answers to the injected challenges meet no context there. */
    CHECK(n <= sizeof(g_px.held), "held");
    memcpy(g_px.held, buf, n);
    g_px.heldlen = n;
    g_px.hold_until = now_ms() + 300;
    return;
  }
  if (r.type == CELLSIM_AUTH_RESPONSE && g_px.have_last) {
    for (i = 0; i < g_px.ncaptured; i++) {
      if (memcmp(g_px.rand[i], g_px.last_rand, 16) == 0) {
        break;
      }
    }
    if (i == g_px.ncaptured && i < PX_MAX_CAPTURED) {
      memcpy(g_px.rand[i], g_px.last_rand, 16);
      memcpy(g_px.autn[i], g_px.last_autn, 16);
      g_px.ncaptured++;
    }
  }
  if (r.type == CELLSIM_AUTH_RESPONSE && !g_px.injected &&
      g_px.mode == PX_FORGE_ACCEPT) {
    g_px.injected = 1;
    f.type = CELLSIM_ATTACH_ACCEPT;
    f.flags = 0x00; /* "no integrity": FCS mode */
    proxy_to_ms(&f);
  }
  if (r.type == CELLSIM_LLC && g_px.mode == PX_FORGE_ACCEPT &&
      !g_px.sm_injected && cellsim_llc_peek(r.llc, r.llclen, &sapi, &nu) == 0 &&
      sapi == MTCSEC_LLC_SAPI_LLGMM) {
    g_px.sm_injected = 1;
    proxy_forge_sm_reject(r.tlli);
  }
  proxy_to_sgsn(buf, n);
}

static void proxy_from_sgsn(const uint8_t *buf, size_t n) {
  cellsim_radio r;
  if (cellsim_radio_decode(&r, buf, n) == 0 && r.type == CELLSIM_AUTH_REQUEST) {
    memcpy(g_px.last_rand, r.rand, 16);
    memcpy(g_px.last_autn, r.autn, 16);
    g_px.have_last = 1;
  }
  if (g_px.have_ms) {
    CHECK(sendto(g_px.ms_fd, buf, n, 0, (struct sockaddr *)&g_px.ms,
                 sizeof(g_px.ms)) == (ssize_t)n,
          "sendto MS");
  }
}

/* Serves the proxy's two sockets and the GGSN socket for up to ms. */
static void proxy_serve(int ms) {
  struct pollfd p[3];
  uint8_t buf[4096];
  struct sockaddr_in from;
  socklen_t fl;
  ssize_t n;
  if (g_px.heldlen > 0 && now_ms() >= g_px.hold_until) {
    proxy_to_sgsn(g_px.held, g_px.heldlen);
    g_px.heldlen = 0;
  }
  p[0].fd = g_px.ms_fd;
  p[1].fd = g_px.sg_fd;
  p[2].fd = g_ggsn;
  p[0].events = p[1].events = p[2].events = POLLIN;
  if (poll(p, 3, ms) <= 0) {
    return;
  }
  for (;;) {
    fl = sizeof(from);
    n = recvfrom(g_px.ms_fd, buf, sizeof(buf), MSG_DONTWAIT,
                 (struct sockaddr *)&from, &fl);
    if (n <= 0) {
      break;
    }
    proxy_from_ms(buf, (size_t)n, &from);
  }
  for (;;) {
    n = recvfrom(g_px.sg_fd, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL);
    if (n <= 0) {
      break;
    }
    proxy_from_sgsn(buf, (size_t)n);
  }
  if (p[2].revents & POLLIN) {
    ggsn_serve(0);
  }
}

/* ------------------------------------- a raw "MS" at the SGSN's port */

static void raw_send(int fd, int port, const cellsim_radio *r) {
  uint8_t buf[128];
  struct sockaddr_in to;
  mtcsec_ssize n = cellsim_radio_encode(r, buf, sizeof(buf));
  CHECK(n > 0, "encode");
  memset(&to, 0, sizeof(to));
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons((uint16_t)port);
  CHECK(sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&to, sizeof(to)) == n,
        "sendto");
}

static void raw_attach(int fd, int port, uint32_t tlli, const char *imsi) {
  cellsim_radio r;
  memset(&r, 0, sizeof(r));
  r.type = CELLSIM_ATTACH_REQUEST;
  r.tlli = tlli;
  CHECK(mtcsec_imsi_to_tbcd(imsi, strlen(imsi), r.imsi) == 0, "TBCD");
  raw_send(fd, port, &r);
}

/* The next radio message for fd within ms (the GGSN socket served
 * meanwhile); 0, or -1 when none came. */
static int raw_recv(int fd, cellsim_radio *r, uint8_t *buf, size_t buflen,
                    int ms) {
  long long end = now_ms() + ms;
  while (now_ms() < end) {
    struct pollfd p;
    ssize_t n;
    p.fd = fd;
    p.events = POLLIN;
    if (poll(&p, 1, 10) == 1) {
      n = recv(fd, buf, buflen, 0);
      CHECK(n > 0 && cellsim_radio_decode(r, buf, (size_t)n) == 0,
            "a radio message from the SGSN");
      return 0;
    }
    ggsn_serve(0);
  }
  return -1;
}

/* Runs `mtcsec ms run` with args (NULL-terminated), serving g_serve while
 * it runs; returns its exit code.  Its stdout/stderr go to NAME.out/.log. */
static int run_ms(const char *mtcsec, const char *name, const char *usim,
                  int radio_port, const char *const *extra) {
  char out[400], log[400], usim_path[400], sgsn[64];
  const char *argv[40];
  int status = -1, i, n = 0, waited;
  snprintf(out, sizeof(out), "%s/%s.out", g_dir, name);
  snprintf(log, sizeof(log), "%s/%s.log", g_dir, name);
  path(usim_path, sizeof(usim_path), usim);
  snprintf(sgsn, sizeof(sgsn), "127.0.0.1:%d", radio_port);
  argv[n++] = mtcsec;
  argv[n++] = "ms";
  argv[n++] = "run";
  argv[n++] = "--usim";
  argv[n++] = usim_path;
  argv[n++] = "--sgsn";
  argv[n++] = sgsn;
  argv[n++] = "--listen";
  argv[n++] = "127.0.0.1:0";
  argv[n++] = "--log-level";
  argv[n++] = "debug";
  argv[n++] = "--timeout";
  argv[n++] = "1000";
  argv[n++] = "--trace";
  for (i = 0; extra != NULL && extra[i] != NULL; i++) {
    argv[n++] = extra[i];
  }
  argv[n] = NULL;
  g_ms = spawn(argv, out, log);
  for (waited = 0; waited < 30000; waited += 10) {
    if (waitpid(g_ms, &status, WNOHANG) == g_ms) {
      g_ms = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }
    g_serve(10);
    if (g_hook != NULL) {
      g_hook();
    }
  }
  CHECK(0, "%s did not finish", name);
  return -1;
}

/* The hook of the "unauthenticated ATTACH_REQUEST" check: once the MS has
 * its first answer, an ATTACH_REQUEST with its IMSI under another TLLI. */
static char g_hook_out[400];
static int g_hook_fd = -1, g_hook_port, g_hook_done;
static long long g_pending_since; /* the attach that must expire */

static void hook_forged_attach(void) {
  if (!g_hook_done && file_has(g_hook_out, "downlink: ack one", NULL, 0)) {
    raw_attach(g_hook_fd, g_hook_port, 0xc0ffee01u, IMSI_IO);
    g_hook_done = 1;
  }
}

static void sub_add(const char *mtcsec, const char *imsi, const char *usim,
                    int io) {
  CHECK(sh("'%s' -d '%s' sub add %s --k %s --opc %s %s --usim '%s/%s' "
           "--mtcs-id %s --plmn 00101 >/dev/null",
           mtcsec, g_dir, imsi, K_HEX, OPC_HEX, io ? "--integrity-only" : "",
           g_dir, usim, MTCS_ID) == 0,
        "sub add %s", imsi);
}

int main(int argc, char **argv) {
  const char *mtchpd, *mtcsec;
  char p[400], q[400], line[4096], gsup[64], ggsn[64], tlli[16] = "";
  const char *hp_argv[4], *sg_argv[16];
  int gport, ggport, rport, rv, i;
  struct stat sb;

  if (argc != 3) {
    fprintf(stderr, "usage: test_cellagents MTCHPD MTCSEC\n");
    return 2;
  }
  mtchpd = argv[1];
  mtcsec = argv[2];
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  alarm(140);
  atexit(cleanup);
  CHECK(mtcsec_crypto_openssl_new(&g_crypto) == 0, "crypto");

  snprintf(g_dir, sizeof(g_dir), "%s/cellagents-XXXXXX",
           getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
  CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
  path(g_hplog, sizeof(g_hplog), "mtchpd.log");
  path(g_sglog, sizeof(g_sglog), "sgsn.log");
  {
    uint8_t r[32];
    char kek[65];
    FILE *f = fopen("/dev/urandom", "rb");
    CHECK(f != NULL && fread(r, 1, sizeof(r), f) == sizeof(r), "urandom");
    fclose(f);
    app_format_hex(kek, r, sizeof(r));
    write_file("kek", kek, 0600);
  }
  write_file("mtchpd.conf",
             "gsup_listen = 127.0.0.1:0\nkup_listen =\nlog_level = debug\n",
             0644);

  /* ------------------------------------------------ provisioning */
  sub_add(mtcsec, IMSI_IO, "io.json", 1);
  sub_add(mtcsec, IMSI_N, "normal.json", 0);
  sub_add(mtcsec, IMSI_SQN, "sqn.json", 1);
  path(p, sizeof(p), "io.json");
  CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600, "USIM mode 0600");
  CHECK(file_has(p, K_HEX, NULL, 0) && file_has(p, OPC_HEX, NULL, 0) &&
          file_has(p, "\"mtcs_id\":\t\"5e00000000000001\"", NULL, 0) &&
          file_has(p, "\"plmn\":\t\"00101\"", NULL, 0) &&
          file_has(p, IMSI_IO, NULL, 0),
        "USIM content");
  CHECK(sh("'%s' -d '%s' sub add 001010000000014 --k %s --opc %s --usim "
           "'%s/io.json' --mtcs-id %s 2>/dev/null",
           mtcsec, g_dir, K_HEX, OPC_HEX, g_dir, MTCS_ID) != 0,
        "an existing USIM file is not overwritten");
  CHECK(sh("'%s' -d '%s' sub add 001010000000015 --k %s --opc %s --mtcs-id "
           "%s 2>/dev/null",
           mtcsec, g_dir, K_HEX, OPC_HEX, MTCS_ID) == 2 * 256,
        "--mtcs-id without --usim is a usage error");
  snprintf(line, sizeof(line),
           "{\"imsi\": \"%s\", \"k\": \"%s\", \"opc\": \"%s\", \"amf\": "
           "\"8000\", \"plmn\": \"00101\", \"mtcs_id\": \"%s\"}\n",
           IMSI_NONE, K_HEX, OPC_HEX, MTCS_ID);
  write_file("none.json", line, 0600);
  CHECK(file_has(p, "\"integrity_only\":\ttrue", NULL, 0) == 1, "policy");
  path(q, sizeof(q), "normal.json");
  CHECK(file_has(q, "\"integrity_only\":\tfalse", NULL, 0) == 1, "policy");
  /* A USIM file from before "integrity_only": integrity required. */
  snprintf(line, sizeof(line),
           "{\"imsi\": \"%s\", \"k\": \"%s\", \"opc\": \"%s\", \"amf\": "
           "\"8000\", \"plmn\": \"00101\", \"mtcs_id\": \"%s\"}\n",
           IMSI_N, K_HEX, OPC_HEX, MTCS_ID);
  write_file("normal-old.json", line, 0600);
  ok("mtcsec sub add --usim writes the USIM file (0600, with the policy "
     "\"integrity_only\"), never over one");

  /* ------------------------------------------------ the network */
  path(p, sizeof(p), "mtchpd.conf");
  hp_argv[0] = mtchpd;
  hp_argv[1] = "-c";
  hp_argv[2] = p;
  hp_argv[3] = NULL;
  g_hp = spawn(hp_argv, g_hplog, g_hplog);
  CHECK(wait_file(g_hplog, "event=ready", 1, 10000) == 0, "mtchpd started");
  gport = log_port(g_hplog, "service=gsup addr=127.0.0.1:");
  CHECK(gport > 0, "gsup port");
  ggport = ggsn_open();
  snprintf(gsup, sizeof(gsup), "127.0.0.1:%d", gport);
  snprintf(ggsn, sizeof(ggsn), "127.0.0.1:%d", ggport);
  path(q, sizeof(q), "sgsn.out");
  i = 0;
  sg_argv[i++] = mtcsec;
  sg_argv[i++] = "sgsn";
  sg_argv[i++] = "run";
  sg_argv[i++] = "--listen";
  sg_argv[i++] = "127.0.0.1:0";
  sg_argv[i++] = "--hlr";
  sg_argv[i++] = gsup;
  sg_argv[i++] = "--ggsn";
  sg_argv[i++] = ggsn;
  sg_argv[i++] = "--log-level";
  sg_argv[i++] = "debug";
  sg_argv[i++] = "--trace";
  sg_argv[i] = NULL;
  g_sg = spawn(sg_argv, q, g_sglog);
  CHECK(wait_file(g_sglog, "event=hlr_ready", 1, 10000) == 0,
        "SGSN connected to the home proxy (IPA identity exchange)");
  rport = log_port(g_sglog, "service=radio addr=127.0.0.1:");
  CHECK(rport > 0, "radio port");
  ok("mtchpd, mtcsec sgsn run (IPA ID_GET/ID_RESP/ID_ACK) on loopback");

  /* ------------------------------------ integrity-only, full story */
  {
    const char *extra[] = {"--send",     "hello", "--send", "world",
                           "--interval", "0",     NULL};
    rv = run_ms(mtcsec, "ms-io", "io.json", rport, extra);
    path(p, sizeof(p), "ms-io.out");
    path(q, sizeof(q), "ms-io.log");
    if (rv != 0) {
      dump(p);
      dump(q);
    }
    CHECK(rv == 0, "ms run exit %d", rv);
    CHECK(file_has(p, "LLC MAC-I (integrity)", NULL, 0) == 1, "MAC-I mode");
    CHECK(file_has(p, "downlink: ack hello", NULL, 0) == 1 &&
            file_has(p, "downlink: ack world", NULL, 0) == 1 &&
            file_has(p, "2/2 payloads answered", NULL, 0) == 1,
          "both payloads answered");
    snprintf(line, sizeof(line), "event=sai tlli=");
    CHECK(file_has(g_sglog, "ck_received=0 kc_received=0 policy=integrity",
                   line, sizeof(line)) == 1 &&
            strstr(line, IMSI_IO) != NULL,
          "the SGSN never received CK (or Kc) for the integrity-only "
          "subscriber");
    CHECK(g_peers[0].uplinks == 2 && !g_peers[0].saw_plaintext,
          "two uplink records, ciphertext only");
    CHECK(!file_has(g_sglog, "hello", NULL, 0) &&
            !file_has(g_sglog, K_HEX, NULL, 0),
          "no plaintext or key in the SGSN's log");
    path(p, sizeof(p), "io.state");
    CHECK(file_has(p, "\"sqn_ms\": [", NULL, 0) == 1, "state file written");
    ok("integrity-only: attach (AKA), PDP context with RAND in the PCO, "
       "payloads in MAC-I frames answered end to end");
    ok("SGSN log: ck_received=0; it relays records it cannot open");
  }

  /* ----------------------------------------- bad MAC-I at the SGSN */
  {
    const char *extra[] = {"--attach-only", NULL};
    uint8_t frame[64], dgram[80];
    cellsim_radio r;
    struct sockaddr_in sa, to;
    int fd, lport;
    unsigned long t;
    const char *s;
    mtcsec_ssize n;
    unsigned gpdus = g_gpdus;

    rv = run_ms(mtcsec, "ms-inject", "io.json", rport, extra);
    CHECK(rv == 0, "attach-only exit %d", rv);
    path(q, sizeof(q), "ms-inject.log");
    CHECK(file_has(q, "event=attached", line, sizeof(line)) == 1, "attached");
    s = strstr(line, "tlli=");
    CHECK(s != NULL && sscanf(s, "tlli=%8s", tlli) == 1, "TLLI");
    s = strstr(line, "local=127.0.0.1:");
    CHECK(s != NULL, "local address");
    lport = atoi(s + strlen("local=127.0.0.1:"));
    t = strtoul(tlli, NULL, 16);
    /* A SAPI-3 UI frame whose MAC-I is made up, sent from the MS's own
     * address (the SGSN keys contexts on address and TLLI). */
    frame[0] = 0x03;
    frame[1] = 0xc0;
    frame[2] = 0x01 | (1 << 2);
    memset(frame + 3, 0x5a, 20);
    memcpy(frame + 23, "\x01\x02\x03\x04", 4);
    memset(&r, 0, sizeof(r));
    r.type = CELLSIM_LLC;
    r.tlli = (uint32_t)t;
    r.llc = frame;
    r.llclen = 27;
    n = cellsim_radio_encode(&r, dgram, sizeof(dgram));
    CHECK(n > 0, "encode");
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)lport);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
          "bind the MS's port %d", lport);
    to = sa;
    to.sin_port = htons((uint16_t)rport);
    CHECK(sendto(fd, dgram, (size_t)n, 0, (struct sockaddr *)&to, sizeof(to)) ==
            n,
          "send");
    snprintf(line, sizeof(line), "event=llc_mac_failure tlli=%s", tlli);
    CHECK(wait_file(g_sglog, line, 1, 5000) == 0, "MAC-I failure logged");
    ggsn_serve(200);
    CHECK(g_gpdus == gpdus, "nothing forwarded to the GGSN");
    kill(g_sg, SIGUSR1);
    CHECK(wait_file(g_sglog, "event=stats", 1, 5000) == 0, "stats on SIGUSR1");
    CHECK(file_has(g_sglog, "event=stats", line, sizeof(line)) == 1 &&
            strstr(line, " llc_mac_failures=1 ") != NULL,
          "llc_mac_failures=1 in %s", line);
    close(fd);
    ok("a frame with a bad MAC-I from the MS's address: dropped, counted "
       "(event=llc_mac_failure, llc_mac_failures=1 on SIGUSR1)");
  }

  /* -------------------------------------------- SQN_MS ahead: AUTS */
  {
    const char *extra[] = {"--attach-only", NULL};
    write_file("sqn.state",
               "{\"ind_bitlen\": 5, \"sqn_ms\": [1099511627776]}\n", 0600);
    rv = run_ms(mtcsec, "ms-sqn", "sqn.json", rport, extra);
    path(q, sizeof(q), "ms-sqn.log");
    if (rv != 0) {
      dump(q);
    }
    CHECK(rv == 0, "resync attach exit %d", rv);
    CHECK(file_has(q, "result=synch_failure verdict=stale", NULL, 0) == 1 &&
            file_has(q, "event=aka imsi=001010000000013 result=ok", NULL, 0) ==
              1,
          "the MS refused the stale SQN, then accepted the next challenge");
    CHECK(file_has(g_sglog, "event=resync", NULL, 0) == 1 &&
            file_has(g_sglog, "resync=1", NULL, 0) == 1,
          "the SGSN resynchronised through Send Auth Info with AUTS");
    CHECK(file_has(g_hplog, "resync=1", NULL, 0) >= 1, "mtchpd resync");
    path(p, sizeof(p), "sqn.state");
    CHECK(file_has(p, "\"sqn_ms\": [10995116278", NULL, 0) == 1,
          "SQN_MS advanced past 2^40");
    ok("SQN_MS ahead of the AuC: synch failure, AUTS, resync, attach");
  }

  /* ---------------------------------------- normal subscriber: FCS */
  {
    const char *extra[] = {"--send", "fcs mode", NULL};
    rv = run_ms(mtcsec, "ms-n", "normal.json", rport, extra);
    path(p, sizeof(p), "ms-n.out");
    path(q, sizeof(q), "ms-n.log");
    if (rv != 0) {
      dump(p);
      dump(q);
    }
    CHECK(rv == 0, "normal subscriber exit %d", rv);
    CHECK(file_has(p, "LLC FCS (no integrity)", NULL, 0) == 1 &&
            file_has(p, "downlink: ack fcs mode", NULL, 0) == 1,
          "FCS mode, payload answered");
    CHECK(file_has(g_sglog, "ck_received=1 kc_received=1 policy=fcs", line,
                   sizeof(line)) == 1 &&
            strstr(line, IMSI_N) != NULL,
          "the SGSN logged ck_received=1 for the normal subscriber");
    ok("normal subscriber: FCS frames (no policy IE); the SGSN got CK, "
       "zeroized it, logged ck_received=1");
  }

  /* -------------------------------------------------- refusals */
  {
    const char *extra[] = {"--attach-only", NULL};
    const char *extra2[] = {"--count", "0", NULL};
    rv = run_ms(mtcsec, "ms-none", "none.json", rport, extra);
    path(q, sizeof(q), "ms-none.log");
    CHECK(rv == 1 && file_has(q, "GMM cause 0x02", NULL, 0) == 1,
          "unknown IMSI: exit %d", rv);
    rv = run_ms(mtcsec, "ms-missing", "missing.json", rport, extra);
    CHECK(rv == 3, "missing USIM file: exit %d", rv);
    g_refuse_imsi = IMSI_N;
    rv = run_ms(mtcsec, "ms-refused", "normal.json", rport, extra2);
    path(q, sizeof(q), "ms-refused.log");
    CHECK(rv == 1 && file_has(q, "SM cause 0x1d", NULL, 0) == 1,
          "PDP refused (GTP 0xca -> SM 0x1d): exit %d", rv);
    ok("unknown IMSI -> ATTACH_REJECT 0x02 (exit 1); no USIM file -> exit 3; "
       "GGSN refusal -> ACTIVATE_PDP_CONTEXT_REJECT 0x1d (exit 1)");
  }

  /* ------------------- attacks from the radio: the SGSN's contexts */
  {
    const char *extra[] = {"--send",     "one",  "--send", "two",
                           "--interval", "1500", NULL};
    cellsim_radio r;
    uint8_t buf[256], rand1[16];
    int fd, k;

    /* A pending attach nobody answers: it expires after 30 s (checked at
     * the end of the test). */
    fd = udp_loopback(NULL);
    raw_attach(fd, rport, 0xc0ffee04u, IMSI_SQN);
    CHECK(raw_recv(fd, &r, buf, sizeof(buf), 5000) == 0 &&
            r.type == CELLSIM_AUTH_REQUEST,
          "AUTH_REQUEST for the pending attach");
    g_pending_since = now_ms();
    close(fd);

    /* An ATTACH_REQUEST with an attached MS's IMSI under a new TLLI, while
     * that MS waits between its payloads: it must keep its context. */
    g_hook_fd = udp_loopback(NULL);
    g_hook_port = rport;
    g_hook_done = 0;
    path(g_hook_out, sizeof(g_hook_out), "ms-keep.out");
    g_hook = hook_forged_attach;
    rv = run_ms(mtcsec, "ms-keep", "io.json", rport, extra);
    g_hook = NULL;
    path(q, sizeof(q), "ms-keep.log");
    if (rv != 0) {
      dump(g_hook_out);
      dump(q);
    }
    CHECK(g_hook_done, "the forged ATTACH_REQUEST was not sent");
    CHECK(rv == 0 && file_has(g_hook_out, "downlink: ack two", NULL, 0) == 1,
          "the attached MS lost its context to an unauthenticated "
          "ATTACH_REQUEST (exit %d)",
          rv);
    CHECK(raw_recv(g_hook_fd, &r, buf, sizeof(buf), 5000) == 0 &&
            r.type == CELLSIM_AUTH_REQUEST && r.tlli == 0xc0ffee01u,
          "the forged attach got a challenge (it is pending)");
    {
      char tl[16] = "", rel[64];
      const char *t;
      CHECK(file_has(q, "event=attached", line, sizeof(line)) == 1 &&
              (t = strstr(line, "tlli=")) != NULL &&
              sscanf(t, "tlli=%8s", tl) == 1,
            "the MS's TLLI");
      snprintf(rel, sizeof(rel), "event=released tlli=%s", tl);
      CHECK(file_has(g_sglog, "event=attach_request tlli=c0ffee01", NULL, 0) ==
                1 &&
              file_has(g_sglog, rel, NULL, 0) == 0,
            "the attached MS's context was released");
    }
    close(g_hook_fd);
    g_hook_fd = -1;
    ok("an unauthenticated ATTACH_REQUEST for an attached IMSI (new TLLI) "
       "releases nothing: the MS's next payload is answered");

    /* MAC failures reported by the MS: the SGSN's own challenge again,
     * twice, then ATTACH_REJECT 0x11. */
    fd = udp_loopback(NULL);
    raw_attach(fd, rport, 0xc0ffee02u, IMSI_N);
    CHECK(raw_recv(fd, &r, buf, sizeof(buf), 5000) == 0 &&
            r.type == CELLSIM_AUTH_REQUEST,
          "AUTH_REQUEST");
    memcpy(rand1, r.rand, 16);
    for (k = 0; k < 3; k++) {
      cellsim_radio fail;
      memset(&fail, 0, sizeof(fail));
      fail.type = CELLSIM_AUTH_FAILURE;
      fail.tlli = 0xc0ffee02u;
      fail.cause = CELLSIM_CAUSE_MAC_FAILURE;
      raw_send(fd, rport, &fail);
      CHECK(raw_recv(fd, &r, buf, sizeof(buf), 5000) == 0, "answer %d", k);
      if (k < 2) {
        CHECK(r.type == CELLSIM_AUTH_REQUEST && memcmp(r.rand, rand1, 16) == 0,
              "MAC failure %d: the same challenge again (got %s)", k + 1,
              cellsim_radio_name(r.type));
      } else {
        CHECK(r.type == CELLSIM_ATTACH_REJECT &&
                r.cause == CELLSIM_GMM_NETWORK_FAILURE,
              "third MAC failure: ATTACH_REJECT 0x11 (got %s)",
              cellsim_radio_name(r.type));
      }
    }
    close(fd);
    CHECK(file_has(g_sglog, "tlli=c0ffee02 imsi=001010000000012 mac_failures=",
                   NULL, 0) == 2 &&
            file_has(g_sglog,
                     "tlli=c0ffee02 imsi=001010000000012 cause=0x11 "
                     "reason=ms_mac_failure",
                     NULL, 0) == 1,
          "MAC failures logged");
    ok("a MAC failure from the MS: the SGSN sends its challenge again (a "
       "forged one may have been answered), twice, then ATTACH_REJECT 0x11");
  }

  /* ------------------- attacks from the radio: the MS, through a MITM */
  {
    const char *attach[] = {"--attach-only", NULL};
    const char *send[] = {"--send", "after a forged accept", NULL};
    const char *old[] = {"--attach-only", "--retries", "1", NULL};

    proxy_open(rport);
    g_serve = proxy_serve;
    proxy_arm(PX_FORWARD);
    rv = run_ms(mtcsec, "ms-px", "io.json", g_px.port, attach);
    CHECK(rv == 0 && g_px.ncaptured == 1, "through the proxy: exit %d", rv);
    proxy_arm(PX_FORWARD);
    rv = run_ms(mtcsec, "ms-px2", "io.json", g_px.port, attach);
    CHECK(rv == 0 && g_px.ncaptured == 2, "through the proxy: exit %d", rv);
    CHECK(file_has(g_sglog,
                   "tlli=c0ffee01 imsi=001010000000011 "
                   "reason=new_attach",
                   NULL, 0) == 1,
          "the forged attach of the same IMSI is released once a new attach "
          "of it authenticated");

    /* ATTACH_ACCEPT 0x00 (FCS) just before the genuine one, then an FCS
     * ACTIVATE_PDP_CONTEXT_REJECT just before the genuine answer. */
    proxy_arm(PX_FORGE_ACCEPT);
    rv = run_ms(mtcsec, "ms-downgrade", "io.json", g_px.port, send);
    path(p, sizeof(p), "ms-downgrade.out");
    path(q, sizeof(q), "ms-downgrade.log");
    if (rv != 0) {
      dump(p);
      dump(q);
    }
    CHECK(g_px.forged == 2, "%u messages forged", g_px.forged);
    CHECK(rv == 0 && file_has(p, "LLC MAC-I (integrity)", NULL, 0) == 1 &&
            file_has(p, "downlink: ack after a forged accept", NULL, 0) == 1,
          "a forged ATTACH_ACCEPT 0x00 downgraded the MS (exit %d)", rv);
    CHECK(file_has(q,
                   "event=attach_accept_dropped imsi=001010000000011 "
                   "policy=fcs required=integrity",
                   NULL, 0) == 1 &&
            file_has(q, "event=llc_dropped imsi=001010000000011 err=", NULL,
                     0) == 1,
          "the forged accept and the forged FCS frame are dropped");
    ok("a forged ATTACH_ACCEPT 0x00 before the genuine one is dropped (the "
       "USIM requires integrity); a forged FCS-only SM reject then fails its "
       "MAC-I; the MS attaches with MAC-I and its payload is answered");

    /* An AUTH_REQUEST whose AUTN is made up, before the SGSN's. */
    proxy_arm(PX_FORGE_AUTH);
    rv = run_ms(mtcsec, "ms-forged-auth", "io.json", g_px.port, attach);
    path(q, sizeof(q), "ms-forged-auth.log");
    if (rv != 0) {
      dump(q);
    }
    CHECK(rv == 0 && g_px.forged == 1 &&
            file_has(q, "result=mac_failure mac_failures=1 action=wait", NULL,
                     0) == 1 &&
            file_has(q, "event=attached", NULL, 0) == 1,
          "a forged AUTH_REQUEST ended the attach (exit %d)", rv);
    ok("a forged AUTH_REQUEST: AUTH_FAILURE 0x14, then the genuine challenge "
       "attaches the MS");

    /* Three old challenges (answered by the MS: used) replayed before the
     * SGSN's. */
    CHECK(g_px.ncaptured >= PX_REPLAYED, "%zu challenges captured",
          g_px.ncaptured);
    proxy_arm(PX_REPLAY);
    rv = run_ms(mtcsec, "ms-replayed", "io.json", g_px.port, attach);
    path(q, sizeof(q), "ms-replayed.log");
    if (rv != 0) {
      dump(q);
    }
    CHECK(rv == 0 && g_px.forged == 3,
          "replayed challenges ended the attach "
          "(exit %d)",
          rv);
    CHECK(file_has(q, "result=synch_failure verdict=stale sqn_ms=", NULL, 0) ==
              2 &&
            file_has(q, "verdict=stale action=dropped reason=resync_budget",
                     NULL, 0) == 1 &&
            file_has(q, "event=attached", NULL, 0) == 1,
          "two resynchronisations, the third replay dropped, then attached");
    ok("three old challenges replayed: two AUTS answers, the third dropped "
       "(budget spent), then the genuine challenge attaches the MS");
    g_serve = ggsn_serve;
    close(g_px.ms_fd);
    close(g_px.sg_fd);

    /* A USIM file without "integrity_only" (integrity required) of a
     * subscriber whose policy is FCS: every accept is dropped. */
    rv = run_ms(mtcsec, "ms-old-usim", "normal-old.json", rport, old);
    path(q, sizeof(q), "ms-old-usim.log");
    CHECK(rv == 1 &&
            file_has(q,
                     "event=attach_accept_dropped imsi=001010000000012 "
                     "policy=fcs",
                     NULL, 0) >= 1 &&
            file_has(q, "offered no integrity and were dropped", NULL, 0) ==
              1 &&
            file_has(q, "event=attached", NULL, 0) == 0,
          "USIM without integrity_only: exit %d", rv);
    ok("a USIM file without \"integrity_only\" requires integrity: an FCS "
       "ATTACH_ACCEPT is never taken (exit 1, the reason said)");
  }

  /* ------------------------- a table full of attached MSs (--max-ms 2) */
  {
    const char *attach[] = {"--attach-only", NULL};
    const char *s3_argv[16];
    char s3log[400];
    cellsim_radio r;
    uint8_t buf[256];
    int rport3, fd;

    path(q, sizeof(q), "sgsn3.out");
    path(s3log, sizeof(s3log), "sgsn3.log");
    i = 0;
    s3_argv[i++] = mtcsec;
    s3_argv[i++] = "sgsn";
    s3_argv[i++] = "run";
    s3_argv[i++] = "--listen";
    s3_argv[i++] = "127.0.0.1:0";
    s3_argv[i++] = "--hlr";
    s3_argv[i++] = gsup;
    s3_argv[i++] = "--ggsn";
    s3_argv[i++] = ggsn;
    s3_argv[i++] = "--max-ms";
    s3_argv[i++] = "2";
    s3_argv[i] = NULL;
    g_sg3 = spawn(s3_argv, q, s3log);
    CHECK(wait_file(s3log, "event=hlr_ready", 1, 10000) == 0, "third SGSN");
    rport3 = log_port(s3log, "service=radio addr=127.0.0.1:");
    rv = run_ms(mtcsec, "ms-full-1", "io.json", rport3, attach);
    CHECK(rv == 0, "first MS: exit %d", rv);
    fd = udp_loopback(NULL);
    raw_attach(fd, rport3, 0xc0ffee03u, IMSI_N);
    CHECK(raw_recv(fd, &r, buf, sizeof(buf), 5000) == 0 &&
            r.type == CELLSIM_AUTH_REQUEST,
          "pending attach");
    close(fd);
    rv = run_ms(mtcsec, "ms-full-2", "normal.json", rport3, attach);
    CHECK(rv == 0 && file_has(s3log,
                              "event=released tlli=c0ffee03 "
                              "imsi=001010000000012 reason=evicted_pending",
                              NULL, 0) == 1,
          "a full table: the pending attach gives way (exit %d)", rv);
    rv = run_ms(mtcsec, "ms-full-3", "sqn.json", rport3, attach);
    path(q, sizeof(q), "ms-full-3.log");
    CHECK(rv == 1 && file_has(q, "GMM cause 0x16", NULL, 0) == 1 &&
            file_has(s3log, "imsi=001010000000013 cause=0x16 reason=congestion",
                     NULL, 0) == 1 &&
            file_has(s3log, "event=released", NULL, 0) == 1,
          "a table full of attached MSs: congestion, nobody evicted (exit %d)",
          rv);
    kill(g_sg3, SIGTERM);
    waitpid(g_sg3, NULL, 0);
    g_sg3 = -1;
    ok("--max-ms full: a pending attach is evicted for a newcomer; attached "
       "MSs never are: the next newcomer gets ATTACH_REJECT 0x16");
  }

  /* ---------------------- the GGSN agent, against mtcsd's Gi side */
  {
    const char *extra[] = {"--send", "via ggsn", NULL};
    const char *extra2[] = {"--count", "0", NULL};
    const char *gg_argv[16], *s2_argv[16];
    char st[300], crt[400], key[400], ca[400], cert_sv[400], key_sv[400];
    char err[256], gtp[64], mtcs[64];
    uint8_t ggsn_id[8];
    SSL_CTX *ctx;
    int lfd, gtp_port, rport2, w;

    snprintf(st, sizeof(st), "%s/st", g_dir);
    CHECK(sh("'%s' init '%s' --mtcs-id %s >/dev/null", mtcsec, st, MTCS_ID) ==
            0,
          "mtcsec init");
    CHECK(sh("'%s' -d '%s' ggsn add 6600000000000001 >/dev/null 2>&1", mtcsec,
             st) == 0,
          "mtcsec ggsn add");
    snprintf(crt, sizeof(crt), "%s/ggsns/6600000000000001.pem", st);
    snprintf(key, sizeof(key), "%s/ggsns/6600000000000001.key", st);
    snprintf(ca, sizeof(ca), "%s/ca.pem", st);
    snprintf(cert_sv, sizeof(cert_sv), "%s/server.pem", st);
    snprintf(key_sv, sizeof(key_sv), "%s/server.key", st);
    CHECK(stat(key, &sb) == 0 && (sb.st_mode & 0777) == 0600, "key 0600");
    CHECK(sh("openssl x509 -in '%s' -noout -subject -ext extendedKeyUsage "
             "2>/dev/null | tr -d ' ' | grep -q 'CN=6600000000000001' && "
             "openssl x509 -in '%s' -noout -ext extendedKeyUsage | grep -q "
             "'TLS Web Client Authentication' && openssl verify -CAfile '%s' "
             "'%s' >/dev/null",
             crt, crt, ca, crt) == 0,
          "ggsn certificate: CN = ID, clientAuth, from the init CA");
    CHECK(sh("'%s' -d '%s' ggsn add 6600000000000001 >/dev/null 2>&1", mtcsec,
             st) == 1 * 256,
          "a second ggsn add of the same ID is refused (exit 1)");
    ok("mtcsec ggsn add: ggsns/ID.pem (CN = ID, clientAuth) and ID.key 0600");

    ctx = app_tls_server_ctx(cert_sv, key_sv, ca, err, sizeof(err));
    CHECK(ctx != NULL, "server ctx: %s", err);
    lfd = app_tcp_listen("127.0.0.1:0", err, sizeof(err));
    CHECK(lfd >= 0, "listen: %s", err);
    {
      char a[64];
      struct sockaddr_in sa;
      socklen_t sl = sizeof(sa);
      CHECK(getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0, "name");
      snprintf(a, sizeof(a), "127.0.0.1:%d", ntohs(sa.sin_port));
      snprintf(mtcs, sizeof(mtcs), "%s", a);
    }
    path(q, sizeof(q), "ggsn.out");
    path(p, sizeof(p), "ggsn.log");
    i = 0;
    gg_argv[i++] = mtcsec;
    gg_argv[i++] = "ggsn";
    gg_argv[i++] = "run";
    gg_argv[i++] = "--listen";
    gg_argv[i++] = "127.0.0.1:0";
    gg_argv[i++] = "--mtcs";
    gg_argv[i++] = mtcs;
    gg_argv[i++] = "--cert";
    gg_argv[i++] = crt;
    gg_argv[i++] = "--key";
    gg_argv[i++] = key;
    gg_argv[i++] = "--ca";
    gg_argv[i++] = ca;
    gg_argv[i++] = "--trace";
    gg_argv[i] = NULL;
    g_gg = spawn(gg_argv, q, p);
    {
      struct pollfd pl;
      int fl;
      pl.fd = lfd;
      pl.events = POLLIN;
      CHECK(poll(&pl, 1, 10000) == 1, "the GGSN connects to mtcsd");
      g_gi_fd = accept(lfd, NULL, NULL);
      CHECK(g_gi_fd >= 0, "accept");
      fl = fcntl(g_gi_fd, F_GETFL);
      CHECK(fcntl(g_gi_fd, F_SETFL, fl & ~O_NONBLOCK) == 0, "blocking");
      g_gi = SSL_new(ctx);
      SSL_set_fd(g_gi, g_gi_fd);
      CHECK(SSL_accept(g_gi) == 1, "TLS with the GGSN");
      CHECK(app_tls_peer_ueid(g_gi, ggsn_id) == 0 &&
              memcmp(ggsn_id, "\x66\x00\x00\x00\x00\x00\x00\x01", 8) == 0,
            "the GGSN presents CN 6600000000000001");
      CHECK(fcntl(g_gi_fd, F_SETFL, fl | O_NONBLOCK) == 0, "non-blocking");
    }
    CHECK(wait_file(p, "event=ready", 1, 5000) == 0, "GGSN ready");
    gtp_port = log_port(p, "service=gtp addr=127.0.0.1:");
    CHECK(gtp_port > 0, "GGSN port");
    snprintf(gtp, sizeof(gtp), "127.0.0.1:%d", gtp_port);
    path(q, sizeof(q), "sgsn2.out");
    path(p, sizeof(p), "sgsn2.log");
    i = 0;
    s2_argv[i++] = mtcsec;
    s2_argv[i++] = "sgsn";
    s2_argv[i++] = "run";
    s2_argv[i++] = "--listen";
    s2_argv[i++] = "127.0.0.1:0";
    s2_argv[i++] = "--hlr";
    s2_argv[i++] = gsup;
    s2_argv[i++] = "--ggsn";
    s2_argv[i++] = gtp;
    s2_argv[i] = NULL;
    g_sg2 = spawn(s2_argv, q, p);
    CHECK(wait_file(p, "event=hlr_ready", 1, 10000) == 0, "second SGSN");
    rport2 = log_port(p, "service=radio addr=127.0.0.1:");
    memset(g_peers, 0, sizeof(g_peers));
    g_serve = gi_serve;
    g_gi_status = GI_STATUS_OK;
    rv = run_ms(mtcsec, "ms-gi", "io.json", rport2, extra);
    path(p, sizeof(p), "ms-gi.out");
    path(q, sizeof(q), "ms-gi.log");
    if (rv != 0) {
      dump(p);
      dump(q);
      path(q, sizeof(q), "ggsn.log");
      dump(q);
    }
    CHECK(rv == 0 && file_has(p, "downlink: ack via ggsn", NULL, 0) == 1,
          "payload through SGSN, GGSN and Gi answered: exit %d", rv);
    CHECK(g_gi_opens == 1 && g_gi_uplinks == 1,
          "one CTX_OPEN (with the PCO's RAND: the keys matched), one UPLINK");
    ok("GGSN: CTX_OPEN(IMSI, RAND from the PCO) before the accept; UPLINK "
       "and DOWNLINK relayed; the MS's K_UP is the server's");
    /* mtcsd refuses K_UP: CTX_RESULT 0x01 -> GTP 0xca -> SM 0x1d. */
    g_gi_status = GI_STATUS_NOT_AUTHORIZED;
    rv = run_ms(mtcsec, "ms-gi-refused", "io.json", rport2, extra2);
    path(q, sizeof(q), "ms-gi-refused.log");
    CHECK(rv == 1 && file_has(q, "SM cause 0x1d", NULL, 0) == 1,
          "refusal through the GGSN: exit %d", rv);
    /* The re-attach released the first context: DELETE -> CTX_CLOSE. */
    for (w = 0; w < 100 && g_gi_closes < 1; w++) {
      gi_serve(20);
    }
    CHECK(g_gi_closes >= 1, "CTX_CLOSE after DELETE_PDP_REQUEST");
    ok("GGSN: CTX_RESULT not_authorized -> CREATE_PDP_RESPONSE 0xca -> "
       "ACTIVATE_PDP_CONTEXT_REJECT 0x1d; DELETE_PDP -> CTX_CLOSE");
    kill(g_gg, SIGTERM);
    {
      int status = -1;
      for (w = 0; w < 100 && waitpid(g_gg, &status, WNOHANG) != g_gg; w++) {
        sleep_ms(50); /* the Gi socket is at EOF now: no more serving */
      }
      CHECK(w < 100 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "GGSN exits 0 on SIGTERM");
      g_gg = -1;
    }
    kill(g_sg2, SIGTERM);
    waitpid(g_sg2, NULL, 0);
    g_sg2 = -1;
    SSL_free(g_gi);
    close(g_gi_fd);
    close(lfd);
    SSL_CTX_free(ctx);
    g_serve = ggsn_serve;

    /* An "mtcsd" whose certificate chains to the CA but names another
     * host: the GGSN must not open a Gi link to it. */
    {
      char ocrt[400], okey[400], ext[400], glog[400];
      const char *g2_argv[16];
      struct timeval tv = {5, 0};
      SSL *ssl;
      int fd2, connected;
      snprintf(okey, sizeof(okey), "%s/other.key", g_dir);
      snprintf(ocrt, sizeof(ocrt), "%s/other.pem", g_dir);
      snprintf(ext, sizeof(ext), "%s/other.ext", g_dir);
      CHECK(sh("printf 'subjectAltName = DNS:elsewhere.example\\n"
               "extendedKeyUsage = serverAuth\\n' >'%s' && "
               "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
               "-nodes -keyout '%s' -subj '/CN=mtcsd elsewhere' 2>/dev/null | "
               "openssl x509 -req -CA '%s' -CAkey '%s/ca.key' -days 1 "
               "-set_serial 4242 -extfile '%s' -out '%s' 2>/dev/null",
               ext, okey, ca, st, ext, ocrt) == 0,
            "a server certificate for elsewhere.example from the init CA");
      ctx = app_tls_server_ctx(ocrt, okey, ca, err, sizeof(err));
      CHECK(ctx != NULL, "server ctx: %s", err);
      lfd = app_tcp_listen("127.0.0.1:0", err, sizeof(err));
      CHECK(lfd >= 0, "listen: %s", err);
      {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        CHECK(getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0, "name");
        snprintf(mtcs, sizeof(mtcs), "127.0.0.1:%d", ntohs(sa.sin_port));
      }
      path(q, sizeof(q), "ggsn2.out");
      path(glog, sizeof(glog), "ggsn2.log");
      i = 0;
      g2_argv[i++] = mtcsec;
      g2_argv[i++] = "ggsn";
      g2_argv[i++] = "run";
      g2_argv[i++] = "--listen";
      g2_argv[i++] = "127.0.0.1:0";
      g2_argv[i++] = "--mtcs";
      g2_argv[i++] = mtcs;
      g2_argv[i++] = "--cert";
      g2_argv[i++] = crt;
      g2_argv[i++] = "--key";
      g2_argv[i++] = key;
      g2_argv[i++] = "--ca";
      g2_argv[i++] = ca;
      g2_argv[i] = NULL;
      g_gg2 = spawn(g2_argv, q, glog);
      {
        struct pollfd pl;
        int fl;
        pl.fd = lfd;
        pl.events = POLLIN;
        CHECK(poll(&pl, 1, 10000) == 1, "the GGSN connects");
        fd2 = accept(lfd, NULL, NULL);
        CHECK(fd2 >= 0, "accept");
        fl = fcntl(fd2, F_GETFL);
        CHECK(fcntl(fd2, F_SETFL, fl & ~O_NONBLOCK) == 0, "blocking");
        setsockopt(fd2, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      }
      ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd2);
      (void)SSL_accept(ssl); /* the chain verifies: the handshake ends */
      CHECK(wait_file(glog, "event=ready", 1, 10000) == 0, "GGSN 2 ready");
      connected = file_has(glog, "event=gi_connected", NULL, 0);
      CHECK(!connected &&
              file_has(glog, "event=gi_unreachable mtcs=127.0.0.1:", line,
                       sizeof(line)) >= 1 &&
              strstr(line, "does not name 127.0.0.1 (IP address)") != NULL,
            "the GGSN accepted a certificate for another host (connected=%d)",
            connected);
      kill(g_gg2, SIGTERM);
      waitpid(g_gg2, NULL, 0);
      g_gg2 = -1;
      SSL_free(ssl);
      close(fd2);
      close(lfd);
      SSL_CTX_free(ctx);
      ERR_clear_error();
    }
    ok("GGSN: an mtcsd certificate from the CA that does not name the "
       "--mtcs host is refused before any Gi frame (event=gi_unreachable)");
  }

  /* ----------------------------------- the pending attach expired */
  {
    long long left = g_pending_since + 34000 - now_ms();
    CHECK(wait_file(g_sglog,
                    "event=released tlli=c0ffee04 imsi=001010000000013 "
                    "reason=attach_timeout",
                    1, left > 0 ? (int)left : 0) == 0,
          "a pending attach (WAIT_RES) never expired");
    ok("an attach nobody answers (WAIT_RES) is released after 30 s");
  }

  /* -------------------------------------------------- clean stop */
  kill(g_sg, SIGTERM);
  {
    int status = -1, w;
    for (w = 0; w < 100 && waitpid(g_sg, &status, WNOHANG) != g_sg; w++) {
      ggsn_serve(50);
    }
    CHECK(w < 100 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "SGSN exits 0 on SIGTERM");
    g_sg = -1;
  }
  CHECK(file_has(g_sglog, "event=stats", NULL, 0) == 2, "stats line at exit");
  mtcsec_crypto_openssl_del(&g_crypto);
  ok("SIGTERM: the SGSN stops cleanly and logs its counters");
  return 0;
}
