// File-volume snapshots on the real S3 server: `files backup` of a generated
// tree into an encrypted S3 repository and a local one at once (two --repo),
// each restores the tree identically (content and metadata), the S3 copy
// verifies clean reading every object, `repo sync` into another encrypted S3
// repository re-cuts it and the copy restores the same tree, and with the
// local repository gone the S3 one still serves a restore as the second --repo.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "integration/walvault_cli.h"
#include "s3/s3_test_env.h"
#include "support/file_tree.h"

namespace walvault::testing {
namespace {

TEST(S3Files, BackupIntoS3AndALocalRepositoryThenRestoreFromEach) {
  const auto server = store::testing::s3_test_server();
  if (!server) GTEST_SKIP() << "no S3 test server configured (WALVAULT_TEST_S3_*)";
  if (!running_as_root()) GTEST_SKIP() << "owners are restored only as root";
  const std::string bucket = store::testing::make_s3_test_bucket(*server);
  const std::string s3_repo = "s3://" + bucket + "/files";
  const std::map<std::string, std::string> env = {{"WALVAULT_CONFIG", "/dev/null"},
                                                  {"AWS_ACCESS_KEY_ID", server->access_key},
                                                  {"AWS_SECRET_ACCESS_KEY", server->secret_key},
                                                  {"AWS_ENDPOINT_URL", server->endpoint},
                                                  {"WALVAULT_PASSPHRASE", "s3 files passphrase"}};
  // As root: owners are restored only then.
  auto wv = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {walvault_binary_for_server()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env, AsUser::kSelf);
  };
  auto differences = [](const std::string& a, const std::string& b) {
    std::vector<std::string> diffs;
    compare_trees(a, b, "", diffs);
    return diffs;
  };
  TempDir work("wv-s3-files");
  const std::string src = work.sub("src"), local = work.sub("local");
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  generate_tree(src);
  const CommandResult init_s3 = wv({"--repo", s3_repo, "repo", "init", "--encrypt"});
  ASSERT_EQ(init_s3.status, 0) << init_s3.err;
  ASSERT_EQ(wv({"--repo", local, "repo", "init"}).status, 0);

  const std::vector<std::string> both = {"--repo", local, "--repo", s3_repo};
  const CommandResult b = wv(concat(both, {"files", "backup", "--volume", "app_data", src}));
  ASSERT_EQ(b.status, 0) << b.err;

  for (const std::string& repo : {s3_repo, local}) {
    SCOPED_TRACE(repo);
    const CommandResult list = wv({"--repo", repo, "files", "list", "--json"});
    ASSERT_EQ(list.status, 0) << list.err;
    const auto j = nlohmann::json::parse(list.out);
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0]["chunker"]["keyed"].get<bool>(), repo == s3_repo);
    const std::string out = work.sub(repo == local ? "out-local" : "out-s3");
    const CommandResult r = wv({"--repo", repo, "files", "restore", "latest", "--to", out});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(differences(src, out), std::vector<std::string>{});
  }
  const CommandResult v = wv({"--repo", s3_repo, "verify", "--read-data"});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("verify: 0 backups, 1 snapshot, "), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("; 0 errors, 0 warnings\n"), std::string::npos) << v.out;

  // repo sync S3 -> another encrypted S3 repository (its own master key):
  // read from S3, re-cut, the copy restores the same tree; again: nothing.
  const std::string copy = "s3://" + bucket + "/copy";
  ASSERT_EQ(wv({"--repo", copy, "repo", "init", "--encrypt"}).status, 0);
  const CommandResult sync = wv({"repo", "sync", "--from", s3_repo, "--to", copy});
  ASSERT_EQ(sync.status, 0) << sync.err;
  EXPECT_NE(sync.out.find(", 1 snapshot ("), std::string::npos) << sync.out;
  const CommandResult again = wv({"repo", "sync", "--from", s3_repo, "--to", copy});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_TRUE(again.out.ends_with("already in sync\n")) << again.out;
  const CommandResult from_copy =
      wv({"--repo", copy, "files", "restore", "latest", "--to", work.sub("out-copy")});
  ASSERT_EQ(from_copy.status, 0) << from_copy.err;
  EXPECT_EQ(differences(src, work.sub("out-copy")), std::vector<std::string>{});

  // The local repository is gone: S3, second in line, serves the restore.
  std::filesystem::remove_all(local);
  const CommandResult r =
      wv(concat(both, {"files", "restore", "latest", "--to", work.sub("out-fallback")}));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(differences(src, work.sub("out-fallback")), std::vector<std::string>{});
}

}  // namespace
}  // namespace walvault::testing
