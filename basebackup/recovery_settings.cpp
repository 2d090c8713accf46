#include "basebackup/recovery_settings.h"

#include "core/time_util.h"

namespace walvault::basebackup {

RecoverySettings recovery_settings(const RecoveryTarget& t, pg::TimeLineId timeline,
                                   const RecoveryCommand& command, int pg_version_num,
                                   RecoveryPrefetch prefetch) {
  using K = RecoveryTarget::Kind;
  RecoverySettings s;
  s.push_back({"restore_command", command.restore_command});
  // The restore already synced every file (syncfs); PostgreSQL 14+ can then
  // skip its own fsync of every file before redo (docs/decisions.md).
  if (pg_version_num >= 140000) s.push_back({"recovery_init_sync_method", "syncfs"});
  // Chosen from the block maps (warmup.h, recovery_prefetch_choice;
  // docs/decisions.md, "PITR warm-up from block maps").
  if (pg_version_num >= 150000 && prefetch != RecoveryPrefetch::kDefault)
    s.push_back({"recovery_prefetch", prefetch == RecoveryPrefetch::kOn ? "on" : "off"});
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
