// expire and gc on a real repository that PostgreSQL 15 archives into:
// after expire + gc every retained backup still restores and PITR inside the
// reported window works, the expired backup is gone and its bytes freed; and
// gc racing writers (backups and archive-push in a loop while expire + gc run
// in a loop) never costs a backup that reported success.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

std::uint64_t tree_bytes(const std::string& dir) {
  std::uint64_t n = 0;
  if (!fs::exists(dir)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

// Every object of a local repository (paths relative to it) outside
// history/, which a refused command still appends to.
std::set<std::string> stored_objects(const std::string& repo) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(repo)) {
    const std::string rel = fs::relative(e.path(), repo);
    if (e.is_regular_file() && !rel.starts_with("history/")) out.insert(rel);
  }
  return out;
}

// gc --json, run with `extra` flags: the parsed report (status 0 asserted by
// the caller through `status`).
nlohmann::json gc_report(const std::vector<std::string>& flags,
                         const std::vector<std::string>& extra, int* status) {
  auto r = walvault(concat(concat(flags, {"gc", "--json"}), extra));
  *status = r.status;
  if (r.status != 0) return nlohmann::json{{"error", r.out + r.err}};
  return nlohmann::json::parse(r.out);
}

std::vector<std::string> listed_labels(const std::vector<std::string>& flags) {
  auto r = walvault(concat(flags, {"backup", "list", "--json"}));
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<std::string> out;
  for (const auto& j : nlohmann::json::parse(r.out)) out.push_back(j.at("label"));
  return out;
}

