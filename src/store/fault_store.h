// A decorator that injects failures into another ObjectStore, for tests of the
// data-loss paths (disk full, I/O error mid-run). Failures are Error(kIo)
// thrown before the inner store is touched, as a full disk would. Everything
// the plan does not name is forwarded unchanged (StoreWrapper).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "store/store_wrapper.h"

namespace walvault::store {

struct FaultPlan {
  // put() fails once this many bytes have been accepted in total
  // (simulates a disk filling up): a put that would take the total past the
  // budget is refused and takes none of it; smaller ones may still fit.
  // UINT64_MAX: never.
  std::uint64_t put_byte_budget = UINT64_MAX;
  // The n-th put() (1-based) and every later one fails. 0: never.
  std::uint64_t fail_puts_from = 0;
  // Every get() fails.
  bool fail_gets = false;
  // Every put() of a name that starts with this fails ("": none); unlike a
  // count, independent of the order concurrent puts arrive in.
  std::string fail_puts_under;
};

class FaultStore final : public StoreWrapper {
 public:
  FaultStore(std::shared_ptr<ObjectStore> inner, FaultPlan plan);

  PutResult put(const std::string& name, ByteView data) override;
  std::optional<Bytes> get(const std::string& name, std::optional<Range> range) override;

  std::uint64_t puts_seen() const { return puts_.load(); }

 private:
  FaultPlan plan_;
  std::atomic<std::uint64_t> puts_{0};
  std::atomic<std::uint64_t> bytes_{0};
};

}  // namespace walvault::store
