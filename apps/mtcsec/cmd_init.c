/*
 * `mtcsec init DIR`: creates a state directory (docs/OPERATIONS.md): the
 * deployment's CA, mtcsd's certificate, mtcsd's client certificate for the
 * home proxy (cellular mode), the KEK, the database, mtcsd.conf and the
 * devices/, ues/ and relays/ directories.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_util.h"

#define INIT_USAGE "mtcsec init [DIR] [--mtcs-id HEX] [--listen ADDR] [--force]"

#define CA_DAYS (10 * 365 + 2)
#define SERVER_DAYS (2 * 365)

static void init_help(void) {
  printf("usage: " INIT_USAGE "\n"
         "\n"
         "Creates the state directory DIR (default: -d DIR, $MTCSEC_DIR, else "
         "./mtcsec):\n"
         "  ca.pem, ca.key          the deployment's CA (ECDSA P-256, 10 "
         "years)\n"
         "  server.pem, server.key  mtcsd's TLS certificate (2 years)\n"
         "  mtcs-client.pem, mtcs-client.key\n"
         "                          mtcsd's client certificate for the home "
         "proxy (CN =\n"
         "                          the MTCsID, clientAuth, 2 years; cellular "
         "mode)\n"
         "  kek                     key-encryption key (mode 0600)\n"
         "  mtcsd.db                the SQLite database\n"
         "  mtcsd.conf              every key with its default, commented\n"
         "  devices/ ues/ relays/   provisioning files and certificates\n"
         "\n"
         "Options:\n"
         "  --mtcs-id HEX   this server's MTCsID, 16 hex digits (default: "
         "random)\n"
         "  --listen ADDR   the TLS listen address (default: "
         "127.0.0.1:7788); a specific\n"
         "                  host or IP is added to the server certificate\n"
         "  --force         use a non-empty DIR; the files of an earlier "
         "deployment are\n"
         "                  replaced, which destroys its database and KEK\n"
         "  -h, --help      this text\n"
         "\n"
         "Exit status: 0 done, 1 DIR is not empty (see --force), 2 usage, 4 "
         "DIR unusable,\n"
         "5 internal error.\n");
}

/* Nonzero if dir holds anything besides . and .. */
static int dir_nonempty(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int found = 0;
  if (d == NULL) {
    return -1;
  }
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
      found = 1;
      break;
    }
  }
  closedir(d);
  return found;
}

/* mtcsd.conf: every key with its default and a comment. */
static int write_conf(cli_env *e, const char *path, const char *mtcs_hex,
                      const char *listen) {
  char buf[4096];
  size_t off = 0, i;
  int n;
  char date[21];

  n = snprintf(buf, sizeof(buf),
               "# mtcsd.conf: configuration of the MTC server daemon.\n"
               "# Written by 'mtcsec init' on %s.\n"
               "# key = value; '#' starts a comment; relative paths are "
               "relative to\n"
               "# the directory of this file.  Unknown keys are an error.  "
               "See mtcsec(1).\n",
               cli_format_date(date, app_unix_now()));
  if (n < 0) {
    return CLI_INTERNAL;
  }
  off = (size_t)n;
  for (i = 0; app_mtcsd_keys[i].key != NULL; i++) {
    const char *k = app_mtcsd_keys[i].key;
    const char *v = app_mtcsd_keys[i].def;
    if (strcmp(k, "mtcs_id") == 0) {
      v = mtcs_hex;
    } else if (strcmp(k, "listen") == 0) {
      v = listen;
    }
    n = snprintf(buf + off, sizeof(buf) - off, "\n# %s\n%s = %s\n",
                 app_mtcsd_keys[i].help, k, v);
    if (n < 0 || (size_t)n >= sizeof(buf) - off) {
      cli_err(e->cmd, "mtcsd.conf too long");
      return CLI_INTERNAL;
    }
    off += (size_t)n;
  }
  if (app_write_file_atomic(path, buf, off, 0644) != 0) {
    cli_err(e->cmd, "cannot write %s: %s", path, strerror(errno));
    return CLI_INTERNAL;
  }
  return CLI_OK;
}

