// The map-based incremental of `walvault backup --local` (issue 17, part 2):
// after a workload of pgbench, DDL, VACUUM (FULL), TRUNCATE, CREATE
// DATABASE (both strategies), ALTER TABLE SET TABLESPACE, an unlogged table,
// hint-bit-only changes and deleted rows whose visibility-map bits are
// cleared, a second `backup --local` reads only part of the data, and a
// `--full-read` backup at the same point restores to the same data: both
// restores pass pg_amcheck and pg_visibility's checks, and every table's row
// count and content digest equal the source's. A block map removed from the
// repository makes the next backup read everything and name the segment.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "integration/local_backup_cli.h"
#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

std::vector<std::string> databases(PgCluster& pg) {
  return lines(pg.sql("select datname from pg_database where datallowconn order by 1"));
}

// Per database, per permanent user table: row count and md5 of its rows in
// a fixed order.
std::map<std::string, std::string> digests(PgCluster& pg) {
  std::map<std::string, std::string> out;
  for (const std::string& db : databases(pg)) {
    const auto tables = lines(
        pg.sql("select quote_ident(n.nspname) || '.' || quote_ident(c.relname) from pg_class c "
               "join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'm') and "
               "c.relpersistence = 'p' and n.nspname not in ('pg_catalog', 'information_schema') "
               "and n.nspname not like 'pg_toast%' order by 1",
               db));
    for (const std::string& t : tables)
      out[db + ":" + t] = pg.sql(
          "select count(*) || ' ' || coalesce(md5(string_agg(x::text, ',' order by "
          "x::text)), '-') from " +
              t + " x",
          db);
  }
  return out;
}

// pg_amcheck over every database, and pg_visibility's checks of every table:
// no all-visible or all-frozen page with a tuple that is not.
void check_consistent(PgCluster& pg, const std::string& what) {
  if (pg.major() >= 14) {
    const auto amcheck = run({"/usr/lib/postgresql/15/bin/pg_amcheck", "--all", "--install-missing",
                              "--heapallindexed", "-h", pg.socket_dir(), "-p",
                              std::to_string(pg.port()), "-U", "postgres"});
    EXPECT_EQ(amcheck.status, 0) << what << ": " << amcheck.out << amcheck.err;
  }
  for (const std::string& db : databases(pg)) {
    pg.sql("create extension if not exists pg_visibility", db);
    EXPECT_EQ(pg.sql("select coalesce(sum((select count(*) from pg_check_visible(c.oid)) + "
                     "(select count(*) from pg_check_frozen(c.oid))), 0) from pg_class c "
                     "where c.relkind in ('r', 'm', 't') and c.relpersistence = 'p'",
                     db),
              "0")
        << what << ": database " << db;
  }
}

// Before the first backup: tables each step of the workload changes.
void prepare(PgCluster& pg, const std::string& location) {
  pg.sql("alter system set autovacuum = off");
  pg.sql("select pg_reload_conf()");
  pg.sql("create tablespace ts location '" + location + "'");
  pg.pgbench_init(1);
  pg.sql(
      "create table big as select g as id, md5(g::text) || md5((-g)::text) as v "
      "from generate_series(1, 300000) g");
  pg.sql(
      "create table vm_victim as select g as id, md5(g::text) as v "
      "from generate_series(1, 20000) g");
  pg.sql("create table hint as select g as id from generate_series(1, 20000) g");
  pg.sql("create table moved as select g as id, md5(g::text) as v from generate_series(1, 5000) g");
  pg.sql("create table trunc as select generate_series(1, 5000) as id");
  pg.sql(
      "create table vf as select g as id, repeat('y', 100) as v "
      "from generate_series(1, 10000) g");
  pg.sql("create table dropped as select generate_series(1, 1000) as id");
  pg.sql("create unlogged table scratch as select generate_series(1, 1000) as id");
  pg.sql("vacuum freeze");  // all-visible and all-frozen pages, hint bits set
  pg.sql("insert into hint select generate_series(20001, 40000)");  // no hint bits yet
}

