// Backup sets (`backup --all`, `restore --all`): the runbook's "complete
// system failure". A platform (PostgreSQL 15 archiving into an encrypted
// repository under pgbench load, and a files volume of a few hundred files)
// is backed up by a scheduled run, written to further, destroyed down to the
// repository, its key file and the config file, and restored from those
// alone to a time after the set: every table row for row, every file byte
// for byte and mode for mode, with the measured RTO printed. Also the set's
// refusals: a part that fails, an unknown volume, a target that is not
// empty, a time the archive cannot reach.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <thread>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kPassphrase[] = "set test passphrase";

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Path -> "mode content" of every entry below `root` (directories: mode only).
std::map<std::string, std::string> volume_state(const std::string& root) {
  std::map<std::string, std::string> state;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    struct stat st {};
    EXPECT_EQ(::lstat(e.path().c_str(), &st), 0) << e.path();
    std::string value = std::to_string(st.st_mode & 07777);
    if (S_ISREG(st.st_mode)) value += " " + read_text(e.path().string());
    if (S_ISDIR(st.st_mode)) value += " dir";
    state[fs::relative(e.path(), root).string()] = value;
  }
  return state;
}

// The paths whose entry differs between two volume_state()s, or is in one only.
std::vector<std::string> differing_paths(const std::map<std::string, std::string>& a,
                                         const std::map<std::string, std::string>& b) {
  std::vector<std::string> out;
  for (const auto& [path, value] : a)
    if (const auto it = b.find(path); it == b.end() || it->second != value) out.push_back(path);
  for (const auto& [path, value] : b)
    if (!a.contains(path)) out.push_back(path);
  return out;
}

// A few hundred files of varied size and mode in a few directories.
void fill_volume(const std::string& root) {
  for (int d = 0; d < 6; ++d) {
    const std::string dir = root + "/uploads/" + std::to_string(2020 + d);
    fs::create_directories(dir);
    for (int f = 0; f < 50; ++f) {
      const std::string path = dir + "/file-" + std::to_string(f) + ".dat";
      std::string content = "upload " + std::to_string(d) + "/" + std::to_string(f) + "\n";
      for (int i = 0; i < (f * 37 + d * 11) % 200; ++i) content += std::to_string(i * f) + ",";
      write_text(path, content);
      ::chmod(path.c_str(), f % 3 == 0 ? 0600 : f % 3 == 1 ? 0644 : 0640);
    }
  }
  write_text(root + "/README", "the app's files\n");
  ::chmod(root.c_str(), 0750);
}

