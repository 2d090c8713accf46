// `verify [--read-data] [--json]`: exit 0 without errors (warnings allowed),
// the corruption status with any; recorded in the history either way.
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/command.h"
#include "cli/history_scope.h"
#include "core/error.h"
#include "ops/verify.h"

namespace walvault::cli {

namespace {

struct VerifyArgs {
  bool read_data = false;
  bool json = false;
};

int run_verify(const Context& ctx, const VerifyArgs& a) {
  auto r = ctx.repos.open_first();
  ops::VerifyOptions options;
  options.read_data = a.read_data;
  repo::HistoryEntry entry = repo::start_history("verify");
  entry.extra = {{"read_data", a.read_data}};
  ops::VerifyReport report;
  run_recorded({r.get()}, entry, [&] {
    // gc removing packs under verify's feet would look like damage.
    std::string refused;
    const auto lock =
        repo::RepoLock::acquire_for_reading(*r, "verify", command_lock_options(), &refused);
    if (!lock)
      spdlog::warn("the repository does not take a lock ({}): verifying without one", refused);
    report = ops::verify_repository(*r, options);
    entry.outcome = report.ok() ? "ok" : "failed";
    entry.bytes = report.bytes_read;
    entry.extra["errors"] = report.errors.size();
    entry.extra["warnings"] = report.warnings.size();
    entry.extra["backups"] = report.backups;
    entry.extra["wal_segments"] = report.wal_segments;
    entry.detail = std::to_string(report.errors.size()) + " errors, " +
                   std::to_string(report.warnings.size()) + " warnings" +
                   (a.read_data ? " (--read-data)" : "");
    if (!report.errors.empty())
      entry.detail +=
          "; first: " + report.errors.front().object + ": " + report.errors.front().message;
  });
  std::cout << (a.json ? ops::verify_report_json(report) : ops::verify_report_text(report));
  std::cout.flush();
  return report.ok() ? 0 : exit_status(ErrorCode::kCorruption);
}

}  // namespace

void register_verify(CLI::App& app, Verbs& verbs) {
  CLI::App* verify =
      app.add_subcommand("verify", "check that every backup and the WAL it needs are whole");
  auto args = std::make_shared<VerifyArgs>();
  verify->add_flag("--read-data", args->read_data,
                   "also read and check every object's content (every chunk, every segment)");
  verify->add_flag("--json", args->json, "machine-readable output");
  verbs.push_back({verify, [args](const Context& ctx) { return run_verify(ctx, *args); }});
}

}  // namespace walvault::cli
