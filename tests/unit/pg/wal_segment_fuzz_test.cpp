// Robustness: whatever the bytes, check_segment_header either accepts or throws
// Error(kInvalidInput), and summarize_segment returns without reading out of
// bounds (scripts/sanitize runs these under -fsanitize=address,undefined to
// make that visible, with WALVAULT_FUZZ_SECONDS for more seeds).
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "pg/wal_segment.h"
#include "support/fuzz_seeds.h"
#include "support/segment_builder.h"

namespace walvault::pg {
namespace {

using testing::kRmHeap;
using testing::kRmXact;
using testing::kRmXlog;
using testing::make_body;
using testing::SegmentBuilder;
using testing::xact_main;
using walvault::testing::FuzzSeeds;

constexpr std::int64_t kT0 = 1714564800000000LL;

void fill_random(std::mt19937_64& rng, std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(rng());
}

SegmentHeader header_of(SegmentBuilder& b) {
  return check_segment_header(b.bytes(), *parse_wal_file_name(b.file_name()));
}

// Sanity bounds any summary must satisfy, garbage or not.
void expect_plausible(const SegmentSummary& s, const SegmentBuilder& b) {
  const Lsn start = b.start_lsn();
  const Lsn end = start + b.options().segment_size;
  EXPECT_LE(s.commits + s.aborts + s.restore_points.size(), s.records);
  if (s.records > 0) {
    EXPECT_GE(s.first_record_lsn, start);
    EXPECT_LT(s.first_record_lsn, end);
    EXPECT_GT(s.end_lsn, s.first_record_lsn);
    EXPECT_LE(s.end_lsn, end);
  } else {
    EXPECT_EQ(s.first_record_lsn, 0u);
    EXPECT_EQ(s.end_lsn, 0u);
  }
  EXPECT_EQ(s.min_xact_time_us.has_value(), s.commits + s.aborts > 0);
  for (const RestorePoint& rp : s.restore_points) EXPECT_LE(rp.name.size(), 64u);
}

TEST(SegmentFuzz, RandomBytesAfterAValidHeader) {
  for (FuzzSeeds seeds(64); seeds.next();) {
    const std::uint64_t seed = seeds.seed();
    SCOPED_TRACE(seeds.describe());
    std::mt19937_64 rng(seed);
    SegmentBuilder b({});
    b.add_record(kRmHeap, 0, 0, make_body(Bytes(16, 1)));
    const SegmentHeader header = header_of(b);
    const std::size_t keep = seed % 2 == 0 ? 40 : 40 + 8 * (seed % 7);
    fill_random(rng, b.bytes().data() + keep, b.bytes().size() - keep);
    const SegmentSummary s = summarize_segment(b.bytes(), header);
    expect_plausible(s, b);
  }
}

TEST(SegmentFuzz, RandomRecordsBehindValidPageHeaders) {
  // Every page header valid (random continuation flags and lengths), random
  // data in between: the decoder gets past page validation and into records.
  for (FuzzSeeds seeds(64); seeds.next();) {
    const std::uint64_t seed = seeds.seed();
    SCOPED_TRACE(seeds.describe());
    std::mt19937_64 rng(seed * 7919 + 1);
    SegmentBuilder b({.page_size = seed % 3 == 0 ? 1024u : 8192u});
    b.add_record(kRmHeap, 0, 0, make_body(Bytes(16, 1)));
    const SegmentHeader header = header_of(b);
    const std::size_t page = b.options().page_size;
    Bytes& bytes = b.bytes();
    fill_random(rng, bytes.data() + 40, bytes.size() - 40);
    for (std::size_t off = 0; off < bytes.size(); off += page) {
      const std::uint16_t flags = static_cast<std::uint16_t>(rng() & 0x9) | (off == 0 ? 2 : 0);
      store_le<std::uint16_t>(bytes.data() + off, 0xD110);
      store_le<std::uint16_t>(bytes.data() + off + 2, flags);
      store_le<std::uint32_t>(bytes.data() + off + 4, 1);
      store_le<std::uint64_t>(bytes.data() + off + 8, b.lsn_at(off));
      store_le<std::uint32_t>(bytes.data() + off + 16, static_cast<std::uint32_t>(rng() % 20000));
      if (off != 0) continue;
      store_le<std::uint64_t>(bytes.data() + 24, 1);
      store_le<std::uint32_t>(bytes.data() + 32, b.options().segment_size);
      store_le<std::uint32_t>(bytes.data() + 36, static_cast<std::uint32_t>(page));
    }
    // Small plausible record lengths at the first record positions.
    store_le<std::uint32_t>(bytes.data() + 40, 24 + static_cast<std::uint32_t>(rng() % 64));
    expect_plausible(summarize_segment(bytes, header), b);
  }
}

TEST(SegmentFuzz, RandomBodiesWithValidCrcs) {
  // Transaction and XLOG records whose bodies are random but correctly
  // checksummed: the fragment walk must reject or accept them safely.
  for (FuzzSeeds seeds(200); seeds.next();) {
    const std::uint64_t seed = seeds.seed();
    SCOPED_TRACE(seeds.describe());
    std::mt19937_64 rng(seed + 1000);
    SegmentBuilder b({.magic = seed % 2 ? std::uint16_t{0xD106} : std::uint16_t{0xD113}});
    b.add_record(kRmXact, 0x00, 1, make_body(xact_main(kT0)));
    for (int i = 0; i < 20; ++i) {
      Bytes body(rng() % 120);
      fill_random(rng, body.data(), body.size());
      if (!body.empty() && rng() % 2) body[0] = static_cast<std::uint8_t>(rng() % 34);  // block id
      const std::uint8_t rmid = rng() % 2 ? kRmXact : kRmXlog;
      const std::uint8_t info = static_cast<std::uint8_t>(rng() % 2 ? 0x70 : rng() & 0xF0);
      b.add_record(rmid, info, static_cast<std::uint32_t>(rng()), body);
    }
    const SegmentSummary s = summarize_segment(b.bytes(), header_of(b));
    EXPECT_GE(s.records, 1u);
    EXPECT_GE(s.commits, 1u);
    expect_plausible(s, b);
  }
}

SegmentBuilder realistic_segment() {
  SegmentBuilder b({});
  b.leading_continuation(9000);
  for (int i = 0; i < 400; ++i) {
    b.add_record(kRmHeap, 0, 0, make_body(Bytes(static_cast<std::size_t>(i * 37 % 3000), 9)));
    b.add_record(kRmXact, i % 5 ? 0x00 : 0x20, 1000 + i, make_body(xact_main(kT0 + i, i % 9)));
    if (i % 50 == 0) {
      b.add_record(kRmXlog, 0x70, 0, make_body(testing::restore_point_main(kT0 + i, "rp")));
    }
  }
  return b;
}

TEST(SegmentFuzz, ByteFlipsInARealisticSegment) {
  SegmentBuilder pristine = realistic_segment();
  const SegmentHeader header = header_of(pristine);
  const SegmentSummary clean = summarize_segment(pristine.bytes(), header);
  ASSERT_EQ(clean.commits + clean.aborts, 400u);
  ASSERT_EQ(clean.restore_points.size(), 8u);
  for (FuzzSeeds seeds(300); seeds.next();) {
    const std::uint64_t seed = seeds.seed();
    SCOPED_TRACE(seeds.describe());
    std::mt19937_64 rng(seed);
    SegmentBuilder b = pristine;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) {
      // Mostly within the written part, where it matters.
      const std::size_t at = rng() % std::max<std::size_t>(b.position(), 1);
      b.bytes()[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    }
    const SegmentSummary s = summarize_segment(b.bytes(), header);
    expect_plausible(s, b);
    // Corruption can only end the data earlier, never invent records.
    EXPECT_LE(s.records, clean.records);
    EXPECT_LE(s.commits + s.aborts, 400u);
  }
}

TEST(SegmentFuzz, TruncatedOrInconsistentInputs) {
  SegmentBuilder b = realistic_segment();
  const SegmentHeader header = header_of(b);
  const ByteView all(b.bytes());
  for (std::size_t size :
       {0ul, 1ul, 39ul, 40ul, 8191ul, 8192ul, 8193ul, 100000ul, all.size() - 1}) {
    const SegmentSummary s = summarize_segment(all.first(size), header);
    EXPECT_LE(s.end_lsn, b.lsn_at(size)) << size;
  }
  SegmentHeader odd = header;
  for (std::uint32_t page : {0u, 1u, 24u, 100u, 4096u, 1u << 20}) {
    odd.page_size = page;
    summarize_segment(all, odd);
  }
  odd = header;
  odd.segment_size = 0;
  EXPECT_EQ(summarize_segment(all, odd).records, 0u);
  odd.segment_size = 1u << 30;  // larger than the data
  EXPECT_EQ(summarize_segment(all, odd).records, summarize_segment(all, header).records);
  odd = header;
  odd.magic = 0x1234;
  EXPECT_EQ(summarize_segment(all, odd).records, 0u);
  odd = header;
  odd.page_address += 8192;
  EXPECT_EQ(summarize_segment(all, odd).records, 0u);
}

TEST(SegmentFuzz, HeaderCheckOnlyEverThrowsInvalidInput) {
  const auto name = *parse_wal_file_name("000000010000000000000003");
  for (FuzzSeeds seeds(2000); seeds.next();) {
    const std::uint64_t seed = seeds.seed();
    SCOPED_TRACE(seeds.describe());
    std::mt19937_64 rng(seed);
    Bytes data(rng() % 2 ? rng() % 140 : 1u << 20);
    fill_random(rng, data.data(), std::min<std::size_t>(data.size(), 256));
    if (data.size() < 40) {
      EXPECT_THROW(check_segment_header(data, name), Error);
      continue;
    }
    if (rng() % 2) store_le<std::uint16_t>(data.data(), 0xD110);
    if (rng() % 2) store_le<std::uint16_t>(data.data() + 2, 0x0002);
    if (rng() % 2) store_le<std::uint32_t>(data.data() + 32, 1u << 20);
    if (rng() % 2) store_le<std::uint32_t>(data.data() + 36, 8192);
    try {
      const SegmentHeader header = check_segment_header(data, name);
      summarize_segment(data, header);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
      EXPECT_EQ(std::string(e.what()).rfind("000000010000000000000003: ", 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace walvault::pg
