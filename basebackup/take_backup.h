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

// A label for a backup starting at `unix_us`: "YYYYMMDD-HHMMSS" (UTC).
std::string backup_label_for(std::int64_t unix_us);

}  // namespace walvault::basebackup
