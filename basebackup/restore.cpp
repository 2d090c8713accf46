#include "basebackup/restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/contained_dir.h"
#include "core/direct_io.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/parallel.h"
#include "core/time_util.h"
#include "repo/chunk_store.h"

namespace walvault::basebackup {

namespace {

constexpr char kPgControl[] = "global/pg_control";
// A job writes this many bytes of one file (whole chunks, at least one).
constexpr std::uint64_t kJobBytes = 16u << 20;
// The warm-up's buffered writes, in pieces of this size (write_buffered).
constexpr std::size_t kHotWritePiece = 16u << 10;

bool is_empty_dir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return errno == ENOENT;
  bool empty = true;
  while (auto* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

// The I/O stage of one restore writer: while it writes one batch of
// consecutive chunks with direct I/O, the writer decodes the next batch into
// the other buffer. A direct write is synchronous, so without it the CPU
// and the disk would take turns. A one-thread pool with a queue of one: a
// write is submitted once the previous one is done, so one buffer is on its
// way to the disk while the writer fills the other.
class DirectWriter {
 public:
  // Consecutive chunks gathered into one direct write.
  static constexpr std::size_t kBatchBytes = 4u << 20;

  explicit DirectWriter(std::size_t capacity)
      : capacity_(std::max(capacity, kBatchBytes)),
        buffers_{AlignedBuffer(capacity_), AlignedBuffer(capacity_)} {}

  std::size_t capacity() const { return capacity_; }
  // The buffer to fill next (capacity() bytes, block-aligned).
  std::uint8_t* buffer() { return buffers_[current_].data(); }
  // Writes `size` bytes of buffer() at `offset` once the previous write is
  // done (rethrowing its failure); the caller fills the other buffer
  // meanwhile. `fd` takes what direct I/O refuses. Both descriptors and
  // `path` stay valid until wait() or settle() returns.
  void submit(int direct_fd, int fd, std::size_t size, std::uint64_t offset,
              const std::string& path) {
    io_.wait();
    const std::uint8_t* data = buffers_[current_].data();
    io_.submit([this, direct_fd, fd, data, size, offset, &path] {
      const std::string what = "restore: writing " + path;
      const std::size_t done = pwrite_direct(direct_fd, data, size, offset, what);
      if (done < size) {
        refused_ = true;
        pwrite_all(fd, data + done, size - done, offset + done, what);
      }
    });
    current_ ^= 1;
  }
  // Waits until the submitted write is done; rethrows its failure.
  void wait() { io_.wait(); }
  // Waits, keeping any failure (a writer unwinding from its own failure
  // must not close the descriptors under a write in flight).
  void settle() noexcept { io_.drain(); }
  // True once a file system refused direct I/O.
  bool refused() const { return refused_; }

 private:
  const std::size_t capacity_;
  AlignedBuffer buffers_[2];
  int current_ = 0;
  std::atomic<bool> refused_{false};
  WorkerPool io_{1, 1};  // last: its thread is joined before the buffers go
};

// Reads up to `size` bytes at `offset`; fewer at the end of the file.
std::size_t pread_some(int fd, std::uint8_t* data, std::size_t size, std::uint64_t offset,
                       const std::string& path) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("restore: reading " + path);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

// A file to fill: its chunks are handed out in ranges of about kJobBytes.
struct FileWork {
  const FileEntry* entry;
  const ContainedDir* root;  // the archive's root; entry->path is below it
  std::string path;          // root + "/" + entry->path, for messages
  // Chunks to write through the page cache (ascending), or nullptr.
  const std::vector<std::uint32_t>* hot = nullptr;
  std::size_t next_chunk = 0;   // first chunk not handed out yet
  std::size_t chunks_done = 0;  // written (or kept) and range writeback started
  int writers = 0;              // workers holding a range of this file
};

// Hands out chunk ranges to the writers. Files become available as the main
// thread creates them (publish), so creating a thousand files overlaps with
// writing the first ones. A worker gets a range of a file no other worker is
// in when there is one: ext4 serialises buffered writes to one inode
// (i_rwsem), so two workers in one file spin on its lock instead of copying.
// Only when every file with ranges left is taken does a second worker join
// one (the decoding still runs in parallel). A scheduling policy, not a pool:
// the writers' threads and their failure come from core/parallel; this lock
// guards only which range goes to whom, and take() waits on it for the next
// created file.
class JobQueue {
 public:
  struct Job {
    FileWork* file;
    std::size_t first_chunk, end_chunk;
  };

  JobQueue(std::vector<FileWork>& files, std::uint32_t chunk_size)
      : files_(files),
        chunks_per_job_(std::max<std::uint64_t>(1, chunk_size ? kJobBytes / chunk_size : 1)) {}

  void publish(std::size_t created) {
    std::lock_guard lock(mu_);
    published_ = created;
    changed_.notify_all();
  }
  void abort() {
    std::lock_guard lock(mu_);
    aborted_ = true;
    changed_.notify_all();
  }
  // Waits for a range; std::nullopt when every range is handed out or the
  // restore is failing.
  std::optional<Job> take() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (aborted_) return std::nullopt;
      while (first_open_ < published_ && exhausted(files_[first_open_])) ++first_open_;
      FileWork* pick = nullptr;
      for (std::size_t i = first_open_; i < published_; ++i) {
        FileWork& f = files_[i];
        if (exhausted(f)) continue;
        if (f.writers == 0) {
          pick = &f;
          break;
        }
        if (!pick || remaining(f) > remaining(*pick)) pick = &f;
      }
      if (pick) {
        const std::size_t first = pick->next_chunk;
        pick->next_chunk = std::min(pick->entry->chunks.size(), first + chunks_per_job_);
        ++pick->writers;
        return Job{pick, first, pick->next_chunk};
      }
      if (published_ == files_.size()) return std::nullopt;
      changed_.wait(lock);
    }
  }
  // Records a finished range; true when it was the file's last.
  bool done(const Job& job) {
    std::lock_guard lock(mu_);
    --job.file->writers;
    job.file->chunks_done += job.end_chunk - job.first_chunk;
    return job.file->chunks_done == job.file->entry->chunks.size();
  }

