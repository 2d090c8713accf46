// One file's data, in the order it is read, into chunks of the chunk store:
// cut by FastCDC, consecutive chunks handed to ChunkStore::add_group in
// frames of up to repo::kFrameBytes (compressed as one zstd frame). Used by
// snapshots (reading files) and tar import (reading a stream).
//
// Memory: one buffer of repo::kFrameBytes + the chunker's maximum, reused
// from file to file. Not thread-safe: one per thread.
#pragma once

#include <cstdint>
#include <vector>

#include "codec/fastcdc.h"
#include "files/tree.h"
#include "repo/chunk_store.h"

namespace walvault::files {

class FileChunker {
 public:
  FileChunker(repo::ChunkStore& chunks, const codec::CdcChunker& chunker)
      : chunks_(chunks), chunker_(chunker) {}

  // Starts a file: its chunks will be appended to `out`.
  void begin(std::vector<ChunkRef>& out);
  // The file's next bytes.
  void add(ByteView data);
  // Stores what is left (the last chunk may be short).
  void end();

  // Envelope bytes this chunker's files added to the repository.
  std::uint64_t added_bytes() const { return added_bytes_; }

 private:
  void cut_and_store(bool at_end);

  repo::ChunkStore& chunks_;
  const codec::CdcChunker& chunker_;
  std::vector<ChunkRef>* out_ = nullptr;
  Bytes buffer_;
  std::uint64_t added_bytes_ = 0;
};

}  // namespace walvault::files
