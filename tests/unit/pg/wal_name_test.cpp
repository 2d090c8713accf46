#include "pg/wal_name.h"

#include <gtest/gtest.h>

namespace walvault::pg {
namespace {

constexpr std::uint32_t kMiB = 1u << 20;

TEST(WalName, FormatsLsnLikePostgres) {
  EXPECT_EQ(format_lsn(0), "0/0");
  EXPECT_EQ(format_lsn(0x16B374D848ULL), "16/B374D848");
  EXPECT_EQ(format_lsn(0x0000000001000028ULL), "0/1000028");
  EXPECT_EQ(format_lsn(~0ULL), "FFFFFFFF/FFFFFFFF");
}

TEST(WalName, ParsesLsnInEitherCase) {
  EXPECT_EQ(parse_lsn("16/B374D848"), 0x16B374D848ULL);
  EXPECT_EQ(parse_lsn("16/b374d848"), 0x16B374D848ULL);
  EXPECT_EQ(parse_lsn("0/0"), 0ULL);
  EXPECT_EQ(parse_lsn("FFFFFFFF/FFFFFFFF"), ~0ULL);
  EXPECT_EQ(parse_lsn("00000001/00000002"), 0x100000002ULL);
  for (Lsn lsn : {0ULL, 1ULL, 0x1000028ULL, 0xABCDEF0123456789ULL}) {
    EXPECT_EQ(parse_lsn(format_lsn(lsn)), lsn);
  }
}

TEST(WalName, RejectsMalformedLsn) {
  for (const char* bad : {"", "/", "1/", "/1", "1", "123456789/0", "0/123456789", "1/2/3", "g/1",
                          " 1/1", "1/1 ", "1 /1", "-1/1", "+1/1", "0x1/1"}) {
    EXPECT_FALSE(parse_lsn(bad).has_value()) << bad;
  }
}

TEST(WalName, SegmentNamesRoundTripFor16MiB) {
  const std::uint32_t size = 16 * kMiB;
  EXPECT_EQ(segment_file_name(1, 1, size), "000000010000000000000001");
  EXPECT_EQ(segment_file_name(2, 0x1A3, size), "0000000200000001000000A3");
  EXPECT_EQ(segment_file_name(0xABCDEF12, 0xFFFFFFFFFFULL, size), "ABCDEF12FFFFFFFF000000FF");
  auto name = parse_wal_file_name("0000000200000001000000A3");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->kind, WalFileKind::kSegment);
  EXPECT_EQ(name->timeline, 2u);
  EXPECT_EQ(name->log, 1u);
  EXPECT_EQ(name->seg, 0xA3u);
  EXPECT_EQ(name->name, "0000000200000001000000A3");
  EXPECT_EQ(segment_number(*name, size), 0x1A3u);
  EXPECT_EQ(segment_start_lsn(0x1A3, size), 0x1A3000000ULL);
}

TEST(WalName, SegmentNamesRoundTripFor1MiBAnd64MiB) {
  // 1 MiB: 4096 segments per 4 GiB "log"; 64 MiB: 64.
  EXPECT_EQ(segment_file_name(1, 0x1234, kMiB), "000000010000000100000234");
  EXPECT_EQ(segment_file_name(1, 130, 64 * kMiB), "000000010000000200000002");
  for (std::uint32_t size : {kMiB, 16 * kMiB, 64 * kMiB, 1024 * kMiB}) {
    for (std::uint64_t segno : {1ULL, 2ULL, 63ULL, 64ULL, 4095ULL, 4096ULL, 123456789ULL}) {
      const std::string text = segment_file_name(7, segno, size);
      auto parsed = parse_wal_file_name(text);
      ASSERT_TRUE(parsed) << text;
      EXPECT_EQ(parsed->timeline, 7u);
      EXPECT_EQ(segment_number(*parsed, size), segno) << text << " size " << size;
    }
  }
  auto name = parse_wal_file_name("000000010000000100000234");
  ASSERT_TRUE(name);
  EXPECT_EQ(segment_number(*name, kMiB), 0x1234u);
  // The same name means a different segment (and LSN) for another size.
  EXPECT_EQ(segment_number(*name, 16 * kMiB), 0x100u + 0x234u);
}

TEST(WalName, ParsesOtherArchivedFiles) {
  auto history = parse_wal_file_name("0000000A.history");
  ASSERT_TRUE(history);
  EXPECT_EQ(history->kind, WalFileKind::kHistory);
  EXPECT_EQ(history->timeline, 10u);

  auto partial = parse_wal_file_name("000000030000000000000012.partial");
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->kind, WalFileKind::kPartial);
  EXPECT_EQ(partial->timeline, 3u);
  EXPECT_EQ(partial->seg, 0x12u);
  EXPECT_EQ(partial->name, "000000030000000000000012.partial");

  auto backup = parse_wal_file_name("000000010000000000000002.00000028.backup");
  ASSERT_TRUE(backup);
  EXPECT_EQ(backup->kind, WalFileKind::kBackupHistory);
  EXPECT_EQ(backup->timeline, 1u);
  EXPECT_EQ(backup->log, 0u);
  EXPECT_EQ(backup->seg, 2u);
}

TEST(WalName, RejectsEverythingElse) {
  for (const char* bad : {
           "",
           "00000001000000000000000",    // 23 digits
           "0000000100000000000000001",  // 25 digits
           "00000001000000000000000a",   // lower case
           "00000000000000000000000A",   // timeline 0
           "0000000100000000000000G1",   // not hex
           "00000001000000000000000A.gz",
           "00000001000000000000000A.PARTIAL",
           "00000001000000000000000a.partial",
           "00000000.history",
           "0000000a.history",
           "000000001.history",
           "0000001.history",
           "000000010000000000000002.0000002.backup",
           "000000010000000000000002.0000002g.backup",
           "000000010000000000000002.00000028",
           "000000010000000000000002_00000028.backup",
           "pg_wal/000000010000000000000001",
           "archive_status",
       }) {
    EXPECT_FALSE(parse_wal_file_name(bad).has_value()) << bad;
  }
}

TEST(WalName, ValidSegmentSizes) {
  for (std::uint64_t mib = 1; mib <= 1024; mib *= 2) EXPECT_TRUE(is_valid_segment_size(mib * kMiB));
  for (std::uint64_t bad :
       {0ULL, 1ULL, 512ULL * 1024, 3ULL * kMiB, 2048ULL * kMiB, 16ULL * kMiB + 8192}) {
    EXPECT_FALSE(is_valid_segment_size(bad)) << bad;
  }
}

}  // namespace
}  // namespace walvault::pg
