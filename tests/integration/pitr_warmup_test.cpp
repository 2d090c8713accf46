// PITR warm-up end to end (basebackup/warmup.h): a real PostgreSQL 15
// archives through walvault while pgbench runs without full-page writes
// after the backup (so redo must read the pages it changes), and a PITR
// restore reads the block maps of its WAL, leaves those pages in the page
// cache, chooses recovery_prefetch from the maps, and reaches the target
// with the target's data. A segment of the range without its map makes the
// restore say so and fall back (no warm-up for it, the old prefetch rule),
// with the same data.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <regex>

#include "integration/walvault_cli.h"
#include "pg/wal_name.h"
#include "repo/layout.h"
#include "repo/repository.h"
#include "store/object_store.h"

namespace walvault::testing {
namespace {

// Bytes of `path` in the page cache (mincore).
std::uint64_t resident_bytes(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st;
  std::uint64_t resident = 0;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    const auto size = static_cast<std::size_t>(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED) {
      const long page = ::sysconf(_SC_PAGESIZE);
      std::vector<unsigned char> in((size + page - 1) / page);
      if (::mincore(map, size, in.data()) == 0)
        for (unsigned char c : in) resident += (c & 1) ? static_cast<std::uint64_t>(page) : 0;
      ::munmap(map, size);
    }
  }
  ::close(fd);
  return resident;
}

// The data a PITR must reproduce: row counts and a checksum of the rows.
std::string table_state(PgCluster& pg) {
  return pg.sql(
      "select (select count(*) from pgbench_history) || ' ' || "
      "(select md5(string_agg(aid || ':' || abalance, ',' order by aid)) from pgbench_accounts)");
}

// One history for both cases: backup, then pgbench without full-page writes,
// marker 1, the target, marker 2 and more pgbench.
class PitrWarmUpTest : public ::testing::Test {
 protected:
  struct History {
    ArchivingRepo r{"wv-warmup"};
    std::string target, state, accounts_path;
  };

  // Backup, pgbench (with or without full-page writes), marker 1, the
  // target, marker 2, more pgbench, everything archived.
  static std::unique_ptr<History> make_history(bool full_page_writes) {
    auto history = std::make_unique<History>();
    History& h = *history;
    PgCluster& pg = *h.r.pg;
    pg.pgbench_init(1);
    h.accounts_path = pg.sql("select pg_relation_filepath('pgbench_accounts')");
    if (h.r.backup().empty()) return history;
    if (!full_page_writes) {
      // No full-page images from here on: redo reads every page it changes.
      pg.sql("alter system set full_page_writes = off");
      pg.sql("select pg_reload_conf()");
    }
    pg.pgbench_run(2);
    insert_marker(pg, 1);
    h.state = table_state(pg);
    h.target = moment_between_commits(pg);
    insert_marker(pg, 2);
    pg.pgbench_run(1);
    switch_and_wait(pg);
    return history;
  }
  static void SetUpTestSuite() { history = make_history(false); }
  static void TearDownTestSuite() { history.reset(); }

  void SetUp() override { ASSERT_FALSE(history->target.empty()) << "the suite's setup failed"; }

  // Restores to the target; the restore's output.
  std::string restore_to_target(const std::string& dir) {
    auto r = walvault(concat(history->r.flags, {"restore", "--pgdata", dir, "--target-time",
                                                history->target, "--target-action", "promote"}));
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  }

