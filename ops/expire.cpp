#include "ops/expire.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "basebackup/backup_record.h"
#include "core/error.h"
#include "core/time_util.h"
#include "pg/wal_name.h"
#include "repo/layout.h"

namespace walvault::ops {

ExpireReport expire_backups(repo::Repository& repo, const ExpireOptions& options,
                            const repo::RepoLock* lock) {
  if (options.rules.empty())
    throw Error(ErrorCode::kUsage,
                "expire: no retention rules (give --keep-last/--keep-within/--keep-daily/"
                "--keep-weekly/--keep-monthly/--keep-yearly or --pitr-window, or a [retention] "
                "section in the config file)");
  ExpireReport report;
  report.dry_run = options.dry_run;
  const std::int64_t now = options.now_us ? options.now_us : now_unix_us();
  const std::vector<basebackup::BackupRecord> backups = basebackup::list_backups(repo);
  std::set<std::string> pinned;
  for (const basebackup::BackupRecord& b : backups)
    if (basebackup::read_pin(repo, b.label)) pinned.insert(b.label);
  report.decisions = plan_retention(backups, pinned, options.rules, now);

  // The WAL the retained backups need starts at the smallest start segment.
  std::optional<std::uint64_t> first_needed;
  for (std::size_t i = 0; i < backups.size(); ++i) {
    if (!report.decisions[i].keep) continue;
    const std::uint64_t segno = backups[i].start_lsn / backups[i].wal_segment_size;
    if (!first_needed || segno < *first_needed) {
      first_needed = segno;
      report.wal_kept_from =
          pg::segment_file_name(backups[i].start_timeline, segno, backups[i].wal_segment_size);
    }
  }
  std::vector<std::string> wal_meta, wal_data;
  if (first_needed) {
    const std::uint32_t seg_size = backups.front().wal_segment_size;
    for (const store::ObjectInfo& info : repo.store().list(repo::kWalPrefix)) {
      const auto file = repo::wal_file_of_object(info.name);
      if (!file || file->kind == pg::WalFileKind::kHistory) continue;
      if (pg::segment_number(*file, seg_size) >= *first_needed) continue;
      const bool meta = info.name.starts_with(repo::kMetaPrefix);
      (meta ? wal_meta : wal_data).push_back(info.name);
      report.wal_bytes_removed += info.size;
      if (!meta) ++report.wal_files_removed;
    }
  }

  for (const RetentionDecision& d : report.decisions)
    if (!d.keep) report.removed.push_back(d.label);
  if (options.dry_run) return report;

  if (lock) lock->check_held();
  // A backup stops existing with its record; its file list and pin follow.
  std::vector<std::string> records, rest;
  for (const std::string& label : report.removed) {
    records.push_back(basebackup::record_object_name(label));
    rest.push_back(basebackup::files_object_name(label));
    rest.push_back(basebackup::pin_object_name(label));
  }
  repo.store().remove_many(records);
  repo.store().remove_many(rest);
  // A segment stops being archived with its metadata; its data follows.
  repo.store().remove_many(wal_meta);
  repo.store().remove_many(wal_data);
  return report;
}

std::string expire_report_text(const ExpireReport& r) {
  std::string out;
  for (const RetentionDecision& d : r.decisions) {
    std::string reasons;
    for (const std::string& reason : d.reasons) reasons += (reasons.empty() ? "" : "; ") + reason;
    char line[256];
    std::snprintf(line, sizeof line, "%-6s %-18s %-14s %s  ", d.keep ? "keep" : "expire",
                  d.label.c_str(), d.tag.empty() ? "-" : d.tag.c_str(),
                  format_time_us(d.time_us).substr(0, 19).c_str());
    out += line + reasons + "\n";
  }
  char summary[512];
  std::snprintf(
      summary, sizeof summary, "%s%zu of %zu backups %s; WAL before %s: %llu files (%.1f MiB) %s\n",
      r.dry_run ? "dry run: " : "", r.removed.size(), r.decisions.size(),
      r.dry_run ? "would expire" : "expired",
      r.wal_kept_from ? r.wal_kept_from->c_str() : "(no backup retained: all kept)",
      static_cast<unsigned long long>(r.wal_files_removed),
      static_cast<double>(r.wal_bytes_removed) / (1 << 20), r.dry_run ? "would go" : "removed");
  return out + summary;
}

std::string expire_report_json(const ExpireReport& r) {
  nlohmann::json j;
  j["dry_run"] = r.dry_run;
  j["backups"] = nlohmann::json::array();
  for (const RetentionDecision& d : r.decisions)
    j["backups"].push_back({{"label", d.label},
                            {"tag", d.tag},
                            {"start_time", format_time_us(d.time_us)},
                            {"keep", d.keep},
                            {"reasons", d.reasons}});
  j["expired"] = r.removed;
  j["wal_kept_from"] = r.wal_kept_from ? nlohmann::json(*r.wal_kept_from) : nlohmann::json(nullptr);
  j["wal_files_removed"] = r.wal_files_removed;
  j["wal_bytes_removed"] = r.wal_bytes_removed;
  return j.dump(2) + "\n";
}

}  // namespace walvault::ops
