// Implementation notes:
// - libcurl is loaded on first use (curl_api.h), so a local repository never pays for it.
// - One curl easy handle per thread, reset before each request: curl keeps its
//   connection cache across curl_easy_reset, so a thread's requests to the
//   same endpoint reuse one keep-alive connection.
// - Every attempt is signed afresh (the signature covers x-amz-date), and the
//   Host header is set explicitly so that what is signed is what is sent.
// - Error bodies are parsed by looking for <Code> and <Message> only; either
//   may be missing or empty (Ceph RGW sends <Message/>), and HEAD responses
//   have no body at all.
#include "store/s3_store.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <thread>
#include <utility>

#include "core/error.h"
#include "store/curl_api.h"
#include "store/s3_sigv4.h"

namespace walvault::store {

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

// The one curl handle of the calling thread, reset for a new request.
CURL* thread_curl(const CurlApi& api) {
  struct Handle {
    const CurlApi& api;
    CURL* curl = api.easy_init();
    ~Handle() { api.easy_cleanup(curl); }
  };
  thread_local Handle handle{api};
  if (handle.curl == nullptr) throw Error(ErrorCode::kInternal, "curl_easy_init failed");
  api.easy_reset(handle.curl);
  return handle.curl;
}

// Transport failures that a later attempt cannot fix: bad configuration or a
// certificate that does not verify.
bool is_permanent(CURLcode code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_OUT_OF_MEMORY:
      return true;
    default:
      return false;
  }
}

std::string xml_unescape(std::string_view text) {
  static constexpr std::pair<std::string_view, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    bool replaced = false;
    if (text[i] == '&') {
      for (const auto& [entity, c] : kEntities) {
        if (text.substr(i, entity.size()) == entity) {
          out += c;
          i += entity.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += text[i++];
  }
  return out;
}

// The unescaped text of the first <tag>...</tag> in `xml` at or after `from`,
// or "" when there is none (also for an empty element <tag/>).
std::string xml_text(std::string_view xml, std::string_view tag, std::size_t from = 0) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const auto begin = xml.find(open, from);
  if (begin == std::string_view::npos) return "";
  const auto end = xml.find(close, begin + open.size());
  if (end == std::string_view::npos) return "";
  return xml_unescape(xml.substr(begin + open.size(), end - begin - open.size()));
}

// Server text for an error message: one line, printable, bounded.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  return out;
}

std::chrono::milliseconds backoff(const S3Options& options, int attempt) {
  thread_local std::minstd_rand rng(std::random_device{}());
  const auto cap = std::min<std::int64_t>(options.backoff_max.count(),
                                          options.backoff_base.count() << std::min(attempt, 20));
  // "Full jitter": uniform in [0, cap], so retrying clients spread out.
  return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, cap)(rng));
}

bool is_valid_bucket(const std::string& bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  return std::all_of(bucket.begin(), bucket.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           (c >= 'A' && c <= 'Z');
  });
}

}  // namespace

struct S3Store::Request {
  std::string method;  // GET, HEAD, PUT, DELETE
  std::string key;     // "" addresses the bucket itself
  Params query;
  Params headers;  // extra headers to send and sign (Range)
  ByteView body;
  std::chrono::milliseconds timeout;
};

struct S3Store::Response {
  long status = 0;  // 0: no HTTP response (transport failure)
  CURLcode curl_code = CURLE_OK;
  std::string transport_error;
  Bytes body;
  std::uint64_t content_length = 0;  // of a HEAD response
  int attempts = 0;

  bool ok() const { return status >= 200 && status < 300; }
  std::string code() const { return xml_text(as_chars(body), "Code"); }
  bool retryable() const {
    if (status == 0) return !is_permanent(curl_code);
    return status >= 500 || status == 429 || (status == 400 && code() == "RequestTimeout");
  }
};

S3Options s3_options_from_location(const std::string& location) {
  constexpr std::string_view kScheme = "s3://";
  if (!location.starts_with(kScheme)) {
    throw Error(ErrorCode::kUsage, "store location " + location + " is not s3://bucket[/prefix]");
  }
  S3Options options;
  std::string rest = location.substr(kScheme.size());
  while (rest.ends_with('/')) rest.pop_back();
  const auto slash = rest.find('/');
  options.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) options.prefix = rest.substr(slash + 1);
  auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return value == nullptr ? std::string() : std::string(value);
  };
  options.access_key_id = env("AWS_ACCESS_KEY_ID");
  options.secret_access_key = env("AWS_SECRET_ACCESS_KEY");
  options.session_token = env("AWS_SESSION_TOKEN");
  options.endpoint = env("AWS_ENDPOINT_URL");
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (!env(name).empty()) {
      options.region = env(name);
      break;
    }
  }
  return options;
}

