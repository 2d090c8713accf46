// The PostgreSQL side of a base backup: a libpq connection in physical
// replication mode that reports server facts (IDENTIFY_SYSTEM, SHOW) and runs
// BASE_BACKUP, parsing the tar stream(s) in process and handing every file to
// a BackupSink as it arrives. Nothing is written to disk and no file is held
// in memory: data reaches the sink in the server's CopyData pieces.
//
// Protocol shapes (see docs/ARCHITECTURE.md and DESIGN.md):
//  - both: a result set with the start LSN and timeline, then one with the
//    tablespace list (the main data directory is the last row, with NULL oid
//    and location), then the archives, then the end LSN and timeline.
//  - PostgreSQL 15+: the parenthesised option list and one COPY OUT stream
//    whose CopyData messages start with a type byte: 'n' new archive (name,
//    tablespace path), 'd' data, 'p' progress (int64, network order), 'm'
//    manifest follows (further 'd' are manifest bytes).
//  - PostgreSQL 13/14: the keyword syntax, one COPY OUT per tablespace in the
//    list's order (each a tar without the end-of-archive marker), then the
//    manifest as one more COPY OUT. Progress is counted here, client-side.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "pg/tar_reader.h"
#include "pg/wal_name.h"

struct pg_conn;  // libpq's PGconn, kept out of this header

namespace walvault::pg {

struct Tablespace {
  std::optional<std::uint32_t> oid;     // empty for the main data directory
  std::string path;                     // server-side location; empty for the main data directory
  std::optional<std::int64_t> size_kb;  // the server's estimate, present when PROGRESS was asked
  bool is_main() const { return !oid.has_value(); }
};

// Receives one base backup as it streams. Calls come in this order:
// on_start; then for each archive (tablespaces first, the main data directory
// last) on_archive_begin, the entries of its tar, on_archive_end; then
// on_manifest_data (zero or more); on_end. on_progress may come at any point
// after on_start. Any method may throw to abort the backup; the exception
// propagates out of BaseBackupClient::run_base_backup and the connection is
// then unusable. Views are valid only during the call.
class BackupSink {
 public:
  virtual ~BackupSink() = default;
  virtual void on_start(Lsn start_lsn, TimeLineId timeline,
                        const std::vector<Tablespace>& tablespaces) = 0;
  // `archive_name` is the server's name ("base.tar", "<oid>.tar").
  virtual void on_archive_begin(const std::string& archive_name, const Tablespace& tablespace) = 0;
  virtual void on_tar_entry_begin(const TarEntry& entry) = 0;
  virtual void on_tar_entry_data(ByteView data) = 0;
  virtual void on_tar_entry_end() = 0;
  virtual void on_archive_end() = 0;
  virtual void on_manifest_data(ByteView data) = 0;
  // Bytes of tar data streamed so far (the server's count on 15+, ours before).
  virtual void on_progress(std::uint64_t bytes_done) = 0;
  virtual void on_end(Lsn end_lsn, TimeLineId timeline) = 0;
};

enum class CheckpointMode { kFast, kSpread };
enum class ManifestChecksums { kCrc32c, kSha256, kNone };

struct BaseBackupOptions {
  std::string label = "walvault";
  CheckpointMode checkpoint = CheckpointMode::kFast;
  bool manifest = true;
  ManifestChecksums manifest_checksums = ManifestChecksums::kCrc32c;
  bool progress = true;  // asks the server for size estimates (and, on 15+, progress messages)
};

// What later steps need to know about the server.
struct ServerFacts {
  int server_version_num = 0;  // e.g. 150018
  std::uint64_t system_identifier = 0;
  TimeLineId timeline = 0;  // current timeline (IDENTIFY_SYSTEM)
  Lsn current_lsn = 0;      // current flush position (IDENTIFY_SYSTEM)
  std::uint32_t wal_segment_size = 0;
  bool data_checksums = false;
};

struct BaseBackupResult {
  Lsn start_lsn = 0, end_lsn = 0;
  TimeLineId start_timeline = 0, end_timeline = 0;
  std::uint64_t tar_bytes = 0;       // all archives' tar bytes
  std::uint64_t manifest_bytes = 0;  // 0 when no manifest was asked
};

// One replication connection. Not thread-safe; use from one thread.
class BaseBackupClient {
 public:
  // Connects with `conninfo` (key=value or URI, as for psql; empty means the
  // PG* environment) plus replication=true. Throws Error(kPostgres) when the
  // server refuses; the message never contains a password.
  explicit BaseBackupClient(const std::string& conninfo);
  ~BaseBackupClient();
  BaseBackupClient(const BaseBackupClient&) = delete;
  BaseBackupClient& operator=(const BaseBackupClient&) = delete;

  int server_version_num() const;
  // IDENTIFY_SYSTEM plus SHOW wal_segment_size and SHOW data_checksums.
  ServerFacts server_facts();

  // Runs BASE_BACKUP with WAIT false (the caller waits for the WAL itself)
  // and TABLESPACE_MAP, streaming into `sink`. Throws Error(kPostgres) when the
  // server fails, Error(kInvalidInput) when its stream is malformed, or what
  // the sink throws. Supports servers 13 and newer.
  BaseBackupResult run_base_backup(const BaseBackupOptions& options, BackupSink& sink);

 private:
  struct Deleter {
    void operator()(pg_conn* conn) const;
  };
  std::unique_ptr<pg_conn, Deleter> conn_;
};

// `conninfo` with every password value replaced by "********": both
// key=value ("password=secret", "password='a b'") and URI ("user:secret@")
// forms. For messages and logs.
std::string redact_conninfo(const std::string& conninfo);

// The BASE_BACKUP command for a server version, exposed for unit tests.
std::string base_backup_command(const BaseBackupOptions& options, int server_version_num);

}  // namespace walvault::pg
