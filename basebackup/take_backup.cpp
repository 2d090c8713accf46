#include "basebackup/take_backup.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/buffer_pool.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/relative_path.h"
#include "core/time_util.h"
#include "pg/tar_reader.h"
#include "repo/chunk_store.h"
#include "repo/cluster.h"
#include "repo/wal_objects.h"

namespace walvault::basebackup {

std::string stop_segment_name(pg::Lsn stop_lsn, pg::TimeLineId tli, std::uint32_t segment_size) {
  return pg::segment_file_name(tli, (stop_lsn - 1) / segment_size, segment_size);
}

bool await_archived(repo::Repository& repo, const std::string& segment,
                    std::chrono::steady_clock::time_point deadline) {
  // The segment usually arrives tens of milliseconds after the switch (one
  // archive_command run): polling every 10 ms for the first second keeps
  // that wait short; then every 50 ms.
  const auto brisk_until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!repo::read_meta(repo, segment)) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(now < brisk_until ? 10 : 50));
  }
  return true;
}

namespace {

// One line on stderr, rewritten in place, at most once a second.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), start_us_(now_unix_us()) {}
  void set_total(std::uint64_t total) { total_ = total; }
  void update(std::uint64_t done, bool final = false) {
    if (!enabled_) return;
    const std::int64_t now = now_unix_us();
    if (!final && now - last_us_ < 1000000) return;
    last_us_ = now;
    const double secs = std::max(1e-3, (now - start_us_) / 1e6);
    const double rate = done / secs;
    char line[160];
    if (total_ > done && rate > 0) {
      std::snprintf(line, sizeof line, "\rbackup: %.1f / %.1f MiB  %.0f MiB/s  ETA %.0f s   ",
                    done / 1048576.0, total_ / 1048576.0, rate / 1048576.0, (total_ - done) / rate);
    } else {
      std::snprintf(line, sizeof line, "\rbackup: %.1f MiB  %.0f MiB/s   ", done / 1048576.0,
                    rate / 1048576.0);
    }
    std::fputs(line, stderr);
    if (final) std::fputs("\n", stderr);
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  std::int64_t start_us_, last_us_ = 0;
  std::uint64_t total_ = 0;
};

// Per repository: its chunk store and its copy of the file list (chunk ids
// differ between repositories when they are encrypted with different keys).
struct Target {
  repo::Repository* repo;
  std::unique_ptr<repo::ChunkStore> chunks;
  std::deque<FileEntry> entries;  // deque: references stay valid while workers fill chunk ids
};

// Collects one backup from either source: splits files into chunks, hands
// them to the pool, remembers backup_label / tablespace_map / the manifest.
class Collector : public pg::BackupSink {
 public:
  Collector(const std::vector<repo::Repository*>& repos, const BackupOptions& options)
      : progress_(options.progress),
        chunk_size_(repos.front()->config().chunk_size),
        buffers_(group_bytes(chunk_size_), group_buffers(options.parallel)),
        pool_(std::max(1, options.parallel), buffers_.count()) {
    for (auto* r : repos) {
      if (r->config().chunk_size != chunk_size_)
        throw Error(ErrorCode::kUsage,
                    "the repositories use different chunk sizes; back up to each separately");
      targets_.push_back({r, std::make_unique<repo::ChunkStore>(*r, pack_options()), {}});
    }
  }

