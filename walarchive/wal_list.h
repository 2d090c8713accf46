// `wal list`: what the archive holds, per timeline: contiguous ranges of
// segments, the gaps between them, the span of commit/abort times, and the
// restore points. Built from the segments' metadata objects only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pg/wal_segment.h"
#include "repo/repository.h"
#include "repo/wal_objects.h"

namespace walvault::walarchive {

struct SegmentRange {
  std::string first, last;  // segment names, inclusive
  std::uint64_t count = 0;
};

struct TimelineSummary {
  pg::TimeLineId timeline = 0;
  std::vector<SegmentRange> ranges;  // contiguous runs, in order
  std::vector<SegmentRange> gaps;    // missing runs between ranges
  std::uint64_t segments = 0;
  pg::Lsn first_lsn = 0;  // start of the first segment
  pg::Lsn end_lsn = 0;    // end of the last decoded record
  std::optional<std::int64_t> first_xact_time_us, last_xact_time_us;
  std::vector<pg::RestorePoint> restore_points;
};

struct WalListing {
  std::vector<TimelineSummary> timelines;
  std::vector<std::string> other_files;  // .history, .backup, .partial
};

// `segment_size` is the bound cluster's; metas must be sorted by name.
WalListing summarize_wal(const std::vector<repo::SegmentMeta>& metas, std::uint32_t segment_size,
                         std::vector<std::string> other_files);
WalListing list_wal(repo::Repository& repo);

std::string wal_listing_text(const WalListing& listing);
std::string wal_listing_json(const WalListing& listing);

}  // namespace walvault::walarchive
