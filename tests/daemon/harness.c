/*
 * Harness of the daemon tests (see harness.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "app.h"
#include "harness.h"

const uint8_t DH_MTCS_ID[8] = {0x5e, 0, 0, 0, 0, 0, 0, 0x01};
const uint8_t DH_UEID[8] = {0x0e, 0, 0, 0, 0, 0, 0, 0x42};
const uint8_t DH_GW_OK[8] = {0x67, 0, 0, 0, 0, 0, 0, 0x01};
const uint8_t DH_GW_BAD[8] = {0x67, 0, 0, 0, 0, 0, 0, 0x02};
const uint8_t DH_DEV_A[8] = {0x0d, 0, 0, 0, 0, 0, 0, 0x0a};
const uint8_t DH_DEV_B[8] = {0x0d, 0, 0, 0, 0, 0, 0, 0x0b};
const uint8_t DH_DEV_C[8] = {0x0d, 0, 0, 0, 0, 0, 0, 0x0c};
const uint8_t DH_DEV_D[8] = {0x0d, 0, 0, 0, 0, 0, 0, 0x0d};
const uint8_t DH_DEV_N[8] = {0x0d, 0, 0, 0, 0, 0, 0, 0x0e};
const uint8_t DH_DEV_R[8] = {0x0d, 0, 0, 0, 0, 0, 0, 0x0f};
const uint8_t DH_DEV_UNKNOWN[8] = {0x0d, 0, 0, 0, 0, 0, 0, 0xff};

const char *dh_mtcsd_path;

#define DH_MAX_ENVS 4
static dh_env *dh_envs[DH_MAX_ENVS];

static void dh_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void dh_die(const char *fmt, ...) {
  va_list ap;
  int i;
  va_start(ap, fmt);
  fprintf(stderr, "harness: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  for (i = 0; i < DH_MAX_ENVS; i++) {
    if (dh_envs[i] != NULL) {
      dh_env_destroy(dh_envs[i]);
    }
  }
  exit(1);
}

uint64_t dh_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void dh_sleep_ms(unsigned ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ------------------------------------------------------------ cleanup */

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void rm_rf(const char *dir) {
  if (dir[0] != '\0') {
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  }
}

static void dh_watchdog(int sig) {
  int i;
  static const char msg[] = "harness: watchdog: test took too long\n";
  (void)sig;
  if (write(2, msg, sizeof(msg) - 1) < 0) {
    /* nothing to do */
  }
  for (i = 0; i < DH_MAX_ENVS; i++) {
    if (dh_envs[i] != NULL && dh_envs[i]->pid > 0) {
      kill(dh_envs[i]->pid, SIGKILL);
    }
  }
  for (i = 0; i < DH_MAX_ENVS; i++) {
    if (dh_envs[i] != NULL) {
      rm_rf(dh_envs[i]->dir);
    }
  }
  _exit(1);
}

static void dh_atexit(void) {
  int i;
  for (i = 0; i < DH_MAX_ENVS; i++) {
    if (dh_envs[i] != NULL) {
      dh_env_destroy(dh_envs[i]);
    }
  }
}

void dh_init(int argc, char **argv, unsigned seconds) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PATH-TO-MTCSD\n", argv[0]);
    exit(2);
  }
  dh_mtcsd_path = argv[1];
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, dh_watchdog);
  alarm(seconds);
  atexit(dh_atexit);
}

/* --------------------------------------------------------------- crypto */

const mtcsec_crypto *dh_crypto(void) {
  static mtcsec_crypto c;
  static int ready;
  if (!ready) {
    if (mtcsec_crypto_openssl_new(&c) != 0) {
      dh_die("cannot create the OpenSSL provider");
    }
    ready = 1;
  }
  return &c;
}

/* ----------------------------------------------------------------- PKI */

static EVP_PKEY *pki_key(void) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  if (k == NULL) {
    dh_die("EC key generation failed");
  }
  return k;
}

