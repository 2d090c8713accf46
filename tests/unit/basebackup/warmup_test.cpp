// PITR warm-up: blocks -> backup files and chunks, the budget, and the
// recovery_prefetch choice.
#include "basebackup/warmup.h"

#include <gtest/gtest.h>

namespace walvault::basebackup {
namespace {

constexpr std::uint32_t kChunk = 1u << 20;  // 128 blocks per chunk

pg::RelFork rel(std::uint32_t spc, std::uint32_t db, std::uint32_t r, std::uint8_t fork = 0) {
  return {.spc = spc, .db = db, .rel = r, .fork = fork};
}

FileEntry file(std::string tablespace, std::string path, std::uint64_t size) {
  FileEntry e;
  e.type = EntryType::kFile;
  e.tablespace = std::move(tablespace);
  e.path = std::move(path);
  e.size = size;
  return e;
}

TEST(WarmUp, LocatesBlocks) {
  // Default tablespace, main fork, first segment file.
  EXPECT_EQ(locate_block(rel(1663, 5, 16384), 3), (BlockLocation{"", "base/5/16384", 3 * 8192}));
  // Forks.
  EXPECT_EQ(locate_block(rel(1663, 5, 16384, 1), 0).path, "base/5/16384_fsm");
  EXPECT_EQ(locate_block(rel(1663, 5, 16384, 2), 0).path, "base/5/16384_vm");
  EXPECT_EQ(locate_block(rel(1663, 5, 16384, 3), 0).path, "base/5/16384_init");
  // 1 GiB segment files: block 131072 is the first of ".1".
  EXPECT_EQ(locate_block(rel(1663, 5, 16384), 131071),
            (BlockLocation{"", "base/5/16384", 131071ull * 8192}));
  EXPECT_EQ(locate_block(rel(1663, 5, 16384), 131072), (BlockLocation{"", "base/5/16384.1", 0}));
  EXPECT_EQ(locate_block(rel(1663, 5, 16384, 2), 2 * 131072 + 1),
            (BlockLocation{"", "base/5/16384_vm.2", 8192}));
  // Shared catalogs.
  EXPECT_EQ(locate_block(rel(1664, 0, 1262), 0), (BlockLocation{"", "global/1262", 0}));
  // Another tablespace: its archive, below the version directory.
  EXPECT_EQ(locate_block(rel(16390, 16384, 16400), 1),
            (BlockLocation{"16390", "16384/16400", 8192}));
}

TEST(WarmUp, ChoosesChunksOfBlocksRedoTouches) {
  BackupFiles files;
  files.entries.push_back(file("", "base/5/16384", 3 * kChunk));              // 0
  files.entries.push_back(file("", "base/5/16384.1", 2 * kChunk));            // 1
  files.entries.push_back(file("", "global/1262", 8192));                     // 2
  files.entries.push_back(file("16390", "PG_15_202209061/5/16400", kChunk));  // 3
  files.entries.push_back(file("", "base/5/16384_vm", 8192));                 // 4
  const std::vector<pg::ForkBlocks> blocks = {
      {rel(1663, 5, 16384),
       {{0, false},
        {1, false},
        {200, true},
        {300, false},
        {131072 + 130, false},
        {131072 + 131, false}}},
      {rel(1663, 5, 16384, 2), {{0, true}}},      // a full-page image: touched, not read
      {rel(1663, 5, 99999), {{0, false}}},        // created after the backup
      {rel(1663, 5, 16384, 1), {{1000, false}}},  // beyond the file: not in the backup
      {rel(1664, 0, 1262), {{0, false}}},
      {rel(16390, 5, 16400), {{7, false}}},
  };
  const WarmUp w = choose_warm_chunks(blocks, files, kChunk, 1ull << 40);
  // Read: blocks 0, 1, 300, 130 and 131 of ".1", the catalog's, the
  // tablespace's and the whole visibility map (1 block); touched also 200.
  EXPECT_EQ(w.read_blocks, 8u);
  EXPECT_EQ(w.touched_blocks, 9u);
  EXPECT_EQ(w.hot_read_blocks, 8u);
  EXPECT_EQ(w.hot_blocks, 8u);
  // Chunks 0 (blocks 0, 1) and 2 (block 300) of the first file, not chunk 1
  // (block 200, an image: written, not read); chunk 1 of ".1" (blocks 130, 131).
  EXPECT_EQ(w.chunks.at(0), (std::vector<std::uint32_t>{0, 2}));
  EXPECT_EQ(w.chunks.at(1), (std::vector<std::uint32_t>{1}));
  EXPECT_EQ(w.chunks.at(2), (std::vector<std::uint32_t>{0}));
  EXPECT_EQ(w.chunks.at(3), (std::vector<std::uint32_t>{0}));
  // The visibility map of a relation with changed blocks: whole.
  EXPECT_EQ(w.chunks.at(4), (std::vector<std::uint32_t>{0}));
  EXPECT_EQ(w.bytes, 4 * kChunk + 2 * 8192);
}

TEST(WarmUp, LeavesChunksRedoOnlyWritesCold) {
  BackupFiles files;
  files.entries.push_back(file("", "base/5/16384", 2 * kChunk));
  // Chunk 0: pages rebuilt from images; chunk 1: an image and a read.
  const std::vector<pg::ForkBlocks> blocks = {
      {rel(1663, 5, 16384), {{0, true}, {1, true}, {128, true}, {129, false}}}};
  const WarmUp w = choose_warm_chunks(blocks, files, kChunk, 1ull << 40);
  EXPECT_EQ(w.chunks.at(0), (std::vector<std::uint32_t>{1}));
  EXPECT_EQ(w.bytes, kChunk);
  EXPECT_EQ(w.touched_blocks, 4u);
  EXPECT_EQ(w.hot_blocks, 2u);
  EXPECT_EQ(w.read_blocks, 1u);
  EXPECT_EQ(w.hot_read_blocks, 1u);
  // Every block redo reads is hot: nothing for PostgreSQL's prefetcher.
  EXPECT_EQ(recovery_prefetch_choice(w, true), RecoveryPrefetch::kOff);
}

TEST(WarmUp, BudgetTakesTheChunksRedoReadsMostFirst) {
  BackupFiles files;
  files.entries.push_back(file("", "base/5/16384", 3 * kChunk));
  // Chunk 0: three blocks written over by images; chunk 1: two reads; chunk
  // 2: one read.
  const std::vector<pg::ForkBlocks> blocks = {
      {rel(1663, 5, 16384),
       {{0, true}, {1, true}, {2, true}, {128, false}, {129, false}, {256, false}}}};
  const WarmUp w = choose_warm_chunks(blocks, files, kChunk, 2 * kChunk + kChunk / 2);
  EXPECT_EQ(w.chunks.at(0), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(w.bytes, 2 * kChunk);
  EXPECT_EQ(w.touched_blocks, 6u);
  EXPECT_EQ(w.hot_blocks, 3u);
  EXPECT_EQ(w.hot_read_blocks, 3u);
}

TEST(WarmUp, RecoveryPrefetchFromTheMaps) {
  WarmUp all_hot;
  all_hot.touched_blocks = all_hot.hot_blocks = 5;
  all_hot.read_blocks = all_hot.hot_read_blocks = 3;
  EXPECT_EQ(recovery_prefetch_choice(all_hot, true), RecoveryPrefetch::kOff);
  EXPECT_EQ(recovery_prefetch_choice(all_hot, false), RecoveryPrefetch::kOff);
  WarmUp some_cold = all_hot;
  some_cold.hot_read_blocks = 2;
  EXPECT_EQ(recovery_prefetch_choice(some_cold, true), RecoveryPrefetch::kOn);
  // Without complete maps: the rule without them.
  WarmUp unknown = all_hot;
  unknown.problems.push_back("000000010000000000000003 has no block map");
  EXPECT_EQ(recovery_prefetch_choice(unknown, true), RecoveryPrefetch::kOff);
  EXPECT_EQ(recovery_prefetch_choice(unknown, false), RecoveryPrefetch::kDefault);
  EXPECT_NE(unknown.summary().find("1 without knowledge (first: 000000010000000000000003"),
            std::string::npos);
}

}  // namespace
}  // namespace walvault::basebackup
