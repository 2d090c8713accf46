#include "pg/wal_segment.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "support/segment_builder.h"

namespace walvault::pg {
namespace {

using testing::kRmHeap;
using testing::kRmXact;
using testing::kRmXlog;
using testing::kXactAbort;
using testing::kXactAbortPrepared;
using testing::kXactCommit;
using testing::kXactCommitPrepared;
using testing::kXactHasInfo;
using testing::kXlogRestorePoint;
using testing::kXlogSwitch;
using testing::make_body;
using testing::restore_point_main;
using testing::SegmentBuilder;
using testing::xact_main;

constexpr std::int64_t kT0 = 1714564800123456LL;  // 2024-05-01 12:00:00.123456 UTC
constexpr std::size_t kPage = 8192;

SegmentSummary summarize(SegmentBuilder& b) {
  auto name = parse_wal_file_name(b.file_name());
  EXPECT_TRUE(name);
  const SegmentHeader header = check_segment_header(b.bytes(), *name);
  return summarize_segment(b.bytes(), header);
}

Bytes heap_body(std::size_t n) { return make_body(Bytes(n, 0x42)); }

// ---------------------------------------------------------------------------
// check_segment_header

class HeaderCheck : public ::testing::Test {
 protected:
  HeaderCheck() : builder_(SegmentBuilder::Options{}) {
    builder_.add_record(kRmHeap, 0, 0, heap_body(10));
  }

  // Runs the check on the builder's bytes under `name` and returns the error
  // message, or "" when accepted.
  std::string check(const std::string& name) {
    auto parsed = parse_wal_file_name(name);
    EXPECT_TRUE(parsed) << name;
    try {
      check_segment_header(builder_.bytes(), *parsed);
      return "";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
      return e.what();
    }
  }
  std::string check() { return check(builder_.file_name()); }

  std::uint8_t* data() { return builder_.bytes().data(); }

