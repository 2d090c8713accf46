#include "walarchive/prefetch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>

#include "core/error.h"
#include "core/process_heap.h"
#include "walarchive/archive_get.h"

namespace walvault::walarchive {

void start_prefetch_process(repo::Repository& repo, const std::string& file_name, int count,
                            const std::string& spool_dir) {
  if (count <= 0 || spool_dir.empty()) return;
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = ::fork();
  if (pid != 0) return;  // parent (or fork failure: prefetch is an optimisation)
  ::setsid();
  const int devnull = ::open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
  }
  int status = 0;
  try {
    prepare_process_heap();  // archive-get's start left it to the fetches
    prefetch(repo, file_name, count, spool_dir);
  } catch (...) {
    status = 1;  // the foreground call fetches for itself on a miss
  }
  ::_exit(status);
}

int prestage(repo::Repository& repo, const std::vector<std::string>& segments,
             const std::string& spool_dir) {
  struct stat spool;
  if (::stat(spool_dir.c_str(), &spool) != 0) throw_errno("inspecting the spool " + spool_dir);
  const bool hand_over = ::geteuid() == 0 && spool.st_uid != 0;
  int fetched = 0;
  for (const std::string& segment : segments) {
    const std::string path = spool_dir + "/" + segment;
    if (::access(path.c_str(), F_OK) == 0) continue;
    if (!fetch_to_spool(repo, segment, spool_dir)) break;
    if (hand_over && ::chown(path.c_str(), spool.st_uid, spool.st_gid) != 0) {
      const int err = errno;
      ::unlink(path.c_str());  // a file the server could not read must not be found there
      throw_errno("giving " + path + " to the spool's owner", err);
    }
    ++fetched;
  }
  return fetched;
}

}  // namespace walvault::walarchive
