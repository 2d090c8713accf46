// Robustness of open() against crafted envelopes (a repository can be
// written by anyone with access to its storage): whatever the bytes, open()
// either returns exactly the sealed plaintext or throws Error(kCorruption)
// (kKey for an encrypted envelope opened without a key), and never reads out
// of bounds or allocates what the header merely claims. Run under
// -fsanitize=address,undefined (scripts/sanitize); WALVAULT_FUZZ_SECONDS
// lets the loops run longer there.
#include <gtest/gtest.h>

#include <random>

#include "codec/envelope.h"
#include "core/error.h"
#include "support/fuzz_seeds.h"

namespace walvault::codec {
namespace {

using walvault::testing::FuzzSeeds;

constexpr std::string_view kObjectName = "chunks/ab/abcdef";

const Key& test_key() {
  static const Key key = random_key();
  return key;
}

Bytes plaintext_for(std::mt19937_64& rng) {
  Bytes data(rng() % 3000);
  const bool repetitive = rng() % 2;
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<std::uint8_t>(repetitive ? i % 7 : rng());
  return data;
}

// Opens `envelope`: true when it yields `sealed`, false on the errors a
// damaged envelope may raise; anything else fails the test.
void expect_exact_or_rejected(ByteView envelope, const Key* key, const Bytes& sealed,
                              const std::string& context) {
  try {
    const Bytes opened = open(envelope, key, kObjectName);
    EXPECT_TRUE(opened == sealed) << context << ": opened to different bytes";
  } catch (const Error& e) {
    EXPECT_TRUE(e.code() == ErrorCode::kCorruption || e.code() == ErrorCode::kKey)
        << context << ": " << e.what();
  }
}

TEST(EnvelopeFuzz, MutatedEnvelopesNeverYieldOtherBytes) {
  for (FuzzSeeds seeds(300); seeds.next();) {
    std::mt19937_64 rng(seeds.seed());
    const Bytes plaintext = plaintext_for(rng);
    const bool encrypt = rng() % 2;
    const SealOptions options{
        .compress = rng() % 2 == 0, .zstd_level = 1, .key = encrypt ? &test_key() : nullptr};
    Bytes envelope = seal(plaintext, options);
    switch (rng() % 4) {
      case 0:  // bit flips anywhere
        for (int f = 1 + static_cast<int>(rng() % 4); f > 0; --f)
          envelope[rng() % envelope.size()] ^= static_cast<std::uint8_t>(1u << rng() % 8);
        break;
      case 1:  // truncation
        envelope.resize(rng() % envelope.size());
        break;
      case 2:  // trailing garbage
        for (int n = 1 + static_cast<int>(rng() % 64); n > 0; --n)
          envelope.push_back(static_cast<std::uint8_t>(rng()));
        break;
      default:  // random payload behind the intact header
        for (std::size_t i = kEnvelopeHeaderSize; i < envelope.size(); ++i)
          envelope[i] = static_cast<std::uint8_t>(rng());
    }
    const Key* key = rng() % 8 == 0 ? nullptr : &test_key();
    expect_exact_or_rejected(envelope, key, plaintext, seeds.describe());
  }
}

TEST(EnvelopeFuzz, CraftedHeadersClaimingAnyLength) {
  // A valid-looking header (magic, version, known flags) claiming lengths up
  // to 2^64-1 over a short payload: rejected without allocating the claim.
  for (FuzzSeeds seeds(300); seeds.next();) {
    std::mt19937_64 rng(seeds.seed() + 9000);
    const Bytes plaintext = plaintext_for(rng);
    const bool encrypt = rng() % 2;
    Bytes envelope =
        seal(plaintext,
             {.compress = rng() % 2 == 0, .zstd_level = 1, .key = encrypt ? &test_key() : nullptr});
    const std::uint64_t lengths[] = {0,
                                     1,
                                     plaintext.size() + 1,
                                     std::uint64_t{1} << 32,
                                     std::uint64_t{1} << 62,
                                     ~std::uint64_t{0},
                                     rng()};
    store_le<std::uint64_t>(envelope.data() + 8, lengths[rng() % std::size(lengths)]);
    if (rng() % 2) envelope[5] = static_cast<std::uint8_t>(rng() % 4);  // any known flags
    if (rng() % 2) store_le<std::uint64_t>(envelope.data() + 16, rng());
    expect_exact_or_rejected(envelope, &test_key(), plaintext, seeds.describe());
  }
}

}  // namespace
}  // namespace walvault::codec
