// File-volume snapshots in expire, info, check and metrics, over a repository
// in memory holding a fresh backup, fresh WAL and snapshot records of two
// volumes at chosen times (these commands read the records only; gc_test and
// the files integration test cover the trees and chunks behind them).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "basebackup/backup_record.h"
#include "core/error.h"
#include "core/time_util.h"
#include "files/snapshot_record.h"
#include "ops/expire.h"
#include "ops/info.h"
#include "ops/monitor.h"
#include "repo/layout.h"
#include "repo/wal_objects.h"
#include "store/mem_store.h"
#include "support/error_code.h"
#include "support/synthetic_meta.h"

namespace walvault::ops {
namespace {

constexpr std::uint32_t kSegSize = 16u << 20;
constexpr std::int64_t kHour = 3'600'000'000;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

struct Fixture {
  Fixture() : store(std::make_shared<store::MemStore>()) {
    repo::Repository::init(*store, {});
    repo = repo::Repository::open(store, {});
    walvault::testing::bind_synthetic_cluster(*repo, kSegSize);
    repo::SegmentMeta m = walvault::testing::synthetic_segment_meta(1, 3, kSegSize, now - kHour);
    m.archived_us = now - 60'000'000;
    walvault::testing::put_synthetic_segment(*repo, m, Bytes(4096, 1));
    basebackup::BackupRecord b;
    b.label = "b1";
    b.source = "replication";
    b.start_lsn = 3 * kSegSize + 0x28;
    b.stop_lsn = 3 * kSegSize + 0x2000;
    b.start_timeline = b.stop_timeline = 1;
    b.start_time_us = now - 2 * kHour;
    b.stop_time_us = now - kHour;
    b.system_id = 42;
    b.wal_segment_size = kSegSize;
    b.chunk_size = 1u << 20;
    b.pg_version_num = 150010;
    repo->put_object(basebackup::record_object_name("b1"), as_bytes(basebackup::record_to_json(b)));
  }

  // A snapshot record of `volume` that ended `age_us` ago and took a minute.
  files::SnapshotRecord snapshot(const std::string& volume, std::int64_t age_us,
                                 const std::string& tag = "", std::uint64_t bytes = 1000,
                                 std::uint64_t unreadable = 0) {
    files::SnapshotRecord r;
    r.volume = volume;
    r.tag = tag;
    r.end_us = now - age_us;
    r.start_us = r.end_us - 60'000'000;
    r.files = 3;
    r.bytes = bytes;
    r.added_bytes = bytes / 10;
    r.unreadable = unreadable;
    return files::write_snapshot_record(*repo, r);
  }

  std::vector<std::string> listed(const std::optional<std::string>& volume = {}) {
    std::vector<std::string> out;
    for (const auto& s : files::list_snapshots(*repo, volume)) out.push_back(s.label);
    return out;
  }

  CheckResult check(const std::vector<std::string>& limits = {}) {
    CheckOptions o;
    for (const std::string& l : limits) set_snapshot_age_limit(o, l);
    return run_check(*repo, o);
  }

