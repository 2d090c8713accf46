// The backup and restore commands' bodies, kept out of cli.cpp: `backup`,
// `backup list`, `restore`. cli.cpp parses options and opens repositories.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "basebackup/restore.h"
#include "basebackup/restore_plan.h"
#include "repo/lock.h"
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
  bool force = false;  // --delta into a data directory of another cluster
  bool no_direct_io = false;
  std::vector<std::string> tablespace_map;  // OLD=NEW
  int parallel = 2;
  std::string restore_command;  // written as restore_command (archive-get call)
  // The repository's secret reached this process only through
  // WALVAULT_PASSPHRASE, and restore_command is walvault's own archive-get,
  // which carries no secret: a server started without that variable (systemd,
  // pg_ctl from another shell) could not unlock an encrypted repository.
  bool secret_only_in_environment = false;
  // More postgresql.auto.conf lines, after the recovery settings (`drill`:
  // port, socket, archive_mode = off, ...).
  std::vector<std::pair<std::string, std::string>> extra_settings;
};

int run_backup(const std::vector<repo::Repository*>& repos, const BackupArgs& args);
int run_backup_list(repo::Repository& repo, bool json);
using RepoOpener = std::function<std::unique_ptr<repo::Repository>(const std::string& location)>;
// Plans from the first repository that can reach the target (falling back in
// order on an error), then restores from it.
int run_restore(const std::vector<std::string>& locations, const RepoOpener& open,
                const RestoreArgs& args);

// A restore decided but not yet written: the repository that serves it (the
// first of `locations` that can reach the target) and its plan.
struct PlannedRestore {
  std::unique_ptr<repo::Repository> repo;
  // A shared lock on `repo` (declared after it: released before it closes),
  // so gc cannot remove chunks of the planned backup while it is restored.
  std::unique_ptr<repo::RepoLock> lock;
  std::string location;
  basebackup::RecoveryTarget target;
  basebackup::RestorePlan plan;
};
// Checks the target options of `args` (Error(kUsage)) and plans, falling back
// through `locations` on an error (warning per failure when there are several);
// throws the first failure when none can.
PlannedRestore plan_from_repositories(const std::vector<std::string>& locations,
                                      const RepoOpener& open, const RestoreArgs& args);
// Refuses (Error(kUsage), one line saying why) a plan from an encrypted
// repository when args.secret_only_in_environment: the restore_command written
// would fail in the restored server. --key-file, --passphrase-file or
// --restore-command lift it. Restore and drill call it before writing.
void require_restore_command_unlocks(const PlannedRestore& planned, const RestoreArgs& args);
// Writes the planned backup into options.pgdata, then the recovery settings
// (restore_command, target, args.extra_settings) and recovery.signal.
basebackup::RestoreStats restore_planned(PlannedRestore& planned, const RestoreArgs& args,
                                         const basebackup::RestoreOptions& options);

// Lock options of backup, restore, drill, verify and sync: wait up to 10
// minutes for a running gc or expire (WALVAULT_LOCK_* for tests).
repo::LockOptions command_lock_options();

// "time 2026-11-26 10:00:00+00", "the end of the archive", ...
std::string describe_target(const basebackup::RecoveryTarget& target);

// One argument quoted for /bin/sh when it needs it.
std::string shell_quote(const std::string& arg);

}  // namespace walvault::cli
