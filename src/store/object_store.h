// ObjectStore: the one seam through which walvault touches repository storage.
//
// The repository above this interface assumes nothing but flat names: no
// directories, no rename, no append. Implementations: posix (a local
// directory, also a NAS mount), mem (tests), S3 (s3_store.h), and decorators
// such as the fault-injecting store. Every implementation passes the
// conformance suite in tests/unit/store/store_conformance.h.
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
#include <vector>

#include "core/bytes.h"
#include "store/s3/s3_settings.h"

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

// Opens the store a repository location names: "mem:" (a fresh in-memory
// store), "s3://bucket[/prefix]" (S3Store, configured from `s3` — the config
// file's s3-* keys — and the AWS_* environment, which overrides them; the
// bucket must exist) or a local path. The posix directory must exist unless
// `create`.
std::unique_ptr<ObjectStore> open_store(const std::string& location, bool create = false,
                                        const S3Settings& s3 = {});

}  // namespace walvault::store
