/*
 * `mtcsec gw add|run`: `add` registers a relay (GW) with the server;
 * `run` is the simulated relay of agent_gw.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_util.h"

#define ADD_USAGE "mtcsec gw add [GWID] [--label TEXT]"

static void gw_help(FILE *f) {
  fprintf(f,
          "usage: " ADD_USAGE "\n"
          "       mtcsec gw run ...   (a simulated relay; see 'mtcsec gw run "
          "--help')\n"
          "\n"
          "add  registers the relay GWID (16 hex digits; default: random) "
          "and writes\n"
          "     relays/GWID.json; allow it for devices with 'mtcsec relay "
          "allow'.\n"
          "       --label TEXT   a free-form label (up to 63 characters)\n"
          "\n"
          "Exit status: 0 done, 2 usage, 4 configuration or permission "
          "problem,\n"
          "5 internal error.\n");
}

static int write_relay_file(cli_env *e, const char *idhex, const char *label) {
  char name[64], path[CLI_PATH_MAX], line[512];
  cJSON *o = cJSON_CreateObject();
  char *text = NULL;
  int rv = CLI_INTERNAL;

  if (o == NULL || cJSON_AddStringToObject(o, "GWID", idhex) == NULL ||
      (label != NULL && cJSON_AddStringToObject(o, "label", label) == NULL) ||
      (text = cJSON_PrintUnformatted(o)) == NULL) {
    cli_err(e->cmd, "out of memory");
    goto cleanup;
  }
  if ((rv = cli_env_path(e, path, sizeof(path), "relays")) != CLI_OK) {
    goto cleanup;
  }
  if (cli_mkdir(path, 0755) != 0) {
    cli_err(e->cmd, "cannot create %s: %s", path, strerror(errno));
    rv = CLI_CONFIG;
    goto cleanup;
  }
  snprintf(name, sizeof(name), "relays/%s.json", idhex);
  if ((rv = cli_env_path(e, path, sizeof(path), name)) != CLI_OK) {
    goto cleanup;
  }
  snprintf(line, sizeof(line), "%s\n", text);
  if (app_write_file_atomic(path, line, strlen(line), 0644) != 0) {
    cli_err(e->cmd, "cannot write %s: %s", path, strerror(errno));
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  rv = CLI_OK;

cleanup:
  cJSON_free(text);
  cJSON_Delete(o);
  return rv;
}

static int gw_add(int argc, char **argv) {
  static const struct option opts[] = {{"label", required_argument, NULL, 'l'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "gw add";
  const char *label = NULL;
  uint8_t gwid[MTCSEC_ID_LEN];
  char idhex[17];
  int ch, rv, given = 0;
  size_t i;
  cli_env e;

  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (ch) {
    case 'l':
      label = optarg;
      break;
    case 'h':
      gw_help(stdout);
      return CLI_OK;
    default:
      return cli_bad_option(cmd, argv, ch);
    }
  }
  if (argc - optind > 1) {
    return cli_usage_error(cmd, ADD_USAGE, "too many arguments");
  }
  if (optind < argc) {
    if ((rv = cli_parse_id(cmd, "GWID", argv[optind], gwid)) != CLI_OK) {
      return rv;
    }
    given = 1;
  }
  if (label != NULL) {
    if (label[0] == '\0' || strlen(label) > 63) {
      return cli_usage_error(cmd, ADD_USAGE,
                             "--label must have 1 to 63 characters");
    }
    for (i = 0; label[i] != '\0'; i++) {
      if ((unsigned char)label[i] < 0x20 || label[i] == 0x7f) {
        return cli_usage_error(cmd, ADD_USAGE,
                               "--label may not hold control characters");
      }
    }
  }
  if ((rv = cli_env_open(&e, cmd, 0)) != CLI_OK) {
    return rv;
  }
  if (!given && (rv = cli_random_id(&e, gwid)) != CLI_OK) {
    goto cleanup;
  }
  app_format_id(idhex, gwid);
  rv = mtcsec_sqlite_relay_add(e.st, gwid, label);
  if (rv != 0) {
    cli_err(cmd, "cannot register relay %s: %s (%s)", idhex,
            mtcsec_strerror(rv), mtcsec_sqlite_errmsg(e.st));
    rv = cli_exit_for(rv);
    goto cleanup;
  }
  if ((rv = write_relay_file(&e, idhex, label)) != CLI_OK) {
    goto cleanup;
  }
  cli_audit(&e, "gw add", gwid, NULL, label != NULL ? label : "");
  printf("relay %s registered; allow it with 'mtcsec relay allow %s "
         "DEVICE|@GROUP'\n",
         idhex, idhex);
  rv = CLI_OK;

cleanup:
  cli_env_close(&e);
  return rv;
}

int cmd_gw(int argc, char **argv) {
  const char *verb;
  if (argc < 2) {
    gw_help(stderr);
    return CLI_USAGE;
  }
  verb = argv[1];
  if (cli_is_help(verb) || strcmp(verb, "help") == 0) {
    gw_help(stdout);
    return CLI_OK;
  }
  if (strcmp(verb, "add") == 0) {
    return gw_add(argc - 1, argv + 1);
  }
  if (strcmp(verb, "run") == 0) {
    return agent_gw_run(argc - 1, argv + 1);
  }
  cli_err("gw", "'%s' is not a verb; see 'mtcsec gw --help'", verb);
  return CLI_USAGE;
}
