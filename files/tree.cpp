#include "files/tree.h"

#include <cstring>

#include "core/error.h"
#include "core/relative_path.h"

namespace walvault::files {
namespace {

constexpr char kMagic[4] = {'W', 'V', 'T', 'R'};
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kMaxLinkTarget = kMaxPathBytes;
constexpr std::size_t kMaxXattrName = 255;     // XATTR_NAME_MAX
constexpr std::size_t kMaxXattrValue = 65536;  // XATTR_SIZE_MAX
constexpr std::size_t kMaxIdentityName = 255;  // user and group names

bool valid_type(std::uint8_t t) { return t >= 1 && t <= 7; }

std::optional<std::string> name_problem(std::string_view name) {
  if (name.empty()) return "empty name";
  if (name == "." || name == "..") return "name is '" + std::string(name) + "'";
  if (name.find('/') != std::string_view::npos) return "name holds '/'";
  if (name.find('\0') != std::string_view::npos) return "name holds a NUL byte";
  if (name.size() > kMaxNameBytes) return "name is over 255 bytes";
  return std::nullopt;
}

std::optional<std::string> file_problem(const Node& n) {
  std::uint64_t end = 0, data = 0;
  for (const Extent& e : n.extents) {
    if (e.length == 0) return std::string("empty extent");
    if (e.offset < end) return std::string("extents out of order or overlapping");
    if (e.offset > n.size || e.length > n.size - e.offset)
      return std::string("extent past the size");
    end = e.offset + e.length;
    data += e.length;
  }
  std::uint64_t chunked = 0;
  for (const ChunkRef& c : n.chunks) {
    if (c.length == 0) return std::string("empty chunk");
    chunked += c.length;
  }
  if (chunked != data)
    return "chunks hold " + std::to_string(chunked) + " bytes, extents " + std::to_string(data);
  return std::nullopt;
}

std::optional<std::string> type_problem(const Node& n) {
  if (n.type != NodeType::kFile && (!n.extents.empty() || !n.chunks.empty()))
    return std::string("content on an entry that is not a file");
  if (n.type != NodeType::kSymlink && !n.link_target.empty())
    return std::string("link target on an entry that is not a symbolic link");
  switch (n.type) {
    case NodeType::kFile:
      return file_problem(n);
    case NodeType::kSymlink:
      if (n.link_target.empty()) return std::string("empty link target");
      if (n.link_target.find('\0') != std::string::npos)
        return std::string("link target holds NUL");
      if (n.link_target.size() > kMaxLinkTarget) return std::string("link target over 4095 bytes");
      return std::nullopt;
    default:
      return valid_type(static_cast<std::uint8_t>(n.type))
                 ? std::nullopt
                 : std::optional<std::string>("unknown type");
  }
}

}  // namespace

std::optional<std::string> node_problem(const Node& n) {
  if (auto p = name_problem(n.name)) return p;
  if ((n.mode & ~07777u) != 0) return std::string("mode has bits outside 07777");
  if (n.user.size() > kMaxIdentityName || n.group.size() > kMaxIdentityName)
    return std::string("user or group name over 255 bytes");
  for (std::size_t i = 0; i < n.xattrs.size(); ++i) {
    const Xattr& x = n.xattrs[i];
    if (x.name.empty() || x.name.size() > kMaxXattrName || x.name.find('\0') != std::string::npos)
      return std::string("bad extended attribute name");
    if (x.value.size() > kMaxXattrValue) return std::string("extended attribute value over 64 KiB");
    if (i > 0 && !(n.xattrs[i - 1].name < x.name))
      return std::string("extended attributes out of order");
  }
  return type_problem(n);
}

// ---- encoding ----

namespace {

void put_string(Bytes& out, std::string_view s, std::size_t width) {
  if (width == 1)
    out.push_back(static_cast<std::uint8_t>(s.size()));
  else if (width == 2)
    append_le<std::uint16_t>(out, static_cast<std::uint16_t>(s.size()));
  else
    append_le<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

void put_node(Bytes& out, const Node& n) {
  out.push_back(static_cast<std::uint8_t>(n.type));
  put_string(out, n.name, 2);
  append_le<std::uint32_t>(out, n.mode);
  append_le<std::uint32_t>(out, n.uid);
  append_le<std::uint32_t>(out, n.gid);
  put_string(out, n.user, 1);
  put_string(out, n.group, 1);
  append_le<std::int64_t>(out, n.mtime_ns);
  append_le<std::int64_t>(out, n.ctime_ns);
  append_le<std::uint64_t>(out, n.device);
  append_le<std::uint64_t>(out, n.inode);
  append_le<std::uint32_t>(out, n.nlink);
  append_le<std::uint64_t>(out, n.size);
  switch (n.type) {
    case NodeType::kFile:
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
      break;
    case NodeType::kDirectory:
      out.insert(out.end(), n.subtree.begin(), n.subtree.end());
      break;
    case NodeType::kSymlink:
      put_string(out, n.link_target, 2);
      break;
    case NodeType::kCharDevice:
    case NodeType::kBlockDevice:
      append_le<std::uint64_t>(out, n.rdev);
      break;
    default:
      break;
  }
  append_le<std::uint16_t>(out, static_cast<std::uint16_t>(n.xattrs.size()));
  for (const Xattr& x : n.xattrs) {
    put_string(out, x.name, 1);
    put_string(out, x.value, 4);
  }
}

}  // namespace

Bytes encode_tree(const Tree& tree) {
  Bytes out(kMagic, kMagic + sizeof kMagic);
  out.push_back(kVersion);
  append_le<std::uint32_t>(out, static_cast<std::uint32_t>(tree.nodes.size()));
  for (std::size_t i = 0; i < tree.nodes.size(); ++i) {
    const Node& n = tree.nodes[i];
    if (auto p = node_problem(n))
      throw Error(ErrorCode::kInternal, "tree entry " + printable_name(n.name) + ": " + *p);
    if (i > 0 && !(tree.nodes[i - 1].name < n.name))
      throw Error(ErrorCode::kInternal, "tree entry " + printable_name(n.name) + ": out of order");
    put_node(out, n);
  }
  return out;
}

// ---- decoding ----

namespace {

// A bounds-checked cursor; every read past the end is corruption.
class Reader {
 public:
  Reader(ByteView bytes, std::string_view what) : bytes_(bytes), what_(what) {}

