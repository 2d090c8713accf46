// The S3 test server the s3_tests executable runs against, from the
// environment (.ci/run starts Ceph RGW and sets these):
//   WALVAULT_TEST_S3_ENDPOINT    http://127.0.0.1:7480
//   WALVAULT_TEST_S3_ACCESS_KEY  WALVAULT_TEST_S3_SECRET_KEY
//   WALVAULT_TEST_S3_BUCKET      base name of the buckets the tests create (unique per run)
// Without them the tests skip, unless WALVAULT_REQUIRE_S3=1: then they fail.
#pragma once

#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

#include "store/s3/s3_store.h"

namespace walvault::store::testing {

struct S3TestServer {
  std::string endpoint;
  std::string access_key;
  std::string secret_key;
  std::string bucket_base;
};

// The configured server, or std::nullopt (tests skip). Throws when the
// server is required but not configured, which fails the calling test.
inline std::optional<S3TestServer> s3_test_server() {
  auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return value == nullptr ? std::string() : std::string(value);
  };
  S3TestServer server{env("WALVAULT_TEST_S3_ENDPOINT"), env("WALVAULT_TEST_S3_ACCESS_KEY"),
                      env("WALVAULT_TEST_S3_SECRET_KEY"), env("WALVAULT_TEST_S3_BUCKET")};
  if (server.bucket_base.empty()) server.bucket_base = "walvault-test";
  if (!server.endpoint.empty() && !server.access_key.empty() && !server.secret_key.empty()) {
    return server;
  }
  if (env("WALVAULT_REQUIRE_S3") == "1") {
    throw std::runtime_error(
        "WALVAULT_REQUIRE_S3=1 but WALVAULT_TEST_S3_ENDPOINT, _ACCESS_KEY or _SECRET_KEY is unset");
  }
  return std::nullopt;
}

// "<base>-<8 random hex digits>": a bucket name no other run uses.
inline std::string unique_bucket_name(const std::string& base) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device random;
  std::string name = base + "-";
  for (int i = 0; i < 8; ++i) name += kHex[random() % 16];
  return name;
}

inline S3Options s3_test_options(const S3TestServer& server, const std::string& bucket,
                                 const std::string& prefix) {
  S3Options options;
  options.endpoint = server.endpoint;
  options.access_key_id = server.access_key;
  options.secret_access_key = server.secret_key;
  options.bucket = bucket;
  options.prefix = prefix;
  return options;
}

// Creates a bucket no other run uses and returns its name.
inline std::string make_s3_test_bucket(const S3TestServer& server) {
  std::string name = unique_bucket_name(server.bucket_base);
  S3Store(s3_test_options(server, name, "")).create_bucket();
  return name;
}

// This process's own bucket, created on first use.
inline const std::string& s3_run_bucket(const S3TestServer& server) {
  static const std::string bucket = make_s3_test_bucket(server);
  return bucket;
}

// A store over a fresh bucket of its own, without a prefix, so that the
// longest valid object name (1024 bytes) is also a valid key; nullptr when
// no server is configured.
inline std::unique_ptr<S3Store> make_s3_test_store() {
  const auto server = s3_test_server();
  if (!server) return nullptr;
  return std::make_unique<S3Store>(s3_test_options(*server, make_s3_test_bucket(*server), ""));
}

}  // namespace walvault::store::testing
