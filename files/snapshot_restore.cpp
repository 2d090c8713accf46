#include "files/snapshot_restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "core/contained_dir.h"
#include "core/direct_io.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/relative_path.h"
#include "files/identities.h"
#include "files/names.h"
#include "files/snapshot_backup.h"

namespace walvault::files {
namespace {

struct timespec to_timespec(std::int64_t ns) {
  struct timespec t;
  t.tv_sec = ns / 1'000'000'000;
  t.tv_nsec = ns % 1'000'000'000;
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1'000'000'000;
    --t.tv_sec;
  }
  return t;
}

// Which paths of the snapshot are restored.
class Selection {
 public:
  explicit Selection(const std::vector<std::string>& includes) {
    for (const std::string& p : includes) {
      require_relative_path(p, ErrorCode::kUsage, "include path");
      if (p == ".") {
        includes_.clear();
        all_ = true;
        return;
      }
      includes_.push_back(p);
    }
    all_ = includes_.empty();
  }
  // The whole of `path` and everything below it.
  bool whole(const std::string& path) {
    if (all_) return true;
    for (const std::string& inc : includes_)
      if (path == inc ||
          (path.size() > inc.size() && path.starts_with(inc) && path[inc.size()] == '/')) {
        matched_.insert(inc);
        return true;
      }
    return false;
  }
  // A directory on the way to an included path.
  bool on_the_way(const std::string& path) const {
    for (const std::string& inc : includes_)
      if (inc.size() > path.size() && inc.starts_with(path) && inc[path.size()] == '/') return true;
    return false;
  }
  void require_all_matched() const {
    for (const std::string& inc : includes_)
      if (!matched_.count(inc))
        throw Error(ErrorCode::kNotFound,
                    "include path " + printable_name(inc) + ": not in the snapshot");
  }

 private:
  bool all_ = false;
  std::vector<std::string> includes_;
  std::set<std::string> matched_;
};

// How open() creates a fresh file in the target's tree (Restore::creation).
struct Creation {
  bool plain = false;
  uid_t euid = 0;
  gid_t egid = 0;
  mode_t umask_bits = 0777;
};

// This process's umask, read without changing it (umask(2) would, for every
// thread), from /proc/self/status; none where that is not available.
std::optional<mode_t> current_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("Umask:")) {
      try {
        return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8) & 0777);
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
  return std::nullopt;
}

// Whether files created below `target_fd` get the creating process's owner
// and their open() mode less the umask: the target is not setgid (its new
// directories, 0700 until done, then are not either) and has no default ACL.
// Delta restores keep the directories they find, so they never count on it.
Creation creation_rules(int target_fd, bool delta) {
  Creation c;
  const std::optional<mode_t> mask = current_umask();
  struct stat st;
  if (delta || !mask || fstat(target_fd, &st) != 0 || (st.st_mode & S_ISGID) != 0) return c;
  if (fgetxattr(target_fd, "system.posix_acl_default", nullptr, 0) >= 0 ||
      (errno != ENODATA && errno != ENOTSUP))
    return c;
  c.plain = true;
  c.euid = geteuid();
  c.egid = getegid();
  c.umask_bits = *mask;
  return c;
}

// How a fresh file gets its name once written (naming_rule): it is created
// unnamed (O_TMPFILE) and linked under its name, by its descriptor
// (AT_EMPTY_PATH; before Linux 6.10 only with CAP_DAC_READ_SEARCH) or by its
// /proc/self/fd path; or it is created under a temporary name and renamed.
// Either way a half-written file never carries its real name.
enum class Naming { kTempName, kLinkDescriptor, kLinkProcPath };

