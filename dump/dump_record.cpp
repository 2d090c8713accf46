#include "dump/dump_record.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <tuple>

#include "codec/crypto.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/relative_path.h"
#include "core/time_util.h"
#include "files/snapshot_record.h"
#include "repo/layout.h"
#include "repo/record_lookup.h"

namespace walvault::dump {

using nlohmann::json;

namespace {

constexpr char kCustomName[] = "custom";
constexpr char kPlainName[] = "plain";

DumpFormat format_from(const std::string& name) {
  if (name == kCustomName) return DumpFormat::kCustom;
  if (name == kPlainName) return DumpFormat::kPlain;
  throw std::runtime_error("unknown format '" + name + "'");
}

json chunks_json(const std::vector<files::ChunkRef>& chunks) {
  json out = json::array();
  for (const files::ChunkRef& c : chunks) out.push_back(json::array({to_hex(c.id), c.length}));
  return out;
}

std::vector<files::ChunkRef> chunks_from(const json& j, const codec::CdcParams& params,
                                         std::uint64_t bytes) {
  std::vector<files::ChunkRef> out;
  std::uint64_t total = 0;
  for (const json& c : j) {
    if (!c.is_array() || c.size() != 2) throw std::runtime_error("a chunk is not [id, length]");
    const auto id = repo::parse_content_id(c[0].get<std::string>());
    if (!id) throw std::runtime_error("a chunk id is not 64 hex digits");
    const auto length = c[1].get<std::uint32_t>();
    if (length == 0 || length > params.max_size)
      throw std::runtime_error("chunk " + to_hex(*id) + " has length " + std::to_string(length));
    total += length;
    out.push_back({*id, length});
  }
  if (total != bytes)
    throw std::runtime_error("its chunks hold " + std::to_string(total) + " bytes, not " +
                             std::to_string(bytes));
  return out;
}

}  // namespace

std::optional<std::string> database_name_problem(std::string_view database) {
  return files::volume_problem(database);
}

codec::CdcParams dump_cdc_params() { return {16u << 10, 64u << 10, 256u << 10}; }

std::string format_name(DumpFormat format) {
  return format == DumpFormat::kCustom ? kCustomName : kPlainName;
}

bool is_globals(const DumpRecord& r) { return r.database == kGlobalsDatabase; }

std::string dump_id(const DumpRecord& r) {
  return to_hex(codec::sha256(as_bytes(repo::dump_object_name(r.database, r.label)))).substr(0, 12);
}

std::string dump_to_json(const DumpRecord& r) {
  const json j = {{"database", r.database},
                  {"label", r.label},
                  {"tag", r.tag},
                  {"start_time_us", r.start_us},
                  {"end_time_us", r.end_us},
                  {"host", r.host},
                  {"format", format_name(r.format)},
                  {"source", r.source},
                  {"file", r.file},
                  {"server_version", r.server_version},
                  {"bytes", r.bytes},
                  {"added_bytes", r.added_bytes},
                  {"chunker",
                   {{"min", r.chunker.min_size},
                    {"average", r.chunker.average_size},
                    {"max", r.chunker.max_size},
                    {"keyed", r.keyed_chunker}}},
                  {"chunks", chunks_json(r.chunks)}};
  return j.dump();
}

DumpRecord dump_from_json(std::string_view text, const std::string& object) {
  try {
    const json j = json::parse(text);
    DumpRecord r;
    r.database = j.at("database").get<std::string>();
    r.label = j.at("label").get<std::string>();
    if (auto p = database_name_problem(r.database)) throw std::runtime_error("database " + *p);
    if (auto p = database_name_problem(r.label)) throw std::runtime_error("label " + *p);
    r.tag = j.at("tag").get<std::string>();
    r.start_us = j.at("start_time_us").get<std::int64_t>();
    r.end_us = j.at("end_time_us").get<std::int64_t>();
    r.host = j.at("host").get<std::string>();
    r.format = format_from(j.at("format").get<std::string>());
    r.source = j.at("source").get<std::string>();
    if (r.source != "pg_dump" && r.source != "pg_dumpall" && r.source != "import")
      throw std::runtime_error("unknown source '" + r.source + "'");
    if (is_globals(r) ? r.format != DumpFormat::kPlain || r.source == "pg_dump"
                      : r.source == "pg_dumpall")
      throw std::runtime_error("source " + r.source + " and format " + format_name(r.format) +
                               " do not make a dump of " + r.database);
    r.file = j.at("file").get<std::string>();
    r.server_version = j.at("server_version").get<int>();
    r.bytes = j.at("bytes").get<std::uint64_t>();
    r.added_bytes = j.at("added_bytes").get<std::uint64_t>();
    const json& c = j.at("chunker");
    r.chunker = {c.at("min").get<std::uint32_t>(), c.at("average").get<std::uint32_t>(),
                 c.at("max").get<std::uint32_t>()};
    codec::check_cdc_params(r.chunker);
    r.keyed_chunker = c.at("keyed").get<bool>();
    r.chunks = chunks_from(j.at("chunks"), r.chunker, r.bytes);
    return r;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCorruption, "dump record " + object + ": " + e.what());
  }
}

DumpRecord write_dump_record(repo::Repository& repo, DumpRecord record) {
  if (auto p = database_name_problem(record.database))
    throw Error(ErrorCode::kUsage, "database " + printable_name(record.database) + ": " + *p);
  const std::string base = compact_utc_label(record.start_us);
  for (int n = 1;; ++n) {
    record.label = n == 1 ? base : base + "-" + std::to_string(n);
    if (repo.put_object(repo::dump_object_name(record.database, record.label),
                        as_bytes(dump_to_json(record))) == store::PutResult::kCreated)
      return record;
  }
}

std::vector<DumpRecord> list_dumps(repo::Repository& repo,
                                   const std::optional<std::string>& database) {
  std::vector<DumpRecord> out;
  const std::string prefix =
      database ? repo::dump_object_name(*database, "") : std::string(repo::kDumpPrefix);
  for (const store::ObjectInfo& info : repo.store().list(prefix)) {
    const std::optional<Bytes> bytes = repo.get_object(info.name);
    if (!bytes) continue;  // removed since the listing (expire)
    DumpRecord r = dump_from_json(as_chars(*bytes), info.name);
    if (info.name != repo::dump_object_name(r.database, r.label))
      throw Error(ErrorCode::kCorruption, "dump record " + info.name + " names another dump");
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const DumpRecord& a, const DumpRecord& b) {
    return std::tie(a.start_us, a.database, a.label) < std::tie(b.start_us, b.database, b.label);
  });
  return out;
}

DumpRecord find_dump(repo::Repository& repo, std::string_view spec,
                     const std::optional<std::string>& database) {
  const repo::RecordKind<DumpRecord> kind{
      "dump",
      "database",
      "DATABASE",
      database_name_problem,
      [&](const std::optional<std::string>& d) { return list_dumps(repo, d); },
      dump_id};
  return repo::find_record(kind, spec, database);
}

}  // namespace walvault::dump
