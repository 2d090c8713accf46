#include "repo/wal_catalogue.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include "codec/crypto.h"
#include "core/error.h"
#include "core/parallel.h"
#include "repo/cluster.h"
#include "repo/layout.h"

namespace walvault::repo {

namespace {

constexpr char kMagic[8] = {'W', 'V', 'W', 'A', 'L', 'C', 'A', 'T'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderSize = 8 + 4 + 4 + 16 + 4;
constexpr std::uint8_t kHasBlockMap = 0x01;
constexpr char kBundleMagic[8] = {'W', 'V', 'C', 'A', 'T', 'B', 'D', 'L'};
constexpr std::uint32_t kBundleVersion = 1;
constexpr std::size_t kBundleHeaderSize = 8 + 4 + 4;
// Threads reading catalogues, directory listings and metadata at once: each
// is a round trip on an object store (as chunk_store.cpp's index loaders).
constexpr int kReaders = 16;

std::uint64_t segments_per_directory(std::uint32_t segment_size) {
  return (std::uint64_t{1} << 32) / segment_size;
}

std::string directory_of(const std::string& segment_name) { return segment_name.substr(0, 16); }

ChunkId content_id(const Repository& repo, ByteView plaintext) {
  const auto& key = repo.id_key();
  const codec::Digest d = key ? codec::hmac_sha256(*key, plaintext) : codec::sha256(plaintext);
  ChunkId id{};
  std::copy(d.begin(), d.end(), id.begin());
  return id;
}

// Checks that `meta` is a segment of `directory` whose name, timeline and
// number agree for `segment_size`; the problem otherwise.
std::optional<std::string> entry_problem(const SegmentMeta& meta, const std::string& directory,
                                         std::uint32_t segment_size) {
  const auto name = pg::parse_wal_file_name(meta.name);
  if (!name || name->kind != pg::WalFileKind::kSegment) return meta.name + " is no segment name";
  if (directory_of(meta.name) != directory) return meta.name + " is not in " + directory;
  if (name->timeline != meta.timeline || pg::segment_number(*name, segment_size) != meta.segno ||
      name->seg >= segments_per_directory(segment_size))
    return meta.name + ": timeline or segment number disagree with the name";
  return std::nullopt;
}

}  // namespace

bool WalCatalogue::full() const {
  return segment_size != 0 && entries.size() == segments_per_directory(segment_size);
}

Bytes encode_catalogue(const WalCatalogue& c) {
  if (c.directory.size() != 16 || !pg::is_valid_segment_size(c.segment_size))
    throw Error(ErrorCode::kInternal, "catalogue of " + c.directory + ": bad header");
  Bytes out(kMagic, kMagic + sizeof kMagic);
  append_le<std::uint32_t>(out, kVersion);
  append_le<std::uint32_t>(out, c.segment_size);
  out.insert(out.end(), c.directory.begin(), c.directory.end());
  append_le<std::uint32_t>(out, static_cast<std::uint32_t>(c.entries.size()));
  for (std::size_t i = 0; i < c.entries.size(); ++i) {
    const CatalogueEntry& e = c.entries[i];
    if (entry_problem(e.meta, c.directory, c.segment_size) ||
        (i > 0 && c.entries[i - 1].meta.name >= e.meta.name))
      throw Error(ErrorCode::kInternal,
                  "catalogue of " + c.directory + ": bad entry " + e.meta.name);
    out.push_back(e.has_block_map ? kHasBlockMap : 0);
    append_le<std::uint32_t>(out, static_cast<std::uint32_t>(e.meta_json.size()));
    out.insert(out.end(), e.meta_json.begin(), e.meta_json.end());
  }
  return out;
}

WalCatalogue decode_catalogue(ByteView in, const std::string& object) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kCorruption, object + ": " + why);
  };
  if (in.size() < kHeaderSize || std::memcmp(in.data(), kMagic, sizeof kMagic) != 0)
    throw bad("not a WAL catalogue");
  if (const auto v = load_le<std::uint32_t>(in.data() + 8); v != kVersion)
    throw bad("unknown catalogue version " + std::to_string(v));
  WalCatalogue c;
  c.segment_size = load_le<std::uint32_t>(in.data() + 12);
  if (!pg::is_valid_segment_size(c.segment_size))
    throw bad("segment size " + std::to_string(c.segment_size) + " is not valid");
  c.directory.assign(reinterpret_cast<const char*>(in.data() + 16), 16);
  if (c.directory.find_first_not_of("0123456789ABCDEF") != std::string::npos)
    throw bad("directory is not 16 upper-case hex digits");
  if (auto named = parse_catalogue_object(object); named && named->directory != c.directory)
    throw bad("holds directory " + c.directory + ", not " + named->directory);
  const std::uint32_t count = load_le<std::uint32_t>(in.data() + 32);
  if (count > segments_per_directory(c.segment_size))
    throw bad(std::to_string(count) + " entries, more than a directory holds");
  std::size_t at = kHeaderSize;
  c.entries.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    if (in.size() - at < 5) throw bad("truncated entry " + std::to_string(i));
    const std::uint8_t flags = in[at];
    const std::uint32_t length = load_le<std::uint32_t>(in.data() + at + 1);
    at += 5;
    if (flags & ~kHasBlockMap) throw bad("entry " + std::to_string(i) + ": unknown flags");
    if (in.size() - at < length) throw bad("truncated entry " + std::to_string(i));
    CatalogueEntry e;
    e.has_block_map = flags & kHasBlockMap;
    e.meta_json.assign(reinterpret_cast<const char*>(in.data() + at), length);
    at += length;
    e.meta = meta_from_json(e.meta_json, object);
    if (auto problem = entry_problem(e.meta, c.directory, c.segment_size)) throw bad(*problem);
    if (!c.entries.empty() && c.entries.back().meta.name >= e.meta.name)
      throw bad("entries out of order at " + e.meta.name);
    c.entries.push_back(std::move(e));
  }
  if (at != in.size()) throw bad("trailing bytes after the last entry");
  return c;
}