static void pki_ext(X509 *x, X509 *issuer, int nid, const char *value) {
  X509V3_CTX ctx;
  X509_EXTENSION *ext;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (ext == NULL || X509_add_ext(x, ext, -1) != 1) {
    dh_die("cannot add extension %d", nid);
  }
  X509_EXTENSION_free(ext);
}

/* A certificate for key with the given commonNames (NULL-terminated list),
 * signed by issuer (NULL: self-signed CA). */
static X509 *pki_cert(EVP_PKEY *key, const char *const *cns, X509 *issuer,
                      EVP_PKEY *issuer_key, long nb, long na, long serial) {
  X509 *x = X509_new();
  X509_NAME *n = X509_NAME_new();
  int i;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), nb);
  X509_gmtime_adj(X509_getm_notAfter(x), na);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
                             (const unsigned char *)"mtcsec test", -1, -1, 0);
  for (i = 0; cns != NULL && cns[i] != NULL; i++) {
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)cns[i], -1, -1, 0);
  }
  X509_set_subject_name(x, n);
  X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
  X509_NAME_free(n);
  if (issuer == NULL) {
    pki_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE");
    pki_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
    pki_ext(x, NULL, NID_subject_key_identifier, "hash");
  } else {
    pki_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
    pki_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
    pki_ext(x, issuer, NID_authority_key_identifier, "keyid");
  }
  if (X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) <= 0) {
    dh_die("X509_sign failed");
  }
  return x;
}

static void pki_write(const char *dir, const char *name, X509 *x, EVP_PKEY *k) {
  char p[512];
  FILE *f;
  snprintf(p, sizeof(p), "%s/%s.pem", dir, name);
  f = fopen(p, "w");
  if (f == NULL || PEM_write_X509(f, x) != 1) {
    dh_die("cannot write %s", p);
  }
  fclose(f);
  snprintf(p, sizeof(p), "%s/%s.key", dir, name);
  f = fopen(p, "w");
  if (f == NULL || PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1) {
    dh_die("cannot write %s", p);
  }
  fclose(f);
  chmod(p, 0600);
}

/* A leaf signed by (ca, cak) written as dir/name.{pem,key}. */
static void pki_leaf(const char *dir, const char *name, const char *const *cns,
                     X509 *ca, EVP_PKEY *cak, long nb, long na, long serial) {
  EVP_PKEY *k = pki_key();
  X509 *x = pki_cert(k, cns, ca, cak, nb, na, serial);
  pki_write(dir, name, x, k);
  X509_free(x);
  EVP_PKEY_free(k);
}

#define DH_REVOKED_SERIAL 66

