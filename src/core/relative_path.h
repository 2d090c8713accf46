// The one rule for names that come from outside and are joined to a
// directory walvault writes into: entry names of a tar or BASE_BACKUP stream
// (ingest), and the paths of a backup's file list read back from a
// repository (restore, which trusts no name it did not check itself).
//
// A contained relative path is "." (the directory itself) or a sequence of
// components separated by single '/', each neither empty, "." nor "..", with
// no NUL byte, at most kMaxNameBytes bytes per component and kMaxPathBytes in
// all. Such a name can only ever denote something below the directory it is
// joined to, unless a component on disk is a symbolic link (which restore
// never follows: core/contained_dir.h).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace walvault {

inline constexpr std::size_t kMaxPathBytes = 4095;  // PATH_MAX less its NUL
inline constexpr std::size_t kMaxNameBytes = 255;   // NAME_MAX

// Why `path` is not a contained relative path ("is absolute", "has a '..'
// component", ...); std::nullopt when it is one. Pure.
std::optional<std::string> relative_path_problem(std::string_view path);

// `name` for an error message: quoted, bytes outside printable ASCII as
// \xNN, cut after 200 bytes (a hostile name must not garble the one-line
// message or the terminal).
std::string printable_name(std::string_view name);

// Throws Error(code, "<context> <printable name>: <problem>") unless `path`
// is a contained relative path.
void require_relative_path(std::string_view path, ErrorCode code, std::string_view context);

}  // namespace walvault
