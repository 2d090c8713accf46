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
// - A multipart put's part threads are started per put and end with it: each
//   opens its own connection (the calling thread uploads parts too, on its
//   kept-alive one). The parts are views of the caller's buffer.
// - The end of a response's headers re-arms TCP_QUICKACK (ack_now): see there.
#include "store/s3/s3_store.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "core/error.h"
#include "core/parallel.h"
#include "core/time_util.h"
#include "store/s3/curl_api.h"
#include "store/s3/s3_sigv4.h"

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

// The socket of the calling thread's connection (one curl handle per thread,
// one kept-alive connection), recorded by curl's socket callbacks, which run
// on the thread that performs the request.
thread_local curl_socket_t t_connection = CURL_SOCKET_BAD;

int record_socket(void* /*unused*/, curl_socket_t socket, curlsocktype /*purpose*/) {
  t_connection = socket;
  return CURL_SOCKOPT_OK;
}

int close_socket(void* /*unused*/, curl_socket_t socket) {
  if (t_connection == socket) t_connection = CURL_SOCKET_BAD;
  return ::close(socket);
}

// Called once a response's headers are in: acknowledge them at once. Ceph
// RGW's beast frontend turns Nagle on (setsockopt TCP_NODELAY 0) and writes
// headers and body with two send calls, so a small body waits for the ACK of
// the headers, which Linux delays by up to 40 ms on a kept-alive connection
// (a fresh one starts in quick-ACK mode): a 100-byte GET took 44 ms instead
// of 2 ms (docs/decisions.md). TCP_QUICKACK is not sticky, hence per response.
// (CURLINFO_ACTIVESOCKET does not name the connection during a transfer.)
void ack_now() {
  if (t_connection == CURL_SOCKET_BAD) return;
  const int on = 1;
  ::setsockopt(t_connection, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);  // best effort
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

std::string xml_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Each <tag>...</tag> element of `xml`, tags included, in order.
std::vector<std::string_view> xml_elements(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  std::vector<std::string_view> out;
  for (auto at = xml.find(open); at != std::string_view::npos; at = xml.find(open, at + 1)) {
    const auto end = xml.find(close, at);
    out.push_back(xml.substr(at, end == std::string_view::npos ? end : end + close.size() - at));
  }
  return out;
}

// Base64 of the MD5 of `data`: the Content-MD5 header (RFC 1864).
std::string content_md5(ByteView data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_md5(), nullptr) != 1) {
    throw Error(ErrorCode::kInternal, "MD5 is not available");
  }
  unsigned char encoded[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int length = EVP_EncodeBlock(encoded, digest, static_cast<int>(size));
  return {reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(length)};
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

// The header lines of a request, as curl takes them; freed on destruction.
class HeaderList {
 public:
  explicit HeaderList(const CurlApi& api) : api_(api) {}
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  ~HeaderList() { api_.slist_free_all(list_); }

  void append(const std::string& line) {
    curl_slist* next = api_.slist_append(list_, line.c_str());
    if (next == nullptr) throw Error(ErrorCode::kInternal, "curl_slist_append failed");
    list_ = next;
  }
  curl_slist* get() const { return list_; }

 private:
  const CurlApi& api_;
  curl_slist* list_ = nullptr;
};

// One HTTP exchange as curl performs it: what to send.
struct HttpExchange {
  const std::string& method;
  const std::string& url;
  const HeaderList& headers;
  ByteView body;
  std::chrono::milliseconds timeout;
};

// What came back from one exchange.
struct HttpResult {
  long status = 0;  // 0: no HTTP response (transport failure)
  CURLcode curl_code = CURLE_OK;
  std::string transport_error;
  Bytes body;
  std::uint64_t content_length = 0;  // of a HEAD response
  std::string etag;                  // the ETag header, quotes included
};

// The value of the header `line` when it is `name` (case-insensitive, given
// with its colon), trimmed of blanks and the line end.
std::optional<std::string_view> header_value(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || ::strncasecmp(line.data(), name.data(), name.size()) != 0) {
    return std::nullopt;
  }
  line.remove_prefix(name.size());
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ' ||
                           line.back() == '\t')) {
    line.remove_suffix(1);
  }
  return line;
}

