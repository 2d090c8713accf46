// restore_files given a file list an attacker wrote into the repository (any
// one with write access can; the key proves nothing about names), and a
// --delta target with links planted in it: restore refuses the list before
// writing anything, or replaces the planted link; nothing outside the target
// is ever created, changed or removed.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "basebackup/backup_record.h"
#include "basebackup/restore.h"
#include "core/error.h"
#include "core/file_util.h"
#include "repo/chunk_store.h"
#include "store/mem_store.h"
#include "support/pg_cluster.h"

namespace walvault::basebackup {
namespace {

namespace fs = std::filesystem;

class RestoreHostileTest : public ::testing::Test {
 protected:
  RestoreHostileTest() : store_(std::make_shared<store::MemStore>()) {
    repo::Repository::init(*store_, {});
    repo_ = repo::Repository::open(store_, {});
    record_.label = "20261206-000000";
    record_.chunk_size = 64u << 10;
    make_dirs(outside_);
    write_file_atomic(outside_ + "/victim", as_bytes(std::string("victim")));
  }

  void dir(const std::string& path, const std::string& tablespace = "") {
    FileEntry e;
    e.tablespace = tablespace;
    e.path = path;
    e.type = EntryType::kDirectory;
    e.mode = 0700;
    files_.entries.push_back(e);
  }
  void file(const std::string& path, const std::string& content,
            const std::string& tablespace = "") {
    FileEntry e;
    e.tablespace = tablespace;
    e.path = path;
    e.mode = 0600;
    e.mtime = 1'700'000'000;
    e.size = content.size();
    repo::ChunkStore chunks(*repo_);
    if (!content.empty()) e.chunks.push_back(chunks.add(as_bytes(content)).id);
    chunks.flush();
    files_.entries.push_back(e);
  }
  void symlink(const std::string& path, const std::string& target) {
    FileEntry e;
    e.path = path;
    e.type = EntryType::kSymlink;
    e.link_target = target;
    files_.entries.push_back(e);
  }
  // A small but complete data directory.
  void cluster() {
    dir("base");
    dir("base/1");
    dir("global");
    file("PG_VERSION", "15\n");
    file("base/1/16384", std::string(20000, 'r'));
    file("global/pg_control", std::string(8192, 'c'));
  }

  RestoreStats restore(bool delta = false) {
    RestoreOptions o;
    o.pgdata = pgdata_;
    o.delta = delta;
    o.parallel = 2;
    o.tablespace_map = tablespace_map_;
    return restore_files(*repo_, record_, files_, o);
  }

  // The message of the kCorruption refusal; nothing may have been written.
  std::string refused() {
    try {
      restore();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
      EXPECT_FALSE(fs::exists(pgdata_)) << "restore wrote before refusing";
      return e.what();
    }
    ADD_FAILURE() << "the hostile file list was restored";
    return "";
  }

  // outside_ holds exactly its victim, unchanged.
  void expect_outside_untouched() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(outside_)) names.push_back(e.path().filename());
    EXPECT_EQ(names, std::vector<std::string>{"victim"});
    const auto victim = read_file(outside_ + "/victim");
    ASSERT_TRUE(victim);
    EXPECT_EQ(std::string(as_chars(*victim)), "victim");
  }

  std::shared_ptr<store::MemStore> store_;
  std::unique_ptr<repo::Repository> repo_;
  BackupRecord record_;
  BackupFiles files_;
  std::map<std::string, std::string> tablespace_map_;
  walvault::testing::TempDir tmp_{"wv-hostile"};
  std::string pgdata_ = tmp_.sub("pgdata"), outside_ = tmp_.sub("outside");
};

TEST_F(RestoreHostileTest, DotDotPathIsRefusedBeforeAnythingIsWritten) {
  cluster();
  file("../outside/pwned", "evil");
  EXPECT_EQ(refused(), "backup 20261206-000000: entry '../outside/pwned' has a '..' component");
  expect_outside_untouched();
}

TEST_F(RestoreHostileTest, AbsolutePathIsRefused) {
  cluster();
  file(outside_ + "/pwned", "evil");
  EXPECT_NE(refused().find("is absolute"), std::string::npos);
  expect_outside_untouched();
}

TEST_F(RestoreHostileTest, SymlinkThenChildIsRefused) {
  cluster();
  symlink("evil_link", outside_);
  file("evil_link/pwned", "evil");
  EXPECT_EQ(refused(),
            "backup 20261206-000000: entry 'evil_link/pwned' lies below the symlink 'evil_link'");
  expect_outside_untouched();
}

