#include "repo/repository.h"

#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"

namespace walvault::repo {

using nlohmann::json;

namespace {

constexpr char kWrapAadPrefix[] = "walvault-master-key-v1:";
constexpr char kDataKeyInfo[] = "walvault envelope key v1";
constexpr char kIdKeyInfo[] = "walvault content id key v1";

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Bytes wrap_aad(const std::string& repo_id) { return to_bytes(kWrapAadPrefix + repo_id); }

Bytes hex_field(const json& j, const char* key, const std::string& object) {
  Bytes out;
  if (!j.contains(key) || !j[key].is_string() || !from_hex(j[key].get<std::string>(), out))
    throw Error(ErrorCode::kCorruption, object + ": field '" + key + "' is missing or not hex");
  return out;
}

json config_to_json(const RepoConfig& c) {
  json j = {
      {"format", c.format_version},
      {"repo_id", c.repo_id},
      {"created_us", c.created_us},
      {"compression", {{"algorithm", "zstd"}, {"level", c.zstd_level}}},
      {"chunking", {{"algorithm", "fixed"}, {"size", c.chunk_size}}},
  };
  if (c.encrypted) {
    j["encryption"] = {
        {"cipher", "aes-256-gcm"},
        {"kdf",
         {{"algorithm", "scrypt"},
          {"n", c.kdf.n},
          {"r", c.kdf.r},
          {"p", c.kdf.p},
          {"salt", to_hex(c.kdf_salt)}}},
        {"wrapped_master_key", to_hex(c.wrapped_master)},
    };
  } else {
    j["encryption"] = nullptr;
  }
  return j;
}

RepoConfig config_from_json(const json& j) {
  RepoConfig c;
  try {
    c.format_version = j.at("format").get<int>();
    if (c.format_version != kFormatVersion)
      throw Error(ErrorCode::kRepoFormat, "repository format " + std::to_string(c.format_version) +
                                              " is not supported (this walvault reads format " +
                                              std::to_string(kFormatVersion) + ")");
    c.repo_id = j.at("repo_id").get<std::string>();
    c.created_us = j.at("created_us").get<std::int64_t>();
    c.zstd_level = j.at("compression").at("level").get<int>();
    c.chunk_size = j.at("chunking").at("size").get<std::uint32_t>();
    auto require = [](const json& obj, const char* key, const char* expected) {
      if (obj.at(key).get<std::string>() != expected)
        throw Error(ErrorCode::kRepoFormat, std::string("config: ") + key + " '" +
                                                obj.at(key).get<std::string>() +
                                                "' is not supported (expected '" + expected + "')");
    };
    require(j.at("compression"), "algorithm", "zstd");
    require(j.at("chunking"), "algorithm", "fixed");
    if (const std::string problem = chunk_size_problem(c.chunk_size); !problem.empty())
      throw Error(ErrorCode::kCorruption, "config: chunking size " + problem);
    const json& enc = j.at("encryption");
    c.encrypted = !enc.is_null();
    if (c.encrypted) {
      require(enc, "cipher", "aes-256-gcm");
      const json& kdf = enc.at("kdf");
      require(kdf, "algorithm", "scrypt");
      c.kdf.n = kdf.at("n").get<std::uint64_t>();
      c.kdf.r = kdf.at("r").get<std::uint32_t>();
      c.kdf.p = kdf.at("p").get<std::uint32_t>();
      c.kdf_salt = hex_field(kdf, "salt", kConfigObject);
      c.wrapped_master = hex_field(enc, "wrapped_master_key", kConfigObject);
    }
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kCorruption, std::string("config: ") + e.what());
  }
  return c;
}

json parse_json_object(const Bytes& bytes, const std::string& name) {
  try {
    return json::parse(as_chars(bytes));
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kCorruption, name + ": not valid JSON: " + e.what());
  }
}

// The master key in a key-file wrap object, or std::nullopt when `file_key`
// does not open it.
std::optional<Bytes> unwrap_key_file_wrap(const Bytes& sealed, const std::string& name,
                                          const codec::Key& file_key, const Bytes& aad) {
  json wrap = parse_json_object(codec::open(sealed, nullptr, name), name);
  if (!wrap.contains("type") || wrap["type"] != "key-file")
    throw Error(ErrorCode::kCorruption, name + ": not a key-file wrap");
  return codec::aes_gcm_open(file_key, hex_field(wrap, "wrapped_master_key", name), aad);
}

codec::Key key_from_bytes(const Bytes& bytes, const std::string& what) {
  if (bytes.size() != codec::kKeySize)
    throw Error(ErrorCode::kCorruption, what + ": unwrapped key has the wrong size");
  codec::Key key;
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

}  // namespace

codec::Key read_key_file(const std::string& path) {
  std::optional<Bytes> bytes;
  try {
    bytes = read_file(path);
  } catch (const Error&) {
    throw Error(ErrorCode::kKey, "key file " + path + " cannot be read");
  }
  if (!bytes) throw Error(ErrorCode::kKey, "key file " + path + " does not exist");
  if (bytes->size() != codec::kKeySize)
    throw Error(ErrorCode::kKey, "key file " + path + " is not a walvault key file (expected " +
                                     std::to_string(codec::kKeySize) + " bytes)");
  codec::Key key;
  std::copy(bytes->begin(), bytes->end(), key.begin());
  return key;
}

