// Synthetic repository content for planner/verify/sync/gc unit tests.
//
// A synthetic WAL segment's metadata:
// segment `segno` of timeline `tli` whose only transaction commits at
// `commit_us`, with records from just after the page header to near the end.
// Callers set what their test depends on (size, xxh3, xids, restore points).
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "pg/wal_name.h"
#include "repo/cluster.h"
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

// `size` pseudo-random bytes, the same for the same seed (chunk content
// whose identity a test controls).
inline Bytes seeded_bytes(std::uint32_t seed, std::size_t size) {
  Bytes b(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& v : b) {
    x = x * 1103515245u + 12345u;
    v = static_cast<std::uint8_t>(x >> 24);
  }
  return b;
}

// Binds `repo` to the synthetic cluster the metadata above describes
// (system id 42 unless given, PostgreSQL 15, 8 KiB pages).
inline void bind_synthetic_cluster(repo::Repository& repo, std::uint32_t segment_size,
                                   std::uint64_t system_id = 42) {
  repo::ClusterInfo cluster;
  cluster.system_id = system_id;
  cluster.segment_size = segment_size;
  cluster.page_size = 8192;
  cluster.pg_major = 15;
  repo::bind_cluster(repo, cluster, "test");
}

}  // namespace walvault::testing
