// `drill`'s options; the drill itself is run_drill (drill_cmd.h).
#include "cli/command.h"
#include "cli/drill_cmd.h"
#include "core/time_util.h"

namespace walvault::cli {

namespace {

struct DrillCli {
  DrillArgs args;
  std::string timeout = "30m", target_rto;
};

int run_drill_command(const Context& ctx, DrillCli d) {
  DrillArgs& a = d.args;
  a.timeout = parse_duration("--timeout", d.timeout);
  if (!d.target_rto.empty()) a.target_rto = parse_duration("--target-rto", d.target_rto);
  a.restore_command = archive_get_command(ctx.globals);
  a.secret_only_in_environment = ctx.repos.secret_only_in_environment();
  return run_drill(ctx.repos.locations(), ctx.repos.opener(), a);
}

}  // namespace

void register_drill(CLI::App& app, Verbs& verbs, int parallel) {
  CLI::App* drill = app.add_subcommand(
      "drill", "restore a backup into a scratch directory, start it, run checks, time it");
  auto d = std::make_shared<DrillCli>();
  DrillArgs& a = d->args;
  a.parallel = parallel;
  drill->add_option("--set", a.set, "restore this backup (default: the newest)");
  drill->add_option("--target-time", a.target_time,
                    "recover to this time (default: the end of the archive)");
  drill->add_option("--scratch", a.scratch,
                    "empty or new directory to restore into (default: mkdtemp in /var/tmp)");
  drill->add_option("--check", a.check_sql,
                    "SQL whose first column of the first row must equal the next --expect");
  drill->add_option("--expect", a.expect, "expected text of the matching --check");
  drill->add_option("--check-script", a.check_script,
                    "executable run with PGHOST/PGPORT/PGDATA set; must exit 0");
  drill->add_option("--pg-bin", a.pg_bin,
                    "PostgreSQL binaries (default /usr/lib/postgresql/<major>/bin)");
  drill->add_option("--run-as", a.run_as, "the server's user when run as root")
      ->default_str("postgres");
  drill->add_option("--db-user", a.db_user, "role of the checks (default: --run-as)");
  drill->add_option("--dbname", a.dbname, "database of the checks")->default_str("postgres");
  drill->add_flag("--keep", a.keep, "keep the scratch directory (server stopped)");
  drill->add_option("--timeout", d->timeout, "give up on recovery after this long")
      ->default_str("30m");
  drill->add_option("--target-rto", d->target_rto, "fail when the drill takes longer than this");
  // Config-file checks: drill-check = "SQL => EXPECTED" (repeatable).
  app.add_option("--drill-check", a.config_checks)->group("")->envname(env_name("drill-check"));
  verbs.push_back({drill, [d](const Context& ctx) { return run_drill_command(ctx, *d); }});
}

}  // namespace walvault::cli
