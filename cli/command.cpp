// The helpers command.h shares between commands.
#include "cli/command.h"

#include <unistd.h>

#include <cstdio>

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/file_util.h"

namespace walvault::cli {

std::string mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
  return buf;
}

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789-_./=:%@+,") == std::string::npos)
    return arg;
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string this_binary() {
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  return n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : "walvault";
}

std::string spool_dir(const Globals& g, const repo::Repository& r, const char* purpose) {
  std::string base = g.spool_path.empty() ? kDefaultSpool : g.spool_path;
  std::string dir = base + "/" + r.config().repo_id + "/" + purpose;
  try {
    make_dirs(dir);
  } catch (const Error& e) {
    spdlog::info("spool unavailable, batching/prefetch/pre-staging off: {}", e.what());
    return "";
  }
  if (::access(dir.c_str(), W_OK) != 0) return "";
  return dir;
}

std::string archive_get_command(const Globals& g) {
  std::string cmd = shell_quote(this_binary());
  if (!g.config.empty() && ::access(g.config.c_str(), R_OK) == 0)
    cmd += " --config " + shell_quote(absolute_location(g.config));
  for (const auto& r : g.repos.locations) cmd += " --repo " + shell_quote(absolute_location(r));
  if (!g.repos.key_file.empty())
    cmd += " --key-file " + shell_quote(absolute_location(g.repos.key_file));
  if (!g.repos.passphrase_file.empty())
    cmd += " --passphrase-file " + shell_quote(absolute_location(g.repos.passphrase_file));
  if (!g.spool_path.empty()) cmd += " --spool-path " + shell_quote(absolute_location(g.spool_path));
  return cmd + " archive-get %f %p";
}

}  // namespace walvault::cli
