// The PostgreSQL client programs the dump commands run (private to dump/):
// where they are for a server, how they are given a connection without
// anything of it in argv, and what line of their output names a failure.
#pragma once

#include <string>
#include <vector>

#include "core/process.h"
#include "pg/sql_connection.h"

namespace walvault::dump {

// What the dump commands ask a server before they run a program against it.
struct ServerFacts {
  int version_num = 0;   // server_version_num (150004 for 15.4)
  std::string database;  // the database the connection is to (current_database())
};

// Asked over `connection`. Throws Error(kPostgres) when the server cannot
// answer.
ServerFacts server_facts(pg::SqlConnection& connection);

// `name` (pg_dump, pg_restore, psql) of the server's major: in `pg_bin` when
// given, else pg::server_bin_dir's default. Error(kNotFound) naming the
// path when it is not an executable there.
std::string client_program(int server_version_num, const std::string& pg_bin,
                           const std::string& name);

// The program run: `argv` as given (no connection settings in it), our
// environment plus conninfo's settings (pg::conninfo_environment).
ProgramRun client_run(std::vector<std::string> argv, const std::string& conninfo);

// A libpq --dbname argument naming `database` and nothing else.
std::string dbname_argument(const std::string& database);

// What the program said about its failure: its first line holding "error:"
// (pg_dump, pg_restore) or "ERROR:" (psql), else its last line.
std::string failure_line(const std::string& output);

}  // namespace walvault::dump