namespace {

// The plaintext of `object`, named by its content id `id`; std::nullopt when
// it is gone. Throws Error(kCorruption) when the content does not hash to it.
std::optional<Bytes> read_content_named(Repository& repo, const std::string& object,
                                        const ChunkId& id) {
  auto plaintext = repo.get_object(object);
  if (plaintext && content_id(repo, *plaintext) != id)
    throw Error(ErrorCode::kCorruption, object + ": content does not match its name");
  return plaintext;
}

// Stores a catalogue's plaintext under its content name, which it returns.
std::string store_catalogue(Repository& repo, const std::string& directory,
                            const Bytes& plaintext) {
  const std::string object = catalogue_object_name(directory, content_id(repo, plaintext));
  repo.put_object(object, plaintext);  // kAlreadyExists: the same bytes are there
  return object;
}

}  // namespace

std::optional<WalCatalogue> read_catalogue(Repository& repo, const std::string& object) {
  const auto named = parse_catalogue_object(object);
  if (!named) throw Error(ErrorCode::kCorruption, object + ": not a catalogue name");
  auto plaintext = read_content_named(repo, object, named->content_id);
  if (!plaintext) return std::nullopt;
  return decode_catalogue(*plaintext, object);
}

std::string write_catalogue(Repository& repo, const WalCatalogue& catalogue) {
  return store_catalogue(repo, catalogue.directory, encode_catalogue(catalogue));
}

Bytes encode_bundle(const std::vector<BundledCatalogue>& catalogues) {
  Bytes out(kBundleMagic, kBundleMagic + sizeof kBundleMagic);
  append_le<std::uint32_t>(out, kBundleVersion);
  append_le<std::uint32_t>(out, static_cast<std::uint32_t>(catalogues.size()));
  for (std::size_t i = 0; i < catalogues.size(); ++i) {
    const BundledCatalogue& c = catalogues[i];
    if (!parse_catalogue_object(c.object) || (i > 0 && catalogues[i - 1].object >= c.object) ||
        c.plaintext.size() > UINT32_MAX)
      throw Error(ErrorCode::kInternal, "catalogue bundle: bad entry " + c.object);
    append_le<std::uint16_t>(out, static_cast<std::uint16_t>(c.object.size()));
    out.insert(out.end(), c.object.begin(), c.object.end());
    append_le<std::uint32_t>(out, static_cast<std::uint32_t>(c.plaintext.size()));
    out.insert(out.end(), c.plaintext.begin(), c.plaintext.end());
  }
  return out;
}

