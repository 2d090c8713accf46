// The repository layout: every builder gives the name docs/format.md
// specifies (spelled out here, since the names are the format), every parser
// takes back what its builder gives, and refuses names walvault does not
// write, including crafted ones (upper-case hex, wrong directory, numbers
// that do not fit).
#include "repo/layout.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "core/bytes.h"

namespace walvault::repo {
namespace {

constexpr char kHex64[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

ChunkId sample_id() { return *parse_content_id(kHex64); }

TEST(LayoutTest, BuildersGiveTheNamesOfTheFormat) {
  const ChunkId id = sample_id();
  EXPECT_EQ(pack_object_name(id), std::string("packs/00/") + kHex64);
  EXPECT_EQ(index_object_name(id), std::string("index/") + kHex64);
  EXPECT_EQ(segment_object_name("000000010000000A000000FE"),
            "wal/seg/000000010000000A/000000010000000A000000FE");
  EXPECT_EQ(meta_object_name("000000010000000A000000FE"),
            "wal/meta/000000010000000A/000000010000000A000000FE");
  EXPECT_EQ(file_object_name("00000002.history"), "wal/file/00000002.history");
  EXPECT_EQ(data_object_name(*pg::parse_wal_file_name("000000010000000A000000FE.partial")),
            "wal/file/000000010000000A000000FE.partial");
  EXPECT_EQ(backup_record_object_name("20261126-120248"), "backups/20261126-120248/record");
  EXPECT_EQ(backup_files_object_name("20261126-120248"), "backups/20261126-120248/files");
  EXPECT_EQ(backup_pin_object_name("20261126-120248"), "backups/20261126-120248/pin");
  EXPECT_EQ(history_object_name(1795000000000000, "verify", "0a1b2c3d"),
            "history/1795000000000000-verify-0a1b2c3d");
  EXPECT_EQ(history_object_name(42, "repo sync", "0a1b2c3d"),
            "history/0000000000000042-repo-sync-0a1b2c3d");
  EXPECT_EQ(lock_object_name(LockMode::kExclusive, "0123456789abcdef", 1795000000000000),
            "locks/exclusive-0123456789abcdef-1795000000000000");
  EXPECT_EQ(lock_object_name(LockMode::kShared, "0123456789abcdef", 7),
            "locks/shared-0123456789abcdef-0000000000000007");
  codec::Key key{};
  const std::string wrap = key_file_object_name(key);
  EXPECT_EQ(wrap.rfind("keys/file-", 0), 0u) << wrap;
  EXPECT_EQ(wrap.size(), std::string("keys/file-").size() + 16);
}

TEST(LayoutTest, OneHexIdParser) {
  ASSERT_TRUE(parse_content_id(kHex64));
  EXPECT_EQ(to_hex(sample_id()), kHex64);
  // Either case reads the same id (a file list's JSON); names are held to the
  // canonical lower case by the name parsers below.
  std::string upper = kHex64;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(parse_content_id(upper), sample_id());
  EXPECT_FALSE(parse_content_id(std::string(kHex64).substr(1)));
  EXPECT_FALSE(parse_content_id(std::string(kHex64) + "0"));
  EXPECT_FALSE(parse_content_id(std::string(63, '0') + "g"));
  EXPECT_FALSE(parse_content_id(""));
}

TEST(LayoutTest, PackAndIndexNamesRoundTripAndOnlyCanonicalOnesParse) {
  const ChunkId id = sample_id();
  EXPECT_EQ(parse_pack_object(pack_object_name(id)), id);
  EXPECT_EQ(parse_index_object(index_object_name(id)), id);
  std::string upper = kHex64;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_FALSE(parse_pack_object("packs/00/" + upper));
  EXPECT_FALSE(parse_pack_object(std::string("packs/01/") + kHex64));  // wrong directory
  EXPECT_FALSE(parse_pack_object(std::string("packs/") + kHex64));
  EXPECT_FALSE(parse_pack_object(std::string("index/") + kHex64));
  EXPECT_FALSE(parse_index_object("index/" + upper));
  EXPECT_FALSE(parse_index_object(std::string("index/x/") + kHex64));
  EXPECT_FALSE(parse_index_object(std::string("packs/00/") + kHex64));
}

TEST(LayoutTest, WalObjectsParse) {
  const std::string seg = "000000010000000A000000FE";
  auto s = parse_segment_object(segment_object_name(seg));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->name, seg);
  EXPECT_EQ(parse_meta_object(meta_object_name(seg))->name, seg);
  // The directory must be the name's own; a meta name is no segment name.
  EXPECT_FALSE(parse_segment_object("wal/seg/0000000100000000/" + seg));
  EXPECT_FALSE(parse_segment_object(meta_object_name(seg)));
  EXPECT_FALSE(parse_meta_object(segment_object_name(seg)));
  EXPECT_FALSE(parse_segment_object("wal/seg/00000001/00000002.history"));
  EXPECT_EQ(parse_wal_file_object("wal/file/00000002.history"), "00000002.history");
  EXPECT_FALSE(parse_wal_file_object("wal/file/"));
  EXPECT_FALSE(parse_wal_file_object("wal/meta/x"));
  EXPECT_EQ(wal_file_of_object(meta_object_name(seg))->name, seg);
  EXPECT_EQ(wal_file_of_object("wal/file/00000002.history")->kind, pg::WalFileKind::kHistory);
  EXPECT_FALSE(wal_file_of_object("wal/file/notes.txt"));
  EXPECT_FALSE(wal_file_of_object("backups/" + seg));
}

TEST(LayoutTest, BackupObjectsParse) {
  auto b = parse_backup_object(backup_pin_object_name("20261126-120248-2"));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->label, "20261126-120248-2");
  EXPECT_EQ(b->kind, kBackupPinKind);
  EXPECT_EQ(parse_backup_object("backups/x/notes/record")->kind, "notes/record");
  EXPECT_FALSE(parse_backup_object("backups/record"));
  EXPECT_FALSE(parse_backup_object("backups//files"));
  EXPECT_FALSE(parse_backup_object("history/x/record"));
}

TEST(LayoutTest, HistoryNamesParse) {
  auto h = parse_history_object(history_object_name(1795000000000000, "drill", "0a1b2c3d"));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->start_us, 1795000000000000);
  EXPECT_EQ(h->command, "drill");
  EXPECT_EQ(parse_history_object(history_object_name(5, "repo sync", "0a1b2c3d"))->command,
            "repo-sync");
  EXPECT_FALSE(parse_history_object("history/179500000000000x-drill-0a1b2c3d"));
  EXPECT_FALSE(parse_history_object("history/1795000000000000-0a1b2c3d"));
  EXPECT_FALSE(parse_history_object("history/17950000-drill-0a1b2c3d"));
  EXPECT_FALSE(parse_history_object("locks/1795000000000000-drill-0a1b2c3d"));
}

