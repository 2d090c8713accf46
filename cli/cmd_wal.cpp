// `wal list [--json]`, `wal compact [--json]`.
#include <iostream>

#include "cli/command.h"
#include "repo/lock.h"
#include "repo/wal_catalogue.h"
#include "walarchive/wal_list.h"

namespace walvault::cli {

namespace {

// Every repository in turn, under a shared lock (expire, which removes
// metadata, holds the exclusive one).
int run_compact(const Context& ctx, bool json) {
  const auto repos = ctx.repos.open_all(KeyFallback::kNone);
  for (const auto& r : repos) {
    const auto lock = repo::RepoLock::acquire(*r, repo::LockMode::kShared, "wal compact",
                                              repo::default_lock_options());
    const repo::CompactReport report = repo::compact_wal(*r);
    if (repos.size() > 1 && !json) std::cout << "repository " << r->store().describe() << ":\n";
    std::cout << (json ? repo::compact_report_json(report) : repo::compact_report_text(report));
  }
  return 0;
}

}  // namespace

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
  CLI::App* compact = wal->add_subcommand(
      "compact",
      "write a catalogue per log directory so planning reads a few objects (gc does too)");
  auto compact_json = std::make_shared<bool>(false);
  compact->add_flag("--json", *compact_json, "machine-readable output");
  verbs.push_back(
      {compact, [compact_json](const Context& ctx) { return run_compact(ctx, *compact_json); }});
}

}  // namespace walvault::cli
