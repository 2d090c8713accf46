// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
// every WAL record. Decoding a segment checksums all 16 MiB of it, so the
// SSE4.2 instruction is used when the CPU has it; the portable path is a
// slice-by-8 table walk. Both operate on the running (not yet inverted) value,
// exactly like PostgreSQL's COMP_CRC32C.
#include <array>

#include "pg/crc32c_internal.h"
#include "pg/wal_segment.h"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define WALVAULT_CRC32C_X86 1
#endif

namespace walvault::pg {
namespace detail {
namespace {

constexpr std::uint32_t kPolynomial = 0x82F63B78u;

using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

// tables[0] is the classic byte table; tables[k][b] is the CRC of byte b
// followed by k zero bytes, which lets eight input bytes be folded at once.
constexpr Tables make_tables() {
  Tables t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
    t[0][b] = crc;
  }
  for (std::size_t k = 1; k < t.size(); ++k) {
    for (std::uint32_t b = 0; b < 256; ++b) {
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
    }
  }
  return t;
}

constexpr Tables kTables = make_tables();

}  // namespace

std::uint32_t crc32c_update_portable(std::uint32_t crc, ByteView data) {
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  while (n >= 8) {
    std::uint32_t lo = load_le<std::uint32_t>(p) ^ crc;
    std::uint32_t hi = load_le<std::uint32_t>(p + 4);
    crc = kTables[7][lo & 0xFF] ^ kTables[6][(lo >> 8) & 0xFF] ^ kTables[5][(lo >> 16) & 0xFF] ^
          kTables[4][lo >> 24] ^ kTables[3][hi & 0xFF] ^ kTables[2][(hi >> 8) & 0xFF] ^
          kTables[1][(hi >> 16) & 0xFF] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ kTables[0][(crc ^ *p++) & 0xFF];
  return crc;
}

#if WALVAULT_CRC32C_X86

bool crc32c_hardware_available() {
  static const bool available = __builtin_cpu_supports("sse4.2");
  return available;
}

__attribute__((target("sse4.2"))) std::uint32_t crc32c_update_hardware(std::uint32_t crc,
                                                                       ByteView data) {
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
#if defined(__x86_64__)
  std::uint64_t wide = crc;
  while (n >= 8) {
    wide = _mm_crc32_u64(wide, load_le<std::uint64_t>(p));
    p += 8;
    n -= 8;
  }
  crc = static_cast<std::uint32_t>(wide);
#endif
  while (n >= 4) {
    crc = _mm_crc32_u32(crc, load_le<std::uint32_t>(p));
    p += 4;
    n -= 4;
  }
  while (n-- > 0) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}

#else

bool crc32c_hardware_available() { return false; }

std::uint32_t crc32c_update_hardware(std::uint32_t crc, ByteView data) {
  return crc32c_update_portable(crc, data);
}

#endif

}  // namespace detail

std::uint32_t crc32c_update(std::uint32_t crc, ByteView data) {
  static const auto impl = detail::crc32c_hardware_available() ? detail::crc32c_update_hardware
                                                               : detail::crc32c_update_portable;
  return impl(crc, data);
}

}  // namespace walvault::pg