 private:
  static bool exhausted(const FileWork& f) { return f.next_chunk == f.entry->chunks.size(); }
  static std::size_t remaining(const FileWork& f) { return f.entry->chunks.size() - f.next_chunk; }

  std::vector<FileWork>& files_;
  const std::size_t chunks_per_job_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::size_t published_ = 0;
  std::size_t first_open_ = 0;
  bool aborted_ = false;
};

// Makes completed files durable off the writers' path: a writer hands over a
// file it has finished (its own descriptor, dup'ed) and goes on decoding the
// next chunks while the pool's threads wait in fdatasync. Writers have
// already started the writeback of every range they wrote
// (sync_file_range), so the disk is busy all along. Several threads, so the
// journal commits of many small files' syncs are shared; a bounded queue, so
// descriptors stay few.
class Syncer {
 public:
  static constexpr int kThreads = 4;
  static constexpr std::size_t kMaxQueued = 256;

  // Blocks while kMaxQueued files wait; throws the first sync failure
  // instead once there was one.
  void add(int fd, std::string path) {
    auto copy = std::make_shared<UniqueFd>(::dup(fd));
    if (copy->get() < 0) throw_errno("restore: duplicating the descriptor of " + path);
    pool_.submit([copy, path = std::move(path)] {
      if (::fdatasync(copy->get()) != 0) throw_errno("restore: syncing " + path);
    });
  }
  // Waits until every handed-over file is durable; rethrows the first failure.
  void finish() { pool_.wait(); }

 private:
  WorkerPool pool_{kThreads, kMaxQueued};
};

// What the writers of the files phase share: where chunks come from, the
// ranges to fill, the syncer, and the counts.
struct FileFill {
  FileFill(repo::ChunkStore& chunk_store, std::uint32_t size, std::vector<FileWork>& work,
           const RestoreOptions& options)
      : chunks(chunk_store),
        chunk_size(size),
        delta(options.delta),
        direct(options.direct_io && !options.delta),
        warm_by_write(options.warm_mode == WarmMode::kWrite),
        queue(work, size) {}

