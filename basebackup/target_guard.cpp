#include "basebackup/target_guard.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string_view>

#include "core/error.h"
#include "core/file_util.h"

namespace walvault::basebackup {

namespace {

constexpr char kPidFile[] = "postmaster.pid";
constexpr char kControlFile[] = "global/pg_control";

// The PID on the first line of a postmaster.pid text; a standalone backend
// writes its PID negated. std::nullopt when the line is no PID.
std::optional<pid_t> pid_of(std::string_view text) {
  text = text.substr(0, text.find('\n'));
  if (text.starts_with('-')) text.remove_prefix(1);  // the same process either way
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != text.npos)
    return std::nullopt;
  const long pid = std::stol(std::string(text));
  if (pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

// Whether /proc says that `pid` works in `dir` (a postmaster chdirs into its
// data directory): true or false when /proc/<pid>/cwd can be read (same user,
// or root), std::nullopt when it cannot. Compared by device and inode, so a
// symlinked or bind-mounted path is the same directory.
std::optional<bool> works_in(pid_t pid, const std::string& dir) {
  struct stat cwd {};
  struct stat target {};
  if (::stat(("/proc/" + std::to_string(pid) + "/cwd").c_str(), &cwd) != 0 ||
      ::stat(dir.c_str(), &target) != 0)
    return std::nullopt;
  return cwd.st_dev == target.st_dev && cwd.st_ino == target.st_ino;
}

}  // namespace

std::optional<pid_t> live_postmaster(const std::string& pgdata) {
  const auto bytes = read_file(pgdata + "/" + kPidFile, 64);
  if (!bytes) return std::nullopt;
  const auto pid =
      pid_of(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
  // Our own PID cannot be a server's: the file is stale (the postmaster's
  // own check skips it for the same reason).
  if (!pid || *pid == ::getpid()) return std::nullopt;
  if (::kill(*pid, 0) == 0 || errno == EPERM) return pid;
  return std::nullopt;
}

void refuse_live_postmaster(const std::string& pgdata) {
  const auto pid = live_postmaster(pgdata);
  if (!pid) return;
  const std::string n = std::to_string(*pid);
  if (works_in(*pid, pgdata) == false)
    throw Error(ErrorCode::kConflict,
                "restore: " + pgdata + "/" + kPidFile + " names PID " + n +
                    ", which is running but not in " + pgdata +
                    " (a reused PID, or a server in another PID namespace): stop that server, or "
                    "remove the stale " +
                    kPidFile + " if none runs there");
  throw Error(ErrorCode::kConflict, "restore: PostgreSQL (PID " + n + ") is running on " + pgdata +
                                        ": stop it first (pg_ctl stop -D " + pgdata + ")");
}

std::optional<std::uint64_t> control_system_id(const std::string& pgdata) {
  const std::string path = pgdata + "/" + kControlFile;
  const auto head = read_file(path, sizeof(std::uint64_t));
  if (!head) return std::nullopt;
  std::uint64_t id = 0;
  if (head->size() == sizeof id) std::memcpy(&id, head->data(), sizeof id);  // host byte order
  if (id == 0) throw Error(ErrorCode::kInvalidInput, path + " holds no database system identifier");
  return id;
}

void refuse_other_cluster(const std::string& pgdata, std::uint64_t system_id, bool force) {
  if (force) return;
  std::optional<std::uint64_t> found;
  try {
    found = control_system_id(pgdata);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidInput) throw;
    throw Error(ErrorCode::kConflict, "restore --delta: " + std::string(e.what()) +
                                          ": cannot tell which cluster " + pgdata +
                                          " holds (--force overwrites it)");
  }
  if (!found || *found == system_id) return;
  throw Error(ErrorCode::kClusterMismatch,
              "restore --delta: " + pgdata + " holds cluster " + std::to_string(*found) +
                  ", the backup is of cluster " + std::to_string(system_id) +
                  " (--force overwrites it)");
}

}  // namespace walvault::basebackup
