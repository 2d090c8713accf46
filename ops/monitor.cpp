#include "ops/monitor.h"

#include <cstdio>
#include <memory>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/relative_path.h"
#include "core/time_util.h"
#include "ops/info.h"
#include "pg/base_backup.h"
#include "pg/libpq_api.h"
#include "pg/sql_connection.h"
#include "repo/wal_objects.h"

namespace walvault::ops {

namespace {

constexpr const char* kStatusNames[] = {"OK", "WARNING", "CRITICAL"};

struct Findings {
  CheckStatus status = CheckStatus::kOk;
  std::vector<CheckFinding> parts;
  void add(CheckStatus level, const std::string& text) {
    if (static_cast<int>(level) > static_cast<int>(status)) status = level;
    parts.push_back({level, text});
  }
};

std::string age_text(std::int64_t us) {
  const std::int64_t s = us / 1000000;
  char buf[32];
  if (s < 120)
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 7200)
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(s / 60));
  else
    std::snprintf(buf, sizeof buf, "%.1fh", s / 3600.0);
  return buf;
}

void judge_age(Findings& f, const std::string& what, std::int64_t age_us,
               std::chrono::seconds limit, const std::string& detail) {
  const std::int64_t limit_us = static_cast<std::int64_t>(limit.count()) * 1000000;
  const std::string text = what + " " + age_text(age_us) + " ago (" + detail + ")";
  if (age_us > 2 * limit_us)
    f.add(CheckStatus::kCritical, text + ", limit " + age_text(limit_us));
  else if (age_us > limit_us)
    f.add(CheckStatus::kWarning, text + ", limit " + age_text(limit_us));
  else
    f.add(CheckStatus::kOk, text);
}

// Archiving falling behind: the segments PostgreSQL has closed and not yet
// archived (.ready in pg_wal/archive_status) and how long the oldest has
// waited, judged against max_wal_age like the newest archived segment.
void check_ready_backlog(Findings& f, pg::SqlConnection& conn, const CheckOptions& o) {
  std::vector<std::string> ready;
  try {
    ready = conn.row(
        "select count(*)::text, coalesce(extract(epoch from now() - min(modification))"
        "::bigint, 0)::text from pg_ls_archive_statusdir() where name like '%.ready'");
  } catch (const Error& e) {
    f.add(CheckStatus::kWarning, std::string("cannot list the archive status directory (grant "
                                             "pg_monitor): ") +
                                     e.what());
    return;
  }
  if (ready.at(0) == "0") return;
  const std::int64_t age_us = std::stoll(ready.at(1)) * 1000000;
  const std::string what = ready.at(0) + " WAL segment(s) waiting to be archived (.ready), oldest";
  if (o.max_wal_age)
    judge_age(f, what, age_us, *o.max_wal_age, "archive_command falling behind");
  else
    f.add(CheckStatus::kOk, what + " " + age_text(age_us) + " ago");
}

