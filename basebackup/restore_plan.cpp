#include "basebackup/restore_plan.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "core/error.h"
#include "core/time_util.h"
#include "repo/cluster.h"

namespace walvault::basebackup {

namespace {

using repo::SegmentMeta;

constexpr std::uint32_t kDefaultSegmentSize = 16u << 20;
// Restore points listed in a window before the rest are summarised.
constexpr std::size_t kMaxListedRestorePoints = 10;

std::string history_file_name(pg::TimeLineId tli) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08X.history", static_cast<unsigned>(tli));
  return buf;
}

std::string lsn_text(pg::Lsn lsn) { return pg::format_lsn(lsn); }

// One timeline of a target timeline's history: it holds the WAL from `begin`
// (the switch point that created it; 0 for the first) up to `end` (where the
// next one branched off; none for the target itself).
struct PathEntry {
  pg::TimeLineId tli = 0;
  pg::Lsn begin = 0;
  std::optional<pg::Lsn> end;
  std::uint64_t begin_segno = 0;  // the segment holding `begin`
};

struct TimelinePath {
  pg::TimeLineId target = 0;
  std::vector<PathEntry> entries;  // oldest first; the last is `target`

  const PathEntry* find(pg::TimeLineId tli) const {
    for (const auto& e : entries)
      if (e.tli == tli) return &e;
    return nullptr;
  }
  // The timeline a segment is read from: the newest whose first segment is
  // at or before it (PostgreSQL's XLogFileReadAnyTLI).
  pg::TimeLineId tli_for(std::uint64_t segno) const {
    for (auto it = entries.rbegin(); it != entries.rend(); ++it)
      if (it->begin_segno <= segno) return it->tli;
    return entries.front().tli;
  }
};

std::uint32_t segment_size_of(const ArchiveView& view) {
  return pg::is_valid_segment_size(view.wal_segment_size) ? view.wal_segment_size
                                                          : kDefaultSegmentSize;
}

TimelinePath timeline_path(const ArchiveView& view, pg::TimeLineId target) {
  const std::uint32_t size = segment_size_of(view);
  TimelinePath path;
  path.target = target;
  pg::Lsn begin = 0;
  if (auto it = view.histories.find(target); it != view.histories.end()) {
    for (const auto& sw : it->second) {
      if (sw.tli >= target || sw.switch_lsn < begin)
        throw Error(ErrorCode::kCorruption, history_file_name(target) + ": timeline " +
                                                std::to_string(sw.tli) + " at " +
                                                lsn_text(sw.switch_lsn) + " is out of sequence");
      path.entries.push_back({sw.tli, begin, sw.switch_lsn, begin / size});
      begin = sw.switch_lsn;
    }
  }
  // A timeline above 1 without a history file is taken to have no parents,
  // as PostgreSQL's readTimeLineHistory() does.
  path.entries.push_back({target, begin, std::nullopt, begin / size});
  return path;
}

// Why `b` cannot start recovery along `path`, or std::nullopt when it can.
std::optional<std::string> off_path_reason(const BackupRecord& b, const TimelinePath& path) {
  struct Point {
    pg::TimeLineId tli;
    pg::Lsn lsn;
    const char* verb;
  };
  const Point points[] = {
      {b.start_timeline ? b.start_timeline : b.stop_timeline, b.start_lsn, "starts"},
      {b.stop_timeline, b.stop_lsn, "ends"}};
  for (const Point& p : points) {
    const PathEntry* e = path.find(p.tli);
    if (!e)
      return "it is on timeline " + std::to_string(p.tli) +
             ", which is not in the history of timeline " + std::to_string(path.target);
    if (e->end && p.lsn > *e->end) {
      const PathEntry& next = *(e + 1);
      return std::string("it ") + p.verb + " at " + lsn_text(p.lsn) + " on timeline " +
             std::to_string(p.tli) + ", after timeline " + std::to_string(next.tli) +
             " branched off at " + lsn_text(*e->end);
    }
  }
  return std::nullopt;
}

struct NamedPoint {
  pg::RestorePoint point;
  std::uint64_t segno = 0;
};

// Where a transaction's commit or abort record is, from the segments' xid
// index (SegmentSummary::commit_xids, abort_xids, crossing_xact_xid).
struct XidEnd {
  std::uint64_t segno = 0;  // the segment the record starts in
  bool crossing = false;    // it ends in the next segment
  const char* verb = "";    // "commits", "aborts", "commits or aborts"

