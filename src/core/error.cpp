#include "core/error.h"

#include <cerrno>
#include <cstring>

namespace walvault {

int exit_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUsage:
      return 2;
    case ErrorCode::kInvalidInput:
      return 3;
    case ErrorCode::kNotFound:
      return 4;
    case ErrorCode::kConflict:
      return 5;
    case ErrorCode::kCorruption:
      return 6;
    case ErrorCode::kKey:
      return 7;
    case ErrorCode::kClusterMismatch:
      return 8;
    case ErrorCode::kRepoFormat:
      return 9;
    case ErrorCode::kIo:
      return 10;
    case ErrorCode::kPostgres:
      return 11;
    case ErrorCode::kInternal:
      return 12;
    case ErrorCode::kBusy:
      return 13;
  }
  return 12;
}

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUsage:
      return "usage";
    case ErrorCode::kInvalidInput:
      return "invalid-input";
    case ErrorCode::kNotFound:
      return "not-found";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kCorruption:
      return "corruption";
    case ErrorCode::kKey:
      return "key";
    case ErrorCode::kClusterMismatch:
      return "cluster-mismatch";
    case ErrorCode::kRepoFormat:
      return "repo-format";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kPostgres:
      return "postgres";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kBusy:
      return "busy";
  }
  return "internal";
}

void throw_errno(const std::string& what) { throw_errno(what, errno); }

void throw_errno(const std::string& what, int err) {
  throw Error(ErrorCode::kIo, what + ": " + std::strerror(err));
}

}  // namespace walvault
