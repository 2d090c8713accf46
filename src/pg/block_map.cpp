// Implementation notes
//
// Which records change relation files other than through block references
// follows PostgreSQL's own WAL summarizer (walsummarizer.c: SummarizeSmgrRecord,
// SummarizeDbaseRecord, SummarizeXactRecord) and pg_rewind's parsexlog.c:
// smgr create/truncate, database create/drop, tablespace create/drop, the
// relations a commit or abort removes, and relation map rewrites. Every other
// built-in resource manager changes relation pages only through its block
// references. A record of an unknown resource manager (custom ones, 128+), or
// of an unknown kind of the ones above, cannot be attributed: the map is
// marked incomplete rather than guessed.
#include "pg/block_map.h"

#include <algorithm>

#include "core/error.h"
#include "pg/record_body.h"

namespace walvault::pg {
namespace {

using detail::kInfoOpMask;
using detail::kRecordHeaderSize;
using detail::kRmXact;

// The other resource manager ids (rmgrlist.h, the same for 13-18).
enum Rmgr : std::uint8_t {
  kRmSmgr = 2,
  kRmDbase = 4,
  kRmTblspc = 5,
  kRmRelmap = 7,
  kRmMaxBuiltin = 21,  // RM_LOGICALMSG_ID
};

constexpr std::uint8_t kSmgrCreate = 0x10;
constexpr std::uint8_t kSmgrTruncate = 0x20;
constexpr std::uint8_t kTblspcCreate = 0x00;
constexpr std::uint8_t kTblspcDrop = 0x10;
constexpr std::uint8_t kRelmapUpdate = 0x00;
constexpr std::uint8_t kMaxFork = 3;  // INIT_FORKNUM

std::string hex8(std::uint8_t v) {
  static const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[v >> 4] + digits[v & 15];
}

std::string at_lsn(Lsn lsn) { return "record at " + format_lsn(lsn); }

MapEvent make_event(MapEventKind kind, Lsn lsn) {
  MapEvent e;
  e.kind = kind;
  e.lsn = lsn;
  return e;
}

RelFork locator_at(const std::uint8_t* p, std::uint8_t fork = 0) {
  return {load_le<std::uint32_t>(p), load_le<std::uint32_t>(p + 4), load_le<std::uint32_t>(p + 8),
          fork};
}

// --- encoding helpers ---

void put_varint(Bytes& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

void put_fragment_bytes(Bytes& out, const Bytes& bytes) {
  put_varint(out, bytes.size());
  out.insert(out.end(), bytes.begin(), bytes.end());
}

class Reader {
 public:
  Reader(ByteView bytes, const std::string& what) : bytes_(bytes), what_(what) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw Error(ErrorCode::kCorruption, what_ + ": not a valid block map (" + why + ")");
  }
  std::uint8_t byte() {
    if (pos_ >= bytes_.size()) fail("truncated");
    return bytes_[pos_++];
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const std::uint8_t b = byte();
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 64 bits");
  }
  std::uint32_t u32() {
    const std::uint64_t v = varint();
    if (v > 0xFFFFFFFFu) fail("value out of range");
    return static_cast<std::uint32_t>(v);
  }
  Bytes take(std::uint64_t n, std::uint64_t cap) {
    if (n > cap || n > bytes_.size() - pos_) fail("byte string too long");
    Bytes out(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_),
              bytes_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return out;
  }
  bool at_end() const { return pos_ == bytes_.size(); }

 private:
  ByteView bytes_;
  const std::string& what_;
  std::size_t pos_ = 0;
};

constexpr char kMagic[4] = {'W', 'V', 'B', 'M'};
constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kFlagComplete = 0x01;
constexpr std::uint8_t kFlagOverwrite = 0x02;
constexpr std::size_t kMaxReason = 4096;

}  // namespace

constexpr std::size_t kRecentSlots = 4096;

namespace {

// Multiplicative hashing: the top `bits` bits of the product.
std::size_t fork_hash(const RelFork& f, int bits) {
  const std::uint64_t x = (std::uint64_t{f.rel} << 32 | (f.db << 4) | f.fork) ^ f.spc;
  return static_cast<std::size_t>((x * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

// Sorts `v` stably by the `bits` bits above bit 0 of each entry (bit 0 rides
// along), least significant digit first; `tmp` is scratch of v's size.
void radix_sort_above_bit0(std::vector<std::uint64_t>& v, std::vector<std::uint64_t>& tmp,
                           int bits) {
  constexpr int kDigit = 11;
  constexpr std::size_t kBuckets = std::size_t{1} << kDigit;
  std::vector<std::uint32_t> count(kBuckets);
  for (int shift = 1; shift < 1 + bits; shift += kDigit) {
    std::fill(count.begin(), count.end(), 0);
    for (const std::uint64_t e : v) ++count[(e >> shift) & (kBuckets - 1)];
    std::uint32_t sum = 0;
    for (auto& c : count) {
      const std::uint32_t n = c;
      c = sum;
      sum += n;
    }
    for (const std::uint64_t e : v) tmp[count[(e >> shift) & (kBuckets - 1)]++] = e;
    v.swap(tmp);
  }
}

int bit_width_of(std::uint64_t v) { return v == 0 ? 0 : 64 - __builtin_clzll(v); }

}  // namespace

BlockMapBuilder::BlockMapBuilder(int pg_major, Lsn segment_start)
    : fork_slots_(std::size_t{1} << 6), recent_(kRecentSlots) {
  map_.pg_major = pg_major;
  map_.segment_start = segment_start;
}

bool record_needs_main_data(std::uint8_t rmid) {
  return rmid == kRmXact || rmid == kRmSmgr || rmid == kRmDbase || rmid == kRmTblspc ||
         rmid == kRmRelmap;
}

std::uint32_t BlockMapBuilder::fork_index(const RelFork& fork) {
  const std::size_t mask = fork_slots_.size() - 1;
  std::size_t i = fork_hash(fork, fork_slot_bits_);
  for (; fork_slots_[i].index_plus_1 != 0; i = (i + 1) & mask)
    if (fork_slots_[i].fork == fork) return fork_slots_[i].index_plus_1 - 1;
  forks_.push_back(fork);
  const auto index = static_cast<std::uint32_t>(forks_.size() - 1);
  fork_slots_[i] = {fork, index + 1};
  if (forks_.size() * 2 > fork_slots_.size()) {  // grow at half full
    ++fork_slot_bits_;
    std::vector<ForkSlot> slots(std::size_t{1} << fork_slot_bits_);
    const std::size_t m = slots.size() - 1;
    for (std::uint32_t k = 0; k < forks_.size(); ++k) {
      std::size_t j = fork_hash(forks_[k], fork_slot_bits_);
      while (slots[j].index_plus_1 != 0) j = (j + 1) & m;
      slots[j] = {forks_[k], k + 1};
    }
    fork_slots_.swap(slots);
  }
  return index;
}

bool BlockMapBuilder::seen_recently(std::uint64_t key) {
  std::uint64_t h = key * 0x9E3779B97F4A7C15ull;
  std::uint64_t& slot = recent_[(h >> 52) & (kRecentSlots - 1)];
  if (slot == key + 1) return true;
  slot = key + 1;
  return false;
}

Attribution BlockMapBuilder::attribute_record(Lsn lsn, ByteView record, std::string& reason) {
  if (record.size() < kRecordHeaderSize) return Attribution::kNeedMore;
  const std::uint32_t tot_len = load_le<std::uint32_t>(record.data());
  if (tot_len < kRecordHeaderSize || record.size() > tot_len) {
    reason = at_lsn(lsn) + ": bad length " + std::to_string(tot_len);
    return Attribution::kFailed;
  }
  const std::uint8_t info = record[16];
  const std::uint8_t rmid = record[17];
  if (rmid > kRmMaxBuiltin) {
    reason = at_lsn(lsn) + ": unknown resource manager " + std::to_string(rmid);
    return Attribution::kFailed;
  }
  const std::size_t mark = refs_.size();
  bool bad_fork = false;
  const auto layout = detail::walk_record_body(
      record.subspan(kRecordHeaderSize), tot_len - kRecordHeaderSize, map_.pg_major,
      [&](const detail::BlockRefHeader& ref) {
        if (ref.fork > kMaxFork) bad_fork = true;
        const std::uint64_t key =
            std::uint64_t{fork_index({ref.spc, ref.db, ref.rel, ref.fork})} << 32 | ref.block;
        if (seen_recently(key)) return;
        refs_.push_back(key << 1 | (ref.will_init || ref.image_applied ? 1 : 0));
      });
  // Drops this record's references; the recent table may name them, so it
  // is forgotten too (rare: only records that fail or need more bytes).
  auto undo = [&](Attribution result) {
    refs_.resize(mark);
    std::fill(recent_.begin(), recent_.end(), 0);
    return result;
  };
  if (bad_fork) {
    reason = at_lsn(lsn) + ": block reference to a fork above " + std::to_string(kMaxFork);
    return undo(Attribution::kFailed);
  }
  if (layout.status == detail::BodyStatus::kMalformed) {
    reason = at_lsn(lsn) + ": block headers do not add up";
    return undo(Attribution::kFailed);
  }
  const bool needs_main = record_needs_main_data(rmid);
  if (layout.status == detail::BodyStatus::kNeedMore) return undo(Attribution::kNeedMore);
  if (!needs_main) return Attribution::kDone;
  const std::uint64_t main_start = kRecordHeaderSize + layout.main_offset;
  if (main_start + layout.main_len > record.size()) return undo(Attribution::kNeedMore);
  const Attribution result =
      attribute_main(lsn, rmid, info, record.subspan(main_start, layout.main_len), reason);
  return result == Attribution::kDone ? result : undo(result);
}

Attribution BlockMapBuilder::attribute_main(Lsn lsn, std::uint8_t rmid, std::uint8_t info,
                                            ByteView main, std::string& reason) {
  const std::uint8_t op = info & kInfoOpMask;
  const bool pg15 = map_.pg_major >= 15;
  // Fails the record when the main data is shorter than its fixed part.
  auto need = [&](std::size_t n) {
    if (main.size() >= n) return true;
    reason = at_lsn(lsn) + ": main data of rmgr " + std::to_string(rmid) + " info " + hex8(info) +
             " is " + std::to_string(main.size()) + " bytes, expected " + std::to_string(n);
    return false;
  };
  auto unknown = [&]() {
    reason =
        at_lsn(lsn) + ": unknown record kind " + hex8(info) + " of rmgr " + std::to_string(rmid);
    return Attribution::kFailed;
  };
  const std::uint8_t* p = main.data();
  switch (rmid) {
    case kRmXact: {
      const std::uint8_t xop = info & detail::kXactOpMask;
      const bool commit = xop == detail::kXactCommit || xop == detail::kXactCommitPrepared;
      if (!commit && xop != detail::kXactAbort && xop != detail::kXactAbortPrepared)
        return Attribution::kDone;
      const auto fields = detail::parse_xact_end(main, info, commit, map_.pg_major);
      if (!fields) {
        reason = at_lsn(lsn) + ": transaction end record whose fields do not add up";
        return Attribution::kFailed;
      }
      for (std::uint32_t i = 0; i < fields->rels_count; ++i) {
        MapEvent e = make_event(MapEventKind::kRelationDropped, lsn);
        e.rel = locator_at(p + fields->rels_offset + i * detail::kRelFileLocatorSize);
        add_event(e);
      }
      return Attribution::kDone;
    }
    case kRmSmgr:
      if (op == kSmgrCreate) {
        if (!need(16)) return Attribution::kFailed;
        MapEvent e = make_event(MapEventKind::kRelationCreated, lsn);
        e.rel = locator_at(p, static_cast<std::uint8_t>(load_le<std::uint32_t>(p + 12)));
        if (load_le<std::uint32_t>(p + 12) > kMaxFork) return unknown();
        add_event(e);
      } else if (op == kSmgrTruncate) {
        if (!need(20)) return Attribution::kFailed;
        MapEvent e = make_event(MapEventKind::kRelationTruncated, lsn);
        e.blocks = load_le<std::uint32_t>(p);
        e.rel = locator_at(p + 4);
        e.flags = load_le<std::uint32_t>(p + 16);
        add_event(e);
      } else {
        return unknown();
      }
      return Attribution::kDone;
    case kRmDbase: {
      // 13-14: 0x00 CREATE (copy), 0x10 DROP; 15+: 0x00 CREATE_FILE_COPY,
      // 0x10 CREATE_WAL_LOG, 0x20 DROP.
      const std::uint8_t drop_op = pg15 ? 0x20 : 0x10;
      if (op == 0x00) {
        if (!need(16)) return Attribution::kFailed;
        MapEvent e = make_event(MapEventKind::kDatabaseCopied, lsn);
        e.rel.db = load_le<std::uint32_t>(p);
        e.rel.spc = load_le<std::uint32_t>(p + 4);
        e.src_db = load_le<std::uint32_t>(p + 8);
        e.src_spc = load_le<std::uint32_t>(p + 12);
        add_event(e);
      } else if (pg15 && op == 0x10) {
        if (!need(8)) return Attribution::kFailed;
        MapEvent e = make_event(MapEventKind::kDatabaseCreated, lsn);
        e.rel.db = load_le<std::uint32_t>(p);
        e.rel.spc = load_le<std::uint32_t>(p + 4);
        add_event(e);
      } else if (op == drop_op) {
        if (!need(8)) return Attribution::kFailed;
        const std::uint32_t n = load_le<std::uint32_t>(p + 4);
        if (!need(8 + static_cast<std::uint64_t>(n) * 4)) return Attribution::kFailed;
        for (std::uint32_t i = 0; i < n; ++i) {
          MapEvent e = make_event(MapEventKind::kDatabaseDropped, lsn);
          e.rel.db = load_le<std::uint32_t>(p);
          e.rel.spc = load_le<std::uint32_t>(p + 8 + 4 * i);
          add_event(e);
        }
      } else {
        return unknown();
      }
      return Attribution::kDone;
    }
    case kRmTblspc:
      if (op != kTblspcCreate && op != kTblspcDrop) return unknown();
      if (!need(4)) return Attribution::kFailed;
      {
        MapEvent e = make_event(op == kTblspcCreate ? MapEventKind::kTablespaceCreated
                                                    : MapEventKind::kTablespaceDropped,
                                lsn);
        e.rel.spc = load_le<std::uint32_t>(p);
        add_event(e);
      }
      return Attribution::kDone;
    case kRmRelmap: {
      if (op != kRelmapUpdate) return unknown();
      if (!need(12)) return Attribution::kFailed;
      MapEvent e = make_event(MapEventKind::kRelationMapUpdated, lsn);
      e.rel.db = load_le<std::uint32_t>(p);
      e.rel.spc = load_le<std::uint32_t>(p + 4);
      add_event(e);
      return Attribution::kDone;
    }
    default:
      return Attribution::kDone;
  }
}

BlockMap BlockMapBuilder::finish() {
  // Forks in RelFork order: each entry's fork index becomes its rank, and
  // the entry a compact key (rank, block) above bit 0 (no_read).
  std::vector<std::uint32_t> by_order(forks_.size());
  for (std::uint32_t i = 0; i < by_order.size(); ++i) by_order[i] = i;
  std::sort(by_order.begin(), by_order.end(),
            [&](std::uint32_t a, std::uint32_t b) { return forks_[a] < forks_[b]; });
  std::vector<std::uint32_t> rank(forks_.size());
  for (std::uint32_t r = 0; r < by_order.size(); ++r) rank[by_order[r]] = r;
  std::uint64_t blocks_or = 0;
  for (const std::uint64_t e : refs_) blocks_or |= (e >> 1) & 0xFFFFFFFFu;
  const int block_bits = bit_width_of(blocks_or);
  const int rank_bits = bit_width_of(forks_.empty() ? 0 : forks_.size() - 1);
  for (std::uint64_t& e : refs_) {
    const std::uint64_t block = (e >> 1) & 0xFFFFFFFFu;
    e = (std::uint64_t{rank[e >> 33]} << block_bits | block) << 1 | (e & 1);
  }
  std::vector<std::uint64_t> tmp(refs_.size());
  radix_sort_above_bit0(refs_, tmp, block_bits + rank_bits);
  map_.blocks.clear();
  const std::uint64_t block_mask = (std::uint64_t{1} << block_bits) - 1;
  std::uint64_t last_key = ~std::uint64_t{0};
  for (const std::uint64_t e : refs_) {
    const std::uint64_t key = e >> 1;
    if (key == last_key) continue;  // first reference wins
    const RelFork& fork = forks_[by_order[key >> block_bits]];
    if (map_.blocks.empty() || map_.blocks.back().fork != fork) map_.blocks.push_back({fork, {}});
    map_.blocks.back().blocks.push_back(
        {static_cast<std::uint32_t>(key & block_mask), (e & 1) != 0});
    last_key = key;
  }
  refs_.clear();
  return std::move(map_);
}

bool join_crossing(const BlockMap& previous, const BlockMap* next, BlockMapBuilder& into,
                   std::string& reason) {
  if (!previous.head) return true;
  const HeadFragment& head = *previous.head;
  if (next && next->starts_with_overwrite) return true;  // the record was abandoned
  Bytes joined = head.bytes;
  if (next && next->tail && head.bytes.size() == head.available) {
    if (head.tot_len < head.available || next->tail->rem_len != head.tot_len - head.available) {
      reason = "the record at " + format_lsn(head.lsn) + " (" + std::to_string(head.tot_len) +
               " bytes, " + std::to_string(head.available) +
               " in its segment) does not continue in the next segment (" +
               std::to_string(next->tail->rem_len) + " bytes there)";
      return false;
    }
    joined.insert(joined.end(), next->tail->bytes.begin(), next->tail->bytes.end());
  }
  switch (into.attribute_record(head.lsn, joined, reason)) {
    case Attribution::kDone:
      return true;
    case Attribution::kNeedMore:
      reason = "the record at " + format_lsn(head.lsn) + " crosses into the next segment" +
               (next ? std::string(" and its parts needed are beyond the bytes kept")
                     : std::string(", whose map is not available"));
      return false;
    case Attribution::kFailed:
      return false;
  }
  return false;
}

Bytes encode_block_map(const BlockMap& map) {
  Bytes out(kMagic, kMagic + 4);
  out.push_back(kVersion);
  out.push_back(static_cast<std::uint8_t>((map.complete ? kFlagComplete : 0) |
                                          (map.starts_with_overwrite ? kFlagOverwrite : 0)));
  out.push_back(static_cast<std::uint8_t>(map.pg_major));
  out.push_back(0);
  out.resize(out.size() + 8);
  store_le<std::uint64_t>(out.data() + out.size() - 8, map.segment_xxh3);
  put_varint(out, map.segment_start);
  const std::string reason =
      map.complete ? std::string() : map.incomplete_reason.substr(0, kMaxReason);
  put_varint(out, reason.size());
  out.insert(out.end(), reason.begin(), reason.end());
  put_varint(out, map.blocks.size());
  for (const ForkBlocks& group : map.blocks) {
    put_varint(out, group.fork.spc);
    put_varint(out, group.fork.db);
    put_varint(out, group.fork.rel);
    put_varint(out, group.fork.fork);
    put_varint(out, group.blocks.size());
    std::uint64_t next = 0;  // smallest block number the next entry may have
    for (const ChangedBlock& b : group.blocks) {
      put_varint(out, ((b.block - next) << 1) | (b.no_read ? 1 : 0));
      next = static_cast<std::uint64_t>(b.block) + 1;
    }
  }
  put_varint(out, map.events.size());
  for (const MapEvent& e : map.events) {
    put_varint(out, static_cast<std::uint8_t>(e.kind));
    put_varint(out, e.lsn - map.segment_start);
    for (std::uint32_t v : {e.rel.spc, e.rel.db, e.rel.rel, std::uint32_t(e.rel.fork), e.src_spc,
                            e.src_db, e.flags, e.blocks})
      put_varint(out, v);
  }
  out.push_back(map.head ? 1 : 0);
  if (map.head) {
    put_varint(out, map.head->lsn - map.segment_start);
    put_varint(out, map.head->tot_len);
    put_varint(out, map.head->available);
    put_fragment_bytes(out, map.head->bytes);
  }
  out.push_back(map.tail ? 1 : 0);
  if (map.tail) {
    put_varint(out, map.tail->rem_len);
    put_fragment_bytes(out, map.tail->bytes);
  }
  return out;
}

BlockMap decode_block_map(ByteView bytes, const std::string& what) {
  Reader in(bytes, what);
  for (char c : kMagic)
    if (in.byte() != static_cast<std::uint8_t>(c)) in.fail("bad magic");
  if (in.byte() != kVersion) in.fail("unknown version");
  const std::uint8_t flags = in.byte();
  if (flags & ~(kFlagComplete | kFlagOverwrite)) in.fail("unknown flags");
  BlockMap map;
  map.complete = flags & kFlagComplete;
  map.starts_with_overwrite = flags & kFlagOverwrite;
  map.pg_major = in.byte();
  if (in.byte() != 0) in.fail("reserved byte set");
  for (int i = 0; i < 8; ++i) map.segment_xxh3 |= static_cast<std::uint64_t>(in.byte()) << (8 * i);
  map.segment_start = in.varint();
  const Bytes reason = in.take(in.varint(), kMaxReason);
  map.incomplete_reason.assign(reason.begin(), reason.end());
  if (!map.complete && map.incomplete_reason.empty()) map.incomplete_reason = "no reason given";
  const std::uint64_t groups = in.varint();
  for (std::uint64_t g = 0; g < groups; ++g) {
    ForkBlocks group;
    group.fork.spc = in.u32();
    group.fork.db = in.u32();
    group.fork.rel = in.u32();
    const std::uint32_t fork = in.u32();
    if (fork > kMaxFork) in.fail("fork number " + std::to_string(fork));
    group.fork.fork = static_cast<std::uint8_t>(fork);
    if (!map.blocks.empty() && !(map.blocks.back().fork < group.fork)) in.fail("forks not sorted");
    const std::uint64_t count = in.varint();
    if (count > bytes.size()) in.fail("block count too large");
    std::uint64_t next = 0;
    group.blocks.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint64_t v = in.varint();
      const std::uint64_t block = next + (v >> 1);
      if (block > 0xFFFFFFFFu || block < next) in.fail("block number out of range");
      group.blocks.push_back({static_cast<std::uint32_t>(block), (v & 1) != 0});
      next = block + 1;
    }
    map.blocks.push_back(std::move(group));
  }
  const std::uint64_t events = in.varint();
  for (std::uint64_t i = 0; i < events; ++i) {
    const std::uint64_t kind = in.varint();
    if (kind == 0 || kind > kMaxMapEventKind) in.fail("unknown event kind " + std::to_string(kind));
    MapEvent e;
    e.kind = static_cast<MapEventKind>(kind);
    e.lsn = map.segment_start + in.varint();
    e.rel.spc = in.u32();
    e.rel.db = in.u32();
    e.rel.rel = in.u32();
    const std::uint32_t fork = in.u32();
    if (fork > kMaxFork) in.fail("fork number " + std::to_string(fork));
    e.rel.fork = static_cast<std::uint8_t>(fork);
    e.src_spc = in.u32();
    e.src_db = in.u32();
    e.flags = in.u32();
    e.blocks = in.u32();
    map.events.push_back(e);
  }
  const std::uint8_t has_head = in.byte();
  if (has_head > 1) in.fail("bad head flag");
  if (has_head) {
    HeadFragment head;
    head.lsn = map.segment_start + in.varint();
    head.tot_len = in.u32();
    head.available = in.u32();
    head.bytes = in.take(in.varint(), kFragmentCap);
    if (head.bytes.size() > head.available) in.fail("head fragment longer than its record part");
    map.head = std::move(head);
  }
  const std::uint8_t has_tail = in.byte();
  if (has_tail > 1) in.fail("bad tail flag");
  if (has_tail) {
    TailFragment tail;
    tail.rem_len = in.u32();
    tail.bytes = in.take(in.varint(), kFragmentCap);
    if (tail.bytes.size() > tail.rem_len) in.fail("tail fragment longer than the continuation");
    map.tail = std::move(tail);
  }
  if (!in.at_end()) in.fail("trailing bytes");
  return map;
}

}  // namespace walvault::pg
