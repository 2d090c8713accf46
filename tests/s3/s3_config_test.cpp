// S3 settings in the config file, through the walvault binary: the s3-* keys
// reach the store, the AWS_* variables override them, and none of them is
// accepted as a command-line flag (credentials there would be readable by
// every local user).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "integration/walvault_cli.h"
#include "s3/s3_test_env.h"

namespace walvault::testing {
namespace {

// The environment of a walvault run that has no AWS_* settings of its own
// (empty counts as unset), whatever the test process inherited.
std::map<std::string, std::string> without_aws(std::map<std::string, std::string> env = {}) {
  for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                           "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"}) {
    env.emplace(name, "");
  }
  return env;
}

// Writes `text` to `path` for the test user only, as a config file holding
// credentials should be.
void write_private(const std::string& path, const std::string& text) {
  write_text(path, text);
  give_to_test_user(path);
  ::chmod(path.c_str(), 0600);
}

TEST(S3Config, CredentialsAndSettingsAreNotCommandLineFlags) {
  const std::string secret = "cmdline-secret-0000000000000000000001";
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--s3-secret-access-key", secret, "--repo", "s3://bucket", "repo", "info"},
           {"--repo", "s3://bucket", "--s3-secret-access-key=" + secret, "repo", "info"},
           {"--s3-access-key-id", secret, "--repo", "s3://bucket", "repo", "info"},
           {"--repo", "s3://bucket", "repo", "info", "--s3-session-token=" + secret}}) {
    SCOPED_TRACE(args[0] + " " + args[2]);
    const auto result = walvault(args, without_aws());
    EXPECT_EQ(result.status, 2) << result.err;
    EXPECT_NE(result.err.find("credentials are not accepted on the command line"),
              std::string::npos)
        << result.err;
    EXPECT_EQ(result.err.find(secret), std::string::npos) << result.err;
  }
  for (const std::string flag : {"--s3-region", "--s3-endpoint", "--s3-parallel", "--s3-secret"}) {
    const auto result = walvault({flag, "x", "--repo", "s3://bucket", "repo", "info"});
    EXPECT_EQ(result.status, 2) << flag << ": " << result.err;
    EXPECT_NE(result.err.find(flag), std::string::npos) << result.err;
  }
}

TEST(S3Config, BadS3KeysInTheConfigFileAreUsageErrors) {
  TempDir work("wv-s3-config");
  const std::string config = work.sub("walvault.conf");
  for (const auto& [text, expected] : std::vector<std::pair<std::string, std::string>>{
           {"s3-uri-style = sideways\n",
            "s3-uri-style \"sideways\": expected path or virtual-host"},
           {"s3-parallel = 100\n", "s3-parallel"},
           {"s3-region = a, b\n", "s3-region takes one value"},
           {"s3-regoin = eu-west-1\n", "unknown S3 setting s3-regoin"},
           {"[archive-get]\ns3-region = eu-west-1\n", "s3-region belongs before the first"},
           {"s3-secret-access-key =\n", "s3-secret-access-key"}}) {
    SCOPED_TRACE(text);
    write_private(config, "repo = s3://walvault-none/x\n" + text);
    const auto result = walvault({"--config", config, "repo", "info"}, without_aws());
    EXPECT_EQ(result.status, 2) << result.err;
    EXPECT_NE(result.err.find(expected), std::string::npos) << result.err;
  }
}

TEST(S3Config, ConfigFileSettingsReachTheStoreUnderTheAwsEnvironment) {
  const auto server = store::testing::s3_test_server();
  if (!server) GTEST_SKIP() << "no S3 test server configured (WALVAULT_TEST_S3_*)";
  const std::string bucket = store::testing::make_s3_test_bucket(*server);
  TempDir work("wv-s3-config");
  const std::string config = work.sub("walvault.conf");
  // Everything the store needs comes from the file: no AWS_* variable is set.
  write_private(config, "repo = s3://" + bucket + "/from-config\n" +
                            "s3-endpoint = " + server->endpoint + "\n" +
                            "s3-region = us-east-1\n"
                            "s3-uri-style = path\n"
                            "s3-verify-tls = true\n"
                            "s3-request-timeout = 30\n"
                            "s3-connect-timeout = 5\n"
                            "s3-parallel = 2\n"
                            "s3-access-key-id = " +
                            server->access_key + "\n" + "s3-secret-access-key = \"" +
                            server->secret_key + "\"   ; quoted, with a comment\n");
  const auto init = walvault({"--config", config, "repo", "init"}, without_aws());
  ASSERT_EQ(init.status, 0) << init.err;
  EXPECT_NE(init.out.find("s3://" + bucket + "/from-config"), std::string::npos) << init.out;
  const auto info = walvault({"--config", config, "repo", "info"}, without_aws());
  EXPECT_EQ(info.status, 0) << info.err;
  // The AWS variables override the file: a wrong key pair is an
  // authentication error (exit 7), an endpoint where nothing listens an I/O
  // error (exit 10).
  const auto denied = walvault({"--config", config, "repo", "info"},
                               without_aws({{"AWS_ACCESS_KEY_ID", server->access_key},
                                            {"AWS_SECRET_ACCESS_KEY", "wrong-secret-0000000001"}}));
  EXPECT_EQ(denied.status, 7) << denied.err;
  const auto unreachable = walvault({"--config", config, "repo", "info"},
                                    without_aws({{"AWS_ENDPOINT_URL", "http://127.0.0.1:1"}}));
  EXPECT_EQ(unreachable.status, 10) << unreachable.err;
  EXPECT_EQ(unreachable.err.find(server->secret_key), std::string::npos) << unreachable.err;
  // Without the file's credentials nothing else supplies them.
  write_private(config,
                "repo = s3://" + bucket + "/from-config\ns3-endpoint = " + server->endpoint + "\n");
  const auto none = walvault({"--config", config, "repo", "info"}, without_aws());
  EXPECT_EQ(none.status, 2) << none.err;
  EXPECT_NE(none.err.find("s3-secret-access-key"), std::string::npos) << none.err;
}

}  // namespace
}  // namespace walvault::testing
