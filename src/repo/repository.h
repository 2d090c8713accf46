// The repository: a store plus the format rules that make it walvault's.
//
// Opening a repository reads its `config` object (format version, id,
// defaults, and for an encrypted repository the KDF parameters and the master
// key wrapped under the passphrase) and unwraps the master key from a key
// file (`keys/file-<id>`, no KDF: the archive_command hot path) or from the
// passphrase (scrypt). Every object goes through the envelope (codec layer);
// object names carry no secret. See docs/format.md for the byte layout.
//
// Threading: a Repository may be used from several threads at once.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "codec/crypto.h"
#include "codec/envelope.h"
#include "repo/layout.h"
#include "store/object_store.h"

namespace walvault::repo {

inline constexpr int kFormatVersion = 1;

// Where the secrets come from. Never logged.
struct Secrets {
  std::optional<std::string> passphrase;  // from WALVAULT_PASSPHRASE or a passphrase file
  std::optional<std::string> key_file;    // path of a raw 32-byte key file
};

// Backup chunk sizes a repository accepts: whole PostgreSQL pages (8 KiB),
// from 64 KiB to 64 MiB.
inline constexpr std::uint32_t kChunkSizeUnit = 8u << 10;
inline constexpr std::uint32_t kMinChunkSize = 64u << 10;
inline constexpr std::uint32_t kMaxChunkSize = 64u << 20;
inline constexpr std::uint32_t kDefaultChunkSize = 1u << 20;
// Empty when `size` is an acceptable chunk size, else why not.
std::string chunk_size_problem(std::uint64_t size);
// "1MiB", "512KiB", "4194304": the --chunk-size text. Throws Error(kUsage)
// naming the option unless it is an acceptable chunk size.
std::uint32_t parse_chunk_size(std::string_view text);

struct InitOptions {
  bool encrypt = false;
  std::optional<std::string> passphrase;  // required when encrypt
  int zstd_level = 1;
  std::uint32_t chunk_size = kDefaultChunkSize;
  codec::ScryptParams kdf;  // tests lower N to keep them fast
};

struct RepoConfig {
  int format_version = kFormatVersion;
  std::string repo_id;  // 32 hex digits, random
  std::int64_t created_us = 0;
  int zstd_level = 1;
  std::uint32_t chunk_size = kDefaultChunkSize;  // backups: fixed-size, page-aligned chunks
  bool encrypted = false;
  codec::ScryptParams kdf;
  Bytes kdf_salt;        // 32 bytes
  Bytes wrapped_master;  // aes_gcm_seal(scrypt(passphrase), master key)
};

class Repository {
 public:
  // Writes the config object into a store that has none. Throws
  // Error(kConflict) when a repository already exists there, Error(kUsage) when encryption is
  // asked for without a passphrase.
  static RepoConfig init(store::ObjectStore& store, const InitOptions& options);

  // Opens an existing repository. Throws Error(kRepoFormat) when there is no
  // repository or its format is unknown, Error(kKey) when it is encrypted and
  // the secrets are absent or wrong, Error(kCorruption) for a damaged config.
  static std::unique_ptr<Repository> open(std::shared_ptr<store::ObjectStore> store,
                                          const Secrets& secrets);

  // Seals `plaintext` (compression level from the config, encryption when the
  // repository is encrypted) and stores it create-only. On a store without
  // exclusive create the name is checked first; kAlreadyExists means the
  // name was taken and nothing was written.
  struct PutOptions {
    // See codec::SealOptions::plaintext_xxh3.
    std::function<std::uint64_t()> plaintext_xxh3;
    // Called once the object is sealed, before it is stored (not called when
    // the store says it exists before sealing, or when sealing throws).
    std::function<void()> on_sealed;
  };
  store::PutResult put_object(const std::string& name, ByteView plaintext,
                              const PutOptions& options);
  store::PutResult put_object(const std::string& name, ByteView plaintext) {
    return put_object(name, plaintext, PutOptions{});
  }
  // The envelope put_object would store, without storing it (packs collect
  // sealed chunks), and the inverse for bytes read by range.
  Bytes seal_object(ByteView plaintext) const;
  Bytes open_object(ByteView sealed, const std::string& what) const;
  // As open_object(), into a buffer the caller reuses (codec::open_into).
  void open_object_into(ByteView sealed, const std::string& what, Bytes& out,
                        codec::PlaintextCheck check = codec::PlaintextCheck::kXxh3) const;

  // Fetches and verifies an object; std::nullopt when absent. Throws
  // Error(kCorruption) naming the object on any mismatch.
  std::optional<Bytes> get_object(const std::string& name);

  // Writes a new key file at `path` (mode 0600, create-only) holding a fresh
  // random key, and stores the master key wrapped under it. Requires an
  // encrypted repository opened with its passphrase or another key file.
  void add_key_file(const std::string& path);
  // Stores the master key wrapped under the key in the existing key file at
  // `path`, so that one key file unlocks several repositories. False when it
  // already unlocked this one (nothing written). Same requirements as
  // add_key_file; Error(kKey) for an unreadable or malformed key file.
  bool register_key_file(const std::string& path);

  const RepoConfig& config() const { return config_; }
  store::ObjectStore& store() { return *store_; }
  std::shared_ptr<store::ObjectStore> shared_store() { return store_; }
  bool encrypted() const { return config_.encrypted; }
  // Key for content ids (HMAC-SHA256) when encrypted; std::nullopt otherwise.
  const std::optional<codec::Key>& id_key() const { return id_key_; }
  // HKDF-SHA256(master key, info) when encrypted, for a purpose of another
  // layer (the file chunker's gear table); std::nullopt otherwise.
  std::optional<codec::Key> derived_key(std::string_view info) const;

 private:
  Repository(std::shared_ptr<store::ObjectStore> store, RepoConfig config);
  void set_master_key(const codec::Key& master);
  // Throws unless this repository is encrypted and its master key is known.
  void require_master_key() const;
  // The sealed key-file wrap object of the master key under `file_key`.
  Bytes seal_key_file_wrap(const codec::Key& file_key) const;

  std::shared_ptr<store::ObjectStore> store_;
  RepoConfig config_;
  std::optional<codec::Key> master_key_;
  std::optional<codec::Key> data_key_;
  std::optional<codec::Key> id_key_;
};

// Reads a key file: exactly 32 bytes. Throws Error(kKey) naming the path
// (never its content) when missing, unreadable or of the wrong size.
codec::Key read_key_file(const std::string& path);

}  // namespace walvault::repo
