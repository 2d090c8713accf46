// `files import`: an existing tarball (plain or gzip, as `tar czf` wrote it)
// becomes a snapshot, its file data cut and deduplicated like any snapshot's,
// so a year of daily tarballs costs about what changed between them.
//
// The tar is read as a stream (pg/tar_reader.h with special files allowed:
// FIFOs and devices are recorded like a snapshot records them). Its entries
// may come in any order and may leave out their directories: the directory
// structure is held in memory (one entry's metadata and chunk list per entry;
// not the data) and the trees are built at the end. A later entry of the same
// path replaces an earlier one, as tar extraction does. Names follow the tar
// reader's rule (contained relative paths); an entry below a non-directory
// ("link" then "link/child") and a hard link to an entry not seen before are
// refused with Error(kInvalidInput) naming them; a truncated or corrupt
// stream likewise, and nothing is recorded (the stored chunks are garbage).
#pragma once

#include <string>

#include "files/snapshot_backup.h"
#include "files/snapshot_record.h"

namespace walvault::files {

struct TarImportResult {
  repo::ChunkId root;
  Node root_node;  // the "./" entry's metadata, or defaults when the tar has none
  SnapshotStats stats;
};

// Reads the whole tar from `fd` (gzip detected by its magic bytes).
TarImportResult import_tar(repo::ChunkStore& chunks, const codec::CdcChunker& chunker, int fd,
                           const std::string& what);

}  // namespace walvault::files
