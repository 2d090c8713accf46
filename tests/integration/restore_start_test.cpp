// restore --start (ops/start_restored.h): the restored server is started and
// the command returns when it accepts writes. The restore writes
// recovery_target_action = pause and requests promotion at once, so that the
// target's pause ends in a promotion without an end-of-recovery checkpoint.
// The server holds exactly the rows committed up to the target, although the
// request is made while replay still has WAL to go.
#include <gtest/gtest.h>

#include <filesystem>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

// A source cluster of `major` archiving into a repository, one backup, WAL
// that takes replay a moment after the backup is consistent, marker 1, the
// target, marker 2.
struct Source {
  explicit Source(int major)
      : work("wv-start"), repo(work.sub("repo")), flags(repo_flags(repo, work.sub("spool"))) {
    EXPECT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
    pg = start_archiving_cluster(archive_push_command(flags, 2), major);
    create_marker_table(*pg);
    auto b = walvault(concat(flags, {"backup", "--pg", conninfo(*pg)}));
    EXPECT_EQ(b.status, 0) << b.err;
    pg->sql("create table filler as select g, md5(g::text) as m from generate_series(1, 300000) g");
    insert_marker(*pg, 1);
    target = moment_between_commits(*pg);
    insert_marker(*pg, 2);
    switch_and_wait(*pg);
  }

  // restore --start into `dir` for a server on `restored`'s port, socket
  // and log, then `restored` takes the server on.
  CommandResult restore_and_start(PgCluster& restored, const std::string& dir,
                                  const std::string& action,
                                  const std::vector<std::string>& extra = {}) {
    auto r = walvault(concat(concat(flags, {"restore",
                                            "--pgdata",
                                            dir,
                                            "--target-time",
                                            target,
                                            "--target-action",
                                            action,
                                            "--start",
                                            "--pg-bin",
                                            restored.bin_dir(),
                                            "--server-log",
                                            restored.log_file(),
                                            "--recovery-option",
                                            "port=" + std::to_string(restored.port()),
                                            "--recovery-option",
                                            "unix_socket_directories=" + restored.socket_dir(),
                                            "--recovery-option",
                                            "archive_mode=off",
                                            "--recovery-option",
                                            "log_checkpoints=on",
                                            "--start-timeout",
                                            "300s"}),
                             extra));
    if (fs::exists(dir + "/postmaster.pid")) restored.attach(dir);
    return r;
  }

  TempDir work;
  std::string repo;
  std::vector<std::string> flags;
  std::unique_ptr<PgCluster> pg;
  std::string target;
};

class RestoreStart : public ::testing::TestWithParam<int> {};

