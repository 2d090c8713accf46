// Cross-check of the segment decoder against PostgreSQL's own pg_waldump on
// real WAL: a real cluster writes commits, aborts, prepared transactions,
// restore points, WAL switches and records crossing pages and segments; for
// every completed segment the records pg_waldump prints (it reads one file
// and, like us, stops before a record that continues into the next one) must
// agree with summarize_segment exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "pg/wal_segment.h"
#include "support/pg_cluster.h"

namespace walvault::pg {
namespace {

namespace fs = std::filesystem;
using walvault::testing::PgCluster;

struct DumpRecord {
  std::string rmgr;
  std::uint32_t tot_len = 0;
  std::uint32_t xid = 0;
  Lsn lsn = 0;
  std::string desc;
};

// Parses "2024-05-01 12:00:00.123456 UTC" (fraction optional, trailing zeros
// trimmed by PostgreSQL) into Unix microseconds.
std::optional<std::int64_t> parse_pg_time(std::string_view text) {
  std::tm tm{};
  int consumed = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%d-%d-%d %d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::int64_t us = static_cast<std::int64_t>(timegm(&tm)) * 1000000;
  std::size_t pos = static_cast<std::size_t>(consumed);
  if (pos < s.size() && s[pos] == '.') {
    std::string digits;
    while (++pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) digits += s[pos];
    digits.resize(6, '0');
    us += std::stoll(digits);
  }
  if (s.compare(pos, 4, " UTC") != 0) return std::nullopt;
  return us;
}

// pg_waldump output for one segment file. A record running into the next
// segment is not printed; depending on the version that ends with status 0
// or with "error in WAL record at ..." after the records before it.
std::vector<DumpRecord> waldump(const PgCluster& cluster, const std::string& path) {
  auto r = walvault::testing::run({cluster.bin_dir() + "/pg_waldump", path}, {{"TZ", "UTC"}});
  if (r.status != 0) {
    EXPECT_NE(r.err.find("error in WAL record at"), std::string::npos) << path << ": " << r.err;
  }
  std::vector<DumpRecord> out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    char rmgr[64] = {};
    unsigned rec_len = 0, tot_len = 0, xid = 0, hi = 0, lo = 0, prev_hi = 0, prev_lo = 0;
    int desc_at = -1;
    std::sscanf(line.c_str(),
                "rmgr: %63s len (rec/tot): %u/ %u, tx: %u, lsn: %X/%X, prev %X/%X, desc: %n", rmgr,
                &rec_len, &tot_len, &xid, &hi, &lo, &prev_hi, &prev_lo, &desc_at);
    EXPECT_GE(desc_at, 0) << "unparsed pg_waldump line: " << line;
    if (desc_at < 0) continue;
    out.push_back({rmgr, tot_len, xid, static_cast<Lsn>(hi) << 32 | lo, line.substr(desc_at)});
  }
  return out;
}

// The block references pg_waldump lists (", blkref #N: rel S/D/R [fork F] blk B"),
// as (spc, db, rel, fork) -> blocks.
using BlockSet =
    std::set<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t, int, std::uint32_t>>;
void add_blkrefs(std::string_view desc, BlockSet& out) {
  static const std::map<std::string, int> forks = {{"main", 0}, {"fsm", 1}, {"vm", 2}, {"init", 3}};
  for (std::size_t at = desc.find("blkref #"); at != std::string_view::npos;
       at = desc.find("blkref #", at + 1)) {
    unsigned spc = 0, db = 0, rel = 0, blk = 0;
    char fork[16] = {};
    const std::string rest(desc.substr(at, 120));
    if (std::sscanf(rest.c_str(), "blkref #%*u: rel %u/%u/%u fork %15s blk %u", &spc, &db, &rel,
                    fork, &blk) == 5) {
      out.emplace(spc, db, rel, forks.at(fork), blk);
    } else if (std::sscanf(rest.c_str(), "blkref #%*u: rel %u/%u/%u blk %u", &spc, &db, &rel,
                           &blk) == 4) {
      out.emplace(spc, db, rel, 0, blk);
    } else {
      ADD_FAILURE() << "unparsed block reference: " << rest;
    }
  }
}

// End of a record that starts at `lsn` inside a segment: its bytes skip the
// short header of every page they continue on.
Lsn record_end(Lsn lsn, std::uint32_t tot_len, std::uint32_t page_size) {
  constexpr std::uint32_t kShortPageHeader = 24;
  Lsn pos = lsn;
  std::uint64_t left = tot_len;
  while (left > page_size - pos % page_size) {
    left -= page_size - pos % page_size;
    pos += page_size - pos % page_size + kShortPageHeader;
  }
  return pos + left;
}

// The xids after "subxacts: " in a commit/abort description.
std::vector<std::uint32_t> subxacts_in(std::string_view desc) {
  std::vector<std::uint32_t> out;
  const auto at = desc.find("subxacts: ");
  if (at == std::string_view::npos) return out;
  std::istringstream in(std::string(desc.substr(at + 10, desc.find(';', at) - at - 10)));
  for (std::uint32_t x = 0; in >> x;) out.push_back(x);
  return out;
}

// What pg_waldump's records say, in SegmentSummary terms. Subtransaction xids
// of the commit/abort records go to `subxacts`.
SegmentSummary summary_from_dump(const std::vector<DumpRecord>& records, std::uint32_t page_size,
                                 std::vector<std::uint32_t>& subxacts) {
  SegmentSummary s;
  std::vector<std::uint32_t> commit_xids, abort_xids;
  for (const DumpRecord& r : records) {
    if (s.records++ == 0) s.first_record_lsn = r.lsn;
    s.end_lsn = record_end(r.lsn, r.tot_len, page_size);
    if (r.rmgr == "XLOG" && r.desc.rfind("RESTORE_POINT ", 0) == 0) {
      s.restore_points.push_back({r.desc.substr(14), 0, r.lsn});
    } else if (r.rmgr == "XLOG" && r.desc.rfind("SWITCH", 0) == 0) {
      s.has_switch = true;
    } else if (r.rmgr == "Transaction") {
      std::string_view desc = r.desc;
      bool commit = false;
      std::uint32_t target_xid = r.xid;  // what recovery_target_xid is compared with
      if (desc.starts_with("COMMIT ")) {
        commit = true;
        desc.remove_prefix(7);
      } else if (desc.starts_with("ABORT ")) {
        desc.remove_prefix(6);
      } else if (desc.starts_with("COMMIT_PREPARED ") || desc.starts_with("ABORT_PREPARED ")) {
        commit = desc.starts_with("COMMIT");
        desc.remove_prefix(desc.find(' ') + 1);
        target_xid =
            static_cast<std::uint32_t>(std::stoul(std::string(desc.substr(0, desc.find(':')))));
        desc.remove_prefix(desc.find(": ") + 2);  // "<prepared xid>: "
      } else {
        continue;
      }
      (commit ? commit_xids : abort_xids).push_back(target_xid);
      for (auto x : subxacts_in(desc)) subxacts.push_back(x);
      auto time = parse_pg_time(desc);
      EXPECT_TRUE(time) << r.desc;
      if (!time) continue;
      ++(commit ? s.commits : s.aborts);
      s.min_xact_time_us = std::min(s.min_xact_time_us.value_or(*time), *time);
      s.max_xact_time_us = std::max(s.max_xact_time_us.value_or(*time), *time);
      if (!s.first_xact_xid) s.first_xact_xid = r.xid;
      s.last_xact_xid = r.xid;
    }
  }
  s.commit_xids = XidSet::from_xids(commit_xids);
  s.abort_xids = XidSet::from_xids(abort_xids);
  return s;
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct CrosscheckTotals {
  int segments = 0;
  std::uint64_t commits = 0, aborts = 0, restore_points = 0;
  int with_switch = 0;
  int starting_with_continuation = 0;
  int ending_in_crossing_record = 0;
  std::uint64_t prepared_ends = 0;  // COMMIT/ROLLBACK PREPARED records
  std::uint64_t subxacts = 0;       // subtransaction xids in commit/abort records
  std::uint64_t xid_set_bytes = 0;  // encoded commit + abort sets, all segments
  std::uint64_t max_xid_set_bytes = 0;
  double max_decode_ms = 0;
  double max_decode_with_map_ms = 0;  // summarize_segment building the block map too
  std::uint64_t records_in_slowest = 0;
  std::uint64_t mapped_blocks = 0;  // distinct blocks in the maps, all segments
  std::uint64_t map_bytes = 0;      // encoded maps (before the envelope), all segments
};

// Compares every completed segment in the cluster's pg_wal.
CrosscheckTotals crosscheck(PgCluster& cluster, std::int64_t not_before_us) {
  const std::string current = cluster.sql("SELECT pg_walfile_name(pg_current_wal_insert_lsn())");
  const std::uint64_t system_id =
      std::stoull(cluster.sql("SELECT system_identifier FROM pg_control_system()"));
  const std::int64_t not_after_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(cluster.wal_dir())) {
    const std::string name = entry.path().filename();
    auto parsed = parse_wal_file_name(name);
    // Later names are recycled segments, the current one is still being written.
    if (parsed && parsed->kind == WalFileKind::kSegment && name < current) names.push_back(name);
  }
  std::sort(names.begin(), names.end());

  CrosscheckTotals totals;
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const std::string path = cluster.wal_dir() + "/" + name;
    const Bytes bytes = read_file(path);
    const SegmentHeader header = check_segment_header(bytes, *parse_wal_file_name(name));
    EXPECT_EQ(header.pg_major, cluster.major());
    EXPECT_EQ(header.system_id, system_id);

    // Best of three runs, for the throughput figure.
    SegmentSummary ours;
    double ms = 1e9;
    for (int run = 0; run < 3; ++run) {
      const auto started = std::chrono::steady_clock::now();
      ours = summarize_segment(bytes, header);
      ms = std::min(
          ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                  .count());
    }
    if (ms > totals.max_decode_ms) {
      totals.max_decode_ms = ms;
      totals.records_in_slowest = ours.records;
    }

    const std::vector<DumpRecord> dump = waldump(cluster, path);
    // The block map: complete, and every block pg_waldump names is in it. It
    // may hold more only for the record running into the next segment, which
    // pg_waldump does not print (at most 33 block references).
    BlockMap map;
    double map_ms = 1e9;
    for (int run = 0; run < 3; ++run) {
      const auto started = std::chrono::steady_clock::now();
      summarize_segment(bytes, header, map);
      map_ms = std::min(map_ms, std::chrono::duration<double, std::milli>(
                                    std::chrono::steady_clock::now() - started)
                                    .count());
    }
    totals.max_decode_with_map_ms = std::max(totals.max_decode_with_map_ms, map_ms);
    EXPECT_TRUE(map.complete) << map.incomplete_reason;
    BlockSet theirs_blocks, ours_blocks;
    for (const DumpRecord& r : dump) add_blkrefs(r.desc, theirs_blocks);
    for (const ForkBlocks& g : map.blocks)
      for (const ChangedBlock& b : g.blocks)
        ours_blocks.emplace(g.fork.spc, g.fork.db, g.fork.rel, g.fork.fork, b.block);
    std::size_t missing = 0;
    for (const auto& b : theirs_blocks) missing += !ours_blocks.contains(b);
    EXPECT_EQ(missing, 0u) << "blocks pg_waldump names that the map lacks";
    EXPECT_LE(ours_blocks.size(), theirs_blocks.size() + 33);
    totals.mapped_blocks += ours_blocks.size();
    totals.map_bytes += encode_block_map(map).size();
    std::vector<std::uint32_t> subxacts;
    const SegmentSummary theirs = summary_from_dump(dump, header.page_size, subxacts);
    EXPECT_GT(theirs.records, 0u);
    EXPECT_EQ(ours.records, theirs.records);
    EXPECT_EQ(format_lsn(ours.first_record_lsn), format_lsn(theirs.first_record_lsn));
    EXPECT_EQ(format_lsn(ours.end_lsn), format_lsn(theirs.end_lsn));
    EXPECT_EQ(ours.commits, theirs.commits);
    EXPECT_EQ(ours.aborts, theirs.aborts);
    EXPECT_EQ(ours.min_xact_time_us, theirs.min_xact_time_us);
    EXPECT_EQ(ours.max_xact_time_us, theirs.max_xact_time_us);
    EXPECT_EQ(ours.first_xact_xid, theirs.first_xact_xid);
    EXPECT_EQ(ours.last_xact_xid, theirs.last_xact_xid);
    EXPECT_EQ(ours.has_switch, theirs.has_switch);
    // The xid index: the xids recovery_target_xid stops at, nothing else.
    EXPECT_TRUE(ours.xids_indexed);
    EXPECT_EQ(ours.commit_xids, theirs.commit_xids);
    EXPECT_EQ(ours.abort_xids, theirs.abort_xids);
    for (auto x : subxacts) {
      EXPECT_FALSE(ours.commit_xids.contains(x)) << x;
      EXPECT_FALSE(ours.abort_xids.contains(x)) << x;
    }
    totals.subxacts += subxacts.size();
    for (const DumpRecord& r : dump)
      totals.prepared_ends += r.rmgr == "Transaction" && (r.desc.starts_with("COMMIT_PREPARED ") ||
                                                          r.desc.starts_with("ABORT_PREPARED "));
    const std::uint64_t set_bytes =
        ours.commit_xids.encode().size() + ours.abort_xids.encode().size();
    totals.xid_set_bytes += set_bytes;
    totals.max_xid_set_bytes = std::max(totals.max_xid_set_bytes, set_bytes);
    EXPECT_EQ(ours.restore_points.size(), theirs.restore_points.size());
    for (std::size_t i = 0; i < std::min(ours.restore_points.size(), theirs.restore_points.size());
         ++i) {
      EXPECT_EQ(ours.restore_points[i].name, theirs.restore_points[i].name);
      EXPECT_EQ(ours.restore_points[i].lsn, theirs.restore_points[i].lsn);
      EXPECT_GE(ours.restore_points[i].time_us, not_before_us);
      EXPECT_LE(ours.restore_points[i].time_us, not_after_us);
    }

    ++totals.segments;
    totals.commits += ours.commits;
    totals.aborts += ours.aborts;
    totals.restore_points += ours.restore_points.size();
    totals.with_switch += ours.has_switch;
    const Lsn segment_start = header.page_address;
    totals.starting_with_continuation += ours.first_record_lsn > segment_start + 40;
    // A completed segment without a switch is full: if its last complete
    // record ends before the segment end, the next one crosses into the next.
    totals.ending_in_crossing_record +=
        !ours.has_switch && ours.end_lsn < segment_start + header.segment_size;
  }
  return totals;
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(WaldumpCrosscheck, OneMiBSegmentsWithSwitchesRestorePointsAndCrossingRecords) {
  PgCluster cluster({.major = 15,
                     .settings = {{"max_prepared_transactions", "4"}},
                     .initdb_args = {"--wal-segsize=1"}});
  cluster.init();
  cluster.start();
  const std::int64_t started_us = now_us() - 1000000;

  cluster.sql("CREATE TABLE small (id int); CREATE TABLE wide (id int, pad text)");
  // Commits and aborts, restore points, and every so often ~600 kB of rows
  // (1920 bytes each: stored inline, uncompressed) so that records cross
  // pages and segment boundaries.
  cluster.sql(R"(
    DO $$
    BEGIN
      FOR i IN 1..300 LOOP
        INSERT INTO small VALUES (i);
        IF i % 5 = 0 THEN ROLLBACK; ELSE COMMIT; END IF;
        IF i % 20 = 0 THEN PERFORM pg_create_restore_point('rp_' || i); END IF;
        IF i % 25 = 0 THEN
          INSERT INTO wide SELECT g, (SELECT string_agg(md5(random()::text || h), '')
                                      FROM generate_series(1, 60) h)
          FROM generate_series(1, 300) g;
          COMMIT;
        END IF;
        IF i % 70 = 0 THEN PERFORM pg_switch_wal(); END IF;
      END LOOP;
    END $$)");
  cluster.sql("SELECT pg_create_restore_point('with spaces and a very long name: 0123456789abc')");
  cluster.sql("BEGIN; INSERT INTO small VALUES (-1); PREPARE TRANSACTION 'p1'");
  cluster.sql("COMMIT PREPARED 'p1'");
  // Subtransactions: their xids are listed in the commit/abort record.
  cluster.sql(
      "BEGIN; INSERT INTO small VALUES (-3); SAVEPOINT s; INSERT INTO small VALUES (-4); "
      "RELEASE s; COMMIT");
  cluster.sql(
      "BEGIN; INSERT INTO small VALUES (-5); SAVEPOINT s; INSERT INTO small VALUES (-6); "
      "RELEASE s; ROLLBACK");
  cluster.sql("BEGIN; INSERT INTO small VALUES (-2); PREPARE TRANSACTION 'p2'");
  cluster.sql("ROLLBACK PREPARED 'p2'");
  cluster.sql("SELECT pg_switch_wal()");
  cluster.sql("INSERT INTO small VALUES (0)");  // make sure the switch segment is complete

  const CrosscheckTotals totals = crosscheck(cluster, started_us);
  std::cout << "[ info     ] 1 MiB: " << totals.segments << " segments, " << totals.commits
            << " commits, " << totals.aborts << " aborts, " << totals.restore_points
            << " restore points, " << totals.with_switch << " switches, "
            << totals.starting_with_continuation << " starting with a continuation, "
            << totals.ending_in_crossing_record << " ending in a crossing record\n";
  // The workload must actually have produced the cases we claim to check.
  EXPECT_GE(totals.segments, 5);
  EXPECT_GE(totals.commits, 240u + 12u + 1u);
  EXPECT_GE(totals.aborts, 60u + 1u);
  EXPECT_EQ(totals.restore_points, 16u);
  EXPECT_GE(totals.with_switch, 4);
  EXPECT_GE(totals.starting_with_continuation, 1);
  EXPECT_GE(totals.ending_in_crossing_record, 1);
  EXPECT_EQ(totals.prepared_ends, 2u);
  EXPECT_GE(totals.subxacts, 2u);
}

TEST(WaldumpCrosscheck, SixteenMiBSegmentsUnderPgbench) {
  PgCluster cluster({.major = 15});
  cluster.init();
  cluster.start();
  const std::int64_t started_us = now_us() - 1000000;
  cluster.pgbench_init(4);
  cluster.pgbench_run(4, 2);
  cluster.sql("SELECT pg_create_restore_point('after_pgbench')");
  cluster.sql("SELECT pg_switch_wal()");
  cluster.sql("CREATE TABLE after_switch (id int)");

  const CrosscheckTotals totals = crosscheck(cluster, started_us);
  std::cout << "[ info     ] 16 MiB: " << totals.segments << " segments, " << totals.commits
            << " commits, " << totals.aborts << " aborts; slowest decode " << totals.max_decode_ms
            << " ms (" << totals.records_in_slowest << " records), with block map "
            << totals.max_decode_with_map_ms << " ms; block maps " << totals.mapped_blocks
            << " blocks in " << totals.map_bytes << " bytes; xid sets " << totals.xid_set_bytes
            << " bytes in all, at most " << totals.max_xid_set_bytes << " per segment\n";
  ::testing::Test::RecordProperty("max_decode_ms", std::to_string(totals.max_decode_ms));
  EXPECT_GE(totals.segments, 3);
  EXPECT_GE(totals.commits, 1000u);
  EXPECT_EQ(totals.restore_points, 1u);
}

}  // namespace
}  // namespace walvault::pg
