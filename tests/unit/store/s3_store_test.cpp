// S3Store without a server: location parsing, configuration from the AWS
// environment, and refusal of bad settings. The store against a real S3
// server is tested in tests/s3/.
#include "store/s3/s3_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <functional>
#include <string_view>
#include <vector>

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

// The message of the Error(kUsage) that set_s3_setting throws, or "" when it accepts.
std::string setting_error(std::string_view key, std::string_view value) {
  S3Settings settings;
  try {
    set_s3_setting(settings, key, value);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUsage) << e.what();
    return e.what();
  }
  return "";
}

TEST(S3SettingsTest, EveryConfigKeyIsParsed) {
  S3Settings settings;
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"s3-endpoint", "https://minio.internal:9000"},
           {"s3-region", "eu-west-3"},
           {"s3-uri-style", "virtual-host"},
           {"s3-ca-file", "/etc/ssl/minio.pem"},
           {"s3-verify-tls", "false"},
           {"s3-request-timeout", "90"},
           {"s3-connect-timeout", "3"},
           {"s3-parallel", "16"},
           {"s3-access-key-id", "AKID"},
           {"s3-secret-access-key", "SECRET/with+chars"},
           {"s3-session-token", "TOKEN"}}) {
    SCOPED_TRACE(key);
    EXPECT_TRUE(is_s3_setting_key(key));
    set_s3_setting(settings, key, value);
  }
  EXPECT_EQ(settings.endpoint, "https://minio.internal:9000");
  EXPECT_EQ(settings.region, "eu-west-3");
  EXPECT_EQ(settings.uri_style, UriStyle::kVirtualHost);
  EXPECT_EQ(settings.ca_file, "/etc/ssl/minio.pem");
  EXPECT_EQ(settings.verify_tls, false);
  EXPECT_EQ(settings.request_timeout, std::chrono::seconds(90));
  EXPECT_EQ(settings.connect_timeout, std::chrono::seconds(3));
  EXPECT_EQ(settings.parallel_parts, 16);
  EXPECT_EQ(settings.access_key_id, "AKID");
  EXPECT_EQ(settings.secret_access_key, "SECRET/with+chars");
  EXPECT_EQ(settings.session_token, "TOKEN");
  set_s3_setting(settings, "s3-uri-style", "path");
  set_s3_setting(settings, "s3-verify-tls", "true");
  EXPECT_EQ(settings.uri_style, UriStyle::kPath);
  EXPECT_EQ(settings.verify_tls, true);
  EXPECT_TRUE(is_s3_credential_key("s3-secret-access-key"));
  EXPECT_FALSE(is_s3_credential_key("s3-region"));
  EXPECT_FALSE(is_s3_setting_key("s3-secret"));
}

TEST(S3SettingsTest, BadValuesAreUsageErrorsNamingTheKeyButNoCredential) {
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"s3-uri-style", "sideways"},
                                                        {"s3-verify-tls", "yes"},
                                                        {"s3-verify-tls", "TRUE"},
                                                        {"s3-request-timeout", "0"},
                                                        {"s3-request-timeout", "10s"},
                                                        {"s3-request-timeout", "86401"},
                                                        {"s3-connect-timeout", "-1"},
                                                        {"s3-connect-timeout", ""},
                                                        {"s3-parallel", "0"},
                                                        {"s3-parallel", "65"},
                                                        {"s3-parallel", "four"},
                                                        {"s3-endpoint", ""},
                                                        {"s3-region", ""}}) {
    SCOPED_TRACE(key + " = " + value);
    const std::string message = setting_error(key, value);
    EXPECT_NE(message.find(key), std::string::npos) << message;
  }
  EXPECT_NE(setting_error("s3-bucket", "x").find("unknown S3 setting s3-bucket"),
            std::string::npos);
  // An empty credential is refused without echoing anything of it.
  for (const std::string key : {"s3-access-key-id", "s3-secret-access-key", "s3-session-token"}) {
    const std::string message = setting_error(key, "");
    EXPECT_NE(message.find(key), std::string::npos) << message;
    EXPECT_EQ(message.find('"'), std::string::npos) << message;
  }
}

