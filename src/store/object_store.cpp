#include "store/object_store.h"

#include <algorithm>

#include "core/error.h"

namespace walvault::store {

namespace {

// Long enough for any name the repository makes, short enough to fit every
// backend's key limit (S3 allows 1024 bytes) and PATH_MAX under a root.
constexpr std::size_t kMaxObjectNameLength = 1024;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

bool is_valid_object_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxObjectNameLength) return false;
  bool component_start = true;
  for (char c : name) {
    if (c == '/') {
      if (component_start) return false;  // leading '/' or empty component
      component_start = true;
      continue;
    }
    // A leading '.' would allow "." and ".." and clash with posix temp files.
    if (!is_name_char(c) || (component_start && c == '.')) return false;
    component_start = false;
  }
  return !component_start;  // no trailing '/'
}

void require_valid_object_name(const std::string& name) {
  if (!is_valid_object_name(name)) {
    throw Error(ErrorCode::kInternal, "invalid object name \"" + name + "\"");
  }
}

std::size_t ObjectStore::remove_many(const std::vector<std::string>& names) {
  for (const std::string& name : names) require_valid_object_name(name);
  std::size_t removed = 0;
  for (const std::string& name : names) {
    if (remove(name)) ++removed;  // a repeated name is gone the second time
  }
  return removed;
}

std::vector<std::string> ObjectStore::list_directories(const std::string& prefix) {
  std::vector<std::string> out;
  for (const ObjectInfo& info : list(prefix)) {
    const std::string_view rest = std::string_view(info.name).substr(prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) continue;
    // One directory's names are contiguous, but "A-1/" sorts before "A/".
    if (out.empty() || out.back() != rest.substr(0, slash)) out.emplace_back(rest.substr(0, slash));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace walvault::store
