#include "repo/history.h"

#include <unistd.h>

#include <array>
#include <cstdio>

#include "codec/crypto.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/host.h"
#include "core/time_util.h"
#include "repo/layout.h"

namespace walvault::repo {

namespace {

using nlohmann::json;

std::string object_name(const HistoryEntry& entry) {
  std::array<std::uint8_t, 4> rnd{};
  codec::random_bytes(rnd);
  return history_object_name(entry.start_us, entry.command, to_hex(rnd));
}

HistoryEntry from_json(const json& j, const std::string& object) {
  HistoryEntry e;
  e.command = j.at("command").get<std::string>();
  e.start_us = j.at("start_us").get<std::int64_t>();
  e.end_us = j.at("end_us").get<std::int64_t>();
  e.outcome = j.at("outcome").get<std::string>();
  e.detail = j.value("detail", "");
  e.bytes = j.value("bytes", std::uint64_t{0});
  e.host = j.value("host", "");
  e.user = j.value("user", "");
  e.extra = j.contains("extra") ? j.at("extra") : json::object();
  e.object = object;
  return e;
}

}  // namespace

HistoryEntry start_history(const std::string& command) {
  HistoryEntry e;
  e.command = command;
  e.start_us = now_unix_us();
  e.host = host_name();
  e.user = user_name();
  return e;
}

json history_to_json(const HistoryEntry& e) {
  json j;
  j["command"] = e.command;
  j["start"] = format_time_us(e.start_us);
  j["start_us"] = e.start_us;
  j["end"] = format_time_us(e.end_us);
  j["end_us"] = e.end_us;
  j["outcome"] = e.outcome;
  j["detail"] = e.detail;
  j["bytes"] = e.bytes;
  j["host"] = e.host;
  j["user"] = e.user;
  j["extra"] = e.extra;
  return j;
}

std::string history_text(const std::vector<HistoryEntry>& entries) {
  if (entries.empty()) return "no history\n";
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-22s %-7s %-7s %9s %11s  %s\n", "start (UTC)", "command",
                "outcome", "duration", "bytes", "user@host: detail");
  out += line;
  for (const HistoryEntry& e : entries) {
    // "2026-11-26 10:00:00.123456+00" -> to the second.
    const std::string start = format_time_us(e.start_us).substr(0, 19);
    std::snprintf(line, sizeof line, "%-22s %-7s %-7s %8.1fs %11s  ", start.c_str(),
                  e.command.c_str(), e.outcome.c_str(),
                  static_cast<double>(e.end_us - e.start_us) / 1e6,
                  e.bytes == 0 ? "-" : human_bytes(e.bytes).c_str());
    out += line + e.user + "@" + e.host + ": " + e.detail + "\n";
  }
  return out;
}

std::string append_history(repo::Repository& repo, HistoryEntry entry) {
  if (entry.end_us == 0) entry.end_us = now_unix_us();
  try {
    const std::string text = history_to_json(entry).dump();
    repo.put_object(object_name(entry), as_bytes(text));
    return "";
  } catch (const std::exception& e) {
    return std::string("could not record history: ") + e.what();
  }
}

std::vector<HistoryEntry> read_history(repo::Repository& repo, std::int64_t since_us) {
  std::vector<HistoryEntry> out;
  for (const store::ObjectInfo& info : repo.store().list(kHistoryPrefix)) {
    // The name starts with the start time: skip older ones without reading
    // them. One that does not parse is read, and judged by its content.
    const auto name = parse_history_object(info.name);
    if (name && name->start_us < since_us) continue;
    if (auto entry = read_history_entry(repo, info.name))  // else removed since the listing
      out.push_back(std::move(*entry));
  }
  return out;
}

std::optional<HistoryEntry> read_history_entry(repo::Repository& repo, const std::string& object) {
  const auto bytes = repo.get_object(object);
  if (!bytes) return std::nullopt;
  try {
    return from_json(json::parse(as_chars(*bytes)), object);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kCorruption, object + ": not a history record: " + e.what());
  }
}

std::optional<HistoryEntry> last_history(repo::Repository& repo, const std::string& command) {
  // Names sort by start time: the last matching name is the newest entry.
  const auto objects = repo.store().list(kHistoryPrefix);
  for (auto it = objects.rbegin(); it != objects.rend(); ++it) {
    const auto name = parse_history_object(it->name);
    if (!name || name->command != command) continue;
    if (auto entry = read_history_entry(repo, it->name)) return entry;
  }
  return std::nullopt;
}

}  // namespace walvault::repo
