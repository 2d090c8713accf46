// The walvault binary: a tiny main over the CLI wiring in cli.cpp.
#include "cli/cli.h"

int main(int argc, char** argv) { return walvault::cli::run(argc, argv); }
