// archive-push: what PostgreSQL's archive_command runs for each WAL file.
//
// Contract (PostgreSQL's, and ours): returning normally means the file is
// durable in the repository. A file already archived with identical bytes is
// success (with a warning); different bytes under the same name throw
// Error(kConflict) and the archived copy is never touched.
#pragma once

#include <string>

#include "repo/repository.h"

namespace walvault::walarchive {

struct PushOptions {
  // %p: the file's path, relative to PostgreSQL's data directory (our cwd).
  std::string wal_path;
  // How many segments to push at once, %p included. Above 1, the next
  // segments PostgreSQL has marked .ready in archive_status are pushed too,
  // and remembered in spool_dir so that their own calls return at once.
  int parallel = 1;
  // Local status directory for batching; empty disables batching.
  std::string spool_dir;
};

enum class PushOutcome {
  kStored,           // stored now
  kAlreadyArchived,  // the repository already had identical bytes
  kBatchConfirmed,   // an earlier call pushed it in a batch; confirmed present
};

struct PushResult {
  PushOutcome outcome = PushOutcome::kStored;
  int batch_pushed = 0;  // further .ready segments this call stored
};

PushResult archive_push(repo::Repository& repo, const PushOptions& options);

}  // namespace walvault::walarchive
