// WAL catalogues over a repository in memory with 1 GiB segments (four to a
// log directory, so full directories are cheap): the format round-trips,
// every crafted catalogue is corruption naming its object, planning merges
// catalogues with segments not yet compacted (and trusts a full catalogue
// without listing its directory), and removing segments keeps catalogues
// truthful.
#include "repo/wal_catalogue.h"

#include <gtest/gtest.h>

#include "codec/crypto.h"
#include "core/error.h"
#include "repo/layout.h"
#include "store/mem_store.h"
#include "support/synthetic_meta.h"

namespace walvault::repo {
namespace {

constexpr std::uint32_t kSegSize = 1u << 30;  // 4 segments a directory

struct Fixture {
  Fixture() : store(std::make_shared<store::MemStore>()) {
    Repository::init(*store, {});
    repo = Repository::open(store, {});
    walvault::testing::bind_synthetic_cluster(*repo, kSegSize);
  }
  SegmentMeta push(std::uint64_t segno, bool block_map = false) {
    SegmentMeta m = walvault::testing::synthetic_segment_meta(1, segno, kSegSize,
                                                              1'800'000'000'000'000 + segno);
    repo->put_object(meta_object_name(m.name), as_bytes(meta_to_json(m)));
    if (block_map) repo->put_object(block_map_object_name(m.name), as_bytes("map"));
    return m;
  }
  std::vector<std::string> catalogues() {
    std::vector<std::string> out;
    for (const auto& info : store->list(kCataloguePrefix)) out.push_back(info.name);
    return out;
  }
  std::vector<std::string> bundles() {
    std::vector<std::string> out;
    for (const auto& info : store->list(kCatalogueBundlePrefix)) out.push_back(info.name);
    return out;
  }
  // What planning sees, as (name, JSON) pairs, and the requests it made.
  std::vector<std::string> planned(CatalogueReadStats* stats = nullptr) {
    std::vector<std::string> out;
    for (const SegmentMeta& m : read_catalogued_meta(*repo, stats)) out.push_back(meta_to_json(m));
    return out;
  }
  std::shared_ptr<store::MemStore> store;
  std::unique_ptr<Repository> repo;
};

// Runs `call`, which must throw Error(kCorruption) whose message starts
// with "<object>: "; `what` names the case.
template <typename Call>
void expect_corruption_naming(const std::string& object, const std::string& what, Call call) {
  try {
    call();
    ADD_FAILURE() << what << " was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << what;
    EXPECT_TRUE(std::string(e.what()).starts_with(object + ": ")) << what << ": " << e.what();
  }
}

std::vector<std::string> json_of(const std::vector<SegmentMeta>& metas) {
  std::vector<std::string> out;
  for (const SegmentMeta& m : metas) out.push_back(meta_to_json(m));
  return out;
}

TEST(WalCatalogue, RoundTripsAndIsNamedByItsContent) {
  Fixture f;
  WalCatalogue c{"0000000100000000", kSegSize, {}};
  for (std::uint64_t s = 0; s < 4; ++s) {
    CatalogueEntry e;
    e.meta = f.push(s, s == 2);
    e.meta_json = meta_to_json(e.meta);
    e.has_block_map = s == 2;
    c.entries.push_back(e);
  }
  EXPECT_TRUE(c.full());
  const std::string object = write_catalogue(*f.repo, c);
  EXPECT_TRUE(object.starts_with("wal/cat/0000000100000000/")) << object;
  EXPECT_EQ(write_catalogue(*f.repo, c), object);  // same bytes, same name
  const auto back = read_catalogue(*f.repo, object);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->directory, c.directory);
  ASSERT_EQ(back->entries.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(back->entries[i].meta_json, c.entries[i].meta_json);
    EXPECT_EQ(back->entries[i].has_block_map, i == 2);
  }
  EXPECT_TRUE(check_catalogue(*f.repo, object).empty());
}

// Each damage is Error(kCorruption) naming the object, from decode and from
// planning alike.
TEST(WalCatalogue, CraftedCataloguesAreCorruptionNamingTheObject) {
  Fixture f;
  WalCatalogue c{"0000000100000000", kSegSize, {}};
  for (std::uint64_t s = 0; s < 2; ++s) {
    CatalogueEntry e;
    e.meta = f.push(s);
    e.meta_json = meta_to_json(e.meta);
    c.entries.push_back(e);
  }
  const Bytes good = encode_catalogue(c);
  auto with = [&](auto change) {
    Bytes b = good;
    change(b);
    return b;
  };
  const std::string other_dir_entry =
      meta_to_json(walvault::testing::synthetic_segment_meta(1, 5, kSegSize, 1));
  const std::vector<std::pair<std::string, Bytes>> crafted = {
      {"empty", {}},
      {"magic", with([](Bytes& b) { b[0] = 'X'; })},
      {"version", with([](Bytes& b) { b[8] = 2; })},
      {"segment size", with([](Bytes& b) { b[12] = 1; })},
      {"directory", with([](Bytes& b) { b[16] = 'g'; })},
      {"count", with([](Bytes& b) { b[32] = 200; })},
      {"flags", with([](Bytes& b) { b[36] = 0x80; })},
      {"length", with([](Bytes& b) { b[37] = 0xFF, b[38] = 0xFF, b[39] = 0xFF; })},
      {"truncated", Bytes(good.begin(), good.end() - 3)},
      {"trailing", with([](Bytes& b) { b.push_back(0); })},
      {"json", with([](Bytes& b) { b[41] = '!'; })},
      {"order",
       [&] {
         WalCatalogue swapped = c;
         std::swap(swapped.entries[0], swapped.entries[1]);
         Bytes b = good;  // re-encode by hand: encode_catalogue refuses it
         b.resize(36);
         for (const auto& e : swapped.entries) {
           b.push_back(0);
           append_le<std::uint32_t>(b, static_cast<std::uint32_t>(e.meta_json.size()));
           b.insert(b.end(), e.meta_json.begin(), e.meta_json.end());
         }
         return b;
       }()},
      {"other directory",
       [&] {
         Bytes b(good.begin(), good.begin() + 36);
         b[32] = 1;
         b.push_back(0);
         append_le<std::uint32_t>(b, static_cast<std::uint32_t>(other_dir_entry.size()));
         b.insert(b.end(), other_dir_entry.begin(), other_dir_entry.end());
         return b;
       }()},
  };
  const std::string object = "wal/cat/0000000100000000/" + std::string(64, 'a');
  for (const auto& c : crafted)  // (clang 14 cannot capture a structured binding)
    expect_corruption_naming(object, c.first, [&] { decode_catalogue(c.second, object); });
  // Stored under a name its content does not hash to: planning refuses it.
  f.repo->put_object(object, good);
  expect_corruption_naming(object, "a catalogue under a foreign name", [&] { f.planned(); });
  EXPECT_EQ(check_catalogue(*f.repo, object),
            std::vector<std::string>{"content does not match its name"});
}

TEST(WalCatalogue, PlanningMergesCataloguesWithSegmentsNotYetCompacted) {
  Fixture f;
  std::vector<SegmentMeta> all;
  for (std::uint64_t s = 0; s < 10; ++s) all.push_back(f.push(s, s % 3 == 0));
  CatalogueReadStats before;
  EXPECT_EQ(f.planned(&before), json_of(all));
  EXPECT_EQ(before.meta_reads, 10u);

  const CompactReport first = compact_wal(*f.repo);
  EXPECT_EQ(first.directories, 3u);
  EXPECT_EQ(first.catalogues_written, 3u);
  EXPECT_EQ(first.full_directories, 2u);
  EXPECT_EQ(first.bundles_written, 1u);
  EXPECT_EQ(first.catalogues_bundled, 2u);           // the full ones
  const CompactReport again = compact_wal(*f.repo);  // nothing changed
  EXPECT_EQ(again.catalogues_written + again.catalogues_removed, 0u);
  EXPECT_EQ(again.bundles_written + again.bundles_removed, 0u);
  for (const std::string& c : f.catalogues()) EXPECT_TRUE(check_catalogue(*f.repo, c).empty()) << c;
  ASSERT_EQ(f.bundles().size(), 1u);
  EXPECT_TRUE(check_catalogue_bundle(*f.repo, f.bundles().front()).empty());

  // Two more segments complete the third directory after its catalogue.
  all.push_back(f.push(10));
  all.push_back(f.push(11));
  CatalogueReadStats after;
  EXPECT_EQ(f.planned(&after), json_of(all));
  EXPECT_EQ(after.bundles, 1u);
  EXPECT_EQ(after.catalogues, 1u);       // the third directory's: no bundle holds it
  EXPECT_EQ(after.directory_lists, 1u);  // the full ones are trusted unlisted
  EXPECT_EQ(after.meta_reads, 2u);

  const CompactReport second = compact_wal(*f.repo);
  EXPECT_EQ(second.catalogues_written, 1u);
  EXPECT_EQ(second.catalogues_removed, 1u);  // the third directory's old one
  EXPECT_EQ(second.bundles_written, 1u);
  EXPECT_EQ(second.bundles_removed, 1u);
  EXPECT_EQ(second.catalogues_bundled, 3u);
  EXPECT_EQ(f.catalogues().size(), 3u);
  CatalogueReadStats compacted;
  EXPECT_EQ(f.planned(&compacted), json_of(all));
  EXPECT_EQ(compacted.bundles, 1u);
  EXPECT_EQ(compacted.catalogues, 0u);  // all three from the one bundle
  EXPECT_EQ(compacted.directory_lists, 0u);
  EXPECT_EQ(compacted.meta_reads, 0u);
  EXPECT_EQ(read_all_meta(*f.repo).size(), 12u);
}

// However many full directories there are, planning reads one bundle.
TEST(WalCatalogue, PlanningReadsOneBundleForAllFullDirectories) {
  Fixture f;
  std::vector<SegmentMeta> all;
  for (std::uint64_t s = 0; s < 4 * 40 + 1; ++s) all.push_back(f.push(s));
  EXPECT_EQ(compact_wal(*f.repo).catalogues_bundled, 40u);
  CatalogueReadStats stats;
  EXPECT_EQ(f.planned(&stats), json_of(all));
  EXPECT_EQ(stats.bundles, 1u);
  EXPECT_EQ(stats.catalogues, 1u);  // the last directory's, one segment, not full
  EXPECT_EQ(stats.directory_lists, 1u);
  EXPECT_EQ(stats.meta_reads, 0u);
}

TEST(WalCatalogue, BundlesRoundTripAndCraftedOnesAreCorruptionNamingTheObject) {
  Fixture f;
  for (std::uint64_t s = 0; s < 8; ++s) f.push(s);
  compact_wal(*f.repo);
  ASSERT_EQ(f.bundles().size(), 1u);
  const std::string object = f.bundles().front();
  EXPECT_TRUE(object.starts_with("wal/catb/")) << object;
  const auto bundle = read_bundle(*f.repo, object);
  ASSERT_TRUE(bundle);
  ASSERT_EQ(bundle->size(), 2u);
  EXPECT_EQ((*bundle)[0].object, f.catalogues()[0]);
  EXPECT_EQ((*bundle)[1].object, f.catalogues()[1]);
  EXPECT_EQ((*bundle)[0].plaintext, *f.repo->get_object(f.catalogues()[0]));
  const Bytes good = encode_bundle(*bundle);
  EXPECT_EQ(decode_bundle(good, object).size(), 2u);
  auto with = [&](auto change) {
    Bytes b = good;
    change(b);
    return b;
  };
  const std::vector<std::pair<std::string, Bytes>> crafted = {
      {"empty", {}},
      {"magic", with([](Bytes& b) { b[0] = 'X'; })},
      {"version", with([](Bytes& b) { b[8] = 2; })},
      {"count", with([](Bytes& b) { b[12] = 3; })},
      {"name length", with([](Bytes& b) { b[16] = 0xFF; })},
      {"name", with([](Bytes& b) { b[18] = 'X'; })},
      {"length", with([](Bytes& b) { b[18 + 89] = 0xFF, b[18 + 90] = 0xFF; })},
      {"truncated", Bytes(good.begin(), good.end() - 3)},
      {"trailing", with([](Bytes& b) { b.push_back(0); })},
  };
  for (const auto& c : crafted)  // (clang 14 cannot capture a structured binding)
    expect_corruption_naming(object, c.first, [&] { decode_bundle(c.second, object); });
  // Out of order: the second entry first (encode_bundle refuses to write it).
  Bytes swapped(good.begin(), good.begin() + 16);
  for (const BundledCatalogue* c : {&(*bundle)[1], &(*bundle)[0]}) {
    append_le<std::uint16_t>(swapped, static_cast<std::uint16_t>(c->object.size()));
    swapped.insert(swapped.end(), c->object.begin(), c->object.end());
    append_le<std::uint32_t>(swapped, static_cast<std::uint32_t>(c->plaintext.size()));
    swapped.insert(swapped.end(), c->plaintext.begin(), c->plaintext.end());
  }
  EXPECT_THROW(decode_bundle(swapped, object), Error);
  EXPECT_THROW(encode_bundle({(*bundle)[1], (*bundle)[0]}), Error);

  // Stored under a name its content does not hash to.
  f.store->remove(object);
  f.store->put(object, f.repo->seal_object(with([](Bytes& b) { b.push_back(0); })));
  EXPECT_THROW(f.planned(), Error);
  EXPECT_EQ(check_catalogue_bundle(*f.repo, object),
            std::vector<std::string>{"content does not match its name"});
}

// A bundle whose own name is right but whose copy of a catalogue is not that
// catalogue (another's plaintext under its name): planning refuses it.
TEST(WalCatalogue, ABundledCopyMustMatchTheCataloguesName) {
  Fixture f;
  for (std::uint64_t s = 0; s < 8; ++s) f.push(s);
  compact_wal(*f.repo);
  const std::vector<std::string> catalogues = f.catalogues();
  ASSERT_EQ(catalogues.size(), 2u);
  const std::string honest = f.bundles().front();
  std::vector<BundledCatalogue> forged = {{catalogues[0], *f.repo->get_object(catalogues[1])},
                                          {catalogues[1], *f.repo->get_object(catalogues[1])}};
  const Bytes plaintext = encode_bundle(forged);
  f.store->remove(honest);
  // Named as compact names a bundle: by the SHA-256 of its plaintext.
  const codec::Digest d = codec::sha256(plaintext);
  ChunkId id{};
  std::copy(d.begin(), d.end(), id.begin());
  const std::string object = catalogue_bundle_object_name(id);
  f.repo->put_object(object, plaintext);
  try {
    f.planned();
    ADD_FAILURE() << "planned from a forged copy";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_EQ(std::string(e.what()),
              object + ": its copy of " + catalogues[0] + " does not match that name");
  }
  EXPECT_EQ(check_catalogue_bundle(*f.repo, object),
            std::vector<std::string>{"its copy of " + catalogues[0] + " does not match that name"});
}

// A segment a directory's catalogue lists but whose metadata is gone (a
// crash between the two) is not planned; one it lacks is.
TEST(WalCatalogue, TheMetadataIsTheTruthForDirectoriesThatAreNotFull) {
  Fixture f;
  for (std::uint64_t s = 0; s < 3; ++s) f.push(s);
  compact_wal(*f.repo);
  ASSERT_TRUE(f.store->remove(meta_object_name(pg::segment_file_name(1, 1, kSegSize))));
  const SegmentMeta late = f.push(3);
  std::vector<std::string> names;
  for (const SegmentMeta& m : read_all_meta(*f.repo)) names.push_back(m.name);
  EXPECT_EQ(names, (std::vector<std::string>{pg::segment_file_name(1, 0, kSegSize),
                                             pg::segment_file_name(1, 2, kSegSize), late.name}));
  EXPECT_EQ(check_catalogue(*f.repo, f.catalogues().front()),
            std::vector<std::string>{"lists segment " + pg::segment_file_name(1, 1, kSegSize) +
                                     " whose metadata is missing"});
}

// expire's order: catalogues first, then the metadata. A full catalogue is
// trusted unlisted, so without the rewrite the removed segments would be planned.
TEST(WalCatalogue, RemovingSegmentsRewritesTheCataloguesThatListThem) {
  Fixture f;
  std::vector<SegmentMeta> all;
  for (std::uint64_t s = 0; s < 8; ++s) all.push_back(f.push(s));
  compact_wal(*f.repo);
  std::vector<std::string> gone;
  for (std::uint64_t s = 0; s < 5; ++s) gone.push_back(meta_object_name(all[s].name));
  ASSERT_EQ(f.bundles().size(), 1u);  // copies of both full catalogues
  EXPECT_EQ(remove_catalogued_segments(*f.repo, gone), 2u);
  f.store->remove_many(gone);
  // The bundle still holds the old copies; planning takes none of them, as
  // the catalogues they copy are gone.
  CatalogueReadStats stats;
  EXPECT_EQ(f.planned(&stats), json_of({all.begin() + 5, all.end()}));
  EXPECT_EQ(stats.bundles, 1u);
  EXPECT_EQ(stats.catalogues, 1u);       // the second directory's rewritten one
  ASSERT_EQ(f.catalogues().size(), 1u);  // the first directory's is gone, the second's rewritten
  EXPECT_TRUE(check_catalogue(*f.repo, f.catalogues().front()).empty());
  EXPECT_TRUE(check_catalogue_bundle(*f.repo, f.bundles().front()).empty());  // stale, not wrong
  // No directory is full now: the next compact removes the bundle.
  const CompactReport report = compact_wal(*f.repo);
  EXPECT_EQ(report.bundles_written, 0u);
  EXPECT_EQ(report.bundles_removed, 1u);
  EXPECT_TRUE(f.bundles().empty());
  EXPECT_EQ(f.planned(), json_of({all.begin() + 5, all.end()}));
}

}  // namespace
}  // namespace walvault::repo