  void on_start(pg::Lsn start_lsn, pg::TimeLineId timeline,
                const std::vector<pg::Tablespace>& tablespaces) override {
    start_lsn_ = start_lsn;
    start_timeline_ = timeline;
    std::uint64_t total = 0;
    for (const auto& t : tablespaces) {
      if (t.size_kb) total += static_cast<std::uint64_t>(*t.size_kb) * 1024;
      if (!t.is_main()) tablespaces_.push_back({*t.oid, t.path});
    }
    progress_.set_total(total);
  }
  void on_archive_begin(const std::string&, const pg::Tablespace& tablespace) override {
    tablespace_ = tablespace.is_main() ? std::string() : std::to_string(*tablespace.oid);
  }
  void on_tar_entry_begin(const pg::TarEntry& entry) override {
    FileEntry e;
    e.tablespace = tablespace_;
    e.path = entry.path;
    e.mode = entry.mode;
    e.mtime = entry.mtime;
    switch (entry.type) {
      case pg::TarEntryType::kFile:
        e.type = EntryType::kFile;
        e.size = entry.size;
        break;
      case pg::TarEntryType::kDirectory:
        e.type = EntryType::kDirectory;
        break;
      case pg::TarEntryType::kSymlink:
        e.type = EntryType::kSymlink;
        e.link_target = entry.link_target;
        break;
      case pg::TarEntryType::kHardlink:
        // PostgreSQL never sends one; restore would have to resolve it
        // (docs/decisions.md, "What restore trusts").
        throw Error(ErrorCode::kInvalidInput, "backup stream: entry " + printable_name(entry.path) +
                                                  " is a hard link, which is not supported");
      default:  // FIFOs and devices: the reader refuses them unless asked (it is not here)
        throw Error(ErrorCode::kInvalidInput, "backup stream: entry " + printable_name(entry.path) +
                                                  " is a special file, which is not supported");
    }
    names_.add(e);  // before any of it is kept
    if (e.type == EntryType::kFile) e.chunks.resize((e.size + chunk_size_ - 1) / chunk_size_);
    for (auto& t : targets_) t.entries.push_back(e);
    in_file_ = e.type == EntryType::kFile;
    chunk_index_ = 0;
    keep_text_ =
        tablespace_.empty() && (entry.path == "backup_label" || entry.path == "tablespace_map" ||
                                entry.path == "backup_manifest" || entry.path == "PG_VERSION" ||
                                entry.path == "global/pg_control");
    text_.clear();
    path_ = entry.path;
    logical_bytes_ += e.size;
    read_bytes_ += e.size;
    ++file_count_;
  }
  void on_tar_entry_data(ByteView data) override {
    if (keep_text_) text_.append(as_chars(data));
    if (!in_file_) return;  // only regular files have content
    while (!data.empty()) {
      if (!group_.buffer) group_.buffer = buffers_.acquire();  // waits for a free one
      const std::size_t take =
          std::min<std::size_t>(chunk_size_ - (group_.used - chunk_start_), data.size());
      std::memcpy(group_.buffer.data() + group_.used, data.data(), take);
      group_.used += take;
      data = data.subspan(take);
      if (group_.used - chunk_start_ == chunk_size_) end_chunk();
    }
  }
  void on_tar_entry_end() override {
    if (in_file_ && group_.used > chunk_start_) end_chunk();
    submit_group();
    if (keep_text_) {
      if (path_ == "backup_label") backup_label_ = text_;
      if (path_ == "tablespace_map") tablespace_map_ = text_;
      if (path_ == "backup_manifest") manifest_ = text_;  // injected by pg_basebackup -D -
      if (path_ == "PG_VERSION") pg_version_ = text_;
      if (path_ == "global/pg_control") pg_control_ = text_;
    }
    in_file_ = false;
  }
  void on_archive_end() override {}
  // A regular file whose bytes `read` supplies on the workers, a group of
  // chunks at a time (a local backup reads the data directory itself,
  // basebackup/local_backup.h). Listed now, as on_tar_entry_begin lists it.
  void on_file_read_by_workers(const pg::TarEntry& entry, const BackupPipeline::RangeReader& read) {
    on_tar_entry_begin(entry);
    in_file_ = false;
    const std::size_t count = targets_.front().entries.back().chunks.size();
    submit_reads(entry, read, 0, count);
    chunk_index_ = count;
    chunk_refs_ += count;
  }
  // As on_file_read_by_workers, reading only `read_chunks` and taking the
  // other chunks' ids over from `previous` (BackupPipeline::add_file_reusing).
  std::uint64_t on_file_reusing(const pg::TarEntry& entry, const BackupPipeline::RangeReader& read,
                                const std::vector<std::uint32_t>& read_chunks,
                                const std::vector<const FileEntry*>& previous) {
    if (previous.size() != targets_.size())
      throw Error(ErrorCode::kInvalidInput, "backup: a previous entry per repository is needed");
    on_tar_entry_begin(entry);
    in_file_ = false;
    const std::size_t count = targets_.front().entries.back().chunks.size();
    std::vector<bool> must_read(count, false);
    for (const std::uint32_t c : read_chunks)
      if (c < count) must_read[c] = true;
    for (std::size_t c = 0; c < count; ++c) {
      for (std::size_t t = 0; t < targets_.size() && !must_read[c]; ++t)
        if (c >= previous[t]->chunks.size() ||
            !targets_[t].chunks->contains(previous[t]->chunks[c]))
          must_read[c] = true;
      if (must_read[c]) continue;
      for (std::size_t t = 0; t < targets_.size(); ++t)
        targets_[t].entries.back().chunks[c] = previous[t]->chunks[c];
    }
    std::uint64_t bytes = 0;
    for (std::size_t first = 0; first < count;) {
      if (!must_read[first]) {
        ++first;
        continue;
      }
      std::size_t end = first;
      while (end < count && must_read[end]) ++end;
      bytes += submit_reads(entry, read, first, end);
      first = end;
    }
    read_bytes_ -= entry.size;  // on_tar_entry_begin counted the whole file
    read_bytes_ += bytes;
    chunk_index_ = count;
    chunk_refs_ += count;
    return bytes;
  }
  std::uint64_t read_bytes() const { return read_bytes_; }
  // Returns once every read handed to the workers (submit_reads) is done or
  // will not be (a failure: finish() rethrows it); the compression of what
  // they read may still run. Never waits on a dead read: the pool destroys a
  // task once it ran or threw, and drops the queued ones after a failure.
  void wait_for_reads() {
    std::unique_lock lock(reads_mu_);
    reads_done_.wait(lock, [&] { return reads_pending_ == 0; });
  }
  void on_manifest_data(ByteView data) override { manifest_.append(as_chars(data)); }
  void on_progress(std::uint64_t bytes_done) override { progress_.update(bytes_done); }
  void on_end(pg::Lsn, pg::TimeLineId) override {}

