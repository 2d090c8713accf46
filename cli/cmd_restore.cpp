// `restore --pgdata DIR [--target-*] [--dry-run] [--delta]`: plan from the
// first repository that can reach the target (repo_set.h), print the plan,
// then write the backup and the recovery settings; `restore --all` also
// restores every configured volume (a backup set, cli/backup_set.h).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>

#include "basebackup/restore_target.h"
#include "basebackup/target_guard.h"
#include "cli/backup_set.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/time_util.h"
#include "ops/start_restored.h"
#include "pg/server_control.h"

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

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", s);
  return buf;
}

// `--start` and what goes with it.
struct StartArgs {
  bool start = false;
  std::string pg_bin;    // "": /usr/lib/postgresql/<major>/bin
  std::string log_file;  // "": <pgdata>/walvault-start.log
  std::string timeout;   // "": 1h
};

// Adds --recovery-option NAME=VALUE settings to a.extra_settings. Throws
// Error(kUsage) naming a malformed one or one that restore writes itself.
void add_recovery_options(RestoreArgs& a, const std::vector<std::string>& options) {
  for (const std::string& o : options) {
    const auto eq = o.find('=');
    const std::string name = o.substr(0, eq == std::string::npos ? 0 : eq);
    const bool good_name =
        !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
        std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
        });
    if (!good_name)
      throw Error(ErrorCode::kUsage, "--recovery-option: '" + o + "' is not NAME=VALUE");
    if (name == "restore_command" || name.starts_with("recovery_target"))
      throw Error(ErrorCode::kUsage, "--recovery-option: " + name +
                                         " is written by restore (--restore-command, --target-*)");
    const std::string value = o.substr(eq + 1);
    if (value.find('\0') != std::string::npos)
      throw Error(ErrorCode::kUsage, "--recovery-option: " + name + " has a NUL byte");
    a.extra_settings.emplace_back(name, value);
  }
}

// What --start needs decided before the restore writes the recovery
// settings: with a target, hot_standby = on (a pause needs it, and the
// server must accept connections to be seen as started), and for promote
// the target's pause that the promotion request ends
// (ops/start_restored.h; every supported major, 13 on, takes a promotion
// request while paused). Returns whether to request the promotion.
bool prepare_start(const StartArgs& s, const PlannedRestore& planned, RestoreArgs& a) {
  if (!s.start) return false;
  if (a.target_action == "shutdown")
    throw Error(ErrorCode::kUsage,
                "--start: --target-action shutdown stops the server at the target; give pause "
                "or promote");
  ops::check_can_start(pg::server_bin_dir(planned.plan.backup.pg_version_num, s.pg_bin));
  if (planned.target.kind == basebackup::RecoveryTarget::Kind::kEnd) return false;
  a.extra_settings.emplace_back("hot_standby", "on");
  if (a.target_action != "promote") return false;
  a.target_action = "pause";
  return true;
}

