// Who and where: for records that say which host and user ran a command
// (history, locks).
#pragma once

#include <string>

namespace walvault {

// gethostname(), "unknown" when it fails.
std::string host_name();
// The effective user's login name, else the numeric uid.
std::string user_name();

}  // namespace walvault
