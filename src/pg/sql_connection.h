// A plain (non-replication) libpq connection for the ops commands: `check
// --pg` asks a server about its archiver, `drill` runs its checks against
// the restored server. libpq is the dlopened one of pg/libpq_api.h.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pg/libpq_api.h"

namespace walvault::pg {

// The libpq environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
// PGSSLMODE, ...) that give a libpq program (pg_dump, pg_restore, psql) the
// settings of `conninfo`, so it connects as `conninfo` says with nothing of
// it in argv: a password in a conninfo never shows in `ps`. Keywords libpq
// has no variable for (replication) are left out, and so is dbname: the
// caller names the database. Throws Error(kUsage) when libpq cannot parse
// `conninfo` (its message, never the conninfo itself).
std::map<std::string, std::string> conninfo_environment(const std::string& conninfo);

// `name` as a libpq conninfo value: single-quoted, \ and ' escaped.
std::string conninfo_quote(const std::string& name);

// `name` as an SQL identifier: double-quoted, '"' doubled (quote_ident's
// rule, whatever the name holds).
std::string sql_identifier(const std::string& name);

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
  // As row(), with $1, $2... in `sql` bound to `params` (text, never quoted
  // into the statement).
  std::vector<std::string> row(const std::string& sql, const std::vector<std::string>& params);
  // The first column of every row ("" for NULL); throws as row().
  std::vector<std::string> column(const std::string& sql);
  // Runs a statement that returns no rows (CREATE DATABASE ...); throws
  // Error(kPostgres) with the server's message when it fails.
  void execute(const std::string& sql);

 private:
  PGconn* conn_ = nullptr;
};

}  // namespace walvault::pg
