#include "repo/chunk_store.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

#include "codec/crypto.h"
#include "codec/envelope.h"
#include "core/error.h"
#include "core/parallel.h"

namespace walvault::repo {

namespace {

constexpr char kIndexMagicV1[] = "WVI1";
constexpr char kIndexMagic[] = "WVI2";
constexpr std::size_t kIndexEntrySizeV1 = 32 + 32 + 8 + 4;
constexpr std::size_t kIndexEntrySize = kIndexEntrySizeV1 + 8 + 4 + 4;
// Threads reading index objects when a store opens.
constexpr std::size_t kIndexLoaders = 16;
// Room a pack buffer has beyond pack_target_bytes: the envelope of one frame
// of kFrameBytes, incompressible, with its header and tag. A pack is queued
// once it reaches the target, so it always has room for such an envelope.
constexpr std::size_t kFrameSlack = kFrameBytes + (64u << 10);

ChunkId to_chunk_id(const codec::Digest& digest) {
  ChunkId id;
  std::copy(digest.begin(), digest.end(), id.begin());
  return id;
}

}  // namespace

Bytes encode_index(const std::vector<std::pair<ChunkId, ChunkLocation>>& entries) {
  Bytes out(kIndexMagic, kIndexMagic + 4);
  append_le<std::uint32_t>(out, static_cast<std::uint32_t>(entries.size()));
  out.reserve(out.size() + entries.size() * kIndexEntrySize);
  for (const auto& [id, loc] : entries) {
    out.insert(out.end(), id.begin(), id.end());
    out.insert(out.end(), loc.pack.begin(), loc.pack.end());
    append_le<std::uint64_t>(out, loc.offset);
    append_le<std::uint32_t>(out, loc.length);
    if (!loc.xxh3 || loc.inner_length == 0)
      throw Error(ErrorCode::kInternal, "index entry without its XXH3 or place in the envelope");
    append_le<std::uint64_t>(out, *loc.xxh3);
    append_le<std::uint32_t>(out, loc.inner_offset);
    append_le<std::uint32_t>(out, loc.inner_length);
  }
  return out;
}

std::optional<std::vector<std::pair<ChunkId, ChunkLocation>>> read_index(
    Repository& repo, const std::string& object) {
  const auto plaintext = repo.get_object(object);
  if (!plaintext) return std::nullopt;
  return decode_index(*plaintext, object);
}

std::vector<std::pair<ChunkId, ChunkLocation>> decode_index(ByteView plaintext,
                                                            const std::string& object) {
  const bool v1 = plaintext.size() >= 8 && std::memcmp(plaintext.data(), kIndexMagicV1, 4) == 0;
  if (plaintext.size() < 8 || (!v1 && std::memcmp(plaintext.data(), kIndexMagic, 4) != 0))
    throw Error(ErrorCode::kCorruption, object + ": not a chunk index");
  const std::size_t entry_size = v1 ? kIndexEntrySizeV1 : kIndexEntrySize;
  const auto count = load_le<std::uint32_t>(plaintext.data() + 4);
  if (plaintext.size() != 8 + std::uint64_t{count} * entry_size)
    throw Error(ErrorCode::kCorruption, object + ": index length does not match its entry count");
  std::vector<std::pair<ChunkId, ChunkLocation>> entries(count);
  const std::uint8_t* p = plaintext.data() + 8;
  for (auto& [id, loc] : entries) {
    std::memcpy(id.data(), p, 32);
    std::memcpy(loc.pack.data(), p + 32, 32);
    loc.offset = load_le<std::uint64_t>(p + 64);
    loc.length = load_le<std::uint32_t>(p + 72);
    if (!v1) {
      loc.xxh3 = load_le<std::uint64_t>(p + 76);
      loc.inner_offset = load_le<std::uint32_t>(p + 84);
      loc.inner_length = load_le<std::uint32_t>(p + 88);
      if (loc.inner_length == 0)
        throw Error(ErrorCode::kCorruption, object + ": index entry of an empty chunk");
    }
    p += entry_size;
  }
  return entries;
}

ChunkStore::ChunkStore(Repository& repo, Options options) : repo_(repo), options_(options) {
  // One GET per index: on an object store each costs a round trip (tens of
  // milliseconds), so a repository of a few thousand packs is read by
  // several threads at once.
  const auto listed = repo_.store().list(kIndexPrefix);
  const std::size_t threads = std::min<std::size_t>(kIndexLoaders, listed.size() / 4);
  parallel_for(listed.size(), static_cast<int>(threads), [&](std::size_t i) {
    const auto entries = read_index(repo_, listed[i].name);
    if (!entries) return;  // removed by a concurrent GC after listing
    std::lock_guard lock(mu_);
    for (const auto& [id, loc] : *entries) {
      if (options_.ignore_pack && options_.ignore_pack(loc.pack)) continue;
      index_[id] = loc;
    }
  });
}

ChunkId ChunkStore::chunk_id(ByteView plaintext) const {
  const auto& key = repo_.id_key();
  return to_chunk_id(key ? codec::hmac_sha256(*key, plaintext) : codec::sha256(plaintext));
}

ChunkStore::~ChunkStore() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  queue_changed_.notify_all();
  if (writer_.joinable()) writer_.join();
}