static void pki_make(const char *dir) {
  static const char *const ca_cn[] = {"mtcsec test CA", NULL};
  static const char *const other_cn[] = {"another CA", NULL};
  static const char *const srv_cn[] = {"localhost", NULL};
  /* Upper case: the identity is case-insensitive (section 1). */
  static const char *const ue_cn[] = {"0E00000000000042", NULL};
  static const char *const bad_cn[] = {"not-a-ueid", NULL};
  static const char *const two_cn[] = {"0e00000000000042", "0e00000000000043",
                                       NULL};
  EVP_PKEY *cak = pki_key(), *ok = pki_key();
  X509 *ca = pki_cert(cak, ca_cn, NULL, NULL, -3600, 86400L * 365, 1);
  X509 *other = pki_cert(ok, other_cn, NULL, NULL, -3600, 86400L * 365, 1);
  char ues[300], p[400];
  X509_CRL *crl;
  X509_REVOKED *rev;
  ASN1_TIME *t;
  ASN1_INTEGER *serial;
  FILE *f;

  pki_write(dir, "ca", ca, cak);
  pki_write(dir, "other-ca", other, ok);
  pki_leaf(dir, "server", srv_cn, ca, cak, -3600, 86400L * 30, 2);
  snprintf(ues, sizeof(ues), "%s/ues", dir);
  mkdir(ues, 0700);
  pki_leaf(ues, "0e00000000000042", ue_cn, ca, cak, -3600, 86400L * 30, 3);
  pki_leaf(dir, "client-other-ca", ue_cn, other, ok, -3600, 86400L * 30, 4);
  pki_leaf(dir, "client-expired", ue_cn, ca, cak, -86400L * 2, -86400L, 5);
  pki_leaf(dir, "client-bad-cn", bad_cn, ca, cak, -3600, 86400L * 30, 6);
  pki_leaf(dir, "client-two-cn", two_cn, ca, cak, -3600, 86400L * 30, 7);
  pki_leaf(dir, "client-no-cn", NULL, ca, cak, -3600, 86400L * 30, 8);
  pki_leaf(dir, "client-revoked", ue_cn, ca, cak, -3600, 86400L * 30,
           DH_REVOKED_SERIAL);

  /* The CA's CRL revokes DH_REVOKED_SERIAL. */
  crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
  t = X509_gmtime_adj(NULL, -3600);
  X509_CRL_set1_lastUpdate(crl, t);
  rev = X509_REVOKED_new();
  serial = ASN1_INTEGER_new();
  ASN1_INTEGER_set(serial, DH_REVOKED_SERIAL);
  X509_REVOKED_set_serialNumber(rev, serial);
  X509_REVOKED_set_revocationDate(rev, t);
  X509_CRL_add0_revoked(crl, rev);
  ASN1_TIME_free(t);
  ASN1_INTEGER_free(serial);
  t = X509_gmtime_adj(NULL, 86400L * 30);
  X509_CRL_set1_nextUpdate(crl, t);
  ASN1_TIME_free(t);
  X509_CRL_sort(crl);
  if (X509_CRL_sign(crl, cak, EVP_sha256()) <= 0) {
    dh_die("X509_CRL_sign failed");
  }
  snprintf(p, sizeof(p), "%s/crl.pem", dir);
  f = fopen(p, "w");
  if (f == NULL || PEM_write_X509_CRL(f, crl) != 1) {
    dh_die("cannot write %s", p);
  }
  fclose(f);
  X509_CRL_free(crl);
  X509_free(ca);
  X509_free(other);
  EVP_PKEY_free(cak);
  EVP_PKEY_free(ok);
}

/* --------------------------------------------------------------- devices */

void dh_load_dev(uint8_t id[8], unsigned i) {
  memset(id, 0, 8);
  id[0] = 0x0d;
  id[6] = 0x01;
  id[7] = (uint8_t)i;
}

static uint8_t dev_suite(const uint8_t id[8]) {
  if (memcmp(id, DH_DEV_B, 8) == 0) {
    return 2;
  }
  if (memcmp(id, DH_DEV_C, 8) == 0) {
    return 3;
  }
  return 1;
}

/* Every device's PSKey is derived from its ID (test data). */
static void dev_pskey(const uint8_t id[8], uint8_t *psk, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    psk[i] = (uint8_t)(id[i % 8] ^ (uint8_t)(i * 17 + 3));
  }
}

void dh_device_init(dh_device *d, const uint8_t id[8]) {
  uint8_t psk[32];
  const mtcsec_suite_params *sp;
  memset(d, 0, sizeof(*d));
  memcpy(d->id, id, 8);
  d->suite = dev_suite(id);
  d->crypto = dh_crypto();
  sp = mtcsec_suite_get(d->suite);
  dev_pskey(id, psk, sp->keylen);
  if (mtcsec_derive_device_keys(d->crypto, d->suite, psk, id, DH_MTCS_ID,
                                d->k_auth, d->k_dm) != 0) {
    dh_die("derive_device_keys failed");
  }
}

