// expire, gc and repository locks over a repository in memory: backups made
// of chunks with known seeds, WAL segments 1..12, an injected clock for the
// grace period (MemStore::set_mtime ages objects).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "basebackup/backup_record.h"
#include "codec/crypto.h"
#include "core/error.h"
#include "core/time_util.h"
#include "files/browse.h"
#include "files/take_snapshot.h"
#include "ops/expire.h"
#include "ops/gc.h"
#include "ops/verify.h"
#include "repo/chunk_store.h"
#include "repo/cluster.h"
#include "repo/lock.h"
#include "repo/wal_catalogue.h"
#include "repo/wal_objects.h"
#include "store/mem_store.h"
#include "support/pg_cluster.h"
#include "support/seeded_bytes.h"
#include "support/synthetic_meta.h"

namespace walvault::ops {
namespace {

constexpr std::uint32_t kSegSize = 16u << 20;
constexpr std::uint32_t kChunkSize = 64u << 10;
constexpr std::int64_t kHour = 3'600'000'000;
constexpr std::int64_t kDay = 24 * kHour;

// Every object name in the store: "nothing removed" compares these.
std::set<std::string> object_names(store::ObjectStore& store) {
  std::set<std::string> out;
  for (const store::ObjectInfo& info : store.list("")) out.insert(info.name);
  return out;
}

Bytes pattern(std::uint32_t seed) { return walvault::testing::seeded_bytes(seed, kChunkSize); }

struct Fixture {
  Fixture() : store(std::make_shared<store::MemStore>()) {
    repo::Repository::init(*store, {});
    repo = repo::Repository::open(store, {});
    walvault::testing::bind_synthetic_cluster(*repo, kSegSize);
    for (std::uint64_t s = 1; s <= 12; ++s) {
      const Bytes data = pattern(1000 + static_cast<std::uint32_t>(s));
      auto m = walvault::testing::synthetic_segment_meta(1, s, kSegSize,
                                                         now - kDay + static_cast<std::int64_t>(s));
      walvault::testing::put_synthetic_segment(*repo, m, data);
    }
    repo->put_object(repo::file_object_name("00000002.history"),
                     as_bytes("1\t0/5000000\tno recovery target specified\n"));
  }

  // A backup of one file made of the chunks `seeds`, starting in segment
  // `segno` at `time_us`; packs of `pack_chunks` chunks.
  std::string make_backup(const std::string& label, std::vector<std::uint32_t> seeds,
                          std::uint64_t segno, std::int64_t time_us, bool write_record = true,
                          std::uint64_t pack_chunks = 4, bool one_frame = false) {
    repo::ChunkStore chunks(*repo, {.pack_target_bytes = pack_chunks * kChunkSize});
    basebackup::BackupFiles files;
    basebackup::FileEntry e;
    e.path = "base/1/16384";
    e.mode = 0600;
    e.size = seeds.size() * kChunkSize;
    if (one_frame) {  // as a backup groups consecutive chunks of a file
      std::vector<Bytes> data;
      for (std::uint32_t seed : seeds) data.push_back(pattern(seed));
      for (const auto& r : chunks.add_group({data.begin(), data.end()})) e.chunks.push_back(r.id);
    } else {
      for (std::uint32_t seed : seeds) e.chunks.push_back(chunks.add(pattern(seed)).id);
    }
    files.entries.push_back(e);
    chunks.flush();
    repo->put_object(basebackup::files_object_name(label),
                     as_bytes(basebackup::files_to_json(files)));
    if (!write_record) return label;
    basebackup::BackupRecord b;
    b.label = label;
    b.source = "replication";
    b.start_lsn = segno * kSegSize + 0x28;
    b.stop_lsn = segno * kSegSize + 0x2000;
    b.start_timeline = b.stop_timeline = 1;
    b.start_time_us = time_us;
    b.stop_time_us = time_us + 60'000'000;
    b.system_id = 42;
    b.wal_segment_size = kSegSize;
    b.chunk_size = kChunkSize;
    b.pg_version_num = 150010;
    b.file_count = 1;
    b.logical_bytes = e.size;
    repo->put_object(basebackup::record_object_name(label),
                     as_bytes(basebackup::record_to_json(b)));
    return label;
  }

