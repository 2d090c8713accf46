// pg/server_control.h: where a major's programs are looked for, the command
// lines the drill runs, the restore_command placeholders and what is read
// from a server log.
#include <gtest/gtest.h>

#include <cstring>

#include "pg/server_control.h"

namespace walvault::pg {
namespace {

using Argv = std::vector<std::string>;

TEST(ServerBinDir, DebianDirectoryOfTheMajorUnlessGiven) {
  EXPECT_EQ(server_bin_dir(150004, ""), "/usr/lib/postgresql/15/bin");
  EXPECT_EQ(server_bin_dir(130021, ""), "/usr/lib/postgresql/13/bin");
  EXPECT_EQ(server_bin_dir(180000, ""), "/usr/lib/postgresql/18/bin");
  EXPECT_EQ(server_bin_dir(150004, "/opt/pg/bin"), "/opt/pg/bin");
}

TEST(ServerArgv, PgCtlAndVerifybackup) {
  EXPECT_EQ(pg_ctl_start_argv("/b", "/s/data", "/s/server.log", 42),
            (Argv{"/b/pg_ctl", "start", "-w", "-t", "42", "-D", "/s/data", "-l", "/s/server.log"}));
  EXPECT_EQ(pg_ctl_stop_argv("/b", "/s/data", StopMode::kFast),
            (Argv{"/b/pg_ctl", "stop", "-D", "/s/data", "-m", "fast", "-w", "-t", "60"}));
  EXPECT_EQ(pg_ctl_stop_argv("/b", "/s/data", StopMode::kImmediate),
            (Argv{"/b/pg_ctl", "stop", "-D", "/s/data", "-m", "immediate", "-w"}));
  EXPECT_EQ(pg_ctl_promote_argv("/b", "/s/data"),
            (Argv{"/b/pg_ctl", "promote", "-W", "-D", "/s/data"}));
  EXPECT_EQ(verifybackup_argv("/b", "/s/data"),
            (Argv{"/b/pg_verifybackup", "--no-parse-wal", "/s/data"}));
}

TEST(ExpandRestoreCommand, Placeholders) {
  EXPECT_EQ(
      expand_restore_command("walvault archive-get %f %p", "000000010000000000000003", "/s/t"),
      "walvault archive-get 000000010000000000000003 /s/t");
  EXPECT_EQ(expand_restore_command("cp /a/%f \"%p\" && echo 100%%", "F", "P"),
            "cp /a/F \"P\" && echo 100%");
  EXPECT_EQ(expand_restore_command("x %r %", "F", "P"), "x %r %");
}

TEST(ServerLog, LastFatalAndLastRestored) {
  const std::string log =
      "LOG:  starting PostgreSQL 15\n"
      "LOG:  restored log file \"000000010000000000000002\" from archive\n"
      "FATAL:  first\n"
      "LOG:  restored log file \"000000010000000000000003\" from archive\n"
      "2026-12-06 PANIC:   could not locate a valid checkpoint record\n"
      "LOG:  startup process was terminated\n";
  EXPECT_EQ(last_fatal(log), "could not locate a valid checkpoint record");
  EXPECT_EQ(last_restored_segment(log), "000000010000000000000003");
  EXPECT_EQ(last_fatal("LOG:  fine\n"), "");
  EXPECT_EQ(last_restored_segment("LOG:  fine\n"), "");
}

TEST(ControlFile, ClusterState) {
  Bytes control(8192, 0);
  const auto with_state = [&](std::int32_t state) {
    std::memcpy(control.data() + 16, &state, sizeof state);
    return parse_cluster_state(control);
  };
  EXPECT_EQ(with_state(5), ClusterState::kInArchiveRecovery);
  EXPECT_EQ(with_state(6), ClusterState::kInProduction);
  EXPECT_EQ(with_state(1), ClusterState::kOther);  // shut down
  EXPECT_EQ(with_state(4), ClusterState::kOther);  // crash recovery
  EXPECT_EQ(parse_cluster_state(ByteView(control.data(), 19)), ClusterState::kUnknown);
  EXPECT_EQ(cluster_state("/nonexistent-walvault-dir"), ClusterState::kUnknown);
}

TEST(ServerEnvironment, PathAndTheS3VariablesOnly) {
  const char* parent[] = {"WALVAULT_PASSPHRASE=x", "AWS_SECRET_ACCESS_KEY=s", "PATH=/mine",
                          "HOME=/root", nullptr};
  const Argv env = child_environment(parent, server_environment());
  EXPECT_EQ(env, (Argv{"AWS_SECRET_ACCESS_KEY=s",
                       "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}));
}

TEST(Postmaster, NoPidFileIsNotAlive) { EXPECT_FALSE(postmaster_alive("/no/such/pgdata")); }

}  // namespace
}  // namespace walvault::pg
