#include "files/tar_export.h"

#include <sys/sysmacros.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "core/error.h"
#include "core/relative_path.h"
#include "files/browse.h"

namespace walvault::files {
namespace {

constexpr std::size_t kBlock = 512;

// Where the tar bytes go: straight to the descriptor, or through gzip.
class Output {
 public:
  Output(int fd, bool gzip) : fd_(fd), gzip_(gzip) {
    if (gzip_) {
      std::memset(&z_, 0, sizeof z_);
      // windowBits 15 + 16: a gzip wrapper, as `tar czf` writes.
      if (deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
          Z_OK)
        throw Error(ErrorCode::kInternal, "zlib: deflateInit2 failed");
      out_.resize(256 << 10);
    }
  }
  ~Output() {
    if (gzip_) deflateEnd(&z_);
  }
  void write(const std::uint8_t* p, std::size_t n) {
    if (!gzip_) return write_fd(p, n);
    z_.next_in = const_cast<std::uint8_t*>(p);
    z_.avail_in = static_cast<uInt>(n);
    while (z_.avail_in > 0) deflate_step(Z_NO_FLUSH);
  }
  void finish() {
    if (!gzip_) return;
    while (deflate_step(Z_FINISH) != Z_STREAM_END) {
    }
  }

 private:
  int deflate_step(int flush) {
    z_.next_out = out_.data();
    z_.avail_out = static_cast<uInt>(out_.size());
    const int rc = deflate(&z_, flush);
    if (rc == Z_STREAM_ERROR) throw Error(ErrorCode::kInternal, "zlib: deflate failed");
    write_fd(out_.data(), out_.size() - z_.avail_out);
    return rc;
  }
  void write_fd(const std::uint8_t* p, std::size_t n) {
    while (n > 0) {
      const ssize_t put = ::write(fd_, p, n);
      if (put < 0) {
        if (errno == EINTR) continue;
        throw_errno("write the tar stream", errno);
      }
      p += put;
      n -= static_cast<std::size_t>(put);
    }
  }
  int fd_;
  bool gzip_;
  z_stream z_;
  Bytes out_;
};

// Writes `value` as octal into field [at, at + width) with a NUL; false when
// it does not fit (a pax record carries it instead).
bool octal(std::uint8_t* header, std::size_t at, std::size_t width, std::uint64_t value) {
  std::uint64_t v = value;
  for (std::size_t i = width - 1; i-- > 0;) {
    header[at + i] = static_cast<std::uint8_t>('0' + (v & 7));
    v >>= 3;
  }
  header[at + width - 1] = 0;
  return v == 0;
}

void field(std::uint8_t* header, std::size_t at, std::size_t width, std::string_view text) {
  std::memcpy(header + at, text.data(), std::min(width, text.size()));
}

// "<len> key=value\n", where len counts the whole record.
void pax_record(std::string& out, std::string_view key, std::string_view value) {
  const std::size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  std::size_t len = body + 1;
  while (std::to_string(len).size() + body != len) ++len;
  out += std::to_string(len) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

struct Header {
  std::string path;  // as in the archive ("./" for the root, dirs end in '/')
  char type = '0';
  const Node* node = nullptr;
  std::uint64_t size = 0;
  std::string link;  // symlink or hard-link target
};

class TarWriter {
 public:
  TarWriter(int fd, bool gzip) : out_(fd, gzip) {}

  void entry(const Header& h) {
    std::uint8_t block[kBlock] = {};
    std::string pax;
    if (h.path.size() > 100) pax_record(pax, "path", h.path);
    field(block, 0, 100, h.path);
    const Node& n = *h.node;
    octal(block, 100, 8, n.mode);
    if (!octal(block, 108, 8, n.uid)) pax_record(pax, "uid", std::to_string(n.uid));
    if (!octal(block, 116, 8, n.gid)) pax_record(pax, "gid", std::to_string(n.gid));
    if (!octal(block, 124, 12, h.size)) pax_record(pax, "size", std::to_string(h.size));
    const std::int64_t sec = n.mtime_ns >= 0 ? n.mtime_ns / 1'000'000'000 : 0;
    const std::int64_t nsec = n.mtime_ns >= 0 ? n.mtime_ns % 1'000'000'000 : 0;
    octal(block, 136, 12, static_cast<std::uint64_t>(sec));
    if (nsec != 0) {
      char frac[16];
      std::snprintf(frac, sizeof frac, "%09lld", static_cast<long long>(nsec));
      pax_record(pax, "mtime", std::to_string(sec) + "." + frac);
    }
    block[156] = static_cast<std::uint8_t>(h.type);
    if (h.link.size() > 100) pax_record(pax, "linkpath", h.link);
    field(block, 157, 100, h.link);
    field(block, 257, 6, std::string_view("ustar\0", 6));
    field(block, 263, 2, "00");
    if (n.user.size() > 31)
      pax_record(pax, "uname", n.user);
    else
      field(block, 265, 32, n.user);
    if (n.group.size() > 31)
      pax_record(pax, "gname", n.group);
    else
      field(block, 297, 32, n.group);
    if (h.type == '3' || h.type == '4') {
      octal(block, 329, 8, major(static_cast<dev_t>(n.rdev)));
      octal(block, 337, 8, minor(static_cast<dev_t>(n.rdev)));
    }
    for (const Xattr& x : n.xattrs) pax_record(pax, "SCHILY.xattr." + x.name, x.value);
    if (!pax.empty()) write_pax(pax);
    checksum(block);
    out_.write(block, kBlock);
  }
  void data(ByteView bytes) {
    out_.write(bytes.data(), bytes.size());
    written_ += bytes.size();
  }
  void pad() {
    static const std::uint8_t zeros[kBlock] = {};
    if (written_ % kBlock != 0) out_.write(zeros, kBlock - written_ % kBlock);
    written_ = 0;
  }
  void finish() {
    static const std::uint8_t zeros[2 * kBlock] = {};
    out_.write(zeros, sizeof zeros);
    out_.finish();
  }

 private:
  static void checksum(std::uint8_t* block) {
    std::memset(block + 148, ' ', 8);
    unsigned sum = 0;
    for (std::size_t i = 0; i < kBlock; ++i) sum += block[i];
    octal(block, 148, 7, sum);
    block[155] = ' ';
  }
  void write_pax(const std::string& records) {
    std::uint8_t block[kBlock] = {};
    field(block, 0, 100, "././@PaxHeader");
    octal(block, 100, 8, 0644);
    octal(block, 108, 8, 0);
    octal(block, 116, 8, 0);
    octal(block, 124, 12, records.size());
    octal(block, 136, 12, 0);
    block[156] = 'x';
    field(block, 257, 6, std::string_view("ustar\0", 6));
    field(block, 263, 2, "00");
    checksum(block);
    out_.write(block, kBlock);
    data(as_bytes(records));
    pad();
  }

  Output out_;
  std::uint64_t written_ = 0;
};

char type_flag(NodeType t) {
  switch (t) {
    case NodeType::kFile:
      return '0';
    case NodeType::kDirectory:
      return '5';
    case NodeType::kSymlink:
      return '2';
    case NodeType::kFifo:
      return '6';
    case NodeType::kCharDevice:
      return '3';
    case NodeType::kBlockDevice:
      return '4';
    default:
      return 0;
  }
}

}  // namespace

void export_tar(repo::ChunkStore& chunks, const repo::ChunkId& root, const Node& root_node, int fd,
                const ExportOptions& options, std::vector<std::string>& warnings) {
  TarWriter tar(fd, options.gzip);
  tar.entry({"./", '5', &root_node, 0, ""});
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::string> first_link;
  walk_snapshot(chunks, root, [&](const std::string& path, const Node& n) {
    const char type = type_flag(n.type);
    if (type == 0) {
      warnings.push_back(printable_name(path) + ": a socket cannot be stored in a tar (skipped)");
      return true;
    }
    const std::string name = "./" + path + (n.type == NodeType::kDirectory ? "/" : "");
    if (n.type == NodeType::kFile && n.nlink > 1) {
      auto [it, first] = first_link.try_emplace({n.device, n.inode}, "./" + path);
      if (!first) {
        tar.entry({name, '1', &n, 0, it->second});
        return true;
      }
    }
    tar.entry({name, type, &n, n.type == NodeType::kFile ? n.size : 0, n.link_target});
    if (n.type == NodeType::kFile) {
      read_file_content(chunks, n, [&](ByteView bytes) { tar.data(bytes); });
      tar.pad();
    }
    return true;
  });
  tar.finish();
}

}  // namespace walvault::files
