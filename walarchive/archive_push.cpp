#include "walarchive/archive_push.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <future>
#include <mutex>

#include "codec/crypto.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/parallel.h"
#include "core/time_util.h"
#include "pg/wal_segment.h"
#include "repo/cluster.h"
#include "repo/wal_objects.h"

namespace walvault::walarchive {

namespace {

pg::WalFileName parse_name_or_throw(const std::string& path) {
  std::string file = base_name(path);
  auto name = pg::parse_wal_file_name(file);
  if (!name)
    throw Error(ErrorCode::kInvalidInput,
                path + ": not a WAL segment, .history, .backup or .partial file name");
  return *name;
}

MappedFile read_input(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file) throw Error(ErrorCode::kNotFound, path + ": no such file");
  return std::move(*file);
}

Error conflict(const std::string& file) {
  return Error(ErrorCode::kConflict,
               file + " is already archived with different content; the archived copy is kept");
}

// Same name already stored: identical bytes are success, anything else is a
// conflict and the stored object stays as it is.
void check_identical(repo::Repository& repo, const std::string& object, const std::string& file,
                     ByteView local) {
  auto stored = repo.get_object(object);
  if (!stored)
    throw Error(ErrorCode::kInternal, object + ": reported present but cannot be read back");
  if (stored->size() != local.size() || !std::equal(stored->begin(), stored->end(), local.begin()))
    throw conflict(file);
}

struct FileResult {
  PushOutcome outcome = PushOutcome::kStored;
  std::uint64_t xxh3 = 0;  // of the file's bytes
};

// Files without metadata: .history, .backup, .partial.
FileResult store_whole(repo::Repository& repo, const std::string& object, const std::string& file,
                       ByteView data) {
  FileResult result{PushOutcome::kStored, codec::xxh3_64(data)};
  if (repo.put_object(object, data) == store::PutResult::kAlreadyExists) {
    check_identical(repo, object, file, data);
    result.outcome = PushOutcome::kAlreadyArchived;
  }
  return result;
}

// What the decoder thread of a push returns: the segment's summary, and
// whether it stored the segment's block map (rather than finding one).
struct Summarized {
  pg::SegmentSummary summary;
  bool map_created = false;
};

// Opened once (later calls do nothing): a thread waiting on it goes on when
// another opens it. push_file opens it on every way out of store_segment.
class Gate {
 public:
  void open() {
    std::call_once(once_, [this] { promise_.set_value(); });
  }
  void wait() const { opened_.wait(); }

