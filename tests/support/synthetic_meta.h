// Synthetic repository content for planner/verify/sync/gc unit tests.
//
// A synthetic WAL segment's metadata:
// segment `segno` of timeline `tli` whose only transaction commits at
// `commit_us`, with records from just after the page header to near the end.
// Callers set what their test depends on (size, xxh3, xids, restore points).
#pragma once

#include <cstdint>

#include "codec/crypto.h"
#include "core/bytes.h"
#include "pg/block_map.h"
#include "pg/wal_name.h"
#include "repo/cluster.h"
#include "repo/wal_objects.h"
#include "support/seeded_bytes.h"

namespace walvault::testing {

inline repo::SegmentMeta synthetic_segment_meta(pg::TimeLineId tli, std::uint64_t segno,
                                                std::uint32_t segment_size,
                                                std::int64_t commit_us) {
  repo::SegmentMeta m;
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

// Stores `data` as the segment `m` names, and `m` as its metadata, with
// size and xxh3 filled in from `data`.
inline void put_synthetic_segment(repo::Repository& repo, repo::SegmentMeta m, const Bytes& data) {
  m.size = data.size();
  m.xxh3 = codec::xxh3_64(data);
  repo.put_object(repo::segment_object_name(m.name), data);
  repo.put_object(repo::meta_object_name(m.name), as_bytes(repo::meta_to_json(m)));
}

// A complete block map of the segment `m` names, made from `data` (its
// bytes as put_synthetic_segment stores them): one changed block. Store it
// with repo.put_object(repo::block_map_object_name(m.name), encode_block_map(...)).
inline pg::BlockMap synthetic_block_map(const repo::SegmentMeta& m, std::uint32_t segment_size,
                                        const Bytes& data) {
  pg::BlockMap map;
  map.pg_major = 15;
  map.segment_start = m.segno * segment_size;
  map.segment_xxh3 = codec::xxh3_64(data);
  map.blocks.push_back({{1663, 5, 16384, 0}, {{static_cast<std::uint32_t>(m.segno), false}}});
  return map;
}

}  // namespace walvault::testing
