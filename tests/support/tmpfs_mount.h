// A small tmpfs for the full-disk tests: mounted on a directory for the life
// of the object. Mounting needs root (CI runs as root). Where it cannot be
// mounted the test skips — unless WALVAULT_REQUIRE_TMPFS is set (CI sets it),
// which turns the skip into a failure of the running test, so a full-disk
// test never passes unseen.
//
// Use:
//   TmpfsMount small(dir, "size=256k,mode=0777");
//   if (!small.why_not().empty()) GTEST_SKIP() << small.why_not();
#pragma once

#include <string>

namespace walvault::testing {

class TmpfsMount {
 public:
  // Creates `dir` if missing and mounts a tmpfs with mount(2) `options` on it.
  TmpfsMount(std::string dir, const std::string& options);
  ~TmpfsMount();  // unmounts (lazily when busy)
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  // "" when mounted; else why not (and, under WALVAULT_REQUIRE_TMPFS, a
  // failure of the running test has been recorded).
  const std::string& why_not() const { return why_not_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string why_not_;
};

}  // namespace walvault::testing