std::string chunk_size_problem(std::uint64_t size) {
  if (size < kMinChunkSize || size > kMaxChunkSize)
    return std::to_string(size) + " is outside 64 KiB to 64 MiB";
  if (size % kChunkSizeUnit != 0)
    return std::to_string(size) + " is not a whole number of 8 KiB pages";
  return {};
}

std::uint32_t parse_chunk_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view unit = text.substr(digits);
  std::uint64_t multiplier = 0;
  if (unit.empty() || unit == "B") multiplier = 1;
  if (unit == "KiB") multiplier = 1u << 10;
  if (unit == "MiB") multiplier = 1u << 20;
  if (digits == 0 || digits > 9 || multiplier == 0)
    throw Error(ErrorCode::kUsage, "--chunk-size: '" + std::string(text) +
                                       "' is not a size (for example 1MiB, 4MiB, 512KiB)");
  const std::uint64_t size = std::stoull(std::string(text.substr(0, digits))) * multiplier;
  if (const std::string problem = chunk_size_problem(size); !problem.empty())
    throw Error(ErrorCode::kUsage, "--chunk-size: " + problem);
  return static_cast<std::uint32_t>(size);
}

RepoConfig Repository::init(store::ObjectStore& store, const InitOptions& options) {
  if (const std::string problem = chunk_size_problem(options.chunk_size); !problem.empty())
    throw Error(ErrorCode::kUsage, "--chunk-size: " + problem);
  if (store.stat(kConfigObject))
    throw Error(ErrorCode::kConflict, "a repository already exists at " + store.describe());
  RepoConfig c;
  codec::Key id_bytes = codec::random_key();
  c.repo_id = to_hex(ByteView(id_bytes.data(), 16));
  c.created_us = now_us();
  c.zstd_level = options.zstd_level;
  c.chunk_size = options.chunk_size;
  if (options.encrypt) {
    if (!options.passphrase || options.passphrase->empty())
      throw Error(ErrorCode::kUsage,
                  "--encrypt needs a passphrase: set WALVAULT_PASSPHRASE or --passphrase-file");
    c.encrypted = true;
    c.kdf = options.kdf;
    c.kdf_salt.resize(32);
    codec::random_bytes(c.kdf_salt);
    codec::Key kek = codec::scrypt(*options.passphrase, c.kdf_salt, c.kdf);
    codec::Key master = codec::random_key();
    c.wrapped_master = codec::aes_gcm_seal(kek, master, wrap_aad(c.repo_id));
  }
  std::string text = config_to_json(c).dump(2) + "\n";
  codec::SealOptions seal_options;
  Bytes sealed = codec::seal(as_bytes(text), seal_options);
  if (store.put(kConfigObject, sealed) == store::PutResult::kAlreadyExists)
    throw Error(ErrorCode::kConflict, "a repository already exists at " + store.describe());
  return c;
}

Repository::Repository(std::shared_ptr<store::ObjectStore> store, RepoConfig config)
    : store_(std::move(store)), config_(std::move(config)) {}

std::optional<codec::Key> Repository::derived_key(std::string_view info) const {
  if (!master_key_) return std::nullopt;
  return codec::hkdf_sha256(*master_key_, info);
}

void Repository::set_master_key(const codec::Key& master) {
  master_key_ = master;
  data_key_ = codec::hkdf_sha256(master, kDataKeyInfo);
  id_key_ = codec::hkdf_sha256(master, kIdKeyInfo);
}

std::unique_ptr<Repository> Repository::open(std::shared_ptr<store::ObjectStore> store,
                                             const Secrets& secrets) {
  auto sealed = store->get(kConfigObject);
  if (!sealed)
    throw Error(ErrorCode::kRepoFormat,
                "no walvault repository at " + store->describe() + " (run 'walvault repo init')");
  Bytes text = codec::open(*sealed, nullptr, kConfigObject);
  RepoConfig config = config_from_json(parse_json_object(text, kConfigObject));
  std::unique_ptr<Repository> repo(new Repository(std::move(store), std::move(config)));
  if (!repo->config_.encrypted) return repo;

  const Bytes aad = wrap_aad(repo->config_.repo_id);
  if (secrets.key_file) {
    codec::Key file_key = read_key_file(*secrets.key_file);
    std::string name = key_file_object_name(file_key);
    auto wrap_sealed = repo->store_->get(name);
    if (!wrap_sealed)
      throw Error(ErrorCode::kKey, "key file " + *secrets.key_file +
                                       " does not belong to the repository at " +
                                       repo->store_->describe());
    auto master = unwrap_key_file_wrap(*wrap_sealed, name, file_key, aad);
    if (!master)
      throw Error(ErrorCode::kKey,
                  "key file " + *secrets.key_file + " does not unlock the repository");
    repo->set_master_key(key_from_bytes(*master, name));
    return repo;
  }
  if (secrets.passphrase) {
    codec::Key kek;
    try {
      kek = codec::scrypt(*secrets.passphrase, repo->config_.kdf_salt, repo->config_.kdf);
    } catch (const Error&) {
      throw Error(ErrorCode::kCorruption, "config: the KDF parameters are not usable");
    }
    auto master = codec::aes_gcm_open(kek, repo->config_.wrapped_master, aad);
    if (!master)
      throw Error(ErrorCode::kKey,
                  "wrong passphrase for the repository at " + repo->store_->describe());
    repo->set_master_key(key_from_bytes(*master, kConfigObject));
    return repo;
  }
  throw Error(ErrorCode::kKey, "the repository at " + repo->store_->describe() +
                                   " is encrypted: give --key-file, --passphrase-file or "
                                   "WALVAULT_PASSPHRASE");
}

