/* mtcsec-3gpp: see cmd_3gpp.c.  main() only dispatches. */
#include "cmd_3gpp.h"

int main(int argc, char **argv) { return mtcsec_cmd_3gpp(argc, argv); }
