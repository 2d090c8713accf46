#include "backup/restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "core/error.h"
#include "core/file_util.h"
#include "core/time_util.h"
#include "repo/chunk_store.h"

namespace walvault::backup {

namespace {

constexpr char kPgControl[] = "global/pg_control";
// A job writes this many bytes of one file (whole chunks, at least one).
constexpr std::uint64_t kJobBytes = 16u << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

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

void pwrite_all(int fd, const std::uint8_t* data, std::size_t size, std::uint64_t offset,
                const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("restore: writing " + path);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

// Direct I/O (O_DIRECT) wants the buffer, the file offset and the length
// aligned to the device's logical block; 4 KiB covers the devices we know.
constexpr std::size_t kDirectAlign = 4096;

// A block-aligned buffer for direct writes.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(std::size_t size) {
    void* p = nullptr;
    if (::posix_memalign(&p, kDirectAlign, size) != 0) throw std::bad_alloc();
    data_ = static_cast<std::uint8_t*>(p);
  }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  std::uint8_t* data() { return data_; }

 private:
  std::uint8_t* data_;
};

// Writes as much of `data` as direct I/O takes at `offset` through `fd`
// (opened O_DIRECT) and returns how many bytes that was: all of them, or
// fewer when the file system refused direct I/O for this write (EINVAL) or
// wrote part of it; the caller writes the rest through the page cache.
std::size_t pwrite_direct(int fd, const std::uint8_t* data, std::size_t size, std::uint64_t offset,
                          const std::string& path) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL) break;
      throw_errno("restore: writing " + path);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
    if (done % kDirectAlign != 0) break;
  }
  return done;
}

// The I/O thread of one restore writer: while it writes one batch of
// consecutive chunks with direct I/O, the writer decodes the next batch into
// the other buffer. A direct write is synchronous, so without it the CPU
// and the disk would take turns.
class DirectWriter {
 public:
  // Consecutive chunks gathered into one direct write.
  static constexpr std::size_t kBatchBytes = 4u << 20;

  explicit DirectWriter(std::size_t capacity)
      : capacity_(std::max(capacity, kBatchBytes)),
        buffers_{AlignedBuffer(capacity_), AlignedBuffer(capacity_)},
        thread_([this] { run(); }) {}
  ~DirectWriter() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    thread_.join();
  }
  DirectWriter(const DirectWriter&) = delete;
  DirectWriter& operator=(const DirectWriter&) = delete;

  std::size_t capacity() const { return capacity_; }
  // The buffer to fill next (capacity() bytes, block-aligned).
  std::uint8_t* buffer() { return buffers_[current_].data(); }
  // Writes `size` bytes of buffer() at `offset` once the previous write is
  // done; the caller fills the other buffer meanwhile. `fd` takes what
  // direct I/O refuses. Both descriptors stay open until wait() returns.
  void submit(int direct_fd, int fd, std::size_t size, std::uint64_t offset,
              const std::string& path) {
    wait();
    std::lock_guard lock(mu_);
    pending_ = Write{direct_fd, fd, buffers_[current_].data(), size, offset, &path};
    cv_.notify_all();
    current_ ^= 1;
  }
  // Waits until the submitted write is done; rethrows its failure.
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !pending_; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }
  // Waits, keeping any failure for later (a writer unwinding from its own).
  void settle() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !pending_; });
  }
  // True once a file system refused direct I/O.
  bool refused() const { return refused_; }

 private:
  struct Write {
    int direct_fd, fd;
    const std::uint8_t* data;
    std::size_t size;
    std::uint64_t offset;
    const std::string* path;
  };
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || pending_; });
      if (!pending_) return;
      const Write w = *pending_;
      lock.unlock();
      std::exception_ptr failure;
      try {
        const std::size_t done = pwrite_direct(w.direct_fd, w.data, w.size, w.offset, *w.path);
        if (done < w.size) {
          refused_ = true;
          pwrite_all(w.fd, w.data + done, w.size - done, w.offset + done, *w.path);
        }
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      if (failure && !error_) error_ = failure;
      pending_.reset();
      cv_.notify_all();
    }
  }

  const std::size_t capacity_;
  AlignedBuffer buffers_[2];
  int current_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Write> pending_;
  std::exception_ptr error_;
  std::atomic<bool> refused_{false};
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is built
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

// Removes `path` whatever it is (file, link, directory tree).
void remove_tree(const std::string& path) {
  ::nftw(
      path.c_str(),
      [](const char* p, const struct stat*, int, FTW*) -> int {
        ::remove(p);
        return 0;
      },
      16, FTW_DEPTH | FTW_PHYS);
}

