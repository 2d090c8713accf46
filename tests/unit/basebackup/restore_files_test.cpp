// restore_files over a repository in memory into real directories: every
// file comes back byte for byte whatever the write path (direct I/O with
// batches spanning jobs, the page cache, unaligned tails, frames of several
// chunks, empty files), --delta over a directory written with direct I/O
// rewrites exactly the chunks that differ, and a full disk fails the restore
// by name without a pg_control.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "basebackup/backup_record.h"
#include "basebackup/restore.h"
#include "core/error.h"
#include "core/file_util.h"
#include "repo/chunk_store.h"
#include "store/mem_store.h"
#include "support/pg_cluster.h"
#include "support/seeded_bytes.h"
#include "support/tmpfs_mount.h"

namespace walvault::basebackup {
namespace {

constexpr std::uint32_t kChunk = 64u << 10;

struct Fixture {
  Fixture() : store(std::make_shared<store::MemStore>()) {
    repo::Repository::init(*store, {});
    repo = repo::Repository::open(store, {});
    record.label = "20261127-000000";
    record.chunk_size = kChunk;
    dir("base");
    dir("base/1");
    dir("global");
    repo::ChunkStore chunks(*repo);
    file(chunks, "PG_VERSION", 3, 1);
    file(chunks, "global/pg_control", 8192, 2);
    file(chunks, "base/1/empty", 0, 3);
    file(chunks, "base/1/block_short", 4095, 4);
    file(chunks, "base/1/one_block", 4096, 5);
    file(chunks, "base/1/tail", 3 * kChunk + 100, 6);  // last chunk: 100 bytes
    // 300 chunks: more than one job (16 MiB) and many 4 MiB direct batches;
    // the first 64 sealed four to a frame, as a backup does.
    file(chunks, "base/1/big", 300 * std::uint64_t{kChunk}, 7, /*frames=*/64);
    file(chunks, "base/1/same_as_tail", 3 * kChunk + 100, 6);  // deduplicated
    chunks.flush();
  }

  void dir(const std::string& path) {
    FileEntry e;
    e.path = path;
    e.type = EntryType::kDirectory;
    e.mode = 0700;
    files.entries.push_back(e);
  }

  // A file of `size` bytes from `seed`, chunked at kChunk; its first
  // `framed` chunks are added four at a time as one frame.
  void file(repo::ChunkStore& chunks, const std::string& path, std::uint64_t size,
            std::uint32_t seed, std::size_t framed = 0) {
    Bytes content = walvault::testing::seeded_bytes(seed, size);
    FileEntry e;
    e.path = path;
    e.mode = 0600;
    e.mtime = 1'700'000'000;
    e.size = size;
    const ByteView all(content);
    auto piece = [&](std::size_t c) {
      const std::uint64_t off = std::uint64_t{c} * kChunk;
      return all.subspan(off, std::min<std::uint64_t>(kChunk, size - off));
    };
    const std::size_t count = (size + kChunk - 1) / kChunk;
    for (std::size_t c = 0; c < count;) {
      if (c < framed) {
        std::vector<ByteView> group;
        for (std::size_t k = c; k < std::min({c + 4, framed, count}); ++k)
          group.push_back(piece(k));
        for (const auto& r : chunks.add_group(group)) e.chunks.push_back(r.id);
        c += group.size();
      } else {
        e.chunks.push_back(chunks.add(piece(c)).id);
        ++c;
      }
    }
    files.entries.push_back(e);
    expected[path] = std::move(content);
    ++record.file_count;
    record.logical_bytes += size;
  }

  // Every expected file has exactly its content and mode under `root`.
  ::testing::AssertionResult restored(const std::string& root) {
    for (const auto& [path, content] : expected) {
      auto got = read_file(root + "/" + path);
      if (!got) return ::testing::AssertionFailure() << path << " missing";
      if (*got != content)
        return ::testing::AssertionFailure() << path << " differs (" << got->size() << " bytes, "
                                             << content.size() << " expected)";
      struct stat st;
      if (::stat((root + "/" + path).c_str(), &st) != 0 || (st.st_mode & 07777) != 0600)
        return ::testing::AssertionFailure() << path << " has the wrong mode";
    }
    return ::testing::AssertionSuccess();
  }

