#include "store/fault_store.h"

#include "store/mem_store.h"
#include "store_conformance.h"
#include "store_test_util.h"

namespace walvault::store::testing {
namespace {

// With an empty plan the decorator must be invisible.
INSTANTIATE_TEST_SUITE_P(
    Fault, StoreConformance,
    ::testing::Values(StoreFactory{
        "fault_over_mem",
        [] { return std::make_unique<FaultStore>(std::make_shared<MemStore>(), FaultPlan{}); },
        {.exclusive_create = true, .reports_space = false}}),
    store_factory_name);

class FaultStoreTest : public ::testing::Test {
 protected:
  // The failed put is kIo, names `name`, and left nothing in the inner store.
  void expect_failed_put(FaultStore& store, const std::string& name, std::size_t size,
                         const std::string& reason) {
    SCOPED_TRACE("put " + name);
    try {
      store.put(name, pattern(size, 1));
      ADD_FAILURE() << "put succeeded";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(e.code(), ErrorCode::kIo) << message;
      EXPECT_NE(message.find(name), std::string::npos) << message;
      EXPECT_NE(message.find(reason), std::string::npos) << message;
    }
    EXPECT_FALSE(inner_->stat(name).has_value());
  }

  std::shared_ptr<MemStore> inner_ = std::make_shared<MemStore>();
};

TEST_F(FaultStoreTest, ByteBudgetRefusesThePutThatDoesNotFit) {
  FaultStore store(inner_, {.put_byte_budget = 100});
  EXPECT_EQ(store.put("a", pattern(60, 1)), PutResult::kCreated);
  expect_failed_put(store, "b", 50, "No space left on device");
  EXPECT_EQ(store.put("c", pattern(40, 1)), PutResult::kCreated);  // exactly fills the budget
  expect_failed_put(store, "d", 1, "No space left on device");
  EXPECT_EQ(store.put("e", Bytes{}), PutResult::kCreated);
  EXPECT_EQ(names_of(inner_->list("")), (std::vector<std::string>{"a", "c", "e"}));
  EXPECT_EQ(store.puts_seen(), 5u);
}

TEST_F(FaultStoreTest, ABudgetSmallerThanOnePutRefusesIt) {
  FaultStore store(inner_, {.put_byte_budget = 10});
  expect_failed_put(store, "big", 11, "No space left on device");
  EXPECT_EQ(store.put("small", pattern(10, 1)), PutResult::kCreated);
}

TEST_F(FaultStoreTest, PutsFailFromTheNthOn) {
  FaultStore store(inner_, {.fail_puts_from = 3});
  EXPECT_EQ(store.put("1", pattern(10, 1)), PutResult::kCreated);
  EXPECT_EQ(store.put("2", pattern(10, 2)), PutResult::kCreated);
  expect_failed_put(store, "3", 10, "injected");
  expect_failed_put(store, "4", 10, "injected");
  EXPECT_EQ(store.puts_seen(), 4u);
  EXPECT_EQ(names_of(inner_->list("")), (std::vector<std::string>{"1", "2"}));
}

TEST_F(FaultStoreTest, FailingGetsLeaveTheOtherCallsAlone) {
  ASSERT_EQ(inner_->put("x", to_bytes("x")), PutResult::kCreated);
  FaultStore store(inner_, {.fail_gets = true});
  EXPECT_EQ(error_code_of([&] { store.get("x", std::nullopt); }), ErrorCode::kIo);
  EXPECT_EQ(error_code_of([&] { store.get("x", Range{0, 1}); }), ErrorCode::kIo);
  EXPECT_TRUE(store.stat("x").has_value());
  EXPECT_EQ(store.list("").size(), 1u);
  EXPECT_EQ(store.put("y", to_bytes("y")), PutResult::kCreated);
  EXPECT_TRUE(store.remove("x"));
}

TEST_F(FaultStoreTest, AnInvalidNameIsABugWhateverThePlan) {
  FaultStore store(inner_, {.fail_puts_from = 1, .fail_gets = true});
  EXPECT_EQ(error_code_of([&] { store.put("/bad", to_bytes("x")); }), ErrorCode::kInternal);
  EXPECT_EQ(error_code_of([&] { store.get("/bad", std::nullopt); }), ErrorCode::kInternal);
}

}  // namespace
}  // namespace walvault::store::testing
