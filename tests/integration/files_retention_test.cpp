// File-volume snapshots and database backups in one repository that
// PostgreSQL 15 archives into: `expire` with [retention] and [files-retention]
// sections (per volume and per volume and tag) and then `gc` remove exactly
// the backups and snapshots the policies drop; every kept snapshot still
// restores identical to the tree it was taken from, and the database still
// restores and starts. Snapshot times are chosen with `files import --time`
// of tarballs of generated trees (days before today), plus one live `files
// backup`. Then `check` judges each volume's newest snapshot, `metrics`
// carries per-volume samples (promtool agrees), and the history records it.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/time_util.h"
#include "integration/walvault_cli.h"
#include "support/file_tree.h"
#include "support/seeded_bytes.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kDayUs = 86'400'000'000;

// The moment `days_ago` days before today (UTC) at `hour`:00, as walvault
// takes a time.
std::string day_at(int days_ago, int hour) {
  const std::int64_t today = now_unix_us() / kDayUs * kDayUs;
  return format_time_us(today - days_ago * kDayUs + hour * 3'600'000'000LL);
}

// Fills the new directory `dir` with a small volume tree: 3 MiB every tree of
// the volume shares (`volume_seed`), 1.5 MiB of its own (`seed`: chunks only
// this snapshot has), a text file, a symlink and an empty directory, at fixed
// nanosecond mtimes; owned by the test user, who runs walvault (owners are
// restored only as root).
void make_volume_tree(const std::string& dir, std::uint32_t volume_seed, std::uint32_t seed) {
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir;
  ASSERT_EQ(::mkdir((dir + "/notes").c_str(), 0750), 0);
  ASSERT_EQ(::mkdir((dir + "/empty").c_str(), 0700), 0);
  write_bytes(dir + "/shared.bin", seeded_bytes(volume_seed, 3u << 20));
  write_bytes(dir + "/own.bin", seeded_bytes(seed, 3u << 19));
  write_bytes(dir + "/notes/readme.txt", as_bytes("snapshot " + std::to_string(seed) + "\n"));
  ASSERT_EQ(::symlink("notes/readme.txt", (dir + "/readme").c_str()), 0);
  set_mtime(dir + "/shared.bin", 1700000000, 111);
  set_mtime(dir + "/own.bin", 1700000000 + seed, 222);
  set_mtime(dir + "/notes/readme.txt", 1700000100, 333);
  set_mtime(dir + "/readme", 1700000200, 444);
  set_mtime(dir + "/notes", 1700000300, 555);
  set_mtime(dir + "/empty", 1700000400, 666);
  set_mtime(dir, 1700000500, 777);
  give_to_test_user(dir);
}

struct Snapshot {
  std::string volume, tag;
  int days_ago = 0, hour = 0;  // days_ago < 0: a live `files backup` now
  bool kept = false;           // by the policies of kConfig
  std::string src;             // the tree it was taken from
  std::string time;            // as `files list --json` reports start_time
};

// untagged backups: keep-last 1; every volume: keep-within 2d (of its newest);
// app_data: keep-daily 3; app_data's monthly tag: keep-last 1.
constexpr char kConfig[] =
    "[retention]\nkeep-last = 1\n"
    "[files-retention]\nkeep-within = 2d\n"
    "[files-retention.app_data]\nkeep-daily = 3\n"
    "[files-retention.app_data:monthly]\nkeep-last = 1\n";

std::vector<Snapshot> planned_snapshots() {
  return {
      // app_data, keep-daily 3: the newest of each of its last three days.
      {"app_data", "", 6, 2, false},
      {"app_data", "", 6, 14, false},
      {"app_data", "", 5, 2, true},
      {"app_data", "", 4, 2, true},
      {"app_data", "", -1, 0, true},
      // app_data tagged monthly, a group of its own: keep-last 1.
      {"app_data", "monthly", 60, 3, false},
      {"app_data", "monthly", 30, 3, true},
      // reports, no section of its own: [files-retention] keep-within 2d.
      {"reports", "", 10, 2, false},
      {"reports", "", 9, 2, false},
      {"reports", "", 3, 2, true},
  };
}

nlohmann::json json_of(const CommandResult& r) {
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  return r.status == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::array();
}

// "<volume> <start_time>" of every listed snapshot.
std::set<std::string> listed(const std::vector<std::string>& flags) {
  std::set<std::string> out;
  for (const auto& s : json_of(walvault(concat(flags, {"files", "list", "--json"}))))
    out.insert(s.at("volume").get<std::string>() + " " + s.at("start_time").get<std::string>());
  return out;
}

std::set<std::string> expected(const std::vector<Snapshot>& snapshots, bool only_kept) {
  std::set<std::string> out;
  for (const Snapshot& s : snapshots)
    if (s.kept || !only_kept) out.insert(s.volume + " " + s.time);
  return out;
}

// Takes every planned snapshot (imports from tarballs, or the live backup)
// in the order given; records each one's start time as listed.
void take_snapshots(const TempDir& work, const std::vector<std::string>& flags,
                    std::vector<Snapshot>& snapshots) {
  for (std::size_t i = 0; i < snapshots.size(); ++i) {
    Snapshot& s = snapshots[i];
    s.src = work.sub("src" + std::to_string(i));
    make_volume_tree(s.src, s.volume == "app_data" ? 1 : 2, 100 + static_cast<std::uint32_t>(i));
    std::vector<std::string> tag;
    if (!s.tag.empty()) tag = {"--tag", s.tag};
    if (s.days_ago < 0) {
      const CommandResult b =
          walvault(concat(concat(flags, {"files", "backup", "--volume", s.volume, s.src}), tag));
      ASSERT_EQ(b.status, 0) << b.out << b.err;
    } else {
      const std::string tarball = work.sub("src" + std::to_string(i) + ".tar");
      const CommandResult tar = run({"tar", "--format=posix", "-C", s.src, "-cf", tarball, "."});
      ASSERT_EQ(tar.status, 0) << tar.err;
      const CommandResult im =
          walvault(concat(concat(flags, {"files", "import", "--volume", s.volume, "--time",
                                         day_at(s.days_ago, s.hour), tarball}),
                          tag));
      ASSERT_EQ(im.status, 0) << im.out << im.err;
    }
    // The one snapshot listed now and not before is this one.
    std::set<std::string> now_listed = listed(flags);
    for (std::size_t k = 0; k < i; ++k)
      now_listed.erase(snapshots[k].volume + " " + snapshots[k].time);
    ASSERT_EQ(now_listed.size(), 1u) << i;
    s.time = now_listed.begin()->substr(s.volume.size() + 1);
  }
}

TEST(FilesRetentionTest, ExpireAndGcDropTheRightSnapshotsAndBackupsAndKeepTheRestRestorable) {
  ArchivingRepo a("wv-files-ret");
  const std::string conf = a.work.sub("walvault.conf");
  write_text(conf, kConfig);
  const std::map<std::string, std::string> with_conf = {{"WALVAULT_CONFIG", conf}};
  insert_marker(*a.pg, 1);
  const std::string b1 = a.backup();
  insert_marker(*a.pg, 2);
  const std::string b2 = a.backup();
  insert_marker(*a.pg, 3);
  switch_and_wait(*a.pg);
  ASSERT_FALSE(b1.empty() || b2.empty());

  std::vector<Snapshot> snapshots = planned_snapshots();
  take_snapshots(a.work, a.flags, snapshots);
  if (HasFatalFailure()) return;
  ASSERT_EQ(listed(a.flags), expected(snapshots, false));

  // The flags address one volume's policy: reports keep-last 2 (dry run).
  const auto flags_dry = json_of(walvault(
      concat(a.flags, {"expire", "--dry-run", "--json", "--volume", "reports", "--keep-last", "2"}),
      with_conf));
  EXPECT_EQ(flags_dry.at("expired_snapshots").size(), 4u)
      << flags_dry.dump(1);  // 1 reports, 3 app_data
  EXPECT_EQ(listed(a.flags), expected(snapshots, false)) << "a dry run removed a snapshot";

  // While another command holds a live shared lock, expire is refused (busy)
  // and no snapshot goes.
  const std::string held =
      a.repo + "/locks/shared-00000000000000bb-" + std::to_string(now_unix_us());
  fs::create_directories(a.repo + "/locks");
  write_text(held, "held by a test");
  give_to_test_user(a.repo + "/locks");
  const CommandResult busy = walvault(concat(a.flags, {"expire"}), with_conf);
  EXPECT_EQ(busy.status, 13) << busy.out << busy.err;
  EXPECT_EQ(listed(a.flags), expected(snapshots, false));
  fs::remove(held);

  const auto ex = json_of(walvault(concat(a.flags, {"expire", "--json"}), with_conf));
  EXPECT_EQ(ex.at("expired"), nlohmann::json::array({b1})) << ex.dump(1);
  std::set<std::string> expired_volumes;
  for (const auto& d : ex.at("snapshots"))
    if (!d.at("keep").get<bool>())
      expired_volumes.insert(d.at("volume").get<std::string>() + " " +
                             d.at("start_time").get<std::string>());
  std::set<std::string> should_expire;
  for (const Snapshot& s : snapshots)
    if (!s.kept) should_expire.insert(s.volume + " " + s.time);
  EXPECT_EQ(expired_volumes, should_expire) << ex.dump(1);
  EXPECT_EQ(ex.at("expired_snapshots").size(), should_expire.size());
  EXPECT_EQ(listed(a.flags), expected(snapshots, true));

  // gc frees what only the expired snapshots and backup held.
  const auto gc = json_of(walvault(concat(a.flags, {"gc", "--grace", "0s", "--json"})));
  EXPECT_EQ(gc.at("snapshots"), 5) << gc.dump(1);
  EXPECT_EQ(gc.at("backups"), 1) << gc.dump(1);
  EXPECT_GT(gc.at("chunks_removed").get<std::uint64_t>(), 0u) << gc.dump(1);
  EXPECT_GT(gc.at("freed").get<std::int64_t>(), 0) << gc.dump(1);

  // Every kept snapshot restores identical to its tree.
  int restored_snapshots = 0;
  for (const auto& j : json_of(walvault(concat(a.flags, {"files", "list", "--json"})))) {
    const auto it = std::find_if(snapshots.begin(), snapshots.end(), [&](const Snapshot& s) {
      return s.volume == j.at("volume") && s.time == j.at("start_time");
    });
    ASSERT_NE(it, snapshots.end()) << j.dump();
    const std::string out = a.work.sub("restored-" + j.at("id").get<std::string>());
    const CommandResult r =
        walvault(concat(a.flags, {"files", "restore", j.at("id"), "--to", out}));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    std::vector<std::string> diffs;
    compare_trees(it->src, out, "", diffs, false);
    EXPECT_EQ(diffs, std::vector<std::string>{}) << it->volume << " " << it->time;
    ++restored_snapshots;
  }
  EXPECT_EQ(restored_snapshots, 5);
  const CommandResult verify = walvault(concat(a.flags, {"verify", "--read-data"}));
  EXPECT_EQ(verify.status, 0) << verify.out << verify.err;

  // The database restores from the kept backup and starts with every marker.
  const std::string pgdata = a.work.sub("pgdata");
  const CommandResult restore =
      walvault(concat(a.flags, {"restore", "--pgdata", pgdata, "--target-action", "promote"}));
  ASSERT_EQ(restore.status, 0) << restore.out << restore.err;
  EXPECT_NE(restore.out.find(b2), std::string::npos) << restore.out;
  {
    auto restored = start_restored(pgdata);
    EXPECT_EQ(marker_ids(*restored), "1,2,3");
  }

  // check: reports' newest snapshot is three days old (CRITICAL past twice
  // 26h); a limit of its own, or none, for reports settles it.
  const std::vector<std::string> fresh_db = {"check", "--max-wal-age", "1000h"};
  const CommandResult stale = walvault(concat(a.flags, fresh_db));
  EXPECT_EQ(stale.status, 2) << stale.out << stale.err;
  EXPECT_TRUE(stale.out.starts_with("WALVAULT CRITICAL - ")) << stale.out;
  EXPECT_NE(stale.out.find("last snapshot of reports "), std::string::npos) << stale.out;
  EXPECT_NE(stale.out.find("last snapshot of app_data "), std::string::npos) << stale.out;
  for (const char* limit : {"reports=5d", "reports=off"}) {
    const CommandResult ok =
        walvault(concat(a.flags, concat(fresh_db, {"--max-snapshot-age", limit})));
    EXPECT_EQ(ok.status, 0) << limit << ": " << ok.out << ok.err;
  }
  const CommandResult missing = walvault(concat(
      a.flags,
      concat(fresh_db, {"--max-snapshot-age", "reports=off", "--max-snapshot-age", "uploads=1d"})));
  EXPECT_EQ(missing.status, 2) << missing.out;
  EXPECT_NE(missing.out.find("no snapshot of volume uploads"), std::string::npos) << missing.out;

  // metrics: one sample per volume, valid exposition.
  const auto info = json_of(walvault(concat(a.flags, {"info", "--json"})));
  const std::string id = info.at("repository").at("id");
  ASSERT_EQ(info.at("volumes").size(), 2u) << info.dump(1);
  EXPECT_EQ(info.at("volumes")[0].at("snapshots"), 4);
  EXPECT_EQ(info.at("volumes")[1].at("snapshots"), 1);
  const std::string prom = a.work.sub("walvault.prom");
  ASSERT_EQ(walvault(concat(a.flags, {"metrics", "--textfile", prom})).status, 0);
  const std::string text = read_text(prom);
  EXPECT_NE(text.find("\nwalvault_snapshots{repository=\"" + id + "\",volume=\"app_data\"} 4\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nwalvault_snapshots{repository=\"" + id + "\",volume=\"reports\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("walvault_last_snapshot_unreadable_files{repository=\"" + id +
                      "\",volume=\"app_data\"} 0\n"),
            std::string::npos)
      << text;
  ASSERT_TRUE(fs::exists("/usr/bin/promtool")) << "run scripts/setup";
  const CommandResult lint = run_shell("promtool check metrics < " + prom);
  EXPECT_EQ(lint.status, 0) << lint.out << lint.err << text;

  // The history names the expired snapshots.
  bool recorded = false;
  for (const auto& e : json_of(walvault(concat(a.flags, {"history", "--json"}))))
    if (e.at("command") == "expire" && e.at("outcome") == "ok")
      recorded = e.at("extra").at("expired_snapshots").size() == should_expire.size();
  EXPECT_TRUE(recorded);
}

}  // namespace
}  // namespace walvault::testing
