#include "core/direct_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <new>

#include "core/error.h"

namespace walvault {

AlignedBuffer::AlignedBuffer(std::size_t size) : size_(size) {
  void* p = nullptr;
  if (::posix_memalign(&p, kDirectAlign, size) != 0) throw std::bad_alloc();
  data_ = static_cast<std::uint8_t*>(p);
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

void pwrite_all(int fd, const std::uint8_t* data, std::size_t size, std::uint64_t offset,
                const std::string& what) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(what);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

std::size_t pwrite_direct(int fd, const std::uint8_t* data, std::size_t size, std::uint64_t offset,
                          const std::string& what) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL) break;
      throw_errno(what);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
    if (done % kDirectAlign != 0) break;
  }
  return done;
}

}  // namespace walvault
