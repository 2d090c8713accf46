// The schedule's generated text (cli/schedule.h): calendars, the [schedule]
// and [volume.NAME] sections, the systemd units and the cron file (what runs,
// when, as whom, what is called on failure, and that no secret is in them),
// a job's steps, the notice, and that the units the Debian package ships are
// the generator's output for the defaults.
#include "cli/schedule.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "support/error_code.h"

namespace walvault::cli {
namespace {

ScheduleSettings settings_of(const std::string& ini) {
  std::istringstream in(ini);
  return schedule_from_config(CLI::ConfigINI().from_config(in));
}

const UnitContext kPackaged{"/usr/bin/walvault", "/etc/walvault.conf"};

std::string text_of(const std::vector<UnitFile>& units, const std::string& name) {
  for (const UnitFile& u : units)
    if (u.path == std::string(kSystemdDir) + "/" + name) return u.text;
  ADD_FAILURE() << "no unit " << name;
  return "";
}

// The lines of `text` that start with `key=`.
std::vector<std::string> values(const std::string& text, const std::string& key) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(key + "=")) out.push_back(line.substr(key.size() + 1));
  return out;
}

TEST(ScheduleCalendar, ParsesEachFormIntoSystemdAndCron) {
  const Calendar daily = parse_calendar("k", "daily 02:00");
  EXPECT_EQ(on_calendar(daily), "*-*-* 02:00:00");
  EXPECT_EQ(cron_fields(daily), "0 2 * * *");
  const Calendar weekly = parse_calendar("k", "weekly Sunday 04:30");
  EXPECT_EQ(on_calendar(weekly), "Sun *-*-* 04:30:00");
  EXPECT_EQ(cron_fields(weekly), "30 4 * * 0");
  const Calendar sat = parse_calendar("k", "weekly sat 23:59");
  EXPECT_EQ(cron_fields(sat), "59 23 * * 6");
  const Calendar monthly = parse_calendar("k", "monthly 28 05:07");
  EXPECT_EQ(on_calendar(monthly), "*-*-28 05:07:00");
  EXPECT_EQ(cron_fields(monthly), "7 5 28 * *");
  EXPECT_EQ(describe(monthly), "monthly on day 28 at 05:07");
  EXPECT_EQ(parse_calendar("k", "off").every, Calendar::Every::kOff);
}

TEST(ScheduleCalendar, RefusesWhatIsNotACalendar) {
  for (const char* bad : {"", "daily", "daily 24:00", "daily 02:60", "daily 2", "weekly 02:00",
                          "weekly funday 02:00", "monthly 29 02:00", "monthly 0 02:00",
                          "hourly 02:00", "daily 02:00 extra", "02:00", "*-*-* 02:00:00"}) {
    try {
      parse_calendar("config file [schedule] backup", bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUsage);
      EXPECT_NE(std::string(e.what()).find("[schedule] backup"), std::string::npos) << e.what();
    }
  }
}

TEST(ScheduleConfig, ReadsScheduleAndVolumeSections) {
  const ScheduleSettings s = settings_of(
      "repo = /srv/repo\n"
      "[schedule]\n"
      "user = backup-user\n"
      "backup = daily 01:15\n"
      "verify = off\n"
      "database = no\n"
      "notify-command = \"mail -s 'walvault failed' root\"\n"
      "notify-lines = 7\n"
      "[volume.app_data]\npath = /srv/app\n"
      "[volume.uploads]\npath = /srv/uploads\n"
      "[retention]\nkeep-daily = 30\n");
  EXPECT_EQ(s.user, "backup-user");
  EXPECT_EQ(on_calendar(find_job(s, "backup")->calendar), "*-*-* 01:15:00");
  EXPECT_EQ(find_job(s, "verify")->calendar.every, Calendar::Every::kOff);
  EXPECT_EQ(on_calendar(find_job(s, "drill")->calendar), "*-*-01 05:00:00");  // the default
  EXPECT_FALSE(s.database);
  EXPECT_EQ(s.notify_command, "mail -s 'walvault failed' root");
  EXPECT_EQ(s.notify_lines, 7);
  ASSERT_EQ(s.volumes.size(), 2u);
  EXPECT_EQ(s.volumes[0].name, "app_data");
  EXPECT_EQ(s.volumes[1].path, "/srv/uploads");
}

