#include "ops/verify_snapshots.h"

#include "codec/fastcdc.h"
#include "core/error.h"
#include "core/relative_path.h"
#include "files/names.h"
#include "repo/layout.h"

namespace walvault::ops {

namespace {

// Problems named one by one per snapshot before the rest are counted.
constexpr std::uint64_t kMaxNamed = 10;
// Deeper than any path can be (4095 bytes, "a/b/..."): a crafted chain of
// trees, refused before it can exhaust the stack.
constexpr int kMaxDepth = 2048;

}  // namespace

std::uint64_t SnapshotVerifier::check(const std::vector<store::ObjectInfo>& records, bool read_data,
                                      std::uint64_t& bytes_read) {
  for (const store::ObjectInfo& info : records) {
    if (!repo::parse_snapshot_object(info.name)) continue;  // warned as unknown by the listing
    std::optional<files::SnapshotRecord> record;
    hooks_.guarded(info.name, [&] {
      const std::optional<Bytes> bytes = repo_.get_object(info.name);
      if (!bytes) return;  // removed since the listing (expire)
      if (read_data) bytes_read += info.size;
      files::SnapshotRecord r = files::snapshot_from_json(as_chars(*bytes), info.name);
      if (info.name != repo::snapshot_object_name(r.volume, r.label))
        throw Error(ErrorCode::kCorruption,
                    "holds the record of snapshot " + r.volume + "/" + r.label);
      try {
        codec::check_cdc_params(r.chunker);
      } catch (const Error& e) {
        throw Error(ErrorCode::kCorruption, e.what());
      }
      record = std::move(r);
    });
    if (!record) continue;
    const std::string name = record->volume + "/" + record->label;
    snapshots_.push_back({info.name, "snapshot " + files::snapshot_id(*record) + " (" + name + ")",
                          "snapshot " + name, record->root});
  }
  Pass pass;
  pass.structure = true;
  pass.problem = [this](const repo::ChunkId& id) -> std::optional<std::string> {
    if (hooks_.locate(id)) return std::nullopt;
    return std::string("is not listed by any index");
  };
  for (Snapshot& s : snapshots_) walk_snapshot(s, pass);
  return snapshots_.size();
}

void SnapshotVerifier::name_damaged_files(
    const std::unordered_map<repo::ChunkId, std::string, repo::ChunkIdHash>& damaged) {
  if (damaged.empty()) return;
  Pass pass;
  pass.problem = [&damaged](const repo::ChunkId& id) -> std::optional<std::string> {
    if (auto it = damaged.find(id); it != damaged.end()) return it->second;
    return std::nullopt;
  };
  for (Snapshot& s : snapshots_) {
    s.named = s.more = 0;
    walk_snapshot(s, pass);
  }
}

void SnapshotVerifier::walk_snapshot(Snapshot& s, Pass& pass) {
  walk_tree(s.root, ".", s, pass, 0);
  if (s.more > 0) hooks_.error(s.object, s.who + ": " + std::to_string(s.more) + " more problems");
}

void SnapshotVerifier::report(Snapshot& s, const std::string& path, const std::string& message) {
  if (++s.named > kMaxNamed) {
    ++s.more;
    return;
  }
  hooks_.error(s.object,
               s.who + ": " + (path == "." ? "the root" : printable_name(path)) + ": " + message);
}

std::optional<files::Tree> SnapshotVerifier::read_tree(const repo::ChunkId& id,
                                                       const std::string& path, Snapshot& s,
                                                       bool structure_pass) {
  if (unreadable_trees_.count(id)) return std::nullopt;
  const std::string what = "tree " + to_hex(id);
  const repo::ChunkLocation* loc = hooks_.locate(id);
  if (!loc) {
    unreadable_trees_.insert(id);
    if (structure_pass) report(s, path, what + " is not listed by any index");
    return std::nullopt;
  }
  if (structure_pass) hooks_.used_by(loc->pack, s.user);
  const std::string pack = repo::pack_object_name(loc->pack);
  try {
    const std::optional<Bytes> sealed =
        repo_.store().get(pack, store::Range{loc->offset, loc->length});
    if (!sealed || sealed->size() != loc->length)
      throw Error(ErrorCode::kCorruption, "its pack " + pack + " is missing or truncated");
    const Bytes frame = repo_.open_object(*sealed, pack);
    const ByteView plaintext = repo::chunk_in_frame(frame, *loc, pack);
    if (hooks_.chunk_id(plaintext) != id)
      throw Error(ErrorCode::kCorruption, "content does not match its id (in " + pack + ")");
    return files::decode_tree(plaintext, what);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruption && e.code() != ErrorCode::kKey) throw;
    unreadable_trees_.insert(id);
    std::string message = e.what();
    if (!message.starts_with(what)) message = what + ": " + message;
    if (structure_pass) report(s, path, message);
    return std::nullopt;
  }
}

// Whether everything `id` reaches is whole (in this pass's sense).
bool SnapshotVerifier::walk_tree(const repo::ChunkId& id, const std::string& path, Snapshot& s,
                                 Pass& pass, int depth) {
  if (auto it = pass.trees.find(id); it != pass.trees.end()) {
    if (!it->second.first) report(s, path, "tree " + to_hex(id) + ": see " + it->second.second);
    return it->second.first;
  }
  pass.trees.emplace(id, std::pair{true, s.who + ", " + printable_name(path)});
  bool whole = true;
  if (depth > kMaxDepth) {
    report(s, path, "trees nested deeper than any path can be");
    whole = false;
  } else if (const std::optional<files::Tree> tree = read_tree(id, path, s, pass.structure)) {
    for (const files::Node& n : tree->nodes) {
      const std::string child = files::join_path(path, n.name);
      for (std::size_t i = 0; i < n.chunks.size(); ++i) {
        if (pass.structure)
          if (const repo::ChunkLocation* loc = hooks_.locate(n.chunks[i].id))
            hooks_.used_by(loc->pack, s.user);
        if (const std::optional<std::string> problem = pass.problem(n.chunks[i].id)) {
          report(s, child,
                 "chunk " + to_hex(n.chunks[i].id) + " (" + std::to_string(i + 1) + " of " +
                     std::to_string(n.chunks.size()) + ") " + *problem);
          whole = false;
        }
      }
      if (n.type == files::NodeType::kDirectory)
        whole = walk_tree(n.subtree, child, s, pass, depth + 1) && whole;
    }
  } else {
    whole = !pass.structure;  // unreadable: reported by the structure pass
  }
  pass.trees[id].first = whole;
  return whole;
}

}  // namespace walvault::ops
