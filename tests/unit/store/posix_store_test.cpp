#include "store/posix_store.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "core/file_util.h"
#include "store_conformance.h"
#include "store_test_util.h"
#include "support/tmpfs_mount.h"

namespace walvault::store::testing {
namespace {

// Every conformance store gets a fresh directory below one scratch directory
// that lives (and is removed) with the test process.
std::unique_ptr<ObjectStore> make_posix_store() {
  static ScratchDir scratch("wv-posix-conformance");
  static int count = 0;
  return std::make_unique<PosixStore>(scratch.sub("store-" + std::to_string(++count)),
                                      /*create=*/true);
}

INSTANTIATE_TEST_SUITE_P(
    Posix, StoreConformance,
    ::testing::Values(StoreFactory{
        "posix", make_posix_store, {.exclusive_create = true, .reports_space = true}}),
    store_factory_name);

// Every entry below `dir` that is not a directory, hidden ones included,
// relative to `dir` and sorted.
std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_directory()) out.push_back(std::filesystem::relative(entry.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void write_plain_file(const std::string& path, std::string_view content) {
  ASSERT_TRUE(write_file_atomic(path, as_bytes(content), 0640, Overwrite::kYes, Durability::kNone));
}

void set_age(const std::string& path, long seconds) {
  const timespec times[2] = {{::time(nullptr) - seconds, 0}, {::time(nullptr) - seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

class PosixStoreTest : public ::testing::Test {
 protected:
  ScratchDir scratch_{"wv-posix"};
  std::string root_ = scratch_.sub("repo");
  PosixStore store_{root_, true};
};

TEST_F(PosixStoreTest, ObjectsAreFilesUnderTheRoot) {
  ASSERT_EQ(store_.put("a/b/c", to_bytes("abc")), PutResult::kCreated);
  ASSERT_EQ(store_.put("top", to_bytes("t")), PutResult::kCreated);
  EXPECT_EQ(read_file(root_ + "/a/b/c"), to_bytes("abc"));
  EXPECT_EQ(read_file(root_ + "/top"), to_bytes("t"));
  EXPECT_EQ(files_under(root_), (std::vector<std::string>{"a/b/c", "top"}));
  EXPECT_EQ(store_.describe(), root_);
}

TEST_F(PosixStoreTest, RootMustExistUnlessCreated) {
  const std::string missing = scratch_.sub("missing/deeper");
  try {
    PosixStore store(missing);
    FAIL() << "opened a missing root";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  PosixStore created(missing + "//", true);
  EXPECT_EQ(created.describe(), missing);
  EXPECT_TRUE(std::filesystem::is_directory(missing));
  EXPECT_EQ(created.put("x", to_bytes("x")), PutResult::kCreated);

  write_plain_file(scratch_.sub("file"), "not a directory");
  EXPECT_EQ(error_code_of([&] { PosixStore store(scratch_.sub("file")); }), ErrorCode::kIo);
}

TEST_F(PosixStoreTest, TempFilesAreNeverListedAndStaleOnesAreCleaned) {
  ASSERT_EQ(store_.put("wal/segment", to_bytes("data")), PutResult::kCreated);
  // What interrupted puts leave behind: two stale temp files and one of a put
  // that may still be writing.
  write_plain_file(root_ + "/.tmp.1.0.1", "stale");
  write_plain_file(root_ + "/wal/.tmp.2.0.2", "stale");
  write_plain_file(root_ + "/wal/.tmp.3.0.3", "fresh");
  set_age(root_ + "/.tmp.1.0.1", 7200);
  set_age(root_ + "/wal/.tmp.2.0.2", 7200);

  EXPECT_EQ(names_of(store_.list("")), std::vector<std::string>{"wal/segment"});
  EXPECT_TRUE(store_.list(".tmp.").empty());
  EXPECT_TRUE(store_.list("wal/.tmp.").empty());

  EXPECT_EQ(store_.clean_temp_files(3600), 2u);
  EXPECT_EQ(files_under(root_), (std::vector<std::string>{"wal/.tmp.3.0.3", "wal/segment"}));
  EXPECT_EQ(store_.clean_temp_files(0), 1u);
  EXPECT_EQ(files_under(root_), std::vector<std::string>{"wal/segment"});
  EXPECT_EQ(store_.get("wal/segment", std::nullopt), to_bytes("data"));
}

TEST_F(PosixStoreTest, ListSkipsEverythingThatIsNotAnObject) {
  ASSERT_EQ(store_.put("real", to_bytes("r")), PutResult::kCreated);
  ASSERT_EQ(store_.put("dir/real", to_bytes("r")), PutResult::kCreated);
  ASSERT_EQ(::symlink("real", (root_ + "/link").c_str()), 0);
  ASSERT_EQ(::symlink("dir", (root_ + "/linkdir").c_str()), 0);
  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0600), 0);
  write_plain_file(root_ + "/has space", "x");
  write_plain_file(root_ + "/.hidden", "x");
  make_dirs(root_ + "/.hiddendir");
  write_plain_file(root_ + "/.hiddendir/inside", "x");
  make_dirs(root_ + "/bad name");
  write_plain_file(root_ + "/bad name/inside", "x");

  EXPECT_EQ(names_of(store_.list("")), (std::vector<std::string>{"dir/real", "real"}));
  for (const std::string name : {"link", "linkdir", "fifo", "dir"}) {
    EXPECT_FALSE(store_.get(name, std::nullopt).has_value()) << name;
    EXPECT_FALSE(store_.stat(name).has_value()) << name;
  }
}

TEST_F(PosixStoreTest, ListWithADirectoryInThePrefixWalksOnlyThatDirectory) {
  ASSERT_EQ(store_.put("wal/000000010000000000000001", to_bytes("w")), PutResult::kCreated);
  ASSERT_EQ(store_.put("data/ab/chunk", to_bytes("c")), PutResult::kCreated);
  // inotify reports every open of a watched directory itself (an event
  // without a name), so a walk that reads the root or strays into data/ is
  // seen, with no timing involved.
  const int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(watch, 0) << std::strerror(errno);
  for (const std::string& dir : {root_, root_ + "/data", root_ + "/data/ab"}) {
    ASSERT_GE(::inotify_add_watch(watch, dir.c_str(), IN_OPEN), 0) << dir;
  }
  auto opened_since_last_call = [&] {
    alignas(inotify_event) char buf[4096];
    bool any = false;
    for (ssize_t n; (n = ::read(watch, buf, sizeof buf)) > 0;) {
      for (ssize_t at = 0; at < n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buf + at);
        if (event->len == 0) any = true;  // the watched directory itself
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    }
    return any;
  };

  EXPECT_EQ(store_.list("wal/0000").size(), 1u);
  EXPECT_EQ(store_.list("wal/").size(), 1u);
  EXPECT_TRUE(store_.list("nothing/here/").empty());
  EXPECT_FALSE(opened_since_last_call()) << "listing under wal/ read the root or data/";
  EXPECT_EQ(store_.list("").size(), 2u);
  EXPECT_TRUE(opened_since_last_call()) << "the probe does not see a full walk";
  ::close(watch);
}

TEST_F(PosixStoreTest, ANameHeldByADirectoryIsNoObject) {
  ASSERT_EQ(store_.put("a/b", to_bytes("b")), PutResult::kCreated);
  EXPECT_EQ(error_code_of([&] { store_.put("a", to_bytes("a")); }), ErrorCode::kIo);
  EXPECT_FALSE(store_.get("a", std::nullopt).has_value());
  EXPECT_FALSE(store_.stat("a").has_value());
  EXPECT_FALSE(store_.remove("a"));
  EXPECT_EQ(error_code_of([&] { store_.put("a/b/c", to_bytes("c")); }), ErrorCode::kIo);
  EXPECT_EQ(names_of(store_.list("")), std::vector<std::string>{"a/b"});
}

TEST_F(PosixStoreTest, PutIntoAFullFileSystemFailsAndLeavesNothing) {
  const std::string mnt = scratch_.sub("full");
  walvault::testing::TmpfsMount tmpfs(mnt, "size=1m");
  if (!tmpfs.why_not().empty()) GTEST_SKIP() << tmpfs.why_not();
  PosixStore store(mnt + "/repo", true);

  try {
    store.put("wal/big", pattern(2 * 1024 * 1024, 1));
    FAIL() << "a 2 MiB put into a 1 MiB file system succeeded";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kIo) << message;
    EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
    EXPECT_NE(message.find(mnt + "/repo/wal/"), std::string::npos) << message;
  }
  EXPECT_FALSE(store.stat("wal/big").has_value());
  EXPECT_TRUE(store.list("").empty());
  EXPECT_TRUE(files_under(mnt).empty()) << "a temp file or partial object is left";

  // The failed put gave its space back: what fits still goes in.
  EXPECT_EQ(store.put("wal/small", pattern(256 * 1024, 2)), PutResult::kCreated);
  EXPECT_EQ(store.get("wal/small", std::nullopt), pattern(256 * 1024, 2));
  EXPECT_EQ(error_code_of([&] { store.put("wal/big", pattern(2 * 1024 * 1024, 1)); }),
            ErrorCode::kIo);
  EXPECT_EQ(files_under(mnt), std::vector<std::string>{"repo/wal/small"});
}

TEST_F(PosixStoreTest, ConcurrentCreateOnlyPutsFromProcessesHaveOneWinner) {
  constexpr int kProcesses = 6;
  constexpr int kRounds = 5;
  enum ChildStatus { kCreated = 0, kAlreadyExists = 1, kFailed = 2 };
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string name = "race/segment-" + std::to_string(round);
    std::vector<Bytes> data;
    for (int i = 0; i < kProcesses; ++i) data.push_back(pattern(256 * 1024 + i, round * 10 + i));

    // Children block on the pipe until the parent closes its write end, so
    // all of them start their put at once.
    int gate[2];
    ASSERT_EQ(::pipe(gate), 0);
    std::vector<pid_t> children;
    for (int i = 0; i < kProcesses; ++i) {
      const pid_t pid = ::fork();
      ASSERT_GE(pid, 0) << std::strerror(errno);
      if (pid == 0) {
        ::close(gate[1]);
        char byte;
        (void)!::read(gate[0], &byte, 1);
        int status = kFailed;
        try {
          PosixStore store(root_);
          status = store.put(name, data[i]) == PutResult::kCreated ? kCreated : kAlreadyExists;
        } catch (...) {
        }
        ::_exit(status);  // no atexit handlers, no gtest teardown in the child
      }
      children.push_back(pid);
    }
    ::close(gate[0]);
    ::close(gate[1]);

    int winner = -1;
    int already_exists = 0;
    for (int i = 0; i < kProcesses; ++i) {
      int status = 0;
      ASSERT_EQ(::waitpid(children[i], &status, 0), children[i]);
      ASSERT_TRUE(WIFEXITED(status)) << "child " << i << " did not exit normally";
      switch (WEXITSTATUS(status)) {
        case kCreated:
          EXPECT_EQ(winner, -1) << "children " << winner << " and " << i << " both created";
          winner = i;
          break;
        case kAlreadyExists:
          ++already_exists;
          break;
        default:
          ADD_FAILURE() << "child " << i << "'s put failed";
      }
    }
    ASSERT_NE(winner, -1) << "no child created the object";
    EXPECT_EQ(already_exists, kProcesses - 1);
    const auto stored = store_.get(name, std::nullopt);
    ASSERT_TRUE(stored.has_value());
    EXPECT_TRUE(*stored == data[winner]) << "stored bytes are not the winner's";
  }
  EXPECT_EQ(store_.clean_temp_files(0), 0u) << "a put left its temp file behind";
}

}  // namespace
}  // namespace walvault::store::testing
