#include "cli/drill_cmd.h"

#include <unistd.h>

#include <iostream>

#include "cli/history_cmd.h"
#include "core/error.h"
#include "repo/history.h"

namespace walvault::cli {

namespace {

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

// The plan and write steps of a drill over `restore`, which they complete;
// `recorded` is where the drill's history goes (the serving repository, or the
// first one when planning failed there).
ops::DrillSteps drill_steps(const std::vector<std::string>& locations, const RepoOpener& open,
                            RestoreArgs& restore, PlannedRestore& planned,
                            std::unique_ptr<repo::Repository>& fallback,
                            repo::Repository*& recorded) {
  ops::DrillSteps steps;
  steps.plan = [&locations, &open, &restore, &planned, &fallback, &recorded] {
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
    ops::DrillPlan drill_plan;
    drill_plan.label = plan.backup.label;
    drill_plan.logical_bytes = plan.backup.logical_bytes;
    drill_plan.pg_version_num = plan.backup.pg_version_num;
    drill_plan.target = describe_target(planned.target);
    drill_plan.target_timeline = plan.target_timeline;
    drill_plan.wal_segments = plan.wal_segments;
    drill_plan.repo = planned.repo.get();
    return drill_plan;
  };
  steps.restore = [&restore, &planned](const std::string& pgdata, const auto& settings) {
    restore.pgdata = pgdata;
    restore.extra_settings = settings;
    basebackup::RestoreOptions options;
    options.pgdata = pgdata;
    options.parallel = restore.parallel;
    return restore_planned(planned, restore, options);
  };
  steps.progress = [](const std::string& line) {
    std::cout << "drill: " << line << "\n";
    std::cout.flush();
  };
  return steps;
}

}  // namespace

int run_drill(const std::vector<std::string>& locations, const RepoOpener& open,
              const DrillArgs& a) {
  ops::DrillOptions options;
  options.checks = drill_checks(a);
  if (!a.check_script.empty() && ::access(a.check_script.c_str(), X_OK) != 0)
    throw Error(ErrorCode::kUsage, "--check-script: " + a.check_script + " is not executable");
  options.check_script = a.check_script;
  options.scratch = a.scratch;
  options.pg_bin = a.pg_bin;
  options.run_as = a.run_as;
  options.db_user = a.db_user;
  options.dbname = a.dbname;
  options.keep = a.keep;
  options.timeout = a.timeout;
  options.target_rto = a.target_rto;
  options.restore_command = a.restore_command;
  repo::HistoryEntry started = repo::start_history("drill");

  RestoreArgs restore;
  restore.target_time = a.target_time;
  restore.set = a.set;
  restore.target_action = "promote";
  restore.parallel = a.parallel;
  restore.restore_command = a.restore_command;
  restore.secret_only_in_environment = a.secret_only_in_environment;
  PlannedRestore planned;                      // outlives the drill: history goes to its repo
  std::unique_ptr<repo::Repository> fallback;  // where a failure to plan is recorded
  repo::Repository* recorded = nullptr;
  const ops::DrillReport report =
      ops::run_drill(options, drill_steps(locations, open, restore, planned, fallback, recorded));

  if (recorded) record_history({recorded}, ops::drill_history(report, std::move(started)));
  if (!report.passed()) throw Error(report.failure_code, "drill failed: " + report.failure);
  std::cout << "drill passed: " << report.summary;
  if (a.target_rto) std::cout << " (target RTO " << a.target_rto->count() << " s)";
  std::cout << "\n";
  return 0;
}

}  // namespace walvault::cli
