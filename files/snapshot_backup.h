// Reads a directory tree into the chunk store as file trees (files/tree.h):
// file data cut by FastCDC (codec/fastcdc.h) into chunks, one tree object per
// directory, bottom-up, so that the root tree's id names the whole snapshot.
//
// - Walks with directory descriptors and O_NOFOLLOW: a symbolic link is
//   recorded as a link, never followed; a file replaced while the walk runs
//   is read as what open() found, checked to be a regular file.
// - Change detection: a file whose (inode, size, mtime, ctime) equal its
//   entry in the parent snapshot's tree at the same path keeps that entry's
//   chunks without being read (unless force_reread, or a chunk of it is no
//   longer in the store).
// - A file that changed while it was read is stored as read, with a warning;
//   one that vanished, or could not be opened or read, is left out with a
//   warning and counted in `unreadable`. Neither stops the snapshot.
// - Memory: the names and entries of the directories on the current path,
//   plus one file's read buffer (2 x the chunker's maximum) and, with
//   parallel > 1, at most 2 x parallel frames of up to 4 MiB in flight; not
//   the number of files in the volume.
//
// Throws Error(kIo) when the root cannot be opened, and whatever the chunk
// store throws (a failed pack write).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/fastcdc.h"
#include "files/tree.h"
#include "repo/chunk_store.h"

namespace walvault::files {

struct SnapshotOptions {
  // Glob patterns (fnmatch): one without '/' is matched against each entry's
  // name, one with '/' against its path from the root ("a/b/*.log").
  std::vector<std::string> excludes;
  bool one_file_system = false;  // do not descend into other file systems
  bool force_reread = false;     // read every file, even unchanged ones
  // Threads sealing (compressing, encrypting, packing) file data while the
  // walk reads, cuts and hashes the next (files/file_chunker.h); 1: all on
  // the caller's thread. The trees and chunk ids are the same either way.
  int parallel = 1;
};

struct SnapshotStats {
  std::uint64_t files = 0;
  std::uint64_t directories = 0;
  std::uint64_t other = 0;            // links, FIFOs, devices, sockets
  std::uint64_t bytes = 0;            // file sizes, holes included
  std::uint64_t read_bytes = 0;       // data read from files this run
  std::uint64_t unchanged_files = 0;  // taken from the parent without reading
  std::uint64_t added_bytes = 0;      // stored bytes this run added (chunks and trees)
  std::uint64_t unreadable = 0;       // entries left out: could not be read
  std::vector<std::string> warnings;  // one line each, naming the path
};

// Loads a tree by id, or std::nullopt when there is none (no parent).
// Throws Error(kCorruption) for a damaged tree.
std::optional<Tree> load_tree(repo::ChunkStore& chunks, const repo::ChunkId& id);

// Snapshots the directory `root` (a path; links on the way to it are the
// user's choice) and returns the id of its tree. `parent_root` is the root
// tree of the volume's previous snapshot, for change detection. The caller
// flushes the chunk store before recording the snapshot.
repo::ChunkId snapshot_directory(repo::ChunkStore& chunks, const codec::CdcChunker& chunker,
                                 const std::string& root,
                                 const std::optional<repo::ChunkId>& parent_root,
                                 const SnapshotOptions& options, SnapshotStats& stats);

}  // namespace walvault::files
