#include "store/posix_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"

// Implementation notes.
// - An object is a regular file at <root>/<name>; symlinks, FIFOs and the like
//   are never objects (get/stat do not follow a final symlink, list skips
//   them). A name that is another name's directory ("a" beside "a/b") cannot
//   exist here; put reports kIo for it.
// - Directories are never removed: remove() racing a put into the same
//   directory would otherwise need retries, and the layout keeps their number
//   small.
// - Temp files come from write_file_atomic and are named ".tmp.*"; no object
//   name component starts with '.', so they can never be mistaken for objects.

namespace walvault::store {

namespace {

constexpr unsigned kObjectMode = 0640;
constexpr mode_t kDirMode = 0750;
constexpr std::string_view kTempPrefix = ".tmp.";

// errno values meaning "nothing there": a missing entry, or a leading
// component that is a file rather than a directory.
bool is_absent(int err) { return err == ENOENT || err == ENOTDIR; }

std::string join(const std::string& dir, const std::string& rel) {
  if (rel.empty()) return dir;
  if (dir.empty()) return rel;
  return dir.back() == '/' ? dir + rel : dir + "/" + rel;
}

std::string without_trailing_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  void release() { fd_ = -1; }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

 private:
  int fd_;
};

// Creates `dir` and its missing ancestors, but never one whose path is at most
// `keep_length` long: a store must not quietly recreate a root that vanished
// (a repository on a NAS that is not mounted would reappear on the local disk). Each new
// directory's parent is fsynced, also when a concurrent creator won the mkdir, so the path is
// durable before anything is written into it.
void make_dirs_durably(const std::string& dir, std::size_t keep_length) {
  std::vector<std::string> missing;
  for (std::string cur = dir; cur.size() > keep_length;) {
    struct stat st {};
    if (::stat(cur.c_str(), &st) == 0) break;
    if (errno != ENOENT) throw_errno("stat " + cur);
    missing.push_back(cur);
    std::string parent = dir_name(cur);
    if (parent == cur) break;  // "." or "/" missing: mkdir below reports it
    cur = std::move(parent);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), kDirMode) != 0 && errno != EEXIST) throw_errno("mkdir " + *it);
    fsync_dir(dir_name(*it));
  }
}

// One entry that walk() found and did not descend into.
std::int64_t mtime_us(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000 + st.st_mtim.tv_nsec / 1000;
}

struct WalkEntry {
  int dir_fd;                  // the directory holding it, for *at() calls
  const std::string& rel_dir;  // that directory relative to the root ("" for the root)
  const char* name;
  const struct stat& st;  // lstat() of the entry
};

// Depth-first walk of <root>/<rel_dir>. Descends into a subdirectory only
// when its name is a valid name component and `enter(rel)` agrees; hands
// every other entry to `visit`. Entries that vanish during the walk are
// skipped: concurrent removes are normal.
void walk(const std::string& root, const std::string& rel_dir,
          const std::function<bool(const std::string&)>& enter,
          const std::function<void(const WalkEntry&)>& visit) {
  const std::string path = join(root, rel_dir);
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (is_absent(errno)) return;
    throw_errno("open directory " + path);
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    throw_errno("open directory " + path, err);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      if (errno != 0) throw_errno("read directory " + path);
      break;
    }
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      throw_errno("stat " + join(path, name));
    }
    if (S_ISDIR(st.st_mode)) {
      const std::string rel = join(rel_dir, name);
      if (is_valid_object_name(name) && enter(rel)) walk(root, rel, enter, visit);
    } else {
      visit({fd, rel_dir, name.c_str(), st});
    }
  }
}

}  // namespace

PosixStore::PosixStore(std::string root, bool create)
    : root_(without_trailing_slashes(std::move(root))) {
  if (root_.empty()) throw Error(ErrorCode::kUsage, "store path is empty");
  if (create) make_dirs_durably(root_, 0);
  struct stat st {};
  if (::stat(root_.c_str(), &st) != 0) throw_errno("open store " + root_);
  if (!S_ISDIR(st.st_mode)) throw_errno("open store " + root_, ENOTDIR);
}

PutResult PosixStore::put(const std::string& name, ByteView data) {
  require_valid_object_name(name);
  const std::string path = join(root_, name);
  make_dirs_durably(dir_name(path), root_.size());
  if (write_file_atomic(path, data, kObjectMode, Overwrite::kNo)) return PutResult::kCreated;
  // link(2) also says EEXIST when a directory holds the name; that is no object.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    throw Error(ErrorCode::kIo,
                "put " + path + ": the name is taken by a directory or special file");
  }
  return PutResult::kAlreadyExists;
}

// A regular file opened for reading, closed with the last holder.
struct PosixStore::OpenObject {
  explicit OpenObject(int f, std::uint64_t n) : fd(f), size(n) {}
  ~OpenObject() { ::close(fd); }
  OpenObject(const OpenObject&) = delete;
  OpenObject& operator=(const OpenObject&) = delete;
  int fd;
  std::uint64_t size;
};

namespace {

// Opens `path` for reading: none when it is absent or no regular file.
// O_NOFOLLOW: a symlink is not an object. O_NONBLOCK: never hang opening a
// FIFO someone left in the tree; regular files ignore it.
std::optional<std::pair<int, std::uint64_t>> open_object(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (is_absent(errno) || errno == ELOOP) return std::nullopt;
    throw_errno("open " + path);
  }
  FileDescriptor closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat " + path);
  if (!S_ISREG(st.st_mode)) return std::nullopt;
  closer.release();
  return std::make_pair(fd, static_cast<std::uint64_t>(st.st_size));
}

