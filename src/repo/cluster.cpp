#include "repo/cluster.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace walvault::repo {

using nlohmann::json;

std::optional<ClusterInfo> read_cluster(Repository& repo) {
  auto bytes = repo.get_object(kClusterObject);
  if (!bytes) return std::nullopt;
  try {
    json j = json::parse(as_chars(*bytes));
    ClusterInfo c;
    c.system_id = std::stoull(j.at("system_id").get<std::string>());
    c.segment_size = j.at("segment_size").get<std::uint32_t>();
    c.page_size = j.at("page_size").get<std::uint32_t>();
    c.pg_major = j.at("pg_major").get<int>();
    c.bound_us = j.at("bound_us").get<std::int64_t>();
    return c;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kCorruption, std::string(kClusterObject) + ": " + e.what());
  }
}

static void check_same(const ClusterInfo& bound, const ClusterInfo& seen, const std::string& what) {
  if (bound.system_id != seen.system_id)
    throw Error(ErrorCode::kClusterMismatch,
                what + " is from database system " + std::to_string(seen.system_id) +
                    " but the repository belongs to system " + std::to_string(bound.system_id));
  if (bound.segment_size != seen.segment_size)
    throw Error(ErrorCode::kClusterMismatch,
                what + " has WAL segment size " + std::to_string(seen.segment_size) +
                    " but the repository's cluster uses " + std::to_string(bound.segment_size));
}

ClusterInfo bind_cluster(Repository& repo, const ClusterInfo& seen, const std::string& what) {
  if (auto bound = read_cluster(repo)) {
    check_same(*bound, seen, what);
    return *bound;
  }
  ClusterInfo c = seen;
  c.bound_us = std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  // system_id as a string: JSON consumers often hold numbers as doubles.
  json j = {{"system_id", std::to_string(c.system_id)},
            {"segment_size", c.segment_size},
            {"page_size", c.page_size},
            {"pg_major", c.pg_major},
            {"bound_us", c.bound_us}};
  std::string text = j.dump(2) + "\n";
  if (repo.put_object(kClusterObject, as_bytes(text)) == store::PutResult::kAlreadyExists) {
    // Another writer bound it first: judge against what it wrote.
    auto bound = read_cluster(repo);
    if (!bound) throw Error(ErrorCode::kInternal, "cluster object vanished while binding");
    check_same(*bound, seen, what);
    return *bound;
  }
  return c;
}

}  // namespace walvault::repo
