// Running another program and waiting for it: fork and exec without a shell,
// optionally as another (unprivileged) user and in another directory, with an
// environment built from ours by a stated rule, stdout and stderr captured
// together. The drill runs pg_ctl, pg_verifybackup and the restore_command as
// the server's user through it (pg/server_control.h), and its check script.
// StreamingProgram is the same fork/exec with one pipe held open while the
// program runs: `dump` reads pg_dump's stdout, `dump restore` feeds
// pg_restore's stdin.
//
// child_environment() is pure (unit-tested); run_program() owns the child for
// its whole life: it returns only after the child has exited and been reaped.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace walvault {

// An account of this system, to run a program as.
struct UserIdentity {
  uid_t uid = 0;
  gid_t gid = 0;  // its primary group; the supplementary ones come from initgroups()
  std::string name;
};

// The account called `name`; std::nullopt when there is none.
std::optional<UserIdentity> find_user(const std::string& name);

// Which of our variables the child gets, and what is added.
struct ChildEnvironment {
  // true: all of ours; false: only those whose name starts with one of `keep_prefixes`.
  bool inherit = true;
  std::vector<std::string> keep_prefixes;
  // Set in the child, replacing a variable of ours of the same name.
  std::map<std::string, std::string> set;
};

// The child's "NAME=value" strings: the variables of `parent` (an environ-style
// array ending in nullptr) that `rule` keeps and `set` does not replace, in
// their order, then those of `set` in name order.
std::vector<std::string> child_environment(const char* const* parent, const ChildEnvironment& rule);

struct ProgramRun {
  std::vector<std::string> argv;  // argv[0] is the program's path (no PATH search)
  ChildEnvironment environment;
  std::optional<UserIdentity> user;  // run as this user (we must be root); none: as we are
  std::string cwd;                   // "": our working directory
  std::string stdin_path;            // the child's stdin; "": /dev/null
};

struct ProgramResult {
  // The exit status; 128 + the signal when killed; 126 when the user or the
  // directory could not be taken and 127 when the program could not be
  // executed (the reason is then the output's last line).
  int status = 0;
  std::string output;  // stdout and stderr, interleaved as written
};

// Runs `run` with stdin on `stdin_path` (else /dev/null) and waits for it. Throws Error(kIo)
// only when the pipe or the fork fails; the program's own failure is its status.
ProgramResult run_program(const ProgramRun& run);

// A program started with one of its standard streams a pipe to us; its other
// output (stderr, and stdout too when we hold its stdin) is collected in an
// anonymous file and handed back by wait(). One owner, one thread.
class StreamingProgram {
 public:
  enum class Pipe {
    kStdout,  // we read its stdout (fd()); its stdin is stdin_path (else /dev/null)
    kStdin,   // we write its stdin (fd())
  };
  // Starts `run`. Throws Error(kIo) when the pipe, the file or the fork fails;
  // a program that cannot be executed exits 127 (see ProgramResult).
  StreamingProgram(const ProgramRun& run, Pipe pipe);
  // A program not waited for is killed (SIGKILL) and reaped.
  ~StreamingProgram();
  StreamingProgram(const StreamingProgram&) = delete;
  StreamingProgram& operator=(const StreamingProgram&) = delete;

  // Our end of the pipe; -1 after wait(). Writing into a program that has
  // exited fails with EPIPE only when SIGPIPE is ignored: the caller decides.
  int fd() const { return pipe_fd_; }
  // Closes our end (the program sees end of input, or a broken pipe), waits
  // for the program and returns its status and collected output.
  ProgramResult wait();

 private:
  pid_t pid_ = -1;
  int pipe_fd_ = -1;
  int output_fd_ = -1;
};

// The last line of `text` that is not blank, "" when there is none: what a
// failed program said last, for a one-line error message.
std::string last_output_line(const std::string& text);

}  // namespace walvault
