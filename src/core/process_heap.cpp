#include "core/process_heap.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

namespace walvault {

void prepare_process_heap(std::size_t huge_bytes) {
  constexpr std::size_t kHugePage = std::size_t{2} << 20;
  // Serve big buffers from the brk heap and keep freed memory there, so a
  // buffer freed and allocated again is not faulted in a second time.
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(huge_bytes * 2));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(huge_bytes * 4));
  // One arena: worker threads then allocate from the same prepared heap.
  mallopt(M_ARENA_MAX, 1);
  void* block = std::malloc(huge_bytes);
  if (!block) return;
  auto begin = (reinterpret_cast<std::uintptr_t>(block) + kHugePage - 1) & ~(kHugePage - 1);
  auto end = (reinterpret_cast<std::uintptr_t>(block) + huge_bytes) & ~(kHugePage - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  std::free(block);
}

}  // namespace walvault
