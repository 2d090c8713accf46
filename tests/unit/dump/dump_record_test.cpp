// Dump records: round trip, clashing labels, the ways a dump is named on the
// command line, and records a hostile writer could leave.
#include "dump/dump_record.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "repo/layout.h"
#include "store/mem_store.h"
#include "support/error_code.h"

namespace walvault::dump {
namespace {

using testing::error_code_of;

constexpr std::int64_t kT0 = 1795000000000000;  // 2026-11-18 11:06:40 UTC, in µs
constexpr std::int64_t kHour = 3'600'000'000;

struct Repo {
  Repo() : store(std::make_shared<store::MemStore>()) {
    repo::Repository::init(*store, {});
    repo = repo::Repository::open(store, {});
  }
  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<repo::Repository> repo;
};

DumpRecord record(const std::string& database, std::int64_t start_us) {
  DumpRecord r;
  r.database = database;
  r.start_us = start_us;
  r.end_us = start_us + 1000;
  r.host = "db1";
  r.source = "pg_dump";
  r.server_version = 150004;
  r.chunker = dump_cdc_params();
  files::ChunkRef a, b;
  a.id.fill(1);
  a.length = 40000;
  b.id.fill(2);
  b.length = 100;
  r.chunks = {a, b};
  r.bytes = 40100;
  r.added_bytes = 20000;
  return r;
}

TEST(DumpRecordTest, RoundTripsAndGetsAFreeLabel) {
  Repo r;
  const DumpRecord a = write_dump_record(*r.repo, record("app", kT0));
  DumpRecord plain = record("app", kT0);
  plain.format = DumpFormat::kPlain;
  plain.source = "import";
  plain.file = "/backups/app.sql.gz";
  const DumpRecord b = write_dump_record(*r.repo, plain);
  EXPECT_EQ(a.label, "20261118-110640");
  EXPECT_EQ(b.label, "20261118-110640-2");
  const auto all = list_dumps(*r.repo);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(dump_to_json(all[0]), dump_to_json(a));
  EXPECT_EQ(dump_to_json(all[1]), dump_to_json(b));
  EXPECT_EQ(all[1].format, DumpFormat::kPlain);
  EXPECT_EQ(all[0].chunks, a.chunks);
  EXPECT_NE(dump_id(a), dump_id(b));
  EXPECT_EQ(dump_id(a).size(), 12u);
  EXPECT_EQ(error_code_of([&] { write_dump_record(*r.repo, record("my db", kT0)); }),
            ErrorCode::kUsage);
}

TEST(DumpRecordTest, FindsByIdLatestAndDatabaseAtTime) {
  Repo r;
  const DumpRecord a1 = write_dump_record(*r.repo, record("app", kT0));
  const DumpRecord a2 = write_dump_record(*r.repo, record("app", kT0 + 24 * kHour));
  const DumpRecord s1 = write_dump_record(*r.repo, record("shop", kT0 + kHour));
  EXPECT_EQ(find_dump(*r.repo, dump_id(a1)).label, a1.label);
  EXPECT_EQ(find_dump(*r.repo, dump_id(s1).substr(0, 6)).database, "shop");
  EXPECT_EQ(find_dump(*r.repo, "latest").label, a2.label);
  EXPECT_EQ(find_dump(*r.repo, "latest", std::string("shop")).label, s1.label);
  EXPECT_EQ(find_dump(*r.repo, "app@2026-11-18 23:00:00").label, a1.label);
  EXPECT_EQ(error_code_of([&] { find_dump(*r.repo, "app@2026-11-17 00:00:00"); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of([&] { find_dump(*r.repo, "latest", std::string("none")); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of([&] { find_dump(*r.repo, "zz"); }), ErrorCode::kUsage);
  EXPECT_EQ(error_code_of([&] { find_dump(*r.repo, "app@yesterday"); }), ErrorCode::kUsage);
}

// Each crafted record is refused with Error(kCorruption) naming the object.
TEST(DumpRecordTest, RefusesCraftedRecords) {
  DumpRecord sample = record("app", kT0);
  sample.label = "20261118-110640";
  const nlohmann::json good = nlohmann::json::parse(dump_to_json(sample));
  ASSERT_NO_THROW(dump_from_json(good.dump(), "dumps/app/x"));
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> crafted = {
      {"not JSON", [](nlohmann::json& j) { j = "{"; }},
      {"no chunks", [](nlohmann::json& j) { j.erase("chunks"); }},
      {"a database with a slash", [](nlohmann::json& j) { j["database"] = "../x"; }},
      {"an empty label", [](nlohmann::json& j) { j["label"] = ""; }},
      {"an unknown format", [](nlohmann::json& j) { j["format"] = "directory"; }},
      {"an unknown source", [](nlohmann::json& j) { j["source"] = "rsync"; }},
      {"a short chunk id", [](nlohmann::json& j) { j["chunks"][0][0] = "abcd"; }},
      {"a chunk of length 0", [](nlohmann::json& j) { j["chunks"][1][1] = 0; }},
      {"a chunk longer than the chunker's maximum",
       [](nlohmann::json& j) { j["chunks"][0][1] = 600u << 10; }},
      {"lengths that do not add up", [](nlohmann::json& j) { j["bytes"] = 5; }},
      {"a negative length", [](nlohmann::json& j) { j["chunks"][0][1] = -1; }},
      {"a chunk that is not a pair",
       [](nlohmann::json& j) {
         j["chunks"][0] = {1, 2, 3};
       }},
      {"chunker parameters out of range", [](nlohmann::json& j) { j["chunker"]["average"] = 3; }},
      {"a string for a number", [](nlohmann::json& j) { j["bytes"] = "40100"; }},
      {"pg_dumpall's output under a database's name",
       [](nlohmann::json& j) {
         j["source"] = "pg_dumpall";
         j["format"] = "plain";
       }},
      {"a custom-format globals dump",
       [](nlohmann::json& j) {
         j["database"] = kGlobalsDatabase;
         j["source"] = "import";
       }},
      {"pg_dump's output as the globals",
       [](nlohmann::json& j) {
         j["database"] = kGlobalsDatabase;
         j["format"] = "plain";
       }},
  };
  for (const auto& [what, craft] : crafted) {
    nlohmann::json j = good;
    craft(j);
    const std::string text = j.is_string() ? j.get<std::string>() : j.dump();
    try {
      dump_from_json(text, "dumps/app/x");
      ADD_FAILURE() << what << ": accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption) << what;
      EXPECT_NE(std::string(e.what()).find("dumps/app/x"), std::string::npos) << what;
    }
  }
}

// The globals: plain SQL under kGlobalsDatabase, from pg_dumpall or an import.
TEST(DumpRecordTest, KeepsGlobalsDumps) {
  Repo r;
  DumpRecord g = record(kGlobalsDatabase, kT0);
  g.format = DumpFormat::kPlain;
  g.source = "pg_dumpall";
  write_dump_record(*r.repo, g);
  write_dump_record(*r.repo, record("app", kT0 + kHour));
  const DumpRecord latest = find_dump(*r.repo, "latest", std::string(kGlobalsDatabase));
  EXPECT_TRUE(is_globals(latest));
  EXPECT_EQ(latest.source, "pg_dumpall");
  EXPECT_FALSE(is_globals(find_dump(*r.repo, "latest")));
}

// A record stored under another dump's name is refused when listed.
TEST(DumpRecordTest, RefusesARecordUnderAnotherName) {
  Repo r;
  const DumpRecord a = write_dump_record(*r.repo, record("app", kT0));
  ASSERT_EQ(r.repo->put_object(repo::dump_object_name("shop", a.label), as_bytes(dump_to_json(a))),
            store::PutResult::kCreated);
  EXPECT_EQ(error_code_of([&] { list_dumps(*r.repo); }), ErrorCode::kCorruption);
}

}  // namespace
}  // namespace walvault::dump
