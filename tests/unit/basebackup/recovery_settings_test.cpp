// The recovery settings by PostgreSQL version and target.
#include "basebackup/recovery_settings.h"

#include <gtest/gtest.h>

namespace walvault::basebackup {
namespace {

const RecoveryCommand kCommand{.restore_command = "walvault archive-get %f %p",
                               .target_action = "promote"};

std::vector<std::string> keys(const RecoverySettings& settings) {
  std::vector<std::string> out;
  for (const auto& [key, value] : settings) out.push_back(key);
  return out;
}

TEST(RecoverySettings, ByMajor) {
  const RecoveryTarget end;
  // 13: no recovery_init_sync_method, no recovery_prefetch.
  EXPECT_EQ(keys(recovery_settings(end, 1, kCommand, 130011, RecoveryPrefetch::kOff)),
            (std::vector<std::string>{"restore_command", "recovery_target_timeline"}));
  // 14: syncfs; recovery_prefetch does not exist yet.
  EXPECT_EQ(keys(recovery_settings(end, 1, kCommand, 140010, RecoveryPrefetch::kOff)),
            (std::vector<std::string>{"restore_command", "recovery_init_sync_method",
                                      "recovery_target_timeline"}));
  // 15 and later: recovery_prefetch when one is chosen.
  for (const int version : {150005, 160001, 170000, 180000}) {
    EXPECT_EQ(keys(recovery_settings(end, 1, kCommand, version, RecoveryPrefetch::kOff)),
              (std::vector<std::string>{"restore_command", "recovery_init_sync_method",
                                        "recovery_prefetch", "recovery_target_timeline"}))
        << version;
    EXPECT_EQ(keys(recovery_settings(end, 1, kCommand, version, RecoveryPrefetch::kDefault)),
              (std::vector<std::string>{"restore_command", "recovery_init_sync_method",
                                        "recovery_target_timeline"}))
        << version;
  }
  const RecoverySettings s = recovery_settings(end, 1, kCommand, 150005, RecoveryPrefetch::kOff);
  EXPECT_EQ(s[0].second, "walvault archive-get %f %p");
  EXPECT_EQ(s[1].second, "syncfs");
  EXPECT_EQ(s[2].second, "off");
  EXPECT_EQ(s[3].second, "latest");
  EXPECT_EQ(recovery_settings(end, 1, kCommand, 150005, RecoveryPrefetch::kOn)[2],
            (std::pair<std::string, std::string>{"recovery_prefetch", "on"}));
}

TEST(RecoverySettings, TargetAndAction) {
  RecoveryTarget lsn;
  lsn.kind = RecoveryTarget::Kind::kLsn;
  lsn.lsn = 0x3000028;
  lsn.timeline = 2;
  const RecoverySettings s =
      recovery_settings(lsn, 2, kCommand, 130011, RecoveryPrefetch::kDefault);
  EXPECT_EQ(s, (RecoverySettings{{"restore_command", "walvault archive-get %f %p"},
                                 {"recovery_target_lsn", "0/3000028"},
                                 {"recovery_target_timeline", "2"},
                                 {"recovery_target_action", "promote"}}));

  RecoveryTarget immediate;
  immediate.kind = RecoveryTarget::Kind::kImmediate;
  EXPECT_EQ(recovery_settings(immediate, 1, kCommand, 130011, RecoveryPrefetch::kDefault)[1],
            (std::pair<std::string, std::string>{"recovery_target", "immediate"}));
  RecoveryTarget name;
  name.kind = RecoveryTarget::Kind::kName;
  name.name = "p1";
  EXPECT_EQ(recovery_settings(name, 1, kCommand, 130011, RecoveryPrefetch::kDefault)[1],
            (std::pair<std::string, std::string>{"recovery_target_name", "p1"}));
  RecoveryTarget xid;
  xid.kind = RecoveryTarget::Kind::kXid;
  xid.xid = 777;
  EXPECT_EQ(recovery_settings(xid, 1, kCommand, 130011, RecoveryPrefetch::kDefault)[1],
            (std::pair<std::string, std::string>{"recovery_target_xid", "777"}));
}

}  // namespace
}  // namespace walvault::basebackup
