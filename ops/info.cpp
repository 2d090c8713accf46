#include "ops/info.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/error.h"
#include "core/time_util.h"
#include "repo/layout.h"

namespace walvault::ops {

namespace {

using nlohmann::json;

// A time as "<key>" (text) and "<key>_us" (integer), both null when absent.
void put_time(json& j, const std::string& key, const std::optional<std::int64_t>& us) {
  j[key] = us ? json(format_time_us(*us)) : json(nullptr);
  j[key + "_us"] = us ? json(*us) : json(nullptr);
}

json restore_point_json(const pg::RestorePoint& rp) {
  return {{"name", rp.name},
          {"time", format_time_us(rp.time_us)},
          {"time_us", rp.time_us},
          {"lsn", pg::format_lsn(rp.lsn)}};
}

json window_json(const basebackup::ReachableWindow& w) {
  json j;
  j["timeline"] = w.timeline;
  put_time(j, "earliest_consistent_time", w.earliest_consistent_us);
  j["earliest_consistent_lsn"] =
      w.earliest_consistent_lsn ? json(pg::format_lsn(*w.earliest_consistent_lsn)) : json(nullptr);
  put_time(j, "latest_commit_time", w.latest_commit_us);
  j["latest_lsn"] = w.latest_lsn ? json(pg::format_lsn(*w.latest_lsn)) : json(nullptr);
  j["restore_points"] = json::array();
  for (const auto& rp : w.restore_points) j["restore_points"].push_back(restore_point_json(rp));
  j["restorable"] = w.earliest_consistent_us.has_value();
  j["nothing_reason"] = w.earliest_consistent_us ? json(nullptr) : json(w.nothing_reason);
  return j;
}

// The newest entry of `command`. A damaged one (corruption) is not a reason
// for info (or metrics) to fail: it is left out, and `verify` and `history`
// name it. Any other failure (the store failing: kIo) propagates: info does
// not print "none recorded" for history it could not read.
std::optional<repo::HistoryEntry> last_history_or_none(repo::Repository& repo,
                                                       const std::string& command) {
  try {
    return repo::last_history(repo, command);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruption) throw;
    return std::nullopt;
  }
}

// "ok at 2026-11-26 10:00:00+00 (4.2 s): <detail>"
std::string history_line(const std::optional<repo::HistoryEntry>& e) {
  if (!e) return "none recorded";
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f s", static_cast<double>(e->end_us - e->start_us) / 1e6);
  return e->outcome + " at " + format_time_us(e->start_us) + " (" + secs + "): " + e->detail;
}

// One VolumeInfo per volume of `snapshots` (oldest first), by name.
std::vector<VolumeInfo> volumes_of(const std::vector<files::SnapshotRecord>& snapshots) {
  std::map<std::string, VolumeInfo> by_name;
  for (const files::SnapshotRecord& s : snapshots) {
    VolumeInfo& v = by_name[s.volume];
    if (v.snapshots++ == 0) {
      v.volume = s.volume;
      v.oldest = s;
    }
    v.newest = s;
    v.logical_bytes += s.bytes;
    v.added_bytes += s.added_bytes;
  }
  std::vector<VolumeInfo> out;
  for (auto& [name, v] : by_name) out.push_back(std::move(v));
  return out;
}

json volume_json(const VolumeInfo& v) {
  json j = {{"volume", v.volume},
            {"snapshots", v.snapshots},
            {"logical_bytes", v.logical_bytes},
            {"added_bytes", v.added_bytes}};
  for (const auto& [key, s] : {std::pair{"oldest", &v.oldest}, {"newest", &v.newest}}) {
    json one = {{"id", files::snapshot_id(*s)},
                {"label", s->label},
                {"tag", s->tag},
                {"files", s->files},
                {"bytes", s->bytes},
                {"added_bytes", s->added_bytes},
                {"unreadable", s->unreadable}};
    put_time(one, "start_time", s->start_us);
    put_time(one, "end_time", s->end_us);
    j[key] = std::move(one);
  }
  return j;
}

json dumps_json(const DatabaseDumpInfo& d) {
  json j = {{"database", d.database},
            {"dumps", d.dumps},
            {"logical_bytes", d.logical_bytes},
            {"added_bytes", d.added_bytes}};
  for (const auto& [key, r] : {std::pair{"oldest", &d.oldest}, {"newest", &d.newest}}) {
    json one = {{"id", dump::dump_id(*r)}, {"label", r->label},
                {"tag", r->tag},           {"format", dump::format_name(r->format)},
                {"bytes", r->bytes},       {"added_bytes", r->added_bytes}};
    put_time(one, "start_time", r->start_us);
    put_time(one, "end_time", r->end_us);
    j[key] = std::move(one);
  }
  return j;
}

}  // namespace

