// An in-memory ObjectStore for tests: same contract as posix, nothing durable.
#pragma once

#include <map>
#include <mutex>

#include "store/object_store.h"

namespace walvault::store {

class MemStore final : public ObjectStore {
 public:
  PutResult put(const std::string& name, ByteView data) override;
  std::optional<Bytes> get(const std::string& name, std::optional<Range> range) override;
  std::optional<ObjectInfo> stat(const std::string& name) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  bool remove(const std::string& name) override;
  Capabilities capabilities() const override { return {true, false}; }
  std::string describe() const override { return "mem:"; }

  // Test access: overwrite an object's bytes in place (to simulate corruption).
  void corrupt(const std::string& name, Bytes bytes);
  // Test access: pretend the object was written at `mtime_us` (ageing it past a grace period).
  void set_mtime(const std::string& name, std::int64_t mtime_us);

 private:
  std::mutex mu_;
  struct Object {
    Bytes data;
    std::int64_t mtime_us = 0;
  };
  std::map<std::string, Object> objects_;
};

}  // namespace walvault::store
