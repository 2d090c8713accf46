#include "ops/retention.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <tuple>
#include <utility>

#include "core/error.h"
#include "core/time_util.h"

namespace walvault::ops {

namespace {

using std::chrono::days;
using std::chrono::sys_days;
using std::chrono::year_month_day;

sys_days day_of(std::int64_t time_us) {
  return std::chrono::floor<days>(
      std::chrono::sys_time<std::chrono::microseconds>(std::chrono::microseconds(time_us)));
}

std::string day_key(std::int64_t t) {
  const year_month_day ymd{day_of(t)};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

// ISO 8601 week: the week (Monday..Sunday) belongs to the year of its Thursday.
std::string week_key(std::int64_t t) {
  const sys_days d = day_of(t);
  const unsigned iso_weekday = std::chrono::weekday{d}.iso_encoding();  // Monday = 1
  const sys_days thursday = d - days(iso_weekday - 1) + days(3);
  const std::chrono::year year = year_month_day{thursday}.year();
  const sys_days jan1 = sys_days{year / std::chrono::January / 1};
  const int week = static_cast<int>((thursday - jan1).count() / 7) + 1;
  char buf[32];  // room for any int year the compiler can imagine
  std::snprintf(buf, sizeof buf, "%04d-W%02d", static_cast<int>(year), week);
  return buf;
}

std::string month_key(std::int64_t t) { return day_key(t).substr(0, 7); }
std::string year_key(std::int64_t t) { return day_key(t).substr(0, 4); }

struct Bucket {
  const char* name;
  int count;
  std::function<std::string(std::int64_t)> key;
  std::string last;
};

// Decides the members of one group (indexes into `out`, whose label and
// time_us are set) under `policy`; `group` names the group in the reasons.
void decide_group(std::vector<RetentionDecision>& out, std::vector<std::size_t> members,
                  const RetentionPolicy& policy, const std::string& group) {
  if (policy.empty()) {
    for (std::size_t i : members) {
      out[i].keep = true;
      out[i].reasons.push_back("no retention rules for " + group);
    }
    return;
  }
  // Newest first.
  std::sort(members.begin(), members.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(out[a].time_us, out[a].label) > std::tie(out[b].time_us, out[b].label);
  });
  std::array<Bucket, 4> buckets = {{{"keep-daily", policy.keep_daily, day_key, ""},
                                    {"keep-weekly", policy.keep_weekly, week_key, ""},
                                    {"keep-monthly", policy.keep_monthly, month_key, ""},
                                    {"keep-yearly", policy.keep_yearly, year_key, ""}}};
  const std::int64_t newest = out[members.front()].time_us;
  for (std::size_t rank = 0; rank < members.size(); ++rank) {
    RetentionDecision& d = out[members[rank]];
    if (rank < static_cast<std::size_t>(policy.keep_last))
      d.reasons.push_back("keep-last " + std::to_string(policy.keep_last));
    if (policy.keep_within &&
        newest - d.time_us <= std::chrono::microseconds(*policy.keep_within).count())
      d.reasons.push_back("keep-within " + format_duration(*policy.keep_within));
    for (Bucket& b : buckets) {
      if (b.count <= 0) continue;
      const std::string key = b.key(d.time_us);
      if (key == b.last) continue;
      b.last = key;
      --b.count;
      d.reasons.push_back(std::string(b.name) + " " + key);
    }
    d.keep = !d.reasons.empty();
    if (!d.keep) d.reasons.push_back("not kept by " + policy.describe() + " (" + group + ")");
  }
}

}  // namespace

bool RetentionPolicy::empty() const {
  return keep_last == 0 && keep_daily == 0 && keep_weekly == 0 && keep_monthly == 0 &&
         keep_yearly == 0 && !keep_within;
}

std::string RetentionPolicy::describe() const {
  std::string out;
  auto add = [&](const char* name, const std::string& value) {
    out += (out.empty() ? "" : ", ") + std::string(name) + " " + value;
  };
  if (keep_last) add("keep-last", std::to_string(keep_last));
  if (keep_within) add("keep-within", format_duration(*keep_within));
  if (keep_daily) add("keep-daily", std::to_string(keep_daily));
  if (keep_weekly) add("keep-weekly", std::to_string(keep_weekly));
  if (keep_monthly) add("keep-monthly", std::to_string(keep_monthly));
  if (keep_yearly) add("keep-yearly", std::to_string(keep_yearly));
  return out.empty() ? "no rules" : out;
}

const RetentionPolicy& RetentionRules::policy_for(const std::string& tag) const {
  const auto it = tags.find(tag);
  return it != tags.end() ? it->second : default_policy;
}

const RetentionPolicy& SnapshotRetentionRules::policy_for(const std::string& volume,
                                                          const std::string& tag) const {
  if (const auto it = volume_tags.find({volume, tag}); it != volume_tags.end()) return it->second;
  if (const auto it = volumes.find(volume); it != volumes.end()) return it->second;
  return all_volumes;
}

bool SnapshotRetentionRules::empty() const {
  const auto no_rules = [](const auto& entry) { return entry.second.empty(); };
  return all_volumes.empty() && std::all_of(volumes.begin(), volumes.end(), no_rules) &&
         std::all_of(volume_tags.begin(), volume_tags.end(), no_rules);
}

bool RetentionRules::empty() const {
  if (!default_policy.empty() || pitr_window) return false;
  return std::all_of(tags.begin(), tags.end(), [](const auto& t) { return t.second.empty(); });
}

std::vector<RetentionDecision> plan_retention(const std::vector<basebackup::BackupRecord>& backups,
                                              const std::set<std::string>& pinned,
                                              const RetentionRules& rules, std::int64_t now_us) {
  std::vector<RetentionDecision> out(backups.size());
  std::map<std::string, std::vector<std::size_t>> groups;  // tag -> indexes
  for (std::size_t i = 0; i < backups.size(); ++i) {
    out[i].label = backups[i].label;
    out[i].tag = backups[i].tag;
    out[i].time_us = backups[i].start_time_us;
    groups[backups[i].tag].push_back(i);
  }
  for (auto& [tag, members] : groups)
    decide_group(out, std::move(members), rules.policy_for(tag),
                 tag.empty() ? "untagged" : "tag " + tag);
  for (RetentionDecision& d : out) {
    if (!pinned.count(d.label)) continue;
    if (!d.keep) d.reasons.clear();
    d.keep = true;
    d.reasons.insert(d.reasons.begin(), "pinned");
  }
  if (rules.pitr_window && !backups.empty()) {
    const std::int64_t cutoff = now_us - std::chrono::microseconds(*rules.pitr_window).count();
    std::optional<std::size_t> anchor;
    for (std::size_t i = 0; i < backups.size(); ++i) {
      if (backups[i].stop_time_us > cutoff) continue;
      if (!anchor || backups[i].stop_time_us > backups[*anchor].stop_time_us) anchor = i;
    }
    if (!anchor) {
      anchor = 0;
      for (std::size_t i = 1; i < backups.size(); ++i)
        if (backups[i].start_time_us < backups[*anchor].start_time_us) anchor = i;
    }
    RetentionDecision& d = out[*anchor];
    if (!d.keep) d.reasons.clear();
    d.keep = true;
    d.reasons.push_back("pitr-window " + format_duration(*rules.pitr_window));
  }
  return out;
}

namespace {

// Decisions for records grouped by name (`volume`: a volume or a database)
// and tag; `out` holds each one's volume, label, tag and time.
std::vector<RetentionDecision> plan_grouped(std::vector<RetentionDecision> out,
                                            const SnapshotRetentionRules& rules,
                                            const std::string& what) {
  std::map<std::pair<std::string, std::string>, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < out.size(); ++i) groups[{out[i].volume, out[i].tag}].push_back(i);
  for (auto& [key, members] : groups) {
    const auto& [volume, tag] = key;
    decide_group(out, std::move(members), rules.policy_for(volume, tag),
                 what + " " + volume + (tag.empty() ? "" : ", tag " + tag));
  }
  return out;
}

}  // namespace

