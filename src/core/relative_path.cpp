#include "core/relative_path.h"

namespace walvault {

std::optional<std::string> relative_path_problem(std::string_view path) {
  if (path.empty()) return "is empty";
  if (path.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (path.size() > kMaxPathBytes)
    return "is longer than " + std::to_string(kMaxPathBytes) + " bytes";
  if (path == ".") return std::nullopt;
  if (path.front() == '/') return "is absolute";
  for (std::size_t start = 0; start <= path.size();) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view component = path.substr(start, end - start);
    if (component.empty()) return "has an empty component";
    if (component == ".") return "has a '.' component";
    if (component == "..") return "has a '..' component";
    if (component.size() > kMaxNameBytes)
      return "has a component longer than " + std::to_string(kMaxNameBytes) + " bytes";
    start = end + 1;
  }
  return std::nullopt;
}

std::string printable_name(std::string_view name) {
  constexpr std::size_t kShown = 200;
  std::string out = "'";
  for (std::size_t i = 0; i < name.size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out += "'";
  if (name.size() > kShown) out += "... (" + std::to_string(name.size()) + " bytes)";
  return out;
}

void require_relative_path(std::string_view path, ErrorCode code, std::string_view context) {
  if (auto problem = relative_path_problem(path))
    throw Error(code, std::string(context) + " " + printable_name(path) + ": " + *problem);
}

}  // namespace walvault
