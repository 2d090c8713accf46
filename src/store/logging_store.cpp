#include "store/logging_store.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <string>

namespace walvault::store {

namespace {

std::string outcome(PutResult result) {
  return result == PutResult::kCreated ? "created" : "already exists";
}
std::string outcome(const std::optional<Bytes>& bytes) {
  return bytes ? std::to_string(bytes->size()) + " bytes" : "not found";
}
std::string outcome(const std::optional<ObjectInfo>& info) {
  return info ? std::to_string(info->size) + " bytes" : "not found";
}
std::string outcome(const std::vector<ObjectInfo>& objects) {
  return std::to_string(objects.size()) + " objects";
}
std::string outcome(const std::vector<std::string>& directories) {
  return std::to_string(directories.size()) + " directories";
}
std::string outcome(bool removed) { return removed ? "removed" : "not found"; }
std::string outcome(std::size_t count) { return std::to_string(count) + " removed"; }

// Runs `operation`, then logs `what` with its outcome (or its exception,
// which is rethrown) and its duration.
template <typename Operation>
auto logged(const ObjectStore& store, const std::string& what, Operation&& operation)
    -> decltype(operation()) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed_ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  };
  try {
    auto result = operation();
    spdlog::debug("store {} {} = {} ({:.1f} ms)", store.describe(), what, outcome(result),
                  elapsed_ms());
    return result;
  } catch (const std::exception& e) {
    spdlog::debug("store {} {} failed ({:.1f} ms): {}", store.describe(), what, elapsed_ms(),
                  e.what());
    throw;
  }
}

}  // namespace

PutResult LoggingStore::put(const std::string& name, ByteView data) {
  return logged(*this, "put " + name + " (" + std::to_string(data.size()) + " bytes)",
                [&] { return StoreWrapper::put(name, data); });
}

std::optional<Bytes> LoggingStore::get(const std::string& name, std::optional<Range> range) {
  const std::string what =
      "get " + name +
      (range ? " [" + std::to_string(range->offset) + " +" + std::to_string(range->length) + "]"
             : "");
  return logged(*this, what, [&] { return StoreWrapper::get(name, range); });
}

std::optional<ObjectInfo> LoggingStore::stat(const std::string& name) {
  return logged(*this, "stat " + name, [&] { return StoreWrapper::stat(name); });
}

std::vector<ObjectInfo> LoggingStore::list(const std::string& prefix) {
  return logged(*this, "list " + prefix + "*", [&] { return StoreWrapper::list(prefix); });
}

std::vector<std::string> LoggingStore::list_directories(const std::string& prefix) {
  return logged(*this, "list directories " + prefix + "*",
                [&] { return StoreWrapper::list_directories(prefix); });
}

bool LoggingStore::remove(const std::string& name) {
  return logged(*this, "remove " + name, [&] { return StoreWrapper::remove(name); });
}

std::size_t LoggingStore::remove_many(const std::vector<std::string>& names) {
  return logged(*this, "remove " + std::to_string(names.size()) + " names",
                [&] { return StoreWrapper::remove_many(names); });
}

std::size_t LoggingStore::clean_leftovers(std::chrono::seconds min_age) {
  return logged(*this, "clean leftovers older than " + std::to_string(min_age.count()) + " s",
                [&] { return StoreWrapper::clean_leftovers(min_age); });
}

std::unique_ptr<ObjectStore> with_debug_logging(std::unique_ptr<ObjectStore> store) {
  if (!spdlog::should_log(spdlog::level::debug)) return store;
  return std::make_unique<LoggingStore>(std::move(store));
}

}  // namespace walvault::store
