// Controlling a PostgreSQL server from outside, as the drill does with the
// scratch server it restores and `restore --start` with the restored one:
// where a major's programs live, the command lines of pg_ctl and
// pg_verifybackup, running them as the server's user with the environment a
// service manager gives a server, whether the postmaster lives, whether
// pg_control says recovery is over, and what the server log says about a
// failed start or recovery.
//
// The argv builders and log readers are pure (tests/unit/pg); ServerControl
// runs programs through core/process.h and owns nothing but its settings.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/process.h"

namespace walvault::pg {

// The directory holding pg_ctl and pg_verifybackup for a server of
// `pg_version_num` (150004 is 15.4): `given` when it is not empty (the
// operator's --pg-bin), else Debian's /usr/lib/postgresql/<major>/bin.
std::string server_bin_dir(int pg_version_num, const std::string& given);

enum class StopMode { kFast, kImmediate };

// pg_ctl start, waiting up to `wait_s` seconds, logging to `log_file`.
std::vector<std::string> pg_ctl_start_argv(const std::string& bin_dir, const std::string& pgdata,
                                           const std::string& log_file, long long wait_s);
// pg_ctl stop: fast waits up to 60 s; immediate waits as long as pg_ctl's default.
std::vector<std::string> pg_ctl_stop_argv(const std::string& bin_dir, const std::string& pgdata,
                                          StopMode mode);
// pg_ctl promote without waiting (-W): the request is left for the startup
// process, which takes it when recovery pauses at its target (start_restored.h).
std::vector<std::string> pg_ctl_promote_argv(const std::string& bin_dir, const std::string& pgdata);
// pg_verifybackup of a restored data directory against its backup_manifest;
// WAL is not parsed (the restored directory has none of its own).
std::vector<std::string> verifybackup_argv(const std::string& bin_dir, const std::string& pgdata);

// A restore_command with PostgreSQL's placeholders replaced: %f by `segment`,
// %p by `path`, %% by %; any other %x (and a trailing %) is kept as it is.
std::string expand_restore_command(const std::string& restore_command, const std::string& segment,
                                   const std::string& path);

// The text after "FATAL:" / "PANIC:" (leading blanks removed) of the last such
// line of a server log; "" when there is none.
std::string last_fatal(const std::string& log);
// The segment of the last `restored log file "..." from archive` line; "" when none.
std::string last_restored_segment(const std::string& log);

// The environment of a server and of its restore_command: PATH as a service
// manager gives a server, so that a restore_command which works only with
// this process's variables (WALVAULT_PASSPHRASE) fails as it would fail the
// restored server. The AWS_* variables are passed on: an S3 repository's
// credentials reach a server through its environment by design
// (store/s3/s3_settings.h), so the operator gives them to the real server too.
ChildEnvironment server_environment();

// Whether the postmaster of `pgdata` (postmaster.pid) is running.
bool postmaster_alive(const std::string& pgdata);

// The cluster state that global/pg_control records (ControlFileData.state,
// the int32 after the system identifier and two version numbers; the same
// numbering in every supported major): kInProduction once recovery is over
// and the server writes WAL. A restored pg_control says what the backup's
// source said until the startup process rewrites it at the start of redo.
enum class ClusterState { kUnknown, kInArchiveRecovery, kInProduction, kOther };
// The state of pg_control's first bytes (kUnknown when fewer than 20).
ClusterState parse_cluster_state(ByteView control_file);
ClusterState cluster_state(const std::string& pgdata);

// Runs a server's programs as its OS user, in a directory of that user's.
class ServerControl {
 public:
  // `user`: switch to it (we are root); none: run as we are.
  ServerControl(std::string bin_dir, std::string pgdata, std::optional<UserIdentity> user,
                std::string cwd);

  const std::string& bin_dir() const { return bin_dir_; }
  // <bin_dir>/<name>, and whether it is an executable there.
  std::string program(const std::string& name) const { return bin_dir_ + "/" + name; }
  bool has_program(const std::string& name) const;

  // Runs argv as the server's user with server_environment(). Throws only as run_program.
  ProgramResult run(const std::vector<std::string>& argv) const;
  ProgramResult start(const std::string& log_file, long long wait_s) const;
  ProgramResult stop(StopMode mode) const;
  ProgramResult promote() const;  // pg_ctl promote -W
  ProgramResult verify_backup() const;

 private:
  std::string bin_dir_;
  std::string pgdata_;
  std::optional<UserIdentity> user_;
  std::string cwd_;
};

}  // namespace walvault::pg