// Between the two backups.
void workload(PgCluster& pg) {
  const bool strategies = pg.major() >= 15;
  pg.pgbench_run(3, 2);
  pg.sql(
      "create table created as select g as id, md5(g::text) as v "
      "from generate_series(1, 3000) g");
  pg.sql("alter table created add column extra int default 7");
  pg.sql("create index on created (v)");
  pg.sql("alter table vf add column w int");
  pg.sql("delete from vf where id % 3 = 0");
  pg.sql("vacuum full vf");
  pg.sql("delete from pgbench_history where aid % 2 = 0");
  pg.sql("vacuum pgbench_history");
  pg.sql("truncate trunc");
  pg.sql("insert into trunc select generate_series(1, 100)");
  pg.sql("drop table dropped");
  // FILE_COPY (the only way before 15) and WAL_LOG (the default from 15).
  pg.sql(strategies ? "create database db_copy strategy = file_copy" : "create database db_copy");
  pg.sql("create database db_wal");
  pg.sql("create table t as select generate_series(1, 2000) as id", "db_copy");
  pg.sql("create table t as select generate_series(1, 3000) as id", "db_wal");
  pg.sql("alter table moved set tablespace ts");
  pg.sql("update moved set v = 'x' where id < 100");
  pg.sql("insert into scratch select generate_series(1, 500)");
  pg.sql("select count(*) from hint");  // sets hint bits: not WAL-logged without checksums
  pg.sql("delete from vm_victim where id % 50 = 0");  // clears visibility-map bits
  pg.sql("update vm_victim set v = 'changed' where id % 77 = 0");
}

std::unique_ptr<PgCluster> restore_and_start(const std::vector<std::string>& flags,
                                             const std::string& label, const std::string& pgdata,
                                             const std::string& ts, int major) {
  auto r = walvault(
      concat(flags, {"restore", "--set", label, "--pgdata", pgdata, "--tablespace-map", ts}));
  EXPECT_EQ(r.status, 0) << r.err;
  return start_restored(pgdata, major);
}

// The scenario on one major: checksums off (hint-bit changes are then not
// WAL-logged; 18 turns them on by default).
void map_based_and_full_read_restore_the_same(int major) {
  TempDir work("wv-incr");
  const std::string repo = work.sub("repo");
  const auto flags = repo_flags(repo, work.sub("spool"));
  ASSERT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
  std::vector<std::string> initdb_args;
  if (major >= 18) initdb_args.push_back("--no-data-checksums");
  auto pg = start_archiving_cluster(archive_push_command(flags, 2), major, initdb_args);
  const std::string location = work.sub("ts");
  fs::create_directories(location);
  give_to_test_user(location);
  prepare(*pg, location);

  auto b1 = local_backup(flags, *pg);
  ASSERT_EQ(b1.status, 0) << b1.err;
  const std::string first = backup_label_of(b1.out);
  EXPECT_NE(b1.out.find("read every file whole: no previous backup"), std::string::npos) << b1.out;
  EXPECT_EQ(record_of(flags, first).value("full_read_reason", ""), "no previous backup");

  workload(*pg);
  const auto untouched = std::stoull(pg->sql("select pg_relation_size('big')"));
  ASSERT_GT(untouched, 16u << 20);

  auto b2 = local_backup(flags, *pg);
  ASSERT_EQ(b2.status, 0) << b2.err;
  const std::string incremental = backup_label_of(b2.out);
  EXPECT_NE(b2.out.find("map-based incremental from " + first), std::string::npos)
      << b2.out << b2.err;
  const auto r2 = record_of(flags, incremental);
  EXPECT_EQ(r2.value("incremental_from", ""), first);
  EXPECT_FALSE(r2.contains("full_read_reason")) << r2.dump();
  const auto logical = r2.at("logical_bytes").get<std::uint64_t>();
  const auto read = r2.at("read_bytes").get<std::uint64_t>();
  // The table the workload never touches was taken over, not read: a ratio
  // of the whole would depend on how many pages pgbench reached.
  EXPECT_LE(read + untouched, logical)
      << "read " << read << " of " << logical << ", table big " << untouched << " bytes";

  // No writes between: a backup reading everything at the same point.
  auto b3 = local_backup(flags, *pg, {"--full-read"});
  ASSERT_EQ(b3.status, 0) << b3.err;
  const std::string full = backup_label_of(b3.out);
  EXPECT_NE(b3.out.find("read every file whole: --full-read"), std::string::npos) << b3.out;
  const auto r3 = record_of(flags, full);
  EXPECT_EQ(r3.at("read_bytes"), r3.at("logical_bytes"));
  EXPECT_EQ(r3.value("full_read_reason", ""), "--full-read");

  const auto wanted = digests(*pg);
  ASSERT_GT(wanted.size(), 10u);
  EXPECT_NE(pg->sql("select count(*) from scratch"), "0");
  switch_and_wait(*pg);

  const std::string ts_map = location + "=";
  auto a =
      restore_and_start(flags, incremental, work.sub("r-incr"), ts_map + work.sub("ts-a"), major);
  check_consistent(*a, "map-based restore");
  EXPECT_EQ(digests(*a), wanted);
  EXPECT_EQ(a->sql("select count(*) from scratch"), "0");
  a->stop();
  auto b = restore_and_start(flags, full, work.sub("r-full"), ts_map + work.sub("ts-b"), major);
  check_consistent(*b, "full-read restore");
  EXPECT_EQ(digests(*b), wanted);
  b->stop();
  pg->stop();
}

