/*
 * `mtcsec revoke SESSION`: marks a session revoked and writes its
 * revocation message (PROTOCOL.md section 7), which any UE or relay can
 * carry to the device.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"

#define REVOKE_USAGE "mtcsec revoke SESSION [--out FILE]"

/* 0x17 || MTCsID || MTCdID || key_id || MTCdNonce || MIC(t <= 16) */
#define REVOKE_MAX (1 + 8 + 8 + 2 + 8 + MTCSEC_MAX_MIC_LEN)

static void revoke_help(void) {
  printf("usage: " REVOKE_USAGE "\n"
         "\n"
         "Marks session SESSION (its number in 'mtcsec sessions') revoked "
         "and prints its\n"
         "revocation message in hex, authenticated with the device's key: "
         "any UE or\n"
         "relay can carry it to the device, which then erases that DMKey.  "
         "Revoking\n"
         "a session again prints the same message.\n"
         "\n"
         "Options:\n"
         "  --out FILE   write the message in binary to FILE instead\n"
         "  -h, --help   this text\n"
         "\n"
         "Exit status: 0 done, 2 usage, 3 no such session, 4 configuration "
         "or permission\n"
         "problem, 5 internal error.\n");
}

int cmd_revoke(int argc, char **argv) {
  static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "revoke";
  const char *out = NULL;
  char *end;
  long long id;
  uint8_t msg[REVOKE_MAX];
  char hex[2 * REVOKE_MAX + 1], subject[32], detail[96], devhex[17];
  mtcsec_ssize n;
  int ch, rv;
  cli_env e;

  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
    switch (ch) {
    case 'o':
      out = optarg;
      break;
    case 'h':
      revoke_help();
      return CLI_OK;
    default:
      return cli_bad_option(cmd, argv, ch);
    }
  }
  if (argc - optind != 1) {
    return cli_usage_error(cmd, REVOKE_USAGE, "expects one SESSION number");
  }
  errno = 0;
  id = strtoll(argv[optind], &end, 10);
  if (errno != 0 || end == argv[optind] || *end != '\0' || id <= 0) {
    return cli_usage_error(cmd, REVOKE_USAGE,
                           "SESSION is a positive number; see 'mtcsec "
                           "sessions'");
  }
  if ((rv = cli_env_open(&e, cmd, 0)) != CLI_OK) {
    return rv;
  }
  n = mtcsec_sqlite_session_revoke(e.st, (int64_t)id, msg, sizeof(msg));
  if (n == MTCSEC_ERR_NOT_FOUND) {
    cli_err(cmd, "no session %lld; see 'mtcsec sessions'", id);
    rv = CLI_NOTFOUND;
    goto cleanup;
  }
  if (n < 0) {
    cli_err(cmd, "cannot revoke session %lld: %s (%s)", id,
            mtcsec_strerror((int)n), mtcsec_sqlite_errmsg(e.st));
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  snprintf(subject, sizeof(subject), "%lld", id);
  if (n >= 19) {
    snprintf(detail, sizeof(detail), "device=%s key_id=%u",
             app_format_id(devhex, msg + 9),
             (unsigned)((msg[17] << 8) | msg[18]));
  } else {
    detail[0] = '\0';
  }
  cli_audit(&e, "revoke", NULL, subject, detail);
  if (out != NULL) {
    if (app_write_file_atomic(out, msg, (size_t)n, 0644) != 0) {
      cli_err(cmd,
              "session %lld is revoked, but %s could not be written: %s; "
              "run the command again to get the message",
              id, out, strerror(errno));
      rv = CLI_FAILED;
      goto cleanup;
    }
    fprintf(stderr, "session %lld revoked; %ld-byte revocation written to %s\n",
            id, (long)n, out);
  } else {
    printf("%s\n", app_format_hex(hex, msg, (size_t)n));
  }
  rv = CLI_OK;

cleanup:
  cli_env_close(&e);
  return rv;
}
