#include "store/object_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "store/mem_store.h"
#include "store_test_util.h"

namespace walvault::store::testing {
namespace {

TEST(ObjectNameTest, AcceptsPathsOfSafeComponents) {
  for (const std::string name :
       {"a", "Z9", "a.b", "a..", "_x", "-x", "wal/000000010000000000000001",
        "data/ab/abcdef0123456789", "a-b_c.d/e"}) {
    EXPECT_TRUE(is_valid_object_name(name)) << name;
  }
  EXPECT_TRUE(is_valid_object_name(std::string(1024, 'a')));
}

TEST(ObjectNameTest, RejectsEverythingElse) {
  for (const std::string name :
       {"", "/", "/a", "a/", "a//b", ".", "..", ".a", "a/.b", "a/../b", ".tmp.123", "a b", "a\tb",
        "a\\b", "a:b", "a+b", "a%2fb", "\xc3\xa9"}) {
    EXPECT_FALSE(is_valid_object_name(name)) << name;
  }
  EXPECT_FALSE(is_valid_object_name(std::string("a\0b", 3)));
  EXPECT_FALSE(is_valid_object_name(std::string(1025, 'a')));
}

TEST(ObjectNameTest, RequireNamesTheBadName) {
  try {
    require_valid_object_name("a//b");
    FAIL() << "accepted a//b";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("a//b"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(require_valid_object_name("a/b"));
}

TEST(OpenStoreTest, MemLocationsAreFreshInMemoryStores) {
  auto first = open_store("mem:");
  auto second = open_store("mem:");
  EXPECT_EQ(first->describe(), "mem:");
  ASSERT_EQ(first->put("x", to_bytes("x")), PutResult::kCreated);
  EXPECT_FALSE(second->stat("x").has_value());
  EXPECT_EQ(error_code_of([] { open_store("mem:somewhere"); }), ErrorCode::kUsage);
}

TEST(OpenStoreTest, OtherLocationsAreLocalDirectories) {
  ScratchDir scratch;
  const std::string root = scratch.sub("repo");
  EXPECT_EQ(error_code_of([&] { open_store(root); }), ErrorCode::kIo);
  auto store = open_store(root, {.create = true});
  EXPECT_EQ(store->describe(), root);
  EXPECT_TRUE(store->capabilities().reports_space);
  ASSERT_EQ(store->put("a/b", to_bytes("ab")), PutResult::kCreated);
  EXPECT_TRUE(std::filesystem::is_regular_file(root + "/a/b"));
  EXPECT_EQ(open_store(root)->get("a/b"), to_bytes("ab"));
}

// The default remove_many: remove() for each name, counting what existed.
TEST(RemoveManyTest, DefaultCountsExactlyTheNamesThatExisted) {
  MemStore store;
  for (const std::string name : {"a", "b", "c/d"}) {
    ASSERT_EQ(store.put(name, to_bytes(name)), PutResult::kCreated);
  }
  EXPECT_EQ(store.remove_many({"a", "missing", "a", "c/d"}), 2u);
  EXPECT_EQ(names_of(store.list("")), std::vector<std::string>{"b"});
  EXPECT_EQ(store.remove_many({"a", "missing"}), 0u);
}

}  // namespace
}  // namespace walvault::store::testing
