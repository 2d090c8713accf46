// The map-based incremental's pure rules: which chunks of which files to
// read from the changed blocks, the previous file list and the new sizes.
#include "basebackup/incremental.h"

#include <gtest/gtest.h>

namespace walvault::basebackup {
namespace {

constexpr std::uint32_t kChunk = 1u << 20;  // 128 blocks per chunk
using Chunks = std::vector<std::uint32_t>;

pg::RelFork rel(std::uint32_t spc, std::uint32_t db, std::uint32_t r, std::uint8_t fork = 0) {
  return {.spc = spc, .db = db, .rel = r, .fork = fork};
}

repo::ChunkId id(std::uint8_t n) {
  repo::ChunkId out{};
  out[0] = n;
  return out;
}

FileEntry file(std::string tablespace, std::string path, std::uint64_t size) {
  FileEntry e;
  e.type = EntryType::kFile;
  e.tablespace = std::move(tablespace);
  e.path = std::move(path);
  e.size = size;
  for (std::uint64_t c = 0; c < (size + kChunk - 1) / kChunk; ++c)
    e.chunks.push_back(id(static_cast<std::uint8_t>(c + 1)));
  return e;
}

walarchive::ChangedBlocks changes(std::vector<pg::ForkBlocks> blocks,
                                  std::vector<pg::MapEvent> events = {}) {
  walarchive::ChangedBlocks c;
  c.blocks = std::move(blocks);
  c.events = std::move(events);
  c.segments = 1;
  return c;
}

pg::ForkBlocks blocks(pg::RelFork fork, std::vector<std::uint32_t> numbers) {
  pg::ForkBlocks out{fork, {}};
  for (auto n : numbers) out.blocks.push_back({n, false});
  return out;
}

pg::MapEvent event(pg::MapEventKind kind, pg::RelFork r) {
  pg::MapEvent e;
  e.kind = kind;
  e.lsn = 0x1000;
  e.rel = r;
  return e;
}

TEST(Incremental, ParsesRelationFilesOnlyAsLocateBlockNamesThem) {
  const RelationGeometry g;
  auto f = parse_relation_file("", "base/5/16384", g);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->fork, rel(1663, 5, 16384));
  EXPECT_EQ(f->segment, 0u);
  f = parse_relation_file("", "base/5/16384_vm.2", g);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->fork, rel(1663, 5, 16384, 2));
  EXPECT_EQ(f->segment, 2u);
  f = parse_relation_file("", "global/1262", g);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->fork, rel(1664, 0, 1262));
  f = parse_relation_file("16390", "PG_15_202209061/16384/16400.1", g);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->fork, rel(16390, 16384, 16400));
  EXPECT_EQ(f->segment, 1u);
  for (const char* path :
       {"base/5/016384", "base/5/16384.0", "base/5/pg_filenode.map", "base/5/16384_xyz",
        "base/5/../16384", "global/pg_control", "PG_VERSION", "pg_xact/0000", "base/5/4294967296",
        "base/x/1", "/base/5/1", "base/5/1/2", "base//1"})
    EXPECT_FALSE(parse_relation_file("", path, g)) << path;
  EXPECT_FALSE(parse_relation_file("16390", "15/16384/16400", g));
  EXPECT_FALSE(parse_relation_file("abc", "PG_15_1/16384/16400", g));
  // RELSEG_SIZE from the server: a segment number that overflows the block
  // numbers is no relation file.
  EXPECT_FALSE(parse_relation_file("", "base/5/1.40000", g));
  EXPECT_TRUE(parse_relation_file("", "base/5/1.40000", RelationGeometry{8192, 4}));
}

