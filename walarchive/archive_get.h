// archive-get: what PostgreSQL's restore_command runs to fetch one WAL file.
//
// The file is fetched, verified (envelope checksum, GCM tag), and written to
// the destination atomically (temp file + rename), so PostgreSQL never reads
// a partial file. A name the repository does not hold is the expected end of
// the archive, reported as kNotFound, not as an error.
//
// Prefetch: the next segments of the timeline are kept ready in a bounded
// local spool (spool_dir), so that a later call is a rename. prefetch() is
// meant to run in a detached background process (prefetch.h); it takes a
// lock so only one runs per spool, and removes everything in the spool that
// is outside the window after the segment just requested.
#pragma once

#include <string>

#include "repo/repository.h"

namespace walvault::walarchive {

enum class GetOutcome { kRestored, kNotFound };

struct GetOptions {
  std::string spool_dir;  // empty: no spool, always fetch from the repository
};

// Throws Error(kInvalidInput) for a name that is not an archivable WAL file
// name, Error(kCorruption) when the stored object fails verification (nothing
// is written to `destination` then), Error(kIo) when writing fails.
GetOutcome archive_get(repo::Repository& repo, const std::string& file_name,
                       const std::string& destination, const GetOptions& options);

// Fetches the `count` segments following `file_name` on its timeline into
// `spool_dir` (those not already there), stopping at the first one the
// repository lacks, and removes spool entries outside that window. Returns
// the number fetched. Returns 0 at once when another prefetch holds the lock.
int prefetch(repo::Repository& repo, const std::string& file_name, int count,
             const std::string& spool_dir);

// Fetches one segment (verified) into `spool_dir` under its name, written
// atomically; false when the repository does not hold it. The one way
// segments enter the spool (prefetch, and restore's pre-staging, prefetch.h).
bool fetch_to_spool(repo::Repository& repo, const std::string& segment,
                    const std::string& spool_dir);

}  // namespace walvault::walarchive
