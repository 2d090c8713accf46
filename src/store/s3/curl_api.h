// The few libcurl functions the S3 store uses, loaded with dlopen on first
// use instead of linked: archive-push and archive-get start a process per WAL
// file, and binding libcurl's ~30 shared libraries at every start cost 2-6 ms
// even for a local repository (docs/decisions.md). Private to src/store.
#pragma once

#include <curl/curl.h>

namespace walvault::store {

struct CurlApi {
  CURL* (*easy_init)();
  void (*easy_cleanup)(CURL*);
  void (*easy_reset)(CURL*);
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

// libcurl (libcurl.so.4), loaded and globally initialised once per process;
// thread-safe. Throws Error(kIo) when it cannot be loaded.
const CurlApi& curl_api();

}  // namespace walvault::store
