// Base backup and point-in-time restore from an encrypted S3 repository, then
// expire + gc there and a restore of what is left, end
// to end: PostgreSQL 15 archives into Ceph RGW, `walvault backup` streams
// BASE_BACKUP into the same repository, and `walvault restore --target-time`
// rebuilds the cluster from S3 (chunks by ranged GETs, WAL by archive-get)
// with exactly the rows committed before the target.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "integration/walvault_cli.h"
#include "s3/s3_test_env.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

TEST(S3Backup, EncryptedBackupAndPitrRestoreFromS3) {
  const auto server = store::testing::s3_test_server();
  if (!server) GTEST_SKIP() << "no S3 test server configured (WALVAULT_TEST_S3_*)";
  const std::string bucket = store::testing::make_s3_test_bucket(*server);
  const std::string s3_repo = "s3://" + bucket + "/prod";
  std::map<std::string, std::string> env = {{"AWS_ACCESS_KEY_ID", server->access_key},
                                            {"AWS_SECRET_ACCESS_KEY", server->secret_key},
                                            {"AWS_ENDPOINT_URL", server->endpoint}};
  TempDir work("wv-s3-backup");
  const std::string key = work.sub("repo.key");
  auto with_passphrase = env;
  with_passphrase["WALVAULT_PASSPHRASE"] = "s3 backup passphrase";
  auto init = walvault({"--repo", s3_repo, "repo", "init", "--encrypt"}, with_passphrase);
  ASSERT_EQ(init.status, 0) << init.err;
  auto add_key =
      walvault({"--repo", s3_repo, "repo", "add-key-file", "--out", key}, with_passphrase);
  ASSERT_EQ(add_key.status, 0) << add_key.err;
  const std::vector<std::string> s3_flags = {"--repo", s3_repo,        "--key-file",
                                             key,      "--spool-path", work.sub("spool")};

  PgCluster::Options o;
  o.environment = env;
  std::string push = walvault_binary_for_server();
  for (const auto& f : s3_flags) push += " " + f;
  o.settings = {{"archive_mode", "on"},
                {"archive_command", "'" + push + " archive-push %p'"},
                {"wal_keep_size", "'1GB'"}};
  PgCluster pg(o);
  pg.init();
  pg.start();
  create_marker_table(pg);
  pg.pgbench_init(2);
  insert_marker(pg, 1);

  auto backup = walvault(
      {"--repo", s3_repo, "--key-file", key, "backup", "--pg", conninfo(pg), "--parallel", "2"},
      env);
  ASSERT_EQ(backup.status, 0) << backup.err;
  const std::string label = backup_label_of(backup.out);
  ASSERT_FALSE(label.empty()) << backup.out;

  insert_marker(pg, 2);
  const std::string target = moment_between_commits(pg);
  insert_marker(pg, 3);
  switch_and_wait(pg);

  auto list = walvault({"--repo", s3_repo, "--key-file", key, "backup", "list"}, env);
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_NE(list.out.find(label), std::string::npos) << list.out;

  const std::string pgdata = work.sub("restored");
  std::vector<std::string> restore_args = s3_flags;
  for (const char* a : {"restore", "--pgdata"}) restore_args.push_back(a);
  restore_args.push_back(pgdata);
  for (const auto& a : {std::string("--target-time"), target, std::string("--target-action"),
                        std::string("promote")})
    restore_args.push_back(a);
  auto restored = walvault(restore_args, env);
  ASSERT_EQ(restored.status, 0) << restored.err;
  EXPECT_NE(restored.out.find("backup: " + label), std::string::npos) << restored.out;
  // Credentials reach the restored server through its environment only.
  const std::string conf = read_text(pgdata + "/postgresql.auto.conf");
  EXPECT_EQ(conf.find(server->secret_key), std::string::npos);
  {
    PgCluster::Options ro;
    ro.environment = env;
    PgCluster copy(ro);
    copy.adopt(pgdata);
    std::ofstream(pgdata + "/postgresql.auto.conf", std::ios::app) << "archive_mode = off\n";
    copy.start();
    ASSERT_TRUE(wait_for_promotion(copy)) << read_text(copy.log_file());
    EXPECT_EQ(marker_ids(copy), "1,2");
    EXPECT_EQ(copy.sql("select count(*) from pgbench_accounts"), "200000");
    copy.stop();
  }

  // Retention and gc on S3: a second backup after changes, expire the first,
  // gc frees its chunks (mtime from LastModified; DeleteObjects), and the
  // repository still verifies with every byte read and restores.
  pg.sql("update pgbench_accounts set filler = md5(aid::text) where aid % 2 = 0");
  auto second = walvault(
      {"--repo", s3_repo, "--key-file", key, "backup", "--pg", conninfo(pg), "--parallel", "2"},
      env);
  ASSERT_EQ(second.status, 0) << second.err;
  const std::string label2 = backup_label_of(second.out);
  insert_marker(pg, 4);
  switch_and_wait(pg);
  auto expire = walvault(concat(s3_flags, {"expire", "--keep-last", "1", "--json"}), env);
  ASSERT_EQ(expire.status, 0) << expire.out << expire.err;
  const auto expired = nlohmann::json::parse(expire.out);
  EXPECT_EQ(expired.at("expired"), nlohmann::json::array({label})) << expire.out;
  auto gc = walvault(concat(s3_flags, {"gc", "--grace", "0", "--json"}), env);
  ASSERT_EQ(gc.status, 0) << gc.out << gc.err;
  const auto report = nlohmann::json::parse(gc.out);
  EXPECT_EQ(report.at("backups"), 1) << gc.out;
  EXPECT_GE(report.at("packs_removed").get<int>() + report.at("packs_repacked").get<int>(), 1)
      << gc.out;
  EXPECT_GT(report.at("chunks_removed").get<std::uint64_t>(), 0u) << gc.out;
  EXPECT_GT(report.at("freed").get<std::int64_t>(), 0) << gc.out;
  EXPECT_EQ(report.at("young_kept"), 0) << gc.out;
  auto verify = walvault(concat(s3_flags, {"verify", "--read-data"}), env);
  EXPECT_EQ(verify.status, 0) << verify.out << verify.err;
  auto listed = walvault({"--repo", s3_repo, "--key-file", key, "backup", "list", "--json"}, env);
  ASSERT_EQ(listed.status, 0) << listed.err;
  std::vector<std::string> left;
  for (const auto& b : nlohmann::json::parse(listed.out)) left.push_back(b.at("label"));
  EXPECT_EQ(left, std::vector<std::string>{label2}) << listed.out;
  const std::string latest = work.sub("latest");
  auto again = walvault(
      concat(s3_flags, {"restore", "--pgdata", latest, "--target-action", "promote"}), env);
  ASSERT_EQ(again.status, 0) << again.err;
  {
    PgCluster::Options ro;
    ro.environment = env;
    PgCluster copy(ro);
    copy.adopt(latest);
    std::ofstream(latest + "/postgresql.auto.conf", std::ios::app) << "archive_mode = off\n";
    copy.start();
    ASSERT_TRUE(wait_for_promotion(copy)) << read_text(copy.log_file());
    EXPECT_EQ(marker_ids(copy), "1,2,3,4");
    copy.stop();
  }
  pg.stop();
}

}  // namespace
}  // namespace walvault::testing