  // Every object looks `age_us` old.
  void age_everything(std::int64_t age_us) {
    for (const auto& info : store->list("")) store->set_mtime(info.name, now - age_us);
  }

  // True when every chunk of backup `label` reads back with the right content.
  ::testing::AssertionResult restorable(const std::string& label,
                                        std::vector<std::uint32_t> seeds) {
    repo::ChunkStore chunks(*repo);
    const auto files = basebackup::read_files(*repo, label);
    const auto& ids = files.entries.at(0).chunks;
    if (ids.size() != seeds.size()) return ::testing::AssertionFailure() << "chunk count";
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto data = chunks.read(ids[i]);
      if (!data) return ::testing::AssertionFailure() << label << " chunk " << i << " missing";
      if (*data != pattern(seeds[i]))
        return ::testing::AssertionFailure() << label << " chunk " << i << " differs";
    }
    return ::testing::AssertionSuccess();
  }

  GcReport gc(std::chrono::seconds grace = std::chrono::seconds(0), double threshold = 0.5,
              bool dry_run = false) {
    GcOptions o;
    o.grace = grace;
    o.repack_threshold = threshold;
    o.dry_run = dry_run;
    o.now_us = now;
    return collect_garbage(*repo, o, nullptr);
  }

  // Packs, indexes and backup objects: what gc may remove or write.
  std::uint64_t stored_bytes() {
    std::uint64_t n = 0;
    for (const char* prefix : {"packs/", "index/", "backups/"})
      for (const auto& info : store->list(prefix)) n += info.size;
    return n;
  }

  std::uint64_t pack_bytes() {
    std::uint64_t n = 0;
    for (const auto& info : store->list("packs/")) n += info.size;
    return n;
  }

  std::int64_t now = now_unix_us();
  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<repo::Repository> repo;
};

RetentionRules keep_last(int n) {
  RetentionRules r;
  r.default_policy.keep_last = n;
  return r;
}

TEST(Expire, RemovesExpiredBackupsAndOnlyTheWalNoRetainedBackupNeeds) {
  Fixture f;
  f.make_backup("b1", {1, 2}, 3, f.now - 3 * kDay);
  f.make_backup("b2", {1, 3}, 6, f.now - 2 * kDay);
  f.make_backup("b3", {1, 4}, 9, f.now - 1 * kDay);
  ExpireOptions o;
  o.rules = keep_last(2);
  o.now_us = f.now;
  o.dry_run = true;
  const std::set<std::string> before_dry = object_names(*f.store);
  const ExpireReport dry = expire_backups(*f.repo, o, nullptr);
  EXPECT_EQ(dry.removed, std::vector<std::string>{"b1"});
  EXPECT_EQ(object_names(*f.store), before_dry) << "dry run changed the repository";

  o.dry_run = false;
  const ExpireReport r = expire_backups(*f.repo, o, nullptr);
  EXPECT_EQ(r.removed, std::vector<std::string>{"b1"});
  EXPECT_EQ(*r.wal_kept_from, pg::segment_file_name(1, 6, kSegSize));
  EXPECT_EQ(r.wal_files_removed, 5u);  // segments 1..5
  const auto left = basebackup::list_backups(*f.repo);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].label, "b2");
  EXPECT_FALSE(f.store->stat(basebackup::files_object_name("b1")));
  const auto metas = f.store->list("wal/meta/");
  ASSERT_EQ(metas.size(), 7u);
  EXPECT_TRUE(metas.front().name.ends_with(pg::segment_file_name(1, 6, kSegSize)));
  EXPECT_EQ(f.store->list("wal/seg/").size(), 7u);
  EXPECT_TRUE(f.store->stat(repo::file_object_name("00000002.history")));
  // The chunks stay until gc.
  EXPECT_TRUE(f.restorable("b2", {1, 3}));
  EXPECT_TRUE(verify_repository(*f.repo, {}).ok());
}

