// Small helpers the files/ sources share (private to files/).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

namespace walvault::files {

// `name` below the snapshot-relative directory `dir` ("." is the root).
inline std::string join_path(const std::string& dir, const std::string& name) {
  return dir == "." ? name : dir + "/" + name;
}

// A stat time in ns since the Unix epoch.
inline std::int64_t nanoseconds(const struct timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace walvault::files
