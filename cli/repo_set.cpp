#include "cli/repo_set.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "basebackup/recovery_settings.h"
#include "basebackup/restore_target.h"
#include "basebackup/warmup.h"
#include "core/file_util.h"
#include "core/parallel.h"
#include "store/object_store.h"
#include "walarchive/prefetch.h"

namespace walvault::cli {

std::string absolute_location(const std::string& location) {
  if (location.empty() || location.front() == '/' || !store::is_local_location(location))
    return location;
  char cwd[4096];
  if (!::getcwd(cwd, sizeof cwd)) return location;
  return std::string(cwd) + "/" + location;
}

Error in_repository(const std::string& location, const Error& e, std::size_t count) {
  if (count < 2) return e;
  return Error(e.code(), "repository " + location + ": " + e.what());
}

bool first_that_serves(const std::vector<std::string>& locations,
                       const std::function<bool(const std::string& location)>& serve) {
  std::optional<Error> first_failure;
  for (const auto& location : locations) {
    try {
      if (serve(location)) return true;
    } catch (const Error& e) {
      const Error named = in_repository(location, e, locations.size());
      if (locations.size() > 1) spdlog::warn("{}", named.what());
      if (!first_failure) first_failure = named;
    }
  }
  if (first_failure) throw *first_failure;
  return false;
}

repo::LockOptions command_lock_options() {
  repo::LockOptions options = repo::default_lock_options();
  options.wait = std::chrono::minutes(10);
  return options;
}

const std::vector<std::string>& RepoSet::locations() const {
  if (access_.locations.empty())
    throw Error(ErrorCode::kUsage,
                "no repository: give --repo, WALVAULT_REPO or repo= (repo1=, ...) in the config "
                "file");
  for (const auto& location : access_.locations) store::require_supported_location(location);
  return access_.locations;
}

repo::Secrets RepoSet::secrets() const {
  repo::Secrets s;
  if (!access_.key_file.empty()) s.key_file = access_.key_file;
  if (!access_.passphrase_file.empty()) {
    auto bytes = read_file(access_.passphrase_file);
    if (!bytes)
      throw Error(ErrorCode::kKey,
                  "passphrase file " + access_.passphrase_file + " does not exist");
    std::string text(as_chars(*bytes));
    auto nl = text.find('\n');
    if (nl != std::string::npos) text.resize(nl);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    s.passphrase = text;
  } else if (const char* p = std::getenv("WALVAULT_PASSPHRASE")) {
    s.passphrase = p;
  }
  return s;
}

bool RepoSet::secret_only_in_environment() const {
  return access_.key_file.empty() && access_.passphrase_file.empty() &&
         std::getenv("WALVAULT_PASSPHRASE") != nullptr;
}

std::unique_ptr<repo::Repository> RepoSet::open(const std::string& location) const {
  // Local paths are checked here for a clearer message; an S3 bucket or
  // repository that is missing is reported by the store and the repository.
  if (store::is_local_location(location) && ::access(location.c_str(), F_OK) != 0)
    throw Error(ErrorCode::kRepoFormat,
                "no walvault repository at " + location + " (run 'walvault repo init')");
  std::shared_ptr<store::ObjectStore> st =
      store::open_store(location, {.create = false, .settings = access_.store_settings});
  return repo::Repository::open(st, secrets());
}

std::unique_ptr<repo::Repository> RepoSet::open_with_key_file(const std::string& location,
                                                              const std::string& key_file) const {
  RepoAccess side = access_;
  if (!key_file.empty()) side.key_file = key_file;
  try {
    return RepoSet(side).open(location);
  } catch (const Error& e) {
    side.key_file.clear();
    const RepoSet without_key(side);
    if (e.code() != ErrorCode::kKey || !key_file.empty() || access_.key_file.empty() ||
        !without_key.secrets().passphrase)
      throw;
    return without_key.open(location);
  }
}

std::vector<std::unique_ptr<repo::Repository>> RepoSet::open_all(KeyFallback fallback) const {
  std::vector<std::unique_ptr<repo::Repository>> opened;
  for_each_location([&](const std::string& location) {
    opened.push_back(fallback == KeyFallback::kPassphrase ? open_with_key_file(location)
                                                          : open(location));
  });
  return opened;
}

void RepoSet::for_each_location(const std::function<void(const std::string& location)>& fn) const {
  for (const auto& location : locations()) {
    try {
      fn(location);
    } catch (const Error& e) {
      throw in_repository(location, e);
    }
  }
}

PlannedRestore plan_from_repositories(const std::vector<std::string>& locations,
                                      const RepoOpener& open, const RestoreArgs& a) {
  PlannedRestore out;
  out.target = basebackup::parse_target({.time = a.target_time,
                                         .lsn = a.target_lsn,
                                         .xid = a.target_xid,
                                         .name = a.target_name,
                                         .immediate = a.target_immediate,
                                         .timeline = a.target_timeline});
  basebackup::check_target_action(a.target_action);
  // The first repository that can reach the target serves the restore; one
  // that cannot be opened or planned from falls back to the next.
  const bool served = first_that_serves(locations, [&](const std::string& location) {
    out.lock.reset();  // it refers to the repository replaced next
    out.repo = open(location);
    std::string refused;
    out.lock =
        repo::RepoLock::acquire_for_reading(*out.repo, "restore", command_lock_options(), &refused);
    if (!out.lock)
      spdlog::warn("repository {} does not take a lock ({}): restoring without one",
                   store::redact_location(location), refused);
    const basebackup::ArchiveView view = basebackup::load_archive_view(*out.repo);
    out.plan = basebackup::plan_restore(
        view, out.target, a.set.empty() ? std::nullopt : std::optional<std::string>(a.set));
    out.location = location;
    return true;
  });
  if (!served) throw Error(ErrorCode::kUsage, "no repository to restore from");
  return out;
}

void require_restore_command_unlocks(const PlannedRestore& p, const RestoreArgs& a) {
  if (!a.secret_only_in_environment || !p.repo->encrypted()) return;
  throw Error(ErrorCode::kUsage,
              "repository " + p.location +
                  " is encrypted and was unlocked by WALVAULT_PASSPHRASE alone, which the "
                  "restored server's restore_command will not have: give --key-file or "
                  "--passphrase-file (or, to restore, --restore-command)");
}

namespace {

// Segments pre-staged for the restored server's first restore_command calls.
constexpr std::size_t kPrestageSegments = 8;

void prestage_first_segments(repo::Repository& repo, const basebackup::RestorePlan& plan,
                             const std::string& spool) {
  const auto& all = plan.wal_segments;
  const std::vector<std::string> first(all.begin(),
                                       all.begin() + std::min(all.size(), kPrestageSegments));
  try {
    const int n = walarchive::prestage(repo, first, spool);
    spdlog::info("restore: pre-staged {} WAL segments in {}", n, spool);
  } catch (const Error& e) {  // an optimisation: archive-get fetches what is missing
    spdlog::info("restore: pre-staging WAL stopped: {}", e.what());
  }
}

}  // namespace

basebackup::RestoreStats restore_planned(PlannedRestore& p, const RestoreArgs& a,
                                         const basebackup::RestoreOptions& options) {
  const auto& b = p.plan.backup;
  const basebackup::BackupFiles files = basebackup::read_files(*p.repo, b.label);
  basebackup::RestoreOptions with_settings = options;
  // The blocks redo will read, from the block maps (warmup.h).
  basebackup::WarmUp warm;
  if (a.warm_up == "off") {
    warm.problems.push_back("warm-up off (--warm-up off)");
  } else {
    warm = basebackup::plan_warm_up(*p.repo, p.plan, files, basebackup::default_warm_up_budget());
    with_settings.hot_chunks = warm.chunks;
    with_settings.warm_mode =
        a.warm_up == "fadvise" ? basebackup::WarmMode::kFadvise : basebackup::WarmMode::kWrite;
  }
  // The recovery settings go in before pg_control: a restore killed between
  // the two must not leave a directory that starts without them.
  with_settings.before_pg_control = [&](const basebackup::RestoreStats& so_far) {
    auto settings = basebackup::recovery_settings(
        p.target, p.plan.target_timeline,
        {.restore_command = a.restore_command, .target_action = a.target_action}, b.pg_version_num,
        basebackup::recovery_prefetch_choice(warm, so_far.direct_io));
    settings.insert(settings.end(), a.extra_settings.begin(), a.extra_settings.end());
    basebackup::write_recovery_settings(options.pgdata, settings);
  };
  basebackup::RestoreStats stats;
  {
    WorkerPool prestager(1, 1);
    if (!a.prestage_spool.empty())
      prestager.submit([&] { prestage_first_segments(*p.repo, p.plan, a.prestage_spool); });
    stats = basebackup::restore_files(*p.repo, b, files, with_settings);
    prestager.wait();
  }
  if (a.warm_up != "off") stats.warm_up = warm.summary();
  return stats;
}

}  // namespace walvault::cli
