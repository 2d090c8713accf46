// `walvault drill`: restore a backup into a scratch directory, start it, wait
// for recovery, run the operator's checks, time every step against the
// recovery time objective. run_drill() is the orchestration and returns a
// DrillReport (phases, timings, checks, outcome); the CLI plans and writes the
// restore through DrillSteps (the same planner and writer as `restore`),
// prints the progress lines and records drill_history() in the repository.
//
// The server half is a DrillServer, which proves the restored directory
// through pg/server_control.h: pg_verifybackup before the first start, the
// restore_command tried as the server's user, PostgreSQL started on a Unix
// socket inside the scratch directory (no TCP), every server command with a
// clean environment (pg::server_environment(): a restore_command that needs
// WALVAULT_PASSPHRASE fails), archive recovery waited for until promotion,
// the operator's checks run, the server stopped. Every failure is an Error
// whose message starts with the failing step ("recovery did not finish: WAL
// segment ... missing from the archive"); run_drill turns it into the report's
// failure.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "basebackup/restore.h"
#include "core/error.h"
#include "pg/server_control.h"
#include "repo/history.h"
#include "repo/repository.h"

namespace walvault::ops {

struct DrillCheck {
  std::string sql;     // its first row's first column ...
  std::string expect;  // ... must be exactly this text
};

struct DrillServerOptions {
  std::string scratch;  // absolute; the data directory is <scratch>/data
  std::string bin_dir;  // pg_ctl and pg_verifybackup of the backup's major
  std::string run_as;   // the server's OS user when we are root ("" otherwise)
  std::string db_user;  // role of the checks ("": the server's OS user)
  std::string dbname = "postgres";
  int port = 0;
  // The plan's segments in replay order and whether the archive holds one:
  // a failed recovery names the segment it stopped at when it is missing.
  std::vector<std::string> wal_segments;
  std::function<bool(const std::string& segment)> segment_archived;
  bool request_promotion = false;  // DrillPlan::promote_at_pause
};

struct CheckOutcome {
  int passed = 0;
  int failed = 0;
  std::optional<double> first_query_s;  // when the first SQL check was answered
  std::vector<std::string> lines;       // "check 1 passed: ...", in order
  std::string first_failure;            // "" when all passed
};

// A free TCP port number for the server's socket name (it listens on no TCP).
int drill_port();

class DrillServer {
 public:
  // Throws Error(kUsage) for an unknown run_as user.
  explicit DrillServer(DrillServerOptions options);
  ~DrillServer();  // stops a server still running (fast, then immediate)
  DrillServer(const DrillServer&) = delete;
  DrillServer& operator=(const DrillServer&) = delete;

  const std::string& pgdata() const { return pgdata_; }
  std::string socket_dir() const { return options_.scratch + "/sock"; }
  std::string log_file() const { return options_.scratch + "/server.log"; }
  std::string db_user() const;

  // The postgresql.auto.conf lines the restore appends for this server: the
  // port, the socket directory, its own pg_hba.conf (trust on that socket
  // only), archive_mode off (a drill must never archive into the
  // repository), no streaming, logging to the log file.
  std::vector<std::pair<std::string, std::string>> settings() const;

  // Creates the socket directory and pg_hba.conf and, as root, hands the
  // scratch directory to the server's user.
  void prepare();
  // Runs `restore_command` for `segment` as the server's user into a file in
  // the scratch directory: Error(kIo) "restore_command: ..." when that user
  // cannot run it (binary, repository or key file out of its reach).
  void try_restore_command(const std::string& restore_command, const std::string& segment);
  // pg_verifybackup --no-parse-wal on the data directory. Returns its verdict
  // line, or why it was skipped (no binary, no manifest); Error(kCorruption)
  // "pg_verifybackup: ..." when it finds a problem.
  std::string verify_backup();
  // Starts the server and waits until archive recovery has ended and it was
  // promoted, until `deadline`. Error "server did not start: ..." /
  // "recovery did not finish: ..." (kPostgres, or kNotFound naming a segment
  // missing from the archive).
  void start_and_recover(std::chrono::steady_clock::time_point deadline);
  // Runs the SQL checks (`select 1` when there are none, for the first-query
  // time) and the script (PGHOST, PGPORT, PGDATA, PGUSER, PGDATABASE set; it
  // must exit 0). `t0` is the drill's start, for first_query_s.
  CheckOutcome run_checks(const std::vector<DrillCheck>& checks, const std::string& script,
                          std::chrono::steady_clock::time_point t0);
  // pg_ctl stop -m fast (then immediate); never throws.
  void stop() noexcept;

