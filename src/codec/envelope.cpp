#include "codec/envelope.h"

#include <zstd.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>

#include "core/error.h"

namespace walvault::codec {

namespace {

constexpr std::array<std::uint8_t, 4> kMagic = {'W', 'V', 'E', '1'};
constexpr std::uint8_t kKnownFlags = kFlagCompressed | kFlagEncrypted;

// A frame scratch buffer larger than this is released once the envelope is
// built, so a thread that once sealed a 1 GiB WAL segment does not keep 1 GiB.
constexpr std::size_t kScratchKeepLimit = 64 << 20;

using Header = std::array<std::uint8_t, kEnvelopeHeaderSize>;

Header encode_header(const EnvelopeHeader& header) {
  Header out{};
  std::copy(kMagic.begin(), kMagic.end(), out.begin());
  out[4] = header.version;
  out[5] = header.flags;
  // out[6..7] reserved, zero.
  store_le<std::uint64_t>(out.data() + 8, header.plaintext_length);
  store_le<std::uint64_t>(out.data() + 16, header.xxh3);
  return out;
}

// Why `envelope` does not start with an acceptable header, or an empty string
// (with `header` filled in) when it does. Shared by parse_header, which only
// needs yes or no, and open, which reports the reason.
std::string header_problem(ByteView envelope, EnvelopeHeader& header) {
  if (envelope.size() < kEnvelopeHeaderSize) {
    return "truncated: " + std::to_string(envelope.size()) + " bytes, shorter than the " +
           std::to_string(kEnvelopeHeaderSize) + "-byte envelope header";
  }
  if (!std::equal(kMagic.begin(), kMagic.end(), envelope.begin())) {
    return "not an envelope (bad magic)";
  }
  header.version = envelope[4];
  header.flags = envelope[5];
  header.plaintext_length = load_le<std::uint64_t>(envelope.data() + 8);
  header.xxh3 = load_le<std::uint64_t>(envelope.data() + 16);
  if (header.version != kEnvelopeVersion) {
    return "unknown envelope version " + std::to_string(header.version);
  }
  if ((header.flags & ~kKnownFlags) != 0) {
    return "unknown envelope flags 0x" + to_hex(envelope.subspan(5, 1));
  }
  if (envelope[6] != 0 || envelope[7] != 0) {
    return "reserved header bytes are not zero";
  }
  return {};
}

[[noreturn]] void throw_corrupt(std::string_view object_name, const std::string& what) {
  throw Error(ErrorCode::kCorruption, std::string(object_name) + ": " + what);
}

struct CCtxFree {
  void operator()(ZSTD_CCtx* ctx) const { ZSTD_freeCCtx(ctx); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};

// zstd contexts own sizeable tables (and, once workers were used, a thread
// pool); creating them per object would dominate the cost of small objects.
// One of each per thread keeps seal and open thread-safe without locking.
ZSTD_CCtx* thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
  if (!cctx) throw Error(ErrorCode::kInternal, "zstd: cannot allocate a compression context");
  return cctx.get();
}

ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx(ZSTD_createDCtx());
  if (!dctx) throw Error(ErrorCode::kInternal, "zstd: cannot allocate a decompression context");
  return dctx.get();
}

void check_zstd(std::size_t result, const char* what) {
  if (ZSTD_isError(result)) {
    throw Error(ErrorCode::kInternal,
                std::string("zstd: ") + what + ": " + ZSTD_getErrorName(result));
  }
}

// A per-thread buffer for the zstd frame: the one seal() builds, or the one
// open() decrypts. It keeps its memory between calls, so a stream of 16 MiB
// objects pays neither an allocation nor a zero-fill of the worst-case bound
// per object. Fresh pages are the expensive part: on the 2-vCPU VMs we run
// on, first touch of 16 MiB costs tens of milliseconds, a warm copy about
// one. Only the usually much smaller frame is then copied or encrypted into
// the exactly-sized envelope.
// Allocated with new[] (no value-initialisation): only the pages zstd really
// writes are touched, usually a fraction of the worst-case bound.
struct Scratch {
  std::unique_ptr<std::uint8_t[]> data;
  std::size_t size = 0;
  void ensure(std::size_t n) {
    if (size >= n) return;
    data.reset(new std::uint8_t[n]);
    size = n;
  }
};
thread_local Scratch frame_scratch;
// open() decrypts a compressed payload into this warm per-thread buffer.
thread_local Bytes decrypt_scratch;

void release_large_scratch() {
  if (frame_scratch.size > kScratchKeepLimit) frame_scratch = Scratch();
  if (decrypt_scratch.capacity() > kScratchKeepLimit) Bytes().swap(decrypt_scratch);
}

// Compresses into frame_scratch, `front` bytes in (seal_to's header and
// nonce go there) and with room for a GCM tag after the frame; the view is
// valid until the thread's next call.
ByteView compress_frame(ByteView plaintext, const SealOptions& options, std::size_t front = 0) {
  const std::size_t bound = ZSTD_compressBound(plaintext.size());
  frame_scratch.ensure(front + bound + kTagSize);

  ZSTD_CCtx* cctx = thread_cctx();
  check_zstd(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters), "reset");
  check_zstd(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, options.zstd_level),
             "compression level");
  const std::size_t size = ZSTD_compress2(cctx, frame_scratch.data.get() + front, bound,
                                          plaintext.data(), plaintext.size());
  check_zstd(size, "compress");
  return ByteView(frame_scratch.data.get() + front, size);
}

