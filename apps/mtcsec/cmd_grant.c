/*
 * `mtcsec grant`: lets a UE obtain keys (DMKeys) for a device or for every
 * device of a group, with PERMS and a lifetime (PROTOCOL.md section 3), in
 * a calendar validity period; `grant --delete` removes a grant.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"

#define GRANT_USAGE                                                            \
  "mtcsec grant UEID DEVICE|@GROUP [--perms LIST] [--lifetime DURATION]\n"     \
  "                 [--from DATE] [--until DATE]\n"                            \
  "       mtcsec grant --delete UEID DEVICE|@GROUP"

static void grant_help(void) {
  printf("usage: " GRANT_USAGE "\n"
         "\n"
         "Lets UE UEID obtain keys for device DEVICE (16 hex digits) or for "
         "every device\n"
         "of group @GROUP.  A grant for the same UE and device or group is "
         "replaced.\n"
         "\n"
         "Options:\n"
         "  --perms LIST       read,write,actuate,configure or a bitmap like "
         "0x03\n"
         "                     (default: read)\n"
         "  --lifetime DUR     DMKey lifetime: 3600, 90s, 15m, 12h, 7d "
         "(default: 1h)\n"
         "  --from DATE        valid from DATE (default: now)\n"
         "  --until DATE       valid until DATE, exclusive (default: no "
         "end)\n"
         "  --delete           remove the grant instead\n"
         "  -h, --help         this text\n"
         "DATE is unix seconds, YYYY-MM-DD (00:00 UTC) or "
         "YYYY-MM-DDTHH:MM:SSZ.\n"
         "\n"
         "Exit status: 0 done, 2 usage, 3 no such device or grant, 4 "
         "configuration or\n"
         "permission problem, 5 internal error.\n");
}

int cmd_grant(int argc, char **argv) {
  static const struct option opts[] = {
    {"perms", required_argument, NULL, 'p'},
    {"lifetime", required_argument, NULL, 'l'},
    {"from", required_argument, NULL, 'f'},
    {"until", required_argument, NULL, 'u'},
    {"delete", no_argument, NULL, 'd'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  const char *cmd = "grant";
  const char *group = NULL, *target;
  uint8_t ueid[MTCSEC_ID_LEN], dev[MTCSEC_ID_LEN], perms = 0x01;
  uint32_t lifetime = 3600;
  int64_t from = 0, until = 0;
  int ch, rv, del = 0, is_group = 0, set_opts = 0;
  char uehex[17], devhex[17], perm_s[48], d1[21], d2[21], detail[256];
  char what[96];
  mtcsec_sqlite_devinfo info;
  cli_env e;

  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (ch) {
    case 'p':
      if (app_parse_perms(optarg, &perms) != 0 || perms == 0 ||
          (perms & 0xf0) != 0) {
        return cli_usage_error(cmd, GRANT_USAGE,
                               "--perms wants a non-empty list of read, "
                               "write, actuate, configure");
      }
      set_opts = 1;
      break;
    case 'l':
      if (app_parse_duration(optarg, &lifetime) != 0 || lifetime == 0) {
        return cli_usage_error(cmd, GRANT_USAGE,
                               "--lifetime wants a positive duration such as "
                               "3600, 90s, 15m, 12h or 7d");
      }
      set_opts = 1;
      break;
    case 'f':
    case 'u':
      if (cli_parse_date(optarg, ch == 'f' ? &from : &until) != 0) {
        return cli_usage_error(cmd, GRANT_USAGE,
                               "dates are unix seconds, YYYY-MM-DD or "
                               "YYYY-MM-DDTHH:MM:SSZ");
      }
      set_opts = 1;
      break;
    case 'd':
      del = 1;
      break;
    case 'h':
      grant_help();
      return CLI_OK;
    default:
      return cli_bad_option(cmd, argv, ch);
    }
  }
  if (argc - optind != 2) {
    return cli_usage_error(cmd, GRANT_USAGE, "expects UEID and DEVICE|@GROUP");
  }
  if (del && set_opts) {
    return cli_usage_error(cmd, GRANT_USAGE,
                           "--delete takes no --perms, --lifetime, --from "
                           "or --until");
  }
  if (until != 0 && until <= from) {
    return cli_usage_error(cmd, GRANT_USAGE, "--until must be after --from");
  }
  target = argv[optind + 1];
  if ((rv = cli_parse_id(cmd, "UEID", argv[optind], ueid)) != CLI_OK ||
      (rv = cli_parse_target(cmd, target, dev, &group, &is_group)) != CLI_OK) {
    return rv;
  }
  app_format_id(uehex, ueid);
  if (is_group) {
    snprintf(what, sizeof(what), "group @%s", group);
  } else {
    snprintf(what, sizeof(what), "device %s", app_format_id(devhex, dev));
  }

  if ((rv = cli_env_open(&e, cmd, 0)) != CLI_OK) {
    return rv;
  }
  if (del) {
    rv = mtcsec_sqlite_grant_del(e.st, ueid, is_group ? NULL : dev, group);
    if (rv == MTCSEC_ERR_NOT_FOUND) {
      cli_err(cmd, "UE %s has no grant for %s", uehex, what);
      rv = CLI_NOTFOUND;
      goto cleanup;
    }
    if (rv != 0) {
      cli_err(cmd, "store: %s", mtcsec_sqlite_errmsg(e.st));
      rv = cli_exit_for(rv);
      goto cleanup;
    }
    cli_audit(&e, "grant delete", ueid, NULL, what);
    printf("UE %s may no longer obtain keys for %s\n", uehex, what);
    rv = CLI_OK;
    goto cleanup;
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
  rv = mtcsec_sqlite_grant_set(e.st, ueid, is_group ? NULL : dev, group, perms,
                               lifetime, from, until);
  if (rv != 0) {
    cli_err(cmd, "cannot store the grant: %s (%s)", mtcsec_strerror(rv),
            mtcsec_sqlite_errmsg(e.st));
    rv = cli_exit_for(rv);
    goto cleanup;
  }
  app_format_perms(perm_s, perms);
  snprintf(d1, sizeof(d1), "-");
  snprintf(d2, sizeof(d2), "-");
  if (from != 0) {
    cli_format_date(d1, from);
  }
  if (until != 0) {
    cli_format_date(d2, until);
  }
  snprintf(detail, sizeof(detail), "%s perms=%s lifetime=%lu from=%s until=%s",
           what, perm_s, (unsigned long)lifetime, d1, d2);
  cli_audit(&e, "grant", ueid, NULL, detail);
  printf("UE %s may obtain keys for %s: perms %s, lifetime %lu s, valid "
         "from %s until %s\n",
         uehex, what, perm_s, (unsigned long)lifetime, from != 0 ? d1 : "now",
         until != 0 ? d2 : "deleted");
  rv = CLI_OK;

cleanup:
  cli_env_close(&e);
  return rv;
}
