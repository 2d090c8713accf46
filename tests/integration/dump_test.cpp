// Logical dumps against a real PostgreSQL 15 (the seed runbook's
// `backup-db` / `restore-db FILE=backup.sql`): a dump taken under pgbench
// load restores into a new database as a consistent snapshot (pgbench's
// balance invariants hold, row counts match); a quiet dump restores row for
// row (count and md5 per table), and one table alone with --table; a second
// day's dump after a small change stores a small fraction of the first;
// gc keeps every dump restorable; an existing plain .sql.gz comes in with
// `dump import` and restores through psql; a damaged or crafted record, or a
// dump whose chunk is gone, is a one-line error with exit status 6. The
// cluster's globals: `dump --all` takes the roles too, and on a fresh
// cluster they restore before a database restored with --create.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "dump/dump_record.h"
#include "integration/walvault_cli.h"
#include "repo/layout.h"
#include "repo/repository.h"
#include "store/object_store.h"

namespace walvault::testing {
namespace {

const std::vector<std::string> kTables = {"pgbench_accounts", "pgbench_branches", "pgbench_tellers",
                                          "pgbench_history"};

// "rows md5" of a table: every row as text, in order.
std::string digest(PgCluster& pg, const std::string& db, const std::string& table) {
  return pg.sql(
      "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY "
      "t::text)), '-') FROM " +
          table + " t",
      db);
}

// pgbench's invariant, true of every consistent snapshot of its tables:
// the branches', tellers' and accounts' balances and the history's deltas
// have one sum.
std::string balance_sums(PgCluster& pg, const std::string& db) {
  return pg.sql(
      "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || (SELECT sum(tbalance) FROM "
      "pgbench_tellers) || ' ' || (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || "
      "(SELECT coalesce(sum(delta), 0) FROM pgbench_history)",
      db);
}

// The one dump line's id and added bytes ("dump <id> of ...: X MiB, Y MiB new").
struct DumpLine {
  std::string id;
  std::uint64_t added_bytes = 0;
};

std::vector<nlohmann::json> listed(const std::vector<std::string>& flags) {
  auto r = walvault(concat(flags, {"dump", "list", "--json"}));
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<nlohmann::json> out;
  for (const auto& j : nlohmann::json::parse(r.out)) out.push_back(j);
  return out;
}

// Dumps `db` into the repositories of `flags`; the newest dump of the first.
nlohmann::json take_dump(const std::vector<std::string>& flags, PgCluster& pg,
                         const std::string& db = "postgres") {
  auto r = walvault(concat(flags, {"dump", "--pg", conninfo(pg), "--db", db}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("custom"), std::string::npos) << r.out;
  const auto all = listed(flags);
  return all.empty() ? nlohmann::json() : all.back();
}

void restore(const std::vector<std::string>& flags, PgCluster& pg, const std::string& id,
             const std::string& into, const std::vector<std::string>& extra = {},
             const std::map<std::string, std::string>& env = {}) {
  pg.sql("CREATE DATABASE " + into);
  auto r = walvault(
      concat(flags, concat({"dump", "restore", id, "--db", into, "--pg", conninfo(pg)}, extra)),
      env);
  ASSERT_EQ(r.status, 0) << r.err;
}

// One line on stderr, "walvault: error: ...", and exit status 6.
void expect_corruption(const CommandResult& r, const std::string& names) {
  EXPECT_EQ(r.status, 6) << r.out << r.err;
  EXPECT_EQ(line_count(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("walvault: error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(names), std::string::npos) << r.err;
}

class DumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PgCluster::Options o;
    pg = std::make_unique<PgCluster>(o);
    pg->init();
    pg->start();
    for (const char* repo : {"repo1", "repo2"}) {
      auto r = walvault({"repo", "init", "--repo", dir.sub(repo)});
      ASSERT_EQ(r.status, 0) << r.err;
    }
  }

 public:  // the tests' shared state (tests are subclasses: public as in a struct)
  TempDir dir{"wv-dump"};
  std::unique_ptr<PgCluster> pg;
  std::vector<std::string> repo1 = repo_flags(dir.sub("repo1"), dir.sub("spool"));
  std::vector<std::string> repo2 = repo_flags(dir.sub("repo2"), dir.sub("spool"));
};

TEST_F(DumpTest, RestoresDedupsAndSurvivesGc) {
  pg->pgbench_init(2);
  // 1. Under load: a consistent snapshot.
  std::thread load([&] { pg->pgbench_run(4, 2); });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const nlohmann::json under_load = take_dump(repo1, *pg);
  load.join();
  ASSERT_FALSE(under_load.is_null());
  restore(repo1, *pg, under_load["id"], "r_load");
  const std::string sums = balance_sums(*pg, "r_load");
  std::istringstream parts(sums);
  std::string a, t, b, h;
  parts >> a >> t >> b >> h;
  EXPECT_TRUE(a == t && t == b && b == h) << "not one snapshot: " << sums;
  EXPECT_NE(h, "0") << "the load had not changed anything before the dump";
  for (const char* table : {"pgbench_accounts", "pgbench_branches", "pgbench_tellers"})
    EXPECT_EQ(pg->sql(std::string("SELECT count(*) FROM ") + table, "r_load"),
              pg->sql(std::string("SELECT count(*) FROM ") + table));

  // 2. Day 1 of a quiet database (written once, so its layout is the same
  // every run and so is the figure below) into both repositories: one
  // pg_dump, one label.
  pg->sql("CREATE DATABASE app");
  pg->sql(
      "CREATE TABLE accounts AS SELECT g AS id, g % 100 AS branch, 0 AS balance, "
      "'customer ' || md5(g::text) AS note FROM generate_series(1, 1000000) g",
      "app");
  pg->sql(
      "CREATE TABLE history AS SELECT g AS id, g % 1000 AS account, g % 7 AS delta FROM "
      "generate_series(1, 100000) g",
      "app");
  const nlohmann::json day1 = take_dump(concat(repo1, {"--repo", dir.sub("repo2")}), *pg, "app");
  const auto in_repo2 = listed(repo2);
  ASSERT_EQ(in_repo2.size(), 1u);
  EXPECT_EQ(in_repo2[0]["label"], day1["label"]);
  const std::uint64_t first_added = in_repo2[0]["added_bytes"];

  // 3. Day 2: a small change (ten accounts updated across the table, a
  // thousand history rows and a new table), then a dump that stores a small
  // fraction of the first.
  pg->sql("UPDATE accounts SET balance = balance + 7 WHERE id % 100000 = 1", "app");
  pg->sql("INSERT INTO history SELECT 100000 + g, g % 1000, 1 FROM generate_series(1, 1000) g",
          "app");
  pg->sql(
      "CREATE TABLE notes AS SELECT g AS id, 'note ' || g AS body FROM generate_series(1, "
      "100) g",
      "app");
  const nlohmann::json day2 = take_dump(repo2, *pg, "app");
  const std::uint64_t second_added = day2["added_bytes"];
  const double fraction = static_cast<double>(second_added) / static_cast<double>(first_added);
  std::printf("dump of %llu bytes: the first stored %llu bytes, the second %llu (%.1f%%)\n",
              static_cast<unsigned long long>(day2["bytes"].get<std::uint64_t>()),
              static_cast<unsigned long long>(first_added),
              static_cast<unsigned long long>(second_added), 100 * fraction);
  EXPECT_LT(fraction, 0.05);

  // 4. Row for row, and one table alone.
  restore(repo2, *pg, day2["id"], "r_day2");
  for (const char* table : {"accounts", "history", "notes"})
    EXPECT_EQ(digest(*pg, "r_day2", table), digest(*pg, "app", table)) << table;
  restore(repo2, *pg, "app@" + day2["end_time"].get<std::string>(), "r_one",
          {"--table", "history"});
  EXPECT_EQ(digest(*pg, "r_one", "history"), digest(*pg, "app", "history"));
  EXPECT_EQ(pg->sql("SELECT to_regclass('accounts') IS NULL", "r_one"), "t");

  // 5. gc (no grace period) keeps every dump's chunks: the first restores.
  auto gc = walvault(concat(repo1, {"gc", "--grace", "0s", "--json"}));
  ASSERT_EQ(gc.status, 0) << gc.err;
  EXPECT_EQ(nlohmann::json::parse(gc.out)["dumps"], 2);
  auto verify = walvault(concat(repo1, {"verify", "--read-data"}));
  EXPECT_EQ(verify.status, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("2 dumps"), std::string::npos) << verify.out;
  restore(repo1, *pg, under_load["id"], "r_after_gc");
  EXPECT_EQ(balance_sums(*pg, "r_after_gc"), sums);

  // 6. repo sync into an encrypted repository (its own keyed chunker cuts
  // the dumps again): the copy alone restores day 2 row for row.
  const std::map<std::string, std::string> env = {{"WALVAULT_PASSPHRASE", "dump sync test"}};
  const std::string sealed = dir.sub("sealed");
  ASSERT_EQ(walvault({"--repo", sealed, "repo", "init", "--encrypt"}, env).status, 0);
  auto sync = walvault({"repo", "sync", "--from", dir.sub("repo2"), "--to", sealed}, env);
  ASSERT_EQ(sync.status, 0) << sync.err;
  EXPECT_NE(sync.out.find(", 2 dumps ("), std::string::npos) << sync.out;
  auto again = walvault({"repo", "sync", "--from", dir.sub("repo2"), "--to", sealed}, env);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_TRUE(again.out.ends_with("already in sync\n")) << again.out;
  const auto sealed_flags = repo_flags(sealed, dir.sub("spool"));
  auto sealed_verify = walvault(concat(sealed_flags, {"verify", "--read-data"}), env);
  EXPECT_EQ(sealed_verify.status, 0) << sealed_verify.out << sealed_verify.err;
  restore(sealed_flags, *pg, day2["id"], "r_sealed", {}, env);
  for (const char* table : {"accounts", "history", "notes"})
    EXPECT_EQ(digest(*pg, "r_sealed", table), digest(*pg, "app", table)) << table;
}

TEST_F(DumpTest, ImportsPlainSqlAndRefusesDamage) {
  pg->pgbench_init(1);
  // An existing `pg_dump | gzip` file comes in and restores through psql.
  const std::string file = dir.sub("app.sql.gz");
  auto dumped = run_shell(pg_client_bin_dir() + "/pg_dump -h " + pg->socket_dir() + " -p " +
                              std::to_string(pg->port()) + " -U postgres postgres | gzip > " + file,
                          {}, AsUser::kTestUser);
  ASSERT_EQ(dumped.status, 0) << dumped.err;
  auto imported = walvault(
      concat(repo1, {"dump", "import", file, "--db", "postgres", "--time", "2026-01-02 02:00:00"}));
  ASSERT_EQ(imported.status, 0) << imported.err;
  const auto all = listed(repo1);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]["format"], "plain");
  EXPECT_EQ(all[0]["source"], "import");
  EXPECT_EQ(all[0]["label"], "20260102-020000");
  const std::string id = all[0]["id"];
  auto table = walvault(concat(repo1, {"dump", "restore", id, "--db", "postgres", "--pg",
                                       conninfo(*pg), "--table", "pgbench_branches"}));
  EXPECT_EQ(table.status, 2) << "--table on plain SQL: " << table.err;
  restore(repo1, *pg, id, "r_plain");
  for (const std::string& t : kTables)
    EXPECT_EQ(digest(*pg, "r_plain", t), digest(*pg, "postgres", t)) << t;

  // A record whose envelope is damaged: list, restore and verify name it.
  const std::string object = repo::dump_object_name("postgres", "20260102-020000");
  const std::string path = dir.sub("repo1") + "/" + object;
  std::string bytes = read_text(path);
  bytes[bytes.size() / 2] ^= 0x20;
  write_text(path, bytes);
  expect_corruption(walvault(concat(repo1, {"dump", "list"})), object);
  expect_corruption(
      walvault(concat(repo1, {"dump", "restore", id, "--db", "postgres", "--pg", conninfo(*pg)})),
      object);
  auto verify = walvault(concat(repo1, {"verify"}));
  EXPECT_EQ(verify.status, 6);
  EXPECT_NE(verify.out.find("error: " + object), std::string::npos) << verify.out;

  // --all: one custom dump per database that takes connections.
  pg->sql("CREATE DATABASE shop");
  pg->sql("CREATE TABLE orders AS SELECT g AS id FROM generate_series(1, 10) g", "shop");
  auto dump_all = walvault(concat(repo2, {"dump", "--pg", conninfo(*pg), "--all"}));
  ASSERT_EQ(dump_all.status, 0) << dump_all.err;
  std::set<std::string> databases;
  for (const auto& d : listed(repo2)) databases.insert(d["database"].get<std::string>());
  EXPECT_EQ(databases, (std::set<std::string>{"pg_globals", "postgres", "r_plain", "shop"}));
  restore(repo2, *pg, "latest", "r_shop", {"--from-db", "shop"});
  EXPECT_EQ(digest(*pg, "r_shop", "orders"), digest(*pg, "shop", "orders"));

  // A well-formed record crafted to name a chunk the repository lacks.
  auto repo = repo::Repository::open(store::open_store(dir.sub("repo2")), {});
  dump::DumpRecord crafted;
  crafted.database = "postgres";
  crafted.label = "20260103-020000";
  crafted.start_us = crafted.end_us = 1767405600000000;
  crafted.source = "pg_dump";
  crafted.chunker = dump::dump_cdc_params();
  files::ChunkRef ref;
  ref.id.fill(0xab);
  ref.length = 1000;
  crafted.chunks = {ref};
  crafted.bytes = 1000;
  repo->put_object(repo::dump_object_name(crafted.database, crafted.label),
                   as_bytes(dump::dump_to_json(crafted)));
  repo.reset();
  give_to_test_user(dir.sub("repo2"));
  pg->sql("CREATE DATABASE r_crafted");
  expect_corruption(walvault(concat(repo2, {"dump", "restore", dump::dump_id(crafted), "--db",
                                            "r_crafted", "--pg", conninfo(*pg)})),
                    "is not in the repository");
  EXPECT_EQ(pg->sql("SELECT count(*) FROM pg_class WHERE relname LIKE 'pgbench%'", "r_crafted"),
            "0");
  auto verify2 = walvault(concat(repo2, {"verify"}));
  EXPECT_EQ(verify2.status, 6);
  EXPECT_NE(verify2.out.find("is not listed by any index"), std::string::npos) << verify2.out;
}

// The cluster's globals (roles) and `dump restore --create`, on a second,
// fresh cluster: the role restored from `dump --all` logs in with its
// password, then the database it owns restores with --create under a name
// that needs quoting, row for row and with its owner. --create on an existing
// database is a conflict (5) that changes nothing, a missing database
// without it is not-found (4); restoring the globals again reports the roles
// that exist and succeeds; a globals file with a broken statement fails (11)
// naming it, after the statements around it ran (psql -f's way).
TEST(DumpGlobalsTest, RestoresRolesThenCreatesTheDatabase) {
  TempDir dir("wv-dump-globals");
  PgCluster source(PgCluster::Options{}), fresh(PgCluster::Options{});
  for (PgCluster* pg : {&source, &fresh}) {
    pg->init();
    pg->start();
  }
  const auto flags = repo_flags(dir.sub("repo"), dir.sub("spool"));
  ASSERT_EQ(walvault({"repo", "init", "--repo", dir.sub("repo")}).status, 0);
  source.sql("CREATE ROLE app_owner LOGIN PASSWORD 'app pw 1'");
  source.sql("CREATE DATABASE shop OWNER app_owner");
  source.sql(
      "CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 1000) "
      "g; ALTER TABLE orders OWNER TO app_owner",
      "shop");

  // `--all`: the globals first, then each database.
  auto all = walvault(concat(flags, {"dump", "--pg", conninfo(source), "--all"}));
  ASSERT_EQ(all.status, 0) << all.err;
  EXPECT_TRUE(all.out.starts_with("dump ")) << all.out;
  EXPECT_NE(all.out.find(" of pg_globals ("), std::string::npos) << all.out;
  std::map<std::string, nlohmann::json> by_db;
  for (const auto& d : listed(flags)) by_db[d["database"].get<std::string>()] = d;
  ASSERT_EQ(by_db.size(), 3u) << "pg_globals, postgres, shop";
  ASSERT_EQ(by_db.count("pg_globals"), 1u);
  EXPECT_EQ(by_db["pg_globals"]["format"], "plain");
  EXPECT_EQ(by_db["pg_globals"]["source"], "pg_dumpall");
  ASSERT_EQ(by_db.count("shop"), 1u);
  // `--globals` alone, and the reserved name refused as a database.
  ASSERT_EQ(walvault(concat(flags, {"dump", "--pg", conninfo(source), "--globals"})).status, 0);
  EXPECT_EQ(listed(flags).size(), 4u);
  auto reserved = walvault(concat(flags, {"dump", "--pg", conninfo(source), "--db", "pg_globals"}));
  EXPECT_EQ(reserved.status, 2) << reserved.err;
  EXPECT_EQ(line_count(reserved.err), 1) << reserved.err;

  // The globals into the fresh cluster: app_owner logs in with its password.
  auto globals = walvault(
      concat(flags, {"dump", "restore", by_db["pg_globals"]["id"], "--pg", conninfo(fresh)}));
  ASSERT_EQ(globals.status, 0) << globals.out << globals.err;
  EXPECT_NE(globals.out.find("already existed and stayed"), std::string::npos) << globals.out;
  EXPECT_NE(globals.out.find("role \"postgres\""), std::string::npos) << globals.out;
  const std::string hba = fresh.data_dir() + "/pg_hba.conf";
  write_text(hba, "local all app_owner scram-sha-256\n" + read_text(hba));
  fresh.sql("SELECT pg_reload_conf()");
  auto login = [&](const std::string& password) {
    return run({pg_client_bin_dir() + "/psql", "-XAtq", "-h", fresh.socket_dir(), "-p",
                std::to_string(fresh.port()), "-U", "app_owner", "-d", "postgres", "-c",
                "SELECT current_user"},
               {{"PGPASSWORD", password}});
  };
  const CommandResult good = login("app pw 1");
  EXPECT_EQ(good.status, 0) << good.err;
  EXPECT_EQ(good.out, "app_owner\n");
  EXPECT_NE(login("wrong").status, 0) << "the password was not checked";

  // The database, into a new one whose name needs quoting.
  const std::string target = "shop \"copy\" o'k";
  const std::vector<std::string> restore_shop = {"dump", "restore", by_db["shop"]["id"], "--db",
                                                 target, "--pg",    conninfo(fresh)};
  auto created = walvault(concat(flags, concat(restore_shop, {"--create"})));
  ASSERT_EQ(created.status, 0) << created.err;
  EXPECT_NE(created.out.find("into new database " + target), std::string::npos) << created.out;
  EXPECT_EQ(digest(fresh, target, "orders"), digest(source, "shop", "orders"));
  EXPECT_EQ(fresh.sql("SELECT tableowner FROM pg_tables WHERE tablename = 'orders'", target),
            "app_owner");

  auto conflict = walvault(concat(flags, concat(restore_shop, {"--create"})));
  EXPECT_EQ(conflict.status, 5) << conflict.err;
  EXPECT_EQ(line_count(conflict.err), 1) << conflict.err;
  EXPECT_NE(conflict.err.find("already exists"), std::string::npos) << conflict.err;
  EXPECT_EQ(fresh.sql("SELECT count(*) FROM orders", target), "1000");
  auto missing = walvault(concat(
      flags, {"dump", "restore", by_db["shop"]["id"], "--db", "nowhere", "--pg", conninfo(fresh)}));
  EXPECT_EQ(missing.status, 4) << missing.err;
  EXPECT_EQ(line_count(missing.err), 1) << missing.err;
  EXPECT_NE(missing.err.find("--create"), std::string::npos) << missing.err;

  // Again: every role exists now; still a success that says so.
  auto again = walvault(concat(
      flags, {"dump", "restore", "latest", "--from-db", "pg_globals", "--pg", conninfo(fresh)}));
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.out.find("role \"app_owner\""), std::string::npos) << again.out;

