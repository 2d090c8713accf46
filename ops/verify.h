// `walvault verify`: checks that a repository is whole, without changing it.
//
// Structure (always; reads indexes, backup records and file lists, .history
// files and `cluster`, lists everything else):
//  - every index decodes and is named after its content; every pack an index
//    lists exists and is long enough for every chunk the index places in it;
//  - every backup with a record has its file list, and every chunk the list
//    references is listed by some index;
//  - file-volume snapshots (ops/verify_snapshots.h): every record decodes,
//    every tree it reaches decodes strictly, every chunk a file names is
//    listed by an index; a problem names the snapshot and the path in it;
//  - logical dumps: every record decodes and is named after its database and
//    label, every chunk it lists is listed by an index;
//  - WAL: every segment whose metadata exists has its data object; on every
//    timeline whose history holds a backup, every segment from each such
//    backup's start segment to the last archived segment of that history
//    (and each backup's stop segment) is archived, as the restore planner
//    (backup/restore_plan.h) would read them;
//  - block maps (pg/block_map.h): every `wal/map/*` object decodes and starts
//    where its segment does (with `read_data`, also carries the XXH3 of its
//    segment's metadata); one that does not is an error. An incomplete map
//    is a note (information): backups and restores do not rely on it.
// Warnings, not errors: a pack no index lists (an interrupted backup leaves
// one), a file list without a record, a segment object without metadata (an
// interrupted push), an object whose name walvault does not write (one
// listing of the whole repository is held against the object classes of
// docs/format.md, "Object names").
//
// With `read_data`, every object of every class is also read in full and
// verified (envelope checksum and tag, and what its class holds): config, key
// wraps, cluster, segments (content against their metadata's XXH3 and size)
// and their metadata, other WAL files, every chunk envelope of every pack
// against its chunk id and each pack against its name, indexes, backup
// records, file lists and pins, snapshot records, history entries and locks;
// dump records; a snapshot's file whose chunk a pack check found missing or
// damaged is named with its snapshot and path, a dump with its chunk's number.
//
// Each problem names the object. Store failures (Error(kIo)) are not
// problems of the repository: they propagate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "repo/repository.h"

namespace walvault::ops {

struct Problem {
  std::string object;   // "packs/ab/ab12...", "backups/20261126-120248/files", "wal", ...
  std::string message;  // what is wrong with it
};

struct VerifyOptions {
  bool read_data = false;
};

struct VerifyReport {
  std::vector<Problem> errors;
  std::vector<Problem> warnings;
  std::vector<Problem> notes;  // information, neither error nor warning
  bool read_data = false;
  std::uint64_t backups = 0;       // backups with a record
  std::uint64_t snapshots = 0;     // file-volume snapshot records that decode
  std::uint64_t dumps = 0;         // logical dump records that decode
  std::uint64_t chunks = 0;        // distinct chunks listed by the indexes
  std::uint64_t packs = 0;         // pack objects listed
  std::uint64_t indexes = 0;       // index objects listed
  std::uint64_t wal_segments = 0;  // segments with metadata
  std::uint64_t block_maps = 0;    // block maps that decode
  std::uint64_t bytes_read = 0;    // stored bytes read in full (read_data)

  bool ok() const { return errors.empty(); }
};

VerifyReport verify_repository(repo::Repository& repo, const VerifyOptions& options);

// "error: <object>: <message>", "warning: ..." and "info: ..." lines, then the
// summary "verify: N backups, S snapshots, D dumps, M chunks, K WAL segments checked; E errors,
// W warnings".
std::string verify_report_text(const VerifyReport& report);
// {"ok", "read_data", "backups", "snapshots", "dumps", "chunks", "packs", "indexes",
// "wal_segments",
//  "block_maps", "bytes_read", "errors": [{"object", "message"}], "warnings": [...],
//  "notes": [...]}
std::string verify_report_json(const VerifyReport& report);

}  // namespace walvault::ops
