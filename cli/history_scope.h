// The one way commands record themselves in the repository's history
// (repo/history.h): backup, verify, expire, gc (and drill). History is a log,
// never a reason to fail the command it describes: a failure to write it
// only warns.
#pragma once

#include <functional>
#include <vector>

#include "repo/history.h"
#include "repo/repository.h"

namespace walvault::cli {

// Appends `entry` to each repository; a repository that cannot store it gets
// a warning naming it (when there are several), never an error.
void record_history(const std::vector<repo::Repository*>& repos, const repo::HistoryEntry& entry);

// Runs `body`, which fills in `entry`, and records `entry` in `repos` whether
// `body` returns or throws. A throw is recorded with outcome "failed" and the
// error as the detail, then goes on to the caller; a return with no outcome
// set is recorded as "ok". Anything `body` holds (locks) is released before
// the entry is written. Empty `repos`: nothing is recorded (a dry run).
void run_recorded(const std::vector<repo::Repository*>& repos, repo::HistoryEntry& entry,
                  const std::function<void()>& body);

}  // namespace walvault::cli
