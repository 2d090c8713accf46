#include "pg/tar_reader.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/error.h"
#include "core/relative_path.h"

// Header layout (POSIX.1-1988 ustar, the part PostgreSQL's src/port/tar.c
// writes): name 0/100, mode 100/8, uid 108/8, gid 116/8, size 124/12,
// mtime 136/12, chksum 148/8, typeflag 156, linkname 157/100, magic 257/6,
// version 263/2, prefix 345/155. Numbers are octal text, or base-256 binary
// when the first byte has its high bit set (GNU; PostgreSQL uses it for
// sizes of 8 GiB and more).

namespace walvault::pg {
namespace {

// The last whole second whose nanosecond count fits in int64 (2262-04-11).
constexpr std::int64_t kMaxMtimeSeconds = INT64_MAX / 1'000'000'000 - 1;

constexpr std::size_t kBlock = 512;
// Long names and pax headers are buffered whole; PostgreSQL never writes
// them, and real ones are a few hundred bytes. The cap bounds memory.
constexpr std::uint64_t kMaxExtensionSize = 1 << 20;

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorCode::kInvalidInput, "tar: " + what);
}

std::string_view field_text(const std::uint8_t* block, std::size_t offset, std::size_t length) {
  const char* p = reinterpret_cast<const char*>(block + offset);
  return {p, strnlen(p, length)};
}

std::uint64_t field_number(const std::uint8_t* block, std::size_t offset, std::size_t length,
                           const char* name) {
  const std::uint8_t* p = block + offset;
  if (p[0] & 0x80) {
    if (p[0] != 0x80) invalid(std::string("negative or oversized base-256 ") + name);
    std::uint64_t value = 0;
    for (std::size_t i = 1; i < length; ++i) {
      if (value >> 56) invalid(std::string("base-256 ") + name + " overflows 64 bits");
      value = value << 8 | p[i];
    }
    return value;
  }
  std::size_t i = 0;
  while (i < length && p[i] == ' ') ++i;
  std::uint64_t value = 0;
  for (; i < length && p[i] >= '0' && p[i] <= '7'; ++i) value = value << 3 | (p[i] - '0');
  for (; i < length; ++i) {
    if (p[i] != ' ' && p[i] != 0) invalid(std::string("malformed octal ") + name);
  }
  return value;
}

bool is_zero_block(const std::uint8_t* block) {
  return std::all_of(block, block + kBlock, [](std::uint8_t b) { return b == 0; });
}

// The stored checksum is the sum of the header bytes with the checksum field
// read as spaces. Historic tars summed signed chars; both are accepted, as
// GNU tar does.
void verify_checksum(const std::uint8_t* block, std::uint64_t offset) {
  std::uint64_t stored = field_number(block, 148, 8, "checksum");
  std::int64_t unsigned_sum = 0, signed_sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) {
    bool in_field = i >= 148 && i < 156;
    unsigned_sum += in_field ? ' ' : block[i];
    signed_sum += in_field ? ' ' : static_cast<std::int8_t>(block[i]);
  }
  if (static_cast<std::int64_t>(stored) != unsigned_sum &&
      static_cast<std::int64_t>(stored) != signed_sum) {
    invalid("header checksum mismatch at byte offset " + std::to_string(offset) + " (entry '" +
            std::string(field_text(block, 0, 100)) + "')");
  }
}

// "./pg_wal/archive_status" (as PostgreSQL writes it) becomes
// "pg_wal/archive_status", "dir/" becomes "dir", and the archive root "./"
// becomes ".".
std::string normalize_path(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  std::size_t start = 0;
  while (path.compare(start, 2, "./") == 0) {
    start += 2;
    while (start < path.size() && path[start] == '/') ++start;
  }
  path.erase(0, start);
  return path.empty() ? "." : path;
}

// What an entry type we refuse is, for the message.
std::string special_type_name(char type) {
  switch (type) {
    case '3':
      return "a character device";
    case '4':
      return "a block device";
    case '6':
      return "a FIFO";
    default:
      return "of type " + printable_name(std::string_view(&type, 1));
  }
}

std::uint64_t parse_decimal(std::string_view text, const std::string& key) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data())
    invalid("malformed pax " + key + " '" + std::string(text) + "'");
  return value;
}

}  // namespace

TarReader::TarReader(TarEntrySink& sink, TarReadOptions options) : sink_(sink), options_(options) {}