 private:
  std::promise<void> promise_;
  std::shared_future<void> opened_ = promise_.get_future().share();
  std::once_flag once_;
};

// The segment and then its metadata, once the decoder thread (`summary`)
// has its summary; `hash` is the segment's XXH3 from that thread.
FileResult store_segment(repo::Repository& repo, const pg::WalFileName& name,
                         const pg::SegmentHeader& header, ByteView data, const std::string& object,
                         const std::shared_future<std::uint64_t>& hash,
                         const std::shared_future<Summarized>& summary, Gate& sealed) {
  repo::SegmentMeta meta;
  meta.name = name.name;
  meta.timeline = name.timeline;
  meta.segno = pg::segment_number(name, header.segment_size);
  meta.size = data.size();
  meta.pg_major = header.pg_major;
  meta.system_id = header.system_id;
  meta.archived_us = now_unix_us();

  PushOutcome outcome = PushOutcome::kStored;
  repo::Repository::PutOptions put_options;
  put_options.plaintext_xxh3 = [&hash] { return hash.get(); };
  put_options.on_sealed = [&sealed] { sealed.open(); };
  const store::PutResult put = repo.put_object(object, data, put_options);
  sealed.open();
  meta.xxh3 = hash.get();
  if (put == store::PutResult::kAlreadyExists) {
    auto existing = repo::read_meta(repo, name.name);
    if (existing && existing->xxh3 != meta.xxh3) throw conflict(name.name);
    check_identical(repo, object, name.name, data);
    outcome = PushOutcome::kAlreadyArchived;
  }
  meta.summary = summary.get().summary;
  // The metadata makes the segment visible to planners; written last.
  repo.put_object(repo::meta_object_name(name.name), as_bytes(repo::meta_to_json(meta)));
  return {outcome, meta.xxh3};
}

FileResult push_file(repo::Repository& repo, const std::string& path) {
  pg::WalFileName name = parse_name_or_throw(path);
  const MappedFile input = read_input(path);
  const ByteView data = input.bytes();
  const std::string object = repo::data_object_name(name);

  if (name.kind != pg::WalFileKind::kSegment && name.kind != pg::WalFileKind::kPartial) {
    return store_whole(repo, object, name.name, data);
  }

  pg::SegmentHeader header = pg::check_segment_header(data, name);
  repo::bind_cluster(repo,
                     {header.system_id, header.segment_size, header.page_size, header.pg_major, 0},
                     name.name);
  if (name.kind == pg::WalFileKind::kPartial) {
    return store_whole(repo, object, name.name, data);
  }

  // Hash, then decode and store the block map, on another thread while this
  // one compresses and stores the segment.
  std::promise<std::uint64_t> hash_promise;
  std::shared_future<std::uint64_t> hash = hash_promise.get_future().share();
  const std::string map_object = repo::block_map_object_name(name.name);
  Gate sealed;
  std::shared_future<Summarized> summary = std::async(std::launch::async, [&] {
    const std::uint64_t xxh3 = codec::xxh3_64(data);
    hash_promise.set_value(xxh3);
    pg::BlockMap map;
    Summarized result{pg::summarize_segment(data, header, map), false};
    map.segment_xxh3 = xxh3;
    // The map is stored while the segment is written, not while it is
    // compressed: its file creation and fsyncs then take no CPU from zstd
    // (docs/benchmarks.md, session 16).
    sealed.wait();
    // Stored before the metadata, alongside the segment: a segment that counts
    // as archived has its map (unless an older walvault pushed it). A map
    // already there is kept; readers trust a map only when its segment_xxh3 is
    // the metadata's (a conflicting push may have stored one here).
    result.map_created =
        repo.put_object(map_object, pg::encode_block_map(map)) == store::PutResult::kCreated;
    return result;
  });
  try {
    return store_segment(repo, name, header, data, object, hash, summary, sealed);
  } catch (...) {
    sealed.open();
    // Nothing of a push that failed stays behind (a full disk, a conflict):
    // the map this call stored goes again, once its thread is done.
    try {
      if (summary.get().map_created) repo.store().remove(map_object);
    } catch (...) {  // the push's own error is the one to report
    }
    throw;
  }
}

std::string status_file(const std::string& spool_dir, const std::string& segment) {
  return spool_dir + "/" + segment + ".ok";
}

// What a batch remembers of a segment it pushed: its content hash and the
// identity of the file it read (size, mtime, inode), so the later call for
// that segment can confirm without reading 16 MiB again.
std::string file_status(const std::string& path, std::uint64_t xxh3) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno("stat " + path);
  return repo::format_xxh3(xxh3) + " " + std::to_string(st.st_size) + " " +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + " " +
         std::to_string(st.st_ino) + "\n";
}

// A segment pushed by an earlier call's batch: confirm that the file is the
// one that was pushed and that the repository holds it (metadata present,
// same hash and size) before reporting it archived.
bool confirm_batched(repo::Repository& repo, const std::string& spool_dir, const std::string& path,
                     const pg::WalFileName& name) {
  const std::string status = status_file(spool_dir, name.name);
  auto recorded = read_file(status);
  if (!recorded) return false;
  ::unlink(status.c_str());
  auto recorded_hash = repo::parse_xxh3(as_chars(*recorded).substr(0, 16));
  if (!recorded_hash) return false;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  if (file_status(path, *recorded_hash) != as_chars(*recorded)) return false;
  auto meta = repo::read_meta(repo, name.name);
  return meta && meta->xxh3 == *recorded_hash &&
         meta->size == static_cast<std::uint64_t>(st.st_size);
}

