/*
 * `mtcsec hp init`: the home proxy's files in a state directory made by
 * `mtcsec init` (docs/CELLULAR-SYSTEM.md section 5), so that one tree runs
 * the whole cellular story: mtchpd.conf (this MTCsID as the one allowed
 * server, the same CA and KEK as mtcsd), mtchpd's TLS certificate
 * hp.pem/hp.key signed by the init CA, and an empty subscriber store
 * hlr.db (`mtcsec sub add` fills it).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cellular/auc_store.h"
#include "cli.h"
#include "cli_util.h"

#define HP_INIT_USAGE                                                          \
  "mtcsec hp init [--gsup-listen ADDR] [--kup-listen ADDR] [--force]"
#define HP_DAYS (2 * 365)
#define HP_GSUP_DEFAULT "127.0.0.1:4222"
#define HP_KUP_DEFAULT "127.0.0.1:4443"

static void hp_help(FILE *f) {
  fprintf(f,
          "usage: " HP_INIT_USAGE "\n"
          "\n"
          "init  writes the home proxy's files (mtchpd) into the state "
          "directory made by\n"
          "      'mtcsec init':\n"
          "        mtchpd.conf      allowed_servers = this MTCsID, ca = the "
          "init CA, the KEK\n"
          "                         of mtcsd, cert/key = hp.pem/hp.key, "
          "database = hlr.db\n"
          "        hp.pem, hp.key   mtchpd's TLS certificate (signed by the "
          "init CA, 2 years,\n"
          "                         serverAuth, SAN localhost, 127.0.0.1, "
          "::1 and the host\n"
          "                         of --kup-listen)\n"
          "        hlr.db           an empty subscriber store, unless one "
          "exists (never\n"
          "                         replaced; add subscribers with 'mtcsec "
          "sub add')\n"
          "\n"
          "Options:\n"
          "  --gsup-listen ADDR  GSUP/IPA listener for SGSNs "
          "(default " HP_GSUP_DEFAULT ")\n"
          "  --kup-listen ADDR   HTTPS K_UP listener for MTC servers "
          "(default " HP_KUP_DEFAULT ")\n"
          "  --force             replace mtchpd.conf, hp.pem and hp.key "
          "(hlr.db is kept)\n"
          "  -h, --help          this text\n"
          "\n"
          "Exit status: 0 done, 1 mtchpd.conf exists (see --force), 2 usage, "
          "3 no CA\nkey, 4 no state directory or a configuration problem, 5 "
          "internal error.\n");
}

/* The raw value of key in mtcsd.conf (relative paths stay relative: both
 * files live in the state directory), else its default. */
static void hp_conf_value(const char *conf_path, const char *key, char *out,
                          size_t outlen) {
  char err[256];
  app_config *c = app_config_load(conf_path, err, sizeof(err));
  const char *v = c != NULL ? app_config_get(c, key) : NULL;
  const app_conf_key *k = app_mtcsd_key(key);
  if (v == NULL) {
    v = k != NULL && k->def != NULL ? k->def : "";
  }
  snprintf(out, outlen, "%s", v);
  app_config_free(c);
}

