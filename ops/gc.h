// `walvault gc`: removes the chunks no backup references, and repacks packs
// that are mostly garbage (docs/format.md, "Locks and garbage collection").
//
// Runs under the repository's exclusive lock (repo/lock.h): no backup,
// restore, verify or sync is between loading indexes and writing its record,
// so nothing gc sees as unreferenced can become referenced while it works.
// On top of the lock, a grace period: a pack, index or file list written less
// than `grace` ago is never removed, whatever it holds — a writer whose lock
// went stale (a paused VM) loses at most its own unfinished work.
//
// Order (each step durable before the next): new packs and indexes of the
// repacked chunks; then the indexes of dead and repacked packs; then those
// packs. A crash anywhere leaves every referenced chunk readable (at worst
// listed twice, which the next gc resolves).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "repo/lock.h"
#include "repo/repository.h"

namespace walvault::ops {

struct GcOptions {
  std::chrono::seconds grace{std::chrono::hours(1)};
  // Repack a pack once at least this fraction of its bytes is garbage.
  double repack_threshold = 0.5;
  bool dry_run = false;
  std::int64_t now_us = 0;  // 0: the clock
};

struct GcReport {
  bool dry_run = false;
  std::uint64_t backups = 0;            // backups whose chunks were kept
  std::uint64_t snapshots = 0;          // file-volume snapshots whose trees and chunks were kept
  std::uint64_t dumps = 0;              // logical dumps whose chunks were kept
  std::uint64_t chunks_referenced = 0;  // distinct chunks those backups use
  std::uint64_t packs_before = 0;
  std::uint64_t pack_bytes_before = 0;   // packs and indexes
  std::uint64_t packs_removed = 0;       // wholly garbage
  std::uint64_t packs_repacked = 0;      // live chunks copied out, then removed
  std::uint64_t chunks_removed = 0;      // garbage chunks in removed or repacked packs
  std::uint64_t chunks_copied = 0;       // live chunks written into new packs
  std::uint64_t bytes_written = 0;       // new packs and indexes
  std::uint64_t bytes_removed = 0;       // packs, indexes, file lists removed
  std::uint64_t young_kept = 0;          // garbage objects left for the grace period
  std::uint64_t file_lists_removed = 0;  // backups/<label>/files without a record
  std::uint64_t leftovers_removed = 0;   // interrupted writes (temp files, multipart uploads)
  std::uint64_t pack_bytes_after = 0;
  std::uint64_t logical_bytes = 0;           // sum of the kept backups' sizes
  std::uint64_t wal_catalogues_written = 0;  // repo::compact_wal, after the chunks
  std::uint64_t wal_catalogues_removed = 0;
  std::vector<std::string> warnings;

  // Bytes freed: removed minus written.
  std::int64_t freed() const {
    return static_cast<std::int64_t>(bytes_removed) - static_cast<std::int64_t>(bytes_written);
  }
  // Logical bytes per stored pack byte after gc (dedup and compression).
  double dedup_ratio() const {
    return pack_bytes_after ? static_cast<double>(logical_bytes) / pack_bytes_after : 0;
  }
};

// `lock` (the exclusive lock) is checked right before anything is removed.
// Throws Error(kCorruption) when an index or a file list cannot be read (gc
// cannot know what it references; run verify) — before removing anything.
GcReport collect_garbage(repo::Repository& repo, const GcOptions& options,
                         const repo::RepoLock* lock);

std::string gc_report_text(const GcReport& report);
// The report as one JSON object: every counter of GcReport under its field
// name, plus "freed" (bytes, removed minus written, at least 0),
// "dedup_ratio" and "warnings" (array of strings).
std::string gc_report_json(const GcReport& report);

}  // namespace walvault::ops