// The next segments PostgreSQL has marked ready, after `current`, in order.
std::vector<std::string> next_ready_segments(const std::string& wal_dir, const std::string& current,
                                             int count) {
  std::vector<std::string> out;
  if (count <= 0) return out;
  DIR* dir = ::opendir((wal_dir + "/archive_status").c_str());
  if (!dir) return out;
  while (dirent* e = ::readdir(dir)) {
    std::string f = e->d_name;
    if (f.size() != 24 + 6 || f.compare(24, 6, ".ready") != 0) continue;
    std::string seg = f.substr(0, 24);
    auto parsed = pg::parse_wal_file_name(seg);
    if (!parsed || parsed->kind != pg::WalFileKind::kSegment || seg <= current) continue;
    out.push_back(seg);
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end());
  if (out.size() > static_cast<std::size_t>(count)) out.resize(static_cast<std::size_t>(count));
  return out;
}

// Status files for segments before `current` will never be asked for (the
// current one's is consumed by confirm_batched).
void clean_status_files(const std::string& spool_dir, const std::string& current) {
  DIR* dir = ::opendir(spool_dir.c_str());
  if (!dir) return;
  while (dirent* e = ::readdir(dir)) {
    std::string f = e->d_name;
    if (f.size() == 24 + 3 && f.compare(24, 3, ".ok") == 0 && f.substr(0, 24) < current)
      ::unlink((spool_dir + "/" + f).c_str());
  }
  ::closedir(dir);
}

}  // namespace

PushResult archive_push(repo::Repository& repo, const PushOptions& options) {
  pg::WalFileName name = parse_name_or_throw(options.wal_path);
  const bool batching =
      options.parallel > 1 && !options.spool_dir.empty() && name.kind == pg::WalFileKind::kSegment;
  PushResult result;
  if (batching) {
    if (confirm_batched(repo, options.spool_dir, options.wal_path, name)) {
      result.outcome = PushOutcome::kBatchConfirmed;
      return result;
    }
    clean_status_files(options.spool_dir, name.name);
  }

  std::vector<std::string> extra;
  if (batching)
    extra = next_ready_segments(dir_name(options.wal_path), name.name, options.parallel - 1);
  // %p and the next ready segments at once (extra has at most parallel - 1).
  // A batch segment's failure is not fatal: PostgreSQL calls again for that
  // segment and the normal path reports its real outcome then.
  std::vector<FileResult> pushed(extra.size());
  std::vector<std::exception_ptr> failed(extra.size());
  std::exception_ptr own_failure;
  parallel_for(extra.size() + 1, options.parallel, [&](std::size_t i) {
    try {
      if (i == 0)
        result.outcome = push_file(repo, options.wal_path).outcome;
      else
        pushed[i - 1] = push_file(repo, dir_name(options.wal_path) + "/" + extra[i - 1]);
    } catch (...) {
      (i == 0 ? own_failure : failed[i - 1]) = std::current_exception();
    }
  });
  if (own_failure) std::rethrow_exception(own_failure);

  for (std::size_t i = 0; i < extra.size(); ++i) {
    try {
      if (failed[i]) std::rethrow_exception(failed[i]);
      make_dirs(options.spool_dir);
      write_file_atomic(
          status_file(options.spool_dir, extra[i]),
          as_bytes(file_status(dir_name(options.wal_path) + "/" + extra[i], pushed[i].xxh3)), 0640,
          Overwrite::kYes, Durability::kNone);
      ++result.batch_pushed;
    } catch (const std::exception& e) {
      spdlog::warn("batch push of {} failed: {}", extra[i], e.what());
    }
  }
  return result;
}

}  // namespace walvault::walarchive
