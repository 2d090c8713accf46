#include "files/tar_import.h"

#include <sys/sysmacros.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "core/error.h"
#include "core/relative_path.h"
#include "files/file_chunker.h"
#include "pg/tar_reader.h"

namespace walvault::files {
namespace {

// A directory being assembled: its own metadata and its entries by name.
struct DirModel {
  Node self;
  std::map<std::string, std::unique_ptr<DirModel>> dirs;
  std::map<std::string, Node> others;
};

Node default_directory(const std::string& name) {
  Node n;
  n.name = name;
  n.type = NodeType::kDirectory;
  n.mode = 0755;
  return n;
}

class ImportSink : public pg::TarEntrySink {
 public:
  ImportSink(repo::ChunkStore& chunks, const codec::CdcChunker& chunker, SnapshotStats& stats)
      : file_chunker_(chunks, chunker), stats_(stats) {
    root_.self = default_directory(".");
  }

  void on_entry_begin(const pg::TarEntry& e) override {
    Node n = node_of(e);
    if (e.path == ".") {
      if (n.type != NodeType::kDirectory) refuse(e.path, "the archive's root is not a directory");
      n.name = ".";
      root_.self = n;
      return;
    }
    const std::size_t slash = e.path.rfind('/');
    DirModel& parent = directory(slash == std::string::npos ? "" : e.path.substr(0, slash));
    n.name = slash == std::string::npos ? e.path : e.path.substr(slash + 1);
    if (e.type == pg::TarEntryType::kHardlink) return link(parent, n, e);
    if (n.type == NodeType::kDirectory) {
      parent.others.erase(n.name);
      paths_.erase(e.path);
      auto& slot = parent.dirs[n.name];
      if (!slot) slot = std::make_unique<DirModel>();
      slot->self = n;
      return;
    }
    if (parent.dirs.count(n.name)) refuse(e.path, "replaces a directory");
    current_ = &(parent.others[n.name] = n);
    if (n.type == NodeType::kFile) {
      current_->extents = n.size ? std::vector<Extent>{{0, n.size}} : std::vector<Extent>{};
      file_chunker_.begin(current_->chunks);
      paths_[e.path] = current_;
    }
  }
  void on_entry_data(ByteView data) override { file_chunker_.add(data); }
  void on_entry_end() override {
    if (current_ && current_->type == NodeType::kFile) {
      file_chunker_.end();
      ++stats_.files;
      stats_.bytes += current_->size;
      stats_.read_bytes += current_->size;
    } else if (current_) {
      ++stats_.other;
    }
    current_ = nullptr;
  }

  // Builds and stores the trees bottom-up; returns the root's id.
  repo::ChunkId store(repo::ChunkStore& chunks) {
    stats_.added_bytes += file_chunker_.added_bytes();
    return store_dir(chunks, root_);
  }
  const Node& root_node() const { return root_.self; }

 private:
  [[noreturn]] static void refuse(const std::string& path, const std::string& why) {
    throw Error(ErrorCode::kInvalidInput, "tar: entry " + printable_name(path) + " " + why);
  }