void dh_m1_build_ex(dh_device *d, dh_m1 *m, const uint8_t ueid[8],
                    const uint8_t mtcs_id[8], const uint8_t *info,
                    size_t info_len, uint64_t nonce, uint8_t suite) {
  mtcsec_m1_fields f;
  uint8_t k_auth[32], k_dm[32];
  const uint8_t *ka = d->k_auth;
  uint8_t build_suite = d->suite;
  mtcsec_ssize n;

  memset(m, 0, sizeof(*m));
  mtcsec_put_u64(m->nonce, nonce);
  if (info_len > 0) {
    memcpy(m->info, info, info_len);
  }
  m->info_len = info_len;
  if (suite != d->suite && mtcsec_suite_get(suite) != NULL) {
    /* A real M1 of another suite, keyed as that suite would be. */
    uint8_t psk[32];
    dev_pskey(d->id, psk, mtcsec_suite_get(suite)->keylen);
    mtcsec_derive_device_keys(d->crypto, suite, psk, d->id, DH_MTCS_ID, k_auth,
                              k_dm);
    ka = k_auth;
    build_suite = suite;
  }
  memset(&f, 0, sizeof(f));
  f.suite = build_suite;
  f.mtcd_id = d->id;
  f.mtcs_id = mtcs_id;
  f.nonce = m->nonce;
  f.ueid = ueid;
  f.info = info_len > 0 ? m->info : NULL;
  f.info_len = info_len;
  n = mtcsec_m1_build(m->bytes, sizeof(m->bytes), d->crypto, ka, &f);
  if (n < 0) {
    dh_die("m1_build failed: %s", mtcsec_strerror((int)n));
  }
  m->len = (size_t)n;
  if (mtcsec_suite_get(suite) == NULL) {
    m->bytes[1] = suite; /* unknown suite: patched after the MIC */
  }
}

void dh_m1_build(dh_device *d, dh_m1 *m, const uint8_t ueid[8],
                 const uint8_t mtcs_id[8], const uint8_t *info,
                 size_t info_len) {
  dh_m1_build_ex(d, m, ueid, mtcs_id, info, info_len, d->nonce++, d->suite);
}

int dh_check_m3(dh_device *d, const dh_m1 *m, const uint8_t *body,
                size_t bodylen, uint8_t mtcs_nonce[8]) {
  mtcsec_hs m4;
  const uint8_t *dmkey;
  size_t dmkeylen;
  uint8_t expect[32];
  if (mtcsec_m3_decode(&m4, &dmkey, &dmkeylen, body, bodylen) != 0) {
    fprintf(stderr, "M3 does not decode\n");
    return -1;
  }
  if (m4.suite != d->suite || memcmp(m4.id_a, DH_MTCS_ID, 8) != 0 ||
      memcmp(m4.id_b, d->id, 8) != 0 || memcmp(m4.ueid, DH_UEID, 8) != 0) {
    fprintf(stderr, "M4 fields differ\n");
    return -1;
  }
  if (mtcsec_m4_verify(&m4, d->crypto, d->k_auth, m->nonce, m->info,
                       m->info_len) != 0) {
    fprintf(stderr, "MTCsMIC does not verify\n");
    return -1;
  }
  if (mtcsec_derive_dmkey(d->crypto, d->suite, d->k_dm, d->id, DH_MTCS_ID,
                          m->nonce, m4.nonce, DH_UEID, expect) != 0 ||
      dmkeylen != mtcsec_suite_get(d->suite)->keylen ||
      memcmp(expect, dmkey, dmkeylen) != 0) {
    fprintf(stderr, "DMKey differs from the device's\n");
    return -1;
  }
  if (mtcs_nonce != NULL) {
    memcpy(mtcs_nonce, m4.nonce, 8);
  }
  return 0;
}

/* ------------------------------------------------------------------ env */

mtcsec_sqlite *dh_db_open(dh_env *e) {
  char p[320], err[512];
  uint8_t kek[MTCSEC_KEK_LEN];
  mtcsec_sqlite *st = NULL;
  snprintf(p, sizeof(p), "%s/kek", e->dir);
  if (mtcsec_kek_load(p, kek, err, sizeof(err)) != 0) {
    dh_die("kek_load: %s", err);
  }
  if (mtcsec_sqlite_open(&st, e->db, kek, dh_crypto(), MTCSEC_SQLITE_CREATE,
                         err, sizeof(err)) != 0) {
    dh_die("sqlite_open: %s", err);
  }
  return st;
}

