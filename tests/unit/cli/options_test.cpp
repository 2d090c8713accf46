// Where the global options come from: a flag overrides its WALVAULT_*
// variable, which overrides the config file (EnvFirstConfig); the config
// file's repositories (repo, repo1, ...) apply only when neither --repo nor
// WALVAULT_REPO gives one; the s3-* keys are config-file only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/config.h"
#include "support/error_code.h"
#include "support/pg_cluster.h"

namespace walvault::cli {
namespace {

// Sets (or unsets) an environment variable for the scope, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class OptionsTest : public ::testing::Test {
 protected:
  // The globals of `walvault --config <file with `config`> ARGS... info`.
  Globals parse(const std::string& config, std::vector<std::string> args) {
    std::ofstream(dir_.sub("walvault.conf")) << config;
    args.insert(args.begin(),
                std::initializer_list<std::string>{"--config", dir_.sub("walvault.conf")});
    args.push_back("info");
    CLI::App app;
    app.fallthrough();
    auto sections = std::make_shared<ConfigSections>();
    Globals globals;
    register_globals(app, globals, sections);
    app.add_subcommand("info");
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    app.parse(args);
    finish_globals(app, globals, *sections);
    sections_ = *sections;
    return globals;
  }

  testing::TempDir dir_{"wv-cli"};
  ConfigSections sections_;
  // No variable from the test's environment leaks into what is parsed.
  ScopedEnv no_key_file_{"WALVAULT_KEY_FILE", std::nullopt};
  ScopedEnv no_repo_{"WALVAULT_REPO", std::nullopt};
  ScopedEnv no_config_{"WALVAULT_CONFIG", std::nullopt};
  ScopedEnv no_log_level_{"WALVAULT_LOG_LEVEL", std::nullopt};
};

TEST_F(OptionsTest, ConfigFileAppliesWhenNothingElseGivesTheOption) {
  const Globals g = parse("key-file = /from/file\nlog-level = error\n", {});
  EXPECT_EQ(g.repos.key_file, "/from/file");
  EXPECT_EQ(g.log_level, "error");
}

TEST_F(OptionsTest, EnvironmentOverridesConfigFile) {
  ScopedEnv env("WALVAULT_KEY_FILE", "/from/env");
  EXPECT_EQ(parse("key-file = /from/file\n", {}).repos.key_file, "/from/env");
}

TEST_F(OptionsTest, FlagOverridesEnvironmentAndConfigFile) {
  ScopedEnv env("WALVAULT_KEY_FILE", "/from/env");
  EXPECT_EQ(parse("key-file = /from/file\n", {"--key-file", "/from/flag"}).repos.key_file,
            "/from/flag");
}

TEST_F(OptionsTest, ConfigFileRepositoriesInTheOrderOfTheirNumbers) {
  EXPECT_EQ(parse("repo3 = /c\nrepo1 = /a\n", {}).repos.locations,
            (std::vector<std::string>{"/a", "/c"}));
  EXPECT_EQ(parse("repo = [/x, /y]\n", {}).repos.locations, (std::vector<std::string>{"/x", "/y"}));
}

TEST_F(OptionsTest, RepoFlagOrEnvironmentReplacesTheConfigFileRepositories) {
  const std::string config = "repo1 = /a\nrepo2 = /b\n";
  EXPECT_EQ(parse(config, {"--repo", "/f1", "--repo", "/f2"}).repos.locations,
            (std::vector<std::string>{"/f1", "/f2"}));
  ScopedEnv env("WALVAULT_REPO", "/e");
  EXPECT_EQ(parse(config, {}).repos.locations, (std::vector<std::string>{"/e"}));
}

TEST_F(OptionsTest, KeysWithoutFlagsAreTakenOutOfTheConfigFile) {
  const Globals g = parse(
      "s3-region = eu-west-3\nrepo = /r\n[retention]\nkeep-last = 3\n[retention.weekly]\n"
      "keep-weekly = 4\n",
      {});
  EXPECT_EQ(g.repos.store_settings.values(),
            (std::vector<std::pair<std::string, std::string>>{{"s3-region", "eu-west-3"}}));
  EXPECT_EQ(sections_.store.size(), 1u);
  EXPECT_EQ(sections_.repos.size(), 1u);
  EXPECT_FALSE(sections_.retention.empty());
}

TEST_F(OptionsTest, FilesRetentionSectionsNameEveryVolumeAVolumeOrAVolumeAndTag) {
  parse(
      "[retention]\nkeep-last = 2\n"
      "[files-retention]\nkeep-daily = 30\n"
      "[files-retention.app_data]\nkeep-daily = 7\nkeep-monthly = 12\n"
      "[files-retention.app_data:reports]\nkeep-last = 5\n"
      "[files-retention.my.vol]\nkeep-within = 2d\n",
      {});
  const ops::SnapshotRetentionRules rules =
      snapshot_retention_from_config(sections_.files_retention);
  EXPECT_EQ(rules.all_volumes.describe(), "keep-daily 30");
  EXPECT_EQ(rules.volumes.at("app_data").describe(), "keep-daily 7, keep-monthly 12");
  EXPECT_EQ(rules.volume_tags.at({"app_data", "reports"}).describe(), "keep-last 5");
  EXPECT_EQ(rules.volumes.at("my.vol").describe(), "keep-within 2d");
  EXPECT_EQ(rules.policy_for("other", "").describe(), "keep-daily 30");
  EXPECT_EQ(rules.policy_for("app_data", "weekly").describe(), "keep-daily 7, keep-monthly 12");
  // The database backups' sections are apart.
  const ops::RetentionRules db = retention_from_config(sections_.retention);
  EXPECT_EQ(db.default_policy.describe(), "keep-last 2");
  EXPECT_TRUE(db.tags.empty());
}

TEST_F(OptionsTest, BadFilesRetentionSectionsAreUsageErrorsNamingTheSection) {
  for (const char* config :
       {"[files-retention.app_data]\nkeep-dayly = 7\n", "[files-retention.a/b]\nkeep-last = 1\n",
        "[files-retention.app_data:]\nkeep-last = 1\n", "[files-retention.:tag]\nkeep-last = 1\n",
        "[files-retention]\nkeep-last = many\n", "[files-retention]\npitr-window = 7d\n"}) {
    parse(config, {});
    try {
      snapshot_retention_from_config(sections_.files_retention);
      ADD_FAILURE() << config;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUsage) << config;
      EXPECT_NE(std::string(e.what()).find("config file [files-retention"), std::string::npos)
          << e.what();
    }
  }
}

