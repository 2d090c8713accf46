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
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "core/contained_dir.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/time_util.h"
#include "repo/chunk_store.h"

namespace walvault::basebackup {

namespace {

constexpr char kPgControl[] = "global/pg_control";
// A job writes this many bytes of one file (whole chunks, at least one).
constexpr std::uint64_t kJobBytes = 16u << 20;

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

// A file to fill: its chunks are handed out in ranges of about kJobBytes.
struct FileWork {
  const FileEntry* entry;
  const ContainedDir* root;     // the archive's root; entry->path is below it
  std::string path;             // root + "/" + entry->path, for messages
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
      UniqueFd guard(item.fd);
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

// The roots are the user's choice (--pgdata, the plan's tablespace
// locations): created when missing and opened, links on their way allowed.
RootDirs open_roots(const Roots& roots) {
  RootDirs dirs;
  for (const auto& [oid, root] : roots) {
    make_dirs(root);
    const ContainedDir& dir = dirs.try_emplace(oid, root).first->second;
    if (oid.empty()) set_mode(dir.fd(), 0700, root);
  }
  return dirs;
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

// Directories and links of the backup (a tar lists parents before children),
// then the pg_tblspc links to the locations the plan chose. Returns every
// path the restore keeps with --delta (roots included).
std::set<std::string> create_tree(const Roots& roots, const RootDirs& dirs,
                                  const BackupRecord& record, const BackupFiles& files) {
  std::set<std::string> wanted;
  for (const auto& [oid, root] : roots) wanted.insert(root);
  for (const auto& e : files.entries) {
    const ContainedDir& root = dirs.at(e.tablespace);
    wanted.insert(root.display(e.path));
    if (e.type == EntryType::kDirectory) {
      make_directory(root, e.path, e.mode);
    } else if (e.type == EntryType::kSymlink) {
      // pg_tblspc/<oid> of a tablespace in the plan points where the plan
      // restores it; any other link is restored as stored, never followed.
      const bool tablespace_link = e.tablespace.empty() && e.path.starts_with("pg_tblspc/") &&
                                   roots.count(e.path.substr(10));
      make_symlink(root, e.path, tablespace_link ? roots.at(e.path.substr(10)) : e.link_target);
    }
  }
  // With a tablespace_map (BASE_BACKUP ... TABLESPACE_MAP), the links are not
  // in the backup: create them.
  const ContainedDir& pgdata = dirs.at("");
  if (!record.tablespaces.empty()) {
    struct stat st;
    if (::fstatat(pgdata.fd(), "pg_tblspc", &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
      make_directory(pgdata, "pg_tblspc", 0700);
  }
  for (const auto& t : record.tablespaces) {
    const std::string rel = "pg_tblspc/" + std::to_string(t.oid);
    wanted.insert(pgdata.display(rel));
    make_symlink(pgdata, rel, roots.at(std::to_string(t.oid)));
  }
  return wanted;
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

// The regular files but pg_control: this thread creates them (or keeps them,
// with --delta) at their size while `options.parallel` workers fill chunk
// ranges of those already created, each file made durable as it completes.
void write_files(repo::ChunkStore& chunks, std::uint32_t chunk_size, std::vector<FileWork>& work,
                 const RestoreOptions& options, RestoreStats& stats) {
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
        const ContainedDir& root = *job->file->root;
        const UniqueFd guard = root.open_file(e.path, O_RDWR);
        const int fd = guard.get();
        UniqueFd direct_guard;
        if (io && direct && e.size >= kDirectAlign) {
          if (auto opened = root.open_file_unless(e.path, O_WRONLY | O_DIRECT, EINVAL))
            direct_guard = std::move(*opened);
          else
            direct = false;  // this file system has no direct I/O
        }
        const int direct_fd = direct_guard.get();
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
        const UniqueFd fd = make_file(*work[i].root, e.path, e.mode, e.size);
        if (e.chunks.empty()) syncer.add(fd.get(), work[i].path);
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
  // Every name is checked again, whichever repository the list came from.
  check_file_list(record, files);
  const Roots roots = choose_roots(record, options);
  const RootDirs dirs = open_roots(roots);
  const ContainedDir& pgdata = dirs.at("");
  const std::string pg_control_path = pgdata.display(kPgControl);
  if (options.delta) remove_old_pg_control(pgdata);
  const std::set<std::string> wanted = create_tree(roots, dirs, record, files);
  const bool has_map = !record.tablespace_map.empty();

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
    const ContainedDir& root = dirs.at(e.tablespace);
    work.push_back({&e, &root, root.display(e.path)});
  }
  repo::ChunkStore chunks(repo);
  write_files(chunks, record.chunk_size, work, options, stats);

  set_mtimes(dirs, files);
  if (options.delta) {
    for (const auto& [oid, dir] : dirs)
      stats.files_removed += prune_dir(dir.fd(), dir.path(), wanted, pg_control_path);
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
  sync_directories(dirs, record, files);

  if (options.before_pg_control) options.before_pg_control(stats);
  if (pg_control) {
    write_pg_control(chunks, pg_control_path, *pg_control);
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

}  // namespace walvault::basebackup
