// S3Store against a real S3 server (Ceph RGW in CI; see s3_test_env.h): the
// conformance suite, plus what only S3 has: credentials, buckets, paging,
// an unreachable gateway.
#include "store/s3/s3_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "s3_test_env.h"
#include "unit/store/store_conformance.h"
#include "unit/store/store_test_util.h"

namespace walvault::store::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(S3, StoreConformance,
                         ::testing::Values(StoreFactory{
                             "s3",
                             [] { return std::unique_ptr<ObjectStore>(make_s3_test_store()); },
                             {.exclusive_create = false, .reports_space = false}}),
                         store_factory_name);

class S3StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = s3_test_server();
    if (!server) GTEST_SKIP() << "no S3 test server configured (WALVAULT_TEST_S3_*)";
    server_ = *server;
  }

  // The message of the walvault::Error that `action` throws, with its code.
  static std::pair<std::optional<ErrorCode>, std::string> error_of(
      const std::function<void()>& action) {
    try {
      action();
    } catch (const Error& e) {
      return {e.code(), e.what()};
    }
    return {std::nullopt, ""};
  }

  S3TestServer server_;
};

TEST_F(S3StoreTest, DescribeNamesBucketAndPrefixOnly) {
  S3Store store(s3_test_options(server_, s3_run_bucket(server_), "prod/main"));
  EXPECT_EQ(store.describe(), "s3://" + s3_run_bucket(server_) + "/prod/main");
  EXPECT_EQ(make_s3_test_store()->describe().find(server_.access_key), std::string::npos);
}

TEST_F(S3StoreTest, WrongSecretIsAnAuthenticationErrorWithoutTheSecret) {
  ASSERT_EQ(make_s3_test_store()->put("x", to_bytes("x")), PutResult::kCreated);  // bucket exists
  const std::string wrong_secret = "wrongsecret0000000000000000000000000000099";
  S3Options options = s3_test_options(server_, s3_run_bucket(server_), "auth");
  options.secret_access_key = wrong_secret;
  S3Store store(options);
  for (const auto& [what, action] : std::vector<std::pair<std::string, std::function<void()>>>{
           {"put", [&] { store.put("obj", to_bytes("data")); }},
           {"get", [&] { store.get("obj", std::nullopt); }},
           {"stat", [&] { store.stat("obj"); }},
           {"list", [&] { store.list(""); }},
           {"remove many", [&] {
              store.remove_many({"obj", "other"});
            }}}) {
    SCOPED_TRACE(what);
    const auto [code, message] = error_of(action);
    EXPECT_EQ(code, ErrorCode::kKey) << message;
    EXPECT_NE(message.find("authentication failed"), std::string::npos) << message;
    EXPECT_NE(message.find("s3://" + s3_run_bucket(server_) + "/auth"), std::string::npos)
        << message;
    EXPECT_EQ(message.find(wrong_secret), std::string::npos) << message;
    EXPECT_EQ(message.find(server_.secret_key), std::string::npos) << message;
    EXPECT_EQ(message.find("Signature="), std::string::npos) << message;
  }
}

TEST_F(S3StoreTest, MissingBucketIsAClearError) {
  const std::string bucket = unique_bucket_name("walvault-missing");
  S3Options missing_options = s3_test_options(server_, bucket, "p");
  missing_options.multipart_threshold = 5 << 20;
  S3Store store(missing_options);
  for (const auto& [what, action] : std::vector<std::pair<std::string, std::function<void()>>>{
           {"put", [&] { store.put("obj", to_bytes("data")); }},
           {"get", [&] { store.get("obj", std::nullopt); }},
           {"ranged get",
            [&] {
              store.get("obj", Range{0, 4});
            }},
           {"stat", [&] { store.stat("obj"); }},
           {"list", [&] { store.list(""); }},
           {"remove", [&] { store.remove("obj"); }},
           {"remove many", [&] { store.remove_many({"obj"}); }},
           {"multipart put", [&] { store.put("big", pattern(6 << 20, 1)); }}}) {
    SCOPED_TRACE(what);
    const auto [code, message] = error_of(action);
    EXPECT_EQ(code, ErrorCode::kRepoFormat) << message;
    EXPECT_NE(message.find("bucket " + bucket + " does not exist"), std::string::npos) << message;
  }
}

