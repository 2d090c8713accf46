// Snapshot records: round trip, the ways a snapshot is named on the command
// line, clashing labels, and records a hostile writer could leave.
#include "files/snapshot_record.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "store/mem_store.h"
#include "support/error_code.h"

namespace walvault::files {
namespace {

constexpr std::int64_t kT0 = 1795000000000000;  // 2026-11-18 11:06:40 UTC, in µs
constexpr std::int64_t kHour = 3'600'000'000;

struct Repo {
  Repo() : store(std::make_shared<store::MemStore>()) {
    repo::Repository::init(*store, {});
    repo = repo::Repository::open(store, {});
  }
  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<repo::Repository> repo;
};

SnapshotRecord record(const std::string& volume, std::int64_t start_us) {
  SnapshotRecord r;
  r.volume = volume;
  r.start_us = start_us;
  r.end_us = start_us + 1000;
  r.host = "db1";
  r.paths = {"/srv/" + volume};
  r.root.fill(7);
  r.root_node.name = ".";
  r.root_node.type = NodeType::kDirectory;
  r.root_node.mode = 0755;
  r.files = 3;
  r.warnings = {"'a': vanished (left out)"};
  return r;
}

TEST(SnapshotRecordTest, RoundTripsAndGetsAFreeLabel) {
  Repo r;
  const SnapshotRecord a = write_snapshot_record(*r.repo, record("app_data", kT0));
  const SnapshotRecord b = write_snapshot_record(*r.repo, record("app_data", kT0));
  EXPECT_EQ(a.label, "20261118-110640");
  EXPECT_EQ(b.label, "20261118-110640-2");
  const auto all = list_snapshots(*r.repo);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(snapshot_to_json(all[0]), snapshot_to_json(a));
  EXPECT_EQ(all[0].warning_count, 1u);
  EXPECT_NE(snapshot_id(a), snapshot_id(b));
  EXPECT_EQ(snapshot_id(a).size(), 12u);
}

TEST(SnapshotRecordTest, FindsByIdLatestAndVolumeAtTime) {
  Repo r;
  const SnapshotRecord a1 = write_snapshot_record(*r.repo, record("app_data", kT0));
  const SnapshotRecord a2 = write_snapshot_record(*r.repo, record("app_data", kT0 + 24 * kHour));
  const SnapshotRecord s1 = write_snapshot_record(*r.repo, record("scripts", kT0 + kHour));
  EXPECT_EQ(find_snapshot(*r.repo, snapshot_id(a1)).label, a1.label);
  EXPECT_EQ(find_snapshot(*r.repo, snapshot_id(a1).substr(0, 6)).label, a1.label);
  EXPECT_EQ(find_snapshot(*r.repo, "latest").volume, "app_data");
  EXPECT_EQ(find_snapshot(*r.repo, "latest", "scripts").label, s1.label);
  EXPECT_EQ(find_snapshot(*r.repo, "app_data@2026-11-18 12:00:00+00").label, a1.label);
  EXPECT_EQ(find_snapshot(*r.repo, "app_data@2026-11-20 00:00:00+00").label, a2.label);
  auto code = [&](std::string_view spec) {
    return testing::error_code_of([&] { find_snapshot(*r.repo, spec); });
  };
  EXPECT_EQ(code("app_data@2026-11-01 00:00:00+00"), ErrorCode::kNotFound);
  EXPECT_EQ(code("ffffffffffff"), ErrorCode::kNotFound);
  EXPECT_EQ(code("../x@2026-11-20"), ErrorCode::kUsage);
  EXPECT_EQ(code("app_data@yesterday-ish"), ErrorCode::kUsage);
  EXPECT_EQ(code("zz"), ErrorCode::kUsage);
}

TEST(SnapshotRecordTest, HostileRecordsAreCorruption) {
  Repo r;
  // A record stored under one name that claims another snapshot's.
  SnapshotRecord other = record("app_data", kT0);
  other.label = "20261118-110640";
  r.repo->put_object("snapshots/scripts/20261118-110640", as_bytes(snapshot_to_json(other)));
  EXPECT_EQ(testing::error_code_of([&] { list_snapshots(*r.repo); }), ErrorCode::kCorruption);
  for (const std::string& text :
       {std::string("{}"), std::string("not json"), snapshot_to_json(record("../../etc", kT0)),
        std::string(
            R"({"volume":"v","label":"l","tag":"","start_time_us":1,"end_time_us":1,"host":"",
           "paths":[],"root":"zz","root_node":{}})")})
    EXPECT_EQ(testing::error_code_of([&] { snapshot_from_json(text, "snapshots/x/y"); }),
              ErrorCode::kCorruption)
        << text;
  EXPECT_EQ(
      testing::error_code_of([&] { write_snapshot_record(*r.repo, record("bad/name", kT0)); }),
      ErrorCode::kUsage);
}

}  // namespace
}  // namespace walvault::files
