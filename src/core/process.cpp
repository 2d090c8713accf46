#include "core/process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "core/error.h"

extern char** environ;

namespace walvault {

namespace {

bool kept(const std::string& variable, const ChildEnvironment& rule) {
  if (rule.set.count(variable.substr(0, variable.find('='))) != 0) return false;
  if (rule.inherit) return true;
  for (const std::string& prefix : rule.keep_prefixes)
    if (variable.starts_with(prefix)) return true;
  return false;
}

// The argv and environment of a child, as execve takes them; `strings`
// owns the characters.
struct ExecArgs {
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  std::vector<char*> args;
  explicit ExecArgs(const ProgramRun& run)
      : env_strings(child_environment(environ, run.environment)) {
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    for (const auto& a : run.argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
  }
};

// In the forked child: only async-signal-safe calls until execve. `in_fd`
// -1: run.stdin_path (else /dev/null).
[[noreturn]] void exec_child(const ProgramRun& run, int in_fd, int out_fd, int err_fd,
                             char* const* args, char* const* envp) {
  ::dup2(out_fd, 1);
  ::dup2(err_fd, 2);
  if (in_fd < 0) {
    const char* input = run.stdin_path.empty() ? "/dev/null" : run.stdin_path.c_str();
    in_fd = ::open(input, O_RDONLY);
    if (in_fd < 0) {
      std::fprintf(stderr, "cannot open %s: %s\n", input, std::strerror(errno));
      ::_exit(126);
    }
  }
  ::dup2(in_fd, 0);
  const auto& who = run.user;
  if (who && (::initgroups(who->name.c_str(), who->gid) != 0 || ::setgid(who->gid) != 0 ||
              ::setuid(who->uid) != 0)) {
    std::fprintf(stderr, "cannot switch to user %s\n", who->name.c_str());
    ::_exit(126);
  }
  if (!run.cwd.empty() && ::chdir(run.cwd.c_str()) != 0) {
    std::fprintf(stderr, "cannot enter %s: %s\n", run.cwd.c_str(), std::strerror(errno));
    ::_exit(126);
  }
  ::execve(args[0], args, envp);
  std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

std::string read_all(int fd) {
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return out;
    }
  }
}

}  // namespace

std::optional<UserIdentity> find_user(const std::string& name) {
  const passwd* pw = ::getpwnam(name.c_str());
  if (pw == nullptr) return std::nullopt;
  return UserIdentity{pw->pw_uid, pw->pw_gid, name};
}

std::vector<std::string> child_environment(const char* const* parent,
                                           const ChildEnvironment& rule) {
  std::vector<std::string> out;
  for (const char* const* e = parent; *e != nullptr; ++e)
    if (kept(*e, rule)) out.emplace_back(*e);
  for (const auto& [name, value] : rule.set) out.push_back(name + "=" + value);
  return out;
}

int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ProgramResult run_program(const ProgramRun& run) {
  ExecArgs exec(run);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("running " + run.argv.at(0) + ": pipe");
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw_errno("running " + run.argv.at(0) + ": fork", err);
  }
  if (pid == 0) exec_child(run, -1, pipe_fds[1], pipe_fds[1], exec.args.data(), exec.envp.data());
  ::close(pipe_fds[1]);
  ProgramResult result;
  result.output = read_all(pipe_fds[0]);
  ::close(pipe_fds[0]);
  result.status = wait_child(pid);
  return result;
}

StreamingProgram::StreamingProgram(const ProgramRun& run, Pipe pipe) {
  ExecArgs exec(run);
  const std::string what = "running " + run.argv.at(0);
  output_fd_ = ::memfd_create("walvault-program-output", MFD_CLOEXEC);
  if (output_fd_ < 0) throw_errno(what + ": memfd_create");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(output_fd_);
    throw_errno(what + ": pipe", err);
  }
  // The child's end: its stdout (we read) or its stdin (we write).
  const int child_end = pipe == Pipe::kStdout ? pipe_fds[1] : pipe_fds[0];
  pipe_fd_ = pipe == Pipe::kStdout ? pipe_fds[0] : pipe_fds[1];
  pid_ = ::fork();
  if (pid_ < 0) {
    const int err = errno;
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ::close(output_fd_);
    throw_errno(what + ": fork", err);
  }
  if (pid_ == 0) {
    if (pipe == Pipe::kStdout)
      exec_child(run, -1, child_end, output_fd_, exec.args.data(), exec.envp.data());
    exec_child(run, child_end, output_fd_, output_fd_, exec.args.data(), exec.envp.data());
  }
  ::close(child_end);
}

StreamingProgram::~StreamingProgram() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait_child(pid_);
  }
  if (pipe_fd_ >= 0) ::close(pipe_fd_);
  if (output_fd_ >= 0) ::close(output_fd_);
}

ProgramResult StreamingProgram::wait() {
  if (pipe_fd_ >= 0) ::close(pipe_fd_);
  pipe_fd_ = -1;
  ProgramResult result;
  result.status = wait_child(pid_);
  pid_ = -1;
  ::lseek(output_fd_, 0, SEEK_SET);
  result.output = read_all(output_fd_);
  ::close(output_fd_);
  output_fd_ = -1;
  return result;
}

std::string last_output_line(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last;
}

}  // namespace walvault