TEST_F(RestoreHostileTest, ChildThenSymlinkIsRefused) {
  cluster();
  file("later_link/pwned", "evil");
  symlink("later_link", outside_);
  EXPECT_NE(refused().find("entry 'later_link' is a symlink with the entry 'later_link/pwned'"),
            std::string::npos);
  expect_outside_untouched();
}

TEST_F(RestoreHostileTest, UnknownTablespaceAndBadLocationAreRefused) {
  cluster();
  file("PG_15/x", "evil", "16400");
  EXPECT_NE(refused().find("belongs to tablespace '16400', which the backup does not have"),
            std::string::npos);
  record_.tablespaces.push_back({16400, "/srv/../" + outside_});
  EXPECT_NE(refused().find("tablespace 16400 location"), std::string::npos);
  expect_outside_untouched();
}

// A --delta target where someone planted links where the backup has a
// directory, a file's directory, a file (hard link) and a stray link.
TEST_F(RestoreHostileTest, DeltaReplacesPlantedLinksAndNeverWritesThroughThem) {
  cluster();
  restore();
  // base -> outside: files of base/ would land there.
  fs::remove_all(pgdata_ + "/base");
  fs::create_directory_symlink(outside_, pgdata_ + "/base");
  // global -> outside: removing the old pg_control would remove outside's.
  write_file_atomic(outside_ + "/pg_control", as_bytes(std::string("theirs")));
  fs::remove_all(pgdata_ + "/global");
  fs::create_directory_symlink(outside_, pgdata_ + "/global");
  // PG_VERSION a hard link of the victim: writing into it changes the victim.
  fs::remove(pgdata_ + "/PG_VERSION");
  fs::create_hard_link(outside_ + "/victim", pgdata_ + "/PG_VERSION");
  // A link the backup does not have: removed, its target kept.
  fs::create_directory_symlink(outside_, pgdata_ + "/stray");

  const RestoreStats s = restore(/*delta=*/true);
  EXPECT_EQ(s.files_removed, 1u);  // stray
  ASSERT_TRUE(fs::exists(outside_ + "/pg_control"));
  EXPECT_EQ(std::string(as_chars(*read_file(outside_ + "/pg_control"))), "theirs");
  fs::remove(outside_ + "/pg_control");
  expect_outside_untouched();
  for (const char* d : {"base", "global"}) {
    EXPECT_FALSE(fs::is_symlink(pgdata_ + "/" + d)) << d;
    EXPECT_TRUE(fs::is_directory(pgdata_ + "/" + d)) << d;
  }
  EXPECT_FALSE(fs::exists(pgdata_ + "/stray"));
  EXPECT_EQ(read_file(pgdata_ + "/base/1/16384")->size(), 20000u);
  EXPECT_EQ(std::string(as_chars(*read_file(pgdata_ + "/PG_VERSION"))), "15\n");
  EXPECT_EQ(fs::hard_link_count(pgdata_ + "/PG_VERSION"), 1u);
  EXPECT_EQ(read_file(pgdata_ + "/global/pg_control")->size(), 8192u);
}

// A planted pg_tblspc/<oid> link is replaced by the link to the location the
// plan chose; the tablespace's files go there and nowhere else.
TEST_F(RestoreHostileTest, DeltaReplacesAPlantedTablespaceLinkWithThePlansLink) {
  const std::string old_location = tmp_.sub("ts_old"), new_location = tmp_.sub("ts_new");
  cluster();
  dir("pg_tblspc");
  record_.tablespaces.push_back({16400, old_location});
  record_.tablespace_map = "16400 " + old_location + "\n";
  dir(".", "16400");
  dir("PG_15_202209061", "16400");
  file("PG_15_202209061/x", "tablespace data", "16400");
  tablespace_map_[old_location] = new_location;
  restore();
  fs::remove(pgdata_ + "/pg_tblspc/16400");
  fs::create_directory_symlink(outside_, pgdata_ + "/pg_tblspc/16400");

  restore(/*delta=*/true);
  EXPECT_EQ(fs::read_symlink(pgdata_ + "/pg_tblspc/16400"), new_location);
  EXPECT_EQ(std::string(as_chars(*read_file(new_location + "/PG_15_202209061/x"))),
            "tablespace data");
  EXPECT_FALSE(fs::exists(old_location));
  expect_outside_untouched();
}

}  // namespace
}  // namespace walvault::basebackup
