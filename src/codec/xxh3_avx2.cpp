// XXH3-64 compiled for AVX2, chosen at run time by codec::xxh3_64 (crypto.cpp)
// on processors that have it: twice the speed of the SSE2 build Debian's
// libxxhash.a carries (which has no run-time dispatch), the same digest.
// This file is compiled with -mavx2 and includes nothing but xxhash.h and C
// headers, so no inline function or template compiled with AVX2 can be
// picked by the linker for code that runs on a processor without it.
#define XXH_INLINE_ALL
#define XXH_STATIC_LINKING_ONLY
#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

namespace walvault::codec {

uint64_t xxh3_64_avx2(const void* data, size_t size) { return XXH3_64bits(data, size); }

}  // namespace walvault::codec
