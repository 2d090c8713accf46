// The envelope: the on-disk form of every repository object (docs/format.md).
//
//   offset size  field
//   0      4     magic "WVE1"
//   4      1     format version (1)
//   5      1     flags: bit 0 zstd-compressed, bit 1 AES-256-GCM encrypted
//   6      2     reserved, zero
//   8      8     plaintext length, little-endian
//   16     8     XXH3-64 of the plaintext, little-endian
//   24     ...   payload: the zstd frame (or the raw plaintext when not
//                compressed); when encrypted, nonce | AES-GCM(payload) | tag
//                with the 24 header bytes as additional authenticated data.
//
// open() verifies everything it can: magic, version, flags, reserved bytes, GCM tag, zstd
// frame, length and XXH3. Any mismatch throws Error(kCorruption) naming the
// object, so a caller never sees bytes that differ from what was sealed.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "codec/crypto.h"
#include "core/bytes.h"

namespace walvault::codec {

inline constexpr std::size_t kEnvelopeHeaderSize = 24;
inline constexpr std::uint8_t kEnvelopeVersion = 1;
inline constexpr std::uint8_t kFlagCompressed = 0x01;
inline constexpr std::uint8_t kFlagEncrypted = 0x02;

struct SealOptions {
  bool compress = true;
  int zstd_level = 1;
  // Encrypts when set. The key must outlive the call.
  const Key* key = nullptr;
  // Supplies the plaintext's XXH3-64 instead of seal() computing it; called
  // once, after compression (archive-push hashes on its decoder thread while
  // this one compresses). A wrong value is not silent: open() reports the
  // object as corrupt.
  std::function<std::uint64_t()> plaintext_xxh3;
};

Bytes seal(ByteView plaintext, const SealOptions& options);
// The same envelope, handed to `sink` as a view of this thread's compression
// buffer (valid during the call only): a compressed object is sealed where
// zstd wrote it, with no envelope-sized allocation or copy (a 16 MiB segment
// otherwise pays both, on memory a short-lived process touches for the first
// time). Not to be called again on this thread from inside `sink`.
void seal_to(ByteView plaintext, const SealOptions& options,
             const std::function<void(ByteView)>& sink);

struct EnvelopeHeader {
  std::uint8_t version = 0;
  std::uint8_t flags = 0;
  std::uint64_t plaintext_length = 0;
  std::uint64_t xxh3 = 0;
};

// Parses and checks the fixed header only (magic, version, known flags,
// reserved bytes zero).
// std::nullopt when it is not a valid envelope header.
std::optional<EnvelopeHeader> parse_header(ByteView envelope);

// Verifies and returns the plaintext. `object_name` is used in error messages
// only. Throws Error(kCorruption, "<object_name>: ...") on any mismatch and
// Error(kKey) when the envelope is encrypted but `key` is null.
Bytes open(ByteView envelope, const Key* key, std::string_view object_name);
// As open(), into `out` (resized to the plaintext): a caller opening many
// objects of one size (restore's chunks) reuses warm memory instead of
// allocating and zero-filling a fresh buffer per object. On failure `out`
// holds unspecified bytes.
// PlaintextCheck::kByCaller leaves out the check of the plaintext against
// the header's XXH3: for a caller that verifies every byte it uses by other
// means (a pack frame whose chunks are each checked against their index
// entry or id, ChunkStore::read_view). Everything else is still checked
// (header, authentication, zstd frame and lengths).
enum class PlaintextCheck { kXxh3, kByCaller };
void open_into(ByteView envelope, const Key* key, std::string_view object_name, Bytes& out,
               PlaintextCheck check = PlaintextCheck::kXxh3);

}  // namespace walvault::codec
