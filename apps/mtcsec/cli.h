/*
 * The mtcsec command-line tool: one binary, git/ip/wg-style subcommands.
 * main() only calls mtcsec_cli_run().  Each subcommand lives in its own
 * cmd_<name>.c (administration) or agent_<role>.c (simulated device, UE,
 * relay) and parses its own options with getopt_long, prints --help, and
 * returns one of the exit codes below.
 */
#ifndef MTCSEC_CLI_H
#define MTCSEC_CLI_H

/* Exit codes (documented in docs/man/mtcsec.1.md). */
enum {
  CLI_OK = 0,       /* done */
  CLI_FAILED = 1,   /* the operation failed (server refused, timeout) */
  CLI_USAGE = 2,    /* bad command line */
  CLI_NOTFOUND = 3, /* no such device, UE, relay, session, file */
  CLI_CONFIG = 4,   /* bad configuration, key file or permissions */
  CLI_INTERNAL = 5  /* store, crypto or system failure */
};

/** Runs the tool; returns the process exit code. */
int mtcsec_cli_run(int argc, char **argv);

/**
 * The state directory made by `mtcsec init`: -d/--dir on the command line,
 * else $MTCSEC_DIR, else "./mtcsec".  Files inside it (see docs/OPERATIONS.md):
 * mtcsd.conf, mtcsd.db, kek, ca.pem, ca.key, server.pem, server.key,
 * devices/<id>.json, ues/<id>.pem + ues/<id>.key, relays/<id>.json.
 */
const char *cli_dir(void);
/** Joins cli_dir() and name into a static buffer (valid until next call). */
const char *cli_path(const char *name);

/* Subcommands.  argv[0] is the subcommand's own name. */
int cmd_init(int argc, char **argv);
int cmd_device(int argc, char **argv);   /* add|list|show|disable|run */
int cmd_ue(int argc, char **argv);       /* add|get|put|scan */
int cmd_gw(int argc, char **argv);       /* add|run */
int cmd_grant(int argc, char **argv);    /* grant UE DEVICE|@GROUP ... */
int cmd_relay(int argc, char **argv);    /* relay allow GW DEVICE|@GROUP */
int cmd_sessions(int argc, char **argv); /* sessions [DEVICE] */
int cmd_revoke(int argc, char **argv);   /* revoke SESSION */
int cmd_audit(int argc, char **argv);    /* audit */
int cmd_3gpp(int argc, char **argv);     /* 3gpp milenage|eia2|eea2|llc-fcs */
int cmd_sub(int argc, char **argv);      /* sub add|list|show (home proxy) */
int cmd_hp(int argc, char **argv);       /* hp init (home proxy files) */
int cmd_ms(int argc, char **argv);       /* ms run (cellular agents) */
int cmd_sgsn(int argc, char **argv);     /* sgsn run */
int cmd_ggsn(int argc, char **argv);     /* ggsn add|run */

/* Agents (simulated field equipment), called from cmd_device/ue/gw. */
int agent_device_run(int argc, char **argv);
int agent_ue_get(int argc, char **argv);
int agent_ue_put(int argc, char **argv);
int agent_ue_scan(int argc, char **argv);
int agent_gw_run(int argc, char **argv);

#endif /* MTCSEC_CLI_H */
