// The tests of the ObjectStore conformance suite; see store_conformance.h.
#include "store_conformance.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <latch>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/time_util.h"
#include "store_test_util.h"

namespace walvault::store::testing {
namespace {

// Runs task(0) .. task(n-1) on n threads released together, and rethrows the
// first exception any of them threw once all are joined.
void run_concurrently(int n, const std::function<void(int)>& task) {
  std::latch start(n);
  std::mutex mu;
  std::exception_ptr first_failure;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      try {
        task(i);
      } catch (...) {
        std::lock_guard lock(mu);
        if (!first_failure) first_failure = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (first_failure) std::rethrow_exception(first_failure);
}

// Names every store must reject: each breaks one rule of object_store.h.
const std::vector<std::string> kInvalidNames = {
    "",
    "/",
    "/a",
    "a/",
    "a//b",
    ".a",
    "a/.b",
    ".",
    "..",
    "a/..",
    "a/./b",
    "../a",
    ".tmp.x",
    "a b",
    "a\\b",
    "a:b",
    "a*",
    "caf\xc3\xa9",
    "a\nb",
    std::string("a\0b", 3),
    std::string(1025, 'a'),
};

// The longest valid name: 1024 bytes, components of at most 255 (NAME_MAX).
std::string longest_valid_name() {
  return std::string(255, 'a') + "/" + std::string(255, 'b') + "/" + std::string(255, 'c') + "/" +
         std::string(254, 'd') + "/e";
}

TEST_P(StoreConformance, ReportsTheDeclaredCapabilities) {
  const Capabilities actual = store_->capabilities();
  EXPECT_EQ(actual.exclusive_create, declared().exclusive_create);
  EXPECT_EQ(actual.reports_space, declared().reports_space);
  EXPECT_FALSE(store_->describe().empty());
}

TEST_P(StoreConformance, SpaceIsReportedExactlyWhenDeclared) {
  const auto space = store_->space();
  if (!declared().reports_space) {
    EXPECT_FALSE(space.has_value());
    return;
  }
  ASSERT_TRUE(space.has_value());
  EXPECT_GT(space->total_bytes, 0u);
  EXPECT_LE(space->free_bytes, space->total_bytes);
}

TEST_P(StoreConformance, PutThenGetReturnsTheSameBytes) {
  const Bytes empty;
  const Bytes one = {0x5a};
  const Bytes big = pattern(5 * 1024 * 1024, 1);
  EXPECT_EQ(store_->put("empty", empty), PutResult::kCreated);
  EXPECT_EQ(store_->put("one", one), PutResult::kCreated);
  EXPECT_EQ(store_->put("nested/dir/big", big), PutResult::kCreated);

  EXPECT_EQ(store_->get("empty"), empty);
  EXPECT_EQ(store_->get("one"), one);
  const auto got = store_->get("nested/dir/big");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->size(), big.size());
  EXPECT_TRUE(*got == big) << "5 MiB object came back with different bytes";
}

TEST_P(StoreConformance, SecondPutOfANameKeepsTheFirstBytes) {
  const Bytes first = pattern(1000, 1);
  const Bytes second = pattern(2000, 2);
  ASSERT_EQ(store_->put("wal/segment", first), PutResult::kCreated);
  const PutResult again = store_->put("wal/segment", second);
  const auto stored = store_->get("wal/segment");
  ASSERT_TRUE(stored.has_value());
  if (declared().exclusive_create) {
    EXPECT_EQ(again, PutResult::kAlreadyExists);
    EXPECT_EQ(*stored, first);
  } else {
    // Without create-only, an overwrite may win, but never a mixture.
    EXPECT_TRUE(*stored == first || *stored == second);
  }
}

TEST_P(StoreConformance, MissingObjectsAreNullopt) {
  ASSERT_EQ(store_->put("present", to_bytes("x")), PutResult::kCreated);
  EXPECT_FALSE(store_->get("absent").has_value());
  EXPECT_FALSE(store_->get("absent", Range{0, 10}).has_value());
  EXPECT_FALSE(store_->stat("absent").has_value());
  EXPECT_FALSE(store_->get("no/such/dir/object").has_value());
  EXPECT_FALSE(store_->stat("no/such/dir/object").has_value());
  // A name below an existing object is missing too, not an error.
  EXPECT_FALSE(store_->get("present/below").has_value());
  EXPECT_FALSE(store_->stat("present/below").has_value());
}

TEST_P(StoreConformance, RangedGetsReturnTheSelectedBytes) {
  const Bytes data = pattern(1000, 3);
  ASSERT_EQ(store_->put("ranged", data), PutResult::kCreated);
  auto part = [&](std::size_t offset, std::size_t length) {
    return Bytes(data.begin() + static_cast<std::ptrdiff_t>(offset),
                 data.begin() + static_cast<std::ptrdiff_t>(offset + length));
  };
  EXPECT_EQ(store_->get("ranged", Range{0, 10}), part(0, 10));
  EXPECT_EQ(store_->get("ranged", Range{400, 200}), part(400, 200));
  EXPECT_EQ(store_->get("ranged", Range{999, 1}), part(999, 1));
  EXPECT_EQ(store_->get("ranged", Range{990, 100}), part(990, 10)) << "runs past the end";
  EXPECT_EQ(store_->get("ranged", Range{0, UINT64_MAX}), data);
  EXPECT_EQ(store_->get("ranged", Range{1000, 10}), Bytes{}) << "starts at the end";
  EXPECT_EQ(store_->get("ranged", Range{5000, 10}), Bytes{}) << "starts past the end";
  EXPECT_EQ(store_->get("ranged", Range{500, 0}), Bytes{}) << "zero length";
  EXPECT_EQ(store_->get("ranged", std::nullopt), data);
  // A store may keep a ranged object open (PosixStore); removing it ends that.
  ASSERT_TRUE(store_->remove("ranged"));
  EXPECT_FALSE(store_->get("ranged", Range{0, 10}).has_value()) << "removed";
  ASSERT_EQ(store_->put("ranged", part(0, 100)), PutResult::kCreated);
  EXPECT_EQ(store_->get("ranged", Range{50, 100}), part(50, 50)) << "the new object's bytes";
}

TEST_P(StoreConformance, StatReportsNameAndSize) {
  ASSERT_EQ(store_->put("stat/empty", Bytes{}), PutResult::kCreated);
  ASSERT_EQ(store_->put("stat/full", pattern(12345, 4)), PutResult::kCreated);
  const auto empty = store_->stat("stat/empty");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->name, "stat/empty");
  EXPECT_EQ(empty->size, 0u);
  const auto full = store_->stat("stat/full");
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->name, "stat/full");
  EXPECT_EQ(full->size, 12345u);
}

