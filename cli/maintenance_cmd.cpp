#include "cli/maintenance_cmd.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "basebackup/backup_record.h"
#include "cli/history_cmd.h"
#include "core/error.h"
#include "core/time_util.h"
#include "ops/expire.h"
#include "ops/gc.h"
#include "repo/history.h"
#include "repo/lock.h"

namespace walvault::cli {

namespace {

constexpr const char* kRules[] = {"keep-last",   "keep-within",  "keep-daily",
                                  "keep-weekly", "keep-monthly", "keep-yearly"};

std::string where_of(const std::vector<repo::Repository*>& repos, repo::Repository& r) {
  return repos.size() > 1 ? "repository " + r.store().describe() + ": " : "";
}

repo::LockOptions lock_options(const MaintenanceCli& m) {
  repo::LockOptions options = repo::default_lock_options();
  options.wait = parse_duration("--lock-wait", m.lock_wait);
  return options;
}

// Runs `body` on every repository under the exclusive lock, recording a
// history entry for each; the first failure is rethrown after recording it.
template <typename Body>
int for_each_locked(const MaintenanceCli& m, const std::vector<repo::Repository*>& repos,
                    const std::string& command, Body body) {
  for (repo::Repository* r : repos) {
    repo::HistoryEntry entry = repo::start_history(command);
    try {
      std::unique_ptr<repo::RepoLock> lock;
      if (!m.dry_run)
        lock = repo::RepoLock::acquire(*r, repo::LockMode::kExclusive, command, lock_options(m));
      body(*r, lock.get(), entry);
      entry.outcome = "ok";
    } catch (const Error& e) {
      entry.outcome = "failed";
      entry.detail = e.what();
      if (!m.dry_run) record_history({r}, entry);
      if (repos.size() > 1) throw Error(e.code(), where_of(repos, *r) + e.what());
      throw;
    }
    if (!m.dry_run) record_history({r}, entry);
  }
  return 0;
}

int run_expire(const MaintenanceCli& m, const std::vector<repo::Repository*>& repos,
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

int run_gc(const MaintenanceCli& m, const std::vector<repo::Repository*>& repos) {
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

}  // namespace

void add_maintenance_commands(CLI::App& app, CLI::App& backup, MaintenanceCli& m) {
  m.expire = app.add_subcommand(
      "expire", "drop backups the retention rules no longer keep, and the WAL only they needed");
  m.expire->add_flag("--dry-run", m.dry_run, "list what would go and why; remove nothing");
  m.expire->add_flag("--json", m.json, "machine-readable output");
  m.expire->add_option("--tag", m.tag, "apply the --keep-* flags to this tag's backups");
  for (const char* rule : kRules) {
    const std::string name = rule;
    m.expire
        ->add_option_function<std::string>(
            "--" + name, [&m, name](const std::string& v) { m.rule_flags[name] = v; },
            name == "keep-within" ? "keep backups that started within this span of the newest"
                                  : "retention rule (restic forget semantics)")
        ->type_name(name == "keep-within" ? "DURATION" : "N");
  }
  m.expire->add_option("--pitr-window", m.pitr_window,
                       "keep WAL (and the backup it starts from) for this span back from now");
  m.expire
      ->add_option("--lock-wait", m.lock_wait,
                   "wait this long for running backups/restores to finish")
      ->default_str("0s");

  m.gc = app.add_subcommand("gc", "remove chunks no backup references; repack mostly-empty packs");
  m.gc->add_flag("--dry-run", m.dry_run, "report what would be freed; remove nothing");
  m.gc->add_flag("--json", m.json, "machine-readable output");
  m.gc->add_option("--grace", m.grace, "never remove garbage written less than this long ago")
      ->default_str("1h");
  m.gc->add_option("--repack-threshold", m.repack_threshold,
                   "repack a pack once this percentage of it is garbage")
      ->check(CLI::Range(1.0, 100.0))
      ->default_str("50");
  m.gc->add_option("--lock-wait", m.lock_wait,
                   "wait this long for running backups/restores to finish")
      ->default_str("0s");

  m.keep = backup.add_subcommand("keep", "pin a backup: expire never removes it");
  m.keep->add_option("label", m.label, "the backup's label")->required();
  m.keep->add_option("--note", m.note, "why it is kept");
  m.unkeep = backup.add_subcommand("unkeep", "unpin a backup");
  m.unkeep->add_option("label", m.label, "the backup's label")->required();
}

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

int run_maintenance(const MaintenanceCli& m, const std::vector<repo::Repository*>& repos,
                    const std::vector<CLI::ConfigItem>& retention_items) {
  if (m.expire->parsed()) return run_expire(m, repos, retention_items);
  if (m.gc->parsed()) return run_gc(m, repos);
  const bool pin = m.keep->parsed();
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

}  // namespace walvault::cli