  // Waits for every chunk and writes each repository's pending pack.
  void finish() {
    submit_group();
    pool_.wait();
    for (auto& t : targets_) t.chunks->flush();
    progress_.update(logical_bytes_, true);
  }

  std::vector<Target>& targets() { return targets_; }
  std::uint32_t chunk_size() const { return chunk_size_; }
  const std::string& backup_label() const { return backup_label_; }
  const std::string& tablespace_map() const { return tablespace_map_; }
  const std::string& manifest() const { return manifest_; }
  const std::string& pg_version() const { return pg_version_; }
  const std::string& pg_control() const { return pg_control_; }
  const std::vector<TablespaceInfo>& tablespaces() const { return tablespaces_; }
  std::uint64_t logical_bytes() const { return logical_bytes_; }
  std::uint64_t file_count() const { return file_count_; }
  std::uint64_t chunk_refs() const { return chunk_refs_; }
  std::uint64_t new_chunks(std::size_t target) const { return new_chunks_[target]; }
  std::uint64_t stored_bytes(std::size_t target) const { return stored_bytes_[target]; }
  pg::Lsn start_lsn() const { return start_lsn_; }
  pg::TimeLineId start_timeline() const { return start_timeline_; }

 private:
  // Consecutive chunks of a file go to the workers in groups of up to
  // kFrameBytes (rounded up to whole chunks), each group in one buffer of
  // buffers_, back to back, so the new ones among them are compressed as one
  // zstd frame where they lie (ChunkStore::add_group); dedup stays per chunk.
  struct Piece {
    std::size_t offset = 0, length = 0;  // in the group's buffer
    std::vector<repo::ChunkId*> slots;   // per target: where the chunk's id goes
  };
  struct Group {
    BufferPool::Buffer buffer;
    std::size_t used = 0;
    std::vector<Piece> pieces;
  };

