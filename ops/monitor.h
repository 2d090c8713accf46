// Monitoring: `walvault check` (one line, monitoring-plugin exit statuses)
// and `walvault metrics` (Prometheus text exposition).
//
// check: OK (0) / WARNING (1) / CRITICAL (2), the worst finding wins:
//  - no backup: CRITICAL; newest backup older than max_backup_age: WARNING,
//    older than twice that: CRITICAL;
//  - no archived WAL: CRITICAL; newest segment archived longer ago than
//    max_wal_age: WARNING, twice that: CRITICAL; either age limit unset: that
//    check is left out (a repository of file volumes only);
//  - a local repository's file system more than disk_warn_percent full: WARNING;
//  - file-volume snapshots, per volume: the newest one ended longer ago than
//    the volume's limit: WARNING, twice that: CRITICAL; files it could not
//    read: WARNING; a volume given a limit of its own without any snapshot:
//    CRITICAL. A repository without snapshots has no snapshot findings;
//  - logical dumps, per database, the same way (max_dump_age,
//    database_dump_age): the newest dump older than its limit: WARNING,
//    twice that: CRITICAL; a database given a limit of its own without any
//    dump: CRITICAL. A repository without dumps has no dump findings;
//  - with a server (`pg`): forces a WAL switch and waits (archive_timeout) for
//    the switched segment to arrive in the repository, proving
//    archive_command end to end (CRITICAL when it does not); pg_stat_archiver
//    failing since its last success: WARNING; segments waiting to be archived
//    (.ready files, pg_ls_archive_statusdir: needs pg_monitor) whose oldest
//    waited longer than max_wal_age: WARNING, twice that: CRITICAL.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "repo/repository.h"

namespace walvault::ops {

struct CheckOptions {
  // std::nullopt: not checked (a repository that holds only file volumes).
  std::optional<std::chrono::seconds> max_backup_age{std::chrono::hours(26)};
  std::optional<std::chrono::seconds> max_wal_age{std::chrono::minutes(15)};
  std::string pg;  // libpq connection string; empty: no server check
  std::chrono::seconds archive_timeout{60};
  int disk_warn_percent = 80;
  // Every volume's snapshot age limit, unless volume_snapshot_age has the
  // volume: its own limit, or std::nullopt for a volume not checked.
  std::chrono::seconds max_snapshot_age{26 * 3600};
  std::map<std::string, std::optional<std::chrono::seconds>> volume_snapshot_age;
  // The same for logical dumps, by database.
  std::chrono::seconds max_dump_age{26 * 3600};
  std::map<std::string, std::optional<std::chrono::seconds>> database_dump_age;
};

// Applies one --max-snapshot-age value: "DURATION" (every volume),
// "VOLUME=DURATION" (that volume) or "VOLUME=off" (that volume not checked).
// Throws Error(kUsage) naming --max-snapshot-age and the bad part.
void set_snapshot_age_limit(CheckOptions& options, const std::string& value);
// The same for --max-dump-age: "DURATION", "DATABASE=DURATION", "DATABASE=off".
void set_dump_age_limit(CheckOptions& options, const std::string& value);

enum class CheckStatus { kOk = 0, kWarning = 1, kCritical = 2 };

struct CheckFinding {
  CheckStatus status = CheckStatus::kOk;
  std::string text;  // "last backup 3m ago (20261206T020000Z)"
};

struct CheckResult {
  CheckStatus status = CheckStatus::kOk;  // the worst finding's
  std::string line;                       // "WALVAULT OK - ...", one line
  std::vector<CheckFinding> findings;     // in the line's order
};

// `check --json`: {"status": "OK"|"WARNING"|"CRITICAL", "exit_status": 0|1|2,
// "findings": [{"status": ..., "text": ...}, ...]}, one line.
std::string check_json(const CheckResult& result);

// Never throws for what it checks: a repository that cannot be read is a
// CRITICAL result naming the reason.
CheckResult run_check(repo::Repository& repo, const CheckOptions& options);

// Prometheus text exposition (version 0.0.4) of the repository's state:
// backups, last backup time/size/duration, last archived WAL time and lag,
// latest commit time, repository bytes, dedup ratio, disk free; per volume
// (label volume="..."): snapshots, and the newest one's end time, age,
// duration, bytes, added bytes and unreadable entries.
std::string metrics_text(repo::Repository& repo);

}  // namespace walvault::ops
