#include "store/mem_store.h"

#include "store_conformance.h"
#include "store_test_util.h"

namespace walvault::store::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Mem, StoreConformance,
                         ::testing::Values(StoreFactory{
                             "mem",
                             [] { return std::make_unique<MemStore>(); },
                             {.exclusive_create = true, .reports_space = false}}),
                         store_factory_name);

TEST(MemStoreTest, CorruptReplacesTheBytesOfAnExistingObject) {
  MemStore store;
  ASSERT_EQ(store.put("chunk", to_bytes("good")), PutResult::kCreated);
  store.corrupt("chunk", to_bytes("bad!"));
  EXPECT_EQ(store.get("chunk", std::nullopt), to_bytes("bad!"));
  EXPECT_EQ(store.put("chunk", to_bytes("good")), PutResult::kAlreadyExists);
  // Corrupting nothing would make the test that asked for it pass vacuously.
  EXPECT_EQ(error_code_of([&] { store.corrupt("missing", to_bytes("x")); }), ErrorCode::kInternal);
  EXPECT_FALSE(store.stat("missing").has_value());
}

}  // namespace
}  // namespace walvault::store::testing
