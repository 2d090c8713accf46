// Implementation notes
//
// The decoder mirrors what PostgreSQL's xlogreader does when pg_waldump is
// pointed at a single segment file:
//   * The first page may begin with the tail of a record that started in an
//     earlier segment (XLP_FIRST_IS_CONTRECORD, xlp_rem_len bytes, possibly
//     over several pages); it is skipped the way XLogFindNextRecord skips it.
//   * A record starts on an 8-byte boundary. Only its first 4 bytes (xl_tot_len)
//     are guaranteed to be on the starting page: the 24-byte header itself may
//     continue on the next page. Every continuation page must be a valid page
//     of this segment carrying XLP_FIRST_IS_CONTRECORD with xlp_rem_len equal
//     to the bytes still missing.
//   * A record is accepted when its prev-link is right and its CRC matches;
//     the first invalid record ends the segment's data, as it ends recovery.
//   * A continuation page flagged XLP_FIRST_IS_OVERWRITE_CONTRECORD means the
//     record being read was abandoned by a crash; reading restarts on that page.
// Only transaction-end and restore-point records are decoded beyond their
// header (block headers skipped to find the main data), which keeps the pass
// close to CRC speed and limits the exposure to rmgr-specific layouts. With a
// block map wanted, every valid record's block headers are read too (from the
// mapped bytes when the record is on one page, else from a copy of its first
// bytes), plus the main data of the few file-level record kinds
// (block_map.cpp); the record crossing the segment's end keeps its first
// bytes as the map's head, the continuation that starts it its first bytes
// as the map's tail.
//
// Transaction ids: first_xact_xid/last_xact_xid report the record's xl_xid.
// For COMMIT/ABORT that is the transaction's own xid; for COMMIT PREPARED and
// ROLLBACK PREPARED it is the xid of the session that ran the command (often
// 0). The xid sets (commit_xids/abort_xids) hold what recovery_target_xid
// compares instead: for the prepared records that is the prepared
// transaction's xid, found by walking the optional fields of the main data as
// PostgreSQL's ParseCommitRecord/ParseAbortRecord do (prepared_xid below). A
// prepared record whose fields do not add up is still counted for times, but
// its xid is not indexed (a planner then refuses that xid rather than promise
// it).
#include "pg/wal_segment.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "pg/record_body.h"

namespace walvault::pg {
namespace {

// XLogPageHeaderData / XLogLongPageHeaderData.
constexpr std::size_t kShortPageHeaderSize = 24;
constexpr std::size_t kLongPageHeaderSize = 40;
constexpr std::uint16_t kFirstIsContRecord = 0x0001;  // XLP_FIRST_IS_CONTRECORD
constexpr std::uint16_t kLongHeader = 0x0002;         // XLP_LONG_HEADER
constexpr std::uint16_t kFirstIsOverwriteContRecord = 0x0008;
constexpr std::uint16_t kAllPageFlags = 0x000F;  // XLP_ALL_FLAGS

// XLogRecord.
using detail::kRecordHeaderSize;
constexpr std::size_t kRecordCrcOffset = 20;
constexpr std::uint64_t kMaxAlign = 8;

// The XLOG opcodes we look at.
using detail::kRmXact;
using detail::kRmXlog;
constexpr std::uint8_t kXlogSwitch = 0x40;
constexpr std::uint8_t kXlogRestorePoint = 0x70;
constexpr std::size_t kRestorePointNameSize = 64;  // MAXFNAMELEN

constexpr std::uint32_t kMinPageSize = 1024;
constexpr std::uint32_t kMaxPageSize = 65536;

std::uint64_t max_align(std::uint64_t n) { return (n + kMaxAlign - 1) & ~(kMaxAlign - 1); }

bool is_valid_page_size(std::uint32_t size) {
  return size >= kMinPageSize && size <= kMaxPageSize && (size & (size - 1)) == 0;
}

struct PageHeader {
  std::uint16_t magic;
  std::uint16_t info;
  TimeLineId timeline;
  Lsn page_address;
  std::uint32_t rem_len;

