// pg::conninfo_environment: a --pg connection string becomes libpq's
// environment variables for pg_dump/pg_restore/psql (never their argv), and
// a broken one is a usage error that does not repeat the string.
#include <gtest/gtest.h>

#include "core/error.h"
#include "pg/sql_connection.h"

namespace walvault::pg {
namespace {

TEST(ConninfoEnvironment, EverySettingButTheDatabaseBecomesItsVariable) {
  const auto env = conninfo_environment(
      "host=/run/pg port=5433 user=backup password='s3 cret' dbname=app sslmode=require "
      "application_name=x");
  EXPECT_EQ(env.at("PGHOST"), "/run/pg");
  EXPECT_EQ(env.at("PGPORT"), "5433");
  EXPECT_EQ(env.at("PGUSER"), "backup");
  EXPECT_EQ(env.at("PGPASSWORD"), "s3 cret");
  EXPECT_EQ(env.at("PGSSLMODE"), "require");
  EXPECT_EQ(env.at("PGAPPNAME"), "x");
  EXPECT_EQ(env.count("PGDATABASE"), 0u);
  const auto uri = conninfo_environment("postgresql://u:pw@db.example:6432/app");
  EXPECT_EQ(uri.at("PGHOST"), "db.example");
  EXPECT_EQ(uri.at("PGPORT"), "6432");
  EXPECT_EQ(uri.at("PGPASSWORD"), "pw");
  EXPECT_EQ(uri.count("PGDATABASE"), 0u);
}

TEST(ConninfoEnvironment, ABrokenStringIsAUsageErrorWithoutItsPassword) {
  try {
    conninfo_environment("host=db password=s3cret nonsense");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUsage);
    EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
  }
}

TEST(ConninfoQuote, QuotesAndEscapes) {
  EXPECT_EQ(conninfo_quote("app"), "'app'");
  EXPECT_EQ(conninfo_quote("it's a\\db"), "'it\\'s a\\\\db'");
}

}  // namespace
}  // namespace walvault::pg