  static std::size_t group_bytes(std::uint32_t chunk_size) {
    const std::uint64_t chunks = (kGroupBytes + chunk_size - 1) / chunk_size;
    return static_cast<std::size_t>(chunks * chunk_size);
  }
  // The budget: a group sealing on every worker, as many waiting in the pool's
  // queue, and the one the stream fills.
  static std::size_t group_buffers(int parallel) {
    return 2 * static_cast<std::size_t>(std::max(1, parallel)) + 1;
  }
  // Per repository one pack filling while the one before is written: the
  // writer (a direct write and fsync of 32 MiB, or an upload) is not slower
  // than the workers filling the next, so a deeper queue buys no speed, only
  // memory (docs/decisions.md, "A backup's memory budget").
  static repo::ChunkStore::Options pack_options() {
    repo::ChunkStore::Options o;
    o.max_unwritten_packs = 1;
    return o;
  }

  void end_chunk() {
    Piece piece{chunk_start_, group_.used - chunk_start_, {}};
    for (auto& t : targets_) piece.slots.push_back(&t.entries.back().chunks[chunk_index_]);
    group_.pieces.push_back(std::move(piece));
    ++chunk_index_;
    ++chunk_refs_;
    chunk_start_ = group_.used;
    if (group_.used == buffers_.buffer_bytes()) submit_group();
  }
  // Hands the group to the workers; its buffer goes back to buffers_ when the
  // task is done (or dropped after a failure).
  void submit_group() {
    if (group_.pieces.empty()) return;  // a buffer without chunks stays for the next file
    auto group = std::make_shared<Group>(std::move(group_));
    group_ = Group();
    chunk_start_ = 0;
    pool_.submit([this, group] {
      std::vector<ByteView> views;
      std::vector<std::vector<repo::ChunkId*>> slots;
      for (const auto& piece : group->pieces) {
        views.emplace_back(group->buffer.data() + piece.offset, piece.length);
        slots.push_back(piece.slots);
      }
      store_views(views, slots);
    });
  }
  // On a worker: the chunks into every repository's store, their ids into
  // the slots (per chunk, per target).
  void store_views(const std::vector<ByteView>& views,
                   const std::vector<std::vector<repo::ChunkId*>>& slots) {
    for (std::size_t i = 0; i < targets_.size(); ++i) {
      const auto results = targets_[i].chunks->add_group(views);
      for (std::size_t c = 0; c < results.size(); ++c) {
        *slots[c][i] = results[c].id;
        if (results[c].stored) new_chunks_[i] += 1;
        stored_bytes_[i] += results[c].stored_bytes;
      }
    }
  }

  // Hands chunks [first, end) of the current file to the workers, a group
  // at a time, read by `read`; returns their bytes.
  std::uint64_t submit_reads(const pg::TarEntry& entry, const BackupPipeline::RangeReader& read,
                             std::size_t first, std::size_t end) {
    const std::size_t per_group = std::max<std::size_t>(1, kGroupBytes / chunk_size_);
    std::uint64_t bytes = 0;
    for (; first < end; first += per_group) {
      const std::size_t n = std::min(per_group, end - first);
      std::vector<std::vector<repo::ChunkId*>> slots(n);
      for (std::size_t c = 0; c < n; ++c)
        for (auto& t : targets_) slots[c].push_back(&t.entries.back().chunks[first + c]);
      const std::uint64_t offset = std::uint64_t{first} * chunk_size_;
      const auto length = static_cast<std::size_t>(
          std::min<std::uint64_t>(std::uint64_t{n} * chunk_size_, entry.size - offset));
      bytes += length;
      auto pending = std::make_shared<PendingRead>(*this);
      pool_.submit([this, read, offset, length, pending, slots = std::move(slots)] {
        // One group buffer per worker, kept: a fresh one per group cost a
        // zero-fill of every byte read (resize) and, for glibc's large
        // blocks, fresh pages from the kernel.
        thread_local Bytes data;
        read(offset, length, data);
        pending->done();
        std::vector<ByteView> views;
        for (std::size_t at = 0; at < data.size(); at += chunk_size_)
          views.emplace_back(
              ByteView(data).subspan(at, std::min<std::size_t>(chunk_size_, data.size() - at)));
        store_views(views, slots);
      });
    }
    return bytes;
  }