S3Store::S3Store(S3Options options) : options_(std::move(options)) {
  const std::string where = "S3 repository " + describe();
  if (!is_valid_bucket(options_.bucket)) {
    throw Error(ErrorCode::kUsage, where + ": \"" + options_.bucket +
                                       "\" is not a valid bucket name (3-63 of a-z 0-9 . - _)");
  }
  if (!options_.prefix.empty() && !is_valid_object_name(options_.prefix)) {
    throw Error(ErrorCode::kUsage, where + ": invalid prefix \"" + options_.prefix + "\"");
  }
  if (options_.access_key_id.empty() || options_.secret_access_key.empty()) {
    throw Error(ErrorCode::kUsage,
                where + ": no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  if (options_.region.empty()) options_.region = "us-east-1";
  const bool custom = !options_.endpoint.empty();
  const std::string endpoint =
      custom ? options_.endpoint : "https://s3." + options_.region + ".amazonaws.com";
  const auto sep = endpoint.find("://");
  scheme_ = sep == std::string::npos ? "" : endpoint.substr(0, sep);
  std::string authority = sep == std::string::npos ? "" : endpoint.substr(sep + 3);
  while (authority.ends_with('/')) authority.pop_back();
  if ((scheme_ != "http" && scheme_ != "https") || authority.empty() ||
      authority.find_first_of("/?#@ ") != std::string::npos) {
    // Not echoed: an endpoint URL may carry user info.
    throw Error(ErrorCode::kUsage, where + ": the endpoint (AWS_ENDPOINT_URL) must be " +
                                       "http(s)://host[:port], without a path or user info");
  }
  const UriStyle style =
      options_.uri_style.value_or(custom ? UriStyle::kPath : UriStyle::kVirtualHost);
  if (style == UriStyle::kPath) {
    host_ = authority;
    path_base_ = "/" + sigv4::uri_encode(options_.bucket, false);
  } else {
    host_ = options_.bucket + "." + authority;
  }
}

std::string S3Store::describe() const {
  return "s3://" + options_.bucket + (options_.prefix.empty() ? "" : "/" + options_.prefix);
}

std::string S3Store::key_of(const std::string& name) const {
  return options_.prefix.empty() ? name : options_.prefix + "/" + name;
}

std::string S3Store::location_of(const std::string& key) const {
  return "s3://" + options_.bucket + (key.empty() ? "" : "/" + key);
}

S3Store::Response S3Store::send(const Request& request) {
  std::string path = path_base_;
  if (!request.key.empty() || path.empty()) path += "/" + sigv4::uri_encode(request.key, true);
  const std::string query = sigv4::canonical_query_string(request.query);
  const std::string url = scheme_ + "://" + host_ + path + (query.empty() ? "" : "?" + query);
  const std::string payload_hash = sigv4::sha256_hex(request.body);
  const sigv4::Credentials credentials{options_.access_key_id, options_.secret_access_key,
                                       options_.session_token};
  const CurlApi& api = curl_api();

  Response response;
  for (int attempt = 1;; ++attempt) {
    sigv4::SignedRequest signed_request{request.method, path, request.query, request.headers,
                                        payload_hash};
    const std::string date = sigv4::amz_date(std::time(nullptr));
    signed_request.headers.emplace_back("Host", host_);
    signed_request.headers.emplace_back("x-amz-date", date);
    signed_request.headers.emplace_back("x-amz-content-sha256", payload_hash);
    if (!options_.session_token.empty()) {
      signed_request.headers.emplace_back("x-amz-security-token", options_.session_token);
    }
    const std::string auth =
        sigv4::authorization(signed_request, credentials, options_.region, "s3", date);

    curl_slist* header_list = nullptr;
    auto add_header = [&](const std::string& line) {
      curl_slist* next = api.slist_append(header_list, line.c_str());
      if (next == nullptr) throw Error(ErrorCode::kInternal, "curl_slist_append failed");
      header_list = next;
    };
    response = Response{};
    try {
      for (const auto& [name, value] : signed_request.headers) add_header(name + ": " + value);
      add_header("Authorization: " + auth);
      add_header("Expect:");  // no 100-continue round trip before a PUT body
      add_header("Content-Type:");

      CURL* curl = thread_curl(api);
      char error_buffer[CURL_ERROR_SIZE] = {};
      api.easy_setopt(curl, CURLOPT_URL, url.c_str());
      api.easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
      api.easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
      api.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                      static_cast<long>(options_.connect_timeout.count()));
      api.easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
      api.easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
      api.easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
      api.easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
      api.easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
      if (!options_.ca_file.empty())
        api.easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());

      ByteView upload = request.body;
      if (request.method == "HEAD") {
        api.easy_setopt(curl, CURLOPT_NOBODY, 1L);
      } else if (request.method == "PUT") {
        api.easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        api.easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload.size()));
        api.easy_setopt(curl, CURLOPT_READDATA, &upload);
        api.easy_setopt(
            curl, CURLOPT_READFUNCTION, +[](char* out, size_t size, size_t n, void* data) {
              auto* rest = static_cast<ByteView*>(data);
              const size_t count = std::min(size * n, rest->size());
              std::memcpy(out, rest->data(), count);
              *rest = rest->subspan(count);
              return count;
            });
      } else if (request.method != "GET") {
        api.easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      }
      api.easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
      api.easy_setopt(
          curl, CURLOPT_WRITEFUNCTION, +[](char* in, size_t size, size_t n, void* data) {
            auto* body = static_cast<Bytes*>(data);
            body->insert(body->end(), in, in + size * n);
            return size * n;
          });

      response.curl_code = api.easy_perform(curl);
      if (response.curl_code == CURLE_OK) {
        api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
        curl_off_t length = -1;
        api.easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        response.content_length = length < 0 ? 0 : static_cast<std::uint64_t>(length);
      } else {
        response.transport_error =
            error_buffer[0] != '\0' ? error_buffer : api.easy_strerror(response.curl_code);
      }
    } catch (...) {
      api.slist_free_all(header_list);
      throw;
    }
    api.slist_free_all(header_list);
    response.attempts = attempt;
    if (!response.retryable() || attempt >= options_.max_attempts) return response;
    std::this_thread::sleep_for(backoff(options_, attempt));
  }
}