TEST_P(StoreConformance, ListUsesPlainStringPrefixesAndSortsByName) {
  // Put out of order; '-' and '.' sort before '/', which sorts before digits.
  const std::vector<std::string> names = {
      "wal/000000010000000000000002",
      "walrus",
      "wal/000000010000000000000001",
      "wal/000000020000000000000001",
      "backup/a/b/c",
      "backup/a/bc",
      "backup/a-b",
      "backup/a.b",
      "backup/a0",
      "x",
  };
  for (std::size_t i = 0; i < names.size(); ++i) {
    ASSERT_EQ(store_->put(names[i], pattern(i, i)), PutResult::kCreated) << names[i];
  }
  using Names = std::vector<std::string>;
  Names all = names;
  std::sort(all.begin(), all.end());
  EXPECT_EQ(names_of(store_->list("")), all);
  EXPECT_EQ(names_of(store_->list("wal")),
            (Names{"wal/000000010000000000000001", "wal/000000010000000000000002",
                   "wal/000000020000000000000001", "walrus"}));
  EXPECT_EQ(names_of(store_->list("wal/")),
            (Names{"wal/000000010000000000000001", "wal/000000010000000000000002",
                   "wal/000000020000000000000001"}));
  EXPECT_EQ(names_of(store_->list("wal/00000001")),
            (Names{"wal/000000010000000000000001", "wal/000000010000000000000002"}));
  EXPECT_EQ(names_of(store_->list("backup/a")),
            (Names{"backup/a-b", "backup/a.b", "backup/a/b/c", "backup/a/bc", "backup/a0"}));
  EXPECT_EQ(names_of(store_->list("backup/a/b")), (Names{"backup/a/b/c", "backup/a/bc"}));
  EXPECT_EQ(names_of(store_->list("backup/a/b/")), (Names{"backup/a/b/c"}));
  EXPECT_EQ(names_of(store_->list("backup/a/b/c")), (Names{"backup/a/b/c"}));
  EXPECT_EQ(names_of(store_->list("x")), (Names{"x"}));
  for (const std::string prefix : {"nothing", "backup/z/", "x/", "/", "../", "wal//", ".tmp."}) {
    EXPECT_TRUE(store_->list(prefix).empty()) << "prefix \"" << prefix << "\"";
  }
  for (const ObjectInfo& info : store_->list("")) {
    const auto at = std::find(names.begin(), names.end(), info.name);
    EXPECT_EQ(info.size, static_cast<std::uint64_t>(at - names.begin())) << info.name;
  }
}

