#include "dump/pg_programs.h"

#include <unistd.h>

#include <sstream>

#include "core/error.h"
#include "pg/server_control.h"

namespace walvault::dump {

ServerFacts server_facts(pg::SqlConnection& connection) {
  const std::vector<std::string> row =
      connection.row("SELECT current_setting('server_version_num'), current_database()");
  ServerFacts facts;
  try {
    facts.version_num = std::stoi(row.at(0));
  } catch (const std::exception&) {
    throw Error(ErrorCode::kPostgres, "the server's server_version_num is '" + row.at(0) + "'");
  }
  facts.database = row.at(1);
  return facts;
}

std::string client_program(int server_version_num, const std::string& pg_bin,
                           const std::string& name) {
  const std::string path = pg::server_bin_dir(server_version_num, pg_bin) + "/" + name;
  if (::access(path.c_str(), X_OK) != 0)
    throw Error(ErrorCode::kNotFound,
                name + " for PostgreSQL " + std::to_string(server_version_num / 10000) +
                    " is not at " + path + " (install that major's client, or give --pg-bin)");
  return path;
}

ProgramRun client_run(std::vector<std::string> argv, const std::string& conninfo) {
  ProgramRun run;
  run.argv = std::move(argv);
  run.environment.set = pg::conninfo_environment(conninfo);
  return run;
}

std::string dbname_argument(const std::string& database) {
  return "--dbname=dbname=" + pg::conninfo_quote(database);
}

std::string failure_line(const std::string& output) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line))
    if (line.find("error:") != std::string::npos || line.find("ERROR:") != std::string::npos)
      return line;
  return last_output_line(output);
}

}  // namespace walvault::dump
