// The walvault binary: a tiny main over the CLI wiring in cli.cpp.
#include "cli/cli.h"
#include "core/process_heap.h"

int main(int argc, char** argv) {
  walvault::prepare_process_heap();
  return walvault::cli::run(argc, argv);
}
