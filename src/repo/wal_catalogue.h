// WAL catalogues: one object that holds the metadata of many segments of one
// log directory (timeline+log, at most 2^32 / segment size segments), so that
// planning reads a few objects instead of one per segment (docs/format.md,
// "WAL catalogues"; docs/decisions.md, "WAL catalogues").
//
//   wal/cat/<tli+log, 16 hex>/<content id, 64 hex>
//
// A catalogue is immutable and content-addressed: its name carries the
// SHA-256 of its plaintext (HMAC-SHA256 under the id key in an encrypted
// repository, as chunk ids), checked on every read, so concurrent writers of
// the same directory can only add catalogues, never change one. Each entry is
// the exact plaintext of a segment's wal/meta/ object plus whether the
// segment has a block map (wal/map/).
//
// The wal/meta/ objects stay the source of truth. A reader trusts a
// catalogue alone only when it is FULL (it lists every segment name its
// directory can hold, so no segment can be added there); any other
// directory is listed and the metadata its catalogue lacks is read object by
// object, and what its catalogue lists but the listing lacks is dropped.
// Whoever removes metadata (expire) rewrites the catalogues first
// (remove_catalogued_segments), so a full catalogue never names a removed
// segment.
//
// Threading: every function may run concurrently with archive-push; compact
// and remove must not run concurrently with each other (compact_wal runs under
// a shared repository lock, expire under the exclusive one).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "repo/repository.h"
#include "repo/wal_objects.h"

namespace walvault::repo {

struct CatalogueEntry {
  SegmentMeta meta;
  std::string meta_json;  // the wal/meta/ object's plaintext, byte for byte
  bool has_block_map = false;
};

struct WalCatalogue {
  std::string directory;  // 16 upper-case hex digits: timeline, log
  std::uint32_t segment_size = 0;
  std::vector<CatalogueEntry> entries;  // strictly increasing by segment name

  // True when it lists every segment its directory can hold.
  bool full() const;
};

// The plaintext of a catalogue (format.md). `entries` must be sorted by name,
// in `directory`, with meta_json set; throws Error(kInternal) otherwise.
Bytes encode_catalogue(const WalCatalogue& catalogue);
// Throws Error(kCorruption) naming `object` when `plaintext` is not a
// catalogue in every detail (magic, version, segment size, directory, order,
// lengths, each entry's JSON, each entry's segment in the directory, no
// trailing bytes).
WalCatalogue decode_catalogue(ByteView plaintext, const std::string& object);

// Reads and checks the catalogue `object` (content id against the name,
// then decode_catalogue); std::nullopt when it is gone (replaced since it was
// listed). Throws Error(kCorruption) naming it otherwise.
std::optional<WalCatalogue> read_catalogue(Repository& repo, const std::string& object);
// Seals and stores `catalogue` under its content name, which it returns.
std::string write_catalogue(Repository& repo, const WalCatalogue& catalogue);

// Catalogue bundles: wal/catb/<content id>, the plaintexts of FULL
// catalogues, each under its wal/cat/ name, so that planning reads one object
// however many full directories the archive has (docs/format.md, "Catalogue
// bundles"). A bundle is a copy, never the truth: a reader takes an embedded
// catalogue only when its name is in the listing of wal/cat/ the reader made,
// and only when the plaintext hashes to the content id in that name. So a
// catalogue that expire rewrote or removed is not taken from a bundle either,
// and expire needs to know nothing of bundles.
struct BundledCatalogue {
  std::string object;  // its wal/cat/ name
  Bytes plaintext;
};
// `catalogues` sorted strictly by name, each name a catalogue name; throws
// Error(kInternal) otherwise.
Bytes encode_bundle(const std::vector<BundledCatalogue>& catalogues);
// Throws Error(kCorruption) naming `object` when `plaintext` is not a bundle
// in every detail (magic, version, lengths, names, order, no trailing bytes).
// The embedded plaintexts are not decoded here.
std::vector<BundledCatalogue> decode_bundle(ByteView plaintext, const std::string& object);
// Reads and checks the bundle `object` (content id against the name, then
// decode_bundle); std::nullopt when it is gone.
std::optional<std::vector<BundledCatalogue>> read_bundle(Repository& repo,
                                                         const std::string& object);

// How many store requests a read made, for benchmarks and tests. A LIST is
// counted once per call (a store pages it: 1,000 names a page on S3).
struct CatalogueReadStats {
  std::uint64_t bundles = 0;          // bundle GETs
  std::uint64_t catalogues = 0;       // catalogue GETs (those no bundle held)
  std::uint64_t directory_lists = 0;  // LISTs of one wal/meta/<dir>/
  std::uint64_t meta_reads = 0;       // wal/meta/ GETs
};

// Every segment's metadata, sorted by name: catalogues where they cover a
// directory, wal/meta/ objects for the rest (see above), read by up to 16
// threads. Throws Error(kCorruption) naming a damaged object.
std::vector<SegmentMeta> read_catalogued_meta(Repository& repo,
                                              CatalogueReadStats* stats = nullptr);

struct CompactReport {
  std::uint64_t directories = 0;  // log directories seen
  std::uint64_t catalogues_written = 0;
  std::uint64_t catalogues_removed = 0;   // replaced, or of directories now empty
  std::uint64_t segments_catalogued = 0;  // entries in the catalogues written
  std::uint64_t full_directories = 0;     // directories whose catalogue is now full
  std::uint64_t bundles_written = 0;
  std::uint64_t bundles_removed = 0;
  std::uint64_t catalogues_bundled = 0;  // full catalogues in the bundle written
};

// `wal compact`: for every log directory whose catalogue does not list
// exactly its segments (and their block maps), writes one that does, then
// removes the directory's other catalogues; removes the catalogues of
// directories without segments. Directories the bound cluster's segment size
// cannot describe are left alone. Then, unless one bundle already holds
// exactly the full catalogues there are, writes one that does and removes the
// other bundles. Without a bound cluster, does nothing.
CompactReport compact_wal(Repository& repo);

// Before removing the metadata objects `meta_objects` (wal/meta/ names):
// rewrites each catalogue that lists one of them without it (or removes it
// when nothing is left), so that no catalogue names a removed segment.
// Returns how many catalogues were rewritten or removed.
std::uint64_t remove_catalogued_segments(Repository& repo,
                                         const std::vector<std::string>& meta_objects);

// What verify finds in a catalogue: every entry must equal its segment's
// wal/meta/ plaintext and agree on the block map, and the catalogue must
// decode and match its name. One problem a string, naming the segment (the
// caller names the catalogue); empty when it is sound or gone.
std::vector<std::string> check_catalogue(Repository& repo, const std::string& object);
// The same for a bundle: it must decode and match its name, and each
// catalogue in it must match its own name and decode (one held under the
// name of a catalogue that is gone is no problem: readers skip it).
std::vector<std::string> check_catalogue_bundle(Repository& repo, const std::string& object);

std::string compact_report_text(const CompactReport& report);
std::string compact_report_json(const CompactReport& report);

}  // namespace walvault::repo
