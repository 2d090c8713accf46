#include "cli/drill_cmd.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/history_cmd.h"
#include "core/error.h"
#include "ops/info.h"
#include "repo/history.h"
#include "repo/wal_objects.h"

namespace walvault::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kScratchTemplate[] = "/var/tmp/walvault-drill-XXXXXX";

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

std::vector<ops::DrillCheck> drill_checks(const DrillArgs& a) {
  if (a.check_sql.size() != a.expect.size())
    throw Error(ErrorCode::kUsage, "drill: give one --expect for each --check (" +
                                       std::to_string(a.check_sql.size()) + " --check, " +
                                       std::to_string(a.expect.size()) + " --expect)");
  std::vector<ops::DrillCheck> checks;
  for (const auto& line : a.config_checks) {
    const auto arrow = line.find("=>");
    if (arrow == std::string::npos)
      throw Error(ErrorCode::kUsage,
                  "drill-check: '" + line +
                      "' is not 'SQL => EXPECTED' (quote the whole value in the config file)");
    const auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t") + 1);
      return s;
    };
    checks.push_back({trim(line.substr(0, arrow)), trim(line.substr(arrow + 2))});
  }
  for (std::size_t i = 0; i < a.check_sql.size(); ++i)
    checks.push_back({a.check_sql[i], a.expect[i]});
  return checks;
}

// The drill's directory: --scratch (created; must be empty) or a fresh one.
// Returns it and whether the drill created it.
std::pair<std::string, bool> make_scratch(const std::string& wanted) {
  if (wanted.empty()) {
    std::string templ = kScratchTemplate;
    if (::mkdtemp(templ.data()) == nullptr) throw_errno("drill: mkdtemp " + templ);
    return {templ, true};
  }
  if (wanted.front() != '/') throw Error(ErrorCode::kUsage, "--scratch: give an absolute path");
  std::error_code ec;
  if (fs::exists(wanted, ec)) {
    if (!fs::is_directory(wanted, ec) || !fs::is_empty(wanted, ec))
      throw Error(ErrorCode::kUsage,
                  "--scratch: " + wanted + " exists and is not an empty directory");
    return {wanted, false};
  }
  fs::create_directories(wanted, ec);
  if (ec) throw Error(ErrorCode::kIo, "drill: creating " + wanted + ": " + ec.message());
  return {wanted, true};
}

void remove_scratch(const std::string& dir, bool created) {
  std::error_code ec;
  if (created) {
    fs::remove_all(dir, ec);
  } else {
    for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove_all(entry.path(), ec);
  }
  if (ec) std::cerr << "walvault: warning: drill: removing " << dir << ": " << ec.message() << "\n";
}

}  // namespace