// CURLOPT_READFUNCTION: the request body, from the caller's memory.
size_t read_upload(char* out, size_t size, size_t n, void* data) {
  auto* rest = static_cast<ByteView*>(data);
  const size_t count = std::min(size * n, rest->size());
  std::memcpy(out, rest->data(), count);
  *rest = rest->subspan(count);
  return count;
}

// CURLOPT_WRITEFUNCTION: the response body.
size_t write_body(char* in, size_t size, size_t n, void* data) {
  auto* body = static_cast<Bytes*>(data);
  body->insert(body->end(), in, in + size * n);
  return size * n;
}

// CURLOPT_HEADERFUNCTION: keeps the ETag; at the end of the headers, ACKs
// them at once (ack_now).
size_t read_header(char* in, size_t size, size_t n, void* data) {
  const std::string_view line(in, size * n);
  if (line == "\r\n" || line == "\n") {
    ack_now();
  } else if (const auto etag = header_value(line, "etag:")) {
    *static_cast<std::string*>(data) = *etag;
  }
  return size * n;
}

// Where to, how long, and how the peer is verified.
void set_transport_options(const CurlApi& api, CURL* curl, const HttpExchange& exchange,
                           const S3Options& options, char* error_buffer) {
  api.easy_setopt(curl, CURLOPT_URL, exchange.url.c_str());
  api.easy_setopt(curl, CURLOPT_HTTPHEADER, exchange.headers.get());
  api.easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  api.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                  static_cast<long>(options.connect_timeout.count()));
  api.easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(exchange.timeout.count()));
  api.easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  api.easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
  api.easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, options.verify_tls ? 1L : 0L);
  api.easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, options.verify_tls ? 2L : 0L);
  if (!options.ca_file.empty()) api.easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
}

// The method, and for PUT and POST the body read from `upload`.
void set_method_options(const CurlApi& api, CURL* curl, const std::string& method,
                        ByteView* upload) {
  if (method == "HEAD") {
    api.easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (method == "PUT" || method == "POST") {
    api.easy_setopt(curl, CURLOPT_UPLOAD, 1L);  // the body from memory, with a Content-Length
    if (method == "POST") api.easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "POST");
    api.easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload->size()));
    api.easy_setopt(curl, CURLOPT_READDATA, upload);
    api.easy_setopt(curl, CURLOPT_READFUNCTION, &read_upload);
  } else if (method != "GET") {
    api.easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
}

// Body and ETag into `result`; the connection's socket recorded for ack_now.
void set_receive_options(const CurlApi& api, CURL* curl, HttpResult* result) {
  api.easy_setopt(curl, CURLOPT_WRITEDATA, &result->body);
  api.easy_setopt(curl, CURLOPT_WRITEFUNCTION, &write_body);
  api.easy_setopt(curl, CURLOPT_SOCKOPTFUNCTION, &record_socket);
  api.easy_setopt(curl, CURLOPT_CLOSESOCKETFUNCTION, &close_socket);
  api.easy_setopt(curl, CURLOPT_HEADERDATA, &result->etag);
  api.easy_setopt(curl, CURLOPT_HEADERFUNCTION, &read_header);
}

// Performs one exchange on the calling thread's curl handle. A transport
// failure is a result (status 0), not an exception.
HttpResult perform(const CurlApi& api, const HttpExchange& exchange, const S3Options& options) {
  HttpResult result;
  CURL* curl = thread_curl(api);
  char error_buffer[CURL_ERROR_SIZE] = {};
  ByteView upload = exchange.body;
  set_transport_options(api, curl, exchange, options, error_buffer);
  set_method_options(api, curl, exchange.method, &upload);
  set_receive_options(api, curl, &result);
  result.curl_code = api.easy_perform(curl);
  if (result.curl_code != CURLE_OK) {
    result.transport_error =
        error_buffer[0] != '\0' ? error_buffer : api.easy_strerror(result.curl_code);
    return result;
  }
  api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  curl_off_t length = -1;
  api.easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  result.content_length = length < 0 ? 0 : static_cast<std::uint64_t>(length);
  return result;
}

}  // namespace

