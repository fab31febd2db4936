#include "cli.h"

int main(int argc, char **argv) { return mtcsec_cli_run(argc, argv); }
