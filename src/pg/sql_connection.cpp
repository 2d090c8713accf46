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

std::string sql_identifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
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

namespace {

using Result = std::unique_ptr<PGresult, void (*)(PGresult*)>;

// `sql`'s result (with `params` bound to $1...; without any, `sql` may hold
// several statements); Error(kPostgres) with libpq's first line unless its
// status is `expected`.
Result run(PGconn* conn, const std::string& sql, const std::vector<std::string>& params,
           ExecStatusType expected) {
  const auto& api = pg::libpq_api();
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  Result res(params.empty() ? api.exec(conn, sql.c_str())
                            : api.exec_params(conn, sql.c_str(), static_cast<int>(values.size()),
                                              nullptr, values.data(), nullptr, nullptr, 0),
             api.clear);
  if (!res || api.result_status(res.get()) != expected)
    throw Error(ErrorCode::kPostgres, first_line(api.error_message(conn)));
  return res;
}

Result tuples(PGconn* conn, const std::string& sql, const std::vector<std::string>& params = {}) {
  return run(conn, sql, params, PGRES_TUPLES_OK);
}

// The value at (row, field), "" for NULL.
std::string value(const PGresult* res, int row, int field) {
  const auto& api = pg::libpq_api();
  return api.get_is_null(res, row, field) ? "" : api.get_value(res, row, field);
}

}  // namespace

std::vector<std::string> SqlConnection::row(const std::string& sql) { return row(sql, {}); }

std::vector<std::string> SqlConnection::row(const std::string& sql,
                                            const std::vector<std::string>& params) {
  const Result res = tuples(conn_, sql, params);
  const auto& api = pg::libpq_api();
  if (api.ntuples(res.get()) < 1) throw Error(ErrorCode::kPostgres, "query returned no row");
  std::vector<std::string> out;
  for (int i = 0; i < api.nfields(res.get()); ++i) out.push_back(value(res.get(), 0, i));
  return out;
}

std::vector<std::string> SqlConnection::column(const std::string& sql) {
  const Result res = tuples(conn_, sql);
  std::vector<std::string> out;
  for (int i = 0; i < pg::libpq_api().ntuples(res.get()); ++i)
    out.push_back(value(res.get(), i, 0));
  return out;
}

void SqlConnection::execute(const std::string& sql) { run(conn_, sql, {}, PGRES_COMMAND_OK); }

}  // namespace walvault::pg
