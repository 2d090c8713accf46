// core: the durable-file helpers, time text, hex and the error registry.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "core/bytes.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/time_util.h"
#include "support/pg_cluster.h"

namespace walvault {
namespace {

TEST(FileUtil, AtomicWriteCreatesReplacesOrRefuses) {
  testing::TempDir dir("wv-core");
  const std::string path = dir.sub("f");
  EXPECT_FALSE(read_file(path).has_value());
  EXPECT_TRUE(write_file_atomic(path, as_bytes("one"), 0600));
  EXPECT_EQ(as_chars(*read_file(path)), "one");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(write_file_atomic(path, as_bytes("two")));
  EXPECT_EQ(as_chars(*read_file(path)), "two");
  EXPECT_FALSE(write_file_atomic(path, as_bytes("three"), 0600, Overwrite::kNo));
  EXPECT_EQ(as_chars(*read_file(path)), "two");
  // No temp file is left behind by either outcome.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    entries += !e.path().empty();
  EXPECT_EQ(entries, 1);
}

// The page-cache state of a whole file (cachestat(2), Linux 6.5): dirty
// pages, or std::nullopt where the kernel does not tell.
std::optional<std::uint64_t> dirty_pages(const std::string& path) {
  struct {
    std::uint64_t off, len;
  } range{0, 0};
  struct {
    std::uint64_t cache, dirty, writeback, evicted, recently_evicted;
  } stat{};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  constexpr long kCachestat = 451;  // x86_64 and every architecture with the new table
  const long rc = ::syscall(kCachestat, fd, &range, &stat, 0);
  ::close(fd);
  if (rc != 0) return std::nullopt;
  return stat.dirty;
}

// kStartWriteback: the spooled WAL PostgreSQL fsyncs before replaying it
// leaves the call with its writeback started (no page still dirty), where
// kNone leaves it dirty; both hold the bytes.
TEST(FileUtil, StartWritebackLeavesNoDirtyPage) {
  testing::TempDir dir("wv-core");
  struct statfs fs {};
  ASSERT_EQ(::statfs(dir.path().c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC) GTEST_SKIP() << dir.path() << " is tmpfs: nothing is written back";
  Bytes data((4 << 20) + 100);  // not a whole number of blocks: the tail is buffered anyway
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 13 + 1);
  // From an offset no buffer is aligned to: write_file_atomic's direct-I/O
  // path (which leaves nothing dirty whatever the durability) is not taken.
  const ByteView unaligned = ByteView(data).subspan(1);
  write_file_atomic(dir.sub("kept-dirty"), unaligned, 0600, Overwrite::kYes, Durability::kNone);
  write_file_atomic(dir.sub("started"), unaligned, 0600, Overwrite::kYes,
                    Durability::kStartWriteback);
  const auto before = dirty_pages(dir.sub("kept-dirty"));
  if (!before) GTEST_SKIP() << "cachestat(2) is not available on this kernel";
  EXPECT_GT(*before, 0u) << "a buffered write left no dirty page: the check below proves nothing";
  EXPECT_EQ(dirty_pages(dir.sub("started")).value_or(1), 0u);
  EXPECT_TRUE(
      std::equal(unaligned.begin(), unaligned.end(), read_file(dir.sub("started"))->begin()));
}

TEST(FileUtil, WriteIntoMissingDirectoryIsAnIoError) {
  testing::TempDir dir("wv-core");
  try {
    write_file_atomic(dir.sub("no/such/dir/f"), as_bytes("x"));
    FAIL() << "write into a missing directory succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find("no/such/dir"), std::string::npos) << e.what();
  }
}

TEST(FileUtil, MappedFileSeesTheBytes) {
  testing::TempDir dir("wv-core");
  Bytes data(3 << 20);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7);
  write_file_atomic(dir.sub("m"), data);
  auto mapped = MappedFile::open(dir.sub("m"));
  ASSERT_TRUE(mapped.has_value());
  EXPECT_TRUE(std::equal(data.begin(), data.end(), mapped->bytes().begin(), mapped->bytes().end()));
  EXPECT_FALSE(MappedFile::open(dir.sub("absent")).has_value());
  write_file_atomic(dir.sub("empty"), {});
  EXPECT_EQ(MappedFile::open(dir.sub("empty"))->bytes().size(), 0u);
}

TEST(FileUtil, MakeDirsAndNames) {
  testing::TempDir dir("wv-core");
  make_dirs(dir.sub("a/b/c"));
  make_dirs(dir.sub("a/b/c"));
  EXPECT_TRUE(std::filesystem::is_directory(dir.sub("a/b/c")));
  EXPECT_EQ(dir_name("/x/y/z"), "/x/y");
  EXPECT_EQ(dir_name("z"), ".");
  EXPECT_EQ(dir_name("/z"), "/");
  EXPECT_EQ(base_name("pg_wal/000000010000000000000001"), "000000010000000000000001");
}

TEST(TimeUtil, FormatsAndParsesUtcWithMicroseconds) {
  const std::int64_t t = 1795000000123456;  // 2026-11-18 11:06:40.123456 UTC
  EXPECT_EQ(format_time_us(t), "2026-11-18 11:06:40.123456+00");
  EXPECT_EQ(parse_time_us("2026-11-18 11:06:40.123456+00"), t);
  EXPECT_EQ(parse_time_us("2026-11-18T11:06:40.123456Z"), t);
  EXPECT_EQ(parse_time_us("2026-11-18 13:06:40.123456+02:00"), t);
  EXPECT_EQ(parse_time_us("2026-11-18 06:06:40.123456-0500"),
            std::nullopt);  // +HHMM is not accepted
  EXPECT_EQ(parse_time_us("2026-11-18 06:06:40.123456-05"), t);
  EXPECT_EQ(parse_time_us("2026-11-18 11:06:40"), t - 123456);
  EXPECT_EQ(parse_time_us("2026-11-18 11:06:40.5"), t - 123456 + 500000);
  EXPECT_EQ(format_time_us(-1), "1969-12-31 23:59:59.999999+00");
  for (const char* bad :
       {"", "yesterday", "2026-13-01 00:00:00", "2026-11-18 11:06", "2026-11-18 11:06:40.",
        "2026-11-18 11:06:40 +01", "2026-11-18 11:06:40+1x"})
    EXPECT_FALSE(parse_time_us(bad).has_value()) << bad;
}

TEST(Bytes, HexRoundTrip) {
  Bytes out;
  EXPECT_TRUE(from_hex("00ff10Ab", out));
  EXPECT_EQ(to_hex(out), "00ff10ab");
  EXPECT_FALSE(from_hex("abc", out));
  EXPECT_FALSE(from_hex("zz", out));
}

TEST(Error, EveryCodeExitsWithinPostgresLimit) {
  for (auto code : {ErrorCode::kUsage, ErrorCode::kInvalidInput, ErrorCode::kNotFound,
                    ErrorCode::kConflict, ErrorCode::kCorruption, ErrorCode::kKey,
                    ErrorCode::kClusterMismatch, ErrorCode::kRepoFormat, ErrorCode::kIo,
                    ErrorCode::kPostgres, ErrorCode::kInternal, ErrorCode::kBusy}) {
    EXPECT_GT(exit_status(code), 1) << error_code_name(code);
    EXPECT_LE(exit_status(code), 125) << error_code_name(code);
  }
}

}  // namespace
}  // namespace walvault
