#include "basebackup/recovery_settings.h"

#include "core/time_util.h"

namespace walvault::basebackup {

RecoverySettings recovery_settings(const RecoveryTarget& t, pg::TimeLineId timeline,
                                   const RecoveryCommand& command, int pg_version_num,
                                   bool cold_cache) {
  using K = RecoveryTarget::Kind;
  RecoverySettings s;
  s.push_back({"restore_command", command.restore_command});
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
  if (t.kind != K::kEnd) s.push_back({"recovery_target_action", command.target_action});
  return s;
}

}  // namespace walvault::basebackup
