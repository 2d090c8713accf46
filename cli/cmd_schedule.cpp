// `schedule install|list|remove [--dry-run] [--root DIR] [--init auto|systemd|cron]`,
// `schedule run JOB [--cron]` (what the units and cron lines run) and
// `notify --unit U [--log FILE]` (what a failed job's OnFailure= unit runs).
// The text of every file is schedule.h's; this file reads the config, writes
// and removes the files, talks to systemctl and journalctl, and runs the
// jobs' steps and the notify-command.
#include <sys/stat.h>
#include <unistd.h>

#include <pwd.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string_view>

#include "cli/backup_set.h"
#include "cli/command.h"
#include "cli/schedule.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/process.h"
#include "core/relative_path.h"
#include "core/time_util.h"

namespace walvault::cli {

namespace {

namespace fs = std::filesystem;

struct ScheduleArgs {
  bool dry_run = false;
  std::string root = "/";
  std::string init = "auto";
  std::string job;
  bool cron = false;
};

struct NotifyArgs {
  std::string unit;
  std::string log;
};

// The config file in use, absolute, which must exist: every job reads its
// settings (and secrets) from it at run time, a backup set its volumes.
std::string required_config(const Context& ctx, const std::string& verb) {
  const std::string& config = ctx.globals.config;
  if (config.empty() || ::access(config.c_str(), R_OK) != 0)
    throw Error(ErrorCode::kUsage, verb + ": the config file " + printable_name(config) +
                                       " cannot be read; " + verb +
                                       " takes its settings from it (--config)");
  return absolute_location(config);
}

// The [schedule] and [volume.NAME] sections, read again from the file: the
// app's parse keeps only what its options take.
ScheduleSettings parse_settings_file(const std::string& config) {
  std::ifstream in(config);
  if (!in) throw Error(ErrorCode::kIo, "reading " + config + ": " + std::strerror(errno));
  ScheduleSettings settings = schedule_from_config(CLI::ConfigINI().from_config(in));
  // The INI reader ends a value at ';' or '#', even inside quotes: a
  // notify-command holding one would silently run its first part only.
  in.clear();
  in.seekg(0);
  for (std::string line; std::getline(in, line);) {
    const std::size_t eq = line.find('=');
    if (line.starts_with("notify-command") && eq != std::string::npos &&
        line.find_first_of(";#", eq) != std::string::npos)
      throw Error(ErrorCode::kUsage,
                  "config file [schedule] notify-command: ';' and '#' start a comment in the "
                  "config file; put the command in a script and name the script");
  }
  return settings;
}

// parse_settings_file, a warning when others can read the file, and the
// schedule's user filled in.
ScheduleSettings load_settings(const std::string& config) {
  ScheduleSettings settings = parse_settings_file(config);
  struct stat st {};
  if (::stat(config.c_str(), &st) != 0) throw_errno("stat " + config);
  if ((st.st_mode & 077) != 0)
    std::cerr << "walvault: warning: " << config
              << " is readable by other users; it holds the jobs' secrets (chmod 0600)\n";
  if (settings.user.empty()) {
    const passwd* pw = ::getpwuid(st.st_uid);
    if (pw == nullptr)
      throw Error(ErrorCode::kUsage,
                  "the owner of " + config + " has no account name; set [schedule] user");
    settings.user = pw->pw_name;
  }
  return settings;
}

bool systemd_running() { return ::access("/run/systemd/system", F_OK) == 0; }

bool use_systemd(const ScheduleArgs& args) {
  if (args.init == "systemd") return true;
  if (args.init == "cron") return false;
  return systemd_running();
}

// Only the real root's systemd is told about units (daemon-reload, enable).
bool live_systemd(const ScheduleArgs& args) {
  return use_systemd(args) && fs::equivalent(args.root, "/") && systemd_running();
}

std::string under_root(const ScheduleArgs& args, const std::string& relative) {
  return (fs::path(args.root) / relative).string();
}

// Runs a program found on PATH (systemctl, journalctl); its result.
ProgramResult run_tool(std::vector<std::string> argv, const std::string& stdin_path = "") {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/sbin", "/sbin"}) {
    const std::string candidate = std::string(dir) + "/" + argv[0];
    if (::access(candidate.c_str(), X_OK) == 0) {
      argv[0] = candidate;
      ProgramRun run{argv, {true, {}, {}}, std::nullopt, "", stdin_path};
      return run_program(run);
    }
  }
  return {127, argv[0] + ": not found\n"};
}

void systemctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"systemctl"};
  argv.insert(argv.end(), args.begin(), args.end());
  const ProgramResult r = run_tool(argv);
  std::cout << r.output;
  if (r.status != 0)
    throw Error(ErrorCode::kIo, "systemctl " + args.front() + " exited with status " +
                                    std::to_string(r.status) + ": " + last_output_line(r.output));
}

