// S3Store: an ObjectStore over the S3 REST API (AWS S3 and S3-compatible
// servers such as Ceph RGW and MinIO), spoken through libcurl with AWS
// Signature V4 (s3_sigv4.h).
//
// Location syntax: "s3://bucket" or "s3://bucket/prefix"; the object
// "wal/x" of a store with prefix "prod" is the key "prod/wal/x". S3 keys are
// at most 1024 bytes, so a prefix shortens the longest name the store can
// hold by its length + 1 (the server refuses longer keys: Error(kIo)); the
// repository's names are far shorter.
//
// Semantics against the ObjectStore contract:
// - put() is a single PUT (objects up to kMaxPutBytes) and S3 overwrites
//   silently, so capabilities().exclusive_create is false and put() always
//   reports kCreated; the repository stats before it puts (repository.cpp).
// - get() with a Range is a ranged GET; stat() is a HEAD; list() pages
//   through ListObjectsV2 with continuation tokens; remove() is a HEAD (to
//   report whether the object existed) then a DELETE.
// - Transient failures (connection errors, timeouts, 5xx, 429, SlowDown) are
//   retried with exponential backoff and full jitter; other 4xx are not.
//   Every attempt is bounded by a connect and a total timeout.
// - Failures throw Error(kIo, "<op> s3://bucket/key: HTTP <status> <code>:
//   <message>"); rejected credentials throw Error(kKey, "... authentication
//   failed ..."); a missing bucket is Error(kRepoFormat, "bucket ... does not
//   exist"). No message or log line carries a credential or signature.
//
// Threading: all methods may be called concurrently. Each thread keeps one
// curl handle (thread_local), so connections are reused per thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "store/object_store.h"

namespace walvault::store {

enum class UriStyle {
  kPath,         // https://endpoint/bucket/key (Ceph, MinIO, most custom endpoints)
  kVirtualHost,  // https://bucket.endpoint/key (AWS)
};

struct S3Options {
  std::string bucket;
  std::string prefix;  // "" or a valid object name; keys are "<prefix>/<name>"
  // "scheme://host[:port]"; empty means AWS: https://s3.<region>.amazonaws.com.
  std::string endpoint;
  std::string region = "us-east-1";
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  // Unset: path-style for a custom endpoint, virtual-host for AWS.
  std::optional<UriStyle> uri_style;
  bool verify_tls = true;
  std::string ca_file;  // PEM bundle; empty means the system's
  std::chrono::milliseconds connect_timeout{10'000};
  // Bound on one attempt of a small request; an upload or a ranged download
  // also gets 1 s per MiB, a whole-object download 10 times this. A transfer
  // slower than 1 KiB/s for 30 s is abandoned (and retried) earlier.
  std::chrono::milliseconds request_timeout{60'000};
  int max_attempts = 5;  // 1 = no retries
  std::chrono::milliseconds backoff_base{200};
  std::chrono::milliseconds backoff_max{5'000};
};

// Parses "s3://bucket[/prefix]" and fills the rest from the AWS environment
// variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_REGION or AWS_DEFAULT_REGION, AWS_ENDPOINT_URL). Throws Error(kUsage)
// for a malformed location or endpoint and when no credentials are set.
S3Options s3_options_from_location(const std::string& location);

class S3Store : public ObjectStore {
 public:
  // Largest object put() accepts: S3's limit for a single PUT. Multipart
  // upload, for bigger objects and parallel parts, is not implemented yet.
  static constexpr std::uint64_t kMaxPutBytes = 5ull << 30;

  // Throws Error(kUsage) for an invalid bucket, prefix or endpoint. Makes no request.
  explicit S3Store(S3Options options);

  PutResult put(const std::string& name, ByteView data) override;
  std::optional<Bytes> get(const std::string& name, std::optional<Range> range) override;
  std::optional<ObjectInfo> stat(const std::string& name) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  bool remove(const std::string& name) override;
  Capabilities capabilities() const override {
    return {.exclusive_create = false, .reports_space = false};
  }
  std::string describe() const override;

  // Creates the bucket (tests, and later `repo init`); an existing bucket
  // owned by the same user is success.
  void create_bucket();

 private:
  struct Request;   // defined in s3_store.cpp
  struct Response;  // defined in s3_store.cpp

  // Sends `request` with retries; returns the final response, whatever its status.
  Response send(const Request& request);
  // Throws the Error that a failed response means for `operation` on `key`.
  [[noreturn]] void fail(const std::string& operation, const std::string& key,
                         const Response& response);
  // After a 404 without a body (HEAD): throws when the bucket itself is
  // missing, checked once per store.
  void require_bucket(const std::string& operation);
  std::string key_of(const std::string& name) const;
  std::string location_of(const std::string& key) const;

  S3Options options_;
  std::string scheme_;     // "http" or "https"
  std::string host_;       // Host header: authority of the endpoint (with bucket, virtual-host)
  std::string path_base_;  // "/bucket" (path style) or ""
  std::atomic<bool> bucket_seen_{false};
};

}  // namespace walvault::store