TEST(MaintenanceTest, ExpireAndGcKeepEveryRetainedBackupRestorable) {
  ArchivingRepo a("wv-expire");
  a.pg->pgbench_init(2);
  insert_marker(*a.pg, 1);
  const std::string t_1 = moment_between_commits(*a.pg);
  const std::string b1 = a.backup();
  a.pg->pgbench_run(2);
  a.pg->sql("update pgbench_accounts set filler = md5(aid::text) where aid % 3 = 0");
  insert_marker(*a.pg, 2);
  const std::string b2 = a.backup();
  insert_marker(*a.pg, 3);
  const std::string t_3 = moment_between_commits(*a.pg);
  insert_marker(*a.pg, 4);
  a.pg->pgbench_run(2);
  const std::string b3 = a.backup();
  insert_marker(*a.pg, 5);
  switch_and_wait(*a.pg);
  ASSERT_FALSE(b1.empty() || b2.empty() || b3.empty());
  ASSERT_EQ(listed_labels(a.flags), (std::vector<std::string>{b1, b2, b3}));

  // --dry-run says what would go and why, and removes nothing.
  const std::set<std::string> before_dry = stored_objects(a.repo);
  auto dry = walvault(concat(a.flags, {"expire", "--keep-last", "2", "--dry-run"}));
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("expire " + b1), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("not kept by keep-last 2"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("keep   " + b3), std::string::npos) << dry.out;
  EXPECT_EQ(stored_objects(a.repo), before_dry);

  const std::uint64_t before = tree_bytes(a.repo + "/packs");
  // While another command holds a live shared lock, expire and gc are refused
  // (exit 13, busy) naming it, and remove nothing.
  const std::string held = a.repo + "/locks/shared-00000000000000aa-" +
                           std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
  fs::create_directories(a.repo + "/locks");
  write_text(held, "not readable: the message falls back to the lock's name");
  give_to_test_user(a.repo + "/locks");
  const std::set<std::string> before_busy = stored_objects(a.repo);
  auto busy = walvault(concat(a.flags, {"expire", "--keep-last", "2"}));
  EXPECT_EQ(busy.status, 13) << busy.out << busy.err;
  EXPECT_NE(busy.err.find("shared-00000000000000aa"), std::string::npos) << busy.err;
  EXPECT_EQ(line_count(busy.err), 1) << busy.err;
  auto busy_gc = walvault(concat(a.flags, {"gc", "--grace", "0"}));
  EXPECT_EQ(busy_gc.status, 13) << busy_gc.out << busy_gc.err;
  // Nothing removed or added (the held lock included), object by object.
  EXPECT_EQ(stored_objects(a.repo), before_busy);
  fs::remove(held);
  auto ex = walvault(concat(a.flags, {"expire", "--keep-last", "2"}));
  ASSERT_EQ(ex.status, 0) << ex.out << ex.err;
  EXPECT_EQ(listed_labels(a.flags), (std::vector<std::string>{b2, b3}));
  // What a put killed mid-write leaves behind: a temp file beside the objects,
  // two hours old (younger ones may belong to a put in flight: kept), and a
  // fresh one that must stay.
  const std::string leftover = a.repo + "/index/.tmp.4242.1.77";
  const std::string in_flight = a.repo + "/index/.tmp.4243.1.78";
  write_text(leftover, "half a write");
  write_text(in_flight, "a put in progress");
  give_to_test_user(leftover);
  give_to_test_user(in_flight);
  fs::last_write_time(leftover, fs::file_time_type::clock::now() - std::chrono::hours(2));
  int gc_status = -1;
  const auto gc = gc_report(a.flags, {"--grace", "0"}, &gc_status);
  ASSERT_EQ(gc_status, 0) << gc.dump();
  EXPECT_FALSE(fs::exists(leftover)) << gc.dump();
  EXPECT_TRUE(fs::exists(in_flight)) << gc.dump();
  fs::remove(in_flight);
  EXPECT_EQ(gc.at("dry_run"), false);
  EXPECT_EQ(gc.at("backups"), 2) << gc.dump();
  EXPECT_EQ(gc.at("leftovers_removed"), 1) << gc.dump();
  EXPECT_EQ(gc.at("young_kept"), 0) << gc.dump();
  EXPECT_EQ(gc.at("warnings"), nlohmann::json::array()) << gc.dump();
  // b1's own chunks went: whole packs or repacked ones, and bytes with them.
  EXPECT_GE(gc.at("packs_removed").get<int>() + gc.at("packs_repacked").get<int>(), 1) << gc.dump();
  EXPECT_GT(gc.at("chunks_removed").get<std::uint64_t>(), 0u) << gc.dump();
  EXPECT_GT(gc.at("freed").get<std::int64_t>(), 0) << gc.dump();
  const std::uint64_t after = tree_bytes(a.repo + "/packs");
  EXPECT_LT(after, before) << gc.dump();
  EXPECT_EQ(gc.at("pack_bytes_after").get<std::uint64_t>(), after + tree_bytes(a.repo + "/index"))
      << gc.dump();
  auto v = walvault(concat(a.flags, {"verify", "--read-data"}));
  EXPECT_EQ(v.status, 0) << v.out << v.err;

  // The window now starts at b2: a moment that only b1 could serve is refused,
  // nothing written.
  const std::string refused = a.work.sub("refused");
  auto r0 = walvault(concat(a.flags, {"restore", "--pgdata", refused, "--target-time", t_1}));
  EXPECT_EQ(r0.status, 4) << r0.out << r0.err;
  EXPECT_FALSE(fs::exists(refused + "/PG_VERSION"));
  // PITR inside the window: exactly markers 1..3.
  const std::string pitr = a.work.sub("pitr");
  auto r1 = walvault(concat(
      a.flags, {"restore", "--pgdata", pitr, "--target-time", t_3, "--target-action", "promote"}));
  ASSERT_EQ(r1.status, 0) << r1.out << r1.err;
  EXPECT_NE(r1.out.find(b2), std::string::npos) << r1.out;
  {
    auto restored = start_restored(pitr);
    EXPECT_EQ(marker_ids(*restored), "1,2,3");
  }
  // The newest backup to the end of the archive: every marker.
  const std::string latest = a.work.sub("latest");
  auto r2 =
      walvault(concat(a.flags, {"restore", "--pgdata", latest, "--target-action", "promote"}));
  ASSERT_EQ(r2.status, 0) << r2.out << r2.err;
  {
    auto restored = start_restored(latest);
    EXPECT_EQ(marker_ids(*restored), "1,2,3,4,5");
  }

  // Both commands are in the history.
  auto h = walvault(concat(a.flags, {"history", "--json"}));
  ASSERT_EQ(h.status, 0) << h.err;
  std::set<std::string> ok_commands;
  for (const auto& e : nlohmann::json::parse(h.out))
    if (e.at("outcome") == "ok") ok_commands.insert(e.at("command").get<std::string>());
  EXPECT_TRUE(ok_commands.count("expire") && ok_commands.count("gc")) << h.out;
}

TEST(MaintenanceTest, PinnedBackupSurvivesExpireAndTagsFollowTheirPolicy) {
  ArchivingRepo a("wv-pin");
  const std::string b1 = a.backup();
  auto tagged =
      walvault(concat(a.flags, {"backup", "--pg", conninfo(*a.pg), "--tag", "pre-deployment"}));
  ASSERT_EQ(tagged.status, 0) << tagged.err;
  const std::string b2 = backup_label_of(tagged.out);
  const std::string b3 = a.backup();
  auto keep = walvault(concat(a.flags, {"backup", "keep", b1, "--note", "before migration"}));
  ASSERT_EQ(keep.status, 0) << keep.err;
  auto info = walvault(concat(a.flags, {"info", "--json"}));
  ASSERT_EQ(info.status, 0) << info.err;
  const auto backups = nlohmann::json::parse(info.out).at("backups");
  ASSERT_EQ(backups.size(), 3u);
  EXPECT_EQ(backups[0].at("pinned"), true);
  EXPECT_EQ(backups[1].at("pinned"), false);
  auto missing = walvault(concat(a.flags, {"backup", "keep", "19990101-000000"}));
  EXPECT_EQ(missing.status, 4) << missing.err;
  EXPECT_EQ(line_count(missing.err), 1) << missing.err;
  // Policies from the config file: untagged keep-last 1, pre-deployment keep-last 1.
  const std::string conf = a.work.sub("walvault.conf");
  write_text(conf, "[retention]\nkeep-last = 1\n[retention.pre-deployment]\nkeep-last = 1\n");
  auto ex = walvault(concat(a.flags, {"expire"}), {{"WALVAULT_CONFIG", conf}});
  ASSERT_EQ(ex.status, 0) << ex.out << ex.err;
  EXPECT_NE(ex.out.find("pinned"), std::string::npos) << ex.out;
  EXPECT_EQ(listed_labels(a.flags), (std::vector<std::string>{b1, b2, b3}));
  // Unpinned, b1 goes; the tagged backup is alone in its group and stays.
  ASSERT_EQ(walvault(concat(a.flags, {"backup", "unkeep", b1})).status, 0);
  ex = walvault(concat(a.flags, {"expire"}), {{"WALVAULT_CONFIG", conf}});
  ASSERT_EQ(ex.status, 0) << ex.out << ex.err;
  EXPECT_EQ(listed_labels(a.flags), (std::vector<std::string>{b2, b3}));
  // A bad rule is a usage error naming it; nothing removed.
  write_text(conf, "[retention]\nkeep-dayly = 3\n");
  auto bad = walvault(concat(a.flags, {"expire"}), {{"WALVAULT_CONFIG", conf}});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("keep-dayly"), std::string::npos) << bad.err;
  EXPECT_EQ(listed_labels(a.flags).size(), 2u);
}

