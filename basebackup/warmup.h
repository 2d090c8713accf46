// PITR warm-up: which parts of a backup's relation files redo will touch, so
// that restore leaves them in the page cache before PostgreSQL starts
// (docs/decisions.md, "PITR warm-up from block maps").
//
// After a direct-I/O restore nothing of the data directory is cached. Redo
// reads every page whose first change from the backup's start on carries no
// full-page image (ChangedBlock::no_read false), one synchronous read at a
// time; and every page it changes is written back into files whose page
// cache is empty (the kernel reads around a partial write of a large folio).
// The block maps archive-push stored (walarchive/block_maps.h) name those
// pages. Restore writes the chunks that hold them through the page cache
// (restore.h, RestoreOptions::hot_chunks).
//
// Contract:
//   * Only a hint: the chunks chosen change how restore writes them, never
//     what it writes. Wrong or missing maps cost time, not data.
//   * Blocks are 8 KiB and relation segment files 1 GiB (PostgreSQL's
//     defaults, BLCKSZ and RELSEG_SIZE); a cluster built otherwise is warmed
//     at the wrong offsets, harmlessly.
//   * A segment of the range whose map is missing, made from other bytes or
//     incomplete is not known: its blocks are not warmed (what the other
//     segments say still is), `problems` names it, and
//     recovery_prefetch_choice() falls back to the rule without maps.
//   * Only chunks holding a block redo reads (ChangedBlock::no_read false)
//     are chosen, at most `budget` bytes of them, those holding the most
//     such blocks first, then those holding the most it changes. A chunk
//     whose blocks redo only writes (full-page images, initialised pages)
//     is left to PostgreSQL's own 8 KiB writes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "basebackup/backup_record.h"
#include "basebackup/recovery_settings.h"
#include "basebackup/restore_plan.h"
#include "pg/block_map.h"
#include "repo/repository.h"

namespace walvault::basebackup {

inline constexpr std::uint32_t kRelationBlockSize = 8192;                  // BLCKSZ
inline constexpr std::uint32_t kBlocksPerSegmentFile = (1u << 30) / 8192;  // RELSEG_SIZE

// Where a relation block lives in a backup's file list: the archive
// (FileEntry::tablespace: "" for the data directory, else the tablespace's
// oid) and the path below it, without a tablespace's version directory
// ("PG_15_202209061/"), and the byte offset in that file.
struct BlockLocation {
  std::string tablespace;
  std::string path;  // "base/5/16384_vm.1", "global/1262", "16385/16386" (tablespace)
  std::uint64_t offset = 0;

  friend bool operator==(const BlockLocation&, const BlockLocation&) = default;
};

// Pure. Tablespace 1663 is base/<db>/, 1664 global/, any other
// pg_tblspc/<spc>/<version>/<db>/; fork 1 "_fsm", 2 "_vm", 3 "_init";
// segment files ".1", ".2", ... every kBlocksPerSegmentFile blocks.
BlockLocation locate_block(const pg::RelFork& fork, std::uint32_t block);

// A cluster's BLCKSZ and RELSEG_SIZE (pg_settings block_size and
// segment_size), for the callers that must not assume the defaults (the
// map-based incremental backup, incremental.h).
struct RelationGeometry {
  std::uint32_t block_size = kRelationBlockSize;
  std::uint32_t blocks_per_segment = kBlocksPerSegmentFile;
};
// As above with `geometry`'s sizes.
BlockLocation locate_block(const pg::RelFork& fork, std::uint32_t block,
                           const RelationGeometry& geometry);

// The key of a backup file and of a block location in the same terms, for
// lookups: "/<path>" for the data directory, "<spc>/<path below the
// tablespace's version directory>" for a tablespace ("" when the entry has
// no such directory).
std::string location_key(const BlockLocation& location);
std::string location_key(const FileEntry& entry);

struct WarmUp {
  // BackupFiles::entries index -> ascending chunk indexes to make hot.
  std::map<std::size_t, std::vector<std::uint32_t>> chunks;
  std::uint64_t bytes = 0;            // the chosen chunks' bytes
  std::uint64_t touched_blocks = 0;   // blocks redo changes that the backup has
  std::uint64_t read_blocks = 0;      // of those, the ones it reads first (not an image)
  std::uint64_t hot_blocks = 0;       // touched blocks in a chosen chunk
  std::uint64_t hot_read_blocks = 0;  // read blocks in a chosen chunk
  std::uint64_t segments = 0;         // WAL segments the maps were read for
  std::vector<std::string> problems;  // segments without knowledge; empty: all known

  bool complete() const { return problems.empty(); }
  // One line for the restore's output: "warm-up: 812 of 812 blocks redo
  // touches made hot (25 of 25 it reads), 8 files, 96.0 MiB through the page
  // cache; block maps of 12 segments complete".
  std::string summary() const;
};

// Pure: the chunks of `files` (fixed `chunk_size`) that hold the blocks of
// `blocks`, at most `budget` bytes.
WarmUp choose_warm_chunks(const std::vector<pg::ForkBlocks>& blocks, const BackupFiles& files,
                          std::uint32_t chunk_size, std::uint64_t budget);

// Reads the block maps of the plan's WAL (backup start to the end of the
// last planned segment, each run of segments on one timeline; maps read in
// parallel) and chooses with choose_warm_chunks(). Problems are logged (info)
// and returned, never thrown; a map that does not decode is a problem too.
WarmUp plan_warm_up(repo::Repository& repo, const RestorePlan& plan, const BackupFiles& files,
                    std::uint64_t budget);

// The default budget: a quarter of the machine's physical memory.
std::uint64_t default_warm_up_budget();

// recovery_prefetch from what the maps say: with complete maps, off when
// every block redo reads is hot (nothing left to prefetch: PostgreSQL's
// prefetcher skips blocks with an image or WILL_INIT anyway), on otherwise
// (reads redo would wait for one by one); without complete maps, the rule
// without them: off after a direct-I/O restore (`cold_cache`), else the
// server's default.
RecoveryPrefetch recovery_prefetch_choice(const WarmUp& warm, bool cold_cache);

}  // namespace walvault::basebackup