  std::int64_t now = now_unix_us();
  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<repo::Repository> repo;
};

TEST(SnapshotExpire, RemovesTheRecordsThePolicyDropsAndLeavesBackupsAndWal) {
  Fixture f;
  const auto a1 = f.snapshot("app_data", 72 * kHour);
  const auto a2 = f.snapshot("app_data", 48 * kHour);
  const auto a3 = f.snapshot("app_data", 24 * kHour);
  const auto r1 = f.snapshot("reports", 30 * kHour);
  const auto r2 = f.snapshot("reports", 20 * kHour);
  ExpireOptions o;
  o.snapshot_rules.volumes["app_data"].keep_last = 2;
  o.dry_run = true;
  const auto before = f.store->list("");
  const ExpireReport dry = expire_backups(*f.repo, o, nullptr);
  EXPECT_EQ(dry.snapshots_removed, std::vector<std::string>{"app_data/" + a1.label});
  EXPECT_EQ(f.store->list("").size(), before.size()) << "dry run removed something";

  o.dry_run = false;
  const ExpireReport r = expire_backups(*f.repo, o, nullptr);
  EXPECT_EQ(r.snapshots_removed, std::vector<std::string>{"app_data/" + a1.label});
  EXPECT_EQ(f.listed("app_data"), (std::vector<std::string>{a2.label, a3.label}));
  // reports has no policy: kept whole. No backup rules: backups and WAL untouched.
  EXPECT_EQ(f.listed("reports"), (std::vector<std::string>{r1.label, r2.label}));
  EXPECT_FALSE(r.backups_considered);
  EXPECT_TRUE(r.decisions.empty());
  EXPECT_EQ(basebackup::list_backups(*f.repo).size(), 1u);
  EXPECT_EQ(f.store->list(repo::kWalPrefix).size(), 2u);  // data and metadata of segment 3

  const auto j = nlohmann::json::parse(expire_report_json(r));
  EXPECT_EQ(j.at("expired_snapshots"), nlohmann::json::array({"app_data/" + a1.label}));
  ASSERT_EQ(j.at("snapshots").size(), 5u);  // oldest first, both volumes
  EXPECT_EQ(j.at("snapshots")[0].at("id"), files::snapshot_id(a1));
  EXPECT_EQ(j.at("snapshots")[0].at("keep"), false);
  EXPECT_EQ(j.at("snapshots")[2].at("volume"), "reports");
  EXPECT_EQ(j.at("snapshots")[2].at("reasons"),
            nlohmann::json::array({"no retention rules for volume reports"}));
  EXPECT_EQ(j.at("backups_considered"), false);
  const std::string text = expire_report_text(r);
  EXPECT_TRUE(contains(text, "backups: no retention rules: every backup and all WAL kept")) << text;
  EXPECT_TRUE(contains(text, "1 of 5 snapshots expired")) << text;
}

TEST(SnapshotExpire, BackupAndSnapshotRulesApplyInOneRunAndNoRulesIsAUsageError) {
  Fixture f;
  f.snapshot("app_data", 48 * kHour);
  const auto newest = f.snapshot("app_data", 24 * kHour);
  ExpireOptions o;
  EXPECT_EQ(testing::error_code_of([&] { expire_backups(*f.repo, o, nullptr); }),
            ErrorCode::kUsage);
  o.rules.default_policy.keep_last = 1;
  o.snapshot_rules.all_volumes.keep_within = std::chrono::hours(1);
  const ExpireReport r = expire_backups(*f.repo, o, nullptr);
  EXPECT_TRUE(r.backups_considered);
  EXPECT_TRUE(r.removed.empty());
  EXPECT_EQ(r.snapshots_removed.size(), 1u);
  EXPECT_EQ(f.listed(), std::vector<std::string>{newest.label});
}

TEST(SnapshotInfo, CountsOldestNewestAndBytesPerVolume) {
  Fixture f;
  const auto a1 = f.snapshot("app_data", 72 * kHour, "", 1000);
  const auto a2 = f.snapshot("app_data", 24 * kHour, "daily", 3000, 2);
  f.snapshot("reports", 10 * kHour, "", 500);
  const InfoReport info = repository_info(*f.repo);
  ASSERT_EQ(info.volumes.size(), 2u);
  const VolumeInfo& v = info.volumes[0];
  EXPECT_EQ(v.volume, "app_data");
  EXPECT_EQ(v.snapshots, 2u);
  EXPECT_EQ(v.oldest.label, a1.label);
  EXPECT_EQ(v.newest.label, a2.label);
  EXPECT_EQ(v.logical_bytes, 4000u);
  EXPECT_EQ(v.added_bytes, 400u);
  EXPECT_EQ(info.volumes[1].volume, "reports");

  const auto j = nlohmann::json::parse(info_json(info));
  ASSERT_EQ(j.at("volumes").size(), 2u);
  const auto& jv = j.at("volumes")[0];
  EXPECT_EQ(jv.at("volume"), "app_data");
  EXPECT_EQ(jv.at("snapshots"), 2);
  EXPECT_EQ(jv.at("logical_bytes"), 4000);
  EXPECT_EQ(jv.at("newest").at("id"), files::snapshot_id(a2));
  EXPECT_EQ(jv.at("newest").at("bytes"), 3000);
  EXPECT_EQ(jv.at("newest").at("unreadable"), 2);
  EXPECT_EQ(jv.at("newest").at("tag"), "daily");
  EXPECT_EQ(jv.at("oldest").at("start_time_us"), a1.start_us);
  const std::string text = info_text(info);
  EXPECT_TRUE(contains(
      text, "snapshots: 2 volumes\n  app_data: 2 snapshots, oldest " + format_time_us(a1.start_us)))
      << text;
  EXPECT_TRUE(contains(text, "2 unreadable")) << text;
}

TEST(SnapshotCheck, JudgesEachVolumesNewestSnapshotAgainstItsLimit) {
  Fixture f;
  EXPECT_EQ(f.check().status, CheckStatus::kOk) << "no snapshots: no snapshot findings";
  f.snapshot("app_data", 80 * kHour);
  f.snapshot("app_data", 2 * kHour);
  const auto old_reports = f.snapshot("reports", 30 * kHour);
  CheckResult r = f.check();
  EXPECT_EQ(r.status, CheckStatus::kWarning) << r.line;
  EXPECT_TRUE(contains(r.line, "last snapshot of reports 30.0h ago (" +
                                   files::snapshot_id(old_reports) + "), limit 26.0h"))
      << r.line;
  EXPECT_TRUE(contains(r.line, "last snapshot of app_data 2.0h ago")) << r.line;
  // Twice the limit: CRITICAL; a volume's own limit; off leaves it out.
  EXPECT_EQ(f.check({"12h"}).status, CheckStatus::kCritical);
  EXPECT_EQ(f.check({"reports=2d"}).status, CheckStatus::kOk);
  EXPECT_EQ(f.check({"1h", "reports=off", "app_data=3h"}).status, CheckStatus::kOk);
  r = f.check({"reports=off", "app_data=90m"});
  EXPECT_EQ(r.status, CheckStatus::kWarning) << r.line;
  EXPECT_FALSE(contains(r.line, "reports")) << r.line;
  // A volume expected by name without any snapshot.
  r = f.check({"uploads=1d"});
  EXPECT_EQ(r.status, CheckStatus::kCritical) << r.line;
  EXPECT_TRUE(contains(r.line, "no snapshot of volume uploads")) << r.line;
  // Unreadable files in the newest snapshot.
  f.snapshot("reports", kHour, "", 10, 3);
  r = f.check();
  EXPECT_EQ(r.status, CheckStatus::kWarning) << r.line;
  EXPECT_TRUE(contains(r.line, "last snapshot of reports: 3 unreadable")) << r.line;
}

TEST(SnapshotCheck, AFilesOnlyRepositoryIsOkWithTheDatabaseChecksOff) {
  // No backup and no WAL: CRITICAL twice by default; with both limits off
  // (a repository that holds file volumes only) the snapshots alone judge.
  auto store = std::make_shared<store::MemStore>();
  repo::Repository::init(*store, {});
  auto repo = repo::Repository::open(store, {});
  files::SnapshotRecord s;
  s.volume = "uploads";
  s.end_us = now_unix_us() - kHour;
  s.start_us = s.end_us - 60'000'000;
  files::write_snapshot_record(*repo, s);
  CheckOptions o;
  CheckResult r = run_check(*repo, o);
  EXPECT_EQ(r.status, CheckStatus::kCritical) << r.line;
  EXPECT_TRUE(contains(r.line, "no backup")) << r.line;
  EXPECT_TRUE(contains(r.line, "no archived WAL")) << r.line;
  o.max_backup_age.reset();
  o.max_wal_age.reset();
  r = run_check(*repo, o);
  EXPECT_EQ(r.status, CheckStatus::kOk) << r.line;
  EXPECT_TRUE(contains(r.line, "last snapshot of uploads 60m ago")) << r.line;
  o.max_snapshot_age = std::chrono::minutes(20);
  EXPECT_EQ(run_check(*repo, o).status, CheckStatus::kCritical);
}

TEST(SnapshotCheck, BadLimitsAreUsageErrorsNamingTheOption) {
  CheckOptions o;
  for (const char* bad : {"soon", "app_data=soon", "=1h", "a/b=1h", "app_data="}) {
    try {
      set_snapshot_age_limit(o, bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUsage) << bad;
      EXPECT_TRUE(contains(e.what(), "--max-snapshot-age")) << e.what();
    }
  }
  set_snapshot_age_limit(o, "2d");
  set_snapshot_age_limit(o, "my.vol=6h");
  set_snapshot_age_limit(o, "old=off");
  EXPECT_EQ(o.max_snapshot_age, std::chrono::hours(48));
  EXPECT_EQ(o.volume_snapshot_age.at("my.vol"), std::chrono::hours(6));
  EXPECT_FALSE(o.volume_snapshot_age.at("old"));
}

TEST(SnapshotMetrics, OneSamplePerVolumeForEachFamily) {
  Fixture f;
  f.snapshot("app_data", 2 * kHour, "", 3000, 1);
  f.snapshot("app_data", kHour, "", 4000);
  const auto reports = f.snapshot("reports", 3 * kHour, "", 500);
  const std::string text = metrics_text(*f.repo);
  const std::string id = f.repo->config().repo_id;
  const std::string app = "{repository=\"" + id + "\",volume=\"app_data\"}";
  const std::string rep = "{repository=\"" + id + "\",volume=\"reports\"}";
  EXPECT_TRUE(contains(text, "walvault_snapshots" + app + " 2\n")) << text;
  EXPECT_TRUE(contains(text, "walvault_snapshots" + rep + " 1\n")) << text;
  EXPECT_TRUE(contains(text, "walvault_last_snapshot_bytes" + app + " 4000\n")) << text;
  EXPECT_TRUE(contains(text, "walvault_last_snapshot_added_bytes" + app + " 400\n")) << text;
  EXPECT_TRUE(contains(text, "walvault_last_snapshot_unreadable_files" + app + " 0\n")) << text;
  EXPECT_TRUE(contains(text, "walvault_last_snapshot_duration_seconds" + rep + " 60\n")) << text;
  char ts[64];
  std::snprintf(ts, sizeof ts, "%.17g", reports.end_us / 1e6);
  EXPECT_TRUE(contains(text, "walvault_last_snapshot_timestamp_seconds" + rep + " " + ts + "\n"))
      << text;
  // HELP and TYPE once per family, before its samples.
  const std::size_t help = text.find("# HELP walvault_last_snapshot_age_seconds ");
  ASSERT_NE(help, std::string::npos) << text;
  EXPECT_EQ(text.find("# HELP walvault_last_snapshot_age_seconds ", help + 1), std::string::npos);
  EXPECT_LT(help, text.find("walvault_last_snapshot_age_seconds" + app));
  EXPECT_LT(text.find("walvault_last_snapshot_age_seconds" + app),
            text.find("walvault_last_snapshot_age_seconds" + rep));
}

}  // namespace
}  // namespace walvault::ops
