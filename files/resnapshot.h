// A snapshot's trees and file data carried from one repository's chunk store
// into another's: what `repo sync` does with file-volume snapshots
// (docs/decisions.md, "repo sync of file-volume snapshots").
//
// Two ways, chosen by the caller:
//  - as is (`rechunk` null): both repositories name chunks the same way
//    (the same id key: both unencrypted) and the snapshot was cut by the
//    chunker the destination would use. Trees and chunks keep their ids;
//    only what the destination lacks is read and stored.
//  - re-cut (`rechunk` given: the destination's chunker, its gear table
//    keyed by the destination's key): every file's data is read through the
//    source's chunks and cut again into the destination by a FileChunker, and
//    every tree is rebuilt with the destination's ids, bottom up. Cut points
//    then depend only on the destination's key (nothing about the source's
//    key shows in them) and the copy dedups with the destination's own
//    snapshots of the same files.
// Either way a tree goes in after everything it names, and a source tree this
// copier has handled before (snapshots share most directories) is not read
// again: memory is the trees on the current path plus one id pair per
// distinct tree.
//
// Reads verify everything (trees by the strict decoder, chunks against their
// ids): Error(kCorruption) naming the tree or the file's path when the source
// is damaged. The caller flushes `to` before writing a record naming the
// result. Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "codec/fastcdc.h"
#include "files/file_chunker.h"
#include "files/tree.h"
#include "repo/chunk_store.h"

namespace walvault::files {

struct TreeCopyStats {
  std::uint64_t chunks_read = 0;   // file chunks read from the source
  std::uint64_t files_reused = 0;  // re-cut: files whose chunks seed() had learned
  std::uint64_t added_bytes = 0;   // stored bytes added to the destination
};

class TreeCopier {
 public:
  TreeCopier(repo::ChunkStore& from, repo::ChunkStore& to, const codec::CdcChunker* rechunk);

  // The id, in `to`, of the tree `root` of `from` names; everything it
  // reaches is in `to` (once flushed). `what` names the snapshot in errors.
  repo::ChunkId copy(const repo::ChunkId& root, const std::string& what);

  // Re-cut only: learns from a snapshot both repositories already hold
  // (`from_root` in `from`, its copy `to_root` in `to`) which source trees
  // and files `to` has under its own ids, so that copy() neither reads those
  // trees nor the files' data again (a nightly sync reads only what changed).
  // Entries are matched by name and every recorded attribute (type, mode,
  // owner, times, inode, size, extents, xattrs, ...), the same evidence
  // change detection trusts; a damaged or mismatched tree teaches nothing.
  void seed(const repo::ChunkId& from_root, const repo::ChunkId& to_root);

  const TreeCopyStats& stats() const { return stats_; }

 private:
  repo::ChunkId copy_tree(const repo::ChunkId& id, const std::string& path, int depth);
  // A file's chunks: those `to` lacks copied (as is), or the data cut again.
  void copy_file(Node& file, const std::string& path);
  void recut_file(Node& file, const std::string& path);
  ByteView read_chunk(const ChunkRef& c, const std::string& path);
  repo::ChunkId store(ByteView plaintext);
  bool seed_tree(const repo::ChunkId& from_id, const repo::ChunkId& to_id, int depth);

  repo::ChunkStore& from_;
  repo::ChunkStore& to_;
  const codec::CdcChunker* rechunk_;
  std::optional<FileChunker> chunker_;
  std::string what_;
  Bytes scratch_;
  TreeCopyStats stats_;
  std::unordered_map<repo::ChunkId, repo::ChunkId, repo::ChunkIdHash> done_;  // from -> to
  // Re-cut: a file's source chunk list (SHA-256 of its ids and lengths) ->
  // its chunks in `to`, learned by seed().
  std::unordered_map<repo::ChunkId, std::vector<ChunkRef>, repo::ChunkIdHash> files_;
};

}  // namespace walvault::files
