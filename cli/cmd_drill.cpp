// `walvault drill`: the command's options, and its run: ops::run_drill does
// the drill (restore into a scratch directory, start, recover, check, time);
// this plans and writes the restore for it (plan_from_repositories,
// restore_planned, as `restore` does), prints its progress and verdict and
// records the outcome in the repository's history.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "basebackup/restore_target.h"
#include "cli/command.h"
#include "cli/history_scope.h"
#include "cli/repo_set.h"
#include "core/error.h"
#include "core/time_util.h"
#include "ops/drill.h"
#include "repo/history.h"

namespace walvault::cli {

namespace {

struct DrillArgs {
  std::string set;          // backup label ("" : the newest that can reach the target)
  std::string target_time;  // "" : the end of the archive
  std::string scratch;      // "" : a fresh mkdtemp under /var/tmp
  std::string pg_bin;       // "" : pg::server_bin_dir (/usr/lib/postgresql/<major>/bin)
  std::string run_as = "postgres";
  std::string db_user;  // "" : the server's OS user
  std::string dbname = "postgres";
  std::vector<std::string> check_sql, expect;  // --check / --expect pairs
  std::vector<std::string> config_checks;      // "SQL => EXPECTED" (drill-check in the config)
  std::string check_script;
  bool keep = false;
  std::chrono::seconds timeout{30 * 60};
  std::optional<std::chrono::seconds> target_rto;
  int parallel = 2;
  std::string restore_command;              // the archive-get call the server runs
  bool secret_only_in_environment = false;  // see RestoreArgs
};

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
    drill_plan.target = basebackup::describe_target(planned.target);
    drill_plan.target_timeline = plan.target_timeline;
    drill_plan.wal_segments = plan.wal_segments;
    drill_plan.promote_at_pause = planned.target.kind != basebackup::RecoveryTarget::Kind::kEnd;
    drill_plan.repo = planned.repo.get();
    return drill_plan;
  };
  steps.restore = [&restore, &planned](const std::string& pgdata, const auto& settings) {
    restore.pgdata = pgdata;
    restore.extra_settings = settings;
    // Paused at the target, then promoted by the server step (DrillPlan).
    if (planned.target.kind != basebackup::RecoveryTarget::Kind::kEnd)
      restore.target_action = "pause";
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

// 0 when the drill passed; otherwise throws Error("drill failed: <step>: <why>")
// after recording the failure (and cleaning up unless --keep).
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

struct DrillCli {
  DrillArgs args;
  std::string timeout = "30m", target_rto;
};

int run_drill_command(const Context& ctx, DrillCli d) {
  DrillArgs& a = d.args;
  a.timeout = parse_duration("--timeout", d.timeout);
  if (!d.target_rto.empty()) a.target_rto = parse_duration("--target-rto", d.target_rto);
  a.restore_command = archive_get_command(ctx.globals);
  a.secret_only_in_environment = ctx.repos.secret_only_in_environment();
  return run_drill(ctx.repos.locations(), ctx.repos.opener(), a);
}

}  // namespace

void register_drill(CLI::App& app, Verbs& verbs, int parallel) {
  CLI::App* drill = app.add_subcommand(
      "drill", "restore a backup into a scratch directory, start it, run checks, time it");
  auto d = std::make_shared<DrillCli>();
  DrillArgs& a = d->args;
  a.parallel = parallel;
  drill->add_option("--set", a.set, "restore this backup (default: the newest)");
  drill->add_option("--target-time", a.target_time,
                    "recover to this time (default: the end of the archive)");
  drill->add_option("--scratch", a.scratch,
                    "empty or new directory to restore into (default: mkdtemp in /var/tmp)");
  drill->add_option("--check", a.check_sql,
                    "SQL whose first column of the first row must equal the next --expect");
  drill->add_option("--expect", a.expect, "expected text of the matching --check");
  drill->add_option("--check-script", a.check_script,
                    "executable run with PGHOST/PGPORT/PGDATA set; must exit 0");
  drill->add_option("--pg-bin", a.pg_bin,
                    "PostgreSQL binaries (default /usr/lib/postgresql/<major>/bin)");
  drill->add_option("--run-as", a.run_as, "the server's user when run as root")
      ->default_str("postgres");
  drill->add_option("--db-user", a.db_user, "role of the checks (default: --run-as)");
  drill->add_option("--dbname", a.dbname, "database of the checks")->default_str("postgres");
  drill->add_flag("--keep", a.keep, "keep the scratch directory (server stopped)");
  drill->add_option("--timeout", d->timeout, "give up on recovery after this long")
      ->default_str("30m");
  drill->add_option("--target-rto", d->target_rto, "fail when the drill takes longer than this");
  // Config-file checks: drill-check = "SQL => EXPECTED" (repeatable).
  app.add_option("--drill-check", a.config_checks)->group("")->envname(env_name("drill-check"));
  verbs.push_back({drill, [d](const Context& ctx) { return run_drill_command(ctx, *d); }});
}

}  // namespace walvault::cli
