// The history log in memory: entries appended by several commands read back
// oldest first, filtered by start time, the newest of a command found, a
// damaged entry named, and info/metrics showing the last verify and drill.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "ops/info.h"
#include "ops/monitor.h"
#include "repo/history.h"
#include "store/mem_store.h"
#include "support/error_code.h"
#include "support/failing_store.h"

namespace walvault::ops {
namespace {

using repo::append_history;
using repo::history_text;
using repo::HistoryEntry;
using repo::read_history;
using repo::read_history_entry;
using repo::start_history;

constexpr std::int64_t kT0 = 1795000000000000;  // 2026-11-18, Unix µs
constexpr std::int64_t kMinute = 60'000'000;

struct MemRepo {
  MemRepo() : store(std::make_shared<store::MemStore>()) {
    repo::Repository::init(*store, repo::InitOptions{});
    repo = repo::Repository::open(store, repo::Secrets{});
  }
  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<repo::Repository> repo;
};

HistoryEntry entry(const std::string& command, std::int64_t start_us, const std::string& outcome) {
  HistoryEntry e = start_history(command);
  e.start_us = start_us;
  e.end_us = start_us + 5'000'000;
  e.outcome = outcome;
  e.detail = command + " at minute " + std::to_string((start_us - kT0) / kMinute);
  return e;
}

TEST(HistoryTest, AppendReadSinceAndLast) {
  MemRepo m;
  EXPECT_TRUE(read_history(*m.repo).empty());
  EXPECT_FALSE(last_history(*m.repo, "drill"));
  // Appended out of order: read back by start time.
  HistoryEntry drill = entry("drill", kT0 + 3 * kMinute, "failed");
  drill.extra = {{"total_s", 12.5}, {"label", "20261118-000000"}};
  drill.bytes = 1234;
  for (const HistoryEntry& e :
       {entry("backup", kT0, "ok"), entry("verify", kT0 + 2 * kMinute, "ok"), drill,
        entry("verify", kT0 + kMinute, "failed"), entry("drill", kT0 + 4 * kMinute, "ok")})
    EXPECT_EQ(append_history(*m.repo, e), "");

  const auto all = read_history(*m.repo);
  ASSERT_EQ(all.size(), 5u);
  const std::vector<std::string> commands = {"backup", "verify", "verify", "drill", "drill"};
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].command, commands[i]) << i;
    EXPECT_EQ(all[i].start_us, kT0 + static_cast<std::int64_t>(i) * kMinute) << i;
    EXPECT_TRUE(all[i].object.starts_with("history/")) << all[i].object;
  }
  EXPECT_EQ(all[3].extra.at("total_s"), 12.5);
  EXPECT_EQ(all[3].bytes, 1234u);
  EXPECT_EQ(all[3].outcome, "failed");
  EXPECT_FALSE(all[3].host.empty());
  EXPECT_FALSE(all[3].user.empty());

  const auto recent = read_history(*m.repo, kT0 + 2 * kMinute);
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent.front().command, "verify");
  EXPECT_EQ(recent.front().start_us, kT0 + 2 * kMinute);
  EXPECT_TRUE(read_history(*m.repo, kT0 + 5 * kMinute).empty());

  const auto last_verify = last_history(*m.repo, "verify");
  ASSERT_TRUE(last_verify);
  EXPECT_EQ(last_verify->start_us, kT0 + 2 * kMinute);
  EXPECT_EQ(last_verify->outcome, "ok");
  const auto last_drill = last_history(*m.repo, "drill");
  ASSERT_TRUE(last_drill);
  EXPECT_EQ(last_drill->start_us, kT0 + 4 * kMinute);
  EXPECT_FALSE(last_history(*m.repo, "gc"));

  const std::string text = history_text(all);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 6) << text;  // header + 5
  EXPECT_NE(text.find("drill   failed       5.0s     1.2 KiB"), std::string::npos) << text;
  EXPECT_NE(text.find(": drill at minute 3\n"), std::string::npos) << text;
  EXPECT_EQ(history_text({}), "no history\n");
}

TEST(HistoryTest, DamagedEntryIsNamedAndInfoShowsLastVerifyAndDrill) {
  MemRepo m;
  HistoryEntry verify = entry("verify", kT0, "failed");
  EXPECT_EQ(append_history(*m.repo, verify), "");
  HistoryEntry drill = entry("drill", kT0 + kMinute, "ok");
  drill.extra = {{"total_s", 42.25}};
  EXPECT_EQ(append_history(*m.repo, drill), "");

  const InfoReport info = repository_info(*m.repo);
  ASSERT_TRUE(info.last_verify);
  EXPECT_EQ(info.last_verify->outcome, "failed");
  ASSERT_TRUE(info.last_drill);
  const auto j = nlohmann::json::parse(info_json(info));
  EXPECT_EQ(j.at("last_verify").at("outcome"), "failed");
  EXPECT_EQ(j.at("last_drill").at("extra").at("total_s"), 42.25);
  EXPECT_EQ(j.at("last_drill").at("start_us"), kT0 + kMinute);
  EXPECT_NE(info_text(info).find("last drill: ok at "), std::string::npos) << info_text(info);

  const std::string metrics = metrics_text(*m.repo);
  const std::string labels = "{repository=\"" + m.repo->config().repo_id + "\"} ";
  EXPECT_NE(metrics.find("walvault_last_verify_success" + labels + "0\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("walvault_last_drill_success" + labels + "1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("walvault_last_drill_recovery_seconds" + labels + "42.25\n"),
            std::string::npos)
      << metrics;

  // A damaged entry: history names it; info leaves it out instead of failing.
  const std::string name = read_history(*m.repo).back().object;
  m.store->remove(name);
  m.repo->put_object(name, as_bytes(std::string("not json")));
  try {
    read_history(*m.repo);
    ADD_FAILURE() << "a damaged entry was read";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
  EXPECT_FALSE(repository_info(*m.repo).last_drill);
}

TEST(HistoryTest, InfoFailsWhenHistoryCannotBeRead) {
  // History the store cannot read is not "none recorded": info (and metrics,
  // built on it) fail with the store's error, as for any other read.
  MemRepo m;
  EXPECT_EQ(append_history(*m.repo, entry("verify", kT0, "ok")), "");
  auto failing = std::make_shared<testing::FailingStore>(m.store, repo::kHistoryPrefix,
                                                         testing::FailingOps{.get = true});
  const auto repo = repo::Repository::open(failing, repo::Secrets{});
  EXPECT_EQ(testing::error_code_of([&] { repository_info(*repo); }), ErrorCode::kIo);
  EXPECT_EQ(testing::error_code_of([&] { metrics_text(*repo); }), ErrorCode::kIo);
}

}  // namespace
}  // namespace walvault::ops
