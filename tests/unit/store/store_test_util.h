// Helpers shared by the store tests: scratch directories, deterministic test
// bytes, and catching walvault::Error codes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "store/object_store.h"
#include "support/error_code.h"
#include "support/pg_cluster.h"

namespace walvault::store::testing {

// A fresh directory under /tmp, removed with its content on destruction.
using ScratchDir = walvault::testing::TempDir;

// `size` bytes that differ for each `seed` and carry no short period, so a
// misplaced range or a mixed-up object shows up as a mismatch.
inline Bytes pattern(std::size_t size, std::uint64_t seed) {
  Bytes out(size);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::uint8_t>(x >> 24);
  }
  return out;
}

using walvault::testing::error_code_of;

inline std::vector<std::string> names_of(const std::vector<ObjectInfo>& infos) {
  std::vector<std::string> names;
  for (const auto& info : infos) names.push_back(info.name);
  return names;
}

}  // namespace walvault::store::testing
