/*
 * Dispatch of the mtcsec tool: a {name, fn, help} table drives both the
 * dispatch and the usage text (as wireguard-tools' src/wg.c does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/mtcsec.h>

#include "cli.h"

typedef struct cli_cmd {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *help;
} cli_cmd;

static const cli_cmd commands[] = {
  {"init", cmd_init, "create a CA, server certificate, KEK, database, config"},
  {"device", cmd_device, "add|list|show|disable devices; run a device"},
  {"ue", cmd_ue, "add a UE (certificate); get|put|scan as a UE"},
  {"gw", cmd_gw, "add a relay; run a relay"},
  {"grant", cmd_grant, "let a UE obtain keys for a device or group"},
  {"relay", cmd_relay, "allow a relay for a device or group"},
  {"sessions", cmd_sessions, "list issued sessions"},
  {"revoke", cmd_revoke, "revoke a session; print its revocation message"},
  {"audit", cmd_audit, "show the audit log of admin actions"},
  {"3gpp", cmd_3gpp, "3GPP checkers: milenage|eia2|eea2|llc-fcs (JSON)"},
  {"sub", cmd_sub, "add|list|show subscribers of the home proxy's AuC"},
  {"hp", cmd_hp, "init: the home proxy's config, certificate and hlr.db"},
  {"ms", cmd_ms, "run a simulated cellular device (MS with a USIM)"},
  {"sgsn", cmd_sgsn, "run a simulated SGSN (radio, GSUP, GTP)"},
  {"ggsn", cmd_ggsn, "add a GGSN certificate; run a simulated GGSN"},
};

static const char *dir_opt;
static char path_buf[4096];

const char *cli_dir(void) {
  const char *env;
  if (dir_opt != NULL) {
    return dir_opt;
  }
  env = getenv("MTCSEC_DIR");
  return env != NULL && env[0] != '\0' ? env : "./mtcsec";
}

const char *cli_path(const char *name) {
  snprintf(path_buf, sizeof(path_buf), "%s/%s", cli_dir(), name);
  return path_buf;
}

static void usage(FILE *f) {
  size_t i;
  fprintf(f,
          "usage: mtcsec [-d DIR] COMMAND [ARGS]\n"
          "\n"
          "Lightweight security establishment for cellular IoT (mtcsec "
          "%s).\n\n"
          "Commands:\n",
          mtcsec_version());
  for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
    fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
  }
  fprintf(f, "\n"
             "Options:\n"
             "  -d, --dir DIR  state directory made by 'mtcsec init' "
             "(default: $MTCSEC_DIR, else ./mtcsec)\n"
             "  -h, --help     this text; 'mtcsec COMMAND --help' for a "
             "command\n"
             "  --version      print the version\n"
             "\n"
             "Exit status: 0 done, 1 failed, 2 usage, 3 not found, 4 "
             "configuration, 5 internal error.\n");
}

int mtcsec_cli_run(int argc, char **argv) {
  int i = 1;
  size_t k;

  while (i < argc && argv[i][0] == '-') {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return CLI_OK;
    }
    if (strcmp(argv[i], "--version") == 0) {
      printf("mtcsec %s (protocol %d)\n", mtcsec_version(),
             MTCSEC_PROTOCOL_VERSION);
      return CLI_OK;
    }
    if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--dir") == 0) &&
        i + 1 < argc) {
      dir_opt = argv[i + 1];
      i += 2;
      continue;
    }
    if (strncmp(argv[i], "--dir=", 6) == 0) {
      dir_opt = argv[i] + 6;
      i++;
      continue;
    }
    fprintf(stderr, "mtcsec: unknown option '%s'\n\n", argv[i]);
    usage(stderr);
    return CLI_USAGE;
  }
  if (i >= argc) {
    usage(stderr);
    return CLI_USAGE;
  }
  for (k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
    if (strcmp(argv[i], commands[k].name) == 0) {
      return commands[k].fn(argc - i, argv + i);
    }
  }
  if (strcmp(argv[i], "help") == 0) {
    usage(stdout);
    return CLI_OK;
  }
  fprintf(stderr, "mtcsec: '%s' is not a command; see 'mtcsec --help'\n",
          argv[i]);
  return CLI_USAGE;
}