std::vector<BundledCatalogue> decode_bundle(ByteView in, const std::string& object) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kCorruption, object + ": " + why);
  };
  if (in.size() < kBundleHeaderSize ||
      std::memcmp(in.data(), kBundleMagic, sizeof kBundleMagic) != 0)
    throw bad("not a WAL catalogue bundle");
  if (const auto v = load_le<std::uint32_t>(in.data() + 8); v != kBundleVersion)
    throw bad("unknown catalogue bundle version " + std::to_string(v));
  const std::uint32_t count = load_le<std::uint32_t>(in.data() + 12);
  std::vector<BundledCatalogue> out;
  std::size_t at = kBundleHeaderSize;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::string which = "entry " + std::to_string(i);
    if (in.size() - at < 2) throw bad("truncated " + which);
    const std::uint16_t name_length = load_le<std::uint16_t>(in.data() + at);
    at += 2;
    if (in.size() - at < name_length + std::size_t{4}) throw bad("truncated " + which);
    BundledCatalogue c;
    c.object.assign(reinterpret_cast<const char*>(in.data() + at), name_length);
    at += name_length;
    if (!parse_catalogue_object(c.object)) throw bad(which + " is not named as a catalogue");
    if (!out.empty() && out.back().object >= c.object) throw bad(which + " out of order");
    const std::uint32_t length = load_le<std::uint32_t>(in.data() + at);
    at += 4;
    if (in.size() - at < length) throw bad("truncated " + which);
    c.plaintext.assign(in.begin() + static_cast<std::ptrdiff_t>(at),
                       in.begin() + static_cast<std::ptrdiff_t>(at + length));
    at += length;
    out.push_back(std::move(c));
  }
  if (at != in.size()) throw bad("trailing bytes after the last entry");
  return out;
}

std::optional<std::vector<BundledCatalogue>> read_bundle(Repository& repo,
                                                         const std::string& object) {
  const auto id = parse_catalogue_bundle_object(object);
  if (!id) throw Error(ErrorCode::kCorruption, object + ": not a catalogue bundle name");
  auto plaintext = read_content_named(repo, object, *id);
  if (!plaintext) return std::nullopt;
  return decode_bundle(*plaintext, object);
}

