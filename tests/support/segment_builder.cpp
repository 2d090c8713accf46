#include "support/segment_builder.h"

#include <algorithm>
#include <stdexcept>

#include "pg/wal_segment.h"

namespace walvault::pg::testing {
namespace {

constexpr std::uint16_t kFirstIsContRecord = 0x0001;
constexpr std::uint16_t kLongHeader = 0x0002;
constexpr std::size_t kShortPageHeaderSize = 24;
constexpr std::size_t kLongPageHeaderSize = 40;

std::size_t align8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

}  // namespace

SegmentBuilder::SegmentBuilder(Options options)
    : options_(options), bytes_(options.segment_size, 0) {
  // Some plausible record before this segment.
  prev_ = start_lsn() - 0x60;
}

std::string SegmentBuilder::file_name() const {
  return segment_file_name(options_.timeline, options_.segno, options_.segment_size);
}

void SegmentBuilder::write_page_header(std::uint16_t info, std::uint32_t rem_len) {
  std::uint8_t* p = bytes_.data() + pos_;
  const bool first = pos_ == 0;
  if (first) info |= kLongHeader;
  store_le<std::uint16_t>(p, options_.magic);
  store_le<std::uint16_t>(p + 2, info);
  store_le<std::uint32_t>(p + 4, options_.timeline);
  store_le<std::uint64_t>(p + 8, lsn_at(pos_));
  store_le<std::uint32_t>(p + 16, rem_len);
  if (first) {
    store_le<std::uint64_t>(p + 24, options_.system_id);
    store_le<std::uint32_t>(p + 32, options_.segment_size);
    store_le<std::uint32_t>(p + 36, options_.page_size);
  }
  pos_ += first ? kLongPageHeaderSize : kShortPageHeaderSize;
}

void SegmentBuilder::write(const std::uint8_t* data, std::size_t size, bool continuation) {
  std::size_t done = 0;
  while (done < size && pos_ < bytes_.size()) {
    if (pos_ % options_.page_size == 0) {
      const auto remaining = static_cast<std::uint32_t>(size - done);
      write_page_header(continuation ? kFirstIsContRecord : 0, continuation ? remaining : 0);
    }
    const std::size_t page_end = (pos_ / options_.page_size + 1) * options_.page_size;
    const std::size_t chunk = std::min(size - done, page_end - pos_);
    std::copy_n(data + done, chunk, bytes_.data() + pos_);
    done += chunk;
    pos_ += chunk;
  }
}

void SegmentBuilder::leading_continuation(std::uint32_t length) {
  leading_continuation(Bytes(length, 0xA5));
}

void SegmentBuilder::leading_continuation(const Bytes& tail) {
  if (pos_ != 0) throw std::logic_error("leading_continuation must come first");
  write(tail.data(), tail.size(), true);
}

Lsn SegmentBuilder::add_record(std::uint8_t rmid, std::uint8_t info, std::uint32_t xid,
                               const Bytes& body) {
  return add_record_with_prev(rmid, info, xid, body, prev_);
}

Lsn SegmentBuilder::add_record_with_prev(std::uint8_t rmid, std::uint8_t info, std::uint32_t xid,
                                         const Bytes& body, Lsn prev) {
  pos_ = align8(pos_);
  if (pos_ >= bytes_.size()) throw std::logic_error("segment is full");
  if (pos_ % options_.page_size == 0) write_page_header(0, 0);
  const Lsn lsn = lsn_at(pos_);

  Bytes record(kRecordHeaderSize);
  store_le<std::uint32_t>(record.data(),
                          static_cast<std::uint32_t>(kRecordHeaderSize + body.size()));
  store_le<std::uint32_t>(record.data() + 4, xid);
  store_le<std::uint64_t>(record.data() + 8, prev);
  record[16] = info;
  record[17] = rmid;
  record.insert(record.end(), body.begin(), body.end());
  std::uint32_t crc = crc32c_update(0xFFFFFFFFu, ByteView(record).subspan(kRecordHeaderSize));
  crc = crc32c_update(crc, ByteView(record.data(), 20)) ^ 0xFFFFFFFFu;
  store_le<std::uint32_t>(record.data() + 20, crc);

  write(record.data(), record.size(), true);
  prev_ = lsn;
  return lsn;
}

void SegmentBuilder::pad_to(std::size_t offset) {
  std::size_t start = align8(pos_);
  if (start % options_.page_size == 0)
    start += start == 0 ? kLongPageHeaderSize : kShortPageHeaderSize;
  const std::size_t page_end = (start / options_.page_size + 1) * options_.page_size;
  if (offset % 8 != 0 || offset < start + 32 || offset >= page_end) {
    throw std::logic_error("pad_to: offset not reachable on this page");
  }
  // Header + short main-data header + n bytes must end within [offset - 7, offset].
  const std::size_t total = offset - start;
  const std::size_t main =
      total - kRecordHeaderSize - (total - kRecordHeaderSize - 2 < 256 ? 2 : 5);
  add_record(kRmHeap, 0, 0, make_body(Bytes(main, 0x5A)));
}

Bytes make_body(const Bytes& fragment_headers, const Bytes& fragment_payload, const Bytes& main) {
  Bytes body = fragment_headers;
  if (!main.empty()) {
    if (main.size() < 256) {
      body.push_back(255);
      body.push_back(static_cast<std::uint8_t>(main.size()));
    } else {
      body.push_back(254);
      append_le<std::uint32_t>(body, static_cast<std::uint32_t>(main.size()));
    }
  }
  body.insert(body.end(), fragment_payload.begin(), fragment_payload.end());
  body.insert(body.end(), main.begin(), main.end());
  return body;
}

Bytes xact_main(std::int64_t unix_us, std::size_t extra) {
  Bytes main;
  append_le<std::int64_t>(main, unix_us - kPgEpochOffsetUs);
  main.resize(main.size() + extra, 0x11);
  return main;
}

Bytes restore_point_main(std::int64_t unix_us, const std::string& name) {
  Bytes main;
  append_le<std::int64_t>(main, unix_us - kPgEpochOffsetUs);
  Bytes field(64, 0);
  std::copy_n(name.begin(), std::min<std::size_t>(name.size(), 63), field.begin());
  main.insert(main.end(), field.begin(), field.end());
  return main;
}

}  // namespace walvault::pg::testing
