// The test harness itself: a real PostgreSQL starts, answers and stops.
#include <gtest/gtest.h>

#include "support/pg_cluster.h"

namespace walvault::testing {

TEST(Harness, StartsRealPostgresAsUnprivilegedUser) {
  PgCluster pg({});
  pg.init();
  pg.start();
  EXPECT_EQ(pg.sql("select current_setting('server_version_num')::int / 10000"), "15");
  EXPECT_EQ(pg.sql("select pg_is_in_recovery()"), "f");
  pg.stop();
}

}  // namespace walvault::testing
