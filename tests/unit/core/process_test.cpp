// core/process.h: which variables a child gets, and running a program with
// its output, exit status and working directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>

#include "core/error.h"
#include "core/process.h"
#include "support/pg_cluster.h"

namespace walvault {
namespace {

bool has(const std::vector<std::string>& env, const std::string& variable) {
  return std::find(env.begin(), env.end(), variable) != env.end();
}

TEST(ChildEnvironment, InheritsOursAndSetReplaces) {
  const char* parent[] = {"HOME=/root", "PATH=/ours", "WALVAULT_PASSPHRASE=x", nullptr};
  ChildEnvironment rule;
  rule.set = {{"PATH", "/theirs"}, {"PGPORT", "5433"}};
  const std::vector<std::string> env = child_environment(parent, rule);
  EXPECT_EQ(env, (std::vector<std::string>{"HOME=/root", "WALVAULT_PASSPHRASE=x", "PATH=/theirs",
                                           "PGPORT=5433"}));
}

TEST(ChildEnvironment, CleanKeepsOnlyThePrefixes) {
  const char* parent[] = {"HOME=/root", "AWS_ACCESS_KEY_ID=k", "WALVAULT_PASSPHRASE=x",
                          "PATH=/ours", "AWS_REGION=eu",       nullptr};
  ChildEnvironment rule;
  rule.inherit = false;
  rule.keep_prefixes = {"AWS_"};
  rule.set = {{"PATH", "/bin"}};
  const std::vector<std::string> env = child_environment(parent, rule);
  EXPECT_EQ(env, (std::vector<std::string>{"AWS_ACCESS_KEY_ID=k", "AWS_REGION=eu", "PATH=/bin"}));
  EXPECT_FALSE(has(env, "WALVAULT_PASSPHRASE=x"));
}

TEST(RunProgram, CapturesOutputAndStatus) {
  ProgramRun run{{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, {}, std::nullopt, ""};
  const ProgramResult r = run_program(run);
  EXPECT_EQ(r.status, 3);
  EXPECT_EQ(r.output, "out\nerr\n");
  EXPECT_EQ(last_output_line(r.output), "err");
}

TEST(RunProgram, SetsEnvironmentAndDirectory) {
  testing::TempDir dir("wv-process");
  ProgramRun run{{"/bin/sh", "-c", "echo \"$WV_TEST_VAR\"; pwd"}, {}, std::nullopt, dir.path()};
  run.environment.set = {{"WV_TEST_VAR", "given"}};
  const ProgramResult r = run_program(run);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "given\n" + dir.path() + "\n");
}

TEST(RunProgram, StdinIsTheGivenFileElseEmpty) {
  testing::TempDir dir("wv-process");
  const std::string input = dir.sub("input");
  {
    std::FILE* f = std::fopen(input.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("summary\nlast line\n", f);
    std::fclose(f);
  }
  ProgramRun run{{"/bin/cat"}, {}, std::nullopt, "", input};
  EXPECT_EQ(run_program(run).output, "summary\nlast line\n");
  run.stdin_path = "";
  EXPECT_EQ(run_program(run).output, "");
  run.stdin_path = dir.sub("missing");
  EXPECT_EQ(run_program(run).status, 126);
}

TEST(RunProgram, SignalAndMissingProgramAreStatuses) {
  EXPECT_EQ(run_program({{"/bin/sh", "-c", "kill -TERM $$"}, {}, std::nullopt, ""}).status,
            128 + 15);
  const ProgramResult missing = run_program({{"/no/such/program"}, {}, std::nullopt, ""});
  EXPECT_EQ(missing.status, 127);
  EXPECT_NE(missing.output.find("cannot run /no/such/program"), std::string::npos)
      << missing.output;
  const ProgramResult no_dir = run_program({{"/bin/true"}, {}, std::nullopt, "/no/such/dir"});
  EXPECT_EQ(no_dir.status, 126);
}

TEST(RunProgram, RunsAsAnotherUserWhenRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  const std::optional<UserIdentity> user = find_user("postgres");
  if (!user) GTEST_SKIP() << "no postgres user";
  const ProgramResult r = run_program({{"/usr/bin/id", "-u"}, {}, user, "/"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, std::to_string(user->uid) + "\n");
}

TEST(FindUser, UnknownIsNone) { EXPECT_FALSE(find_user("no-such-user-wv").has_value()); }

TEST(LastOutputLine, SkipsBlankLines) {
  EXPECT_EQ(last_output_line("first\nlast\n  \n\r\n"), "last");
  EXPECT_EQ(last_output_line(""), "");
}

// We read its stdout as it is written; its stderr comes back from wait().
TEST(StreamingProgram, ReadsStdoutAndCollectsStderr) {
  ProgramRun run;
  run.argv = {"/bin/sh", "-c", "head -c 300000 /dev/zero; echo oops >&2; exit 3"};
  StreamingProgram program(run, StreamingProgram::Pipe::kStdout);
  std::size_t total = 0;
  char buffer[65536];
  for (ssize_t n; (n = ::read(program.fd(), buffer, sizeof buffer)) > 0;)
    total += static_cast<std::size_t>(n);
  const ProgramResult result = program.wait();
  EXPECT_EQ(total, 300000u);
  EXPECT_EQ(result.status, 3);
  EXPECT_EQ(result.output, "oops\n");
}

// We feed its stdin; its stdout and stderr come back from wait(). A program
// that stops reading early gives EPIPE (SIGPIPE ignored), not our death.
TEST(StreamingProgram, FeedsStdinAndSeesAReaderThatStops) {
  ProgramRun run;
  run.argv = {"/bin/sh", "-c", "wc -c"};
  {
    StreamingProgram program(run, StreamingProgram::Pipe::kStdin);
    const std::string data(100000, 'x');
    ASSERT_EQ(::write(program.fd(), data.data(), data.size()), 100000);
    const ProgramResult result = program.wait();
    EXPECT_EQ(result.status, 0);
    EXPECT_EQ(result.output, "100000\n");
  }
  ::signal(SIGPIPE, SIG_IGN);
  run.argv = {"/bin/sh", "-c", "head -c 10 >/dev/null"};
  StreamingProgram early(run, StreamingProgram::Pipe::kStdin);
  const std::string block(1 << 20, 'y');
  ssize_t n = 0;
  for (int i = 0; i < 64 && n >= 0; ++i) n = ::write(early.fd(), block.data(), block.size());
  EXPECT_EQ(n, -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_EQ(early.wait().status, 0);
}

// Not waited for: killed and reaped by the destructor.
TEST(StreamingProgram, DestructorKillsAProgramNotWaitedFor) {
  ProgramRun run;
  run.argv = {"/bin/sleep", "30"};
  const auto start = std::chrono::steady_clock::now();
  { StreamingProgram program(run, StreamingProgram::Pipe::kStdin); }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace walvault
