/*
 * Helpers shared by the administration subcommands: see cli_util.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "cli_util.h"

/* ------------------------------------------------------------ messages */

void cli_err(const char *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "mtcsec %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int cli_is_help(const char *s) {
  return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0;
}

int cli_bad_option(const char *cmd, char **argv, int ch) {
  const char *opt = optind > 0 ? argv[optind - 1] : "?";
  if (ch == ':') {
    cli_err(cmd, "option '%s' needs a value; see 'mtcsec %s --help'", opt, cmd);
  } else if (optopt != 0) {
    cli_err(cmd, "unknown option '-%c'; see 'mtcsec %s --help'", optopt, cmd);
  } else {
    cli_err(cmd, "unknown option '%s'; see 'mtcsec %s --help'", opt, cmd);
  }
  return CLI_USAGE;
}

int cli_usage_error(const char *cmd, const char *usage, const char *why) {
  if (why != NULL) {
    cli_err(cmd, "%s", why);
  }
  fprintf(stderr, "usage: %s\nSee 'mtcsec %s --help'.\n", usage, cmd);
  return CLI_USAGE;
}

int cli_exit_for(int err) {
  switch (err) {
  case MTCSEC_OK:
    return CLI_OK;
  case MTCSEC_ERR_NOT_FOUND:
    return CLI_NOTFOUND;
  case MTCSEC_ERR_INVALID_ARGUMENT:
    return CLI_USAGE;
  case MTCSEC_ERR_INVALID_STATE:
  case MTCSEC_ERR_BUSY:
    return CLI_FAILED;
  default:
    return CLI_INTERNAL;
  }
}

/* ------------------------------------------------------------- parsing */

int cli_parse_id(const char *cmd, const char *what, const char *s,
                 uint8_t id[MTCSEC_ID_LEN]) {
  if (app_parse_id(s, id) != 0) {
    cli_err(cmd, "%s '%s' is not 16 hex digits (e.g. 0200000000000001)", what,
            s);
    return CLI_USAGE;
  }
  return CLI_OK;
}

int cli_parse_target(const char *cmd, const char *s, uint8_t dev[MTCSEC_ID_LEN],
                     const char **group, int *is_group) {
  size_t i, n;
  if (s[0] == '@') {
    n = strlen(s + 1);
    if (n == 0 || n > 63) {
      cli_err(cmd, "group '%s' must be @NAME with 1 to 63 characters", s);
      return CLI_USAGE;
    }
    for (i = 1; s[i] != '\0'; i++) {
      if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
        cli_err(cmd, "group '%s' may hold printable ASCII only", s);
        return CLI_USAGE;
      }
    }
    *group = s + 1;
    *is_group = 1;
    return CLI_OK;
  }
  *group = NULL;
  *is_group = 0;
  if (app_parse_id(s, dev) != 0) {
    cli_err(cmd,
            "'%s' is neither a device ID (16 hex digits) nor a group "
            "(@NAME)",
            s);
    return CLI_USAGE;
  }
  return CLI_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  int64_t era;
  unsigned yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (unsigned)(y - era * 400);
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int read_digits(const char *s, size_t n, unsigned *out) {
  size_t i;
  unsigned v = 0;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return -1;
    }
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  *out = v;
  return 0;
}

int cli_parse_date(const char *s, int64_t *out) {
  static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31};
  unsigned y, mo, d, h = 0, mi = 0, se = 0;
  size_t n = strlen(s), i;
  int leap;

  if (n > 0 && n <= 12 && strspn(s, "0123456789") == n) {
    int64_t v = 0;
    for (i = 0; i < n; i++) {
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
  }
  if (n != 10 && n != 20) {
    return -1;
  }
  if (read_digits(s, 4, &y) != 0 || s[4] != '-' ||
      read_digits(s + 5, 2, &mo) != 0 || s[7] != '-' ||
      read_digits(s + 8, 2, &d) != 0) {
    return -1;
  }
  if (n == 20) {
    if (s[10] != 'T' || read_digits(s + 11, 2, &h) != 0 || s[13] != ':' ||
        read_digits(s + 14, 2, &mi) != 0 || s[16] != ':' ||
        read_digits(s + 17, 2, &se) != 0 || s[19] != 'Z') {
      return -1;
    }
  }
  leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
      (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || se > 59) {
    return -1;
  }
  *out = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 +
         (int64_t)mi * 60 + (int64_t)se;
  return 0;
}

