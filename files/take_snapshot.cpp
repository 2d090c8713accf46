#include "files/take_snapshot.h"

#include <sys/stat.h>

#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/host.h"
#include "core/relative_path.h"
#include "core/time_util.h"
#include "files/names.h"
#include "files/tar_import.h"

namespace walvault::files {
namespace {

// The directory's own metadata, as a tree entry named `name`.
Node directory_node(const std::string& path, const std::string& name) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) throw_errno("stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) throw Error(ErrorCode::kUsage, path + " is not a directory");
  Node n;
  n.name = name;
  n.type = NodeType::kDirectory;
  n.mode = st.st_mode & 07777;
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.mtime_ns = nanoseconds(st.st_mtim);
  n.ctime_ns = nanoseconds(st.st_ctim);
  n.device = st.st_dev;
  n.inode = st.st_ino;
  return n;
}

std::vector<std::string> absolute_paths(const std::vector<std::string>& paths) {
  if (paths.empty()) throw Error(ErrorCode::kUsage, "files backup: give at least one directory");
  std::vector<std::string> out;
  std::set<std::string> names;
  for (const std::string& p : paths) {
    std::error_code ec;
    const std::filesystem::path abs = std::filesystem::absolute(p, ec).lexically_normal();
    if (ec) throw Error(ErrorCode::kUsage, "path " + printable_name(p) + ": " + ec.message());
    std::string text = abs.string();
    while (text.size() > 1 && text.back() == '/') text.pop_back();
    const std::string base = std::filesystem::path(text).filename().string();
    if (paths.size() > 1 && (base.empty() || !names.insert(base).second))
      throw Error(ErrorCode::kUsage,
                  "path " + printable_name(p) + ": several paths need different base names");
    out.push_back(text);
  }
  return out;
}

// The newest snapshot of the volume taken of the same paths.
std::optional<SnapshotRecord> parent_of(repo::Repository& repo, const std::string& volume,
                                        const std::vector<std::string>& paths) {
  const std::vector<SnapshotRecord> all = list_snapshots(repo, volume);
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (it->paths == paths) return *it;
  return std::nullopt;
}

// The run's counts into the record.
void fill_counts(SnapshotRecord& record, const SnapshotStats& stats) {
  record.files = stats.files;
  record.directories = stats.directories;
  record.other = stats.other;
  record.bytes = stats.bytes;
  record.read_bytes = stats.read_bytes;
  record.added_bytes = stats.added_bytes;
  record.unreadable = stats.unreadable;
  record.warnings = stats.warnings;
  record.warning_count = stats.warnings.size();
}

}  // namespace

codec::CdcParams default_cdc_params() { return codec::CdcParams{}; }

SnapshotRecord take_snapshot(repo::Repository& repo, const TakeSnapshotOptions& options,
                             SnapshotStats& stats) {
  if (auto p = volume_problem(options.volume))
    throw Error(ErrorCode::kUsage, "volume " + printable_name(options.volume) + ": " + *p);
  SnapshotRecord record;
  record.volume = options.volume;
  record.tag = options.tag;
  record.paths = absolute_paths(options.paths);
  record.start_us = options.start_us != 0 ? options.start_us : now_unix_us();
  record.host = host_name();
  record.chunker = default_cdc_params();
  const std::optional<codec::Key> gear_key = repo.derived_key(codec::kGearKeyInfo);
  record.keyed_chunker = gear_key.has_value();
  const codec::CdcChunker chunker(record.chunker, codec::gear_table(gear_key));

  const std::optional<SnapshotRecord> parent = parent_of(repo, options.volume, record.paths);
  // A parent cut by other parameters would share no chunks: ignore it.
  const bool same_cuts = parent && parent->chunker.min_size == record.chunker.min_size &&
                         parent->chunker.average_size == record.chunker.average_size &&
                         parent->chunker.max_size == record.chunker.max_size &&
                         parent->keyed_chunker == record.keyed_chunker;
  if (same_cuts) record.parent = parent->label;

  repo::ChunkStore chunks(repo);
  if (record.paths.size() == 1) {
    record.root_node = directory_node(record.paths[0], ".");
    record.root = snapshot_directory(chunks, chunker, record.paths[0],
                                     same_cuts ? std::optional(parent->root) : std::nullopt,
                                     options.walk, stats);
  } else {
    const std::optional<Tree> parent_root =
        same_cuts ? load_tree(chunks, parent->root) : std::nullopt;
    Tree root;
    for (const std::string& path : record.paths) {
      Node n = directory_node(path, std::filesystem::path(path).filename().string());
      std::optional<repo::ChunkId> before;
      if (parent_root)
        for (const Node& p : parent_root->nodes)
          if (p.name == n.name && p.type == NodeType::kDirectory) before = p.subtree;
      n.subtree = snapshot_directory(chunks, chunker, path, before, options.walk, stats);
      root.nodes.push_back(std::move(n));
    }
    std::sort(root.nodes.begin(), root.nodes.end(),
              [](const Node& a, const Node& b) { return a.name < b.name; });
    const repo::AddResult added = chunks.add(encode_tree(root));
    stats.added_bytes += added.stored_bytes;
    record.root = added.id;
    record.root_node.name = ".";
    record.root_node.type = NodeType::kDirectory;
    record.root_node.mode = 0755;
    record.root_node.mtime_ns = record.start_us * 1000;
  }
  chunks.flush();
  record.end_us = now_unix_us();
  fill_counts(record, stats);
  return write_snapshot_record(repo, std::move(record));
}

SnapshotRecord import_snapshot(repo::Repository& repo, const std::string& volume,
                               std::int64_t time_us, const std::string& tag, int fd,
                               const std::string& what, SnapshotStats& stats) {
  if (auto p = volume_problem(volume))
    throw Error(ErrorCode::kUsage, "volume " + printable_name(volume) + ": " + *p);
  SnapshotRecord record;
  record.volume = volume;
  record.tag = tag;
  record.paths = {what};
  record.start_us = time_us;
  record.host = host_name();
  record.chunker = default_cdc_params();
  const std::optional<codec::Key> gear_key = repo.derived_key(codec::kGearKeyInfo);
  record.keyed_chunker = gear_key.has_value();
  const codec::CdcChunker chunker(record.chunker, codec::gear_table(gear_key));
  repo::ChunkStore chunks(repo);
  TarImportResult imported = import_tar(chunks, chunker, fd, what);
  chunks.flush();
  stats = imported.stats;
  record.root = imported.root;
  record.root_node = imported.root_node;
  record.end_us = time_us;
  fill_counts(record, stats);
  return write_snapshot_record(repo, std::move(record));
}

}  // namespace walvault::files
