#include "pg/record_body.h"

namespace walvault::pg::detail {
namespace {

constexpr std::uint8_t kXactHasInfo = 0x80;  // XLOG_XACT_HAS_INFO
// xl_xact_xinfo flags (xact.h) and the sizes of the fields they announce.
constexpr std::uint32_t kXinfoHasDbInfo = 1u << 0;
constexpr std::uint32_t kXinfoHasSubxacts = 1u << 1;
constexpr std::uint32_t kXinfoHasRelFileLocators = 1u << 2;
constexpr std::uint32_t kXinfoHasInvals = 1u << 3;
constexpr std::uint32_t kXinfoHasTwoPhase = 1u << 4;
constexpr std::uint32_t kXinfoHasDroppedStats = 1u << 8;  // PostgreSQL 15+
constexpr std::size_t kDbInfoSize = 8;                    // dbId, tsId
constexpr std::size_t kInvalMessageSize = 16;             // SharedInvalidationMessage
constexpr std::size_t kStatsItemSizePg15 = 12;            // kind, dboid, objoid
constexpr std::size_t kStatsItemSizePg18 = 16;            // kind, dboid, objid_lo, objid_hi

}  // namespace

std::optional<XactEndFields> parse_xact_end(ByteView main, std::uint8_t info, bool commit,
                                            int pg_major) {
  XactEndFields out;
  std::uint64_t pos = sizeof(std::int64_t);  // xact_time
  if (pos > main.size()) return std::nullopt;
  if (!(info & kXactHasInfo)) return out;  // no xinfo: no optional fields
  auto u32_at = [&](std::uint64_t at) -> std::optional<std::uint32_t> {
    if (at + 4 > main.size()) return std::nullopt;
    return load_le<std::uint32_t>(main.data() + at);
  };
  auto xinfo = u32_at(pos);
  if (!xinfo) return std::nullopt;
  pos += 4;
  // A counted array: u32 count, then count items of `item` bytes.
  auto skip_array = [&](std::size_t item, std::uint32_t* count) {
    auto n = u32_at(pos);
    if (!n || *n > 0x7FFFFFFFu) return false;
    if (count) *count = *n;
    pos += 4 + static_cast<std::uint64_t>(*n) * item;
    return pos <= main.size();
  };
  if (*xinfo & kXinfoHasDbInfo) pos += kDbInfoSize;  // bounds: the next u32_at checks
  if ((*xinfo & kXinfoHasSubxacts) && !skip_array(sizeof(std::uint32_t), nullptr))
    return std::nullopt;
  if (*xinfo & kXinfoHasRelFileLocators) {
    out.rels_offset = pos + 4;
    if (!skip_array(kRelFileLocatorSize, &out.rels_count)) return std::nullopt;
  }
  if (pg_major >= 15 && (*xinfo & kXinfoHasDroppedStats) &&
      !skip_array(pg_major >= 18 ? kStatsItemSizePg18 : kStatsItemSizePg15, nullptr)) {
    return std::nullopt;
  }
  // Only commit records carry invalidation messages (ParseAbortRecord has none).
  if (commit && (*xinfo & kXinfoHasInvals) && !skip_array(kInvalMessageSize, nullptr))
    return std::nullopt;
  if (*xinfo & kXinfoHasTwoPhase) {
    out.twophase_xid = u32_at(pos);
    if (!out.twophase_xid) return std::nullopt;
  }
  return out;
}

}  // namespace walvault::pg::detail
