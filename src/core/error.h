// walvault error registry.
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

enum class ErrorCode {
  kUsage,            // bad command line, option or configuration value
  kInvalidInput,     // an input file is not what it claims to be (bad WAL name/header)
  kNotFound,         // a required object or file is missing (not the quiet archive-get miss)
  kConflict,         // a name already holds different bytes; nothing was overwritten
  kCorruption,       // stored bytes fail their checksum, tag or structure check
  kKey,              // wrong passphrase or key file, or a key is required but absent
  kClusterMismatch,  // WAL or backup from another cluster than the repository's
  kRepoFormat,       // repository missing, not initialised, or of an unknown format
  kIo,               // the store or file system failed (disk full, permission, ...)
  kPostgres,         // the PostgreSQL server refused or failed
  kInternal,         // a bug: an invariant did not hold
  kBusy,             // another command holds a conflicting repository lock
};

// Exit status for each code. 1 is reserved for archive-get's quiet "not in the
// repository" and for check's WARNING, so no failure code uses it.
int exit_status(ErrorCode code);

// Short stable name of a code ("corruption", "io", ...) for logs and JSON.
std::string_view error_code_name(ErrorCode code);

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
