/*
 * `mtcsec device add|list|show|disable|enable|run`: provisioning of devices
 * (docs/OPERATIONS.md, "The device provisioning file").  `device run` is
 * the simulated device of agent_device.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_util.h"

#define ADD_USAGE                                                              \
  "mtcsec device add [ID] [--suite 1|2|3] [--label TEXT] [--group NAME]"

static void device_help(FILE *f) {
  fprintf(f, "usage: " ADD_USAGE "\n"
             "       mtcsec device list\n"
             "       mtcsec device show ID\n"
             "       mtcsec device disable ID\n"
             "       mtcsec device enable ID\n"
             "       mtcsec device run ...      (a simulated device; see "
             "'mtcsec device run --help')\n"
             "\n"
             "add      provisions a device with a fresh PSKey from the OS "
             "CSPRNG and writes\n"
             "         its provisioning file devices/ID.json (mode 0600); "
             "prints its path.\n"
             "         ID is 16 hex digits (default: random).\n"
             "           --suite N      cipher suite 1, 2 or 3 (default 1: "
             "AES-128-CMAC)\n"
             "           --label TEXT   a free-form label (up to 63 "
             "characters)\n"
             "           --group NAME   a group, for grants and relays to "
             "@NAME\n"
             "list     every device: ID, suite, state, group, label, sessions, "
             "last nonce\n"
             "show     one device, with the grants and relays that apply to "
             "it\n"
             "disable  the server refuses keys for the device until enabled "
             "again\n"
             "enable   undoes disable\n"
             "\n"
             "Exit status: 0 done, 1 the device exists already, 2 usage, 3 no "
             "such device,\n"
             "4 configuration or permission problem, 5 internal error.\n");
}

static const char *suite_name(unsigned suite) {
  switch (suite) {
  case MTCSEC_SUITE_CMAC_AES128:
    return "AES-128-CMAC, AES-128-CCM";
  case MTCSEC_SUITE_HMAC_SHA256_AES128:
    return "HMAC-SHA-256, AES-128-CCM";
  case MTCSEC_SUITE_HMAC_SHA256_AES256:
    return "HMAC-SHA-256, AES-256-CCM";
  default:
    return "unknown";
  }
}

/* A label or group: printable, shorter than the store's 64 bytes. */
static int check_text(const char *cmd, const char *what, const char *s,
                      int spaces) {
  size_t i, n = strlen(s);
  if (n == 0 || n > 63) {
    cli_err(cmd, "%s must have 1 to 63 characters", what);
    return CLI_USAGE;
  }
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f || (!spaces && c == ' ')) {
      cli_err(cmd, "%s '%s' may not hold %s", what, s,
              spaces ? "control characters" : "spaces or control characters");
      return CLI_USAGE;
    }
  }
  return CLI_OK;
}