  // An imported globals file with a broken statement: the one-line error
  // names it; the statements around it ran.
  const std::string file = dir.sub("globals.sql");
  write_text(file,
             "CREATE ROLE imported_a;\nCREATE ROLE imported_b WITH NOSUCHOPTION;\n"
             "CREATE ROLE imported_c;\n");
  ASSERT_EQ(walvault(concat(flags, {"dump", "import", file, "--db", "pg_globals", "--time",
                                    "2026-01-02 02:00:00"}))
                .status,
            0);
  auto broken = walvault(concat(
      flags, {"dump", "restore", "pg_globals@2026-01-02 03:00:00", "--pg", conninfo(fresh)}));
  EXPECT_EQ(broken.status, 11) << broken.err;
  EXPECT_EQ(line_count(broken.err), 1) << broken.err;
  EXPECT_NE(broken.err.find("<stdin>:2:"), std::string::npos) << broken.err;
  EXPECT_EQ(fresh.sql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'imported_%'"), "2");
}

// [dump-retention] sections: expire removes exactly the dumps the policies
// drop (per database), gc frees their chunks, and what is kept verifies whole.
// No server: the dumps are imported plain SQL files of distinct content.
TEST(DumpRetentionTest, ExpireByDatabaseThenGc) {
  TempDir dir("wv-dump-ret");
  const auto flags = repo_flags(dir.sub("repo"), dir.sub("spool"));
  ASSERT_EQ(walvault({"repo", "init", "--repo", dir.sub("repo")}).status, 0);
  auto import = [&](const std::string& db, int day) {
    std::string sql = "-- " + db + " day " + std::to_string(day) + "\n";
    for (int i = 0; i < 20000; ++i)
      sql += "INSERT INTO t VALUES (" + std::to_string(i * 7919 + day * 104729) + ");\n";
    const std::string file = dir.sub(db + std::to_string(day) + ".sql");
    write_text(file, sql);
    auto r = walvault(concat(flags, {"dump", "import", file, "--db", db, "--time",
                                     "2026-01-0" + std::to_string(day) + " 02:00:00"}));
    ASSERT_EQ(r.status, 0) << r.err;
  };
  for (int day = 1; day <= 4; ++day) import("app", day);
  for (int day = 1; day <= 2; ++day) import("shop", day);
  const std::string config = dir.sub("walvault.conf");
  write_text(config, "[dump-retention]\nkeep-last = 2\n\n[dump-retention.shop]\nkeep-last = 1\n");
  const std::map<std::string, std::string> env = {{"WALVAULT_CONFIG", config}};

  auto dry = walvault(concat(flags, {"expire", "--dry-run", "--json"}), env);
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_EQ(nlohmann::json::parse(dry.out)["expired_dumps"].size(), 3u) << dry.out;
  EXPECT_EQ(listed(flags).size(), 6u) << "a dry run removed a dump";

  auto expire = walvault(concat(flags, {"expire", "--json"}), env);
  ASSERT_EQ(expire.status, 0) << expire.err;
  const auto expired =
      nlohmann::json::parse(expire.out)["expired_dumps"].get<std::set<std::string>>();
  EXPECT_EQ(expired, (std::set<std::string>{"app/20260101-020000", "app/20260102-020000",
                                            "shop/20260101-020000"}))
      << expire.out;
  std::set<std::string> kept;
  for (const auto& d : listed(flags))
    kept.insert(d["database"].get<std::string>() + "/" + d["label"].get<std::string>());
  EXPECT_EQ(kept, (std::set<std::string>{"app/20260103-020000", "app/20260104-020000",
                                         "shop/20260102-020000"}));

  auto gc = walvault(concat(flags, {"gc", "--grace", "0s", "--json"}));
  ASSERT_EQ(gc.status, 0) << gc.err;
  const auto gc_report = nlohmann::json::parse(gc.out);
  EXPECT_EQ(gc_report["dumps"], 3);
  EXPECT_GT(gc_report["chunks_removed"].get<std::uint64_t>(), 0u) << gc.out;
  auto verify = walvault(concat(flags, {"verify", "--read-data"}));
  EXPECT_EQ(verify.status, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("3 dumps"), std::string::npos) << verify.out;

  // info, check and metrics: the newest dump of each database.
  auto info = walvault(concat(flags, {"info", "--json"}));
  ASSERT_EQ(info.status, 0) << info.err;
  const auto dbs = nlohmann::json::parse(info.out)["dumps"];
  ASSERT_EQ(dbs.size(), 2u) << info.out;
  EXPECT_EQ(dbs[0]["database"], "app");
  EXPECT_EQ(dbs[0]["dumps"], 2);
  EXPECT_EQ(dbs[0]["newest"]["label"], "20260104-020000");
  const std::vector<std::string> no_db = {"check", "--max-backup-age", "off", "--max-wal-age",
                                          "off"};
  auto stale = walvault(concat(flags, concat(no_db, {"--max-dump-age", "30d"})));
  EXPECT_EQ(stale.status, 2) << stale.out;
  EXPECT_NE(stale.out.find("last dump of app"), std::string::npos) << stale.out;
  auto fresh =
      walvault(concat(flags, concat(no_db, {"--max-dump-age", "30d", "--max-dump-age", "app=off",
                                            "--max-dump-age", "shop=100000d"})));
  EXPECT_EQ(fresh.status, 0) << fresh.out;
  auto ghost = walvault(
      concat(flags, concat(no_db, {"--max-dump-age", "100000d", "--max-dump-age", "ghost=1d"})));
  EXPECT_EQ(ghost.status, 2) << ghost.out;
  EXPECT_NE(ghost.out.find("no dump of database ghost"), std::string::npos) << ghost.out;
  auto metrics = walvault(concat(flags, {"metrics"}));
  ASSERT_EQ(metrics.status, 0) << metrics.err;
  EXPECT_NE(metrics.out.find("database=\"app\"} 2\n"), std::string::npos) << metrics.out;
  EXPECT_NE(metrics.out.find("walvault_last_dump_timestamp_seconds"), std::string::npos);
}

}  // namespace
}  // namespace walvault::testing
