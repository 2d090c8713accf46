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
// - put() is a single PUT up to options.multipart_threshold (16 MiB + 64 KiB:
//   a WAL segment's envelope is one PUT) and a multipart upload above it: CreateMultipartUpload,
//   parts of options.part_size uploaded by options.parallel_parts threads,
//   CompleteMultipartUpload; on any failure the upload is aborted (best
//   effort) so that no parts linger, and the first error is thrown. Both
//   carry If-None-Match: * (412 -> kAlreadyExists): AWS S3 (since 2024) and
//   Ceph RGW refuse a single PUT over an existing key, AWS also a multipart
//   completion (RGW 16 does not). Servers may ignore the header, so
//   capabilities().exclusive_create stays false and the repository stats
//   before it puts (repository.cpp).
// - get() with a Range is a ranged GET; stat() is a HEAD; list() pages
//   through ListObjectsV2 with continuation tokens; remove() is a HEAD (to
//   report whether the object existed) then a DELETE; remove_many() is
//   DeleteObjects, 1000 keys a request, and counts every distinct name (S3
//   reports missing keys as deleted).
// - Every request body is covered by its SHA-256 in the signature
//   (x-amz-content-sha256), so the server refuses a body damaged in transit;
//   DeleteObjects also carries the Content-MD5 that S3 requires for it.
// - Transient failures (connection errors, timeouts, 5xx, 429, SlowDown) are
//   retried with exponential backoff and full jitter; other 4xx are not.
//   Every attempt is bounded by a connect and a total timeout.
// - Failures throw Error(kIo, "<op> s3://bucket/key: HTTP <status> <code>:
//   <message>"); rejected credentials throw Error(kKey, "... authentication
//   failed ..."); a missing bucket is Error(kRepoFormat, "bucket ... does not
//   exist"). No message or log line carries a credential or signature.
//
// Threading: all methods may be called concurrently. Each thread keeps one
// curl handle (thread_local), so connections are reused per thread; a
// multipart put runs its parts on the calling thread and parallel_parts - 1
// threads of its own.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "store/object_store.h"
#include "store/s3/s3_settings.h"

namespace walvault::store {

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
  // put() of more bytes than this is a multipart upload (at most kMaxPutBytes).
  // 16 MiB and the envelope's header room: a WAL segment is always one PUT,
  // and so create-only on the server (If-None-Match, see put()).
  std::uint64_t multipart_threshold = (16ull << 20) + (64u << 10);
  // Size of each part but the last: at least 5 MiB (S3's minimum), at most
  // 5 GiB; raised for one upload when the object would need more than 10,000
  // parts. Each part in flight is hashed and sent from the caller's buffer:
  // no copy.
  std::uint64_t part_size = 8ull << 20;
  int parallel_parts = 4;  // parts in flight at once, 1-64 (s3-parallel)
};

// Parses "s3://bucket[/prefix]" and fills the rest from `settings` (the
// config file), overridden by the AWS environment variables (see
// s3_settings.h): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN replace the file's credentials as one set when either of
// the first two is set; AWS_REGION or AWS_DEFAULT_REGION; AWS_ENDPOINT_URL.
// Throws Error(kUsage) for a malformed location; S3Store's constructor
// refuses a bad endpoint or missing credentials.
S3Options s3_options_from_location(const std::string& location, const S3Settings& settings = {});

class S3Store : public ObjectStore {
 public:
  // Largest object put() accepts as one PUT (S3's limit), and in all (S3's
  // limit for an object).
  static constexpr std::uint64_t kMaxPutBytes = 5ull << 30;
  static constexpr std::uint64_t kMaxObjectBytes = 5ull << 40;
  static constexpr std::uint64_t kMinPartBytes = 5ull << 20;
  static constexpr std::uint64_t kMaxParts = 10'000;
  static constexpr std::size_t kMaxDeleteKeys = 1000;  // keys in one DeleteObjects request

