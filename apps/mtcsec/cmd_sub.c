/* Placeholder until the home proxy's subscriber store lands (issue 4). */
#include <stdio.h>

#include "cli.h"

int cmd_sub(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "mtcsec sub: the home proxy is not part of this build yet\n");
  return CLI_INTERNAL;
}
