// `walvault files` across repositories, the real binary on a generated tree:
// a `files backup` with two `--repo`s (one plain, one encrypted) stores the
// snapshot in both under one name, each restores it identically, and `files
// restore/ls/cat/diff/export` are served by the first repository that has the
// snapshot; `repo sync` of an
// unencrypted repository into an encrypted one carries the snapshot (re-cut
// by the destination's keyed chunker), the copy verifies clean reading every
// object, a second sync copies nothing, the copy alone restores the tree
// byte for byte, and a pack lost from it makes verify exit 6 naming the
// snapshot.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/walvault_cli.h"
#include "support/file_tree.h"

namespace walvault::testing {
namespace {

constexpr char kPassphrase[] = "files repos passphrase";

// As root (owners are restored only then), with `env`.
CommandResult as_root(const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv = {walvault_binary_for_server()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> full_env = {{"WALVAULT_CONFIG", "/dev/null"}};
  for (const auto& [k, v] : env) full_env[k] = v;
  return run(argv, full_env, AsUser::kSelf);
}

std::vector<std::string> differences(const std::string& a, const std::string& b) {
  std::vector<std::string> diffs;
  compare_trees(a, b, "", diffs);
  return diffs;
}

nlohmann::json snapshots_in(const std::vector<std::string>& flags,
                            const std::map<std::string, std::string>& env = {}) {
  const CommandResult r = as_root(concat(flags, {"files", "list", "--json"}), env);
  EXPECT_EQ(r.status, 0) << r.err;
  return r.status == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::array();
}

std::size_t of_volume(const nlohmann::json& snapshots, const std::string& volume) {
  std::size_t n = 0;
  for (const auto& s : snapshots) n += s["volume"] == volume ? 1 : 0;
  return n;
}

struct Volume {
  Volume() : work("wv-files-repos"), src(work.sub("src")) {
    EXPECT_EQ(::mkdir(src.c_str(), 0755), 0);
    generate_tree(src);
  }
  void init(const std::string& repo, bool encrypt) {
    std::vector<std::string> args = {"--repo", repo, "repo", "init"};
    if (encrypt) args.push_back("--encrypt");
    const CommandResult r = as_root(args, {{"WALVAULT_PASSPHRASE", kPassphrase}});
    ASSERT_EQ(r.status, 0) << r.err;
  }
  TempDir work;
  std::string src;
};

TEST(FilesRepos, TwoRepositoriesBothGetTheSnapshotAndTheFirstThatHasItServes) {
  if (!running_as_root()) GTEST_SKIP() << "owners are restored only as root";
  Volume s;
  const std::string plain = s.work.sub("plain"), sealed = s.work.sub("sealed");
  s.init(plain, false);
  s.init(sealed, true);
  const std::map<std::string, std::string> env = {{"WALVAULT_PASSPHRASE", kPassphrase}};
  const std::vector<std::string> both = {"--repo", plain, "--repo", sealed};
  const CommandResult b =
      as_root(concat(both, {"files", "backup", "--volume", "app_data", s.src}), env);
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(line_count(b.out), 2) << "one line per repository: " << b.out;

  for (const std::string& repo : {plain, sealed}) {
    SCOPED_TRACE(repo);
    const auto list = snapshots_in({"--repo", repo}, env);
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0]["chunker"]["keyed"].get<bool>(), repo == sealed);
    const std::string out = s.work.sub("out-" + std::filesystem::path(repo).filename().string());
    const CommandResult r =
        as_root({"--repo", repo, "files", "restore", "latest", "--to", out}, env);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(differences(s.src, out), std::vector<std::string>{});
    // Each repository keeps its own history of the backup.
    const CommandResult h = as_root({"--repo", repo, "history", "--json"}, env);
    ASSERT_EQ(h.status, 0) << h.err;
    EXPECT_NE(h.out.find("\"files-backup\""), std::string::npos) << h.out;
  }

  // One backup, one snapshot: the same name and id in both, so a sync
  // between them has nothing to copy.
  EXPECT_EQ(snapshots_in({"--repo", plain}, env)[0]["id"],
            snapshots_in({"--repo", sealed}, env)[0]["id"]);
  const CommandResult sync = as_root({"repo", "sync", "--from", plain, "--to", sealed}, env);
  ASSERT_EQ(sync.status, 0) << sync.err;
  EXPECT_TRUE(sync.out.ends_with("already in sync\n")) << sync.out;

