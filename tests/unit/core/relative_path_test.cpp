// The one name rule for ingest and restore (core/relative_path.h), and the
// directory that is written below without following links
// (core/contained_dir.h), with openat2 and with the component walk.
#include "core/relative_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/contained_dir.h"
#include "core/error.h"
#include "core/file_util.h"
#include "support/pg_cluster.h"

namespace walvault {
namespace {

namespace fs = std::filesystem;

TEST(RelativePath, AcceptsWhatADataDirectoryHolds) {
  for (const char* ok : {".", "PG_VERSION", "base/1/16384", "pg_wal/archive_status",
                         "global/pg_control", "..a", "a..", "a/...", ".hidden", "a/.b/c"})
    EXPECT_EQ(relative_path_problem(ok), std::nullopt) << ok;
  EXPECT_EQ(relative_path_problem(std::string(kMaxNameBytes, 'n')), std::nullopt);
  std::string deep;
  while (deep.size() + 2 <= kMaxPathBytes) deep += deep.empty() ? "d" : "/d";
  EXPECT_EQ(relative_path_problem(deep), std::nullopt);
}

TEST(RelativePath, RefusesEveryWayOut) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "is empty"},
      {"/etc/passwd", "is absolute"},
      {"/", "is absolute"},
      {"..", "has a '..' component"},
      {"../../etc/evil", "has a '..' component"},
      {"base/../../../x", "has a '..' component"},
      {"base/..", "has a '..' component"},
      {"a//b", "has an empty component"},
      {"a/", "has an empty component"},
      {"./a", "has a '.' component"},
      {"a/./b", "has a '.' component"},
      {std::string("a\0/../../x", 10), "contains a NUL byte"},
      {std::string(kMaxNameBytes + 1, 'n'), "has a component longer than 255 bytes"},
      {std::string(kMaxPathBytes + 1, 'n'), "is longer than 4095 bytes"},
  };
  for (const auto& [path, problem] : cases)
    EXPECT_EQ(relative_path_problem(path), problem) << printable_name(path);
}

TEST(RelativePath, MessageNamesTheEntryPrintably) {
  try {
    require_relative_path(std::string("x/../\n\x1b[2J", 10), ErrorCode::kInvalidInput,
                          "tar: entry");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_EQ(std::string(e.what()), "tar: entry 'x/../\\x0a\\x1b[2J': has a '..' component");
  }
  EXPECT_EQ(printable_name(std::string(300, 'a')).size(),
            2 + 200 + std::string("... (300 bytes)").size());
}

class ContainedDirTest : public ::testing::TestWithParam<Resolution> {
 protected:
  ContainedDirTest() {
    make_dirs(root_);
    make_dirs(outside_);
    make_dirs(root_ + "/real");
    fs::create_symlink(outside_, root_ + "/link");
    fs::create_symlink(outside_ + "/file", root_ + "/real/file_link");
  }
  walvault::testing::TempDir tmp_{"wv-contained"};
  std::string root_ = tmp_.sub("root"), outside_ = tmp_.sub("outside");
};

TEST_P(ContainedDirTest, NeverResolvesThroughALink) {
  ContainedDir dir(root_, GetParam());
  // A real directory and a file in it are fine.
  { UniqueFd fd = dir.open_file("real/new", O_WRONLY | O_CREAT, 0600); }
  EXPECT_TRUE(fs::exists(root_ + "/real/new"));
  EXPECT_GE(dir.open_dir("real").get(), 0);
  EXPECT_GE(dir.open_dir(".").get(), 0);
  // A link on the way, or as the last component, is never followed.
  for (const char* through : {"link/pwned", "real/file_link"}) {
    try {
      UniqueFd fd = dir.open_file(through, O_WRONLY | O_CREAT, 0600);
      ADD_FAILURE() << through << " was opened";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kIo);
      EXPECT_NE(std::string(e.what()).find("symbolic link is in the way"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(dir.open_dir("link"), Error);
  EXPECT_THROW(dir.slot("link/x"), Error);
  EXPECT_FALSE(dir.slot_if_present("link/x"));
  EXPECT_FALSE(dir.slot_if_present("missing/x"));
  EXPECT_TRUE(dir.slot_if_present("real/x"));
  // Names that are not contained are refused before any system call.
  for (const char* bad : {"../outside/x", "/etc/passwd", "real/../../outside/x"}) {
    try {
      UniqueFd fd = dir.open_file(bad, O_WRONLY | O_CREAT, 0600);
      ADD_FAILURE() << bad << " was opened";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidInput) << e.what();
    }
  }
  EXPECT_TRUE(fs::is_empty(outside_));
}

TEST_P(ContainedDirTest, RemoveAllAtRemovesLinksNotTheirTargets) {
  ContainedDir dir(root_, GetParam());
  write_file_atomic(outside_ + "/keep", as_bytes(std::string("keep")));
  fs::create_symlink(outside_, root_ + "/real/inner_link");
  write_file_atomic(root_ + "/real/f", as_bytes(std::string("x")));
  remove_all_at(dir.fd(), "real", dir.display("real"));
  remove_all_at(dir.fd(), "link", dir.display("link"));
  remove_all_at(dir.fd(), "absent", dir.display("absent"));
  EXPECT_TRUE(fs::is_empty(root_));
  EXPECT_TRUE(fs::exists(outside_ + "/keep"));
}

INSTANTIATE_TEST_SUITE_P(Resolutions, ContainedDirTest,
                         ::testing::Values(Resolution::kAuto, Resolution::kWalk),
                         [](const auto& info) {
                           return info.param == Resolution::kAuto ? std::string("Openat2")
                                                                  : std::string("Walk");
                         });

}  // namespace
}  // namespace walvault
