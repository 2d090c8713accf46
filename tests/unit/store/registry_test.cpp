// The location registry (object_store.h, registry.h): which driver a location
// goes to, how a location is shown in messages, and the drivers' config-file
// settings. No network: the S3 store is only constructed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "store/object_store.h"
#include "store/registry.h"
#include "store_test_util.h"

namespace walvault::store::testing {
namespace {

// The message of the Error that `f` throws, with its code checked.
template <typename F>
std::string error_message(F&& f, ErrorCode want) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), want) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

// The AWS_* variables would override the settings under test.
class ScopedNoAwsEnvironment {
 public:
  ScopedNoAwsEnvironment() {
    for (const char* name : kNames) {
      if (const char* value = std::getenv(name)) saved_.emplace_back(name, value);
      ::unsetenv(name);
    }
  }
  ~ScopedNoAwsEnvironment() {
    for (const auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
  }

 private:
  static constexpr const char* kNames[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                           "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                                           "AWS_REGION",        "AWS_DEFAULT_REGION"};
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST(LocationKindTest, SchemesGoToTheirDriverAndEverythingElseIsADirectory) {
  EXPECT_EQ(location_kind("s3://bucket/prefix"), LocationKind::kRegistered);
  EXPECT_EQ(location_kind("mem:"), LocationKind::kRegistered);
  EXPECT_EQ(location_kind("/var/lib/walvault"), LocationKind::kLocal);
  EXPECT_EQ(location_kind("relative/dir"), LocationKind::kLocal);
  EXPECT_EQ(location_kind("dir@host"), LocationKind::kLocal);
  EXPECT_EQ(location_kind("gs://bucket"), LocationKind::kUnsupported);
  EXPECT_EQ(location_kind("S3://bucket"), LocationKind::kUnsupported);  // schemes are exact
  EXPECT_TRUE(is_local_location("/backups/main"));
  EXPECT_TRUE(is_local_location("backups"));
  EXPECT_FALSE(is_local_location("s3://bucket"));
  EXPECT_FALSE(is_local_location("mem:"));
  EXPECT_FALSE(is_local_location("sftp://host/dir"));
  EXPECT_EQ(driver_for_location("s3://b"), &s3_driver());
  EXPECT_EQ(driver_for_location("mem:"), &mem_driver());
  EXPECT_EQ(driver_for_location("/dir"), nullptr);
}

TEST(LocationKindTest, AnUnsupportedSchemeIsAUsageErrorNamingItWithoutSecrets) {
  EXPECT_NO_THROW(require_supported_location("s3://bucket"));
  EXPECT_NO_THROW(require_supported_location("/dir"));
  const std::string message = error_message(
      [] { require_supported_location("sftp://backup:hunter2@host/dir"); }, ErrorCode::kUsage);
  EXPECT_EQ(message, "repository location sftp://***@host/dir: scheme 'sftp' is not supported");
  // open_store refuses it the same way instead of making a directory of it.
  EXPECT_EQ(error_code_of([] { open_store("gs://bucket", {.create = true}); }), ErrorCode::kUsage);
}

TEST(RedactLocationTest, UserInfoQueryAndFragmentAreMasked) {
  EXPECT_EQ(redact_location("s3://bucket/prefix"), "s3://bucket/prefix");
  EXPECT_EQ(redact_location("s3://AKIAEXAMPLE:wJalr/XUtn+FEMI@bucket/p"), "s3://***@bucket/p");
  EXPECT_EQ(redact_location("s3://AKIA:se?cr#et@bucket"), "s3://***@bucket");
  EXPECT_EQ(redact_location("s3://bucket/p?secret_access_key=abc"), "s3://bucket/p?***");
  EXPECT_EQ(redact_location("s3://bucket#frag"), "s3://bucket?***");
  EXPECT_EQ(redact_location("https://user:pw@host:9000/x?token=1"), "https://***@host:9000/x?***");
  // Paths and mem: are not URLs: nothing in them is taken for a secret.
  EXPECT_EQ(redact_location("/srv/backup@site?/x"), "/srv/backup@site?/x");
  EXPECT_EQ(redact_location("mem:"), "mem:");
}

TEST(RedactLocationTest, AnS3LocationWithCredentialsIsRefusedWithoutEchoingThem) {
  ScopedNoAwsEnvironment no_aws;
  for (const std::string location : {"s3://AKIAEXAMPLE:topsecret/with/slash@bucket/prefix",
                                     "s3://bucket/prefix?topsecret", "s3://topsecret@bucket"}) {
    SCOPED_TRACE(location);
    const std::string message = error_message([&] { open_store(location); }, ErrorCode::kUsage);
    EXPECT_EQ(message.find("topsecret"), std::string::npos) << message;
    EXPECT_NE(message.find("s3://"), std::string::npos) << message;
  }
  const std::string message =
      error_message([] { open_store("mem:x://a:topsecret@b"); }, ErrorCode::kUsage);
  EXPECT_EQ(message.find("topsecret"), std::string::npos) << message;
}

TEST(StoreSettingsTest, KeysAreClassifiedByTheDriverThatOwnsThem) {
  EXPECT_EQ(classify_store_setting("s3-endpoint"), StoreSettingKey::kSetting);
  EXPECT_EQ(classify_store_setting("s3-parallel"), StoreSettingKey::kSetting);
  EXPECT_EQ(classify_store_setting("s3-secret-access-key"), StoreSettingKey::kCredential);
  EXPECT_EQ(classify_store_setting("s3-access-key-id"), StoreSettingKey::kCredential);
  EXPECT_EQ(classify_store_setting("s3-session-token"), StoreSettingKey::kCredential);
  EXPECT_EQ(classify_store_setting("s3-endpoit"), StoreSettingKey::kUnknown);
  EXPECT_EQ(classify_store_setting("repo"), StoreSettingKey::kNone);
  EXPECT_EQ(classify_store_setting("mem-x"), StoreSettingKey::kNone);
}

TEST(StoreSettingsTest, ValuesAreCheckedAsTheyAreSetAndNeverEchoedForCredentials) {
  StoreSettings settings;
  settings.set("s3-region", "eu-west-1");
  settings.set("s3-parallel", "8");
  settings.set("s3-region", "eu-central-1");  // the later value wins, in place
  EXPECT_EQ(settings.values(), (std::vector<std::pair<std::string, std::string>>{
                                   {"s3-region", "eu-central-1"}, {"s3-parallel", "8"}}));
  const std::string bad =
      error_message([&] { settings.set("s3-parallel", "65"); }, ErrorCode::kUsage);
  EXPECT_NE(bad.find("s3-parallel"), std::string::npos) << bad;
  EXPECT_NE(bad.find("65"), std::string::npos) << bad;
  const std::string unknown =
      error_message([&] { settings.set("s3-endpoit", "http://x"); }, ErrorCode::kUsage);
  EXPECT_NE(unknown.find("unknown S3 setting s3-endpoit"), std::string::npos) << unknown;
  const std::string secret =
      error_message([&] { settings.set("s3-secret-access-key", ""); }, ErrorCode::kUsage);
  EXPECT_NE(secret.find("s3-secret-access-key"), std::string::npos) << secret;
  const std::string foreign = error_message([&] { settings.set("repo", "/x"); }, ErrorCode::kUsage);
  EXPECT_NE(foreign.find("repo"), std::string::npos) << foreign;
  // A refused value leaves what was set before.
  EXPECT_EQ(settings.values().size(), 2u);
}

TEST(StoreSettingsTest, TheS3DriverOpensWithTheSettingsItIsGiven) {
  ScopedNoAwsEnvironment no_aws;
  EXPECT_EQ(error_code_of([] { open_store("s3://bucket/p"); }), ErrorCode::kUsage);  // no keys
  OpenOptions options;
  options.settings.set("s3-endpoint", "http://127.0.0.1:1");
  options.settings.set("s3-access-key-id", "AKIAEXAMPLE");
  options.settings.set("s3-secret-access-key", "secret");
  EXPECT_EQ(open_store("s3://bucket/p", options)->describe(), "s3://bucket/p");
  options.settings.set("s3-endpoint", "http://user:pw@127.0.0.1:1");
  const std::string message =
      error_message([&] { open_store("s3://bucket/p", options); }, ErrorCode::kUsage);
  EXPECT_EQ(message.find("pw"), std::string::npos) << message;
}

}  // namespace
}  // namespace walvault::store::testing
