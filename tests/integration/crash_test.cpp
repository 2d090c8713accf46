// Crash consistency of `backup` and `restore`: the real walvault binary is
// SIGKILLed at random moments (uniform over the time one full run takes) and
// what it leaves behind is checked.
//
// - A killed backup leaves no record (or, killed after writing it, a
//   complete one); the next backup succeeds, gc sweeps what the killed ones
//   left, verify --read-data is clean, and the last backup restores.
// - A killed restore leaves no global/pg_control (PostgreSQL refuses such a
//   directory), or, killed after writing it, a complete directory; the same
//   restore rerun with --delta (docs/decisions.md) succeeds and the result
//   passes pg_verifybackup.
//
// The kill moments come from a seeded RNG; the seed is printed, and
// WALVAULT_CRASH_SEED=<seed> replays a run.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kKills = 20;  // per loop
// A kill lands inside a run or after it, as the measured run time and the
// machine's load decide; each loop goes on past kKills (up to 3 * kKills)
// until at least half of kKills landed inside a run.
bool more_kills(int done, int killed_mid) {
  return done < 3 * kKills && (done < kKills || killed_mid < kKills / 2);
}

// Locks of killed processes are dead after 4 s here (default 10 min), so gc
// can take the exclusive lock within the test.
const std::map<std::string, std::string> kLockEnv = {{"WALVAULT_LOCK_STALE", "4"},
                                                     {"WALVAULT_LOCK_REFRESH", "1"}};

CommandResult wv(const std::vector<std::string>& args) { return walvault(args, kLockEnv); }

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::uint64_t crash_seed() {
  if (const char* s = std::getenv("WALVAULT_CRASH_SEED")) return std::stoull(s);
  return std::random_device{}();
}

// How a run that was to be killed ended.
struct KillOutcome {
  bool killed = false;  // SIGKILL ended it; else it exited on its own first
  int status = -1;      // exit status when !killed
  std::string out, err;
};

// Runs `walvault <args>` (as the test user, like walvault()) and SIGKILLs it
// `delay` after the start unless it has exited by then. The wait status
// tells the two apart: a process that exited just before the kill is a
// zombie the signal cannot touch.
KillOutcome run_and_kill(const std::vector<std::string>& args, std::chrono::microseconds delay,
                         const std::string& scratch) {
  std::vector<std::string> argv = {"/usr/bin/env"};
  argv.push_back("WALVAULT_CONFIG=/dev/null");
  for (const auto& [k, v] : kLockEnv) argv.push_back(k + "=" + v);
  argv.push_back(walvault_binary_for_server());
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  const std::string out_path = scratch + "/kill.out", err_path = scratch + "/kill.err";
  int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("cannot create " + out_path);
  uid_t uid = 0;
  gid_t gid = 0;
  const bool switch_user = running_as_root();
  if (switch_user) {
    const passwd* pw = ::getpwnam(test_user().c_str());
    if (!pw) throw std::runtime_error("no user " + test_user());
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (switch_user && (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0))
      _exit(126);
    ::execv(cargv[0], cargv.data());
    _exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  int wstatus = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &wstatus, WNOHANG)) == 0 && Clock::now() - start < delay)
    std::this_thread::sleep_for(1ms);
  if (done == 0) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
  }
  KillOutcome o;
  o.killed = WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL;
  o.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  o.out = read_text(out_path);
  o.err = read_text(err_path);
  return o;
}

std::set<std::string> backup_labels(const std::vector<std::string>& flags) {
  auto r = wv(concat(flags, {"backup", "list", "--json"}));
  EXPECT_EQ(r.status, 0) << r.err;
  std::set<std::string> out;
  if (r.status == 0)
    for (const auto& j : nlohmann::json::parse(r.out)) out.insert(j.at("label").get<std::string>());
  return out;
}

