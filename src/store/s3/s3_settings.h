// S3Settings: the S3 settings of walvault's configuration file (the s3-* keys).
// The CLI hands them to open_store() as StoreSettings (object_store.h); the
// S3 driver (s3_driver.cpp) checks and parses them into this struct.
//
// The s3-* keys are read from the config file only: never from command-line
// flags (credentials would be visible to every local user in ps, and a
// restored cluster's restore_command gets them through the same --config), and
// not from WALVAULT_* variables. The AWS_* variables override the file for
// what they name (s3_options_from_location in s3_store.h):
//   credentials  AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), as one set
//   region       AWS_REGION, else AWS_DEFAULT_REGION
//   endpoint     AWS_ENDPOINT_URL
// An unset field leaves S3Options' default in force.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace walvault::store {

enum class UriStyle {
  kPath,         // https://endpoint/bucket/key (Ceph, MinIO, most custom endpoints)
  kVirtualHost,  // https://bucket.endpoint/key (AWS)
};

struct S3Settings {
  std::optional<std::string> endpoint;                  // s3-endpoint = http(s)://host[:port]
  std::optional<std::string> region;                    // s3-region
  std::optional<UriStyle> uri_style;                    // s3-uri-style = path | virtual-host
  std::optional<std::string> ca_file;                   // s3-ca-file = PEM bundle
  std::optional<bool> verify_tls;                       // s3-verify-tls = true | false
  std::optional<std::chrono::seconds> request_timeout;  // s3-request-timeout (1-86400)
  std::optional<std::chrono::seconds> connect_timeout;  // s3-connect-timeout (1-3600)
  std::optional<int> parallel_parts;                    // s3-parallel (1-64)
  std::optional<std::string> access_key_id;             // s3-access-key-id
  std::optional<std::string> secret_access_key;         // s3-secret-access-key
  std::optional<std::string> session_token;             // s3-session-token
};

// Every key set_s3_setting() accepts.
inline constexpr std::string_view kS3SettingKeys[] = {
    "s3-endpoint",          "s3-region",        "s3-uri-style",
    "s3-ca-file",           "s3-verify-tls",    "s3-request-timeout",
    "s3-connect-timeout",   "s3-parallel",      "s3-access-key-id",
    "s3-secret-access-key", "s3-session-token",
};

bool is_s3_setting_key(std::string_view key);
// The keys whose values are credentials: never echoed, never accepted as flags.
bool is_s3_credential_key(std::string_view key);

// Parses one `key = value` of the config file into `settings`. Throws
// Error(kUsage) naming the key for an unknown key or a malformed value (the
// value itself is echoed only for keys that are not credentials).
void set_s3_setting(S3Settings& settings, std::string_view key, std::string_view value);

}  // namespace walvault::store
