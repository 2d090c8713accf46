// What restore refuses before it writes anything, and the restore_command it
// writes, against real PostgreSQL 15 servers:
//  - a data directory under a running server (with and without --delta, and
//    --dry-run) is refused with exit 5 naming the server's PID, and the server
//    and its files are left alone; a stale postmaster.pid is no obstacle;
//  - --delta into a data directory of another cluster is refused (exit 8)
//    unless --force;
//  - on an encrypted repository, a restore unlocked by WALVAULT_PASSPHRASE
//    alone is refused (exit 2) unless --restore-command is given; one with
//    --key-file or --passphrase-file writes a restore_command that works in a
//    server started with a clean environment, and so does drill's server.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

// The first 8 bytes of a data directory's pg_control: its system identifier.
std::string control_system_id(const std::string& pgdata) {
  return read_text(pgdata + "/global/pg_control").substr(0, 8);
}

// The PID on the first line of a running server's postmaster.pid.
std::string server_pid(const PgCluster& pg) {
  const std::string text = read_text(pg.data_dir() + "/postmaster.pid");
  return text.substr(0, text.find('\n'));
}

// A PID that no process has any more: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

TEST(RestoreGuardTest, RefusesADataDirectoryUnderARunningServer) {
  ArchivingRepo a("wv-guard-live");
  insert_marker(*a.pg, 1);
  ASSERT_FALSE(a.backup().empty());
  switch_and_wait(*a.pg);
  const std::string pgdata = a.pg->data_dir();
  const std::string pid = server_pid(*a.pg);
  ASSERT_FALSE(pid.empty());
  const std::string auto_conf = read_text(pgdata + "/postgresql.auto.conf");

  for (const std::vector<std::string>& extra : std::vector<std::vector<std::string>>{
           {"--delta"}, {}, {"--dry-run"}, {"--delta", "--dry-run"}}) {
    SCOPED_TRACE(extra.empty() ? "plain" : extra.front() + (extra.size() > 1 ? " --dry-run" : ""));
    auto r = walvault(concat(concat(a.flags, {"restore", "--pgdata", pgdata}), extra));
    EXPECT_EQ(r.status, 5) << r.out << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("PID " + pid), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(pgdata), std::string::npos) << r.err;
  }
  // Nothing was touched: the server runs on, its lock file and settings intact.
  EXPECT_EQ(server_pid(*a.pg), pid);
  EXPECT_EQ(read_text(pgdata + "/postgresql.auto.conf"), auto_conf);
  EXPECT_FALSE(fs::exists(pgdata + "/recovery.signal"));
  EXPECT_EQ(marker_ids(*a.pg), "1");

  // Stopped, with a postmaster.pid whose process is gone (a crash): no obstacle.
  a.pg->stop();
  write_text(pgdata + "/postmaster.pid", std::to_string(dead_pid()) + "\n" + pgdata + "\n");
  auto stale = walvault(concat(a.flags, {"restore", "--pgdata", pgdata, "--delta", "--dry-run"}));
  EXPECT_EQ(stale.status, 0) << stale.out << stale.err;
}

TEST(RestoreGuardTest, DeltaIntoAnotherClusterNeedsForce) {
  ArchivingRepo a("wv-guard-other");
  insert_marker(*a.pg, 1);
  ASSERT_FALSE(a.backup().empty());
  switch_and_wait(*a.pg);
  const std::string ours = control_system_id(a.pg->data_dir());
  a.pg->stop();

  PgCluster::Options o;
  PgCluster other(o);
  other.init();  // a cluster of its own, stopped
  const std::string theirs = control_system_id(other.data_dir());
  ASSERT_NE(theirs, ours);
  const auto restore = [&](const std::vector<std::string>& extra) {
    return walvault(
        concat(concat(a.flags, {"restore", "--pgdata", other.data_dir(), "--delta"}), extra));
  };
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{{}, {"--dry-run"}}) {
    auto r = restore(extra);
    EXPECT_EQ(r.status, 8) << r.out << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
    std::uint64_t id = 0;
    std::memcpy(&id, theirs.data(), sizeof id);
    EXPECT_NE(r.err.find(std::to_string(id)), std::string::npos) << r.err;
  }
  EXPECT_EQ(control_system_id(other.data_dir()), theirs);
  EXPECT_FALSE(fs::exists(other.data_dir() + "/recovery.signal"));

  auto forced = restore({"--force"});
  ASSERT_EQ(forced.status, 0) << forced.out << forced.err;
  EXPECT_EQ(control_system_id(other.data_dir()), ours);
}