TEST_F(OptionsTest, BadRepositoryKeysAreUsageErrors) {
  for (const char* config : {"repo2-key-file = /k\n", "repo01 = /a\n", "repo = /a\nrepo1 = /b\n",
                             "repo1 = \n", "[section]\nrepo1 = /a\n"}) {
    EXPECT_EQ(testing::error_code_of([&] { parse(config, {}); }), ErrorCode::kUsage) << config;
  }
}

TEST_F(OptionsTest, UnreadableWalvaultConfigIsAUsageError) {
  ScopedEnv env("WALVAULT_CONFIG", dir_.sub("missing.conf"));
  EXPECT_EQ(testing::error_code_of([&] { parse("", {}); }), ErrorCode::kUsage);
}

TEST(StoreFlagError, CredentialsOnTheCommandLineAreRefusedWithoutEchoingThem) {
  std::vector<std::string> args = {"walvault", "--s3-secret-access-key=hunter2", "info"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  const std::string refused = store_flag_error(static_cast<int>(argv.size()), argv.data());
  EXPECT_NE(refused.find("--s3-secret-access-key: credentials are not accepted"), std::string::npos)
      << refused;
  EXPECT_EQ(refused.find("hunter2"), std::string::npos) << refused;
}

TEST(StoreFlagError, SettingsPointToTheConfigFileAndOtherArgumentsPass) {
  std::vector<std::string> args = {"walvault", "--s3-region", "x", "info"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  EXPECT_EQ(store_flag_error(static_cast<int>(argv.size()), argv.data()),
            "--s3-region: S3 settings are read from the config file only (s3-region = ...)");
  EXPECT_EQ(store_flag_error(1, argv.data()), "");
}

}  // namespace
}  // namespace walvault::cli
