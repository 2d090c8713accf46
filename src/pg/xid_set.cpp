#include "pg/xid_set.h"

#include <algorithm>

namespace walvault::pg {
namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kMaxVarintBytes = 5;  // 32-bit values
constexpr std::uint32_t kMaxXid = 0xFFFFFFFFu;

void put_varint(Bytes& out, std::uint32_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

// Reads one canonical 32-bit LEB128 varint at `pos`; std::nullopt when
// truncated, longer than 5 bytes, above 2^32 - 1 or with a redundant zero
// last byte.
std::optional<std::uint32_t> get_varint(ByteView in, std::size_t& pos) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
    if (pos >= in.size()) return std::nullopt;
    const std::uint8_t byte = in[pos++];
    v |= static_cast<std::uint64_t>(byte & 0x7F) << (7 * i);
    if (!(byte & 0x80)) {
      if (i > 0 && byte == 0) return std::nullopt;
      if (v > kMaxXid) return std::nullopt;
      return static_cast<std::uint32_t>(v);
    }
  }
  return std::nullopt;
}

}  // namespace

XidSet XidSet::from_xids(std::vector<std::uint32_t> xids) {
  std::sort(xids.begin(), xids.end());
  XidSet set;
  for (std::uint32_t x : xids) {
    if (!set.runs_.empty() && x <= set.runs_.back().last) continue;  // duplicate
    if (!set.runs_.empty() && x == set.runs_.back().last + 1) {
      set.runs_.back().last = x;
    } else {
      set.runs_.push_back({x, x});
    }
  }
  return set;
}

std::optional<XidSet> XidSet::decode(ByteView bytes) {
  std::size_t pos = 0;
  if (bytes.empty() || bytes[pos++] != kVersion) return std::nullopt;
  auto count = get_varint(bytes, pos);
  // Each run takes at least two bytes: a count beyond that is a lie.
  if (!count || *count > (bytes.size() - pos) / 2) return std::nullopt;
  XidSet set;
  set.runs_.reserve(*count);
  std::uint64_t next = 0;  // the smallest first xid the next run may have
  for (std::uint32_t i = 0; i < *count; ++i) {
    auto gap = get_varint(bytes, pos);
    auto extra = get_varint(bytes, pos);
    if (!gap || !extra) return std::nullopt;
    const std::uint64_t first = next + *gap;
    const std::uint64_t last = first + *extra;
    if (last > kMaxXid) return std::nullopt;
    set.runs_.push_back({static_cast<std::uint32_t>(first), static_cast<std::uint32_t>(last)});
    next = last + 2;
  }
  if (pos != bytes.size()) return std::nullopt;
  return set;
}

Bytes XidSet::encode() const {
  Bytes out;
  out.reserve(2 + runs_.size() * 3);
  out.push_back(kVersion);
  put_varint(out, static_cast<std::uint32_t>(runs_.size()));
  std::uint64_t next = 0;
  for (const Run& r : runs_) {
    put_varint(out, static_cast<std::uint32_t>(r.first - next));
    put_varint(out, r.last - r.first);
    next = static_cast<std::uint64_t>(r.last) + 2;
  }
  return out;
}

bool XidSet::contains(std::uint32_t xid) const {
  auto it = std::upper_bound(runs_.begin(), runs_.end(), xid,
                             [](std::uint32_t x, const Run& r) { return x < r.first; });
  return it != runs_.begin() && xid <= std::prev(it)->last;
}

std::uint64_t XidSet::size() const {
  std::uint64_t n = 0;
  for (const Run& r : runs_) n += static_cast<std::uint64_t>(r.last - r.first) + 1;
  return n;
}

}  // namespace walvault::pg
