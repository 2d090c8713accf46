// Helpers shared by the `backup --local` tests (local_backup_test.cpp,
// incremental_backup_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "integration/walvault_cli.h"

namespace walvault::testing {

// `walvault backup --local` of `pg`'s data directory, two readers.
inline CommandResult local_backup(const std::vector<std::string>& flags, PgCluster& pg,
                                  const std::vector<std::string>& extra = {}) {
  return walvault(concat(concat(flags, {"backup", "--local", "--pgdata", pg.data_dir(), "--pg",
                                        conninfo(pg), "--parallel", "2"}),
                         extra));
}

// The `backup list --json` entry of `label` (a test failure when absent).
inline nlohmann::json record_of(const std::vector<std::string>& flags, const std::string& label) {
  auto r = walvault(concat(flags, {"backup", "list", "--json"}));
  EXPECT_EQ(r.status, 0) << r.err;
  for (const auto& j : nlohmann::json::parse(r.out))
    if (j.at("label") == label) return j;
  ADD_FAILURE() << "no backup " << label;
  return {};
}

}  // namespace walvault::testing
