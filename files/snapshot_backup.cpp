#include "files/snapshot_backup.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "core/contained_dir.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/relative_path.h"
#include "files/file_chunker.h"
#include "files/identities.h"
#include "files/names.h"

namespace walvault::files {
namespace {

// The pool that seals file data for the walk, or none with parallel 1.
std::unique_ptr<WorkerPool> sealing_pool(int parallel) {
  if (parallel <= 1) return nullptr;
  return std::make_unique<WorkerPool>(parallel, static_cast<std::size_t>(parallel));
}

struct Walk {
  repo::ChunkStore& chunks;
  const codec::CdcChunker& chunker;
  const SnapshotOptions& options;
  SnapshotStats& stats;
  dev_t root_device = 0;
  std::unique_ptr<WorkerPool> sealers = sealing_pool(options.parallel);
  FileChunker file_chunker{chunks, chunker, sealers.get()};
  Identities ids;

  void warn(const std::string& rel, const std::string& what) {
    stats.warnings.push_back(printable_name(rel) + ": " + what);
  }
  void left_out(const std::string& rel, const std::string& what) {
    warn(rel, what + " (left out)");
    ++stats.unreadable;
  }
};

bool excluded(const SnapshotOptions& options, const std::string& rel, const std::string& name) {
  for (const std::string& pattern : options.excludes) {
    const bool by_path = pattern.find('/') != std::string::npos;
    if (fnmatch(pattern.c_str(), (by_path ? rel : name).c_str(), by_path ? FNM_PATHNAME : 0) == 0)
      return true;
  }
  return false;
}

// The directory's entry names in byte order; throws Error(kIo).
std::vector<std::string> list_names(int dir_fd, const std::string& display) {
  const int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("list " + display, errno);
  DIR* dir = fdopendir(fd);
  if (!dir) {
    const int err = errno;
    close(fd);
    throw_errno("list " + display, err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (const struct dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
    errno = 0;
  }
  const int err = errno;
  closedir(dir);
  if (err != 0) throw_errno("list " + display, err);
  std::sort(names.begin(), names.end());
  return names;
}

NodeType type_of(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return NodeType::kFile;
    case S_IFDIR:
      return NodeType::kDirectory;
    case S_IFLNK:
      return NodeType::kSymlink;
    case S_IFIFO:
      return NodeType::kFifo;
    case S_IFCHR:
      return NodeType::kCharDevice;
    case S_IFBLK:
      return NodeType::kBlockDevice;
    default:
      return NodeType::kSocket;
  }
}

Node node_from_stat(Walk& w, const std::string& name, const struct stat& st) {
  Node n;
  n.name = name;
  n.type = type_of(st.st_mode);
  n.mode = st.st_mode & 07777;
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.user = w.ids.user(st.st_uid);
  n.group = w.ids.group(st.st_gid);
  n.mtime_ns = nanoseconds(st.st_mtim);
  n.ctime_ns = nanoseconds(st.st_ctim);
  n.device = st.st_dev;
  n.inode = st.st_ino;
  n.nlink = static_cast<std::uint32_t>(st.st_nlink);
  if (n.type == NodeType::kFile) n.size = static_cast<std::uint64_t>(st.st_size);
  if (n.type == NodeType::kCharDevice || n.type == NodeType::kBlockDevice) n.rdev = st.st_rdev;
  return n;
}

// Extended attributes (POSIX ACLs among them) of an open file or directory,
// in name order. A file system without them has none.
void read_xattrs(Walk& w, int fd, const std::string& rel, Node& n) {
  std::vector<char> names(4096);
  ssize_t len;
  while ((len = flistxattr(fd, names.data(), names.size())) < 0 && errno == ERANGE)
    names.resize(names.size() * 4);
  if (len < 0) {
    if (errno != ENOTSUP) w.warn(rel, std::string("extended attributes: ") + std::strerror(errno));
    return;
  }
  for (const char* p = names.data(); p < names.data() + len; p += std::strlen(p) + 1) {
    std::string value(256, '\0');
    ssize_t got;
    while ((got = fgetxattr(fd, p, value.data(), value.size())) < 0 && errno == ERANGE)
      value.resize(value.size() * 4);
    if (got < 0) {
      if (errno != ENODATA)
        w.warn(rel, std::string("extended attribute ") + p + ": " + std::strerror(errno));
      continue;
    }
    value.resize(static_cast<std::size_t>(got));
    n.xattrs.push_back({p, std::move(value)});
  }
  std::sort(n.xattrs.begin(), n.xattrs.end(),
            [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  if (auto problem = node_problem(n)) {
    w.warn(rel, "extended attributes not kept: " + *problem);
    n.xattrs.clear();
  }
}

// The data extents of an open file of `size` bytes (holes skipped).
std::vector<Extent> data_extents(int fd, std::uint64_t size) {
  std::vector<Extent> out;
  off_t at = 0;
  const off_t end = static_cast<off_t>(size);
  while (at < end) {
    const off_t data = lseek(fd, at, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      return size == 0 ? std::vector<Extent>{}
                       : std::vector<Extent>{{0, size}};  // no SEEK_DATA here
    }
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0 || hole > end) hole = end;
    if (data >= end) break;
    out.push_back({static_cast<std::uint64_t>(data), static_cast<std::uint64_t>(hole - data)});
    at = hole;
  }
  return out;
}

// Reads the extents of an open file into chunks. False (with the extents
// cut to what was there) when the file ended early; false with `read_error`
// set when a read failed.
bool read_extents(Walk& w, int fd, Node& n, int& read_error) {
  for (Extent& e : n.extents) {
    std::uint64_t done = 0;
    while (done < e.length) {
      const std::span<std::uint8_t> room = w.file_chunker.space();
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(e.length - done, room.size()));
      const ssize_t got = pread(fd, room.data(), want, static_cast<off_t>(e.offset + done));
      if (got < 0) {
        read_error = errno;
        return false;
      }
      if (got == 0) {  // shrank while read: keep what was there
        e.length = done;
        return false;
      }
      w.file_chunker.commit(static_cast<std::size_t>(got));
      done += static_cast<std::uint64_t>(got);
      w.stats.read_bytes += static_cast<std::uint64_t>(got);
    }
  }
  return true;
}

// A regular file's content into `n`; false when it was left out.
bool read_file(Walk& w, int dir_fd, const std::string& rel, Node& n) {
  int fd =
      openat(dir_fd, n.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM)  // O_NOATIME needs ownership
    fd = openat(dir_fd, n.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    w.left_out(rel,
               errno == ENOENT ? "vanished" : std::string("cannot open: ") + std::strerror(errno));
    return false;
  }
  UniqueFd file(fd);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    w.left_out(rel, "replaced by something that is not a regular file");
    return false;
  }
  n = node_from_stat(w, n.name, st);
  read_xattrs(w, fd, rel, n);
  n.extents = data_extents(fd, n.size);
  n.chunks.clear();
  // A failure of the chunk store is not this file's: it stops the snapshot.
  int read_error = 0;
  w.file_chunker.begin(n.chunks);
  const bool complete = read_extents(w, fd, n, read_error);
  if (read_error != 0) {
    w.left_out(rel, std::string("read: ") + std::strerror(read_error));
    return false;
  }
  w.file_chunker.end();
  std::erase_if(n.extents, [](const Extent& e) { return e.length == 0; });
  struct stat after;
  if (!complete || fstat(fd, &after) != 0 || after.st_size != st.st_size ||
      nanoseconds(after.st_mtim) != n.mtime_ns || nanoseconds(after.st_ctim) != n.ctime_ns)
    w.warn(rel, "changed while it was read (stored as read)");
  if (!complete) n.size = n.extents.empty() ? 0 : n.extents.back().offset + n.extents.back().length;
  return true;
}

// The parent snapshot's entry for `name`, if it has one.
const Node* parent_entry(const Tree* parent, const std::string& name) {
  if (!parent) return nullptr;
  auto it = std::lower_bound(parent->nodes.begin(), parent->nodes.end(), name,
                             [](const Node& n, const std::string& key) { return n.name < key; });
  return it != parent->nodes.end() && it->name == name ? &*it : nullptr;
}

bool unchanged(Walk& w, const Node& now, const Node* before) {
  if (w.options.force_reread || !before || before->type != NodeType::kFile) return false;
  if (before->inode != now.inode || before->size != now.size || before->mtime_ns != now.mtime_ns ||
      before->ctime_ns != now.ctime_ns)
    return false;
  return std::all_of(before->chunks.begin(), before->chunks.end(),
                     [&](const ChunkRef& c) { return w.chunks.contains(c.id); });
}

repo::ChunkId store_tree(Walk& w, const Tree& tree) {
  const repo::AddResult r = w.chunks.add(encode_tree(tree));
  w.stats.added_bytes += r.stored_bytes;
  return r.id;
}

repo::ChunkId walk_directory(Walk& w, int dir_fd, const std::string& rel, const Tree* parent);

// One entry of a directory into `tree`; nothing when it is left out.
void add_entry(Walk& w, Tree& tree, int dir_fd, const std::string& rel, const std::string& name,
               const Tree* parent) {
  const std::string path = join_path(rel, name);
  if (excluded(w.options, path, name)) return;
  struct stat st;
  if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    w.left_out(path,
               errno == ENOENT ? "vanished" : std::string("cannot stat: ") + std::strerror(errno));
    return;
  }
  Node n = node_from_stat(w, name, st);
  const Node* before = parent_entry(parent, name);
  switch (n.type) {
    case NodeType::kFile:
      if (unchanged(w, n, before)) {
        n.extents = before->extents;
        n.chunks = before->chunks;
        n.xattrs = before->xattrs;  // a change to them changes ctime
        ++w.stats.unchanged_files;
      } else if (!read_file(w, dir_fd, path, n)) {
        return;
      }
      ++w.stats.files;
      w.stats.bytes += n.size;
      break;
    case NodeType::kDirectory: {
      const int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        w.left_out(path, std::string("cannot open directory: ") + std::strerror(errno));
        return;
      }
      UniqueFd dir(fd);
      read_xattrs(w, fd, path, n);
      std::optional<Tree> before_tree;
      if (before && before->type == NodeType::kDirectory)
        before_tree = load_tree(w.chunks, before->subtree);
      if (w.options.one_file_system && st.st_dev != w.root_device)
        n.subtree = store_tree(w, Tree{});  // the mount point, empty
      else
        n.subtree = walk_directory(w, fd, path, before_tree ? &*before_tree : nullptr);
      ++w.stats.directories;
      break;
    }
    case NodeType::kSymlink: {
      std::string target(kMaxPathBytes + 1, '\0');
      const ssize_t len = readlinkat(dir_fd, name.c_str(), target.data(), target.size());
      if (len <= 0 || static_cast<std::size_t>(len) > kMaxPathBytes) {
        w.left_out(path, "cannot read the link");
        return;
      }
      target.resize(static_cast<std::size_t>(len));
      n.link_target = std::move(target);
      ++w.stats.other;
      break;
    }
    default:
      ++w.stats.other;
      break;
  }
  if (auto problem = node_problem(n)) {
    w.left_out(path, *problem);
    return;
  }
  tree.nodes.push_back(std::move(n));
}

