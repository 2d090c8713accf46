// Transitional: drill_cmd.h (being moved to ops/ by another change) still
// includes this name for the restore plan shared with `restore`. That lives
// in cli/repo_set.h now, the target's description in
// basebackup/restore_target.h; remove this header once drill_cmd.h includes
// those.
#pragma once

#include "basebackup/restore_target.h"
#include "cli/repo_set.h"

namespace walvault::cli {

using basebackup::describe_target;

}  // namespace walvault::cli