namespace {

// A catalogue's plaintext as a bundle holds it.
struct BundleCopy {
  std::string bundle;
  Bytes plaintext;
};
using BundleCopies = std::map<std::string, BundleCopy>;  // by catalogue name

// The catalogue `object` from `copy`: its plaintext must hash to the name.
WalCatalogue catalogue_from_bundle(const Repository& repo, const std::string& object,
                                   const BundleCopy& copy) {
  const auto named = parse_catalogue_object(object);
  if (!named || content_id(repo, copy.plaintext) != named->content_id)
    throw Error(ErrorCode::kCorruption,
                copy.bundle + ": its copy of " + object + " does not match that name");
  return decode_catalogue(copy.plaintext, object);
}

// The copies that `bundles` (wal/catb/ names) hold of the catalogues in
// `listed`; a copy of a catalogue not listed (rewritten or removed since the
// bundle was made) is left out, and so is a bundle gone since its listing.
BundleCopies read_bundle_copies(Repository& repo, const std::vector<std::string>& bundles,
                                const std::set<std::string>& listed, int threads) {
  std::vector<std::optional<std::vector<BundledCatalogue>>> read(bundles.size());
  parallel_for(bundles.size(), threads,
               [&](std::size_t i) { read[i] = read_bundle(repo, bundles[i]); });
  BundleCopies copies;
  for (std::size_t i = 0; i < bundles.size(); ++i) {
    if (!read[i]) continue;
    for (BundledCatalogue& c : *read[i])
      if (listed.count(c.object))
        copies.emplace(c.object, BundleCopy{bundles[i], std::move(c.plaintext)});
  }
  return copies;
}

// One log directory as a reader sees it.
struct DirectoryView {
  std::string directory;
  std::uint64_t catalogue_gets = 0;                 // of `catalogues`, those no bundle held
  std::vector<std::string> catalogues;              // objects listed for it
  std::map<std::string, SegmentMeta> known;         // from its catalogues, by name
  bool full = false;                                // the catalogues list every name
  std::vector<std::string> missing;                 // meta objects no catalogue has
  std::vector<SegmentMeta> result;                  // from the catalogues
  std::vector<std::optional<SegmentMeta>> fetched;  // missing's, read one by one
};

// Reads `view`'s catalogues into `known`, from a bundle's copy where there is
// one; a catalogue gone since the listing is skipped (a concurrent compact
// replaced it: the listing below covers it).
void load_catalogues(Repository& repo, DirectoryView& view, std::uint32_t segment_size,
                     const BundleCopies& copies) {
  for (const std::string& object : view.catalogues) {
    std::optional<WalCatalogue> catalogue;
    if (auto copy = copies.find(object); copy != copies.end()) {
      catalogue = catalogue_from_bundle(repo, object, copy->second);
    } else {
      catalogue = read_catalogue(repo, object);
      ++view.catalogue_gets;
    }
    if (!catalogue) continue;
    if (catalogue->segment_size != segment_size)
      throw Error(ErrorCode::kCorruption, object + ": segment size " +
                                              std::to_string(catalogue->segment_size) +
                                              ", the cluster's is " + std::to_string(segment_size));
    for (CatalogueEntry& e : catalogue->entries) view.known.emplace(e.meta.name, std::move(e.meta));
  }
  view.full = view.known.size() == segments_per_directory(segment_size);
}

// Lists a directory that is not full: what its catalogues have is kept, only
// for segments still listed; the rest goes to `missing`.
void list_directory(Repository& repo, DirectoryView& view) {
  for (const store::ObjectInfo& info : repo.store().list(kMetaPrefix + view.directory + "/")) {
    const auto name = parse_meta_object(info.name);
    if (!name) continue;
    if (auto it = view.known.find(name->name); it != view.known.end())
      view.result.push_back(std::move(it->second));
    else
      view.missing.push_back(info.name);
  }
}

}  // namespace

std::vector<SegmentMeta> read_catalogued_meta(Repository& repo, CatalogueReadStats* stats) {
  std::vector<std::string> directories;
  std::vector<store::ObjectInfo> catalogues, bundle_infos;
  std::optional<ClusterInfo> cluster;
  parallel_for(4, 4, [&](std::size_t i) {
    if (i == 0) directories = repo.store().list_directories(kMetaPrefix);
    if (i == 1) catalogues = repo.store().list(kCataloguePrefix);
    if (i == 2) cluster = read_cluster(repo);
    if (i == 3) bundle_infos = repo.store().list(kCatalogueBundlePrefix);
  });
  std::vector<DirectoryView> views(directories.size());
  std::map<std::string, DirectoryView*> by_directory;
  for (std::size_t i = 0; i < directories.size(); ++i) {
    views[i].directory = directories[i];
    by_directory[directories[i]] = &views[i];
  }
  // Without a bound cluster no segment size tells what is full: list all.
  if (cluster)
    for (const store::ObjectInfo& info : catalogues)
      if (auto named = parse_catalogue_object(info.name))
        if (auto it = by_directory.find(named->directory); it != by_directory.end())
          it->second->catalogues.push_back(info.name);

  BundleCopies copies;
  std::vector<std::string> bundles;
  if (cluster) {
    std::set<std::string> listed;
    for (const store::ObjectInfo& info : catalogues) listed.insert(info.name);
    for (const store::ObjectInfo& info : bundle_infos)
      if (parse_catalogue_bundle_object(info.name)) bundles.push_back(info.name);
    copies = read_bundle_copies(repo, bundles, listed, kReaders);
  }

  std::vector<DirectoryView*> with_catalogues, to_list;
  for (DirectoryView& v : views)
    if (!v.catalogues.empty()) with_catalogues.push_back(&v);
  parallel_for(with_catalogues.size(), kReaders, [&](std::size_t i) {
    load_catalogues(repo, *with_catalogues[i], cluster->segment_size, copies);
  });
  for (DirectoryView& v : views) {
    if (!v.full) {
      to_list.push_back(&v);
      continue;
    }
    for (auto& [name, meta] : v.known) v.result.push_back(std::move(meta));
  }
  parallel_for(to_list.size(), kReaders, [&](std::size_t i) { list_directory(repo, *to_list[i]); });

  std::vector<std::pair<DirectoryView*, std::size_t>> gets;  // (directory, index in missing)
  for (DirectoryView* v : to_list) {
    v->fetched.resize(v->missing.size());
    for (std::size_t k = 0; k < v->missing.size(); ++k) gets.emplace_back(v, k);
  }
  parallel_for(gets.size(), kReaders, [&](std::size_t i) {
    auto [v, k] = gets[i];
    auto bytes = repo.get_object(v->missing[k]);
    if (!bytes) return;  // removed between list and get (expire)
    v->fetched[k] = meta_from_json(as_chars(*bytes), v->missing[k]);
  });
  if (stats) {
    stats->bundles += bundles.size();
    for (const DirectoryView* v : with_catalogues) stats->catalogues += v->catalogue_gets;
    stats->directory_lists += to_list.size();
    stats->meta_reads += gets.size();
  }
  std::vector<SegmentMeta> out;
  for (DirectoryView& v : views) {
    for (SegmentMeta& m : v.result) out.push_back(std::move(m));
    for (auto& m : v.fetched)
      if (m) out.push_back(std::move(*m));
  }
  std::sort(out.begin(), out.end(),
            [](const SegmentMeta& a, const SegmentMeta& b) { return a.name < b.name; });
  return out;
}

