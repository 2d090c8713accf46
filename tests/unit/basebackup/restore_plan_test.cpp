// The restore planner over synthetic archives: which backup, which WAL, and
// the refusals (with the reachable window) when a target cannot be reached.
#include "basebackup/restore_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <stdexcept>

#include "core/error.h"
#include "core/time_util.h"
#include "repo/cluster.h"
#include "store/mem_store.h"
#include "support/synthetic_meta.h"

namespace walvault::basebackup {
namespace {

using Kind = RecoveryTarget::Kind;
using repo::SegmentMeta;

constexpr std::uint32_t kSegSize = 16u << 20;
constexpr std::int64_t kT0 = 1795000000000000;  // 2026-11-18, Unix µs
constexpr std::int64_t kMinute = 60'000'000;

pg::Lsn lsn_at(std::uint64_t segno, std::uint64_t offset = 0) { return segno * kSegSize + offset; }

std::string seg_name(pg::TimeLineId tli, std::uint64_t segno) {
  return pg::segment_file_name(tli, segno, kSegSize);
}

// Segment `segno` of timeline `tli`: one commit at kT0 + segno minutes by
// xid 100 * segno, in its xid index.
SegmentMeta segment(pg::TimeLineId tli, std::uint64_t segno) {
  SegmentMeta m = walvault::testing::synthetic_segment_meta(
      tli, segno, kSegSize, kT0 + static_cast<std::int64_t>(segno) * kMinute);
  m.pg_major = 17;
  m.summary.first_xact_xid = static_cast<std::uint32_t>(100 * segno);
  m.summary.last_xact_xid = m.summary.first_xact_xid;
  m.summary.xids_indexed = true;
  m.summary.commit_xids = pg::XidSet::from_xids({*m.summary.first_xact_xid});
  return m;
}

BackupRecord backup(const std::string& label, pg::TimeLineId tli, pg::Lsn start, pg::Lsn stop,
                    std::int64_t stop_time) {
  BackupRecord b;
  b.label = label;
  b.source = "replication";
  b.start_lsn = start;
  b.stop_lsn = stop;
  b.start_timeline = b.stop_timeline = tli;
  b.start_time_us = stop_time - kMinute / 2;
  b.stop_time_us = stop_time;
  b.wal_segment_size = kSegSize;
  b.chunk_size = 1u << 20;
  b.pg_version_num = 170002;
  b.system_id = 42;
  return b;
}

void add_restore_point(ArchiveView& view, pg::TimeLineId tli, const std::string& name,
                       pg::Lsn lsn) {
  std::uint64_t segno = lsn / kSegSize;
  for (auto& m : view.segments)
    if (m.timeline == tli && m.segno == segno)
      m.summary.restore_points.push_back(
          {name, kT0 + static_cast<std::int64_t>(segno) * kMinute + 1, lsn});
}

void remove_segment(ArchiveView& view, pg::TimeLineId tli, std::uint64_t segno) {
  std::erase_if(view.segments,
                [&](const SegmentMeta& m) { return m.timeline == tli && m.segno == segno; });
}

// Timeline 1, segments 1..10. B1 covers segment 2 (ends 2 min 30 s after
// kT0), B2 segment 6 (ends 6 min 30 s after kT0).
ArchiveView one_timeline() {
  ArchiveView v;
  v.wal_segment_size = kSegSize;
  // Out of order on purpose (segments and backups): the planner must not rely on any.
  for (std::uint64_t s = 10; s >= 1; --s) v.segments.push_back(segment(1, s));
  v.backups.push_back(
      backup("B2", 1, lsn_at(6, 0x28), lsn_at(6, 0x2000), kT0 + 6 * kMinute + kMinute / 2));
  v.backups.push_back(
      backup("B1", 1, lsn_at(2, 0x28), lsn_at(2, 0x1000), kT0 + 2 * kMinute + kMinute / 2));
  return v;
}

RecoveryTarget time_target(std::int64_t t) {
  RecoveryTarget r;
  r.kind = Kind::kTime;
  r.time_us = t;
  return r;
}
RecoveryTarget lsn_target(pg::Lsn lsn) {
  RecoveryTarget r;
  r.kind = Kind::kLsn;
  r.lsn = lsn;
  return r;
}
RecoveryTarget name_target(const std::string& name) {
  RecoveryTarget r;
  r.kind = Kind::kName;
  r.name = name;
  return r;
}
RecoveryTarget kind_target(Kind kind) {
  RecoveryTarget r;
  r.kind = kind;
  return r;
}

std::vector<std::string> names(pg::TimeLineId tli, std::uint64_t first, std::uint64_t last) {
  std::vector<std::string> out;
  for (std::uint64_t s = first; s <= last; ++s) out.push_back(seg_name(tli, s));
  return out;
}
std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The message of the kNotFound error `action` throws ("" and a failure otherwise).
std::string refusal(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "the plan was not refused";
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ParseHistory, ReadsLinesSkippingCommentsAndBlanks) {
  auto h = parse_history(
      "# a comment\n"
      "1\t0/3000000\tno recovery target specified\n"
      "\n"
      "  \n"
      "2\t0/5003000\tbefore 2026-11-26 10:00:00+00\r\n"
      "4\t1/A0000028\n",
      "wal/file/00000005.history");
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].tli, 1u);
  EXPECT_EQ(h[0].switch_lsn, 0x3000000u);
  EXPECT_EQ(h[1].tli, 2u);
  EXPECT_EQ(h[1].switch_lsn, 0x5003000u);
  EXPECT_EQ(h[2].tli, 4u);
  EXPECT_EQ(h[2].switch_lsn, 0x1A0000028u);
  EXPECT_TRUE(parse_history("", "x").empty());
}

