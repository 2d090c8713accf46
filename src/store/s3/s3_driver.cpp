// The S3 driver of the location registry (registry.h): the "s3://" scheme,
// the config file's s3-* keys, and the opener that turns both, with the AWS_*
// environment, into an S3Store.
#include <memory>

#include "store/logging_store.h"
#include "store/registry.h"
#include "store/s3/s3_settings.h"
#include "store/s3/s3_store.h"

namespace walvault::store {

namespace {

constexpr std::string_view kS3Scheme = "s3://";
constexpr std::string_view kS3SettingPrefix = "s3-";

StoreSettingKey classify_s3_setting(std::string_view key) {
  if (is_s3_credential_key(key)) return StoreSettingKey::kCredential;
  if (is_s3_setting_key(key)) return StoreSettingKey::kSetting;
  return StoreSettingKey::kUnknown;
}

void check_s3_setting(std::string_view key, std::string_view value) {
  S3Settings scratch;
  set_s3_setting(scratch, key, value);
}

// Buckets are not created here: `create` concerns local directories only.
std::unique_ptr<ObjectStore> open_s3(const std::string& location, const OpenOptions& options) {
  S3Settings settings;
  for (const auto& [key, value] : options.settings.values()) {
    if (key.starts_with(kS3SettingPrefix)) set_s3_setting(settings, key, value);
  }
  return std::make_unique<S3Store>(s3_options_from_location(location, settings));
}

constexpr StoreDriver kS3Driver{.scheme = kS3Scheme,
                                .setting_prefix = kS3SettingPrefix,
                                .classify_setting = classify_s3_setting,
                                .check_setting = check_s3_setting,
                                .open = open_s3};

}  // namespace

const StoreDriver& s3_driver() { return kS3Driver; }

}  // namespace walvault::store