static void provision(dh_env *e) {
  char p[320], err[512];
  mtcsec_sqlite *st;
  const uint8_t *devs[] = {DH_DEV_A, DH_DEV_B, DH_DEV_C,
                           DH_DEV_D, DH_DEV_N, DH_DEV_R};
  size_t i;

  snprintf(p, sizeof(p), "%s/kek", e->dir);
  if (mtcsec_kek_create(p, dh_crypto(), err, sizeof(err)) != 0) {
    dh_die("kek_create: %s", err);
  }
  st = dh_db_open(e);
  for (i = 0; i < sizeof(devs) / sizeof(devs[0]) + DH_NLOAD; i++) {
    uint8_t id[8], psk[32];
    uint8_t suite;
    if (i < sizeof(devs) / sizeof(devs[0])) {
      memcpy(id, devs[i], 8);
    } else {
      dh_load_dev(id, (unsigned)(i - sizeof(devs) / sizeof(devs[0])));
    }
    suite = dev_suite(id);
    dev_pskey(id, psk, mtcsec_suite_get(suite)->keylen);
    if (mtcsec_sqlite_device_add(st, id, DH_MTCS_ID, suite, psk, "test",
                                 NULL) != 0) {
      dh_die("device_add: %s", mtcsec_sqlite_errmsg(st));
    }
    if (memcmp(id, DH_DEV_N, 8) != 0 &&
        mtcsec_sqlite_grant_set(st, DH_UEID, id, NULL,
                                memcmp(id, DH_DEV_R, 8) == 0 ? 0x01 : 0x0f,
                                3600, 0, 0) != 0) {
      dh_die("grant_set: %s", mtcsec_sqlite_errmsg(st));
    }
  }
  if (mtcsec_sqlite_device_disable(st, DH_DEV_D, 1) != 0 ||
      mtcsec_sqlite_relay_add(st, DH_GW_OK, "gw ok") != 0 ||
      mtcsec_sqlite_relay_add(st, DH_GW_BAD, "gw bad") != 0 ||
      mtcsec_sqlite_relay_allow(st, DH_GW_OK, DH_DEV_A, NULL) != 0) {
    dh_die("admin: %s", mtcsec_sqlite_errmsg(st));
  }
  mtcsec_sqlite_close(st);
}

/* Nonzero if extra (lines "key = value") sets key. */
static int extra_sets(const char *extra, const char *key) {
  size_t kl = strlen(key);
  const char *p = extra;
  while (p != NULL && *p != '\0') {
    if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '=')) {
      return 1;
    }
    p = strchr(p, '\n');
    p = p != NULL ? p + 1 : NULL;
  }
  return 0;
}

void dh_write_config(dh_env *e, const char *extra) {
  /* Defaults; a key that extra sets is left to extra (mtcsd refuses a key
   * set twice). */
  static const char *const defaults[][2] = {{"mtcs_id", "5e00000000000001"},
                                            {"listen", "127.0.0.1:0"},
                                            {"metrics_listen", "127.0.0.1:0"},
                                            {"crl", "crl.pem"},
                                            {"workers", "2"},
                                            {"idle_timeout", "1"},
                                            {"commit_max_delay_ms", "1"},
                                            {"shutdown_timeout", "10"}};
  size_t i;
  FILE *f = fopen(e->conf, "w");
  if (f == NULL) {
    dh_die("cannot write %s", e->conf);
  }
  fputs("# mtcsd test configuration\n", f);
  for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
    if (extra == NULL || !extra_sets(extra, defaults[i][0])) {
      fprintf(f, "%s = %s\n", defaults[i][0], defaults[i][1]);
    }
  }
  if (extra != NULL) {
    fputs(extra, f);
  }
  fclose(f);
}

