// repo sync end to end: a real PostgreSQL 15 archives into an encrypted
// repository A with one base backup; `repo sync` copies it into B, a
// separately initialised repository encrypted under another passphrase; B
// alone then verifies clean and restores the backup, and the restored server
// has the rows.
#include <gtest/gtest.h>

#include <filesystem>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

// `repo init --encrypt` at `repo` under `passphrase`, and a key file for it.
void init_encrypted(const std::string& repo, const std::string& passphrase,
                    const std::string& key_file) {
  auto i = walvault({"--repo", repo, "repo", "init", "--encrypt"},
                    {{"WALVAULT_PASSPHRASE", passphrase}});
  ASSERT_EQ(i.status, 0) << i.err;
  auto k = walvault({"--repo", repo, "repo", "add-key-file", "--out", key_file},
                    {{"WALVAULT_PASSPHRASE", passphrase}});
  ASSERT_EQ(k.status, 0) << k.err;
}

TEST(SyncTest, SyncedRepositoryAloneVerifiesAndRestores) {
  TempDir work("wv-sync");
  const std::string repo_a = work.sub("repo_a"), repo_b = work.sub("repo_b");
  const std::string key_a = work.sub("a.key"), key_b = work.sub("b.key");
  const std::string spool = work.sub("spool");
  init_encrypted(repo_a, "passphrase of a", key_a);
  init_encrypted(repo_b, "passphrase of b", key_b);
  const auto flags_a = repo_flags(repo_a, spool, key_a);
  const auto flags_b = repo_flags(repo_b, spool, key_b);

  auto pg = start_archiving_cluster(archive_push_command(flags_a, 2));
  pg->sql("create table t(id int)");
  pg->sql("insert into t select generate_series(1, 10000)");
  auto b = walvault(concat(flags_a, {"backup", "--pg", conninfo(*pg)}));
  ASSERT_EQ(b.status, 0) << b.err;
  const std::string label = backup_label_of(b.out);
  ASSERT_FALSE(label.empty()) << b.out;
  pg->sql("insert into t select generate_series(1, 500)");  // after the backup
  switch_and_wait(*pg);
  pg->stop();

  const std::vector<std::string> sync = {"repo",          "sync", "--from",          repo_a,
                                         "--to",          repo_b, "--from-key-file", key_a,
                                         "--to-key-file", key_b};
  auto dry = walvault(concat(sync, {"--dry-run"}));
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("\nbackup " + label + "\n"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("dry run: would sync " + repo_a + " -> " + repo_b + ": "),
            std::string::npos)
      << dry.out;
  EXPECT_FALSE(fs::exists(repo_b + "/cluster"));

  auto first = walvault(sync);
  ASSERT_EQ(first.status, 0) << first.err;
  const std::string segments =
      capture(first.out, "^synced " + repo_a + " -> " + repo_b +
                             ": (\\d+) WAL segments, \\d+ files?, 1 backup, 0 snapshots \\(");
  ASSERT_FALSE(segments.empty()) << first.out;
  EXPECT_GE(std::stoi(segments), 2) << first.out;

  // Again, with --key-file of A only and B's passphrase: A opens with the key
  // file, B falls back to the passphrase. Nothing is left to copy.
  auto again = walvault({"--key-file", key_a, "repo", "sync", "--from", repo_a, "--to", repo_b},
                        {{"WALVAULT_PASSPHRASE", "passphrase of b"}});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.out,
            "synced " + repo_a + " -> " + repo_b +
                ": 0 WAL segments, 0 files, 0 backups, 0 snapshots (0.0 MiB added); already in "
                "sync\n");

  auto v = walvault(concat(flags_b, {"verify", "--read-data"}));
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_TRUE(v.out.starts_with("verify: 1 backup, ")) << v.out;
  EXPECT_NE(v.out.find("; 0 errors, 0 warnings\n"), std::string::npos) << v.out;

  // B alone: A is gone.
  fs::remove_all(repo_a);
  const std::string pgdata = work.sub("restored");
  auto r = walvault(concat(flags_b, {"restore", "--pgdata", pgdata, "--target-immediate",
                                     "--target-action", "promote"}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("backup: " + label), std::string::npos) << r.out;
  auto restored = start_restored(pgdata);
  EXPECT_EQ(restored->sql("select count(*) from t"), "10000");
  restored->stop();
}

}  // namespace
}  // namespace walvault::testing