static int make_subdirs(cli_env *e) {
  static const struct {
    const char *name;
    unsigned mode;
  } subs[] = {{"devices", 0700}, {"ues", 0755}, {"relays", 0755}};
  char p[CLI_PATH_MAX];
  size_t i;
  int rv;
  for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
    if ((rv = cli_env_path(e, p, sizeof(p), subs[i].name)) != CLI_OK) {
      return rv;
    }
    if (cli_mkdir(p, subs[i].mode) != 0) {
      cli_err(e->cmd, "cannot create %s: %s", p, strerror(errno));
      return CLI_CONFIG;
    }
  }
  return CLI_OK;
}

/* --force: remove what cannot be overwritten in place. */
static int remove_old(cli_env *e) {
  static const char *const names[] = {"kek", "mtcsd.db", "mtcsd.db-wal",
                                      "mtcsd.db-shm", "mtcsd.db-journal"};
  char p[CLI_PATH_MAX];
  size_t i;
  int rv;
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if ((rv = cli_env_path(e, p, sizeof(p), names[i])) != CLI_OK) {
      return rv;
    }
    if (unlink(p) != 0 && errno != ENOENT) {
      cli_err(e->cmd, "cannot remove %s: %s", p, strerror(errno));
      return CLI_CONFIG;
    }
  }
  return CLI_OK;
}

