// `files export`: a snapshot as a POSIX pax tar stream (ustar headers, with a
// pax extended header where a value does not fit: long names and link
// targets, sizes from 8 GiB, large ids, nanosecond mtimes, extended
// attributes as SCHILY.xattr.<name>, which GNU tar --xattrs restores),
// optionally gzip-compressed (zlib), so that anyone who needs a tarball of a
// volume gets one GNU tar and bsdtar read.
//
// Entries appear depth first in name order, the root first as "./", a
// directory before its entries. Entries of one snapshot that were hard links
// to each other become tar hard links to the first of them. A sparse file is
// written with its holes as zeros (tar readers differ on sparse formats).
// Sockets cannot be stored in a tar and are skipped; `warnings` names them.
//
// Throws Error(kIo) when writing to `fd` fails, Error(kCorruption) for a
// damaged tree or chunk.
#pragma once

#include <string>
#include <vector>

#include "files/tree.h"
#include "repo/chunk_store.h"

namespace walvault::files {

struct ExportOptions {
  bool gzip = false;
};

void export_tar(repo::ChunkStore& chunks, const repo::ChunkId& root, const Node& root_node, int fd,
                const ExportOptions& options, std::vector<std::string>& warnings);

}  // namespace walvault::files