  template <typename T>
  T le() {
    return load_le<T>(take(sizeof(T)).data());
  }
  std::uint8_t u8() { return take(1)[0]; }
  std::string string(std::size_t width) {
    std::size_t n = width == 1 ? u8() : width == 2 ? le<std::uint16_t>() : le<std::uint32_t>();
    const ByteView b = take(n);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  repo::ChunkId id() {
    repo::ChunkId out;
    const ByteView b = take(out.size());
    std::memcpy(out.data(), b.data(), out.size());
    return out;
  }
  // A count of items of at least `min_item_bytes` each: refused before
  // anything is allocated when the rest of the tree cannot hold them.
  std::size_t count(std::size_t n, std::size_t min_item_bytes) {
    if (n > (bytes_.size() - at_) / min_item_bytes) fail("a count runs past the end");
    return n;
  }
  bool done() const { return at_ == bytes_.size(); }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(ErrorCode::kCorruption, std::string(what_) + ": " + why);
  }

 private:
  ByteView take(std::size_t n) {
    if (n > bytes_.size() - at_) fail("truncated at byte " + std::to_string(at_));
    const ByteView out = bytes_.subspan(at_, n);
    at_ += n;
    return out;
  }
  ByteView bytes_;
  std::string_view what_;
  std::size_t at_ = 0;
};

void read_content(Reader& r, Node& n) {
  switch (n.type) {
    case NodeType::kFile: {
      n.extents.resize(r.count(r.le<std::uint32_t>(), 16));
      for (Extent& e : n.extents) {
        e.offset = r.le<std::uint64_t>();
        e.length = r.le<std::uint64_t>();
      }
      n.chunks.resize(r.count(r.le<std::uint32_t>(), 36));
      for (ChunkRef& c : n.chunks) {
        c.id = r.id();
        c.length = r.le<std::uint32_t>();
      }
      break;
    }
    case NodeType::kDirectory:
      n.subtree = r.id();
      break;
    case NodeType::kSymlink:
      n.link_target = r.string(2);
      break;
    case NodeType::kCharDevice:
    case NodeType::kBlockDevice:
      n.rdev = r.le<std::uint64_t>();
      break;
    default:
      break;
  }
}

Node read_node(Reader& r) {
  Node n;
  const std::uint8_t type = r.u8();
  if (!valid_type(type)) r.fail("entry of unknown type " + std::to_string(type));
  n.type = static_cast<NodeType>(type);
  n.name = r.string(2);
  n.mode = r.le<std::uint32_t>();
  n.uid = r.le<std::uint32_t>();
  n.gid = r.le<std::uint32_t>();
  n.user = r.string(1);
  n.group = r.string(1);
  n.mtime_ns = r.le<std::int64_t>();
  n.ctime_ns = r.le<std::int64_t>();
  n.device = r.le<std::uint64_t>();
  n.inode = r.le<std::uint64_t>();
  n.nlink = r.le<std::uint32_t>();
  n.size = r.le<std::uint64_t>();
  read_content(r, n);
  n.xattrs.resize(r.count(r.le<std::uint16_t>(), 5));
  for (Xattr& x : n.xattrs) {
    x.name = r.string(1);
    x.value = r.string(4);
  }
  return n;
}

}  // namespace

Tree decode_tree(ByteView bytes, std::string_view what) {
  Reader r(bytes, what);
  for (char c : kMagic)
    if (r.u8() != static_cast<std::uint8_t>(c)) r.fail("not a tree (bad magic)");
  if (const std::uint8_t v = r.u8(); v != kVersion)
    r.fail("tree format version " + std::to_string(v) + " is not known to this walvault");
  Tree tree;
  tree.nodes.resize(r.count(r.le<std::uint32_t>(), 60));
  for (std::size_t i = 0; i < tree.nodes.size(); ++i) {
    Node& n = tree.nodes[i];
    n = read_node(r);
    if (auto p = node_problem(n)) r.fail("entry " + printable_name(n.name) + ": " + *p);
    if (i > 0 && !(tree.nodes[i - 1].name < n.name))
      r.fail("entry " + printable_name(n.name) + ": names out of order or repeated");
  }
  if (!r.done()) r.fail("bytes after the last entry");
  return tree;
}

}  // namespace walvault::files
