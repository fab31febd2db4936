/*
 * `mtcsec sub add|list|show`: subscribers of the home proxy's built-in AuC
 * (docs/CELLULAR-HOME-PROXY.md).  The database and the KEK are those named
 * by mtchpd.conf in the state directory (keys `database`, `kek_file`),
 * else hlr.db and kek there.  K and OPc are never printed.  With --usim,
 * `sub add` also writes the MS's USIM file (docs/CELLULAR-SYSTEM.md
 * section 5) for `mtcsec ms run`.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include <mtcsec/cellular.h>

#include "cellular/auc_store.h"
#include "cli.h"
#include "cli_util.h"

#define SUB_ADD_USAGE                                                          \
  "mtcsec sub add IMSI --k HEX (--op HEX | --opc HEX) [--amf HEX] "            \
  "[--sqn N] [--ind-bitlen N] [--integrity-only] [--msisdn DIGITS] "           \
  "[--usim FILE [--mtcs-id HEX] [--plmn MCCMNC]]"

static void sub_help(FILE *f) {
  fprintf(f,
          "usage: " SUB_ADD_USAGE "\n"
          "       mtcsec sub list\n"
          "       mtcsec sub show IMSI\n"
          "\n"
          "add   adds a subscriber to the home proxy's AuC (hlr.db, or the "
          "database\n"
          "      named in mtchpd.conf); K and OPc are wrapped under the KEK.\n"
          "        --k HEX            K, 32 hex digits\n"
          "        --op HEX           OP, 32 hex digits (OPc is derived and "
          "stored)\n"
          "        --opc HEX          OPc, 32 hex digits\n"
          "        --amf HEX          AMF, 4 hex digits (default 8000)\n"
          "        --sqn N            SQN_HE, the last SQN issued (default "
          "0)\n"
          "        --ind-bitlen N     IND bits of SQN, 0..5 (default 5)\n"
          "        --integrity-only   the SGSN gets IK but never CK or Kc, "
          "plus the\n"
          "                           integrity=on ciphering=off policy IE\n"
          "        --msisdn DIGITS    the MSISDN, 1..15 digits, unique (sent "
          "to the SGSN in\n"
          "                           Insert Subscriber Data)\n"
          "        --usim FILE        also write the MS's USIM file (JSON, "
          "mode 0600) for\n"
          "                           'mtcsec ms run': IMSI, K, OPc, AMF, "
          "PLMN, MTC server ID,\n"
          "                           and the policy (integrity_only), "
          "which the MS enforces\n"
          "        --mtcs-id HEX      the MTC server ID in it (default: "
          "mtcs_id of mtcsd.conf)\n"
          "        --plmn MCCMNC      the PLMN in it, 5 or 6 digits "
          "(default: the IMSI's\n"
          "                           first 5 digits)\n"
          "list  every subscriber: IMSI, policy, AMF, SQN, IND bits, "
          "created, MSISDN\n"
          "show  one subscriber (never K or OPc)\n"
          "\n"
          "Exit status: 0 done, 1 the subscriber or USIM file exists "
          "already, 2 usage,\n3 no such subscriber or database, 4 "
          "configuration or permission problem, 5\ninternal error.\n");
}

/* The database and KEK paths: mtchpd.conf's database / kek_file (relative to
 * the state directory), else hlr.db and kek. */
static int sub_paths(const char *cmd, char *db, char *kek) {
  const char *conf = cli_path("mtchpd.conf");
  char confpath[CLI_PATH_MAX], err[512];
  const char *vdb = "hlr.db", *vkek = "kek";
  app_config *c = NULL;
  struct stat sb;
  int rv = CLI_OK;

  snprintf(confpath, sizeof(confpath), "%s", conf);
  if (stat(confpath, &sb) == 0) {
    c = app_config_load(confpath, err, sizeof(err));
    if (c == NULL) {
      cli_err(cmd, "%s", err);
      return CLI_CONFIG;
    }
    if (app_config_get(c, "database") != NULL) {
      vdb = app_config_get(c, "database");
    }
    if (app_config_get(c, "kek_file") != NULL) {
      vkek = app_config_get(c, "kek_file");
    }
  }
  if ((vdb[0] == '/' ? snprintf(db, CLI_PATH_MAX, "%s", vdb) >= CLI_PATH_MAX
                     : cli_join(db, CLI_PATH_MAX, cli_dir(), vdb) != 0) ||
      (vkek[0] == '/' ? snprintf(kek, CLI_PATH_MAX, "%s", vkek) >= CLI_PATH_MAX
                      : cli_join(kek, CLI_PATH_MAX, cli_dir(), vkek) != 0)) {
    cli_err(cmd, "path too long");
    rv = CLI_CONFIG;
  }
  app_config_free(c);
  return rv;
}

