// The restore planner: before anything is written, decide which backup to
// start from and which WAL recovery will need to reach the target, or refuse
// with the window the archive can reach. Pure logic over what the repository
// lists (backup records, WAL segment metadata, .history files); no I/O here
// except in load_archive_view().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "basebackup/backup_record.h"
#include "pg/wal_name.h"
#include "repo/repository.h"
#include "repo/wal_objects.h"

namespace walvault::basebackup {

struct RecoveryTarget {
  enum class Kind { kEnd, kTime, kLsn, kXid, kName, kImmediate };
  Kind kind = Kind::kEnd;                  // kEnd: recover to the end of the archive
  std::int64_t time_us = 0;                // kTime (UTC µs)
  pg::Lsn lsn = 0;                         // kLsn
  std::uint32_t xid = 0;                   // kXid
  std::string name;                        // kName (a restore point)
  std::optional<pg::TimeLineId> timeline;  // std::nullopt: "latest"
};

// One line of a <tli>.history file: timeline `tli` branched off at `switch_lsn`
// (the first LSN of the child; records before it belong to `tli`).
struct TimelineSwitch {
  pg::TimeLineId tli = 0;
  pg::Lsn switch_lsn = 0;
};
// Parses a .history file ("parentTLI<TAB>X/X<TAB>reason" lines; comments and
// blank lines ignored). Throws Error(kCorruption) naming `object` on bad lines.
std::vector<TimelineSwitch> parse_history(std::string_view text, const std::string& object);

struct ArchiveView {
  std::vector<BackupRecord> backups;        // any order
  std::vector<repo::SegmentMeta> segments;  // any order
  // Timeline -> its parsed .history (ancestors, oldest first). Timeline 1 has none.
  std::map<pg::TimeLineId, std::vector<TimelineSwitch>> histories;
  std::uint32_t wal_segment_size = 16u << 20;
};
// Reads the records, every segment's metadata and every .history file.
ArchiveView load_archive_view(repo::Repository& repo);

struct RestorePlan {
  BackupRecord backup;
  pg::TimeLineId target_timeline = 0;     // the timeline recovery ends on
  std::vector<std::string> wal_segments;  // names, in replay order, backup start -> stop point
  std::uint64_t wal_bytes = 0;            // sum of their sizes
  std::string
      stop_reason;  // one line: "commit at 2026-... in 0000...", "xid 812 commits in 0000...", ...
};

// What the archive can reach, printed when a target is refused.
struct ReachableWindow {
  std::optional<std::int64_t> earliest_consistent_us;  // oldest usable backup's stop time
  std::optional<pg::Lsn> earliest_consistent_lsn;
  std::optional<std::int64_t> latest_commit_us;  // latest commit/abort time reachable by replay
  std::optional<pg::Lsn> latest_lsn;             // end of the contiguous WAL
  std::vector<pg::RestorePoint> restore_points;  // reachable ones
  pg::TimeLineId timeline = 0;                   // the timeline whose history the window follows
  // Why there is no consistent point (earliest_consistent_us unset): "no
  // backup in the repository", "no backup on the history of timeline 2", ...
  std::string nothing_reason;
  std::string to_string() const;  // one line, for the refusal message
};

// Chooses the backup (`set_label` forces one) and the WAL:
//  - the newest backup whose end (stop time for kTime, stop LSN for kLsn,
//    restore point LSN for kName) is at or before the target and which lies on
//    the target timeline's history (a backup on an ancestor timeline must stop
//    before that timeline's switch point); for kXid, the newest backup from
//    whose start the first commit/abort record of the xid (the segments' xid
//    index) lies in a segment after the backup's stop segment;
//  - segments from the backup's start segment on, each on the newest timeline
//    of the target's history whose switch segment is at or before it (as
//    PostgreSQL's XLogFileReadAnyTLI), up to the segment where recovery stops:
//    the first holding a commit/abort at or after the target time, the one
//    holding the target LSN, restore point or the xid's commit/abort record,
//    the backup's stop segment for kImmediate, the last contiguous segment for
//    kEnd. A kXid target found in no xid index while segments archived by an
//    older walvault (no index) lie on the path after a backup's stop segment
//    plans to the end of the archive, and stop_reason says it is not proven.
// Throws Error(kNotFound, "<why>; reachable: <window>") when the target cannot
// be reached: no backup, a gap in the WAL, a missing timeline, no commit after
// the time, an unknown restore point, an LSN beyond the archive, an xid that
// does not commit or abort in the archive or only before every backup's end.
RestorePlan plan_restore(const ArchiveView& view, const RecoveryTarget& target,
                         const std::optional<std::string>& set_label);

ReachableWindow reachable_window(const ArchiveView& view, std::optional<pg::TimeLineId> timeline);

// The planner's notions, for checks over the archive (ops/verify.h):

// Every timeline the archive mentions (.history files, segments, backups).
std::set<pg::TimeLineId> archive_timelines(const ArchiveView& view);
// The timeline recovery along `target`'s history reads segment `segno` from:
// the newest timeline of that history whose first segment is at or before it
// (PostgreSQL's XLogFileReadAnyTLI). Throws Error(kCorruption) when the
// target's .history file is out of sequence.
pg::TimeLineId segment_timeline(const ArchiveView& view, pg::TimeLineId target,
                                std::uint64_t segno);
// Why backup `b` cannot start recovery along `target`'s history ("it is on
// timeline 3, which is not in the history of timeline 2", ...);
// std::nullopt when it can.
std::optional<std::string> off_history_reason(const ArchiveView& view, const BackupRecord& b,
                                              pg::TimeLineId target);

}  // namespace walvault::basebackup