  std::size_t size() const {
    return (info & kLongHeader) ? kLongPageHeaderSize : kShortPageHeaderSize;
  }
};

PageHeader read_page_header(const std::uint8_t* p) {
  return {load_le<std::uint16_t>(p), load_le<std::uint16_t>(p + 2), load_le<std::uint32_t>(p + 4),
          load_le<std::uint64_t>(p + 8), load_le<std::uint32_t>(p + 16)};
}

std::string hex_u16(std::uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04X", static_cast<unsigned>(v));
  return buf;
}

[[noreturn]] void reject(const WalFileName& name, const std::string& what) {
  throw Error(ErrorCode::kInvalidInput, name.name + ": " + what);
}

// Returns the main data of a record body (the bytes after the 24-byte header),
// or std::nullopt when the fragment headers do not add up to the body length.
std::optional<ByteView> find_main_data(ByteView body, int pg_major) {
  const auto layout = detail::walk_record_body(body, body.size(), pg_major, [](const auto&) {});
  if (layout.status != detail::BodyStatus::kOk) return std::nullopt;
  return body.subspan(layout.main_offset);
}

// The prepared transaction's xid in the main data of a COMMIT PREPARED or
// ROLLBACK PREPARED record (xl_xact_twophase, after the optional fields that
// precede it), or std::nullopt when the fields do not add up.
std::optional<std::uint32_t> prepared_xid(ByteView main, std::uint8_t info, bool commit,
                                          int pg_major) {
  const auto fields = detail::parse_xact_end(main, info, commit, pg_major);
  return fields ? fields->twophase_xid : std::nullopt;
}

// One record as read from the segment.
struct Record {
  std::size_t start = 0;  // offset in the segment
  std::size_t end = 0;    // offset just past its last byte
  std::array<std::uint8_t, kRecordHeaderSize> header{};
  ByteView body;  // bytes after the header; only for records we decode
  // Set by an invalid read: the record's header is complete, its prev-link
  // right, but its data runs past the end of the segment.
  bool runs_off_end = false;
  // Set by an invalid read that ran past the end of the segment, whether or
  // not the header was complete (the block map keeps such a record's head).
  bool reached_end = false;

  std::uint32_t tot_len() const { return load_le<std::uint32_t>(header.data()); }
  std::uint32_t xid() const { return load_le<std::uint32_t>(header.data() + 4); }
  Lsn prev() const { return load_le<std::uint64_t>(header.data() + 8); }
  std::uint8_t info() const { return header[16]; }
  std::uint8_t rmid() const { return header[17]; }
  std::uint32_t crc() const { return load_le<std::uint32_t>(header.data() + kRecordCrcOffset); }

  bool is_xact_end() const {
    if (rmid() != kRmXact) return false;
    const std::uint8_t op = info() & detail::kXactOpMask;
    return op == detail::kXactCommit || op == detail::kXactAbort ||
           op == detail::kXactCommitPrepared || op == detail::kXactAbortPrepared;
  }
  bool is_commit() const {
    const std::uint8_t op = info() & detail::kXactOpMask;
    return op == detail::kXactCommit || op == detail::kXactCommitPrepared;
  }
  bool is_prepared_end() const {
    const std::uint8_t op = info() & detail::kXactOpMask;
    return op == detail::kXactCommitPrepared || op == detail::kXactAbortPrepared;
  }
  bool is_restore_point() const {
    return rmid() == kRmXlog && (info() & detail::kInfoOpMask) == kXlogRestorePoint;
  }
  bool is_switch() const {
    return rmid() == kRmXlog && (info() & detail::kInfoOpMask) == kXlogSwitch;
  }
};

class SegmentDecoder {
 public:
  SegmentDecoder(ByteView segment, const SegmentHeader& header, BlockMapBuilder* map)
      : map_(map),
        data_(segment.data()),
        header_(header),
        page_size_(header.page_size),
        pg_major_(pg_major_for_page_magic(header.magic).value_or(0)) {
    if (is_valid_page_size(page_size_) && is_valid_segment_size(header.segment_size)) {
      const std::size_t usable = std::min<std::size_t>(segment.size(), header.segment_size);
      limit_ = usable / page_size_ * page_size_;
    }
  }

