// `walvault backup`: one base backup, read once from the server (or from a
// pg_basebackup tar stream) and written into one or more repositories.
//
// Every regular file is cut into fixed, page-aligned chunks of the
// repository's chunk size; a worker pool hashes, compresses and encrypts them
// into each repository's chunk store, so the server's stream is never held up
// by one core. Memory is a fixed budget whatever the database size
// (docs/decisions.md, "A backup's memory budget"): 2 x parallel + 1 group
// buffers of 4 MiB (core/buffer_pool.h; the stream waits for a free one),
// and per repository two pack buffers (one filling, one being written).
// After the stream ends the backup waits until the WAL up to its stop LSN is
// archived in every repository, then writes the file list and, last, the
// record.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "basebackup/backup_record.h"
#include "pg/base_backup.h"
#include "repo/repository.h"

namespace walvault::basebackup {

struct BackupOptions {
  std::string conninfo;  // libpq; empty: PG* environment
  std::string tag;
  int parallel = 2;                              // worker threads
  std::chrono::milliseconds wal_timeout{60000};  // wait for the stop segment to be archived
  pg::CheckpointMode checkpoint = pg::CheckpointMode::kFast;
  bool progress = false;  // a progress line on stderr (a terminal)
  // backup --local: read every file whole instead of building on the
  // previous backup through the block maps (basebackup/incremental.h).
  bool full_read = false;
  // Called right before the file lists and records are written (after the
  // WAL wait); throwing aborts the backup unlisted. The CLI checks that its
  // repository locks are still held (repo/lock.h).
  std::function<void()> before_commit;
};

// Takes a backup over the replication protocol. Throws Error(kPostgres) when
// the server refuses, Error(kClusterMismatch) when a repository belongs to
// another cluster, Error(kNotFound) when the WAL does not arrive in time;
// nothing is listed then.
BackupRecord take_backup(const std::vector<repo::Repository*>& repos, const BackupOptions& options);

// Ingests a pg_basebackup tar stream (`pg_basebackup -D - -Ft -X none`) read
// from `fd`. The stop LSN comes from the backup_manifest pg_basebackup puts in
// the stream, else from the backup history file in the archive.
BackupRecord ingest_tar(const std::vector<repo::Repository*>& repos, int fd,
                        const BackupOptions& options);

// The same pipeline (chunking, worker pool, chunk stores, file lists and
// records) for a source that walks the data directory itself
// (basebackup/local_backup.h). Entries arrive as from a stream, through
// sink(); a large file can instead be listed with add_file, whose reader
// the workers call for a group of chunks at a time, so reading runs on
// `options.parallel` threads.
class BackupPipeline {
 public:
  // On a worker thread: fills `out` (the worker's buffer, which may hold an
  // earlier group: resize it) with the file's `length` bytes at
  // `offset` (exactly that many; a file that shrank is padded with zeros).
  // Throwing aborts the backup.
  using RangeReader = std::function<void(std::uint64_t offset, std::size_t length, Bytes& out)>;

  BackupPipeline(const std::vector<repo::Repository*>& repos, const BackupOptions& options);
  ~BackupPipeline();
  BackupPipeline(const BackupPipeline&) = delete;
  BackupPipeline& operator=(const BackupPipeline&) = delete;

  // Binds every repository to the cluster; Error(kClusterMismatch) when one
  // archives another.
  void bind_cluster(std::uint64_t system_id, std::uint32_t segment_size, int pg_major);
  // on_start, then per archive on_archive_begin and its entries (file data
  // through on_tar_entry_data); on_manifest_data and on_end are not used.
  pg::BackupSink& sink();
  // A regular file of `entry.size` bytes in the current archive.
  void add_file(const pg::TarEntry& entry, RangeReader read);
  // The map-based incremental's entry point (basebackup/incremental.h): as
  // add_file, but only the chunks `read_chunks` names (ascending indexes)
  // are read; every other chunk slot of repository i takes
  // previous[i]->chunks[slot], the previous backup's chunk for the same
  // path and offset (fixed chunks of one chunk size: the same blocks), as a
  // dedup hit does: counted as a reference, not as new. A chunk whose id a
  // repository's chunk store does not list (a file list can be forged) is
  // read instead. Returns the bytes handed to `read`.
  std::uint64_t add_file_reusing(const pg::TarEntry& entry, RangeReader read,
                                 const std::vector<std::uint32_t>& read_chunks,
                                 const std::vector<const FileEntry*>& previous);
  // File content read from the source so far (whole files and chunks).
  std::uint64_t read_bytes() const;
  // Returns when every range handed to `read` (add_file, add_file_reusing)
  // has been read, or will not be (a failure, which commit() rethrows);
  // their compression and storing may still run. What a backup must finish
  // before pg_backup_stop.
  void wait_for_reads();
  // Stores what is pending, waits for the WAL up to `record.stop_lsn` to be
  // archived in every repository, then writes the file lists and records;
  // the counts, label and duration are filled in here.
  BackupRecord commit(BackupRecord record, const BackupOptions& options);

 private:
  struct Impl;
  std::vector<repo::Repository*> repos_;
  std::unique_ptr<Impl> impl_;
};

// The segment holding the last byte before `stop_lsn` (PostgreSQL waits for
// the same one at the end of pg_backup_stop).
std::string stop_segment_name(pg::Lsn stop_lsn, pg::TimeLineId tli, std::uint32_t segment_size);

// Polls (every 10 ms for a second, then every 50 ms) until `segment`'s
// metadata is in `repo`; false once `deadline` passes first.
bool await_archived(repo::Repository& repo, const std::string& segment,
                    std::chrono::steady_clock::time_point deadline);

// A label for a backup starting at `unix_us`: "YYYYMMDD-HHMMSS" (UTC).
std::string backup_label_for(std::int64_t unix_us);

}  // namespace walvault::basebackup
