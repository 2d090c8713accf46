// `info [--json]`: size, backups, restorable window, WAL and restore points.
#include <iostream>

#include "cli/command.h"
#include "ops/info.h"

namespace walvault::cli {

void register_info(CLI::App& app, Verbs& verbs) {
  CLI::App* info = app.add_subcommand(
      "info", "repository size, backups, restorable window, WAL and restore points");
  auto json = std::make_shared<bool>(false);
  info->add_flag("--json", *json, "machine-readable output");
  verbs.push_back({info, [json](const Context& ctx) {
                     auto r = ctx.repos.open_first();
                     const ops::InfoReport report = ops::repository_info(*r);
                     std::cout << (*json ? ops::info_json(report) : ops::info_text(report));
                     std::cout.flush();
                     return 0;
                   }});
}

}  // namespace walvault::cli
