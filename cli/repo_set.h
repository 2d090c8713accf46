// The repositories a command is given, and the ways commands use several:
// `--repo` repeated (or WALVAULT_REPO, or the config file's repo / repo1,
// repo2, ... keys) names them; every command that writes opens them all
// before writing to any (archive-push, backup, expire, gc, repo init), a
// reader uses the first that serves (archive-get, restore, drill), and with
// several every error names the repository it is about.
//
// Also the restore from several repositories: the plan is made from the first
// repository that can reach the target, under a shared lock held until the
// restore is written (restore and drill).
//
// Opening a repository reads its config and unlocks it with the secrets
// given (key file, passphrase file or WALVAULT_PASSPHRASE); nothing here
// writes to a repository except restore_planned's target directory.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "basebackup/restore.h"
#include "basebackup/restore_plan.h"
#include "core/error.h"
#include "repo/lock.h"
#include "repo/repository.h"
#include "store/object_store.h"

namespace walvault::cli {

// `location` with a relative local path made absolute against the working
// directory (so "dir" and "./dir" compare equal, and a restore_command runs
// anywhere); other locations (not store::is_local_location), and "", as they are.
std::string absolute_location(const std::string& location);

// How to reach the repositories: where they are and what unlocks them.
struct RepoAccess {
  std::vector<std::string> locations;  // several: 3-2-1 (archive-push needs every one)
  std::string key_file;
  std::string passphrase_file;          // first line: the passphrase (else WALVAULT_PASSPHRASE)
  store::StoreSettings store_settings;  // the config file's s3-* keys, for every store
};

using RepoOpener = std::function<std::unique_ptr<repo::Repository>(const std::string& location)>;

// `e` with "repository <location>: " in front when there are several
// repositories (`count` > 1), else `e` itself.
Error in_repository(const std::string& location, const Error& e, std::size_t count);

// Calls `serve` on each of `locations` in order until one returns true. A
// location that throws Error is warned about (when there are several) and
// the next one is tried. Returns false when none served and none failed;
// throws the first failure (in_repository) when none served and one failed.
bool first_that_serves(const std::vector<std::string>& locations,
                       const std::function<bool(const std::string& location)>& serve);

// Lock options of backup, restore, drill, verify and sync: wait up to 10
// minutes for a running gc or expire (WALVAULT_LOCK_* for tests).
repo::LockOptions command_lock_options();

enum class KeyFallback { kNone, kPassphrase };

// The repositories of one command line. Cheap to copy; opens nothing until
// asked.
class RepoSet {
 public:
  explicit RepoSet(RepoAccess access) : access_(std::move(access)) {}

  const RepoAccess& access() const { return access_; }

  // Every location given, in order. Throws Error(kUsage) when there is none
  // or one names a scheme no store driver takes (store::require_supported_location).
  const std::vector<std::string>& locations() const;

  // The secrets given: --key-file, and the passphrase of --passphrase-file
  // (its first line) or WALVAULT_PASSPHRASE. Throws Error(kKey) when the
  // passphrase file does not exist.
  repo::Secrets secrets() const;

  // Whether the secret reached us through WALVAULT_PASSPHRASE alone, which a
  // restore_command written for a restored server cannot carry.
  bool secret_only_in_environment() const;

  // Opens the repository at `location` (any location, given or not). A
  // missing local directory is Error(kRepoFormat) naming it; the rest is
  // repo::Repository::open's.
  std::unique_ptr<repo::Repository> open(const std::string& location) const;

  // Opens `location` with `key_file` (else --key-file). A key file unlocks
  // only the repositories it is registered with, so when that was --key-file
  // and it does not unlock this one, the passphrase is tried (when there is
  // one).
  std::unique_ptr<repo::Repository> open_with_key_file(const std::string& location,
                                                       const std::string& key_file = "") const;

  // Commands that act on one repository use the first one given.
  std::unique_ptr<repo::Repository> open_first() const { return open(locations().front()); }

  // Every repository, all opened before anything is written to any; errors
  // name their repository when there are several.
  std::vector<std::unique_ptr<repo::Repository>> open_all(KeyFallback fallback) const;

  // Calls `fn` with each location in order; an Error it throws is rethrown
  // naming the location (in_repository).
  void for_each_location(const std::function<void(const std::string& location)>& fn) const;

  Error in_repository(const std::string& location, const Error& e) const {
    return cli::in_repository(location, e, access_.locations.size());
  }

  RepoOpener opener() const {
    return [this](const std::string& location) { return open(location); };
  }

 private:
  RepoAccess access_;
};

// A restore request: restore's options, or those drill builds.
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
  // write, fadvise or off: how the blocks redo will read are made hot
  // (basebackup/warmup.h, RestoreOptions::warm_mode).
  std::string warm_up = "write";
  // archive-get's spool for the planned repository when restore_command is
  // walvault's own: the first WAL segments are fetched there while the files
  // are written ("": no pre-staging).
  std::string prestage_spool;
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

}  // namespace walvault::cli