char *cli_format_date(char out[21], int64_t t) {
  struct tm tm;
  time_t tt = (time_t)t;
  if (gmtime_r(&tt, &tm) == NULL ||
      strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    snprintf(out, 21, "%lld", (long long)t);
  }
  return out;
}

int cli_join(char *out, size_t outlen, const char *dir, const char *name) {
  int n;
  if (name[0] == '/') {
    n = snprintf(out, outlen, "%s", name);
  } else {
    n = snprintf(out, outlen, "%s/%s", dir, name);
  }
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int cli_mkdir(const char *path, unsigned mode) {
  struct stat sb;
  if (mkdir(path, (mode_t)mode) == 0) {
    return 0;
  }
  if (errno == EEXIST && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    return 0;
  }
  if (errno == EEXIST) {
    errno = ENOTDIR;
  }
  return -1;
}

const char *cli_who(void) {
  static char buf[64];
  struct passwd *pw = getpwuid(geteuid());
  if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0') {
    snprintf(buf, sizeof(buf), "%s", pw->pw_name);
  } else {
    snprintf(buf, sizeof(buf), "uid=%lu", (unsigned long)geteuid());
  }
  return buf;
}

/* --------------------------------------------------------- mtcsd.conf */

typedef struct conf_check {
  const cli_env *e;
  int rv;
} conf_check;

static int conf_check_key(void *ud, const char *key, const char *value,
                          int line) {
  conf_check *cc = ud;
  (void)value;
  if (app_mtcsd_key(key) != NULL) {
    return 0;
  }
  cli_err(cc->e->cmd,
          "%s:%d: unknown key '%s'; the keys are listed in mtcsec(1) and "
          "docs/OPERATIONS.md",
          cc->e->conf_path, line, key);
  cc->rv = CLI_CONFIG;
  return 1;
}

/* The value of key in c, else its default. */
static const char *conf_value(const app_config *c, const char *key) {
  const char *v = app_config_get(c, key);
  const app_conf_key *k;
  if (v != NULL) {
    return v;
  }
  k = app_mtcsd_key(key);
  return k != NULL ? k->def : NULL;
}

/* ------------------------------------------------------- the state dir */

int cli_env_path(const cli_env *e, char *out, size_t outlen, const char *name) {
  if (cli_join(out, outlen, e->dir, name) != 0) {
    cli_err(e->cmd, "path too long: %s/%s", e->dir, name);
    return CLI_INTERNAL;
  }
  return CLI_OK;
}

int cli_load_kek(const char *cmd, const char *path,
                 uint8_t kek[MTCSEC_KEK_LEN]) {
  char err[512];
  int rv;
  /* mtcsec_kek_load refuses a group- or world-accessible file and says
   * what to do (chmod 600). */
  err[0] = '\0';
  rv = mtcsec_kek_load(path, kek, err, sizeof(err));
  if (rv != 0) {
    cli_err(cmd, "%s", err[0] != '\0' ? err : mtcsec_strerror(rv));
    return CLI_CONFIG;
  }
  return CLI_OK;
}

static int env_resolve(cli_env *e, const app_config *c, const char *key,
                       char *out) {
  const char *v = conf_value(c, key);
  if (v == NULL || v[0] == '\0') {
    cli_err(e->cmd, "%s: '%s' must not be empty", e->conf_path, key);
    return CLI_CONFIG;
  }
  return cli_env_path(e, out, CLI_PATH_MAX, v);
}