// Objects under `dir` of a local repository, relative to it.
std::set<std::string> objects_under(const std::string& repo, const std::string& dir) {
  std::set<std::string> out;
  if (!fs::exists(repo + "/" + dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(repo + "/" + dir))
    if (e.is_regular_file()) out.insert(fs::relative(e.path(), repo));
  return out;
}

// A sum over every pgbench account: equal sums before a backup and after
// its restore mean the rows came back.
std::string balance_digest(PgCluster& pg) {
  return pg.sql(
      "select count(*) || ' ' || sum(abalance) || ' ' || sum(aid::bigint * abalance) "
      "from pgbench_accounts");
}

// Moves the balance of every 50th account (about one row in each heap page),
// so the next backup has new chunks throughout the table and writes packs
// while it may be killed.
void churn(PgCluster& pg, int round) {
  pg.sql("update pgbench_accounts set abalance = abalance + " + std::to_string(round + 1) +
         " where aid % 50 = " + std::to_string(round % 50));
}

// One archiving PostgreSQL 15 with pgbench data (scale 4, ~60 MiB) and its
// repository, shared by the two loops.
class CrashTest : public ::testing::Test {
 protected:
  struct Setup {
    std::unique_ptr<ArchivingRepo> repo;
    std::string first_label;
  };
  // Made by the first test that needs it; the server is stopped and both
  // temporary directories removed when the suite ends.
  static Setup& setup() {
    if (!shared) {
      shared = std::make_unique<Setup>();
      shared->repo = std::make_unique<ArchivingRepo>("wv-crash");
      shared->repo->pg->pgbench_init(4);
    }
    return *shared;
  }
  static void TearDownTestSuite() { shared.reset(); }
  static inline std::unique_ptr<Setup> shared;
  void SetUp() override {
    seed_ = crash_seed();
    rng_.seed(seed_);
    std::cout << "crash seed: " << seed_ << " (replay with WALVAULT_CRASH_SEED=" << seed_ << ")\n";
    RecordProperty("crash_seed", std::to_string(seed_));
  }
  // A delay uniform over [0, 1.1 * full): most kills land inside a run, a
  // few after it has finished.
  std::chrono::microseconds kill_delay(double full_seconds) {
    std::uniform_real_distribution<double> d(0.0, 1.1 * full_seconds);
    return std::chrono::microseconds(static_cast<std::int64_t>(d(rng_) * 1e6));
  }
  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
};

TEST_F(CrashTest, KilledBackupsLeaveNoRecordAndTheNextBackupAndGcSucceed) {
  ArchivingRepo& a = *setup().repo;
  PgCluster& pg = *a.pg;
  const auto loop_start = Clock::now();
  // The first backup writes every chunk; time the second, after churn, which
  // is what the killed ones do.
  ASSERT_FALSE(a.backup().empty());
  churn(pg, 0);
  auto t0 = Clock::now();
  ASSERT_FALSE(a.backup().empty());
  const double full = seconds_since(t0);
  std::cout << "one backup takes " << full << " s\n";
  std::set<std::string> known = backup_labels(a.flags);
  ASSERT_EQ(known.size(), 2u);

  int killed_mid = 0, killed_after_record = 0, finished = 0;
  for (int i = 0; more_kills(i, killed_mid); ++i) {
    churn(pg, i + 1);
    const auto delay = kill_delay(full);
    SCOPED_TRACE("kill " + std::to_string(i) + " after " + std::to_string(delay.count()) +
                 " us, seed " + std::to_string(seed_));
    KillOutcome o =
        run_and_kill(concat(a.flags, {"backup", "--pg", conninfo(pg)}), delay, a.work.path());
    std::set<std::string> now = backup_labels(a.flags);
    std::set<std::string> added;
    for (const auto& l : now)
      if (!known.count(l)) added.insert(l);
    for (const auto& l : known) EXPECT_TRUE(now.count(l)) << "backup " << l << " vanished";
    if (!o.killed) {
      // It finished before the kill: one complete backup more.
      EXPECT_EQ(o.status, 0) << o.err;
      EXPECT_EQ(added.size(), 1u) << o.out;
      EXPECT_EQ(added, std::set<std::string>{backup_label_of(o.out)});
      ++finished;
    } else if (!added.empty()) {
      // Killed after the record was written (lock release, history, output
      // were left): the record must be complete — verify --read-data below
      // reads every chunk it names.
      EXPECT_EQ(added.size(), 1u);
      ++killed_after_record;
    } else {
      ++killed_mid;
    }
    known.insert(added.begin(), added.end());
  }
  std::cout << "backups killed mid-way: " << killed_mid
            << ", killed after the record: " << killed_after_record
            << ", finished before the kill: " << finished << "\n";
  EXPECT_GE(killed_mid, kKills / 2) << "too few kills landed inside a backup";

  // The next backup succeeds beside the dead locks and leftovers.
  churn(pg, 99);
  const std::string last = a.backup();
  ASSERT_FALSE(last.empty());
  known.insert(last);
  const std::string digest = balance_digest(pg);
  switch_and_wait(pg);
  EXPECT_EQ(backup_labels(a.flags), known);

  // What the killed puts left (temp files beside packs, indexes, file lists
  // and locks) is swept only once it is an hour old (a younger one may be a
  // put in flight): age them as the hour would.
  std::set<std::string> leftovers;
  for (const char* dir : {"packs", "index", "backups", "locks"})
    for (const auto& name : objects_under(a.repo, dir))
      if (fs::path(name).filename().string().starts_with(".tmp.")) {
        leftovers.insert(name);
        fs::last_write_time(a.repo + "/" + name,
                            fs::file_time_type::clock::now() - std::chrono::hours(2));
      }
  std::cout << "temp files left by killed writes: " << leftovers.size() << "\n";

  // gc takes the exclusive lock once the killed backups' locks are dead,
  // removes them, and sweeps the packs and file lists nobody references.
  auto gc = wv(concat(a.flags, {"gc", "--grace", "0s", "--lock-wait", "60s", "--json"}));
  ASSERT_EQ(gc.status, 0) << gc.err;
  const auto report = nlohmann::json::parse(gc.out);
  EXPECT_EQ(report.at("backups").get<std::size_t>(), known.size()) << gc.out;
  EXPECT_EQ(report.at("young_kept"), 0) << gc.out;
  EXPECT_EQ(report.at("warnings").size(), 0u) << gc.out;
  EXPECT_EQ(report.at("leftovers_removed").get<std::size_t>(), leftovers.size()) << gc.out;
  // Whether a kill left unreferenced chunks depends on where it landed (the
  // churned rows are few, and a pack is sealed late), so the test does not
  // demand that this gc freed bytes; it demands that it left nothing behind:
  // a second gc finds nothing more to remove.
  auto again = wv(concat(a.flags, {"gc", "--grace", "0s", "--dry-run", "--json"}));
  ASSERT_EQ(again.status, 0) << again.err;
  const auto rest = nlohmann::json::parse(again.out);
  for (const char* key : {"packs_removed", "packs_repacked", "chunks_removed", "file_lists_removed",
                          "leftovers_removed", "bytes_removed"})
    EXPECT_EQ(rest.at(key).get<std::uint64_t>(), 0u) << key << " after gc: " << again.out;
  EXPECT_EQ(objects_under(a.repo, "locks"), std::set<std::string>{}) << "dead locks left";
  for (const auto& name : leftovers) EXPECT_FALSE(fs::exists(a.repo + "/" + name)) << name;
  EXPECT_EQ(backup_labels(a.flags), known);

  // Every record left is complete and nothing is orphaned.
  auto v = wv(concat(a.flags, {"verify", "--read-data", "--json"}));
  ASSERT_EQ(v.status, 0) << v.out << v.err;
  const auto verify = nlohmann::json::parse(v.out);
  EXPECT_EQ(verify.at("backups").get<std::size_t>(), known.size());
  EXPECT_EQ(verify.at("errors").size(), 0u) << v.out;
  EXPECT_EQ(verify.at("warnings").size(), 0u) << v.out;

  // And the last backup restores: the server starts with the rows it had.
  const std::string pgdata = a.work.sub("restored-last");
  auto r = wv(concat(a.flags, {"restore", "--pgdata", pgdata, "--set", last}));
  ASSERT_EQ(r.status, 0) << r.err;
  auto restored = start_restored(pgdata);
  EXPECT_EQ(balance_digest(*restored), digest);
  std::cout << "backup crash loop: " << seconds_since(loop_start) << " s\n";
}

// The restored directory against the backup's own manifest (every file's
// size and checksum), as PostgreSQL's pg_verifybackup checks it.
void expect_verifies(const std::string& pgdata) {
  auto r = run({pg_client_bin_dir() + "/pg_verifybackup", "--no-parse-wal", pgdata}, {},
               AsUser::kTestUser);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
}

TEST_F(CrashTest, KilledRestoreNeverLeavesAStartableDirectoryAndARerunWithDeltaSucceeds) {
  ArchivingRepo& a = *setup().repo;
  PgCluster& pg = *a.pg;
  const auto loop_start = Clock::now();
  churn(pg, 1000);
  const std::string label = a.backup();
  ASSERT_FALSE(label.empty());
  const std::string digest = balance_digest(pg);
  switch_and_wait(pg);
  const std::vector<std::string> restore_args = {
      "restore", "--set", label, "--target-immediate", "--target-action", "promote"};
  const std::string pgdata = a.work.sub("restore-target");
  const std::string pg_control = pgdata + "/global/pg_control";
  auto restore_into = [&](const std::vector<std::string>& extra) {
    return wv(concat(concat(a.flags, restore_args), concat({"--pgdata", pgdata}, extra)));
  };

  auto t0 = Clock::now();
  auto first = restore_into({});
  ASSERT_EQ(first.status, 0) << first.err;
  const double full = seconds_since(t0);
  std::cout << "one restore takes " << full << " s\n";
  expect_verifies(pgdata);

  int killed_mid = 0, killed_complete = 0, finished = 0;
  bool refusal_shown = false;
  for (int i = 0; more_kills(i, killed_mid); ++i) {
    fs::remove_all(pgdata);
    const auto delay = kill_delay(full);
    SCOPED_TRACE("kill " + std::to_string(i) + " after " + std::to_string(delay.count()) +
                 " us, seed " + std::to_string(seed_));
    KillOutcome o = run_and_kill(concat(concat(a.flags, restore_args), {"--pgdata", pgdata}), delay,
                                 a.work.path());
    if (!o.killed) {
      EXPECT_EQ(o.status, 0) << o.err;
      EXPECT_TRUE(fs::exists(pg_control));
      ++finished;
    } else if (fs::exists(pg_control)) {
      // Killed after pg_control, the last thing written: everything else,
      // recovery settings included, must be in place.
      EXPECT_TRUE(fs::exists(pgdata + "/recovery.signal"));
      EXPECT_NE(read_text(pgdata + "/postgresql.auto.conf").find("restore_command"),
                std::string::npos);
      expect_verifies(pgdata);
      ++killed_complete;
    } else {
      ++killed_mid;
      if (!refusal_shown && fs::exists(pgdata)) {
        // PostgreSQL will not start such a directory.
        refusal_shown = true;
        const std::string copy = a.work.sub("killed-copy");
        ASSERT_EQ(run({"cp", "-a", pgdata, copy}).status, 0);
        PgCluster::Options opts;
        PgCluster refused(opts);
        refused.adopt(copy);
        EXPECT_THROW(refused.start(), std::runtime_error);
        fs::remove_all(copy);
      }
    }
    // The same restore again: a killed one leaves a non-empty directory,
    // which restore refuses without --delta (exit 5, conflict) ...
    if (o.killed && fs::exists(pgdata) && !fs::is_empty(pgdata)) {
      auto refused = restore_into({});
      EXPECT_EQ(refused.status, 5) << refused.err;
      EXPECT_NE(refused.err.find("--delta"), std::string::npos) << refused.err;
    }
    // ... and completes with it.
    auto rerun = restore_into({"--delta"});
    ASSERT_EQ(rerun.status, 0) << rerun.err;
    ASSERT_TRUE(fs::exists(pg_control));
    expect_verifies(pgdata);
  }
  std::cout << "restores killed mid-way: " << killed_mid
            << ", killed after pg_control: " << killed_complete
            << ", finished before the kill: " << finished << "\n";
  EXPECT_GE(killed_mid, kKills / 2) << "too few kills landed inside a restore";

  // The last rerun's directory starts with the backup's rows.
  auto restored = start_restored(pgdata);
  EXPECT_EQ(balance_digest(*restored), digest);
  std::cout << "restore crash loop: " << seconds_since(loop_start) << " s\n";
}

}  // namespace
}  // namespace walvault::testing
