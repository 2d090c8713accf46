#include "basebackup/restore_target.h"

#include <cstdlib>

#include "core/error.h"
#include "core/time_util.h"

namespace walvault::basebackup {

namespace {

using Kind = RecoveryTarget::Kind;

// A decimal number in 1 .. 2^32-1, or std::nullopt.
std::optional<std::uint32_t> parse_u32(const std::string& text) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(text.c_str(), &end, 10);
  if (*end != '\0' || text.empty() || v == 0 || v > 0xFFFFFFFFul) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

}  // namespace

RecoveryTarget parse_target(const TargetText& a) {
  RecoveryTarget t;
  int given = 0;
  if (!a.time.empty()) {
    ++given;
    auto v = parse_time_us(a.time);
    if (!v)
      throw Error(ErrorCode::kUsage,
                  "--target-time: '" + a.time + "' is not a time like '2026-11-26 10:00:00+00'");
    t.kind = Kind::kTime;
    t.time_us = *v;
  }
  if (!a.lsn.empty()) {
    ++given;
    auto v = pg::parse_lsn(a.lsn);
    if (!v) throw Error(ErrorCode::kUsage, "--target-lsn: '" + a.lsn + "' is not an LSN");
    t.kind = Kind::kLsn;
    t.lsn = *v;
  }
  if (!a.xid.empty()) {
    ++given;
    auto v = parse_u32(a.xid);
    if (!v) throw Error(ErrorCode::kUsage, "--target-xid: '" + a.xid + "' is not an xid");
    t.kind = Kind::kXid;
    t.xid = *v;
  }
  if (!a.name.empty()) {
    ++given;
    t.kind = Kind::kName;
    t.name = a.name;
  }
  if (a.immediate) {
    ++given;
    t.kind = Kind::kImmediate;
  }
  if (given > 1)
    throw Error(ErrorCode::kUsage,
                "give at most one of --target-time, --target-lsn, --target-xid, --target-name, "
                "--target-immediate");
  if (!a.timeline.empty() && a.timeline != "latest") {
    auto v = parse_u32(a.timeline);
    if (!v)
      throw Error(ErrorCode::kUsage, "--target-timeline: '" + a.timeline +
                                         "' is neither 'latest' nor a timeline number");
    t.timeline = static_cast<pg::TimeLineId>(*v);
  }
  return t;
}

void check_target_action(const std::string& action) {
  if (action != "pause" && action != "promote" && action != "shutdown")
    throw Error(ErrorCode::kUsage,
                "--target-action: '" + action + "' is not one of pause, promote, shutdown");
}

std::string describe_target(const RecoveryTarget& t) {
  switch (t.kind) {
    case Kind::kEnd:
      return "the end of the archive";
    case Kind::kTime:
      return "time " + format_time_us(t.time_us);
    case Kind::kLsn:
      return "LSN " + pg::format_lsn(t.lsn);
    case Kind::kXid:
      return "transaction " + std::to_string(t.xid);
    case Kind::kName:
      return "restore point '" + t.name + "'";
    case Kind::kImmediate:
      return "the end of the backup (immediate)";
  }
  return "?";
}

}  // namespace walvault::basebackup