// One encrypted repository (passphrase, key file and passphrase file) that a
// server archives into, with markers 1 and 2 before `target` and 3 after it.
TEST(EncryptedRestoreTest, RestoreCommandWorksWithoutThePassphraseVariable) {
  TempDir work("wv-guard-enc");
  const std::string repo = work.sub("repo"), spool = work.sub("spool");
  const std::string key = work.sub("repo.key"), pass_file = work.sub("passphrase");
  const std::map<std::string, std::string> passphrase = {
      {"WALVAULT_PASSPHRASE", "guard test passphrase"}};
  write_text(pass_file, "guard test passphrase\n");
  give_to_test_user(pass_file);
  ASSERT_EQ(::chmod(pass_file.c_str(), 0600), 0);
  auto init = walvault({"--repo", repo, "repo", "init", "--encrypt"}, passphrase);
  ASSERT_EQ(init.status, 0) << init.err;
  auto add_key = walvault({"--repo", repo, "repo", "add-key-file", "--out", key}, passphrase);
  ASSERT_EQ(add_key.status, 0) << add_key.err;
  const auto with_key = repo_flags(repo, spool, key);
  const auto bare = repo_flags(repo, spool);

  auto pg = start_archiving_cluster(archive_push_command(with_key, 2));
  create_marker_table(*pg);
  insert_marker(*pg, 1);
  auto b = walvault(concat(with_key, {"backup", "--pg", conninfo(*pg)}));
  ASSERT_EQ(b.status, 0) << b.err;
  insert_marker(*pg, 2);
  const std::string target = moment_between_commits(*pg);
  insert_marker(*pg, 3);
  switch_and_wait(*pg);
  pg->stop();
  const std::vector<std::string> pitr = {"--target-time", target, "--target-action", "promote"};

  // Unlocked by the variable alone: refused, nothing written.
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{{}, {"--dry-run"}}) {
    const std::string pgdata = work.sub("refused");
    auto r = walvault(concat(concat(bare, {"restore", "--pgdata", pgdata}), concat(pitr, extra)),
                      passphrase);
    EXPECT_EQ(r.status, 2) << r.out << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("WALVAULT_PASSPHRASE"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--key-file"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(pgdata));
  }
  // The operator's own restore_command is written as given.
  auto own = walvault(concat(concat(bare, {"restore", "--pgdata", work.sub("own"), "--dry-run",
                                           "--restore-command", "/bin/false %f %p"}),
                             pitr),
                      passphrase);
  EXPECT_EQ(own.status, 0) << own.out << own.err;

  // With a key file, and with a passphrase file (the variable set as well):
  // the restore_command names the file, never the secret, and a server
  // started with a clean environment replays to the target.
  const std::vector<std::pair<std::string, std::vector<std::string>>> unlocks = {
      {"--key-file " + key, with_key},
      {"--passphrase-file " + pass_file, concat(bare, {"--passphrase-file", pass_file})}};
  for (std::size_t i = 0; i < unlocks.size(); ++i) {
    const auto& [written, flags] = unlocks[i];
    SCOPED_TRACE(written);
    const std::string pgdata = work.sub("restored" + std::to_string(i));
    auto r = walvault(concat(concat(flags, {"restore", "--pgdata", pgdata}), pitr), passphrase);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const std::string conf = read_text(pgdata + "/postgresql.auto.conf");
    EXPECT_NE(conf.find(written), std::string::npos) << conf;
    EXPECT_EQ(conf.find("guard test passphrase"), std::string::npos) << conf;
    auto restored = start_restored(pgdata);
    EXPECT_EQ(marker_ids(*restored), "1,2");
    restored->stop();
  }

  // drill: refused the same way; with the key file its server starts with a
  // clean environment (no WALVAULT_PASSPHRASE in it) and replays.
  const std::vector<std::string> drill = {"drill", "--pg-bin", pg_bin_dir(15)};
  auto refused =
      walvault(concat(concat(bare, drill), {"--scratch", work.sub("drill1")}), passphrase);
  EXPECT_EQ(refused.status, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("WALVAULT_PASSPHRASE"), std::string::npos) << refused.err;
  // The postmaster's own environment (a backend's /proc/self/environ holds
  // its process title): PATH is there, WALVAULT_PASSPHRASE is not.
  const std::string environ_check =
      "with e as (select pg_read_binary_file('/proc/' || "
      "split_part(pg_read_file('postmaster.pid'), E'\\n', 1) || '/environ') as env) "
      "select (position(convert_to('PATH=', 'UTF8') in env) > 0)::text || ',' || "
      "(position(convert_to('WALVAULT_PASSPHRASE=', 'UTF8') in env) > 0)::text from e";
  auto passed =
      walvault(concat(concat(with_key, drill),
                      {"--scratch", work.sub("drill2"), "--check",
                       "select string_agg(id::text, ',' order by id) from marker", "--expect",
                       "1,2,3", "--check", environ_check, "--expect", "true,false"}),
               passphrase);
  EXPECT_EQ(passed.status, 0) << passed.out << passed.err;
}

}  // namespace
}  // namespace walvault::testing