AddResult ChunkStore::add(ByteView plaintext) { return add_group({plaintext}).front(); }

std::vector<AddResult> ChunkStore::add_group(const std::vector<ByteView>& plaintexts) {
  std::vector<ChunkId> ids(plaintexts.size());
  for (std::size_t i = 0; i < plaintexts.size(); ++i) ids[i] = chunk_id(plaintexts[i]);
  return add_group(plaintexts, ids);
}

std::vector<AddResult> ChunkStore::add_group(const std::vector<ByteView>& plaintexts,
                                             const std::vector<ChunkId>& ids) {
  if (ids.size() != plaintexts.size())
    throw Error(ErrorCode::kInternal, "chunk store: a group's ids do not match its chunks");
  std::vector<AddResult> results(plaintexts.size());
  for (std::size_t i = 0; i < plaintexts.size(); ++i) results[i].id = ids[i];
  std::vector<std::size_t> fresh;
  {
    std::lock_guard lock(mu_);
    if (write_error_) std::rethrow_exception(write_error_);
    for (std::size_t i = 0; i < plaintexts.size(); ++i) {
      const ChunkId& id = results[i].id;
      if (index_.count(id) || pending_ids_.count(id)) continue;
      pending_ids_[id] = true;
      fresh.push_back(i);
    }
  }
  if (fresh.empty()) return results;
  // Compression and encryption run outside the lock, in the caller's thread.
  // New chunks that lie back to back in memory (a file's frame) are sealed
  // where they are; others are joined into one buffer first.
  Bytes joined;
  ByteView frame = plaintexts[fresh.front()];
  bool contiguous = true;
  std::size_t frame_bytes = frame.size();
  for (std::size_t k = 1; k < fresh.size(); ++k) {
    const ByteView& prev = plaintexts[fresh[k - 1]];
    contiguous = contiguous && plaintexts[fresh[k]].data() == prev.data() + prev.size();
    frame_bytes += plaintexts[fresh[k]].size();
  }
  if (contiguous) {
    frame = ByteView(frame.data(), frame_bytes);
  } else {
    joined.reserve(frame_bytes);
    for (std::size_t i : fresh)
      joined.insert(joined.end(), plaintexts[i].begin(), plaintexts[i].end());
    frame = joined;
  }
  Bytes sealed = repo_.seal_object(frame);
  const auto header = codec::parse_header(sealed);
  if (!header) throw Error(ErrorCode::kInternal, "chunk store: sealed a malformed envelope");
  std::vector<Pending> entries;
  std::uint32_t inner = 0;
  for (std::size_t i : fresh) {
    const auto length = static_cast<std::uint32_t>(plaintexts[i].size());
    const std::uint64_t xxh3 = fresh.size() == 1 ? header->xxh3 : codec::xxh3_64(plaintexts[i]);
    entries.push_back(
        {results[i].id, 0, static_cast<std::uint32_t>(sealed.size()), xxh3, inner, length});
    inner += length;
    results[i].stored = true;
  }
  results[fresh.front()].stored_bytes = sealed.size();
  std::unique_lock lock(mu_);
  // A pack never grows past its reservation (a vector would double it, and
  // the doubled buffer would live on as a spare): one the envelope does not
  // fit goes first.
  if (!pack_.empty() && pack_.size() + sealed.size() > pack_.capacity()) queue_pack(lock);
  if (pack_.capacity() < sealed.size())
    pack_.reserve(std::max<std::size_t>(options_.pack_target_bytes + kFrameSlack, sealed.size()));
  for (auto& e : entries) {
    e.offset = pack_.size();
    pending_.push_back(e);
  }
  const std::size_t at = pack_.size();
  pack_.resize(at + sealed.size());
  std::memcpy(pack_.data() + at, sealed.data(), sealed.size());
  if (pack_.size() >= options_.pack_target_bytes) queue_pack(lock);
  return results;
}

void ChunkStore::flush() {
  std::unique_lock lock(mu_);
  if (!pending_.empty()) queue_pack(lock);
  queue_changed_.wait(lock, [&] { return (queue_.empty() && writing_ == 0) || write_error_; });
  if (write_error_) std::rethrow_exception(write_error_);
}

