// ObjectStore: the one seam through which walvault touches repository storage.
//
// The repository above this interface assumes nothing but flat names: no
// directories, no rename, no append. Implementations: posix (a local
// directory, also a NAS mount), mem (tests), S3 (s3/s3_store.h), and
// decorators over any of them (store_wrapper.h: fault injection, logging).
// Every implementation passes the conformance suite in
// tests/unit/store/store_conformance.h.
//
// Locations: open_store() turns a repository location into a store through
// the location registry (registry.h): each driver claims a scheme prefix
// ("s3://", "mem:") and the config-file keys it reads ("s3-*"); anything
// without a scheme is a local directory. Nothing here knows any driver.
//
// Names are '/'-separated paths of components made of [A-Za-z0-9._-], never
// empty, never starting with '.', no leading or trailing '/'. A store rejects
// any other name with Error(kInternal): names come from code, not users.
// A name is never also the directory part of another ("a" beside "a/b"):
// stores with real directories cannot hold both, so the repository never
// makes such a pair.
//
// Threading: every method may be called concurrently from several threads and
// several processes on the same store.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.h"

namespace walvault::store {

struct ObjectInfo {
  std::string name;
  std::uint64_t size = 0;
  // When the object was written, UTC µs, as the store's clock saw it; 0 when
  // the store cannot tell. list() fills it in every store here (gc's grace
  // period reads it); stat() may leave it 0.
  std::int64_t mtime_us = 0;
};

struct Range {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;  // bytes past the object's end are simply not returned
};

enum class PutResult { kCreated, kAlreadyExists };

struct Capabilities {
  // put() is atomic create-only even between concurrent writers of the same
  // name (posix link(2), mem). S3 overwrites silently and declares false; the
  // repository then enforces its own rules above the store.
  bool exclusive_create = true;
  // Free/total bytes can be asked of the store (local file systems).
  bool reports_space = false;
};

struct SpaceInfo {
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Creates `name` holding `data`. When `name` exists already it is left
  // untouched and kAlreadyExists is returned, whatever its content. Returns
  // only once the object is durable. Throws Error(kIo) on failure, leaving no
  // partial object under `name`.
  virtual PutResult put(const std::string& name, ByteView data) = 0;

  // The object's bytes, or the requested range of them; std::nullopt when it
  // does not exist. Throws Error(kIo) on failure.
  virtual std::optional<Bytes> get(const std::string& name,
                                   std::optional<Range> range = std::nullopt) = 0;

  // Size of the object, std::nullopt when it does not exist.
  virtual std::optional<ObjectInfo> stat(const std::string& name) = 0;

  // Every object whose name starts with `prefix` (a plain string prefix, not
  // only at '/' boundaries), sorted by name. Temp files of in-flight puts
  // are never listed.
  virtual std::vector<ObjectInfo> list(const std::string& prefix) = 0;

  // The distinct next components below `prefix` (which ends in '/') that
  // lead to at least one object deeper down: for objects "a/x/1", "a/x/2"
  // and "a/y/1", list_directories("a/") is {"x", "y"}, sorted. Objects
  // directly below `prefix` are not reported. On a store that can
  // list with a delimiter (S3) this costs one request per 1,000 directories
  // instead of one per 1,000 objects; the default derives it from list(). A
  // store with real directories may also report one left empty.
  virtual std::vector<std::string> list_directories(const std::string& prefix);

  // Removes the object; false when it did not exist.
  virtual bool remove(const std::string& name) = 0;

  // Removes every object of `names` (names that do not exist are skipped, a
  // name given twice is removed once) and returns how many were removed: the
  // number of distinct names that existed, where the store can tell (posix,
  // mem: the default below, remove() for each name). A store that cannot tell
  // counts more, at most the number of distinct names: S3's DeleteObjects
  // reports a missing key as deleted. So the result is only for messages.
  // Every name is checked first (Error(kInternal) before anything is
  // removed). Throws Error(kIo) naming the first object that could not be
  // removed; the others may or may not have been removed then. Stores with a
  // batch operation override this (S3: 1000 names a request).
  virtual std::size_t remove_many(const std::vector<std::string>& names);

