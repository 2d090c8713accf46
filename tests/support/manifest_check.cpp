#include "support/manifest_check.h"

#include <openssl/evp.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/bytes.h"
#include "core/file_util.h"
#include "pg/wal_segment.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

// Relative paths pg_verifybackup skips, with everything under them.
bool ignored(const std::string& rel) {
  static const char* const ignored_paths[] = {"backup_manifest", "pg_wal", "postgresql.auto.conf",
                                              "recovery.signal", "standby.signal"};
  for (const std::string_view top : ignored_paths)
    if (rel.starts_with(top) && (rel.size() == top.size() || rel[top.size()] == '/')) return true;
  return false;
}

struct Entry {
  std::uint64_t size = 0;
  std::string algorithm;
  Bytes checksum;
  bool seen = false;
};

// Feeds the bytes of `path` to `update` block by block; false when the file
// cannot be read.
template <typename Update>
bool read_blocks(const std::string& path, Update update) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<char> buf(1 << 20);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
    update(as_bytes({buf.data(), static_cast<std::size_t>(in.gcount())}));
  return !in.bad();
}

// The digest of `path` with a manifest checksum algorithm; nullopt when the
// file cannot be read. CRC32C is stored as the bytes of the final value in
// the server's byte order (little-endian on every machine we run on).
std::optional<Bytes> file_checksum(const std::string& path, const std::string& algorithm) {
  Bytes out;
  if (algorithm == "CRC32C") {
    std::uint32_t crc = 0xFFFFFFFFu;
    if (!read_blocks(path, [&](ByteView b) { crc = pg::crc32c_update(crc, b); }))
      return std::nullopt;
    append_le(out, crc ^ 0xFFFFFFFFu);
    return out;
  }
  const EVP_MD* md = EVP_get_digestbyname(algorithm.c_str());  // "SHA224" .. "SHA512"
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (md == nullptr || !ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) return std::nullopt;
  if (!read_blocks(path, [&](ByteView b) { EVP_DigestUpdate(ctx.get(), b.data(), b.size()); }))
    return std::nullopt;
  out.resize(EVP_MAX_MD_SIZE);
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx.get(), out.data(), &n);
  out.resize(n);
  return out;
}

class Checker {
 public:
  Checker(std::string root, std::map<std::string, Entry> files)
      : root_(std::move(root)), files_(std::move(files)) {}

  // Walks the directory, then reports what the manifest lists and the disk
  // lacks, then the checksums of the files whose size matched.
  std::vector<std::string> run() {
    walk("");
    for (const auto& [path, e] : files_)
      if (!e.seen && !ignored(path))
        problems_.push_back("\"" + path + "\" is present in the manifest but not on disk");
    for (const auto& [path, e] : files_) {
      if (!e.seen || bad_.contains(path) || e.algorithm == "NONE") continue;
      auto sum = file_checksum(root_ + "/" + path, e.algorithm);
      if (!sum)
        problems_.push_back("\"" + path + "\": cannot compute its " + e.algorithm + " checksum");
      else if (*sum != e.checksum)
        problems_.push_back("\"" + path + "\" has " + e.algorithm + " checksum " + to_hex(*sum) +
                            " on disk but " + to_hex(e.checksum) + " in the manifest");
    }
    return std::move(problems_);
  }

 private:
  void walk(const std::string& rel) {
    std::error_code ec;
    fs::directory_iterator it(rel.empty() ? root_ : root_ + "/" + rel, ec), end;
    if (ec) problems_.push_back("\"" + rel + "\": cannot open directory: " + ec.message());
    for (; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const std::string child = rel.empty() ? name : rel + "/" + name;
      if (ignored(child)) continue;
      const auto st = fs::status(it->path(), ec);  // follows pg_tblspc's links
      if (ec) {
        problems_.push_back("\"" + child + "\": cannot stat: " + ec.message());
        ec.clear();
      } else if (fs::is_directory(st)) {
        walk(child);
      } else if (!fs::is_regular_file(st)) {
        problems_.push_back("\"" + child + "\" is not a regular file or directory");
      } else {
        check_file(child);
      }
    }
    if (ec) problems_.push_back("\"" + rel + "\": cannot list directory: " + ec.message());
  }

