// Envelope round trips and corruption detection. Every damaged envelope must
// fail with Error(kCorruption) naming the object; none may yield bytes that
// differ from what was sealed.
#include "codec/envelope.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "core/error.h"

namespace walvault::codec {
namespace {

constexpr std::string_view kObjectName = "wal/000000010000000000000001";
constexpr std::size_t kMiB = 1 << 20;

Bytes random_data(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 generator(seed);
  Bytes data(size);
  for (auto& byte : data) byte = static_cast<std::uint8_t>(generator());
  return data;
}

// Repetitive records with a little variation, roughly the texture of WAL.
Bytes compressible_data(std::size_t size) {
  Bytes data;
  data.reserve(size);
  std::mt19937_64 generator(42);
  for (std::uint64_t record = 0; data.size() < size; ++record) {
    const std::string text = "INSERT INTO pgbench_history VALUES (" + std::to_string(record) +
                             ", " + std::to_string(generator() % 100000) + ", 'filler');";
    data.insert(data.end(), text.begin(), text.end());
  }
  data.resize(size);
  return data;
}

// The 16 MiB inputs are built once and shared by the variants.
const Bytes& large_random() {
  static const Bytes data = random_data(16 * kMiB, 1);
  return data;
}
const Bytes& large_compressible() {
  static const Bytes data = compressible_data(16 * kMiB);
  return data;
}

const Key& test_key() {
  static const Key key = random_key();
  return key;
}

// Opens `envelope` expecting Error(code) whose message starts with the object
// name; reports `context` on failure.
void expect_error(ByteView envelope, const Key* key, ErrorCode code, const std::string& context) {
  try {
    const Bytes opened = open(envelope, key, kObjectName);
    ADD_FAILURE() << context << ": opened without error (" << opened.size() << " bytes)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << context << ": " << e.what();
    EXPECT_TRUE(std::string_view(e.what()).starts_with(std::string(kObjectName) + ": "))
        << context << ": " << e.what();
  }
}

void expect_corruption(ByteView envelope, const std::string& context) {
  expect_error(envelope, &test_key(), ErrorCode::kCorruption, context);
}

struct Variant {
  bool compress;
  bool encrypt;
};

std::string variant_name(const testing::TestParamInfo<Variant>& info) {
  return std::string(info.param.compress ? "Zstd" : "Raw") +
         (info.param.encrypt ? "Encrypted" : "Plain");
}

class EnvelopeTest : public testing::TestWithParam<Variant> {
 protected:
  SealOptions options() const {
    return {.compress = GetParam().compress,
            .zstd_level = 1,
            .key = GetParam().encrypt ? &test_key() : nullptr};
  }
  const Key* key() const { return GetParam().encrypt ? &test_key() : nullptr; }

  void expect_round_trip(const Bytes& plaintext) const {
    const Bytes envelope = seal(plaintext, options());
    const Bytes opened = open(envelope, key(), kObjectName);
    EXPECT_TRUE(opened == plaintext) << "round trip of " << plaintext.size() << " bytes";
  }
};

INSTANTIATE_TEST_SUITE_P(AllVariants, EnvelopeTest,
                         testing::Values(Variant{false, false}, Variant{true, false},
                                         Variant{false, true}, Variant{true, true}),
                         variant_name);

TEST_P(EnvelopeTest, RoundTripEmpty) { expect_round_trip({}); }

TEST_P(EnvelopeTest, RoundTripSmall) {
  expect_round_trip(to_bytes("x"));
  expect_round_trip(to_bytes("hello, envelope"));
}

TEST_P(EnvelopeTest, RoundTripLargeRandom) { expect_round_trip(large_random()); }

TEST_P(EnvelopeTest, RoundTripLargeCompressible) { expect_round_trip(large_compressible()); }

TEST_P(EnvelopeTest, CallerSuppliedHashIsUsedAndAWrongOneIsCaught) {
  const Bytes plaintext = compressible_data(kMiB);
  SealOptions supplied = options();
  int calls = 0;
  supplied.plaintext_xxh3 = [&] {
    ++calls;
    return xxh3_64(plaintext);
  };
  EXPECT_TRUE(open(seal(plaintext, supplied), key(), kObjectName) == plaintext);
  EXPECT_EQ(calls, 1);
  SealOptions wrong = options();
  wrong.plaintext_xxh3 = [&] { return xxh3_64(plaintext) ^ 1; };
  const Bytes envelope = seal(plaintext, wrong);
  try {
    open(envelope, key(), kObjectName);
    FAIL() << "a wrong caller-supplied hash went unnoticed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
  }
}

TEST_P(EnvelopeTest, HeaderDescribesContent) {
  const Bytes plaintext = compressible_data(100000);
  const Bytes envelope = seal(plaintext, options());
  const auto header = parse_header(envelope);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->version, kEnvelopeVersion);
  EXPECT_EQ(header->flags, (GetParam().compress ? kFlagCompressed : 0) |
                               (GetParam().encrypt ? kFlagEncrypted : 0));
  EXPECT_EQ(header->plaintext_length, plaintext.size());
  EXPECT_EQ(header->xxh3, xxh3_64(plaintext));
  EXPECT_EQ(as_chars(ByteView(envelope).first(4)), "WVE1");
  EXPECT_EQ(envelope[6], 0);
  EXPECT_EQ(envelope[7], 0);
  if (GetParam().compress) {
    EXPECT_LT(envelope.size(), plaintext.size() / 4);
  } else {
    EXPECT_EQ(envelope.size(),
              kEnvelopeHeaderSize + plaintext.size() + (GetParam().encrypt ? kSealOverhead : 0));
  }
}

TEST_P(EnvelopeTest, EveryHeaderBitFlipIsCorruption) {
  const Bytes envelope = seal(compressible_data(10000), options());
  for (std::size_t i = 0; i < kEnvelopeHeaderSize; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes damaged = envelope;
      damaged[i] ^= static_cast<std::uint8_t>(1u << bit);
      expect_corruption(damaged, "byte " + std::to_string(i) + " bit " + std::to_string(bit));
    }
  }
}