  std::uint64_t last_segno() const { return segno + (crossing ? 1 : 0); }
};

// Segments on a path whose metadata has no xid index (archived by an older
// walvault): the first and last of them, and how many.
struct Unindexed {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::size_t count = 0;
};

// A contiguous run of archived segments along a path, from a first segment on.
struct Chain {
  std::vector<const SegmentMeta*> segments;  // in segment order, no gap
  std::uint64_t missing_segno = 0;           // the first segment number after the run
  pg::TimeLineId missing_tli = 0;            // the timeline it would be read from
  bool more_after = false;                   // segments of the path exist beyond the missing one

  std::optional<std::uint64_t> last_segno() const {
    if (segments.empty()) return std::nullopt;
    return segments.back()->segno;
  }
  bool reaches(std::uint64_t segno) const { return last_segno() && *last_segno() >= segno; }
};

// The archive as seen from one target timeline.
class Context {
 public:
  Context(const ArchiveView& view, pg::TimeLineId target)
      : view_(view), size_(segment_size_of(view)), path_(timeline_path(view, target)) {
    for (const auto& m : view.segments)
      if (path_.tli_for(m.segno) == m.timeline) on_path_.push_back(&m);
    std::sort(on_path_.begin(), on_path_.end(),
              [](const SegmentMeta* a, const SegmentMeta* b) { return a->segno < b->segno; });
    on_path_.erase(std::unique(on_path_.begin(), on_path_.end(),
                               [](const SegmentMeta* a, const SegmentMeta* b) {
                                 return a->segno == b->segno;
                               }),
                   on_path_.end());
    // run_end_[i]: one past the last index of the gap-free run holding i.
    run_end_.resize(on_path_.size());
    for (std::size_t i = on_path_.size(); i-- > 0;) {
      bool joined = i + 1 < on_path_.size() && on_path_[i + 1]->segno == on_path_[i]->segno + 1;
      run_end_[i] = joined ? run_end_[i + 1] : i + 1;
    }
  }

  const ArchiveView& view() const { return view_; }
  const TimelinePath& path() const { return path_; }
  pg::TimeLineId target() const { return path_.target; }
  std::uint32_t segment_size() const { return size_; }
  const std::vector<const SegmentMeta*>& on_path() const { return on_path_; }

  std::uint64_t segno_of(pg::Lsn lsn) const { return lsn / size_; }
  std::uint64_t start_segno(const BackupRecord& b) const { return segno_of(b.start_lsn); }
  // The segment holding the backup's last byte of WAL (XLByteToPrevSeg).
  std::uint64_t stop_segno(const BackupRecord& b) const {
    return std::max(start_segno(b), b.stop_lsn == 0 ? 0 : segno_of(b.stop_lsn - 1));
  }
  std::string segment_name(std::uint64_t segno) const {
    return pg::segment_file_name(path_.tli_for(segno), segno, size_);
  }

  Chain chain_from(std::uint64_t first) const {
    Chain c;
    auto it = std::lower_bound(on_path_.begin(), on_path_.end(), first,
                               [](const SegmentMeta* m, std::uint64_t s) { return m->segno < s; });
    std::size_t i = static_cast<std::size_t>(it - on_path_.begin());
    std::size_t next = i;  // first index past the run
    if (i < on_path_.size() && on_path_[i]->segno == first) {
      next = run_end_[i];
      c.segments.assign(on_path_.begin() + static_cast<std::ptrdiff_t>(i),
                        on_path_.begin() + static_cast<std::ptrdiff_t>(next));
    }
    c.missing_segno = c.segments.empty() ? first : c.segments.back()->segno + 1;
    c.missing_tli = path_.tli_for(c.missing_segno);
    c.more_after = next < on_path_.size();
    return c;
  }

  std::string missing_text(const Chain& c) const {
    return "WAL segment " + pg::segment_file_name(c.missing_tli, c.missing_segno, size_) +
           " is missing (timeline " + std::to_string(c.missing_tli) + ")";
  }

  // Restore points called `name` in segments recovery would read, in LSN order.
  std::vector<NamedPoint> named_points(const std::string& name) const {
    std::vector<NamedPoint> out;
    for (const SegmentMeta* m : on_path_)
      for (const auto& rp : m->summary.restore_points)
        if (rp.name == name) out.push_back({rp, m->segno});
    std::stable_sort(out.begin(), out.end(), [](const NamedPoint& a, const NamedPoint& b) {
      return a.point.lsn < b.point.lsn;
    });
    return out;
  }

