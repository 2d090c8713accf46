// The error registry (core/error_codes.def) is the one source of the exit
// statuses: the tables in docs/format.md and README.md are its rendering, and
// each code has its own status and name.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "core/error.h"

namespace walvault {
namespace {

// The Markdown table that starts with the line `header` in the file `path`
// below the source tree: that line and every following line starting with
// '|', each ending in '\n'; "" when the file has no such line.
std::string table_in(const std::string& path, const std::string& header) {
  std::ifstream in(std::string(WALVAULT_SOURCE_DIR) + "/" + path);
  EXPECT_TRUE(in) << path;
  std::string line, table;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line != header) continue;
    if (!line.starts_with("|")) break;
    inside = true;
    table += line + "\n";
  }
  return table;
}

constexpr char kHeader[] = "| status | code name | meaning |";

TEST(ErrorRegistry, FormatMdCarriesTheGeneratedTable) {
  EXPECT_EQ(table_in("docs/format.md", kHeader), error_table_markdown())
      << "regenerate the table in docs/format.md from src/core/error_codes.def";
}

TEST(ErrorRegistry, ReadmeCarriesTheGeneratedTable) {
  EXPECT_EQ(table_in("README.md", kHeader), error_table_markdown("docs/format.md"))
      << "regenerate the table in README.md from src/core/error_codes.def";
}

TEST(ErrorRegistry, EveryCodeHasItsOwnStatusAndName) {
  std::set<int> statuses;
  std::set<std::string_view> names;
  int codes = 0;
#define WALVAULT_ERROR(enumerator, name, status, meaning)        \
  ++codes;                                                       \
  statuses.insert(exit_status(ErrorCode::enumerator));           \
  names.insert(error_code_name(ErrorCode::enumerator));          \
  EXPECT_EQ(exit_status(ErrorCode::enumerator), status) << name; \
  EXPECT_EQ(error_code_name(ErrorCode::enumerator), std::string_view(name));
#include "core/error_codes.def"
#undef WALVAULT_ERROR
  EXPECT_EQ(statuses.size(), static_cast<std::size_t>(codes));
  EXPECT_EQ(names.size(), static_cast<std::size_t>(codes));
  EXPECT_EQ(exit_status(ErrorCode::kBusy), 13);
  EXPECT_EQ(error_code_name(ErrorCode::kBusy), "busy");
}

TEST(ErrorRegistry, LinksArePrefixedForAnotherDocument) {
  const std::string table = error_table_markdown("docs/format.md");
  EXPECT_NE(table.find("](docs/format.md#locks-and-garbage-collection)"), std::string::npos);
  EXPECT_EQ(table.find("](#"), std::string::npos);
}

}  // namespace
}  // namespace walvault