// Per table: row count and md5 of its rows in order, as one line each.
std::string table_checksums(PgCluster& pg) {
  std::string out;
  for (const char* table :
       {"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "marker"})
    out += std::string(table) + " " +
           pg.sql(std::string("select count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' "
                              "order by t::text)), '-') from ") +
                  table + " t") +
           "\n";
  return out;
}

struct Platform {
  TempDir work{"wv-set"};
  std::string repo = work.sub("repo");
  std::string key = work.sub("repo.key");
  std::string config = work.sub("walvault.conf");
  std::string volume = work.sub("app_data");
  std::unique_ptr<PgCluster> pg;

  Platform() {
    give_to_test_user(work.path());
    const std::map<std::string, std::string> env = {{"WALVAULT_PASSPHRASE", kPassphrase}};
    EXPECT_EQ(walvault({"--repo", repo, "repo", "init", "--encrypt"}, env).status, 0);
    const CommandResult k = walvault({"--repo", repo, "repo", "add-key-file", "--out", key}, env);
    EXPECT_EQ(k.status, 0) << k.err;
    fs::create_directories(volume);
    fill_volume(volume);
    give_to_test_user(volume);
    // The config names the server; it exists before the first segment fills.
    pg = start_archiving_cluster(archive_push_command({"--config", config}, 2));
    write_text(config, "repo = " + repo + "\nkey-file = " + key +
                           "\nspool-path = " + work.sub("spool") + "\n[backup]\npg = \"" +
                           conninfo(*pg) + "\"\n[volume.app_data]\npath = " + volume + "\n");
    ::chmod(config.c_str(), 0600);
    give_to_test_user(config);
  }

  CommandResult wv(const std::vector<std::string>& args) {
    return walvault(concat({"--config", config}, args));
  }
};

TEST(BackupSet, CompleteSystemFailureRestoresDatabaseAndFilesFromTheRepositoryAlone) {
  Platform p;
  PgCluster& pg = *p.pg;
  pg.pgbench_init(1);
  create_marker_table(pg);
  insert_marker(pg, 1);

  // The scheduled backup job takes the set while pgbench writes.
  std::thread load([&] { pg.pgbench_run(4); });
  const CommandResult job = p.wv({"schedule", "run", "backup"});
  load.join();
  ASSERT_EQ(job.status, 0) << job.out << job.err;
  EXPECT_NE(job.out.find("backup: ok, id "), std::string::npos) << job.out;
  EXPECT_NE(job.out.find("files backup --volume app_data " + p.volume + ": ok, id "),
            std::string::npos)
      << job.out;
  const std::map<std::string, std::string> files_at_set = volume_state(p.volume);
  ASSERT_GT(files_at_set.size(), 300u);

  // More writes after the set; T is a moment among them.
  pg.pgbench_run(2);
  insert_marker(pg, 2);
  const std::string database_at_t = table_checksums(pg);
  const std::string t = moment_between_commits(pg);
  insert_marker(pg, 3);
  pg.pgbench_run(1);
  // After T the files change and a second set is taken: restoring to T must
  // take the first set's snapshot, and the database must stop at T.
  write_text(p.volume + "/uploads/2020/file-1.dat", "changed after T\n");
  fs::remove(p.volume + "/uploads/2021/file-2.dat");
  write_text(p.volume + "/late.txt", "new after T\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the next set's label
  const CommandResult second = p.wv({"backup", "--all"});
  ASSERT_EQ(second.status, 0) << second.out << second.err;
  insert_marker(pg, 4);
  switch_and_wait(pg);

  // Complete system failure: only the repository, its key file and the
  // config file are left.
  pg.stop(false);
  fs::remove_all(pg.data_dir());
  fs::remove_all(p.volume);

  const std::string pgdata = p.work.sub("restored-pgdata");
  const Clock::time_point t0 = Clock::now();
  const CommandResult restore = p.wv(
      {"restore", "--all", "--pgdata", pgdata, "--target-time", t, "--target-action", "promote"});
  const double command_s = seconds_since(t0);
  ASSERT_EQ(restore.status, 0) << restore.out << restore.err;
  auto restored = start_restored(pgdata);
  const double database_s = seconds_since(t0);
  std::smatch files_took;
  const std::string out = restore.out;
  ASSERT_TRUE(std::regex_search(
      out, files_took, std::regex("restored snapshot [0-9a-f]+ of app_data .* ([0-9.]+) s")))
      << out;
  std::cout << "[ RTO ] database: " << database_s << " s from the start of restore --all to "
            << "accepting connections at T (restore --all " << command_s
            << " s); files: " << files_took[1] << " s for " << files_at_set.size() << " entries\n";

  // Row for row, file for file.
  EXPECT_EQ(marker_ids(*restored), "1,2");
  EXPECT_EQ(table_checksums(*restored), database_at_t);
  ASSERT_TRUE(fs::is_directory(p.volume)) << "the volume was not restored";
  EXPECT_EQ(differing_paths(volume_state(p.volume), files_at_set), std::vector<std::string>{});
  EXPECT_NE(out.find("target: time " + t), std::string::npos) << out;
  EXPECT_NE(out.find("volume app_data: snapshot "), std::string::npos) << out;

  // A time the archive cannot reach is refused before anything is written.
  const std::string elsewhere = p.work.sub("elsewhere");
  const CommandResult late = p.wv({"restore", "--all", "--pgdata", elsewhere, "--volume",
                                   "app_data=" + p.work.sub("elsewhere-files"), "--target-time",
                                   "2099-01-01 00:00:00+00"});
  EXPECT_NE(late.status, 0) << late.out;
  EXPECT_EQ(line_count(late.err), 1) << late.err;
  EXPECT_FALSE(fs::exists(elsewhere));
  EXPECT_FALSE(fs::exists(p.work.sub("elsewhere-files")));
}

TEST(BackupSet, AFailedPartFailsTheSetAndBadTargetsAreRefusedBeforeAnythingIsWritten) {
  TempDir work("wv-set-refusals");
  const std::string repo = work.sub("repo"), config = work.sub("walvault.conf");
  const std::string app = work.sub("app");
  give_to_test_user(work.path());
  ASSERT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
  fs::create_directories(app);
  write_text(app + "/file", "content\n");
  const auto write_config = [&](const std::string& volume_path) {
    write_text(config, "repo = " + repo + "\nspool-path = " + work.sub("spool") +
                           "\n[schedule]\ndatabase = no\n[volume.app]\npath = " + volume_path +
                           "\n[volume.logs]\npath = " + work.sub("logs") + "\n");
    ::chmod(config.c_str(), 0600);
  };
  give_to_test_user(work.path());
  const auto wv = [&](const std::vector<std::string>& args) {
    return walvault(concat({"--config", config}, args));
  };

  // logs does not exist: that part fails, app's is still taken, the set says which.
  write_config(app);
  give_to_test_user(config);
  const CommandResult failed = wv({"backup", "--all", "--tag", "weekly"});
  EXPECT_EQ(failed.status, 10) << failed.out << failed.err;
  EXPECT_EQ(line_count(failed.err), 1) << failed.err;
  EXPECT_NE(failed.err.find("failed: files backup --volume logs " + work.sub("logs")),
            std::string::npos)
      << failed.err;
  EXPECT_NE(failed.out.find("files backup --volume app " + app + ": ok"), std::string::npos)
      << failed.out;
  fs::create_directories(work.sub("logs"));
  give_to_test_user(work.sub("logs"));
  const CommandResult ok = wv({"backup", "--all", "--tag", "weekly"});
  ASSERT_EQ(ok.status, 0) << ok.out << ok.err;
  const CommandResult history = wv({"history", "--json"});
  EXPECT_NE(history.out.find("\"backup-set\""), std::string::npos) << history.out;
  EXPECT_NE(history.out.find("\"failed\""), std::string::npos) << history.out;
  const CommandResult listed = wv({"files", "list"});
  EXPECT_NE(listed.out.find("weekly"), std::string::npos) << listed.out;

  // Refusals: one line, a non-zero status, nothing written.
  const std::string pgdata = work.sub("pgdata");
  const auto refused = [&](const std::vector<std::string>& extra, int status,
                           const std::string& names) {
    const CommandResult r = wv(concat({"restore", "--all", "--pgdata", pgdata}, extra));
    EXPECT_EQ(r.status, status) << r.out << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(names), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(pgdata));
  };
  refused({"--volume", "nope=" + work.sub("x")}, 2, "--volume 'nope': no such volume");
  // app and logs default to their configured paths, which are not empty.
  refused({"--volume", "logs=" + work.sub("logs-restored")}, 5,
          "volume app '" + app + "' is not an empty directory");
  refused({"--volume", "app=" + pgdata + "/files", "--volume", "logs=" + work.sub("l")}, 2,
          "lies in --pgdata");
  refused({"--target-lsn", "0/1000000"}, 2, "restore --all restores to --target-time");
  EXPECT_EQ(read_text(app + "/file"), "content\n");
}

}  // namespace
}  // namespace walvault::testing