  SegmentSummary run() {
    decode();
    summary_.commit_xids = XidSet::from_xids(std::move(commit_xids_));
    summary_.abort_xids = XidSet::from_xids(std::move(abort_xids_));
    summary_.xids_indexed = true;
    return summary_;
  }

 private:
  enum class ReadStatus { kOk, kInvalid, kOverwritten };

  void decode() {
    if (limit_ == 0 || pg_major_ == 0) return map_incomplete("the segment has no readable pages");
    if (map_) note_first_page();
    auto first = first_record_offset();
    if (!first) {
      // Either one record continues through every page, or a page is bad.
      for (std::size_t index = 0; index * page_size_ < limit_; ++index)
        if (!page_header(index))
          return map_incomplete("page " + std::to_string(index) + " is invalid");
      return;
    }
    std::size_t offset = *first;
    // Start of the previous record (null: unknown, for the first). A pointer,
    // not std::optional: GCC's -Wmaybe-uninitialized misreads the optional here.
    Lsn prev_lsn = 0;
    const Lsn* prev = nullptr;
    while (true) {
      if (offset % page_size_ == 0) {
        // The previous record ended exactly at a page end: the next one starts
        // after this page's header, and the page must not claim a continuation.
        auto page = page_header(offset / page_size_);
        if (!page || (page->info & kFirstIsContRecord)) {
          map_incomplete("decoding stopped at " + format_lsn(lsn_at(offset)) + ": bad page");
          break;
        }
        offset += page->size();
      }
      Record record;
      const ReadStatus status = read_record(offset, prev, record);
      if (status == ReadStatus::kOverwritten) {
        offset = record.end;
        prev = nullptr;
        continue;
      }
      if (status == ReadStatus::kInvalid) {
        note_crossing(record);
        if (map_) map_crossing(record);
        break;
      }
      if (!account(record)) {
        map_incomplete("decoding stopped at " + format_lsn(lsn_at(offset)) + ": malformed record");
        break;
      }
      if (map_) map_record(record);
      if (record.is_switch()) {
        summary_.has_switch = true;
        break;
      }
      prev_lsn = lsn_at(offset);
      prev = &prev_lsn;
      offset = max_align(record.end);
      if (offset >= limit_) break;  // the next record starts in the next segment
    }
  }

  // A COMMIT/ABORT whose header is here but whose data runs into the next
  // segment: its xid is kept apart (SegmentSummary::crossing_xact_xid). Only
  // the prev-link can be checked; a prepared record's xid is in the main data,
  // which is not here.
  void note_crossing(const Record& record) {
    if (!record.runs_off_end || !record.is_xact_end() || record.is_prepared_end()) return;
    summary_.crossing_xact_xid = record.xid();
  }

  static bool prev_link_ok(const Record& record, const Lsn* prev, Lsn lsn) {
    return prev ? record.prev() == *prev : record.prev() < lsn;
  }

  Lsn lsn_at(std::size_t offset) const { return header_.page_address + offset; }

  // The header of page `index` if it is a valid page of this segment.
  std::optional<PageHeader> page_header(std::size_t index) const {
    const std::size_t offset = index * page_size_;
    if (offset >= limit_) return std::nullopt;
    PageHeader page = read_page_header(data_ + offset);
    if (page.magic != header_.magic || (page.info & ~kAllPageFlags) != 0 ||
        page.page_address != lsn_at(offset) || page.timeline < header_.timeline) {
      return std::nullopt;
    }
    return page;
  }

  // Skips the tail of a record begun in an earlier segment.
  std::optional<std::size_t> first_record_offset() const {
    for (std::size_t index = 0; index * page_size_ < limit_; ++index) {
      auto page = page_header(index);
      if (!page) return std::nullopt;
      const std::size_t data_start = index * page_size_ + page->size();
      if (!(page->info & kFirstIsContRecord)) return data_start;
      const std::uint64_t tail = max_align(page->rem_len);
      if (tail < page_size_ - page->size()) return data_start + tail;
    }
    return std::nullopt;
  }

