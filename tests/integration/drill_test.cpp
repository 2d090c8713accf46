// walvault drill, history and the last verify/drill in info and metrics,
// against a real PostgreSQL 15 that archives into the repository: a drill of
// a good repository passes its check and is recorded (history, info --json,
// metrics through promtool); a check with a wrong expected value fails naming
// the check; a segment the backup needs to become consistent, lost from the
// repository, fails the drill naming that segment (recovery when only the
// segment's data is gone, the restore plan when its metadata is gone too).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kMarkerIds[] =
    "select coalesce(string_agg(id::text, ',' order by id), '') from marker";

// The repository's history, oldest first.
nlohmann::json history_json(const std::vector<std::string>& flags) {
  auto h = walvault(concat(flags, {"history", "--json"}));
  EXPECT_EQ(h.status, 0) << h.err;
  return nlohmann::json::parse(h.out);
}

// Scratch directories are made under $TMPDIR for the test (owned by the test user).
std::vector<std::string> drill_args(const std::string& scratch) {
  return {"drill", "--scratch", scratch, "--pg-bin", pg_bin_dir(15)};
}

TEST(DrillTest, PassesOnAGoodRepositoryAndIsRecorded) {
  ArchivingRepo a("wv-drill");
  const TempDir& work = a.work;
  const std::string& repo = a.repo;
  const auto& flags = a.flags;
  auto& pg = a.pg;
  insert_marker(*pg, 1);
  insert_marker(*pg, 2);
  auto b = walvault(concat(flags, {"backup", "--pg", conninfo(*pg)}));
  ASSERT_EQ(b.status, 0) << b.err;
  const std::string label = backup_label_of(b.out);
  ASSERT_FALSE(label.empty()) << b.out;
  insert_marker(*pg, 3);  // after the backup: only WAL replay brings it back
  switch_and_wait(*pg);
  pg->stop();
  auto v = walvault(concat(flags, {"verify"}));
  ASSERT_EQ(v.status, 0) << v.out << v.err;

  // A wrong expected value fails the drill, naming the check.
  auto wrong = walvault(concat(
      flags, concat(drill_args(work.sub("scratch1")), {"--check", kMarkerIds, "--expect", "1,2"})));
  EXPECT_EQ(wrong.status, 11) << wrong.out << wrong.err;  // postgres: a check failed
  EXPECT_NE(wrong.err.find("walvault: error: drill failed: check 1 (" + std::string(kMarkerIds) +
                           ") failed: got '1,2,3', expected '1,2'"),
            std::string::npos)
      << wrong.out << wrong.err;
  EXPECT_EQ(line_count(wrong.err), 1) << wrong.err;
  EXPECT_FALSE(fs::exists(work.sub("scratch1"))) << "scratch directory left behind";

  // The right one passes, within the target RTO, and --keep leaves the
  // stopped server's directory.
  auto good = walvault(concat(flags, concat(drill_args(work.sub("scratch2")),
                                            {"--check", kMarkerIds, "--expect", "1,2,3", "--check",
                                             "select count(*) from marker", "--expect", "3",
                                             "--target-rto", "10m", "--keep"})));
  ASSERT_EQ(good.status, 0) << good.out << good.err;
  EXPECT_NE(good.out.find("drill: check 1 (" + std::string(kMarkerIds) + ") passed: 1,2,3\n"),
            std::string::npos)
      << good.out;
  EXPECT_NE(good.out.find("drill passed: backup " + label + ": restore "), std::string::npos)
      << good.out;
  EXPECT_NE(good.out.find("drill: pg_verifybackup: backup successfully verified"),
            std::string::npos)
      << good.out;
  EXPECT_TRUE(fs::exists(work.sub("scratch2") + "/data/PG_VERSION"));
  EXPECT_FALSE(fs::exists(work.sub("scratch2") + "/data/postmaster.pid")) << "server still running";
  EXPECT_TRUE(fs::exists(work.sub("scratch2") + "/data/pg_wal/00000002.history"))
      << "the restored server was not promoted";
  EXPECT_FALSE(fs::exists(repo + "/wal/file/00000002.history"))
      << "the drill's server archived into the repository";

  // A target RTO the drill cannot meet fails it.
  auto slow =
      walvault(concat(flags, concat(drill_args(work.sub("scratch3")), {"--target-rto", "0s"})));
  EXPECT_EQ(slow.status, 11) << slow.out << slow.err;  // postgres: --target-rto exceeded
  EXPECT_NE(slow.err.find("drill failed: target RTO exceeded: took "), std::string::npos)
      << slow.err;

  // history: backup, verify, then the three drills, oldest first.
  const auto h = history_json(flags);
  ASSERT_EQ(h.size(), 5u) << h.dump(1);
  const std::vector<std::pair<std::string, std::string>> expected = {{"backup", "ok"},
                                                                     {"verify", "ok"},
                                                                     {"drill", "failed"},
                                                                     {"drill", "ok"},
                                                                     {"drill", "failed"}};
  for (std::size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].at("command"), expected[i].first) << i;
    EXPECT_EQ(h[i].at("outcome"), expected[i].second) << i;
    if (i > 0) {
      EXPECT_GE(h[i].at("start_us"), h[i - 1].at("start_us"));
    }
  }
  EXPECT_EQ(h[0].at("extra").at("label"), label);
  EXPECT_GT(h[0].at("bytes").get<std::uint64_t>(), 0u);
  EXPECT_EQ(h[1].at("extra").at("errors"), 0);
  EXPECT_EQ(h[1].at("extra").at("read_data"), false);
  const auto& drill = h[3];
  EXPECT_EQ(drill.at("extra").at("label"), label);
  EXPECT_EQ(drill.at("extra").at("checks_passed"), 2);
  EXPECT_EQ(drill.at("extra").at("checks_failed"), 0);
  EXPECT_EQ(drill.at("extra").at("rto_s"), 600);
  const double restore_s = drill.at("extra").at("restore_s").get<double>();
  const double recovery_s = drill.at("extra").at("recovery_s").get<double>();
  const double first_query_s = drill.at("extra").at("first_query_s").get<double>();
  const double total_s = drill.at("extra").at("total_s").get<double>();
  EXPECT_GT(restore_s, 0);
  EXPECT_LE(restore_s, recovery_s);
  EXPECT_LE(recovery_s, first_query_s);
  EXPECT_LE(first_query_s, total_s);
  EXPECT_TRUE(drill.at("extra").at("reason").is_null());
  EXPECT_NE(h[2].at("extra").at("reason").get<std::string>().find("check 1 ("), std::string::npos);
  EXPECT_EQ(h[2].at("extra").at("checks_failed"), 1);
  auto text = walvault(concat(flags, {"history", "--since", "1h"}));
  EXPECT_EQ(text.status, 0) << text.err;
  EXPECT_EQ(line_count(text.out), 6) << text.out;  // header + 5

  // info and metrics show the last verify and the last drill (the failed one).
  auto info = walvault(concat(flags, {"info", "--json"}));
  ASSERT_EQ(info.status, 0) << info.err;
  const auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j.at("last_verify").at("outcome"), "ok") << info.out;
  EXPECT_EQ(j.at("last_drill").at("outcome"), "failed") << info.out;
  EXPECT_EQ(j.at("last_drill").at("start_us"), h[4].at("start_us"));
  EXPECT_EQ(j.at("last_drill").at("extra").at("total_s"), h[4].at("extra").at("total_s"));
  const std::string prom = work.sub("walvault.prom");
  auto m = walvault(concat(flags, {"metrics", "--textfile", prom}));
  ASSERT_EQ(m.status, 0) << m.err;
  const std::string metrics = read_text(prom);
  for (const char* name :
       {"walvault_last_verify_timestamp_seconds", "walvault_last_drill_timestamp_seconds",
        "walvault_last_drill_recovery_seconds"})
    EXPECT_NE(metrics.find(std::string(name) + "{repository=\""), std::string::npos) << name;
  EXPECT_NE(metrics.find("walvault_last_verify_success{repository=\"" +
                         j.at("repository").at("id").get<std::string>() + "\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("walvault_last_drill_success{repository=\"" +
                         j.at("repository").at("id").get<std::string>() + "\"} 0\n"),
            std::string::npos)
      << metrics;
  ASSERT_TRUE(fs::exists("/usr/bin/promtool")) << "run scripts/setup";
  auto lint = run_shell("promtool check metrics < " + prom);
  EXPECT_EQ(lint.status, 0) << lint.out << lint.err << metrics;

  // As root, the server runs as --run-as (default postgres) in a directory
  // handed to it, with the restore_command tried as that user first.
  if (running_as_root()) {
    auto as_root = run(concat({walvault_binary_for_server()},
                              concat(flags, concat(drill_args(work.sub("scratch4")),
                                                   {"--check", kMarkerIds, "--expect", "1,2,3"}))),
                       {{"WALVAULT_CONFIG", "/dev/null"}});
    EXPECT_EQ(as_root.status, 0) << as_root.out << as_root.err;
    EXPECT_NE(as_root.out.find("drill passed: "), std::string::npos) << as_root.out;
    EXPECT_FALSE(fs::exists(work.sub("scratch4")));
  }
}

