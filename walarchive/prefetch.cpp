#include "walarchive/prefetch.h"

#include <fcntl.h>
#include <unistd.h>

#include <iostream>

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
    prefetch(repo, file_name, count, spool_dir);
  } catch (...) {
    status = 1;  // the foreground call fetches for itself on a miss
  }
  ::_exit(status);
}

}  // namespace walvault::walarchive
