#include "ops/gc.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "basebackup/backup_record.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/time_util.h"
#include "dump/dump_record.h"
#include "files/browse.h"
#include "files/snapshot_record.h"
#include "repo/chunk_store.h"
#include "repo/layout.h"
#include "repo/wal_catalogue.h"

namespace walvault::ops {

namespace {

using repo::ChunkId;
using repo::ChunkIdHash;
using repo::ChunkLocation;

constexpr std::chrono::seconds kLeftoverMinAge = std::chrono::hours(1);

struct PackState {
  std::uint64_t size = 0;
  std::int64_t mtime_us = 0;
  bool exists = false;
  std::vector<std::string> indexes;  // index objects placing chunks in it
  std::uint64_t index_bytes = 0;
  std::uint64_t entries = 0;     // chunk entries the indexes list
  std::uint64_t referenced = 0;  // entries whose chunk some backup uses
  std::uint64_t live_bytes = 0;  // envelopes of the chunks chosen to live here
  std::vector<std::pair<ChunkId, ChunkLocation>> live;  // those chunks
};

std::string mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// One gc run, step by step in the protocol's order (docs/format.md, "Locks
// and garbage collection"): each step reads what the earlier ones found.
// Nothing is removed before remove_garbage(), which checks the lock first.
class Collector {
 public:
  Collector(repo::Repository& repo, const GcOptions& options, const repo::RepoLock* lock)
      : repo_(repo),
        store_(repo.store()),
        options_(options),
        lock_(lock),
        now_(options.now_us ? options.now_us : now_unix_us()),
        grace_us_(std::chrono::microseconds(options.grace).count()) {
    report_.dry_run = options.dry_run;
  }

  GcReport run() {
    find_referenced_chunks();
    find_unrecorded_backup_objects();
    list_packs();
    read_indexes();
    choose_live_copies();
    classify_packs();
    if (!repack_.empty() && !options_.dry_run) copy_live_chunks();
    count_leaving_packs();
    if (!options_.dry_run) remove_garbage();
    measure_packs_after();
    return std::move(report_);
  }

 private:
  bool young(std::int64_t mtime_us) const { return now_ - mtime_us < grace_us_; }

  // 1. What the backups reference. A backup exists when its record does.
  void find_referenced_chunks() {
    for (const basebackup::BackupRecord& record : basebackup::list_backups(repo_)) {
      labels_.insert(record.label);
      ++report_.backups;
      report_.logical_bytes += record.logical_bytes;
      for (const basebackup::FileEntry& entry : basebackup::read_files(repo_, record.label).entries)
        referenced_.insert(entry.chunks.begin(), entry.chunks.end());
    }
    // File-volume snapshots: every tree and chunk their roots reach. A tree
    // that cannot be read stops gc (Error kCorruption) before anything goes.
    const std::vector<files::SnapshotRecord> snapshots = files::list_snapshots(repo_);
    if (!snapshots.empty()) {
      repo::ChunkStore chunks(repo_);
      for (const files::SnapshotRecord& s : snapshots) {
        files::reachable_ids(chunks, s.root, referenced_);
        ++report_.snapshots;
      }
    }
    // Logical dumps: the chunks their records list. A damaged record stops
    // gc (Error kCorruption) before anything goes.
    for (const dump::DumpRecord& d : dump::list_dumps(repo_)) {
      for (const files::ChunkRef& c : d.chunks) referenced_.insert(c.id);
      ++report_.dumps;
    }
    report_.chunks_referenced = referenced_.size();
  }

  // A file list or pin without a record is an interrupted (or expired) backup's.
  void find_unrecorded_backup_objects() {
    for (const store::ObjectInfo& info : store_.list(repo::kBackupPrefix)) {
      const auto object = repo::parse_backup_object(info.name);
      if (!object || labels_.count(object->label)) continue;
      if (young(info.mtime_us)) {
        ++report_.young_kept;
        continue;
      }
      remove_lists_.push_back(info.name);
      report_.bytes_removed += info.size;
      if (object->kind == repo::kBackupFilesKind) ++report_.file_lists_removed;
    }
  }

  // 2. Packs, then their indexes.
  void list_packs() {
    for (const store::ObjectInfo& info : store_.list(repo::kPackPrefix)) {
      const auto id = repo::parse_pack_object(info.name);
      if (!id) {
        report_.warnings.push_back(info.name + ": not a pack name; left alone");
        continue;
      }
      PackState& p = packs_[*id];
      p.exists = true;
      p.size = info.size;
      p.mtime_us = info.mtime_us;
      ++report_.packs_before;
      report_.pack_bytes_before += info.size;
    }
  }

