// bench/plan_scale.sh's generator: a repository at LOCATION (made when it has
// none) bound to a synthetic cluster (16 MiB segments) holding the metadata
// of segments 1..COUNT of timeline 1, written by 32 threads. Only metadata:
// planning reads nothing else. S3 settings come from the AWS_* variables.
//
//   plan_scale_gen LOCATION COUNT
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/parallel.h"
#include "repo/cluster.h"
#include "repo/repository.h"
#include "repo/wal_objects.h"
#include "store/object_store.h"
#include "support/synthetic_meta.h"

int main(int argc, char** argv) {
  using namespace walvault;
  if (argc != 3) {
    std::fprintf(stderr, "usage: plan_scale_gen LOCATION COUNT\n");
    return 2;
  }
  try {
    constexpr std::uint32_t kSegSize = 16u << 20;
    std::shared_ptr<store::ObjectStore> store = store::open_store(argv[1], {.create = true});
    if (!store->stat(repo::kConfigObject)) repo::Repository::init(*store, {});
    auto repo = repo::Repository::open(store, {});
    if (!repo::read_cluster(*repo)) walvault::testing::bind_synthetic_cluster(*repo, kSegSize);
    const std::uint64_t count = std::strtoull(argv[2], nullptr, 10);
    parallel_for(count, 32, [&](std::size_t i) {
      const std::uint64_t segno = i + 1;
      auto m = walvault::testing::synthetic_segment_meta(
          1, segno, kSegSize,
          1'800'000'000'000'000 + static_cast<std::int64_t>(segno) * 60'000'000);
      repo->put_object(repo::meta_object_name(m.name), as_bytes(repo::meta_to_json(m)));
    });
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plan_scale_gen: %s\n", e.what());
    return 1;
  }
}