int cli_env_open(cli_env *e, const char *cmd, int flags) {
  app_config *c = NULL;
  conf_check cc;
  struct stat sb;
  char err[256];
  uint8_t kek[MTCSEC_KEK_LEN];
  const char *v;
  int rv;

  memset(e, 0, sizeof(*e));
  e->cmd = cmd;
  if (strlen(cli_dir()) >= sizeof(e->dir) ||
      cli_join(e->conf_path, sizeof(e->conf_path), cli_dir(), "mtcsd.conf") !=
        0) {
    cli_err(cmd, "state directory path too long");
    return CLI_USAGE;
  }
  snprintf(e->dir, sizeof(e->dir), "%s", cli_dir());
  if (stat(e->conf_path, &sb) != 0) {
    int saved = errno;
    if (stat(e->dir, &sb) != 0) {
      cli_err(cmd,
              "no state directory '%s'; create one with 'mtcsec init %s', or "
              "name it with -d DIR or MTCSEC_DIR",
              e->dir, e->dir);
    } else {
      cli_err(cmd, "'%s' is not a state directory (%s: %s); see 'mtcsec init'",
              e->dir, e->conf_path, strerror(saved));
    }
    return CLI_CONFIG;
  }
  err[0] = '\0';
  c = app_config_load(e->conf_path, err, sizeof(err));
  if (c == NULL) {
    cli_err(cmd, "%s", err[0] != '\0' ? err : "cannot read mtcsd.conf");
    return CLI_CONFIG;
  }
  cc.e = e;
  cc.rv = CLI_OK;
  app_config_foreach(c, conf_check_key, &cc);
  rv = cc.rv;
  if (rv != CLI_OK) {
    goto cleanup;
  }
  v = app_config_get(c, "mtcs_id");
  if (v == NULL || app_parse_id(v, e->mtcs_id) != 0) {
    cli_err(cmd, "%s: 'mtcs_id' must be set to 16 hex digits", e->conf_path);
    rv = CLI_CONFIG;
    goto cleanup;
  }
  if ((rv = env_resolve(e, c, "database", e->db_path)) != CLI_OK ||
      (rv = env_resolve(e, c, "kek_file", e->kek_path)) != CLI_OK ||
      (rv = env_resolve(e, c, "ca", e->ca_path)) != CLI_OK) {
    goto cleanup;
  }
  if (mtcsec_crypto_openssl_new(&e->crypto) != 0) {
    mtcsec_crypto_openssl_del(&e->crypto);
    cli_err(cmd, "cannot initialize the OpenSSL provider");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  e->have_crypto = 1;
  if (flags & CLI_ENV_NOSTORE) {
    rv = CLI_OK;
    goto cleanup;
  }
  if (stat(e->db_path, &sb) != 0) {
    cli_err(cmd, "cannot open the database %s: %s; 'mtcsec init' creates it",
            e->db_path, strerror(errno));
    rv = CLI_CONFIG;
    goto cleanup;
  }
  rv = cli_load_kek(cmd, e->kek_path, kek);
  if (rv != CLI_OK) {
    goto cleanup;
  }
  err[0] = '\0';
  rv = mtcsec_sqlite_open(
    &e->st, e->db_path, kek, &e->crypto,
    (flags & CLI_ENV_READONLY) ? MTCSEC_SQLITE_READONLY : 0, err, sizeof(err));
  mtcsec_zeroize(kek, sizeof(kek));
  if (rv != 0) {
    e->st = NULL;
    cli_err(cmd, "%s", err[0] != '\0' ? err : mtcsec_strerror(rv));
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  rv = CLI_OK;

cleanup:
  app_config_free(c);
  if (rv != CLI_OK) {
    cli_env_close(e);
  }
  return rv;
}

void cli_env_close(cli_env *e) {
  if (e->st != NULL) {
    mtcsec_sqlite_close(e->st);
    e->st = NULL;
  }
  if (e->have_crypto) {
    mtcsec_crypto_openssl_del(&e->crypto);
    e->have_crypto = 0;
  }
}

int cli_audit(cli_env *e, const char *action, const uint8_t *subject_id,
              const char *subject, const char *detail) {
  char idhex[17];
  int rv;
  if (subject_id != NULL) {
    subject = app_format_id(idhex, subject_id);
  }
  rv = mtcsec_sqlite_audit(e->st, cli_who(), action,
                           subject != NULL ? subject : "",
                           detail != NULL ? detail : "");
  if (rv != 0) {
    cli_err(e->cmd, "warning: done, but the audit entry was not written: %s",
            mtcsec_sqlite_errmsg(e->st));
    return CLI_INTERNAL;
  }
  return CLI_OK;
}

int cli_random_id(cli_env *e, uint8_t id[MTCSEC_ID_LEN]) {
  static const uint8_t zero[MTCSEC_ID_LEN];
  do {
    if (e->crypto.ops->random(e->crypto.ctx, id, MTCSEC_ID_LEN) != 0) {
      cli_err(e->cmd, "the random generator failed");
      return CLI_INTERNAL;
    }
  } while (memcmp(id, zero, MTCSEC_ID_LEN) == 0);
  return CLI_OK;
}

/* ---------------------------------------------------------------- X.509 */

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
  int ok;
  if (ext == NULL) {
    return -1;
  }
  ok = X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? 0 : -1;
}

static void openssl_error(const char *cmd, const char *what) {
  unsigned long e = ERR_get_error();
  char buf[256];
  if (e != 0) {
    ERR_error_string_n(e, buf, sizeof(buf));
    cli_err(cmd, "%s: %s", what, buf);
  } else {
    cli_err(cmd, "%s", what);
  }
  ERR_clear_error();
}

int cli_issue_cert(cli_env *e, const cli_cert_spec *spec, EVP_PKEY **pkey,
                   X509 **pcert) {
  int rv = CLI_INTERNAL;
  EVP_PKEY *key = NULL;
  X509 *x = NULL, *issuer;
  EVP_PKEY *ikey;
  BIGNUM *bn = NULL;
  uint8_t serial[16];
  X509V3_CTX ctx;

  *pkey = NULL;
  *pcert = NULL;
  key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if (key == NULL) {
    openssl_error(e->cmd, "cannot generate an ECDSA P-256 key");
    goto cleanup;
  }
  if (e->crypto.ops->random(e->crypto.ctx, serial, sizeof(serial)) != 0) {
    cli_err(e->cmd, "the random generator failed");
    goto cleanup;
  }
  /* Positive and exactly 16 bytes long (RFC 5280 4.1.2.2). */
  serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
  x = X509_new();
  bn = BN_bin2bn(serial, (int)sizeof(serial), NULL);
  issuer = spec->issuer != NULL ? spec->issuer : x;
  ikey = spec->issuer_key != NULL ? spec->issuer_key : key;
  if (x == NULL || bn == NULL ||
      BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
      X509_set_version(x, X509_VERSION_3) != 1 ||
      /* a little slack for clocks that run behind */
      X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
      X509_time_adj_ex(X509_getm_notAfter(x), spec->days, 0, NULL) == NULL ||
      X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                 (const unsigned char *)spec->cn, -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1 ||
      X509_set_pubkey(x, key) != 1) {
    openssl_error(e->cmd, "cannot build the certificate");
    goto cleanup;
  }
  X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
  if (add_ext(x, &ctx, NID_basic_constraints,
              spec->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") != 0 ||
      add_ext(x, &ctx, NID_key_usage,
              spec->is_ca ? "critical,keyCertSign,cRLSign"
                          : "critical,digitalSignature") != 0 ||
      (spec->eku != NULL &&
       add_ext(x, &ctx, NID_ext_key_usage, spec->eku) != 0) ||
      (spec->san != NULL &&
       add_ext(x, &ctx, NID_subject_alt_name, spec->san) != 0) ||
      add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
      add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0) {
    openssl_error(e->cmd, "cannot add the certificate extensions");
    goto cleanup;
  }
  if (X509_sign(x, ikey, EVP_sha256()) <= 0) {
    openssl_error(e->cmd, "cannot sign the certificate");
    goto cleanup;
  }
  *pkey = key;
  *pcert = x;
  key = NULL;
  x = NULL;
  rv = CLI_OK;

cleanup:
  BN_free(bn);
  X509_free(x);
  EVP_PKEY_free(key);
  return rv;
}

/* Writes what a PEM writer put into a memory BIO, then wipes it. */
static int write_bio(const char *cmd, const char *path, BIO *b, unsigned mode) {
  char *data = NULL;
  long n = BIO_get_mem_data(b, &data);
  int rv = CLI_OK;
  if (n <= 0 || data == NULL) {
    openssl_error(cmd, "cannot encode PEM");
    return CLI_INTERNAL;
  }
  if (app_write_file_atomic(path, data, (size_t)n, mode) != 0) {
    cli_err(cmd, "cannot write %s: %s", path, strerror(errno));
    rv = CLI_INTERNAL;
  }
  OPENSSL_cleanse(data, (size_t)n);
  return rv;
}

int cli_write_cert(const char *cmd, const char *path, X509 *cert) {
  BIO *b = BIO_new(BIO_s_mem());
  int rv;
  if (b == NULL || PEM_write_bio_X509(b, cert) != 1) {
    BIO_free(b);
    openssl_error(cmd, "cannot encode the certificate");
    return CLI_INTERNAL;
  }
  rv = write_bio(cmd, path, b, 0644);
  BIO_free(b);
  return rv;
}

int cli_write_key(const char *cmd, const char *path, EVP_PKEY *key) {
  BIO *b = BIO_new(BIO_s_secmem());
  int rv;
  if (b == NULL ||
      PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1) {
    BIO_free(b);
    openssl_error(cmd, "cannot encode the private key");
    return CLI_INTERNAL;
  }
  rv = write_bio(cmd, path, b, 0600);
  BIO_free(b);
  return rv;
}

static BIO *open_pem(const char *cmd, const char *path, int *rv) {
  BIO *b = BIO_new_file(path, "r");
  if (b == NULL) {
    int saved = errno;
    ERR_clear_error();
    cli_err(cmd, "cannot read %s: %s", path,
            saved != 0 ? strerror(saved) : "unknown error");
    *rv = saved == ENOENT ? CLI_NOTFOUND : CLI_CONFIG;
  }
  return b;
}

int cli_read_cert(const char *cmd, const char *path, X509 **cert) {
  int rv = CLI_CONFIG;
  BIO *b = open_pem(cmd, path, &rv);
  if (b == NULL) {
    return rv;
  }
  *cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
  BIO_free(b);
  if (*cert == NULL) {
    openssl_error(cmd, "not a PEM certificate");
    cli_err(cmd, "check %s", path);
    return CLI_CONFIG;
  }
  return CLI_OK;
}

int cli_read_key(const char *cmd, const char *path, EVP_PKEY **key) {
  int rv = CLI_CONFIG;
  BIO *b = open_pem(cmd, path, &rv);
  if (b == NULL) {
    return rv;
  }
  *key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  BIO_free(b);
  if (*key == NULL) {
    openssl_error(cmd, "not a PEM private key");
    cli_err(cmd, "check %s", path);
    return CLI_CONFIG;
  }
  return CLI_OK;
}

int cli_load_ca(cli_env *e, X509 **ca, EVP_PKEY **ca_key) {
  char cakeyp[CLI_PATH_MAX];
  int rv;

  *ca = NULL;
  *ca_key = NULL;
  if ((rv = cli_env_path(e, cakeyp, sizeof(cakeyp), "ca.key")) != CLI_OK ||
      (rv = cli_read_cert(e->cmd, e->ca_path, ca)) != CLI_OK ||
      (rv = cli_read_key(e->cmd, cakeyp, ca_key)) != CLI_OK) {
    goto fail;
  }
  if (X509_check_private_key(*ca, *ca_key) != 1) {
    cli_err(e->cmd, "%s does not belong to %s", cakeyp, e->ca_path);
    rv = CLI_CONFIG;
    goto fail;
  }
  return CLI_OK;

fail:
  EVP_PKEY_free(*ca_key);
  X509_free(*ca);
  *ca_key = NULL;
  *ca = NULL;
  return rv;
}

int cli_issue_pair(cli_env *e, const cli_cert_spec *spec, const char *key_name,
                   const char *cert_name, EVP_PKEY **pkey, X509 **pcert) {
  char kp[CLI_PATH_MAX], cp[CLI_PATH_MAX];
  int rv;
  if ((rv = cli_env_path(e, kp, sizeof(kp), key_name)) != CLI_OK ||
      (rv = cli_env_path(e, cp, sizeof(cp), cert_name)) != CLI_OK ||
      (rv = cli_issue_cert(e, spec, pkey, pcert)) != CLI_OK ||
      (rv = cli_write_key(e->cmd, kp, *pkey)) != CLI_OK ||
      (rv = cli_write_cert(e->cmd, cp, *pcert)) != CLI_OK) {
    return rv;
  }
  return CLI_OK;
}

/* Issues the certificate of cli_add_client(), in an opened state dir. */
static int add_client_cert(cli_env *e, const char *subdir, const char *who,
                           uint8_t id[MTCSEC_ID_LEN], int given, int days) {
  char idhex[17], keyn[64], certn[64], dirp[CLI_PATH_MAX];
  char keyp[CLI_PATH_MAX], certp[CLI_PATH_MAX], detail[64];
  EVP_PKEY *ca_key = NULL, *key = NULL;
  X509 *ca = NULL, *cert = NULL;
  cli_cert_spec spec;
  struct stat sb;
  int rv;

  if ((rv = cli_env_path(e, dirp, sizeof(dirp), subdir)) != CLI_OK) {
    return rv;
  }
  if (cli_mkdir(dirp, 0755) != 0) {
    cli_err(e->cmd, "cannot create %s: %s", dirp, strerror(errno));
    return CLI_CONFIG;
  }
  /* A given ID must be free; a random one is drawn again until it is. */
  for (;;) {
    if (!given && (rv = cli_random_id(e, id)) != CLI_OK) {
      return rv;
    }
    app_format_id(idhex, id);
    snprintf(keyn, sizeof(keyn), "%.40s/%s.key", subdir, idhex);
    snprintf(certn, sizeof(certn), "%.40s/%s.pem", subdir, idhex);
    if ((rv = cli_env_path(e, keyp, sizeof(keyp), keyn)) != CLI_OK ||
        (rv = cli_env_path(e, certp, sizeof(certp), certn)) != CLI_OK) {
      return rv;
    }
    if (stat(keyp, &sb) != 0 && stat(certp, &sb) != 0) {
      break;
    }
    if (given) {
      cli_err(e->cmd,
              "%s %s has a certificate already (%s); remove its files "
              "first to issue a new one",
              who, idhex, certp);
      return CLI_FAILED;
    }
  }
  if ((rv = cli_load_ca(e, &ca, &ca_key)) != CLI_OK) {
    return rv;
  }
  memset(&spec, 0, sizeof(spec));
  spec.cn = idhex; /* the ID as 16 hex digits: PROTOCOL.md section 1 (UEs),
                      CELLULAR-SYSTEM.md section 3 (GGSNs) */
  spec.days = days;
  spec.eku = "clientAuth";
  spec.issuer = ca;
  spec.issuer_key = ca_key;
  if ((rv = cli_issue_pair(e, &spec, keyn, certn, &key, &cert)) != CLI_OK) {
    goto cleanup;
  }
  snprintf(detail, sizeof(detail), "clientAuth certificate, %d days", days);
  cli_audit(e, e->cmd, id, NULL, detail);
  printf("%s\n%s\n", certp, keyp);
  rv = CLI_OK;

cleanup:
  EVP_PKEY_free(key);
  EVP_PKEY_free(ca_key);
  X509_free(cert);
  X509_free(ca);
  return rv;
}

int cli_add_client(int argc, char **argv, const cli_client_kind *k) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  uint8_t id[MTCSEC_ID_LEN];
  int ch, rv, given = 0;
  cli_env e;

  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    if (ch == 'h') {
      k->help(stdout);
      return CLI_OK;
    }
    return cli_bad_option(k->cmd, argv, ch);
  }
  if (argc - optind > 1) {
    return cli_usage_error(k->cmd, k->usage, "too many arguments");
  }
  if (optind < argc) {
    if ((rv = cli_parse_id(k->cmd, k->id_name, argv[optind], id)) != CLI_OK) {
      return rv;
    }
    given = 1;
  }
  if ((rv = cli_env_open(&e, k->cmd, 0)) != CLI_OK) {
    return rv;
  }
  rv = add_client_cert(&e, k->subdir, k->who, id, given, k->days);
  if (rv == CLI_OK && k->issued != NULL) {
    k->issued(&e, id);
  }
  cli_env_close(&e);
  return rv;
}

