// Block maps (pg/block_map.h) on crafted records: block references of every
// header shape, the file-level events per major, crossing records joined
// across two segments, the stored form, and hostile input (truncated
// records, huge block numbers, bogus resource managers, flipped bytes): never
// a crash, never a complete map that misses something.
#include "pg/block_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "core/error.h"
#include "pg/wal_segment.h"
#include "support/fuzz_seeds.h"
#include "support/segment_builder.h"

namespace walvault::pg {
namespace {

using testing::kRmHeap;
using testing::kRmXact;
using testing::kXactCommit;
using testing::kXactHasInfo;
using testing::make_body;
using testing::SegmentBuilder;
using testing::xact_main;

constexpr std::uint8_t kRmSmgr = 2;
constexpr std::uint8_t kRmDbase = 4;
constexpr std::uint8_t kRmTblspc = 5;
constexpr std::uint8_t kRmRelmap = 7;
constexpr std::int64_t kT0 = 1714564800123456LL;

struct Loc {
  std::uint32_t spc, db, rel;
};
constexpr Loc kAccounts{1663, 5, 16397};
constexpr Loc kBranches{1663, 5, 16400};

// One block header (xlogrecord.h). `image` adds an image header whose
// bimg_info is `bimg_info`; `same_rel` leaves the locator out.
Bytes block_header(std::uint8_t id, std::uint8_t fork, std::uint32_t block, const Loc* rel,
                   std::optional<std::uint8_t> bimg_info = std::nullopt, bool will_init = false,
                   std::uint16_t data_len = 0) {
  Bytes h;
  h.push_back(id);
  std::uint8_t flags = fork;
  if (bimg_info) flags |= 0x10;
  if (data_len) flags |= 0x20;
  if (will_init) flags |= 0x40;
  if (!rel) flags |= 0x80;
  h.push_back(flags);
  append_le<std::uint16_t>(h, data_len);
  if (bimg_info) {
    append_le<std::uint16_t>(h, 0);  // image length: no image bytes follow in these tests
    append_le<std::uint16_t>(h, 0);  // hole offset
    h.push_back(*bimg_info);
  }
  if (rel) {
    append_le<std::uint32_t>(h, rel->spc);
    append_le<std::uint32_t>(h, rel->db);
    append_le<std::uint32_t>(h, rel->rel);
  }
  append_le<std::uint32_t>(h, block);
  return h;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes u32s(std::initializer_list<std::uint32_t> values) {
  Bytes out;
  for (std::uint32_t v : values) append_le<std::uint32_t>(out, v);
  return out;
}

// The map of the builder's segment. Real archived segments are full of
// records or end with XLOG_SWITCH (zeros after it); a synthetic one gets the
// switch unless `end_with_switch` is false, else its zeros would (rightly)
// read as decoding stopping early.
BlockMap map_of(SegmentBuilder& b, bool end_with_switch = true) {
  if (end_with_switch) b.add_record(0, 0x40, 0, {});
  auto name = parse_wal_file_name(b.file_name());
  EXPECT_TRUE(name);
  const SegmentHeader header = check_segment_header(b.bytes(), *name);
  BlockMap map;
  summarize_segment(b.bytes(), header, map);
  return map;
}

SegmentBuilder builder(std::uint16_t magic = 0xD110, std::uint64_t segno = 3) {
  SegmentBuilder::Options o;
  o.magic = magic;
  o.segno = segno;
  return SegmentBuilder(o);
}

// Fills the segment with block-less records until the write position is on
// its last page.
void advance_to_last_page(SegmentBuilder& b) {
  const std::size_t last_page = b.options().segment_size - b.options().page_size;
  while (b.position() < last_page + 64) b.add_record(kRmHeap, 0, 1, make_body(Bytes(3000, 1)));
}

std::vector<std::uint32_t> blocks_of(const BlockMap& map, Loc loc, std::uint8_t fork = 0) {
  for (const ForkBlocks& g : map.blocks) {
    if (g.fork == RelFork{loc.spc, loc.db, loc.rel, fork}) {
      std::vector<std::uint32_t> out;
      for (const ChangedBlock& b : g.blocks) out.push_back(b.block);
      return out;
    }
  }
  return {};
}

TEST(BlockMap, BlockReferencesOfEveryHeaderShape) {
  for (std::uint16_t magic : {0xD106, 0xD10D, 0xD110, 0xD113, 0xD116, 0xD118}) {
    const bool pg15 = magic >= 0xD110;
    const std::uint8_t apply = pg15 ? 0x02 : 0x04;
    SegmentBuilder b = builder(magic);
    // Two blocks of one relation (the second SAME_REL), an image that redo
    // applies, then another relation's VM fork page that is initialised.
    b.add_record(kRmHeap, 0x00, 9,
                 make_body(cat({block_header(0, 0, 7, &kAccounts, apply),
                                block_header(1, 0, 3, nullptr, std::nullopt, false, 4)}),
                           Bytes(4, 0), Bytes(8, 1)));
    b.add_record(kRmHeap, 0x00, 9,
                 make_body(cat({block_header(0, 2, 0, &kBranches, std::nullopt, true),
                                block_header(5, 0, 7, &kAccounts)}),
                           {}, Bytes(3, 1)));
    // An image kept only for consistency checking (no APPLY) must be read.
    b.add_record(kRmHeap, 0x00, 9, make_body(block_header(0, 0, 11, &kAccounts, 0x00), {}, {}));
    const BlockMap map = map_of(b);
    ASSERT_TRUE(map.complete) << magic << ": " << map.incomplete_reason;
    EXPECT_EQ(blocks_of(map, kAccounts), (std::vector<std::uint32_t>{3, 7, 11})) << magic;
    EXPECT_EQ(blocks_of(map, kBranches, 2), std::vector<std::uint32_t>{0}) << magic;
    ASSERT_EQ(map.blocks.size(), 2u);
    const auto& acc = map.blocks[0].blocks;  // 16397 sorts before 16400
    EXPECT_FALSE(acc[0].no_read);
    EXPECT_TRUE(acc[1].no_read) << "block 7's first reference is an applied image";
    EXPECT_FALSE(acc[2].no_read) << "an image without APPLY is not restored by redo";
    EXPECT_TRUE(map.blocks[1].blocks[0].no_read) << "WILL_INIT";
  }
}

// Many relations in one segment (past the builder's scan of a few forks, so
// its fork index is used) referenced interleaved and out of order, each
// block several times: every block once, ascending, with its first
// reference's no_read.
TEST(BlockMap, ManyForksInterleavedKeepTheFirstReference) {
  SegmentBuilder b = builder();
  constexpr std::uint32_t kRelations = 40;
  std::vector<Loc> rels;
  for (std::uint32_t r = 0; r < kRelations; ++r) rels.push_back({1663, 5, 20000 + r});
  // Round 1: block (r * 7) % 5 + 10 of every relation, with an applied image
  // on even relations. Round 2: the same blocks without images (must not
  // change no_read), plus block 2 of every relation, first seen here.
  for (int round = 0; round < 2; ++round) {
    for (std::uint32_t i = 0; i < kRelations; ++i) {
      const std::uint32_t r = (i * 17) % kRelations;  // out of order
      const std::uint32_t block = (r * 7) % 5 + 10;
      const bool image = round == 0 && r % 2 == 0;
      b.add_record(kRmHeap, 0x00, 9,
                   make_body(block_header(0, 0, block, &rels[r],
                                          image ? std::optional<std::uint8_t>(0x02) : std::nullopt),
                             {}, Bytes(3, 1)));
      if (round == 1)
        b.add_record(kRmHeap, 0x00, 9, make_body(block_header(0, 0, 2, &rels[r]), {}, {}));
    }
  }
  const BlockMap map = map_of(b);
  ASSERT_TRUE(map.complete) << map.incomplete_reason;
  ASSERT_EQ(map.blocks.size(), kRelations);
  for (std::uint32_t r = 0; r < kRelations; ++r) {
    const ForkBlocks& g = map.blocks[r];  // relations sort by oid
    EXPECT_EQ(g.fork, (RelFork{1663, 5, 20000 + r, 0}));
    ASSERT_EQ(g.blocks.size(), 2u) << r;
    EXPECT_EQ(g.blocks[0].block, 2u);
    EXPECT_FALSE(g.blocks[0].no_read);
    EXPECT_EQ(g.blocks[1].block, (r * 7) % 5 + 10);
    EXPECT_EQ(g.blocks[1].no_read, r % 2 == 0)
        << "relation " << r << ": the first reference decides";
  }
}

// Thousands of forks (more than one digit of the builder's sort) and block
// numbers over the whole 32-bit range, some referenced again and again:
// the map is exactly what a plain model makes of the same references in
// record order (each block once, ascending per fork, forks in order, the
// first reference's no_read).
TEST(BlockMap, RandomReferencesMatchAModel) {
  std::mt19937_64 rng(20261207);
  std::vector<Loc> rels;
  for (std::uint32_t r = 0; r < 700; ++r) rels.push_back({1663 + r % 3, 5 + r % 2, 30000 + r * 13});
  std::map<RelFork, std::map<std::uint32_t, bool>> model;
  SegmentBuilder b = builder();
  for (int i = 0; i < 7000; ++i) {
    Bytes headers;
    const int refs = 1 + static_cast<int>(rng() % 3);
    for (int id = 0; id < refs; ++id) {
      const Loc& rel = rels[rng() % rels.size()];
      const auto fork = static_cast<std::uint8_t>(rng() % 4);
      const std::uint64_t kind = rng() % 4;
      const auto block = static_cast<std::uint32_t>(kind < 2    ? rng() % 16
                                                    : kind == 2 ? rng()
                                                                : 0xFFFFFF00u + rng() % 0xFF);
      const bool image = rng() % 5 == 0, will_init = rng() % 7 == 0;
      headers = cat({headers, block_header(static_cast<std::uint8_t>(id), fork, block, &rel,
                                           image ? std::optional<std::uint8_t>(0x02) : std::nullopt,
                                           will_init)});
      model[RelFork{rel.spc, rel.db, rel.rel, fork}].emplace(block, image || will_init);
    }
    b.add_record(kRmHeap, 0x00, 9, make_body(headers, {}, {}));
  }
  const BlockMap map = map_of(b);
  ASSERT_TRUE(map.complete) << map.incomplete_reason;
  ASSERT_EQ(map.blocks.size(), model.size());
  auto want = model.begin();
  for (const ForkBlocks& got : map.blocks) {
    ASSERT_EQ(got.fork, want->first);
    ASSERT_EQ(got.blocks.size(), want->second.size());
    auto block = want->second.begin();
    for (const ChangedBlock& c : got.blocks) {
      EXPECT_EQ(c.block, block->first);
      EXPECT_EQ(c.no_read, block->second) << "block " << c.block;
      ++block;
    }
    ++want;
  }
}

TEST(BlockMap, FileLevelEventsPerMajor) {
  for (std::uint16_t magic : {0xD106, 0xD110, 0xD118}) {
    const bool pg15 = magic >= 0xD110;
    SegmentBuilder b = builder(magic);
    b.add_record(kRmSmgr, 0x10 | 0x01, 0, make_body(u32s({1663, 5, 16500, 0})));      // create
    b.add_record(kRmSmgr, 0x20 | 0x01, 0, make_body(u32s({12, 1663, 5, 16397, 3})));  // truncate
    b.add_record(kRmDbase, 0x00, 0, make_body(u32s({16600, 1663, 1, 1663})));         // copy
    b.add_record(kRmDbase, pg15 ? 0x20 : 0x10, 0, make_body(u32s({16384, 2, 1663, 16700})));
    b.add_record(kRmTblspc, 0x00, 0, make_body(cat({u32s({16700}), to_bytes("/ts")})));
    b.add_record(kRmTblspc, 0x10, 0, make_body(u32s({16701})));
    b.add_record(kRmRelmap, 0x00, 0, make_body(cat({u32s({5, 1663, 512}), Bytes(512, 0)})));
    // A commit dropping two relations: xinfo HAS_RELFILELOCATORS.
    Bytes commit = xact_main(kT0);
    append_le<std::uint32_t>(commit, 1u << 2);
    commit = cat({commit, u32s({2, 1663, 5, 16390, 1663, 5, 16391})});
    b.add_record(kRmXact, kXactCommit | kXactHasInfo, 700, make_body(commit));
    const BlockMap map = map_of(b);
    ASSERT_TRUE(map.complete) << map.incomplete_reason;
    std::vector<std::pair<MapEventKind, std::uint32_t>> got;
    for (const MapEvent& e : map.events)
      got.emplace_back(e.kind, e.rel.rel ? e.rel.rel : e.rel.db ? e.rel.db : e.rel.spc);
    const std::vector<std::pair<MapEventKind, std::uint32_t>> want = {
        {MapEventKind::kRelationCreated, 16500},   {MapEventKind::kRelationTruncated, 16397},
        {MapEventKind::kDatabaseCopied, 16600},    {MapEventKind::kDatabaseDropped, 16384},
        {MapEventKind::kDatabaseDropped, 16384},   {MapEventKind::kTablespaceCreated, 16700},
        {MapEventKind::kTablespaceDropped, 16701}, {MapEventKind::kRelationMapUpdated, 5},
        {MapEventKind::kRelationDropped, 16390},   {MapEventKind::kRelationDropped, 16391}};
    EXPECT_EQ(got, want) << magic;
    EXPECT_EQ(map.events[1].blocks, 12u);
    EXPECT_EQ(map.events[1].flags, 3u);
    EXPECT_EQ(map.events[2].src_db, 1u);
    EXPECT_EQ(map.events[4].rel.spc, 16700u);
  }
}

TEST(BlockMap, Pg15WalLogDatabaseCreate) {
  SegmentBuilder b = builder(0xD110);
  b.add_record(kRmDbase, 0x10, 0, make_body(u32s({16800, 1663})));
  const BlockMap map = map_of(b);
  ASSERT_TRUE(map.complete);
  ASSERT_EQ(map.events.size(), 1u);
  EXPECT_EQ(map.events[0].kind, MapEventKind::kDatabaseCreated);
  EXPECT_EQ(map.events[0].rel.db, 16800u);
}

// Each of these must leave the map incomplete, with a reason, and no crash.
TEST(BlockMap, UnattributableRecordsMarkTheMapIncomplete) {
  struct Case {
    const char* what;
    std::uint8_t rmid, info;
    Bytes body;
  };
  const std::vector<Case> cases = {
      {"custom rmgr", 130, 0x00, make_body(block_header(0, 0, 1, &kAccounts), {}, {})},
      {"rmgr id past the built-ins", 22, 0x00, make_body(Bytes(4, 0))},
      {"unknown smgr kind", kRmSmgr, 0x30, make_body(u32s({1, 2, 3, 4}))},
      {"unknown dbase kind", kRmDbase, 0x70, make_body(u32s({1, 2}))},
      {"short smgr create", kRmSmgr, 0x10, make_body(u32s({1663, 5}))},
      {"dbase drop counting past its data", kRmDbase, 0x20, make_body(u32s({1, 1000000, 1663}))},
      {"fork 9", kRmHeap, 0x00, make_body(block_header(0, 9, 1, &kAccounts), {}, {})},
      {"SAME_REL first", kRmHeap, 0x00, make_body(block_header(0, 0, 1, nullptr), {}, {})},
      {"block ids out of order", kRmHeap, 0x00,
       make_body(cat({block_header(3, 0, 1, &kAccounts), block_header(2, 0, 2, &kAccounts)}), {},
                 {})},
      {"block data longer than the record", kRmHeap, 0x00,
       make_body(block_header(0, 0, 1, &kAccounts, std::nullopt, false, 900), {}, {})},
      {"truncated block header", kRmHeap, 0x00, Bytes{0, 0, 0}},
  };
  for (const Case& c : cases) {
    SegmentBuilder b = builder();
    b.add_record(kRmHeap, 0, 1, make_body(block_header(0, 0, 5, &kBranches), {}, {}));
    b.add_record(c.rmid, c.info, 1, c.body);
    const BlockMap map = map_of(b);
    EXPECT_FALSE(map.complete) << c.what;
    EXPECT_FALSE(map.incomplete_reason.empty()) << c.what;
    EXPECT_EQ(blocks_of(map, kBranches), std::vector<std::uint32_t>{5}) << c.what;
  }
}

TEST(BlockMap, HugeBlockNumbersAreKeptExactly) {
  SegmentBuilder b = builder();
  b.add_record(
      kRmHeap, 0, 1,
      make_body(cat({block_header(0, 0, 0xFFFFFFFFu, &kAccounts),
                     block_header(1, 0, 0xFFFFFFFEu, nullptr), block_header(2, 0, 0, nullptr)}),
                {}, {}));
  const BlockMap map = map_of(b);
  ASSERT_TRUE(map.complete);
  EXPECT_EQ(blocks_of(map, kAccounts), (std::vector<std::uint32_t>{0, 0xFFFFFFFEu, 0xFFFFFFFFu}));
  EXPECT_EQ(decode_block_map(encode_block_map(map), "m").blocks, map.blocks);
}

TEST(BlockMap, DecodingStoppedEarlyIsIncomplete) {
  SegmentBuilder b = builder();
  b.add_record(kRmHeap, 0, 1, make_body(block_header(0, 0, 5, &kBranches), {}, {}));
  const std::size_t at = b.position();
  b.add_record(kRmHeap, 0, 1, make_body(block_header(0, 0, 6, &kBranches), {}, {}));
  b.bytes()[at + 30] ^= 0xFF;  // CRC mismatch in the middle of the segment
  const BlockMap map = map_of(b);
  EXPECT_FALSE(map.complete);
  EXPECT_NE(map.incomplete_reason.find("decoding stopped"), std::string::npos)
      << map.incomplete_reason;
}

TEST(BlockMap, SwitchEndsTheDataCleanly) {
  SegmentBuilder b = builder();
  b.add_record(kRmHeap, 0, 1, make_body(block_header(0, 0, 5, &kBranches), {}, {}));
  EXPECT_FALSE(map_of(b, false).complete) << "zeros where a record should be";
  EXPECT_TRUE(map_of(b).complete) << "XLOG_SWITCH, then zeros";
}

// A record whose header is split by the segment end: the first segment keeps
// its head, the next its tail, and the two together attribute it.
TEST(BlockMap, RecordCrossingTheSegmentEndIsJoined) {
  SegmentBuilder first = builder(0xD110, 3);
  const std::size_t end = first.options().segment_size;
  advance_to_last_page(first);
  first.pad_to(end - 16);
  const Bytes body = make_body(
      cat({block_header(0, 0, 42, &kAccounts), block_header(1, 1, 2, nullptr)}), {}, Bytes(100, 7));
  first.add_record(kRmHeap, 0, 1, body);
  const BlockMap before = map_of(first, false);
  ASSERT_TRUE(before.complete) << before.incomplete_reason;
  ASSERT_TRUE(before.head);
  EXPECT_EQ(before.head->available, 16u);
  EXPECT_TRUE(blocks_of(before, kAccounts).empty());

  // The whole record: its first 16 bytes as written, the rest of the header,
  // the body.
  Bytes record(first.bytes().end() - 16, first.bytes().end());
  record.insert(record.end(), {0x00, kRmHeap, 0, 0, 0, 0, 0, 0});
  record.insert(record.end(), body.begin(), body.end());
  SegmentBuilder second = builder(0xD110, 4);
  second.leading_continuation(Bytes(record.begin() + 16, record.end()));
  second.add_record(kRmHeap, 0, 1, make_body(block_header(0, 0, 1, &kBranches), {}, {}));
  const BlockMap after = map_of(second);
  ASSERT_TRUE(after.complete) << after.incomplete_reason;
  ASSERT_TRUE(after.tail);
  EXPECT_EQ(after.tail->rem_len, record.size() - 16);

  BlockMapBuilder joined(15, before.segment_start);
  std::string reason;
  ASSERT_TRUE(join_crossing(before, &after, joined, reason)) << reason;
  const BlockMap j = joined.finish();
  EXPECT_EQ(blocks_of(j, kAccounts), std::vector<std::uint32_t>{42});
  EXPECT_EQ(blocks_of(j, kAccounts, 1), std::vector<std::uint32_t>{2});

  // Without the next map, or with one that does not continue the record: no.
  BlockMapBuilder none(15, before.segment_start);
  EXPECT_FALSE(join_crossing(before, nullptr, none, reason));
  BlockMap wrong = after;
  wrong.tail->rem_len += 8;
  EXPECT_FALSE(join_crossing(before, &wrong, none, reason));
  // The next segment says the record was abandoned: nothing to attribute.
  BlockMap overwritten = after;
  overwritten.tail.reset();
  overwritten.starts_with_overwrite = true;
  EXPECT_TRUE(join_crossing(before, &overwritten, none, reason));
}

// A crossing record whose block headers are all in the first segment is
// attributed there, without a head.
TEST(BlockMap, CrossingRecordWithHeadersInsideIsAttributedAtOnce) {
  SegmentBuilder b = builder();
  advance_to_last_page(b);
  b.pad_to(b.options().segment_size - 512);
  b.add_record(kRmHeap, 0, 1,
               make_body(block_header(0, 0, 9, &kAccounts), Bytes(), Bytes(4000, 1)));
  const BlockMap map = map_of(b, false);
  ASSERT_TRUE(map.complete) << map.incomplete_reason;
  EXPECT_FALSE(map.head);
  EXPECT_EQ(blocks_of(map, kAccounts), std::vector<std::uint32_t>{9});
}

TEST(BlockMap, StoredFormRoundTripsAndRefusesDamage) {
  SegmentBuilder b = builder();
  for (std::uint32_t i = 0; i < 300; ++i)
    b.add_record(kRmHeap, 0, 1, make_body(block_header(0, 0, i * 7 % 1000, &kAccounts), {}, {}));
  b.add_record(kRmSmgr, 0x10, 0, make_body(u32s({1663, 5, 16500, 0})));
  BlockMap map = map_of(b);
  map.segment_xxh3 = 0x0123456789ABCDEFULL;
  map.head = HeadFragment{map.segment_start + 999, 5000, 20, Bytes(20, 3)};
  map.tail = TailFragment{77, Bytes(77, 4)};
  const Bytes stored = encode_block_map(map);
  const BlockMap back = decode_block_map(stored, "wal/map/x");
  EXPECT_EQ(back.blocks, map.blocks);
  EXPECT_EQ(back.events, map.events);
  EXPECT_EQ(back.segment_xxh3, map.segment_xxh3);
  EXPECT_EQ(back.head->bytes, map.head->bytes);
  EXPECT_EQ(back.tail->rem_len, 77u);
  EXPECT_TRUE(back.complete);

  BlockMap incomplete;
  incomplete.mark_incomplete("custom rmgr");
  EXPECT_EQ(decode_block_map(encode_block_map(incomplete), "m").incomplete_reason, "custom rmgr");

  for (std::size_t cut = 0; cut < stored.size(); cut += 7)
    EXPECT_THROW(decode_block_map(ByteView(stored).first(cut), "m"), Error) << cut;
  for (walvault::testing::FuzzSeeds seeds(200); seeds.next();) {
    std::mt19937_64 rng(seeds.seed());
    Bytes damaged = stored;
    damaged[rng() % damaged.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    try {
      decode_block_map(damaged, "m");  // may still decode: the envelope's hash guards content
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    }
  }
}

// Random bytes in record bodies: every outcome is allowed except a crash or a
// complete map listing fewer blocks than the intact records name.
TEST(BlockMap, FuzzedBodiesNeverCrash) {
  for (walvault::testing::FuzzSeeds seeds(300); seeds.next();) {
    const std::uint64_t seed = seeds.seed();
    std::mt19937_64 rng(seed);
    SegmentBuilder b = builder(rng() % 2 ? 0xD106 : 0xD118);
    b.add_record(kRmHeap, 0, 1, make_body(block_header(0, 0, 5, &kBranches), {}, {}));
    Bytes junk(rng() % 200);
    for (auto& x : junk) x = static_cast<std::uint8_t>(rng());
    b.add_record(static_cast<std::uint8_t>(rng() % 24), static_cast<std::uint8_t>(rng()), 1, junk);
    const BlockMap map = map_of(b);
    EXPECT_EQ(blocks_of(map, kBranches).size(), 1u) << seed;
    if (!map.complete) {
      EXPECT_FALSE(map.incomplete_reason.empty());
    }
  }
}

}  // namespace
}  // namespace walvault::pg
