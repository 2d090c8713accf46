// Content-addressed chunks grouped into packs (docs/format.md, "Chunks and
// packs"). Backups and file-volume snapshots store file content as chunks;
// a chunk already in the repository, from any earlier run, is not stored
// again. Names and ids: repo/layout.h.
//
//   packs/<first 2 hex of id>/<pack id>   chunk envelopes back to back
//   index/<index id>                      one envelope listing, for every chunk
//                                         of one pack: chunk id, offset, length
//
// A chunk id is SHA-256 of the plaintext, or HMAC-SHA256 under the
// repository's id key when encrypted (names then leak nothing). A pack id and
// an index id are SHA-256 of the object's stored bytes. A pack is written
// first, then its index: a chunk exists once an index lists it, so a crash
// leaves at most an unreferenced pack, which GC removes.
//
// Threading: add() and read() may be called from several threads at once.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/direct_io.h"
#include "repo/layout.h"
#include "repo/repository.h"

namespace walvault::repo {

struct ChunkIdHash {
  std::size_t operator()(const ChunkId& id) const {
    std::size_t h;
    std::memcpy(&h, id.data(), sizeof h);  // ids are uniformly distributed
    return h;
  }
};

// How many bytes of consecutive chunks a backup (and repo sync) hands to
// ChunkStore::add_group at once: the new ones among them become one frame.
constexpr std::uint64_t kFrameBytes = 4u << 20;

struct ChunkLocation {
  ChunkId pack;
  std::uint64_t offset = 0;  // of the chunk's envelope inside the pack
  std::uint32_t length = 0;  // of the envelope
  // XXH3-64 of the chunk's plaintext, recorded when the chunk was stored
  // (index format 2); absent in format-1 indexes.
  std::optional<std::uint64_t> xxh3;
  // Where the chunk sits in its envelope's plaintext (index format 2): an
  // envelope (one zstd frame) can hold several consecutive chunks of a file.
  // inner_length 0 (format 1): the chunk is the whole plaintext.
  std::uint32_t inner_offset = 0;
  std::uint32_t inner_length = 0;
};

// The chunk's bytes out of its envelope's verified plaintext (`frame`);
// throws Error(kCorruption, "<what>: ...") when `loc` places it outside.
ByteView chunk_in_frame(ByteView frame, const ChunkLocation& loc, const std::string& what);

// How read() vouches for a chunk's content. Both verify the envelope
// (XXH3 of the plaintext; the GCM tag when encrypted).
enum class ChunkCheck {
  // The plaintext hashes to the chunk id (SHA-256, or HMAC when encrypted).
  kId,
  // The envelope's XXH3 equals the one the index recorded for this id when
  // the chunk was stored, so a misplaced or swapped envelope is caught
  // without hashing every byte again with SHA-256 (restore's hot path).
  // Falls back to kId for entries of format-1 indexes.
  kRecorded,
};

struct AddResult {
  ChunkId id;
  bool stored = false;             // false: the repository had it already
  std::uint64_t stored_bytes = 0;  // envelope bytes added (0 when not stored)
};

class ChunkStore {
 public:
  struct Options {
    std::uint64_t pack_target_bytes = 32u << 20;  // a pack is written once this full
    // Full packs handed to the writer thread and not yet written (queued or
    // being written) before add() blocks: memory holds at most this + 1
    // pack buffers (the one filling), while store I/O (fsync, upload)
    // overlaps with sealing. At least 1.
    int max_unwritten_packs = 3;
    // Index entries placing a chunk in a pack for which this returns true
    // are ignored at open, so add() stores those chunks again: gc repacks
    // the live chunks of mostly-garbage packs this way.
    std::function<bool(const ChunkId& pack)> ignore_pack;
  };

  // Reads every index object so that known chunks are never stored twice.
  // Throws Error(kCorruption) naming a damaged index.
  ChunkStore(Repository& repo, Options options);
  explicit ChunkStore(Repository& repo) : ChunkStore(repo, Options{}) {}
  // Stops the writer thread; packs not yet flushed are dropped (they were
  // never referenced by an index, so nothing is lost but the work).
  ~ChunkStore();

  ChunkId chunk_id(ByteView plaintext) const;