TEST(ParseHistory, RefusesMalformedLinesNamingTheObject) {
  for (const char* text : {"1\n", "x\t0/3000000\n", "1\t0/30000G0\treason\n", "0\t0/1\n",
                           "2\t0/5000000\n1\t0/6000000\n", "1\t0/5000000\n2\t0/4000000\n"}) {
    try {
      parse_history(text, "wal/file/00000003.history");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      EXPECT_TRUE(contains(e.what(), "wal/file/00000003.history")) << e.what();
    }
  }
}

TEST(PlanRestore, TimeChoosesNewestBackupEndingBeforeAndStopsAtFirstLaterCommit) {
  ArchiveView v = one_timeline();
  auto p = plan_restore(v, time_target(kT0 + 7 * kMinute + 10'000'000), std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");
  EXPECT_EQ(p.target_timeline, 1u);
  EXPECT_EQ(p.wal_segments, names(1, 6, 8));
  EXPECT_EQ(p.wal_bytes, 3ull * kSegSize);
  EXPECT_TRUE(contains(p.stop_reason, seg_name(1, 8))) << p.stop_reason;

  // B2 ends after this target: B1, replayed to the first commit at or after it.
  p = plan_restore(v, time_target(kT0 + 6 * kMinute + 10'000'000), std::nullopt);
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 7));

  // A commit exactly at the target counts.
  p = plan_restore(v, time_target(kT0 + 4 * kMinute), std::nullopt);
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 4));
}

TEST(PlanRestore, TimeBeforeEveryBackupIsRefused) {
  ArchiveView v = one_timeline();
  std::string msg = refusal([&] { plan_restore(v, time_target(kT0 + kMinute), std::nullopt); });
  EXPECT_TRUE(contains(msg, "no backup ends at or before " + format_time_us(kT0 + kMinute))) << msg;
  EXPECT_TRUE(contains(msg, "; reachable: earliest consistent")) << msg;
}

TEST(PlanRestore, TimeBeyondTheLastCommitIsRefusedWithTheWindow) {
  ArchiveView v = one_timeline();
  std::int64_t target = kT0 + 20 * kMinute;
  std::string msg = refusal([&] { plan_restore(v, time_target(target), std::nullopt); });
  EXPECT_TRUE(contains(msg, "no commit at or after " + format_time_us(target) +
                                " in the archive (latest archived commit " +
                                format_time_us(kT0 + 10 * kMinute) + ")"))
      << msg;
  std::string window =
      "reachable: earliest consistent " + format_time_us(kT0 + 2 * kMinute + kMinute / 2) + " (" +
      pg::format_lsn(lsn_at(2, 0x1000)) + "), latest commit " + format_time_us(kT0 + 10 * kMinute) +
      ", WAL to " + pg::format_lsn(lsn_at(11) - 0x100) + " on timeline 1";
  EXPECT_TRUE(contains(msg, window)) << msg;
}

