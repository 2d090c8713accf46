// The pipelined snapshot (walk + sealing pool) and the parallel restore
// (walk + file writers) against their one-thread forms: the same trees and
// chunk ids, the same restored tree, metadata included (a directory's mtime
// is set after its files are renamed in), hard links linked again, and a
// delta restore that finds nothing to write.
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "codec/fastcdc.h"
#include "files/snapshot_backup.h"
#include "files/snapshot_restore.h"
#include "store/mem_store.h"
#include "store/store_wrapper.h"
#include "support/error_code.h"
#include "support/file_tree.h"
#include "support/pg_cluster.h"
#include "support/seeded_bytes.h"

namespace walvault::files {
namespace {

using testing::compare_trees;
using testing::generate_tree;
using testing::read_bytes;
using testing::seeded_bytes;
using testing::TempDir;
using testing::write_bytes;

struct Store {
  Store() : store(std::make_shared<store::MemStore>()) {
    repo::Repository::init(*store, {});
    repo = repo::Repository::open(store, {});
    chunks = std::make_unique<repo::ChunkStore>(*repo);
  }
  repo::ChunkId snapshot(const std::string& root, const std::optional<repo::ChunkId>& parent,
                         int parallel, SnapshotStats& stats) {
    SnapshotOptions o;
    o.parallel = parallel;
    const repo::ChunkId id = snapshot_directory(*chunks, chunker, root, parent, o, stats);
    chunks->flush();
    return id;
  }
  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<repo::Repository> repo;
  std::unique_ptr<repo::ChunkStore> chunks;
  codec::CdcChunker chunker{codec::CdcParams{}, codec::unkeyed_gear_table()};
};

// generate_tree plus a directory of many files of a few MiB each, so that
// several frames are in flight at once.
void generate_big_tree(const std::string& root) {
  generate_tree(root);
  ASSERT_EQ(mkdir((root + "/big").c_str(), 0755), 0);
  for (int i = 0; i < 12; ++i)
    write_bytes(root + "/big/f" + std::to_string(i),
                seeded_bytes(100 + static_cast<std::uint64_t>(i), (1u << 20) * (i % 5) + 777));
}

TEST(ParallelSnapshotTest, SameTreesAndChunksAsOneThread) {
  TempDir src("wv-files-src");
  generate_big_tree(src.path());
  Store one, four;
  SnapshotStats s1, s4;
  const repo::ChunkId r1 = one.snapshot(src.path(), std::nullopt, 1, s1);
  const repo::ChunkId r4 = four.snapshot(src.path(), std::nullopt, 4, s4);
  EXPECT_EQ(r1, r4) << "the root tree names every tree and chunk below it";
  EXPECT_EQ(s4.files, s1.files);
  EXPECT_EQ(s4.read_bytes, s1.read_bytes);
  // The pool also seals consecutive small files as one frame (compressed as
  // one stream), so it stores at most what one thread does.
  EXPECT_LE(s4.added_bytes, s1.added_bytes);
  EXPECT_GT(s4.added_bytes, s1.added_bytes * 9 / 10);
  EXPECT_EQ(four.chunks->known_chunks(), one.chunks->known_chunks());
  EXPECT_EQ(s4.warnings, s1.warnings);

  // Unchanged: nothing read, nothing stored, the same root.
  SnapshotStats again;
  EXPECT_EQ(four.snapshot(src.path(), r4, 4, again), r4);
  EXPECT_EQ(again.read_bytes, 0u);
  EXPECT_EQ(again.added_bytes, 0u);

  // After a change both forms still agree.
  write_bytes(src.sub("big/f3"), seeded_bytes(999, 3u << 20));
  SnapshotStats c1, c4;
  EXPECT_EQ(one.snapshot(src.path(), r1, 1, c1), four.snapshot(src.path(), r4, 4, c4));
  EXPECT_LE(c4.added_bytes, c1.added_bytes);
  EXPECT_GT(c4.added_bytes, c1.added_bytes * 9 / 10);
}

// Small files that follow each other share one envelope (one zstd frame):
// 300 files of a few KiB take a handful of envelopes, each file's chunk is
// still found and restored on its own, and sharing compresses better than
// one frame per file.
TEST(ParallelSnapshotTest, SmallFilesShareFrames) {
  TempDir src("wv-files-src"), dst("wv-files-dst");
  ASSERT_EQ(mkdir(src.sub("reports").c_str(), 0755), 0);
  for (int i = 0; i < 300; ++i) {
    std::string text;
    for (int row = 0; row < 60; ++row)
      text += "study-" + std::to_string(i % 7) + ",subject-" + std::to_string(row * 31 + i) +
              ",visit,measure," + std::to_string((row * 7919 + i) % 1000) + "\n";
    write_bytes(src.sub("reports/r" + std::to_string(i) + ".csv"), Bytes(text.begin(), text.end()));
  }
  Store one, three;
  SnapshotStats s1, s3;
  const repo::ChunkId root = three.snapshot(src.path(), std::nullopt, 3, s3);
  EXPECT_EQ(one.snapshot(src.path(), std::nullopt, 1, s1), root);
  const std::optional<Tree> top = load_tree(*three.chunks, root);
  ASSERT_TRUE(top);
  const std::optional<Tree> reports = load_tree(*three.chunks, top->nodes.at(0).subtree);
  ASSERT_TRUE(reports);
  std::set<std::pair<repo::ChunkId, std::uint64_t>> envelopes;
  for (const Node& n : reports->nodes)
    for (const ChunkRef& c : n.chunks) {
      const auto loc = three.chunks->locate(c.id);
      ASSERT_TRUE(loc);
      envelopes.insert({loc->pack, loc->offset});
    }
  EXPECT_LE(envelopes.size(), 300u / 16) << "small files sealed one envelope each";
  EXPECT_LT(s3.added_bytes, s1.added_bytes) << "one frame per file (no pool) compresses worse";
  RestoreStats restored;
  restore_snapshot(*three.chunks, root, dst.sub("r"), {.parallel = 3}, restored);
  std::vector<std::string> diffs;
  compare_trees(src.path(), dst.sub("r"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
}

// Counts the ranged reads of each envelope (frame) in a pack object; a
// restore's writers read at once.
class FrameReads final : public store::StoreWrapper {
 public:
  using StoreWrapper::StoreWrapper;
  std::optional<Bytes> get(const std::string& name, std::optional<store::Range> range) override {
    if (range && name.starts_with("packs/")) {
      std::lock_guard lock(mu_);
      ++reads_[{name, range->offset}];
    }
    return StoreWrapper::get(name, range);
  }
  void reset() {
    std::lock_guard lock(mu_);
    reads_.clear();
  }
  std::size_t frames() {
    std::lock_guard lock(mu_);
    return reads_.size();
  }
  // "<pack>@<offset> xN" for each frame read more than once.
  std::vector<std::string> read_again() {
    std::lock_guard lock(mu_);
    std::vector<std::string> again;
    for (const auto& [frame, n] : reads_)
      if (n > 1)
        again.push_back(frame.first + "@" + std::to_string(frame.second) + " x" +
                        std::to_string(n));
    return again;
  }

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, std::uint64_t>, int> reads_;
};

// The backup seals small files several to a frame, in walk order, across
// directories (a directory's files, then its subdirectories' in place). The
// restore hands files to its writers in batches that follow those frames
// across directories and end only where a frame ends, so each frame is read,
// decrypted and decompressed once. Batches of one directory each, ended at
// 64 files, split frames between writers: the files bench's restore read
// 2.2x the repository's bytes.
TEST(ParallelRestoreTest, EachFrameIsReadOnce) {
  TempDir src("wv-files-src"), dst("wv-files-dst");
  for (int d = 0; d < 6; ++d) {
    const std::string dir = src.sub("d" + std::to_string(d));
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((dir + "/sub").c_str(), 0755), 0);
    for (int i = 0; i < 100; ++i)
      write_bytes(dir + (i % 4 == 0 ? "/sub/f" : "/f") + std::to_string(i),
                  seeded_bytes(static_cast<std::uint32_t>(1000 * d + i), 3000 + 40 * i));
  }
  auto reads = std::make_shared<FrameReads>(std::make_shared<store::MemStore>());
  repo::Repository::init(*reads, {});
  const auto repository = repo::Repository::open(reads, {});
  repo::ChunkStore chunks(*repository);
  const codec::CdcChunker chunker{codec::CdcParams{}, codec::unkeyed_gear_table()};
  SnapshotOptions o;
  o.parallel = 3;
  SnapshotStats stats;
  const repo::ChunkId root =
      snapshot_directory(chunks, chunker, src.path(), std::nullopt, o, stats);
  chunks.flush();
  ASSERT_EQ(stats.files, 600u);

  reads->reset();
  RestoreStats restored;
  restore_snapshot(chunks, root, dst.sub("r"), {.parallel = 4}, restored);
  EXPECT_EQ(restored.files, 600u);
  // 600 files of ~5 KiB, 64 to a frame: ~10 frames, plus the trees.
  EXPECT_GE(reads->frames(), 10u);
  const std::vector<std::string> again = reads->read_again();
  EXPECT_TRUE(again.empty()) << again.size()
                             << " frames read more than once, first: " << again.front();
  std::vector<std::string> diffs;
  compare_trees(src.path(), dst.sub("r"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
}

TEST(ParallelRestoreTest, SameTreeAsTheSourceAndDeltaWritesNothing) {
  TempDir src("wv-files-src"), dst("wv-files-dst");
  generate_big_tree(src.path());
  Store s;
  SnapshotStats stats;
  const repo::ChunkId root = s.snapshot(src.path(), std::nullopt, 3, stats);
  const bool as_root = geteuid() == 0;

  RestoreStats one, three;
  restore_snapshot(*s.chunks, root, dst.sub("one"), {.restore_owner = as_root, .parallel = 1}, one);
  restore_snapshot(*s.chunks, root, dst.sub("three"), {.restore_owner = as_root, .parallel = 3},
                   three);
  EXPECT_EQ(three.files, one.files);
  EXPECT_EQ(three.written_bytes, one.written_bytes);
  EXPECT_EQ(three.warnings, one.warnings);
  std::vector<std::string> diffs;
  compare_trees(dst.sub("one"), dst.sub("three"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
  if (as_root) {  // owners and the unreadable file of generate_tree need root
    compare_trees(src.path(), dst.sub("three"), "", diffs);
    EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
  }
  struct stat a, b;
  ASSERT_EQ(stat(dst.sub("three/docs/report.csv").c_str(), &a), 0);
  ASSERT_EQ(stat(dst.sub("three/hard-report.csv").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "hard links linked again";

  // Delta with writers: one changed file rewritten, the rest left alone.
  write_bytes(dst.sub("three/big/f2"), seeded_bytes(5, (1u << 20) * 2 + 777));
  RestoreStats delta;
  restore_snapshot(*s.chunks, root, dst.sub("three"),
                   {.delta = true, .restore_owner = as_root, .parallel = 3}, delta);
  EXPECT_EQ(read_bytes(dst.sub("three/big/f2")), read_bytes(src.sub("big/f2")));
  EXPECT_GE(delta.unchanged_files, 300u) << "the files left as they were";
  EXPECT_LT(delta.written_bytes, one.written_bytes / 2);
  compare_trees(dst.sub("one"), dst.sub("three"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
}

// Fresh files are created with their final mode and owner where open()
// gives them (the fchmod and fchown are skipped then): a umask that takes
// bits away, or a setgid target whose group new files would inherit, must
// still end in the recorded modes and owners.
TEST(ParallelRestoreTest, ModesAndOwnersHoldUnderAStrictUmaskAndInASetgidTarget) {
  if (geteuid() != 0) GTEST_SKIP() << "owners need root";
  TempDir src("wv-files-src"), dst("wv-files-dst");
  generate_tree(src.path());
  write_bytes(src.sub("shared-notes.txt"), seeded_bytes(7, 5000));
  ASSERT_EQ(chmod(src.sub("shared-notes.txt").c_str(), 0666), 0);
  Store s;
  SnapshotStats stats;
  const repo::ChunkId root = s.snapshot(src.path(), std::nullopt, 3, stats);
  std::vector<std::string> diffs;

  const mode_t old_mask = umask(077);
  RestoreStats strict;
  restore_snapshot(*s.chunks, root, dst.sub("strict"), {.restore_owner = true, .parallel = 3},
                   strict);
  umask(old_mask);
  compare_trees(src.path(), dst.sub("strict"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();

  ASSERT_EQ(mkdir(dst.sub("setgid").c_str(), 0755), 0);
  ASSERT_EQ(chown(dst.sub("setgid").c_str(), 0, 4321), 0);
  ASSERT_EQ(chmod(dst.sub("setgid").c_str(), 02775), 0);
  RestoreStats inherited;
  restore_snapshot(*s.chunks, root, dst.sub("setgid"), {.restore_owner = true, .parallel = 3},
                   inherited);
  diffs.clear();
  compare_trees(src.path(), dst.sub("setgid"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
}

// A fresh file is written unnamed and linked under its name where the file
// system allows it; linking by descriptor takes a capability that only root
// has, so an unprivileged restore must name its files another way. Run as
// nobody, the restore still gives every file its name, content and
// metadata, and leaves no other name behind.
TEST(ParallelRestoreTest, AnUnprivilegedRestoreNamesEveryFile) {
  if (geteuid() != 0) GTEST_SKIP() << "switching to another user needs root";
  constexpr uid_t kNobody = 65534;
  TempDir src("wv-files-src"), dst("wv-files-dst");
  ASSERT_EQ(mkdir(src.sub("sub").c_str(), 0750), 0);
  for (int i = 0; i < 40; ++i)
    write_bytes(src.sub((i % 2 ? "sub/f" : "f") + std::to_string(i)),
                seeded_bytes(static_cast<std::uint64_t>(i), i == 7 ? (3u << 20) + 11 : 300u * i));
  ASSERT_EQ(symlink("sub/f1", src.sub("link").c_str()), 0);
  ASSERT_EQ(chmod(src.sub("f4").c_str(), 0440), 0);
  for (const char* p : {"", "sub", "link", "f4"})
    ASSERT_EQ(lchown(src.sub(p).c_str(), kNobody, kNobody), 0);
  for (int i = 0; i < 40; ++i)
    ASSERT_EQ(chown(src.sub((i % 2 ? "sub/f" : "f") + std::to_string(i)).c_str(), kNobody, kNobody),
              0);
  Store s;
  SnapshotStats stats;
  const repo::ChunkId root = s.snapshot(src.path(), std::nullopt, 1, stats);
  ASSERT_EQ(chown(dst.path().c_str(), kNobody, kNobody), 0);

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int status = 0;
    if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(90);
    try {
      RestoreStats rs;
      restore_snapshot(*s.chunks, root, dst.sub("out"), {.restore_owner = true, .parallel = 3}, rs);
      status = rs.files == 40 ? 0 : 91;
    } catch (...) {
      status = 92;
    }
    _exit(status);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "90: could not switch users, 91: a file missing, 92: failed";
  std::vector<std::string> diffs;
  compare_trees(src.path(), dst.sub("out"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
}

TEST(ParallelRestoreTest, AFailingWriterFailsTheRestore) {
  TempDir src("wv-files-src"), dst("wv-files-dst");
  for (int i = 0; i < 20; ++i)
    write_bytes(src.sub("f" + std::to_string(i)),
                seeded_bytes(static_cast<std::uint64_t>(i), 5000));
  Store s;
  SnapshotStats stats;
  const repo::ChunkId root = s.snapshot(src.path(), std::nullopt, 1, stats);
  // A chunk store without the chunks: every writer fails; the first failure
  // is the restore's.
  Store empty;
  const Bytes tree = *s.chunks->read(root);
  empty.chunks->add(tree);
  empty.chunks->flush();
  RestoreStats rs;
  EXPECT_EQ(testing::error_code_of([&] {
              restore_snapshot(*empty.chunks, root, dst.sub("out"), {.parallel = 3}, rs);
            }),
            ErrorCode::kCorruption);
}

}  // namespace
}  // namespace walvault::files
