// How archived WAL lives in the repository (docs/format.md, "WAL objects";
// the names are built and parsed in repo/layout.h):
//   wal/seg/<tli+log, 16 hex>/<segment name>    the segment, one envelope
//   wal/meta/<tli+log, 16 hex>/<segment name>   its metadata (JSON), written
//                                               after the segment: a segment
//                                               counts as archived only once
//                                               its metadata exists
//   wal/map/<tli+log, 16 hex>/<segment name>    its block map (pg/block_map.h),
//                                               written before the metadata;
//                                               absent for segments pushed by
//                                               a walvault older than maps
//   wal/file/<name>                             .history, .backup, .partial
//   wal/cat/<tli+log, 16 hex>/<content id>      a catalogue of a log directory's
//                                               metadata (wal_catalogue.h)
// Grouping by timeline+log keeps one "directory" to at most 256 segments of
// 16 MiB, and lets a planner list a timeline without listing everything.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pg/wal_name.h"
#include "pg/wal_segment.h"
#include "repo/layout.h"
#include "repo/repository.h"

namespace walvault::repo {

// XXH3-64 as 16 lower-case hex digits, most significant first.
std::string format_xxh3(std::uint64_t hash);
std::optional<std::uint64_t> parse_xxh3(std::string_view text);

struct SegmentMeta {
  std::string name;
  pg::TimeLineId timeline = 0;
  std::uint64_t segno = 0;
  std::uint64_t size = 0;
  std::uint64_t xxh3 = 0;  // of the segment's bytes, to judge re-pushes
  int pg_major = 0;
  std::uint64_t system_id = 0;
  std::int64_t archived_us = 0;
  pg::SegmentSummary summary;
};

std::string meta_to_json(const SegmentMeta& meta);
// Throws Error(kCorruption) naming `object` when the JSON is not a SegmentMeta.
SegmentMeta meta_from_json(std::string_view text, const std::string& object);

// The block map stored for a segment; std::nullopt when there is none (a
// segment pushed before block maps existed, or not archived). Throws
// Error(kCorruption) when the object does not decode.
std::optional<pg::BlockMap> read_block_map(repo::Repository& repo, const std::string& segment_name);

std::optional<SegmentMeta> read_meta(repo::Repository& repo, const std::string& segment_name);
// Every segment's metadata, sorted by name (timeline, then position): the
// WAL catalogues where they cover a log directory, the wal/meta/ objects for
// the rest, read in parallel (wal_catalogue.h, read_catalogued_meta).
std::vector<SegmentMeta> read_all_meta(repo::Repository& repo);

}  // namespace walvault::repo
