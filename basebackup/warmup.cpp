#include "basebackup/warmup.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <tuple>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "pg/wal_name.h"
#include "walarchive/block_maps.h"

namespace walvault::basebackup {

namespace {

constexpr std::uint32_t kDefaultTablespace = 1663;  // DEFAULTTABLESPACE_OID
constexpr std::uint32_t kGlobalTablespace = 1664;   // GLOBALTABLESPACE_OID

// How many blocks of one chunk redo touches, and how many of them it reads.
struct BlockCount {
  std::uint64_t touched = 0;
  std::uint64_t reads = 0;
};
// (BackupFiles::entries index, chunk) -> its count.
using ChunkCounts = std::map<std::pair<std::size_t, std::uint32_t>, BlockCount>;

// A chunk of one file and its count.
struct Candidate {
  std::size_t entry;
  std::uint32_t chunk;
  BlockCount count;
};

// The free space map and visibility map forks of every relation `blocks`
// names, whole: redo reads and changes them without naming them in every
// record (the FSM is not WAL-logged, a heap record clears a visibility map
// bit without a block reference), and they are small (a page per ~4,000 and
// ~32,000 heap pages). Each of their blocks counts as touched and read.
void add_map_forks(const std::vector<pg::ForkBlocks>& blocks, const BackupFiles& files,
                   const std::unordered_map<std::string, std::size_t>& by_key,
                   std::uint32_t chunk_size, ChunkCounts& counts) {
  std::set<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t>> relations;
  for (const pg::ForkBlocks& group : blocks)
    relations.insert({group.fork.spc, group.fork.db, group.fork.rel});
  for (const auto& [spc, db, rel] : relations) {
    for (const std::uint8_t fork : {std::uint8_t{1}, std::uint8_t{2}}) {
      const auto it = by_key.find(location_key(locate_block({spc, db, rel, fork}, 0)));
      if (it == by_key.end()) continue;
      const std::uint64_t size = files.entries[it->second].size;
      for (std::uint64_t offset = 0; offset < size; offset += chunk_size) {
        const std::uint64_t n =
            (std::min<std::uint64_t>(chunk_size, size - offset) + kRelationBlockSize - 1) /
            kRelationBlockSize;
        counts[{it->second, static_cast<std::uint32_t>(offset / chunk_size)}] = {n, n};
      }
    }
  }
}

// Every chunk of `files` holding a block of `blocks` (that the backup has:
// not a file created later, not past a file's end), with its count.
std::vector<Candidate> candidate_chunks(const std::vector<pg::ForkBlocks>& blocks,
                                        const BackupFiles& files, std::uint32_t chunk_size) {
  std::unordered_map<std::string, std::size_t> by_key;
  for (std::size_t i = 0; i < files.entries.size(); ++i)
    if (files.entries[i].type == EntryType::kFile)
      by_key.emplace(location_key(files.entries[i]), i);
  ChunkCounts counts;
  std::string last_key;
  std::size_t last_entry = 0;
  bool last_found = false;
  for (const pg::ForkBlocks& group : blocks) {
    for (const pg::ChangedBlock& b : group.blocks) {
      const BlockLocation where = locate_block(group.fork, b.block);
      const std::string key = location_key(where);
      if (key != last_key) {  // blocks come in file order: one lookup per file
        const auto it = by_key.find(key);
        last_key = key;
        last_found = it != by_key.end();
        if (last_found) last_entry = it->second;
      }
      if (!last_found || where.offset >= files.entries[last_entry].size) continue;
      BlockCount& count =
          counts[{last_entry, static_cast<std::uint32_t>(where.offset / chunk_size)}];
      ++count.touched;
      if (!b.no_read) ++count.reads;
    }
  }
  add_map_forks(blocks, files, by_key, chunk_size, counts);
  std::vector<Candidate> out;
  out.reserve(counts.size());
  for (const auto& [at, count] : counts) out.push_back({at.first, at.second, count});
  return out;
}

std::uint64_t chunk_bytes(const FileEntry& e, std::uint32_t chunk, std::uint32_t chunk_size) {
  const std::uint64_t offset = std::uint64_t{chunk} * chunk_size;
  return std::min<std::uint64_t>(chunk_size, e.size - offset);
}

// The WAL the plan replays as block map queries: one per run of consecutive
// segments on one timeline, the first from the backup's start LSN.
std::vector<walarchive::BlockMapQuery> plan_queries(const RestorePlan& plan) {
  const std::uint32_t size = plan.backup.wal_segment_size;
  std::vector<walarchive::BlockMapQuery> queries;
  if (!pg::is_valid_segment_size(size)) return queries;
  std::uint64_t previous = 0;
  for (const std::string& name : plan.wal_segments) {
    const auto parsed = pg::parse_wal_file_name(name);
    if (!parsed || parsed->kind != pg::WalFileKind::kSegment) continue;
    const std::uint64_t segno = pg::segment_number(*parsed, size);
    const pg::Lsn end = pg::segment_start_lsn(segno + 1, size);
    if (!queries.empty() && queries.back().timeline == parsed->timeline && segno == previous + 1) {
      queries.back().end_lsn = end;
    } else {
      const pg::Lsn start = std::max(pg::segment_start_lsn(segno, size), plan.backup.start_lsn);
      if (start < end)
        queries.push_back({.timeline = parsed->timeline,
                           .start_lsn = start,
                           .end_lsn = end,
                           .segment_size = size});
    }
    previous = segno;
  }
  return queries;
}

std::string mib_text(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

// A tablespace's files lose their version directory (its name carries the
// catalog version).
std::string location_key(const FileEntry& e) {
  if (e.tablespace.empty()) return "/" + e.path;
  const auto slash = e.path.find('/');
  if (slash == std::string::npos) return {};
  return e.tablespace + "/" + e.path.substr(slash + 1);
}

std::string location_key(const BlockLocation& l) { return l.tablespace + "/" + l.path; }

BlockLocation locate_block(const pg::RelFork& fork, std::uint32_t block) {
  return locate_block(fork, block, RelationGeometry{});
}

BlockLocation locate_block(const pg::RelFork& fork, std::uint32_t block,
                           const RelationGeometry& geometry) {
  static constexpr const char* kForkSuffix[] = {"", "_fsm", "_vm", "_init"};
  BlockLocation out;
  const std::string rel = std::to_string(fork.rel);
  if (fork.spc == kGlobalTablespace) {
    out.path = "global/" + rel;
  } else if (fork.spc == kDefaultTablespace) {
    out.path = "base/" + std::to_string(fork.db) + "/" + rel;
  } else {
    out.tablespace = std::to_string(fork.spc);
    out.path = std::to_string(fork.db) + "/" + rel;
  }
  if (fork.fork < 4) out.path += kForkSuffix[fork.fork];
  const std::uint32_t per_segment = std::max<std::uint32_t>(1, geometry.blocks_per_segment);
  const std::uint32_t segment = block / per_segment;
  if (segment > 0) out.path += "." + std::to_string(segment);
  out.offset = std::uint64_t{block % per_segment} * geometry.block_size;
  return out;
}

std::string WarmUp::summary() const {
  std::string s = "warm-up: " + std::to_string(hot_blocks) + " of " +
                  std::to_string(touched_blocks) + " blocks redo touches made hot (" +
                  std::to_string(hot_read_blocks) + " of " + std::to_string(read_blocks) +
                  " it reads), " + std::to_string(chunks.size()) + " files, " + mib_text(bytes) +
                  " through the page cache; block maps of " + std::to_string(segments) +
                  " segments";
  if (complete()) return s + " complete";
  return s + ": " + std::to_string(problems.size()) +
         " without knowledge (first: " + problems.front() + "), those not warmed";
}

WarmUp choose_warm_chunks(const std::vector<pg::ForkBlocks>& blocks, const BackupFiles& files,
                          std::uint32_t chunk_size, std::uint64_t budget) {
  WarmUp out;
  if (chunk_size == 0) return out;
  std::vector<Candidate> candidates = candidate_chunks(blocks, files, chunk_size);
  // Most blocks redo reads first, then most blocks it writes; ties in file order.
  // A chunk holding no block redo reads is not chosen at all: redo rebuilds
  // those pages from images (or initialises them) and PostgreSQL writes them
  // back in 8 KiB pieces, which need nothing cached; a page cache filled by
  // large writes made each of those writes walk a large folio (decisions.md,
  // "PITR: where the seconds go").
  std::stable_sort(
      candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
        return std::tie(a.count.reads, a.count.touched) > std::tie(b.count.reads, b.count.touched);
      });
  for (const Candidate& c : candidates) {
    out.touched_blocks += c.count.touched;
    out.read_blocks += c.count.reads;
    const std::uint64_t bytes = chunk_bytes(files.entries[c.entry], c.chunk, chunk_size);
    if (c.count.reads == 0 || out.bytes + bytes > budget) continue;
    out.bytes += bytes;
    out.hot_blocks += c.count.touched;
    out.hot_read_blocks += c.count.reads;
    out.chunks[c.entry].push_back(c.chunk);
  }
  for (auto& [entry, chunks] : out.chunks) std::sort(chunks.begin(), chunks.end());
  return out;
}

WarmUp plan_warm_up(repo::Repository& repo, const RestorePlan& plan, const BackupFiles& files,
                    std::uint64_t budget) {
  std::vector<pg::ForkBlocks> blocks;
  std::vector<std::string> problems;
  std::uint64_t segments = 0;
  const auto queries = plan_queries(plan);
  if (queries.empty()) problems.push_back("the plan names no WAL segment to read maps for");
  for (const walarchive::BlockMapQuery& q : queries) {
    try {
      walarchive::ChangedBlocks changed = walarchive::read_changed_blocks(repo, q);
      segments += changed.segments;
      problems.insert(problems.end(), changed.problems.begin(), changed.problems.end());
      if (blocks.empty()) {
        blocks = std::move(changed.blocks);
      } else {
        // Another timeline's run: its blocks join (a superset is safe).
        blocks.insert(blocks.end(), changed.blocks.begin(), changed.blocks.end());
        std::stable_sort(
            blocks.begin(), blocks.end(),
            [](const pg::ForkBlocks& a, const pg::ForkBlocks& b) { return a.fork < b.fork; });
      }
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  WarmUp out = choose_warm_chunks(blocks, files, plan.backup.chunk_size, budget);
  out.segments = segments;
  out.problems = std::move(problems);
  for (const std::string& p : out.problems)
    spdlog::info("restore warm-up: no block map knowledge: {}", p);
  return out;
}

std::uint64_t default_warm_up_budget() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 256u << 20;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) / 4;
}

RecoveryPrefetch recovery_prefetch_choice(const WarmUp& warm, bool cold_cache) {
  if (warm.complete())
    return warm.hot_read_blocks == warm.read_blocks ? RecoveryPrefetch::kOff
                                                    : RecoveryPrefetch::kOn;
  return cold_cache ? RecoveryPrefetch::kOff : RecoveryPrefetch::kDefault;
}

}  // namespace walvault::basebackup
