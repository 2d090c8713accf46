// The repository layout: every object name walvault writes, in one place
// (docs/format.md, "Object names", is the specification; this header is its
// code). Nothing outside src/repo spells a prefix or a name: it builds names
// and takes them apart through the functions below.
//
//   config                                        repository.h: format, id, KDF
//   cluster                                       cluster.h: the bound PostgreSQL cluster
//   keys/file-<16 hex>                            repository.h: a key-file wrap
//   wal/seg/<tli+log, 16 hex>/<segment name>      wal_objects.h: a segment's bytes
//   wal/meta/<tli+log, 16 hex>/<segment name>     wal_objects.h: its metadata (archived)
//   wal/map/<tli+log, 16 hex>/<segment name>      wal_objects.h: its block map (pg/block_map.h)
//   wal/file/<file name>                          .history, .backup, .partial
//   wal/cat/<tli+log, 16 hex>/<content id, 64 hex>  wal_catalogue.h: a log directory's metadata
//   packs/<first 2 hex of id>/<pack id, 64 hex>   chunk_store.h: chunk envelopes
//   index/<index id, 64 hex>                      chunk_store.h: the chunks of one pack
//   backups/<label>/files                         basebackup/backup_record.h: file list
//   backups/<label>/record                        the backup's summary, written last
//   backups/<label>/pin                           `backup keep`
//   history/<start_us, 16 digits>-<command>-<8 hex>   history.h: one event
//   locks/<shared|exclusive>-<lock id>-<refreshed_us, 16 digits>   lock.h
//   snapshots/<volume>/<label>                    files/snapshot_record.h: a file-volume snapshot
//   dumps/<database>/<label>                      dump/dump_record.h: a logical dump
//
// Builders return the canonical name. Parsers take a listed object name and
// return its parts, or std::nullopt when the name is not one walvault writes
// under that prefix (the caller then warns or leaves the object alone: a
// repository is hostile input). Parsers of content-addressed names (packs,
// indexes) and of WAL objects accept only the canonical spelling, so a name
// that parses is the name the builder gives for its parts.
//
// Pure functions: no I/O, nothing thrown but std::bad_alloc.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "codec/crypto.h"
#include "pg/wal_name.h"

