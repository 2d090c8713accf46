#include "ops/drill.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string_view>
#include <thread>

#include "core/error.h"
#include "pg/sql_connection.h"

extern char** environ;

namespace walvault::ops {

namespace {

namespace fs = std::filesystem;

// The environment of the server and its restore_command: PATH, as a service
// manager gives a server, so that a restore_command which works only with
// this process's variables (WALVAULT_PASSPHRASE) fails the drill as it would
// fail the restored server. The AWS_* variables are passed on: an S3
// repository's credentials reach a server through its environment by design
// (store/s3_settings.h), so the operator gives them to the real server too.
constexpr char kServerPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::string_view kPassedOn = "AWS_";

enum class Environment { kInherited, kClean };

struct Identity {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

// Runs argv (no shell) as `who`, in `cwd`, with `env` added to ours (kInherited)
// or to kServerPath and the kPassedOn variables (kClean); stdout and stderr together into `output`.
// Returns the exit status (128+signal).
int run_program(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                Environment base, const Identity& who, const std::string& cwd,
                std::string* output) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("drill: pipe");
  std::vector<std::string> env_strings;
  if (base == Environment::kClean) env_strings.emplace_back(kServerPath);
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string s(*e);
    if (base == Environment::kClean && !s.starts_with(kPassedOn)) continue;
    if (env.count(s.substr(0, s.find('='))) == 0) env_strings.push_back(s);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("drill: fork");
  if (pid == 0) {
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (who.switch_user && (::initgroups(who.name.c_str(), who.gid) != 0 ||
                            ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0)) {
      std::fprintf(stderr, "cannot switch to user %s\n", who.name.c_str());
      ::_exit(126);
    }
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      std::fprintf(stderr, "cannot enter %s: %s\n", cwd.c_str(), std::strerror(errno));
      ::_exit(126);
    }
    ::execve(args[0], args.data(), envp.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (output) *output = std::move(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The last non-empty line of `text`, "" when none.
std::string last_line(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last;
}

// The text after "FATAL:  " / "PANIC:  " of the last such line of a server log.
std::string last_fatal(const std::string& log) {
  std::istringstream in(log);
  std::string line, last;
  for (std::string line_in; std::getline(in, line_in);) {
    for (const char* level : {"FATAL:", "PANIC:"}) {
      const auto at = line_in.find(level);
      if (at == std::string::npos) continue;
      std::string text = line_in.substr(at + std::strlen(level));
      text.erase(0, text.find_first_not_of(' '));
      last = text;
    }
  }
  return last;
}

}  // namespace

int drill_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("drill: socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw_errno("drill: finding a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

DrillServer::DrillServer(DrillServerOptions options)
    : options_(std::move(options)), pgdata_(options_.scratch + "/data") {
  as_root_ = ::geteuid() == 0;
  if (as_root_) {
    const passwd* pw = ::getpwnam(options_.run_as.c_str());
    if (pw == nullptr || pw->pw_uid == 0)
      throw Error(ErrorCode::kUsage, "--run-as: '" + options_.run_as +
                                         "' is not an unprivileged user of this system "
                                         "(PostgreSQL refuses to run as root)");
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
  } else {
    const passwd* pw = ::getpwuid(::geteuid());
    options_.run_as = pw != nullptr ? pw->pw_name : std::to_string(::geteuid());
  }
}

DrillServer::~DrillServer() { stop(); }

std::string DrillServer::db_user() const {
  return options_.db_user.empty() ? options_.run_as : options_.db_user;
}

std::vector<std::pair<std::string, std::string>> DrillServer::settings() const {
  // Values as they are: write_recovery_settings quotes each one.
  return {{"port", std::to_string(options_.port)},
          {"listen_addresses", ""},
          {"unix_socket_directories", socket_dir()},
          {"hba_file", options_.scratch + "/pg_hba.conf"},
          {"archive_mode", "off"},
          {"primary_conninfo", ""},
          {"primary_slot_name", ""},
          {"recovery_end_command", ""},
          {"archive_cleanup_command", ""},
          {"hot_standby", "on"},
          {"ssl", "off"},
          {"logging_collector", "off"},
          {"log_destination", "stderr"}};
}

int DrillServer::run_as_server(const std::vector<std::string>& argv, std::string* output) const {
  return run_program(argv, {}, Environment::kClean, Identity{as_root_, uid_, gid_, options_.run_as},
                     options_.scratch, output);
}

void DrillServer::prepare() {
  fs::create_directories(socket_dir());
  ::chmod(socket_dir().c_str(), 0700);
  // Trust on the private socket only: the directory is the server user's,
  // mode 0700, so only that user (and root) can connect.
  std::ofstream(options_.scratch + "/pg_hba.conf") << "local all all trust\n";
  if (!as_root_) return;
  std::error_code ec;
  if (::chown(options_.scratch.c_str(), uid_, gid_) != 0)
    throw_errno("drill: chown " + options_.scratch);
  for (const auto& entry : fs::recursive_directory_iterator(options_.scratch, ec))
    if (::lchown(entry.path().c_str(), uid_, gid_) != 0)
      throw_errno("drill: chown " + entry.path().string());
  if (ec) throw Error(ErrorCode::kIo, "drill: " + options_.scratch + ": " + ec.message());
}

void DrillServer::try_restore_command(const std::string& restore_command,
                                      const std::string& segment) {
  const std::string target = options_.scratch + "/restore_command.test";
  std::string cmd;
  for (std::size_t i = 0; i < restore_command.size(); ++i) {
    if (restore_command[i] == '%' && i + 1 < restore_command.size()) {
      const char c = restore_command[++i];
      if (c == 'f')
        cmd += segment;
      else if (c == 'p')
        cmd += target;
      else if (c == '%')
        cmd += '%';
      else
        cmd += std::string("%") + c;
    } else {
      cmd += restore_command[i];
    }
  }
  std::string output;
  const int status = run_as_server({"/bin/sh", "-c", cmd}, &output);
  ::unlink(target.c_str());
  if (status != 0)
    throw Error(ErrorCode::kIo, "restore_command: fetching " + segment + " as user " +
                                    options_.run_as + " failed (exit status " +
                                    std::to_string(status) + ")" +
                                    (last_line(output).empty() ? "" : ": " + last_line(output)));
}

std::string DrillServer::verify_backup() {
  const std::string binary = options_.bin_dir + "/pg_verifybackup";
  if (::access(binary.c_str(), X_OK) != 0)
    return "skipped: " + binary + " not found (give --pg-bin)";
  struct stat st {};
  if (::stat((pgdata_ + "/backup_manifest").c_str(), &st) != 0 || st.st_size == 0)
    return "skipped: the backup has no backup_manifest";
  std::string output;
  const int status = run_as_server({binary, "--no-parse-wal", pgdata_}, &output);
  if (status != 0) {
    std::string first;
    std::istringstream in(output);
    std::getline(in, first);
    throw Error(ErrorCode::kCorruption, "pg_verifybackup: " + first);
  }
  return last_line(output);
}

std::string DrillServer::conninfo() const {
  return "host=" + socket_dir() + " port=" + std::to_string(options_.port) + " user=" + db_user() +
         " dbname=" + options_.dbname + " connect_timeout=10";
}

bool DrillServer::alive() const {
  std::ifstream in(pgdata_ + "/postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

std::string DrillServer::failure_reason() const {
  std::ifstream in(log_file(), std::ios::binary);
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The segment after the last one restored is where replay stopped; when
  // the archive lacks it, that is the reason (PostgreSQL only says that the
  // WAL ended).
  std::string last_restored;
  static const std::regex restored_line("restored log file \"([0-9A-F]{24})\" from archive");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), restored_line);
       it != std::sregex_iterator(); ++it)
    last_restored = (*it)[1];
  const auto& segs = options_.wal_segments;
  std::optional<std::string> next;
  if (last_restored.empty()) {
    if (!segs.empty()) next = segs.front();
  } else {
    for (std::size_t i = 0; i < segs.size(); ++i)
      if (segs[i] == last_restored && i + 1 < segs.size()) next = segs[i + 1];
  }
  const std::string fatal = last_fatal(log);
  const std::string server = fatal.empty() ? "" : " (server: " + fatal + ")";
  if (next && options_.segment_archived && !options_.segment_archived(*next))
    return "WAL segment " + *next + " missing from the archive" + server;
  // Replay may stop before the log shows which segment it wanted (the
  // checkpoint record of backup_label lies in a later segment than its redo
  // point): the first segment of the plan the archive lacks is the reason.
  if (options_.segment_archived)
    for (const std::string& seg : segs)
      if (!options_.segment_archived(seg))
        return "WAL segment " + seg + " missing from the archive" + server;
  if (!fatal.empty()) return fatal;
  return "the server stopped; see " + log_file();
}

void DrillServer::start_and_recover(std::chrono::steady_clock::time_point deadline) {
  using Clock = std::chrono::steady_clock;
  const std::string pg_ctl = options_.bin_dir + "/pg_ctl";
  if (::access(pg_ctl.c_str(), X_OK) != 0)
    throw Error(ErrorCode::kUsage,
                "server did not start: " + pg_ctl + " not found (give --pg-bin)");
  const auto wait_s = std::max<long long>(
      1, std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now()).count());
  std::string output;
  started_ = true;
  const int status = run_as_server(
      {pg_ctl, "start", "-w", "-t", std::to_string(wait_s), "-D", pgdata_, "-l", log_file()},
      &output);
  const auto recovery_failed = [&](const std::string& why) {
    const bool missing = why.starts_with("WAL segment ");
    return Error(missing ? ErrorCode::kNotFound : ErrorCode::kPostgres,
                 "recovery did not finish: " + why);
  };
  if (status != 0) {
    if (alive()) throw recovery_failed("not consistent within the --timeout");
    std::ifstream in(log_file());
    const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (log.find("starting") != std::string::npos && log.find("recovery") != std::string::npos)
      throw recovery_failed(failure_reason());
    const std::string fatal = last_fatal(log);
    throw Error(ErrorCode::kPostgres,
                "server did not start: " + (fatal.empty() ? last_line(output) : fatal));
  }
  for (;;) {
    try {
      pg::SqlConnection conn(conninfo(), "walvault drill");
      if (conn.row("select pg_is_in_recovery()::text").at(0) == "false") return;
    } catch (const Error&) {
      // not accepting connections at this moment: judged below
    }
    if (!alive()) throw recovery_failed(failure_reason());
    if (Clock::now() >= deadline) throw recovery_failed("still in recovery at the --timeout");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

CheckOutcome DrillServer::run_checks(const std::vector<DrillCheck>& checks,
                                     const std::string& script,
                                     std::chrono::steady_clock::time_point t0) {
  CheckOutcome out;
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const auto fail = [&](const std::string& what) {
    ++out.failed;
    out.lines.push_back(what);
    if (out.first_failure.empty()) out.first_failure = what;
  };
  const std::vector<DrillCheck> first_query = {{"select 1", "1"}};
  const bool sql_given = !checks.empty();
  const auto& sql_checks = sql_given ? checks : first_query;
  for (std::size_t i = 0; i < sql_checks.size(); ++i) {
    const DrillCheck& c = sql_checks[i];
    const std::string name =
        sql_given ? "check " + std::to_string(i + 1) + " (" + c.sql + ")" : "first query";
    try {
      // A new session per check: one failing statement cannot spoil the next.
      pg::SqlConnection conn(conninfo(), "walvault drill");
      const std::string got = conn.row(c.sql).at(0);
      if (!out.first_query_s) out.first_query_s = elapsed();
      if (got == c.expect) {
        if (sql_given) {
          ++out.passed;
          out.lines.push_back(name + " passed: " + got);
        }
      } else {
        fail(name + " failed: got '" + got + "', expected '" + c.expect + "'");
      }
    } catch (const Error& e) {
      fail(name + " failed: " + e.what());
    }
  }
  if (!script.empty()) {
    std::string output;
    const std::map<std::string, std::string> env = {{"PGHOST", socket_dir()},
                                                    {"PGPORT", std::to_string(options_.port)},
                                                    {"PGDATA", pgdata_},
                                                    {"PGUSER", db_user()},
                                                    {"PGDATABASE", options_.dbname}};
    const int status = run_program({script}, env, Environment::kInherited, Identity{}, "", &output);
    if (status == 0) {
      ++out.passed;
      out.lines.push_back("check script " + script + " passed");
    } else {
      const std::string tail = last_line(output);
      fail("check script " + script + " failed (exit status " + std::to_string(status) + ")" +
           (tail.empty() ? "" : ": " + tail));
    }
  }
  return out;
}

void DrillServer::stop() noexcept {
  if (!started_) return;
  started_ = false;
  try {
    if (!alive()) return;
    const std::string pg_ctl = options_.bin_dir + "/pg_ctl";
    if (run_as_server({pg_ctl, "stop", "-D", pgdata_, "-m", "fast", "-w", "-t", "60"}, nullptr) !=
        0)
      run_as_server({pg_ctl, "stop", "-D", pgdata_, "-m", "immediate", "-w"}, nullptr);
  } catch (...) {
    // the server is a scratch copy: a failure to stop it is only noise
  }
}

}  // namespace walvault::ops
