/*
 * `mtcsec ms|sgsn|ggsn`: the simulated network of cellular mode
 * (docs/CELLULAR-SYSTEM.md).  `ms run`, `sgsn run` and `ggsn run` are the
 * agents of agent_ms.c, agent_sgsn.c and agent_ggsn.c; `ggsn add` issues a
 * GGSN's client certificate for the Gi link to mtcsd, as `ue add` does for
 * UEs.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_cell.h"
#include "cli.h"
#include "cli_util.h"

#define GGSN_ADD_USAGE "mtcsec ggsn add [ID]"
#define GGSN_DAYS 365

static void ms_help(FILE *f) {
  fprintf(f, "usage: mtcsec ms run --usim FILE --sgsn HOST:PORT ...   (a "
             "simulated MS;\n"
             "       see 'mtcsec ms run --help')\n");
}

static void sgsn_help(FILE *f) {
  fprintf(f, "usage: mtcsec sgsn run --listen HOST:PORT --hlr HOST:PORT "
             "--ggsn HOST:PORT ...\n"
             "       (a simulated SGSN; see 'mtcsec sgsn run --help')\n");
}

static void ggsn_help(FILE *f) {
  fprintf(f, "usage: " GGSN_ADD_USAGE "\n"
             "       mtcsec ggsn run ...   (a simulated GGSN; see 'mtcsec ggsn "
             "run --help')\n"
             "\n"
             "add  issues ggsns/ID.pem and ggsns/ID.key (mode 0600): an ECDSA "
             "P-256 client\n"
             "     certificate for one year, signed by ca.pem, whose subject "
             "commonName is\n"
             "     the GGSN ID as 16 lowercase hex digits; prints both paths.  "
             "ID is 16 hex\n"
             "     digits (default: random).  mtcsd accepts it on its Gi link "
             "once the ID\n"
             "     is listed in allowed_ggsns of mtcsd.conf.\n"
             "\n"
             "Exit status: 0 done, 1 the GGSN has a certificate already, 2 "
             "usage, 3 no CA,\n"
             "4 configuration or permission problem, 5 internal error.\n");
}

static int ggsn_add(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "ggsn add";
  uint8_t id[MTCSEC_ID_LEN];
  char idhex[17], name[64], dirp[CLI_PATH_MAX], keyp[CLI_PATH_MAX];
  char certp[CLI_PATH_MAX], cakeyp[CLI_PATH_MAX];
  int ch, rv, given = 0;
  EVP_PKEY *ca_key = NULL, *key = NULL;
  X509 *ca = NULL, *cert = NULL;
  cli_cert_spec spec;
  struct stat sb;
  cli_env e;

  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    if (ch == 'h') {
      ggsn_help(stdout);
      return CLI_OK;
    }
    return cli_bad_option(cmd, argv, ch);
  }
  if (argc - optind > 1) {
    return cli_usage_error(cmd, GGSN_ADD_USAGE, "too many arguments");
  }
  if (optind < argc) {
    if ((rv = cli_parse_id(cmd, "GGSN ID", argv[optind], id)) != CLI_OK) {
      return rv;
    }
    given = 1;
  }
  if ((rv = cli_env_open(&e, cmd, 0)) != CLI_OK) {
    return rv;
  }
  if ((rv = cli_env_path(&e, dirp, sizeof(dirp), "ggsns")) != CLI_OK ||
      (rv = cli_env_path(&e, cakeyp, sizeof(cakeyp), "ca.key")) != CLI_OK) {
    goto cleanup;
  }
  if (cli_mkdir(dirp, 0755) != 0) {
    cli_err(cmd, "cannot create %s: %s", dirp, strerror(errno));
    rv = CLI_CONFIG;
    goto cleanup;
  }
  for (;;) {
    if (!given && (rv = cli_random_id(&e, id)) != CLI_OK) {
      goto cleanup;
    }
    app_format_id(idhex, id);
    snprintf(name, sizeof(name), "ggsns/%s.key", idhex);
    if ((rv = cli_env_path(&e, keyp, sizeof(keyp), name)) != CLI_OK) {
      goto cleanup;
    }
    snprintf(name, sizeof(name), "ggsns/%s.pem", idhex);
    if ((rv = cli_env_path(&e, certp, sizeof(certp), name)) != CLI_OK) {
      goto cleanup;
    }
    if (stat(keyp, &sb) != 0 && stat(certp, &sb) != 0) {
      break;
    }
    if (given) {
      cli_err(cmd,
              "GGSN %s has a certificate already (%s); remove its files "
              "first to issue a new one",
              idhex, certp);
      rv = CLI_FAILED;
      goto cleanup;
    }
  }
  if ((rv = cli_read_cert(cmd, e.ca_path, &ca)) != CLI_OK ||
      (rv = cli_read_key(cmd, cakeyp, &ca_key)) != CLI_OK) {
    goto cleanup;
  }
  if (X509_check_private_key(ca, ca_key) != 1) {
    cli_err(cmd, "%s does not belong to %s", cakeyp, e.ca_path);
    rv = CLI_CONFIG;
    goto cleanup;
  }
  memset(&spec, 0, sizeof(spec));
  spec.cn = idhex; /* CELLULAR-SYSTEM.md section 3: the GGSN's identity */
  spec.days = GGSN_DAYS;
  spec.eku = "clientAuth";
  spec.issuer = ca;
  spec.issuer_key = ca_key;
  if ((rv = cli_issue_cert(&e, &spec, &key, &cert)) != CLI_OK ||
      (rv = cli_write_key(cmd, keyp, key)) != CLI_OK ||
      (rv = cli_write_cert(cmd, certp, cert)) != CLI_OK) {
    goto cleanup;
  }
  cli_audit(&e, "ggsn add", id, NULL, "clientAuth certificate, 365 days");
  printf("%s\n%s\n", certp, keyp);
  fprintf(stderr,
          "mtcsec ggsn add: list %s in allowed_ggsns of %s so that mtcsd "
          "accepts it\n",
          idhex, e.conf_path);
  rv = CLI_OK;

