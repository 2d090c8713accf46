#include "store/s3/s3_settings.h"

#include <algorithm>
#include <charconv>

#include "core/error.h"

namespace walvault::store {

namespace {

// A decimal integer in [min, max], or std::nullopt.
std::optional<long> parse_integer(std::string_view text, long min, long max) {
  long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

[[noreturn]] void bad_value(std::string_view key, std::string_view value, std::string_view want) {
  const std::string shown =
      is_s3_credential_key(key) ? std::string() : " \"" + std::string(value.substr(0, 200)) + "\"";
  throw Error(ErrorCode::kUsage,
              "config file: " + std::string(key) + shown + ": expected " + std::string(want));
}

}  // namespace

bool is_s3_setting_key(std::string_view key) {
  return std::find(std::begin(kS3SettingKeys), std::end(kS3SettingKeys), key) !=
         std::end(kS3SettingKeys);
}

bool is_s3_credential_key(std::string_view key) {
  return key == "s3-access-key-id" || key == "s3-secret-access-key" || key == "s3-session-token";
}

void set_s3_setting(S3Settings& settings, std::string_view key, std::string_view value) {
  auto seconds = [&](long max) {
    const auto n = parse_integer(value, 1, max);
    if (!n) bad_value(key, value, "a whole number of seconds from 1 to " + std::to_string(max));
    return std::chrono::seconds(*n);
  };
  auto text = [&] {
    if (value.empty()) bad_value(key, value, "a value");
    return std::string(value);
  };
  if (key == "s3-endpoint") {
    settings.endpoint = text();  // checked by S3Store, which never echoes it
  } else if (key == "s3-region") {
    settings.region = text();
  } else if (key == "s3-uri-style") {
    if (value == "path") {
      settings.uri_style = UriStyle::kPath;
    } else if (value == "virtual-host") {
      settings.uri_style = UriStyle::kVirtualHost;
    } else {
      bad_value(key, value, "path or virtual-host");
    }
  } else if (key == "s3-ca-file") {
    settings.ca_file = text();
  } else if (key == "s3-verify-tls") {
    if (value != "true" && value != "false") bad_value(key, value, "true or false");
    settings.verify_tls = value == "true";
  } else if (key == "s3-request-timeout") {
    settings.request_timeout = seconds(86400);
  } else if (key == "s3-connect-timeout") {
    settings.connect_timeout = seconds(3600);
  } else if (key == "s3-parallel") {
    const auto n = parse_integer(value, 1, 64);
    if (!n) bad_value(key, value, "a number of parallel part uploads from 1 to 64");
    settings.parallel_parts = static_cast<int>(*n);
  } else if (key == "s3-access-key-id") {
    settings.access_key_id = text();
  } else if (key == "s3-secret-access-key") {
    settings.secret_access_key = text();
  } else if (key == "s3-session-token") {
    settings.session_token = text();
  } else {
    throw Error(ErrorCode::kUsage, "config file: unknown S3 setting " + std::string(key));
  }
}

}  // namespace walvault::store
