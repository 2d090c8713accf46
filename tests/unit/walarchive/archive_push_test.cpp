// archive-push / archive-get against in-memory and fault-injecting stores:
// the data-loss paths (store full or failing mid-push) and the metadata that
// the decoder leaves for planners.
#include "walarchive/archive_push.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file_util.h"
#include "repo/wal_objects.h"
#include "store/fault_store.h"
#include "store/mem_store.h"
#include "support/pg_cluster.h"
#include "support/segment_builder.h"
#include "walarchive/archive_get.h"
#include "walarchive/wal_list.h"

namespace walvault::walarchive {
namespace {

using pg::testing::SegmentBuilder;

constexpr std::int64_t kT0 = 1795000000000000;  // 2026-11-18, Unix µs

struct Fixture {
  Fixture() : inner(std::make_shared<store::MemStore>()) { repo::Repository::init(*inner, {}); }
  std::unique_ptr<repo::Repository> open(std::shared_ptr<store::ObjectStore> store) {
    return repo::Repository::open(std::move(store), {});
  }
  // Writes a synthetic segment with two commits and a restore point.
  std::string write_segment(std::uint64_t segno, std::uint64_t system_id = 42) {
    SegmentBuilder::Options o;
    o.segno = segno;
    o.system_id = system_id;
    SegmentBuilder b(o);
    b.add_record(pg::testing::kRmXact, pg::testing::kXactCommit, 700,
                 pg::testing::make_body(pg::testing::xact_main(kT0)));
    b.add_record(pg::testing::kRmXlog, pg::testing::kXlogRestorePoint, 0,
                 pg::testing::make_body(pg::testing::restore_point_main(kT0 + 5, "rp1")));
    b.add_record(pg::testing::kRmXact, pg::testing::kXactCommit, 701,
                 pg::testing::make_body(pg::testing::xact_main(kT0 + 10)));
    std::string path = dir.sub(b.file_name());
    write_file_atomic(path, b.bytes());
    return path;
  }
  testing::TempDir dir{"wv-push"};
  std::shared_ptr<store::MemStore> inner;
};

PushResult push(repo::Repository& repo, const std::string& path) {
  PushOptions o;
  o.wal_path = path;
  return archive_push(repo, o);
}

TEST(ArchivePush, StoresSegmentAndDecodedMetadata) {
  Fixture f;
  auto repo = f.open(f.inner);
  std::string path = f.write_segment(3);
  EXPECT_EQ(push(*repo, path).outcome, PushOutcome::kStored);
  auto meta = repo::read_meta(*repo, base_name(path));
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->segno, 3u);
  EXPECT_EQ(meta->system_id, 42u);
  EXPECT_EQ(meta->summary.commits, 2u);
  EXPECT_EQ(meta->summary.min_xact_time_us, kT0);
  EXPECT_EQ(meta->summary.max_xact_time_us, kT0 + 10);
  ASSERT_EQ(meta->summary.restore_points.size(), 1u);
  EXPECT_EQ(meta->summary.restore_points[0].name, "rp1");