void dh_env_create(dh_env *e, const char *extra) {
  const char *tmp = getenv("TMPDIR");
  int i;
  memset(e, 0, sizeof(*e));
  snprintf(e->dir, sizeof(e->dir), "%s/mtcsd-test-XXXXXX",
           tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
  if (mkdtemp(e->dir) == NULL) {
    dh_die("mkdtemp: %s", strerror(errno));
  }
  for (i = 0; i < DH_MAX_ENVS; i++) {
    if (dh_envs[i] == NULL) {
      dh_envs[i] = e;
      break;
    }
  }
  snprintf(e->conf, sizeof(e->conf), "%s/mtcsd.conf", e->dir);
  snprintf(e->db, sizeof(e->db), "%s/mtcsd.db", e->dir);
  pki_make(e->dir);
  provision(e);
  dh_write_config(e, extra);
}

void dh_env_destroy(dh_env *e) {
  int i;
  if (e->pid > 0) {
    kill(e->pid, SIGKILL);
    waitpid(e->pid, NULL, 0);
    e->pid = 0;
  }
  if (getenv("MTCSD_TEST_KEEP") == NULL) {
    rm_rf(e->dir);
  } else if (e->dir[0] != '\0') {
    fprintf(stderr, "harness: kept %s\n", e->dir);
  }
  e->dir[0] = '\0';
  for (i = 0; i < DH_MAX_ENVS; i++) {
    if (dh_envs[i] == e) {
      dh_envs[i] = NULL;
    }
  }
}

/* -------------------------------------------------------------- process */

static char *read_log(const char *path) {
  size_t len;
  return app_read_file(path, 64u << 20, &len);
}

/* Copies the value after key (up to a space or newline) into out. */
static int log_value(const char *text, const char *key, char *out,
                     size_t outlen) {
  const char *p = strstr(text, key), *q;
  if (p == NULL) {
    return -1;
  }
  p += strlen(key);
  q = p + strcspn(p, " \n");
  if ((size_t)(q - p) >= outlen) {
    return -1;
  }
  memcpy(out, p, (size_t)(q - p));
  out[q - p] = '\0';
  return 0;
}

static pid_t spawn(dh_env *e, const char *const *args, const char *log) {
  pid_t pid = fork();
  if (pid < 0) {
    dh_die("fork: %s", strerror(errno));
  }
  if (pid == 0) {
    const char *argv[16];
    int n = 0, fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
      _exit(126);
    }
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    signal(SIGPIPE, SIG_DFL);
    argv[n++] = "mtcsd";
    while (args != NULL && *args != NULL && n < 15) {
      argv[n++] = *args++;
    }
    argv[n] = NULL;
    execv(dh_mtcsd_path, (char *const *)argv);
    _exit(127);
  }
  (void)e;
  return pid;
}

static int status_of(int st) {
  if (WIFEXITED(st)) {
    return WEXITSTATUS(st);
  }
  if (WIFSIGNALED(st)) {
    return 128 + WTERMSIG(st);
  }
  return -1;
}

int dh_start(dh_env *e) {
  const char *args[] = {"-c", e->conf, NULL};
  uint64_t until = dh_now_ms() + 10000;
  e->starts++;
  snprintf(e->log, sizeof(e->log), "%s/mtcsd-%d.log", e->dir, e->starts);
  e->pid = spawn(e, args, e->log);
  while (dh_now_ms() < until) {
    int st;
    char *text;
    if (waitpid(e->pid, &st, WNOHANG) == e->pid) {
      e->pid = 0;
      return status_of(st) > 0 ? status_of(st) : 1;
    }
    text = read_log(e->log);
    if (text != NULL && strstr(text, "event=ready") != NULL) {
      log_value(text, "event=listening addr=", e->addr, sizeof(e->addr));
      log_value(text, "event=metrics_listening addr=", e->metrics_addr,
                sizeof(e->metrics_addr));
      free(text);
      return 0;
    }
    free(text);
    dh_sleep_ms(10);
  }
  return -1;
}

