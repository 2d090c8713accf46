// Reading a snapshot without restoring it: its entries in order (`files ls`),
// one entry by path, one file's bytes (`files cat`), the difference between
// two snapshots (`files diff`), and every tree and chunk a set of snapshots
// reaches (gc, verify, sync).
//
// Each walks trees by id through the chunk store, one directory at a time:
// memory is the trees on the current path. Identical subtree ids are not
// descended twice where the answer cannot differ (diff, reachability).
// Throws Error(kCorruption) for a tree that is missing or damaged, naming it.
#pragma once

#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <unordered_set>

#include "files/tree.h"
#include "repo/chunk_store.h"

namespace walvault::files {

// Calls visit(path, node) for every entry below the root, depth first in
// name order ("docs", "docs/a.txt", ...). visit returns false to skip a
// directory's entries.
void walk_snapshot(repo::ChunkStore& chunks, const repo::ChunkId& root,
                   const std::function<bool(const std::string& path, const Node& node)>& visit,
                   const std::string& below = ".");

// The entry at `path` (a contained relative path; "." is not an entry), or
// std::nullopt when the snapshot has none. Throws Error(kUsage) for a path
// that is not contained.
std::optional<Node> find_entry(repo::ChunkStore& chunks, const repo::ChunkId& root,
                               const std::string& path);

// Hands a regular file's content to `sink` in order, holes as zeros, each
// chunk checked against what the index recorded. Error(kUsage) when `file`
// is not a regular file.
void read_file_content(repo::ChunkStore& chunks, const Node& file,
                       const std::function<void(ByteView)>& sink);
// read_file_content into `fd`; Error(kIo) when the write fails.
void write_file_content(repo::ChunkStore& chunks, const Node& file, int fd);

enum class Change { kAdded, kRemoved, kChanged };
// Calls visit(change, path, before, after) for each entry that differs
// between the trees: added (before null), removed (after null), or changed
// (type, content, size, mode, owner, mtime, link target or xattrs). A
// directory's own metadata change is reported; its unchanged entries are not.
void diff_snapshots(repo::ChunkStore& chunks, const repo::ChunkId& before_root,
                    const repo::ChunkId& after_root,
                    const std::function<void(Change, const std::string& path, const Node* before,
                                             const Node* after)>& visit);

// Adds every tree id and chunk id reachable from `root` to `ids`; a tree
// already in `ids` is not read again (snapshots share most trees).
void reachable_ids(repo::ChunkStore& chunks, const repo::ChunkId& root,
                   std::unordered_set<repo::ChunkId, repo::ChunkIdHash>& ids);

}  // namespace walvault::files
