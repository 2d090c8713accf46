#include "support/tmpfs_mount.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace walvault::testing {

TmpfsMount::TmpfsMount(std::string dir, const std::string& options) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (::geteuid() != 0) {
    why_not_ = "mounting a small tmpfs needs root (CI runs as root)";
  } else if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) != 0) {
    why_not_ = "cannot mount a tmpfs on " + dir_ + ": " + std::strerror(errno);
  } else {
    mounted_ = true;
  }
  if (!mounted_ && std::getenv("WALVAULT_REQUIRE_TMPFS"))
    ADD_FAILURE() << why_not_ << " (WALVAULT_REQUIRE_TMPFS is set)";
}

TmpfsMount::~TmpfsMount() {
  if (mounted_ && ::umount(dir_.c_str()) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
}

}  // namespace walvault::testing
