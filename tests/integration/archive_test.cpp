// WAL archiving end to end: a real PostgreSQL 15 runs archive_command =
// walvault archive-push under pgbench load; every segment the server reports
// archived must come back byte-identical through archive-get.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "integration/walvault_cli.h"
#include "support/tmpfs_mount.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> archived_segments(const std::string& wal_dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(wal_dir + "/archive_status")) {
    std::string f = e.path().filename();
    if (f.size() == 29 && f.ends_with(".done")) out.push_back(f.substr(0, 24));
  }
  std::sort(out.begin(), out.end());
  return out;
}

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = work_.sub("repo");
    spool_ = work_.sub("spool");
  }

  void init_repo(bool encrypted) {
    std::vector<std::string> args = {"--repo", repo_, "repo", "init"};
    if (encrypted) args.push_back("--encrypt");
    auto r = walvault(args, {{"WALVAULT_PASSPHRASE", kPassphrase}});
    ASSERT_EQ(r.status, 0) << r.err;
    if (encrypted) {
      key_file_ = work_.sub("repo.key");
      auto k = walvault({"--repo", repo_, "repo", "add-key-file", "--out", key_file_},
                        {{"WALVAULT_PASSPHRASE", kPassphrase}});
      ASSERT_EQ(k.status, 0) << k.err;
      EXPECT_EQ(fs::status(key_file_).permissions() & fs::perms::all,
                fs::perms::owner_read | fs::perms::owner_write);
    }
  }

  std::vector<std::string> repo_args() const { return repo_flags(repo_, spool_, key_file_); }

  std::string archive_command(int parallel) const {
    return archive_push_command(repo_args(), parallel);
  }

  std::unique_ptr<PgCluster> start_archiving_cluster(int parallel, int major = 15) {
    return walvault::testing::start_archiving_cluster(archive_command(parallel), major);
  }

  // Every segment the server marked .done comes back byte-identical.
  void expect_all_archived_identical(PgCluster& pg) {
    auto segments = archived_segments(pg.wal_dir());
    ASSERT_GE(segments.size(), 3u);
    for (const auto& seg : segments) {
      std::string dest = work_.sub("restored-" + seg);
      auto args = repo_args();
      args.insert(args.end(), {"archive-get", "--prefetch", "0", seg, dest});
      auto r = walvault(args);
      ASSERT_EQ(r.status, 0) << seg << ": " << r.err;
      EXPECT_TRUE(read_text(dest) == read_text(pg.wal_dir() + "/" + seg)) << seg << " differs";
      fs::remove(dest);
    }
    EXPECT_EQ(pg.sql("select failed_count from pg_stat_archiver"), "0");
  }

  static constexpr const char* kPassphrase = "correct horse battery staple";
  TempDir work_{"wv-archive"};
  std::string repo_, spool_, key_file_;
};