namespace {

// What compact_wal finds for one log directory.
struct CompactDirectory {
  std::vector<std::string> segments;  // metadata listed, sorted
  std::set<std::string> block_maps;   // segments with a wal/map/ object
  std::vector<std::string> catalogues;
};

// The catalogue `d` should have, reusing what its catalogues hold and
// reading the rest of the metadata; `current` when its only catalogue is that
// one already.
struct WantedCatalogue {
  WalCatalogue catalogue;
  bool current = false;
};
WantedCatalogue wanted_catalogue(Repository& repo, const std::string& directory,
                                 const CompactDirectory& d, std::uint32_t segment_size) {
  std::map<std::string, CatalogueEntry> have;
  bool current = d.catalogues.size() == 1;
  for (const std::string& object : d.catalogues) {
    auto catalogue = read_catalogue(repo, object);
    if (!catalogue || catalogue->segment_size != segment_size) {
      current = false;
      continue;
    }
    current = current && catalogue->entries.size() == d.segments.size();
    for (CatalogueEntry& e : catalogue->entries) {
      current = current && e.has_block_map == (d.block_maps.count(e.meta.name) > 0);
      have.emplace(e.meta.name, std::move(e));
    }
  }
  WalCatalogue wanted{directory, segment_size, {}};
  for (const std::string& name : d.segments) {
    auto it = have.find(name);
    if (it == have.end()) {
      current = false;
      const std::string object = meta_object_name(name);
      auto bytes = repo.get_object(object);
      if (!bytes) continue;  // removed since the listing
      CatalogueEntry e;
      e.meta_json.assign(as_chars(*bytes));
      e.meta = meta_from_json(e.meta_json, object);
      if (auto problem = entry_problem(e.meta, directory, segment_size))
        throw Error(ErrorCode::kCorruption, object + ": " + *problem);
      it = have.emplace(name, std::move(e)).first;
    }
    it->second.has_block_map = d.block_maps.count(name) > 0;
    wanted.entries.push_back(std::move(it->second));
  }
  return {std::move(wanted), current};
}

// Whether `bundle` holds exactly `full` (catalogue name -> plaintext), byte
// for byte. A damaged bundle (planning and verify refuse it) does not.
bool holds_exactly(Repository& repo, const std::string& bundle,
                   const std::map<std::string, Bytes>& full) {
  std::optional<std::vector<BundledCatalogue>> read;
  try {
    read = read_bundle(repo, bundle);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruption) throw;
    spdlog::warn("{}; replacing it", e.what());
    return false;
  }
  if (!read || read->size() != full.size()) return false;
  auto it = full.begin();
  for (const BundledCatalogue& c : *read) {
    if (c.object != it->first || c.plaintext != it->second) return false;
    ++it;
  }
  return true;
}

