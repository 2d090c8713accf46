// File trees: every kind of entry round-trips byte for byte, and a crafted
// tree (names that climb out, repeated names, impossible extents, counts past
// the end, random damage) is refused as corruption, never half-read.
#include "files/tree.h"

#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "core/relative_path.h"
#include "support/error_code.h"
#include "support/fuzz_seeds.h"

namespace walvault::files {
namespace {

repo::ChunkId id_of(std::uint8_t fill) {
  repo::ChunkId id;
  id.fill(fill);
  return id;
}

Node base(std::string name, NodeType type) {
  Node n;
  n.name = std::move(name);
  n.type = type;
  n.mode = 0644;
  n.uid = 1000;
  n.gid = 1000;
  n.user = "alice";
  n.group = "staff";
  n.mtime_ns = 1795000000123456789;
  n.ctime_ns = 1795000000987654321;
  n.device = 2049;
  n.inode = 131;
  return n;
}

Tree sample_tree() {
  Tree t;
  Node sparse = base("a-sparse.img", NodeType::kFile);
  sparse.size = 10u << 20;
  sparse.extents = {{0, 4096}, {8u << 20, 4096}};
  sparse.chunks = {{id_of(1), 8192}};
  Node link = base("b-link", NodeType::kSymlink);
  link.link_target = "/etc/../absolute/target";
  Node dev = base("c-null", NodeType::kCharDevice);
  dev.rdev = (1u << 8) | 3;
  Node dir = base("d-dir", NodeType::kDirectory);
  dir.mode = 01777;
  dir.subtree = id_of(2);
  Node empty = base("e-empty", NodeType::kFile);
  Node fifo = base("f-fifo", NodeType::kFifo);
  Node big = base(std::string("g-\xff\xfe-not-utf8-") + std::string(200, 'x'), NodeType::kFile);
  big.size = 3u << 20;
  big.extents = {{0, 3u << 20}};
  big.chunks = {{id_of(3), 1u << 20}, {id_of(4), 2u << 20}};
  big.nlink = 2;
  big.xattrs = {{"system.posix_acl_access", std::string("\x02\0\0\0\x01\0\x06\0", 8)},
                {"user.comment", "hello"}};
  Node sock = base("h-socket", NodeType::kSocket);
  t.nodes = {sparse, link, dev, dir, empty, fifo, big, sock};
  return t;
}

TEST(FileTreeTest, EveryKindOfEntryRoundTrips) {
  const Tree t = sample_tree();
  const Bytes bytes = encode_tree(t);
  EXPECT_EQ(decode_tree(bytes, "tree x"), t);
  EXPECT_EQ(encode_tree(decode_tree(bytes, "tree x")), bytes);
  EXPECT_EQ(decode_tree(encode_tree(Tree{}), "tree x"), Tree{});
}

std::optional<ErrorCode> decode_code(const Bytes& bytes) {
  return testing::error_code_of([&] { decode_tree(bytes, "tree x"); });
}

// A tree's bytes written straight from format.md's layout, with none of the
// writer's checks: what a hostile repository can hold. (Fifos, sockets and
// files only; enough for the refusals below.)
Bytes forged(const std::vector<Node>& nodes) {
  Bytes out = {'W', 'V', 'T', 'R', 1};
  append_le<std::uint32_t>(out, static_cast<std::uint32_t>(nodes.size()));
  for (const Node& n : nodes) {
    out.push_back(static_cast<std::uint8_t>(n.type));
    append_le<std::uint16_t>(out, static_cast<std::uint16_t>(n.name.size()));
    out.insert(out.end(), n.name.begin(), n.name.end());
    for (std::uint32_t v : {n.mode, n.uid, n.gid}) append_le<std::uint32_t>(out, v);
    out.push_back(0);  // user
    out.push_back(0);  // group
    for (std::int64_t v : {n.mtime_ns, n.ctime_ns}) append_le<std::int64_t>(out, v);
    for (std::uint64_t v : {n.device, n.inode}) append_le<std::uint64_t>(out, v);
    append_le<std::uint32_t>(out, n.nlink);
    append_le<std::uint64_t>(out, n.size);
    if (n.type == NodeType::kFile) {
      append_le<std::uint32_t>(out, static_cast<std::uint32_t>(n.extents.size()));
      for (const Extent& e : n.extents) {
        append_le<std::uint64_t>(out, e.offset);
        append_le<std::uint64_t>(out, e.length);
      }
      append_le<std::uint32_t>(out, static_cast<std::uint32_t>(n.chunks.size()));
      for (const ChunkRef& c : n.chunks) {
        out.insert(out.end(), c.id.begin(), c.id.end());
        append_le<std::uint32_t>(out, c.length);
      }
    } else if (n.type == NodeType::kSymlink) {
      append_le<std::uint16_t>(out, static_cast<std::uint16_t>(n.link_target.size()));
      out.insert(out.end(), n.link_target.begin(), n.link_target.end());
    }
    append_le<std::uint16_t>(out, 0);  // no extended attributes
  }
  return out;
}

TEST(FileTreeTest, TheForgingWriterMatchesTheFormat) {
  Node fifo = base("p", NodeType::kFifo);
  fifo.user = fifo.group = "";
  Node file = base("q", NodeType::kFile);
  file.user = file.group = "";
  file.size = 10;
  file.extents = {{0, 10}};
  file.chunks = {{id_of(5), 10}};
  EXPECT_EQ(forged({fifo, file}), encode_tree(Tree{{fifo, file}}));
}

TEST(FileTreeTest, CraftedNamesAreRefused) {
  for (const std::string& name : {std::string(".."), std::string("."), std::string(""),
                                  std::string("a/b"), std::string("../../etc"), std::string("/abs"),
                                  std::string("nul\0x", 5), std::string(256, 'n')}) {
    EXPECT_EQ(decode_code(forged({base(name, NodeType::kFifo)})), ErrorCode::kCorruption)
        << printable_name(name);
    EXPECT_EQ(testing::error_code_of([&] { encode_tree(Tree{{base(name, NodeType::kFifo)}}); }),
              ErrorCode::kInternal);
  }
  // Repeated and unordered names: two entries both named "a", or "b" before "a".
  EXPECT_EQ(decode_code(forged({base("a", NodeType::kFifo), base("a", NodeType::kSocket)})),
            ErrorCode::kCorruption);
  EXPECT_EQ(decode_code(forged({base("b", NodeType::kFifo), base("a", NodeType::kSocket)})),
            ErrorCode::kCorruption);
}

TEST(FileTreeTest, ImpossibleContentIsRefused) {
  auto file = [](std::uint64_t size, std::vector<Extent> extents, std::vector<ChunkRef> chunks) {
    Node n = base("f", NodeType::kFile);
    n.size = size;
    n.extents = std::move(extents);
    n.chunks = std::move(chunks);
    return n;
  };
  const std::vector<Node> bad = {
      file(100, {{0, 200}}, {{id_of(1), 200}}),                  // extent past size
      file(100, {{50, 10}, {40, 5}}, {{id_of(1), 15}}),          // out of order
      file(100, {{0, 50}, {40, 20}}, {{id_of(1), 70}}),          // overlapping
      file(100, {{0, 100}}, {{id_of(1), 99}}),                   // chunks short
      file(100, {{0, 0}}, {}),                                   // empty extent
      file(UINT64_MAX, {{UINT64_MAX - 1, 5}}, {{id_of(1), 5}}),  // wraps around
  };
  for (const Node& n : bad) {
    EXPECT_TRUE(node_problem(n)) << n.size;
    EXPECT_EQ(decode_code(forged({n})), ErrorCode::kCorruption) << n.size;
  }
  Node link = base("l", NodeType::kSymlink);
  EXPECT_EQ(decode_code(forged({link})), ErrorCode::kCorruption);  // empty target
  Node dir_with_data = base("d", NodeType::kDirectory);
  dir_with_data.link_target = "x";
  EXPECT_TRUE(node_problem(dir_with_data));
}

TEST(FileTreeTest, TruncationCountsAndTrailingBytesAreRefused) {
  const Bytes good = encode_tree(sample_tree());
  for (std::size_t n = 0; n < good.size(); ++n) {
    const Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_EQ(decode_code(cut), ErrorCode::kCorruption) << n;
  }
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_EQ(decode_code(trailing), ErrorCode::kCorruption);
  Bytes huge_count = good;
  store_le<std::uint32_t>(huge_count.data() + 5, 0xffffffffu);  // no 4-billion-entry allocation
  EXPECT_EQ(decode_code(huge_count), ErrorCode::kCorruption);
  Bytes version = good;
  version[4] = 2;
  EXPECT_EQ(decode_code(version), ErrorCode::kCorruption);
}

TEST(FileTreeTest, RandomDamageIsRefusedOrDecodesToACheckedTree) {
  const Bytes good = encode_tree(sample_tree());
  for (testing::FuzzSeeds seeds(300); seeds.next();) {
    const std::uint64_t seed = seeds.seed();
    std::mt19937_64 rng(seed);
    Bytes b = good;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < flips; ++i)
      b[rng() % b.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    try {
      const Tree t = decode_tree(b, "tree x");
      for (const Node& n : t.nodes) EXPECT_FALSE(node_problem(n)) << seed;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption) << seed;
    }
  }
}

}  // namespace
}  // namespace walvault::files
