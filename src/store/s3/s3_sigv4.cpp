#include "store/s3/s3_sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "core/error.h"

namespace walvault::store::sigv4 {

namespace {

using Digest = std::array<std::uint8_t, 32>;

Digest hmac(ByteView key, std::string_view data) {
  Digest out;
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
           &length) == nullptr ||
      length != out.size()) {
    throw Error(ErrorCode::kInternal, "HMAC-SHA256 failed");
  }
  return out;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Trims the value and folds runs of spaces into one, as the canonical form requires.
std::string normalize_value(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Lower-cased names with normalized values, sorted by name.
std::vector<std::pair<std::string, std::string>> canonical_headers(const SignedRequest& request) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [name, value] : request.headers) {
    headers.emplace_back(lower(name), normalize_value(value));
  }
  std::sort(headers.begin(), headers.end());
  return headers;
}

}  // namespace

std::string uri_encode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

std::string amz_date(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[20];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string sha256_hex(ByteView data) {
  Digest digest;
  SHA256(data.data(), data.size(), digest.data());
  return to_hex(digest);
}

std::string canonical_query_string(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& [name, value] : query) {
    encoded.emplace_back(uri_encode(name, false), uri_encode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name + "=" + value;
  }
  return out;
}

std::string signed_headers(const SignedRequest& request) {
  std::string out;
  for (const auto& header : canonical_headers(request)) {
    if (!out.empty()) out += ';';
    out += header.first;
  }
  return out;
}

std::string canonical_request(const SignedRequest& request) {
  std::string out = request.method + "\n" + request.canonical_uri + "\n" +
                    canonical_query_string(request.query) + "\n";
  for (const auto& [name, value] : canonical_headers(request)) out += name + ":" + value + "\n";
  out += "\n" + signed_headers(request) + "\n" + request.payload_hash;
  return out;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request) {
  return "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + std::string(scope) + "\n" +
         sha256_hex(as_bytes(canonical_request));
}

std::string signature(std::string_view secret, std::string_view amz_date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign) {
  const std::string first_key = "AWS4" + std::string(secret);
  Digest key = hmac(as_bytes(first_key), amz_date.substr(0, 8));
  key = hmac(key, region);
  key = hmac(key, service);
  key = hmac(key, "aws4_request");
  return to_hex(hmac(key, string_to_sign));
}

std::string authorization(const SignedRequest& request, const Credentials& credentials,
                          std::string_view region, std::string_view service,
                          std::string_view amz_date) {
  const std::string scope = std::string(amz_date.substr(0, 8)) + "/" + std::string(region) + "/" +
                            std::string(service) + "/aws4_request";
  const std::string to_sign = string_to_sign(amz_date, scope, canonical_request(request));
  return "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope +
         ", SignedHeaders=" + signed_headers(request) + ", Signature=" +
         signature(credentials.secret_access_key, amz_date, region, service, to_sign);
}

}  // namespace walvault::store::sigv4
