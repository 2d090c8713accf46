// `walvault info`: what a repository holds and what it can restore, in one
// read-only pass: identity, cluster, size and dedup, backups, the restorable
// window of every timeline, the WAL's last segment and latest commit, the
// restore points, the file-volume snapshots per volume and the logical dumps per
// database. The JSON form is specified in
// docs/format.md ("info --json").
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "basebackup/backup_record.h"
#include "basebackup/restore_plan.h"
#include "dump/dump_record.h"
#include "files/snapshot_record.h"
#include "repo/cluster.h"
#include "repo/history.h"
#include "repo/repository.h"
#include "store/object_store.h"

namespace walvault::ops {

struct RestorePointInfo {
  std::string name;
  std::int64_t time_us = 0;
  pg::Lsn lsn = 0;
  pg::TimeLineId timeline = 0;
  std::string segment;  // the segment whose metadata lists it
};

// The snapshots of one file volume.
struct VolumeInfo {
  std::string volume;
  std::uint64_t snapshots = 0;
  files::SnapshotRecord oldest, newest;  // by start time
  std::uint64_t logical_bytes = 0;       // sum of its snapshots' bytes (their files' sizes)
  std::uint64_t added_bytes = 0;         // sum of its snapshots' added_bytes
};

// The logical dumps of one database (the records without their chunk lists).
struct DatabaseDumpInfo {
  std::string database;
  std::uint64_t dumps = 0;
  dump::DumpRecord oldest, newest;  // by start time
  std::uint64_t logical_bytes = 0;  // sum of its dumps' bytes
  std::uint64_t added_bytes = 0;    // sum of its dumps' added_bytes
};

struct InfoReport {
  std::string repo_id;
  std::string location;  // ObjectStore::describe()
  bool encrypted = false;
  int format_version = 0;
  int zstd_level = 0;
  std::uint32_t chunk_size = 0;
  std::int64_t created_us = 0;
  std::optional<repo::ClusterInfo> cluster;

  std::uint64_t objects = 0;
  std::uint64_t size_bytes = 0;  // every object's stored size
  std::uint64_t pack_bytes = 0;  // packs/*
  std::uint64_t wal_bytes = 0;   // wal/*
  // Sum of the backups' and snapshots' logical sizes over the pack bytes:
  // dedup across them and compression together. std::nullopt without packs.
  std::optional<double> dedup_ratio;
  std::optional<store::SpaceInfo> space;  // stores that report it (local file systems)

  std::vector<basebackup::BackupRecord> backups;     // oldest first
  std::set<std::string> pinned;                      // labels pinned by `backup keep`
  basebackup::ReachableWindow window;                // the latest timeline's (restore's default)
  std::vector<basebackup::ReachableWindow> windows;  // every timeline's, ascending

  std::uint64_t wal_segments = 0;
  std::optional<std::string> last_segment;       // highest name: latest timeline, latest position
  std::optional<std::int64_t> last_archived_us;  // that segment's metadata archived_us
  std::optional<std::int64_t> latest_commit_us;  // latest commit/abort in any segment
  std::vector<RestorePointInfo> restore_points;  // every archived one, by time

  std::vector<VolumeInfo> volumes;      // every volume with a snapshot, by name
  std::vector<DatabaseDumpInfo> dumps;  // every database with a dump, by name

  // The newest `verify` and `drill` history entries (repo/history.h); none
  // recorded, or the newest one damaged (corrupt): std::nullopt.
  std::optional<repo::HistoryEntry> last_verify;
  std::optional<repo::HistoryEntry> last_drill;
};

// One DatabaseDumpInfo per database of `dumps` (oldest first), by name.
std::vector<DatabaseDumpInfo> dumps_by_database(const std::vector<dump::DumpRecord>& dumps);

// Throws what load_archive_view, files::list_snapshots and dump::list_dumps throw on a
// damaged record or metadata
// (`verify` names every damaged object instead), and Error(kIo) when the
// store fails, reading history included (never "none recorded" for history
// it could not read).
InfoReport repository_info(repo::Repository& repo);

std::string info_text(const InfoReport& info);
std::string info_json(const InfoReport& info);

}  // namespace walvault::ops
