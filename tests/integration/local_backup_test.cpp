// `walvault backup --local`: the data directory read on the database host
// between pg_backup_start and pg_backup_stop. A real PostgreSQL 15 with
// data checksums, a tablespace and an unlogged table, under pgbench while
// the backup reads; restored to a moment after the backup (PITR), every
// table's rows equal what the source held then. A page corrupted on disk is
// named (file and block) and listed in the record, the backup completing;
// 13, 14 and 18 each take and restore one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/local_backup_cli.h"
#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

// Row count and md5 of every row (in a fixed order) of each table.
std::map<std::string, std::string> table_digests(PgCluster& pg,
                                                 const std::vector<std::string>& tables) {
  std::map<std::string, std::string> out;
  for (const auto& t : tables)
    out[t] = pg.sql(
        "select count(*) || ' ' || coalesce(md5(string_agg(x::text, ',' order by "
        "x::text)), '-') from " +
        t + " x");
  return out;
}

// start_archiving_cluster's server, initialised with data checksums.
std::unique_ptr<PgCluster> start_checksummed_cluster(const std::string& archive_command,
                                                     int major = 15) {
  return start_archiving_cluster(archive_command, major, {"--data-checksums"});
}

TEST(LocalBackupTest, UnderPgbenchWithTablespaceAndUnloggedTableRestoresToAMoment) {
  TempDir work("wv-local");
  const std::string repo = work.sub("repo");
  const auto flags = repo_flags(repo, work.sub("spool"));
  ASSERT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
  auto pg = start_checksummed_cluster(archive_push_command(flags, 2));
  const std::string location = work.sub("ts");
  fs::create_directories(location);
  give_to_test_user(location);
  pg->sql("create tablespace ts location '" + location + "'");
  pg->sql(
      "create table in_ts tablespace ts as select g as id, md5(g::text) as v "
      "from generate_series(1, 20000) g");
  pg->sql("create unlogged table scratch as select generate_series(1, 1000) as id");
  pg->pgbench_init(2);

  // pgbench writes while the backup reads.
  std::thread load([&pg] { pg->pgbench_run(4, 2); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto b = local_backup(flags, *pg);
  load.join();
  ASSERT_EQ(b.status, 0) << b.err;
  const std::string label = backup_label_of(b.out);
  ASSERT_FALSE(label.empty()) << b.out;
  EXPECT_EQ(b.err.find("checksum"), std::string::npos) << b.err;
  const auto record = record_of(flags, label);
  EXPECT_EQ(record.value("source", ""), "local");
  EXPECT_FALSE(record.contains("page_errors"));
  EXPECT_NE(record.value("backup_label", "").find("START TIMELINE: 1"), std::string::npos);
  EXPECT_NE(record.value("tablespace_map", "").find(location), std::string::npos);

  // The moment to restore to, then changes after it.
  const std::vector<std::string> tables = {"pgbench_accounts", "pgbench_branches",
                                           "pgbench_tellers", "pgbench_history", "in_ts"};
  const auto wanted = table_digests(*pg, tables);
  const std::string moment = moment_between_commits(*pg);
  pg->sql("delete from in_ts where id % 2 = 0");
  pg->sql("insert into pgbench_history select * from pgbench_history");
  switch_and_wait(*pg);

  const std::string pgdata = work.sub("restored");
  auto r = walvault(
      concat(flags, {"restore", "--pgdata", pgdata, "--target-time", moment, "--target-action",
                     "promote", "--tablespace-map", location + "=" + work.sub("ts2")}));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("backup: " + label), std::string::npos) << r.out;
  // What the data directory had and a backup must not: the server's pid
  // file, WAL, relation data of the unlogged table.
  EXPECT_FALSE(fs::exists(pgdata + "/postmaster.pid"));
  EXPECT_TRUE(fs::is_directory(pgdata + "/pg_wal/archive_status"));
  EXPECT_TRUE(fs::is_directory(pgdata + "/pg_stat_tmp"));
  const std::string scratch = pg->sql("select pg_relation_filepath('scratch')");
  EXPECT_TRUE(fs::exists(pgdata + "/" + scratch + "_init")) << scratch;
  EXPECT_FALSE(fs::exists(pgdata + "/" + scratch)) << scratch;
  auto restored = start_restored(pgdata);
  EXPECT_EQ(table_digests(*restored, tables), wanted);
  EXPECT_EQ(restored->sql("select count(*) from scratch"), "0");
  EXPECT_EQ(restored->sql("select pg_tablespace_location(oid) from pg_tablespace where "
                          "spcname = 'ts'"),
            work.sub("ts2"));
  restored->stop();
  pg->stop();
}

// A page damaged on disk (a stopped server, one byte of block 1 flipped) is
// named with its file and block; the backup completes and lists it.
TEST(LocalBackupTest, CorruptPageIsNamedAndListed) {
  TempDir work("wv-local-bad");
  const std::string repo = work.sub("repo");
  const auto flags = repo_flags(repo, work.sub("spool"));
  ASSERT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
  auto pg = start_checksummed_cluster(archive_push_command(flags, 2));
  pg->sql(
      "create table victim with (autovacuum_enabled = off) as "
      "select g as id, repeat('x', 200) as pad from generate_series(1, 2000) g");
  pg->sql("checkpoint");
  const std::string file = pg->sql("select pg_relation_filepath('victim')");
  pg->stop();
  {
    std::fstream f(pg->data_dir() + "/" + file, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f);
    f.seekp(8192 + 5000);
    f.put('\x7f');
  }
  pg->start();
  auto b = local_backup(flags, *pg);
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_NE(b.err.find(file + " block 1"), std::string::npos) << b.err;
  const std::string label = backup_label_of(b.out);
  const auto record = record_of(flags, label);
  ASSERT_TRUE(record.contains("page_errors")) << record.dump();
  EXPECT_EQ(record.at("page_errors"), nlohmann::json::array({file + " block 1"}));
  pg->stop();
}

// Refusals: --pgdata of another cluster (exit 8), --local without --pgdata (2).
TEST(LocalBackupTest, RefusesAnotherClustersDataDirectory) {
  TempDir work("wv-local-other");
  const std::string repo = work.sub("repo");
  const auto flags = repo_flags(repo, work.sub("spool"));
  ASSERT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
  auto pg = start_archiving_cluster(archive_push_command(flags, 2));
  PgCluster other({.major = 15});
  other.init();
  auto r = walvault(
      concat(flags, {"backup", "--local", "--pgdata", other.data_dir(), "--pg", conninfo(*pg)}));
  EXPECT_EQ(r.status, 8) << r.err;
  EXPECT_NE(r.err.find(other.data_dir()), std::string::npos) << r.err;
  EXPECT_EQ(walvault(concat(flags, {"backup", "--local", "--pg", conninfo(*pg)})).status, 2);
  EXPECT_EQ(walvault(concat(flags, {"backup", "list"})).out, "no backups\n");
  pg->stop();
}

class LocalBackupMajorTest : public ::testing::TestWithParam<int> {};

// Each other major: a local backup restores (immediate target) with its rows.
TEST_P(LocalBackupMajorTest, BackupAndRestore) {
  const int major = GetParam();
  if (auto why = missing_major(major); !why.empty()) GTEST_SKIP() << why;
  TempDir work("wv-local-major");
  const std::string repo = work.sub("repo");
  const auto flags = repo_flags(repo, work.sub("spool"));
  ASSERT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
  auto pg = start_checksummed_cluster(archive_push_command(flags, 2), major);
  pg->sql("create table t as select generate_series(1, 5000) as id");
  auto b = local_backup(flags, *pg);
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(b.err.find("checksum"), std::string::npos) << b.err;
  const std::string pgdata = work.sub("restored");
  auto r = walvault(concat(
      flags, {"restore", "--pgdata", pgdata, "--target-immediate", "--target-action", "promote"}));
  ASSERT_EQ(r.status, 0) << r.err;
  auto restored = start_restored(pgdata, major);
  EXPECT_EQ(restored->sql("select count(*) from t"), "5000");
  restored->stop();
  pg->stop();
}

// 13 and 14 take the pg_start_backup path, 18 the newest; 16 and 17 share 15's
// pg_backup_start path (each passed when this was written; left out to keep CI short).
INSTANTIATE_TEST_SUITE_P(Majors, LocalBackupMajorTest, ::testing::Values(13, 14, 18));

}  // namespace
}  // namespace walvault::testing
