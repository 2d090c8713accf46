// `walvault expire`: applies the retention rules (ops/retention.h) under the
// repository's exclusive lock. A backup goes record first (it stops being
// listed), then its file list and pin; its chunks stay until `gc`. WAL goes
// when no retained backup needs it: every segment (and .partial and .backup
// file) whose segment number is below the retained backups' smallest start
// segment, on every timeline; .history files always stay. With no backup
// retained no WAL is removed. Without backup rules (only snapshot rules
// given) no backup and no WAL is touched.
//
// File-volume snapshots follow ExpireOptions::snapshot_rules: an expired
// snapshot goes with its record (snapshots/<volume>/<label>); its trees and
// chunks stay until `gc`, which keeps whatever a remaining snapshot or
// backup still reaches. Without snapshot rules every snapshot stays.
//
// Logical dumps follow ExpireOptions::dump_rules likewise (grouped by
// database and tag): an expired dump goes with its record
// (dumps/<database>/<label>), its chunks stay until `gc`. Without dump rules
// every dump stays.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ops/retention.h"
#include "repo/lock.h"
#include "repo/repository.h"

namespace walvault::ops {

struct ExpireOptions {
  RetentionRules rules;                   // database backups (and WAL)
  SnapshotRetentionRules snapshot_rules;  // file-volume snapshots
  SnapshotRetentionRules dump_rules;      // logical dumps, by database
  bool dry_run = false;
  std::int64_t now_us = 0;  // 0: the clock
};

struct ExpireReport {
  bool dry_run = false;
  bool backups_considered = false;           // false: no backup rules, backups and WAL untouched
  std::vector<RetentionDecision> decisions;  // one per backup, oldest first
  std::vector<std::string> removed;          // labels of the expired backups
  std::optional<std::string> wal_kept_from;  // the first segment kept (on the oldest timeline)
  std::uint64_t wal_files_removed = 0;
  std::uint64_t wal_bytes_removed = 0;
  bool snapshots_considered = false;                  // false: no snapshot rules, all kept
  std::vector<RetentionDecision> snapshot_decisions;  // one per snapshot, oldest first
  std::vector<std::string> snapshots_removed;         // "<volume>/<label>" of the expired ones
  bool dumps_considered = false;                      // false: no dump rules, all kept
  std::vector<RetentionDecision> dump_decisions;      // one per dump, oldest first
  std::vector<std::string> dumps_removed;             // "<database>/<label>" of the expired ones
};

// `lock` (the exclusive lock) is checked before anything is removed.
// Throws Error(kUsage) when every kind of rules is empty (nothing says what
// to keep).
ExpireReport expire_backups(repo::Repository& repo, const ExpireOptions& options,
                            const repo::RepoLock* lock);

std::string expire_report_text(const ExpireReport& report);
std::string expire_report_json(const ExpireReport& report);

}  // namespace walvault::ops
