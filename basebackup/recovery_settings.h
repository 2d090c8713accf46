// The recovery settings a restored data directory starts with: the lines
// written into postgresql.auto.conf (write_recovery_settings, restore.h) so
// that PostgreSQL replays the archive up to the target. Which settings depend
// on the PostgreSQL version of the backup: see recovery_settings().
//
// Pure function: no I/O.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "basebackup/restore_plan.h"
#include "pg/wal_name.h"

namespace walvault::basebackup {

using RecoverySettings = std::vector<std::pair<std::string, std::string>>;

// What recovery needs besides the target: the command that fetches WAL and
// what the server does once the target is reached.
struct RecoveryCommand {
  std::string restore_command;
  std::string target_action = "pause";  // pause, promote, shutdown (with a target)
};

// What to write as recovery_prefetch (PostgreSQL 15+): nothing (the
// server's default, try), off or on. The restore decides it from the block
// maps (warmup.h, recovery_prefetch_choice).
enum class RecoveryPrefetch { kDefault, kOff, kOn };

// restore_command; recovery_init_sync_method = syncfs from PostgreSQL 14
// (`pg_version_num` >= 140000: the restore already synced every file);
// recovery_prefetch from 15 as `prefetch` says (nothing for kDefault);
// the recovery_target_* line of `target`; recovery_target_timeline (`timeline`
// when the target names one, else latest); recovery_target_action unless the
// target is the end of the archive. In that order (docs/decisions.md).
RecoverySettings recovery_settings(const RecoveryTarget& target, pg::TimeLineId timeline,
                                   const RecoveryCommand& command, int pg_version_num,
                                   RecoveryPrefetch prefetch);

}  // namespace walvault::basebackup