// The second step of compact_wal: one bundle of the full catalogues the first
// step left (`full`, name -> plaintext), unless a bundle is that already; the
// other bundles go.
void bundle_full_catalogues(Repository& repo, const std::map<std::string, Bytes>& full,
                            CompactReport& report) {
  std::vector<std::string> bundles;
  for (const store::ObjectInfo& info : repo.store().list(kCatalogueBundlePrefix))
    if (parse_catalogue_bundle_object(info.name)) bundles.push_back(info.name);
  std::string written;
  if (!full.empty()) {
    for (const std::string& bundle : bundles)
      if (holds_exactly(repo, bundle, full)) {
        written = bundle;
        break;
      }
    if (written.empty()) {
      std::vector<BundledCatalogue> entries;
      for (const auto& [object, plaintext] : full) entries.push_back({object, plaintext});
      const Bytes plaintext = encode_bundle(entries);
      written = catalogue_bundle_object_name(content_id(repo, plaintext));
      repo.put_object(written, plaintext);  // kAlreadyExists: the same bytes are there
      ++report.bundles_written;
      report.catalogues_bundled = entries.size();
    }
  }
  std::vector<std::string> stale;
  for (const std::string& bundle : bundles)
    if (bundle != written) stale.push_back(bundle);
  repo.store().remove_many(stale);
  report.bundles_removed += stale.size();
}

}  // namespace

CompactReport compact_wal(Repository& repo) {
  CompactReport report;
  const auto cluster = read_cluster(repo);
  if (!cluster) return report;
  std::map<std::string, CompactDirectory> dirs;
  for (const store::ObjectInfo& info : repo.store().list(kMetaPrefix))
    if (auto name = parse_meta_object(info.name))
      dirs[directory_of(name->name)].segments.push_back(name->name);
  for (const store::ObjectInfo& info : repo.store().list(kBlockMapPrefix))
    if (auto name = parse_block_map_object(info.name))
      if (auto it = dirs.find(directory_of(name->name)); it != dirs.end())
        it->second.block_maps.insert(name->name);
  for (const store::ObjectInfo& info : repo.store().list(kCataloguePrefix))
    if (auto named = parse_catalogue_object(info.name))
      dirs[named->directory].catalogues.push_back(info.name);

  std::vector<std::pair<const std::string, CompactDirectory>*> work;
  for (auto& entry : dirs) work.push_back(&entry);
  std::mutex mu;
  std::map<std::string, Bytes> full;  // the full catalogues after this step, for the bundle
  parallel_for(work.size(), kReaders, [&](std::size_t i) {
    const auto& [directory, d] = *work[i];
    std::optional<WantedCatalogue> wanted;
    if (!d.segments.empty()) wanted = wanted_catalogue(repo, directory, d, cluster->segment_size);
    const bool keep_current = wanted && wanted->current;
    Bytes plaintext;
    if (wanted && !wanted->catalogue.entries.empty())
      plaintext = encode_catalogue(wanted->catalogue);
    std::string written;
    if (!keep_current && !plaintext.empty()) written = store_catalogue(repo, directory, plaintext);
    std::vector<std::string> stale;
    for (const std::string& object : d.catalogues)
      if (!keep_current && object != written) stale.push_back(object);
    repo.store().remove_many(stale);
    std::lock_guard lock(mu);
    report.directories += d.segments.empty() ? 0 : 1;
    report.catalogues_removed += stale.size();
    if (!written.empty()) {
      report.catalogues_written +=
          std::find(d.catalogues.begin(), d.catalogues.end(), written) == d.catalogues.end();
      report.segments_catalogued += wanted->catalogue.entries.size();
    }
    if (wanted && wanted->catalogue.full()) {
      ++report.full_directories;
      // The current catalogue re-encodes to its own bytes (decoding is strict).
      full.emplace(catalogue_object_name(directory, content_id(repo, plaintext)),
                   std::move(plaintext));
    }
  });
  bundle_full_catalogues(repo, full, report);
  return report;
}

