// The walvault binary: a tiny main over the command line (cli/app.h).
#include <cstring>

#include "cli/app.h"
#include "core/process_heap.h"

int main(int argc, char** argv) {
  // archive-get prepares the heap itself, only when it reads a segment from
  // the repository (walarchive/archive_get.cpp): a segment waiting in the
  // spool is a rename, and PostgreSQL's recovery waits for every such call.
  bool get = false;
  for (int i = 1; i < argc && !get; ++i) get = std::strcmp(argv[i], "archive-get") == 0;
  if (!get) walvault::prepare_process_heap();
  return walvault::cli::run(argc, argv);
}