  // A read handed to the workers, counted from submit_reads until it is
  // done, or until its task is gone without doing it (the read failed, or
  // the pool had failed and never ran it).
  class PendingRead {
   public:
    explicit PendingRead(Collector& c) : c_(c) {
      std::lock_guard lock(c_.reads_mu_);
      ++c_.reads_pending_;
    }
    ~PendingRead() { done(); }
    PendingRead(const PendingRead&) = delete;
    PendingRead& operator=(const PendingRead&) = delete;
    void done() {
      if (std::exchange(finished_, true)) return;
      std::lock_guard lock(c_.reads_mu_);
      --c_.reads_pending_;
      c_.reads_done_.notify_all();
    }

   private:
    Collector& c_;
    bool finished_ = false;
  };

  static constexpr std::uint64_t kGroupBytes = repo::kFrameBytes;

  Progress progress_;
  EntryNameCheck names_{ErrorCode::kInvalidInput, "backup stream"};
  std::vector<Target> targets_;
  std::uint32_t chunk_size_ = 0;
  std::string tablespace_;
  bool in_file_ = false, keep_text_ = false;
  std::size_t chunk_index_ = 0;
  // The group buffers: the stream blocks in acquire() while every one is
  // filled or in the workers' hands, so what the backup holds between the
  // server and the chunk stores is at most count x group_bytes. Declared
  // before every holder of a buffer (group_, pool_'s tasks).
  BufferPool buffers_;
  Group group_;
  std::size_t chunk_start_ = 0;  // of the chunk being filled, in group_'s buffer
  std::string path_, text_, backup_label_, tablespace_map_, manifest_, pg_version_, pg_control_;
  std::vector<TablespaceInfo> tablespaces_;
  std::uint64_t logical_bytes_ = 0, file_count_ = 0, chunk_refs_ = 0, read_bytes_ = 0;
  std::array<std::atomic<std::uint64_t>, 16> new_chunks_{}, stored_bytes_{};
  // Reads queued or running in the workers (submit_reads).
  std::mutex reads_mu_;
  std::condition_variable reads_done_;
  std::size_t reads_pending_ = 0;
  pg::Lsn start_lsn_ = 0;
  pg::TimeLineId start_timeline_ = 0;
  // The chunk jobs, between the stream and the chunk stores; its queue holds
  // every group buffers_ can give out, so it is buffers_ that blocks the
  // stream. Last: destroyed (its threads joined) before what its jobs use.
  WorkerPool pool_;
};

// The value of "KEY: value" in backup_label text.
std::optional<std::string> label_field(const std::string& text, const std::string& key) {
  const std::string prefix = key + ": ";
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    if (line.starts_with(prefix)) return std::string(line.substr(prefix.size()));
    pos = nl + 1;
  }
  return std::nullopt;
}

// "0/2000028 (file 000000010000000000000002)" -> the LSN.
std::optional<pg::Lsn> leading_lsn(const std::string& value) {
  return pg::parse_lsn(value.substr(0, value.find(' ')));
}

void check_cluster(repo::Repository& repo, std::uint64_t system_id, std::uint32_t segment_size,
                   int pg_major) {
  repo::ClusterInfo seen;
  seen.system_id = system_id;
  seen.segment_size = segment_size;
  seen.page_size = 8192;
  seen.pg_major = pg_major;
  seen.bound_us = now_unix_us();
  repo::bind_cluster(repo, seen, "backup");
}

void wait_for_wal(const std::vector<repo::Repository*>& repos, const std::string& segment,
                  std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto* r : repos) {
    if (!await_archived(*r, segment, deadline))
      throw Error(ErrorCode::kNotFound,
                  "WAL segment " + segment + ", needed to make the backup consistent, was not " +
                      "archived within " + std::to_string(timeout.count() / 1000) +
                      " s; check that archive_command runs walvault archive-push for this "
                      "repository (the backup is not listed)");
  }
}

