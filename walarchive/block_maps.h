// Reading block maps back: which relation blocks changed, and which files
// changed wholesale, over a range of archived WAL (docs/format.md, "Block
// maps"; the per-segment maps are written by archive-push, pg/block_map.h).
//
// Contract:
//   * The answer covers every record that starts in the segments holding
//     [start_lsn, end_lsn) on `timeline` (segments named with that timeline),
//     and may include more (records of those segments after end_lsn, blocks
//     referenced but not changed): a superset of the changes, never less,
//     *when complete() is true*.
//   * complete() is false when any segment of the range is not archived, has
//     no map (pushed by a walvault older than block maps), has a map made
//     from other bytes than the archived segment (xxh3 differs from its
//     metadata), has an incomplete map, or a record crossing a segment
//     boundary cannot be attributed (the next segment's map is missing or
//     does not fit). `problems` names each; nothing downstream may trust the
//     blocks or events of an incomplete answer (use them only as a hint).
//   * start_lsn must be a record boundary (a checkpoint's redo pointer, a
//     backup's start): a record that began in an earlier segment is not
//     included.
//   * Free space map forks (fork 1) are not fully WAL-logged: treat every FSM
//     fork as changed whatever the blocks say. Files that are not relations
//     (SLRUs, pg_filenode.map except through kRelationMapUpdated, ...) are
//     not described at all.
//
// Cost: two GETs per segment (metadata and map), segments read by up to
// `parallel` threads at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pg/block_map.h"
#include "pg/wal_name.h"
#include "repo/repository.h"

namespace walvault::walarchive {

struct BlockMapQuery {
  pg::TimeLineId timeline = 0;
  pg::Lsn start_lsn = 0;
  pg::Lsn end_lsn = 0;  // exclusive; > start_lsn
  std::uint32_t segment_size = 0;
  int parallel = 8;  // segments read at once (requests in flight; >= 1)
};

struct ChangedBlocks {
  // Union over the range: sorted by fork, blocks strictly ascending; a
  // block's no_read is the one of its earliest reference in the range (redo
  // replaying from start_lsn need not read that page first).
  std::vector<pg::ForkBlocks> blocks;
  // Wholesale changes, in LSN order.
  std::vector<pg::MapEvent> events;
  std::vector<std::string> problems;  // empty: complete
  std::uint64_t segments = 0;         // segments in the range

  bool complete() const { return problems.empty(); }
};

// One segment's inputs for union_block_maps(): what archive-push stored.
struct SegmentMaps {
  std::string segment;                     // its file name
  std::optional<std::uint64_t> meta_xxh3;  // std::nullopt: not archived
  std::optional<pg::BlockMap> map;         // std::nullopt: no map stored
};

// Reads the metadata and maps of the range (and of the segment after it when
// a record crosses into it before end_lsn) and unions them. Throws
// Error(kInvalidInput) for an empty or malformed query, Error(kCorruption)
// when a stored map does not decode.
ChangedBlocks read_changed_blocks(repo::Repository& repo, const BlockMapQuery& query);

// The union itself, pure: `range` in segment order, `after` the segment that
// follows the last (std::nullopt: not read). Records starting at or after
// end_lsn need not be attributed.
ChangedBlocks union_block_maps(const std::vector<SegmentMaps>& range,
                               const std::optional<SegmentMaps>& after, pg::Lsn end_lsn);

}  // namespace walvault::walarchive
