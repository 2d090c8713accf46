#include "core/file_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <random>

#include "core/direct_io.h"
#include "core/error.h"

namespace walvault {

namespace {

// The temp file lives beside the target as ".tmp.<pid>.<counter>.<random>":
// hidden, recognisable by its prefix alone (PosixStore skips and cleans such
// names; object names never start with '.'), and free of the target's base
// name so that a long target name cannot push it past NAME_MAX. The pid keeps
// forked children apart even though they inherit the counter and generator.
// The generator's seed comes from getrandom(2): std::random_device probes the
// CPU (cpuid) first, which a virtual machine traps, and that cost ~75 us in
// every short-lived process (archive-push, archive-get).
std::uint64_t generator_seed() {
  std::uint64_t seed = 0;
  if (::getrandom(&seed, sizeof seed, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof seed))
    seed = static_cast<std::uint64_t>(::getpid()) << 32 ^
           static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&seed));
  return seed;
}

std::string temp_name_for(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  thread_local std::mt19937_64 rng{generator_seed()};
  const std::size_t dir_end = path.find_last_of('/') + 1;  // 0 when there is no '/'
  return path.substr(0, dir_end) + ".tmp." + std::to_string(::getpid()) + "." +
         std::to_string(counter.fetch_add(1)) + "." + std::to_string(rng() & 0xffffff);
}

void write_all(int fd, ByteView data, const std::string& what) {
  const std::uint8_t* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write " + what);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// Large objects whose bytes start on a block boundary (pack buffers) go
// around the page cache: no copy into it, and the fsync after finds the data
// already on the disk. The tail past the last whole block, and everything
// when the file system refuses direct I/O, is written normally.
constexpr std::size_t kDirectMinBytes = 1u << 20;

void write_maybe_direct(int fd, ByteView data, const std::string& what) {
  std::size_t done = 0;
  const bool aligned = reinterpret_cast<std::uintptr_t>(data.data()) % kDirectAlign == 0;
  const int flags = ::fcntl(fd, F_GETFL);
  if (data.size() >= kDirectMinBytes && aligned && flags >= 0 &&
      ::fcntl(fd, F_SETFL, flags | O_DIRECT) == 0) {
    const std::size_t blocks = data.size() / kDirectAlign * kDirectAlign;
    done = pwrite_direct(fd, data.data(), blocks, 0, "write " + what);
    if (::fcntl(fd, F_SETFL, flags) != 0) throw_errno("write " + what);
  }
  if (done == 0) return write_all(fd, data, what);
  pwrite_all(fd, data.data() + done, data.size() - done, done, "write " + what);
}

}  // namespace

std::string dir_name(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string base_name(const std::string& path) {
  auto pos = path.find_last_of('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("open directory " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw_errno("fsync directory " + dir, err);
}

bool write_file_atomic(const std::string& path, ByteView data, unsigned mode, Overwrite overwrite,
                       Durability durability) {
  const std::string tmp = temp_name_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw_errno("create " + tmp);
  try {
    write_maybe_direct(fd, data, tmp);
    if (durability == Durability::kFsync && ::fsync(fd) != 0) throw_errno("fsync " + tmp);
    // Only a hint: a failure to start the writeback is the later fsync's to report.
    if (durability == Durability::kStartWriteback)
      (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (::close(fd) != 0) {
      fd = -1;
      throw_errno("close " + tmp);
    }
    fd = -1;
    if (overwrite == Overwrite::kYes) {
      if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("rename to " + path);
    } else {
      if (::link(tmp.c_str(), path.c_str()) != 0) {
        if (errno == EEXIST) {
          ::unlink(tmp.c_str());
          return false;
        }
        throw_errno("link to " + path);
      }
      ::unlink(tmp.c_str());
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (durability == Durability::kFsync) fsync_dir(dir_name(path));
  return true;
}

std::optional<Bytes> read_file(const std::string& path, std::size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // ENOTDIR: a leading component is a file, so this file cannot exist either.
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw_errno("open " + path);
  }
  // Read straight into the result. One byte beyond the size fstat reports lets
  // the final zero-length read confirm EOF without growing the buffer; a file
  // that grows meanwhile is still read to its end.
  struct stat st {};
  std::size_t capacity = 1 << 16;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) capacity = static_cast<std::size_t>(st.st_size) + 1;
  capacity = std::min(capacity, max_bytes);
  Bytes out(capacity);
  std::size_t used = 0;
  while (used < max_bytes) {
    if (used == out.size()) out.resize(std::min(out.size() * 2, max_bytes));
    ssize_t n = ::read(fd, out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw_errno("read " + path, err);
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(used);
  return out;
}

void make_dirs(const std::string& path) {
  if (path.empty()) return;
  std::string cur;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("mkdir " + cur);
  }
}

}  // namespace walvault

namespace walvault {

std::optional<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("open " + path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw_errno("stat " + path, err);
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return MappedFile(nullptr, 0);
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw_errno("mmap " + path, err);
  return MappedFile(static_cast<const std::uint8_t*>(p), size);
}

MappedFile::MappedFile(MappedFile&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

}  // namespace walvault