// Starts the restored server (--start) and says when it accepted
// connections and writes.
void start_server(const StartArgs& s, const PlannedRestore& planned, const std::string& pgdata,
                  bool request_promotion, const std::string& target_action) {
  ops::StartRestoredOptions o;
  o.pgdata = pgdata;
  o.bin_dir = pg::server_bin_dir(planned.plan.backup.pg_version_num, s.pg_bin);
  o.log_file = s.log_file.empty() ? pgdata + "/walvault-start.log" : s.log_file;
  // Without a target recovery ends at the end of the archive whatever the
  // action: wait for it.
  o.until_writable =
      target_action == "promote" || planned.target.kind == basebackup::RecoveryTarget::Kind::kEnd;
  o.request_promotion = request_promotion;
  o.timeout = parse_duration("--start-timeout", s.timeout.empty() ? "1h" : s.timeout);
  std::cout << "starting PostgreSQL (" << o.bin_dir << "/pg_ctl, log " << o.log_file << ")\n"
            << std::flush;
  const ops::StartRestoredReport r = ops::start_restored_server(o);
  std::cout << "server accepts connections after " << format_seconds(r.accepting_s);
  if (r.writable)
    std::cout << ", writes after " << format_seconds(r.done_s)
              << (request_promotion ? " (promoted at the target: no end-of-recovery checkpoint)"
                                    : "");
  else
    std::cout << " (read-only: recovery goes on to the target and pauses there)";
  std::cout << "\n";
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

int run_restore(const Context& ctx, RestoreArgs a, const StartArgs& start) {
  const bool own_restore_command = a.restore_command.empty();
  if (own_restore_command) {
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
  if (own_restore_command) a.prestage_spool = spool_dir(ctx.globals, *planned.repo, "get");
  const std::string asked_action = a.target_action;
  const bool request_promotion = prepare_start(start, planned, a);
  const auto stats = restore_planned(planned, a, options);
  std::cout << "restored backup " << b.label << " into " << options.pgdata << ": " << stats.files
            << " files, " << mib(stats.bytes) << ", " << stats.chunks_written << " chunks written";
  if (a.delta)
    std::cout << ", " << stats.chunks_kept << " chunks kept, " << stats.files_removed
              << " paths removed";
  if (!stats.warm_up.empty()) std::cout << "\n" << stats.warm_up;
  std::cout << "\n";
  if (start.start) {
    start_server(start, planned, options.pgdata, request_promotion, asked_action);
    return 0;
  }
  std::cout << "start PostgreSQL on " << options.pgdata
            << " to replay the WAL (recovery.signal and restore_command are set)\n";
  return 0;
}

// What `restore --all` restores besides the database.
struct RestoreSetArgs {
  bool all = false;
  std::vector<std::string> volumes;  // NAME=DIR
};

// Refuses the options a set restore has no use for: its volumes are found
// by time, and nothing is restored over what is there.
void check_set_restore_options(RestoreArgs& a) {
  if (!a.target_lsn.empty() || !a.target_xid.empty() || !a.target_name.empty() ||
      a.target_immediate || !a.set.empty() || a.delta)
    throw Error(ErrorCode::kUsage,
                "restore --all restores to --target-time (or the latest): --target-lsn, "
                "--target-xid, --target-name, --target-immediate, --set and --delta are "
                "restore's alone");
  if (a.target_time == "latest") a.target_time.clear();
}

// Each volume's snapshot, found before anything is written.
std::vector<ServedSnapshot> find_volume_snapshots(const Context& ctx, const RestoreArgs& a,
                                                  const std::vector<VolumeTarget>& targets) {
  std::vector<ServedSnapshot> served;
  for (const VolumeTarget& t : targets) {
    served.push_back(
        first_with_snapshot(ctx, a.target_time.empty() ? "latest" : t.volume + "@" + a.target_time,
                            t.volume, "restore --all"));
    const files::SnapshotRecord& s = served.back().record;
    std::cout << "volume " << t.volume << ": snapshot " << files::snapshot_id(s) << " (" << s.label
              << ", taken " << format_time_us(s.start_us) << " .. " << format_time_us(s.end_us)
              << ", " << mib(s.bytes) << ") from " << served.back().repo->store().describe()
              << " into " << t.dir << "\n";
  }
  return served;
}

int run_restore_set(const Context& ctx, RestoreArgs a, const RestoreSetArgs& set,
                    const StartArgs& start) {
  const std::int64_t t0 = now_unix_us();
  check_set_restore_options(a);
  if (a.restore_command.empty()) {
    a.restore_command = archive_get_command(ctx.globals);
    a.secret_only_in_environment = ctx.repos.secret_only_in_environment();
  }
  const ScheduleSettings settings = read_schedule_settings(ctx, "restore --all");
  const basebackup::RestoreOptions options = restore_options(a);
  basebackup::refuse_live_postmaster(options.pgdata);
  const std::vector<VolumeTarget> targets = volume_targets(settings, set.volumes, options.pgdata);
  // Every part is planned (the database's WAL reaches the target, each volume
  // has its snapshot) before anything is written.
  PlannedRestore planned = plan_from_repositories(ctx.repos.locations(), ctx.repos.opener(), a);
  require_restore_command_unlocks(planned, a);
  print_plan(planned);
  std::cout << "database: from " << store::redact_location(planned.location) << " into "
            << options.pgdata << "\n";
  const std::vector<ServedSnapshot> served = find_volume_snapshots(ctx, a, targets);
  if (a.dry_run) {
    std::cout << "dry run: nothing written\n";
    return 0;
  }
  basebackup::refuse_live_postmaster(options.pgdata);
  const std::string asked_action = a.target_action;
  const bool request_promotion = prepare_start(start, planned, a);
  const auto stats = restore_planned(planned, a, options);
  const std::int64_t database_us = now_unix_us() - t0;
  std::cout << "restored backup " << planned.plan.backup.label << " into " << options.pgdata << ": "
            << stats.files << " files, " << mib(stats.bytes) << ", "
            << static_cast<double>(database_us / 100000) / 10.0 << " s\n"
            << std::flush;
  for (std::size_t i = 0; i < served.size(); ++i) restore_volume(served[i], {.to = targets[i].dir});
  std::cout << "restore --all complete: database from backup " << planned.plan.backup.label
            << " to " << basebackup::describe_target(planned.target);
  for (const ServedSnapshot& s : served)
    std::cout << ", " << s.record.volume << " from snapshot " << files::snapshot_id(s.record)
              << " (" << s.record.label << ")";
  std::cout << ", " << static_cast<double>((now_unix_us() - t0) / 100000) / 10.0 << " s\n";
  if (start.start) {
    start_server(start, planned, options.pgdata, request_promotion, asked_action);
    return 0;
  }
  std::cout << "start PostgreSQL on " << options.pgdata
            << " to replay the WAL (recovery.signal and restore_command are set)\n";
  return 0;
}

int run_restore_or_set(const Context& ctx, RestoreArgs a, const RestoreSetArgs& set,
                       const StartArgs& start, const std::vector<std::string>& recovery_options) {
  add_recovery_options(a, recovery_options);
  if (!start.start && (!start.pg_bin.empty() || !start.log_file.empty() || !start.timeout.empty()))
    throw Error(ErrorCode::kUsage, "--pg-bin, --server-log and --start-timeout are --start's");
  if (!start.timeout.empty())
    parse_duration("--start-timeout", start.timeout);  // before anything is written
  if (set.all) return run_restore_set(ctx, a, set, start);
  if (!set.volumes.empty()) throw Error(ErrorCode::kUsage, "--volume is restore --all's");
  return run_restore(ctx, a, start);
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
  restore
      ->add_option("--warm-up", a->warm_up,
                   "leave the blocks redo will read (block maps) in the page cache: write "
                   "them through it, fadvise (read ahead after writing) or off")
      ->check(CLI::IsMember({"write", "fadvise", "off"}));
  restore->add_option("--parallel", a->parallel, "writer threads")->check(CLI::Range(1, 64));
  restore->add_option("--restore-command", a->restore_command,
                      "restore_command to write (default: this walvault's archive-get)");
  auto set = std::make_shared<RestoreSetArgs>();
  restore->add_flag("--all", set->all,
                    "the backup set: the database to --target-time (or the latest) and every "
                    "[volume.NAME] to its newest snapshot at or before it");
  restore->add_option("--volume", set->volumes,
                      "NAME=DIR: with --all, restore volume NAME into DIR (an empty or new "
                      "directory; default: its configured path) (repeatable)");
  auto start = std::make_shared<StartArgs>();
  auto recovery_options = std::make_shared<std::vector<std::string>>();
  restore->add_option("--recovery-option", *recovery_options,
                      "NAME=VALUE: one more postgresql.auto.conf setting, written with the "
                      "recovery settings (repeatable; e.g. port=5433)");
  restore->add_flag("--start", start->start,
                    "start the restored server (pg_ctl, as the user running restore, never root) "
                    "and wait: "
                    "with --target-action promote until it accepts writes (promoted at the "
                    "target, without an end-of-recovery checkpoint), else until it accepts "
                    "connections");
  restore->add_option("--pg-bin", start->pg_bin,
                      "with --start: directory of pg_ctl (default: "
                      "/usr/lib/postgresql/<major>/bin)");
  restore->add_option("--server-log", start->log_file,
                      "with --start: the server's log (default: <pgdata>/walvault-start.log)");
  restore->add_option("--start-timeout", start->timeout,
                      "with --start: give up waiting after this long (the server runs on; "
                      "default 1h)");
  verbs.push_back({restore, [a, set, start, recovery_options](const Context& ctx) {
                     return run_restore_or_set(ctx, *a, *set, *start, *recovery_options);
                   }});
}

}  // namespace walvault::cli
