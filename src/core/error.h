// walvault error registry (the list itself: core/error_codes.def).
//
// Expected outcomes (not found, already exists) are return values. Failures are
// one exception type, `walvault::Error`, carrying a code from this registry. The
// CLI catches it once, prints a one-line message and exits with the code's
// status. Every status stays at or below 125: PostgreSQL treats a higher
// archive_command status as fatal to the archiver.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace walvault {

// One enumerator per line of core/error_codes.def, which also gives each its
// name, exit status and meaning.
enum class ErrorCode {
#define WALVAULT_ERROR(enumerator, name, status, meaning) enumerator,
#include "core/error_codes.def"
#undef WALVAULT_ERROR
};

// Exit status for each code (error_codes.def). 1 is reserved for archive-get's
// quiet "not in the repository" and for check's WARNING, so no failure code uses it.
int exit_status(ErrorCode code);

// Short stable name of a code ("corruption", "io", ...) for logs and JSON.
std::string_view error_code_name(ErrorCode code);

// The exit-status table of docs/format.md ("Exit statuses") and README.md, in
// Markdown, rendered from error_codes.def: a header, the rows of statuses 0
// and 1, then one row per code, each line ending in '\n'. Links to a section
// of format.md ("](#...") are prefixed with `link_base` ("docs/format.md" for
// the README). tests/unit/core checks that both documents carry it verbatim.
std::string error_table_markdown(std::string_view link_base = "");

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Throws Error(kIo, "<what>: <strerror(errno)>"). Captures errno at the call.
[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] void throw_errno(const std::string& what, int err);

}  // namespace walvault