TEST(PlanRestore, LsnChoosesNewestBackupEndingAtOrBefore) {
  ArchiveView v = one_timeline();
  auto p = plan_restore(v, lsn_target(lsn_at(7, 0x500)), std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");
  EXPECT_EQ(p.wal_segments, names(1, 6, 7));

  // Inside B2 (before its stop): only B1 can get there.
  p = plan_restore(v, lsn_target(lsn_at(6, 0x1000)), std::nullopt);
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 6));

  // Exactly at the stop LSN is fine.
  p = plan_restore(v, lsn_target(lsn_at(6, 0x2000)), std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");

  std::string msg = refusal([&] { plan_restore(v, lsn_target(lsn_at(1)), std::nullopt); });
  EXPECT_TRUE(contains(msg, "no backup ends at or before " + pg::format_lsn(lsn_at(1)))) << msg;

  msg = refusal([&] { plan_restore(v, lsn_target(lsn_at(12, 0x10)), std::nullopt); });
  EXPECT_TRUE(contains(msg, "LSN " + pg::format_lsn(lsn_at(12, 0x10)) + " is beyond the archive"))
      << msg;
}

TEST(PlanRestore, NameStopsAtTheRestorePointAfterTheBackup) {
  ArchiveView v = one_timeline();
  add_restore_point(v, 1, "before_migration", lsn_at(4, 0x800));
  add_restore_point(v, 1, "nightly", lsn_at(9, 0x800));
  auto p = plan_restore(v, name_target("before_migration"), std::nullopt);
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 4));
  EXPECT_TRUE(contains(p.stop_reason, "before_migration")) << p.stop_reason;

  p = plan_restore(v, name_target("nightly"), std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");
  EXPECT_EQ(p.wal_segments, names(1, 6, 9));

  std::string msg = refusal([&] { plan_restore(v, name_target("x"), std::nullopt); });
  EXPECT_TRUE(contains(msg, "restore point 'x' is not in the archive; reachable: ")) << msg;
  EXPECT_TRUE(contains(msg, "restore points: before_migration (")) << msg;
}

TEST(PlanRestore, RestorePointBeforeTheBackupStopIsNotUsable) {
  ArchiveView v = one_timeline();
  // Inside B2 (between its start and stop): PostgreSQL would stop there
  // before B2 is consistent, so only B1 can reach it.
  add_restore_point(v, 1, "inside", lsn_at(6, 0x1000));
  auto p = plan_restore(v, name_target("inside"), std::nullopt);
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 6));

  std::string msg = refusal([&] { plan_restore(v, name_target("inside"), "B2"); });
  EXPECT_TRUE(contains(msg, "backup B2 cannot reach the target")) << msg;

  // Inside B1, before B2: no backup ends before it.
  add_restore_point(v, 1, "early", lsn_at(2, 0x500));
  msg = refusal([&] { plan_restore(v, name_target("early"), std::nullopt); });
  EXPECT_TRUE(contains(msg, "restore point 'early'")) << msg;
  EXPECT_TRUE(contains(msg, "is not after the end of any backup")) << msg;
  // Not listed as reachable either.
  EXPECT_FALSE(contains(msg, "early (")) << msg;
}

