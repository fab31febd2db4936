/*
 * `mtcsec sessions [DEVICE]`: the sessions (DMKeys) the server issued,
 * newest first, as a table or JSON.  DMKeys themselves are never stored.
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

#define SESSIONS_USAGE "mtcsec sessions [DEVICE] [--limit N] [--json]"

static void sessions_help(void) {
  printf("usage: " SESSIONS_USAGE "\n"
         "\n"
         "Lists the sessions the server issued, newest first: the number to "
         "give to\n"
         "'mtcsec revoke', device, UE, KEY_ID, PERMS, lifetime, time of "
         "issue, state\n"
         "(active, expired or revoked) and the relays of the PATH.\n"
         "\n"
         "Options:\n"
         "  DEVICE       only the sessions of this device (16 hex digits)\n"
         "  --limit N    at most N sessions (default: all)\n"
         "  --json       a JSON array instead of a table\n"
         "  -h, --help   this text\n"
         "\n"
         "Exit status: 0 done, 2 usage, 3 no such device, 4 configuration "
         "or permission\n"
         "problem, 5 internal error.\n");
}

typedef struct sess_ctx {
  int json;
  size_t n;
  int64_t now;
  cJSON *arr;
  int oom;
} sess_ctx;

static const char *sess_state(const sess_ctx *sc,
                              const mtcsec_sqlite_session *s) {
  if (s->revoked) {
    return "revoked";
  }
  if (s->issued_unix + (int64_t)s->rec.lifetime <= sc->now) {
    return "expired";
  }
  return "active";
}

static int sess_json(sess_ctx *sc, const mtcsec_sqlite_session *s) {
  char hex[17], perms[48];
  cJSON *o = cJSON_CreateObject(), *path;
  size_t i;

  if (o == NULL || !cJSON_AddItemToArray(sc->arr, o)) {
    cJSON_Delete(o);
    return -1;
  }
  if (cJSON_AddNumberToObject(o, "id", (double)s->id) == NULL ||
      cJSON_AddStringToObject(o, "MTCdID",
                              app_format_id(hex, s->rec.mtcd_id)) == NULL ||
      cJSON_AddStringToObject(o, "UEID", app_format_id(hex, s->rec.ueid)) ==
        NULL ||
      cJSON_AddStringToObject(
        o, "MTCdNonce", app_format_hex(hex, s->rec.mtcd_nonce, 8)) == NULL ||
      cJSON_AddStringToObject(
        o, "MTCsNonce", app_format_hex(hex, s->rec.mtcs_nonce, 8)) == NULL ||
      cJSON_AddNumberToObject(o, "suite", s->rec.suite) == NULL ||
      cJSON_AddNumberToObject(o, "PERMS", s->rec.perms) == NULL ||
      cJSON_AddStringToObject(o, "perms",
                              app_format_perms(perms, s->rec.perms)) == NULL ||
      cJSON_AddNumberToObject(o, "KEY_ID", s->rec.key_id) == NULL ||
      cJSON_AddNumberToObject(o, "LIFETIME", s->rec.lifetime) == NULL ||
      cJSON_AddNumberToObject(o, "issued", (double)s->issued_unix) == NULL ||
      cJSON_AddStringToObject(o, "state", sess_state(sc, s)) == NULL ||
      (path = cJSON_AddArrayToObject(o, "PATH")) == NULL) {
    return -1;
  }
  for (i = 0; i < s->rec.npath && i < MTCSEC_MAX_PATH; i++) {
    cJSON *h =
      cJSON_CreateString(app_format_id(hex, s->rec.path + i * MTCSEC_ID_LEN));
    if (h == NULL || !cJSON_AddItemToArray(path, h)) {
      cJSON_Delete(h);
      return -1;
    }
  }
  return 0;
}

static int sess_row(void *ud, const mtcsec_sqlite_session *s) {
  sess_ctx *sc = ud;
  char dev[17], ue[17], perms[48], date[21], hop[17];
  size_t i;

  if (sc->json) {
    if (sess_json(sc, s) != 0) {
      sc->oom = 1;
      return 1;
    }
    sc->n++;
    return 0;
  }
  if (sc->n++ == 0) {
    printf("%-8s  %-16s  %-16s  %6s  %-22s  %8s  %-20s  %-7s  %s\n", "ID",
           "DEVICE", "UE", "KEY_ID", "PERMS", "LIFETIME", "ISSUED", "STATE",
           "PATH");
  }
  printf("%-8lld  %-16s  %-16s  %6u  %-22s  %8lu  %-20s  %-7s  ",
         (long long)s->id, app_format_id(dev, s->rec.mtcd_id),
         app_format_id(ue, s->rec.ueid), (unsigned)s->rec.key_id,
         app_format_perms(perms, s->rec.perms), (unsigned long)s->rec.lifetime,
         cli_format_date(date, s->issued_unix), sess_state(sc, s));
  if (s->rec.npath == 0) {
    printf("-");
  }
  for (i = 0; i < s->rec.npath && i < MTCSEC_MAX_PATH; i++) {
    printf("%s%s", i ? "," : "",
           app_format_id(hop, s->rec.path + i * MTCSEC_ID_LEN));
  }
  printf("\n");
  return 0;
}

int cmd_sessions(int argc, char **argv) {
  static const struct option opts[] = {{"limit", required_argument, NULL, 'n'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "sessions";
  uint8_t dev[MTCSEC_ID_LEN];
  int ch, rv, have_dev = 0;
  unsigned long long limit = 0;
  char *end, *text;
  char devhex[17];
  mtcsec_sqlite_devinfo info;
  sess_ctx sc;
  cli_env e;

  memset(&sc, 0, sizeof(sc));
  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":hn:", opts, NULL)) != -1) {
    switch (ch) {
    case 'n':
      errno = 0;
      limit = strtoull(optarg, &end, 10);
      if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-') {
        return cli_usage_error(cmd, SESSIONS_USAGE,
                               "--limit wants a number (0 = all)");
      }
      break;
    case 'j':
      sc.json = 1;
      break;
    case 'h':
      sessions_help();
      return CLI_OK;
    default:
      return cli_bad_option(cmd, argv, ch);
    }
  }
  if (argc - optind > 1) {
    return cli_usage_error(cmd, SESSIONS_USAGE, "too many arguments");
  }
  if (optind < argc) {
    if ((rv = cli_parse_id(cmd, "device ID", argv[optind], dev)) != CLI_OK) {
      return rv;
    }
    have_dev = 1;
  }
  if ((rv = cli_env_open(&e, cmd, CLI_ENV_READONLY)) != CLI_OK) {
    return rv;
  }
  if (have_dev) {
    rv = mtcsec_sqlite_device_get(e.st, dev, &info);
    if (rv == MTCSEC_ERR_NOT_FOUND) {
      cli_err(cmd, "no device %s; see 'mtcsec device list'",
              app_format_id(devhex, dev));
      rv = CLI_NOTFOUND;
      goto cleanup;
    }
    if (rv != 0) {
      cli_err(cmd, "store: %s", mtcsec_sqlite_errmsg(e.st));
      rv = CLI_INTERNAL;
      goto cleanup;
    }
  }
  sc.now = app_unix_now();
  if (sc.json && (sc.arr = cJSON_CreateArray()) == NULL) {
    cli_err(cmd, "out of memory");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  rv = mtcsec_sqlite_session_foreach(e.st, have_dev ? dev : NULL, (size_t)limit,
                                     sess_row, &sc);
  if (sc.oom) {
    cli_err(cmd, "out of memory");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  if (rv != 0) {
    cli_err(cmd, "store: %s", mtcsec_sqlite_errmsg(e.st));
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  if (sc.json) {
    text = cJSON_Print(sc.arr);
    if (text == NULL) {
      cli_err(cmd, "out of memory");
      rv = CLI_INTERNAL;
      goto cleanup;
    }
    printf("%s\n", text);
    cJSON_free(text);
  } else if (sc.n == 0) {
    fprintf(stderr, "no sessions\n");
  }
  rv = CLI_OK;

cleanup:
  cJSON_Delete(sc.arr);
  cli_env_close(&e);
  return rv;
}
