// The record of one file-volume snapshot (docs/format.md, "Snapshot
// records"): which volume, when, from where, its root tree, and what the run
// counted. A snapshot exists when, and only when, its record exists; the
// record is written last, after every chunk and tree it names is durable.
//
//   snapshots/<volume>/<label>    JSON, enveloped (repo/layout.h names it)
//
// A volume name is 1..64 bytes of [A-Za-z0-9_.-], not starting with '.'. A
// label is the snapshot's UTC start time, YYYYMMDD-HHMMSS (-2, -3... on a
// clash). A snapshot's id, what `files ls/restore/...` take, is the first 12
// hex digits of SHA-256("<volume>/<label>").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/fastcdc.h"
#include "files/tree.h"
#include "repo/repository.h"

namespace walvault::files {

struct SnapshotRecord {
  std::string volume;
  std::string label;
  std::string tag;
  std::int64_t start_us = 0;
  std::int64_t end_us = 0;
  std::string host;
  std::vector<std::string> paths;  // what was snapshotted (absolute)
  repo::ChunkId root{};            // the root tree
  Node root_node;                  // the root directory's own metadata (name ".")
  std::string parent;              // label of the snapshot used for change detection
  codec::CdcParams chunker;
  bool keyed_chunker = false;  // gear table keyed by the repository's master key
  std::uint64_t files = 0, directories = 0, other = 0;
  std::uint64_t bytes = 0, read_bytes = 0, added_bytes = 0, unreadable = 0;
  std::vector<std::string> warnings;  // at most 100 kept; warning_count has them all
  std::uint64_t warning_count = 0;
};

// Why `volume` is not a volume name, or std::nullopt.
std::optional<std::string> volume_problem(std::string_view volume);

std::string snapshot_id(const SnapshotRecord& record);

std::string snapshot_to_json(const SnapshotRecord& record);
// Throws Error(kCorruption) naming `object` when malformed.
SnapshotRecord snapshot_from_json(std::string_view text, const std::string& object);

// Writes the record create-only under the first free label for its start
// time; returns the record with that label.
SnapshotRecord write_snapshot_record(repo::Repository& repo, SnapshotRecord record);

// Every snapshot (of `volume` when given), oldest first. Throws
// Error(kCorruption) naming a damaged record.
std::vector<SnapshotRecord> list_snapshots(repo::Repository& repo,
                                           const std::optional<std::string>& volume = {});

// A snapshot named on the command line: an id (or a unique prefix of at least
// 4 hex digits), "latest" (of `volume` when given), or "<volume>@<time>" (the
// newest of that volume started at or before the time, time_util's syntax).
// Throws Error(kNotFound) when none matches, Error(kUsage) when ambiguous or
// malformed.
SnapshotRecord find_snapshot(repo::Repository& repo, std::string_view spec,
                             const std::optional<std::string>& volume = {});

}  // namespace walvault::files