TEST_P(EnvelopeTest, PayloadByteFlipsAreCorruption) {
  const Bytes envelope = seal(compressible_data(50000), options());
  const std::size_t payload = envelope.size() - kEnvelopeHeaderSize;
  // Every byte of the first and last 64 (frame header, nonce, tag, frame
  // end) and an even spread through the middle.
  for (std::size_t offset = 0; offset < payload; ++offset) {
    if (offset >= 64 && offset + 64 < payload && offset % 37 != 0) continue;
    Bytes damaged = envelope;
    damaged[kEnvelopeHeaderSize + offset] ^= 0xa5;
    expect_corruption(damaged, "payload byte " + std::to_string(offset));
  }
}

TEST_P(EnvelopeTest, TruncationIsCorruption) {
  for (const Bytes& plaintext : {Bytes{}, compressible_data(20000)}) {
    const Bytes envelope = seal(plaintext, options());
    for (std::size_t length = 0; length < envelope.size(); ++length) {
      if (length >= 100 && length + 100 < envelope.size() && length % 13 != 0) continue;
      expect_corruption(
          ByteView(envelope).first(length),
          "truncated to " + std::to_string(length) + " of " + std::to_string(envelope.size()));
    }
  }
}

TEST_P(EnvelopeTest, TrailingBytesAreCorruption) {
  const Bytes envelope = seal(compressible_data(20000), options());
  for (std::size_t extra : {1, 4, 100}) {
    Bytes damaged = envelope;
    damaged.resize(damaged.size() + extra, 0);
    expect_corruption(damaged, std::to_string(extra) + " trailing bytes");
  }
  // An empty zstd skippable frame appended after the real one.
  Bytes with_skippable = envelope;
  for (std::uint8_t byte : {0x50, 0x2a, 0x4d, 0x18, 0x00, 0x00, 0x00, 0x00}) {
    with_skippable.push_back(byte);
  }
  expect_corruption(with_skippable, "skippable frame appended");
}

TEST_P(EnvelopeTest, SealIsRepeatableAcrossCalls) {
  // The per-thread zstd context and scratch buffer are reused; a large seal
  // followed by a small one must not leak state between them.
  const Bytes large = random_data(2 * kMiB, 3);
  const Bytes small = to_bytes("small");
  const Bytes first_large = seal(large, options());
  const Bytes small_envelope = seal(small, options());
  EXPECT_EQ(open(small_envelope, key(), kObjectName), small);
  EXPECT_EQ(open(first_large, key(), kObjectName), large);
}