  void read_indexes() {
    for (const store::ObjectInfo& info : store_.list(repo::kIndexPrefix)) {
      const auto entries = repo::read_index(repo_, info.name);
      if (!entries) continue;
      report_.pack_bytes_before += info.size;
      std::set<ChunkId> packs_of_index;
      for (const auto& [chunk, loc] : *entries) {
        PackState& p = packs_[loc.pack];
        ++p.entries;
        frame_bytes_[{loc.pack, loc.offset}] += loc.inner_length;
        packs_of_index.insert(loc.pack);
        if (referenced_.count(chunk)) {
          ++p.referenced;
          if (p.exists) locations_[chunk].push_back(loc);
        }
      }
      for (const ChunkId& pack : packs_of_index) {
        PackState& p = packs_[pack];
        p.indexes.push_back(info.name);
        p.index_bytes += info.size / packs_of_index.size();
        if (young(info.mtime_us)) p.mtime_us = std::max(p.mtime_us, info.mtime_us);
      }
    }
  }

  // 3. One live copy of every referenced chunk: in the pack that holds the
  // most referenced chunks (a repacked pack's fresh copy wins over the old).
  void choose_live_copies() {
    std::uint64_t missing = 0;
    for (const ChunkId& chunk : referenced_) {
      const auto it = locations_.find(chunk);
      if (it == locations_.end()) {
        ++missing;  // verify reports it; nothing here to keep
        continue;
      }
      const ChunkLocation* best = nullptr;
      for (const ChunkLocation& loc : it->second) {
        if (!best || packs_[loc.pack].referenced > packs_[best->pack].referenced ||
            (packs_[loc.pack].referenced == packs_[best->pack].referenced && loc.pack < best->pack))
          best = &loc;
      }
      PackState& p = packs_[best->pack];
      p.live_bytes += live_share(*best);
      p.live.emplace_back(chunk, *best);
    }
    if (missing)
      report_.warnings.push_back(std::to_string(missing) +
                                 " referenced chunks are in no existing pack; run walvault verify");
  }

  // A chunk sharing an envelope (one zstd frame) with others counts for its
  // share of it, so a frame whose other chunks died is repacked like a pack
  // whose other envelopes did.
  std::uint64_t live_share(const ChunkLocation& loc) {
    std::uint64_t share = loc.length;
    if (loc.inner_length) {
      const std::uint64_t frame = frame_bytes_[{loc.pack, loc.offset}];
      if (frame > loc.inner_length) share = share * loc.inner_length / frame;
    }
    return share;
  }

  // 4. Classify: dead (no live chunk), repacked (mostly garbage), kept.
  void classify_packs() {
    for (auto& [id, p] : packs_) {
      if (!p.exists) {
        // An index placing chunks in a pack that is gone: harmless to drop when
        // nothing it lists is referenced; otherwise verify's business.
        if (p.referenced == 0 && !p.indexes.empty() && !young(p.mtime_us))
          remove_indexes_.insert(remove_indexes_.end(), p.indexes.begin(), p.indexes.end());
        continue;
      }
      const bool garbage = p.live.empty();
      const double garbage_share =
          p.size ? 1.0 - static_cast<double>(p.live_bytes) / static_cast<double>(p.size) : 0;
      if (!garbage && garbage_share < options_.repack_threshold) continue;
      if (young(p.mtime_us)) {
        ++report_.young_kept;
        continue;
      }
      (garbage ? dead_ : repack_).push_back(id);
    }
    leaving_.insert(dead_.begin(), dead_.end());
    leaving_.insert(repack_.begin(), repack_.end());
  }