namespace walvault::repo {

// Whole names.
inline constexpr char kConfigObject[] = "config";
inline constexpr char kClusterObject[] = "cluster";

// Prefixes, each ending in '/'; list(prefix) enumerates one class of objects.
inline constexpr char kKeysPrefix[] = "keys/";
inline constexpr char kWalPrefix[] = "wal/";  // the five below
inline constexpr char kSegmentPrefix[] = "wal/seg/";
inline constexpr char kMetaPrefix[] = "wal/meta/";
inline constexpr char kBlockMapPrefix[] = "wal/map/";
inline constexpr char kWalFilePrefix[] = "wal/file/";
inline constexpr char kCataloguePrefix[] = "wal/cat/";
inline constexpr char kCatalogueBundlePrefix[] = "wal/catb/";
inline constexpr char kPackPrefix[] = "packs/";
inline constexpr char kIndexPrefix[] = "index/";
inline constexpr char kBackupPrefix[] = "backups/";
inline constexpr char kHistoryPrefix[] = "history/";
inline constexpr char kLockPrefix[] = "locks/";
inline constexpr char kSnapshotPrefix[] = "snapshots/";
inline constexpr char kDumpPrefix[] = "dumps/";

// True for `config`, `cluster`, any name under one of the prefixes above,
// a snapshot record's name (snapshots/<volume>/<label>) and a dump record's
// (dumps/<database>/<label>): a name walvault may have written (verify warns
// about every other one).
bool is_known_object(std::string_view name);

// The one parser of hex ids: exactly 64 hex digits (either case) -> 32 bytes.
// Chunk, pack and index ids are all 32-byte SHA-256 (or HMAC) values.
using ChunkId = std::array<std::uint8_t, 32>;
std::optional<ChunkId> parse_content_id(std::string_view hex);

// keys/file-<16 hex>: the lower-case hex of the first 8 bytes of
// SHA-256(key file bytes) (identifies the key, reveals nothing of it).
std::string key_file_object_name(const codec::Key& key_file_key);
// config and key wraps are never encrypted: they are read before any key.
bool is_unencrypted_object(std::string_view name);

// WAL. The directory part is the segment name's first 16 hex (timeline+log).
std::string segment_object_name(const std::string& segment_name);
std::string meta_object_name(const std::string& segment_name);
std::string block_map_object_name(const std::string& segment_name);
std::string file_object_name(const std::string& file_name);
// The object that holds the bytes of any archivable file name.
std::string data_object_name(const pg::WalFileName& name);
// The segment a canonical wal/seg/... (wal/meta/...) name is named after.
std::optional<pg::WalFileName> parse_segment_object(std::string_view object);
std::optional<pg::WalFileName> parse_meta_object(std::string_view object);
std::optional<pg::WalFileName> parse_block_map_object(std::string_view object);
// The file name after wal/file/ (not checked as a WAL file name; non-empty).
std::optional<std::string> parse_wal_file_object(std::string_view object);
// The WAL file any wal/seg, wal/meta, wal/map or wal/file object holds, by its last
// component; std::nullopt when that is no WAL file name.
std::optional<pg::WalFileName> wal_file_of_object(std::string_view object);

// WAL catalogues: wal/cat/<directory>/<content id> (lower-case hex), where
// the directory is a segment name's first 16 hex digits (timeline+log).
std::string catalogue_object_name(std::string_view directory, const ChunkId& content_id);
struct CatalogueObject {
  std::string directory;  // 16 upper-case hex digits, as in segment names
  ChunkId content_id{};
};
std::optional<CatalogueObject> parse_catalogue_object(std::string_view object);
// Catalogue bundles: wal/catb/<content id> (lower-case hex).
std::string catalogue_bundle_object_name(const ChunkId& content_id);
std::optional<ChunkId> parse_catalogue_bundle_object(std::string_view object);

// Chunks: packs/<2 hex>/<64 hex>, index/<64 hex> (lower-case hex).
std::string pack_object_name(const ChunkId& pack_id);
std::string index_object_name(const ChunkId& index_id);
std::optional<ChunkId> parse_pack_object(std::string_view object);
std::optional<ChunkId> parse_index_object(std::string_view object);

// Backups: backups/<label>/<kind>.
inline constexpr char kBackupRecordKind[] = "record";
inline constexpr char kBackupFilesKind[] = "files";
inline constexpr char kBackupPinKind[] = "pin";
std::string backup_record_object_name(std::string_view label);
std::string backup_files_object_name(std::string_view label);
std::string backup_pin_object_name(std::string_view label);
struct BackupObject {
  std::string label;
  std::string kind;  // "record", "files", "pin", or anything else found there
};
// std::nullopt unless the name is backups/<label>/<kind>, both non-empty.
std::optional<BackupObject> parse_backup_object(std::string_view object);

// History: history/<start_us, 16 digits>-<command>-<8 hex>; characters of the
// command other than [A-Za-z0-9] are written as '-'.
std::string history_object_name(std::int64_t start_us, std::string_view command,
                                std::string_view random_hex);
struct HistoryObject {
  std::int64_t start_us = 0;
  std::string command;
};
std::optional<HistoryObject> parse_history_object(std::string_view object);

// Locks: locks/<shared|exclusive>-<lock id>-<refreshed_us, 16 digits>.
enum class LockMode { kShared, kExclusive };
const char* lock_mode_name(LockMode mode);  // "shared", "exclusive"
std::string lock_object_name(LockMode mode, std::string_view id, std::int64_t refreshed_us);
struct LockObject {
  LockMode mode = LockMode::kShared;
  std::string id;
  std::int64_t refreshed_us = 0;
};
std::optional<LockObject> parse_lock_object(std::string_view object);

// A file-volume snapshot's record. The parser takes "<volume>/<label>" with
// neither part empty nor holding '/'; files/snapshot_record.h checks the
// characters.
std::string snapshot_object_name(std::string_view volume, std::string_view label);
struct SnapshotObject {
  std::string volume, label;
};
std::optional<SnapshotObject> parse_snapshot_object(std::string_view object);

// A logical dump's record, named like a snapshot's: "<database>/<label>" with
// neither part empty nor holding '/'; dump/dump_record.h checks the characters.
std::string dump_object_name(std::string_view database, std::string_view label);
struct DumpObject {
  std::string database, label;
};
std::optional<DumpObject> parse_dump_object(std::string_view object);

}  // namespace walvault::repo