// A drill to a time is promoted the way `restore --start` promotes: paused at
// the target, then pg_ctl promote, without an end-of-recovery checkpoint; the
// rows are those up to the target.
TEST(DrillTest, ToATimeIsPromotedAtTheTargetWithoutACheckpoint) {
  ArchivingRepo a("wv-drill-time");
  auto b = walvault(concat(a.flags, {"backup", "--pg", conninfo(*a.pg)}));
  ASSERT_EQ(b.status, 0) << b.err;
  insert_marker(*a.pg, 1);
  const std::string target = moment_between_commits(*a.pg);
  insert_marker(*a.pg, 2);
  switch_and_wait(*a.pg);
  const std::string scratch = a.work.sub("scratch");
  auto d = walvault(
      concat(a.flags, concat(drill_args(scratch), {"--target-time", target, "--check", kMarkerIds,
                                                   "--expect", "1", "--keep"})));
  ASSERT_EQ(d.status, 0) << d.out << d.err;
  EXPECT_NE(d.out.find("drill passed: "), std::string::npos) << d.out;
  const std::string log = read_text(scratch + "/server.log");
  EXPECT_NE(log.find("received promote request"), std::string::npos) << log;
  EXPECT_EQ(log.find("checkpoint starting: end-of-recovery"), std::string::npos) << log;
}

