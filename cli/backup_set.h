// Backup sets: a platform's "full system" (its database and its file
// volumes) backed up and restored as one thing (docs/decisions.md, "Backup
// sets"; the history entry's format: docs/format.md, "Backup sets").
//
//   backup --all   the database base backup (the config's [backup] options;
//                  skipped when [schedule] database = no) and a `files
//                  backup` of every [volume.NAME] path, each part tagged with
//                  the set's tag, the snapshots named by the set's start
//                  time (its label)
//   restore --all  the database to a time by PITR, and each configured
//                  volume to its newest snapshot started at or before that
//                  time, each into an empty or new directory
//
// The parts are the bodies of their own commands (`backup`, `files backup`,
// `files restore`), declared here so a set runs them in this process: one
// way to take or restore each part, whether alone or in a set. A set has no
// object of its own in the repository: its parts are ordinary backups and
// snapshots (kept or expired by their own rules, found by their own
// commands), and the set is one history entry (command "backup-set", every
// part with its id, bytes, seconds and outcome), ok or failed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/schedule.h"
#include "files/snapshot_record.h"
#include "files/snapshot_restore.h"
#include "repo/lock.h"
#include "repo/repository.h"

namespace walvault::cli {

// The [schedule] and [volume.NAME] settings of the config file in use
// (cmd_schedule.cpp). Error(kUsage) when there is no readable config file or
// a key is bad; the schedule's user is left as written.
ScheduleSettings read_schedule_settings(const Context& ctx, const std::string& verb);

// ---- the volume parts (cmd_files.cpp) ----

struct FilesBackupArgs {
  std::string volume, tag;
  std::vector<std::string> paths, excludes;
  bool one_file_system = false, force_reread = false;
  int parallel = 0;  // 0: default_parallelism()
  // The snapshot's start time (its label) in every repository; 0: now.
  std::int64_t start_us = 0;
};

// `files backup`: a snapshot of a.paths into every repository, one line each
// on stdout. Returns the first repository's record. Throws what the snapshot
// throws, and Error(kPartial) after recording when entries were unreadable.
files::SnapshotRecord backup_volume(const Context& ctx, const FilesBackupArgs& a);

// A snapshot read from the first repository given that has it: one that
// lacks it or fails falls back to the next, with a warning when there are
// several.
struct ServedSnapshot {
  std::unique_ptr<repo::Repository> repo;
  // With `lock_for`: a shared lock (declared after the repository: released
  // before it closes), so gc cannot remove what is being read.
  std::unique_ptr<repo::RepoLock> lock;
  files::SnapshotRecord record;
};

// `spec` as files::find_snapshot takes it (an id, latest, VOLUME@TIME),
// `volume` "" for any.
ServedSnapshot first_with_snapshot(const Context& ctx, const std::string& spec,
                                   const std::string& volume, const char* lock_for = nullptr);

struct VolumeRestoreOptions {
  std::string to;  // the directory (created when absent)
  std::vector<std::string> includes;
  bool delta = false;
  int parallel = 0;  // 0: 4 x CPUs (4 to 16): a writer waits on the disk more than it computes
};

// `files restore`: `served`'s snapshot into `o.to` (refused, Error(kConflict),
// when not empty without delta), one line on stdout. Returns its stats.
files::RestoreStats restore_volume(const ServedSnapshot& served, const VolumeRestoreOptions& o);

// ---- the set (backup_set.cpp) ----

// What one part took: its id (a backup label, a snapshot id) and label.
struct PartOutcome {
  std::string id;
  std::string label;
  std::uint64_t bytes = 0;        // logical size
  std::uint64_t added_bytes = 0;  // what it added to the (first) repository
};

// One part of a set: `what` is the command that takes it alone ("backup",
// "files backup --volume app /srv/app"), which is how reports name it.
struct SetPart {
  std::string what;
  std::function<PartOutcome()> take;
};

// The set's label: its start time, YYYYMMDD-HHMMSS (UTC).
std::string set_label(std::int64_t start_us);

// Takes every part in order (a failed part does not stop the next), prints
// "PART: ok, id ID, N bytes, S s" or "PART: failed: why" for each, then the
// set's line, and records the set in every repository's history. When a part
// failed, throws Error with the first failure's code naming every failed part.
void take_backup_set(const Context& ctx, const std::string& label, const std::string& tag,
                     std::int64_t start_us, const std::vector<SetPart>& parts);

// The volumes a set restores, and where: --volume NAME=DIR mappings over the
// configured volumes (a configured volume not mapped goes to its configured
// path). Error(kUsage) for a malformed mapping, a name with no [volume.NAME]
// section, a directory that is not absolute, two targets of which one holds
// the other (pgdata among them); Error(kConflict) for a target that exists
// and is not an empty directory. Nothing is written.
struct VolumeTarget {
  std::string volume;
  std::string dir;
};
std::vector<VolumeTarget> volume_targets(const ScheduleSettings& settings,
                                         const std::vector<std::string>& mappings,
                                         const std::string& pgdata);

}  // namespace walvault::cli
