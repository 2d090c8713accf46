// Repository: init/open, keys, and the envelope rules on a store.
#include "repo/repository.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "codec/envelope.h"
#include "core/error.h"
#include "core/file_util.h"
#include "repo/cluster.h"
#include "store/mem_store.h"
#include "support/error_code.h"
#include "support/pg_cluster.h"

namespace walvault::repo {
namespace {

constexpr char kPassphrase[] = "a long enough passphrase";

InitOptions encrypted_options() {
  InitOptions o;
  o.encrypt = true;
  o.passphrase = kPassphrase;
  o.kdf.n = 1024;  // keep the test fast; the default is 2^15
  return o;
}

using testing::error_code_of;

TEST(Repository, InitThenOpenUnencrypted) {
  auto store = std::make_shared<store::MemStore>();
  RepoConfig c = Repository::init(*store, {});
  EXPECT_EQ(c.repo_id.size(), 32u);
  auto repo = Repository::open(store, {});
  EXPECT_EQ(repo->config().repo_id, c.repo_id);
  EXPECT_FALSE(repo->encrypted());
  EXPECT_FALSE(repo->id_key().has_value());
}

TEST(Repository, InitTwiceIsAConflictAndKeepsTheFirst) {
  auto store = std::make_shared<store::MemStore>();
  RepoConfig first = Repository::init(*store, {});
  EXPECT_EQ(error_code_of([&] { Repository::init(*store, encrypted_options()); }),
            ErrorCode::kConflict);
  EXPECT_EQ(Repository::open(store, {})->config().repo_id, first.repo_id);
}

TEST(Repository, ChunkSizeIsFixedAtInit) {
  auto store = std::make_shared<store::MemStore>();
  InitOptions o;
  o.chunk_size = parse_chunk_size("4MiB");
  EXPECT_EQ(Repository::init(*store, o).chunk_size, 4u << 20);
  EXPECT_EQ(Repository::open(store, {})->config().chunk_size, 4u << 20);
  auto other = std::make_shared<store::MemStore>();
  EXPECT_EQ(Repository::init(*other, {}).chunk_size, 1u << 20);  // the default
}

TEST(Repository, ChunkSizeText) {
  EXPECT_EQ(parse_chunk_size("1MiB"), 1u << 20);
  EXPECT_EQ(parse_chunk_size("512KiB"), 512u << 10);
  EXPECT_EQ(parse_chunk_size("65536"), 64u << 10);
  EXPECT_EQ(parse_chunk_size("64MiB"), 64u << 20);
  EXPECT_EQ(parse_chunk_size("67108864"), 64u << 20);  // the largest, in bytes
  for (const char* bad : {"", "MiB", "1MB", "1 MiB", "-1MiB", "1.5MiB", "1mib", "99999999999"})
    EXPECT_EQ(error_code_of([&] { parse_chunk_size(bad); }), ErrorCode::kUsage) << bad;
  for (const char* refused : {"32KiB", "65MiB", "100000", "1028KiB"}) {
    try {
      parse_chunk_size(refused);
      ADD_FAILURE() << refused;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUsage);
      EXPECT_EQ(std::string(e.what()).rfind("--chunk-size: ", 0), 0u) << e.what();
    }
  }
  InitOptions o;
  o.chunk_size = 12345;  // not whole pages: refused, nothing written
  auto store = std::make_shared<store::MemStore>();
  EXPECT_EQ(error_code_of([&] { Repository::init(*store, o); }), ErrorCode::kUsage);
  EXPECT_FALSE(store->stat(kConfigObject).has_value());
}

TEST(Repository, DamagedChunkSizeInConfigIsRefused) {
  auto store = std::make_shared<store::MemStore>();
  std::string text = R"({"format": 1, "repo_id": "0123456789abcdef0123456789abcdef",
    "created_us": 0, "compression": {"algorithm": "zstd", "level": 1},
    "chunking": {"algorithm": "fixed", "size": 1000}, "encryption": null})";
  store->put(kConfigObject, codec::seal(as_bytes(text), {}));
  EXPECT_EQ(error_code_of([&] { Repository::open(store, {}); }), ErrorCode::kCorruption);
}

TEST(Repository, OpenWithoutRepositoryIsRepoFormat) {
  auto store = std::make_shared<store::MemStore>();
  EXPECT_EQ(error_code_of([&] { Repository::open(store, {}); }), ErrorCode::kRepoFormat);
}