std::vector<RetentionDecision> plan_snapshot_retention(
    const std::vector<files::SnapshotRecord>& snapshots, const SnapshotRetentionRules& rules) {
  std::vector<RetentionDecision> out(snapshots.size());
  for (std::size_t i = 0; i < snapshots.size(); ++i) {
    out[i].volume = snapshots[i].volume;
    out[i].label = snapshots[i].label;
    out[i].tag = snapshots[i].tag;
    out[i].time_us = snapshots[i].start_us;
  }
  return plan_grouped(std::move(out), rules, "volume");
}

std::vector<RetentionDecision> plan_dump_retention(const std::vector<dump::DumpRecord>& dumps,
                                                   const SnapshotRetentionRules& rules) {
  std::vector<RetentionDecision> out(dumps.size());
  for (std::size_t i = 0; i < dumps.size(); ++i) {
    out[i].volume = dumps[i].database;
    out[i].label = dumps[i].label;
    out[i].tag = dumps[i].tag;
    out[i].time_us = dumps[i].start_us;
  }
  return plan_grouped(std::move(out), rules, "database");
}

void set_retention_rule(RetentionPolicy& policy, const std::string& name, const std::string& value,
                        const std::string& where) {
  if (name == "keep-within") {
    policy.keep_within = parse_duration(where + " " + name, value);
    return;
  }
  int* field = nullptr;
  if (name == "keep-last") field = &policy.keep_last;
  if (name == "keep-daily") field = &policy.keep_daily;
  if (name == "keep-weekly") field = &policy.keep_weekly;
  if (name == "keep-monthly") field = &policy.keep_monthly;
  if (name == "keep-yearly") field = &policy.keep_yearly;
  if (field == nullptr)
    throw Error(
        ErrorCode::kUsage,
        where + ": unknown retention rule '" + name +
            "' (keep-last, keep-within, keep-daily, keep-weekly, keep-monthly, keep-yearly)");
  char* end = nullptr;
  const long n = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || n < 0 || n > 1000000)
    throw Error(ErrorCode::kUsage, where + " " + name + ": '" + value + "' is not a count");
  *field = static_cast<int>(n);
}

}  // namespace walvault::ops