TEST(Incremental, ReadsOnlyChangedChunksOfAnUnchangedSizeMainFork) {
  BackupFiles prev;
  prev.entries = {file("", "base/5/100", 3 * kChunk)};
  const IncrementalPlanner p(changes({blocks(rel(1663, 5, 100), {130, 131, 255})}), {&prev}, kChunk,
                             {});
  ASSERT_EQ(p.refusal(), "");
  const FilePlan plan = p.plan("", "base/5/100", 3 * kChunk);
  ASSERT_FALSE(plan.whole) << plan.why;
  EXPECT_EQ(plan.read, Chunks({1}));
  ASSERT_EQ(plan.previous.size(), 1u);
  EXPECT_EQ(plan.previous[0], &prev.entries[0]);
  // Nothing changed: nothing read.
  BackupFiles prev2;
  prev2.entries = {file("", "base/5/101", kChunk + 8192)};
  const IncrementalPlanner q(changes({}), {&prev2}, kChunk, {});
  EXPECT_EQ(q.plan("", "base/5/101", kChunk + 8192).read, Chunks{});
}

TEST(Incremental, SizeChangesReadFromTheSmallerSizeToTheEnd) {
  BackupFiles prev;
  prev.entries = {file("", "base/5/100", 2 * kChunk + 8192), file("", "base/5/200", 3 * kChunk)};
  const IncrementalPlanner p(changes({blocks(rel(1663, 5, 100), {3, 600})}), {&prev}, kChunk, {});
  // Grew from 2 chunks + 1 block to 4 chunks: chunk 0 (changed), 2.. the end.
  FilePlan plan = p.plan("", "base/5/100", 4 * kChunk);
  ASSERT_FALSE(plan.whole);
  EXPECT_EQ(plan.read, Chunks({0, 2, 3}));
  // A changed block past the new end is not a chunk.
  plan = p.plan("", "base/5/100", 2 * kChunk + 16384);
  EXPECT_EQ(plan.read, Chunks({0, 2}));
  // Shrank without a truncation in range: whole.
  plan = p.plan("", "base/5/200", 2 * kChunk);
  EXPECT_TRUE(plan.whole);
  EXPECT_EQ(plan.why, "shrank without a truncation");
}

TEST(Incremental, NonRelationFilesAndOtherForksAreReadWhole) {
  BackupFiles prev;
  prev.entries = {file("", "base/5/100_fsm", kChunk), file("", "base/5/100_vm", 8192),
                  file("", "base/5/100_init", 8192),  file("", "global/pg_control", 8192),
                  file("", "pg_xact/0000", 8192),     file("", "base/5/pg_filenode.map", 512),
                  file("", "PG_VERSION", 3)};
  const IncrementalPlanner p(changes({}), {&prev}, kChunk, {});
  for (const auto& e : prev.entries) EXPECT_TRUE(p.plan("", e.path, e.size).whole) << e.path;
  EXPECT_TRUE(p.plan("", "base/5/300", kChunk).whole);  // not in the previous backup
  EXPECT_EQ(p.plan("", "base/5/300", kChunk).why, "not in the previous backup");
}

TEST(Incremental, EventsMakeTheirRelationsDatabasesAndTablespacesWhole) {
  using K = pg::MapEventKind;
  BackupFiles prev;
  prev.entries = {file("", "base/5/100", kChunk),         file("", "base/5/100.1", kChunk),
                  file("", "base/5/101", kChunk),         file("", "base/6/100", kChunk),
                  file("", "base/7/100", kChunk),         file("16390", "PG_15_1/5/100", kChunk),
                  file("16391", "PG_15_1/5/100", kChunk), file("", "global/1262", kChunk)};
  const IncrementalPlanner p(changes({}, {event(K::kRelationTruncated, rel(1663, 5, 100)),
                                          event(K::kDatabaseCopied, rel(1663, 6, 0)),
                                          event(K::kDatabaseCreated, rel(1663, 7, 0)),
                                          event(K::kTablespaceCreated, rel(16390, 0, 0)),
                                          event(K::kRelationMapUpdated, rel(1663, 5, 0))}),
                             {&prev}, kChunk, {});
  ASSERT_EQ(p.refusal(), "");
  EXPECT_TRUE(p.plan("", "base/5/100", kChunk).whole);
  EXPECT_TRUE(p.plan("", "base/5/100.1", kChunk).whole);
  EXPECT_FALSE(p.plan("", "base/5/101", kChunk).whole);
  EXPECT_TRUE(p.plan("", "base/6/100", kChunk).whole);
  EXPECT_TRUE(p.plan("", "base/7/100", kChunk).whole);
  EXPECT_TRUE(p.plan("16390", "PG_15_1/5/100", kChunk).whole);
  EXPECT_FALSE(p.plan("16391", "PG_15_1/5/100", kChunk).whole);
  EXPECT_FALSE(p.plan("", "global/1262", kChunk).whole);
  const IncrementalPlanner dropped(changes({}, {event(K::kRelationDropped, rel(1664, 0, 1262)),
                                                event(K::kDatabaseDropped, rel(16391, 5, 0))}),
                                   {&prev}, kChunk, {});
  EXPECT_TRUE(dropped.plan("", "global/1262", kChunk).whole);
  EXPECT_TRUE(dropped.plan("16391", "PG_15_1/5/100", kChunk).whole);
  EXPECT_FALSE(dropped.plan("", "base/5/100", kChunk).whole);
}

