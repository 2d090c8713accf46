// Test helper: which walvault::Error an action throws.
#pragma once

#include <functional>
#include <optional>

#include "core/error.h"

namespace walvault::testing {

// The code of the walvault::Error that `action` throws; std::nullopt when it
// throws nothing. Any other exception propagates and fails the test.
inline std::optional<ErrorCode> error_code_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.code();
  }
  return std::nullopt;
}

}  // namespace walvault::testing
