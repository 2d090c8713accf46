// Repository locks (docs/format.md, "Locks and garbage collection").
//
// Commands that reference chunks a repository already holds (backup, restore,
// drill, verify, repo sync) take a SHARED lock; commands that delete them
// (expire, gc) take the EXCLUSIVE lock. Shared locks coexist; the exclusive
// lock excludes every other lock. archive-push and archive-get take none:
// they never touch chunks, and expire removes only WAL older than every
// retained backup needs.
//
//   locks/<mode>-<lock id>-<refreshed_us, 16 digits>   (repo/layout.h)
//
// A lock is one object, re-created under a new name every `refresh` seconds
// (the old one removed after), so no object is ever overwritten. A lock not
// refreshed for `stale` seconds is dead (its process crashed or hangs) and is
// ignored — and removed by the exclusive holder.
//
// Acquiring: write our lock object, then list locks/. A conflicting live
// lock means: remove ours, wait (poll) until the conflict is gone, up to
// `wait`, then try again; past `wait`, Error(kBusy) naming the holder
// (command, host, pid, since). Because each side writes before it lists, two
// conflicting takers cannot both miss each other (at worst both back off).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "repo/repository.h"

namespace walvault::repo {

struct LockOptions {
  std::chrono::seconds wait{0};      // how long to wait for a conflicting lock to go
  std::chrono::seconds refresh{60};  // re-create the lock object this often
  std::chrono::seconds stale{600};   // a lock older than this is dead
};

// Options with `stale`/`refresh` from WALVAULT_LOCK_STALE / WALVAULT_LOCK_REFRESH
// (seconds; for tests) when set.
LockOptions default_lock_options();

class RepoLock {
 public:
  // Takes the lock (see above). `command` is for messages ("backup", "gc").
  static std::unique_ptr<RepoLock> acquire(Repository& repo, LockMode mode,
                                           const std::string& command, const LockOptions& options);
  // A shared lock for read-only commands (restore, drill, verify, the source
  // of repo sync). When the store refuses the very first lock object with
  // Error(kIo) or Error(kKey) (read-only mount, read-only credentials), this
  // returns nullptr and puts the store's message into `*refused`: the caller
  // warns with it and goes on without a lock (docs/format.md). Every later
  // failure throws, conflicts wait and throw Error(kBusy) as acquire() does.
  static std::unique_ptr<RepoLock> acquire_for_reading(Repository& repo, const std::string& command,
                                                       const LockOptions& options,
                                                       std::string* refused = nullptr);
  // Stops refreshing and removes the lock object. A failed removal is not
  // reported (a destructor cannot fail): the object goes stale and the next
  // exclusive taker removes it.
  ~RepoLock();
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

  // Throws Error(kBusy) when the lock has not been refreshed within
  // `stale - refresh` (so another process might already deem it dead), with
  // the last refresh failure's message. Call right before committing: a
  // backup before its record, gc before deleting.
  void check_held() const;

 private:
  RepoLock(Repository& repo, LockMode mode, std::string command, LockOptions options);
  // acquire(); with `refused`, a refusal of the first write returns nullptr
  // and its message there instead of throwing.
  static std::unique_ptr<RepoLock> take(Repository& repo, LockMode mode, const std::string& command,
                                        const LockOptions& options, std::string* refused);
  void refresher();
  std::string object_name(std::int64_t refreshed_us) const;
  std::string body(std::int64_t refreshed_us) const;

  Repository& repo_;
  LockMode mode_;
  std::string command_;
  LockOptions options_;
  std::string id_;
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::string current_;               // the lock object's name now
  std::int64_t last_refresh_us_ = 0;  // when `current_` was written
  std::string refresh_failure_;       // the last refresh's error, for check_held()
  std::int64_t started_us_ = 0;
  std::thread thread_;
};

}  // namespace walvault::repo
