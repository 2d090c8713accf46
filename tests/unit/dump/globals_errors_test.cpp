// What a globals restore makes of psql's output (dump/restore_dump.h,
// globals_errors): an object that already existed is passed over and named,
// every other error line is a failure, whatever language the server speaks.
#include <gtest/gtest.h>

#include "dump/restore_dump.h"

namespace walvault::dump {
namespace {

TEST(GlobalsErrorsTest, SeparatesExistingObjectsFromFailures) {
  const std::string output =
      "psql:<stdin>:14: ERROR:  42710: role \"postgres\" already exists\n"
      "LOCATION:  CreateRole, user.c:330\n"
      "psql:<stdin>:16: ERROR:  42710: role \"app\" already exists\n"
      "LOCATION:  CreateRole, user.c:330\n"
      "psql:<stdin>:20: FEHLER:  42710: Tablespace »ts« existiert bereits\n"
      "psql:<stdin>:22: ERROR:  42601: syntax error at or near \"NOSUCHOPTION\"\n"
      "LINE 1: CREATE ROLE b WITH NOSUCHOPTION;\n"
      "                           ^\n"
      "LOCATION:  scanner_yyerror, scan.l:1188\n"
      "psql:<stdin>:30: error: invalid command \\restrictx\n"
      "psql:<stdin>:31: FEHLER:  58P01: Verzeichnis »/ts« existiert nicht\n";
  const GlobalsErrors errors = globals_errors(output);
  EXPECT_EQ(errors.already_existed,
            (std::vector<std::string>{"role \"postgres\"", "role \"app\"",
                                      "Tablespace »ts« existiert bereits"}));
  ASSERT_EQ(errors.failures.size(), 3u);
  EXPECT_TRUE(errors.failures[0].starts_with("psql:<stdin>:22: ERROR:  42601:"));
  EXPECT_TRUE(errors.failures[1].starts_with("psql:<stdin>:30: error:"));
  EXPECT_TRUE(errors.failures[2].starts_with("psql:<stdin>:31: FEHLER:  58P01:"));
}

TEST(GlobalsErrorsTest, QuietOutputHasNoErrors) {
  const GlobalsErrors errors = globals_errors("");
  EXPECT_TRUE(errors.already_existed.empty());
  EXPECT_TRUE(errors.failures.empty());
  // A role's name cannot hide a failure: each error has a line of its own.
  const GlobalsErrors tricky = globals_errors(
      "psql:<stdin>:3: ERROR:  42710: role \"x: 42710: y\" already exists\n"
      "psql:<stdin>:4: ERROR:  42501: permission denied to create role\n");
  EXPECT_EQ(tricky.already_existed, (std::vector<std::string>{"role \"x: 42710: y\""}));
  EXPECT_EQ(tricky.failures.size(), 1u);
}

}  // namespace
}  // namespace walvault::dump