// gc writes the WAL catalogue; expire rewrites it before removing metadata,
// so it never lists a removed segment (verify and planning agree).
TEST(Expire, KeepsWalCataloguesTruthful) {
  Fixture f;
  f.make_backup("b1", {1, 2}, 3, f.now - 3 * kDay);
  f.make_backup("b2", {1, 3}, 6, f.now - 2 * kDay);
  f.make_backup("b3", {1, 4}, 9, f.now - 1 * kDay);
  EXPECT_EQ(f.gc().wal_catalogues_written, 1u);  // segments 1..12: one log directory
  ExpireOptions o;
  o.rules = keep_last(2);
  o.now_us = f.now;
  expire_backups(*f.repo, o, nullptr);
  const auto catalogues = f.store->list(repo::kCataloguePrefix);
  ASSERT_EQ(catalogues.size(), 1u);
  EXPECT_EQ(repo::check_catalogue(*f.repo, catalogues[0].name), std::vector<std::string>{});
  std::vector<std::string> planned, expected;
  for (const auto& m : repo::read_all_meta(*f.repo)) planned.push_back(m.name);
  for (std::uint64_t s = 6; s <= 12; ++s) expected.push_back(pg::segment_file_name(1, s, kSegSize));
  EXPECT_EQ(planned, expected);
  EXPECT_TRUE(verify_repository(*f.repo, {}).ok());
  EXPECT_EQ(f.gc().wal_catalogues_written, 0u);  // already truthful
}

// A full log directory gets its catalogue into the bundle gc writes; verify
// names a bundle whose copy of a catalogue is not that catalogue, planning
// refuses it, and the next gc replaces it.
TEST(Gc, WritesTheCatalogueBundleVerifyChecksAndReplacesADamagedOne) {
  Fixture f;
  const std::uint64_t per_directory = (std::uint64_t{1} << 32) / kSegSize;
  for (std::uint64_t s = per_directory; s < 2 * per_directory; ++s) {
    auto m = walvault::testing::synthetic_segment_meta(1, s, kSegSize, f.now - kDay);
    walvault::testing::put_synthetic_segment(*f.repo, m, to_bytes("segment " + m.name));
  }
  EXPECT_EQ(f.gc().wal_catalogues_written, 2u);
  const auto catalogues = f.store->list(repo::kCataloguePrefix);
  ASSERT_EQ(catalogues.size(), 2u);
  auto bundles = f.store->list(repo::kCatalogueBundlePrefix);
  ASSERT_EQ(bundles.size(), 1u);
  const auto honest = repo::read_bundle(*f.repo, bundles[0].name);
  ASSERT_TRUE(honest);
  ASSERT_EQ(honest->size(), 1u);  // the full directory's alone
  EXPECT_EQ((*honest)[0].object, catalogues[1].name);
  EXPECT_TRUE(verify_repository(*f.repo, {}).ok());
  const std::size_t planned = repo::read_all_meta(*f.repo).size();
  EXPECT_EQ(planned, 12 + per_directory);

  // The full directory's name over the other directory's plaintext, in a
  // bundle named by its own content as compact names one.
  auto named = [](const Bytes& plaintext) {  // unencrypted: by SHA-256
    const codec::Digest d = codec::sha256(plaintext);
    repo::ChunkId id{};
    std::copy(d.begin(), d.end(), id.begin());
    return repo::catalogue_bundle_object_name(id);
  };
  const Bytes forged =
      repo::encode_bundle({{catalogues[1].name, *f.repo->get_object(catalogues[0].name)}});
  const std::string object = named(forged);
  ASSERT_TRUE(f.store->remove(bundles[0].name));
  f.repo->put_object(object, forged);
  const VerifyReport v = verify_repository(*f.repo, {});
  ASSERT_EQ(v.errors.size(), 1u);
  EXPECT_EQ(v.errors[0].object, object);
  EXPECT_EQ(v.errors[0].message, "its copy of " + catalogues[1].name + " does not match that name");
  EXPECT_THROW(repo::read_all_meta(*f.repo), Error);

  EXPECT_EQ(f.gc().wal_catalogues_written, 0u);
  bundles = f.store->list(repo::kCatalogueBundlePrefix);
  ASSERT_EQ(bundles.size(), 1u);
  EXPECT_EQ(bundles[0].name, named(repo::encode_bundle(*honest)));  // the honest one again
  EXPECT_TRUE(verify_repository(*f.repo, {}).ok());
  EXPECT_EQ(repo::read_all_meta(*f.repo).size(), planned);
}

