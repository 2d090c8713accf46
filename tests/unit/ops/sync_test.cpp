// repo sync between repositories in memory, in every combination of
// encryption (both plain, plain -> encrypted, encrypted -> plain, both
// encrypted under different passphrases): WAL and backups arrive whole and
// verify clean, a second run copies nothing, chunks dedup against what the
// target holds, a foreign cluster is refused, and a run interrupted at any
// put leaves a target that verifies and that the next run completes.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "basebackup/backup_record.h"
#include "codec/crypto.h"
#include "core/error.h"
#include "ops/sync.h"
#include "ops/verify.h"
#include "pg/block_map.h"
#include "repo/chunk_store.h"
#include "repo/cluster.h"
#include "repo/wal_objects.h"
#include "store/fault_store.h"
#include "store/mem_store.h"
#include "support/error_code.h"
#include "support/synthetic_meta.h"

namespace walvault::ops {
namespace {

using testing::error_code_of;

constexpr std::uint32_t kSegSize = 16u << 20;
constexpr std::uint32_t kChunkSize = 64u << 10;
constexpr std::int64_t kT0 = 1795000000000000;  // 2026-11-18, Unix µs
constexpr std::int64_t kMinute = 60'000'000;
constexpr char kLabel1[] = "20261126-120000";
constexpr char kLabel2[] = "20261126-130000";
constexpr char kBackupFile[] = "000000010000000000000003.00000028.backup";

pg::Lsn lsn_at(std::uint64_t segno, std::uint64_t offset = 0) { return segno * kSegSize + offset; }
std::string seg_name(std::uint64_t segno) { return pg::segment_file_name(1, segno, kSegSize); }

Bytes pattern(std::uint32_t seed, std::size_t size) {
  if (seed == 0) return Bytes(size);  // zeros: the same chunk many times
  return walvault::testing::seeded_bytes(seed, size);
}

// A file of chunks made from `seeds` (the last `short_by` bytes shorter).
struct FileSpec {
  std::string path;
  std::vector<std::uint32_t> seeds;
  std::size_t short_by = 0;
};

// Backup 1: 3 + 2 (the last short) + 2 zero chunks: 6 distinct chunks.
// Backup 2: the same but one chunk changed: 1 new chunk.
const std::vector<FileSpec> kFiles1 = {
    {"base/1/16385", {1, 2, 3}}, {"base/1/16386", {4, 5}, 1000}, {"base/1/zeros", {0, 0}}};
const std::vector<FileSpec> kFiles2 = {
    {"base/1/16385", {1, 2, 100}}, {"base/1/16386", {4, 5}, 1000}, {"base/1/zeros", {0, 0}}};

struct MemRepo {
  explicit MemRepo(const std::string& passphrase = "") : mem(std::make_shared<store::MemStore>()) {
    repo::InitOptions init;
    if (!passphrase.empty()) {
      init.encrypt = true;
      init.passphrase = secrets.passphrase = passphrase;
      init.kdf.n = 1024;
    }
    repo::Repository::init(*mem, init);
    repo = repo::Repository::open(mem, secrets);
  }

  // The same repository through another store (a FaultStore over `mem`).
  std::unique_ptr<repo::Repository> open_through(std::shared_ptr<store::ObjectStore> st) const {
    return repo::Repository::open(std::move(st), secrets);
  }

  void bind(std::uint64_t system_id = 42) {
    walvault::testing::bind_synthetic_cluster(*repo, kSegSize, system_id);
  }

  // 4 KiB of data, its block map (but segment 2: none, as pushed before maps;
  // segment 5: an incomplete one) and its metadata, in archive-push's order
  // (the checks do not depend on the size).
  void add_segment(std::uint64_t segno) {
    const Bytes data = pattern(1000 + static_cast<std::uint32_t>(segno), 4096);
    repo::SegmentMeta m = walvault::testing::synthetic_segment_meta(
        1, segno, kSegSize, kT0 + static_cast<std::int64_t>(segno) * kMinute);
    m.archived_us = kT0 + static_cast<std::int64_t>(segno) * kMinute + 1000;
    if (segno != 2) {
      pg::BlockMap map = walvault::testing::synthetic_block_map(m, kSegSize, data);
      if (segno == 5) map.mark_incomplete("test: an unknown record");
      repo->put_object(repo::block_map_object_name(m.name), pg::encode_block_map(map));
    }
    walvault::testing::put_synthetic_segment(*repo, m, data);
  }