TEST_P(StoreConformance, ListDirectoriesNamesTheComponentsWithObjectsBelow) {
  for (const std::string name : {"wal/meta/B/x", "wal/meta/A/y", "wal/meta/A/z", "wal/meta/A-1/q",
                                 "wal/meta/top", "wal/meta/C/d/e", "walrus/D/f"})
    ASSERT_EQ(store_->put(name, pattern(1, 1)), PutResult::kCreated) << name;
  using Names = std::vector<std::string>;
  EXPECT_EQ(store_->list_directories("wal/meta/"), (Names{"A", "A-1", "B", "C"}));
  EXPECT_EQ(store_->list_directories("wal/"), (Names{"meta"}));
  EXPECT_EQ(store_->list_directories("wal/meta/C/"), (Names{"d"}));
  EXPECT_TRUE(store_->list_directories("nothing/").empty());
  EXPECT_TRUE(store_->list_directories("wal/meta/A/").empty());
}

TEST_P(StoreConformance, ListReportsWhenEachObjectWasWritten) {
  // gc's grace period trusts these times: an object just written must not
  // look old. The store's clock may differ a little from ours (S3).
  const std::int64_t before = now_unix_us();
  ASSERT_EQ(store_->put("aged/one", to_bytes("1")), PutResult::kCreated);
  const std::int64_t after = now_unix_us();
  const auto listed = store_->list("aged/");
  ASSERT_EQ(listed.size(), 1u);
  constexpr std::int64_t kSkewUs = 5'000'000;
  EXPECT_GE(listed[0].mtime_us, before - kSkewUs);
  EXPECT_LE(listed[0].mtime_us, after + kSkewUs);
}

TEST_P(StoreConformance, ListReturnsManyObjectsCompletely) {
  // More than one page of an S3 listing (1000 keys).
  constexpr int kObjects = 1600;
  constexpr int kWriters = 8;
  auto name_of = [](int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "many/%05d", i);
    return std::string(buf);
  };
  run_concurrently(kWriters, [&](int writer) {
    for (int i = writer; i < kObjects; i += kWriters) store_->put(name_of(i), to_bytes(name_of(i)));
  });
  ASSERT_EQ(store_->put("other", Bytes{}), PutResult::kCreated);

  std::vector<std::string> expected;
  for (int i = 0; i < kObjects; ++i) expected.push_back(name_of(i));
  EXPECT_EQ(names_of(store_->list("many/")), expected);
  expected.push_back("other");
  EXPECT_EQ(names_of(store_->list("")), expected);
  EXPECT_EQ(store_->list("many/015").size(), 100u);
}