TEST(Expire, PinnedBackupsAndTheirWalStay) {
  Fixture f;
  f.make_backup("b1", {1}, 2, f.now - 3 * kDay);
  f.make_backup("b2", {2}, 6, f.now - 2 * kDay);
  EXPECT_TRUE(basebackup::pin_backup(*f.repo, "b1", "before migration"));
  EXPECT_FALSE(basebackup::pin_backup(*f.repo, "b1", "again"));
  EXPECT_EQ(basebackup::read_pin(*f.repo, "b1")->note, "before migration");
  ExpireOptions o;
  o.rules = keep_last(1);
  o.now_us = f.now;
  const ExpireReport r = expire_backups(*f.repo, o, nullptr);
  EXPECT_TRUE(r.removed.empty());
  EXPECT_EQ(r.decisions[0].reasons, std::vector<std::string>{"pinned"});
  EXPECT_EQ(f.store->list("wal/meta/").size(), 11u);  // segment 1 only
  EXPECT_TRUE(basebackup::unpin_backup(*f.repo, "b1"));
  EXPECT_EQ(expire_backups(*f.repo, o, nullptr).removed, std::vector<std::string>{"b1"});
  EXPECT_THROW(basebackup::pin_backup(*f.repo, "b1", ""), Error);
}

TEST(Gc, FreesTheChunksOfExpiredBackupsAndKeepsEveryRetainedOne) {
  Fixture f;
  // b1 alone owns chunks 10..17 (two packs of its own); chunk 1 is shared.
  f.make_backup("b1", {1, 10, 11, 12, 13, 14, 15, 16}, 3, f.now - 3 * kDay);
  f.make_backup("b2", {1, 2, 3, 4}, 6, f.now - 2 * kDay);
  f.age_everything(2 * kDay);
  ExpireOptions o;
  o.rules = keep_last(1);
  o.now_us = f.now;
  expire_backups(*f.repo, o, nullptr);
  const std::uint64_t before = f.pack_bytes();
  const std::uint64_t stored_before = f.stored_bytes();
  const GcReport dry = f.gc(std::chrono::seconds(0), 0.5, true);
  EXPECT_EQ(f.pack_bytes(), before) << "dry run removed packs";
  const GcReport r = f.gc();
  EXPECT_EQ(r.backups, 1u);
  EXPECT_EQ(r.chunks_referenced, 4u);
  EXPECT_EQ(r.packs_removed, 1u);   // {13, 14, 15, 16}: nothing live
  EXPECT_EQ(r.packs_repacked, 1u);  // {1, 10, 11, 12}: 3 of 4 garbage
  EXPECT_EQ(r.chunks_copied, 1u);   // chunk 1
  EXPECT_EQ(dry.packs_removed, r.packs_removed);
  EXPECT_EQ(dry.packs_repacked, r.packs_repacked);
  EXPECT_GT(r.freed(), 0);
  EXPECT_LT(f.pack_bytes(), before);
  EXPECT_EQ(r.freed(), static_cast<std::int64_t>(stored_before - f.stored_bytes()))
      << gc_report_text(r);
  EXPECT_TRUE(f.restorable("b2", {1, 2, 3, 4}));
  const VerifyReport v = verify_repository(*f.repo, {.read_data = true});
  EXPECT_TRUE(v.ok()) << verify_report_text(v);
  // A second gc finds nothing more: not one object goes or comes.
  const std::set<std::string> before_again = object_names(*f.store);
  const GcReport again = f.gc();
  EXPECT_EQ(again.packs_removed + again.packs_repacked, 0u) << gc_report_text(again);
  EXPECT_EQ(object_names(*f.store), before_again) << gc_report_text(again);
}