static int sub_open(const char *cmd, int flags, mtcsec_auc_store **st) {
  char db[CLI_PATH_MAX], kekpath[CLI_PATH_MAX], err[600];
  uint8_t kek[MTCSEC_KEK_LEN];
  int rv = sub_paths(cmd, db, kekpath);

  if (rv != CLI_OK) {
    return rv;
  }
  rv = cli_load_kek(cmd, kekpath, kek);
  if (rv != CLI_OK) {
    return rv;
  }
  rv = mtcsec_auc_store_open(st, db, kek, flags, err, sizeof(err));
  mtcsec_zeroize(kek, sizeof(kek));
  if (rv != 0) {
    cli_err(cmd, "%s", err);
    return rv == MTCSEC_ERR_NOT_FOUND ? CLI_NOTFOUND : CLI_INTERNAL;
  }
  return CLI_OK;
}

static int sub_parse_u64(const char *s, uint64_t max, uint64_t *out) {
  char *end = NULL;
  unsigned long long v;
  if (s == NULL || s[0] < '0' || s[0] > '9') {
    return -1;
  }
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || end == NULL || *end != '\0' || v > max) {
    return -1;
  }
  *out = (uint64_t)v;
  return 0;
}

/* The MTC server ID of the state directory's mtcsd.conf, for --usim. */
static int sub_default_mtcs_id(const char *cmd, uint8_t id[MTCSEC_ID_LEN]) {
  char confpath[CLI_PATH_MAX], err[512];
  app_config *c;
  const char *v;
  int rv = CLI_USAGE;

  snprintf(confpath, sizeof(confpath), "%s", cli_path("mtcsd.conf"));
  c = app_config_load(confpath, err, sizeof(err));
  if (c == NULL) {
    cli_err(cmd,
            "--usim needs --mtcs-id HEX (no mtcsd.conf to take it from: "
            "%s)",
            err);
    return CLI_USAGE;
  }
  v = app_config_get(c, "mtcs_id");
  if (v != NULL && app_parse_id(v, id) == 0) {
    rv = CLI_OK;
  } else {
    cli_err(cmd, "%s has no valid mtcs_id; give --mtcs-id HEX", confpath);
  }
  app_config_free(c);
  return rv;
}

/* "MCCMNC": 5 or 6 digits. */
static int sub_plmn_valid(const char *s) {
  size_t n = strlen(s), i;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return 0;
    }
  }
  return n == 5 || n == 6;
}

