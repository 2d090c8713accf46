#include "repo/wal_objects.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "repo/wal_catalogue.h"

namespace walvault::repo {

using nlohmann::json;

namespace {

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// RFC 4648 base64 with padding.
std::string to_base64(ByteView in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, in.size() - i);
    std::uint32_t v = static_cast<std::uint32_t>(in[i]) << 16;
    if (n > 1) v |= static_cast<std::uint32_t>(in[i + 1]) << 8;
    if (n > 2) v |= in[i + 2];
    for (std::size_t k = 0; k < 4; ++k)
      out += k <= n ? kBase64Alphabet[(v >> (18 - 6 * k)) & 0x3F] : '=';
  }
  return out;
}

// Strict inverse of to_base64: std::nullopt on any other text (wrong length,
// other characters, misplaced padding, non-zero bits under the padding).
std::optional<Bytes> from_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  Bytes out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last_group = i + 4 == text.size();
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      std::uint32_t d = 0;
      if (!(last_group && k >= 4 - pad)) {
        const char c = text[i + k];
        const char* at = c == '\0' ? nullptr : std::strchr(kBase64Alphabet, c);
        if (!at) return std::nullopt;
        d = static_cast<std::uint32_t>(at - kBase64Alphabet);
      }
      v = v << 6 | d;
    }
    const std::size_t n = last_group ? 3 - pad : 3;
    if (last_group && ((pad == 1 && (v & 0xFF)) || (pad == 2 && (v & 0xFFFF)))) return std::nullopt;
    for (std::size_t k = 0; k < n; ++k) out.push_back(static_cast<std::uint8_t>(v >> (16 - 8 * k)));
  }
  return out;
}

std::string xid_set_text(const pg::XidSet& set) { return to_base64(set.encode()); }

pg::XidSet xid_set_from(const json& j, const char* key) {
  auto bytes = from_base64(j.at(key).get<std::string>());
  std::optional<pg::XidSet> set;
  if (bytes) set = pg::XidSet::decode(*bytes);
  if (!set) throw std::runtime_error(std::string(key) + " is not an encoded xid set");
  return *std::move(set);
}

}  // namespace

std::string format_xxh3(std::uint64_t hash) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash));
  return buf;
}

std::optional<std::uint64_t> parse_xxh3(std::string_view text) {
  if (text.size() != 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : text) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}

std::string meta_to_json(const SegmentMeta& m) {
  const pg::SegmentSummary& s = m.summary;
  json rps = json::array();
  for (const auto& rp : s.restore_points)
    rps.push_back({{"name", rp.name}, {"time_us", rp.time_us}, {"lsn", pg::format_lsn(rp.lsn)}});
  auto opt = [](const auto& v) -> json { return v ? json(*v) : json(nullptr); };
  json j = {
      {"name", m.name},
      {"timeline", m.timeline},
      {"segno", m.segno},
      {"size", m.size},
      {"xxh3", format_xxh3(m.xxh3)},
      {"pg_major", m.pg_major},
      {"system_id", std::to_string(m.system_id)},
      {"archived_us", m.archived_us},
      {"first_record_lsn", pg::format_lsn(s.first_record_lsn)},
      {"end_lsn", pg::format_lsn(s.end_lsn)},
      {"records", s.records},
      {"commits", s.commits},
      {"aborts", s.aborts},
      {"min_xact_time_us", opt(s.min_xact_time_us)},
      {"max_xact_time_us", opt(s.max_xact_time_us)},
      {"first_xact_xid", opt(s.first_xact_xid)},
      {"last_xact_xid", opt(s.last_xact_xid)},
      {"restore_points", rps},
      {"has_switch", s.has_switch},
  };
  // The xid index (format.md): absent when unknown, as in metadata written
  // before it existed.
  if (s.xids_indexed) {
    j["commit_xids"] = xid_set_text(s.commit_xids);
    j["abort_xids"] = xid_set_text(s.abort_xids);
    j["crossing_xact_xid"] = opt(s.crossing_xact_xid);
  }
  return j.dump() + "\n";
}

