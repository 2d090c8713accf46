#include "walarchive/archive_get.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "core/process_heap.h"
#include "pg/wal_name.h"
#include "repo/cluster.h"
#include "repo/wal_objects.h"

namespace walvault::walarchive {

namespace {

pg::WalFileName parse_or_throw(const std::string& file_name) {
  auto name = pg::parse_wal_file_name(file_name);
  if (!name)
    throw Error(ErrorCode::kInvalidInput,
                file_name + ": not a WAL segment, .history, .backup or .partial file name");
  return *name;
}

// Moves a prefetched segment into place. Spool files were verified when they
// were fetched and written atomically, so a rename is all that is left.
bool take_from_spool(const std::string& spooled, const std::string& destination) {
  if (::rename(spooled.c_str(), destination.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  if (errno != EXDEV) throw_errno("rename " + spooled + " to " + destination);
  auto bytes = read_file(spooled);
  if (!bytes) return false;
  write_file_atomic(destination, *bytes, 0600, Overwrite::kYes, Durability::kNone);
  ::unlink(spooled.c_str());
  return true;
}

}  // namespace

GetOutcome archive_get(repo::Repository& repo, const std::string& file_name,
                       const std::string& destination, const GetOptions& options) {
  pg::WalFileName name = parse_or_throw(file_name);
  if (name.kind == pg::WalFileKind::kSegment && !options.spool_dir.empty() &&
      take_from_spool(options.spool_dir + "/" + name.name, destination))
    return GetOutcome::kRestored;

  // A 16 MiB segment is read into fresh memory: huge pages make its first
  // touch cheap (cli::run leaves this to here for archive-get).
  prepare_process_heap();
  auto bytes = repo.get_object(repo::data_object_name(name));
  if (!bytes) return GetOutcome::kNotFound;
  // PostgreSQL re-fetches after a crash, so the copy needs to be whole, not durable.
  write_file_atomic(destination, *bytes, 0600, Overwrite::kYes, Durability::kNone);
  return GetOutcome::kRestored;
}

bool fetch_to_spool(repo::Repository& repo, const std::string& segment,
                    const std::string& spool_dir) {
  auto bytes = repo.get_object(repo::segment_object_name(segment));
  if (!bytes) return false;
  // PostgreSQL fsyncs every segment restore_command gives it before replaying
  // it (durable_rename of RECOVERYXLOG): with the writeback started here, a
  // few segments ahead of replay, that fsync finds the segment already on the
  // disk instead of waiting for 16 MiB to be written (docs/decisions.md,
  // "Spooled WAL: writeback started at fetch").
  write_file_atomic(spool_dir + "/" + segment, *bytes, 0600, Overwrite::kYes,
                    Durability::kStartWriteback);
  return true;
}

int prefetch(repo::Repository& repo, const std::string& file_name, int count,
             const std::string& spool_dir) {
  pg::WalFileName name = parse_or_throw(file_name);
  if (name.kind != pg::WalFileKind::kSegment || count <= 0) return 0;
  auto cluster = repo::read_cluster(repo);
  if (!cluster) return 0;
  make_dirs(spool_dir);
  int lock_fd = ::open((spool_dir + "/.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock_fd < 0) throw_errno("open " + spool_dir + "/.lock");
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return 0;
  }

  const std::uint64_t segno = pg::segment_number(name, cluster->segment_size);
  std::set<std::string> window;
  for (int i = 1; i <= count; ++i)
    window.insert(pg::segment_file_name(name.timeline, segno + static_cast<std::uint64_t>(i),
                                        cluster->segment_size));
  // The spool cleans itself: anything outside the window will not be asked for.
  if (DIR* dir = ::opendir(spool_dir.c_str())) {
    while (dirent* e = ::readdir(dir)) {
      std::string f = e->d_name;
      if (f == "." || f == ".." || f == ".lock" || window.count(f)) continue;
      ::unlink((spool_dir + "/" + f).c_str());
    }
    ::closedir(dir);
  }

  int fetched = 0;
  for (const auto& seg : window) {
    if (::access((spool_dir + "/" + seg).c_str(), F_OK) == 0) continue;
    if (!fetch_to_spool(repo, seg, spool_dir)) break;  // end of the archive
    ++fetched;
  }
  ::close(lock_fd);
  return fetched;
}

}  // namespace walvault::walarchive
