// The repository's activity log (docs/format.md, "History"): every backup,
// expire, gc, verify and drill appends one small record, read back by
// `walvault history [--since 7d]` for the weekly review and by `info` and
// `metrics` for the last verify and drill.
//
//   history/<start_us, 16 decimal digits>-<command>-<8 random hex>  (repo/layout.h)
//
// One object per event (stores are create-only: nothing is appended in
// place); the name sorts by start time. The content is a JSON envelope
// (encrypted like everything else in an encrypted repository).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "repo/repository.h"

namespace walvault::repo {

struct HistoryEntry {
  std::string command;        // "backup", "expire", "gc", "verify", "drill"
  std::int64_t start_us = 0;  // UTC µs
  std::int64_t end_us = 0;
  std::string outcome;      // "ok", "failed" (or "warning" where a command has one)
  std::string detail;       // one line: the error, or a summary ("3 backups expired")
  std::uint64_t bytes = 0;  // the command's main byte count (stored, freed, read, restored)
  std::string host;         // gethostname()
  std::string user;         // the effective user's name
  nlohmann::json extra =
      nlohmann::json::object();  // command-specific facts (label, recovery times…)
  std::string object;            // read_history: the object's name
};

// A fresh entry for `command` started now, host and user filled in.
HistoryEntry start_history(const std::string& command);

// Stores `entry` (end_us set to now when 0). History is a log, never a reason
// to fail the command it describes: a failure to write it is returned as a
// message (empty on success) for the caller to warn about.
std::string append_history(repo::Repository& repo, HistoryEntry entry);

// Every entry that started at or after `since_us`, oldest first. A damaged
// entry throws Error(kCorruption) naming its object.
std::vector<HistoryEntry> read_history(repo::Repository& repo, std::int64_t since_us = 0);

// The entry stored as `object`; std::nullopt when it is absent. A damaged
// entry throws Error(kCorruption) naming the object.
std::optional<HistoryEntry> read_history_entry(repo::Repository& repo, const std::string& object);

// The newest entry of `command` (by start time), if any.
std::optional<HistoryEntry> last_history(repo::Repository& repo, const std::string& command);

nlohmann::json history_to_json(const HistoryEntry& entry);

// `walvault history`: one line per entry, in the given order: start time,
// command, outcome, duration, bytes, user@host, detail ("no history" when empty).
std::string history_text(const std::vector<HistoryEntry>& entries);

}  // namespace walvault::repo
