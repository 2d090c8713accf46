// Segment metadata JSON: the xid index round-trips, metadata from before it
// reads as "not indexed", and a damaged index is corruption naming the object.
#include "repo/wal_objects.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace walvault::repo {
namespace {

SegmentMeta sample() {
  SegmentMeta m;
  m.name = "000000010000000000000003";
  m.timeline = 1;
  m.segno = 3;
  m.size = 16u << 20;
  m.xxh3 = 0x0123456789abcdefULL;
  m.pg_major = 15;
  m.system_id = 7345678901234567890ULL;
  m.archived_us = 1795000000000000;
  m.summary.first_record_lsn = 0x3000028;
  m.summary.end_lsn = 0x3FFFF00;
  m.summary.records = 100;
  m.summary.commits = 5;
  m.summary.aborts = 1;
  return m;
}

TEST(SegmentMetaJson, XidIndexRoundTrips) {
  SegmentMeta m = sample();
  m.summary.xids_indexed = true;
  m.summary.commit_xids = pg::XidSet::from_xids({700, 701, 702, 704, 0xFFFFFFFFu});
  m.summary.abort_xids = pg::XidSet::from_xids({703});
  m.summary.crossing_xact_xid = 705;
  const std::string text = meta_to_json(m);
  auto j = nlohmann::json::parse(text);
  // version 1, 3 runs: (gap 700, +2), (gap 704 - (702 + 2), +0), (gap 2^32-1 - (704 + 2), +0)
  EXPECT_EQ(j.at("commit_xids"), "AQO8BQIAAL36//8PAA==");
  EXPECT_EQ(j.at("abort_xids"), "AQG/BQA=");
  EXPECT_EQ(j.at("crossing_xact_xid"), 705);
  const SegmentMeta back = meta_from_json(text, "obj");
  EXPECT_TRUE(back.summary.xids_indexed);
  EXPECT_EQ(back.summary.commit_xids, m.summary.commit_xids);
  EXPECT_EQ(back.summary.abort_xids, m.summary.abort_xids);
  EXPECT_EQ(back.summary.crossing_xact_xid, 705u);

  m.summary.commit_xids = {};
  m.summary.abort_xids = {};
  m.summary.crossing_xact_xid.reset();
  j = nlohmann::json::parse(meta_to_json(m));
  EXPECT_EQ(j.at("commit_xids"), "AQA=");
  EXPECT_TRUE(j.at("crossing_xact_xid").is_null());
  EXPECT_TRUE(meta_from_json(meta_to_json(m), "obj").summary.xids_indexed);
}

TEST(SegmentMetaJson, MetadataWithoutTheIndexReadsAsNotIndexed) {
  SegmentMeta m = sample();
  m.summary.xids_indexed = false;
  const std::string text = meta_to_json(m);
  auto j = nlohmann::json::parse(text);
  EXPECT_FALSE(j.contains("commit_xids"));
  EXPECT_FALSE(j.contains("abort_xids"));
  EXPECT_FALSE(j.contains("crossing_xact_xid"));
  const SegmentMeta back = meta_from_json(text, "obj");
  EXPECT_FALSE(back.summary.xids_indexed);
  EXPECT_TRUE(back.summary.commit_xids.empty());
}

TEST(SegmentMetaJson, DamagedIndexIsCorruptionNamingTheObject) {
  SegmentMeta m = sample();
  m.summary.xids_indexed = true;
  m.summary.commit_xids = pg::XidSet::from_xids({700});
  const auto good = nlohmann::json::parse(meta_to_json(m));
  auto with = [&](const char* key, nlohmann::json value) {
    auto j = good;
    if (value.is_discarded()) {
      j.erase(key);
    } else {
      j[key] = value;
    }
    return j.dump();
  };
  const std::vector<std::string> bad = {
      with("commit_xids", "AQG8BQ"),    // no padding
      with("commit_xids", "AQG8BR=="),  // bits under the padding
      with("commit_xids", "AQG8B!A="),  // not base64
      with("commit_xids", "AgA="),      // unknown set version
      with("commit_xids", "AQE="),      // truncated set
      with("commit_xids", 12),          // not a string
      with("abort_xids", nlohmann::json::value_t::discarded),
      with("crossing_xact_xid", nlohmann::json::value_t::discarded),
      with("crossing_xact_xid", -1),
      with("crossing_xact_xid", 4294967296ULL),
      with("crossing_xact_xid", "705"),
  };
  for (const auto& text : bad) {
    try {
      meta_from_json(text, "wal/meta/0000000100000000/000000010000000000000003");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption) << text;
      EXPECT_NE(std::string(e.what()).find("wal/meta/0000000100000000/000000010000000000000003"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace walvault::repo
