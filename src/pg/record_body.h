// Private to src/pg: the layout of a WAL record's body (the bytes after the
// 24-byte XLogRecord header), shared by the segment summary (wal_segment.cpp)
// and the block maps (block_map.cpp) so that both read it one way.
//
// Body (xlogrecord.h, DecodeXLogRecord in xlogreader.c; 13-18): fragment
// headers, then the block data in block order, then the main data.
//   block header: u8 id (0..32, strictly ascending), u8 fork_flags (fork in
//     the low 4 bits, 0x10 HAS_IMAGE, 0x20 HAS_DATA, 0x40 WILL_INIT,
//     0x80 SAME_REL), u16 data_length;
//     if HAS_IMAGE: u16 bimg_len, u16 hole_offset, u8 bimg_info, and u16
//       hole_length when bimg_info has HAS_HOLE and a compression bit
//       (13-14: 0x02; 15+: 0x04|0x08|0x10); APPLY is 0x04 (13-14), 0x02 (15+);
//     unless SAME_REL: RelFileNode/RelFileLocator (u32 spc, db, rel);
//     u32 block number.
//   253 ORIGIN: u16; 252 TOPLEVEL_XID (14+): u32;
//   255 DATA_SHORT: u8 main length; 254 DATA_LONG: u32 main length (last).
#pragma once

#include <cstdint>
#include <optional>

#include "core/bytes.h"