  // Every commit/abort record of `xid` in segments recovery would read, in
  // segment order (more than one only across an xid wraparound).
  std::vector<XidEnd> xid_ends(std::uint32_t xid) const {
    std::vector<XidEnd> out;
    for (const SegmentMeta* m : on_path_) {
      const pg::SegmentSummary& s = m->summary;
      if (!s.xids_indexed) continue;
      if (s.commit_xids.contains(xid)) out.push_back({m->segno, false, "commits"});
      if (s.abort_xids.contains(xid)) out.push_back({m->segno, false, "aborts"});
      if (s.crossing_xact_xid == xid) out.push_back({m->segno, true, "commits or aborts"});
    }
    return out;
  }

  std::optional<Unindexed> unindexed() const {
    std::optional<Unindexed> u;
    for (const SegmentMeta* m : on_path_) {
      if (m->summary.xids_indexed) continue;
      if (!u) u = Unindexed{m->segno, m->segno, 0};
      u->last = m->segno;
      ++u->count;
    }
    return u;
  }

  // Backups that can start recovery along the path, oldest stop first.
  std::vector<const BackupRecord*> usable_backups() const {
    std::vector<const BackupRecord*> out;
    for (const auto& b : view_.backups)
      if (!off_path_reason(b, path_)) out.push_back(&b);
    std::sort(out.begin(), out.end(), [](const BackupRecord* a, const BackupRecord* b) {
      if (a->stop_lsn != b->stop_lsn) return a->stop_lsn < b->stop_lsn;
      if (a->stop_time_us != b->stop_time_us) return a->stop_time_us < b->stop_time_us;
      return a->label < b->label;
    });
    return out;
  }