TEST(PlanRestore, ImmediateAndEnd) {
  ArchiveView v = one_timeline();
  auto p = plan_restore(v, kind_target(Kind::kImmediate), std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");
  EXPECT_EQ(p.wal_segments, names(1, 6, 6));
  EXPECT_EQ(p.wal_bytes, kSegSize);

  p = plan_restore(v, kind_target(Kind::kEnd), std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");
  EXPECT_EQ(p.wal_segments, names(1, 6, 10));
  EXPECT_TRUE(contains(p.stop_reason, "end of archive")) << p.stop_reason;

  // A stop LSN on a segment boundary ends in the previous segment.
  v.backups.push_back(backup("B3", 1, lsn_at(8, 0x28), lsn_at(9), kT0 + 9 * kMinute));
  p = plan_restore(v, kind_target(Kind::kImmediate), std::nullopt);
  EXPECT_EQ(p.backup.label, "B3");
  EXPECT_EQ(p.wal_segments, names(1, 8, 8));
}

TEST(PlanRestore, GapIsRefusedNamingTheSegment) {
  ArchiveView v = one_timeline();
  remove_segment(v, 1, 7);
  std::string msg = refusal([&] { plan_restore(v, time_target(kT0 + 9 * kMinute), std::nullopt); });
  EXPECT_TRUE(contains(msg, "WAL segment 000000010000000000000007 is missing (timeline 1)")) << msg;
  msg = refusal([&] { plan_restore(v, lsn_target(lsn_at(8)), std::nullopt); });
  EXPECT_TRUE(contains(msg, "WAL segment 000000010000000000000007 is missing")) << msg;

  // To the end: the last contiguous segment, and the reason says why.
  auto p = plan_restore(v, kind_target(Kind::kEnd), std::nullopt);
  EXPECT_EQ(p.wal_segments, names(1, 6, 6));
  EXPECT_TRUE(contains(p.stop_reason, "000000010000000000000007 is missing")) << p.stop_reason;

  // A gap inside a backup's own WAL.
  remove_segment(v, 1, 2);
  msg = refusal([&] { plan_restore(v, kind_target(Kind::kImmediate), "B1"); });
  EXPECT_TRUE(contains(msg, "WAL segment 000000010000000000000002 is missing (timeline 1)")) << msg;
}

TEST(PlanRestore, SetForcesTheBackup) {
  ArchiveView v = one_timeline();
  auto p = plan_restore(v, kind_target(Kind::kEnd), "B1");
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 10));

  p = plan_restore(v, time_target(kT0 + 8 * kMinute), "B1");
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 8));

  std::string msg = refusal([&] { plan_restore(v, time_target(kT0 + 4 * kMinute), "B2"); });
  EXPECT_TRUE(contains(msg, "backup B2 cannot reach the target: it ends at " +
                                format_time_us(kT0 + 6 * kMinute + kMinute / 2)))
      << msg;
  msg = refusal([&] { plan_restore(v, lsn_target(lsn_at(3)), "B2"); });
  EXPECT_TRUE(contains(msg, "backup B2 cannot reach the target")) << msg;
  msg = refusal([&] { plan_restore(v, kind_target(Kind::kEnd), "nope"); });
  EXPECT_TRUE(contains(msg, "backup nope is not in the repository")) << msg;
}

RecoveryTarget xid_target(std::uint32_t xid) {
  RecoveryTarget r;
  r.kind = Kind::kXid;
  r.xid = xid;
  return r;
}

SegmentMeta& segment_of(ArchiveView& view, pg::TimeLineId tli, std::uint64_t segno) {
  for (auto& m : view.segments)
    if (m.timeline == tli && m.segno == segno) return m;
  throw std::logic_error("no such segment");
}

// Issue 13: an xid that committed between the two backups. Backup B2 ends
// after it, so recovery from B2 would never meet it; B1 must be chosen.
TEST(PlanRestore, XidCommittedBetweenTwoBackupsChoosesTheOlder) {
  ArchiveView v = one_timeline();
  auto p = plan_restore(v, xid_target(400), std::nullopt);  // commits in segment 4
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 4));
  EXPECT_EQ(p.stop_reason, "xid 400 commits in " + seg_name(1, 4));
}

TEST(PlanRestore, XidCommittedAfterBothBackupsChoosesTheNewest) {
  ArchiveView v = one_timeline();
  auto p = plan_restore(v, xid_target(800), std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");
  EXPECT_EQ(p.wal_segments, names(1, 6, 8));
  EXPECT_EQ(p.stop_reason, "xid 800 commits in " + seg_name(1, 8));
  // In B2's stop segment the commit may precede B2's end: B1 replays past it.
  p = plan_restore(v, xid_target(600), std::nullopt);
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 6));
}

