// Content-defined chunking for file-volume snapshots: FastCDC (Xia et al.,
// USENIX ATC 2016) with normalised chunking, level 2.
//
// A cut point depends only on the 64 bytes before it (a gear hash: fp =
// (fp << 1) + gear[byte]), so an insertion or deletion in the middle of a file
// moves the cut points around it and leaves the rest where they were: the
// chunks before and after are stored once.
//
// Parameters (docs/format.md, "File chunks"): a chunk is at least min_size
// bytes (the first min_size bytes are skipped, not hashed), at most max_size,
// and average_size on average. Until average_size a cut needs the top
// log2(average)+2 bits of fp to be zero, after it the top log2(average)-2:
// that narrows the spread of sizes around the average (normalised chunking).
//
// The gear table decides the cut points, so it is keyed: in an encrypted
// repository by a key derived from the repository's master key
// (Repository::derived_key(kGearKeyInfo)), because a fixed table would let anyone who reads the
// sizes of stored chunks test guesses about their content. An unencrypted
// repository uses the fixed unkeyed_gear_table(), the same everywhere.
//
// Pure functions; thread-safe; nothing here allocates per call.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "codec/crypto.h"
#include "core/bytes.h"

namespace walvault::codec {

struct CdcParams {
  std::uint32_t min_size = 256u << 10;
  std::uint32_t average_size = 1u << 20;  // a power of two
  std::uint32_t max_size = 4u << 20;
};

// Throws Error(kInvalidInput) unless 64 <= min < average < max <= 64 MiB and
// average is a power of two between 256 B and 16 MiB.
void check_cdc_params(const CdcParams& params);

using GearTable = std::array<std::uint64_t, 256>;

// What a repository's gear key is derived for: HKDF-SHA256(master key, this).
inline constexpr std::string_view kGearKeyInfo = "walvault cdc gear v1";

// gear[i] = the first 8 bytes (little-endian) of HMAC-SHA256(gear_key,
// "gear" || u8 i).
GearTable keyed_gear_table(const Key& gear_key);
// The same with the all-zero key: unencrypted repositories.
const GearTable& unkeyed_gear_table();
// keyed_gear_table(*gear_key), or the unkeyed table without a key.
GearTable gear_table(const std::optional<Key>& gear_key);

class CdcChunker {
 public:
  // Throws what check_cdc_params throws.
  CdcChunker(const CdcParams& params, const GearTable& gear);

  // The length of the first chunk of `data`, which starts at a chunk
  // boundary. `data` must hold at least max_size() bytes, or else everything
  // that is left of the stream (then a chunk may be shorter than min_size).
  // Returns 0 only for empty `data`.
  std::size_t cut(ByteView data) const;

  std::size_t max_size() const { return params_.max_size; }
  const CdcParams& params() const { return params_; }

 private:
  CdcParams params_;
  GearTable gear_;            // a copy (2 KiB): the chunker owns what decides its cuts
  std::uint64_t mask_small_;  // before average_size: harder to cut
  std::uint64_t mask_large_;  // after: easier
};

}  // namespace walvault::codec