  std::string dest = f.dir.sub("fetched");
  EXPECT_EQ(archive_get(*repo, base_name(path), dest, {}), GetOutcome::kRestored);
  EXPECT_EQ(*read_file(dest), *read_file(path));
}

TEST(ArchivePush, StoreFullFailsAndLeavesNothingVisible) {
  Fixture f;
  std::string path = f.write_segment(3);
  // Room for the small cluster binding at most, not the segment: a disk
  // filling up (the synthetic segment compresses to well over 200 bytes).
  store::FaultPlan plan;
  plan.put_byte_budget = 200;
  auto faulty = std::make_shared<store::FaultStore>(f.inner, plan);
  auto repo = f.open(faulty);
  try {
    push(*repo, path);
    FAIL() << "push into a full store reported success";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
  }
  EXPECT_TRUE(f.inner->list("wal/").empty());
}

TEST(ArchivePush, FailureBeforeMetadataIsNotArchivedAndRetrySucceeds) {
  Fixture f;
  std::string path = f.write_segment(3);
  // The cluster is bound and the segment and its block map stored (on two
  // threads, in either order); the metadata's put fails.
  store::FaultPlan plan;
  plan.fail_puts_under = repo::kMetaPrefix;
  auto faulty = std::make_shared<store::FaultStore>(f.inner, plan);
  auto failing = f.open(faulty);
  EXPECT_THROW(push(*failing, path), Error);
  auto repo = f.open(f.inner);
  EXPECT_FALSE(repo::read_meta(*repo, base_name(path)).has_value());
  EXPECT_TRUE(list_wal(*repo).timelines.empty());
  // PostgreSQL retries: the stored segment is recognised and completed.
  EXPECT_EQ(push(*repo, path).outcome, PushOutcome::kAlreadyArchived);
  EXPECT_TRUE(repo::read_meta(*repo, base_name(path)).has_value());
}

TEST(ArchivePush, ListShowsRangesAndGaps) {
  Fixture f;
  auto repo = f.open(f.inner);
  for (std::uint64_t segno : {3, 4, 5, 8, 9}) push(*repo, f.write_segment(segno));
  WalListing listing = list_wal(*repo);
  ASSERT_EQ(listing.timelines.size(), 1u);
  const TimelineSummary& tl = listing.timelines[0];
  EXPECT_EQ(tl.segments, 5u);
  ASSERT_EQ(tl.ranges.size(), 2u);
  EXPECT_EQ(tl.ranges[0].count, 3u);
  ASSERT_EQ(tl.gaps.size(), 1u);
  // 1 MiB segments: segno 6 and 7 are missing.
  EXPECT_EQ(tl.gaps[0].first, pg::segment_file_name(1, 6, 1u << 20));
  EXPECT_EQ(tl.gaps[0].last, pg::segment_file_name(1, 7, 1u << 20));
  EXPECT_EQ(tl.gaps[0].count, 2u);
  EXPECT_EQ(tl.restore_points.size(), 5u);
  EXPECT_NE(wal_listing_text(listing).find("gap"), std::string::npos);
}

TEST(ArchivePush, OtherClusterRefused) {
  Fixture f;
  auto repo = f.open(f.inner);
  push(*repo, f.write_segment(3, 42));
  try {
    push(*repo, f.write_segment(4, 43));
    FAIL() << "segment of another cluster accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kClusterMismatch);
  }
  EXPECT_FALSE(repo::read_meta(*repo, pg::segment_file_name(1, 4, 1u << 20)).has_value());
}

TEST(ArchivePush, HistoryAndPartialFilesRoundTrip) {
  Fixture f;
  auto repo = f.open(f.inner);
  std::string history = f.dir.sub("00000002.history");
  write_file_atomic(history, as_bytes("1\t0/3000000\tno recovery target specified\n"));
  EXPECT_EQ(push(*repo, history).outcome, PushOutcome::kStored);
  EXPECT_EQ(push(*repo, history).outcome, PushOutcome::kAlreadyArchived);
  std::string segment = f.write_segment(3);
  std::string partial = segment + ".partial";
  write_file_atomic(partial, *read_file(segment));
  EXPECT_EQ(push(*repo, partial).outcome, PushOutcome::kStored);
  for (const auto& path : {history, partial}) {
    std::string dest = f.dir.sub("fetched");
    ASSERT_EQ(archive_get(*repo, base_name(path), dest, {}), GetOutcome::kRestored) << path;
    EXPECT_EQ(*read_file(dest), *read_file(path)) << path;
  }
  // A .partial is checked like a segment: garbage under that name is refused.
  std::string bad = f.dir.sub("000000010000000000000009.partial");
  write_file_atomic(bad, Bytes(1u << 20, 0xAB));
  try {
    push(*repo, bad);
    FAIL() << "garbage .partial accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
  }
  EXPECT_EQ(archive_get(*repo, "00000003.history", f.dir.sub("none"), {}), GetOutcome::kNotFound);
}

TEST(ArchiveGet, CorruptSegmentWritesNothing) {
  Fixture f;
  auto repo = f.open(f.inner);
  std::string path = f.write_segment(3);
  push(*repo, path);
  std::string object = repo::segment_object_name(base_name(path));
  Bytes sealed = *f.inner->get(object, std::nullopt);
  sealed[sealed.size() / 2] ^= 0x40;
  f.inner->corrupt(object, sealed);
  std::string dest = f.dir.sub("fetched");
  try {
    archive_get(*repo, base_name(path), dest, {});
    FAIL() << "corrupt segment delivered";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find(base_name(path)), std::string::npos);
  }
  EXPECT_FALSE(read_file(dest).has_value());
}

}  // namespace
}  // namespace walvault::walarchive
