// PostgreSQL WAL file names and positions: LSNs, timelines, segment numbers.
//
// A segment name is 24 upper-case hex digits: timeline (8), then the segment
// number split as segno / segments_per_xlogid (8) and segno % segments_per_xlogid
// (8), where segments_per_xlogid = 2^32 / segment size. Other archived files:
// "<8 hex tli>.history", "<24 hex>.<8 hex offset>.backup", "<24 hex>.partial".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace walvault::pg {

using Lsn = std::uint64_t;
using TimeLineId = std::uint32_t;

// "16/B374D848" form, upper-case hex as PostgreSQL prints it.
std::string format_lsn(Lsn lsn);
std::optional<Lsn> parse_lsn(std::string_view text);

enum class WalFileKind { kSegment, kPartial, kHistory, kBackupHistory };

struct WalFileName {
  WalFileKind kind = WalFileKind::kSegment;
  TimeLineId timeline = 0;
  // For segment, partial and backup-history files: the two 8-digit halves of
  // the segment number as written in the name (independent of segment size).
  std::uint32_t log = 0;
  std::uint32_t seg = 0;
  std::string name;  // the file name as given (no directory)
};

// Parses a bare file name (no directory). std::nullopt for anything else,
// including lower-case hex and timeline 0.
std::optional<WalFileName> parse_wal_file_name(std::string_view name);

// Segment number of a segment-like name for the given segment size
// (a power of two from 1 MiB to 1 GiB).
std::uint64_t segment_number(const WalFileName& name, std::uint32_t segment_size);
std::string segment_file_name(TimeLineId timeline, std::uint64_t segno, std::uint32_t segment_size);
inline Lsn segment_start_lsn(std::uint64_t segno, std::uint32_t segment_size) {
  return segno * segment_size;
}

bool is_valid_segment_size(std::uint64_t size);

}  // namespace walvault::pg