  // Chunk c of e, read through `data` (a view into it or into this thread's
  // frame cache, valid until the next read); nothing when --delta found it
  // already on disk.
  std::optional<ByteView> fetch_chunk(int fd, const FileEntry& e, std::size_t c,
                                      const std::string& path, Bytes& data) {
    const std::uint64_t offset = std::uint64_t{c} * chunk_size;
    const std::size_t length =
        static_cast<std::size_t>(std::min<std::uint64_t>(chunk_size, e.size - offset));
    if (delta) {
      data.resize(length);
      if (pread_some(fd, data.data(), length, offset, path) == length &&
          chunks.chunk_id(data) == e.chunks[c]) {
        ++kept;
        return std::nullopt;
      }
    }
    const auto chunk = chunks.read_view(e.chunks[c], data, repo::ChunkCheck::kRecorded);
    if (!chunk)
      throw Error(ErrorCode::kCorruption, "chunk " + to_hex(e.chunks[c]) + " of " + e.path +
                                              " is in no pack index of the repository");
    if (chunk->size() != length)
      throw Error(ErrorCode::kCorruption,
                  "chunk " + to_hex(e.chunks[c]) + " of " + e.path + " has the wrong length");
    ++written;
    return chunk;
  }

  repo::ChunkStore& chunks;
  const std::uint32_t chunk_size;
  const bool delta;
  // Fresh files are written with direct I/O where the file system takes it:
  // no copy into the page cache, whose pages a restore of a large cluster
  // would otherwise allocate by the gigabyte (evicting the machine's working
  // set), and little left for fdatasync to write. The tail of a file whose
  // size is not a whole block, --delta, and file systems that refuse O_DIRECT
  // go through the page cache.
  std::atomic<bool> direct;
  const bool warm_by_write;
  std::atomic<std::uint64_t> written{0}, kept{0};
  JobQueue queue;
  Syncer syncer;
};

// Starts the writeback of a range just written, so the disk works while the
// next chunks are decoded instead of all at the end. Only a hint: a real
// write failure is what the file's fdatasync reports.
void start_writeback(int fd, const FileEntry& e, const JobQueue::Job& job, std::uint32_t chunk_size,
                     const std::string& path) {
  const std::uint64_t offset = std::uint64_t{job.first_chunk} * chunk_size;
  const std::uint64_t length = std::min<std::uint64_t>(
      e.size - offset, std::uint64_t{job.end_chunk - job.first_chunk} * chunk_size);
  if (::sync_file_range(fd, static_cast<off_t>(offset), static_cast<off_t>(length),
                        SYNC_FILE_RANGE_WRITE) != 0)
    spdlog::debug("restore: starting the writeback of {}: {} (its fdatasync follows)", path,
                  std::strerror(errno));
}

// One writer of the files phase: fills the chunk ranges the queue hands out,
// with its own chunk buffer (warm pages, no allocation per chunk) and its
// own direct-I/O stage, both reused from range to range.
class RangeWriter {
 public:
  explicit RangeWriter(FileFill& fill) : fill_(fill) {
    if (fill_.direct) io_.emplace(fill_.chunk_size);
  }

  // Until every range is handed out.
  void run() {
    while (auto job = fill_.queue.take()) write(*job);
  }

 private:
  void write(const JobQueue::Job& job) {
    const FileWork& file = *job.file;
    const UniqueFd fd = file.root->open_file(file.entry->path, O_RDWR);
    const UniqueFd direct_fd = open_direct(file);
    bool wrote = false;
    try {
      wrote = copy_chunks(job, fd.get(), direct_fd.get());
      if (io_) {
        io_->wait();  // this range is on disk before the file is handed to the syncer
        if (io_->refused()) fill_.direct = false;
      }
    } catch (...) {
      if (io_) io_->settle();  // the write in flight uses the descriptors
      throw;
    }
    if (wrote) start_writeback(fd.get(), *file.entry, job, fill_.chunk_size, file.path);
    // Durable file by file as they complete (not syncfs: that would also
    // wait for unrelated dirty data on the file system).
    if (fill_.queue.done(job)) fill_.syncer.add(fd.get(), file.path);
  }

  // The file opened O_DIRECT for this range, or none (-1): a small file, a
  // range not written directly, or a file system without direct I/O.
  UniqueFd open_direct(const FileWork& file) {
    if (!io_ || !fill_.direct || file.entry->size < kDirectAlign) return {};
    if (auto opened = file.root->open_file_unless(file.entry->path, O_WRONLY | O_DIRECT, EINVAL))
      return std::move(*opened);
    fill_.direct = false;  // this file system has no direct I/O
    return {};
  }

