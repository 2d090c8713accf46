// A directory that walvault writes below without ever going through a
// symbolic link: restore opens the data directory (and each tablespace
// location the plan chose) once, and creates, opens, times and removes
// everything beneath it relative to directory descriptors. A link planted in
// the target, or listed by a hostile backup, can then neither redirect a
// write nor be followed by a removal.
//
// Names are resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
// where the kernel has it (Linux 5.6+), else component by component with
// openat(O_NOFOLLOW | O_DIRECTORY). Either way a symbolic link anywhere on the
// way, the last component included, fails the call (ELOOP), and so does a
// name that is not a contained relative path (core/relative_path.h). The root
// itself was chosen by the user and may be reached through links.
//
// Thread-safe: every method only reads the root descriptor.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace walvault {

// Owns one file descriptor (closed on destruction; -1 = none).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release();

 private:
  int fd_ = -1;
};

// How names are resolved below the root. kAuto: openat2 when the kernel has
// it; kWalk: always component by component (tests cover both paths).
enum class Resolution { kAuto, kWalk };

class ContainedDir {
 public:
  // Opens the existing directory `path` (absolute) as the root. Throws
  // Error(kIo) naming it.
  ContainedDir(const std::string& path, Resolution resolution = Resolution::kAuto);

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  // root + "/" + rel, for messages ("." is the root).
  std::string display(const std::string& rel) const;

  // A directory below the root ("." = the root itself), opened O_RDONLY.
  UniqueFd open_dir(const std::string& rel) const;
  // A file below the root, with open(2) `flags` (O_NOFOLLOW and O_CLOEXEC
  // added) and `mode` for O_CREAT.
  UniqueFd open_file(const std::string& rel, int flags, mode_t mode = 0) const;
  // As open_file, but std::nullopt when open(2) fails with `tolerated`
  // (EINVAL: a file system without O_DIRECT).
  std::optional<UniqueFd> open_file_unless(const std::string& rel, int flags, int tolerated) const;

  // The directory holding `rel` (not "."), and rel's last component: the
  // pair every *at(2) call on rel takes.
  struct Slot {
    UniqueFd dir;
    std::string name;
  };
  Slot slot(const std::string& rel) const;
  // As slot, but std::nullopt when a directory on the way is missing, is a
  // symbolic link or is not a directory: nothing of ours can be at rel.
  std::optional<Slot> slot_if_present(const std::string& rel) const;

  // Every call above throws Error(kIo) naming display(rel); a symbolic link
  // on the way reads "a symbolic link is in the way (not followed)", and a
  // name that is not a contained relative path Error(kInvalidInput).

 private:
  int resolve(const std::string& rel, int flags, mode_t mode) const;  // -1 + errno on failure

  std::string path_;
  UniqueFd fd_;
  Resolution resolution_;
};

// throw_errno(what, err), but ELOOP (what O_NOFOLLOW and RESOLVE_NO_SYMLINKS
// answer) reads "<what>: a symbolic link is in the way (not followed)".
[[noreturn]] void throw_path_errno(const std::string& what, int err);

// Removes `name` in directory `dir_fd`, whatever it is: a file or a link is
// unlinked (a link's target is never touched), a directory is emptied the
// same way, without following links, and removed. Absent is fine. Throws
// Error(kIo) naming `display`.
void remove_all_at(int dir_fd, const std::string& name, const std::string& display);

}  // namespace walvault
