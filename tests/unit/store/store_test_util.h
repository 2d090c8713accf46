// Helpers shared by the store tests: scratch directories, deterministic test
// bytes, and catching walvault::Error codes.
#pragma once

#include <stdlib.h>

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

namespace walvault::store::testing {

// Creates a fresh directory "<parent>/<tag>-XXXXXX" (mkdtemp) and returns its path.
inline std::string make_temp_dir(const std::string& parent, const std::string& tag) {
  std::string path = parent + "/" + tag + "-XXXXXX";
  if (::mkdtemp(path.data()) == nullptr) throw std::runtime_error("mkdtemp " + path + " failed");
  return path;
}

// A fresh directory under /tmp, removed with its content on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag = "wv-store") : path_(make_temp_dir("/tmp", tag)) {}
  ~ScratchDir() {
    std::error_code ignored;  // a destructor must not throw; leftovers are only /tmp litter
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

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

// The code of the walvault::Error that `action` throws; std::nullopt when it
// throws nothing. Any other exception propagates and fails the test.
inline std::optional<ErrorCode> error_code_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.code();
  }
  return std::nullopt;
}

inline std::vector<std::string> names_of(const std::vector<ObjectInfo>& infos) {
  std::vector<std::string> names;
  for (const auto& info : infos) names.push_back(info.name);
  return names;
}

}  // namespace walvault::store::testing