 private:
  const ArchiveView& view_;
  std::uint32_t size_;
  TimelinePath path_;
  std::vector<const SegmentMeta*> on_path_;  // the segment read for each number, by number
  std::vector<std::size_t> run_end_;
};

ReachableWindow window_of(const Context& ctx) {
  ReachableWindow w;
  w.timeline = ctx.target();
  if (ctx.view().backups.empty()) {
    w.nothing_reason = "no backup in the repository";
    return w;
  }
  auto usable = ctx.usable_backups();
  if (usable.empty()) {
    w.nothing_reason = "no backup on the history of timeline " + std::to_string(ctx.target());
    return w;
  }
  const auto& segs = ctx.on_path();
  // The smallest stop LSN of a restorable backup whose WAL run covers each
  // segment: backups come oldest first, so the first to mark a segment wins,
  // and a run already marked from some index on is marked to its end.
  std::vector<std::optional<pg::Lsn>> covered_from(segs.size());
  std::optional<std::string> first_gap;
  for (const BackupRecord* b : usable) {
    Chain c = ctx.chain_from(ctx.start_segno(*b));
    if (!c.reaches(ctx.stop_segno(*b))) {
      if (!first_gap) first_gap = ctx.missing_text(c);
      continue;
    }
    if (!w.earliest_consistent_us) {
      w.earliest_consistent_us = b->stop_time_us;
      w.earliest_consistent_lsn = b->stop_lsn;
    }
    auto it = std::lower_bound(
        segs.begin(), segs.end(), c.segments.front()->segno,
        [](const SegmentMeta* m, std::uint64_t segno) { return m->segno < segno; });
    for (auto i = static_cast<std::size_t>(it - segs.begin());
         i < segs.size() && segs[i]->segno <= *c.last_segno() && !covered_from[i]; ++i)
      covered_from[i] = b->stop_lsn;
  }
  if (!w.earliest_consistent_us) {
    w.nothing_reason = "no backup has the WAL to its end archived (" + *first_gap + ")";
    return w;
  }
  for (std::size_t i = 0; i < segs.size(); ++i) {
    if (!covered_from[i]) continue;
    const pg::SegmentSummary& s = segs[i]->summary;
    if (s.max_xact_time_us && (!w.latest_commit_us || *s.max_xact_time_us > *w.latest_commit_us))
      w.latest_commit_us = s.max_xact_time_us;
    pg::Lsn end =
        s.end_lsn ? s.end_lsn : pg::segment_start_lsn(segs[i]->segno + 1, ctx.segment_size());
    if (!w.latest_lsn || end > *w.latest_lsn) w.latest_lsn = end;
    for (const auto& rp : s.restore_points)
      if (rp.lsn >= *covered_from[i]) w.restore_points.push_back(rp);
  }
  return w;
}

std::set<pg::TimeLineId> timelines_in(const ArchiveView& view) {
  std::set<pg::TimeLineId> out;
  for (const auto& [tli, history] : view.histories) out.insert(tli);
  for (const auto& m : view.segments) out.insert(m.timeline);
  for (const auto& b : view.backups) {
    if (b.start_timeline) out.insert(b.start_timeline);
    if (b.stop_timeline) out.insert(b.stop_timeline);
  }
  out.erase(0);
  return out;
}

struct Choice {
  const BackupRecord* backup = nullptr;
  std::optional<NamedPoint> point;  // kName: where recovery stops
  std::optional<XidEnd> xid_end;    // kXid: where recovery stops (unset: not indexed)
  std::string refusal;              // when backup is null
};

// What the archive says about a target, looked up once per timeline.
struct TargetFacts {
  std::vector<NamedPoint> points;      // kName
  std::vector<XidEnd> xid_ends;        // kXid
  std::optional<Unindexed> unindexed;  // kXid: segments without an xid index
};

std::string xid_text(std::uint32_t xid) { return "xid " + std::to_string(xid); }

// "commits in 00000001000000000000000A" / "... in ...0A (record continues into ...0B)".
std::string xid_end_text(const Context& ctx, const XidEnd& e) {
  std::string s = std::string(e.verb) + " in " + ctx.segment_name(e.segno);
  if (e.crossing) s += " (the record continues into " + ctx.segment_name(e.segno + 1) + ")";
  return s;
}

std::string unindexed_text(const Context& ctx, const Unindexed& u) {
  return std::to_string(u.count) + " segment" + (u.count == 1 ? "" : "s") + " from " +
         ctx.segment_name(u.first) + " to " + ctx.segment_name(u.last) +
         " were archived by an older walvault without an xid index";
}

// The first end of the target xid that recovery from `b` meets: PostgreSQL
// checks every record from the backup's start on.
std::optional<XidEnd> first_xid_end_after_start(const Context& ctx, const std::vector<XidEnd>& ends,
                                                const BackupRecord& b) {
  for (const auto& e : ends)
    if (e.segno >= ctx.start_segno(b)) return e;
  return std::nullopt;
}

// The first restore point PostgreSQL meets replaying from `b`'s start; it
// stops there, so it must lie at or after the backup's end (before that,
// recovery would stop short of consistency).
std::optional<NamedPoint> first_point_after_start(const std::vector<NamedPoint>& points,
                                                  const BackupRecord& b) {
  for (const auto& p : points)
    if (p.point.lsn >= b.start_lsn) return p;
  return std::nullopt;
}

// Why `b` cannot reach `target`, std::nullopt when it can.
std::optional<std::string> target_reason(const Context& ctx, const BackupRecord& b,
                                         const RecoveryTarget& target, const TargetFacts& facts) {
  using Kind = RecoveryTarget::Kind;
  const auto& points = facts.points;
  switch (target.kind) {
    case Kind::kTime:
      if (b.stop_time_us > target.time_us)
        return "it ends at " + format_time_us(b.stop_time_us) + ", after " +
               format_time_us(target.time_us);
      return std::nullopt;
    case Kind::kLsn:
      if (b.stop_lsn > target.lsn)
        return "it ends at " + lsn_text(b.stop_lsn) + ", after " + lsn_text(target.lsn);
      return std::nullopt;
    case Kind::kName: {
      auto p = first_point_after_start(points, b);
      if (!p) return "restore point '" + target.name + "' is not after its start";
      if (p->point.lsn < b.stop_lsn)
        return "restore point '" + target.name + "' at " + lsn_text(p->point.lsn) +
               " lies inside it (it ends at " + lsn_text(b.stop_lsn) + ")";
      return std::nullopt;
    }
    case Kind::kXid: {
      // Segment granularity, conservatively: the end of the xid must lie in a
      // segment after the backup's stop segment. In the stop segment itself
      // it may precede the end of the backup, and PostgreSQL would then stop
      // before consistency ("requested recovery stop point is before
      // consistent recovery point").
      const std::string stop_seg = ctx.segment_name(ctx.stop_segno(b));
      if (facts.xid_ends.empty()) {  // not indexed: possible only in an unindexed segment
        if (facts.unindexed && facts.unindexed->last > ctx.stop_segno(b)) return std::nullopt;
        return xid_text(target.xid) + " is in no xid index, and no segment without one follows " +
               stop_seg;
      }
      auto e = first_xid_end_after_start(ctx, facts.xid_ends, b);
      if (!e)
        return xid_text(target.xid) + " " + xid_end_text(ctx, facts.xid_ends.back()) +
               ", before its start in " + ctx.segment_name(ctx.start_segno(b));
      if (e->segno <= ctx.stop_segno(b))
        return xid_text(target.xid) + " " + xid_end_text(ctx, *e) +
               ", inside its WAL (it ends in " + stop_seg + ")";
      return std::nullopt;
    }
    case Kind::kEnd:
    case Kind::kImmediate:
      return std::nullopt;
  }
  return std::nullopt;
}

// The refusal for an xid that ends in no segment of the path (all indexed).
std::string xid_not_on_path(const Context& ctx, std::uint32_t xid) {
  std::set<pg::TimeLineId> elsewhere;
  for (const auto& m : ctx.view().segments) {
    const pg::SegmentSummary& s = m.summary;
    if (s.commit_xids.contains(xid) || s.abort_xids.contains(xid) || s.crossing_xact_xid == xid)
      elsewhere.insert(m.timeline);
  }
  const std::string tli_text = std::to_string(ctx.target());
  if (!elsewhere.empty()) {
    std::string tlis;
    for (auto t : elsewhere) tlis += (tlis.empty() ? "" : ", ") + std::to_string(t);
    return xid_text(xid) + " does not end on the history of timeline " + tli_text +
           " (it ends in WAL of timeline " + tlis + ")";
  }
  return xid_text(xid) + " does not commit or abort in the archive on timeline " + tli_text +
         " (still open when the WAL ends, or not a top-level transaction id: PostgreSQL "
         "stops only at a top-level transaction's commit or abort)";
}

Choice choose_backup(const Context& ctx, const RecoveryTarget& target,
                     const std::optional<std::string>& set_label) {
  using Kind = RecoveryTarget::Kind;
  Choice choice;
  const ArchiveView& view = ctx.view();
  const std::string tli_text = std::to_string(ctx.target());
  TargetFacts facts;
  std::vector<NamedPoint>& points = facts.points;
  if (target.kind == Kind::kXid) {
    facts.xid_ends = ctx.xid_ends(target.xid);
    facts.unindexed = ctx.unindexed();
    if (facts.xid_ends.empty() && !facts.unindexed) {
      choice.refusal = xid_not_on_path(ctx, target.xid);
      return choice;
    }
  }
  if (target.kind == Kind::kName) {
    points = ctx.named_points(target.name);
    if (points.empty()) {
      std::set<pg::TimeLineId> elsewhere;
      for (const auto& m : view.segments)
        for (const auto& rp : m.summary.restore_points)
          if (rp.name == target.name) elsewhere.insert(m.timeline);
      if (elsewhere.empty()) {
        choice.refusal = "restore point '" + target.name + "' is not in the archive";
      } else {
        std::string tlis;
        for (auto t : elsewhere) tlis += (tlis.empty() ? "" : ", ") + std::to_string(t);
        choice.refusal = "restore point '" + target.name + "' is not on the history of timeline " +
                         tli_text + " (it is in WAL of timeline " + tlis + ")";
      }
      return choice;
    }
  }
  auto finish = [&](const BackupRecord* b) {
    choice.backup = b;
    if (target.kind == Kind::kName) choice.point = first_point_after_start(points, *b);
    if (target.kind == Kind::kXid)
      choice.xid_end = first_xid_end_after_start(ctx, facts.xid_ends, *b);
    return choice;
  };

  if (set_label) {
    auto it = std::find_if(view.backups.begin(), view.backups.end(),
                           [&](const BackupRecord& b) { return b.label == *set_label; });
    if (it == view.backups.end()) {
      choice.refusal = "backup " + *set_label + " is not in the repository";
      return choice;
    }
    if (auto why = off_path_reason(*it, ctx.path())) {
      choice.refusal = "backup " + *set_label + " cannot reach timeline " + tli_text + ": " + *why;
      return choice;
    }
    if (auto why = target_reason(ctx, *it, target, facts)) {
      choice.refusal = "backup " + *set_label + " cannot reach the target: " + *why;
      return choice;
    }
    return finish(&*it);
  }

  if (view.backups.empty()) {
    choice.refusal = "no backup in the repository";
    return choice;
  }
  auto usable = ctx.usable_backups();
  if (usable.empty()) {
    // Name the newest backup's reason: the likeliest one the user meant.
    const BackupRecord* newest = &view.backups.front();
    for (const auto& b : view.backups)
      if (b.stop_lsn > newest->stop_lsn) newest = &b;
    choice.refusal = "no backup is on the history of timeline " + tli_text + " (backup " +
                     newest->label + ": " + *off_path_reason(*newest, ctx.path()) + ")";
    return choice;
  }
  for (auto it = usable.rbegin(); it != usable.rend(); ++it)
    if (!target_reason(ctx, **it, target, facts)) return finish(*it);

  const BackupRecord& oldest = *usable.front();
  switch (target.kind) {
    case Kind::kTime:
      choice.refusal = "no backup ends at or before " + format_time_us(target.time_us) +
                       " on timeline " + tli_text + " (the oldest, " + oldest.label + ", ends at " +
                       format_time_us(oldest.stop_time_us) + ")";
      break;
    case Kind::kLsn:
      choice.refusal = "no backup ends at or before " + lsn_text(target.lsn) + " on timeline " +
                       tli_text + " (the oldest, " + oldest.label + ", ends at " +
                       lsn_text(oldest.stop_lsn) + ")";
      break;
    case Kind::kXid: {
      const std::string oldest_stop = ctx.segment_name(ctx.stop_segno(oldest));
      if (facts.xid_ends.empty()) {
        choice.refusal = xid_text(target.xid) + " is in no xid index on timeline " + tli_text +
                         " and " + unindexed_text(ctx, *facts.unindexed) +
                         ", none after the end of any backup (the oldest, " + oldest.label +
                         ", ends in " + oldest_stop + ")";
      } else {
        choice.refusal = xid_text(target.xid) + " " + xid_end_text(ctx, facts.xid_ends.back()) +
                         ", not after the end of any backup on timeline " + tli_text +
                         " (the oldest, " + oldest.label + ", ends in " + oldest_stop + ")";
      }
      break;
    }
    default: {
      const NamedPoint& last = points.back();
      choice.refusal = "restore point '" + target.name + "' (last at " + lsn_text(last.point.lsn) +
                       ", " + format_time_us(last.point.time_us) +
                       ") is not after the end of any backup on timeline " + tli_text;
      break;
    }
  }
  return choice;
}

pg::TimeLineId resolve_timeline(const ArchiveView& view, const RecoveryTarget& target,
                                const std::optional<std::string>& set_label) {
  if (target.timeline) return *target.timeline;
  auto tlis = timelines_in(view);
  if (tlis.empty()) return 1;
  // "latest": the newest timeline whose history holds a backup that can
  // reach the target (a backup on the parent past the switch point cannot).
  for (auto it = tlis.rbegin(); it != tlis.rend(); ++it) {
    Context ctx(view, *it);
    if (choose_backup(ctx, target, set_label).backup) return *it;
  }
  return *tlis.rbegin();
}

}  // namespace