/* docs/CELLULAR-SYSTEM.md section 5: the MS's USIM file, mode 0600. */
static int sub_write_usim(const char *cmd, const char *path,
                          const mtcsec_auc_sub *sub, const char *plmn,
                          const uint8_t mtcs_id[MTCSEC_ID_LEN]) {
  char k[33], opc[33], amf[5], id[17];
  cJSON *o = cJSON_CreateObject();
  char *text = NULL;
  int rv = CLI_INTERNAL;

  app_format_hex(k, sub->k, sizeof(sub->k));
  app_format_hex(opc, sub->opc, sizeof(sub->opc));
  app_format_hex(amf, sub->amf, sizeof(sub->amf));
  app_format_id(id, mtcs_id);
  if (o == NULL || cJSON_AddStringToObject(o, "imsi", sub->imsi) == NULL ||
      cJSON_AddStringToObject(o, "k", k) == NULL ||
      cJSON_AddStringToObject(o, "opc", opc) == NULL ||
      cJSON_AddStringToObject(o, "amf", amf) == NULL ||
      cJSON_AddStringToObject(o, "plmn", plmn) == NULL ||
      cJSON_AddStringToObject(o, "mtcs_id", id) == NULL ||
      cJSON_AddNumberToObject(o, "ind_bitlen", sub->ind_bitlen) == NULL ||
      /* The MS's provisioned policy: it refuses an ATTACH_ACCEPT without
       * integrity when this is true (docs/CELLULAR-SYSTEM.md section 5). */
      cJSON_AddBoolToObject(o, "integrity_only", sub->integrity_only != 0) ==
        NULL ||
      (text = cJSON_Print(o)) == NULL) {
    cli_err(cmd, "out of memory");
    goto cleanup;
  }
  if (app_write_file_atomic(path, text, strlen(text), 0600) != 0) {
    cli_err(cmd, "cannot write %s: %s", path, strerror(errno));
    goto cleanup;
  }
  rv = CLI_OK;

cleanup:
  if (text != NULL) {
    mtcsec_zeroize(text, strlen(text));
    cJSON_free(text);
  }
  if (o != NULL) {
    cJSON *it;
    cJSON_ArrayForEach(it, o) {
      if (cJSON_IsString(it)) {
        mtcsec_zeroize(it->valuestring, strlen(it->valuestring));
      }
    }
  }
  cJSON_Delete(o);
  mtcsec_zeroize(k, sizeof(k));
  mtcsec_zeroize(opc, sizeof(opc));
  return rv;
}