TEST_F(S3StoreTest, ListingOf1500ObjectsUnderAPrefixIsCompleteAndIsolated) {
  const std::string bucket = s3_run_bucket(server_);
  S3Store store(s3_test_options(server_, bucket, "paged"));
  // A sibling prefix that shares the first characters must stay invisible.
  S3Store sibling(s3_test_options(server_, bucket, "paged2"));
  ASSERT_EQ(sibling.put("other", to_bytes("o")), PutResult::kCreated);
  constexpr int kObjects = 1500;
  std::vector<std::string> expected;
  for (int i = 0; i < kObjects; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "wal/%06d", i);
    expected.emplace_back(name);
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      for (int i = w; i < kObjects; i += 8) store.put(expected[i], to_bytes(expected[i]));
    });
  }
  for (auto& t : writers) t.join();
  const auto listed = store.list("");
  EXPECT_EQ(names_of(listed), expected);
  for (const ObjectInfo& info : listed) EXPECT_EQ(info.size, info.name.size());
  EXPECT_EQ(names_of(sibling.list("")), std::vector<std::string>{"other"});
}

TEST_F(S3StoreTest, UnreachableGatewayIsAnIoErrorAfterBoundedRetries) {
  // Nothing listens on port 1 of loopback: every attempt is refused at once.
  S3TestServer closed = server_;
  closed.endpoint = "http://127.0.0.1:1";
  S3Options options = s3_test_options(closed, "walvault-closed", "p");
  options.max_attempts = 3;
  options.backoff_base = std::chrono::milliseconds(50);
  options.connect_timeout = std::chrono::milliseconds(500);
  S3Store store(options);
  const auto start = std::chrono::steady_clock::now();
  const auto [code, message] = error_of([&] { store.put("obj", to_bytes("data")); });
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(code, ErrorCode::kIo) << message;
  EXPECT_NE(message.find("put s3://walvault-closed/p/obj"), std::string::npos) << message;
  EXPECT_NE(message.find("after 3 attempts"), std::string::npos) << message;
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_EQ(error_of([&] { store.get("obj", std::nullopt); }).first, ErrorCode::kIo);
}

TEST_F(S3StoreTest, AWalSegmentSizedObjectRoundTripsAndRangesWork) {
  auto store = make_s3_test_store();
  const Bytes segment = pattern(16 << 20, 42);
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count() / 1000.0;
  };
  const auto t0 = Clock::now();
  ASSERT_EQ(store->put("wal/000000010000000000000001", segment), PutResult::kCreated);
  const auto t1 = Clock::now();
  const auto whole = store->get("wal/000000010000000000000001", std::nullopt);
  const auto t2 = Clock::now();
  const auto part = store->get("wal/000000010000000000000001", Range{8 << 20, 1 << 20});
  const auto t3 = Clock::now();
  ASSERT_TRUE(whole.has_value());
  EXPECT_TRUE(*whole == segment);
  ASSERT_TRUE(part.has_value());
  EXPECT_TRUE(*part == Bytes(segment.begin() + (8 << 20), segment.begin() + (9 << 20)));
  EXPECT_EQ(store->stat("wal/000000010000000000000001")->size, segment.size());
  std::printf("16 MiB put %.1f ms, get %.1f ms, 1 MiB ranged get %.1f ms\n", ms(t1 - t0),
              ms(t2 - t1), ms(t3 - t2));
}

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count() / 1000.0;
}

// Multipart uploads from 8 MiB up, in 6 MiB parts.
S3Options multipart_options(const S3TestServer& server, const std::string& prefix) {
  S3Options options = s3_test_options(server, s3_run_bucket(server), prefix);
  options.multipart_threshold = 8 << 20;
  options.part_size = 6 << 20;
  return options;
}

