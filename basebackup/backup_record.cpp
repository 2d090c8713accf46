#include "basebackup/backup_record.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <stdexcept>

#include "core/bytes.h"
#include "core/error.h"
#include "core/host.h"
#include "core/relative_path.h"
#include "core/time_util.h"

namespace walvault::basebackup {

using nlohmann::json;

namespace {

std::string lsn_text(pg::Lsn lsn) { return pg::format_lsn(lsn); }

pg::Lsn lsn_at(const json& j, const char* key) {
  auto v = pg::parse_lsn(j.at(key).get<std::string>());
  if (!v) throw std::runtime_error(std::string(key) + " is not an LSN");
  return *v;
}

const char* type_name(EntryType t) {
  switch (t) {
    case EntryType::kFile:
      return "f";
    case EntryType::kDirectory:
      return "d";
    case EntryType::kSymlink:
      return "l";
  }
  return "?";
}

EntryType type_from(const std::string& s) {
  if (s == "f") return EntryType::kFile;
  if (s == "d") return EntryType::kDirectory;
  if (s == "l") return EntryType::kSymlink;
  throw std::runtime_error("unknown entry type '" + s + "'");
}

}  // namespace

namespace {

// A restore target from a record: absolute, and below "/" a contained path.
std::optional<std::string> location_problem(const std::string& location) {
  if (!location.starts_with("/")) return "is not absolute";
  if (location == "/") return "is the root directory";
  return relative_path_problem(std::string_view(location).substr(1));
}

}  // namespace

void EntryNameCheck::refuse(const FileEntry& entry, const std::string& why) const {
  const std::string where =
      entry.tablespace.empty() ? "" : " of tablespace " + printable_name(entry.tablespace);
  throw Error(code_, context_ + ": entry " + printable_name(entry.path) + where + " " + why);
}

void EntryNameCheck::add(const FileEntry& entry) {
  if (!entry.tablespace.empty() && (entry.tablespace.size() > 10 ||
                                    !std::all_of(entry.tablespace.begin(), entry.tablespace.end(),
                                                 [](char c) { return c >= '0' && c <= '9'; })))
    refuse(entry, "names no tablespace oid");
  if (auto problem = relative_path_problem(entry.path)) refuse(entry, *problem);
  if (entry.path == "." && entry.type != EntryType::kDirectory)
    refuse(entry, "is the archive's root but not a directory");
  const auto key = std::pair(entry.tablespace, entry.path);
  if (!paths_.insert(key).second) refuse(entry, "appears twice");
  for (std::size_t slash = entry.path.find('/'); slash != std::string::npos;
       slash = entry.path.find('/', slash + 1)) {
    const std::string parent = entry.path.substr(0, slash);
    if (links_.count({entry.tablespace, parent}))
      refuse(entry, "lies below the symlink " + printable_name(parent));
  }
  if (entry.type != EntryType::kSymlink) return;
  if (entry.link_target.empty() || entry.link_target.size() > kMaxPathBytes ||
      entry.link_target.find('\0') != std::string::npos)
    refuse(entry, "is a symlink with an empty, overlong or NUL-bearing target");
  // An entry listed earlier below this link (a child before its parent).
  const auto below = paths_.lower_bound({entry.tablespace, entry.path + "/"});
  if (below != paths_.end() && below->first == entry.tablespace &&
      below->second.starts_with(entry.path + "/"))
    refuse(entry, "is a symlink with the entry " + printable_name(below->second) + " below it");
  links_.insert(key);
}

void check_file_list(const BackupRecord& record, const BackupFiles& files) {
  const std::string context = "backup " + record.label;
  std::set<std::string> oids;
  for (const auto& t : record.tablespaces) {
    oids.insert(std::to_string(t.oid));
    if (auto problem = location_problem(t.location))
      throw Error(ErrorCode::kCorruption, context + ": tablespace " + std::to_string(t.oid) +
                                              " location " + printable_name(t.location) + " " +
                                              *problem);
  }
  EntryNameCheck names(ErrorCode::kCorruption, context);
  for (const auto& e : files.entries) {
    names.add(e);
    if (!e.tablespace.empty() && !oids.count(e.tablespace))
      throw Error(ErrorCode::kCorruption,
                  context + ": entry " + printable_name(e.path) + " belongs to tablespace " +
                      printable_name(e.tablespace) + ", which the backup does not have");
  }
}

std::string record_object_name(const std::string& label) {
  return repo::backup_record_object_name(label);
}
std::string files_object_name(const std::string& label) {
  return repo::backup_files_object_name(label);
}

std::string record_to_json(const BackupRecord& r) {
  json tablespaces = json::array();
  for (const auto& t : r.tablespaces)
    tablespaces.push_back({{"oid", t.oid}, {"location", t.location}});
  json j = {
      {"label", r.label},
      {"tag", r.tag},
      {"source", r.source},
      {"start_lsn", lsn_text(r.start_lsn)},
      {"stop_lsn", lsn_text(r.stop_lsn)},
      {"start_timeline", r.start_timeline},
      {"stop_timeline", r.stop_timeline},
      {"start_time_us", r.start_time_us},
      {"stop_time_us", r.stop_time_us},
      {"pg_version_num", r.pg_version_num},
      {"system_id", std::to_string(r.system_id)},
      {"wal_segment_size", r.wal_segment_size},
      {"chunk_size", r.chunk_size},
      {"backup_label", r.backup_label},
      {"tablespace_map", r.tablespace_map},
      {"tablespaces", tablespaces},
      {"file_count", r.file_count},
      {"logical_bytes", r.logical_bytes},
      {"stored_bytes", r.stored_bytes},
      {"chunk_count", r.chunk_count},
      {"new_chunk_count", r.new_chunk_count},
      {"duration_s", r.duration_s},
  };
  if (!r.page_errors.empty()) j["page_errors"] = r.page_errors;
  if (r.source == "local") j["read_bytes"] = r.read_bytes;
  if (!r.incremental_from.empty()) j["incremental_from"] = r.incremental_from;
  if (!r.full_read_reason.empty()) j["full_read_reason"] = r.full_read_reason;
  return j.dump(1) + "\n";
}

BackupRecord record_from_json(std::string_view text, const std::string& object) {
  try {
    json j = json::parse(text);
    BackupRecord r;
    r.label = j.at("label").get<std::string>();
    r.tag = j.at("tag").get<std::string>();
    r.source = j.at("source").get<std::string>();
    r.start_lsn = lsn_at(j, "start_lsn");
    r.stop_lsn = lsn_at(j, "stop_lsn");
    r.start_timeline = j.at("start_timeline").get<pg::TimeLineId>();
    r.stop_timeline = j.at("stop_timeline").get<pg::TimeLineId>();
    r.start_time_us = j.at("start_time_us").get<std::int64_t>();
    r.stop_time_us = j.at("stop_time_us").get<std::int64_t>();
    r.pg_version_num = j.at("pg_version_num").get<int>();
    r.system_id = std::stoull(j.at("system_id").get<std::string>());
    r.wal_segment_size = j.at("wal_segment_size").get<std::uint32_t>();
    r.chunk_size = j.at("chunk_size").get<std::uint32_t>();
    r.backup_label = j.at("backup_label").get<std::string>();
    r.tablespace_map = j.at("tablespace_map").get<std::string>();
    for (const auto& t : j.at("tablespaces"))
      r.tablespaces.push_back(
          {t.at("oid").get<std::uint32_t>(), t.at("location").get<std::string>()});
    r.file_count = j.at("file_count").get<std::uint64_t>();
    r.logical_bytes = j.at("logical_bytes").get<std::uint64_t>();
    r.stored_bytes = j.at("stored_bytes").get<std::uint64_t>();
    r.chunk_count = j.at("chunk_count").get<std::uint64_t>();
    r.new_chunk_count = j.at("new_chunk_count").get<std::uint64_t>();
    r.duration_s = j.at("duration_s").get<double>();
    if (j.contains("page_errors"))
      r.page_errors = j.at("page_errors").get<std::vector<std::string>>();
    r.read_bytes =
        j.contains("read_bytes") ? j.at("read_bytes").get<std::uint64_t>() : r.logical_bytes;
    if (j.contains("incremental_from"))
      r.incremental_from = j.at("incremental_from").get<std::string>();
    if (j.contains("full_read_reason"))
      r.full_read_reason = j.at("full_read_reason").get<std::string>();
    if (r.chunk_size == 0) throw std::runtime_error("chunk_size is 0");
    return r;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCorruption, object + ": " + e.what());
  }
}