  // The first repository given lacks the snapshot: the next one serves
  // restore, ls and cat, with a warning naming the first.
  const std::string empty = s.work.sub("empty");
  s.init(empty, false);
  const std::string id = snapshots_in({"--repo", plain})[0]["id"];
  const std::vector<std::string> fallback = {"--repo", empty, "--repo", sealed};
  const CommandResult r =
      as_root(concat(fallback, {"files", "restore", id, "--to", s.work.sub("out-fallback")}), env);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("repository " + empty + ": no snapshot " + id), std::string::npos) << r.err;
  EXPECT_EQ(differences(s.src, s.work.sub("out-fallback")), std::vector<std::string>{});
  const CommandResult cat = as_root(concat(fallback, {"files", "cat", id, "docs/report.csv"}), env);
  ASSERT_EQ(cat.status, 0) << cat.err;
  EXPECT_EQ(cat.out, read_file_text(s.src + "/docs/report.csv"));
  const CommandResult ls = as_root(concat(fallback, {"files", "ls", id, "docs"}), env);
  ASSERT_EQ(ls.status, 0) << ls.err;
  EXPECT_NE(ls.out.find("'docs/report.csv'"), std::string::npos) << ls.out;
  const CommandResult diff = as_root(concat(fallback, {"files", "diff", id, "latest"}), env);
  ASSERT_EQ(diff.status, 0) << diff.err;
  EXPECT_EQ(diff.out, "0 added, 0 removed, 0 changed\n");
  const CommandResult tar = as_root(concat(fallback, {"files", "export", id}), env);
  ASSERT_EQ(tar.status, 0) << tar.err;
  EXPECT_NE(tar.out.find("docs/report.csv"), std::string::npos);
  // An import goes into every repository, like a backup.
  const std::string tar_file = s.work.sub("export.tar");
  { std::ofstream(tar_file, std::ios::binary) << tar.out; }
  const std::vector<std::string> import_args = {"files",    "import", "--volume",
                                                "imported", "--time", "2026-01-01 00:00:00+00"};
  const CommandResult im = as_root(concat(concat(both, import_args), {tar_file}), env);
  ASSERT_EQ(im.status, 0) << im.err;
  EXPECT_EQ(line_count(im.out), 2) << "one line per repository: " << im.out;
  for (const std::string& repo : {plain, sealed})
    EXPECT_EQ(of_volume(snapshots_in({"--repo", repo}, env), "imported"), 1u) << repo;
  // A pipe can be read once: two repositories are refused before either
  // is written.
  const std::string fifo = s.work.sub("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] { ::close(::open(fifo.c_str(), O_WRONLY)); });
  const std::vector<std::string> pipe_args = {"files", "import", "--volume",
                                              "piped", "--time", "2026-01-02 00:00:00+00"};
  const CommandResult piped = as_root(concat(concat(both, pipe_args), {fifo}), env);
  writer.join();
  EXPECT_EQ(piped.status, 2) << piped.err;
  EXPECT_NE(piped.err.find("cannot be read again"), std::string::npos) << piped.err;
  for (const std::string& repo : {plain, sealed})
    EXPECT_EQ(of_volume(snapshots_in({"--repo", repo}, env), "piped"), 0u) << repo;

  // None has it: not found (4), naming the first repository's answer.
  const CommandResult none =
      as_root({"--repo", empty, "files", "ls", "latest", "--volume", "other"}, env);
  EXPECT_EQ(none.status, 4) << none.err;
}

TEST(FilesRepos, SyncUnencryptedToEncryptedThenTheCopyAloneRestores) {
  if (!running_as_root()) GTEST_SKIP() << "owners are restored only as root";
  Volume s;
  const std::string from = s.work.sub("from"), to = s.work.sub("to"), key = s.work.sub("to.key");
  s.init(from, false);
  s.init(to, true);
  const CommandResult k = as_root({"--repo", to, "repo", "add-key-file", "--out", key},
                                  {{"WALVAULT_PASSPHRASE", kPassphrase}});
  ASSERT_EQ(k.status, 0) << k.err;
  ASSERT_EQ(as_root({"--repo", from, "files", "backup", "--volume", "app_data", s.src}).status, 0);
  const std::string id = snapshots_in({"--repo", from})[0]["id"];

  const CommandResult sync =
      as_root({"repo", "sync", "--from", from, "--to", to, "--to-key-file", key});
  ASSERT_EQ(sync.status, 0) << sync.err;
  EXPECT_NE(sync.out.find(", 0 backups, 1 snapshot ("), std::string::npos) << sync.out;
  const CommandResult again =
      as_root({"repo", "sync", "--from", from, "--to", to, "--to-key-file", key});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_TRUE(again.out.ends_with("0 snapshots (0.0 MiB added); already in sync\n")) << again.out;

  const std::vector<std::string> flags = {"--repo", to, "--key-file", key};
  const CommandResult v = as_root(concat(flags, {"verify", "--read-data"}));
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("verify: 0 backups, 1 snapshot, "), std::string::npos) << v.out;
  const auto list = snapshots_in(flags);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], id) << "the same snapshot, by the same name";
  EXPECT_TRUE(list[0]["chunker"]["keyed"].get<bool>()) << "re-cut by the encrypted copy's chunker";

  std::filesystem::remove_all(from);
  const CommandResult r =
      as_root(concat(flags, {"files", "restore", id, "--to", s.work.sub("out")}));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(differences(s.src, s.work.sub("out")), std::vector<std::string>{});

  // A pack of the copy lost: verify exits with the corruption status and
  // names the snapshot and the paths that needed it.
  std::string pack;
  for (const auto& e : std::filesystem::recursive_directory_iterator(to + "/packs"))
    if (e.is_regular_file()) pack = e.path();
  ASSERT_FALSE(pack.empty());
  std::filesystem::remove(pack);
  const CommandResult lost = as_root(concat(flags, {"verify"}));
  EXPECT_EQ(lost.status, 6) << lost.out << lost.err;
  EXPECT_NE(lost.out.find("error: snapshots/app_data/"), std::string::npos) << lost.out;
  EXPECT_NE(lost.out.find(": snapshot " + id + " (app_data/"), std::string::npos) << lost.out;
}

}  // namespace
}  // namespace walvault::testing
