// check and metrics against a real PostgreSQL 15 that archives into the
// repository: OK with a fresh backup and WAL, WARNING when the backup is
// older than allowed (CRITICAL past twice the limit), CRITICAL without a backup and when
// archive_command is broken (check --pg forces a WAL switch and waits for it); metrics pass
// `promtool check metrics` and carry the repository's figures.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
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
  // --json: the same verdict, each finding with its own status.
  auto json = walvault(
      concat(flags, {"check", "--json", "--max-wal-age", "1000h", "--max-backup-age", "0s"}));
  EXPECT_EQ(json.status, 2) << json.out << json.err;
  const auto verdict = nlohmann::json::parse(json.out);
  EXPECT_EQ(verdict.at("status"), "CRITICAL");
  EXPECT_EQ(verdict.at("exit_status"), 2);
  std::map<std::string, std::string> by_text;
  for (const auto& finding : verdict.at("findings"))
    by_text[finding.at("text").get<std::string>().substr(0, 8)] = finding.at("status");
  EXPECT_EQ(by_text["last bac"], "CRITICAL") << json.out;
  EXPECT_EQ(by_text["last WAL"], "OK") << json.out;

  // The thresholds decide, not the timing: a limit of 0s is exceeded by any
  // age (CRITICAL, past twice the limit), 1000h by none (OK).
  auto critical = walvault(concat(flags, {"check", "--max-backup-age", "0s"}));
  EXPECT_EQ(critical.status, 2) << critical.out << critical.err;
  EXPECT_TRUE(critical.out.starts_with("WALVAULT CRITICAL - last backup")) << critical.out;
  auto fresh = walvault(concat(flags, {"check", "--max-backup-age", "1000h"}));
  EXPECT_EQ(fresh.status, 0) << fresh.out << fresh.err;
  EXPECT_TRUE(fresh.out.starts_with("WALVAULT OK - last backup")) << fresh.out;
  // The repository's file system against --max-disk-use: any used disk is
  // over 1%, none is over 100%; the default (80) leaves this one alone
  // unless the machine's disk is that full.
  auto disk = walvault(
      concat(flags, {"check", "--json", "--max-backup-age", "1000h", "--max-disk-use", "1"}));
  EXPECT_EQ(disk.status, 1) << disk.out << disk.err;
  EXPECT_NE(disk.out.find("repository disk"), std::string::npos) << disk.out;
  auto roomy = walvault(
      concat(flags, {"check", "--json", "--max-backup-age", "1000h", "--max-disk-use", "100"}));
  EXPECT_EQ(roomy.out.find("repository disk"), std::string::npos) << roomy.out;
  EXPECT_EQ(walvault(concat(flags, {"check", "--max-disk-use", "0"})).status, 2)
      << "a percent outside 1..100 is a usage error";
  auto wal_critical =
      walvault(concat(flags, {"check", "--max-backup-age", "1000h", "--max-wal-age", "0s"}));
  EXPECT_EQ(wal_critical.status, 2) << wal_critical.out << wal_critical.err;
  EXPECT_NE(wal_critical.out.find("last WAL"), std::string::npos) << wal_critical.out;

  // WARNING: an age above the limit and at most twice it. The backup's stop
  // time is known (info --json), so the age during the call is bounded by
  // the clock before and after it; the status is asserted only for a call
  // whose whole span lies in (limit, 2 x limit], with a longer limit again
  // when a loaded machine stretched the call past it.
  auto info = walvault(concat(flags, {"info", "--json"}));
  ASSERT_EQ(info.status, 0) << info.err;
  const auto info_json = nlohmann::json::parse(info.out);
  const std::int64_t stop_us = info_json.at("backups").back().at("stop_time_us");
  const std::string repo_id = info_json.at("repository").at("id");
  auto unix_us = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  bool warned = false;
  for (std::int64_t limit_s = 2; limit_s <= 16 && !warned; limit_s *= 2) {
    const std::int64_t limit_us = limit_s * 1'000'000;
    while (unix_us() - stop_us <= limit_us + 100'000)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::int64_t before = unix_us();
    auto old = walvault(concat(flags, {"check", "--max-backup-age", std::to_string(limit_s) + "s",
                                       "--max-wal-age", "1000h"}));
    const std::int64_t after = unix_us();
    if (before - stop_us <= limit_us || after - stop_us > 2 * limit_us) continue;
    EXPECT_EQ(old.status, 1) << old.out << old.err;
    EXPECT_TRUE(old.out.starts_with("WALVAULT WARNING - last backup")) << old.out;
    warned = true;
  }
  EXPECT_TRUE(warned) << "no check call fitted inside (limit, 2 x limit] for limits up to 16s";

  // Metrics: valid exposition with the repository's figures.
  const std::string prom = work.sub("walvault.prom");
  auto m = walvault(concat(flags, {"metrics", "--textfile", prom}));
  ASSERT_EQ(m.status, 0) << m.err;
  const std::string text = read_text(prom);
  // The exact sample line: name, labels and value (one backup).
  EXPECT_NE(text.find("\nwalvault_backups{repository=\"" + repo_id + "\"} 1\n"), std::string::npos)
      << text;
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
  // Archiving falling behind: the switched segment waits as a .ready file,
  // past a 1 s --max-wal-age after the 3 s wait: named, with its age.
  broken = walvault(concat(
      flags, {"check", "--pg", conninfo(*pg), "--archive-timeout", "3", "--max-wal-age", "1s"}));
  EXPECT_EQ(broken.status, 2) << broken.out << broken.err;
  EXPECT_TRUE(std::regex_search(broken.out,
                                std::regex("[1-9][0-9]* WAL segment\\(s\\) waiting to be archived "
                                           "\\(\\.ready\\), oldest [0-9]+s ago \\(archive_command "
                                           "falling behind\\), limit 1s")))
      << broken.out;
  pg->stop();
}

}  // namespace
}  // namespace walvault::testing