TEST_P(StoreConformance, RemoveDeletesOnceAndFreesTheName) {
  ASSERT_EQ(store_->put("gc/chunk", pattern(100, 5)), PutResult::kCreated);
  ASSERT_EQ(store_->put("gc/keep", pattern(100, 6)), PutResult::kCreated);
  EXPECT_TRUE(store_->remove("gc/chunk"));
  EXPECT_FALSE(store_->get("gc/chunk").has_value());
  EXPECT_FALSE(store_->stat("gc/chunk").has_value());
  EXPECT_EQ(names_of(store_->list("gc/")), std::vector<std::string>{"gc/keep"});
  EXPECT_FALSE(store_->remove("gc/chunk"));
  EXPECT_FALSE(store_->remove("never/existed"));
  // A removed name can be created again (GC removed it, a backup re-adds it).
  EXPECT_EQ(store_->put("gc/chunk", pattern(50, 7)), PutResult::kCreated);
  EXPECT_EQ(store_->get("gc/chunk"), pattern(50, 7));
}

TEST_P(StoreConformance, RemoveManyRemovesTheNamedObjectsOnly) {
  for (const std::string name : {"gc/a", "gc/b", "gc/sub/c", "gc/aa", "gc/keep"}) {
    ASSERT_EQ(store_->put(name, to_bytes(name)), PutResult::kCreated) << name;
  }
  EXPECT_EQ(store_->remove_many({}), 0u);
  // A missing name is skipped and a repeated one removed once. The count is
  // exact where the store can tell, else at most the distinct names.
  const std::size_t removed =
      store_->remove_many({"gc/a", "gc/sub/c", "gc/missing", "gc/a", "gc/b"});
  EXPECT_GE(removed, 3u);
  EXPECT_LE(removed, 4u);
  EXPECT_EQ(names_of(store_->list("gc/")), (std::vector<std::string>{"gc/aa", "gc/keep"}));
  EXPECT_FALSE(store_->stat("gc/a").has_value());
  EXPECT_FALSE(store_->get("gc/sub/c").has_value());
  // Every name is checked before anything is removed.
  for (const std::string& bad : kInvalidNames) {
    SCOPED_TRACE("name \"" + bad + "\"");
    EXPECT_EQ(error_code_of([&] { store_->remove_many({"gc/keep", bad}); }), ErrorCode::kInternal);
  }
  EXPECT_TRUE(store_->stat("gc/keep").has_value());
  // A removed name can be created again.
  EXPECT_EQ(store_->put("gc/a", pattern(10, 8)), PutResult::kCreated);
  EXPECT_EQ(store_->get("gc/a"), pattern(10, 8));
}

TEST_P(StoreConformance, RemoveManyOf1500ObjectsRemovesExactlyThoseNamed) {
  // More names than one S3 DeleteObjects request takes (1000).
  constexpr int kObjects = 1500;
  constexpr int kWriters = 8;
  auto name_of = [](int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "expire/%05d", i);
    return std::string(buf);
  };
  run_concurrently(kWriters, [&](int writer) {
    for (int i = writer; i < kObjects; i += kWriters) store_->put(name_of(i), Bytes{});
  });
  // Every 7th object stays, on both sides of the 1000-name boundary.
  std::vector<std::string> doomed;
  std::vector<std::string> kept;
  for (int i = 0; i < kObjects; ++i) (i % 7 == 0 ? kept : doomed).push_back(name_of(i));
  std::reverse(doomed.begin(), doomed.end());  // any order
  EXPECT_EQ(store_->remove_many(doomed), doomed.size());
  EXPECT_EQ(names_of(store_->list("expire/")), kept);
  EXPECT_EQ(store_->remove_many(kept), kept.size());
  EXPECT_TRUE(store_->list("").empty());
}

