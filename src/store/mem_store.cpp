#include "store/mem_store.h"

#include "core/error.h"
#include "core/time_util.h"
#include "store/registry.h"

namespace walvault::store {

namespace {

// The bytes of `data` that `range` selects; the whole object without a range.
Bytes slice(const Bytes& data, const std::optional<Range>& range) {
  if (!range) return data;
  if (range->offset >= data.size()) return {};
  const std::uint64_t length = std::min<std::uint64_t>(range->length, data.size() - range->offset);
  const auto first = data.begin() + static_cast<std::ptrdiff_t>(range->offset);
  return Bytes(first, first + static_cast<std::ptrdiff_t>(length));
}

std::unique_ptr<ObjectStore> open_mem(const std::string& location, const OpenOptions& /*options*/) {
  if (location != "mem:") {
    throw Error(ErrorCode::kUsage,
                "store location " + redact_location(location) + ": \"mem:\" takes no path");
  }
  return std::make_unique<MemStore>();
}

// "mem:": a fresh, empty store on every open (tests).
constexpr StoreDriver kMemDriver{.scheme = "mem:", .open = open_mem};

}  // namespace

const StoreDriver& mem_driver() { return kMemDriver; }

PutResult MemStore::put(const std::string& name, ByteView data) {
  require_valid_object_name(name);
  std::lock_guard lock(mu_);
  const bool created =
      objects_.try_emplace(name, Object{Bytes(data.begin(), data.end()), now_unix_us()}).second;
  return created ? PutResult::kCreated : PutResult::kAlreadyExists;
}

std::optional<Bytes> MemStore::get(const std::string& name, std::optional<Range> range) {
  require_valid_object_name(name);
  std::lock_guard lock(mu_);
  auto it = objects_.find(name);
  if (it == objects_.end()) return std::nullopt;
  return slice(it->second.data, range);
}

std::optional<ObjectInfo> MemStore::stat(const std::string& name) {
  require_valid_object_name(name);
  std::lock_guard lock(mu_);
  auto it = objects_.find(name);
  if (it == objects_.end()) return std::nullopt;
  return ObjectInfo{name, it->second.data.size(), it->second.mtime_us};
}

std::vector<ObjectInfo> MemStore::list(const std::string& prefix) {
  std::vector<ObjectInfo> out;
  std::lock_guard lock(mu_);
  for (auto it = objects_.lower_bound(prefix);
       it != objects_.end() && it->first.starts_with(prefix); ++it) {
    out.push_back({it->first, it->second.data.size(), it->second.mtime_us});
  }
  return out;
}

bool MemStore::remove(const std::string& name) {
  require_valid_object_name(name);
  std::lock_guard lock(mu_);
  return objects_.erase(name) > 0;
}

void MemStore::corrupt(const std::string& name, Bytes bytes) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(name);
  // A test that corrupts a missing object is not testing what it thinks it is.
  if (it == objects_.end()) throw Error(ErrorCode::kInternal, "corrupt: no object " + name);
  it->second.data = std::move(bytes);
}

void MemStore::set_mtime(const std::string& name, std::int64_t mtime_us) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(name);
  if (it == objects_.end()) throw Error(ErrorCode::kInternal, "set_mtime: no object " + name);
  it->second.mtime_us = mtime_us;
}

}  // namespace walvault::store