int cmd_init(int argc, char **argv) {
  static const struct option opts[] = {
    {"mtcs-id", required_argument, NULL, 'm'},
    {"listen", required_argument, NULL, 'l'},
    {"force", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  const char *cmd = "init";
  const char *mtcs_opt = NULL, *listen = "127.0.0.1:7788", *dir;
  int force = 0, ch, rv = CLI_INTERNAL, ne;
  cli_env e;
  char san[512], mtcs_hex[17], cn[64], path[CLI_PATH_MAX], err[256],
    detail[128];
  uint8_t kek[MTCSEC_KEK_LEN];
  EVP_PKEY *ca_key = NULL, *srv_key = NULL, *cli_key = NULL;
  X509 *ca = NULL, *srv = NULL, *cli = NULL;
  cli_cert_spec spec;
  struct stat sb;

  memset(&e, 0, sizeof(e));
  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (ch) {
    case 'm':
      mtcs_opt = optarg;
      break;
    case 'l':
      listen = optarg;
      break;
    case 'f':
      force = 1;
      break;
    case 'h':
      init_help();
      return CLI_OK;
    default:
      return cli_bad_option(cmd, argv, ch);
    }
  }
  if (argc - optind > 1) {
    return cli_usage_error(cmd, INIT_USAGE, "too many arguments");
  }
  dir = optind < argc ? argv[optind] : cli_dir();
  if (dir[0] == '\0' || strlen(dir) >= sizeof(e.dir)) {
    return cli_usage_error(cmd, INIT_USAGE, "DIR must be a usable path");
  }
  e.cmd = cmd;
  snprintf(e.dir, sizeof(e.dir), "%s", dir);
  if (mtcs_opt != NULL &&
      (rv = cli_parse_id(cmd, "--mtcs-id", mtcs_opt, e.mtcs_id)) != CLI_OK) {
    return rv;
  }
  if (cli_listen_san(listen, 0, san, sizeof(san)) != CLI_OK) {
    return cli_usage_error(cmd, INIT_USAGE,
                           "--listen wants HOST:PORT, [IPv6]:PORT or :PORT");
  }

  /* The directory: new, empty, or --force. */
  if (stat(dir, &sb) == 0) {
    if (!S_ISDIR(sb.st_mode)) {
      cli_err(cmd, "'%s' exists and is not a directory", dir);
      return CLI_CONFIG;
    }
    ne = dir_nonempty(dir);
    if (ne < 0) {
      cli_err(cmd, "cannot read '%s': %s", dir, strerror(errno));
      return CLI_CONFIG;
    }
    if (ne && !force) {
      cli_err(cmd,
              "'%s' is not empty; pick a new directory, or pass --force to "
              "replace the deployment in it (its database and KEK are lost)",
              dir);
      return CLI_FAILED;
    }
  } else if (errno != ENOENT || mkdir(dir, 0755) != 0) {
    cli_err(cmd, "cannot create '%s': %s", dir, strerror(errno));
    return CLI_CONFIG;
  }
  if (force && (rv = remove_old(&e)) != CLI_OK) {
    return rv;
  }
  if ((rv = make_subdirs(&e)) != CLI_OK) {
    return rv;
  }

  if (mtcsec_crypto_openssl_new(&e.crypto) != 0) {
    mtcsec_crypto_openssl_del(&e.crypto);
    cli_err(cmd, "cannot initialize the OpenSSL provider");
    return CLI_INTERNAL;
  }
  e.have_crypto = 1;
  if (mtcs_opt == NULL && (rv = cli_random_id(&e, e.mtcs_id)) != CLI_OK) {
    goto cleanup;
  }
  app_format_id(mtcs_hex, e.mtcs_id);

  /* The CA, then mtcsd's certificate signed by it. */
  memset(&spec, 0, sizeof(spec));
  snprintf(cn, sizeof(cn), "mtcsec CA %s", mtcs_hex);
  spec.cn = cn;
  spec.days = CA_DAYS;
  spec.is_ca = 1;
  if ((rv = cli_issue_pair(&e, &spec, "ca.key", "ca.pem", &ca_key, &ca)) !=
      CLI_OK) {
    goto cleanup;
  }
  memset(&spec, 0, sizeof(spec));
  snprintf(cn, sizeof(cn), "mtcsd %s", mtcs_hex);
  spec.cn = cn;
  spec.days = SERVER_DAYS;
  spec.eku = "serverAuth";
  spec.san = san;
  spec.issuer = ca;
  spec.issuer_key = ca_key;
  if ((rv = cli_issue_pair(&e, &spec, "server.key", "server.pem", &srv_key,
                           &srv)) != CLI_OK) {
    goto cleanup;
  }
  /* mtcsd as a client of the home proxy's K_UP service: mtchpd wants a CN
   * of exactly 16 hex digits, the MTCsID (docs/CELLULAR-SYSTEM.md 5). */
  memset(&spec, 0, sizeof(spec));
  spec.cn = mtcs_hex;
  spec.days = SERVER_DAYS;
  spec.eku = "clientAuth";
  spec.issuer = ca;
  spec.issuer_key = ca_key;
  if ((rv = cli_issue_pair(&e, &spec, "mtcs-client.key", "mtcs-client.pem",
                           &cli_key, &cli)) != CLI_OK) {
    goto cleanup;
  }

  /* The KEK and the database wrapped under it. */
  if ((rv = cli_env_path(&e, e.kek_path, sizeof(e.kek_path), "kek")) !=
        CLI_OK ||
      (rv = cli_env_path(&e, e.db_path, sizeof(e.db_path), "mtcsd.db")) !=
        CLI_OK) {
    goto cleanup;
  }
  err[0] = '\0';
  if (mtcsec_kek_create(e.kek_path, &e.crypto, err, sizeof(err)) != 0) {
    cli_err(cmd, "%s", err[0] != '\0' ? err : "cannot create the KEK");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  if ((rv = cli_load_kek(cmd, e.kek_path, kek)) != CLI_OK) {
    goto cleanup;
  }
  err[0] = '\0';
  rv = mtcsec_sqlite_open(&e.st, e.db_path, kek, &e.crypto,
                          MTCSEC_SQLITE_CREATE, err, sizeof(err));
  mtcsec_zeroize(kek, sizeof(kek));
  if (rv != 0) {
    e.st = NULL;
    cli_err(cmd, "%s", err[0] != '\0' ? err : "cannot create the database");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  snprintf(detail, sizeof(detail), "listen=%s", listen);
  cli_audit(&e, "init", e.mtcs_id, NULL, detail);

  /* mtcsd.conf last: its presence marks a complete state directory. */
  if ((rv = cli_env_path(&e, path, sizeof(path), "mtcsd.conf")) != CLI_OK ||
      (rv = write_conf(&e, path, mtcs_hex, listen)) != CLI_OK) {
    goto cleanup;
  }
  printf("Initialized %s (MTCsID %s).\n"
         "Next: mtcsec -d %s device add; mtcsec -d %s ue add; "
         "mtcsec -d %s grant UEID DEVICE\n",
         dir, mtcs_hex, dir, dir, dir);
  rv = CLI_OK;

cleanup:
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(srv_key);
  EVP_PKEY_free(cli_key);
  X509_free(ca);
  X509_free(srv);
  X509_free(cli);
  cli_env_close(&e);
  return rv;
}