TEST(Repository, UnknownFormatVersionIsRefused) {
  auto store = std::make_shared<store::MemStore>();
  std::string text = R"({"format": 2, "repo_id": "x", "created_us": 0,
    "compression": {"level": 1}, "chunking": {"size": 1}, "encryption": null})";
  store->put(kConfigObject, codec::seal(as_bytes(text), {}));
  EXPECT_EQ(error_code_of([&] { Repository::open(store, {}); }), ErrorCode::kRepoFormat);
}

TEST(Repository, UnknownAlgorithmIsRefusedNotMisread) {
  auto store = std::make_shared<store::MemStore>();
  std::string text = R"({"format": 1, "repo_id": "x", "created_us": 0,
    "compression": {"algorithm": "lz4", "level": 1},
    "chunking": {"algorithm": "fixed", "size": 1}, "encryption": null})";
  store->put(kConfigObject, codec::seal(as_bytes(text), {}));
  EXPECT_EQ(error_code_of([&] { Repository::open(store, {}); }), ErrorCode::kRepoFormat);
}

TEST(Repository, EncryptedNeedsTheRightPassphrase) {
  auto store = std::make_shared<store::MemStore>();
  Repository::init(*store, encrypted_options());
  EXPECT_EQ(error_code_of([&] { Repository::open(store, {}); }), ErrorCode::kKey);
  Secrets wrong;
  wrong.passphrase = "not it";
  try {
    Repository::open(store, wrong);
    FAIL() << "wrong passphrase accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kKey);
    EXPECT_EQ(std::string(e.what()).find("not it"), std::string::npos);
  }
  Secrets right;
  right.passphrase = kPassphrase;
  auto repo = Repository::open(store, right);
  EXPECT_TRUE(repo->encrypted());
  EXPECT_TRUE(repo->id_key().has_value());
}

TEST(Repository, EncryptWithoutPassphraseIsUsageError) {
  auto store = std::make_shared<store::MemStore>();
  InitOptions o;
  o.encrypt = true;
  EXPECT_EQ(error_code_of([&] { Repository::init(*store, o); }), ErrorCode::kUsage);
  EXPECT_FALSE(store->stat(kConfigObject));
}