TEST(Incremental, UnknownEventsIncompleteMapsAndOddChunkSizesRefuse) {
  BackupFiles prev;
  prev.entries = {file("", "base/5/100", kChunk)};
  auto c = changes({}, {event(static_cast<pg::MapEventKind>(42), rel(1663, 5, 100))});
  const IncrementalPlanner unknown(c, {&prev}, kChunk, {});
  EXPECT_NE(unknown.refusal().find("unknown kind 42"), std::string::npos) << unknown.refusal();
  EXPECT_TRUE(unknown.plan("", "base/5/100", kChunk).whole);
  auto incomplete = changes({});
  incomplete.problems = {"000000010000000000000005 has no block map"};
  const IncrementalPlanner partial(incomplete, {&prev}, kChunk, {});
  EXPECT_NE(partial.refusal().find("000000010000000000000005"), std::string::npos);
  EXPECT_TRUE(partial.plan("", "base/5/100", kChunk).whole);
  const IncrementalPlanner odd(changes({}), {&prev}, 12288, {});
  EXPECT_FALSE(odd.refusal().empty());
}

TEST(Incremental, HostilePreviousListsNeverLeadOutside) {
  BackupFiles prev;
  FileEntry wrong_count = file("", "base/5/100", 2 * kChunk);
  wrong_count.chunks.pop_back();
  FileEntry dir = file("", "base/5/101", kChunk);
  dir.type = EntryType::kSymlink;
  prev.entries = {wrong_count,
                  dir,
                  file("", "../../etc/passwd", kChunk),
                  file("", "/etc/shadow", kChunk),
                  file("", "base/5/../5/102", kChunk),
                  file("16390", "PG_15_1/5/103", kChunk),
                  file("16390", "PG_16_2/5/103", kChunk),  // the same key twice
                  file("", "base/5/104", kChunk)};
  const IncrementalPlanner p(changes({}), {&prev}, kChunk, {});
  EXPECT_TRUE(p.plan("", "base/5/100", 2 * kChunk).whole);
  EXPECT_TRUE(p.plan("", "base/5/101", kChunk).whole);
  EXPECT_TRUE(p.plan("", "base/5/102", kChunk).whole);
  EXPECT_TRUE(p.plan("16390", "PG_15_1/5/103", kChunk).whole);
  EXPECT_TRUE(p.plan("", "../../etc/passwd", kChunk).whole);
  EXPECT_TRUE(p.plan("", "/etc/shadow", kChunk).whole);
  const FilePlan ok = p.plan("", "base/5/104", kChunk);
  ASSERT_FALSE(ok.whole);
  EXPECT_EQ(ok.previous[0]->path, "base/5/104");
}