void ChunkStore::queue_pack(std::unique_lock<std::mutex>& lock) {
  queue_changed_.wait(lock, [&] {
    return static_cast<int>(queue_.size()) + writing_ < std::max(1, options_.max_unwritten_packs) ||
           write_error_;
  });
  if (write_error_) std::rethrow_exception(write_error_);
  queue_.push_back({std::move(pack_), std::move(pending_)});
  pack_ = AlignedBytes();
  if (!spare_packs_.empty()) {
    pack_ = std::move(spare_packs_.back());
    spare_packs_.pop_back();
  }
  pending_.clear();
  if (!writer_.joinable()) writer_ = std::thread([this] { writer_loop(); });
  queue_changed_.notify_all();
}

// Chunks of a queued pack stay in pending_ids_ (never stored twice) until
// its index is durable; then they move to index_.
void ChunkStore::writer_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    queue_changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_ || write_error_) return;
    PackBatch batch = std::move(queue_.front());
    queue_.pop_front();
    ++writing_;
    queue_changed_.notify_all();
    lock.unlock();
    std::vector<std::pair<ChunkId, ChunkLocation>> entries;
    std::exception_ptr failure;
    try {
      entries = store_pack(batch);
    } catch (...) {
      failure = std::current_exception();
    }
    batch.pending = {};
    batch.pack.clear();
    lock.lock();
    if (spare_packs_.size() < 2) spare_packs_.push_back(std::move(batch.pack));
    batch = PackBatch();
    --writing_;
    if (failure) {
      write_error_ = failure;
      queue_.clear();
    }
    for (const auto& [id, loc] : entries) {
      index_[id] = loc;
      pending_ids_.erase(id);
    }
    queue_changed_.notify_all();
    if (failure) return;
  }
}

std::vector<std::pair<ChunkId, ChunkLocation>> ChunkStore::store_pack(const PackBatch& batch) {
  const ChunkId pack_id = to_chunk_id(codec::sha256(batch.pack));
  // The pack's bytes are already sealed chunk by chunk: stored as they are.
  repo_.store().put(pack_object_name(pack_id), batch.pack);
  std::vector<std::pair<ChunkId, ChunkLocation>> entries;
  entries.reserve(batch.pending.size());
  for (const auto& p : batch.pending)
    entries.push_back(
        {p.id, {pack_id, p.offset, p.length, p.xxh3, p.inner_offset, p.inner_length}});
  Bytes index = encode_index(entries);
  const ChunkId index_id = to_chunk_id(codec::sha256(index));
  repo_.put_object(index_object_name(index_id), index);
  std::lock_guard lock(mu_);
  written_objects_.push_back(pack_object_name(pack_id));
  written_objects_.push_back(index_object_name(index_id));
  return entries;
}

std::vector<std::string> ChunkStore::written_objects() const {
  std::lock_guard lock(mu_);
  return written_objects_;
}

bool ChunkStore::contains(const ChunkId& id) const {
  std::lock_guard lock(mu_);
  return index_.count(id) > 0;
}