  // A backup starting and stopping in segment `segno`.
  void add_backup(const std::string& label, std::uint64_t segno,
                  const std::vector<FileSpec>& specs) {
    repo::ChunkStore chunks(*repo, {.pack_target_bytes = 2 * kChunkSize});
    basebackup::BackupFiles files;
    files.backup_manifest = "{\"PostgreSQL-Backup-Manifest-Version\": 1}\n";
    std::uint64_t logical = 0;
    for (const auto& spec : specs) {
      basebackup::FileEntry e;
      e.path = spec.path;
      e.mode = 0600;
      e.size = spec.seeds.size() * kChunkSize - spec.short_by;
      for (std::size_t i = 0; i < spec.seeds.size(); ++i) {
        const std::size_t size =
            i + 1 == spec.seeds.size() ? kChunkSize - spec.short_by : kChunkSize;
        e.chunks.push_back(chunks.add(pattern(spec.seeds[i], size)).id);
      }
      logical += e.size;
      files.entries.push_back(std::move(e));
    }
    basebackup::FileEntry dir;
    dir.path = "base/1";
    dir.type = basebackup::EntryType::kDirectory;
    dir.mode = 0700;
    files.entries.push_back(dir);
    chunks.flush();
    repo->put_object(basebackup::files_object_name(label),
                     as_bytes(basebackup::files_to_json(files)));

    basebackup::BackupRecord b;
    b.label = label;
    b.source = "replication";
    b.start_lsn = lsn_at(segno, 0x28);
    b.stop_lsn = lsn_at(segno, 0x2000);
    b.start_timeline = b.stop_timeline = 1;
    b.start_time_us = kT0 + static_cast<std::int64_t>(segno) * kMinute + 17;
    b.stop_time_us = b.start_time_us + kMinute / 2;
    b.system_id = 42;
    b.wal_segment_size = kSegSize;
    b.chunk_size = kChunkSize;
    b.pg_version_num = 150010;
    b.file_count = files.entries.size();
    b.logical_bytes = logical;
    b.stored_bytes = 12345;
    repo->put_object(basebackup::record_object_name(label),
                     as_bytes(basebackup::record_to_json(b)));
  }

  // Cluster, segments 1..10, a backup history file, backup 1 in segment 3.
  void fill() {
    bind();
    for (std::uint64_t s = 1; s <= 10; ++s) add_segment(s);
    repo->put_object(repo::file_object_name(kBackupFile),
                     as_bytes(std::string("START WAL LOCATION: 0/3000028\n")));
    add_backup(kLabel1, 3, kFiles1);
  }

  // Segments 11..14 and backup 2 in segment 12.
  void grow() {
    for (std::uint64_t s = 11; s <= 14; ++s) add_segment(s);
    add_backup(kLabel2, 12, kFiles2);
  }

  std::set<std::string> objects() {
    std::set<std::string> out;
    for (const auto& o : mem->list("")) out.insert(o.name);
    return out;
  }

