// Retention rules on synthetic backup sets with an injected clock.
#include "ops/retention.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/time_util.h"

namespace walvault::ops {
namespace {

using basebackup::BackupRecord;

std::int64_t at(const char* text) { return *parse_time_us(text); }

BackupRecord backup_at(const char* start, const std::string& tag = "") {
  BackupRecord r;
  r.start_time_us = at(start);
  r.stop_time_us = r.start_time_us + 60'000'000;  // a minute long
  r.label = format_time_us(r.start_time_us);
  r.tag = tag;
  r.start_lsn = static_cast<pg::Lsn>(r.start_time_us);
  return r;
}

// Labels kept, oldest first.
std::vector<std::string> kept(const std::vector<RetentionDecision>& decisions) {
  std::vector<std::string> out;
  for (const auto& d : decisions)
    if (d.keep) out.push_back(d.label.substr(0, 16));
  return out;
}

RetentionRules rules_of(const RetentionPolicy& p) {
  RetentionRules r;
  r.default_policy = p;
  return r;
}

// Two backups a day at 02:00 and 14:00 from 2026-10-01 to 2026-11-26.
std::vector<BackupRecord> twice_daily() {
  std::vector<BackupRecord> out;
  for (std::int64_t day = at("2026-10-01 00:00:00"); day <= at("2026-11-26 00:00:00");
       day += 86400LL * 1000000) {
    out.push_back(backup_at(format_time_us(day + 2 * 3600LL * 1000000).c_str()));
    out.push_back(backup_at(format_time_us(day + 14 * 3600LL * 1000000).c_str()));
  }
  return out;
}

const std::int64_t kNow = at("2026-11-26 20:00:00");

TEST(Retention, KeepLastKeepsTheNewestN) {
  RetentionPolicy p;
  p.keep_last = 3;
  const auto d = plan_retention(twice_daily(), {}, rules_of(p), kNow);
  EXPECT_EQ(kept(d),
            (std::vector<std::string>{"2026-11-25 14:00", "2026-11-26 02:00", "2026-11-26 14:00"}));
  EXPECT_EQ(d.back().reasons, std::vector<std::string>{"keep-last 3"});
  EXPECT_NE(d.front().reasons.front().find("not kept by keep-last 3"), std::string::npos);
}

TEST(Retention, KeepDailyKeepsTheNewestOfEachDay) {
  RetentionPolicy p;
  p.keep_daily = 3;
  const auto d = plan_retention(twice_daily(), {}, rules_of(p), kNow);
  EXPECT_EQ(kept(d),
            (std::vector<std::string>{"2026-11-24 14:00", "2026-11-25 14:00", "2026-11-26 14:00"}));
}

TEST(Retention, KeepDailyCountsDaysThatHaveBackups) {
  // A gap of a week: keep-daily 3 reaches back past it (restic's semantics).
  std::vector<BackupRecord> b = {backup_at("2026-11-10 02:00:00"), backup_at("2026-11-11 02:00:00"),
                                 backup_at("2026-11-19 02:00:00"),
                                 backup_at("2026-11-20 02:00:00")};
  RetentionPolicy p;
  p.keep_daily = 3;
  EXPECT_EQ(kept(plan_retention(b, {}, rules_of(p), kNow)),
            (std::vector<std::string>{"2026-11-11 02:00", "2026-11-19 02:00", "2026-11-20 02:00"}));
}

TEST(Retention, KeepWeeklyUsesIsoWeeks) {
  // 2026-11-22 is a Sunday: it belongs to the week of Monday 2026-11-16.
  RetentionPolicy p;
  p.keep_weekly = 3;
  const auto d = plan_retention(twice_daily(), {}, rules_of(p), kNow);
  EXPECT_EQ(kept(d),
            (std::vector<std::string>{"2026-11-15 14:00", "2026-11-22 14:00", "2026-11-26 14:00"}));
  EXPECT_EQ(d.back().reasons, std::vector<std::string>{"keep-weekly 2026-W48"});
}

TEST(Retention, IsoWeekOfNewYearBelongsToTheYearOfItsThursday) {
  // 2027-01-01 is a Friday: ISO week 53 of 2026, with 2026-12-28.
  std::vector<BackupRecord> b = {backup_at("2026-12-28 02:00:00"), backup_at("2027-01-01 02:00:00"),
                                 backup_at("2027-01-04 02:00:00")};
  RetentionPolicy p;
  p.keep_weekly = 10;
  const auto d = plan_retention(b, {}, rules_of(p), kNow);
  EXPECT_EQ(kept(d), (std::vector<std::string>{"2027-01-01 02:00", "2027-01-04 02:00"}));
  EXPECT_EQ(d[1].reasons, std::vector<std::string>{"keep-weekly 2026-W53"});
  EXPECT_EQ(d[2].reasons, std::vector<std::string>{"keep-weekly 2027-W01"});
}

TEST(Retention, KeepMonthlyAndYearly) {
  std::vector<BackupRecord> b = {
      backup_at("2024-06-01 02:00:00"), backup_at("2025-03-01 02:00:00"),
      backup_at("2025-12-31 02:00:00"), backup_at("2026-10-05 02:00:00"),
      backup_at("2026-10-30 02:00:00"), backup_at("2026-11-02 02:00:00")};
  RetentionPolicy p;
  p.keep_monthly = 2;
  p.keep_yearly = 2;
  const auto d = plan_retention(b, {}, rules_of(p), kNow);
  EXPECT_EQ(kept(d),
            (std::vector<std::string>{"2025-12-31 02:00", "2026-10-30 02:00", "2026-11-02 02:00"}));
  EXPECT_EQ(d[5].reasons, (std::vector<std::string>{"keep-monthly 2026-11", "keep-yearly 2026"}));
  EXPECT_EQ(d[2].reasons, std::vector<std::string>{"keep-yearly 2025"});
}

TEST(Retention, KeepWithinIsRelativeToTheNewestBackupNotToNow) {
  RetentionPolicy p;
  p.keep_within = std::chrono::hours(24 * 2);
  // Backups stopped a month ago: keep-within still keeps the last two days of them.
  auto b = twice_daily();
  b.resize(20);  // 2026-10-01 .. 2026-10-10
  const auto d = plan_retention(b, {}, rules_of(p), kNow);
  EXPECT_EQ(kept(d),
            (std::vector<std::string>{"2026-10-08 14:00", "2026-10-09 02:00", "2026-10-09 14:00",
                                      "2026-10-10 02:00", "2026-10-10 14:00"}));
}

TEST(Retention, RulesCombineAndAnyRuleKeeps) {
  RetentionPolicy p;
  p.keep_last = 2;
  p.keep_daily = 7;
  p.keep_weekly = 4;
  p.keep_monthly = 3;
  const auto d = plan_retention(twice_daily(), {}, rules_of(p), kNow);
  const auto k = kept(d);
  // 2 last (both of the 26th) + dailies 20..25 (26th already) + weeklies W48..W45
  // (Sundays 11-22, 11-15, 11-08; W44 of Sunday 11-01 would be a fifth week) +
  // monthly October (its newest: 10-31); there is no third month.
  EXPECT_EQ(k, (std::vector<std::string>{"2026-10-31 14:00", "2026-11-08 14:00", "2026-11-15 14:00",
                                         "2026-11-20 14:00", "2026-11-21 14:00", "2026-11-22 14:00",
                                         "2026-11-23 14:00", "2026-11-24 14:00", "2026-11-25 14:00",
                                         "2026-11-26 02:00", "2026-11-26 14:00"}));
}

TEST(Retention, TagsFollowTheirOwnPolicyAndUntaggedTheDefault) {
  std::vector<BackupRecord> b = {backup_at("2026-11-01 02:00:00"),
                                 backup_at("2026-11-02 02:00:00"),
                                 backup_at("2026-11-10 09:00:00", "pre-deployment"),
                                 backup_at("2026-11-20 09:00:00", "pre-deployment"),
                                 backup_at("2026-11-24 09:00:00", "pre-deployment"),
                                 backup_at("2026-11-03 02:00:00"),
                                 backup_at("2026-11-05 09:00:00", "weird")};
  RetentionRules r;
  r.default_policy.keep_last = 1;
  r.tags["pre-deployment"].keep_within = std::chrono::hours(24 * 7);
  const auto d = plan_retention(b, {}, r, kNow);
  EXPECT_EQ(kept(d), (std::vector<std::string>{"2026-11-20 09:00", "2026-11-24 09:00",
                                               "2026-11-03 02:00", "2026-11-05 09:00"}));
  // A tag without a policy of its own uses the default policy, in its own group.
  EXPECT_EQ(d[6].reasons, std::vector<std::string>{"keep-last 1"});
}

TEST(Retention, AGroupWithoutRulesIsKeptWhole) {
  std::vector<BackupRecord> b = {backup_at("2026-11-01 02:00:00", "manual"),
                                 backup_at("2026-11-02 02:00:00")};
  RetentionRules r;
  r.tags["other"].keep_last = 1;
  const auto d = plan_retention(b, {}, r, kNow);
  EXPECT_TRUE(d[0].keep);
  EXPECT_TRUE(d[1].keep);
  EXPECT_NE(d[0].reasons[0].find("no retention rules for tag manual"), std::string::npos);
}

TEST(Retention, PinnedBackupsAreAlwaysKept) {
  RetentionPolicy p;
  p.keep_last = 1;
  auto b = twice_daily();
  const auto d = plan_retention(b, {b[3].label}, rules_of(p), kNow);
  EXPECT_EQ(kept(d), (std::vector<std::string>{"2026-10-02 14:00", "2026-11-26 14:00"}));
  EXPECT_EQ(d[3].reasons, std::vector<std::string>{"pinned"});
}

TEST(Retention, PitrWindowKeepsTheBackupItStartsFromByTheInjectedClock) {
  RetentionPolicy p;
  p.keep_last = 1;
  RetentionRules r = rules_of(p);
  r.pitr_window = std::chrono::hours(24 * 3);
  const auto d = plan_retention(twice_daily(), {}, r, kNow);
  // now - 3d = 2026-11-23 20:00: the newest backup that ended before it is 11-23 14:00.
  EXPECT_EQ(kept(d), (std::vector<std::string>{"2026-11-23 14:00", "2026-11-26 14:00"}));
  // The same set a day later moves the anchor a day on.
  const auto later = plan_retention(twice_daily(), {}, r, kNow + 86400LL * 1000000);
  EXPECT_EQ(kept(later), (std::vector<std::string>{"2026-11-24 14:00", "2026-11-26 14:00"}));
  // A window longer than the history keeps the oldest backup.
  r.pitr_window = std::chrono::hours(24 * 365);
  EXPECT_EQ(kept(plan_retention(twice_daily(), {}, r, kNow)).front(), "2026-10-01 02:00");
}

// Snapshots: the same rules, grouped by volume and tag.

files::SnapshotRecord snapshot_at(const std::string& volume, const char* start,
                                  const std::string& tag = "") {
  files::SnapshotRecord r;
  r.volume = volume;
  r.start_us = at(start);
  r.end_us = r.start_us + 60'000'000;
  r.label = format_time_us(r.start_us);
  r.tag = tag;
  return r;
}

// "<volume> <time>" of the kept snapshots, in the order given.
std::vector<std::string> kept_snapshots(const std::vector<RetentionDecision>& decisions) {
  std::vector<std::string> out;
  for (const auto& d : decisions)
    if (d.keep) out.push_back(d.volume + " " + d.label.substr(0, 16));
  return out;
}

// Daily snapshots of app_data and of reports at 02:00, 2026-10-01 .. 11-26, and
// two monthly-tagged ones of app_data.
std::vector<files::SnapshotRecord> two_volumes() {
  std::vector<files::SnapshotRecord> out;
  for (std::int64_t day = at("2026-10-01 00:00:00"); day <= at("2026-11-26 00:00:00");
       day += 86400LL * 1000000) {
    const std::string t = format_time_us(day + 2 * 3600LL * 1000000);
    out.push_back(snapshot_at("app_data", t.c_str()));
    out.push_back(snapshot_at("reports", t.c_str()));
  }
  out.push_back(snapshot_at("app_data", "2026-10-01 03:00:00", "monthly"));
  out.push_back(snapshot_at("app_data", "2026-11-01 03:00:00", "monthly"));
  return out;
}

TEST(SnapshotRetention, EachVolumeAndTagFollowsItsOwnPolicyInItsOwnGroup) {
  SnapshotRetentionRules r;
  r.volumes["app_data"].keep_daily = 2;
  r.volume_tags[{"app_data", "monthly"}].keep_last = 1;
  r.volumes["reports"].keep_within = std::chrono::hours(24);
  const auto d = plan_snapshot_retention(two_volumes(), r);
  EXPECT_EQ(kept_snapshots(d),
            (std::vector<std::string>{"app_data 2026-11-25 02:00", "reports 2026-11-25 02:00",
                                      "app_data 2026-11-26 02:00", "reports 2026-11-26 02:00",
                                      "app_data 2026-11-01 03:00"}));
  // The monthly snapshots are their own group: app_data's keep-daily 2 would
  // keep neither, their own keep-last 1 keeps the newer.
  EXPECT_EQ(d[d.size() - 1].reasons, std::vector<std::string>{"keep-last 1"});
  EXPECT_EQ(d[d.size() - 2].reasons,
            std::vector<std::string>{"not kept by keep-last 1 (volume app_data, tag monthly)"});
  EXPECT_EQ(d[0].reasons, std::vector<std::string>{"not kept by keep-daily 2 (volume app_data)"});
  EXPECT_EQ(d[0].volume, "app_data");
}

TEST(SnapshotRetention, AVolumeWithoutAPolicyOfItsOwnFollowsTheAllVolumesOne) {
  SnapshotRetentionRules r;
  r.all_volumes.keep_last = 1;
  r.volumes["app_data"].keep_daily = 1;
  const auto d = plan_snapshot_retention(two_volumes(), r);
  // reports follows all_volumes; app_data its own; app_data's monthly tag has
  // no policy of its own, so app_data's, in a group of its own.
  EXPECT_EQ(kept_snapshots(d),
            (std::vector<std::string>{"app_data 2026-11-26 02:00", "reports 2026-11-26 02:00",
                                      "app_data 2026-11-01 03:00"}));
}

TEST(SnapshotRetention, WithoutAPolicyEverySnapshotIsKept) {
  SnapshotRetentionRules r;
  EXPECT_TRUE(r.empty());
  r.volumes["other"].keep_last = 1;
  EXPECT_FALSE(r.empty());
  const auto snapshots = two_volumes();
  const auto d = plan_snapshot_retention(snapshots, r);
  EXPECT_EQ(kept_snapshots(d).size(), snapshots.size());
  EXPECT_EQ(d[0].reasons, std::vector<std::string>{"no retention rules for volume app_data"});
  // A volume's own policy without rules keeps it whole even when all_volumes has some.
  r.all_volumes.keep_last = 1;
  r.volumes["app_data"] = RetentionPolicy{};
  const auto d2 = plan_snapshot_retention(snapshots, r);
  EXPECT_TRUE(d2[0].keep) << d2[0].reasons[0];
  EXPECT_FALSE(d2[1].keep);  // reports: keep-last 1
}

TEST(SnapshotRetention, TheNewestSnapshotOfAVolumeIsKeptByAnyRule) {
  // However old, and whatever the rule: every rule keeps the newest of a group.
  const std::vector<files::SnapshotRecord> one_old = {
      snapshot_at("app_data", "2020-01-01 00:00:00"),
      snapshot_at("app_data", "2020-01-01 00:10:00")};
  for (const char* rule :
       {"keep-last", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly", "keep-within"}) {
    SnapshotRetentionRules r;
    set_retention_rule(r.volumes["app_data"], rule, std::string(rule) == "keep-within" ? "1m" : "1",
                       "test");
    const auto d = plan_snapshot_retention(one_old, r);
    EXPECT_FALSE(d[0].keep) << rule;
    EXPECT_TRUE(d[1].keep) << rule;
  }
}

TEST(Retention, BadRulesAreUsageErrorsNamingTheKey) {
  RetentionPolicy p;
  try {
    set_retention_rule(p, "keep-dayly", "3", "config [retention]");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("keep-dayly"), std::string::npos);
  }
  EXPECT_THROW(set_retention_rule(p, "keep-last", "-1", "x"), Error);
  EXPECT_THROW(set_retention_rule(p, "keep-within", "soon", "x"), Error);
  set_retention_rule(p, "keep-within", "2w", "x");
  EXPECT_EQ(*p.keep_within, std::chrono::hours(24 * 14));
  EXPECT_EQ(p.describe(), "keep-within 14d");
}

}  // namespace
}  // namespace walvault::ops