  // Reads the record at `offset`, checking continuation pages, the prev-link
  // and the CRC. On kOverwritten, record.end is where reading restarts.
  ReadStatus read_record(std::size_t offset, const Lsn* prev, Record& record) {
    record.start = offset;
    const std::uint32_t tot_len = load_le<std::uint32_t>(data_ + offset);
    if (tot_len < kRecordHeaderSize) return ReadStatus::kInvalid;

    std::uint32_t crc = 0xFFFFFFFFu;
    bool want_body = false;
    bool prev_ok = false;  // set once the header is complete
    std::size_t got = 0;
    std::size_t pos = offset;
    std::size_t page_end = (offset / page_size_ + 1) * page_size_;
    scratch_.clear();
    while (true) {
      const std::size_t chunk = std::min<std::size_t>(tot_len - got, page_end - pos);
      std::size_t header_part = 0;
      if (got < kRecordHeaderSize) {
        header_part = std::min(chunk, kRecordHeaderSize - got);
        std::memcpy(record.header.data() + got, data_ + pos, header_part);
        if (got + header_part == kRecordHeaderSize) {
          want_body = record.is_xact_end() || record.is_restore_point();
          prev_ok = prev_link_ok(record, prev, lsn_at(offset));
        }
      }
      const ByteView body_part(data_ + pos + header_part, chunk - header_part);
      crc = crc32c_update(crc, body_part);
      if (want_body) scratch_.insert(scratch_.end(), body_part.begin(), body_part.end());
      got += chunk;
      pos += chunk;
      if (got == tot_len) break;

      const std::size_t page_start = pos;
      auto page = page_header(page_start / page_size_);
      if (!page) {
        record.reached_end = page_start >= limit_;
        record.runs_off_end = record.reached_end && prev_ok;
        return ReadStatus::kInvalid;  // includes running past the segment end
      }
      if (page->info & kFirstIsOverwriteContRecord) {
        record.end = page_start;
        return ReadStatus::kOverwritten;
      }
      if (!(page->info & kFirstIsContRecord) || page->rem_len != tot_len - got) {
        return ReadStatus::kInvalid;
      }
      pos = page_start + page->size();
      page_end = page_start + page_size_;
    }
    record.end = pos;

    if (!prev_ok) return ReadStatus::kInvalid;
    crc = crc32c_update(crc, ByteView(record.header.data(), kRecordCrcOffset)) ^ 0xFFFFFFFFu;
    if (crc != record.crc()) return ReadStatus::kInvalid;
    record.body = scratch_;
    return ReadStatus::kOk;
  }

  // --- block map (only with a builder) ---

  void map_incomplete(const std::string& reason) {
    if (map_) map_->map().mark_incomplete(reason);
  }

  // Up to `max` bytes of record data from `offset` on, skipping the page
  // headers of the pages it continues on; `available` is how many bytes there
  // are up to the end of the segment's whole pages (or a bad page).
  Bytes gather(std::size_t offset, std::size_t max, std::size_t* available = nullptr) const {
    Bytes out;
    std::size_t total = 0;
    while (offset < limit_) {
      if (offset % page_size_ == 0) {
        auto page = page_header(offset / page_size_);
        if (!page) break;
        offset += page->size();
      }
      const std::size_t page_end = (offset / page_size_ + 1) * page_size_;
      const std::size_t n = page_end - offset;
      if (out.size() < max) {
        const std::size_t copy = std::min(n, max - out.size());
        out.insert(out.end(), data_ + offset, data_ + offset + copy);
      }
      total += n;
      if (!available && out.size() >= max) break;
      offset = page_end;
    }
    if (available) *available = total;
    return out;
  }

  // The first page: a continuation's first bytes (the previous segment's map
  // needs them), or the mark that the continued record was abandoned.
  void note_first_page() {
    auto page = page_header(0);
    if (!page) return;
    map_->map().starts_with_overwrite = (page->info & kFirstIsOverwriteContRecord) != 0;
    if (!(page->info & kFirstIsContRecord)) return;
    TailFragment tail;
    tail.rem_len = page->rem_len;
    tail.bytes = gather(page->size(), std::min<std::size_t>(page->rem_len, kFragmentCap));
    map_->map().tail = std::move(tail);
  }

