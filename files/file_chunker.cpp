#include "files/file_chunker.h"

#include <algorithm>

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

// Stores the buffered bytes that can be cut now (all of them at the end of
// the file), grouped into frames of up to repo::kFrameBytes.
void FileChunker::cut_and_store(bool at_end) {
  std::size_t at = 0;
  std::vector<ByteView> group;
  std::size_t group_bytes = 0;
  auto store_group = [&] {
    if (group.empty()) return;
    const std::vector<repo::AddResult> added = chunks_.add_group(group);
    for (std::size_t i = 0; i < group.size(); ++i) {
      out_->push_back({added[i].id, static_cast<std::uint32_t>(group[i].size())});
      added_bytes_ += added[i].stored_bytes;
    }
    group.clear();
    group_bytes = 0;
  };
  while (at < buffer_.size() && (at_end || buffer_.size() - at >= chunker_.max_size())) {
    const ByteView rest = ByteView(buffer_).subspan(at);
    const std::size_t len = chunker_.cut(rest);
    if (group_bytes + len > repo::kFrameBytes) store_group();
    group.push_back(rest.first(len));
    group_bytes += len;
    at += len;
  }
  store_group();
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(at));
}

}  // namespace walvault::files
