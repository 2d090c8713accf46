#include "ops/verify.h"

#include <algorithm>
#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <unordered_map>

#include "basebackup/backup_record.h"
#include "basebackup/restore_plan.h"
#include "codec/crypto.h"
#include "core/error.h"
#include "dump/dump_record.h"
#include "ops/verify_snapshots.h"
#include "pg/block_map.h"
#include "pg/wal_name.h"
#include "repo/chunk_store.h"
#include "repo/cluster.h"
#include "repo/history.h"
#include "repo/layout.h"
#include "repo/wal_catalogue.h"
#include "repo/wal_objects.h"

namespace walvault::ops {

namespace {

using basebackup::BackupRecord;
using repo::ChunkId;

constexpr std::uint32_t kDefaultSegmentSize = 16u << 20;
// Chunks a file list lacks that are named one by one before the rest are counted.
constexpr std::size_t kMaxListedChunks = 10;
// Errors the repository's content causes. Anything else (the store failing,
// a bug) is not a finding about the repository: it propagates.
bool is_content_error(ErrorCode code) {
  return code == ErrorCode::kCorruption || code == ErrorCode::kKey || code == ErrorCode::kNotFound;
}

// Errors name their object; the report names it once, in front.
std::string without_object(std::string message, const std::string& object) {
  const std::string prefix = object + ": ";
  if (message.starts_with(prefix)) message.erase(0, prefix.size());
  return message;
}

ChunkId to_id(const codec::Digest& digest) {
  ChunkId id;
  std::copy(digest.begin(), digest.end(), id.begin());
  return id;
}

std::string count_text(std::uint64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Where one index places one chunk.
struct PackRef {
  std::uint32_t index = 0;  // into Verifier::index_names_
  ChunkId chunk;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  std::optional<std::uint64_t> xxh3;                 // recorded by a format-2 index
  std::uint32_t inner_offset = 0, inner_length = 0;  // place in the envelope (format 2)
};

class Verifier {
 public:
  Verifier(repo::Repository& repo, const VerifyOptions& options)
      : repo_(repo), options_(options), snapshots_(repo, snapshot_hooks()) {
    report_.read_data = options.read_data;
  }

  VerifyReport run() {
    list_repository();
    check_cluster();
    load_indexes();
    check_backups();  // before the packs: a missing pack names the backups that need it
    report_.snapshots = snapshots_.check(objects_under(repo::kSnapshotPrefix), options_.read_data,
                                         report_.bytes_read);
    check_dumps();
    check_packs();
    snapshots_.name_damaged_files(damaged_chunks_);
    name_damaged_dumps();
    check_wal();
    check_wal_catalogues();
    if (options_.read_data) read_small_objects();
    return std::move(report_);
  }

 private:
  void error(const std::string& object, const std::string& message) {
    report_.errors.push_back({object, message});
  }
  void warning(const std::string& object, const std::string& message) {
    report_.warnings.push_back({object, message});
  }
  void note(const std::string& object, const std::string& message) {
    report_.notes.push_back({object, message});
  }

  // Runs `fn`; a content error it throws becomes an error of `object`
  // (false then).
  template <typename Fn>
  bool guarded(const std::string& object, Fn&& fn) {
    try {
      fn();
      return true;
    } catch (const Error& e) {
      if (!is_content_error(e.code())) throw;
      error(object, without_object(e.what(), object));
      return false;
    }
  }

  // The object's verified plaintext; std::nullopt when it is damaged (an
  // error is recorded) or absent (removed since it was listed).
  std::optional<Bytes> get(const std::string& object) {
    std::optional<Bytes> out;
    guarded(object, [&] { out = repo_.get_object(object); });
    return out;
  }

  SnapshotCheckHooks snapshot_hooks() {
    SnapshotCheckHooks h;
    h.locate = [this](const ChunkId& id) -> const repo::ChunkLocation* {
      auto it = chunk_loc_.find(id);
      return it == chunk_loc_.end() ? nullptr : &it->second;
    };
    h.chunk_id = [this](ByteView plaintext) { return chunk_id(plaintext); };
    h.guarded = [this](const std::string& object, const std::function<void()>& fn) {
      return guarded(object, fn);
    };
    h.error = [this](const std::string& object, const std::string& message) {
      error(object, message);
    };
    h.used_by = [this](const ChunkId& pack, const std::string& user) {
      auto& users = pack_snapshots_[pack];
      if (users.empty() || users.back() != user) users.push_back(user);
    };
    return h;
  }

  // One listing of the whole repository, sorted by name; every check takes
  // its prefix's part of it, and a name under no prefix walvault writes is a
  // warning.
  void list_repository() {
    listing_ = repo_.store().list("");
    std::sort(
        listing_.begin(), listing_.end(),
        [](const store::ObjectInfo& a, const store::ObjectInfo& b) { return a.name < b.name; });
    for (const auto& info : listing_)
      if (!repo::is_known_object(info.name)) warning(info.name, "not an object walvault writes");
  }

  // The listed objects whose name starts with `prefix`.
  std::vector<store::ObjectInfo> objects_under(std::string_view prefix) const {
    auto it = std::lower_bound(
        listing_.begin(), listing_.end(), prefix,
        [](const store::ObjectInfo& info, std::string_view p) { return info.name < p; });
    std::vector<store::ObjectInfo> out;
    for (; it != listing_.end() && it->name.starts_with(prefix); ++it) out.push_back(*it);
    return out;
  }

  ChunkId chunk_id(ByteView plaintext) const {
    const auto& key = repo_.id_key();
    return to_id(key ? codec::hmac_sha256(*key, plaintext) : codec::sha256(plaintext));
  }

  void check_cluster() {
    guarded(repo::kClusterObject, [&] {
      if (auto cluster = repo::read_cluster(repo_)) cluster_segment_size_ = cluster->segment_size;
    });
  }

  void load_indexes() {
    const auto listed = objects_under(repo::kIndexPrefix);
    report_.indexes = listed.size();
    for (const auto& info : listed) {
      const auto id = repo::parse_index_object(info.name);
      if (!id) {
        warning(info.name, "not an index name (index/<64 hex>); not read");
        continue;
      }
      const auto plaintext = get(info.name);
      if (!plaintext) continue;
      std::vector<std::pair<ChunkId, repo::ChunkLocation>> entries;
      if (!guarded(info.name, [&] { entries = repo::decode_index(*plaintext, info.name); }))
        continue;
      if (to_id(codec::sha256(*plaintext)) != *id)
        error(info.name, "content does not match its name");
      const auto index_no = static_cast<std::uint32_t>(index_names_.size());
      index_names_.push_back(info.name);
      for (const auto& [chunk, loc] : entries) {
        chunk_loc_.try_emplace(chunk, loc);
        pack_refs_[loc.pack].push_back({index_no, chunk, loc.offset, loc.length, loc.xxh3,
                                        loc.inner_offset, loc.inner_length});
      }
    }
    report_.chunks = chunk_loc_.size();
  }

  void check_backups() {
    struct Objects {
      bool record = false, files = false, pin = false;
    };
    std::map<std::string, Objects> labels;
    for (const auto& info : objects_under(repo::kBackupPrefix)) {
      const auto object = repo::parse_backup_object(info.name);
      const std::string kind = object ? object->kind : "";
      if (kind == repo::kBackupRecordKind)
        labels[object->label].record = true;
      else if (kind == repo::kBackupFilesKind)
        labels[object->label].files = true;
      else if (kind == repo::kBackupPinKind)
        labels[object->label].pin = true;
      else
        warning(info.name, "not an object walvault writes");
    }
    // Not a structured binding: the lambdas below capture the label, which
    // older clang (clang-tidy) refuses for bindings.
    for (const auto& entry : labels) {
      const std::string& label = entry.first;
      const Objects& objects = entry.second;
      const std::string record_object = basebackup::record_object_name(label);
      const std::string files_object = basebackup::files_object_name(label);
      if (objects.pin) {
        const std::string pin_object = basebackup::pin_object_name(label);
        if (options_.read_data) guarded(pin_object, [&] { basebackup::read_pin(repo_, label); });
        if (!objects.record) warning(pin_object, "a pin without a record: pins nothing");
      }
      if (!objects.record && !objects.files) continue;  // a pin alone: warned above
      if (!objects.record) {
        warning(files_object, "a file list without a record (an interrupted backup): not a backup");
        continue;
      }
      ++report_.backups;
      std::optional<BackupRecord> record;
      guarded(record_object, [&] { record = basebackup::read_record(repo_, label); });
      if (record && record->label != label)
        error(record_object, "holds the record of backup " + record->label);
      else if (record)
        backups_.push_back(*record);
      if (!objects.files) {
        error(files_object, "missing (backup " + label + " has a record)");
        continue;
      }
      std::optional<basebackup::BackupFiles> files;
      guarded(files_object, [&] { files = basebackup::read_files(repo_, label); });
      if (!files) continue;
      // Restore's own check of the names (backup/backup_record.h): an entry
      // escaping the target, below a symlink entry, listed twice, or of a
      // tablespace the record lacks. Needs the record (its tablespaces); an
      // unreadable one is reported above.
      if (record) guarded(files_object, [&] { basebackup::check_file_list(*record, *files); });
      check_chunks(label, files_object, *files, record ? record->chunk_size : 0);
    }
  }

  void check_chunks(const std::string& label, const std::string& object,
                    const basebackup::BackupFiles& files, std::uint32_t chunk_size) {
    std::uint64_t missing = 0;
    std::set<ChunkId> packs;
    for (const auto& e : files.entries) {
      if (e.type != basebackup::EntryType::kFile) continue;
      const std::string path =
          e.tablespace.empty() ? e.path : "tablespace " + e.tablespace + " " + e.path;
      if (chunk_size > 0) {
        const std::uint64_t expected = (e.size + chunk_size - 1) / chunk_size;
        if (e.chunks.size() != expected)
          error(object, path + ": " + count_text(e.chunks.size(), "chunk", "chunks") + " for " +
                            std::to_string(e.size) + " bytes (expected " +
                            std::to_string(expected) + ")");
      }
      for (std::size_t i = 0; i < e.chunks.size(); ++i) {
        if (auto it = chunk_loc_.find(e.chunks[i]); it != chunk_loc_.end()) {
          packs.insert(it->second.pack);
          continue;
        }
        if (++missing <= kMaxListedChunks)
          error(object, "chunk " + to_hex(e.chunks[i]) + " (" + path + ", chunk " +
                            std::to_string(i) + ") is not listed by any index");
      }
    }
    if (missing > kMaxListedChunks)
      error(object, std::to_string(missing - kMaxListedChunks) +
                        " more chunks are not listed by any index");
    for (const auto& pack : packs) pack_users_[pack].push_back(label);
  }

  // Logical dumps (format.md "verify"): every record decodes and is named
  // after its database and label, and every chunk it lists is listed by an
  // index. Objects under dumps/ of other names were warned about already.
  void check_dumps() {
    for (const auto& info : objects_under(repo::kDumpPrefix)) {
      if (!repo::parse_dump_object(info.name)) continue;
      const auto bytes = get(info.name);
      if (!bytes) continue;
      std::optional<dump::DumpRecord> record;
      if (!guarded(info.name, [&] { record = dump::dump_from_json(as_chars(*bytes), info.name); }))
        continue;
      if (info.name != repo::dump_object_name(record->database, record->label)) {
        error(info.name, "holds the record of dump " + record->database + "/" + record->label);
        continue;
      }
      ++report_.dumps;
      if (options_.read_data) report_.bytes_read += info.size;
      const std::string user = "dump " + record->database + "/" + record->label;
      std::uint64_t missing = 0;
      for (std::size_t i = 0; i < record->chunks.size(); ++i) {
        const ChunkId& id = record->chunks[i].id;
        if (auto it = chunk_loc_.find(id); it != chunk_loc_.end()) {
          auto& users = pack_snapshots_[it->second.pack];
          if (users.empty() || users.back() != user) users.push_back(user);
        } else if (++missing <= kMaxListedChunks) {
          error(info.name, "chunk " + to_hex(id) + " (chunk " + std::to_string(i) +
                               " of the dump) is not listed by any index");
        }
      }
      if (missing > kMaxListedChunks)
        error(info.name, std::to_string(missing - kMaxListedChunks) +
                             " more chunks are not listed by any index");
      dumps_.emplace_back(info.name, std::move(*record));
    }
  }

  // After the packs were checked: each dump that needs a chunk found missing
  // or damaged there.
  void name_damaged_dumps() {
    if (damaged_chunks_.empty()) return;
    for (const auto& [object, record] : dumps_) {
      std::uint64_t named = 0;
      for (std::size_t i = 0; i < record.chunks.size(); ++i) {
        auto it = damaged_chunks_.find(record.chunks[i].id);
        if (it == damaged_chunks_.end()) continue;
        if (++named <= kMaxListedChunks)
          error(object, "chunk " + std::to_string(i) + " of the dump " + it->second);
      }
      if (named > kMaxListedChunks)
        error(object, std::to_string(named - kMaxListedChunks) + " more chunks are lost");
    }
  }

  // "needed by backup A, B", "needed by backup A and snapshot app/L" or
  // "no backup needs it".
  std::string users_text(const ChunkId& pack) const {
    auto names = [](const std::vector<std::string>& list) {
      std::string out;
      for (std::size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + list[i];
      return out;
    };
    std::string out;
    if (auto it = pack_users_.find(pack); it != pack_users_.end())
      out = (it->second.size() == 1 ? "backup " : "backups ") + names(it->second);
    if (auto it = pack_snapshots_.find(pack); it != pack_snapshots_.end())
      out += (out.empty() ? "" : " and ") + names(it->second);
    return out.empty() ? "no backup needs it" : "needed by " + out;
  }

  // "index/<id> lists 12 chunks in it" (or several indexes).
  std::string listed_by_text(const std::vector<PackRef>& refs) const {
    std::set<std::uint32_t> indexes;
    for (const auto& r : refs) indexes.insert(r.index);
    std::string out;
    for (auto i : indexes) out += (out.empty() ? "" : ", ") + index_names_[i];
    return out + (indexes.size() == 1 ? " lists " : " list ") +
           count_text(refs.size(), "chunk", "chunks") + " in it";
  }

  void check_packs() {
    std::map<std::string, std::uint64_t> listed;
    for (const auto& info : objects_under(repo::kPackPrefix)) listed.emplace(info.name, info.size);
    report_.packs = listed.size();
    std::set<std::string> referenced;
    for (const auto& [pack, refs] : pack_refs_) {
      const std::string name = repo::pack_object_name(pack);
      referenced.insert(name);
      std::optional<std::uint64_t> size;
      if (auto it = listed.find(name); it != listed.end())
        size = it->second;
      else if (auto info = repo_.store().stat(name))  // written after the listing
        size = info->size;
      if (!size) {
        error(name, "missing (" + listed_by_text(refs) + "; " + users_text(pack) + ")");
        for (const auto& r : refs) damaged_chunks_.emplace(r.chunk, "is in " + name + ", missing");
        continue;
      }
      const PackRef* first_beyond = nullptr;
      std::uint64_t beyond = 0;
      for (const auto& r : refs) {
        if (r.offset + r.length <= *size) continue;
        if (!first_beyond) first_beyond = &r;
        ++beyond;
        damaged_chunks_.emplace(r.chunk, "lies past the end of " + name + ", truncated");
      }
      if (first_beyond) {
        std::string more;
        if (beyond > 1) more = "and " + std::to_string(beyond - 1) + " more chunks past its end; ";
        error(name, "truncated: " + std::to_string(*size) + " bytes, but " +
                        index_names_[first_beyond->index] + " places chunk " +
                        to_hex(first_beyond->chunk) + " at " +
                        std::to_string(first_beyond->offset) + ".." +
                        std::to_string(first_beyond->offset + first_beyond->length) + " (" + more +
                        users_text(pack) + ")");
      }
      if (options_.read_data) read_pack(pack, name, refs);
    }
    for (const auto& [name, size] : listed) {
      if (referenced.count(name)) continue;
      if (!repo::parse_pack_object(name)) {
        warning(name, "not a pack name (packs/<2 hex>/<64 hex>)");
        continue;
      }
      warning(name, "orphan: no index lists this pack (" + std::to_string(size) +
                        " bytes; an interrupted backup leaves one)");
    }
  }

  // Reads the whole pack and opens every chunk the indexes place in it.
  void read_pack(const ChunkId& pack, const std::string& name, const std::vector<PackRef>& refs) {
    const auto bytes = repo_.store().get(name);
    if (!bytes) {
      error(name, "missing (removed while verify ran)");
      return;
    }
    report_.bytes_read += bytes->size();
    std::uint64_t bad = 0;
    // Chunks sharing an envelope are listed one after the other: it is opened once.
    std::uint64_t opened_offset = ~std::uint64_t{0};
    Bytes frame;
    for (const auto& r : refs) {
      if (r.offset + r.length > bytes->size()) {
        ++bad;  // reported above
        continue;
      }
      const std::string what = "chunk " + to_hex(r.chunk);
      const bool opened = guarded(name, [&] {
        if (opened_offset != r.offset) {
          opened_offset = ~std::uint64_t{0};
          frame = repo_.open_object(ByteView(bytes->data() + r.offset, r.length), what);
          opened_offset = r.offset;
        }
        repo::ChunkLocation loc;
        loc.inner_offset = r.inner_offset;
        loc.inner_length = r.inner_length;
        const ByteView plaintext = repo::chunk_in_frame(frame, loc, what);
        if (chunk_id(plaintext) != r.chunk)
          throw Error(ErrorCode::kCorruption, what + ": content does not match its id");
        // Restore trusts this record instead of hashing every chunk again.
        if (r.xxh3 && codec::xxh3_64(plaintext) != *r.xxh3)
          throw Error(ErrorCode::kCorruption,
                      what + ": " + index_names_[r.index] + " records another XXH3 for it");
      });
      if (!opened) {
        ++bad;
        damaged_chunks_.emplace(r.chunk, "is damaged (in " + name + ")");
      }
    }
    if (bad == 0 && to_id(codec::sha256(*bytes)) != pack)
      error(name, "content does not match its name (bytes outside every chunk differ)");
  }

  std::uint32_t segment_size() const {
    if (pg::is_valid_segment_size(cluster_segment_size_)) return cluster_segment_size_;
    for (const auto& b : backups_)
      if (pg::is_valid_segment_size(b.wal_segment_size)) return b.wal_segment_size;
    return kDefaultSegmentSize;
  }

  // Each catalogue against the metadata and block maps it lists
  // (repo/wal_catalogue.h): planning trusts a full one without listing. Each
  // bundle's copies of full catalogues against their names.
  void check_wal_catalogues() {
    const auto check_under = [this](std::string_view prefix, const std::string& kind,
                                    auto parse_name, auto check) {
      for (const auto& info : objects_under(prefix)) {
        if (!parse_name(info.name)) {
          warning(info.name, "not a " + kind + " name");
          continue;
        }
        for (const std::string& problem : check(repo_, info.name)) error(info.name, problem);
      }
    };
    check_under(repo::kCataloguePrefix, "WAL catalogue", repo::parse_catalogue_object,
                repo::check_catalogue);
    check_under(repo::kCatalogueBundlePrefix, "WAL catalogue bundle",
                repo::parse_catalogue_bundle_object, repo::check_catalogue_bundle);
  }

  void check_wal() {
    const std::uint32_t size = segment_size();
    std::map<std::string, std::uint64_t> seg_objects;  // segment name -> stored size
    for (const auto& info : objects_under(repo::kSegmentPrefix)) {
      if (auto name = repo::parse_segment_object(info.name))
        seg_objects.emplace(name->name, info.size);
      else
        warning(info.name, "not a segment object name");
    }
    basebackup::ArchiveView view;
    view.wal_segment_size = size;
    view.backups = backups_;
    std::set<std::string> with_meta;
    for (const auto& info : objects_under(repo::kMetaPrefix)) {
      const auto name = repo::parse_meta_object(info.name);
      if (!name) {
        warning(info.name, "not a segment metadata name");
        continue;
      }
      repo::SegmentMeta m;
      m.name = name->name;
      m.timeline = name->timeline;
      m.segno = pg::segment_number(*name, size);
      with_meta.insert(m.name);
      auto seg = seg_objects.find(m.name);
      if (seg == seg_objects.end()) {
        error(repo::segment_object_name(m.name),
              "missing (its metadata says the segment is archived)");
        if (options_.read_data) get(info.name);
      } else if (options_.read_data) {
        read_segment(m.name, seg->second);
      }
      view.segments.push_back(std::move(m));
    }
    report_.wal_segments = view.segments.size();
    for (const auto& [name, stored] : seg_objects) {
      if (with_meta.count(name)) continue;
      const std::string object = repo::segment_object_name(name);
      warning(object,
              "no metadata: not archived (an interrupted push; PostgreSQL pushes it again)");
      if (options_.read_data && get(object)) report_.bytes_read += stored;
    }
    for (const auto& info : objects_under(repo::kWalFilePrefix)) {
      const auto file = repo::parse_wal_file_object(info.name);
      const auto name = file ? pg::parse_wal_file_name(*file) : std::nullopt;
      if (!name || name->kind == pg::WalFileKind::kSegment) {
        warning(info.name, "not a WAL file name walvault stores here");
        continue;
      }
      if (name->kind != pg::WalFileKind::kHistory && !options_.read_data) continue;
      const auto bytes = get(info.name);
      if (!bytes) continue;
      report_.bytes_read += options_.read_data ? info.size : 0;
      if (name->kind == pg::WalFileKind::kHistory)
        guarded(info.name, [&] {
          view.histories[name->timeline] = basebackup::parse_history(as_chars(*bytes), info.name);
        });
    }
    check_continuity(view);
    check_block_maps(size);
  }

  // Every block map decodes and is the map of the segment its name says
  // (its first LSN; with read_data, the XXH3 its segment's metadata records).
  // An incomplete map is a fact, not damage: readers then read everything.
  void check_block_maps(std::uint32_t size) {
    for (const auto& info : objects_under(repo::kBlockMapPrefix)) {
      const auto name = repo::parse_block_map_object(info.name);
      if (!name) {
        warning(info.name, "not a block map name");
        continue;
      }
      const auto bytes = get(info.name);
      if (!bytes) continue;
      report_.bytes_read += options_.read_data ? info.size : 0;
      std::optional<pg::BlockMap> map;
      if (!guarded(info.name, [&] { map = pg::decode_block_map(*bytes, info.name); })) continue;
      ++report_.block_maps;
      const pg::Lsn start = pg::segment_number(*name, size) * size;
      const auto recorded = meta_xxh3_.find(name->name);
      if (map->segment_start != start)
        error(info.name, "starts at " + pg::format_lsn(map->segment_start) + ", its segment at " +
                             pg::format_lsn(start));
      else if (recorded != meta_xxh3_.end() && recorded->second != map->segment_xxh3)
        error(info.name, "made from other bytes than its segment (XXH3 " +
                             repo::format_xxh3(map->segment_xxh3) + ", the metadata's " +
                             repo::format_xxh3(recorded->second) + ")");
      else if (!map->complete)
        note(info.name,
             "incomplete (" + map->incomplete_reason + "): backups and restores do not rely on it");
    }
  }

  void read_segment(const std::string& name, std::uint64_t stored_size) {
    const std::string meta_object = repo::meta_object_name(name);
    const std::string seg_object = repo::segment_object_name(name);
    std::optional<repo::SegmentMeta> meta;
    if (const auto text = get(meta_object))
      guarded(meta_object, [&] { meta = repo::meta_from_json(as_chars(*text), meta_object); });
    if (meta && meta->name != name) {
      error(meta_object, "describes segment " + meta->name);
      meta.reset();
    }
    const auto data = get(seg_object);
    if (!data) return;
    report_.bytes_read += stored_size;
    if (!meta) return;
    meta_xxh3_[name] = meta->xxh3;
    if (data->size() != meta->size)
      error(seg_object, std::to_string(data->size()) + " bytes, but its metadata says " +
                            std::to_string(meta->size));
    else if (codec::xxh3_64(*data) != meta->xxh3)
      error(seg_object, "content does not match the XXH3 in its metadata (" +
                            repo::format_xxh3(meta->xxh3) + ")");
  }

  // Every segment recovery from each backup to the end of the archive would
  // read, along the history of every timeline that backup can reach.
  void check_continuity(const basebackup::ArchiveView& view) {
    const std::uint32_t size = view.wal_segment_size;
    std::set<std::string> archived;
    for (const auto& m : view.segments) archived.insert(m.name);
    std::set<std::string> reported;
    auto start_segno = [&](const BackupRecord& b) { return b.start_lsn / size; };
    auto stop_segno = [&](const BackupRecord& b) {
      return std::max(start_segno(b), b.stop_lsn == 0 ? 0 : (b.stop_lsn - 1) / size);
    };
    for (const auto& b : view.backups) {
      const pg::TimeLineId tli = b.stop_timeline ? b.stop_timeline : b.start_timeline;
      if (tli == 0) continue;
      const std::string name = pg::segment_file_name(tli, stop_segno(b), size);
      if (!archived.count(name) && reported.insert(name).second)
        error("wal", name + " missing (the stop segment of backup " + b.label + ")");
    }
    for (const pg::TimeLineId target : basebackup::archive_timelines(view)) {
      try {
        std::set<std::uint64_t> on_history;
        for (const auto& m : view.segments)
          if (basebackup::segment_timeline(view, target, m.segno) == m.timeline)
            on_history.insert(m.segno);
        std::vector<const BackupRecord*> users;
        for (const auto& b : view.backups)
          if (!basebackup::off_history_reason(view, b, target)) users.push_back(&b);
        if (users.empty()) continue;
        std::sort(users.begin(), users.end(), [&](const BackupRecord* a, const BackupRecord* b) {
          return std::make_pair(start_segno(*a), a->label) <
                 std::make_pair(start_segno(*b), b->label);
        });
        std::uint64_t last = on_history.empty() ? 0 : *on_history.rbegin();
        for (const BackupRecord* b : users) last = std::max(last, stop_segno(*b));
        std::size_t next = 0;
        const BackupRecord* newest = nullptr;  // the newest backup started by segment s
        for (std::uint64_t s = start_segno(*users.front()); s <= last; ++s) {
          while (next < users.size() && start_segno(*users[next]) <= s) newest = users[next++];
          if (on_history.count(s)) continue;
          const std::string name =
              pg::segment_file_name(basebackup::segment_timeline(view, target, s), s, size);
          if (reported.insert(name).second)
            error("wal", name + " missing (needed by backup " + newest->label + " on timeline " +
                             std::to_string(target) + ")");
        }
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kCorruption) throw;
        error("wal", "timeline " + std::to_string(target) + ": " + e.what());
      }
    }
  }

  // --read-data: the objects no other check reads in full. Each is opened
  // through the envelope (XXH3, and the GCM tag where encrypted) and parsed.
  // Locks come and go (refreshed under a new name every minute): one removed
  // since the listing is skipped, a damaged one is an error like any other.
  void read_small_objects() {
    get(repo::kConfigObject);
    for (const auto& info : objects_under(repo::kKeysPrefix)) get(info.name);
    for (const auto& info : objects_under(repo::kHistoryPrefix)) {
      guarded(info.name, [&] { repo::read_history_entry(repo_, info.name); });
      report_.bytes_read += info.size;
    }
    for (const auto& info : objects_under(repo::kLockPrefix)) {
      const auto bytes = get(info.name);
      if (!bytes) continue;
      report_.bytes_read += info.size;
      guarded(info.name, [&] {
        const auto j = nlohmann::json::parse(as_chars(*bytes), nullptr, /*allow_exceptions=*/false);
        if (!j.is_object()) throw Error(ErrorCode::kCorruption, "not a lock (JSON object)");
      });
    }
  }

  repo::Repository& repo_;
  VerifyOptions options_;
  VerifyReport report_;
  std::vector<store::ObjectInfo> listing_;  // the whole repository, by name
  std::uint32_t cluster_segment_size_ = 0;
  // Segment name -> the XXH3 its metadata records (read_data: metadata read).
  std::map<std::string, std::uint64_t> meta_xxh3_;
  std::vector<std::string> index_names_;
  std::unordered_map<ChunkId, repo::ChunkLocation, repo::ChunkIdHash> chunk_loc_;  // first index's
  std::map<ChunkId, std::vector<PackRef>> pack_refs_;       // pack -> its chunks
  std::map<ChunkId, std::vector<std::string>> pack_users_;  // pack -> backup labels
  // pack -> "snapshot <vol>/<label>", "dump <database>/<label>"
  std::map<ChunkId, std::vector<std::string>> pack_snapshots_;
  // Chunks found missing or damaged in the packs: what the snapshots' files are told.
  std::unordered_map<ChunkId, std::string, repo::ChunkIdHash> damaged_chunks_;
  std::vector<BackupRecord> backups_;                            // readable records
  std::vector<std::pair<std::string, dump::DumpRecord>> dumps_;  // readable dump records by object
  SnapshotVerifier snapshots_;
};

nlohmann::json problems_json(const std::vector<Problem>& problems) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : problems) out.push_back({{"object", p.object}, {"message", p.message}});
  return out;
}

}  // namespace