static int sub_add(int argc, char **argv) {
  static const struct option opts[] = {
    {"k", required_argument, NULL, 'k'},
    {"op", required_argument, NULL, 'o'},
    {"opc", required_argument, NULL, 'c'},
    {"amf", required_argument, NULL, 'a'},
    {"sqn", required_argument, NULL, 's'},
    {"ind-bitlen", required_argument, NULL, 'i'},
    {"integrity-only", no_argument, NULL, 'I'},
    {"msisdn", required_argument, NULL, 'N'},
    {"usim", required_argument, NULL, 'U'},
    {"mtcs-id", required_argument, NULL, 'M'},
    {"plmn", required_argument, NULL, 'P'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  const char *cmd = "sub add";
  mtcsec_auc_sub sub;
  mtcsec_auc_store *st = NULL;
  uint8_t op[MTCSEC_3GPP_K_LEN], mtcs_id[MTCSEC_ID_LEN];
  int have_k = 0, have_op = 0, have_opc = 0, have_mtcs = 0, ch, rv;
  const char *usim = NULL, *plmn = NULL;
  char plmn_buf[7];
  struct stat sb;
  uint64_t v;

  memset(&sub, 0, sizeof(sub));
  sub.amf[0] = 0x80;
  sub.ind_bitlen = MTCSEC_AUC_DEFAULT_IND_BITLEN;
  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'k':
      if (app_parse_hex(optarg, sub.k, sizeof(sub.k)) != 0) {
        rv = cli_usage_error(cmd, SUB_ADD_USAGE, "--k needs 32 hex digits");
        goto cleanup;
      }
      have_k = 1;
      break;
    case 'o':
      if (app_parse_hex(optarg, op, sizeof(op)) != 0) {
        rv = cli_usage_error(cmd, SUB_ADD_USAGE, "--op needs 32 hex digits");
        goto cleanup;
      }
      have_op = 1;
      break;
    case 'c':
      if (app_parse_hex(optarg, sub.opc, sizeof(sub.opc)) != 0) {
        rv = cli_usage_error(cmd, SUB_ADD_USAGE, "--opc needs 32 hex digits");
        goto cleanup;
      }
      have_opc = 1;
      break;
    case 'a':
      if (app_parse_hex(optarg, sub.amf, sizeof(sub.amf)) != 0) {
        rv = cli_usage_error(cmd, SUB_ADD_USAGE, "--amf needs 4 hex digits");
        goto cleanup;
      }
      break;
    case 's':
      if (sub_parse_u64(optarg, MTCSEC_SQN_MAX, &v) != 0) {
        rv = cli_usage_error(cmd, SUB_ADD_USAGE,
                             "--sqn needs a number 0..281474976710655");
        goto cleanup;
      }
      sub.sqn = v;
      break;
    case 'i':
      if (sub_parse_u64(optarg, MTCSEC_SQN_MAX_IND_BITLEN, &v) != 0) {
        rv = cli_usage_error(cmd, SUB_ADD_USAGE, "--ind-bitlen is 0..5");
        goto cleanup;
      }
      sub.ind_bitlen = (unsigned)v;
      break;
    case 'I':
      sub.integrity_only = 1;
      break;
    case 'N':
      if (!mtcsec_auc_msisdn_valid(optarg, strlen(optarg))) {
        rv = cli_usage_error(cmd, SUB_ADD_USAGE,
                             "--msisdn is 1 to 15 digits (E.164, no '+')");
        goto cleanup;
      }
      snprintf(sub.msisdn, sizeof(sub.msisdn), "%s", optarg);
      break;
    case 'U':
      usim = optarg;
      break;
    case 'M':
      if (app_parse_id(optarg, mtcs_id) != 0) {
        rv =
          cli_usage_error(cmd, SUB_ADD_USAGE, "--mtcs-id needs 16 hex digits");
        goto cleanup;
      }
      have_mtcs = 1;
      break;
    case 'P':
      if (!sub_plmn_valid(optarg)) {
        rv = cli_usage_error(cmd, SUB_ADD_USAGE,
                             "--plmn is MCC and MNC, 5 or 6 digits");
        goto cleanup;
      }
      plmn = optarg;
      break;
    case 'h':
      sub_help(stdout);
      rv = CLI_OK;
      goto cleanup;
    default:
      rv = cli_bad_option(cmd, argv, ch);
      goto cleanup;
    }
  }
  if (optind + 1 != argc) {
    rv = cli_usage_error(cmd, SUB_ADD_USAGE, "exactly one IMSI is needed");
    goto cleanup;
  }
  if (!mtcsec_auc_imsi_valid(argv[optind], strlen(argv[optind]))) {
    rv = cli_usage_error(cmd, SUB_ADD_USAGE, "the IMSI is 6 to 15 digits");
    goto cleanup;
  }
  if (!have_k || have_op == have_opc) {
    rv = cli_usage_error(cmd, SUB_ADD_USAGE,
                         "--k and exactly one of --op and --opc are needed");
    goto cleanup;
  }
  if (usim == NULL && (have_mtcs || plmn != NULL)) {
    rv = cli_usage_error(cmd, SUB_ADD_USAGE,
                         "--mtcs-id and --plmn go with --usim FILE");
    goto cleanup;
  }
  snprintf(sub.imsi, sizeof(sub.imsi), "%s", argv[optind]);
  if (usim != NULL) {
    if (plmn == NULL) {
      snprintf(plmn_buf, sizeof(plmn_buf), "%.5s", sub.imsi);
      plmn = plmn_buf;
    }
    if (!have_mtcs && (rv = sub_default_mtcs_id(cmd, mtcs_id)) != CLI_OK) {
      goto cleanup;
    }
    if (stat(usim, &sb) == 0) {
      cli_err(cmd, "%s exists already; remove it first to write a new USIM",
              usim);
      rv = CLI_FAILED;
      goto cleanup;
    }
  }
  if (have_op && mtcsec_milenage_opc(sub.k, op, sub.opc) != 0) {
    cli_err(cmd, "deriving OPc from OP failed");
    rv = CLI_INTERNAL;
    goto cleanup;
  }
  rv = sub_open(cmd, 0, &st);
  if (rv != CLI_OK) {
    goto cleanup;
  }
  rv = mtcsec_auc_store_add(st, &sub);
  if (rv == MTCSEC_ERR_BUSY) {
    /* The IMSI, or the MSISDN, is taken: the store's message says which. */
    cli_err(cmd, "%s", mtcsec_auc_store_errmsg(st));
    rv = CLI_FAILED;
  } else if (rv != 0) {
    cli_err(cmd, "%s", mtcsec_auc_store_errmsg(st));
    rv = CLI_INTERNAL;
  } else if (usim != NULL &&
             (rv = sub_write_usim(cmd, usim, &sub, plmn, mtcs_id)) != CLI_OK) {
    cli_err(cmd, "subscriber %s was added; only its USIM file is missing",
            sub.imsi);
  } else {
    printf("%s\n", sub.imsi);
    rv = CLI_OK;
  }

cleanup:
  mtcsec_auc_store_close(st);
  mtcsec_zeroize(&sub, sizeof(sub));
  mtcsec_zeroize(op, sizeof(op));
  return rv;
}

