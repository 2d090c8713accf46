// The two CRC-32C implementations behind crc32c_update(), exposed so tests
// can prove they agree. Not part of the pg library's public surface.
#pragma once

#include <cstdint>

#include "core/bytes.h"

namespace walvault::pg::detail {

// Table-driven (slice-by-8), works everywhere.
std::uint32_t crc32c_update_portable(std::uint32_t crc, ByteView data);

// True when this CPU has the SSE4.2 crc32 instruction (checked once).
bool crc32c_hardware_available();

// SSE4.2 crc32 instruction; only call when crc32c_hardware_available().
std::uint32_t crc32c_update_hardware(std::uint32_t crc, ByteView data);

}  // namespace walvault::pg::detail