std::string unique_label(repo::Repository& repo, std::int64_t start_us) {
  const std::string base = backup_label_for(start_us);
  std::string label = base;
  for (int n = 2;
       repo.store().stat(record_object_name(label)) || repo.store().stat(files_object_name(label));
       ++n)
    label = base + "-" + std::to_string(n);
  return label;
}

// Writes the file list and then the record into every repository.
BackupRecord write_backup(Collector& c, BackupRecord record, const BackupOptions& options) {
  if (options.before_commit) options.before_commit();
  for (std::size_t i = 0; i < c.targets().size(); ++i) {
    auto& t = c.targets()[i];
    BackupRecord r = record;
    r.label = i == 0 ? unique_label(*t.repo, record.start_time_us) : record.label;
    if (i == 0) record.label = r.label;
    r.stored_bytes = c.stored_bytes(i);
    r.new_chunk_count = c.new_chunks(i);
    BackupFiles files;
    files.entries.assign(std::make_move_iterator(t.entries.begin()),
                         std::make_move_iterator(t.entries.end()));
    files.backup_manifest = c.manifest();
    const std::string list = files_to_json(files);
    if (t.repo->put_object(files_object_name(r.label), as_bytes(list)) !=
        store::PutResult::kCreated)
      throw Error(ErrorCode::kConflict, "backup " + r.label + " already exists in the repository");
    const std::string text = record_to_json(r);
    if (t.repo->put_object(record_object_name(r.label), as_bytes(text)) !=
        store::PutResult::kCreated)
      throw Error(ErrorCode::kConflict, "backup " + r.label + " already exists in the repository");
    if (i == 0) record = r;
  }
  return record;
}

void fill_common(BackupRecord& r, Collector& c) {
  r.chunk_size = c.chunk_size();
  r.backup_label = c.backup_label();
  r.tablespace_map = c.tablespace_map();
  r.tablespaces = c.tablespaces();
  r.file_count = c.file_count();
  r.logical_bytes = c.logical_bytes();
  r.read_bytes = c.read_bytes();
  r.chunk_count = c.chunk_refs();
}

void check_repos(const std::vector<repo::Repository*>& repos) {
  if (repos.empty()) throw Error(ErrorCode::kUsage, "backup: no repository");
  if (repos.size() > 16) throw Error(ErrorCode::kUsage, "backup: at most 16 repositories");
}

// Adapts a bare tar stream to the collector (one archive: the data directory).
class TarToCollector : public pg::TarEntrySink {
 public:
  explicit TarToCollector(Collector& c) : c_(c) {}
  void on_entry_begin(const pg::TarEntry& e) override { c_.on_tar_entry_begin(e); }
  void on_entry_data(ByteView d) override { c_.on_tar_entry_data(d); }
  void on_entry_end() override { c_.on_tar_entry_end(); }

 private:
  Collector& c_;
};

}  // namespace

std::string backup_label_for(std::int64_t unix_us) { return compact_utc_label(unix_us); }

struct BackupPipeline::Impl {
  Impl(const std::vector<repo::Repository*>& repos, const BackupOptions& options)
      : collector(repos, options) {}
  Collector collector;
};

BackupPipeline::BackupPipeline(const std::vector<repo::Repository*>& repos,
                               const BackupOptions& options)
    : repos_(repos) {
  check_repos(repos);
  impl_ = std::make_unique<Impl>(repos, options);
}

BackupPipeline::~BackupPipeline() = default;

void BackupPipeline::bind_cluster(std::uint64_t system_id, std::uint32_t segment_size,
                                  int pg_major) {
  for (auto* r : repos_) check_cluster(*r, system_id, segment_size, pg_major);
}

pg::BackupSink& BackupPipeline::sink() { return impl_->collector; }

void BackupPipeline::add_file(const pg::TarEntry& entry, RangeReader read) {
  impl_->collector.on_file_read_by_workers(entry, read);
}