  SegmentBuilder builder_;
};

TEST_F(HeaderCheck, AcceptsAValidSegment) {
  auto name = parse_wal_file_name(builder_.file_name());
  ASSERT_TRUE(name);
  const SegmentHeader h = check_segment_header(builder_.bytes(), *name);
  EXPECT_EQ(h.magic, 0xD110);
  EXPECT_EQ(h.pg_major, 15);
  EXPECT_EQ(h.timeline, 1u);
  EXPECT_EQ(h.page_address, builder_.start_lsn());
  EXPECT_EQ(h.system_id, 7345678901234567890ULL);
  EXPECT_EQ(h.segment_size, 1u << 20);
  EXPECT_EQ(h.page_size, 8192u);
  EXPECT_EQ(check(builder_.file_name() + ".partial"), "");
}

TEST_F(HeaderCheck, KnowsEveryMagic) {
  const std::pair<std::uint16_t, int> known[] = {{0xD106, 13}, {0xD10D, 14}, {0xD110, 15},
                                                 {0xD113, 16}, {0xD116, 17}, {0xD118, 18}};
  for (auto [magic, major] : known) {
    EXPECT_EQ(pg_major_for_page_magic(magic), major);
    store_le<std::uint16_t>(data(), magic);
    EXPECT_EQ(check(), "");
  }
  EXPECT_FALSE(pg_major_for_page_magic(0xD105));
  EXPECT_FALSE(pg_major_for_page_magic(0));
}

TEST_F(HeaderCheck, RejectsUnknownMagic) {
  store_le<std::uint16_t>(data(), 0x1234);
  EXPECT_EQ(check(),
            "000000010000000000000003: page magic 0x1234 is not a known PostgreSQL WAL magic");
}

TEST_F(HeaderCheck, RejectsWrongFileKind) {
  EXPECT_EQ(check("00000001.history"), "00000001.history: not a WAL segment file name");
}

TEST_F(HeaderCheck, RejectsShortAndLongFiles) {
  Bytes& bytes = builder_.bytes();
  bytes.resize(1000);
  EXPECT_EQ(check(), "000000010000000000000003: file is 1000 bytes, segment size is 1048576");
  bytes.resize(39);
  EXPECT_EQ(check(),
            "000000010000000000000003: file is 39 bytes, too short for a WAL long page header "
            "(40 bytes)");
  bytes.clear();
  EXPECT_EQ(check(),
            "000000010000000000000003: file is 0 bytes, too short for a WAL long page header "
            "(40 bytes)");
}

TEST_F(HeaderCheck, RejectsTrailingBytes) {
  builder_.bytes().push_back(0);
  EXPECT_EQ(check(), "000000010000000000000003: file is 1048577 bytes, segment size is 1048576");
}

TEST_F(HeaderCheck, RejectsMissingLongHeaderFlag) {
  store_le<std::uint16_t>(data() + 2, 0x0001);
  EXPECT_EQ(check(),
            "000000010000000000000003: first page has no long header (page info flags 0x0001)");
}

TEST_F(HeaderCheck, RejectsUnknownPageFlags) {
  store_le<std::uint16_t>(data() + 2, 0x0012);
  EXPECT_EQ(check(), "000000010000000000000003: page info flags 0x0012 contain unknown bits");
}

TEST_F(HeaderCheck, RejectsZeroSystemIdentifier) {
  store_le<std::uint64_t>(data() + 24, 0);
  EXPECT_EQ(check(), "000000010000000000000003: system identifier in the page header is 0");
}

TEST_F(HeaderCheck, RejectsBadSegmentSize) {
  for (std::uint32_t bad : {0u, 512u * 1024, 3u << 20, 1u << 31}) {
    store_le<std::uint32_t>(data() + 32, bad);
    EXPECT_EQ(check(), "000000010000000000000003: segment size " + std::to_string(bad) +
                           " in the page header is not a power of two from 1 MiB to 1 GiB");
  }
  // A valid size that is not this file's size.
  store_le<std::uint32_t>(data() + 32, 16u << 20);
  EXPECT_EQ(check(), "000000010000000000000003: file is 1048576 bytes, segment size is 16777216");
}

TEST_F(HeaderCheck, RejectsBadPageSize) {
  for (std::uint32_t bad : {0u, 512u, 8000u, 131072u}) {
    store_le<std::uint32_t>(data() + 36, bad);
    EXPECT_EQ(check(), "000000010000000000000003: page size " + std::to_string(bad) +
                           " in the page header is not a power of two from 1024 to 65536");
  }
}

TEST_F(HeaderCheck, RejectsPageAddressNotMatchingTheName) {
  EXPECT_EQ(check("000000010000000000000004"),
            "000000010000000000000004: page address 0/300000 does not match the file name "
            "(expected 0/400000)");
}

TEST_F(HeaderCheck, RejectsSegmentPartOutOfRangeForTheSize) {
  // 1 MiB segments: 4096 per 4 GiB, so "...00001000" is not a valid name; it
  // would otherwise alias segment 0x1000 (= "000000010000000100000000").
  EXPECT_EQ(check("000000010000000000001000"),
            "000000010000000000001000: segment number is out of range for 1048576-byte segments");
}

TEST_F(HeaderCheck, ChecksTimelineAgainstTheName) {
  // Older page timeline than the name: the first segment of a new timeline.
  EXPECT_EQ(check("000000020000000000000003"), "");
  store_le<std::uint32_t>(data() + 4, 3);
  EXPECT_EQ(check("000000020000000000000003"),
            "000000020000000000000003: page timeline 3 is not between 1 and the file name's "
            "timeline 2");
  store_le<std::uint32_t>(data() + 4, 0);
  EXPECT_EQ(check("000000020000000000000003"),
            "000000020000000000000003: page timeline 0 is not between 1 and the file name's "
            "timeline 2");
}

// ---------------------------------------------------------------------------
// summarize_segment

TEST(SummarizeSegment, EmptySegmentHasNoRecords) {
  SegmentBuilder b({});
  b.add_record(kRmHeap, 0, 0, heap_body(1));
  std::fill(b.bytes().begin() + 40, b.bytes().end(), 0);
  const SegmentSummary s = summarize(b);
  EXPECT_EQ(s.records, 0u);
  EXPECT_EQ(s.first_record_lsn, 0u);
  EXPECT_EQ(s.end_lsn, 0u);
  EXPECT_FALSE(s.min_xact_time_us);
  EXPECT_FALSE(s.first_xact_xid);
  EXPECT_TRUE(s.restore_points.empty());
  EXPECT_FALSE(s.has_switch);
}

TEST(SummarizeSegment, IndexesCommitsAbortsRestorePointsAndSwitch) {
  SegmentBuilder b({});
  const Lsn first = b.add_record(kRmHeap, 0x00, 700, heap_body(50));
  b.add_record(kRmXact, kXactCommit, 700, make_body(xact_main(kT0 + 5)));
  b.add_record(kRmXact, kXactCommit | kXactHasInfo, 701, make_body(xact_main(kT0 + 3, 40)));
  b.add_record(kRmXact, kXactAbort, 702, make_body(xact_main(kT0 + 9)));
  const Lsn rp = b.add_record(kRmXlog, kXlogRestorePoint, 0,
                              make_body(restore_point_main(kT0 + 10, "before_upgrade")));
  b.add_record(kRmXact, kXactCommitPrepared, 0, make_body(xact_main(kT0 + 1)));
  b.add_record(kRmXact, kXactAbortPrepared | kXactHasInfo, 0, make_body(xact_main(kT0 + 20)));
  // Transaction records that are not commit/abort (PREPARE 0x10, ASSIGNMENT 0x50).
  b.add_record(kRmXact, 0x10, 703, make_body(xact_main(kT0 - 1000)));
  b.add_record(kRmXact, 0x50, 703, make_body(Bytes(12, 1)));
  // XLOG records other than restore point/switch (checkpoint 0x10 here).
  b.add_record(kRmXlog, 0x10, 0, make_body(Bytes(80, 2)));
  const Lsn last_commit = b.add_record(kRmXact, kXactCommit, 704, make_body(xact_main(kT0 + 7)));
  const Lsn sw = b.add_record(kRmXlog, kXlogSwitch, 0, {});
  const std::size_t switch_end = b.position();
  // Anything after a switch is not part of the segment's data.
  b.add_record(kRmXact, kXactCommit, 705, make_body(xact_main(kT0 + 1000)));

  const SegmentSummary s = summarize(b);
  EXPECT_EQ(s.first_record_lsn, first);
  EXPECT_EQ(s.first_record_lsn, b.start_lsn() + 40);
  EXPECT_EQ(s.records, 12u);
  EXPECT_EQ(s.commits, 4u);
  EXPECT_EQ(s.aborts, 2u);
  EXPECT_EQ(s.min_xact_time_us, kT0 + 1);
  EXPECT_EQ(s.max_xact_time_us, kT0 + 20);
  EXPECT_EQ(s.first_xact_xid, 700u);
  EXPECT_EQ(s.last_xact_xid, 704u);
  ASSERT_EQ(s.restore_points.size(), 1u);
  EXPECT_EQ(s.restore_points[0].name, "before_upgrade");
  EXPECT_EQ(s.restore_points[0].time_us, kT0 + 10);
  EXPECT_EQ(s.restore_points[0].lsn, rp);
  EXPECT_TRUE(s.has_switch);
  EXPECT_EQ(s.end_lsn, sw + 24);
  EXPECT_EQ(s.end_lsn, b.lsn_at(switch_end));
  EXPECT_LT(last_commit, sw);
}

TEST(SummarizeSegment, RestorePointNameOfMaximumLength) {
  SegmentBuilder b({});
  const std::string name(63, 'n');
  b.add_record(kRmXlog, kXlogRestorePoint, 0, make_body(restore_point_main(kT0, name)));
  // A name field without a terminating NUL still yields at most 64 characters.
  Bytes main = restore_point_main(kT0, "");
  std::fill(main.begin() + 8, main.end(), 'x');
  b.add_record(kRmXlog, kXlogRestorePoint, 0, make_body(main));
  const SegmentSummary s = summarize(b);
  ASSERT_EQ(s.restore_points.size(), 2u);
  EXPECT_EQ(s.restore_points[0].name, name);
  EXPECT_EQ(s.restore_points[1].name, std::string(64, 'x'));
  EXPECT_FALSE(s.min_xact_time_us);
}

TEST(SummarizeSegment, RecordsSplitAcrossPages) {
  SegmentBuilder b({});
  b.add_record(kRmHeap, 0, 0, heap_body(100));
  // A commit with 20 000 bytes of main data spans three pages.
  const Lsn big = b.add_record(kRmXact, kXactCommit, 800, make_body(xact_main(kT0, 20000)));
  EXPECT_EQ(b.position() / kPage, 2u);
  // A restore point that starts on one page and ends on the next.
  b.pad_to(3 * kPage - 64);
  const Lsn rp =
      b.add_record(kRmXlog, kXlogRestorePoint, 0, make_body(restore_point_main(kT0 + 1, "split")));
  const Lsn after = b.add_record(kRmXact, kXactAbort, 801, make_body(xact_main(kT0 + 2)));

  const SegmentSummary s = summarize(b);
  EXPECT_EQ(s.records, 4u + 1u);  // + the pad record
  EXPECT_EQ(s.commits, 1u);
  EXPECT_EQ(s.aborts, 1u);
  EXPECT_EQ(s.min_xact_time_us, kT0);
  EXPECT_EQ(s.max_xact_time_us, kT0 + 2);
  ASSERT_EQ(s.restore_points.size(), 1u);
  EXPECT_EQ(s.restore_points[0].lsn, rp);
  EXPECT_EQ(s.restore_points[0].name, "split");
  EXPECT_GT(after, big);
  EXPECT_EQ(s.end_lsn, b.lsn_at(b.position()));
}

TEST(SummarizeSegment, RecordHeaderSplitAcrossPageBoundary) {
  // Records may start 8 or 16 bytes before a page end: only xl_tot_len (and
  // maybe xl_xid) is on the first page, the rest of the header on the next.
  for (std::size_t before_end : {8u, 16u, 24u}) {
    SegmentBuilder b({});
    b.add_record(kRmHeap, 0, 0, heap_body(10));
    b.pad_to(kPage - before_end);
    const Lsn split = b.add_record(kRmXact, kXactCommit, 900, make_body(xact_main(kT0 + 42)));
    EXPECT_EQ(split, b.lsn_at(kPage - before_end));
    b.add_record(kRmXact, kXactCommit, 901, make_body(xact_main(kT0 + 43)));
    const SegmentSummary s = summarize(b);
    EXPECT_EQ(s.records, 4u) << before_end;
    EXPECT_EQ(s.commits, 2u) << before_end;
    EXPECT_EQ(s.first_xact_xid, 900u);
    EXPECT_EQ(s.min_xact_time_us, kT0 + 42);
    EXPECT_EQ(s.max_xact_time_us, kT0 + 43);
  }
}

TEST(SummarizeSegment, RecordEndingExactlyAtPageEnd) {
  SegmentBuilder b({});
  b.add_record(kRmHeap, 0, 0, heap_body(10));
  b.pad_to(kPage - 64);
  // 24 + 2 + 38 = 64 bytes: ends exactly at the page end; the next record
  // starts after the next page's (non-continuation) header.
  b.add_record(kRmHeap, 0, 0, heap_body(38));
  EXPECT_EQ(b.position(), kPage);
  const Lsn next = b.add_record(kRmXact, kXactCommit, 5, make_body(xact_main(kT0)));
  EXPECT_EQ(next, b.lsn_at(kPage + 24));
  const SegmentSummary s = summarize(b);
  EXPECT_EQ(s.records, 4u);
  EXPECT_EQ(s.commits, 1u);
}

TEST(SummarizeSegment, SkipsLeadingContinuation) {
  struct Case {
    std::uint32_t length;
    std::size_t first_offset;
  };
  const Case cases[] = {
      {100, 40 + 104},                                   // ends on the first page
      {8152, kPage + 24},                                // fills the first page exactly
      {8152 - 4, kPage + 24},                            // MAXALIGNed, fills it too
      {10000, kPage + 24 + (10000 - 8152 + 7) / 8 * 8},  // ends on the second page
      {8152 + 8168, 2 * kPage + 24},                     // fills two pages exactly
      {30000, 3 * kPage + 24 + (30000 - 8152 - 2 * 8168 + 7) / 8 * 8},
  };
  for (const Case& c : cases) {
    SegmentBuilder b({});
    b.leading_continuation(c.length);
    const Lsn first = b.add_record(kRmXact, kXactCommit, 1, make_body(xact_main(kT0)));
    EXPECT_EQ(first, b.lsn_at(c.first_offset)) << c.length;
    const SegmentSummary s = summarize(b);
    EXPECT_EQ(s.first_record_lsn, first) << c.length;
    EXPECT_EQ(s.records, 1u) << c.length;
    EXPECT_EQ(s.commits, 1u) << c.length;
  }
}

TEST(SummarizeSegment, RecordRunningOffTheEndIsNotCounted) {
  SegmentBuilder b({});
  std::uint64_t records = 0;
  Lsn last = 0;
  while (b.position() + 70000 < b.options().segment_size) {
    last = b.add_record(kRmHeap, 0, 0, heap_body(60000));
    ++records;
  }
  const Lsn complete_commit = b.add_record(kRmXact, kXactCommit, 10, make_body(xact_main(kT0)));
  const std::size_t complete_end = b.position();
  // Starts in this segment, ends in the next one.
  b.add_record(kRmXact, kXactCommit, 11, make_body(xact_main(kT0 + 1, 100000)));
  const SegmentSummary s = summarize(b);
  EXPECT_EQ(s.records, records + 1);
  EXPECT_EQ(s.commits, 1u);
  EXPECT_EQ(s.last_xact_xid, 10u);
  EXPECT_EQ(s.max_xact_time_us, kT0);
  EXPECT_EQ(s.end_lsn, b.lsn_at(complete_end));
  EXPECT_GT(complete_commit, last);
  EXPECT_FALSE(s.has_switch);
  // The crossing commit is in no set, but its xid is kept apart: the planner
  // knows xid 11 ends in the next segment.
  EXPECT_TRUE(s.xids_indexed);
  EXPECT_EQ(s.commit_xids, XidSet::from_xids({10}));
  EXPECT_TRUE(s.abort_xids.empty());
  EXPECT_EQ(s.crossing_xact_xid, 11u);
}

TEST(SummarizeSegment, RecordEndingExactlyAtSegmentEnd) {
  SegmentBuilder b({});
  const std::size_t segment_size = b.options().segment_size;
  while (b.position() + 130000 < segment_size) b.add_record(kRmHeap, 0, 0, heap_body(60000));
  // Fill the remainder exactly: the data bytes left on the remaining pages.
  std::size_t start = (b.position() + 7) / 8 * 8;
  if (start % kPage == 0) start += 24;
  std::size_t data_bytes = 0;
  for (std::size_t pos = start; pos < segment_size;) {
    const std::size_t page_end = (pos / kPage + 1) * kPage;
    data_bytes += page_end - pos;
    pos = page_end + 24;
  }
  b.add_record(kRmXact, kXactCommit, 12,
               make_body({}, {}, xact_main(kT0, data_bytes - 24 - 5 - 8)));
  EXPECT_EQ(b.position(), segment_size);
  const SegmentSummary s = summarize(b);
  EXPECT_EQ(s.commits, 1u);
  EXPECT_EQ(s.end_lsn, b.lsn_at(segment_size));
}

TEST(SummarizeSegment, StopsAtBadCrc) {
  SegmentBuilder b({});
  b.add_record(kRmXact, kXactCommit, 1, make_body(xact_main(kT0)));
  const Lsn bad = b.add_record(kRmXact, kXactCommit, 2, make_body(xact_main(kT0 + 1)));
  b.add_record(kRmXact, kXactCommit, 3, make_body(xact_main(kT0 + 2)));
  b.bytes()[bad - b.start_lsn() + 30] ^= 0x01;  // inside the main data
  const SegmentSummary s = summarize(b);
  EXPECT_EQ(s.records, 1u);
  EXPECT_EQ(s.commits, 1u);
  EXPECT_EQ(s.max_xact_time_us, kT0);
}

TEST(SummarizeSegment, StopsAtBadCrcInHeaderOnNextPage) {
  SegmentBuilder b({});
  b.add_record(kRmXact, kXactCommit, 1, make_body(xact_main(kT0)));
  b.pad_to(kPage - 8);
  b.add_record(kRmXact, kXactCommit, 2, make_body(xact_main(kT0 + 1)));
  b.bytes()[kPage + 24 + 8] ^= 0x40;  // xl_info, on the second page
  const SegmentSummary s = summarize(b);
  EXPECT_EQ(s.records, 2u);
  EXPECT_EQ(s.commits, 1u);
}

TEST(SummarizeSegment, StopsAtShortOrZeroLength) {
  for (std::uint32_t tot_len : {0u, 1u, 16u, 23u}) {
    SegmentBuilder b({});
    b.add_record(kRmXact, kXactCommit, 1, make_body(xact_main(kT0)));
    const Lsn second = b.add_record(kRmXact, kXactCommit, 2, make_body(xact_main(kT0 + 1)));
    store_le<std::uint32_t>(b.bytes().data() + (second - b.start_lsn()), tot_len);
    const SegmentSummary s = summarize(b);
    EXPECT_EQ(s.records, 1u) << tot_len;
  }
}

TEST(SummarizeSegment, StopsAtWrongPrevLink) {
  SegmentBuilder b({});
  const Lsn first = b.add_record(kRmXact, kXactCommit, 1, make_body(xact_main(kT0)));
  b.add_record(kRmXact, kXactCommit, 2, make_body(xact_main(kT0 + 1)));
  b.add_record_with_prev(kRmXact, kXactCommit, 3, make_body(xact_main(kT0 + 2)), first);
  const SegmentSummary s = summarize(b);
  EXPECT_EQ(s.records, 2u);
  EXPECT_EQ(s.last_xact_xid, 2u);
}

TEST(SummarizeSegment, StopsAtRecycledPage) {
  // A page still carrying an old page address (a recycled segment not yet
  // overwritten there) ends the data, also in the middle of a record.
  SegmentBuilder b({});
  b.add_record(kRmXact, kXactCommit, 1, make_body(xact_main(kT0)));
  b.pad_to(kPage - 40);
  b.add_record(kRmXact, kXactCommit, 2, make_body(xact_main(kT0 + 1, 100)));
  b.add_record(kRmXact, kXactCommit, 3, make_body(xact_main(kT0 + 2)));
  store_le<std::uint64_t>(b.bytes().data() + kPage + 8, b.start_lsn() - (1u << 20) + kPage);
  SegmentSummary s = summarize(b);
  EXPECT_EQ(s.records, 2u);
  EXPECT_EQ(s.commits, 1u);

  // Same with a wrong magic on a page where a record starts.
  SegmentBuilder c({});
  c.add_record(kRmXact, kXactCommit, 1, make_body(xact_main(kT0)));
  c.pad_to(kPage - 64);
  c.add_record(kRmHeap, 0, 0, heap_body(38));
  c.add_record(kRmXact, kXactCommit, 2, make_body(xact_main(kT0 + 1)));
  store_le<std::uint16_t>(c.bytes().data() + kPage, 0xD10D);
  s = summarize(c);
  EXPECT_EQ(s.records, 3u);
  EXPECT_EQ(s.commits, 1u);
}

TEST(SummarizeSegment, StopsWhenContinuationFlagOrLengthIsWrong) {
  SegmentBuilder b({});
  b.add_record(kRmXact, kXactCommit, 1, make_body(xact_main(kT0)));
  b.pad_to(kPage - 40);
  b.add_record(kRmXact, kXactCommit, 2, make_body(xact_main(kT0 + 1, 100)));
  Bytes original = b.bytes();
  store_le<std::uint32_t>(b.bytes().data() + kPage + 16, 99);  // xlp_rem_len
  EXPECT_EQ(summarize(b).records, 2u);
  b.bytes() = original;
  store_le<std::uint16_t>(b.bytes().data() + kPage + 2, 0);  // no XLP_FIRST_IS_CONTRECORD
  EXPECT_EQ(summarize(b).records, 2u);
  b.bytes() = original;
  EXPECT_EQ(summarize(b).records, 3u);
}

TEST(SummarizeSegment, OverwrittenContinuationRestartsOnThatPage) {
  // A crash lost the end of a record; after recovery the next page is marked
  // XLP_FIRST_IS_OVERWRITE_CONTRECORD and new WAL starts right after its header.
  SegmentBuilder b({});
  b.add_record(kRmXact, kXactCommit, 1, make_body(xact_main(kT0)));
  b.pad_to(kPage - 40);
  b.add_record(kRmXact, kXactCommit, 2, make_body(xact_main(kT0 + 1, 8000)));
  // Rewrite page 1: header with the overwrite flag, then a fresh commit.
  SegmentBuilder fresh({});
  fresh.pad_to(kPage - 64);
  fresh.add_record(kRmHeap, 0, 0, heap_body(38));
  fresh.add_record(kRmXact, kXactCommit, 3, make_body(xact_main(kT0 + 5)));
  std::copy_n(fresh.bytes().begin() + kPage, kPage, b.bytes().begin() + kPage);
  store_le<std::uint16_t>(b.bytes().data() + kPage + 2, 0x0008);
  const SegmentSummary s = summarize(b);
  EXPECT_EQ(s.records, 3u);  // first commit, the pad, the fresh commit
  EXPECT_EQ(s.commits, 2u);
  EXPECT_EQ(s.last_xact_xid, 3u);
  EXPECT_EQ(s.max_xact_time_us, kT0 + 5);
}

// Block reference headers before the main data, in the layouts of each major.
Bytes block_header(std::uint8_t id, std::uint8_t fork_flags, std::uint16_t data_len) {
  Bytes h = {id, fork_flags};
  append_le<std::uint16_t>(h, data_len);
  return h;
}
void append_image_header(Bytes& h, std::uint16_t length, std::uint16_t hole_offset,
                         std::uint8_t bimg_info) {
  append_le<std::uint16_t>(h, length);
  append_le<std::uint16_t>(h, hole_offset);
  h.push_back(bimg_info);
}
void append_rel_and_block(Bytes& h, bool same_rel, std::uint32_t block) {
  if (!same_rel) h.insert(h.end(), 12, 0x33);
  append_le<std::uint32_t>(h, block);
}

// Two blocks: one with a compressed image with a hole (hole_length present),
// one with an image that only has a hole (no hole_length), then origin and
// top-level xid fragments, then long main data.
Bytes blocky_commit_body(int pg_major, std::int64_t time_us) {
  const std::uint8_t compressed = pg_major >= 15 ? 0x04 : 0x02;  // PGLZ / IS_COMPRESSED
  const std::uint8_t apply = pg_major >= 15 ? 0x02 : 0x04;
  Bytes headers = block_header(0, 0x10 | 0x20, 6);
  append_image_header(headers, 300, 100, 0x01 | compressed | apply);
  append_le<std::uint16_t>(headers, 4000);  // hole_length
  append_rel_and_block(headers, false, 7);
  Bytes second = block_header(3, 0x10 | 0x80, 0);
  append_image_header(second, 8000, 40, 0x01 | apply);
  append_rel_and_block(second, true, 8);
  headers.insert(headers.end(), second.begin(), second.end());
  headers.push_back(253);
  append_le<std::uint16_t>(headers, 1);  // origin
  if (pg_major >= 14) {
    headers.push_back(252);
    append_le<std::uint32_t>(headers, 77);  // top-level xid
  }
  Bytes payload(300 + 6 + 8000, 0x77);
  return make_body(headers, payload, xact_main(time_us, 300));
}

TEST(SummarizeSegment, FindsMainDataAfterBlockReferencesInEachMajor) {
  const std::pair<std::uint16_t, int> versions[] = {{0xD106, 13}, {0xD10D, 14}, {0xD110, 15},
                                                    {0xD113, 16}, {0xD116, 17}, {0xD118, 18}};
  for (auto [magic, major] : versions) {
    SegmentBuilder b({.magic = magic});
    b.add_record(kRmXact, kXactCommit, 1, blocky_commit_body(major, kT0 + major));
    const SegmentSummary s = summarize(b);
    EXPECT_EQ(s.commits, 1u) << major;
    EXPECT_EQ(s.max_xact_time_us, kT0 + major) << major;
  }
}

TEST(SummarizeSegment, ImageFlagsMeanDifferentThingsBefore15) {
  // bimg_info 0x03 is "hole + compressed" in 13/14 (hole_length follows) but
  // "hole + apply" from 15 on (no hole_length): the body laid out for one
  // major does not add up under the other, and decoding stops there.
  SegmentBuilder pg13({.magic = 0xD106});
  pg13.add_record(kRmXact, kXactCommit, 1, blocky_commit_body(15, kT0));
  EXPECT_EQ(summarize(pg13).records, 0u);
  SegmentBuilder pg15({.magic = 0xD110});
  pg15.add_record(kRmXact, kXactCommit, 1, blocky_commit_body(13, kT0));
  EXPECT_EQ(summarize(pg15).records, 0u);
}

TEST(SummarizeSegment, MalformedCommitBodyEndsTheData) {
  // Valid CRC, but the fragment lengths do not add up / main data too short.
  for (const Bytes& body :
       {Bytes{255, 10, 1, 2}, make_body(Bytes(4, 0)), Bytes{200, 1, 2, 3}, Bytes{}}) {
    SegmentBuilder b({});
    b.add_record(kRmXact, kXactCommit, 1, make_body(xact_main(kT0)));
    b.add_record(kRmXact, kXactCommit, 2, body);
    b.add_record(kRmXact, kXactCommit, 3, make_body(xact_main(kT0 + 1)));
    const SegmentSummary s = summarize(b);
    EXPECT_EQ(s.records, 1u);
    EXPECT_EQ(s.commits, 1u);
  }
}

TEST(SummarizeSegment, WorksWithOtherPageAndSegmentSizes) {
  for (std::uint32_t page : {1024u, 8192u, 32768u}) {
    SegmentBuilder b({.segment_size = 2u << 20, .page_size = page});
    b.leading_continuation(3000);
    for (int i = 0; i < 50; ++i) {
      b.add_record(kRmXact, kXactCommit, 100 + i, make_body(xact_main(kT0 + i, i * 97)));
    }
    const SegmentSummary s = summarize(b);
    EXPECT_EQ(s.commits, 50u) << page;
    EXPECT_EQ(s.min_xact_time_us, kT0);
    EXPECT_EQ(s.max_xact_time_us, kT0 + 49);
    EXPECT_EQ(s.first_xact_xid, 100u);
    EXPECT_EQ(s.last_xact_xid, 149u);
  }
}

// ---------------------------------------------------------------------------
// The xid index (commit_xids, abort_xids, crossing_xact_xid)

// Optional fields of a commit/abort main data (xl_xact_xinfo and what it
// announces, in ParseCommitRecord order).
struct XactFields {
  bool dbinfo = true;
  std::vector<std::uint32_t> subxacts;
  std::uint32_t rels = 0;
  std::uint32_t stats = 0;
  std::size_t stats_item = 12;  // 16 from PostgreSQL 18
  std::uint32_t invals = 0;     // commit records only
  std::optional<std::uint32_t> twophase;
  std::string gid;
};

Bytes xact_main_with(std::int64_t unix_us, const XactFields& f) {
  Bytes main = xact_main(unix_us);
  std::uint32_t xinfo = 0;
  if (f.dbinfo) xinfo |= 1u << 0;
  if (!f.subxacts.empty()) xinfo |= 1u << 1;
  if (f.rels) xinfo |= 1u << 2;
  if (f.invals) xinfo |= 1u << 3;
  if (f.twophase) xinfo |= 1u << 4;
  if (!f.gid.empty()) xinfo |= 1u << 7;
  if (f.stats) xinfo |= 1u << 8;
  append_le<std::uint32_t>(main, xinfo);
  if (f.dbinfo) main.resize(main.size() + 8, 0x22);
  if (!f.subxacts.empty()) {
    append_le<std::uint32_t>(main, static_cast<std::uint32_t>(f.subxacts.size()));
    for (auto x : f.subxacts) append_le<std::uint32_t>(main, x);
  }
  if (f.rels) {
    append_le<std::uint32_t>(main, f.rels);
    main.resize(main.size() + 12 * f.rels, 0x33);
  }
  if (f.stats) {
    append_le<std::uint32_t>(main, f.stats);
    main.resize(main.size() + f.stats_item * f.stats, 0x44);
  }
  if (f.invals) {
    append_le<std::uint32_t>(main, f.invals);
    main.resize(main.size() + 16 * f.invals, 0x55);
  }
  if (f.twophase) {
    append_le<std::uint32_t>(main, *f.twophase);
    if (!f.gid.empty()) main.insert(main.end(), f.gid.begin(), f.gid.end() + 1);
  }
  return main;
}

TEST(SummarizeSegment, XidSetsHoldTopLevelXidsOfCommitsAndAborts) {
  SegmentBuilder b({});
  b.add_record(kRmXact, kXactCommit, 500, make_body(xact_main(kT0)));
  // A commit with subtransactions: only the top-level xid is a recovery
  // target (PostgreSQL compares XLogRecGetXid alone).
  b.add_record(
      kRmXact, kXactCommit | kXactHasInfo, 502,
      make_body(xact_main_with(kT0 + 1, {.subxacts = {503, 504}, .rels = 1, .invals = 2})));
  b.add_record(kRmXact, kXactAbort | kXactHasInfo, 501,
               make_body(xact_main_with(kT0 + 2, {.subxacts = {505}})));
  b.add_record(kRmXact, kXactCommit, 506, make_body(xact_main(kT0 + 3)));
  const SegmentSummary s = summarize(b);
  EXPECT_TRUE(s.xids_indexed);
  EXPECT_EQ(s.commit_xids, XidSet::from_xids({500, 502, 506}));
  EXPECT_EQ(s.abort_xids, XidSet::from_xids({501}));
  for (std::uint32_t sub : {503u, 504u, 505u}) {
    EXPECT_FALSE(s.commit_xids.contains(sub)) << sub;
    EXPECT_FALSE(s.abort_xids.contains(sub)) << sub;
  }
  EXPECT_FALSE(s.crossing_xact_xid);
}

TEST(SummarizeSegment, PreparedCommitAndRollbackIndexThePreparedXid) {
  struct Major {
    std::uint16_t magic;
    bool has_stats;
    std::size_t stats_item;
  };
  for (const Major m : {Major{0xD106, false, 0}, Major{0xD10D, false, 0}, Major{0xD110, true, 12},
                        Major{0xD116, true, 12}, Major{0xD118, true, 16}}) {
    SCOPED_TRACE(m.magic);
    SegmentBuilder b({.magic = m.magic});
    // COMMIT/ROLLBACK PREPARED run by session xid 0 (or 9): the prepared
    // transaction's xid is the target PostgreSQL compares.
    XactFields commit{.subxacts = {778}, .rels = 2, .invals = 3, .twophase = 777, .gid = "g1"};
    if (m.has_stats) {
      commit.stats = 2;
      commit.stats_item = m.stats_item;
    }
    b.add_record(kRmXact, kXactCommitPrepared | kXactHasInfo, 0,
                 make_body(xact_main_with(kT0, commit)));
    XactFields abort{.rels = 1, .twophase = 779};
    if (m.has_stats) {
      abort.stats = 1;
      abort.stats_item = m.stats_item;
    }
    b.add_record(kRmXact, kXactAbortPrepared | kXactHasInfo, 9,
                 make_body(xact_main_with(kT0 + 1, abort)));
    // Without xinfo or without the two-phase field the xid is unknown: counted
    // for times, not indexed (never indexed as the session's xid).
    b.add_record(kRmXact, kXactCommitPrepared, 0, make_body(xact_main(kT0 + 2)));
    b.add_record(kRmXact, kXactCommitPrepared | kXactHasInfo, 5,
                 make_body(xact_main_with(kT0 + 3, {})));
    // A count running past the main data: not indexed, and decoding goes on.
    Bytes lying = xact_main_with(kT0 + 4, {.subxacts = {1}, .twophase = 780});
    store_le<std::uint32_t>(lying.data() + 8 + 4 + 8, 1000);
    b.add_record(kRmXact, kXactCommitPrepared | kXactHasInfo, 0, make_body(lying));
    b.add_record(kRmXact, kXactCommit, 781, make_body(xact_main(kT0 + 5)));
    const SegmentSummary s = summarize(b);
    EXPECT_EQ(s.commits, 5u);
    EXPECT_EQ(s.aborts, 1u);
    EXPECT_EQ(s.commit_xids, XidSet::from_xids({777, 781}));
    EXPECT_EQ(s.abort_xids, XidSet::from_xids({779}));
  }
}

}  // namespace
}  // namespace walvault::pg
