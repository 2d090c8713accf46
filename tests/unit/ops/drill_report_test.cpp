// ops::drill_history: the history entry of a drill (docs/format.md, "History")
// holds the facts of the steps that ran, and only those.
#include <gtest/gtest.h>

#include "ops/drill.h"

namespace walvault::ops {
namespace {

repo::HistoryEntry started() {
  repo::HistoryEntry e;
  e.command = "drill";
  e.start_us = 1;
  return e;
}

TEST(DrillHistory, FailureBeforeThePlanRecordsTheReasonOnly) {
  DrillReport r;
  r.failure = "restore plan: no backup can reach the target";
  r.failure_code = ErrorCode::kNotFound;
  const repo::HistoryEntry e = drill_history(r, started());
  EXPECT_EQ(e.outcome, "failed");
  EXPECT_EQ(e.detail, r.failure);
  EXPECT_EQ(e.start_us, 1);
  EXPECT_EQ(
      e.extra,
      nlohmann::json(
          {{"rto_s", nullptr}, {"checks_passed", 0}, {"checks_failed", 0}, {"reason", r.failure}}));
}

TEST(DrillHistory, PassedDrillRecordsEveryStep) {
  DrillReport r;
  r.plan = DrillPlan{};
  r.plan->label = "20261206-061500";
  r.plan->target = "the end of the archive";
  r.scratch = "/var/tmp/d";
  r.scratch_kept = true;
  r.restored = basebackup::RestoreStats{};
  r.restored->bytes = 4096;
  r.restore_s = 1.5;
  r.verifybackup = "backup successfully verified";
  r.recovery_s = 3.0;
  r.checks = CheckOutcome{};
  r.checks->passed = 2;
  r.total_s = 4.0;
  r.target_rto = std::chrono::seconds(60);
  r.summary = "backup 20261206-061500: ...";
  const repo::HistoryEntry e = drill_history(r, started());
  EXPECT_EQ(e.outcome, "ok");
  EXPECT_EQ(e.detail, r.summary);
  EXPECT_EQ(e.bytes, 4096u);
  EXPECT_EQ(e.extra, nlohmann::json({{"rto_s", 60},
                                     {"checks_passed", 2},
                                     {"checks_failed", 0},
                                     {"label", "20261206-061500"},
                                     {"target", "the end of the archive"},
                                     {"restore_s", 1.5},
                                     {"verifybackup", "backup successfully verified"},
                                     {"recovery_s", 3.0},
                                     {"first_query_s", nullptr},
                                     {"total_s", 4.0},
                                     {"scratch", "/var/tmp/d"},
                                     {"reason", nullptr}}));
}

}  // namespace
}  // namespace walvault::ops
