#include "repo/layout.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>

#include "core/bytes.h"

namespace walvault::repo {

namespace {

constexpr std::array<std::string_view, 14> kPrefixes = {kKeysPrefix,
                                                        kSegmentPrefix,
                                                        kMetaPrefix,
                                                        kBlockMapPrefix,
                                                        kWalFilePrefix,
                                                        kCataloguePrefix,
                                                        kCatalogueBundlePrefix,
                                                        kPackPrefix,
                                                        kIndexPrefix,
                                                        kBackupPrefix,
                                                        kHistoryPrefix,
                                                        kLockPrefix,
                                                        kSnapshotPrefix,
                                                        kDumpPrefix};

// `object` without `prefix`; std::nullopt when it does not start with it.
std::optional<std::string_view> after(std::string_view object, std::string_view prefix) {
  if (!object.starts_with(prefix)) return std::nullopt;
  return object.substr(prefix.size());
}

// A decimal number of digits only (no sign), fitting an int64.
std::optional<std::int64_t> parse_decimal(std::string_view text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "%016lld": zero-padded so that names sort by time.
std::string stamp16(std::int64_t us) {
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%016lld", static_cast<long long>(us));
  return stamp;
}

// The segment a wal/seg, wal/meta or wal/map object is named after, when `object` is
// exactly the name `build` gives it.
std::optional<pg::WalFileName> parse_segment_under(std::string_view object,
                                                   std::string (*build)(const std::string&)) {
  auto name = pg::parse_wal_file_name(object.substr(object.rfind('/') + 1));
  if (!name || name->kind != pg::WalFileKind::kSegment || build(name->name) != object)
    return std::nullopt;
  return name;
}

}  // namespace

bool is_known_object(std::string_view name) {
  if (name.starts_with(kSnapshotPrefix)) return parse_snapshot_object(name).has_value();
  if (name.starts_with(kDumpPrefix)) return parse_dump_object(name).has_value();
  return name == kConfigObject || name == kClusterObject ||
         std::any_of(kPrefixes.begin(), kPrefixes.end(),
                     [&](std::string_view prefix) { return name.starts_with(prefix); });
}

std::optional<ChunkId> parse_content_id(std::string_view hex) {
  Bytes raw;
  if (hex.size() != 64 || !from_hex(hex, raw)) return std::nullopt;
  ChunkId id{};
  std::copy(raw.begin(), raw.end(), id.begin());
  return id;
}

std::string key_file_object_name(const codec::Key& key_file_key) {
  const auto digest = codec::sha256(key_file_key);
  return std::string(kKeysPrefix) + "file-" + to_hex(ByteView(digest.data(), 8));
}

bool is_unencrypted_object(std::string_view name) {
  return name == kConfigObject || name.starts_with(kKeysPrefix);
}

std::string segment_object_name(const std::string& segment_name) {
  return kSegmentPrefix + segment_name.substr(0, 16) + "/" + segment_name;
}

std::string meta_object_name(const std::string& segment_name) {
  return kMetaPrefix + segment_name.substr(0, 16) + "/" + segment_name;
}

std::string block_map_object_name(const std::string& segment_name) {
  return kBlockMapPrefix + segment_name.substr(0, 16) + "/" + segment_name;
}

std::string file_object_name(const std::string& file_name) { return kWalFilePrefix + file_name; }

std::string data_object_name(const pg::WalFileName& name) {
  return name.kind == pg::WalFileKind::kSegment ? segment_object_name(name.name)
                                                : file_object_name(name.name);
}

std::optional<pg::WalFileName> parse_segment_object(std::string_view object) {
  return parse_segment_under(object, segment_object_name);
}

std::optional<pg::WalFileName> parse_meta_object(std::string_view object) {
  return parse_segment_under(object, meta_object_name);
}

std::optional<pg::WalFileName> parse_block_map_object(std::string_view object) {
  return parse_segment_under(object, block_map_object_name);
}

std::optional<std::string> parse_wal_file_object(std::string_view object) {
  const auto rest = after(object, kWalFilePrefix);
  if (!rest || rest->empty()) return std::nullopt;
  return std::string(*rest);
}

std::optional<pg::WalFileName> wal_file_of_object(std::string_view object) {
  if (!object.starts_with(kWalPrefix)) return std::nullopt;
  return pg::parse_wal_file_name(object.substr(object.rfind('/') + 1));
}

std::string catalogue_object_name(std::string_view directory, const ChunkId& content_id) {
  return kCataloguePrefix + std::string(directory) + "/" + to_hex(content_id);
}

std::optional<CatalogueObject> parse_catalogue_object(std::string_view object) {
  const auto rest = after(object, kCataloguePrefix);
  if (!rest || rest->size() != 16 + 1 + 64 || (*rest)[16] != '/') return std::nullopt;
  const std::string_view directory = rest->substr(0, 16);
  if (directory.find_first_not_of("0123456789ABCDEF") != std::string_view::npos)
    return std::nullopt;
  const auto id = parse_content_id(rest->substr(17));
  if (!id || catalogue_object_name(directory, *id) != object) return std::nullopt;
  return CatalogueObject{std::string(directory), *id};
}

std::string catalogue_bundle_object_name(const ChunkId& content_id) {
  return kCatalogueBundlePrefix + to_hex(content_id);
}

namespace {

// The id of an object named `<prefix><64 hex>`, spelt exactly as `name` spells it.
std::optional<ChunkId> parse_id_under(std::string_view object, std::string_view prefix,
                                      std::string (*name)(const ChunkId&)) {
  const auto rest = after(object, prefix);
  if (!rest) return std::nullopt;
  const auto id = parse_content_id(*rest);
  if (!id || name(*id) != object) return std::nullopt;
  return id;
}

}  // namespace

std::optional<ChunkId> parse_catalogue_bundle_object(std::string_view object) {
  return parse_id_under(object, kCatalogueBundlePrefix, catalogue_bundle_object_name);
}

std::string pack_object_name(const ChunkId& pack_id) {
  const std::string hex = to_hex(pack_id);
  return kPackPrefix + hex.substr(0, 2) + "/" + hex;
}

std::string index_object_name(const ChunkId& index_id) { return kIndexPrefix + to_hex(index_id); }

std::optional<ChunkId> parse_pack_object(std::string_view object) {
  if (!object.starts_with(kPackPrefix)) return std::nullopt;
  const auto id = parse_content_id(object.substr(object.rfind('/') + 1));
  if (!id || pack_object_name(*id) != object) return std::nullopt;
  return id;
}

std::optional<ChunkId> parse_index_object(std::string_view object) {
  return parse_id_under(object, kIndexPrefix, index_object_name);
}

std::string backup_record_object_name(std::string_view label) {
  return kBackupPrefix + std::string(label) + "/" + kBackupRecordKind;
}

std::string backup_files_object_name(std::string_view label) {
  return kBackupPrefix + std::string(label) + "/" + kBackupFilesKind;
}

std::string backup_pin_object_name(std::string_view label) {
  return kBackupPrefix + std::string(label) + "/" + kBackupPinKind;
}

std::optional<BackupObject> parse_backup_object(std::string_view object) {
  const auto rest = after(object, kBackupPrefix);
  if (!rest) return std::nullopt;
  const auto slash = rest->find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest->size())
    return std::nullopt;
  return BackupObject{std::string(rest->substr(0, slash)), std::string(rest->substr(slash + 1))};
}

std::string history_object_name(std::int64_t start_us, std::string_view command,
                                std::string_view random_hex) {
  std::string safe;
  for (char c : command) safe += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  return kHistoryPrefix + stamp16(start_us) + "-" + safe + "-" + std::string(random_hex);
}

std::optional<HistoryObject> parse_history_object(std::string_view object) {
  const auto rest = after(object, kHistoryPrefix);
  if (!rest || rest->size() < 16 + 1 + 1 + 1 || (*rest)[16] != '-') return std::nullopt;
  const auto start_us = parse_decimal(rest->substr(0, 16));
  const auto last = rest->rfind('-');
  if (!start_us || last <= 17) return std::nullopt;
  return HistoryObject{*start_us, std::string(rest->substr(17, last - 17))};
}

const char* lock_mode_name(LockMode mode) {
  return mode == LockMode::kShared ? "shared" : "exclusive";
}

std::string lock_object_name(LockMode mode, std::string_view id, std::int64_t refreshed_us) {
  return kLockPrefix + std::string(lock_mode_name(mode)) + "-" + std::string(id) + "-" +
         stamp16(refreshed_us);
}

std::optional<LockObject> parse_lock_object(std::string_view object) {
  const auto rest = after(object, kLockPrefix);
  if (!rest) return std::nullopt;
  const auto first = rest->find('-');
  const auto last = rest->rfind('-');
  if (first == std::string_view::npos || last == first) return std::nullopt;
  const std::string_view mode = rest->substr(0, first);
  if (mode != lock_mode_name(LockMode::kShared) && mode != lock_mode_name(LockMode::kExclusive))
    return std::nullopt;
  const auto refreshed_us = parse_decimal(rest->substr(last + 1));
  if (!refreshed_us) return std::nullopt;
  return LockObject{
      mode == lock_mode_name(LockMode::kShared) ? LockMode::kShared : LockMode::kExclusive,
      std::string(rest->substr(first + 1, last - first - 1)), *refreshed_us};
}

std::string snapshot_object_name(std::string_view volume, std::string_view label) {
  return kSnapshotPrefix + std::string(volume) + "/" + std::string(label);
}

namespace {

// "<prefix><first>/<second>" with neither part empty nor holding '/'.
std::optional<std::pair<std::string, std::string>> parse_two_parts(std::string_view object,
                                                                   std::string_view prefix) {
  const auto rest = after(object, prefix);
  if (!rest) return std::nullopt;
  const std::size_t slash = rest->find('/');
  if (slash == 0 || slash == std::string_view::npos || slash + 1 == rest->size() ||
      rest->find('/', slash + 1) != std::string_view::npos)
    return std::nullopt;
  return std::pair{std::string(rest->substr(0, slash)), std::string(rest->substr(slash + 1))};
}

}  // namespace

std::optional<SnapshotObject> parse_snapshot_object(std::string_view object) {
  auto parts = parse_two_parts(object, kSnapshotPrefix);
  if (!parts) return std::nullopt;
  return SnapshotObject{std::move(parts->first), std::move(parts->second)};
}

std::string dump_object_name(std::string_view database, std::string_view label) {
  return kDumpPrefix + std::string(database) + "/" + std::string(label);
}

std::optional<DumpObject> parse_dump_object(std::string_view object) {
  auto parts = parse_two_parts(object, kDumpPrefix);
  if (!parts) return std::nullopt;
  return DumpObject{std::move(parts->first), std::move(parts->second)};
}

}  // namespace walvault::repo