struct S3Store::Request {
  std::string method;  // GET, HEAD, PUT, POST, DELETE
  std::string key;     // "" addresses the bucket itself
  Params query;
  Params headers;  // extra headers to send and sign (Range, Content-MD5)
  ByteView body;
  std::chrono::milliseconds timeout;
  // A 200 whose body is an <Error> document is a failure
  // (CompleteMultipartUpload reports late errors so).
  bool error_in_ok_body = false;
};

struct S3Store::Response : HttpResult {
  bool error_body = false;  // a 2xx carrying an <Error> (error_in_ok_body)
  int attempts = 0;

  bool ok() const { return status >= 200 && status < 300 && !error_body; }
  std::string code() const { return xml_text(as_chars(body), "Code"); }
  bool retryable() const {
    if (status == 0) return !is_permanent(curl_code);
    if (error_body) {
      const std::string c = code();
      return c == "InternalError" || c == "SlowDown" || c == "ServiceUnavailable";
    }
    return status >= 500 || status == 429 || (status == 400 && code() == "RequestTimeout");
  }
};

S3Options s3_options_from_location(const std::string& location, const S3Settings& settings) {
  constexpr std::string_view kScheme = "s3://";
  if (!location.starts_with(kScheme)) {
    throw Error(ErrorCode::kUsage,
                "store location " + redact_location(location) + " is not s3://bucket[/prefix]");
  }
  S3Options options;
  std::string rest = location.substr(kScheme.size());
  // Checked before anything echoes the location: "s3://KEY:SECRET@bucket"
  // would otherwise reach the invalid-bucket message.
  if (rest.find_first_of("@?#") != std::string::npos) {
    throw Error(ErrorCode::kUsage, "store location " + redact_location(location) +
                                       " is not s3://bucket[/prefix]: credentials belong in "
                                       "the config file or the AWS_* variables");
  }
  while (rest.ends_with('/')) rest.pop_back();
  const auto slash = rest.find('/');
  options.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) options.prefix = rest.substr(slash + 1);
  auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return value == nullptr ? std::string() : std::string(value);
  };
  // The config file first, then the environment over it.
  options.endpoint = settings.endpoint.value_or("");
  options.region = settings.region.value_or(options.region);
  options.uri_style = settings.uri_style;
  options.ca_file = settings.ca_file.value_or("");
  options.verify_tls = settings.verify_tls.value_or(options.verify_tls);
  if (settings.request_timeout) options.request_timeout = *settings.request_timeout;
  if (settings.connect_timeout) options.connect_timeout = *settings.connect_timeout;
  options.parallel_parts = settings.parallel_parts.value_or(options.parallel_parts);
  options.access_key_id = settings.access_key_id.value_or("");
  options.secret_access_key = settings.secret_access_key.value_or("");
  options.session_token = settings.session_token.value_or("");
  // Credentials are one set: an environment that names a key pair replaces
  // the file's pair and its session token (a partial pair fails in S3Store).
  if (!env("AWS_ACCESS_KEY_ID").empty() || !env("AWS_SECRET_ACCESS_KEY").empty()) {
    options.access_key_id = env("AWS_ACCESS_KEY_ID");
    options.secret_access_key = env("AWS_SECRET_ACCESS_KEY");
    options.session_token = env("AWS_SESSION_TOKEN");
  }
  if (!env("AWS_ENDPOINT_URL").empty()) options.endpoint = env("AWS_ENDPOINT_URL");
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (!env(name).empty()) {
      options.region = env(name);
      break;
    }
  }
  return options;
}

