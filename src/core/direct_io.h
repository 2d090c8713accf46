// Writing around the page cache (O_DIRECT), shared by the database restore
// and the file-volume restore, and the plain positioned write both fall back
// to.
//
// Direct I/O wants the buffer, the file offset and the length aligned to the
// device's logical block; kDirectAlign (4 KiB) covers the devices we know. A
// file system may still refuse a direct write (EINVAL: tmpfs before 6.6, some
// network file systems): pwrite_direct then stops and says how much it wrote,
// and the caller writes the rest through the page cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace walvault {

inline constexpr std::size_t kDirectAlign = 4096;

// A block-aligned heap buffer of a fixed size (posix_memalign; std::bad_alloc
// when that fails). Not copyable; movable.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(std::size_t size);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }
  AlignedBuffer& operator=(AlignedBuffer&&) = delete;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  std::uint8_t* data() { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::uint8_t* data_;
  std::size_t size_;
};

// An allocator of block-aligned storage, so that a growing byte vector can be
// written with direct I/O.
template <class T>
struct DirectAllocator {
  using value_type = T;
  DirectAllocator() = default;
  template <class U>
  explicit DirectAllocator(const DirectAllocator<U>& /*other*/) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{kDirectAlign}));
  }
  void deallocate(T* p, std::size_t /*n*/) {
    ::operator delete (p, std::align_val_t{kDirectAlign});
  }
  // Default-initialises (no zeroing): resize() makes room that memcpy fills.
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    if constexpr (sizeof...(Args) == 0)
      ::new (static_cast<void*>(p)) U;
    else
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  bool operator==(const DirectAllocator& /*other*/) const { return true; }
};

// Bytes whose storage starts on a block boundary. Append with resize() and
// memcpy: a range insert copies element by element through the allocator.
using AlignedBytes = std::vector<std::uint8_t, DirectAllocator<std::uint8_t>>;

// pwrite(2) of all `size` bytes at `offset`, retrying short writes and EINTR.
// Throws Error(kIo) naming `what` ("<what>: <strerror>").
void pwrite_all(int fd, const std::uint8_t* data, std::size_t size, std::uint64_t offset,
                const std::string& what);

// Writes as much of `data` as direct I/O takes at `offset` through `fd`
// (opened O_DIRECT; data, size and offset aligned to kDirectAlign) and
// returns how many bytes that was: all of them, or fewer when the file
// system refused direct I/O for this write (EINVAL) or wrote part of it; the
// caller writes the rest through the page cache. Throws Error(kIo) naming
// `what` on any other failure (ENOSPC, EIO).
std::size_t pwrite_direct(int fd, const std::uint8_t* data, std::size_t size, std::uint64_t offset,
                          const std::string& what);

}  // namespace walvault