SegmentMeta meta_from_json(std::string_view text, const std::string& object) {
  try {
    json j = json::parse(text);
    SegmentMeta m;
    pg::SegmentSummary& s = m.summary;
    m.name = j.at("name").get<std::string>();
    m.timeline = j.at("timeline").get<pg::TimeLineId>();
    m.segno = j.at("segno").get<std::uint64_t>();
    m.size = j.at("size").get<std::uint64_t>();
    auto hash = parse_xxh3(j.at("xxh3").get<std::string>());
    if (!hash) throw std::runtime_error("xxh3 is not 16 hex digits");
    m.xxh3 = *hash;
    m.pg_major = j.at("pg_major").get<int>();
    m.system_id = std::stoull(j.at("system_id").get<std::string>());
    m.archived_us = j.at("archived_us").get<std::int64_t>();
    auto lsn = [&](const char* key) {
      auto v = pg::parse_lsn(j.at(key).get<std::string>());
      if (!v) throw std::runtime_error(std::string(key) + " is not an LSN");
      return *v;
    };
    s.first_record_lsn = lsn("first_record_lsn");
    s.end_lsn = lsn("end_lsn");
    s.records = j.at("records").get<std::uint64_t>();
    s.commits = j.at("commits").get<std::uint64_t>();
    s.aborts = j.at("aborts").get<std::uint64_t>();
    if (!j.at("min_xact_time_us").is_null())
      s.min_xact_time_us = j["min_xact_time_us"].get<std::int64_t>();
    if (!j.at("max_xact_time_us").is_null())
      s.max_xact_time_us = j["max_xact_time_us"].get<std::int64_t>();
    if (!j.at("first_xact_xid").is_null())
      s.first_xact_xid = j["first_xact_xid"].get<std::uint32_t>();
    if (!j.at("last_xact_xid").is_null()) s.last_xact_xid = j["last_xact_xid"].get<std::uint32_t>();
    for (const auto& rp : j.at("restore_points")) {
      auto rp_lsn = pg::parse_lsn(rp.at("lsn").get<std::string>());
      if (!rp_lsn) throw std::runtime_error("restore point lsn is not an LSN");
      s.restore_points.push_back(
          {rp.at("name").get<std::string>(), rp.at("time_us").get<std::int64_t>(), *rp_lsn});
    }
    s.has_switch = j.at("has_switch").get<bool>();
    s.xids_indexed = j.contains("commit_xids");
    if (s.xids_indexed) {
      s.commit_xids = xid_set_from(j, "commit_xids");
      s.abort_xids = xid_set_from(j, "abort_xids");
      if (const json& x = j.at("crossing_xact_xid"); !x.is_null()) {
        if (!x.is_number_unsigned() || x.get<std::uint64_t>() > 0xFFFFFFFFu)
          throw std::runtime_error("crossing_xact_xid is not a 32-bit xid");
        s.crossing_xact_xid = x.get<std::uint32_t>();
      }
    }
    return m;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCorruption, object + ": " + e.what());
  }
}

std::optional<pg::BlockMap> read_block_map(repo::Repository& repo,
                                           const std::string& segment_name) {
  const std::string object = block_map_object_name(segment_name);
  auto bytes = repo.get_object(object);
  if (!bytes) return std::nullopt;
  return pg::decode_block_map(*bytes, object);
}

std::optional<SegmentMeta> read_meta(repo::Repository& repo, const std::string& segment_name) {
  std::string object = meta_object_name(segment_name);
  auto bytes = repo.get_object(object);
  if (!bytes) return std::nullopt;
  return meta_from_json(as_chars(*bytes), object);
}

std::vector<SegmentMeta> read_all_meta(repo::Repository& repo) {
  return read_catalogued_meta(repo);
}

}  // namespace walvault::repo
