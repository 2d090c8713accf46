// StoreWrapper and LoggingStore: a decorator is invisible (the conformance
// suite over mem and posix), forwards every operation to the inner store's
// own implementation, and LoggingStore logs each operation at debug level.
#include "store/store_wrapper.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "store/fault_store.h"
#include "store/logging_store.h"
#include "store/mem_store.h"
#include "store/posix_store.h"
#include "store_conformance.h"
#include "store_test_util.h"

namespace walvault::store::testing {
namespace {

std::unique_ptr<ObjectStore> logging_over_posix() {
  static ScratchDir scratch;
  static int n = 0;
  return std::make_unique<LoggingStore>(
      std::make_shared<PosixStore>(scratch.sub("repo" + std::to_string(++n)), true));
}

INSTANTIATE_TEST_SUITE_P(
    Wrappers, StoreConformance,
    ::testing::Values(
        StoreFactory{"wrapper_over_mem",
                     [] { return std::make_unique<StoreWrapper>(std::make_shared<MemStore>()); },
                     {.exclusive_create = true, .reports_space = false}},
        StoreFactory{"logging_over_mem",
                     [] { return std::make_unique<LoggingStore>(std::make_shared<MemStore>()); },
                     {.exclusive_create = true, .reports_space = false}},
        StoreFactory{"logging_over_posix",
                     logging_over_posix,
                     {.exclusive_create = true, .reports_space = true}}),
    store_factory_name);

// Counts the calls that reach it, then forwards them.
class CountingStore final : public StoreWrapper {
 public:
  using StoreWrapper::StoreWrapper;
  bool remove(const std::string& name) override {
    ++removes;
    return StoreWrapper::remove(name);
  }
  std::size_t remove_many(const std::vector<std::string>& names) override {
    ++batches;
    return StoreWrapper::remove_many(names);
  }
  std::size_t clean_leftovers(std::chrono::seconds min_age) override {
    ++cleanups;
    return StoreWrapper::clean_leftovers(min_age);
  }
  int removes = 0;
  int batches = 0;
  int cleanups = 0;
};

TEST(StoreWrapperTest, BatchOperationsReachTheInnerStoresOwnImplementation) {
  auto counting = std::make_shared<CountingStore>(std::make_shared<MemStore>());
  FaultStore fault(counting, FaultPlan{});
  for (const std::string name : {"a", "b"})
    ASSERT_EQ(fault.put(name, to_bytes(name)), PutResult::kCreated);
  // One batch for S3's DeleteObjects, not a remove() per name.
  EXPECT_EQ(fault.remove_many({"a", "b", "missing"}), 2u);
  EXPECT_EQ(counting->batches, 1);
  EXPECT_EQ(counting->removes, 0);
  EXPECT_EQ(fault.clean_leftovers(std::chrono::seconds(0)), 0u);
  EXPECT_EQ(counting->cleanups, 1);
  EXPECT_EQ(fault.describe(), "mem:");
}

TEST(StoreWrapperTest, SpaceAndCapabilitiesAreTheInnerStores) {
  ScratchDir scratch;
  StoreWrapper wrapper(std::make_shared<PosixStore>(scratch.sub("repo"), true));
  EXPECT_TRUE(wrapper.capabilities().reports_space);
  EXPECT_TRUE(wrapper.space().has_value());
  EXPECT_EQ(wrapper.describe(), scratch.sub("repo"));
  EXPECT_EQ(error_code_of([] { StoreWrapper(nullptr); }), ErrorCode::kInternal);
}

// Routes spdlog's default logger into a string at `level` for the test's
// duration, then restores the previous default logger.
class CapturedLog {
 public:
  explicit CapturedLog(spdlog::level::level_enum level) : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "captured", std::make_shared<spdlog::sinks::ostream_sink_st>(out_));
    logger->set_level(level);
    logger->set_pattern("%v");
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST(LoggingStoreTest, EachOperationIsOneDebugLineWithItsOutcome) {
  CapturedLog log(spdlog::level::debug);
  LoggingStore store(std::make_shared<MemStore>());
  const Bytes data = pattern(10, 1);
  ASSERT_EQ(store.put("wal/1", data), PutResult::kCreated);
  ASSERT_EQ(store.put("wal/1", data), PutResult::kAlreadyExists);
  ASSERT_EQ(store.get("wal/1", Range{2, 3}), Bytes(data.begin() + 2, data.begin() + 5));
  ASSERT_FALSE(store.stat("wal/2").has_value());
  ASSERT_EQ(store.list("wal/").size(), 1u);
  ASSERT_TRUE(store.remove("wal/1"));
  const std::string text = log.text();
  for (const std::string line :
       {"store mem: put wal/1 (10 bytes) = created (",
        "store mem: put wal/1 (10 bytes) = already exists (",
        "store mem: get wal/1 [2 +3] = 3 bytes (", "store mem: stat wal/2 = not found (",
        "store mem: list wal/* = 1 objects (", "store mem: remove wal/1 = removed ("}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST(LoggingStoreTest, AFailureIsLoggedAndPassesThroughUnchanged) {
  CapturedLog log(spdlog::level::debug);
  LoggingStore store(
      std::make_shared<FaultStore>(std::make_shared<MemStore>(), FaultPlan{.fail_gets = true}));
  EXPECT_EQ(error_code_of([&] { store.get("x", std::nullopt); }), ErrorCode::kIo);
  EXPECT_NE(log.text().find("store mem: get x failed ("), std::string::npos) << log.text();
  EXPECT_NE(log.text().find("get x: injected I/O error"), std::string::npos) << log.text();
}

TEST(LoggingStoreTest, OpenStoreWrapsOnlyWhenDebugLinesAreLogged) {
  {
    CapturedLog log(spdlog::level::info);
    auto store = open_store("mem:");
    EXPECT_EQ(dynamic_cast<LoggingStore*>(store.get()), nullptr);
    store->put("x", to_bytes("x"));
    EXPECT_EQ(log.text(), "");
  }
  CapturedLog log(spdlog::level::debug);
  auto store = open_store("mem:");
  EXPECT_NE(dynamic_cast<LoggingStore*>(store.get()), nullptr);
  store->put("x", to_bytes("x"));
  EXPECT_NE(log.text().find("store mem: put x (1 bytes) = created"), std::string::npos)
      << log.text();
}

}  // namespace
}  // namespace walvault::store::testing
