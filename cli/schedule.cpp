#include "cli/schedule.h"

#include <array>
#include <cctype>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "cli/command.h"
#include "core/error.h"
#include "core/relative_path.h"
#include "files/snapshot_record.h"

namespace walvault::cli {

namespace {

constexpr std::array<const char*, 7> kDays = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
constexpr std::array<const char*, 7> kSystemdDays = {"Sun", "Mon", "Tue", "Wed",
                                                     "Thu", "Fri", "Sat"};
constexpr int kLastMonthday = 28;
constexpr int kMaxNotifyLines = 10000;

std::string two_digits(int n) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d", n);
  return buf;
}

std::string clock(const Calendar& c) { return two_digits(c.hour) + ":" + two_digits(c.minute); }

// "HH:MM" into `c`; false when it is not a time of day.
bool parse_clock(const std::string& text, Calendar& c) {
  int hour = -1, minute = -1;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%d:%d%c", &hour, &minute, &tail) != 2) return false;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59) return false;
  c.hour = hour;
  c.minute = minute;
  return true;
}

bool parse_bool(const std::string& where, const std::string& value) {
  if (value == "yes" || value == "true" || value == "on" || value == "1") return true;
  if (value == "no" || value == "false" || value == "off" || value == "0") return false;
  throw Error(ErrorCode::kUsage, where + ": '" + value + "' is neither yes nor no");
}

// systemd and cron both give '%' a meaning, and a unit line ends at a
// newline: a path with either would run something else than it says.
const std::string& unit_safe(const std::string& what, const std::string& value) {
  if (value.find_first_of("%\n\r") != std::string::npos)
    throw Error(ErrorCode::kUsage, what + " " + printable_name(value) +
                                       " holds '%' or a line break, which unit and cron files "
                                       "cannot carry as written");
  return value;
}

// An ExecStart= argument: systemd splits on blanks and honours double quotes.
std::string systemd_arg(const std::string& arg) {
  if (arg.find_first_of(" \t\"'\\;$") == std::string::npos) return arg;
  std::string out = "\"";
  for (char c : arg) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string run_command(const UnitContext& context, const std::string& job, bool systemd) {
  const auto quote = systemd ? systemd_arg : shell_quote;
  return quote(unit_safe("the walvault binary", context.binary)) + " --config " +
         quote(unit_safe("the config file", context.config)) + " schedule run " + job;
}

const std::string kGeneratedBy =
    "# Written by `walvault schedule install` from the config's [schedule] section:\n"
    "# change the config and install again rather than editing this file.\n";

std::string service_unit(const ScheduledJob& job, const ScheduleSettings& settings,
                         const UnitContext& context) {
  std::ostringstream out;
  out << kGeneratedBy << "[Unit]\n"
      << "Description=walvault scheduled " << job.name << "\n"
      << "Documentation=man:walvault(1)\n"
      << "After=network-online.target postgresql.service\n"
      << "Wants=network-online.target\n"
      << "OnFailure=walvault-notify@%n.service\n\n"
      << "[Service]\n"
      << "Type=oneshot\n"
      << "User=" << settings.user << "\n"
      << "ExecStart=" << run_command(context, job.name, true) << "\n"
      << "Nice=10\n"
      << "IOSchedulingClass=idle\n";
  return out.str();
}

std::string timer_unit(const ScheduledJob& job) {
  std::ostringstream out;
  out << kGeneratedBy << "[Unit]\n"
      << "Description=walvault scheduled " << job.name << ", " << describe(job.calendar) << "\n\n"
      << "[Timer]\n"
      << "OnCalendar=" << on_calendar(job.calendar) << "\n"
      << "Persistent=true\n\n"
      << "[Install]\n"
      << "WantedBy=timers.target\n";
  return out.str();
}

// The notify unit runs as the jobs' user; the journal group lets it read
// the failed unit's lines.
std::string notify_unit(const ScheduleSettings& settings, const UnitContext& context) {
  std::ostringstream out;
  out << kGeneratedBy << "[Unit]\n"
      << "Description=walvault failure notice for %i\n"
      << "Documentation=man:walvault(1)\n\n"
      << "[Service]\n"
      << "Type=oneshot\n"
      << "User=" << settings.user << "\n"
      << "SupplementaryGroups=systemd-journal\n"
      << "ExecStart=" << systemd_arg(context.binary) << " --config " << systemd_arg(context.config)
      << " notify --unit %i\n";
  return out.str();
}

void set_schedule_key(ScheduleSettings& s, const std::string& name, const std::string& value) {
  const std::string where = "config file [schedule] " + name;
  for (ScheduledJob& job : s.jobs) {
    if (job.name == name) {
      job.calendar = parse_calendar(where, value);
      return;
    }
  }
  if (name == "user") {
    if (value.empty() ||
        value.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != std::string::npos)
      throw Error(ErrorCode::kUsage, where + ": not an account name");
    s.user = value;
  } else if (name == "database") {
    s.database = parse_bool(where, value);
  } else if (name == "verify-read-data") {
    s.verify_read_data = parse_bool(where, value);
  } else if (name == "notify-command") {
    s.notify_command = value;
  } else if (name == "notify-lines") {
    try {
      std::size_t used = 0;
      s.notify_lines = std::stoi(value, &used);
      if (used != value.size() || s.notify_lines < 1 || s.notify_lines > kMaxNotifyLines)
        throw std::invalid_argument(value);
    } catch (const std::logic_error&) {
      throw Error(ErrorCode::kUsage, where + ": not a number of lines from 1 to 10000");
    }
  } else if (name == "log-dir") {
    if (!value.starts_with("/")) throw Error(ErrorCode::kUsage, where + ": not an absolute path");
    s.log_dir = value;
  } else {
    throw Error(ErrorCode::kUsage, "config file [schedule]: unknown key " + name);
  }
}

void add_volume(ScheduleSettings& s, const CLI::ConfigItem& item) {
  const std::string& volume = item.parents.size() == 2 ? item.parents[1] : "";
  const bool named = item.parents.size() == 2 && !files::volume_problem(volume);
  const std::string where =
      "config file [volume." + (named ? volume : printable_name(volume)) + "]";
  if (!named)
    throw Error(ErrorCode::kUsage, where + ": not a volume name (sections are [volume.NAME])");
  if (item.name != "path") throw Error(ErrorCode::kUsage, where + ": unknown key " + item.name);
  if (item.inputs.size() != 1 || !item.inputs.front().starts_with("/"))
    throw Error(ErrorCode::kUsage, where + " path: one absolute directory");
  for (const ScheduledVolume& v : s.volumes)
    if (v.name == volume) throw Error(ErrorCode::kUsage, where + " path is given twice");
  s.volumes.push_back({volume, item.inputs.front()});
}

}  // namespace

Calendar parse_calendar(const std::string& key, const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  Calendar c;
  const auto refuse = [&] {
    return Error(ErrorCode::kUsage, key + ": '" + text +
                                        "' is not 'daily HH:MM', 'weekly DAY HH:MM', "
                                        "'monthly N HH:MM' (N 1..28) or 'off'");
  };
  if (words.size() == 1 && words[0] == "off") return c;
  if (words.size() == 2 && words[0] == "daily") {
    c.every = Calendar::Every::kDay;
  } else if (words.size() == 3 && words[0] == "weekly") {
    c.every = Calendar::Every::kWeek;
    c.weekday = -1;
    for (int d = 0; d < static_cast<int>(kDays.size()); ++d) {
      std::string day = words[1];
      for (char& ch : day) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (day.substr(0, 3) == kDays[static_cast<std::size_t>(d)] && day.size() >= 3) c.weekday = d;
    }
    if (c.weekday < 0) throw refuse();
  } else if (words.size() == 3 && words[0] == "monthly") {
    c.every = Calendar::Every::kMonth;
    if (words[1].find_first_not_of("0123456789") != std::string::npos || words[1].size() > 2)
      throw refuse();
    c.monthday = std::stoi(words[1]);
    if (c.monthday < 1 || c.monthday > kLastMonthday) throw refuse();
  } else {
    throw refuse();
  }
  if (!parse_clock(words.back(), c)) throw refuse();
  return c;
}

std::string on_calendar(const Calendar& c) {
  const std::string time = " " + clock(c) + ":00";
  switch (c.every) {
    case Calendar::Every::kDay:
      return "*-*-*" + time;
    case Calendar::Every::kWeek:
      return std::string(kSystemdDays[static_cast<std::size_t>(c.weekday)]) + " *-*-*" + time;
    case Calendar::Every::kMonth:
      return "*-*-" + two_digits(c.monthday) + time;
    case Calendar::Every::kOff:
      break;
  }
  throw Error(ErrorCode::kInternal, "on_calendar of a job that is off");
}

std::string cron_fields(const Calendar& c) {
  const std::string time = std::to_string(c.minute) + " " + std::to_string(c.hour) + " ";
  switch (c.every) {
    case Calendar::Every::kDay:
      return time + "* * *";
    case Calendar::Every::kWeek:
      return time + "* * " + std::to_string(c.weekday);
    case Calendar::Every::kMonth:
      return time + std::to_string(c.monthday) + " * *";
    case Calendar::Every::kOff:
      break;
  }
  throw Error(ErrorCode::kInternal, "cron_fields of a job that is off");
}

std::string describe(const Calendar& c) {
  switch (c.every) {
    case Calendar::Every::kDay:
      return "daily at " + clock(c);
    case Calendar::Every::kWeek:
      return std::string("weekly on ") + kSystemdDays[static_cast<std::size_t>(c.weekday)] +
             " at " + clock(c);
    case Calendar::Every::kMonth:
      return "monthly on day " + std::to_string(c.monthday) + " at " + clock(c);
    case Calendar::Every::kOff:
      break;
  }
  return "off";
}

ScheduleSettings schedule_from_config(const std::vector<CLI::ConfigItem>& items) {
  ScheduleSettings s;
  for (const CLI::ConfigItem& item : items) {
    if (item.parents.empty() || item.name == "++" || item.name == "--") continue;
    if (item.parents.front() == "volume") {
      add_volume(s, item);
    } else if (item.parents.front() == "schedule") {
      const std::string where = "config file [schedule] " + item.name;
      if (item.parents.size() != 1) throw Error(ErrorCode::kUsage, where + ": no subsections");
      // The INI reader splits an unquoted value at blanks: a calendar's words
      // are joined again, anything else is one quoted value.
      std::string value;
      for (const std::string& word : item.inputs) value += (value.empty() ? "" : " ") + word;
      if (item.inputs.size() != 1 && !find_job(s, item.name))
        throw Error(ErrorCode::kUsage,
                    where + " takes one value: quote it (" + item.name + " = \"...\")");
      set_schedule_key(s, item.name, value);
    }
  }
  return s;
}

const ScheduledJob* find_job(const ScheduleSettings& settings, const std::string& name) {
  for (const ScheduledJob& job : settings.jobs)
    if (job.name == name) return &job;
  return nullptr;
}

std::string unit_stem(const std::string& job) { return "walvault-" + job; }

std::vector<UnitFile> systemd_units(const ScheduleSettings& settings, const UnitContext& context) {
  std::vector<UnitFile> units;
  const std::string dir = std::string(kSystemdDir) + "/";
  for (const ScheduledJob& job : settings.jobs) {
    if (job.calendar.every == Calendar::Every::kOff) continue;
    units.push_back({dir + unit_stem(job.name) + ".service", service_unit(job, settings, context)});
    units.push_back({dir + unit_stem(job.name) + ".timer", timer_unit(job)});
  }
  units.push_back({dir + kNotifyUnit, notify_unit(settings, context)});
  return units;
}

UnitFile cron_file(const ScheduleSettings& settings, const UnitContext& context) {
  std::ostringstream out;
  out << kGeneratedBy << "# A failed run appends to " << settings.log_dir
      << "/JOB.log and calls notify-command itself.\n"
      << "SHELL=/bin/sh\n"
      << "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n";
  for (const ScheduledJob& job : settings.jobs) {
    if (job.calendar.every == Calendar::Every::kOff) continue;
    out << cron_fields(job.calendar) << " " << settings.user << " "
        << run_command(context, job.name, false) << " --cron\n";
  }
  return {kCronFile, out.str()};
}

std::vector<JobStep> job_steps(const ScheduleSettings& settings, const std::string& job) {
  std::vector<JobStep> steps;
  if (job == "backup") {
    if (settings.database || !settings.volumes.empty())
      steps.push_back({{"backup", "--all"}, false});
    if (settings.retention) steps.push_back({{"expire"}, true});
    steps.push_back({{"gc"}, true});
  } else if (job == "verify") {
    steps.push_back({settings.verify_read_data ? std::vector<std::string>{"verify", "--read-data"}
                                               : std::vector<std::string>{"verify"},
                     false});
  } else if (job == "drill") {
    steps.push_back({{"drill"}, false});
  } else {
    throw Error(ErrorCode::kUsage,
                "schedule run: unknown job '" + printable_name(job) + "' (backup, verify, drill)");
  }
  return steps;
}

std::string notice_text(const std::string& summary, const std::string& output, int lines) {
  std::vector<std::string> kept;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) kept.push_back(line);
  std::string text = summary + "\n";
  const std::size_t first = kept.size() > static_cast<std::size_t>(lines)
                                ? kept.size() - static_cast<std::size_t>(lines)
                                : 0;
  for (std::size_t i = first; i < kept.size(); ++i) text += kept[i] + "\n";
  return text;
}

std::vector<std::string> journal_command(const std::string& unit, const std::string& invocation_id,
                                         int lines) {
  std::vector<std::string> argv = {"journalctl", "--no-pager",         "--quiet", "-o", "short-iso",
                                   "-n",         std::to_string(lines)};
  if (!invocation_id.empty())
    argv.push_back("_SYSTEMD_INVOCATION_ID=" + invocation_id);
  else
    argv.insert(argv.end(), {"-u", unit});
  return argv;
}

}  // namespace walvault::cli
