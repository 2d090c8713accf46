#include "cli/backup_cmd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "basebackup/backup_record.h"
#include "basebackup/restore.h"
#include "basebackup/restore_plan.h"
#include "basebackup/take_backup.h"
#include "basebackup/target_guard.h"
#include "cli/history_cmd.h"
#include "core/error.h"
#include "core/time_util.h"

namespace walvault::cli {

namespace {

std::string mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
  return buf;
}

basebackup::RecoveryTarget parse_target(const RestoreArgs& a) {
  basebackup::RecoveryTarget t;
  int given = 0;
  if (!a.target_time.empty()) {
    ++given;
    auto v = parse_time_us(a.target_time);
    if (!v)
      throw Error(ErrorCode::kUsage, "--target-time: '" + a.target_time +
                                         "' is not a time like '2026-11-26 10:00:00+00'");
    t.kind = basebackup::RecoveryTarget::Kind::kTime;
    t.time_us = *v;
  }
  if (!a.target_lsn.empty()) {
    ++given;
    auto v = pg::parse_lsn(a.target_lsn);
    if (!v) throw Error(ErrorCode::kUsage, "--target-lsn: '" + a.target_lsn + "' is not an LSN");
    t.kind = basebackup::RecoveryTarget::Kind::kLsn;
    t.lsn = *v;
  }
  if (!a.target_xid.empty()) {
    ++given;
    char* end = nullptr;
    const unsigned long v = std::strtoul(a.target_xid.c_str(), &end, 10);
    if (*end != '\0' || a.target_xid.empty() || v == 0 || v > 0xFFFFFFFFul)
      throw Error(ErrorCode::kUsage, "--target-xid: '" + a.target_xid + "' is not an xid");
    t.kind = basebackup::RecoveryTarget::Kind::kXid;
    t.xid = static_cast<std::uint32_t>(v);
  }
  if (!a.target_name.empty()) {
    ++given;
    t.kind = basebackup::RecoveryTarget::Kind::kName;
    t.name = a.target_name;
  }
  if (a.target_immediate) {
    ++given;
    t.kind = basebackup::RecoveryTarget::Kind::kImmediate;
  }
  if (given > 1)
    throw Error(ErrorCode::kUsage,
                "give at most one of --target-time, --target-lsn, --target-xid, --target-name, "
                "--target-immediate");
  if (!a.target_timeline.empty() && a.target_timeline != "latest") {
    char* end = nullptr;
    const unsigned long v = std::strtoul(a.target_timeline.c_str(), &end, 10);
    if (*end != '\0' || v == 0 || v > 0xFFFFFFFFul)
      throw Error(ErrorCode::kUsage, "--target-timeline: '" + a.target_timeline +
                                         "' is neither 'latest' nor a timeline number");
    t.timeline = static_cast<pg::TimeLineId>(v);
  }
  return t;
}

// The backup itself: a tar stream (--from-tar) or the replication protocol.
basebackup::BackupRecord take_or_ingest(const std::vector<repo::Repository*>& repos,
                                        const BackupArgs& args,
                                        const basebackup::BackupOptions& options) {
  basebackup::BackupRecord r;
  if (!args.from_tar.empty()) {
    int fd = 0;
    if (args.from_tar != "-") {
      fd = ::open(args.from_tar.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw_errno("backup --from-tar: opening " + args.from_tar);
    }
    try {
      r = basebackup::ingest_tar(repos, fd, options);
    } catch (...) {
      if (fd > 0) ::close(fd);
      throw;
    }
    if (fd > 0) ::close(fd);
  } else {
    r = basebackup::take_backup(repos, options);
  }
  return r;
}

std::vector<std::pair<std::string, std::string>> recovery_settings(
    const basebackup::RecoveryTarget& t, const RestoreArgs& a, pg::TimeLineId timeline,
    int pg_version_num, bool cold_cache) {
  using K = basebackup::RecoveryTarget::Kind;
  std::vector<std::pair<std::string, std::string>> s;
  s.push_back({"restore_command", a.restore_command});
  // The restore already synced every file (syncfs); PostgreSQL 14+ can then
  // skip its own fsync of every file before redo (docs/decisions.md).
  if (pg_version_num >= 140000) s.push_back({"recovery_init_sync_method", "syncfs"});
  // After a direct-I/O restore nothing is cached, and PostgreSQL 15+'s WAL
  // prefetcher reads from disk blocks that full-page images still ahead in
  // the WAL will overwrite (840 MB for 1 GB of pgbench WAL; replay 1.5x
  // slower). docs/decisions.md.
  if (pg_version_num >= 150000 && cold_cache) s.push_back({"recovery_prefetch", "off"});
  switch (t.kind) {
    case K::kEnd:
      break;
    case K::kTime:
      s.push_back({"recovery_target_time", format_time_us(t.time_us)});
      break;
    case K::kLsn:
      s.push_back({"recovery_target_lsn", pg::format_lsn(t.lsn)});
      break;
    case K::kXid:
      s.push_back({"recovery_target_xid", std::to_string(t.xid)});
      break;
    case K::kName:
      s.push_back({"recovery_target_name", t.name});
      break;
    case K::kImmediate:
      s.push_back({"recovery_target", "immediate"});
      break;
  }
  s.push_back(
      {"recovery_target_timeline", t.timeline ? std::to_string(timeline) : std::string("latest")});
  if (t.kind != K::kEnd) s.push_back({"recovery_target_action", a.target_action});
  return s;
}

}  // namespace

std::string describe_target(const basebackup::RecoveryTarget& t) {
  using K = basebackup::RecoveryTarget::Kind;
  switch (t.kind) {
    case K::kEnd:
      return "the end of the archive";
    case K::kTime:
      return "time " + format_time_us(t.time_us);
    case K::kLsn:
      return "LSN " + pg::format_lsn(t.lsn);
    case K::kXid:
      return "transaction " + std::to_string(t.xid);
    case K::kName:
      return "restore point '" + t.name + "'";
    case K::kImmediate:
      return "the end of the backup (immediate)";
  }
  return "?";
}

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789-_./=:%@+,") == std::string::npos)
    return arg;
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

int run_backup(const std::vector<repo::Repository*>& repos, const BackupArgs& args) {
  basebackup::BackupOptions options;
  options.conninfo = args.pg;
  options.tag = args.tag;
  options.parallel = args.parallel;
  options.wal_timeout = std::chrono::milliseconds(std::int64_t{args.wal_timeout_s} * 1000);
  options.progress = args.progress;
  if (args.checkpoint == "fast")
    options.checkpoint = pg::CheckpointMode::kFast;
  else if (args.checkpoint == "spread")
    options.checkpoint = pg::CheckpointMode::kSpread;
  else
    throw Error(ErrorCode::kUsage,
                "--checkpoint: '" + args.checkpoint + "' is neither 'fast' nor 'spread'");
  repo::HistoryEntry entry = repo::start_history("backup");
  basebackup::BackupRecord r;
  try {
    // Shared locks: gc and expire wait until the record is written.
    std::vector<std::unique_ptr<repo::RepoLock>> locks;
    for (repo::Repository* repo : repos)
      locks.push_back(repo::RepoLock::acquire(*repo, repo::LockMode::kShared, "backup",
                                              command_lock_options()));
    options.before_commit = [&locks] {
      for (const auto& lock : locks) lock->check_held();
    };
    r = take_or_ingest(repos, args, options);
  } catch (const std::exception& e) {
    entry.outcome = "failed";
    entry.detail = e.what();
    record_history(repos, entry);
    throw;
  }
  entry.outcome = "ok";
  entry.detail = "backup " + r.label + ": " + std::to_string(r.file_count) + " files, " +
                 mib(r.logical_bytes) + ", " + mib(r.stored_bytes) + " new";
  entry.bytes = r.stored_bytes;
  entry.extra = {{"label", r.label},
                 {"tag", r.tag},
                 {"file_count", r.file_count},
                 {"logical_bytes", r.logical_bytes},
                 {"stored_bytes", r.stored_bytes}};
  record_history(repos, entry);
  std::cout << "backup " << r.label << " complete: " << r.file_count << " files, "
            << mib(r.logical_bytes) << ", " << mib(r.stored_bytes) << " new in the repository, "
            << r.new_chunk_count << " of " << r.chunk_count << " chunks new, "
            << static_cast<int>(r.duration_s * 10) / 10.0 << " s; WAL "
            << pg::format_lsn(r.start_lsn) << " .. " << pg::format_lsn(r.stop_lsn)
            << " on timeline " << r.stop_timeline << "\n";
  return 0;
}

int run_backup_list(repo::Repository& repo, bool json) {
  auto backups = basebackup::list_backups(repo);
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

repo::LockOptions command_lock_options() {
  repo::LockOptions options = repo::default_lock_options();
  options.wait = std::chrono::minutes(10);
  return options;
}

PlannedRestore plan_from_repositories(const std::vector<std::string>& locations,
                                      const RepoOpener& open, const RestoreArgs& a) {
  PlannedRestore out;
  out.target = parse_target(a);
  if (a.target_action != "pause" && a.target_action != "promote" && a.target_action != "shutdown")
    throw Error(ErrorCode::kUsage, "--target-action: '" + a.target_action +
                                       "' is not one of pause, promote, shutdown");
  // The first repository that can reach the target serves the restore; one
  // that cannot be opened or planned from falls back to the next.
  std::optional<Error> first_failure;
  for (const auto& location : locations) {
    try {
      out.lock.reset();  // it refers to the repository replaced next
      out.repo = open(location);
      out.lock = repo::RepoLock::acquire_for_reading(*out.repo, "restore", command_lock_options());
      if (!out.lock)
        std::cerr << "walvault: warning: repository " << location
                  << " does not take a lock (read-only?): restoring without one\n";
      const basebackup::ArchiveView view = basebackup::load_archive_view(*out.repo);
      out.plan = basebackup::plan_restore(
          view, out.target, a.set.empty() ? std::nullopt : std::optional<std::string>(a.set));
      out.location = location;
      return out;
    } catch (const Error& e) {
      const Error named =
          locations.size() > 1 ? Error(e.code(), "repository " + location + ": " + e.what()) : e;
      if (locations.size() > 1) std::cerr << "walvault: warning: " << named.what() << "\n";
      if (!first_failure) first_failure = named;
    }
  }
  if (!first_failure) throw Error(ErrorCode::kUsage, "no repository to restore from");
  throw *first_failure;
}

void require_restore_command_unlocks(const PlannedRestore& p, const RestoreArgs& a) {
  if (!a.secret_only_in_environment || !p.repo->encrypted()) return;
  throw Error(ErrorCode::kUsage,
              "repository " + p.location +
                  " is encrypted and was unlocked by WALVAULT_PASSPHRASE alone, which the "
                  "restored server's restore_command will not have: give --key-file or "
                  "--passphrase-file (or, to restore, --restore-command)");
}

basebackup::RestoreStats restore_planned(PlannedRestore& p, const RestoreArgs& a,
                                         const basebackup::RestoreOptions& options) {
  const auto& b = p.plan.backup;
  const basebackup::BackupFiles files = basebackup::read_files(*p.repo, b.label);
  // The recovery settings go in before pg_control: a restore killed between
  // the two must not leave a directory that starts without them.
  basebackup::RestoreOptions with_settings = options;
  with_settings.before_pg_control = [&](const basebackup::RestoreStats& so_far) {
    auto settings =
        recovery_settings(p.target, a, p.plan.target_timeline, b.pg_version_num, so_far.direct_io);
    settings.insert(settings.end(), a.extra_settings.begin(), a.extra_settings.end());
    basebackup::write_recovery_settings(options.pgdata, settings);
  };
  return basebackup::restore_files(*p.repo, b, files, with_settings);
}

int run_restore(const std::vector<std::string>& locations, const RepoOpener& open,
                const RestoreArgs& a) {
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
  // Never under a running server (also for --dry-run, which tells what a
  // restore would do); checked again once the plan is made, just before writing.
  basebackup::refuse_live_postmaster(options.pgdata);

  // Plan first: nothing is written when the target cannot be reached.
  PlannedRestore planned = plan_from_repositories(locations, open, a);
  const basebackup::RecoveryTarget& target = planned.target;
  const basebackup::RestorePlan& plan = planned.plan;
  const auto& b = plan.backup;
  require_restore_command_unlocks(planned, a);
  basebackup::refuse_live_postmaster(options.pgdata);
  if (a.delta) basebackup::refuse_other_cluster(options.pgdata, b.system_id, a.force);
  std::cout << "target: " << describe_target(target) << " on timeline " << plan.target_timeline
            << "\n"
            << "backup: " << b.label << " (" << mib(b.logical_bytes) << ", consistent at "
            << pg::format_lsn(b.stop_lsn) << ", " << format_time_us(b.stop_time_us) << ")\n"
            << "wal: " << plan.wal_segments.size() << " segments ("
            << (plan.wal_segments.empty()
                    ? std::string("-")
                    : plan.wal_segments.front() + " .. " + plan.wal_segments.back())
            << "), " << mib(plan.wal_bytes) << "\n"
            << "stop: " << plan.stop_reason << "\n"
            << "to fetch: " << mib(b.logical_bytes + plan.wal_bytes) << "\n";
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

}  // namespace walvault::cli