// Every file a schedule may have written under the root, in a stable order.
std::vector<std::string> installed_files(const ScheduleArgs& args) {
  std::vector<std::string> found;
  const fs::path dir = under_root(args, kSystemdDir);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("walvault-") && (name.ends_with(".service") || name.ends_with(".timer")))
      found.push_back(std::string(kSystemdDir) + "/" + name);
  }
  std::sort(found.begin(), found.end());
  if (fs::exists(under_root(args, kCronFile))) found.push_back(kCronFile);
  return found;
}

std::vector<std::string> timer_names(const std::vector<std::string>& files) {
  std::vector<std::string> timers;
  for (const std::string& f : files)
    if (f.ends_with(".timer")) timers.push_back(base_name(f));
  return timers;
}

int run_install(const Context& ctx, const ScheduleArgs& args) {
  const std::string config = required_config(ctx, "schedule install");
  const ScheduleSettings settings = load_settings(config);
  const UnitContext unit_context{this_binary(), config};
  const bool systemd = use_systemd(args);
  const std::vector<UnitFile> files = systemd ? systemd_units(settings, unit_context)
                                              : std::vector{cron_file(settings, unit_context)};
  if (args.dry_run) {
    for (const UnitFile& f : files) std::cout << "# " << under_root(args, f.path) << "\n" << f.text;
    return 0;
  }
  // Units of jobs now off (or of the other init system) go first.
  std::vector<std::string> stale;
  for (const std::string& old : installed_files(args)) {
    bool kept = false;
    for (const UnitFile& f : files) kept = kept || f.path == old;
    if (!kept) stale.push_back(old);
  }
  if (live_systemd(args) && !timer_names(stale).empty()) {
    std::vector<std::string> disable = {"disable", "--now"};
    for (const std::string& t : timer_names(stale)) disable.push_back(t);
    systemctl(disable);
  }
  for (const std::string& old : stale) {
    fs::remove(under_root(args, old));
    std::cout << "removed " << under_root(args, old) << "\n";
  }
  for (const UnitFile& f : files) {
    const std::string path = under_root(args, f.path);
    make_dirs(dir_name(path));
    ::chmod(dir_name(path).c_str(), 0755);
    write_file_atomic(path, as_bytes(f.text), 0644);
    std::cout << "wrote " << path << "\n";
  }
  if (!systemd) {
    const std::string log_dir = under_root(args, settings.log_dir.substr(1));
    make_dirs(log_dir);
    if (const auto user = find_user(settings.user); user && ::geteuid() == 0)
      if (::chown(log_dir.c_str(), user->uid, user->gid) != 0) throw_errno("chown " + log_dir);
    std::cout << "cron runs append to " << log_dir << "/JOB.log\n";
  } else if (live_systemd(args)) {
    systemctl({"daemon-reload"});
    std::vector<std::string> enable = {"enable", "--now"};
    for (const UnitFile& f : files)
      if (f.path.ends_with(".timer")) enable.push_back(base_name(f.path));
    systemctl(enable);
  } else {
    std::cout << "not the running system's systemd: enable the timers there with "
                 "`systemctl enable --now walvault-JOB.timer`\n";
  }
  return 0;
}

void list_calendar_lines(const std::string& path) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("OnCalendar=") || line.starts_with("Description=") ||
        (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))))
      std::cout << "  " << line << "\n";
}

int run_list(const ScheduleArgs& args) {
  const std::vector<std::string> files = installed_files(args);
  if (files.empty()) {
    std::cout << "no walvault schedule under " << args.root << "\n";
    return 0;
  }
  for (const std::string& f : files) {
    std::cout << under_root(args, f) << "\n";
    if (!f.ends_with(".service")) list_calendar_lines(under_root(args, f));
  }
  if (live_systemd(args)) systemctl({"list-timers", "--all", "--no-pager", "walvault-*"});
  return 0;
}