  // Writes the chunks of `job` (aligned runs gathered into direct writes,
  // the rest through `fd`); false when --delta kept every one.
  bool copy_chunks(const JobQueue::Job& job, int fd, int direct_fd) {
    const FileEntry& e = *job.file->entry;
    const std::string& path = job.file->path;
    bool wrote = false;
    std::size_t gathered = 0;  // bytes in io_->buffer()
    std::uint64_t gathered_offset = 0;
    auto flush = [&] {
      if (gathered) io_->submit(direct_fd, fd, gathered, gathered_offset, path);
      gathered = 0;
    };
    for (std::size_t c = job.first_chunk; c < job.end_chunk; ++c) {
      const auto chunk = fill_.fetch_chunk(fd, e, c, path, data_);
      if (!chunk) continue;
      wrote = true;
      const std::uint64_t offset = std::uint64_t{c} * fill_.chunk_size;
      if (direct_fd >= 0 && offset % kDirectAlign == 0 && chunk->size() % kDirectAlign == 0 &&
          !write_hot(*job.file, c)) {
        if (gathered &&
            (gathered_offset + gathered != offset || gathered + chunk->size() > io_->capacity()))
          flush();
        if (!gathered) gathered_offset = offset;
        std::memcpy(io_->buffer() + gathered, chunk->data(), chunk->size());
        gathered += chunk->size();
      } else {
        flush();
        write_buffered(fd, *chunk, offset, write_hot(*job.file, c), path);
      }
    }
    flush();
    return wrote;
  }

  // A chunk through the page cache; a hot one in pieces of
  // kHotWritePiece, so the cache holds it in small folios: the kernel sizes
  // a folio by the write that creates it, and each 8 KiB write PostgreSQL
  // later makes into a large folio walks all of that folio's blocks
  // (ext4_block_write_begin: most of replay's system time in the fpi bench
  // with 4 MiB writes; docs/decisions.md, "PITR: where the seconds go").
  static void write_buffered(int fd, ByteView chunk, std::uint64_t offset, bool hot,
                             const std::string& path) {
    const std::size_t piece = hot ? kHotWritePiece : chunk.size();
    for (std::size_t done = 0; done < chunk.size(); done += piece)
      pwrite_all(fd, chunk.data() + done, std::min(piece, chunk.size() - done), offset + done,
                 "restore: writing " + path);
  }

  // True when chunk c of `file` is one redo will read and the warm-up writes
  // it through the page cache, so it is still cached when PostgreSQL starts.
  bool write_hot(const FileWork& file, std::size_t c) const {
    return fill_.warm_by_write && file.hot &&
           std::binary_search(file.hot->begin(), file.hot->end(), static_cast<std::uint32_t>(c));
  }

