// The recovery target from the command line's text, and back to words.
#include "basebackup/restore_target.h"

#include <gtest/gtest.h>

#include "support/error_code.h"

namespace walvault::basebackup {
namespace {

using Kind = RecoveryTarget::Kind;

std::optional<ErrorCode> refusal(const TargetText& text) {
  return testing::error_code_of([&] { parse_target(text); });
}

TEST(RestoreTarget, NothingGivenIsTheEndOfTheArchiveOnTheLatestTimeline) {
  const RecoveryTarget t = parse_target({});
  EXPECT_EQ(t.kind, Kind::kEnd);
  EXPECT_FALSE(t.timeline);
  EXPECT_FALSE(parse_target({.timeline = "latest"}).timeline);
  EXPECT_EQ(describe_target(t), "the end of the archive");
}

TEST(RestoreTarget, EachKind) {
  const RecoveryTarget time = parse_target({.time = "2026-11-26 10:00:00+00"});
  EXPECT_EQ(time.kind, Kind::kTime);
  EXPECT_EQ(describe_target(time), "time 2026-11-26 10:00:00.000000+00");

  const RecoveryTarget lsn = parse_target({.lsn = "0/3000028"});
  EXPECT_EQ(lsn.kind, Kind::kLsn);
  EXPECT_EQ(lsn.lsn, 0x3000028u);
  EXPECT_EQ(describe_target(lsn), "LSN 0/3000028");

  const RecoveryTarget xid = parse_target({.xid = "4294967295"});
  EXPECT_EQ(xid.kind, Kind::kXid);
  EXPECT_EQ(xid.xid, 4294967295u);
  EXPECT_EQ(describe_target(xid), "transaction 4294967295");

  const RecoveryTarget name = parse_target({.name = "before-upgrade"});
  EXPECT_EQ(name.kind, Kind::kName);
  EXPECT_EQ(describe_target(name), "restore point 'before-upgrade'");

  const RecoveryTarget immediate = parse_target({.immediate = true});
  EXPECT_EQ(immediate.kind, Kind::kImmediate);
  EXPECT_EQ(describe_target(immediate), "the end of the backup (immediate)");
}

TEST(RestoreTarget, TimelineNumber) {
  EXPECT_EQ(parse_target({.timeline = "3"}).timeline, pg::TimeLineId{3});
  EXPECT_EQ(refusal({.timeline = "0"}), ErrorCode::kUsage);
  EXPECT_EQ(refusal({.timeline = "3x"}), ErrorCode::kUsage);
  EXPECT_EQ(refusal({.timeline = "4294967296"}), ErrorCode::kUsage);
  EXPECT_EQ(refusal({.timeline = "newest"}), ErrorCode::kUsage);
}

TEST(RestoreTarget, BadValuesAreUsageErrors) {
  EXPECT_EQ(refusal({.time = "yesterday"}), ErrorCode::kUsage);
  EXPECT_EQ(refusal({.lsn = "3000028"}), ErrorCode::kUsage);
  EXPECT_EQ(refusal({.xid = "0"}), ErrorCode::kUsage);
  EXPECT_EQ(refusal({.xid = "12a"}), ErrorCode::kUsage);
  EXPECT_EQ(refusal({.xid = "4294967296"}), ErrorCode::kUsage);
}

TEST(RestoreTarget, AtMostOneKind) {
  try {
    parse_target({.lsn = "0/3000028", .name = "p"});
    FAIL() << "two kinds accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUsage);
    EXPECT_STREQ(e.what(),
                 "give at most one of --target-time, --target-lsn, --target-xid, --target-name, "
                 "--target-immediate");
  }
  EXPECT_EQ(refusal({.xid = "7", .immediate = true}), ErrorCode::kUsage);
}

TEST(RestoreTarget, Action) {
  for (const char* action : {"pause", "promote", "shutdown"})
    EXPECT_EQ(testing::error_code_of([&] { check_target_action(action); }), std::nullopt);
  EXPECT_EQ(testing::error_code_of([] { check_target_action("resume"); }), ErrorCode::kUsage);
}

}  // namespace
}  // namespace walvault::basebackup
