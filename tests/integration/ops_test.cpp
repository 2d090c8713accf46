// verify and info against a repository a real PostgreSQL 15 archives into,
// with one base backup: a whole repository verifies clean (structure and
// data), a segment lost after the backup is named, info describes it.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

TEST(OpsTest, VerifyFindsALostSegmentAndInfoDescribesTheRepository) {
  TempDir work("wv-ops");
  const std::string repo = work.sub("repo");
  const auto flags = repo_flags(repo, work.sub("spool"));
  ASSERT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
  auto pg = start_archiving_cluster(archive_push_command(flags, 2));
  pg->sql("create table t(id int)");
  pg->sql("insert into t select generate_series(1, 10000)");
  auto b = walvault(concat(flags, {"backup", "--pg", conninfo(*pg)}));
  ASSERT_EQ(b.status, 0) << b.err;
  const std::string label = backup_label_of(b.out);
  ASSERT_FALSE(label.empty()) << b.out;
  // Two segments after the backup's end: the first will be lost.
  pg->sql("insert into t select generate_series(1, 1000)");
  const std::string lost = switch_and_wait(*pg);
  pg->sql("insert into t select generate_series(1, 1000)");
  pg->sql("select pg_create_restore_point('ops_point')");
  const std::string last = switch_and_wait(*pg);
  ASSERT_LT(lost, last);

  for (const std::string mode : {"", "--read-data"}) {
    SCOPED_TRACE("verify " + mode);
    auto args = concat(flags, {"verify"});
    if (!mode.empty()) args.push_back(mode);
    auto v = walvault(args);
    EXPECT_EQ(v.status, 0) << v.out << v.err;
    EXPECT_TRUE(v.out.starts_with("verify: 1 backup, ")) << v.out;
    EXPECT_NE(v.out.find(" WAL segments checked; 0 errors, 0 warnings\n"), std::string::npos)
        << v.out;
  }

  auto info = walvault(concat(flags, {"info", "--json"}));
  ASSERT_EQ(info.status, 0) << info.err;
  const auto j = nlohmann::json::parse(info.out);
  ASSERT_EQ(j.at("backups").size(), 1u) << info.out;
  EXPECT_EQ(j.at("backups")[0].at("label"), label);
  EXPECT_EQ(j.at("cluster").at("pg_major"), 15);
  EXPECT_GT(j.at("size_bytes").get<std::uint64_t>(), 0u);
  EXPECT_GT(j.at("dedup_ratio").get<double>(), 0.0);
  EXPECT_TRUE(j.at("space").at("free_bytes").is_number()) << info.out;
  EXPECT_EQ(j.at("window").at("restorable"), true) << info.out;
  EXPECT_EQ(j.at("window").at("timeline"), 1);
  EXPECT_FALSE(j.at("window").at("latest_commit_time").is_null()) << info.out;
  EXPECT_GE(j.at("wal").at("last_segment").get<std::string>(), last);
  EXPECT_FALSE(j.at("wal").at("last_archived_time").is_null());
  ASSERT_EQ(j.at("restore_points").size(), 1u) << info.out;
  EXPECT_EQ(j.at("restore_points")[0].at("name"), "ops_point");
  auto text = walvault(concat(flags, {"info"}));
  EXPECT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("backups: 1\n  " + label + ": "), std::string::npos) << text.out;

  // Lose one archived segment after the backup: restoring past it is
  // impossible, and verify says which segment and which backup.
  const std::string dir = lost.substr(0, 16) + "/" + lost;
  ASSERT_TRUE(fs::remove(repo + "/wal/seg/" + dir));
  ASSERT_TRUE(fs::remove(repo + "/wal/meta/" + dir));
  auto v = walvault(concat(flags, {"verify"}));
  EXPECT_EQ(v.status, 6) << v.out << v.err;
  EXPECT_NE(v.out.find("error: wal: " + lost + " missing (needed by backup " + label +
                       " on timeline 1)\n"),
            std::string::npos)
      << v.out;
  EXPECT_NE(v.out.find("; 1 error, 0 warnings\n"), std::string::npos) << v.out;
  auto vj = walvault(concat(flags, {"verify", "--json"}));
  EXPECT_EQ(vj.status, 6) << vj.err;
  const auto report = nlohmann::json::parse(vj.out);
  ASSERT_EQ(report.at("errors").size(), 1u) << vj.out;
  EXPECT_EQ(report.at("errors")[0].at("object"), "wal");
  pg->stop();
}

}  // namespace
}  // namespace walvault::testing