  Node node_of(const pg::TarEntry& e) {
    Node n;
    n.mode = e.mode & 07777;
    n.uid = e.uid;
    n.gid = e.gid;
    n.user = e.uname.size() <= 255 ? e.uname : "";
    n.group = e.gname.size() <= 255 ? e.gname : "";
    n.mtime_ns = e.mtime_ns;
    n.inode = ++inode_;  // a tar has no inodes: one per entry, for hard links
    n.size = e.type == pg::TarEntryType::kFile ? e.size : 0;
    switch (e.type) {
      case pg::TarEntryType::kDirectory:
        n.type = NodeType::kDirectory;
        break;
      case pg::TarEntryType::kSymlink:
        n.type = NodeType::kSymlink;
        break;
      case pg::TarEntryType::kFifo:
        n.type = NodeType::kFifo;
        break;
      case pg::TarEntryType::kCharDevice:
        n.type = NodeType::kCharDevice;
        break;
      case pg::TarEntryType::kBlockDevice:
        n.type = NodeType::kBlockDevice;
        break;
      default:
        n.type = NodeType::kFile;
        break;
    }
    if (n.type == NodeType::kSymlink) n.link_target = e.link_target;
    if (n.type == NodeType::kCharDevice || n.type == NodeType::kBlockDevice)
      n.rdev = makedev(e.dev_major, e.dev_minor);
    for (const auto& [name, value] : e.xattrs) n.xattrs.push_back({name, value});
    std::sort(n.xattrs.begin(), n.xattrs.end(),
              [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
    return n;
  }

  // The directory at `path` ("" = root), created with default metadata where
  // the tar did not list it; a non-directory on the way is refused.
  DirModel& directory(const std::string& path) {
    DirModel* dir = &root_;
    std::size_t start = 0;
    while (start < path.size()) {
      const std::size_t slash = path.find('/', start);
      const std::string name =
          path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      if (dir->others.count(name)) refuse(path, "lies below an entry that is not a directory");
      auto& slot = dir->dirs[name];
      if (!slot) {
        slot = std::make_unique<DirModel>();
        slot->self = default_directory(name);
      }
      dir = slot.get();
      start = slash == std::string::npos ? path.size() : slash + 1;
    }
    return *dir;
  }

  void link(DirModel& parent, Node n, const pg::TarEntry& e) {
    auto it = paths_.find(e.link_target);
    if (it == paths_.end())
      refuse(e.path,
             "is a hard link to " + printable_name(e.link_target) + ", not an earlier file");
    Node& target = *it->second;
    std::uint32_t& count = links_[target.inode];
    count = count == 0 ? 2 : count + 1;
    Node copy = target;
    copy.name = n.name;
    if (parent.dirs.count(copy.name)) refuse(e.path, "replaces a directory");
    ++stats_.files;
    stats_.bytes += copy.size;
    paths_[e.path] = &(parent.others[copy.name] = copy);
  }

  repo::ChunkId store_dir(repo::ChunkStore& chunks, DirModel& dir) {
    Tree tree;
    auto d = dir.dirs.begin();
    auto o = dir.others.begin();
    while (d != dir.dirs.end() || o != dir.others.end()) {
      if (o == dir.others.end() || (d != dir.dirs.end() && d->first < o->first)) {
        Node n = d->second->self;
        n.subtree = store_dir(chunks, *d->second);
        tree.nodes.push_back(std::move(n));
        ++stats_.directories;
        ++d;
      } else {
        tree.nodes.push_back(o->second);
        ++o;
      }
    }
    // Hard-link groups got their link count after their first member was
    // copied: give every member the group's count.
    for (Node& n : tree.nodes)
      if (auto it = links_.find(n.inode); n.type == NodeType::kFile && it != links_.end())
        n.nlink = it->second;
    for (const Node& n : tree.nodes)
      if (auto p = node_problem(n)) refuse(n.name, *p);
    const repo::AddResult added = chunks.add(encode_tree(tree));
    stats_.added_bytes += added.stored_bytes;
    return added.id;
  }

  FileChunker file_chunker_;
  SnapshotStats& stats_;
  DirModel root_;
  Node* current_ = nullptr;
  std::map<std::string, Node*> paths_;            // files by path, for hard links
  std::map<std::uint64_t, std::uint32_t> links_;  // hard-link groups: inode -> count
  std::uint64_t inode_ = 0;
};

// Reads `fd` to the end, gunzipping when it starts with gzip's magic.
void read_stream(int fd, const std::string& what, pg::TarReader& reader) {
  Bytes in(1u << 20), out(4u << 20);
  z_stream z{};
  bool gzip = false, first = true;
  for (;;) {
    const ssize_t got = read(fd, in.data(), in.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + what, errno);
    }
    if (first && got >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
      gzip = true;
      if (inflateInit2(&z, 15 + 32) != Z_OK)
        throw Error(ErrorCode::kInternal, "zlib: inflateInit2 failed");
    }
    first = false;
    if (got == 0) break;
    if (!gzip) {
      reader.feed(ByteView(in.data(), static_cast<std::size_t>(got)));
      continue;
    }
    z.next_in = in.data();
    z.avail_in = static_cast<uInt>(got);
    while (z.avail_in > 0) {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      const int rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END) {
        inflateEnd(&z);
        throw Error(ErrorCode::kInvalidInput, what + ": not a valid gzip stream");
      }
      reader.feed(ByteView(out.data(), out.size() - z.avail_out));
      if (rc == Z_STREAM_END) {
        if (z.avail_in > 0)
          inflateReset(&z);  // concatenated gzip members
        else
          break;
      }
    }
  }
  if (gzip) inflateEnd(&z);
  reader.finish();
}

}  // namespace

TarImportResult import_tar(repo::ChunkStore& chunks, const codec::CdcChunker& chunker, int fd,
                           const std::string& what) {
  TarImportResult result;
  ImportSink sink(chunks, chunker, result.stats);
  pg::TarReader reader(sink, {.special_files = true});
  read_stream(fd, what, reader);
  result.root = sink.store(chunks);
  result.root_node = sink.root_node();
  ++result.stats.directories;
  return result;
}

}  // namespace walvault::files
