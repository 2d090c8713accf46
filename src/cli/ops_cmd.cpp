#include "cli/ops_cmd.h"

#include <iostream>

#include "core/error.h"
#include "ops/info.h"
#include "ops/sync.h"
#include "ops/verify.h"

namespace walvault::cli {

int run_verify(repo::Repository& repo, bool read_data, bool json) {
  ops::VerifyOptions options;
  options.read_data = read_data;
  const ops::VerifyReport report = ops::verify_repository(repo, options);
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
  const ops::SyncReport report = ops::sync_repositories(from, to, options);
  for (const auto& why : report.skipped) std::cerr << "walvault: warning: " << why << "\n";
  std::cout << ops::sync_report_text(report);
  std::cout.flush();
  return report.skipped.empty() ? 0 : exit_status(ErrorCode::kConflict);
}

}  // namespace walvault::cli
