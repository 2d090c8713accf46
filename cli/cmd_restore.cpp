// `restore --pgdata DIR [--target-*] [--dry-run] [--delta]`: plan from the
// first repository that can reach the target (repo_set.h), print the plan,
// then write the backup and the recovery settings.
#include <iostream>

#include "basebackup/restore_target.h"
#include "basebackup/target_guard.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/time_util.h"

namespace walvault::cli {

namespace {

// The restore options of `a` that do not depend on the plan: --pgdata
// (absolute, without trailing slashes), --delta, direct I/O, --parallel and
// --tablespace-map. Throws Error(kUsage) naming a bad one.
basebackup::RestoreOptions restore_options(const RestoreArgs& a) {
  if (a.pgdata.empty() || a.pgdata.front() != '/')
    throw Error(ErrorCode::kUsage, "--pgdata: give an absolute path");
  basebackup::RestoreOptions options;
  options.pgdata = a.pgdata;
  while (options.pgdata.size() > 1 && options.pgdata.back() == '/') options.pgdata.pop_back();
  options.delta = a.delta;
  options.direct_io = !a.no_direct_io;
  options.parallel = a.parallel;
  for (const auto& m : a.tablespace_map) {
    auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size() || m[eq + 1] != '/')
      throw Error(ErrorCode::kUsage,
                  "--tablespace-map: '" + m + "' is not OLD=NEW with an absolute NEW");
    options.tablespace_map[m.substr(0, eq)] = m.substr(eq + 1);
  }
  return options;
}

void print_plan(const PlannedRestore& planned) {
  const basebackup::RestorePlan& plan = planned.plan;
  const auto& b = plan.backup;
  std::cout << "target: " << basebackup::describe_target(planned.target) << " on timeline "
            << plan.target_timeline << "\n"
            << "backup: " << b.label << " (" << mib(b.logical_bytes) << ", consistent at "
            << pg::format_lsn(b.stop_lsn) << ", " << format_time_us(b.stop_time_us) << ")\n"
            << "wal: " << plan.wal_segments.size() << " segments ("
            << (plan.wal_segments.empty()
                    ? std::string("-")
                    : plan.wal_segments.front() + " .. " + plan.wal_segments.back())
            << "), " << mib(plan.wal_bytes) << "\n"
            << "stop: " << plan.stop_reason << "\n"
            << "to fetch: " << mib(b.logical_bytes + plan.wal_bytes) << "\n";
}

int run_restore(const Context& ctx, RestoreArgs a) {
  if (a.restore_command.empty()) {
    a.restore_command = archive_get_command(ctx.globals);
    a.secret_only_in_environment = ctx.repos.secret_only_in_environment();
  }
  const std::vector<std::string>& locations = ctx.repos.locations();
  const basebackup::RestoreOptions options = restore_options(a);
  // Never under a running server (also for --dry-run, which tells what a
  // restore would do); checked again once the plan is made, just before writing.
  basebackup::refuse_live_postmaster(options.pgdata);

  // Plan first: nothing is written when the target cannot be reached.
  PlannedRestore planned = plan_from_repositories(locations, ctx.repos.opener(), a);
  const auto& b = planned.plan.backup;
  require_restore_command_unlocks(planned, a);
  basebackup::refuse_live_postmaster(options.pgdata);
  if (a.delta) basebackup::refuse_other_cluster(options.pgdata, b.system_id, a.force);
  print_plan(planned);
  if (a.dry_run) {
    std::cout << "dry run: nothing written\n";
    return 0;
  }
  const auto stats = restore_planned(planned, a, options);
  std::cout << "restored backup " << b.label << " into " << options.pgdata << ": " << stats.files
            << " files, " << mib(stats.bytes) << ", " << stats.chunks_written << " chunks written";
  if (a.delta)
    std::cout << ", " << stats.chunks_kept << " chunks kept, " << stats.files_removed
              << " paths removed";
  std::cout << "\nstart PostgreSQL on " << options.pgdata
            << " to replay the WAL (recovery.signal and restore_command are set)\n";
  return 0;
}

void add_target_options(CLI::App& restore, RestoreArgs& a) {
  restore.add_option("--target-time", a.target_time,
                     "recover to this time ('2026-11-26 10:00:00+00')");
  restore.add_option("--target-lsn", a.target_lsn, "recover to this LSN");
  restore.add_option("--target-xid", a.target_xid, "recover to this transaction's commit");
  restore.add_option("--target-name", a.target_name, "recover to this restore point");
  restore.add_flag("--target-immediate", a.target_immediate,
                   "stop as soon as the backup is consistent");
  restore.add_option("--target-timeline", a.target_timeline, "latest or a number")
      ->default_str("latest");
  restore
      .add_option("--target-action", a.target_action,
                  "pause, promote or shutdown once the target is reached")
      ->default_str("pause");
}

}  // namespace

void register_restore(CLI::App& app, Verbs& verbs, int parallel) {
  CLI::App* restore =
      app.add_subcommand("restore", "rebuild a data directory at a chosen point in time");
  auto a = std::make_shared<RestoreArgs>();
  a->parallel = parallel;
  restore->add_option("--pgdata", a->pgdata, "data directory to restore into")->required();
  add_target_options(*restore, *a);
  restore->add_option("--set", a->set, "restore this backup (label)");
  restore->add_flag("--dry-run", a->dry_run, "print the plan, write nothing");
  restore->add_flag("--delta", a->delta, "reuse a non-empty directory: rewrite only what differs");
  restore->add_flag("--force", a->force,
                    "with --delta: overwrite a data directory of another cluster");
  restore->add_option("--tablespace-map", a->tablespace_map,
                      "OLD=NEW tablespace location (repeatable)");
  restore->add_flag("--no-direct-io", a->no_direct_io,
                    "write through the page cache (default: O_DIRECT where possible)");
  restore->add_option("--parallel", a->parallel, "writer threads")->check(CLI::Range(1, 64));
  restore->add_option("--restore-command", a->restore_command,
                      "restore_command to write (default: this walvault's archive-get)");
  verbs.push_back({restore, [a](const Context& ctx) { return run_restore(ctx, *a); }});
}

}  // namespace walvault::cli