void S3Store::fail(const std::string& operation, const std::string& key, const Response& response) {
  const std::string where = operation + " " + location_of(key);
  const std::string tries =
      response.attempts > 1 ? " (after " + std::to_string(response.attempts) + " attempts)" : "";
  if (response.status == 0) {
    throw Error(ErrorCode::kIo, where + ": " + printable(response.transport_error) + tries);
  }
  const std::string code = printable(response.code());
  const std::string message = printable(xml_text(as_chars(response.body), "Message"));
  const std::string status =
      "HTTP " + std::to_string(response.status) + (code.empty() ? "" : " " + code);
  if (code == "NoSuchBucket" || (response.status == 404 && key.empty())) {
    throw Error(ErrorCode::kRepoFormat,
                where + ": " + status + ": bucket " + options_.bucket + " does not exist");
  }
  if (response.status == 403 &&
      (code.empty() || code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" ||
       code == "InvalidToken" || code == "ExpiredToken")) {
    throw Error(ErrorCode::kKey, where + ": " + status +
                                     ": authentication failed (check AWS_ACCESS_KEY_ID, "
                                     "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)");
  }
  throw Error(ErrorCode::kIo,
              where + ": " + status + (message.empty() ? "" : ": " + message) + tries);
}

void S3Store::require_bucket(const std::string& operation) {
  if (bucket_seen_.load()) return;
  const Response response = send(Request{"HEAD", "", {}, {}, {}, options_.request_timeout});
  if (!response.ok()) fail(operation, "", response);
  bucket_seen_.store(true);
}

PutResult S3Store::put(const std::string& name, ByteView data) {
  require_valid_object_name(name);
  const std::string key = key_of(name);
  if (data.size() > kMaxPutBytes) {
    throw Error(ErrorCode::kIo, "put " + location_of(key) + ": " + std::to_string(data.size()) +
                                    " bytes is more than one PUT may carry");
  }
  const auto timeout = options_.request_timeout + std::chrono::seconds(data.size() >> 20);
  const Response response = send(Request{"PUT", key, {}, {}, data, timeout});
  if (!response.ok()) fail("put", key, response);
  bucket_seen_.store(true);
  return PutResult::kCreated;
}

