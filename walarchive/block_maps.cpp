#include "walarchive/block_maps.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "core/parallel.h"
#include "repo/wal_objects.h"

namespace walvault::walarchive {
namespace {

// A map that may be trusted for its segment, or the problem with it.
const pg::BlockMap* usable(const SegmentMaps& s, std::string& problem) {
  if (!s.meta_xxh3) {
    problem = s.segment + " is not archived";
  } else if (!s.map) {
    problem = s.segment + " has no block map (archived by a walvault without block maps)";
  } else if (s.map->segment_xxh3 != *s.meta_xxh3) {
    problem = s.segment + ": its block map was made from other bytes than the archived segment";
  } else if (!s.map->complete) {
    problem = s.segment + ": block map incomplete: " + s.map->incomplete_reason;
  } else {
    return &*s.map;
  }
  return nullptr;
}

// Adds `from` into `into`, keeping the entry already there for a block both
// have (it came from an earlier segment).
void merge_blocks(std::vector<pg::ChangedBlock>& into, const std::vector<pg::ChangedBlock>& from) {
  if (into.empty()) {
    into = from;
    return;
  }
  std::vector<pg::ChangedBlock> out;
  out.reserve(into.size() + from.size());
  std::size_t i = 0, j = 0;
  while (i < into.size() || j < from.size()) {
    if (j == from.size() || (i < into.size() && into[i].block <= from[j].block)) {
      if (j < from.size() && into[i].block == from[j].block) ++j;
      out.push_back(into[i++]);
    } else {
      out.push_back(from[j++]);
    }
  }
  into = std::move(out);
}

class Union {
 public:
  void add(const pg::BlockMap& map) {
    for (const pg::ForkBlocks& group : map.blocks) merge_blocks(blocks_[group.fork], group.blocks);
    events_.insert(events_.end(), map.events.begin(), map.events.end());
  }
  ChangedBlocks finish(std::vector<std::string> problems, std::uint64_t segments) {
    ChangedBlocks out;
    for (auto& [fork, blocks] : blocks_) out.blocks.push_back({fork, std::move(blocks)});
    std::stable_sort(events_.begin(), events_.end(),
                     [](const pg::MapEvent& a, const pg::MapEvent& b) { return a.lsn < b.lsn; });
    out.events = std::move(events_);
    out.problems = std::move(problems);
    out.segments = segments;
    return out;
  }

 private:
  std::map<pg::RelFork, std::vector<pg::ChangedBlock>> blocks_;
  std::vector<pg::MapEvent> events_;
};

SegmentMaps read_segment_maps(repo::Repository& repo, const std::string& segment) {
  SegmentMaps s;
  s.segment = segment;
  if (auto meta = repo::read_meta(repo, segment)) {
    s.meta_xxh3 = meta->xxh3;
    s.map = repo::read_block_map(repo, segment);
  }
  return s;
}

}  // namespace

ChangedBlocks union_block_maps(const std::vector<SegmentMaps>& range,
                               const std::optional<SegmentMaps>& after, pg::Lsn end_lsn) {
  Union all;
  std::vector<std::string> problems;
  for (std::size_t i = 0; i < range.size(); ++i) {
    std::string problem;
    const pg::BlockMap* map = usable(range[i], problem);
    if (!map) {
      problems.push_back(problem);
      continue;
    }
    all.add(*map);
    if (!map->head || map->head->lsn >= end_lsn) continue;
    // The record crossing into the next segment needs that segment's map.
    const SegmentMaps* next = i + 1 < range.size() ? &range[i + 1] : (after ? &*after : nullptr);
    std::string next_problem;
    const pg::BlockMap* next_map = next ? usable(*next, next_problem) : nullptr;
    pg::BlockMapBuilder joined(map->pg_major, map->segment_start);
    std::string reason;
    if (!pg::join_crossing(*map, next_map, joined, reason)) {
      problems.push_back(range[i].segment + ": " + reason);
      continue;
    }
    all.add(joined.finish());
  }
  return all.finish(std::move(problems), range.size());
}

ChangedBlocks read_changed_blocks(repo::Repository& repo, const BlockMapQuery& query) {
  if (!pg::is_valid_segment_size(query.segment_size) || query.timeline == 0 ||
      query.end_lsn <= query.start_lsn) {
    throw Error(ErrorCode::kInvalidInput,
                "block map query: needs a timeline, a valid segment size and start < end LSN");
  }
  const std::uint64_t first = query.start_lsn / query.segment_size;
  const std::uint64_t last = (query.end_lsn - 1) / query.segment_size;
  std::vector<SegmentMaps> range(last - first + 1);
  parallel_for(range.size(), std::max(1, query.parallel), [&](std::size_t i) {
    range[i] = read_segment_maps(
        repo, pg::segment_file_name(query.timeline, first + i, query.segment_size));
  });
  std::optional<SegmentMaps> after;
  const auto& tail = range.back().map;
  if (tail && tail->head && tail->head->lsn < query.end_lsn)
    after = read_segment_maps(repo,
                              pg::segment_file_name(query.timeline, last + 1, query.segment_size));
  return union_block_maps(range, after, query.end_lsn);
}

}  // namespace walvault::walarchive
