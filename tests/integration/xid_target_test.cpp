// restore --target-xid end to end (issue 13): a real PostgreSQL 15 archives
// through walvault, two backups are taken, and each xid target either
// restores a server holding exactly the rows committed up to that
// transaction's end, or is refused with exit 4 and nothing written.
//
// Before the xid index the planner chose the newest backup for any xid, so a
// transaction that committed between the two backups was replayed past
// ("recovery ended before configured recovery target was reached"), and xids
// that commit before every backup, never end or never existed were promised
// too.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// psql with one -c per statement: one session, each statement its own
// transaction unless the list opens one. Quiet, unaligned: only rows print.
CommandResult psql_session(const PgCluster& pg, const std::vector<std::string>& statements) {
  std::vector<std::string> argv = {pg_client_bin_dir() + "/psql",
                                   "-XAtq",
                                   "-v",
                                   "ON_ERROR_STOP=1",
                                   "-h",
                                   pg.socket_dir(),
                                   "-p",
                                   std::to_string(pg.port()),
                                   "-U",
                                   "postgres"};
  for (const auto& s : statements) argv.insert(argv.end(), {"-c", s});
  return run(argv, {{"PGCONNECT_TIMEOUT", "30"}});
}

// Commits marker `id` in its own transaction; returns that transaction's xid.
std::string commit_marker(PgCluster& pg, int id) {
  return pg.sql("insert into marker(id) values (" + std::to_string(id) +
                ") returning pg_current_xact_id()");
}

// Inserts marker `id` and rolls back: an ABORT record. Returns the xid.
std::string abort_marker(PgCluster& pg, int id) {
  auto r = psql_session(pg, {"begin", "insert into marker(id) values (" + std::to_string(id) + ")",
                             "select pg_current_xact_id()", "rollback"});
  EXPECT_EQ(r.status, 0) << r.err;
  std::string xid = r.out;
  while (!xid.empty() && xid.back() == '\n') xid.pop_back();
  return xid;
}

class XidTargetTest : public ::testing::Test {
 protected:
  struct History {
    ArchivingRepo repo{"wv-xid"};
    std::string b1, b2;
    std::string x_before, x_between, x_after, x_aborted, x_open;
    std::thread open_session;  // holds x_open open until the suite ends
    std::string setup_error;

    ~History() {
      if (open_session.joinable()) {
        try {
          repo.pg->sql(
              "select pg_terminate_backend(pid) from pg_stat_activity "
              "where query like '%pg_sleep(600)%' and pid <> pg_backend_pid()");
        } catch (const std::exception&) {
          // The server is gone, and the session with it.
        }
        open_session.join();
      }
    }
  };

  static void SetUpTestSuite() {
    history = std::make_unique<History>();
    try {
      build(*history);
    } catch (const std::exception& e) {
      history->setup_error = e.what();
    }
  }
  static void TearDownTestSuite() { history.reset(); }

  void SetUp() override {
    ASSERT_TRUE(history->setup_error.empty()) << history->setup_error;
    ASSERT_FALSE(history->b1.empty() || history->b2.empty()) << "the suite's backups failed";
  }

  static void build(History& h) {
    PgCluster& pg = *h.repo.pg;
    h.x_before = commit_marker(pg, 1);
    h.b1 = h.repo.backup();
    h.x_between = commit_marker(pg, 2);  // the reproduction: between the two backups
    h.b2 = h.repo.backup();
    commit_marker(pg, 3);
    h.x_after = commit_marker(pg, 4);
    commit_marker(pg, 5);
    h.x_aborted = abort_marker(pg, 99);
    commit_marker(pg, 6);
    // A transaction that holds an xid and stays open past the last archived
    // segment.
    const PgCluster* server = &pg;
    h.open_session = std::thread([server] {
      psql_session(*server,
                   {"begin", "insert into marker(id) values (100)", "select pg_sleep(600)"});
    });
    for (int i = 0; i < 300 && h.x_open.empty(); ++i) {
      std::this_thread::sleep_for(100ms);
      h.x_open = pg.sql(
          "select backend_xid from pg_stat_activity "
          "where backend_xid is not null and query like '%pg_sleep(600)%' "
          "and pid <> pg_backend_pid()");
    }
    if (h.x_open.empty()) throw std::runtime_error("the open transaction did not show its xid");
    commit_marker(pg, 7);
    switch_and_wait(pg);
  }

  static CommandResult restore(const std::string& dir, const std::string& xid,
                               const std::vector<std::string>& extra = {}) {
    return walvault(concat(concat(history->repo.flags, {"restore", "--pgdata", dir, "--target-xid",
                                                        xid, "--target-action", "promote"}),
                           extra));
  }

  static std::unique_ptr<History> history;
  TempDir work_{"wv-xid-restore"};
};

std::unique_ptr<XidTargetTest::History> XidTargetTest::history;

TEST_F(XidTargetTest, RestoresToTheCommitOrAbortFromTheNewestBackupBeforeIt) {
  const History& h = *history;
  struct Case {
    std::string name, xid, backup, verb, rows;
  };
  const Case cases[] = {
      // Committed after backup 1 ended, before backup 2: backup 2 cannot reach it.
      {"between", h.x_between, h.b1, "commits", "1,2"},
      {"after", h.x_after, h.b2, "commits", "1,2,3,4"},
      // PostgreSQL stops at the abort too; the aborted row never appears.
      {"aborted", h.x_aborted, h.b2, "aborts", "1,2,3,4,5"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + " xid " + c.xid);
    const std::string dir = work_.sub(c.name);
    auto r = restore(dir, c.xid);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(capture(r.out, "\nbackup: (\\S+) "), c.backup) << r.out;
    // The plan names the segment holding the commit/abort record.
    EXPECT_TRUE(std::regex_search(
        r.out, std::regex("\nstop: xid " + c.xid + " " + c.verb + " in [0-9A-F]{24}\n")))
        << r.out;
    auto pg = start_restored(dir);
    EXPECT_EQ(marker_ids(*pg), c.rows);
  }
}

TEST_F(XidTargetTest, XidsThatCannotBeReachedAreRefusedAndNothingIsWritten) {
  const History& h = *history;
  struct Case {
    std::string name, xid, why;
  };
  const Case cases[] = {
      {"before", h.x_before, "not after the end of any backup"},
      {"open", h.x_open, "does not commit or abort in the archive"},
      {"never assigned", "4000000000", "does not commit or abort in the archive"},
  };
  const std::string absent = work_.sub("absent"), empty = work_.sub("empty");
  fs::create_directory(empty);
  give_to_test_user(empty);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + " xid " + c.xid);
    for (const auto& dir : {absent, empty}) {
      auto r = restore(dir, c.xid);
      EXPECT_EQ(r.status, 4) << r.out << r.err;
      EXPECT_EQ(line_count(r.err), 1) << r.err;
      EXPECT_TRUE(r.err.starts_with("walvault: error: xid " + c.xid + " ")) << r.err;
      EXPECT_NE(r.err.find(c.why), std::string::npos) << r.err;
    }
    EXPECT_FALSE(fs::exists(absent));
    EXPECT_TRUE(fs::is_empty(empty));
  }
}

}  // namespace
}  // namespace walvault::testing
