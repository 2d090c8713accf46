// Deterministic test content for any layer's tests.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/bytes.h"

namespace walvault::testing {

// `size` pseudo-random bytes, the same for the same seed (chunk content
// whose identity a test controls).
inline Bytes seeded_bytes(std::uint32_t seed, std::size_t size) {
  Bytes b(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& v : b) {
    x = x * 1103515245u + 12345u;
    v = static_cast<std::uint8_t>(x >> 24);
  }
  return b;
}

}  // namespace walvault::testing
