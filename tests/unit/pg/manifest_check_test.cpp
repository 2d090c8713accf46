// The pg_verifybackup stand-in of the tests (tests/support/manifest_check.h)
// on a small data directory with a hand-written manifest: clean, it finds
// nothing; each damage pg_verifybackup would report is named. Checksums are
// computed by coreutils' sha*sum and a known CRC-32C vector, not by the
// code under test.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/manifest_check.h"
#include "support/pg_cluster.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kSystemId = 7412345678901234567ULL;

void write(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// `tool` (sha256sum, ...) of `path`, in hex.
std::string digest(const std::string& tool, const std::string& path) {
  auto r = run({tool, path});
  EXPECT_EQ(r.status, 0) << r.err;
  return r.out.substr(0, r.out.find(' '));
}

std::string pg_control(std::uint64_t system_id) {
  std::string out(reinterpret_cast<const char*>(&system_id), sizeof system_id);
  return out + std::string(100, '\x01');
}

// A version 2 manifest (1 without the System-Identifier) over a directory
// with one file per checksum algorithm, a non-UTF-8 name, and the files
// pg_verifybackup ignores.
void make_backup(const std::string& dir, int version = 2) {
  write(dir + "/base/1/1234", "123456789");  // CRC-32C 0xE3069283, stored little-endian
  write(dir + "/global/pg_control", pg_control(kSystemId));
  write(dir + "/PG_VERSION", "18\n");
  write(dir + "/pg_xact/0000", std::string(8192, '\0'));
  write(dir + "/pg_multixact/offsets/0000", std::string(300, 'm'));
  write(dir + "/pg_hba.conf", "local all all trust\n");
  write(dir + "/base/1/caf\xe9", "not utf-8");
  write(dir + "/postgresql.auto.conf", "restore_command = 'x'\n");
  write(dir + "/recovery.signal", "");
  write(dir + "/standby.signal", "");
  write(dir + "/pg_wal/000000010000000000000002", std::string(512, 'w'));

  auto entry = [&](const std::string& name_key, const std::string& name, const std::string& path,
                   const std::string& algorithm, const std::string& checksum) {
    std::string e = "{ \"" + name_key + "\": \"" + name +
                    "\", \"Size\": " + std::to_string(fs::file_size(dir + "/" + path)) +
                    ", \"Last-Modified\": \"2026-12-06 04:00:00 GMT\"";
    if (!algorithm.empty())
      e += ", \"Checksum-Algorithm\": \"" + algorithm + "\", \"Checksum\": \"" + checksum + "\"";
    return e + " }";
  };
  std::string text = "{ \"PostgreSQL-Backup-Manifest-Version\": " + std::to_string(version) + ",\n";
  if (version == 2) text += "\"System-Identifier\": " + std::to_string(kSystemId) + ",\n";
  text += "\"Files\": [\n" + entry("Path", "base/1/1234", "base/1/1234", "CRC32C", "839206e3") +
          ",\n" +
          entry("Path", "global/pg_control", "global/pg_control", "SHA256",
                digest("sha256sum", dir + "/global/pg_control")) +
          ",\n" +
          entry("Path", "PG_VERSION", "PG_VERSION", "SHA224",
                digest("sha224sum", dir + "/PG_VERSION")) +
          ",\n" +
          entry("Path", "pg_xact/0000", "pg_xact/0000", "SHA384",
                digest("sha384sum", dir + "/pg_xact/0000")) +
          ",\n" +
          entry("Path", "pg_multixact/offsets/0000", "pg_multixact/offsets/0000", "SHA512",
                digest("sha512sum", dir + "/pg_multixact/offsets/0000")) +
          ",\n" + entry("Path", "pg_hba.conf", "pg_hba.conf", "", "") + ",\n" +
          entry("Encoded-Path", "626173652f312f636166e9", "base/1/caf\xe9", "SHA256",
                digest("sha256sum", dir + "/base/1/caf\xe9")) +
          "\n],\n\"WAL-Ranges\": [\n"
          "{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n";
  write(dir + "/manifest-body", text);
  text += "\"Manifest-Checksum\": \"" + digest("sha256sum", dir + "/manifest-body") + "\"}\n";
  fs::remove(dir + "/manifest-body");
  write(dir + "/backup_manifest", text);
}

void replace_once(std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
}

// Whether exactly one problem was found and it contains every `part`.
::testing::AssertionResult one_problem(const std::vector<std::string>& problems,
                                       const std::vector<std::string>& parts) {
  std::string all;
  for (const auto& p : problems) all += "\n  " + p;
  if (problems.size() != 1)
    return ::testing::AssertionFailure() << problems.size() << " problems:" << all;
  for (const auto& part : parts)
    if (problems[0].find(part) == std::string::npos)
      return ::testing::AssertionFailure() << "no '" << part << "' in:" << all;
  return ::testing::AssertionSuccess();
}

// Version 1 is also what Debian's pg_verifybackup reads: where it is
// installed it passes the hand-written manifest, so the format written here
// (CRC-32C byte order, Encoded-Path, the span of the manifest checksum) is
// PostgreSQL's.
TEST(ManifestCheck, CleanDirectoryOfEitherVersionHasNoProblem) {
  for (int version : {1, 2}) {
    TempDir dir("wv-manifest");
    make_backup(dir.path(), version);
    EXPECT_EQ(check_backup_manifest(dir.path()), std::vector<std::string>{}) << version;
    const std::string tool = pg_client_bin_dir() + "/pg_verifybackup";
    if (version == 1 && fs::exists(tool)) {
      auto r = run({tool, "--no-parse-wal", dir.path()});
      EXPECT_EQ(r.status, 0) << r.out << r.err;
    }
  }
}

TEST(ManifestCheck, FlippedByteIsNamed) {
  TempDir dir("wv-manifest");
  make_backup(dir.path());
  write(dir.path() + "/base/1/1234", "123456780");
  EXPECT_TRUE(one_problem(check_backup_manifest(dir.path()),
                          {"\"base/1/1234\" has CRC32C checksum", "839206e3 in the manifest"}));
  make_backup(dir.path());
  write(dir.path() + "/pg_xact/0000", std::string(8191, '\0') + "x");
  EXPECT_TRUE(one_problem(check_backup_manifest(dir.path()), {"\"pg_xact/0000\" has SHA384"}));
}

TEST(ManifestCheck, MissingFileIsNamed) {
  TempDir dir("wv-manifest");
  make_backup(dir.path());
  fs::remove(dir.path() + "/PG_VERSION");
  EXPECT_TRUE(one_problem(check_backup_manifest(dir.path()),
                          {"\"PG_VERSION\" is present in the manifest but not on disk"}));
  make_backup(dir.path());
  fs::remove(dir.path() + "/base/1/caf\xe9");
  EXPECT_TRUE(one_problem(check_backup_manifest(dir.path()),
                          {"\"base/1/caf\xe9\" is present in the manifest but not on disk"}));
}

TEST(ManifestCheck, ExtraFileIsNamedButIgnoredOnesAreNot) {
  TempDir dir("wv-manifest");
  make_backup(dir.path());
  write(dir.path() + "/base/1/extra", "x");
  EXPECT_TRUE(one_problem(check_backup_manifest(dir.path()),
                          {"\"base/1/extra\" is present on disk but not in the manifest"}));
  fs::remove(dir.path() + "/base/1/extra");
  write(dir.path() + "/postmaster.pid", "1\n");
  EXPECT_TRUE(one_problem(check_backup_manifest(dir.path()), {"\"postmaster.pid\" is present"}));
}

TEST(ManifestCheck, ChangedSizeIsNamedOnce) {
  TempDir dir("wv-manifest");
  make_backup(dir.path());
  write(dir.path() + "/pg_hba.conf", "local all all trust\n#\n");
  EXPECT_TRUE(one_problem(check_backup_manifest(dir.path()),
                          {"\"pg_hba.conf\" has size 22 on disk but size 20 in the manifest"}));
}

TEST(ManifestCheck, OtherSystemIdentifierIsNamed) {
  TempDir dir("wv-manifest");
  make_backup(dir.path());
  const std::string manifest = dir.path() + "/backup_manifest";
  // Another cluster's pg_control, listed with its checksum: only the
  // identifier differs from the manifest's.
  std::ifstream in(manifest);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  write(dir.path() + "/global/pg_control", pg_control(kSystemId + 1));
  const std::string old_sum = "\"SHA256\", \"Checksum\": \"";
  const auto at = text.find(old_sum) + old_sum.size();
  text.replace(at, 64, digest("sha256sum", dir.path() + "/global/pg_control"));
  const auto line = text.rfind("\"Manifest-Checksum\"");
  write(dir.path() + "/manifest-body", text.substr(0, line));
  text = text.substr(0, line) + "\"Manifest-Checksum\": \"" +
         digest("sha256sum", dir.path() + "/manifest-body") + "\"}\n";
  fs::remove(dir.path() + "/manifest-body");
  write(manifest, text);
  EXPECT_TRUE(one_problem(check_backup_manifest(dir.path()),
                          {"manifest system identifier is " + std::to_string(kSystemId),
                           "control file has " + std::to_string(kSystemId + 1)}));
}

TEST(ManifestCheck, EditedOrUnknownManifestIsNamed) {
  TempDir dir("wv-manifest");
  make_backup(dir.path());
  const std::string manifest = dir.path() + "/backup_manifest";
  std::ifstream in(manifest);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  in.close();
  // A size edited in the manifest without its checksum: the checksum names
  // the edit (and the size it now disagrees with is named too).
  std::string edited = text;
  ASSERT_NO_FATAL_FAILURE(replace_once(edited, "\"Size\": 20,", "\"Size\": 21,"));
  write(manifest, edited);
  auto problems = check_backup_manifest(dir.path());
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("backup_manifest: manifest checksum mismatch"), std::string::npos)
      << problems[0];
  EXPECT_NE(problems[1].find("\"pg_hba.conf\" has size 20 on disk but size 21"), std::string::npos)
      << problems[1];
  edited = text;
  ASSERT_NO_FATAL_FAILURE(replace_once(edited, "Version\": 2", "Version\": 3"));
  write(manifest, edited);
  problems = check_backup_manifest(dir.path());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], "backup_manifest: unexpected manifest version 3");
  write(manifest, text.substr(0, text.size() / 2));
  EXPECT_TRUE(one_problem(check_backup_manifest(dir.path()), {"backup_manifest: "}));
}

}  // namespace
}  // namespace walvault::testing