TEST(MaintenanceTest, GcRacingBackupsAndArchivingNeverLosesASuccessfulBackup) {
  ArchivingRepo a("wv-gc-race");
  a.pg->pgbench_init(1);
  std::atomic<bool> writers_done{false};
  std::mutex mu;
  std::vector<std::string> succeeded;
  std::vector<std::string> failures;
  int gc_runs = 0, gc_busy = 0, gc_freed = 0, expire_runs = 0;

  std::thread writer([&] {
    for (int i = 0; i < 5; ++i) {
      a.pg->pgbench_run(1);
      insert_marker(*a.pg, 100 + i);
      auto b = walvault(concat(a.flags, {"backup", "--pg", conninfo(*a.pg)}));
      std::lock_guard lock(mu);
      if (b.status == 0)
        succeeded.push_back(backup_label_of(b.out));
      else
        failures.push_back(b.err);
    }
    writers_done = true;
  });
  std::thread maintainer([&] {
    while (!writers_done) {
      auto ex = walvault(concat(a.flags, {"expire", "--keep-last", "2", "--lock-wait", "60s"}));
      int gc_status = -1;
      const auto gc = gc_report(a.flags, {"--grace", "0", "--lock-wait", "60s"}, &gc_status);
      std::lock_guard lock(mu);
      if (ex.status == 0) ++expire_runs;
      if (gc_status == 0) {
        ++gc_runs;
        if (gc.at("packs_removed").get<int>() + gc.at("packs_repacked").get<int>() > 0) ++gc_freed;
      } else if (gc_status == 13) {
        ++gc_busy;
      } else {
        failures.push_back("gc: " + gc.dump());
      }
      if (ex.status != 0 && ex.status != 13) failures.push_back("expire: " + ex.out + ex.err);
    }
  });
  writer.join();
  maintainer.join();
  EXPECT_TRUE(failures.empty()) << failures.front();
  ASSERT_EQ(succeeded.size(), 5u);
  EXPECT_GE(gc_runs, 2) << "gc never got to run between backups";
  EXPECT_GE(expire_runs, 2);
  // A last expire + gc, then: what is listed is the last two successes, every
  // one of them restores, and the repository verifies clean with data read.
  ASSERT_EQ(walvault(concat(a.flags, {"expire", "--keep-last", "2"})).status, 0);
  int gc_status = -1;
  const auto gc = gc_report(a.flags, {"--grace", "0"}, &gc_status);
  ASSERT_EQ(gc_status, 0) << gc.dump();
  EXPECT_EQ(gc.at("backups"), 2) << gc.dump();
  if (gc.at("packs_removed").get<int>() + gc.at("packs_repacked").get<int>() > 0) ++gc_freed;
  EXPECT_GE(gc_freed, 1) << "no gc ever freed anything";
  const std::vector<std::string> listed = listed_labels(a.flags);
  ASSERT_EQ(listed, (std::vector<std::string>{succeeded[3], succeeded[4]}));
  auto v = walvault(concat(a.flags, {"verify", "--read-data"}));
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  switch_and_wait(*a.pg);
  for (std::size_t i = 0; i < listed.size(); ++i) {
    const std::string dir = a.work.sub("restore-" + std::to_string(i));
    auto r = walvault(concat(a.flags, {"restore", "--pgdata", dir, "--set", listed[i],
                                       "--target-immediate", "--target-action", "promote"}));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    auto restored = start_restored(dir);
    // Backup 3 (index 3) was taken after marker 103, backup 4 after 104.
    EXPECT_EQ(restored->sql("select max(id) from marker"), std::to_string(103 + i));
    EXPECT_EQ(restored->sql("select count(*) from pgbench_accounts"), "100000");
  }
}

}  // namespace
}  // namespace walvault::testing
