// The repositories of a command line: relative locations made absolute, the
// checks on the locations given, and "first that serves".
#include <gtest/gtest.h>

#include "cli/repo_set.h"
#include "support/error_code.h"

namespace walvault::cli {
namespace {

TEST(RepoSet, AbsoluteLocationLeavesAbsoluteAndRemoteOnes) {
  EXPECT_EQ(absolute_location("/a/b"), "/a/b");
  EXPECT_EQ(absolute_location("s3://bucket"), "s3://bucket");
  EXPECT_EQ(absolute_location("mem:"), "mem:");
  EXPECT_EQ(absolute_location(""), "");
  const std::string made = absolute_location("dir");
  EXPECT_EQ(made.front(), '/');
  EXPECT_TRUE(made.ends_with("/dir")) << made;
}

TEST(RepoSet, LocationsAreRequiredAndUnsupportedSchemesRefused) {
  EXPECT_EQ(testing::error_code_of([] { RepoSet(RepoAccess{}).locations(); }), ErrorCode::kUsage);
  RepoAccess ftp;
  ftp.locations = {"/a", "ftp://host/x"};
  EXPECT_EQ(testing::error_code_of([&] { RepoSet(ftp).locations(); }), ErrorCode::kUsage);
  RepoAccess fine;
  fine.locations = {"/a", "s3://b/p", "mem:"};
  EXPECT_EQ(RepoSet(fine).locations().size(), 3u);
}

TEST(RepoSet, FirstThatServesFallsBackAndThrowsTheFirstFailureNamed) {
  std::vector<std::string> tried;
  const bool served = first_that_serves({"/a", "/b", "/c"}, [&](const std::string& location) {
    tried.push_back(location);
    if (location == "/a") throw Error(ErrorCode::kIo, "down");
    return location == "/c";
  });
  EXPECT_TRUE(served);
  EXPECT_EQ(tried, (std::vector<std::string>{"/a", "/b", "/c"}));

  EXPECT_FALSE(first_that_serves({"/a", "/b"}, [](const std::string&) { return false; }));

  try {
    first_that_serves({"/a", "/b"}, [](const std::string& location) -> bool {
      throw Error(location == "/a" ? ErrorCode::kIo : ErrorCode::kKey, "failed");
    });
    FAIL() << "no failure thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
    EXPECT_STREQ(e.what(), "repository /a: failed");
  }
  // One repository: its error as it is.
  try {
    first_that_serves({"/a"},
                      [](const std::string&) -> bool { throw Error(ErrorCode::kIo, "failed"); });
    FAIL() << "no failure thrown";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "failed");
  }
}

}  // namespace
}  // namespace walvault::cli
