// The record of one logical dump (docs/format.md, "Dump records"): which
// database, when, in what format, and the dump's bytes as a list of chunks of
// the chunk store, in order. A dump exists when, and only when, its record
// exists; the record is written last, after every chunk it names is durable.
//
//   dumps/<database>/<label>    JSON, enveloped (repo/layout.h names it)
//
// A database name here is 1..64 bytes of [A-Za-z0-9_.-], not starting with
// '.' (files::volume_problem's rule: it is part of an object name). A label
// is the dump's UTC start time, YYYYMMDD-HHMMSS (-2, -3... on a clash). A
// dump's id, what `dump restore` takes, is the first 12 hex digits of
// SHA-256("dumps/<database>/<label>").
//
// The cluster's globals (roles, tablespaces: pg_dumpall --globals-only, or
// an imported file of that SQL) are a dump like the others, of the reserved
// database name kGlobalsDatabase: plain SQL, source "pg_dumpall" or
// "import". `dump` never dumps a database of that name (it refuses it), so
// the name means one thing in a repository.
//
// The chunk list is in the record itself (about 80 bytes of JSON per chunk,
// ~0.12% of the dump at the dump chunker's 64 KiB average): one object to
// write last, nothing for gc to pair up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/fastcdc.h"
#include "files/tree.h"
#include "repo/repository.h"

namespace walvault::dump {

// What the dump's bytes are, and so what restores them.
enum class DumpFormat {
  kCustom,  // pg_dump --format=custom ("PGDMP" magic): pg_restore, --table works
  kPlain,   // SQL text: psql
};

// The database name a globals dump is recorded under (format.md, "Dump records").
inline constexpr char kGlobalsDatabase[] = "pg_globals";

struct DumpRecord {
  std::string database;  // the name in the object name (kGlobalsDatabase: the globals)
  std::string label;
  std::string tag;
  std::int64_t start_us = 0;
  std::int64_t end_us = 0;
  std::string host;
  DumpFormat format = DumpFormat::kCustom;
  // "pg_dump" (taken by `dump`), "pg_dumpall" (a globals dump taken by
  // `dump --globals`/`--all`) or "import" (`dump import`; `file` names it).
  std::string source;
  std::string file;
  int server_version = 0;         // server_version_num of the dumped server; 0: unknown (import)
  std::uint64_t bytes = 0;        // the dump's length: the sum of the chunks' lengths
  std::uint64_t added_bytes = 0;  // envelope bytes this dump added to the repository
  codec::CdcParams chunker;
  bool keyed_chunker = false;  // gear table keyed by the repository's master key
  std::vector<files::ChunkRef> chunks;
};

std::string format_name(DumpFormat format);

// Whether `record` holds the cluster's globals (its database is kGlobalsDatabase).
bool is_globals(const DumpRecord& record);

std::string dump_id(const DumpRecord& record);

std::string dump_to_json(const DumpRecord& record);
// Throws Error(kCorruption) naming `object` when malformed: a field missing
// or of the wrong type, a bad name, an unknown format or source, a globals
// dump that is not plain SQL, source "pg_dumpall" under another database
// name, a chunk id that is not 64 hex digits, a chunk of length 0 or longer than the chunker's
// maximum, or lengths that do not add up to `bytes`.
DumpRecord dump_from_json(std::string_view text, const std::string& object);

// Writes the record create-only under the first free label for its start
// time; returns the record with that label. Error(kUsage) for a bad name.
DumpRecord write_dump_record(repo::Repository& repo, DumpRecord record);

// Every dump (of `database` when given), oldest first. Throws
// Error(kCorruption) naming a damaged record, or one stored under another
// dump's name.
std::vector<DumpRecord> list_dumps(repo::Repository& repo,
                                   const std::optional<std::string>& database = {});

// A dump named on the command line: an id (or a unique prefix of at least 4
// hex digits), "latest" (of `database` when given), or "<database>@<time>"
// (the newest of that database started at or before the time, time_util's
// syntax). Throws Error(kNotFound) when none matches, Error(kUsage) when
// ambiguous or malformed.
DumpRecord find_dump(repo::Repository& repo, std::string_view spec,
                     const std::optional<std::string>& database = {});

// Why `database` cannot name dumps, or std::nullopt.
std::optional<std::string> database_name_problem(std::string_view database);

// The chunker parameters of new dumps (format.md, "Dump records"): 16 KiB /
// 64 KiB / 256 KiB, a sixteenth of file snapshots': each row changed in the
// middle of a table costs a new chunk, so a day's scattered row changes then
// store a sixteenth as many bytes (decisions.md, "Logical dumps").
codec::CdcParams dump_cdc_params();

}  // namespace walvault::dump
