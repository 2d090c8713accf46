#include "codec/fastcdc.h"

#include <bit>
#include <string>

#include "core/error.h"

namespace walvault::codec {
namespace {

GearTable gear_from(const Key& key) {
  GearTable gear;
  for (std::size_t i = 0; i < gear.size(); ++i) {
    const std::uint8_t message[5] = {'g', 'e', 'a', 'r', static_cast<std::uint8_t>(i)};
    const Digest d = hmac_sha256(key, ByteView(message, sizeof message));
    gear[i] = load_le<std::uint64_t>(d.data());
  }
  return gear;
}

// The top `bits` bits of a 64-bit fingerprint: those depend on the most
// bytes (up to 64) of the gear hash's window.
std::uint64_t top_bits(int bits) { return ~std::uint64_t{0} << (64 - bits); }

}  // namespace

void check_cdc_params(const CdcParams& p) {
  const bool ok = p.min_size >= 64 && p.min_size < p.average_size && p.average_size < p.max_size &&
                  p.max_size <= (64u << 20) && std::has_single_bit(p.average_size) &&
                  p.average_size >= 256 && p.average_size <= (16u << 20);
  if (!ok)
    throw Error(ErrorCode::kInvalidInput,
                "chunker parameters min " + std::to_string(p.min_size) + ", average " +
                    std::to_string(p.average_size) + ", max " + std::to_string(p.max_size) +
                    ": need 64 <= min < average < max <= 64 MiB, average a power of two");
}

GearTable keyed_gear_table(const Key& gear_key) { return gear_from(gear_key); }

GearTable gear_table(const std::optional<Key>& gear_key) {
  return gear_key ? keyed_gear_table(*gear_key) : unkeyed_gear_table();
}

const GearTable& unkeyed_gear_table() {
  static const GearTable gear = gear_from(Key{});
  return gear;
}

CdcChunker::CdcChunker(const CdcParams& params, const GearTable& gear)
    : params_(params), gear_(gear) {
  check_cdc_params(params_);
  const int bits = std::countr_zero(params_.average_size);
  mask_small_ = top_bits(bits + 2);
  mask_large_ = top_bits(bits - 2);
}

std::size_t CdcChunker::cut(ByteView data) const {
  const std::size_t n = data.size();
  if (n <= params_.min_size) return n;
  const std::size_t limit = n < params_.max_size ? n : params_.max_size;
  const std::size_t normal = limit < params_.average_size ? limit : params_.average_size;
  const GearTable& gear = gear_;
  const std::uint8_t* d = data.data();
  std::uint64_t fp = 0;
  std::size_t i = params_.min_size;
  for (; i < normal; ++i) {
    fp = (fp << 1) + gear[d[i]];
    if ((fp & mask_small_) == 0) return i + 1;
  }
  for (; i < limit; ++i) {
    fp = (fp << 1) + gear[d[i]];
    if ((fp & mask_large_) == 0) return i + 1;
  }
  return limit;
}

}  // namespace walvault::codec
