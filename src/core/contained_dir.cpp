#include "core/contained_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/relative_path.h"

namespace walvault {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

namespace {

// Cleared the first time the kernel answers openat2 with ENOSYS.
std::atomic<bool> openat2_available{true};

}  // namespace

void throw_path_errno(const std::string& what, int err) {
  if (err == ELOOP)
    throw Error(ErrorCode::kIo, what + ": a symbolic link is in the way (not followed)");
  throw_errno(what, err);
}

ContainedDir::ContainedDir(const std::string& path, Resolution resolution)
    : path_(path), resolution_(resolution) {
  fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd_.get() < 0) throw_errno("opening directory " + path);
}

std::string ContainedDir::display(const std::string& rel) const {
  return rel == "." ? path_ : path_ + "/" + rel;
}

int ContainedDir::resolve(const std::string& rel, int flags, mode_t mode) const {
  flags |= O_NOFOLLOW | O_CLOEXEC;
  if (rel == ".") return ::openat(fd_.get(), ".", flags, mode);
  if (resolution_ == Resolution::kAuto && openat2_available.load(std::memory_order_relaxed)) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const long fd = ::syscall(SYS_openat2, fd_.get(), rel.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
    openat2_available = false;
  }
  // Component by component: every directory on the way opened O_NOFOLLOW.
  UniqueFd dir;
  int at = fd_.get();
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = rel.find('/', start);
    const std::string component = rel.substr(start, slash - start);
    if (slash == std::string::npos) return ::openat(at, component.c_str(), flags, mode);
    const int next =
        ::openat(at, component.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      // O_DIRECTORY answers a link with ENOTDIR; say ELOOP, as openat2 does.
      struct stat st;
      if (errno == ENOTDIR && ::fstatat(at, component.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode))
        errno = ELOOP;
      return -1;
    }
    dir = UniqueFd(next);
    at = next;
    start = slash + 1;
  }
}

UniqueFd ContainedDir::open_dir(const std::string& rel) const {
  require_relative_path(rel, ErrorCode::kInvalidInput, "below " + path_ + ",");
  const int fd = resolve(rel, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) throw_path_errno("opening directory " + display(rel), errno);
  return UniqueFd(fd);
}

UniqueFd ContainedDir::open_file(const std::string& rel, int flags, mode_t mode) const {
  require_relative_path(rel, ErrorCode::kInvalidInput, "below " + path_ + ",");
  const int fd = resolve(rel, flags, mode);
  if (fd < 0) throw_path_errno("opening " + display(rel), errno);
  return UniqueFd(fd);
}

std::optional<UniqueFd> ContainedDir::open_file_unless(const std::string& rel, int flags,
                                                       int tolerated) const {
  require_relative_path(rel, ErrorCode::kInvalidInput, "below " + path_ + ",");
  const int fd = resolve(rel, flags, 0);
  if (fd >= 0) return UniqueFd(fd);
  if (errno == tolerated) return std::nullopt;
  throw_path_errno("opening " + display(rel), errno);
}

std::optional<ContainedDir::Slot> ContainedDir::slot_if_present(const std::string& rel) const {
  require_relative_path(rel, ErrorCode::kInvalidInput, "below " + path_ + ",");
  const std::size_t slash = rel.rfind('/');
  if (rel == "." || slash == std::string::npos) return slot(rel);
  const std::string parent = rel.substr(0, slash);
  const int fd = resolve(parent, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) return std::nullopt;
    throw_path_errno("opening directory " + display(parent), errno);
  }
  return Slot{UniqueFd(fd), rel.substr(slash + 1)};
}

ContainedDir::Slot ContainedDir::slot(const std::string& rel) const {
  require_relative_path(rel, ErrorCode::kInvalidInput, "below " + path_ + ",");
  if (rel == ".") throw Error(ErrorCode::kInternal, "the root " + path_ + " has no parent slot");
  const std::size_t slash = rel.rfind('/');
  if (slash == std::string::npos) {
    const int fd = ::dup(fd_.get());
    if (fd < 0) throw_errno("duplicating the descriptor of " + path_);
    return {UniqueFd(fd), rel};
  }
  return {open_dir(rel.substr(0, slash)), rel.substr(slash + 1)};
}

void remove_all_at(int dir_fd, const std::string& name, const std::string& display) {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR && errno != EPERM) throw_errno("removing " + display);
  const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_path_errno("opening directory " + display, errno);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    const int err = errno;
    ::close(fd);
    throw_errno("opening directory " + display, err);
  }
  struct Closer {
    DIR* d;
    ~Closer() { ::closedir(d); }
  } closer{d};
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (!e) {
      if (errno != 0) throw_errno("reading directory " + display);
      break;
    }
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    remove_all_at(::dirfd(d), e->d_name, display + "/" + e->d_name);
  }
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    throw_errno("removing directory " + display);
}

}  // namespace walvault
