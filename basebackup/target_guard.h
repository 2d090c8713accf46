// What a restore checks about its target data directory before it writes
// anything (docs/decisions.md, "Restore into a running cluster"):
//
//  - no live postmaster owns it: `postmaster.pid` names a process that
//    exists (kill(pid, 0) succeeds or fails with EPERM), as `pg_ctl status`
//    and the postmaster's own lock-file check decide. A live process is never
//    second-guessed (a PID in another PID namespace, a container's server, can
//    look like an unrelated process here); /proc only sharpens the message.
//  - with --delta, the directory holds the cluster the backup is of: the
//    system identifier in `global/pg_control` (its first 8 bytes, in every
//    PostgreSQL major) equals the backup's.
//
// Pure reads of the target; nothing here writes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace walvault::basebackup {

// The PID of the live postmaster (or standalone backend) that
// `pgdata/postmaster.pid` names; std::nullopt when there is no such file, it
// names no PID, or that process no longer exists (a stale file). Throws
// Error(kIo) naming the file when it exists but cannot be read.
std::optional<pid_t> live_postmaster(const std::string& pgdata);

// Throws Error(kConflict), one line naming the PID and the directory, when a
// live postmaster owns `pgdata` (live_postmaster).
void refuse_live_postmaster(const std::string& pgdata);

// The database system identifier in `pgdata/global/pg_control`;
// std::nullopt when there is no pg_control (an empty directory, or a delta
// restore interrupted after it removed the old one). Throws
// Error(kInvalidInput) naming the file when it is too short to hold one or
// holds 0, Error(kIo) when it cannot be read.
std::optional<std::uint64_t> control_system_id(const std::string& pgdata);

// For --delta: throws Error(kClusterMismatch) naming both identifiers when
// `pgdata` holds another cluster than `system_id` (the backup's), and
// Error(kConflict) when its pg_control cannot tell which; both say that
// --force overwrites it. Does nothing when `force`.
void refuse_other_cluster(const std::string& pgdata, std::uint64_t system_id, bool force);

}  // namespace walvault::basebackup