std::vector<TimelineSwitch> parse_history(std::string_view text, const std::string& object) {
  std::vector<TimelineSwitch> out;
  std::size_t line_no = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v'; };
  while (!text.empty()) {
    ++line_no;
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](const std::string& what) {
      return Error(ErrorCode::kCorruption,
                   object + ": line " + std::to_string(line_no) + ": " + what);
    };
    std::size_t i = 0;
    std::uint64_t tli = 0;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
      tli = tli * 10 + static_cast<std::uint64_t>(line[i] - '0');
      if (tli > 0xFFFFFFFFu) throw bad("timeline id out of range");
      ++i;
    }
    if (i == 0 || tli == 0) throw bad("expected a timeline id");
    if (i == line.size() || !is_space(line[i])) throw bad("expected a tab after the timeline id");
    while (i < line.size() && is_space(line[i])) ++i;
    std::size_t lsn_end = i;
    while (lsn_end < line.size() && !is_space(line[lsn_end])) ++lsn_end;
    auto lsn = pg::parse_lsn(line.substr(i, lsn_end - i));
    if (!lsn) throw bad("expected a switch point LSN (X/X)");
    if (!out.empty() && (tli <= out.back().tli || *lsn < out.back().switch_lsn))
      throw bad("timeline ids and switch points must increase");
    out.push_back({static_cast<pg::TimeLineId>(tli), *lsn});
  }
  return out;
}

