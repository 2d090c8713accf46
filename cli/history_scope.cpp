#include "cli/history_scope.h"

#include <spdlog/spdlog.h>

#include <exception>

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

void run_recorded(const std::vector<repo::Repository*>& repos, repo::HistoryEntry& entry,
                  const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    entry.outcome = "failed";
    entry.detail = e.what();
    record_history(repos, entry);
    throw;
  }
  if (entry.outcome.empty()) entry.outcome = "ok";
  record_history(repos, entry);
}

}  // namespace walvault::cli
