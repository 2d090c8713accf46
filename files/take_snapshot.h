// One `files backup` into one repository: the chunker the repository calls
// for (keyed by its master key when encrypted), the volume's previous
// snapshot of the same paths as the parent for change detection, the
// directories walked into trees, every pack flushed, and then the record
// (files/snapshot_record.h), last.
//
// One path: the snapshot's root is that directory. Several: the root holds
// each under its base name (which must differ), like `tar czf` of several
// directories.
//
// The caller holds the repository's shared lock (gc's protocol, format.md
// "Locks and garbage collection"). Throws Error(kUsage) for a bad volume name
// or paths, Error(kIo) when a path cannot be opened, and what the chunk store
// throws; what could not be read inside the tree is in the stats' warnings.
#pragma once

#include <string>
#include <vector>

#include "files/snapshot_backup.h"
#include "files/snapshot_record.h"

namespace walvault::files {

struct TakeSnapshotOptions {
  std::string volume;
  std::vector<std::string> paths;  // directories
  std::string tag;
  SnapshotOptions walk;
  // The snapshot's start time (its label), Unix µs; 0: now. `files backup`
  // into several repositories gives each the same one, so they hold the same
  // snapshot under the same name (and repo sync between them copies nothing).
  std::int64_t start_us = 0;
};

SnapshotRecord take_snapshot(repo::Repository& repo, const TakeSnapshotOptions& options,
                             SnapshotStats& stats);

// `files import`: the tar (or tar.gz) read from `fd` as a snapshot of
// `volume` taken at `time_us` (files/tar_import.h); `what` names the tar in
// the record's paths and in errors. Error(kInvalidInput) for a bad tar,
// and nothing is recorded.
SnapshotRecord import_snapshot(repo::Repository& repo, const std::string& volume,
                               std::int64_t time_us, const std::string& tag, int fd,
                               const std::string& what, SnapshotStats& stats);

// The chunker parameters of new snapshots (format.md, "File chunks").
codec::CdcParams default_cdc_params();

}  // namespace walvault::files
