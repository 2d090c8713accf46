#include "core/process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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

// In the forked child: only async-signal-safe calls until execve.
[[noreturn]] void exec_child(const ProgramRun& run, int out_fd, char* const* args,
                             char* const* envp) {
  ::dup2(out_fd, 1);
  ::dup2(out_fd, 2);
  const char* input = run.stdin_path.empty() ? "/dev/null" : run.stdin_path.c_str();
  const int in_fd = ::open(input, O_RDONLY);
  if (in_fd < 0) {
    std::fprintf(stderr, "cannot open %s: %s\n", input, std::strerror(errno));
    ::_exit(126);
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

ProgramResult run_program(const ProgramRun& run) {
  std::vector<std::string> env_strings = child_environment(environ, run.environment);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (const auto& a : run.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("running " + run.argv.at(0) + ": pipe");
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw_errno("running " + run.argv.at(0) + ": fork", err);
  }
  if (pid == 0) exec_child(run, pipe_fds[1], args.data(), envp.data());
  ::close(pipe_fds[1]);
  ProgramResult result;
  result.output = read_all(pipe_fds[0]);
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
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