  FileFill& fill_;
  Bytes data_;  // one chunk, reused
  std::optional<DirectWriter> io_;
};

// Where each archive of the backup goes: "" (the data directory) or a
// tablespace oid -> directory.
using Roots = std::map<std::string, std::string>;
// Each root opened once; everything below it is written through it.
using RootDirs = std::map<std::string, ContainedDir>;

// lstat of a slot: std::nullopt when nothing is there.
std::optional<struct stat> stat_slot(const ContainedDir::Slot& slot, const std::string& display) {
  struct stat st;
  if (::fstatat(slot.dir.get(), slot.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return st;
  if (errno != ENOENT) throw_errno("restore: inspecting " + display);
  return std::nullopt;
}

void set_mode(int fd, std::uint32_t mode, const std::string& display) {
  if (::fchmod(fd, mode & 07777) != 0) throw_errno("restore: chmod " + display);
}

Roots choose_roots(const BackupRecord& record, const RestoreOptions& options) {
  Roots roots;
  roots[""] = options.pgdata;
  for (const auto& t : record.tablespaces) {
    auto it = options.tablespace_map.find(t.location);
    roots[std::to_string(t.oid)] = it != options.tablespace_map.end() ? it->second : t.location;
  }
  for (const auto& mapping : options.tablespace_map) {
    const std::string& old_location = mapping.first;
    if (std::none_of(record.tablespaces.begin(), record.tablespaces.end(),
                     [&](const TablespaceInfo& t) { return t.location == old_location; }))
      throw Error(ErrorCode::kUsage, "--tablespace-map: backup " + record.label +
                                         " has no tablespace at " + old_location);
  }
  for (const auto& [oid, root] : roots) {
    if (!root.starts_with("/"))
      throw Error(ErrorCode::kUsage, "restore: " + root + " is not an absolute path");
    if (!options.delta && !is_empty_dir(root))
      throw Error(
          ErrorCode::kConflict,
          "restore: " + root + " is not empty; restore into an empty directory or use --delta");
  }
  return roots;
}

// With --delta, a pg_control already there goes first: a half-restored
// directory must not start.
void remove_old_pg_control(const ContainedDir& pgdata) {
  const auto slot = pgdata.slot_if_present(kPgControl);
  if (slot && ::unlinkat(slot->dir.get(), slot->name.c_str(), 0) != 0 && errno != ENOENT)
    throw_path_errno("restore: removing " + pgdata.display(kPgControl), errno);
}

// A directory at rel with `mode`; whatever else is there (a file, a planted
// link) is removed first, never followed.
void make_directory(const ContainedDir& root, const std::string& rel, std::uint32_t mode) {
  const std::string display = root.display(rel);
  if (rel == ".") return set_mode(root.fd(), mode, display);
  const auto slot = root.slot(rel);
  const auto st = stat_slot(slot, display);
  if (st && !S_ISDIR(st->st_mode)) remove_all_at(slot.dir.get(), slot.name, display);
  if ((!st || !S_ISDIR(st->st_mode)) &&
      ::mkdirat(slot.dir.get(), slot.name.c_str(), mode & 07777) != 0)
    throw_errno("restore: creating directory " + display);
  const UniqueFd fd(
      ::openat(slot.dir.get(), slot.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) throw_path_errno("restore: opening directory " + display, errno);
  set_mode(fd.get(), mode, display);
}

// A symlink at rel pointing at `target`, replacing whatever is there; kept
// when it is already that link.
void make_symlink(const ContainedDir& root, const std::string& rel, const std::string& target) {
  const std::string display = root.display(rel);
  const auto slot = root.slot(rel);
  if (const auto st = stat_slot(slot, display)) {
    if (S_ISLNK(st->st_mode)) {
      std::string current(static_cast<std::size_t>(st->st_size) + 1, '\0');
      const ssize_t n =
          ::readlinkat(slot.dir.get(), slot.name.c_str(), current.data(), current.size());
      if (n >= 0 && std::string_view(current.data(), static_cast<std::size_t>(n)) == target) return;
    }
    remove_all_at(slot.dir.get(), slot.name, display);
  }
  if (::symlinkat(target.c_str(), slot.dir.get(), slot.name.c_str()) != 0)
    throw_errno("restore: creating link " + display);
}

// A regular file at rel with `mode` and `size`. With --delta an existing one
// is kept (its chunks are compared later) unless it is not a regular file or
// has other hard links (writing into it would change them too).
UniqueFd make_file(const ContainedDir& root, const std::string& rel, std::uint32_t mode,
                   std::uint64_t size) {
  const std::string display = root.display(rel);
  const auto slot = root.slot(rel);
  if (const auto st = stat_slot(slot, display); st && (!S_ISREG(st->st_mode) || st->st_nlink > 1))
    remove_all_at(slot.dir.get(), slot.name, display);
  UniqueFd fd(::openat(slot.dir.get(), slot.name.c_str(),
                       O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode & 07777));
  if (fd.get() < 0) throw_path_errno("restore: creating " + display, errno);
  set_mode(fd.get(), mode, display);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    throw_errno("restore: sizing " + display);
  return fd;
}

// --delta: removes, below each root, whatever is not in `wanted` (stale WAL
// included); directories are walked without following links. Returns how
// many top-most paths went.
std::uint64_t prune_dir(int dir_fd, const std::string& display, const std::set<std::string>& wanted,
                        const std::string& pg_control_path) {
  const int copy = ::dup(dir_fd);
  if (copy < 0) throw_errno("restore: duplicating the descriptor of " + display);
  DIR* d = ::fdopendir(copy);
  if (!d) {
    const int err = errno;
    ::close(copy);
    throw_errno("restore: reading directory " + display, err);
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (!e) break;
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) throw_errno("restore: reading directory " + display, err);
  std::uint64_t removed = 0;
  for (const auto& name : names) {
    const std::string path = display + "/" + name;
    if (path == pg_control_path) continue;
    if (!wanted.count(path)) {
      remove_all_at(dir_fd, name, path);
      ++removed;
      continue;
    }
    const UniqueFd child(
        ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (child.get() >= 0) {
      removed += prune_dir(child.get(), path, wanted, pg_control_path);
    } else if (errno != ENOTDIR && errno != ELOOP) {
      throw_errno("restore: opening directory " + path);
    }
  }
  return removed;
}

// Modification times as in the backup (directories last: files are done).
void set_mtimes(const RootDirs& dirs, const BackupFiles& files) {
  for (const auto& e : files.entries) {
    if (e.type == EntryType::kSymlink) continue;
    if (e.tablespace.empty() && e.path == kPgControl) continue;
    const ContainedDir& root = dirs.at(e.tablespace);
    const struct timespec times[2] = {{e.mtime, 0}, {e.mtime, 0}};
    int rc;
    if (e.path == ".") {
      rc = ::futimens(root.fd(), times);
    } else {
      const auto slot = root.slot(e.path);
      rc = ::utimensat(slot.dir.get(), slot.name.c_str(), times, AT_SYMLINK_NOFOLLOW);
    }
    if (rc != 0) throw_errno("restore: setting the modification time of " + root.display(e.path));
  }
}

void fsync_fd(int fd, const std::string& display) {
  if (::fsync(fd) != 0) throw_errno("restore: syncing " + display);
}

// Directory entries durable too (files were synced as they completed).
void sync_directories(const RootDirs& dirs, const BackupRecord& record, const BackupFiles& files) {
  for (const auto& [oid, dir] : dirs) fsync_fd(dir.fd(), dir.path());
  for (const auto& e : files.entries) {
    if (e.type != EntryType::kDirectory || e.path == ".") continue;
    const ContainedDir& root = dirs.at(e.tablespace);
    fsync_fd(root.open_dir(e.path).get(), root.display(e.path));
  }
  if (!record.tablespaces.empty()) {
    const ContainedDir& pgdata = dirs.at("");
    fsync_fd(pgdata.open_dir("pg_tblspc").get(), pgdata.display("pg_tblspc"));
  }
}

// Last: pg_control, durable, once everything else is.
void write_pg_control(repo::ChunkStore& chunks, const std::string& path, const FileEntry& entry) {
  Bytes content;
  for (const auto& id : entry.chunks) {
    auto data = chunks.read(id);
    if (!data)
      throw Error(ErrorCode::kCorruption,
                  "chunk " + to_hex(id) + " of global/pg_control is in no pack index");
    content.insert(content.end(), data->begin(), data->end());
  }
  if (content.size() != entry.size)
    throw Error(ErrorCode::kCorruption, "global/pg_control: restored size differs from backup");
  write_file_atomic(path, content, entry.mode & 07777, Overwrite::kYes, Durability::kFsync);
  const struct timespec times[2] = {{entry.mtime, 0}, {entry.mtime, 0}};
  if (::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno("restore: setting the modification time of " + path);
}

// One restore, phase by phase. run() calls the phases in the order that
// keeps a restore stopped at any point from leaving a directory PostgreSQL
// would start: pg_control is written last, once everything else is durable.
class RestoreWriter {
 public:
  RestoreWriter(repo::Repository& repo, const BackupRecord& record, const BackupFiles& files,
                const RestoreOptions& options)
      : repo_(repo), record_(record), files_(files), options_(options) {}

  RestoreStats run() {
    // Every name is checked again, whichever repository the list came from.
    check_file_list(record_, files_);
    open_roots();
    if (options_.delta) remove_old_pg_control(dirs_.at(""));
    create_tree();
    link_tablespaces();
    write_files();
    if (options_.warm_mode == WarmMode::kFadvise) read_ahead_hot();
    set_mtimes(dirs_, files_);
    if (options_.delta) prune();
    write_restore_files();
    sync_directories(dirs_, record_, files_);
    write_pg_control_last();
    return stats_;
  }

 private:
  // Roots: the data directory and each tablespace's location, the user's
  // choice (--pgdata, the plan's locations): refused when not empty unless
  // --delta, created when missing and opened, links on their way allowed.
  void open_roots() {
    roots_ = choose_roots(record_, options_);
    for (const auto& [oid, root] : roots_) {
      make_dirs(root);
      const ContainedDir& dir = dirs_.try_emplace(oid, root).first->second;
      if (oid.empty()) set_mode(dir.fd(), 0700, root);
      wanted_.insert(root);
    }
  }

  // Directories and links of the backup (a tar lists parents before
  // children); every path is remembered for --delta.
  void create_tree() {
    for (const auto& e : files_.entries) {
      const ContainedDir& root = dirs_.at(e.tablespace);
      wanted_.insert(root.display(e.path));
      if (e.type == EntryType::kDirectory) {
        make_directory(root, e.path, e.mode);
      } else if (e.type == EntryType::kSymlink) {
        // pg_tblspc/<oid> of a tablespace in the plan points where the plan
        // restores it; any other link is restored as stored, never followed.
        const bool tablespace_link = e.tablespace.empty() && e.path.starts_with("pg_tblspc/") &&
                                     roots_.count(e.path.substr(10));
        make_symlink(root, e.path, tablespace_link ? roots_.at(e.path.substr(10)) : e.link_target);
      }
    }
  }

  // With a tablespace_map (BASE_BACKUP ... TABLESPACE_MAP), the pg_tblspc
  // links are not in the backup: they are created, to the locations the
  // plan chose.
  void link_tablespaces() {
    const ContainedDir& pgdata = dirs_.at("");
    if (!record_.tablespaces.empty()) {
      struct stat st;
      if (::fstatat(pgdata.fd(), "pg_tblspc", &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISDIR(st.st_mode))
        make_directory(pgdata, "pg_tblspc", 0700);
    }
    for (const auto& t : record_.tablespaces) {
      const std::string rel = "pg_tblspc/" + std::to_string(t.oid);
      wanted_.insert(pgdata.display(rel));
      make_symlink(pgdata, rel, roots_.at(std::to_string(t.oid)));
    }
  }

  // The regular files but pg_control: this thread creates them (or keeps
  // them, with --delta) at their size while `options.parallel` writers fill
  // chunk ranges of those already created, each file made durable as it
  // completes.
  void write_files() {
    std::vector<FileWork> work;
    for (std::size_t i = 0; i < files_.entries.size(); ++i) {
      const FileEntry& e = files_.entries[i];
      if (e.type != EntryType::kFile) continue;
      ++stats_.files;
      stats_.bytes += e.size;
      if (e.tablespace.empty() && e.path == kPgControl) {
        pg_control_ = &e;
        continue;
      }
      const ContainedDir& root = dirs_.at(e.tablespace);
      const auto hot = options_.hot_chunks.find(i);
      work.push_back({&e, &root, root.display(e.path),
                      hot != options_.hot_chunks.end() ? &hot->second : nullptr});
    }
    chunks_.emplace(repo_);
    FileFill fill(*chunks_, record_.chunk_size, work, options_);
    const int writers = std::max(1, options_.parallel);
    {
      WorkerPool pool(writers, static_cast<std::size_t>(writers));
      for (int i = 0; i < writers; ++i) {
        pool.submit([&fill] {
          try {
            RangeWriter(fill).run();
          } catch (...) {
            fill.queue.abort();  // a failure stops the other writers too
            throw;
          }
        });
      }
      try {
        create_files(work, fill, pool);
      } catch (...) {
        fill.queue.abort();  // the writers return; the pool joins them
        throw;
      }
      pool.wait();
    }
    fill.syncer.finish();
    stats_.direct_io = fill.direct;
    stats_.chunks_written = fill.written;
    stats_.chunks_kept = fill.kept;
  }

  // WarmMode::kFadvise: the hot chunks, written and durable, are read back
  // into the page cache by the kernel (asynchronous readahead) while the
  // restore finishes and PostgreSQL starts.
  void read_ahead_hot() {
    const std::uint64_t chunk_size = record_.chunk_size;
    for (const auto& [index, chunks] : options_.hot_chunks) {
      if (index >= files_.entries.size() || chunks.empty()) continue;
      const FileEntry& e = files_.entries[index];
      const UniqueFd fd = dirs_.at(e.tablespace).open_file(e.path, O_RDONLY);
      for (const std::uint32_t c : chunks) {
        // A hint: a failure costs time, not data.
        (void)::posix_fadvise(fd.get(), static_cast<off_t>(c * chunk_size),
                              static_cast<off_t>(chunk_size), POSIX_FADV_WILLNEED);
      }
    }
  }

  // Creates the files one by one and hands each to the writers at once, so
  // creating a thousand files overlaps with writing the first ones. Stops
  // early when a writer failed (it has stopped the queue already).
  static void create_files(std::vector<FileWork>& work, FileFill& fill, const WorkerPool& pool) {
    for (std::size_t i = 0; i < work.size() && !pool.failed(); ++i) {
      const FileEntry& e = *work[i].entry;
      const UniqueFd fd = make_file(*work[i].root, e.path, e.mode, e.size);
      if (e.chunks.empty()) fill.syncer.add(fd.get(), work[i].path);
      fill.queue.publish(i + 1);
    }
  }

  // --delta: whatever is below a root and not in the backup goes (stale WAL
  // included), walked through directory descriptors, links never followed.
  void prune() {
    const std::string pg_control_path = dirs_.at("").display(kPgControl);
    for (const auto& [oid, dir] : dirs_)
      stats_.files_removed += prune_dir(dir.fd(), dir.path(), wanted_, pg_control_path);
  }

  // backup_manifest, and tablespace_map when the backup has one and
  // --tablespace-map moved a tablespace.
  void write_restore_files() {
    if (!files_.backup_manifest.empty()) {
      write_file_atomic(options_.pgdata + "/backup_manifest", as_bytes(files_.backup_manifest),
                        0600, Overwrite::kYes, Durability::kFsync);
    }
    if (!record_.tablespace_map.empty() && !options_.tablespace_map.empty()) {
      std::string map;
      for (const auto& t : record_.tablespaces)
        map += std::to_string(t.oid) + " " + roots_.at(std::to_string(t.oid)) + "\n";
      write_file_atomic(options_.pgdata + "/tablespace_map", as_bytes(map), 0600, Overwrite::kYes,
                        Durability::kFsync);
    }
  }

  // Everything else is durable: the caller's recovery settings, then
  // pg_control.
  void write_pg_control_last() {
    if (options_.before_pg_control) options_.before_pg_control(stats_);
    if (!pg_control_) return;
    write_pg_control(*chunks_, dirs_.at("").display(kPgControl), *pg_control_);
    stats_.chunks_written += pg_control_->chunks.size();
  }

  repo::Repository& repo_;
  const BackupRecord& record_;
  const BackupFiles& files_;
  const RestoreOptions& options_;
  Roots roots_;
  RootDirs dirs_;
  std::set<std::string> wanted_;  // --delta: every path the restore keeps (roots included)
  std::optional<repo::ChunkStore> chunks_;  // opened (indexes loaded) once the tree is there
  const FileEntry* pg_control_ = nullptr;
  RestoreStats stats_;
};

}  // namespace

std::string conf_quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'')
      out += "''";
    else if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else
      out += c;
  }
  return out + "'";
}

RestoreStats restore_files(repo::Repository& repo, const BackupRecord& record,
                           const BackupFiles& files, const RestoreOptions& options) {
  return RestoreWriter(repo, record, files, options).run();
}

void write_recovery_settings(const std::string& pgdata,
                             const std::vector<std::pair<std::string, std::string>>& settings) {
  const std::string conf = pgdata + "/postgresql.auto.conf";
  std::string kept;
  if (auto old = read_file(conf)) {
    std::istringstream in{std::string(as_chars(*old))};
    std::string line;
    while (std::getline(in, line)) {
      std::string key = line.substr(0, line.find_first_of(" \t="));
      if (key == "restore_command" || key.starts_with("recovery_target") ||
          key == "recovery_end_command" || key == "recovery_init_sync_method" ||
          std::any_of(settings.begin(), settings.end(),
                      [&](const auto& s) { return s.first == key; }))
        continue;
      kept += line + "\n";
    }
  }
  kept += "# walvault restore, " + format_time_us(now_unix_us()) + "\n";
  for (const auto& [key, value] : settings) kept += key + " = " + conf_quote(value) + "\n";
  write_file_atomic(conf, as_bytes(kept), 0600, Overwrite::kYes, Durability::kFsync);
  write_file_atomic(pgdata + "/recovery.signal", {}, 0600, Overwrite::kYes, Durability::kFsync);
}

}  // namespace walvault::basebackup
