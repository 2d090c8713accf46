// Logical dumps into the chunk store (docs/decisions.md, "Logical dumps"):
// `walvault dump` runs pg_dump (or pg_dumpall --globals-only for the
// cluster's globals) and `dump import` reads an existing dump file;
// either way the bytes are cut by FastCDC (files/file_chunker.h, the dump
// chunker's parameters, the gear table keyed in an encrypted repository, as
// snapshots are cut) so that today's dump stores only the stretches that
// differ from yesterday's, every chunk is flushed, and then the record
// (dump/dump_record.h) is written, last.
//
// pg_dump runs with --format=custom --compress=0: custom so that pg_restore
// can pick tables (--table) and order the restore itself; uncompressed so
// that unchanged table data is byte-identical from day to day and dedups
// (the repository compresses each frame with zstd anyway). The connection's
// settings reach pg_dump through libpq's environment variables
// (pg::conninfo_environment): nothing of the conninfo, and never its
// password, is in pg_dump's argv.
//
// The caller holds each repository's shared lock (gc's protocol, format.md
// "Locks and garbage collection"). A failure leaves no record: the chunks
// already stored are garbage for gc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dump/dump_record.h"
#include "repo/chunk_store.h"
#include "repo/repository.h"

namespace walvault::dump {

struct TakeDumpOptions {
  std::string conninfo;  // libpq connection string (the database in it is not used)
  std::string database;  // the database to dump (take_dump)
  std::string tag;
  std::string pg_bin;         // "": pg::server_bin_dir's default for the server's major
  std::int64_t start_us = 0;  // the dump's start time (its label); 0: now
};

// Why `dump` cannot dump database `database` ("cannot name dumps: ...", or
// the globals' reserved name kGlobalsDatabase), or std::nullopt.
std::optional<std::string> dumpable_problem(const std::string& database);

// One pg_dump of `options.database`, its output stored in each repository of
// `repos` (cut by each one's own chunker) under the same label; returns the
// records, in the order of `repos`. Error(kUsage) for a database
// dumpable_problem refuses, Error(kPostgres) when the server cannot be asked
// or pg_dump fails (its error line in the message), and what the chunk
// stores throw.
std::vector<DumpRecord> take_dump(const std::vector<repo::Repository*>& repos,
                                  const TakeDumpOptions& options);

// The cluster's globals (roles with their passwords' hashes, role
// memberships and settings, tablespaces): one `pg_dumpall --globals-only`
// (the server's major, through the database the connection is to; it reads
// pg_authid, so the role must be a superuser), stored as take_dump stores a
// dump, as a plain dump of kGlobalsDatabase with source "pg_dumpall";
// `options.database` is not used. Throws as take_dump.
std::vector<DumpRecord> take_globals(const std::vector<repo::Repository*>& repos,
                                     const TakeDumpOptions& options);

// The databases `dump --all` dumps: every one that allows connections and is
// not a template, by name.
std::vector<std::string> databases_to_dump(const std::string& conninfo);

// `repo sync`: `record`'s bytes read from `from` (every chunk verified against
// its id) and cut again by `to`'s dump chunker (its own gear key) into
// `to_chunks`, which is flushed. Returns the record `to` is to hold under the
// same name: `to`'s chunks, chunker and added_bytes, the rest as `record`.
// Re-cutting always (instead of copying chunks as they are when both
// repositories name and cut alike) costs reading the dump once and gives the
// same chunks in that case. Error(kCorruption) naming a missing or damaged chunk.
DumpRecord recut_dump(repo::ChunkStore& from, const DumpRecord& record, repo::Repository& to,
                      repo::ChunkStore& to_chunks);

// `dump import`: the dump file read from `fd` (gzip detected by its magic
// bytes and unpacked; custom format detected by pg_dump's "PGDMP" magic,
// anything else is taken as plain SQL) as a dump of `database` taken at
// `time_us`; under kGlobalsDatabase it is the globals (pg_dumpall
// --globals-only's SQL). `what` names the file in the record and in errors.
// Error(kInvalidInput) for a broken gzip stream, an empty file or a
// custom-format file as the globals, and nothing is recorded.
DumpRecord import_dump(repo::Repository& repo, const std::string& database, std::int64_t time_us,
                       const std::string& tag, int fd, const std::string& what);

}  // namespace walvault::dump