// A file-volume snapshot's trees and chunks are live like a backup's: gc
// after the backups are expired leaves the snapshot whole, and once its
// record is gone a second gc frees them.
TEST(Gc, KeepsWhatFileSnapshotsReachAndFreesItWhenTheyGo) {
  Fixture f;
  walvault::testing::TempDir dir("wv-gc-files");
  const Bytes big = walvault::testing::seeded_bytes(77, 3u << 20);
  {
    std::ofstream out(dir.sub("study.bin"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(big.data()), static_cast<std::streamsize>(big.size()));
  }
  files::SnapshotStats stats;
  const files::SnapshotRecord snap =
      files::take_snapshot(*f.repo, {.volume = "app_data", .paths = {dir.path()}}, stats);
  f.make_backup("b1", {1, 2}, 3, f.now - 3 * kDay);
  f.age_everything(2 * kDay);
  const GcReport r = f.gc();
  EXPECT_EQ(r.snapshots, 1u);
  {
    repo::ChunkStore chunks(*f.repo);
    const auto node = files::find_entry(chunks, snap.root, "study.bin");
    ASSERT_TRUE(node);
    Bytes back;
    files::read_file_content(chunks, *node,
                             [&](ByteView b) { back.insert(back.end(), b.begin(), b.end()); });
    EXPECT_TRUE(back == big) << "gc removed a chunk the snapshot needs";
  }
  const std::uint64_t with_snapshot = f.pack_bytes();
  f.store->remove(repo::snapshot_object_name(snap.volume, snap.label));
  const GcReport after = f.gc();
  EXPECT_EQ(after.snapshots, 0u);
  EXPECT_LT(f.pack_bytes() + (2u << 20), with_snapshot) << gc_report_text(after);
  EXPECT_TRUE(f.restorable("b1", {1, 2}));
}

// Chunks of a backup share one envelope (one zstd frame): when only one of
// them stays referenced, the frame is mostly garbage and is repacked; the
// survivor is cut out of it and stays readable.
TEST(Gc, RepacksAFrameWhoseOtherChunksDied) {
  Fixture f;
  f.make_backup("b1", {10, 11, 12, 13}, 3, f.now - 3 * kDay, true, 4, /*one_frame=*/true);
  f.make_backup("b2", {10, 2, 3}, 6, f.now - 2 * kDay);
  f.age_everything(2 * kDay);
  const VerifyReport before = verify_repository(*f.repo, {.read_data = true});
  EXPECT_TRUE(before.ok()) << verify_report_text(before);
  ExpireOptions o;
  o.rules = keep_last(1);
  o.now_us = f.now;
  expire_backups(*f.repo, o, nullptr);
  const GcReport r = f.gc();
  EXPECT_EQ(r.packs_repacked, 1u) << gc_report_text(r);  // b1's frame: 3 of 4 chunks dead
  EXPECT_EQ(r.chunks_copied, 1u);                        // chunk 10
  EXPECT_TRUE(f.restorable("b2", {10, 2, 3}));
  const VerifyReport v = verify_repository(*f.repo, {.read_data = true});
  EXPECT_TRUE(v.ok()) << verify_report_text(v);
  EXPECT_EQ(v.chunks, 3u);
}

TEST(Gc, LeavesGarbageYoungerThanTheGracePeriod) {
  Fixture f;
  f.make_backup("b1", {10, 11, 12, 13}, 3, f.now - 3 * kDay);
  f.make_backup("b2", {1}, 6, f.now - 2 * kDay);
  // An interrupted backup: packs, index and file list, but no record.
  f.make_backup("b3", {20, 21, 22, 23}, 8, f.now, /*write_record=*/false);
  f.repo->store().remove(basebackup::record_object_name("b1"));  // b1 expired
  const std::uint64_t before = f.pack_bytes();
  GcReport r = f.gc(std::chrono::hours(1));
  EXPECT_EQ(r.packs_removed, 0u);
  EXPECT_GE(r.young_kept, 3u);  // b1's pack, b3's pack, b3's file list
  EXPECT_EQ(f.pack_bytes(), before);
  f.age_everything(2 * kHour);
  r = f.gc(std::chrono::hours(1));
  EXPECT_EQ(r.packs_removed, 2u);
  EXPECT_EQ(r.file_lists_removed, 2u);  // b1's and b3's
  EXPECT_FALSE(f.store->stat(basebackup::files_object_name("b3")));
  EXPECT_TRUE(f.restorable("b2", {1}));
  EXPECT_TRUE(verify_repository(*f.repo, {.read_data = true}).ok());
}

TEST(Gc, ACorruptLiveChunkStopsGcBeforeAnythingIsRemoved) {
  Fixture f;
  f.make_backup("b1", {1, 10, 11, 12}, 3, f.now - 3 * kDay);
  f.make_backup("b2", {1}, 6, f.now - 2 * kDay);
  f.age_everything(kDay);
  f.repo->store().remove(basebackup::record_object_name("b1"));
  // Flip a byte of chunk 1 in its pack (the one gc must copy out).
  repo::ChunkStore chunks(*f.repo);
  const auto loc = *chunks.locate(chunks.chunk_id(pattern(1)));
  const std::string pack = repo::pack_object_name(loc.pack);
  Bytes bytes = *f.store->get(pack, std::nullopt);
  bytes[loc.offset + loc.length / 2] ^= 0x40;
  f.store->corrupt(pack, bytes);
  const std::set<std::string> objects = object_names(*f.store);
  try {
    f.gc();
    FAIL() << "gc went on past a corrupt chunk";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find(pack), std::string::npos) << e.what();
  }
  EXPECT_TRUE(f.store->stat(pack));
  EXPECT_TRUE(f.store->stat(basebackup::files_object_name("b1")));
  // Nothing removed: every object listed before is still there.
  const std::set<std::string> after = object_names(*f.store);
  for (const std::string& name : objects) EXPECT_TRUE(after.count(name)) << name << " removed";
}

