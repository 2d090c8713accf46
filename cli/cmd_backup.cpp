// `backup [--pg CONN | --from-tar - | --local --pgdata DIR]`, `backup --all` (a backup set,
// cli/backup_set.h) and `backup list [--json]`.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "basebackup/backup_record.h"
#include "basebackup/local_backup.h"
#include "basebackup/take_backup.h"
#include "cli/backup_set.h"
#include "cli/command.h"
#include "cli/history_scope.h"
#include "core/error.h"
#include "core/time_util.h"

namespace walvault::cli {

namespace {

struct BackupArgs {
  std::string pg;        // conninfo
  std::string from_tar;  // "-" or a file; empty: replication protocol
  bool local = false;    // read the data directory itself (basebackup/local_backup.h)
  std::string pgdata;    // with --local
  std::string tag;
  std::string checkpoint = "fast";
  int parallel = 2;
  int wal_timeout_s = 60;
  bool progress = false;
  bool full_read = false;  // --local: no map-based incremental
  bool all = false;        // the backup set: the database and every [volume.NAME]
};

basebackup::BackupOptions backup_options(const BackupArgs& args) {
  basebackup::BackupOptions options;
  options.conninfo = args.pg;
  options.tag = args.tag;
  options.parallel = args.parallel;
  options.wal_timeout = std::chrono::milliseconds(std::int64_t{args.wal_timeout_s} * 1000);
  options.progress = args.progress;
  options.full_read = args.full_read;
  if (args.checkpoint == "fast")
    options.checkpoint = pg::CheckpointMode::kFast;
  else if (args.checkpoint == "spread")
    options.checkpoint = pg::CheckpointMode::kSpread;
  else
    throw Error(ErrorCode::kUsage,
                "--checkpoint: '" + args.checkpoint + "' is neither 'fast' nor 'spread'");
  return options;
}

// The backup itself: a tar stream (--from-tar), the data directory
// (--local) or the replication protocol.
basebackup::BackupRecord take_or_ingest(const std::vector<repo::Repository*>& repos,
                                        const BackupArgs& args,
                                        const basebackup::BackupOptions& options) {
  if (args.local) {
    if (!args.from_tar.empty())
      throw Error(ErrorCode::kUsage, "backup: --local and --from-tar exclude each other");
    if (args.pgdata.empty())
      throw Error(ErrorCode::kUsage, "backup --local needs --pgdata (the server's data directory)");
    return basebackup::take_local_backup(repos, args.pgdata, options);
  }
  if (!args.pgdata.empty()) throw Error(ErrorCode::kUsage, "backup: --pgdata is for --local");
  if (args.from_tar.empty()) return basebackup::take_backup(repos, options);
  int fd = 0;
  if (args.from_tar != "-") {
    fd = ::open(args.from_tar.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno("backup --from-tar: opening " + args.from_tar);
  }
  basebackup::BackupRecord r;
  try {
    r = basebackup::ingest_tar(repos, fd, options);
  } catch (...) {
    if (fd > 0) ::close(fd);
    throw;
  }
  if (fd > 0) ::close(fd);
  return r;
}

void describe_in_history(const basebackup::BackupRecord& r, repo::HistoryEntry& entry) {
  entry.detail = "backup " + r.label + ": " + std::to_string(r.file_count) + " files, " +
                 mib(r.logical_bytes) + ", " + mib(r.stored_bytes) + " new";
  entry.bytes = r.stored_bytes;
  entry.extra = {{"label", r.label},
                 {"tag", r.tag},
                 {"file_count", r.file_count},
                 {"logical_bytes", r.logical_bytes},
                 {"stored_bytes", r.stored_bytes}};
}

// The database backup into every repository, and its line on stdout.
basebackup::BackupRecord backup_database(const Context& ctx, const BackupArgs& args) {
  auto opened = ctx.repos.open_all(KeyFallback::kNone);
  std::vector<repo::Repository*> repos;
  for (auto& r : opened) repos.push_back(r.get());
  basebackup::BackupOptions options = backup_options(args);
  repo::HistoryEntry entry = repo::start_history("backup");
  basebackup::BackupRecord r;
  run_recorded(repos, entry, [&] {
    // Shared locks: gc and expire wait until the record is written.
    std::vector<std::unique_ptr<repo::RepoLock>> locks;
    for (repo::Repository* repo : repos)
      locks.push_back(repo::RepoLock::acquire(*repo, repo::LockMode::kShared, "backup",
                                              command_lock_options()));
    options.before_commit = [&locks] {
      for (const auto& lock : locks) lock->check_held();
    };
    r = take_or_ingest(repos, args, options);
    describe_in_history(r, entry);
  });
  if (!r.page_errors.empty())
    std::cout << "backup " << r.label << ": " << r.page_errors.size()
              << " page(s) failed their checksum (warnings above; listed in backup list --json)\n";
  if (r.source == "local" && !r.full_read_reason.empty())
    std::cout << "backup " << r.label << ": read every file whole: " << r.full_read_reason << "\n";
  else if (r.source == "local")
    std::cout << "backup " << r.label << ": map-based incremental from " << r.incremental_from
              << ": read " << mib(r.read_bytes) << " of " << mib(r.logical_bytes) << "\n";
  std::cout << "backup " << r.label << " complete: " << r.file_count << " files, "
            << mib(r.logical_bytes) << ", " << mib(r.stored_bytes) << " new in the repository, "
            << r.new_chunk_count << " of " << r.chunk_count << " chunks new, "
            << static_cast<int>(r.duration_s * 10) / 10.0 << " s; WAL "
            << pg::format_lsn(r.start_lsn) << " .. " << pg::format_lsn(r.stop_lsn)
            << " on timeline " << r.stop_timeline << "\n"
            << std::flush;
  return r;
}

// `backup --all`: the parts of the set the config file describes.
int run_backup_set(const Context& ctx, const BackupArgs& args) {
  if (!args.from_tar.empty())
    throw Error(ErrorCode::kUsage, "backup --all takes the database over --pg, not --from-tar");
  const ScheduleSettings settings = read_schedule_settings(ctx, "backup --all");
  const std::int64_t start_us = now_unix_us();
  std::vector<SetPart> parts;
  if (settings.database)
    parts.push_back({"backup", [&ctx, &args] {
                       const basebackup::BackupRecord r = backup_database(ctx, args);
                       return PartOutcome{r.label, r.label, r.logical_bytes, r.stored_bytes};
                     }});
  for (const ScheduledVolume& v : settings.volumes) {
    FilesBackupArgs files_args;
    files_args.volume = v.name;
    files_args.paths = {v.path};
    files_args.tag = args.tag;
    files_args.start_us = start_us;
    parts.push_back({"files backup --volume " + v.name + " " + v.path, [&ctx, files_args] {
                       const files::SnapshotRecord r = backup_volume(ctx, files_args);
                       return PartOutcome{files::snapshot_id(r), r.label, r.bytes, r.added_bytes};
                     }});
  }
  take_backup_set(ctx, set_label(start_us), args.tag, start_us, parts);
  return 0;
}

int run_backup(const Context& ctx, const BackupArgs& args) {
  if (args.all) return run_backup_set(ctx, args);
  backup_database(ctx, args);
  return 0;
}

int run_backup_list(const Context& ctx, bool json) {
  auto r = ctx.repos.open_first();
  auto backups = basebackup::list_backups(*r);
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& b : backups) {
      auto j = nlohmann::json::parse(basebackup::record_to_json(b));
      j["start_time"] = format_time_us(b.start_time_us);
      j["stop_time"] = format_time_us(b.stop_time_us);
      out.push_back(std::move(j));
    }
    std::cout << out.dump(1) << "\n";
    return 0;
  }
  if (backups.empty()) {
    std::cout << "no backups\n";
    return 0;
  }
  std::printf("%-18s %-12s %-26s %-14s %4s %12s %12s %8s\n", "label", "tag", "stop time (UTC)",
              "stop LSN", "tli", "size", "added", "secs");
  for (const auto& b : backups) {
    std::printf("%-18s %-12s %-26.26s %-14s %4u %12s %12s %8.1f\n", b.label.c_str(),
                b.tag.empty() ? "-" : b.tag.c_str(), format_time_us(b.stop_time_us).c_str(),
                pg::format_lsn(b.stop_lsn).c_str(), b.stop_timeline, mib(b.logical_bytes).c_str(),
                mib(b.stored_bytes).c_str(), b.duration_s);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

CLI::App& register_backup(CLI::App& app, Verbs& verbs, int parallel) {
  CLI::App* backup = app.add_subcommand("backup", "take a base backup; 'backup list' lists them");
  backup->require_subcommand(0, 1);
  auto args = std::make_shared<BackupArgs>();
  args->parallel = parallel;
  args->progress = ::isatty(2) == 1;
  backup
      ->add_option("--pg", args->pg,
                   "libpq connection string of the server (replication connection)")
      ->envname(env_name("pg"));
  backup->add_option("--from-tar", args->from_tar,
                     "ingest a pg_basebackup tar stream ('-' for stdin) instead");
  backup->add_flag("--local", args->local,
                   "read the data directory on this host (--pgdata) between pg_backup_start and "
                   "pg_backup_stop over an SQL connection (--pg), verifying page checksums");
  backup->add_option("--pgdata", args->pgdata, "the server's data directory, with --local");
  backup->add_flag("--full-read", args->full_read,
                   "with --local: read every file whole instead of only the chunks the block "
                   "maps name as changed since the previous backup");
  backup->add_option("--tag", args->tag, "tag for retention policies");
  backup->add_option("--checkpoint", args->checkpoint, "fast or spread")->default_str("fast");
  backup->add_option("--parallel", args->parallel, "worker threads")->check(CLI::Range(1, 64));
  backup
      ->add_option("--wal-timeout", args->wal_timeout_s,
                   "seconds to wait for the WAL that makes the backup consistent")
      ->envname(env_name("wal-timeout"))
      ->check(CLI::Range(1, 86400))
      ->default_str("60");
  backup->add_flag("--all", args->all,
                   "a backup set: the database and a snapshot of every [volume.NAME] of the "
                   "config file, under one label and --tag");
  backup->add_flag("--progress,!--no-progress", args->progress,
                   "progress line on stderr (default: when stderr is a terminal)");
  verbs.push_back({backup, [args](const Context& ctx) { return run_backup(ctx, *args); }});

  CLI::App* list = backup->add_subcommand("list", "list backups");
  auto json = std::make_shared<bool>(false);
  list->add_flag("--json", *json, "machine-readable output");
  verbs.push_back({list, [json](const Context& ctx) { return run_backup_list(ctx, *json); }});
  return *backup;
}

}  // namespace walvault::cli
