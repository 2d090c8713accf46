#include "pg/page_checksum.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace walvault::pg {

namespace {

constexpr std::size_t kColumns = 32;
constexpr std::size_t kRows = kPageSize / (sizeof(std::uint32_t) * kColumns);
constexpr std::uint32_t kPrime = 16777619;
constexpr std::size_t kChecksumOffset = 8;  // after pd_lsn

// The per-column seeds of PostgreSQL's page checksum (part of the format).
constexpr std::array<std::uint32_t, kColumns> kSeeds = {
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756};

inline std::uint32_t mix(std::uint32_t hash, std::uint32_t value) {
  const std::uint32_t t = hash ^ value;
  return (t * kPrime) ^ (t >> 17);
}

}  // namespace

std::uint16_t page_checksum(ByteView page, std::uint32_t block_number) {
  std::array<std::uint32_t, kColumns * kRows> words;
  std::memcpy(words.data(), page.data(), kPageSize);
  std::memset(reinterpret_cast<std::uint8_t*>(words.data()) + kChecksumOffset, 0, 2);
  std::array<std::uint32_t, kColumns> sums = kSeeds;
  for (std::size_t row = 0; row < kRows; ++row)
    for (std::size_t col = 0; col < kColumns; ++col)
      sums[col] = mix(sums[col], words[row * kColumns + col]);
  for (int round = 0; round < 2; ++round)
    for (std::size_t col = 0; col < kColumns; ++col) sums[col] = mix(sums[col], 0);
  std::uint32_t result = 0;
  for (std::uint32_t s : sums) result ^= s;
  result ^= block_number;
  return static_cast<std::uint16_t>(result % 65535 + 1);
}

std::uint64_t page_lsn(ByteView page) {
  std::uint32_t high, low;  // pd_lsn: xlogid, then xrecoff
  std::memcpy(&high, page.data(), 4);
  std::memcpy(&low, page.data() + 4, 4);
  return (std::uint64_t{high} << 32) | low;
}

std::uint16_t page_stored_checksum(ByteView page) {
  std::uint16_t value;
  std::memcpy(&value, page.data() + kChecksumOffset, 2);
  return value;
}

bool page_is_zero(ByteView page) {
  return std::all_of(page.begin(), page.begin() + kPageSize, [](std::uint8_t b) { return b == 0; });
}

PageVerdict check_page(ByteView page, std::uint32_t block_number, std::uint64_t backup_start_lsn) {
  if (page_is_zero(page)) return PageVerdict::kSkippedNew;
  if (page_lsn(page) >= backup_start_lsn) return PageVerdict::kSkippedRecent;
  return page_checksum(page, block_number) == page_stored_checksum(page) ? PageVerdict::kValid
                                                                         : PageVerdict::kBad;
}

std::optional<std::uint32_t> checksummed_segment(std::string_view path, bool in_tablespace) {
  if (!in_tablespace && !path.starts_with("global/") && !path.starts_with("base/"))
    return std::nullopt;
  const std::size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (name == "pg_control" || name == "pg_filenode.map" || name == "PG_VERSION" ||
      name.starts_with("pg_internal.init"))
    return std::nullopt;
  const std::size_t dot = name.find('.');
  if (dot == std::string_view::npos) return 0;
  const std::string_view digits = name.substr(dot + 1);
  if (digits.empty() || digits.size() > 6 || digits.front() == '0' ||
      digits.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  std::uint32_t segment = 0;
  for (char c : digits) segment = segment * 10 + static_cast<std::uint32_t>(c - '0');
  return segment;
}

}  // namespace walvault::pg
