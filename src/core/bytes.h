// Byte buffers and little helpers used across layers: hex, little-endian
// integer access. Everything here is pure and allocation-light.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace walvault {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes to_bytes(std::string_view s) {
  auto v = as_bytes(s);
  return Bytes(v.begin(), v.end());
}

std::string to_hex(ByteView bytes);
// Returns false (and leaves out untouched) when `hex` is not even-length hex.
bool from_hex(std::string_view hex, Bytes& out);

// "812 B", "1.5 MiB", "2.0 GiB" (binary units).
std::string human_bytes(std::uint64_t bytes);

template <typename T>
T load_le(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // x86-64 and aarch64 Linux are little-endian
  return v;
}
template <typename T>
void store_le(std::uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename T>
void append_le(Bytes& out, T v) {
  std::uint8_t tmp[sizeof(T)];
  store_le(tmp, v);
  out.insert(out.end(), tmp, tmp + sizeof(T));
}

}  // namespace walvault
