// A repository in a local directory (or a NAS mount). Object "a/b/c" is the
// file <root>/a/b/c; parent directories are created on demand and are an
// implementation detail the layers above never see.
//
// put(): temp file in the target directory, write, fsync, link(2) to the final
// name (fails with EEXIST instead of overwriting), unlink temp, fsync the
// directory. Temp files are named ".tmp.*" and are never listed; an
// interrupted put leaves only such a file, which clean_temp_files() removes.
//
// Ranged gets (pieces of packs, read chunk by chunk by restores) keep the
// object's descriptor open for the next piece: the last kOpenObjects objects
// read that way stay open. Objects are written once and never rewritten in
// place, so a kept descriptor reads what the name holds; remove() closes it.
// After another process removed the object, a kept descriptor still reads
// the bytes it had (an unlinked file), which are the ones callers verify.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "store/object_store.h"

namespace walvault::store {

class PosixStore final : public ObjectStore {
 public:
  // `root` must exist unless `create` (then it and its parents are made).
  explicit PosixStore(std::string root, bool create = false);

  PutResult put(const std::string& name, ByteView data) override;
  std::optional<Bytes> get(const std::string& name, std::optional<Range> range) override;
  std::optional<ObjectInfo> stat(const std::string& name) override;
  std::vector<ObjectInfo> list(const std::string& prefix) override;
  bool remove(const std::string& name) override;
  Capabilities capabilities() const override;
  std::optional<SpaceInfo> space() override;
  std::string describe() const override { return root_; }

  // Removes temp files older than `min_age_seconds` left by interrupted puts.
  // Returns how many were removed.
  std::size_t clean_temp_files(long min_age_seconds);
  std::size_t clean_leftovers(std::chrono::seconds min_age) override {
    return clean_temp_files(static_cast<long>(min_age.count()));
  }

 private:
  struct OpenObject;
  // The open object `path` (kept), or a fresh one; none when it is absent.
  std::shared_ptr<OpenObject> open_for_range(const std::string& path);
  void forget_open(const std::string& path);

  static constexpr std::size_t kOpenObjects = 32;
  std::string root_;
  std::mutex open_mu_;
  std::list<std::pair<std::string, std::shared_ptr<OpenObject>>> open_;  // newest first
};

}  // namespace walvault::store
