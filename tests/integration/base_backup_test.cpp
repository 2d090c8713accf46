// BaseBackupClient against real servers (15 from Debian; 14 from npm when
// scripts/fetch-pg-majors installed it): every file the client streams is
// compared with what pg_basebackup -Fp writes from the same server right
// after, and with the server's own backup_manifest (sizes and SHA-256).
#include "pg/base_backup.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "support/pg_cluster.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;
using pg::BackupSink;
using pg::TarEntry;
using pg::TarEntryType;

struct FileInfo {
  TarEntryType type = TarEntryType::kFile;
  std::uint64_t size = 0;
  std::string sha256;  // hex, regular files only
  std::string link_target;
  std::string content;  // kept for files up to kKeptContent bytes
};

constexpr std::uint64_t kKeptContent = 1024;

std::string to_hex_string(const unsigned char* data, unsigned len) {
  constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

// Records every entry under its manifest-style path (tablespace archives
// under "pg_tblspc/<oid>/"), with a streaming SHA-256 of the content, and the
// order of the calls.
class RecordingSink : public BackupSink {
 public:
  RecordingSink() : md_(EVP_MD_CTX_new()) {}
  ~RecordingSink() override { EVP_MD_CTX_free(md_); }

  void on_start(pg::Lsn start_lsn, pg::TimeLineId timeline,
                const std::vector<pg::Tablespace>& tablespaces) override {
    events.push_back("start");
    start = start_lsn;
    start_tli = timeline;
    this->tablespaces = tablespaces;
  }
  void on_archive_begin(const std::string& name, const pg::Tablespace& tablespace) override {
    events.push_back("archive " + name);
    prefix_ = tablespace.is_main() ? "" : "pg_tblspc/" + std::to_string(*tablespace.oid) + "/";
    archive_paths.push_back(tablespace.path);
  }
  void on_tar_entry_begin(const TarEntry& entry) override {
    current_ = prefix_ + entry.path;
    EXPECT_EQ(files.count(current_), 0u) << "duplicate entry " << current_;
    files[current_] = {entry.type, entry.size, "", entry.link_target};
    EVP_DigestInit_ex(md_, EVP_sha256(), nullptr);
    seen_ = 0;
  }
  void on_tar_entry_data(ByteView data) override {
    EVP_DigestUpdate(md_, data.data(), data.size());
    if (files[current_].size <= kKeptContent) files[current_].content.append(as_chars(data));
    seen_ += data.size();
    data_bytes += data.size();
  }
  void on_tar_entry_end() override {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(md_, digest, &len);
    EXPECT_EQ(seen_, files[current_].size) << current_;
    if (files[current_].type == TarEntryType::kFile)
      files[current_].sha256 = to_hex_string(digest, len);
  }
  void on_archive_end() override { events.push_back("archive end"); }
  void on_manifest_data(ByteView data) override {
    if (manifest.empty()) events.push_back("manifest");
    manifest.append(as_chars(data));
  }
  void on_progress(std::uint64_t bytes_done) override {
    EXPECT_GE(bytes_done, last_progress) << "progress went backwards";
    last_progress = bytes_done;
    ++progress_calls;
  }
  void on_end(pg::Lsn end_lsn, pg::TimeLineId timeline) override {
    events.push_back("end");
    end = end_lsn;
    end_tli = timeline;
  }

  std::vector<std::string> events;
  std::vector<pg::Tablespace> tablespaces;
  std::vector<std::string> archive_paths;
  std::map<std::string, FileInfo> files;
  std::string manifest;
  pg::Lsn start = 0, end = 0;
  pg::TimeLineId start_tli = 0, end_tli = 0;
  std::uint64_t last_progress = 0, progress_calls = 0, data_bytes = 0;

 private:
  EVP_MD_CTX* md_;
  std::string prefix_, current_;
  std::uint64_t seen_ = 0;
};

// Entry type and size of everything under `root`, links not followed.
void walk(const std::string& root, const std::string& prefix,
          std::map<std::string, FileInfo>& out) {
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    std::string rel = prefix + it->path().lexically_relative(root).string();
    FileInfo info;
    if (it->is_symlink()) {
      info.type = TarEntryType::kSymlink;
      info.link_target = fs::read_symlink(it->path());
    } else if (it->is_directory()) {
      info.type = TarEntryType::kDirectory;
    } else {
      info.size = it->file_size();
    }
    out[rel] = info;
  }
}

class BaseBackupTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (auto why = missing_major(GetParam()); !why.empty()) GTEST_SKIP() << why;
    // autovacuum off: the two backups being compared must see the same
    // relation files (no visibility or free-space maps appearing between them).
    cluster_ =
        std::make_unique<PgCluster>(PgCluster::Options{GetParam(), {{"autovacuum", "off"}}, {}});
    cluster_->init();
    cluster_->start();
  }

  std::string conninfo() const {
    return "host=" + cluster_->socket_dir() + " port=" + std::to_string(cluster_->port()) +
           " user=postgres";
  }

  std::unique_ptr<PgCluster> cluster_;
};