std::vector<DatabaseDumpInfo> dumps_by_database(const std::vector<dump::DumpRecord>& dumps) {
  std::map<std::string, DatabaseDumpInfo> by_name;
  for (const dump::DumpRecord& r : dumps) {
    DatabaseDumpInfo& d = by_name[r.database];
    dump::DumpRecord summary = r;
    summary.chunks.clear();
    if (d.dumps++ == 0) {
      d.database = r.database;
      d.oldest = summary;
    }
    d.newest = std::move(summary);
    d.logical_bytes += r.bytes;
    d.added_bytes += r.added_bytes;
  }
  std::vector<DatabaseDumpInfo> out;
  for (auto& [name, d] : by_name) out.push_back(std::move(d));
  return out;
}

InfoReport repository_info(repo::Repository& repo) {
  InfoReport info;
  const auto& c = repo.config();
  info.repo_id = c.repo_id;
  info.location = repo.store().describe();
  info.encrypted = c.encrypted;
  info.format_version = c.format_version;
  info.zstd_level = c.zstd_level;
  info.chunk_size = c.chunk_size;
  info.created_us = c.created_us;
  info.cluster = repo::read_cluster(repo);

  for (const auto& o : repo.store().list("")) {
    ++info.objects;
    info.size_bytes += o.size;
    if (o.name.starts_with(repo::kPackPrefix)) info.pack_bytes += o.size;
    if (o.name.starts_with(repo::kWalPrefix)) info.wal_bytes += o.size;
    const auto backup_object = repo::parse_backup_object(o.name);
    if (backup_object && backup_object->kind == repo::kBackupPinKind)
      info.pinned.insert(backup_object->label);
  }
  if (repo.store().capabilities().reports_space) info.space = repo.store().space();

  const basebackup::ArchiveView view = basebackup::load_archive_view(repo);
  info.backups = view.backups;
  info.volumes = volumes_of(files::list_snapshots(repo));
  info.dumps = dumps_by_database(dump::list_dumps(repo));
  std::uint64_t logical = 0;
  for (const DatabaseDumpInfo& d : info.dumps) logical += d.logical_bytes;
  for (const auto& b : info.backups) logical += b.logical_bytes;
  for (const VolumeInfo& v : info.volumes) logical += v.logical_bytes;
  if (info.pack_bytes > 0)
    info.dedup_ratio = static_cast<double>(logical) / static_cast<double>(info.pack_bytes);

  info.window = basebackup::reachable_window(view, std::nullopt);
  for (const pg::TimeLineId tli : basebackup::archive_timelines(view))
    info.windows.push_back(tli == info.window.timeline ? info.window
                                                       : basebackup::reachable_window(view, tli));
  if (info.windows.empty()) info.windows.push_back(info.window);

  info.wal_segments = view.segments.size();
  const repo::SegmentMeta* last = nullptr;
  for (const auto& m : view.segments) {
    if (!last || m.name > last->name) last = &m;
    const auto& t = m.summary.max_xact_time_us;
    if (t && (!info.latest_commit_us || *t > *info.latest_commit_us)) info.latest_commit_us = t;
    for (const auto& rp : m.summary.restore_points)
      info.restore_points.push_back({rp.name, rp.time_us, rp.lsn, m.timeline, m.name});
  }
  if (last) {
    info.last_segment = last->name;
    info.last_archived_us = last->archived_us;
  }
  std::stable_sort(info.restore_points.begin(), info.restore_points.end(),
                   [](const RestorePointInfo& a, const RestorePointInfo& b) {
                     return std::tie(a.time_us, a.timeline, a.lsn) <
                            std::tie(b.time_us, b.timeline, b.lsn);
                   });
  info.last_verify = last_history_or_none(repo, "verify");
  info.last_drill = last_history_or_none(repo, "drill");
  return info;
}

