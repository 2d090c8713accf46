// Incremental (push-style) reader of ustar/pax tar streams, as PostgreSQL's
// BASE_BACKUP and pg_basebackup produce them, plus the GNU tar extensions a
// hand-made tar may carry (GNU long names 'L'/'K', pax 'x' headers).
//
// The caller feeds byte chunks of any size as they arrive from the network or
// a pipe; the reader calls its TarEntrySink once per entry (begin, data in
// pieces, end). Nothing is buffered beyond one 512-byte header block and the
// bounded text of a long-name or pax header, so a multi-gigabyte relation
// file passes through in the caller's own chunks.
//
// Every header's checksum is verified. The end-of-archive marker (two zero
// blocks) is accepted but not required: PostgreSQL 13/14 send tars without
// it. A stream that stops inside a header, inside file data or its padding is
// reported by finish().
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"

namespace walvault::pg {

enum class TarEntryType {
  kFile,
  kDirectory,
  kSymlink,
  kHardlink,
  // Only with TarReadOptions::special_files (file-volume import):
  kFifo,
  kCharDevice,
  kBlockDevice,
};

struct TarReadOptions {
  // Accept FIFOs and devices (else they are refused: a data directory holds none).
  bool special_files = false;
};

struct TarEntry {
  // As stored, minus a leading "./" and a trailing '/': PostgreSQL writes
  // "./pg_wal/archive_status" and ends directory and link names with '/'.
  // The archive root "./" is ".". Always a contained relative path
  // (core/relative_path.h): never absolute, no "..", "." or empty
  // component, no NUL, at most 4095 bytes.
  std::string path;
  TarEntryType type = TarEntryType::kFile;
  std::uint32_t mode = 0;  // permission bits only (07777)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;     // bytes of data that follow (0 for directories and links)
  std::int64_t mtime = 0;     // seconds since the epoch
  std::int64_t mtime_ns = 0;  // the same in ns, with a pax mtime's fraction
  std::string uname, gname;   // owner names (ustar fields, pax uname/gname)
  std::uint32_t dev_major = 0, dev_minor = 0;  // devices
  // Extended attributes from pax SCHILY.xattr.<name> records, in order.
  std::vector<std::pair<std::string, std::string>> xattrs;
  // Symlink target as stored (no NUL; it may point anywhere: whoever writes
  // the link decides whether to follow it); hard-link target normalized and
  // checked like `path`; else empty.
  std::string link_target;
};

// Receives the entries of one tar stream, in order. Methods may throw; the
// exception propagates out of TarReader::feed and the reader is then unusable.
class TarEntrySink {
 public:
  virtual ~TarEntrySink() = default;
  virtual void on_entry_begin(const TarEntry& entry) = 0;
  // The entry's content, in pieces that together are exactly entry.size bytes.
  // The view is valid only during the call.
  virtual void on_entry_data(ByteView data) = 0;
  virtual void on_entry_end() = 0;
};

class TarReader {
 public:
  // `sink` must outlive the reader. Not thread-safe: one stream, one thread.
  explicit TarReader(TarEntrySink& sink, TarReadOptions options = {});

  // Consumes `chunk` (any size, including 0). Throws Error(kInvalidInput) on a
  // bad header checksum, a malformed number or pax record, data after the
  // end-of-archive marker, an entry whose name (or hard-link target) is not a
  // contained relative path, or an entry of another type than file,
  // directory, symlink or hard link (devices and FIFOs: a data directory
  // holds none); the message names the entry.
  void feed(ByteView chunk);

  // Declares the end of the stream. Throws Error(kInvalidInput) when the
  // stream stopped inside an entry (truncated); a stream that stops cleanly
  // after an entry, with or without the end-of-archive marker, is accepted.
  void finish();

  // Total bytes fed so far.
  std::uint64_t bytes_consumed() const { return consumed_; }
  // True once the end-of-archive marker (a zero block) has been seen.
  bool saw_end_marker() const { return state_ == State::kEnd; }

 private:
  enum class State { kHeader, kData, kPadding, kExtension, kEnd };
  // Pending overrides from GNU long-name and pax headers for the next entry.
  struct Overrides {
    std::string path, link_target, uname, gname;
    bool has_path = false, has_link = false, has_size = false, has_mtime = false;
    bool has_uid = false, has_gid = false, has_uname = false, has_gname = false;
    std::uint64_t size = 0;
    std::int64_t mtime = 0, mtime_nsec = 0;
    std::uint32_t uid = 0, gid = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;
  };
  // The entry's type from the header's type flag; refuses what is not accepted.
  TarEntryType entry_type(char type, const std::string& path) const;

  void handle_header(std::uint64_t offset);  // offset: where the header starts in the stream
  void start_extension(char type, std::uint64_t size);
  void finish_extension();
  void apply_pax(std::string_view records);
  void enter_padding();  // after data_size_ bytes of data, skip to the next block

  TarEntrySink& sink_;
  TarReadOptions options_;
  State state_ = State::kHeader;
  std::uint8_t block_[512];
  std::size_t block_fill_ = 0;
  std::uint64_t remaining_ = 0;  // data or padding bytes left in the current state
  std::uint64_t data_size_ = 0;  // size of the current entry or extension data
  std::uint64_t consumed_ = 0;
  char extension_type_ = 0;  // 'L', 'K' or 'x' while State::kExtension
  std::string extension_;    // text of the current long-name or pax header
  Overrides overrides_;
};

}  // namespace walvault::pg
