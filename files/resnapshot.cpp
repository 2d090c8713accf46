#include "files/resnapshot.h"

#include <algorithm>
#include <vector>

#include "codec/crypto.h"
#include "core/error.h"
#include "core/relative_path.h"
#include "files/names.h"
#include "files/snapshot_backup.h"

namespace walvault::files {

namespace {

// Deeper than any path can be: a crafted chain of trees (verify's bound).
constexpr int kMaxDepth = 2048;

// What names a file's content in the source: its chunk ids and lengths.
repo::ChunkId content_key(const std::vector<ChunkRef>& chunks) {
  Bytes buffer;
  buffer.reserve(chunks.size() * 36);
  for (const ChunkRef& c : chunks) {
    buffer.insert(buffer.end(), c.id.begin(), c.id.end());
    for (int shift = 0; shift < 32; shift += 8) buffer.push_back((c.length >> shift) & 0xff);
  }
  const codec::Digest digest = codec::sha256(buffer);
  repo::ChunkId key;
  std::copy(digest.begin(), digest.end(), key.begin());
  return key;
}

std::uint64_t total_length(const std::vector<ChunkRef>& chunks) {
  std::uint64_t n = 0;
  for (const ChunkRef& c : chunks) n += c.length;
  return n;
}

// The same entry in both snapshots but for the ids that name its content.
bool same_but_ids(const Node& a, const Node& b) {
  return a.name == b.name && a.type == b.type && a.mode == b.mode && a.uid == b.uid &&
         a.gid == b.gid && a.user == b.user && a.group == b.group && a.mtime_ns == b.mtime_ns &&
         a.ctime_ns == b.ctime_ns && a.device == b.device && a.inode == b.inode &&
         a.nlink == b.nlink && a.size == b.size && a.extents == b.extents &&
         a.link_target == b.link_target && a.rdev == b.rdev && a.xattrs == b.xattrs &&
         total_length(a.chunks) == total_length(b.chunks);
}

}  // namespace

void TreeCopier::seed(const repo::ChunkId& from_root, const repo::ChunkId& to_root) {
  if (!rechunk_) return;
  try {
    seed_tree(from_root, to_root, 0);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruption) throw;  // the copy itself will name it
  }
}

// Whether every entry below matched; then the source tree maps to `to_id`.
bool TreeCopier::seed_tree(const repo::ChunkId& from_id, const repo::ChunkId& to_id, int depth) {
  if (auto it = done_.find(from_id); it != done_.end()) return it->second == to_id;
  if (depth > kMaxDepth) return false;
  const std::optional<Tree> a = load_tree(from_, from_id), b = load_tree(to_, to_id);
  if (!a || !b || a->nodes.size() != b->nodes.size()) return false;
  bool all = true;
  for (std::size_t i = 0; i < a->nodes.size(); ++i) {
    const Node &x = a->nodes[i], &y = b->nodes[i];
    if (!same_but_ids(x, y)) {
      all = false;
    } else if (x.type == NodeType::kDirectory) {
      all = seed_tree(x.subtree, y.subtree, depth + 1) && all;
    } else if (x.type == NodeType::kFile) {
      files_.emplace(content_key(x.chunks), y.chunks);
    }
  }
  if (all) done_.emplace(from_id, to_id);
  return all;
}

TreeCopier::TreeCopier(repo::ChunkStore& from, repo::ChunkStore& to,
                       const codec::CdcChunker* rechunk)
    : from_(from), to_(to), rechunk_(rechunk) {
  if (rechunk_) chunker_.emplace(to_, *rechunk_);
}

repo::ChunkId TreeCopier::copy(const repo::ChunkId& root, const std::string& what) {
  what_ = what;
  return copy_tree(root, ".", 0);
}

repo::ChunkId TreeCopier::store(ByteView plaintext) {
  const repo::AddResult added = to_.add(plaintext);
  stats_.added_bytes += added.stored_bytes;
  return added.id;
}

ByteView TreeCopier::read_chunk(const ChunkRef& c, const std::string& path) {
  const std::optional<ByteView> data = from_.read_view(c.id, scratch_, repo::ChunkCheck::kId);
  if (!data || data->size() != c.length)
    throw Error(ErrorCode::kCorruption, what_ + ": " + printable_name(path) + ": chunk " +
                                            to_hex(c.id) + " is missing or of the wrong length");
  ++stats_.chunks_read;
  return *data;
}

void TreeCopier::copy_file(Node& file, const std::string& path) {
  // Consecutive chunks the destination lacks go in as one group (one frame
  // of up to repo::kFrameBytes), as a snapshot stores them.
  std::vector<Bytes> group;
  std::uint64_t group_bytes = 0;
  auto store_group = [&] {
    if (group.empty()) return;
    for (const repo::AddResult& r : to_.add_group({group.begin(), group.end()}))
      stats_.added_bytes += r.stored_bytes;
    group.clear();
    group_bytes = 0;
  };
  for (const ChunkRef& c : file.chunks) {
    if (to_.contains(c.id)) continue;
    if (group_bytes + c.length > repo::kFrameBytes) store_group();
    const ByteView data = read_chunk(c, path);
    group.emplace_back(data.begin(), data.end());
    group_bytes += c.length;
  }
  store_group();
}

void TreeCopier::recut_file(Node& file, const std::string& path) {
  if (auto known = files_.find(content_key(file.chunks)); known != files_.end()) {
    const bool all_there = std::all_of(known->second.begin(), known->second.end(),
                                       [&](const ChunkRef& c) { return to_.contains(c.id); });
    if (all_there) {
      file.chunks = known->second;
      ++stats_.files_reused;
      return;
    }
  }
  std::vector<ChunkRef> cut;
  const std::uint64_t before = chunker_->added_bytes();
  chunker_->begin(cut);
  for (const ChunkRef& c : file.chunks) chunker_->add(read_chunk(c, path));
  chunker_->end();
  stats_.added_bytes += chunker_->added_bytes() - before;
  file.chunks = std::move(cut);
}

repo::ChunkId TreeCopier::copy_tree(const repo::ChunkId& id, const std::string& path, int depth) {
  if (auto it = done_.find(id); it != done_.end()) return it->second;
  const std::string where = what_ + ": " + (path == "." ? "the root" : printable_name(path));
  if (depth > kMaxDepth)
    throw Error(ErrorCode::kCorruption, where + ": trees nested deeper than any path can be");
  const std::optional<Bytes> bytes = from_.read(id);
  if (!bytes)
    throw Error(ErrorCode::kCorruption, where + ": tree " + to_hex(id) + " is not in the source");
  Tree tree = decode_tree(*bytes, where + ": tree " + to_hex(id));
  for (Node& n : tree.nodes) {
    const std::string child = join_path(path, n.name);
    if (n.type == NodeType::kDirectory) n.subtree = copy_tree(n.subtree, child, depth + 1);
    if (n.type != NodeType::kFile) continue;
    if (rechunk_)
      recut_file(n, child);
    else
      copy_file(n, child);
  }
  // As is, the tree's own bytes (its id stays); re-cut, the rebuilt tree.
  const repo::ChunkId copied = store(rechunk_ ? ByteView(encode_tree(tree)) : ByteView(*bytes));
  if (!rechunk_ && copied != id)
    throw Error(ErrorCode::kInternal, where + ": tree " + to_hex(id) +
                                          " got another id in the destination; the repositories "
                                          "do not name chunks the same way");
  done_.emplace(id, copied);
  return copied;
}

}  // namespace walvault::files