void check_server(Findings& f, repo::Repository& repo, const CheckOptions& o) {
  pg::SqlConnection conn(o.pg, "walvault check");
  if (conn.row("select pg_is_in_recovery()::text").at(0) == "true") {
    f.add(CheckStatus::kWarning, "server is in recovery: archive check skipped");
    return;
  }
  // pg_walfile_name of the switch's end position names the segment it closed
  // (or, with nothing to switch, the last one closed before).
  const std::string segment = conn.row("select pg_walfile_name(pg_switch_wal())").at(0);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + o.archive_timeout;
  bool arrived = false;
  for (;;) {
    if (repo::read_meta(repo, segment)) {
      arrived = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const auto archiver = conn.row(
      "select failed_count::text, coalesce(last_failed_wal, ''), "
      "(coalesce(last_failed_time, '-infinity') > coalesce(last_archived_time, "
      "'-infinity'))::text from pg_stat_archiver");
  if (!arrived) {
    f.add(CheckStatus::kCritical,
          "WAL segment " + segment + " was not archived within " +
              std::to_string(o.archive_timeout.count()) + "s (archive_command failures: " +
              archiver.at(0) + (archiver.at(1).empty() ? "" : ", last " + archiver.at(1)) + ")");
    check_ready_backlog(f, conn, o);
    return;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, " in %.1fs", secs);
  f.add(CheckStatus::kOk, "archive_command works (" + segment + " archived" + buf + ")");
  if (archiver.at(2) == "true")
    f.add(CheckStatus::kWarning, "pg_stat_archiver: the last attempt failed (" + archiver.at(1) +
                                     ", " + archiver.at(0) + " failures)");
  check_ready_backlog(f, conn, o);
}

// The newest of each group (a volume's snapshots, a database's dumps)
// against its limit (`own` has the group: its own, or "off"), and the groups
// given a limit of their own that have none. `what`: "snapshot" or "dump";
// `group`: "volume" or "database".
template <typename Group, typename Describe>
void check_newest(Findings& f, const std::vector<Group>& groups, std::chrono::seconds limit,
                  const std::map<std::string, std::optional<std::chrono::seconds>>& own,
                  const std::string& what, const std::string& group, std::int64_t now,
                  Describe describe) {
  std::set<std::string> seen;
  for (const Group& g : groups) {
    const auto [name, end_us, id] = describe(g);
    seen.insert(name);
    const auto it = own.find(name);
    if (it != own.end() && !it->second) continue;  // "off"
    judge_age(f, "last " + what + " of " + name, now - end_us,
              it != own.end() ? *it->second : limit, id);
  }
  for (const auto& [name, own_limit] : own)
    if (own_limit && !seen.count(name))
      f.add(CheckStatus::kCritical, "no " + what + " of " + group + " " + name);
}

// The snapshot findings (check_newest), and unreadable files of each
// volume's newest snapshot.
void check_snapshots(Findings& f, const InfoReport& info, const CheckOptions& o, std::int64_t now) {
  check_newest(f, info.volumes, o.max_snapshot_age, o.volume_snapshot_age, "snapshot", "volume",
               now, [](const VolumeInfo& v) {
                 return std::tuple(v.volume, v.newest.end_us, files::snapshot_id(v.newest));
               });
  for (const VolumeInfo& v : info.volumes) {
    const auto own = o.volume_snapshot_age.find(v.volume);
    if (own != o.volume_snapshot_age.end() && !own->second) continue;  // "off"
    if (v.newest.unreadable > 0)
      f.add(CheckStatus::kWarning, "last snapshot of " + v.volume + ": " +
                                       std::to_string(v.newest.unreadable) + " unreadable");
  }
}

// "DURATION" (every group: `all`), "NAME=DURATION" or "NAME=off" (`own`).
void set_age_limit(std::chrono::seconds& all,
                   std::map<std::string, std::optional<std::chrono::seconds>>& own,
                   const std::string& value, const std::string& flag, const std::string& group) {
  const std::size_t eq = value.find('=');
  if (eq == std::string::npos) {
    all = parse_duration(flag, value);
    return;
  }
  const std::string name = value.substr(0, eq), limit = value.substr(eq + 1);
  if (auto problem = files::volume_problem(name))
    throw Error(ErrorCode::kUsage,
                flag + ": " + group + " " + printable_name(name) + " " + *problem);
  own[name] =
      limit == "off" ? std::nullopt : std::optional(parse_duration(flag + " " + name, limit));
}

}  // namespace

void set_snapshot_age_limit(CheckOptions& options, const std::string& value) {
  set_age_limit(options.max_snapshot_age, options.volume_snapshot_age, value, "--max-snapshot-age",
                "volume");
}

void set_dump_age_limit(CheckOptions& options, const std::string& value) {
  set_age_limit(options.max_dump_age, options.database_dump_age, value, "--max-dump-age",
                "database");
}

CheckResult run_check(repo::Repository& repo, const CheckOptions& o) {
  Findings f;
  try {
    // The server check first: its forced switch makes "last WAL" current.
    if (!o.pg.empty()) check_server(f, repo, o);
    const InfoReport info = repository_info(repo);
    const std::int64_t now = now_unix_us();
    if (o.max_backup_age && info.backups.empty()) {
      f.add(CheckStatus::kCritical, "no backup");
    } else if (o.max_backup_age) {
      const auto& last = info.backups.back();
      judge_age(f, "last backup", now - last.stop_time_us, *o.max_backup_age, last.label);
    }
    if (o.max_wal_age && (!info.last_segment || !info.last_archived_us))
      f.add(CheckStatus::kCritical, "no archived WAL");
    else if (o.max_wal_age)
      judge_age(f, "last WAL", now - *info.last_archived_us, *o.max_wal_age, *info.last_segment);
    check_snapshots(f, info, o, now);
    check_newest(f, info.dumps, o.max_dump_age, o.database_dump_age, "dump", "database", now,
                 [](const DatabaseDumpInfo& d) {
                   return std::tuple(d.database, d.newest.end_us, dump::dump_id(d.newest));
                 });
    if (info.space && info.space->total_bytes > 0) {
      const auto used = info.space->total_bytes - info.space->free_bytes;
      const int pct = static_cast<int>(100.0 * static_cast<double>(used) /
                                       static_cast<double>(info.space->total_bytes));
      if (pct > o.disk_warn_percent)
        f.add(CheckStatus::kWarning, "repository disk " + std::to_string(pct) + "% full");
    }
  } catch (const Error& e) {
    f.add(CheckStatus::kCritical, e.what());
  }
  CheckResult r;
  r.status = f.status;
  r.line = std::string("WALVAULT ") + kStatusNames[static_cast<int>(f.status)] + " - ";
  for (std::size_t i = 0; i < f.parts.size(); ++i) r.line += (i ? "; " : "") + f.parts[i].text;
  r.findings = std::move(f.parts);
  return r;
}

std::string check_json(const CheckResult& result) {
  nlohmann::json findings = nlohmann::json::array();
  for (const CheckFinding& finding : result.findings)
    findings.push_back(
        {{"status", kStatusNames[static_cast<int>(finding.status)]}, {"text", finding.text}});
  return nlohmann::json{{"status", kStatusNames[static_cast<int>(result.status)]},
                        {"exit_status", static_cast<int>(result.status)},
                        {"findings", findings}}
      .dump();
}

namespace {

// The per-volume snapshot families, through `family(name, help, samples)`.
template <typename Family>
void volume_metrics(const InfoReport& info, Family& family) {
  const std::int64_t now = now_unix_us();
  auto per_volume = [&](const char* name, const char* help, auto value_of) {
    std::vector<std::pair<std::string, double>> samples;
    for (const VolumeInfo& v : info.volumes)
      samples.emplace_back("{repository=\"" + info.repo_id + "\",volume=\"" + v.volume + "\"}",
                           static_cast<double>(value_of(v)));
    family(name, help, samples);
  };
  per_volume("walvault_snapshots", "File-volume snapshots in the repository.",
             [](const VolumeInfo& v) { return v.snapshots; });
  per_volume("walvault_last_snapshot_timestamp_seconds",
             "When the volume's newest snapshot ended (Unix time).",
             [](const VolumeInfo& v) { return v.newest.end_us / 1e6; });
  per_volume("walvault_last_snapshot_age_seconds",
             "Seconds since the volume's newest snapshot ended.",
             [&](const VolumeInfo& v) { return (now - v.newest.end_us) / 1e6; });
  per_volume("walvault_last_snapshot_duration_seconds",
             "How long the volume's newest snapshot took.",
             [](const VolumeInfo& v) { return (v.newest.end_us - v.newest.start_us) / 1e6; });
  per_volume("walvault_last_snapshot_bytes", "Size of the files in the volume's newest snapshot.",
             [](const VolumeInfo& v) { return v.newest.bytes; });
  per_volume("walvault_last_snapshot_added_bytes",
             "Bytes the volume's newest snapshot added to the repository.",
             [](const VolumeInfo& v) { return v.newest.added_bytes; });
  per_volume("walvault_last_snapshot_unreadable_files",
             "Entries the volume's newest snapshot could not read.",
             [](const VolumeInfo& v) { return v.newest.unreadable; });
}

// The per-database dump families, through `family(name, help, samples)`.
template <typename Family>
void dump_metrics(const InfoReport& info, Family& family) {
  const std::int64_t now = now_unix_us();
  auto per_database = [&](const char* name, const char* help, auto value_of) {
    std::vector<std::pair<std::string, double>> samples;
    for (const DatabaseDumpInfo& d : info.dumps)
      samples.emplace_back("{repository=\"" + info.repo_id + "\",database=\"" + d.database + "\"}",
                           static_cast<double>(value_of(d)));
    family(name, help, samples);
  };
  per_database("walvault_dumps", "Logical dumps in the repository.",
               [](const DatabaseDumpInfo& d) { return d.dumps; });
  per_database("walvault_last_dump_timestamp_seconds",
               "When the database's newest dump ended (Unix time).",
               [](const DatabaseDumpInfo& d) { return d.newest.end_us / 1e6; });
  per_database("walvault_last_dump_age_seconds", "Seconds since the database's newest dump ended.",
               [&](const DatabaseDumpInfo& d) { return (now - d.newest.end_us) / 1e6; });
  per_database("walvault_last_dump_bytes", "Size of the database's newest dump.",
               [](const DatabaseDumpInfo& d) { return d.newest.bytes; });
  per_database("walvault_last_dump_added_bytes",
               "Bytes the database's newest dump added to the repository.",
               [](const DatabaseDumpInfo& d) { return d.newest.added_bytes; });
}

}  // namespace

std::string metrics_text(repo::Repository& repo) {
  const InfoReport info = repository_info(repo);
  const std::string labels = "{repository=\"" + info.repo_id + "\"}";
  std::string out;
  // One metric family: HELP and TYPE, then a sample per (labels, value).
  auto family = [&](const char* name, const char* help,
                    const std::vector<std::pair<std::string, double>>& samples) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
    for (const auto& [sample_labels, value] : samples) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", value);
      out += name + sample_labels + " " + buf + "\n";
    }
  };
  auto gauge = [&](const char* name, const char* help, double value) {
    family(name, help, {{labels, value}});
  };
  gauge("walvault_backups", "Backups in the repository.", static_cast<double>(info.backups.size()));
  if (!info.backups.empty()) {
    const auto& b = info.backups.back();
    gauge("walvault_last_backup_timestamp_seconds", "When the newest backup ended (Unix time).",
          b.stop_time_us / 1e6);
    gauge("walvault_last_backup_duration_seconds", "How long the newest backup took.",
          b.duration_s);
    gauge("walvault_last_backup_logical_bytes", "Size of the newest backup's files.",
          static_cast<double>(b.logical_bytes));
    gauge("walvault_last_backup_stored_bytes", "Bytes the newest backup added to the repository.",
          static_cast<double>(b.stored_bytes));
  }
  gauge("walvault_wal_segments", "Archived WAL segments.", static_cast<double>(info.wal_segments));
  if (info.last_archived_us) {
    gauge("walvault_last_archived_wal_timestamp_seconds",
          "When the newest WAL segment was archived (Unix time).", *info.last_archived_us / 1e6);
    gauge("walvault_archive_lag_seconds", "Seconds since the newest WAL segment was archived.",
          (now_unix_us() - *info.last_archived_us) / 1e6);
  }
  if (info.latest_commit_us)
    gauge("walvault_latest_commit_timestamp_seconds",
          "Latest commit time recoverable from the archive (Unix time).",
          *info.latest_commit_us / 1e6);
  gauge("walvault_repository_bytes", "Bytes stored in the repository.",
        static_cast<double>(info.size_bytes));
  if (info.dedup_ratio)
    gauge("walvault_dedup_ratio", "Logical backup and snapshot bytes per stored pack byte.",
          *info.dedup_ratio);
  if (const auto& v = info.last_verify) {
    gauge("walvault_last_verify_timestamp_seconds", "When the last verify ended (Unix time).",
          v->end_us / 1e6);
    gauge("walvault_last_verify_success", "1 when the last verify found no error, else 0.",
          v->outcome == "ok" ? 1 : 0);
  }
  if (const auto& d = info.last_drill) {
    gauge("walvault_last_drill_timestamp_seconds", "When the last restore drill ended (Unix time).",
          d->end_us / 1e6);
    gauge("walvault_last_drill_success", "1 when the last restore drill passed, else 0.",
          d->outcome == "ok" ? 1 : 0);
    if (d->extra.contains("total_s") && d->extra.at("total_s").is_number())
      gauge("walvault_last_drill_recovery_seconds",
            "Total time of the last restore drill: restore, recovery and checks.",
            d->extra.at("total_s").get<double>());
  }
  if (!info.volumes.empty()) volume_metrics(info, family);
  if (!info.dumps.empty()) dump_metrics(info, family);
  if (info.space) {
    gauge("walvault_disk_free_bytes", "Free bytes on the repository's file system.",
          static_cast<double>(info.space->free_bytes));
    gauge("walvault_disk_total_bytes", "Size of the repository's file system.",
          static_cast<double>(info.space->total_bytes));
  }
  return out;
}

}  // namespace walvault::ops