TEST_P(RestoreStart, ReturnsWritableWithTheRowsUpToTheTarget) {
  const int major = GetParam();
  if (auto why = missing_major(major); !why.empty()) GTEST_SKIP() << why;
  Source source(major);
  PgCluster::Options o;
  o.major = major;
  PgCluster restored(o);  // its port, socket directory and log; restore makes the directory
  const std::string dir = source.work.sub("restored");
  // A value with a quote and a backslash reaches the server as given.
  const std::string name = "wv's \\ start";
  auto r = source.restore_and_start(restored, dir, "promote",
                                    {"--recovery-option", "cluster_name=" + name});
  const std::string log = read_text(restored.log_file());
  ASSERT_EQ(r.status, 0) << r.out << r.err << log;
  EXPECT_NE(r.out.find("server accepts connections after "), std::string::npos) << r.out;
  // Writable the moment the command returns.
  EXPECT_EQ(restored.sql("select pg_is_in_recovery()"), "f");
  restored.sql("create table written_after_start(x int)");
  EXPECT_EQ(marker_ids(restored), "1");
  EXPECT_EQ(restored.sql("select count(*) from filler"), "300000");
  EXPECT_EQ(restored.sql("show cluster_name"), name);
  EXPECT_NE(r.out.find("promoted at the target: no end-of-recovery checkpoint"), std::string::npos)
      << r.out;
  EXPECT_NE(log.find("received promote request"), std::string::npos) << log;
  EXPECT_EQ(log.find("checkpoint starting: end-of-recovery"), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(Majors, RestoreStart, ::testing::Values(13, 15, 18),
                         [](const auto& info) { return "pg" + std::to_string(info.param); });

// With pause the command returns once the server takes connections; it is
// read-only and pauses at the target. Without a target it returns writable at
// the end of the archive. Without pg_ctl nothing is written.
TEST(RestoreStartPg15, PauseIsReadOnlyAtTheTargetLatestIsWritableNoPgCtlWritesNothing) {
  Source source(15);
  PgCluster restored(PgCluster::Options{});
  const std::string dir = source.work.sub("restored");
  auto r = source.restore_and_start(restored, dir, "pause");
  ASSERT_EQ(r.status, 0) << r.out << r.err << read_text(restored.log_file());
  EXPECT_NE(r.out.find("read-only: recovery goes on to the target and pauses there"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(restored.sql("select pg_is_in_recovery()"), "t");
  std::string paused;
  for (int i = 0; i < 600 && paused != "t"; ++i) {
    paused = restored.sql("select pg_is_wal_replay_paused()");
    if (paused != "t") std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(paused, "t") << read_text(restored.log_file());
  EXPECT_EQ(marker_ids(restored), "1");
  EXPECT_EQ(restored.sql("select count(*) from pg_stat_activity where backend_type = 'startup'"),
            "1");

  // Without a target there is no pause: the command waits for the end of
  // the archive and PostgreSQL's own end of recovery.
  PgCluster latest(PgCluster::Options{});
  const std::string latest_dir = source.work.sub("latest");
  auto l = walvault(concat(
      source.flags,
      {"restore", "--pgdata", latest_dir, "--start", "--pg-bin", latest.bin_dir(), "--server-log",
       latest.log_file(), "--recovery-option", "port=" + std::to_string(latest.port()),
       "--recovery-option", "unix_socket_directories=" + latest.socket_dir(), "--recovery-option",
       "archive_mode=off", "--start-timeout", "300s"}));
  if (fs::exists(latest_dir + "/postmaster.pid")) latest.attach(latest_dir);
  ASSERT_EQ(l.status, 0) << l.out << l.err << read_text(latest.log_file());
  EXPECT_NE(l.out.find(", writes after "), std::string::npos) << l.out;
  EXPECT_EQ(l.out.find("promoted at the target"), std::string::npos) << l.out;
  EXPECT_EQ(latest.sql("select pg_is_in_recovery()"), "f");
  EXPECT_EQ(marker_ids(latest), "1,2");

  const std::string other = source.work.sub("other");
  auto bad =
      walvault(concat(source.flags, {"restore", "--pgdata", other, "--target-time", source.target,
                                     "--start", "--pg-bin", source.work.sub("no-bin")}));
  EXPECT_EQ(bad.status, 2) << bad.out << bad.err;
  EXPECT_EQ(line_count(bad.err), 1) << bad.err;
  EXPECT_NE(bad.err.find("no-bin/pg_ctl not found (give --pg-bin)"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(other));

  // Options that cannot be taken are refused before anything is written.
  const std::vector<std::vector<std::string>> refused = {
      {"--pg-bin", "/usr/lib/postgresql/15/bin"},  // without --start
      {"--start", "--target-action", "shutdown", "--target-time", source.target},
      {"--recovery-option", "=5433"},
      {"--recovery-option", "port 5433"},
      {"--recovery-option", "recovery_target_lsn=0/1"},
      {"--recovery-option", "restore_command=cp /x %p"},
  };
  for (const auto& extra : refused) {
    auto r = walvault(concat(concat(source.flags, {"restore", "--pgdata", other}), extra));
    EXPECT_EQ(r.status, 2) << extra.back() << ": " << r.out << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_FALSE(fs::exists(other)) << extra.back();
  }
}

}  // namespace
}  // namespace walvault::testing
