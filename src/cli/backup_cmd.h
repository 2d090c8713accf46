// The backup and restore commands' bodies, kept out of cli.cpp: `backup`,
// `backup list`, `restore`. cli.cpp parses options and opens repositories.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "repo/repository.h"

namespace walvault::cli {

struct BackupArgs {
  std::string pg;        // conninfo
  std::string from_tar;  // "-" or a file; empty: replication protocol
  std::string tag;
  std::string checkpoint = "fast";
  int parallel = 2;
  int wal_timeout_s = 60;
  bool progress = false;
};

struct RestoreArgs {
  std::string pgdata;
  std::string target_time, target_lsn, target_xid, target_name;
  bool target_immediate = false;
  std::string target_timeline;  // "", "latest" or a number
  std::string target_action = "pause";
  std::string set;
  bool dry_run = false;
  bool delta = false;
  std::vector<std::string> tablespace_map;  // OLD=NEW
  int parallel = 2;
  std::string restore_command;  // written as restore_command (archive-get call)
};

int run_backup(const std::vector<repo::Repository*>& repos, const BackupArgs& args);
int run_backup_list(repo::Repository& repo, bool json);
using RepoOpener = std::function<std::unique_ptr<repo::Repository>(const std::string& location)>;
// Plans from the first repository that can reach the target (falling back in
// order on an error), then restores from it.
int run_restore(const std::vector<std::string>& locations, const RepoOpener& open,
                const RestoreArgs& args);

// One argument quoted for /bin/sh when it needs it.
std::string shell_quote(const std::string& arg);

}  // namespace walvault::cli
