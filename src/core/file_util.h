// Durable local-file helpers. Every durable write in walvault goes through
// write_file_atomic: a temp file in the target directory, write, fsync,
// rename over the target, fsync the directory. A crash leaves either the old
// state or the complete new file, never a partial one under the final name.
#pragma once

#include <optional>
#include <string>

#include "core/bytes.h"

namespace walvault {

enum class Overwrite { kYes, kNo };
// kFsync: durable when the call returns (file and directory synced).
// kStartWriteback: not durable, but the file's writeback has started
// (sync_file_range, no wait), so whoever fsyncs it later finds little left
// to write: the spooled WAL that PostgreSQL fsyncs before using it.
// kNone: left to the kernel.
enum class Durability { kFsync, kStartWriteback, kNone };

// Writes `data` to `path` atomically with file mode `mode`.
// Overwrite::kNo: the final step is link(2) instead of rename(2), so an
// existing file is never replaced; returns false in that case (the temp file
// is removed). Returns true when the file now holds `data`.
// Throws Error(kIo) on any failure, after removing the temp file.
bool write_file_atomic(const std::string& path, ByteView data, unsigned mode = 0640,
                       Overwrite overwrite = Overwrite::kYes,
                       Durability durability = Durability::kFsync);

// Whole-file read, or its first `max_bytes` when it is longer (a file in a
// directory someone else controls may be huge, or a link to /dev/zero).
// std::nullopt when the file does not exist; throws Error(kIo) on any other
// failure.
std::optional<Bytes> read_file(const std::string& path,
                               std::size_t max_bytes = static_cast<std::size_t>(-1));

// Creates `path` and missing parents (mode 0750). Throws Error(kIo).
void make_dirs(const std::string& path);

// fsync(2) of a directory, so that a rename/link/unlink in it is durable.
void fsync_dir(const std::string& dir);

std::string dir_name(const std::string& path);
std::string base_name(const std::string& path);

}  // namespace walvault

namespace walvault {

// A whole file mapped read-only (MAP_PRIVATE | MAP_POPULATE). Reading a WAL
// segment this way maps the page-cache pages instead of copying them into
// fresh memory, which is the expensive part of a short-lived process.
class MappedFile {
 public:
  // std::nullopt when the file does not exist; throws Error(kIo) otherwise.
  static std::optional<MappedFile> open(const std::string& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  ~MappedFile();
  ByteView bytes() const { return {data_, size_}; }

 private:
  MappedFile(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  const std::uint8_t* data_;
  std::size_t size_;
};

}  // namespace walvault
