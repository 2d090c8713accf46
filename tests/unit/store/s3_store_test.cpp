// S3Store without a server: location parsing, configuration from the AWS
// environment, and refusal of bad settings. The store against a real S3
// server is tested in tests/s3/.
#include "store/s3_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "store_test_util.h"

namespace walvault::store::testing {
namespace {

// Sets the AWS_* variables for one test and restores the previous values.
class AwsEnvironment {
 public:
  AwsEnvironment(std::initializer_list<std::pair<const char*, const char*>> values) {
    for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                             "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"}) {
      const char* old = ::getenv(name);
      saved_.emplace_back(name, old == nullptr ? std::nullopt : std::optional<std::string>(old));
      ::unsetenv(name);
    }
    for (const auto& [name, value] : values) ::setenv(name, value, 1);
  }
  ~AwsEnvironment() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name, value->c_str(), 1);
      } else {
        ::unsetenv(name);
      }
    }
  }
  AwsEnvironment(const AwsEnvironment&) = delete;
  AwsEnvironment& operator=(const AwsEnvironment&) = delete;

 private:
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

TEST(S3OptionsTest, LocationAndEnvironmentMakeTheOptions) {
  AwsEnvironment env({{"AWS_ACCESS_KEY_ID", "AKID"},
                      {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                      {"AWS_SESSION_TOKEN", "TOKEN"},
                      {"AWS_REGION", "eu-central-1"},
                      {"AWS_ENDPOINT_URL", "http://127.0.0.1:7480"}});
  const S3Options options = s3_options_from_location("s3://clinical-backups/prod/main/");
  EXPECT_EQ(options.bucket, "clinical-backups");
  EXPECT_EQ(options.prefix, "prod/main");
  EXPECT_EQ(options.access_key_id, "AKID");
  EXPECT_EQ(options.secret_access_key, "SECRET");
  EXPECT_EQ(options.session_token, "TOKEN");
  EXPECT_EQ(options.region, "eu-central-1");
  EXPECT_EQ(options.endpoint, "http://127.0.0.1:7480");
  EXPECT_TRUE(options.verify_tls);
  EXPECT_FALSE(options.uri_style.has_value());
  EXPECT_EQ(S3Store(options).describe(), "s3://clinical-backups/prod/main");
}

TEST(S3OptionsTest, DefaultsFollowTheAwsConventions) {
  AwsEnvironment env({{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", "SECRET"}});
  const S3Options options = s3_options_from_location("s3://bucket");
  EXPECT_EQ(options.prefix, "");
  EXPECT_EQ(options.region, "us-east-1");
  EXPECT_EQ(options.endpoint, "");
  EXPECT_EQ(S3Store(options).describe(), "s3://bucket");
  AwsEnvironment fallback({{"AWS_ACCESS_KEY_ID", "AKID"},
                           {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                           {"AWS_DEFAULT_REGION", "ap-south-1"}});
  EXPECT_EQ(s3_options_from_location("s3://bucket").region, "ap-south-1");
}

TEST(S3OptionsTest, OpenStoreRoutesTheS3Scheme) {
  AwsEnvironment env({{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", "SECRET"}});
  const auto store = open_store("s3://bucket/prefix");
  EXPECT_EQ(store->describe(), "s3://bucket/prefix");
  EXPECT_FALSE(store->capabilities().exclusive_create);
}

TEST(S3OptionsTest, BadSettingsAreUsageErrorsWithoutSecrets) {
  AwsEnvironment env({{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", "SECRET"}});
  for (const std::string location :
       {"s3://", "s3://ab", "s3://bad bucket/x", "s3://bucket/.hidden", "s3://bucket/a//b"}) {
    SCOPED_TRACE(location);
    EXPECT_EQ(error_code_of([&] { S3Store(s3_options_from_location(location)); }),
              ErrorCode::kUsage);
  }
  for (const std::string endpoint :
       {"127.0.0.1:7480", "ftp://host", "http://", "http://user:SECRET@host", "http://h/path"}) {
    SCOPED_TRACE(endpoint);
    S3Options options = s3_options_from_location("s3://bucket");
    options.endpoint = endpoint;
    try {
      S3Store store(options);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUsage);
      EXPECT_EQ(std::string(e.what()).find("SECRET"), std::string::npos) << e.what();
    }
  }
  AwsEnvironment none({});
  try {
    S3Store store(s3_options_from_location("s3://bucket"));
    ADD_FAILURE() << "a store without credentials was made";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("AWS_ACCESS_KEY_ID"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace walvault::store::testing
