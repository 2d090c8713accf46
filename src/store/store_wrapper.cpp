#include "store/store_wrapper.h"

#include "core/error.h"

namespace walvault::store {

StoreWrapper::StoreWrapper(std::shared_ptr<ObjectStore> inner) : inner_(std::move(inner)) {
  if (!inner_) throw Error(ErrorCode::kInternal, "StoreWrapper: no inner store");
}

PutResult StoreWrapper::put(const std::string& name, ByteView data) {
  return inner_->put(name, data);
}

std::optional<Bytes> StoreWrapper::get(const std::string& name, std::optional<Range> range) {
  return inner_->get(name, range);
}

std::optional<ObjectInfo> StoreWrapper::stat(const std::string& name) { return inner_->stat(name); }

std::vector<ObjectInfo> StoreWrapper::list(const std::string& prefix) {
  return inner_->list(prefix);
}

std::vector<std::string> StoreWrapper::list_directories(const std::string& prefix) {
  return inner_->list_directories(prefix);
}

bool StoreWrapper::remove(const std::string& name) { return inner_->remove(name); }

std::size_t StoreWrapper::remove_many(const std::vector<std::string>& names) {
  return inner_->remove_many(names);
}

std::size_t StoreWrapper::clean_leftovers(std::chrono::seconds min_age) {
  return inner_->clean_leftovers(min_age);
}

Capabilities StoreWrapper::capabilities() const { return inner_->capabilities(); }

std::optional<SpaceInfo> StoreWrapper::space() { return inner_->space(); }

std::string StoreWrapper::describe() const { return inner_->describe(); }

}  // namespace walvault::store
