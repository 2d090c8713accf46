// AWS Signature Version 4 (SigV4) request signing, as S3 and every
// S3-compatible server (Ceph RGW, MinIO, R2, ...) verify it.
//
// Pure functions over strings: no clock, no I/O, no HTTP library. The S3
// store builds a SignedRequest, asks for the Authorization header and sends
// exactly the headers it signed. Each step (canonical request, string to
// sign, signature) is exposed so the unit tests can check it against AWS's
// published test vectors (tests/unit/store/s3_sigv4_test.cpp).
//
// The secret access key goes into HMAC only; nothing here puts it, or a
// derived key, into a returned string other than the signature itself.
// Thread-safe.
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.h"

namespace walvault::store::sigv4 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials only; sent as x-amz-security-token
};

// Everything of an HTTP request that the signature covers.
struct SignedRequest {
  std::string method;  // "GET", "PUT", ...
  // The path exactly as sent on the wire, already URI-encoded ("/bucket/a%24b").
  std::string canonical_uri;
  // Query parameters, not encoded; any order (they are sorted when signing).
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign, any case and order; must include host and x-amz-date.
  // Values are trimmed and inner runs of spaces folded, as SigV4 requires.
  std::vector<std::pair<std::string, std::string>> headers;
  // Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD".
  std::string payload_hash;
};

// RFC 3986 percent-encoding of every byte except A-Z a-z 0-9 - . _ ~ (and
// '/', when `keep_slash`), with upper-case hex digits: what SigV4 and S3
// expect of both paths and query strings.
std::string uri_encode(std::string_view text, bool keep_slash);

// "20150830T123600Z" for a Unix time (UTC).
std::string amz_date(std::time_t t);

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(ByteView data);

// The encoded, sorted query string ("a=1&b=2"), as sent and as signed.
std::string canonical_query_string(const std::vector<std::pair<std::string, std::string>>& query);

// "host;x-amz-date": the lower-cased, sorted header names.
std::string signed_headers(const SignedRequest& request);

std::string canonical_request(const SignedRequest& request);

// `amz_date` as made by amz_date(); the scope is "<yyyymmdd>/<region>/<service>/aws4_request".
std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request);

// Hex HMAC-SHA256 of `string_to_sign` under the key derived from `secret`
// for the date, region and service of the scope.
std::string signature(std::string_view secret, std::string_view amz_date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign);

// The whole Authorization header value:
// "AWS4-HMAC-SHA256 Credential=<id>/<scope>, SignedHeaders=..., Signature=...".
// `amz_date` must equal the request's x-amz-date header.
std::string authorization(const SignedRequest& request, const Credentials& credentials,
                          std::string_view region, std::string_view service,
                          std::string_view amz_date);

}  // namespace walvault::store::sigv4