std::string info_text(const InfoReport& info) {
  std::string out = "repository " + info.repo_id + " at " + info.location + " (" +
                    (info.encrypted ? "encrypted" : "not encrypted") + ", format " +
                    std::to_string(info.format_version) + ", zstd level " +
                    std::to_string(info.zstd_level) + ")\n";
  if (info.cluster)
    out += "cluster: system id " + std::to_string(info.cluster->system_id) + ", PostgreSQL " +
           std::to_string(info.cluster->pg_major) + ", WAL segment size " +
           human_bytes(info.cluster->segment_size) + "\n";
  else
    out += "cluster: none bound yet (no WAL archived)\n";
  out += "size: " + human_bytes(info.size_bytes) + " in " + std::to_string(info.objects) +
         " objects (packs " + human_bytes(info.pack_bytes) + ", WAL " +
         human_bytes(info.wal_bytes) + ")";
  if (info.dedup_ratio) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", *info.dedup_ratio);
    out += ", dedup ratio " + std::string(buf);
  }
  out += "\n";
  if (info.space)
    out += "disk: " + human_bytes(info.space->free_bytes) + " free of " +
           human_bytes(info.space->total_bytes) + "\n";
  out += "backups: " + std::to_string(info.backups.size()) + "\n";
  for (const auto& b : info.backups)
    out += "  " + b.label + (b.tag.empty() ? "" : " [" + b.tag + "]") + ": stopped " +
           format_time_us(b.stop_time_us) + " at " + pg::format_lsn(b.stop_lsn) + " on timeline " +
           std::to_string(b.stop_timeline) + ", " + human_bytes(b.logical_bytes) + ", " +
           human_bytes(b.stored_bytes) + " stored" +
           (info.pinned.count(b.label) ? ", pinned" : "") + "\n";
  for (const auto& w : info.windows)
    out += "window (timeline " + std::to_string(w.timeline) + "): " + w.to_string() + "\n";
  out += "wal: " + std::to_string(info.wal_segments) + " segments";
  if (info.last_segment)
    out += ", last " + *info.last_segment + " archived " + format_time_us(*info.last_archived_us);
  out += ", latest commit " +
         (info.latest_commit_us ? format_time_us(*info.latest_commit_us) : std::string("none")) +
         "\n";
  out += "restore points: " + std::to_string(info.restore_points.size()) + "\n";
  for (const auto& rp : info.restore_points)
    out += "  " + rp.name + ": " + format_time_us(rp.time_us) + " at " + pg::format_lsn(rp.lsn) +
           " on timeline " + std::to_string(rp.timeline) + "\n";
  out += "snapshots: " + std::to_string(info.volumes.size()) + " volumes\n";
  for (const VolumeInfo& v : info.volumes)
    out += "  " + v.volume + ": " + std::to_string(v.snapshots) + " snapshots, oldest " +
           format_time_us(v.oldest.start_us) + ", newest " + format_time_us(v.newest.start_us) +
           " (" + files::snapshot_id(v.newest) + ": " + std::to_string(v.newest.files) +
           " files, " + human_bytes(v.newest.bytes) +
           (v.newest.unreadable ? ", " + std::to_string(v.newest.unreadable) + " unreadable" : "") +
           "), " + human_bytes(v.added_bytes) + " added in all\n";
  if (!info.dumps.empty()) out += "dumps: " + std::to_string(info.dumps.size()) + " databases\n";
  for (const DatabaseDumpInfo& d : info.dumps)
    out += "  " + d.database + ": " + std::to_string(d.dumps) + " dumps, oldest " +
           format_time_us(d.oldest.start_us) + ", newest " + format_time_us(d.newest.start_us) +
           " (" + dump::dump_id(d.newest) + ": " + human_bytes(d.newest.bytes) + "), " +
           human_bytes(d.added_bytes) + " added in all\n";
  out += "last verify: " + history_line(info.last_verify) + "\n";
  out += "last drill: " + history_line(info.last_drill) + "\n";
  return out;
}

