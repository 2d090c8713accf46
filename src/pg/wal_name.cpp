#include "pg/wal_name.h"

#include <cstdio>

namespace walvault::pg {
namespace {

constexpr std::size_t kSegmentNameLength = 24;
constexpr std::size_t kHexWordLength = 8;
constexpr std::uint64_t kLsnSpacePerXlogId = 0x100000000ULL;

// Value of one hex digit; `upper_only` rejects a-f because PostgreSQL names
// WAL files with upper-case digits only and a lower-case name is not one.
int hex_digit(char c, bool upper_only) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (!upper_only && c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Parses 1..8 hex digits into a 32-bit word.
std::optional<std::uint32_t> parse_hex_word(std::string_view text, bool upper_only) {
  if (text.empty() || text.size() > kHexWordLength) return std::nullopt;
  std::uint32_t value = 0;
  for (char c : text) {
    int digit = hex_digit(c, upper_only);
    if (digit < 0) return std::nullopt;
    value = value << 4 | static_cast<std::uint32_t>(digit);
  }
  return value;
}

// Fills timeline/log/seg from the 24-digit segment part of a name.
bool parse_segment_part(std::string_view hex, WalFileName& out) {
  if (hex.size() != kSegmentNameLength) return false;
  auto tli = parse_hex_word(hex.substr(0, 8), true);
  auto log = parse_hex_word(hex.substr(8, 8), true);
  auto seg = parse_hex_word(hex.substr(16, 8), true);
  if (!tli || !log || !seg || *tli == 0) return false;
  out.timeline = *tli;
  out.log = *log;
  out.seg = *seg;
  return true;
}

std::uint64_t segments_per_xlogid(std::uint32_t segment_size) {
  return kLsnSpacePerXlogId / segment_size;
}

}  // namespace

std::string format_lsn(Lsn lsn) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                static_cast<unsigned>(lsn & 0xFFFFFFFFu));
  return buf;
}

std::optional<Lsn> parse_lsn(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto high = parse_hex_word(text.substr(0, slash), false);
  auto low = parse_hex_word(text.substr(slash + 1), false);
  if (!high || !low) return std::nullopt;
  return static_cast<Lsn>(*high) << 32 | *low;
}

std::optional<WalFileName> parse_wal_file_name(std::string_view name) {
  constexpr std::string_view kHistorySuffix = ".history";
  constexpr std::string_view kPartialSuffix = ".partial";
  constexpr std::string_view kBackupSuffix = ".backup";

  WalFileName out;
  out.name = std::string(name);
  if (name.size() == kSegmentNameLength) {
    out.kind = WalFileKind::kSegment;
    if (!parse_segment_part(name, out)) return std::nullopt;
    return out;
  }
  if (name.size() == kSegmentNameLength + kPartialSuffix.size() && name.ends_with(kPartialSuffix)) {
    out.kind = WalFileKind::kPartial;
    if (!parse_segment_part(name.substr(0, kSegmentNameLength), out)) return std::nullopt;
    return out;
  }
  if (name.size() == kHexWordLength + kHistorySuffix.size() && name.ends_with(kHistorySuffix)) {
    out.kind = WalFileKind::kHistory;
    auto tli = parse_hex_word(name.substr(0, kHexWordLength), true);
    if (!tli || *tli == 0) return std::nullopt;
    out.timeline = *tli;
    return out;
  }
  // "<24 hex>.<8 hex start offset>.backup"
  if (name.size() == kSegmentNameLength + 1 + kHexWordLength + kBackupSuffix.size() &&
      name.ends_with(kBackupSuffix) && name[kSegmentNameLength] == '.') {
    out.kind = WalFileKind::kBackupHistory;
    if (!parse_segment_part(name.substr(0, kSegmentNameLength), out)) return std::nullopt;
    if (!parse_hex_word(name.substr(kSegmentNameLength + 1, kHexWordLength), true)) {
      return std::nullopt;
    }
    return out;
  }
  return std::nullopt;
}

std::uint64_t segment_number(const WalFileName& name, std::uint32_t segment_size) {
  return static_cast<std::uint64_t>(name.log) * segments_per_xlogid(segment_size) + name.seg;
}

std::string segment_file_name(TimeLineId timeline, std::uint64_t segno,
                              std::uint32_t segment_size) {
  const std::uint64_t per_id = segments_per_xlogid(segment_size);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08X%08X%08X", static_cast<unsigned>(timeline),
                static_cast<unsigned>(segno / per_id), static_cast<unsigned>(segno % per_id));
  return buf;
}

bool is_valid_segment_size(std::uint64_t size) {
  constexpr std::uint64_t kMin = 1ULL << 20;
  constexpr std::uint64_t kMax = 1ULL << 30;
  return size >= kMin && size <= kMax && (size & (size - 1)) == 0;
}

}  // namespace walvault::pg