store::PutResult Repository::put_object(const std::string& name, ByteView plaintext,
                                        const PutOptions& put_options) {
  if (!store_->capabilities().exclusive_create && store_->stat(name))
    return store::PutResult::kAlreadyExists;
  codec::SealOptions options;
  options.zstd_level = config_.zstd_level;
  options.key = data_key_ ? &*data_key_ : nullptr;
  options.plaintext_xxh3 = put_options.plaintext_xxh3;
  store::PutResult result = store::PutResult::kCreated;
  codec::seal_to(plaintext, options, [&](ByteView sealed) {
    if (put_options.on_sealed) put_options.on_sealed();
    result = store_->put(name, sealed);
  });
  return result;
}

Bytes Repository::seal_object(ByteView plaintext) const {
  codec::SealOptions options;
  options.zstd_level = config_.zstd_level;
  options.key = data_key_ ? &*data_key_ : nullptr;
  return codec::seal(plaintext, options);
}

Bytes Repository::open_object(ByteView sealed, const std::string& what) const {
  Bytes plaintext;
  open_object_into(sealed, what, plaintext);
  return plaintext;
}

void Repository::open_object_into(ByteView sealed, const std::string& what, Bytes& out,
                                  codec::PlaintextCheck check) const {
  auto header = codec::parse_header(sealed);
  if (header && (header->flags & codec::kFlagEncrypted) == 0 && config_.encrypted) {
    // An unencrypted object where every object is sealed: someone replaced it.
    throw Error(ErrorCode::kCorruption,
                what + ": object is not encrypted in an encrypted repository");
  }
  codec::open_into(sealed, data_key_ ? &*data_key_ : nullptr, what, out, check);
}

std::optional<Bytes> Repository::get_object(const std::string& name) {
  auto sealed = store_->get(name);
  if (!sealed) return std::nullopt;
  // config and key wraps are readable without the key by design.
  if (is_unencrypted_object(name)) return codec::open(*sealed, nullptr, name);
  return open_object(*sealed, name);
}

void Repository::require_master_key() const {
  if (!config_.encrypted)
    throw Error(ErrorCode::kUsage, "the repository at " + store_->describe() +
                                       " is not encrypted: a key file has nothing to unlock");
  if (!master_key_) throw Error(ErrorCode::kKey, "repository opened without its master key");
}

Bytes Repository::seal_key_file_wrap(const codec::Key& file_key) const {
  json wrap = {{"type", "key-file"},
               {"created_us", now_us()},
               {"wrapped_master_key",
                to_hex(codec::aes_gcm_seal(file_key, *master_key_, wrap_aad(config_.repo_id)))}};
  std::string text = wrap.dump(2) + "\n";
  codec::SealOptions options;
  return codec::seal(as_bytes(text), options);
}

void Repository::add_key_file(const std::string& path) {
  require_master_key();
  codec::Key file_key = codec::random_key();
  Bytes sealed = seal_key_file_wrap(file_key);
  // Key file first: if storing the wrap fails, an orphan key file unlocks nothing.
  if (!write_file_atomic(path, file_key, 0600, Overwrite::kNo))
    throw Error(ErrorCode::kConflict, "key file " + path + " already exists; not overwritten");
  store_->put(key_file_object_name(file_key), sealed);
}

bool Repository::register_key_file(const std::string& path) {
  require_master_key();
  const codec::Key file_key = read_key_file(path);
  const std::string name = key_file_object_name(file_key);
  // S3 overwrites silently: look first, and never replace a wrap.
  if (auto existing = store_->get(name)) {
    if (unwrap_key_file_wrap(*existing, name, file_key, wrap_aad(config_.repo_id))) return false;
    throw Error(ErrorCode::kConflict,
                "key file " + path + ": " + name + " exists but is not its wrap; not overwritten");
  }
  if (store_->put(name, seal_key_file_wrap(file_key)) == store::PutResult::kAlreadyExists)
    throw Error(ErrorCode::kConflict,
                "key file " + path + ": " + name + " was written concurrently; run again");
  return true;
}

}  // namespace walvault::repo