  std::shared_ptr<store::MemStore> mem;
  repo::Secrets secrets;
  std::unique_ptr<repo::Repository> repo;
};

std::set<std::string> names_under(MemRepo& r, const std::string& prefix) {
  std::set<std::string> out;
  for (const auto& o : r.mem->list(prefix)) out.insert(o.name);
  return out;
}

SyncReport run_sync(MemRepo& from, repo::Repository& to, bool dry_run = false, int parallel = 3) {
  SyncOptions o;
  o.dry_run = dry_run;
  o.parallel = parallel;
  return sync_repositories(*from.repo, to, o);
}

VerifyReport verify(repo::Repository& r) { return verify_repository(r, VerifyOptions{true}); }

// B holds the same WAL objects and backups as A: the same plaintexts, and
// file lists whose chunks (under B's ids) hold A's chunks' content.
void expect_same_content(MemRepo& a, MemRepo& b) {
  for (const std::string prefix : {"wal/seg/", "wal/meta/", "wal/map/", "wal/file/"}) {
    const auto names = names_under(a, prefix);
    EXPECT_EQ(names, names_under(b, prefix)) << prefix;
    for (const auto& n : names) EXPECT_EQ(a.repo->get_object(n), b.repo->get_object(n)) << n;
  }
  const auto ra = basebackup::list_backups(*a.repo), rb = basebackup::list_backups(*b.repo);
  ASSERT_EQ(ra.size(), rb.size());
  repo::ChunkStore ca(*a.repo), cb(*b.repo);
  for (std::size_t i = 0; i < ra.size(); ++i) {
    SCOPED_TRACE(ra[i].label);
    EXPECT_EQ(ra[i].label, rb[i].label);
    EXPECT_EQ(ra[i].start_lsn, rb[i].start_lsn);
    EXPECT_EQ(ra[i].stop_lsn, rb[i].stop_lsn);
    EXPECT_EQ(ra[i].start_time_us, rb[i].start_time_us);
    EXPECT_EQ(ra[i].logical_bytes, rb[i].logical_bytes);
    EXPECT_EQ(ra[i].chunk_size, rb[i].chunk_size);
    const auto fa = basebackup::read_files(*a.repo, ra[i].label);
    const auto fb = basebackup::read_files(*b.repo, rb[i].label);
    EXPECT_EQ(fa.backup_manifest, fb.backup_manifest);
    ASSERT_EQ(fa.entries.size(), fb.entries.size());
    for (std::size_t e = 0; e < fa.entries.size(); ++e) {
      const auto &x = fa.entries[e], &y = fb.entries[e];
      EXPECT_EQ(x.path, y.path);
      EXPECT_EQ(x.type, y.type);
      EXPECT_EQ(x.size, y.size);
      ASSERT_EQ(x.chunks.size(), y.chunks.size());
      for (std::size_t c = 0; c < x.chunks.size(); ++c) {
        auto pa = ca.read(x.chunks[c]);
        auto pb = cb.read(y.chunks[c]);
        ASSERT_TRUE(pa && pb) << x.path << " chunk " << c;
        EXPECT_EQ(*pa, *pb) << x.path << " chunk " << c;
      }
    }
  }
}

void expect_clean(repo::Repository& r, bool allow_warnings = false) {
  const VerifyReport report = verify(r);
  EXPECT_TRUE(report.ok()) << verify_report_text(report);
  if (!allow_warnings) {
    EXPECT_TRUE(report.warnings.empty()) << verify_report_text(report);
  }
}

struct Mode {
  const char* name;
  const char* from_passphrase;
  const char* to_passphrase;
};

class SyncModes : public ::testing::TestWithParam<Mode> {};

TEST_P(SyncModes, CopiesEverythingOnceAndThenOnlyWhatIsNew) {
  MemRepo a(GetParam().from_passphrase), b(GetParam().to_passphrase);
  a.fill();
  const SyncReport first = run_sync(a, *b.repo);
  EXPECT_TRUE(first.cluster_bound);
  EXPECT_EQ(first.wal_segments.size(), 10u);
  EXPECT_EQ(first.wal_files, std::vector<std::string>{kBackupFile});
  EXPECT_EQ(first.backups, std::vector<std::string>{kLabel1});
  EXPECT_TRUE(first.skipped.empty());
  EXPECT_EQ(first.chunks_added, 6u);
  EXPECT_EQ(first.chunks_read, 6u);  // the zero chunk is read once
  EXPECT_GT(first.bytes_added, 0u);
  EXPECT_EQ(repo::read_cluster(*b.repo)->system_id, 42u);
  expect_clean(*b.repo);
  expect_same_content(a, b);
  auto record = basebackup::read_record(*b.repo, kLabel1);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->new_chunk_count, 6u);
  EXPECT_GT(record->stored_bytes, 0u);
  EXPECT_NE(record->stored_bytes, 12345u);  // what B gained, not what A did
  const std::string text = sync_report_text(first);
  EXPECT_TRUE(
      text.starts_with("synced mem: -> mem:: 10 WAL segments, 1 file, 1 backup, 0 snapshots ("))
      << text;