  // Seals and queues the chunk unless the repository (or this run) has it.
  // A full pack goes to a writer thread (pack, then index), so sealing goes
  // on while the store writes. Rethrows a failure of an earlier pack write.
  AddResult add(ByteView plaintext);
  // As add() for consecutive chunks of one file: those the repository lacks
  // are sealed together in one envelope, so they compress as one zstd frame
  // (per-frame start-up costs ~0.5% at 1 MiB); each keeps its own id and
  // index entry. The envelope's bytes are counted on the first new chunk.
  std::vector<AddResult> add_group(const std::vector<ByteView>& plaintexts);
  // As add_group(plaintexts) with their ids already computed by the caller
  // (ids[i] == chunk_id(plaintexts[i])): a pipeline that needs the ids on one
  // thread (file trees) and seals on others hashes each chunk once.
  std::vector<AddResult> add_group(const std::vector<ByteView>& plaintexts,
                                   const std::vector<ChunkId>& ids);
  // Writes the pending partial pack and waits until every pack and index is
  // durable; rethrows a write failure. Call before writing any manifest that
  // references chunks added since the last flush.
  void flush();

  bool contains(const ChunkId& id) const;
  std::optional<ChunkLocation> locate(const ChunkId& id) const;
  // Fetches one chunk with a ranged read, opens its envelope and checks that
  // its content hashes to `id`. std::nullopt when no index lists it; throws
  // Error(kCorruption) naming the pack on any mismatch.
  std::optional<Bytes> read(const ChunkId& id);
  // As read(), into `out` (a buffer the caller reuses across chunks); false
  // when no index lists the chunk.
  bool read_into(const ChunkId& id, Bytes& out, ChunkCheck check = ChunkCheck::kId);
  // As read_into() without copying a chunk out of its frame: the view points
  // into this thread's last opened frame, or into `scratch` for a chunk
  // stored alone, and is valid until this thread's next read.
  std::optional<ByteView> read_view(const ChunkId& id, Bytes& scratch,
                                    ChunkCheck check = ChunkCheck::kId);

  std::size_t known_chunks() const;

  // The packs and indexes this store has put, whether new or already there
  // (names are content hashes: a pack can come out byte-identical to an
  // existing one). gc must not remove them.
  std::vector<std::string> written_objects() const;

 private:
  struct Pending {
    ChunkId id;
    std::uint64_t offset;
    std::uint32_t length;
    std::uint64_t xxh3;
    std::uint32_t inner_offset, inner_length;
  };
  struct PackBatch {
    AlignedBytes pack;  // block-aligned: a local store writes it with direct I/O
    std::vector<Pending> pending;
  };
  // Hands the filling pack to the writer thread (waits while the queue is full).
  void queue_pack(std::unique_lock<std::mutex>& lock);
  void writer_loop();
  // Stores one pack and its index; returns the index entries.
  std::vector<std::pair<ChunkId, ChunkLocation>> store_pack(const PackBatch& batch);

  Repository& repo_;
  Options options_;
  mutable std::mutex mu_;
  std::condition_variable queue_changed_;
  std::deque<PackBatch> queue_;
  int writing_ = 0;  // packs the writer thread has taken but not finished
  bool stopping_ = false;
  std::exception_ptr write_error_;
  std::thread writer_;
  std::unordered_map<ChunkId, ChunkLocation, ChunkIdHash> index_;
  std::unordered_map<ChunkId, bool, ChunkIdHash> pending_ids_;
  std::vector<Pending> pending_;
  AlignedBytes pack_;
  // Buffers of packs already written, kept for the next ones: a fresh 32 MiB
  // buffer costs its page faults and zeroing every time.
  std::vector<AlignedBytes> spare_packs_;
  std::vector<std::string> written_objects_;
};

// The index object's plaintext: "WVI2", u32 entry count, then per chunk:
// chunk id (32), pack id (32), envelope offset (u64), envelope length (u32),
// the chunk's plaintext XXH3-64 (u64), its offset and length inside the
// envelope's plaintext (u32, u32), all little-endian. Format 1 ("WVI1", written before 2026-11-27)
// has no XXH3 field; it is still read. encode_index writes format 2 and needs every entry's xxh3.
Bytes encode_index(const std::vector<std::pair<ChunkId, ChunkLocation>>& entries);
// Throws Error(kCorruption, "<object>: ...") when malformed.
std::vector<std::pair<ChunkId, ChunkLocation>> decode_index(ByteView plaintext,
                                                            const std::string& object);

// How every reader of indexes takes one in: the index object `object` (as
// listed under kIndexPrefix) fetched, verified and decoded. std::nullopt when
// it is gone (gc removed it since the listing). Throws Error(kCorruption)
// naming it when damaged.
std::optional<std::vector<std::pair<ChunkId, ChunkLocation>>> read_index(Repository& repo,
                                                                         const std::string& object);

}  // namespace walvault::repo
