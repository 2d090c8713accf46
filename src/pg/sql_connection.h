// A plain (non-replication) libpq connection for the ops commands: `check
// --pg` asks a server about its archiver, `drill` runs its checks against
// the restored server. libpq is the dlopened one of pg/libpq_api.h.
#pragma once

#include <string>
#include <vector>

#include "pg/libpq_api.h"

namespace walvault::pg {

class SqlConnection {
 public:
  // `conninfo` is a libpq connection string (or a database name). Throws
  // Error(kPostgres) with libpq's first line (the conninfo redacted).
  SqlConnection(const std::string& conninfo, const std::string& application_name);
  ~SqlConnection();
  SqlConnection(const SqlConnection&) = delete;
  SqlConnection& operator=(const SqlConnection&) = delete;

  // First row of a query as strings ("" for NULL); throws Error(kPostgres)
  // with the server's message, or "query returned no row".
  std::vector<std::string> row(const std::string& sql);

 private:
  PGconn* conn_ = nullptr;
};

}  // namespace walvault::pg