int dh_run(dh_env *e, const char *const *args, char *out, size_t outlen) {
  char log[340];
  uint64_t until = dh_now_ms() + 10000;
  pid_t pid;
  snprintf(log, sizeof(log), "%s/run.log", e->dir);
  pid = spawn(e, args, log);
  while (dh_now_ms() < until) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      char *text = read_log(log);
      snprintf(out, outlen, "%s", text != NULL ? text : "");
      free(text);
      return status_of(st);
    }
    dh_sleep_ms(10);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  snprintf(out, outlen, "(timeout)");
  return -1;
}

int dh_stop(dh_env *e, int sig, int timeout_ms) {
  uint64_t until = dh_now_ms() + (uint64_t)timeout_ms;
  if (e->pid <= 0) {
    return -1;
  }
  kill(e->pid, sig);
  while (dh_now_ms() < until) {
    int st;
    if (waitpid(e->pid, &st, WNOHANG) == e->pid) {
      e->pid = 0;
      return status_of(st);
    }
    dh_sleep_ms(5);
  }
  kill(e->pid, SIGKILL);
  waitpid(e->pid, NULL, 0);
  e->pid = 0;
  return -1;
}

int dh_wait_log(dh_env *e, const char *needle, int timeout_ms) {
  uint64_t until = dh_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    char *text = read_log(e->log);
    int found = text != NULL && strstr(text, needle) != NULL;
    free(text);
    if (found) {
      return 0;
    }
    if (dh_now_ms() >= until) {
      return -1;
    }
    dh_sleep_ms(10);
  }
}

int dh_log_count(dh_env *e, const char *needle) {
  char *text = read_log(e->log);
  const char *p = text;
  int n = 0;
  while (p != NULL && (p = strstr(p, needle)) != NULL) {
    n++;
    p += strlen(needle);
  }
  free(text);
  return n;
}

static int fd_timeouts(int fd, int ms) {
  struct timeval tv;
  int fl = fcntl(fd, F_GETFL);
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
    return -1;
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return 0;
}

long long dh_metric(dh_env *e, const char *sample) {
  char err[256], *text = NULL, line[256];
  size_t n = 0, cap = 0;
  const char *p;
  long long v = -1;
  int fd = app_tcp_connect(e->metrics_addr, err, sizeof(err));
  static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
  if (fd < 0 || fd_timeouts(fd, 3000) != 0 ||
      send(fd, req, sizeof(req) - 1, 0) != (ssize_t)(sizeof(req) - 1)) {
    if (fd >= 0) {
      close(fd);
    }
    return -1;
  }
  for (;;) {
    ssize_t r;
    if (cap - n < 4096) {
      cap = cap ? cap * 2 : 16384;
      text = realloc(text, cap);
    }
    r = recv(fd, text + n, cap - n - 1, 0);
    if (r <= 0) {
      break;
    }
    n += (size_t)r;
  }
  close(fd);
  if (text == NULL) {
    return -1;
  }
  text[n] = '\0';
  snprintf(line, sizeof(line), "\n%s ", sample);
  p = strstr(text, line);
  if (p != NULL) {
    v = strtoll(p + strlen(line), NULL, 10);
  }
  free(text);
  return v;
}

/* --------------------------------------------------------------- client */

int dh_connect_tcp(dh_env *e, dh_client *c) {
  char err[256];
  int one = 1;
  memset(c, 0, sizeof(*c));
  c->fd = app_tcp_connect(e->addr, err, sizeof(err));
  if (c->fd < 0 || fd_timeouts(c->fd, 5000) != 0) {
    fprintf(stderr, "connect: %s\n", err);
    return -1;
  }
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return 0;
}

