// Block maps: which relation blocks the WAL records of one segment reference,
// and which events change relation files wholesale, so that a backup can read
// only the blocks changed between two LSNs and a restore can warm the blocks
// redo will touch (docs/format.md, "Block maps"; docs/decisions.md, "Block
// maps at archive time").
//
// A map is built while summarize_segment() decodes a segment (one pass, the
// same record walk) and stored as one small object per segment. The contract
// every reader relies on:
//   * complete == true means: every record that starts in this segment and
//     is valid (prev-link and CRC) was attributed: its block references are in
//     `blocks`, and if it creates, truncates or drops relation files,
//     databases or tablespaces, or rewrites a relation map, that is in
//     `events`. Only the record that runs off the segment's end may be left
//     pending, as `head`: its attribution needs the first bytes of the next
//     segment (that segment's `tail`); join_crossing() does it.
//   * complete == false: `incomplete_reason` says why (a record the decoder
//     could not attribute: unknown resource manager, unknown record kind of a
//     file-level resource manager, malformed block headers, decoding stopped
//     before the end of the segment's data). Nothing may trust such a map;
//     what it lists is still a subset of the truth, never a superset claim.
//   * Extra entries are always safe (a block listed that did not change);
//     a missing one never happens in a complete map.
//   * The free space map fork (1) is not fully WAL-logged by PostgreSQL: its
//     blocks appear when records name them, but a reader must treat every FSM
//     fork as changed. Files outside base/, global/ and pg_tblspc/ relation
//     files (SLRUs, pg_filenode.map, ...) are not described, except relation
//     map rewrites, which are events.
//
// Pure functions over bytes; nothing here does I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "pg/wal_name.h"

namespace walvault::pg {

// A relation fork: RelFileNode (13-15) / RelFileLocator (16+), the same three
// Oids, plus the fork number (0 main, 1 fsm, 2 visibility map, 3 init).
struct RelFork {
  std::uint32_t spc = 0;
  std::uint32_t db = 0;
  std::uint32_t rel = 0;
  std::uint8_t fork = 0;

  friend auto operator<=>(const RelFork&, const RelFork&) = default;
};

struct ChangedBlock {
  std::uint32_t block = 0;
  // The first reference to this block (in record order) restores the whole
  // page (an applied full-page image, or BKPBLOCK_WILL_INIT): redo does not
  // read the old page for it. Only the first reference counts.
  bool no_read = false;

  friend bool operator==(const ChangedBlock&, const ChangedBlock&) = default;
};

struct ForkBlocks {
  RelFork fork;
  std::vector<ChangedBlock> blocks;  // strictly ascending block numbers

  friend bool operator==(const ForkBlocks&, const ForkBlocks&) = default;
};

enum class MapEventKind : std::uint8_t {
  kRelationCreated = 1,    // rel: spc/db/rel, fork (XLOG_SMGR_CREATE)
  kRelationTruncated = 2,  // rel, flags (SMGR_TRUNCATE_*), blocks = new length
  kRelationDropped = 3,    // rel (every fork): commit/abort of a transaction
  kDatabaseCopied = 4,     // db/spc created by copying src_db/src_spc (file copy)
  kDatabaseCreated = 5,    // db/spc directory created empty (15+ WAL_LOG strategy)
  kDatabaseDropped = 6,    // db/spc directory removed (one event per tablespace)
  kTablespaceCreated = 7,  // spc
  kTablespaceDropped = 8,  // spc
  kRelationMapUpdated = 9  // db/spc's pg_filenode.map rewritten
};
inline constexpr std::uint8_t kMaxMapEventKind = 9;

struct MapEvent {
  MapEventKind kind = MapEventKind::kRelationCreated;
  Lsn lsn = 0;                // start of the record
  RelFork rel;                // spc, db, rel, fork as the kind uses them (unused ones 0)
  std::uint32_t src_spc = 0;  // kDatabaseCopied
  std::uint32_t src_db = 0;   // kDatabaseCopied
  std::uint32_t flags = 0;    // kRelationTruncated
  std::uint32_t blocks = 0;   // kRelationTruncated

