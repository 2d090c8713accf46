// `expire`, `gc` (each repository in turn under its own exclusive lock,
// recorded in the history) and `backup keep|unkeep LABEL`; the retention
// rules come from the flags and the config file's [retention] and
// [files-retention] sections (cli/config.h).
#include <iostream>
#include <map>
#include <optional>

#include "basebackup/backup_record.h"
#include "cli/command.h"
#include "cli/history_scope.h"
#include "core/error.h"
#include "core/relative_path.h"
#include "core/time_util.h"
#include "files/snapshot_record.h"
#include "ops/expire.h"
#include "ops/gc.h"
#include "ops/retention.h"
#include "repo/history.h"
#include "repo/lock.h"

namespace walvault::cli {

namespace {

struct MaintenanceArgs {
  // expire
  bool dry_run = false;
  bool json = false;
  std::string tag;
  std::string volume;
  std::map<std::string, std::string> rule_flags;  // "keep-daily" -> "7", from the flags
  std::string pitr_window;
  std::string lock_wait = "0s";
  // gc
  std::string grace = "1h";
  double repack_threshold = 50;  // percent
  // keep / unkeep
  std::string label;
  std::string note;
};

constexpr const char* kRules[] = {"keep-last",   "keep-within",  "keep-daily",
                                  "keep-weekly", "keep-monthly", "keep-yearly"};

std::string where_of(const std::vector<repo::Repository*>& repos, repo::Repository& r) {
  return repos.size() > 1 ? "repository " + r.store().describe() + ": " : "";
}

repo::LockOptions lock_options(const MaintenanceArgs& m) {
  repo::LockOptions options = repo::default_lock_options();
  options.wait = parse_duration("--lock-wait", m.lock_wait);
  return options;
}

// Runs `body` on every repository under the exclusive lock, recording a
// history entry for each (not on a dry run); the first failure is rethrown
// after recording it, naming its repository when there are several.
template <typename Body>
int for_each_locked(const MaintenanceArgs& m, const std::vector<repo::Repository*>& repos,
                    const std::string& command, Body body) {
  for (repo::Repository* r : repos) {
    repo::HistoryEntry entry = repo::start_history(command);
    const std::vector<repo::Repository*> recorded =
        m.dry_run ? std::vector<repo::Repository*>{} : std::vector<repo::Repository*>{r};
    try {
      run_recorded(recorded, entry, [&] {
        std::unique_ptr<repo::RepoLock> lock;
        if (!m.dry_run)
          lock = repo::RepoLock::acquire(*r, repo::LockMode::kExclusive, command, lock_options(m));
        body(*r, lock.get(), entry);
      });
    } catch (const Error& e) {
      if (repos.size() > 1) throw Error(e.code(), where_of(repos, *r) + e.what());
      throw;
    }
  }
  return 0;
}

// The rules expire applies: the config file's, with the --keep-* flags
// replacing the one policy they address whole: the database backups' default
// policy, --tag's, --volume's, or --volume and --tag's. Without flags, the
// policy --tag/--volume name must be in the config file.
ops::ExpireOptions expire_options(const MaintenanceArgs& m, const ConfigSections& config) {
  ops::ExpireOptions options;
  options.rules = retention_from_config(config.retention);
  options.snapshot_rules = snapshot_retention_from_config(config.files_retention);
  options.dump_rules = dump_retention_from_config(config.dump_retention);
  options.dry_run = m.dry_run;
  ops::RetentionPolicy* addressed = &options.rules.default_policy;
  std::optional<std::string> missing;  // the section the flags would stand for, when absent
  if (!m.volume.empty()) {
    if (auto problem = files::volume_problem(m.volume))
      throw Error(ErrorCode::kUsage, "--volume " + printable_name(m.volume) + ": " + *problem);
    ops::SnapshotRetentionRules& rules = options.snapshot_rules;
    const bool configured = m.tag.empty() ? rules.volumes.count(m.volume) > 0
                                          : rules.volume_tags.count({m.volume, m.tag}) > 0;
    if (!configured)
      missing = "[files-retention." + m.volume + (m.tag.empty() ? "" : ":" + m.tag) + "]";
    addressed = m.tag.empty() ? &rules.volumes[m.volume] : &rules.volume_tags[{m.volume, m.tag}];
  } else if (!m.tag.empty()) {
    if (!options.rules.tags.count(m.tag)) missing = "[retention." + m.tag + "]";
    addressed = &options.rules.tags[m.tag];
  }
  if (!m.rule_flags.empty()) {
    ops::RetentionPolicy policy;
    for (const auto& [name, value] : m.rule_flags)
      ops::set_retention_rule(policy, name, value, "--" + name);
    *addressed = policy;
  } else if (missing) {
    throw Error(ErrorCode::kUsage,
                "expire: no " + *missing + " section in the config file and no --keep-* flags");
  }
  if (!m.pitr_window.empty())
    options.rules.pitr_window = parse_duration("--pitr-window", m.pitr_window);
  if (options.rules.empty() && options.snapshot_rules.empty() && options.dump_rules.empty())
    throw Error(ErrorCode::kUsage,
                "expire: no retention rules: give --keep-last, --keep-within, --keep-daily, "
                "--keep-weekly, --keep-monthly, --keep-yearly or --pitr-window, or a [retention], "
                "[files-retention] or [dump-retention] section in the config file");
  return options;
}

int run_expire(const MaintenanceArgs& m, const std::vector<repo::Repository*>& repos,
               const ConfigSections& config) {
  const ops::ExpireOptions options = expire_options(m, config);
  return for_each_locked(
      m, repos, "expire",
      [&](repo::Repository& r, const repo::RepoLock* lock, repo::HistoryEntry& entry) {
        const ops::ExpireReport report = ops::expire_backups(r, options, lock);
        if (repos.size() > 1 && !m.json)
          std::cout << "repository " << r.store().describe() << ":\n";
        std::cout << (m.json ? ops::expire_report_json(report) : ops::expire_report_text(report));
        entry.detail = std::to_string(report.removed.size()) + " of " +
                       std::to_string(report.decisions.size()) + " backups expired, " +
                       std::to_string(report.wal_files_removed) + " WAL files, " +
                       std::to_string(report.snapshots_removed.size()) + " of " +
                       std::to_string(report.snapshot_decisions.size()) + " snapshots expired";
        entry.bytes = report.wal_bytes_removed;
        entry.extra["expired"] = report.removed;
        entry.extra["expired_snapshots"] = report.snapshots_removed;
        if (report.dumps_considered) {
          entry.detail += ", " + std::to_string(report.dumps_removed.size()) + " of " +
                          std::to_string(report.dump_decisions.size()) + " dumps expired";
          entry.extra["expired_dumps"] = report.dumps_removed;
        }
      });
}

int run_gc(const MaintenanceArgs& m, const std::vector<repo::Repository*>& repos) {
  ops::GcOptions options;
  options.grace = parse_duration("--grace", m.grace);
  options.repack_threshold = m.repack_threshold / 100.0;
  options.dry_run = m.dry_run;
  return for_each_locked(
      m, repos, "gc",
      [&](repo::Repository& r, const repo::RepoLock* lock, repo::HistoryEntry& entry) {
        const ops::GcReport report = ops::collect_garbage(r, options, lock);
        if (repos.size() > 1 && !m.json)
          std::cout << "repository " << r.store().describe() << ":\n";
        std::cout << (m.json ? ops::gc_report_json(report) : ops::gc_report_text(report));
        entry.bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(0, report.freed()));
        entry.detail = std::to_string(report.packs_removed) + " packs removed, " +
                       std::to_string(report.packs_repacked) + " repacked";
        entry.extra["dedup_ratio"] = report.dedup_ratio();
        entry.extra["pack_bytes_after"] = report.pack_bytes_after;
      });
}

// backup keep|unkeep LABEL on every repository.
int run_pin(const MaintenanceArgs& m, const std::vector<repo::Repository*>& repos, bool pin) {
  for (repo::Repository* r : repos) {
    const bool changed =
        pin ? basebackup::pin_backup(*r, m.label, m.note) : basebackup::unpin_backup(*r, m.label);
    const std::string where = where_of(repos, *r);
    if (pin)
      std::cout << where << "backup " << m.label
                << (changed ? " is pinned: expire keeps it\n" : " was pinned already\n");
    else
      std::cout << where << "backup " << m.label
                << (changed ? " is no longer pinned\n" : " was not pinned\n");
  }
  return 0;
}

enum class Maintenance { kExpire, kGc, kKeep, kUnkeep };

// Opens every repository, then runs `which` on them.
int run_maintenance(const Context& ctx, const MaintenanceArgs& m, Maintenance which) {
  auto opened = ctx.repos.open_all(KeyFallback::kNone);
  std::vector<repo::Repository*> repos;
  for (auto& r : opened) repos.push_back(r.get());
  switch (which) {
    case Maintenance::kExpire:
      return run_expire(m, repos, ctx.config);
    case Maintenance::kGc:
      return run_gc(m, repos);
    case Maintenance::kKeep:
      return run_pin(m, repos, true);
    case Maintenance::kUnkeep:
      return run_pin(m, repos, false);
  }
  throw Error(ErrorCode::kInternal, "no maintenance command");
}

CLI::App* add_expire(CLI::App& app, MaintenanceArgs& m) {
  CLI::App* expire = app.add_subcommand(
      "expire", "drop backups the retention rules no longer keep, and the WAL only they needed");
  expire->add_flag("--dry-run", m.dry_run, "list what would go and why; remove nothing");
  expire->add_flag("--json", m.json, "machine-readable output");
  expire->add_option("--tag", m.tag,
                     "apply the --keep-* flags to this tag's backups (with --volume: snapshots)");
  expire->add_option("--volume", m.volume,
                     "apply the --keep-* flags to this volume's snapshots, not to the backups");
  for (const char* rule : kRules) {
    const std::string name = rule;
    expire
        ->add_option_function<std::string>(
            "--" + name, [&m, name](const std::string& v) { m.rule_flags[name] = v; },
            name == "keep-within" ? "keep backups that started within this span of the newest"
                                  : "retention rule (restic forget semantics)")
        ->type_name(name == "keep-within" ? "DURATION" : "N");
  }
  expire->add_option("--pitr-window", m.pitr_window,
                     "keep WAL (and the backup it starts from) for this span back from now");
  expire
      ->add_option("--lock-wait", m.lock_wait,
                   "wait this long for running backups/restores to finish")
      ->default_str("0s");
  return expire;
}

CLI::App* add_gc(CLI::App& app, MaintenanceArgs& m) {
  CLI::App* gc =
      app.add_subcommand("gc", "remove chunks no backup references; repack mostly-empty packs");
  gc->add_flag("--dry-run", m.dry_run, "report what would be freed; remove nothing");
  gc->add_flag("--json", m.json, "machine-readable output");
  gc->add_option("--grace", m.grace, "never remove garbage written less than this long ago")
      ->default_str("1h");
  gc->add_option("--repack-threshold", m.repack_threshold,
                 "repack a pack once this percentage of it is garbage")
      ->check(CLI::Range(1.0, 100.0))
      ->default_str("50");
  gc->add_option("--lock-wait", m.lock_wait,
                 "wait this long for running backups/restores to finish")
      ->default_str("0s");
  return gc;
}

}  // namespace

void register_maintenance(CLI::App& app, CLI::App& backup, Verbs& verbs) {
  auto m = std::make_shared<MaintenanceArgs>();
  const auto verb = [&verbs, m](CLI::App* command, Maintenance which) {
    verbs.push_back(
        {command, [m, which](const Context& ctx) { return run_maintenance(ctx, *m, which); }});
  };
  verb(add_expire(app, *m), Maintenance::kExpire);
  verb(add_gc(app, *m), Maintenance::kGc);
  CLI::App* keep = backup.add_subcommand("keep", "pin a backup: expire never removes it");
  keep->add_option("label", m->label, "the backup's label")->required();
  keep->add_option("--note", m->note, "why it is kept");
  verb(keep, Maintenance::kKeep);
  CLI::App* unkeep = backup.add_subcommand("unkeep", "unpin a backup");
  unkeep->add_option("label", m->label, "the backup's label")->required();
  verb(unkeep, Maintenance::kUnkeep);
}

}  // namespace walvault::cli
