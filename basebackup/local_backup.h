// `walvault backup --local --pgdata DIR`: a base backup taken on the
// database host by reading the data directory itself, between
// pg_backup_start and pg_backup_stop (pg_start_backup / pg_stop_backup,
// non-exclusive, on 13 and 14) over one SQL session that stays open for the
// whole backup (closing it aborts the backup on the server).
//
// The files are what BASE_BACKUP would send (PostgreSQL's exclusion rules:
// see data_dir_rule), cut into the same chunks by the same pipeline
// (take_backup.h, BackupPipeline), with the backup_label and tablespace_map
// of pg_backup_stop stored as files of the backup, so restore, PITR and
// dedup treat it like any other backup. Reading runs on the pipeline's
// workers (`options.parallel`), a group of chunks at a time. With
// data_checksums on, every page of a relation file is checked as it is read
// (page_checksum.h); a page that fails twice is a warning naming file and
// block, listed in the record (BackupRecord::page_errors), and the backup
// completes (as pgBackRest does).
//
// Files that vanish before they are opened are left out; a file read past
// its end (it shrank) is padded with zeros, one that grew is read to the
// size seen when it was opened: WAL replay repairs all three.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "basebackup/take_backup.h"

namespace walvault::basebackup {

// Takes a local backup of the data directory `pgdata` of the server
// `options.conninfo` reaches (a plain SQL connection). Throws
// Error(kClusterMismatch) when `pgdata` belongs to another cluster than the
// server or a repository, Error(kPostgres) when the server refuses (a
// standby, a version before 13, missing privileges), Error(kNotFound) when
// the WAL does not arrive in time; nothing is listed then.
BackupRecord take_local_backup(const std::vector<repo::Repository*>& repos,
                               const std::string& pgdata, const BackupOptions& options);

// What a backup keeps of one directory entry, PostgreSQL's basebackup.c
// rules: kSkip (temporary files and relations, pgsql_tmp*, postmaster.pid
// and .opts, backup_label(.old), tablespace_map, backup_manifest,
// pg_internal.init*, *.tmp of postgresql.auto.conf and current_logfiles,
// the forks of an unlogged relation but its init fork), kDirOnly (the
// directory without its contents: pg_wal, pg_tblspc at the root; pg_stat_tmp,
// pg_replslot, pg_dynshmem, pg_notify, pg_serial, pg_snapshots, pg_subtrans),
// else kKeep. `dir` is the entry's directory relative to the archive's root
// ("" for the root); `db_dir` says whether that directory holds a
// database's relations; `has_init_fork(relnumber)` whether the directory
// holds "<relnumber>_init".
enum class EntryRule { kKeep, kSkip, kDirOnly };
EntryRule data_dir_rule(std::string_view dir, std::string_view name, bool is_directory,
                        bool in_tablespace, bool db_dir,
                        const std::function<bool(std::string_view)>& has_init_fork);

}  // namespace walvault::basebackup