cleanup:
  EVP_PKEY_free(key);
  EVP_PKEY_free(ca_key);
  X509_free(cert);
  X509_free(ca);
  cli_env_close(&e);
  return rv;
}

int cmd_ms(int argc, char **argv) {
  if (argc < 2) {
    ms_help(stderr);
    return CLI_USAGE;
  }
  if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
    ms_help(stdout);
    return CLI_OK;
  }
  if (strcmp(argv[1], "run") == 0) {
    return agent_ms_run(argc - 1, argv + 1);
  }
  cli_err("ms", "'%s' is not a verb; see 'mtcsec ms --help'", argv[1]);
  return CLI_USAGE;
}

int cmd_sgsn(int argc, char **argv) {
  if (argc < 2) {
    sgsn_help(stderr);
    return CLI_USAGE;
  }
  if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
    sgsn_help(stdout);
    return CLI_OK;
  }
  if (strcmp(argv[1], "run") == 0) {
    return agent_sgsn_run(argc - 1, argv + 1);
  }
  cli_err("sgsn", "'%s' is not a verb; see 'mtcsec sgsn --help'", argv[1]);
  return CLI_USAGE;
}

int cmd_ggsn(int argc, char **argv) {
  if (argc < 2) {
    ggsn_help(stderr);
    return CLI_USAGE;
  }
  if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
    ggsn_help(stdout);
    return CLI_OK;
  }
  if (strcmp(argv[1], "add") == 0) {
    return ggsn_add(argc - 1, argv + 1);
  }
  if (strcmp(argv[1], "run") == 0) {
    return agent_ggsn_run(argc - 1, argv + 1);
  }
  cli_err("ggsn", "'%s' is not a verb; see 'mtcsec ggsn --help'", argv[1]);
  return CLI_USAGE;
}