  // Attributes a record from its bytes (all of them when `whole`); a
  // failure marks the map incomplete. Returns kNeedMore only for a prefix.
  Attribution attribute(Lsn lsn, ByteView bytes, bool whole) {
    std::string reason;
    Attribution result = map_->attribute_record(lsn, bytes, reason);
    if (result == Attribution::kNeedMore && whole) {
      reason = "record at " + format_lsn(lsn) + ": block headers do not add up";
      result = Attribution::kFailed;
    }
    if (result == Attribution::kFailed) map_->map().mark_incomplete(reason);
    return result;
  }

  // A valid record: its own bytes when they are on one page, else a copy of
  // its first bytes (block headers fit in kHeaderPrefix), and of all of them
  // when its main data is needed too.
  void map_record(const Record& record) {
    constexpr std::size_t kHeaderPrefix = kRecordHeaderSize + 1024;
    const Lsn lsn = lsn_at(record.start);
    const std::uint32_t tot_len = record.tot_len();
    if (record.end - record.start == tot_len) {
      attribute(lsn, ByteView(data_ + record.start, tot_len), true);
      return;
    }
    const std::size_t want = record_needs_main_data(record.rmid())
                                 ? tot_len
                                 : std::min<std::size_t>(tot_len, kHeaderPrefix);
    const Bytes prefix = gather(record.start, want);
    if (attribute(lsn, prefix, prefix.size() == tot_len) == Attribution::kNeedMore)
      attribute(lsn, gather(record.start, tot_len), true);
  }

  // The record that runs off the segment's end: attributed now when its first
  // bytes suffice, else kept as the map's head for the next segment's tail.
  void map_crossing(const Record& record) {
    HeadFragment head;
    head.lsn = lsn_at(record.start);
    std::size_t available = 0;
    head.bytes = gather(record.start, kFragmentCap, &available);
    head.available = static_cast<std::uint32_t>(available);
    const bool header_here = available >= kRecordHeaderSize;
    if (!record.reached_end || (header_here && !record.runs_off_end)) {
      map_incomplete("decoding stopped at " + format_lsn(head.lsn) +
                     ": invalid record before the end of the segment");
      return;
    }
    head.tot_len = record.tot_len();
    if (attribute(head.lsn, head.bytes, false) == Attribution::kNeedMore)
      map_->map().head = std::move(head);
  }

  // Adds a valid record to the summary; false when a record we decode turns
  // out malformed (treated like any invalid record: the data ends before it).
  bool account(const Record& record) {
    const Lsn lsn = lsn_at(record.start);
    if (record.is_xact_end()) {
      auto main = find_main_data(record.body, pg_major_);
      if (!main || main->size() < sizeof(std::int64_t)) return false;
      const std::int64_t time_us = load_le<std::int64_t>(main->data()) + kPgEpochOffsetUs;
      ++(record.is_commit() ? summary_.commits : summary_.aborts);
      summary_.min_xact_time_us = std::min(summary_.min_xact_time_us.value_or(time_us), time_us);
      summary_.max_xact_time_us = std::max(summary_.max_xact_time_us.value_or(time_us), time_us);
      if (!summary_.first_xact_xid) summary_.first_xact_xid = record.xid();
      summary_.last_xact_xid = record.xid();
      std::optional<std::uint32_t> xid = record.xid();
      if (record.is_prepared_end())
        xid = prepared_xid(*main, record.info(), record.is_commit(), pg_major_);
      if (xid) (record.is_commit() ? commit_xids_ : abort_xids_).push_back(*xid);
    } else if (record.is_restore_point()) {
      auto main = find_main_data(record.body, pg_major_);
      if (!main || main->size() < sizeof(std::int64_t) + kRestorePointNameSize) return false;
      const char* name = reinterpret_cast<const char*>(main->data() + sizeof(std::int64_t));
      summary_.restore_points.push_back({std::string(name, strnlen(name, kRestorePointNameSize)),
                                         load_le<std::int64_t>(main->data()) + kPgEpochOffsetUs,
                                         lsn});
    }
    if (summary_.records++ == 0) summary_.first_record_lsn = lsn;
    summary_.end_lsn = lsn_at(record.end);
    return true;
  }

