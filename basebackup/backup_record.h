// How a base backup lives in the repository (docs/format.md, "Backups";
// names in repo/layout.h):
//
//   backups/<label>/files    the file list (path, type, mode, size, mtime,
//                            chunk ids) and the server's backup_manifest
//   backups/<label>/record   the summary below, written LAST: a backup exists
//                            (is listed, can be restored) only once its record
//                            does, so an interrupted backup leaves nothing listed
//
// File content lives in the chunk store (repo/chunk_store.h): each regular
// file is cut into fixed-size chunks of `chunk_size` bytes (page aligned; the
// last one shorter), each stored once per repository whatever the number of
// backups that reference it.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "pg/wal_name.h"
#include "repo/chunk_store.h"
#include "repo/repository.h"

namespace walvault::basebackup {

enum class EntryType { kFile, kDirectory, kSymlink };

struct FileEntry {
  // Which archive the entry came from: empty for the main data directory,
  // else the tablespace oid as decimal text. `path` is relative to that
  // archive's root (the data directory, or the tablespace location).
  std::string tablespace;
  std::string path;
  EntryType type = EntryType::kFile;
  std::uint32_t mode = 0;             // permission bits (07777)
  std::int64_t mtime = 0;             // seconds since the Unix epoch
  std::uint64_t size = 0;             // regular files
  std::string link_target;            // symlinks
  std::vector<repo::ChunkId> chunks;  // regular files: ceil(size / chunk_size) ids
};

struct TablespaceInfo {
  std::uint32_t oid = 0;
  std::string location;  // on the server at backup time
};

// The summary: enough to list, choose and plan without reading the file list.
struct BackupRecord {
  std::string label;   // "20261126-115100" (UTC start time; "-2", "-3"... on a clash)
  std::string tag;     // empty = untagged
  std::string source;  // "replication", "tar" or "local"
  pg::Lsn start_lsn = 0, stop_lsn = 0;
  pg::TimeLineId start_timeline = 0, stop_timeline = 0;
  std::int64_t start_time_us = 0;  // UTC µs, client clock
  std::int64_t stop_time_us = 0;   // when the server reported the backup's end
  int pg_version_num = 0;          // 150018
  std::uint64_t system_id = 0;
  std::uint32_t wal_segment_size = 0;
  std::uint32_t chunk_size = 0;
  std::string backup_label;    // the backup_label file's text
  std::string tablespace_map;  // the tablespace_map file's text (may be empty)
  std::vector<TablespaceInfo> tablespaces;
  std::uint64_t file_count = 0;
  std::uint64_t logical_bytes = 0;  // sum of regular file sizes
  std::uint64_t stored_bytes = 0;   // bytes this backup added to the repository (new packs)
  std::uint64_t chunk_count = 0;    // chunk references
  std::uint64_t new_chunk_count = 0;
  double duration_s = 0;
  // Pages whose checksum failed while a local backup read them, as
  // "<tablespace oid>:<path> block <n>" (no oid for the data directory);
  // the backup is complete all the same (WAL replay does not repair them).
  std::vector<std::string> page_errors;
  // File content read from the source (a map-based incremental reads less
  // than logical_bytes); written for local backups, logical_bytes otherwise.
  std::uint64_t read_bytes = 0;
  // A local backup: the label of the previous backup whose chunks it took
  // over (map-based incremental), or empty with full_read_reason saying why
  // it read every file whole ("no previous backup", "--full-read", ...).
  std::string incremental_from;
  std::string full_read_reason;
};

struct BackupFiles {
  std::vector<FileEntry> entries;
  std::string backup_manifest;  // the server's backup_manifest (JSON text); may be empty
};

// The names of one backup's file list, checked entry by entry: as a backup is
// taken (ingest refuses the stream, Error(kInvalidInput), before any record
// exists) and again as restore reads the list back from a repository
// (Error(kCorruption)): a repository can be written by someone else, and its
// key proves nothing about the names (docs/decisions.md, "What restore
// trusts"). Within one archive (tablespace):
//  - every path is a contained relative path (core/relative_path.h); "."
//    (the archive's root) only as a directory;
//  - no path appears twice;
//  - nothing lies below a symlink entry ("link" then "link/child" would
//    have restore write through the link), in either order;
//  - a symlink's target is non-empty, without NUL, at most 4095 bytes;
//  - the tablespace is "" or a decimal oid.
class EntryNameCheck {
 public:
  // Messages read "<context>: entry '<path>' ...".
  EntryNameCheck(ErrorCode code, std::string context) : code_(code), context_(std::move(context)) {}
  // Throws Error(code) naming the entry when it breaks a rule above.
  void add(const FileEntry& entry);

 private:
  [[noreturn]] void refuse(const FileEntry& entry, const std::string& why) const;

  ErrorCode code_;
  std::string context_;
  std::set<std::pair<std::string, std::string>> paths_, links_;  // (tablespace, path)
};

// Restore's check of a file list read back from a repository, before anything
// is written: EntryNameCheck over every entry, every tablespace entry of one
// of record.tablespaces, and every tablespace location absolute with
// contained components. Throws Error(kCorruption) naming the backup and entry.
void check_file_list(const BackupRecord& record, const BackupFiles& files);

// backups/<label>/record and backups/<label>/files (repo/layout.h builds them).
std::string record_object_name(const std::string& label);
std::string files_object_name(const std::string& label);

std::string record_to_json(const BackupRecord& record);
// Throws Error(kCorruption) naming `object` when malformed.
BackupRecord record_from_json(std::string_view text, const std::string& object);
std::string files_to_json(const BackupFiles& files);
BackupFiles files_from_json(std::string_view text, const std::string& object);

// A pinned backup is kept by `expire` whatever the policy says:
// backups/<label>/pin (JSON: note, time_us, user, host), written by
// `backup keep`, removed by `backup unkeep`.
struct BackupPin {
  std::string note;
  std::int64_t time_us = 0;
  std::string user, host;
};
std::string pin_object_name(const std::string& label);
// Throws Error(kNotFound) when no backup `label` exists. Pinning a pinned
// backup keeps the first pin (and its note) and returns false.
bool pin_backup(repo::Repository& repo, const std::string& label, const std::string& note);
// False when the backup was not pinned; Error(kNotFound) without such a backup.
bool unpin_backup(repo::Repository& repo, const std::string& label);
std::optional<BackupPin> read_pin(repo::Repository& repo, const std::string& label);

// Every backup's record, oldest first (by start LSN, then label).
std::vector<BackupRecord> list_backups(repo::Repository& repo);
std::optional<BackupRecord> read_record(repo::Repository& repo, const std::string& label);
// Throws Error(kCorruption) when the record exists but its files object is missing.
BackupFiles read_files(repo::Repository& repo, const std::string& label);

}  // namespace walvault::basebackup
