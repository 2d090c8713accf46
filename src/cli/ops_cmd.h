// The read-only repository commands' bodies, kept out of cli.cpp: `verify`
// and `info` (logic in ops/). cli.cpp parses options and opens the repository.
#pragma once

#include "repo/repository.h"

namespace walvault::cli {

// Prints the report; 0 when no error was found (warnings allowed), else the
// corruption exit status.
int run_verify(repo::Repository& repo, bool read_data, bool json);
int run_info(repo::Repository& repo, bool json);

}  // namespace walvault::cli