std::uint64_t BackupPipeline::add_file_reusing(const pg::TarEntry& entry, RangeReader read,
                                               const std::vector<std::uint32_t>& read_chunks,
                                               const std::vector<const FileEntry*>& previous) {
  return impl_->collector.on_file_reusing(entry, read, read_chunks, previous);
}

std::uint64_t BackupPipeline::read_bytes() const { return impl_->collector.read_bytes(); }

void BackupPipeline::wait_for_reads() { impl_->collector.wait_for_reads(); }

BackupRecord BackupPipeline::commit(BackupRecord record, const BackupOptions& options) {
  Collector& c = impl_->collector;
  c.finish();
  record.stop_time_us = now_unix_us();
  wait_for_wal(repos_,
               stop_segment_name(record.stop_lsn, record.stop_timeline, record.wal_segment_size),
               options.wal_timeout);
  fill_common(record, c);
  record.duration_s = (now_unix_us() - record.start_time_us) / 1e6;
  return write_backup(c, record, options);
}

BackupRecord take_backup(const std::vector<repo::Repository*>& repos,
                         const BackupOptions& options) {
  check_repos(repos);
  const std::int64_t start_us = now_unix_us();
  pg::BaseBackupClient client(options.conninfo);
  const pg::ServerFacts facts = client.server_facts();
  const int major = facts.server_version_num / 10000;
  for (auto* r : repos) check_cluster(*r, facts.system_identifier, facts.wal_segment_size, major);

  Collector collector(repos, options);
  pg::BaseBackupOptions bb;
  bb.label = "walvault " + backup_label_for(start_us);
  bb.checkpoint = options.checkpoint;
  bb.progress = true;
  const pg::BaseBackupResult result = client.run_base_backup(bb, collector);
  const std::int64_t streamed_us = now_unix_us();
  collector.finish();
  const std::int64_t stop_us = now_unix_us();
  spdlog::info("backup: streamed {:.2f} s after start, chunks stored {:.2f} s later",
               (streamed_us - start_us) / 1e6, (stop_us - streamed_us) / 1e6);

  wait_for_wal(repos,
               stop_segment_name(result.end_lsn, result.end_timeline, facts.wal_segment_size),
               options.wal_timeout);
  spdlog::info("backup: WAL to the stop LSN archived {:.2f} s after the stream ended",
               (now_unix_us() - stop_us) / 1e6);

  BackupRecord r;
  r.tag = options.tag;
  r.source = "replication";
  r.start_lsn = result.start_lsn;
  r.stop_lsn = result.end_lsn;
  r.start_timeline = result.start_timeline;
  r.stop_timeline = result.end_timeline;
  r.start_time_us = start_us;
  r.stop_time_us = stop_us;
  r.pg_version_num = facts.server_version_num;
  r.system_id = facts.system_identifier;
  r.wal_segment_size = facts.wal_segment_size;
  fill_common(r, collector);
  r.duration_s = (now_unix_us() - start_us) / 1e6;
  return write_backup(collector, r, options);
}

