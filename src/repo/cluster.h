// The cluster a repository belongs to. The first WAL push (or backup) binds
// the repository to that cluster's system identifier by writing the
// create-only `cluster` object; everything later from another cluster is
// refused with Error(kClusterMismatch).
#pragma once

#include <cstdint>
#include <optional>

#include "repo/layout.h"
#include "repo/repository.h"

namespace walvault::repo {

struct ClusterInfo {
  std::uint64_t system_id = 0;
  std::uint32_t segment_size = 0;
  std::uint32_t page_size = 0;
  int pg_major = 0;  // of the first WAL seen; informational
  std::int64_t bound_us = 0;
};

std::optional<ClusterInfo> read_cluster(Repository& repo);

// Returns the binding, creating it from `seen` when the repository has none.
// Throws Error(kClusterMismatch) naming both system identifiers when `seen`
// belongs to another cluster, or its segment size differs. `what` names the
// input in that message (a WAL file name, "backup").
ClusterInfo bind_cluster(Repository& repo, const ClusterInfo& seen, const std::string& what);

}  // namespace walvault::repo
