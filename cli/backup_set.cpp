#include "cli/backup_set.h"

#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/history_scope.h"
#include "core/error.h"
#include "core/relative_path.h"
#include "core/time_util.h"

namespace walvault::cli {

namespace {

namespace fs = std::filesystem;

std::string parts_text(std::size_t n) { return std::to_string(n) + (n == 1 ? " part" : " parts"); }

std::string seconds_text(std::int64_t us) {
  return std::to_string(us / 1000000) + "." + std::to_string(us / 100000 % 10) + " s";
}

// Runs one part; its line on stdout and its entry in the set's history.
nlohmann::json take_part(const SetPart& part, std::optional<Error>& first_failure,
                         std::string& failed) {
  nlohmann::json j = {{"what", part.what}};
  const std::int64_t t0 = now_unix_us();
  std::optional<Error> failure;
  try {
    const PartOutcome o = part.take();
    const std::int64_t took = now_unix_us() - t0;
    std::cout << part.what << ": ok, id " << o.id << ", " << o.bytes << " bytes (" << mib(o.bytes)
              << ", " << mib(o.added_bytes) << " new), " << seconds_text(took) << "\n";
    j.update({{"outcome", "ok"},
              {"id", o.id},
              {"label", o.label},
              {"bytes", o.bytes},
              {"added_bytes", o.added_bytes},
              {"seconds", static_cast<double>(took) / 1e6}});
  } catch (const Error& e) {
    failure = e;
  } catch (const std::exception& e) {
    failure = Error(ErrorCode::kInternal, e.what());
  }
  if (failure) {
    std::cout << part.what << ": failed: " << failure->what() << "\n";
    j.update({{"outcome", "failed"},
              {"error", failure->what()},
              {"seconds", static_cast<double>(now_unix_us() - t0) / 1e6}});
    if (!first_failure) first_failure = failure;
    failed += (failed.empty() ? "" : ", ") + part.what;
  }
  std::cout << std::flush;
  return j;
}

// The directory as compared for overlaps: absolute, normal, symlinks of the
// part that exists resolved.
fs::path comparable(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(dir), ec);
  if (ec) p = fs::path(dir).lexically_normal();
  if (p.has_filename()) return p;
  return p.parent_path();
}

bool inside(const fs::path& outer, const fs::path& inner) {
  auto o = outer.begin(), i = inner.begin();
  for (; o != outer.end(); ++o, ++i)
    if (i == inner.end() || *o != *i) return false;
  return true;
}

// Error(kConflict) unless `dir` is absent or an empty directory.
void require_empty_or_absent(const std::string& dir, const std::string& what) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw_errno("restore --all: " + what + " " + dir);
  }
  std::error_code ec;
  if (!S_ISDIR(st.st_mode) || !fs::is_empty(dir, ec) || ec)
    throw Error(ErrorCode::kConflict, "restore --all: " + what + " " + printable_name(dir) +
                                          " is not an empty directory; nothing was restored "
                                          "(give an empty or new directory)");
}

}  // namespace

std::string set_label(std::int64_t start_us) { return compact_utc_label(start_us); }

void take_backup_set(const Context& ctx, const std::string& label, const std::string& tag,
                     std::int64_t start_us, const std::vector<SetPart>& parts) {
  if (parts.empty())
    throw Error(ErrorCode::kUsage,
                "backup --all: nothing to back up ([schedule] database = no and no "
                "[volume.NAME] section in the config file)");
  // Every repository opens before any part runs: one that cannot fails the
  // set before it starts.
  auto opened = ctx.repos.open_all(KeyFallback::kNone);
  std::vector<repo::Repository*> repos;
  for (auto& r : opened) repos.push_back(r.get());
  std::cout << "backup set " << label << (tag.empty() ? "" : ", tag " + tag) << ": "
            << parts_text(parts.size()) << std::endl;
  repo::HistoryEntry entry = repo::start_history("backup-set");
  entry.start_us = start_us;
  std::optional<Error> first_failure;
  std::string failed;
  nlohmann::json part_list = nlohmann::json::array();
  std::uint64_t added = 0;
  for (const SetPart& part : parts) {
    part_list.push_back(take_part(part, first_failure, failed));
    if (part_list.back().contains("added_bytes"))
      added += part_list.back()["added_bytes"].get<std::uint64_t>();
  }
  const std::int64_t took = now_unix_us() - start_us;
  entry.outcome = first_failure ? "failed" : "ok";
  entry.detail = "backup set " + label + ": " + parts_text(parts.size()) +
                 (first_failure ? ", failed: " + failed : ", " + mib(added) + " new");
  entry.bytes = added;
  entry.extra = {{"label", label}, {"tag", tag}, {"parts", part_list}};
  record_history(repos, entry);
  if (first_failure)
    throw Error(first_failure->code(),
                "backup set " + label + ": failed: " + failed + " (" + first_failure->what() + ")");
  std::cout << "backup set " << label << " complete: " << parts_text(parts.size()) << ", "
            << mib(added) << " new, " << seconds_text(took) << "\n";
}

std::vector<VolumeTarget> volume_targets(const ScheduleSettings& settings,
                                         const std::vector<std::string>& mappings,
                                         const std::string& pgdata) {
  std::map<std::string, std::string> given;
  for (const std::string& m : mappings) {
    const std::size_t eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
      throw Error(ErrorCode::kUsage, "--volume: " + printable_name(m) + " is not NAME=DIR");
    const std::string name = m.substr(0, eq);
    bool configured = false;
    for (const ScheduledVolume& v : settings.volumes) configured = configured || v.name == name;
    if (!configured)
      throw Error(ErrorCode::kUsage, "--volume " + printable_name(name) +
                                         ": no such volume (the config file has no "
                                         "[volume.NAME] section of that name)");
    if (!given.emplace(name, m.substr(eq + 1)).second)
      throw Error(ErrorCode::kUsage, "--volume " + name + " is given twice");
  }
  std::vector<VolumeTarget> targets;
  for (const ScheduledVolume& v : settings.volumes) {
    const auto it = given.find(v.name);
    const std::string dir = it != given.end() ? it->second : v.path;
    if (!dir.starts_with("/"))
      throw Error(ErrorCode::kUsage,
                  "--volume " + v.name + "=" + printable_name(dir) + ": not an absolute path");
    targets.push_back({v.name, dir});
  }
  // No part restores into another's directory.
  std::vector<std::pair<std::string, fs::path>> all = {
      {"--pgdata " + printable_name(pgdata), comparable(pgdata)}};
  for (const VolumeTarget& t : targets)
    all.emplace_back("volume " + t.volume + " (" + printable_name(t.dir) + ")", comparable(t.dir));
  for (std::size_t i = 0; i < all.size(); ++i)
    for (std::size_t j = 0; j < all.size(); ++j)
      if (i != j && inside(all[i].second, all[j].second))
        throw Error(ErrorCode::kUsage, "restore --all: " + all[j].first + " lies in " +
                                           all[i].first +
                                           "; give each part a directory of its own");
  require_empty_or_absent(pgdata, "--pgdata");
  for (const VolumeTarget& t : targets) require_empty_or_absent(t.dir, "volume " + t.volume);
  return targets;
}

}  // namespace walvault::cli
