#include "files/file_chunker.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace walvault::files {

namespace {

// Frames smaller than this wait for others before they go to the pool as
// one task (small files: one frame each).
constexpr std::size_t kBatchBytes = 1u << 20;
constexpr std::size_t kBatchFrames = 64;

std::size_t fill_to(const codec::CdcChunker& chunker) {
  return repo::kFrameBytes + chunker.max_size();
}

}  // namespace

void FileChunker::begin(std::vector<ChunkRef>& out) {
  out_ = &out;
  filled_ = 0;
}

std::span<std::uint8_t> FileChunker::space() {
  const std::size_t size = fill_to(chunker_);
  if (buffer_.size() < size) buffer_.resize(size);
  return {buffer_.data() + filled_, size - filled_};
}

void FileChunker::commit(std::size_t filled) {
  filled_ += filled;
  if (filled_ >= fill_to(chunker_)) cut_and_store(false);
}

void FileChunker::add(ByteView data) {
  while (!data.empty()) {
    const std::span<std::uint8_t> room = space();
    const std::size_t take = std::min(data.size(), room.size());
    std::memcpy(room.data(), data.data(), take);
    data = data.subspan(take);
    commit(take);
  }
}

void FileChunker::end() {
  cut_and_store(true);
  out_ = nullptr;
}

void FileChunker::finish() {
  if (!sealers_) return;
  submit_batch();
  sealers_->wait();
}

void FileChunker::submit_batch() {
  if (batch_.empty()) return;
  auto frames = std::make_shared<std::vector<std::shared_ptr<Frame>>>(std::move(batch_));
  batch_.clear();
  batch_bytes_ = 0;
  // Consecutive frames (small files, one after another in the walk) are
  // sealed together, up to kBatchBytes: one zstd frame compresses them as
  // one stream and one envelope's overhead serves them all, while a restore
  // of one of them still opens at most 1 MiB (a larger frame goes alone).
  sealers_->submit([&chunks = chunks_, frames, counter = added_bytes_] {
    std::vector<ByteView> views;
    std::vector<repo::ChunkId> ids;
    std::size_t bytes = 0;
    auto seal = [&] {
      if (views.empty()) return;
      for (const repo::AddResult& a : chunks.add_group(views, ids)) *counter += a.stored_bytes;
      views.clear();
      ids.clear();
      bytes = 0;
    };
    for (const auto& f : *frames) {
      if (bytes + f->data.size() > kBatchBytes) seal();
      std::size_t at = 0;
      for (std::size_t i = 0; i < f->lengths.size(); ++i) {
        views.push_back(ByteView(f->data).subspan(at, f->lengths[i]));
        ids.push_back(f->ids[i]);
        at += f->lengths[i];
      }
      bytes += f->data.size();
    }
    seal();
  });
}

void FileChunker::store_group(const std::vector<ByteView>& group) {
  if (!sealers_) {
    const std::vector<repo::AddResult> added = chunks_.add_group(group);
    for (std::size_t i = 0; i < group.size(); ++i) {
      out_->push_back({added[i].id, static_cast<std::uint32_t>(group[i].size())});
      *added_bytes_ += added[i].stored_bytes;
    }
    return;
  }
  auto frame = std::make_shared<Frame>();
  bool known = true;  // every chunk is in the store already: nothing to seal
  for (const ByteView& chunk : group) {
    const repo::ChunkId id = chunks_.chunk_id(chunk);
    out_->push_back({id, static_cast<std::uint32_t>(chunk.size())});
    known = known && chunks_.contains(id);
    frame->ids.push_back(id);
    frame->lengths.push_back(static_cast<std::uint32_t>(chunk.size()));
  }
  if (known) return;
  std::size_t bytes = 0;
  for (const ByteView& chunk : group) bytes += chunk.size();
  frame->data.reserve(bytes);
  for (const ByteView& chunk : group)
    frame->data.insert(frame->data.end(), chunk.begin(), chunk.end());
  batch_.push_back(std::move(frame));
  batch_bytes_ += bytes;
  if (batch_bytes_ >= kBatchBytes || batch_.size() >= kBatchFrames) submit_batch();
}

// Stores the buffered bytes that can be cut now (all of them at the end of
// the file), grouped into frames of up to repo::kFrameBytes.
void FileChunker::cut_and_store(bool at_end) {
  std::size_t at = 0;
  std::vector<ByteView> group;
  std::size_t group_bytes = 0;
  auto flush_group = [&] {
    if (group.empty()) return;
    store_group(group);
    group.clear();
    group_bytes = 0;
  };
  const ByteView filled(buffer_.data(), filled_);
  while (at < filled_ && (at_end || filled_ - at >= chunker_.max_size())) {
    const ByteView rest = filled.subspan(at);
    const std::size_t len = chunker_.cut(rest);
    if (group_bytes + len > repo::kFrameBytes) flush_group();
    group.push_back(rest.first(len));
    group_bytes += len;
    at += len;
  }
  flush_group();
  if (filled_ > at) std::memmove(buffer_.data(), buffer_.data() + at, filled_ - at);
  filled_ -= at;
}

}  // namespace walvault::files
