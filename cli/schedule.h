// The schedule's text: what `walvault schedule install` writes (systemd timer
// and service units, or a cron file where systemd is absent) and what
// `walvault notify` hands to the operator's notify-command. Pure functions
// over the [schedule] config section; cmd_schedule.cpp does the I/O.
//
// Three jobs, each `walvault --config C schedule run JOB` under a unit (or a
// cron line) of its own, as the schedule's user:
//   backup  the backup set (`backup --all`: the database backup and a
//           snapshot of every [volume.NAME] path), then expire and gc
//           (skipped when a part failed)
//   verify  `verify` (with --read-data when verify-read-data = yes)
//   drill   `drill` (its options from the config's [drill] section)
// Every option of those commands comes from the config file (CLI11 reads a
// [backup], [drill], ... section as that command's options), so no unit file
// and no argv holds a connection string or a secret: only the config path.
//
// The [schedule] section (every key optional):
//   user = NAME            the account the jobs run as (default: the config
//                          file's owner: the file is mode 0600, only its owner
//                          can read it)
//   backup = daily 02:00   when: `daily HH:MM`, `weekly DAY HH:MM` (DAY: mon
//   verify = weekly sun 04:00 .. sun), `monthly N HH:MM` (N: 1..28) or `off`
//   drill = monthly 1 05:00
//   database = yes         whether a backup set (`backup --all`, the backup
//                          job) takes a database backup (its options: the
//                          config's [backup] section)
//   verify-read-data = no
//   notify-command = ...   run by /bin/sh when a job fails; its stdin: one
//                          summary line, then the failing run's last lines
//   notify-lines = 40      how many of those lines
//   log-dir = /var/log/walvault  where cron runs append their output
// Every refusal is Error(kUsage) naming the key.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace walvault::cli {

// When a job runs; kOff: never.
struct Calendar {
  enum class Every { kOff, kDay, kWeek, kMonth };
  Every every = Every::kOff;
  int weekday = 0;   // kWeek: 0 = Sunday .. 6 = Saturday (cron's numbering)
  int monthday = 1;  // kMonth: 1..28 (every month has it)
  int hour = 0;
  int minute = 0;
};

// Parses `daily HH:MM`, `weekly DAY HH:MM`, `monthly N HH:MM` or `off`;
// Error(kUsage) naming `key` otherwise.
Calendar parse_calendar(const std::string& key, const std::string& text);
// systemd's OnCalendar= value ("*-*-* 02:00:00", "Sun *-*-* 04:00:00", "*-*-01 05:00:00").
std::string on_calendar(const Calendar& calendar);
// The five cron time fields ("0 2 * * *").
std::string cron_fields(const Calendar& calendar);
// "daily at 02:00", "weekly on Sun at 04:00", "monthly on day 1 at 05:00", "off".
std::string describe(const Calendar& calendar);

struct ScheduledJob {
  std::string name;  // backup, verify, drill
  Calendar calendar;
};

// A file-volume the backup job snapshots: [volume.NAME] path = DIR.
struct ScheduledVolume {
  std::string name;
  std::string path;
};

struct ScheduleSettings {
  std::string user;  // "": the config file's owner (cmd_schedule fills it in)
  std::vector<ScheduledJob> jobs = {{"backup", {Calendar::Every::kDay, 0, 1, 2, 0}},
                                    {"verify", {Calendar::Every::kWeek, 0, 1, 4, 0}},
                                    {"drill", {Calendar::Every::kMonth, 0, 1, 5, 0}}};
  bool database = true;
  bool retention = false;  // the config has retention rules: the backup job runs expire
  bool verify_read_data = false;
  std::string notify_command;
  int notify_lines = 40;
  std::string log_dir = "/var/log/walvault";
  std::vector<ScheduledVolume> volumes;  // in the config file's order
};

// The settings of the [schedule] and [volume.NAME] sections of a config
// file's items (CLI::ConfigINI's); other sections are ignored.
ScheduleSettings schedule_from_config(const std::vector<CLI::ConfigItem>& items);

// The job called `name`, or nullptr.
const ScheduledJob* find_job(const ScheduleSettings& settings, const std::string& name);

// What the generated files run: this binary, with this config file.
struct UnitContext {
  std::string binary;  // absolute
  std::string config;  // absolute
};

// A file to write: its path relative to the root ("etc/systemd/system/...") and text.
struct UnitFile {
  std::string path;
  std::string text;
};

inline constexpr char kSystemdDir[] = "etc/systemd/system";
inline constexpr char kCronFile[] = "etc/cron.d/walvault";
inline constexpr char kNotifyUnit[] = "walvault-notify@.service";

// "walvault-backup" for job "backup".
std::string unit_stem(const std::string& job);

// The systemd units of every job that is not off (walvault-JOB.service and
// .timer, OnFailure= walvault-notify@%n.service) and the notify template.
std::vector<UnitFile> systemd_units(const ScheduleSettings& settings, const UnitContext& context);

// The cron file: one line per job that is not off, `schedule run JOB --cron`.
UnitFile cron_file(const ScheduleSettings& settings, const UnitContext& context);

// The argv (after the binary) of the commands job `job` runs, in order.
// For backup: the backup set, `backup --all` (the database when database =
// yes, and every volume; cli/backup_set.h), then the maintenance steps
// expire (when the config has retention rules; expire refuses to run without
// any) and gc, marked by `maintenance`.
struct JobStep {
  std::vector<std::string> args;
  bool maintenance = false;  // skipped once a step before it failed
};
std::vector<JobStep> job_steps(const ScheduleSettings& settings, const std::string& job);

// The text a notify-command reads: `summary`, a newline, then the last
// `lines` lines of `output` that are not blank.
std::string notice_text(const std::string& summary, const std::string& output, int lines);

// The journalctl argv that prints a failed unit's last `lines` lines: of its
// failed run when `invocation_id` is known (systemd's $MONITOR_INVOCATION_ID),
// else of the unit.
std::vector<std::string> journal_command(const std::string& unit, const std::string& invocation_id,
                                         int lines);

}  // namespace walvault::cli