int cli_listen_san(const char *addr, int strict, char *out, size_t outlen) {
  static const char base[] = "DNS:localhost,IP:127.0.0.1,IP:::1";
  char host[256];
  const char *colon, *port;
  unsigned char buf[16];
  size_t n, pl;

  if (addr[0] == '[') {
    const char *close = strchr(addr, ']');
    if (close == NULL || close[1] != ':') {
      return CLI_USAGE;
    }
    n = (size_t)(close - addr - 1);
    colon = close + 1;
    if (n >= sizeof(host)) {
      return CLI_USAGE;
    }
    memcpy(host, addr + 1, n);
  } else {
    colon = strrchr(addr, ':');
    if (colon == NULL ||
        (strict && memchr(addr, ':', (size_t)(colon - addr)) != NULL)) {
      return CLI_USAGE;
    }
    n = (size_t)(colon - addr);
    if (n >= sizeof(host)) {
      return CLI_USAGE;
    }
    memcpy(host, addr, n);
  }
  host[n] = '\0';
  port = colon + 1;
  pl = strlen(port);
  if (pl == 0 || pl > 5 || strspn(port, "0123456789") != pl ||
      atoi(port) > 65535) {
    return CLI_USAGE;
  }
  snprintf(out, outlen, "%s", base);
  if (n == 0 || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
      (!strict && strcmp(host, "*") == 0) || strcmp(host, "localhost") == 0 ||
      strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0) {
    return CLI_OK;
  }
  if (inet_pton(AF_INET, host, buf) == 1 ||
      inet_pton(AF_INET6, host, buf) == 1) {
    snprintf(out, outlen, "%s,IP:%s", base, host);
    return CLI_OK;
  }
  /* A DNS name: letters, digits, '-' and '.' only (the value goes into an
   * OpenSSL extension string, where ',' would start another name). */
  if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789-.") != n) {
    return CLI_USAGE;
  }
  snprintf(out, outlen, "%s,DNS:%s", base, host);
  return CLI_OK;
}