BackupRecord ingest_tar(const std::vector<repo::Repository*>& repos, int fd,
                        const BackupOptions& options) {
  check_repos(repos);
  const std::int64_t start_us = now_unix_us();
  auto cluster = repo::read_cluster(*repos.front());
  if (!cluster)
    throw Error(ErrorCode::kNotFound,
                "backup --from-tar: the repository has no archived WAL yet; set archive_command "
                "to walvault archive-push first (the WAL is what makes a tar restorable)");

  Collector collector(repos, options);
  TarToCollector adapter(collector);
  pg::TarReader reader(adapter);
  std::vector<std::uint8_t> buf(1 << 20);
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("backup --from-tar: reading the tar stream");
    }
    if (n == 0) break;
    reader.feed(ByteView(buf.data(), static_cast<std::size_t>(n)));
    total += static_cast<std::uint64_t>(n);
    collector.on_progress(total);
  }
  reader.finish();
  collector.finish();

  const std::string& label_text = collector.backup_label();
  if (label_text.empty())
    throw Error(ErrorCode::kInvalidInput,
                "backup --from-tar: the stream has no backup_label; is it a pg_basebackup tar "
                "(pg_basebackup -D - -Ft -X none)?");
  auto start_field = label_field(label_text, "START WAL LOCATION");
  auto tli_field = label_field(label_text, "START TIMELINE");
  std::optional<pg::Lsn> start_lsn = start_field ? leading_lsn(*start_field) : std::nullopt;
  if (!start_lsn || !tli_field)
    throw Error(ErrorCode::kInvalidInput,
                "backup --from-tar: backup_label lacks START WAL LOCATION or START TIMELINE");
  const auto start_tli = static_cast<pg::TimeLineId>(std::stoul(*tli_field));
  // pg_control starts with the system identifier (uint64, native order).
  if (collector.pg_control().size() >= 8) {
    std::uint64_t system_id;
    std::memcpy(&system_id, collector.pg_control().data(), 8);
    if (system_id != cluster->system_id)
      throw Error(ErrorCode::kClusterMismatch,
                  "backup --from-tar: the tar is of cluster " + std::to_string(system_id) +
                      ", the repository archives cluster " + std::to_string(cluster->system_id));
  }
  int pg_major = cluster->pg_major;
  if (!collector.pg_version().empty()) pg_major = std::atoi(collector.pg_version().c_str());

  // The stop point: the manifest's WAL-Ranges, else the backup history file.
  std::optional<pg::Lsn> stop_lsn;
  pg::TimeLineId stop_tli = start_tli;
  if (!collector.manifest().empty()) {
    try {
      auto j = nlohmann::json::parse(collector.manifest());
      const auto& ranges = j.at("WAL-Ranges");
      if (!ranges.empty()) {
        const auto& last = ranges.front();  // the newest timeline comes first
        stop_lsn = pg::parse_lsn(last.at("End-LSN").get<std::string>());
        stop_tli = last.at("Timeline").get<pg::TimeLineId>();
      }
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kInvalidInput,
                  std::string("backup --from-tar: backup_manifest is not valid: ") + e.what());
    }
  }
  const std::uint32_t seg_size = cluster->segment_size;
  if (!stop_lsn) {
    char offset[16];
    std::snprintf(offset, sizeof offset, ".%08X", static_cast<unsigned>(*start_lsn % seg_size));
    const std::string history =
        pg::segment_file_name(start_tli, *start_lsn / seg_size, seg_size) + offset + ".backup";
    const auto deadline = std::chrono::steady_clock::now() + options.wal_timeout;
    for (;;) {
      if (auto text = repos.front()->get_object(repo::file_object_name(history))) {
        std::string s(as_chars(*text));
        auto stop = label_field(s, "STOP WAL LOCATION");
        auto tli = label_field(s, "STOP TIMELINE");
        if (stop) stop_lsn = leading_lsn(*stop);
        if (tli) stop_tli = static_cast<pg::TimeLineId>(std::stoul(*tli));
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline)
        throw Error(ErrorCode::kNotFound,
                    "backup --from-tar: the stream has no backup_manifest "
                    "and the backup history file " +
                        history + " was not archived in time");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (!stop_lsn)
      throw Error(ErrorCode::kInvalidInput, "backup --from-tar: backup history file " + history +
                                                " has no STOP WAL LOCATION");
  }
  wait_for_wal(repos, stop_segment_name(*stop_lsn, stop_tli, seg_size), options.wal_timeout);

  BackupRecord r;
  r.tag = options.tag;
  r.source = "tar";
  r.start_lsn = *start_lsn;
  r.stop_lsn = *stop_lsn;
  r.start_timeline = start_tli;
  r.stop_timeline = stop_tli;
  r.start_time_us = start_us;
  r.stop_time_us = now_unix_us();
  r.pg_version_num = pg_major * 10000;
  r.system_id = cluster->system_id;
  r.wal_segment_size = seg_size;
  fill_common(r, collector);
  r.duration_s = (now_unix_us() - start_us) / 1e6;
  return write_backup(collector, r, options);
}

}  // namespace walvault::basebackup