TEST(ScheduleConfig, RefusesBadKeysNamingThem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[schedule]\nbogus = 1\n", "unknown key bogus"},
      {"[schedule]\nuser = \"a b\"\n", "[schedule] user"},
      {"[schedule]\nnotify-command = mail root\n", "quote it"},
      {"[schedule]\nnotify-lines = many\n", "notify-lines"},
      {"[schedule]\nlog-dir = relative\n", "log-dir"},
      {"[schedule]\ndatabase = maybe\n", "database"},
      {"[volume.app]\npath = relative/dir\n", "[volume.app] path"},
      {"[volume.app]\nsize = 3\n", "unknown key size"},
      {"[volume.a/b]\npath = /srv\n", "[volume.'a/b']"},
  };
  for (const auto& [ini, expected] : cases) {
    try {
      settings_of(ini);
      ADD_FAILURE() << "accepted " << ini;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUsage);
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

TEST(ScheduleUnits, RunEachJobAsTheUserWithTheConfigPathAndNotifyOnFailure) {
  ScheduleSettings s = settings_of(
      "s3-secret-key = SECRETSECRET\n[schedule]\nuser = postgres\n"
      "notify-command = \"curl -d @- https://hooks.example/TOKEN123\"\n");
  const std::vector<UnitFile> units = systemd_units(s, kPackaged);
  ASSERT_EQ(units.size(), 7u);  // 3 services, 3 timers, the notify template
  const std::vector<std::pair<std::string, std::string>> timers = {
      {"backup", "*-*-* 02:00:00"}, {"verify", "Sun *-*-* 04:00:00"}, {"drill", "*-*-01 05:00:00"}};
  for (const auto& [job, calendar] : timers) {
    const std::string service = text_of(units, "walvault-" + job + ".service");
    const std::string timer = text_of(units, "walvault-" + job + ".timer");
    EXPECT_EQ(values(timer, "OnCalendar"), std::vector<std::string>{calendar});
    EXPECT_EQ(values(timer, "Persistent"), std::vector<std::string>{"true"});
    EXPECT_EQ(values(timer, "WantedBy"), std::vector<std::string>{"timers.target"});
    EXPECT_EQ(values(service, "User"), std::vector<std::string>{"postgres"});
    EXPECT_EQ(values(service, "Type"), std::vector<std::string>{"oneshot"});
    EXPECT_EQ(values(service, "ExecStart"),
              std::vector<std::string>{
                  "/usr/bin/walvault --config /etc/walvault.conf schedule run " + job});
    EXPECT_EQ(values(service, "OnFailure"), std::vector<std::string>{"walvault-notify@%n.service"});
  }
  const std::string notify = text_of(units, kNotifyUnit);
  EXPECT_EQ(values(notify, "User"), std::vector<std::string>{"postgres"});
  EXPECT_EQ(
      values(notify, "ExecStart"),
      std::vector<std::string>{"/usr/bin/walvault --config /etc/walvault.conf notify --unit %i"});
  for (const UnitFile& u : units) {
    EXPECT_EQ(u.text.find("SECRET"), std::string::npos) << u.path;
    EXPECT_EQ(u.text.find("TOKEN123"), std::string::npos) << u.path;
  }
}

TEST(ScheduleUnits, JobsThatAreOffHaveNoUnitsAndOddPathsAreQuotedOrRefused) {
  ScheduleSettings s = settings_of("[schedule]\nuser = pg\nverify = off\ndrill = off\n");
  const std::vector<UnitFile> units =
      systemd_units(s, {"/opt/wal vault/bin/walvault", "/etc/wal\"vault.conf"});
  ASSERT_EQ(units.size(), 3u);
  EXPECT_EQ(values(text_of(units, "walvault-backup.service"), "ExecStart"),
            std::vector<std::string>{
                "\"/opt/wal vault/bin/walvault\" --config \"/etc/wal\\\"vault.conf\" schedule run "
                "backup"});
  EXPECT_EQ(
      cron_file(s, {"/opt/wal vault/walvault", "/etc/w.conf"})
          .text.find(
              "0 2 * * * pg '/opt/wal vault/walvault' --config /etc/w.conf schedule run backup "
              "--cron\n"),
      cron_file(s, {"/opt/wal vault/walvault", "/etc/w.conf"}).text.find("0 2 * * *"));
  EXPECT_EQ(testing::error_code_of([&] {
              systemd_units(s, {"/usr/bin/walvault", "/etc/100%.conf"});
            }),
            ErrorCode::kUsage);
  EXPECT_EQ(testing::error_code_of([&] {
              cron_file(s, {"/usr/bin/walvault", "/etc/a\nb.conf"});
            }),
            ErrorCode::kUsage);
}

TEST(ScheduleUnits, CronFileHasOneLinePerJobAsTheUser) {
  ScheduleSettings s = settings_of("[schedule]\nuser = postgres\nverify = weekly wed 03:10\n");
  const UnitFile cron = cron_file(s, kPackaged);
  EXPECT_EQ(cron.path, "etc/cron.d/walvault");
  std::vector<std::string> jobs;
  std::istringstream in(cron.text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) jobs.push_back(line);
  const std::string run = " postgres /usr/bin/walvault --config /etc/walvault.conf schedule run ";
  EXPECT_EQ(jobs, (std::vector<std::string>{"0 2 * * *" + run + "backup --cron",
                                            "10 3 * * 3" + run + "verify --cron",
                                            "0 5 1 * *" + run + "drill --cron"}));
}

TEST(ScheduleSteps, BackupTakesTheSetThenExpiresAndCollects) {
  ScheduleSettings s = settings_of("[volume.app]\npath = /srv/app\n");
  s.retention = true;
  const std::vector<JobStep> steps = job_steps(s, "backup");
  ASSERT_EQ(steps.size(), 3u);
  // The database and every volume: backup --all (its parts: backup_set_test).
  EXPECT_EQ(steps[0].args, (std::vector<std::string>{"backup", "--all"}));
  EXPECT_FALSE(steps[0].maintenance);
  EXPECT_EQ(steps[1].args, std::vector<std::string>{"expire"});
  EXPECT_TRUE(steps[1].maintenance);
  EXPECT_EQ(steps[2].args, std::vector<std::string>{"gc"});
  s.retention = false;  // expire refuses to run without rules
  s.database = false;
  EXPECT_EQ(job_steps(s, "backup").size(), 2u);
  s.volumes.clear();  // nothing to back up: only gc
  EXPECT_EQ(job_steps(s, "backup").size(), 1u);
  s.verify_read_data = true;
  EXPECT_EQ(job_steps(s, "verify").at(0).args, (std::vector<std::string>{"verify", "--read-data"}));
  EXPECT_EQ(testing::error_code_of([&] { job_steps(s, "reboot"); }), ErrorCode::kUsage);
}

TEST(ScheduleNotice, IsTheSummaryThenTheLastNonBlankLines) {
  EXPECT_EQ(notice_text("walvault: x failed", "a\n\nb\n  \nc\nd\n", 3),
            "walvault: x failed\nb\nc\nd\n");
  EXPECT_EQ(notice_text("s", "only\n", 40), "s\nonly\n");
  EXPECT_EQ(journal_command("walvault-backup.service", "abc123", 40),
            (std::vector<std::string>{"journalctl", "--no-pager", "--quiet", "-o", "short-iso",
                                      "-n", "40", "_SYSTEMD_INVOCATION_ID=abc123"}));
  EXPECT_EQ(journal_command("walvault-backup.service", "", 5).back(), "walvault-backup.service");
}

// The Debian package ships the defaults' units (packaging/systemd/): they are
// this generator's output, byte for byte, so the two never drift apart.
TEST(ScheduleUnits, PackagedUnitsAreTheDefaultsOutput) {
  ScheduleSettings s;
  s.user = "postgres";
  for (const UnitFile& u : systemd_units(s, kPackaged)) {
    const std::string path = std::string(WALVAULT_SOURCE_DIR) + "/packaging/systemd/" +
                             u.path.substr(u.path.rfind('/') + 1);
    std::ifstream in(path);
    const std::string shipped{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    EXPECT_EQ(shipped, u.text) << path << " differs from the generator's output; it should read:\n"
                               << u.text;
  }
}

}  // namespace
}  // namespace walvault::cli