  // 5. Copy the live chunks of the repacked packs into new packs (durable
  // before anything is removed). Each chunk is verified against its id.
  void copy_live_chunks() {
    repo::ChunkStore::Options chunk_options;
    chunk_options.ignore_pack = [&](const ChunkId& pack) { return leaving_.count(pack) > 0; };
    repo::ChunkStore chunks(repo_, chunk_options);
    for (const ChunkId& id : repack_) {
      const std::string pack_name = repo::pack_object_name(id);
      for (const auto& [chunk, loc] : packs_[id].live) {
        const auto sealed = store_.get(pack_name, store::Range{loc.offset, loc.length});
        if (!sealed || sealed->size() != loc.length)
          throw Error(ErrorCode::kCorruption, pack_name + ": chunk " + to_hex(chunk) +
                                                  " is cut short; gc stopped, nothing removed");
        const std::string what = pack_name + " chunk " + to_hex(chunk);
        const Bytes frame = repo_.open_object(*sealed, what);
        const ByteView plaintext = repo::chunk_in_frame(frame, loc, what);
        if (chunks.chunk_id(plaintext) != chunk)
          throw Error(ErrorCode::kCorruption,
                      pack_name + ": chunk " + to_hex(chunk) +
                          " does not match its id; gc stopped, nothing removed");
        if (chunks.add(plaintext).stored) ++report_.chunks_copied;
      }
    }
    chunks.flush();
    // A new pack can be byte-identical to one leaving (names are content
    // hashes): whatever was just written stays.
    for (const std::string& name : chunks.written_objects()) written_.insert(name);
  }

  void count_leaving_packs() {
    for (const ChunkId& id : dead_) {
      const PackState& p = packs_[id];
      ++report_.packs_removed;
      report_.chunks_removed += p.entries;
      report_.bytes_removed += p.size + p.index_bytes;
      remove_indexes_.insert(remove_indexes_.end(), p.indexes.begin(), p.indexes.end());
    }
    for (const ChunkId& id : repack_) {
      const PackState& p = packs_[id];
      ++report_.packs_repacked;
      report_.chunks_removed += p.entries - p.live.size();
      report_.bytes_removed += p.size + p.index_bytes;
      remove_indexes_.insert(remove_indexes_.end(), p.indexes.begin(), p.indexes.end());
    }
  }

  // The indexes to remove: each once, none that covers a pack that stays (an
  // index can list chunks of several packs; none written so today), none
  // just written.
  std::vector<std::string> indexes_to_remove() {
    std::sort(remove_indexes_.begin(), remove_indexes_.end());
    remove_indexes_.erase(std::unique(remove_indexes_.begin(), remove_indexes_.end()),
                          remove_indexes_.end());
    std::vector<std::string> out;
    for (const std::string& index : remove_indexes_) {
      bool covers_kept = false;
      for (const auto& [id, p] : packs_)
        if (p.exists && !leaving_.count(id) &&
            std::find(p.indexes.begin(), p.indexes.end(), index) != p.indexes.end())
          covers_kept = true;
      if (!covers_kept && !written_.count(index)) out.push_back(index);
    }
    return out;
  }

  // 6. Remove: indexes first (a chunk stops existing), then packs, then the
  // file lists and pins of backups without a record, then leftovers.
  void remove_garbage() {
    if (lock_) lock_->check_held();
    store_.remove_many(indexes_to_remove());
    std::vector<std::string> packs_out;
    for (const ChunkId& id : leaving_)
      if (!written_.count(repo::pack_object_name(id)))
        packs_out.push_back(repo::pack_object_name(id));
    store_.remove_many(packs_out);
    store_.remove_many(remove_lists_);
    // Interrupted puts (temp files, multipart uploads). Writers without a
    // lock (archive-push) and lock objects being taken have puts in flight,
    // so never younger than an hour, whatever the grace period.
    report_.leftovers_removed =
        store_.clean_leftovers(std::max<std::chrono::seconds>(options_.grace, kLeftoverMinAge));
  }

  // 7. Pack bytes after (a dry run: what would be left) and bytes written.
  void measure_packs_after() {
    std::uint64_t before_left = report_.pack_bytes_before;
    for (const ChunkId& id : leaving_) before_left -= packs_[id].size + packs_[id].index_bytes;
    if (options_.dry_run) {
      report_.pack_bytes_after = before_left;
      return;
    }
    std::uint64_t after = 0;
    for (const store::ObjectInfo& info : store_.list(repo::kPackPrefix)) after += info.size;
    for (const store::ObjectInfo& info : store_.list(repo::kIndexPrefix)) after += info.size;
    report_.bytes_written = after > before_left ? after - before_left : 0;
    report_.pack_bytes_after = after;
  }