  void check_file(const std::string& rel) {
    auto it = files_.find(rel);
    if (it == files_.end()) {
      problems_.push_back("\"" + rel + "\" is present on disk but not in the manifest");
      return;
    }
    it->second.seen = true;
    std::error_code ec;
    const auto size = fs::file_size(root_ + "/" + rel, ec);
    if (ec) {
      problems_.push_back("\"" + rel + "\": cannot stat: " + ec.message());
      bad_.insert(rel);
    } else if (size != it->second.size) {
      problems_.push_back("\"" + rel + "\" has size " + std::to_string(size) +
                          " on disk but size " + std::to_string(it->second.size) +
                          " in the manifest");
      bad_.insert(rel);
    }
  }

  std::string root_;
  std::map<std::string, Entry> files_;
  std::set<std::string> bad_;
  std::vector<std::string> problems_;
};

// The manifest's files by path, or the one problem that stops the check.
std::map<std::string, Entry> parse_files(const nlohmann::json& manifest,
                                         std::vector<std::string>& problems) {
  std::map<std::string, Entry> files;
  for (const auto& f : manifest.at("Files")) {
    std::string path;
    if (f.contains("Encoded-Path")) {
      Bytes raw;
      if (!from_hex(f.at("Encoded-Path").get<std::string>(), raw)) {
        problems.push_back("backup_manifest: bad Encoded-Path " + f.at("Encoded-Path").dump());
        continue;
      }
      path.assign(as_chars(raw));
    } else {
      path = f.at("Path").get<std::string>();
    }
    Entry e;
    e.size = f.at("Size").get<std::uint64_t>();
    e.algorithm = f.value("Checksum-Algorithm", "NONE");
    static const std::set<std::string> known = {"NONE",   "CRC32C", "SHA224",
                                                "SHA256", "SHA384", "SHA512"};
    if (!known.contains(e.algorithm)) {
      problems.push_back("backup_manifest: \"" + path + "\": unknown checksum algorithm " +
                         e.algorithm);
      continue;
    }
    if (e.algorithm != "NONE" && !from_hex(f.at("Checksum").get<std::string>(), e.checksum)) {
      problems.push_back("backup_manifest: \"" + path + "\": bad checksum " +
                         f.at("Checksum").dump());
      continue;
    }
    if (!files.emplace(path, std::move(e)).second)
      problems.push_back("backup_manifest: duplicate path name \"" + path + "\"");
  }
  return files;
}

}  // namespace

std::vector<std::string> check_backup_manifest(const std::string& pgdata) {
  std::vector<std::string> problems;
  const auto bytes = read_file(pgdata + "/backup_manifest");
  if (!bytes) return {"backup_manifest: not found in " + pgdata};
  const std::string text(as_chars(*bytes));

  // The checksum covers every byte up to and including the newline that
  // ends the line before "Manifest-Checksum".
  const auto at = text.rfind("\n\"Manifest-Checksum\"");
  if (at == std::string::npos) return {"backup_manifest: no Manifest-Checksum line"};
  Bytes sha(EVP_MAX_MD_SIZE);
  unsigned int sha_len = 0;
  EVP_Digest(text.data(), at + 1, sha.data(), &sha_len, EVP_sha256(), nullptr);
  sha.resize(sha_len);

  nlohmann::json manifest;
  std::map<std::string, Entry> files;
  try {
    manifest = nlohmann::json::parse(text);
    const int version = manifest.at("PostgreSQL-Backup-Manifest-Version");
    if (version != 1 && version != 2)
      return {"backup_manifest: unexpected manifest version " + std::to_string(version)};
    const std::string listed = manifest.at("Manifest-Checksum");
    Bytes listed_sha;
    if (!from_hex(listed, listed_sha) || listed_sha != sha)
      problems.push_back("backup_manifest: manifest checksum mismatch: " + to_hex(sha) +
                         " computed, " + listed + " listed");
    if (version == 2) {
      const std::uint64_t listed_id = manifest.at("System-Identifier");
      const auto control = read_file(pgdata + "/global/pg_control");
      if (!control || control->size() < 8)
        problems.push_back("global/pg_control: cannot read its system identifier");
      else if (const auto id = load_le<std::uint64_t>(control->data()); id != listed_id)
        problems.push_back("global/pg_control: manifest system identifier is " +
                           std::to_string(listed_id) + ", but control file has " +
                           std::to_string(id));
    }
    files = parse_files(manifest, problems);
  } catch (const nlohmann::json::exception& e) {
    return {std::string("backup_manifest: cannot parse: ") + e.what()};
  }
  auto found = Checker(pgdata, std::move(files)).run();
  problems.insert(problems.end(), found.begin(), found.end());
  return problems;
}

}  // namespace walvault::testing