int run_drill(const std::vector<std::string>& locations, const RepoOpener& open,
              const DrillArgs& a) {
  const auto t0 = Clock::now();
  const auto deadline = t0 + a.timeout;
  const std::vector<ops::DrillCheck> checks = drill_checks(a);
  if (!a.check_script.empty() && ::access(a.check_script.c_str(), X_OK) != 0)
    throw Error(ErrorCode::kUsage, "--check-script: " + a.check_script + " is not executable");

  repo::HistoryEntry entry = repo::start_history("drill");
  nlohmann::json& extra = entry.extra;
  extra["rto_s"] = a.target_rto ? nlohmann::json(a.target_rto->count()) : nlohmann::json(nullptr);
  extra["checks_passed"] = 0;
  extra["checks_failed"] = 0;

  RestoreArgs restore;
  restore.target_time = a.target_time;
  restore.set = a.set;
  restore.target_action = "promote";
  restore.parallel = a.parallel;
  restore.restore_command = a.restore_command;
  restore.secret_only_in_environment = a.secret_only_in_environment;

  PlannedRestore planned;                      // outlives the steps: history goes to its repo
  std::unique_ptr<repo::Repository> fallback;  // where a failure to plan is recorded
  repo::Repository* recorded = nullptr;
  std::string scratch;
  bool created = false;
  std::string step_failure;
  ErrorCode code = ErrorCode::kInternal;
  try {
    // Plan: nothing is written when the archive cannot reach the target.
    try {
      planned = plan_from_repositories(locations, open, restore);
    } catch (const Error& e) {
      try {
        fallback = open(locations.front());
        recorded = fallback.get();
      } catch (const Error&) {
        // nowhere to record it
      }
      throw Error(e.code(), std::string("restore plan: ") + e.what());
    }
    recorded = planned.repo.get();
    // The drill's server starts with a clean environment, as a restored one
    // would: a restore_command that needs WALVAULT_PASSPHRASE fails the drill.
    require_restore_command_unlocks(planned, restore);
    const basebackup::RestorePlan& plan = planned.plan;
    const basebackup::BackupRecord& b = plan.backup;
    extra["label"] = b.label;
    extra["target"] = describe_target(planned.target);

    std::tie(scratch, created) = make_scratch(a.scratch);
    ops::DrillServerOptions so;
    so.scratch = scratch;
    so.bin_dir = a.pg_bin.empty()
                     ? "/usr/lib/postgresql/" + std::to_string(b.pg_version_num / 10000) + "/bin"
                     : a.pg_bin;
    so.run_as = a.run_as;
    so.db_user = a.db_user;
    so.dbname = a.dbname;
    so.port = ops::drill_port();
    so.wal_segments = plan.wal_segments;
    repo::Repository& repo = *planned.repo;
    so.segment_archived = [&repo](const std::string& segment) {
      return repo.store().stat(repo::segment_object_name(segment)).has_value();
    };
    ops::DrillServer server(so);
    restore.pgdata = server.pgdata();
    restore.extra_settings = server.settings();

    std::cout << "drill: restoring backup " << b.label << " (" << human_bytes(b.logical_bytes)
              << "), target " << describe_target(planned.target) << " on timeline "
              << plan.target_timeline << ", into " << scratch << "\n";
    std::cout.flush();
    basebackup::RestoreOptions options;
    options.pgdata = restore.pgdata;
    options.parallel = a.parallel;
    basebackup::RestoreStats stats;
    try {
      stats = restore_planned(planned, restore, options);
    } catch (const Error& e) {
      throw Error(e.code(), std::string("restore: ") + e.what());
    }
    entry.bytes = stats.bytes;
    const double restore_s = since(t0);
    extra["restore_s"] = restore_s;
    std::cout << "drill: restored " << stats.files << " files, " << human_bytes(stats.bytes) << " ("
              << secs(restore_s) << ")\n";

    server.prepare();
    if (!plan.wal_segments.empty())
      server.try_restore_command(a.restore_command, plan.wal_segments.front());
    const std::string verified = server.verify_backup();
    extra["verifybackup"] = verified;
    if (verified.starts_with("skipped"))
      std::cerr << "walvault: warning: drill: pg_verifybackup " << verified << "\n";
    else
      std::cout << "drill: pg_verifybackup: " << verified << "\n";
    std::cout.flush();

    server.start_and_recover(deadline);
    const double recovery_s = since(t0);
    extra["recovery_s"] = recovery_s;
    std::cout << "drill: recovery finished, server promoted (" << secs(recovery_s) << ")\n";

    const ops::CheckOutcome outcome = server.run_checks(checks, a.check_script, t0);
    const double total_s = since(t0);
    extra["checks_passed"] = outcome.passed;
    extra["checks_failed"] = outcome.failed;
    extra["first_query_s"] =
        outcome.first_query_s ? nlohmann::json(*outcome.first_query_s) : nlohmann::json(nullptr);
    extra["total_s"] = total_s;
    for (const auto& line : outcome.lines) std::cout << "drill: " << line << "\n";
    server.stop();
    if (!outcome.first_failure.empty())
      throw Error(
          ErrorCode::kPostgres,
          outcome.first_failure +
              (outcome.failed > 1 ? " (and " + std::to_string(outcome.failed - 1) + " more)" : ""));
    if (a.target_rto && total_s > static_cast<double>(a.target_rto->count()))
      throw Error(ErrorCode::kPostgres, "target RTO exceeded: took " + secs(total_s) + ", target " +
                                            std::to_string(a.target_rto->count()) + " s");
    entry.outcome = "ok";
    entry.detail = "backup " + b.label + ": restore " + secs(restore_s) + ", recovery " +
                   secs(recovery_s) + ", first query " +
                   (outcome.first_query_s ? secs(*outcome.first_query_s) : std::string("-")) +
                   ", total " + secs(total_s) + "; " + std::to_string(outcome.passed) +
                   " checks passed";
  } catch (const Error& e) {
    step_failure = e.what();
    code = e.code();
  } catch (const std::exception& e) {  // std::filesystem on the scratch directory
    step_failure = e.what();
    code = ErrorCode::kIo;
  }
  if (step_failure.empty()) {
    extra["reason"] = nullptr;
  } else {
    entry.outcome = "failed";
    entry.detail = step_failure;
    extra["reason"] = step_failure;
  }
  if (!scratch.empty()) {
    if (a.keep) {
      extra["scratch"] = scratch;
      std::cout << "drill: kept " << scratch << " (server stopped; log in " << scratch
                << "/server.log)\n";
    } else {
      remove_scratch(scratch, created);
    }
  }
  if (recorded) record_history({recorded}, entry);
  if (!step_failure.empty()) throw Error(code, "drill failed: " + step_failure);
  std::cout << "drill passed: " << entry.detail;
  if (a.target_rto) std::cout << " (target RTO " << a.target_rto->count() << " s)";
  std::cout << "\n";
  return 0;
}

}  // namespace walvault::cli
