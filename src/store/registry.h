// The location registry: what each storage driver tells open_store() and
// StoreSettings (object_store.h) about itself. A driver defines one
// StoreDriver next to its store (mem_store.cpp, s3/s3_driver.cpp) and
// registry.cpp lists it; nothing outside a driver's folder knows its scheme,
// its settings or its store type. Private to src/store.
//
// The list is fixed at build time, not filled by static initialisers: a
// driver's object file in the static library would be dropped by the linker
// when nothing else references it, and its scheme would silently open as a
// local directory (docs/decisions.md, "The store seam").
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "store/object_store.h"

namespace walvault::store {

struct StoreDriver {
  // Locations starting with this are the driver's: "s3://", "mem:". The
  // opener receives the whole location.
  std::string_view scheme;
  // Config-file keys starting with this are the driver's ("s3-"); "" for none.
  std::string_view setting_prefix;
  // Within setting_prefix: kUnknown, kSetting or kCredential. Null when the
  // driver has no settings.
  StoreSettingKey (*classify_setting)(std::string_view key) = nullptr;
  // Throws Error(kUsage) naming `key` for a malformed value (never echoing a
  // credential) or an unknown key. Null when the driver has no settings.
  void (*check_setting)(std::string_view key, std::string_view value) = nullptr;
  // Opens the store at `location` (which starts with `scheme`).
  std::unique_ptr<ObjectStore> (*open)(const std::string& location,
                                       const OpenOptions& options) = nullptr;
};

// Each built-in driver, defined in its own folder.
const StoreDriver& mem_driver();
const StoreDriver& s3_driver();

// Every registered driver, in the order their schemes are tried.
std::span<const StoreDriver* const> store_drivers();

// The driver whose scheme `location` starts with, or nullptr.
const StoreDriver* driver_for_location(std::string_view location);

}  // namespace walvault::store
