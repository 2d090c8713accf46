// check and metrics against a real PostgreSQL 15 that archives into the
// repository: OK with a fresh backup and WAL, WARNING when the backup is
// older than allowed, CRITICAL without a backup and when archive_command is
// broken (check --pg forces a WAL switch and waits for it); metrics pass
// `promtool check metrics` and carry the repository's figures.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

TEST(MonitorTest, CheckExitStatusesAndMetrics) {
  TempDir work("wv-monitor");
  const std::string repo = work.sub("repo");
  const auto flags = repo_flags(repo, work.sub("spool"));
  ASSERT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
  auto pg = start_archiving_cluster(archive_push_command(flags, 2));

  // No backup yet: CRITICAL.
  switch_and_wait(*pg);
  auto none = walvault(concat(flags, {"check"}));
  EXPECT_EQ(none.status, 2) << none.out << none.err;
  EXPECT_TRUE(none.out.starts_with("WALVAULT CRITICAL - no backup")) << none.out;
  EXPECT_EQ(line_count(none.out), 1);

  auto b = walvault(concat(flags, {"backup", "--pg", conninfo(*pg)}));
  ASSERT_EQ(b.status, 0) << b.err;
  auto ok = walvault(concat(flags, {"check", "--pg", conninfo(*pg)}));
  EXPECT_EQ(ok.status, 0) << ok.out << ok.err;
  EXPECT_TRUE(ok.out.starts_with("WALVAULT OK - archive_command works")) << ok.out;
  EXPECT_NE(ok.out.find("; last backup "), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("archive_command works"), std::string::npos) << ok.out;

  // A backup older than allowed: WARNING (and CRITICAL past twice the limit).
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  auto old = walvault(concat(flags, {"check", "--max-backup-age", "2s"}));
  EXPECT_EQ(old.status, 1) << old.out << old.err;
  EXPECT_TRUE(old.out.starts_with("WALVAULT WARNING - last backup")) << old.out;
  auto older = walvault(concat(flags, {"check", "--max-backup-age", "1s"}));
  EXPECT_EQ(older.status, 2) << older.out << older.err;

  // Metrics: valid exposition with the repository's figures.
  const std::string prom = work.sub("walvault.prom");
  auto m = walvault(concat(flags, {"metrics", "--textfile", prom}));
  ASSERT_EQ(m.status, 0) << m.err;
  const std::string text = read_text(prom);
  EXPECT_NE(text.find("walvault_backups{repository=\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("walvault_last_archived_wal_timestamp_seconds"), std::string::npos);
  // promtool comes with Debian's prometheus package (scripts/setup).
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/promtool")) << "run scripts/setup";
  auto lint = run_shell("promtool check metrics < " + prom);
  EXPECT_EQ(lint.status, 0) << lint.out << lint.err << text;

  // A broken archive_command: check --pg forces a switch, the segment never
  // arrives, CRITICAL naming it.
  pg->sql("alter system set archive_command = 'false'");
  pg->sql("select pg_reload_conf()");
  pg->sql("create table churn as select generate_series(1, 1000) g");
  auto broken = walvault(concat(flags, {"check", "--pg", conninfo(*pg), "--archive-timeout", "3"}));
  EXPECT_EQ(broken.status, 2) << broken.out << broken.err;
  EXPECT_NE(broken.out.find("was not archived within 3s"), std::string::npos) << broken.out;
  pg->stop();
}

}  // namespace
}  // namespace walvault::testing
