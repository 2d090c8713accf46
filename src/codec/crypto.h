// Cryptographic and checksum primitives, all backed by OpenSSL (libcrypto) and
// xxHash. Pure functions over byte spans; thread-safe.
//
// Nothing here logs or formats key material: callers must never pass a key or
// passphrase into an error message.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/bytes.h"

namespace walvault::codec {

inline constexpr std::size_t kKeySize = 32;    // AES-256 / HMAC-SHA256 key
inline constexpr std::size_t kNonceSize = 12;  // AES-GCM nonce
inline constexpr std::size_t kTagSize = 16;    // AES-GCM tag
inline constexpr std::size_t kSealOverhead = kNonceSize + kTagSize;

using Key = std::array<std::uint8_t, kKeySize>;
using Digest = std::array<std::uint8_t, 32>;

// Initialises libcrypto without reading the system's openssl.cnf: walvault
// uses only built-in algorithms, and parsing that file is a measurable share
// of a short-lived archive-push/get process. Call once at process start;
// without it OpenSSL initialises itself on first use, with the file.
void initialize_crypto();

// Cryptographically secure random bytes (RAND_bytes). Throws Error(kInternal).
void random_bytes(std::span<std::uint8_t> out);
Key random_key();

Digest sha256(ByteView data);
Digest hmac_sha256(const Key& key, ByteView data);

// HKDF-SHA256 (RFC 5869) with an empty salt: derives an independent sub-key of
// `master` for the purpose named by `info`.
Key hkdf_sha256(const Key& master, std::string_view info);

struct ScryptParams {
  std::uint64_t n = 1u << 15;  // CPU/memory cost, a power of two
  std::uint32_t r = 8;
  std::uint32_t p = 1;
};
// scrypt (RFC 7914) of `passphrase` under `salt`. Throws Error(kInternal) when
// OpenSSL rejects the parameters.
Key scrypt(std::string_view passphrase, ByteView salt, const ScryptParams& params);

// AES-256-GCM with a fresh random 96-bit nonce. Output layout:
// nonce (12) | ciphertext (same length as plaintext) | tag (16).
// `aad` is authenticated, not stored.
Bytes aes_gcm_seal(const Key& key, ByteView plaintext, ByteView aad);
// Same, appending to `out` instead of returning a new buffer.
void aes_gcm_seal_append(const Key& key, ByteView plaintext, ByteView aad, Bytes& out);
// The same record, built in `buffer` itself: on entry it holds kNonceSize
// bytes of room, the plaintext, and kTagSize bytes of room; on return, the
// nonce, the ciphertext (encrypted in place) and the tag.
void aes_gcm_seal_in_place(const Key& key, std::span<std::uint8_t> buffer, ByteView aad);
// Inverse of aes_gcm_seal. std::nullopt when the input is too short or the tag
// does not verify (wrong key, flipped bit, truncation).
std::optional<Bytes> aes_gcm_open(const Key& key, ByteView sealed, ByteView aad);
// Same, appending the plaintext to `out`, so a caller can reuse one buffer's
// capacity across calls. Returns false, with `out` as it was, where
// aes_gcm_open returns std::nullopt.
bool aes_gcm_open_append(const Key& key, ByteView sealed, ByteView aad, Bytes& out);

// XXH3-64 with seed 0.
std::uint64_t xxh3_64(ByteView data);

// Constant-time comparison of equal-length buffers.
bool equal_ct(ByteView a, ByteView b);

}  // namespace walvault::codec
