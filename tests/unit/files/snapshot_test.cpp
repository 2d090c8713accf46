// File-volume snapshots end to end below the command line: a generated tree
// with every kind of entry is snapshotted into a repository and restored, and
// a tree comparer finds content and metadata identical; an unchanged second
// snapshot stores nothing, a churned one only the change; a restore never
// writes through a link planted in its target.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "codec/fastcdc.h"
#include "core/contained_dir.h"
#include "core/error.h"
#include "files/browse.h"
#include "files/snapshot_backup.h"
#include "files/snapshot_restore.h"
#include "files/take_snapshot.h"
#include "files/tar_export.h"
#include "files/tar_import.h"
#include "store/mem_store.h"
#include "support/error_code.h"
#include "support/file_tree.h"
#include "support/pg_cluster.h"
#include "support/seeded_bytes.h"
#include "support/tar_builder.h"

namespace walvault::files {
namespace {

using testing::compare_trees;
using testing::generate_tree;
using testing::read_bytes;
using testing::read_file_text;
using testing::seeded_bytes;
using testing::TempDir;
using testing::write_bytes;

struct Repo {
  explicit Repo(bool encrypted = false) : store(std::make_shared<store::MemStore>()) {
    repo::InitOptions o;
    if (encrypted) {
      o.encrypt = true;
      o.passphrase = "files test passphrase";
      o.kdf.n = 1024;
    }
    repo::Repository::init(*store, o);
    repo::Secrets s;
    if (encrypted) s.passphrase = o.passphrase;
    repo = repo::Repository::open(store, s);
  }
  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<repo::Repository> repo;
};

struct Fixture {
  Repo r;
  repo::ChunkStore chunks{*r.repo};
  codec::CdcChunker chunker{codec::CdcParams{}, codec::unkeyed_gear_table()};