  RestoreStats restore(const std::string& root, bool direct, int parallel, bool delta = false) {
    RestoreOptions o;
    o.pgdata = root;
    o.direct_io = direct;
    o.parallel = parallel;
    o.delta = delta;
    return restore_files(*repo, record, files, o);
  }

  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<repo::Repository> repo;
  BackupRecord record;
  BackupFiles files;
  std::map<std::string, Bytes> expected;
  walvault::testing::TempDir tmp{"wv-restore"};
};

std::uint64_t total_chunks(const BackupFiles& files) {
  std::uint64_t n = 0;
  for (const auto& e : files.entries) n += e.chunks.size();
  return n;
}

TEST(RestoreFiles, DirectAndBufferedWritesGiveTheSameFiles) {
  Fixture f;
  const std::uint64_t chunks = total_chunks(f.files);
  const bool fs_direct = walvault::testing::takes_direct_io(f.tmp.path());
  for (const auto& [name, direct, parallel] :
       {std::tuple{"direct2", true, 2}, std::tuple{"buffered1", false, 1},
        std::tuple{"direct3", true, 3}, std::tuple{"direct1", true, 1}}) {
    SCOPED_TRACE(name);
    const std::string root = f.tmp.sub(name);
    const RestoreStats s = f.restore(root, direct, parallel);
    EXPECT_EQ(s.direct_io, direct && fs_direct);
    EXPECT_EQ(s.chunks_written, chunks);
    EXPECT_EQ(s.chunks_kept, 0u);
    EXPECT_TRUE(f.restored(root));
  }
}

TEST(RestoreFiles, DeltaOverADirectRestoreRewritesOnlyTheChangedChunks) {
  Fixture f;
  const std::string root = f.tmp.sub("pgdata");
  f.restore(root, /*direct=*/true, 2);
  // Change one byte in chunk 10 of big and one in the unaligned tail chunk,
  // through the page cache, as a server or an operator would.
  for (const auto& [path, offset] : {std::pair{std::string("base/1/big"), 10 * kChunk + 7},
                                     std::pair{std::string("base/1/tail"), 3 * kChunk + 50}}) {
    const int fd = ::open((root + "/" + path).c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const std::uint8_t x = 0x5a ^ f.expected[path][offset];
    ASSERT_EQ(::pwrite(fd, &x, 1, offset), 1);
    ::close(fd);
  }
  const RestoreStats s = f.restore(root, /*direct=*/true, 2, /*delta=*/true);
  // The two changed chunks, and pg_control, which --delta always writes
  // last and anew (a half-restored directory must not start).
  EXPECT_EQ(s.chunks_written, 3u);
  EXPECT_EQ(s.chunks_kept, total_chunks(f.files) - 3);
  EXPECT_TRUE(f.restored(root));
}

// The recovery settings replace those of an earlier restore (a backup of a
// restored cluster carries them) and keep everything else.
TEST(RecoverySettings, ReplaceEarlierRecoveryLinesAndKeepTheRest) {
  walvault::testing::TempDir tmp("wv-settings");
  const std::string pgdata = tmp.path();
  write_file_atomic(pgdata + "/postgresql.auto.conf",
                    as_bytes("# Do not edit this file manually!\n"
                             "work_mem = '64MB'\n"
                             "restore_command = 'old-tool get %f %p'\n"
                             "recovery_target_time = '2026-01-01 00:00:00+00'\n"
                             "recovery_target_action = 'pause'\n"
                             "recovery_init_sync_method = 'fsync'\n"
                             "recovery_prefetch = 'on'\n"
                             "shared_buffers = '1GB'\n"),
                    0600, Overwrite::kYes, Durability::kNone);
  write_recovery_settings(pgdata, {{"restore_command", "walvault archive-get %f %p"},
                                   {"recovery_prefetch", "off"},
                                   {"recovery_target_lsn", "0/5000000"}});
  const auto conf = read_file(pgdata + "/postgresql.auto.conf");
  ASSERT_TRUE(conf);
  std::string text(as_chars(*conf));
  const auto stamp = text.find("# walvault restore, ");
  ASSERT_NE(stamp, std::string::npos) << text;
  text.erase(stamp, text.find('\n', stamp) + 1 - stamp);
  EXPECT_EQ(text,
            "# Do not edit this file manually!\n"
            "work_mem = '64MB'\n"
            "shared_buffers = '1GB'\n"
            "restore_command = 'walvault archive-get %f %p'\n"
            "recovery_prefetch = 'off'\n"
            "recovery_target_lsn = '0/5000000'\n");
  struct stat st;
  EXPECT_EQ(::stat((pgdata + "/recovery.signal").c_str(), &st), 0);
}

// A value cannot end its line: a quote, a backslash and line breaks come out
// escaped the way PostgreSQL's configuration reader reads them back.
TEST(RestoreFiles, ConfQuoteEscapesWhatCouldEndTheLine) {
  EXPECT_EQ(conf_quote("walvault archive-get %f %p"), "'walvault archive-get %f %p'");
  EXPECT_EQ(conf_quote("it's"), "'it''s'");
  EXPECT_EQ(conf_quote("C:\\wal\\%f"), "'C:\\\\wal\\\\%f'");
  EXPECT_EQ(conf_quote("x'\narchive_command = 'rm -rf /'"),
            "'x''\\narchive_command = ''rm -rf /'''");
  EXPECT_EQ(conf_quote("a\r\nb"), "'a\\r\\nb'");
  EXPECT_EQ(conf_quote(""), "''");
}

// A restore that runs out of space stops with the file system's error and
// the file it was writing, and leaves no global/pg_control: PostgreSQL
// refuses to start the half-restored directory.
TEST(RestoreFiles, AFullDiskFailsTheRestoreByNameAndLeavesNoPgControl) {
  Fixture f;
  const std::string mnt = f.tmp.sub("small");
  walvault::testing::TmpfsMount small(mnt, "size=4m,mode=0700");
  if (!small.why_not().empty()) GTEST_SKIP() << small.why_not();
  for (bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "direct" : "buffered");
    const std::string root = mnt + (direct ? "/direct" : "/buffered");
    try {
      f.restore(root, direct, 2);
      ADD_FAILURE() << "a 19 MiB restore into 4 MiB succeeded";
    } catch (const Error& e) {
      // "restore: writing <root>/base/1/big: No space left on device"
      EXPECT_EQ(e.code(), ErrorCode::kIo) << e.what();
      EXPECT_NE(std::string(e.what()).find("No space left"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(root + "/base/1/"), std::string::npos) << e.what();
    }
    struct stat st;
    EXPECT_NE(::stat((root + "/global/pg_control").c_str(), &st), 0);
    EXPECT_EQ(errno, ENOENT);
    std::filesystem::remove_all(root);  // space for the next run
  }
}

}  // namespace
}  // namespace walvault::basebackup
