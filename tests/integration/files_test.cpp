// `walvault files`: the real binary on a generated tree (every kind of entry),
// into an encrypted repository: backup -> list -> ls/cat -> restore, and a
// comparer finds content and metadata identical; an unchanged second backup
// adds nothing; churn shows in diff; export is a tar GNU tar extracts to the
// same tree, and import of a tarball is a snapshot found by VOLUME@TIME; gc
// keeps it all restorable; an unreadable file is named, the snapshot still
// recorded, exit 14; a non-empty target without --delta is refused.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/walvault_cli.h"
#include "support/file_tree.h"

namespace walvault::testing {
namespace {

// As root when we are (owners are restored only then); walvault() runs as
// the test user.
CommandResult walvault_self(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {walvault_binary_for_server()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {{"WALVAULT_CONFIG", "/dev/null"}}, AsUser::kSelf);
}

nlohmann::json list_json(const std::vector<std::string>& flags) {
  const CommandResult r = walvault_self(concat(flags, {"files", "list", "--json"}));
  EXPECT_EQ(r.status, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

std::vector<std::string> diffs_between(const std::string& a, const std::string& b, bool holes) {
  std::vector<std::string> diffs;
  compare_trees(a, b, "", diffs, holes);
  return diffs;
}

constexpr char kPassphrase[] = "files integration passphrase";

// An encrypted repository at work/repo unlocked by work/key; its flags.
std::vector<std::string> encrypted_repo(const TempDir& work) {
  const std::string repo = work.sub("repo"), key = work.sub("key");
  const CommandResult init = walvault({"--repo", repo, "repo", "init", "--encrypt"},
                                      {{"WALVAULT_PASSPHRASE", kPassphrase}});
  EXPECT_EQ(init.status, 0) << init.err;
  const CommandResult k = walvault({"--repo", repo, "repo", "add-key-file", "--out", key},
                                   {{"WALVAULT_PASSPHRASE", kPassphrase}});
  EXPECT_EQ(k.status, 0) << k.err;
  return repo_flags(repo, work.sub("spool"), key);
}

TEST(FilesTest, BackupRestoreDiffExportImportAndGcOnARealTree) {
  if (!running_as_root()) GTEST_SKIP() << "owners are restored only as root";
  TempDir work("wv-files");
  const std::string src = work.sub("src");
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  generate_tree(src);
  const auto flags = encrypted_repo(work);

  const CommandResult b1 =
      walvault_self(concat(flags, {"files", "backup", "--volume", "app_data", src}));
  ASSERT_EQ(b1.status, 0) << b1.err;
  EXPECT_NE(b1.out.find("snapshot "), std::string::npos) << b1.out;
  nlohmann::json list = list_json(flags);
  ASSERT_EQ(list.size(), 1u);
  const std::string id1 = list[0]["id"];
  EXPECT_EQ(list[0]["volume"], "app_data");
  EXPECT_TRUE(list[0]["chunker"]["keyed"].get<bool>()) << "encrypted: the cut points are keyed";

  const CommandResult cat = walvault_self(concat(flags, {"files", "cat", id1, "docs/report.csv"}));
  ASSERT_EQ(cat.status, 0) << cat.err;
  EXPECT_EQ(cat.out, read_file_text(src + "/docs/report.csv"));
  const CommandResult ls = walvault_self(concat(flags, {"files", "ls", "latest", "docs"}));
  ASSERT_EQ(ls.status, 0) << ls.err;
  EXPECT_NE(ls.out.find("'docs/rel-link' -> 'large.bin'"), std::string::npos) << ls.out;

  const CommandResult r1 =
      walvault_self(concat(flags, {"files", "restore", id1, "--to", work.sub("out1")}));
  ASSERT_EQ(r1.status, 0) << r1.err;
  EXPECT_EQ(diffs_between(src, work.sub("out1"), true), std::vector<std::string>{});

  // Unchanged: nothing new. Churn: diff names it.
  ASSERT_EQ(walvault_self(concat(flags, {"files", "backup", "--volume", "app_data", src})).status,
            0);
  list = list_json(flags);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1]["added_bytes"], 0) << list[1].dump();
  EXPECT_EQ(list[1]["read_bytes"], 0) << "unchanged files are not read";
  write_bytes(src + "/many/f7.txt", as_bytes("changed on day 3"));
  ASSERT_EQ(::unlink((src + "/many/f8.txt").c_str()), 0);
  ASSERT_EQ(walvault_self(concat(flags, {"files", "backup", "--volume", "app_data", src})).status,
            0);
  const std::string id3 = list_json(flags)[2]["id"];
  const CommandResult diff = walvault_self(concat(flags, {"files", "diff", id1, id3}));
  ASSERT_EQ(diff.status, 0) << diff.err;
  EXPECT_NE(diff.out.find("M 'many/f7.txt'"), std::string::npos) << diff.out;
  EXPECT_NE(diff.out.find("- 'many/f8.txt'"), std::string::npos) << diff.out;

  // Export as tar.gz: GNU tar extracts the same tree. Import it back as a
  // snapshot of another volume, taken at a given time.
  const std::string tgz = work.sub("export.tar.gz");
  const CommandResult ex =
      walvault_self(concat(flags, {"files", "export", id3, "--format", "tar.gz", "--output", tgz}));
  ASSERT_EQ(ex.status, 0) << ex.err;
  ASSERT_EQ(::mkdir(work.sub("untar").c_str(), 0700), 0);
  const CommandResult untar = run({"tar", "-xzf", tgz, "-C", work.sub("untar"), "--xattrs",
                                   "--xattrs-include=*", "--same-owner", "--numeric-owner"});
  ASSERT_EQ(untar.status, 0) << untar.err;
  EXPECT_EQ(diffs_between(src, work.sub("untar"), false), std::vector<std::string>{});
  const CommandResult im = walvault_self(concat(
      flags, {"files", "import", "--volume", "imported", "--time", "2026-01-01 00:00:00+00", tgz}));
  ASSERT_EQ(im.status, 0) << im.err;
  const CommandResult r2 = walvault_self(concat(
      flags, {"files", "restore", "imported@2026-06-01 00:00:00+00", "--to", work.sub("out2")}));
  ASSERT_EQ(r2.status, 0) << r2.err;
  EXPECT_EQ(diffs_between(src, work.sub("out2"), false), std::vector<std::string>{});

  // gc keeps every snapshot whole; a restore afterwards is still identical.
  const CommandResult gc = walvault_self(concat(flags, {"gc", "--grace", "0s", "--json"}));
  ASSERT_EQ(gc.status, 0) << gc.err;
  EXPECT_EQ(nlohmann::json::parse(gc.out)["snapshots"], 4) << gc.out;
  const CommandResult r3 =
      walvault_self(concat(flags, {"files", "restore", id3, "--to", work.sub("out3")}));
  ASSERT_EQ(r3.status, 0) << r3.err;
  EXPECT_EQ(diffs_between(src, work.sub("out3"), true), std::vector<std::string>{});
  // One writer restores the same tree as the default (one per CPU).
  const CommandResult r4 = walvault_self(
      concat(flags, {"files", "restore", id3, "--to", work.sub("out4"), "--parallel", "1"}));
  ASSERT_EQ(r4.status, 0) << r4.err;
  EXPECT_EQ(diffs_between(src, work.sub("out4"), true), std::vector<std::string>{});
  EXPECT_EQ(walvault_self(concat(flags, {"files", "restore", id3, "--to", work.sub("out5"),
                                         "--parallel", "0"}))
                .status,
            2);

  // A non-empty target without --delta is refused; with it, brought in line.
  write_bytes(work.sub("out3/stray"), as_bytes("x"));
  const CommandResult refused =
      walvault_self(concat(flags, {"files", "restore", id3, "--to", work.sub("out3")}));
  EXPECT_EQ(refused.status, 5) << refused.err;
  const CommandResult delta =
      walvault_self(concat(flags, {"files", "restore", id3, "--to", work.sub("out3"), "--delta"}));
  ASSERT_EQ(delta.status, 0) << delta.err;
  EXPECT_EQ(diffs_between(src, work.sub("out3"), true), std::vector<std::string>{});
}

TEST(FilesTest, AnUnreadableFileIsNamedAndTheSnapshotStillRecorded) {
  if (!running_as_root()) GTEST_SKIP() << "needs a file the test user cannot read";
  TempDir work("wv-files");
  const std::string src = work.sub("src");
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  write_bytes(src + "/readable.txt", as_bytes("fine"));
  write_bytes(src + "/secret.key", as_bytes("root only"));
  ASSERT_EQ(::chmod((src + "/secret.key").c_str(), 0600), 0);  // root's, not the test user's
  const auto flags = encrypted_repo(work);
  const CommandResult b = walvault(concat(flags, {"files", "backup", "--volume", "v", src}));
  EXPECT_EQ(b.status, 14) << b.out << b.err;
  EXPECT_NE(b.err.find("secret.key"), std::string::npos) << b.err;
  const CommandResult list = walvault(concat(flags, {"files", "list", "--json"}));
  ASSERT_EQ(list.status, 0) << list.err;
  const auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["files"], 1);
  EXPECT_EQ(j[0]["unreadable"], 1);
}

}  // namespace
}  // namespace walvault::testing
