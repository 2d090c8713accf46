#include "core/error.h"

#include <cerrno>
#include <cstring>

namespace walvault {

namespace {

// The table's rows that are not failures (docs/format.md, "Exit statuses").
constexpr std::string_view kStatusRows[] = {
    "| 0 | | done; for `archive-push`: durable in the repository |",
    "| 1 | | `archive-get`: the file is not in the repository (the normal end of the archive; "
    "nothing printed). Also `check`'s WARNING |",
};

struct RegistryRow {
  std::string_view name;
  int status;
  std::string_view meaning;
};

constexpr RegistryRow kRegistry[] = {
#define WALVAULT_ERROR(enumerator, name, status, meaning) {name, status, meaning},
#include "core/error_codes.def"
#undef WALVAULT_ERROR
};

// The enum lists the codes in the registry's order from 0 (error.h), so a
// code is its row's index; a value outside the enum reads as kInternal.
const RegistryRow& registry_row(ErrorCode code) {
  const auto index = static_cast<std::size_t>(code);
  constexpr std::size_t kCount = sizeof kRegistry / sizeof kRegistry[0];
  return kRegistry[index < kCount ? index : static_cast<std::size_t>(ErrorCode::kInternal)];
}

}  // namespace

int exit_status(ErrorCode code) { return registry_row(code).status; }

std::string_view error_code_name(ErrorCode code) { return registry_row(code).name; }

std::string error_table_markdown(std::string_view link_base) {
  std::string out = "| status | code name | meaning |\n| --- | --- | --- |\n";
  for (std::string_view row : kStatusRows) out.append(row).append("\n");
  for (const RegistryRow& r : kRegistry) {
    std::string meaning(r.meaning);
    for (auto at = meaning.find("](#"); at != std::string::npos;
         at = meaning.find("](#", at + 2 + link_base.size()))
      meaning.insert(at + 2, link_base);
    out +=
        "| " + std::to_string(r.status) + " | `" + std::string(r.name) + "` | " + meaning + " |\n";
  }
  return out;
}

void throw_errno(const std::string& what) { throw_errno(what, errno); }

void throw_errno(const std::string& what, int err) {
  throw Error(ErrorCode::kIo, what + ": " + std::strerror(err));
}

}  // namespace walvault