// What the walk and the file writers share. The walk alone touches
// `selection` and `links`; writers count and warn under `mu`.
struct Restore {
  repo::ChunkStore& chunks;
  const RestoreOptions& options;
  RestoreStats& stats;
  const ContainedDir& target;
  Selection selection;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::string> links;  // (dev, ino) -> path
  std::atomic<std::uint64_t> temp_counter{0};
  std::mutex mu;
  // Set once anything failed: directories still open then get no metadata.
  std::atomic<bool> aborted{false};
  // Whether large files are still written with direct I/O (cleared when the
  // file system refuses it).
  std::atomic<bool> direct{true};
  FirstError failure;                   // a directory's metadata that could not be set
  std::unique_ptr<WorkerPool> writers;  // none with parallel 1
  Identities ids;                       // owner names -> ids here
  // What a fresh file gets when it is created: when `plain`, its owner is
  // (euid, egid) and its mode what open's mode leaves after `umask_bits`
  // (no setgid directory, no default ACL in the target, not delta).
  Creation creation;
  Naming naming = Naming::kTempName;

  void warn(const std::string& rel, const std::string& what) {
    std::lock_guard lock(mu);
    stats.warnings.push_back(printable_name(rel) + ": " + what);
  }
  void count(std::uint64_t RestoreStats::*field, std::uint64_t n = 1) {
    std::lock_guard lock(mu);
    stats.*field += n;
  }
  std::string temp_name() { return ".walvault-restore-" + std::to_string(++temp_counter); }
};

uid_t owner_uid(Restore& r, const Node& n) { return r.ids.uid(n.user, n.uid); }
gid_t owner_gid(Restore& r, const Node& n) { return r.ids.gid(n.group, n.gid); }

// What creating a fresh regular file for `n` already settles: the mode to
// create it with, and whether that mode and its owner are final. Special
// bits always take an fchmod after the fchown (which clears them).
struct Created {
  mode_t mode = 0600;
  bool owner_done = false;
  bool mode_done = false;
};

Created created_file(Restore& r, const Node& n) {
  Created c;
  if (!r.creation.plain) return c;
  c.owner_done = !r.options.restore_owner ||
                 (owner_uid(r, n) == r.creation.euid && owner_gid(r, n) == r.creation.egid);
  const mode_t mode = n.mode & 07777;
  if ((mode & (07000 | r.creation.umask_bits)) == 0 && c.owner_done) {
    c.mode = mode;
    c.mode_done = true;
  }
  return c;
}

// Owner, mode, extended attributes and times of an open file or directory;
// `done` says what its creation already set.
void set_metadata(Restore& r, int fd, const std::string& rel, const Node& n,
                  const Created& done = {}) {
  const std::string what = r.target.display(rel);
  if (r.options.restore_owner && !done.owner_done &&
      fchown(fd, owner_uid(r, n), owner_gid(r, n)) != 0)
    throw_errno("chown " + what, errno);
  if (!done.mode_done && fchmod(fd, n.mode) != 0) throw_errno("chmod " + what, errno);
  for (const Xattr& x : n.xattrs)
    if (fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0) != 0) {
      if (errno == ENOTSUP || errno == EPERM)
        r.warn(rel, "extended attribute " + x.name + " not restored: " + std::strerror(errno));
      else
        throw_errno("set extended attribute " + x.name + " on " + what, errno);
    }
  const struct timespec times[2] = {to_timespec(n.mtime_ns), to_timespec(n.mtime_ns)};
  if (futimens(fd, times) != 0) throw_errno("set times of " + what, errno);
}