  BlockMapBuilder* map_;  // null: no block map wanted
  const std::uint8_t* data_;
  const SegmentHeader& header_;
  const std::uint32_t page_size_;
  const int pg_major_;
  std::size_t limit_ = 0;  // bytes of whole pages we may read
  Bytes scratch_;          // reassembled body of the record being decoded
  SegmentSummary summary_;
  std::vector<std::uint32_t> commit_xids_;  // in record order, until run() sorts them
  std::vector<std::uint32_t> abort_xids_;
};

}  // namespace

std::optional<int> pg_major_for_page_magic(std::uint16_t magic) {
  switch (magic) {
    case 0xD106:
      return 13;
    case 0xD10D:
      return 14;
    case 0xD110:
      return 15;
    case 0xD113:
      return 16;
    case 0xD116:
      return 17;
    case 0xD118:
      return 18;
    default:
      return std::nullopt;
  }
}

SegmentHeader check_segment_header(ByteView segment, const WalFileName& name) {
  if (name.kind != WalFileKind::kSegment && name.kind != WalFileKind::kPartial) {
    reject(name, "not a WAL segment file name");
  }
  if (segment.size() < kLongPageHeaderSize) {
    reject(name, "file is " + std::to_string(segment.size()) +
                     " bytes, too short for a WAL long page header (40 bytes)");
  }
  const PageHeader page = read_page_header(segment.data());
  SegmentHeader out;
  out.magic = page.magic;
  out.timeline = page.timeline;
  out.page_address = page.page_address;
  out.system_id = load_le<std::uint64_t>(segment.data() + 24);
  out.segment_size = load_le<std::uint32_t>(segment.data() + 32);
  out.page_size = load_le<std::uint32_t>(segment.data() + 36);

  auto major = pg_major_for_page_magic(page.magic);
  if (!major) {
    reject(name, "page magic " + hex_u16(page.magic) + " is not a known PostgreSQL WAL magic");
  }
  out.pg_major = *major;
  if ((page.info & ~kAllPageFlags) != 0) {
    reject(name, "page info flags " + hex_u16(page.info) + " contain unknown bits");
  }
  if (!(page.info & kLongHeader)) {
    reject(name, "first page has no long header (page info flags " + hex_u16(page.info) + ")");
  }
  if (out.system_id == 0) reject(name, "system identifier in the page header is 0");
  if (!is_valid_segment_size(out.segment_size)) {
    reject(name, "segment size " + std::to_string(out.segment_size) +
                     " in the page header is not a power of two from 1 MiB to 1 GiB");
  }
  if (!is_valid_page_size(out.page_size)) {
    reject(name, "page size " + std::to_string(out.page_size) +
                     " in the page header is not a power of two from 1024 to 65536");
  }
  if (segment.size() != out.segment_size) {
    reject(name, "file is " + std::to_string(segment.size()) + " bytes, segment size is " +
                     std::to_string(out.segment_size));
  }
  const std::uint64_t segments_per_xlogid = 0x100000000ULL / out.segment_size;
  if (name.seg >= segments_per_xlogid) {
    reject(name, "segment number is out of range for " + std::to_string(out.segment_size) +
                     "-byte segments");
  }
  const Lsn expected = segment_start_lsn(segment_number(name, out.segment_size), out.segment_size);
  if (out.page_address != expected) {
    reject(name, "page address " + format_lsn(out.page_address) +
                     " does not match the file name (expected " + format_lsn(expected) + ")");
  }
  if (out.timeline == 0 || out.timeline > name.timeline) {
    reject(name, "page timeline " + std::to_string(out.timeline) +
                     " is not between 1 and the file name's timeline " +
                     std::to_string(name.timeline));
  }
  return out;
}

SegmentSummary summarize_segment(ByteView segment, const SegmentHeader& header) {
  return SegmentDecoder(segment, header, nullptr).run();
}

SegmentSummary summarize_segment(ByteView segment, const SegmentHeader& header, BlockMap& map) {
  BlockMapBuilder builder(header.pg_major, header.page_address);
  SegmentSummary summary = SegmentDecoder(segment, header, &builder).run();
  map = builder.finish();
  return summary;
}

}  // namespace walvault::pg