ArchiveView load_archive_view(repo::Repository& repo) {
  ArchiveView view;
  view.backups = list_backups(repo);
  view.segments = repo::read_all_meta(repo);
  const std::string prefix = repo::file_object_name("");
  for (const auto& info : repo.store().list(prefix)) {
    auto name = pg::parse_wal_file_name(std::string_view(info.name).substr(prefix.size()));
    if (!name || name->kind != pg::WalFileKind::kHistory) continue;
    auto bytes = repo.get_object(info.name);
    if (!bytes) continue;  // removed between list and get
    view.histories[name->timeline] = parse_history(as_chars(*bytes), info.name);
  }
  std::uint32_t size = 0;
  if (auto cluster = repo::read_cluster(repo)) size = cluster->segment_size;
  if (!pg::is_valid_segment_size(size) && !view.backups.empty())
    size = view.backups.front().wal_segment_size;
  if (!pg::is_valid_segment_size(size) && !view.segments.empty())
    size = static_cast<std::uint32_t>(view.segments.front().size);
  if (pg::is_valid_segment_size(size)) view.wal_segment_size = size;
  return view;
}

std::string ReachableWindow::to_string() const {
  if (!earliest_consistent_us)
    return "nothing: " + (nothing_reason.empty() ? "no backup in the repository" : nothing_reason);
  std::string s = "earliest consistent " + format_time_us(*earliest_consistent_us);
  if (earliest_consistent_lsn) s += " (" + lsn_text(*earliest_consistent_lsn) + ")";
  s += ", latest commit ";
  s += latest_commit_us ? format_time_us(*latest_commit_us) : std::string("none");
  if (latest_lsn) s += ", WAL to " + lsn_text(*latest_lsn);
  if (timeline) s += " on timeline " + std::to_string(timeline);
  if (!restore_points.empty()) {
    s += ", restore points: ";
    std::size_t skip = restore_points.size() > kMaxListedRestorePoints
                           ? restore_points.size() - kMaxListedRestorePoints
                           : 0;
    if (skip) s += std::to_string(skip) + " older, ";
    for (std::size_t i = skip; i < restore_points.size(); ++i) {
      if (i > skip) s += ", ";
      s += restore_points[i].name + " (" + format_time_us(restore_points[i].time_us) + ")";
    }
  }
  return s;
}

