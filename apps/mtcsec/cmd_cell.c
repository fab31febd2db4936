/*
 * `mtcsec ms|sgsn|ggsn`: the simulated network of cellular mode
 * (docs/CELLULAR-SYSTEM.md).  `ms run`, `sgsn run` and `ggsn run` are the
 * agents of agent_ms.c, agent_sgsn.c and agent_ggsn.c; `ggsn add` issues a
 * GGSN's client certificate for the Gi link to mtcsd, as `ue add` does for
 * UEs.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

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

static void ggsn_issued(const cli_env *e, const uint8_t id[MTCSEC_ID_LEN]) {
  char idhex[17];
  fprintf(stderr,
          "mtcsec ggsn add: list %s in allowed_ggsns of %s so that mtcsd "
          "accepts it\n",
          app_format_id(idhex, id), e->conf_path);
}

static int ggsn_add(int argc, char **argv) {
  /* The CN is the GGSN's identity on the Gi link: CELLULAR-SYSTEM.md
   * section 3. */
  static const cli_client_kind ggsn = {.cmd = "ggsn add",
                                       .usage = GGSN_ADD_USAGE,
                                       .id_name = "GGSN ID",
                                       .subdir = "ggsns",
                                       .who = "GGSN",
                                       .days = GGSN_DAYS,
                                       .help = ggsn_help,
                                       .issued = ggsn_issued};
  return cli_add_client(argc, argv, &ggsn);
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
