// Repository locks when the store fails: a refusal of the lock object is
// handed to the caller with the store's reason (read-only repositories go on
// without a lock and say why), any later failure is an error, a refresh that
// keeps failing is named when the holder checks its lock, and a crafted lock
// name is no lock. Exclusion, refresh and the stale sweep: tests/unit/ops/gc_test.cpp.
#include "repo/lock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/error.h"
#include "store/mem_store.h"
#include "support/error_code.h"
#include "support/failing_store.h"

namespace walvault::repo {
namespace {

using testing::error_code_of;
using testing::FailingOps;
using testing::FailingStore;

struct FailingRepo {
  explicit FailingRepo(FailingOps ops)
      : mem(std::make_shared<store::MemStore>()),
        failing(std::make_shared<FailingStore>(mem, kLockPrefix, FailingOps{})) {
    Repository::init(*mem, InitOptions{});
    repo = Repository::open(failing, Secrets{});
    failing->set(ops);
  }
  std::shared_ptr<store::MemStore> mem;
  std::shared_ptr<FailingStore> failing;
  std::unique_ptr<Repository> repo;
};

TEST(RepoLockTest, RefusedLockObjectIsReportedWithTheStoresReason) {
  FailingRepo r(FailingOps{.put = true});
  std::string refused;
  const auto lock = RepoLock::acquire_for_reading(*r.repo, "verify", LockOptions{}, &refused);
  EXPECT_FALSE(lock);
  EXPECT_NE(refused.find("injected I/O error"), std::string::npos) << refused;
  EXPECT_NE(refused.find(kLockPrefix), std::string::npos) << refused;
  // A command that must hold the lock fails instead.
  EXPECT_EQ(error_code_of(
                [&] { RepoLock::acquire(*r.repo, LockMode::kShared, "backup", LockOptions{}); }),
            ErrorCode::kIo);
}

TEST(RepoLockTest, FailureAfterTheLockObjectWasWrittenIsAnError) {
  // The store took the lock object, then could not list the locks: that is
  // no read-only repository, and going on without a lock would be silent.
  FailingRepo r(FailingOps{.list = true});
  std::string refused;
  EXPECT_EQ(error_code_of([&] {
              RepoLock::acquire_for_reading(*r.repo, "restore", LockOptions{}, &refused);
            }),
            ErrorCode::kIo);
  EXPECT_EQ(refused, "");
}

TEST(RepoLockTest, CheckHeldNamesWhyTheRefreshFailed) {
  FailingRepo r(FailingOps{});
  LockOptions o;
  o.refresh = std::chrono::seconds(1);
  o.stale = std::chrono::seconds(3);
  const auto lock = RepoLock::acquire(*r.repo, LockMode::kExclusive, "gc", o);
  lock->check_held();
  r.failing->set(FailingOps{.put = true});
  std::this_thread::sleep_for(std::chrono::milliseconds(2300));
  try {
    lock->check_held();
    ADD_FAILURE() << "a lock that could not be refreshed was still held";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBusy);
    EXPECT_NE(std::string(e.what()).find("injected I/O error"), std::string::npos) << e.what();
  }
  r.failing->set(FailingOps{});
}

TEST(RepoLockTest, CraftedLockNameIsNoLock) {
  FailingRepo r(FailingOps{});
  // A time past int64 used to stop every lock taker with an internal error.
  r.repo->put_object(std::string(kLockPrefix) + "exclusive-ab-99999999999999999999999",
                     as_bytes(std::string("{}")));
  EXPECT_TRUE(RepoLock::acquire(*r.repo, LockMode::kShared, "backup", LockOptions{}));
}

}  // namespace
}  // namespace walvault::repo
