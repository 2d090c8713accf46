// A fixed budget of equal-size byte buffers, handed from a producer to its
// workers and back: the one bound on how much data a pipeline holds between
// reading and storing it (`walvault backup`: the server's stream, cut into
// groups of chunks, waiting for the workers that seal them).
//
// At most `count` buffers of `buffer_bytes` each ever exist, so the pool
// never holds more than count x buffer_bytes. acquire() blocks while every
// buffer is out (backpressure: a producer faster than its consumers waits
// instead of queueing more data). Buffers are allocated on first need, not
// zero-filled, and reused, so a small job touches little memory and a large
// one does not pay for fresh pages again and again.
//
// Threading: acquire() and the handles' release may run on any threads.
// The pool must outlive every handle it gave out.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace walvault {

class BufferPool {
 public:
  // A buffer of the pool, back in it when the handle is destroyed (or
  // release()d). Move-only; an empty handle (default or moved from) owns none.
  class Buffer {
   public:
    Buffer() = default;
    ~Buffer() { release(); }
    Buffer(Buffer&& other) noexcept : pool_(other.pool_), data_(other.data_) {
      other.pool_ = nullptr;
      other.data_ = nullptr;
    }
    Buffer& operator=(Buffer&& other) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    std::uint8_t* data() const { return data_; }
    explicit operator bool() const { return data_ != nullptr; }
    void release() noexcept;

   private:
    friend class BufferPool;
    Buffer(BufferPool* pool, std::uint8_t* data) : pool_(pool), data_(data) {}
    BufferPool* pool_ = nullptr;
    std::uint8_t* data_ = nullptr;
  };

  // `count` (at least 1) buffers of `buffer_bytes` each, allocated when first needed.
  BufferPool(std::size_t buffer_bytes, std::size_t count);
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A free buffer, blocking while all `count` are out. Throws std::bad_alloc
  // when a first allocation fails.
  Buffer acquire();

  std::size_t buffer_bytes() const { return buffer_bytes_; }
  std::size_t count() const { return count_; }
  // The most buffers out at once so far (tests hold the bound with it).
  std::size_t peak_out() const;

 private:
  void give_back(std::uint8_t* data) noexcept;

  const std::size_t buffer_bytes_;
  const std::size_t count_;
  mutable std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<std::uint8_t[]>> storage_;  // every buffer allocated
  std::vector<std::uint8_t*> free_;
  std::size_t out_ = 0, peak_out_ = 0;
};

}  // namespace walvault
