// The page checksum against pages a real PostgreSQL 15 wrote: initdb
// --data-checksums writes every catalog page with its checksum, so every
// non-zero page of base/ and global/ must verify, as its own block number
// and not as another; a flipped byte must fail.
#include "pg/page_checksum.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/pg_cluster.h"

namespace walvault::pg {
namespace {

using walvault::testing::PgCluster;

std::vector<std::uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(PageChecksum, MatchesPagesWrittenByPostgres) {
  PgCluster cluster({.major = 15, .initdb_args = {"--data-checksums"}});
  cluster.init();
  std::size_t checked = 0, files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(cluster.data_dir())) {
    if (!e.is_regular_file()) continue;
    const std::string rel = std::filesystem::relative(e.path(), cluster.data_dir()).string();
    const auto segment = checksummed_segment(rel, false);
    if (!segment) continue;
    ++files;
    std::vector<std::uint8_t> data = read_all(e.path());
    ASSERT_EQ(data.size() % kPageSize, 0u) << rel;
    for (std::size_t off = 0; off < data.size(); off += kPageSize) {
      ByteView page(data.data() + off, kPageSize);
      if (page_is_zero(page)) continue;
      const auto block = static_cast<std::uint32_t>(*segment * kPagesPerSegment + off / kPageSize);
      ASSERT_EQ(page_checksum(page, block), page_stored_checksum(page))
          << rel << " block " << block;
      EXPECT_EQ(check_page(page, block, ~std::uint64_t{0}), PageVerdict::kValid);
      EXPECT_NE(page_checksum(page, block + 1), page_stored_checksum(page)) << rel;
      ++checked;
    }
  }
  EXPECT_GT(files, 100u);
  EXPECT_GT(checked, 500u);

  // One flipped byte in a catalog page: bad unless the backup started before
  // the page's LSN (then it is skipped: WAL replay rewrites it).
  std::vector<std::uint8_t> data = read_all(cluster.data_dir() + "/global/1262");
  ASSERT_GE(data.size(), kPageSize);
  ByteView page(data.data(), kPageSize);
  ASSERT_EQ(check_page(page, 0, ~std::uint64_t{0}), PageVerdict::kValid);
  data[kPageSize - 100] ^= 0x01;
  EXPECT_EQ(check_page(page, 0, ~std::uint64_t{0}), PageVerdict::kBad);
  EXPECT_EQ(check_page(page, 0, page_lsn(page)), PageVerdict::kSkippedRecent);
  std::vector<std::uint8_t> zero(kPageSize, 0);
  EXPECT_EQ(check_page(ByteView(zero.data(), kPageSize), 7, ~std::uint64_t{0}),
            PageVerdict::kSkippedNew);
}

TEST(PageChecksum, WhichFilesCarryChecksums) {
  EXPECT_EQ(checksummed_segment("base/1/1259", false), 0u);
  EXPECT_EQ(checksummed_segment("base/16384/16385.12", false), 12u);
  EXPECT_EQ(checksummed_segment("base/16384/16385_fsm", false), 0u);
  EXPECT_EQ(checksummed_segment("global/1262", false), 0u);
  EXPECT_EQ(checksummed_segment("PG_15_202209061/16384/16390.1", true), 1u);
  EXPECT_FALSE(checksummed_segment("global/pg_control", false));
  EXPECT_FALSE(checksummed_segment("global/pg_filenode.map", false));
  EXPECT_FALSE(checksummed_segment("base/1/pg_internal.init", false));
  EXPECT_FALSE(checksummed_segment("base/1/PG_VERSION", false));
  EXPECT_FALSE(checksummed_segment("pg_xact/0000", false));
  EXPECT_FALSE(checksummed_segment("base/1/16385.0", false));
  EXPECT_FALSE(checksummed_segment("base/1/16385.x", false));
}

}  // namespace
}  // namespace walvault::pg
