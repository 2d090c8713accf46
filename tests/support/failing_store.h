// Test helper: a store that fails, with Error(kIo), the operations the test
// names on objects under one prefix, and passes everything else to the store
// it wraps. store::FaultStore fails every get or every put from some point
// on; this one lets a test break, say, only the reads of history/ or only the
// listing of locks/, to see that the error reaches the user.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "core/error.h"
#include "store/object_store.h"

namespace walvault::testing {

struct FailingOps {
  bool put = false;
  bool get = false;
  bool list = false;
};

class FailingStore final : public store::ObjectStore {
 public:
  FailingStore(std::shared_ptr<store::ObjectStore> inner, std::string prefix, FailingOps ops)
      : inner_(std::move(inner)), prefix_(std::move(prefix)) {
    set(ops);
  }
  // Changes what fails from now on (safe while other threads use the store).
  void set(FailingOps ops) {
    put_ = ops.put;
    get_ = ops.get;
    list_ = ops.list;
  }

  store::PutResult put(const std::string& name, ByteView data) override {
    if (put_ && name.starts_with(prefix_)) fail("put", name);
    return inner_->put(name, data);
  }
  std::optional<Bytes> get(const std::string& name,
                           std::optional<store::Range> range = std::nullopt) override {
    if (get_ && name.starts_with(prefix_)) fail("get", name);
    return inner_->get(name, range);
  }
  std::optional<store::ObjectInfo> stat(const std::string& name) override {
    return inner_->stat(name);
  }
  std::vector<store::ObjectInfo> list(const std::string& prefix) override {
    if (list_ && prefix.starts_with(prefix_)) fail("list", prefix);
    return inner_->list(prefix);
  }
  bool remove(const std::string& name) override { return inner_->remove(name); }
  store::Capabilities capabilities() const override { return inner_->capabilities(); }
  std::string describe() const override { return "failing(" + inner_->describe() + ")"; }

 private:
  [[noreturn]] static void fail(const std::string& op, const std::string& name) {
    throw Error(ErrorCode::kIo, op + " " + name + ": injected I/O error");
  }

  std::shared_ptr<store::ObjectStore> inner_;
  std::string prefix_;
  std::atomic<bool> put_{false}, get_{false}, list_{false};
};

}  // namespace walvault::testing