  static std::unique_ptr<History> history;
  TempDir work_{"wv-warmup-restore"};
};

std::unique_ptr<PitrWarmUpTest::History> PitrWarmUpTest::history;

TEST_F(PitrWarmUpTest, WarmsTheBlocksRedoReadsAndReachesTheTarget) {
  const std::string dir = work_.sub("pitr");
  const std::string out = restore_to_target(dir);
  // Every block redo reads (no full-page images) is hot, and the maps of
  // every segment are complete. Without images nearly every block it touches
  // is one it reads; a page it only initialises may be left cold.
  const std::regex line(
      "warm-up: (\\d+) of (\\d+) blocks redo touches made hot \\((\\d+) of (\\d+) it reads\\)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, line)) << out;
  EXPECT_GE(std::stoul(m[1]), std::stoul(m[3])) << out;
  EXPECT_EQ(m[3], m[4]) << out;
  EXPECT_GT(std::stoul(m[4]), 0u) << out;
  EXPECT_NE(out.find("segments complete"), std::string::npos) << out;
  // Nothing left for the WAL prefetcher: off, whatever the I/O mode.
  EXPECT_NE(read_text(dir + "/postgresql.auto.conf").find("\nrecovery_prefetch = 'off'\n"),
            std::string::npos);
  // The pages pgbench changed are in the page cache although the rest was
  // written around it.
  EXPECT_GT(resident_bytes(dir + "/" + history->accounts_path), 0u);

  auto pg = start_restored(dir);
  EXPECT_EQ(marker_ids(*pg), "1");
  EXPECT_EQ(table_state(*pg), history->state);
}

TEST_F(PitrWarmUpTest, SegmentWithoutMapFallsBackAndSaysSo) {
  // A copy of the repository whose second segment has no map (as a walvault
  // without block maps archived it).
  const std::string repo_copy = work_.sub("repo");
  ASSERT_EQ(run({"cp", "-a", history->r.repo, repo_copy}).status, 0);
  give_to_test_user(repo_copy);  // the restored server's restore_command reads it
  const std::vector<std::string> flags = {"--repo", repo_copy, "--spool-path", work_.sub("spool")};
  // The plan's second segment (the first may start before the backup's start).
  auto plan = walvault(concat(flags, {"restore", "--pgdata", work_.sub("plan"), "--dry-run",
                                      "--target-time", history->target}));
  ASSERT_EQ(plan.status, 0) << plan.err;
  const std::string first = capture(plan.out, "wal: \\d+ segments \\((\\S+) \\.\\. ");
  ASSERT_FALSE(first.empty()) << plan.out;
  const std::string unmapped = pg::segment_file_name(
      1, pg::segment_number(*pg::parse_wal_file_name(first), 16u << 20) + 1, 16u << 20);
  {
    auto repo = repo::Repository::open(store::open_store(repo_copy), {});
    repo->store().remove(repo::block_map_object_name(unmapped));
  }
  const std::string dir = work_.sub("pitr");
  auto r =
      walvault(concat(flags, {"--log-level", "info", "restore", "--pgdata", dir, "--target-time",
                              history->target, "--target-action", "promote"}));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("1 without knowledge (first: " + unmapped + " has no block map"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("no block map knowledge: " + unmapped), std::string::npos) << r.err;
  // recovery_prefetch by the rule without maps: off after a direct-I/O restore.
  EXPECT_EQ(read_text(dir + "/postgresql.auto.conf").find("\nrecovery_prefetch = 'off'\n") !=
                std::string::npos,
            takes_direct_io(work_.path()));
  auto pg = start_restored(dir);
  EXPECT_EQ(marker_ids(*pg), "1");
  EXPECT_EQ(table_state(*pg), history->state);
}

// With full-page writes on (the default), the first change of each page
// after the backup carries its image: redo reads almost nothing, so the
// warm-up leaves the pages it only rebuilds to PostgreSQL's own writes
// instead of filling the page cache with them (decisions.md, "PITR: where
// the seconds go"), and still reaches the target.
class PitrWarmUpImagesTest : public PitrWarmUpTest {
 protected:
  static void SetUpTestSuite() { history = make_history(true); }
  static void TearDownTestSuite() { history.reset(); }
};

TEST_F(PitrWarmUpImagesTest, LeavesPagesRebuiltFromImagesColdAndReachesTheTarget) {
  const std::string dir = work_.sub("pitr");
  const std::string out = restore_to_target(dir);
  const std::regex line(
      "warm-up: (\\d+) of (\\d+) blocks redo touches made hot \\((\\d+) of (\\d+) it reads\\)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, line)) << out;
  // The blocks it reads (visibility and free space maps, counted whole) are hot...
  EXPECT_EQ(m[3], m[4]) << out;
  // ...the pages rebuilt from images, most of what it touches, are not.
  EXPECT_LT(2 * std::stoul(m[1]), std::stoul(m[2])) << out;
  EXPECT_NE(out.find("segments complete"), std::string::npos) << out;
  EXPECT_NE(read_text(dir + "/postgresql.auto.conf").find("\nrecovery_prefetch = 'off'\n"),
            std::string::npos);
  // Written around the page cache where the file system has direct I/O.
  if (takes_direct_io(work_.path())) {
    struct stat st;
    ASSERT_EQ(::stat((dir + "/" + history->accounts_path).c_str(), &st), 0);
    EXPECT_LT(2 * resident_bytes(dir + "/" + history->accounts_path),
              static_cast<std::uint64_t>(st.st_size));
  }
  auto pg = start_restored(dir);
  EXPECT_EQ(marker_ids(*pg), "1");
  EXPECT_EQ(table_state(*pg), history->state);
}

}  // namespace
}  // namespace walvault::testing
