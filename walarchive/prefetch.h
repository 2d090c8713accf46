// archive-get's prefetch process: after archive-get has answered PostgreSQL,
// a detached child fills the spool with the next segments (prefetch(),
// archive_get.h), so that PostgreSQL's next restore_command call finds its
// segment there and is a rename. And restore's pre-staging: the first
// segments of a PITR put in that spool before the server starts, so even
// its first calls are renames.
#pragma once

#include <string>
#include <vector>

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

// Fetches `segments` (the first ones recovery will ask for, in order) into
// `spool_dir` (archive-get's, for the restore_command's repository), those
// not already there; stops at the first the repository lacks. Returns how
// many it fetched. Files are 0600; as root they are given to the spool
// directory's owner (the user whose archive-get uses that spool: the server's,
// which must read them once renamed into pg_wal). Throws like
// fetch_to_spool(), Error(kIo) when that hand-over fails; the caller treats
// a failure as a miss.
int prestage(repo::Repository& repo, const std::vector<std::string>& segments,
             const std::string& spool_dir);

}  // namespace walvault::walarchive
