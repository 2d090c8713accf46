// The directory object of a file-volume snapshot (docs/format.md, "File
// trees"): one tree per directory, listing its entries with their metadata
// and, for a regular file, the chunks of its content; a subdirectory is named
// by the id of its own tree. A tree is stored as a chunk of the repository's
// chunk store, so its id is its content's id: a directory whose entries did
// not change has the same id in the next snapshot and is stored once.
//
// decode_tree() trusts nothing: a repository can be written by someone else.
// It refuses (Error kCorruption, naming the tree and the entry) any name that
// is empty, ".", "..", contains '/' or NUL or is over 255 bytes; entries not
// in strictly increasing byte order of names (so no duplicates); extents that
// are out of order, overlap or pass the size; chunk lengths that do not add up
// to the extents; a symbolic link target that is empty or holds NUL; an
// unknown type; lengths that run past the end. What it returns is safe to join
// to a directory, one component at a time, through core/contained_dir.h.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "repo/chunk_store.h"

namespace walvault::files {

enum class NodeType : std::uint8_t {
  kFile = 1,
  kDirectory = 2,
  kSymlink = 3,
  kFifo = 4,
  kCharDevice = 5,
  kBlockDevice = 6,
  kSocket = 7,
};

// Bytes [offset, offset + length) of a file hold data; the rest of its size
// is holes (a sparse file). A file that is not sparse has one extent
// [0, size), an empty file none.
struct Extent {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  bool operator==(const Extent&) const = default;
};

// One chunk of a file's data, in order: the extents' bytes, concatenated,
// are the chunks' plaintexts, concatenated.
struct ChunkRef {
  repo::ChunkId id{};
  std::uint32_t length = 0;
  bool operator==(const ChunkRef&) const = default;
};

struct Xattr {
  std::string name;  // "user.x", "system.posix_acl_access", ...
  std::string value;
  bool operator==(const Xattr&) const = default;
};

struct Node {
  std::string name;  // one path component
  NodeType type = NodeType::kFile;
  std::uint32_t mode = 0;  // permission bits with setuid/setgid/sticky (07777)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string user;   // uid's name when it had one, else empty
  std::string group;  // gid's name, likewise
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;     // change detection only; not restored
  std::uint64_t device = 0;      // st_dev: change detection, hard links
  std::uint64_t inode = 0;       // st_ino: likewise
  std::uint32_t nlink = 1;       // > 1: restore links entries of equal (device, inode)
  std::uint64_t size = 0;        // regular files: st_size, holes included
  std::vector<Extent> extents;   // kFile
  std::vector<ChunkRef> chunks;  // kFile
  repo::ChunkId subtree{};       // kDirectory: its tree's id
  std::string link_target;       // kSymlink, as readlink() returned it
  std::uint64_t rdev = 0;        // kCharDevice, kBlockDevice
  std::vector<Xattr> xattrs;     // in name order
  bool operator==(const Node&) const = default;
};

struct Tree {
  std::vector<Node> nodes;  // in strictly increasing byte order of name
  bool operator==(const Tree&) const = default;
};

// Why `node` could not be in a tree (std::nullopt when it can): the rules
// decode_tree() enforces, for the writer and the reader alike.
std::optional<std::string> node_problem(const Node& node);

// The tree's bytes (format.md, "File trees"). Throws Error(kInternal) if a
// node has a problem or the names are not in order: a caller bug.
Bytes encode_tree(const Tree& tree);

// Parses and checks a tree; `what` names it in errors ("tree 3fa2…").
// Throws Error(kCorruption, "<what>: <entry>: <problem>").
Tree decode_tree(ByteView bytes, std::string_view what);

}  // namespace walvault::files