// Up to `wanted` bytes of the open file `fd` of `size` bytes from `offset`.
Bytes read_piece(int fd, std::uint64_t size, std::uint64_t offset, std::uint64_t wanted,
                 const std::string& path) {
  const std::uint64_t length = offset >= size ? 0 : std::min(wanted, size - offset);
  Bytes out(length);
  std::size_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + path);
    }
    if (n == 0) break;  // shrunk underneath us (not by walvault): return what is there
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

}  // namespace

std::shared_ptr<PosixStore::OpenObject> PosixStore::open_for_range(const std::string& path) {
  {
    std::lock_guard lock(open_mu_);
    for (auto it = open_.begin(); it != open_.end(); ++it)
      if (it->first == path) {
        open_.splice(open_.begin(), open_, it);
        return it->second;
      }
  }
  const auto opened = open_object(path);
  if (!opened) return nullptr;
  auto object = std::make_shared<OpenObject>(opened->first, opened->second);
  std::lock_guard lock(open_mu_);
  open_.emplace_front(path, object);
  if (open_.size() > kOpenObjects) open_.pop_back();
  return object;
}

void PosixStore::forget_open(const std::string& path) {
  std::lock_guard lock(open_mu_);
  open_.remove_if([&](const auto& entry) { return entry.first == path; });
}

std::optional<Bytes> PosixStore::get(const std::string& name, std::optional<Range> range) {
  require_valid_object_name(name);
  const std::string path = join(root_, name);
  if (range) {
    const std::shared_ptr<OpenObject> object = open_for_range(path);
    if (!object) return std::nullopt;
    return read_piece(object->fd, object->size, range->offset, range->length, path);
  }
  const auto opened = open_object(path);
  if (!opened) return std::nullopt;
  FileDescriptor closer(opened->first);
  return read_piece(opened->first, opened->second, 0, opened->second, path);
}

std::optional<ObjectInfo> PosixStore::stat(const std::string& name) {
  require_valid_object_name(name);
  const std::string path = join(root_, name);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (is_absent(errno)) return std::nullopt;
    throw_errno("stat " + path);
  }
  if (!S_ISREG(st.st_mode)) return std::nullopt;
  return ObjectInfo{name, static_cast<std::uint64_t>(st.st_size), mtime_us(st)};
}

std::vector<ObjectInfo> PosixStore::list(const std::string& prefix) {
  // Every match lies under the directory that the prefix's part before its
  // last '/' names, so only that subtree is walked. That part is a valid name
  // whenever anything can match, which also keeps "../" out of the walk.
  std::string start;
  if (const auto slash = prefix.find_last_of('/'); slash != std::string::npos) {
    start = prefix.substr(0, slash);
    if (!is_valid_object_name(start)) return {};
  }
  std::vector<ObjectInfo> out;
  walk(
      root_, start,
      [&](const std::string& rel) {
        const std::string dir = rel + "/";
        return dir.starts_with(prefix) || prefix.starts_with(dir);
      },
      [&](const WalkEntry& entry) {
        if (!S_ISREG(entry.st.st_mode) || !is_valid_object_name(entry.name)) return;
        std::string name = join(entry.rel_dir, entry.name);
        if (name.starts_with(prefix)) {
          out.push_back(
              {std::move(name), static_cast<std::uint64_t>(entry.st.st_size), mtime_us(entry.st)});
        }
      });
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
  return out;
}

bool PosixStore::remove(const std::string& name) {
  require_valid_object_name(name);
  const std::string path = join(root_, name);
  forget_open(path);
  if (::unlink(path.c_str()) != 0) {
    if (is_absent(errno) || errno == EISDIR) return false;
    throw_errno("remove " + path);
  }
  fsync_dir(dir_name(path));
  return true;
}

Capabilities PosixStore::capabilities() const {
  return {.exclusive_create = true, .reports_space = true};
}

std::optional<SpaceInfo> PosixStore::space() {
  struct statvfs vfs {};
  if (::statvfs(root_.c_str(), &vfs) != 0) throw_errno("statvfs " + root_);
  // f_bavail, not f_bfree: the blocks reserved for root are not ours to plan with.
  return SpaceInfo{.total_bytes = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize,
                   .free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize};
}

std::size_t PosixStore::clean_temp_files(long min_age_seconds) {
  const std::time_t now = std::time(nullptr);
  std::size_t removed = 0;
  walk(
      root_, "", [](const std::string&) { return true; },
      [&](const WalkEntry& entry) {
        if (!S_ISREG(entry.st.st_mode) || !std::string_view(entry.name).starts_with(kTempPrefix)) {
          return;
        }
        if (now - entry.st.st_mtime < min_age_seconds) return;  // maybe a put still writing
        if (::unlinkat(entry.dir_fd, entry.name, 0) == 0) {
          ++removed;
        } else if (errno != ENOENT) {  // ENOENT: a concurrent cleaner was faster
          throw_errno("remove " + join(join(root_, entry.rel_dir), entry.name));
        }
      });
  return removed;
}

}  // namespace walvault::store
