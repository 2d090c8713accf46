#include "ops/sync.h"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "basebackup/backup_record.h"
#include "codec/crypto.h"
#include "core/error.h"
#include "core/parallel.h"
#include "dump/dump_record.h"
#include "dump/take_dump.h"
#include "files/resnapshot.h"
#include "files/snapshot_record.h"
#include "files/take_snapshot.h"
#include "pg/block_map.h"
#include "repo/chunk_store.h"
#include "repo/cluster.h"
#include "repo/wal_catalogue.h"
#include "repo/wal_objects.h"

namespace walvault::ops {

namespace {

using repo::ChunkId;

// The last components of the objects under `prefix` (segment or file names).
std::set<std::string> listed_names(repo::Repository& r, const std::string& prefix) {
  std::set<std::string> out;
  for (const auto& info : r.store().list(prefix))
    out.insert(info.name.substr(info.name.rfind('/') + 1));
  return out;
}

std::vector<std::string> missing_from(const std::set<std::string>& have,
                                      const std::set<std::string>& lack) {
  std::vector<std::string> out;
  std::set_difference(have.begin(), have.end(), lack.begin(), lack.end(), std::back_inserter(out));
  return out;
}

// Repository::put_object (create-only; on a store without exclusive create the
// name is asked first), sealing here so that the stored size is known.
// Returns the bytes stored, std::nullopt when the name was taken.
std::optional<std::uint64_t> put_sealed(repo::Repository& to, const std::string& name,
                                        ByteView plaintext) {
  if (!to.store().capabilities().exclusive_create && to.store().stat(name)) return std::nullopt;
  const Bytes sealed = to.seal_object(plaintext);
  if (to.store().put(name, sealed) == store::PutResult::kAlreadyExists) return std::nullopt;
  return sealed.size();
}

// Stores `plaintext` under `name` unless the name is taken; then the stored
// object must hold the same bytes (a name is never reused for other bytes).
// Returns the bytes stored.
std::uint64_t put_or_compare(repo::Repository& to, const std::string& name, ByteView plaintext) {
  if (auto stored = put_sealed(to, name, plaintext)) return *stored;
  auto existing = to.get_object(name);
  if (!existing)
    throw Error(ErrorCode::kInternal, name + ": reported present but cannot be read back");
  if (!std::ranges::equal(*existing, plaintext))
    throw Error(ErrorCode::kConflict, name + " in " + to.store().describe() +
                                          " holds other content than in the source repository; "
                                          "nothing was overwritten");
  return 0;
}

// Binds `to` to the cluster of `from` when it has none (true), or checks that
// both belong to the same one. Throws Error(kClusterMismatch) otherwise.
bool sync_cluster(repo::Repository& from, repo::Repository& to, bool dry_run) {
  auto source = repo::read_cluster(from);
  if (!source) return false;
  const std::string what = "repository " + from.store().describe();
  if (auto target = repo::read_cluster(to)) {
    if (target->system_id != source->system_id || target->segment_size != source->segment_size)
      throw Error(ErrorCode::kClusterMismatch,
                  what + " belongs to database system " + std::to_string(source->system_id) +
                      " (WAL segment size " + std::to_string(source->segment_size) +
                      "), repository " + to.store().describe() + " to system " +
                      std::to_string(target->system_id) + " (WAL segment size " +
                      std::to_string(target->segment_size) + "): nothing was copied");
    return false;
  }
  if (!dry_run) repo::bind_cluster(to, *source, what);
  return true;
}

// Lets index i through once every index below it has been through, so that
// metadata reaches B in the order of the names (B never shows a hole that a
// later segment's metadata makes look like a gap), while segments are copied
// in parallel. Indices are claimed in increasing order, so the lowest waiting
// one is always running. After abort() nothing passes.
class InOrder {
 public:
  // False when aborted.
  bool wait_turn(std::size_t i) {
    std::unique_lock lock(mu_);
    turn_.wait(lock, [&] { return next_ == i || aborted_; });
    return !aborted_;
  }
  void done(std::size_t i) {
    std::lock_guard lock(mu_);
    next_ = i + 1;
    turn_.notify_all();
  }
  void abort() {
    std::lock_guard lock(mu_);
    aborted_ = true;
    turn_.notify_all();
  }
  bool aborted() {
    std::lock_guard lock(mu_);
    return aborted_;
  }

