// `wal list [--json]`.
#include <iostream>

#include "cli/command.h"
#include "walarchive/wal_list.h"

namespace walvault::cli {

void register_wal(CLI::App& app, Verbs& verbs) {
  CLI::App* wal = app.add_subcommand("wal", "inspect archived WAL");
  wal->require_subcommand(1);
  CLI::App* list =
      wal->add_subcommand("list", "timelines, ranges, gaps, commit times, restore points");
  auto json = std::make_shared<bool>(false);
  list->add_flag("--json", *json, "machine-readable output");
  verbs.push_back({list, [json](const Context& ctx) {
                     auto r = ctx.repos.open_first();
                     auto listing = walarchive::list_wal(*r);
                     std::cout << (*json ? walarchive::wal_listing_json(listing)
                                         : walarchive::wal_listing_text(listing));
                     return 0;
                   }});
}

}  // namespace walvault::cli