  // Nothing new: nothing read, nothing written.
  const auto before = b.objects();
  const SyncReport again = run_sync(a, *b.repo);
  EXPECT_TRUE(again.nothing_copied());
  EXPECT_EQ(again.bytes_added, 0u);
  EXPECT_EQ(again.chunks_read, 0u);
  EXPECT_EQ(b.objects(), before);
  EXPECT_EQ(sync_report_text(again),
            "synced mem: -> mem:: 0 WAL segments, 0 files, 0 backups, 0 snapshots (0.0 MiB added); "
            "already "
            "in sync\n");

  // A grows: only the new segments and backup 2's one new chunk are copied;
  // the chunks it shares with backup 1 are not even read (their ids in B are
  // known from backup 1).
  a.grow();
  const SyncReport third = run_sync(a, *b.repo);
  EXPECT_FALSE(third.cluster_bound);
  EXPECT_EQ(third.wal_segments.size(), 4u);
  EXPECT_TRUE(third.wal_files.empty());
  EXPECT_EQ(third.backups, std::vector<std::string>{kLabel2});
  EXPECT_EQ(third.chunks_read, 1u);
  EXPECT_EQ(third.chunks_added, 1u);
  auto record2 = basebackup::read_record(*b.repo, kLabel2);
  ASSERT_TRUE(record2);
  EXPECT_EQ(record2->new_chunk_count, 1u);
  EXPECT_LT(record2->stored_bytes, record->stored_bytes / 3);
  expect_clean(*b.repo);
  expect_same_content(a, b);
}

TEST_P(SyncModes, TwoBackupsInOneRunReadEachChunkOnce) {
  MemRepo a(GetParam().from_passphrase), b(GetParam().to_passphrase);
  a.fill();
  a.grow();
  const SyncReport r = run_sync(a, *b.repo);
  EXPECT_EQ(r.wal_segments.size(), 14u);
  EXPECT_EQ(r.backups, (std::vector<std::string>{kLabel1, kLabel2}));
  EXPECT_EQ(r.chunks_read, 7u);
  EXPECT_EQ(r.chunks_added, 7u);
  expect_clean(*b.repo);
  expect_same_content(a, b);
}

TEST_P(SyncModes, ChunksDedupAgainstWhatTheTargetAlreadyHolds) {
  MemRepo a(GetParam().from_passphrase), b(GetParam().to_passphrase);
  a.fill();
  // B took its own backup of the same data (another label): every chunk of
  // A's backup is already there under B's ids.
  b.bind();
  for (std::uint64_t s = 1; s <= 10; ++s) b.add_segment(s);
  b.add_backup("20261126-110000", 3, kFiles1);
  const SyncReport r = run_sync(a, *b.repo);
  EXPECT_TRUE(r.wal_segments.empty());
  EXPECT_EQ(r.backups, std::vector<std::string>{kLabel1});
  EXPECT_EQ(r.chunks_added, 0u);
  EXPECT_EQ(basebackup::read_record(*b.repo, kLabel1)->stored_bytes, 0u);
  expect_clean(*b.repo);
}

// A's chunks were stored one envelope each; B gets the chunks a run copies
// as frames of consecutive chunks (up to repo::kFrameBytes, here all six),
// as a backup writes them, and they read back and verify as before.
TEST_P(SyncModes, CopiedChunksArriveAsOneFrame) {
  MemRepo a(GetParam().from_passphrase), b(GetParam().to_passphrase);
  a.fill();
  ASSERT_EQ(run_sync(a, *b.repo).chunks_added, 6u);
  repo::ChunkStore cb(*b.repo);
  std::set<std::pair<std::string, std::uint64_t>> envelopes;
  std::set<std::string> ids;
  for (const auto& e : basebackup::read_files(*b.repo, kLabel1).entries)
    for (const auto& id : e.chunks) {
      const auto loc = cb.locate(id);
      ASSERT_TRUE(loc);
      EXPECT_NE(loc->inner_length, 0u);
      envelopes.insert({to_hex(loc->pack), loc->offset});
      ids.insert(to_hex(id));
    }
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_EQ(envelopes.size(), 1u);
  expect_clean(*b.repo);
  expect_same_content(a, b);
}

TEST_P(SyncModes, InterruptedAtAnyPutLeavesAValidTargetThatTheNextRunCompletes) {
  MemRepo a(GetParam().from_passphrase), base(GetParam().from_passphrase);
  a.fill();
  base.fill();  // what A was before it grew: B's starting point in stage 2
  // Stage 1 into an empty target; stage 2 (backup 1 already there) the new
  // segments and backup 2.
  for (const int stage : {1, 2}) {
    if (stage == 2) a.grow();
    bool completed = false;
    for (std::uint64_t n = 1; !completed; ++n) {
      SCOPED_TRACE("stage " + std::to_string(stage) + ", put " + std::to_string(n) + " fails");
      ASSERT_LT(n, 200u);
      MemRepo b(GetParam().to_passphrase);
      if (stage == 2) run_sync(base, *b.repo);
      auto faulty =
          std::make_shared<store::FaultStore>(b.mem, store::FaultPlan{.fail_puts_from = n});
      auto through = b.open_through(faulty);
      const auto code = error_code_of([&] { run_sync(a, *through); });
      completed = !code;
      if (code) {
        EXPECT_EQ(*code, ErrorCode::kIo);
        expect_clean(*b.repo, /*allow_warnings=*/true);  // orphans at worst
      }
      const SyncReport rest = run_sync(a, *b.repo);
      if (completed) {
        EXPECT_TRUE(rest.nothing_copied());
      }
      expect_clean(*b.repo, /*allow_warnings=*/true);
      const VerifyReport report = verify(*b.repo);
      for (const auto& w : report.warnings)
        EXPECT_NE(w.message.find("orphan"), std::string::npos) << w.object << ": " << w.message;
      expect_same_content(a, b);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Encryption, SyncModes,
    ::testing::Values(Mode{"plain", "", ""}, Mode{"plain_to_encrypted", "", "to passphrase"},
                      Mode{"encrypted_to_plain", "from passphrase", ""},
                      Mode{"both_encrypted", "from passphrase", "another passphrase"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Sync, DryRunListsAndWritesNothing) {
  MemRepo a, b;
  a.fill();
  const auto before = b.objects();
  const SyncReport r = run_sync(a, *b.repo, /*dry_run=*/true);
  EXPECT_EQ(b.objects(), before);
  EXPECT_TRUE(r.cluster_bound);
  EXPECT_EQ(r.wal_segments.size(), 10u);
  const std::string text = sync_report_text(r);
  EXPECT_NE(text.find("wal segment " + seg_name(1) + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("wal file " + std::string(kBackupFile) + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("backup " + std::string(kLabel1) + "\n"), std::string::npos) << text;
  EXPECT_NE(
      text.find(
          "dry run: would sync mem: -> mem:: 10 WAL segments, 1 file, 1 backup, 0 snapshots\n"),
      std::string::npos)
      << text;
}

TEST(Sync, AnotherClusterIsRefusedBeforeAnythingIsWritten) {
  MemRepo a, b;
  a.fill();
  b.bind(43);
  const auto before = b.objects();
  for (const bool dry_run : {true, false}) {
    EXPECT_EQ(error_code_of([&] { run_sync(a, *b.repo, dry_run); }), ErrorCode::kClusterMismatch);
    EXPECT_EQ(b.objects(), before);
  }
}

TEST(Sync, SegmentWithOtherBytesIsAConflictAndKept) {
  MemRepo a, b;
  a.fill();
  b.bind();
  // B has segment 5's object (no metadata: an interrupted push) with other bytes.
  const std::string object = repo::segment_object_name(seg_name(5));
  b.repo->put_object(object, pattern(7, 4096));
  EXPECT_EQ(error_code_of([&] { run_sync(a, *b.repo, false, 1); }), ErrorCode::kConflict);
  EXPECT_EQ(*b.repo->get_object(object), pattern(7, 4096));
  EXPECT_FALSE(b.mem->stat(repo::meta_object_name(seg_name(5))));
  // Segments are made visible in order: nothing after the conflict.
  EXPECT_FALSE(b.mem->stat(repo::meta_object_name(seg_name(6))));
  EXPECT_TRUE(b.mem->stat(repo::meta_object_name(seg_name(4))));
}

TEST(Sync, BlockMapsArriveBeforeTheirMetadataAndIncompleteOnesAreNoted) {
  MemRepo a, b;
  a.fill();
  run_sync(a, *b.repo);
  for (std::uint64_t s = 1; s <= 10; ++s) {
    SCOPED_TRACE(seg_name(s));
    const auto map = repo::read_block_map(*b.repo, seg_name(s));
    ASSERT_EQ(map.has_value(), s != 2);  // segment 2 has none in A
    if (!map) continue;
    EXPECT_EQ(map->complete, s != 5);
    EXPECT_EQ(map->segment_start, lsn_at(s));
  }
  const VerifyReport report = verify(*b.repo);
  EXPECT_TRUE(report.ok()) << verify_report_text(report);
  EXPECT_EQ(report.block_maps, 9u);
  ASSERT_EQ(report.notes.size(), 1u) << verify_report_text(report);
  EXPECT_EQ(report.notes[0].object, repo::block_map_object_name(seg_name(5)));
}

TEST(Sync, ABlockMapOfOtherBytesIsCorruptionAndItsSegmentStaysUnarchived) {
  for (const bool undecodable : {false, true}) {
    SCOPED_TRACE(undecodable ? "undecodable" : "another segment's bytes");
    MemRepo a, b;
    a.fill();
    const std::string object = repo::block_map_object_name(seg_name(5));
    ASSERT_TRUE(a.mem->remove(object));
    if (undecodable) {
      a.repo->put_object(object, as_bytes(std::string("WVBM not a block map")));
    } else {
      pg::BlockMap map = *repo::read_block_map(*a.repo, seg_name(4));
      map.segment_start = lsn_at(5);
      a.repo->put_object(object, pg::encode_block_map(map));
    }
    try {
      run_sync(a, *b.repo, false, 1);
      ADD_FAILURE() << "sync copied a block map that is not its segment's";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      EXPECT_NE(std::string(e.what()).find(object), std::string::npos) << e.what();
    }
    EXPECT_FALSE(b.mem->stat(object));
    EXPECT_FALSE(b.mem->stat(repo::meta_object_name(seg_name(5))));
    EXPECT_TRUE(b.mem->stat(repo::meta_object_name(seg_name(4))));
  }
}

TEST(Sync, ALabelTheTargetUsesForAnotherBackupIsSkippedAndNamed) {
  MemRepo a, b;
  a.fill();
  b.bind();
  for (std::uint64_t s = 1; s <= 10; ++s) b.add_segment(s);
  b.add_backup(kLabel1, 4, kFiles2);  // same label, another backup
  const SyncReport r = run_sync(a, *b.repo);
  EXPECT_TRUE(r.backups.empty());
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].find("backup " + std::string(kLabel1)), std::string::npos);
  EXPECT_EQ(basebackup::read_record(*b.repo, kLabel1)->start_lsn, lsn_at(4, 0x28));
}

TEST(Sync, DifferentChunkSizesRefuseBackups) {
  MemRepo a, b;
  a.fill();
  // Rewrite B's config with another chunk size (repo init has no option for it).
  auto config = b.mem->get("config", std::nullopt);
  ASSERT_TRUE(config);
  Bytes text = codec::open(*config, nullptr, "config");
  std::string json(as_chars(text));
  const auto pos = json.find("1048576");
  ASSERT_NE(pos, std::string::npos) << json;
  json.replace(pos, 7, "2097152");
  b.mem->corrupt("config", codec::seal(as_bytes(json), codec::SealOptions{}));
  auto reopened = repo::Repository::open(b.mem, b.secrets);
  ASSERT_EQ(reopened->config().chunk_size, 2097152u);
  try {
    run_sync(a, *reopened);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUsage);
    EXPECT_NE(std::string(e.what()).find("1048576"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("2097152"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace walvault::ops