 private:
  std::string conninfo() const;
  bool alive() const;
  std::string server_log() const;      // "" when there is none yet
  std::string failure_reason() const;  // from the server log
  std::optional<UserIdentity> server_user() const;

  DrillServerOptions options_;
  std::string pgdata_;
  std::optional<UserIdentity> user_;  // switched to as root; none otherwise
  pg::ServerControl control_;
  bool started_ = false;
};

// What the drill restores, decided by the caller's planner; nothing written yet.
struct DrillPlan {
  std::string label;
  std::uint64_t logical_bytes = 0;
  int pg_version_num = 0;  // of the backup: picks the server's binaries
  std::string target;      // described: "the end of the archive", "time ..."
  std::uint32_t target_timeline = 0;
  std::vector<std::string> wal_segments;  // the plan's, in replay order
  // The restore writes recovery_target_action = pause and the server is
  // promoted once it takes connections, so that the pause at the target ends
  // in a promotion without an end-of-recovery checkpoint, as `restore
  // --start` does (ops/start_restored.h). False for the end of the archive.
  bool promote_at_pause = false;
  // The repository that serves the restore (asked whether a segment is
  // archived when recovery stops); the caller keeps it open through run_drill.
  repo::Repository* repo = nullptr;
};

struct DrillOptions {
  std::vector<DrillCheck> checks;
  std::string check_script;  // "" : none
  std::string scratch;       // "" : a fresh mkdtemp under /var/tmp
  std::string pg_bin;        // "" : pg::server_bin_dir's default for the backup's major
  std::string run_as = "postgres";
  std::string db_user;  // "" : the server's OS user
  std::string dbname = "postgres";
  bool keep = false;  // keep the scratch directory (server stopped)
  std::chrono::seconds timeout{30 * 60};
  std::optional<std::chrono::seconds> target_rto;
  std::string restore_command;  // the archive-get call the server runs
};

// The caller's part of a drill. Each step throws Error with the message the
// drill fails with (plan: "restore plan: ..."); run_drill adds "restore: " to
// the restore's.
struct DrillSteps {
  std::function<DrillPlan()> plan;
  // Writes the planned backup into `pgdata` with its recovery settings and
  // then `settings` (DrillServer::settings()).
  std::function<basebackup::RestoreStats(
      const std::string& pgdata, const std::vector<std::pair<std::string, std::string>>& settings)>
      restore;
  // One progress line ("restoring backup ...", "check 1 passed: ..."), as it happens.
  std::function<void(const std::string& line)> progress;
};

struct DrillReport {
  std::optional<DrillPlan> plan;  // once planned
  std::string scratch;            // "" until it was made
  bool scratch_kept = false;
  std::optional<basebackup::RestoreStats> restored;
  std::optional<double> restore_s, recovery_s, total_s;  // since the drill started
  std::optional<std::string> verifybackup;  // pg_verifybackup's verdict or why it was skipped
  std::optional<CheckOutcome> checks;       // once the checks ran
  std::optional<std::chrono::seconds> target_rto;
  std::string failure;  // "" when the drill passed; else "<step>: <why>"
  ErrorCode failure_code = ErrorCode::kInternal;
  std::string summary;  // when passed: "backup L: restore 1.0 s, ..., N checks passed"

  bool passed() const { return failure.empty(); }
};

// Runs a drill: plan, scratch directory, restore, pg_verifybackup, start and
// recovery, checks, stop, then removes the scratch directory (unless keep;
// a failure to remove it is a warning). Never throws for a failing step:
// the report says which failed and why; the caller records and exits.
DrillReport run_drill(const DrillOptions& options, const DrillSteps& steps);

// `started` (repo::start_history("drill") when the drill began) completed from
// `report`: outcome, detail, restored bytes and the timings in `extra`
// (docs/format.md, "History").
repo::HistoryEntry drill_history(const DrillReport& report, repo::HistoryEntry started);

}  // namespace walvault::ops
