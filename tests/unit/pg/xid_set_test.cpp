// The xid set codec: runs, membership, the exact bytes, and refusal of every
// malformed encoding (metadata can be crafted).
#include "pg/xid_set.h"

#include <gtest/gtest.h>

#include <random>

namespace walvault::pg {
namespace {

using XidRun = XidSet::Run;

TEST(XidSet, BuildsSortedMaximalRuns) {
  XidSet s = XidSet::from_xids({12, 10, 11, 11, 20, 3, 13, 22, 21});
  const std::vector<XidRun> want = {{3, 3}, {10, 13}, {20, 22}};
  EXPECT_EQ(s.runs(), want);
  EXPECT_EQ(s.size(), 8u);
  for (std::uint32_t x : {3u, 10u, 11u, 13u, 20u, 22u}) EXPECT_TRUE(s.contains(x)) << x;
  for (std::uint32_t x : {0u, 2u, 4u, 9u, 14u, 19u, 23u, 0xFFFFFFFFu}) EXPECT_FALSE(s.contains(x));
  EXPECT_TRUE(XidSet().empty());
  EXPECT_FALSE(XidSet().contains(0));
}

TEST(XidSet, EncodesTheDocumentedBytes) {
  // version 1, 3 runs; (gap 3, len-1 0); (gap 10-(3+2)=5, 3); (gap 20-(13+2)=5, 2)
  EXPECT_EQ(XidSet::from_xids({3, 10, 11, 12, 13, 20, 21, 22}).encode(),
            (Bytes{1, 3, 3, 0, 5, 3, 5, 2}));
  EXPECT_EQ(XidSet().encode(), (Bytes{1, 0}));
  // 300 = 0xAC 0x02 in LEB128; 2^32 - 1 takes five bytes.
  EXPECT_EQ(XidSet::from_xids({300}).encode(), (Bytes{1, 1, 0xAC, 0x02, 0}));
  EXPECT_EQ(XidSet::from_xids({0xFFFFFFFFu}).encode(),
            (Bytes{1, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0}));
}

TEST(XidSet, RoundTripsIncludingBothEndsOfTheXidSpace) {
  // Around the wraparound a segment can hold xids at both ends.
  const std::vector<std::vector<std::uint32_t>> sets = {
      {}, {0}, {0xFFFFFFFFu}, {0xFFFFFFFEu, 0xFFFFFFFFu, 3, 4, 5}, {0, 1, 2, 0xFFFFFFFFu}};
  for (const auto& xids : sets) {
    XidSet s = XidSet::from_xids(xids);
    auto back = XidSet::decode(s.encode());
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, s);
    for (auto x : xids) EXPECT_TRUE(back->contains(x)) << x;
  }
  std::mt19937 rng(13);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::uint32_t> xids;
    std::uint32_t x = rng();
    const int n = static_cast<int>(rng() % 500);
    for (int i = 0; i < n; ++i) xids.push_back(x += 1 + rng() % (round % 2 ? 3 : 100000));
    XidSet s = XidSet::from_xids(xids);
    auto back = XidSet::decode(s.encode());
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, s);
  }
}

TEST(XidSet, ACommitHeavySegmentStaysSmall) {
  // 30 000 xids ending in order, 300 gaps (aborts, xids ending elsewhere)
  // and 300 stragglers from long transactions: a busy pgbench segment.
  std::vector<std::uint32_t> xids;
  for (std::uint32_t x = 1000000; x < 1030000; ++x)
    if (x % 100 != 7 && x % 1000 != 501) xids.push_back(x);
  for (std::uint32_t i = 0; i < 300; ++i) xids.push_back(999000 + 3 * i);
  const Bytes bytes = XidSet::from_xids(xids).encode();
  EXPECT_LT(bytes.size(), 2000u) << bytes.size();
}

TEST(XidSet, RefusesMalformedEncodings) {
  const std::vector<Bytes> bad = {
      {},                                             // empty
      {2, 0},                                         // unknown version
      {1},                                            // no count
      {1, 1, 3},                                      // truncated run
      {1, 1, 3, 0, 0},                                // trailing byte
      {1, 1, 0x83, 0x00, 0},                          // overlong varint (redundant zero byte)
      {1, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0},        // above 2^32 - 1
      {1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},     // six-byte varint
      {1, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0},  // a run after 2^32 - 1
      {1, 1, 0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 2},        // run past 2^32 - 1
      {1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F},              // count beyond the bytes
  };
  for (const auto& b : bad) EXPECT_FALSE(XidSet::decode(b)) << testing::PrintToString(b);
}

}  // namespace
}  // namespace walvault::pg
