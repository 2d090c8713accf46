#include "files/browse.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/error.h"
#include "core/relative_path.h"
#include "files/names.h"
#include "files/snapshot_backup.h"

namespace walvault::files {
namespace {

Tree require_tree(repo::ChunkStore& chunks, const repo::ChunkId& id, const std::string& path) {
  std::optional<Tree> tree = load_tree(chunks, id);
  if (!tree)
    throw Error(ErrorCode::kCorruption,
                "tree " + to_hex(id) + " (" + printable_name(path) + ") is not in the repository");
  return std::move(*tree);
}

void walk(repo::ChunkStore& chunks, const repo::ChunkId& id, const std::string& rel,
          const std::function<bool(const std::string&, const Node&)>& visit) {
  const Tree tree = require_tree(chunks, id, rel);
  for (const Node& n : tree.nodes) {
    const std::string path = join_path(rel, n.name);
    if (visit(path, n) && n.type == NodeType::kDirectory) walk(chunks, n.subtree, path, visit);
  }
}

void write_all(int fd, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    const ssize_t put = write(fd, p, n);
    if (put < 0) {
      if (errno == EINTR) continue;
      throw_errno("write the file's content", errno);
    }
    p += put;
    n -= static_cast<std::size_t>(put);
  }
}

bool same_entry(const Node& a, const Node& b) {
  return a.type == b.type && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid &&
         a.mtime_ns == b.mtime_ns && a.size == b.size && a.extents == b.extents &&
         a.chunks == b.chunks && a.link_target == b.link_target && a.rdev == b.rdev &&
         a.xattrs == b.xattrs;
}

using DiffVisit = std::function<void(Change, const std::string&, const Node*, const Node*)>;

void report_all(repo::ChunkStore& chunks, Change change, const std::string& path, const Node& n,
                const DiffVisit& visit) {
  visit(change, path, change == Change::kRemoved ? &n : nullptr,
        change == Change::kAdded ? &n : nullptr);
  if (n.type != NodeType::kDirectory) return;
  walk(chunks, n.subtree, path, [&](const std::string& p, const Node& child) {
    visit(change, p, change == Change::kRemoved ? &child : nullptr,
          change == Change::kAdded ? &child : nullptr);
    return true;
  });
}

void diff(repo::ChunkStore& chunks, const repo::ChunkId& a_id, const repo::ChunkId& b_id,
          const std::string& rel, const DiffVisit& visit) {
  if (a_id == b_id) return;
  const Tree a = require_tree(chunks, a_id, rel), b = require_tree(chunks, b_id, rel);
  auto ia = a.nodes.begin(), ib = b.nodes.begin();
  while (ia != a.nodes.end() || ib != b.nodes.end()) {
    if (ib == b.nodes.end() || (ia != a.nodes.end() && ia->name < ib->name)) {
      report_all(chunks, Change::kRemoved, join_path(rel, ia->name), *ia, visit);
      ++ia;
    } else if (ia == a.nodes.end() || ib->name < ia->name) {
      report_all(chunks, Change::kAdded, join_path(rel, ib->name), *ib, visit);
      ++ib;
    } else {
      const std::string path = join_path(rel, ia->name);
      const bool both_dirs = ia->type == NodeType::kDirectory && ib->type == NodeType::kDirectory;
      if (both_dirs) {
        if (!same_entry(*ia, *ib)) visit(Change::kChanged, path, &*ia, &*ib);
        diff(chunks, ia->subtree, ib->subtree, path, visit);
      } else if (ia->type != ib->type) {
        report_all(chunks, Change::kRemoved, path, *ia, visit);
        report_all(chunks, Change::kAdded, path, *ib, visit);
      } else if (!same_entry(*ia, *ib)) {
        visit(Change::kChanged, path, &*ia, &*ib);
      }
      ++ia;
      ++ib;
    }
  }
}

}  // namespace

