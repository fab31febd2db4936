/*
 * `mtcsec audit`: the log of administration actions (who, what, on which
 * ID), oldest first.  Every state-changing subcommand appends to it.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_util.h"

#define AUDIT_USAGE "mtcsec audit [--json]"

static void audit_help(void) {
  printf("usage: " AUDIT_USAGE "\n"
         "\n"
         "Lists the administration actions, oldest first: time (UTC), Unix "
         "user, action\n"
         "(init, device add, device disable, device enable, ue add, gw add, "
         "grant,\n"
         "grant delete, relay allow, revoke), subject ID and details.  Keys "
         "are never\n"
         "logged.\n"
         "\n"
         "Options:\n"
         "  --json       a JSON array instead of a table\n"
         "  -h, --help   this text\n"
         "\n"
         "Exit status: 0 done, 2 usage, 4 configuration or permission "
         "problem, 5 internal\n"
         "error.\n");
}

typedef struct audit_ctx {
  int json;
  size_t n;
  cJSON *arr;
  int oom;
} audit_ctx;

static int audit_row(void *ud, int64_t when, const char *who,
                     const char *action, const char *subject,
                     const char *detail) {
  audit_ctx *ac = ud;
  char date[21];
  cJSON *o;

  cli_format_date(date, when);
  if (ac->json) {
    o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(ac->arr, o) ||
        cJSON_AddStringToObject(o, "time", date) == NULL ||
        cJSON_AddNumberToObject(o, "unix", (double)when) == NULL ||
        cJSON_AddStringToObject(o, "who", who) == NULL ||
        cJSON_AddStringToObject(o, "action", action) == NULL ||
        cJSON_AddStringToObject(o, "subject", subject) == NULL ||
        cJSON_AddStringToObject(o, "detail", detail) == NULL) {
      ac->oom = 1;
      return 1;
    }
    ac->n++;
    return 0;
  }
  if (ac->n++ == 0) {
    printf("%-20s  %-12s  %-14s  %-16s  %s\n", "TIME", "WHO", "ACTION",
           "SUBJECT", "DETAIL");
  }
  printf("%-20s  %-12s  %-14s  %-16s  %s\n", date, who, action,
         subject[0] != '\0' ? subject : "-", detail);
  return 0;
}

int cmd_audit(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "audit";
  audit_ctx ac;
  cli_env e;
  char *text;
  int ch, rv;

  memset(&ac, 0, sizeof(ac));
  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (ch) {
    case 'j':
      ac.json = 1;
      break;
    case 'h':
      audit_help();
      return CLI_OK;
    default:
      return cli_bad_option(cmd, argv, ch);
    }
  }
  if (optind != argc) {
    return cli_usage_error(cmd, AUDIT_USAGE, "takes no arguments");
  }
  if ((rv = cli_env_open(&e, cmd, CLI_ENV_READONLY)) != CLI_OK) {
    return rv;
  }
  if (ac.json && (ac.arr = cJSON_CreateArray()) == NULL) {
    cli_err(cmd, "out of memory");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  rv = mtcsec_sqlite_audit_foreach(e.st, audit_row, &ac);
  if (ac.oom || rv != 0) {
    cli_err(cmd, "%s", ac.oom ? "out of memory" : mtcsec_sqlite_errmsg(e.st));
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  if (ac.json) {
    if ((text = cJSON_Print(ac.arr)) == NULL) {
      cli_err(cmd, "out of memory");
      rv = CLI_INTERNAL;
      goto cleanup;
    }
    printf("%s\n", text);
    cJSON_free(text);
  }
  rv = CLI_OK;

cleanup:
  cJSON_Delete(ac.arr);
  cli_env_close(&e);
  return rv;
}