static int hp_write_conf(cli_env *e, const char *path, const char *mtcs_hex,
                         const char *gsup, const char *kup) {
  char buf[2048], date[21], kek[CLI_PATH_MAX], ca[CLI_PATH_MAX];
  int n;

  hp_conf_value(e->conf_path, "kek_file", kek, sizeof(kek));
  hp_conf_value(e->conf_path, "ca", ca, sizeof(ca));
  n = snprintf(buf, sizeof(buf),
               "# mtchpd.conf: configuration of the home proxy (cellular "
               "mode).\n"
               "# Written by 'mtcsec hp init' on %s.\n"
               "# key = value; '#' starts a comment; relative paths are "
               "relative to\n"
               "# the directory of this file.  Every key: "
               "docs/CELLULAR-HOME-PROXY.md.\n"
               "\n# GSUP/IPA listener for SGSNs\ngsup_listen = %s\n"
               "\n# HTTPS K_UP listener for MTC servers\nkup_listen = %s\n"
               "\n# MTC servers allowed to get K_UP (this state directory's "
               "mtcsd)\nallowed_servers = %s\n"
               "\n# CA that MTC server certificates must chain to\nca = %s\n"
               "\n# KEK wrapping K and OPc in the subscriber store (mtcsd's "
               "KEK)\nkek_file = %s\n"
               "\n# the proxy's TLS certificate and key\ncert = hp.pem\n"
               "key = hp.key\n"
               "\n# subscriber store (built-in AuC)\ndatabase = hlr.db\n",
               cli_format_date(date, app_unix_now()), gsup, kup, mtcs_hex, ca,
               kek);
  if (n < 0 || (size_t)n >= sizeof(buf)) {
    cli_err(e->cmd, "mtchpd.conf too long");
    return CLI_INTERNAL;
  }
  if (app_write_file_atomic(path, buf, (size_t)n, 0644) != 0) {
    cli_err(e->cmd, "cannot write %s: %s", path, strerror(errno));
    return CLI_INTERNAL;
  }
  return CLI_OK;
}

/* hlr.db, empty, unless it exists.  *created tells which. */
static int hp_make_db(cli_env *e, const char *path, int *created) {
  uint8_t kek[MTCSEC_KEK_LEN];
  mtcsec_auc_store *st = NULL;
  char err[600];
  struct stat sb;
  int rv;

  *created = 0;
  if (stat(path, &sb) == 0) {
    return CLI_OK;
  }
  if (errno != ENOENT) {
    cli_err(e->cmd, "cannot look at %s: %s", path, strerror(errno));
    return CLI_CONFIG;
  }
  if ((rv = cli_load_kek(e->cmd, e->kek_path, kek)) != CLI_OK) {
    return rv;
  }
  err[0] = '\0';
  rv = mtcsec_auc_store_open(&st, path, kek, 0, err, sizeof(err));
  mtcsec_zeroize(kek, sizeof(kek));
  if (rv != 0) {
    cli_err(e->cmd, "cannot create %s: %s", path,
            err[0] != '\0' ? err : mtcsec_strerror(rv));
    return CLI_INTERNAL;
  }
  mtcsec_auc_store_close(st);
  *created = 1;
  return CLI_OK;
}

