// `walvault history`, and the one way commands record themselves in it
// (repo/history.h): a failure to write history only warns.
#pragma once

#include <cstdint>
#include <vector>

#include "repo/history.h"
#include "repo/repository.h"

namespace walvault::cli {

// Appends `entry` to each repository; a repository that cannot store it gets
// a warning on stderr naming it, never an error.
void record_history(const std::vector<repo::Repository*>& repos, const repo::HistoryEntry& entry);

// Prints the entries that started at or after `since_us`, oldest first.
int run_history(repo::Repository& repo, std::int64_t since_us, bool json);

}  // namespace walvault::cli