  friend bool operator==(const MapEvent&, const MapEvent&) = default;
};

// The first bytes of the record that runs off the segment's end (header
// included), or of the continuation that starts the segment. At most
// kFragmentCap bytes are kept.
inline constexpr std::size_t kFragmentCap = 8192;
struct HeadFragment {
  Lsn lsn = 0;                  // start of the record
  std::uint32_t tot_len = 0;    // xl_tot_len (may be garbage: checked on join)
  std::uint32_t available = 0;  // bytes of the record in this segment
  Bytes bytes;                  // the first min(available, kFragmentCap)
};
struct TailFragment {
  std::uint32_t rem_len = 0;  // xlp_rem_len of the segment's first page
  Bytes bytes;                // the first min(rem_len, kFragmentCap) bytes
};

struct BlockMap {
  bool complete = true;
  std::string incomplete_reason;  // set when !complete
  int pg_major = 0;
  Lsn segment_start = 0;
  // XXH3-64 of the segment's bytes the map was made from (the metadata's
  // xxh3): a map whose hash differs from the archived segment's is not its map.
  std::uint64_t segment_xxh3 = 0;
  std::vector<ForkBlocks> blocks;  // strictly ascending by fork
  std::vector<MapEvent> events;    // in record order
  std::optional<HeadFragment> head;
  std::optional<TailFragment> tail;
  // The first page says the record continued from the previous segment was
  // abandoned (XLP_FIRST_IS_OVERWRITE_CONTRECORD): that segment's head never
  // happened.
  bool starts_with_overwrite = false;

  void mark_incomplete(std::string reason) {
    if (complete) incomplete_reason = std::move(reason);
    complete = false;
  }
};

// True for the resource managers whose records' main data a map needs
// (transaction, storage, database, tablespace, relation map): their whole
// record must be given to attribute_record(), not only its first bytes.
bool record_needs_main_data(std::uint8_t rmid);

// What attribute_record() made of one record.
enum class Attribution {
  kDone,      // references and events added
  kNeedMore,  // the bytes given end before the parts needed (a prefix)
  kFailed,    // malformed or unknown: `reason` says which
};

// Collects references while a segment is decoded; finish() sorts and
// deduplicates into a BlockMap.
class BlockMapBuilder {
 public:
  BlockMapBuilder(int pg_major, Lsn segment_start);

  // Attributes one record given its first bytes (`record`, header included,
  // possibly only a prefix of xl_tot_len bytes). Never reads outside
  // `record`; never throws on content. On kFailed, nothing of the record is
  // added and `reason` names the record.
  Attribution attribute_record(Lsn lsn, ByteView record, std::string& reason);

  BlockMap& map() { return map_; }
  BlockMap finish();

 private:
  // A fork's index in forks_, added when first seen.
  std::uint32_t fork_index(const RelFork& fork);
  // True when (fork index, block) was referenced recently: a later reference
  // can never change the first one's no_read, so it need not be kept. A
  // small direct-mapped table of 64-bit keys; busy segments reference the
  // same few blocks again and again, and this keeps the list to sort short.
  bool seen_recently(std::uint64_t key);
  Attribution attribute_main(Lsn lsn, std::uint8_t rmid, std::uint8_t info, ByteView main,
                             std::string& reason);
  void add_event(MapEvent event) { map_.events.push_back(event); }

  BlockMap map_;
  // One entry per kept reference, in record order: fork index << 33 |
  // block << 1 | no_read. finish() sorts them stably (the first reference
  // of a block stays first) by fork and block.
  std::vector<std::uint64_t> refs_;
  std::vector<RelFork> forks_;  // by index
  // Open addressing from fork to index, the fork kept in the slot (one cache
  // line per lookup); index_plus_1 0 is an empty slot.
  struct ForkSlot {
    RelFork fork;
    std::uint32_t index_plus_1 = 0;
  };
  std::vector<ForkSlot> fork_slots_;
  int fork_slot_bits_ = 6;
  std::vector<std::uint64_t> recent_;  // key + 1, 0 = empty
};

// Attributes `previous.head` with `next.tail` (the segment right after it on
// the same WAL history) into `into`; returns false with `reason` when the two
// do not fit together or the joined bytes still do not suffice. `previous`
// without head: true, nothing to do.
bool join_crossing(const BlockMap& previous, const BlockMap* next, BlockMapBuilder& into,
                   std::string& reason);

// The stored form (docs/format.md, "Block maps"), before the envelope.
Bytes encode_block_map(const BlockMap& map);
// Throws Error(kCorruption) naming `what` when the bytes are not a block map.
BlockMap decode_block_map(ByteView bytes, const std::string& what);

}  // namespace walvault::pg
