#include "walarchive/wal_list.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/time_util.h"
#include "repo/cluster.h"
#include "repo/layout.h"

namespace walvault::walarchive {

using nlohmann::json;

WalListing summarize_wal(const std::vector<repo::SegmentMeta>& metas, std::uint32_t segment_size,
                         std::vector<std::string> other_files) {
  WalListing listing;
  listing.other_files = std::move(other_files);
  TimelineSummary* tl = nullptr;
  std::uint64_t last_segno = 0;
  for (const repo::SegmentMeta& m : metas) {
    if (!tl || tl->timeline != m.timeline) {
      listing.timelines.push_back({});
      tl = &listing.timelines.back();
      tl->timeline = m.timeline;
      tl->first_lsn = pg::segment_start_lsn(m.segno, segment_size);
    } else if (m.segno == last_segno + 1) {
      tl->ranges.back().last = m.name;
      tl->ranges.back().count++;
    } else {
      tl->gaps.push_back({pg::segment_file_name(m.timeline, last_segno + 1, segment_size),
                          pg::segment_file_name(m.timeline, m.segno - 1, segment_size),
                          m.segno - last_segno - 1});
    }
    if (tl->ranges.empty() || tl->ranges.back().last != m.name)
      tl->ranges.push_back({m.name, m.name, 1});
    last_segno = m.segno;
    tl->segments++;
    const pg::SegmentSummary& s = m.summary;
    if (s.end_lsn) tl->end_lsn = s.end_lsn;
    if (s.min_xact_time_us &&
        (!tl->first_xact_time_us || *s.min_xact_time_us < *tl->first_xact_time_us))
      tl->first_xact_time_us = s.min_xact_time_us;
    if (s.max_xact_time_us &&
        (!tl->last_xact_time_us || *s.max_xact_time_us > *tl->last_xact_time_us))
      tl->last_xact_time_us = s.max_xact_time_us;
    tl->restore_points.insert(tl->restore_points.end(), s.restore_points.begin(),
                              s.restore_points.end());
  }
  return listing;
}

WalListing list_wal(repo::Repository& repo) {
  std::vector<std::string> files;
  for (const auto& info : repo.store().list(repo::kWalFilePrefix))
    if (auto file = repo::parse_wal_file_object(info.name)) files.push_back(std::move(*file));
  auto cluster = repo::read_cluster(repo);
  if (!cluster) return summarize_wal({}, 0, std::move(files));
  return summarize_wal(repo::read_all_meta(repo), cluster->segment_size, std::move(files));
}

std::string wal_listing_text(const WalListing& listing) {
  std::ostringstream out;
  if (listing.timelines.empty()) out << "no WAL segments archived\n";
  for (const auto& tl : listing.timelines) {
    out << "timeline " << tl.timeline << ": " << tl.segments << " segment"
        << (tl.segments == 1 ? "" : "s") << ", " << pg::format_lsn(tl.first_lsn) << " - "
        << pg::format_lsn(tl.end_lsn) << "\n";
    for (const auto& r : tl.ranges)
      out << "  range " << r.first << " - " << r.last << " (" << r.count << ")\n";
    for (const auto& g : tl.gaps)
      out << "  gap   " << g.first << " - " << g.last << " (" << g.count << " missing)\n";
    if (tl.first_xact_time_us)
      out << "  commits " << format_time_us(*tl.first_xact_time_us) << " - "
          << format_time_us(*tl.last_xact_time_us) << "\n";
    else
      out << "  commits none\n";
    for (const auto& rp : tl.restore_points)
      out << "  restore point '" << rp.name << "' at " << format_time_us(rp.time_us) << " lsn "
          << pg::format_lsn(rp.lsn) << "\n";
  }
  for (const auto& f : listing.other_files) out << "file " << f << "\n";
  return out.str();
}

std::string wal_listing_json(const WalListing& listing) {
  json timelines = json::array();
  auto ranges = [](const std::vector<SegmentRange>& rs) {
    json a = json::array();
    for (const auto& r : rs)
      a.push_back({{"first", r.first}, {"last", r.last}, {"count", r.count}});
    return a;
  };
  auto time = [](const std::optional<std::int64_t>& t) -> json {
    return t ? json(format_time_us(*t)) : json(nullptr);
  };
  for (const auto& tl : listing.timelines) {
    json rps = json::array();
    for (const auto& rp : tl.restore_points)
      rps.push_back({{"name", rp.name},
                     {"time", format_time_us(rp.time_us)},
                     {"lsn", pg::format_lsn(rp.lsn)}});
    timelines.push_back({{"timeline", tl.timeline},
                         {"segments", tl.segments},
                         {"first_lsn", pg::format_lsn(tl.first_lsn)},
                         {"end_lsn", pg::format_lsn(tl.end_lsn)},
                         {"ranges", ranges(tl.ranges)},
                         {"gaps", ranges(tl.gaps)},
                         {"first_xact_time", time(tl.first_xact_time_us)},
                         {"last_xact_time", time(tl.last_xact_time_us)},
                         {"restore_points", rps}});
  }
  json j = {{"timelines", timelines}, {"files", listing.other_files}};
  return j.dump(2) + "\n";
}

}  // namespace walvault::walarchive
