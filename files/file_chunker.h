// One file's data, in the order it is read, into chunks of the chunk store:
// cut by FastCDC, consecutive chunks handed to ChunkStore::add_group in
// frames of up to repo::kFrameBytes (compressed as one zstd frame). Used by
// snapshots (reading files) and tar import (reading a stream).
//
// Two ways to store: without a pool, add_group runs on the caller's thread.
// With one (`sealers`), the caller's thread cuts and computes the chunk ids
// (so a file's ChunkRefs are complete when end() returns, and trees can be
// built at once), and each frame that holds a chunk the store lacks is
// copied into a task on the pool, which compresses, encrypts and packs it;
// a task's frames that follow each other (small files) are sealed as one
// envelope, up to 1 MiB, so they compress as one stream.
// The pool's bounded queue is the backpressure: at most its capacity plus
// its workers frames are in flight. Either way the chunks and their ids are
// the same; only the thread that seals differs.
//
// Memory: one buffer of repo::kFrameBytes + the chunker's maximum, reused
// from file to file, plus the frames in flight and up to kBatchBytes of
// small frames held back for the next task. Not thread-safe: one per
// thread (the pool's tasks touch only their own frame and an atomic count).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include <span>
#include "codec/fastcdc.h"

#include "core/parallel.h"
#include "files/tree.h"
#include "repo/chunk_store.h"

namespace walvault::files {

class FileChunker {
 public:
  // `sealers`: see above; nullptr stores on the caller's thread. A pool's
  // failure (a pack write) is rethrown by add()/commit()/end() (from submit)
  // or by finish().
  FileChunker(repo::ChunkStore& chunks, const codec::CdcChunker& chunker,
              WorkerPool* sealers = nullptr)
      : chunks_(chunks), chunker_(chunker), sealers_(sealers) {}

  // Starts a file: its chunks will be appended to `out`.
  void begin(std::vector<ChunkRef>& out);
  // The file's next bytes, copied in.
  void add(ByteView data);
  // Room for the file's next bytes, to read into without a copy: space()
  // (never empty), then commit() how many of its first bytes were filled.
  std::span<std::uint8_t> space();
  void commit(std::size_t filled);
  // Stores what is left (the last chunk may be short).
  void end();
  // With a pool: hands it the frames held back (small files' frames go to
  // it in batches, so a task is not a wake-up per file) and waits for every
  // one to be sealed; rethrows the pool's failure. The owner calls it before
  // flushing the store. Without a pool: nothing to do.
  void finish();

  // Envelope bytes this chunker's files added to the repository; with a
  // pool, complete once finish() returned.
  std::uint64_t added_bytes() const { return added_bytes_->load(); }

 private:
  // A frame on its way to a sealing task: the chunks' bytes back to back.
  struct Frame {
    Bytes data;
    std::vector<std::uint32_t> lengths;
    std::vector<repo::ChunkId> ids;
  };
  void cut_and_store(bool at_end);
  // One frame's chunks (consecutive views of buffer_) into the store.
  void store_group(const std::vector<ByteView>& group);
  // Hands the frames held back to the pool as one task.
  void submit_batch();

  repo::ChunkStore& chunks_;
  const codec::CdcChunker& chunker_;
  WorkerPool* sealers_;
  std::vector<ChunkRef>* out_ = nullptr;
  Bytes buffer_;  // the file's bytes not cut yet: [0, filled_)
  std::size_t filled_ = 0;
  std::vector<std::shared_ptr<Frame>> batch_;  // frames not handed to the pool yet
  std::size_t batch_bytes_ = 0;
  // Shared with the pool's tasks, which may outlive a moved-from chunker.
  std::shared_ptr<std::atomic<std::uint64_t>> added_bytes_ =
      std::make_shared<std::atomic<std::uint64_t>>(0);
};

}  // namespace walvault::files