int dh_connect(dh_env *e, dh_client *c, int which) {
  static const char *const names[] = {"ues/0e00000000000042", "client-other-ca",
                                      "client-expired",       "client-bad-cn",
                                      "client-two-cn",        "client-no-cn",
                                      "client-revoked",       NULL};
  char cert[400], key[400], ca[400], err[512];
  int r;

  if (dh_connect_tcp(e, c) != 0) {
    return -1;
  }
  snprintf(ca, sizeof(ca), "%s/ca.pem", e->dir);
  if (which == DH_CERT_NONE) {
    c->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION);
    SSL_CTX_load_verify_locations(c->ctx, ca, NULL);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
  } else {
    snprintf(cert, sizeof(cert), "%s/%s.pem", e->dir, names[which]);
    snprintf(key, sizeof(key), "%s/%s.key", e->dir, names[which]);
    c->ctx = app_tls_client_ctx(cert, key, ca, err, sizeof(err));
    if (c->ctx == NULL) {
      dh_die("client ctx: %s", err);
    }
  }
  c->ssl = SSL_new(c->ctx);
  SSL_set_fd(c->ssl, c->fd);
  ERR_clear_error();
  r = SSL_connect(c->ssl);
  if (r != 1) {
    ERR_clear_error();
    return -1;
  }
  return 0;
}

void dh_close(dh_client *c) {
  if (c->ssl != NULL) {
    SSL_free(c->ssl);
  }
  if (c->ctx != NULL) {
    SSL_CTX_free(c->ctx);
  }
  if (c->fd > 0) {
    close(c->fd);
  }
  memset(c, 0, sizeof(*c));
  c->fd = -1;
}

int dh_send(dh_client *c, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    int w;
    ERR_clear_error();
    w = SSL_write(c->ssl, b, (int)n);
    if (w <= 0) {
      ERR_clear_error();
      return -1;
    }
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

int dh_send_m2(dh_client *c, uint32_t req_id, const uint8_t *m1, size_t len) {
  uint8_t f[MTCSEC_FRAME_HDR_LEN + MTCSEC_HS_MAX_LEN];
  mtcsec_ssize n =
    mtcsec_frame_encode(f, sizeof(f), MTCSEC_MSG_M2, req_id, m1, len);
  if (n < 0) {
    return -1;
  }
  return dh_send(c, f, (size_t)n);
}

int dh_recv(dh_client *c, uint8_t *type, uint32_t *req_id, const uint8_t **body,
            size_t *bodylen, int timeout_ms) {
  uint64_t until = dh_now_ms() + (uint64_t)timeout_ms;
  if (c->consumed > 0) {
    memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
    c->len -= c->consumed;
    c->consumed = 0;
  }
  for (;;) {
    int r;
    if (c->len >= 2) {
      size_t flen = 2 + (((size_t)c->buf[0] << 8) | c->buf[1]);
      if (flen < 7) {
        return -1;
      }
      if (c->len >= flen) {
        *type = c->buf[2];
        *req_id = ((uint32_t)c->buf[3] << 24) | ((uint32_t)c->buf[4] << 16) |
                  ((uint32_t)c->buf[5] << 8) | c->buf[6];
        *body = c->buf + 7;
        *bodylen = flen - 7;
        c->consumed = flen;
        return 1;
      }
    }
    if (SSL_pending(c->ssl) == 0) {
      struct pollfd p;
      int64_t left = (int64_t)until - (int64_t)dh_now_ms();
      if (left <= 0) {
        return -2;
      }
      p.fd = c->fd;
      p.events = POLLIN;
      p.revents = 0;
      r = poll(&p, 1, (int)left);
      if (r == 0) {
        return -2;
      }
      if (r < 0) {
        return -1;
      }
    }
    ERR_clear_error();
    r = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
    if (r <= 0) {
      int err = SSL_get_error(c->ssl, r);
      ERR_clear_error();
      if (err == SSL_ERROR_WANT_READ ||
          (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EINTR))) {
        if (dh_now_ms() >= until) {
          return -2;
        }
        continue;
      }
      return 0;
    }
    c->len += (size_t)r;
  }
}

int dh_wait_closed(dh_client *c, int timeout_ms) {
  uint8_t type;
  uint32_t req;
  const uint8_t *body;
  size_t bl;
  int r = dh_recv(c, &type, &req, &body, &bl, timeout_ms);
  return r == 1 ? 1 : r;
}
