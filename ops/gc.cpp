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
#include "repo/chunk_store.h"

namespace walvault::ops {

namespace {

using repo::ChunkId;
using repo::ChunkIdHash;
using repo::ChunkLocation;

constexpr std::chrono::seconds kLeftoverMinAge = std::chrono::hours(1);

std::optional<ChunkId> id_from_hex(std::string_view hex) {
  Bytes raw;
  if (hex.size() != 64 || !from_hex(hex, raw)) return std::nullopt;
  ChunkId id{};
  std::copy(raw.begin(), raw.end(), id.begin());
  return id;
}

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

}  // namespace

GcReport collect_garbage(repo::Repository& repo, const GcOptions& options,
                         const repo::RepoLock* lock) {
  GcReport report;
  report.dry_run = options.dry_run;
  const std::int64_t now = options.now_us ? options.now_us : now_unix_us();
  const std::int64_t grace_us = std::chrono::microseconds(options.grace).count();
  auto young = [&](std::int64_t mtime_us) { return now - mtime_us < grace_us; };
  store::ObjectStore& store = repo.store();

  // 1. What the backups reference. A backup exists when its record does; a
  // file list without one is an interrupted backup's.
  std::unordered_set<ChunkId, ChunkIdHash> referenced;
  std::set<std::string> labels;
  for (const basebackup::BackupRecord& record : basebackup::list_backups(repo)) {
    labels.insert(record.label);
    ++report.backups;
    report.logical_bytes += record.logical_bytes;
    for (const basebackup::FileEntry& entry : basebackup::read_files(repo, record.label).entries)
      referenced.insert(entry.chunks.begin(), entry.chunks.end());
  }
  report.chunks_referenced = referenced.size();
  std::vector<std::string> remove_lists;  // file lists and pins of backups without a record
  for (const store::ObjectInfo& info : store.list("backups/")) {
    const auto slash = info.name.find('/', 8);
    if (slash == std::string::npos) continue;
    const std::string label = info.name.substr(8, slash - 8);
    if (labels.count(label)) continue;
    if (young(info.mtime_us)) {
      ++report.young_kept;
      continue;
    }
    remove_lists.push_back(info.name);
    report.bytes_removed += info.size;
    if (info.name.ends_with("/files")) ++report.file_lists_removed;
  }

  // 2. Packs and their indexes.
  std::map<ChunkId, PackState> packs;
  for (const store::ObjectInfo& info : store.list("packs/")) {
    const auto id = id_from_hex(info.name.substr(info.name.rfind('/') + 1));
    if (!id) {
      report.warnings.push_back(info.name + ": not a pack name; left alone");
      continue;
    }
    PackState& p = packs[*id];
    p.exists = true;
    p.size = info.size;
    p.mtime_us = info.mtime_us;
    ++report.packs_before;
    report.pack_bytes_before += info.size;
  }
  std::unordered_map<ChunkId, std::vector<ChunkLocation>, ChunkIdHash> locations;
  std::map<std::pair<ChunkId, std::uint64_t>, std::uint64_t> frame_bytes;  // chunks per envelope
  std::vector<std::pair<std::string, std::uint64_t>> young_indexes;
  for (const store::ObjectInfo& info : store.list("index/")) {
    const auto plaintext = repo.get_object(info.name);
    if (!plaintext) continue;
    report.pack_bytes_before += info.size;
    std::set<ChunkId> packs_of_index;
    for (const auto& [chunk, loc] : repo::decode_index(*plaintext, info.name)) {
      PackState& p = packs[loc.pack];
      ++p.entries;
      frame_bytes[{loc.pack, loc.offset}] += loc.inner_length;
      packs_of_index.insert(loc.pack);
      if (referenced.count(chunk)) {
        ++p.referenced;
        if (p.exists) locations[chunk].push_back(loc);
      }
    }
    for (const ChunkId& pack : packs_of_index) {
      packs[pack].indexes.push_back(info.name);
      packs[pack].index_bytes += info.size / packs_of_index.size();
      if (young(info.mtime_us))
        packs[pack].mtime_us = std::max(packs[pack].mtime_us, info.mtime_us);
    }
  }

  // 3. One live copy of every referenced chunk: in the pack that holds the
  // most referenced chunks (a repacked pack's fresh copy wins over the old).
  for (const ChunkId& chunk : referenced) {
    const auto it = locations.find(chunk);
    if (it == locations.end()) continue;  // missing: verify reports it; nothing here to keep
    const ChunkLocation* best = nullptr;
    for (const ChunkLocation& loc : it->second) {
      if (!best || packs[loc.pack].referenced > packs[best->pack].referenced ||
          (packs[loc.pack].referenced == packs[best->pack].referenced && loc.pack < best->pack))
        best = &loc;
    }
    PackState& p = packs[best->pack];
    // A chunk sharing an envelope (one zstd frame) with others counts for its
    // share of it, so a frame whose other chunks died is repacked like a
    // pack whose other envelopes did.
    std::uint64_t share = best->length;
    if (best->inner_length) {
      const std::uint64_t frame = frame_bytes[{best->pack, best->offset}];
      if (frame > best->inner_length) share = share * best->inner_length / frame;
    }
    p.live_bytes += share;
    p.live.emplace_back(chunk, *best);
  }
  const std::uint64_t missing =
      referenced.size() - std::count_if(referenced.begin(), referenced.end(),
                                        [&](const ChunkId& c) { return locations.count(c) > 0; });
  if (missing)
    report.warnings.push_back(std::to_string(missing) +
                              " referenced chunks are in no existing pack; run walvault verify");

  // 4. Classify.
  std::vector<ChunkId> dead, repack;
  std::vector<std::string> remove_indexes;
  for (auto& [id, p] : packs) {
    if (!p.exists) {
      // An index placing chunks in a pack that is gone: harmless to drop when
      // nothing it lists is referenced; otherwise verify's business.
      if (p.referenced == 0 && !p.indexes.empty() && !young(p.mtime_us))
        remove_indexes.insert(remove_indexes.end(), p.indexes.begin(), p.indexes.end());
      continue;
    }
    const bool garbage = p.live.empty();
    const double garbage_share =
        p.size ? 1.0 - static_cast<double>(p.live_bytes) / static_cast<double>(p.size) : 0;
    if (!garbage && garbage_share < options.repack_threshold) continue;
    if (young(p.mtime_us)) {
      ++report.young_kept;
      continue;
    }
    (garbage ? dead : repack).push_back(id);
  }
  std::unordered_set<ChunkId, ChunkIdHash> leaving(dead.begin(), dead.end());
  leaving.insert(repack.begin(), repack.end());

  // 5. Copy the live chunks of the repacked packs into new packs (durable
  // before anything is removed). Each chunk is verified against its id.
  std::set<std::string> written;
  if (!repack.empty() && !options.dry_run) {
    repo::ChunkStore::Options chunk_options;
    chunk_options.ignore_pack = [&](const ChunkId& pack) { return leaving.count(pack) > 0; };
    repo::ChunkStore chunks(repo, chunk_options);
    for (const ChunkId& id : repack) {
      const PackState& p = packs[id];
      const std::string pack_name = repo::pack_object_name(id);
      for (const auto& [chunk, loc] : p.live) {
        const auto sealed = store.get(pack_name, store::Range{loc.offset, loc.length});
        if (!sealed || sealed->size() != loc.length)
          throw Error(ErrorCode::kCorruption, pack_name + ": chunk " + to_hex(chunk) +
                                                  " is cut short; gc stopped, nothing removed");
        const std::string what = pack_name + " chunk " + to_hex(chunk);
        const Bytes frame = repo.open_object(*sealed, what);
        const ByteView plaintext = repo::chunk_in_frame(frame, loc, what);
        if (chunks.chunk_id(plaintext) != chunk)
          throw Error(ErrorCode::kCorruption,
                      pack_name + ": chunk " + to_hex(chunk) +
                          " does not match its id; gc stopped, nothing removed");
        const repo::AddResult added = chunks.add(plaintext);
        if (added.stored) ++report.chunks_copied;
      }
    }
    chunks.flush();
    // A new pack can be byte-identical to one leaving (names are content
    // hashes): whatever was just written stays.
    for (const std::string& name : chunks.written_objects()) written.insert(name);
  }
  for (const ChunkId& id : dead) {
    const PackState& p = packs[id];
    ++report.packs_removed;
    report.chunks_removed += p.entries;
    report.bytes_removed += p.size + p.index_bytes;
    remove_indexes.insert(remove_indexes.end(), p.indexes.begin(), p.indexes.end());
  }
  for (const ChunkId& id : repack) {
    const PackState& p = packs[id];
    ++report.packs_repacked;
    report.chunks_removed += p.entries - p.live.size();
    report.bytes_removed += p.size + p.index_bytes;
    remove_indexes.insert(remove_indexes.end(), p.indexes.begin(), p.indexes.end());
  }

  // 6. Remove: indexes first (a chunk stops existing), then packs, then the
  // file lists of interrupted backups.
  if (!options.dry_run) {
    if (lock) lock->check_held();
    std::sort(remove_indexes.begin(), remove_indexes.end());
    remove_indexes.erase(std::unique(remove_indexes.begin(), remove_indexes.end()),
                         remove_indexes.end());
    // An index can list chunks of several packs (none written so today): keep
    // it while any pack it covers stays.
    std::vector<std::string> indexes_out;
    for (const std::string& index : remove_indexes) {
      bool covers_kept = false;
      for (const auto& [id, p] : packs)
        if (p.exists && !leaving.count(id) &&
            std::find(p.indexes.begin(), p.indexes.end(), index) != p.indexes.end())
          covers_kept = true;
      if (!covers_kept) indexes_out.push_back(index);
    }
    std::erase_if(indexes_out, [&](const std::string& n) { return written.count(n) > 0; });
    store.remove_many(indexes_out);
    std::vector<std::string> packs_out;
    for (const ChunkId& id : leaving)
      if (!written.count(repo::pack_object_name(id)))
        packs_out.push_back(repo::pack_object_name(id));
    store.remove_many(packs_out);
    store.remove_many(remove_lists);
    // Interrupted puts (temp files, multipart uploads). Writers without a
    // lock (archive-push) and lock objects being taken have puts in flight,
    // so never younger than an hour, whatever the grace period.
    report.leftovers_removed =
        store.clean_leftovers(std::max<std::chrono::seconds>(options.grace, kLeftoverMinAge));
  }

  std::uint64_t after = 0;
  if (options.dry_run) {
    after = report.pack_bytes_before;
    for (const ChunkId& id : leaving) after -= packs[id].size + packs[id].index_bytes;
  } else {
    for (const store::ObjectInfo& info : store.list("packs/")) after += info.size;
    for (const store::ObjectInfo& info : store.list("index/")) after += info.size;
    // What the new packs added.
    std::uint64_t before_left = report.pack_bytes_before;
    for (const ChunkId& id : leaving) before_left -= packs[id].size + packs[id].index_bytes;
    report.bytes_written = after > before_left ? after - before_left : 0;
  }
  report.pack_bytes_after = after;
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
  for (const std::string& w : r.warnings) out += "warning: " + w + "\n";
  return out;
}

std::string gc_report_json(const GcReport& r) {
  nlohmann::json j;
  j["dry_run"] = r.dry_run;
  j["backups"] = r.backups;
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
  j["warnings"] = r.warnings;
  return j.dump(2) + "\n";
}

}  // namespace walvault::ops