// A file to fill: its chunks are handed out in ranges of about kJobBytes.
struct FileWork {
  const FileEntry* entry;
  std::string path;
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
// one (the decoding still runs in parallel).
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
// next chunks while these threads wait in fdatasync. Writers have already
// started the writeback of every range they wrote (sync_file_range), so the
// disk is busy all along. Several threads, so the journal commits of many
// small files' syncs are shared; a bounded queue, so descriptors stay few.
class Syncer {
 public:
  static constexpr int kThreads = 4;
  static constexpr std::size_t kMaxQueued = 256;

  Syncer() {
    for (int i = 0; i < kThreads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~Syncer() {  // on a writer's failure: stop, and let the writer's error speak
    stop();
    for (auto& item : queue_) ::close(item.fd);
  }
  Syncer(const Syncer&) = delete;
  Syncer& operator=(const Syncer&) = delete;

  void add(int fd, std::string path) {
    const int copy = ::dup(fd);
    if (copy < 0) throw_errno("restore: duplicating the descriptor of " + path);
    std::unique_lock lock(mu_);
    space_.wait(lock, [&] { return queue_.size() < kMaxQueued; });
    queue_.push_back({copy, std::move(path)});
    work_.notify_one();
  }
  // Waits until every handed-over file is durable; rethrows the first failure.
  void finish() {
    stop();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  struct Item {
    int fd;
    std::string path;
  };
  void stop() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
      work_.notify_all();
    }
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  void run() {
    for (;;) {
      Item item;
      {
        std::unique_lock lock(mu_);
        work_.wait(lock, [&] { return done_ || !queue_.empty(); });
        if (queue_.empty()) return;
        item = std::move(queue_.front());
        queue_.pop_front();
        space_.notify_one();
      }
      Fd guard(item.fd);
      if (::fdatasync(item.fd) != 0) {
        const int saved = errno;
        std::lock_guard lock(mu_);
        if (!error_) {
          try {
            throw_errno("restore: syncing " + item.path, saved);
          } catch (...) {
            error_ = std::current_exception();
          }
        }
      }
    }
  }

  std::mutex mu_;
  std::condition_variable work_, space_;
  std::deque<Item> queue_;
  bool done_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("restore: opening " + path);
  Fd guard(fd);
  if (::fsync(fd) != 0) throw_errno("restore: syncing " + path);
}

}  // namespace

std::string conf_quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

RestoreStats restore_files(repo::Repository& repo, const BackupRecord& record,
                           const BackupFiles& files, const RestoreOptions& options) {
  RestoreStats stats;
  // Where each archive goes.
  std::map<std::string, std::string> roots;  // "" or oid -> directory
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
  for (const auto& [oid, root] : roots) {
    make_dirs(root);
    if (oid.empty()) ::chmod(root.c_str(), 0700);
  }
  // A half-restored directory must not start: pg_control goes last.
  const std::string pg_control_path = options.pgdata + "/" + kPgControl;
  if (options.delta && ::unlink(pg_control_path.c_str()) != 0 && errno != ENOENT)
    throw_errno("restore: removing " + pg_control_path);

  auto path_of = [&](const FileEntry& e) {
    const std::string& root = roots.at(e.tablespace);
    return e.path == "." ? root : root + "/" + e.path;
  };
  std::set<std::string> wanted;
  for (const auto& [oid, root] : roots) wanted.insert(root);

  // Directories and links first (the tar lists parents before children).
  const bool has_map = !record.tablespace_map.empty();
  for (const auto& e : files.entries) {
    const std::string path = path_of(e);
    wanted.insert(path);
    struct stat st;
    const bool exists = ::lstat(path.c_str(), &st) == 0;
    if (e.type == EntryType::kDirectory) {
      if (exists && !S_ISDIR(st.st_mode)) remove_tree(path);
      if (::mkdir(path.c_str(), e.mode & 07777) != 0 && errno != EEXIST)
        throw_errno("restore: creating directory " + path);
      ::chmod(path.c_str(), e.mode & 07777);
    } else if (e.type == EntryType::kSymlink) {
      std::string target = e.link_target;
      if (e.tablespace.empty() && e.path.starts_with("pg_tblspc/"))
        target = roots.count(e.path.substr(10)) ? roots.at(e.path.substr(10)) : target;
      if (exists) remove_tree(path);
      if (::symlink(target.c_str(), path.c_str()) != 0)
        throw_errno("restore: creating link " + path);
    }
  }
  // With a tablespace_map (BASE_BACKUP ... TABLESPACE_MAP), the links are not
  // in the backup: create them, and rewrite the map when locations change so
  // PostgreSQL does not recreate the old links from it.
  for (const auto& t : record.tablespaces) {
    const std::string link = options.pgdata + "/pg_tblspc/" + std::to_string(t.oid);
    const std::string& target = roots.at(std::to_string(t.oid));
    wanted.insert(link);
    struct stat st;
    if (::lstat(link.c_str(), &st) == 0) {
      char buf[4096];
      const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
      if (n >= 0 && std::string(buf, static_cast<std::size_t>(n)) == target) continue;
      remove_tree(link);
    }
    make_dirs(options.pgdata + "/pg_tblspc");
    if (::symlink(target.c_str(), link.c_str()) != 0) throw_errno("restore: creating link " + link);
  }

  // Regular files: created (or kept, with --delta) at their size by this
  // thread while the workers fill chunk ranges of those already created.
  std::vector<FileWork> work;
  const FileEntry* pg_control = nullptr;
  for (const auto& e : files.entries) {
    if (e.type != EntryType::kFile) continue;
    ++stats.files;
    stats.bytes += e.size;
    if (e.tablespace.empty() && e.path == kPgControl) {
      pg_control = &e;
      continue;
    }
    work.push_back({&e, path_of(e)});
  }

  repo::ChunkStore chunks(repo);
  const std::uint32_t chunk_size = record.chunk_size;
  std::atomic<std::uint64_t> written{0}, kept{0};
  std::mutex error_mu;
  std::exception_ptr error;
  JobQueue queue(work, chunk_size);
  auto fail = [&](std::exception_ptr e) {
    {
      std::lock_guard lock(error_mu);
      if (!error) error = std::move(e);
    }
    queue.abort();
  };
  // Fresh files are written with direct I/O where the file system takes it:
  // no copy into the page cache, whose pages a restore of a large cluster
  // would otherwise allocate by the gigabyte (evicting the machine's working
  // set), and little left for fdatasync to write. The tail of a file whose
  // size is not a whole block, --delta, and file systems that refuse O_DIRECT
  // go through the page cache.
  std::atomic<bool> direct{options.direct_io && !options.delta};
  // Chunk c of e, read through `data` (a view into it or into this thread's
  // frame cache, valid until the next read); nothing when --delta found it
  // already on disk.
  auto fetch_chunk = [&](int fd, const FileEntry& e, std::size_t c, const std::string& path,
                         Bytes& data) -> std::optional<ByteView> {
    const std::uint64_t offset = std::uint64_t{c} * chunk_size;
    const std::size_t length =
        static_cast<std::size_t>(std::min<std::uint64_t>(chunk_size, e.size - offset));
    if (options.delta) {
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
  };
  Syncer syncer;
  auto worker = [&] {
    Bytes data;  // one chunk, reused: warm pages, no allocation per chunk
    std::optional<DirectWriter> io;
    if (direct) io.emplace(chunk_size);
    try {
      while (auto job = queue.take()) {
        const FileEntry& e = *job->file->entry;
        const std::string& path = job->file->path;
        const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) throw_errno("restore: opening " + path);
        Fd guard(fd);
        int direct_fd = -1;
        if (io && direct && e.size >= kDirectAlign) {
          direct_fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_DIRECT);
          if (direct_fd < 0) {
            if (errno != EINVAL) throw_errno("restore: opening " + path);
            direct = false;  // this file system has no direct I/O
          }
        }
        Fd direct_guard(direct_fd);
        // Declared after the descriptors, so it runs before they close.
        struct Settle {
          std::optional<DirectWriter>& io;
          ~Settle() {
            if (io) io->settle();
          }
        } settle{io};
        bool wrote = false;
        std::size_t fill = 0;  // bytes gathered in io->buffer()
        std::uint64_t fill_offset = 0;
        auto flush = [&] {
          if (fill) io->submit(direct_fd, fd, fill, fill_offset, path);
          fill = 0;
        };
        for (std::size_t c = job->first_chunk; c < job->end_chunk; ++c) {
          const auto chunk = fetch_chunk(fd, e, c, path, data);
          if (!chunk) continue;
          wrote = true;
          const std::uint64_t offset = std::uint64_t{c} * chunk_size;
          if (direct_fd >= 0 && offset % kDirectAlign == 0 && chunk->size() % kDirectAlign == 0) {
            if (fill && (fill_offset + fill != offset || fill + chunk->size() > io->capacity()))
              flush();
            if (!fill) fill_offset = offset;
            std::memcpy(io->buffer() + fill, chunk->data(), chunk->size());
            fill += chunk->size();
          } else {
            flush();
            pwrite_all(fd, chunk->data(), chunk->size(), offset, path);
          }
        }
        flush();
        if (io) {
          io->wait();  // this range is on disk before the file is handed to the syncer
          if (io->refused()) direct = false;
        }
        // Start the writeback of this range now, so the disk works while
        // the next chunks are decoded instead of all at the end.
        if (wrote) {
          const std::uint64_t offset = std::uint64_t{job->first_chunk} * chunk_size;
          ::sync_file_range(
              fd, static_cast<off_t>(offset),
              static_cast<off_t>(std::min<std::uint64_t>(
                  e.size - offset, std::uint64_t{job->end_chunk - job->first_chunk} * chunk_size)),
              SYNC_FILE_RANGE_WRITE);
        }
        // Durable file by file as they complete (not syncfs: that would
        // also wait for unrelated dirty data on the file system).
        if (queue.done(*job)) syncer.add(fd, path);
      }
    } catch (...) {
      fail(std::current_exception());
    }
  };
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < std::max(1, options.parallel); ++i) threads.emplace_back(worker);
    try {
      for (std::size_t i = 0; i < work.size(); ++i) {
        const FileEntry& e = *work[i].entry;
        const std::string& path = work[i].path;
        struct stat st;
        if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) remove_tree(path);
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, e.mode & 07777);
        if (fd < 0) throw_errno("restore: creating " + path);
        Fd guard(fd);
        if (::fchmod(fd, e.mode & 07777) != 0) throw_errno("restore: chmod " + path);
        if (::ftruncate(fd, static_cast<off_t>(e.size)) != 0)
          throw_errno("restore: sizing " + path);
        if (e.chunks.empty()) syncer.add(fd, path);
        queue.publish(i + 1);
      }
    } catch (...) {
      fail(std::current_exception());
    }
    for (auto& t : threads) t.join();
  }
  if (error) std::rethrow_exception(error);
  syncer.finish();
  stats.direct_io = direct;
  stats.chunks_written = written;
  stats.chunks_kept = kept;

  // Modification times as in the backup (directories last, files are done).
  for (const auto& e : files.entries) {
    if (e.type == EntryType::kSymlink) continue;
    if (e.tablespace.empty() && e.path == kPgControl) continue;
    struct timespec times[2] = {{e.mtime, 0}, {e.mtime, 0}};
    ::utimensat(AT_FDCWD, path_of(e).c_str(), times, AT_SYMLINK_NOFOLLOW);
  }

  // With --delta: remove what the backup does not have (stale WAL included).
  if (options.delta) {
    static thread_local std::set<std::string>* keep = nullptr;
    static thread_local std::vector<std::string>* doomed = nullptr;
    std::vector<std::string> remove;
    keep = &wanted;
    doomed = &remove;
    for (const auto& [oid, root] : roots) {
      ::nftw(
          root.c_str(),
          [](const char* p, const struct stat*, int, FTW*) -> int {
            if (!keep->count(p)) doomed->push_back(p);
            return 0;
          },
          16, FTW_PHYS);
    }
    std::sort(remove.begin(), remove.end());
    std::string last_removed;
    for (const auto& p : remove) {
      if (!last_removed.empty() && p.starts_with(last_removed + "/")) continue;
      if (p == pg_control_path) continue;
      remove_tree(p);
      last_removed = p;
      ++stats.files_removed;
    }
  }
  if (!files.backup_manifest.empty()) {
    write_file_atomic(options.pgdata + "/backup_manifest", as_bytes(files.backup_manifest), 0600,
                      Overwrite::kYes, Durability::kFsync);
  }
  if (has_map && !options.tablespace_map.empty()) {
    std::string map;
    for (const auto& t : record.tablespaces)
      map += std::to_string(t.oid) + " " + roots.at(std::to_string(t.oid)) + "\n";
    write_file_atomic(options.pgdata + "/tablespace_map", as_bytes(map), 0600, Overwrite::kYes,
                      Durability::kFsync);
  }
  // Directory entries durable too (files were synced as they completed).
  for (const auto& [oid, root] : roots) fsync_path(root);
  for (const auto& e : files.entries)
    if (e.type == EntryType::kDirectory && e.path != ".") fsync_path(path_of(e));
  if (!record.tablespaces.empty()) fsync_path(options.pgdata + "/pg_tblspc");

  if (options.before_pg_control) options.before_pg_control(stats);
  // Last: pg_control, durable.
  if (pg_control) {
    Bytes content;
    for (const auto& id : pg_control->chunks) {
      auto data = chunks.read(id);
      if (!data)
        throw Error(ErrorCode::kCorruption,
                    "chunk " + to_hex(id) + " of global/pg_control is in no pack index");
      content.insert(content.end(), data->begin(), data->end());
    }
    if (content.size() != pg_control->size)
      throw Error(ErrorCode::kCorruption, "global/pg_control: restored size differs from backup");
    write_file_atomic(pg_control_path, content, pg_control->mode & 07777, Overwrite::kYes,
                      Durability::kFsync);
    struct timespec times[2] = {{pg_control->mtime, 0}, {pg_control->mtime, 0}};
    ::utimensat(AT_FDCWD, pg_control_path.c_str(), times, 0);
    stats.chunks_written += pg_control->chunks.size();
  }
  return stats;
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

}  // namespace walvault::backup
