// Helpers for driving the real walvault binary from integration tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/pg_cluster.h"

namespace walvault::testing {

// a followed by b (argument lists).
inline std::vector<std::string> concat(std::vector<std::string> a,
                                       const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Runs `walvault <args>` as the test user (the same user PostgreSQL's
// archive_command runs as, so files it creates stay writable for the server).
inline CommandResult walvault(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv = {walvault_binary_for_server()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> full_env = {{"WALVAULT_CONFIG", "/dev/null"}};
  for (const auto& [k, v] : env) full_env[k] = v;
  return run(argv, full_env, AsUser::kTestUser);
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Number of lines in `s` (a trailing newline does not start a new line).
inline int line_count(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  if (!s.empty() && s.back() != '\n') ++n;
  return n;
}

// The global flags that address a repository: location, spool and, when
// encrypted, the key file.
inline std::vector<std::string> repo_flags(const std::string& repo, const std::string& spool,
                                           const std::string& key_file = "") {
  std::vector<std::string> a = {"--repo", repo, "--spool-path", spool};
  if (!key_file.empty()) a.insert(a.end(), {"--key-file", key_file});
  return a;
}

// archive_command (quoted for postgresql.conf) pushing into the repository
// that `flags` address.
inline std::string archive_push_command(const std::vector<std::string>& flags, int parallel) {
  std::string cmd = walvault_binary_for_server();
  for (const auto& a : flags) cmd += " " + a;  // temp paths: no spaces
  return "'" + cmd + " archive-push --parallel " + std::to_string(parallel) + " %p'";
}

// A started server of `major` archiving with `archive_command`, keeping its
// WAL and never checkpointing on its own during a test; `initdb_args` go to
// initdb (e.g. --data-checksums).
inline std::unique_ptr<PgCluster> start_archiving_cluster(
    const std::string& archive_command, int major = 15, std::vector<std::string> initdb_args = {}) {
  PgCluster::Options o;
  o.major = major;
  o.initdb_args = std::move(initdb_args);
  o.settings = {{"archive_mode", "on"},
                {"archive_command", archive_command},
                {"wal_keep_size", "'4GB'"},
                {"max_wal_size", "'4GB'"},
                {"checkpoint_timeout", "'1h'"}};
  auto pg = std::make_unique<PgCluster>(o);
  pg->init();
  pg->start();
  return pg;
}

// Switches WAL and waits until the server reports that segment archived.
inline std::string switch_and_wait(PgCluster& pg) {
  std::string seg = pg.sql("select pg_walfile_name(pg_switch_wal())");
  for (int i = 0; i < 600; ++i) {
    std::string last = pg.sql("select coalesce(last_archived_wal, '') from pg_stat_archiver");
    if (!last.empty() && last >= seg) return seg;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "segment " << seg << " was not archived in time; failures: "
                << pg.sql(
                       "select failed_count || ' ' || coalesce(last_failed_wal, '') from "
                       "pg_stat_archiver");
  return seg;
}

// Waits until a server in archive recovery has finished it (promoted).
// False when it is still in recovery after `timeout`.
inline bool wait_for_promotion(PgCluster& pg,
                               std::chrono::seconds timeout = std::chrono::seconds(120)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pg.sql("select pg_is_in_recovery()") == "f") return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// libpq connection string of a test server (walvault backup --pg).
inline std::string conninfo(const PgCluster& pg) {
  return "host=" + pg.socket_dir() + " port=" + std::to_string(pg.port()) + " user=postgres";
}

// Marker rows, moments and restored servers: the PITR scenarios.

// The server's clock (plus `offset`, an SQL interval) in the form
// recovery_target_time and walvault take: UTC with microseconds.
inline std::string server_time(PgCluster& pg, const std::string& offset = "0 s") {
  return pg.sql("select to_char((clock_timestamp() + interval '" + offset +
                "') at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
}

inline void create_marker_table(PgCluster& pg) {
  pg.sql(
      "create table marker(id int primary key, "
      "committed_at timestamptz not null default clock_timestamp())");
}

inline void insert_marker(PgCluster& pg, int id) {
  pg.sql("insert into marker(id) values (" + std::to_string(id) + ")");
}

// A moment after the last commit and half a second before the next one.
inline std::string moment_between_commits(PgCluster& pg) {
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::string t = server_time(pg);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  return t;
}

inline std::string marker_ids(PgCluster& pg) {
  return pg.sql("select coalesce(string_agg(id::text, ',' order by id), '') from marker");
}

// The first capture of `pattern` in `text`, "" when it does not match.
inline std::string capture(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) return "";
  return m[1];
}

// "backup <label> complete: ..." -> label
inline std::string backup_label_of(const std::string& out) {
  return capture(out, "backup (\\S+) complete:");
}

// Starts a restored data directory on a free port and waits until recovery
// has reached its target and promoted. `extra_conf` goes into
// postgresql.auto.conf; by default it stops the restored copy from archiving
// into the repository with the original's archive_command. The server starts
// with a clean environment (PATH alone), as operators start one: the
// restore_command that restore wrote must work as written.
inline std::unique_ptr<PgCluster> start_restored(
    const std::string& pgdata, int major = 15,
    const std::string& extra_conf = "archive_mode = off\n") {
  PgCluster::Options o;
  o.major = major;
  o.clean_environment = true;
  auto pg = std::make_unique<PgCluster>(o);
  pg->adopt(pgdata);
  std::ofstream(pgdata + "/postgresql.auto.conf", std::ios::app) << extra_conf;
  pg->start();
  EXPECT_TRUE(wait_for_promotion(*pg)) << read_text(pg->log_file());
  return pg;
}

// A repository in a temp directory that a started PostgreSQL 15 archives
// into, with the marker table created.
struct ArchivingRepo {
  explicit ArchivingRepo(const std::string& tag)
      : work(tag), repo(work.sub("repo")), flags(repo_flags(repo, work.sub("spool"))) {
    EXPECT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
    pg = start_archiving_cluster(archive_push_command(flags, 2));
    create_marker_table(*pg);
  }
  // Takes a backup of the server: its label ("" and a test failure when it fails).
  std::string backup() {
    auto b = walvault(concat(flags, {"backup", "--pg", conninfo(*pg)}));
    EXPECT_EQ(b.status, 0) << b.err;
    return backup_label_of(b.out);
  }
  TempDir work;
  std::string repo;
  std::vector<std::string> flags;
  std::unique_ptr<PgCluster> pg;
};

}  // namespace walvault::testing