namespace walvault::pg::detail {

struct BlockRefHeader {
  std::uint8_t id = 0;
  std::uint8_t fork = 0;
  bool will_init = false;
  bool image_applied = false;  // a full-page image that redo restores
  std::uint32_t spc = 0, db = 0, rel = 0;
  std::uint32_t block = 0;
};

enum class BodyStatus { kOk, kNeedMore, kMalformed };

struct BodyLayout {
  BodyStatus status = BodyStatus::kMalformed;
  std::uint64_t main_offset = 0;  // in the body
  std::uint64_t main_len = 0;
};

// Walks the fragment headers of a body of `body_len` bytes of which `body`
// holds the first body.size() (a prefix when smaller). Calls on_block for
// each block reference, in order, as soon as its header is complete.
// kNeedMore: the headers run past the prefix. kMalformed: they do not add up
// (bad id, ids out of order, SAME_REL without a previous relation, lengths).
template <typename OnBlock>
BodyLayout walk_record_body(ByteView body, std::uint64_t body_len, int pg_major,
                            OnBlock&& on_block);

// The fields of a commit/abort (prepared) main data that readers need.
struct XactEndFields {
  std::uint64_t rels_offset = 0;  // in the main data: `rels_count` RelFileLocators
  std::uint32_t rels_count = 0;
  std::optional<std::uint32_t> twophase_xid;
};
// std::nullopt when the optional fields do not add up (ParseCommitRecord /
// ParseAbortRecord order: xinfo, dbinfo, subxacts, rels, dropped stats (15+),
// invals (commit only), twophase).
std::optional<XactEndFields> parse_xact_end(ByteView main, std::uint8_t info, bool commit,
                                            int pg_major);

// --- implementation of the template ---

// XLogRecord's fixed header, the resource managers both decoders look at
// (rmgrlist.h, the same for 13-18) and the part of xl_info they own.
inline constexpr std::size_t kRecordHeaderSize = 24;
inline constexpr std::uint8_t kRmXlog = 0;
inline constexpr std::uint8_t kRmXact = 1;
inline constexpr std::uint8_t kInfoOpMask = 0xF0;  // ~XLR_INFO_MASK

// Transaction-end record kinds (xl_info & kXactOpMask of RM_XACT_ID records, xact.h),
// read by the segment summary and the block maps.
inline constexpr std::uint8_t kXactOpMask = 0x70;
inline constexpr std::uint8_t kXactCommit = 0x00;
inline constexpr std::uint8_t kXactAbort = 0x20;
inline constexpr std::uint8_t kXactCommitPrepared = 0x30;
inline constexpr std::uint8_t kXactAbortPrepared = 0x40;

inline constexpr std::uint8_t kMaxBlockId = 32;
inline constexpr std::uint8_t kBlockIdDataShort = 255;
inline constexpr std::uint8_t kBlockIdDataLong = 254;
inline constexpr std::uint8_t kBlockIdOrigin = 253;
inline constexpr std::uint8_t kBlockIdToplevelXid = 252;  // PostgreSQL 14+
inline constexpr std::uint8_t kBlockForkMask = 0x0F;
inline constexpr std::uint8_t kBlockHasImage = 0x10;
inline constexpr std::uint8_t kBlockWillInit = 0x40;
inline constexpr std::uint8_t kBlockSameRel = 0x80;
inline constexpr std::uint8_t kImageHasHole = 0x01;
inline constexpr std::uint8_t kImageCompressedPg13 = 0x02;
inline constexpr std::uint8_t kImageCompressedPg15 = 0x04 | 0x08 | 0x10;
inline constexpr std::uint8_t kImageApplyPg13 = 0x04;
inline constexpr std::uint8_t kImageApplyPg15 = 0x02;
inline constexpr std::size_t kRelFileLocatorSize = 12;

template <typename OnBlock>
BodyLayout walk_record_body(ByteView body, std::uint64_t body_len, int pg_major,
                            OnBlock&& on_block) {
  const bool pg15 = pg_major >= 15;
  const std::uint8_t compressed_mask = pg15 ? kImageCompressedPg15 : kImageCompressedPg13;
  const std::uint8_t apply_mask = pg15 ? kImageApplyPg15 : kImageApplyPg13;
  const bool prefix = body.size() < body_len;
  BodyLayout out;
  std::uint64_t pos = 0;
  std::uint64_t payload = 0;  // block data + main data announced so far
  const std::uint8_t* at = nullptr;
  // Consumes n header bytes; false when the body (or the prefix) is too short.
  auto take = [&](std::size_t n) {
    if (body_len - pos < n || body.size() - pos < n) {
      out.status = prefix && body_len - pos >= n ? BodyStatus::kNeedMore : BodyStatus::kMalformed;
      return false;
    }
    at = body.data() + pos;
    pos += n;
    return true;
  };
  int last_id = -1;
  bool have_rel = false;
  BlockRefHeader ref;
  while (body_len - pos > payload) {
    if (!take(1)) return out;
    const std::uint8_t id = *at;
    if (id == kBlockIdDataShort || id == kBlockIdDataLong) {
      if (!take(id == kBlockIdDataShort ? 1 : 4)) return out;
      out.main_len = id == kBlockIdDataShort ? *at : load_le<std::uint32_t>(at);
      payload += out.main_len;
      break;
    }
    if (id == kBlockIdOrigin) {
      if (!take(2)) return out;
    } else if (id == kBlockIdToplevelXid && pg_major >= 14) {
      if (!take(4)) return out;
    } else if (id <= kMaxBlockId && static_cast<int>(id) > last_id) {
      last_id = id;
      if (!take(3)) return out;
      const std::uint8_t fork_flags = at[0];
      payload += load_le<std::uint16_t>(at + 1);
      ref.id = id;
      ref.fork = fork_flags & kBlockForkMask;
      ref.will_init = (fork_flags & kBlockWillInit) != 0;
      ref.image_applied = false;
      if (fork_flags & kBlockHasImage) {
        if (!take(5)) return out;
        payload += load_le<std::uint16_t>(at);
        const std::uint8_t bimg_info = at[4];
        ref.image_applied = (bimg_info & apply_mask) != 0;
        if ((bimg_info & kImageHasHole) && (bimg_info & compressed_mask) && !take(2)) return out;
      }
      if (!(fork_flags & kBlockSameRel)) {
        if (!take(kRelFileLocatorSize)) return out;
        ref.spc = load_le<std::uint32_t>(at);
        ref.db = load_le<std::uint32_t>(at + 4);
        ref.rel = load_le<std::uint32_t>(at + 8);
        have_rel = true;
      } else if (!have_rel) {
        return out;  // SAME_REL on the first block
      }
      if (!take(4)) return out;
      ref.block = load_le<std::uint32_t>(at);
      on_block(ref);
    } else {
      return out;
    }
  }
  if (body_len - pos != payload) return out;
  out.status = BodyStatus::kOk;
  out.main_offset = body_len - out.main_len;
  return out;
}

}  // namespace walvault::pg::detail
