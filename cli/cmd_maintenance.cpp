// `expire`, `gc` (each repository in turn under its own exclusive lock,
// recorded in the history) and `backup keep|unkeep LABEL`; the retention
// rules come from the flags and the config file's [retention] sections.
#include <iostream>
#include <map>

#include "basebackup/backup_record.h"
#include "cli/command.h"
#include "cli/history_scope.h"
#include "core/error.h"
#include "core/time_util.h"
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

// The retention rules of the config file's [retention] (default policy) and
// [retention.TAG] sections. Throws Error(kUsage) naming a bad key or value.
ops::RetentionRules retention_from_config(const std::vector<CLI::ConfigItem>& items) {
  ops::RetentionRules rules;
  for (const CLI::ConfigItem& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // CLI11's section markers
    // [retention] -> parents {"retention"}; [retention.TAG] -> {"retention", "TAG"}.
    std::string tag;
    for (std::size_t i = 1; i < item.parents.size(); ++i)
      tag += (i > 1 ? "." : "") + item.parents[i];
    const std::string where = "config file [retention" + (tag.empty() ? "" : "." + tag) + "]";
    if (item.inputs.size() != 1)
      throw Error(ErrorCode::kUsage, where + " " + item.name + " takes one value");
    if (item.name == "pitr-window" && tag.empty()) {
      rules.pitr_window = parse_duration(where + " pitr-window", item.inputs.front());
      continue;
    }
    ops::set_retention_rule(tag.empty() ? rules.default_policy : rules.tags[tag], item.name,
                            item.inputs.front(), where);
  }
  return rules;
}

int run_expire(const MaintenanceArgs& m, const std::vector<repo::Repository*>& repos,
               const std::vector<CLI::ConfigItem>& retention_items) {
  ops::ExpireOptions options;
  options.rules = retention_from_config(retention_items);
  options.dry_run = m.dry_run;
  if (!m.rule_flags.empty()) {
    // Flags replace the policy they address (the default one, or --tag's) whole.
    ops::RetentionPolicy policy;
    for (const auto& [name, value] : m.rule_flags)
      ops::set_retention_rule(policy, name, value, "--" + name);
    (m.tag.empty() ? options.rules.default_policy : options.rules.tags[m.tag]) = policy;
  } else if (!m.tag.empty() && !options.rules.tags.count(m.tag)) {
    throw Error(ErrorCode::kUsage, "expire --tag " + m.tag + ": no [retention." + m.tag +
                                       "] section in the config file and no --keep-* flags");
  }
  if (!m.pitr_window.empty())
    options.rules.pitr_window = parse_duration("--pitr-window", m.pitr_window);
  if (options.rules.empty())
    throw Error(ErrorCode::kUsage,
                "expire: no retention rules: give --keep-last, --keep-within, --keep-daily, "
                "--keep-weekly, --keep-monthly, --keep-yearly or --pitr-window, or a [retention] "
                "section in the config file");
  return for_each_locked(
      m, repos, "expire",
      [&](repo::Repository& r, const repo::RepoLock* lock, repo::HistoryEntry& entry) {
        const ops::ExpireReport report = ops::expire_backups(r, options, lock);
        if (repos.size() > 1 && !m.json)
          std::cout << "repository " << r.store().describe() << ":\n";
        std::cout << (m.json ? ops::expire_report_json(report) : ops::expire_report_text(report));
        entry.detail = std::to_string(report.removed.size()) + " of " +
                       std::to_string(report.decisions.size()) + " backups expired, " +
                       std::to_string(report.wal_files_removed) + " WAL files";
        entry.bytes = report.wal_bytes_removed;
        entry.extra["expired"] = report.removed;
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
      return run_expire(m, repos, ctx.config.retention);
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
  expire->add_option("--tag", m.tag, "apply the --keep-* flags to this tag's backups");
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
