// `restore --start`: start the restored data directory's server and wait
// until recovery is done, through pg/server_control.h (pg_ctl as we are, with
// a service manager's environment; never as root, which PostgreSQL refuses).
//
// With a recovery target and `promote`, the restore writes
// recovery_target_action = pause and hot_standby = on, and this promotes
// the server with `pg_ctl promote` as soon as it accepts read-only
// connections: PostgreSQL takes the request when replay pauses at the target
// (it is looked at only there and while waiting for WAL as a standby, which a
// restored server is not), and ends recovery with an end-of-recovery record
// instead of a checkpoint, as a promoted standby does. The server accepts
// writes without waiting for that checkpoint, which runs afterwards like any
// other. docs/decisions.md, "restore --start: promoted at the target".
#pragma once

#include <chrono>
#include <string>

namespace walvault::ops {

struct StartRestoredOptions {
  std::string pgdata;    // absolute
  std::string bin_dir;   // pg_ctl of the backup's major
  std::string log_file;  // pg_ctl -l
  // Wait until the server accepts writes (recovery over); else until it
  // accepts connections (read-only while it replays, or paused at the target).
  bool until_writable = true;
  // Send the promotion request once the server accepts connections (the
  // target's pause becomes a promotion; see above).
  bool request_promotion = false;
  std::chrono::seconds timeout{3600};
};

struct StartRestoredReport {
  double accepting_s = 0;  // seconds from the start to the first connection accepted
  double done_s = 0;       // ... to what was waited for
  bool writable = false;   // recovery is over
};

// Throws Error(kUsage) unless `bin_dir` holds pg_ctl and we are not root:
// checked before the restore writes anything.
void check_can_start(const std::string& bin_dir);

// Starts the server and waits as `options` say. Throws Error naming the step:
// "server did not start: <why>", "recovery did not finish: <server's FATAL>",
// "still in recovery at the --start-timeout"; a server that runs on after a
// timeout is left running (it is recovering).
StartRestoredReport start_restored_server(const StartRestoredOptions& options);

}  // namespace walvault::ops
