// Writes synthetic WAL segments the way PostgreSQL lays them out, so decoder
// tests can place records exactly where the interesting cases happen: split
// headers, multi-page records, a leading continuation, a record running off
// the segment end. Records get correct CRCs and prev-links; page headers are
// written as the write position enters each page.
#pragma once

#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "pg/wal_name.h"

namespace walvault::pg::testing {

// Resource managers and opcodes used by the tests.
inline constexpr std::uint8_t kRmXlog = 0;
inline constexpr std::uint8_t kRmXact = 1;
inline constexpr std::uint8_t kRmHeap = 10;
inline constexpr std::uint8_t kXlogSwitch = 0x40;
inline constexpr std::uint8_t kXlogRestorePoint = 0x70;
inline constexpr std::uint8_t kXactCommit = 0x00;
inline constexpr std::uint8_t kXactAbort = 0x20;
inline constexpr std::uint8_t kXactCommitPrepared = 0x30;
inline constexpr std::uint8_t kXactAbortPrepared = 0x40;
inline constexpr std::uint8_t kXactHasInfo = 0x80;

inline constexpr std::size_t kRecordHeaderSize = 24;

class SegmentBuilder {
 public:
  struct Options {
    std::uint16_t magic = 0xD110;  // PostgreSQL 15
    TimeLineId timeline = 1;
    std::uint64_t segno = 3;
    std::uint32_t segment_size = 1u << 20;
    std::uint32_t page_size = 8192;
    std::uint64_t system_id = 7345678901234567890ULL;
  };

  explicit SegmentBuilder(Options options);

  // Must come first if used: the segment opens with the last `length` bytes of
  // a record that began in the previous segment.
  void leading_continuation(std::uint32_t length);
  // The same with the continuation's actual bytes (the rest of a record).
  void leading_continuation(const Bytes& tail);

  // Appends a record (header + `body`) at the next 8-byte boundary and returns
  // its LSN. Bytes past the segment end are dropped (a record running off the
  // end). `prev` overrides the prev-link.
  Lsn add_record(std::uint8_t rmid, std::uint8_t info, std::uint32_t xid, const Bytes& body);
  Lsn add_record_with_prev(std::uint8_t rmid, std::uint8_t info, std::uint32_t xid,
                           const Bytes& body, Lsn prev);

  // Appends a filler record so that the next record starts at segment offset
  // `offset`, which must lie on the current page at least 32 bytes ahead.
  void pad_to(std::size_t offset);

  // Segment offset where the next record would start (before alignment and
  // before any page header).
  std::size_t position() const { return pos_; }
  Lsn start_lsn() const { return options_.segno * options_.segment_size; }
  Lsn lsn_at(std::size_t offset) const { return start_lsn() + offset; }
  std::string file_name() const;
  const Options& options() const { return options_; }

  Bytes& bytes() { return bytes_; }

 private:
  // Writes record bytes, starting a new page (with continuation flag and
  // remaining length `rem` when `continuation`) at each page boundary.
  void write(const std::uint8_t* data, std::size_t size, bool continuation);
  void write_page_header(std::uint16_t info, std::uint32_t rem_len);

  Options options_;
  Bytes bytes_;
  std::size_t pos_ = 0;
  Lsn prev_ = 0;
};

// Record body: fragment headers, then the main-data header, then fragment
// payloads, then the main data (layout of xlogrecord.h).
Bytes make_body(const Bytes& fragment_headers, const Bytes& fragment_payload, const Bytes& main);
inline Bytes make_body(const Bytes& main) { return make_body({}, {}, main); }

// Main data of a commit/abort: xact_time (PostgreSQL epoch) + `extra` bytes.
Bytes xact_main(std::int64_t unix_us, std::size_t extra = 0);
// Main data of a restore point: rp_time + char[64] name.
Bytes restore_point_main(std::int64_t unix_us, const std::string& name);

}  // namespace walvault::pg::testing
