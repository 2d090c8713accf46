// libcurl is opened RTLD_LOCAL, and the binary exports none of its static
// libraries' symbols (--exclude-libs,ALL in CMakeLists.txt), so libcurl and
// its own libssl/libcrypto never bind to walvault's static OpenSSL.
#include "store/s3/curl_api.h"

#include <dlfcn.h>

#include <string>

#include "core/error.h"

namespace walvault::store {

namespace {

template <typename Function>
void bind(void* library, const char* name, Function& out) {
  void* symbol = ::dlsym(library, name);
  if (symbol == nullptr) {
    throw Error(ErrorCode::kIo, std::string("libcurl.so.4 lacks ") + name);
  }
  out = reinterpret_cast<Function>(symbol);
}

CurlApi load() {
  void* library = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* reason = ::dlerror();
    throw Error(ErrorCode::kIo, std::string("the S3 store needs libcurl (libcurl.so.4): ") +
                                    (reason != nullptr ? reason : "not found"));
  }
  // Never dlclosed: handles of exiting threads are cleaned up until the very end.
  CurlApi api{};
  CURLcode (*global_init)(long) = nullptr;
  bind(library, "curl_global_init", global_init);
  bind(library, "curl_easy_init", api.easy_init);
  bind(library, "curl_easy_cleanup", api.easy_cleanup);
  bind(library, "curl_easy_reset", api.easy_reset);
  bind(library, "curl_easy_setopt", api.easy_setopt);
  bind(library, "curl_easy_perform", api.easy_perform);
  bind(library, "curl_easy_getinfo", api.easy_getinfo);
  bind(library, "curl_easy_strerror", api.easy_strerror);
  bind(library, "curl_slist_append", api.slist_append);
  bind(library, "curl_slist_free_all", api.slist_free_all);
  if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    throw Error(ErrorCode::kIo, "curl_global_init failed");
  }
  return api;
}

}  // namespace

const CurlApi& curl_api() {
  static const CurlApi api = load();  // a failed load throws and is retried by the next call
  return api;
}

}  // namespace walvault::store