S3Store::S3Store(S3Options options) : options_(std::move(options)) {
  const std::string where = "S3 repository " + redact_location(describe());
  if (!is_valid_bucket(options_.bucket)) {
    throw Error(ErrorCode::kUsage, where + ": \"" + options_.bucket +
                                       "\" is not a valid bucket name (3-63 of a-z 0-9 . - _)");
  }
  if (!options_.prefix.empty() && !is_valid_object_name(options_.prefix)) {
    throw Error(ErrorCode::kUsage, where + ": invalid prefix \"" + options_.prefix + "\"");
  }
  if (options_.access_key_id.empty() || options_.secret_access_key.empty()) {
    throw Error(ErrorCode::kUsage, where +
                                       ": no credentials: set AWS_ACCESS_KEY_ID and "
                                       "AWS_SECRET_ACCESS_KEY, or s3-access-key-id and "
                                       "s3-secret-access-key in the config file");
  }
  if (options_.part_size < kMinPartBytes || options_.part_size > kMaxPutBytes) {
    throw Error(ErrorCode::kUsage, where + ": the part size must be 5 MiB to 5 GiB");
  }
  if (options_.multipart_threshold > kMaxPutBytes) {
    throw Error(ErrorCode::kUsage, where + ": the multipart threshold must be at most 5 GiB");
  }
  if (options_.parallel_parts < 1 || options_.parallel_parts > 64) {
    throw Error(ErrorCode::kUsage, where + ": parallel parts (s3-parallel) must be 1 to 64");
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
    throw Error(ErrorCode::kUsage, where + ": the endpoint (AWS_ENDPOINT_URL or s3-endpoint) " +
                                       "must be http(s)://host[:port], without a path or user " +
                                       "info");
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

struct S3Store::Target {
  std::string path;  // URI-encoded, as signed
  std::string url;
  std::string payload_hash;  // hex SHA-256 of the body
};

S3Store::Target S3Store::target_of(const Request& request) const {
  Target target;
  target.path = path_base_;
  if (!request.key.empty() || target.path.empty()) {
    target.path += "/" + sigv4::uri_encode(request.key, true);
  }
  const std::string query = sigv4::canonical_query_string(request.query);
  target.url = scheme_ + "://" + host_ + target.path + (query.empty() ? "" : "?" + query);
  target.payload_hash = sigv4::sha256_hex(request.body);
  return target;
}

std::vector<std::string> S3Store::signed_header_lines(const Request& request,
                                                      const Target& target) const {
  sigv4::SignedRequest signed_request{request.method, target.path, request.query, request.headers,
                                      target.payload_hash};
  const std::string date = sigv4::amz_date(std::time(nullptr));
  signed_request.headers.emplace_back("Host", host_);
  signed_request.headers.emplace_back("x-amz-date", date);
  signed_request.headers.emplace_back("x-amz-content-sha256", target.payload_hash);
  if (!options_.session_token.empty()) {
    signed_request.headers.emplace_back("x-amz-security-token", options_.session_token);
  }
  const sigv4::Credentials credentials{options_.access_key_id, options_.secret_access_key,
                                       options_.session_token};
  std::vector<std::string> lines;
  for (const auto& [name, value] : signed_request.headers) lines.push_back(name + ": " + value);
  lines.push_back("Authorization: " +
                  sigv4::authorization(signed_request, credentials, options_.region, "s3", date));
  return lines;
}

S3Store::Response S3Store::attempt(const Request& request, const Target& target) const {
  const CurlApi& api = curl_api();
  HeaderList headers(api);
  for (const std::string& line : signed_header_lines(request, target)) headers.append(line);
  headers.append("Expect:");  // no 100-continue round trip before a PUT body
  headers.append("Content-Type:");
  Response response;
  static_cast<HttpResult&>(response) =
      perform(api, {request.method, target.url, headers, request.body, request.timeout}, options_);
  response.error_body = request.error_in_ok_body && response.status >= 200 &&
                        response.status < 300 &&
                        as_chars(response.body).find("<Error>") != std::string_view::npos;
  return response;
}

// The retry policy: transient failures (Response::retryable) are tried
// again, up to max_attempts, after a jittered backoff; each attempt is signed
// afresh. Retries stay here, per request, rather than in a store decorator:
// only this level can tell a transient failure from a final one, and a
// multipart put retries the part that failed, not the whole object
// (docs/decisions.md, "The store seam").
S3Store::Response S3Store::send(const Request& request) {
  const Target target = target_of(request);
  for (int attempt_number = 1;; ++attempt_number) {
    Response response = attempt(request, target);
    response.attempts = attempt_number;
    if (!response.retryable() || attempt_number >= options_.max_attempts) return response;
    std::this_thread::sleep_for(backoff(options_, attempt_number));
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
  if (data.size() > kMaxObjectBytes) {
    throw Error(ErrorCode::kIo, "put " + location_of(key) + ": " + std::to_string(data.size()) +
                                    " bytes is more than an S3 object may hold");
  }
  if (data.size() > options_.multipart_threshold) {
    const PutResult result = put_multipart(key, data);
    bucket_seen_.store(true);
    return result;
  }
  const auto timeout = options_.request_timeout + std::chrono::seconds(data.size() >> 20);
  // Create-only on the server where it can: AWS S3 (since 2024) and Ceph RGW
  // refuse to overwrite under If-None-Match: * (412), which closes the window
  // between the repository's stat() check and this put. A server that does
  // not implement the header says 501 once; it is not sent to it again.
  const bool conditional = conditional_put_.load();
  Params headers;
  if (conditional) headers.emplace_back("If-None-Match", "*");
  Response response = send(Request{"PUT", key, {}, headers, data, timeout});
  if (response.status == 412) return PutResult::kAlreadyExists;
  if (conditional && response.status == 501) {
    conditional_put_.store(false);
    response = send(Request{"PUT", key, {}, {}, data, timeout});
  }
  if (!response.ok()) fail("put", key, response);
  bucket_seen_.store(true);
  return PutResult::kCreated;
}

PutResult S3Store::put_multipart(const std::string& key, ByteView data) {
  const Response created =
      send(Request{"POST", key, {{"uploads", ""}}, {}, {}, options_.request_timeout});
  if (!created.ok()) fail("put (create multipart upload)", key, created);
  const std::string upload_id = xml_text(as_chars(created.body), "UploadId");
  if (upload_id.empty()) {
    throw Error(ErrorCode::kIo,
                "put " + location_of(key) + ": CreateMultipartUpload answered without an UploadId");
  }
  // Best effort: a failure here must not hide the error that led to it.
  auto abort_upload = [&]() noexcept {
    try {
      const Response response =
          send(Request{"DELETE", key, {{"uploadId", upload_id}}, {}, {}, options_.request_timeout});
      return response.ok() || response.status == 404;  // 404 NoSuchUpload: nothing left
    } catch (...) {
      return false;
    }
  };
  try {
    const std::vector<std::string> etags = upload_parts(key, upload_id, data);
    std::string xml = "<CompleteMultipartUpload>";
    for (std::size_t i = 0; i < etags.size(); ++i) {
      xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
             xml_escape(etags[i]) + "</ETag></Part>";
    }
    xml += "</CompleteMultipartUpload>";
    // Assembling the object takes the server a while for a big one.
    const auto timeout = options_.request_timeout + std::chrono::seconds(data.size() >> 24);
    Request complete{"POST", key, {{"uploadId", upload_id}}, {}, as_bytes(xml), timeout};
    complete.error_in_ok_body = true;
    const bool conditional = conditional_put_.load();
    if (conditional) complete.headers.emplace_back("If-None-Match", "*");  // as in put()
    Response response = send(complete);
    if (response.status == 412) {
      abort_upload();
      return PutResult::kAlreadyExists;
    }
    if (conditional && response.status == 501) {
      conditional_put_.store(false);
      complete.headers.clear();
      response = send(complete);
    }
    if (!response.ok()) fail("put (complete multipart upload)", key, response);
    return PutResult::kCreated;
  } catch (const Error& e) {
    if (abort_upload()) throw;
    throw Error(e.code(), std::string(e.what()) +
                              " (aborting the multipart upload failed too: its parts stay in the "
                              "bucket until an AbortIncompleteMultipartUpload rule removes them)");
  } catch (...) {
    abort_upload();
    throw;
  }
}

std::vector<std::string> S3Store::upload_parts(const std::string& key, const std::string& upload_id,
                                               ByteView data) {
  // At most kMaxParts parts: bigger parts for a huge object.
  const std::uint64_t part_size =
      std::max<std::uint64_t>(options_.part_size, (data.size() + kMaxParts - 1) / kMaxParts);
  const std::size_t parts = std::max<std::size_t>(1, (data.size() + part_size - 1) / part_size);
  std::vector<std::string> etags(parts);
  // Up to parallel_parts parts at once; after one failed no new part starts.
  parallel_for(parts, options_.parallel_parts, [&](std::size_t index) {
    const int number = static_cast<int>(index) + 1;
    const std::string operation =
        "put (part " + std::to_string(number) + " of " + std::to_string(parts) + ")";
    before_upload_part(number);
    const std::uint64_t offset = index * part_size;
    const ByteView body = data.subspan(offset, std::min(part_size, data.size() - offset));
    const Response response =
        send(Request{"PUT",
                     key,
                     {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}},
                     {},
                     body,
                     options_.request_timeout + std::chrono::seconds(body.size() >> 20)});
    if (!response.ok()) fail(operation, key, response);
    if (response.etag.empty()) {
      throw Error(ErrorCode::kIo,
                  operation + " " + location_of(key) + ": the server returned no ETag");
    }
    etags[index] = response.etag;
  });
  return etags;
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

void S3Store::list_pages(const std::string& key_prefix, bool by_directory,
                         const std::function<void(std::string_view xml)>& on_page) {
  std::string token;
  do {
    Params query = {{"list-type", "2"}, {"prefix", key_prefix}};
    if (by_directory) query.emplace_back("delimiter", "/");
    if (!token.empty()) query.emplace_back("continuation-token", token);
    const Response response = send(Request{"GET", "", query, {}, {}, options_.request_timeout});
    if (!response.ok()) fail("list", key_prefix, response);
    const std::string_view xml = as_chars(response.body);
    on_page(xml);
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
}

namespace {

// Calls `fn` with the text of every <tag>...</tag> element of `xml`.
template <typename Fn>
void for_each_element(std::string_view xml, std::string_view tag, Fn fn) {
  const std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
  for (auto at = xml.find(open); at != std::string_view::npos; at = xml.find(open, at + 1)) {
    const auto end = xml.find(close, at);
    fn(xml.substr(at, end == std::string_view::npos ? end : end - at));
  }
}

}  // namespace

std::vector<ObjectInfo> S3Store::list(const std::string& prefix) {
  const std::string store_prefix = options_.prefix.empty() ? "" : options_.prefix + "/";
  std::vector<ObjectInfo> out;
  list_pages(store_prefix + prefix, false, [&](std::string_view xml) {
    for_each_element(xml, "Contents", [&](std::string_view entry) {
      const std::string key = xml_text(entry, "Key");
      if (!key.starts_with(store_prefix)) return;
      std::string name = key.substr(store_prefix.size());
      // Keys walvault did not write (e.g. "dir/" markers from other tools) are not objects here.
      if (!is_valid_object_name(name)) return;
      // LastModified is ISO 8601 UTC ("2026-11-26T14:00:00.000Z").
      const auto modified = parse_time_us(xml_text(entry, "LastModified"));
      out.push_back(ObjectInfo{std::move(name),
                               std::strtoull(xml_text(entry, "Size").c_str(), nullptr, 10),
                               modified.value_or(0)});
    });
  });
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
  return out;
}

std::vector<std::string> S3Store::list_directories(const std::string& prefix) {
  const std::string key_prefix = (options_.prefix.empty() ? "" : options_.prefix + "/") + prefix;
  std::vector<std::string> out;
  list_pages(key_prefix, true, [&](std::string_view xml) {
    for_each_element(xml, "CommonPrefixes", [&](std::string_view entry) {
      const std::string common = xml_text(entry, "Prefix");
      if (!common.starts_with(key_prefix) || !common.ends_with('/')) return;
      std::string name = common.substr(key_prefix.size(), common.size() - key_prefix.size() - 1);
      if (is_valid_object_name(prefix + name)) out.push_back(std::move(name));
    });
  });
  std::sort(out.begin(), out.end());
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

std::size_t S3Store::remove_many(const std::vector<std::string>& names) {
  for (const std::string& name : names) require_valid_object_name(name);
  std::vector<std::string> keys;
  keys.reserve(names.size());
  for (const std::string& name : names) keys.push_back(key_of(name));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (std::size_t at = 0; at < keys.size(); at += kMaxDeleteKeys) {
    const auto end =
        keys.begin() + static_cast<std::ptrdiff_t>(std::min(keys.size(), at + kMaxDeleteKeys));
    delete_batch(std::vector<std::string>(keys.begin() + static_cast<std::ptrdiff_t>(at), end));
  }
  if (!keys.empty()) bucket_seen_.store(true);
  return keys.size();
}

void S3Store::delete_batch(const std::vector<std::string>& keys) {
  // Quiet: the answer lists only the keys that failed.
  std::string xml = "<Delete><Quiet>true</Quiet>";
  for (const std::string& key : keys) xml += "<Object><Key>" + xml_escape(key) + "</Key></Object>";
  xml += "</Delete>";
  const ByteView body = as_bytes(xml);
  const Response response = send(Request{"POST",
                                         "",
                                         {{"delete", ""}},
                                         {{"Content-MD5", content_md5(body)}},
                                         body,
                                         options_.request_timeout});
  if (!response.ok()) {
    fail("remove " + std::to_string(keys.size()) + " objects in",
         options_.prefix.empty() ? "" : options_.prefix + "/", response);
  }
  const auto errors = xml_elements(as_chars(response.body), "Error");
  if (errors.empty()) return;
  const std::string key = xml_text(errors.front(), "Key");
  const std::string code = printable(xml_text(errors.front(), "Code"));
  const std::string message = printable(xml_text(errors.front(), "Message"));
  const std::string more =
      errors.size() > 1 ? " (and " + std::to_string(errors.size() - 1) + " more keys)" : "";
  throw Error(ErrorCode::kIo, "remove " + location_of(key) + ": " +
                                  (code.empty() ? "failed" : code) +
                                  (message.empty() ? "" : ": " + message) + more);
}

std::vector<S3Store::MultipartUpload> S3Store::multipart_uploads() {
  const std::string store_prefix = options_.prefix.empty() ? "" : options_.prefix + "/";
  std::vector<MultipartUpload> uploads;
  std::string key_marker;
  std::string upload_id_marker;
  for (;;) {
    Params query = {{"uploads", ""}, {"prefix", store_prefix}};
    if (!key_marker.empty()) {
      query.emplace_back("key-marker", key_marker);
      query.emplace_back("upload-id-marker", upload_id_marker);
    }
    const Response response = send(Request{"GET", "", query, {}, {}, options_.request_timeout});
    if (!response.ok()) fail("list multipart uploads", store_prefix, response);
    const std::string_view xml = as_chars(response.body);
    for (const std::string_view upload : xml_elements(xml, "Upload")) {
      uploads.push_back({xml_text(upload, "Key"), xml_text(upload, "UploadId"),
                         parse_time_us(xml_text(upload, "Initiated")).value_or(0)});
    }
    if (xml_text(xml, "IsTruncated") != "true") break;
    key_marker = xml_text(xml, "NextKeyMarker");
    upload_id_marker = xml_text(xml, "NextUploadIdMarker");
    if (key_marker.empty()) {
      throw Error(ErrorCode::kIo, "list multipart uploads " + location_of(store_prefix) +
                                      ": truncated listing without a marker");
    }
  }
  return uploads;
}

std::vector<std::string> S3Store::list_multipart_uploads() {
  std::vector<std::string> keys;
  for (const MultipartUpload& u : multipart_uploads()) keys.push_back(u.key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::size_t S3Store::clean_leftovers(std::chrono::seconds min_age) {
  const std::int64_t now = now_unix_us();
  std::size_t aborted = 0;
  for (const MultipartUpload& u : multipart_uploads()) {
    if (u.initiated_us != 0 && now - u.initiated_us < std::chrono::microseconds(min_age).count())
      continue;
    const Response response = send(
        Request{"DELETE", u.key, {{"uploadId", u.upload_id}}, {}, {}, options_.request_timeout});
    if (response.ok())
      ++aborted;
    else if (response.status != 404)  // NoSuchUpload: completed or aborted meanwhile
      fail("abort multipart upload", u.key, response);
  }
  return aborted;
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
