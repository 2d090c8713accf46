// The map-based incremental of `backup --local`: which chunks of which files
// a backup must read, and which it may take over from the previous backup of
// the same cluster, from the block maps archive-push stored
// (walarchive/block_maps.h) over [S1, S2): S1 the previous backup's start
// LSN, S2 this backup's (docs/decisions.md, "Map-based incremental local
// backups").
//
// Contract (the rules; pure functions, no I/O):
//   * A chunk may be taken over only for the main fork (0) of a relation
//     file (base/<db>/<rel>[.N], global/<rel>[.N], <PG_*>/<db>/<rel>[.N] in a
//     tablespace; the path must be exactly what locate_block() names) that
//     the previous backup lists under the same key, as a regular file with
//     ceil(size / chunk_size) chunks, in every repository.
//   * Read whole: every other file (not a relation file, FSM, VM and init
//     forks, files the previous backup lacks), every file of a relation with
//     a create/truncate/drop event in range, of a database with a database
//     event, of a tablespace with a tablespace event; a file that shrank.
//     Everything, when an event kind is unknown (refusal()).
//   * Otherwise read the chunks that hold a block the maps name, plus, when
//     the size changed, every chunk from min(old, new) rounded down to a
//     chunk boundary to the end.
//   * The previous file list is only looked up by the new walk's paths:
//     nothing it names is ever opened, read or written.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "basebackup/backup_record.h"
#include "basebackup/warmup.h"
#include "walarchive/block_maps.h"

namespace walvault::basebackup {

// What the backup being taken knows about itself, to choose its base.
struct IncrementalFacts {
  std::uint64_t system_id = 0;
  pg::TimeLineId timeline = 0;
  pg::Lsn start_lsn = 0;  // S2
  std::uint32_t segment_size = 0;
  std::uint32_t chunk_size = 0;
  int pg_major = 0;
};

// The previous backup, or why there is none to build on.
struct BaseChoice {
  std::optional<BackupRecord> record;
  std::string reason;  // set when !record: why everything is read
};

// Pure: the newest (by start LSN) committed backup of this system on this
// timeline with start LSN < S2, whose stop LSN is <= S2, with the same
// segment size, chunk size and major. Reasons: "no previous backup",
// "timeline changed (...)", "previous backup L has another chunk size
// (...)", ...
BaseChoice choose_base(const std::vector<BackupRecord>& records, const IncrementalFacts& now);

struct FilePlan {
  bool whole = true;
  std::string why;                         // whole: the rule that says so
  std::vector<std::uint32_t> read;         // !whole: ascending chunk indexes to read
  std::vector<const FileEntry*> previous;  // !whole: per repository, the entry to take over from
};

class IncrementalPlanner {
 public:
  // `changed` must be complete; `previous` holds the previous backup's file
  // list per repository (in the backup's repository order; kept by
  // reference). `chunk_size` must be a positive multiple of the block size
  // (refusal() otherwise).
  IncrementalPlanner(const walarchive::ChangedBlocks& changed,
                     std::vector<const BackupFiles*> previous, std::uint32_t chunk_size,
                     RelationGeometry geometry);

  // Empty: the plan may be used; else why every file must be read whole.
  const std::string& refusal() const { return refusal_; }

  // What to read of the file `path` of archive `tablespace` ("" the data
  // directory, else the oid), now `size` bytes.
  FilePlan plan(const std::string& tablespace, const std::string& path, std::uint64_t size) const;

 private:
  struct Previous {
    std::unordered_map<std::string, const FileEntry*> by_key;  // nullptr: ambiguous key
  };
  using Relation = std::tuple<std::uint32_t, std::uint32_t, std::uint32_t>;
  void add_events(const std::vector<pg::MapEvent>& events);

  std::uint32_t chunk_size_;
  RelationGeometry geometry_;
  std::string refusal_;
  std::vector<Previous> previous_;
  // Main-fork file key -> ascending chunk indexes holding a changed block.
  std::unordered_map<std::string, std::vector<std::uint32_t>> changed_;
  std::set<Relation> relations_;                                 // spc, db, rel
  std::set<std::pair<std::uint32_t, std::uint32_t>> databases_;  // spc, db
  std::set<std::uint32_t> tablespaces_;
};

// Pure: the relation fork and segment number of a backup file, when its path
// is exactly the one locate_block() names for it (std::nullopt otherwise).
struct RelationFile {
  pg::RelFork fork;
  std::uint32_t segment = 0;
};
std::optional<RelationFile> parse_relation_file(const std::string& tablespace,
                                                const std::string& path,
                                                const RelationGeometry& geometry);

}  // namespace walvault::basebackup