TEST_F(S3StoreTest, MultipartPutRoundTripsAndRangesCrossPartBoundaries) {
  S3Store store(multipart_options(server_, "multipart"));
  constexpr std::size_t kMiB = 1 << 20;
  const Bytes big = pattern(40 * kMiB, 7);  // 7 parts: 6 of 6 MiB and one of 4 MiB
  const auto t0 = Clock::now();
  ASSERT_EQ(store.put("backup/pack-40", big), PutResult::kCreated);
  std::printf("40 MiB multipart put (6 MiB parts, 4 in parallel) %.1f ms\n",
              ms_between(t0, Clock::now()));
  EXPECT_EQ(store.stat("backup/pack-40")->size, big.size());
  const auto whole = store.get("backup/pack-40", std::nullopt);
  ASSERT_TRUE(whole.has_value());
  EXPECT_TRUE(*whole == big) << "the 40 MiB object came back with different bytes";
  auto slice = [&](std::size_t offset, std::size_t length) {
    return Bytes(big.begin() + static_cast<std::ptrdiff_t>(offset),
                 big.begin() + static_cast<std::ptrdiff_t>(std::min(big.size(), offset + length)));
  };
  for (const Range range :
       {Range{6 * kMiB - 100, 200}, Range{12 * kMiB - 1, 2}, Range{5 * kMiB, 14 * kMiB},
        Range{36 * kMiB - 10, 4 * kMiB + 10}, Range{39 * kMiB, 5 * kMiB}, Range{0, UINT64_MAX}}) {
    SCOPED_TRACE(std::to_string(range.offset) + "+" + std::to_string(range.length));
    const auto got = store.get("backup/pack-40", range);
    ASSERT_TRUE(got.has_value());
    EXPECT_TRUE(*got == slice(range.offset, std::min<std::uint64_t>(range.length, big.size())));
  }
  // Exactly two full parts, and one part on a single thread.
  S3Options serial = multipart_options(server_, "multipart");
  serial.parallel_parts = 1;
  S3Store serial_store(serial);
  const Bytes twelve = pattern(12 * kMiB, 8);
  ASSERT_EQ(serial_store.put("backup/pack-12", twelve), PutResult::kCreated);
  EXPECT_TRUE(serial_store.get("backup/pack-12", std::nullopt) == twelve);
  S3Options one_part = multipart_options(server_, "multipart");
  one_part.part_size = 16 << 20;
  const Bytes ten = pattern(10 * kMiB, 9);
  ASSERT_EQ(S3Store(one_part).put("backup/pack-10", ten), PutResult::kCreated);
  EXPECT_TRUE(store.get("backup/pack-10", std::nullopt) == ten);
  EXPECT_EQ(names_of(store.list("backup/")),
            (std::vector<std::string>{"backup/pack-10", "backup/pack-12", "backup/pack-40"}));
  EXPECT_TRUE(store.list_multipart_uploads().empty());
}

// Fails part 3 of each multipart put, after listing the uploads in progress.
class PartFailingStore : public S3Store {
 public:
  using S3Store::S3Store;
  std::vector<std::string> uploads_seen;

 protected:
  void before_upload_part(int part_number) override {
    if (part_number != 3) return;
    uploads_seen = list_multipart_uploads();
    throw Error(ErrorCode::kIo, "injected failure of part 3");
  }
};

TEST_F(S3StoreTest, AFailedPartAbortsTheUploadAndLeavesNoParts) {
  PartFailingStore store(multipart_options(server_, "aborted"));
  const auto [code, message] = error_of([&] { store.put("pack", pattern(40 << 20, 10)); });
  EXPECT_EQ(code, ErrorCode::kIo) << message;
  EXPECT_NE(message.find("injected failure of part 3"), std::string::npos) << message;
  // The upload was in progress while its parts went up, and is gone now.
  EXPECT_EQ(store.uploads_seen, std::vector<std::string>{"aborted/pack"});
  EXPECT_TRUE(store.list_multipart_uploads().empty());
  EXPECT_FALSE(store.stat("pack").has_value());
  EXPECT_TRUE(store.list("").empty());
  // The same store puts the object once nothing fails.
  S3Store healthy(multipart_options(server_, "aborted"));
  const Bytes data = pattern(13 << 20, 11);
  ASSERT_EQ(healthy.put("pack", data), PutResult::kCreated);
  EXPECT_TRUE(healthy.get("pack", std::nullopt) == data);
  EXPECT_TRUE(healthy.list_multipart_uploads().empty());
}