static int sub_list_row(void *ud, const mtcsec_auc_sub *s) {
  char amf[5], created[21];
  (void)ud;
  printf("%-15s  %-14s  %s  %15" PRIu64 "  %u  %-20s  %s\n", s->imsi,
         s->integrity_only ? "integrity-only" : "normal",
         app_format_hex(amf, s->amf, sizeof(s->amf)), s->sqn, s->ind_bitlen,
         cli_format_date(created, s->created),
         s->msisdn[0] != '\0' ? s->msisdn : "-");
  return 0;
}

static int sub_list(int argc, char **argv) {
  mtcsec_auc_store *st = NULL;
  int rv;

  if (argc > 1) {
    if (cli_is_help(argv[1])) {
      sub_help(stdout);
      return CLI_OK;
    }
    return cli_usage_error("sub list", "mtcsec sub list", "no arguments");
  }
  rv = sub_open("sub list", MTCSEC_AUC_READONLY, &st);
  if (rv != CLI_OK) {
    return rv;
  }
  printf("%-15s  %-14s  %s  %15s  %s  %-20s  %s\n", "IMSI", "POLICY", "AMF ",
         "SQN", "I", "CREATED", "MSISDN");
  rv = mtcsec_auc_store_list(st, sub_list_row, NULL);
  if (rv != 0) {
    cli_err("sub list", "%s", mtcsec_auc_store_errmsg(st));
    rv = CLI_INTERNAL;
  }
  mtcsec_auc_store_close(st);
  return rv;
}

static int sub_show(int argc, char **argv) {
  mtcsec_auc_store *st = NULL;
  mtcsec_auc_sub sub;
  char amf[5], created[21];
  int rv;

  if (argc == 2 && cli_is_help(argv[1])) {
    sub_help(stdout);
    return CLI_OK;
  }
  if (argc != 2 || !mtcsec_auc_imsi_valid(argv[1], strlen(argv[1]))) {
    return cli_usage_error("sub show", "mtcsec sub show IMSI",
                           "one IMSI (6 to 15 digits) is needed");
  }
  rv = sub_open("sub show", MTCSEC_AUC_READONLY, &st);
  if (rv != CLI_OK) {
    return rv;
  }
  rv = mtcsec_auc_store_get(st, argv[1], &sub, 0);
  if (rv == MTCSEC_ERR_NOT_FOUND) {
    cli_err("sub show", "no subscriber %s", argv[1]);
    rv = CLI_NOTFOUND;
  } else if (rv != 0) {
    cli_err("sub show", "%s", mtcsec_auc_store_errmsg(st));
    rv = CLI_INTERNAL;
  } else {
    printf("imsi: %s\n"
           "policy: %s\n"
           "algorithm: MILENAGE\n"
           "amf: %s\n"
           "sqn: %" PRIu64 "\n"
           "ind_bitlen: %u\n"
           "created: %s\n"
           "msisdn: %s\n",
           sub.imsi,
           sub.integrity_only ? "integrity-only (integrity=on ciphering=off)"
                              : "normal",
           app_format_hex(amf, sub.amf, sizeof(sub.amf)), sub.sqn,
           sub.ind_bitlen, cli_format_date(created, sub.created),
           sub.msisdn[0] != '\0' ? sub.msisdn : "-");
    rv = CLI_OK;
  }
  mtcsec_auc_store_close(st);
  return rv;
}

int cmd_sub(int argc, char **argv) {
  if (argc < 2 || cli_is_help(argv[1])) {
    sub_help(argc < 2 ? stderr : stdout);
    return argc < 2 ? CLI_USAGE : CLI_OK;
  }
  if (strcmp(argv[1], "add") == 0) {
    return sub_add(argc - 1, argv + 1);
  }
  if (strcmp(argv[1], "list") == 0) {
    return sub_list(argc - 1, argv + 1);
  }
  if (strcmp(argv[1], "show") == 0) {
    return sub_show(argc - 1, argv + 1);
  }
  return cli_usage_error("sub", "mtcsec sub add|list|show ...",
                         "unknown subcommand");
}