// Decompresses `frame`, which must be exactly one zstd frame declaring
// `expected` bytes of content, into `out`. Every check runs before the output
// buffer is sized, so a damaged length field cannot trigger a huge
// allocation. Resizing a reused buffer to the same size touches nothing.
void decompress_frame(ByteView frame, std::uint64_t expected, std::string_view object_name,
                      Bytes& out) {
  const std::size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_size)) {
    throw_corrupt(object_name, std::string("damaged zstd frame: ") + ZSTD_getErrorName(frame_size));
  }
  if (frame_size != frame.size()) {
    throw_corrupt(object_name, std::to_string(frame.size() - frame_size) +
                                   " unexpected bytes after the zstd frame");
  }
  const unsigned long long content_size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (content_size == ZSTD_CONTENTSIZE_UNKNOWN || content_size == ZSTD_CONTENTSIZE_ERROR) {
    throw_corrupt(object_name, "zstd frame does not declare its content size");
  }
  if (content_size != expected) {
    throw_corrupt(object_name, "zstd frame holds " + std::to_string(content_size) +
                                   " bytes, header says " + std::to_string(expected));
  }
  out.resize(expected);
  const std::size_t size =
      ZSTD_decompressDCtx(thread_dctx(), out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(size)) {
    throw_corrupt(object_name, std::string("damaged zstd frame: ") + ZSTD_getErrorName(size));
  }
  if (size != expected) {
    throw_corrupt(object_name, "zstd frame decompressed to " + std::to_string(size) +
                                   " bytes, header says " + std::to_string(expected));
  }
}

std::string hex64(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016" PRIx64, value);
  return text;
}

// The header of `plaintext`'s envelope. Called after compression, so a hash
// computed concurrently by the caller is ready by the time the header (the
// encryption's AAD) is needed.
Header envelope_header(ByteView plaintext, const SealOptions& options) {
  EnvelopeHeader header;
  header.version = kEnvelopeVersion;
  header.flags = static_cast<std::uint8_t>((options.compress ? kFlagCompressed : 0) |
                                           (options.key ? kFlagEncrypted : 0));
  header.plaintext_length = plaintext.size();
  header.xxh3 = options.plaintext_xxh3 ? options.plaintext_xxh3() : xxh3_64(plaintext);
  return encode_header(header);
}

}  // namespace