TEST_P(StoreConformance, InvalidNamesAreRejectedAsInternalErrors) {
  const Bytes data = to_bytes("data");
  for (const std::string& name : kInvalidNames) {
    SCOPED_TRACE("name \"" + name + "\"");
    EXPECT_EQ(error_code_of([&] { store_->put(name, data); }), ErrorCode::kInternal);
    EXPECT_EQ(error_code_of([&] { store_->get(name); }), ErrorCode::kInternal);
    EXPECT_EQ(error_code_of([&] { store_->get(name, Range{0, 1}); }), ErrorCode::kInternal);
    EXPECT_EQ(error_code_of([&] { store_->stat(name); }), ErrorCode::kInternal);
    EXPECT_EQ(error_code_of([&] { store_->remove(name); }), ErrorCode::kInternal);
  }
  EXPECT_TRUE(store_->list("").empty());
}

TEST_P(StoreConformance, NamesAtTheEdgeOfTheRulesWork) {
  const std::vector<std::string> names = {
      "a", "Z", "0", "a.", "a..b", "a-b_c.d", "-lead", "_lead", "p/b.c/d-e_f", longest_valid_name(),
  };
  for (std::size_t i = 0; i < names.size(); ++i) {
    SCOPED_TRACE("name \"" + names[i] + "\"");
    EXPECT_EQ(store_->put(names[i], pattern(10, i)), PutResult::kCreated);
    EXPECT_EQ(store_->get(names[i]), pattern(10, i));
  }
  EXPECT_EQ(store_->list("").size(), names.size());
}

TEST_P(StoreConformance, ConcurrentCreateOnlyPutsOfOneNameHaveOneWinner) {
  if (!declared().exclusive_create) GTEST_SKIP() << "the store does not declare exclusive_create";
  constexpr int kWriters = 8;
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string name = "race/object-" + std::to_string(round);
    std::vector<Bytes> data;
    for (int i = 0; i < kWriters; ++i) data.push_back(pattern(64 * 1024 + i, round * 100 + i));
    std::vector<PutResult> results(kWriters);
    run_concurrently(kWriters, [&](int i) { results[i] = store_->put(name, data[i]); });

    const auto winner = std::find(results.begin(), results.end(), PutResult::kCreated);
    EXPECT_EQ(std::count(results.begin(), results.end(), PutResult::kCreated), 1);
    ASSERT_NE(winner, results.end());
    const auto stored = store_->get(name);
    ASSERT_TRUE(stored.has_value());
    EXPECT_TRUE(*stored == data[winner - results.begin()]) << "stored bytes are not the winner's";
  }
}

TEST_P(StoreConformance, ConcurrentPutsOfDistinctNamesAllLand) {
  constexpr int kWriters = 8;
  constexpr int kPerWriter = 40;
  // Half the names share directories that do not exist yet, so creating
  // them races too; the other half stay in each writer's own tree.
  auto name_of = [](int writer, int i) {
    const std::string base = std::to_string(writer) + "-" + std::to_string(i);
    return i % 2 == 0 ? "shared/d" + std::to_string(i % 4) + "/" + base
                      : "own" + std::to_string(writer) + "/deep/" + base;
  };
  std::vector<std::vector<PutResult>> results(kWriters, std::vector<PutResult>(kPerWriter));
  run_concurrently(kWriters, [&](int w) {
    for (int i = 0; i < kPerWriter; ++i) {
      results[w][i] = store_->put(name_of(w, i), pattern(100 + i, w * 1000 + i));
    }
  });
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < kPerWriter; ++i) {
      SCOPED_TRACE(name_of(w, i));
      EXPECT_EQ(results[w][i], PutResult::kCreated);
      EXPECT_EQ(store_->get(name_of(w, i)), pattern(100 + i, w * 1000 + i));
    }
  }
  EXPECT_EQ(store_->list("").size(), static_cast<std::size_t>(kWriters * kPerWriter));
}

}  // namespace
}  // namespace walvault::store::testing
