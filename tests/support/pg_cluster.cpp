#include "support/pg_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace walvault::testing {

namespace fs = std::filesystem;

bool running_as_root() { return ::geteuid() == 0; }

std::string test_user() {
  if (running_as_root()) return "postgres";
  const passwd* pw = ::getpwuid(::geteuid());
  return pw ? pw->pw_name : "";
}

std::string walvault_binary() {
  if (const char* env = std::getenv("WALVAULT_BIN")) return env;
  return WALVAULT_BINARY;
}

std::string walvault_binary_for_server() {
  static const std::string copy = [] {
    static TempDir dir("wv-bin");
    std::string target = dir.sub("walvault");
    fs::copy_file(walvault_binary(), target, fs::copy_options::overwrite_existing);
    ::chmod(target.c_str(), 0755);
    return target;
  }();
  return copy;
}

namespace {

void drain(int out_fd, int err_fd, std::string& out, std::string& err) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? out : err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
}

}  // namespace

CommandResult run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, AsUser as) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  uid_t uid = 0;
  gid_t gid = 0;
  bool switch_user = as == AsUser::kTestUser && running_as_root();
  if (switch_user) {
    const passwd* pw = ::getpwnam(test_user().c_str());
    if (!pw) throw std::runtime_error("no user " + test_user());
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string s(*e);
    auto key = s.substr(0, s.find('='));
    if (!env.count(key)) env_strings.push_back(s);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (switch_user) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) _exit(126);
      // The caller's directory (the build tree) may be one the test user cannot
      // enter; PostgreSQL's tools would complain about it on every command.
      if (::chdir("/") != 0) _exit(126);
    }
    ::execvpe(args[0], args.data(), envp.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  CommandResult result;
  drain(out_pipe[0], err_pipe[0], result.out, result.err);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CommandResult run_shell(const std::string& script, const std::map<std::string, std::string>& env,
                        AsUser as) {
  return run({"/bin/sh", "-c", script}, env, as);
}

void give_to_test_user(const std::string& path) {
  if (!running_as_root()) return;
  const passwd* pw = ::getpwnam(test_user().c_str());
  if (!pw) throw std::runtime_error("no user " + test_user());
  std::error_code ec;
  ::chown(path.c_str(), pw->pw_uid, pw->pw_gid);
  if (fs::is_directory(path, ec)) {
    for (const auto& entry : fs::recursive_directory_iterator(path, ec)) {
      ::lchown(entry.path().c_str(), pw->pw_uid, pw->pw_gid);
    }
  }
}

bool takes_direct_io(const std::string& dir) {
  const std::string probe = dir + "/.direct-probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_DIRECT, 0600);
  if (fd < 0) return false;
  void* block = nullptr;
  bool ok = ::posix_memalign(&block, 4096, 4096) == 0;
  if (ok) {
    std::memset(block, 0, 4096);
    ok = ::pwrite(fd, block, 4096, 0) == 4096;
  }
  std::free(block);
  ::close(fd);
  ::unlink(probe.c_str());
  return ok;
}

TempDir::TempDir(const std::string& tag) {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/" + tag + "-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + templ);
  path_ = buf.data();
  ::chmod(path_.c_str(), 0755);
  give_to_test_user(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string pg_root() {
  if (const char* root = std::getenv("WALVAULT_PG_ROOT"); root && *root) return root;
  return running_as_root() ? "/var/cache/walvault/pg" : std::string(WALVAULT_SOURCE_DIR) + "/.pg";
}

std::string pg_bin_dir(int major) {
  std::string debian = "/usr/lib/postgresql/" + std::to_string(major) + "/bin";
  if (fs::exists(debian + "/postgres")) return debian;
  std::string npm = pg_root() + "/" + std::to_string(major) + "/bin";
  if (fs::exists(npm + "/postgres")) return npm;
  return "";
}

std::string missing_major(int major) {
  if (!pg_bin_dir(major).empty()) return "";
  const std::string why = "PostgreSQL " + std::to_string(major) + " not installed in " + pg_root() +
                          " (scripts/fetch-pg-majors " + std::to_string(major) + ")";
  if (std::getenv("WALVAULT_REQUIRE_MAJORS")) ADD_FAILURE() << why;
  return why;
}

std::string pg_client_bin_dir() {
  for (int major = 18; major >= 13; --major) {
    std::string dir = "/usr/lib/postgresql/" + std::to_string(major) + "/bin";
    if (fs::exists(dir + "/psql")) return dir;
  }
  return "/usr/bin";
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

PgCluster::PgCluster(Options options) : options_(std::move(options)), dir_("wv-pg") {
  bin_dir_ = pg_bin_dir(options_.major);
  if (bin_dir_.empty())
    throw std::runtime_error("PostgreSQL " + std::to_string(options_.major) + " is not installed");
  data_dir_ = dir_.sub("data");
  socket_dir_ = dir_.path();
  log_file_ = dir_.sub("server.log");
  port_ = free_port();
}

PgCluster::~PgCluster() {
  if (running_) {
    run({bin_dir_ + "/pg_ctl", "-D", data_dir_, "-m", "immediate", "-w", "stop"}, {},
        AsUser::kTestUser);
  }
}

static std::string tail_of(const std::string& path, std::size_t max = 3000) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max ? s.substr(s.size() - max) : s;
}

void PgCluster::init() {
  std::vector<std::string> argv = {
      bin_dir_ + "/initdb", "-D",        data_dir_, "-U",   "postgres",
      "--auth=trust",       "--no-sync", "-E",      "UTF8", "--locale=C"};
  argv.insert(argv.end(), options_.initdb_args.begin(), options_.initdb_args.end());
  auto r = run(argv, {}, AsUser::kTestUser);
  if (r.status != 0) throw std::runtime_error("initdb failed: " + r.err + r.out);
  std::ofstream conf(data_dir_ + "/postgresql.conf", std::ios::app);
  conf << "\nport = " << port_ << "\n"
       << "listen_addresses = ''\n"
       << "unix_socket_directories = '" << socket_dir_ << "'\n"
       << "fsync = off\n"
       << "max_wal_senders = 4\n"
       << "wal_level = replica\n";
  for (const auto& [k, v] : options_.settings) conf << k << " = " << v << "\n";
}

void PgCluster::adopt(const std::string& data_dir) {
  data_dir_ = data_dir;
  give_to_test_user(data_dir_);
  std::ofstream conf(data_dir_ + "/postgresql.auto.conf", std::ios::app);
  conf << "\nport = " << port_ << "\n"
       << "unix_socket_directories = '" << socket_dir_ << "'\n";
}

void PgCluster::attach(const std::string& data_dir) {
  data_dir_ = data_dir;
  running_ = true;
}

void PgCluster::start() {
  std::vector<std::string> argv = {
      bin_dir_ + "/pg_ctl", "-D", data_dir_, "-l", log_file_, "-w", "-t", "120", "start"};
  if (options_.clean_environment) {
    std::vector<std::string> env_i = {"/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    for (const auto& [k, v] : options_.environment) env_i.push_back(k + "=" + v);
    argv.insert(argv.begin(), env_i.begin(), env_i.end());
  }
  auto r = run(argv, options_.environment, AsUser::kTestUser);
  if (r.status != 0)
    throw std::runtime_error("pg_ctl start failed: " + r.err + "\n" + tail_of(log_file_));
  running_ = true;
}

void PgCluster::stop(bool fast) {
  if (!running_) return;
  auto r = run({bin_dir_ + "/pg_ctl", "-D", data_dir_, "-m", fast ? "fast" : "smart", "-w", "-t",
                "120", "stop"},
               {}, AsUser::kTestUser);
  if (r.status != 0) throw std::runtime_error("pg_ctl stop failed: " + r.err);
  running_ = false;
}

std::string PgCluster::sql(const std::string& statement, const std::string& db) {
  auto r = run({pg_client_bin_dir() + "/psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", socket_dir_,
                "-p", std::to_string(port_), "-U", "postgres", "-d", db, "-c", statement},
               {{"PGCONNECT_TIMEOUT", "30"}}, AsUser::kSelf);
  if (r.status != 0) throw std::runtime_error("psql failed: " + statement + ": " + r.err);
  std::string out = r.out;
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void PgCluster::pgbench_init(int scale) {
  auto r = run({pg_client_bin_dir() + "/pgbench", "-i", "-q", "-s", std::to_string(scale), "-h",
                socket_dir_, "-p", std::to_string(port_), "-U", "postgres", "postgres"});
  if (r.status != 0) throw std::runtime_error("pgbench -i failed: " + r.err);
}

void PgCluster::pgbench_run(int seconds, int clients) {
  auto r = run({pg_client_bin_dir() + "/pgbench", "-n", "-T", std::to_string(seconds), "-c",
                std::to_string(clients), "-h", socket_dir_, "-p", std::to_string(port_), "-U",
                "postgres", "postgres"});
  if (r.status != 0) throw std::runtime_error("pgbench failed: " + r.err);
}

}  // namespace walvault::testing