TEST(Repository, KeyFileUnlocksWithoutPassphrase) {
  testing::TempDir dir("wv-repo");
  auto store = std::make_shared<store::MemStore>();
  Repository::init(*store, encrypted_options());
  Secrets pass;
  pass.passphrase = kPassphrase;
  auto repo = Repository::open(store, pass);
  const std::string key_path = dir.sub("repo.key");
  repo->add_key_file(key_path);
  struct stat st {};
  ASSERT_EQ(::stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A second add-key-file never overwrites the first.
  EXPECT_EQ(error_code_of([&] { repo->add_key_file(key_path); }), ErrorCode::kConflict);

  repo->put_object("data/x", as_bytes("secret rows"));
  Secrets by_file;
  by_file.key_file = key_path;
  auto reopened = Repository::open(store, by_file);
  EXPECT_EQ(as_chars(*reopened->get_object("data/x")), "secret rows");

  // A key file of another repository, or a damaged one, is refused.
  write_file_atomic(dir.sub("other.key"), Bytes(32, 7));
  Secrets other;
  other.key_file = dir.sub("other.key");
  EXPECT_EQ(error_code_of([&] { Repository::open(store, other); }), ErrorCode::kKey);
  write_file_atomic(dir.sub("short.key"), Bytes(5, 7));
  Secrets shortk;
  shortk.key_file = dir.sub("short.key");
  EXPECT_EQ(error_code_of([&] { Repository::open(store, shortk); }), ErrorCode::kKey);
  Secrets missing;
  missing.key_file = dir.sub("absent.key");
  EXPECT_EQ(error_code_of([&] { Repository::open(store, missing); }), ErrorCode::kKey);
}

TEST(Repository, OneKeyFileRegisteredWithSeveralRepositories) {
  testing::TempDir dir("wv-repo");
  // Through the ObjectStore interface (MemStore hides the one-argument get).
  std::shared_ptr<store::ObjectStore> store_a = std::make_shared<store::MemStore>();
  std::shared_ptr<store::ObjectStore> store_b = std::make_shared<store::MemStore>();
  std::shared_ptr<store::ObjectStore> store_c = std::make_shared<store::MemStore>();
  Repository::init(*store_a, encrypted_options());
  InitOptions other_passphrase = encrypted_options();
  other_passphrase.passphrase = "another passphrase entirely";
  Repository::init(*store_b, other_passphrase);
  Repository::init(*store_c, encrypted_options());
  Secrets pass_a;
  pass_a.passphrase = kPassphrase;
  Secrets pass_b;
  pass_b.passphrase = other_passphrase.passphrase;
  auto a = Repository::open(store_a, pass_a);
  auto b = Repository::open(store_b, pass_b);
  const std::string key_path = dir.sub("shared.key");
  a->add_key_file(key_path);
  const Bytes key_bytes = *read_file(key_path);
  EXPECT_TRUE(b->register_key_file(key_path));
  EXPECT_FALSE(b->register_key_file(key_path));  // already registered: nothing written
  EXPECT_EQ(*read_file(key_path), key_bytes);    // the key file itself is never rewritten

  a->put_object("data/x", as_bytes("rows of a"));
  b->put_object("data/x", as_bytes("rows of b"));
  Secrets by_file;
  by_file.key_file = key_path;
  EXPECT_EQ(as_chars(*Repository::open(store_a, by_file)->get_object("data/x")), "rows of a");
  EXPECT_EQ(as_chars(*Repository::open(store_b, by_file)->get_object("data/x")), "rows of b");
  // Not registered with c: refused there.
  EXPECT_EQ(error_code_of([&] { Repository::open(store_c, by_file); }), ErrorCode::kKey);

  // A wrap under the key file's name that it does not open is never replaced.
  auto c = Repository::open(store_c, pass_a);
  const std::string name = key_file_object_name(read_key_file(key_path));
  store_c->put(name, *store_b->get(name));  // b's wrap: another repository's aad
  EXPECT_EQ(error_code_of([&] { c->register_key_file(key_path); }), ErrorCode::kConflict);
  EXPECT_EQ(*store_c->get(name), *store_b->get(name));

  // Missing or malformed key files, and unencrypted repositories.
  EXPECT_EQ(error_code_of([&] { b->register_key_file(dir.sub("absent.key")); }), ErrorCode::kKey);
  write_file_atomic(dir.sub("short.key"), Bytes(5, 7));
  EXPECT_EQ(error_code_of([&] { b->register_key_file(dir.sub("short.key")); }), ErrorCode::kKey);
  auto plain_store = std::make_shared<store::MemStore>();
  Repository::init(*plain_store, {});
  auto plain = Repository::open(plain_store, {});
  EXPECT_EQ(error_code_of([&] { plain->register_key_file(key_path); }), ErrorCode::kUsage);
}

TEST(Repository, ObjectsAreCreateOnlyAndVerified) {
  auto store = std::make_shared<store::MemStore>();
  Repository::init(*store, {});
  auto repo = Repository::open(store, {});
  EXPECT_EQ(repo->put_object("a/b", as_bytes("one")), store::PutResult::kCreated);
  EXPECT_EQ(repo->put_object("a/b", as_bytes("two")), store::PutResult::kAlreadyExists);
  EXPECT_EQ(as_chars(*repo->get_object("a/b")), "one");
  EXPECT_FALSE(repo->get_object("a/c").has_value());

  Bytes sealed = *store->get("a/b", std::nullopt);
  sealed.back() ^= 0x10;
  store->corrupt("a/b", sealed);
  try {
    repo->get_object("a/b");
    FAIL() << "corruption not detected";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find("a/b"), std::string::npos) << e.what();
  }
}

TEST(Repository, PlaintextObjectInEncryptedRepositoryIsCorruption) {
  auto store = std::make_shared<store::MemStore>();
  Repository::init(*store, encrypted_options());
  Secrets pass;
  pass.passphrase = kPassphrase;
  auto repo = Repository::open(store, pass);
  repo->put_object("wal/x", as_bytes("real"));
  store->corrupt("wal/x", codec::seal(as_bytes("forged"), {}));
  EXPECT_EQ(error_code_of([&] { repo->get_object("wal/x"); }), ErrorCode::kCorruption);
}

TEST(Cluster, BindsOnceAndRefusesAnotherSystem) {
  auto store = std::make_shared<store::MemStore>();
  Repository::init(*store, {});
  auto repo = Repository::open(store, {});
  EXPECT_FALSE(read_cluster(*repo).has_value());
  ClusterInfo seen{7001, 16u << 20, 8192, 15, 0};
  EXPECT_EQ(bind_cluster(*repo, seen, "seg").system_id, 7001u);
  EXPECT_EQ(bind_cluster(*repo, seen, "seg").system_id, 7001u);
  ClusterInfo other = seen;
  other.system_id = 7002;
  EXPECT_EQ(error_code_of([&] { bind_cluster(*repo, other, "seg"); }), ErrorCode::kClusterMismatch);
  ClusterInfo resized = seen;
  resized.segment_size = 1u << 20;
  EXPECT_EQ(error_code_of([&] { bind_cluster(*repo, resized, "seg"); }),
            ErrorCode::kClusterMismatch);
}

}  // namespace
}  // namespace walvault::repo