VerifyReport verify_repository(repo::Repository& repo, const VerifyOptions& options) {
  return Verifier(repo, options).run();
}

std::string verify_report_text(const VerifyReport& report) {
  std::string out;
  for (const auto& p : report.errors) out += "error: " + p.object + ": " + p.message + "\n";
  for (const auto& p : report.warnings) out += "warning: " + p.object + ": " + p.message + "\n";
  for (const auto& p : report.notes) out += "info: " + p.object + ": " + p.message + "\n";
  out += "verify: " + count_text(report.backups, "backup", "backups") + ", " +
         count_text(report.snapshots, "snapshot", "snapshots") + ", " +
         count_text(report.dumps, "dump", "dumps") + ", " +
         count_text(report.chunks, "chunk", "chunks") + ", " +
         count_text(report.wal_segments, "WAL segment", "WAL segments") + " checked";
  out += "; " + count_text(report.errors.size(), "error", "errors") + ", " +
         count_text(report.warnings.size(), "warning", "warnings") + "\n";
  return out;
}

std::string verify_report_json(const VerifyReport& report) {
  const nlohmann::json out = {{"ok", report.ok()},
                              {"read_data", report.read_data},
                              {"backups", report.backups},
                              {"snapshots", report.snapshots},
                              {"dumps", report.dumps},
                              {"chunks", report.chunks},
                              {"packs", report.packs},
                              {"indexes", report.indexes},
                              {"wal_segments", report.wal_segments},
                              {"block_maps", report.block_maps},
                              {"bytes_read", report.bytes_read},
                              {"errors", problems_json(report.errors)},
                              {"warnings", problems_json(report.warnings)},
                              {"notes", problems_json(report.notes)}};
  return out.dump(1) + "\n";
}

}  // namespace walvault::ops
