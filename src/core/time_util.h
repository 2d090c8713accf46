// Wall-clock time as walvault shows and parses it: Unix microseconds inside,
// "2026-11-26 10:00:00.123456+00" (UTC) outside, as PostgreSQL prints
// timestamptz with TimeZone=UTC.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace walvault {

std::int64_t now_unix_us();
std::string format_time_us(std::int64_t unix_us);
// "YYYYMMDD-HHMMSS" (UTC): the label of a backup or snapshot started then.
std::string compact_utc_label(std::int64_t unix_us);
// Accepts "YYYY-MM-DD HH:MM:SS[.ffffff][Z|+HH[:MM]|-HH[:MM]]" ('T' also
// separates); no zone means UTC. std::nullopt when malformed.
std::optional<std::int64_t> parse_time_us(std::string_view text);

// "90", "90s", "15m", "26h", "7d", "2w" -> seconds. Throws Error(kUsage)
// naming `what` (a flag or config key) when malformed or negative.
std::chrono::seconds parse_duration(const std::string& what, const std::string& text);
// The largest whole unit: 86400 s -> "1d", 5400 s -> "90m", 0 -> "0s".
std::string format_duration(std::chrono::seconds d);

}  // namespace walvault