repo::ChunkId walk_directory(Walk& w, int dir_fd, const std::string& rel, const Tree* parent) {
  Tree tree;
  std::vector<std::string> names;
  try {
    names = list_names(dir_fd, rel);
  } catch (const Error& e) {
    w.left_out(rel, e.what());
  }
  for (const std::string& name : names) add_entry(w, tree, dir_fd, rel, name, parent);
  return store_tree(w, tree);
}

}  // namespace

std::optional<Tree> load_tree(repo::ChunkStore& chunks, const repo::ChunkId& id) {
  const std::optional<Bytes> bytes = chunks.read(id);
  if (!bytes) return std::nullopt;
  return decode_tree(*bytes, "tree " + to_hex(id));
}

repo::ChunkId snapshot_directory(repo::ChunkStore& chunks, const codec::CdcChunker& chunker,
                                 const std::string& root,
                                 const std::optional<repo::ChunkId>& parent_root,
                                 const SnapshotOptions& options, SnapshotStats& stats) {
  const int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + root, errno);
  UniqueFd dir(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) throw_errno("stat " + root, errno);
  Walk w{chunks, chunker, options, stats};
  w.root_device = st.st_dev;
  std::optional<Tree> parent;
  if (parent_root) parent = load_tree(chunks, *parent_root);
  ++stats.directories;
  const repo::ChunkId id = walk_directory(w, fd, ".", parent ? &*parent : nullptr);
  w.file_chunker.finish();
  stats.added_bytes += w.file_chunker.added_bytes();
  return id;
}

}  // namespace walvault::files
