// The check pg_verifybackup --no-parse-wal makes of a plain-format backup,
// for restored data directories whose manifest Debian's pg_verifybackup 15
// cannot read (PostgreSQL 17 and 18 write version 2 manifests, and npm's
// @embedded-postgres ships no client tools).
//
// Like pg_verifybackup it reads <pgdata>/backup_manifest and checks:
//   - the manifest's own "Manifest-Checksum" (SHA-256 of every line before
//     it) and its "PostgreSQL-Backup-Manifest-Version" (1 or 2);
//   - for version 2, that "System-Identifier" is the one in global/pg_control
//     (its first 8 bytes, in the machine's byte order);
//   - that every file the manifest lists ("Path", or hex "Encoded-Path") is
//     on disk as a regular file with the listed "Size" and "Checksum"
//     (CRC32C, SHA224, SHA256, SHA384, SHA512 or NONE);
//   - that no regular file is on disk that the manifest does not list, and
//     nothing other than regular files and directories (symbolic links are
//     followed, as pg_tblspc's are).
// What pg_verifybackup ignores is ignored here too: backup_manifest, pg_wal/,
// postgresql.auto.conf, recovery.signal and standby.signal. WAL is not read.
#pragma once

#include <string>
#include <vector>

namespace walvault::testing {

// Every problem found in `pgdata` against its backup_manifest, one line
// each naming the file (or the manifest) at fault; empty when the directory
// matches. A manifest that cannot be read or parsed is one problem, and the
// files are then not checked. Throws walvault::Error(kIo) only when a file
// that exists cannot be read.
std::vector<std::string> check_backup_manifest(const std::string& pgdata);

}  // namespace walvault::testing
