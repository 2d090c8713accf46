// A small file-volume snapshot written straight into a repository for the ops
// tests: volume "app", root "." holding "b.bin" (one chunk), "link" (a
// symlink) and "docs/a.txt" (two chunks). The files' chunks go into one pack
// (data_pack) and the two trees into another (tree_pack), so a test can
// damage either alone. `missing` adds to docs/a.txt a chunk no index lists.
#pragma once

#include <string>

#include "files/snapshot_record.h"
#include "files/take_snapshot.h"
#include "repo/chunk_store.h"
#include "support/seeded_bytes.h"

namespace walvault::testing {

struct SyntheticSnapshot {
  files::SnapshotRecord record;
  std::string object;  // snapshots/app/<label>
  std::string data_pack, tree_pack;
  repo::ChunkId first_data_chunk{};
};

inline files::Node synthetic_file(repo::ChunkStore& chunks, const std::string& name,
                                  std::initializer_list<std::uint32_t> seeds) {
  files::Node n;
  n.name = name;
  n.mode = 0644;
  n.mtime_ns = 1'795'000'000'000'000'000;
  for (std::uint32_t seed : seeds) {
    const Bytes data = seeded_bytes(seed, 5000 + seed);
    n.chunks.push_back({chunks.add(data).id, static_cast<std::uint32_t>(data.size())});
    n.size += data.size();
  }
  if (n.size > 0) n.extents.push_back({0, n.size});
  return n;
}

inline SyntheticSnapshot add_synthetic_snapshot(repo::Repository& repo, bool missing = false,
                                                std::int64_t start_us = 1'795'100'000'000'000) {
  SyntheticSnapshot out;
  files::Tree docs, root;
  {
    repo::ChunkStore data(repo);
    files::Node a = synthetic_file(data, "a.txt", {501, 502});
    if (missing) {
      const Bytes never_stored = seeded_bytes(599, 100);
      a.chunks.push_back({data.chunk_id(never_stored), 100});
      a.size += 100;
      a.extents.back().length += 100;
    }
    docs.nodes.push_back(a);
    root.nodes.push_back(synthetic_file(data, "b.bin", {503}));
    data.flush();
    out.first_data_chunk = docs.nodes[0].chunks[0].id;
    out.data_pack = repo::pack_object_name(data.locate(out.first_data_chunk)->pack);
  }
  repo::ChunkStore trees(repo);
  files::Node dir;
  dir.name = "docs";
  dir.type = files::NodeType::kDirectory;
  dir.mode = 0755;
  dir.subtree = trees.add(files::encode_tree(docs)).id;
  files::Node link;
  link.name = "link";
  link.type = files::NodeType::kSymlink;
  link.mode = 0777;
  link.link_target = "docs/a.txt";
  root.nodes.insert(root.nodes.begin() + 1, dir);  // b.bin, docs, link
  root.nodes.push_back(link);
  out.record.root = trees.add(files::encode_tree(root)).id;
  trees.flush();
  out.tree_pack = repo::pack_object_name(trees.locate(out.record.root)->pack);
  out.record.volume = "app";
  out.record.start_us = out.record.end_us = start_us;
  out.record.host = "test";
  out.record.paths = {"/srv/app"};
  out.record.root_node.name = ".";
  out.record.root_node.type = files::NodeType::kDirectory;
  out.record.root_node.mode = 0755;
  out.record.chunker = files::default_cdc_params();
  out.record.keyed_chunker = repo.encrypted();
  out.record.files = 2;
  out.record = files::write_snapshot_record(repo, out.record);
  out.object = repo::snapshot_object_name(out.record.volume, out.record.label);
  return out;
}

}  // namespace walvault::testing
