// verify and info over a synthetic repository in memory: a cluster, segments
// 1..10 of timeline 1 (data and metadata), and one backup starting in
// segment 3 whose files are chunks in two packs.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "basebackup/backup_record.h"
#include "codec/crypto.h"
#include "core/error.h"
#include "core/time_util.h"
#include "ops/info.h"
#include "ops/verify.h"
#include "repo/chunk_store.h"
#include "repo/cluster.h"
#include "repo/history.h"
#include "repo/lock.h"
#include "repo/wal_objects.h"
#include "store/mem_store.h"
#include "support/pg_cluster.h"
#include "support/synthetic_meta.h"
#include "synthetic_snapshot.h"

namespace walvault::ops {
namespace {

constexpr std::uint32_t kSegSize = 16u << 20;
constexpr std::uint32_t kChunkSize = 64u << 10;
constexpr std::int64_t kT0 = 1795000000000000;  // 2026-11-18, Unix µs
constexpr std::int64_t kMinute = 60'000'000;
constexpr char kLabel[] = "20261126-120000";

pg::Lsn lsn_at(std::uint64_t segno, std::uint64_t offset = 0) { return segno * kSegSize + offset; }
std::string seg_name(std::uint64_t segno) { return pg::segment_file_name(1, segno, kSegSize); }

Bytes pattern(std::uint32_t seed, std::size_t size) {
  return walvault::testing::seeded_bytes(seed, size);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// The problems of `list` about `object` whose message contains `part`.
std::size_t count_problems(const std::vector<Problem>& list, const std::string& object,
                           const std::string& part = "") {
  return static_cast<std::size_t>(std::count_if(list.begin(), list.end(), [&](const Problem& p) {
    return p.object == object && contains(p.message, part);
  }));
}

std::string all_text(const VerifyReport& r) { return verify_report_text(r); }

struct SyntheticRepo {
  explicit SyntheticRepo(bool encrypted = false) : store(std::make_shared<store::MemStore>()) {
    repo::InitOptions init;
    repo::Secrets secrets;
    if (encrypted) {
      init.encrypt = true;
      init.passphrase = secrets.passphrase = "ops test passphrase";
      init.kdf.n = 1024;
    }
    repo::Repository::init(*store, init);
    repo = repo::Repository::open(store, secrets);
    walvault::testing::bind_synthetic_cluster(*repo, kSegSize);
    for (std::uint64_t s = 1; s <= 10; ++s) add_segment(s);

    // Two files of 3 and 2 chunks (the second file's last chunk shorter),
    // in packs of about two chunks.
    repo::ChunkStore chunks(*repo, {.pack_target_bytes = 2 * kChunkSize});
    basebackup::BackupFiles files;
    std::uint32_t seed = 1;
    for (const std::uint64_t size :
         {std::uint64_t{3} * kChunkSize, std::uint64_t{kChunkSize} + 100}) {
      basebackup::FileEntry e;
      e.path = "base/1/" + std::to_string(16384 + seed);
      e.mode = 0600;
      e.size = size;
      for (std::uint64_t off = 0; off < size; off += kChunkSize)
        e.chunks.push_back(
            chunks.add(pattern(seed++, std::min<std::uint64_t>(kChunkSize, size - off))).id);
      files.entries.push_back(std::move(e));
    }
    chunks.flush();
    first_chunk = files.entries[0].chunks[0];
    first_chunk_pack = *chunks.locate(first_chunk);
    repo->put_object(basebackup::files_object_name(kLabel),
                     as_bytes(basebackup::files_to_json(files)));

    basebackup::BackupRecord b;
    b.label = kLabel;
    b.source = "replication";
    b.start_lsn = lsn_at(3, 0x28);
    b.stop_lsn = lsn_at(3, 0x2000);
    b.start_timeline = b.stop_timeline = 1;
    b.start_time_us = kT0 + 3 * kMinute;
    b.stop_time_us = kT0 + 3 * kMinute + kMinute / 2;
    b.system_id = 42;
    b.wal_segment_size = kSegSize;
    b.chunk_size = kChunkSize;
    b.pg_version_num = 150010;
    b.file_count = 2;
    b.logical_bytes = 4 * kChunkSize + 100;
    repo->put_object(basebackup::record_object_name(kLabel),
                     as_bytes(basebackup::record_to_json(b)));
  }

  // Segment `segno`: 4 KiB of data (the checks do not depend on the size),
  // one commit at kT0 + segno minutes; segment 8 holds restore point "rp8".
  void add_segment(std::uint64_t segno) {
    const Bytes data = pattern(1000 + static_cast<std::uint32_t>(segno), 4096);
    repo::SegmentMeta m = walvault::testing::synthetic_segment_meta(
        1, segno, kSegSize, kT0 + static_cast<std::int64_t>(segno) * kMinute);
    m.archived_us = kT0 + static_cast<std::int64_t>(segno) * kMinute + 1000;
    if (segno == 8) m.summary.restore_points.push_back({"rp8", kT0 + 8 * kMinute, lsn_at(8, 64)});
    walvault::testing::put_synthetic_segment(*repo, m, data);
  }

  std::string pack_name() const { return repo::pack_object_name(first_chunk_pack.pack); }

  VerifyReport verify(bool read_data = false) {
    VerifyOptions o;
    o.read_data = read_data;
    return verify_repository(*repo, o);
  }

  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<repo::Repository> repo;
  repo::ChunkId first_chunk;
  repo::ChunkLocation first_chunk_pack;
};

TEST(Verify, CleanRepositoryHasNoProblems) {
  SyntheticRepo r;
  for (bool read_data : {false, true}) {
    SCOPED_TRACE(read_data ? "read data" : "structure");
    const VerifyReport report = r.verify(read_data);
    EXPECT_TRUE(report.ok()) << all_text(report);
    EXPECT_TRUE(report.warnings.empty()) << all_text(report);
    EXPECT_EQ(report.backups, 1u);
    EXPECT_EQ(report.chunks, 5u);
    EXPECT_EQ(report.wal_segments, 10u);
    EXPECT_GE(report.packs, 2u);
    EXPECT_EQ(report.packs, report.indexes);
    EXPECT_EQ(report.bytes_read > 0, read_data);
    EXPECT_EQ(
        verify_report_text(report),
        "verify: 1 backup, 0 snapshots, 0 dumps, 5 chunks, 10 WAL segments checked; 0 errors, 0 "
        "warnings\n");
  }
}

TEST(Verify, EncryptedRepositoryChecksKeyedChunkIds) {
  SyntheticRepo r(/*encrypted=*/true);
  const VerifyReport clean = r.verify(true);
  EXPECT_TRUE(clean.ok()) << all_text(clean);
  EXPECT_EQ(clean.chunks, 5u);
  Bytes pack = *r.store->get(r.pack_name(), std::nullopt);
  pack[r.first_chunk_pack.offset + 40] ^= 1;  // inside the first chunk's ciphertext
  r.store->corrupt(r.pack_name(), pack);
  const VerifyReport damaged = r.verify(true);
  ASSERT_EQ(damaged.errors.size(), 1u) << all_text(damaged);
  EXPECT_TRUE(contains(damaged.errors[0].message, "chunk " + to_hex(r.first_chunk)))
      << damaged.errors[0].message;
}

TEST(Verify, DeletedPackIsAnErrorNamingItAndTheBackup) {
  SyntheticRepo r;
  ASSERT_TRUE(r.store->remove(r.pack_name()));
  const VerifyReport report = r.verify();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(count_problems(report.errors, r.pack_name(), "missing"), 1u) << all_text(report);
  EXPECT_EQ(report.errors.size(), 1u) << all_text(report);
  EXPECT_TRUE(contains(report.errors[0].message, std::string("needed by backup ") + kLabel))
      << report.errors[0].message;
  EXPECT_TRUE(contains(all_text(report), "error: " + r.pack_name() + ": missing ("));
}

TEST(Verify, FlippedPackByteIsFoundOnlyByReadingData) {
  SyntheticRepo r;
  Bytes pack = *r.store->get(r.pack_name(), std::nullopt);
  pack[r.first_chunk_pack.offset + r.first_chunk_pack.length / 2] ^= 0x40;
  r.store->corrupt(r.pack_name(), pack);

  const VerifyReport structure = r.verify(false);
  EXPECT_TRUE(structure.ok()) << all_text(structure);

  const VerifyReport data = r.verify(true);
  EXPECT_FALSE(data.ok());
  ASSERT_EQ(data.errors.size(), 1u) << all_text(data);
  EXPECT_EQ(data.errors[0].object, r.pack_name());
  EXPECT_TRUE(contains(data.errors[0].message, "chunk " + to_hex(r.first_chunk)))
      << data.errors[0].message;
}

// Restore trusts the XXH3 an index records for each chunk; reading the data
// checks that record against the envelope.
TEST(Verify, WrongRecordedXxh3IsFoundByReadingData) {
  SyntheticRepo r;
  bool rewritten = false;
  for (const auto& info : r.store->list("index/")) {
    auto entries = repo::decode_index(*r.repo->get_object(info.name), info.name);
    bool lists = false;
    for (auto& [chunk, loc] : entries) {
      if (chunk != r.first_chunk) continue;
      ASSERT_TRUE(loc.xxh3.has_value());
      *loc.xxh3 ^= 1;
      lists = true;
    }
    if (!lists) continue;
    const Bytes plaintext = repo::encode_index(entries);
    ASSERT_TRUE(r.store->remove(info.name));
    r.repo->put_object("index/" + to_hex(codec::sha256(plaintext)), plaintext);
    rewritten = true;
  }
  ASSERT_TRUE(rewritten);
  const VerifyReport structure = r.verify(false);
  EXPECT_TRUE(structure.ok()) << all_text(structure);
  const VerifyReport data = r.verify(true);
  ASSERT_EQ(data.errors.size(), 1u) << all_text(data);
  EXPECT_TRUE(contains(data.errors[0].message, "chunk " + to_hex(r.first_chunk)))
      << data.errors[0].message;
  EXPECT_TRUE(contains(data.errors[0].message, "records another XXH3")) << data.errors[0].message;
}

TEST(Verify, TruncatedPackIsAStructureError) {
  SyntheticRepo r;
  Bytes pack = *r.store->get(r.pack_name(), std::nullopt);
  pack.resize(pack.size() - 10);
  r.store->corrupt(r.pack_name(), pack);
  const VerifyReport report = r.verify(false);
  EXPECT_EQ(count_problems(report.errors, r.pack_name(), "truncated"), 1u) << all_text(report);
}

TEST(Verify, MissingSegmentIsAGapNamedWithTheBackup) {
  SyntheticRepo r;
  ASSERT_TRUE(r.store->remove(repo::segment_object_name(seg_name(6))));
  ASSERT_TRUE(r.store->remove(repo::meta_object_name(seg_name(6))));
  const VerifyReport report = r.verify();
  ASSERT_EQ(report.errors.size(), 1u) << all_text(report);
  EXPECT_EQ(report.errors[0].object, "wal");
  EXPECT_EQ(report.errors[0].message,
            seg_name(6) + " missing (needed by backup " + kLabel + " on timeline 1)");
  EXPECT_EQ(report.wal_segments, 9u);
}

TEST(Verify, SegmentsBeforeTheBackupAreNotNeeded) {
  SyntheticRepo r;
  ASSERT_TRUE(r.store->remove(repo::segment_object_name(seg_name(2))));
  ASSERT_TRUE(r.store->remove(repo::meta_object_name(seg_name(2))));
  const VerifyReport report = r.verify();
  EXPECT_TRUE(report.ok()) << all_text(report);
}

TEST(Verify, MissingStopSegmentIsNamed) {
  SyntheticRepo r;
  ASSERT_TRUE(r.store->remove(repo::meta_object_name(seg_name(3))));
  const VerifyReport report = r.verify();
  EXPECT_EQ(count_problems(report.errors, "wal", seg_name(3) + " missing (the stop segment of"), 1u)
      << all_text(report);
  // Its data object without metadata: an interrupted push, a warning.
  EXPECT_EQ(count_problems(report.warnings, repo::segment_object_name(seg_name(3))), 1u)
      << all_text(report);
}

TEST(Verify, SegmentDataMissingOrDamaged) {
  SyntheticRepo r;
  ASSERT_TRUE(r.store->remove(repo::segment_object_name(seg_name(5))));
  const std::string seg7 = repo::segment_object_name(seg_name(7));
  Bytes sealed = *r.store->get(seg7, std::nullopt);
  sealed.back() ^= 1;
  r.store->corrupt(seg7, sealed);

  const VerifyReport structure = r.verify(false);
  ASSERT_EQ(structure.errors.size(), 1u) << all_text(structure);
  EXPECT_EQ(structure.errors[0].object, repo::segment_object_name(seg_name(5)));

  const VerifyReport data = r.verify(true);
  EXPECT_EQ(data.errors.size(), 2u) << all_text(data);
  EXPECT_EQ(count_problems(data.errors, seg7), 1u) << all_text(data);
}

TEST(Verify, BlockMapsDecodeOrAreNamedAndIncompleteOnesAreNotes) {
  SyntheticRepo r;
  auto map_of = [](std::uint64_t segno) {
    const repo::SegmentMeta m = walvault::testing::synthetic_segment_meta(1, segno, kSegSize, kT0);
    return walvault::testing::synthetic_block_map(
        m, kSegSize, pattern(1000 + static_cast<std::uint32_t>(segno), 4096));
  };
  auto put_map = [&](std::uint64_t segno, const Bytes& plaintext) {
    r.repo->put_object(repo::block_map_object_name(seg_name(segno)), plaintext);
  };
  put_map(4, pg::encode_block_map(map_of(4)));
  pg::BlockMap incomplete = map_of(5);
  incomplete.mark_incomplete("test: an unknown record");
  put_map(5, pg::encode_block_map(incomplete));
  Bytes crafted = pg::encode_block_map(map_of(6));
  crafted.pop_back();  // truncated: no tail flag
  put_map(6, crafted);
  put_map(7, pg::encode_block_map(map_of(4)));  // segment 4's map under 7's name
  pg::BlockMap other_bytes = map_of(8);
  other_bytes.segment_xxh3 ^= 1;
  put_map(8, pg::encode_block_map(other_bytes));
  const auto map_object = [](std::uint64_t segno) {
    return repo::block_map_object_name(seg_name(segno));
  };

  const VerifyReport structure = r.verify(false);
  EXPECT_EQ(structure.errors.size(), 2u) << all_text(structure);
  EXPECT_EQ(count_problems(structure.errors, map_object(6)), 1u) << all_text(structure);
  EXPECT_EQ(count_problems(structure.errors, map_object(7)), 1u) << all_text(structure);
  EXPECT_TRUE(structure.warnings.empty()) << all_text(structure);
  ASSERT_EQ(structure.notes.size(), 1u) << all_text(structure);
  EXPECT_EQ(structure.notes[0].object, map_object(5));
  EXPECT_TRUE(contains(all_text(structure), "info: " + map_object(5) +
                                                ": incomplete (test: an "
                                                "unknown record)"))
      << all_text(structure);
  EXPECT_EQ(structure.block_maps, 4u);  // 4, 5, 7, 8 decode

  // Reading data compares each map's XXH3 with its segment's metadata.
  const VerifyReport data = r.verify(true);
  EXPECT_EQ(data.errors.size(), 3u) << all_text(data);
  EXPECT_EQ(count_problems(data.errors, map_object(8)), 1u) << all_text(data);
}

TEST(Verify, OrphanPackIsAWarning) {
  SyntheticRepo r;
  const Bytes orphan = r.repo->seal_object(pattern(99, 1000));
  repo::ChunkId id;
  const codec::Digest d = codec::sha256(orphan);
  std::copy(d.begin(), d.end(), id.begin());
  r.store->put(repo::pack_object_name(id), orphan);
  for (bool read_data : {false, true}) {
    const VerifyReport report = r.verify(read_data);
    EXPECT_TRUE(report.ok()) << all_text(report);
    ASSERT_EQ(report.warnings.size(), 1u) << all_text(report);
    EXPECT_EQ(report.warnings[0].object, repo::pack_object_name(id));
    EXPECT_TRUE(contains(report.warnings[0].message, "orphan")) << report.warnings[0].message;
    EXPECT_TRUE(contains(all_text(report), "; 0 errors, 1 warning\n")) << all_text(report);
  }
}

TEST(Verify, DamagedIndexAndMissingFileListAreNamed) {
  SyntheticRepo r;
  const std::string index = r.store->list("index/").front().name;
  r.store->corrupt(index, to_bytes("not an envelope"));
  VerifyReport report = r.verify();
  EXPECT_EQ(count_problems(report.errors, index), 1u) << all_text(report);
  // Its chunks are now listed by no index, and its pack is an orphan.
  EXPECT_GE(count_problems(report.errors, basebackup::files_object_name(kLabel), "not listed"), 1u)
      << all_text(report);
  EXPECT_EQ(report.warnings.size(), 1u) << all_text(report);

  SyntheticRepo r2;
  ASSERT_TRUE(r2.store->remove(basebackup::files_object_name(kLabel)));
  report = r2.verify();
  ASSERT_EQ(report.errors.size(), 1u) << all_text(report);
  EXPECT_EQ(report.errors[0].object, basebackup::files_object_name(kLabel));
}

// A file list anyone with write access forged: verify's structure pass
// refuses its names as restore would (basebackup::check_file_list), naming the
// backup and the entry, instead of reporting a clean repository.
TEST(Verify, ForgedFileListNamesAreErrors) {
  struct Forgery {
    const char* what;
    std::vector<basebackup::FileEntry> entries;
    const char* entry;  // the entry the error names
  };
  basebackup::FileEntry escape;
  escape.path = "../outside/pwned";
  escape.mode = 0600;
  basebackup::FileEntry link;
  link.path = "base/link";
  link.type = basebackup::EntryType::kSymlink;
  link.link_target = "/tmp";
  basebackup::FileEntry child;
  child.path = "base/link/child";
  child.mode = 0600;
  const std::vector<Forgery> forgeries = {
      {"escaping path", {escape}, "'../outside/pwned'"},
      {"child of a symlink", {link, child}, "'base/link/child'"},
  };
  const std::string object = basebackup::files_object_name(kLabel);
  for (const auto& forgery : forgeries) {
    SCOPED_TRACE(forgery.what);
    SyntheticRepo r;
    basebackup::BackupFiles files = basebackup::read_files(*r.repo, kLabel);
    for (const auto& e : forgery.entries) files.entries.push_back(e);
    ASSERT_TRUE(r.store->remove(object));  // objects are create-only
    ASSERT_EQ(r.repo->put_object(object, as_bytes(basebackup::files_to_json(files))),
              store::PutResult::kCreated);
    for (bool read_data : {false, true}) {
      SCOPED_TRACE(read_data ? "read data" : "structure");
      const VerifyReport report = r.verify(read_data);
      ASSERT_EQ(report.errors.size(), 1u) << all_text(report);
      EXPECT_EQ(report.errors[0].object, object);
      EXPECT_TRUE(contains(report.errors[0].message, std::string("backup ") + kLabel))
          << report.errors[0].message;
      EXPECT_TRUE(contains(report.errors[0].message, std::string("entry ") + forgery.entry))
          << report.errors[0].message;
      EXPECT_TRUE(report.warnings.empty()) << all_text(report);
    }
  }
}

TEST(Verify, JsonReport) {
  SyntheticRepo r;
  ASSERT_TRUE(r.store->remove(r.pack_name()));
  const auto j = nlohmann::json::parse(verify_report_json(r.verify()));
  EXPECT_EQ(j.at("ok"), false);
  EXPECT_EQ(j.at("backups"), 1);
  EXPECT_EQ(j.at("wal_segments"), 10);
  ASSERT_EQ(j.at("errors").size(), 1u);
  EXPECT_EQ(j.at("errors")[0].at("object"), r.pack_name());
  EXPECT_TRUE(j.at("warnings").empty());
}

// Every object class the repository writes (docs/format.md, "Object names"),
// one object of each: a byte flipped in it is an error naming it when verify
// reads the data; an object of no class is a warning.
TEST(Verify, ReadDataFindsAFlippedByteInEveryObjectClass) {
  SyntheticRepo r(/*encrypted=*/true);
  walvault::testing::TempDir dir("wv-verify-classes");
  r.repo->add_key_file(dir.sub("repo.key"));  // keys/file-...
  const std::string history_file = repo::file_object_name("00000002.history");
  r.repo->put_object(history_file, as_bytes(std::string("1\t0/B000000\tno recovery target\n")));
  r.repo->put_object(repo::file_object_name("000000010000000000000003.00000028.backup"),
                     as_bytes(std::string("START WAL LOCATION: 0/3000028\n")));
  ASSERT_TRUE(basebackup::pin_backup(*r.repo, kLabel, "keep"));
  ASSERT_TRUE(repo::append_history(*r.repo, repo::start_history("verify")).empty());
  const auto lock = repo::RepoLock::acquire(*r.repo, repo::LockMode::kShared, "test",
                                            repo::default_lock_options());
  const auto snap = walvault::testing::add_synthetic_snapshot(*r.repo);
  const std::string who = "snapshot " + files::snapshot_id(snap.record);

  const auto first = [&](const std::string& prefix) {
    const auto listed = r.store->list(prefix);
    return listed.empty() ? std::string() : listed.front().name;
  };
  const std::vector<std::string> objects = {
      repo::kConfigObject,
      first("keys/"),
      repo::kClusterObject,
      repo::segment_object_name(seg_name(4)),
      repo::meta_object_name(seg_name(4)),
      history_file,
      repo::file_object_name("000000010000000000000003.00000028.backup"),
      r.pack_name(),
      first("index/"),
      basebackup::record_object_name(kLabel),
      basebackup::files_object_name(kLabel),
      basebackup::pin_object_name(kLabel),
      first("history/"),
      first("locks/"),
      snap.object,      // the snapshot record
      snap.tree_pack,   // its two trees
      snap.data_pack};  // its files' chunks
  const VerifyReport clean = r.verify(true);
  ASSERT_TRUE(clean.ok()) << all_text(clean);
  EXPECT_TRUE(clean.warnings.empty()) << all_text(clean);

  for (const std::string& object : objects) {
    SCOPED_TRACE(object);
    ASSERT_FALSE(object.empty());
    const Bytes original = *r.store->get(object, std::nullopt);
    Bytes flipped = original;
    flipped[flipped.size() / 2] ^= 0x10;
    r.store->corrupt(object, flipped);
    const VerifyReport report = r.verify(true);
    EXPECT_FALSE(report.ok());
    EXPECT_GE(count_problems(report.errors, object), 1u) << all_text(report);
    // A damaged tree or file chunk is also named with the snapshot and the
    // path in it; the tree even without --read-data (trees are always read).
    if (object == snap.tree_pack) {
      EXPECT_EQ(count_problems(report.errors, snap.object, who + " (app/"), 1u) << all_text(report);
      EXPECT_EQ(count_problems(r.verify(false).errors, snap.object, ": tree "), 1u)
          << all_text(r.verify(false));
    }
    if (object == snap.data_pack) {
      EXPECT_EQ(count_problems(report.errors, snap.object, "is damaged (in " + snap.data_pack), 1u)
          << all_text(report);
    }
    r.store->corrupt(object, original);
  }

  EXPECT_EQ(clean.snapshots, 1u);
  r.store->put("snapshots/unknown", r.repo->seal_object(pattern(7, 100)));
  const VerifyReport unknown = r.verify(true);
  EXPECT_TRUE(unknown.ok()) << all_text(unknown);
  EXPECT_EQ(count_problems(unknown.warnings, "snapshots/unknown", "not an object walvault writes"),
            1u)
      << all_text(unknown);
}

// A file naming a chunk no index lists (structure pass), and files whose pack
// is gone (named after the packs were checked): each error names the snapshot
// (id, volume/label) and the file's path in it.
TEST(Verify, SnapshotFileWithAMissingChunkIsNamedByPath) {
  SyntheticRepo r;
  const auto snap = walvault::testing::add_synthetic_snapshot(*r.repo, /*missing=*/true);
  const std::string who =
      "snapshot " + files::snapshot_id(snap.record) + " (app/" + snap.record.label + ")";
  for (bool read_data : {false, true}) {
    const VerifyReport report = r.verify(read_data);
    ASSERT_EQ(report.errors.size(), 1u) << all_text(report);
    EXPECT_EQ(report.errors[0].object, snap.object);
    EXPECT_TRUE(report.errors[0].message.starts_with(who + ": 'docs/a.txt': chunk "))
        << report.errors[0].message;
    EXPECT_TRUE(contains(report.errors[0].message, "(3 of 3) is not listed by any index"))
        << report.errors[0].message;
    EXPECT_EQ(report.snapshots, 1u);
  }

  SyntheticRepo r2;
  const auto whole = walvault::testing::add_synthetic_snapshot(*r2.repo);
  ASSERT_TRUE(r2.store->remove(whole.data_pack));
  const VerifyReport report = r2.verify();
  EXPECT_EQ(count_problems(report.errors, whole.data_pack,
                           "needed by snapshot app/" + whole.record.label),
            1u)
      << all_text(report);
  EXPECT_EQ(count_problems(report.errors, whole.object, "'docs/a.txt': chunk "), 2u)
      << all_text(report);
  EXPECT_EQ(count_problems(report.errors, whole.object, "'b.bin': chunk "), 1u) << all_text(report);
  EXPECT_EQ(count_problems(report.errors, whole.object, "is in " + whole.data_pack + ", missing"),
            3u)
      << all_text(report);

  // A tree whose pack is gone: the snapshot is named with the directory.
  SyntheticRepo r3;
  const auto trees_gone = walvault::testing::add_synthetic_snapshot(*r3.repo);
  ASSERT_TRUE(r3.store->remove(trees_gone.tree_pack));
  const VerifyReport no_trees = r3.verify();
  EXPECT_EQ(count_problems(no_trees.errors, trees_gone.object, "the root: tree "), 1u)
      << all_text(no_trees);
}

// A record that does not decode is an error naming it; the rest is checked.
TEST(Verify, DamagedSnapshotRecordIsNamed) {
  SyntheticRepo r;
  const auto snap = walvault::testing::add_synthetic_snapshot(*r.repo);
  ASSERT_TRUE(r.store->remove(snap.object));
  r.repo->put_object(snap.object, as_bytes(std::string("{\"volume\": 1}")));
  const VerifyReport report = r.verify();
  ASSERT_EQ(report.errors.size(), 1u) << all_text(report);
  EXPECT_EQ(report.errors[0].object, snap.object);
  EXPECT_EQ(report.snapshots, 0u);
}

TEST(Info, SummarisesTheRepository) {
  SyntheticRepo r;
  const InfoReport info = repository_info(*r.repo);
  EXPECT_EQ(info.repo_id, r.repo->config().repo_id);
  EXPECT_FALSE(info.encrypted);
  ASSERT_TRUE(info.cluster);
  EXPECT_EQ(info.cluster->system_id, 42u);
  EXPECT_FALSE(info.space);  // mem: does not report space
  ASSERT_EQ(info.backups.size(), 1u);
  EXPECT_EQ(info.backups[0].label, kLabel);
  ASSERT_TRUE(info.dedup_ratio);
  EXPECT_GT(*info.dedup_ratio, 0.0);
  EXPECT_GT(info.pack_bytes, 0u);
  EXPECT_GT(info.size_bytes, info.pack_bytes + info.wal_bytes);
  ASSERT_TRUE(info.window.earliest_consistent_us);
  EXPECT_EQ(*info.window.earliest_consistent_us, kT0 + 3 * kMinute + kMinute / 2);
  EXPECT_EQ(info.window.latest_commit_us, kT0 + 10 * kMinute);
  EXPECT_EQ(info.windows.size(), 1u);
  EXPECT_EQ(info.wal_segments, 10u);
  EXPECT_EQ(info.last_segment, seg_name(10));
  EXPECT_EQ(info.last_archived_us, kT0 + 10 * kMinute + 1000);
  ASSERT_EQ(info.restore_points.size(), 1u);
  EXPECT_EQ(info.restore_points[0].name, "rp8");

  const auto j = nlohmann::json::parse(info_json(info));
  for (const char* key : {"repository", "cluster", "size_bytes", "dedup_ratio", "backups", "window",
                          "windows", "wal", "restore_points", "space"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j.at("repository").at("id"), info.repo_id);
  EXPECT_EQ(j.at("cluster").at("system_id"), "42");
  EXPECT_EQ(j.at("backups")[0].at("label"), kLabel);
  EXPECT_EQ(j.at("window").at("restorable"), true);
  EXPECT_EQ(j.at("window").at("timeline"), 1);
  EXPECT_EQ(j.at("wal").at("last_segment"), seg_name(10));
  EXPECT_EQ(j.at("wal").at("last_archived_time"), format_time_us(kT0 + 10 * kMinute + 1000));
  EXPECT_EQ(j.at("wal").at("latest_commit_time_us"), kT0 + 10 * kMinute);
  EXPECT_EQ(j.at("restore_points")[0].at("name"), "rp8");
  const std::string text = info_text(info);
  EXPECT_TRUE(contains(text, "backups: 1\n  " + std::string(kLabel))) << text;
  EXPECT_TRUE(contains(text, "window (timeline 1): earliest consistent")) << text;
}

TEST(Info, EmptyRepository) {
  auto store = std::make_shared<store::MemStore>();
  repo::Repository::init(*store, {});
  auto repo = repo::Repository::open(store, {});
  const InfoReport info = repository_info(*repo);
  EXPECT_FALSE(info.cluster);
  EXPECT_FALSE(info.dedup_ratio);
  EXPECT_FALSE(info.last_segment);
  EXPECT_FALSE(info.window.earliest_consistent_us);
  const auto j = nlohmann::json::parse(info_json(info));
  EXPECT_TRUE(j.at("cluster").is_null());
  EXPECT_TRUE(j.at("dedup_ratio").is_null());
  EXPECT_EQ(j.at("window").at("restorable"), false);
  EXPECT_TRUE(j.at("wal").at("last_segment").is_null());
}

}  // namespace
}  // namespace walvault::ops
