// `walvault repo sync --from A --to B`: copies into repository B every WAL
// file and base backup that A has and B lacks, so that B alone can restore
// what A can (an off-site copy, a move between a directory and S3).
//
// The copy is LOGICAL. Two repositories created by separate `repo init`s
// have different ids, master keys and, when encrypted, different chunk ids
// (HMAC under each one's content-id key), so A's objects copied byte for
// byte would be unreadable in B. Every object is read from A through its
// envelope (checksum, tag, and for chunks the content against its id), then
// sealed again with B's settings and key:
//  - cluster: B is bound to A's cluster when it has none; a B bound to
//    another cluster (system identifier, segment size) is refused with
//    Error(kClusterMismatch) before anything is written;
//  - WAL: every `wal/file/*` object B lacks; every segment whose metadata B
//    lacks: the segment (checked against A's metadata) and its block map when
//    A has one (it must decode and carry the segment's XXH3, else
//    Error(kCorruption)), then the metadata, as archive-push writes them. A
//    segment or map object B already has must hold identical bytes (else
//    Error(kConflict), nothing overwritten);
//  - backups: every backup whose record B lacks, oldest first, after the WAL
//    (so B has each backup's stop segment before its record): the chunks B
//    lacks go through B's chunk store (dedup against everything B holds),
//    then the file list with B's chunk ids, then the record, last;
//  - file-volume snapshots: every snapshot whose record name B lacks, oldest
//    first: its trees and chunks (files/resnapshot.h: as they are when A and B
//    name chunks alike, else every file cut again by B's keyed chunker and
//    every tree rebuilt with B's ids), flushed, then the record under the
//    same name, last. A B record of another snapshot under the name is
//    skipped and named;
//  - logical dumps: every dump whose record name B lacks, oldest first: its
//    bytes read from A and cut again by B's dump chunker (dump/take_dump.h,
//    recut_dump), flushed, then the record under the same name, last.
//
// Idempotent and resumable: a second run finds nothing to copy; a run that
// stops half-way leaves at worst unreferenced packs, a segment without
// metadata or a file list without a record, which the next run completes.
//
// Threading: `parallel` threads copy segments and chunks; A and B may be S3.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "repo/repository.h"

namespace walvault::ops {

struct SyncOptions {
  bool dry_run = false;  // list what would be copied, write nothing
  int parallel = 4;      // threads copying segments and chunks
};

struct SyncReport {
  std::string from, to;  // ObjectStore::describe() of A and B
  bool dry_run = false;
  bool cluster_bound = false;             // B was (or would be) bound to A's cluster
  std::vector<std::string> wal_segments;  // copied (or to copy), by name
  std::vector<std::string> wal_files;     // .history, .backup, .partial
  std::vector<std::string> backups;       // labels
  std::vector<std::string> snapshots;     // file-volume snapshots, "<volume>/<label>"
  std::vector<std::string> dumps;         // logical dumps, "<database>/<label>"
  std::uint64_t bytes_added = 0;          // stored bytes written into B
  std::uint64_t chunks_read = 0;          // chunks read from A
  std::uint64_t chunks_added = 0;         // chunks B did not have
  // Backups and snapshots left out, with why: B holds another backup (or
  // snapshot) under the name, or A lacks the backup's stop segment.
  // Everything else was copied.
  std::vector<std::string> skipped;

  bool nothing_copied() const {
    return !cluster_bound && wal_segments.empty() && wal_files.empty() && backups.empty() &&
           snapshots.empty() && dumps.empty();
  }
};

// Copies what `from` has and `to` lacks. Throws Error(kUsage) when backups
// must be copied between repositories of different chunk sizes,
// Error(kClusterMismatch) as above, Error(kConflict) when B holds different
// bytes under a name A has, Error(kCorruption) naming a damaged object of A;
// store failures (Error(kIo)) propagate. What was copied before a failure
// stays valid in B.
SyncReport sync_repositories(repo::Repository& from, repo::Repository& to,
                             const SyncOptions& options);

// Dry run: one line per object to copy ("wal segment <name>", "wal file
// <name>", "backup <label>", "snapshot <volume>/<label>"), then "dry run:
// would sync A -> B: ...". Else the summary "synced A -> B: N WAL segments,
// F files, K backups, S snapshots[, D dumps] (X MiB added)" (dumps named
// only when there are some),
// with "; already in sync" when nothing was copied.
std::string sync_report_text(const SyncReport& report);

}  // namespace walvault::ops
