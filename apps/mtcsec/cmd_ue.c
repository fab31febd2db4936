/*
 * `mtcsec ue add|get|put|scan`: `add` issues a UE's client certificate
 * (docs/OPERATIONS.md, "UE certificates"); get, put and scan are the
 * simulated UE of agent_ue.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

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
  /* The CN is the UE's identity: PROTOCOL.md section 1. */
  static const cli_client_kind ue = {.cmd = "ue add",
                                     .usage = ADD_USAGE,
                                     .id_name = "UEID",
                                     .subdir = "ues",
                                     .who = "UE",
                                     .days = UE_DAYS,
                                     .help = ue_help};
  return cli_add_client(argc, argv, &ue);
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
