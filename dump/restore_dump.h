// `walvault dump restore`: a dump's chunks, read and verified in order,
// written into the stdin of the program that restores its format: pg_restore
// for a custom-format dump (which can take only some tables), psql for plain
// SQL, both of the target server's major (pg::server_bin_dir). The target
// database must exist; the connection's settings reach the program through
// libpq's environment (pg::conninfo_environment), never its argv.
//
// The program's exit status decides: pg_restore may stop reading once it has
// what it needs (--table), so a broken pipe is not an error by itself
// (SIGPIPE is ignored for the process while this runs, and stays ignored).
// Throws Error(kUsage) for --table on a plain dump, Error(kCorruption) naming
// a chunk that is missing or damaged, Error(kPostgres) with the program's
// error line when it fails.
#pragma once

#include <string>
#include <vector>

#include "dump/dump_record.h"
#include "repo/repository.h"

namespace walvault::dump {

struct RestoreDumpOptions {
  std::string conninfo;             // libpq connection string of the target server
  std::string database;             // the target database (it must exist)
  std::vector<std::string> tables;  // pg_restore --table each; empty: everything
  std::string pg_bin;               // "": pg::server_bin_dir's default for the server's major
};

struct RestoreDumpResult {
  std::uint64_t bytes_sent = 0;  // dump bytes the program took before it finished
  std::string program;           // "pg_restore" or "psql"
};

RestoreDumpResult restore_dump(repo::Repository& repo, const DumpRecord& record,
                               const RestoreDumpOptions& options);

}  // namespace walvault::dump
