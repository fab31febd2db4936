/*
 * `mtcsec relay allow GWID DEVICE|@GROUP`: lets a registered relay stand in
 * the PATH of a device's exchanges (PROTOCOL.md section 3, PATH).
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"

#define RELAY_USAGE "mtcsec relay allow GWID DEVICE|@GROUP"

static void relay_help(FILE *f) {
  fprintf(f, "usage: " RELAY_USAGE "\n"
             "\n"
             "allow  lets relay GWID (registered with 'mtcsec gw add') "
             "forward the exchanges\n"
             "       of device DEVICE (16 hex digits) or of every device of "
             "group @GROUP.\n"
             "\n"
             "Exit status: 0 done, 2 usage, 3 no such relay or device, 4 "
             "configuration or\n"
             "permission problem, 5 internal error.\n");
}

static int relay_allow(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "relay allow";
  const char *group = NULL;
  uint8_t gwid[MTCSEC_ID_LEN], dev[MTCSEC_ID_LEN];
  char gwhex[17], devhex[17], what[96];
  int ch, rv, is_group = 0;
  mtcsec_sqlite_devinfo info;
  cli_env e;

  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    if (ch == 'h') {
      relay_help(stdout);
      return CLI_OK;
    }
    return cli_bad_option(cmd, argv, ch);
  }
  if (argc - optind != 2) {
    return cli_usage_error(cmd, RELAY_USAGE, "expects GWID and DEVICE|@GROUP");
  }
  if ((rv = cli_parse_id(cmd, "GWID", argv[optind], gwid)) != CLI_OK ||
      (rv = cli_parse_target(cmd, argv[optind + 1], dev, &group, &is_group)) !=
        CLI_OK) {
    return rv;
  }
  app_format_id(gwhex, gwid);
  if (is_group) {
    snprintf(what, sizeof(what), "group @%s", group);
  } else {
    snprintf(what, sizeof(what), "device %s", app_format_id(devhex, dev));
  }
  if ((rv = cli_env_open(&e, cmd, 0)) != CLI_OK) {
    return rv;
  }
  if (!is_group) {
    rv = mtcsec_sqlite_device_get(e.st, dev, &info);
    if (rv == MTCSEC_ERR_NOT_FOUND) {
      cli_err(cmd, "no device %s; see 'mtcsec device list'", devhex);
      rv = CLI_NOTFOUND;
      goto cleanup;
    }
    if (rv != 0) {
      cli_err(cmd, "store: %s", mtcsec_sqlite_errmsg(e.st));
      rv = CLI_INTERNAL;
      goto cleanup;
    }
  }
  rv = mtcsec_sqlite_relay_allow(e.st, gwid, is_group ? NULL : dev, group);
  if (rv == MTCSEC_ERR_NOT_FOUND) {
    cli_err(cmd, "relay %s is not registered; run 'mtcsec gw add %s' first",
            gwhex, gwhex);
    rv = CLI_NOTFOUND;
    goto cleanup;
  }
  if (rv != 0) {
    cli_err(cmd, "store: %s", mtcsec_sqlite_errmsg(e.st));
    rv = cli_exit_for(rv);
    goto cleanup;
  }
  cli_audit(&e, "relay allow", gwid, NULL, what);
  printf("relay %s may forward for %s\n", gwhex, what);
  rv = CLI_OK;

cleanup:
  cli_env_close(&e);
  return rv;
}

int cmd_relay(int argc, char **argv) {
  const char *verb;
  if (argc < 2) {
    relay_help(stderr);
    return CLI_USAGE;
  }
  verb = argv[1];
  if (cli_is_help(verb) || strcmp(verb, "help") == 0) {
    relay_help(stdout);
    return CLI_OK;
  }
  if (strcmp(verb, "allow") == 0) {
    return relay_allow(argc - 1, argv + 1);
  }
  cli_err("relay", "'%s' is not a verb; see 'mtcsec relay --help'", verb);
  return CLI_USAGE;
}