Bytes seal(ByteView plaintext, const SealOptions& options) {
  const ByteView payload = options.compress ? compress_frame(plaintext, options) : plaintext;
  const Header header_bytes = envelope_header(plaintext, options);
  Bytes envelope(header_bytes.begin(), header_bytes.end());
  envelope.reserve(kEnvelopeHeaderSize + payload.size() + (options.key ? kSealOverhead : 0));
  if (options.key) {
    aes_gcm_seal_append(*options.key, payload, header_bytes, envelope);
  } else {
    envelope.insert(envelope.end(), payload.begin(), payload.end());
  }
  release_large_scratch();
  return envelope;
}

void seal_to(ByteView plaintext, const SealOptions& options,
             const std::function<void(ByteView)>& sink) {
  if (!options.compress) return sink(seal(plaintext, options));
  // [header][nonce][frame][tag] in the compression buffer; no nonce and tag
  // when not encrypted.
  const std::size_t front = kEnvelopeHeaderSize + (options.key ? kNonceSize : 0);
  const std::size_t frame_size = compress_frame(plaintext, options, front).size();
  const Header header_bytes = envelope_header(plaintext, options);
  std::uint8_t* const base = frame_scratch.data.get();
  std::copy(header_bytes.begin(), header_bytes.end(), base);
  std::size_t size = front + frame_size;
  if (options.key) {
    size += kTagSize;
    aes_gcm_seal_in_place(
        *options.key,
        std::span<std::uint8_t>(base + kEnvelopeHeaderSize, size - kEnvelopeHeaderSize),
        header_bytes);
  }
  sink(ByteView(base, size));
  release_large_scratch();
}

std::optional<EnvelopeHeader> parse_header(ByteView envelope) {
  EnvelopeHeader header;
  if (!header_problem(envelope, header).empty()) return std::nullopt;
  return header;
}

Bytes open(ByteView envelope, const Key* key, std::string_view object_name) {
  Bytes plaintext;
  open_into(envelope, key, object_name, plaintext);
  return plaintext;
}

void open_into(ByteView envelope, const Key* key, std::string_view object_name, Bytes& out,
               PlaintextCheck check) {
  EnvelopeHeader header;
  if (std::string problem = header_problem(envelope, header); !problem.empty()) {
    throw_corrupt(object_name, problem);
  }
  const ByteView header_bytes = envelope.first(kEnvelopeHeaderSize);
  ByteView payload = envelope.subspan(kEnvelopeHeaderSize);
  const bool encrypted = header.flags & kFlagEncrypted;
  const bool compressed = header.flags & kFlagCompressed;

  if (encrypted) {
    if (key == nullptr) {
      throw Error(ErrorCode::kKey,
                  std::string(object_name) + ": object is encrypted and no key was given");
    }
    // An uncompressed payload is the plaintext, so it is decrypted straight
    // into the result; a zstd frame goes to the warm per-thread buffer.
    Bytes& decrypted = compressed ? decrypt_scratch : out;
    decrypted.clear();
    if (!aes_gcm_open_append(*key, payload, header_bytes, decrypted)) {
      throw_corrupt(object_name,
                    "authentication failed (wrong key, or the object was altered or truncated)");
    }
    payload = decrypted;
  }

  if (compressed) {
    decompress_frame(payload, header.plaintext_length, object_name, out);
    release_large_scratch();
  } else if (payload.size() != header.plaintext_length) {
    throw_corrupt(object_name, "payload holds " + std::to_string(payload.size()) +
                                   " bytes, header says " +
                                   std::to_string(header.plaintext_length));
  } else if (!encrypted) {
    out.assign(payload.begin(), payload.end());
  }

  if (check == PlaintextCheck::kByCaller) return;
  if (const std::uint64_t actual = xxh3_64(out); actual != header.xxh3) {
    throw_corrupt(object_name, "XXH3 mismatch: header says " + hex64(header.xxh3) +
                                   ", content hashes to " + hex64(actual));
  }
}

}  // namespace walvault::codec
