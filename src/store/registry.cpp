// The location registry and everything that reads a location's form:
// open_store(), location_kind(), redact_location() and StoreSettings
// (object_store.h), over the drivers listed here (registry.h).
#include "store/registry.h"

#include <algorithm>

#include "core/error.h"
#include "store/logging_store.h"
#include "store/posix_store.h"

namespace walvault::store {

namespace {

constexpr std::string_view kUrlSeparator = "://";

// The driver whose setting_prefix `key` starts with, or nullptr.
const StoreDriver* driver_for_setting(std::string_view key) {
  for (const StoreDriver* driver : store_drivers()) {
    if (!driver->setting_prefix.empty() && key.starts_with(driver->setting_prefix)) return driver;
  }
  return nullptr;
}

}  // namespace

std::span<const StoreDriver* const> store_drivers() {
  static const StoreDriver* const drivers[] = {&mem_driver(), &s3_driver()};
  return drivers;
}

const StoreDriver* driver_for_location(std::string_view location) {
  for (const StoreDriver* driver : store_drivers()) {
    if (location.starts_with(driver->scheme)) return driver;
  }
  return nullptr;
}

LocationKind location_kind(std::string_view location) {
  if (driver_for_location(location) != nullptr) return LocationKind::kRegistered;
  if (location.find(kUrlSeparator) != std::string_view::npos) return LocationKind::kUnsupported;
  return LocationKind::kLocal;
}

bool is_local_location(std::string_view location) {
  return location_kind(location) == LocationKind::kLocal;
}

void require_supported_location(std::string_view location) {
  if (location_kind(location) != LocationKind::kUnsupported) return;
  const std::string_view scheme = location.substr(0, location.find(kUrlSeparator));
  throw Error(ErrorCode::kUsage, "repository location " + redact_location(location) + ": scheme '" +
                                     std::string(scheme) + "' is not supported");
}

std::string redact_location(std::string_view location) {
  const auto separator = location.find(kUrlSeparator);
  if (separator == std::string_view::npos) return std::string(location);
  std::string out(location.substr(0, separator + kUrlSeparator.size()));
  std::string_view rest = location.substr(separator + kUrlSeparator.size());
  // The last '@', not the authority's: a secret may hold '/', '?' or '#'.
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    out += "***@";
    rest.remove_prefix(at + 1);
  }
  const auto query = rest.find_first_of("?#");
  out += rest.substr(0, query);
  if (query != std::string_view::npos) out += "?***";
  return out;
}

StoreSettingKey classify_store_setting(std::string_view key) {
  const StoreDriver* driver = driver_for_setting(key);
  return driver == nullptr ? StoreSettingKey::kNone : driver->classify_setting(key);
}

void StoreSettings::set(std::string_view key, std::string_view value) {
  const StoreDriver* driver = driver_for_setting(key);
  if (driver == nullptr) {
    throw Error(ErrorCode::kUsage, "config file: " + std::string(key) + " is not a store setting");
  }
  driver->check_setting(key, value);
  const auto same = std::find_if(values_.begin(), values_.end(),
                                 [&](const auto& entry) { return entry.first == key; });
  if (same != values_.end()) {
    same->second = value;
  } else {
    values_.emplace_back(key, value);
  }
}

std::unique_ptr<ObjectStore> open_store(const std::string& location, const OpenOptions& options) {
  require_supported_location(location);
  const StoreDriver* driver = driver_for_location(location);
  std::unique_ptr<ObjectStore> store;
  if (driver != nullptr) {
    store = driver->open(location, options);
  } else {
    store = std::make_unique<PosixStore>(location, options.create);
  }
  return with_debug_logging(std::move(store));
}

}  // namespace walvault::store
