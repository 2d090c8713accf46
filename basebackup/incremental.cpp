#include "basebackup/incremental.h"

#include <algorithm>
#include <limits>

namespace walvault::basebackup {

namespace {

constexpr std::uint32_t kDefaultTablespace = 1663;  // DEFAULTTABLESPACE_OID
constexpr std::uint32_t kGlobalTablespace = 1664;   // GLOBALTABLESPACE_OID

// A decimal oid without sign or leading zero (locate_block() confirms the
// spelling anyway).
std::optional<std::uint32_t> parse_oid(std::string_view s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  const std::uint64_t v = std::stoull(std::string(s));
  if (v > std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

// "16384", "16384_vm", "16384.2": relation number, fork, segment.
bool parse_file_name(std::string_view name, RelationFile& out) {
  std::uint32_t segment = 0;
  if (const auto dot = name.find('.'); dot != std::string_view::npos) {
    const auto seg = parse_oid(name.substr(dot + 1));
    if (!seg || *seg == 0) return false;
    segment = *seg;
    name = name.substr(0, dot);
  }
  std::uint8_t fork = 0;
  if (const auto underscore = name.find('_'); underscore != std::string_view::npos) {
    const std::string_view suffix = name.substr(underscore + 1);
    if (suffix == "fsm")
      fork = 1;
    else if (suffix == "vm")
      fork = 2;
    else if (suffix == "init")
      fork = 3;
    else
      return false;
    name = name.substr(0, underscore);
  }
  const auto rel = parse_oid(name);
  if (!rel) return false;
  out.fork.rel = *rel;
  out.fork.fork = fork;
  out.segment = segment;
  return true;
}

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  while (true) {
    const auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) return parts;
    path = path.substr(slash + 1);
  }
}

std::uint64_t chunk_count(std::uint64_t size, std::uint32_t chunk_size) {
  return (size + chunk_size - 1) / chunk_size;
}

std::string key_of(const std::string& tablespace, const std::string& path) {
  FileEntry e;
  e.tablespace = tablespace;
  e.path = path;
  return location_key(e);
}

std::string lsn_text(pg::Lsn lsn) { return pg::format_lsn(lsn); }

// Why `b` cannot be the base, or "".
std::string base_problem(const BackupRecord& b, const IncrementalFacts& now) {
  if (b.chunk_size != now.chunk_size)
    return "previous backup " + b.label + " has another chunk size (" +
           std::to_string(b.chunk_size) + " bytes, the repository's is " +
           std::to_string(now.chunk_size) + ")";
  if (b.wal_segment_size != now.segment_size)
    return "previous backup " + b.label + " has another WAL segment size";
  if (b.pg_version_num / 10000 != now.pg_major)
    return "previous backup " + b.label + " is of PostgreSQL " +
           std::to_string(b.pg_version_num / 10000);
  if (b.stop_lsn > now.start_lsn || b.stop_timeline != b.start_timeline)
    return "previous backup " + b.label + " ends after this backup's start (" +
           lsn_text(b.stop_lsn) + " > " + lsn_text(now.start_lsn) + ")";
  return {};
}

// A label as walvault writes them ("20261126-115100-2"): anything else in a
// record (it can be forged) never becomes an object name here.
bool plain_label(const std::string& label) {
  return !label.empty() && label.size() <= 64 && label != "." && label != ".." &&
         label.find_first_not_of(
             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
             "._-") == std::string::npos;
}

}  // namespace

std::optional<RelationFile> parse_relation_file(const std::string& tablespace,
                                                const std::string& path,
                                                const RelationGeometry& geometry) {
  const std::vector<std::string_view> parts = split(path);
  RelationFile out;
  if (tablespace.empty()) {
    if (parts.size() == 3 && parts[0] == "base") {
      const auto db = parse_oid(parts[1]);
      if (!db || !parse_file_name(parts[2], out)) return std::nullopt;
      out.fork.spc = kDefaultTablespace;
      out.fork.db = *db;
    } else if (parts.size() == 2 && parts[0] == "global") {
      if (!parse_file_name(parts[1], out)) return std::nullopt;
      out.fork.spc = kGlobalTablespace;
    } else {
      return std::nullopt;
    }
  } else {
    const auto spc = parse_oid(tablespace);
    if (!spc || parts.size() != 3 || !parts[0].starts_with("PG_")) return std::nullopt;
    const auto db = parse_oid(parts[1]);
    if (!db || !parse_file_name(parts[2], out)) return std::nullopt;
    out.fork.spc = *spc;
    out.fork.db = *db;
  }
  // Confirmed by the one mapping from blocks to files.
  const std::uint64_t first_block = std::uint64_t{out.segment} * geometry.blocks_per_segment;
  if (geometry.blocks_per_segment == 0 || first_block > std::numeric_limits<std::uint32_t>::max())
    return std::nullopt;
  const BlockLocation where =
      locate_block(out.fork, static_cast<std::uint32_t>(first_block), geometry);
  if (where.offset != 0 || location_key(where) != key_of(tablespace, path)) return std::nullopt;
  return out;
}

BaseChoice choose_base(const std::vector<BackupRecord>& records, const IncrementalFacts& now) {
  const BackupRecord* newest = nullptr;            // on this timeline, before S2
  const BackupRecord* newest_elsewhere = nullptr;  // on another timeline
  for (const BackupRecord& b : records) {
    if (b.system_id != now.system_id || b.start_lsn >= now.start_lsn || !plain_label(b.label))
      continue;
    const bool here = b.start_timeline == now.timeline;
    const BackupRecord*& slot = here ? newest : newest_elsewhere;
    if (!slot || b.start_lsn > slot->start_lsn ||
        (b.start_lsn == slot->start_lsn && b.label > slot->label))
      slot = &b;
  }
  BaseChoice out;
  if (newest_elsewhere && (!newest || newest_elsewhere->start_lsn > newest->start_lsn)) {
    out.reason = "timeline changed (previous backup " + newest_elsewhere->label +
                 " is on timeline " + std::to_string(newest_elsewhere->start_timeline) +
                 ", the server on " + std::to_string(now.timeline) + ")";
    return out;
  }
  if (!newest) {
    out.reason = "no previous backup";
    return out;
  }
  out.reason = base_problem(*newest, now);
  if (out.reason.empty()) out.record = *newest;
  return out;
}

IncrementalPlanner::IncrementalPlanner(const walarchive::ChangedBlocks& changed,
                                       std::vector<const BackupFiles*> previous,
                                       std::uint32_t chunk_size, RelationGeometry geometry)
    : chunk_size_(chunk_size), geometry_(geometry) {
  if (geometry.block_size == 0 || geometry.blocks_per_segment == 0 || chunk_size == 0 ||
      chunk_size % geometry.block_size != 0) {
    refusal_ = "the chunk size (" + std::to_string(chunk_size) +
               ") is not a multiple of the block size (" + std::to_string(geometry.block_size) +
               ")";
    return;
  }
  if (!changed.complete()) {
    refusal_ = "block maps incomplete: " + changed.problems.front();
    return;
  }
  add_events(changed.events);
  if (!refusal_.empty()) return;
  for (const BackupFiles* files : previous) {
    Previous p;
    for (const FileEntry& e : files->entries) {
      if (e.type != EntryType::kFile) continue;
      const std::string key = location_key(e);
      if (key.empty()) continue;
      // Two entries on one key (two version directories of a tablespace):
      // neither is taken over.
      auto [it, inserted] = p.by_key.emplace(key, &e);
      if (!inserted) it->second = nullptr;
    }
    previous_.push_back(std::move(p));
  }
  for (const pg::ForkBlocks& group : changed.blocks) {
    if (group.fork.fork != 0) continue;  // the other forks are read whole
    for (const pg::ChangedBlock& b : group.blocks) {
      const BlockLocation where = locate_block(group.fork, b.block, geometry_);
      auto& chunks = changed_[location_key(where)];
      const auto chunk = static_cast<std::uint32_t>(where.offset / chunk_size_);
      if (chunks.empty() || chunks.back() < chunk) chunks.push_back(chunk);
    }
  }
}

void IncrementalPlanner::add_events(const std::vector<pg::MapEvent>& events) {
  using K = pg::MapEventKind;
  for (const pg::MapEvent& e : events) {
    switch (e.kind) {
      case K::kRelationCreated:
      case K::kRelationTruncated:
      case K::kRelationDropped:
        relations_.insert({e.rel.spc, e.rel.db, e.rel.rel});
        break;
      case K::kDatabaseCopied:
      case K::kDatabaseCreated:
      case K::kDatabaseDropped:
        databases_.insert({e.rel.spc, e.rel.db});
        break;
      case K::kTablespaceCreated:
      case K::kTablespaceDropped:
        tablespaces_.insert(e.rel.spc);
        break;
      case K::kRelationMapUpdated:
        break;  // pg_filenode.map is not a relation file: always read whole
      default:
        refusal_ = "block map event of unknown kind " +
                   std::to_string(static_cast<unsigned>(e.kind)) + " at " + lsn_text(e.lsn);
        return;
    }
  }
}

FilePlan IncrementalPlanner::plan(const std::string& tablespace, const std::string& path,
                                  std::uint64_t size) const {
  FilePlan out;
  if (!refusal_.empty()) {
    out.why = refusal_;
    return out;
  }
  const auto file = parse_relation_file(tablespace, path, geometry_);
  if (!file) {
    out.why = "not a relation file";
    return out;
  }
  const pg::RelFork& f = file->fork;
  if (f.fork != 0) {
    out.why = "free space map, visibility map or init fork";
    return out;
  }
  if (tablespaces_.count(f.spc) || databases_.count({f.spc, f.db}) ||
      relations_.count({f.spc, f.db, f.rel})) {
    out.why = "relation, database or tablespace created, truncated or dropped";
    return out;
  }
  const std::string key = key_of(tablespace, path);
  const std::uint64_t count = chunk_count(size, chunk_size_);
  std::optional<std::uint64_t> old_size;
  for (const Previous& p : previous_) {
    const auto it = p.by_key.find(key);
    if (it == p.by_key.end() || it->second == nullptr) {
      out.why = "not in the previous backup";
      return out;
    }
    const FileEntry& e = *it->second;
    if (e.chunks.size() != chunk_count(e.size, chunk_size_) || (old_size && *old_size != e.size)) {
      out.why = "the previous backup's entry does not fit";
      return out;
    }
    old_size = e.size;
    out.previous.push_back(&e);
  }
  if (!old_size || size < *old_size) {
    out.why = old_size ? "shrank without a truncation" : "no previous backup";
    out.previous.clear();
    return out;
  }
  if (const auto it = changed_.find(key); it != changed_.end())
    for (const std::uint32_t c : it->second)
      if (c < count) out.read.push_back(c);
  if (size != *old_size) {
    for (std::uint64_t c = *old_size / chunk_size_; c < count; ++c)
      out.read.push_back(static_cast<std::uint32_t>(c));
    std::sort(out.read.begin(), out.read.end());
    out.read.erase(std::unique(out.read.begin(), out.read.end()), out.read.end());
  }
  out.whole = false;
  return out;
}

}  // namespace walvault::basebackup
