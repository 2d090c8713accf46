// Helpers for driving the real walvault binary from integration tests.
#pragma once

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "support/pg_cluster.h"

namespace walvault::testing {

// Runs `walvault <args>` as the test user (the same user PostgreSQL's
// archive_command runs as, so files it creates stay writable for the server).
inline CommandResult walvault(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv = {walvault_binary_for_server()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> full_env = {{"WALVAULT_CONFIG", "/dev/null"}};
  for (const auto& [k, v] : env) full_env[k] = v;
  return run(argv, full_env, AsUser::kTestUser);
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Number of lines in `s` (a trailing newline does not start a new line).
inline int line_count(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  if (!s.empty() && s.back() != '\n') ++n;
  return n;
}

}  // namespace walvault::testing