void walk_snapshot(repo::ChunkStore& chunks, const repo::ChunkId& root,
                   const std::function<bool(const std::string&, const Node&)>& visit,
                   const std::string& below) {
  if (below == ".") return walk(chunks, root, ".", visit);
  const std::optional<Node> start = find_entry(chunks, root, below);
  if (!start)
    throw Error(ErrorCode::kNotFound, "path " + printable_name(below) + ": not in the snapshot");
  if (visit(below, *start) && start->type == NodeType::kDirectory)
    walk(chunks, start->subtree, below, visit);
}

std::optional<Node> find_entry(repo::ChunkStore& chunks, const repo::ChunkId& root,
                               const std::string& path) {
  require_relative_path(path, ErrorCode::kUsage, "path");
  if (path == ".") return std::nullopt;
  repo::ChunkId dir = root;
  std::string done = ".";
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = path.find('/', start);
    const std::string name =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    const Tree tree = require_tree(chunks, dir, done);
    auto it = std::lower_bound(tree.nodes.begin(), tree.nodes.end(), name,
                               [](const Node& n, const std::string& key) { return n.name < key; });
    if (it == tree.nodes.end() || it->name != name) return std::nullopt;
    if (slash == std::string::npos) return *it;
    if (it->type != NodeType::kDirectory) return std::nullopt;
    dir = it->subtree;
    done = join_path(done, name);
    start = slash + 1;
  }
}

void read_file_content(repo::ChunkStore& chunks, const Node& file,
                       const std::function<void(ByteView)>& sink) {
  if (file.type != NodeType::kFile)
    throw Error(ErrorCode::kUsage, printable_name(file.name) + " is not a regular file");
  static const std::uint8_t zeros[65536] = {};
  auto holes = [&](std::uint64_t n) {
    for (; n > 0; n -= std::min<std::uint64_t>(n, sizeof zeros))
      sink(ByteView(zeros, static_cast<std::size_t>(std::min<std::uint64_t>(n, sizeof zeros))));
  };
  std::uint64_t at = 0;  // bytes of the file handed over so far
  std::size_t extent = 0;
  std::uint64_t in_extent = 0;
  Bytes scratch;
  for (const ChunkRef& c : file.chunks) {
    const std::optional<ByteView> data =
        chunks.read_view(c.id, scratch, repo::ChunkCheck::kRecorded);
    if (!data || data->size() != c.length)
      throw Error(ErrorCode::kCorruption, "chunk " + to_hex(c.id) + " of " +
                                              printable_name(file.name) +
                                              " is missing or of the wrong length");
    std::size_t used = 0;
    while (used < data->size()) {
      const Extent& e = file.extents[extent];
      holes(e.offset + in_extent - at);
      at = e.offset + in_extent;
      const std::size_t take = static_cast<std::size_t>(
          std::min<std::uint64_t>(data->size() - used, e.length - in_extent));
      sink(data->subspan(used, take));
      used += take;
      at += take;
      in_extent += take;
      if (in_extent == e.length) {
        ++extent;
        in_extent = 0;
      }
    }
  }
  holes(file.size - at);
}

void write_file_content(repo::ChunkStore& chunks, const Node& file, int fd) {
  read_file_content(chunks, file, [&](ByteView b) { write_all(fd, b.data(), b.size()); });
}

void diff_snapshots(repo::ChunkStore& chunks, const repo::ChunkId& before_root,
                    const repo::ChunkId& after_root, const DiffVisit& visit) {
  diff(chunks, before_root, after_root, ".", visit);
}

void reachable_ids(repo::ChunkStore& chunks, const repo::ChunkId& root,
                   std::unordered_set<repo::ChunkId, repo::ChunkIdHash>& ids) {
  if (!ids.insert(root).second) return;
  const Tree tree = require_tree(chunks, root, "tree " + to_hex(root));
  for (const Node& n : tree.nodes) {
    for (const ChunkRef& c : n.chunks) ids.insert(c.id);
    if (n.type == NodeType::kDirectory) reachable_ids(chunks, n.subtree, ids);
  }
}

}  // namespace walvault::files
