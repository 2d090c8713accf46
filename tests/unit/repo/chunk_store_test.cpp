// Chunks and packs: dedup across runs, ranged reads, and corruption caught.
#include "repo/chunk_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/error.h"
#include "store/mem_store.h"
#include "store/store_wrapper.h"
#include "support/seeded_bytes.h"

namespace walvault::repo {
namespace {

Bytes chunk(std::uint8_t seed, std::size_t size = 64 << 10) {
  return walvault::testing::seeded_bytes(seed, size);
}

struct Repo {
  explicit Repo(bool encrypted = false) : store(std::make_shared<store::MemStore>()) {
    InitOptions o;
    if (encrypted) {
      o.encrypt = true;
      o.passphrase = "pack test passphrase";
      o.kdf.n = 1024;
    }
    Repository::init(*store, o);
    Secrets s;
    if (encrypted) s.passphrase = "pack test passphrase";
    repo = Repository::open(store, s);
  }
  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<Repository> repo;
};

TEST(ChunkStore, StoresOnceAndReadsBack) {
  Repo r;
  ChunkStore chunks(*r.repo, {.pack_target_bytes = 200 << 10});
  std::vector<ChunkId> ids;
  for (std::uint8_t i = 0; i < 10; ++i) {
    AddResult a = chunks.add(chunk(i));
    EXPECT_TRUE(a.stored);
    EXPECT_GT(a.stored_bytes, 0u);
    ids.push_back(a.id);
  }
  EXPECT_FALSE(chunks.add(chunk(3)).stored);  // same run: pending or packed
  chunks.flush();
  // Several packs were written (each ~200 KiB), each with its index.
  EXPECT_GE(r.store->list("packs/").size(), 3u);
  EXPECT_EQ(r.store->list("packs/").size(), r.store->list("index/").size());
  for (std::uint8_t i = 0; i < 10; ++i) EXPECT_EQ(*chunks.read(ids[i]), chunk(i));

  // A later run loads the indexes and stores nothing it already has.
  ChunkStore later(*r.repo);
  EXPECT_EQ(later.known_chunks(), 10u);
  EXPECT_FALSE(later.add(chunk(7)).stored);
  EXPECT_TRUE(later.add(chunk(42)).stored);
  later.flush();
  EXPECT_EQ(*later.read(ids[7]), chunk(7));
}

TEST(ChunkStore, EncryptedIdsAreKeyedAndContentUnreadable) {
  Repo plain, enc(true);
  ChunkStore a(*plain.repo), b(*enc.repo);
  Bytes text(100000, 'z');
  const std::string marker = "clinical-study-42";
  std::copy(marker.begin(), marker.end(), text.begin());
  ChunkId pid = a.add(text).id, eid = b.add(text).id;
  EXPECT_NE(pid, eid);  // HMAC under the repository key, not a bare SHA-256
  b.flush();
  for (const auto& info : enc.store->list("packs/")) {
    Bytes raw = *enc.store->get(info.name, std::nullopt);
    EXPECT_EQ(std::search(raw.begin(), raw.end(), marker.begin(), marker.end()), raw.end());
  }
  EXPECT_EQ(*b.read(eid), text);
}

TEST(ChunkStore, FlippedByteInPackIsCorruptionNamingThePack) {
  Repo r;
  ChunkStore chunks(*r.repo);
  ChunkId id = chunks.add(chunk(1)).id;
  chunks.flush();
  auto packs = r.store->list("packs/");
  ASSERT_EQ(packs.size(), 1u);
  Bytes raw = *r.store->get(packs[0].name, std::nullopt);
  raw[raw.size() / 2] ^= 0x04;
  r.store->corrupt(packs[0].name, raw);
  try {
    chunks.read(id);
    FAIL() << "corrupt chunk delivered";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find(packs[0].name), std::string::npos) << e.what();
  }
  // An unknown id is simply absent.
  ChunkId unknown{};
  EXPECT_FALSE(chunks.read(unknown).has_value());
}

TEST(ChunkStore, UnflushedChunksAreNotVisibleToOthers) {
  Repo r;
  ChunkStore writer(*r.repo);
  writer.add(chunk(9));
  // Crash before flush: nothing lists the chunk, so it does not exist.
  ChunkStore reader(*r.repo);
  EXPECT_EQ(reader.known_chunks(), 0u);
  EXPECT_TRUE(r.store->list("packs/").empty());
}

TEST(ChunkStore, ConcurrentWritersStoreEachChunkOnce) {
  Repo r;
  ChunkStore chunks(*r.repo, {.pack_target_bytes = 256 << 10});
  std::atomic<int> stored{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (std::uint8_t i = 0; i < 40; ++i) stored += chunks.add(chunk(i, 16 << 10)).stored;
    });
  }
  for (auto& t : threads) t.join();
  chunks.flush();
  EXPECT_EQ(stored.load(), 40);
  ChunkStore again(*r.repo);
  EXPECT_EQ(again.known_chunks(), 40u);
  for (std::uint8_t i = 0; i < 40; ++i)
    EXPECT_EQ(*again.read(again.chunk_id(chunk(i, 16 << 10))), chunk(i, 16 << 10));
}

