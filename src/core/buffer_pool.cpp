#include "core/buffer_pool.h"

#include <algorithm>

namespace walvault {

BufferPool::Buffer& BufferPool::Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = other.pool_;
    data_ = other.data_;
    other.pool_ = nullptr;
    other.data_ = nullptr;
  }
  return *this;
}

void BufferPool::Buffer::release() noexcept {
  if (data_) pool_->give_back(data_);
  pool_ = nullptr;
  data_ = nullptr;
}

BufferPool::BufferPool(std::size_t buffer_bytes, std::size_t count)
    : buffer_bytes_(buffer_bytes), count_(std::max<std::size_t>(1, count)) {
  storage_.reserve(count_);
}

BufferPool::Buffer BufferPool::acquire() {
  std::unique_lock lock(mu_);
  returned_.wait(lock, [&] { return !free_.empty() || storage_.size() < count_; });
  std::uint8_t* data;
  if (!free_.empty()) {
    data = free_.back();
    free_.pop_back();
  } else {
    // Default-initialised: not zero-filled, the producer writes before any read.
    storage_.push_back(std::unique_ptr<std::uint8_t[]>(new std::uint8_t[buffer_bytes_]));
    data = storage_.back().get();
  }
  peak_out_ = std::max(peak_out_, ++out_);
  return Buffer(this, data);
}

void BufferPool::give_back(std::uint8_t* data) noexcept {
  {
    std::lock_guard lock(mu_);
    free_.push_back(data);
    --out_;
  }
  returned_.notify_one();
}

std::size_t BufferPool::peak_out() const {
  std::lock_guard lock(mu_);
  return peak_out_;
}

}  // namespace walvault