std::optional<Bytes> S3Store::get(const std::string& name, std::optional<Range> range) {
  require_valid_object_name(name);
  const std::string key = key_of(name);
  Request request{"GET", key, {}, {}, {}, options_.request_timeout * 10};
  if (range) {
    if (range->length == 0) {
      if (!stat(name)) return std::nullopt;
      return Bytes{};
    }
    const bool to_end = range->length > UINT64_MAX - range->offset;
    request.headers.emplace_back(
        "Range", "bytes=" + std::to_string(range->offset) + "-" +
                     (to_end ? "" : std::to_string(range->offset + range->length - 1)));
    if (!to_end && range->length < (std::uint64_t{1} << 40)) {
      request.timeout = options_.request_timeout + std::chrono::seconds(range->length >> 20);
    }
  }
  Response response = send(request);
  if (response.status == 404 && response.code() != "NoSuchBucket") {
    if (response.code().empty()) require_bucket("get");
    return std::nullopt;
  }
  if (response.status == 416) return Bytes{};  // the range starts at or past the end
  if (!response.ok()) fail("get", key, response);
  bucket_seen_.store(true);
  if (range && response.status == 200) {
    // The server ignored the Range header and sent the whole object.
    Bytes& body = response.body;
    const std::uint64_t begin = std::min<std::uint64_t>(range->offset, body.size());
    const std::uint64_t end = begin + std::min<std::uint64_t>(range->length, body.size() - begin);
    return Bytes(body.begin() + static_cast<std::ptrdiff_t>(begin),
                 body.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return std::move(response.body);
}

std::optional<ObjectInfo> S3Store::stat(const std::string& name) {
  require_valid_object_name(name);
  const std::string key = key_of(name);
  const Response response = send(Request{"HEAD", key, {}, {}, {}, options_.request_timeout});
  if (response.status == 404) {
    require_bucket("stat");
    return std::nullopt;
  }
  if (!response.ok()) fail("stat", key, response);
  bucket_seen_.store(true);
  return ObjectInfo{name, response.content_length};
}

std::vector<ObjectInfo> S3Store::list(const std::string& prefix) {
  const std::string store_prefix = options_.prefix.empty() ? "" : options_.prefix + "/";
  const std::string key_prefix = store_prefix + prefix;
  std::vector<ObjectInfo> out;
  std::string token;
  do {
    Params query = {{"list-type", "2"}, {"prefix", key_prefix}};
    if (!token.empty()) query.emplace_back("continuation-token", token);
    const Response response = send(Request{"GET", "", query, {}, {}, options_.request_timeout});
    if (!response.ok()) fail("list", key_prefix, response);
    const std::string_view xml = as_chars(response.body);
    for (auto at = xml.find("<Contents>"); at != std::string_view::npos;
         at = xml.find("<Contents>", at + 1)) {
      const auto end = xml.find("</Contents>", at);
      const std::string_view entry = xml.substr(at, end == std::string_view::npos ? end : end - at);
      const std::string key = xml_text(entry, "Key");
      if (!key.starts_with(store_prefix)) continue;
      std::string name = key.substr(store_prefix.size());
      // Keys walvault did not write (e.g. "dir/" markers from other tools) are not objects here.
      if (!is_valid_object_name(name)) continue;
      out.push_back(
          ObjectInfo{std::move(name), std::strtoull(xml_text(entry, "Size").c_str(), nullptr, 10)});
    }
    token.clear();
    if (xml_text(xml, "IsTruncated") == "true") {
      token = xml_text(xml, "NextContinuationToken");
      if (token.empty()) {
        throw Error(ErrorCode::kIo, "list " + location_of(key_prefix) +
                                        ": truncated listing without a continuation token");
      }
    }
  } while (!token.empty());
  bucket_seen_.store(true);
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
  return out;
}

bool S3Store::remove(const std::string& name) {
  // S3 answers a DELETE of a missing key with 204 too, so ask first.
  if (!stat(name)) return false;
  const std::string key = key_of(name);
  const Response response = send(Request{"DELETE", key, {}, {}, {}, options_.request_timeout});
  if (!response.ok() && response.status != 404) fail("remove", key, response);
  return true;
}

void S3Store::create_bucket() {
  const Response response = send(Request{"PUT", "", {}, {}, {}, options_.request_timeout});
  if (response.ok() || response.code() == "BucketAlreadyOwnedByYou") {
    bucket_seen_.store(true);
    return;
  }
  fail("create bucket", "", response);
}

}  // namespace walvault::store
