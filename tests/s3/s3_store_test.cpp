// S3Store against a real S3 server (Ceph RGW in CI; see s3_test_env.h): the
// conformance suite, plus what only S3 has: credentials, buckets, paging,
// an unreachable gateway.
#include "store/s3_store.h"

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
           {"list", [&] { store.list(""); }}}) {
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
  S3Store store(s3_test_options(server_, bucket, "p"));
  for (const auto& [what, action] : std::vector<std::pair<std::string, std::function<void()>>>{
           {"put", [&] { store.put("obj", to_bytes("data")); }},
           {"get", [&] { store.get("obj", std::nullopt); }},
           {"ranged get",
            [&] {
              store.get("obj", Range{0, 4});
            }},
           {"stat", [&] { store.stat("obj"); }},
           {"list", [&] { store.list(""); }},
           {"remove", [&] { store.remove("obj"); }}}) {
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

}  // namespace
}  // namespace walvault::store::testing
