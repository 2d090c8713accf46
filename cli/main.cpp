// The walvault binary: a tiny main over the command line (cli/app.h).
#include "cli/app.h"

int main(int argc, char** argv) { return walvault::cli::run(argc, argv); }
