// A set of 32-bit transaction ids, as the restore planner needs for
// recovery_target_xid: "which xids end (commit or abort) in this segment".
// Kept as sorted maximal runs of consecutive xids: transactions mostly end in
// the order they began, so the xids ending in one segment are a few long runs
// and the set stays a few bytes even for tens of thousands of commits.
//
// Xids are compared for equality only, as PostgreSQL's recoveryStopsBefore()
// does: no ordering across the 2^32 wraparound is implied. Sorting is by the
// plain 32-bit value (a set that straddles 2^32 - 1 -> 3 costs one long gap).
//
// Binary encoding (docs/format.md, "Transaction-id sets"):
//   u8 version (1), varint run count, then per run: varint gap, varint
//   length - 1, where gap is first xid for the first run and
//   first - (previous last + 2) after it. Varints are LEB128 (7 bits per byte,
//   low first, at most 5 bytes, no redundant trailing zero byte).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/bytes.h"

namespace walvault::pg {

class XidSet {
 public:
  struct Run {
    std::uint32_t first = 0;
    std::uint32_t last = 0;  // inclusive
    bool operator==(const Run&) const = default;
  };

  XidSet() = default;
  // Any order, duplicates allowed.
  static XidSet from_xids(std::vector<std::uint32_t> xids);
  // std::nullopt when `bytes` is not exactly one canonical encoding (unknown
  // version, truncated, overlong varint, runs out of order or touching, past
  // 2^32 - 1, trailing bytes). Never allocates more than `bytes` justifies.
  static std::optional<XidSet> decode(ByteView bytes);

  Bytes encode() const;
  bool contains(std::uint32_t xid) const;
  bool empty() const { return runs_.empty(); }
  std::uint64_t size() const;  // number of xids
  const std::vector<Run>& runs() const { return runs_; }
  bool operator==(const XidSet&) const = default;

 private:
  std::vector<Run> runs_;  // sorted, disjoint, never adjacent
};

}  // namespace walvault::pg
