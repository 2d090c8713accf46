// Transitional: drill_cmd.cpp (being moved to ops/ by another change) still
// includes this name for record_history. The helpers live in
// cli/history_scope.h, the `history` command in cli/cmd_history.cpp; remove
// this header once drill_cmd.cpp includes history_scope.h.
#pragma once

#include "cli/history_scope.h"
