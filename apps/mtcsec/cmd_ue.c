/*
 * `mtcsec ue add|get|put|scan`: `add` issues a UE's client certificate
 * (docs/OPERATIONS.md, "UE certificates"); get, put and scan are the
 * simulated UE of agent_ue.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_util.h"

#define ADD_USAGE "mtcsec ue add [UEID]"
#define UE_DAYS 365

static void ue_help(FILE *f) {
  fprintf(f,
          "usage: " ADD_USAGE "\n"
          "       mtcsec ue get|put|scan ...   (a simulated UE; see "
          "'mtcsec ue get --help')\n"
          "\n"
          "add  issues ues/UEID.pem and ues/UEID.key (mode 0600): an ECDSA "
          "P-256 client\n"
          "     certificate for one year, signed by ca.pem, whose subject "
          "commonName is\n"
          "     the UEID as 16 lowercase hex digits; prints both paths.  UEID "
          "is 16 hex\n"
          "     digits (default: random).  Grant it access with 'mtcsec "
          "grant'.\n"
          "\n"
          "Exit status: 0 done, 1 the UE has a certificate already, 2 usage, "
          "3 no CA,\n"
          "4 configuration or permission problem, 5 internal error.\n");
}

static int ue_add(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "ue add";
  uint8_t ueid[MTCSEC_ID_LEN];
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
      ue_help(stdout);
      return CLI_OK;
    }
    return cli_bad_option(cmd, argv, ch);
  }
  if (argc - optind > 1) {
    return cli_usage_error(cmd, ADD_USAGE, "too many arguments");
  }
  if (optind < argc) {
    if ((rv = cli_parse_id(cmd, "UEID", argv[optind], ueid)) != CLI_OK) {
      return rv;
    }
    given = 1;
  }
  if ((rv = cli_env_open(&e, cmd, 0)) != CLI_OK) {
    return rv;
  }
  if ((rv = cli_env_path(&e, dirp, sizeof(dirp), "ues")) != CLI_OK ||
      (rv = cli_env_path(&e, cakeyp, sizeof(cakeyp), "ca.key")) != CLI_OK) {
    goto cleanup;
  }
  if (cli_mkdir(dirp, 0755) != 0) {
    cli_err(cmd, "cannot create %s: %s", dirp, strerror(errno));
    rv = CLI_CONFIG;
    goto cleanup;
  }
  for (;;) {
    if (!given && (rv = cli_random_id(&e, ueid)) != CLI_OK) {
      goto cleanup;
    }
    app_format_id(idhex, ueid);
    snprintf(name, sizeof(name), "ues/%s.key", idhex);
    if ((rv = cli_env_path(&e, keyp, sizeof(keyp), name)) != CLI_OK) {
      goto cleanup;
    }
    snprintf(name, sizeof(name), "ues/%s.pem", idhex);
    if ((rv = cli_env_path(&e, certp, sizeof(certp), name)) != CLI_OK) {
      goto cleanup;
    }
    if (stat(keyp, &sb) != 0 && stat(certp, &sb) != 0) {
      break;
    }
    if (given) {
      cli_err(cmd,
              "UE %s has a certificate already (%s); remove its files "
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
  spec.cn = idhex; /* PROTOCOL.md section 1: the UE's identity */
  spec.days = UE_DAYS;
  spec.eku = "clientAuth";
  spec.issuer = ca;
  spec.issuer_key = ca_key;
  if ((rv = cli_issue_cert(&e, &spec, &key, &cert)) != CLI_OK ||
      (rv = cli_write_key(cmd, keyp, key)) != CLI_OK ||
      (rv = cli_write_cert(cmd, certp, cert)) != CLI_OK) {
    goto cleanup;
  }
  cli_audit(&e, "ue add", ueid, NULL, "clientAuth certificate, 365 days");
  printf("%s\n%s\n", certp, keyp);
  rv = CLI_OK;

cleanup:
  EVP_PKEY_free(key);
  EVP_PKEY_free(ca_key);
  X509_free(cert);
  X509_free(ca);
  cli_env_close(&e);
  return rv;
}

int cmd_ue(int argc, char **argv) {
  const char *verb;
  if (argc < 2) {
    ue_help(stderr);
    return CLI_USAGE;
  }
  verb = argv[1];
  if (cli_is_help(verb) || strcmp(verb, "help") == 0) {
    ue_help(stdout);
    return CLI_OK;
  }
  if (strcmp(verb, "add") == 0) {
    return ue_add(argc - 1, argv + 1);
  }
  if (strcmp(verb, "get") == 0) {
    return agent_ue_get(argc - 1, argv + 1);
  }
  if (strcmp(verb, "put") == 0) {
    return agent_ue_put(argc - 1, argv + 1);
  }
  if (strcmp(verb, "scan") == 0) {
    return agent_ue_scan(argc - 1, argv + 1);
  }
  cli_err("ue", "'%s' is not a verb; see 'mtcsec ue --help'", verb);
  return CLI_USAGE;
}