  // Removes what interrupted writes left behind, once at least `min_age` old
  // (a write may still be in progress before that): posix temp files, S3
  // incomplete multipart uploads. Returns how many; gc calls it. Default: none.
  virtual std::size_t clean_leftovers(std::chrono::seconds /*min_age*/) { return 0; }

  virtual Capabilities capabilities() const = 0;
  virtual std::optional<SpaceInfo> space() { return std::nullopt; }

  // Human-readable location for messages, e.g. "/var/lib/walvault". Never
  // contains credentials.
  virtual std::string describe() const = 0;
};

// True when `name` is a valid object name (see above).
bool is_valid_object_name(const std::string& name);

// Throws Error(kInternal) naming `name` unless it is valid. Every store calls
// it before touching anything, so all of them reject the same names the same way.
void require_valid_object_name(const std::string& name);

// What a repository location is, by its form alone (no I/O).
enum class LocationKind {
  kLocal,        // a directory path: no registered scheme (the posix store)
  kRegistered,   // starts with a registered scheme: "s3://...", "mem:"
  kUnsupported,  // "<scheme>://..." that no driver takes
};

LocationKind location_kind(std::string_view location);

// True for a directory path (LocationKind::kLocal): what the CLI resolves
// against the working directory and checks with access(2) before opening.
bool is_local_location(std::string_view location);

// Throws Error(kUsage, "repository location <redacted>: scheme '<s>' is not
// supported") for LocationKind::kUnsupported; does nothing otherwise.
void require_supported_location(std::string_view location);

// `location` as it may appear in a message or a log line. A location never
// carries a secret there: a URL-form location ("<scheme>://...") shows
// "***" for everything up to its last '@' (user info, e.g.
// "s3://KEY:SECRET@bucket", where a secret may itself hold '/', '?' or '#')
// and "?***" for a query or fragment after it. Paths and "mem:" are returned
// unchanged (a directory name is not a secret, and may hold '@').
std::string redact_location(std::string_view location);

// How a config-file key relates to the store drivers' settings.
enum class StoreSettingKey {
  kNone,        // no driver's key space: not a store setting
  kUnknown,     // in a driver's key space ("s3-*") but no such key: an error
  kSetting,     // a driver's setting ("s3-endpoint")
  kCredential,  // a driver's setting that is a credential: never echoed,
                // never accepted as a command-line flag ("s3-secret-access-key")
};

StoreSettingKey classify_store_setting(std::string_view key);

// The drivers' settings from the config file ("s3-endpoint = ..."), checked
// as they are set and handed to every open_store() of a run.
class StoreSettings {
 public:
  // Checks `value` with the driver that owns `key` and keeps it; a later
  // value for the same key replaces the earlier one. Throws Error(kUsage)
  // naming the key for a key no driver knows or a malformed value (the value
  // is echoed only when the key is not a credential).
  void set(std::string_view key, std::string_view value);

  // Every key set, with its value, in the order first set.
  const std::vector<std::pair<std::string, std::string>>& values() const { return values_; }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

struct OpenOptions {
  // Local directories: create it (and its parents) when missing; otherwise it
  // must exist (Error(kIo)). Other drivers ignore it: a bucket is never made.
  bool create = false;
  // Read by the driver that owns them; the AWS_* variables override the s3-*
  // ones (s3/s3_settings.h).
  StoreSettings settings;
};

// Opens the store `location` names: a registered scheme's driver ("mem:" a
// fresh in-memory store, "s3://bucket[/prefix]" the S3 store) or else the
// directory at that path. Throws Error(kUsage) for a malformed or
// unsupported location (the message carries redact_location() only), and
// what the driver throws (S3: kUsage without credentials; posix: kIo for a
// missing directory unless `create`). When debug logging is on at the time of
// the call, the store comes wrapped in a LoggingStore (logging_store.h).
std::unique_ptr<ObjectStore> open_store(const std::string& location,
                                        const OpenOptions& options = {});

}  // namespace walvault::store