TEST(Incremental, EveryRepositoryMustHaveTheSameEntry) {
  BackupFiles a, b, c;
  a.entries = {file("", "base/5/100", kChunk), file("", "base/5/101", kChunk)};
  b.entries = {file("", "base/5/100", kChunk), file("", "base/5/101", 2 * kChunk)};
  c.entries = {file("", "base/5/101", kChunk)};
  const IncrementalPlanner p(changes({}), {&a, &b}, kChunk, {});
  const FilePlan both = p.plan("", "base/5/100", kChunk);
  ASSERT_FALSE(both.whole);
  EXPECT_EQ(both.previous, (std::vector<const FileEntry*>{&a.entries[0], &b.entries[0]}));
  EXPECT_TRUE(p.plan("", "base/5/101", kChunk).whole);  // sizes differ between repositories
  const IncrementalPlanner q(changes({}), {&a, &c}, kChunk, {});
  EXPECT_TRUE(q.plan("", "base/5/100", kChunk).whole);  // not in the second
}

TEST(Incremental, ServerGeometryPlacesBlocks) {
  // RELSEG_SIZE 256 blocks: block 300 is block 44 of segment file .1.
  BackupFiles prev;
  prev.entries = {file("", "base/5/100.1", 2 * kChunk), file("", "base/5/100", 2 * kChunk)};
  const IncrementalPlanner p(changes({blocks(rel(1663, 5, 100), {130, 300, 400})}), {&prev}, kChunk,
                             RelationGeometry{8192, 256});
  EXPECT_EQ(p.plan("", "base/5/100", 2 * kChunk).read, Chunks({1}));
  EXPECT_EQ(p.plan("", "base/5/100.1", 2 * kChunk).read, Chunks({0, 1}));
}

BackupRecord record(std::string label, pg::Lsn start, pg::TimeLineId tli = 1) {
  BackupRecord r;
  r.label = std::move(label);
  r.start_lsn = start;
  r.stop_lsn = start + 0x100;
  r.start_timeline = r.stop_timeline = tli;
  r.system_id = 7;
  r.wal_segment_size = 16u << 20;
  r.chunk_size = kChunk;
  r.pg_version_num = 150004;
  return r;
}

TEST(Incremental, ChoosesTheNewestUsableBase) {
  IncrementalFacts now{.system_id = 7,
                       .timeline = 1,
                       .start_lsn = 0x10000,
                       .segment_size = 16u << 20,
                       .chunk_size = kChunk,
                       .pg_major = 15};
  EXPECT_EQ(choose_base({}, now).reason, "no previous backup");
  BackupRecord other = record("z-other", 0x9000);
  other.system_id = 8;
  const auto chosen =
      choose_base({record("a", 0x1000), record("b", 0x8000), record("later", 0x10000), other}, now);
  ASSERT_TRUE(chosen.record) << chosen.reason;
  EXPECT_EQ(chosen.record->label, "b");
  BackupRecord small = record("c", 0x9000);
  small.chunk_size = 256 * 1024;
  const auto refused = choose_base({record("b", 0x8000), small}, now);
  EXPECT_FALSE(refused.record);
  EXPECT_NE(refused.reason.find("another chunk size"), std::string::npos) << refused.reason;
  const auto timeline = choose_base({record("b", 0x8000, 1)}, {.system_id = 7,
                                                               .timeline = 2,
                                                               .start_lsn = 0x10000,
                                                               .segment_size = 16u << 20,
                                                               .chunk_size = kChunk,
                                                               .pg_major = 15});
  EXPECT_NE(timeline.reason.find("timeline changed"), std::string::npos) << timeline.reason;
  // A forged label never becomes an object name.
  EXPECT_EQ(
      choose_base({record("b", 0x8000), record("../../x", 0x9000), record("a/b", 0x9100)}, now)
          .record->label,
      "b");
  BackupRecord overlapping = record("d", 0x9000);
  overlapping.stop_lsn = 0x20000;
  EXPECT_FALSE(choose_base({overlapping}, now).record);
}

}  // namespace
}  // namespace walvault::basebackup