int run_remove(const ScheduleArgs& args) {
  const std::vector<std::string> files = installed_files(args);
  if (files.empty()) {
    std::cout << "no walvault schedule under " << args.root << "\n";
    return 0;
  }
  if (!args.dry_run && live_systemd(args) && !timer_names(files).empty()) {
    std::vector<std::string> disable = {"disable", "--now"};
    for (const std::string& t : timer_names(files)) disable.push_back(t);
    systemctl(disable);
  }
  for (const std::string& f : files) {
    if (!args.dry_run) fs::remove(under_root(args, f));
    std::cout << (args.dry_run ? "would remove " : "removed ") << under_root(args, f) << "\n";
  }
  if (!args.dry_run && live_systemd(args)) systemctl({"daemon-reload"});
  return 0;
}

// Hands `text` to the notify-command on its stdin, or, without one, to stderr
// (the journal or cron's mail). Throws Error(kIo) when the command fails.
void deliver_notice(const ScheduleSettings& settings, const std::string& text) {
  if (settings.notify_command.empty()) {
    std::cerr << text;
    return;
  }
  char path[] = "/tmp/walvault-notice-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) throw_errno("creating a temp file for the notice");
  ::close(fd);
  ProgramResult r;
  try {
    write_file_atomic(path, as_bytes(text), 0600, Overwrite::kYes, Durability::kNone);
    r = run_program(
        {{"/bin/sh", "-c", settings.notify_command}, {true, {}, {}}, std::nullopt, "", path});
  } catch (...) {
    ::unlink(path);
    throw;
  }
  ::unlink(path);
  std::cout << r.output;
  if (r.status != 0)
    throw Error(ErrorCode::kIo, "notify-command exited with status " + std::to_string(r.status) +
                                    ": " + last_output_line(r.output));
}

std::string host_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

std::string failure_summary(const std::string& what, const std::string& detail) {
  return "walvault: " + what + " failed on " + host_name() + " at " +
         format_time_us(now_unix_us()) + (detail.empty() ? "" : " (" + detail + ")");
}

// Appends `text` to the cron log of `job`.
void append_cron_log(const ScheduleSettings& settings, const std::string& job,
                     const std::string& text) {
  const std::string path = settings.log_dir + "/" + job + ".log";
  std::ofstream out(path, std::ios::app);
  out << text;
  if (!out) throw Error(ErrorCode::kIo, "appending to " + path);
}

// " (why)" of a step's "walvault: error: why" line, "" without one: a
// backup set's names the part that failed.
std::string error_detail(const std::string& output) {
  constexpr std::string_view kPrefix = "walvault: error: ";
  std::string detail;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(kPrefix)) detail = " (" + line.substr(kPrefix.size()) + ")";
  return detail;
}

int run_job(const Context& ctx, const ScheduleArgs& args) {
  const std::string config = required_config(ctx, "schedule run");
  ScheduleSettings settings = load_settings(config);
  settings.retention = !ctx.config.retention.empty() || !ctx.config.files_retention.empty();
  std::string transcript;
  int failed_status = 0;
  std::string failed;
  for (const JobStep& step : job_steps(settings, args.job)) {
    std::string shown;
    for (const std::string& a : step.args) shown += (shown.empty() ? "" : " ") + a;
    if (step.maintenance && failed_status != 0) {
      transcript += "walvault schedule: " + shown + ": skipped, a part before it failed\n";
      continue;
    }
    std::vector<std::string> argv = {this_binary(), "--config", config};
    argv.insert(argv.end(), step.args.begin(), step.args.end());
    const std::int64_t start = now_unix_us();
    const ProgramResult r = run_program({argv, {true, {}, {}}, std::nullopt, "", ""});
    transcript += "walvault schedule: " + shown + "\n" + r.output;
    transcript += "walvault schedule: " + shown + ": " +
                  (r.status == 0 ? "ok" : "failed with exit status " + std::to_string(r.status)) +
                  " after " + std::to_string((now_unix_us() - start) / 1000000) + " s\n";
    if (r.status != 0 && failed_status == 0) failed_status = r.status;
    if (r.status != 0) failed += (failed.empty() ? "" : ", ") + shown + error_detail(r.output);
  }
  std::cout << transcript << std::flush;
  if (args.cron)
    append_cron_log(settings, args.job,
                    "== " + format_time_us(now_unix_us()) + " " + args.job + "\n" + transcript);
  if (failed_status == 0) return 0;
  std::cerr << "walvault: error: schedule run " << args.job << ": failed: " << failed << "\n";
  if (args.cron)
    deliver_notice(settings,
                   notice_text(failure_summary("scheduled " + args.job, "failed: " + failed),
                               transcript, settings.notify_lines));
  return failed_status;
}