TEST(IncrementalBackupTest, MapBasedAndFullReadBackupsRestoreToTheSameData) {
  map_based_and_full_read_restore_the_same(15);
}

class IncrementalBackupMajorTest : public ::testing::TestWithParam<int> {};

// 13: pg_start_backup, CREATE DATABASE by file copy only (pg_amcheck needs
// amcheck 1.3, from 14: pg_visibility and the digests check it); 18: the
// newest block-reference and record formats.
TEST_P(IncrementalBackupMajorTest, MapBasedAndFullReadBackupsRestoreToTheSameData) {
  const int major = GetParam();
  if (auto why = missing_major(major); !why.empty()) GTEST_SKIP() << why;
  map_based_and_full_read_restore_the_same(major);
}

INSTANTIATE_TEST_SUITE_P(Majors, IncrementalBackupMajorTest, ::testing::Values(13, 18));

TEST(IncrementalBackupTest, RemovedBlockMapMakesTheNextBackupReadEverything) {
  TempDir work("wv-incr-map");
  const std::string repo = work.sub("repo");
  const auto flags = repo_flags(repo, work.sub("spool"));
  ASSERT_EQ(walvault({"--repo", repo, "repo", "init"}).status, 0);
  auto pg = start_archiving_cluster(archive_push_command(flags, 2));
  pg->sql("create table t as select generate_series(1, 10000) as id");
  auto b1 = local_backup(flags, *pg);
  ASSERT_EQ(b1.status, 0) << b1.err;
  pg->sql("insert into t select generate_series(1, 10000)");
  const std::string segment = switch_and_wait(*pg);
  pg->sql("insert into t select generate_series(1, 100)");
  const std::string map = repo + "/wal/map/" + segment.substr(0, 16) + "/" + segment;
  ASSERT_TRUE(fs::exists(map)) << map;
  fs::remove(map);
  auto b2 = local_backup(flags, *pg);
  ASSERT_EQ(b2.status, 0) << b2.err;
  EXPECT_NE(b2.out.find("read every file whole: block map missing or incomplete: " + segment),
            std::string::npos)
      << b2.out;
  const auto r2 = record_of(flags, backup_label_of(b2.out));
  EXPECT_NE(r2.value("full_read_reason", "").find(segment), std::string::npos) << r2.dump();
  EXPECT_EQ(r2.at("read_bytes"), r2.at("logical_bytes"));
  // With the maps complete again from that backup on, the next one builds on it.
  auto b3 = local_backup(flags, *pg);
  ASSERT_EQ(b3.status, 0) << b3.err;
  EXPECT_NE(b3.out.find("map-based incremental from " + backup_label_of(b2.out)), std::string::npos)
      << b3.out;
  // The config file's key, as the flag.
  const std::string config = work.sub("walvault.conf");
  write_text(config, "[backup]\nfull-read = true\n");
  give_to_test_user(config);
  auto b4 = local_backup(concat({"--config", config}, flags), *pg);
  ASSERT_EQ(b4.status, 0) << b4.err;
  EXPECT_NE(b4.out.find("read every file whole: --full-read"), std::string::npos) << b4.out;
  pg->stop();
}

}  // namespace
}  // namespace walvault::testing
