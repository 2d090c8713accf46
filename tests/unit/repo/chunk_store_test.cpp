// Chunks and packs: dedup across runs, ranged reads, and corruption caught.
#include "repo/chunk_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/error.h"
#include "store/mem_store.h"
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

TEST(ChunkIndex, RoundTripAndDamage) {
  std::vector<std::pair<ChunkId, ChunkLocation>> entries(3);
  for (int i = 0; i < 3; ++i) {
    entries[i].first.fill(static_cast<std::uint8_t>(i));
    entries[i].second = {ChunkId{}, static_cast<std::uint64_t>(i) * 1000, 77};
  }
  Bytes index = encode_index(entries);
  auto back = decode_index(index, "index/x");
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[2].first, entries[2].first);
  EXPECT_EQ(back[2].second.offset, 2000u);
  index.pop_back();
  EXPECT_THROW(decode_index(index, "index/x"), Error);
  Bytes bad = encode_index(entries);
  bad[0] = 'X';
  EXPECT_THROW(decode_index(bad, "index/x"), Error);
}

}  // namespace
}  // namespace walvault::repo
