// Writing a backup's files into a data directory (and its tablespaces), in
// parallel, every chunk verified against its id; and the recovery settings
// that make PostgreSQL replay the archived WAL to the target.
//
// restore_files runs a restore writer (restore.cpp) whose phases follow the
// durability order: the roots (data directory, tablespace locations) opened;
// with --delta an old pg_control removed; directories and links; the
// pg_tblspc links; the regular files (each fsynced as it completes); the
// modification times; with --delta whatever the backup lacks removed;
// backup_manifest and tablespace_map; the directories fsynced; the caller's
// recovery settings (before_pg_control); global/pg_control last. So a
// restore that fails half-way (corrupt chunk, full disk) leaves a directory
// PostgreSQL refuses to start.
//
// Everything below a root is written through a ContainedDir (directory
// descriptors, never following a link), --delta's removals included.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "basebackup/backup_record.h"
#include "basebackup/restore_plan.h"
#include "repo/repository.h"

namespace walvault::basebackup {

struct RestoreStats {
  std::uint64_t files = 0;           // regular files in the backup
  std::uint64_t bytes = 0;           // their logical size
  std::uint64_t chunks_written = 0;  // chunks fetched and written
  std::uint64_t chunks_kept = 0;     // --delta: chunks already correct on disk
  std::uint64_t files_removed = 0;   // --delta: files not in the backup
  bool direct_io = false;            // relation data went around the page cache
  std::string warm_up;               // the caller's warm-up summary (warmup.h); "" when off
};

// How restore makes RestoreOptions::hot_chunks hot: written through the page
// cache (kWrite), or written like the rest and then read ahead
// (posix_fadvise WILLNEED, kFadvise) once every file is durable.
enum class WarmMode { kWrite, kFadvise };

struct RestoreOptions {
  std::string pgdata;
  bool delta = false;  // keep files/chunks that already match; remove files not in the backup
  int parallel = 2;
  // Write fresh files with O_DIRECT where the file system allows it (not with
  // delta); false: everything through the page cache.
  bool direct_io = true;
  std::map<std::string, std::string> tablespace_map;  // old location -> new location
  // Chunks redo will read (basebackup/warmup.h): BackupFiles::entries index
  // -> ascending chunk indexes, left in the page cache as `warm_mode` says.
  // Only how they are written changes, never what.
  std::map<std::size_t, std::vector<std::uint32_t>> hot_chunks;
  WarmMode warm_mode = WarmMode::kWrite;
  // Called once everything but global/pg_control is written and durable, with
  // the stats so far; the caller writes its recovery settings here, so that a
  // restore killed at any point leaves either no pg_control or a complete
  // directory (pg_control is written last, after this returns).
  std::function<void(const RestoreStats&)> before_pg_control;
};

// Refuses (Error(kConflict)) a non-empty data directory or tablespace
// location unless options.delta. Throws Error(kCorruption) naming the pack and
// chunk when a chunk fails verification.
RestoreStats restore_files(repo::Repository& repo, const BackupRecord& record,
                           const BackupFiles& files, const RestoreOptions& options);

// The recovery settings: removes the restore_command, recovery_target*,
// recovery_end_command and recovery_init_sync_method lines already in
// postgresql.auto.conf (a backup of a restored cluster carries them) and any
// line for a key of `settings`, appends `settings` in order, and creates
// recovery.signal.
void write_recovery_settings(const std::string& pgdata,
                             const std::vector<std::pair<std::string, std::string>>& settings);

// Quotes a value for postgresql.conf: '...' with ' doubled and a backslash,
// line feed or carriage return escaped (\\, \n, \r), which PostgreSQL's
// configuration reader turns back into the character: no value can end its
// line and start a setting of its own.
std::string conf_quote(const std::string& value);

}  // namespace walvault::basebackup
