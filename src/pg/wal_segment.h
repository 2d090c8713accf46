// Reading a WAL segment's bytes: the long page header check that guards
// archive-push, and the record decoder that indexes commit/abort times and
// restore points.
//
// Layouts (PostgreSQL 13-18, all little-endian on our platforms):
//   XLogPageHeaderData (24 bytes): u16 magic, u16 info, u32 tli, u64 pageaddr,
//     u32 rem_len, 4 bytes padding.
//   XLogLongPageHeaderData (40 bytes): the above plus u64 system id,
//     u32 segment size, u32 page size (XLOG_BLCKSZ).
//   XLogRecord (24 bytes): u32 tot_len, u32 xid, u64 prev, u8 info, u8 rmid,
//     2 bytes padding, u32 crc (CRC-32C over the record after the header, then
//     the first 20 header bytes). Records are 8-byte aligned and may be split
//     across pages and segments (XLP_FIRST_IS_CONTRECORD + rem_len).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "pg/block_map.h"
#include "pg/wal_name.h"
#include "pg/xid_set.h"

namespace walvault::pg {

// PostgreSQL major version for a WAL page magic, std::nullopt if unknown.
// 13 0xD106, 14 0xD10D, 15 0xD110, 16 0xD113, 17 0xD116, 18 0xD118.
std::optional<int> pg_major_for_page_magic(std::uint16_t magic);

struct SegmentHeader {
  std::uint16_t magic = 0;
  int pg_major = 0;
  TimeLineId timeline = 0;  // xlp_tli of the first page
  Lsn page_address = 0;     // xlp_pageaddr of the first page
  std::uint64_t system_id = 0;
  std::uint32_t segment_size = 0;
  std::uint32_t page_size = 0;
};

// Checks the long page header at the start of `segment` against its file
// name: known magic, XLP_LONG_HEADER set, valid segment and page size, the
// file is exactly segment_size bytes long, page address == segno * size, and
// the page's timeline is >= 1 and <= the name's timeline (the first segment of
// a new timeline starts with pages copied from the parent timeline, which
// keep the parent's tli). Throws Error(kInvalidInput, "<name>: <what is wrong>").
SegmentHeader check_segment_header(ByteView segment, const WalFileName& name);

struct RestorePoint {
  std::string name;
  std::int64_t time_us = 0;  // Unix epoch microseconds (UTC)
  Lsn lsn = 0;               // start LSN of the restore-point record
};

// What one segment says about recovery targets. Only records that start and
// end inside this segment are decoded: a record crossing the segment's start
// or end is skipped, so the time bounds are conservative (the earliest time
// is never earlier, the latest never later, than a record truly in the
// segment).
struct SegmentSummary {
  Lsn first_record_lsn = 0;  // start of the first record beginning in this segment (0: none)
  Lsn end_lsn = 0;           // just past the last byte of the last complete record (0: none)
  std::uint64_t records = 0;
  std::uint64_t commits = 0;                     // commit + commit-prepared records
  std::uint64_t aborts = 0;                      // abort + abort-prepared records
  std::optional<std::int64_t> min_xact_time_us;  // over commit/abort records, Unix µs
  std::optional<std::int64_t> max_xact_time_us;
  // xl_xid of the first / last commit or abort. For COMMIT/ROLLBACK PREPARED
  // that is the session running the command (often 0), not the prepared xid.
  std::optional<std::uint32_t> first_xact_xid;
  std::optional<std::uint32_t> last_xact_xid;
  std::vector<RestorePoint> restore_points;
  bool has_switch = false;  // an XLOG_SWITCH record ends the segment's data

  // Transactions that end in this segment, as recovery_target_xid matches
  // them (PostgreSQL's recoveryStopsBefore/After): the record's xl_xid for
  // COMMIT and ABORT, the prepared transaction's xid (from the main data) for
  // COMMIT PREPARED and ROLLBACK PREPARED. Subtransaction xids listed in a
  // commit record are not included: PostgreSQL never stops at them.
  XidSet commit_xids;
  XidSet abort_xids;
  // xl_xid of a COMMIT or ABORT record that starts in this segment (its
  // 24-byte header, prev-link checked, is here) and ends in the next one; its
  // CRC cannot be checked from this segment alone. Such a record is in
  // neither segment's sets.
  std::optional<std::uint32_t> crossing_xact_xid;
  // False when the sets above are unknown: metadata written by a walvault
  // older than the xid index. summarize_segment() always sets it.
  bool xids_indexed = false;
};

// Decodes the records of a segment whose header check_segment_header accepted.
// Stops at the first invalid record (bad length, bad CRC or prev-link, wrong
// page address or continuation header, a commit/abort/restore point whose
// fragment headers do not add up) or at the end of the data after a switch;
// never throws on record content and never reads outside `segment`.
SegmentSummary summarize_segment(ByteView segment, const SegmentHeader& header);
// The same, and in the same pass the segment's block map (pg/block_map.h):
// complete, or marked incomplete with the reason (including a decode that
// stopped before the end of the segment's data without an XLOG_SWITCH).
SegmentSummary summarize_segment(ByteView segment, const SegmentHeader& header, BlockMap& map);

// CRC-32C (Castagnoli), as PostgreSQL's pg_crc32c: init 0xFFFFFFFF, final xor.
std::uint32_t crc32c_update(std::uint32_t crc, ByteView data);
inline std::uint32_t crc32c(ByteView data) {
  return crc32c_update(0xFFFFFFFFu, data) ^ 0xFFFFFFFFu;
}

// Microseconds between the PostgreSQL epoch (2000-01-01) and the Unix epoch.
inline constexpr std::int64_t kPgEpochOffsetUs = 946684800LL * 1000000;

}  // namespace walvault::pg