// systemd (251+) tells an OnFailure= unit about the unit that failed.
std::string monitor_variable(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

int run_notify(const Context& ctx, const NotifyArgs& args) {
  const ScheduleSettings settings = load_settings(required_config(ctx, "notify"));
  std::string detail = monitor_variable("MONITOR_SERVICE_RESULT");
  if (const std::string status = monitor_variable("MONITOR_EXIT_STATUS"); !status.empty())
    detail += (detail.empty() ? "" : ", ") + ("exit status " + status);
  std::string output;
  if (!args.log.empty()) {
    const auto bytes = read_file(args.log);
    if (!bytes) throw Error(ErrorCode::kNotFound, "notify --log: no file " + args.log);
    output = std::string(as_chars(*bytes));
  } else {
    const ProgramResult r = run_tool(journal_command(
        args.unit, monitor_variable("MONITOR_INVOCATION_ID"), settings.notify_lines));
    output = r.output;
    if (r.status != 0)
      output += "(journalctl exited with status " + std::to_string(r.status) + ")\n";
  }
  deliver_notice(settings,
                 notice_text(failure_summary(args.unit, detail), output, settings.notify_lines));
  return 0;
}

void add_target_options(CLI::App& command, ScheduleArgs& args) {
  command
      .add_option("--root", args.root, "write under this directory instead of / (tests, images)")
      ->check(CLI::ExistingDirectory);
  command.add_option("--init", args.init, "auto (systemd when it runs, else cron), systemd, cron")
      ->check(CLI::IsMember({"auto", "systemd", "cron"}));
}

}  // namespace

ScheduleSettings read_schedule_settings(const Context& ctx, const std::string& verb) {
  return parse_settings_file(required_config(ctx, verb));
}

void register_schedule(CLI::App& app, Verbs& verbs) {
  auto args = std::make_shared<ScheduleArgs>();
  CLI::App* schedule =
      app.add_subcommand("schedule", "run backup, verify and drill on a timer ([schedule] config)");
  schedule->require_subcommand(1);
  CLI::App* install =
      schedule->add_subcommand("install", "write systemd timers (or a cron file) and enable them");
  install->add_flag("--dry-run", args->dry_run, "print the files instead of writing them");
  add_target_options(*install, *args);
  CLI::App* list = schedule->add_subcommand("list", "the installed units and when they run");
  add_target_options(*list, *args);
  CLI::App* remove = schedule->add_subcommand("remove", "disable and delete the installed units");
  remove->add_flag("--dry-run", args->dry_run, "say what would be removed");
  add_target_options(*remove, *args);
  CLI::App* run = schedule->add_subcommand("run", "run one scheduled job now (what a timer runs)");
  run->add_option("job", args->job, "backup (database, volumes, expire, gc), verify or drill")
      ->required();
  run->add_flag("--cron", args->cron, "append to log-dir/JOB.log and notify on failure");
  verbs.push_back({install, [args](const Context& c) { return run_install(c, *args); }});
  verbs.push_back({list, [args](const Context&) { return run_list(*args); }});
  verbs.push_back({remove, [args](const Context&) { return run_remove(*args); }});
  verbs.push_back({run, [args](const Context& c) { return run_job(c, *args); }});

  auto notify_args = std::make_shared<NotifyArgs>();
  CLI::App* notify = app.add_subcommand(
      "notify", "send a failed unit's summary and last lines to [schedule] notify-command");
  notify->add_option("--unit", notify_args->unit, "the unit that failed")->required();
  notify->add_option("--log", notify_args->log,
                     "take the last lines from this file, not the journal");
  verbs.push_back(
      {notify, [notify_args](const Context& c) { return run_notify(c, *notify_args); }});
}

}  // namespace walvault::cli
