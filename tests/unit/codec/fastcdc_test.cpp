// FastCDC: cut points bounded by the parameters, stable under insertion and
// deletion (what makes a changed file cost only the chunks around the change),
// and keyed: two repositories' keys give different cut points.
#include "codec/fastcdc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "core/error.h"
#include "support/error_code.h"
#include "support/seeded_bytes.h"

namespace walvault::codec {
namespace {

using testing::seeded_bytes;

std::vector<std::size_t> chunk_lengths(const CdcChunker& chunker, ByteView data) {
  std::vector<std::size_t> out;
  while (!data.empty()) {
    const std::size_t n = chunker.cut(data);
    out.push_back(n);
    data = data.subspan(n);
  }
  return out;
}

// The chunks' content, as a multiset of (offset-free) digests.
std::multiset<std::uint64_t> chunk_digests(const CdcChunker& chunker, ByteView data) {
  std::multiset<std::uint64_t> out;
  for (std::size_t n : chunk_lengths(chunker, data)) {
    out.insert(xxh3_64(data.first(n)));
    data = data.subspan(n);
  }
  return out;
}

// How many of `after`'s chunks were already among `before`'s, as a fraction.
double shared_fraction(const std::multiset<std::uint64_t>& before,
                       const std::multiset<std::uint64_t>& after) {
  std::size_t shared = 0;
  for (std::uint64_t d : after) shared += before.count(d) > 0;
  return static_cast<double>(shared) / static_cast<double>(after.size());
}

Key key_of(std::uint8_t fill) {
  Key k;
  k.fill(fill);
  return k;
}

TEST(FastCdcTest, ChunksAreBoundedAndAverageNearTheTarget) {
  const CdcParams params;
  const CdcChunker chunker(params, unkeyed_gear_table());
  const Bytes data = seeded_bytes(1, 64u << 20);
  const std::vector<std::size_t> lengths = chunk_lengths(chunker, data);
  std::size_t total = 0;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    total += lengths[i];
    EXPECT_LE(lengths[i], params.max_size);
    if (i + 1 < lengths.size()) {
      EXPECT_GT(lengths[i], params.min_size) << "chunk " << i;
    }
  }
  EXPECT_EQ(total, data.size());
  const double mean = static_cast<double>(total) / static_cast<double>(lengths.size());
  EXPECT_GT(mean, params.average_size * 0.75) << lengths.size() << " chunks";
  EXPECT_LT(mean, params.average_size * 1.5) << lengths.size() << " chunks";
  // Normalised chunking: no chunk of random data runs to the maximum.
  EXPECT_LT(*std::max_element(lengths.begin(), lengths.end()), params.max_size);
}

TEST(FastCdcTest, AKibInsertedInTheMiddleLeavesNinetyPercentOfChunksShared) {
  const CdcChunker chunker(CdcParams{}, keyed_gear_table(key_of(7)));
  const Bytes original = seeded_bytes(2, 64u << 20);
  Bytes inserted = original;
  const Bytes kib = seeded_bytes(3, 1024);
  inserted.insert(inserted.begin() + (33u << 20) + 12345, kib.begin(), kib.end());
  Bytes deleted = original;
  deleted.erase(deleted.begin() + (17u << 20) + 999, deleted.begin() + (17u << 20) + 999 + 1024);

  const auto before = chunk_digests(chunker, original);
  EXPECT_GE(shared_fraction(before, chunk_digests(chunker, inserted)), 0.9);
  EXPECT_GE(shared_fraction(before, chunk_digests(chunker, deleted)), 0.9);
  // A prefix insertion: the first chunk changes, the rest realign.
  Bytes prefixed = kib;
  prefixed.insert(prefixed.end(), original.begin(), original.end());
  EXPECT_GE(shared_fraction(before, chunk_digests(chunker, prefixed)), 0.9);
}

TEST(FastCdcTest, KeyedCutPointsDifferBetweenRepositoriesAndRepeatWithinOne) {
  const Bytes data = seeded_bytes(4, 32u << 20);
  const GearTable a = keyed_gear_table(key_of(1));
  const GearTable b = keyed_gear_table(key_of(2));
  EXPECT_NE(a, b);
  EXPECT_NE(a, unkeyed_gear_table());
  EXPECT_EQ(a, keyed_gear_table(key_of(1)));
  const auto cuts_a = chunk_lengths(CdcChunker(CdcParams{}, a), data);
  const auto cuts_a2 = chunk_lengths(CdcChunker(CdcParams{}, keyed_gear_table(key_of(1))), data);
  const auto cuts_b = chunk_lengths(CdcChunker(CdcParams{}, b), data);
  EXPECT_EQ(cuts_a, cuts_a2);
  // Different keys: (almost) no cut point in common.
  std::set<std::size_t> offsets_a;
  std::size_t at = 0;
  for (std::size_t n : cuts_a) offsets_a.insert(at += n);
  std::size_t common = 0;
  at = 0;
  for (std::size_t n : cuts_b) common += offsets_a.count(at += n);
  EXPECT_LE(common, 2u) << "the last offset (the end of the data) is always common";
}

TEST(FastCdcTest, ShortInputIsOneChunkAndEmptyIsNone) {
  const CdcChunker chunker(CdcParams{}, unkeyed_gear_table());
  const Bytes small = seeded_bytes(5, 1000);
  EXPECT_EQ(chunker.cut(small), 1000u);
  EXPECT_EQ(chunker.cut(ByteView{}), 0u);
  // Zeros never cut before the maximum (the gear hash of a constant run is
  // constant), so a hole in a sparse file is max-size chunks, all the same.
  const Bytes zeros(10u << 20, 0);
  const auto lengths = chunk_lengths(chunker, zeros);
  ASSERT_GE(lengths.size(), 2u);
  EXPECT_EQ(lengths[0], lengths[1]);
}

TEST(FastCdcTest, ParametersOutsideTheirBoundsAreRefused) {
  for (const CdcParams p :
       {CdcParams{16, 1024, 4096}, CdcParams{4096, 1024, 8192}, CdcParams{256, 1000, 4096},
        CdcParams{256, 1024, 1024}, CdcParams{1u << 20, 32u << 20, 128u << 20}}) {
    EXPECT_EQ(testing::error_code_of([&] { CdcChunker(p, unkeyed_gear_table()); }),
              ErrorCode::kInvalidInput)
        << p.min_size << " " << p.average_size << " " << p.max_size;
  }
}

// The gear tables against values computed independently (Python's hmac and
// hashlib: HMAC-SHA256 of "gear" || i, HKDF-SHA256 with an empty salt).
TEST(FastCdcTest, GearTablesMatchTheirDefinition) {
  EXPECT_EQ(unkeyed_gear_table()[0], 0xd6a5465c01d4d9d7u);
  EXPECT_EQ(unkeyed_gear_table()[1], 0xa0c137d030c42a59u);
  EXPECT_EQ(unkeyed_gear_table()[255], 0xe119e6e0bab688d9u);
  EXPECT_EQ(keyed_gear_table(hkdf_sha256(key_of(9), kGearKeyInfo))[0], 0x523d0179d4242a34u);
}

// The cut points are part of the repository format (format.md, "File chunks"):
// a change here would make every file of the next snapshot new. Pinned on a
// fixed input with the unkeyed table and with a keyed one.
TEST(FastCdcTest, CutPointsArePinned) {
  const Bytes data = seeded_bytes(6, 12u << 20);
  const auto unkeyed = chunk_lengths(CdcChunker(CdcParams{}, unkeyed_gear_table()), data);
  const auto keyed = chunk_lengths(
      CdcChunker(CdcParams{}, keyed_gear_table(hkdf_sha256(key_of(9), kGearKeyInfo))), data);
  std::string u, k;
  for (std::size_t n : unkeyed) u += std::to_string(n) + " ";
  for (std::size_t n : keyed) k += std::to_string(n) + " ";
  EXPECT_EQ(
      u, "1113832 780543 1347755 1242631 1188977 1186356 1310412 1597581 1056433 1390676 367716 ");
  EXPECT_EQ(k,
            "1049754 558511 1712352 1226443 1373073 1111270 1321826 782256 1171958 1435244 271253 "
            "568972 ");
}

}  // namespace
}  // namespace walvault::codec
