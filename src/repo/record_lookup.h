// How a record of a named group (a file-volume snapshot of a volume, a
// logical dump of a database) is found from what a user types: one rule for
// both, so `files ... SNAPSHOT` and `dump restore ID` read alike.
//
//   latest        the newest record (of `group` when given)
//   GROUP@TIME    the newest record of GROUP at or before TIME
//   4..12 hex     the record whose id starts with them (ambiguous: usage error)
//
// Errors: Error(kUsage) for a malformed spec, a bad group name or an
// ambiguous id; Error(kNotFound) when nothing matches. Messages name the
// spec with the kind's nouns ("snapshot", "volume", "VOLUME").
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/relative_path.h"
#include "core/time_util.h"

namespace walvault::repo {

template <class Record>
struct RecordKind {
  std::string noun;        // "snapshot"
  std::string group_noun;  // "volume"
  std::string group_hint;  // "VOLUME"
  // Why a group name is refused, or std::nullopt when it is fine.
  std::function<std::optional<std::string>(const std::string&)> group_problem;
  // Every record (of the group when given), oldest first.
  std::function<std::vector<Record>(const std::optional<std::string>&)> list;
  std::function<std::string(const Record&)> id;
};

template <class Record>
Record find_record(const RecordKind<Record>& kind, std::string_view spec,
                   const std::optional<std::string>& group) {
  const std::string text(spec);
  std::optional<std::string> g = group;
  std::optional<std::int64_t> at_or_before;
  if (const std::size_t at = text.find('@'); at != std::string::npos) {
    g = text.substr(0, at);
    at_or_before = parse_time_us(text.substr(at + 1));
    if (!at_or_before)
      throw Error(ErrorCode::kUsage,
                  kind.noun + " " + printable_name(text) + ": not a time after '@'");
  }
  if (g) {
    if (auto p = kind.group_problem(*g))
      throw Error(ErrorCode::kUsage, kind.group_noun + " " + printable_name(*g) + ": " + *p);
  }
  const std::vector<Record> all = kind.list(g);
  if (text == "latest" || at_or_before) {
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      if (!at_or_before || it->start_us <= *at_or_before) return *it;
    throw Error(ErrorCode::kNotFound,
                "no " + kind.noun + (g ? " of " + kind.group_noun + " " + *g : std::string()) +
                    (at_or_before ? " at or before " + text.substr(text.find('@') + 1) : ""));
  }
  if (text.size() < 4 || text.size() > 12 || !std::all_of(text.begin(), text.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
      }))
    throw Error(ErrorCode::kUsage, kind.noun + " " + printable_name(text) +
                                       ": give an id (4 to 12 hex digits), latest, or " +
                                       kind.group_hint + "@TIME");
  std::vector<const Record*> matches;
  for (const Record& r : all)
    if (kind.id(r).starts_with(text)) matches.push_back(&r);
  if (matches.empty()) throw Error(ErrorCode::kNotFound, "no " + kind.noun + " " + text);
  if (matches.size() > 1)
    throw Error(ErrorCode::kUsage, kind.noun + " id " + text + " is ambiguous; give more digits");
  return *matches.front();
}

}  // namespace walvault::repo
