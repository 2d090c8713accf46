#include "core/host.h"

#include <pwd.h>
#include <unistd.h>

#include <array>

namespace walvault {

std::string host_name() {
  std::array<char, 256> buf{};
  if (gethostname(buf.data(), buf.size() - 1) != 0) return "unknown";
  return buf.data();
}

std::string user_name() {
  const passwd* pw = getpwuid(geteuid());
  return pw != nullptr ? pw->pw_name : std::to_string(geteuid());
}

}  // namespace walvault
