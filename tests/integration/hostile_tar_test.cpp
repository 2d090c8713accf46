// Hostile tars through the real binary (`backup --from-tar -`), and a
// hostile file list written straight into a repository, as an attacker with
// write access to it would: ingest refuses with exit 3 naming the entry and
// lists no backup; restore refuses with exit 6 naming the entry; nothing is
// ever written outside the target. No PostgreSQL server: the repository is
// bound and its WAL archived from one synthetic segment, and the tars carry
// the backup_label and backup_manifest a base backup tar has.
#include <gtest/gtest.h>

#include <filesystem>

#include "basebackup/backup_record.h"
#include "core/file_util.h"
#include "integration/walvault_cli.h"
#include "repo/repository.h"
#include "store/object_store.h"
#include "support/segment_builder.h"
#include "support/tar_builder.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;
using pg::testing::SegmentBuilder;

class HostileTarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    make_dirs(outside_);
    give_to_test_user(work_.path());
    ASSERT_EQ(walvault({"--repo", repo_, "repo", "init"}).status, 0);
    // Segment 3 of 1 MiB segments: LSNs 0/300000 to 0/400000.
    SegmentBuilder::Options o;
    o.segno = 3;
    SegmentBuilder b(o);
    b.add_record(pg::testing::kRmXact, pg::testing::kXactCommit, 700,
                 pg::testing::make_body(pg::testing::xact_main(1'790'000'000'000'000)));
    const std::string segment = work_.sub(b.file_name());
    write_file_atomic(segment, b.bytes());
    give_to_test_user(segment);
    auto push = walvault(concat(flags_, {"archive-push", segment}));
    ASSERT_EQ(push.status, 0) << push.err;
  }

  // A base backup tar's frame around `hostile` entries: backup_label and a
  // few files first (so that chunks are stored before the refusal), the
  // manifest last.
  std::string base_backup_tar(const std::function<void(TarBuilder&)>& hostile) {
    TarBuilder tar;
    tar.dir("./")
        .file("./backup_label",
              "START WAL LOCATION: 0/300028 (file 000000010000000000000003)\n"
              "CHECKPOINT LOCATION: 0/300060\nSTART TIMELINE: 1\n")
        .file("./PG_VERSION", "15\n")
        .dir("./base/")
        .dir("./base/1/")
        .file("./base/1/16384", std::string(100000, 'r'));
    hostile(tar);
    tar.file("./backup_manifest",
             R"({"PostgreSQL-Backup-Manifest-Version": 1, "Files": [], "WAL-Ranges": )"
             R"([{"Timeline": 1, "Start-LSN": "0/300028", "End-LSN": "0/300100"}]})");
    return tar.finish();
  }

  CommandResult ingest(const std::string& tar) {
    const std::string path = work_.sub("in.tar");
    write_file_atomic(path, as_bytes(tar));
    give_to_test_user(path);
    std::string cmd = walvault_binary_for_server();
    for (const auto& f : flags_) cmd += " " + f;
    return run_shell(cmd + " backup --from-tar - --wal-timeout 5 < " + path,
                     {{"WALVAULT_CONFIG", "/dev/null"}}, AsUser::kTestUser);
  }

  std::string backup_list() {
    auto r = walvault(concat(flags_, {"backup", "list"}));
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  }

  TempDir work_{"wv-hostile-tar"};
  std::string repo_ = work_.sub("repo"), outside_ = work_.sub("outside");
  std::vector<std::string> flags_ = repo_flags(repo_, work_.sub("spool"));
};

TEST_F(HostileTarTest, EscapingEntriesAreRefusedAndNoBackupIsListed) {
  // The frame alone is a good backup: the refusals below are the entries'.
  auto good = ingest(base_backup_tar([](TarBuilder&) {}));
  ASSERT_EQ(good.status, 0) << good.err;
  const std::string listed = backup_list();
  ASSERT_FALSE(backup_label_of(good.out).empty()) << good.out;

  const std::string outside = outside_;
  const struct {
    const char* name;
    std::function<void(TarBuilder&)> entries;
    std::string message;
  } cases[] = {
      {"dotdot", [](TarBuilder& t) { t.file("../../etc/evil", "evil"); },
       "tar: entry '../../etc/evil': has a '..' component"},
      {"base_dotdot", [](TarBuilder& t) { t.file("base/../../../x", "evil"); },
       "tar: entry 'base/../../../x': has a '..' component"},
      {"absolute", [&](TarBuilder& t) { t.file(outside + "/abs", "evil"); },
       "tar: entry '" + outside + "/abs': is absolute"},
      {"symlink_then_child",
       [&](TarBuilder& t) { t.symlink("evil_link", outside).file("evil_link/pwned", "evil"); },
       "backup stream: entry 'evil_link/pwned' lies below the symlink 'evil_link'"},
      {"hardlink_out", [](TarBuilder& t) { t.hardlink("base/1/h", "../../../etc/passwd"); },
       "tar: hard link 'base/1/h' names '../../../etc/passwd': has a '..' component"},
      {"hardlink_in", [](TarBuilder& t) { t.hardlink("base/1/h", "PG_VERSION"); },
       "backup stream: entry 'base/1/h' is a hard link, which is not supported"},
      {"device", [](TarBuilder& t) { t.special("base/1/dev", '3'); },
       "tar: unsupported entry type: 'base/1/dev' is a character device; a data directory "
       "holds only files, directories and links"},
      {"beyond_path_max",
       [](TarBuilder& t) {
         std::string name = "base";
         while (name.size() < 5000) name += "/" + std::string(200, 'p');
         t.gnu_long_file(name, "x");
       },
       "is longer than 4095 bytes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ingest(base_backup_tar(c.entries));
    EXPECT_EQ(r.status, 3) << r.out << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(backup_list(), listed);
  }
  EXPECT_TRUE(fs::is_empty(outside_));
}

// The attacker's file list, written with the repository API next to a good
// backup's record: restore re-checks every name and refuses it.
TEST_F(HostileTarTest, RestoreRefusesAHostileFileListInTheRepository) {
  auto good = ingest(base_backup_tar([](TarBuilder&) {}));
  ASSERT_EQ(good.status, 0) << good.err;
  const std::string label = backup_label_of(good.out);
  ASSERT_FALSE(label.empty()) << good.out;

  const std::string outside = outside_;
  const std::pair<const char*, std::function<void(basebackup::BackupFiles&)>> cases[] = {
      {"dotdot",
       [&](basebackup::BackupFiles& f) {
         basebackup::FileEntry e = f.entries.back();  // a file with chunks
         e.path = "../outside/pwned";
         f.entries.push_back(e);
       }},
      {"symlink_then_child",
       [&](basebackup::BackupFiles& f) {
         basebackup::FileEntry e = f.entries.back();
         basebackup::FileEntry link;
         link.path = "evil_link";
         link.type = basebackup::EntryType::kSymlink;
         link.link_target = outside;
         e.path = "evil_link/pwned";
         f.entries.push_back(link);
         f.entries.push_back(e);
       }},
  };
  int n = 0;
  for (const auto& [name, craft] : cases) {
    SCOPED_TRACE(name);
    const std::string forged = "20990101-00000" + std::to_string(n++);
    {
      auto repo = repo::Repository::open(store::open_store(repo_), {});
      basebackup::BackupRecord record = *basebackup::read_record(*repo, label);
      basebackup::BackupFiles files = basebackup::read_files(*repo, label);
      craft(files);
      record.label = forged;
      const std::string list = basebackup::files_to_json(files);
      repo->put_object(basebackup::files_object_name(forged), as_bytes(list));
      const std::string text = basebackup::record_to_json(record);
      repo->put_object(basebackup::record_object_name(forged), as_bytes(text));
    }
    give_to_test_user(repo_);
    const std::string target = work_.sub(std::string("restore-") + name);
    auto r = walvault(
        concat(flags_, {"restore", "--pgdata", target, "--set", forged, "--target-immediate"}));
    EXPECT_EQ(r.status, 6) << r.out << r.err;
    EXPECT_EQ(line_count(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("backup " + forged + ": entry '"), std::string::npos) << r.err;
    EXPECT_TRUE(!fs::exists(target) || fs::is_empty(target)) << "restore wrote before refusing";
  }
  EXPECT_TRUE(fs::is_empty(outside_));
  // The good backup beside them still restores.
  const std::string target = work_.sub("restore-good");
  auto r = walvault(
      concat(flags_, {"restore", "--pgdata", target, "--set", label, "--target-immediate"}));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(read_text(target + "/PG_VERSION"), "15\n");
}

}  // namespace
}  // namespace walvault::testing
