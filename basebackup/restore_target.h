// The recovery target of a restore or a drill, from the command line's text
// (--target-time, --target-lsn, --target-xid, --target-name,
// --target-immediate, --target-timeline, --target-action) to a
// RecoveryTarget (restore_plan.h), and back to words for the plan it prints.
//
// Pure functions: no I/O. Every refusal is Error(kUsage) naming the option
// and the value at fault.
#pragma once

#include <string>

#include "basebackup/restore_plan.h"

namespace walvault::basebackup {

// The target options as given; empty strings (and `immediate` false) are
// options not given.
struct TargetText {
  std::string time;  // '2026-11-26 10:00:00+00'
  std::string lsn;   // '0/3000028'
  std::string xid;   // a transaction id, 1 .. 2^32-1
  std::string name;  // a restore point
  bool immediate = false;
  std::string timeline;  // "", "latest" or a timeline number
};

// The target `text` names: at most one of time, lsn, xid, name, immediate
// (none: the end of the archive), on `timeline` ("" and "latest": the newest).
// Throws Error(kUsage) for two kinds at once or a value that does not parse.
RecoveryTarget parse_target(const TargetText& text);

// Throws Error(kUsage) unless `action` is pause, promote or shutdown.
void check_target_action(const std::string& action);

// "time 2026-11-26 10:00:00.000000+00", "the end of the archive", ...
std::string describe_target(const RecoveryTarget& target);

}  // namespace walvault::basebackup
