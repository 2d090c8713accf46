// Process-wide heap tuning for the short-lived archive-push/get processes.
//
// Each call handles 16 MiB segments in a fresh process, so every large buffer
// is memory the process touches for the first time. On the virtual machines
// we measured, first-touch page faults cost ~80 ms per 16 MiB with 4 KiB
// pages and ~1 ms with transparent huge pages (docs/benchmarks.md). THP is
// usually in "madvise" mode, so this asks for it explicitly: large
// allocations come from the main heap (not per-allocation mmap), the heap is
// never trimmed back, and a block of it is marked MADV_HUGEPAGE up front.
#pragma once

#include <cstddef>

namespace walvault {

// Call once at the start of the process (cli::run), before any thread starts. Costs no
// resident memory until buffers are used. Never fails (tuning only).
void prepare_process_heap(std::size_t huge_bytes = std::size_t{256} << 20);

}  // namespace walvault
