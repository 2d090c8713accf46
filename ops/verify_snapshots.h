// verify's part for file-volume snapshots (private to ops/verify.cpp;
// format.md "verify"): every snapshot record decodes and is named after its
// volume and label, every tree its root reaches is there and passes the strict
// decoder (files/tree.h), and every chunk a file names is listed by an index.
// After the packs were checked, the files whose chunks turned out missing or
// damaged there (--read-data) are named too.
//
// Problems are reported against the record ("snapshots/<volume>/<label>"),
// the message naming the snapshot ("snapshot <id> (<volume>/<label>)") and
// the path inside it. Trees shared by several snapshots are read once; a
// later snapshot reaching a damaged shared tree gets an error pointing at the
// first report. Memory: the trees on the current path, plus one entry per
// distinct tree.
//
// Trees are read through the caller's view of the indexes (`locate`), not a
// repo::ChunkStore: a damaged index then makes its chunks missing, as it does
// for backups, instead of stopping verify.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "files/snapshot_record.h"
#include "repo/chunk_store.h"
#include "store/object_store.h"

namespace walvault::ops {

struct SnapshotCheckHooks {
  // Where the indexes place a chunk; nullptr when none lists it.
  std::function<const repo::ChunkLocation*(const repo::ChunkId&)> locate;
  // The repository's id of a plaintext (SHA-256, or HMAC when encrypted).
  std::function<repo::ChunkId(ByteView)> chunk_id;
  // Runs fn; a content error it throws is recorded against `object` (false).
  std::function<bool(const std::string& object, const std::function<void()>& fn)> guarded;
  std::function<void(const std::string& object, const std::string& message)> error;
  // The pack holding a chunk that `user` ("snapshot <volume>/<label>") needs.
  std::function<void(const repo::ChunkId& pack, const std::string& user)> used_by;
};

class SnapshotVerifier {
 public:
  SnapshotVerifier(repo::Repository& repo, SnapshotCheckHooks hooks)
      : repo_(repo), hooks_(std::move(hooks)) {}

  // The structure pass over the listed snapshot records; returns how many
  // records decoded. With `read_data`, adds the records' stored sizes to
  // `bytes_read`.
  std::uint64_t check(const std::vector<store::ObjectInfo>& records, bool read_data,
                      std::uint64_t& bytes_read);

  // Names, per snapshot, every file that needs a chunk of `damaged` (chunk
  // id -> what is wrong with it: its pack missing, truncated or damaged).
  // Nothing is read when `damaged` is empty.
  void name_damaged_files(
      const std::unordered_map<repo::ChunkId, std::string, repo::ChunkIdHash>& damaged);

 private:
  struct Snapshot {
    std::string object;  // snapshots/<volume>/<label>
    std::string who;     // snapshot <id> (<volume>/<label>)
    std::string user;    // snapshot <volume>/<label>
    repo::ChunkId root{};
    std::uint64_t named = 0;  // problems named so far; the rest are counted
    std::uint64_t more = 0;
  };
  // What is wrong with a chunk a file names, or std::nullopt.
  using ChunkProblem = std::function<std::optional<std::string>(const repo::ChunkId&)>;
  struct Pass {
    bool structure = false;  // the first pass: reports trees, records the packs used
    ChunkProblem problem;
    // Trees seen in this pass: whether everything below is whole, and where
    // they were first reported.
    std::unordered_map<repo::ChunkId, std::pair<bool, std::string>, repo::ChunkIdHash> trees;
  };

  void walk_snapshot(Snapshot& s, Pass& pass);
  bool walk_tree(const repo::ChunkId& id, const std::string& path, Snapshot& s, Pass& pass,
                 int depth);
  // The tree's verified plaintext decoded, or std::nullopt (reported in the
  // structure pass, silent after it).
  std::optional<files::Tree> read_tree(const repo::ChunkId& id, const std::string& path,
                                       Snapshot& s, bool structure_pass);
  void report(Snapshot& s, const std::string& path, const std::string& message);

  repo::Repository& repo_;
  SnapshotCheckHooks hooks_;
  std::vector<Snapshot> snapshots_;
  std::unordered_set<repo::ChunkId, repo::ChunkIdHash> unreadable_trees_;
};

}  // namespace walvault::ops