TEST_P(BaseBackupTest, StreamsWhatPgBasebackupWritesAndTheManifestLists) {
  TempDir ts_dir("wv-ts");
  cluster_->sql("CREATE TABLESPACE ts LOCATION '" + ts_dir.path() + "'");
  cluster_->sql(
      "CREATE TABLE in_ts (id int, filler text) TABLESPACE ts;"
      "INSERT INTO in_ts SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;"
      "CREATE TABLE in_main AS SELECT g AS id FROM generate_series(1, 50000) g;"
      "CHECKPOINT");
  std::string ts_oid = cluster_->sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'");

  pg::BaseBackupClient client(conninfo());
  pg::ServerFacts facts = client.server_facts();
  EXPECT_EQ(facts.server_version_num / 10000, GetParam());
  EXPECT_EQ(std::to_string(facts.system_identifier),
            cluster_->sql("SELECT system_identifier FROM pg_control_system()"));
  EXPECT_EQ(facts.timeline, 1u);
  EXPECT_EQ(facts.wal_segment_size, 16u << 20);
  EXPECT_FALSE(facts.data_checksums);  // initdb without -k

  RecordingSink sink;
  pg::BaseBackupOptions options;
  options.label = "walvault test";
  options.manifest_checksums = pg::ManifestChecksums::kSha256;
  pg::BaseBackupResult result = client.run_base_backup(options, sink);

  // Call order: start, the tablespace archive, base last, manifest, end.
  std::vector<std::string> expected_events = {"start",       "archive " + ts_oid + ".tar",
                                              "archive end", "archive base.tar",
                                              "archive end", "manifest",
                                              "end"};
  EXPECT_EQ(sink.events, expected_events);
  ASSERT_EQ(sink.tablespaces.size(), 2u);
  EXPECT_EQ(sink.tablespaces[0].oid, static_cast<std::uint32_t>(std::stoul(ts_oid)));
  EXPECT_EQ(sink.tablespaces[0].path, ts_dir.path());
  EXPECT_TRUE(sink.tablespaces[1].is_main());

  // Positions.
  EXPECT_EQ(result.start_lsn, sink.start);
  EXPECT_EQ(result.end_lsn, sink.end);
  EXPECT_LT(sink.start, sink.end);
  EXPECT_EQ(sink.start_tli, 1u);
  EXPECT_EQ(sink.end_tli, 1u);

  // Progress: the server's (15+) or our (13/14) count of tar bytes ends at
  // the total; the tablespace estimates are in kB and close to it.
  EXPECT_GT(sink.progress_calls, 0u);
  EXPECT_EQ(sink.last_progress, result.tar_bytes);
  std::int64_t estimate_kb = 0;
  for (const auto& ts : sink.tablespaces) estimate_kb += ts.size_kb.value_or(0);
  EXPECT_NEAR(static_cast<double>(estimate_kb) * 1024, static_cast<double>(result.tar_bytes),
              0.05 * static_cast<double>(result.tar_bytes));
  EXPECT_GT(result.tar_bytes, sink.data_bytes);

  // The server's manifest lists exactly the regular files we saw, with the
  // same sizes and SHA-256 of the bytes we streamed.
  ASSERT_EQ(result.manifest_bytes, sink.manifest.size());
  auto manifest = nlohmann::json::parse(sink.manifest);
  EXPECT_EQ(manifest["PostgreSQL-Backup-Manifest-Version"], 1);
  std::set<std::string> regular, listed;
  for (const auto& [path, info] : sink.files)
    if (info.type == TarEntryType::kFile) regular.insert(path);
  for (const auto& f : manifest["Files"]) {
    std::string path = f["Path"];
    listed.insert(path);
    ASSERT_EQ(sink.files.count(path), 1u) << path;
    EXPECT_EQ(f["Size"].get<std::uint64_t>(), sink.files[path].size) << path;
    EXPECT_EQ(f["Checksum-Algorithm"], "SHA256");
    EXPECT_EQ(f["Checksum"], sink.files[path].sha256) << path;
  }
  EXPECT_EQ(listed, regular);
  ASSERT_EQ(manifest["WAL-Ranges"].size(), 1u);
  EXPECT_EQ(manifest["WAL-Ranges"][0]["Start-LSN"], pg::format_lsn(sink.start));
  EXPECT_EQ(manifest["WAL-Ranges"][0]["End-LSN"], pg::format_lsn(sink.end));
  EXPECT_EQ(sink.files.count("tablespace_map"), 1u);
  EXPECT_EQ(sink.files.count("backup_label"), 1u);
  // With TABLESPACE_MAP the server sends tablespace_map instead of the
  // pg_tblspc/<oid> links.
  EXPECT_EQ(sink.files.count("pg_tblspc/" + ts_oid), 0u);
  EXPECT_EQ(sink.files["tablespace_map"].content, ts_oid + " " + ts_dir.path() + "\n");
  EXPECT_NE(sink.files["backup_label"].content.find("LABEL: walvault test\n"), std::string::npos);
  for (const auto& [path, info] : sink.files) {
    if (path.starts_with("pg_wal/")) {
      EXPECT_NE(info.type, TarEntryType::kFile) << path;
    }
  }

  // Ground truth: pg_basebackup -Fp from the same server right after.
  TempDir truth_dir("wv-pgbb");
  std::string data = truth_dir.sub("data"), mapped = truth_dir.sub("ts");
  auto r = run({pg_client_bin_dir() + "/pg_basebackup", "-D", data, "-Fp", "-X", "none", "-c",
                "fast", "--no-sync", "--tablespace-mapping=" + ts_dir.path() + "=" + mapped, "-h",
                cluster_->socket_dir(), "-p", std::to_string(cluster_->port()), "-U", "postgres"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::map<std::string, FileInfo> truth;
  walk(data, "", truth);
  walk(mapped, "pg_tblspc/" + ts_oid + "/", truth);
  // Only in one of the two, by construction:
  //  - backup_manifest: pg_basebackup writes the manifest stream to a file;
  //    the client hands it to on_manifest_data instead.
  //  - tablespace_map: asked for by the client (TABLESPACE_MAP), and then
  //    the server leaves out the pg_tblspc/<oid> link that pg_basebackup
  //    -Fp, which does not ask for the map, receives and recreates.
  truth.erase("backup_manifest");
  ASSERT_EQ(truth["pg_tblspc/" + ts_oid].type, TarEntryType::kSymlink);
  truth.erase("pg_tblspc/" + ts_oid);
  std::map<std::string, FileInfo> ours = sink.files;
  ours.erase("tablespace_map");
  // Present in both, content legitimately different: backup_label holds the
  // label, start LSN and time of its own backup, so its size may differ.
  // Everything else is stable between the two backups: autovacuum is off
  // and nothing writes; the server itself leaves out pg_wal contents,
  // pg_stat_tmp, postmaster.pid/opts and pg_internal.init in both.
  std::set<std::string> size_may_differ = {"backup_label"};
  std::set<std::string> only_truth, only_ours;
  for (const auto& [path, info] : truth)
    if (!ours.count(path)) only_truth.insert(path);
  for (const auto& [path, info] : ours)
    if (!truth.count(path)) only_ours.insert(path);
  EXPECT_TRUE(only_truth.empty()) << "missing from the stream: " << *only_truth.begin();
  EXPECT_TRUE(only_ours.empty()) << "not in pg_basebackup's copy: " << *only_ours.begin();
  std::size_t compared = 0;
  for (const auto& [path, info] : ours) {
    if (!truth.count(path)) continue;
    EXPECT_EQ(static_cast<int>(info.type), static_cast<int>(truth[path].type)) << path;
    if (info.type == TarEntryType::kFile && !size_may_differ.count(path)) {
      EXPECT_EQ(info.size, truth[path].size) << path;
      ++compared;
    }
  }
  EXPECT_GT(compared, 500u);
}

TEST_P(BaseBackupTest, ServerErrorsAreReportedWithoutPasswords) {
  try {
    pg::BaseBackupClient client("host=" + cluster_->socket_dir() + " port=1 user=postgres " +
                                "password=hunter2secret");
    ADD_FAILURE() << "connected to port 1";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPostgres);
    EXPECT_EQ(std::string(e.what()).find("hunter2secret"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("password=********"), std::string::npos) << e.what();
  }
  pg::BaseBackupClient client(conninfo());
  RecordingSink sink;
  pg::BaseBackupOptions options;
  options.label = std::string(2000, 'l');  // the server's limit is MAXPGPATH (1024)
  try {
    client.run_base_backup(options, sink);
    ADD_FAILURE() << "an over-long label was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPostgres);
    EXPECT_EQ(std::string(e.what()).rfind("BASE_BACKUP: ", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("label"), std::string::npos) << e.what();
  }
}

// A sink may abort the backup by throwing; the exception reaches the caller
// unchanged and the server ends the backup when the connection closes.
TEST_P(BaseBackupTest, SinkExceptionAbortsTheBackup) {
  class AbortingSink : public RecordingSink {
   public:
    void on_tar_entry_data(ByteView data) override {
      RecordingSink::on_tar_entry_data(data);
      if (data_bytes > (1 << 20)) throw std::runtime_error("sink gave up");
    }
  };
  {
    pg::BaseBackupClient client(conninfo());
    AbortingSink sink;
    EXPECT_THROW(
        {
          try {
            client.run_base_backup({}, sink);
          } catch (const std::runtime_error& e) {
            EXPECT_STREQ(e.what(), "sink gave up");
            throw;
          }
        },
        std::runtime_error);
    EXPECT_EQ(sink.events.back(), "archive base.tar");
  }
  // The server is free for the next backup.
  pg::BaseBackupClient client(conninfo());
  RecordingSink sink;
  auto result = client.run_base_backup({}, sink);
  EXPECT_LT(result.start_lsn, result.end_lsn);
  EXPECT_EQ(sink.events.back(), "end");
}

std::string major_name(const ::testing::TestParamInfo<int>& info) {
  return "pg" + std::to_string(info.param);
}
INSTANTIATE_TEST_SUITE_P(Majors, BaseBackupTest, ::testing::Values(15, 14), major_name);

}  // namespace
}  // namespace walvault::testing
