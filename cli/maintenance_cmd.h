// The maintenance commands' bodies, kept out of cli.cpp: `expire`, `gc`,
// `backup keep` / `backup unkeep`. cli.cpp registers them with
// add_maintenance_commands and opens the repositories.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ops/retention.h"
#include "repo/repository.h"

namespace walvault::cli {

struct MaintenanceCli {
  CLI::App* expire = nullptr;
  CLI::App* gc = nullptr;
  CLI::App* keep = nullptr;
  CLI::App* unkeep = nullptr;

  // expire
  bool dry_run = false;
  bool json = false;
  std::string tag;
  std::map<std::string, std::string> rule_flags;  // "keep-daily" -> "7", from the flags
  std::string pitr_window;
  std::string lock_wait = "0s";
  // gc
  std::string grace = "1h";
  double repack_threshold = 50;  // percent
  // keep / unkeep
  std::string label;
  std::string note;
};

// Registers `expire` and `gc` on `app`, `keep` and `unkeep` on `backup`.
void add_maintenance_commands(CLI::App& app, CLI::App& backup, MaintenanceCli& m);

// The retention rules of the config file's [retention] (default policy) and
// [retention.TAG] sections. Throws Error(kUsage) naming a bad key or value.
ops::RetentionRules retention_from_config(const std::vector<CLI::ConfigItem>& items);

// Runs whichever maintenance command was parsed, on every repository in
// turn (each under its own exclusive lock for expire/gc), recording history.
int run_maintenance(const MaintenanceCli& m, const std::vector<repo::Repository*>& repos,
                    const std::vector<CLI::ConfigItem>& retention_items);

}  // namespace walvault::cli
