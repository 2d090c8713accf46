#include "dump/restore_dump.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "core/process.h"
#include "core/relative_path.h"
#include "dump/pg_programs.h"
#include "pg/sql_connection.h"
#include "repo/chunk_store.h"

namespace walvault::dump {
namespace {

constexpr char kDuplicateObject[] = "42710";

// The program's argv for `record`, connecting to database `connect_to`.
std::vector<std::string> restore_argv(const DumpRecord& record, const RestoreDumpOptions& options,
                                      const std::string& program, const std::string& connect_to) {
  const std::string db = dbname_argument(connect_to);
  if (is_globals(record))  // every statement runs; globals_errors reads what failed
    return {program,
            "--no-password",
            "--no-psqlrc",
            "--quiet",
            "--set=VERBOSITY=verbose",
            "--output=/dev/null",
            db,
            "--command=SET client_min_messages = error",
            "--file=-"};
  if (record.format == DumpFormat::kPlain)
    return {program,   "--no-password",         "--no-psqlrc",
            "--quiet", "--set=ON_ERROR_STOP=1", "--output=/dev/null",
            db};
  std::vector<std::string> argv = {program, "--no-password", "--exit-on-error", db};
  for (const std::string& t : options.tables) argv.push_back("--table=" + t);
  return argv;
}

// Writes all of `data` into `fd`; false when the reader went away (EPIPE).
bool write_all(int fd, ByteView data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) return false;
    if (n < 0) throw_errno("writing into the restore program");
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

// `record`'s chunks, read and verified, into the stdin of `run` until it
// stops reading; the bytes it took into `sent`. Returns how it ended.
ProgramResult feed(repo::Repository& repo, const DumpRecord& record, const std::string& who,
                   const ProgramRun& run, std::uint64_t& sent) {
  repo::ChunkStore chunks(repo);
  ::signal(SIGPIPE, SIG_IGN);
  StreamingProgram running(run, StreamingProgram::Pipe::kStdin);
  Bytes scratch;
  for (std::size_t i = 0; i < record.chunks.size(); ++i) {
    const files::ChunkRef& ref = record.chunks[i];
    const std::optional<ByteView> data =
        chunks.read_view(ref.id, scratch, repo::ChunkCheck::kRecorded);
    if (!data)
      throw Error(ErrorCode::kCorruption, who + ": chunk " + std::to_string(i) + " (" +
                                              to_hex(ref.id) + ") is not in the repository");
    if (data->size() != ref.length)
      throw Error(ErrorCode::kCorruption, who + ": chunk " + std::to_string(i) + " holds " +
                                              std::to_string(data->size()) + " bytes, not " +
                                              std::to_string(ref.length));
    if (!write_all(running.fd(), *data)) break;
    sent += data->size();
  }
  return running.wait();
}

// Whether `database` is on the server; with `create`, creates it and
// returns true (restore_dump's contract for the errors).
bool prepare_database(pg::SqlConnection& connection, const std::string& database, bool create) {
  const std::string name = "database " + printable_name(database);
  const auto exists = [&] {
    return connection.row("SELECT count(*) FROM pg_database WHERE datname = $1", {database})
               .at(0) != "0";
  };
  const Error conflict(ErrorCode::kConflict,
                       name +
                           " already exists: --create makes a new one (drop it first, or "
                           "restore into it without --create)");
  if (!create) {
    if (!exists())
      throw Error(ErrorCode::kNotFound,
                  name + " does not exist on the server (give --create to create it)");
    return false;
  }
  if (exists()) throw conflict;
  try {
    connection.execute("CREATE DATABASE " + pg::sql_identifier(database) + " TEMPLATE template0");
  } catch (const Error&) {
    if (exists()) throw conflict;  // created meanwhile by someone else
    throw;
  }
  return true;
}

// The usage errors restore_dump refuses before connecting.
void check_options(const DumpRecord& record, const RestoreDumpOptions& options,
                   const std::string& who) {
  if (is_globals(record) && (!options.database.empty() || options.create))
    throw Error(ErrorCode::kUsage, who +
                                       " holds the cluster's roles and tablespaces: it restores "
                                       "into the server, give no --db or --create");
  if (!is_globals(record) && options.database.empty())
    throw Error(ErrorCode::kUsage, who + ": give --db, the database to restore into");
  if (record.format == DumpFormat::kPlain && !options.tables.empty())
    throw Error(ErrorCode::kUsage,
                "--table needs a custom-format dump; " + who + " is plain SQL (restored by psql)");
}

}  // namespace

GlobalsErrors globals_errors(const std::string& psql_output) {
  // "psql:<stdin>:12: ERROR:  42710: role "app" already exists"
  static const std::regex server_error(R"(^psql:[^:]*:[0-9]+: [^:]+:  ([0-9A-Z]{5}): (.*)$)");
  static const std::regex english_name(R"(^(.*) already exists$)");
  GlobalsErrors out;
  std::istringstream in(psql_output);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (!line.starts_with("psql:")) continue;  // DETAIL, HINT, LOCATION: part of the line before
    if (std::regex_match(line, m, server_error) && m[1] == kDuplicateObject) {
      const std::string message = m[2];
      std::smatch n;
      out.already_existed.push_back(std::regex_match(message, n, english_name) ? n[1].str()
                                                                               : message);
    } else {
      out.failures.push_back(line);
    }
  }
  return out;
}

RestoreDumpResult restore_dump(repo::Repository& repo, const DumpRecord& record,
                               const RestoreDumpOptions& options) {
  const std::string who =
      "dump " + dump_id(record) + " (" + record.database + "/" + record.label + ")";
  check_options(record, options, who);
  RestoreDumpResult result;
  result.program = record.format == DumpFormat::kCustom ? "pg_restore" : "psql";
  const std::string into =
      is_globals(record) ? "the server" : "database " + printable_name(options.database);
  try {
    std::string program, connect_to = options.database;
    {
      pg::SqlConnection connection(options.conninfo, "walvault dump restore");
      const ServerFacts server = server_facts(connection);
      program = client_program(server.version_num, options.pg_bin, result.program);
      if (is_globals(record))
        connect_to = server.database;
      else
        result.created = prepare_database(connection, options.database, options.create);
    }
    const ProgramResult done =
        feed(repo, record, who,
             client_run(restore_argv(record, options, program, connect_to), options.conninfo),
             result.bytes_sent);
    if (done.status != 0)
      throw Error(ErrorCode::kPostgres, result.program + " of " + who + " into " + into +
                                            " failed (exit " + std::to_string(done.status) +
                                            "): " + failure_line(done.output));
    if (is_globals(record)) {
      GlobalsErrors errors = globals_errors(done.output);
      if (!errors.failures.empty())
        throw Error(
            ErrorCode::kPostgres,
            "psql of " + who + ": " + std::to_string(errors.failures.size()) +
                " statement(s) failed (the others ran), the first: " + errors.failures.front());
      result.already_existed = std::move(errors.already_existed);
    }
  } catch (const Error& e) {
    if (!result.created) throw;
    throw Error(e.code(), std::string(e.what()) + "; " + into +
                              ", created by --create, is left behind: drop it before trying again");
  }
  return result;
}

}  // namespace walvault::dump
