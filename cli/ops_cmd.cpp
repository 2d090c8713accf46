#include "cli/ops_cmd.h"

#include <iostream>

#include "cli/backup_cmd.h"
#include "cli/history_cmd.h"
#include "core/error.h"
#include "ops/info.h"
#include "ops/sync.h"
#include "ops/verify.h"

namespace walvault::cli {

int run_verify(repo::Repository& repo, bool read_data, bool json) {
  ops::VerifyOptions options;
  options.read_data = read_data;
  repo::HistoryEntry entry = repo::start_history("verify");
  entry.extra = {{"read_data", read_data}};
  ops::VerifyReport report;
  try {
    // gc removing packs under verify's feet would look like damage.
    const auto lock = repo::RepoLock::acquire_for_reading(repo, "verify", command_lock_options());
    report = ops::verify_repository(repo, options);
  } catch (const std::exception& e) {
    entry.outcome = "failed";
    entry.detail = e.what();
    record_history({&repo}, entry);
    throw;
  }
  entry.outcome = report.ok() ? "ok" : "failed";
  entry.bytes = report.bytes_read;
  entry.extra["errors"] = report.errors.size();
  entry.extra["warnings"] = report.warnings.size();
  entry.extra["backups"] = report.backups;
  entry.extra["wal_segments"] = report.wal_segments;
  entry.detail = std::to_string(report.errors.size()) + " errors, " +
                 std::to_string(report.warnings.size()) + " warnings" +
                 (read_data ? " (--read-data)" : "");
  if (!report.errors.empty())
    entry.detail +=
        "; first: " + report.errors.front().object + ": " + report.errors.front().message;
  record_history({&repo}, entry);
  std::cout << (json ? ops::verify_report_json(report) : ops::verify_report_text(report));
  std::cout.flush();
  return report.ok() ? 0 : exit_status(ErrorCode::kCorruption);
}

int run_info(repo::Repository& repo, bool json) {
  const ops::InfoReport info = ops::repository_info(repo);
  std::cout << (json ? ops::info_json(info) : ops::info_text(info));
  std::cout.flush();
  return 0;
}

int run_sync(repo::Repository& from, repo::Repository& to, bool dry_run, int parallel) {
  ops::SyncOptions options;
  options.dry_run = dry_run;
  options.parallel = parallel;
  // Sync writes chunks into `to` deduplicated against its indexes, like a backup.
  const auto from_lock =
      repo::RepoLock::acquire_for_reading(from, "repo sync", command_lock_options());
  std::unique_ptr<repo::RepoLock> to_lock;
  if (!dry_run)
    to_lock =
        repo::RepoLock::acquire(to, repo::LockMode::kShared, "repo sync", command_lock_options());
  const ops::SyncReport report = ops::sync_repositories(from, to, options);
  for (const auto& why : report.skipped) std::cerr << "walvault: warning: " << why << "\n";
  std::cout << ops::sync_report_text(report);
  std::cout.flush();
  return report.skipped.empty() ? 0 : exit_status(ErrorCode::kConflict);
}

}  // namespace walvault::cli