std::string info_json(const InfoReport& info) {
  json out;
  json repository = {{"id", info.repo_id},
                     {"location", info.location},
                     {"encrypted", info.encrypted},
                     {"format", info.format_version},
                     {"compression_level", info.zstd_level},
                     {"chunk_size", info.chunk_size}};
  put_time(repository, "created_time", info.created_us);
  out["repository"] = std::move(repository);
  out["cluster"] = info.cluster ? json{{"system_id", std::to_string(info.cluster->system_id)},
                                       {"pg_major", info.cluster->pg_major},
                                       {"segment_size", info.cluster->segment_size},
                                       {"page_size", info.cluster->page_size}}
                                : json(nullptr);
  out["objects"] = info.objects;
  out["size_bytes"] = info.size_bytes;
  out["pack_bytes"] = info.pack_bytes;
  out["wal_bytes"] = info.wal_bytes;
  out["dedup_ratio"] = info.dedup_ratio ? json(*info.dedup_ratio) : json(nullptr);
  out["space"] = info.space ? json{{"total_bytes", info.space->total_bytes},
                                   {"free_bytes", info.space->free_bytes}}
                            : json(nullptr);
  out["backups"] = json::array();
  for (const auto& b : info.backups) {
    json j = {{"label", b.label},
              {"tag", b.tag},
              {"start_lsn", pg::format_lsn(b.start_lsn)},
              {"stop_lsn", pg::format_lsn(b.stop_lsn)},
              {"timeline", b.stop_timeline},
              {"logical_bytes", b.logical_bytes},
              {"stored_bytes", b.stored_bytes},
              {"pinned", info.pinned.count(b.label) > 0}};
    put_time(j, "start_time", b.start_time_us);
    put_time(j, "stop_time", b.stop_time_us);
    out["backups"].push_back(std::move(j));
  }
  out["window"] = window_json(info.window);
  out["windows"] = json::array();
  for (const auto& w : info.windows) out["windows"].push_back(window_json(w));
  json wal = {{"segments", info.wal_segments},
              {"last_segment", info.last_segment ? json(*info.last_segment) : json(nullptr)}};
  put_time(wal, "last_archived_time", info.last_archived_us);
  put_time(wal, "latest_commit_time", info.latest_commit_us);
  out["wal"] = std::move(wal);
  out["restore_points"] = json::array();
  for (const auto& rp : info.restore_points) {
    json j = restore_point_json({rp.name, rp.time_us, rp.lsn});
    j["timeline"] = rp.timeline;
    j["segment"] = rp.segment;
    out["restore_points"].push_back(std::move(j));
  }
  out["volumes"] = json::array();
  for (const VolumeInfo& v : info.volumes) out["volumes"].push_back(volume_json(v));
  out["dumps"] = json::array();
  for (const DatabaseDumpInfo& d : info.dumps) out["dumps"].push_back(dumps_json(d));
  out["last_verify"] = info.last_verify ? repo::history_to_json(*info.last_verify) : json(nullptr);
  out["last_drill"] = info.last_drill ? repo::history_to_json(*info.last_drill) : json(nullptr);
  return out.dump(1) + "\n";
}

}  // namespace walvault::ops