TEST(DrillTest, NamesASegmentTheBackupNeedsThatIsMissing) {
  ArchivingRepo a("wv-drill-missing");
  const TempDir& work = a.work;
  const std::string& repo = a.repo;
  const auto& flags = a.flags;
  auto& pg = a.pg;
  pg->pgbench_init(10);  // enough to copy that WAL switches land inside the backup
  // WAL switches while the backup runs: its stop segment is past its start.
  std::atomic<bool> done{false};
  std::thread switcher([&] {
    PgCluster& server = *pg;
    for (int id = 100; !done; ++id) {
      insert_marker(server, id);
      server.sql("select pg_switch_wal()");
    }
  });
  auto b = walvault(concat(flags, {"backup", "--pg", conninfo(*pg)}));
  done = true;
  switcher.join();
  ASSERT_EQ(b.status, 0) << b.err;
  switch_and_wait(*pg);
  pg->stop();
  auto list = walvault(concat(flags, {"backup", "list", "--json"}));
  ASSERT_EQ(list.status, 0) << list.err;
  const auto record = nlohmann::json::parse(list.out).at(0);
  const std::string start = record.at("start_lsn"), stop = record.at("stop_lsn");
  // Segment numbers (16 MiB segments): the high part and the top byte of the low part.
  auto segno = [](const std::string& lsn) {
    const auto slash = lsn.find('/');
    return std::stoull(lsn.substr(0, slash), nullptr, 16) * 256 +
           (std::stoull(lsn.substr(slash + 1), nullptr, 16) >> 24);
  };
  ASSERT_GT(segno(stop), segno(start)) << "the backup did not span a WAL switch: " << list.out;
  char name[32];
  std::snprintf(name, sizeof name, "00000001%08llX%08llX", (segno(start) + 1) / 256,
                (segno(start) + 1) % 256);
  const std::string lost = name;
  const std::string dir = lost.substr(0, 16) + "/" + lost;

  // Only the segment's data gone: the plan holds, recovery stops there.
  ASSERT_TRUE(fs::remove(repo + "/wal/seg/" + dir));
  auto d = walvault(concat(flags, drill_args(work.sub("scratch1"))));
  EXPECT_EQ(d.status, 4) << d.out << d.err;
  EXPECT_NE(d.err.find("walvault: error: drill failed: recovery did not finish: WAL segment " +
                       lost + " missing from the archive"),
            std::string::npos)
      << d.out << d.err;
  EXPECT_EQ(line_count(d.err), 1) << d.err;
  EXPECT_FALSE(fs::exists(work.sub("scratch1")));

  // Its metadata gone too: the restore plan refuses, naming it.
  ASSERT_TRUE(fs::remove(repo + "/wal/meta/" + dir));
  auto p = walvault(concat(flags, drill_args(work.sub("scratch2"))));
  EXPECT_EQ(p.status, 4) << p.out << p.err;
  EXPECT_NE(p.err.find("walvault: error: drill failed: restore plan: WAL segment " + lost +
                       " is missing"),
            std::string::npos)
      << p.out << p.err;

  // Both failures are recorded, with their reasons, and info shows the last.
  const auto h = history_json(flags);
  ASSERT_EQ(h.size(), 3u) << h.dump(1);
  EXPECT_EQ(h[1].at("command"), "drill");
  EXPECT_EQ(h[1].at("outcome"), "failed");
  EXPECT_NE(h[1].at("detail").get<std::string>().find(lost), std::string::npos) << h.dump(1);
  EXPECT_NE(h[2].at("extra").at("reason").get<std::string>().find(lost), std::string::npos);
  auto info = walvault(concat(flags, {"info"}));
  EXPECT_NE(info.out.find("last drill: failed at "), std::string::npos) << info.out;
}