 private:
  std::mutex mu_;
  std::condition_variable turn_;
  std::size_t next_ = 0;
  bool aborted_ = false;
};

// Copies the block map of the segment `meta` describes, if `from` has one,
// checked to decode and to be that segment's map (pg/block_map.h); returns the
// bytes stored. A map that does not fit its segment is corruption in `from`:
// copying it would make B trust it.
std::uint64_t copy_block_map(repo::Repository& from, repo::Repository& to,
                             const repo::SegmentMeta& meta) {
  const std::string object = repo::block_map_object_name(meta.name);
  const auto plaintext = from.get_object(object);
  if (!plaintext) return 0;  // pushed before block maps existed
  const pg::BlockMap map = pg::decode_block_map(*plaintext, object);
  if (map.segment_xxh3 != meta.xxh3)
    throw Error(ErrorCode::kCorruption, object + " in " + from.store().describe() +
                                            ": made from other bytes than its segment (XXH3 " +
                                            repo::format_xxh3(map.segment_xxh3) + ", the " +
                                            "segment's " + repo::format_xxh3(meta.xxh3) + ")");
  return put_or_compare(to, object, *plaintext);
}

// Copies one segment whose metadata `to` lacks: the segment, checked against
// the metadata, and its block map, then (in its turn) the metadata, which
// makes it archived.
// False when the source lost it since it was listed, or another copy failed.
bool copy_segment(repo::Repository& from, repo::Repository& to, const std::string& name,
                  std::size_t turn, InOrder& order, std::atomic<std::uint64_t>& bytes) {
  const std::string meta_object = repo::meta_object_name(name);
  const std::string seg_object = repo::segment_object_name(name);
  std::optional<Bytes> meta_bytes;
  try {
    if (order.aborted()) return false;
    meta_bytes = from.get_object(meta_object);
    if (meta_bytes) {
      const repo::SegmentMeta meta = repo::meta_from_json(as_chars(*meta_bytes), meta_object);
      if (meta.name != name)
        throw Error(ErrorCode::kCorruption, meta_object + ": names segment " + meta.name);
      auto data = from.get_object(seg_object);
      if (!data)
        throw Error(ErrorCode::kCorruption, seg_object + ": missing in " + from.store().describe() +
                                                " though its metadata exists");
      if (data->size() != meta.size || codec::xxh3_64(*data) != meta.xxh3)
        throw Error(ErrorCode::kCorruption, seg_object + " in " + from.store().describe() +
                                                ": size or XXH3 differs from its metadata");
      bytes += put_or_compare(to, seg_object, *data);
      bytes += copy_block_map(from, to, meta);
    }
    if (!order.wait_turn(turn)) return false;
    // The first metadata stays when another writer got there first.
    if (meta_bytes)
      if (auto stored = put_sealed(to, meta_object, *meta_bytes)) bytes += *stored;
  } catch (...) {
    order.abort();
    throw;
  }
  order.done(turn);
  return meta_bytes.has_value();
}

bool copy_wal_file(repo::Repository& from, repo::Repository& to, const std::string& name,
                   std::atomic<std::uint64_t>& bytes) {
  const std::string object = repo::file_object_name(name);
  auto data = from.get_object(object);
  if (!data) return false;
  bytes += put_or_compare(to, object, *data);
  return true;
}

// The same backup in both repositories: written by one multi-repository
// backup, or copied by sync. The start time is the client's clock in µs, so
// two distinct backups agree on all of these only by accident.
bool same_backup(const basebackup::BackupRecord& a, const basebackup::BackupRecord& b) {
  return a.label == b.label && a.start_lsn == b.start_lsn && a.stop_lsn == b.stop_lsn &&
         a.start_time_us == b.start_time_us && a.system_id == b.system_id;
}

bool same_layout(const basebackup::BackupFiles& a, const basebackup::BackupFiles& b) {
  if (a.entries.size() != b.entries.size()) return false;
  for (std::size_t i = 0; i < a.entries.size(); ++i) {
    const auto &x = a.entries[i], &y = b.entries[i];
    if (x.tablespace != y.tablespace || x.path != y.path || x.type != y.type || x.size != y.size ||
        x.chunks.size() != y.chunks.size())
      return false;
  }
  return true;
}

// The segment holding the byte before the backup's stop LSN (what the backup
// waited for before writing its record), as verify and the planner compute it.
std::optional<std::string> stop_segment(const basebackup::BackupRecord& b) {
  if (b.wal_segment_size == 0 || b.stop_timeline == 0) return std::nullopt;
  const std::uint64_t start = b.start_lsn / b.wal_segment_size;
  const std::uint64_t stop = b.stop_lsn == 0 ? start : (b.stop_lsn - 1) / b.wal_segment_size;
  return pg::segment_file_name(b.stop_timeline, std::max(start, stop), b.wal_segment_size);
}

struct BackupCopyStats {
  std::atomic<std::uint64_t> chunks_read{0};
  std::atomic<std::uint64_t> new_chunks{0};
  std::atomic<std::uint64_t> stored_bytes{0};
};

// Translates file lists from A's chunk ids to B's, copying the chunks B lacks.
// Chunk ids agree when both repositories use the same id key (both
// unencrypted): then B's index alone says what it lacks and nothing else is
// read. Otherwise a chunk's id in B is known only from its plaintext, so the
// map below remembers A id -> B id for every chunk copied in this run and for
// the chunks of a backup both already hold (seed()), and only chunks outside
// it are read from A.
class BackupCopier {
 public:
  BackupCopier(repo::Repository& from, repo::Repository& to, int parallel)
      : from_(from),
        from_chunks_(from),
        to_chunks_(to),
        same_ids_(from.id_key() == to.id_key()),
        parallel_(parallel) {}

