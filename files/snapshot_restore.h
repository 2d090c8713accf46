// Writes a file-volume snapshot (a root tree, files/tree.h) into a directory.
//
// Nothing in a snapshot can make it write outside the target: every name is
// one checked component (decode_tree), and every file, link and directory is
// created relative to a directory descriptor that was itself opened with
// O_NOFOLLOW below the target, so a symbolic link, whether in the snapshot or
// planted in the target, is never followed. A file never carries its name
// before it is whole: it is written unnamed (O_TMPFILE) and linked under its
// name where the file system and the process allow it (probed once), else
// written to a temporary name and renamed into place (always with `delta`);
// its mode, times, extended attributes and, as root, owner (by name when the
// name exists here, else by id) are set before that (a fresh file is created with its mode where
// the umask, a setgid target or a default ACL do not change it, and its owner is not set again when
// it is the restoring user's); directories get theirs after their entries. Holes of a sparse file
// are left as holes. Entries of one snapshot that were hard links to each other (equal st_dev and
// st_ino, link count > 1) are linked again. Devices are created only as root (else skipped with a
// warning).
//
// Without `delta` the target must be empty or absent. With it, the target is
// brought to the snapshot: entries the snapshot lacks are removed (without
// following links), a file of the right size is compared chunk by chunk and
// only differing chunks are written, anything else is replaced.
//
// `includes` restricts the restore to those paths (from the snapshot's root)
// and what is below them; the directories on the way are created too. Only
// the chunks of what is restored are read.
//
// Throws Error(kConflict) for a non-empty target without delta,
// Error(kNotFound) for an include path the snapshot does not have,
// Error(kCorruption) for a damaged tree or chunk, Error(kIo) naming the path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "files/tree.h"
#include "repo/chunk_store.h"

namespace walvault::files {

struct RestoreOptions {
  std::vector<std::string> includes;
  bool delta = false;
  bool restore_owner = false;  // chown as recorded (needs root)
  // The snapshot root's own metadata (its record's root_node), given to the
  // target directory after everything else when the whole snapshot is restored.
  std::optional<Node> root_metadata;
  // Threads writing files: the walk creates directories, links and special
  // files in order and hands regular files (read their chunks, write,
  // metadata, link or rename), a directory's small ones gathered into batches of up
  // to 1 MiB or 64 files, to a pool of this many; a directory gets its metadata
  // once every file and subdirectory in it is done, set by whichever thread
  // finishes last, so the walk never waits for a directory's writers. Files
  // with hard links are restored by the walk itself. Fresh files of 1 MiB
  // and more without holes are written with direct I/O where the file
  // system allows it (their bytes reach the disk while the restore runs;
  // the syncfs at the end has the rest). 1: everything on the caller's
  // thread.
  int parallel = 1;
};

struct RestoreStats {
  std::uint64_t files = 0;
  std::uint64_t directories = 0;
  std::uint64_t other = 0;
  std::uint64_t written_bytes = 0;    // file data written
  std::uint64_t unchanged_files = 0;  // delta: already identical
  std::uint64_t removed = 0;          // delta: entries the snapshot lacks
  std::vector<std::string> warnings;
};

void restore_snapshot(repo::ChunkStore& chunks, const repo::ChunkId& root,
                      const std::string& target, const RestoreOptions& options,
                      RestoreStats& stats);

}  // namespace walvault::files