  repo::Repository& repo_;
  store::ObjectStore& store_;
  const GcOptions& options_;
  const repo::RepoLock* lock_;
  const std::int64_t now_;
  const std::int64_t grace_us_;
  GcReport report_;
  std::unordered_set<ChunkId, ChunkIdHash> referenced_;
  std::set<std::string> labels_;           // backups with a record
  std::vector<std::string> remove_lists_;  // file lists and pins of backups without one
  std::map<ChunkId, PackState> packs_;
  std::unordered_map<ChunkId, std::vector<ChunkLocation>, ChunkIdHash> locations_;
  std::map<std::pair<ChunkId, std::uint64_t>, std::uint64_t> frame_bytes_;  // chunks per envelope
  std::vector<ChunkId> dead_, repack_;
  std::unordered_set<ChunkId, ChunkIdHash> leaving_;  // dead_ and repack_
  std::vector<std::string> remove_indexes_;
  std::set<std::string> written_;  // packs and indexes the repack wrote
};

}  // namespace

GcReport collect_garbage(repo::Repository& repo, const GcOptions& options,
                         const repo::RepoLock* lock) {
  GcReport report = Collector(repo, options, lock).run();
  if (!options.dry_run) {
    // WAL catalogues (repo/wal_catalogue.h): gc is the maintenance step
    // schedule runs, so planning stays a few reads however much WAL arrives.
    const repo::CompactReport compacted = repo::compact_wal(repo);
    report.wal_catalogues_written = compacted.catalogues_written;
    report.wal_catalogues_removed = compacted.catalogues_removed;
  }
  return report;
}

std::string gc_report_text(const GcReport& r) {
  std::string out;
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "%s%llu backups reference %llu chunks; %llu packs (%s) before\n"
      "removed %llu garbage packs, repacked %llu (%llu live chunks copied), %llu garbage "
      "chunks, %llu file lists of unfinished backups, %llu leftovers of interrupted writes\n"
      "%s %s (removed %s, written %s); %llu garbage objects younger than the grace "
      "period left\n"
      "packs now %s; dedup ratio %.2fx (logical %s)\n",
      r.dry_run ? "dry run: " : "", static_cast<unsigned long long>(r.backups),
      static_cast<unsigned long long>(r.chunks_referenced),
      static_cast<unsigned long long>(r.packs_before), mib(r.pack_bytes_before).c_str(),
      static_cast<unsigned long long>(r.packs_removed),
      static_cast<unsigned long long>(r.packs_repacked),
      static_cast<unsigned long long>(r.chunks_copied),
      static_cast<unsigned long long>(r.chunks_removed),
      static_cast<unsigned long long>(r.file_lists_removed),
      static_cast<unsigned long long>(r.leftovers_removed), r.dry_run ? "would free" : "freed",
      mib(static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.freed()))).c_str(),
      mib(r.bytes_removed).c_str(), mib(r.bytes_written).c_str(),
      static_cast<unsigned long long>(r.young_kept), mib(r.pack_bytes_after).c_str(),
      r.dedup_ratio(), mib(r.logical_bytes).c_str());
  out = buf;
  if (r.wal_catalogues_written || r.wal_catalogues_removed)
    out += "WAL catalogues: " + std::to_string(r.wal_catalogues_written) + " written, " +
           std::to_string(r.wal_catalogues_removed) + " removed\n";
  for (const std::string& w : r.warnings) out += "warning: " + w + "\n";
  return out;
}

std::string gc_report_json(const GcReport& r) {
  nlohmann::json j;
  j["dry_run"] = r.dry_run;
  j["backups"] = r.backups;
  j["snapshots"] = r.snapshots;
  j["dumps"] = r.dumps;
  j["chunks_referenced"] = r.chunks_referenced;
  j["packs_before"] = r.packs_before;
  j["pack_bytes_before"] = r.pack_bytes_before;
  j["packs_removed"] = r.packs_removed;
  j["packs_repacked"] = r.packs_repacked;
  j["chunks_removed"] = r.chunks_removed;
  j["chunks_copied"] = r.chunks_copied;
  j["bytes_written"] = r.bytes_written;
  j["bytes_removed"] = r.bytes_removed;
  j["freed"] = std::max<std::int64_t>(0, r.freed());
  j["young_kept"] = r.young_kept;
  j["file_lists_removed"] = r.file_lists_removed;
  j["leftovers_removed"] = r.leftovers_removed;
  j["pack_bytes_after"] = r.pack_bytes_after;
  j["logical_bytes"] = r.logical_bytes;
  j["dedup_ratio"] = r.dedup_ratio();
  j["wal_catalogues_written"] = r.wal_catalogues_written;
  j["wal_catalogues_removed"] = r.wal_catalogues_removed;
  j["warnings"] = r.warnings;
  return j.dump(2) + "\n";
}

}  // namespace walvault::ops
