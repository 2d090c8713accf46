// Known-answer and tamper tests for the crypto primitives. Expected values come
// from the RFCs cited, or were computed independently (Python's hmac/hashlib,
// `openssl kdf`, the `cryptography` package) where our fixed-size key needs a
// vector the RFCs do not list.
#include "codec/crypto.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <string>

#include "core/error.h"

namespace walvault::codec {
namespace {

std::string hex(ByteView bytes) { return to_hex(bytes); }

Bytes unhex(std::string_view text) {
  Bytes out;
  EXPECT_TRUE(from_hex(text, out)) << text;
  return out;
}

Key counting_key() {
  Key key;
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  return key;
}

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(hex(sha256(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(HmacSha256, Rfc4231TestCase2) {
  // The RFC's key is "Jefe". HMAC zero-pads keys to the block size, so the
  // same key zero-padded to our fixed 32 bytes gives the same MAC.
  Key key{};
  const std::string_view jefe = "Jefe";
  std::copy(jefe.begin(), jefe.end(), key.begin());
  EXPECT_EQ(hex(hmac_sha256(key, as_bytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256, DependsOnKey) {
  const Key other = random_key();
  EXPECT_NE(hmac_sha256(counting_key(), as_bytes("chunk")), hmac_sha256(other, as_bytes("chunk")));
}

TEST(HkdfSha256, EmptySaltAndInfo) {
  // RFC 5869 test case 3 (empty salt and info) with a 32-byte IKM of 0x0b;
  // confirmed with `openssl kdf -keylen 32 -kdfopt digest:SHA256 ... HKDF`.
  Key ikm;
  ikm.fill(0x0b);
  EXPECT_EQ(hex(hkdf_sha256(ikm, "")),
            "27488977d7c845fa17e618b4e225651a0a417521175396f455da2c465679eea8");
}

TEST(HkdfSha256, EmptySaltWithInfo) {
  EXPECT_EQ(hex(hkdf_sha256(counting_key(), "walvault/chunk-id")),
            "661740f2e93492e525ddd79f9a4b6b94415f52393dbc92c27a07d086806e36a0");
}

TEST(HkdfSha256, InfoSeparatesSubKeys) {
  const Key master = random_key();
  EXPECT_NE(hkdf_sha256(master, "chunk-id"), hkdf_sha256(master, "chunk-id2"));
  EXPECT_NE(hkdf_sha256(master, "chunk-id"), master);
}

TEST(Scrypt, Rfc7914Vector) {
  const Key derived = scrypt("password", as_bytes("NaCl"), {.n = 1024, .r = 8, .p = 16});
  EXPECT_EQ(hex(derived), "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162");
}

TEST(Scrypt, RejectsInvalidParameters) {
  try {
    scrypt("password", as_bytes("NaCl"), {.n = 1000, .r = 8, .p = 1});  // not a power of two
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
    EXPECT_EQ(std::string(e.what()).find("password"), std::string::npos);
  }
}

TEST(AesGcm, OpensNistVectors) {
  // McGrew & Viega GCM test cases 13 and 14: zero key, zero IV.
  Key zero_key{};
  const auto empty = aes_gcm_open(zero_key,
                                  unhex("000000000000000000000000"
                                        "530f8afbc74536b9a963b4f1c4cb738b"),
                                  {});
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());

  const auto block = aes_gcm_open(zero_key,
                                  unhex("000000000000000000000000"
                                        "cea7403d4d606b6e074ec5d3baf39d18"
                                        "d0d1c8a799996bf0265b98b5d48ab919"),
                                  {});
  ASSERT_TRUE(block.has_value());
  EXPECT_EQ(*block, Bytes(16, 0));
}

TEST(AesGcm, RoundTripAndLayout) {
  const Key key = random_key();
  const Bytes plaintext = to_bytes("the quick brown fox jumps over the lazy dog");
  const Bytes aad = to_bytes("header");
  const Bytes sealed = aes_gcm_seal(key, plaintext, aad);
  ASSERT_EQ(sealed.size(), plaintext.size() + kSealOverhead);
  EXPECT_EQ(as_chars(sealed).find("quick"), std::string_view::npos);
  EXPECT_EQ(aes_gcm_open(key, sealed, aad), plaintext);
}

TEST(AesGcm, EmptyPlaintext) {
  const Key key = random_key();
  const Bytes sealed = aes_gcm_seal(key, {}, {});
  ASSERT_EQ(sealed.size(), kSealOverhead);
  const auto opened = aes_gcm_open(key, sealed, {});
  ASSERT_TRUE(opened.has_value());
  EXPECT_TRUE(opened->empty());
}

TEST(AesGcm, LargeRoundTrip) {
  // Larger than the internal slice size and not a multiple of it.
  const Key key = random_key();
  Bytes plaintext(3 * 16384 + 7);
  random_bytes(plaintext);
  EXPECT_EQ(aes_gcm_open(key, aes_gcm_seal(key, plaintext, {}), {}), plaintext);
}

TEST(AesGcm, AadMismatchFails) {
  const Key key = random_key();
  const Bytes sealed = aes_gcm_seal(key, to_bytes("payload"), to_bytes("header-1"));
  EXPECT_EQ(aes_gcm_open(key, sealed, to_bytes("header-2")), std::nullopt);
  EXPECT_EQ(aes_gcm_open(key, sealed, {}), std::nullopt);
}

TEST(AesGcm, WrongKeyFails) {
  const Bytes sealed = aes_gcm_seal(random_key(), to_bytes("payload"), {});
  EXPECT_EQ(aes_gcm_open(random_key(), sealed, {}), std::nullopt);
}

TEST(AesGcm, EveryByteFlipFails) {
  const Key key = random_key();
  const Bytes sealed = aes_gcm_seal(key, to_bytes("payload of some length"), to_bytes("aad"));
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    Bytes damaged = sealed;
    damaged[i] ^= 0x01;
    EXPECT_EQ(aes_gcm_open(key, damaged, to_bytes("aad")), std::nullopt) << "byte " << i;
  }
}

TEST(AesGcm, EveryTruncationFails) {
  const Key key = random_key();
  const Bytes sealed = aes_gcm_seal(key, to_bytes("payload of some length"), {});
  for (std::size_t length = 0; length < sealed.size(); ++length) {
    EXPECT_EQ(aes_gcm_open(key, ByteView(sealed).first(length), {}), std::nullopt)
        << "length " << length;
  }
}

TEST(AesGcm, NonceIsFreshPerSeal) {
  const Key key = random_key();
  const Bytes first = aes_gcm_seal(key, to_bytes("same"), {});
  const Bytes second = aes_gcm_seal(key, to_bytes("same"), {});
  EXPECT_FALSE(std::equal(first.begin(), first.begin() + kNonceSize, second.begin()));
  EXPECT_NE(first, second);
}

TEST(AesGcm, SealAppendKeepsExistingBytes) {
  const Key key = random_key();
  Bytes out = to_bytes("prefix");
  aes_gcm_seal_append(key, to_bytes("payload"), to_bytes("aad"), out);
  ASSERT_EQ(out.size(), 6 + 7 + kSealOverhead);
  EXPECT_EQ(as_chars(out).substr(0, 6), "prefix");
  EXPECT_EQ(aes_gcm_open(key, ByteView(out).subspan(6), to_bytes("aad")), to_bytes("payload"));
}

TEST(AesGcm, OpenAppendKeepsExistingBytesAndRestoresOnFailure) {
  const Key key = random_key();
  const Bytes sealed = aes_gcm_seal(key, to_bytes("payload"), to_bytes("aad"));
  Bytes out = to_bytes("prefix");
  ASSERT_TRUE(aes_gcm_open_append(key, sealed, to_bytes("aad"), out));
  EXPECT_EQ(as_chars(out), "prefixpayload");

  Bytes damaged = sealed;
  damaged[kNonceSize] ^= 0x01;
  EXPECT_FALSE(aes_gcm_open_append(key, damaged, to_bytes("aad"), out));
  EXPECT_FALSE(aes_gcm_open_append(key, ByteView(sealed).first(kSealOverhead - 1), {}, out));
  EXPECT_EQ(as_chars(out), "prefixpayload");
}

TEST(Xxh3, KnownAnswer) {
  EXPECT_EQ(xxh3_64({}), 0x2D06800538D394C2ull);
  EXPECT_NE(xxh3_64(as_bytes("a")), xxh3_64(as_bytes("b")));
}

// xxh3_64 runs an AVX2 build where the processor has it: the digest must be
// the reference library's for every length class of XXH3 (0, 1-3, 4-8,
// 9-16, 17-128, 129-240, long with and without a partial stripe/block).
TEST(Xxh3, EqualsTheReferenceLibraryAtEveryLength) {
  Bytes data((4u << 20) + 77);
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& b : data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b = static_cast<std::uint8_t>(x);
  }
  for (std::size_t n : {0u, 1u, 3u, 4u, 8u, 9u, 16u, 17u, 128u, 129u, 240u, 241u, 1000u, 1024u,
                        4099u, 65536u, 1048589u, static_cast<unsigned>(data.size())}) {
    for (std::size_t offset : {0u, 1u, 7u}) {
      if (offset + n > data.size()) continue;
      const ByteView view(data.data() + offset, n);
      EXPECT_EQ(xxh3_64(view), XXH3_64bits(view.data(), view.size())) << n << " at " << offset;
    }
  }
}

TEST(EqualCt, ComparesContentAndLength) {
  EXPECT_TRUE(equal_ct(as_bytes("abc"), as_bytes("abc")));
  EXPECT_TRUE(equal_ct({}, {}));
  EXPECT_FALSE(equal_ct(as_bytes("abc"), as_bytes("abd")));
  EXPECT_FALSE(equal_ct(as_bytes("abc"), as_bytes("abcd")));
}

TEST(RandomBytes, FillsAndDiffers) {
  EXPECT_NE(random_key(), random_key());
  Bytes buffer(4096, 0);
  random_bytes(buffer);
  EXPECT_NE(buffer, Bytes(4096, 0));
}

}  // namespace
}  // namespace walvault::codec
