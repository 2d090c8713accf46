// Block maps end to end: a real PostgreSQL (15, and 13/14/16/17/18 when their
// binaries are there) archives through `walvault archive-push` while pgbench
// and DDL run; the maps read back over the range name the block of a known
// UPDATE and the create, truncate and drop of known relation files, and a
// segment whose map is gone makes the answer incomplete.
#include <gtest/gtest.h>

#include <algorithm>

#include "integration/walvault_cli.h"
#include "pg/wal_name.h"
#include "repo/layout.h"
#include "repo/repository.h"
#include "store/object_store.h"
#include "walarchive/block_maps.h"

namespace walvault::testing {
namespace {

std::uint32_t u32(const std::string& text) { return static_cast<std::uint32_t>(std::stoul(text)); }

// The heap block of a row: ctid is "(block,offset)".
std::uint32_t block_of(PgCluster& pg, const std::string& where) {
  const std::string ctid = pg.sql("select ctid from pgbench_accounts where " + where);
  return u32(ctid.substr(1, ctid.find(',') - 1));
}

bool has_block(const walarchive::ChangedBlocks& changed, const pg::RelFork& fork,
               std::uint32_t block) {
  for (const pg::ForkBlocks& g : changed.blocks) {
    if (g.fork != fork) continue;
    return std::any_of(g.blocks.begin(), g.blocks.end(),
                       [&](const pg::ChangedBlock& b) { return b.block == block; });
  }
  return false;
}

bool has_event(const walarchive::ChangedBlocks& changed, pg::MapEventKind kind, std::uint32_t rel) {
  return std::any_of(changed.events.begin(), changed.events.end(),
                     [&](const pg::MapEvent& e) { return e.kind == kind && e.rel.rel == rel; });
}

class BlockMapTest : public ::testing::TestWithParam<int> {
 protected:
  TempDir work_;
};

TEST_P(BlockMapTest, RangeNamesChangedBlocksAndFileEvents) {
  const int major = GetParam();
  if (auto why = missing_major(major); !why.empty()) GTEST_SKIP() << why;
  const std::string repo_dir = work_.sub("repo");
  const std::vector<std::string> flags = repo_flags(repo_dir, work_.sub("spool"), "");
  auto init = walvault({"--repo", repo_dir, "repo", "init"});
  ASSERT_EQ(init.status, 0) << init.err;
  auto pg = start_archiving_cluster(archive_push_command(flags, 2), major);
  pg->pgbench_init(1);
  pg->sql("checkpoint");
  const pg::Lsn start = *pg::parse_lsn(pg->sql("select redo_lsn from pg_control_checkpoint()"));

  pg->pgbench_run(2);
  const std::uint32_t db = u32(pg->sql("select oid from pg_database where datname = 'postgres'"));
  const std::uint32_t accounts = u32(pg->sql("select pg_relation_filenode('pgbench_accounts')"));
  const std::uint32_t old_block = block_of(*pg, "aid = 54321");
  pg->sql("update pgbench_accounts set filler = repeat('x', 80) where aid = 54321");
  const std::uint32_t new_block = block_of(*pg, "aid = 54321");

  pg->sql("create table bm_t as select g from generate_series(1, 1000) g");
  const std::uint32_t t_first = u32(pg->sql("select pg_relation_filenode('bm_t')"));
  pg->sql("truncate bm_t");  // a new file, the old one dropped at commit
  const std::uint32_t t_second = u32(pg->sql("select pg_relation_filenode('bm_t')"));
  pg->sql("insert into bm_t select g from generate_series(1, 10) g");
  pg->sql("drop table bm_t");
  // Created and truncated in one transaction: truncated in place (smgr truncate).
  pg->sql(
      "begin; create table bm_u as select g from generate_series(1, 5000) g;"
      " truncate bm_u; commit;");
  const std::uint32_t u_rel = u32(pg->sql("select pg_relation_filenode('bm_u')"));
  const pg::Lsn end = *pg::parse_lsn(pg->sql("select pg_current_wal_insert_lsn()"));
  switch_and_wait(*pg);

  auto repo = repo::Repository::open(store::open_store(repo_dir), {});
  const walarchive::BlockMapQuery query{1, start, end, 16u << 20};
  const walarchive::ChangedBlocks changed = walarchive::read_changed_blocks(*repo, query);
  ASSERT_TRUE(changed.complete()) << changed.problems.front();
  EXPECT_GE(changed.segments, 1u);
  const pg::RelFork accounts_main{1663, db, accounts, 0};
  EXPECT_TRUE(has_block(changed, accounts_main, old_block)) << old_block;
  EXPECT_TRUE(has_block(changed, accounts_main, new_block)) << new_block;
  EXPECT_TRUE(has_event(changed, pg::MapEventKind::kRelationCreated, t_first));
  EXPECT_TRUE(has_event(changed, pg::MapEventKind::kRelationCreated, t_second));
  EXPECT_TRUE(has_event(changed, pg::MapEventKind::kRelationDropped, t_first));
  EXPECT_TRUE(has_event(changed, pg::MapEventKind::kRelationDropped, t_second));
  EXPECT_TRUE(has_event(changed, pg::MapEventKind::kRelationTruncated, u_rel));
  // Nothing before the range's changes names bm_t's files.
  const pg::RelFork unrelated{1663, db, accounts + 1000000, 0};
  EXPECT_FALSE(has_block(changed, unrelated, 0));

  // A segment of the range without its map (as an older walvault pushed it):
  // the answer says so and is not complete.
  const std::string first_segment = pg::segment_file_name(1, start / (16u << 20), 16u << 20);
  repo->store().remove(repo::block_map_object_name(first_segment));
  const walarchive::ChangedBlocks without = walarchive::read_changed_blocks(*repo, query);
  EXPECT_FALSE(without.complete());
  ASSERT_FALSE(without.problems.empty());
  EXPECT_NE(without.problems.front().find(first_segment), std::string::npos)
      << without.problems.front();
  EXPECT_NE(without.problems.front().find("no block map"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Majors, BlockMapTest, ::testing::Values(15, 13, 14, 16, 17, 18),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "pg" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace walvault::testing
