// union_block_maps (walarchive/block_maps.h): the union over a range, and
// every reason an answer is not complete.
#include "walarchive/block_maps.h"

#include <gtest/gtest.h>

namespace walvault::walarchive {
namespace {

constexpr pg::RelFork kRel{1663, 5, 16397, 0};
constexpr pg::Lsn kSeg = 16u << 20;

pg::BlockMap map_with(std::uint64_t segno, std::vector<pg::ChangedBlock> blocks,
                      std::uint64_t xxh3 = 7) {
  pg::BlockMap m;
  m.pg_major = 15;
  m.segment_start = segno * kSeg;
  m.segment_xxh3 = xxh3;
  if (!blocks.empty()) m.blocks.push_back({kRel, std::move(blocks)});
  return m;
}

SegmentMaps seg(std::uint64_t segno, std::optional<pg::BlockMap> map, std::uint64_t xxh3 = 7) {
  return {pg::segment_file_name(1, segno, kSeg), xxh3, std::move(map)};
}

TEST(BlockMapUnion, MergesBlocksKeepingTheEarliestReference) {
  const std::vector<SegmentMaps> range = {
      seg(3, map_with(3, {{1, false}, {5, true}})),
      seg(4, map_with(4, {{1, true}, {2, false}, {5, false}, {9, true}}))};
  const ChangedBlocks u = union_block_maps(range, std::nullopt, 5 * kSeg);
  ASSERT_TRUE(u.complete());
  ASSERT_EQ(u.blocks.size(), 1u);
  const std::vector<pg::ChangedBlock> want = {{1, false}, {2, false}, {5, true}, {9, true}};
  EXPECT_EQ(u.blocks[0].blocks, want);
  EXPECT_EQ(u.segments, 2u);
}

TEST(BlockMapUnion, NamesEveryReasonNotToTrustIt) {
  pg::BlockMap incomplete = map_with(5, {{1, false}});
  incomplete.mark_incomplete("record at 0/5000028: unknown resource manager 130");
  const std::vector<SegmentMaps> range = {
      seg(3, std::nullopt),                  // pushed by an older walvault
      seg(4, map_with(4, {{1, false}}, 8)),  // made from other bytes
      seg(5, incomplete),
      {pg::segment_file_name(1, 6, kSeg), std::nullopt, std::nullopt}};  // not archived
  const ChangedBlocks u = union_block_maps(range, std::nullopt, 7 * kSeg);
  EXPECT_FALSE(u.complete());
  ASSERT_EQ(u.problems.size(), 4u);
  EXPECT_NE(u.problems[0].find("000000010000000000000003 has no block map"), std::string::npos)
      << u.problems[0];
  EXPECT_NE(u.problems[1].find("other bytes"), std::string::npos) << u.problems[1];
  EXPECT_NE(u.problems[2].find("unknown resource manager 130"), std::string::npos) << u.problems[2];
  EXPECT_NE(u.problems[3].find("not archived"), std::string::npos) << u.problems[3];
}

TEST(BlockMapUnion, CrossingRecordNeedsTheNextMapOnlyBeforeTheEnd) {
  // A head holding only 16 bytes: the block headers are in the next segment.
  pg::BlockMap first = map_with(3, {{1, false}});
  first.head = pg::HeadFragment{4 * kSeg - 16, 200, 16, Bytes(16, 0)};
  const std::vector<SegmentMaps> range = {seg(3, first)};
  // The record starts before end_lsn and the next map is not there.
  const ChangedBlocks open = union_block_maps(range, std::nullopt, 4 * kSeg);
  EXPECT_FALSE(open.complete());
  // It starts at or after end_lsn: not needed.
  EXPECT_TRUE(union_block_maps(range, std::nullopt, 4 * kSeg - 16).complete());
  // The next map has no map of its own: still incomplete.
  EXPECT_FALSE(union_block_maps(range, seg(4, std::nullopt), 4 * kSeg).complete());
}

}  // namespace
}  // namespace walvault::walarchive