  bool same_ids() const { return same_ids_; }

  // Learns A id -> B id from one backup both hold (same_backup), entry by
  // entry, for chunks B's indexes list. Nothing is learned when the lists
  // disagree in shape or map one A id to two B ids.
  void seed(const basebackup::BackupFiles& a, const basebackup::BackupFiles& b) {
    if (!same_layout(a, b)) return;
    std::unordered_map<ChunkId, ChunkId, repo::ChunkIdHash> learned;
    for (std::size_t i = 0; i < a.entries.size(); ++i) {
      const auto& ac = a.entries[i].chunks;
      const auto& bc = b.entries[i].chunks;
      for (std::size_t c = 0; c < ac.size(); ++c) {
        if (!to_chunks_.contains(bc[c])) continue;
        auto [it, inserted] = learned.emplace(ac[c], bc[c]);
        if (!inserted && it->second != bc[c]) return;
      }
    }
    std::lock_guard lock(mu_);
    for (const auto& [a_id, b_id] : learned) {
      auto it = map_.find(a_id);
      if (it != map_.end() && it->second != b_id) return;
    }
    map_.insert(learned.begin(), learned.end());
  }

  // `files` (of a backup cut at `chunk_size`) with B's chunk ids; every
  // chunk is durable in B on return.
  basebackup::BackupFiles copy(const std::string& label, basebackup::BackupFiles files,
                               std::uint32_t chunk_size, BackupCopyStats& stats) {
    std::vector<ChunkId> needed;
    std::unordered_set<ChunkId, repo::ChunkIdHash> seen;
    for (const auto& e : files.entries)
      for (const auto& a_id : e.chunks)
        if (!resolve(a_id) && seen.insert(a_id).second) needed.push_back(a_id);
    // Consecutive chunks (in file order) go to B in groups of up to
    // repo::kFrameBytes, whose new chunks are sealed as one frame, as a backup
    // seals them: the copy compresses as well as the original.
    const std::size_t per_group =
        std::max<std::size_t>(1, repo::kFrameBytes / std::max<std::uint32_t>(1, chunk_size));
    const std::size_t groups = (needed.size() + per_group - 1) / per_group;
    parallel_for(groups, parallel_, [&](std::size_t g) {
      const std::size_t first = g * per_group;
      const std::size_t end = std::min(needed.size(), first + per_group);
      std::vector<Bytes> plaintexts;
      for (std::size_t i = first; i < end; ++i) {
        auto plaintext = from_chunks_.read(needed[i]);
        if (!plaintext)
          throw Error(ErrorCode::kCorruption, "backup " + label + " in " +
                                                  from_.store().describe() + ": chunk " +
                                                  to_hex(needed[i]) + " is listed by no index");
        stats.chunks_read += 1;
        plaintexts.push_back(std::move(*plaintext));
      }
      const auto added = to_chunks_.add_group({plaintexts.begin(), plaintexts.end()});
      std::lock_guard lock(mu_);
      for (std::size_t k = 0; k < added.size(); ++k) {
        if (added[k].stored) {
          stats.new_chunks += 1;
          stats.stored_bytes += added[k].stored_bytes;
        }
        map_[needed[first + k]] = added[k].id;
      }
    });
    for (auto& e : files.entries) {
      for (auto& id : e.chunks) {
        auto b_id = resolve(id);
        if (!b_id) throw Error(ErrorCode::kInternal, "sync: chunk " + to_hex(id) + " not copied");
        id = *b_id;
      }
    }
    to_chunks_.flush();
    return files;
  }