// Other majors (server binaries from npm, scripts/fetch-pg-majors): a drill
// of a backup plus WAL written after it restores with that major's binaries,
// replays to the end of the archive and passes its check.
class OtherMajorDrillTest : public ::testing::TestWithParam<int> {};

TEST_P(OtherMajorDrillTest, PassesItsCheck) {
  const int major = GetParam();
  if (auto why = missing_major(major); !why.empty()) GTEST_SKIP() << why;
  TempDir work("wv-drill-major");
  const auto flags = repo_flags(work.sub("repo"), work.sub("spool"));
  ASSERT_EQ(walvault(concat(flags, {"repo", "init"})).status, 0);
  auto pg = start_archiving_cluster(archive_push_command(flags, 2), major);
  create_marker_table(*pg);
  insert_marker(*pg, 1);
  auto b = walvault(concat(flags, {"backup", "--pg", conninfo(*pg)}));
  ASSERT_EQ(b.status, 0) << b.err;
  const std::string label = backup_label_of(b.out);
  insert_marker(*pg, 2);  // after the backup: only WAL replay brings it back
  switch_and_wait(*pg);
  pg->stop();
  auto d = walvault(concat(flags, {"drill", "--scratch", work.sub("scratch"), "--pg-bin",
                                   pg_bin_dir(major), "--check", kMarkerIds, "--expect", "1,2"}));
  ASSERT_EQ(d.status, 0) << d.out << d.err;
  EXPECT_NE(d.out.find("drill passed: backup " + label + ": restore "), std::string::npos) << d.out;
}

INSTANTIATE_TEST_SUITE_P(DrillMajors, OtherMajorDrillTest, ::testing::Values(13, 14, 16, 17, 18),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "pg" + std::to_string(info.param);
                         });
}  // namespace
}  // namespace walvault::testing
