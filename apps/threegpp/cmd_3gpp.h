/*
 * `mtcsec-3gpp` / `mtcsec 3gpp`: recomputes the output fields of one 3GPP
 * test vector (JSON object on stdin or in a file), in the spirit of
 * osmo-auc-gen.
 */
#ifndef MTCSEC_APPS_CMD_3GPP_H
#define MTCSEC_APPS_CMD_3GPP_H

/**
 * Runs the checker.  argv[0] is the program (or subcommand) name used in
 * messages, argv[1] the kind (milenage, eia2, eea2, llc-fcs, kdf) or --help.
 * Returns the process exit status: 0 success, 1 bad input or failure,
 * 2 usage error.
 */
int mtcsec_cmd_3gpp(int argc, char **argv);

#endif /* MTCSEC_APPS_CMD_3GPP_H */