static int device_add(int argc, char **argv) {
  static const struct option opts[] = {{"suite", required_argument, NULL, 's'},
                                       {"label", required_argument, NULL, 'l'},
                                       {"group", required_argument, NULL, 'g'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "device add";
  const char *label = NULL, *group = NULL;
  const mtcsec_suite_params *sp;
  unsigned long suite = MTCSEC_SUITE_CMAC_AES128;
  char *end;
  int ch, rv, given = 0;
  cli_env e;
  uint8_t id[MTCSEC_ID_LEN], pskey[MTCSEC_MAX_KEY_LEN];
  mtcsec_sqlite_devinfo info;
  char idhex[17], mtcshex[17], pskhex[2 * MTCSEC_MAX_KEY_LEN + 1];
  char json[256], name[64], path[CLI_PATH_MAX], detail[192];
  int n;

  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (ch) {
    case 's':
      errno = 0;
      suite = strtoul(optarg, &end, 0);
      if (errno != 0 || end == optarg || *end != '\0' || suite > 255 ||
          mtcsec_suite_get((uint8_t)suite) == NULL) {
        return cli_usage_error(cmd, ADD_USAGE, "--suite must be 1, 2 or 3");
      }
      break;
    case 'l':
      label = optarg;
      break;
    case 'g':
      group = optarg[0] == '@' ? optarg + 1 : optarg;
      break;
    case 'h':
      device_help(stdout);
      return CLI_OK;
    default:
      return cli_bad_option(cmd, argv, ch);
    }
  }
  if (argc - optind > 1) {
    return cli_usage_error(cmd, ADD_USAGE, "too many arguments");
  }
  if (optind < argc) {
    if ((rv = cli_parse_id(cmd, "device ID", argv[optind], id)) != CLI_OK) {
      return rv;
    }
    given = 1;
  }
  if ((label != NULL && (rv = check_text(cmd, "--label", label, 1)) != 0) ||
      (group != NULL && (rv = check_text(cmd, "--group", group, 0)) != 0)) {
    return rv;
  }
  sp = mtcsec_suite_get((uint8_t)suite);

  if ((rv = cli_env_open(&e, cmd, 0)) != CLI_OK) {
    return rv;
  }
  /* A fresh ID, or the given one if it is free. */
  for (;;) {
    if (!given && (rv = cli_random_id(&e, id)) != CLI_OK) {
      goto cleanup;
    }
    rv = mtcsec_sqlite_device_get(e.st, id, &info);
    if (rv == MTCSEC_ERR_NOT_FOUND) {
      break;
    }
    if (rv != 0) {
      cli_err(cmd, "store: %s", mtcsec_sqlite_errmsg(e.st));
      rv = CLI_INTERNAL;
      goto cleanup;
    }
    if (given) {
      cli_err(cmd, "device %s exists already; see 'mtcsec device show %s'",
              app_format_id(idhex, id), idhex);
      rv = CLI_FAILED;
      goto cleanup;
    }
  }
  app_format_id(idhex, id);
  app_format_id(mtcshex, e.mtcs_id);

  if (e.crypto.ops->random(e.crypto.ctx, pskey, sp->keylen) != 0) {
    cli_err(cmd, "the random generator failed");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  app_format_hex(pskhex, pskey, sp->keylen);
  /* The spec's names, lowercase hex (docs/OPERATIONS.md). */
  n = snprintf(json, sizeof(json),
               "{\"MTCdID\": \"%s\", \"MTCsID\": \"%s\", \"suite\": %u, "
               "\"PSKey\": \"%s\"}\n",
               idhex, mtcshex, (unsigned)sp->id, pskhex);
  snprintf(name, sizeof(name), "devices/%s.json", idhex);
  if (n < 0 || (size_t)n >= sizeof(json) ||
      (rv = cli_env_path(&e, path, sizeof(path), "devices")) != CLI_OK) {
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  if (cli_mkdir(path, 0700) != 0) {
    cli_err(cmd, "cannot create %s: %s", path, strerror(errno));
    rv = CLI_CONFIG;
    goto cleanup;
  }
  if ((rv = cli_env_path(&e, path, sizeof(path), name)) != CLI_OK) {
    goto cleanup;
  }
  /* The file first: a device in the store whose PSKey was lost could never
   * be used, while a file without a device is harmless and is removed. */
  if (app_write_file_atomic(path, json, (size_t)n, 0600) != 0) {
    cli_err(cmd, "cannot write %s: %s", path, strerror(errno));
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  rv =
    mtcsec_sqlite_device_add(e.st, id, e.mtcs_id, sp->id, pskey, label, group);
  if (rv != 0) {
    unlink(path);
    if (rv == MTCSEC_ERR_INVALID_STATE) {
      cli_err(cmd, "device %s exists already", idhex);
      rv = CLI_FAILED;
    } else {
      cli_err(cmd, "cannot store device %s: %s (%s)", idhex,
              mtcsec_strerror(rv), mtcsec_sqlite_errmsg(e.st));
      rv = CLI_INTERNAL;
    }
    goto cleanup;
  }
  snprintf(detail, sizeof(detail), "suite=%u%s%s%s%s", (unsigned)sp->id,
           group != NULL ? " group=" : "", group != NULL ? group : "",
           label != NULL ? " label=" : "", label != NULL ? label : "");
  cli_audit(&e, "device add", id, NULL, detail);
  printf("%s\n", path);
  rv = CLI_OK;

cleanup:
  mtcsec_zeroize(pskey, sizeof(pskey));
  mtcsec_zeroize(pskhex, sizeof(pskhex));
  mtcsec_zeroize(json, sizeof(json));
  cli_env_close(&e);
  return rv;
}

/* Parses `device VERB ID` (no options but --help). */
static int one_id_verb(int argc, char **argv, const char *cmd,
                       const char *usage, uint8_t id[MTCSEC_ID_LEN]) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int ch;
  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    if (ch == 'h') {
      device_help(stdout);
      return -1;
    }
    return cli_bad_option(cmd, argv, ch);
  }
  if (argc - optind != 1) {
    return cli_usage_error(cmd, usage, "expects one device ID");
  }
  return cli_parse_id(cmd, "device ID", argv[optind], id);
}

typedef struct list_ctx {
  size_t n;
} list_ctx;

static void format_nonce(char out[17], const mtcsec_window *w) {
  if (w->bitmap == 0) {
    snprintf(out, 17, "-");
  } else {
    snprintf(out, 17, "%016llx", (unsigned long long)w->top);
  }
}

static int list_row(void *ud, const mtcsec_sqlite_devinfo *d) {
  list_ctx *lc = ud;
  char idhex[17], nonce[17];
  if (lc->n++ == 0) {
    printf("%-16s  %-5s  %-8s  %-12s  %-20s  %8s  %s\n", "ID", "SUITE", "STATE",
           "GROUP", "LABEL", "SESSIONS", "LAST NONCE");
  }
  format_nonce(nonce, &d->window);
  printf(
    "%-16s  %-5u  %-8s  %-12s  %-20s  %8llu  %s\n", app_format_id(idhex, d->id),
    (unsigned)d->suite, d->disabled ? "disabled" : "enabled",
    d->group[0] != '\0' ? d->group : "-", d->label[0] != '\0' ? d->label : "-",
    (unsigned long long)d->sessions, nonce);
  return 0;
}

static int device_list(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "device list";
  list_ctx lc;
  cli_env e;
  int ch, rv;

  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    if (ch == 'h') {
      device_help(stdout);
      return CLI_OK;
    }
    return cli_bad_option(cmd, argv, ch);
  }
  if (optind != argc) {
    return cli_usage_error(cmd, "mtcsec device list", "takes no arguments");
  }
  if ((rv = cli_env_open(&e, cmd, CLI_ENV_READONLY)) != CLI_OK) {
    return rv;
  }
  lc.n = 0;
  rv = mtcsec_sqlite_device_foreach(e.st, list_row, &lc);
  if (rv != 0) {
    cli_err(cmd, "store: %s", mtcsec_sqlite_errmsg(e.st));
    rv = CLI_INTERNAL;
  } else {
    if (lc.n == 0) {
      fprintf(stderr, "no devices; add one with 'mtcsec device add'\n");
    }
    rv = CLI_OK;
  }
  cli_env_close(&e);
  return rv;
}

/*
 * The store lists neither grants nor relays, so `show` asks it about every
 * UE certificate in ues/ and every relay in relays/ (the ones this tool
 * issued or registered).
 */
static int id_file(const char *name, const char *suffix,
                   uint8_t id[MTCSEC_ID_LEN]) {
  char buf[17];
  size_t n = strlen(name), sl = strlen(suffix);
  if (n != 16 + sl || strcmp(name + 16, suffix) != 0) {
    return -1;
  }
  memcpy(buf, name, 16);
  buf[16] = '\0';
  return app_parse_id(buf, id);
}

static void show_grants(cli_env *e, const uint8_t dev[MTCSEC_ID_LEN]) {
  char path[CLI_PATH_MAX], idhex[17], perms[48];
  struct dirent *de;
  DIR *d;
  uint8_t ue[MTCSEC_ID_LEN];
  mtcsec_store_grant g;
  size_t n = 0;

  printf("grants valid now (UEs of ues/):\n");
  if (cli_env_path(e, path, sizeof(path), "ues") == CLI_OK &&
      (d = opendir(path)) != NULL) {
    while ((de = readdir(d)) != NULL) {
      if (id_file(de->d_name, ".pem", ue) != 0 ||
          mtcsec_sqlite_ops.get_grant(e->st, dev, ue, &g) != 0) {
        continue;
      }
      printf("  UE %s  perms %s  lifetime %lus\n", app_format_id(idhex, ue),
             app_format_perms(perms, g.perms), (unsigned long)g.lifetime);
      n++;
    }
    closedir(d);
  }
  if (n == 0) {
    printf("  (none)\n");
  }
  printf("relays allowed (relays/):\n");
  n = 0;
  if (cli_env_path(e, path, sizeof(path), "relays") == CLI_OK &&
      (d = opendir(path)) != NULL) {
    while ((de = readdir(d)) != NULL) {
      if (id_file(de->d_name, ".json", ue) != 0 ||
          mtcsec_sqlite_ops.relay_allowed(e->st, dev, ue) != 0) {
        continue;
      }
      printf("  GW %s\n", app_format_id(idhex, ue));
      n++;
    }
    closedir(d);
  }
  if (n == 0) {
    printf("  (none)\n");
  }
}

static int device_show(int argc, char **argv) {
  const char *cmd = "device show";
  uint8_t id[MTCSEC_ID_LEN];
  mtcsec_sqlite_devinfo info;
  char idhex[17], nonce[17], date[21], name[64], path[CLI_PATH_MAX];
  struct stat sb;
  cli_env e;
  int rv;

  rv = one_id_verb(argc, argv, cmd, "mtcsec device show ID", id);
  if (rv != CLI_OK) {
    return rv < 0 ? CLI_OK : rv;
  }
  if ((rv = cli_env_open(&e, cmd, CLI_ENV_READONLY)) != CLI_OK) {
    return rv;
  }
  app_format_id(idhex, id);
  rv = mtcsec_sqlite_device_get(e.st, id, &info);
  if (rv == MTCSEC_ERR_NOT_FOUND) {
    cli_err(cmd, "no device %s; see 'mtcsec device list'", idhex);
    rv = CLI_NOTFOUND;
    goto cleanup;
  }
  if (rv != 0) {
    cli_err(cmd, "store: %s", mtcsec_sqlite_errmsg(e.st));
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  format_nonce(nonce, &info.window);
  snprintf(name, sizeof(name), "devices/%s.json", idhex);
  if (cli_env_path(&e, path, sizeof(path), name) != CLI_OK) {
    path[0] = '\0';
  }
  printf("device %s\n"
         "  suite:      %u (%s)\n"
         "  state:      %s\n"
         "  group:      %s\n"
         "  label:      %s\n"
         "  created:    %s\n"
         "  sessions:   %llu\n"
         "  last nonce: %s (window bitmap %016llx)\n"
         "  file:       %s%s\n",
         idhex, (unsigned)info.suite, suite_name(info.suite),
         info.disabled ? "disabled" : "enabled",
         info.group[0] != '\0' ? info.group : "-",
         info.label[0] != '\0' ? info.label : "-",
         cli_format_date(date, info.created), (unsigned long long)info.sessions,
         nonce, (unsigned long long)info.window.bitmap, path,
         stat(path, &sb) == 0 ? "" : " (missing)");
  show_grants(&e, id);
  rv = CLI_OK;

cleanup:
  cli_env_close(&e);
  return rv;
}

static int device_disable(int argc, char **argv, int disabled) {
  const char *cmd = disabled ? "device disable" : "device enable";
  uint8_t id[MTCSEC_ID_LEN];
  char idhex[17];
  cli_env e;
  int rv;

  rv = one_id_verb(
    argc, argv, cmd,
    disabled ? "mtcsec device disable ID" : "mtcsec device enable ID", id);
  if (rv != CLI_OK) {
    return rv < 0 ? CLI_OK : rv;
  }
  if ((rv = cli_env_open(&e, cmd, 0)) != CLI_OK) {
    return rv;
  }
  app_format_id(idhex, id);
  rv = mtcsec_sqlite_device_disable(e.st, id, disabled);
  if (rv == MTCSEC_ERR_NOT_FOUND) {
    cli_err(cmd, "no device %s; see 'mtcsec device list'", idhex);
    rv = CLI_NOTFOUND;
  } else if (rv != 0) {
    cli_err(cmd, "store: %s", mtcsec_sqlite_errmsg(e.st));
    rv = CLI_INTERNAL;
  } else {
    cli_audit(&e, cmd, id, NULL, NULL);
    printf("device %s %s\n", idhex, disabled ? "disabled" : "enabled");
    rv = CLI_OK;
  }
  cli_env_close(&e);
  return rv;
}

int cmd_device(int argc, char **argv) {
  const char *verb;
  if (argc < 2) {
    device_help(stderr);
    return CLI_USAGE;
  }
  verb = argv[1];
  if (cli_is_help(verb) || strcmp(verb, "help") == 0) {
    device_help(stdout);
    return CLI_OK;
  }
  if (strcmp(verb, "add") == 0) {
    return device_add(argc - 1, argv + 1);
  }
  if (strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0) {
    return device_list(argc - 1, argv + 1);
  }
  if (strcmp(verb, "show") == 0) {
    return device_show(argc - 1, argv + 1);
  }
  if (strcmp(verb, "disable") == 0) {
    return device_disable(argc - 1, argv + 1, 1);
  }
  if (strcmp(verb, "enable") == 0) {
    return device_disable(argc - 1, argv + 1, 0);
  }
  if (strcmp(verb, "run") == 0) {
    return agent_device_run(argc - 1, argv + 1);
  }
  cli_err("device", "'%s' is not a verb; see 'mtcsec device --help'", verb);
  return CLI_USAGE;
}