// Many indexes are read by several threads at open; every chunk is found,
// and one damaged index fails the open naming it.
TEST(ChunkStore, OpensManyIndexesAndNamesADamagedOne) {
  Repo r;
  std::vector<ChunkId> ids;
  {
    ChunkStore chunks(*r.repo, {.pack_target_bytes = 1});  // one chunk per pack
    for (std::uint8_t i = 0; i < 120; ++i) ids.push_back(chunks.add(chunk(i, 4096)).id);
    chunks.flush();
  }
  auto indexes = r.store->list("index/");
  ASSERT_EQ(indexes.size(), 120u);
  {
    ChunkStore again(*r.repo);
    EXPECT_EQ(again.known_chunks(), 120u);
    for (std::uint8_t i = 0; i < 120; ++i) EXPECT_EQ(*again.read(ids[i]), chunk(i, 4096));
  }
  const std::string damaged = indexes[77].name;
  Bytes bytes = *r.store->get(damaged, std::nullopt);
  bytes[bytes.size() / 2] ^= 0x10;
  r.store->corrupt(damaged, bytes);
  try {
    ChunkStore broken(*r.repo);
    ADD_FAILURE() << "a damaged index was not noticed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find(damaged), std::string::npos) << e.what();
  }
}

// Consecutive new chunks share one envelope (one zstd frame); each is read
// by its own id, chunks the repository has are not stored again, and an
// index placing a chunk outside its frame is caught.
// Counts the ranged reads of pack objects: each is one envelope opened.
class EnvelopeReads final : public store::StoreWrapper {
 public:
  using StoreWrapper::StoreWrapper;
  std::optional<Bytes> get(const std::string& name, std::optional<store::Range> range) override {
    if (range && name.starts_with("packs/")) ++reads;
    return StoreWrapper::get(name, range);
  }
  std::atomic<int> reads{0};
};

// A thread keeps the last few frames it opened: reads that alternate between
// two frames (a changed file's chunks in a new frame between its unchanged
// neighbours' in an old one) open each once, and a fifth frame replaces the
// one read least recently.
TEST(ChunkStore, AThreadKeepsItsLastFramesOpen) {
  auto reads = std::make_shared<EnvelopeReads>(std::make_shared<store::MemStore>());
  Repository::init(*reads, {});
  const auto repo = Repository::open(reads, {});
  ChunkStore chunks(*repo);
  const auto content = [](int frame, int c) {
    return chunk(static_cast<std::uint8_t>(200 + 3 * frame + c), 16 << 10);
  };
  std::vector<std::vector<ChunkId>> frames;
  for (int f = 0; f < 5; ++f) {
    const Bytes a = content(f, 0), b = content(f, 1), c = content(f, 2);
    std::vector<ChunkId> ids;
    for (const AddResult& added : chunks.add_group({a, b, c})) ids.push_back(added.id);
    frames.push_back(ids);
  }
  chunks.flush();
  ASSERT_EQ(chunks.locate(frames[0][0])->offset, chunks.locate(frames[0][2])->offset);
  // On a thread of its own: a thread's frames outlive one ChunkStore.
  std::thread([&] {
    ChunkStore again(*repo);
    Bytes scratch;
    const auto read = [&](int f, int c) {
      const auto view = again.read_view(frames[f][c], scratch, ChunkCheck::kRecorded);
      ASSERT_TRUE(view);
      EXPECT_EQ(Bytes(view->begin(), view->end()), content(f, c));
    };
    reads->reads = 0;
    for (int c = 0; c < 3; ++c) {
      read(0, c);
      read(1, c);
    }
    EXPECT_EQ(reads->reads, 2) << "alternating between two frames opens each once";
    for (int f = 1; f < 5; ++f) read(f, 0);
    EXPECT_EQ(reads->reads, 5) << "frame 1 still open, 2, 3 and 4 opened";
    read(4, 2);
    EXPECT_EQ(reads->reads, 5);
    read(0, 1);
    EXPECT_EQ(reads->reads, 6) << "frame 0, read least recently of five, was replaced";
  }).join();
}

