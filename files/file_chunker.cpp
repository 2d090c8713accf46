#include "files/file_chunker.h"

#include <algorithm>
#include <memory>

namespace walvault::files {

void FileChunker::begin(std::vector<ChunkRef>& out) {
  out_ = &out;
  buffer_.clear();
}

void FileChunker::add(ByteView data) {
  const std::size_t fill_to = repo::kFrameBytes + chunker_.max_size();
  while (!data.empty()) {
    const std::size_t take = std::min(data.size(), fill_to - buffer_.size());
    buffer_.insert(buffer_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
    data = data.subspan(take);
    if (buffer_.size() >= fill_to) cut_and_store(false);
  }
}

void FileChunker::end() {
  cut_and_store(true);
  out_ = nullptr;
}

namespace {

// A frame on its way to a sealing task: the chunks' bytes back to back.
struct Frame {
  Bytes data;
  std::vector<std::uint32_t> lengths;
  std::vector<repo::ChunkId> ids;
};

std::vector<ByteView> frame_views(const Frame& f) {
  std::vector<ByteView> views;
  std::size_t at = 0;
  for (std::uint32_t len : f.lengths) {
    views.push_back(ByteView(f.data).subspan(at, len));
    at += len;
  }
  return views;
}

}  // namespace

void FileChunker::store_group(const std::vector<ByteView>& group) {
  auto count = [counter = added_bytes_](const std::vector<repo::AddResult>& added) {
    for (const repo::AddResult& a : added) *counter += a.stored_bytes;
  };
  if (!sealers_) {
    const std::vector<repo::AddResult> added = chunks_.add_group(group);
    for (std::size_t i = 0; i < group.size(); ++i)
      out_->push_back({added[i].id, static_cast<std::uint32_t>(group[i].size())});
    count(added);
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
  sealers_->submit([&chunks = chunks_, frame, count] {
    count(chunks.add_group(frame_views(*frame), frame->ids));
  });
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
  while (at < buffer_.size() && (at_end || buffer_.size() - at >= chunker_.max_size())) {
    const ByteView rest = ByteView(buffer_).subspan(at);
    const std::size_t len = chunker_.cut(rest);
    if (group_bytes + len > repo::kFrameBytes) flush_group();
    group.push_back(rest.first(len));
    group_bytes += len;
    at += len;
  }
  flush_group();
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(at));
}

}  // namespace walvault::files
