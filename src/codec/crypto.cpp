#include "codec/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <xxhash.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <string>

#include "core/error.h"

namespace walvault::codec {

namespace {

// Upper bound on the memory scrypt may use. The defaults (N=2^15, r=8) need
// 32 MiB; this leaves room for stronger settings up to N=2^17 at r=8 while
// refusing parameters read from a damaged or hostile key file that would
// exhaust the machine.
constexpr std::uint64_t kScryptMaxMemory = 256ull << 20;

// Data passes through GCM in slices of this size (see gcm_update_append).
constexpr std::size_t kGcmSlice = 16 << 10;

// Appends OpenSSL's own reason to `what`. OpenSSL's messages name algorithms
// and parameters, never key material.
[[noreturn]] void throw_openssl(const std::string& what) {
  char reason[256] = "unknown error";
  if (unsigned long code = ERR_get_error(); code != 0) {
    ERR_error_string_n(code, reason, sizeof reason);
  }
  ERR_clear_error();
  throw Error(ErrorCode::kInternal, "OpenSSL: " + what + ": " + reason);
}

// OpenSSL 3 resolves algorithms by name, under a lock, on every implicit use
// (EVP_sha256() and friends). Fetching once per process keeps that lookup off
// the per-object path. The fetched objects live until exit.
const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) throw_openssl("SHA256 unavailable");
  return md;
}

const EVP_CIPHER* aes_256_gcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  if (cipher == nullptr) throw_openssl("AES-256-GCM unavailable");
  return cipher;
}

EVP_KDF* hkdf_kdf() {
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) throw_openssl("HKDF unavailable");
  return kdf;
}

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* ctx) const { EVP_KDF_CTX_free(ctx); }
};
using KdfCtx = std::unique_ptr<EVP_KDF_CTX, KdfCtxFree>;

// A GCM context keyed with `key` and `nonce`, with `aad` already absorbed.
// `encrypt` selects the direction.
CipherCtx gcm_start(const Key& key, const std::uint8_t* nonce, ByteView aad, bool encrypt) {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) throw_openssl("cannot allocate a cipher context");
  // The GCM default IV length is 12 bytes, which is kNonceSize.
  if (EVP_CipherInit_ex2(ctx.get(), aes_256_gcm(), key.data(), nonce, encrypt ? 1 : 0, nullptr) !=
      1) {
    throw_openssl("AES-256-GCM init");
  }
  if (aad.size() > INT_MAX) throw Error(ErrorCode::kInternal, "AES-GCM: AAD too large");
  int ignored = 0;
  if (!aad.empty() && EVP_CipherUpdate(ctx.get(), nullptr, &ignored, aad.data(),
                                       static_cast<int>(aad.size())) != 1) {
    throw_openssl("AES-256-GCM AAD");
  }
  return ctx;
}

// Runs `in` through `ctx` and appends the result to `out`. Going through a
// small, cache-resident slice instead of resizing `out` up front spares a
// zero-fill pass over the whole destination, an extra 16 MiB of memory writes
// for a WAL segment. GCM is a stream mode: output length equals input length.
void gcm_update_append(EVP_CIPHER_CTX* ctx, ByteView in, Bytes& out) {
  std::uint8_t slice[kGcmSlice];
  while (!in.empty()) {
    const std::size_t n = std::min(in.size(), kGcmSlice);
    int written = 0;
    if (EVP_CipherUpdate(ctx, slice, &written, in.data(), static_cast<int>(n)) != 1) {
      throw_openssl("AES-256-GCM update");
    }
    out.insert(out.end(), slice, slice + written);
    in = in.subspan(n);
  }
}

// Ends an encryption, writing its kTagSize-byte tag to `tag`. GCM's final
// step emits no data, only the tag.
void gcm_final_tag(EVP_CIPHER_CTX* ctx, std::uint8_t* tag) {
  std::uint8_t no_output[kTagSize];
  int written = 0;
  if (EVP_EncryptFinal_ex(ctx, no_output, &written) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagSize, tag) != 1) {
    throw_openssl("AES-256-GCM final");
  }
}

// Makes room for `extra` more bytes without giving up geometric growth, so a
// caller appending many small sealed records to one buffer stays linear.
void reserve_more(Bytes& out, std::size_t extra) {
  const std::size_t needed = out.size() + extra;
  if (needed > out.capacity()) out.reserve(std::max(needed, 2 * out.capacity()));
}

}  // namespace

void initialize_crypto() {
  // No config file, and no registration of every cipher and digest name
  // (walvault fetches the few it uses explicitly).
  OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
                          OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
                      nullptr);
}

void random_bytes(std::span<std::uint8_t> out) {
  while (!out.empty()) {
    const std::size_t n = std::min<std::size_t>(out.size(), INT_MAX);
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) throw_openssl("RAND_bytes");
    out = out.subspan(n);
  }
}

Key random_key() {
  Key key;
  random_bytes(key);
  return key;
}

Digest sha256(ByteView data) {
  Digest digest;
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, sha256_md(), nullptr) != 1 ||
      length != digest.size()) {
    throw_openssl("SHA-256");
  }
  return digest;
}

Digest hmac_sha256(const Key& key, ByteView data) {
  Digest digest;
  unsigned int length = 0;
  if (HMAC(sha256_md(), key.data(), static_cast<int>(key.size()), data.data(), data.size(),
           digest.data(), &length) == nullptr ||
      length != digest.size()) {
    throw_openssl("HMAC-SHA256");
  }
  return digest;
}