TEST(ChunkStore, GroupSharesOneEnvelopeAndReadsEachChunk) {
  Repo r;
  ChunkStore chunks(*r.repo);
  const ChunkId known = chunks.add(chunk(9)).id;
  const std::vector<Bytes> group{chunk(1), chunk(9), chunk(2), chunk(3)};
  const auto results = chunks.add_group({group[0], group[1], group[2], group[3]});
  ASSERT_EQ(results.size(), 4u);
  EXPECT_FALSE(results[1].stored);
  EXPECT_EQ(results[1].id, known);
  EXPECT_TRUE(results[0].stored && results[2].stored && results[3].stored);
  EXPECT_GT(results[0].stored_bytes, 0u);  // the shared envelope, counted once
  EXPECT_EQ(results[2].stored_bytes + results[3].stored_bytes, 0u);
  chunks.flush();
  ChunkStore again(*r.repo);
  const auto l0 = *again.locate(results[0].id);
  const auto l3 = *again.locate(results[3].id);
  EXPECT_EQ(l0.offset, l3.offset);  // one envelope
  EXPECT_EQ(l3.inner_offset, 2u * (64 << 10));
  EXPECT_EQ(l3.inner_length, 64u << 10);
  for (std::size_t i : {0, 2, 3}) {
    EXPECT_EQ(*again.read(results[i].id), group[i]);
    Bytes out;
    ASSERT_TRUE(again.read_into(results[i].id, out, ChunkCheck::kRecorded));
    EXPECT_EQ(out, group[i]);
  }
  // Views of chunks of one frame point into the one decoded frame, nothing
  // copied: the frame holds chunks 1, 2 and 3 (9 was known), so the third
  // starts 128 KiB after the first.
  Bytes scratch;
  const auto v0 = again.read_view(results[0].id, scratch, ChunkCheck::kRecorded);
  ASSERT_TRUE(v0);
  EXPECT_TRUE(std::equal(v0->begin(), v0->end(), group[0].begin(), group[0].end()));
  const std::uint8_t* frame_start = v0->data();
  const auto v3 = again.read_view(results[3].id, scratch, ChunkCheck::kRecorded);
  ASSERT_TRUE(v3);
  EXPECT_TRUE(std::equal(v3->begin(), v3->end(), group[3].begin(), group[3].end()));
  EXPECT_EQ(v3->data(), frame_start + 2 * (64 << 10));
  EXPECT_TRUE(scratch.empty());
  // An index that places chunk 3 past the end of its frame.
  auto listed = r.store->list("index/");
  for (const auto& info : listed) {
    auto entries = decode_index(*r.repo->get_object(info.name), info.name);
    bool changed = false;
    for (auto& [id, loc] : entries)
      if (id == results[3].id) {
        loc.inner_offset += 1;
        changed = true;
      }
    if (!changed) continue;
    r.store->remove(info.name);
    r.repo->put_object("index/" + std::string(64, '3'), encode_index(entries));
  }
  ChunkStore bad(*r.repo);
  for (ChunkCheck check : {ChunkCheck::kId, ChunkCheck::kRecorded}) {
    Bytes out;
    try {
      bad.read_into(results[3].id, out, check);
      ADD_FAILURE() << "chunk placed outside its frame was read";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      EXPECT_NE(std::string(e.what()).find("outside its envelope"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(*bad.read(results[2].id), group[2]);
}

// A frame's own XXH3 is not what protects a chunk read from it
// (read_view leaves it to the chunks): a frame rewritten with one byte of
// its third chunk changed, sealed again so that the envelope is whole and
// its XXH3 right, still fails that chunk, by its index entry's XXH3 and by
// its id, while the others read.
TEST(ChunkStore, EveryChunkOfAFrameIsCheckedOnItsOwn) {
  Repo r;
  std::vector<ChunkId> ids;
  const std::vector<Bytes> group{chunk(1), chunk(2), chunk(3), chunk(4)};
  {
    ChunkStore chunks(*r.repo);
    for (const auto& res : chunks.add_group({group[0], group[1], group[2], group[3]}))
      ids.push_back(res.id);
    chunks.flush();
  }
  auto listed = r.store->list("index/");
  ASSERT_EQ(listed.size(), 1u);
  auto entries = decode_index(*r.repo->get_object(listed[0].name), listed[0].name);
  ChunkLocation frame;
  for (const auto& [id, loc] : entries)
    if (id == ids[2]) frame = loc;
  const std::string pack = pack_object_name(frame.pack);
  Bytes raw = *r.store->get(pack, std::nullopt);
  Bytes plaintext = r.repo->open_object(ByteView(raw).subspan(frame.offset, frame.length), "frame");
  ASSERT_EQ(plaintext.size(), 4u * (64 << 10));
  plaintext[frame.inner_offset + 10] ^= 0x20;
  const Bytes resealed = r.repo->seal_object(plaintext);
  Bytes rewritten(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(frame.offset));
  rewritten.insert(rewritten.end(), resealed.begin(), resealed.end());
  rewritten.insert(rewritten.end(),
                   raw.begin() + static_cast<std::ptrdiff_t>(frame.offset + frame.length),
                   raw.end());
  r.store->corrupt(pack, rewritten);
  for (auto& [id, loc] : entries)
    if (loc.pack == frame.pack && loc.offset == frame.offset) loc.length = resealed.size();
  r.store->remove(listed[0].name);
  r.repo->put_object("index/" + std::string(64, '4'), encode_index(entries));

  for (ChunkCheck check : {ChunkCheck::kRecorded, ChunkCheck::kId}) {
    ChunkStore chunks(*r.repo);
    Bytes scratch;
    for (std::size_t i : {0, 1, 3}) {
      const auto view = chunks.read_view(ids[i], scratch, check);
      ASSERT_TRUE(view);
      EXPECT_TRUE(std::equal(view->begin(), view->end(), group[i].begin(), group[i].end())) << i;
    }
    try {
      chunks.read_view(ids[2], scratch, check);
      ADD_FAILURE() << "a changed chunk in a whole, re-sealed frame was delivered";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      EXPECT_NE(std::string(e.what()).find(pack), std::string::npos) << e.what();
    }
  }
}

TEST(ChunkIndex, RoundTripAndDamage) {
  std::vector<std::pair<ChunkId, ChunkLocation>> entries(3);
  for (int i = 0; i < 3; ++i) {
    entries[i].first.fill(static_cast<std::uint8_t>(i));
    entries[i].second = {ChunkId{},
                         static_cast<std::uint64_t>(i) * 1000,
                         77,
                         0x1122334455667788ull + static_cast<std::uint64_t>(i),
                         static_cast<std::uint32_t>(i) * 10,
                         5};
  }
  Bytes index = encode_index(entries);
  EXPECT_EQ(std::string(index.begin(), index.begin() + 4), "WVI2");
  auto back = decode_index(index, "index/x");
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[2].first, entries[2].first);
  EXPECT_EQ(back[2].second.offset, 2000u);
  EXPECT_EQ(back[2].second.length, 77u);
  EXPECT_EQ(back[2].second.xxh3, 0x112233445566778aull);
  EXPECT_EQ(back[2].second.inner_offset, 20u);
  EXPECT_EQ(back[2].second.inner_length, 5u);
  index.pop_back();
  EXPECT_THROW(decode_index(index, "index/x"), Error);
  Bytes bad = encode_index(entries);
  bad[0] = 'X';
  EXPECT_THROW(decode_index(bad, "index/x"), Error);
  entries[1].second.xxh3.reset();  // every entry of a format-2 index records it
  EXPECT_THROW(encode_index(entries), Error);
}

// Indexes written before format 2 (no XXH3 per entry) still read.
TEST(ChunkIndex, ReadsFormatOne) {
  Bytes v1{'W', 'V', 'I', '1', 1, 0, 0, 0};
  v1.resize(8 + 76, 0);
  v1[8] = 0xab;       // chunk id
  v1[8 + 64] = 0x10;  // offset 16
  v1[8 + 72] = 0x2a;  // length 42
  auto back = decode_index(v1, "index/old");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].first[0], 0xab);
  EXPECT_EQ(back[0].second.offset, 16u);
  EXPECT_EQ(back[0].second.length, 42u);
  EXPECT_FALSE(back[0].second.xxh3.has_value());
  v1.push_back(0);
  EXPECT_THROW(decode_index(v1, "index/old"), Error);
}

// Restore's check (the XXH3 the index recorded) catches an index that places
// a chunk on another chunk's intact envelope, as the full id check does; with
// a format-1 entry it falls back to the id check.
TEST(ChunkStore, RecordedCheckCatchesAMisplacedEnvelope) {
  Repo r;
  ChunkId a, b;
  {
    ChunkStore chunks(*r.repo);
    a = chunks.add(chunk(1)).id;
    b = chunks.add(chunk(2)).id;
    chunks.flush();
    Bytes out;
    ASSERT_TRUE(chunks.read_into(a, out, ChunkCheck::kRecorded));
    EXPECT_EQ(out, chunk(1));
  }
  // Rewrite the one index so that a points at b's envelope.
  auto listed = r.store->list("index/");
  ASSERT_EQ(listed.size(), 1u);
  auto entries = decode_index(*r.repo->get_object(listed[0].name), listed[0].name);
  ChunkLocation a_loc, b_loc;
  for (const auto& [id, loc] : entries) (id == a ? a_loc : b_loc) = loc;
  for (auto& [id, loc] : entries)
    if (id == a) loc = {b_loc.pack, b_loc.offset, b_loc.length, a_loc.xxh3, 0, a_loc.inner_length};
  r.store->remove(listed[0].name);
  r.repo->put_object("index/" + std::string(64, '1'), encode_index(entries));
  {
    ChunkStore chunks(*r.repo);
    Bytes out;
    try {
      chunks.read_into(a, out, ChunkCheck::kRecorded);
      ADD_FAILURE() << "misplaced envelope not caught";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      EXPECT_NE(std::string(e.what()).find("not the one the index recorded"), std::string::npos)
          << e.what();
    }
    EXPECT_THROW(chunks.read(a), Error);
    ASSERT_TRUE(chunks.read_into(b, out, ChunkCheck::kRecorded));
    EXPECT_EQ(out, chunk(2));
  }
  // The same misplacement in a format-1 index: caught by the id check.
  Bytes v1{'W', 'V', 'I', '1'};
  append_le<std::uint32_t>(v1, 1);
  v1.insert(v1.end(), a.begin(), a.end());
  v1.insert(v1.end(), b_loc.pack.begin(), b_loc.pack.end());
  append_le<std::uint64_t>(v1, b_loc.offset);
  append_le<std::uint32_t>(v1, b_loc.length);
  r.store->remove("index/" + std::string(64, '1'));
  r.repo->put_object("index/" + std::string(64, '2'), v1);
  ChunkStore chunks(*r.repo);
  Bytes out;
  EXPECT_THROW(chunks.read_into(a, out, ChunkCheck::kRecorded), Error);
  EXPECT_FALSE(chunks.read_into(b, out, ChunkCheck::kRecorded));  // no index lists b now
}

}  // namespace
}  // namespace walvault::repo
