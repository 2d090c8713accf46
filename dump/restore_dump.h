// `walvault dump restore`: a dump's chunks, read and verified in order,
// written into the stdin of the program that restores its format: pg_restore
// for a custom-format dump (which can take only some tables), psql for plain
// SQL, both of the target server's major (pg::server_bin_dir). The
// connection's settings reach the program through libpq's environment
// (pg::conninfo_environment), never its argv.
//
// A database's dump goes into one database: it must exist, or, with
// `create`, must not and is created first (CREATE DATABASE, the name quoted
// as an identifier, TEMPLATE template0: empty, the cluster's default
// encoding and locale). A globals dump (dump_record.h, kGlobalsDatabase) goes
// into the cluster, through the database the connection is to: psql runs
// every statement (as `psql -f` of pg_dumpall's output does: CREATE ROLE of
// a role that exists fails and the ALTER ROLE after it still sets the
// role's attributes and password from the dump); an object that already
// existed (SQLSTATE 42710, duplicate_object) is reported, any other error
// fails the restore (decisions.md, "Logical dumps: globals").
//
// The program's exit status decides: pg_restore may stop reading once it has
// what it needs (--table), so a broken pipe is not an error by itself
// (SIGPIPE is ignored for the process while this runs, and stays ignored).
// Throws Error(kUsage) for --table on a plain dump, for a database's dump
// without a database or a globals dump with one (or with `create`);
// Error(kNotFound) when the database does not exist and `create` is not
// given; Error(kConflict) when it exists and `create` is given;
// Error(kCorruption) naming a chunk that is missing or damaged;
// Error(kPostgres) with the program's error line when it fails, or (globals)
// the first statement that failed other than by an existing object. A
// database this call created stays after a failure, and the message says so.
#pragma once

#include <string>
#include <vector>

#include "dump/dump_record.h"
#include "repo/repository.h"

namespace walvault::dump {

struct RestoreDumpOptions {
  std::string conninfo;             // libpq connection string of the target server
  std::string database;             // the target database; "" for a globals dump
  bool create = false;              // create `database` (it must not exist)
  std::vector<std::string> tables;  // pg_restore --table each; empty: everything
  std::string pg_bin;               // "": pg::server_bin_dir's default for the server's major
};

struct RestoreDumpResult {
  std::uint64_t bytes_sent = 0;  // dump bytes the program took before it finished
  std::string program;           // "pg_restore" or "psql"
  bool created = false;          // `database` was created by this restore
  // A globals dump: the objects that were there already, as the server named
  // them ("role \"postgres\""), whose CREATE failed while the rest went on.
  std::vector<std::string> already_existed;
};

RestoreDumpResult restore_dump(repo::Repository& repo, const DumpRecord& record,
                               const RestoreDumpOptions& options);

// The errors in the output of psql run as restore_dump runs it for globals
// (client_min_messages=error and VERBOSITY=verbose: every line psql starts
// with "psql:" is an error, and a server's error carries its SQLSTATE,
// whatever the server's language): objects that already existed (42710,
// their names when the message is English, else the message), and every
// other such line, in order.
struct GlobalsErrors {
  std::vector<std::string> already_existed;
  std::vector<std::string> failures;
};
GlobalsErrors globals_errors(const std::string& psql_output);

}  // namespace walvault::dump
