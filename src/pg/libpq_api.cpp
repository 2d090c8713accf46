// libpq is opened RTLD_LOCAL, and the binary exports none of its static
// libraries' symbols (--exclude-libs,ALL in CMakeLists.txt), so libpq and its
// own libssl/libcrypto never bind to walvault's static OpenSSL.
#include "pg/libpq_api.h"

#include <dlfcn.h>

#include <string>

#include "core/error.h"

namespace walvault::pg {

namespace {

constexpr const char* kLibrary = "libpq.so.5";

template <typename Function>
void bind(void* library, const char* name, Function& out) {
  void* symbol = ::dlsym(library, name);
  if (symbol == nullptr) {
    throw Error(ErrorCode::kPostgres, std::string(kLibrary) + " lacks " + name);
  }
  out = reinterpret_cast<Function>(symbol);
}

LibpqApi load() {
  void* library = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* reason = ::dlerror();
    throw Error(ErrorCode::kPostgres, std::string("cannot load libpq (") + kLibrary +
                                          "): " + (reason != nullptr ? reason : "not found"));
  }
  // Never dlclosed: connections may be finished until the very end.
  LibpqApi api{};
  bind(library, "PQconnectdbParams", api.connectdb_params);
  bind(library, "PQstatus", api.status);
  bind(library, "PQfinish", api.finish);
  bind(library, "PQerrorMessage", api.error_message);
  bind(library, "PQserverVersion", api.server_version);
  bind(library, "PQparameterStatus", api.parameter_status);
  bind(library, "PQescapeLiteral", api.escape_literal);
  bind(library, "PQconninfoParse", api.conninfo_parse);
  bind(library, "PQconninfoFree", api.conninfo_free);
  bind(library, "PQexec", api.exec);
  bind(library, "PQexecParams", api.exec_params);
  bind(library, "PQsendQuery", api.send_query);
  bind(library, "PQgetResult", api.get_result);
  bind(library, "PQgetCopyData", api.get_copy_data);
  bind(library, "PQresultStatus", api.result_status);
  bind(library, "PQresultErrorField", api.result_error_field);
  bind(library, "PQntuples", api.ntuples);
  bind(library, "PQnfields", api.nfields);
  bind(library, "PQgetvalue", api.get_value);
  bind(library, "PQgetisnull", api.get_is_null);
  bind(library, "PQcmdTuples", api.cmd_tuples);
  bind(library, "PQclear", api.clear);
  bind(library, "PQfreemem", api.freemem);
  return api;
}

}  // namespace

const LibpqApi& libpq_api() {
  static const LibpqApi api = load();  // a failed load throws and is retried by the next call
  return api;
}

}  // namespace walvault::pg
