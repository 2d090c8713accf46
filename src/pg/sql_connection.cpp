#include "pg/sql_connection.h"

#include <memory>

#include "core/error.h"
#include "pg/base_backup.h"

namespace walvault::pg {

namespace {

std::string first_line(std::string text) {
  if (auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  return text;
}

}  // namespace

std::map<std::string, std::string> conninfo_environment(const std::string& conninfo) {
  const auto& api = pg::libpq_api();
  char* error = nullptr;
  PQconninfoOption* options = api.conninfo_parse(conninfo.c_str(), &error);
  if (options == nullptr) {
    const std::string why = error ? first_line(error) : "out of memory";
    if (error) api.freemem(error);
    throw Error(ErrorCode::kUsage, "--pg: not a connection string libpq accepts: " + why);
  }
  std::map<std::string, std::string> out;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o)
    if (o->val != nullptr && o->envvar != nullptr && std::string(o->keyword) != "dbname")
      out[o->envvar] = o->val;
  api.conninfo_free(options);
  return out;
}

std::string conninfo_quote(const std::string& name) {
  std::string out = "'";
  for (char c : name) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

SqlConnection::SqlConnection(const std::string& conninfo, const std::string& application_name) {
  const char* keys[] = {"dbname", "fallback_application_name", nullptr};
  const char* values[] = {conninfo.c_str(), application_name.c_str(), nullptr};
  conn_ = pg::libpq_api().connectdb_params(keys, values, 1);
  if (!conn_ || pg::libpq_api().status(conn_) != CONNECTION_OK) {
    const std::string why =
        conn_ ? first_line(pg::libpq_api().error_message(conn_)) : "out of memory";
    if (conn_) pg::libpq_api().finish(conn_);
    conn_ = nullptr;
    throw Error(ErrorCode::kPostgres,
                "cannot connect (" + pg::redact_conninfo(conninfo) + "): " + why);
  }
}

SqlConnection::~SqlConnection() {
  if (conn_) pg::libpq_api().finish(conn_);
}

std::vector<std::string> SqlConnection::row(const std::string& sql) {
  const auto& api = pg::libpq_api();
  std::unique_ptr<PGresult, void (*)(PGresult*)> res(api.exec(conn_, sql.c_str()), api.clear);
  if (!res || api.result_status(res.get()) != PGRES_TUPLES_OK || api.ntuples(res.get()) < 1) {
    const std::string why = first_line(api.error_message(conn_));
    throw Error(ErrorCode::kPostgres, why.empty() ? "query returned no row" : why);
  }
  std::vector<std::string> out;
  for (int i = 0; i < api.nfields(res.get()); ++i)
    out.push_back(api.get_is_null(res.get(), 0, i) ? "" : api.get_value(res.get(), 0, i));
  return out;
}

std::vector<std::string> SqlConnection::column(const std::string& sql) {
  const auto& api = pg::libpq_api();
  std::unique_ptr<PGresult, void (*)(PGresult*)> res(api.exec(conn_, sql.c_str()), api.clear);
  if (!res || api.result_status(res.get()) != PGRES_TUPLES_OK)
    throw Error(ErrorCode::kPostgres, first_line(api.error_message(conn_)));
  std::vector<std::string> out;
  for (int i = 0; i < api.ntuples(res.get()); ++i)
    out.push_back(api.get_is_null(res.get(), i, 0) ? "" : api.get_value(res.get(), i, 0));
  return out;
}

}  // namespace walvault::pg
