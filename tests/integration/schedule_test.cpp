// `walvault schedule install|list|remove` into a temporary root (systemd
// units and the cron file), and what a failed scheduled run delivers to the
// operator's notify-command: the cron wrapper (`schedule run JOB --cron`)
// and `notify --unit U --log FILE` (what the OnFailure= unit runs, here with
// a log file for the journal, which this machine does not run). The real
// binary, a real repository, no server: the backup job snapshots a volume.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "integration/walvault_cli.h"

namespace walvault::testing {
namespace {

namespace fs = std::filesystem;

struct ScheduleFixture {
  TempDir work{"wv-schedule"};
  std::string repo = work.sub("repo");
  std::string root = work.sub("root");
  std::string config = work.sub("walvault.conf");
  std::string notice = work.sub("notice.txt");

  ScheduleFixture() {
    fs::create_directories(root);
    fs::create_directories(work.sub("logs"));
    fs::create_directories(work.sub("app"));
    write_text(work.sub("app/file"), "content\n");
    give_to_test_user(work.path());
  }

  // The config file (mode 0600, the test user's) with `schedule` as its
  // [schedule] section's extra lines; the notify-command writes `notice`.
  void write_config(const std::string& schedule, const std::string& volume_path,
                    const std::string& notify_command = "") {
    write_text(config, "repo = " + repo + "\nspool-path = " + work.sub("spool") +
                           "\n[schedule]\ndatabase = no\nlog-dir = " + work.sub("logs") +
                           "\nnotify-command = \"" +
                           (notify_command.empty() ? "cat > " + notice : notify_command) + "\"\n" +
                           schedule + "[volume.app]\npath = " + volume_path + "\n");
    ::chmod(config.c_str(), 0600);
    give_to_test_user(config);
  }

  CommandResult wv(std::vector<std::string> args) {
    return walvault(concat({"--config", config}, args));
  }
};

TEST(ScheduleTest, InstallListAndRemoveSystemdUnitsUnderARoot) {
  ScheduleFixture f;
  f.write_config("backup = daily 01:30\n", f.work.sub("app"));
  const std::string units = f.root + "/etc/systemd/system/";

  auto dry = f.wv({"schedule", "install", "--dry-run", "--init", "systemd", "--root", f.root});
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("OnCalendar=*-*-* 01:30:00"), std::string::npos) << dry.out;
  EXPECT_FALSE(fs::exists(units)) << "--dry-run wrote files";

  auto install = f.wv({"schedule", "install", "--init", "systemd", "--root", f.root});
  ASSERT_EQ(install.status, 0) << install.err;
  const std::string service = read_text(units + "walvault-backup.service");
  EXPECT_NE(service.find("\nUser=" + test_user() + "\n"), std::string::npos) << service;
  EXPECT_NE(service.find("--config " + f.config + " schedule run backup\n"), std::string::npos)
      << service;
  EXPECT_NE(service.find("OnFailure=walvault-notify@%n.service"), std::string::npos);
  EXPECT_EQ(service.find("cat >"), std::string::npos) << "the notify-command is in a unit";
  EXPECT_TRUE(fs::exists(units + "walvault-notify@.service"));
  EXPECT_TRUE(fs::exists(units + "walvault-verify.timer"));
  EXPECT_EQ(fs::status(units + "walvault-backup.timer").permissions() & fs::perms::all,
            fs::perms(0644));

  // systemd itself accepts them (calendars, the template, the binary's path).
  if (fs::exists("/usr/bin/systemd-analyze")) {
    std::vector<std::string> verify = {"/usr/bin/systemd-analyze", "verify", "--man=no"};
    for (const auto& entry : fs::directory_iterator(units)) verify.push_back(entry.path());
    auto verified = run(verify);
    EXPECT_EQ(verified.status, 0) << verified.out << verified.err;
    EXPECT_EQ(verified.err, "");
  }

  auto list = f.wv({"schedule", "list", "--init", "systemd", "--root", f.root});
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_NE(list.out.find("walvault-drill.timer\n  Description=walvault scheduled drill, monthly "
                          "on day 1 at 05:00\n  OnCalendar=*-*-01 05:00:00"),
            std::string::npos)
      << list.out;

  // verify turned off: installing again takes its units away.
  f.write_config("verify = off\n", f.work.sub("app"));
  install = f.wv({"schedule", "install", "--init", "systemd", "--root", f.root});
  ASSERT_EQ(install.status, 0) << install.err;
  EXPECT_FALSE(fs::exists(units + "walvault-verify.timer"));
  EXPECT_FALSE(fs::exists(units + "walvault-verify.service"));
  EXPECT_TRUE(fs::exists(units + "walvault-drill.timer"));