TEST(S3SettingsTest, TheConfigFileFillsTheOptionsUnderTheEnvironment) {
  S3Settings file;
  file.endpoint = "http://127.0.0.1:7480";
  file.region = "eu-north-1";
  file.uri_style = UriStyle::kVirtualHost;
  file.ca_file = "/etc/ca.pem";
  file.verify_tls = false;
  file.request_timeout = std::chrono::seconds(7);
  file.connect_timeout = std::chrono::seconds(2);
  file.parallel_parts = 9;
  file.access_key_id = "FILE-AKID";
  file.secret_access_key = "FILE-SECRET";
  file.session_token = "FILE-TOKEN";
  {
    AwsEnvironment env({});
    const S3Options options = s3_options_from_location("s3://bucket/p", file);
    EXPECT_EQ(options.endpoint, "http://127.0.0.1:7480");
    EXPECT_EQ(options.region, "eu-north-1");
    EXPECT_EQ(options.uri_style, UriStyle::kVirtualHost);
    EXPECT_EQ(options.ca_file, "/etc/ca.pem");
    EXPECT_FALSE(options.verify_tls);
    EXPECT_EQ(options.request_timeout, std::chrono::seconds(7));
    EXPECT_EQ(options.connect_timeout, std::chrono::seconds(2));
    EXPECT_EQ(options.parallel_parts, 9);
    EXPECT_EQ(options.access_key_id, "FILE-AKID");
    EXPECT_EQ(options.secret_access_key, "FILE-SECRET");
    EXPECT_EQ(options.session_token, "FILE-TOKEN");
    // open_store hands the config file's settings on: no AWS_* variable is set here.
    StoreSettings settings;
    settings.set("s3-endpoint", "http://127.0.0.1:7480");
    settings.set("s3-access-key-id", "FILE-AKID");
    settings.set("s3-secret-access-key", "FILE-SECRET");
    EXPECT_EQ(open_store("s3://bucket/p", {.settings = settings})->describe(), "s3://bucket/p");
    EXPECT_EQ(error_code_of([] { open_store("s3://bucket/p"); }), ErrorCode::kUsage);
  }
  {
    // The AWS variables win for credentials (as one set), region and endpoint.
    AwsEnvironment env({{"AWS_ACCESS_KEY_ID", "ENV-AKID"},
                        {"AWS_SECRET_ACCESS_KEY", "ENV-SECRET"},
                        {"AWS_DEFAULT_REGION", "us-west-2"},
                        {"AWS_ENDPOINT_URL", "http://127.0.0.1:9000"}});
    const S3Options options = s3_options_from_location("s3://bucket/p", file);
    EXPECT_EQ(options.access_key_id, "ENV-AKID");
    EXPECT_EQ(options.secret_access_key, "ENV-SECRET");
    EXPECT_EQ(options.session_token, "") << "the file's token belongs to the file's key";
    EXPECT_EQ(options.region, "us-west-2");
    EXPECT_EQ(options.endpoint, "http://127.0.0.1:9000");
    EXPECT_EQ(options.parallel_parts, 9) << "no AWS variable names this";
  }
  {
    // Half a key pair in the environment is an error, not a mix with the file.
    AwsEnvironment env({{"AWS_ACCESS_KEY_ID", "ENV-AKID"}});
    EXPECT_EQ(error_code_of([&] { S3Store(s3_options_from_location("s3://bucket", file)); }),
              ErrorCode::kUsage);
  }
}

TEST(S3OptionsTest, MultipartSettingsAreChecked) {
  AwsEnvironment env({{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", "SECRET"}});
  const S3Options base = s3_options_from_location("s3://bucket");
  // 16 MiB and the envelope's header room: a WAL segment is always one (conditional) PUT.
  EXPECT_EQ(base.multipart_threshold, (16u << 20) + (64u << 10));
  EXPECT_EQ(base.part_size, 8u << 20);
  EXPECT_EQ(base.parallel_parts, 4);
  for (const auto& change : std::vector<std::function<void(S3Options&)>>{
           [](S3Options& o) { o.part_size = (5u << 20) - 1; },
           [](S3Options& o) { o.part_size = (5ull << 30) + 1; },
           [](S3Options& o) { o.multipart_threshold = (5ull << 30) + 1; },
           [](S3Options& o) { o.parallel_parts = 0; },
           [](S3Options& o) { o.parallel_parts = 65; }}) {
    S3Options options = base;
    change(options);
    EXPECT_EQ(error_code_of([&] { S3Store store(options); }), ErrorCode::kUsage);
  }
  S3Options smallest = base;
  smallest.part_size = 5u << 20;
  smallest.multipart_threshold = 0;
  smallest.parallel_parts = 1;
  EXPECT_NO_THROW(S3Store store(smallest));
}

}  // namespace
}  // namespace walvault::store::testing