TEST_F(ArchiveTest, EverySegmentPostgresArchivedComesBackIdentical) {
  init_repo(false);
  auto pg = start_archiving_cluster(1);
  pg->pgbench_init(5);
  pg->pgbench_run(3);
  pg->sql("select pg_create_restore_point('after_load')");
  std::string last = switch_and_wait(*pg);
  expect_all_archived_identical(*pg);

  auto list = walvault({"--repo", repo_, "wal", "list"});
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_NE(list.out.find("timeline 1:"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("gap"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("restore point 'after_load'"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find(last), std::string::npos) << list.out;
  auto json = walvault({"--repo", repo_, "wal", "list", "--json"});
  ASSERT_EQ(json.status, 0);
  EXPECT_NE(json.out.find("\"restore_points\""), std::string::npos);
  EXPECT_NE(json.out.find("\"last_xact_time\": \"20"), std::string::npos) << json.out;
}

TEST_F(ArchiveTest, EncryptedRepositoryWithKeyFileAndBatching) {
  init_repo(true);
  auto pg = start_archiving_cluster(4);
  pg->pgbench_init(5);
  pg->pgbench_run(2);
  switch_and_wait(*pg);
  expect_all_archived_identical(*pg);
  // Nothing in the repository holds WAL in the clear: a pgbench table name
  // appears in every segment of the load but in no stored object.
  for (const auto& e : fs::recursive_directory_iterator(repo_)) {
    if (!e.is_regular_file()) continue;
    EXPECT_EQ(read_text(e.path()).find("pgbench_accounts"), std::string::npos) << e.path();
  }
  // The passphrase opens it too; a wrong one or a foreign key file is refused.
  auto ok = walvault({"--repo", repo_, "wal", "list"}, {{"WALVAULT_PASSPHRASE", kPassphrase}});
  EXPECT_EQ(ok.status, 0) << ok.err;
  auto wrong = walvault({"--repo", repo_, "wal", "list"}, {{"WALVAULT_PASSPHRASE", "nope"}});
  EXPECT_EQ(wrong.status, 7);
  EXPECT_NE(wrong.err.find("wrong passphrase"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("nope"), std::string::npos) << "the secret leaked into: " << wrong.err;
  EXPECT_EQ(line_count(wrong.err), 1) << wrong.err;
  std::string foreign = work_.sub("foreign.key");
  write_text(foreign, std::string(32, 'k'));
  auto bad_key = walvault({"--repo", repo_, "--key-file", foreign, "wal", "list"});
  EXPECT_EQ(bad_key.status, 7) << bad_key.err;
  auto none = walvault({"--repo", repo_, "wal", "list"});
  EXPECT_EQ(none.status, 7) << none.err;
}

TEST_F(ArchiveTest, RePushAndConflictAndForeignCluster) {
  init_repo(false);
  auto pg = start_archiving_cluster(1);
  pg->sql("create table t(x int); insert into t select generate_series(1, 1000)");
  std::string seg = switch_and_wait(*pg);
  std::string path = pg->wal_dir() + "/" + seg;
  auto push = [&](const std::string& p) {
    auto args = repo_args();
    args.insert(args.end(), {"archive-push", "--parallel", "1", p});
    return walvault(args);
  };

  // Identical bytes again: success with a warning.
  auto again = push(path);
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find("already archived"), std::string::npos) << again.err;

  // Different bytes under the same name: refused, stored copy untouched.
  std::string altered_dir = work_.sub("altered");
  fs::create_directory(altered_dir);
  give_to_test_user(altered_dir);
  std::string altered = altered_dir + "/" + seg;
  std::string bytes = read_text(path);
  bytes[8192 + 100] ^= 0x5a;
  write_text(altered, bytes);
  give_to_test_user(altered);
  auto conflict = push(altered);
  EXPECT_EQ(conflict.status, 5) << conflict.err;
  EXPECT_NE(conflict.err.find("different content"), std::string::npos) << conflict.err;
  EXPECT_EQ(line_count(conflict.err), 1) << conflict.err;
  std::string dest = work_.sub("check");
  auto get = walvault({"--repo", repo_, "archive-get", "--prefetch", "0", seg, dest});
  ASSERT_EQ(get.status, 0) << get.err;
  EXPECT_TRUE(read_text(dest) == read_text(path));

  // A segment from another cluster is refused.
  PgCluster::Options other_options;
  other_options.settings = {{"wal_keep_size", "'1GB'"}};
  PgCluster other(other_options);
  other.init();
  other.start();
  std::string other_seg = other.sql("select pg_walfile_name(pg_current_wal_lsn())");
  other.sql("select pg_switch_wal()");
  other.stop();
  auto foreign = push(other.wal_dir() + "/" + other_seg);
  EXPECT_EQ(foreign.status, 8) << foreign.err;
  EXPECT_NE(foreign.err.find("belongs to system"), std::string::npos) << foreign.err;
}

TEST_F(ArchiveTest, BadInputIsRefusedWithOneLine) {
  init_repo(false);
  std::string dir = work_.sub("input");
  fs::create_directory(dir);
  write_text(dir + "/000000010000000000000001", std::string(16 << 20, 'x'));
  write_text(dir + "/notawalfile", "hello");
  give_to_test_user(dir);
  for (const auto& f : {"000000010000000000000001", "notawalfile"}) {
    auto r = walvault({"--repo", repo_, "archive-push", dir + "/" + f});
    EXPECT_EQ(r.status, 3) << f << ": " << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(f), std::string::npos) << r.err;
  }
  auto missing = walvault({"--repo", repo_, "archive-push", dir + "/000000010000000000000002"});
  EXPECT_EQ(missing.status, 4) << missing.err;
  // Nothing was stored.
  EXPECT_FALSE(fs::exists(repo_ + "/wal"));
  // archive-get of an unknown segment: status 1, silent.
  auto get = walvault({"--repo", repo_, "archive-get", "000000010000000000000009", work_.sub("x")});
  EXPECT_EQ(get.status, 1);
  EXPECT_EQ(get.err, "");
  auto bad = walvault({"--repo", repo_, "archive-get", "../etc/passwd", work_.sub("x")});
  EXPECT_EQ(bad.status, 3) << bad.err;
  auto usage = walvault({"--repo", repo_, "archive-push"});
  EXPECT_EQ(usage.status, 2) << usage.err;
  EXPECT_EQ(line_count(usage.err), 1) << usage.err;
  auto scheme = walvault({"--repo", "ftp://host/x", "wal", "list"});
  EXPECT_EQ(scheme.status, 2) << scheme.err;
  EXPECT_NE(scheme.err.find("scheme 'ftp'"), std::string::npos) << scheme.err;
  auto no_repo = walvault({"--repo", work_.sub("nothing-here"), "wal", "list"});
  EXPECT_EQ(no_repo.status, 9) << no_repo.err;
  EXPECT_EQ(line_count(no_repo.err), 1) << no_repo.err;
}

TEST_F(ArchiveTest, CorruptObjectIsNamedAndNothingWritten) {
  init_repo(false);
  auto pg = start_archiving_cluster(1);
  pg->sql("create table t(x int); insert into t select generate_series(1, 1000)");
  std::string seg = switch_and_wait(*pg);
  std::string object = repo_ + "/wal/seg/" + seg.substr(0, 16) + "/" + seg;
  ASSERT_TRUE(fs::exists(object));
  std::string bytes = read_text(object);
  bytes[bytes.size() / 2] ^= 0x01;
  write_text(object, bytes);
  std::string dest = work_.sub("out");
  auto r = walvault({"--repo", repo_, "archive-get", "--prefetch", "0", seg, dest});
  EXPECT_EQ(r.status, 6) << r.err;
  EXPECT_NE(r.err.find(seg), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dest));
}

TEST_F(ArchiveTest, FullDiskFailsWithoutPartialObject) {
  std::string mnt = work_.sub("small");
  TmpfsMount small(mnt, "size=256k,mode=0777");
  if (!small.why_not().empty()) GTEST_SKIP() << small.why_not();
  repo_ = mnt + "/repo";
  init_repo(false);
  auto pg = start_archiving_cluster(1);
  pg->pgbench_init(2);
  pg->stop();  // archiving keeps failing against the full disk; push by hand
  std::string first = "000000010000000000000001";
  auto args = repo_args();
  args.insert(args.end(), {"archive-push", "--parallel", "1", pg->wal_dir() + "/" + first});
  auto r = walvault(args);
  EXPECT_EQ(r.status, 10) << r.err;
  EXPECT_NE(r.err.find("No space left"), std::string::npos) << r.err;
  EXPECT_EQ(line_count(r.err), 1) << r.err;
  for (const auto& e : fs::recursive_directory_iterator(repo_)) {
    std::string name = e.path().filename();
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << "temp file left: " << e.path();
    EXPECT_NE(name, first) << "partial object left: " << e.path();
  }
}

TEST_F(ArchiveTest, PrefetchMakesNextCallARename) {
  init_repo(false);
  auto pg = start_archiving_cluster(1);
  pg->sql("create table t(x int)");
  std::vector<std::string> segs;
  for (int i = 0; i < 4; ++i) {
    pg->sql("insert into t select generate_series(1, 100)");
    segs.push_back(switch_and_wait(*pg));
  }
  auto get = [&](const std::string& seg, const std::string& dest) {
    auto args = repo_args();
    args.insert(args.end(), {"archive-get", "--prefetch", "2", seg, dest});
    return walvault(args);
  };
  auto r = get(segs[0], work_.sub("a"));
  ASSERT_EQ(r.status, 0) << r.err;
  // The detached prefetcher fills the spool with the next two segments.
  std::string spool_get;
  for (int i = 0; i < 100 && spool_get.empty(); ++i) {
    for (const auto& e : fs::recursive_directory_iterator(spool_)) {
      if (e.path().filename() == segs[2]) spool_get = e.path().parent_path();
    }
    if (spool_get.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(spool_get.empty()) << "prefetch did not spool " << segs[2];
  EXPECT_TRUE(fs::exists(spool_get + "/" + segs[1]));
  EXPECT_FALSE(fs::exists(spool_get + "/" + segs[3]));  // bounded to 2
  // The next call takes its segment from the spool (a rename): with the
  // segment's objects moved out of the repository only the spool can serve
  // it, and the answer is the spooled file itself (same inode).
  struct stat spooled {};
  ASSERT_EQ(::stat((spool_get + "/" + segs[1]).c_str(), &spooled), 0);
  const std::string hidden = work_.sub("hidden");
  fs::create_directory(hidden);
  int moved = 0;
  for (const auto& e : fs::recursive_directory_iterator(repo_))
    if (e.is_regular_file() && e.path().filename().string().starts_with(segs[1]))
      fs::rename(e.path(), hidden + "/" + std::to_string(++moved));
  ASSERT_GT(moved, 0) << "no object of " << segs[1] << " in the repository";
  auto r2 = get(segs[1], work_.sub("b"));
  ASSERT_EQ(r2.status, 0) << r2.err;
  EXPECT_TRUE(read_text(work_.sub("b")) == read_text(pg->wal_dir() + "/" + segs[1]));
  struct stat answered {};
  ASSERT_EQ(::stat(work_.sub("b").c_str(), &answered), 0);
  EXPECT_EQ(answered.st_ino, spooled.st_ino) << "not the spooled file";
  EXPECT_EQ(answered.st_dev, spooled.st_dev);
  EXPECT_FALSE(fs::exists(spool_get + "/" + segs[1]));
  // Without the spool the same call has nothing to serve it from.
  auto again = get(segs[1], work_.sub("c"));
  EXPECT_EQ(again.status, 1) << "the repository still served " << segs[1] << ": " << again.err;
}

TEST_F(ArchiveTest, BatchPushConfirmsLaterCalls) {
  init_repo(false);
  // A server whose archiver fails keeps its .ready files: a stand-in pg_wal.
  PgCluster::Options o;
  o.settings = {{"archive_mode", "on"}, {"archive_command", "'false'"}, {"wal_keep_size", "'1GB'"}};
  PgCluster pg(o);
  pg.init();
  pg.start();
  pg.sql("create table t(x int)");
  std::vector<std::string> segs;
  for (int i = 0; i < 3; ++i) {
    pg.sql("insert into t select generate_series(1, 100)");
    segs.push_back(pg.sql("select pg_walfile_name(pg_switch_wal())"));
  }
  pg.stop();
  auto push = [&](const std::string& seg) {
    auto args = repo_args();
    args.insert(args.end(), {"--log-level", "info", "archive-push", "--parallel", "3",
                             pg.wal_dir() + "/" + seg});
    return walvault(args);
  };
  auto first = push(segs[0]);
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_NE(first.err.find("+2 in batch"), std::string::npos) << first.err;
  // All three are in the repository after one call.
  for (const auto& s : segs)
    EXPECT_TRUE(fs::exists(repo_ + "/wal/meta/" + s.substr(0, 16) + "/" + s)) << s;
  auto second = push(segs[1]);
  EXPECT_EQ(second.status, 0) << second.err;
  EXPECT_NE(second.err.find("earlier batch"), std::string::npos) << second.err;
  // A batched segment whose stored copy vanished is pushed again, not confirmed.
  fs::remove(repo_ + "/wal/meta/" + segs[2].substr(0, 16) + "/" + segs[2]);
  auto third = push(segs[2]);
  EXPECT_EQ(third.status, 0) << third.err;
  EXPECT_EQ(third.err.find("earlier batch"), std::string::npos) << third.err;
  EXPECT_TRUE(fs::exists(repo_ + "/wal/meta/" + segs[2].substr(0, 16) + "/" + segs[2]));
}

TEST_F(ArchiveTest, RecoveryThroughRestoreCommandReplaysArchivedWal) {
  init_repo(false);
  auto pg = start_archiving_cluster(2);
  pg->sql("create table marker(id int primary key, note text)");
  pg->sql("insert into marker values (0, 'before backup')");
  std::string base = work_.sub("base");
  auto bb =
      run({pg_client_bin_dir() + "/pg_basebackup", "-h", pg->socket_dir(), "-p",
           std::to_string(pg->port()), "-U", "postgres", "-D", base, "-X", "none", "-c", "fast"},
          {}, AsUser::kTestUser);
  ASSERT_EQ(bb.status, 0) << bb.err;
  pg->pgbench_init(3);
  for (int i = 1; i <= 50; ++i)
    pg->sql("insert into marker values (" + std::to_string(i) + ", 'after backup')");
  switch_and_wait(*pg);
  pg->stop();

  // A fresh server from the base backup fetches every segment through
  // restore_command = walvault archive-get and replays to the archive's end.
  PgCluster restored({});
  restored.adopt(base);
  std::string cmd = walvault_binary_for_server();
  for (const auto& a : repo_args()) cmd += " " + a;
  write_text(base + "/recovery.signal", "");
  std::ofstream(base + "/postgresql.auto.conf", std::ios::app)
      << "restore_command = '" << cmd << " archive-get --prefetch 4 %f \"%p\"'\n"
      << "archive_mode = off\n";
  give_to_test_user(base);
  restored.start();
  ASSERT_TRUE(wait_for_promotion(restored, std::chrono::seconds(60))) << "recovery did not finish";
  EXPECT_EQ(restored.sql("select count(*) from marker"), "51");
  EXPECT_EQ(restored.sql("select count(*) from pgbench_accounts"), "300000");
  std::string log = read_text(restored.log_file());
  EXPECT_NE(log.find("restored log file"), std::string::npos) << log;
  // archive-get stays silent when PostgreSQL probes past the archive's end.
  EXPECT_EQ(log.find("walvault: error"), std::string::npos) << log;
  restored.stop();
}

// 3-2-1: two repositories. archive-push succeeds only when both hold the
// segment; while one cannot be written PostgreSQL keeps retrying, and
// archive-get falls back to a repository that has the file.
TEST_F(ArchiveTest, TwoRepositoriesBothHoldEverySegment) {
  const std::string second = work_.sub("repo2");
  auto init = walvault({"--repo", repo_, "--repo", second, "repo", "init"});
  ASSERT_EQ(init.status, 0) << init.err;
  PgCluster::Options o;
  o.settings = {{"archive_mode", "on"},
                {"archive_command", "'" + walvault_binary_for_server() + " --repo " + repo_ +
                                        " --repo " + second + " --spool-path " + spool_ +
                                        " archive-push --parallel 1 %p'"},
                {"wal_keep_size", "'1GB'"}};
  PgCluster pg(o);
  pg.init();
  pg.start();
  pg.sql("create table t(x int); insert into t select generate_series(1, 1000)");
  std::string first_seg = switch_and_wait(pg);
  auto has = [&](const std::string& repo, const std::string& seg) {
    return fs::exists(repo + "/wal/meta/" + seg.substr(0, 16) + "/" + seg);
  };
  for (const auto& seg : archived_segments(pg.wal_dir())) {
    EXPECT_TRUE(has(repo_, seg)) << seg;
    EXPECT_TRUE(has(second, seg)) << seg;
  }

  // The second repository stops accepting writes: the next segment is not
  // reported archived although the first repository could take it.
  const std::string seg_dir = second + "/wal/seg/" + first_seg.substr(0, 16);
  fs::permissions(seg_dir,
                  fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove);
  pg.sql("insert into t select generate_series(1, 1000)");
  const std::string blocked = pg.sql("select pg_walfile_name(pg_switch_wal())");
  std::string failed;
  for (int i = 0; i < 300 && failed.empty(); ++i) {
    failed = pg.sql("select coalesce(last_failed_wal, '') from pg_stat_archiver");
    if (failed.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(failed, blocked);
  EXPECT_NE(pg.sql("select coalesce(last_archived_wal, '') from pg_stat_archiver"), blocked);
  EXPECT_FALSE(has(second, blocked));
  EXPECT_NE(read_text(pg.log_file()).find("repository " + second), std::string::npos)
      << "the failure should name the repository";

  // Writable again: PostgreSQL's retry completes, both hold it.
  fs::permissions(seg_dir, fs::perms::owner_write, fs::perm_options::add);
  std::string last;
  for (int i = 0; i < 600 && last < blocked; ++i) {
    last = pg.sql("select coalesce(last_archived_wal, '') from pg_stat_archiver");
    if (last < blocked) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(last, blocked);
  EXPECT_TRUE(has(repo_, blocked));
  EXPECT_TRUE(has(second, blocked));

  // archive-get: the first repository lacks the file (an empty one), the
  // second serves it.
  const std::string empty = work_.sub("repo-empty");
  ASSERT_EQ(walvault({"--repo", empty, "repo", "init"}).status, 0);
  const std::string dest = work_.sub("fallback");
  auto get = walvault(
      {"--repo", empty, "--repo", second, "archive-get", "--prefetch", "0", blocked, dest});
  ASSERT_EQ(get.status, 0) << get.err;
  EXPECT_TRUE(read_text(dest) == read_text(pg.wal_dir() + "/" + blocked));
  auto miss = walvault({"--repo", empty, "--repo", second, "archive-get", "--prefetch", "0",
                        "0000000100000000000000FF", dest});
  EXPECT_EQ(miss.status, 1);
  EXPECT_EQ(miss.err, "");
}

TEST_F(ArchiveTest, FlagsOverrideEnvironmentOverrideConfigFile) {
  std::string a = work_.sub("repo-a"), b = work_.sub("repo-b"), c = work_.sub("repo-c");
  std::string conf = work_.sub("walvault.conf");
  write_text(conf, "repo = " + a + "\n");
  give_to_test_user(conf);
  auto init = [&](const std::map<std::string, std::string>& env, std::vector<std::string> extra) {
    std::vector<std::string> args = {"--config", conf};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"repo", "init"});
    return walvault(args, env);
  };
  EXPECT_EQ(init({}, {}).status, 0);
  EXPECT_TRUE(fs::exists(a + "/config"));
  EXPECT_EQ(init({{"WALVAULT_REPO", b}}, {}).status, 0);
  EXPECT_TRUE(fs::exists(b + "/config"));
  EXPECT_EQ(init({{"WALVAULT_REPO", b}}, {"--repo", c}).status, 0);
  EXPECT_TRUE(fs::exists(c + "/config"));
  // A second init never overwrites a repository.
  auto again = init({}, {"--repo", c});
  EXPECT_EQ(again.status, 5) << again.err;
}

// The global options (--repo, --config, --key-file, --passphrase-file,
// --spool-path, --log-level) are taken before or after the verb, as restic
// and pgBackRest users type them. Wherever it appears a global option is the
// same option: --repo collects every occurrence, a single-valued one given
// twice is a usage error.
TEST_F(ArchiveTest, GlobalOptionsBeforeOrAfterTheVerb) {
  const std::string a = work_.sub("repo-a"), b = work_.sub("repo-b"), c = work_.sub("repo-c");
  auto init_a = walvault({"repo", "init", "--repo", a});
  ASSERT_EQ(init_a.status, 0) << init_a.err;
  EXPECT_TRUE(fs::exists(a + "/config"));
  auto info_after = walvault({"repo", "info", "--repo", a, "--log-level", "error"});
  EXPECT_EQ(info_after.status, 0) << info_after.err;
  auto info_before = walvault({"--repo", a, "repo", "info"});
  EXPECT_EQ(info_before.status, 0) << info_before.err;
  EXPECT_EQ(info_after.out, info_before.out);
  EXPECT_NE(info_after.out.find("repository "), std::string::npos) << info_after.out;

  // Both places at once: both repositories, in order of appearance.
  auto init_bc = walvault({"--repo", b, "repo", "init", "--repo", c});
  ASSERT_EQ(init_bc.status, 0) << init_bc.err;
  EXPECT_TRUE(fs::exists(b + "/config"));
  EXPECT_TRUE(fs::exists(c + "/config"));
  EXPECT_LT(init_bc.out.find(b), init_bc.out.find(c)) << init_bc.out;

  // --config, --passphrase-file, --key-file and --spool-path after the verb.
  const std::string e = work_.sub("repo-e"), conf = work_.sub("e.conf");
  const std::string pass = work_.sub("pass"), key = work_.sub("e.key");
  write_text(conf, "repo = " + e + "\n");
  write_text(pass, std::string(kPassphrase) + "\n");
  give_to_test_user(conf);
  give_to_test_user(pass);
  auto init_e =
      walvault({"repo", "init", "--encrypt", "--config", conf, "--passphrase-file", pass});
  ASSERT_EQ(init_e.status, 0) << init_e.err;
  EXPECT_NE(init_e.out.find("(encrypted)"), std::string::npos) << init_e.out;
  auto add_key =
      walvault({"repo", "add-key-file", "--out", key, "--config", conf, "--passphrase-file", pass});
  ASSERT_EQ(add_key.status, 0) << add_key.err;
  auto list = walvault({"wal", "list", "--json", "--repo", e, "--key-file", key, "--spool-path",
                        work_.sub("spool-e")});
  EXPECT_EQ(list.status, 0) << list.err;

  // A single-valued global option twice (before and after the verb) is refused.
  auto twice = walvault({"--key-file", key, "wal", "list", "--repo", e, "--key-file", key});
  EXPECT_EQ(twice.status, 2) << twice.out << twice.err;
  EXPECT_NE(twice.err.find("--key-file"), std::string::npos) << twice.err;
  EXPECT_EQ(line_count(twice.err), 1) << twice.err;
  // Options stay where they belong otherwise: a verb's own option before the
  // verb, or an unknown one after it, is a usage error.
  auto misplaced = walvault({"--repo", a, "--encrypt", "repo", "init"});
  EXPECT_EQ(misplaced.status, 2) << misplaced.err;
  auto unknown = walvault({"repo", "info", "--repo", a, "--no-such-option"});
  EXPECT_EQ(unknown.status, 2) << unknown.err;
  EXPECT_NE(unknown.err.find("--no-such-option"), std::string::npos) << unknown.err;
}

// Other majors' WAL (page magics 0xD106, 0xD10D, 0xD113, 0xD116, 0xD118): server binaries
// from npm, which scripts/test fetches (and then requires).
class OtherMajorArchiveTest : public ArchiveTest, public ::testing::WithParamInterface<int> {};

TEST_P(OtherMajorArchiveTest, SegmentsComeBackIdentical) {
  const int major = GetParam();
  if (auto why = missing_major(major); !why.empty()) GTEST_SKIP() << why;
  init_repo(false);
  auto pg = start_archiving_cluster(2, major);
  pg->pgbench_init(3);
  pg->sql("select pg_create_restore_point('on_" + std::to_string(major) + "')");
  switch_and_wait(*pg);
  expect_all_archived_identical(*pg);
  auto info = walvault({"--repo", repo_, "repo", "info"});
  EXPECT_NE(info.out.find("PostgreSQL " + std::to_string(major)), std::string::npos) << info.out;
  auto list = walvault({"--repo", repo_, "wal", "list"});
  EXPECT_NE(list.out.find("restore point 'on_" + std::to_string(major) + "'"), std::string::npos)
      << list.out;
}

INSTANTIATE_TEST_SUITE_P(Majors, OtherMajorArchiveTest, ::testing::Values(13, 14, 16, 17, 18),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "pg" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace walvault::testing
