// Retention policy (restic `forget` semantics) as pure logic over backup
// records: which backups `walvault expire` keeps, and why. docs/operations.md
// ("Retention") states the rules for operators.
//
// Backups are grouped by tag; each group follows its tag's policy, or the
// default policy for untagged backups and tags without one of their own. A
// group whose policy has no rule at all is kept whole (expire never deletes
// what nobody asked it to). Within a group, newest first:
//   keep-last N      the N newest
//   keep-within D    every backup that started within D of the group's newest
//                    (relative to the newest backup, not to now, so backups
//                    that stopped coming are not all expired one by one)
//   keep-daily N     the newest backup of each of the N newest UTC days that
//   keep-weekly N    have a backup (ISO weeks, calendar months, years alike)
//   keep-monthly N
//   keep-yearly N
// A backup is kept when any rule keeps it. Pinned backups are always kept.
// --pitr-window D keeps, across all tags, the newest backup whose end lies at
// or before now - D (else the oldest backup), so WAL from there on stays and
// any moment of the last D stays restorable.
//
// File-volume snapshots (files/snapshot_record.h) follow the same rules by
// the same code, grouped by volume and tag (SnapshotRetentionRules says whose
// policy a group follows); they have no pins and no PITR window. Either way
// a group's newest member is kept by any rule (keep-within measures from it),
// so expire never removes the newest backup of a tag or the newest snapshot
// of a volume and tag.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "basebackup/backup_record.h"
#include "dump/dump_record.h"
#include "files/snapshot_record.h"

namespace walvault::ops {

struct RetentionPolicy {
  int keep_last = 0;
  int keep_daily = 0;
  int keep_weekly = 0;
  int keep_monthly = 0;
  int keep_yearly = 0;
  std::optional<std::chrono::seconds> keep_within;

  bool empty() const;
  // "keep-last 3, keep-daily 7, keep-within 30d"; "no rules" when empty.
  std::string describe() const;
};

struct RetentionRules {
  RetentionPolicy default_policy;
  std::map<std::string, RetentionPolicy> tags;  // tag -> its own policy
  std::optional<std::chrono::seconds> pitr_window;

  const RetentionPolicy& policy_for(const std::string& tag) const;
  // True when no policy has any rule and there is no PITR window.
  bool empty() const;
};

// The policies of file-volume snapshots: the snapshots of volume V tagged T
// follow volume_tags[{V, T}], else volumes[V], else all_volumes. Presence
// counts, not content: a volume whose own policy has no rule is kept whole
// even when all_volumes has rules. With no policy at all (the default) every
// snapshot is kept.
struct SnapshotRetentionRules {
  RetentionPolicy all_volumes;
  std::map<std::string, RetentionPolicy> volumes;
  std::map<std::pair<std::string, std::string>, RetentionPolicy> volume_tags;

  const RetentionPolicy& policy_for(const std::string& volume, const std::string& tag) const;
  // True when no policy has any rule.
  bool empty() const;
};

struct RetentionDecision {
  std::string volume;  // a snapshot's volume; "" for a backup
  std::string label;
  std::string tag;
  std::int64_t time_us = 0;  // the backup's or snapshot's start time
  bool keep = false;
  std::vector<std::string> reasons;  // why kept ("keep-daily 2026-11-26", "pinned"), or why not
};

// One decision per backup, in the order of `backups`. `pinned` holds labels.
std::vector<RetentionDecision> plan_retention(const std::vector<basebackup::BackupRecord>& backups,
                                              const std::set<std::string>& pinned,
                                              const RetentionRules& rules, std::int64_t now_us);

// One decision per snapshot, in the order of `snapshots`.
std::vector<RetentionDecision> plan_snapshot_retention(
    const std::vector<files::SnapshotRecord>& snapshots, const SnapshotRetentionRules& rules);

// Logical dumps follow the same kind of rules grouped by database and tag
// ([dump-retention] sections: `volumes` then holds databases). One decision
// per dump, in the order of `dumps`; a decision's `volume` is the database.
std::vector<RetentionDecision> plan_dump_retention(const std::vector<dump::DumpRecord>& dumps,
                                                   const SnapshotRetentionRules& rules);

// Sets one rule from its name ("keep-last", "keep-daily", …, "keep-within")
// and text value. Throws Error(kUsage) naming `where` on a bad name or value.
void set_retention_rule(RetentionPolicy& policy, const std::string& name, const std::string& value,
                        const std::string& where);

}  // namespace walvault::ops