TEST(Gc, AChunkListedTwiceAfterACrashedRepackIsResolved) {
  Fixture f;
  f.make_backup("b1", {1, 10, 11, 12}, 3, f.now - 3 * kDay);
  f.make_backup("b2", {1, 2}, 6, f.now - 2 * kDay);
  f.repo->store().remove(basebackup::record_object_name("b1"));
  // A crash after the new pack's index was written: chunk 1 in two packs.
  {
    repo::ChunkStore::Options o;
    const auto old =
        repo::ChunkStore(*f.repo).locate(repo::ChunkStore(*f.repo).chunk_id(pattern(1)))->pack;
    o.ignore_pack = [old](const repo::ChunkId& p) { return p == old; };
    repo::ChunkStore copy(*f.repo, o);
    ASSERT_TRUE(copy.add(pattern(1)).stored);
    copy.flush();
  }
  f.age_everything(kDay);
  const GcReport r = f.gc();
  EXPECT_EQ(r.packs_removed, 1u) << gc_report_text(
      r);  // the old pack: all its copies are garbage now
  EXPECT_TRUE(f.restorable("b2", {1, 2}));
  EXPECT_TRUE(verify_repository(*f.repo, {.read_data = true}).ok());
}

TEST(Lock, GcIsRefusedWhileABackupHoldsASharedLockAndViceVersa) {
  Fixture f;
  repo::LockOptions o;
  o.refresh = std::chrono::seconds(1);
  o.stale = std::chrono::seconds(30);
  {
    auto backup_lock = repo::RepoLock::acquire(*f.repo, repo::LockMode::kShared, "backup", o);
    auto restore_lock = repo::RepoLock::acquire(*f.repo, repo::LockMode::kShared, "restore", o);
    try {
      repo::RepoLock::acquire(*f.repo, repo::LockMode::kExclusive, "gc", o);
      FAIL() << "gc took the lock beside a backup";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBusy);
      EXPECT_NE(std::string(e.what()).find(" on "), std::string::npos) << e.what();
    }
    EXPECT_EQ(f.store->list("locks/").size(), 2u) << "the refused gc left its lock behind";
  }
  EXPECT_TRUE(f.store->list("locks/").empty());
  auto gc_lock = repo::RepoLock::acquire(*f.repo, repo::LockMode::kExclusive, "gc", o);
  EXPECT_THROW(repo::RepoLock::acquire(*f.repo, repo::LockMode::kShared, "backup", o), Error);
  // A waiting backup gets the lock once gc is done: it blocks while gc holds
  // the exclusive lock, and returns only after gc started releasing it, with
  // gc's lock object gone.
  o.wait = std::chrono::seconds(20);
  std::atomic<bool> releasing{false}, backup_acquired{false};
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_FALSE(backup_acquired) << "the backup got a lock while gc held the exclusive one";
    const auto held = f.store->list("locks/");
    EXPECT_TRUE(std::any_of(held.begin(), held.end(), [](const store::ObjectInfo& i) {
      return i.name.starts_with("locks/exclusive-");
    })) << "gc's lock is not listed while it holds it";
    releasing = true;
    gc_lock.reset();
  });
  const auto wait_start = std::chrono::steady_clock::now();
  auto backup_lock = repo::RepoLock::acquire(*f.repo, repo::LockMode::kShared, "backup", o);
  backup_acquired = true;
  const auto waited = std::chrono::steady_clock::now() - wait_start;
  const bool gc_was_releasing = releasing;
  release.join();
  ASSERT_TRUE(backup_lock != nullptr);
  EXPECT_TRUE(gc_was_releasing) << "the backup's acquire returned before gc let go";
  EXPECT_GE(waited, std::chrono::milliseconds(1500)) << "the backup did not wait for gc";
  const auto after = f.store->list("locks/");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(after[0].name.starts_with("locks/shared-")) << after[0].name;
}

