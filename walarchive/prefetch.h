// archive-get's prefetch process: after archive-get has answered PostgreSQL,
// a detached child fills the spool with the next segments (prefetch(),
// archive_get.h), so that PostgreSQL's next restore_command call finds its
// segment there and is a rename.
#pragma once

#include <string>

#include "repo/repository.h"

namespace walvault::walarchive {

// Forks a child that leaves the session (setsid), puts its stdio on
// /dev/null, runs prefetch(repo, file_name, count, spool_dir) and exits; the
// caller returns at once and never waits for it. Does nothing when `count`
// <= 0 or `spool_dir` is empty. Never throws: prefetch is an optimisation (a
// fork that fails, or a child that fails, only means the next call fetches
// for itself). Flushes std::cout and std::cerr first, so nothing buffered is
// written twice.
void start_prefetch_process(repo::Repository& repo, const std::string& file_name, int count,
                            const std::string& spool_dir);

}  // namespace walvault::walarchive