void TarReader::feed(ByteView chunk) {
  consumed_ += chunk.size();
  std::uint64_t base = consumed_ - chunk.size();
  std::size_t pos = 0;
  while (pos < chunk.size()) {
    std::size_t left = chunk.size() - pos;
    switch (state_) {
      case State::kHeader: {
        std::size_t take = std::min(left, kBlock - block_fill_);
        std::memcpy(block_ + block_fill_, chunk.data() + pos, take);
        block_fill_ += take;
        pos += take;
        if (block_fill_ == kBlock) {
          block_fill_ = 0;
          handle_header(base + pos - kBlock);
        }
        break;
      }
      case State::kData: {
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(left, remaining_));
        sink_.on_entry_data(chunk.subspan(pos, take));
        pos += take;
        remaining_ -= take;
        if (remaining_ == 0) {
          sink_.on_entry_end();
          enter_padding();
        }
        break;
      }
      case State::kExtension: {
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(left, remaining_));
        extension_.append(reinterpret_cast<const char*>(chunk.data() + pos), take);
        pos += take;
        remaining_ -= take;
        if (remaining_ == 0) finish_extension();
        break;
      }
      case State::kPadding: {
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(left, remaining_));
        pos += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kHeader;
        break;
      }
      case State::kEnd: {
        const std::uint8_t* p = chunk.data() + pos;
        if (!std::all_of(p, p + left, [](std::uint8_t b) { return b == 0; }))
          invalid("data after the end-of-archive marker");
        pos = chunk.size();
        break;
      }
    }
  }
}

void TarReader::handle_header(std::uint64_t offset) {
  if (is_zero_block(block_)) {
    if (overrides_.has_path || overrides_.has_link || overrides_.has_size)
      invalid("end-of-archive marker after a long-name or pax header");
    state_ = State::kEnd;
    return;
  }
  verify_checksum(block_, offset);
  if (field_text(block_, 257, 5) != "ustar") invalid("not a ustar header");

  char type = static_cast<char>(block_[156]);
  std::uint64_t size = field_number(block_, 124, 12, "size");
  if (type == 'L' || type == 'K' || type == 'x' || type == 'g') {
    start_extension(type, size);
    return;
  }

  TarEntry entry;
  if (overrides_.has_path) {
    entry.path = std::move(overrides_.path);
  } else {
    std::string_view name = field_text(block_, 0, 100);
    std::string_view prefix = field_text(block_, 345, 155);
    // Only POSIX ustar ("ustar\0") has a prefix field; old GNU headers keep
    // access and change times there.
    bool posix = block_[262] == 0;
    entry.path = posix && !prefix.empty() ? std::string(prefix) + "/" + std::string(name)
                                          : std::string(name);
  }
  if (entry.path.empty()) invalid("entry with an empty name");
  entry.path = normalize_path(std::move(entry.path));
  require_relative_path(entry.path, ErrorCode::kInvalidInput, "tar: entry");
  entry.type = entry_type(type, entry.path);
  entry.link_target = overrides_.has_link ? std::move(overrides_.link_target)
                                          : std::string(field_text(block_, 157, 100));
  // A hard link names another entry of the archive; a symlink's target is
  // free text for the file system and stays as stored.
  if (entry.type == TarEntryType::kHardlink) {
    entry.link_target = normalize_path(entry.link_target);
    require_relative_path(entry.link_target, ErrorCode::kInvalidInput,
                          "tar: hard link " + printable_name(entry.path) + " names");
  }
  if (entry.link_target.find('\0') != std::string::npos)
    invalid("link " + printable_name(entry.path) + " has a NUL byte in its target");
  entry.mode = static_cast<std::uint32_t>(field_number(block_, 100, 8, "mode") & 07777);
  entry.uid = overrides_.has_uid ? overrides_.uid
                                 : static_cast<std::uint32_t>(field_number(block_, 108, 8, "uid"));
  entry.gid = overrides_.has_gid ? overrides_.gid
                                 : static_cast<std::uint32_t>(field_number(block_, 116, 8, "gid"));
  entry.uname = overrides_.has_uname ? overrides_.uname : std::string(field_text(block_, 265, 32));
  entry.gname = overrides_.has_gname ? overrides_.gname : std::string(field_text(block_, 297, 32));
  if (entry.type == TarEntryType::kCharDevice || entry.type == TarEntryType::kBlockDevice) {
    entry.dev_major = static_cast<std::uint32_t>(field_number(block_, 329, 8, "devmajor"));
    entry.dev_minor = static_cast<std::uint32_t>(field_number(block_, 337, 8, "devminor"));
  }
  entry.xattrs = std::move(overrides_.xattrs);
  entry.size = overrides_.has_size ? overrides_.size : size;
  entry.mtime = overrides_.has_mtime
                    ? overrides_.mtime
                    : static_cast<std::int64_t>(field_number(block_, 136, 12, "mtime"));
  // Times are kept in nanoseconds as int64, which ends in the year 2262.
  if (entry.mtime < 0 || entry.mtime > kMaxMtimeSeconds)
    invalid("entry " + printable_name(entry.path) + " has an mtime out of range");
  entry.mtime_ns = entry.mtime * 1'000'000'000 + (overrides_.has_mtime ? overrides_.mtime_nsec : 0);
  // Directories and links carry no data, whatever the size field says.
  if (entry.type != TarEntryType::kFile) entry.size = 0;
  overrides_ = Overrides{};

  sink_.on_entry_begin(entry);
  if (entry.size == 0) {
    sink_.on_entry_end();
    state_ = State::kHeader;
    return;
  }
  remaining_ = entry.size;
  state_ = State::kData;
  data_size_ = entry.size;
}