std::optional<ChunkLocation> ChunkStore::locate(const ChunkId& id) const {
  std::lock_guard lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::optional<Bytes> ChunkStore::read(const ChunkId& id) {
  Bytes plaintext;
  if (!read_into(id, plaintext)) return std::nullopt;
  return plaintext;
}

namespace {

// The multi-chunk frames this thread opened last, kFrameCacheEntries of
// them, least recently used replaced first. The next chunks of a file are
// usually in the frame of its last one; after a change, a file's unchanged
// neighbours still sit in an older frame, and a restore going through the
// directory alternates between the two (one entry re-opened the older frame
// for each neighbour: the files bench's restore opened each frame ~2x). Keyed
// by pack id and offset, which name the bytes (a pack id is the hash of its
// content), so an entry is valid across stores.
struct FrameCache {
  ChunkId pack{};
  std::uint64_t offset = ~std::uint64_t{0};
  std::uint64_t used = 0;  // frame_clock when last read
  Bytes plaintext;
};
constexpr std::size_t kFrameCacheEntries = 4;
thread_local std::array<FrameCache, kFrameCacheEntries> frame_cache;
thread_local std::uint64_t frame_clock = 0;

// This thread's open frame at (pack, offset), or none.
FrameCache* cached_frame(const ChunkId& pack, std::uint64_t offset) {
  for (FrameCache& f : frame_cache)
    if (f.offset == offset && f.pack == pack) {
      f.used = ++frame_clock;
      return &f;
    }
  return nullptr;
}

// The entry a newly opened frame replaces: the least recently read one.
FrameCache& frame_to_replace() {
  FrameCache* oldest = &frame_cache[0];
  for (FrameCache& f : frame_cache)
    if (f.used < oldest->used) oldest = &f;
  oldest->used = ++frame_clock;
  oldest->offset = ~std::uint64_t{0};  // holds nothing until opened
  return *oldest;
}

// Keeps the entries' buffers within kFrameCacheBytes after `kept` was
// filled, freeing the least recently read others: small files' frames
// (<= 1 MiB) all stay, while large files' 4 MiB frames, which are read in
// order, do not pile up one per entry on every thread.
constexpr std::size_t kFrameCacheBytes = std::size_t{8} << 20;
void bound_frame_cache(const FrameCache& kept) {
  for (;;) {
    std::size_t held = 0;
    FrameCache* oldest = nullptr;
    for (FrameCache& f : frame_cache) {
      held += f.plaintext.capacity();
      if (&f != &kept && f.plaintext.capacity() > 0 && (!oldest || f.used < oldest->used))
        oldest = &f;
    }
    if (held <= kFrameCacheBytes || !oldest) return;
    Bytes().swap(oldest->plaintext);
    oldest->offset = ~std::uint64_t{0};
  }
}

}  // namespace

ByteView chunk_in_frame(ByteView frame, const ChunkLocation& loc, const std::string& what) {
  if (loc.inner_length == 0) return frame;
  if (std::uint64_t{loc.inner_offset} + loc.inner_length > frame.size())
    throw Error(ErrorCode::kCorruption, what +
                                            ": the index places the chunk outside its envelope's " +
                                            std::to_string(frame.size()) + " bytes");
  return frame.subspan(loc.inner_offset, loc.inner_length);
}

bool ChunkStore::read_into(const ChunkId& id, Bytes& out, ChunkCheck check) {
  const auto view = read_view(id, out, check);
  if (!view) return false;
  if (view->data() != out.data()) out.assign(view->begin(), view->end());
  return true;
}

std::optional<ByteView> ChunkStore::read_view(const ChunkId& id, Bytes& scratch, ChunkCheck check) {
  auto loc = locate(id);
  if (!loc) return std::nullopt;
  const std::string pack = pack_object_name(loc->pack);
  const std::string what = pack + " (chunk " + to_hex(id) + ")";
  // true: `scratch` holds the whole envelope, which is this chunk alone.
  bool whole = false;
  std::uint64_t envelope_xxh3 = 0;  // of `scratch`, checked by open, when whole
  const FrameCache* frame = loc->inner_length == 0 ? nullptr : cached_frame(loc->pack, loc->offset);
  if (!frame) {
    auto sealed = repo_.store().get(pack, store::Range{loc->offset, loc->length});
    if (!sealed) throw Error(ErrorCode::kCorruption, pack + ": pack listed in an index is missing");
    if (sealed->size() != loc->length)
      throw Error(ErrorCode::kCorruption, what + ": pack is shorter than its index says");
    const auto header = codec::parse_header(*sealed);
    whole = loc->inner_length == 0 ||
            (header && loc->inner_offset == 0 && header->plaintext_length == loc->inner_length);
    if (whole) {
      repo_.open_object_into(*sealed, what, scratch);  // content matches the envelope's XXH3
      envelope_xxh3 = header ? header->xxh3 : 0;
      if (loc->inner_length && scratch.size() != loc->inner_length)
        throw Error(ErrorCode::kCorruption, what + ": envelope is not the chunk's length");
    } else {
      FrameCache& slot = frame_to_replace();
      // The frame's own XXH3 is not checked: every chunk taken from it is,
      // below, against its index entry's XXH3 or its id, which covers every
      // byte used and saves a second pass over the frame.
      repo_.open_object_into(*sealed, what, slot.plaintext, codec::PlaintextCheck::kByCaller);
      slot.pack = loc->pack;
      slot.offset = loc->offset;
      bound_frame_cache(slot);
      frame = &slot;
    }
  }
  const ByteView chunk = whole ? ByteView(scratch) : chunk_in_frame(frame->plaintext, *loc, what);
  if (check == ChunkCheck::kRecorded && loc->xxh3) {
    if ((whole ? envelope_xxh3 : codec::xxh3_64(chunk)) != *loc->xxh3)
      throw Error(ErrorCode::kCorruption,
                  what + ": content is not the one the index recorded for this chunk");
    return chunk;
  }
  if (chunk_id(chunk) != id)
    throw Error(ErrorCode::kCorruption, what + ": content does not match its id");
  return chunk;
}

std::size_t ChunkStore::known_chunks() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

}  // namespace walvault::repo
