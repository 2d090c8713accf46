// WAL archiving into an encrypted S3 repository, end to end: a real
// PostgreSQL 15 runs archive_command = walvault archive-push against Ceph RGW;
// every segment it reports archived comes back byte-identical through
// archive-get. Credentials reach walvault only through the environment.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "integration/walvault_cli.h"
#include "s3/s3_test_env.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

TEST(S3Archive, EncryptedArchivingRoundTripsThroughS3) {
  const auto server = store::testing::s3_test_server();
  if (!server) GTEST_SKIP() << "no S3 test server configured (WALVAULT_TEST_S3_*)";
  const std::string bucket = store::testing::make_s3_test_bucket(*server);
  const std::string repo = "s3://" + bucket + "/prod";
  std::map<std::string, std::string> env = {{"AWS_ACCESS_KEY_ID", server->access_key},
                                            {"AWS_SECRET_ACCESS_KEY", server->secret_key},
                                            {"AWS_ENDPOINT_URL", server->endpoint}};
  TempDir work("wv-s3-archive");
  const std::string key = work.sub("repo.key");
  auto with_passphrase = env;
  with_passphrase["WALVAULT_PASSPHRASE"] = "s3 test passphrase";
  auto init = walvault({"--repo", repo, "repo", "init", "--encrypt"}, with_passphrase);
  ASSERT_EQ(init.status, 0) << init.err;
  auto add_key = walvault({"--repo", repo, "repo", "add-key-file", "--out", key}, with_passphrase);
  ASSERT_EQ(add_key.status, 0) << add_key.err;

  PgCluster::Options o;
  o.environment = env;
  o.settings = {
      {"archive_mode", "on"},
      {"archive_command", "'" + walvault_binary_for_server() + " --repo " + repo + " --key-file " +
                              key + " --spool-path " + work.sub("spool") + " archive-push %p'"},
      {"wal_keep_size", "'1GB'"}};
  PgCluster pg(o);
  pg.init();
  pg.start();
  pg.pgbench_init(2);
  pg.sql("select pg_create_restore_point('on_s3')");
  const std::string last = pg.sql("select pg_walfile_name(pg_switch_wal())");
  std::string archived;
  for (int i = 0; i < 600 && archived < last; ++i) {
    archived = pg.sql("select coalesce(last_archived_wal, '') from pg_stat_archiver");
    if (archived < last) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(archived, last) << read_text(pg.log_file());
  EXPECT_EQ(pg.sql("select failed_count from pg_stat_archiver"), "0");

  int checked = 0;
  for (const auto& e : fs::directory_iterator(pg.wal_dir() + "/archive_status")) {
    std::string f = e.path().filename();
    if (f.size() != 29 || !f.ends_with(".done")) continue;
    const std::string seg = f.substr(0, 24), dest = work.sub("got-" + seg);
    auto get = walvault(
        {"--repo", repo, "--key-file", key, "archive-get", "--prefetch", "0", seg, dest}, env);
    ASSERT_EQ(get.status, 0) << seg << ": " << get.err;
    EXPECT_TRUE(read_text(dest) == read_text(pg.wal_dir() + "/" + seg)) << seg;
    ++checked;
  }
  EXPECT_GE(checked, 2);
  auto list = walvault({"--repo", repo, "--key-file", key, "wal", "list"}, env);
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_NE(list.out.find("restore point 'on_s3'"), std::string::npos) << list.out;
  // A missing segment is the quiet end of the archive on S3 too.
  auto miss = walvault({"--repo", repo, "--key-file", key, "archive-get", "--prefetch", "0",
                        "0000000100000000000000FF", work.sub("none")},
                       env);
  EXPECT_EQ(miss.status, 1);
  EXPECT_EQ(miss.err, "");
  // A wrong secret is an authentication error that does not echo the secret.
  auto bad_env = env;
  bad_env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-0000";
  auto denied = walvault({"--repo", repo, "--key-file", key, "wal", "list"}, bad_env);
  EXPECT_EQ(denied.status, 7) << denied.err;
  EXPECT_EQ(denied.err.find("not-the-secret"), std::string::npos) << denied.err;
  pg.stop();
}

}  // namespace
}  // namespace walvault::testing