// Compact form: one array per entry, chunk ids as hex.
//   [tablespace, path, type, mode, mtime, size, link_target, [chunk ids]]
std::string files_to_json(const BackupFiles& files) {
  json entries = json::array();
  for (const auto& e : files.entries) {
    json chunks = json::array();
    for (const auto& id : e.chunks) chunks.push_back(to_hex(id));
    entries.push_back(json::array({e.tablespace, e.path, type_name(e.type), e.mode, e.mtime, e.size,
                                   e.link_target, std::move(chunks)}));
  }
  json j = {{"entries", std::move(entries)}, {"backup_manifest", files.backup_manifest}};
  return j.dump() + "\n";
}

BackupFiles files_from_json(std::string_view text, const std::string& object) {
  try {
    json j = json::parse(text);
    BackupFiles files;
    files.backup_manifest = j.at("backup_manifest").get<std::string>();
    const auto& entries = j.at("entries");
    files.entries.reserve(entries.size());
    for (const auto& a : entries) {
      if (!a.is_array() || a.size() != 8) throw std::runtime_error("malformed file entry");
      FileEntry e;
      e.tablespace = a[0].get<std::string>();
      e.path = a[1].get<std::string>();
      e.type = type_from(a[2].get<std::string>());
      e.mode = a[3].get<std::uint32_t>();
      e.mtime = a[4].get<std::int64_t>();
      e.size = a[5].get<std::uint64_t>();
      e.link_target = a[6].get<std::string>();
      for (const auto& c : a[7]) {
        const auto id = repo::parse_content_id(c.get<std::string>());
        if (!id) throw std::runtime_error("chunk id of " + e.path + " is not 64 hex digits");
        e.chunks.push_back(*id);
      }
      files.entries.push_back(std::move(e));
    }
    return files;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCorruption, object + ": " + e.what());
  }
}

