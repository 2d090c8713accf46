// repo sync between a local repository and S3, both ways, against the real
// S3 server: PostgreSQL 15 archives into a local repository A (unencrypted)
// with one base backup; `repo sync` copies A into an encrypted S3 repository
// B, then B into a local repository C encrypted under another passphrase.
// B and C each verify clean (reading every object), archive-get from B returns
// a segment byte for byte, a second sync copies nothing, and C alone restores
// the backup with the rows.
#include <gtest/gtest.h>

#include <filesystem>

#include "integration/walvault_cli.h"
#include "s3/s3_test_env.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

TEST(S3Sync, PosixToS3AndBackVerifyAndRestore) {
  const auto server = store::testing::s3_test_server();
  if (!server) GTEST_SKIP() << "no S3 test server configured (WALVAULT_TEST_S3_*)";
  const std::string bucket = store::testing::make_s3_test_bucket(*server);
  const std::string repo_b = "s3://" + bucket + "/copy";
  const std::map<std::string, std::string> env = {{"AWS_ACCESS_KEY_ID", server->access_key},
                                                  {"AWS_SECRET_ACCESS_KEY", server->secret_key},
                                                  {"AWS_ENDPOINT_URL", server->endpoint}};
  auto with = [&](const std::string& passphrase) {
    auto e = env;
    e["WALVAULT_PASSPHRASE"] = passphrase;
    return e;
  };
  TempDir work("wv-s3-sync");
  const std::string repo_a = work.sub("repo_a"), repo_c = work.sub("repo_c");
  const std::string key_b = work.sub("b.key"), key_c = work.sub("c.key");
  const std::string spool = work.sub("spool");
  ASSERT_EQ(walvault({"--repo", repo_a, "repo", "init"}).status, 0);
  for (const auto& [repo, key, pass] : {std::tuple{repo_b, key_b, "passphrase of b"},
                                        std::tuple{repo_c, key_c, "passphrase of c"}}) {
    auto init = walvault({"--repo", repo, "repo", "init", "--encrypt"}, with(pass));
    ASSERT_EQ(init.status, 0) << init.err;
    auto add = walvault({"--repo", repo, "repo", "add-key-file", "--out", key}, with(pass));
    ASSERT_EQ(add.status, 0) << add.err;
  }
  const auto flags_a = repo_flags(repo_a, spool);

  auto pg = start_archiving_cluster(archive_push_command(flags_a, 2));
  pg->sql("create table t(id int)");
  pg->sql("insert into t select generate_series(1, 20000)");
  auto b = walvault(concat(flags_a, {"backup", "--pg", conninfo(*pg)}));
  ASSERT_EQ(b.status, 0) << b.err;
  const std::string label = backup_label_of(b.out);
  ASSERT_FALSE(label.empty()) << b.out;
  const std::string last_segment = switch_and_wait(*pg);
  pg->stop();

  // posix -> S3
  auto to_s3 =
      walvault({"repo", "sync", "--from", repo_a, "--to", repo_b, "--to-key-file", key_b}, env);
  ASSERT_EQ(to_s3.status, 0) << to_s3.err;
  EXPECT_FALSE(
      capture(to_s3.out, "^synced " + repo_a + " -> " + repo_b +
                             ": (\\d+) WAL segments, \\d+ files?, 1 backup, 0 snapshots \\(")
          .empty())
      << to_s3.out;
  // S3 -> posix
  auto from_s3 = walvault({"repo", "sync", "--from", repo_b, "--to", repo_c, "--from-key-file",
                           key_b, "--to-key-file", key_c},
                          env);
  ASSERT_EQ(from_s3.status, 0) << from_s3.err;
  EXPECT_FALSE(
      capture(from_s3.out, "^synced " + repo_b + " -> " + repo_c +
                               ": (\\d+) WAL segments, \\d+ files?, 1 backup, 0 snapshots \\(")
          .empty())
      << from_s3.out;
  for (const auto& [from, to, from_key, to_key] : {std::tuple{repo_a, repo_b, std::string(), key_b},
                                                   std::tuple{repo_b, repo_c, key_b, key_c}}) {
    std::vector<std::string> again = {"repo", "sync", "--from",        from,
                                      "--to", to,     "--to-key-file", to_key};
    if (!from_key.empty()) again = concat(again, {"--from-key-file", from_key});
    auto r = walvault(again, env);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(r.out.ends_with(
        "0 WAL segments, 0 files, 0 backups, 0 snapshots (0.0 MiB added); already in "
        "sync\n"))
        << r.out;
  }

  for (const auto& [repo, key] : {std::pair{repo_b, key_b}, std::pair{repo_c, key_c}}) {
    auto v = walvault(concat(repo_flags(repo, spool, key), {"verify", "--read-data"}), env);
    EXPECT_EQ(v.status, 0) << repo << ": " << v.out << v.err;
    EXPECT_TRUE(v.out.starts_with("verify: 1 backup, ")) << v.out;
    EXPECT_NE(v.out.find("; 0 errors, 0 warnings\n"), std::string::npos) << v.out;
  }

  // archive-get from the S3 copy gives the segment PostgreSQL wrote.
  const std::string dest = work.sub("from-s3");
  auto get = walvault(concat(repo_flags(repo_b, spool, key_b),
                             {"archive-get", "--prefetch", "0", last_segment, dest}),
                      env);
  ASSERT_EQ(get.status, 0) << get.err;
  EXPECT_TRUE(read_text(dest) == read_text(pg->wal_dir() + "/" + last_segment));

  // C alone: A is gone and B is not named.
  fs::remove_all(repo_a);
  const std::string pgdata = work.sub("restored");
  auto r = walvault(
      concat(repo_flags(repo_c, spool, key_c),
             {"restore", "--pgdata", pgdata, "--target-immediate", "--target-action", "promote"}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("backup: " + label), std::string::npos) << r.out;
  auto restored = start_restored(pgdata);
  EXPECT_EQ(restored->sql("select count(*) from t"), "20000");
  restored->stop();
}

}  // namespace
}  // namespace walvault::testing