// Owner and times of a link or special file, by name (never followed).
void set_metadata_at(Restore& r, int dir_fd, const std::string& name, const std::string& rel,
                     const Node& n) {
  const std::string what = r.target.display(rel);
  if (r.options.restore_owner &&
      fchownat(dir_fd, name.c_str(), owner_uid(r, n), owner_gid(r, n), AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno("chown " + what, errno);
  if (n.type != NodeType::kSymlink && fchmodat(dir_fd, name.c_str(), n.mode, 0) != 0)
    throw_errno("chmod " + what, errno);
  const struct timespec times[2] = {to_timespec(n.mtime_ns), to_timespec(n.mtime_ns)};
  if (utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno("set times of " + what, errno);
}

// Where a chunk's bytes go in its file: pieces (file offset, length) of the
// node's extents, concatenated; `extent` and `in_extent` walk them.
std::vector<std::pair<std::uint64_t, std::uint64_t>> chunk_pieces(const Node& n,
                                                                  std::uint64_t length,
                                                                  std::size_t& extent,
                                                                  std::uint64_t& in_extent) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pieces;
  while (length > 0) {
    const Extent& e = n.extents[extent];
    const std::uint64_t take = std::min(length, e.length - in_extent);
    pieces.emplace_back(e.offset + in_extent, take);
    length -= take;
    in_extent += take;
    if (in_extent == e.length) {
      ++extent;
      in_extent = 0;
    }
  }
  return pieces;
}

// A chunk of `rel`'s content, opened (into `scratch` when stored alone).
ByteView fetch_chunk(Restore& r, const ChunkRef& c, const std::string& rel, Bytes& scratch) {
  const std::optional<ByteView> data =
      r.chunks.read_view(c.id, scratch, repo::ChunkCheck::kRecorded);
  if (!data)
    throw Error(ErrorCode::kCorruption, "chunk " + to_hex(c.id) + " of " + printable_name(rel) +
                                            " is not in the repository");
  if (data->size() != c.length)
    throw Error(ErrorCode::kCorruption,
                "chunk " + to_hex(c.id) + " of " + printable_name(rel) + " has the wrong length");
  return *data;
}

// Writes the chunks of `n` into `fd` at their places in the file (the
// extents, concatenated) and returns the bytes written. With `compare`, a
// chunk whose bytes are already there is not written.
std::uint64_t write_content(Restore& r, int fd, const std::string& rel, const Node& n,
                            bool compare) {
  thread_local Bytes scratch;  // a chunk stored alone, opened (ChunkStore::read_view)
  const std::string what = "write " + r.target.display(rel);
  std::size_t extent = 0;
  std::uint64_t in_extent = 0;
  std::uint64_t written = 0;
  Bytes existing;
  for (const ChunkRef& c : n.chunks) {
    const auto pieces = chunk_pieces(n, c.length, extent, in_extent);
    if (compare) {
      existing.resize(c.length);
      std::size_t at = 0;
      bool ok = true;
      for (auto [off, len] : pieces) {
        const ssize_t got = pread(fd, existing.data() + at, len, static_cast<off_t>(off));
        ok = ok && got == static_cast<ssize_t>(len);
        at += len;
      }
      if (ok && r.chunks.chunk_id(existing) == c.id) continue;
    }
    const ByteView data = fetch_chunk(r, c, rel, scratch);
    std::size_t at = 0;
    for (auto [off, len] : pieces) {
      pwrite_all(fd, data.data() + at, len, off, what);
      at += len;
    }
    written += c.length;
  }
  r.count(&RestoreStats::written_bytes, written);
  return written;
}

// Files this large, of one extent from offset 0 (no holes), are written
// with direct I/O: their bytes go to the disk while the restore runs instead
// of all at the final syncfs, and are not copied into the page cache.
constexpr std::uint64_t kDirectMinBytes = 1u << 20;
constexpr std::size_t kDirectBufferBytes = 4u << 20;

bool direct_candidate(const Restore& r, const Node& n) {
  return r.direct.load(std::memory_order_relaxed) && n.size >= kDirectMinBytes &&
         n.extents.size() == 1 && n.extents[0].offset == 0 && n.extents[0].length == n.size;
}

// Writes a fresh file (opened O_DIRECT; direct_candidate) from its chunks,
// gathered in an aligned buffer and written as it fills; the last block is
// padded with zeros and the file cut back to its size. What the file system
// refuses to take directly goes through the page cache from then on.
void write_content_direct(Restore& r, int fd, const std::string& rel, const Node& n) {
  thread_local Bytes scratch;
  thread_local AlignedBuffer buffer(kDirectBufferBytes);
  const std::string what = "write " + r.target.display(rel);
  bool direct = true;
  std::size_t gathered = 0;
  std::uint64_t offset = 0;
  auto flush = [&](std::size_t length) {  // length: gathered, rounded up to a block
    const std::size_t done = direct ? pwrite_direct(fd, buffer.data(), length, offset, what) : 0;
    if (done < length && direct) {
      direct = false;
      const int flags = fcntl(fd, F_GETFL);
      if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_DIRECT) != 0)
        throw_errno("write " + r.target.display(rel), errno);
    }
    if (done < gathered) pwrite_all(fd, buffer.data() + done, gathered - done, offset + done, what);
    offset += gathered;
    gathered = 0;
  };
  for (const ChunkRef& c : n.chunks) {
    const ByteView data = fetch_chunk(r, c, rel, scratch);
    for (std::size_t at = 0; at < data.size();) {
      const std::size_t take = std::min(buffer.size() - gathered, data.size() - at);
      std::memcpy(buffer.data() + gathered, data.data() + at, take);
      gathered += take;
      at += take;
      if (gathered == buffer.size()) flush(gathered);
    }
  }
  if (gathered > 0) {
    const std::size_t padded = (gathered + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    std::memset(buffer.data() + gathered, 0, padded - gathered);
    flush(padded);
  }
  if (ftruncate(fd, static_cast<off_t>(n.size)) != 0)
    throw_errno("size " + r.target.display(rel), errno);
  if (!direct) r.direct.store(false, std::memory_order_relaxed);
  r.count(&RestoreStats::written_bytes, n.size);
}

// Makes room for a new entry `name`: a directory in the way is removed (its
// contents too, never following links); other kinds are replaced by rename.
void clear_directory_in_the_way(Restore& r, int dir_fd, const std::string& name,
                                const std::string& rel) {
  struct stat st;
  if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
    remove_all_at(dir_fd, name, r.target.display(rel));
}

// A hard link to an entry restored earlier, into a temporary name; false
// when this is the first of its group (or it is not linked).
bool link_to_earlier(Restore& r, int dir_fd, const std::string& temp, const Node& n) {
  if (n.nlink < 2) return false;
  const auto it = r.links.find({n.device, n.inode});
  if (it == r.links.end()) return false;
  const auto slot = r.target.slot_if_present(it->second);
  if (!slot) return false;
  return linkat(slot->dir.get(), slot->name.c_str(), dir_fd, temp.c_str(), 0) == 0;
}

// Links the unnamed file `fd` as `name` in `dir_fd`, the way `naming` says.
int link_unnamed(Naming naming, int fd, int dir_fd, const char* name) {
  if (naming == Naming::kLinkDescriptor) return linkat(fd, "", dir_fd, name, AT_EMPTY_PATH);
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  return linkat(AT_FDCWD, path.c_str(), dir_fd, name, AT_SYMLINK_FOLLOW);
}

// How fresh files below `target_fd` get their names: unnamed and linked where
// the file system makes unnamed files (O_TMPFILE) and one of the two ways to
// link them works here (tried once, on a probe file linked and removed in
// the target, which is empty then); else temporary names. Delta restores
// replace names that exist, which only rename does.
Naming naming_rule(int target_fd, bool delta) {
  if (delta) return Naming::kTempName;
  const std::string probe = ".walvault-restore-probe-" + std::to_string(getpid());
  for (const Naming way : {Naming::kLinkDescriptor, Naming::kLinkProcPath}) {
    UniqueFd fd(openat(target_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
    if (fd.get() < 0) return Naming::kTempName;
    if (link_unnamed(way, fd.get(), target_fd, probe.c_str()) == 0) {
      if (unlinkat(target_fd, probe.c_str(), 0) != 0) throw_errno("remove " + probe, errno);
      return way;
    }
  }
  return Naming::kTempName;
}

// A fresh regular file being written: unnamed until published, or under the
// temporary name `temp`.
struct NewFile {
  UniqueFd fd;
  std::string temp;  // empty when unnamed
};

// Creates the file `rel` will be, with `mode`; `direct` asks for O_DIRECT and
// is cleared when the file system refuses it.
NewFile create_new_file(Restore& r, int dir_fd, const std::string& rel, mode_t mode, bool& direct) {
  NewFile f;
  const bool unnamed = r.naming != Naming::kTempName;
  if (!unnamed) f.temp = r.temp_name();
  const auto open_it = [&](int extra) {
    return unnamed ? openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC | extra, mode)
                   : openat(dir_fd, f.temp.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | extra, mode);
  };
  f.fd = UniqueFd(open_it(direct ? O_DIRECT : 0));
  if (f.fd.get() < 0 && direct && errno == EINVAL) {  // no direct I/O on this file system
    r.direct.store(false, std::memory_order_relaxed);
    direct = false;
    f.fd = UniqueFd(open_it(0));
  }
  if (f.fd.get() < 0) throw_errno("create " + r.target.display(join_path(rel, f.temp)), errno);
  return f;
}

// Gives the written file `f` its name `n.name`.
void publish(Restore& r, int dir_fd, const NewFile& f, const std::string& rel, const Node& n) {
  if (f.temp.empty()) {
    if (link_unnamed(r.naming, f.fd.get(), dir_fd, n.name.c_str()) != 0)
      throw_errno("link into " + r.target.display(rel), errno);
  } else if (renameat(dir_fd, f.temp.c_str(), dir_fd, n.name.c_str()) != 0) {
    throw_errno("rename into " + r.target.display(rel), errno);
  }
}

// Delta: rewrites only the chunks of an existing file that differ, when it is
// a plain file of the recorded size; false when it is not.
bool update_in_place(Restore& r, int dir_fd, const std::string& rel, const Node& n) {
  struct stat st;
  if (fstatat(dir_fd, n.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<std::uint64_t>(st.st_size) != n.size || st.st_nlink != 1 ||
      n.extents.size() != (n.size > 0 ? 1u : 0u))
    return false;
  UniqueFd fd(openat(dir_fd, n.name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) throw_errno("open " + r.target.display(rel), errno);
  if (write_content(r, fd.get(), rel, n, true) == 0) r.count(&RestoreStats::unchanged_files);
  set_metadata(r, fd.get(), rel, n);
  if (n.nlink > 1) r.links.emplace(std::make_pair(n.device, n.inode), rel);
  return true;
}

void restore_file(Restore& r, int dir_fd, const std::string& rel, const Node& n) {
  r.count(&RestoreStats::files);
  if (r.options.delta) {
    if (update_in_place(r, dir_fd, rel, n)) return;
    clear_directory_in_the_way(r, dir_fd, n.name, rel);
  }
  if (n.nlink > 1) {
    const std::string temp = r.temp_name();
    if (link_to_earlier(r, dir_fd, temp, n)) {
      if (renameat(dir_fd, temp.c_str(), dir_fd, n.name.c_str()) != 0)
        throw_errno("rename into " + r.target.display(rel), errno);
      return;
    }
  }
  bool direct = direct_candidate(r, n);
  const Created created = created_file(r, n);
  const NewFile f = create_new_file(r, dir_fd, rel, created.mode, direct);
  try {
    if (direct) {
      write_content_direct(r, f.fd.get(), rel, n);
    } else {
      // Written bytes set the size, except a hole at the end (sparse).
      const bool hole_at_end = n.extents.empty()
                                   ? n.size > 0
                                   : n.extents.back().offset + n.extents.back().length < n.size;
      if (hole_at_end && ftruncate(f.fd.get(), static_cast<off_t>(n.size)) != 0)
        throw_errno("size " + r.target.display(rel), errno);
      write_content(r, f.fd.get(), rel, n, false);
    }
    set_metadata(r, f.fd.get(), rel, n, created);
    publish(r, dir_fd, f, rel, n);
  } catch (...) {
    if (!f.temp.empty()) unlinkat(dir_fd, f.temp.c_str(), 0);
    throw;
  }
  if (n.nlink > 1) r.links.emplace(std::make_pair(n.device, n.inode), rel);
}

// A symbolic link, FIFO, socket or device, created under a temporary name and
// renamed into place.
void restore_special(Restore& r, int dir_fd, const std::string& rel, const Node& n) {
  const std::string temp = r.temp_name();
  int rc;
  switch (n.type) {
    case NodeType::kSymlink:
      rc = symlinkat(n.link_target.c_str(), dir_fd, temp.c_str());
      break;
    case NodeType::kFifo:
      rc = mkfifoat(dir_fd, temp.c_str(), 0600);
      break;
    case NodeType::kSocket:
      rc = mknodat(dir_fd, temp.c_str(), S_IFSOCK | 0600, 0);
      break;
    default:
      if (geteuid() != 0) {
        r.warn(rel, "device not restored (needs root)");
        return;
      }
      rc = mknodat(dir_fd, temp.c_str(),
                   (n.type == NodeType::kCharDevice ? S_IFCHR : S_IFBLK) | 0600,
                   static_cast<dev_t>(n.rdev));
  }
  if (rc != 0) throw_errno("create " + r.target.display(rel), errno);
  if (r.options.delta) clear_directory_in_the_way(r, dir_fd, n.name, rel);
  set_metadata_at(r, dir_fd, temp, rel, n);
  if (renameat(dir_fd, temp.c_str(), dir_fd, n.name.c_str()) != 0) {
    const int err = errno;
    unlinkat(dir_fd, temp.c_str(), 0);
    throw_errno("rename into " + r.target.display(rel), err);
  }
  ++r.stats.other;
}

// A directory being restored. Its descriptor and tree stay open while
// anything in it is being written: the walk holds it while it goes through
// the entries, and so do each file handed to a writer and each
// subdirectory. The last holder to let go sets its metadata (its mtime moves
// with every entry created in it), so the walk goes on to the next directory
// while writers finish this one, and a directory is done only after its
// subdirectories.
struct OpenDir {
  Restore& r;
  std::shared_ptr<OpenDir> parent;  // kept open until this one is done
  UniqueFd fd;
  std::string rel;
  Tree tree;
  const Node* node;  // its entry in the parent's tree; none for the target itself
  bool whole;

  OpenDir(Restore& restore, std::shared_ptr<OpenDir> up, UniqueFd dir, std::string path, Tree t,
          const Node* entry, bool all)
      : r(restore),
        parent(std::move(up)),
        fd(std::move(dir)),
        rel(std::move(path)),
        tree(std::move(t)),
        node(entry),
        whole(all) {}
  OpenDir(const OpenDir&) = delete;
  OpenDir& operator=(const OpenDir&) = delete;
  ~OpenDir() {
    // Not after a failure: the walk unwinding, or a writer that failed.
    if (!node || r.aborted.load() || std::uncaught_exceptions() > 0) return;
    try {
      if (whole) set_metadata(r, fd.get(), rel, *node);
      r.count(&RestoreStats::directories);
    } catch (...) {
      r.aborted.store(true);
      r.failure.capture_current();
    }
  }
};

struct FileBatch;
void restore_directory(Restore& r, const std::shared_ptr<OpenDir>& dir, FileBatch& batch);

// A subdirectory: created (or, with delta, kept when it is one), then
// filled; it gets its metadata when the last of its entries is done.
void restore_subdirectory(Restore& r, const std::shared_ptr<OpenDir>& parent,
                          const std::string& rel, const Node& n, bool whole, FileBatch& batch) {
  const int dir_fd = parent->fd.get();
  if (mkdirat(dir_fd, n.name.c_str(), 0700) != 0) {
    if (errno != EEXIST) throw_errno("create " + r.target.display(rel), errno);
    struct stat st;
    const bool is_dir =
        fstatat(dir_fd, n.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    if (!is_dir) {
      if (!r.options.delta)
        throw Error(ErrorCode::kConflict, r.target.display(rel) + " exists and is not a directory");
      remove_all_at(dir_fd, n.name, r.target.display(rel));
      if (mkdirat(dir_fd, n.name.c_str(), 0700) != 0)
        throw_errno("create " + r.target.display(rel), errno);
    }
  }
  UniqueFd sub(openat(dir_fd, n.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (sub.get() < 0) throw_path_errno("open " + r.target.display(rel), errno);
  std::optional<Tree> tree = load_tree(r.chunks, n.subtree);
  if (!tree)
    throw Error(ErrorCode::kCorruption, "tree " + to_hex(n.subtree) + " of " + printable_name(rel) +
                                            " is not in the repository");
  restore_directory(
      r, std::make_shared<OpenDir>(r, parent, std::move(sub), rel, std::move(*tree), &n, whole),
      batch);
}

// Delta: removes what the directory holds and the tree does not.
void prune(Restore& r, int dir_fd, const std::string& rel, const Tree& tree) {
  std::set<std::string> keep;
  for (const Node& n : tree.nodes) keep.insert(n.name);
  UniqueFd fd(openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) throw_errno("list " + r.target.display(rel), errno);
  DIR* dir = fdopendir(fd.release());
  if (!dir) throw_errno("list " + r.target.display(rel), errno);
  std::vector<std::string> extra;
  while (const struct dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name != "." && name != ".." && !keep.count(name)) extra.push_back(name);
  }
  closedir(dir);
  for (const std::string& name : extra) {
    remove_all_at(dir_fd, name, r.target.display(join_path(rel, name)));
    ++r.stats.removed;
  }
}

// Files handed to a writer together. Small files are gathered up to
// kBatchBytes or kBatchFiles, so that writers take turns less often and the
// pool hands over fewer tasks; a batch goes on across directories, in walk
// order, and ends only where the next file reads no frame the batch reads.
// The backup sealed small files' chunks in walk order, several files to a
// frame (one envelope); a frame whose files went to two writers was opened
// (read, decrypted, decompressed) twice, and the files bench's restore read
// 2.2x the repository's bytes. However the frames fall, a batch ends at
// kBatchLimit times the size, and before a file of a (kBatchDirs + 1)th
// directory: a batch holds its directories open (OpenDir) until its files
// are written, so the descriptors held by the batches waiting in the pool
// stay in the hundreds whatever the tree's shape.
constexpr std::uint64_t kBatchBytes = 1u << 20;
constexpr std::size_t kBatchFiles = 64;
constexpr std::size_t kBatchLimit = 4;
constexpr std::size_t kBatchDirs = 8;

// A frame of the chunk store: an envelope in a pack.
struct FrameKey {
  repo::ChunkId pack;
  std::uint64_t offset = 0;
  bool operator==(const FrameKey&) const = default;
};

struct FileBatch {
  struct File {
    std::shared_ptr<OpenDir> dir;
    std::string path;
    const Node* node;
  };
  std::vector<File> files;
  std::uint64_t bytes = 0;
  std::size_t dirs = 0;          // runs of files of one directory
  std::vector<FrameKey> frames;  // shared frames its files read
};

// The frames holding `n`'s chunks together with other chunks (a chunk that
// is its envelope's whole content is nobody else's frame), in order; a
// chunk the index lacks is left to the writer to report.
std::vector<FrameKey> shared_frames(Restore& r, const Node& n) {
  std::vector<FrameKey> frames;
  for (const ChunkRef& c : n.chunks) {
    const std::optional<repo::ChunkLocation> loc = r.chunks.locate(c.id);
    if (!loc || loc->inner_length == 0) continue;
    FrameKey key{loc->pack, loc->offset};
    if (frames.empty() || frames.back() != key) frames.push_back(key);
  }
  return frames;
}

void submit_batch(Restore& r, FileBatch& batch) {
  if (batch.files.empty()) return;
  r.writers->submit([&r, files = std::move(batch.files)] {
    try {
      for (const FileBatch::File& f : files) restore_file(r, f.dir->fd.get(), f.path, *f.node);
    } catch (...) {
      r.aborted.store(true);
      throw;
    }
  });
  batch = FileBatch{};
}

// Adds a file of `dir` to the batch, handing the batch to a writer first
// when it is full and this file reads no frame the batch reads (or at a
// limit).
void add_to_batch(Restore& r, FileBatch& batch, const std::shared_ptr<OpenDir>& dir,
                  std::string path, const Node& n) {
  const std::vector<FrameKey> frames = shared_frames(r, n);
  const auto in_batch = [&batch](const FrameKey& k) {
    return std::find(batch.frames.begin(), batch.frames.end(), k) != batch.frames.end();
  };
  const bool other_dir = batch.files.empty() || batch.files.back().dir != dir;
  const bool full = batch.bytes >= kBatchBytes || batch.files.size() >= kBatchFiles;
  const bool at_limit = batch.bytes >= kBatchLimit * kBatchBytes ||
                        batch.files.size() >= kBatchLimit * kBatchFiles ||
                        (other_dir && batch.dirs >= kBatchDirs);
  if (at_limit || (full && std::none_of(frames.begin(), frames.end(), in_batch)))
    submit_batch(r, batch);
  if (other_dir || batch.files.empty()) ++batch.dirs;
  batch.files.push_back({dir, std::move(path), &n});
  batch.bytes += n.size;
  for (const FrameKey& k : frames)
    if (!in_batch(k)) batch.frames.push_back(k);
}

void restore_directory(Restore& r, const std::shared_ptr<OpenDir>& dir, FileBatch& batch) {
  const int dir_fd = dir->fd.get();
  if (dir->whole && r.options.delta) prune(r, dir_fd, dir->rel, dir->tree);
  for (const Node& n : dir->tree.nodes) {
    std::string path = join_path(dir->rel, n.name);
    const bool child_whole = dir->whole || r.selection.whole(path);
    if (!child_whole && !(n.type == NodeType::kDirectory && r.selection.on_the_way(path))) continue;
    switch (n.type) {
      case NodeType::kDirectory:
        restore_subdirectory(r, dir, path, n, child_whole, batch);
        break;
      case NodeType::kFile:
        // A link's first entry must be in place before the next: the walk
        // restores linked files itself.
        if (r.writers && n.nlink < 2)
          add_to_batch(r, batch, dir, std::move(path), n);
        else
          restore_file(r, dir_fd, path, n);
        break;
      default:
        restore_special(r, dir_fd, path, n);
    }
  }
}

bool is_empty_directory(int fd) {
  UniqueFd copy(openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  DIR* dir = copy.get() >= 0 ? fdopendir(copy.release()) : nullptr;
  if (!dir) throw_errno("list the target", errno);
  bool empty = true;
  while (const struct dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") empty = false;
  }
  closedir(dir);
  return empty;
}

}  // namespace

void restore_snapshot(repo::ChunkStore& chunks, const repo::ChunkId& root,
                      const std::string& target, const RestoreOptions& options,
                      RestoreStats& stats) {
  if (mkdir(target.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("create " + target, errno);
  const ContainedDir dir(target);
  if (!options.delta && !is_empty_directory(dir.fd()))
    throw Error(ErrorCode::kConflict,
                "restore target " + target + " is not empty (--delta brings it to the snapshot)");
  std::optional<Tree> tree = load_tree(chunks, root);
  if (!tree)
    throw Error(ErrorCode::kCorruption, "root tree " + to_hex(root) + " is not in the repository");
  Restore r{chunks, options, stats, dir, Selection(options.includes)};
  r.creation = creation_rules(dir.fd(), options.delta);
  r.naming = naming_rule(dir.fd(), options.delta);
  if (options.parallel > 1)
    r.writers = std::make_unique<WorkerPool>(options.parallel,
                                             2 * static_cast<std::size_t>(options.parallel));
  const bool whole = r.selection.whole(".");
  try {
    UniqueFd root(openat(dir.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (root.get() < 0) throw_errno("open " + target, errno);
    FileBatch batch;
    restore_directory(r,
                      std::make_shared<OpenDir>(r, nullptr, std::move(root), ".", std::move(*tree),
                                                nullptr, whole),
                      batch);
    if (r.writers) {
      submit_batch(r, batch);
      r.writers->wait();
    }
  } catch (...) {
    r.aborted.store(true);
    if (r.writers) r.writers->drain();  // they use the directories and `r`
    throw;
  }
  r.failure.rethrow_if_failed();
  r.selection.require_all_matched();
  if (whole && options.root_metadata) set_metadata(r, dir.fd(), ".", *options.root_metadata);
  ++stats.directories;
  if (syncfs(dir.fd()) != 0) throw_errno("sync " + target, errno);
}

}  // namespace walvault::files
