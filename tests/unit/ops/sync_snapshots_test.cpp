// repo sync of file-volume snapshots between repositories in memory, in
// every combination of encryption: the snapshot arrives whole (verify
// --read-data clean, a restore from the copy identical to the source tree),
// cut by the destination's own chunker (a --force-reread snapshot taken
// straight into the destination stores nothing new), a second run copies
// nothing, the next day's sync reads only the changed files, a run
// interrupted at any put is completed by the next, and a name the destination
// holds for another snapshot is skipped.
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/time_util.h"
#include "files/browse.h"
#include "files/snapshot_restore.h"
#include "files/take_snapshot.h"
#include "ops/sync.h"
#include "ops/verify.h"
#include "repo/layout.h"
#include "store/fault_store.h"
#include "store/mem_store.h"
#include "support/error_code.h"
#include "support/file_tree.h"
#include "support/pg_cluster.h"
#include "support/seeded_bytes.h"

namespace walvault::ops {
namespace {

struct Repo {
  explicit Repo(const std::string& passphrase) : mem(std::make_shared<store::MemStore>()) {
    repo::InitOptions init;
    if (!passphrase.empty()) {
      init.encrypt = true;
      init.passphrase = secrets.passphrase = passphrase;
      init.kdf.n = 1024;
    }
    repo::Repository::init(*mem, init);
    repo = repo::Repository::open(mem, secrets);
  }
  std::set<std::string> objects() const {
    std::set<std::string> out;
    for (const auto& o : mem->list("")) out.insert(o.name);
    return out;
  }
  std::shared_ptr<store::MemStore> mem;
  repo::Secrets secrets;
  std::unique_ptr<repo::Repository> repo;
};

files::SnapshotRecord snapshot(repo::Repository& r, const std::string& dir,
                               bool force_reread = false, std::int64_t start_us = 0) {
  files::SnapshotStats stats;
  files::TakeSnapshotOptions o{.volume = "app_data", .paths = {dir}, .start_us = start_us};
  o.walk.force_reread = force_reread;
  return files::take_snapshot(r, o, stats);
}

SyncReport sync(Repo& a, repo::Repository& b) { return sync_repositories(*a.repo, b, {}); }

// The chunk lengths of one file of a snapshot.
std::vector<std::uint32_t> cuts(repo::Repository& r, const files::SnapshotRecord& s,
                                const std::string& path) {
  repo::ChunkStore chunks(r);
  const auto node = files::find_entry(chunks, s.root, path);
  std::vector<std::uint32_t> out;
  if (node)
    for (const auto& c : node->chunks) out.push_back(c.length);
  return out;
}

struct Mode {
  const char* name;
  const char* from_passphrase;
  const char* to_passphrase;
};

class SyncSnapshots : public ::testing::TestWithParam<Mode> {};

TEST_P(SyncSnapshots, ArriveWholeCutByTheTargetsChunkerAndOnce) {
  if (geteuid() != 0) GTEST_SKIP() << "the generated tree's foreign owner needs root";
  walvault::testing::TempDir src("wv-sync-src"), dst("wv-sync-dst");
  walvault::testing::generate_tree(src.path());
  Repo a(GetParam().from_passphrase), b(GetParam().to_passphrase);
  const files::SnapshotRecord original = snapshot(*a.repo, src.path());

  const SyncReport first = sync(a, *b.repo);
  EXPECT_EQ(first.snapshots, std::vector<std::string>{"app_data/" + original.label});
  EXPECT_TRUE(first.skipped.empty());
  EXPECT_NE(sync_report_text(first).find(", 1 snapshot ("), std::string::npos)
      << sync_report_text(first);
  const VerifyReport v = verify_repository(*b.repo, {.read_data = true});
  EXPECT_TRUE(v.ok()) << verify_report_text(v);
  EXPECT_EQ(v.snapshots, 1u);

  // The copy restores to the source tree, under the same name and id.
  const files::SnapshotRecord copy = files::find_snapshot(*b.repo, "latest");
  EXPECT_EQ(copy.label, original.label);
  EXPECT_EQ(files::snapshot_id(copy), files::snapshot_id(original));
  EXPECT_EQ(copy.keyed_chunker, b.repo->encrypted());
  {
    repo::ChunkStore chunks(*b.repo);
    files::RestoreStats rs;
    files::restore_snapshot(chunks, copy.root, dst.sub("out"),
                            {.restore_owner = true, .root_metadata = copy.root_node}, rs);
  }
  std::vector<std::string> diffs;
  walvault::testing::compare_trees(src.path(), dst.sub("out"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();

  // Cut by B's chunker: B's own snapshot of the same files, every file read
  // again, stores nothing new; across different keys the cuts differ.
  // (An hour later: its label is not one A will use.)
  const files::SnapshotRecord own =
      snapshot(*b.repo, src.path(), /*force_reread=*/true, original.start_us + 3'600'000'000);
  EXPECT_EQ(own.added_bytes, 0u);
  EXPECT_EQ(own.root, copy.root);
  const bool same_gear = !a.repo->encrypted() && !b.repo->encrypted();
  EXPECT_EQ(cuts(*a.repo, original, "docs/large.bin") == cuts(*b.repo, copy, "docs/large.bin"),
            same_gear);

  // Nothing new: nothing written.
  const auto before = b.objects();
  const SyncReport again = sync(a, *b.repo);
  EXPECT_TRUE(again.nothing_copied()) << sync_report_text(again);
  EXPECT_EQ(b.objects(), before);

  // The next day: one file changed, one new. Only their data is read from A
  // (re-cut: what B holds of the first snapshot is known by its own ids),
  // and the copy restores to the churned tree.
  walvault::testing::write_bytes(src.sub("many/f7.txt"), as_bytes(std::string("day 2")));
  walvault::testing::write_bytes(src.sub("many/new.txt"), as_bytes(std::string("new")));
  const files::SnapshotRecord second = snapshot(*a.repo, src.path());
  const SyncReport next = sync(a, *b.repo);
  EXPECT_EQ(next.snapshots, std::vector<std::string>{"app_data/" + second.label});
  EXPECT_EQ(next.chunks_read, 2u);
  {
    repo::ChunkStore chunks(*b.repo);
    files::RestoreStats rs;
    files::restore_snapshot(
        chunks, files::find_snapshot(*b.repo, "app_data@" + format_time_us(second.start_us)).root,
        dst.sub("next"), {.restore_owner = true}, rs);
  }
  diffs.clear();
  walvault::testing::compare_trees(src.path(), dst.sub("next"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
}

INSTANTIATE_TEST_SUITE_P(
    Encryption, SyncSnapshots,
    ::testing::Values(Mode{"plain", "", ""}, Mode{"plain_to_encrypted", "", "to passphrase"},
                      Mode{"encrypted_to_plain", "from passphrase", ""},
                      Mode{"both_encrypted", "from passphrase", "another passphrase"}),
    [](const auto& info) { return std::string(info.param.name); });

// A run that fails at any put leaves B without the record (or with the whole
// snapshot), never a record naming what B lacks; the next run completes it.
TEST(SyncSnapshotsTest, InterruptedAtAnyPutIsCompletedByTheNextRun) {
  walvault::testing::TempDir src("wv-sync-src");
  ASSERT_EQ(mkdir(src.sub("d").c_str(), 0755), 0);
  walvault::testing::write_bytes(src.sub("d/x"), walvault::testing::seeded_bytes(7, 5u << 20));
  walvault::testing::write_bytes(src.sub("y"), as_bytes(std::string("small")));
  Repo a(""), proto("to passphrase");
  snapshot(*a.repo, src.path());
  bool completed = false;
  for (std::uint64_t n = 1; !completed; ++n) {
    SCOPED_TRACE("put " + std::to_string(n) + " fails");
    ASSERT_LT(n, 100u);
    Repo b("to passphrase");
    auto faulty = std::make_shared<store::FaultStore>(b.mem, store::FaultPlan{.fail_puts_from = n});
    auto through = repo::Repository::open(faulty, b.secrets);
    completed = !walvault::testing::error_code_of([&] { sync(a, *through); });
    const VerifyReport partial = verify_repository(*b.repo, {.read_data = true});
    EXPECT_TRUE(partial.ok()) << verify_report_text(partial);
    const SyncReport rest = sync(a, *b.repo);
    EXPECT_EQ(rest.snapshots.empty(), completed);
    const VerifyReport done = verify_repository(*b.repo, {.read_data = true});
    EXPECT_TRUE(done.ok()) << verify_report_text(done);
    EXPECT_EQ(done.snapshots, 1u);
  }
}

TEST(SyncSnapshotsTest, ANameTheTargetUsesForAnotherSnapshotIsSkippedAndNamed) {
  walvault::testing::TempDir src("wv-sync-src");
  walvault::testing::write_bytes(src.sub("f"), as_bytes(std::string("content")));
  Repo a(""), b("");
  const files::SnapshotRecord s = snapshot(*a.repo, src.path());
  files::SnapshotRecord other = s;
  other.host = "another-host";
  b.repo->put_object(repo::snapshot_object_name(s.volume, s.label),
                     as_bytes(files::snapshot_to_json(other)));
  const SyncReport r = sync(a, *b.repo);
  EXPECT_TRUE(r.snapshots.empty());
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].find("snapshot app_data/" + s.label), std::string::npos) << r.skipped[0];
  EXPECT_EQ(files::find_snapshot(*b.repo, "latest").host, "another-host");
}

TEST(SyncSnapshotsTest, DryRunListsTheSnapshot) {
  walvault::testing::TempDir src("wv-sync-src");
  walvault::testing::write_bytes(src.sub("f"), as_bytes(std::string("content")));
  Repo a(""), b("");
  const files::SnapshotRecord s = snapshot(*a.repo, src.path());
  const auto before = b.objects();
  const SyncReport r = sync_repositories(*a.repo, *b.repo, {.dry_run = true});
  EXPECT_EQ(b.objects(), before);
  EXPECT_NE(sync_report_text(r).find("snapshot app_data/" + s.label + "\n"), std::string::npos)
      << sync_report_text(r);
}

}  // namespace
}  // namespace walvault::ops
