// A synthetic WAL segment's metadata for planner/verify/sync unit tests:
// segment `segno` of timeline `tli` whose only transaction commits at
// `commit_us`, with records from just after the page header to near the end.
// Callers set what their test depends on (size, xxh3, xids, restore points).
#pragma once

#include <cstdint>

#include "pg/wal_name.h"
#include "walarchive/wal_objects.h"

namespace walvault::testing {

inline walarchive::SegmentMeta synthetic_segment_meta(pg::TimeLineId tli, std::uint64_t segno,
                                                      std::uint32_t segment_size,
                                                      std::int64_t commit_us) {
  walarchive::SegmentMeta m;
  m.name = pg::segment_file_name(tli, segno, segment_size);
  m.timeline = tli;
  m.segno = segno;
  m.size = segment_size;
  m.system_id = 42;
  m.pg_major = 15;
  m.summary.first_record_lsn = segno * segment_size + 0x28;
  m.summary.end_lsn = (segno + 1) * segment_size - 0x100;
  m.summary.records = 10;
  m.summary.commits = 1;
  m.summary.min_xact_time_us = commit_us;
  m.summary.max_xact_time_us = commit_us;
  return m;
}

}  // namespace walvault::testing
