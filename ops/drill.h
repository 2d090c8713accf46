// `walvault drill`: the server half of a restore drill. The CLI restores a
// backup into a scratch directory (the same planner and writer as `restore`);
// a DrillServer then proves that directory: pg_verifybackup before the first
// start, the restore_command tried as the server's user, PostgreSQL started
// on a Unix socket inside the scratch directory (no TCP), every server
// command with a clean environment (PATH and the S3 store's AWS_* variables,
// as a service manager starts a server: a restore_command that needs
// WALVAULT_PASSPHRASE fails), archive recovery
// waited for until promotion, the operator's checks run, the server stopped.
// Every failure is an Error whose message starts with the failing step
// ("recovery did not finish: WAL segment ... missing from the archive").
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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
  std::string failure_reason() const;  // from the server log
  int run_as_server(const std::vector<std::string>& argv, std::string* output) const;

  DrillServerOptions options_;
  std::string pgdata_;
  bool as_root_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  bool started_ = false;
};

}  // namespace walvault::ops