TEST(LayoutTest, LockNamesParseAndCraftedNumbersAreNoLock) {
  auto l = parse_lock_object(lock_object_name(LockMode::kExclusive, "0123456789abcdef", 99));
  ASSERT_TRUE(l);
  EXPECT_EQ(l->mode, LockMode::kExclusive);
  EXPECT_EQ(l->id, "0123456789abcdef");
  EXPECT_EQ(l->refreshed_us, 99);
  EXPECT_EQ(parse_lock_object(lock_object_name(LockMode::kShared, "ab", 1))->mode,
            LockMode::kShared);
  EXPECT_FALSE(parse_lock_object("locks/reading-0123456789abcdef-0000000000000001"));
  EXPECT_FALSE(parse_lock_object("locks/shared-0000000000000001"));
  EXPECT_FALSE(parse_lock_object("locks/shared-ab-"));
  EXPECT_FALSE(parse_lock_object("locks/shared-ab-12x"));
  // Past int64: no lock (it used to stop every lock taker with an internal error).
  EXPECT_FALSE(parse_lock_object("locks/shared-ab-99999999999999999999999"));
}

TEST(LayoutTest, SnapshotRecords) {
  EXPECT_EQ(snapshot_object_name("app_data", "20261206-020000"),
            "snapshots/app_data/20261206-020000");
  const auto parsed = parse_snapshot_object("snapshots/app_data/20261206-020000-2");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->volume, "app_data");
  EXPECT_EQ(parsed->label, "20261206-020000-2");
  for (const char* bad :
       {"snapshots/app_data", "snapshots//x", "snapshots/a/", "snapshots/a/b/c", "snapshot/a/b"})
    EXPECT_FALSE(parse_snapshot_object(bad)) << bad;
}

TEST(LayoutTest, DumpRecords) {
  EXPECT_EQ(dump_object_name("app", "20261206-020000"), "dumps/app/20261206-020000");
  const auto parsed = parse_dump_object("dumps/app/20261206-020000-2");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->database, "app");
  EXPECT_EQ(parsed->label, "20261206-020000-2");
  for (const char* bad :
       {"dumps/app", "dumps//x", "dumps/a/", "dumps/a/b/c", "dump/a/b", "snapshots/a/b"})
    EXPECT_FALSE(parse_dump_object(bad)) << bad;
  EXPECT_TRUE(is_known_object("dumps/app/l"));
  EXPECT_FALSE(is_known_object("dumps/app/l/extra"));
}

TEST(LayoutTest, KnownObjects) {
  for (const std::string& name :
       {std::string(kConfigObject), std::string(kClusterObject), std::string("keys/file-0011"),
        segment_object_name("000000010000000A000000FE"),
        meta_object_name("000000010000000A000000FE"), file_object_name("00000002.history"),
        pack_object_name(sample_id()), index_object_name(sample_id()),
        backup_files_object_name("b"), history_object_name(1, "gc", "00000000"),
        lock_object_name(LockMode::kShared, "ab", 1), snapshot_object_name("app_data", "l")})
    EXPECT_TRUE(is_known_object(name)) << name;
  for (const std::string name : {"config2", "clusters", "wal/other/x", "notes", "packs"})
    EXPECT_FALSE(is_known_object(name)) << name;
  EXPECT_TRUE(is_unencrypted_object(kConfigObject));
  EXPECT_TRUE(is_unencrypted_object("keys/file-0011"));
  EXPECT_FALSE(is_unencrypted_object(kClusterObject));
}

}  // namespace
}  // namespace walvault::repo