Key hkdf_sha256(const Key& master, std::string_view info) {
  KdfCtx ctx(EVP_KDF_CTX_new(hkdf_kdf()));
  if (!ctx) throw_openssl("cannot allocate an HKDF context");
  // No salt parameter: RFC 5869 then uses HashLen zero bytes, which is what
  // "empty salt" means in the contract.
  char digest_name[] = "SHA256";
  OSSL_PARAM params[4];
  OSSL_PARAM* p = params;
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest_name, 0);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                           const_cast<std::uint8_t*>(master.data()), master.size());
  if (!info.empty()) {
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                             info.size());
  }
  *p = OSSL_PARAM_construct_end();
  Key derived;
  if (EVP_KDF_derive(ctx.get(), derived.data(), derived.size(), params) != 1) {
    throw_openssl("HKDF-SHA256");
  }
  return derived;
}

Key scrypt(std::string_view passphrase, ByteView salt, const ScryptParams& params) {
  Key derived;
  if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(), salt.data(), salt.size(), params.n,
                     params.r, params.p, kScryptMaxMemory, derived.data(), derived.size()) != 1) {
    throw_openssl("scrypt rejected N=" + std::to_string(params.n) +
                  " r=" + std::to_string(params.r) + " p=" + std::to_string(params.p));
  }
  return derived;
}

Bytes aes_gcm_seal(const Key& key, ByteView plaintext, ByteView aad) {
  Bytes out;
  aes_gcm_seal_append(key, plaintext, aad, out);
  return out;
}

void aes_gcm_seal_append(const Key& key, ByteView plaintext, ByteView aad, Bytes& out) {
  std::uint8_t nonce[kNonceSize];
  random_bytes(nonce);
  CipherCtx ctx = gcm_start(key, nonce, aad, /*encrypt=*/true);

  // On failure `out` is put back as it was, so a caller's buffer never holds
  // a half-written record.
  const std::size_t original_size = out.size();
  try {
    reserve_more(out, plaintext.size() + kSealOverhead);
    out.insert(out.end(), nonce, nonce + kNonceSize);
    gcm_update_append(ctx.get(), plaintext, out);
    std::uint8_t tag[kTagSize];
    gcm_final_tag(ctx.get(), tag);
    out.insert(out.end(), tag, tag + kTagSize);
  } catch (...) {
    out.resize(original_size);
    throw;
  }
}

void aes_gcm_seal_in_place(const Key& key, std::span<std::uint8_t> buffer, ByteView aad) {
  if (buffer.size() < kSealOverhead) throw Error(ErrorCode::kInternal, "AES-GCM: no room");
  std::uint8_t* nonce = buffer.data();
  random_bytes(std::span<std::uint8_t>(nonce, kNonceSize));
  CipherCtx ctx = gcm_start(key, nonce, aad, /*encrypt=*/true);
  std::span<std::uint8_t> text = buffer.subspan(kNonceSize, buffer.size() - kSealOverhead);
  while (!text.empty()) {  // GCM allows the output to be the input
    const std::size_t n = std::min<std::size_t>(text.size(), INT_MAX / 2);
    int written = 0;
    if (EVP_EncryptUpdate(ctx.get(), text.data(), &written, text.data(), static_cast<int>(n)) != 1)
      throw_openssl("AES-256-GCM update");
    text = text.subspan(n);
  }
  gcm_final_tag(ctx.get(), buffer.data() + buffer.size() - kTagSize);
}

std::optional<Bytes> aes_gcm_open(const Key& key, ByteView sealed, ByteView aad) {
  Bytes plaintext;
  if (!aes_gcm_open_append(key, sealed, aad, plaintext)) return std::nullopt;
  return plaintext;
}

bool aes_gcm_open_append(const Key& key, ByteView sealed, ByteView aad, Bytes& out) {
  if (sealed.size() < kSealOverhead) return false;
  const ByteView nonce = sealed.first(kNonceSize);
  const ByteView ciphertext = sealed.subspan(kNonceSize, sealed.size() - kSealOverhead);
  const ByteView tag = sealed.last(kTagSize);

  CipherCtx ctx = gcm_start(key, nonce.data(), aad, /*encrypt=*/false);
  // Unauthenticated plaintext must never reach the caller: every exit other
  // than success cuts `out` back to its original size.
  const std::size_t original_size = out.size();
  try {
    reserve_more(out, ciphertext.size());
    gcm_update_append(ctx.get(), ciphertext, out);
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                            const_cast<std::uint8_t*>(tag.data())) != 1) {
      throw_openssl("AES-256-GCM set tag");
    }
  } catch (...) {
    out.resize(original_size);
    throw;
  }
  // A failed final is the tag check: wrong key, altered bytes or truncation.
  std::uint8_t no_output[kTagSize];
  int written = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), no_output, &written) != 1) {
    ERR_clear_error();
    out.resize(original_size);
    return false;
  }
  return true;
}

// Defined in xxh3_avx2.cpp, compiled for AVX2.
std::uint64_t xxh3_64_avx2(const void* data, std::size_t size);

std::uint64_t xxh3_64(ByteView data) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2 ? xxh3_64_avx2(data.data(), data.size()) : XXH3_64bits(data.data(), data.size());
}

bool equal_ct(ByteView a, ByteView b) {
  // Lengths are public (they are visible in object sizes); only the contents
  // are compared in constant time.
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace walvault::codec