TEST(Lock, IsRefreshedUnderNewNamesAndAStaleLockIsIgnoredAndSwept) {
  Fixture f;
  repo::LockOptions o;
  o.refresh = std::chrono::seconds(1);
  o.stale = std::chrono::seconds(3);
  auto held = repo::RepoLock::acquire(*f.repo, repo::LockMode::kShared, "backup", o);
  const std::string first = f.store->list("locks/").at(0).name;
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const auto now_listed = f.store->list("locks/");
  ASSERT_EQ(now_listed.size(), 1u);
  EXPECT_NE(now_listed[0].name, first) << "not refreshed";
  EXPECT_NO_THROW(held->check_held());
  // A crashed backup: a lock object nobody refreshes.
  f.store->put("locks/shared-00000000deadbeef-0000001000000000", to_bytes("{}"));
  EXPECT_THROW(repo::RepoLock::acquire(*f.repo, repo::LockMode::kExclusive, "gc", o), Error);
  held.reset();
  auto gc_lock = repo::RepoLock::acquire(*f.repo, repo::LockMode::kExclusive, "gc", o);
  const auto left = f.store->list("locks/");
  ASSERT_EQ(left.size(), 1u) << "the dead lock was not swept";
  EXPECT_TRUE(left[0].name.starts_with("locks/exclusive-"));
}

}  // namespace
}  // namespace walvault::ops