std::optional<BackupRecord> read_record(repo::Repository& repo, const std::string& label) {
  const std::string object = record_object_name(label);
  auto bytes = repo.get_object(object);
  if (!bytes) return std::nullopt;
  return record_from_json(as_chars(*bytes), object);
}

std::vector<BackupRecord> list_backups(repo::Repository& repo) {
  std::vector<BackupRecord> out;
  for (const auto& info : repo.store().list(repo::kBackupPrefix)) {
    const auto object = repo::parse_backup_object(info.name);
    if (!object || object->kind != repo::kBackupRecordKind) continue;
    auto bytes = repo.get_object(info.name);
    if (!bytes) continue;  // removed between list and get (expire)
    out.push_back(record_from_json(as_chars(*bytes), info.name));
  }
  std::sort(out.begin(), out.end(), [](const BackupRecord& a, const BackupRecord& b) {
    return std::tie(a.start_lsn, a.label) < std::tie(b.start_lsn, b.label);
  });
  return out;
}

BackupFiles read_files(repo::Repository& repo, const std::string& label) {
  const std::string object = files_object_name(label);
  auto bytes = repo.get_object(object);
  if (!bytes)
    throw Error(ErrorCode::kCorruption,
                object + ": the file list of backup " + label + " is missing");
  return files_from_json(as_chars(*bytes), object);
}

std::string pin_object_name(const std::string& label) {
  return repo::backup_pin_object_name(label);
}

bool pin_backup(repo::Repository& repo, const std::string& label, const std::string& note) {
  if (!read_record(repo, label))
    throw Error(ErrorCode::kNotFound, "no backup " + label + " in " + repo.store().describe());
  nlohmann::json j;
  j["note"] = note;
  j["time_us"] = now_unix_us();
  j["user"] = user_name();
  j["host"] = host_name();
  return repo.put_object(pin_object_name(label), as_bytes(j.dump())) == store::PutResult::kCreated;
}

bool unpin_backup(repo::Repository& repo, const std::string& label) {
  if (!read_record(repo, label))
    throw Error(ErrorCode::kNotFound, "no backup " + label + " in " + repo.store().describe());
  return repo.store().remove(pin_object_name(label));
}

std::optional<BackupPin> read_pin(repo::Repository& repo, const std::string& label) {
  const std::string object = pin_object_name(label);
  const auto bytes = repo.get_object(object);
  if (!bytes) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(as_chars(*bytes));
    return BackupPin{j.value("note", ""), j.value("time_us", std::int64_t{0}), j.value("user", ""),
                     j.value("host", "")};
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kCorruption, object + ": not a pin: " + e.what());
  }
}

}  // namespace walvault::basebackup
