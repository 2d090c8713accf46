#include "repo/lock.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "codec/crypto.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/host.h"
#include "core/time_util.h"
#include "repo/layout.h"

namespace walvault::repo {

namespace {

using nlohmann::json;

constexpr auto kPoll = std::chrono::milliseconds(500);

// One lock as the listing shows it: the newest object of a lock id.
struct SeenLock {
  std::string id;
  LockMode mode = LockMode::kShared;
  std::int64_t refreshed_us = 0;
  std::string object;                // the newest object
  std::vector<std::string> objects;  // every object of this id
};

// Every lock object listed, grouped by lock id; names that are no lock
// object (repo/layout.h) are not locks.
std::vector<SeenLock> list_locks(Repository& repo) {
  std::map<std::string, SeenLock> by_id;
  for (const store::ObjectInfo& info : repo.store().list(kLockPrefix)) {
    const auto parsed = parse_lock_object(info.name);
    if (!parsed) continue;
    SeenLock& seen = by_id[parsed->id];
    seen.id = parsed->id;
    seen.mode = parsed->mode;
    seen.objects.push_back(info.name);
    if (parsed->refreshed_us >= seen.refreshed_us) {
      seen.refreshed_us = parsed->refreshed_us;
      seen.object = info.name;
    }
  }
  std::vector<SeenLock> out;
  for (auto& [id, seen] : by_id) out.push_back(std::move(seen));
  return out;
}

// "backup on db1 (pid 4242, user postgres) since 2026-11-26 10:00:00+00", read
// from the lock object; the bare lock name when it is gone, and with why when
// it cannot be read (this only words the busy error the caller throws).
std::string describe_holder(Repository& repo, const SeenLock& lock) {
  try {
    const auto bytes = repo.get_object(lock.object);
    if (bytes) {
      const json j = json::parse(as_chars(*bytes));
      return j.value("command", "?") + " on " + j.value("host", "?") + " (pid " +
             std::to_string(j.value("pid", 0)) + ", user " + j.value("user", "?") + ") since " +
             format_time_us(j.value("started_us", std::int64_t{0}));
    }
  } catch (const std::exception& e) {
    return lock.object + " (unreadable: " + e.what() + ")";
  }
  return lock.object;
}

std::optional<std::int64_t> env_seconds(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  if (*end != '\0' || n <= 0)
    throw Error(ErrorCode::kUsage, std::string(name) + ": not a positive number of seconds");
  return n;
}

}  // namespace

LockOptions default_lock_options() {
  LockOptions options;
  if (auto s = env_seconds("WALVAULT_LOCK_STALE")) options.stale = std::chrono::seconds(*s);
  if (auto s = env_seconds("WALVAULT_LOCK_REFRESH")) options.refresh = std::chrono::seconds(*s);
  if (options.refresh >= options.stale)
    options.refresh = std::max<std::chrono::seconds>(std::chrono::seconds(1), options.stale / 3);
  return options;
}

RepoLock::RepoLock(Repository& repo, LockMode mode, std::string command, LockOptions options)
    : repo_(repo), mode_(mode), command_(std::move(command)), options_(options) {
  std::array<std::uint8_t, 8> rnd{};
  codec::random_bytes(rnd);
  id_ = to_hex(rnd);
}

std::string RepoLock::object_name(std::int64_t refreshed_us) const {
  return lock_object_name(mode_, id_, refreshed_us);
}

std::string RepoLock::body(std::int64_t refreshed_us) const {
  json j;
  j["mode"] = lock_mode_name(mode_);
  j["command"] = command_;
  j["host"] = host_name();
  j["pid"] = static_cast<int>(getpid());
  j["user"] = user_name();
  j["started_us"] = started_us_;
  j["refreshed_us"] = refreshed_us;
  return j.dump();
}

std::unique_ptr<RepoLock> RepoLock::acquire(Repository& repo, LockMode mode,
                                            const std::string& command,
                                            const LockOptions& options) {
  return take(repo, mode, command, options, nullptr);
}

std::unique_ptr<RepoLock> RepoLock::acquire_for_reading(Repository& repo,
                                                        const std::string& command,
                                                        const LockOptions& options,
                                                        std::string* refused) {
  std::string reason;
  auto lock = take(repo, LockMode::kShared, command, options, &reason);
  if (!lock && refused) *refused = reason;
  return lock;
}

std::unique_ptr<RepoLock> RepoLock::take(Repository& repo, LockMode mode,
                                         const std::string& command, const LockOptions& options,
                                         std::string* refused) {
  std::unique_ptr<RepoLock> lock(new RepoLock(repo, mode, command, options));
  lock->started_us_ = now_unix_us();
  const auto deadline = std::chrono::steady_clock::now() + options.wait;
  const std::int64_t stale_us = std::chrono::microseconds(options.stale).count();
  for (bool first = true;; first = false) {
    const std::int64_t now = now_unix_us();
    const std::string name = lock->object_name(now);
    try {
      repo.put_object(name, as_bytes(lock->body(now)));
    } catch (const Error& e) {
      // Only the very first write can be the store refusing writes at all
      // (read-only mount or credentials); after it, a failure is a failure.
      const bool refusal = e.code() == ErrorCode::kIo || e.code() == ErrorCode::kKey;
      if (!refused || !first || !refusal) throw;
      *refused = e.what();
      return nullptr;
    }
    std::optional<SeenLock> conflict;
    std::vector<std::string> dead;
    for (const SeenLock& seen : list_locks(repo)) {
      if (seen.id == lock->id_) continue;
      if (now_unix_us() - seen.refreshed_us >= stale_us) {
        dead.insert(dead.end(), seen.objects.begin(), seen.objects.end());
        continue;
      }
      if (mode == LockMode::kExclusive || seen.mode == LockMode::kExclusive) {
        if (!conflict) conflict = seen;
      }
    }
    if (!conflict) {
      // The exclusive holder sweeps dead locks, so crashed commands leave no trace.
      if (mode == LockMode::kExclusive && !dead.empty()) repo.store().remove_many(dead);
      lock->current_ = name;
      lock->last_refresh_us_ = now;
      lock->thread_ = std::thread([raw = lock.get()] { raw->refresher(); });
      return lock;
    }
    repo.store().remove(name);
    if (std::chrono::steady_clock::now() >= deadline) {
      throw Error(ErrorCode::kBusy,
                  "repository " + repo.store().describe() + " is locked by " +
                      describe_holder(repo, *conflict) + "; " + command + " needs " +
                      (mode == LockMode::kExclusive ? "it alone" : "no gc or expire running") +
                      " (retry later, or wait with --lock-wait)");
    }
    std::this_thread::sleep_for(kPoll);
  }
}

void RepoLock::refresher() {
  std::unique_lock<std::mutex> guard(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(guard, options_.refresh, [this] { return stopping_; });
    if (stopping_) break;
    const std::string old = current_;
    guard.unlock();
    const std::int64_t now = now_unix_us();
    const std::string fresh = object_name(now);
    bool ok = false;
    std::string failure;
    try {
      repo_.put_object(fresh, as_bytes(body(now)));
      ok = true;
      repo_.store().remove(old);
    } catch (const std::exception& e) {
      // Not lost: check_held() reports a lock that could not be refreshed in
      // time, with this reason. (A failed removal of the old object leaves it
      // to go stale; the fresh one is the lock now.)
      failure = e.what();
    }
    guard.lock();
    if (ok) {
      current_ = fresh;
      last_refresh_us_ = now;
    }
    if (!failure.empty()) refresh_failure_ = failure;
  }
}

void RepoLock::check_held() const {
  std::lock_guard<std::mutex> guard(mu_);
  const std::int64_t margin_us =
      std::chrono::microseconds(options_.stale - options_.refresh).count();
  if (now_unix_us() - last_refresh_us_ >= margin_us)
    throw Error(ErrorCode::kBusy,
                "lost the repository lock of " + command_ + " on " + repo_.store().describe() +
                    ": it could not be refreshed in time" +
                    (refresh_failure_.empty() ? std::string()
                                              : " (last attempt: " + refresh_failure_ + ")") +
                    ", so another command may have taken the repository over; "
                    "nothing was committed");
}

RepoLock::~RepoLock() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  try {
    repo_.store().remove(current_);
  } catch (const std::exception&) {
    // a lock left behind goes stale
  }
}

}  // namespace walvault::repo