ReachableWindow reachable_window(const ArchiveView& view, std::optional<pg::TimeLineId> timeline) {
  pg::TimeLineId tli = resolve_timeline(view, RecoveryTarget{}, std::nullopt);
  if (timeline) {
    tli = *timeline;
    if (!timelines_in(view).count(tli)) {
      ReachableWindow w;
      w.timeline = tli;
      w.nothing_reason = "timeline " + std::to_string(tli) + " is not in the archive";
      return w;
    }
  }
  return window_of(Context(view, tli));
}

std::set<pg::TimeLineId> archive_timelines(const ArchiveView& view) { return timelines_in(view); }

pg::TimeLineId segment_timeline(const ArchiveView& view, pg::TimeLineId target,
                                std::uint64_t segno) {
  return timeline_path(view, target).tli_for(segno);
}

std::optional<std::string> off_history_reason(const ArchiveView& view, const BackupRecord& b,
                                              pg::TimeLineId target) {
  return off_path_reason(b, timeline_path(view, target));
}

RestorePlan plan_restore(const ArchiveView& view, const RecoveryTarget& target,
                         const std::optional<std::string>& set_label) {
  using Kind = RecoveryTarget::Kind;
  if (target.timeline && !timelines_in(view).count(*target.timeline))
    throw Error(ErrorCode::kNotFound, "timeline " + std::to_string(*target.timeline) +
                                          " is not in the archive; reachable: " +
                                          reachable_window(view, std::nullopt).to_string());
  const pg::TimeLineId tli = resolve_timeline(view, target, set_label);
  const Context ctx(view, tli);
  auto refuse = [&](const std::string& why) {
    return Error(ErrorCode::kNotFound, why + "; reachable: " + window_of(ctx).to_string());
  };

  Choice choice = choose_backup(ctx, target, set_label);
  if (!choice.backup) throw refuse(choice.refusal);
  const BackupRecord& b = *choice.backup;
  const std::uint64_t start = ctx.start_segno(b), stop = ctx.stop_segno(b);
  const Chain chain = ctx.chain_from(start);
  if (!chain.reaches(stop))
    throw refuse(ctx.missing_text(chain) + "; backup " + b.label + " needs WAL from " +
                 ctx.segment_name(start) + " to " + ctx.segment_name(stop));
  // Past the backup's end a missing segment is a gap when later WAL exists,
  // else the end of the archive.
  auto not_reached = [&](const std::string& end_of_archive) {
    return refuse(chain.more_after ? ctx.missing_text(chain) : end_of_archive);
  };

  std::uint64_t last = 0;  // the segment recovery stops in
  std::string reason;
  switch (target.kind) {
    case Kind::kTime: {
      std::optional<std::int64_t> latest;
      for (const SegmentMeta* m : chain.segments) {
        const auto& t = m->summary.max_xact_time_us;
        if (!t) continue;
        if (!latest || *t > *latest) latest = t;
        if (m->segno >= stop && *t >= target.time_us) {
          last = m->segno;
          reason =
              "first commit/abort at or after " + format_time_us(target.time_us) + " in " + m->name;
          break;
        }
      }
      if (reason.empty())
        throw not_reached("no commit at or after " + format_time_us(target.time_us) +
                          " in the archive (" +
                          (latest ? "latest archived commit " + format_time_us(*latest)
                                  : "no commit archived after backup " + b.label) +
                          ")");
      break;
    }
    case Kind::kLsn: {
      last = ctx.segno_of(target.lsn);
      if (!chain.reaches(last))
        throw not_reached("LSN " + lsn_text(target.lsn) + " is beyond the archive (segment " +
                          ctx.segment_name(last) + " is not archived)");
      reason = "LSN " + lsn_text(target.lsn) + " in " + ctx.segment_name(last);
      break;
    }
    case Kind::kName: {
      const pg::RestorePoint& rp = choice.point->point;
      last = choice.point->segno;
      if (!chain.reaches(last)) throw refuse(ctx.missing_text(chain));
      reason = "restore point '" + rp.name + "' at " + lsn_text(rp.lsn) + " (" +
               format_time_us(rp.time_us) + ") in " + ctx.segment_name(last);
      break;
    }
    case Kind::kImmediate:
      last = stop;
      reason = "end of backup " + b.label + " at " + lsn_text(b.stop_lsn) + " in " +
               ctx.segment_name(last);
      break;
    case Kind::kXid: {
      if (choice.xid_end) {
        last = choice.xid_end->last_segno();
        if (!chain.reaches(last)) throw refuse(ctx.missing_text(chain));
        reason = xid_text(target.xid) + " " + xid_end_text(ctx, *choice.xid_end);
        break;
      }
      // Only segments without an xid index can hold its end: say so, and
      // replay to the end of the archive as recovery_target_xid would.
      last = *chain.last_segno();
      reason = xid_text(target.xid) + " is in no xid index; " +
               unindexed_text(ctx, *ctx.unindexed()) + ", so that it ends after backup " + b.label +
               " is not proven: WAL to the end of the archive, " + ctx.segment_name(last) +
               " (recovery fails at the end if it does not; --set chooses an older backup)";
      break;
    }
    case Kind::kEnd: {
      last = *chain.last_segno();
      const SegmentMeta& m = *chain.segments.back();
      pg::Lsn end = m.summary.end_lsn ? m.summary.end_lsn
                                      : pg::segment_start_lsn(m.segno + 1, ctx.segment_size());
      reason = "end of archive: WAL to " + lsn_text(end) + " in " + m.name;
      if (chain.more_after)
        reason += " (" + ctx.missing_text(chain) + "; later segments cannot be replayed)";
      break;
    }
  }

  RestorePlan plan;
  plan.backup = b;
  plan.target_timeline = tli;
  plan.stop_reason = reason;
  for (const SegmentMeta* m : chain.segments) {
    if (m->segno > last) break;
    plan.wal_segments.push_back(m->name);
    plan.wal_bytes += m->size;
  }
  return plan;
}

}  // namespace walvault::basebackup
