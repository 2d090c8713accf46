// Several repositories through the CLI: one key file registered with several
// encrypted repositories (repo add-key-file --out / --existing), and the
// config file's repo1, repo2, ... keys with their precedence.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_util.h"
#include "integration/walvault_cli.h"
#include "support/segment_builder.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;
using pg::testing::SegmentBuilder;

constexpr char kPassphraseAb[] = "passphrase shared by a and b";
constexpr char kPassphraseC[] = "passphrase of c alone";

// A synthetic 1 MiB segment with one commit, readable by the test user.
std::string write_segment(const TempDir& dir, std::uint64_t segno) {
  SegmentBuilder::Options o;
  o.segno = segno;
  SegmentBuilder b(o);
  b.add_record(pg::testing::kRmXact, pg::testing::kXactCommit, 700,
               pg::testing::make_body(pg::testing::xact_main(1'790'000'000'000'000)));
  const std::string path = dir.sub(b.file_name());
  write_file_atomic(path, b.bytes());
  give_to_test_user(path);
  return path;
}

TEST(MultiRepoTest, OneKeyFileUnlocksSeveralEncryptedRepositories) {
  TempDir work("wv-multi-key");
  const std::string a = work.sub("a"), b = work.sub("b"), c = work.sub("c");
  const std::string key = work.sub("shared.key"), spool = work.sub("spool");
  for (const auto& [repo, pass] :
       {std::pair{a, kPassphraseAb}, {b, kPassphraseAb}, {c, kPassphraseC}}) {
    auto init =
        walvault({"--repo", repo, "repo", "init", "--encrypt"}, {{"WALVAULT_PASSPHRASE", pass}});
    ASSERT_EQ(init.status, 0) << init.err;
  }

  // A repository that does not open stops the command before the key file is
  // written.
  auto refused = walvault({"--repo", a, "--repo", c, "repo", "add-key-file", "--out", key},
                          {{"WALVAULT_PASSPHRASE", kPassphraseAb}});
  EXPECT_EQ(refused.status, 7) << refused.err;
  EXPECT_NE(refused.err.find("repository " + c + ": wrong passphrase"), std::string::npos)
      << refused.err;
  EXPECT_EQ(refused.err.find(kPassphraseAb), std::string::npos);
  EXPECT_FALSE(fs::exists(key));

  // a and b share a passphrase: one call writes the key file for both.
  auto both = walvault({"--repo", a, "--repo", b, "repo", "add-key-file", "--out", key},
                       {{"WALVAULT_PASSPHRASE", kPassphraseAb}});
  ASSERT_EQ(both.status, 0) << both.err;
  EXPECT_TRUE(both.out.starts_with("wrote key file " + key + "\nkey file " + key +
                                   " now unlocks repository "))
      << both.out;
  // c has its own passphrase: the existing key file is registered with it.
  // --key-file does not unlock c yet, so c is opened by its passphrase.
  auto existing =
      walvault({"--repo", c, "--key-file", key, "repo", "add-key-file", "--existing", key},
               {{"WALVAULT_PASSPHRASE", kPassphraseC}});
  ASSERT_EQ(existing.status, 0) << existing.err;
  EXPECT_NE(existing.out.find(" now unlocks repository "), std::string::npos) << existing.out;
  auto again =
      walvault({"--repo", c, "--key-file", key, "repo", "add-key-file", "--existing", key});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.out.find(" already unlocked repository "), std::string::npos) << again.out;
  auto neither = walvault({"--repo", c, "--key-file", key, "repo", "add-key-file"});
  EXPECT_EQ(neither.status, 2) << neither.err;
  auto both_flags = walvault({"--repo", c, "--key-file", key, "repo", "add-key-file", "--out",
                              work.sub("x.key"), "--existing", key});
  EXPECT_EQ(both_flags.status, 2) << both_flags.err;

  // archive-push into all three with the one key file, no passphrase; then
  // archive-get from each alone returns the segment's bytes.
  const std::string segment = write_segment(work, 5);
  const std::string name = fs::path(segment).filename();
  auto push = walvault({"--repo", a, "--repo", b, "--repo", c, "--key-file", key, "--spool-path",
                        spool, "archive-push", "--parallel", "1", segment});
  ASSERT_EQ(push.status, 0) << push.err;
  for (const auto& repo : {a, b, c}) {
    const std::string dest = work.sub("got-" + fs::path(repo).filename().string());
    auto get = walvault({"--repo", repo, "--key-file", key, "--spool-path", spool, "archive-get",
                         "--prefetch", "0", name, dest});
    ASSERT_EQ(get.status, 0) << repo << ": " << get.err;
    EXPECT_TRUE(read_text(dest) == read_text(segment)) << repo;
  }

  // A key file none of them knows: exit 7 (key), for push and get alike.
  const std::string stranger = work.sub("stranger.key");
  auto other = walvault({"--repo", work.sub("d"), "repo", "init", "--encrypt"},
                        {{"WALVAULT_PASSPHRASE", kPassphraseC}});
  ASSERT_EQ(other.status, 0) << other.err;
  auto stranger_key = walvault({"--repo", work.sub("d"), "repo", "add-key-file", "--out", stranger},
                               {{"WALVAULT_PASSPHRASE", kPassphraseC}});
  ASSERT_EQ(stranger_key.status, 0) << stranger_key.err;
  const std::string next = write_segment(work, 6);
  auto wrong_push = walvault({"--repo", a, "--repo", b, "--key-file", stranger, "--spool-path",
                              spool, "archive-push", "--parallel", "1", next});
  EXPECT_EQ(wrong_push.status, 7) << wrong_push.err;
  EXPECT_NE(wrong_push.err.find("repository " + a + ": key file " + stranger +
                                " does not belong to the repository"),
            std::string::npos)
      << wrong_push.err;
  auto wrong_get = walvault({"--repo", b, "--key-file", stranger, "archive-get", "--prefetch", "0",
                             name, work.sub("never")});
  EXPECT_EQ(wrong_get.status, 7) << wrong_get.err;
  EXPECT_FALSE(fs::exists(work.sub("never")));
  // Registered with a but not with d: the push fails on d and says so.
  auto partial = walvault({"--repo", a, "--repo", work.sub("d"), "--key-file", key, "--spool-path",
                           spool, "archive-push", "--parallel", "1", next});
  EXPECT_EQ(partial.status, 7) << partial.err;
  EXPECT_NE(partial.err.find("repository " + work.sub("d") + ": "), std::string::npos)
      << partial.err;
}

TEST(MultiRepoTest, ConfigFileNumberedRepositoriesAndPrecedence) {
  TempDir work("wv-multi-conf");
  const std::string a = work.sub("a"), b = work.sub("b"), c = work.sub("c"), d = work.sub("d");
  auto with_config = [&](const std::string& text, std::vector<std::string> args,
                         const std::map<std::string, std::string>& env = {}) {
    const std::string conf = work.sub("walvault.conf");
    write_text(conf, text);
    give_to_test_user(conf);
    return walvault(concat({"--config", conf}, args), env);
  };
  // Ordered by N, not by position in the file; gaps are fine.
  const std::string numbered = "repo3 = " + b + "\nrepo1 = " + a + "\n";
  auto init = with_config(numbered, {"repo", "init"});
  ASSERT_EQ(init.status, 0) << init.err;
  EXPECT_TRUE(fs::exists(a + "/config"));
  EXPECT_TRUE(fs::exists(b + "/config"));
  EXPECT_LT(init.out.find(" at " + a), init.out.find(" at " + b)) << init.out;
  auto info = with_config(numbered, {"repo", "info"});
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find(" at " + a + "\n"), std::string::npos) << info.out;

  // WALVAULT_REPO beats the file, --repo beats both (a second init of a or b
  // would be a conflict, exit 5).
  auto env = with_config(numbered, {"repo", "init"}, {{"WALVAULT_REPO", c}});
  EXPECT_EQ(env.status, 0) << env.err;
  EXPECT_TRUE(fs::exists(c + "/config"));
  auto flag = with_config(numbered, {"--repo", d, "repo", "init"}, {{"WALVAULT_REPO", c}});
  EXPECT_EQ(flag.status, 0) << flag.err;
  EXPECT_TRUE(fs::exists(d + "/config"));
  EXPECT_EQ(with_config(numbered, {"repo", "init"}).status, 5);

  // Bad files: one clear line, exit 2.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"repo = " + a + "\nrepo1 = " + b + "\n", "not both"},
      {"repo1 = " + a + "\nrepo2-key-file = /k\n", "repo2-key-file: there are no per-repository"},
      {"repo0 = " + a + "\n", "repo0: repositories are numbered repo1, repo2"},
      {"repo1 = [" + a + ", " + b + "]\n", "repo1 takes one repository location"},
      {"[archive-push]\nrepo1 = " + a + "\n", "repo1 belongs before the first [section]"},
  };
  for (const auto& [text, message] : bad) {
    auto r = with_config(text, {"--repo", d, "repo", "info"});
    EXPECT_EQ(r.status, 2) << text << r.err;
    EXPECT_NE(r.err.find("walvault: error: config file: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << text << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
  }
}

}  // namespace
}  // namespace walvault::testing
