#include "files/snapshot_record.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "codec/crypto.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/relative_path.h"
#include "core/time_util.h"
#include "repo/layout.h"
#include "repo/record_lookup.h"

namespace walvault::files {

using nlohmann::json;

namespace {

constexpr std::size_t kKeptWarnings = 100;

json node_json(const Node& n) {
  return {{"mode", n.mode}, {"uid", n.uid},     {"gid", n.gid},
          {"user", n.user}, {"group", n.group}, {"mtime_ns", n.mtime_ns}};
}

Node node_from(const json& j) {
  Node n;
  n.name = ".";
  n.type = NodeType::kDirectory;
  n.mode = j.at("mode").get<std::uint32_t>() & 07777;
  n.uid = j.at("uid").get<std::uint32_t>();
  n.gid = j.at("gid").get<std::uint32_t>();
  n.user = j.at("user").get<std::string>();
  n.group = j.at("group").get<std::string>();
  n.mtime_ns = j.at("mtime_ns").get<std::int64_t>();
  return n;
}

repo::ChunkId id_from_hex(const std::string& hex) {
  Bytes b;
  if (hex.size() != 64 || !from_hex(hex, b))
    throw std::runtime_error("root is not a 64-hex-digit id");
  repo::ChunkId id;
  std::copy(b.begin(), b.end(), id.begin());
  return id;
}

}  // namespace

std::optional<std::string> volume_problem(std::string_view v) {
  if (v.empty() || v.size() > 64) return std::string("must be 1 to 64 characters");
  if (v.front() == '.') return std::string("must not start with '.'");
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return std::string("may hold only letters, digits, '_', '-' and '.'");
  return std::nullopt;
}

std::string snapshot_id(const SnapshotRecord& r) {
  return to_hex(codec::sha256(as_bytes(r.volume + "/" + r.label))).substr(0, 12);
}

std::string snapshot_to_json(const SnapshotRecord& r) {
  json j = {{"volume", r.volume},
            {"label", r.label},
            {"tag", r.tag},
            {"start_time_us", r.start_us},
            {"end_time_us", r.end_us},
            {"host", r.host},
            {"paths", r.paths},
            {"root", to_hex(r.root)},
            {"root_node", node_json(r.root_node)},
            {"parent", r.parent},
            {"chunker",
             {{"min", r.chunker.min_size},
              {"average", r.chunker.average_size},
              {"max", r.chunker.max_size},
              {"keyed", r.keyed_chunker}}},
            {"files", r.files},
            {"directories", r.directories},
            {"other", r.other},
            {"bytes", r.bytes},
            {"read_bytes", r.read_bytes},
            {"added_bytes", r.added_bytes},
            {"unreadable", r.unreadable},
            {"warning_count", r.warning_count},
            {"warnings", r.warnings}};
  return j.dump();
}

SnapshotRecord snapshot_from_json(std::string_view text, const std::string& object) {
  try {
    const json j = json::parse(text);
    SnapshotRecord r;
    r.volume = j.at("volume").get<std::string>();
    r.label = j.at("label").get<std::string>();
    if (auto p = volume_problem(r.volume)) throw std::runtime_error("volume " + *p);
    if (auto p = volume_problem(r.label)) throw std::runtime_error("label " + *p);
    r.tag = j.at("tag").get<std::string>();
    r.start_us = j.at("start_time_us").get<std::int64_t>();
    r.end_us = j.at("end_time_us").get<std::int64_t>();
    r.host = j.at("host").get<std::string>();
    r.paths = j.at("paths").get<std::vector<std::string>>();
    r.root = id_from_hex(j.at("root").get<std::string>());
    r.root_node = node_from(j.at("root_node"));
    r.parent = j.at("parent").get<std::string>();
    const json& c = j.at("chunker");
    r.chunker = {c.at("min").get<std::uint32_t>(), c.at("average").get<std::uint32_t>(),
                 c.at("max").get<std::uint32_t>()};
    r.keyed_chunker = c.at("keyed").get<bool>();
    for (auto [key, field] : {std::pair{"files", &r.files},
                              {"directories", &r.directories},
                              {"other", &r.other},
                              {"bytes", &r.bytes},
                              {"read_bytes", &r.read_bytes},
                              {"added_bytes", &r.added_bytes},
                              {"unreadable", &r.unreadable},
                              {"warning_count", &r.warning_count}})
      *field = j.at(key).get<std::uint64_t>();
    r.warnings = j.at("warnings").get<std::vector<std::string>>();
    return r;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCorruption, "snapshot record " + object + ": " + e.what());
  }
}

SnapshotRecord write_snapshot_record(repo::Repository& repo, SnapshotRecord record) {
  if (auto p = volume_problem(record.volume))
    throw Error(ErrorCode::kUsage, "volume " + printable_name(record.volume) + ": " + *p);
  record.warning_count = std::max<std::uint64_t>(record.warning_count, record.warnings.size());
  if (record.warnings.size() > kKeptWarnings) record.warnings.resize(kKeptWarnings);
  const std::string base = compact_utc_label(record.start_us);
  for (int n = 1;; ++n) {
    record.label = n == 1 ? base : base + "-" + std::to_string(n);
    const std::string json_text = snapshot_to_json(record);
    if (repo.put_object(repo::snapshot_object_name(record.volume, record.label),
                        as_bytes(json_text)) == store::PutResult::kCreated)
      return record;
  }
}

std::vector<SnapshotRecord> list_snapshots(repo::Repository& repo,
                                           const std::optional<std::string>& volume) {
  std::vector<SnapshotRecord> out;
  const std::string prefix =
      volume ? repo::snapshot_object_name(*volume, "") : repo::kSnapshotPrefix;
  for (const store::ObjectInfo& info : repo.store().list(prefix)) {
    const std::optional<Bytes> bytes = repo.get_object(info.name);
    if (!bytes) continue;  // removed since the listing (expire)
    SnapshotRecord r = snapshot_from_json(as_chars(*bytes), info.name);
    if (info.name != repo::snapshot_object_name(r.volume, r.label))
      throw Error(ErrorCode::kCorruption,
                  "snapshot record " + info.name + " names another snapshot");
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const SnapshotRecord& a, const SnapshotRecord& b) {
    return std::tie(a.start_us, a.volume, a.label) < std::tie(b.start_us, b.volume, b.label);
  });
  return out;
}

SnapshotRecord find_snapshot(repo::Repository& repo, std::string_view spec,
                             const std::optional<std::string>& volume) {
  const repo::RecordKind<SnapshotRecord> kind{
      "snapshot",
      "volume",
      "VOLUME",
      volume_problem,
      [&](const std::optional<std::string>& v) { return list_snapshots(repo, v); },
      snapshot_id};
  return repo::find_record(kind, spec, volume);
}

}  // namespace walvault::files
