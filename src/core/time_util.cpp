#include "core/time_util.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "core/error.h"

namespace walvault {

std::int64_t now_unix_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string format_time_us(std::int64_t unix_us) {
  std::int64_t secs = unix_us / 1000000;
  std::int64_t micros = unix_us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buf;
}

std::optional<std::int64_t> parse_time_us(std::string_view text) {
  std::string s(text);
  int year, mon, day, hour, min, sec, consumed = 0;
  char sep;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &year, &mon, &day, &sep, &hour, &min,
                  &sec, &consumed) != 7 ||
      (sep != ' ' && sep != 'T'))
    return std::nullopt;
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
    return std::nullopt;
  std::size_t pos = static_cast<std::size_t>(consumed);
  std::int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 6) micros = micros * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (int d = digits; d < 6; ++d) micros *= 10;
  }
  std::int64_t offset_secs = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z' && pos + 1 == s.size()) {
      pos = s.size();
    } else if (s[pos] == '+' || s[pos] == '-') {
      int sign = s[pos] == '-' ? -1 : 1;
      int oh = 0, om = 0, n = 0;
      std::string rest = s.substr(pos + 1);
      if (std::sscanf(rest.c_str(), "%2d:%2d%n", &oh, &om, &n) == 2 &&
          n == static_cast<int>(rest.size())) {
      } else if (std::sscanf(rest.c_str(), "%2d%n", &oh, &n) == 1 &&
                 n == static_cast<int>(rest.size())) {
        om = 0;
      } else {
        return std::nullopt;
      }
      offset_secs = sign * (oh * 3600 + om * 60);
    } else {
      return std::nullopt;
    }
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  std::int64_t secs = static_cast<std::int64_t>(::timegm(&tm)) - offset_secs;
  return secs * 1000000 + micros;
}

std::chrono::seconds parse_duration(const std::string& what, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const std::string unit = end ? std::string(end) : "";
  double mult = 0;
  if (unit.empty() || unit == "s") mult = 1;
  if (unit == "m") mult = 60;
  if (unit == "h") mult = 3600;
  if (unit == "d") mult = 86400;
  if (unit == "w") mult = 7 * 86400;
  if (text.empty() || end == text.c_str() || mult == 0 || v < 0)
    throw Error(ErrorCode::kUsage,
                what + ": '" + text + "' is not a duration like 90s, 15m, 26h, 7d or 2w");
  return std::chrono::seconds(static_cast<std::int64_t>(v * mult));
}

std::string format_duration(std::chrono::seconds d) {
  const std::int64_t s = d.count();
  if (s != 0 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s != 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s != 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::string compact_utc_label(std::int64_t unix_us) {
  const std::string t = format_time_us(unix_us);  // "2026-11-26 11:51:00.000000+00"
  return t.substr(0, 4) + t.substr(5, 2) + t.substr(8, 2) + "-" + t.substr(11, 2) +
         t.substr(14, 2) + t.substr(17, 2);
}

}  // namespace walvault