TEST(PlanRestore, XidThatAbortedStopsAtTheAbort) {
  ArchiveView v = one_timeline();
  segment_of(v, 1, 7).summary.abort_xids = pg::XidSet::from_xids({650, 651, 652});
  auto p = plan_restore(v, xid_target(651), std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");
  EXPECT_EQ(p.wal_segments, names(1, 6, 7));
  EXPECT_EQ(p.stop_reason, "xid 651 aborts in " + seg_name(1, 7));
}

TEST(PlanRestore, XidThatNeverEndsIsRefused) {
  ArchiveView v = one_timeline();
  // 555: assigned (between 500 and 600) but still open when the WAL ends, a
  // subtransaction, or never assigned at all; 5000 is beyond the archive.
  for (std::uint32_t xid : {555u, 5000u}) {
    std::string msg = refusal([&] { plan_restore(v, xid_target(xid), std::nullopt); });
    EXPECT_TRUE(msg.starts_with("xid " + std::to_string(xid) +
                                " does not commit or abort in the archive on timeline 1"))
        << msg;
    EXPECT_TRUE(contains(msg, "; reachable: ")) << msg;
  }
}

TEST(PlanRestore, XidCommittedBeforeEveryBackupIsRefused) {
  ArchiveView v = one_timeline();
  // Segment 1 is before B1's start, segment 2 is B1's own WAL.
  for (std::uint64_t segno : {1u, 2u}) {
    const auto xid = static_cast<std::uint32_t>(100 * segno);
    std::string msg = refusal([&] { plan_restore(v, xid_target(xid), std::nullopt); });
    EXPECT_TRUE(contains(msg, "xid " + std::to_string(xid) + " commits in " + seg_name(1, segno) +
                                  ", not after the end of any backup on timeline 1 (the oldest, "
                                  "B1, ends in " +
                                  seg_name(1, 2) + ")"))
        << msg;
  }
}

TEST(PlanRestore, XidRecordCrossingIntoTheNextSegment) {
  ArchiveView v = one_timeline();
  segment_of(v, 1, 8).summary.crossing_xact_xid = 850;
  auto p = plan_restore(v, xid_target(850), std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");
  EXPECT_EQ(p.wal_segments, names(1, 6, 9));
  EXPECT_EQ(p.stop_reason, "xid 850 commits or aborts in " + seg_name(1, 8) +
                               " (the record continues into " + seg_name(1, 9) + ")");
  // The next segment must be archived.
  remove_segment(v, 1, 9);
  std::string msg = refusal([&] { plan_restore(v, xid_target(850), std::nullopt); });
  EXPECT_TRUE(contains(msg, seg_name(1, 9) + " is missing")) << msg;
}

TEST(PlanRestore, XidAfterAGapIsRefusedNamingTheSegment) {
  ArchiveView v = one_timeline();
  remove_segment(v, 1, 7);
  std::string msg = refusal([&] { plan_restore(v, xid_target(800), std::nullopt); });
  EXPECT_TRUE(contains(msg, "WAL segment " + seg_name(1, 7) + " is missing")) << msg;
}

TEST(PlanRestore, XidSetAndWraparound) {
  ArchiveView v = one_timeline();
  std::string msg = refusal([&] { plan_restore(v, xid_target(400), "B2"); });
  EXPECT_TRUE(contains(msg, "backup B2 cannot reach the target: xid 400 commits in " +
                                seg_name(1, 4) + ", before its start in " + seg_name(1, 6)))
      << msg;
  EXPECT_EQ(plan_restore(v, xid_target(800), "B1").wal_segments, names(1, 2, 8));
  // After a wraparound the same 32-bit xid ends again: recovery stops at the
  // first end it meets from the backup's start, as PostgreSQL does.
  segment_of(v, 1, 9).summary.commit_xids = pg::XidSet::from_xids({300, 900});
  auto p = plan_restore(v, xid_target(300), std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");
  EXPECT_EQ(p.wal_segments, names(1, 6, 9));
  EXPECT_EQ(plan_restore(v, xid_target(300), "B1").wal_segments, names(1, 2, 3));
}

// Segments archived by a walvault without the xid index.
TEST(PlanRestore, XidInSegmentsWithoutAnIndexIsNotProven) {
  ArchiveView v = one_timeline();
  for (std::uint64_t s = 1; s <= 5; ++s) {
    auto& m = segment_of(v, 1, s);
    m.summary.xids_indexed = false;
    m.summary.commit_xids = {};
  }
  // Indexed segments still answer for themselves.
  EXPECT_EQ(plan_restore(v, xid_target(800), std::nullopt).backup.label, "B2");
  // 300 is in no index: only a backup ending before the last unindexed
  // segment (5) can reach it, and the plan says it is not proven.
  auto p = plan_restore(v, xid_target(300), std::nullopt);
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 10));
  EXPECT_EQ(p.stop_reason, "xid 300 is in no xid index; 5 segments from " + seg_name(1, 1) +
                               " to " + seg_name(1, 5) +
                               " were archived by an older walvault without an xid index, so "
                               "that it ends after backup B1 is not proven: WAL to the end of "
                               "the archive, " +
                               seg_name(1, 10) +
                               " (recovery fails at the end if it does not; --set chooses an "
                               "older backup)");
  // No unindexed segment after any backup's end: refused.
  for (std::uint64_t s = 3; s <= 5; ++s) segment_of(v, 1, s).summary.xids_indexed = true;
  std::string msg = refusal([&] { plan_restore(v, xid_target(300), std::nullopt); });
  EXPECT_TRUE(contains(msg, "xid 300 is in no xid index on timeline 1 and 2 segments from " +
                                seg_name(1, 1) + " to " + seg_name(1, 2) +
                                " were archived by an older walvault without an xid index, none "
                                "after the end of any backup"))
      << msg;
}

TEST(PlanRestore, NothingToRestore) {
  ArchiveView v;
  std::string msg = refusal([&] { plan_restore(v, kind_target(Kind::kEnd), std::nullopt); });
  EXPECT_EQ(msg, "no backup in the repository; reachable: nothing: no backup in the repository");
  EXPECT_EQ(reachable_window(v, std::nullopt).to_string(), "nothing: no backup in the repository");
  // A backup whose WAL is not archived yet.
  v.backups.push_back(backup("B1", 1, lsn_at(2, 0x28), lsn_at(2, 0x1000), kT0));
  msg = refusal([&] { plan_restore(v, kind_target(Kind::kEnd), std::nullopt); });
  EXPECT_TRUE(contains(msg, "WAL segment 000000010000000000000002 is missing (timeline 1)")) << msg;
  EXPECT_TRUE(contains(msg, "reachable: nothing: ")) << msg;
}

// Timeline 1: segments 1..6 (it went on past the switch); timeline 2 branched
// at 0/5003000 and holds 5..9. B1 (tli 1) ends before the switch, B2 (tli 1)
// after it, B3 is on timeline 2.
ArchiveView two_timelines() {
  ArchiveView v;
  v.wal_segment_size = kSegSize;
  for (std::uint64_t s = 9; s >= 5; --s) v.segments.push_back(segment(2, s));
  for (std::uint64_t s = 6; s >= 1; --s) v.segments.push_back(segment(1, s));
  v.histories[2] = parse_history("1\t0/5003000\tno recovery target specified\n", "h");
  v.backups.push_back(
      backup("B1", 1, lsn_at(2, 0x28), lsn_at(2, 0x1000), kT0 + 2 * kMinute + kMinute / 2));
  v.backups.push_back(
      backup("B2", 1, lsn_at(5, 0x28), lsn_at(5, 0x4000), kT0 + 5 * kMinute + kMinute / 2));
  v.backups.push_back(
      backup("B3", 2, lsn_at(7, 0x28), lsn_at(7, 0x1000), kT0 + 7 * kMinute + kMinute / 2));
  return v;
}

TEST(PlanRestore, TimelineSwitchReadsTheChildFromItsSwitchSegment) {
  ArchiveView v = two_timelines();
  RecoveryTarget t = kind_target(Kind::kEnd);
  t.timeline = 2;
  auto p = plan_restore(v, t, "B1");
  EXPECT_EQ(p.target_timeline, 2u);
  EXPECT_EQ(p.wal_segments, concat(names(1, 2, 4), names(2, 5, 9)));

  // B2 ends on timeline 1 after timeline 2 branched off.
  std::string msg = refusal([&] { plan_restore(v, t, "B2"); });
  EXPECT_TRUE(contains(msg, "backup B2 cannot reach timeline 2")) << msg;
  EXPECT_TRUE(contains(msg, "after timeline 2 branched off at 0/5003000")) << msg;

  // Newest usable for an LSN on timeline 2 before B3's end: B1, not B2.
  RecoveryTarget l = lsn_target(lsn_at(6, 0x10));
  p = plan_restore(v, l, std::nullopt);
  EXPECT_EQ(p.target_timeline, 2u);
  EXPECT_EQ(p.backup.label, "B1");
  EXPECT_EQ(p.wal_segments, concat(names(1, 2, 4), names(2, 5, 6)));

  // On timeline 1 itself, B2 is fine and reads timeline 1's own segments.
  t.timeline = 1;
  p = plan_restore(v, t, std::nullopt);
  EXPECT_EQ(p.backup.label, "B2");
  EXPECT_EQ(p.wal_segments, names(1, 5, 6));

  // The child's switch segment is required (the parent's does not do).
  remove_segment(v, 2, 5);
  t.timeline = 2;
  p = plan_restore(v, t, "B1");
  EXPECT_EQ(p.wal_segments, names(1, 2, 4));
  EXPECT_TRUE(contains(p.stop_reason, "WAL segment 000000020000000000000005 is missing"))
      << p.stop_reason;
  l.timeline = 2;
  msg = refusal([&] { plan_restore(v, l, std::nullopt); });
  EXPECT_TRUE(contains(msg, "WAL segment 000000020000000000000005 is missing (timeline 2)")) << msg;
}

TEST(PlanRestore, LatestTimeline) {
  ArchiveView v = two_timelines();
  auto p = plan_restore(v, kind_target(Kind::kEnd), std::nullopt);
  EXPECT_EQ(p.target_timeline, 2u);
  EXPECT_EQ(p.backup.label, "B3");
  EXPECT_EQ(p.wal_segments, names(2, 7, 9));

  // Forcing B2 (after the switch on timeline 1): latest is timeline 1.
  p = plan_restore(v, kind_target(Kind::kEnd), "B2");
  EXPECT_EQ(p.target_timeline, 1u);
  EXPECT_EQ(p.wal_segments, names(1, 5, 6));

  // Timeline 3 branched from 1 before every backup ended: none can reach it,
  // so "latest" is timeline 2.
  v.histories[3] = parse_history("1\t0/1800000\tno recovery target specified\n", "h");
  for (std::uint64_t s = 1; s <= 3; ++s) v.segments.push_back(segment(3, s));
  p = plan_restore(v, kind_target(Kind::kEnd), std::nullopt);
  EXPECT_EQ(p.target_timeline, 2u);
  EXPECT_EQ(p.backup.label, "B3");
  EXPECT_EQ(reachable_window(v, 3).to_string(), "nothing: no backup on the history of timeline 3");
  RecoveryTarget t = kind_target(Kind::kEnd);
  t.timeline = 3;
  std::string msg = refusal([&] { plan_restore(v, t, std::nullopt); });
  EXPECT_TRUE(contains(msg, "no backup is on the history of timeline 3")) << msg;

  t.timeline = 4;
  msg = refusal([&] { plan_restore(v, t, std::nullopt); });
  EXPECT_TRUE(contains(msg, "timeline 4 is not in the archive; reachable: ")) << msg;
}

TEST(ReachableWindow, FollowsTheTimelinePath) {
  ArchiveView v = two_timelines();
  add_restore_point(v, 2, "after_switch", lsn_at(8, 0x10));
  add_restore_point(v, 1, "parent_only", lsn_at(6, 0x10));  // past the switch on tli 1
  ReachableWindow w = reachable_window(v, std::nullopt);
  EXPECT_EQ(w.timeline, 2u);
  EXPECT_EQ(w.earliest_consistent_lsn, lsn_at(2, 0x1000));
  EXPECT_EQ(w.earliest_consistent_us, kT0 + 2 * kMinute + kMinute / 2);
  EXPECT_EQ(w.latest_commit_us, kT0 + 9 * kMinute);
  EXPECT_EQ(w.latest_lsn, lsn_at(10) - 0x100);
  ASSERT_EQ(w.restore_points.size(), 1u);
  EXPECT_EQ(w.restore_points[0].name, "after_switch");
  EXPECT_TRUE(contains(w.to_string(), "on timeline 2, restore points: after_switch (" +
                                          format_time_us(kT0 + 8 * kMinute + 1) + ")"))
      << w.to_string();

  ReachableWindow w1 = reachable_window(v, 1);
  EXPECT_EQ(w1.latest_lsn, lsn_at(7) - 0x100);
  ASSERT_EQ(w1.restore_points.size(), 1u);
  EXPECT_EQ(w1.restore_points[0].name, "parent_only");
}

TEST(ReachableWindow, ANewerBackupBridgesAGap) {
  ArchiveView v = one_timeline();
  remove_segment(v, 1, 4);  // B1 reaches 3, B2 (from 6) reaches 10
  ReachableWindow w = reachable_window(v, std::nullopt);
  EXPECT_EQ(w.earliest_consistent_lsn, lsn_at(2, 0x1000));
  EXPECT_EQ(w.latest_commit_us, kT0 + 10 * kMinute);
  EXPECT_EQ(w.latest_lsn, lsn_at(11) - 0x100);
}

TEST(LoadArchiveView, ReadsRecordsSegmentsAndHistories) {
  auto mem = std::make_shared<store::MemStore>();
  repo::Repository::init(*mem, {});
  auto repo = repo::Repository::open(mem, {});
  repo::ClusterInfo cluster;
  cluster.system_id = 42;
  cluster.segment_size = kSegSize;
  cluster.page_size = 8192;
  cluster.pg_major = 17;
  repo::bind_cluster(*repo, cluster, "test");

  ArchiveView src = two_timelines();
  for (const auto& b : src.backups)
    repo->put_object(record_object_name(b.label), as_bytes(record_to_json(b)));
  for (const auto& m : src.segments)
    repo->put_object(repo::meta_object_name(m.name), as_bytes(repo::meta_to_json(m)));
  repo->put_object(repo::file_object_name("00000002.history"),
                   as_bytes("1\t0/5003000\tno recovery target specified\n"));
  repo->put_object(repo::file_object_name("000000010000000000000005.partial"),
                   as_bytes("not a history"));

  ArchiveView v = load_archive_view(*repo);
  EXPECT_EQ(v.wal_segment_size, kSegSize);
  EXPECT_EQ(v.backups.size(), 3u);
  EXPECT_EQ(v.segments.size(), src.segments.size());
  ASSERT_EQ(v.histories.size(), 1u);
  ASSERT_EQ(v.histories.at(2).size(), 1u);
  EXPECT_EQ(v.histories.at(2)[0].tli, 1u);
  EXPECT_EQ(v.histories.at(2)[0].switch_lsn, 0x5003000u);

  auto p = plan_restore(v, kind_target(Kind::kEnd), std::nullopt);
  EXPECT_EQ(p.target_timeline, 2u);
  EXPECT_EQ(p.backup.label, "B3");
  EXPECT_EQ(p.wal_segments, names(2, 7, 9));

  // A damaged history file is reported, naming its object.
  repo->put_object(repo::file_object_name("00000003.history"), as_bytes("garbage\n"));
  try {
    load_archive_view(*repo);
    ADD_FAILURE() << "damaged history accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_TRUE(contains(e.what(), "wal/file/00000003.history")) << e.what();
  }
}

}  // namespace
}  // namespace walvault::basebackup
