// `history [--since 7d] [--json]`.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/time_util.h"
#include "repo/history.h"

namespace walvault::cli {

namespace {

struct HistoryArgs {
  std::string since;
  bool json = false;
};

// Prints the entries that started in the last --since, oldest first.
int run_history(const Context& ctx, const HistoryArgs& a) {
  const std::int64_t since_us =
      a.since.empty() ? 0 : now_unix_us() - parse_duration("--since", a.since).count() * 1000000;
  auto r = ctx.repos.open_first();
  const std::vector<repo::HistoryEntry> entries = repo::read_history(*r, since_us);
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : entries) out.push_back(repo::history_to_json(e));
    std::cout << out.dump(1) << "\n";
  } else {
    std::cout << repo::history_text(entries);
  }
  std::cout.flush();
  return 0;
}

}  // namespace

void register_history(CLI::App& app, Verbs& verbs) {
  CLI::App* history =
      app.add_subcommand("history", "backups, expires, gcs, verifies and drills, oldest first");
  auto args = std::make_shared<HistoryArgs>();
  history->add_option("--since", args->since, "only the last 90m, 26h, 7d, ...");
  history->add_flag("--json", args->json, "machine-readable output");
  verbs.push_back({history, [args](const Context& ctx) { return run_history(ctx, *args); }});
}

}  // namespace walvault::cli
