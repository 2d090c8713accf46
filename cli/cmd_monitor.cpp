// `check` (one line and exit 0 OK / 1 WARNING / 2 CRITICAL, for monitoring)
// and `metrics` (Prometheus text exposition).
#include <iostream>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/time_util.h"
#include "ops/monitor.h"

namespace walvault::cli {

namespace {

struct CheckArgs {
  std::string max_backup_age = "26h", max_wal_age = "15m", pg, archive_timeout = "60";
  std::vector<std::string> max_snapshot_age;  // DURATION, VOLUME=DURATION, VOLUME=off
  std::vector<std::string> max_dump_age;      // DURATION, DATABASE=DURATION, DATABASE=off
  int max_disk_use = 80;                      // percent of the repository's file system
  bool json = false;
};

// Every failure is CRITICAL on stdout, in the one-line format monitoring reads.
int run_check(const Context& ctx, const CheckArgs& a) {
  ops::CheckOptions options;
  // "off": a repository that holds file volumes only.
  auto limit = [](const char* what, const std::string& text) {
    return text == "off" ? std::nullopt : std::optional(parse_duration(what, text));
  };
  options.max_backup_age = limit("--max-backup-age", a.max_backup_age);
  options.max_wal_age = limit("--max-wal-age", a.max_wal_age);
  options.archive_timeout = parse_duration("--archive-timeout", a.archive_timeout);
  options.pg = a.pg;
  options.disk_warn_percent = a.max_disk_use;
  for (const std::string& value : a.max_snapshot_age) ops::set_snapshot_age_limit(options, value);
  for (const std::string& value : a.max_dump_age) ops::set_dump_age_limit(options, value);
  ops::CheckResult result;
  try {
    auto r = ctx.repos.open_first();
    result = ops::run_check(*r, options);
  } catch (const Error& e) {
    result = {ops::CheckStatus::kCritical,
              std::string("WALVAULT CRITICAL - ") + e.what(),
              {{ops::CheckStatus::kCritical, e.what()}}};
  }
  std::cout << (a.json ? ops::check_json(result) : result.line) << "\n";
  return static_cast<int>(result.status);
}

int run_metrics(const Context& ctx, const std::string& textfile) {
  auto r = ctx.repos.open_first();
  const std::string text = ops::metrics_text(*r);
  if (textfile.empty()) {
    std::cout << text;
  } else {
    write_file_atomic(textfile, as_bytes(text), 0644, Overwrite::kYes, Durability::kNone);
  }
  return 0;
}

}  // namespace

void register_monitor(CLI::App& app, Verbs& verbs) {
  CLI::App* check = app.add_subcommand(
      "check",
      "one line and exit 0 OK / 1 WARNING / 2 CRITICAL for monitoring (backup, WAL and "
      "snapshot age)");
  auto check_args = std::make_shared<CheckArgs>();
  check
      ->add_option("--max-backup-age", check_args->max_backup_age,
                   "WARNING past this, CRITICAL past 2x; off: no database backups here")
      ->default_str("26h");
  check
      ->add_option("--max-wal-age", check_args->max_wal_age,
                   "WARNING past this, CRITICAL past 2x; off: no WAL archived here")
      ->default_str("15m");
  check
      ->add_option("--max-snapshot-age", check_args->max_snapshot_age,
                   "snapshots: WARNING past this, CRITICAL past 2x; VOLUME=DURATION for one "
                   "volume, VOLUME=off to leave one out (repeat)")
      ->type_name("[VOLUME=]DURATION")
      ->default_str("26h");
  check
      ->add_option("--max-dump-age", check_args->max_dump_age,
                   "dumps: WARNING past this, CRITICAL past 2x; DATABASE=DURATION for one "
                   "database, DATABASE=off to leave one out (repeat)")
      ->type_name("[DATABASE=]DURATION")
      ->default_str("26h");
  check
      ->add_option("--max-disk-use", check_args->max_disk_use,
                   "WARNING when a local repository's file system is fuller than this percent")
      ->check(CLI::Range(1, 100))
      ->default_str("80");
  check->add_option("--pg", check_args->pg,
                    "also force a WAL switch on this server and wait for it to be archived");
  check->add_option("--archive-timeout", check_args->archive_timeout, "how long to wait for it")
      ->default_str("60");
  check->add_flag("--json", check_args->json, "the status and each finding as JSON (same exit)");
  verbs.push_back(
      {check, [check_args](const Context& ctx) { return run_check(ctx, *check_args); }});

  CLI::App* metrics =
      app.add_subcommand("metrics", "Prometheus text exposition of the repository's state");
  auto textfile = std::make_shared<std::string>();
  metrics->add_option("--textfile", *textfile,
                      "write atomically to this file (node_exporter textfile collector)");
  verbs.push_back(
      {metrics, [textfile](const Context& ctx) { return run_metrics(ctx, *textfile); }});
}

}  // namespace walvault::cli
