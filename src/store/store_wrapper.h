// StoreWrapper: the base of every ObjectStore decorator. It forwards each
// ObjectStore method to the inner store unchanged, so a decorator overrides
// only what it changes (FaultStore: put and get; LoggingStore: every
// operation) and inherits the rest, including remove_many() and
// clean_leftovers(), which then reach the inner store's own versions (S3's
// batch delete, posix temp files).
//
// Ownership: the wrapper shares ownership of the inner store, which may also
// be used directly (tests look behind a FaultStore). Threading: as the inner
// store; the wrapper adds no state of its own.
#pragma once

#include <memory>

#include "store/object_store.h"

namespace walvault::store {

class StoreWrapper : public ObjectStore {
 public:
  // `inner` must not be null (Error(kInternal)).
  explicit StoreWrapper(std::shared_ptr<ObjectStore> inner);

  PutResult put(const std::string& name, ByteView data) override;
  std::optional<Bytes> get(const std::string& name, std::optional<Range> range) override;
  std::optional<ObjectInfo> stat(const std::string& name) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  std::vector<std::string> list_directories(const std::string& prefix) override;
  bool remove(const std::string& name) override;
  std::size_t remove_many(const std::vector<std::string>& names) override;
  std::size_t clean_leftovers(std::chrono::seconds min_age) override;
  Capabilities capabilities() const override;
  std::optional<SpaceInfo> space() override;
  std::string describe() const override;

 protected:
  ObjectStore& inner() const { return *inner_; }

 private:
  std::shared_ptr<ObjectStore> inner_;
};

}  // namespace walvault::store