 private:
  // B's id for A's chunk `a_id` when B has it (or it was added in this run).
  std::optional<ChunkId> resolve(const ChunkId& a_id) {
    {
      std::lock_guard lock(mu_);
      if (auto it = map_.find(a_id); it != map_.end()) return it->second;
    }
    if (same_ids_ && to_chunks_.contains(a_id)) return a_id;
    return std::nullopt;
  }

  repo::Repository& from_;
  repo::ChunkStore from_chunks_;
  repo::ChunkStore to_chunks_;
  const bool same_ids_;
  const int parallel_;
  std::mutex mu_;
  std::unordered_map<ChunkId, ChunkId, repo::ChunkIdHash> map_;
};

std::string count_text(std::size_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Each backup, oldest first: its chunks through B's chunk store, its file
// list with B's ids, its record last. `segments_in_to`: the segments B has
// metadata for now.
void copy_backups(repo::Repository& from, repo::Repository& to,
                  const std::vector<const basebackup::BackupRecord*>& backups,
                  const basebackup::BackupRecord* shared,
                  const std::set<std::string>& segments_in_to, const SyncOptions& options,
                  SyncReport& report) {
  if (backups.empty()) return;
  report.backups.clear();
  BackupCopier copier(from, to, options.parallel);
  if (shared && !copier.same_ids()) {
    try {
      copier.seed(basebackup::read_files(from, shared->label),
                  basebackup::read_files(to, shared->label));
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kCorruption) throw;
      spdlog::warn("sync: chunks of backup {} are read again: {}", shared->label, e.what());
    }
  }
  for (const auto* b : backups) {
    if (auto stop = stop_segment(*b);
        stop && !segments_in_to.count(*stop) && !repo::read_meta(to, *stop)) {
      report.skipped.push_back("backup " + b->label + ": its stop segment " + *stop +
                               " is not archived in " + report.from +
                               " (run walvault verify there); not copied");
      continue;
    }
    BackupCopyStats stats;
    const basebackup::BackupFiles files =
        copier.copy(b->label, basebackup::read_files(from, b->label), b->chunk_size, stats);
    basebackup::BackupRecord record = *b;
    record.stored_bytes = stats.stored_bytes;
    record.new_chunk_count = stats.new_chunks;
    const std::string list = basebackup::files_to_json(files);
    // A file list already there was written by an interrupted sync: the same
    // bytes, since B's chunk ids depend only on content and B's key.
    const std::uint64_t list_bytes =
        put_or_compare(to, basebackup::files_object_name(b->label), as_bytes(list));
    const std::string text = basebackup::record_to_json(record);
    auto record_bytes = put_sealed(to, basebackup::record_object_name(b->label), as_bytes(text));
    if (!record_bytes)
      throw Error(ErrorCode::kConflict, "backup " + b->label + " appeared in " + report.to +
                                            " while it was being copied");
    report.backups.push_back(b->label);
    report.chunks_read += stats.chunks_read;
    report.chunks_added += stats.new_chunks;
    report.bytes_added += stats.stored_bytes + list_bytes + *record_bytes;
    spdlog::info("sync: backup {}: {} chunks read, {} new in {} ({:.1f} MiB)", b->label,
                 stats.chunks_read.load(), stats.new_chunks.load(), report.to,
                 static_cast<double>(stats.stored_bytes) / 1048576.0);
  }
}

// The same snapshot in both repositories: copied by sync, or taken by one
// `files backup` into several repositories (one start time for all; each
// repository's walk ends at its own time). The root may differ: a re-cut copy,
// or a repository with another key, has other ids. The start time is the
// client's clock in µs, so two distinct snapshots agree on all of these only
// by accident.
bool same_snapshot(const files::SnapshotRecord& a, const files::SnapshotRecord& b) {
  return a.volume == b.volume && a.label == b.label && a.start_us == b.start_us &&
         a.host == b.host && a.paths == b.paths;
}

struct SnapshotPlan {
  std::vector<files::SnapshotRecord> copy;  // oldest first
  // Per volume, the roots (in A, in B) of the newest snapshot both hold.
  std::map<std::string, std::pair<ChunkId, ChunkId>> shared;
};

// The snapshots `from` has and `to` lacks (by record name), oldest first, into
// report.snapshots; a name `to` uses for another snapshot goes to skipped.
SnapshotPlan snapshots_to_copy(repo::Repository& from, repo::Repository& to, SyncReport& report) {
  std::map<std::string, files::SnapshotRecord> in_to;
  for (auto& s : files::list_snapshots(to)) in_to.emplace(s.volume + "/" + s.label, std::move(s));
  SnapshotPlan plan;
  for (auto& s : files::list_snapshots(from)) {
    const std::string name = s.volume + "/" + s.label;
    auto it = in_to.find(name);
    if (it == in_to.end()) {
      report.snapshots.push_back(name);
      plan.copy.push_back(std::move(s));
    } else if (same_snapshot(s, it->second)) {
      plan.shared[s.volume] = {s.root, it->second.root};
    } else {
      report.skipped.push_back("snapshot " + name + ": " + report.to +
                               " holds another snapshot under this name; not copied");
    }
  }
  return plan;
}

// Copies each snapshot: its trees and chunks (as they are when both sides
// name and cut chunks alike, else re-cut by `to`'s chunker: files/resnapshot.h),
// flushed, then the record, last, under the same name.
void copy_snapshots(repo::Repository& from, repo::Repository& to, const SnapshotPlan& plan,
                    SyncReport& report) {
  report.snapshots.clear();
  const std::vector<files::SnapshotRecord>& snapshots = plan.copy;
  if (snapshots.empty()) return;
  const std::optional<codec::Key> to_gear = to.derived_key(codec::kGearKeyInfo);
  const bool same_names =
      from.id_key() == to.id_key() && from.derived_key(codec::kGearKeyInfo) == to_gear;
  const codec::CdcChunker chunker(files::default_cdc_params(), codec::gear_table(to_gear));
  repo::ChunkStore from_chunks(from), to_chunks(to);
  files::TreeCopier copier(from_chunks, to_chunks, same_names ? nullptr : &chunker);
  // What B already holds of each volume under its own ids is not read again.
  std::set<std::string> volumes;
  for (const files::SnapshotRecord& s : snapshots) volumes.insert(s.volume);
  for (const std::string& volume : volumes)
    if (auto it = plan.shared.find(volume); it != plan.shared.end())
      copier.seed(it->second.first, it->second.second);
  for (const files::SnapshotRecord& s : snapshots) {
    const std::string name = s.volume + "/" + s.label;
    const std::uint64_t before = copier.stats().added_bytes;
    const std::uint64_t chunks_before = copier.stats().chunks_read;
    files::SnapshotRecord record = s;
    record.root = copier.copy(s.root, "snapshot " + files::snapshot_id(s) + " (" + name + ")");
    if (!same_names) {
      record.chunker = chunker.params();
      record.keyed_chunker = to_gear.has_value();
    }
    record.added_bytes = copier.stats().added_bytes - before;
    to_chunks.flush();
    const std::string text = files::snapshot_to_json(record);
    const auto record_bytes =
        put_sealed(to, repo::snapshot_object_name(s.volume, s.label), as_bytes(text));
    if (!record_bytes)
      throw Error(ErrorCode::kConflict,
                  "snapshot " + name + " appeared in " + report.to + " while it was being copied");
    report.snapshots.push_back(name);
    report.bytes_added += record.added_bytes + *record_bytes;
    report.chunks_read += copier.stats().chunks_read - chunks_before;
    spdlog::info(
        "sync: snapshot {}: {} chunks read ({} files known from before), {:.1f} MiB "
        "added to {}{}",
        name, copier.stats().chunks_read - chunks_before, copier.stats().files_reused,
        static_cast<double>(record.added_bytes) / 1048576.0, report.to,
        same_names ? "" : " (re-cut by its chunker)");
  }
}

// The dumps `from` has and `to` lacks (by record name), oldest first; a name
// `to` uses for another dump (another start time or host) goes to skipped.
std::vector<dump::DumpRecord> dumps_to_copy(repo::Repository& from, repo::Repository& to,
                                            SyncReport& report) {
  std::map<std::string, dump::DumpRecord> in_to;
  for (auto& d : dump::list_dumps(to)) in_to.emplace(d.database + "/" + d.label, std::move(d));
  std::vector<dump::DumpRecord> copy;
  for (auto& d : dump::list_dumps(from)) {
    const std::string name = d.database + "/" + d.label;
    auto it = in_to.find(name);
    if (it == in_to.end()) {
      report.dumps.push_back(name);
      copy.push_back(std::move(d));
    } else if (it->second.start_us != d.start_us || it->second.host != d.host) {
      report.skipped.push_back("dump " + name + ": " + report.to +
                               " holds another dump under this name; not copied");
    }
  }
  return copy;
}

void copy_dumps(repo::Repository& from, repo::Repository& to,
                const std::vector<dump::DumpRecord>& dumps, SyncReport& report) {
  report.dumps.clear();
  if (dumps.empty()) return;
  repo::ChunkStore from_chunks(from), to_chunks(to);
  for (const dump::DumpRecord& d : dumps) {
    const std::string name = d.database + "/" + d.label;
    const dump::DumpRecord record = dump::recut_dump(from_chunks, d, to, to_chunks);
    const auto record_bytes = put_sealed(to, repo::dump_object_name(d.database, d.label),
                                         as_bytes(dump::dump_to_json(record)));
    if (!record_bytes)
      throw Error(ErrorCode::kConflict,
                  "dump " + name + " appeared in " + report.to + " while it was being copied");
    report.dumps.push_back(name);
    report.bytes_added += record.added_bytes + *record_bytes;
    report.chunks_read += d.chunks.size();
  }
}

}  // namespace

SyncReport sync_repositories(repo::Repository& from, repo::Repository& to,
                             const SyncOptions& options) {
  SyncReport report;
  report.from = from.store().describe();
  report.to = to.store().describe();
  report.dry_run = options.dry_run;

  // Backups are listed before the WAL: a record is written only once its stop
  // segment's metadata exists, so even while A is being written to, the WAL
  // listed next holds the stop segment of every backup listed here.
  const std::vector<basebackup::BackupRecord> from_backups = basebackup::list_backups(from);
  std::map<std::string, basebackup::BackupRecord> to_backups;
  for (auto& b : basebackup::list_backups(to)) to_backups.emplace(b.label, std::move(b));
  std::vector<const basebackup::BackupRecord*> backups;
  const basebackup::BackupRecord* shared = nullptr;  // the newest backup both hold
  for (const auto& b : from_backups) {
    auto it = to_backups.find(b.label);
    if (it == to_backups.end()) {
      backups.push_back(&b);
    } else if (same_backup(b, it->second)) {
      shared = &b;
    } else {
      report.skipped.push_back("backup " + b.label + ": " + report.to +
                               " holds another backup under this label; not copied");
    }
  }
  if (!backups.empty() && from.config().chunk_size != to.config().chunk_size)
    throw Error(ErrorCode::kUsage, "backups cannot be copied: " + report.from +
                                       " uses chunk size " +
                                       std::to_string(from.config().chunk_size) + ", " + report.to +
                                       " uses " + std::to_string(to.config().chunk_size));

  const std::set<std::string> to_segments = listed_names(to, repo::kMetaPrefix);
  report.wal_segments = missing_from(listed_names(from, repo::kMetaPrefix), to_segments);
  report.wal_files = missing_from(listed_names(from, repo::kWalFilePrefix),
                                  listed_names(to, repo::kWalFilePrefix));
  report.cluster_bound = sync_cluster(from, to, options.dry_run);
  for (const auto* b : backups) report.backups.push_back(b->label);
  const SnapshotPlan snapshots = snapshots_to_copy(from, to, report);
  const std::vector<dump::DumpRecord> dumps = dumps_to_copy(from, to, report);
  if (options.dry_run) return report;

  // WAL first, .history files before segments (a planner reading B sees a
  // timeline's history no later than its segments), each segment before its
  // metadata.
  std::atomic<std::uint64_t> bytes{0};
  auto copy_all = [&](std::vector<std::string>& names, const auto& copy_one) {
    std::vector<char> copied(names.size(), 0);
    parallel_for(names.size(), options.parallel,
                 [&](std::size_t i) { copied[i] = copy_one(i) ? 1 : 0; });
    std::vector<std::string> kept;
    for (std::size_t i = 0; i < names.size(); ++i)
      if (copied[i]) kept.push_back(std::move(names[i]));
    names = std::move(kept);
  };
  copy_all(report.wal_files,
           [&](std::size_t i) { return copy_wal_file(from, to, report.wal_files[i], bytes); });
  InOrder order;
  copy_all(report.wal_segments, [&](std::size_t i) {
    return copy_segment(from, to, report.wal_segments[i], i, order, bytes);
  });
  report.bytes_added = bytes;
  // B's catalogues are B's own (its id key names them): regenerated, not copied.
  if (!report.wal_segments.empty()) repo::compact_wal(to);
  std::set<std::string> segments_in_to = to_segments;
  segments_in_to.insert(report.wal_segments.begin(), report.wal_segments.end());
  copy_backups(from, to, backups, shared, segments_in_to, options, report);
  copy_snapshots(from, to, snapshots, report);
  copy_dumps(from, to, dumps, report);
  return report;
}

std::string sync_report_text(const SyncReport& report) {
  std::string out;
  const std::string counts =
      count_text(report.wal_segments.size(), "WAL segment", "WAL segments") + ", " +
      count_text(report.wal_files.size(), "file", "files") + ", " +
      count_text(report.backups.size(), "backup", "backups") + ", " +
      count_text(report.snapshots.size(), "snapshot", "snapshots") +
      (report.dumps.empty() ? "" : ", " + count_text(report.dumps.size(), "dump", "dumps"));
  const std::string tail = report.nothing_copied() ? "; already in sync\n" : "\n";
  if (report.dry_run) {
    if (report.cluster_bound) out += "cluster (" + report.to + " has none yet)\n";
    for (const auto& f : report.wal_files) out += "wal file " + f + "\n";
    for (const auto& s : report.wal_segments) out += "wal segment " + s + "\n";
    for (const auto& b : report.backups) out += "backup " + b + "\n";
    for (const auto& n : report.snapshots) out += "snapshot " + n + "\n";
    for (const auto& n : report.dumps) out += "dump " + n + "\n";
    return out + "dry run: would sync " + report.from + " -> " + report.to + ": " + counts + tail;
  }
  char mib[32];
  std::snprintf(mib, sizeof mib, "%.1f", static_cast<double>(report.bytes_added) / 1048576.0);
  return out + "synced " + report.from + " -> " + report.to + ": " + counts + " (" + mib +
         " MiB added)" + tail;
}

}  // namespace walvault::ops