  auto remove_dry = f.wv({"schedule", "remove", "--dry-run", "--root", f.root});
  ASSERT_EQ(remove_dry.status, 0) << remove_dry.err;
  EXPECT_TRUE(fs::exists(units + "walvault-backup.timer"));
  auto remove = f.wv({"schedule", "remove", "--root", f.root});
  ASSERT_EQ(remove.status, 0) << remove.err;
  EXPECT_TRUE(fs::is_empty(units)) << remove.out;
  list = f.wv({"schedule", "list", "--root", f.root});
  EXPECT_NE(list.out.find("no walvault schedule"), std::string::npos) << list.out;
}

TEST(ScheduleTest, CronFileWhereSystemdIsAbsent) {
  ScheduleFixture f;
  f.write_config("drill = off\n", f.work.sub("app"));
  auto install = f.wv({"schedule", "install", "--init", "cron", "--root", f.root});
  ASSERT_EQ(install.status, 0) << install.err;
  const std::string cron = read_text(f.root + "/etc/cron.d/walvault");
  EXPECT_NE(cron.find("\n0 2 * * * " + test_user() + " "), std::string::npos) << cron;
  EXPECT_NE(cron.find(" --config " + f.config + " schedule run backup --cron\n"), std::string::npos)
      << cron;
  EXPECT_NE(cron.find("\n0 4 * * 0 "), std::string::npos) << cron;
  EXPECT_EQ(cron.find("schedule run drill"), std::string::npos) << cron;
  EXPECT_TRUE(fs::is_directory(f.root + f.work.sub("logs")));
  auto remove = f.wv({"schedule", "remove", "--root", f.root});
  ASSERT_EQ(remove.status, 0) << remove.err;
  EXPECT_FALSE(fs::exists(f.root + "/etc/cron.d/walvault"));
}

TEST(ScheduleTest, AFailedCronRunSendsItsSummaryAndLastLinesToTheNotifyCommand) {
  ScheduleFixture f;
  ASSERT_EQ(walvault({"--repo", f.repo, "repo", "init"}).status, 0);
  // The volume's directory is missing: its part of the backup set fails.
  f.write_config("", f.work.sub("gone"));
  auto run = f.wv({"schedule", "run", "backup", "--cron"});
  EXPECT_EQ(run.status, 10) << run.out << run.err;  // files backup's io status
  EXPECT_NE(run.err.find("failed: files backup --volume app"), std::string::npos) << run.err;
  const std::string notice = read_text(f.notice);
  EXPECT_TRUE(notice.starts_with("walvault: scheduled backup failed on ")) << notice;
  EXPECT_NE(notice.find(f.work.sub("gone") + ": No such file or directory"), std::string::npos)
      << notice;
  EXPECT_NE(notice.find("gc: skipped, a part before it failed"), std::string::npos) << notice;
  EXPECT_NE(read_text(f.work.sub("logs/backup.log")).find("No such file or directory"),
            std::string::npos);

  // Fixed, the same job succeeds, stores a snapshot, and notifies no one.
  fs::remove(f.notice);
  f.write_config("", f.work.sub("app"));
  run = f.wv({"schedule", "run", "backup", "--cron"});
  ASSERT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("files backup --volume app " + f.work.sub("app") + ": ok"),
            std::string::npos)
      << run.out;
  EXPECT_FALSE(fs::exists(f.notice));
  auto snapshots = f.wv({"files", "list"});
  EXPECT_NE(snapshots.out.find("app"), std::string::npos) << snapshots.out << snapshots.err;
}

TEST(ScheduleTest, NotifyDeliversTheUnitsSummaryAndTailAndFailsWhenTheCommandFails) {
  ScheduleFixture f;
  f.write_config("notify-lines = 2\n", f.work.sub("app"));
  const std::string log = f.work.sub("journal.txt");
  write_text(log, "line 1\nline 2\nwalvault: error: no walvault repository at /x\n\n");
  give_to_test_user(log);
  auto notify =
      walvault({"--config", f.config, "notify", "--unit", "walvault-backup.service", "--log", log},
               {{"MONITOR_SERVICE_RESULT", "exit-code"}, {"MONITOR_EXIT_STATUS", "9"}});
  ASSERT_EQ(notify.status, 0) << notify.err;
  const std::string notice = read_text(f.notice);
  EXPECT_TRUE(notice.starts_with("walvault: walvault-backup.service failed on ")) << notice;
  EXPECT_NE(notice.find(" (exit-code, exit status 9)\nline 2\nwalvault: error: no walvault "
                        "repository at /x\n"),
            std::string::npos)
      << notice;
  EXPECT_EQ(notice.find("line 1"), std::string::npos) << notice;

  // ';' would end the value in the INI reader: refused, not run in part.
  f.write_config("", f.work.sub("app"), "echo refused; exit 3");
  notify = f.wv({"notify", "--unit", "walvault-backup.service", "--log", log});
  EXPECT_EQ(notify.status, 2) << notify.err;
  EXPECT_NE(notify.err.find("notify-command: ';' and '#' start a comment"), std::string::npos)
      << notify.err;
  f.write_config("", f.work.sub("app"), "echo refused && exit 3");
  notify = f.wv({"notify", "--unit", "walvault-backup.service", "--log", log});
  EXPECT_EQ(notify.status, 10) << notify.err;
  EXPECT_NE(notify.err.find("notify-command exited with status 3: refused"), std::string::npos)
      << notify.err;
}

}  // namespace
}  // namespace walvault::testing