std::uint64_t remove_catalogued_segments(Repository& repo,
                                         const std::vector<std::string>& meta_objects) {
  std::map<std::string, std::set<std::string>> removed;  // directory -> segment names
  for (const std::string& object : meta_objects)
    if (auto name = parse_meta_object(object)) removed[directory_of(name->name)].insert(name->name);
  if (removed.empty()) return 0;
  std::uint64_t changed = 0;
  for (const store::ObjectInfo& info : repo.store().list(kCataloguePrefix)) {
    const auto named = parse_catalogue_object(info.name);
    if (!named || !removed.count(named->directory)) continue;
    auto catalogue = read_catalogue(repo, info.name);
    if (!catalogue) continue;
    const std::set<std::string>& gone = removed[named->directory];
    const auto before = catalogue->entries.size();
    std::erase_if(catalogue->entries,
                  [&](const CatalogueEntry& e) { return gone.count(e.meta.name) > 0; });
    if (catalogue->entries.size() == before) continue;
    if (!catalogue->entries.empty()) write_catalogue(repo, *catalogue);
    repo.store().remove(info.name);
    ++changed;
  }
  return changed;
}

namespace {

// `e`'s message without a leading "<object>: " (verify names the object).
std::string message_about(const Error& e, const std::string& object) {
  std::string message = e.what();
  if (message.starts_with(object + ": ")) message.erase(0, object.size() + 2);
  return message;
}

}  // namespace

std::vector<std::string> check_catalogue(Repository& repo, const std::string& object) {
  std::vector<std::string> problems;
  std::optional<WalCatalogue> catalogue;
  try {
    catalogue = read_catalogue(repo, object);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruption) throw;
    return {message_about(e, object)};
  }
  if (!catalogue) return {};
  if (const auto cluster = read_cluster(repo);
      cluster && cluster->segment_size != catalogue->segment_size)
    problems.push_back("segment size " + std::to_string(catalogue->segment_size) +
                       ", the cluster's is " + std::to_string(cluster->segment_size));
  for (const CatalogueEntry& e : catalogue->entries) {
    const std::string meta = meta_object_name(e.meta.name);
    auto bytes = repo.get_object(meta);
    if (!bytes)
      problems.push_back("lists segment " + e.meta.name + " whose metadata is missing");
    else if (as_chars(*bytes) != e.meta_json)
      problems.push_back("segment " + e.meta.name + " differs from " + meta);
    if (repo.store().stat(block_map_object_name(e.meta.name)).has_value() != e.has_block_map)
      problems.push_back("segment " + e.meta.name +
                         (e.has_block_map ? ": no block map, the catalogue says it has one"
                                          : ": a block map, the catalogue says it has none"));
  }
  return problems;
}

std::vector<std::string> check_catalogue_bundle(Repository& repo, const std::string& object) {
  std::optional<std::vector<BundledCatalogue>> bundle;
  try {
    bundle = read_bundle(repo, object);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruption) throw;
    return {message_about(e, object)};
  }
  std::vector<std::string> problems;
  if (!bundle) return problems;
  for (const BundledCatalogue& c : *bundle) {
    try {
      catalogue_from_bundle(repo, c.object, BundleCopy{object, c.plaintext});
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kCorruption) throw;
      // "<bundle>: its copy of X does not match that name", or "X: <why>".
      const std::string message = message_about(e, object);
      problems.push_back(message == e.what() ? "its copy of " + message : message);
    }
  }
  return problems;
}

std::string compact_report_text(const CompactReport& r) {
  std::ostringstream out;
  out << r.directories << " log directories, " << r.full_directories << " full; "
      << r.catalogues_written << " catalogues written (" << r.segments_catalogued << " segments), "
      << r.catalogues_removed << " removed; " << r.bundles_written << " bundle written ("
      << r.catalogues_bundled << " full catalogues), " << r.bundles_removed << " removed\n";
  return out.str();
}

std::string compact_report_json(const CompactReport& r) {
  const nlohmann::json j = {{"directories", r.directories},
                            {"full_directories", r.full_directories},
                            {"catalogues_written", r.catalogues_written},
                            {"segments_catalogued", r.segments_catalogued},
                            {"catalogues_removed", r.catalogues_removed},
                            {"bundles_written", r.bundles_written},
                            {"catalogues_bundled", r.catalogues_bundled},
                            {"bundles_removed", r.bundles_removed}};
  return j.dump(2) + "\n";
}

}  // namespace walvault::repo
