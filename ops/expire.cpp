#include "ops/expire.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "basebackup/backup_record.h"
#include "core/error.h"
#include "core/time_util.h"
#include "dump/dump_record.h"
#include "files/snapshot_record.h"
#include "pg/wal_name.h"
#include "repo/layout.h"
#include "repo/wal_catalogue.h"

namespace walvault::ops {

namespace {

// The objects an expire run removes, in the order it removes them.
struct Removals {
  std::vector<std::string> records, rest;  // backups: records first, then file lists and pins
  std::vector<std::string> wal_meta, wal_data;
  std::vector<std::string> snapshot_records;
  std::vector<std::string> dump_records;
};

// Decides the backups and finds the WAL only expired backups needed.
void plan_backups(repo::Repository& repo, const ExpireOptions& options, std::int64_t now,
                  ExpireReport& report, Removals& removals) {
  report.backups_considered = true;
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
  if (first_needed) {
    const std::uint32_t seg_size = backups.front().wal_segment_size;
    for (const store::ObjectInfo& info : repo.store().list(repo::kWalPrefix)) {
      const auto file = repo::wal_file_of_object(info.name);
      if (!file || file->kind == pg::WalFileKind::kHistory) continue;
      if (pg::segment_number(*file, seg_size) >= *first_needed) continue;
      // A block map goes with its metadata and is not a WAL file of its own.
      const bool meta =
          info.name.starts_with(repo::kMetaPrefix) || info.name.starts_with(repo::kBlockMapPrefix);
      (meta ? removals.wal_meta : removals.wal_data).push_back(info.name);
      report.wal_bytes_removed += info.size;
      if (!meta) ++report.wal_files_removed;
    }
  }
  for (const RetentionDecision& d : report.decisions) {
    if (d.keep) continue;
    report.removed.push_back(d.label);
    removals.records.push_back(basebackup::record_object_name(d.label));
    removals.rest.push_back(basebackup::files_object_name(d.label));
    removals.rest.push_back(basebackup::pin_object_name(d.label));
  }
}

void plan_snapshots(repo::Repository& repo, const ExpireOptions& options, ExpireReport& report,
                    Removals& removals) {
  report.snapshots_considered = true;
  report.snapshot_decisions =
      plan_snapshot_retention(files::list_snapshots(repo), options.snapshot_rules);
  for (const RetentionDecision& d : report.snapshot_decisions) {
    if (d.keep) continue;
    report.snapshots_removed.push_back(d.volume + "/" + d.label);
    removals.snapshot_records.push_back(repo::snapshot_object_name(d.volume, d.label));
  }
}

void plan_dumps(repo::Repository& repo, const ExpireOptions& options, ExpireReport& report,
                Removals& removals) {
  report.dumps_considered = true;
  report.dump_decisions = plan_dump_retention(dump::list_dumps(repo), options.dump_rules);
  for (const RetentionDecision& d : report.dump_decisions) {
    if (d.keep) continue;
    report.dumps_removed.push_back(d.volume + "/" + d.label);
    removals.dump_records.push_back(repo::dump_object_name(d.volume, d.label));
  }
}

}  // namespace

ExpireReport expire_backups(repo::Repository& repo, const ExpireOptions& options,
                            const repo::RepoLock* lock) {
  if (options.rules.empty() && options.snapshot_rules.empty() && options.dump_rules.empty())
    throw Error(ErrorCode::kUsage,
                "expire: no retention rules (give --keep-last/--keep-within/--keep-daily/"
                "--keep-weekly/--keep-monthly/--keep-yearly or --pitr-window, or a [retention], "
                "[files-retention] or [dump-retention] section in the config file)");
  ExpireReport report;
  report.dry_run = options.dry_run;
  const std::int64_t now = options.now_us ? options.now_us : now_unix_us();
  Removals removals;
  if (!options.rules.empty()) plan_backups(repo, options, now, report, removals);
  if (!options.snapshot_rules.empty()) plan_snapshots(repo, options, report, removals);
  if (!options.dump_rules.empty()) plan_dumps(repo, options, report, removals);
  if (options.dry_run) return report;

  if (lock) lock->check_held();
  // A backup stops existing with its record; its file list and pin follow.
  repo.store().remove_many(removals.records);
  repo.store().remove_many(removals.rest);
  // A segment stops being archived with its metadata; its data follows. The
  // catalogues that list it go first, so none names a removed segment.
  repo::remove_catalogued_segments(repo, removals.wal_meta);
  repo.store().remove_many(removals.wal_meta);
  repo.store().remove_many(removals.wal_data);
  // A snapshot is its record; its trees and chunks are gc's.
  repo.store().remove_many(removals.snapshot_records);
  // A dump is its record; its chunks are gc's.
  repo.store().remove_many(removals.dump_records);
  return report;
}

namespace {

// "keep   <name> <tag> <time>  <reasons>"; a snapshot's name is <volume>/<label>.
std::string decision_line(const RetentionDecision& d) {
  std::string reasons;
  for (const std::string& reason : d.reasons) reasons += (reasons.empty() ? "" : "; ") + reason;
  const std::string name = d.volume.empty() ? d.label : d.volume + "/" + d.label;
  char line[512];
  std::snprintf(line, sizeof line, "%-6s %-18s %-14s %s  ", d.keep ? "keep" : "expire",
                name.c_str(), d.tag.empty() ? "-" : d.tag.c_str(),
                format_time_us(d.time_us).substr(0, 19).c_str());
  return line + reasons + "\n";
}

nlohmann::json decision_json(const RetentionDecision& d) {
  return {{"label", d.label},
          {"tag", d.tag},
          {"start_time", format_time_us(d.time_us)},
          {"keep", d.keep},
          {"reasons", d.reasons}};
}

}  // namespace

std::string expire_report_text(const ExpireReport& r) {
  std::string out;
  if (r.backups_considered) {
    for (const RetentionDecision& d : r.decisions) out += decision_line(d);
    char summary[512];
    std::snprintf(summary, sizeof summary,
                  "%s%zu of %zu backups %s; WAL before %s: %llu files (%.1f MiB) %s\n",
                  r.dry_run ? "dry run: " : "", r.removed.size(), r.decisions.size(),
                  r.dry_run ? "would expire" : "expired",
                  r.wal_kept_from ? r.wal_kept_from->c_str() : "(no backup retained: all kept)",
                  static_cast<unsigned long long>(r.wal_files_removed),
                  static_cast<double>(r.wal_bytes_removed) / (1 << 20),
                  r.dry_run ? "would go" : "removed");
    out += summary;
  } else {
    out += "backups: no retention rules: every backup and all WAL kept\n";
  }
  if (!r.snapshots_considered) {
    out += "snapshots: no retention rules: every snapshot kept\n";
  } else {
    for (const RetentionDecision& d : r.snapshot_decisions) out += decision_line(d);
    out += (r.dry_run ? "dry run: " : "") + std::to_string(r.snapshots_removed.size()) + " of " +
           std::to_string(r.snapshot_decisions.size()) + " snapshots " +
           (r.dry_run ? "would expire" : "expired") +
           " (gc frees the data no other snapshot or backup shares)\n";
  }
  // Dumps are named only where there is a rule or a dump: the lines before dumps existed stay.
  if (!r.dumps_considered) return out;
  for (const RetentionDecision& d : r.dump_decisions) out += decision_line(d);
  return out + (r.dry_run ? "dry run: " : "") + std::to_string(r.dumps_removed.size()) + " of " +
         std::to_string(r.dump_decisions.size()) + " dumps " +
         (r.dry_run ? "would expire" : "expired") + " (gc frees the data nothing else shares)\n";
}

std::string expire_report_json(const ExpireReport& r) {
  nlohmann::json j;
  j["dry_run"] = r.dry_run;
  j["backups_considered"] = r.backups_considered;
  j["backups"] = nlohmann::json::array();
  for (const RetentionDecision& d : r.decisions) j["backups"].push_back(decision_json(d));
  j["expired"] = r.removed;
  j["wal_kept_from"] = r.wal_kept_from ? nlohmann::json(*r.wal_kept_from) : nlohmann::json(nullptr);
  j["wal_files_removed"] = r.wal_files_removed;
  j["wal_bytes_removed"] = r.wal_bytes_removed;
  j["snapshots_considered"] = r.snapshots_considered;
  j["snapshots"] = nlohmann::json::array();
  for (const RetentionDecision& d : r.snapshot_decisions) {
    nlohmann::json s = decision_json(d);
    s["volume"] = d.volume;
    s["id"] = files::snapshot_id(files::SnapshotRecord{.volume = d.volume, .label = d.label});
    j["snapshots"].push_back(std::move(s));
  }
  j["expired_snapshots"] = r.snapshots_removed;
  j["dumps_considered"] = r.dumps_considered;
  j["dumps"] = nlohmann::json::array();
  for (const RetentionDecision& d : r.dump_decisions) {
    nlohmann::json s = decision_json(d);
    s["database"] = d.volume;
    s["id"] = dump::dump_id(dump::DumpRecord{.database = d.volume, .label = d.label});
    j["dumps"].push_back(std::move(s));
  }
  j["expired_dumps"] = r.dumps_removed;
  return j.dump(2) + "\n";
}

}  // namespace walvault::ops