static int hp_init(int argc, char **argv) {
  static const struct option opts[] = {
    {"gsup-listen", required_argument, NULL, 'g'},
    {"kup-listen", required_argument, NULL, 'k'},
    {"force", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  const char *cmd = "hp init";
  const char *gsup = HP_GSUP_DEFAULT, *kup = HP_KUP_DEFAULT;
  char san[512], gsan[512], mtcs_hex[17], cn[64], detail[256];
  char confp[CLI_PATH_MAX], keyp[CLI_PATH_MAX], certp[CLI_PATH_MAX];
  char dbp[CLI_PATH_MAX], proxy[256];
  int ch, rv, force = 0, created = 0;
  EVP_PKEY *ca_key = NULL, *key = NULL;
  X509 *ca = NULL, *cert = NULL;
  cli_cert_spec spec;
  struct stat sb;
  cli_env e;

  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (ch) {
    case 'g':
      gsup = optarg;
      break;
    case 'k':
      kup = optarg;
      break;
    case 'f':
      force = 1;
      break;
    case 'h':
      hp_help(stdout);
      return CLI_OK;
    default:
      return cli_bad_option(cmd, argv, ch);
    }
  }
  if (optind != argc) {
    return cli_usage_error(cmd, HP_INIT_USAGE, "unexpected argument");
  }
  if (cli_listen_san(gsup, 1, gsan, sizeof(gsan)) != CLI_OK) {
    return cli_usage_error(cmd, HP_INIT_USAGE,
                           "--gsup-listen wants HOST:PORT, [IPv6]:PORT or "
                           ":PORT");
  }
  if (cli_listen_san(kup, 1, san, sizeof(san)) != CLI_OK) {
    return cli_usage_error(cmd, HP_INIT_USAGE,
                           "--kup-listen wants HOST:PORT, [IPv6]:PORT or "
                           ":PORT");
  }
  if ((rv = cli_env_open(&e, cmd, 0)) != CLI_OK) {
    return rv;
  }
  app_format_id(mtcs_hex, e.mtcs_id);
  if ((rv = cli_env_path(&e, confp, sizeof(confp), "mtchpd.conf")) != CLI_OK ||
      (rv = cli_env_path(&e, keyp, sizeof(keyp), "hp.key")) != CLI_OK ||
      (rv = cli_env_path(&e, certp, sizeof(certp), "hp.pem")) != CLI_OK ||
      (rv = cli_env_path(&e, dbp, sizeof(dbp), "hlr.db")) != CLI_OK) {
    goto cleanup;
  }
  if (!force && stat(confp, &sb) == 0) {
    cli_err(cmd,
            "%s exists already; pass --force to replace it with hp.pem and "
            "hp.key (hlr.db and its subscribers are kept)",
            confp);
    rv = CLI_FAILED;
    goto cleanup;
  }

  if ((rv = cli_load_ca(&e, &ca, &ca_key)) != CLI_OK) {
    goto cleanup;
  }
  memset(&spec, 0, sizeof(spec));
  snprintf(cn, sizeof(cn), "mtchpd %s", mtcs_hex);
  spec.cn = cn;
  spec.days = HP_DAYS;
  spec.eku = "serverAuth";
  spec.san = san;
  spec.issuer = ca;
  spec.issuer_key = ca_key;
  if ((rv = cli_issue_pair(&e, &spec, "hp.key", "hp.pem", &key, &cert)) !=
      CLI_OK) {
    goto cleanup;
  }
  if ((rv = hp_make_db(&e, dbp, &created)) != CLI_OK) {
    goto cleanup;
  }
  /* mtchpd.conf last: its presence marks the proxy as set up. */
  if ((rv = hp_write_conf(&e, confp, mtcs_hex, gsup, kup)) != CLI_OK) {
    goto cleanup;
  }
  snprintf(detail, sizeof(detail), "gsup_listen=%s kup_listen=%s hlr.db=%s",
           gsup, kup, created ? "created" : "kept");
  cli_audit(&e, "hp init", e.mtcs_id, NULL, detail);
  printf("%s\n%s\n%s\n%s\n", confp, certp, keyp, dbp);
  /* mtcsd finds the proxy through its own home_proxy key. */
  hp_conf_value(e.conf_path, "home_proxy", proxy, sizeof(proxy));
  if (strcmp(proxy, kup) != 0) {
    fprintf(stderr,
            "mtcsec hp init: note: mtcsd.conf has home_proxy = %s; set it to "
            "%s for mtcsd to reach this proxy\n",
            proxy, kup);
  }
  rv = CLI_OK;

cleanup:
  EVP_PKEY_free(key);
  EVP_PKEY_free(ca_key);
  X509_free(cert);
  X509_free(ca);
  cli_env_close(&e);
  return rv;
}

int cmd_hp(int argc, char **argv) {
  const char *verb;
  if (argc < 2) {
    hp_help(stderr);
    return CLI_USAGE;
  }
  verb = argv[1];
  if (cli_is_help(verb) || strcmp(verb, "help") == 0) {
    hp_help(stdout);
    return CLI_OK;
  }
  if (strcmp(verb, "init") == 0) {
    return hp_init(argc - 1, argv + 1);
  }
  cli_err("hp", "'%s' is not a verb; see 'mtcsec hp --help'", verb);
  return CLI_USAGE;
}