// What a killed put leaves: an upload in progress. clean_leftovers (gc)
// aborts uploads older than its age limit, and only those.
class LeftoverCleaningStore : public S3Store {
 public:
  using S3Store::S3Store;
  std::size_t aborted_young = 0, aborted_old = 0;

 protected:
  void before_upload_part(int part_number) override {
    if (part_number != 3) return;
    aborted_young = clean_leftovers(std::chrono::hours(1));
    aborted_old = clean_leftovers(std::chrono::seconds(0));
    throw Error(ErrorCode::kIo, "stopped after cleaning");
  }
};

TEST_F(S3StoreTest, CleanLeftoversAbortsOnlyUploadsOlderThanItsAgeLimit) {
  LeftoverCleaningStore store(multipart_options(server_, "leftover"));
  EXPECT_THROW(store.put("pack", pattern(40 << 20, 12)), Error);
  EXPECT_EQ(store.aborted_young, 0u);
  EXPECT_EQ(store.aborted_old, 1u);
  EXPECT_TRUE(store.list_multipart_uploads().empty());
  EXPECT_EQ(store.clean_leftovers(std::chrono::seconds(0)), 0u);
}

TEST_F(S3StoreTest, PutIsCreateOnlyOnTheServerEvenWithoutTheStatCheck) {
  // Two writers racing past the repository's stat() check both reach put():
  // the server keeps the first (If-None-Match: *).
  S3Store a(s3_test_options(server_, s3_run_bucket(server_), "create-only"));
  S3Store b(s3_test_options(server_, s3_run_bucket(server_), "create-only"));
  const Bytes first = pattern(4096, 1), second = pattern(4096, 2);
  ASSERT_EQ(a.put("wal/seg", first), PutResult::kCreated);
  EXPECT_EQ(b.put("wal/seg", second), PutResult::kAlreadyExists);
  EXPECT_TRUE(a.get("wal/seg", std::nullopt) == first);
  // A WAL segment's envelope (16 MiB and a header) is one PUT too, so
  // create-only as well.
  const Bytes segment = pattern((16 << 20) + 100, 3);
  ASSERT_EQ(a.put("wal/big", segment), PutResult::kCreated);
  EXPECT_EQ(b.put("wal/big", pattern((16 << 20) + 100, 4)), PutResult::kAlreadyExists);
  EXPECT_TRUE(a.get("wal/big", std::nullopt) == segment);
  constexpr int kWriters = 8;
  std::vector<PutResult> results(kWriters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i)
    threads.emplace_back([&, i] { results[i] = a.put("race", pattern(65536, 100 + i)); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::count(results.begin(), results.end(), PutResult::kCreated), 1);
  const int winner = static_cast<int>(
      std::find(results.begin(), results.end(), PutResult::kCreated) - results.begin());
  EXPECT_TRUE(a.get("race", std::nullopt) == pattern(65536, 100 + winner));
}

TEST_F(S3StoreTest, SixtyFourMiBPutAsOnePutAndAsParts) {
  const Bytes data = pattern(64 << 20, 12);
  S3Options single = s3_test_options(server_, s3_run_bucket(server_), "timing");
  single.multipart_threshold = S3Store::kMaxPutBytes;
  S3Options parts = s3_test_options(server_, s3_run_bucket(server_), "timing");
  for (int round = 0; round < 2; ++round) {
    const auto t0 = Clock::now();
    const std::string n = std::to_string(round);  // a new name each round: puts are create-only
    ASSERT_EQ(S3Store(single).put("single" + n, data), PutResult::kCreated);
    const auto t1 = Clock::now();
    ASSERT_EQ(S3Store(parts).put("parts" + n, data), PutResult::kCreated);
    const auto t2 = Clock::now();
    std::printf("64 MiB put: one PUT %.1f ms, multipart (8 MiB parts, 4 in parallel) %.1f ms\n",
                ms_between(t0, t1), ms_between(t1, t2));
  }
  S3Store store(parts);
  EXPECT_TRUE(store.get("parts1", std::nullopt) == data);
  EXPECT_EQ(store.stat("single1")->size, data.size());
  EXPECT_EQ(store.remove_many({"single0", "parts0", "single1", "parts1"}), 4u);
}

}  // namespace
}  // namespace walvault::store::testing
