// The repository commands' bodies, kept out of cli.cpp: `verify`, `info` and
// `repo sync` (logic in ops/). cli.cpp parses options and opens the repositories.
#pragma once

#include "repo/repository.h"

namespace walvault::cli {

// Prints the report; 0 when no error was found (warnings allowed), else the
// corruption exit status.
int run_verify(repo::Repository& repo, bool read_data, bool json);
int run_info(repo::Repository& repo, bool json);
// Prints the summary (with --dry-run, what would be copied) and names each
// backup it could not copy on stderr; 0, or the conflict exit status when a
// backup was left out.
int run_sync(repo::Repository& from, repo::Repository& to, bool dry_run, int parallel);

}  // namespace walvault::cli
