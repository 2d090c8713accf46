// The libpq functions walvault uses, loaded with dlopen on first use instead
// of linked: archive-push and archive-get start a process per WAL file, and
// binding libpq's ~20 shared libraries (krb5, ldap, gnutls, ...) at every
// start would cost every one of them (docs/decisions.md); src/store/curl_api.h
// does the same for libcurl. Only libpq's headers are used at build time.
//
// For src/pg and its tests, and for code that needs a plain SQL connection
// (`walvault check --pg`, `walvault backup`): include "pg/libpq_api.h" and
// call through libpq_api() instead of the PQ* functions, which are declared by
// <libpq-fe.h> but not linked. Each member has exactly the type of the libpq
// function named in its comment.
#pragma once

#include <libpq-fe.h>

namespace walvault::pg {

struct LibpqApi {
  // Connections.
  decltype(&::PQconnectdbParams) connectdb_params;
  decltype(&::PQstatus) status;
  decltype(&::PQfinish) finish;
  decltype(&::PQerrorMessage) error_message;
  decltype(&::PQserverVersion) server_version;
  decltype(&::PQparameterStatus) parameter_status;
  decltype(&::PQescapeLiteral) escape_literal;  // free the result with freemem
  decltype(&::PQconninfoParse) conninfo_parse;  // free the result with conninfo_free
  decltype(&::PQconninfoFree) conninfo_free;
  // Commands and results.
  decltype(&::PQexec) exec;
  decltype(&::PQexecParams) exec_params;
  decltype(&::PQsendQuery) send_query;
  decltype(&::PQgetResult) get_result;
  decltype(&::PQgetCopyData) get_copy_data;
  decltype(&::PQresultStatus) result_status;
  decltype(&::PQresultErrorField) result_error_field;
  decltype(&::PQntuples) ntuples;
  decltype(&::PQnfields) nfields;
  decltype(&::PQgetvalue) get_value;
  decltype(&::PQgetisnull) get_is_null;
  decltype(&::PQcmdTuples) cmd_tuples;
  decltype(&::PQclear) clear;
  decltype(&::PQfreemem) freemem;
};

// libpq (libpq.so.5), loaded once per process; thread-safe. Throws
// Error(kPostgres) when it cannot be loaded; a later call tries again.
const LibpqApi& libpq_api();

}  // namespace walvault::pg
