/*
 * `mtcsec 3gpp`: the 3GPP checkers of apps/threegpp (the same program as
 * mtcsec-3gpp), when this build has the cellular module.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifdef MTCSEC_HAVE_CELLULAR
#  include "../threegpp/cmd_3gpp.h"

int cmd_3gpp(int argc, char **argv) {
  /* Their messages start with argv[0]. */
  static char name[] = "mtcsec 3gpp";
  argv[0] = name;
  return mtcsec_cmd_3gpp(argc, argv);
}

#else

int cmd_3gpp(int argc, char **argv) {
  if (argc >= 2 &&
      (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
    printf("usage: mtcsec 3gpp milenage|eia2|eea2|llc-fcs|kdf [FILE]\n"
           "\n"
           "This build of mtcsec lacks the cellular module, so the 3GPP "
           "checkers are\n"
           "not available; rebuild with src/cellular present.\n");
    return CLI_OK;
  }
  fprintf(stderr, "mtcsec 3gpp: this build lacks the cellular module; "
                  "rebuild mtcsec with src/cellular to use it\n");
  return CLI_INTERNAL;
}

#endif
