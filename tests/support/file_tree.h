// A generated directory tree with every kind of entry a file-volume snapshot
// records (files of several shapes, an empty directory, a sparse file,
// absolute, relative and dangling symlinks, a hard link, a FIFO, a non-UTF-8
// and a 255-byte name, setuid and mode-0 files, an xattr, a foreign owner,
// nanosecond mtimes), and a comparer that names every difference a restore
// must not have. For the files unit tests and the files integration test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/bytes.h"

namespace walvault::testing {

void write_bytes(const std::string& path, ByteView data);
Bytes read_bytes(const std::string& path);
std::string read_file_text(const std::string& path);
void set_mtime(const std::string& path, std::int64_t sec, long nsec);

// Fills the existing, empty directory `root` (needs root for the owner).
void generate_tree(const std::string& root);

// Appends to `diffs` every difference between trees a and b below `rel`:
// entries, type and mode, owner, mtime (ns), content, xattr user.study, link
// targets; with `holes`, a sparse file whose holes were filled.
void compare_trees(const std::string& a, const std::string& b, const std::string& rel,
                   std::vector<std::string>& diffs, bool holes = true);

}  // namespace walvault::testing
