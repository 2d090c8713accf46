// `walvault drill`: the command's options, and its run: ops::run_drill does
// the drill (restore into a scratch directory, start, recover, check, time);
// this plans and writes the restore for it (plan_from_repositories,
// restore_planned, as `restore` does), prints its progress and verdict and
// records the outcome in the repository's history.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cli/backup_cmd.h"
#include "ops/drill.h"

namespace walvault::cli {

struct DrillArgs {
  std::string set;          // backup label ("" : the newest that can reach the target)
  std::string target_time;  // "" : the end of the archive
  std::string scratch;      // "" : a fresh mkdtemp under /var/tmp
  std::string pg_bin;       // "" : pg::server_bin_dir (/usr/lib/postgresql/<major>/bin)
  std::string run_as = "postgres";
  std::string db_user;  // "" : the server's OS user
  std::string dbname = "postgres";
  std::vector<std::string> check_sql, expect;  // --check / --expect pairs
  std::vector<std::string> config_checks;      // "SQL => EXPECTED" (drill-check in the config)
  std::string check_script;
  bool keep = false;
  std::chrono::seconds timeout{30 * 60};
  std::optional<std::chrono::seconds> target_rto;
  int parallel = 2;
  std::string restore_command;              // the archive-get call the server runs
  bool secret_only_in_environment = false;  // see RestoreArgs
};

// 0 when the drill passed; otherwise throws Error("drill failed: <step>: <why>")
// after recording the failure (and cleaning up unless --keep).
int run_drill(const std::vector<std::string>& locations, const RepoOpener& open,
              const DrillArgs& args);

}  // namespace walvault::cli
