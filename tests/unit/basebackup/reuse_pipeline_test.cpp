// BackupPipeline::add_file_reusing over a mem repository: only the chunks
// asked for are read, the others take the previous backup's ids as dedup
// hits, and an id the chunk store does not list (a forged file list) is read
// instead of referenced.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "basebackup/take_backup.h"
#include "core/error.h"
#include "store/mem_store.h"
#include "support/synthetic_meta.h"

namespace walvault::basebackup {
namespace {

constexpr std::uint32_t kChunk = 256 * 1024;
constexpr std::uint32_t kSegment = 16u << 20;

Bytes content(std::uint8_t seed, std::size_t size) {
  Bytes b(size);
  for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 7 + i / 4096);
  return b;
}

struct Fixture {
  Fixture() : store(std::make_shared<store::MemStore>()) {
    repo::InitOptions init;
    init.chunk_size = kChunk;
    repo::Repository::init(*store, init);
    repo = repo::Repository::open(store, {});
    testing::bind_synthetic_cluster(*repo, kSegment);
    testing::put_synthetic_segment(*repo, testing::synthetic_segment_meta(1, 1, kSegment, 1000),
                                   content(9, 4096));
  }
  BackupRecord record(std::int64_t start_us) const {
    BackupRecord r;
    r.source = "local";
    r.start_lsn = kSegment + 0x28;
    r.stop_lsn = kSegment + 0x1000;
    r.start_timeline = r.stop_timeline = 1;
    r.start_time_us = start_us;
    r.pg_version_num = 150000;
    r.system_id = 42;
    r.wal_segment_size = kSegment;
    return r;
  }
  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<repo::Repository> repo;
};

pg::TarEntry entry(std::uint64_t size) {
  pg::TarEntry e;
  e.path = "base/5/16384";
  e.type = pg::TarEntryType::kFile;
  e.mode = 0600;
  e.size = size;
  return e;
}

TEST(ReusePipeline, ReadsOnlyWhatItMustAndNeverReferencesAnUnknownChunk) {
  Fixture f;
  const Bytes before = content(1, 4 * kChunk);
  BackupOptions options;
  std::string first_label;
  {
    BackupPipeline p({f.repo.get()}, options);
    p.add_file(entry(before.size()), [&](std::uint64_t offset, std::size_t length, Bytes& out) {
      out.assign(before.begin() + static_cast<std::ptrdiff_t>(offset),
                 before.begin() + static_cast<std::ptrdiff_t>(offset + length));
    });
    first_label = p.commit(f.record(1'000'000'000), options).label;
  }
  const BackupFiles first = read_files(*f.repo, first_label);
  ASSERT_EQ(first.entries.size(), 1u);
  FileEntry previous = first.entries[0];
  ASSERT_EQ(previous.chunks.size(), 4u);
  previous.chunks[3][0] ^= 0xff;  // forged: no index lists it

  // Chunk 1 changed; chunk 3 must be read because its previous id is unknown.
  Bytes now = before;
  now[kChunk + 10] ^= 0x55;
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, std::size_t>> reads;
  BackupPipeline p({f.repo.get()}, options);
  const std::uint64_t bytes =
      p.add_file_reusing(entry(now.size()),
                         [&](std::uint64_t offset, std::size_t length, Bytes& out) {
                           {
                             std::lock_guard lock(mu);
                             reads.emplace_back(offset, length);
                           }
                           out.assign(now.begin() + static_cast<std::ptrdiff_t>(offset),
                                      now.begin() + static_cast<std::ptrdiff_t>(offset + length));
                         },
                         {1}, {&previous});
  EXPECT_EQ(bytes, 2u * kChunk);
  EXPECT_EQ(p.read_bytes(), 2u * kChunk);
  const BackupRecord second = p.commit(f.record(2'000'000'000), options);
  std::sort(reads.begin(), reads.end());
  EXPECT_EQ(reads, (std::vector<std::pair<std::uint64_t, std::size_t>>{{kChunk, kChunk},
                                                                       {3 * kChunk, kChunk}}));
  EXPECT_EQ(second.read_bytes, 2u * kChunk);
  EXPECT_EQ(second.chunk_count, 4u);
  EXPECT_EQ(second.new_chunk_count, 1u);  // chunk 1; chunk 3 was a dedup hit once read

  const BackupFiles files = read_files(*f.repo, second.label);
  ASSERT_EQ(files.entries.size(), 1u);
  const auto& ids = files.entries[0].chunks;
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], first.entries[0].chunks[0]);
  EXPECT_NE(ids[1], first.entries[0].chunks[1]);
  EXPECT_EQ(ids[2], first.entries[0].chunks[2]);
  EXPECT_EQ(ids[3], first.entries[0].chunks[3]);  // the real one, not the forged id
  repo::ChunkStore chunks(*f.repo);
  for (const auto& id : ids) EXPECT_TRUE(chunks.contains(id));
  const auto changed = chunks.read(ids[1]);
  ASSERT_TRUE(changed);
  EXPECT_EQ(*changed, Bytes(now.begin() + kChunk, now.begin() + 2 * kChunk));
}

// wait_for_reads (what a local backup waits for before pg_backup_stop):
// when it returns every range handed to `read` has been read, even slow ones
// still running on the workers; and a read that fails ends the wait instead
// of leaving it hanging, the failure surfacing from the backup.
TEST(ReusePipeline, WaitForReadsReturnsOnceEveryReadIsDoneOrHasFailed) {
  Fixture f;
  BackupOptions options;
  const Bytes data = content(3, 40 * kChunk);  // three groups of 4 MiB at most
  std::atomic<int> reads{0};
  {
    BackupPipeline p({f.repo.get()}, options);
    p.add_file(entry(data.size()), [&](std::uint64_t offset, std::size_t length, Bytes& out) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      out.assign(data.begin() + static_cast<std::ptrdiff_t>(offset),
                 data.begin() + static_cast<std::ptrdiff_t>(offset + length));
      ++reads;
    });
    p.wait_for_reads();
    EXPECT_EQ(reads.load(), 3);
    p.commit(f.record(1'000'000'000), options);
  }
  bool failed = false;
  try {
    BackupPipeline p({f.repo.get()}, options);
    p.add_file(entry(data.size()), [&](std::uint64_t offset, std::size_t length, Bytes& out) {
      if (offset == 0) throw Error(ErrorCode::kIo, "reading base/5/16384: Input/output error");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      out.assign(data.begin() + static_cast<std::ptrdiff_t>(offset),
                 data.begin() + static_cast<std::ptrdiff_t>(offset + length));
    });
    p.wait_for_reads();  // a hang here is the failure (ctest's timeout)
    p.commit(f.record(2'000'000'000), options);
  } catch (const Error& e) {
    failed = true;
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find("Input/output error"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(failed) << "a backup whose read failed was committed";
  EXPECT_EQ(list_backups(*f.repo).size(), 1u) << "only the first backup is listed";
}

}  // namespace
}  // namespace walvault::basebackup
