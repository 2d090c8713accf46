// The walvault binary: a tiny main over the command line (cli/app.h).
#include "cli/app.h"
#include "core/process_heap.h"

int main(int argc, char** argv) {
  walvault::prepare_process_heap();
  return walvault::cli::run(argc, argv);
}
