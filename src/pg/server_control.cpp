#include "pg/server_control.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/file_util.h"

namespace walvault::pg {

namespace {

constexpr char kServerPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr char kPassedOn[] = "AWS_";

}  // namespace

std::string server_bin_dir(int pg_version_num, const std::string& given) {
  if (!given.empty()) return given;
  return "/usr/lib/postgresql/" + std::to_string(pg_version_num / 10000) + "/bin";
}

std::vector<std::string> pg_ctl_start_argv(const std::string& bin_dir, const std::string& pgdata,
                                           const std::string& log_file, long long wait_s) {
  return {bin_dir + "/pg_ctl",
          "start",
          "-w",
          "-t",
          std::to_string(wait_s),
          "-D",
          pgdata,
          "-l",
          log_file};
}

std::vector<std::string> pg_ctl_stop_argv(const std::string& bin_dir, const std::string& pgdata,
                                          StopMode mode) {
  if (mode == StopMode::kFast)
    return {bin_dir + "/pg_ctl", "stop", "-D", pgdata, "-m", "fast", "-w", "-t", "60"};
  return {bin_dir + "/pg_ctl", "stop", "-D", pgdata, "-m", "immediate", "-w"};
}

std::vector<std::string> pg_ctl_promote_argv(const std::string& bin_dir,
                                             const std::string& pgdata) {
  return {bin_dir + "/pg_ctl", "promote", "-W", "-D", pgdata};
}

std::vector<std::string> verifybackup_argv(const std::string& bin_dir, const std::string& pgdata) {
  return {bin_dir + "/pg_verifybackup", "--no-parse-wal", pgdata};
}

std::string expand_restore_command(const std::string& restore_command, const std::string& segment,
                                   const std::string& path) {
  std::string cmd;
  for (std::size_t i = 0; i < restore_command.size(); ++i) {
    if (restore_command[i] == '%' && i + 1 < restore_command.size()) {
      const char c = restore_command[++i];
      if (c == 'f')
        cmd += segment;
      else if (c == 'p')
        cmd += path;
      else if (c == '%')
        cmd += '%';
      else
        cmd += std::string("%") + c;
    } else {
      cmd += restore_command[i];
    }
  }
  return cmd;
}

std::string last_fatal(const std::string& log) {
  std::istringstream in(log);
  std::string last;
  for (std::string line; std::getline(in, line);) {
    for (const char* level : {"FATAL:", "PANIC:"}) {
      const auto at = line.find(level);
      if (at == std::string::npos) continue;
      std::string text = line.substr(at + std::strlen(level));
      text.erase(0, text.find_first_not_of(' '));
      last = text;
    }
  }
  return last;
}

std::string last_restored_segment(const std::string& log) {
  static const std::regex restored_line("restored log file \"([0-9A-F]{24})\" from archive");
  std::string last;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), restored_line);
       it != std::sregex_iterator(); ++it)
    last = (*it)[1];
  return last;
}

ChildEnvironment server_environment() {
  ChildEnvironment env;
  env.inherit = false;
  env.keep_prefixes = {kPassedOn};
  env.set = {{"PATH", kServerPath}};
  return env;
}

bool postmaster_alive(const std::string& pgdata) {
  std::ifstream in(pgdata + "/postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

ClusterState parse_cluster_state(ByteView control_file) {
  // ControlFileData: uint64 system_identifier, uint32 pg_control_version,
  // uint32 catalog_version_no, DBState state (DB_IN_ARCHIVE_RECOVERY = 5,
  // DB_IN_PRODUCTION = 6), in the server's byte order.
  constexpr std::size_t kStateOffset = 16;
  if (control_file.size() < kStateOffset + 4) return ClusterState::kUnknown;
  std::int32_t state = 0;
  std::memcpy(&state, control_file.data() + kStateOffset, sizeof state);
  if (state == 5) return ClusterState::kInArchiveRecovery;
  if (state == 6) return ClusterState::kInProduction;
  return ClusterState::kOther;
}

ClusterState cluster_state(const std::string& pgdata) {
  const auto bytes = read_file(pgdata + "/global/pg_control");
  return bytes ? parse_cluster_state(*bytes) : ClusterState::kUnknown;
}

ServerControl::ServerControl(std::string bin_dir, std::string pgdata,
                             std::optional<UserIdentity> user, std::string cwd)
    : bin_dir_(std::move(bin_dir)),
      pgdata_(std::move(pgdata)),
      user_(std::move(user)),
      cwd_(std::move(cwd)) {}

bool ServerControl::has_program(const std::string& name) const {
  return ::access(program(name).c_str(), X_OK) == 0;
}

ProgramResult ServerControl::run(const std::vector<std::string>& argv) const {
  return run_program({argv, server_environment(), user_, cwd_});
}

ProgramResult ServerControl::start(const std::string& log_file, long long wait_s) const {
  return run(pg_ctl_start_argv(bin_dir_, pgdata_, log_file, wait_s));
}

ProgramResult ServerControl::stop(StopMode mode) const {
  return run(pg_ctl_stop_argv(bin_dir_, pgdata_, mode));
}

ProgramResult ServerControl::promote() const { return run(pg_ctl_promote_argv(bin_dir_, pgdata_)); }

ProgramResult ServerControl::verify_backup() const {
  return run(verifybackup_argv(bin_dir_, pgdata_));
}

}  // namespace walvault::pg