TarEntryType TarReader::entry_type(char type, const std::string& path) const {
  switch (type) {
    case '0':
    case '\0':
    case '7':
      return TarEntryType::kFile;
    case '5':
      return TarEntryType::kDirectory;
    case '2':
      return TarEntryType::kSymlink;
    case '1':
      return TarEntryType::kHardlink;
    case '3':
      if (options_.special_files) return TarEntryType::kCharDevice;
      break;
    case '4':
      if (options_.special_files) return TarEntryType::kBlockDevice;
      break;
    case '6':
      if (options_.special_files) return TarEntryType::kFifo;
      break;
    default:
      break;
  }
  invalid("unsupported entry type: " + printable_name(path) + " is " + special_type_name(type) +
          (options_.special_files ? std::string()
                                  : "; a data directory holds only files, directories and links"));
}

void TarReader::start_extension(char type, std::uint64_t size) {
  if (size > kMaxExtensionSize)
    invalid("long-name or pax header of " + std::to_string(size) + " bytes is too large");
  extension_type_ = type;
  extension_.clear();
  data_size_ = size;
  remaining_ = size;
  state_ = State::kExtension;
  if (size == 0) finish_extension();
}

void TarReader::finish_extension() {
  switch (extension_type_) {
    case 'L':
      overrides_.path = std::string(extension_.c_str());  // NUL-terminated, then padding
      overrides_.has_path = true;
      break;
    case 'K':
      overrides_.link_target = std::string(extension_.c_str());
      overrides_.has_link = true;
      break;
    case 'x':
      apply_pax(extension_);
      break;
    default:  // 'g': global pax defaults; PostgreSQL never writes them, nothing we use
      break;
  }
  extension_.clear();
  enter_padding();
}

// pax records: "<length> <key>=<value>\n", the length counting the whole record.
void TarReader::apply_pax(std::string_view records) {
  while (!records.empty()) {
    std::size_t space = records.find(' ');
    if (space == std::string_view::npos) invalid("malformed pax record");
    std::uint64_t length = parse_decimal(records.substr(0, space), "record length");
    if (length <= space + 1 || length > records.size() || records[length - 1] != '\n')
      invalid("malformed pax record");
    std::string_view record = records.substr(space + 1, length - space - 2);
    records.remove_prefix(length);
    std::size_t eq = record.find('=');
    if (eq == std::string_view::npos) invalid("malformed pax record");
    std::string_view key = record.substr(0, eq);
    std::string_view value = record.substr(eq + 1);
    if (key == "path") {
      overrides_.path = std::string(value);
      overrides_.has_path = true;
    } else if (key == "linkpath") {
      overrides_.link_target = std::string(value);
      overrides_.has_link = true;
    } else if (key == "size") {
      overrides_.size = parse_decimal(value, "size");
      overrides_.has_size = true;
    } else if (key == "mtime") {
      // "seconds[.fraction]": the fraction kept to the nanosecond.
      const std::size_t dot = value.find('.');
      const std::uint64_t seconds = parse_decimal(value.substr(0, dot), "mtime");
      if (seconds > static_cast<std::uint64_t>(kMaxMtimeSeconds)) invalid("pax mtime out of range");
      overrides_.mtime = static_cast<std::int64_t>(seconds);
      overrides_.mtime_nsec = 0;
      if (dot != std::string_view::npos) {
        std::string frac(value.substr(dot + 1, 9));
        frac.resize(9, '0');
        overrides_.mtime_nsec = static_cast<std::int64_t>(parse_decimal(frac, "mtime"));
      }
      overrides_.has_mtime = true;
    } else if (key == "uid" || key == "gid") {
      const std::uint64_t id = parse_decimal(value, std::string(key));
      if (id > UINT32_MAX) invalid("pax " + std::string(key) + " out of range");
      (key == "uid" ? overrides_.uid : overrides_.gid) = static_cast<std::uint32_t>(id);
      (key == "uid" ? overrides_.has_uid : overrides_.has_gid) = true;
    } else if (key == "uname") {
      overrides_.uname = std::string(value);
      overrides_.has_uname = true;
    } else if (key == "gname") {
      overrides_.gname = std::string(value);
      overrides_.has_gname = true;
    } else if (key.starts_with("SCHILY.xattr.")) {
      overrides_.xattrs.emplace_back(std::string(key.substr(13)), std::string(value));
    }
  }
}

void TarReader::enter_padding() {
  std::uint64_t tail = data_size_ % kBlock;
  remaining_ = tail == 0 ? 0 : kBlock - tail;
  state_ = remaining_ == 0 ? State::kHeader : State::kPadding;
}

void TarReader::finish() {
  switch (state_) {
    case State::kEnd:
      return;
    case State::kHeader:
      if (block_fill_ == 0 && !overrides_.has_path && !overrides_.has_link && !overrides_.has_size)
        return;
      invalid("stream truncated inside a header after " + std::to_string(consumed_) + " bytes");
    case State::kData:
      invalid("stream truncated inside file data, " + std::to_string(remaining_) +
              " bytes missing after " + std::to_string(consumed_) + " bytes");
    case State::kExtension:
      invalid("stream truncated inside a long-name or pax header");
    case State::kPadding:
      invalid("stream truncated inside the padding after an entry");
  }
}

}  // namespace walvault::pg
