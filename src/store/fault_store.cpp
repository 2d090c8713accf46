#include "store/fault_store.h"

#include "core/error.h"

namespace walvault::store {

FaultStore::FaultStore(std::shared_ptr<ObjectStore> inner, FaultPlan plan)
    : StoreWrapper(std::move(inner)), plan_(plan) {}

// Names are checked first so that a bad name is the same kInternal bug with
// or without a fault plan.
PutResult FaultStore::put(const std::string& name, ByteView data) {
  require_valid_object_name(name);
  const std::uint64_t n = ++puts_;
  if (!plan_.fail_puts_under.empty() && name.starts_with(plan_.fail_puts_under))
    throw Error(ErrorCode::kIo,
                "put " + name + ": injected I/O error (under " + plan_.fail_puts_under + ")");
  if (plan_.fail_puts_from != 0 && n >= plan_.fail_puts_from) {
    throw Error(ErrorCode::kIo,
                "put " + name + ": injected I/O error (put #" + std::to_string(n) + ")");
  }
  // Like a disk, the budget refuses the put that does not fit, and a refused
  // put takes none of it; smaller puts may still fit afterwards. Bytes handed
  // to the inner store count even when it answers kAlreadyExists, as a posix
  // put writes its temp file before it learns that.
  std::uint64_t used = bytes_.load();
  do {
    if (data.size() > plan_.put_byte_budget || used > plan_.put_byte_budget - data.size()) {
      throw Error(ErrorCode::kIo, "put " + name + ": injected: No space left on device");
    }
  } while (!bytes_.compare_exchange_weak(used, used + data.size()));
  return StoreWrapper::put(name, data);
}

std::optional<Bytes> FaultStore::get(const std::string& name, std::optional<Range> range) {
  require_valid_object_name(name);
  if (plan_.fail_gets) throw Error(ErrorCode::kIo, "get " + name + ": injected I/O error");
  return StoreWrapper::get(name, range);
}

}  // namespace walvault::store
