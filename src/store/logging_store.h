// LoggingStore: a decorator that writes one debug-level log line (spdlog) per
// store operation: the store (describe(), never a credential), the
// operation, the object name or prefix, what came of it (created, already
// exists, not found, N bytes, N objects) or the error it threw, and how long
// it took. The result and any exception pass through unchanged.
//
// open_store() wraps every store it opens in one when debug logging is on at
// that moment (walvault --log-level debug), so a slow or failing repository
// can be watched operation by operation; at other levels nothing is wrapped
// and nothing costs anything.
#pragma once

#include <memory>

#include "store/store_wrapper.h"

namespace walvault::store {

class LoggingStore final : public StoreWrapper {
 public:
  using StoreWrapper::StoreWrapper;

  PutResult put(const std::string& name, ByteView data) override;
  std::optional<Bytes> get(const std::string& name, std::optional<Range> range) override;
  std::optional<ObjectInfo> stat(const std::string& name) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  std::vector<std::string> list_directories(const std::string& prefix) override;
  bool remove(const std::string& name) override;
  std::size_t remove_many(const std::vector<std::string>& names) override;
  std::size_t clean_leftovers(std::chrono::seconds min_age) override;
};

// `store` in a LoggingStore when spdlog's default logger logs debug lines,
// else `store` itself.
std::unique_ptr<ObjectStore> with_debug_logging(std::unique_ptr<ObjectStore> store);

}  // namespace walvault::store