  repo::ChunkId snapshot(const std::string& root, const std::optional<repo::ChunkId>& parent,
                         SnapshotStats& stats) {
    const repo::ChunkId id = snapshot_directory(chunks, chunker, root, parent, {}, stats);
    chunks.flush();
    return id;
  }
};

TEST(FileSnapshotTest, RestoreReproducesContentAndMetadata) {
  if (geteuid() != 0) GTEST_SKIP() << "owners and the unreadable file need root";
  TempDir src("wv-files-src"), dst("wv-files-dst");
  generate_tree(src.path());
  Fixture f;
  SnapshotStats stats;
  const repo::ChunkId root = f.snapshot(src.path(), std::nullopt, stats);
  EXPECT_TRUE(stats.warnings.empty()) << stats.warnings.front();
  EXPECT_EQ(stats.unreadable, 0u);
  EXPECT_GE(stats.files, 308u);
  EXPECT_LT(stats.read_bytes, stats.bytes) << "the sparse file's hole is not read";

  RestoreStats rs;
  restore_snapshot(f.chunks, root, dst.sub("out"), {.restore_owner = true}, rs);
  EXPECT_TRUE(rs.warnings.empty()) << rs.warnings.front();
  std::vector<std::string> diffs;
  compare_trees(src.path(), dst.sub("out"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
  struct stat a, b;
  ASSERT_EQ(stat(dst.sub("out/docs/report.csv").c_str(), &a), 0);
  ASSERT_EQ(stat(dst.sub("out/hard-report.csv").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "hard links linked again";
}

TEST(FileSnapshotTest, DevicesAreRestoredAsRootWithTheirNumbersAndModes) {
  if (geteuid() != 0) GTEST_SKIP() << "device nodes are created only as root";
  TempDir src("wv-files-src"), dst("wv-files-dst");
  ASSERT_EQ(mknod(src.sub("tty-like").c_str(), S_IFCHR | 0640, makedev(5, 1)), 0);
  ASSERT_EQ(mknod(src.sub("loop-like").c_str(), S_IFBLK | 0600, makedev(7, 200)), 0);
  Fixture f;
  SnapshotStats stats;
  const repo::ChunkId root = f.snapshot(src.path(), std::nullopt, stats);
  RestoreStats rs;
  restore_snapshot(f.chunks, root, dst.sub("out"), {.restore_owner = true, .parallel = 4}, rs);
  EXPECT_TRUE(rs.warnings.empty()) << rs.warnings.front();
  struct stat st;
  ASSERT_EQ(lstat(dst.sub("out/tty-like").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(5, 1));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_EQ(lstat(dst.sub("out/loop-like").c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(7, 200));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::vector<std::string> diffs;
  compare_trees(src.path(), dst.sub("out"), "", diffs);
  EXPECT_TRUE(diffs.empty()) << diffs.front();
}

TEST(FileSnapshotTest, UnchangedSnapshotStoresNothingAndChurnStoresTheChange) {
  TempDir src("wv-files-src");
  generate_tree(src.path());
  Fixture f;
  SnapshotStats first, second, third;
  const repo::ChunkId r1 = f.snapshot(src.path(), std::nullopt, first);
  const repo::ChunkId r2 = f.snapshot(src.path(), r1, second);
  EXPECT_EQ(r1, r2);
  EXPECT_EQ(second.added_bytes, 0u);
  EXPECT_EQ(second.read_bytes, 0u) << "unchanged files are not read";
  EXPECT_EQ(second.unchanged_files, second.files);

  // Churn: 1 KiB inserted in the middle of the 9 MiB file, one small file
  // changed, one new, one deleted.
  Bytes large = read_bytes(src.path() + "/docs/large.bin");
  const Bytes kib = seeded_bytes(3, 1024);
  large.insert(large.begin() + (5 << 20), kib.begin(), kib.end());
  write_bytes(src.path() + "/docs/large.bin", large);
  write_bytes(src.path() + "/many/f7.txt", as_bytes("changed"));
  write_bytes(src.path() + "/many/new.txt", as_bytes("new"));
  ASSERT_EQ(unlink((src.path() + "/many/f8.txt").c_str()), 0);
  const repo::ChunkId r3 = f.snapshot(src.path(), r2, third);
  EXPECT_NE(r3, r2);
  EXPECT_EQ(third.read_bytes, large.size() + 7 + 3);
  // The insertion costs the chunks around it, not the file: well under half
  // of the 9 MiB (chunks average 1 MiB; zstd barely shrinks random bytes).
  EXPECT_LT(third.added_bytes, 4u << 20) << third.added_bytes;

  TempDir dst("wv-files-dst");
  RestoreStats rs;
  restore_snapshot(f.chunks, r3, dst.sub("out"), {}, rs);
  EXPECT_EQ(read_bytes(dst.sub("out/docs/large.bin")), large);
  EXPECT_FALSE(std::ifstream(dst.sub("out/many/f8.txt")).good());
}

TEST(FileSnapshotTest, DeltaRestoreReplacesPlantedLinksWithoutFollowing) {
  TempDir src("wv-files-src"), dst("wv-files-dst"), outside("wv-files-outside");
  ASSERT_EQ(mkdir(src.sub("d").c_str(), 0755), 0);
  write_bytes(src.sub("d/x"), as_bytes("inside"));
  write_bytes(src.sub("f"), as_bytes("file"));
  Fixture f;
  SnapshotStats stats;
  const repo::ChunkId root = f.snapshot(src.path(), std::nullopt, stats);

  // The target holds links where the snapshot has a directory and a file,
  // both pointing outside, and an extra entry.
  ASSERT_EQ(mkdir(dst.sub("out").c_str(), 0755), 0);
  ASSERT_EQ(symlink(outside.path().c_str(), dst.sub("out/d").c_str()), 0);
  ASSERT_EQ(symlink(outside.sub("victim").c_str(), dst.sub("out/f").c_str()), 0);
  write_bytes(outside.sub("victim"), as_bytes("untouched"));
  write_bytes(dst.sub("out/extra"), as_bytes("not in the snapshot"));

  RestoreStats rs;
  EXPECT_EQ(
      testing::error_code_of([&] { restore_snapshot(f.chunks, root, dst.sub("out"), {}, rs); }),
      ErrorCode::kConflict)
      << "a non-empty target without --delta";
  restore_snapshot(f.chunks, root, dst.sub("out"), {.delta = true}, rs);
  EXPECT_EQ(read_file_text(outside.sub("victim")), "untouched");
  EXPECT_FALSE(std::ifstream(outside.sub("x")).good()) << "wrote through the planted link";
  struct stat st;
  ASSERT_EQ(lstat(dst.sub("out/d").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(read_file_text(dst.sub("out/d/x")), "inside");
  EXPECT_EQ(read_file_text(dst.sub("out/f")), "file");
  EXPECT_FALSE(std::ifstream(dst.sub("out/extra")).good());
  EXPECT_EQ(rs.removed, 1u);

  // A second delta finds everything in place and writes nothing.
  RestoreStats again;
  restore_snapshot(f.chunks, root, dst.sub("out"), {.delta = true}, again);
  EXPECT_EQ(again.written_bytes, 0u);
  EXPECT_EQ(again.unchanged_files, 2u);
}

TEST(FileSnapshotTest, IncludeRestoresOnePathAndNamesAMissingOne) {
  TempDir src("wv-files-src"), dst("wv-files-dst");
  generate_tree(src.path());
  Fixture f;
  SnapshotStats stats;
  const repo::ChunkId root = f.snapshot(src.path(), std::nullopt, stats);
  RestoreStats rs;
  restore_snapshot(f.chunks, root, dst.sub("one"), {.includes = {"docs/report.csv"}}, rs);
  EXPECT_EQ(rs.files, 1u);
  EXPECT_EQ(read_bytes(dst.sub("one/docs/report.csv")), read_bytes(src.sub("docs/report.csv")));
  EXPECT_FALSE(std::ifstream(dst.sub("one/docs/large.bin")).good());
  EXPECT_EQ(testing::error_code_of([&] {
              RestoreStats s;
              restore_snapshot(f.chunks, root, dst.sub("two"), {.includes = {"docs/nothing"}}, s);
            }),
            ErrorCode::kNotFound);
  EXPECT_EQ(testing::error_code_of([&] {
              RestoreStats s;
              restore_snapshot(f.chunks, root, dst.sub("three"), {.includes = {"../etc"}}, s);
            }),
            ErrorCode::kUsage);
}

TEST(FileSnapshotTest, UnreadableAndVanishingFilesAreWarningsNotFailures) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads everything";
  TempDir src("wv-files-src");
  write_bytes(src.sub("ok"), as_bytes("fine"));
  write_bytes(src.sub("locked"), as_bytes("no"));
  ASSERT_EQ(chmod(src.sub("locked").c_str(), 0), 0);
  Fixture f;
  SnapshotStats stats;
  f.snapshot(src.path(), std::nullopt, stats);
  EXPECT_EQ(stats.unreadable, 1u);
  ASSERT_EQ(stats.warnings.size(), 1u);
  EXPECT_NE(stats.warnings[0].find("locked"), std::string::npos) << stats.warnings[0];
}

}  // namespace
}  // namespace walvault::files

namespace walvault::files {
namespace {

TEST(TakeSnapshotTest, EncryptedRepositoryKeyedCutsParentAndSeveralPaths) {
  TempDir a("wv-files-a"), b("wv-files-b"), dst("wv-files-dst");
  write_bytes(a.sub("big.bin"), seeded_bytes(11, 6u << 20));
  write_bytes(b.sub("note.txt"), as_bytes("hello"));
  ASSERT_EQ(chmod(a.path().c_str(), 0750), 0);
  Repo r(/*encrypted=*/true);
  SnapshotStats s1, s2, s3;
  const SnapshotRecord one =
      take_snapshot(*r.repo, {.volume = "app_data", .paths = {a.path()}}, s1);
  EXPECT_TRUE(one.keyed_chunker);
  EXPECT_TRUE(one.parent.empty());
  EXPECT_EQ(one.files, 1u);
  const SnapshotRecord two =
      take_snapshot(*r.repo, {.volume = "app_data", .paths = {a.path()}}, s2);
  EXPECT_EQ(two.parent, one.label);
  EXPECT_EQ(two.read_bytes, 0u);
  EXPECT_EQ(two.root, one.root);
  // Several paths: each under its base name; a parent of other paths is not used.
  const SnapshotRecord both =
      take_snapshot(*r.repo, {.volume = "app_data", .paths = {a.path(), b.path() + "/"}}, s3);
  EXPECT_TRUE(both.parent.empty());
  EXPECT_EQ(both.files, 2u);
  EXPECT_EQ(find_snapshot(*r.repo, "latest", "app_data").label, both.label);

  repo::ChunkStore chunks(*r.repo);
  RestoreStats rs;
  restore_snapshot(chunks, one.root, dst.sub("one"), {.root_metadata = one.root_node}, rs);
  EXPECT_EQ(read_bytes(dst.sub("one/big.bin")), read_bytes(a.sub("big.bin")));
  struct stat st;
  ASSERT_EQ(stat(dst.sub("one").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  restore_snapshot(chunks, both.root, dst.sub("both"), {}, rs);
  const std::string base_a = std::filesystem::path(a.path()).filename().string();
  const std::string base_b = std::filesystem::path(b.path()).filename().string();
  EXPECT_EQ(read_file_text(dst.sub("both/" + base_b + "/note.txt")), "hello");
  EXPECT_EQ(read_bytes(dst.sub("both/" + base_a + "/big.bin")), read_bytes(a.sub("big.bin")));

  EXPECT_EQ(testing::error_code_of([&] {
              SnapshotStats s;
              take_snapshot(*r.repo, {.volume = "app_data", .paths = {a.path(), a.path()}}, s);
            }),
            ErrorCode::kUsage);
  EXPECT_EQ(testing::error_code_of([&] {
              SnapshotStats s;
              take_snapshot(*r.repo, {.volume = "app/data", .paths = {a.path()}}, s);
            }),
            ErrorCode::kUsage);
}

}  // namespace
}  // namespace walvault::files

namespace walvault::files {
namespace {

TEST(BrowseSnapshotTest, ListFindCatDiffAndReach) {
  TempDir src("wv-files-src"), out("wv-files-out");
  generate_tree(src.path());
  Fixture f;
  SnapshotStats s1, s2;
  const repo::ChunkId r1 = f.snapshot(src.path(), std::nullopt, s1);

  std::vector<std::string> paths;
  walk_snapshot(f.chunks, r1, [&](const std::string& p, const Node&) {
    paths.push_back(p);
    return true;
  });
  EXPECT_EQ(paths.size(), s1.files + s1.directories - 1 + s1.other);
  EXPECT_TRUE(std::is_sorted(paths.begin(), paths.end())) << "depth first in name order";
  EXPECT_NE(std::find(paths.begin(), paths.end(), "docs/report.csv"), paths.end());

  const std::optional<Node> sparse = find_entry(f.chunks, r1, "sparse.img");
  ASSERT_TRUE(sparse);
  EXPECT_EQ(sparse->extents.size(), 2u);
  EXPECT_FALSE(find_entry(f.chunks, r1, "docs/nothing"));
  EXPECT_FALSE(find_entry(f.chunks, r1, "sparse.img/x"));
  EXPECT_EQ(testing::error_code_of([&] { find_entry(f.chunks, r1, "../x"); }), ErrorCode::kUsage);
  {
    UniqueFd fd(open(out.sub("cat").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
    write_file_content(f.chunks, *sparse, fd.get());
  }
  EXPECT_EQ(read_bytes(out.sub("cat")), read_bytes(src.sub("sparse.img")));

  write_bytes(src.sub("many/f7.txt"), as_bytes("changed"));
  write_bytes(src.sub("docs/empty/new.txt"), as_bytes("new"));
  ASSERT_EQ(unlink(src.sub("many/f8.txt").c_str()), 0);
  const repo::ChunkId r2 = f.snapshot(src.path(), r1, s2);
  std::map<std::string, Change> changes;
  diff_snapshots(f.chunks, r1, r2,
                 [&](Change c, const std::string& p, const Node*, const Node*) { changes[p] = c; });
  // The directories whose entries changed have a new mtime too.
  EXPECT_EQ(changes, (std::map<std::string, Change>{{"docs/empty", Change::kChanged},
                                                    {"docs/empty/new.txt", Change::kAdded},
                                                    {"many", Change::kChanged},
                                                    {"many/f7.txt", Change::kChanged},
                                                    {"many/f8.txt", Change::kRemoved}}));

  std::unordered_set<repo::ChunkId, repo::ChunkIdHash> ids;
  reachable_ids(f.chunks, r1, ids);
  const std::size_t first = ids.size();
  reachable_ids(f.chunks, r2, ids);
  EXPECT_GT(ids.size(), first);
  EXPECT_LT(ids.size(), first + 10) << "the second snapshot shares all but a few trees and chunks";
  for (const repo::ChunkId& id : ids) EXPECT_TRUE(f.chunks.contains(id));
}

}  // namespace
}  // namespace walvault::files

namespace walvault::files {
namespace {

// GNU tar reads what export writes: content, modes, owners, nanosecond
// mtimes, links, hard links, FIFOs, extended attributes, long and non-UTF-8
// names; plain and gzip.
TEST(TarExportTest, GnuTarExtractsTheSameTree) {
  if (geteuid() != 0) GTEST_SKIP() << "owners need root";
  TempDir src("wv-files-src"), dst("wv-files-dst");
  generate_tree(src.path());
  Fixture f;
  SnapshotStats stats;
  const repo::ChunkId root = f.snapshot(src.path(), std::nullopt, stats);
  struct stat st;
  ASSERT_EQ(stat(src.path().c_str(), &st), 0);
  Node root_node;
  root_node.name = ".";
  root_node.type = NodeType::kDirectory;
  root_node.mode = st.st_mode & 07777;
  root_node.mtime_ns = st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec;
  for (const bool gzip : {false, true}) {
    const std::string tar = dst.sub(gzip ? "out.tar.gz" : "out.tar");
    std::vector<std::string> warnings;
    {
      UniqueFd fd(open(tar.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
      export_tar(f.chunks, root, root_node, fd.get(), {.gzip = gzip}, warnings);
    }
    EXPECT_TRUE(warnings.empty());
    const std::string into = dst.sub(gzip ? "gz" : "plain");
    ASSERT_EQ(mkdir(into.c_str(), 0700), 0);
    const testing::CommandResult r = testing::run({"tar", gzip ? "-xzf" : "-xf", tar, "-C", into,
                                                   "--xattrs", "--xattrs-include=*", "--same-owner",
                                                   "--same-permissions", "--numeric-owner"});
    ASSERT_EQ(r.status, 0) << r.err;
    std::vector<std::string> diffs;
    compare_trees(src.path(), into, "", diffs, /*holes=*/false);
    EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
    struct stat a, b;
    ASSERT_EQ(stat((into + "/docs/report.csv").c_str(), &a), 0);
    ASSERT_EQ(stat((into + "/hard-report.csv").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
  }
}

}  // namespace
}  // namespace walvault::files

namespace walvault::files {
namespace {

// A tarball GNU tar made (pax, with extended attributes) imports to the same
// tree; a second day's tarball costs what changed; hostile tars are refused.
TEST(TarImportTest, GnuTarballImportsAndDeduplicates) {
  if (geteuid() != 0) GTEST_SKIP() << "owners need root";
  TempDir src("wv-files-src"), dst("wv-files-dst");
  generate_tree(src.path());
  const std::string day1 = dst.sub("day1.tar.gz"), day2 = dst.sub("day2.tar.gz");
  auto make_tar = [&](const std::string& out) {
    const testing::CommandResult r =
        testing::run({"tar", "--format=pax", "--xattrs", "--xattrs-include=*", "-czf", out, "-C",
                      src.path(), "."});
    ASSERT_EQ(r.status, 0) << r.err;
  };
  make_tar(day1);
  Fixture f;
  auto import = [&](const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY));
    TarImportResult result = import_tar(f.chunks, f.chunker, fd.get(), path);
    f.chunks.flush();
    return result;
  };
  const TarImportResult one = import(day1);
  EXPECT_GE(one.stats.files, 308u);
  RestoreStats rs;
  restore_snapshot(f.chunks, one.root, dst.sub("out"), {.restore_owner = true}, rs);
  std::vector<std::string> diffs;
  compare_trees(src.path(), dst.sub("out"), "", diffs, /*holes=*/false);
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
  struct stat a, b;
  ASSERT_EQ(stat(dst.sub("out/docs/report.csv").c_str(), &a), 0);
  ASSERT_EQ(stat(dst.sub("out/hard-report.csv").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);

  // Day 2: one small file changed. The whole tarball is read again, but only
  // the change (and the trees above it) is stored.
  write_bytes(src.sub("many/f3.txt"), as_bytes("day two"));
  make_tar(day2);
  const TarImportResult two = import(day2);
  EXPECT_LT(two.stats.added_bytes, 64u << 10) << two.stats.added_bytes;
}

TEST(TarImportTest, HostileTarsAreRefused) {
  TempDir dir("wv-files-tar");
  Fixture f;
  auto code = [&](const std::string& tar) {
    const std::string path = dir.sub("t.tar");
    write_bytes(path, as_bytes(tar));
    UniqueFd fd(open(path.c_str(), O_RDONLY));
    return testing::error_code_of([&] { import_tar(f.chunks, f.chunker, fd.get(), path); });
  };
  using testing::TarBuilder;
  EXPECT_EQ(code(TarBuilder().symlink("link", "/etc").file("link/passwd", "x").finish()),
            ErrorCode::kInvalidInput);
  EXPECT_EQ(code(TarBuilder().hardlink("h", "not-seen").finish()), ErrorCode::kInvalidInput);
  EXPECT_EQ(code(TarBuilder().file("../escape", "x").finish()), ErrorCode::kInvalidInput);
  EXPECT_EQ(code(TarBuilder().dir("d").file("d", "x").finish()), ErrorCode::kInvalidInput);
  const std::string truncated = TarBuilder().file("a", std::string(5000, 'a')).finish();
  EXPECT_EQ(code(truncated.substr(0, 2048)), ErrorCode::kInvalidInput);
  EXPECT_EQ(code(std::string("\x1f\x8b garbage that is not gzip", 27)), ErrorCode::kInvalidInput);
  // FIFOs and devices are fine here (a volume may hold them).
  EXPECT_EQ(code(TarBuilder().special("fifo", '6').special("null", '3').finish()), std::nullopt);
}

}  // namespace
}  // namespace walvault::files
