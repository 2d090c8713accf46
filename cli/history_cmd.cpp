#include "cli/history_cmd.h"

#include <spdlog/spdlog.h>

#include <iostream>
#include <nlohmann/json.hpp>

namespace walvault::cli {

void record_history(const std::vector<repo::Repository*>& repos, const repo::HistoryEntry& entry) {
  for (repo::Repository* r : repos) {
    const std::string failure = repo::append_history(*r, entry);
    if (failure.empty()) continue;
    if (repos.size() > 1)
      spdlog::warn("repository {}: {}", r->store().describe(), failure);
    else
      spdlog::warn("{}", failure);
  }
}

int run_history(repo::Repository& repo, std::int64_t since_us, bool json) {
  const std::vector<repo::HistoryEntry> entries = repo::read_history(repo, since_us);
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : entries) out.push_back(repo::history_to_json(e));
    std::cout << out.dump(1) << "\n";
  } else {
    std::cout << repo::history_text(entries);
  }
  std::cout.flush();
  return 0;
}

}  // namespace walvault::cli