  // Throws Error(kUsage) for an invalid bucket, prefix, endpoint or multipart
  // setting, or without credentials. Makes no request.
  explicit S3Store(S3Options options);

  PutResult put(const std::string& name, ByteView data) override;
  std::optional<Bytes> get(const std::string& name, std::optional<Range> range) override;
  std::optional<ObjectInfo> stat(const std::string& name) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  // One ListObjectsV2 with delimiter "/" per 1,000 directories.
  std::vector<std::string> list_directories(const std::string& prefix) override;
  bool remove(const std::string& name) override;
  std::size_t remove_many(const std::vector<std::string>& names) override;
  Capabilities capabilities() const override {
    return {.exclusive_create = false, .reports_space = false};
  }
  std::string describe() const override;

  // Creates the bucket (tests, and later `repo init`); an existing bucket
  // owned by the same user is success.
  void create_bucket();

  // Keys (with the store's prefix) of the multipart uploads in progress under
  // the store's prefix, one entry per upload, sorted: what a crashed or
  // killed put() can leave behind (a bucket lifecycle rule
  // AbortIncompleteMultipartUpload removes them). Tests check that a failed
  // put() leaves none.
  std::vector<std::string> list_multipart_uploads();
  // Every page of ListObjectsV2 under `key_prefix` (with delimiter "/" when
  // `by_directory`), handed to `on_page` as the response's XML.
  void list_pages(const std::string& key_prefix, bool by_directory,
                  const std::function<void(std::string_view xml)>& on_page);
  // Aborts the multipart uploads under the prefix initiated at least
  // `min_age` ago (a concurrent put() may own a younger one).
  std::size_t clean_leftovers(std::chrono::seconds min_age) override;

 protected:
  // Called before each UploadPart of a multipart put() with the part's
  // number (1-based), on the thread that uploads it; an exception fails the
  // put as a failed part would. Does nothing: a seam for fault-injection tests.
  virtual void before_upload_part(int /*part_number*/) {}

 private:
  struct MultipartUpload {
    std::string key;  // with the store's prefix
    std::string upload_id;
    std::int64_t initiated_us = 0;  // 0 when the server did not say
  };
  std::atomic<bool> conditional_put_{true};  // send If-None-Match: * with PUT
  std::vector<MultipartUpload> multipart_uploads();
  struct Request;   // defined in s3_store.cpp
  struct Response;  // defined in s3_store.cpp

  struct Target;  // defined in s3_store.cpp: a request's signed path, URL, payload hash

  // Sends `request` with retries; returns the final response, whatever its status.
  Response send(const Request& request);
  // One attempt at `request`, without retries.
  Response attempt(const Request& request, const Target& target) const;
  Target target_of(const Request& request) const;
  // The header lines of one attempt, signed afresh (x-amz-date), Authorization last.
  std::vector<std::string> signed_header_lines(const Request& request, const Target& target) const;
  // Throws the Error that a failed response means for `operation` on `key`.
  [[noreturn]] void fail(const std::string& operation, const std::string& key,
                         const Response& response);
  // After a 404 without a body (HEAD): throws when the bucket itself is
  // missing, checked once per store.
  void require_bucket(const std::string& operation);
  std::string key_of(const std::string& name) const;
  std::string location_of(const std::string& key) const;
  PutResult put_multipart(const std::string& key, ByteView data);
  // Uploads `data` as parts of `upload_id`; returns their ETags in part order.
  std::vector<std::string> upload_parts(const std::string& key, const std::string& upload_id,
                                        ByteView data);
  // Deletes the keys (at most kMaxDeleteKeys, distinct) with one DeleteObjects request.
  void delete_batch(const std::vector<std::string>& keys);

  S3Options options_;
  std::string scheme_;     // "http" or "https"
  std::string host_;       // Host header: authority of the endpoint (with bucket, virtual-host)
  std::string path_base_;  // "/bucket" (path style) or ""
  std::atomic<bool> bucket_seen_{false};
};

}  // namespace walvault::store