// seal_to builds the envelope inside the compression buffer (encrypted in
// place): the same format as seal(), byte for byte where no nonce is drawn.
TEST_P(EnvelopeTest, SealToGivesTheEnvelopeSealGives) {
  const Bytes small = to_bytes("small");
  const Bytes empty;
  for (const Bytes* plaintext : {&large_random(), &large_compressible(), &small, &empty}) {
    const std::string what = std::to_string(plaintext->size()) + " bytes";
    Bytes via_sink;
    int calls = 0;
    seal_to(*plaintext, options(), [&](ByteView envelope) {
      ++calls;
      via_sink.assign(envelope.begin(), envelope.end());
    });
    ASSERT_EQ(calls, 1) << what;
    const Bytes sealed = seal(*plaintext, options());
    ASSERT_EQ(via_sink.size(), sealed.size()) << what;
    EXPECT_TRUE(std::equal(sealed.begin(), sealed.begin() + kEnvelopeHeaderSize, via_sink.begin()))
        << what << ": headers differ";
    if (!GetParam().encrypt) EXPECT_TRUE(via_sink == sealed) << what;
    EXPECT_TRUE(open(via_sink, key(), kObjectName) == *plaintext) << what;
    if (GetParam().encrypt && !plaintext->empty()) {
      Bytes damaged = via_sink;
      damaged.back() ^= 0x01;  // the tag
      expect_corruption(damaged, what + ", tag flipped");
      damaged = via_sink;
      damaged[kEnvelopeHeaderSize + kNonceSize] ^= 0x80;  // the ciphertext
      expect_corruption(damaged, what + ", ciphertext flipped");
    }
  }
}

TEST(Envelope, WrongKeyIsCorruption) {
  const Bytes envelope = seal(to_bytes("secret"), {.key = &test_key()});
  const Key other = random_key();
  expect_error(envelope, &other, ErrorCode::kCorruption, "wrong key");
}

TEST(Envelope, EncryptedWithoutKeyIsKeyError) {
  const Bytes envelope = seal(to_bytes("secret"), {.key = &test_key()});
  expect_error(envelope, nullptr, ErrorCode::kKey, "no key");
}

TEST(Envelope, FlippedEncryptedFlagWithoutKeyIsKeyError) {
  // With no key the tag cannot be checked, so a plain envelope whose
  // encrypted flag was flipped reports the missing key, not corruption.
  Bytes envelope = seal(to_bytes("plain"), {});
  envelope[5] ^= kFlagEncrypted;
  expect_error(envelope, nullptr, ErrorCode::kKey, "flag flipped");
}

TEST(Envelope, PlainEnvelopeOpensWithOrWithoutKey) {
  const Bytes envelope = seal(to_bytes("plain"), {});
  EXPECT_EQ(open(envelope, nullptr, kObjectName), to_bytes("plain"));
  EXPECT_EQ(open(envelope, &test_key(), kObjectName), to_bytes("plain"));
}

TEST(Envelope, NonceIsFreshPerSeal) {
  const Bytes plaintext = compressible_data(5000);
  const SealOptions options{.key = &test_key()};
  const Bytes first = seal(plaintext, options);
  const Bytes second = seal(plaintext, options);
  EXPECT_TRUE(std::equal(first.begin(), first.begin() + kEnvelopeHeaderSize, second.begin()));
  EXPECT_NE(first, second);
  EXPECT_EQ(open(first, &test_key(), kObjectName), plaintext);
  EXPECT_EQ(open(second, &test_key(), kObjectName), plaintext);
}

TEST(Envelope, EncryptionHidesPlaintext) {
  const Bytes envelope =
      seal(to_bytes("a very recognisable plaintext"), {.compress = false, .key = &test_key()});
  EXPECT_EQ(as_chars(envelope).find("recognisable"), std::string_view::npos);
}

TEST(Envelope, ParseHeaderRejectsInvalidHeaders) {
  const Bytes envelope = seal(to_bytes("abc"), {});
  ASSERT_TRUE(parse_header(envelope).has_value());
  EXPECT_FALSE(parse_header(ByteView(envelope).first(kEnvelopeHeaderSize - 1)).has_value());
  const struct {
    std::size_t offset;
    std::uint8_t value;
  } damages[] = {{0, 'X'}, {3, '2'}, {4, 2}, {4, 0}, {5, 0x04}, {5, 0x80}, {6, 1}, {7, 1}};
  for (const auto& damage : damages) {
    Bytes damaged = envelope;
    damaged[damage.offset] = damage.value;
    EXPECT_FALSE(parse_header(damaged).has_value()) << "offset " << damage.offset;
  }
}

TEST(Envelope, ErrorMessagesNameTheProblem) {
  Bytes envelope = seal(to_bytes("abc"), {.compress = false});
  envelope.back() ^= 1;
  try {
    open(envelope, nullptr, "packs/ab/abcdef");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_TRUE(std::string_view(e.what()).starts_with("packs/ab/abcdef: ")) << e.what();
    EXPECT_NE(std::string_view(e.what()).find("XXH3"), std::string_view::npos) << e.what();
  }
}

TEST(Envelope, KeyNeverAppearsInMessages) {
  const Bytes envelope = seal(to_bytes("secret"), {.key = &test_key()});
  const Key other = random_key();
  try {
    open(envelope, &other, kObjectName);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find(to_hex(other)), std::string::npos);
    EXPECT_EQ(message.find(to_hex(test_key())), std::string::npos);
  }
}

}  // namespace
}  // namespace walvault::codec
